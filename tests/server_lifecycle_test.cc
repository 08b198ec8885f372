// End-to-end: the real pantherd binary on a free loopback port with a temp
// data directory, driven by the real pantherctl binary and a gRPC client.
#include <signal.h>

#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "pantherd/v1/detection_service.grpc.pb.h"
#include "tests/test_util.h"

namespace pantherd::testing {
namespace {

using ::testing::HasSubstr;

constexpr char kPantherd[] = PANTHERD_BINARY;
constexpr char kPantherctl[] = PANTHERCTL_BINARY;

class ServerLifecycleTest : public ::testing::Test {
 protected:
  std::string DataDir() const { return tmp_.Sub("data"); }
  TempDir tmp_;
};

grpc::health::v1::HealthCheckResponse::ServingStatus CheckHealth(const std::string& address) {
  auto channel = grpc::CreateChannel(address, grpc::InsecureChannelCredentials());
  auto stub = grpc::health::v1::Health::NewStub(channel);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  grpc::health::v1::HealthCheckRequest req;
  grpc::health::v1::HealthCheckResponse resp;
  grpc::Status s = stub->Check(&ctx, req, &resp);
  EXPECT_TRUE(s.ok()) << s.error_message();
  return resp.status();
}

TEST_F(ServerLifecycleTest, StatusHealthSigtermAndRestart) {
  absl::StatusOr<ServerProcess> server = ServerProcess::Start(kPantherd, DataDir(), tmp_.path());
  ASSERT_TRUE(server.ok()) << server.status();
  EXPECT_THAT(server->address(), ::testing::StartsWith("127.0.0.1:"));
  EXPECT_TRUE(std::filesystem::is_directory(DataDir()));  // Created on first start.

  // pantherctl status, as a table and as JSON.
  absl::StatusOr<RunResult> status =
      RunCommand(server->Ctl(kPantherctl, {"status"}), tmp_.path());
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_EQ(status->exit_code, 0) << status->err;
  EXPECT_THAT(status->out, HasSubstr("0.1.0"));
  EXPECT_THAT(status->out, HasSubstr(DataDir()));
  EXPECT_THAT(status->out, HasSubstr("SERVING"));

  absl::StatusOr<RunResult> json = RunCommand(
      server->Ctl(kPantherctl, {"--output", "json", "status"}), tmp_.path());
  ASSERT_TRUE(json.ok()) << json.status();
  EXPECT_EQ(json->exit_code, 0) << json->err;
  EXPECT_THAT(json->out, HasSubstr("\"dataDir\""));
  EXPECT_THAT(json->out, HasSubstr("\"SERVING\""));

  // The standard health service.
  EXPECT_EQ(CheckHealth(server->address()), grpc::health::v1::HealthCheckResponse::SERVING);

  // Sources are served (none yet in a new store).
  {
    auto stub = v1::DetectionService::NewStub(
        grpc::CreateChannel(server->address(), grpc::InsecureChannelCredentials()));
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", server->bearer());
    v1::ListSourcesRequest req;
    v1::ListSourcesResponse resp;
    grpc::Status s = stub->ListSources(&ctx, req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    EXPECT_EQ(resp.sources_size(), 0);
  }

  // A second pantherd on the same data directory fails fast and clearly.
  absl::StatusOr<ServerProcess> second =
      ServerProcess::Start(kPantherd, DataDir(), tmp_.path(), {}, absl::Seconds(20));
  ASSERT_FALSE(second.ok());
  EXPECT_THAT(std::string(second.status().message()), HasSubstr("exited with code 1"));
  EXPECT_THAT(std::string(second.status().message()), HasSubstr("in use"));

  // SIGTERM: clean exit, store closed.
  server->process().Signal(SIGTERM);
  absl::StatusOr<int> code = server->process().Wait(absl::Seconds(30));
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_EQ(*code, 0) << server->Log();
  EXPECT_THAT(server->Log(), HasSubstr("msg=\"store closed\""));

  // pantherctl against the stopped server says it cannot reach it.
  absl::StatusOr<RunResult> down =
      RunCommand(server->Ctl(kPantherctl, {"status"}), tmp_.path());
  ASSERT_TRUE(down.ok());
  EXPECT_NE(down->exit_code, 0);
  EXPECT_THAT(down->err, HasSubstr(server->address()));

  // Restart on the same data directory works.
  absl::StatusOr<ServerProcess> again = ServerProcess::Start(kPantherd, DataDir(), tmp_.path());
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(CheckHealth(again->address()), grpc::health::v1::HealthCheckResponse::SERVING);
  again->process().Signal(SIGINT);
  absl::StatusOr<int> code2 = again->process().Wait(absl::Seconds(30));
  ASSERT_TRUE(code2.ok()) << code2.status();
  EXPECT_EQ(*code2, 0) << again->Log();
}

TEST_F(ServerLifecycleTest, ConfigFileErrorIsOneClearLine) {
  std::string config = tmp_.Sub("pantherd.yaml");
  {
    std::ofstream(config) << "listen: 127.0.0.1:0\nlog_levl: debug\n";
  }
  absl::StatusOr<RunResult> r =
      RunCommand({kPantherd, "--config", config, "--data-dir", DataDir()}, tmp_.path());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_NE(r->exit_code, 0);
  EXPECT_THAT(r->err, HasSubstr(absl::StrCat(config, ":2:")));
  EXPECT_THAT(r->err, HasSubstr("log_levl"));
}

TEST_F(ServerLifecycleTest, AddressInUseFailsClearlyAndReleasesTheStore) {
  absl::StatusOr<ServerProcess> first = ServerProcess::Start(kPantherd, DataDir(), tmp_.path());
  ASSERT_TRUE(first.ok()) << first.status();
  absl::StatusOr<RunResult> r = RunCommand(
      {kPantherd, "--listen", first->address(), "--data-dir", tmp_.Sub("other")}, tmp_.path());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->exit_code, 1);
  EXPECT_THAT(r->err, HasSubstr(absl::StrCat("cannot listen on ", first->address())));
  // The failed start closed its store: the directory can be opened again.
  absl::StatusOr<ServerProcess> other =
      ServerProcess::Start(kPantherd, tmp_.Sub("other"), tmp_.path());
  EXPECT_TRUE(other.ok()) << other.status();
}

TEST_F(ServerLifecycleTest, InvalidListenAddressIsAUsageError) {
  absl::StatusOr<RunResult> r = RunCommand(
      {kPantherd, "--listen", "127.0.0.1:99999", "--data-dir", DataDir()}, tmp_.path());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->exit_code, 2);
  EXPECT_THAT(r->err, HasSubstr("127.0.0.1:99999"));
  EXPECT_FALSE(std::filesystem::exists(DataDir()));  // Nothing was created.
}

}  // namespace
}  // namespace pantherd::testing
