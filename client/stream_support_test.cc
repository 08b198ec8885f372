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

}  // namespace
}  // namespace pantherd::client
