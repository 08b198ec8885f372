// File: engine/worker_output.h
//
// What rule workers write to stdout and stderr is data, not log lines: rule
// code may print anything, including text shaped like pantherd's own log.
// WorkerOutput reads each worker's output pipe on one thread of its own and
// hands every line, with the worker's pid, to a sink, with control characters
// escaped (\xNN), lines cut at max_line_bytes, and at most burst_lines lines
// per worker at once, refilled at lines_per_second; the lines beyond are
// dropped and counted, and the sink is told how many. The worker pool logs
// each line as the `line` field of a `msg="worker output"` event
// (proto/base/log.h), never as a log line of its own.
//
//   WorkerOutput out({.line = [](pid_t pid, const std::string& text) { ... },
//                     .dropped = [](pid_t pid, int64_t n) { ... }});
//   out.Add(pid, read_end_of_pipe);   // takes the descriptor
//
// Never blocks a worker beyond the pipe's own buffer: the reader drains every
// pipe as data arrives; a worker writing faster than the sink takes lines
// loses lines, not time. Thread-safe.
#ifndef PANTHERD_ENGINE_WORKER_OUTPUT_H_
#define PANTHERD_ENGINE_WORKER_OUTPUT_H_

#include <sys/types.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "proto/base/clock.h"

namespace pantherd::engine {

struct WorkerOutputOptions {
  size_t max_line_bytes = 1024;
  double burst_lines = 20;
  double lines_per_second = 5;
  // The clock of the rate limit (tests inject one).
  base::Clock now = base::RealClock();
};

// Where WorkerOutput delivers. Both are called on the reader thread; they must
// not block for long and must not call back into the WorkerOutput.
struct WorkerOutputSink {
  // One line worker `pid` wrote, escaped and cut (no trailing newline).
  std::function<void(pid_t pid, const std::string& text)> line;
  // `count` lines of worker `pid` were dropped by the rate limit since the
  // last report.
  std::function<void(pid_t pid, int64_t count)> dropped;
};

class WorkerOutput {
 public:
  explicit WorkerOutput(WorkerOutputSink sink, WorkerOutputOptions options = {});
  // Reads what is left in every pipe, then stops the thread.
  ~WorkerOutput();

  WorkerOutput(const WorkerOutput&) = delete;
  WorkerOutput& operator=(const WorkerOutput&) = delete;

  // Starts reading `fd` (the read end of the pipe worker `pid` writes its
  // stdout and stderr to); takes ownership and closes it at end of file.
  void Add(pid_t pid, int fd);

  // Lines passed to the sink, and lines dropped by the rate limit.
  int64_t lines() const { return lines_.load(); }
  int64_t dropped() const { return dropped_.load(); }

  // Escapes and cuts `line` as the sink sees it (exposed for tests).
  static std::string Format(const std::string& line, size_t max_line_bytes);

 private:
  struct Source {
    pid_t pid = 0;
    std::string partial;  // bytes after the last newline
    double tokens = 0;
    absl::Time refilled;
    int64_t dropped = 0;  // since the last report
  };

  void Loop();
  // Emits one complete line of `s` (rate-limited).
  void Emit(Source& s, const std::string& line);
  void ReportDropped(Source& s);

  const WorkerOutputSink sink_;
  const WorkerOutputOptions options_;
  int wake_read_ = -1;
  int wake_write_ = -1;
  absl::Mutex mu_;
  std::map<int, Source> pending_ ABSL_GUARDED_BY(mu_);  // added, not yet polled
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::atomic<int64_t> lines_{0};
  std::atomic<int64_t> dropped_{0};
  std::thread thread_;
};

}  // namespace pantherd::engine

#endif  // PANTHERD_ENGINE_WORKER_OUTPUT_H_
