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
    // Non-blocking: the loop accepts until EAGAIN.
    fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
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

struct MetricsHttpServer::Connection {
  enum class Phase { kReading, kWriting, kDraining };
  int fd = -1;
  absl::Time accepted;
  absl::Time deadline;
  Phase phase = Phase::kReading;
  std::string request;
  std::string answer;
  size_t sent = 0;
  size_t drained = 0;
  // The answer is a refusal (431): counted as failed once sent.
  bool refusal = false;
};

void MetricsHttpServer::Loop() {
  const size_t cap = static_cast<size_t>(std::max(1, options_.max_connections));
  std::vector<Connection> connections;
  std::vector<pollfd> fds;
  // After accept() failed for lack of descriptors or memory, the listening
  // socket is not polled until then (it would stay readable and spin).
  absl::Time accept_paused_until = absl::InfinitePast();
  for (;;) {
    const absl::Time now = absl::Now();
    // Connections past their deadline are closed first.
    for (Connection& c : connections) {
      if (c.fd >= 0 && now >= c.deadline) {
        if (c.phase == Connection::Phase::kDraining) {
          close(c.fd);
          c.fd = -1;
        } else {
          Abandon(c);
        }
      }
    }
    connections.erase(std::remove_if(connections.begin(), connections.end(),
                                     [](const Connection& c) { return c.fd < 0; }),
                      connections.end());

    absl::Time wake_at = absl::InfiniteFuture();
    for (const Connection& c : connections) wake_at = std::min(wake_at, c.deadline);
    const bool accepting = now >= accept_paused_until;
    if (!accepting) wake_at = std::min(wake_at, accept_paused_until);
    fds.clear();
    fds.push_back({wake_read_, POLLIN, 0});
    fds.push_back({accepting ? listen_fd_ : -1, POLLIN, 0});
    for (const Connection& c : connections) {
      fds.push_back(
          {c.fd, static_cast<short>(c.phase == Connection::Phase::kWriting ? POLLOUT : POLLIN), 0});
    }
    const int timeout = wake_at == absl::InfiniteFuture() ? -1 : MillisUntil(wake_at);
    const int n = poll(fds.data(), fds.size(), timeout);
    if (n < 0 && errno != EINTR) break;
    if (n <= 0) continue;
    if (fds[0].revents != 0) break;  // Stop

    for (size_t i = 0; i < connections.size(); ++i) {
      const short revents = fds[i + 2].revents;
      if (revents == 0) continue;
      Connection& c = connections[i];
      bool keep = true;
      switch (c.phase) {
        case Connection::Phase::kReading:
          keep = OnReadable(c);
          // A complete request is answered at once: most answers fit the
          // socket buffer, so they need no second round.
          if (keep && c.phase == Connection::Phase::kWriting) keep = OnWritable(c);
          break;
        case Connection::Phase::kWriting:
          keep = OnWritable(c);
          break;
        case Connection::Phase::kDraining:
          keep = OnDrainable(c);
          break;
      }
      if (!keep) {
        close(c.fd);
        c.fd = -1;
      }
    }
    connections.erase(std::remove_if(connections.begin(), connections.end(),
                                     [](const Connection& c) { return c.fd < 0; }),
                      connections.end());

    if ((fds[1].revents & POLLIN) == 0) continue;
    // Accepts what is queued, a bounded number per round so that the open
    // connections are served in between.
    for (size_t accepted = 0; accepted < cap; ++accepted) {
      const int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
      if (fd < 0) {
        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
          accept_paused_until = absl::Now() + absl::Milliseconds(100);
        }
        break;  // EAGAIN: nothing more queued; others: the peer gave up already
      }
      if (connections.size() >= cap) {
        // Make room: the oldest already answered, else the oldest of all
        // (connections are kept in the order they were accepted).
        auto victim = std::find_if(connections.begin(), connections.end(), [](const Connection& c) {
          return c.phase == Connection::Phase::kDraining;
        });
        if (victim == connections.end()) {
          victim = connections.begin();
          evicted_.fetch_add(1);
          Abandon(*victim);
        } else {
          close(victim->fd);
        }
        connections.erase(victim);
      }
      Connection c;
      c.fd = fd;
      c.accepted = absl::Now();
      c.deadline = c.accepted + options_.io_timeout;
      connections.push_back(std::move(c));
    }
  }
  // Stopped (or poll failed): every open connection ends without an answer.
  for (Connection& c : connections) {
    if (c.phase == Connection::Phase::kDraining) {
      close(c.fd);
    } else {
      Abandon(c);
    }
  }
}

void MetricsHttpServer::Abandon(Connection& c) {
  failed_.fetch_add(1);
  close(c.fd);
  c.fd = -1;
}

bool MetricsHttpServer::OnReadable(Connection& c) {
  char buffer[2048];
  size_t header_end = std::string::npos;
  bool too_large = false;
  for (;;) {
    const ssize_t got = recv(c.fd, buffer, sizeof(buffer), 0);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return true;  // more later
    if (got <= 0) {  // peer gone before a complete request
      failed_.fetch_add(1);
      return false;
    }
    c.request.append(buffer, static_cast<size_t>(got));
    header_end = std::min(c.request.find("\r\n\r\n"), c.request.find("\n\n"));
    if (header_end != std::string::npos) {
      too_large = header_end > options_.max_request_bytes;
      break;
    }
    if (c.request.size() > options_.max_request_bytes) {
      too_large = true;
      break;
    }
  }

  c.phase = Connection::Phase::kWriting;
  if (too_large) {
    c.refusal = true;
    c.answer = Response("431 Request Header Fields Too Large", "text/plain; charset=utf-8",
                        "request too large\n", false);
    return true;
  }
  const absl::string_view line =
      absl::string_view(c.request).substr(0, c.request.find_first_of("\r\n"));
  std::vector<absl::string_view> parts = absl::StrSplit(line, ' ');
  if (parts.size() != 3 || !absl::StartsWith(parts[2], "HTTP/1.") || parts[1].empty() ||
      parts[1][0] != '/') {
    c.answer =
        Response("400 Bad Request", "text/plain; charset=utf-8", "malformed request line\n", false);
    return true;
  }
  const bool head = parts[0] == "HEAD";
  const absl::string_view path = parts[1].substr(0, parts[1].find('?'));
  if (parts[0] != "GET" && !head) {
    c.answer = Response("405 Method Not Allowed", "text/plain; charset=utf-8",
                        "only GET and HEAD\n", false, "Allow: GET, HEAD\r\n");
  } else if (path != "/metrics") {
    c.answer = Response("404 Not Found", "text/plain; charset=utf-8",
                        "not found; the metrics are at /metrics\n", head);
  } else {
    c.answer = Response("200 OK", kPrometheusContentType, render_(), head);
  }
  return true;
}

bool MetricsHttpServer::OnWritable(Connection& c) {
  while (c.sent < c.answer.size()) {
    const ssize_t n = send(c.fd, c.answer.data() + c.sent, c.answer.size() - c.sent, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return true;  // more later
    if (n <= 0) {                                                         // peer gone
      failed_.fetch_add(1);
      return false;
    }
    c.sent += static_cast<size_t>(n);
  }
  if (c.refusal) {
    failed_.fetch_add(1);
  } else {
    answered_.fetch_add(1);
  }
  // Half-close, then drain (bounded by the same deadline and size).
  shutdown(c.fd, SHUT_WR);
  c.phase = Connection::Phase::kDraining;
  c.request.clear();
  c.request.shrink_to_fit();
  c.answer.clear();
  c.answer.shrink_to_fit();
  return true;
}

bool MetricsHttpServer::OnDrainable(Connection& c) {
  char buffer[2048];
  for (;;) {
    const ssize_t n = recv(c.fd, buffer, sizeof(buffer), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return true;
    if (n <= 0) return false;  // the peer closed too: done
    c.drained += static_cast<size_t>(n);
    if (c.drained > options_.max_request_bytes) return false;
  }
}

}  // namespace pantherd::server
