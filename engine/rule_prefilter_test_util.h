// File: engine/rule_prefilter_test_util.h
//
// Test support for the rule pre-conditions (engine/rule_prefilter.h): loading
// rule sets into the test binary's PythonWorker (python_worker_test_env.h)
// and running events through it with and without the pre-condition index,
// so that a test can compare everything a skipped call could have changed:
// matches (with every alert field), rule errors (type, message, traceback)
// and the module state of the rules.
//
//   RunOutcome with = RunOneByOne(files, events, /*prefilter=*/true);
//   RunOutcome without = RunOneByOne(files, events, /*prefilter=*/false);
//   std::string diff = FirstDifference(with, without);   // "" when the same
//
// Thread-safety: main test thread only (the worker's interpreter).
#ifndef PANTHERD_ENGINE_RULE_PREFILTER_TEST_UTIL_H_
#define PANTHERD_ENGINE_RULE_PREFILTER_TEST_UTIL_H_

#include <gtest/gtest.h>
#include <pybind11/embed.h>

#include <algorithm>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "engine/python_worker.h"
#include "engine/python_worker_test_env.h"
#include "engine/rule_set_manager.h"
#include "engine/worker_pool.h"

namespace pantherd::engine {

inline v1::AnalysisFile File(const std::string& path, const std::string& content) {
  v1::AnalysisFile f;
  f.set_path(path);
  f.set_content(content);
  return f;
}

// The spec and source of one rule of Okta.SystemLog.
inline std::vector<v1::AnalysisFile> RuleFiles(const std::string& id, const std::string& python) {
  return {File("probe/" + id + ".yml",
               absl::StrCat("AnalysisType: rule\nRuleID: ", id, "\nFilename: ", id,
                            ".py\nEnabled: true\nLogTypes: [Okta.SystemLog]\nSeverity: Low\n")),
          File("probe/" + id + ".py", python)};
}

// Loads `files` into the environment's worker; a test failure on any load
// diagnostic.
inline void Load(const std::vector<v1::AnalysisFile>& files) {
  internal::LoadRuleSet request;
  request.set_version(1);
  for (const v1::AnalysisFile& f : files) *request.add_files() = f;
  absl::StatusOr<internal::LoadResult> result = PythonWorkerEnvironment::worker().Load(request);
  ASSERT_TRUE(result.ok()) << result.status();
  std::string problems;
  for (const v1::Diagnostic& d : result->diagnostics()) {
    absl::StrAppend(&problems, d.file(), ":", d.line(), " ", d.message(), "\n");
  }
  ASSERT_FALSE(HasLoadErrors(*result)) << problems;
}

// A canonical text of a module's data: every global that is not a dunder
// name, module, function, class or builtin, with sets and dicts sorted, so
// that equal states give equal texts whatever their insertion history.
// Per-call scratch is left out: the globals that rule() (in `source`)
// declares global and assigns in a statement of its own body, outside any
// branch. When the analysis steps over such an assignment (a reset before
// anything that counts), skipping a call leaves an older value, which no
// code reads before the next call that counts overwrites it; so these are
// compared through the outputs of the functions that run after a match, not
// between calls.
inline std::string ModuleState(const pybind11::object& module, const std::string& source) {
  static pybind11::object* describe = nullptr;  // Owning thread only.
  if (describe == nullptr) {
    pybind11::dict scope;
    scope["__builtins__"] = pybind11::module_::import("builtins");
    pybind11::exec(R"PY(
import re
import types

def _canon(v, depth=0):
    if depth > 6:
        return '...'
    if isinstance(v, (set, frozenset)):
        return type(v).__name__ + '{' + ', '.join(sorted(_canon(x, depth + 1) for x in v)) + '}'
    if isinstance(v, dict):
        return '{' + ', '.join(sorted(_canon(k, depth + 1) + ': ' + _canon(x, depth + 1)
                                      for k, x in v.items())) + '}'
    if isinstance(v, (list, tuple)):
        return type(v).__name__ + '[' + ', '.join(_canon(x, depth + 1) for x in v) + ']'
    # Functions and other objects without a value: their text without address.
    return re.sub(r' at 0x[0-9a-fA-F]+', '', repr(v))

_SKIP = (types.ModuleType, types.FunctionType, types.BuiltinFunctionType, type)

_SCRATCH = {}

def _scratch(source):
    if source not in _SCRATCH:
        if len(_SCRATCH) > 1000:
            _SCRATCH.clear()
        _SCRATCH[source] = _scratch_of(source)
    return _SCRATCH[source]

def _scratch_of(source):
    import ast
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return set()
    for fn in tree.body:
        if isinstance(fn, ast.FunctionDef) and fn.name == 'rule':
            declared = {n for s in ast.walk(fn) if isinstance(s, ast.Global) for n in s.names}
            assigned = set()
            for s in fn.body:
                if isinstance(s, ast.Assign):
                    for t in s.targets:
                        assigned.update(n.id for n in ast.walk(t) if isinstance(n, ast.Name))
            return declared & assigned
    return set()

def describe(module, source):
    out = []
    scratch = _scratch(source)
    for name, value in sorted(module.__dict__.items()):
        if name.startswith('__') or name in scratch or isinstance(value, _SKIP):
            continue
        out.append(name + '=' + _canon(value))
    return '; '.join(out)
)PY",
                   scope);
    describe = new pybind11::object(scope["describe"]);
  }
  try {
    return (*describe)(module, source).cast<std::string>();
  } catch (const std::exception& e) {
    return absl::StrCat("<state not readable: ", e.what(), ">");
  }
}

// What one run over a stream gave.
struct RunOutcome {
  // Per event: the EventResult's text without the call count and tracebacks.
  std::vector<std::string> results;
  // Per event: for each rule whose rule() was called on it, by id, the state
  // of its module after the event.
  std::vector<std::map<std::string, std::string>> states;
  // Per event: the state of the modules named by RunOneByOne's `globals`.
  std::vector<std::string> global_states;
  // rule() calls made in all.
  int64_t calls = 0;
};

// Loads `files` afresh (empty key-value space) and evaluates `events` (JSON
// objects of Okta.SystemLog), one event per task, with the pre-condition
// index on or off. `globals`: GlobalIDs whose module state is recorded.
inline RunOutcome RunOneByOne(const std::vector<v1::AnalysisFile>& files,
                              const std::vector<std::string>& events, bool prefilter,
                              const std::vector<std::string>& globals = {}) {
  RunOutcome out;
  PythonWorkerEnvironment::kv().Clear();
  Load(files);
  PythonWorker& worker = PythonWorkerEnvironment::worker();
  worker.set_prefilter_enabled(prefilter);
  const LoadedSet* set = worker.runtime().loaded_set();
  if (set == nullptr) {
    ADD_FAILURE() << "no set loaded";
    return out;
  }
  std::map<std::string, const LoadedRule*> by_id;
  for (const LoadedRule& rule : set->rules) by_id[rule.id()] = &rule;
  pybind11::object modules = pybind11::module_::import("sys").attr("modules");
  internal::EvaluateTask task;
  internal::EventToEvaluate* e = task.add_events();
  e->set_log_type("Okta.SystemLog");
  for (const std::string& json : events) {
    e->set_normalized_json(json);
    absl::StatusOr<internal::EvaluateResult> r = worker.Evaluate(task);
    if (!r.ok() || r->results_size() != 1) {
      ADD_FAILURE() << "evaluation failed: " << r.status();
      break;
    }
    internal::EventResult one = r->results(0);
    out.calls += one.rules_evaluated();
    one.clear_rules_evaluated();
    // Errors are compared by type and message. Not by traceback: CPython
    // 3.11 may place a raise in a specialised instruction pair on the line
    // of the pair's first half once a function is warm, so the same error
    // of the same code can name another line after more calls.
    for (internal::RuleErrorResult& error : *one.mutable_errors()) {
      error.mutable_error()->clear_traceback();
    }
    for (internal::RuleMatch& match : *one.mutable_matches()) {
      for (internal::FunctionError& error : *match.mutable_function_errors()) {
        error.mutable_error()->clear_traceback();
      }
    }
    out.results.push_back(one.DebugString());
    std::map<std::string, std::string>& states = out.states.emplace_back();
    for (const internal::RuleRunStats& s : r->rule_stats()) {
      auto it = by_id.find(s.rule_id());
      if (it != by_id.end()) {
        states[s.rule_id()] = ModuleState(it->second->module, it->second->spec.python_source);
      }
    }
    std::string& global_state = out.global_states.emplace_back();
    for (const std::string& name : globals) {
      if (modules.contains(name.c_str())) {
        absl::StrAppend(&global_state, name, ": ", ModuleState(modules[name.c_str()], ""), "\n");
      }
    }
  }
  worker.set_prefilter_enabled(true);
  return out;
}

// "" when `with` (index on) and `without` (index off) agree: the same
// results for every event, the same state of every global module after every
// event, and, after every event on which the index let a rule run, the same
// state of that rule's module. Otherwise the first difference, described.
inline std::string FirstDifference(const RunOutcome& with, const RunOutcome& without,
                                   const std::vector<std::string>& events) {
  if (with.results.size() != without.results.size()) {
    return absl::StrCat("results of ", with.results.size(), " vs ", without.results.size(),
                        " events");
  }
  for (size_t i = 0; i < with.results.size(); ++i) {
    const std::string event = i < events.size() ? events[i] : "";
    if (with.results[i] != without.results[i]) {
      return absl::StrCat("event ", i, " ", event, "\nwith the index:\n", with.results[i],
                          "\nwithout:\n", without.results[i]);
    }
    if (with.global_states[i] != without.global_states[i]) {
      return absl::StrCat("after event ", i, " ", event, " global state\nwith the index:\n",
                          with.global_states[i], "\nwithout:\n", without.global_states[i]);
    }
    for (const auto& [id, state] : with.states[i]) {
      auto other = without.states[i].find(id);
      if (other == without.states[i].end()) {
        return absl::StrCat("event ", i, ": ", id, " ran only with the index");
      }
      if (other->second != state) {
        return absl::StrCat("after event ", i, " ", event, " state of ", id,
                            "\nwith the index:    ", state, "\nwithout the index: ", other->second);
      }
    }
  }
  return "";
}

}  // namespace pantherd::engine

#endif  // PANTHERD_ENGINE_RULE_PREFILTER_TEST_UTIL_H_
