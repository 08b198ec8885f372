// File: engine/rule_prefilter.h
//
// Skipping rules that provably cannot fire. At load time, DerivePrecondition
// reads a rule's Python source (with Python's `ast`, never running it) and
// derives a conservative pre-condition: conditions on event fields that must
// hold for rule() to do anything but return False. For example
//
//   def rule(event):
//       if event.get("eventType") not in LOCK_EVENTS:   # a module constant
//           return False
//       ...
//   def rule(event):
//       return bool(event.get("eventType") == "user.session.start"
//                   and event.deep_get("outcome", "result") == "FAILURE" and ...)
//
// give eventType ∈ LOCK_EVENTS, and eventType = "user.session.start" ∧
// outcome.result = "FAILURE". RulePrefilter indexes the rules of one log type
// by their first condition, and for each event (parsed in C++, before any
// Python object exists) returns the rules that may fire; the others are not
// called. An event that reaches no rule costs no Python at all.
//
// SOUNDNESS. Skipping a rule must change nothing: no match, rule error or
// module state that a later call could observe. So a pre-condition is derived
// only from statements at the very start of rule() that cannot raise or have
// effects: `global` declarations, assignments of literals to declared
// globals, `if <cond>: return False` and a final `return <expr>` whose
// leading `and` operands are conditions; a condition compares
// `event.get("k"[, default])` or `event.deep_get("k1", ...[, default=...])`
// (str keys, str or None default) with == / != to a str constant, or with
// in / not in to a tuple, list, set or frozenset of str constants, written
// inline or as a module-level name that nothing can change (bound once in the
// module, used only in comparisons, or immutable); or calls `.startswith` with
// a non-empty str constant or a tuple of them on such a lookup (with a str
// default) or on `str(<lookup> or "")`. Names the conditions rely
// on (bool, set, ...) must not be shadowed, rule must be a plain top-level
// function of one argument, and `from x import *` disables the analysis. A
// rule whose source yields no such condition gets no pre-condition and is
// always called. In the C++ check, any field value whose comparison Python
// could decide differently (see ProbeField's kUnknown) or could raise on (an
// object or array tested against a set) lets the rule run.
//
// THREADING. DerivePrecondition runs Python: owning thread of the runtime
// only (engine/python_runtime.h). RulePrefilter is plain C++: immutable after
// Build, safe to read from any thread.
#ifndef PANTHERD_ENGINE_RULE_PREFILTER_H_
#define PANTHERD_ENGINE_RULE_PREFILTER_H_

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "engine/event.h"
#include "engine/python_runtime.h"

namespace pantherd::engine {

// rule() can only fire when the value at `path` is a string in `values` or
// starting with one of `prefixes`, when the field is missing and
// `missing_may_match`, or when it is not a string and `other_types_may_match`.
struct FieldCondition {
  // One key: event.get(key). Several: event.deep_get(*keys).
  std::vector<std::string> path;
  absl::flat_hash_set<std::string> values;
  // The default the rule's lookup returns for a missing field satisfies the
  // condition.
  bool missing_may_match = false;
  // The condition tests membership in a set: an object or array value would
  // make Python raise (unhashable), which is a rule error, so it must run.
  bool hashes_value = false;
  // From `.startswith`: the accepted prefixes.
  std::vector<std::string> prefixes;
  // A number, boolean, object or array value may satisfy the condition or
  // make it raise (`str(5).startswith("5")`, `5 .startswith`): the rule runs.
  bool other_types_may_match = false;
};

// All conditions must hold for the rule to fire.
struct Precondition {
  std::vector<FieldCondition> all;
};

// Derives the pre-condition of `rule` from its source (LoadedRule::spec's
// python_source) and its loaded module. nullopt when the source yields none
// (the rule is then always called). Never throws; any failure of the
// analysis means nullopt. Owning thread of the runtime only.
std::optional<Precondition> DerivePrecondition(const LoadedRule& rule);

// Whether `condition` may hold for `document` (true when undecidable).
bool MayHold(const FieldCondition& condition, const EventDocument& document);

// The rules of one log type, indexed by their first condition.
class RulePrefilter {
 public:
  // `preconditions[i]` belongs to rule i (nullopt: always a candidate).
  explicit RulePrefilter(const std::vector<std::optional<Precondition>>& preconditions);

  // Sets `*out` to the indexes of the rules that may fire on `document`, in
  // increasing order. Fields are read once per distinct indexed path.
  void Candidates(const EventDocument& document, std::vector<int>* out) const;

  // Rules with a pre-condition, for statistics.
  int conditioned_rules() const { return conditioned_; }

 private:
  struct PathIndex {
    std::vector<std::string> path;
    // Rules whose first condition reads `path`, by accepted value.
    absl::flat_hash_map<std::string, std::vector<int>> by_value;
    // Rules whose first condition accepts strings starting with a prefix.
    std::vector<std::pair<std::string, int>> by_prefix;
    // Rules to try when the value is missing / undecidable / unhashable / a
    // number or boolean.
    std::vector<int> when_missing;
    std::vector<int> when_unknown;
    std::vector<int> when_unhashable;
    std::vector<int> when_hashable;
  };
  std::vector<int> always_;
  std::vector<PathIndex> paths_;
  // For each rule, its remaining conditions (after the first).
  std::vector<std::vector<FieldCondition>> rest_;
  int conditioned_ = 0;
};

}  // namespace pantherd::engine

#endif  // PANTHERD_ENGINE_RULE_PREFILTER_H_
