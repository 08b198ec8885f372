#include "client/connection.h"

#include <sys/stat.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "client/fake_pantherd.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace pantherd::client {
namespace {

using ::pantherd::client::testing::FakeAdminService;
using ::pantherd::client::testing::FakePantherd;
using ::pantherd::client::testing::ReserveClosedPort;
using ::pantherd::client::testing::SilentListener;
using ::testing::HasSubstr;

// Clears the variables pantherctl reads, before and after each test.
class PantherctlConnectionTest : public ::testing::Test {
 protected:
  void SetUp() override { ClearEnv(); }
  void TearDown() override { ClearEnv(); }
  static void ClearEnv() {
    unsetenv(kServerEnvVar);
    unsetenv(kTokenEnvVar);
    unsetenv(kTokenFileEnvVar);
    unsetenv(kCaCertEnvVar);
    unsetenv("XDG_CONFIG_HOME");
  }
};

TEST_F(PantherctlConnectionTest, TokenPrecedenceAndTheLoginFile) {
  std::string dir_template =
      (std::filesystem::temp_directory_path() / "pantherctl-login-XXXXXX").string();
  ASSERT_NE(mkdtemp(dir_template.data()), nullptr);
  const std::string dir = dir_template;
  setenv("XDG_CONFIG_HOME", dir.c_str(), 1);
  ASSERT_EQ(LoginFilePath(), dir + "/pantherctl/config");
  ASSERT_TRUE(WriteLoginFile(LoginFilePath(), {"127.0.0.1:7000", "login-token", "/ca.pem"}).ok());
  struct stat st;
  ASSERT_EQ(stat(LoginFilePath().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600);

  // Nothing else given: everything from the login file.
  absl::StatusOr<ConnectionOptions> o = ResolveConnection(ConnectionFlags());
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->server, "127.0.0.1:7000");
  EXPECT_EQ(o->token, "login-token");
  EXPECT_EQ(o->ca_cert_file, "/ca.pem");

  // Another server: the stored token and CA are not used for it.
  ConnectionFlags other;
  other.server = "127.0.0.1:8000";
  o = ResolveConnection(other);
  ASSERT_TRUE(o.ok());
  EXPECT_EQ(o->token, "");
  EXPECT_EQ(o->ca_cert_file, "");

  // --token-file beats the environment, which beats the login file.
  const std::string token_file = dir + "/token";
  { std::ofstream(token_file) << "file-token\nsecond line\n"; }
  setenv(kTokenEnvVar, "env-token", 1);
  EXPECT_EQ(ResolveConnection(ConnectionFlags())->token, "env-token");
  ConnectionFlags with_file;
  with_file.token_file = token_file;
  EXPECT_EQ(ResolveConnection(with_file)->token, "file-token");
  with_file.token = "flag-token";
  EXPECT_EQ(ResolveConnection(with_file)->token, "flag-token");
  unsetenv(kTokenEnvVar);
  setenv(kTokenFileEnvVar, token_file.c_str(), 1);
  EXPECT_EQ(ResolveConnection(ConnectionFlags())->token, "file-token");
  ConnectionFlags missing;
  missing.token_file = dir + "/nope";
  EXPECT_EQ(ResolveConnection(missing).status().code(), absl::StatusCode::kInvalidArgument);

  // A malformed login file is named with its line.
  { std::ofstream(LoginFilePath()) << "server: x\nbogus line\n"; }
  unsetenv(kTokenFileEnvVar);
  absl::Status bad = ResolveConnection(ConnectionFlags()).status();
  EXPECT_THAT(std::string(bad.message()), HasSubstr(":2:"));
  std::filesystem::remove_all(dir);
}

// The login stored for one spelling of the loopback address applies to the
// others with the same port; the token's source is named for error messages.
TEST_F(PantherctlConnectionTest, LoginAppliesToEveryLoopbackSpelling) {
  std::string dir_template =
      (std::filesystem::temp_directory_path() / "pantherctl-login-XXXXXX").string();
  ASSERT_NE(mkdtemp(dir_template.data()), nullptr);
  const std::string dir = dir_template;
  setenv("XDG_CONFIG_HOME", dir.c_str(), 1);
  ASSERT_TRUE(WriteLoginFile(LoginFilePath(), {"127.0.0.1:7000", "login-token", ""}).ok());
  for (const char* server : {"localhost:7000", "127.0.0.1:7000", "[::1]:7000", "LOCALHOST:7000"}) {
    ConnectionFlags flags;
    flags.server = server;
    absl::StatusOr<ConnectionOptions> o = ResolveConnection(flags);
    ASSERT_TRUE(o.ok()) << o.status();
    EXPECT_EQ(o->token, "login-token") << server;
    EXPECT_EQ(o->server, server);  // Dialled as given.
    EXPECT_THAT(o->token_source, HasSubstr("the login file " + LoginFilePath())) << server;
  }
  for (const char* server : {"localhost:7001", "example.com:7000", "10.0.0.1:7000"}) {
    ConnectionFlags flags;
    flags.server = server;
    absl::StatusOr<ConnectionOptions> o = ResolveConnection(flags);
    ASSERT_TRUE(o.ok()) << o.status();
    EXPECT_EQ(o->token, "") << server;
    EXPECT_EQ(o->token_source, "") << server;
  }
  ConnectionFlags flag_token;
  flag_token.token = "t";
  EXPECT_EQ(ResolveConnection(flag_token)->token_source, "--token");
  setenv(kTokenEnvVar, "env-token", 1);
  EXPECT_EQ(ResolveConnection(ConnectionFlags())->token_source, "$PANTHER_TOKEN");
  unsetenv(kTokenEnvVar);
  std::filesystem::remove_all(dir);
}

TEST(NormalizeServerAddressTest, LoopbackNamesAreOne) {
  EXPECT_EQ(NormalizeServerAddress("localhost:50051"), "loopback:50051");
  EXPECT_EQ(NormalizeServerAddress("127.0.0.1:50051"), "loopback:50051");
  EXPECT_EQ(NormalizeServerAddress("[::1]:50051"), "loopback:50051");
  EXPECT_EQ(NormalizeServerAddress("::1"), "loopback:");
  EXPECT_EQ(NormalizeServerAddress("pantherd.example:50051"), "pantherd.example:50051");
  EXPECT_TRUE(SameServer("localhost:1", "[::1]:1"));
  EXPECT_FALSE(SameServer("localhost:1", "localhost:2"));
}

TEST(TokenRefusedHintTest, NamesTheSourceAndTheFix) {
  EXPECT_EQ(TokenRefusedHint("--token-file /t"),
            "the token from --token-file /t was refused; check that file, or run pantherctl "
            "login");
  EXPECT_EQ(TokenRefusedHint("$PANTHER_TOKEN"),
            "the token from $PANTHER_TOKEN was refused; check or unset that variable, or run "
            "pantherctl login");
  EXPECT_THAT(TokenRefusedHint("the login file /c (pantherctl login)"),
              HasSubstr("run pantherctl login again"));
}

TEST_F(PantherctlConnectionTest, DefaultsWithoutFlagsOrEnvironment) {
  ConnectionOptions options = ResolveConnectionOptions(ConnectionFlags());
  EXPECT_EQ(options.server, "127.0.0.1:50051");
  EXPECT_EQ(options.token, "");
  EXPECT_EQ(options.timeout, absl::Seconds(30));
  EXPECT_EQ(options.ca_cert_file, "");
}

TEST_F(PantherctlConnectionTest, EnvironmentBeatsDefault) {
  setenv(kServerEnvVar, "127.0.0.1:6000", 1);
  setenv(kTokenEnvVar, "env-token", 1);
  ConnectionOptions options = ResolveConnectionOptions(ConnectionFlags());
  EXPECT_EQ(options.server, "127.0.0.1:6000");
  EXPECT_EQ(options.token, "env-token");
}

TEST_F(PantherctlConnectionTest, FlagBeatsEnvironment) {
  setenv(kServerEnvVar, "127.0.0.1:6000", 1);
  setenv(kTokenEnvVar, "env-token", 1);
  ConnectionFlags flags;
  flags.server = "127.0.0.1:7000";
  flags.token = "flag-token";
  flags.timeout_seconds = 2.5;
  ConnectionOptions options = ResolveConnectionOptions(flags);
  EXPECT_EQ(options.server, "127.0.0.1:7000");
  EXPECT_EQ(options.token, "flag-token");
  EXPECT_EQ(options.timeout, absl::Milliseconds(2500));
}

TEST_F(PantherctlConnectionTest, EmptyEnvironmentCountsAsUnsetButEmptyFlagWins) {
  setenv(kServerEnvVar, "", 1);
  setenv(kTokenEnvVar, "env-token", 1);
  ConnectionFlags flags;
  flags.token = "";
  ConnectionOptions options = ResolveConnectionOptions(flags);
  EXPECT_EQ(options.server, "127.0.0.1:50051");
  EXPECT_EQ(options.token, "");
}

TEST_F(PantherctlConnectionTest, DescribesConnectFailures) {
  EXPECT_EQ(DescribeConnectFailure(
                "failed to connect to all addresses; last error: UNKNOWN: ipv4:127.0.0.1:1: "
                "Failed to connect to remote host: Connection refused"),
            "connection refused");
  EXPECT_EQ(DescribeConnectFailure("DNS resolution failed for nowhere.invalid:1: C-ares status "
                                   "is not ARES_SUCCESS qtype=A name=nowhere.invalid "
                                   "is_balancer=0: Domain name not found"),
            "name resolution failed: domain name not found");
  EXPECT_EQ(DescribeConnectFailure("Socket closed: EOF"), "EOF");
  EXPECT_EQ(DescribeConnectFailure(""), "unavailable");
  EXPECT_EQ(DescribeConnectFailure("trailing: "), "trailing:");
}

TEST_F(PantherctlConnectionTest, OneLineFlattensBreaks) {
  EXPECT_EQ(OneLine("  a\nb\tc\r\n"), "a b c");
}

TEST_F(PantherctlConnectionTest, UnreachableServerIsNamedQuickly) {
  const int port = ReserveClosedPort();
  ASSERT_GT(port, 0);
  ConnectionOptions options;
  options.server = absl::StrCat("127.0.0.1:", port);
  const absl::Time start = absl::Now();
  absl::StatusOr<std::unique_ptr<Connection>> conn = Connection::Open(options);
  ASSERT_FALSE(conn.ok());
  EXPECT_EQ(conn.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(std::string(conn.status().message()),
            absl::StrCat("cannot reach pantherd at 127.0.0.1:", port, " (connection refused)"));
  // Refusal is detected at once, not after the 5 s connect wait.
  EXPECT_LT(absl::Now() - start, absl::Seconds(4));
}

TEST_F(PantherctlConnectionTest, SilentServerTimesOutWithinTheConnectWait) {
  SilentListener listener;
  ASSERT_GT(listener.port(), 0);
  ConnectionOptions options;
  options.server = absl::StrCat("127.0.0.1:", listener.port());
  options.timeout = absl::Milliseconds(500);  // Shorter than kMaxConnectWait.
  const absl::Time start = absl::Now();
  absl::StatusOr<std::unique_ptr<Connection>> conn = Connection::Open(options);
  ASSERT_FALSE(conn.ok());
  EXPECT_EQ(conn.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(std::string(conn.status().message()),
            absl::StrCat("cannot reach pantherd at 127.0.0.1:", listener.port(),
                         " (no connection within 500ms)"));
  EXPECT_LT(absl::Now() - start, absl::Seconds(3));
}

TEST_F(PantherctlConnectionTest, UnreadableCaCertIsNamed) {
  ConnectionOptions options;
  options.server = "127.0.0.1:1";
  options.ca_cert_file = "/nonexistent/ca.pem";
  absl::Status s = Connection::Open(options).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), ::testing::HasSubstr("/nonexistent/ca.pem"));
}

// A connection to a live fake server.
class PantherctlConnectionLiveTest : public PantherctlConnectionTest {
 protected:
  absl::StatusOr<std::unique_ptr<Connection>> OpenWith(std::string token,
                                                       absl::Duration timeout = absl::Seconds(5)) {
    ConnectionOptions options;
    options.server = server_.address();
    options.token = std::move(token);
    options.timeout = timeout;
    return Connection::Open(options);
  }

  FakeAdminService admin_;
  FakePantherd server_{{&admin_}};
};

TEST_F(PantherctlConnectionLiveTest, SendsBearerTokenWhenSet) {
  ASSERT_TRUE(server_.ok());
  auto conn = OpenWith("s3cret");
  ASSERT_TRUE(conn.ok()) << conn.status();
  pantherd::v1::WhoAmIResponse response;
  ASSERT_TRUE((*conn)
                  ->Call("WhoAmI", &Connection::AdminStub::WhoAmI, (*conn)->admin(),
                         pantherd::v1::WhoAmIRequest(), &response)
                  .ok());
  std::lock_guard<std::mutex> lock(admin_.mu);
  EXPECT_EQ(admin_.last_authorization, "Bearer s3cret");
}

TEST_F(PantherctlConnectionLiveTest, SendsNoAuthorizationWithoutToken) {
  ASSERT_TRUE(server_.ok());
  auto conn = OpenWith("");
  ASSERT_TRUE(conn.ok()) << conn.status();
  pantherd::v1::WhoAmIResponse response;
  ASSERT_TRUE((*conn)
                  ->Call("WhoAmI", &Connection::AdminStub::WhoAmI, (*conn)->admin(),
                         pantherd::v1::WhoAmIRequest(), &response)
                  .ok());
  std::lock_guard<std::mutex> lock(admin_.mu);
  EXPECT_EQ(admin_.last_authorization, "<none>");
}

TEST_F(PantherctlConnectionLiveTest, AppliesTheDeadline) {
  ASSERT_TRUE(server_.ok());
  admin_.whoami_delay = absl::Seconds(2);
  auto conn = OpenWith("", absl::Milliseconds(200));
  ASSERT_TRUE(conn.ok()) << conn.status();
  pantherd::v1::WhoAmIResponse response;
  absl::Status status = (*conn)->Call("WhoAmI", &Connection::AdminStub::WhoAmI, (*conn)->admin(),
                                      pantherd::v1::WhoAmIRequest(), &response);
  EXPECT_EQ(status.code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_THAT(std::string(status.message()), HasSubstr("(timeout 200ms; see --timeout)"));
}

TEST_F(PantherctlConnectionLiveTest, MapsServerErrorsToOneLine) {
  ASSERT_TRUE(server_.ok());
  auto conn = OpenWith("");
  ASSERT_TRUE(conn.ok()) << conn.status();
  const Connection& c = **conn;

  absl::Status s = c.ToStatus(
      "ListAlerts", grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "ListAlerts is not implemented"));
  EXPECT_EQ(s.code(), absl::StatusCode::kUnimplemented);
  EXPECT_EQ(std::string(s.message()), "ListAlerts is not implemented");

  s = c.ToStatus("GetRule", grpc::Status(grpc::StatusCode::NOT_FOUND, ""));
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(std::string(s.message()), "GetRule failed (not found)");

  s = c.ToStatus("GetRule", grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "bad\nid"));
  EXPECT_EQ(std::string(s.message()), "bad id");

  s = c.ToStatus("UploadRule",
                 grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, "1 test failed"));
  EXPECT_EQ(std::string(s.message()), "1 test failed");

  s = c.ToStatus("WhoAmI", grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "missing token"));
  EXPECT_EQ(std::string(s.message()),
            "not authenticated: missing token (no token given; run pantherctl login, or use "
            "--token-file or PANTHER_TOKEN)");

  s = c.ToStatus("WhoAmI", grpc::Status(grpc::StatusCode::UNAVAILABLE,
                                        "failed to connect to all addresses; last error: "
                                        "UNKNOWN: ipv4:127.0.0.1:9: Failed to connect to remote "
                                        "host: Connection refused"));
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(std::string(s.message()),
            absl::StrCat("cannot reach pantherd at ", server_.address(), " (connection refused)"));

  s = c.ToStatus("WhoAmI", grpc::Status(grpc::StatusCode::UNAVAILABLE, "shutting down"));
  EXPECT_EQ(std::string(s.message()), "shutting down");

  EXPECT_TRUE(c.ToStatus("WhoAmI", grpc::Status::OK).ok());
}

}  // namespace
}  // namespace pantherd::client
