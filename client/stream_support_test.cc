// EventReader: JSON lines and JSON arrays split into events.
#include "client/stream_support.h"

#include <sstream>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace pantherd::client {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

struct Read {
  std::vector<std::string> events;
  std::vector<int64_t> lines;
  std::string error;
};

Read ReadAll(const std::string& text) {
  std::istringstream in(text);
  EventReader reader(in);
  Read result;
  RawEvent event;
  for (int i = 0; i < 1000; ++i) {
    absl::StatusOr<bool> next = reader.Next(&event);
    if (!next.ok()) {
      result.error = std::string(next.status().message());
      break;
    }
    if (!*next) break;
    EXPECT_EQ(event.index, static_cast<int64_t>(result.events.size()));
    result.events.push_back(event.json);
    result.lines.push_back(event.line);
  }
  return result;
}

TEST(EventReaderTest, JsonLinesSkipBlankLines) {
  Read r = ReadAll("\n{\"a\":1}\r\n\n   \n  {\"b\":\"[\"}  \n{\"c\":3}");
  EXPECT_EQ(r.error, "");
  EXPECT_THAT(r.events, ElementsAre("{\"a\":1}", "{\"b\":\"[\"}", "{\"c\":3}"));
  EXPECT_THAT(r.lines, ElementsAre(2, 5, 6));
}

TEST(EventReaderTest, EmptyInputHasNoEvents) {
  EXPECT_TRUE(ReadAll("").events.empty());
  EXPECT_TRUE(ReadAll(" \n\n").events.empty());
  Read r = ReadAll(" [ ] \n");
  EXPECT_EQ(r.error, "");
  EXPECT_TRUE(r.events.empty());
}

TEST(EventReaderTest, ArrayElementsRespectStringsAndNesting) {
  const std::string text =
      "  [ {\"a\":\"x]y,z\"},\n"
      "{\"b\":\"q\\\"],[{\\\\\"}, \n"
      "  {\"c\":[1,{\"d\":\"}\"}],\"e\":{}} ]\n";
  Read r = ReadAll(text);
  EXPECT_EQ(r.error, "");
  EXPECT_THAT(r.events, ElementsAre("{\"a\":\"x]y,z\"}", "{\"b\":\"q\\\"],[{\\\\\"}",
                                    "{\"c\":[1,{\"d\":\"}\"}],\"e\":{}}"));
  EXPECT_THAT(r.lines, ElementsAre(1, 2, 3));
}

TEST(EventReaderTest, MalformedArraysFail) {
  EXPECT_THAT(ReadAll("[{\"a\":1}, {\"b\":2}").error, HasSubstr("unterminated"));
  EXPECT_THAT(ReadAll("[{\"a\":\"]}").error, HasSubstr("unterminated"));
  EXPECT_THAT(ReadAll("[{\"a\":1},,{}]").error, HasSubstr("empty element"));
  EXPECT_THAT(ReadAll("[{\"a\":1},]").error, HasSubstr("empty element"));
  EXPECT_THAT(ReadAll("[{\"a\":1}}]").error, HasSubstr("unbalanced"));
  Read r = ReadAll("[{\"a\":1}]\nx");
  EXPECT_THAT(r.events, ElementsAre("{\"a\":1}"));  // The element still comes first.
  EXPECT_THAT(r.error, HasSubstr("line 2: unexpected content after the JSON array"));
}

TEST(RenderProgressBarTest, ShowsCountPercentRateAndEta) {
  EXPECT_EQ(RenderProgressBar(4500, 10000, absl::Seconds(3), 80),
            "[##############..................] 4500/10000 events  45%  "
            "1500 events/s  ETA 4s");
  EXPECT_EQ(RenderProgressBar(4500, 10000, absl::Seconds(3), 80).size(), 80u);
  // Done: a full bar and ETA 0s; before any time passed: no rate, no ETA.
  EXPECT_EQ(RenderProgressBar(10, 10, absl::Seconds(1), 50),
            "[########] 10/10 events  100%  10 events/s  ETA 0s");
  EXPECT_EQ(RenderProgressBar(0, 10, absl::ZeroDuration(), 60),
            "[.......................] 0/10 events  0%  - events/s  ETA -");
  // More acknowledged than counted (the file grew) never goes past 100%.
  EXPECT_THAT(RenderProgressBar(12, 10, absl::Seconds(1), 60), HasSubstr("10/10 events  100%"));
}

TEST(RenderProgressBarTest, NarrowTerminalsDropTheBarThenTheTail) {
  EXPECT_EQ(RenderProgressBar(4500, 10000, absl::Seconds(3), 45),
            "4500/10000 events  45%  1500 events/s  ETA 4s");
  EXPECT_EQ(RenderProgressBar(4500, 10000, absl::Seconds(3), 25), "4500/10000 events  45%");
  for (int width = 20; width < 120; ++width) {
    EXPECT_LE(RenderProgressBar(123456, 999999, absl::Seconds(7), width).size(),
              static_cast<size_t>(width));
  }
}

TEST(RenderProgressBarTest, UnknownTotalShowsCountAndRateOnly) {
  EXPECT_EQ(RenderProgressBar(4500, std::nullopt, absl::Seconds(3), 80),
            "4500 events  1500 events/s");
  EXPECT_EQ(RenderProgressBar(4500, std::nullopt, absl::Seconds(3), 20), "4500 events");
}

}  // namespace
}  // namespace pantherd::client
