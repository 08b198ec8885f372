// Tests of engine/normalize.h: Panther's log-processing normalisation of raw
// events (null dropping, p_ fields, indicators, timestamps, limits). No
// Python involved.
#include "engine/normalize.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "engine/event.h"

namespace pantherd::engine {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

constexpr char kRowId[] = "0123456789abcdef0123456789abcdef";

absl::Time ParseTime() {
  return absl::FromCivil(absl::CivilSecond(2024, 1, 2, 3, 4, 5), absl::UTCTimeZone()) +
         absl::Nanoseconds(123456789);
}

NormalizeContext Context() {
  NormalizeContext ctx;
  ctx.source_id = "src-1";
  ctx.source_label = "Okta Prod";
  ctx.parse_time = ParseTime();
  ctx.row_id_generator = [] { return std::string(kRowId); };
  return ctx;
}

NormalizedEvent Normalize(const std::string& raw, const NormalizeContext& ctx = Context()) {
  absl::StatusOr<NormalizedEvent> event = NormalizeEvent(raw, kOktaSystemLog, ctx);
  EXPECT_TRUE(event.ok()) << event.status() << " for " << raw;
  return event.ok() ? *std::move(event) : NormalizedEvent{};
}

// The generated fields of an event without a usable timestamp or indicators.
std::string Suffix(const std::string& event_time = "2024-01-02 03:04:05.123456789",
                   const std::string& indicators =
                       R"("p_any_ip_addresses":[],"p_any_domain_names":[],"p_any_emails":[],)"
                       R"("p_any_usernames":[])") {
  return absl::StrCat(R"("p_log_type":"Okta.SystemLog","p_row_id":")", kRowId,
                      R"(","p_event_time":")", event_time,
                      R"(","p_parse_time":"2024-01-02 03:04:05.123456789",)"
                      R"("p_source_id":"src-1","p_source_label":"Okta Prod",)",
                      indicators, "}");
}

std::string Row(const std::string& event_fields) {
  return absl::StrCat("{", event_fields, event_fields.empty() ? "" : ",", Suffix());
}

absl::Status NormalizeStatus(const std::string& raw, absl::string_view log_type = kOktaSystemLog,
                             const NormalizeContext& ctx = Context()) {
  return NormalizeEvent(raw, log_type, ctx).status();
}

// --- null fields -------------------------------------------------------------

TEST(NormalizeTest, DropsNullMembersAtEveryLevel) {
  EXPECT_EQ(Normalize(R"({"a": null, "b": {"c": null, "d": 1, "e": {"f": null}}, "k": "v"})").json,
            Row(R"("b":{"d":1,"e":{}},"k":"v")"));
}

TEST(NormalizeTest, KeepsNullArrayElementsButCleansObjectsInArrays) {
  EXPECT_EQ(Normalize(R"({"g": [null, {"h": null, "i": 2}, [null, 3]], "t": null})").json,
            Row(R"("g":[null,{"i":2},[null,3]])"));
}

TEST(NormalizeTest, OnlyNullsLeavesOnlyGeneratedFields) {
  EXPECT_EQ(Normalize(R"({"outcome": null, "target": null})").json, Row(""));
  EXPECT_EQ(Normalize("{}").json, Row(""));
}

TEST(NormalizeTest, RepeatedKeysFollowJsonLoads) {
  // First position, last value; a last value of null drops the key.
  EXPECT_EQ(Normalize(R"({"a": 1, "b": 2, "a": 3})").json, Row(R"("a":3,"b":2)"));
  EXPECT_EQ(Normalize(R"({"a": 1, "b": 2, "a": null})").json, Row(R"("b":2)"));
  EXPECT_EQ(Normalize(R"({"a": null, "b": 2, "a": {"x": null, "y": 1}})").json,
            Row(R"("a":{"y":1},"b":2)"));
}

TEST(NormalizeTest, RowReadsBackWithParseEvent) {
  NormalizedEvent e = Normalize(R"({"a": {"b": null}, "uuid": "u-1"})");
  absl::StatusOr<std::shared_ptr<const EventDocument>> doc = ParseEvent(e.json);
  ASSERT_TRUE(doc.ok()) << doc.status();
  std::optional<std::string_view> log_type = FindTopLevelString(**doc, "p_log_type");
  ASSERT_TRUE(log_type.has_value());
  EXPECT_EQ(*log_type, "Okta.SystemLog");
}

// --- values ----------------------------------------------------------------------

TEST(NormalizeTest, NumbersKeepTheirValueAndKind) {
  EXPECT_EQ(Normalize(R"({"i": 1, "f": 1.0, "g": 1.50, "e": 1E2, "s": 1e16, "n": -0.5,)"
                      R"( "z": -0.0, "max": 18446744073709551615, "min": -9223372036854775808,)"
                      R"( "pi": 3.141592653589793})")
                .json,
            Row(R"("i":1,"f":1.0,"g":1.5,"e":100.0,"s":1e+16,"n":-0.5,"z":-0.0,)"
                R"("max":18446744073709551615,"min":-9223372036854775808,)"
                R"("pi":3.141592653589793)"));
}

TEST(NormalizeTest, NumbersBeyondSimdjsonAreCopiedVerbatim) {
  EXPECT_EQ(Normalize(R"({"big": 123456789012345678901234567890, "huge": 1e999,)"
                      R"( "s": "1e999", "l": [-99999999999999999999, 2]})")
                .json,
            Row(R"("big":123456789012345678901234567890,"huge":1e999,"s":"1e999",)"
                R"("l":[-99999999999999999999,2])"));
}

TEST(NormalizeTest, StringsAreReEscaped) {
  EXPECT_EQ(Normalize(R"({"q": "a\"b\\c\/d", "c": "\u0001\t\n\u001f", "u": "caf\u00e9 ✓ 😀",)"
                      R"( "k\"ey": true, "nul": "x\u0000y", "f": false})")
                .json,
            Row(R"("q":"a\"b\\c/d","c":"\u0001\t\n\u001f","u":"café ✓ 😀","k\"ey":true,)"
                R"("nul":"x\u0000y","f":false)"));
}

// --- generated fields ---------------------------------------------------------

TEST(NormalizeTest, GeneratedFieldsReplaceInputOnesAndOthersStay) {
  EXPECT_EQ(Normalize(R"({"p_log_type": "X", "p_row_id": "r", "p_event_time": "t",)"
                      R"( "p_any_emails": ["a@b.co"], "p_enrichment": {"t": {"k": 1}}, "x": 1})")
                .json,
            Row(R"("p_enrichment":{"t":{"k":1}},"x":1)"));
}

TEST(NormalizeTest, ContextDefaults) {
  NormalizeContext ctx;  // now, random row ids, no source
  absl::Time before = absl::Now();
  NormalizedEvent a = Normalize("{}", ctx);
  NormalizedEvent b = Normalize("{}", ctx);
  absl::Time after = absl::Now();
  EXPECT_GE(a.parse_time, before);
  EXPECT_LE(a.parse_time, after);
  EXPECT_EQ(a.event_time, a.parse_time);
  EXPECT_FALSE(a.event_time_from_event);
  EXPECT_THAT(a.row_id, ::testing::MatchesRegex("[0-9a-f]{32}"));
  EXPECT_NE(a.row_id, b.row_id);
  EXPECT_THAT(a.json, HasSubstr(absl::StrCat(R"("p_row_id":")", a.row_id, R"(")")));
  EXPECT_THAT(a.json, HasSubstr(R"("p_source_id":"","p_source_label":"")"));
  EXPECT_EQ(a.log_type, "Okta.SystemLog");
}

TEST(NormalizeTest, RandomRowIdsAreHexAndDistinct) {
  std::set<std::string> ids;
  for (int i = 0; i < 1000; ++i) {
    std::string id = RandomRowId();
    ASSERT_EQ(id.size(), 32u);
    ASSERT_EQ(id.find_first_not_of("0123456789abcdef"), std::string::npos) << id;
    ids.insert(id);
  }
  EXPECT_EQ(ids.size(), 1000u);
}

TEST(NormalizeTest, EventIdIsTheUuid) {
  EXPECT_EQ(Normalize(R"({"uuid": "f790999f-fe87-467a-9880-6982a583986c"})").event_id,
            "f790999f-fe87-467a-9880-6982a583986c");
  EXPECT_EQ(Normalize(R"({"uuid": "a", "uuid": "b"})").event_id, "b");
  EXPECT_EQ(Normalize(R"({"eventType": "x"})").event_id, "");
  EXPECT_EQ(Normalize(R"({"uuid": null})").event_id, "");
  EXPECT_EQ(Normalize(R"({"uuid": 42})").event_id, "");
  EXPECT_EQ(Normalize(R"({"UUID": "x"})").event_id, "");  // case-sensitive, as Panther's schema
}

// --- time --------------------------------------------------------------------------

TEST(NormalizeTest, PublishedBecomesEventTimeInPantherFormat) {
  NormalizedEvent e = Normalize(R"({"published": "2020-02-14T20:18:57.718Z", "x": 1})");
  EXPECT_EQ(e.json, absl::StrCat(R"({"published":"2020-02-14 20:18:57.718000000","x":1,)",
                                 Suffix("2020-02-14 20:18:57.718000000")));
  EXPECT_TRUE(e.event_time_from_event);
  EXPECT_EQ(e.event_time,
            absl::FromCivil(absl::CivilSecond(2020, 2, 14, 20, 18, 57), absl::UTCTimeZone()) +
                absl::Milliseconds(718));
  EXPECT_EQ(e.parse_time, ParseTime());
}

TEST(NormalizeTest, MissingOrUnusablePublishedFallsBackToParseTime) {
  const std::string parse_time = "2024-01-02 03:04:05.123456789";
  for (const char* raw : {R"({"x": 1})", R"({"x": 1, "published": null})"}) {
    NormalizedEvent e = Normalize(raw);
    EXPECT_EQ(e.json, absl::StrCat(R"({"x":1,)", Suffix(parse_time))) << raw;
    EXPECT_FALSE(e.event_time_from_event);
    EXPECT_EQ(e.event_time, ParseTime());
  }
  // Left as they were.
  EXPECT_EQ(Normalize(R"({"published": "2017-09-31T22:23:07.777Z"})").json,
            absl::StrCat(R"({"published":"2017-09-31T22:23:07.777Z",)", Suffix(parse_time)));
  EXPECT_EQ(Normalize(R"({"published": 1581711537718})").json,
            absl::StrCat(R"({"published":1581711537718,)", Suffix(parse_time)));
  EXPECT_EQ(Normalize(R"({"Published": "2020-02-14T20:18:57.718Z"})").json,
            absl::StrCat(R"({"Published":"2020-02-14T20:18:57.718Z",)", Suffix(parse_time)));
}

TEST(NormalizeTest, ParseEventTimestampFormats) {
  auto format = [](absl::string_view text) -> std::string {
    std::optional<absl::Time> t = ParseEventTimestamp(text);
    return t.has_value() ? FormatPantherTime(*t) : "invalid";
  };
  EXPECT_EQ(format("2020-02-14T20:18:57.718Z"), "2020-02-14 20:18:57.718000000");
  EXPECT_EQ(format("2020-02-14t20:18:57z"), "2020-02-14 20:18:57.000000000");
  EXPECT_EQ(format("2020-02-14T22:18:57.5+02:00"), "2020-02-14 20:18:57.500000000");
  EXPECT_EQ(format("2020-02-14T00:18:57-05:30"), "2020-02-14 05:48:57.000000000");
  EXPECT_EQ(format("2020-02-14T20:18:57.123456789123Z"), "2020-02-14 20:18:57.123456789");
  EXPECT_EQ(format("2024-02-29T00:00:00Z"), "2024-02-29 00:00:00.000000000");
  EXPECT_EQ(format("2000-02-29T00:00:00Z"), "2000-02-29 00:00:00.000000000");
  EXPECT_EQ(format("1999-12-31T23:59:59.999Z"), "1999-12-31 23:59:59.999000000");
  // Panther's own format (replayed rows), UTC.
  EXPECT_EQ(format("2022-03-22 14:21:53.225"), "2022-03-22 14:21:53.225000000");
  EXPECT_EQ(format("2020-11-25 21:27:03.496000000"), "2020-11-25 21:27:03.496000000");
  EXPECT_EQ(format("2023-05-26 20:18:51"), "2023-05-26 20:18:51.000000000");
  EXPECT_EQ(format("2021-10-08 19:55:04.448Z"), "2021-10-08 19:55:04.448000000");
  for (const char* bad :
       {"2017-09-31T22:23:07.777Z", "2023-02-29T00:00:00Z", "1900-02-29T00:00:00Z",
        "2020-13-01T00:00:00Z", "2020-00-01T00:00:00Z", "2020-01-01T24:00:00Z",
        "2020-01-01T23:60:00Z", "2016-12-31T23:59:60Z", "2020-02-14T20:18:57.718",
        "2020-02-14T20:18:57.Z", "2020-02-14T20:18:57.718Z ", "2020-02-14T20:18:57+0200",
        "2020-02-14", "", "20-02-14T20:18:57Z", "2020/02/14T20:18:57Z", "2020-02-14X20:18:57Z",
        "2020-02-14T20:18:57+24:00"}) {
    EXPECT_EQ(format(bad), "invalid") << bad;
  }
}

// Found by tests/fuzz/normalize_fuzzer: an offset carried the last second of
// 9999 into the year 10000, which was written into the row as
// "10000-01-01 ..." and did not read back, so normalising the row again
// changed it; years before 1000 were written in fewer digits ("999-12-31")
// and did not read back either. Times outside the years 1000-9999 (UTC) are
// not read.
TEST(NormalizeTest, ParseEventTimestampKeepsToFourDigitYears) {
  auto format = [](absl::string_view text) -> std::string {
    std::optional<absl::Time> t = ParseEventTimestamp(text);
    return t.has_value() ? FormatPantherTime(*t) : "invalid";
  };
  EXPECT_EQ(format("9999-12-31T23:59:59.999999999Z"), "9999-12-31 23:59:59.999999999");
  EXPECT_EQ(format("9999-12-31T23:59:59+00:01"), "9999-12-31 23:58:59.000000000");
  EXPECT_EQ(format("1000-01-01T00:00:00Z"), "1000-01-01 00:00:00.000000000");
  EXPECT_EQ(format("1000-01-01T23:00:00+23:00"), "1000-01-01 00:00:00.000000000");
  for (const char* bad : {"9999-12-31T23:59:59.999999999-23:59", "9999-12-31T23:00:00-01:00",
                          "1000-01-01T00:00:00+00:01", "0999-12-31T23:59:59Z",
                          "0001-01-01T00:00:00Z", "0000-06-01 00:00:00"}) {
    EXPECT_EQ(format(bad), "invalid") << bad;
  }
  // The row of such an event keeps the text and takes the parse time.
  const std::string raw = R"({"published":"9999-12-31T23:59:59-23:59"})";
  NormalizeContext ctx;
  ctx.parse_time = absl::FromUnixSeconds(1700000000);
  ctx.row_id_generator = [] { return std::string(32, 'a'); };
  absl::StatusOr<NormalizedEvent> row = NormalizeEvent(raw, kOktaSystemLog, ctx);
  ASSERT_TRUE(row.ok()) << row.status();
  EXPECT_FALSE(row->event_time_from_event);
  EXPECT_EQ(row->event_time, ctx.parse_time);
  absl::StatusOr<NormalizedEvent> again = NormalizeEvent(row->json, kOktaSystemLog, ctx);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->json, row->json);
}

TEST(NormalizeTest, FormatPantherTimeHasNineDigits) {
  EXPECT_EQ(FormatPantherTime(absl::UnixEpoch()), "1970-01-01 00:00:00.000000000");
  EXPECT_EQ(FormatPantherTime(absl::FromUnixNanos(1581711537718000001)),
            "2020-02-14 20:18:57.718000001");
}

// What FormatPantherTime promises: absl::FormatTime's rendering.
std::string AbslPantherTime(absl::Time t) {
  return absl::FormatTime("%Y-%m-%d %H:%M:%E9S", t, absl::UTCTimeZone());
}

absl::Time Utc(int64_t y, int mo, int d, int h = 0, int mi = 0, int s = 0) {
  return absl::FromCivil(absl::CivilSecond(y, mo, d, h, mi, s), absl::UTCTimeZone());
}

TEST(NormalizeTest, FormatPantherTimeMatchesAbslAtEdges) {
  const absl::Duration ns = absl::Nanoseconds(1);
  const absl::Duration quarter_ns = ns / 4;  // absl::Time's resolution
  std::vector<absl::Time> times = {
      absl::UnixEpoch(),
      absl::UnixEpoch() - ns,
      absl::UnixEpoch() - quarter_ns,
      absl::UnixEpoch() + quarter_ns,
      absl::UnixEpoch() + 3 * quarter_ns,
      absl::UnixEpoch() - absl::Seconds(1) + quarter_ns,
      Utc(1969, 12, 31, 23, 59, 59) + absl::Milliseconds(500),
      Utc(1900, 2, 28, 23, 59, 59),
      Utc(1900, 3, 1),
      Utc(2000, 2, 29, 12),
      Utc(2100, 2, 28, 23, 59, 59) + absl::Nanoseconds(999999999),
      Utc(2100, 3, 1),
      Utc(1600, 2, 29),
      Utc(1601, 1, 1),
      Utc(1000, 1, 1),
      Utc(1000, 1, 1) - ns,
      Utc(1000, 1, 1) - quarter_ns,
      Utc(999, 12, 31, 23, 59, 59),
      Utc(1, 1, 1),
      Utc(0, 1, 1),
      Utc(-1, 12, 31, 23, 59, 59),
      Utc(-4713, 11, 24, 12),
      Utc(9999, 12, 31, 23, 59, 59) + absl::Nanoseconds(999999999),
      Utc(9999, 12, 31, 23, 59, 59) + absl::Nanoseconds(999999999) + 3 * quarter_ns,
      Utc(10000, 1, 1),
      Utc(292277026596, 12, 4, 15, 30, 7),
      absl::FromUnixSeconds(INT64_MAX),
      absl::FromUnixSeconds(INT64_MIN),
      absl::InfiniteFuture(),
      absl::InfinitePast(),
  };
  for (absl::Time t : times) {
    EXPECT_EQ(FormatPantherTime(t), AbslPantherTime(t)) << t;
  }
  // Spot checks of the common range, written out.
  EXPECT_EQ(FormatPantherTime(Utc(1969, 12, 31, 23, 59, 59) + absl::Milliseconds(500)),
            "1969-12-31 23:59:59.500000000");
  EXPECT_EQ(FormatPantherTime(absl::UnixEpoch() - quarter_ns), "1969-12-31 23:59:59.999999999");
  EXPECT_EQ(FormatPantherTime(Utc(2000, 2, 29, 12)), "2000-02-29 12:00:00.000000000");
  EXPECT_EQ(FormatPantherTime(Utc(1000, 1, 1)), "1000-01-01 00:00:00.000000000");
  EXPECT_EQ(FormatPantherTime(Utc(9999, 12, 31, 23, 59, 59) + absl::Nanoseconds(999999999)),
            "9999-12-31 23:59:59.999999999");
}

TEST(NormalizeTest, FormatPantherTimeMatchesAbslOnRandomTimes) {
  std::mt19937_64 random(7);
  // Seconds from about the year 600 to the year 11500, with a random
  // quarter-nanosecond fraction: in and out of the four-digit-year range.
  std::uniform_int_distribution<int64_t> seconds(-43000000000, 300000000000);
  std::uniform_int_distribution<int64_t> quarters(0, 4 * int64_t{1000000000} - 1);
  int mismatches = 0;
  for (int i = 0; i < 300000 && mismatches < 5; ++i) {
    absl::Time t =
        absl::FromUnixSeconds(seconds(random)) + quarters(random) * absl::Nanoseconds(1) / 4;
    std::string fast = FormatPantherTime(t);
    std::string expected = AbslPantherTime(t);
    if (fast != expected) {
      ++mismatches;
      ADD_FAILURE() << fast << " != " << expected;
    }
  }
  // And every day of a span around the epoch and of a 400-year cycle, at
  // 23:59:59.999999999 (the last instant of each day).
  for (int64_t day = -150000; day < 150000 && mismatches < 5; ++day) {
    absl::Time t = absl::FromUnixSeconds(day * 86400 + 86399) + absl::Nanoseconds(999999999);
    if (FormatPantherTime(t) != AbslPantherTime(t)) {
      ++mismatches;
      ADD_FAILURE() << FormatPantherTime(t) << " != " << AbslPantherTime(t);
    }
  }
  EXPECT_EQ(mismatches, 0);
}

TEST(NormalizeTest, PublishedOutsideFourDigitYearsIsKeptAsText) {
  // Years 0000..0999 have four digits in the text, but would be written in
  // fewer (absl's %Y) and not read back: the text stays, and p_event_time
  // is the parse time (ParseEventTimestampKeepsToFourDigitYears).
  NormalizedEvent e = Normalize(R"({"published": "0999-12-31T23:59:59.5Z"})");
  EXPECT_FALSE(e.event_time_from_event);
  EXPECT_THAT(e.json, HasSubstr(R"("published":"0999-12-31T23:59:59.5Z")"));
  EXPECT_EQ(e.event_time, e.parse_time);
  NormalizedEvent before_epoch = Normalize(R"({"published": "1969-07-20T20:17:40.123+01:00"})");
  EXPECT_THAT(before_epoch.json, HasSubstr(R"("published":"1969-07-20 19:17:40.123000000")"));
}

// --- writing ---------------------------------------------------------------------

TEST(NormalizeTest, IntegersAtTheLimitsOf64Bits) {
  EXPECT_EQ(Normalize(R"({"a": -9223372036854775808, "b": 9223372036854775807,)"
                      R"( "c": 18446744073709551615, "d": 0, "e": -1, "f": [7, 10]})")
                .json,
            Row(R"("a":-9223372036854775808,"b":9223372036854775807,)"
                R"("c":18446744073709551615,"d":0,"e":-1,"f":[7,10])"));
}

TEST(NormalizeTest, NestedObjectsKeepTheirOwnMembersAndRepeats) {
  // Objects inside objects and arrays, repeated keys at several levels, and
  // members after a nested object: each object keeps its own members.
  EXPECT_EQ(Normalize(R"({"a": {"x": 1, "b": {"x": 2, "x": 3, "y": null}, "x": 4, "z": [{"x": 5,)"
                      R"( "x": null}, {"q": {"r": {}}, "q": 6}], "w": 7}, "a2": 8, "a": {"k": 9,)"
                      R"( "k": {"m": 1}}, "t": 10})")
                .json,
            Row(R"("a":{"k":{"m":1}},"a2":8,"t":10)"));
  EXPECT_EQ(Normalize(R"({"a": {"x": 1, "b": {"x": 2, "x": 3, "y": null}, "x": 4, "z": [{"x": 5,)"
                      R"( "x": null}, {"q": {"r": {}}, "q": 6}], "w": 7}, "t": 10})")
                .json,
            Row(R"("a":{"x":4,"b":{"x":3},"z":[{},{"q":6}],"w":7},"t":10)"));
}

TEST(NormalizeTest, RowsMuchLongerThanTheEventAreWrittenWhole) {
  // A raw DEL byte (valid JSON) becomes six bytes, "1E2" becomes "100.0":
  // the row outgrows the room sized from the event, several times over.
  std::string dels(5000, '\x7f');
  std::string escaped;
  for (int i = 0; i < 5000; ++i) escaped += "\\u007f";
  std::string numbers = "[";
  std::string written = "[";
  for (int i = 0; i < 3000; ++i) {
    numbers += i ? ",1E2" : "1E2";
    written += i ? ",100.0" : "100.0";
  }
  numbers += "]";
  written += "]";
  NormalizedEvent e = Normalize(
      absl::StrCat(R"({"d":")", dels, R"(",")", dels, R"(":)", numbers, R"(,"short":"\n\"\\"})"));
  EXPECT_EQ(e.json, Row(absl::StrCat(R"("d":")", escaped, R"(",")", escaped, R"(":)", written,
                                     R"(,"short":"\n\"\\")")));
}

TEST(NormalizeTest, StringsOfEveryShortLength) {
  // Lengths 0..40 of keys and values, with and without an escape at the end.
  for (int n = 0; n <= 40; ++n) {
    const std::string plain(n, 'v');
    const std::string key(n, 'k');
    EXPECT_EQ(
        Normalize(absl::StrCat(R"({")", key, R"(":")", plain, R"(","x":")", plain, R"(\t"})")).json,
        Row(absl::StrCat(R"(")", key, R"(":")", plain, R"(","x":")", plain, R"(\t")")))
        << n;
  }
}

TEST(NormalizeTest, WideObjectsWithRepeatsBeyondTheLinearScan) {
  // 40 distinct keys, then the first ten again (new values) and one null.
  std::string raw = "{";
  std::string expected;
  for (int i = 0; i < 40; ++i) {
    absl::StrAppend(&raw, i == 0 ? "" : ",", "\"k", i, "\":", i);
    absl::StrAppend(&expected, i == 0 ? "" : ",", "\"k", i, "\":", i < 10 ? i + 100 : i);
  }
  for (int i = 0; i < 10; ++i) absl::StrAppend(&raw, ",\"k", i, "\":", i + 100);
  absl::StrAppend(&raw, ",\"k39\":null}");
  expected = expected.substr(0, expected.rfind(",\"k39\""));
  EXPECT_EQ(Normalize(absl::StrCat(R"({"o":)", raw, "}")).json,
            Row(absl::StrCat(R"("o":{)", expected, "}")));
}

TEST(NormalizeTest, IndicatorsSortInByteOrderAcrossFields) {
  // Byte order: uppercase before lowercase, UTF-8 (bytes >= 0x80) last;
  // repeats across the actor and targets are listed once.
  NormalizedEvent e = Normalize(
      R"({"actor": {"alternateId": "zed", "type": "User"}, "target": [)"
      R"({"alternateId": "\u00e9mile", "type": "User"}, {"alternateId": "Zed", "type": "User"},)"
      R"( {"alternateId": "zed", "type": "AppUser"}, {"alternateId": "b@x.io", "type": "User"},)"
      R"( {"alternateId": "a@x.io", "type": "User"}, {"alternateId": "b@x.io"}]})");
  EXPECT_THAT(e.json, HasSubstr("\"p_any_usernames\":[\"Zed\",\"zed\",\"\xC3\xA9mile\"]"));
  EXPECT_THAT(e.json, HasSubstr(R"("p_any_emails":["a@x.io","b@x.io"])"));
}

TEST(NormalizeTest, RepeatedTopLevelKeysGiveTheLastValueToIdTimeAndIndicators) {
  NormalizedEvent e =
      Normalize(R"({"client": {"ipAddress": "1.1.1.1"}, "published": "2020-01-01T00:00:00Z",)"
                R"( "uuid": "first", "client": {"ipAddress": "2.2.2.2"}, "uuid": "last",)"
                R"( "actor": {"alternateId": "x@y.io"}, "published": "2021-06-07T08:09:10.5Z",)"
                R"( "actor": {"alternateId": "jdoe", "type": "User"}})");
  EXPECT_EQ(e.event_id, "last");
  EXPECT_EQ(FormatPantherTime(e.event_time), "2021-06-07 08:09:10.500000000");
  EXPECT_THAT(e.json, StartsWith(R"({"client":{"ipAddress":"2.2.2.2"},)"
                                 R"("published":"2021-06-07 08:09:10.500000000","uuid":"last",)"
                                 R"("actor":{"alternateId":"jdoe","type":"User"},)"));
  EXPECT_THAT(e.json, HasSubstr(R"("p_any_ip_addresses":["2.2.2.2"],"p_any_domain_names":[],)"
                                R"("p_any_emails":[],"p_any_usernames":["jdoe"]})"));
}

TEST(NormalizeTest, IpAddressesUpToSixtyFourCharacters) {
  // The longest IPv6 text inet_pton reads (45 characters) is kept; a value
  // of 64 or more characters is never an address.
  const std::string longest = "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255";
  NormalizedEvent e = Normalize(absl::StrCat(
      R"({"client": {"ipAddress": ")", longest, R"("}, "request": {"ipChain": [{"ip": ")",
      std::string(64, '1'), R"("}, {"ip": "1.2.3.4)", std::string(60, ' '), R"("}]}})"));
  EXPECT_THAT(e.json, HasSubstr(absl::StrCat(R"("p_any_ip_addresses":[")", longest, R"("])")));
}

// --- indicators ----------------------------------------------------------------------

// An Okta System Log event as the API returns it (after okta.md §2 and the
// event of panther-analysis' okta_password_accessed test, in raw form).
constexpr char kOktaEvent[] = R"json({
  "actor": {"alternateId": "eric.montgomery@email.com", "detailEntry": null,
            "displayName": "Eric Montgomery", "id": "00u1", "type": "User"},
  "authenticationContext": {"authenticationProvider": null, "authenticationStep": 0,
                            "credentialProvider": null, "credentialType": null,
                            "externalSessionId": "102abc", "interface": null, "issuer": null},
  "client": {"device": "Mobile", "geographicalContext": {"city": null, "country": "Iceland",
             "geolocation": {"lat": 81.09596, "lon": -10.30578}, "postalCode": null,
             "state": "Colorado"},
             "id": null, "ipAddress": "218.56.201.220",
             "userAgent": {"browser": "CHROME", "os": "Android 1.x", "rawUserAgent": "Mozilla/5.0"},
             "zone": "null"},
  "debugContext": {"debugData": {"requestId": "Yxq", "threatSuspected": "false", "url": null}},
  "displayMessage": "User performed show password",
  "eventType": "application.user_membership.show_password",
  "legacyEventType": "app.generic.show.password",
  "outcome": {"reason": null, "result": "SUCCESS"},
  "published": "2022-09-09T04:26:09.792Z",
  "request": {"ipChain": [
    {"geographicalContext": {"country": "Iceland"}, "ip": "218.56.201.220", "source": null,
     "version": "V4"},
    {"ip": "2001:db8::8a2e:370:7334", "version": "V6"},
    {"ip": "10.0.0.1", "version": "V4"},
    {"ip": null}, {"version": "V4"}, {"ip": "unknown"}]},
  "securityContext": {"asNumber": 940252, "asOrg": "t-mobile", "domain": ".", "isProxy": false,
                      "isp": "t-mobile usa  inc."},
  "severity": "INFO",
  "target": [
    {"alternateId": "eric.montgomery@email.com", "detailEntry": null,
     "displayName": "Eric Montgomery", "id": "0ua1", "type": "AppUser"},
    {"alternateId": "Application2", "displayName": "Application2", "id": "0oa2",
     "type": "AppInstance"},
    {"alternateId": "CORP\\jdoe", "displayName": "John Doe", "id": "00u3", "type": "User"},
    {"alternateId": "jane@corp.example.com", "displayName": "Jane", "id": "00u4",
     "type": "User"},
    {"alternateId": "Admins", "id": "00g5", "type": "UserGroup"}],
  "transaction": {"detail": {}, "id": "Yxq", "type": "WEB"},
  "uuid": "f790999f-fe87-467a-9880-6982a583986c",
  "version": "0"
})json";

TEST(NormalizeTest, OktaEventIndicatorsAndFields) {
  NormalizedEvent e = Normalize(kOktaEvent);
  EXPECT_EQ(e.event_id, "f790999f-fe87-467a-9880-6982a583986c");
  EXPECT_TRUE(e.event_time_from_event);
  EXPECT_EQ(FormatPantherTime(e.event_time), "2022-09-09 04:26:09.792000000");
  const std::string& j = e.json;
  EXPECT_THAT(j, HasSubstr(R"("p_any_ip_addresses":["10.0.0.1","2001:db8::8a2e:370:7334",)"
                           R"("218.56.201.220"])"));
  EXPECT_THAT(j, HasSubstr(R"("p_any_domain_names":["."])"));
  EXPECT_THAT(j, HasSubstr(R"("p_any_emails":["eric.montgomery@email.com",)"
                           R"("jane@corp.example.com"])"));
  EXPECT_THAT(j, HasSubstr(R"("p_any_usernames":["CORP\\jdoe"])"));
  EXPECT_THAT(j, HasSubstr(R"("p_event_time":"2022-09-09 04:26:09.792000000")"));
  EXPECT_THAT(j, HasSubstr(R"("published":"2022-09-09 04:26:09.792000000")"));
  // Nulls are gone, the string "null" and falsy values stay.
  EXPECT_THAT(j, HasSubstr(R"("actor":{"alternateId":"eric.montgomery@email.com",)"
                           R"("displayName":"Eric Montgomery","id":"00u1","type":"User"})"));
  EXPECT_THAT(j, HasSubstr(R"("outcome":{"result":"SUCCESS"})"));
  EXPECT_THAT(j, HasSubstr(R"("zone":"null")"));
  EXPECT_THAT(j, HasSubstr(R"("authenticationContext":{"authenticationStep":0,)"
                           R"("externalSessionId":"102abc"})"));
  // Objects inside arrays lose their null members; the elements stay.
  EXPECT_THAT(j, HasSubstr(R"({},{"version":"V4"},{"ip":"unknown"}]})"));
  EXPECT_THAT(j, HasSubstr(R"("isProxy":false)"));
  EXPECT_THAT(j, HasSubstr(R"("transaction":{"detail":{},"id":"Yxq","type":"WEB"})"));
  EXPECT_THAT(j, Not(HasSubstr("null,")));
  EXPECT_THAT(j, Not(HasSubstr(":null")));
}

TEST(NormalizeTest, IndicatorsAreAlwaysListsAndDeduplicated) {
  EXPECT_EQ(Normalize(R"({"client": {"ipAddress": "1.2.3.4"},)"
                      R"( "request": {"ipChain": [{"ip": "1.2.3.4"}, {"ip": "1.2.3.4"}]}})")
                .json,
            absl::StrCat(R"({"client":{"ipAddress":"1.2.3.4"},)"
                         R"("request":{"ipChain":[{"ip":"1.2.3.4"},{"ip":"1.2.3.4"}]},)",
                         Suffix("2024-01-02 03:04:05.123456789",
                                R"("p_any_ip_addresses":["1.2.3.4"],"p_any_domain_names":[],)"
                                R"("p_any_emails":[],"p_any_usernames":[])")));
}

TEST(NormalizeTest, IndicatorFieldsOfTheWrongShapeAreIgnored) {
  NormalizedEvent e = Normalize(
      R"({"client": {"ipAddress": ["1.2.3.4"]}, "request": {"ipChain": {"ip": "5.6.7.8"}},)"
      R"( "actor": {"alternateId": 7, "type": "User"}, "target": {"alternateId": "a@b.co"},)"
      R"( "securityContext": {"domain": ""}, "Client": {"ipAddress": "9.9.9.9"}})");
  EXPECT_THAT(e.json, HasSubstr(R"("p_any_ip_addresses":[],"p_any_domain_names":[],)"
                                R"("p_any_emails":[],"p_any_usernames":[]})"));
}

TEST(NormalizeTest, UsernamesNeedAUserTypeAndANonEmailValue) {
  NormalizedEvent e = Normalize(
      R"({"actor": {"alternateId": "svc-sync", "displayName": "Sync", "type": "SystemPrincipal"},)"
      R"( "target": [{"alternateId": "jdoe", "type": "User"},)"
      R"(            {"alternateId": "jdoe@x.io", "type": "User"},)"
      R"(            {"alternateId": "app-user", "type": "AppUser"},)"
      R"(            {"alternateId": "no-type"}]})");
  EXPECT_THAT(e.json, HasSubstr(R"("p_any_emails":["jdoe@x.io"],)"
                                R"("p_any_usernames":["app-user","jdoe"]})"));
}

TEST(NormalizeTest, EmailsMustLookLikeAddresses) {
  NormalizedEvent e = Normalize(
      R"({"target": [{"alternateId": "a@b"}, {"alternateId": "@b.co"}, {"alternateId": "a@@b.co"},)"
      R"( {"alternateId": "a b@c.co"}, {"alternateId": "a@.co"}, {"alternateId": "a@b..co"},)"
      R"( {"alternateId": "system@okta.com"}, {"alternateId": "First.Last+tag@Sub.Example.ORG"}]})");
  EXPECT_THAT(e.json, HasSubstr(R"("p_any_emails":["First.Last+tag@Sub.Example.ORG",)"
                                R"("system@okta.com"],)"));
}

// --- rejections ------------------------------------------------------------------------

TEST(NormalizeTest, UnknownLogType) {
  absl::Status s = NormalizeStatus("{}", "AWS.CloudTrail");
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "unknown log type \"AWS.CloudTrail\" (supported: Okta.SystemLog)");
  EXPECT_EQ(NormalizeStatus("{}", "okta.systemlog").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(NormalizeStatus("{}", "").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(IsSupportedLogType("Okta.SystemLog"));
  EXPECT_FALSE(IsSupportedLogType("Okta"));
  EXPECT_THAT(SupportedLogTypes(), ::testing::ElementsAre("Okta.SystemLog"));
}

TEST(NormalizeTest, InvalidJson) {
  for (const char* raw :
       {"", "{", R"({"a": })", R"({"a": 1} x)", R"({'a': 1})", R"({"a": NaN})",
        R"({"a": Infinity})", R"({"a": "\ud800"})", "{\"a\": \"\xff\"}", R"({"a": 01})",
        // A number simdjson cannot hold in a key's place stays invalid.
        R"({1e400: 1})", R"({"a": 1, 123456789012345678901234567890: 2})"}) {
    absl::Status s = NormalizeStatus(raw);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << raw;
    EXPECT_THAT(std::string(s.message()), StartsWith("JSON parse error: ")) << raw;
  }
}

TEST(NormalizeTest, NonObjectsAreRejected) {
  for (const char* raw : {"[]", R"([{"a": 1}])", R"("text")", "3", "null", "true"}) {
    absl::Status s = NormalizeStatus(raw);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << raw;
    EXPECT_EQ(s.message(), "event is not a JSON object") << raw;
  }
}

TEST(NormalizeTest, SizeLimit) {
  NormalizeContext ctx = Context();
  EXPECT_EQ(ctx.max_event_bytes, size_t{1} << 20);
  std::string filler(ctx.max_event_bytes - 10, 'x');
  std::string at_limit = absl::StrCat(R"({"f": ")", filler, R"("})");
  at_limit.resize(ctx.max_event_bytes, ' ');  // trailing whitespace is valid JSON
  EXPECT_TRUE(NormalizeEvent(at_limit, kOktaSystemLog, ctx).ok());
  absl::Status s = NormalizeStatus(at_limit + " ");
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "event is 1048577 bytes, more than the limit of 1048576 bytes");

  ctx.max_event_bytes = 16;
  EXPECT_TRUE(NormalizeEvent(R"({"a": "0123456"})", kOktaSystemLog, ctx).ok());  // 16 bytes
  s = NormalizeEvent(R"({"a": "01234567"})", kOktaSystemLog, ctx).status();
  EXPECT_EQ(s.message(), "event is 17 bytes, more than the limit of 16 bytes");
  // The limit applies before parsing: invalid JSON over the limit says "size".
  EXPECT_THAT(
      std::string(NormalizeEvent(std::string(17, '{'), kOktaSystemLog, ctx).status().message()),
      HasSubstr("limit"));
}

// The one RFC 3339 parser (ParseEventTimestamp, also used for Okta's
// `published` in server/okta_api.cc) against Abseil's RFC3339_full on
// generated timestamps: every fraction length, offset, case and calendar
// edge. Where Abseil reads a time, ours reads the same one; the only
// documented differences are second 60 (Go rejects it, Abseil normalises it)
// and Panther's own "YYYY-MM-DD HH:MM:SS" form, which only ours reads.
TEST(NormalizeTest, TimestampParserAgreesWithAbseilOnGeneratedRfc3339) {
  std::mt19937_64 random(20261206);
  auto pick = [&](int lo, int hi) {
    return lo + static_cast<int>(random() % static_cast<uint64_t>(hi - lo + 1));
  };
  int compared = 0;
  for (int i = 0; i < 20000; ++i) {
    const int year = pick(1001, 9998);
    const int month = pick(1, 12);
    const int day = pick(1, 31);  // some invalid for the month: both reject
    std::string text = absl::StrFormat("%04d-%02d-%02d%c%02d:%02d:%02d", year, month, day,
                                       pick(0, 1) ? 'T' : 't', pick(0, 23), pick(0, 59),
                                       pick(0, 59));
    const int fraction = pick(0, 12);
    if (fraction > 0) {
      text += '.';
      for (int d = 0; d < fraction; ++d) text += static_cast<char>('0' + pick(0, 9));
    }
    switch (pick(0, 3)) {
      case 0:
        text += 'Z';
        break;
      case 1:
        text += 'z';
        break;
      default:
        text += absl::StrFormat("%c%02d:%02d", pick(0, 1) ? '+' : '-', pick(0, 23), pick(0, 59));
    }
    absl::Time expected;
    std::string error;
    const bool abseil = absl::ParseTime(absl::RFC3339_full, text, &expected, &error);
    std::optional<absl::Time> ours = ParseEventTimestamp(text);
    ASSERT_EQ(abseil, ours.has_value()) << text << ": " << error;
    if (abseil) {
      ++compared;
      // Abseil keeps sub-nanosecond digits; ours truncates to nanoseconds.
      EXPECT_EQ(absl::ToUnixNanos(*ours), absl::ToUnixNanos(expected)) << text;
    }
  }
  EXPECT_GT(compared, 15000);
  // The documented differences.
  absl::Time t;
  std::string error;
  EXPECT_TRUE(absl::ParseTime(absl::RFC3339_full, "2020-02-14T23:59:60Z", &t, &error));
  EXPECT_FALSE(ParseEventTimestamp("2020-02-14T23:59:60Z").has_value());
  EXPECT_FALSE(absl::ParseTime(absl::RFC3339_full, "2020-02-14 20:18:57.718", &t, &error));
  EXPECT_TRUE(ParseEventTimestamp("2020-02-14 20:18:57.718").has_value());
}

}  // namespace
}  // namespace pantherd::engine
