// File: engine/test_runner.cc

#include "engine/test_runner.h"

#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"
#include "engine/event.h"
#include "engine/rule_runner.h"

namespace pantherd::engine {

namespace py = pybind11;

namespace {

// pat's print order of the function lines.
constexpr RuleFunction kReportOrder[] = {
    RuleFunction::kRule,         RuleFunction::kTitle,       RuleFunction::kDedup,
    RuleFunction::kAlertContext, RuleFunction::kDescription, RuleFunction::kReference,
    RuleFunction::kSeverity,     RuleFunction::kRunbook,     RuleFunction::kDestinations,
    RuleFunction::kUnique,
};

void SetupError(v1::TestCaseResult* result, absl::string_view function, v1::RuleError error) {
  result->set_outcome(v1::TestCaseResult::OUTCOME_ERROR);
  v1::FunctionResult* f = result->add_functions();
  f->set_function(std::string(function));
  *f->mutable_error() = std::move(error);
}

// Stops a mock patcher and restores captured streams on every path.
class TestScope {
 public:
  TestScope(const PythonRuntime& runtime, const LoadedRule& rule)
      : runtime_(runtime), rule_(rule) {}
  ~TestScope() {
    try {
      StopCapture();
      if (patcher_) {
        patcher_.attr("stop")();
        Reseal();  // the rule's own functions are back
      }
    } catch (const std::exception&) {
      // Nothing sensible left to do; the next test starts from a clean scope.
    }
  }
  // The mocks are pantherd's own change to the rule's module, not tampering.
  void set_patcher(py::object patcher) {
    patcher_ = std::move(patcher);
    Reseal();
  }
  void StartCapture() { capture_ = runtime_.support().attr("start_capture")(); }
  std::string StopCapture() {
    if (!capture_) return "";
    py::object text = runtime_.support().attr("stop_capture")(capture_);
    capture_ = py::object();
    py::object bytes = text.attr("encode")("utf-8", "backslashreplace");
    return std::string(PyBytes_AsString(bytes.ptr()),
                       static_cast<size_t>(PyBytes_Size(bytes.ptr())));
  }

 private:
  void Reseal() {
    if (rule_.integrity != nullptr) rule_.integrity->Reseal(rule_.seal);
  }

  const PythonRuntime& runtime_;
  const LoadedRule& rule_;
  py::object patcher_;
  py::object capture_;
};

v1::RuleError InternalError(absl::string_view message) {
  v1::RuleError error;
  error.set_type("InternalError");
  error.set_message(std::string(message));
  return error;
}

v1::TestCaseResult RunOneTest(PythonRuntime& runtime, const LoadedSet& set, const LoadedRule& rule,
                              const RuleTest& test, std::string* output) {
  v1::TestCaseResult result;
  result.set_name(test.name);
  result.set_expected_result(test.expected_result);

  absl::StatusOr<std::shared_ptr<const EventDocument>> document = ParseEvent(test.log_json);
  if (!document.ok()) {
    v1::RuleError error;
    error.set_type("InvalidEvent");
    error.set_message(absl::StrCat("Invalid event: ", document.status().message()));
    SetupError(&result, "event", std::move(error));
    return result;
  }
  std::shared_ptr<const DataModel> model;
  // pat gives a scheduled rule's tests no data model.
  std::optional<std::string_view> log_type;
  if (!rule.spec.scheduled) log_type = FindTopLevelString(**document, "p_log_type");
  if (log_type.has_value()) {
    model = set.DataModelFor(absl::string_view(log_type->data(), log_type->size()));
  }

  RuleOutcome outcome;
  try {
    py::object event = MakePantherEvent(*document, model);
    TestScope scope(runtime, rule);
    if (!test.mocks.empty()) {
      py::list mocks;
      for (const TestMock& mock : test.mocks) {
        mocks.append(
            py::make_tuple(mock.object_name, runtime.json_loads()(mock.return_value_json)));
      }
      try {
        scope.set_patcher(runtime.support().attr("start_mocks")(rule.module, mocks));
      } catch (py::error_already_set& e) {
        SetupError(&result, "mocks", runtime.ToRuleError(e.type(), e.value(), e.trace()));
        return result;
      }
    }
    scope.StartCapture();
    outcome = RunRule(runtime, rule, event, RunMode::kTest);
    *output = scope.StopCapture();
  } catch (const py::error_already_set& e) {
    SetupError(&result, "event", InternalError(e.what()));
    return result;
  } catch (const std::exception& e) {
    SetupError(&result, "event", InternalError(e.what()));
    return result;
  }

  const bool create_alert = rule.spec.rule.create_alert();
  auto reported = [&](RuleFunction f) {
    if (f == RuleFunction::kRule) return true;
    if (!test.expected_result) return false;
    return create_alert || f == RuleFunction::kAlertContext;
  };
  bool errored = false;
  for (RuleFunction f : kReportOrder) {
    const FunctionOutcome& fo = outcome.function(f);
    if (!reported(f)) continue;
    if (fo.error.has_value()) errored = true;
    if (!fo.output_json.has_value() && !fo.error.has_value()) continue;
    v1::FunctionResult* line = result.add_functions();
    line->set_function(std::string(RuleFunctionName(f)));
    line->set_defined(fo.defined);
    if (fo.error.has_value()) {
      *line->mutable_error() = *fo.error;
    } else {
      line->set_output_json(*fo.output_json);
    }
  }

  using Outcome = v1::TestCaseResult;
  if (test.expected_result) {
    if (outcome.matched && !errored) {
      result.set_outcome(Outcome::OUTCOME_PASSED);
    } else if (outcome.rule_error() || outcome.matched) {
      result.set_outcome(Outcome::OUTCOME_ERROR);
    } else {
      result.set_outcome(Outcome::OUTCOME_FAILED);
    }
  } else {
    if (outcome.returned_false()) {
      result.set_outcome(Outcome::OUTCOME_PASSED);
    } else if (outcome.rule_error()) {
      result.set_outcome(Outcome::OUTCOME_ERROR);
    } else {
      result.set_outcome(Outcome::OUTCOME_FAILED);
    }
  }
  return result;
}

}  // namespace

v1::RuleTestResult RunRuleTests(PythonRuntime& runtime, const LoadedSet& set,
                                const LoadedRule& rule, CapturedOutput* captured) {
  v1::RuleTestResult result;
  result.set_rule_id(rule.id());
  result.set_file(rule.spec.spec_path);
  bool passed = true;
  for (const RuleTest& test : rule.spec.tests) {
    std::string output;
    v1::TestCaseResult test_result = RunOneTest(runtime, set, rule, test, &output);
    test_result.set_output(output);
    if (test_result.outcome() != v1::TestCaseResult::OUTCOME_PASSED) passed = false;
    *result.add_tests() = std::move(test_result);
    if (captured != nullptr) captured->push_back(std::move(output));
  }
  result.set_passed(passed);
  return result;
}

v1::TestReport RunTests(PythonRuntime& runtime, const LoadedSet& set,
                        const RunTestsOptions& options, std::vector<CapturedOutput>* captured) {
  v1::TestReport report;
  for (const v1::Diagnostic& d : set.invalid) *report.add_invalid() = d;
  for (const v1::SkippedContent& s : set.skipped) *report.add_skipped() = s;

  std::vector<const LoadedRule*> selected;
  if (options.rule_ids.empty()) {
    for (const LoadedRule& rule : set.rules) selected.push_back(&rule);
  } else {
    for (const std::string& id : options.rule_ids) {
      if (const LoadedRule* rule = set.FindRule(id)) {
        selected.push_back(rule);
      } else if (set.failed_rule_ids.contains(id)) {
        continue;  // Reported once, in `invalid`, with why it did not load.
      } else {
        v1::Diagnostic* d = report.add_invalid();
        d->set_message(absl::StrCat("no rule [", id, "] in the loaded set"));
      }
    }
  }

  v1::SkippedContent disabled;
  disabled.set_analysis_type("disabled_rule");
  int passed = 0;
  int failed = 0;
  for (const LoadedRule* rule : selected) {
    if (options.skip_disabled && !rule->spec.rule.enabled()) {
      disabled.set_count(disabled.count() + 1);
      disabled.add_files(rule->spec.spec_path);
      continue;
    }
    CapturedOutput output;
    v1::RuleTestResult result = RunRuleTests(runtime, set, *rule, &output);
    for (const v1::TestCaseResult& t : result.tests()) {
      if (t.outcome() == v1::TestCaseResult::OUTCOME_PASSED) {
        ++passed;
      } else {
        ++failed;
      }
    }
    *report.add_rules() = std::move(result);
    if (captured != nullptr) captured->push_back(std::move(output));
  }
  if (disabled.count() > 0) *report.add_skipped() = std::move(disabled);
  report.set_tests_passed(passed);
  report.set_tests_failed(failed);
  return report;
}

}  // namespace pantherd::engine
