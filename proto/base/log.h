// File: proto/base/log.h
//
// The one logging facility of pantherd's processes (the server and the rule
// workers; pantherctl prints to people and does not log). Every line is one
// event in logfmt: `time=<RFC 3339 UTC> level=<level> msg="<text>" key=value
// ...`, so that operators can grep it and log shippers can parse it. Values
// that contain spaces, quotes, '=' or control characters are quoted with
// Go-style escapes, so no value can end a line or forge a field.
//
//   base::Log(base::LogLevel::kInfo, "serving", {{"listen", addr}, {"data_dir", dir}});
//
// Components that log take a `Logger*` (default DefaultLogger()) so that tests
// can inject one and read what was logged (CapturingLogger); the free function
// Log() writes to DefaultLogger(). A rule worker's own lines use the same
// format on its stderr, which pantherd reads as untrusted output and logs as
// the `line` field of a `msg="worker output"` line with the worker's pid
// (engine/worker_output.h).
//
// Thread-safe: lines from concurrent threads never interleave.
#ifndef PANTHERD_BASE_LOG_H_
#define PANTHERD_BASE_LOG_H_

#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"

namespace pantherd::base {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3 };

// "debug", "info", "warn" or "error".
absl::string_view LogLevelName(LogLevel level);

// Parses "debug", "info", "warn"/"warning" or "error" (any case).
// Returns InvalidArgument naming the accepted values otherwise.
absl::StatusOr<LogLevel> ParseLogLevel(absl::string_view name);

using LogFields = std::vector<std::pair<std::string, std::string>>;

// Where log lines go. Implementations are thread-safe.
class Logger {
 public:
  virtual ~Logger() = default;
  // Records one event if `level` is enabled. Never blocks for long; never
  // fails (a line that cannot be written is lost).
  virtual void Write(LogLevel level, absl::string_view msg, const LogFields& fields) = 0;
};

// The process-wide logger: logfmt lines to stderr (or the stream set with
// SetLogStream), below the level set with SetLogLevel dropped. Never null;
// lives for the whole process.
Logger* DefaultLogger();

// Writes one line to DefaultLogger(). Thread-safe.
void Log(LogLevel level, absl::string_view msg, const LogFields& fields = {});

// Lines below `level` are dropped by DefaultLogger(). Default kInfo.
// Thread-safe.
void SetLogLevel(LogLevel level);

// Redirects DefaultLogger(); `out` must outlive all logging (nullptr restores
// stderr). Intended for tests and start-up. Thread-safe.
void SetLogStream(std::ostream* out);

// Formats one logfmt line (without the trailing newline) at `time_rfc3339`;
// exposed for tests.
std::string FormatLogLine(absl::string_view time_rfc3339, LogLevel level, absl::string_view msg,
                          const LogFields& fields);

// A Logger that keeps every event in memory, for tests. Thread-safe.
class CapturingLogger : public Logger {
 public:
  struct Entry {
    LogLevel level;
    std::string msg;
    LogFields fields;
    // The value of field `key`, or "" when absent.
    std::string Field(absl::string_view key) const;
  };

  void Write(LogLevel level, absl::string_view msg, const LogFields& fields) override;

  // A copy of every event written so far, oldest first.
  std::vector<Entry> entries() const;

 private:
  mutable absl::Mutex mu_;
  std::vector<Entry> entries_ ABSL_GUARDED_BY(mu_);
};

}  // namespace pantherd::base

#endif  // PANTHERD_BASE_LOG_H_
