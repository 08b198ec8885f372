#include "server/test_clock.h"

#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace pantherd::server {
namespace {

using ::testing::HasSubstr;

class TestClockTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (std::filesystem::temp_directory_path() / "pantherd-clock-XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    path_ = (std::filesystem::path(dir_) / "now").string();
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // Replaces the clock file atomically, as tests are told to.
  void Set(const std::string& text) {
    const std::string tmp = path_ + ".tmp";
    std::ofstream(tmp) << text;
    std::filesystem::rename(tmp, path_);
  }

  std::string dir_;
  std::string path_;
};

TEST_F(TestClockTest, ParsesUnixSecondsAndRfc3339) {
  EXPECT_EQ(*ParseClockText("1924992000"), absl::FromUnixSeconds(1924992000));
  EXPECT_EQ(*ParseClockText(" 1924992000\n"), absl::FromUnixSeconds(1924992000));
  EXPECT_EQ(*ParseClockText("1924992000.25"),
            absl::FromUnixSeconds(1924992000) + absl::Milliseconds(250));
  EXPECT_EQ(*ParseClockText("2031-01-01T00:00:00Z"), absl::FromUnixSeconds(1924992000));
  EXPECT_EQ(*ParseClockText("2031-01-01T01:00:00.5+01:00"),
            absl::FromUnixSeconds(1924992000) + absl::Milliseconds(500));
  for (const char* bad : {"", "soon", "-5", "1e9", "2031-01-01"}) {
    absl::StatusOr<absl::Time> t = ParseClockText(bad);
    EXPECT_TRUE(absl::IsInvalidArgument(t.status())) << bad;
  }
}

TEST_F(TestClockTest, EveryReadingReadsTheFile) {
  Set("1924992000\n");
  absl::StatusOr<std::function<absl::Time()>> clock = FileClock(path_);
  ASSERT_TRUE(clock.ok()) << clock.status();
  EXPECT_EQ((*clock)(), absl::FromUnixSeconds(1924992000));
  Set("1925078400\n");  // a day later
  EXPECT_EQ((*clock)(), absl::FromUnixSeconds(1925078400));
  Set("2031-01-03T00:00:00Z");
  EXPECT_EQ((*clock)(), absl::FromUnixSeconds(1925164800));
}

TEST_F(TestClockTest, ABadReadKeepsTheLastTime) {
  Set("1924992000");
  absl::StatusOr<std::function<absl::Time()>> clock = FileClock(path_);
  ASSERT_TRUE(clock.ok()) << clock.status();
  Set("half a wri");
  EXPECT_EQ((*clock)(), absl::FromUnixSeconds(1924992000));
  std::filesystem::remove(path_);
  EXPECT_EQ((*clock)(), absl::FromUnixSeconds(1924992000));
  Set("1924992060");
  EXPECT_EQ((*clock)(), absl::FromUnixSeconds(1924992060));
}

TEST_F(TestClockTest, MissingOrMalformedFileIsAnError) {
  absl::StatusOr<std::function<absl::Time()>> missing = FileClock(path_);
  EXPECT_TRUE(absl::IsNotFound(missing.status()));
  EXPECT_THAT(missing.status().message(), HasSubstr(path_));
  Set("tomorrow");
  absl::StatusOr<std::function<absl::Time()>> bad = FileClock(path_);
  EXPECT_TRUE(absl::IsInvalidArgument(bad.status()));
  EXPECT_THAT(bad.status().message(), HasSubstr("tomorrow"));
}

// Readers on several threads while the file moves forward: each reading is
// one of the times written, never anything else.
TEST_F(TestClockTest, ConcurrentReadersSeeOnlyWrittenTimes) {
  Set("1924992000");
  absl::StatusOr<std::function<absl::Time()>> clock = FileClock(path_);
  ASSERT_TRUE(clock.ok()) << clock.status();
  const absl::Time first = absl::FromUnixSeconds(1924992000);
  std::vector<std::thread> readers;
  std::vector<int> bad(4, 0);
  for (int r = 0; r < 4; ++r) {
    readers.emplace_back([&, r] {
      for (int i = 0; i < 200; ++i) {
        const absl::Time t = (*clock)();
        if (t < first || t > first + absl::Seconds(100) ||
            t != absl::FromUnixSeconds(absl::ToUnixSeconds(t))) {
          ++bad[r];
        }
      }
    });
  }
  for (int s = 1; s <= 100; ++s) Set(std::to_string(1924992000 + s));
  for (std::thread& t : readers) t.join();
  for (int r = 0; r < 4; ++r) EXPECT_EQ(bad[r], 0) << "reader " << r;
  EXPECT_EQ((*clock)(), first + absl::Seconds(100));
}

}  // namespace
}  // namespace pantherd::server
