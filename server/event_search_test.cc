#include "server/event_search.h"

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "engine/alert_engine.h"
#include "engine/event_store.h"
#include "engine/normalize.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/time_util.h"
#include "gtest/gtest.h"
#include "tests/test_util.h"

namespace pantherd::server {
namespace {

using ::google::protobuf::util::TimeUtil;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

// Events every 10 minutes for 30 days from kStart; event i is by user
// i % 5, fails when i % 7 == 0, and has a debugData.risk of i % 4 (a number).
const absl::Time kStart =
    absl::FromCivil(absl::CivilSecond(2026, 3, 1, 0, 0, 0), absl::UTCTimeZone());
constexpr int kEvents = 30 * 24 * 6;
const absl::Time kNow = kStart + absl::Hours(30 * 24);

absl::Time EventTime(int i) { return kStart + absl::Minutes(10 * i); }

std::string User(int i) { return absl::StrCat("user", i % 5, "@example.com"); }

std::string EventJson(int i) {
  const absl::Time t = EventTime(i);
  const bool failed = i % 7 == 0;
  const std::string ip = absl::StrCat("10.0.", i % 3, ".", i % 250);
  return absl::StrCat(
      R"({"uuid":"ev-)", i, R"(","published":")",
      absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", t, absl::UTCTimeZone()), R"(","eventType":")",
      failed ? "user.session.start" : "user.authentication.sso",
      R"(","version":"0","severity":"INFO","legacyEventType":null,"displayMessage":"Login",)",
      R"("actor":{"id":"00u)", i % 5, R"(","type":"User","alternateId":")", User(i),
      R"("},"client":{"ipAddress":")", ip, R"(","zone":"null"},)", R"("outcome":{"result":")",
      failed ? "FAILURE" : "SUCCESS", R"("},"debugContext":{"debugData":{"risk":)", i % 4,
      R"(,"new":)", i % 2 == 0 ? "true" : "false", R"(}},"target":[{"alternateId":"app)", i % 2,
      R"("}],)", R"("p_log_type":"Okta.SystemLog","p_row_id":"r)", i, R"(","p_event_time":")",
      engine::FormatPantherTime(t), R"(","p_parse_time":")", engine::FormatPantherTime(kNow),
      R"(","p_source_id":"src","p_source_label":"okta","p_any_ip_addresses":[")", ip,
      R"("],"p_any_domain_names":[],"p_any_emails":[")", User(i), R"("],"p_any_usernames":[")",
      User(i), R"("]})");
}

struct Result {
  v1::SearchHeader header;
  std::vector<v1::SearchRow> rows;
  v1::SearchSummary summary;
};

std::string Cell(const v1::SearchValue& v) {
  switch (v.kind_case()) {
    case v1::SearchValue::kIntValue:
      return absl::StrCat(v.int_value());
    case v1::SearchValue::kDoubleValue:
      return absl::StrCat(v.double_value());
    case v1::SearchValue::kTextValue:
      return v.text_value();
    case v1::SearchValue::kBlobValue:
      return "<blob>";
    default:
      return "NULL";
  }
}

class EventSearchTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new pantherd::testing::TempDir();
    store_ = store::Store::Open(dir_->Sub("data"), {})->release();
    engine::AlertEngineOptions options;
    options.now = [] { return kNow; };
    options.event_retention = absl::Hours(24 * 365);
    engine::AlertEngine engine(store_, options);
    std::vector<engine::EventResult> batch;
    for (int i = 0; i < kEvents; ++i) {
      engine::EventResult e;
      e.event_id = absl::StrCat("ev-", i);
      e.log_type = "Okta.SystemLog";
      e.event_time = EventTime(i);
      e.event_json = EventJson(i);
      batch.push_back(std::move(e));
      if (batch.size() == 500 || i + 1 == kEvents) {
        absl::StatusOr<engine::BatchOutcome> out = engine.ApplyBatch(batch);
        ASSERT_TRUE(out.ok()) << out.status();
        batch.clear();
      }
    }
    AddCustomEvent(engine);
  }
  // One event of a log type without a known schema.
  static void AddCustomEvent(engine::AlertEngine& engine) {
    engine::EventResult e;
    e.event_id = "custom-1";
    e.log_type = "Custom.Web-Logs";
    e.event_time = EventTime(1);
    e.event_json = absl::StrCat(R"({"path":"/x","p_log_type":"Custom.Web-Logs","p_event_time":")",
                                engine::FormatPantherTime(EventTime(1)), R"("})");
    absl::StatusOr<engine::BatchOutcome> out = engine.ApplyBatch({e});
    ASSERT_TRUE(out.ok()) << out.status();
  }
  static void TearDownTestSuite() {
    delete store_;
    delete dir_;
  }

  // Runs `sql` over [since, until) (the whole month by default).
  absl::StatusOr<Result> Search(const std::string& sql, absl::Time since = kStart,
                                absl::Time until = kNow, int64_t limit = 0, int timeout = 0,
                                const std::atomic<bool>* cancelled = nullptr) {
    v1::SearchEventsRequest request;
    request.set_sql(sql);
    if (since != absl::InfinitePast()) {
      *request.mutable_since() = TimeUtil::MicrosecondsToTimestamp(absl::ToUnixMicros(since));
    }
    if (until != absl::InfiniteFuture()) {
      *request.mutable_until() = TimeUtil::MicrosecondsToTimestamp(absl::ToUnixMicros(until));
    }
    request.set_limit(limit);
    request.set_timeout_seconds(timeout);
    std::atomic<bool> never{false};
    Result result;
    auto on_header = [&](v1::SearchHeader h) {
      result.header = std::move(h);
      return true;
    };
    auto on_row = [&](v1::SearchRow r) {
      result.rows.push_back(std::move(r));
      return true;
    };
    absl::StatusOr<v1::SearchSummary> summary = RunEventSearch(
        *store_, request, kNow, cancelled != nullptr ? *cancelled : never, {on_header, on_row});
    if (!summary.ok()) return summary.status();
    result.summary = *summary;
    return result;
  }

  // The rows as "a|b|c" strings.
  static std::vector<std::string> Rows(const Result& r) {
    std::vector<std::string> out;
    for (const v1::SearchRow& row : r.rows) {
      std::vector<std::string> cells;
      for (const v1::SearchValue& v : row.values()) cells.push_back(Cell(v));
      out.push_back(absl::StrJoin(cells, "|"));
    }
    return out;
  }

  static pantherd::testing::TempDir* dir_;
  static store::Store* store_;
};

pantherd::testing::TempDir* EventSearchTest::dir_ = nullptr;
store::Store* EventSearchTest::store_ = nullptr;

TEST_F(EventSearchTest, CountsEveryEventOfTheRange) {
  absl::StatusOr<Result> r = Search("SELECT count(*) AS n FROM okta_systemlog");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_THAT(r->header.columns(), ElementsAre("n"));
  EXPECT_THAT(Rows(*r), ElementsAre(absl::StrCat(kEvents)));
  EXPECT_EQ(r->summary.rows(), 1);
  EXPECT_FALSE(r->summary.truncated());
  EXPECT_EQ(r->summary.events_scanned(), kEvents);
  EXPECT_EQ(TimeUtil::TimestampToMicroseconds(r->header.since()), absl::ToUnixMicros(kStart));
  EXPECT_EQ(TimeUtil::TimestampToMicroseconds(r->header.until()), absl::ToUnixMicros(kNow));
}

TEST_F(EventSearchTest, FiltersOnFieldsAndJsonPaths) {
  int expected = 0;
  for (int i = 0; i < kEvents; ++i) expected += (i % 5 == 2 && i % 7 == 0) ? 1 : 0;
  absl::StatusOr<Result> r = Search(
      "SELECT count(*) FROM okta_systemlog WHERE json_extract(actor, '$.alternateId') = "
      "'user2@example.com' AND eventType = 'user.session.start' AND "
      "outcome ->> '$.result' = 'FAILURE'");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_THAT(Rows(*r), ElementsAre(absl::StrCat(expected)));

  // Arrays: json_each over target and p_any_ip_addresses.
  r = Search(
      "SELECT count(*) FROM okta_systemlog, json_each(okta_systemlog.target) AS t "
      "WHERE t.value ->> '$.alternateId' = 'app1'");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_THAT(Rows(*r), ElementsAre(absl::StrCat(kEvents / 2)));
}

TEST_F(EventSearchTest, ValuesKeepTheirJsonTypes) {
  absl::StatusOr<Result> r = Search(
      "SELECT uuid, typeof(actor), typeof(device), typeof(legacyEventType), "
      "json_extract(debugContext, '$.debugData.risk'), "
      "json_extract(debugContext, '$.debugData.new'), json_array_length(p_any_emails), "
      "p_event_time, published FROM okta_systemlog WHERE uuid = 'ev-3'");
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->rows.size(), 1u);
  const v1::SearchRow& row = r->rows[0];
  EXPECT_EQ(row.values(0).text_value(), "ev-3");
  EXPECT_EQ(row.values(1).text_value(), "text");  // an object: JSON text
  EXPECT_EQ(row.values(2).text_value(), "null");  // missing
  EXPECT_EQ(row.values(3).text_value(), "null");  // JSON null
  EXPECT_EQ(row.values(4).int_value(), 3);
  EXPECT_EQ(row.values(5).int_value(), 0);  // false
  EXPECT_EQ(row.values(6).int_value(), 1);
  EXPECT_EQ(row.values(7).text_value(), "2026-03-01 00:30:00.000000000");
  EXPECT_EQ(row.values(8).text_value(), "2026-03-01T00:30:00.000Z");
}

TEST_F(EventSearchTest, GroupsAndOrders) {
  absl::StatusOr<Result> r = Search(
      "SELECT json_extract(actor, '$.alternateId') AS who, count(*) AS n "
      "FROM okta_systemlog WHERE p_event_time < '2026-03-01 01:00' GROUP BY who "
      "ORDER BY n DESC, who");
  ASSERT_TRUE(r.ok()) << r.status();
  // Events 0..5: users 0,1,2,3,4,0.
  EXPECT_THAT(Rows(*r),
              ElementsAre("user0@example.com|2", "user1@example.com|1", "user2@example.com|1",
                          "user3@example.com|1", "user4@example.com|1"));
  EXPECT_EQ(r->summary.events_scanned(), 6);

  r = Search("SELECT uuid FROM okta_systemlog ORDER BY p_event_time DESC LIMIT 2");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_THAT(Rows(*r),
              ElementsAre(absl::StrCat("ev-", kEvents - 1), absl::StrCat("ev-", kEvents - 2)));
}

TEST_F(EventSearchTest, TheRequestRangeIncludesSinceAndExcludesUntil) {
  absl::StatusOr<Result> r = Search("SELECT uuid FROM okta_systemlog", EventTime(1), EventTime(3));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_THAT(Rows(*r), ElementsAre("ev-1", "ev-2"));
  EXPECT_EQ(r->summary.events_scanned(), 2);

  // Unset: the 24 hours before until; unset until: now.
  r = Search("SELECT count(*) FROM okta_systemlog", absl::InfinitePast(), absl::InfiniteFuture());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_THAT(Rows(*r), ElementsAre("144"));
  EXPECT_EQ(TimeUtil::TimestampToMicroseconds(r->header.since()),
            absl::ToUnixMicros(kNow - absl::Hours(24)));
  EXPECT_EQ(TimeUtil::TimestampToMicroseconds(r->header.until()), absl::ToUnixMicros(kNow));
}

TEST_F(EventSearchTest, EventTimeConstraintsArePushedDown) {
  struct Case {
    std::string where;
    std::vector<std::string> uuids;
    int64_t scanned;
  };
  const std::vector<Case> cases = {
      {"p_event_time >= '2026-03-01 00:10:00' AND p_event_time < '2026-03-01 00:30:00'",
       {"ev-1", "ev-2"},
       2},
      {"p_event_time > '2026-03-01 00:10:00.000000000' AND p_event_time <= '2026-03-01 00:30:00'",
       {"ev-2"},
       3},  // > and <= re-checked by SQLite on a one-µs wider range
      {"p_event_time = '2026-03-01 00:20:00.000000000'", {"ev-2"}, 1},
      {"p_event_time BETWEEN '2026-03-01 00:10' AND '2026-03-01 00:20:00.000000000'",
       {"ev-1", "ev-2"},
       2},
      {"p_event_time IN ('2026-03-01 00:00:00.000000000', '2026-03-01 00:50:00.000000000')",
       {"ev-0", "ev-5"},
       2},
      {"p_occurs_between('2026-03-01T00:10:00Z', '2026-03-01T00:30:00Z')", {"ev-1", "ev-2"}, 2},
      {"p_event_time < '2026-03-01 00:20'", {"ev-0", "ev-1"}, 2},
  };
  for (const Case& c : cases) {
    absl::StatusOr<Result> r =
        Search(absl::StrCat("SELECT uuid FROM okta_systemlog WHERE ", c.where, " ORDER BY uuid"));
    ASSERT_TRUE(r.ok()) << c.where << ": " << r.status();
    EXPECT_EQ(Rows(*r), c.uuids) << c.where;
    EXPECT_EQ(r->summary.events_scanned(), c.scanned) << c.where;
  }
  // Never outside the request's range.
  absl::StatusOr<Result> r =
      Search("SELECT count(*) FROM okta_systemlog WHERE p_event_time >= '2026-01-01'",
             EventTime(100), EventTime(110));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_THAT(Rows(*r), ElementsAre("10"));
  EXPECT_EQ(r->summary.events_scanned(), 10);
}

TEST_F(EventSearchTest, OneHourOfAMonthReadsOneHour) {
  absl::StatusOr<Result> r = Search(
      "SELECT json_extract(actor, '$.alternateId'), count(*) FROM okta_systemlog "
      "WHERE p_occurs_between('2026-03-15T10:00:00Z', '2026-03-15T11:00:00Z') GROUP BY 1");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->summary.events_scanned(), 6);
  // p_occurs_since is relative to now (the month's end).
  r = Search("SELECT count(*) FROM okta_systemlog WHERE p_occurs_since('6 hours')");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_THAT(Rows(*r), ElementsAre("36"));
  EXPECT_EQ(r->summary.events_scanned(), 36);
  r = Search(
      "SELECT count(*) FROM okta_systemlog WHERE p_occurs_since('1 day') AND "
      "p_occurs_since('30 minutes')");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_THAT(Rows(*r), ElementsAre("3"));
  EXPECT_EQ(r->summary.events_scanned(), 3);
}

// Without `since`, the helpers widen the default 24 hours to where they
// start (as in Panther, where p_occurs_since states a query's range), and
// never narrow it.
TEST_F(EventSearchTest, HelpersWidenTheDefaultRangeButNeverNarrowIt) {
  absl::StatusOr<Result> r =
      Search("SELECT count(*) FROM okta_systemlog WHERE p_occurs_since('30 days')",
             absl::InfinitePast(), absl::InfiniteFuture());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_THAT(Rows(*r), ElementsAre(absl::StrCat(kEvents)));
  EXPECT_EQ(TimeUtil::TimestampToMicroseconds(r->header.since()),
            absl::ToUnixMicros(kNow - absl::Hours(24 * 30)));
  r = Search(
      "SELECT count(*) FROM okta_systemlog WHERE "
      "p_occurs_between('2026-03-15T10:00:00Z', '2026-03-15T11:00:00Z')",
      absl::InfinitePast(), absl::InfiniteFuture());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_THAT(Rows(*r), ElementsAre("6"));
  EXPECT_EQ(
      TimeUtil::TimestampToMicroseconds(r->header.since()),
      absl::ToUnixMicros(absl::FromCivil(absl::CivilHour(2026, 3, 15, 10), absl::UTCTimeZone())));
  // A later helper keeps the default start: the OR still sees 24 hours.
  r = Search("SELECT count(*) FROM okta_systemlog WHERE p_occurs_since('1 hour') OR uuid = 'x'",
             absl::InfinitePast(), absl::InfiniteFuture());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(TimeUtil::TimestampToMicroseconds(r->header.since()),
            absl::ToUnixMicros(kNow - absl::Hours(24)));
  // An explicit since is kept as it is.
  r = Search("SELECT count(*) FROM okta_systemlog WHERE p_occurs_since('30 days')",
             kNow - absl::Hours(1), absl::InfiniteFuture());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_THAT(Rows(*r), ElementsAre("6"));
  absl::Time earliest;
  ASSERT_TRUE(RewriteHelpers("SELECT 1", kNow, &earliest).ok());
  EXPECT_EQ(earliest, absl::InfiniteFuture());
}

TEST_F(EventSearchTest, HelpersAreRewrittenOnlyOutsideLiteralsAndComments) {
  absl::StatusOr<std::string> s = RewriteHelpers(
      "SELECT 'p_occurs_since(''1 day'')', \"p_occurs_since\" -- p_occurs_since('x')\n"
      "FROM t WHERE P_OCCURS_SINCE ( '2 hours' ) /* p_occurs_between */",
      kNow);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(
      *s,
      "SELECT 'p_occurs_since(''1 day'')', \"p_occurs_since\" -- p_occurs_since('x')\n"
      "FROM t WHERE (p_event_time >= '2026-03-30 22:00:00.000000000') /* p_occurs_between */");
  EXPECT_FALSE(RewriteHelpers("SELECT 1 WHERE p_occurs_since(6)", kNow).ok());
  EXPECT_FALSE(RewriteHelpers("SELECT 1 WHERE p_occurs_since('6 fortnights')", kNow).ok());
  EXPECT_FALSE(RewriteHelpers("SELECT 1 WHERE p_occurs_between('2026-03-01', 'x')", kNow).ok());
  EXPECT_EQ(*RewriteHelpers("p_occurs_between('2026-03-01', '2026-03-02 10:00')", kNow),
            "(p_event_time >= '2026-03-01 00:00:00.000000000' AND "
            "p_event_time < '2026-03-02 10:00:00.000000000')");
}

TEST_F(EventSearchTest, TheRowLimitTruncates) {
  absl::StatusOr<Result> r = Search("SELECT uuid FROM okta_systemlog", kStart, kNow, 10);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->rows.size(), 10u);
  EXPECT_EQ(r->summary.rows(), 10);
  EXPECT_TRUE(r->summary.truncated());
  // A huge result (the cross product) stops at the default limit.
  r = Search("SELECT a.uuid, b.uuid FROM okta_systemlog a, okta_systemlog b");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->summary.rows(), kSearchDefaultLimit);
  EXPECT_TRUE(r->summary.truncated());
  // Exactly the limit: not truncated.
  r = Search("SELECT uuid FROM okta_systemlog", EventTime(0), EventTime(10), 10);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->summary.rows(), 10);
  EXPECT_FALSE(r->summary.truncated());
}

TEST_F(EventSearchTest, RefusesEverythingButReading) {
  const std::vector<std::string> hostile = {
      "ATTACH DATABASE 'x.db' AS x",
      "SELECT load_extension('libevil')",
      "INSERT INTO okta_systemlog (uuid) VALUES ('x')",
      "CREATE TABLE t (a)",
      "DROP TABLE okta_systemlog",
      "PRAGMA table_info(okta_systemlog)",
      "SELECT * FROM pragma_table_info('okta_systemlog')",
      "BEGIN",
      "DELETE FROM okta_systemlog",
      "CREATE TEMP VIEW v AS SELECT 1",
      "VACUUM",
      "SELECT 1; SELECT 2",
      "SELECT 1; DROP TABLE okta_systemlog",
  };
  for (const std::string& sql : hostile) {
    absl::StatusOr<Result> r = Search(sql);
    EXPECT_TRUE(absl::IsInvalidArgument(r.status())) << sql << ": " << r.status();
  }
  absl::StatusOr<Result> r = Search("SELECT 1; SELECT 2");
  EXPECT_THAT(r.status().message(), HasSubstr("exactly one statement"));
  r = Search("ATTACH DATABASE 'x.db' AS x");
  EXPECT_THAT(r.status().message(), HasSubstr("ATTACH is not allowed"));
  r = Search("SELECT load_extension('libevil')");
  EXPECT_THAT(r.status().message(), HasSubstr("load_extension() is not allowed"));
  r = Search("DROP TABLE okta_systemlog");
  EXPECT_THAT(r.status().message(), HasSubstr("DROP is not allowed"));
  r = Search("CREATE TABLE t (a)");
  EXPECT_THAT(r.status().message(), HasSubstr("CREATE is not allowed"));
  r = Search("PRAGMA table_info(okta_systemlog)");
  EXPECT_THAT(r.status().message(), HasSubstr("PRAGMA is not allowed"));
  // The table is still there.
  r = Search("SELECT count(*) FROM okta_systemlog");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_THAT(Rows(*r), ElementsAre(absl::StrCat(kEvents)));
  // A trailing ';' and comments are fine.
  r = Search("SELECT 1; -- done\n");
  EXPECT_TRUE(r.ok()) << r.status();
}

TEST_F(EventSearchTest, SqlErrorsSayWhere) {
  absl::StatusOr<Result> r = Search("SELECT uuid FRM okta_systemlog");
  ASSERT_TRUE(absl::IsInvalidArgument(r.status())) << r.status();
  EXPECT_EQ(r.status().message(), "near \"okta_systemlog\": syntax error at offset 16");
  r = Search("SELECT nope FROM okta_systemlog");
  EXPECT_THAT(r.status().message(), HasSubstr("no such column: nope"));
}

TEST_F(EventSearchTest, EveryStoredLogTypeHasATable) {
  absl::StatusOr<Result> r = Search("SELECT p_log_type, p_event_time FROM custom_web_logs");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_THAT(Rows(*r), ElementsAre("Custom.Web-Logs|2026-03-01 00:10:00.000000000"));
  EXPECT_EQ(r->summary.events_scanned(), 1);
  // Its fields beyond the p_ ones are not columns (no known schema).
  r = Search("SELECT path FROM custom_web_logs");
  EXPECT_THAT(r.status().message(), HasSubstr("no such column: path"));
}

TEST_F(EventSearchTest, RuntimeErrorsAndTheValueLimit) {
  absl::StatusOr<Result> r = Search("SELECT json_extract('{', '$')");
  EXPECT_TRUE(absl::IsInvalidArgument(r.status())) << r.status();
  EXPECT_THAT(r.status().message(), HasSubstr("malformed JSON"));
  r = Search("SELECT length(randomblob(20000000))");
  EXPECT_TRUE(absl::IsInvalidArgument(r.status())) << r.status();
  EXPECT_THAT(r.status().message(), HasSubstr("too big"));
  r = Search("SELECT length(randomblob(1000000))");
  EXPECT_TRUE(r.ok()) << r.status();
}

constexpr char kEndless[] =
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) "
    "SELECT count(*) FROM c";

TEST_F(EventSearchTest, TheTimeoutStopsAnEndlessQuery) {
  const absl::Time start = absl::Now();
  absl::StatusOr<Result> r = Search(kEndless, kStart, kNow, 0, 1);
  const absl::Duration took = absl::Now() - start;
  EXPECT_TRUE(absl::IsDeadlineExceeded(r.status())) << r.status();
  EXPECT_THAT(r.status().message(), HasSubstr("timeout of 1 s"));
  EXPECT_LT(took, absl::Seconds(5));
}

TEST_F(EventSearchTest, CancellationStopsTheQuery) {
  std::atomic<bool> cancelled{false};
  std::thread canceller([&] {
    absl::SleepFor(absl::Milliseconds(200));
    cancelled = true;
  });
  const absl::Time start = absl::Now();
  absl::StatusOr<Result> r = Search(kEndless, kStart, kNow, 0, 60, &cancelled);
  canceller.join();
  EXPECT_TRUE(absl::IsCancelled(r.status())) << r.status();
  EXPECT_LT(absl::Now() - start, absl::Seconds(10));
}

// Fields in another case than their column (panther-analysis' test events
// write "eventtype", "displaymessage") are that column, as the rules'
// case-insensitive event sees them; an exact name wins over another case.
TEST(EventSearchCaseTest, FieldsInAnotherCaseAreTheirColumn) {
  pantherd::testing::TempDir dir;
  std::unique_ptr<store::Store> store = *store::Store::Open(dir.Sub("data"), {});
  engine::AlertEngineOptions options;
  options.now = [] { return kNow; };
  options.event_retention = absl::Hours(24 * 365);
  engine::AlertEngine engine(store.get(), options);
  auto event = [](const std::string& id, const std::string& fields) {
    engine::EventResult e;
    e.event_id = id;
    e.log_type = "Okta.SystemLog";
    e.event_time = EventTime(1);
    e.event_json = absl::StrCat(R"({"uuid":")", id, R"(",)", fields, "}");
    return e;
  };
  ASSERT_TRUE(engine
                  .ApplyBatch({event("lower", R"("eventtype":"user.account.lock")"),
                               event("both", R"("eventtype":"other","eventType":"exact")"),
                               event("both2", R"("eventType":"exact","EVENTTYPE":"other")")})
                  .ok());
  v1::SearchEventsRequest request;
  request.set_sql("SELECT uuid, eventType FROM okta_systemlog ORDER BY uuid");
  *request.mutable_since() = TimeUtil::MicrosecondsToTimestamp(absl::ToUnixMicros(kStart));
  std::vector<std::string> rows;
  std::atomic<bool> never{false};
  absl::StatusOr<v1::SearchSummary> summary =
      RunEventSearch(*store, request, kNow, never,
                     {[](v1::SearchHeader) { return true; },
                      [&](v1::SearchRow r) {
                        rows.push_back(absl::StrCat(Cell(r.values(0)), "|", Cell(r.values(1))));
                        return true;
                      }});
  ASSERT_TRUE(summary.ok()) << summary.status();
  EXPECT_THAT(rows, ElementsAre("both|exact", "both2|exact", "lower|user.account.lock"));
}

TEST(EventSearchParseTest, RequestsAreCheckedFieldByField) {
  v1::SearchEventsRequest request;
  EXPECT_EQ(ValidateSearchRequest(request).message(), "sql: is required");
  request.set_sql("SELECT 1");
  EXPECT_TRUE(ValidateSearchRequest(request).ok());
  request.set_limit(kSearchMaxLimit + 1);
  EXPECT_THAT(ValidateSearchRequest(request).message(), HasSubstr("limit: must be between 0"));
  request.set_limit(-1);
  EXPECT_TRUE(absl::IsInvalidArgument(ValidateSearchRequest(request)));
  request.set_limit(kSearchMaxLimit);
  request.set_timeout_seconds(kSearchMaxTimeoutSeconds + 1);
  EXPECT_THAT(ValidateSearchRequest(request).message(), HasSubstr("timeout_seconds: must be"));
  request.set_timeout_seconds(kSearchMaxTimeoutSeconds);
  EXPECT_TRUE(ValidateSearchRequest(request).ok());
  *request.mutable_since() = TimeUtil::SecondsToTimestamp(200);
  *request.mutable_until() = TimeUtil::SecondsToTimestamp(100);
  EXPECT_EQ(ValidateSearchRequest(request).message(), "since: is after until");
  request.mutable_until()->set_nanos(-5);
  EXPECT_EQ(ValidateSearchRequest(request).message(), "until: is not a valid time");
}

TEST(EventSearchParseTest, StoredEventTimes) {
  const absl::Time t =
      absl::FromCivil(absl::CivilSecond(2026, 3, 1, 10, 5, 0), absl::UTCTimeZone());
  EXPECT_EQ(ParseStoredEventTime("2026-03-01 10:05"), t);
  EXPECT_EQ(ParseStoredEventTime("2026-03-01 10:05:00"), t);
  EXPECT_EQ(ParseStoredEventTime("2026-03-01 10:05:00.5"), t + absl::Milliseconds(500));
  EXPECT_EQ(ParseStoredEventTime("2026-03-01 10:05:00.000000001"), t + absl::Nanoseconds(1));
  EXPECT_EQ(ParseStoredEventTime("2026-03-01"), t - absl::Hours(10) - absl::Minutes(5));
  EXPECT_FALSE(ParseStoredEventTime("2026-03-01T10:05:00Z").has_value());
  EXPECT_FALSE(ParseStoredEventTime("2026-13-01").has_value());
  EXPECT_FALSE(ParseStoredEventTime("2026-03-01 10").has_value());
  EXPECT_EQ(SearchTableName("Okta.SystemLog"), "okta_systemlog");
}

}  // namespace
}  // namespace pantherd::server
