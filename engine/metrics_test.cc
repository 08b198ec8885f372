// Tests of engine/metrics.h: counters under concurrency, rejection reasons
// classified from real NormalizeEvent errors, per-rule figures and the
// worker-side tally.
#include "engine/metrics.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "engine/normalize.h"

namespace pantherd::engine {
namespace {

using ::testing::ElementsAre;
using ::testing::Pair;

// The reason a real NormalizeEvent error is classified as.
RejectReason ReasonOf(const std::string& raw, const std::string& log_type = "Okta.SystemLog",
                      size_t max_bytes = 1 << 20) {
  NormalizeContext ctx;
  ctx.max_event_bytes = max_bytes;
  absl::StatusOr<NormalizedEvent> event = NormalizeEvent(raw, log_type, ctx);
  EXPECT_FALSE(event.ok()) << raw;
  if (event.ok()) return RejectReason::kOther;
  return ClassifyRejection(event.status().message());
}

TEST(ClassifyRejectionTest, RealNormalizationErrors) {
  EXPECT_EQ(ReasonOf("{not json"), RejectReason::kNotJson);
  EXPECT_EQ(ReasonOf(""), RejectReason::kNotJson);
  EXPECT_EQ(ReasonOf("[1, 2]"), RejectReason::kNotObject);
  EXPECT_EQ(ReasonOf("\"text\""), RejectReason::kNotObject);
  EXPECT_EQ(ReasonOf(R"({"uuid": "a", "pad": "0123456789"})", "Okta.SystemLog", 10),
            RejectReason::kTooLarge);
  EXPECT_EQ(ReasonOf("{}", "No.Such.Type"), RejectReason::kUnknownLogType);
}

TEST(ClassifyRejectionTest, UnknownMessagesAreOther) {
  EXPECT_EQ(ClassifyRejection(""), RejectReason::kOther);
  EXPECT_EQ(ClassifyRejection("something else went wrong"), RejectReason::kOther);
  // "event is" alone is not the size error.
  EXPECT_EQ(ClassifyRejection("event is odd"), RejectReason::kOther);
}

TEST(RejectReasonNameTest, EveryReasonHasItsOwnLabel) {
  std::vector<std::string> names;
  for (int i = 0; i < kRejectReasonCount; ++i) {
    names.emplace_back(RejectReasonName(static_cast<RejectReason>(i)));
  }
  EXPECT_THAT(names,
              ElementsAre("not_json", "not_object", "too_large", "unknown_log_type", "other"));
}

TEST(EngineMetricsTest, CountersAddUpAcrossThreads) {
  EngineMetrics metrics;
  constexpr int kThreads = 4;
  constexpr int kPerThread = 10000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kPerThread; ++i) {
        metrics.events_accepted.Add();
        metrics.rejected(RejectReason::kTooLarge).Add(2);
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(metrics.events_accepted.value(), kThreads * kPerThread);
  EXPECT_EQ(metrics.rejected(RejectReason::kTooLarge).value(), 2 * kThreads * kPerThread);
  EXPECT_EQ(metrics.rejected(RejectReason::kNotJson).value(), 0);
  EXPECT_EQ(metrics.events_duplicate.value(), 0);
}

TEST(EngineMetricsTest, RuleFiguresAccumulatePerRuleInIdOrder) {
  EngineMetrics metrics;
  EXPECT_TRUE(metrics.Rules().empty());
  metrics.AddRule("B.Rule", RuleFigures{3, 1, 0, 500});
  metrics.AddRule("A.Rule", RuleFigures{1, 0, 1, 20});
  metrics.AddRule("B.Rule", RuleFigures{2, 2, 1, 100});
  std::vector<std::pair<std::string, RuleFigures>> rules = metrics.Rules();
  ASSERT_EQ(rules.size(), 2u);
  EXPECT_EQ(rules[0].first, "A.Rule");
  EXPECT_EQ(rules[0].second.evaluations, 1);
  EXPECT_EQ(rules[0].second.errors, 1);
  EXPECT_EQ(rules[0].second.time_nanos, 20);
  EXPECT_EQ(rules[1].first, "B.Rule");
  EXPECT_EQ(rules[1].second.evaluations, 5);
  EXPECT_EQ(rules[1].second.matches, 3);
  EXPECT_EQ(rules[1].second.errors, 1);
  EXPECT_EQ(rules[1].second.time_nanos, 600);
}

TEST(EngineMetricsTest, ConcurrentFirstSightingsOfARuleCreateOneEntry) {
  EngineMetrics metrics;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 1000; ++i) {
        metrics.AddRule(absl::StrCat("R", i % 10), RuleFigures{1, t == 0 ? 1 : 0, 0, 1});
      }
    });
  }
  for (std::thread& t : threads) t.join();
  std::vector<std::pair<std::string, RuleFigures>> rules = metrics.Rules();
  ASSERT_EQ(rules.size(), 10u);
  for (const auto& [id, figures] : rules) {
    EXPECT_EQ(figures.evaluations, 400) << id;
    EXPECT_EQ(figures.matches, 100) << id;
    EXPECT_EQ(figures.time_nanos, 400) << id;
  }
}

TEST(RuleTallyTest, SumsPerPositionAndReportsOnlyRulesThatRan) {
  const std::string a = "A", b = "B", c = "C";
  RuleTally tally(3);
  tally.Record(2, c, /*matched=*/true, /*error=*/false, 10);
  tally.Record(0, a, false, true, 5);
  tally.Record(2, c, false, false, 7);
  tally.Record(7, b, true, false, 1);  // out of range: ignored
  google::protobuf::RepeatedPtrField<internal::RuleRunStats> out;
  tally.AppendTo(&out);
  ASSERT_EQ(out.size(), 2);
  EXPECT_EQ(out[0].rule_id(), "A");
  EXPECT_EQ(out[0].evaluations(), 1);
  EXPECT_EQ(out[0].matches(), 0);
  EXPECT_EQ(out[0].errors(), 1);
  EXPECT_EQ(out[0].time_nanos(), 5);
  EXPECT_EQ(out[1].rule_id(), "C");
  EXPECT_EQ(out[1].evaluations(), 2);
  EXPECT_EQ(out[1].matches(), 1);
  EXPECT_EQ(out[1].errors(), 0);
  EXPECT_EQ(out[1].time_nanos(), 17);

  // And the engine side adds them up.
  EngineMetrics metrics;
  metrics.AddRuleStats(out);
  metrics.AddRuleStats(out);
  EXPECT_THAT(metrics.Rules(), ElementsAre(Pair("A", testing::_), Pair("C", testing::_)));
  EXPECT_EQ(metrics.Rules()[1].second.evaluations, 4);
  EXPECT_EQ(metrics.Rules()[1].second.time_nanos, 34);
}

TEST(MonotonicNanosTest, NeverGoesBack) {
  int64_t last = MonotonicNanos();
  for (int i = 0; i < 1000; ++i) {
    const int64_t now = MonotonicNanos();
    EXPECT_GE(now, last);
    last = now;
  }
}

}  // namespace
}  // namespace pantherd::engine
