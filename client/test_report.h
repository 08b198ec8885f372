// Prints a TestReport the way `panther_analysis_tool test` (pat v1.7.0,
// main.py _print_test_result / print_summary) prints its results, so that pat
// users read `pantherctl test` at a glance:
//
//   Okta.Support.Reset
//   	[PASS] Support Reset Credential
//   		[PASS] [rule] true
//   		[PASS] [title] Okta Support Reset Password or MFA for user homer@springfield.gov
//   		[PASS] [dedup] Okta Support Reset Password or MFA for user homer@springfield.gov
//   		[PASS] [alertContext] {"event_type": "user.account.reset_password", "actor": "x"}
//   	[FAIL] Reset by Company Admin
//   		[FAIL] [rule] true
//
//   --------------------------
//   Failed Tests Summary
//   	Okta.Support.Reset
//   		['Reset by Company Admin:rule']
//
//   --------------------------
//   Test Summary
//   	Path: rules/
//   	Passed: 0
//   	Skipped: 0
//   	Failed: 1
//   	Invalid: 0
//
// Per rule: its id, one line per test ("\t[PASS] name" / "\t[FAIL] name"),
// then one line per function that returned a value or raised, in pat's order
// and with pat's labels: rule, title, dedup, alertContext, description,
// reference, severity, runbook, destinations, unique (functions with other
// names, such as a failed "mocks" setup, follow in the server's order).
// Tests with ExpectedResult false show only the [rule] line of pat's
// functions, as in pat; the server leaves out what pat leaves out for
// CreateAlert: false rules. A function line is
//   [FAIL] [label] Type: message    the function raised (RuleError);
//   [FAIL] [rule] <output>          rule() returned the opposite of ExpectedResult;
//   [PASS] [label] <output>         otherwise.
// <output> is FunctionResult.output_json shown as pat shows it: a JSON string
// unquoted, anything else re-encoded as Python's json.dumps does (", " and
// ": " separators, non-ASCII as \uXXXX); a "null" or empty output prints no
// line. A rule without tests prints "\tNo tests configured for <ID>"; a blank
// line follows each rule.
//
// Whether a rule failed is derived from its tests (an outcome other than
// PASSED, a failing function line) and from --minimum-tests, never from
// RuleTestResult.passed, exactly as pat's failed-tests list is built. The
// entries of "Failed Tests Summary" are pat's: "<test>:<label>" per failing
// function, the test name when a test failed without one, and pat's
// "Insufficient test coverage: ..." messages, printed as a Python list.
//
// The summary blocks come in pat's order: Skipped, Failed, Invalid, then
// Test Summary, each behind a "--------------------------" line with entries
// "\t<heading>\n\t\t<detail>\n" and a blank line. pantherctl adds a "Warnings"
// block first for diagnostics whose message starts with "warning: " (they do
// not fail anything). Invalid entries are one per file, with one detail line
// per Diagnostic "file:line: field: message" (empty parts left out).
// Skipped entries are one per file of TestReport.skipped: content pantherd
// does not run (a policy, a pack, ...) and, with --skip-disabled-tests,
// disabled rules, which the server lists under analysis_type
// "disabled_rule".
//
// Counts are per detection, as pat's: Passed = rules reported without a
// failure, Failed = rules with one, Invalid = files with an error
// diagnostic, Skipped = skipped files (SkippedContent.count when it lists no
// files). pantherctl adds "\tTests: P passed, F failed" (test cases, from
// the rules' outcomes) and, when there are any, "\tImport errors: N" (error
// diagnostics of a ModuleNotFoundError or ImportError at load). TestTally
// holds all of them, and `--output json` prints them as TestSummaryJson.
//
// With show_failures_only, as pat's --show-failures-only: only failing tests
// are printed, grouped under their rule ids sorted, each followed by a blank
// line; "No tests configured" lines still print (without the id, as pat).
#ifndef PANTHERD_CLIENT_TEST_REPORT_H_
#define PANTHERD_CLIENT_TEST_REPORT_H_

#include <optional>
#include <ostream>
#include <string>

#include "absl/strings/string_view.h"
#include "pantherd/v1/rules.pb.h"

namespace pantherd::client {

struct TestPrintOptions {
  // Shown as "Path:" in the Test Summary: the PATH the user gave.
  std::string path;
  // pat's --minimum-tests: rules with fewer tests fail; above 1 they also
  // need a test expecting true and one expecting false.
  int minimum_tests = 0;
  bool show_failures_only = false;
  // Wrap PASS and FAIL in ANSI green and red (only for terminals).
  bool color = false;
};

// What the printed report amounts to, per detection.
struct TestTally {
  int passed = 0;
  int failed = 0;
  int invalid = 0;
  int skipped = 0;
  int warnings = 0;
  // Test cases: PASSED outcomes, and all others.
  int tests_passed = 0;
  int tests_failed = 0;
  // Error diagnostics of a module that could not be imported.
  int import_errors = 0;
  // The exit status of pat test: a failure or an invalid spec.
  bool ok() const { return failed == 0 && invalid == 0; }
};

// True when `report` has nothing at all: no rule, no diagnostic, nothing
// skipped (pat: "Nothing to test in PATH", printed by the caller).
bool IsEmptyReport(const pantherd::v1::TestReport& report);

// Prints `report` as described in the file comment and returns its tally.
TestTally PrintTestReport(const pantherd::v1::TestReport& report, const TestPrintOptions& options,
                          std::ostream& out);

// Counts `report` as PrintTestReport would, without printing.
TestTally TallyTestReport(const pantherd::v1::TestReport& report, int minimum_tests);

// `tally` as one JSON object, the "summary" of `pantherctl --output json
// test`, with the same counts as the table: {"path", "passed", "skipped",
// "failed", "invalid", "warnings", "testsPassed", "testsFailed",
// "importErrors"}. `path` is the PATH the user gave.
std::string TestSummaryJson(const TestTally& tally, absl::string_view path);

// pat's label of the rule function `function` ("alert_context" ->
// "alertContext"); other names are returned unchanged.
std::string FunctionLabel(absl::string_view function);

// FunctionResult.output_json as pat prints it (see the file comment);
// nullopt for an empty or "null" output. Text that is not valid JSON is
// returned unchanged.
std::optional<std::string> FormatFunctionOutput(absl::string_view output_json);

// One Diagnostic as "file:line: field: message", leaving out an empty file,
// a zero line and an empty field.
std::string FormatDiagnostic(const pantherd::v1::Diagnostic& diagnostic);

// True if the diagnostic is a warning: its message starts with "warning: ".
bool IsWarningDiagnostic(const pantherd::v1::Diagnostic& diagnostic);

}  // namespace pantherd::client

#endif  // PANTHERD_CLIENT_TEST_REPORT_H_
