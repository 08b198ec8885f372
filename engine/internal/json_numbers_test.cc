// Tests of engine/internal/json_numbers.h: the rewrite of number literals
// simdjson cannot hold into placeholder strings, the placeholders'
// recognition, and the round trip through simdjson.
#include "engine/internal/json_numbers.h"

#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <string_view>

#include "simdjson.h"

namespace pantherd::engine::internal {
namespace {

// The placeholder for `literal` as the rewrite writes it in JSON text.
std::string Placeholder(std::string_view literal) {
  return "\"\\u0000" + std::string(std::string_view(NumberPlaceholderPrefix()).substr(1)) +
         std::string(literal) + "\"";
}

// The rewrite of `json`, or `json` itself when nothing is rewritten.
std::string Rewrite(std::string_view json,
                    NonFiniteLiterals non_finite = NonFiniteLiterals::kLeave) {
  std::optional<std::string> out = RewriteUnrepresentableNumbers(json, non_finite);
  return out.has_value() ? *out : std::string(json);
}

// Minified JSON of `e` with every placeholder turned back into its literal.
std::string Restore(simdjson::dom::element e) {
  switch (e.type()) {
    case simdjson::dom::element_type::OBJECT: {
      std::string out = "{";
      simdjson::dom::object object = e.get_object().value_unsafe();
      for (simdjson::dom::key_value_pair field : object) {
        if (out.size() > 1) out += ',';
        out += "\"" + std::string(field.key) + "\":" + Restore(field.value);
      }
      return out + "}";
    }
    case simdjson::dom::element_type::ARRAY: {
      std::string out = "[";
      simdjson::dom::array array = e.get_array().value_unsafe();
      for (simdjson::dom::element item : array) {
        if (out.size() > 1) out += ',';
        out += Restore(item);
      }
      return out + "]";
    }
    case simdjson::dom::element_type::STRING: {
      std::string_view s = e.get_string().value_unsafe();
      if (std::optional<std::string_view> literal = NumberPlaceholderLiteral(s)) {
        return std::string(*literal);
      }
      return simdjson::minify(e);
    }
    default:
      return simdjson::minify(e);
  }
}

// Rewrites `json` (which simdjson must reject), parses the rewrite and
// restores the placeholders: the result is `json` minified.
std::string RoundTrip(std::string_view json) {
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  EXPECT_NE(parser.parse(json.data(), json.size()).get(root), simdjson::SUCCESS) << json;
  std::optional<std::string> rewritten = RewriteUnrepresentableNumbers(json);
  if (!rewritten.has_value()) return "<nothing rewritten>";
  if (parser.parse(*rewritten).get(root) != simdjson::SUCCESS) return "<rewrite rejected>";
  return Restore(root);
}

TEST(JsonNumbersTest, BigIntegersInValuePlacesBecomePlaceholders) {
  EXPECT_EQ(Rewrite(R"({"a": 18446744073709551616})"),
            "{\"a\": " + Placeholder("18446744073709551616") + "}");
  EXPECT_EQ(Rewrite(R"({"a": -9223372036854775809})"),
            "{\"a\": " + Placeholder("-9223372036854775809") + "}");
  EXPECT_EQ(Rewrite("[123456789012345678901234567890, -99999999999999999999, 1]"),
            "[" + Placeholder("123456789012345678901234567890") + ", " +
                Placeholder("-99999999999999999999") + ", 1]");
  EXPECT_EQ(Rewrite("99999999999999999999"), Placeholder("99999999999999999999"));
}

TEST(JsonNumbersTest, LimitsOfSixtyFourBitsStay) {
  for (const char* json : {R"({"a": 18446744073709551615})", R"({"a": -9223372036854775808})",
                           R"([9223372036854775807, 0, -0, 1.5, -2.5e10, 1E308])"}) {
    EXPECT_EQ(RewriteUnrepresentableNumbers(json), std::nullopt) << json;
  }
}

TEST(JsonNumbersTest, HugeExponentsBecomePlaceholders) {
  EXPECT_EQ(Rewrite(R"({"h": 1e400, "n": -1e400, "f": 1.5E+999, "tiny": 1e-400})"),
            "{\"h\": " + Placeholder("1e400") + ", \"n\": " + Placeholder("-1e400") +
                ", \"f\": " + Placeholder("1.5E+999") + ", \"tiny\": 1e-400}");
}

TEST(JsonNumbersTest, OrdinaryNumbersAreUntouched) {
  EXPECT_EQ(RewriteUnrepresentableNumbers(R"({"i": 1, "f": -0.5, "e": 1e16, "l": [1, 2e3]})"),
            std::nullopt);
  // Beside a rewritten literal they are copied byte for byte.
  EXPECT_EQ(Rewrite(R"({"i": 1.50, "big": 1e999, "e": 1E2})"),
            "{\"i\": 1.50, \"big\": " + Placeholder("1e999") + ", \"e\": 1E2}");
}

TEST(JsonNumbersTest, NumbersInsideStringsAreUntouched) {
  EXPECT_EQ(
      RewriteUnrepresentableNumbers(R"({"s": "1e400", "t": "123456789012345678901234567890"})"),
      std::nullopt);
  EXPECT_EQ(RewriteUnrepresentableNumbers(R"(["NaN", "x 1e999 y"])", NonFiniteLiterals::kRewrite),
            std::nullopt);
}

TEST(JsonNumbersTest, EscapedQuotesDoNotEndStrings) {
  // Were \" taken for the string's end, 1e400 inside would be rewritten.
  EXPECT_EQ(RewriteUnrepresentableNumbers(R"({"s": "a\": 1e400, \"b", "t": "\\"})"), std::nullopt);
  EXPECT_EQ(Rewrite(R"({"s\"": "\\", "n": 1e400})"),
            R"({"s\"": "\\", "n": )" + Placeholder("1e400") + "}");
}

TEST(JsonNumbersTest, NestedContainers) {
  EXPECT_EQ(Rewrite(R"({"a": [{"b": [1, [1e400]]}, {"c": {"d": -1e400}}], "e": 2})"),
            "{\"a\": [{\"b\": [1, [" + Placeholder("1e400") +
                "]]}, {\"c\": {\"d\": " + Placeholder("-1e400") + "}}], \"e\": 2}");
  // After an inner object closes, ',' inside the outer array is a value's place.
  EXPECT_EQ(Rewrite(R"([{"a": 1}, 1e400])"), "[{\"a\": 1}, " + Placeholder("1e400") + "]");
}

TEST(JsonNumbersTest, LiteralsWhereKeysBelongStay) {
  // Not JSON, and the rewrite must not make it JSON.
  EXPECT_EQ(RewriteUnrepresentableNumbers("{1e400: 1}"), std::nullopt);
  EXPECT_EQ(RewriteUnrepresentableNumbers(R"({"a": 1, 123456789012345678901234567890: 2})"),
            std::nullopt);
  EXPECT_EQ(RewriteUnrepresentableNumbers(R"({"a" 1e400})"), std::nullopt);
}

TEST(JsonNumbersTest, NonFiniteLiteralsOnlyWhenAsked) {
  const char* json = R"({"a": NaN, "b": [Infinity, -Infinity]})";
  EXPECT_EQ(RewriteUnrepresentableNumbers(json), std::nullopt);
  EXPECT_EQ(RewriteUnrepresentableNumbers(json, NonFiniteLiterals::kLeave), std::nullopt);
  EXPECT_EQ(Rewrite(json, NonFiniteLiterals::kRewrite), "{\"a\": " + Placeholder("NaN") +
                                                            ", \"b\": [" + Placeholder("Infinity") +
                                                            ", " + Placeholder("-Infinity") + "]}");
}

TEST(JsonNumbersTest, RoundTrip) {
  EXPECT_EQ(RoundTrip(R"({"big": 123456789012345678901234567890, "huge": 1e999,)"
                      R"( "s": "1e999", "l": [-99999999999999999999, 2, {"n": -1e400}]})"),
            R"({"big":123456789012345678901234567890,"huge":1e999,"s":"1e999",)"
            R"("l":[-99999999999999999999,2,{"n":-1e400}]})");
  EXPECT_EQ(RoundTrip("[18446744073709551616]"), "[18446744073709551616]");
}

TEST(JsonNumbersTest, PlaceholderRecognition) {
  const std::string& prefix = NumberPlaceholderPrefix();
  ASSERT_GT(prefix.size(), 32u);
  EXPECT_EQ(prefix[0], '\0');
  EXPECT_EQ(prefix.back(), ':');
  EXPECT_EQ(&prefix, &NumberPlaceholderPrefix());  // one prefix per process
  EXPECT_EQ(NumberPlaceholderLiteral(prefix + "1e400"), "1e400");
  EXPECT_EQ(NumberPlaceholderLiteral(prefix), std::nullopt);  // no literal
  EXPECT_EQ(NumberPlaceholderLiteral(""), std::nullopt);
  EXPECT_EQ(NumberPlaceholderLiteral("1e400"), std::nullopt);
  EXPECT_EQ(NumberPlaceholderLiteral(std::string(1, '\0') + "pantherd-number-0:1"), std::nullopt);
  std::string other = prefix + "1";
  other[prefix.size() - 2] = other[prefix.size() - 2] == '0' ? '1' : '0';
  EXPECT_EQ(NumberPlaceholderLiteral(other), std::nullopt);
}

}  // namespace
}  // namespace pantherd::engine::internal
