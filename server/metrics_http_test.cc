// Tests of server/metrics_http.h over real sockets on 127.0.0.1.
#include "server/metrics_http.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace pantherd::server {
namespace {

using ::testing::EndsWith;
using ::testing::HasSubstr;
using ::testing::StartsWith;

// Connects to 127.0.0.1:`port`; -1 on failure. Connecting, sending and each
// read time out after 10 s so that a broken server fails the test instead of
// hanging it.
int Connect(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  timeval tv{10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
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
  // Served while the silent one is still open.
  EXPECT_THAT(Exchange(port_, "GET /metrics HTTP/1.1\r\n\r\n"), StartsWith("HTTP/1.1 200 OK"));
  // The silent connection is closed without an answer at its deadline.
  EXPECT_EQ(ReadAll(silent), "");
  close(silent);
  EXPECT_EQ(server_->failed(), 1);
  EXPECT_EQ(server_->answered(), 1);
}

// Issue 14, row 10: four idle connections used to stop /metrics answering for
// their whole deadline (one connection at a time). With a 60 s deadline, the
// old design would leave the fifth client unanswered until its own 10 s read
// timeout; now it is answered at once.
TEST_F(MetricsHttpTest, FourIdleConnectionsDoNotHoldUpAScrape) {
  MetricsHttpOptions options;
  options.io_timeout = absl::Seconds(60);
  StartServer(options);
  std::vector<int> idle;
  for (int i = 0; i < 4; ++i) {
    const int fd = Connect(port_);
    ASSERT_GE(fd, 0);
    if (i % 2 == 1) send(fd, "GET /metr", 9, MSG_NOSIGNAL);  // half a request
    idle.push_back(fd);
  }
  const absl::Time start = absl::Now();
  std::string answer = Exchange(port_, "GET /metrics HTTP/1.1\r\n\r\n");
  EXPECT_THAT(answer, StartsWith("HTTP/1.1 200 OK"));
  EXPECT_THAT(answer, EndsWith("pantherd_test_total 1\n"));
  EXPECT_LT(absl::Now() - start, absl::Seconds(10));
  EXPECT_EQ(server_->answered(), 1);
  EXPECT_EQ(server_->failed(), 0);  // The idle ones are still open, within their deadline.
  EXPECT_EQ(server_->evicted(), 0);
  for (int fd : idle) close(fd);
}

// More idle connections than the cap: the oldest are closed to make room,
// and a scraper arriving after all of them is still answered.
TEST_F(MetricsHttpTest, MoreIdleConnectionsThanTheCapEvictTheOldest) {
  MetricsHttpOptions options;
  options.io_timeout = absl::Seconds(60);
  StartServer(options);
  ASSERT_EQ(options.max_connections, 64);
  constexpr int kIdle = 100;
  std::vector<int> idle;
  for (int i = 0; i < kIdle; ++i) {
    const int fd = Connect(port_);
    ASSERT_GE(fd, 0) << i;
    if (i % 2 == 1) send(fd, "GET /metrics HTTP/1.1\r\nHost", 27, MSG_NOSIGNAL);
    idle.push_back(fd);
  }
  std::string answer = Exchange(port_, "GET /metrics HTTP/1.1\r\n\r\n");
  EXPECT_THAT(answer, StartsWith("HTTP/1.1 200 OK"));
  // 100 idle and the scraper: 37 closed to keep 64 open.
  EXPECT_EQ(server_->evicted(), kIdle + 1 - 64);
  EXPECT_EQ(server_->failed(), kIdle + 1 - 64);
  EXPECT_EQ(server_->answered(), 1);
  // The oldest were closed without an answer (EOF now, not after the 10 s
  // read timeout); the newest are still open.
  const absl::Time start = absl::Now();
  EXPECT_EQ(ReadAll(idle.front()), "");
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
  pollfd newest{idle.back(), POLLIN, 0};
  EXPECT_EQ(poll(&newest, 1, 0), 0);
  for (int fd : idle) close(fd);
  // The endpoint keeps serving.
  EXPECT_THAT(Exchange(port_, "GET /metrics HTTP/1.1\r\n\r\n"), StartsWith("HTTP/1.1 200 OK"));
}

// A slow-loris client sending one byte at a time (never finishing its
// headers, never reaching the size limit) is cut off at its deadline.
TEST_F(MetricsHttpTest, SlowLorisIsCutOffAtTheDeadline) {
  MetricsHttpOptions options;
  options.io_timeout = absl::Milliseconds(500);
  StartServer(options);
  const int fd = Connect(port_);
  ASSERT_GE(fd, 0);
  const std::string request = "GET /metrics HTTP/1.1\r\nX-Slow: " + std::string(4000, 'a');
  const absl::Time start = absl::Now();
  bool cut = false;
  size_t sent = 0;
  while (!cut && sent < request.size() && absl::Now() - start < absl::Seconds(10)) {
    if (send(fd, request.data() + sent, 1, MSG_NOSIGNAL) != 1) {
      cut = true;
      break;
    }
    ++sent;
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 20) == 1) {
      char byte;
      cut = recv(fd, &byte, 1, 0) <= 0;  // EOF or reset: closed by the server
    }
  }
  close(fd);
  EXPECT_TRUE(cut) << "still open after " << sent << " bytes";
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(400));
  EXPECT_LT(sent, request.size());
  EXPECT_EQ(server_->failed(), 1);
  EXPECT_EQ(server_->answered(), 0);
  EXPECT_EQ(renders_.load(), 0);
  // Meanwhile and after, others are served.
  EXPECT_THAT(Exchange(port_, "GET /metrics HTTP/1.1\r\n\r\n"), StartsWith("HTTP/1.1 200 OK"));
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
