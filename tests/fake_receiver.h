// A fake HTTP receiver of alert deliveries for tests: a real HTTP/1.1 server
// on 127.0.0.1 that accepts any method to any path (the kinds POST; GET is
// answered too), records every request and answers 200 "ok" unless told
// otherwise, so that senders are tested against the wire, not a mock.
//
//   auto receiver = FakeReceiver::Start();              // a port from the OS
//   (*receiver)->SetAnswer("/pd", {202, R"({"status":"success"})"});
//   (*receiver)->Inject({FakeReceiver::Status(429, "slow down", {{"Retry-After", "2"}})});
//   ... deliver to (*receiver)->url("/pd") ...
//   (*receiver)->WaitForRequests(2, absl::Seconds(10));
//
// Behaviour:
//   - One request per connection: every answer carries Content-Length and
//     `Connection: close`, and the connection is closed after it (no
//     keep-alive). Each connection is served on its own thread, so a delayed
//     answer does not hold up others.
//   - Request bodies need a Content-Length; one over Options.max_body_bytes
//     is answered 413 (recorded with an empty body); a chunked body is
//     answered 501. Heads over 64 KiB get 431 and are not recorded.
//   - Faults (Inject) are taken one per recorded request, in order: another
//     status with its body and headers, a delay before answering (to make a
//     client time out), or dropping the connection without an answer.
//   - SetDown(true): the server keeps listening but accepts every connection
//     and closes it at once without reading it (the client sees an empty
//     reply or a reset); nothing is recorded. SetDown(false) restores service.
//   - Stop() closes the listener (later connections are refused) and waits
//     for the connections in progress; a test can Start a new receiver on the
//     same port (Options.port; the socket uses SO_REUSEADDR).
//
// Thread-safe: every method may be called from any thread while it serves.
#ifndef PANTHERD_TESTS_FAKE_RECEIVER_H_
#define PANTHERD_TESTS_FAKE_RECEIVER_H_

#include <atomic>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace pantherd::testing {

class FakeReceiver {
 public:
  using Headers = std::vector<std::pair<std::string, std::string>>;

  struct Options {
    // 0: a port chosen by the OS.
    int port = 0;
    // Larger request bodies are answered 413.
    size_t max_body_bytes = 8 << 20;
  };

  // An answer to a request.
  struct Answer {
    int status = 200;
    std::string body = "ok";
    Headers headers;  // besides Content-Length and Connection
  };

  // What the next request gets instead of its usual answer.
  struct Fault {
    // Answer this instead (status 0: the usual answer).
    int status = 0;
    std::string body;
    Headers headers;
    // Wait this long before answering (or dropping).
    absl::Duration delay = absl::ZeroDuration();
    // Close the connection without answering.
    bool drop = false;
  };
  static Fault Status(int status, std::string body = "", Headers headers = {}) {
    Fault f;
    f.status = status;
    f.body = std::move(body);
    f.headers = std::move(headers);
    return f;
  }
  static Fault Delay(absl::Duration delay) {
    Fault f;
    f.delay = delay;
    return f;
  }
  static Fault Drop() {
    Fault f;
    f.drop = true;
    return f;
  }

  struct Request {
    std::string method;
    std::string path;  // the request target as received (path and query)
    Headers headers;   // in order, names as sent
    std::string body;
    absl::Time time;  // when the whole request had arrived
    // 1 for the first request carrying this Idempotency-Key (or, without
    // one, to this path), 2 for the second, ...
    int attempt = 0;
    int status = 0;  // the status answered; 0 when dropped

    // The first value of header `name` (ASCII case-insensitive), "" when
    // absent.
    std::string Header(absl::string_view name) const;
    // Whether header `name` was sent.
    bool HasHeader(absl::string_view name) const;
  };

  // Starts serving. Errors: the socket's (e.g. the port is in use).
  static absl::StatusOr<std::unique_ptr<FakeReceiver>> Start(Options options);
  static absl::StatusOr<std::unique_ptr<FakeReceiver>> Start() { return Start(Options()); }
  // Stops (see Stop).
  ~FakeReceiver();
  FakeReceiver(const FakeReceiver&) = delete;
  FakeReceiver& operator=(const FakeReceiver&) = delete;

  // Closes the listener and waits for the connections being served (a delay
  // in progress is cut short; its connection is closed unanswered).
  // Idempotent.
  void Stop();

  int port() const { return port_; }
  // "http://127.0.0.1:<port>".
  std::string base_url() const;
  // base_url() + path ("/hook" -> "http://127.0.0.1:<port>/hook").
  std::string url(absl::string_view path) const;

  // The answer to requests with no per-path answer (initially 200 "ok").
  void SetDefaultAnswer(Answer answer);
  // The answer to requests whose path (without query) is `path`.
  void SetAnswer(std::string path, Answer answer);
  // Queues faults for the next requests, in order (one request each).
  void Inject(std::vector<Fault> faults);
  // Faults not yet taken by a request.
  int faults_pending() const;
  // See the file comment.
  void SetDown(bool down);

  std::vector<Request> requests() const;
  int request_count() const;
  // Blocks until at least `n` requests were recorded; false on timeout.
  bool WaitForRequests(int n, absl::Duration timeout) const;
  // Forgets the recorded requests (and attempt counts).
  void ClearRequests();

 private:
  explicit FakeReceiver(Options options) : options_(std::move(options)) {}
  void Serve();
  void HandleConnection(int fd);
  // Sleeps `d` unless the receiver stops first; false when it stopped.
  bool Sleep(absl::Duration d);

  const Options options_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::thread thread_;

  // Serialises Stop (it joins threads and closes the listener).
  absl::Mutex stop_mu_;
  // Set with stopping_, for reads that poll it without the lock.
  std::atomic<bool> stop_flag_{false};

  mutable absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool down_ ABSL_GUARDED_BY(mu_) = false;
  Answer default_answer_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, Answer> answers_ ABSL_GUARDED_BY(mu_);
  std::vector<Fault> faults_ ABSL_GUARDED_BY(mu_);
  std::vector<Request> requests_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, int> attempts_ ABSL_GUARDED_BY(mu_);
  // Connection threads, with a flag each sets when it is finished (the
  // accept loop joins finished ones; Stop joins the rest). Accept thread only.
  struct Connection {
    std::thread thread;
    std::shared_ptr<std::atomic<bool>> done;
  };
  std::vector<Connection> connections_;
};

}  // namespace pantherd::testing

#endif  // PANTHERD_TESTS_FAKE_RECEIVER_H_
