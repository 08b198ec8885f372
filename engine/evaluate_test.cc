// Live evaluation (EvaluateTask) in a rule worker: routing by log type,
// enabled flags, the alert fields of matches, rule errors and auxiliary
// errors, through PythonWorker in this process (one embedded interpreter per
// test binary, owned by a gtest Environment), and once through a real
// pantherd-worker process driven by WorkerPool::LoadLive + DispatchLive.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "engine/kv_memory.h"
#include "engine/normalize.h"
#include "engine/python_worker.h"
#include "engine/python_worker_test_env.h"
#include "engine/worker_pool.h"

namespace pantherd::engine {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::StartsWith;

::testing::Environment* const kEnvironment =
    ::testing::AddGlobalTestEnvironment(new PythonWorkerEnvironment(absl::Seconds(1)));

PythonWorker& Worker() { return PythonWorkerEnvironment::worker(); }

v1::AnalysisFile File(const std::string& path, const std::string& content) {
  v1::AnalysisFile f;
  f.set_path(path);
  f.set_content(content);
  return f;
}

// A rule spec + module; `extra` is appended to the YAML.
std::vector<v1::AnalysisFile> RuleFiles(const std::string& id, const std::string& python,
                                        const std::string& log_types = "[Okta.SystemLog]",
                                        const std::string& extra = "", bool enabled = true) {
  return {
      File("rules/" + id + ".yml",
           absl::StrCat(
               "AnalysisType: rule\nRuleID: ", id, "\nFilename: ", id,
               ".py\nEnabled: ", enabled ? "true" : "false", "\nLogTypes: ", log_types, "\n",
               extra.find("Severity:") == std::string::npos ? "Severity: Medium\n" : "", extra)),
      File("rules/" + id + ".py", python)};
}

std::vector<v1::AnalysisFile> Concat(std::vector<std::vector<v1::AnalysisFile>> parts) {
  std::vector<v1::AnalysisFile> all;
  for (auto& part : parts) all.insert(all.end(), part.begin(), part.end());
  return all;
}

std::string Dump(const internal::LoadResult& result) {
  std::string out;
  for (const v1::Diagnostic& d : result.diagnostics()) {
    absl::StrAppend(&out, d.file(), ":", d.line(), " ", d.message(), "\n");
  }
  return out;
}

void LoadOk(const std::vector<v1::AnalysisFile>& files) {
  internal::LoadRuleSet request;
  request.set_version(1);
  for (const v1::AnalysisFile& f : files) *request.add_files() = f;
  absl::StatusOr<internal::LoadResult> result = Worker().Load(request);
  ASSERT_TRUE(result.ok()) << result.status();
  ASSERT_FALSE(HasLoadErrors(*result)) << Dump(*result);
}

internal::EvaluateTask Task(const std::vector<std::pair<std::string, std::string>>& events) {
  internal::EvaluateTask task;
  for (const auto& [json, log_type] : events) {
    internal::EventToEvaluate* e = task.add_events();
    e->set_normalized_json(json);
    e->set_log_type(log_type);
  }
  return task;
}

internal::EvaluateResult Evaluate(const internal::EvaluateTask& task) {
  absl::StatusOr<internal::EvaluateResult> result = Worker().Evaluate(task);
  EXPECT_TRUE(result.ok()) << result.status();
  if (!result.ok()) return {};
  EXPECT_EQ(result->results_size(), task.events_size());
  return *std::move(result);
}

// Evaluates one event of `log_type`.
internal::EventResult EvaluateOne(const std::string& json,
                                  const std::string& log_type = "Okta.SystemLog") {
  internal::EvaluateResult result = Evaluate(Task({{json, log_type}}));
  return result.results_size() == 1 ? result.results(0) : internal::EventResult{};
}

std::vector<std::string> MatchedIds(const internal::EventResult& result) {
  std::vector<std::string> ids;
  for (const internal::RuleMatch& m : result.matches()) ids.push_back(m.rule_id());
  return ids;
}

constexpr char kAlwaysTrue[] = "def rule(event):\n    return True\n";

// --- routing and enabled flags ------------------------------------------------

TEST(EvaluateTest, RoutesByLogTypeInSetOrder) {
  LoadOk(Concat({RuleFiles("A.Okta", kAlwaysTrue),
                 RuleFiles("B.Cloudtrail", kAlwaysTrue, "[AWS.CloudTrail]"),
                 RuleFiles("C.Both", kAlwaysTrue, "[AWS.CloudTrail, Okta.SystemLog]")}));
  internal::EvaluateResult result =
      Evaluate(Task({{"{}", "Okta.SystemLog"},
                     {"{}", "AWS.CloudTrail"},
                     {"{}", "GSuite.Reports"},
                     {R"({"p_log_type": "AWS.CloudTrail"})", ""},
                     {R"({"p_log_type": "Okta.SystemLog"})", "AWS.CloudTrail"}}));
  ASSERT_EQ(result.results_size(), 5);
  EXPECT_THAT(MatchedIds(result.results(0)), ElementsAre("A.Okta", "C.Both"));
  EXPECT_EQ(result.results(0).rules_evaluated(), 2);
  EXPECT_THAT(MatchedIds(result.results(1)), ElementsAre("B.Cloudtrail", "C.Both"));
  EXPECT_THAT(MatchedIds(result.results(2)), IsEmpty());
  EXPECT_EQ(result.results(2).rules_evaluated(), 0);
  EXPECT_EQ(result.results(2).error(), "");
  // Without a log type in the task, the event's p_log_type routes it; the
  // task's log type wins over p_log_type.
  EXPECT_THAT(MatchedIds(result.results(3)), ElementsAre("B.Cloudtrail", "C.Both"));
  EXPECT_THAT(MatchedIds(result.results(4)), ElementsAre("B.Cloudtrail", "C.Both"));
}

TEST(EvaluateTest, EnabledFlags) {
  LoadOk(Concat({RuleFiles("On", kAlwaysTrue),
                 RuleFiles("Off", kAlwaysTrue, "[Okta.SystemLog]", "", /*enabled=*/false),
                 RuleFiles("On2", kAlwaysTrue)}));
  // YAML Enabled by default.
  EXPECT_THAT(MatchedIds(EvaluateOne("{}")), ElementsAre("On", "On2"));
  // The server's flags override the YAML.
  internal::EvaluateTask task = Task({{"{}", "Okta.SystemLog"}});
  task.add_disabled_rule_ids("On");
  task.add_enabled_rule_ids("Off");
  internal::EvaluateResult result = Evaluate(task);
  EXPECT_THAT(MatchedIds(result.results(0)), ElementsAre("Off", "On2"));
  EXPECT_EQ(result.results(0).rules_evaluated(), 2);
  // Listed in both: disabled.
  task.add_disabled_rule_ids("Off");
  result = Evaluate(task);
  EXPECT_THAT(MatchedIds(result.results(0)), ElementsAre("On2"));
  // Unknown ids are ignored.
  task.add_disabled_rule_ids("No.Such.Rule");
  result = Evaluate(task);
  EXPECT_THAT(MatchedIds(result.results(0)), ElementsAre("On2"));
}

TEST(EvaluateTest, RuleReturningFalseIsNeitherMatchNorError) {
  LoadOk(RuleFiles("Never",
                   "def rule(event):\n    return False\n"
                   "def title(event):\n    raise ValueError('not called')\n"));
  internal::EventResult r = EvaluateOne("{}");
  EXPECT_THAT(r.matches(), IsEmpty());
  EXPECT_THAT(r.errors(), IsEmpty());
  EXPECT_EQ(r.rules_evaluated(), 1);
}

TEST(EvaluateTest, PerRuleTotalsOfTheTask) {
  LoadOk(Concat({RuleFiles("Match.Who", "def rule(event):\n    return event.get('who') == 'x'\n"),
                 RuleFiles("Raises", "def rule(event):\n    raise ValueError('no')\n"),
                 RuleFiles("Other.Type", kAlwaysTrue, "[AWS.CloudTrail]")}));
  internal::EvaluateResult result = Evaluate(Task({{R"({"who": "x"})", "Okta.SystemLog"},
                                                   {R"({"who": "y"})", "Okta.SystemLog"},
                                                   {R"({"who": "x"})", "Okta.SystemLog"}}));
  // One entry per rule that ran, in set order; Other.Type never ran. The
  // pre-filter proves Match.Who cannot fire on "y": it is not called there,
  // so only its two real rule() calls count.
  ASSERT_EQ(result.rule_stats_size(), 2);
  const internal::RuleRunStats& who = result.rule_stats(0);
  EXPECT_EQ(who.rule_id(), "Match.Who");
  EXPECT_EQ(who.evaluations(), 2);
  EXPECT_EQ(who.matches(), 2);
  EXPECT_EQ(who.errors(), 0);
  EXPECT_GT(who.time_nanos(), 0);
  const internal::RuleRunStats& raises = result.rule_stats(1);
  EXPECT_EQ(raises.rule_id(), "Raises");
  EXPECT_EQ(raises.evaluations(), 3);
  EXPECT_EQ(raises.matches(), 0);
  EXPECT_EQ(raises.errors(), 3);
  EXPECT_GT(raises.time_nanos(), 0);
}

// --- match fields -----------------------------------------------------------------

TEST(EvaluateTest, MatchDefaults) {
  LoadOk(Concat({RuleFiles("Plain", kAlwaysTrue),
                 RuleFiles("Named", kAlwaysTrue, "[Okta.SystemLog]",
                           "DisplayName: A Nice Name\nDescription: From YAML\n"
                           "Reference: https://ref\nRunbook: Do things\nCreateAlert: false\n"),
                 RuleFiles("DefaultSeverity",
                           "def rule(event):\n    return True\n"
                           "def severity(event):\n    return 'DEFAULT'\n")}));
  internal::EventResult r = EvaluateOne("{}");
  // Set order is spec path order.
  ASSERT_THAT(MatchedIds(r), ElementsAre("DefaultSeverity", "Named", "Plain"));
  const internal::RuleMatch& plain = r.matches(2);
  EXPECT_EQ(plain.rule_id(), "Plain");
  EXPECT_EQ(plain.title(), "Plain");
  EXPECT_EQ(plain.dedup(), "defaultDedupString:Plain");
  EXPECT_EQ(plain.severity(), v1::SEVERITY_MEDIUM);
  EXPECT_EQ(plain.description(), "");
  EXPECT_EQ(plain.alert_context_json(), "{}");
  EXPECT_FALSE(plain.has_unique_json());
  EXPECT_FALSE(plain.destinations_overridden());
  EXPECT_THAT(plain.destinations(), IsEmpty());
  EXPECT_TRUE(plain.create_alert());
  EXPECT_THAT(plain.function_errors(), IsEmpty());
  EXPECT_FALSE(plain.timed_out());

  const internal::RuleMatch& named = r.matches(1);
  EXPECT_EQ(named.title(), "A Nice Name");
  EXPECT_EQ(named.dedup(), "defaultDedupString:Named");
  EXPECT_EQ(named.description(), "From YAML");
  EXPECT_EQ(named.reference(), "https://ref");
  EXPECT_EQ(named.runbook(), "Do things");
  EXPECT_FALSE(named.create_alert());

  EXPECT_EQ(r.matches(0).severity(), v1::SEVERITY_MEDIUM);  // "DEFAULT": the YAML severity
  EXPECT_THAT(r.matches(0).function_errors(), IsEmpty());
}

TEST(EvaluateTest, MatchFieldsFromFunctions) {
  LoadOk(RuleFiles("Full",
                   "def rule(event):\n    return event.get('eventType') == 'user.session.start'\n"
                   "def title(event):\n"
                   "    return f\"Login by {event.deep_get('actor', 'alternateId')}\"\n"
                   "def dedup(event):\n    return event['client']['ipAddress']\n"
                   "def severity(event):\n    return 'high'\n"
                   "def description(event):\n    return 'dynamic description'\n"
                   "def destinations(event):\n    return ['slack', 'pagerduty']\n"
                   "def alert_context(event):\n"
                   "    return {'ip': event.deep_get('client', 'ipAddress'), 'n': 1}\n"
                   "def unique(event):\n    return event.get('uuid')\n"));
  internal::EventResult r = EvaluateOne(
      R"({"eventType": "user.session.start", "uuid": "u-1",)"
      R"( "actor": {"alternateId": "homer@springfield.gov"}, "client": {"ipAddress": "1.2.3.4"}})");
  ASSERT_EQ(r.matches_size(), 1);
  const internal::RuleMatch& m = r.matches(0);
  EXPECT_EQ(m.title(), "Login by homer@springfield.gov");
  EXPECT_EQ(m.dedup(), "1.2.3.4");
  EXPECT_EQ(m.severity(), v1::SEVERITY_HIGH);
  EXPECT_EQ(m.description(), "dynamic description");
  EXPECT_TRUE(m.destinations_overridden());
  EXPECT_THAT(m.destinations(), ElementsAre("slack", "pagerduty"));
  EXPECT_EQ(m.alert_context_json(), R"({"ip": "1.2.3.4", "n": 1})");
  ASSERT_TRUE(m.has_unique_json());
  EXPECT_EQ(m.unique_json(), "\"u-1\"");
  EXPECT_THAT(m.function_errors(), IsEmpty());
  EXPECT_THAT(MatchedIds(EvaluateOne(R"({"eventType": "other"})")), IsEmpty());
}

TEST(EvaluateTest, ModuleGlobalsAreSharedBetweenRuleAndTitlePerEvent) {
  LoadOk(RuleFiles("Globals",
                   "SEEN = None\n"
                   "def rule(event):\n"
                   "    global SEEN\n"
                   "    SEEN = event.get('who')\n"
                   "    return SEEN is not None\n"
                   "def title(event):\n    return f'seen {SEEN}'\n"
                   "def dedup(event):\n    return SEEN\n"));
  internal::EvaluateResult result = Evaluate(Task({{R"({"who": "alice"})", "Okta.SystemLog"},
                                                   {R"({"nobody": 1})", "Okta.SystemLog"},
                                                   {R"({"who": "bob"})", "Okta.SystemLog"}}));
  ASSERT_EQ(result.results(0).matches_size(), 1);
  EXPECT_EQ(result.results(0).matches(0).title(), "seen alice");
  EXPECT_EQ(result.results(0).matches(0).dedup(), "alice");
  EXPECT_THAT(result.results(1).matches(), IsEmpty());
  ASSERT_EQ(result.results(2).matches_size(), 1);
  EXPECT_EQ(result.results(2).matches(0).title(), "seen bob");
  EXPECT_EQ(result.results(2).matches(0).dedup(), "bob");
}

TEST(EvaluateTest, DataModelOfTheLogType) {
  LoadOk(
      Concat({RuleFiles("Udm",
                        "def rule(event):\n    return event.udm('source_ip') == '1.2.3.4'\n"
                        "def title(event):\n    return event.udm('actor_user')\n"),
              {File("models/okta.yml",
                    "AnalysisType: datamodel\nDataModelID: Standard.Okta.SystemLog\n"
                    "Enabled: true\nLogTypes: [Okta.SystemLog]\nFilename: okta.py\n"
                    "Mappings:\n  - Name: source_ip\n    Path: $.client.ipAddress\n"
                    "  - Name: actor_user\n    Method: get_actor_user\n"),
               File("models/okta.py",
                    "def get_actor_user(event):\n"
                    "    return event.get('actor', {}).get('alternateId', 'Unknown User')\n")}}));
  internal::EventResult r =
      EvaluateOne(R"({"client": {"ipAddress": "1.2.3.4"}, "actor": {"alternateId": "marge"}})");
  ASSERT_EQ(r.matches_size(), 1) << (r.errors_size() > 0 ? r.errors(0).error().traceback() : "");
  EXPECT_EQ(r.matches(0).title(), "marge");
}

TEST(EvaluateTest, NormalizedEventsDropNullsForGetDefaults) {
  LoadOk(RuleFiles("Reason",
                   "def rule(event):\n"
                   "    return event.get('outcome', {}).get('reason', 'none') == 'none'\n"
                   "def title(event):\n"
                   "    return ' '.join([event.get('p_log_type'), event.get('p_source_label'),\n"
                   "                     ','.join(event.get('p_any_ip_addresses')),\n"
                   "                     str(event.event_time_epoch())])\n"));
  NormalizeContext ctx;
  ctx.source_label = "okta-prod";
  absl::StatusOr<NormalizedEvent> row = NormalizeEvent(
      R"({"outcome": {"reason": null, "result": "FAILURE"}, "client": {"ipAddress": "5.6.7.8"},)"
      R"( "published": "2020-02-14T20:18:57.718Z"})",
      kOktaSystemLog, ctx);
  ASSERT_TRUE(row.ok()) << row.status();
  internal::EventResult r = EvaluateOne(row->json, row->log_type);
  ASSERT_EQ(r.matches_size(), 1) << (r.errors_size() > 0 ? r.errors(0).error().traceback() : "");
  EXPECT_EQ(r.matches(0).title(), "Okta.SystemLog okta-prod 5.6.7.8 1581711537");
}

// --- errors ---------------------------------------------------------------------------

TEST(EvaluateTest, RuleErrorsCarryTheTraceback) {
  LoadOk(Concat({RuleFiles("Raises",
                           "def helper(event):\n"
                           "    return event['missing']\n"
                           "def rule(event):\n"
                           "    return helper(event)\n"),
                 RuleFiles("NotBool", "def rule(event):\n    return 'yes'\n"),
                 RuleFiles("Fine", kAlwaysTrue)}));
  internal::EventResult r = EvaluateOne(R"({"present": 1})");
  EXPECT_THAT(MatchedIds(r), ElementsAre("Fine"));
  ASSERT_EQ(r.errors_size(), 2);  // in set (path) order
  const internal::RuleErrorResult& raised = r.errors(1);
  EXPECT_EQ(raised.rule_id(), "Raises");
  EXPECT_EQ(raised.function(), "rule");
  EXPECT_EQ(raised.error().type(), "KeyError");
  EXPECT_EQ(raised.error().message(), "'missing'");
  EXPECT_THAT(raised.error().traceback(), HasSubstr("rules/Raises.py\", line 4, in rule"));
  EXPECT_THAT(raised.error().traceback(), HasSubstr("rules/Raises.py\", line 2, in helper"));
  EXPECT_FALSE(raised.timed_out());
  const internal::RuleErrorResult& not_bool = r.errors(0);
  EXPECT_EQ(not_bool.rule_id(), "NotBool");
  EXPECT_EQ(not_bool.error().type(), "FunctionReturnTypeError");
  EXPECT_THAT(not_bool.error().message(), HasSubstr("bool"));
}

// --- one rule cannot change another (engine/rule_integrity.h) ---------------

// Rule code that swaps A_Victim's rule() for one that never matches.
constexpr char kSwapVictim[] =
    "import gc\n"
    "def swap():\n"
    "    for o in gc.get_objects():\n"
    "        if type(o).__name__ == 'function' and o.__name__ == 'rule' and \\\n"
    "                o.__module__ == 'A_Victim':\n"
    "            o.__code__ = (lambda event: False).__code__\n";

TEST(EvaluateTest, AnImportThatChangesAnotherRuleDoesNotLoad) {
  internal::LoadRuleSet request;
  request.set_version(1);
  for (const v1::AnalysisFile& f :
       Concat({RuleFiles("A_Victim", "def rule(event):\n    return event.get('x') == 1\n"),
               RuleFiles("B_Evil", absl::StrCat(kSwapVictim, "swap()\n", kAlwaysTrue))})) {
    *request.add_files() = f;
  }
  absl::StatusOr<internal::LoadResult> result = Worker().Load(request);
  ASSERT_TRUE(result.ok()) << result.status();
  ASSERT_TRUE(HasLoadErrors(*result));
  EXPECT_THAT(Dump(*result), HasSubstr("rules/B_Evil.py:0 rule B_Evil: its import changed code it "
                                       "does not own (rule A_Victim's function rule: its code "
                                       "was replaced)"));
}

TEST(EvaluateTest, ARuleThatChangesAnotherIsCaughtAndTheOtherRestored) {
  LoadOk(Concat({RuleFiles("A_Victim", "def rule(event):\n    return event.get('x') == 1\n"),
                 RuleFiles("B_Evil", absl::StrCat(kSwapVictim,
                                                  "def rule(event):\n"
                                                  "    swap()\n"
                                                  "    return False\n")),
                 RuleFiles("C_Self",  // may change itself
                           "def helper(event):\n    return True\n"
                           "def rule(event):\n"
                           "    global helper\n"
                           "    helper = lambda event: event.get('x') == 1\n"
                           "    return helper(event)\n")}));
  internal::EvaluateResult r =
      Evaluate(Task({{R"({"x": 1})", "Okta.SystemLog"}, {R"({"x": 1})", "Okta.SystemLog"},
                     {R"({"x": 1})", "Okta.SystemLog"}}));
  ASSERT_EQ(r.results_size(), 3);
  // 1: B swaps A's code after A ran; nothing checks yet.
  EXPECT_THAT(MatchedIds(r.results(0)), ElementsAre("A_Victim", "C_Self"));
  EXPECT_EQ(r.results(0).errors_size(), 0);
  // 2: A finds its code changed before it runs: restored, an error naming B.
  // From then on every run is checked: B is caught in the act.
  EXPECT_THAT(MatchedIds(r.results(1)), ElementsAre("C_Self"));
  ASSERT_EQ(r.results(1).errors_size(), 2);
  EXPECT_EQ(r.results(1).errors(0).rule_id(), "A_Victim");
  EXPECT_EQ(r.results(1).errors(0).error().type(), "RuleTampered");
  EXPECT_THAT(r.results(1).errors(0).error().message(),
              HasSubstr("its code was replaced); pantherd restored it. Rules that ran in this "
                        "worker since its last run: rule C_Self, rule B_Evil."));
  EXPECT_EQ(r.results(1).errors(1).rule_id(), "B_Evil");
  EXPECT_EQ(r.results(1).errors(1).error().type(), "RuleTampering");
  EXPECT_THAT(r.results(1).errors(1).error().message(),
              HasSubstr("rule A_Victim's function rule: its code was replaced"));
  // 3: A evaluates as uploaded; B keeps failing.
  EXPECT_THAT(MatchedIds(r.results(2)), ElementsAre("A_Victim", "C_Self"));
  ASSERT_EQ(r.results(2).errors_size(), 1);
  EXPECT_EQ(r.results(2).errors(0).rule_id(), "B_Evil");
  // Tests run the same way: B's own tests cannot change A's verdicts.
}

TEST(EvaluateTest, AuxiliaryErrorsAreRecordedOnTheMatch) {
  LoadOk(RuleFiles("AuxErrors",
                   "def rule(event):\n    return True\n"
                   "def title(event):\n    return 1 / 0\n"
                   "def severity(event):\n    return 'SEVERE'\n"
                   "def alert_context(event):\n    raise RuntimeError('no context')\n",
                   "[Okta.SystemLog]", "DisplayName: Shown Name\nSeverity: Low\n"));
  internal::EventResult r = EvaluateOne("{}");
  ASSERT_EQ(r.matches_size(), 1);
  const internal::RuleMatch& m = r.matches(0);
  EXPECT_THAT(r.errors(), IsEmpty());
  EXPECT_EQ(m.title(), "AuxErrors");  // title() raised: the RuleID
  EXPECT_EQ(m.dedup(), "AuxErrors");  // no dedup(): the title fallback
  EXPECT_EQ(m.severity(), v1::SEVERITY_LOW);
  EXPECT_THAT(m.alert_context_json(), HasSubstr("_error"));
  std::vector<std::string> functions;
  for (const internal::FunctionError& e : m.function_errors()) {
    functions.push_back(absl::StrCat(e.function(), ":", e.error().type()));
  }
  EXPECT_THAT(functions, ElementsAre("title:ZeroDivisionError", "severity:AssertionError",
                                     "alert_context:RuntimeError"));
  EXPECT_THAT(m.function_errors(0).error().traceback(), HasSubstr("line 4, in title"));
}

TEST(EvaluateTest, TimeoutIsARuleError) {
  LoadOk(Concat({RuleFiles("Loops", "def rule(event):\n    while True:\n        pass\n"),
                 RuleFiles("After", kAlwaysTrue)}));
  internal::EventResult r = EvaluateOne("{}");
  ASSERT_EQ(r.errors_size(), 1);
  EXPECT_EQ(r.errors(0).rule_id(), "Loops");
  EXPECT_EQ(r.errors(0).error().type(), "TimeoutError");
  EXPECT_TRUE(r.errors(0).timed_out());
  EXPECT_THAT(MatchedIds(r), ElementsAre("After"));
}

TEST(EvaluateTest, BadEventsFailAloneInTheirBatch) {
  LoadOk(RuleFiles("Any", kAlwaysTrue));
  internal::EvaluateResult result = Evaluate(Task(
      {{"[1, 2]", "Okta.SystemLog"}, {"{not json", "Okta.SystemLog"}, {"{}", "Okta.SystemLog"}}));
  EXPECT_EQ(result.results(0).error(), "event is not a JSON object");
  EXPECT_THAT(result.results(0).matches(), IsEmpty());
  EXPECT_THAT(result.results(1).error(), StartsWith("JSON parse error"));
  EXPECT_THAT(MatchedIds(result.results(2)), ElementsAre("Any"));
  EXPECT_EQ(result.results(2).error(), "");
}

TEST(EvaluateTest, CachingHelpersWorkDuringEvaluation) {
  LoadOk(RuleFiles("Counter",
                   "from panther_detection_helpers.caching import increment_counter\n"
                   "def rule(event):\n"
                   "    return increment_counter('evaluate-test-count') >= 2\n"));
  internal::EvaluateResult result =
      Evaluate(Task({{"{}", "Okta.SystemLog"}, {"{}", "Okta.SystemLog"}}));
  EXPECT_THAT(result.results(0).matches(), IsEmpty());
  EXPECT_THAT(result.results(0).errors(), IsEmpty());
  EXPECT_THAT(MatchedIds(result.results(1)), ElementsAre("Counter"));
}

// --- through a real worker process ----------------------------------------------------

TEST(EvaluatePoolTest, LoadLiveAndDispatchLive) {
  KvMemory kv;
  WorkerPoolOptions options;
  options.worker_binary = PANTHERD_WORKER_BINARY;
  options.workers = 1;
  options.kv = &kv;
  options.limits.call_time_limit = absl::Seconds(2);
  absl::StatusOr<std::unique_ptr<WorkerPool>> pool = WorkerPool::Create(std::move(options));
  ASSERT_TRUE(pool.ok()) << pool.status();

  std::vector<v1::AnalysisFile> files = Concat(
      {RuleFiles("Okta.FailedLogin",
                 "def rule(event):\n"
                 "    return event.deep_get('outcome', 'result') == 'FAILURE'\n"
                 "def title(event):\n"
                 "    return f\"Failed login for {event.deep_get('actor', 'alternateId')}\"\n"
                 "def dedup(event):\n"
                 "    return event.deep_get('client', 'ipAddress', default='none')\n",
                 "[Okta.SystemLog]", "Severity: Critical\n"),
       RuleFiles("Okta.Broken", "def rule(event):\n    return event['nope']\n"),
       RuleFiles("Okta.Disabled", kAlwaysTrue)});
  absl::StatusOr<internal::LoadResult> loaded = (*pool)->LoadLive(files, 7);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  ASSERT_FALSE(HasLoadErrors(*loaded)) << Dump(*loaded);
  EXPECT_EQ(loaded->rule_count(), 3);

  NormalizeContext ctx;
  absl::StatusOr<NormalizedEvent> failure = NormalizeEvent(
      R"({"uuid": "e1", "published": "2024-05-01T10:00:00.000Z", "eventType": "user.session.start",)"
      R"( "outcome": {"result": "FAILURE", "reason": null}, "actor": {"alternateId": "admin"},)"
      R"( "client": {"ipAddress": "203.0.113.9"}})",
      kOktaSystemLog, ctx);
  ASSERT_TRUE(failure.ok()) << failure.status();
  internal::WorkerRequest request;
  request.set_id(1);
  internal::EvaluateTask* task = request.mutable_evaluate();
  internal::EventToEvaluate* event = task->add_events();
  event->set_normalized_json(failure->json);
  event->set_log_type(failure->log_type);
  task->add_disabled_rule_ids("Okta.Disabled");

  absl::StatusOr<LiveResponse> response = (*pool)->DispatchLive(request, 30);
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->version, 7u);
  ASSERT_TRUE(response->response.has_evaluated()) << response->response.DebugString();
  const internal::EvaluateResult& result = response->response.evaluated();
  ASSERT_EQ(result.results_size(), 1);
  const internal::EventResult& r = result.results(0);
  EXPECT_EQ(r.rules_evaluated(), 2);
  ASSERT_EQ(r.matches_size(), 1);
  EXPECT_EQ(r.matches(0).rule_id(), "Okta.FailedLogin");
  EXPECT_EQ(r.matches(0).title(), "Failed login for admin");
  EXPECT_EQ(r.matches(0).dedup(), "203.0.113.9");
  EXPECT_EQ(r.matches(0).severity(), v1::SEVERITY_CRITICAL);
  ASSERT_EQ(r.errors_size(), 1);
  EXPECT_EQ(r.errors(0).rule_id(), "Okta.Broken");
  EXPECT_EQ(r.errors(0).error().type(), "KeyError");
  EXPECT_THAT(r.errors(0).error().traceback(), HasSubstr("rules/Okta.Broken.py\", line 2"));
}

}  // namespace
}  // namespace pantherd::engine
