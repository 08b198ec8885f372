// File: server/metrics_http.h
//
// The --metrics-listen endpoint: a minimal HTTP/1.1 server on its own thread
// that answers `GET /metrics` (and HEAD) with the Prometheus text of
// server/metrics.h, 404 for any other path, 405 for other methods.
//
//   auto http = MetricsHttpServer::Start("127.0.0.1:0", [&] { return Render(); });
//   // (*http)->address() is "127.0.0.1:<bound port>"
//
// Many connections at once, none able to hold the others up: one thread runs
// a poll() loop over non-blocking sockets (no thread per connection). Bounded
// by construction:
//  - at most max_connections open connections. When a new connection arrives
//    and all are taken, one is closed to make room: the oldest of those
//    already answered (only draining), else the oldest of all, which then
//    goes without an answer and is counted in evicted() and failed(). New
//    connections are never refused, so idle connections cannot lock a scraper
//    out: each new client displaces the oldest one;
//  - a request of at most max_request_bytes (else 431);
//  - one deadline per connection, io_timeout after it was accepted, for
//    sending the request and taking the answer; at the deadline the
//    connection is closed (a slow-loris client that sends a byte at a time is
//    cut off then).
// Every request answered and every connection refused or abandoned is
// counted. Each connection gets one answer and is closed (Connection: close).
//
// Why not prometheus-cpp's pull server (Debian's prometheus-cpp-dev 1.0,
// its Exposer over civetweb): it serves one connection per thread, and a
// connection that sends nothing holds its thread for civetweb's 30 s request
// timeout. Measured on loopback with a scrape after N idle connections:
// 2 threads (its default) and 2 idle connections, answered after 29.8 s; 4
// idle, 59.9 s; 8 threads and 8 idle, 29.8 s; 64 threads and 100 idle, 29.9
// s. Four idle connections stopping /metrics is the attack this endpoint
// must withstand (docs/security.md); here the scrape is answered at once with
// 100 idle connections open (server_metrics_test). The text format itself is
// written by server/metrics.cc.
//
// No authentication and no TLS: the figures name every rule id and source
// label. Bind it to loopback (the documented default), or put it behind a
// proxy that authenticates.
#ifndef PANTHERD_SERVER_METRICS_HTTP_H_
#define PANTHERD_SERVER_METRICS_HTTP_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace pantherd::server {

struct MetricsHttpOptions {
  // Largest request (request line and headers) read; beyond, 431.
  size_t max_request_bytes = 8192;
  // Time a connection has, from being accepted, to send its request and take
  // the answer.
  absl::Duration io_timeout = absl::Seconds(2);
  // Open connections at most; a new one beyond closes the oldest.
  int max_connections = 64;
};

class MetricsHttpServer {
 public:
  // Connections the kernel queues until the serving thread accepts them.
  static constexpr int kListenBacklog = 64;

  // Binds `address` (host:port or [v6]:port; port 0 picks a free one) and
  // starts the serving thread. `options.max_connections` below 1 counts as 1.
  // `render` produces the body of each
  // GET /metrics; it runs on the serving thread and must not block for long
  // (no Python, no disk). Errors: InvalidArgument for an address that is not
  // host:port; Unavailable when it cannot be resolved or bound (in use).
  static absl::StatusOr<std::unique_ptr<MetricsHttpServer>> Start(
      const std::string& address, std::function<std::string()> render,
      MetricsHttpOptions options = {});

  // Stops (see Stop).
  ~MetricsHttpServer();

  MetricsHttpServer(const MetricsHttpServer&) = delete;
  MetricsHttpServer& operator=(const MetricsHttpServer&) = delete;

  // Stops accepting, closes every open connection (whatever it was doing),
  // joins the thread and closes the listening socket (connections still
  // queued are refused). Returns promptly: it does not wait for deadlines.
  // Idempotent; not to be called from `render`.
  void Stop();

  // The bound address, host:port with the actual port.
  const std::string& address() const { return address_; }

  // Requests answered (200, and 400/404/405 for bad ones), and connections
  // refused (431: oversized request) or abandoned (no complete request or
  // answer taken before the deadline, peer gone, closed to make room).
  // evicted() counts the connections closed to make room for a new one (part
  // of failed()). Each is counted before the connection is closed.
  // Thread-safe.
  int64_t answered() const { return answered_.load(); }
  int64_t failed() const { return failed_.load(); }
  int64_t evicted() const { return evicted_.load(); }

 private:
  MetricsHttpServer(int listen_fd, int wake_read, int wake_write, std::string address,
                    std::function<std::string()> render, MetricsHttpOptions options);
  struct Connection;
  // The serving thread: the poll() loop, until Stop.
  void Loop();
  // Reads what `c` sent; once the request is complete (or too large), builds
  // its answer. False when the connection is to be closed.
  bool OnReadable(Connection& c);
  // Sends more of the answer; after the last byte, counts it and half-closes.
  bool OnWritable(Connection& c);
  // After the answer: reads and drops what the peer still sends, so that
  // closing does not reset the connection before the peer has read the answer.
  bool OnDrainable(Connection& c);
  // Counts a connection closed before its answer was sent, and closes it.
  void Abandon(Connection& c);

  int listen_fd_;  // closed by Stop (after the thread is joined)
  const int wake_read_;
  const int wake_write_;
  const std::string address_;
  const std::function<std::string()> render_;
  const MetricsHttpOptions options_;
  std::atomic<int64_t> answered_{0};
  std::atomic<int64_t> failed_{0};
  std::atomic<int64_t> evicted_{0};
  std::atomic<bool> stopped_{false};
  std::thread thread_;
};

}  // namespace pantherd::server

#endif  // PANTHERD_SERVER_METRICS_HTTP_H_
