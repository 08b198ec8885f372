#include "server/test_clock.h"

#include <fstream>
#include <memory>
#include <sstream>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"

namespace pantherd::server {
namespace {

// Reads the whole file; false when it cannot be opened or read.
bool ReadWholeFile(const std::string& path, std::string* out) {
  std::ifstream in(path, std::ios::binary);
  if (!in.is_open()) return false;
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) return false;
  *out = ss.str();
  return true;
}

struct ClockState {
  std::string path;
  absl::Mutex mu;
  absl::Time last ABSL_GUARDED_BY(mu);
};

}  // namespace

absl::StatusOr<absl::Time> ParseClockText(absl::string_view text) {
  absl::string_view t = absl::StripAsciiWhitespace(text);
  double seconds = 0;
  if (!t.empty() && t.find_first_not_of("0123456789.") == absl::string_view::npos &&
      absl::SimpleAtod(t, &seconds)) {
    // Whole seconds exactly, the fraction to the microsecond.
    const double whole = static_cast<double>(static_cast<int64_t>(seconds));
    return absl::FromUnixSeconds(static_cast<int64_t>(seconds)) +
           absl::Microseconds(static_cast<int64_t>((seconds - whole) * 1e6 + 0.5));
  }
  absl::Time parsed;
  std::string error;
  if (absl::ParseTime(absl::RFC3339_full, t, &parsed, &error)) return parsed;
  return absl::InvalidArgumentError(
      absl::StrCat("test clock: \"", t, "\" is neither Unix seconds nor an RFC 3339 time"));
}

absl::StatusOr<base::Clock> FileClock(const std::string& path) {
  std::string text;
  if (!ReadWholeFile(path, &text)) {
    return absl::NotFoundError(absl::StrCat("test clock file ", path, " cannot be read"));
  }
  absl::StatusOr<absl::Time> first = ParseClockText(text);
  if (!first.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("test clock file ", path, ": ", first.status().message()));
  }
  auto state = std::make_shared<ClockState>();
  state->path = path;
  {
    absl::MutexLock lock(&state->mu);
    state->last = *first;
  }
  return base::Clock([state]() {
    std::string content;
    absl::StatusOr<absl::Time> now = absl::InvalidArgumentError("unread");
    if (ReadWholeFile(state->path, &content)) now = ParseClockText(content);
    absl::MutexLock lock(&state->mu);
    if (now.ok()) state->last = *now;
    return state->last;
  });
}

}  // namespace pantherd::server
