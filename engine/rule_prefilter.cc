#include "engine/rule_prefilter.h"

#include <pybind11/embed.h>

#include <algorithm>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/string_view.h"
#include "engine/python/prefilter_analyzer_py.h"

namespace pantherd::engine {
namespace {

namespace py = pybind11;

// The analyzer's derive() (engine/python/prefilter_analyzer.py: reads a rule's
// syntax tree and module, never calls rule code), compiled once per interpreter.
py::object Analyzer() {
  static py::object* derive = nullptr;  // Owning thread only; lives with the interpreter.
  if (derive == nullptr) {
    py::dict scope;
    scope["__builtins__"] = py::module_::import("builtins");
    py::exec(py::str(embedded::kPrefilterAnalyzerPy, embedded::kPrefilterAnalyzerPySize), scope);
    derive = new py::object(scope["derive"]);
  }
  return *derive;
}

}  // namespace

std::optional<Precondition> DerivePrecondition(const LoadedRule& rule) {
  try {
    py::object result = Analyzer()(rule.spec.python_source, rule.module);
    if (result.is_none()) return std::nullopt;
    auto strings = [](py::handle sequence) {
      std::vector<std::string> out;
      for (py::handle item : py::reinterpret_borrow<py::iterable>(sequence)) {
        out.push_back(item.cast<std::string>());
      }
      return out;
    };
    Precondition out;
    for (py::handle conjunction : py::reinterpret_borrow<py::iterable>(result)) {
      std::vector<FieldCondition>& all = out.any.emplace_back();
      for (py::handle item : py::reinterpret_borrow<py::iterable>(conjunction)) {
        py::sequence t = py::reinterpret_borrow<py::sequence>(item);
        FieldCondition c;
        c.path = strings(t[0]);
        for (std::string& value : strings(t[1])) c.values.insert(std::move(value));
        c.missing_may_match = t[2].cast<bool>();
        c.hashes_value = t[3].cast<bool>();
        c.prefixes = strings(t[4]);
        c.other_types_may_match = t[5].cast<bool>();
        c.substrings = strings(t[6]);
        c.nonempty_strings = t[7].cast<bool>();
        all.push_back(std::move(c));
      }
      if (all.empty()) return std::nullopt;  // a conjunction of nothing: always
    }
    if (out.any.empty()) return std::nullopt;
    return out;
  } catch (const std::exception&) {
    // Includes pybind11::error_already_set (whose destructor clears the
    // Python error): no pre-condition, the rule is always called.
    return std::nullopt;
  }
}

namespace {

// Whether a probed value may satisfy `c`.
bool MayHoldFor(const FieldCondition& c, const ProbeResult& probe) {
  switch (probe.kind) {
    case FieldKind::kString: {
      const absl::string_view text(probe.text.data(), probe.text.size());
      if (c.values.contains(text)) return true;
      if (c.nonempty_strings && !text.empty()) return true;
      for (const std::string& prefix : c.prefixes) {
        if (absl::StartsWith(text, prefix)) return true;
      }
      for (const std::string& part : c.substrings) {
        if (absl::StrContains(text, part)) return true;
      }
      return false;
    }
    case FieldKind::kMissing:
      return c.missing_may_match;
    case FieldKind::kHashable:
      return c.other_types_may_match;  // A number or bool never equals a str.
    case FieldKind::kUnhashable:
      // Python would raise TypeError (a rule error) for a set test.
      return c.hashes_value || c.other_types_may_match;
    case FieldKind::kUnknown:
      return true;
  }
  return true;
}

}  // namespace

bool MayHold(const FieldCondition& condition, const EventDocument& document) {
  return MayHoldFor(condition, ProbeField(document, condition.path));
}

RulePrefilter::RulePrefilter(const std::vector<std::optional<Precondition>>& preconditions) {
  for (int i = 0; i < static_cast<int>(preconditions.size()); ++i) {
    const std::optional<Precondition>& p = preconditions[i];
    const bool always =
        !p.has_value() || p->any.empty() ||
        std::any_of(p->any.begin(), p->any.end(), [](const auto& all) { return all.empty(); });
    if (always) {
      always_.push_back(i);
      continue;
    }
    ++conditioned_;
    for (const std::vector<FieldCondition>& all : p->any) {
      const int e = static_cast<int>(entries_.size());
      Entry& entry = entries_.emplace_back();
      entry.rule = i;
      entry.first = all.front();
      entry.rest.assign(all.begin() + 1, all.end());
      const FieldCondition& first = entry.first;
      auto it = std::find_if(paths_.begin(), paths_.end(),
                             [&](const PathIndex& index) { return index.path == first.path; });
      if (it == paths_.end()) {
        paths_.push_back(PathIndex{});
        paths_.back().path = first.path;
        it = paths_.end() - 1;
      }
      for (const std::string& value : first.values) it->by_value[value].push_back(e);
      for (const std::string& prefix : first.prefixes) it->by_prefix.emplace_back(prefix, e);
      if (!first.substrings.empty() || first.nonempty_strings) it->by_test.push_back(e);
      if (first.missing_may_match) it->when_missing.push_back(e);
      if (first.hashes_value || first.other_types_may_match) it->when_unhashable.push_back(e);
      if (first.other_types_may_match) it->when_hashable.push_back(e);
      it->when_unknown.push_back(e);
    }
  }
}

void RulePrefilter::Candidates(const EventDocument& document, std::vector<int>* out) const {
  out->assign(always_.begin(), always_.end());
  const size_t unconditional = out->size();
  std::vector<int> string_hits;
  for (const PathIndex& index : paths_) {
    const ProbeResult probe = ProbeField(document, index.path);
    const std::vector<int>* hits = nullptr;
    switch (probe.kind) {
      case FieldKind::kString: {
        const absl::string_view text(probe.text.data(), probe.text.size());
        auto it = index.by_value.find(text);
        if (it != index.by_value.end()) hits = &it->second;
        if (!index.by_prefix.empty() || !index.by_test.empty()) {
          string_hits.clear();
          if (hits != nullptr) string_hits = *hits;
          for (const auto& [prefix, e] : index.by_prefix) {
            if (absl::StartsWith(text, prefix)) string_hits.push_back(e);
          }
          for (int e : index.by_test) {
            if (MayHoldFor(entries_[e].first, probe)) string_hits.push_back(e);
          }
          hits = &string_hits;
        }
        break;
      }
      case FieldKind::kMissing:
        hits = &index.when_missing;
        break;
      case FieldKind::kHashable:
        hits = &index.when_hashable;
        break;
      case FieldKind::kUnhashable:
        hits = &index.when_unhashable;
        break;
      case FieldKind::kUnknown:
        hits = &index.when_unknown;
        break;
    }
    if (hits == nullptr) continue;
    for (int e : *hits) {
      const Entry& entry = entries_[e];
      bool all = true;
      for (const FieldCondition& c : entry.rest) {
        if (!MayHold(c, document)) {
          all = false;
          break;
        }
      }
      if (all) out->push_back(entry.rule);
    }
  }
  if (out->size() > unconditional) {
    std::sort(out->begin(), out->end());
    // A rule may be reached through several conjunctions or prefixes.
    out->erase(std::unique(out->begin(), out->end()), out->end());
  }
}

}  // namespace pantherd::engine
