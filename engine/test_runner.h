// File: engine/test_runner.h
//
// Runs the unit tests (`Tests:` in a rule's spec) of loaded rules as
// `panther_analysis_tool test` does (docs/rule-contract.md, "Unit tests" under
// "Rule functions and tests", is the contract), and reports them as
// v1::RuleTestResult / v1::TestReport.
//
//   v1::TestReport report = RunTests(runtime, *runtime.loaded_set(), {});
//   // report.tests_passed(), report.rules(i).tests(j).functions(k) ...
//
// One test:
//   1. The event is PantherEvent(Log) with the enabled data model of the
//      Log's top-level `p_log_type` (and only that; none without it, and
//      none for a scheduled rule, whose Log is a row of its query).
//   2. The Mocks patch names of the rule's module only, each with
//      MagicMock(return_value=<returnValue>), through
//      unittest.mock.patch.multiple for the duration of the test. A name the
//      module does not bind fails the test before anything runs.
//   3. The rule runs in RunMode::kTest (every defined function runs) with
//      sys.stdout and sys.stderr captured.
//   4. Outcome: ExpectedResult true passes only if rule() returned True and
//      no function raised; false passes iff rule() returned exactly False
//      (other functions' errors do not count). OUTCOME_ERROR when rule()
//      raised or returned a non-bool, when a function raised (expected true),
//      or when the test could not run (bad mocks, a Log that is not a JSON
//      object); OUTCOME_FAILED when rule() cleanly returned the wrong bool.
//      A rule with CreateAlert: false only reports, and is only judged on,
//      rule and alert_context (pat prints only those lines for it).
//
// Reported functions (TestCaseResult.functions) are exactly the lines pat
// prints, in pat's order: rule (always); then, for tests expecting true,
// each of title, dedup, alert_context, description, reference, severity,
// runbook, destinations, unique that has an output or an error. `function`
// is the Python name ("alert_context", which pat prints as alertContext);
// `output_json` is as described for FunctionOutcome (engine/rule_runner.h):
// print a JSON string decoded and any other JSON as it is to get pat's line
// (`[PASS] [title] Multiple Failed Logins for x`, `[PASS] [rule] true`). A
// test that could not run has one FunctionResult named "mocks" or "event"
// holding the error.
//
// Threading: owning thread of `runtime` only (see engine/python_runtime.h).

#ifndef PANTHERD_ENGINE_TEST_RUNNER_H_
#define PANTHERD_ENGINE_TEST_RUNNER_H_

#include <string>
#include <vector>

#include "engine/python_runtime.h"
#include "pantherd/v1/rules.pb.h"

namespace pantherd::engine {

// What one rule's test run printed to stdout/stderr, one entry per test (in
// the order of RuleTestResult.tests; "" when nothing was printed). pat
// prints it before the test's result line.
using CapturedOutput = std::vector<std::string>;

// Runs every test of `rule`. `captured`, when not null, receives the output
// printed by each test. Never throws.
v1::RuleTestResult RunRuleTests(PythonRuntime& runtime, const LoadedSet& set,
                                const LoadedRule& rule, CapturedOutput* captured = nullptr);

struct RunTestsOptions {
  // Rules to test; empty means every rule of the set. Unknown IDs are
  // reported in TestReport.invalid ("no rule [id] in the loaded set").
  std::vector<std::string> rule_ids;
  // Rules whose Enabled is false are not tested; they are listed in
  // TestReport.skipped under analysis_type "disabled_rule".
  bool skip_disabled = false;
};

// Runs the tests of the rules of `set` selected by `options`, in set order.
// tests_passed/tests_failed count test cases (OUTCOME_ERROR counts as
// failed); `invalid` is set.invalid (rules that did not load, with their
// diagnostics) plus rule_ids that are not in the set at all (a requested rule
// that failed to load is not reported a second time); `skipped` is set.skipped (plus
// disabled rules, see above). `captured`, when not null, receives each
// rule's CapturedOutput in the order of TestReport.rules. Never throws.
v1::TestReport RunTests(PythonRuntime& runtime, const LoadedSet& set,
                        const RunTestsOptions& options,
                        std::vector<CapturedOutput>* captured = nullptr);

}  // namespace pantherd::engine

#endif  // PANTHERD_ENGINE_TEST_RUNNER_H_
