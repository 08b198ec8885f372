// File: server/metrics_http.h
//
// The --metrics-listen endpoint: a minimal HTTP/1.1 server on its own thread
// that answers `GET /metrics` (and HEAD) with the Prometheus text of
// server/metrics.h, 404 for any other path, 405 for other methods.
//
//   auto http = MetricsHttpServer::Start("127.0.0.1:0", [&] { return Render(); });
//   // (*http)->address() is "127.0.0.1:<bound port>"
//
// Bounded by construction: one connection at a time (others wait in the
// kernel's listen backlog of kListenBacklog; beyond it the kernel refuses
// them), a request of at most max_request_bytes (else 431), and one deadline
// of io_timeout for reading the request and writing the answer (else the
// connection is closed). Every request answered and every one refused or
// abandoned is counted. Each connection gets one answer and is closed
// (Connection: close).
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
  // Time a connection has to send its request and take the answer.
  absl::Duration io_timeout = absl::Seconds(5);
};

class MetricsHttpServer {
 public:
  // Connections the kernel queues while one is being served.
  static constexpr int kListenBacklog = 16;

  // Binds `address` (host:port or [v6]:port; port 0 picks a free one) and
  // starts the serving thread. `render` produces the body of each
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

  // Stops accepting, ends the connection being served (if any), joins the
  // thread and closes the listening socket (connections still queued are
  // refused). Idempotent; not to be called from `render`.
  void Stop();

  // The bound address, host:port with the actual port.
  const std::string& address() const { return address_; }

  // Requests answered (200, and 400/404/405 for bad ones), and connections
  // refused (431: oversized request) or abandoned (no complete request
  // before the deadline, peer gone). Thread-safe.
  int64_t answered() const { return answered_.load(); }
  int64_t failed() const { return failed_.load(); }

 private:
  MetricsHttpServer(int listen_fd, int wake_read, int wake_write, std::string address,
                    std::function<std::string()> render, MetricsHttpOptions options);
  void Loop();
  // Serves one accepted connection to the end; closes it.
  void Serve(int fd);

  int listen_fd_;  // closed by Stop (after the thread is joined)
  const int wake_read_;
  const int wake_write_;
  const std::string address_;
  const std::function<std::string()> render_;
  const MetricsHttpOptions options_;
  std::atomic<int64_t> answered_{0};
  std::atomic<int64_t> failed_{0};
  std::atomic<bool> stopped_{false};
  std::thread thread_;
};

}  // namespace pantherd::server

#endif  // PANTHERD_SERVER_METRICS_HTTP_H_
