// Tests of server/request_limits.h.
#include "server/request_limits.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "pantherd/v1/admin_service.pb.h"
#include "server/auth.h"

namespace pantherd::server {
namespace {

using ::testing::HasSubstr;

TEST(RequestLimitsTest, OnlyUploadsTestsReplaysAndIngestionTakeLargeMessages) {
  int large = 0;
  for (const std::string& method : ServiceMethods()) {
    const int64_t limit = MaxRequestBytes(method);
    EXPECT_TRUE(limit == kMaxSmallRequestBytes || limit == kMaxUploadMessageBytes) << method;
    if (limit == kMaxUploadMessageBytes) ++large;
  }
  EXPECT_EQ(large, 4);
  EXPECT_EQ(MaxRequestBytes("pantherd.v1.DetectionService/UploadRule"), 64 << 20);
  EXPECT_EQ(MaxRequestBytes("pantherd.v1.DetectionService/RunTests"), 64 << 20);
  EXPECT_EQ(MaxRequestBytes("pantherd.v1.DetectionService/IngestEvents"), 64 << 20);
  // A replay carries a rule folder, as RunTests does.
  EXPECT_EQ(MaxRequestBytes("pantherd.v1.DetectionService/ReplayRules"), 64 << 20);
  EXPECT_EQ(MaxRequestBytes("pantherd.v1.AdminService/WhoAmI"), 4 << 20);
}

TEST(RequestLimitsTest, CheckNamesTheMethodAndTheLimit) {
  v1::CreateUserRequest request;
  request.set_name(std::string(kMaxSmallRequestBytes - 16, 'a'));
  EXPECT_TRUE(CheckRequestSize("pantherd.v1.AdminService/CreateUser", request).ok());
  request.set_name(std::string(kMaxSmallRequestBytes, 'a'));
  absl::Status s = CheckRequestSize("pantherd.v1.AdminService/CreateUser", request);
  EXPECT_TRUE(absl::IsResourceExhausted(s)) << s;
  EXPECT_THAT(s.message(), HasSubstr("larger than the 4 MiB that "
                                     "pantherd.v1.AdminService/CreateUser accepts"));
}

}  // namespace
}  // namespace pantherd::server
