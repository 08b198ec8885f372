// Support for pantherctl's long-running streams (`send`, `alerts tail`):
// Ctrl-C handling, a watchdog that cancels a blocked gRPC call, and the
// reader that splits an input file into JSON events.
//
//   InterruptScope interrupts;            // SIGINT now sets a flag.
//   grpc::ClientContext context;
//   StreamWatchdog watchdog(&context, absl::Seconds(30));
//   ... blocking Read/Write on a stream of `context` ...
//   watchdog.Touch();                     // after each answer
#ifndef PANTHERD_CLIENT_STREAM_SUPPORT_H_
#define PANTHERD_CLIENT_STREAM_SUPPORT_H_

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <istream>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"

namespace pantherd::client {

// While an object exists, SIGINT does not kill the process but sets a flag
// (Interrupted()); the previous disposition is restored on destruction. The
// flag is cleared on construction. One scope at a time.
class InterruptScope {
 public:
  InterruptScope();
  ~InterruptScope();
  InterruptScope(const InterruptScope&) = delete;
  InterruptScope& operator=(const InterruptScope&) = delete;

  static bool Interrupted();
};

// Sleeps `duration` in small steps; returns false early when interrupted.
bool SleepUnlessInterrupted(absl::Duration duration);

// Cancels `context` (TryCancel) from a helper thread when the process is
// interrupted, when Cancel() is called, or, with a positive `idle_timeout`,
// when no Touch() happened for that long. `context` must outlive this object.
class StreamWatchdog {
 public:
  enum class Reason { kNone, kInterrupted, kIdle, kCancelled };

  explicit StreamWatchdog(grpc::ClientContext* context,
                          absl::Duration idle_timeout = absl::ZeroDuration());
  ~StreamWatchdog();
  StreamWatchdog(const StreamWatchdog&) = delete;
  StreamWatchdog& operator=(const StreamWatchdog&) = delete;

  void Touch();
  void Cancel();
  // Why the context was cancelled, kNone when it was not.
  Reason reason() const;

 private:
  void Run();

  grpc::ClientContext* context_;
  absl::Duration idle_timeout_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  bool cancel_requested_ = false;
  absl::Time last_touch_;
  Reason reason_ = Reason::kNone;
  std::thread thread_;
};

// One event of an input file.
struct RawEvent {
  std::string json;
  // 0-based position among the file's events.
  int64_t index = 0;
  // 1-based line where the event starts.
  int64_t line = 1;
};

// Splits a stream into events, reading it incrementally. The format is
// decided by the first non-blank character: '[' means one JSON array whose
// elements are the events; anything else means JSON lines (one event per
// line; blank lines and surrounding blanks skipped). Array elements are
// found by a scanner that tracks nesting and strings (with escapes), so
// brackets, braces and commas inside strings are no separators; elements are
// not otherwise validated (the server does that).
class EventReader {
 public:
  // `in` must outlive this object.
  explicit EventReader(std::istream& in);

  // Stores the next event in *event and returns true; false at the end.
  // INVALID_ARGUMENT ("line L: ...") for a malformed array: unterminated,
  // an empty element, unbalanced brackets or content after it.
  absl::StatusOr<bool> Next(RawEvent* event);

  // The index and line of the next event (or of the error) to come.
  int64_t next_index() const { return next_index_; }
  int64_t line() const { return line_; }

 private:
  enum class Mode { kUnknown, kLines, kArray, kTrailing, kDone };

  int Get();  // Next char or EOF, counting lines.
  int Peek();
  absl::Status Error(absl::string_view what) const;
  absl::StatusOr<bool> NextLine(RawEvent* event);
  absl::StatusOr<bool> NextElement(RawEvent* event);
  absl::Status ExpectOnlyBlanks();

  std::streambuf* buf_;
  Mode mode_ = Mode::kUnknown;
  bool first_element_ = true;
  int64_t next_index_ = 0;
  int64_t line_ = 1;
};

// One frame of `send`'s progress bar, at most `width` columns (at least 20
// are assumed), without newline or control characters:
//   "[#########.........] 4500/10000 events  45%  1500 events/s  ETA 3s"
// `done` events of `total` (nullopt when unknown, e.g. standard input: then
// there is no bar, percentage or ETA, only "4500 events  1500 events/s")
// after `elapsed`. The rate is done / elapsed ("-" before any time passed);
// the ETA assumes that rate for the rest ("-" while the rate is 0). Parts
// that do not fit are dropped from the right, the bar first shrinks (to
// nothing). A pure function: the same arguments give the same frame.
std::string RenderProgressBar(int64_t done, std::optional<int64_t> total, absl::Duration elapsed,
                              int width);

}  // namespace pantherd::client

#endif  // PANTHERD_CLIENT_STREAM_SUPPORT_H_
