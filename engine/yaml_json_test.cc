#include "engine/yaml_json.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace pantherd::engine {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// Parses `yaml` and converts the whole document to JSON.
std::string ToJson(const std::string& yaml, const YamlJsonOptions& options = {}) {
  absl::StatusOr<std::string> json = YamlToJson(YAML::Load(yaml), options);
  EXPECT_TRUE(json.ok()) << json.status();
  return json.ok() ? *json : "<error>";
}

absl::Status ToJsonError(const std::string& yaml, const YamlJsonOptions& options = {}) {
  absl::StatusOr<std::string> json = YamlToJson(YAML::Load(yaml), options);
  EXPECT_FALSE(json.ok()) << *json;
  return json.status();
}

// The JSON of the value of key `v` in `v: <scalar>`.
std::string Scalar(const std::string& scalar) {
  std::string json = ToJson("v: " + scalar + "\n");
  const std::string prefix = "{\"v\": ";
  EXPECT_EQ(json.substr(0, prefix.size()), prefix) << json;
  return json.substr(prefix.size(), json.size() - prefix.size() - 1);
}

TEST(YamlJsonTest, OnlyCoreBooleansAreBooleans) {
  for (const char* t : {"true", "True", "TRUE"}) EXPECT_EQ(Scalar(t), "true") << t;
  for (const char* f : {"false", "False", "FALSE"}) EXPECT_EQ(Scalar(f), "false") << f;
  for (const char* s : {"yes", "no", "on", "off", "y", "n", "Yes", "NO", "On", "OFF", "tRUE"}) {
    EXPECT_EQ(Scalar(s), std::string("\"") + s + "\"") << s;
  }
}

TEST(YamlJsonTest, NullForms) {
  for (const char* n : {"null", "Null", "NULL", "~", ""}) EXPECT_EQ(Scalar(n), "null") << n;
  EXPECT_EQ(Scalar("nULL"), "\"nULL\"");
  EXPECT_EQ(ToJson("[1, , 2]"), "[1, null, 2]");
}

TEST(YamlJsonTest, IntegersFollowTheCoreSchema) {
  EXPECT_EQ(Scalar("42"), "42");
  EXPECT_EQ(Scalar("-17"), "-17");
  EXPECT_EQ(Scalar("+7"), "7");
  EXPECT_EQ(Scalar("-0"), "0");
  EXPECT_EQ(Scalar("0644"), "644");  // Decimal, not octal.
  EXPECT_EQ(Scalar("007"), "7");
  EXPECT_EQ(Scalar("0x1F"), "31");
  EXPECT_EQ(Scalar("0xffffffffffffffffff"), "4722366482869645213695");
  EXPECT_EQ(Scalar("0o17"), "15");
  EXPECT_EQ(Scalar("123456789012345678901234567890"), "123456789012345678901234567890");
  // Not integers in YAML 1.2 core: strings.
  EXPECT_EQ(Scalar("1:30:00"), "\"1:30:00\"");
  EXPECT_EQ(Scalar("0b101"), "\"0b101\"");
  EXPECT_EQ(Scalar("1_000"), "\"1_000\"");
  EXPECT_EQ(Scalar("0x"), "\"0x\"");
  EXPECT_EQ(Scalar("-0x1F"), "\"-0x1F\"");
  EXPECT_EQ(Scalar("0o8"), "\"0o8\"");
}

TEST(YamlJsonTest, FloatsPrintLikePythonRepr) {
  EXPECT_EQ(Scalar("1.5"), "1.5");
  EXPECT_EQ(Scalar("1."), "1.0");
  EXPECT_EQ(Scalar(".5"), "0.5");
  EXPECT_EQ(Scalar("-2.50"), "-2.5");
  EXPECT_EQ(Scalar("1e3"), "1000.0");
  EXPECT_EQ(Scalar("1E+3"), "1000.0");
  EXPECT_EQ(Scalar("1e16"), "1e+16");
  EXPECT_EQ(Scalar("1e15"), "1000000000000000.0");
  EXPECT_EQ(Scalar("1.5e-5"), "1.5e-05");
  EXPECT_EQ(Scalar("0.0001"), "0.0001");
  EXPECT_EQ(Scalar("0.1"), "0.1");
  EXPECT_EQ(Scalar("-0.0"), "-0.0");
  EXPECT_EQ(Scalar("1e-400"), "0.0");
  EXPECT_EQ(Scalar("3.10"), "3.1");
  EXPECT_EQ(Scalar("1.2.3"), "\"1.2.3\"");
  EXPECT_EQ(Scalar("1e"), "\"1e\"");
  EXPECT_EQ(Scalar("."), "\".\"");
}

TEST(YamlJsonTest, NonFiniteFloatsAreErrorsOrPythonTokens) {
  absl::Status s = ToJsonError("a: 1\nb: .inf\n");
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("line 2"));
  EXPECT_THAT(s.message(), HasSubstr(".inf"));
  EXPECT_EQ(ToJsonError("v: .nan\n").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ToJsonError("v: 1e400\n").code(), absl::StatusCode::kInvalidArgument);

  YamlJsonOptions python;
  python.non_finite = NonFiniteFloats::kPythonTokens;
  EXPECT_EQ(ToJson("[.inf, -.Inf, +.INF, .NaN, 1e400]", python),
            "[Infinity, -Infinity, Infinity, NaN, Infinity]");
  // Not floats: strings.
  EXPECT_EQ(ToJson("[.infinity, -.nan, inf, nan]"), "[\".infinity\", \"-.nan\", \"inf\", \"nan\"]");
}

TEST(YamlJsonTest, QuotedAndBlockScalarsAreAlwaysStrings) {
  EXPECT_EQ(Scalar("\"true\""), "\"true\"");
  EXPECT_EQ(Scalar("'false'"), "\"false\"");
  EXPECT_EQ(Scalar("'123'"), "\"123\"");
  EXPECT_EQ(Scalar("\"null\""), "\"null\"");
  EXPECT_EQ(Scalar("''"), "\"\"");
  EXPECT_EQ(Scalar("!!str 12"), "\"12\"");
  EXPECT_EQ(ToJson("v: |\n  line 1\n  true\n"), "{\"v\": \"line 1\\ntrue\\n\"}");
  EXPECT_EQ(ToJson("v: >-\n  folded\n  42\n"), "{\"v\": \"folded 42\"}");
}

TEST(YamlJsonTest, TimestampsStayStrings) {
  EXPECT_EQ(Scalar("2024-01-15 14:23:45.123"), "\"2024-01-15 14:23:45.123\"");
  EXPECT_EQ(Scalar("2024-01-15"), "\"2024-01-15\"");
  EXPECT_EQ(Scalar("2024-01-15T14:23:45Z"), "\"2024-01-15T14:23:45Z\"");
}

TEST(YamlJsonTest, StandardTagsDemandTheirType) {
  EXPECT_EQ(Scalar("!!int '12'"), "12");
  EXPECT_EQ(Scalar("!!float 1"), "1.0");
  EXPECT_EQ(Scalar("!!bool true"), "true");
  EXPECT_EQ(Scalar("!!null ''"), "null");
  EXPECT_EQ(ToJson("v: !!map {a: 1}\nw: !!seq [1]\n"), "{\"v\": {\"a\": 1}, \"w\": [1]}");
  EXPECT_THAT(ToJsonError("v: !!bool yes\n").message(), HasSubstr("not a boolean"));
  EXPECT_THAT(ToJsonError("v: !!int 1.5\n").message(), HasSubstr("not an integer"));
  absl::Status custom = ToJsonError("a: 1\nv: !custom x\n");
  EXPECT_THAT(custom.message(), HasSubstr("line 2"));
  EXPECT_THAT(custom.message(), HasSubstr("unsupported tag !custom"));
  EXPECT_EQ(ToJsonError("v: !!timestamp 2024-01-01\n").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ToJsonError("v: !!set {a, b}\n").code(), absl::StatusCode::kInvalidArgument);
}

TEST(YamlJsonTest, MappingsKeepKeyOrder) {
  EXPECT_EQ(ToJson("zeta: 1\nalpha: 2\nmid: {y: 1, b: 2, a: 3}\n"),
            "{\"zeta\": 1, \"alpha\": 2, \"mid\": {\"y\": 1, \"b\": 2, \"a\": 3}}");
}

TEST(YamlJsonTest, NonStringKeysBecomeStrings) {
  EXPECT_EQ(ToJson("1: a\ntrue: b\nnull: c\n1.5: d\n0x10: e\n~: f\nOn: g\n"),
            "{\"1\": \"a\", \"true\": \"b\", \"null\": \"f\", \"1.5\": \"d\", \"16\": \"e\", "
            "\"On\": \"g\"}");
}

TEST(YamlJsonTest, RepeatedKeyKeepsFirstPositionAndLastValue) {
  EXPECT_EQ(ToJson("a: 1\nb: 2\na: 3\n"), "{\"a\": 3, \"b\": 2}");
}

TEST(YamlJsonTest, MergeKeysExpandAsPyYaml) {
  const char* yaml =
      "base: &base {a: 1, b: 2}\n"
      "other: &other {b: 20, c: 30}\n"
      "one:\n  <<: *base\n  b: 5\n  z: 0\n"
      "many:\n  <<: [*base, *other]\n  d: 4\n"
      "quoted:\n  '<<': 1\n";
  EXPECT_EQ(ToJson(yaml),
            "{\"base\": {\"a\": 1, \"b\": 2}, \"other\": {\"b\": 20, \"c\": 30}, "
            "\"one\": {\"a\": 1, \"b\": 5, \"z\": 0}, "
            "\"many\": {\"b\": 2, \"c\": 30, \"a\": 1, \"d\": 4}, "
            "\"quoted\": {\"<<\": 1}}");
  EXPECT_THAT(ToJsonError("m:\n  <<: 5\n").message(), HasSubstr("merge key"));
}

TEST(YamlJsonTest, StringsAreEscaped) {
  EXPECT_EQ(Scalar("\"q\\\"b\\\\s\\ttab\\nnl\\x01\\x7f\\r\\b\\f\""),
            "\"q\\\"b\\\\s\\ttab\\nnl\\u0001\\u007f\\r\\b\\f\"");
  EXPECT_EQ(Scalar("\"caf\\u00e9 \\u2603 \\U0001F600\""),
            "\"caf\xC3\xA9 \xE2\x98\x83 \xF0\x9F\x98\x80\"");
  EXPECT_EQ(Scalar("héllo"), "\"h\xC3\xA9llo\"");
  EXPECT_EQ(JsonQuote("a\"b"), "\"a\\\"b\"");
  EXPECT_EQ(JsonQuote(std::string("\0x", 2)), "\"\\u0000x\"");
}

// --- AppendJsonString ---------------------------------------------------------

// The escaping rules stated one byte at a time, independently of the
// word-at-a-time scan: '"', '\\' and the short control escapes by name, other
// bytes below 0x20 and 0x7f as \u00xx (lowercase), everything else copied.
std::string ReferenceJsonString(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20 || c == 0x7f) {
          const char* hex = "0123456789abcdef";
          out += "\\u00";
          out += hex[c >> 4];
          out += hex[c & 0xf];
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out + "\"";
}

std::string Appended(const std::string& s, const std::string& prefix = "") {
  std::string out = prefix;
  AppendJsonString(s, &out);
  return out;
}

TEST(AppendJsonStringTest, NamedEscapes) {
  EXPECT_EQ(Appended("a\"b\\c/d"), "\"a\\\"b\\\\c/d\"");
  EXPECT_EQ(Appended("\b\f\n\r\t"), "\"\\b\\f\\n\\r\\t\"");
  EXPECT_EQ(Appended(std::string("\0\x01\x1f\x7f", 4)), "\"\\u0000\\u0001\\u001f\\u007f\"");
  EXPECT_EQ(Appended(""), "\"\"");
  EXPECT_EQ(Appended("x", "{\"k\":"), "{\"k\":\"x\"");
  // The bytes next to the escaped ranges, and UTF-8, are copied as they are.
  EXPECT_EQ(Appended(" !#[]~\x80\xff\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80"),
            "\" !#[]~\x80\xff\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80\"");
}

TEST(AppendJsonStringTest, EveryByteAtEveryPositionOfTwoWords) {
  // Each byte value alone, at each offset of a 24-byte run of 'a' or of
  // 0xC3 bytes (so that the neighbouring bytes have their top bit set).
  for (char filler : {'a', '\xC3'}) {
    for (int byte = 0; byte < 256; ++byte) {
      for (size_t pos = 0; pos < 24; ++pos) {
        std::string s(24, filler);
        s[pos] = static_cast<char>(byte);
        ASSERT_EQ(Appended(s, "p"), "p" + ReferenceJsonString(s))
            << "byte " << byte << " at " << pos;
      }
    }
  }
}

TEST(AppendJsonStringTest, EscapesAroundWordBoundariesOfEveryLength) {
  const std::vector<std::string> specials = {"\"",
                                             "\\",
                                             "\n",
                                             "\t",
                                             "\r",
                                             "\b",
                                             "\f",
                                             std::string(1, '\0'),
                                             "\x01",
                                             "\x1f",
                                             "\x7f",
                                             " ",
                                             "\x20\x7f",
                                             "\\\"",
                                             "\xC3\xA9",
                                             "\xE2\x82\xAC",
                                             "\xF0\x9F\x98\x80",
                                             "\x80\x00\x01"};
  for (size_t length = 0; length <= 40; ++length) {
    for (size_t pos = 0; pos <= length; ++pos) {
      for (const std::string& special : specials) {
        std::string s(length, 'x');
        s.insert(pos, special);
        ASSERT_EQ(Appended(s), ReferenceJsonString(s)) << "length " << length << " pos " << pos;
        // A second escape 7, 8 and 9 bytes further: the next word.
        for (size_t gap : {7, 8, 9}) {
          if (pos + gap > s.size()) continue;
          std::string t = s;
          t.insert(pos + gap, "\"");
          ASSERT_EQ(Appended(t), ReferenceJsonString(t)) << "length " << length << " pos " << pos;
        }
      }
    }
  }
}

TEST(AppendJsonStringTest, RandomStringsMatchTheByteRules) {
  // Bytes drawn mostly from around the escaped ranges, lengths up to 300.
  static constexpr char kAlphabet[] =
      "\0\x01\x08\x0a\x1f\x20\x21\x22\x23\x5b\x5c\x5d\x7e\x7f"
      "\x80\x81\xa2\xc3\xdc\xdd\xfe\xff"
      "aZ09";
  const std::string alphabet(kAlphabet, sizeof(kAlphabet) - 1);
  ASSERT_EQ(alphabet.size(), 26u);
  std::mt19937_64 random(20240601);
  for (int i = 0; i < 20000; ++i) {
    const size_t length = random() % 300;
    std::string s;
    for (size_t j = 0; j < length; ++j) {
      // One byte in four is any byte at all.
      s.push_back(random() % 4 == 0 ? static_cast<char>(random() & 0xff)
                                    : alphabet[random() % alphabet.size()]);
    }
    ASSERT_EQ(Appended(s), ReferenceJsonString(s)) << "case " << i;
  }
}

TEST(AppendJsonStringTest, LongStringsWithAndWithoutEscapes) {
  std::string plain(100000, 'k');
  EXPECT_EQ(Appended(plain), "\"" + plain + "\"");
  std::string sparse = plain;
  for (size_t i = 0; i < sparse.size(); i += 1001) sparse[i] = '\n';
  EXPECT_EQ(Appended(sparse), ReferenceJsonString(sparse));
  std::string dense(4096, '"');
  EXPECT_EQ(Appended(dense).size(), 2 + 2 * dense.size());
  EXPECT_EQ(Appended(dense), ReferenceJsonString(dense));
}

TEST(YamlJsonTest, Utf8Validation) {
  EXPECT_TRUE(IsValidUtf8("plain ascii"));
  EXPECT_TRUE(IsValidUtf8("\xC3\xA9\xE2\x98\x83\xF0\x9F\x98\x80"));
  EXPECT_FALSE(IsValidUtf8("\xC3"));
  EXPECT_FALSE(IsValidUtf8("\xC0\xAF"));          // Overlong.
  EXPECT_FALSE(IsValidUtf8("\xED\xA0\x80"));      // Surrogate.
  EXPECT_FALSE(IsValidUtf8("\xF4\x90\x80\x80"));  // Above U+10FFFF.
  EXPECT_FALSE(IsValidUtf8("\xFF"));
  EXPECT_THAT(ToJsonError("v: \"\xFF\"\n").message(), HasSubstr("UTF-8"));
}

TEST(YamlJsonTest, Utf8SequencesAndReplacement) {
  const std::string text = "a\xC3\xA9\xE2\x98\x83\xF0\x9F\x98\x80";
  EXPECT_EQ(Utf8SequenceLength(text, 0), 1u);
  EXPECT_EQ(Utf8SequenceLength(text, 1), 2u);
  EXPECT_EQ(Utf8SequenceLength(text, 2), 0u);  // a continuation byte
  EXPECT_EQ(Utf8SequenceLength(text, 3), 3u);
  EXPECT_EQ(Utf8SequenceLength(text, 6), 4u);
  EXPECT_EQ(Utf8SequenceLength("\xF0\x9F\x98", 0), 0u);  // cut short
  EXPECT_EQ(Utf8SequenceLength("\xC0\xAF", 0), 0u);      // overlong
  EXPECT_EQ(Utf8SequenceLength("\xED\xA0\x80", 0), 0u);  // surrogate
  EXPECT_EQ(ReplaceInvalidUtf8(text), text);
  EXPECT_EQ(ReplaceInvalidUtf8("bad \xFF\xC3 end\xE2\x98"),
            "bad \xEF\xBF\xBD\xEF\xBF\xBD end\xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_TRUE(IsValidUtf8(ReplaceInvalidUtf8("\xC0\xAF\xED\xA0\x80\xF4\x90\x80\x80")));
}

TEST(YamlJsonTest, CollectionKeysAreErrors) {
  EXPECT_THAT(ToJsonError("? [1, 2]\n: v\n").message(), HasSubstr("key must be a scalar"));
}

TEST(YamlJsonTest, RecursiveAliasesAndDeepNestingAreErrors) {
  EXPECT_THAT(ToJsonError("a: &x [1, *x]\n").message(), HasSubstr("recursive alias"));
  YamlJsonOptions shallow;
  shallow.max_depth = 3;
  EXPECT_EQ(ToJson("[[[1]]]", shallow), "[[[1]]]");
  EXPECT_EQ(ToJsonError("[[[[1]]]]", shallow).code(), absl::StatusCode::kInvalidArgument);
}

TEST(YamlJsonTest, AliasExpansionIsBounded) {
  std::string yaml = "a: &a [x, x, x, x, x, x, x, x, x, x]\n";
  char prev = 'a';
  for (char c = 'b'; c <= 'j'; ++c) {
    yaml += std::string(1, c) + ": &" + c + " [";
    for (int i = 0; i < 10; ++i) yaml += std::string(i ? ", *" : "*") + prev;
    yaml += "]\n";
    prev = c;
  }
  YamlJsonOptions small;
  small.max_output_bytes = 1 << 20;
  // Refused before any output, by the expansion check (max_output_bytes
  // also bounds the scalar text the aliases expand to).
  EXPECT_THAT(ToJsonError(yaml, small).message(), HasSubstr("alias bomb"));
}

// A YAML document of `levels` anchors, each a mapping merging the previous
// one `fanout` times (`b: &b {<<: [*a, *a, ...]}`): fanout^levels entries
// for a document of a few hundred bytes.
std::string MergeBomb(int levels, int fanout) {
  std::string yaml = "a0: &a0 {k: 1}\n";
  for (int level = 1; level <= levels; ++level) {
    absl::StrAppend(&yaml, "a", level, ": &a", level, " {<<: [");
    for (int i = 0; i < fanout; ++i) absl::StrAppend(&yaml, i ? ", " : "", "*a", level - 1);
    absl::StrAppend(&yaml, "]}\n");
  }
  return yaml;
}

// Found by tests/fuzz/analysis_spec_fuzzer (seed merge_bomb.yml): merge keys
// were expanded without bound before duplicates were dropped, so a 500-byte
// document ran for hours. Both the expansion check and the merge-entry
// budget now refuse it at once.
TEST(YamlJsonTest, MergeKeyBombsAreRefused) {
  const YAML::Node bomb = YAML::Load(MergeBomb(8, 10));
  absl::Status converted = YamlToJson(bomb).status();
  EXPECT_EQ(converted.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(converted.message(), HasSubstr("bomb"));
  absl::StatusOr<std::vector<YamlMapEntry>> entries = YamlMappingEntries(bomb["a8"]);
  EXPECT_EQ(entries.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(entries.status().message(), HasSubstr("merge keys (<<) expand a mapping"));
  // A modest fan-out still merges, first position and last value.
  EXPECT_EQ(ToJson(MergeBomb(3, 3)),
            R"({"a0": {"k": 1}, "a1": {"k": 1}, "a2": {"k": 1}, "a3": {"k": 1}})");
}

TEST(YamlJsonTest, AliasesOfALongScalarAreBounded) {
  std::string yaml = absl::StrCat("s: &s ", std::string(100000, 'x'), "\nl: [");
  for (int i = 0; i < 2000; ++i) absl::StrAppend(&yaml, i ? ", " : "", "*s");
  yaml += "]\n";
  absl::Status converted = ToJsonError(yaml);
  EXPECT_EQ(converted.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(converted.message(), HasSubstr("bytes of text"));
}

TEST(YamlJsonTest, CheckYamlExpansionCountsAliasesAsCopies) {
  const YAML::Node doc = YAML::Load("a: &a [1, 2, 3]\nb: [*a, *a]\n");
  YamlExpansionLimits limits;
  // The root, key a and its list of 3 (5), key b and its list (2), and
  // twice *a, a list of 3 (8): 16 values; 11 bytes of text ("a", "b", and
  // "1", "2", "3" three times).
  limits.max_nodes = 16;
  EXPECT_TRUE(CheckYamlExpansion(doc, limits).ok());
  limits.max_nodes = 15;
  EXPECT_THAT(CheckYamlExpansion(doc, limits).message(), HasSubstr("more than 15 values"));
  limits.max_nodes = 100;
  limits.max_scalar_bytes = 11;
  EXPECT_TRUE(CheckYamlExpansion(doc, limits).ok());
  limits.max_scalar_bytes = 10;
  EXPECT_THAT(CheckYamlExpansion(doc, limits).message(), HasSubstr("more than 10 bytes"));
  limits.max_nodes = size_t{1} << 20;
  limits.max_scalar_bytes = size_t{1} << 20;
  EXPECT_THAT(CheckYamlExpansion(YAML::Load("a: &x [1, *x]\n"), limits).message(),
              HasSubstr("recursive alias"));
}

// Converting 0o/0x integers to decimal is quadratic in their length; they
// are refused beyond Python's 4300 digits (a fuzz seed: long_hex.yml).
TEST(YamlJsonTest, LongBasePrefixedIntegers) {
  EXPECT_EQ(ToJson("v: 0xffffffffffffffffffff"), R"({"v": 1208925819614629174706175})");
  EXPECT_EQ(ToJson("v: 0o777777777777777777777777777777"),
            R"({"v": 1237940039285380274899124223})");
  EXPECT_EQ(ToJson("v: 0x10000000000000000"), R"({"v": 18446744073709551616})");
  EXPECT_EQ(ToJson(absl::StrCat("v: 0x", std::string(100000, '0'), "1f")), R"({"v": 31})");
  const std::string max_hex = absl::StrCat("v: 0x", std::string(4300, 'f'));
  EXPECT_TRUE(YamlToJson(YAML::Load(max_hex)).ok());
  absl::Status too_long = ToJsonError(absl::StrCat("v: 0x1", std::string(4300, '0')));
  EXPECT_EQ(too_long.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(too_long.message(), HasSubstr("more than 4300 digits"));
  // Quoted, or tagged !!str, it is a string of any length.
  const std::string quoted = absl::StrCat("0x", std::string(5000, '1'));
  EXPECT_EQ(ToJson(absl::StrCat("v: !!str ", quoted)), absl::StrCat(R"({"v": ")", quoted, "\"}"));
}

TEST(YamlJsonTest, NullAndUndefinedNodesAreNull) {
  EXPECT_EQ(*YamlToJson(YAML::Node()), "null");
  EXPECT_EQ(ToJson(""), "null");
}

TEST(YamlJsonTest, ResolveScalarReportsTypeTextAndRaw) {
  YAML::Node doc = YAML::Load("[0644, 1., yes, ~, 'x', !!str 5]");
  std::vector<YamlScalar> got;
  for (const YAML::Node& n : doc) got.push_back(*ResolveYamlScalar(n));
  EXPECT_EQ(got[0].type, YamlScalarType::kInt);
  EXPECT_EQ(got[0].text, "644");
  EXPECT_EQ(got[0].raw, "0644");
  EXPECT_EQ(got[1].type, YamlScalarType::kFloat);
  EXPECT_EQ(got[1].text, "1.0");
  EXPECT_EQ(got[2].type, YamlScalarType::kString);
  EXPECT_EQ(got[3].type, YamlScalarType::kNull);
  EXPECT_EQ(got[4].type, YamlScalarType::kString);
  EXPECT_EQ(got[5].type, YamlScalarType::kString);
  EXPECT_EQ(got[5].text, "5");
  EXPECT_FALSE(ResolveYamlScalar(YAML::Load("[1]")).ok());
}

TEST(YamlJsonTest, MappingEntriesCarryKeyLines) {
  YAML::Node doc = YAML::Load("first: 1\n\nsecond: 2\n3: x\n");
  absl::StatusOr<std::vector<YamlMapEntry>> entries = YamlMappingEntries(doc);
  ASSERT_TRUE(entries.ok()) << entries.status();
  ASSERT_EQ(entries->size(), 3u);
  EXPECT_EQ((*entries)[0].key, "first");
  EXPECT_EQ((*entries)[0].line, 1);
  EXPECT_EQ((*entries)[1].key, "second");
  EXPECT_EQ((*entries)[1].line, 3);
  EXPECT_TRUE((*entries)[1].key_is_string);
  EXPECT_EQ((*entries)[2].key, "3");
  EXPECT_FALSE((*entries)[2].key_is_string);
  EXPECT_FALSE(YamlMappingEntries(YAML::Load("[1]")).ok());
}

TEST(YamlJsonTest, LinesAreOneBased) {
  YAML::Node doc = YAML::Load("a: 1\nb:\n  - x\n");
  EXPECT_EQ(YamlLine(doc), 1);
  EXPECT_EQ(YamlLine(doc["b"][0]), 3);
  EXPECT_EQ(YamlLine(YAML::Node()), 0);
}

TEST(YamlJsonTest, ReadBool) {
  YAML::Node doc = YAML::Load("a: true\nb: False\nc: yes\nd: 'true'\ne: 1\nf:\n");
  EXPECT_TRUE(*ReadYamlBool(doc["a"], "a"));
  EXPECT_FALSE(*ReadYamlBool(doc["b"], "b"));

  absl::StatusOr<bool> yes = ReadYamlBool(doc["c"], "Enabled");
  ASSERT_FALSE(yes.ok());
  EXPECT_EQ(yes.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(yes.status().message(), HasSubstr("Enabled at line 3: must be true or false"));
  EXPECT_THAT(yes.status().message(), HasSubstr("YAML 1.2"));

  absl::StatusOr<bool> quoted = ReadYamlBool(doc["d"], "Enabled");
  ASSERT_FALSE(quoted.ok());
  EXPECT_THAT(quoted.status().message(), HasSubstr("quoted string \"true\""));
  EXPECT_FALSE(ReadYamlBool(doc["e"], "x").ok());

  // An empty value is reported at the key's line when given.
  absl::StatusOr<bool> empty = ReadYamlBool(doc["f"], "Enabled", 6);
  ASSERT_FALSE(empty.ok());
  EXPECT_THAT(empty.status().message(), HasSubstr("Enabled at line 6: "));
  EXPECT_THAT(empty.status().message(), HasSubstr("empty value"));
}

TEST(YamlJsonTest, ReadInt) {
  YAML::Node doc = YAML::Load(
      "a: 60\nb: 0x10\nc: '5'\nd: 1.5\ne: 99999999999999999999\nf: -9223372036854775808\n"
      "g: true\n");
  EXPECT_EQ(*ReadYamlInt(doc["a"], "a"), 60);
  EXPECT_EQ(*ReadYamlInt(doc["b"], "b"), 16);
  EXPECT_EQ(*ReadYamlInt(doc["f"], "f"), INT64_MIN);
  EXPECT_THAT(ReadYamlInt(doc["c"], "Threshold").status().message(),
              HasSubstr("Threshold at line 3: must be an integer, found the quoted string"));
  EXPECT_THAT(ReadYamlInt(doc["d"], "Threshold").status().message(),
              HasSubstr("found the number 1.5"));
  EXPECT_THAT(ReadYamlInt(doc["e"], "Threshold").status().message(), HasSubstr("out of range"));
  EXPECT_FALSE(ReadYamlInt(doc["g"], "Threshold").ok());
}

TEST(YamlJsonTest, ReadString) {
  YAML::Node doc = YAML::Load("a: hello\nb: '123'\nc: 123\nd: true\ne:\nf: [x]\ng: 1:30\n");
  EXPECT_EQ(*ReadYamlString(doc["a"], "a"), "hello");
  EXPECT_EQ(*ReadYamlString(doc["b"], "b"), "123");
  EXPECT_EQ(*ReadYamlString(doc["g"], "g"), "1:30");
  absl::Status c = ReadYamlString(doc["c"], "Description").status();
  EXPECT_THAT(c.message(),
              HasSubstr("Description at line 3: must be a string, found the integer 123"));
  EXPECT_THAT(c.message(), HasSubstr("quote it"));
  EXPECT_FALSE(ReadYamlString(doc["d"], "d").ok());
  EXPECT_THAT(ReadYamlString(doc["e"], "Runbook", 5).status().message(),
              HasSubstr("Runbook at line 5: must be a string, found an empty value"));
  EXPECT_THAT(ReadYamlString(doc["f"], "f").status().message(), HasSubstr("found a list"));
}

TEST(YamlJsonTest, ReadStringList) {
  YAML::Node doc = YAML::Load("a: [x, 'y', z]\nb: []\nc: x\nd:\n  - ok\n  - 5\ne:\n");
  EXPECT_THAT(*ReadYamlStringList(doc["a"], "a"), ElementsAre("x", "y", "z"));
  EXPECT_TRUE(ReadYamlStringList(doc["b"], "b")->empty());
  EXPECT_THAT(ReadYamlStringList(doc["c"], "Tags").status().message(),
              HasSubstr("Tags at line 3: must be a list of strings, found the string \"x\""));
  EXPECT_THAT(ReadYamlStringList(doc["d"], "Tags").status().message(),
              HasSubstr("Tags[1] at line 6: must be a string, found the integer 5"));
  EXPECT_FALSE(ReadYamlStringList(doc["e"], "Tags", 7).ok());
}

}  // namespace
}  // namespace pantherd::engine
