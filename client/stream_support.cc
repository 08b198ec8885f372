#include "client/stream_support.h"

#include <signal.h>

#include <algorithm>
#include <chrono>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "client/output.h"

namespace pantherd::client {
namespace {

std::atomic<bool> g_interrupted{false};
static_assert(std::atomic<bool>::is_always_lock_free, "used from a signal handler");

extern "C" void OnInterrupt(int) { g_interrupted.store(true); }

struct sigaction g_previous_action;

bool IsBlank(int c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

}  // namespace

InterruptScope::InterruptScope() {
  g_interrupted.store(false);
  struct sigaction action = {};
  action.sa_handler = OnInterrupt;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;
  sigaction(SIGINT, &action, &g_previous_action);
}

InterruptScope::~InterruptScope() { sigaction(SIGINT, &g_previous_action, nullptr); }

bool InterruptScope::Interrupted() { return g_interrupted.load(); }

bool SleepUnlessInterrupted(absl::Duration duration) {
  const absl::Time end = absl::Now() + duration;
  while (!InterruptScope::Interrupted()) {
    const absl::Duration left = end - absl::Now();
    if (left <= absl::ZeroDuration()) return true;
    absl::SleepFor(std::min(left, absl::Milliseconds(20)));
  }
  return false;
}

StreamWatchdog::StreamWatchdog(grpc::ClientContext* context, absl::Duration idle_timeout)
    : context_(context), idle_timeout_(idle_timeout), last_touch_(absl::Now()) {
  thread_ = std::thread([this] { Run(); });
}

StreamWatchdog::~StreamWatchdog() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void StreamWatchdog::Touch() {
  std::lock_guard<std::mutex> lock(mu_);
  last_touch_ = absl::Now();
}

void StreamWatchdog::Cancel() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    cancel_requested_ = true;
  }
  cv_.notify_all();
}

StreamWatchdog::Reason StreamWatchdog::reason() const {
  std::lock_guard<std::mutex> lock(mu_);
  return reason_;
}

void StreamWatchdog::Run() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stop_) {
    Reason reason = Reason::kNone;
    if (cancel_requested_) {
      reason = Reason::kCancelled;
    } else if (InterruptScope::Interrupted()) {
      reason = Reason::kInterrupted;
    } else if (idle_timeout_ > absl::ZeroDuration() && absl::Now() - last_touch_ > idle_timeout_) {
      reason = Reason::kIdle;
    }
    if (reason != Reason::kNone) {
      reason_ = reason;
      context_->TryCancel();
      cv_.wait(lock, [this] { return stop_; });
      return;
    }
    cv_.wait_for(lock, std::chrono::milliseconds(20));
  }
}

EventReader::EventReader(std::istream& in) : buf_(in.rdbuf()) {}

int EventReader::Get() {
  if (buf_ == nullptr) return EOF;
  const int c = buf_->sbumpc();
  if (c == '\n') ++line_;
  return c;
}

int EventReader::Peek() { return buf_ == nullptr ? EOF : buf_->sgetc(); }

absl::Status EventReader::Error(absl::string_view what) const {
  return absl::InvalidArgumentError(absl::StrCat("line ", line_, ": ", what));
}

absl::StatusOr<bool> EventReader::Next(RawEvent* event) {
  if (mode_ == Mode::kUnknown) {
    while (IsBlank(Peek())) Get();
    const int c = Peek();
    if (c == EOF) {
      mode_ = Mode::kDone;
    } else if (c == '[') {
      Get();
      mode_ = Mode::kArray;
    } else {
      mode_ = Mode::kLines;
    }
  }
  switch (mode_) {
    case Mode::kLines:
      return NextLine(event);
    case Mode::kArray:
      return NextElement(event);
    case Mode::kTrailing:
      mode_ = Mode::kDone;
      if (absl::Status s = ExpectOnlyBlanks(); !s.ok()) return s;
      return false;
    default:
      return false;
  }
}

absl::StatusOr<bool> EventReader::NextLine(RawEvent* event) {
  while (true) {
    const int64_t line = line_;
    std::string text;
    int c;
    while ((c = Get()) != EOF && c != '\n') text.push_back(static_cast<char>(c));
    absl::string_view stripped = absl::StripAsciiWhitespace(text);
    if (!stripped.empty()) {
      event->json = std::string(stripped);
      event->index = next_index_++;
      event->line = line;
      return true;
    }
    if (c == EOF) {
      mode_ = Mode::kDone;
      return false;
    }
  }
}

absl::Status EventReader::ExpectOnlyBlanks() {
  int c;
  while ((c = Get()) != EOF) {
    if (!IsBlank(c)) return Error("unexpected content after the JSON array");
  }
  return absl::OkStatus();
}

absl::StatusOr<bool> EventReader::NextElement(RawEvent* event) {
  while (IsBlank(Peek())) Get();
  if (Peek() == EOF) return Error("unterminated JSON array (missing ']')");
  if (first_element_ && Peek() == ']') {
    Get();
    mode_ = Mode::kDone;
    if (absl::Status s = ExpectOnlyBlanks(); !s.ok()) return s;
    return false;
  }
  first_element_ = false;
  const int64_t start_line = line_;
  std::string text;
  int depth = 0;
  bool in_string = false;
  bool escape = false;
  bool last = false;
  while (true) {
    const int c = Get();
    if (c == EOF) return Error("unterminated JSON array (missing ']')");
    if (in_string) {
      text.push_back(static_cast<char>(c));
      if (escape) {
        escape = false;
      } else if (c == '\\') {
        escape = true;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (depth == 0 && (c == ',' || c == ']')) {
      last = c == ']';
      break;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      ++depth;
    } else if (c == '}' || c == ']') {
      if (depth == 0) return Error("unbalanced '}' in the JSON array");
      --depth;
    }
    text.push_back(static_cast<char>(c));
  }
  absl::string_view stripped = absl::StripAsciiWhitespace(text);
  if (stripped.empty()) return Error("empty element in the JSON array");
  if (last) mode_ = Mode::kTrailing;  // Checked on the next call.
  event->json = std::string(stripped);
  event->index = next_index_++;
  event->line = start_line;
  return true;
}

std::string RenderProgressBar(int64_t done, std::optional<int64_t> total, absl::Duration elapsed,
                              int width) {
  width = std::max(width, 20);
  done = std::max<int64_t>(done, 0);
  const double seconds = absl::ToDoubleSeconds(elapsed);
  const double rate = seconds > 0 ? static_cast<double>(done) / seconds : 0;
  const std::string rate_text =
      seconds > 0 ? absl::StrCat(static_cast<int64_t>(rate + 0.5), " events/s") : "- events/s";
  if (!total.has_value()) {
    std::string line = absl::StrCat(done, " events  ", rate_text);
    if (static_cast<int>(line.size()) > width) line = absl::StrCat(done, " events");
    return line.substr(0, width);
  }
  const int64_t all = std::max<int64_t>(*total, 0);
  const int64_t shown = std::min(done, all);
  const int percent = all == 0 ? 100 : static_cast<int>(shown * 100 / all);
  std::string eta = "ETA -";
  if (shown >= all) {
    eta = "ETA 0s";
  } else if (rate > 0) {
    eta = absl::StrCat(
        "ETA ",
        FormatSeconds(static_cast<int64_t>(static_cast<double>(all - shown) / rate + 0.999)));
  }
  // The parts after the bar, most important first.
  const std::vector<std::string> parts = {absl::StrCat(shown, "/", all, " events"),
                                          absl::StrCat(percent, "%"), rate_text, eta};
  std::string text;
  for (const std::string& part : parts) {
    const std::string next = text.empty() ? part : absl::StrCat(text, "  ", part);
    if (static_cast<int>(next.size()) > width) break;
    text = next;
  }
  // "[" bar "] " before the text, when at least 5 cells of bar fit.
  const int bar_cells = width - static_cast<int>(text.size()) - 3;
  if (bar_cells < 5) return text;
  const int filled = all == 0 ? bar_cells : static_cast<int>(shown * bar_cells / all);
  return absl::StrCat("[", std::string(filled, '#'), std::string(bar_cells - filled, '.'), "] ",
                      text);
}

}  // namespace pantherd::client
