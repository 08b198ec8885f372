#include "server/metrics_http.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "server/metrics.h"

namespace pantherd::server {
namespace {

// Milliseconds left until `deadline`, for poll() (0 when past).
int MillisUntil(absl::Time deadline) {
  const absl::Duration left = deadline - absl::Now();
  if (left <= absl::ZeroDuration()) return 0;
  return static_cast<int>(std::min<int64_t>(absl::ToInt64Milliseconds(left) + 1, 60000));
}

// Waits until `fd` is ready for `events`, `wake` is readable (stop), or the
// deadline passes. True only when `fd` is ready.
bool WaitReady(int fd, short events, int wake, absl::Time deadline) {
  for (;;) {
    pollfd fds[2] = {{fd, events, 0}, {wake, POLLIN, 0}};
    const int timeout = MillisUntil(deadline);
    const int n = poll(fds, 2, timeout);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    if (fds[1].revents != 0) return false;
    if (fds[0].revents != 0) return true;
    if (timeout == 0) return false;
  }
}

std::string Response(absl::string_view status, absl::string_view content_type,
                     absl::string_view body, bool head, absl::string_view extra_headers = "") {
  std::string out = absl::StrCat("HTTP/1.1 ", status, "\r\nContent-Type: ", content_type,
                                 "\r\nContent-Length: ", body.size(), "\r\n", extra_headers,
                                 "Connection: close\r\n\r\n");
  if (!head) absl::StrAppend(&out, body);
  return out;
}

// Splits "host:port" / "[v6]:port" into host (brackets removed) and port.
absl::Status SplitHostPort(absl::string_view address, std::string* host, std::string* port) {
  const size_t colon = address.rfind(':');
  int number = -1;
  if (colon == absl::string_view::npos || colon == 0 ||
      !absl::SimpleAtoi(address.substr(colon + 1), &number) || number < 0 || number > 65535 ||
      address.substr(colon + 1).find_first_not_of("0123456789") != absl::string_view::npos) {
    return absl::InvalidArgumentError(absl::StrCat(
        "metrics listen address \"", address, "\" is not host:port with a port from 0 to 65535"));
  }
  absl::string_view h = address.substr(0, colon);
  if (absl::StartsWith(h, "[") && absl::EndsWith(h, "]")) h = h.substr(1, h.size() - 2);
  *host = std::string(h);
  *port = std::string(address.substr(colon + 1));
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<MetricsHttpServer>> MetricsHttpServer::Start(
    const std::string& address, std::function<std::string()> render, MetricsHttpOptions options) {
  std::string host, port;
  if (absl::Status s = SplitHostPort(address, &host, &port); !s.ok()) return s;
  addrinfo hints = {};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* found = nullptr;
  const int rc = getaddrinfo(host.c_str(), port.c_str(), &hints, &found);
  if (rc != 0) {
    return absl::UnavailableError(
        absl::StrCat("metrics listen address ", address, ": ", gai_strerror(rc)));
  }
  int fd = -1;
  std::string error = "no address";
  for (addrinfo* ai = found; ai != nullptr && fd < 0; ai = ai->ai_next) {
    fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) {
      error = strerror(errno);
      continue;
    }
    const int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, kListenBacklog) != 0) {
      error = strerror(errno);
      close(fd);
      fd = -1;
    }
  }
  freeaddrinfo(found);
  if (fd < 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen for metrics on ", address, ": ", error));
  }
  sockaddr_storage bound = {};
  socklen_t length = sizeof(bound);
  int bound_port = 0;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &length) == 0) {
    if (bound.ss_family == AF_INET) {
      bound_port = ntohs(reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
    } else if (bound.ss_family == AF_INET6) {
      bound_port = ntohs(reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port);
    }
  }
  int wake[2];
  if (pipe2(wake, O_CLOEXEC | O_NONBLOCK) != 0) {
    const std::string why = strerror(errno);
    close(fd);
    return absl::UnavailableError(absl::StrCat("metrics endpoint: pipe: ", why));
  }
  const size_t colon = address.rfind(':');
  std::string actual = absl::StrCat(address.substr(0, colon), ":", bound_port);
  return std::unique_ptr<MetricsHttpServer>(new MetricsHttpServer(
      fd, wake[0], wake[1], std::move(actual), std::move(render), std::move(options)));
}

MetricsHttpServer::MetricsHttpServer(int listen_fd, int wake_read, int wake_write,
                                     std::string address, std::function<std::string()> render,
                                     MetricsHttpOptions options)
    : listen_fd_(listen_fd),
      wake_read_(wake_read),
      wake_write_(wake_write),
      address_(std::move(address)),
      render_(std::move(render)),
      options_(std::move(options)) {
  thread_ = std::thread([this] { Loop(); });
}

MetricsHttpServer::~MetricsHttpServer() {
  Stop();
  close(wake_read_);
  close(wake_write_);
}

void MetricsHttpServer::Stop() {
  if (stopped_.exchange(true)) return;
  const char byte = 1;
  ssize_t written = write(wake_write_, &byte, 1);
  (void)written;  // The pipe is empty: one byte always fits.
  if (thread_.joinable()) thread_.join();
  close(listen_fd_);
  listen_fd_ = -1;
}

void MetricsHttpServer::Loop() {
  for (;;) {
    pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {wake_read_, POLLIN, 0}};
    const int n = poll(fds, 2, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (fds[1].revents != 0) return;
    if ((fds[0].revents & POLLIN) == 0) continue;
    const int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0) continue;  // e.g. the peer gave up already
    Serve(fd);
  }
}

void MetricsHttpServer::Serve(int fd) {
  const absl::Time deadline = absl::Now() + options_.io_timeout;
  std::string request;
  size_t header_end = std::string::npos;
  bool too_large = false;
  char buffer[2048];
  for (;;) {
    if (!WaitReady(fd, POLLIN, wake_read_, deadline)) break;
    const ssize_t got = recv(fd, buffer, sizeof(buffer), 0);
    if (got < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)) continue;
    if (got <= 0) break;
    request.append(buffer, static_cast<size_t>(got));
    header_end = std::min(request.find("\r\n\r\n"), request.find("\n\n"));
    if (header_end != std::string::npos) {
      too_large = header_end > options_.max_request_bytes;
      break;
    }
    if (request.size() > options_.max_request_bytes) {
      too_large = true;
      break;
    }
  }
  const bool complete = header_end != std::string::npos && !too_large;

  std::string answer;
  if (too_large) {
    answer = Response("431 Request Header Fields Too Large", "text/plain; charset=utf-8",
                      "request too large\n", false);
  } else if (!complete) {
    failed_.fetch_add(1);
    close(fd);
    return;
  } else {
    const absl::string_view line =
        absl::string_view(request).substr(0, request.find_first_of("\r\n"));
    std::vector<absl::string_view> parts = absl::StrSplit(line, ' ');
    if (parts.size() != 3 || !absl::StartsWith(parts[2], "HTTP/1.") || parts[1].empty() ||
        parts[1][0] != '/') {
      answer = Response("400 Bad Request", "text/plain; charset=utf-8", "malformed request line\n",
                        false);
    } else {
      const bool head = parts[0] == "HEAD";
      const absl::string_view path = parts[1].substr(0, parts[1].find('?'));
      if (parts[0] != "GET" && !head) {
        answer = Response("405 Method Not Allowed", "text/plain; charset=utf-8",
                          "only GET and HEAD\n", false, "Allow: GET, HEAD\r\n");
      } else if (path != "/metrics") {
        answer = Response("404 Not Found", "text/plain; charset=utf-8",
                          "not found; the metrics are at /metrics\n", head);
      } else {
        answer = Response("200 OK", kPrometheusContentType, render_(), head);
      }
    }
  }

  size_t sent = 0;
  while (sent < answer.size()) {
    if (!WaitReady(fd, POLLOUT, wake_read_, deadline)) break;
    const ssize_t n = send(fd, answer.data() + sent, answer.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)) continue;
    if (n <= 0) break;
    sent += static_cast<size_t>(n);
  }
  if (sent == answer.size() && !too_large) {
    answered_.fetch_add(1);
  } else {
    failed_.fetch_add(1);
  }
  // Half-close, then read what the peer still sends (bounded by the same
  // deadline and size) so that closing does not reset the connection before
  // the peer has read the answer.
  shutdown(fd, SHUT_WR);
  size_t drained = 0;
  while (drained <= options_.max_request_bytes && WaitReady(fd, POLLIN, wake_read_, deadline)) {
    const ssize_t n = recv(fd, buffer, sizeof(buffer), 0);
    if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)) continue;
    if (n <= 0) break;
    drained += static_cast<size_t>(n);
  }
  close(fd);
}

}  // namespace pantherd::server
