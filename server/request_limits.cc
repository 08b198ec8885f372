#include "server/request_limits.h"

#include "absl/strings/str_cat.h"

namespace pantherd::server {

int64_t MaxRequestBytes(absl::string_view method) {
  if (method == "pantherd.v1.DetectionService/UploadRule" ||
      method == "pantherd.v1.DetectionService/RunTests" ||
      method == "pantherd.v1.DetectionService/ReplayRules" ||
      method == "pantherd.v1.DetectionService/IngestEvents") {
    return kMaxUploadMessageBytes;
  }
  return kMaxSmallRequestBytes;
}

absl::Status CheckRequestSize(absl::string_view method, const google::protobuf::Message& request) {
  const int64_t limit = MaxRequestBytes(method);
  const int64_t size = static_cast<int64_t>(request.ByteSizeLong());
  if (size <= limit) return absl::OkStatus();
  return absl::ResourceExhaustedError(absl::StrCat("request of ", size,
                                                   " bytes is larger than the ", limit >> 20,
                                                   " MiB that ", method, " accepts"));
}

}  // namespace pantherd::server
