#include "client/test_report.h"

#include <sstream>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace pantherd::client {
namespace {

namespace v1 = ::pantherd::v1;
using ::testing::HasSubstr;
using ::testing::Not;
using Outcome = v1::TestCaseResult;

constexpr char kSummaryLine[] = "--------------------------\n";

// Builders for a TestReport as the server fills it.
v1::FunctionResult* AddOutput(v1::TestCaseResult* test, const std::string& function,
                              const std::string& output_json) {
  v1::FunctionResult* f = test->add_functions();
  f->set_function(function);
  f->set_output_json(output_json);
  f->set_defined(true);
  return f;
}

v1::FunctionResult* AddError(v1::TestCaseResult* test, const std::string& function,
                             const std::string& type, const std::string& message) {
  v1::FunctionResult* f = test->add_functions();
  f->set_function(function);
  f->mutable_error()->set_type(type);
  f->mutable_error()->set_message(message);
  f->mutable_error()->set_traceback("Traceback (most recent call last):\n  ...");
  return f;
}

v1::TestCaseResult* AddTest(v1::RuleTestResult* rule, const std::string& name, bool expected,
                            Outcome::Outcome outcome) {
  v1::TestCaseResult* test = rule->add_tests();
  test->set_name(name);
  test->set_expected_result(expected);
  test->set_outcome(outcome);
  return test;
}

// Okta.Support.Reset: two passing tests; the server sends every function
// (out of pat's order) even for the test expecting false.
void AddPassingRule(v1::TestReport& report) {
  v1::RuleTestResult* rule = report.add_rules();
  rule->set_rule_id("Okta.Support.Reset");
  rule->set_file("rules/okta_support_reset.yml");
  rule->set_passed(true);
  v1::TestCaseResult* t1 = AddTest(rule, "Support Reset Credential", true, Outcome::OUTCOME_PASSED);
  AddOutput(t1, "alert_context", R"({"event_type":"user.account.reset_password","n":[1,2.5]})");
  AddOutput(t1, "dedup", R"("Okta Support Reset for homer@springfield.gov")");
  AddOutput(t1, "rule", "true");
  AddOutput(t1, "title", R"("Okta Support Reset for homer@springfield.gov")");
  AddOutput(t1, "destinations", R"(["SKIP"])");
  AddOutput(t1, "severity", "null");  // Returned None: no line.
  v1::TestCaseResult* t2 = AddTest(rule, "Reset by Company Admin", false, Outcome::OUTCOME_PASSED);
  AddOutput(t2, "rule", "false");
  AddOutput(t2, "title", R"("not shown for an expected false")");
  AddError(t2, "dedup", "KeyError", "'not shown either'");
}

// Okta.Login.Failed: one test errors in title, one returns the wrong value.
void AddFailingRule(v1::TestReport& report) {
  v1::RuleTestResult* rule = report.add_rules();
  rule->set_rule_id("Okta.Login.Failed");
  rule->set_file("rules/okta_failed_login.yml");
  v1::TestCaseResult* t1 = AddTest(rule, "Failed Login", true, Outcome::OUTCOME_ERROR);
  AddOutput(t1, "rule", "true");
  AddError(t1, "title", "KeyError", "'x'");
  AddOutput(t1, "dedup", R"("defaultDedupString:Okta.Login.Failed")");
  AddOutput(t1, "alert_context", "{}");
  v1::TestCaseResult* t2 = AddTest(rule, "Successful Login", false, Outcome::OUTCOME_FAILED);
  AddOutput(t2, "rule", "true");
}

void AddRuleWithoutTests(v1::TestReport& report) {
  v1::RuleTestResult* rule = report.add_rules();
  rule->set_rule_id("Okta.No.Tests");
  rule->set_file("rules/no_tests.yml");
  rule->set_passed(true);
}

std::string Print(const v1::TestReport& report, TestPrintOptions options, TestTally* tally) {
  std::ostringstream out;
  if (options.path.empty()) options.path = "rules/";
  *tally = PrintTestReport(report, options, out);
  return out.str();
}

constexpr char kPassingRuleText[] =
    "Okta.Support.Reset\n"
    "\t[PASS] Support Reset Credential\n"
    "\t\t[PASS] [rule] true\n"
    "\t\t[PASS] [title] Okta Support Reset for homer@springfield.gov\n"
    "\t\t[PASS] [dedup] Okta Support Reset for homer@springfield.gov\n"
    "\t\t[PASS] [alertContext] {\"event_type\": \"user.account.reset_password\", \"n\": [1, "
    "2.5]}\n"
    "\t\t[PASS] [destinations] [\"SKIP\"]\n"
    "\t[PASS] Reset by Company Admin\n"
    "\t\t[PASS] [rule] false\n"
    "\n";

TEST(TestReportTest, PassingRuleExactly) {
  v1::TestReport report;
  AddPassingRule(report);
  TestTally tally;
  EXPECT_EQ(Print(report, {}, &tally), std::string(kPassingRuleText) +
                                           "--------------------------\n"
                                           "Test Summary\n"
                                           "\tPath: rules/\n"
                                           "\tPassed: 1\n"
                                           "\tSkipped: 0\n"
                                           "\tFailed: 0\n"
                                           "\tInvalid: 0\n"
                                           "\tTests: 2 passed, 0 failed\n"
                                           "\n");
  EXPECT_TRUE(tally.ok());
  EXPECT_EQ(tally.passed, 1);
}

TEST(TestReportTest, FailingRuleAuxErrorAndNoTestsExactly) {
  v1::TestReport report;
  AddFailingRule(report);
  AddRuleWithoutTests(report);
  TestTally tally;
  EXPECT_EQ(Print(report, {}, &tally),
            "Okta.Login.Failed\n"
            "\t[FAIL] Failed Login\n"
            "\t\t[PASS] [rule] true\n"
            "\t\t[FAIL] [title] KeyError: 'x'\n"
            "\t\t[PASS] [dedup] defaultDedupString:Okta.Login.Failed\n"
            "\t\t[PASS] [alertContext] {}\n"
            "\t[FAIL] Successful Login\n"
            "\t\t[FAIL] [rule] true\n"
            "\n"
            "Okta.No.Tests\n"
            "\tNo tests configured for Okta.No.Tests\n"
            "\n"
            "--------------------------\n"
            "Failed Tests Summary\n"
            "\tOkta.Login.Failed\n"
            "\t\t['Failed Login:title', 'Successful Login:rule']\n"
            "\n"
            "--------------------------\n"
            "Test Summary\n"
            "\tPath: rules/\n"
            "\tPassed: 1\n"
            "\tSkipped: 0\n"
            "\tFailed: 1\n"
            "\tInvalid: 0\n"
            "\tTests: 0 passed, 2 failed\n"
            "\n");
  EXPECT_FALSE(tally.ok());
  EXPECT_EQ(tally.failed, 1);
  EXPECT_EQ(tally.passed, 1);
}

TEST(TestReportTest, RuleErrorPrintsTypeAndMessage) {
  v1::TestReport report;
  v1::RuleTestResult* rule = report.add_rules();
  rule->set_rule_id("R");
  v1::TestCaseResult* t = AddTest(rule, "boom", false, Outcome::OUTCOME_ERROR);
  AddError(t, "rule", "FunctionReturnTypeError",
           "detection [R] function [rule] returned [NoneType], expected [bool]");
  v1::TestCaseResult* mocked = AddTest(rule, "bad mock", true, Outcome::OUTCOME_ERROR);
  (void)mocked;  // Failed before any function ran.
  v1::TestCaseResult* setup = AddTest(rule, "mock setup", false, Outcome::OUTCOME_ERROR);
  AddError(setup, "mocks", "AttributeError", "module has no attribute 'get_counter'");
  TestTally tally;
  const std::string text = Print(report, {}, &tally);
  EXPECT_THAT(text, HasSubstr("\t[FAIL] mock setup\n\t\t[FAIL] [mocks] AttributeError: module has "
                              "no attribute 'get_counter'\n"));
  EXPECT_THAT(text, HasSubstr("\t[FAIL] boom\n\t\t[FAIL] [rule] FunctionReturnTypeError: detection "
                              "[R] function [rule] returned [NoneType], expected [bool]\n"));
  EXPECT_THAT(text, HasSubstr("\t[FAIL] bad mock\n\t[FAIL] mock setup\n"));
  EXPECT_THAT(text, HasSubstr("\tR\n\t\t['boom:rule', 'bad mock', 'mock setup:mocks']\n"));
  EXPECT_EQ(tally.failed, 1);
}

TEST(TestReportTest, InvalidSkippedAndWarningsCountPerDetection) {
  v1::TestReport report;
  AddPassingRule(report);
  AddFailingRule(report);
  v1::Diagnostic* d = report.add_invalid();
  d->set_file("rules/bad.yml");
  d->set_line(4);
  d->set_field("Severity");
  d->set_message("must be one of Info, Low, Medium, High, Critical");
  d = report.add_invalid();
  d->set_file("rules/bad.yml");
  d->set_line(9);
  d->set_field("Tests[0].ExpectedResult");
  d->set_message("is required");
  d = report.add_invalid();
  d->set_file("rules/syntax.py");
  d->set_line(3);
  d->set_message("SyntaxError: invalid syntax");
  d = report.add_invalid();
  d->set_file("rules/slow.yml");
  d->set_line(2);
  d->set_field("DedupPeriodMinutes");
  d->set_message("warning: values below 5 are treated as 5");
  v1::SkippedContent* s = report.add_skipped();
  s->set_analysis_type("policy");
  s->set_count(2);
  s->add_files("policies/a.yml");
  s->add_files("policies/b.yml");
  s = report.add_skipped();
  s->set_analysis_type("disabled_rule");
  s->set_count(1);
  s->add_files("rules/disabled.yml");

  TestTally tally;
  const std::string text = Print(report, {}, &tally);
  const size_t summary = text.find(kSummaryLine);
  ASSERT_NE(summary, std::string::npos);
  EXPECT_EQ(text.substr(summary),
            "--------------------------\n"
            "Warnings\n"
            "\trules/slow.yml:2: DedupPeriodMinutes: warning: values below 5 are treated as 5\n"
            "\n"
            "--------------------------\n"
            "Skipped Tests Summary\n"
            "\tpolicies/a.yml\n"
            "\t\tpolicy: not run by pantherd\n"
            "\n"
            "\tpolicies/b.yml\n"
            "\t\tpolicy: not run by pantherd\n"
            "\n"
            "\trules/disabled.yml\n"
            "\t\trule: disabled (--skip-disabled-tests)\n"
            "\n"
            "--------------------------\n"
            "Failed Tests Summary\n"
            "\tOkta.Login.Failed\n"
            "\t\t['Failed Login:title', 'Successful Login:rule']\n"
            "\n"
            "--------------------------\n"
            "Invalid Tests Summary\n"
            "\trules/bad.yml\n"
            "\t\trules/bad.yml:4: Severity: must be one of Info, Low, Medium, High, Critical\n"
            "\t\trules/bad.yml:9: Tests[0].ExpectedResult: is required\n"
            "\n"
            "\trules/syntax.py\n"
            "\t\trules/syntax.py:3: SyntaxError: invalid syntax\n"
            "\n"
            "--------------------------\n"
            "Test Summary\n"
            "\tPath: rules/\n"
            "\tPassed: 1\n"
            "\tSkipped: 3\n"
            "\tFailed: 1\n"
            "\tInvalid: 2\n"
            "\tTests: 2 passed, 2 failed\n"
            "\n");
  EXPECT_EQ(tally.passed, 1);
  EXPECT_EQ(tally.failed, 1);
  EXPECT_EQ(tally.invalid, 2);
  EXPECT_EQ(tally.skipped, 3);
  EXPECT_EQ(tally.warnings, 1);
  EXPECT_FALSE(tally.ok());
}

TEST(TestReportTest, OnlyInvalidFailsAndWarningsAlone) {
  v1::TestReport report;
  AddPassingRule(report);
  v1::Diagnostic* d = report.add_invalid();
  d->set_file("rules/x.yml");
  d->set_message("warning: InlineFilters are not applied");
  TestTally tally = TallyTestReport(report, 0);
  EXPECT_TRUE(tally.ok());
  EXPECT_EQ(tally.warnings, 1);
  d = report.add_invalid();
  d->set_message("Conflicting AnalysisID: [x]");  // No file.
  tally = TallyTestReport(report, 0);
  EXPECT_FALSE(tally.ok());
  EXPECT_EQ(tally.invalid, 1);
}

TEST(TestReportTest, ShowFailuresOnlyExactly) {
  v1::TestReport report;
  AddPassingRule(report);
  AddRuleWithoutTests(report);
  AddFailingRule(report);
  // A second failing rule that sorts first.
  v1::RuleTestResult* rule = report.add_rules();
  rule->set_rule_id("AWS.Root");
  AddOutput(AddTest(rule, "passes", true, Outcome::OUTCOME_PASSED), "rule", "true");
  AddOutput(AddTest(rule, "fails", true, Outcome::OUTCOME_FAILED), "rule", "false");
  TestPrintOptions options;
  options.show_failures_only = true;
  TestTally tally;
  EXPECT_EQ(Print(report, options, &tally),
            "\tNo tests configured for Okta.No.Tests\n"
            "AWS.Root\n"
            "\t[FAIL] fails\n"
            "\t\t[FAIL] [rule] false\n"
            "\n"
            "Okta.Login.Failed\n"
            "\t[FAIL] Failed Login\n"
            "\t\t[PASS] [rule] true\n"
            "\t\t[FAIL] [title] KeyError: 'x'\n"
            "\t\t[PASS] [dedup] defaultDedupString:Okta.Login.Failed\n"
            "\t\t[PASS] [alertContext] {}\n"
            "\n"
            "\t[FAIL] Successful Login\n"
            "\t\t[FAIL] [rule] true\n"
            "\n"
            "--------------------------\n"
            "Failed Tests Summary\n"
            "\tAWS.Root\n"
            "\t\t['fails:rule']\n"
            "\n"
            "\tOkta.Login.Failed\n"
            "\t\t['Failed Login:title', 'Successful Login:rule']\n"
            "\n"
            "--------------------------\n"
            "Test Summary\n"
            "\tPath: rules/\n"
            "\tPassed: 2\n"
            "\tSkipped: 0\n"
            "\tFailed: 2\n"
            "\tInvalid: 0\n"
            "\tTests: 3 passed, 3 failed\n"
            "\n");
}

TEST(TestReportTest, MinimumTestsAsPat) {
  v1::TestReport report;
  AddPassingRule(report);  // Two tests: one true, one false.
  AddRuleWithoutTests(report);
  v1::RuleTestResult* rule = report.add_rules();
  rule->set_rule_id("Only.Positive");
  AddOutput(AddTest(rule, "a", true, Outcome::OUTCOME_PASSED), "rule", "true");
  AddOutput(AddTest(rule, "b", true, Outcome::OUTCOME_PASSED), "rule", "true");

  TestPrintOptions options;
  options.minimum_tests = 2;
  TestTally tally;
  const std::string text = Print(report, options, &tally);
  EXPECT_THAT(text, HasSubstr("\tOkta.No.Tests\n\t\t['Insufficient test coverage: 2 tests required "
                              "but only 0 found']\n\n"));
  EXPECT_THAT(text, HasSubstr("\tOnly.Positive\n\t\t['Insufficient test coverage: expected at "
                              "least one positive and one negative test']\n\n"));
  EXPECT_THAT(text, Not(HasSubstr("\tOkta.Support.Reset\n\t\t[")));
  EXPECT_EQ(tally.passed, 1);
  EXPECT_EQ(tally.failed, 2);

  // One test suffices for --minimum-tests 1, and no positive/negative rule.
  options.minimum_tests = 1;
  Print(report, options, &tally);
  EXPECT_EQ(tally.failed, 1);  // Only the rule without tests.
  EXPECT_EQ(TallyTestReport(report, 0).failed, 0);
}

TEST(TestReportTest, ColorsOnlyWhenAsked) {
  v1::TestReport report;
  AddFailingRule(report);
  TestPrintOptions options;
  TestTally tally;
  EXPECT_THAT(Print(report, options, &tally), Not(HasSubstr("\x1b[")));
  options.color = true;
  const std::string text = Print(report, options, &tally);
  EXPECT_THAT(text, HasSubstr("\t[\x1b[31mFAIL\x1b[0m] Failed Login\n"));
  EXPECT_THAT(text, HasSubstr("\t\t[\x1b[32mPASS\x1b[0m] [rule] true\n"));
}

// Security row 9: rule ids, test names, outputs and error messages come from
// the server (and from rule code); they are printed with control and
// bidirectional characters escaped, while the report keeps its own line
// breaks and tabs.
TEST(TestReportTest, ServerTextCannotDriveTheTerminal) {
  const std::string attack = "\x1b]0;pwned\x07 \x1b[2J \u202Eevil";
  v1::TestReport report;
  v1::RuleTestResult* rule = report.add_rules();
  rule->set_rule_id("R" + attack);
  v1::TestCaseResult* t = AddTest(rule, "t" + attack, true, Outcome::OUTCOME_FAILED);
  AddError(t, "title", "KeyError", attack);
  AddOutput(t, "rule", "true");
  v1::Diagnostic* warning = report.add_invalid();
  warning->set_file("rules/x.yml" + attack);
  warning->set_message("warning: " + attack);
  v1::Diagnostic* invalid = report.add_invalid();
  invalid->set_file("rules/y.yml" + attack);
  invalid->set_message(attack);
  for (bool failures_only : {false, true}) {
    TestPrintOptions options;
    options.show_failures_only = failures_only;
    TestTally tally;
    const std::string text = Print(report, options, &tally);
    EXPECT_EQ(text.find('\x1b'), std::string::npos) << text;
    EXPECT_EQ(text.find('\x07'), std::string::npos) << text;
    EXPECT_EQ(text.find("\u202E"), std::string::npos) << text;
    EXPECT_THAT(text, HasSubstr("\t\t[FAIL] [title] KeyError: \\x1b]0;pwned\\x07 \\x1b[2J "
                                "\\u202eevil\n"));
    EXPECT_THAT(text, HasSubstr("\t[FAIL] t\\x1b]0;pwned"));
  }
}

TEST(TestReportTest, EmptyReport) {
  v1::TestReport report;
  EXPECT_TRUE(IsEmptyReport(report));
  report.add_skipped()->set_analysis_type("pack");
  EXPECT_FALSE(IsEmptyReport(report));
}

TEST(FunctionOutputTest, AsPatPrintsIt) {
  EXPECT_EQ(FormatFunctionOutput("true"), "true");
  EXPECT_EQ(FormatFunctionOutput("\"plain text\""), "plain text");
  EXPECT_EQ(FormatFunctionOutput(R"("a \"q\" \\ \u00e9 \ud83d\ude00 /\/")"),
            "a \"q\" \\ \xc3\xa9 \xf0\x9f\x98\x80 //");
  EXPECT_EQ(FormatFunctionOutput("\"\""), "");  // An empty string is still printed.
  EXPECT_EQ(FormatFunctionOutput(""), std::nullopt);
  EXPECT_EQ(FormatFunctionOutput("null"), std::nullopt);
  EXPECT_EQ(FormatFunctionOutput(R"(["SKIP"])"), R"(["SKIP"])");
  EXPECT_EQ(FormatFunctionOutput("[ 1 ,2, [] , {} ]"), "[1, 2, [], {}]");
  EXPECT_EQ(FormatFunctionOutput(R"({"a":{"b":[true,null,-1.5e3]},"c":"d"})"),
            R"({"a": {"b": [true, null, -1.5e3]}, "c": "d"})");
  // Non-ASCII inside structures is escaped like json.dumps(ensure_ascii=True).
  EXPECT_EQ(FormatFunctionOutput("{\"city\":\"Z\xc3\xbcrich\",\"e\":\"\\ud83d\\ude00\\n\"}"),
            R"({"city": "Z\u00fcrich", "e": "\ud83d\ude00\n"})");
  EXPECT_EQ(FormatFunctionOutput("{\"x\": NaN, \"y\": -Infinity}"),
            "{\"x\": NaN, \"y\": -Infinity}");
  // Not JSON: shown as sent.
  EXPECT_EQ(FormatFunctionOutput("{oops"), "{oops");
  EXPECT_EQ(FormatFunctionOutput("[1,]"), "[1,]");
}

TEST(FunctionOutputTest, Labels) {
  EXPECT_EQ(FunctionLabel("alert_context"), "alertContext");
  EXPECT_EQ(FunctionLabel("rule"), "rule");
  EXPECT_EQ(FunctionLabel("unique"), "unique");
  EXPECT_EQ(FunctionLabel("policy"), "policy");
}

TEST(DiagnosticTest, Format) {
  v1::Diagnostic d;
  d.set_message("bad");
  EXPECT_EQ(FormatDiagnostic(d), "bad");
  d.set_field("Severity");
  EXPECT_EQ(FormatDiagnostic(d), "Severity: bad");
  d.set_line(3);
  EXPECT_EQ(FormatDiagnostic(d), "line 3: Severity: bad");
  d.set_file("a.yml");
  EXPECT_EQ(FormatDiagnostic(d), "a.yml:3: Severity: bad");
  EXPECT_FALSE(IsWarningDiagnostic(d));
  d.set_message("warning: odd");
  EXPECT_TRUE(IsWarningDiagnostic(d));
}

TEST(TestReportTest, SummaryQuotesLikePython) {
  v1::TestReport report;
  v1::RuleTestResult* rule = report.add_rules();
  rule->set_rule_id("Q");
  AddOutput(AddTest(rule, "it's", true, Outcome::OUTCOME_FAILED), "rule", "false");
  AddOutput(AddTest(rule, "say \"hi\" it's", true, Outcome::OUTCOME_FAILED), "rule", "false");
  TestTally tally;
  EXPECT_THAT(Print(report, {}, &tally),
              HasSubstr("\t\t[\"it's:rule\", 'say \"hi\" it\\'s:rule']\n"));
}

}  // namespace
}  // namespace pantherd::client
