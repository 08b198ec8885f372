// Tests of engine/internal/dom_fields.h: json.loads' reading of repeated
// keys (first position, last value) on simdjson DOM objects, and the
// appending form that reuses one vector as a stack.
#include "engine/internal/dom_fields.h"

#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "simdjson.h"

namespace pantherd::engine::internal {
namespace {

// Keys and values (as minified JSON) of `fields`, for comparison.
std::vector<std::pair<std::string, std::string>> Items(const std::vector<DomField>& fields,
                                                       size_t from = 0) {
  std::vector<std::pair<std::string, std::string>> items;
  for (size_t i = from; i < fields.size(); ++i) {
    items.emplace_back(std::string(fields[i].key), simdjson::minify(fields[i].value));
  }
  return items;
}

using Pairs = std::vector<std::pair<std::string, std::string>>;

class DomFieldsTest : public ::testing::Test {
 protected:
  simdjson::dom::object Parse(const std::string& json) {
    simdjson::dom::element root;
    EXPECT_EQ(parser_.parse(json).get(root), simdjson::SUCCESS) << json;
    return AsObject(root);
  }

  simdjson::dom::parser parser_;
};

TEST_F(DomFieldsTest, RepeatedKeysKeepFirstPositionAndLastValue) {
  simdjson::dom::object o = Parse(R"({"a":1,"b":2,"a":3,"c":null,"b":{"x":1},"c":4})");
  EXPECT_EQ(Items(UniqueFields(o)), (Pairs{{"a", "3"}, {"b", R"({"x":1})"}, {"c", "4"}}));
}

TEST_F(DomFieldsTest, EmptyKeysAndKeysDifferingLate) {
  simdjson::dom::object o = Parse(R"({"":1,"abcd":2,"abce":3,"":4,"abcd":5,"ab":6})");
  EXPECT_EQ(Items(UniqueFields(o)), (Pairs{{"", "4"}, {"abcd", "5"}, {"abce", "3"}, {"ab", "6"}}));
}

TEST_F(DomFieldsTest, KeysAlikeInLengthAndEndsAreStillDistinct) {
  // Same length, first and last byte: only the middle tells them apart.
  simdjson::dom::object o =
      Parse(R"({"axb":1,"ayb":2,"azb":3,"ayb":4,"a\u0000b":5,"axb":6,"a\u0000b":7})");
  EXPECT_EQ(Items(UniqueFields(o)),
            (Pairs{{"axb", "6"}, {"ayb", "4"}, {"azb", "3"}, {std::string("a\0b", 3), "7"}}));
}

TEST_F(DomFieldsTest, AppendLeavesEarlierEntriesAlone) {
  // The entries already in the vector (here: the same keys) are neither
  // matched nor changed; the object's own fields follow them.
  simdjson::dom::object outer = Parse(R"({"a":1,"b":2})");
  std::vector<DomField> fields;
  AppendUniqueFields(outer, &fields);
  simdjson::dom::parser other;
  simdjson::dom::element inner_root;
  ASSERT_EQ(other.parse(std::string(R"({"b":7,"a":8,"b":9})")).get(inner_root), simdjson::SUCCESS);
  AppendUniqueFields(AsObject(inner_root), &fields);
  EXPECT_EQ(Items(fields), (Pairs{{"a", "1"}, {"b", "2"}, {"b", "9"}, {"a", "8"}}));
  fields.resize(2);
  EXPECT_EQ(Items(fields), (Pairs{{"a", "1"}, {"b", "2"}}));
}

TEST_F(DomFieldsTest, WideObjectsUseTheIndexWithTheSameResult) {
  // More than the linear-scan limit of distinct keys, appended after other
  // entries, with repeats of early and late keys.
  std::string json = "{";
  Pairs expected;
  for (int i = 0; i < 50; ++i) {
    json += (i ? "," : "") + std::string("\"k") + std::to_string(i) + "\":" + std::to_string(i);
    expected.emplace_back("k" + std::to_string(i), std::to_string(i));
  }
  json += R"(,"k0":100,"k49":149,"k33":133,"new":1,"k0":200})";
  expected[0].second = "200";
  expected[49].second = "149";
  expected[33].second = "133";
  expected.emplace_back("new", "1");
  simdjson::dom::object wide = Parse(json);
  EXPECT_EQ(Items(UniqueFields(wide)), expected);

  std::vector<DomField> fields = {DomField{"k0", wide["k1"].value_unsafe()}};
  AppendUniqueFields(wide, &fields);
  EXPECT_EQ(Items(fields, 1), expected);
  EXPECT_EQ(fields[0].key, "k0");
  EXPECT_EQ(simdjson::minify(fields[0].value), "1");
}

TEST_F(DomFieldsTest, FindLastField) {
  simdjson::dom::object o = Parse(R"({"a":1,"b":2,"a":3})");
  simdjson::dom::element value;
  ASSERT_TRUE(FindLastField(o, "a", &value));
  EXPECT_EQ(simdjson::minify(value), "3");
  EXPECT_FALSE(FindLastField(o, "c", &value));
}

}  // namespace
}  // namespace pantherd::engine::internal
