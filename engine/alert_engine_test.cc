#include "engine/alert_engine.h"

#include <algorithm>
#include <atomic>
#include <iostream>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "engine/delivery_outbox.h"
#include "engine/event_store.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/time_util.h"
#include "gtest/gtest.h"
#include "store/keys.h"
#include "tests/test_util.h"

namespace pantherd::engine {
namespace {

using google::protobuf::util::TimeUtil;
using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::SizeIs;

// 2024-03-01 10:00:00 UTC: the "10:00" of the scenarios below.
const absl::Time kBase = absl::FromUnixSeconds(1709287200);
absl::Time At(int minutes) { return kBase + absl::Minutes(minutes); }
absl::Time FromTs(const google::protobuf::Timestamp& ts) {
  return absl::FromUnixMicros(TimeUtil::TimestampToMicroseconds(ts));
}
google::protobuf::Timestamp Ts(absl::Time t) {
  return TimeUtil::MicrosecondsToTimestamp(absl::ToUnixMicros(t));
}

RuleMatch Match(const std::string& rule, const std::string& dedup, int64_t threshold = 1,
                int64_t period_minutes = 60) {
  RuleMatch m;
  m.rule_id = rule;
  m.rule_version = 3;
  m.dedup_string = dedup;
  m.threshold = threshold;
  m.dedup_period_minutes = period_minutes;
  m.title = "Multiple Failed Logins for " + dedup;
  m.severity = v1::SEVERITY_CRITICAL;
  m.alert_context_json = R"({"n":1})";
  return m;
}

RuleErrorResult Error(const std::string& rule, const std::string& type,
                      const std::string& message) {
  RuleErrorResult r;
  r.rule_id = rule;
  r.rule_version = 3;
  r.error.set_type(type);
  r.error.set_message(message);
  r.error.set_traceback("Traceback (most recent call last):\n  File \"rule.py\", line 4\n" + type);
  return r;
}

EventResult Event(const std::string& id, absl::Time time, std::vector<RuleMatch> matches,
                  std::vector<RuleErrorResult> errors = {}) {
  EventResult e;
  e.event_id = id;
  e.log_type = "Okta.SystemLog";
  e.event_time = time;
  e.event_json = absl::StrCat(R"({"uuid":")", id, R"("})");
  e.matches = std::move(matches);
  e.errors = std::move(errors);
  return e;
}

class AlertEngineTest : public ::testing::Test {
 protected:
  void SetUp() override { Open(); }

  void Open() {
    absl::StatusOr<std::unique_ptr<store::Store>> s = store::Store::Open(dir_.Sub("data"), {});
    ASSERT_TRUE(s.ok()) << s.status();
    store_ = *std::move(s);
    MakeEngine();
  }
  void MakeEngine() {
    AlertEngineOptions options = options_;
    options.now = [this] { return absl::FromUnixMicros(now_us_.load()); };
    engine_ = std::make_unique<AlertEngine>(store_.get(), options);
  }
  void Reopen() {
    engine_.reset();
    ASSERT_TRUE(store_->Close().ok());
    store_.reset();
    Open();
  }
  void SetNow(absl::Time t) { now_us_ = absl::ToUnixMicros(t); }

  BatchOutcome Apply(const std::vector<EventResult>& events) {
    absl::StatusOr<BatchOutcome> out = engine_->ApplyBatch(events);
    EXPECT_TRUE(out.ok()) << out.status();
    return out.ok() ? *std::move(out) : BatchOutcome();
  }
  // Applies one event per batch, the clock following the event times.
  std::vector<v1::AlertChange> ApplyEach(const std::vector<EventResult>& events) {
    std::vector<v1::AlertChange> all;
    for (const EventResult& e : events) {
      SetNow(e.event_time + absl::Seconds(5));
      for (v1::AlertChange& c : Apply({e}).changes) all.push_back(std::move(c));
    }
    return all;
  }
  std::vector<v1::Alert> List(v1::ListAlertsRequest request = {}) {
    absl::StatusOr<v1::ListAlertsResponse> r = engine_->ListAlerts(request);
    EXPECT_TRUE(r.ok()) << r.status();
    if (!r.ok()) return {};
    return {r->alerts().begin(), r->alerts().end()};
  }
  v1::Alert Get(const std::string& id) {
    absl::StatusOr<v1::Alert> a = engine_->GetAlert(id);
    EXPECT_TRUE(a.ok()) << a.status();
    return a.ok() ? *a : v1::Alert();
  }
  std::vector<v1::AlertChange> Log() {
    absl::StatusOr<std::vector<v1::AlertChange>> log = engine_->ReadChangesAfter(0, 100000);
    EXPECT_TRUE(log.ok()) << log.status();
    return log.ok() ? *log : std::vector<v1::AlertChange>();
  }
  int64_t CountKeys(store::Family family) {
    absl::StatusOr<int64_t> n = store_->Count(family, "");
    EXPECT_TRUE(n.ok()) << n.status();
    return n.ok() ? *n : -1;
  }

  pantherd::testing::TempDir dir_;
  AlertEngineOptions options_;
  std::atomic<int64_t> now_us_{absl::ToUnixMicros(kBase)};
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<AlertEngine> engine_;
};

// A caller's extra writes (a source cursor) land in the same atomic write as
// the alerts and processed ids of the batch, seeing which events were new; a
// failing hook writes nothing at all.
TEST_F(AlertEngineTest, ExtraWritesLandWithTheBatchOrNotAtAll) {
  SetNow(At(1));
  ExtraWrites cursor = [](const BatchOutcome& outcome, store::WriteBatch& batch) {
    int64_t fresh = 0;
    for (EventStatus s : outcome.events) fresh += s == EventStatus::kProcessed ? 1 : 0;
    batch.Put(store::Family::kSources, "cursor", absl::StrCat("page-2 fresh=", fresh));
    return absl::OkStatus();
  };
  absl::StatusOr<BatchOutcome> out = engine_->ApplyBatch(
      {Event("c1", At(0), {Match("Okta.BruteForce", "admin")}), Event("c2", At(0), {})}, cursor);
  ASSERT_TRUE(out.ok()) << out.status();
  ASSERT_THAT(out->changes, SizeIs(1));
  EXPECT_THAT(List(), SizeIs(1));
  absl::StatusOr<std::string> stored = store_->Get(store::Family::kSources, "cursor");
  ASSERT_TRUE(stored.ok()) << stored.status();
  EXPECT_EQ(*stored, "page-2 fresh=2");

  // Re-sent events are duplicates; the hook sees it, and an empty batch still
  // writes the cursor.
  ASSERT_TRUE(engine_->ApplyBatch({Event("c1", At(0), {})}, cursor).ok());
  EXPECT_EQ(*store_->Get(store::Family::kSources, "cursor"), "page-2 fresh=0");
  ASSERT_TRUE(store_->Delete(store::Family::kSources, "cursor").ok());
  ASSERT_TRUE(engine_->ApplyBatch({}, cursor).ok());
  EXPECT_TRUE(store_->Get(store::Family::kSources, "cursor").ok());

  // A failing hook: neither the alert, nor the processed id, nor the cursor.
  ASSERT_TRUE(store_->Delete(store::Family::kSources, "cursor").ok());
  const int64_t processed_before = CountKeys(store::Family::kProcessed);
  ExtraWrites failing = [](const BatchOutcome&, store::WriteBatch& batch) {
    batch.Put(store::Family::kSources, "cursor", "page-3");
    return absl::InternalError("hook failed");
  };
  out = engine_->ApplyBatch({Event("c3", At(0), {Match("Okta.Other", "x")})}, failing);
  EXPECT_EQ(out.status().code(), absl::StatusCode::kInternal);
  EXPECT_THAT(List(), SizeIs(1));
  EXPECT_EQ(CountKeys(store::Family::kProcessed), processed_before);
  EXPECT_TRUE(absl::IsNotFound(store_->Get(store::Family::kSources, "cursor").status()));
}

// Panther's documented example: 10:07 fires, 10:36/10:42/11:06 attach, 11:07
// fires a new alert, 11:12 attaches to it.
TEST_F(AlertEngineTest, ThresholdOneFollowsPantherDedupExample) {
  std::vector<v1::AlertChange> changes = ApplyEach({
      Event("e1", At(7), {Match("Okta.BruteForce", "admin")}),
      Event("e2", At(36), {Match("Okta.BruteForce", "admin")}),
      Event("e3", At(42), {Match("Okta.BruteForce", "admin")}),
      Event("e4", At(66), {Match("Okta.BruteForce", "admin")}),
      Event("e5", At(67), {Match("Okta.BruteForce", "admin")}),
      Event("e6", At(72), {Match("Okta.BruteForce", "admin")}),
  });
  ASSERT_THAT(changes, SizeIs(6));
  std::vector<v1::AlertChange::Kind> kinds;
  for (const auto& c : changes) kinds.push_back(c.kind());
  EXPECT_THAT(kinds, ElementsAre(v1::AlertChange::KIND_CREATED, v1::AlertChange::KIND_UPDATED,
                                 v1::AlertChange::KIND_UPDATED, v1::AlertChange::KIND_UPDATED,
                                 v1::AlertChange::KIND_CREATED, v1::AlertChange::KIND_UPDATED));
  const std::string first = changes[0].alert().id();
  const std::string second = changes[4].alert().id();
  EXPECT_NE(first, second);
  EXPECT_EQ(changes[3].alert().id(), first);
  EXPECT_EQ(changes[5].alert().id(), second);

  v1::Alert a = Get(first);
  EXPECT_EQ(a.event_count(), 4);
  EXPECT_EQ(FromTs(a.window_start()), At(7));
  EXPECT_EQ(FromTs(a.window_end()), At(67));
  EXPECT_EQ(FromTs(a.first_event_time()), At(7));
  EXPECT_EQ(FromTs(a.last_event_time()), At(66));
  EXPECT_EQ(a.title(), "Multiple Failed Logins for admin");
  EXPECT_EQ(a.severity(), v1::SEVERITY_CRITICAL);
  EXPECT_EQ(a.status(), v1::ALERT_STATUS_OPEN);
  EXPECT_EQ(a.type(), v1::ALERT_TYPE_RULE);
  EXPECT_EQ(a.rule_version(), 3);
  EXPECT_EQ(Get(second).event_count(), 2);
  EXPECT_THAT(List(), SizeIs(2));
}

TEST_F(AlertEngineTest, ThresholdReachedInsideTheWindowCreatesOneAlert) {
  std::vector<v1::AlertChange> changes = ApplyEach({
      Event("e1", At(0), {Match("R", "admin", 3, 15)}),
      Event("e2", At(5), {Match("R", "admin", 3, 15)}),
  });
  EXPECT_THAT(changes, IsEmpty());
  EXPECT_THAT(List(), IsEmpty());
  EXPECT_EQ(CountKeys(store::Family::kAlertLog), 0);

  changes = ApplyEach({Event("e3", At(14), {Match("R", "admin", 3, 15)})});
  ASSERT_THAT(changes, SizeIs(1));
  const v1::Alert& a = changes[0].alert();
  EXPECT_EQ(changes[0].kind(), v1::AlertChange::KIND_CREATED);
  EXPECT_EQ(a.event_count(), 3);  // the matches before the threshold count too
  EXPECT_EQ(FromTs(a.window_start()), At(0));
  EXPECT_EQ(FromTs(a.window_end()), At(15));
  EXPECT_EQ(FromTs(a.created_time()), At(14) + absl::Seconds(5));
  EXPECT_EQ(a.threshold(), 3);
  EXPECT_EQ(a.dedup_period_minutes(), 15);
  ASSERT_THAT(a.matched_events(), SizeIs(3));
  EXPECT_EQ(a.matched_events(0).event_id(), "e1");
  EXPECT_EQ(a.matched_events(2).event_id(), "e3");
  EXPECT_EQ(a.sample_event_json(), R"({"uuid":"e1"})");
  EXPECT_TRUE(ShouldNotify(changes[0]));

  changes = ApplyEach({Event("e4", At(10), {Match("R", "admin", 3, 15)})});
  ASSERT_THAT(changes, SizeIs(1));
  EXPECT_EQ(changes[0].kind(), v1::AlertChange::KIND_UPDATED);
  EXPECT_EQ(changes[0].alert().event_count(), 4);
}

// BatchOutcome.rules: per rule, matches, errors, alerts and the windows still
// below their threshold.
TEST_F(AlertEngineTest, OutcomeReportsMatchesAlertsAndOpenWindowsPerRule) {
  SetNow(At(1));
  BatchOutcome out = Apply({
      Event("e1", At(0), {Match("Failed", "admin", 5), Match("Any", "x")}),
      Event("e2", At(0), {Match("Failed", "admin", 5)}),
      Event("e3", At(0), {Match("Failed", "admin", 5)}, {Error("Broken", "KeyError", "k")}),
  });
  ASSERT_THAT(out.rules, SizeIs(3));  // By rule id.
  EXPECT_EQ(out.rules[0].rule_id(), "Any");
  EXPECT_EQ(out.rules[0].matches(), 1);
  EXPECT_EQ(out.rules[0].alerts_created(), 1);
  ASSERT_THAT(out.rules[0].windows(), SizeIs(1));
  EXPECT_NE(out.rules[0].windows(0).alert_id(), "");
  EXPECT_EQ(out.rules[1].rule_id(), "Broken");
  EXPECT_EQ(out.rules[1].errors(), 1);
  EXPECT_EQ(out.rules[1].alerts_created(), 1);  // Its RULE_ERROR alert.
  EXPECT_THAT(out.rules[1].windows(), IsEmpty());
  const v1::RuleIngestStats& failed = out.rules[2];
  EXPECT_EQ(failed.rule_id(), "Failed");
  EXPECT_EQ(failed.matches(), 3);
  EXPECT_EQ(failed.alerts_created(), 0);
  ASSERT_THAT(failed.windows(), SizeIs(1));
  EXPECT_EQ(failed.windows(0).dedup_string(), "admin");
  EXPECT_EQ(failed.windows(0).count(), 3);
  EXPECT_EQ(failed.windows(0).threshold(), 5);
  EXPECT_EQ(failed.windows(0).alert_id(), "");
  EXPECT_EQ(FromTs(failed.windows(0).window_start()), At(0));

  // Two more reach the threshold; a duplicate counts nothing.
  out = Apply({Event("e3", At(0), {Match("Failed", "admin", 5)}),
               Event("e4", At(2), {Match("Failed", "admin", 5)}),
               Event("e5", At(3), {Match("Failed", "admin", 5)})});
  ASSERT_THAT(out.rules, SizeIs(1));
  EXPECT_EQ(out.rules[0].matches(), 2);
  EXPECT_EQ(out.rules[0].alerts_created(), 1);
  ASSERT_THAT(out.rules[0].windows(), SizeIs(1));
  EXPECT_EQ(out.rules[0].windows(0).count(), 5);
  EXPECT_NE(out.rules[0].windows(0).alert_id(), "");
}

TEST_F(AlertEngineTest, WindowExpiringBelowThresholdIsDropped) {
  std::vector<v1::AlertChange> changes = ApplyEach({
      Event("e1", At(0), {Match("R", "admin", 3, 60)}),
      Event("e2", At(30), {Match("R", "admin", 3, 60)}),
      // 60 minutes after the first: a new window counting from 1.
      Event("e3", At(60), {Match("R", "admin", 3, 60)}),
      Event("e4", At(100), {Match("R", "admin", 3, 60)}),
  });
  EXPECT_THAT(changes, IsEmpty());
  changes = ApplyEach({Event("e5", At(110), {Match("R", "admin", 3, 60)})});
  ASSERT_THAT(changes, SizeIs(1));
  EXPECT_EQ(changes[0].alert().event_count(), 3);
  EXPECT_EQ(FromTs(changes[0].alert().window_start()), At(60));
  EXPECT_EQ(FromTs(changes[0].alert().first_event_time()), At(60));
  ASSERT_THAT(changes[0].alert().matched_events(), SizeIs(3));
  EXPECT_EQ(changes[0].alert().matched_events(0).event_id(), "e3");
}

TEST_F(AlertEngineTest, UpdatesKeepFirstMatchFieldsAndTrackCountsAndTimes) {
  RuleMatch first = Match("R", "admin");
  RuleMatch later = Match("R", "admin");
  later.title = "another title";
  later.severity = v1::SEVERITY_LOW;
  later.alert_context_json = R"({"n":2})";
  later.rule_version = 4;
  EventResult e2 = Event("e2", At(20), {later});
  e2.log_type = "AWS.CloudTrail";
  std::vector<v1::AlertChange> changes =
      ApplyEach({Event("e1", At(10), {first}), e2, Event("e3", At(15), {later})});
  ASSERT_THAT(changes, SizeIs(3));
  v1::Alert a = Get(changes[0].alert().id());
  EXPECT_EQ(a.title(), "Multiple Failed Logins for admin");
  EXPECT_EQ(a.severity(), v1::SEVERITY_CRITICAL);
  EXPECT_EQ(a.alert_context_json(), R"({"n":1})");
  EXPECT_EQ(a.rule_version(), 3);
  EXPECT_EQ(a.event_count(), 3);
  EXPECT_EQ(FromTs(a.first_event_time()), At(10));
  EXPECT_EQ(FromTs(a.last_event_time()), At(20));
  EXPECT_EQ(FromTs(a.created_time()), At(10) + absl::Seconds(5));
  EXPECT_EQ(FromTs(a.updated_time()), At(15) + absl::Seconds(5));
  EXPECT_THAT(a.log_types(), ElementsAre("AWS.CloudTrail", "Okta.SystemLog"));
  EXPECT_EQ(a.sequence(), changes[2].sequence());
}

TEST_F(AlertEngineTest, RestartInTheMiddleOfAWindowContinuesIt) {
  EXPECT_THAT(ApplyEach({Event("e1", At(0), {Match("R", "admin", 3)}),
                         Event("e2", At(10), {Match("R", "admin", 3)})}),
              IsEmpty());
  Reopen();
  std::vector<v1::AlertChange> changes = ApplyEach({Event("e3", At(20), {Match("R", "admin", 3)})});
  ASSERT_THAT(changes, SizeIs(1));
  EXPECT_EQ(changes[0].kind(), v1::AlertChange::KIND_CREATED);
  EXPECT_EQ(changes[0].alert().event_count(), 3);
  EXPECT_EQ(FromTs(changes[0].alert().window_start()), At(0));
  const std::string id = changes[0].alert().id();

  Reopen();
  // Re-sent events are still duplicates after the restart.
  BatchOutcome resent = Apply({Event("e2", At(10), {Match("R", "admin", 3)})});
  EXPECT_THAT(resent.events, ElementsAre(EventStatus::kDuplicate));
  changes = ApplyEach({Event("e4", At(50), {Match("R", "admin", 3)})});
  ASSERT_THAT(changes, SizeIs(1));
  EXPECT_EQ(changes[0].kind(), v1::AlertChange::KIND_UPDATED);
  EXPECT_EQ(changes[0].alert().id(), id);
  EXPECT_EQ(changes[0].alert().event_count(), 4);
  EXPECT_EQ(changes[0].sequence(), 2u);
}

TEST_F(AlertEngineTest, DuplicateEventsAreAcknowledgedAndSkipped) {
  BatchOutcome out = Apply({Event("e1", At(0), {Match("R", "a", 2)}),
                            Event("e1", At(0), {Match("R", "a", 2)}),  // same batch
                            Event("", At(1), {Match("R", "b")}),
                            Event("", At(1), {Match("R", "b")})});  // no id: never a duplicate
  EXPECT_THAT(out.events, ElementsAre(EventStatus::kProcessed, EventStatus::kDuplicate,
                                      EventStatus::kProcessed, EventStatus::kProcessed));
  ASSERT_THAT(out.changes, SizeIs(1));  // "a" stays below its threshold of 2
  EXPECT_EQ(out.changes[0].alert().dedup_string(), "b");
  EXPECT_EQ(out.changes[0].alert().event_count(), 2);

  out = Apply({Event("e1", At(0), {Match("R", "a", 2)})});  // a later batch
  EXPECT_THAT(out.events, ElementsAre(EventStatus::kDuplicate));
  EXPECT_THAT(out.changes, IsEmpty());

  EventResult other_type = Event("e1", At(0), {Match("R", "a", 2)});
  other_type.log_type = "AWS.CloudTrail";  // ids are per log type
  out = Apply({other_type});
  EXPECT_THAT(out.events, ElementsAre(EventStatus::kProcessed));
  ASSERT_THAT(out.changes, SizeIs(1));
  EXPECT_EQ(out.changes[0].alert().event_count(), 2);

  // After the retention the id is forgotten.
  SetNow(kBase + absl::Hours(7 * 24) + absl::Seconds(1));
  out = Apply({Event("e1", At(0), {})});
  EXPECT_THAT(out.events, ElementsAre(EventStatus::kProcessed));
}

TEST_F(AlertEngineTest, RuleErrorsAreDedupedByTypeAndNotCounted) {
  std::vector<v1::AlertChange> changes = ApplyEach({
      Event("e1", At(0), {Match("R", "admin", 2)}, {}),
      Event("e2", At(1), {}, {Error("R", "KeyError", "'actor'")}),
      Event("e3", At(2), {}, {Error("R", "KeyError", "'client'")}),
      Event("e4", At(3), {}, {Error("R", "TypeError", "bad operand")}),
  });
  // Rule R's own window still holds one match of two: no rule alert.
  ASSERT_THAT(changes, SizeIs(3));
  for (const auto& c : changes) EXPECT_EQ(c.alert().type(), v1::ALERT_TYPE_RULE_ERROR);
  const v1::Alert key_error = Get(changes[0].alert().id());
  EXPECT_EQ(key_error.dedup_string(), "KeyError");
  EXPECT_EQ(key_error.event_count(), 2);
  EXPECT_EQ(key_error.error().message(), "'actor'");
  EXPECT_THAT(key_error.error().traceback(), ::testing::HasSubstr("Traceback"));
  EXPECT_EQ(key_error.title(), "Rule R raised KeyError: 'actor'");
  EXPECT_EQ(changes[1].alert().id(), key_error.id());
  EXPECT_EQ(changes[2].alert().dedup_string(), "TypeError");
  EXPECT_NE(changes[2].alert().id(), key_error.id());

  // A rule whose dedup string equals an exception type is another group.
  changes = ApplyEach({Event("e5", At(4), {Match("R", "KeyError")})});
  ASSERT_THAT(changes, SizeIs(1));
  EXPECT_EQ(changes[0].kind(), v1::AlertChange::KIND_CREATED);
  EXPECT_NE(changes[0].alert().id(), key_error.id());

  changes = ApplyEach({Event("e6", At(5), {Match("R", "admin", 2)})});
  ASSERT_THAT(changes, SizeIs(1));
  EXPECT_EQ(changes[0].alert().event_count(), 2);  // errors did not count
}

// Each rule's figures (what `pantherctl send` prints per rule) count a
// signal rule's groups as signals, not alerts.
TEST_F(AlertEngineTest, PerRuleFiguresCountSignalsApartFromAlerts) {
  RuleMatch signal = Match("R.Signal", "admin");
  signal.create_alert = false;
  auto figures = [](const BatchOutcome& outcome, const std::string& rule) {
    for (const v1::RuleIngestStats& s : outcome.rules) {
      if (s.rule_id() == rule) return s;
    }
    return v1::RuleIngestStats();
  };
  SetNow(At(1));
  BatchOutcome first = Apply({Event("e1", At(0), {signal, Match("R.Alert", "admin")})});
  EXPECT_EQ(figures(first, "R.Signal").signals_created(), 1);
  EXPECT_EQ(figures(first, "R.Signal").alerts_created(), 0);
  EXPECT_EQ(figures(first, "R.Alert").alerts_created(), 1);
  EXPECT_EQ(figures(first, "R.Alert").signals_created(), 0);
  SetNow(At(2));
  BatchOutcome second = Apply({Event("e2", At(1), {signal})});
  EXPECT_EQ(figures(second, "R.Signal").signals_updated(), 1);
  EXPECT_EQ(figures(second, "R.Signal").alerts_updated(), 0);
}

TEST_F(AlertEngineTest, SignalsAreRecordedButNotNotified) {
  RuleMatch signal = Match("R.Signal", "admin", /*threshold=*/5);
  signal.create_alert = false;
  std::vector<v1::AlertChange> changes =
      ApplyEach({Event("e1", At(0), {signal}), Event("e2", At(1), {signal})});
  ASSERT_THAT(changes, SizeIs(2));
  EXPECT_EQ(changes[0].kind(), v1::AlertChange::KIND_CREATED);
  EXPECT_EQ(changes[0].alert().type(), v1::ALERT_TYPE_SIGNAL);
  EXPECT_FALSE(ShouldNotify(changes[0]));
  EXPECT_FALSE(ShouldNotify(changes[1]));
  EXPECT_EQ(Get(changes[0].alert().id()).event_count(), 2);
  EXPECT_THAT(Log(), SizeIs(2));
  v1::ListAlertsRequest rules_only;
  rules_only.add_types(v1::ALERT_TYPE_RULE);
  EXPECT_THAT(List(rules_only), IsEmpty());
  // The same rule and dedup string alerting is a separate group.
  changes = ApplyEach({Event("e3", At(2), {Match("R.Signal", "admin")})});
  ASSERT_THAT(changes, SizeIs(1));
  EXPECT_EQ(changes[0].kind(), v1::AlertChange::KIND_CREATED);
  EXPECT_TRUE(ShouldNotify(changes[0]));
}

// Any arrival order of matches lying within one period of the earliest gives
// the same window, count and alert fields (documented rule 2).
TEST_F(AlertEngineTest, OutOfOrderWithinOnePeriodIsOrderIndependent) {
  std::vector<int> minutes = {0, 20, 45, 59};
  std::sort(minutes.begin(), minutes.end());
  int permutation = 0;
  do {
    const std::string rule = absl::StrCat("R", permutation++);
    for (int m : minutes) {
      SetNow(At(120));
      Apply({Event(absl::StrCat(rule, "-", m), At(m), {Match(rule, "admin", 3)})});
    }
    v1::ListAlertsRequest request;
    request.add_rule_ids(rule);
    std::vector<v1::Alert> alerts = List(request);
    ASSERT_THAT(alerts, SizeIs(1)) << rule;
    EXPECT_EQ(alerts[0].event_count(), 4) << rule;
    EXPECT_EQ(FromTs(alerts[0].window_start()), At(0)) << rule;
    EXPECT_EQ(FromTs(alerts[0].window_end()), At(60)) << rule;
    EXPECT_EQ(FromTs(alerts[0].first_event_time()), At(0)) << rule;
    EXPECT_EQ(FromTs(alerts[0].last_event_time()), At(59)) << rule;
    // The next match after the window opens a new one in every order.
    Apply({Event(absl::StrCat(rule, "-next"), At(60), {Match(rule, "admin", 1)})});
    EXPECT_THAT(List(request), SizeIs(2)) << rule;
  } while (std::next_permutation(minutes.begin(), minutes.end()));
  EXPECT_EQ(permutation, 24);
}

TEST_F(AlertEngineTest, LateEventJoinsTheWindowItsTimeBelongsTo) {
  std::vector<v1::AlertChange> changes = ApplyEach({
      Event("e1", At(0), {Match("R", "admin")}),
      Event("e2", At(90), {Match("R", "admin")}),
  });
  ASSERT_THAT(changes, SizeIs(2));
  const std::string first = changes[0].alert().id();
  const std::string second = changes[1].alert().id();
  // Arrives after the second window opened, but its time is in the first.
  changes = Apply({Event("late", At(20), {Match("R", "admin")})}).changes;
  ASSERT_THAT(changes, SizeIs(1));
  EXPECT_EQ(changes[0].kind(), v1::AlertChange::KIND_UPDATED);
  EXPECT_EQ(changes[0].alert().id(), first);
  EXPECT_EQ(Get(first).event_count(), 2);
  EXPECT_EQ(Get(second).event_count(), 1);
}

TEST_F(AlertEngineTest, LateEventMovesAWindowBackWhenEveryMatchStillFits) {
  std::vector<v1::AlertChange> changes = ApplyEach({Event("e1", At(30), {Match("R", "admin")})});
  ASSERT_THAT(changes, SizeIs(1));
  const std::string id = changes[0].alert().id();
  changes = Apply({Event("e0", At(0), {Match("R", "admin")})}).changes;
  ASSERT_THAT(changes, SizeIs(1));
  EXPECT_EQ(changes[0].alert().id(), id);  // the id stays, the window moves
  EXPECT_EQ(FromTs(changes[0].alert().window_start()), At(0));
  EXPECT_EQ(FromTs(changes[0].alert().window_end()), At(60));
  EXPECT_EQ(FromTs(changes[0].alert().first_event_time()), At(0));
  // As in time order, 11:05 is after the window [10:00, 11:00).
  changes = Apply({Event("e2", At(65), {Match("R", "admin")})}).changes;
  ASSERT_THAT(changes, SizeIs(1));
  EXPECT_EQ(changes[0].kind(), v1::AlertChange::KIND_CREATED);
}

TEST_F(AlertEngineTest, LateEventTooOldForANextWindowOpensAShortenedOne) {
  ApplyEach({Event("e1", At(60), {Match("R", "admin", 2)}),
             Event("e2", At(110), {Match("R", "admin", 2)})});
  ASSERT_THAT(List(), SizeIs(1));
  // 10:40 cannot share a window with 11:50: a window [10:40, 11:00).
  EXPECT_THAT(Apply({Event("e3", At(40), {Match("R", "admin", 2)})}).changes, IsEmpty());
  std::vector<v1::AlertChange> changes =
      Apply({Event("e4", At(59), {Match("R", "admin", 2)})}).changes;
  ASSERT_THAT(changes, SizeIs(1));
  EXPECT_EQ(changes[0].kind(), v1::AlertChange::KIND_CREATED);
  EXPECT_EQ(FromTs(changes[0].alert().window_start()), At(40));
  EXPECT_EQ(FromTs(changes[0].alert().window_end()), At(60));
  EXPECT_EQ(changes[0].alert().event_count(), 2);
  EXPECT_THAT(List(), SizeIs(2));
}

TEST_F(AlertEngineTest, ProcessingTimeClockIgnoresEventTimes) {
  options_.clock = AlertClock::kProcessingTime;
  MakeEngine();
  SetNow(At(0));
  // Event times far apart; processing times together.
  EXPECT_THAT(Apply({Event("e1", At(-5000), {Match("R", "admin", 2)})}).changes, IsEmpty());
  SetNow(At(10));
  std::vector<v1::AlertChange> changes =
      Apply({Event("e2", At(9000), {Match("R", "admin", 2)})}).changes;
  ASSERT_THAT(changes, SizeIs(1));
  EXPECT_EQ(FromTs(changes[0].alert().window_start()), At(0));
  EXPECT_EQ(FromTs(changes[0].alert().first_event_time()), At(-5000));  // still event times
  EXPECT_EQ(FromTs(changes[0].alert().last_event_time()), At(9000));

  // A below-threshold window is deleted when the next window opens.
  SetNow(At(100));
  EXPECT_THAT(Apply({Event("e3", At(0), {Match("Q", "x", 2)})}).changes, IsEmpty());
  EXPECT_EQ(CountKeys(store::Family::kDedup), 2);
  SetNow(At(200));
  EXPECT_THAT(Apply({Event("e4", At(0), {Match("Q", "x", 2)})}).changes, IsEmpty());
  EXPECT_EQ(CountKeys(store::Family::kDedup), 2);  // Q's old window replaced
}

TEST_F(AlertEngineTest, SequencesAreStrictlyIncreasingAndMatchTheLog) {
  std::vector<v1::AlertChange> returned;
  for (int i = 0; i < 5; ++i) {
    SetNow(At(i));
    std::vector<EventResult> batch;
    for (int j = 0; j < 3; ++j) {
      batch.push_back(Event(absl::StrCat("e", i, "-", j), At(i),
                            {Match("R", absl::StrCat("user", j)), Match("S", "all")}));
    }
    BatchOutcome out = Apply(batch);
    // One change per alert per batch: user0..2 of R and "all" of S.
    EXPECT_THAT(out.changes, SizeIs(4));
    for (auto& c : out.changes) returned.push_back(c);
  }
  v1::UpdateAlertRequest update;
  update.set_id(returned[0].alert().id());
  update.set_status(v1::ALERT_STATUS_TRIAGED);
  absl::StatusOr<v1::AlertChange> triaged = engine_->UpdateAlert(update, "alice", At(30));
  ASSERT_TRUE(triaged.ok()) << triaged.status();
  returned.push_back(*triaged);

  std::vector<v1::AlertChange> log = Log();
  ASSERT_EQ(log.size(), returned.size());
  for (size_t i = 0; i < log.size(); ++i) {
    EXPECT_EQ(log[i].sequence(), i + 1);
    EXPECT_EQ(returned[i].sequence(), i + 1);
    // What the caller got is exactly what a resuming reader gets.
    EXPECT_EQ(log[i].SerializeAsString(), returned[i].SerializeAsString());
    EXPECT_EQ(log[i].kind(), returned[i].kind());
    EXPECT_EQ(log[i].alert().id(), returned[i].alert().id());
    EXPECT_EQ(log[i].alert().sequence(), log[i].sequence());
  }
  EXPECT_EQ(*engine_->LatestSequence(), 21u);
  EXPECT_EQ(*engine_->OldestRetainedSequence(), 1u);
  absl::StatusOr<std::vector<v1::AlertChange>> tail = engine_->ReadChangesAfter(18, 2);
  ASSERT_TRUE(tail.ok());
  ASSERT_THAT(*tail, SizeIs(2));
  EXPECT_EQ((*tail)[0].sequence(), 19u);
  EXPECT_EQ((*tail)[1].sequence(), 20u);
  EXPECT_THAT(*engine_->ReadChangesAfter(21, 10), IsEmpty());
  EXPECT_FALSE(engine_->ReadChangesAfter(0, 0).ok());
  EXPECT_EQ(Get(returned[0].alert().id()).sequence(), 21u);
  // Times: batch i was recorded at At(i), the triage at At(30).
  EXPECT_EQ(*engine_->FirstSequenceAtOrAfter(At(2)), 9u);
  EXPECT_EQ(*engine_->FirstSequenceAtOrAfter(At(5)), 21u);
  EXPECT_EQ(*engine_->FirstSequenceAtOrAfter(At(31)), 22u);
  EXPECT_EQ(*engine_->FirstSequenceAtOrAfter(At(-1)), 1u);
}

TEST_F(AlertEngineTest, CreatedChangesCarryMatchedEventsUpToN) {
  options_.max_sample_events = 3;
  MakeEngine();
  std::vector<v1::AlertChange> changes;
  for (int i = 0; i < 5; ++i) {
    for (auto& c : ApplyEach({Event(absl::StrCat("e", i), At(i), {Match("R", "admin", 2)})})) {
      changes.push_back(c);
    }
  }
  ASSERT_THAT(changes, SizeIs(4));
  EXPECT_THAT(changes[0].alert().matched_events(), SizeIs(2));
  EXPECT_THAT(changes[1].alert().matched_events(), IsEmpty());  // UPDATED: read with GetAlert
  v1::Alert a = Get(changes[0].alert().id());
  ASSERT_THAT(a.matched_events(), SizeIs(3));
  EXPECT_EQ(a.matched_events(2).event_id(), "e2");
  EXPECT_EQ(a.matched_events(2).json(), R"({"uuid":"e2"})");
  EXPECT_EQ(FromTs(a.matched_events(2).event_time()), At(2));
  EXPECT_EQ(a.event_count(), 5);
}

// An event whose json is `bytes` long (an object with one padding string).
EventResult BigEvent(const std::string& id, absl::Time time, size_t bytes,
                     std::vector<RuleMatch> matches) {
  EventResult e = Event(id, time, std::move(matches));
  const std::string head = absl::StrCat(R"({"uuid":")", id, R"(","pad":")");
  e.event_json = absl::StrCat(head, std::string(bytes - head.size() - 2, 'x'), R"("})");
  return e;
}

TEST_F(AlertEngineTest, StoredSamplesAreCappedInBytesPerEventAndPerAlert) {
  options_.max_sample_event_bytes = 1000;
  options_.max_sample_bytes_per_alert = 2500;
  MakeEngine();
  // e0 and e1 are cut to 1000 bytes, e2 (200 bytes) fits, e3 (cut to 1000)
  // would take the total to 3200 > 2500: counted, not stored; e4 (100) fits.
  const std::vector<size_t> sizes = {5000, 1'000'000, 200, 3000, 100};
  std::vector<v1::AlertChange> changes;
  for (size_t i = 0; i < sizes.size(); ++i) {
    for (auto& c : ApplyEach({BigEvent(absl::StrCat("e", i), At(static_cast<int>(i)), sizes[i],
                                       {Match("R", "admin")})})) {
      changes.push_back(c);
    }
  }
  ASSERT_THAT(changes, SizeIs(5));
  v1::Alert a = Get(changes[0].alert().id());
  EXPECT_EQ(a.event_count(), 5);
  ASSERT_THAT(a.matched_events(), SizeIs(4));
  EXPECT_EQ(a.matched_events_stored(), 4);
  EXPECT_EQ(a.samples_not_stored(), 1);
  EXPECT_EQ(a.matched_events(0).json().size(), 1000u);
  EXPECT_TRUE(a.matched_events(0).truncated());
  EXPECT_EQ(a.matched_events(0).original_bytes(), 5000);
  EXPECT_EQ(a.matched_events(1).original_bytes(), 1'000'000);
  EXPECT_TRUE(a.matched_events(1).truncated());
  EXPECT_FALSE(a.matched_events(2).truncated());
  EXPECT_EQ(a.matched_events(2).original_bytes(), 200);
  EXPECT_EQ(a.matched_events(2).json().size(), 200u);
  EXPECT_EQ(a.matched_events(3).event_id(), "e4");
  EXPECT_EQ(a.sample_event_json().size(), 1000u);
  EXPECT_TRUE(a.sample_event_truncated());
  EXPECT_EQ(a.sample_event_original_bytes(), 5000);
  EXPECT_LT(a.ByteSizeLong(), 1000u + 2500u + 1000u);
  // The logged change carries no more than the stored alert.
  EXPECT_LT(changes[0].ByteSizeLong(), 2 * 1000u + 1000u);
}

TEST_F(AlertEngineTest, TruncationKeepsValidUtf8) {
  options_.max_sample_event_bytes = 10;
  MakeEngine();
  EventResult e = Event("e0", At(0), {Match("R", "admin")});
  e.event_json = "{\"a\":\"abcd\xc3\xa9\xc3\xa9\xc3\xa9\"}";  // "é" is 2 bytes: byte 10 splits one
  std::vector<v1::AlertChange> changes = ApplyEach({e});
  ASSERT_THAT(changes, SizeIs(1));
  v1::Alert a = Get(changes[0].alert().id());
  ASSERT_THAT(a.matched_events(), SizeIs(1));
  EXPECT_EQ(a.matched_events(0).json(), "{\"a\":\"abcd");
  EXPECT_TRUE(a.matched_events(0).truncated());
}

TEST_F(AlertEngineTest, ListAlertsReturnsSummariesWithinTheReplyByteCap) {
  options_.max_list_reply_bytes = 8 << 10;  // 8 KiB
  MakeEngine();
  for (int i = 0; i < 20; ++i) {
    ApplyEach({BigEvent(absl::StrCat("e", i), At(i), 3000, {Match("R", absl::StrCat("d", i))})});
  }
  ASSERT_TRUE(engine_
                  ->UpdateAlert(
                      [&] {
                        v1::UpdateAlertRequest u;
                        u.set_id(List()[0].id());
                        u.set_comment("looked at it");
                        return u;
                      }(),
                      "alice", At(30))
                  .ok());
  v1::ListAlertsRequest request;
  std::set<std::string> ids;
  int pages = 0;
  do {
    absl::StatusOr<v1::ListAlertsResponse> page = engine_->ListAlerts(request);
    ASSERT_TRUE(page.ok()) << page.status();
    ++pages;
    EXPECT_LE(page->ByteSizeLong(), size_t{8} << 10);
    ASSERT_FALSE(page->alerts().empty());
    for (const v1::Alert& a : page->alerts()) {
      EXPECT_THAT(a.matched_events(), IsEmpty());
      EXPECT_THAT(a.history(), IsEmpty());
      EXPECT_TRUE(a.sample_event_json().empty());
      EXPECT_EQ(a.matched_events_stored(), 1);
      EXPECT_EQ(a.event_count(), 1);
      EXPECT_TRUE(ids.insert(a.id()).second) << "listed twice: " << a.id();
    }
    request.mutable_page()->set_page_token(page->next_page_token());
  } while (!request.page().page_token().empty() && pages < 100);
  EXPECT_EQ(ids.size(), 20u);
  EXPECT_EQ(pages, 1);  // summaries are small: one page holds them all

  // A cap smaller than one summary still returns one alert per page.
  options_.max_list_reply_bytes = 1;
  MakeEngine();
  request.Clear();
  ids.clear();
  pages = 0;
  do {
    absl::StatusOr<v1::ListAlertsResponse> page = engine_->ListAlerts(request);
    ASSERT_TRUE(page.ok()) << page.status();
    ++pages;
    ASSERT_THAT(page->alerts(), SizeIs(1));
    ids.insert(page->alerts(0).id());
    request.mutable_page()->set_page_token(page->next_page_token());
  } while (!request.page().page_token().empty() && pages < 100);
  EXPECT_EQ(ids.size(), 20u);
  EXPECT_EQ(pages, 20);
}

TEST_F(AlertEngineTest, ListAlertEventsPagesThroughStoredSamples) {
  options_.max_sample_events = 5;
  options_.max_list_reply_bytes = 3500;  // less 1 KiB reserved for the token
  MakeEngine();
  std::string id;
  for (int i = 0; i < 7; ++i) {
    for (auto& c :
         ApplyEach({BigEvent(absl::StrCat("e", i), At(i), 1000, {Match("R", "admin")})})) {
      id = c.alert().id();
    }
  }
  v1::ListAlertEventsRequest request;
  request.set_alert_id(id);
  std::vector<std::string> seen;
  int pages = 0;
  do {
    absl::StatusOr<v1::ListAlertEventsResponse> page = engine_->ListAlertEvents(request);
    ASSERT_TRUE(page.ok()) << page.status();
    ++pages;
    EXPECT_EQ(page->event_count(), 7);
    EXPECT_EQ(page->stored(), 5);
    EXPECT_LE(page->ByteSizeLong(), 3500u);
    for (const v1::MatchedEvent& m : page->events()) seen.push_back(m.event_id());
    request.mutable_page()->set_page_token(page->next_page_token());
  } while (!request.page().page_token().empty() && pages < 20);
  EXPECT_THAT(seen, ElementsAre("e0", "e1", "e2", "e3", "e4"));
  EXPECT_EQ(pages, 3);  // two 1 KiB events per page

  request.mutable_page()->set_page_token("x");
  EXPECT_TRUE(absl::IsInvalidArgument(engine_->ListAlertEvents(request).status()));
  request.mutable_page()->set_page_token("");
  request.set_alert_id("00");
  EXPECT_TRUE(absl::IsNotFound(engine_->ListAlertEvents(request).status()));
  request.set_alert_id("");
  EXPECT_TRUE(absl::IsInvalidArgument(engine_->ListAlertEvents(request).status()));
}

TEST_F(AlertEngineTest, ReadChangesAfterStopsAtTheByteBudget) {
  for (int i = 0; i < 10; ++i) {
    ApplyEach({BigEvent(absl::StrCat("e", i), At(i), 1000, {Match("R", absl::StrCat("d", i))})});
  }
  absl::StatusOr<std::vector<v1::AlertChange>> all = engine_->ReadChangesAfter(0, 100);
  ASSERT_TRUE(all.ok());
  ASSERT_THAT(*all, SizeIs(10));
  const size_t one = (*all)[0].ByteSizeLong();
  // A budget of 2.5 changes stops after the third (the one that crosses it).
  absl::StatusOr<std::vector<v1::AlertChange>> some =
      engine_->ReadChangesAfter(0, 100, one * 5 / 2);
  ASSERT_TRUE(some.ok());
  EXPECT_THAT(*some, SizeIs(3));
  some = engine_->ReadChangesAfter(0, 100, 1);
  ASSERT_TRUE(some.ok());
  EXPECT_THAT(*some, SizeIs(1));
}

TEST_F(AlertEngineTest, ListAlertsFiltersAndPaginatesNewestFirst) {
  // Alert i is created at At(i).
  const v1::Severity severities[] = {v1::SEVERITY_LOW, v1::SEVERITY_HIGH, v1::SEVERITY_CRITICAL};
  std::vector<std::string> ids;
  for (int i = 0; i < 7; ++i) {
    RuleMatch m = Match(i % 2 == 0 ? "Even" : "Odd", absl::StrCat("u", i));
    m.severity = severities[i % 3];
    SetNow(At(i));
    BatchOutcome out = Apply({Event(absl::StrCat("e", i), At(i), {m})});
    ASSERT_THAT(out.changes, SizeIs(1));
    ids.push_back(out.changes[0].alert().id());
  }
  v1::UpdateAlertRequest resolve;
  resolve.set_id(ids[3]);
  resolve.set_status(v1::ALERT_STATUS_RESOLVED);
  ASSERT_TRUE(engine_->UpdateAlert(resolve, "bob", At(10)).ok());

  auto idsOf = [](const std::vector<v1::Alert>& alerts) {
    std::vector<std::string> out;
    for (const auto& a : alerts) out.push_back(a.id());
    return out;
  };
  EXPECT_THAT(idsOf(List()), ElementsAre(ids[6], ids[5], ids[4], ids[3], ids[2], ids[1], ids[0]));

  v1::ListAlertsRequest by_rule;
  by_rule.add_rule_ids("Odd");
  EXPECT_THAT(idsOf(List(by_rule)), ElementsAre(ids[5], ids[3], ids[1]));

  v1::ListAlertsRequest by_severity;
  by_severity.set_min_severity(v1::SEVERITY_HIGH);
  EXPECT_THAT(idsOf(List(by_severity)), ElementsAre(ids[5], ids[4], ids[2], ids[1]));

  v1::ListAlertsRequest by_status;
  by_status.add_statuses(v1::ALERT_STATUS_RESOLVED);
  EXPECT_THAT(idsOf(List(by_status)), ElementsAre(ids[3]));
  by_status.set_statuses(0, v1::ALERT_STATUS_OPEN);
  EXPECT_THAT(List(by_status), SizeIs(6));

  v1::ListAlertsRequest by_time;
  *by_time.mutable_created_after() = Ts(At(2));
  *by_time.mutable_created_before() = Ts(At(5));
  EXPECT_THAT(idsOf(List(by_time)), ElementsAre(ids[4], ids[3], ids[2]));

  v1::ListAlertsRequest by_type;
  by_type.add_types(v1::ALERT_TYPE_RULE_ERROR);
  EXPECT_THAT(List(by_type), IsEmpty());

  // Pages of 2 over "Even or Odd, at least LOW" walk all 7, newest first.
  v1::ListAlertsRequest paged;
  paged.mutable_page()->set_page_size(2);
  std::vector<std::string> walked;
  int pages = 0;
  while (true) {
    absl::StatusOr<v1::ListAlertsResponse> page = engine_->ListAlerts(paged);
    ASSERT_TRUE(page.ok()) << page.status();
    ++pages;
    for (const auto& a : page->alerts()) walked.push_back(a.id());
    if (page->next_page_token().empty()) break;
    paged.mutable_page()->set_page_token(page->next_page_token());
  }
  EXPECT_EQ(pages, 4);
  EXPECT_THAT(walked, ElementsAre(ids[6], ids[5], ids[4], ids[3], ids[2], ids[1], ids[0]));

  // A filtered walk whose last page is exactly full ends without a token.
  v1::ListAlertsRequest odd_pages = by_rule;
  odd_pages.mutable_page()->set_page_size(3);
  absl::StatusOr<v1::ListAlertsResponse> odd = engine_->ListAlerts(odd_pages);
  ASSERT_TRUE(odd.ok());
  EXPECT_THAT(odd->alerts(), SizeIs(3));
  EXPECT_EQ(odd->next_page_token(), "");

  // count_remaining: the first page of 2 says 5 more match; of Odd's 3, 1 more.
  v1::ListAlertsRequest counted;
  counted.mutable_page()->set_page_size(2);
  counted.set_count_remaining(true);
  absl::StatusOr<v1::ListAlertsResponse> first = engine_->ListAlerts(counted);
  ASSERT_TRUE(first.ok());
  EXPECT_THAT(first->alerts(), SizeIs(2));
  EXPECT_EQ(first->remaining_count(), 5);
  EXPECT_NE(first->next_page_token(), "");
  counted.add_rule_ids("Odd");
  first = engine_->ListAlerts(counted);
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(first->remaining_count(), 1);
  counted.mutable_page()->set_page_size(3);
  first = engine_->ListAlerts(counted);
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(first->remaining_count(), 0);
  EXPECT_EQ(first->next_page_token(), "");

  // Triage moves updated_time (At(10) for ids[3]), not last_event_time.
  v1::ListAlertsRequest by_update;
  *by_update.mutable_updated_after() = Ts(At(10));
  EXPECT_THAT(idsOf(List(by_update)), ElementsAre(ids[3]));
  *by_update.mutable_updated_after() = Ts(At(5));
  *by_update.mutable_updated_before() = Ts(At(10));
  EXPECT_THAT(idsOf(List(by_update)), ElementsAre(ids[6], ids[5]));
  const v1::Alert resolved = Get(ids[3]);
  EXPECT_EQ(FromTs(resolved.updated_time()), At(10));
  EXPECT_EQ(FromTs(resolved.last_event_time()), At(3));
  EXPECT_EQ(FromTs(resolved.created_time()), At(3));

  v1::ListAlertsRequest bad;
  bad.mutable_page()->set_page_token("zz-not-a-token");
  EXPECT_EQ(engine_->ListAlerts(bad).status().code(), absl::StatusCode::kInvalidArgument);
  bad.mutable_page()->set_page_token("");
  bad.mutable_page()->set_page_size(-1);
  EXPECT_EQ(engine_->ListAlerts(bad).status().code(), absl::StatusCode::kInvalidArgument);

  // A time out of Timestamp's range is refused by name (it would overflow).
  v1::ListAlertsRequest far;
  far.mutable_updated_before()->set_seconds(int64_t{1} << 62);
  absl::Status refused = engine_->ListAlerts(far).status();
  EXPECT_EQ(refused.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(refused.message()), ::testing::HasSubstr("updated_before"));
  far.clear_updated_before();
  far.mutable_created_after()->set_nanos(-1);
  EXPECT_THAT(std::string(engine_->ListAlerts(far).status().message()),
              ::testing::HasSubstr("created_after"));
}

TEST_F(AlertEngineTest, CountingTheRestStopsAtTheCapAndSaysItIsALowerBound) {
  options_.max_alerts_counted = 3;
  MakeEngine();
  for (int i = 0; i < 8; ++i) {
    SetNow(At(i));
    ASSERT_THAT(
        Apply({Event(absl::StrCat("e", i), At(i), {Match("R", absl::StrCat("u", i))})}).changes,
        SizeIs(1));
  }
  v1::ListAlertsRequest counted;
  counted.mutable_page()->set_page_size(2);
  counted.set_count_remaining(true);
  absl::StatusOr<v1::ListAlertsResponse> page = engine_->ListAlerts(counted);
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_THAT(page->alerts(), SizeIs(2));
  EXPECT_NE(page->next_page_token(), "");
  // 6 remain; counting found the one that ends the page, read 3 more, and
  // stopped.
  EXPECT_EQ(page->remaining_count(), 4);
  EXPECT_TRUE(page->remaining_count_is_lower_bound());
  // Under the cap the count is exact.
  counted.mutable_page()->set_page_size(5);
  page = engine_->ListAlerts(counted);
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(page->remaining_count(), 3);
  EXPECT_FALSE(page->remaining_count_is_lower_bound());
}

// Records what the engine publishes.
class RecordingPublisher : public AlertPublisher {
 public:
  void Publish(std::vector<v1::AlertChange> changes) override {
    absl::MutexLock lock(&mu_);
    for (const v1::AlertChange& c : changes) sequences_.push_back(c.sequence());
  }
  std::vector<uint64_t> sequences() {
    absl::MutexLock lock(&mu_);
    return sequences_;
  }

 private:
  absl::Mutex mu_;
  std::vector<uint64_t> sequences_;
};

// Writers on many threads (batches and triage): the publisher sees every
// durable change once, in sequence order, with no lock in the callers.
TEST_F(AlertEngineTest, ThePublisherSeesEveryChangeOnceInSequenceOrder) {
  RecordingPublisher publisher;
  engine_->SetPublisher(&publisher);
  std::vector<v1::AlertChange> first = Apply({Event("seed", At(0), {Match("R", "x")})}).changes;
  ASSERT_THAT(first, SizeIs(1));
  const std::string id = first[0].alert().id();
  constexpr int kThreads = 4;
  constexpr int kWrites = 25;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kWrites; ++i) {
        if (t == 0) {
          v1::UpdateAlertRequest update;
          update.set_id(id);
          update.set_comment(absl::StrCat("note ", i));
          EXPECT_TRUE(engine_->UpdateAlert(update, "alice", At(1)).ok());
        } else {
          const std::string ev = absl::StrCat("t", t, "-", i);
          EXPECT_TRUE(engine_->ApplyBatch({Event(ev, At(0), {Match("R", ev)})}).ok());
        }
      }
    });
  }
  for (std::thread& th : threads) th.join();
  engine_->SetPublisher(nullptr);
  Apply({Event("after", At(0), {Match("R", "after")})});  // not published

  std::vector<uint64_t> seen = publisher.sequences();
  const uint64_t latest = *engine_->LatestSequence();
  ASSERT_EQ(seen.size(), latest - 1);  // everything but the last write
  for (size_t i = 0; i < seen.size(); ++i) EXPECT_EQ(seen[i], i + 1);
}

// Triage cannot grow an alert without bound: long comments are refused, and
// the history keeps its newest entries within its byte cap.
TEST_F(AlertEngineTest, TriageHistoryIsBoundedInBytes) {
  std::vector<v1::AlertChange> changes = ApplyEach({Event("e1", At(0), {Match("R", "admin")})});
  ASSERT_THAT(changes, SizeIs(1));
  v1::UpdateAlertRequest update;
  update.set_id(changes[0].alert().id());
  update.set_comment(std::string((16 << 10) + 1, 'c'));
  absl::StatusOr<v1::AlertChange> refused = engine_->UpdateAlert(update, "mallory", At(1));
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(refused.status().message()),
              ::testing::HasSubstr("comment: 16385 bytes"));

  for (int i = 0; i < 40; ++i) {
    update.set_comment(absl::StrCat(i, ":", std::string(10 << 10, 'c')));
    ASSERT_TRUE(engine_->UpdateAlert(update, "mallory", At(2)).ok());
  }
  v1::Alert alert = Get(changes[0].alert().id());
  size_t bytes = 0;
  for (const v1::AlertHistoryEntry& e : alert.history()) bytes += e.ByteSizeLong();
  EXPECT_LE(bytes, size_t{64} << 10);
  EXPECT_EQ(alert.history_size() + alert.history_entries_dropped(), 40);
  EXPECT_GT(alert.history_entries_dropped(), 30);
  EXPECT_TRUE(absl::StartsWith(alert.history(alert.history_size() - 1).comment(), "39:"));
}

TEST_F(AlertEngineTest, UpdateAlertRecordsHistoryAndKeepsTheWindow) {
  std::vector<v1::AlertChange> changes = ApplyEach({Event("e1", At(0), {Match("R", "admin")})});
  ASSERT_THAT(changes, SizeIs(1));
  const std::string id = changes[0].alert().id();

  v1::UpdateAlertRequest update;
  update.set_id(id);
  update.set_status(v1::ALERT_STATUS_RESOLVED);
  update.set_assignee("carol");
  update.set_comment("expected pentest");
  absl::StatusOr<v1::AlertChange> triaged = engine_->UpdateAlert(update, "alice", At(5));
  ASSERT_TRUE(triaged.ok()) << triaged.status();
  EXPECT_EQ(triaged->kind(), v1::AlertChange::KIND_TRIAGED);
  EXPECT_EQ(triaged->sequence(), 2u);
  EXPECT_EQ(triaged->alert().status(), v1::ALERT_STATUS_RESOLVED);
  EXPECT_EQ(triaged->alert().assignee(), "carol");
  ASSERT_THAT(triaged->alert().history(), SizeIs(1));
  const v1::AlertHistoryEntry& h = triaged->alert().history(0);
  EXPECT_EQ(h.actor(), "alice");
  EXPECT_EQ(FromTs(h.time()), At(5));
  EXPECT_EQ(h.old_status(), v1::ALERT_STATUS_OPEN);
  EXPECT_EQ(h.new_status(), v1::ALERT_STATUS_RESOLVED);
  EXPECT_EQ(h.assignee(), "carol");
  EXPECT_EQ(h.comment(), "expected pentest");

  // The window goes on: a later match updates the same (resolved) alert.
  changes = ApplyEach({Event("e2", At(30), {Match("R", "admin")})});
  ASSERT_THAT(changes, SizeIs(1));
  EXPECT_EQ(changes[0].kind(), v1::AlertChange::KIND_UPDATED);
  EXPECT_EQ(changes[0].alert().id(), id);
  EXPECT_EQ(changes[0].alert().event_count(), 2);
  EXPECT_EQ(changes[0].alert().status(), v1::ALERT_STATUS_RESOLVED);
  EXPECT_THAT(changes[0].alert().history(), SizeIs(1));

  v1::UpdateAlertRequest invalid;
  invalid.set_id(id);
  invalid.set_status(v1::ALERT_STATUS_INVALID);
  invalid.set_assignee("");
  ASSERT_TRUE(engine_->UpdateAlert(invalid, "bob", At(40)).ok());
  v1::Alert a = Get(id);
  EXPECT_EQ(a.status(), v1::ALERT_STATUS_INVALID);
  EXPECT_EQ(a.assignee(), "");
  ASSERT_THAT(a.history(), SizeIs(2));
  EXPECT_EQ(a.history(1).old_status(), v1::ALERT_STATUS_RESOLVED);
  EXPECT_TRUE(a.history(1).has_assignee());

  v1::UpdateAlertRequest comment_only;
  comment_only.set_id(id);
  comment_only.set_comment("note");
  ASSERT_TRUE(engine_->UpdateAlert(comment_only, "bob", At(41)).ok());
  EXPECT_EQ(Get(id).status(), v1::ALERT_STATUS_INVALID);

  v1::UpdateAlertRequest nothing;
  nothing.set_id(id);
  EXPECT_EQ(engine_->UpdateAlert(nothing, "bob", At(42)).status().code(),
            absl::StatusCode::kInvalidArgument);
  v1::UpdateAlertRequest bad_status = update;
  bad_status.set_status(static_cast<v1::AlertStatus>(42));
  EXPECT_EQ(engine_->UpdateAlert(bad_status, "bob", At(42)).status().code(),
            absl::StatusCode::kInvalidArgument);
  v1::UpdateAlertRequest unknown = update;
  unknown.set_id("0123456789abcdef0123456789abcdef");
  EXPECT_EQ(engine_->UpdateAlert(unknown, "bob", At(42)).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(engine_->GetAlert("nope").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(*engine_->LatestSequence(), 5u);
}

TEST_F(AlertEngineTest, AFailingWriteLeavesNothing) {
  // Make the alert_seq counter unreadable: the write that would create the
  // alert fails after every window, alert and processed id was prepared.
  ASSERT_TRUE(store_
                  ->Put(store::Family::kMeta,
                        absl::StrCat(store::kSequenceKeyPrefix, kAlertSequenceName), "bad")
                  .ok());
  absl::StatusOr<BatchOutcome> out = engine_->ApplyBatch(
      {Event("e1", At(0), {Match("R", "admin", 2)}), Event("e2", At(1), {Match("R", "admin", 2)})});
  EXPECT_EQ(out.status().code(), absl::StatusCode::kDataLoss) << out.status();
  EXPECT_EQ(CountKeys(store::Family::kProcessed), 0);
  EXPECT_EQ(CountKeys(store::Family::kDedup), 0);
  EXPECT_EQ(CountKeys(store::Family::kAlerts), 0);
  EXPECT_EQ(CountKeys(store::Family::kAlertLog), 0);

  // A closed store: FailedPrecondition, and after reopening nothing is there.
  ASSERT_TRUE(store_
                  ->Delete(store::Family::kMeta,
                           absl::StrCat(store::kSequenceKeyPrefix, kAlertSequenceName))
                  .ok());
  ASSERT_TRUE(store_->Close().ok());
  out = engine_->ApplyBatch({Event("e1", At(0), {Match("R", "admin")})});
  EXPECT_EQ(out.status().code(), absl::StatusCode::kFailedPrecondition) << out.status();
  Reopen();
  EXPECT_EQ(CountKeys(store::Family::kProcessed), 0);
  EXPECT_EQ(CountKeys(store::Family::kDedup), 0);

  // The same batch then applies in full.
  BatchOutcome ok = Apply(
      {Event("e1", At(0), {Match("R", "admin", 2)}), Event("e2", At(1), {Match("R", "admin", 2)})});
  EXPECT_THAT(ok.events, ElementsAre(EventStatus::kProcessed, EventStatus::kProcessed));
  ASSERT_THAT(ok.changes, SizeIs(1));
  EXPECT_EQ(ok.changes[0].sequence(), 1u);
}

TEST_F(AlertEngineTest, AnErrorMidBatchLeavesNothing) {
  // A corrupt window record for rule "Bad": the batch fails at its second event.
  ApplyEach({Event("e0", At(0), {Match("Bad", "x", 5)})});
  std::string bad_key;
  ASSERT_TRUE(store_
                  ->Scan(store::Family::kDedup, "Bad",
                         [&](absl::string_view key, absl::string_view) {
                           bad_key = std::string(key);
                           return false;
                         })
                  .ok());
  ASSERT_FALSE(bad_key.empty());
  ASSERT_TRUE(store_->Put(store::Family::kDedup, bad_key, "\xff\xff garbage").ok());
  const int64_t processed_before = CountKeys(store::Family::kProcessed);

  absl::StatusOr<BatchOutcome> out = engine_->ApplyBatch(
      {Event("e1", At(1), {Match("Good", "x")}), Event("e2", At(2), {Match("Bad", "x", 5)})});
  EXPECT_EQ(out.status().code(), absl::StatusCode::kDataLoss) << out.status();
  EXPECT_EQ(CountKeys(store::Family::kProcessed), processed_before);
  EXPECT_EQ(CountKeys(store::Family::kAlerts), 0);
  EXPECT_EQ(CountKeys(store::Family::kAlertLog), 0);
  EXPECT_EQ(*engine_->LatestSequence(), 0u);

  // Invalid ids are rejected before anything happens.
  EXPECT_EQ(engine_->ApplyBatch({Event("e3", At(3), {Match("", "x")})}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EventResult no_log_type = Event("e3", At(3), {});
  no_log_type.log_type = "";
  EXPECT_EQ(engine_->ApplyBatch({no_log_type}).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(AlertEngineTest, AlertIdsAreDeterministic) {
  const std::vector<EventResult> events = {
      Event("e1", At(0), {Match("R", "admin")}, {Error("R", "KeyError", "x")}),
      Event("e2", At(70), {Match("R", "admin"), Match("R", "root")})};
  std::vector<std::string> first;
  for (const auto& c : Apply(events).changes) first.push_back(c.alert().id());
  ASSERT_THAT(first, SizeIs(4));
  for (const auto& id : first) {
    EXPECT_EQ(id.size(), 32u);
    EXPECT_EQ(id.find_first_not_of("0123456789abcdef"), std::string::npos);
  }

  pantherd::testing::TempDir other_dir;
  absl::StatusOr<std::unique_ptr<store::Store>> other = store::Store::Open(other_dir.path(), {});
  ASSERT_TRUE(other.ok());
  AlertEngineOptions options;
  options.now = [] { return At(500); };  // a different server clock
  AlertEngine engine(other->get(), options);
  absl::StatusOr<BatchOutcome> out = engine.ApplyBatch(events);
  ASSERT_TRUE(out.ok());
  std::vector<std::string> second;
  for (const auto& c : out->changes) second.push_back(c.alert().id());
  EXPECT_EQ(first, second);
}

TEST_F(AlertEngineTest, ConcurrentBatchesLoseNothing) {
  constexpr int kThreads = 4;
  constexpr int kBatches = 10;
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int b = 0; b < kBatches; ++b) {
        absl::StatusOr<BatchOutcome> out =
            engine_->ApplyBatch({Event(absl::StrCat("t", t, "b", b), At(b), {Match("R", "admin")}),
                                 Event("shared", At(b), {Match("R", "admin")})});
        if (!out.ok()) failures++;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  std::vector<v1::Alert> alerts = List();
  ASSERT_THAT(alerts, SizeIs(1));
  // Every distinct event once, the shared one once in total.
  EXPECT_EQ(alerts[0].event_count(), kThreads * kBatches + 1);
  std::vector<v1::AlertChange> log = Log();
  for (size_t i = 0; i < log.size(); ++i) EXPECT_EQ(log[i].sequence(), i + 1);
  EXPECT_EQ(log.back().alert().event_count(), kThreads * kBatches + 1);
}

// A reader of an empty log racing the first commit must not answer a
// sequence past the change just committed (a stream starting there would
// skip it for good).
TEST_F(AlertEngineTest, OldestRetainedSequenceNeverPassesAChangeCommittedMeanwhile) {
  options_.alert_log_retention = absl::Hours(1);
  MakeEngine();
  int wrong = 0;
  for (int i = 0; i < 300 && wrong == 0; ++i) {
    SetNow(At(0) + absl::Hours(2 * i));
    ASSERT_TRUE(engine_->PurgeExpired().ok());
    const uint64_t expected = *engine_->LatestSequence() + 1;
    ASSERT_EQ(*engine_->OldestRetainedSequence(), expected);  // empty log
    std::atomic<bool> done{false};
    std::thread writer([&] {
      Apply({Event(absl::StrCat("e", i), At(0) + absl::Hours(2 * i), {Match("R", "u")})});
      done = true;
    });
    bool last = false;
    while (!last) {
      last = done.load();
      absl::StatusOr<uint64_t> oldest = engine_->OldestRetainedSequence();
      ASSERT_TRUE(oldest.ok()) << oldest.status();
      if (*oldest != expected) {
        ADD_FAILURE() << "iteration " << i << ": oldest " << *oldest << ", expected " << expected;
        ++wrong;
        break;
      }
    }
    writer.join();
  }
}

TEST_F(AlertEngineTest, PurgeExpiredDeletesOldIdsWindowsAndLogEntries) {
  options_.alert_log_retention = absl::Hours(24);
  options_.window_retention = absl::Hours(48);
  options_.processed_retention = absl::Hours(72);
  MakeEngine();
  SetNow(At(0));
  Apply({Event("e1", At(0), {Match("R", "admin")})});
  SetNow(At(0) + absl::Hours(30));
  Apply({Event("e2", At(0) + absl::Hours(30), {Match("R", "root", 2)})});
  EXPECT_EQ(CountKeys(store::Family::kDedup), 2);

  SetNow(At(0) + absl::Hours(50));
  absl::StatusOr<PurgeStats> stats = engine_->PurgeExpired();
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->processed_ids, 0);
  EXPECT_EQ(stats->windows, 1);                       // admin's, untouched for 50 h
  EXPECT_EQ(stats->log_entries, 1);                   // the CREATED at 0 h
  EXPECT_EQ(*engine_->OldestRetainedSequence(), 2u);  // nothing left: latest + 1
  EXPECT_THAT(*engine_->ReadChangesAfter(0, 10), IsEmpty());
  EXPECT_THAT(List(), SizeIs(1));  // alerts themselves are kept

  SetNow(At(0) + absl::Hours(73));
  stats = engine_->PurgeExpired();
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->processed_ids, 1);
  EXPECT_EQ(CountKeys(store::Family::kProcessed), 1);
  // e1 is new again; its window was purged, so a new window opens at its
  // time and continues the alert of the same window start.
  BatchOutcome out = Apply({Event("e1", At(0), {Match("R", "admin")})});
  EXPECT_THAT(out.events, ElementsAre(EventStatus::kProcessed));
  ASSERT_THAT(out.changes, SizeIs(1));
  EXPECT_EQ(out.changes[0].kind(), v1::AlertChange::KIND_UPDATED);
  EXPECT_THAT(List(), SizeIs(1));
}

// The outbox (engine/delivery_outbox.h): the decision to notify is written
// with the change that causes it, keyed by that change's sequence.
TEST(DeliveryOutboxTest, IntentsAreWrittenWithTheChangesThatCauseThem) {
  pantherd::testing::TempDir dir;
  std::unique_ptr<store::Store> store = *store::Store::Open(dir.Sub("data"), {});
  AlertEngineOptions options;
  options.now = [] { return At(1); };
  AlertEngine engine(store.get(), options);
  auto intents = [&] {
    std::vector<std::pair<uint64_t, internal::DeliveryIntent>> out;
    EXPECT_TRUE(store
                    ->Scan(store::Family::kDeliveries, kOutboxPrefix,
                           [&](absl::string_view key, absl::string_view value) {
                             internal::DeliveryIntent intent;
                             EXPECT_TRUE(intent.ParseFromArray(value.data(), value.size()));
                             key.remove_prefix(kOutboxPrefix.size());
                             out.emplace_back(*store::DecodeUint64(key), intent);
                             return true;
                           })
                    .ok());
    return out;
  };
  RuleMatch signal = Match("S", "x");
  signal.create_alert = false;
  absl::StatusOr<BatchOutcome> out = engine.ApplyBatch(
      {Event("e1", At(0), {Match("R", "admin"), signal}, {Error("E", "KeyError", "k")})});
  ASSERT_TRUE(out.ok()) << out.status();
  ASSERT_THAT(out->changes, SizeIs(3));
  auto after_create = intents();
  // The rule alert and the rule error notify; the signal does not.
  ASSERT_THAT(after_create, SizeIs(2));
  std::set<std::string> ids;
  for (const auto& [seq, intent] : after_create) {
    EXPECT_EQ(intent.action(), internal::DeliveryIntent::ACTION_TRIGGER);
    ids.insert(intent.alert_id());
    bool found = false;
    for (const v1::AlertChange& c : out->changes) {
      if (c.sequence() == seq) {
        found = true;
        EXPECT_EQ(c.alert().id(), intent.alert_id());
        EXPECT_NE(c.alert().type(), v1::ALERT_TYPE_SIGNAL);
      }
    }
    EXPECT_TRUE(found) << seq;
  }
  // More matches in the window: an update, no new intent.
  ASSERT_TRUE(engine.ApplyBatch({Event("e2", At(2), {Match("R", "admin")})}).ok());
  EXPECT_THAT(intents(), SizeIs(2));
  const std::string rule_alert = out->changes[0].alert().type() == v1::ALERT_TYPE_RULE
                                     ? out->changes[0].alert().id()
                                     : out->changes[1].alert().id();
  v1::UpdateAlertRequest triage;
  triage.set_id(rule_alert);
  triage.set_status(v1::ALERT_STATUS_TRIAGED);
  ASSERT_TRUE(engine.UpdateAlert(triage, "ann", At(3)).ok());
  EXPECT_THAT(intents(), SizeIs(2));  // not an ended status
  triage.set_status(v1::ALERT_STATUS_RESOLVED);
  absl::StatusOr<v1::AlertChange> resolved = engine.UpdateAlert(triage, "ann", At(4));
  ASSERT_TRUE(resolved.ok());
  auto after_resolve = intents();
  ASSERT_THAT(after_resolve, SizeIs(3));
  EXPECT_EQ(after_resolve.back().first, resolved->sequence());
  EXPECT_EQ(after_resolve.back().second.action(), internal::DeliveryIntent::ACTION_RESOLVE);
  EXPECT_EQ(after_resolve.back().second.alert_id(), rule_alert);
  // Ended to ended (resolved -> invalid) resolves nothing new.
  triage.set_status(v1::ALERT_STATUS_INVALID);
  ASSERT_TRUE(engine.UpdateAlert(triage, "ann", At(5)).ok());
  EXPECT_THAT(intents(), SizeIs(3));
}

// The event store (engine/event_store.h): every processed event is stored in
// the batch's write; the events counted into a window become the alert's.
TEST(EventStoreTest, EventsAreStoredWithTheBatchAndIndexedUnderTheirAlert) {
  pantherd::testing::TempDir dir;
  std::unique_ptr<store::Store> store = *store::Store::Open(dir.Sub("data"), {});
  AlertEngineOptions options;
  absl::Time now = At(10);
  options.now = [&now] { return now; };
  options.event_retention = absl::Hours(24);
  AlertEngine engine(store.get(), options);
  // Threshold 3: two events below it (in two batches), the third creates the
  // alert, a fourth updates it; one event matches nothing; one is a
  // duplicate; one is older than the retention (not stored).
  ASSERT_TRUE(
      engine.ApplyBatch({Event("e1", At(0), {Match("R", "admin", 3)}), Event("quiet", At(0), {})})
          .ok());
  ASSERT_TRUE(engine
                  .ApplyBatch({Event("e2", At(1), {Match("R", "admin", 3)}),
                               Event("e1", At(0), {Match("R", "admin", 3)})})
                  .ok());
  absl::StatusOr<BatchOutcome> out = engine.ApplyBatch(
      {Event("e3", At(2), {Match("R", "admin", 3)}), Event("e4", At(3), {Match("R", "admin", 3)}),
       Event("old", At(0) - absl::Hours(48), {})});
  ASSERT_TRUE(out.ok()) << out.status();
  ASSERT_THAT(out->changes, SizeIs(1));
  const std::string alert_id = out->changes[0].alert().id();
  EXPECT_EQ(out->changes[0].alert().event_count(), 4);

  std::vector<std::string> stored;
  ASSERT_TRUE(ScanEvents(*store, "Okta.SystemLog", absl::InfinitePast(), absl::InfiniteFuture(),
                         [&](const StoredEvent& e) {
                           stored.emplace_back(e.id);
                           EXPECT_THAT(std::string(e.json),
                                       ::testing::HasSubstr(std::string(e.id)));
                           return true;
                         })
                  .ok());
  EXPECT_THAT(stored, ElementsAre("e1", "quiet", "e2", "e3", "e4"));
  // A time range reads only that range.
  int64_t scanned = 0;
  stored.clear();
  ASSERT_TRUE(ScanEvents(
                  *store, "Okta.SystemLog", At(1), At(3),
                  [&](const StoredEvent& e) {
                    stored.emplace_back(e.id);
                    return true;
                  },
                  &scanned)
                  .ok());
  EXPECT_THAT(stored, ElementsAre("e2", "e3"));
  EXPECT_EQ(scanned, 2);

  std::vector<std::string> indexed;
  const std::string prefix = AlertEventPrefix(alert_id);
  ASSERT_TRUE(store
                  ->Scan(store::Family::kWindowEvents, "",
                         [&](absl::string_view key, absl::string_view) {
                           EXPECT_TRUE(absl::StartsWith(key, prefix)) << "a window entry is left";
                           indexed.emplace_back(key.substr(prefix.size()));
                           return true;
                         })
                  .ok());
  ASSERT_THAT(indexed, SizeIs(4));
  StoredEventReader reader(*store);
  for (const std::string& k : indexed) {
    absl::StatusOr<std::optional<std::string>> found = reader.Find(k);
    ASSERT_TRUE(found.ok()) << found.status();
    EXPECT_TRUE(found->has_value()) << k;
  }

  // Retention: a day later the first events are purged, the store shrinks.
  now = At(0) + absl::Hours(24) + absl::Seconds(30);
  absl::StatusOr<PurgeStats> purged = engine.PurgeExpired();
  ASSERT_TRUE(purged.ok()) << purged.status();
  EXPECT_EQ(purged->events, 2);  // e1 and quiet (at 10:00); e2 is at 10:01
  EXPECT_EQ(*CountStoredEvents(*store), 3);
}

// Retention reclaims space: purged events leave no tombstones or stale files
// behind; the event store's files shrink to what is still retained.
TEST(EventStoreTest, PurgeCompactsSoTheEventStoreShrinks) {
  pantherd::testing::TempDir dir;
  std::unique_ptr<store::Store> store = *store::Store::Open(dir.Sub("data"), {});
  AlertEngineOptions options;
  absl::Time now = At(0) + absl::Hours(3);
  options.now = [&now] { return now; };
  options.event_retention = absl::Hours(24);
  AlertEngine engine(store.get(), options);
  // 3000 events of about 2 KB, one a second from 10:00, with varied content
  // (random text compresses about as little as real events), and 10 events
  // two hours later that stay.
  std::mt19937_64 random(2024);
  constexpr absl::string_view kAlphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  auto event = [&](int n, absl::Time t) {
    std::string blob(1900, ' ');
    for (char& c : blob) c = kAlphabet[random() % kAlphabet.size()];
    EventResult e = Event(absl::StrCat("ev-", n), t, {});
    e.event_json = absl::StrCat(R"({"uuid":"ev-)", n, R"(","actor":{"alternateId":"user)",
                                random() % 500, R"(@example.com"},"client":{"ipAddress":"10.)",
                                random() % 256, ".", random() % 256, R"("},"debugContext":)",
                                R"({"debugData":{"blob":")", blob, R"("}}})");
    return e;
  };
  for (int batch = 0; batch < 6; ++batch) {
    std::vector<EventResult> events;
    for (int i = 0; i < 500; ++i) {
      const int n = batch * 500 + i;
      events.push_back(event(n, At(0) + absl::Seconds(n)));
    }
    ASSERT_TRUE(engine.ApplyBatch(events).ok());
  }
  std::vector<EventResult> later;
  for (int n = 3000; n < 3010; ++n) later.push_back(event(n, At(120) + absl::Seconds(n)));
  ASSERT_TRUE(engine.ApplyBatch(later).ok());
  ASSERT_EQ(*CountStoredEvents(*store), 3010);
  ASSERT_TRUE(store->Flush().ok());
  const uint64_t before = *store->FamilyDiskBytes(store::Family::kEvents);
  EXPECT_GT(before, uint64_t{3} << 20);

  // A day and an hour later, the first 3000 are past the retention.
  now = At(0) + absl::Hours(25);
  absl::StatusOr<PurgeStats> purged = engine.PurgeExpired();
  ASSERT_TRUE(purged.ok()) << purged.status();
  EXPECT_EQ(purged->events, 3000);
  EXPECT_EQ(*CountStoredEvents(*store), 10);
  const uint64_t after = *store->FamilyDiskBytes(store::Family::kEvents);
  EXPECT_EQ(purged->event_store_bytes, after);
  EXPECT_LT(after, before / 5) << "before " << before << ", after " << after;
  std::cout << "event store: " << before << " bytes before the purge, " << after << " after\n";
  // What is retained still reads back.
  int retained = 0;
  ASSERT_TRUE(ScanEvents(*store, "Okta.SystemLog", absl::InfinitePast(), absl::InfiniteFuture(),
                         [&](const StoredEvent& e) {
                           EXPECT_THAT(std::string(e.json), ::testing::HasSubstr("debugData"));
                           ++retained;
                           return true;
                         })
                  .ok());
  EXPECT_EQ(retained, 10);
  // Nothing more to purge: nothing is compacted, the size stays.
  purged = engine.PurgeExpired();
  ASSERT_TRUE(purged.ok()) << purged.status();
  EXPECT_EQ(purged->events, 0);
  EXPECT_EQ(purged->event_store_bytes, after);
}

// Processed-id records hold the event's time, so a stored event is found by
// its id with two point reads; records without it (written before) still
// work everywhere and send FindStoredEvent's caller to a scan.
TEST(EventStoreTest, FindStoredEventReadsTheProcessedRecordThenOneKey) {
  pantherd::testing::TempDir dir;
  std::unique_ptr<store::Store> store = *store::Store::Open(dir.Sub("data"), {});
  AlertEngineOptions options;
  absl::Time now = At(10);
  options.now = [&now] { return now; };
  options.event_retention = absl::Hours(24);
  AlertEngine engine(store.get(), options);
  ASSERT_TRUE(engine
                  .ApplyBatch({Event("e1", At(0), {Match("R", "admin")}), Event("e2", At(1), {}),
                               Event("untimed", absl::InfinitePast(), {}),
                               Event("old", At(0) - absl::Hours(48), {}), Event("", At(2), {})})
                  .ok());
  const std::string log_type = "Okta.SystemLog";

  // The new record: expiry, then the event time of the event's key.
  absl::StatusOr<std::string> value =
      store->Get(store::Family::kProcessed, store::Join(log_type, "e1"));
  ASSERT_TRUE(value.ok()) << value.status();
  EXPECT_EQ(value->size(), 16u);
  absl::StatusOr<ProcessedRecord> record = DecodeProcessedRecord(*value);
  ASSERT_TRUE(record.ok()) << record.status();
  EXPECT_EQ(record->expiry_seconds, absl::ToUnixSeconds(At(10) + absl::Hours(7 * 24)));
  EXPECT_EQ(record->event_time, At(0));

  absl::StatusOr<EventLookup> found = FindStoredEvent(*store, log_type, "e1");
  ASSERT_TRUE(found.ok()) << found.status();
  EXPECT_EQ(found->result, EventLookup::Result::kFound);
  EXPECT_EQ(found->event_time, At(0));
  EXPECT_EQ(found->json, R"({"uuid":"e1"})");
  // An event without p_event_time is keyed (and recorded) at processing time.
  found = FindStoredEvent(*store, log_type, "untimed");
  ASSERT_TRUE(found.ok()) << found.status();
  EXPECT_EQ(found->result, EventLookup::Result::kFound);
  EXPECT_EQ(found->event_time, At(10));
  // Processed but older than the retention: recorded, never stored.
  found = FindStoredEvent(*store, log_type, "old");
  ASSERT_TRUE(found.ok()) << found.status();
  EXPECT_EQ(found->result, EventLookup::Result::kNotStored);
  EXPECT_EQ(found->event_time, At(0) - absl::Hours(48));
  // Unknown ids, another log type, the empty id.
  for (const auto& [type, id] : std::vector<std::pair<std::string, std::string>>{
           {log_type, "missing"}, {"AWS.CloudTrail", "e1"}, {log_type, ""}}) {
    found = FindStoredEvent(*store, type, id);
    ASSERT_TRUE(found.ok()) << found.status();
    EXPECT_EQ(found->result, EventLookup::Result::kNoRecord) << type << " " << id;
  }

  // A record from before event times (8 bytes): the lookup says so (the
  // caller scans), and the duplicate check, IsProcessed and the purge read it.
  const int64_t expiry = absl::ToUnixSeconds(At(10) + absl::Hours(1));
  ASSERT_TRUE(store
                  ->Put(store::Family::kProcessed, store::Join(log_type, "e2"),
                        store::EncodeUint64(static_cast<uint64_t>(expiry)))
                  .ok());
  record =
      DecodeProcessedRecord(*store->Get(store::Family::kProcessed, store::Join(log_type, "e2")));
  ASSERT_TRUE(record.ok()) << record.status();
  EXPECT_EQ(record->expiry_seconds, expiry);
  EXPECT_FALSE(record->event_time.has_value());
  found = FindStoredEvent(*store, log_type, "e2");
  ASSERT_TRUE(found.ok()) << found.status();
  EXPECT_EQ(found->result, EventLookup::Result::kNoEventTime);
  EXPECT_EQ(*engine.IsProcessed(log_type, "e2"), true);
  absl::StatusOr<BatchOutcome> again = engine.ApplyBatch({Event("e2", At(1), {})});
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_THAT(again->events, ElementsAre(EventStatus::kDuplicate));
  bool scanned = false;  // the caller's fallback finds it
  ASSERT_TRUE(ScanEvents(*store, log_type, absl::InfinitePast(), absl::InfiniteFuture(),
                         [&](const StoredEvent& e) {
                           scanned = scanned || e.id == "e2";
                           return true;
                         })
                  .ok());
  EXPECT_TRUE(scanned);
  // Past its expiry, the old record is purged like a new one; e1's is not yet.
  now = At(10) + absl::Hours(2);
  absl::StatusOr<PurgeStats> purged = engine.PurgeExpired();
  ASSERT_TRUE(purged.ok()) << purged.status();
  EXPECT_EQ(purged->processed_ids, 1);
  EXPECT_EQ(*engine.IsProcessed(log_type, "e2"), false);
  EXPECT_EQ(*engine.IsProcessed(log_type, "e1"), true);
  found = FindStoredEvent(*store, log_type, "e2");
  ASSERT_TRUE(found.ok()) << found.status();
  EXPECT_EQ(found->result, EventLookup::Result::kNoRecord);

  // A record of any other size is refused.
  ASSERT_TRUE(store->Put(store::Family::kProcessed, store::Join(log_type, "bad"), "xyz").ok());
  EXPECT_EQ(FindStoredEvent(*store, log_type, "bad").status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(engine.IsProcessed(log_type, "bad").status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(DecodeProcessedRecord(std::string(24, '\0')).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(EventStoreTest, NoRetentionStoresNothingAndPurgesWhatWasStored) {
  pantherd::testing::TempDir dir;
  std::unique_ptr<store::Store> store = *store::Store::Open(dir.Sub("data"), {});
  AlertEngineOptions options;
  options.now = [] { return At(10); };
  options.event_retention = absl::Hours(24);
  {
    AlertEngine engine(store.get(), options);
    ASSERT_TRUE(engine.ApplyBatch({Event("e1", At(0), {}), Event("", At(1), {})}).ok());
    EXPECT_EQ(*CountStoredEvents(*store), 2);
  }
  options.event_retention = absl::ZeroDuration();
  AlertEngine engine(store.get(), options);
  ASSERT_TRUE(engine.ApplyBatch({Event("e2", At(2), {})}).ok());
  EXPECT_EQ(*CountStoredEvents(*store), 2);
  absl::StatusOr<PurgeStats> purged = engine.PurgeExpired();
  ASSERT_TRUE(purged.ok());
  EXPECT_EQ(purged->events, 2);
  EXPECT_EQ(*CountStoredEvents(*store), 0);
}

// Stored events are compressed in blocks (engine/event_store.h); values
// stored by earlier versions (the raw JSON, a compressed event of its own)
// read the same; a value that does not decode stops a scan with DataLoss.
TEST(EventStoreTest, ValuesAreCompressedAndEarlierFormatsStillRead) {
  pantherd::testing::TempDir dir;
  std::unique_ptr<store::Store> store = *store::Store::Open(dir.Sub("data"), {});
  AlertEngineOptions options;
  options.now = [] { return At(10); };
  options.event_retention = absl::Hours(24);
  AlertEngine engine(store.get(), options);
  EventResult big = Event("big", At(1), {});
  big.event_json = absl::StrCat(R"({"uuid":"big","padding":")", std::string(4000, 'x'), R"("})");
  ASSERT_TRUE(engine.ApplyBatch({big}).ok());
  const std::string key = EventKey("Okta.SystemLog", At(1), "big", big.event_json);
  absl::StatusOr<std::string> value = store->Get(store::Family::kEvents, key);
  ASSERT_TRUE(value.ok()) << value.status();
  EXPECT_EQ(value->front(), kEventValueBlock);
  EXPECT_LT(value->size(), 200u);
  // An event stored as raw JSON, and one compressed on its own, by earlier
  // versions.
  const std::string old_json = R"({"uuid":"old"})";
  ASSERT_TRUE(store
                  ->Put(store::Family::kEvents, EventKey("Okta.SystemLog", At(0), "old", old_json),
                        old_json)
                  .ok());
  EventEncoder encoder(store.get());
  const std::string single_json = R"({"uuid":"single","n":1})";
  std::string single;
  ASSERT_TRUE(encoder.Encode("Okta.SystemLog", single_json, &single).ok());
  ASSERT_TRUE(store
                  ->Put(store::Family::kEvents,
                        EventKey("Okta.SystemLog", At(2), "single", single_json), single)
                  .ok());
  std::vector<std::pair<std::string, std::string>> read;
  ASSERT_TRUE(ScanEvents(*store, "Okta.SystemLog", absl::InfinitePast(), absl::InfiniteFuture(),
                         [&](const StoredEvent& e) {
                           read.emplace_back(e.id, e.json);
                           return true;
                         })
                  .ok());
  using P = std::pair<std::string, std::string>;
  EXPECT_THAT(read,
              ElementsAre(P("old", old_json), P("big", big.event_json), P("single", single_json)));
  StoredEventReader reader(*store);
  for (const P& p : read) {
    const int minute = p.first == "old" ? 0 : p.first == "big" ? 1 : 2;
    absl::StatusOr<std::optional<std::string>> found =
        reader.Find(EventKey("Okta.SystemLog", At(minute), p.first, ""));
    ASSERT_TRUE(found.ok()) << found.status();
    EXPECT_EQ(found->value_or("none"), p.second);
  }
  absl::StatusOr<std::optional<std::string>> missing =
      reader.Find(EventKey("Okta.SystemLog", At(1), "nope", ""));
  ASSERT_TRUE(missing.ok());
  EXPECT_FALSE(missing->has_value());

  ASSERT_TRUE(store
                  ->Put(store::Family::kEvents, EventKey("Okta.SystemLog", At(3), "bad", ""),
                        std::string(1, kEventValueZstd) + "garbage")
                  .ok());
  absl::Status scanned =
      ScanEvents(*store, "Okta.SystemLog", absl::InfinitePast(), absl::InfiniteFuture(),
                 [](const StoredEvent&) { return true; });
  EXPECT_TRUE(absl::IsDataLoss(scanned)) << scanned;
  EXPECT_THAT(std::string(scanned.message()), ::testing::HasSubstr("zstd"));
  // A block whose header or payload is cut short is DataLoss too.
  ASSERT_TRUE(
      store->Delete(store::Family::kEvents, EventKey("Okta.SystemLog", At(3), "bad", "")).ok());
  ASSERT_TRUE(store
                  ->Put(store::Family::kEvents, EventKey("Okta.SystemLog", At(4), "cut", ""),
                        std::string(1, kEventValueBlock) + "\x85")
                  .ok());
  scanned = ScanEvents(*store, "Okta.SystemLog", absl::InfinitePast(), absl::InfiniteFuture(),
                       [](const StoredEvent&) { return true; });
  EXPECT_TRUE(absl::IsDataLoss(scanned)) << scanned;
}

// EncodeStoredEvents compresses ahead of ApplyBatch (the ingest pipeline
// does the same while preparing a batch); ApplyBatch stores what it made.
TEST(EventStoreTest, EventsEncodedAheadAreStoredAsEncoded) {
  pantherd::testing::TempDir dir;
  std::unique_ptr<store::Store> store = *store::Store::Open(dir.Sub("data"), {});
  AlertEngineOptions options;
  options.now = [] { return At(10); };
  options.event_retention = absl::Hours(24);
  AlertEngine engine(store.get(), options);
  std::vector<EventResult> events = {Event("e1", At(1), {}),
                                     Event("e2", At(1) + absl::Seconds(1), {}),
                                     Event("e3", At(1) + absl::Seconds(2), {})};
  events[1].id_check = IdCheck::kDuplicate;
  absl::StatusOr<PreparedEventBlocks> prepared = engine.EncodeStoredEvents(events);
  ASSERT_TRUE(prepared.ok()) << prepared.status();
  EXPECT_THAT(prepared->planned, ElementsAre(0, 2));  // e2 is never stored
  ASSERT_THAT(prepared->blocks, SizeIs(1));
  EXPECT_THAT(prepared->blocks[0].members, ElementsAre(0, 2));
  EXPECT_EQ(prepared->blocks[0].key, EventKey("Okta.SystemLog", At(1), "e1", ""));
  ASSERT_TRUE(engine.ApplyBatch(events, nullptr, &*prepared).ok());
  absl::StatusOr<std::string> value = store->Get(store::Family::kEvents, prepared->blocks[0].key);
  ASSERT_TRUE(value.ok()) << value.status();
  EXPECT_EQ(*value, prepared->blocks[0].value);
  EXPECT_EQ(*store->Count(store::Family::kEvents, ""), 1);  // one block
  EXPECT_EQ(*CountStoredEvents(*store), 2);

  // Without a retention nothing is encoded.
  options.event_retention = absl::ZeroDuration();
  AlertEngine no_store(store.get(), options);
  absl::StatusOr<PreparedEventBlocks> none = no_store.EncodeStoredEvents({Event("e4", At(3), {})});
  ASSERT_TRUE(none.ok());
  EXPECT_THAT(none->planned, IsEmpty());
  EXPECT_THAT(none->blocks, IsEmpty());
}

// Events older than the retention are not compressed ahead (a backfill of
// old events pays nothing for them) and not stored; an event left
// unencoded that is within the retention at commit (the clock went back)
// is still stored, encoded then; so is an event without a time of its own.
TEST(EventStoreTest, EventsOutsideTheRetentionAreNotEncodedAhead) {
  pantherd::testing::TempDir dir;
  std::unique_ptr<store::Store> store = *store::Store::Open(dir.Sub("data"), {});
  std::atomic<int> now_minutes{120};
  AlertEngineOptions options;
  options.now = [&now_minutes] { return At(now_minutes.load()); };
  options.event_retention = absl::Minutes(60);
  AlertEngine engine(store.get(), options);
  EXPECT_FALSE(engine.WouldStoreEvent(At(59)));
  EXPECT_TRUE(engine.WouldStoreEvent(At(60)));
  EXPECT_TRUE(engine.WouldStoreEvent(absl::InfinitePast()));  // no time: now

  std::vector<EventResult> events = {Event("old", At(30), {}), Event("new", At(90), {})};
  absl::StatusOr<PreparedEventBlocks> prepared = engine.EncodeStoredEvents(events);
  ASSERT_TRUE(prepared.ok());
  EXPECT_THAT(prepared->planned, ElementsAre(1));
  ASSERT_TRUE(engine.ApplyBatch(events, nullptr, &*prepared).ok());
  StoredEventReader reader(*store);
  EXPECT_FALSE(reader.Find(EventKey("Okta.SystemLog", At(30), "old", ""))->has_value());
  EXPECT_TRUE(reader.Find(EventKey("Okta.SystemLog", At(90), "new", ""))->has_value());

  // Left unencoded at minute 120, committed at minute 80: stored all the same.
  std::vector<EventResult> late = {Event("late", At(40), {})};
  prepared = engine.EncodeStoredEvents(late);
  ASSERT_TRUE(prepared.ok());
  EXPECT_THAT(prepared->planned, IsEmpty());
  now_minutes = 80;
  ASSERT_TRUE(engine.ApplyBatch(late, nullptr, &*prepared).ok());
  absl::StatusOr<std::optional<std::string>> found =
      StoredEventReader(*store).Find(EventKey("Okta.SystemLog", At(40), "late", ""));
  ASSERT_TRUE(found.ok()) << found.status();
  EXPECT_EQ(found->value_or("none"), late[0].event_json);

  // No time of its own: never encoded ahead, stored at the commit's clock.
  std::vector<EventResult> timeless = {Event("timeless", absl::InfinitePast(), {})};
  prepared = engine.EncodeStoredEvents(timeless);
  ASSERT_TRUE(prepared.ok());
  EXPECT_THAT(prepared->planned, IsEmpty());
  ASSERT_TRUE(engine.ApplyBatch(timeless, nullptr, &*prepared).ok());
  found = StoredEventReader(*store).Find(EventKey("Okta.SystemLog", At(80), "timeless", ""));
  ASSERT_TRUE(found.ok()) << found.status();
  EXPECT_TRUE(found->has_value());
}

// Blocks: a batch's events of one log type, sorted, at most kMaxBlockEvents
// spanning less than kMaxBlockSpan; the same key twice is stored once.
TEST(EventStoreTest, PlanCutsBlocksByCountSpanSizeAndLogType) {
  std::vector<std::string> ids;
  std::vector<EventToStore> events;
  const std::string small = "{}";
  const std::string large(kMaxBlockBytes / 2 + 1, 'x');
  ids.reserve(300);
  auto add = [&](absl::string_view log_type, int64_t seconds, absl::string_view json) {
    ids.push_back(absl::StrCat("id-", ids.size()));
    events.push_back(EventToStore{log_type, seconds * 1'000'000, ids.back(), json});
  };
  // 150 events a second apart, given in reverse order: blocks of 60 s.
  for (int i = 149; i >= 0; --i) add("Okta.SystemLog", i, small);
  // 130 events at the same second: blocks of 64.
  for (int i = 0; i < 130; ++i) add("Other.Log", 0, small);
  // Three large events: two per block would exceed the bytes.
  for (int i = 0; i < 3; ++i) add("Big.Log", i, large);
  // The first event again (an event without an id, sent twice).
  events.push_back(events[0]);
  std::vector<std::vector<size_t>> plan = PlanEventBlocks(events);
  std::vector<size_t> sizes;
  size_t total = 0;
  for (const std::vector<size_t>& b : plan) {
    sizes.push_back(b.size());
    total += b.size();
    for (size_t k = 1; k < b.size(); ++k) {
      EXPECT_EQ(events[b[k]].log_type, events[b[0]].log_type);
      EXPECT_LT(std::make_pair(events[b[k - 1]].time_us, events[b[k - 1]].id),
                std::make_pair(events[b[k]].time_us, events[b[k]].id));
    }
  }
  EXPECT_THAT(sizes, ElementsAre(1, 1, 1,      // Big.Log
                                 60, 60, 30,   // Okta.SystemLog
                                 64, 64, 2));  // Other.Log
  EXPECT_EQ(total, events.size() - 1);
}

// Batches whose events interleave in time make blocks that overlap: a scan
// merges them into event-time order, and a range that starts inside a block
// (which started before it) still finds its events.
TEST(EventStoreTest, ScansMergeOverlappingBlocksInTimeOrder) {
  pantherd::testing::TempDir dir;
  std::unique_ptr<store::Store> store = *store::Store::Open(dir.Sub("data"), {});
  AlertEngineOptions options;
  options.now = [] { return At(600); };
  options.event_retention = absl::Hours(24);
  AlertEngine engine(store.get(), options);
  // Three batches, event i at second i, batch i % 3; 600 events.
  for (int b = 0; b < 3; ++b) {
    std::vector<EventResult> batch;
    for (int i = b; i < 600; i += 3) {
      batch.push_back(Event(absl::StrCat("e", 1000 + i), At(0) + absl::Seconds(i), {}));
    }
    ASSERT_TRUE(engine.ApplyBatch(batch).ok());
  }
  EXPECT_EQ(*CountStoredEvents(*store), 600);
  EXPECT_LT(*store->Count(store::Family::kEvents, ""), 40);  // blocks, not events
  auto scan = [&](absl::Time since, absl::Time until) {
    std::vector<int> seconds;
    int64_t scanned = 0;
    absl::Status s = ScanEvents(
        *store, "Okta.SystemLog", since, until,
        [&](const StoredEvent& e) {
          seconds.push_back(static_cast<int>(absl::ToInt64Seconds(e.event_time - At(0))));
          EXPECT_EQ(e.key, EventKey("Okta.SystemLog", e.event_time, e.id, ""));
          EXPECT_EQ(std::string(e.json), absl::StrCat(R"({"uuid":")", e.id, R"("})"));
          return true;
        },
        &scanned);
    EXPECT_TRUE(s.ok()) << s;
    EXPECT_EQ(scanned, static_cast<int64_t>(seconds.size()));
    return seconds;
  };
  std::vector<int> all = scan(absl::InfinitePast(), absl::InfiniteFuture());
  ASSERT_THAT(all, SizeIs(600));
  for (int i = 0; i < 600; ++i) EXPECT_EQ(all[i], i);
  std::vector<int> part = scan(At(0) + absl::Seconds(100), At(0) + absl::Seconds(250));
  ASSERT_THAT(part, SizeIs(150));
  for (int i = 0; i < 150; ++i) EXPECT_EQ(part[i], 100 + i);
  EXPECT_THAT(scan(At(0) + absl::Seconds(599), At(0) + absl::Seconds(700)), ElementsAre(599));
  EXPECT_THAT(scan(At(0) + absl::Seconds(50), At(0) + absl::Seconds(50)), IsEmpty());
  // An early stop stops.
  int seen = 0;
  ASSERT_TRUE(ScanEvents(*store, "Okta.SystemLog", absl::InfinitePast(), absl::InfiniteFuture(),
                         [&](const StoredEvent&) { return ++seen < 5; })
                  .ok());
  EXPECT_EQ(seen, 5);
  // Every event is found by key, each block decoded once for its run.
  StoredEventReader reader(*store);
  for (int i = 0; i < 600; i += 7) {
    absl::StatusOr<std::optional<std::string>> found = reader.Find(
        EventKey("Okta.SystemLog", At(0) + absl::Seconds(i), absl::StrCat("e", 1000 + i), ""));
    ASSERT_TRUE(found.ok()) << found.status();
    EXPECT_TRUE(found->has_value()) << i;
  }
}

// A store and an engine that keeps events for an hour, at clock `now`.
struct EventStoreEnv {
  static AlertEngineOptions Options(absl::Time* now) {
    AlertEngineOptions options;
    options.now = [now] { return *now; };
    options.event_retention = absl::Hours(1);
    return options;
  }
  pantherd::testing::TempDir dir;
  std::unique_ptr<store::Store> store = *store::Store::Open(dir.Sub("data"), {});
  absl::Time now = At(10);
  AlertEngine engine{store.get(), Options(&now)};
};

// The ids of every stored Okta event, in scan order.
std::vector<std::string> StoredIds(const store::Store& store) {
  std::vector<std::string> ids;
  absl::Status s = ScanEvents(store, "Okta.SystemLog", absl::InfinitePast(), absl::InfiniteFuture(),
                              [&](const StoredEvent& e) {
                                ids.emplace_back(e.id);
                                return true;
                              });
  EXPECT_TRUE(s.ok()) << s;
  return ids;
}

// The same event stored twice (an event without an id sent again in
// another batch) starts two blocks with the same first event: the second
// block goes under a key of its own instead of overwriting the first and
// the events it holds.
TEST(EventStoreTest, BlocksThatStartWithTheSameEventKeepTheirOwnKeys) {
  EventStoreEnv env;
  std::unique_ptr<store::Store>& store = env.store;
  absl::Time& now = env.now;
  AlertEngine& engine = env.engine;
  EventResult same = Event("", At(0), {});
  same.event_json = R"({"no":"id"})";
  for (int b = 0; b < 3; ++b) {
    ASSERT_TRUE(
        engine
            .ApplyBatch({same, Event(absl::StrCat("after-", b), At(0) + absl::Seconds(1 + b), {})})
            .ok());
  }
  EXPECT_EQ(*store->Count(store::Family::kEvents, ""), 3);
  std::vector<std::string> ids = StoredIds(*store);
  const std::string hash = StoredEventId("", same.event_json);
  EXPECT_THAT(ids, ElementsAre(hash, hash, hash, "after-0", "after-1", "after-2"));
  // A purge that rewrites the straddling blocks keeps them apart too.
  EventResult early = Event("early", At(0) - absl::Seconds(30), {});
  std::vector<EventResult> batch = {early, same};
  ASSERT_TRUE(engine.ApplyBatch(batch).ok());
  now = At(60);  // the cutoff: At(0); `early` goes, every block it shares is rewritten
  absl::StatusOr<PurgeStats> purged = engine.PurgeExpired();
  ASSERT_TRUE(purged.ok()) << purged.status();
  EXPECT_EQ(purged->events, 1);
  EXPECT_EQ(*CountStoredEvents(*store), 7);
  ids = StoredIds(*store);
  EXPECT_THAT(ids, ElementsAre(hash, hash, hash, hash, "after-0", "after-1", "after-2"));
}

// A purge deletes the blocks wholly before the cutoff and rewrites the one
// that straddles it without its older events: exactly the events before
// the cutoff are gone.
TEST(EventStoreTest, PurgeRewritesABlockThatStraddlesTheCutoff) {
  EventStoreEnv env;
  std::unique_ptr<store::Store>& store = env.store;
  absl::Time& now = env.now;
  AlertEngine& engine = env.engine;
  // 100 events a second apart from minute 0: blocks [0, 60) and [60, 100).
  std::vector<EventResult> batch;
  for (int i = 0; i < 100; ++i) {
    batch.push_back(Event(absl::StrCat("e", 100 + i), At(0) + absl::Seconds(i), {}));
  }
  ASSERT_TRUE(engine.ApplyBatch(batch).ok());
  ASSERT_EQ(*store->Count(store::Family::kEvents, ""), 2);
  // The cutoff at second 30 of the first block.
  now = At(60) + absl::Seconds(30);
  absl::StatusOr<PurgeStats> purged = engine.PurgeExpired();
  ASSERT_TRUE(purged.ok()) << purged.status();
  EXPECT_EQ(purged->events, 30);
  EXPECT_EQ(*CountStoredEvents(*store), 70);
  // The rewritten block: under its first remaining event's key, in the
  // purge's own key space (ingestion never writes such a key).
  std::vector<std::string> keys;
  ASSERT_TRUE(store
                  ->Scan(store::Family::kEvents, "",
                         [&](absl::string_view key, absl::string_view) {
                           keys.emplace_back(key);
                           return true;
                         })
                  .ok());
  EXPECT_THAT(
      keys,
      ElementsAre(absl::StrCat(EventKey("Okta.SystemLog", At(0) + absl::Seconds(30), "e130", ""),
                               std::string(1, kBlockKeyPurge), "1"),
                  EventKey("Okta.SystemLog", At(1), "e160", "")));
  std::vector<std::string> ids = StoredIds(*store);
  ASSERT_THAT(ids, SizeIs(70));
  EXPECT_EQ(ids.front(), "e130");
  EXPECT_EQ(ids.back(), "e199");
  StoredEventReader reader(*store);
  EXPECT_TRUE(
      reader.Find(EventKey("Okta.SystemLog", At(0) + absl::Seconds(30), "e130", ""))->has_value());
  EXPECT_FALSE(
      reader.Find(EventKey("Okta.SystemLog", At(0) + absl::Seconds(29), "e129", ""))->has_value());
  // A second purge at the same cutoff finds nothing more.
  purged = engine.PurgeExpired();
  ASSERT_TRUE(purged.ok());
  EXPECT_EQ(purged->events, 0);
}

}  // namespace
}  // namespace pantherd::engine
