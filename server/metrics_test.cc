// Tests of server/metrics.h: collection from real components and the
// Prometheus text rendering.
#include "server/metrics.h"

#include <map>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace pantherd::server {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// Checks that `text` is well-formed exposition text (format 0.0.4): each
// sample's family was announced by # HELP and # TYPE before it, names and
// label names are valid, every value parses; and returns the samples by
// "name{labels}".
std::map<std::string, std::string> ParseExposition(const std::string& text) {
  static const std::regex kSample(
      R"(^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([a-zA-Z_][a-zA-Z0-9_]*="(\\.|[^"\\])*")(,[a-zA-Z_][a-zA-Z0-9_]*="(\\.|[^"\\])*")*\})? (-?[0-9]+(\.[0-9]+)?)$)");
  static const std::regex kHelp(R"(^# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) .+$)");
  static const std::regex kType(R"(^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge)$)");
  std::map<std::string, std::string> samples;
  std::set<std::string> helped, typed;
  EXPECT_TRUE(text.empty() || text.back() == '\n');
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    const std::string l(line);
    std::smatch m;
    if (std::regex_match(l, m, kHelp)) {
      EXPECT_TRUE(helped.insert(m[1]).second) << "second HELP for " << m[1];
    } else if (std::regex_match(l, m, kType)) {
      EXPECT_TRUE(helped.count(m[1])) << "TYPE before HELP: " << l;
      EXPECT_TRUE(typed.insert(m[1]).second) << "second TYPE for " << m[1];
    } else if (std::regex_match(l, m, kSample)) {
      EXPECT_TRUE(typed.count(m[1])) << "sample without TYPE: " << l;
      const size_t space = l.rfind(' ');
      EXPECT_TRUE(samples.emplace(l.substr(0, space), l.substr(space + 1)).second)
          << "repeated sample " << l;
    } else {
      ADD_FAILURE() << "not exposition text: " << l;
    }
  }
  return samples;
}

TEST(FormatSecondsTest, ExactDecimals) {
  EXPECT_EQ(FormatSeconds(0, 0), "0");
  EXPECT_EQ(FormatSeconds(12, 0), "12");
  EXPECT_EQ(FormatSeconds(1, 500000000), "1.5");
  EXPECT_EQ(FormatSeconds(0, 123), "0.000000123");
  EXPECT_EQ(FormatSeconds(1700000000, 123456789), "1700000000.123456789");
  EXPECT_EQ(FormatSeconds(-2, -250000000), "-2.25");
  // A Timestamp before 1970: seconds < 0 with positive nanos.
  EXPECT_EQ(FormatSeconds(-3, 750000000), "-2.25");
}

TEST(EscapeLabelValueTest, EscapesBackslashQuoteAndNewline) {
  EXPECT_EQ(EscapeLabelValue("Okta.FailedLogin"), "Okta.FailedLogin");
  EXPECT_EQ(EscapeLabelValue("a\\b\"c\nd"), "a\\\\b\\\"c\\nd");
}

v1::GetServerStatusResponse SampleStatus() {
  v1::GetServerStatusResponse status;
  status.set_version("9.9.9");
  status.mutable_start_time()->set_seconds(1700000000);
  v1::ServerMetrics* m = status.mutable_metrics();
  m->mutable_ingest()->set_batches(3);
  m->mutable_ingest()->set_events_received(10);
  m->mutable_ingest()->set_events_accepted(6);
  m->mutable_ingest()->set_events_duplicate(1);
  v1::RejectedEvents* r = m->mutable_ingest()->add_rejected();
  r->set_reason("not_json");
  r->set_count(2);
  r = m->mutable_ingest()->add_rejected();
  r->set_reason("too_large");
  r->set_count(1);
  v1::RuleMetrics* rule = m->add_rules();
  rule->set_rule_id("Okta.FailedLogin");
  rule->set_evaluations(6);
  rule->set_matches(2);
  rule->set_errors(1);
  rule->mutable_time()->set_nanos(1500000);
  rule = m->add_rules();
  rule->set_rule_id("Odd \"id\"");
  rule->set_evaluations(1);
  m->mutable_workers()->set_live(2);
  m->mutable_workers()->set_restarts(4);
  m->mutable_workers()->set_waiting(3);
  m->mutable_executor()->set_queued(5);
  status.mutable_streams()->set_subscribers(2);
  status.mutable_streams()->set_published(7);
  status.mutable_streams()->set_backlog(9);
  v1::SourceMetrics* s = m->add_sources();
  s->set_label("prod");
  s->set_state(v1::SOURCE_STATE_ERROR);
  s->set_polls(11);
  s->set_poll_failures(4);
  s->set_events_ingested(100);
  s->mutable_last_poll_time()->set_seconds(1700000100);
  s->mutable_lag()->set_seconds(2);
  s->mutable_lag()->set_nanos(500000000);
  return status;
}

TEST(RenderPrometheusTest, EveryFigureWithItsLabels) {
  const std::string text = RenderPrometheus(SampleStatus());
  std::map<std::string, std::string> samples = ParseExposition(text);
  EXPECT_EQ(samples["pantherd_build_info{version=\"9.9.9\"}"], "1");
  EXPECT_EQ(samples["pantherd_start_time_seconds"], "1700000000");
  EXPECT_EQ(samples["pantherd_ingest_batches_total"], "3");
  EXPECT_EQ(samples["pantherd_events_received_total"], "10");
  EXPECT_EQ(samples["pantherd_events_accepted_total"], "6");
  EXPECT_EQ(samples["pantherd_events_duplicate_total"], "1");
  EXPECT_EQ(samples["pantherd_events_rejected_total{reason=\"not_json\"}"], "2");
  EXPECT_EQ(samples["pantherd_events_rejected_total{reason=\"too_large\"}"], "1");
  EXPECT_EQ(samples["pantherd_rule_evaluations_total{rule=\"Okta.FailedLogin\"}"], "6");
  EXPECT_EQ(samples["pantherd_rule_matches_total{rule=\"Okta.FailedLogin\"}"], "2");
  EXPECT_EQ(samples["pantherd_rule_errors_total{rule=\"Okta.FailedLogin\"}"], "1");
  EXPECT_EQ(samples["pantherd_rule_seconds_total{rule=\"Okta.FailedLogin\"}"], "0.0015");
  EXPECT_EQ(samples["pantherd_rule_evaluations_total{rule=\"Odd \\\"id\\\"\"}"], "1");
  EXPECT_EQ(samples["pantherd_workers_live"], "2");
  EXPECT_EQ(samples["pantherd_worker_restarts_total"], "4");
  EXPECT_EQ(samples["pantherd_worker_queue_waiting"], "3");
  EXPECT_EQ(samples["pantherd_executor_queue_depth"], "5");
  EXPECT_EQ(samples["pantherd_stream_subscribers"], "2");
  EXPECT_EQ(samples["pantherd_alert_changes_published_total"], "7");
  EXPECT_EQ(samples["pantherd_stream_backlog"], "9");
  EXPECT_EQ(samples["pantherd_source_polls_total{source=\"prod\"}"], "11");
  EXPECT_EQ(samples["pantherd_source_poll_failures_total{source=\"prod\"}"], "4");
  EXPECT_EQ(samples["pantherd_source_events_ingested_total{source=\"prod\"}"], "100");
  EXPECT_EQ(samples["pantherd_source_last_poll_timestamp_seconds{source=\"prod\"}"], "1700000100");
  EXPECT_EQ(samples["pantherd_source_lag_seconds{source=\"prod\"}"], "2.5");
  EXPECT_EQ(samples["pantherd_source_state{source=\"prod\",state=\"error\"}"], "1");
}

TEST(RenderPrometheusTest, EmptyStatusIsStillWellFormed) {
  const std::string text = RenderPrometheus(v1::GetServerStatusResponse());
  std::map<std::string, std::string> samples = ParseExposition(text);
  EXPECT_EQ(samples["pantherd_events_accepted_total"], "0");
  // Families without members are announced, with no sample.
  EXPECT_THAT(text, HasSubstr("# TYPE pantherd_rule_evaluations_total counter\n"));
  EXPECT_THAT(text, Not(HasSubstr("pantherd_rule_evaluations_total{")));
}

TEST(CollectLiveStatusTest, ReadsTheRealComponents) {
  engine::EngineMetrics engine;
  engine.events_accepted.Add(5);
  engine.rejected(engine::RejectReason::kNotObject).Add(2);
  engine.AddRule("R.One", engine::RuleFigures{4, 1, 0, 2000000001});
  Executor executor(2, 8);
  // Hold both executor threads so that queued tasks stay queued.
  absl::Notification release;
  absl::Notification started[2];
  for (int i = 0; i < 2; ++i) {
    ASSERT_TRUE(executor.Submit([&, i] {
      started[i].Notify();
      release.WaitForNotification();
    }));
  }
  for (auto& s : started) s.WaitForNotification();
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(executor.Submit([] {}));
  // The evaluation pool: one thread held, one batch queued, one refused.
  Executor evaluation(1, 1);
  absl::Notification evaluating;
  ASSERT_TRUE(evaluation.Submit([&] {
    evaluating.Notify();
    release.WaitForNotification();
  }));
  evaluating.WaitForNotification();
  ASSERT_TRUE(evaluation.Submit([] {}));
  ASSERT_FALSE(evaluation.Submit([] {}));

  MetricsInputs in;
  in.engine = &engine;
  in.executor = &executor;
  in.evaluation = &evaluation;
  in.start_time = absl::FromUnixSeconds(1700000000);
  in.version = "1.2.3";
  v1::GetServerStatusResponse status;
  CollectLiveStatus(in, &status);
  release.Notify();

  EXPECT_EQ(status.version(), "1.2.3");
  EXPECT_EQ(status.start_time().seconds(), 1700000000);
  EXPECT_GT(status.uptime().seconds(), 0);
  const v1::ServerMetrics& m = status.metrics();
  EXPECT_EQ(m.ingest().events_accepted(), 5);
  ASSERT_EQ(m.ingest().rejected_size(), engine::kRejectReasonCount);
  EXPECT_EQ(m.ingest().rejected(1).reason(), "not_object");
  EXPECT_EQ(m.ingest().rejected(1).count(), 2);
  EXPECT_EQ(m.ingest().rejected(0).count(), 0);
  ASSERT_EQ(m.rules_size(), 1);
  EXPECT_EQ(m.rules(0).rule_id(), "R.One");
  EXPECT_EQ(m.rules(0).evaluations(), 4);
  EXPECT_EQ(m.rules(0).time().seconds(), 2);
  EXPECT_EQ(m.rules(0).time().nanos(), 1);
  EXPECT_EQ(m.executor().threads(), 2);
  EXPECT_EQ(m.executor().queued(), 3);
  EXPECT_EQ(m.executor().queue_capacity(), 8);
  EXPECT_EQ(m.evaluation().threads(), 1);
  EXPECT_EQ(m.evaluation().queued(), 1);
  EXPECT_EQ(m.evaluation().queue_capacity(), 1);
  EXPECT_EQ(m.evaluation().rejected(), 1);
  // No pool, hub or sources given: their parts stay empty.
  EXPECT_FALSE(status.has_streams());
  EXPECT_EQ(m.sources_size(), 0);
  // And the rendering shows the same numbers.
  std::map<std::string, std::string> samples = ParseExposition(RenderPrometheus(status));
  EXPECT_EQ(samples["pantherd_rule_seconds_total{rule=\"R.One\"}"], "2.000000001");
  EXPECT_EQ(samples["pantherd_events_rejected_total{reason=\"not_object\"}"], "2");
  EXPECT_EQ(samples["pantherd_evaluation_queue_depth"], "1");
  EXPECT_EQ(samples["pantherd_evaluation_rejected_total"], "1");
  EXPECT_EQ(samples["pantherd_executor_queue_depth"], "3");
}

TEST(ToStreamStatsTest, SumsBacklogs) {
  AlertHubStats hub;
  hub.subscribers = 3;
  hub.published = 12;
  hub.backlogs = {{4, false, 10}, {0, false, 14}, {7, true, 3}};
  v1::StreamStats s = ToStreamStats(hub);
  EXPECT_EQ(s.subscribers(), 3);
  EXPECT_EQ(s.published(), 12);
  EXPECT_EQ(s.backlog(), 11);
  EXPECT_EQ(s.max_backlog(), 7);
  EXPECT_EQ(s.catching_up(), 1);
  ASSERT_EQ(s.subscriber_backlogs_size(), 3);
  EXPECT_EQ(s.subscriber_backlogs(2).delivered_through(), 3u);
}

}  // namespace
}  // namespace pantherd::server
