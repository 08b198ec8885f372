// File: engine/rule_runner.h
//
// Runs one loaded rule on one event with Panther's contracts (panther_core's
// Detection.run; docs/rule-contract.md, "Running a rule on an event" under
// "Rule functions and tests", is the contract):
// rule() first; then, in Panther's order, title, description, reference,
// severity, runbook, destinations, dedup, alert_context and unique, each one
// that the module defines, on the same module object with no other event in
// between (rules keep module globals from rule() for title()). Every call runs
// under the runtime's time limit and every exception is caught and recorded.
//
//   pybind11::object event = MakePantherEvent(document, set.DataModelFor(log_type));
//   RuleOutcome outcome = RunRule(runtime, rule, event, RunMode::kLive);
//   if (outcome.rule_error()) { /* a rule error: outcome.function(kRule).error */ }
//   else if (outcome.matched) { /* an alert: outcome.alert */ }
//
// Threading: owning thread of `runtime` only (see the GIL POLICY in
// engine/python_runtime.h).

#ifndef PANTHERD_ENGINE_RULE_RUNNER_H_
#define PANTHERD_ENGINE_RULE_RUNNER_H_

#include <pybind11/pybind11.h>

#include <array>
#include <optional>
#include <string>
#include <vector>

#include "engine/python_runtime.h"
#include "pantherd/v1/common.pb.h"
#include "pantherd/v1/rules.pb.h"

namespace pantherd::engine {

// Panther's limits (panther_core rule.py).
inline constexpr int kMaxGeneratedFieldChars = 1000;   // title, dedup, description, ...
inline constexpr int kMaxAlertContextChars = 204800;   // serialized alert_context
inline constexpr int kMaxDestinations = 10;

enum class RunMode {
  // Production: stop after rule() unless it returned exactly True.
  kLive,
  // Unit tests (pat's batch_mode=False): every defined function runs, even
  // when rule() returned False or raised.
  kTest,
};

// What one function produced, under its contract.
struct FunctionOutcome {
  // The module defines the function.
  bool defined = false;
  // The function was called.
  bool called = false;
  // The result as JSON (Python's json.dumps with its default separators,
  // ensure_ascii), set when the function returned a valid value, and for
  // dedup also when Panther's fallback applies:
  //   rule          true | false
  //   title, dedup, description, reference, runbook, severity
  //                 a JSON string: truncated to 1000 characters; severity
  //                 upper-cased, or the YAML severity ("Medium") for "DEFAULT";
  //                 dedup "" -> "defaultDedupString:<RuleID>"; dedup not
  //                 defined -> title() output if non-empty, else the default
  //   destinations  a JSON array (first 10 distinct entries; [] -> ["SKIP"]);
  //                 no output when it returned None (default routing)
  //   alert_context the serialized mapping (json.dumps(default=json_encoder)),
  //                 or {"_error": "alert_context size is [N] characters, ..."}
  //                 when larger than 204800 characters (not an error, as Panther)
  //   unique        json.dumps(value, default=json_encoder)
  // An output that is a JSON string is what pat prints decoded; anything else
  // pat prints as this JSON text.
  std::optional<std::string> output_json;
  // The exception it raised, a wrong return type (FunctionReturnTypeError),
  // an invalid severity (AssertionError), a failed serialization, or the time
  // limit (TimeoutError).
  std::optional<v1::RuleError> error;
};

// The alert fields of a match, with Panther's production defaults applied
// (errors fall back silently, as in Panther's batch mode).
struct AlertFields {
  // title() (truncated) if it returned a non-empty string; the RuleID if it
  // raised; else DisplayName, else RuleID.
  std::string title;
  // dedup() if non-empty; defaultDedupString:<RuleID> if it raised or
  // returned ""; without dedup(): the title() output if non-empty (the RuleID
  // if title() raised), else defaultDedupString:<RuleID>.
  std::string dedup;
  // severity() upper-cased if valid; the YAML Severity otherwise.
  v1::Severity severity = v1::SEVERITY_UNSPECIFIED;
  // The function's output when non-empty, else the YAML value.
  std::string description;
  std::string reference;
  std::string runbook;
  // destinations(): nullopt means default routing (the rule's OutputIds,
  // else by severity); ["SKIP"] suppresses delivery. Booleans become
  // "true"/"false".
  std::optional<std::vector<std::string>> destinations;
  // The serialized alert_context ("{}" without one; {"_error": repr(exc)}
  // when it raised or returned a non-mapping).
  std::string alert_context_json = "{}";
  // unique() as JSON, when defined and it returned.
  std::optional<std::string> unique_json;
};

// Everything one RunRule produced.
struct RuleOutcome {
  // rule() returned exactly True.
  bool matched = false;
  // Any call ran past the time limit.
  bool timed_out = false;
  // Indexed by RuleFunction.
  std::array<FunctionOutcome, kRuleFunctionCount> functions;
  // Filled when the auxiliary functions ran (live: only when matched).
  AlertFields alert;

  const FunctionOutcome& function(RuleFunction f) const {
    return functions[static_cast<int>(f)];
  }
  // rule() raised or returned a non-bool: a rule error, not an alert.
  bool rule_error() const { return function(RuleFunction::kRule).error.has_value(); }
  // rule() returned exactly False.
  bool returned_false() const { return !matched && !rule_error(); }
  // Any function recorded an error.
  bool any_error() const;
};

// Runs `rule` on `event` (a PantherEvent from MakePantherEvent) in `mode`.
// Never throws; every failure is recorded in the outcome.
RuleOutcome RunRule(PythonRuntime& runtime, const LoadedRule& rule, const pybind11::object& event,
                    RunMode mode);

// The YAML severity as Panther spells it in outputs ("Medium"); "" for
// SEVERITY_UNSPECIFIED.
std::string SeverityName(v1::Severity severity);

}  // namespace pantherd::engine

#endif  // PANTHERD_ENGINE_RULE_RUNNER_H_
