// File: engine/test_runner_test.cc
//
// Unit tests of rules as pat runs them: the pass/fail table, reported
// function lines, mocks, data models, captured output, and the bundled rule
// pack under rules/ (every test of it must pass). Shares the process-wide
// runtime of python_runtime_test.cc (namespace runtime_testing).

#include "engine/test_runner.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "engine/analysis_spec.h"
#include "engine/python_runtime.h"

#ifndef PANTHERD_SOURCE_DIR
#error "PANTHERD_SOURCE_DIR must name the repository root"
#endif

namespace pantherd::engine {
namespace runtime_testing {
// Defined in python_runtime_test.cc.
PythonRuntime& Runtime();
v1::AnalysisFile File(const std::string& path, const std::string& content);
std::string RuleYaml(const std::string& id, const std::string& filename, const std::string& extra);
void LoadOk(const std::vector<v1::AnalysisFile>& files);
std::string Dump(const std::vector<v1::Diagnostic>& diagnostics);
}  // namespace runtime_testing

namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using runtime_testing::File;
using runtime_testing::LoadOk;
using runtime_testing::Runtime;
using Outcome = v1::TestCaseResult;

// One rule `Test.T` with `source` and the YAML `tests` (a `Tests:` list).
v1::RuleTestResult RunTestsOf(const std::string& source, const std::string& tests,
                              const std::string& extra = "", CapturedOutput* captured = nullptr) {
  LoadOk({File("rules/t.yml", runtime_testing::RuleYaml("Test.T", "t.py",
                                                         absl::StrCat(extra, "Tests:\n", tests))),
          File("rules/t.py", source)});
  const LoadedSet& set = *Runtime().loaded_set();
  return RunRuleTests(Runtime(), set, *set.FindRule("Test.T"), captured);
}

std::string TestYaml(const std::string& name, bool expected, const std::string& log = "{}") {
  return absl::StrCat("  - Name: ", name, "\n    ExpectedResult: ", expected ? "true" : "false",
                      "\n    Log: ", log, "\n");
}

// "function=output" or "function!Type: message" per reported line.
std::vector<std::string> Lines(const v1::TestCaseResult& t) {
  std::vector<std::string> lines;
  for (const v1::FunctionResult& f : t.functions()) {
    if (f.has_error()) {
      lines.push_back(absl::StrCat(f.function(), "!", f.error().type(), ": ", f.error().message()));
    } else {
      lines.push_back(absl::StrCat(f.function(), "=", f.output_json()));
    }
  }
  return lines;
}

TEST(TestRunnerTest, PassFailTable) {
  // rule() behaviour chosen by the event; title() raises on demand.
  const std::string source = R"py(
def rule(event):
    mode = event.get("mode")
    if mode == "raise":
        raise ValueError("boom")
    if mode == "none":
        return None
    return mode == "true"

def title(event):
    if event.get("title_raises"):
        raise KeyError("t")
    return "T"
)py";
  struct Case {
    bool expected;
    std::string log;
    Outcome::Outcome outcome;
  };
  const std::vector<Case> cases = {
      {true, R"({"mode": "true"})", Outcome::OUTCOME_PASSED},
      {true, R"({"mode": "true", "title_raises": true})", Outcome::OUTCOME_ERROR},
      {true, R"({"mode": "false"})", Outcome::OUTCOME_FAILED},
      {true, R"({"mode": "raise"})", Outcome::OUTCOME_ERROR},
      {true, R"({"mode": "none"})", Outcome::OUTCOME_ERROR},
      {false, R"({"mode": "false"})", Outcome::OUTCOME_PASSED},
      {false, R"({"mode": "false", "title_raises": true})", Outcome::OUTCOME_PASSED},
      {false, R"({"mode": "true"})", Outcome::OUTCOME_FAILED},
      {false, R"({"mode": "raise"})", Outcome::OUTCOME_ERROR},
      {false, R"({"mode": "none"})", Outcome::OUTCOME_ERROR},
  };
  std::string tests;
  for (size_t i = 0; i < cases.size(); ++i) {
    tests += TestYaml(absl::StrCat("case ", i), cases[i].expected, cases[i].log);
  }
  v1::RuleTestResult result = RunTestsOf(source, tests);
  EXPECT_EQ(result.rule_id(), "Test.T");
  EXPECT_EQ(result.file(), "rules/t.yml");
  EXPECT_FALSE(result.passed());
  ASSERT_EQ(result.tests_size(), static_cast<int>(cases.size()));
  for (size_t i = 0; i < cases.size(); ++i) {
    const v1::TestCaseResult& t = result.tests(static_cast<int>(i));
    EXPECT_EQ(t.name(), absl::StrCat("case ", i));
    EXPECT_EQ(t.expected_result(), cases[i].expected);
    EXPECT_EQ(t.outcome(), cases[i].outcome)
        << "case " << i << " " << cases[i].log << ": " << testing::PrintToString(Lines(t));
  }
  // Lines: every function for tests expecting true, only rule otherwise.
  EXPECT_THAT(Lines(result.tests(0)), ElementsAre("rule=true", "title=\"T\"", "dedup=\"T\""));
  EXPECT_THAT(Lines(result.tests(1)),
              ElementsAre("rule=true", "title!KeyError: 't'",
                          "dedup=\"defaultDedupString:Test.T\""));
  EXPECT_THAT(Lines(result.tests(3)), ElementsAre("rule!ValueError: boom", "title=\"T\"",
                                                  "dedup=\"T\""));
  EXPECT_THAT(Lines(result.tests(6)), ElementsAre("rule=false"));
  EXPECT_THAT(Lines(result.tests(9)),
              ElementsAre("rule!FunctionReturnTypeError: detection [Test.T] function [rule] "
                          "returned [NoneType], expected [bool]"));
  EXPECT_TRUE(result.tests(0).functions(0).defined());
  EXPECT_FALSE(result.tests(0).functions(2).defined());  // dedup is the default
}

TEST(TestRunnerTest, ReportedFunctionsFollowPatsOrder) {
  v1::RuleTestResult result = RunTestsOf(R"py(
def rule(event): return True
def unique(event): return "u"
def destinations(event): return []
def runbook(event): return "rb"
def severity(event): return "info"
def reference(event): return "ref"
def description(event): return "desc"
def alert_context(event): return {"a": 1}
def dedup(event): return "dd"
def title(event): return "t"
)py",
                                         TestYaml("all", true));
  ASSERT_EQ(result.tests_size(), 1);
  EXPECT_EQ(result.tests(0).outcome(), Outcome::OUTCOME_PASSED);
  EXPECT_THAT(Lines(result.tests(0)),
              ElementsAre("rule=true", "title=\"t\"", "dedup=\"dd\"", "alert_context={\"a\": 1}",
                          "description=\"desc\"", "reference=\"ref\"", "severity=\"INFO\"",
                          "runbook=\"rb\"", "destinations=[\"SKIP\"]", "unique=\"u\""));
  EXPECT_TRUE(result.passed());
}

TEST(TestRunnerTest, CreateAlertFalseReportsOnlyRuleAndAlertContext) {
  v1::RuleTestResult result = RunTestsOf(
      "def rule(event): return True\ndef title(event): return 1 / 0\n"
      "def alert_context(event): return {'a': 1}\n",
      TestYaml("signal", true), "CreateAlert: false\n");
  EXPECT_EQ(result.tests(0).outcome(), Outcome::OUTCOME_PASSED);
  EXPECT_THAT(Lines(result.tests(0)), ElementsAre("rule=true", "alert_context={\"a\": 1}"));
}

TEST(TestRunnerTest, MocksPatchTheRuleModuleForTheTestOnly) {
  const std::string source = R"py(
import json
from panther_detection_helpers.caching import get_string_set

def rule(event):
    seen = get_string_set("k")
    if isinstance(seen, str):
        seen = set(json.loads(seen)) if seen else set()
    return event.get("country") not in seen

def title(event):
    return f"{type(get_string_set).__name__} {ENABLED() if callable(ENABLED) else ENABLED}"

ENABLED = False
)py";
  const std::string tests = absl::StrCat(
      TestYaml("mocked new", true, R"({"country": "RO"})"),
      "    Mocks:\n      - objectName: get_string_set\n        returnValue: '[\"US\"]'\n"
      "      - objectName: ENABLED\n        returnValue: true\n",
      TestYaml("mocked seen", false, R"({"country": "US"})"),
      "    Mocks:\n      - objectName: get_string_set\n        returnValue: '[\"US\"]'\n",
      TestYaml("unmocked", true, R"({"country": "US"})"),
      TestYaml("missing target", true, "{}"),
      "    Mocks:\n      - objectName: put_string_set\n        returnValue: ''\n");
  v1::RuleTestResult result = RunTestsOf(source, tests);
  ASSERT_EQ(result.tests_size(), 4);
  EXPECT_EQ(result.tests(0).outcome(), Outcome::OUTCOME_PASSED);
  EXPECT_THAT(Lines(result.tests(0)), ElementsAre("rule=true", "title=\"MagicMock True\"",
                                                  "dedup=\"MagicMock True\""));
  EXPECT_EQ(result.tests(1).outcome(), Outcome::OUTCOME_PASSED);
  // After the tests the real function is back: the cache holds nothing for "k".
  EXPECT_EQ(result.tests(2).outcome(), Outcome::OUTCOME_PASSED);
  EXPECT_THAT(Lines(result.tests(2)),
              ElementsAre("rule=true", "title=\"function False\"", "dedup=\"function False\""));
  EXPECT_EQ(result.tests(3).outcome(), Outcome::OUTCOME_ERROR);
  EXPECT_THAT(Lines(result.tests(3)),
              ElementsAre("mocks!AttributeError: mock target [put_string_set] does not exist in "
                          "the rule module [Test.T]"));
}

TEST(TestRunnerTest, DataModelComesFromTheLogsPLogTypeOnly) {
  LoadOk({
      File("data_models/m.yml",
           "AnalysisType: datamodel\nDataModelID: M\nEnabled: true\nLogTypes:\n"
           "  - Okta.SystemLog\nMappings:\n  - Name: source_ip\n    Path: $.client.ipAddress\n"),
      File("rules/t.yml", runtime_testing::RuleYaml(
                              "Test.T", "t.py",
                              absl::StrCat("Tests:\n",
                                           TestYaml("with p_log_type", true,
                                                R"({"p_log_type": "Okta.SystemLog",)"
                                                R"( "client": {"ipAddress": "1.2.3.4"}})"),
                                           TestYaml("without p_log_type", false,
                                                R"({"client": {"ipAddress": "1.2.3.4"}})"),
                                           TestYaml("p_udm fallback", true,
                                                R"({"p_udm": {"source_ip": "1.2.3.4"}})")))),
      File("rules/t.py", "def rule(event):\n    return event.udm('source_ip') == '1.2.3.4'\n"),
  });
  const LoadedSet& set = *Runtime().loaded_set();
  v1::RuleTestResult result = RunRuleTests(Runtime(), set, *set.FindRule("Test.T"));
  ASSERT_EQ(result.tests_size(), 3);
  for (const v1::TestCaseResult& t : result.tests()) {
    EXPECT_EQ(t.outcome(), Outcome::OUTCOME_PASSED) << t.name();
  }
}

TEST(TestRunnerTest, PrintedOutputIsCapturedPerTest) {
  CapturedOutput captured;
  v1::RuleTestResult result = RunTestsOf(
      "import sys\n\ndef rule(event):\n    print('checking', event.get('n'))\n"
      "    print('warn', file=sys.stderr)\n    return False\n",
      TestYaml("one", false, R"({"n": 1})") + TestYaml("two", false, R"({"n": 2})"), "", &captured);
  EXPECT_TRUE(result.passed());
  EXPECT_THAT(captured, ElementsAre("checking 1\nwarn\n", "checking 2\nwarn\n"));
}

TEST(TestRunnerTest, RunTestsOverTheSetCountsAndFilters) {
  LoadOk({
      File("rules/a.yml", runtime_testing::RuleYaml("Test.A", "a.py",
                                                    "Tests:\n" + TestYaml("a1", true) +
                                                        TestYaml("a2", false))),
      File("rules/a.py", "def rule(event):\n    return True\n"),
      File("rules/b.yml",
           absl::StrCat("AnalysisType: rule\nRuleID: Test.B\nFilename: b.py\nEnabled: false\n"
                        "LogTypes:\n  - X\nSeverity: Low\nTests:\n",
                        TestYaml("b1", false))),
      File("rules/b.py", "def rule(event):\n    return False\n"),
      File("rules/c.yml", runtime_testing::RuleYaml("Test.C", "c.py", "")),
      File("rules/c.py", "def rule(event):\n    return False\n"),
      File("policies/p.yml", "AnalysisType: policy\nPolicyID: P\n"),
  });
  const LoadedSet& set = *Runtime().loaded_set();
  v1::TestReport all = RunTests(Runtime(), set, {});
  ASSERT_EQ(all.rules_size(), 3);
  EXPECT_EQ(all.tests_passed(), 2);
  EXPECT_EQ(all.tests_failed(), 1);
  EXPECT_FALSE(all.rules(0).passed());
  EXPECT_TRUE(all.rules(1).passed());
  EXPECT_TRUE(all.rules(2).passed());  // no tests
  EXPECT_EQ(all.rules(2).tests_size(), 0);
  ASSERT_EQ(all.skipped_size(), 1);
  EXPECT_EQ(all.skipped(0).analysis_type(), "policy");

  RunTestsOptions options;
  options.skip_disabled = true;
  options.rule_ids = {"Test.B", "Test.C", "Nope"};
  v1::TestReport some = RunTests(Runtime(), set, options);
  ASSERT_EQ(some.rules_size(), 1);
  EXPECT_EQ(some.rules(0).rule_id(), "Test.C");
  ASSERT_EQ(some.invalid_size(), 1);
  EXPECT_THAT(some.invalid(0).message(), HasSubstr("Nope"));
  ASSERT_EQ(some.skipped_size(), 2);
  EXPECT_EQ(some.skipped(1).analysis_type(), "disabled_rule");
  EXPECT_THAT(some.skipped(1).files(), ElementsAre("rules/b.yml"));
}

TEST(TestRunnerTest, ALogThatIsNotAnObjectIsAnError) {
  v1::RuleTestResult result =
      RunTestsOf("def rule(event):\n    return True\n", TestYaml("scalar", true, "'just text'"));
  ASSERT_EQ(result.tests_size(), 1);
  EXPECT_EQ(result.tests(0).outcome(), Outcome::OUTCOME_ERROR);
  ASSERT_EQ(result.tests(0).functions_size(), 1);
  EXPECT_EQ(result.tests(0).functions(0).function(), "event");
  EXPECT_THAT(result.tests(0).functions(0).error().message(), HasSubstr("Invalid event"));
}

// The real-world check: every test of the bundled pack passes.
TEST(TestRunnerTest, BundledRulePackPassesAllItsTests) {
  namespace fs = std::filesystem;
  const fs::path root = fs::path(PANTHERD_SOURCE_DIR) / "rules";
  std::vector<v1::AnalysisFile> files;
  for (const fs::directory_entry& entry : fs::recursive_directory_iterator(root)) {
    if (!entry.is_regular_file()) continue;
    std::ifstream in(entry.path(), std::ios::binary);
    std::stringstream content;
    content << in.rdbuf();
    files.push_back(File(fs::relative(entry.path(), root).generic_string(), content.str()));
  }
  std::vector<v1::Diagnostic> spec_diagnostics;
  absl::StatusOr<AnalysisSet> set = LoadAnalysisFiles(files, &spec_diagnostics);
  ASSERT_TRUE(set.ok()) << set.status() << "\n" << runtime_testing::Dump(spec_diagnostics);
  ASSERT_GE(set->rules.size(), 11u);
  std::vector<v1::Diagnostic> diagnostics;
  absl::Status loaded = Runtime().LoadRuleSet(*set, &diagnostics);
  ASSERT_TRUE(loaded.ok()) << loaded << "\n" << runtime_testing::Dump(diagnostics);

  std::vector<CapturedOutput> captured;
  v1::TestReport report = RunTests(Runtime(), *Runtime().loaded_set(), {}, &captured);
  EXPECT_EQ(report.rules_size(), static_cast<int>(set->rules.size()));
  EXPECT_GE(report.tests_passed(), 40);
  EXPECT_EQ(report.tests_failed(), 0);
  for (const v1::RuleTestResult& rule : report.rules()) {
    EXPECT_GT(rule.tests_size(), 0) << rule.rule_id();
    for (const v1::TestCaseResult& t : rule.tests()) {
      EXPECT_EQ(t.outcome(), Outcome::OUTCOME_PASSED)
          << rule.rule_id() << " / " << t.name() << ": " << t.DebugString();
    }
  }
  // The classic rule's title reads `alternateID`, which finds Okta's alternateId.
  bool checked_title = false;
  for (const v1::RuleTestResult& rule : report.rules()) {
    if (rule.rule_id() != "Okta.FailedLogin") continue;
    for (const v1::TestCaseResult& t : rule.tests()) {
      if (t.name().rfind("Title reads actor.alternateID", 0) != 0) continue;
      for (const v1::FunctionResult& f : t.functions()) {
        if (f.function() != "title") continue;
        EXPECT_EQ(f.output_json(), "\"Multiple Failed Logins for sam.rivera@acme.com\"");
        checked_title = true;
      }
    }
  }
  EXPECT_TRUE(checked_title);
}

}  // namespace
}  // namespace pantherd::engine
