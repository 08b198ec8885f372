#include "engine/test_report_merge.h"

#include "absl/status/statusor.h"
#include "engine/analysis_spec.h"

namespace pantherd::engine {

void MergeTestReport(v1::TestReport& into, v1::TestReport& part) {
  for (v1::RuleTestResult& rule : *part.mutable_rules()) into.add_rules()->Swap(&rule);
  into.set_tests_passed(into.tests_passed() + part.tests_passed());
  into.set_tests_failed(into.tests_failed() + part.tests_failed());
  for (v1::Diagnostic& d : *part.mutable_invalid()) {
    bool seen = false;
    for (const v1::Diagnostic& e : into.invalid()) {
      if (e.file() == d.file() && e.line() == d.line() && e.field() == d.field() &&
          e.message() == d.message()) {
        seen = true;
        break;
      }
    }
    if (!seen) into.add_invalid()->Swap(&d);
  }
  for (v1::SkippedContent& s : *part.mutable_skipped()) {
    bool seen = false;
    for (const v1::SkippedContent& e : into.skipped())
      seen = seen || e.analysis_type() == s.analysis_type();
    if (!seen) into.add_skipped()->Swap(&s);
  }
}

void AddWorkerFailedRule(v1::TestReport& report, const std::string& rule_id,
                         const std::vector<std::string>& test_names, const std::string& type,
                         const std::string& message) {
  v1::RuleTestResult* rule = report.add_rules();
  rule->set_rule_id(rule_id);
  rule->set_passed(false);
  std::vector<std::string> names = test_names;
  if (names.empty()) names.push_back("worker");
  for (const std::string& name : names) {
    v1::TestCaseResult* test = rule->add_tests();
    test->set_name(name);
    test->set_outcome(v1::TestCaseResult::OUTCOME_ERROR);
    v1::FunctionResult* function = test->add_functions();
    function->set_function("rule");
    function->set_defined(true);
    function->mutable_error()->set_type(type);
    function->mutable_error()->set_message(message);
  }
  report.set_tests_failed(report.tests_failed() + static_cast<int32_t>(names.size()));
}

void AddInvalidMessage(v1::TestReport& report, const std::string& message) {
  report.add_invalid()->set_message(message);
}

absl::flat_hash_map<std::string, std::vector<std::string>> TestNamesByRule(
    const std::vector<v1::AnalysisFile>& files) {
  absl::flat_hash_map<std::string, std::vector<std::string>> names;
  std::vector<v1::Diagnostic> ignored;
  absl::StatusOr<AnalysisSet> set = LoadAnalysisFiles(files, &ignored);
  if (!set.ok()) return names;
  for (const RuleSpec& rule : set->rules) {
    std::vector<std::string>& tests = names[rule.rule.id()];
    for (const RuleTest& test : rule.tests) tests.push_back(test.name);
  }
  return names;
}

}  // namespace pantherd::engine
