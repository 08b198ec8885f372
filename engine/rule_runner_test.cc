// File: engine/rule_runner_test.cc
//
// Panther's rule-function contracts, one by one, through RunRule. Shares the
// process-wide runtime of python_runtime_test.cc (namespace runtime_testing).

#include "engine/rule_runner.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "engine/python_runtime.h"

namespace pantherd::engine {
namespace runtime_testing {
// Defined in python_runtime_test.cc.
PythonRuntime& Runtime();
void LoadRule(const std::string& id, const std::string& source, const std::string& extra);
RuleOutcome RunOn(const std::string& rule_id, const std::string& event_json, RunMode mode);
}  // namespace runtime_testing

namespace {

using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::StartsWith;
using runtime_testing::LoadRule;
using runtime_testing::RunOn;

constexpr char kEvent[] = R"({"eventType": "user.session.start", "p_log_type": "Okta.SystemLog",
  "actor": {"alternateId": "homer@springfield.gov"}, "client": {"ipAddress": "1.2.3.4"}})";

const std::string& Output(const RuleOutcome& out, RuleFunction f) {
  static const std::string* none = new std::string("<no output>");
  const FunctionOutcome& fo = out.function(f);
  return fo.output_json.has_value() ? *fo.output_json : *none;
}

std::string ErrorText(const RuleOutcome& out, RuleFunction f) {
  const FunctionOutcome& fo = out.function(f);
  if (!fo.error.has_value()) return "<no error>";
  return absl::StrCat(fo.error->type(), ": ", fo.error->message());
}

// The rule "Test.Rule" with `functions` after a rule() returning True.
RuleOutcome RunMatching(const std::string& functions, const std::string& extra_yaml = "",
                        RunMode mode = RunMode::kTest) {
  LoadRule("Test.Rule", absl::StrCat("def rule(event):\n    return True\n\n", functions),
           extra_yaml);
  return RunOn("Test.Rule", kEvent, mode);
}

TEST(RuleRunnerTest, DefaultsWithOnlyRule) {
  RuleOutcome out = RunMatching("", "DisplayName: Nice Name\nDescription: From YAML\n"
                                    "Reference: https://ref\nRunbook: Do things\n",
                                RunMode::kLive);
  EXPECT_TRUE(out.matched);
  EXPECT_FALSE(out.any_error());
  EXPECT_EQ(Output(out, RuleFunction::kRule), "true");
  EXPECT_EQ(out.alert.title, "Nice Name");
  EXPECT_EQ(out.alert.dedup, "defaultDedupString:Test.Rule");
  EXPECT_EQ(Output(out, RuleFunction::kDedup), "\"defaultDedupString:Test.Rule\"");
  EXPECT_FALSE(out.function(RuleFunction::kDedup).defined);
  EXPECT_EQ(out.alert.severity, v1::SEVERITY_MEDIUM);
  EXPECT_EQ(out.alert.description, "From YAML");
  EXPECT_EQ(out.alert.reference, "https://ref");
  EXPECT_EQ(out.alert.runbook, "Do things");
  EXPECT_EQ(out.alert.alert_context_json, "{}");
  EXPECT_FALSE(out.alert.destinations.has_value());
  EXPECT_FALSE(out.alert.unique_json.has_value());
  for (RuleFunction f : {RuleFunction::kTitle, RuleFunction::kSeverity,
                         RuleFunction::kAlertContext, RuleFunction::kDestinations}) {
    EXPECT_FALSE(out.function(f).called) << RuleFunctionName(f);
    EXPECT_FALSE(out.function(f).output_json.has_value()) << RuleFunctionName(f);
  }
  // Without a DisplayName the title is the RuleID.
  EXPECT_EQ(RunMatching("", "", RunMode::kLive).alert.title, "Test.Rule");
}

TEST(RuleRunnerTest, AllFunctionsRunInPanthersOrderOnTheSameModule) {
  RuleOutcome out = RunMatching(R"py(
CALLS = []
def title(event):
    CALLS.append("title"); return "T"
def description(event):
    CALLS.append("description"); return "D"
def reference(event):
    CALLS.append("reference"); return "R"
def severity(event):
    CALLS.append("severity"); return "low"
def runbook(event):
    CALLS.append("runbook"); return "RB"
def destinations(event):
    CALLS.append("destinations"); return ["Slack"]
def dedup(event):
    CALLS.append("dedup"); return "DD"
def alert_context(event):
    CALLS.append("alert_context"); return {"calls": list(CALLS)}
def unique(event):
    return {"n": len(CALLS)}
)py");
  EXPECT_FALSE(out.any_error());
  EXPECT_EQ(Output(out, RuleFunction::kAlertContext),
            R"({"calls": ["title", "description", "reference", "severity", "runbook", )"
            R"("destinations", "dedup", "alert_context"]})");
  EXPECT_EQ(Output(out, RuleFunction::kTitle), "\"T\"");
  EXPECT_EQ(Output(out, RuleFunction::kSeverity), "\"LOW\"");
  EXPECT_EQ(Output(out, RuleFunction::kDestinations), "[\"Slack\"]");
  EXPECT_EQ(Output(out, RuleFunction::kUnique), "{\"n\": 8}");
  EXPECT_EQ(out.alert.title, "T");
  EXPECT_EQ(out.alert.dedup, "DD");
  EXPECT_EQ(out.alert.severity, v1::SEVERITY_LOW);
  EXPECT_EQ(out.alert.description, "D");
  EXPECT_EQ(out.alert.reference, "R");
  EXPECT_EQ(out.alert.runbook, "RB");
  EXPECT_THAT(*out.alert.destinations, ElementsAre("Slack"));
  EXPECT_EQ(*out.alert.unique_json, "{\"n\": 8}");
}

TEST(RuleRunnerTest, ModuleGlobalsPersistFromRuleToTitle) {
  LoadRule("Test.State", R"py(
SEEN = None
def rule(event):
    global SEEN
    SEEN = event["actor"]["alternateID"]
    return True
def title(event):
    return f"seen {SEEN}"
)py",
           "");
  RuleOutcome out = RunOn("Test.State", kEvent, RunMode::kLive);
  EXPECT_EQ(out.alert.title, "seen homer@springfield.gov");
  EXPECT_EQ(out.alert.dedup, "seen homer@springfield.gov");  // dedup falls back to the title
}

TEST(RuleRunnerTest, RuleMustReturnExactlyABool) {
  for (const auto& [ret, type] : std::vector<std::pair<std::string, std::string>>{
           {"None", "NoneType"}, {"'yes'", "str"}, {"1", "int"}, {"[True]", "list"}}) {
    LoadRule("Test.Bool", absl::StrCat("def rule(event):\n    return ", ret, "\n"), "");
    RuleOutcome out = RunOn("Test.Bool", kEvent, RunMode::kLive);
    EXPECT_TRUE(out.rule_error()) << ret;
    EXPECT_FALSE(out.matched);
    EXPECT_EQ(ErrorText(out, RuleFunction::kRule),
              absl::StrCat("FunctionReturnTypeError: detection [Test.Bool] function [rule] "
                           "returned [",
                           type, "], expected [bool]"));
  }
}

TEST(RuleRunnerTest, LiveModeStopsAfterRuleUnlessTrueTestModeRunsEverything) {
  const std::string source =
      "def rule(event):\n    return event.get('match') is True\n\n"
      "def title(event):\n    return 'T'\n";
  LoadRule("Test.Modes", source, "");
  RuleOutcome live = RunOn("Test.Modes", R"({"match": false})", RunMode::kLive);
  EXPECT_TRUE(live.returned_false());
  EXPECT_FALSE(live.function(RuleFunction::kTitle).called);
  RuleOutcome test = RunOn("Test.Modes", R"({"match": false})", RunMode::kTest);
  EXPECT_TRUE(test.returned_false());
  EXPECT_TRUE(test.function(RuleFunction::kTitle).called);
  EXPECT_EQ(Output(test, RuleFunction::kTitle), "\"T\"");

  LoadRule("Test.Raises", "def rule(event):\n    return event['x']\n\n"
                          "def title(event):\n    return 'T'\n", "");
  RuleOutcome raised = RunOn("Test.Raises", kEvent, RunMode::kLive);
  EXPECT_TRUE(raised.rule_error());
  EXPECT_EQ(ErrorText(raised, RuleFunction::kRule), "KeyError: 'x'");
  EXPECT_FALSE(raised.function(RuleFunction::kTitle).called);
  EXPECT_TRUE(RunOn("Test.Raises", kEvent, RunMode::kTest).function(RuleFunction::kTitle).called);
}

TEST(RuleRunnerTest, StringsAreTruncatedToExactly1000Characters) {
  RuleOutcome out = RunMatching(
      "def title(event):\n    return 'a' * 1001\n\n"
      "def dedup(event):\n    return 'é' * 5000\n\n"
      "def description(event):\n    return 'd' * 1000\n\n"
      "def runbook(event):\n    return 'r' * 2000\n\n"
      "def reference(event):\n    return 'f' * 999\n",
      "", RunMode::kLive);
  EXPECT_FALSE(out.any_error());
  const std::string suffix = "... (truncated)";
  EXPECT_EQ(out.alert.title, std::string(985, 'a') + suffix);
  EXPECT_EQ(out.alert.title.size(), 1000u);
  std::string dedup;
  for (int i = 0; i < 985; ++i) dedup += "é";
  EXPECT_EQ(out.alert.dedup, dedup + suffix);  // 1000 characters, not bytes
  EXPECT_EQ(out.alert.description, std::string(1000, 'd'));
  EXPECT_EQ(out.alert.runbook, std::string(985, 'r') + suffix);
  EXPECT_EQ(out.alert.reference, std::string(999, 'f'));
  EXPECT_EQ(Output(out, RuleFunction::kTitle), "\"" + std::string(985, 'a') + suffix + "\"");
}

TEST(RuleRunnerTest, SeverityIsUpperCasedDefaultMeansYamlInvalidFallsBack) {
  RuleOutcome high = RunMatching("def severity(event):\n    return 'high'\n", "", RunMode::kLive);
  EXPECT_EQ(high.alert.severity, v1::SEVERITY_HIGH);
  EXPECT_EQ(Output(high, RuleFunction::kSeverity), "\"HIGH\"");

  RuleOutcome def = RunMatching("def severity(event):\n    return 'Default'\n");
  EXPECT_FALSE(def.any_error());
  EXPECT_EQ(def.alert.severity, v1::SEVERITY_MEDIUM);
  EXPECT_EQ(Output(def, RuleFunction::kSeverity), "\"Medium\"");  // the YAML spelling

  RuleOutcome bad = RunMatching("def severity(event):\n    return 'urgent'\n");
  EXPECT_EQ(bad.alert.severity, v1::SEVERITY_MEDIUM);
  EXPECT_EQ(ErrorText(bad, RuleFunction::kSeverity),
            "AssertionError: Expected severity to be any of the following: [['INFO', 'LOW', "
            "'MEDIUM', 'HIGH', 'CRITICAL']], got [URGENT] instead.");
  EXPECT_FALSE(bad.function(RuleFunction::kSeverity).output_json.has_value());

  RuleOutcome wrong = RunMatching("def severity(event):\n    return 3\n");
  EXPECT_EQ(wrong.alert.severity, v1::SEVERITY_MEDIUM);
  EXPECT_EQ(ErrorText(wrong, RuleFunction::kSeverity),
            "FunctionReturnTypeError: detection [Test.Rule] function [severity] returned [int], "
            "expected [str]");

  RuleOutcome raised = RunMatching("def severity(event):\n    return event['nope']\n");
  EXPECT_EQ(raised.alert.severity, v1::SEVERITY_MEDIUM);
  EXPECT_EQ(ErrorText(raised, RuleFunction::kSeverity), "KeyError: 'nope'");
}

TEST(RuleRunnerTest, AlertContextMustBeAMappingThatSerializes) {
  RuleOutcome event = RunMatching(
      "def alert_context(event):\n    return {'actor': event['actor'], 'ips': "
      "event.get('p_any_ip_addresses')}\n");
  EXPECT_FALSE(event.any_error());
  EXPECT_EQ(Output(event, RuleFunction::kAlertContext),
            R"({"actor": {"alternateId": "homer@springfield.gov"}, "ips": null})");

  RuleOutcome list = RunMatching("def alert_context(event):\n    return [1]\n");
  EXPECT_EQ(ErrorText(list, RuleFunction::kAlertContext),
            "FunctionReturnTypeError: detection [Test.Rule] function [alert_context] returned "
            "[list], expected [Mapping]");
  EXPECT_EQ(list.alert.alert_context_json,
            R"j({"_error": "FunctionReturnTypeError('detection [Test.Rule] function )j"
            R"j([alert_context] returned [list], expected [Mapping]')"})j");

  RuleOutcome set = RunMatching("def alert_context(event):\n    return {'s': {1, 2}}\n");
  // The message is PantherEvent.json_encoder's (engine/event.h).
  EXPECT_THAT(ErrorText(set, RuleFunction::kAlertContext),
              AllOf(StartsWith("TypeError: "), HasSubstr("set"),
                    HasSubstr("is not JSON serializable")));
  EXPECT_THAT(set.alert.alert_context_json, StartsWith(R"j({"_error": "TypeError()j"));
  EXPECT_THAT(set.alert.alert_context_json, HasSubstr("is not JSON serializable"));
  EXPECT_FALSE(set.function(RuleFunction::kAlertContext).output_json.has_value());

  RuleOutcome big = RunMatching("def alert_context(event):\n    return {'x': 'y' * 204800}\n");
  EXPECT_FALSE(big.any_error());  // as Panther: replaced, not an error
  const std::string expected =
      R"({"_error": "alert_context size is [204809] characters, bigger than maximum of )"
      R"([204800] characters"})";
  EXPECT_EQ(Output(big, RuleFunction::kAlertContext), expected);
  EXPECT_EQ(big.alert.alert_context_json, expected);

  RuleOutcome fits = RunMatching("def alert_context(event):\n    return {'x': 'y' * 204791}\n");
  EXPECT_EQ(Output(fits, RuleFunction::kAlertContext).size(), 204800u);
}

TEST(RuleRunnerTest, Destinations) {
  RuleOutcome skip = RunMatching("def destinations(event):\n    return []\n", "", RunMode::kLive);
  EXPECT_THAT(*skip.alert.destinations, ElementsAre("SKIP"));
  EXPECT_EQ(Output(skip, RuleFunction::kDestinations), "[\"SKIP\"]");

  RuleOutcome none = RunMatching("def destinations(event):\n    return None\n");
  EXPECT_FALSE(none.any_error());
  EXPECT_FALSE(none.alert.destinations.has_value());
  EXPECT_FALSE(none.function(RuleFunction::kDestinations).output_json.has_value());

  RuleOutcome many = RunMatching(
      "def destinations(event):\n    return ['a', 'a'] + [str(i) for i in range(12)]\n");
  EXPECT_THAT(*many.alert.destinations,
              ElementsAre("a", "0", "1", "2", "3", "4", "5", "6", "7", "8"));

  RuleOutcome wrong = RunMatching("def destinations(event):\n    return 'slack'\n");
  EXPECT_EQ(ErrorText(wrong, RuleFunction::kDestinations),
            "FunctionReturnTypeError: detection [Test.Rule] function [destinations] returned "
            "[str], expected a list");
  EXPECT_FALSE(wrong.alert.destinations.has_value());
}

TEST(RuleRunnerTest, TitleAndDedupFallbacks) {
  // title() raising: the title is the RuleID; in production the dedup falls
  // back to that title, in tests to the default dedup string.
  RuleOutcome raised = RunMatching("def title(event):\n    return 1 / 0\n",
                                   "DisplayName: Shown\n");
  EXPECT_EQ(ErrorText(raised, RuleFunction::kTitle), "ZeroDivisionError: division by zero");
  EXPECT_EQ(raised.alert.title, "Test.Rule");
  EXPECT_EQ(raised.alert.dedup, "Test.Rule");
  EXPECT_EQ(Output(raised, RuleFunction::kDedup), "\"defaultDedupString:Test.Rule\"");

  RuleOutcome empty_title = RunMatching("def title(event):\n    return ''\n",
                                        "DisplayName: Shown\n");
  EXPECT_EQ(empty_title.alert.title, "Shown");
  EXPECT_EQ(empty_title.alert.dedup, "defaultDedupString:Test.Rule");
  EXPECT_EQ(Output(empty_title, RuleFunction::kTitle), "\"\"");

  RuleOutcome empty_dedup = RunMatching(
      "def title(event):\n    return 'T'\n\ndef dedup(event):\n    return ''\n");
  EXPECT_FALSE(empty_dedup.any_error());
  EXPECT_EQ(empty_dedup.alert.dedup, "defaultDedupString:Test.Rule");
  EXPECT_EQ(Output(empty_dedup, RuleFunction::kDedup), "\"defaultDedupString:Test.Rule\"");

  RuleOutcome dedup_raised = RunMatching(
      "def title(event):\n    return 'T'\n\ndef dedup(event):\n    return event['x']\n");
  EXPECT_EQ(ErrorText(dedup_raised, RuleFunction::kDedup), "KeyError: 'x'");
  EXPECT_EQ(dedup_raised.alert.dedup, "defaultDedupString:Test.Rule");
  EXPECT_FALSE(dedup_raised.function(RuleFunction::kDedup).output_json.has_value());

  RuleOutcome dedup_type = RunMatching("def dedup(event):\n    return None\n");
  EXPECT_EQ(ErrorText(dedup_type, RuleFunction::kDedup),
            "FunctionReturnTypeError: detection [Test.Rule] function [dedup] returned "
            "[NoneType], expected [str]");
}

TEST(RuleRunnerTest, EmptyGeneratedTextFallsBackToYaml) {
  RuleOutcome out = RunMatching(
      "def description(event):\n    return ''\n\ndef runbook(event):\n    return 1 / 0\n",
      "Description: YAML description\nRunbook: YAML runbook\n");
  EXPECT_EQ(out.alert.description, "YAML description");
  EXPECT_EQ(Output(out, RuleFunction::kDescription), "\"\"");
  EXPECT_EQ(out.alert.runbook, "YAML runbook");
  EXPECT_EQ(ErrorText(out, RuleFunction::kRunbook), "ZeroDivisionError: division by zero");
}

}  // namespace
}  // namespace pantherd::engine
