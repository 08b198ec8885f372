#include "proto/base/log.h"

#include <sstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace pantherd::base {
namespace {

using ::testing::HasSubstr;
using ::testing::MatchesRegex;

TEST(LogTest, FormatsLogfmtWithQuotingWhereNeeded) {
  EXPECT_EQ(FormatLogLine("2026-01-02T03:04:05.000Z", LogLevel::kWarn, "store opened",
                          {{"dir", "/tmp/x"}, {"note", "a \"b\"=c"}, {"empty", ""}}),
            "time=2026-01-02T03:04:05.000Z level=warn msg=\"store opened\" dir=/tmp/x "
            "note=\"a \\\"b\\\"=c\" empty=\"\"");
}

TEST(LogTest, EscapesNewlines) {
  EXPECT_THAT(FormatLogLine("t", LogLevel::kError, "x", {{"e", "a\nb"}}), HasSubstr("e=\"a\\nb\""));
}

TEST(LogTest, LevelFiltersAndStreamRedirects) {
  std::ostringstream out;
  SetLogStream(&out);
  SetLogLevel(LogLevel::kWarn);
  Log(LogLevel::kInfo, "hidden");
  Log(LogLevel::kError, "shown", {{"k", "v"}});
  SetLogLevel(LogLevel::kInfo);
  SetLogStream(nullptr);
  EXPECT_THAT(out.str(), ::testing::Not(HasSubstr("hidden")));
  EXPECT_THAT(out.str(), MatchesRegex("time=[0-9T:.Z-]+ level=error msg=shown k=v\n"));
}

TEST(LogTest, ParsesLevels) {
  EXPECT_EQ(*ParseLogLevel("DEBUG"), LogLevel::kDebug);
  EXPECT_EQ(*ParseLogLevel("warning"), LogLevel::kWarn);
  EXPECT_FALSE(ParseLogLevel("verbose").ok());
}

TEST(LogTest, CapturingLoggerKeepsEventsAndFields) {
  CapturingLogger logger;
  logger.Write(LogLevel::kWarn, "worker output", {{"worker_pid", "42"}, {"line", "x"}});
  std::vector<CapturingLogger::Entry> entries = logger.entries();
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(entries[0].level, LogLevel::kWarn);
  EXPECT_EQ(entries[0].msg, "worker output");
  EXPECT_EQ(entries[0].Field("worker_pid"), "42");
  EXPECT_EQ(entries[0].Field("absent"), "");
}

TEST(LogTest, AValueCannotForgeAFieldOrALine) {
  std::string line = FormatLogLine("t", LogLevel::kInfo, "worker output",
                                   {{"line", "x\" msg=\"token revoked\"\nlevel=error"}});
  EXPECT_EQ(line.find('\n'), std::string::npos);
  EXPECT_THAT(line, HasSubstr("line=\"x\\\" msg=\\\"token revoked\\\"\\nlevel=error\""));
}

}  // namespace
}  // namespace pantherd::base
