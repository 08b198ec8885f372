// Tests of server/metrics_http.h over real sockets on 127.0.0.1.
#include "server/metrics_http.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace pantherd::server {
namespace {

using ::testing::EndsWith;
using ::testing::HasSubstr;
using ::testing::StartsWith;

// Connects to 127.0.0.1:`port`; -1 on failure. Reads time out after 10 s so
// that a broken server fails the test instead of hanging it.
int Connect(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  timeval tv{10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

std::string ReadAll(int fd) {
  std::string out;
  char buf[4096];
  for (;;) {
    const ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

// Sends `request` and returns everything the server answers until it closes.
std::string Exchange(int port, const std::string& request) {
  const int fd = Connect(port);
  EXPECT_GE(fd, 0);
  if (fd < 0) return "";
  size_t sent = 0;
  while (sent < request.size()) {
    const ssize_t n = send(fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) break;
    sent += static_cast<size_t>(n);
  }
  std::string answer = ReadAll(fd);
  close(fd);
  return answer;
}

int PortOf(const MetricsHttpServer& server) {
  int port = 0;
  const std::string& a = server.address();
  EXPECT_TRUE(absl::SimpleAtoi(a.substr(a.rfind(':') + 1), &port)) << a;
  return port;
}

class MetricsHttpTest : public ::testing::Test {
 protected:
  void StartServer(MetricsHttpOptions options = {}) {
    absl::StatusOr<std::unique_ptr<MetricsHttpServer>> s = MetricsHttpServer::Start(
        "127.0.0.1:0", [this] { return absl::StrCat("pantherd_test_total ", ++renders_, "\n"); },
        options);
    ASSERT_TRUE(s.ok()) << s.status();
    server_ = std::move(*s);
    port_ = PortOf(*server_);
    ASSERT_GT(port_, 0);
  }
  std::atomic<int> renders_{0};
  std::unique_ptr<MetricsHttpServer> server_;
  int port_ = 0;
};

TEST_F(MetricsHttpTest, ServesMetricsWithThePrometheusContentType) {
  StartServer();
  EXPECT_THAT(server_->address(), StartsWith("127.0.0.1:"));
  std::string answer = Exchange(port_, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_THAT(answer, StartsWith("HTTP/1.1 200 OK\r\n"));
  EXPECT_THAT(answer, HasSubstr("Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"));
  EXPECT_THAT(answer, HasSubstr("Content-Length: 22\r\n"));
  EXPECT_THAT(answer, HasSubstr("Connection: close\r\n"));
  EXPECT_THAT(answer, EndsWith("\r\n\r\npantherd_test_total 1\n"));
  // Each request renders afresh; a query string is ignored.
  answer = Exchange(port_, "GET /metrics?x=1 HTTP/1.0\r\n\r\n");
  EXPECT_THAT(answer, EndsWith("pantherd_test_total 2\n"));
  EXPECT_EQ(server_->answered(), 2);
  EXPECT_EQ(server_->failed(), 0);
}

TEST_F(MetricsHttpTest, HeadHasHeadersOnly) {
  StartServer();
  std::string answer = Exchange(port_, "HEAD /metrics HTTP/1.1\r\n\r\n");
  EXPECT_THAT(answer, StartsWith("HTTP/1.1 200 OK\r\n"));
  EXPECT_THAT(answer, EndsWith("\r\n\r\n"));
}

TEST_F(MetricsHttpTest, OtherPathsMethodsAndGarbage) {
  StartServer();
  EXPECT_THAT(Exchange(port_, "GET / HTTP/1.1\r\n\r\n"), StartsWith("HTTP/1.1 404 Not Found"));
  EXPECT_THAT(Exchange(port_, "GET /metrics/x HTTP/1.1\r\n\r\n"),
              StartsWith("HTTP/1.1 404 Not Found"));
  std::string answer = Exchange(port_, "POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
  EXPECT_THAT(answer, StartsWith("HTTP/1.1 405 Method Not Allowed"));
  EXPECT_THAT(answer, HasSubstr("Allow: GET, HEAD\r\n"));
  EXPECT_THAT(Exchange(port_, "hello\r\n\r\n"), StartsWith("HTTP/1.1 400 Bad Request"));
  EXPECT_EQ(renders_.load(), 0);  // None of them rendered the figures.
  EXPECT_EQ(server_->answered(), 4);
}

TEST_F(MetricsHttpTest, OversizedRequestIsRefused) {
  MetricsHttpOptions options;
  options.max_request_bytes = 256;
  StartServer(options);
  std::string request = "GET /metrics HTTP/1.1\r\nX-Pad: " + std::string(1000, 'a') + "\r\n\r\n";
  EXPECT_THAT(Exchange(port_, request), StartsWith("HTTP/1.1 431 "));
  EXPECT_EQ(server_->failed(), 1);
  EXPECT_EQ(renders_.load(), 0);
  // The next client is served normally.
  EXPECT_THAT(Exchange(port_, "GET /metrics HTTP/1.1\r\n\r\n"), StartsWith("HTTP/1.1 200 OK"));
}

TEST_F(MetricsHttpTest, SilentClientIsDroppedAtTheDeadlineAndOthersAreServed) {
  MetricsHttpOptions options;
  options.io_timeout = absl::Milliseconds(200);
  StartServer(options);
  const int silent = Connect(port_);
  ASSERT_GE(silent, 0);
  // Served after the silent one was given up on (one connection at a time).
  EXPECT_THAT(Exchange(port_, "GET /metrics HTTP/1.1\r\n\r\n"), StartsWith("HTTP/1.1 200 OK"));
  // The silent connection was closed without an answer.
  EXPECT_EQ(ReadAll(silent), "");
  close(silent);
  EXPECT_EQ(server_->failed(), 1);
  EXPECT_EQ(server_->answered(), 1);
}

TEST_F(MetricsHttpTest, StopEndsAConnectionBeingServed) {
  MetricsHttpOptions options;
  options.io_timeout = absl::Hours(1);
  StartServer(options);
  const int silent = Connect(port_);
  ASSERT_GE(silent, 0);
  send(silent, "GET /met", 8, MSG_NOSIGNAL);  // an unfinished request
  server_->Stop();                            // returns although the request never completes
  EXPECT_EQ(ReadAll(silent), "");
  close(silent);
  server_->Stop();               // idempotent
  EXPECT_LT(Connect(port_), 0);  // nothing listens any more
}

TEST(MetricsHttpStartTest, BadAddressesAreErrors) {
  auto render = [] { return std::string(); };
  absl::StatusOr<std::unique_ptr<MetricsHttpServer>> s = MetricsHttpServer::Start("9464", render);
  ASSERT_FALSE(s.ok());
  EXPECT_TRUE(absl::IsInvalidArgument(s.status())) << s.status();
  s = MetricsHttpServer::Start("127.0.0.1:99999", render);
  EXPECT_TRUE(absl::IsInvalidArgument(s.status())) << s.status();

  absl::StatusOr<std::unique_ptr<MetricsHttpServer>> first =
      MetricsHttpServer::Start("127.0.0.1:0", render);
  ASSERT_TRUE(first.ok()) << first.status();
  s = MetricsHttpServer::Start((*first)->address(), render);
  ASSERT_FALSE(s.ok());
  EXPECT_TRUE(absl::IsUnavailable(s.status())) << s.status();
  EXPECT_THAT(s.status().message(), HasSubstr((*first)->address()));
}

TEST(MetricsHttpStartTest, Ipv6Loopback) {
  absl::StatusOr<std::unique_ptr<MetricsHttpServer>> s =
      MetricsHttpServer::Start("[::1]:0", [] { return std::string("x 1\n"); });
  if (!s.ok()) GTEST_SKIP() << "no IPv6 loopback here: " << s.status();
  EXPECT_THAT((*s)->address(), StartsWith("[::1]:"));
  EXPECT_GT(PortOf(**s), 0);
}

}  // namespace
}  // namespace pantherd::server
