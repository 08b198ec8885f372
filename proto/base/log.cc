#include "proto/base/log.h"

#include <atomic>
#include <iostream>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace pantherd::base {
namespace {

std::atomic<int> g_level{static_cast<int>(LogLevel::kInfo)};
absl::Mutex g_mu;
std::ostream* g_out ABSL_GUARDED_BY(g_mu) = nullptr;

bool NeedsQuotes(absl::string_view v) {
  if (v.empty()) return true;
  for (char c : v) {
    if (c == ' ' || c == '"' || c == '=' || c == '\\' || static_cast<unsigned char>(c) < 0x20) {
      return true;
    }
  }
  return false;
}

void AppendValue(std::string* out, absl::string_view v) {
  if (!NeedsQuotes(v)) {
    out->append(v.data(), v.size());
    return;
  }
  out->push_back('"');
  for (char c : v) {
    switch (c) {
      case '"':
        out->append("\\\"");
        break;
      case '\\':
        out->append("\\\\");
        break;
      case '\n':
        out->append("\\n");
        break;
      case '\t':
        out->append("\\t");
        break;
      case '\r':
        out->append("\\r");
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          absl::StrAppend(out, "\\x", absl::Hex(static_cast<unsigned char>(c), absl::kZeroPad2));
        } else {
          out->push_back(c);
        }
    }
  }
  out->push_back('"');
}

class StreamLogger : public Logger {
 public:
  void Write(LogLevel level, absl::string_view msg, const LogFields& fields) override {
    if (static_cast<int>(level) < g_level.load()) return;
    std::string line =
        FormatLogLine(absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::Now(), absl::UTCTimeZone()),
                      level, msg, fields);
    line.push_back('\n');
    absl::MutexLock lock(&g_mu);
    std::ostream& out = g_out != nullptr ? *g_out : std::cerr;
    out << line;
    out.flush();
  }
};

}  // namespace

absl::string_view LogLevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug:
      return "debug";
    case LogLevel::kInfo:
      return "info";
    case LogLevel::kWarn:
      return "warn";
    case LogLevel::kError:
      return "error";
  }
  return "info";
}

Logger* DefaultLogger() {
  static Logger* const logger = new StreamLogger();
  return logger;
}

absl::StatusOr<LogLevel> ParseLogLevel(absl::string_view name) {
  std::string n = absl::AsciiStrToLower(name);
  if (n == "debug") return LogLevel::kDebug;
  if (n == "info") return LogLevel::kInfo;
  if (n == "warn" || n == "warning") return LogLevel::kWarn;
  if (n == "error") return LogLevel::kError;
  return absl::InvalidArgumentError(
      absl::StrCat("log level \"", name, "\" is not one of debug, info, warn, error"));
}

void SetLogLevel(LogLevel level) { g_level.store(static_cast<int>(level)); }

void SetLogStream(std::ostream* out) {
  absl::MutexLock lock(&g_mu);
  g_out = out;
}

std::string FormatLogLine(absl::string_view time_rfc3339, LogLevel level, absl::string_view msg,
                          const LogFields& fields) {
  std::string line = absl::StrCat("time=", time_rfc3339, " level=", LogLevelName(level), " msg=");
  AppendValue(&line, msg);
  for (const auto& [key, value] : fields) {
    absl::StrAppend(&line, " ", key, "=");
    AppendValue(&line, value);
  }
  return line;
}

void Log(LogLevel level, absl::string_view msg, const LogFields& fields) {
  DefaultLogger()->Write(level, msg, fields);
}

std::string CapturingLogger::Entry::Field(absl::string_view key) const {
  for (const auto& [k, v] : fields) {
    if (k == key) return v;
  }
  return "";
}

void CapturingLogger::Write(LogLevel level, absl::string_view msg, const LogFields& fields) {
  absl::MutexLock lock(&mu_);
  entries_.push_back({level, std::string(msg), fields});
}

std::vector<CapturingLogger::Entry> CapturingLogger::entries() const {
  absl::MutexLock lock(&mu_);
  return entries_;
}

}  // namespace pantherd::base
