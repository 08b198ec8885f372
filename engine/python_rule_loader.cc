// File: engine/python_rule_loader.cc
//
// PythonRuntime::LoadRuleSet: importing an AnalysisSet's globals, data models
// and rules in the embedded interpreter, sealing them (rule_integrity.h), and
// reporting each problem as a diagnostic with file and line.

#include <pybind11/embed.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "engine/python_runtime.h"

namespace pantherd::engine {

namespace py = pybind11;

namespace {

v1::Diagnostic MakeDiagnostic(absl::string_view file, int line, absl::string_view message,
                              absl::string_view field = "") {
  v1::Diagnostic d;
  d.set_file(std::string(file));
  d.set_line(line);
  d.set_field(std::string(field));
  d.set_message(std::string(message));
  return d;
}

}  // namespace

const LoadedRule* LoadedSet::FindRule(absl::string_view id) const {
  for (const LoadedRule& rule : rules) {
    if (rule.id() == id) return &rule;
  }
  return nullptr;
}

std::shared_ptr<const DataModel> LoadedSet::DataModelFor(absl::string_view log_type) const {
  auto it = data_models.find(log_type);
  return it == data_models.end() ? nullptr : it->second;
}

absl::Status PythonRuntime::LoadRuleSet(const AnalysisSet& analysis,
                                        std::vector<v1::Diagnostic>* diagnostics) {
  ClearLoadedSet();
  auto set = std::make_unique<LoadedSet>();
  set->skipped = analysis.skipped;
  std::vector<v1::Diagnostic>& invalid = set->invalid;

  // Every item that failed to import, in load order. A failure that comes
  // from another uploaded file that failed too (a rule importing a broken
  // global) is reported once, with that file's own failure.
  struct Failure {
    std::string item;  // "rule Okta.X", "global panther_x", "datamodel Y"
    std::string path;
    int line = 0;
    std::string message;  // "<Type>: <message>[ (at FILE:LINE)][: hint]"
    std::string origin;   // the uploaded file the error happened in
  };
  std::vector<Failure> failures;
  auto report_failure = [&](std::string item, const std::string& path, const CallResult& call) {
    Failure f{std::move(item), path, 0, "", path};
    std::string note;
    std::string hint;
    if (call.exception && !call.exception.is_none()) {
      try {
        py::tuple location = support_.attr("error_location")(call.exception, path);
        f.line = location[0].cast<int>();
        note = location[1].cast<std::string>();
        f.origin = location[2].cast<std::string>();
        hint = support_.attr("import_hint")(call.exception).cast<std::string>();
      } catch (const py::error_already_set&) {
      }
    }
    f.message = absl::StrCat(call.error->type(), ": ", call.error->message(), note, hint);
    failures.push_back(std::move(f));
  };

  try {
    // Every uploaded Python file, for tracebacks.
    for (const GlobalSpec& g : analysis.globals) {
      support_.attr("register_file")(g.python_path, g.python_source);
    }
    for (const DataModelSpec& m : analysis.data_models) {
      if (!m.python_path.empty()) support_.attr("register_file")(m.python_path, m.python_source);
    }
    for (const RuleSpec& r : analysis.rules) {
      support_.attr("register_file")(r.python_path, r.python_source);
    }

    // 1. Globals. Our built-in modules first (a global may replace them).
    py::list entries;
    for (const GlobalSpec& g : analysis.globals) {
      entries.append(py::make_tuple(g.id, g.python_path, g.python_source));
      set->global_ids.push_back(g.id);
    }
    support_.attr("install_builtins")(builtin_modules_, set->global_ids);
    support_.attr("remove_modules")(set->global_ids);
    support_.attr("set_globals")(entries);
    RuleIntegrity& integrity = *set->integrity;
    // After each import: did it change what was sealed before it? (Undone.)
    auto tampered_at_import = [&](const std::string& item, const std::string& path) {
      std::vector<RuleIntegrity::Finding> findings = integrity.CheckAll();
      if (findings.empty()) return false;
      invalid.push_back(
          MakeDiagnostic(path, 0,
                         absl::StrCat(item, ": its import changed code it does not own (",
                                      RuleIntegrity::Describe(findings),
                                      "); a rule, helper or data model may not change another")));
      return true;
    };
    for (const GlobalSpec& g : analysis.globals) {
      const std::string label = absl::StrCat("global ", g.id);
      set_output_label(&label);
      CallResult imported =
          CallRuleCode("<module>", [&] { return support_.attr("import_global")(g.id); });
      set_output_label(nullptr);
      if (imported.error.has_value()) {
        report_failure(absl::StrCat("global ", g.id), g.python_path, imported);
        continue;
      }
      if (tampered_at_import(absl::StrCat("global ", g.id), g.python_path)) continue;
      integrity.Seal(absl::StrCat("global ", g.id), imported.value, /*bindings=*/false);
    }

    // 2. Enabled data models.
    for (const DataModelSpec& m : analysis.data_models) {
      if (!m.rule.enabled()) continue;
      const std::string& model_id = m.rule.id();
      py::object module;
      if (!m.python_path.empty()) {
        CallResult loaded = CallRuleCode("<module>", [&] {
          return support_.attr("load_module")(model_id, m.python_path, m.python_source);
        });
        if (loaded.error.has_value()) {
          report_failure(absl::StrCat("datamodel ", model_id), m.python_path, loaded);
          continue;
        }
        if (tampered_at_import(absl::StrCat("datamodel ", model_id), m.python_path)) continue;
        module = loaded.value;
      }
      auto model = std::make_shared<DataModel>(model_id);
      bool ok = true;
      for (size_t i = 0; i < m.mappings.size(); ++i) {
        const DataModelMapping& mapping = m.mappings[i];
        absl::Status added;
        std::string field;
        if (!mapping.path.empty()) {
          added = model->AddPath(mapping.name, mapping.path);
          field = absl::StrCat("Mappings[", i, "].Path");
        } else {
          field = absl::StrCat("Mappings[", i, "].Method");
          py::object method;
          if (module && py::hasattr(module, mapping.method.c_str())) {
            method = module.attr(mapping.method.c_str());
          }
          if (!method || !PyCallable_Check(method.ptr())) {
            added = absl::InvalidArgumentError(
                absl::StrCat("data model method [", mapping.method, "] is not a function of ",
                             m.python_path.empty() ? "the data model" : m.python_path));
          } else {
            added = model->AddMethod(mapping.name, method);
          }
        }
        if (!added.ok()) {
          invalid.push_back(MakeDiagnostic(m.spec_path, mapping.line, added.message(), field));
          ok = false;
        }
      }
      if (!ok) continue;
      for (const std::string& log_type : m.rule.log_types()) {
        set->data_models[log_type] = model;
      }
    }

    // 3. Rules.
    for (const RuleSpec& r : analysis.rules) {
      const std::string label = absl::StrCat("rule ", r.rule.id());
      set_output_label(&label);
      CallResult loaded = CallRuleCode("<module>", [&] {
        return support_.attr("load_module")(r.rule.id(), r.python_path, r.python_source);
      });
      set_output_label(nullptr);
      if (loaded.error.has_value()) {
        report_failure(absl::StrCat(r.scheduled ? "scheduled_rule " : "rule ", r.rule.id()),
                       r.python_path, loaded);
        set->failed_rule_ids.insert(r.rule.id());
        continue;
      }
      const std::string item = absl::StrCat(r.scheduled ? "scheduled_rule " : "rule ", r.rule.id());
      if (tampered_at_import(item, r.python_path)) {
        set->failed_rule_ids.insert(r.rule.id());
        continue;
      }
      LoadedRule rule;
      rule.spec = r;
      rule.module = loaded.value;
      rule.integrity = &integrity;
      rule.seal = integrity.Seal(absl::StrCat("rule ", r.rule.id()), rule.module,
                                 /*bindings=*/true);
      for (int f = 0; f < kRuleFunctionCount; ++f) {
        const std::string name(RuleFunctionName(static_cast<RuleFunction>(f)));
        rule.defined[f] = py::hasattr(rule.module, name.c_str());
      }
      if (!rule.Defines(RuleFunction::kRule)) {
        invalid.push_back(
            MakeDiagnostic(r.python_path, 0, "rule needs to have a method named 'rule'"));
        set->failed_rule_ids.insert(r.rule.id());
        continue;
      }
      set->rules.push_back(std::move(rule));
    }
  } catch (const py::error_already_set& e) {
    set_ = std::move(set);
    return absl::InternalError(absl::StrCat("loading the rule set failed: ", e.what()));
  }

  // Import failures: each file's own failure once, naming the items that
  // failed only because they import it.
  {
    absl::flat_hash_map<std::string, size_t> own;  // path -> index in failures
    for (size_t i = 0; i < failures.size(); ++i) {
      if (failures[i].origin == failures[i].path) own.emplace(failures[i].path, i);
    }
    std::vector<std::vector<std::string>> consumers(failures.size());
    std::vector<bool> folded(failures.size(), false);
    for (size_t i = 0; i < failures.size(); ++i) {
      if (failures[i].origin == failures[i].path) continue;
      auto it = own.find(failures[i].origin);
      if (it == own.end()) continue;
      consumers[it->second].push_back(failures[i].item);
      folded[i] = true;
    }
    constexpr size_t kNamedConsumers = 20;
    for (size_t i = 0; i < failures.size(); ++i) {
      if (folded[i]) continue;
      Failure& f = failures[i];
      std::string message = absl::StrCat(f.item, ": ", f.message);
      if (!consumers[i].empty()) {
        const std::vector<std::string>& c = consumers[i];
        const size_t named = std::min(c.size(), kNamedConsumers);
        absl::StrAppend(&message, " (so ", c.size(), c.size() == 1 ? " item" : " items",
                        " importing it did not load either: ",
                        absl::StrJoin(c.begin(), c.begin() + named, ", "),
                        c.size() > named ? absl::StrCat(" and ", c.size() - named, " more") : "",
                        ")");
      }
      invalid.push_back(MakeDiagnostic(f.path, f.line, message));
    }
    std::stable_sort(
        invalid.begin(), invalid.end(),
        [](const v1::Diagnostic& a, const v1::Diagnostic& b) { return a.file() < b.file(); });
  }

  for (const v1::Diagnostic& d : invalid) diagnostics->push_back(d);
  const size_t problems = invalid.size();
  set_ = std::move(set);
  if (problems == 0) return absl::OkStatus();
  const v1::Diagnostic& first = set_->invalid.front();
  return absl::InvalidArgumentError(
      absl::StrFormat("%d problem%s loading the rule set (first: %s line %d: %s)", problems,
                      problems == 1 ? "" : "s", first.file(), first.line(), first.message()));
}

}  // namespace pantherd::engine
