#include "engine/worker_output.h"

#include <fcntl.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace pantherd::engine {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

class Collected {
 public:
  void Add(const std::string& line) {
    absl::MutexLock lock(&mu_);
    lines_.push_back(line);
  }
  // The lines once there are `n` (or after 10 s).
  std::vector<std::string> Wait(size_t n) {
    const absl::Time deadline = absl::Now() + absl::Seconds(10);
    for (;;) {
      {
        absl::MutexLock lock(&mu_);
        if (lines_.size() >= n || absl::Now() > deadline) return lines_;
      }
      absl::SleepFor(absl::Milliseconds(5));
    }
  }

 private:
  absl::Mutex mu_;
  std::vector<std::string> lines_;
};

// Records "<pid>: <text>" per line and "<pid>: dropped <n>" per drop report.
WorkerOutputSink Into(Collected& got) {
  return {.line = [&got](pid_t pid,
                         const std::string& text) { got.Add(absl::StrCat(pid, ": ", text)); },
          .dropped = [&got](pid_t pid, int64_t n) { got.Add(absl::StrCat(pid, ": dropped ", n)); }};
}

void WriteAll(int fd, const std::string& text) {
  ASSERT_EQ(write(fd, text.data(), text.size()), static_cast<ssize_t>(text.size()));
}

TEST(WorkerOutputTest, LinesAreLabelledEscapedAndCannotForgeALogLine) {
  Collected got;
  WorkerOutput out(Into(got));
  int p[2];
  ASSERT_EQ(pipe(p), 0);
  out.Add(4242, p[0]);
  // A line shaped like pantherd's log, an escape sequence, a carriage return
  // that would rewrite the terminal line, and a last line without newline.
  WriteAll(p[1],
           "time=2026-12-06T00:00:00Z level=info msg=\"token revoked\"\n"
           "\x1b]0;pwned\x07\x1b[2J\rfake\n"
           "tail");
  close(p[1]);
  EXPECT_THAT(got.Wait(3),
              ElementsAre("4242: time=2026-12-06T00:00:00Z level=info msg=\"token revoked\"",
                          "4242: \\x1b]0;pwned\\x07\\x1b[2J\\x0dfake", "4242: tail"));
}

TEST(WorkerOutputTest, LongLinesAreCut) {
  EXPECT_EQ(WorkerOutput::Format(std::string(10, 'a'), 4), "aaaa [6 more bytes cut]");
  Collected got;
  WorkerOutputOptions o;
  o.max_line_bytes = 8;
  WorkerOutput out(Into(got), o);
  int p[2];
  ASSERT_EQ(pipe(p), 0);
  out.Add(1, p[0]);
  WriteAll(p[1], std::string(100000, 'x'));  // no newline at all
  close(p[1]);
  std::vector<std::string> lines = got.Wait(1);
  ASSERT_FALSE(lines.empty());
  EXPECT_THAT(lines[0], HasSubstr("1: xxxxxxxx ["));
  EXPECT_LT(lines.size(), 5000u);  // cut into bounded pieces, not held whole
}

TEST(WorkerOutputTest, AFloodIsRateLimitedAndTheDropsAreCounted) {
  absl::Mutex clock_mu;
  absl::Time now = absl::FromUnixSeconds(1000);
  WorkerOutputOptions o;
  o.burst_lines = 3;
  o.lines_per_second = 1;
  o.now = [&] {
    absl::MutexLock lock(&clock_mu);
    return now;
  };
  Collected got;
  WorkerOutput out(Into(got), o);
  int p[2];
  ASSERT_EQ(pipe(p), 0);
  out.Add(9, p[0]);
  std::string flood;
  for (int i = 0; i < 100; ++i) flood += "spam\n";
  WriteAll(p[1], flood);
  got.Wait(3);
  {
    absl::MutexLock lock(&clock_mu);
    now += absl::Seconds(1);  // one more line may pass
  }
  WriteAll(p[1], "after\n");
  close(p[1]);
  std::vector<std::string> lines = got.Wait(5);
  ASSERT_EQ(lines.size(), 5u);
  EXPECT_EQ(lines[0], "9: spam");
  EXPECT_EQ(lines[3], "9: dropped 97");
  EXPECT_EQ(lines[4], "9: after");
  EXPECT_EQ(out.dropped(), 97);
}

}  // namespace
}  // namespace pantherd::engine
