// RunReplay with everything real: RocksDB in a temp dir holding stored
// events, RuleSetManager::PrepareReplay, and the worker pool running the
// pantherd-worker program with embedded CPython.
#include "engine/replay.h"

#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <filesystem>
#include <map>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "engine/event_store.h"
#include "engine/rule_set_test_env.h"
#include "engine/worker_pool.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/test_util.h"

namespace pantherd::engine {
namespace {

using ::testing::HasSubstr;

constexpr char kLogType[] = "Okta.SystemLog";
const absl::Time kDay = absl::FromUnixSeconds(1795000000);  // some day in 2026

v1::AnalysisFile File(const std::string& path, const std::string& content) {
  v1::AnalysisFile f;
  f.set_path(path);
  f.set_content(content);
  return f;
}

// A rule of the Okta log type; `extra` is more YAML (Threshold: 3, ...).
std::vector<v1::AnalysisFile> Rule(const std::string& id, const std::string& body,
                                   const std::string& extra = "") {
  return {File(id + ".yml", absl::StrCat("AnalysisType: rule\nRuleID: ", id, "\nFilename: ", id,
                                         ".py\nEnabled: true\nLogTypes: [Okta.SystemLog]\n"
                                         "Severity: Medium\n",
                                         extra)),
          File(id + ".py", body)};
}

v1::ContentSelector Content(std::vector<std::vector<v1::AnalysisFile>> rules) {
  v1::ContentSelector content;
  for (auto& files : rules) {
    for (v1::AnalysisFile& f : files) *content.add_files() = std::move(f);
  }
  return content;
}

class ReplayTest : public RuleSetFixture {
 protected:
  void SetUp() override {
    OpenRuleSet(
        [](WorkerPoolOptions& options) { options.limits.kill_grace = absl::Milliseconds(500); });
  }
  void TearDown() override { CloseRuleSet(); }

  // Stores an event of `actor` with `outcome` at `t` (id "e<n>").
  void StoreEvent(absl::Time t, const std::string& actor, const std::string& outcome) {
    const std::string id = absl::StrCat("e", next_id_++);
    const std::string json = absl::StrCat(
        R"({"uuid":")", id, R"(","eventType":"user.session.start","actor":{"alternateId":")", actor,
        R"("},"outcome":{"result":")", outcome, R"("},"p_log_type":"Okta.SystemLog",)",
        R"("p_event_time":")", absl::FormatTime("%Y-%m-%d %H:%M:%E6S", t, absl::UTCTimeZone()),
        R"("})");
    store::WriteBatch batch;
    batch.Put(store::Family::kEvents, EventKey(kLogType, t, id, json), json);
    ASSERT_TRUE(store_->Write(std::move(batch)).ok());
  }

  ReplayOptions Options() {
    ReplayOptions options;
    options.events = store_.get();
    options.pool = pool_.get();
    options.scratch_dir = tmp_.Sub(absl::StrCat("replay-", ++replays_));
    options.log_type = kLogType;
    options.since = kDay;
    options.until = kDay + absl::Hours(24);
    options.now = [] { return kDay + absl::Hours(48); };
    return options;
  }

  absl::StatusOr<v1::ReplayRulesResponse> Replay(const v1::ContentSelector& content,
                                                 const ReplayOptions& options,
                                                 const ReplayProgressFn& progress = nullptr) {
    absl::StatusOr<RuleSetManager::ReplaySet> set = manager_->PrepareReplay(&content, {}, kLogType);
    if (!set.ok()) return set.status();
    return RunReplay(*set, options, progress);
  }

  int next_id_ = 0;
  int replays_ = 0;
};

constexpr char kFailedLogin[] =
    "def rule(event):\n"
    "    return event.deep_get('outcome', 'result') == 'FAILURE'\n"
    "def title(event):\n"
    "    return 'failures of ' + event.deep_get('actor', 'alternateId')\n";

TEST_F(ReplayTest, GroupsByEventTimeWindowsAndThresholdsAcrossBatches) {
  // alice fails 4 times within an hour (threshold 3: one alert), bob twice
  // (below it), then alice again 3 times in a later hour (a second alert).
  for (int i = 0; i < 4; ++i) StoreEvent(kDay + absl::Minutes(i), "alice", "FAILURE");
  for (int i = 0; i < 2; ++i) StoreEvent(kDay + absl::Minutes(10 + i), "bob", "FAILURE");
  for (int i = 0; i < 5; ++i) StoreEvent(kDay + absl::Minutes(20 + i), "carol", "SUCCESS");
  for (int i = 0; i < 3; ++i)
    StoreEvent(kDay + absl::Hours(5) + absl::Minutes(i), "alice", "FAILURE");
  StoreEvent(kDay - absl::Minutes(1), "alice", "FAILURE");  // before the range
  ReplayOptions options = Options();
  options.batch_events = 2;  // many batches: windows carry over
  absl::StatusOr<v1::ReplayRulesResponse> r =
      Replay(Content({Rule("Okta.Failed", kFailedLogin, "Threshold: 3\n")}), options);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->events(), 14);
  ASSERT_EQ(r->alerts_total(), 2);
  ASSERT_EQ(r->alerts_size(), 2);
  for (const v1::Alert& a : r->alerts()) {
    EXPECT_EQ(a.title(), "failures of alice");
    EXPECT_EQ(a.severity(), v1::SEVERITY_MEDIUM);
  }
  EXPECT_EQ(r->alerts(0).event_count() + r->alerts(1).event_count(), 7);
  ASSERT_EQ(r->rules_size(), 1);
  EXPECT_EQ(r->rules(0).matches(), 9);
  EXPECT_EQ(r->rules(0).alerts(), 2);
  EXPECT_EQ(r->worker_restarts(), 0);
  // Nothing live: no alert in the live store, and the scratch store is gone.
  EXPECT_FALSE(std::filesystem::exists(options.scratch_dir));
  int alerts = 0;
  ASSERT_TRUE(store_
                  ->Scan(store::Family::kAlerts, "",
                         [&](absl::string_view, absl::string_view) {
                           ++alerts;
                           return true;
                         })
                  .ok());
  EXPECT_EQ(alerts, 0);
}

// A rule with CreateAlert: false produces signals, counted apart from the
// alerts of the other rules.
TEST_F(ReplayTest, SignalsAreCountedApartFromAlerts) {
  for (int i = 0; i < 3; ++i) StoreEvent(kDay + absl::Minutes(i), "alice", "FAILURE");
  absl::StatusOr<v1::ReplayRulesResponse> r =
      Replay(Content({Rule("Okta.Failed", kFailedLogin),
                      Rule("Okta.Failed.Signal", kFailedLogin, "CreateAlert: false\n")}),
             Options());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->alerts_total(), 2);  // one alert and one signal, both listed
  EXPECT_EQ(r->signals_total(), 1);
  ASSERT_EQ(r->rules_size(), 2);
  for (const v1::ReplayRuleStats& st : r->rules()) {
    const bool signal = st.rule_id() == "Okta.Failed.Signal";
    EXPECT_EQ(st.alerts(), signal ? 0 : 1) << st.rule_id();
    EXPECT_EQ(st.signals(), signal ? 1 : 0) << st.rule_id();
  }
}

TEST_F(ReplayTest, EventsOfTheSameMicrosecondAreNeverSplitOrRepeated) {
  for (int i = 0; i < 7; ++i) StoreEvent(kDay + absl::Seconds(1), "alice", "FAILURE");
  for (int i = 0; i < 3; ++i) StoreEvent(kDay + absl::Seconds(2), "alice", "FAILURE");
  ReplayOptions options = Options();
  options.batch_events = 3;
  absl::StatusOr<v1::ReplayRulesResponse> r =
      Replay(Content({Rule("Okta.Failed", kFailedLogin)}), options);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->events(), 10);
  EXPECT_EQ(r->rules(0).matches(), 10);
  ASSERT_EQ(r->alerts_size(), 1);
  EXPECT_EQ(r->alerts(0).event_count(), 10);
}

TEST_F(ReplayTest, CachingStateIsPrivateStartsEmptyAndUsesEventTime) {
  // A rule that alerts on the third failure of a user, counting with the
  // caching helpers; the live key-value space has a count already.
  const char kCounting[] =
      "from panther_detection_helpers.caching import increment_counter\n"
      "def rule(event):\n"
      "    if event.deep_get('outcome', 'result') != 'FAILURE':\n"
      "        return False\n"
      "    return increment_counter('fails-' + event.deep_get('actor', 'alternateId'), "
      "epoch_seconds=600) == 3\n";
  for (int i = 0; i < 3; ++i) StoreEvent(kDay + absl::Minutes(i), "alice", "FAILURE");
  // Spread over more than the counter's 10-minute life by event time: the
  // count expires between them, so no alert (with wall-clock time it would).
  for (int i = 0; i < 3; ++i)
    StoreEvent(kDay + absl::Hours(2) + absl::Minutes(11 * i), "bob", "FAILURE");
  absl::StatusOr<v1::ReplayRulesResponse> r =
      Replay(Content({Rule("Okta.Third", kCounting)}), Options());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->rules(0).matches(), 1);
  ASSERT_EQ(r->alerts_size(), 1);
  // Again: the same result (the first run left nothing behind).
  r = Replay(Content({Rule("Okta.Third", kCounting)}), Options());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->rules(0).matches(), 1);
  // The live caching space was not touched.
  int items = 0;
  ASSERT_TRUE(store_
                  ->Scan(store::Family::kKv, "",
                         [&](absl::string_view, absl::string_view) {
                           ++items;
                           return true;
                         })
                  .ok());
  EXPECT_EQ(items, 0);
}

TEST_F(ReplayTest, ReportsProgressAndStopsWhenTheCallerDoes) {
  for (int i = 0; i < 40; ++i) StoreEvent(kDay + absl::Minutes(30 * i), "alice", "SUCCESS");
  ReplayOptions options = Options();
  options.batch_events = 5;
  options.progress_interval = absl::ZeroDuration();
  std::vector<v1::ReplayProgress> seen;
  int thread_nice = -100;
  auto record = [&](const v1::ReplayProgress& p) {
    seen.push_back(p);
    thread_nice = getpriority(PRIO_PROCESS, static_cast<id_t>(syscall(SYS_gettid)));
    return true;
  };
  absl::StatusOr<v1::ReplayRulesResponse> r =
      Replay(Content({Rule("Okta.Failed", kFailedLogin)}), options, record);
  ASSERT_TRUE(r.ok()) << r.status();
  // pantherd's side of the replay runs at the worker's niceness too, and
  // the caller's thread keeps its own.
  EXPECT_EQ(thread_nice, 10);
  EXPECT_EQ(getpriority(PRIO_PROCESS, static_cast<id_t>(syscall(SYS_gettid))), 0);
  ASSERT_EQ(seen.size(), 7u);  // after each batch but the last
  for (size_t i = 0; i < seen.size(); ++i) {
    EXPECT_EQ(seen[i].events(), static_cast<int64_t>(5 * (i + 1)));
    EXPECT_GT(seen[i].fraction(), 0);
    EXPECT_LT(seen[i].fraction(), 1);
    if (i > 0) {
      EXPECT_GT(seen[i].fraction(), seen[i - 1].fraction());
    }
  }
  EXPECT_EQ(r->events(), 40);
  // A caller that stops reading stops the replay.
  options = Options();
  options.batch_events = 5;
  options.progress_interval = absl::ZeroDuration();
  int calls = 0;
  r = Replay(Content({Rule("Okta.Failed", kFailedLogin)}), options,
             [&](const v1::ReplayProgress&) { return ++calls < 2; });
  EXPECT_TRUE(absl::IsCancelled(r.status())) << r.status();
  EXPECT_EQ(calls, 2);
  EXPECT_FALSE(std::filesystem::exists(options.scratch_dir));
}

TEST_F(ReplayTest, RunsInItsOwnLowerPriorityWorker) {
  StoreEvent(kDay, "alice", "FAILURE");
  const char kNice[] =
      "import os\n"
      "def rule(event):\n"
      "    return os.nice(0) >= 10\n";
  absl::StatusOr<v1::ReplayRulesResponse> r =
      Replay(Content({Rule("Okta.Nice", kNice)}), Options());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->rules(0).matches(), 1) << r->DebugString();
  EXPECT_EQ(pool_->Stats().isolated_runs, 1);
}

TEST_F(ReplayTest, ARuleThatKillsTheWorkerGetsErrorsAndIsDroppedTheOthersCarryOn) {
  // The killer aborts its worker on bob's events; alice's are fine.
  const char kKiller[] =
      "import os\n"
      "def rule(event):\n"
      "    if event.deep_get('actor', 'alternateId') == 'bob':\n"
      "        os.abort()\n"
      "    return False\n";
  for (int i = 0; i < 3; ++i) StoreEvent(kDay + absl::Minutes(i), "alice", "FAILURE");
  for (int i = 0; i < kReplayFailureLimit + 2; ++i) {
    StoreEvent(kDay + absl::Minutes(10 + i), "bob", "FAILURE");
  }
  ReplayOptions options = Options();
  options.batch_events = 4;
  absl::StatusOr<v1::ReplayRulesResponse> r =
      Replay(Content({Rule("Okta.Failed", kFailedLogin), Rule("Okta.Killer", kKiller)}), options);
  ASSERT_TRUE(r.ok()) << r.status();
  std::map<std::string, v1::ReplayRuleStats> stats;
  for (const v1::ReplayRuleStats& s : r->rules()) stats[s.rule_id()] = s;
  EXPECT_EQ(stats["Okta.Failed"].matches(), 3 + kReplayFailureLimit + 2);
  EXPECT_EQ(stats["Okta.Killer"].errors(), kReplayFailureLimit);
  EXPECT_GE(r->worker_restarts(), kReplayFailureLimit);
  bool dropped = false;
  for (const v1::Diagnostic& d : r->invalid()) {
    dropped |= absl::StrContains(d.message(), "Okta.Killer ended the replay's worker on 5 events");
  }
  EXPECT_TRUE(dropped) << r->DebugString();
  bool error_alert = false;
  for (const v1::Alert& a : r->alerts()) {
    if (a.type() == v1::ALERT_TYPE_RULE_ERROR && a.rule_id() == "Okta.Killer") error_alert = true;
  }
  EXPECT_TRUE(error_alert);
}

TEST_F(ReplayTest, RefusesWhatCannotBeReplayed) {
  ReplayOptions options = Options();
  options.until = options.since;
  EXPECT_TRUE(absl::IsInvalidArgument(
      Replay(Content({Rule("Okta.Failed", kFailedLogin)}), options).status()));
  // No rule of the log type.
  v1::ContentSelector other;
  *other.add_files() = File("x.yml",
                            "AnalysisType: rule\nRuleID: X\nFilename: x.py\nEnabled: true\n"
                            "LogTypes: [AWS.CloudTrail]\nSeverity: Low\n");
  *other.add_files() = File("x.py", "def rule(e):\n    return True\n");
  absl::StatusOr<RuleSetManager::ReplaySet> set = manager_->PrepareReplay(&other, {}, kLogType);
  EXPECT_TRUE(absl::IsInvalidArgument(set.status())) << set.status();
  EXPECT_THAT(set.status().message(), HasSubstr("takes log type Okta.SystemLog"));
  // An unknown stored rule.
  set = manager_->PrepareReplay(nullptr, {"No.Such"}, kLogType);
  EXPECT_TRUE(absl::IsNotFound(set.status())) << set.status();
  EXPECT_THAT(set.status().message(), HasSubstr("No.Such"));
  // A rule that does not compile is reported; the others replay.
  StoreEvent(kDay, "alice", "FAILURE");
  absl::StatusOr<v1::ReplayRulesResponse> r = Replay(
      Content({Rule("Okta.Failed", kFailedLogin), Rule("Okta.Broken", "def rule(:\n")}), Options());
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_GE(r->invalid_size(), 1);
  EXPECT_THAT(r->invalid(0).file(), HasSubstr("Okta.Broken.py"));
  EXPECT_THAT(r->invalid(0).file(), ::testing::Not(HasSubstr("items/")));
  EXPECT_EQ(r->alerts_total(), 1);
}

}  // namespace
}  // namespace pantherd::engine
