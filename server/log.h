// Structured logging for pantherd.
//
// Every line is one event in logfmt: `time=<RFC 3339 UTC> level=<level>
// msg="<text>" key=value ...`, written to stderr (or a stream chosen at start)
// so that operators can grep it and log shippers can parse it. Values that
// contain spaces, quotes or '=' are quoted with Go-style escapes.
//
//   Log(LogLevel::kInfo, "serving", {{"listen", addr}, {"data_dir", dir}});
//
// Thread-safe: lines from concurrent threads never interleave.
#ifndef PANTHERD_SERVER_LOG_H_
#define PANTHERD_SERVER_LOG_H_

#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace pantherd::server {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3 };

// Parses "debug", "info", "warn"/"warning" or "error" (any case).
// Returns InvalidArgument naming the accepted values otherwise.
absl::StatusOr<LogLevel> ParseLogLevel(absl::string_view name);

// Lines below `level` are dropped. Default kInfo. Thread-safe.
void SetLogLevel(LogLevel level);

// Redirects log output; `out` must outlive all logging (nullptr restores
// stderr). Intended for tests and start-up. Thread-safe.
void SetLogStream(std::ostream* out);

using LogFields = std::vector<std::pair<std::string, std::string>>;

// Writes one line if `level` is enabled. Thread-safe.
void Log(LogLevel level, absl::string_view msg, const LogFields& fields = {});

// Formats one logfmt line (without the trailing newline) at `time_rfc3339`;
// exposed for tests.
std::string FormatLogLine(absl::string_view time_rfc3339, LogLevel level, absl::string_view msg,
                          const LogFields& fields);

}  // namespace pantherd::server

#endif  // PANTHERD_SERVER_LOG_H_
