// How large a request message pantherd accepts, per method.
//
// A whole rule folder travels in one UploadRule or RunTests call, and
// IngestEvents batches may be large, so the gRPC server accepts messages up to
// kMaxUploadMessageBytes (64 MiB; the whole panther-analysis repository is
// about 7 MiB of files). Every other method needs a few bytes to kilobytes and
// is limited to kMaxSmallRequestBytes (4 MiB): a handler refuses a larger
// request with RESOURCE_EXHAUSTED before doing any work, right after the token
// check (PANTHERD_AUTHORIZE_REQUEST in server/call_auth.h).
//
// What gRPC 1.51 does with an oversized message: it reads the whole message
// before comparing its length with the limit (the length prefix is not checked
// early), then fails the call with RESOURCE_EXHAUSTED without parsing it or
// calling pantherd. The server's ResourceQuota (--grpc-memory-quota-mib) bounds
// what many such messages at once may hold: beyond it gRPC shrinks its
// flow-control windows and closes connections. See docs/security.md.
#ifndef PANTHERD_SERVER_REQUEST_LIMITS_H_
#define PANTHERD_SERVER_REQUEST_LIMITS_H_

#include <cstdint>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/message.h"

namespace pantherd::server {

// The gRPC server's receive limit: the largest message of any call
// (UploadRule, RunTests, each IngestEvents batch). pantherctl's send limit
// (client/connection.h kMaxMessageBytes) is the same.
inline constexpr int64_t kMaxUploadMessageBytes = int64_t{64} << 20;
// The largest request of every other method.
inline constexpr int64_t kMaxSmallRequestBytes = int64_t{4} << 20;

// The largest request `method` ("pantherd.v1.DetectionService/UploadRule")
// accepts: kMaxUploadMessageBytes for UploadRule, RunTests and IngestEvents,
// else kMaxSmallRequestBytes. Thread-safe.
int64_t MaxRequestBytes(absl::string_view method);

// OK when `request` (a request of `method`) is within MaxRequestBytes(method);
// else RESOURCE_EXHAUSTED naming the method, the size and the limit.
// Thread-safe (reads the message only).
absl::Status CheckRequestSize(absl::string_view method, const google::protobuf::Message& request);

}  // namespace pantherd::server

#endif  // PANTHERD_SERVER_REQUEST_LIMITS_H_
