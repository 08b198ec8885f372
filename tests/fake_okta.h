// A fake Okta organisation for tests: a real HTTP/1.1 server on 127.0.0.1 (a
// port chosen by the OS) answering GET /api/v1/logs the way the System Log
// API does, so that pantherd's poller is tested against the protocol, not
// against a mock of its own code.
//
// What it does like Okta:
//   - `Authorization: SSWS <token>` is checked; a wrong or missing token gets
//     401 with Okta's exact body (E0000011 "Invalid token provided").
//   - Polling requests (since, no until, ASCENDING): events ordered by the
//     time they reached the log ("persisted"), not by `published`, so an event
//     can arrive after newer ones (AddEvent with an old published time); the
//     answer carries `link: <…>; rel="self"` and `link: <…>; rel="next"` as
//     two separate header lines (or one comma-joined line, see Options), with
//     an opaque `after` cursor ("<epoch ms>_<n>"), also on empty pages.
//   - `limit` 0..1000 (default 100); since + after together, a malformed
//     since, and a since over 180 days back are 400s with Okta's codes.
//   - Bounded requests (since + until) filter by published and have a last page
//     without next.
//   - X-Rate-Limit-Limit/-Remaining/-Reset on every answer from a bucket of
//     Options.rate_limit requests per Options.rate_window; an empty bucket
//     gets 429 E0000047. Plus Date and X-Okta-Request-Id.
// Faults a test injects for the next requests (Inject): 429, 500 E0000009,
// 403 E0000006, a slow answer, an answer cut off mid-body, a malformed body.
// Every request is recorded.
//
// Thread-safe: all methods may be called from any thread while it serves.
#ifndef PANTHERD_TESTS_FAKE_OKTA_H_
#define PANTHERD_TESTS_FAKE_OKTA_H_

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace pantherd::testing {

class FakeOkta {
 public:
  struct Options {
    // The valid API token.
    std::string token = "fake-okta-token";
    // The rate-limit bucket: requests per window.
    int rate_limit = 1000;
    absl::Duration rate_window = absl::Seconds(60);
    // Send self and next in one comma-joined Link header instead of two.
    bool join_links = false;
    // Pages hold at most this many events whatever the limit asked (small
    // pages make multi-page scenarios cheap).
    int page_cap = 1000;
    // Leave out the next link on empty polling pages (not what Okta does;
    // exercises a client's fallback).
    bool no_next_on_empty = false;
  };

  enum class Fault {
    kTooManyRequests,  // 429 E0000047, Remaining 0, Reset in reset_in
    kServerError,      // 500 E0000009
    kForbidden,        // 403 E0000006
    kSlow,             // answers normally after `delay`
    kCutOff,           // sends headers and half the body, then closes
    kMalformed,        // 200 with a body that is not a JSON array
  };
  struct Injected {
    Fault fault;
    absl::Duration delay = absl::ZeroDuration();  // kSlow
    absl::Duration reset_in = absl::Seconds(1);   // kTooManyRequests
  };

  struct Request {
    std::string target;         // path and query as received
    std::string authorization;  // the header's value, "" when absent
    int status = 0;             // what was answered (0: cut off)
    int events = 0;             // events in the answer
    absl::Time time;            // when it arrived
  };

  // Starts serving. Errors: the socket's.
  static absl::StatusOr<std::unique_ptr<FakeOkta>> Start(Options options);
  static absl::StatusOr<std::unique_ptr<FakeOkta>> Start() { return Start(Options()); }
  ~FakeOkta();
  FakeOkta(const FakeOkta&) = delete;
  FakeOkta& operator=(const FakeOkta&) = delete;

  // "http://127.0.0.1:<port>".
  std::string base_url() const;

  // Appends an event to the log, persisted now (polling returns events in
  // the order they were added). `json` is the whole LogEvent object.
  void AddEvent(std::string json);
  // Replaces the valid token (the old one then gets 401).
  void SetToken(std::string token);
  // Queues faults for the next requests, in order (one request each).
  void Inject(std::vector<Injected> faults);
  // Replaces the rate limit (takes effect at once).
  void SetRateLimit(int limit, absl::Duration window);

  std::vector<Request> requests() const;
  // Events served in 200 answers, counted with repeats.
  int events_served() const;
  // Events in the log.
  int event_count() const;
  // Injected faults not yet taken by a request. A request takes its fault as
  // it arrives, so after Inject({kSlow}) a count of 0 means that the slow
  // answer is on its way.
  int faults_pending() const;

 private:
  struct Event {
    std::string json;
    std::string published;  // as in the JSON, for bounded queries
    absl::Time persisted;
  };
  struct Response {
    int status = 200;
    std::vector<std::pair<std::string, std::string>> headers;
    std::string body;
    bool cut_off = false;
    absl::Duration delay = absl::ZeroDuration();
  };

  explicit FakeOkta(Options options) : options_(std::move(options)) {}
  void Serve();
  void HandleConnection(int fd);
  Response Answer(const std::string& target, const std::string& authorization)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  Response Error(int status, const std::string& code, const std::string& summary)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void AddRateHeaders(Response& r, bool exhausted) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Sleeps `d` unless the server stops first.
  void Sleep(absl::Duration d);

  Options options_ ABSL_GUARDED_BY(mu_);
  int listen_fd_ = -1;
  int port_ = 0;
  std::thread thread_;

  mutable absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<Event> log_ ABSL_GUARDED_BY(mu_);
  std::vector<Injected> faults_ ABSL_GUARDED_BY(mu_);
  std::vector<Request> requests_ ABSL_GUARDED_BY(mu_);
  int events_served_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Time window_start_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  int window_used_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t request_ids_ ABSL_GUARDED_BY(mu_) = 0;
};

// A LogEvent of a failed Okta sign-in (user.session.start, FAILURE,
// INVALID_CREDENTIALS) by `login` from `ip`, published at `published`, in the
// shape Okta sends (nulls and all).
std::string OktaFailedLogin(const std::string& uuid, const std::string& login,
                            const std::string& ip, absl::Time published);
// A harmless LogEvent (user.session.end, SUCCESS).
std::string OktaLogout(const std::string& uuid, const std::string& login, absl::Time published);

}  // namespace pantherd::testing

#endif  // PANTHERD_TESTS_FAKE_OKTA_H_
