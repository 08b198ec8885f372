// File: engine/rule_runner.cc

#include "engine/rule_runner.h"

#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace pantherd::engine {

namespace py = pybind11;

namespace {

constexpr char kSeverityTypes[] = "['INFO', 'LOW', 'MEDIUM', 'HIGH', 'CRITICAL']";

std::string Utf8(const py::handle& obj) {
  py::object bytes = py::str(obj).attr("encode")("utf-8", "backslashreplace");
  return std::string(PyBytes_AsString(bytes.ptr()), static_cast<size_t>(PyBytes_Size(bytes.ptr())));
}

std::string TypeName(const py::handle& obj) {
  return Utf8(py::type::handle_of(obj).attr("__name__"));
}

v1::RuleError MakeError(absl::string_view type, absl::string_view message) {
  v1::RuleError error;
  error.set_type(std::string(type));
  error.set_message(std::string(message));
  return error;
}

std::string ReturnTypeMessage(const std::string& rule_id, RuleFunction f, const py::handle& value,
                              absl::string_view expected) {
  return absl::StrCat("detection [", rule_id, "] function [", RuleFunctionName(f), "] returned [",
                      TypeName(value), "], expected ", expected);
}

// Panther's severity names, upper-case, or SEVERITY_UNSPECIFIED.
v1::Severity ParseUpperSeverity(absl::string_view s) {
  if (s == "INFO") return v1::SEVERITY_INFO;
  if (s == "LOW") return v1::SEVERITY_LOW;
  if (s == "MEDIUM") return v1::SEVERITY_MEDIUM;
  if (s == "HIGH") return v1::SEVERITY_HIGH;
  if (s == "CRITICAL") return v1::SEVERITY_CRITICAL;
  return v1::SEVERITY_UNSPECIFIED;
}

// Runs the functions of one rule on one event.
class Runner {
 public:
  Runner(PythonRuntime& runtime, const LoadedRule& rule, const py::object& event)
      : rt_(runtime), rule_(rule), spec_(rule.spec.rule), event_(event) {}

  RuleOutcome Run(RunMode mode);

 private:
  FunctionOutcome& Out(RuleFunction f) { return out_.functions[static_cast<int>(f)]; }

  // Calls the module's function `f` through `post` (which receives the
  // returned value and produces the call's result, inside the time limit).
  CallResult Call(RuleFunction f, const std::function<py::object(py::object)>& post) {
    FunctionOutcome& fo = Out(f);
    fo.called = true;
    const std::string name(RuleFunctionName(f));
    CallResult call = rt_.CallRuleCode(name, [&]() -> py::object {
      py::object value = rule_.module.attr(name.c_str())(event_);
      return post(std::move(value));
    });
    if (call.timed_out) out_.timed_out = true;
    if (call.error.has_value()) fo.error = call.error;
    return call;
  }

  std::string Dumps(const py::handle& value) { return Utf8(rt_.json_dumps()(value)); }

  // repr() of the exception of `call`, or Type('message') for a synthesized error.
  std::string ErrorRepr(const CallResult& call, const v1::RuleError& error) {
    if (call.exception && !call.exception.is_none()) return Utf8(py::repr(call.exception));
    return absl::StrCat(error.type(), "(", Utf8(py::repr(py::str(error.message()))), ")");
  }

  void RunRuleFunction();
  // title, description, reference, runbook, dedup: a str, truncated. Returns
  // the output (None when it failed).
  py::object RunStringFunction(RuleFunction f);
  void RunSeverity();
  void RunDestinations();
  void RunDedup(const py::object& title_output, bool title_failed);
  void RunAlertContext();
  void RunUnique();

  PythonRuntime& rt_;
  const LoadedRule& rule_;
  const v1::Rule& spec_;
  const py::object& event_;
  RuleOutcome out_;
};

void Runner::RunRuleFunction() {
  bool wrong_type = false;
  std::string wrong_type_message;
  CallResult call = Call(RuleFunction::kRule, [&](py::object value) {
    if (!PyBool_Check(value.ptr())) {
      wrong_type = true;
      wrong_type_message = ReturnTypeMessage(spec_.id(), RuleFunction::kRule, value, "[bool]");
    }
    return value;
  });
  FunctionOutcome& fo = Out(RuleFunction::kRule);
  if (call.error.has_value()) return;
  if (wrong_type) {
    fo.error = MakeError("FunctionReturnTypeError", wrong_type_message);
    return;
  }
  out_.matched = call.value.ptr() == Py_True;
  fo.output_json = out_.matched ? "true" : "false";
}

py::object Runner::RunStringFunction(RuleFunction f) {
  bool wrong_type = false;
  std::string wrong_type_message;
  CallResult call = Call(f, [&](py::object value) -> py::object {
    if (!PyUnicode_Check(value.ptr())) {
      wrong_type = true;
      wrong_type_message = ReturnTypeMessage(spec_.id(), f, value, "[str]");
      return value;
    }
    return rt_.support().attr("truncate")(value, kMaxGeneratedFieldChars);
  });
  if (call.error.has_value()) return py::none();
  if (wrong_type) {
    Out(f).error = MakeError("FunctionReturnTypeError", wrong_type_message);
    return py::none();
  }
  if (f != RuleFunction::kDedup) Out(f).output_json = Dumps(call.value);
  return call.value;
}

void Runner::RunSeverity() {
  FunctionOutcome& fo = Out(RuleFunction::kSeverity);
  bool wrong_type = false;
  std::string wrong_type_message;
  CallResult call = Call(RuleFunction::kSeverity, [&](py::object value) -> py::object {
    if (!PyUnicode_Check(value.ptr())) {
      wrong_type = true;
      wrong_type_message = ReturnTypeMessage(spec_.id(), RuleFunction::kSeverity, value, "[str]");
      return value;
    }
    return value.attr("upper")();
  });
  if (call.error.has_value()) return;
  if (wrong_type) {
    fo.error = MakeError("FunctionReturnTypeError", wrong_type_message);
    return;
  }
  const std::string upper = Utf8(call.value);
  if (upper == "DEFAULT") {
    fo.output_json = Dumps(py::str(SeverityName(spec_.severity())));
    out_.alert.severity = spec_.severity();
    return;
  }
  const v1::Severity parsed = ParseUpperSeverity(upper);
  if (parsed == v1::SEVERITY_UNSPECIFIED) {
    fo.error = MakeError("AssertionError",
                         absl::StrCat("Expected severity to be any of the following: [",
                                      kSeverityTypes, "], got [", upper, "] instead."));
    return;
  }
  fo.output_json = Dumps(call.value);
  out_.alert.severity = parsed;
}

void Runner::RunDestinations() {
  FunctionOutcome& fo = Out(RuleFunction::kDestinations);
  bool wrong_type = false;
  std::string wrong_type_message;
  CallResult call = Call(RuleFunction::kDestinations, [&](py::object value) {
    if (value.is_none()) return value;
    bool ok = PyList_Check(value.ptr());
    if (ok) {
      for (py::handle item : py::reinterpret_borrow<py::list>(value)) {
        if (!PyUnicode_Check(item.ptr()) && !PyBool_Check(item.ptr())) ok = false;
      }
    }
    if (!ok) {
      wrong_type = true;
      wrong_type_message =
          ReturnTypeMessage(spec_.id(), RuleFunction::kDestinations, value, "a list");
    }
    return value;
  });
  if (call.error.has_value()) return;
  if (wrong_type) {
    fo.error = MakeError("FunctionReturnTypeError", wrong_type_message);
    return;
  }
  if (call.value.is_none()) return;  // default routing, no output
  py::list kept;
  std::vector<std::string> names;
  absl::flat_hash_set<std::string> seen;
  py::list items = py::reinterpret_borrow<py::list>(call.value);
  if (items.empty()) {
    kept.append(py::str("SKIP"));
    names.push_back("SKIP");
  }
  for (py::handle item : items) {
    if (static_cast<int>(names.size()) >= kMaxDestinations) break;
    const std::string name = PyBool_Check(item.ptr()) ? (item.ptr() == Py_True ? "true" : "false")
                                                      : Utf8(item);
    if (!seen.insert(name).second) continue;
    kept.append(item);
    names.push_back(name);
  }
  fo.output_json = Dumps(kept);
  out_.alert.destinations = std::move(names);
}

void Runner::RunDedup(const py::object& title_output, bool title_failed) {
  const std::string fallback = absl::StrCat("defaultDedupString:", spec_.id());
  FunctionOutcome& fo = Out(RuleFunction::kDedup);
  const bool title_non_empty = !title_output.is_none() && py::len(title_output) > 0;
  if (!rule_.Defines(RuleFunction::kDedup)) {
    // Panther's fallback: the title() output when non-empty.
    fo.output_json = title_non_empty ? Dumps(title_output) : Dumps(py::str(fallback));
    if (title_failed) {
      out_.alert.dedup = spec_.id();  // production: title() -> RuleID -> dedup
    } else {
      out_.alert.dedup = title_non_empty ? Utf8(title_output) : fallback;
    }
    return;
  }
  py::object dedup = RunStringFunction(RuleFunction::kDedup);
  if (fo.error.has_value()) {
    out_.alert.dedup = fallback;
    return;
  }
  if (py::len(dedup) == 0) {
    fo.output_json = Dumps(py::str(fallback));
    out_.alert.dedup = fallback;
    return;
  }
  fo.output_json = Dumps(dedup);
  out_.alert.dedup = Utf8(dedup);
}

void Runner::RunAlertContext() {
  FunctionOutcome& fo = Out(RuleFunction::kAlertContext);
  bool wrong_type = false;
  std::string wrong_type_message;
  CallResult call = Call(RuleFunction::kAlertContext, [&](py::object value) -> py::object {
    if (PyObject_IsInstance(value.ptr(), rt_.mapping_type().ptr()) != 1) {
      PyErr_Clear();
      wrong_type = true;
      wrong_type_message =
          ReturnTypeMessage(spec_.id(), RuleFunction::kAlertContext, value, "[Mapping]");
      return value;
    }
    return rt_.json_dumps()(value, py::arg("default") = rt_.json_encoder());
  });
  if (wrong_type && !call.error.has_value()) {
    fo.error = MakeError("FunctionReturnTypeError", wrong_type_message);
  }
  if (fo.error.has_value()) {
    py::dict error_context;
    error_context["_error"] = py::str(ErrorRepr(call, *fo.error));
    out_.alert.alert_context_json = Dumps(error_context);
    return;
  }
  const size_t chars = py::len(call.value);
  if (chars > static_cast<size_t>(kMaxAlertContextChars)) {
    py::dict error_context;
    error_context["_error"] = py::str(absl::StrCat("alert_context size is [", chars,
                                                   "] characters, bigger than maximum of [",
                                                   kMaxAlertContextChars, "] characters"));
    fo.output_json = Dumps(error_context);
  } else {
    fo.output_json = Utf8(call.value);
  }
  out_.alert.alert_context_json = *fo.output_json;
}

void Runner::RunUnique() {
  CallResult call = Call(RuleFunction::kUnique, [&](py::object value) -> py::object {
    return rt_.json_dumps()(value, py::arg("default") = rt_.json_encoder());
  });
  if (call.error.has_value()) return;
  Out(RuleFunction::kUnique).output_json = Utf8(call.value);
  out_.alert.unique_json = Utf8(call.value);
}

RuleOutcome Runner::Run(RunMode mode) {
  for (int f = 0; f < kRuleFunctionCount; ++f) {
    out_.functions[f].defined = rule_.defined[f];
  }
  RunRuleFunction();
  if (mode == RunMode::kLive && !out_.matched) return std::move(out_);

  AlertFields& alert = out_.alert;
  const std::string default_title = spec_.display_name().empty() ? spec_.id() : spec_.display_name();
  alert.severity = spec_.severity();

  py::object title_output = py::none();
  bool title_failed = false;
  alert.title = default_title;
  if (rule_.Defines(RuleFunction::kTitle)) {
    title_output = RunStringFunction(RuleFunction::kTitle);
    title_failed = Out(RuleFunction::kTitle).error.has_value();
    if (title_failed) {
      alert.title = spec_.id();
    } else if (py::len(title_output) > 0) {
      alert.title = Utf8(title_output);
    }
  }

  struct TextField {
    RuleFunction function;
    std::string* field;
    const std::string& yaml;
  };
  for (const TextField& text : {TextField{RuleFunction::kDescription, &alert.description,
                                          spec_.description()},
                                TextField{RuleFunction::kReference, &alert.reference,
                                          spec_.reference()}}) {
    *text.field = text.yaml;
    if (!rule_.Defines(text.function)) continue;
    py::object value = RunStringFunction(text.function);
    if (!value.is_none() && py::len(value) > 0) *text.field = Utf8(value);
  }

  if (rule_.Defines(RuleFunction::kSeverity)) RunSeverity();

  alert.runbook = spec_.runbook();
  if (rule_.Defines(RuleFunction::kRunbook)) {
    py::object value = RunStringFunction(RuleFunction::kRunbook);
    if (!value.is_none() && py::len(value) > 0) alert.runbook = Utf8(value);
  }

  if (rule_.Defines(RuleFunction::kDestinations)) RunDestinations();
  RunDedup(title_failed ? py::none() : title_output, title_failed);
  if (rule_.Defines(RuleFunction::kAlertContext)) RunAlertContext();
  if (rule_.Defines(RuleFunction::kUnique)) RunUnique();
  return std::move(out_);
}

}  // namespace

bool RuleOutcome::any_error() const {
  for (const FunctionOutcome& f : functions) {
    if (f.error.has_value()) return true;
  }
  return false;
}

std::string SeverityName(v1::Severity severity) {
  switch (severity) {
    case v1::SEVERITY_INFO:
      return "Info";
    case v1::SEVERITY_LOW:
      return "Low";
    case v1::SEVERITY_MEDIUM:
      return "Medium";
    case v1::SEVERITY_HIGH:
      return "High";
    case v1::SEVERITY_CRITICAL:
      return "Critical";
    default:
      return "";
  }
}

namespace {

// The outcome of a run that did not happen: rule() failed with `type`.
RuleOutcome Refused(const std::string& type, const std::string& message) {
  RuleOutcome outcome;
  for (FunctionOutcome& f : outcome.functions) f.defined = false;
  outcome.functions[static_cast<int>(RuleFunction::kRule)].defined = true;
  outcome.functions[static_cast<int>(RuleFunction::kRule)].called = true;
  outcome.functions[static_cast<int>(RuleFunction::kRule)].error = MakeError(type, message);
  return outcome;
}

// Labels what rule code prints while it lives (PythonRuntime::set_output_label).
class OutputLabel {
 public:
  OutputLabel(PythonRuntime& runtime, const std::string* label) : runtime_(runtime) {
    runtime_.set_output_label(label);
  }
  ~OutputLabel() { runtime_.set_output_label(nullptr); }
  OutputLabel(const OutputLabel&) = delete;
  OutputLabel& operator=(const OutputLabel&) = delete;

 private:
  PythonRuntime& runtime_;
};

// Runs `rule` between the integrity checks of engine/rule_integrity.h.
RuleOutcome RunGuarded(PythonRuntime& runtime, const LoadedRule& rule, const py::object& event,
                       RunMode mode) {
  RuleIntegrity* guard = rule.integrity;
  if (guard == nullptr) {
    const std::string label = absl::StrCat("rule ", rule.id());
    OutputLabel labelled(runtime, &label);
    return Runner(runtime, rule, event).Run(mode);
  }
  const size_t me = rule.seal;
  std::vector<RuleIntegrity::Finding> changed = guard->Check(me);
  if (!changed.empty()) {
    std::vector<std::string> suspects = guard->RanSince(me, 10);
    guard->set_strict();
    guard->MarkTold(me);
    guard->NoteRun(me);
    return Refused(
        "RuleTampered",
        absl::StrCat("rule code changed this rule after it was loaded (",
                     RuleIntegrity::Describe(changed), "); pantherd restored it. ",
                     suspects.empty()
                         ? std::string("No other rule ran in this worker since its last run.")
                         : absl::StrCat("Rules that ran in this worker since its last run: ",
                                        absl::StrJoin(suspects, ", "), ".")));
  }
  if (std::string note = guard->TakePending(me); !note.empty()) {
    guard->NoteRun(me);
    return Refused("RuleTampered", note);
  }
  guard->NoteRun(me);
  RuleOutcome outcome;
  {
    OutputLabel labelled(runtime, &guard->owner(me));
    outcome = Runner(runtime, rule, event).Run(mode);
  }
  guard->Reseal(me);  // what it changed in its own module is its own
  if (guard->strict()) {
    std::vector<RuleIntegrity::Finding> others = guard->CheckAll(me);
    if (!others.empty()) {
      const std::string what = RuleIntegrity::Describe(others);
      // The rules changed hear of it once, at their next run.
      guard->NotePending(others, absl::StrCat("rule ", rule.id(), " changed this rule (", what,
                                              "); pantherd restored it"));
      return Refused("RuleTampering",
                     absl::StrCat("this rule changed code it does not own (", what,
                                  "); pantherd restored it. A rule may not change another "
                                  "rule or a helper"));
    }
  }
  return outcome;
}

}  // namespace

RuleOutcome RunRule(PythonRuntime& runtime, const LoadedRule& rule, const py::object& event,
                    RunMode mode) {
  try {
    return RunGuarded(runtime, rule, event, mode);
  } catch (const py::error_already_set& e) {
    // Only our own glue can get here (rule code runs inside CallRuleCode).
    RuleOutcome outcome;
    outcome.functions[static_cast<int>(RuleFunction::kRule)].error =
        MakeError("InternalError", e.what());
    return outcome;
  } catch (const std::exception& e) {
    RuleOutcome outcome;
    outcome.functions[static_cast<int>(RuleFunction::kRule)].error =
        MakeError("InternalError", e.what());
    return outcome;
  }
}

}  // namespace pantherd::engine
