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
// module state that a later call could observe. The analysis computes, for
// rule(), a condition outside of which the call is known to return exactly
// False without raising and without effects; the rule is skipped only there.
// It reads rule()'s statements in order, following branches:
//   - `if <test>:` with any body and `elif`/`else` branches: the body counts
//     only where the test may be true, the `else` side where it may be false;
//     what the test itself may raise counts wherever it is evaluated;
//   - `return <expr>` counts where <expr> may be truthy, may raise, or may be
//     something other than a bool (Panther makes a non-bool a rule error);
//     `return False` counts nowhere; falling off the end (None) counts;
//   - `global` declarations, assignments that cannot raise (constants and
//     displays of them to names, unpacking only a display of as many items;
//     set items and dict keys hashable constants) — to declared globals only
//     at the top of rule(), before anything that counts — and locals
//     assigned a field lookup (`sid = event.deep_get(...)`, bound once, at
//     the top of the function rather than in a branch), which later
//     conditions read as the lookup itself;
//   - any other statement counts wherever it is reached, and ends the reading
//     of that path.
// Expressions understood: `event.get("k"[, default])` and
// `event.deep_get("k1", ...[, default=...])` (str keys, str or None default)
// compared with == / != to a str constant, with in / not in to a tuple, list,
// set or frozenset of str constants (inline or a module-level name nothing can
// change: immutable and never declared global, or a list/set bound once by a
// display at module level and read only on the right of `in`),
// with `is` / `is not` None; `"text" in <lookup>`; `.startswith` with a
// non-empty str constant or a tuple of them on a lookup (with a str default)
// or on `str(<lookup> or "")`; a lookup's truth (`bool(<lookup>)`); `not`,
// `and`, `or`, `bool(...)`; and a call `helper(event)` of a plain function of
// the same module, analysed the same way (what it may return truthy, raise or
// change), three calls deep. Names the conditions rely on (bool, str, ...)
// must not be shadowed, rule and helpers must be plain top-level functions of
// one argument (not generators). The analysis gives up on a module (no
// pre-condition) when other code could reach its namespace: reflection
// (globals(), __globals__, frames, builtins, ...), `from x import *`, or a
// function object that can outlive its call (lambda, nested def, class,
// generator, decorator, a def used as a value, a caught exception held by
// name); and when a builtin or an event type's method has been replaced. The result is a
// disjunction of conjunctions of field conditions; a rule whose source gives
// none is always called. In the C++ check, any field value whose comparison
// Python could decide differently (see ProbeField's kUnknown) or could raise
// on (an object or array tested against a set, a number in a substring test)
// lets the rule run.
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
#include "engine/event_probe.h"
#include "engine/python_runtime.h"

namespace pantherd::engine {

// A condition on one field: it may hold when the value at `path` is a string
// in `values`, starting with one of `prefixes`, containing one of
// `substrings`, or any non-empty string when `nonempty_strings`; when the
// field is missing and `missing_may_match`; or when it is not a string and
// `other_types_may_match` (or, for objects and arrays, `hashes_value`).
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
  // From `"text" in <lookup>`: the texts.
  std::vector<std::string> substrings;
  // From a lookup's truth: any non-empty string.
  bool nonempty_strings = false;
};

// The rule may fire only when, for at least one conjunction of `any`, every
// condition of it may hold.
struct Precondition {
  std::vector<std::vector<FieldCondition>> any;
};

// Derives the pre-condition of `rule` from its source (LoadedRule::spec's
// python_source) and its loaded module. nullopt when the source yields none
// (the rule is then always called). Never throws; any failure of the
// analysis means nullopt. Owning thread of the runtime only.
std::optional<Precondition> DerivePrecondition(const LoadedRule& rule);

// Whether `condition` may hold for `document` (true when undecidable).
bool MayHold(const FieldCondition& condition, const EventDocument& document);

// The rules of one log type, each conjunction of their pre-conditions
// indexed by its first condition.
class RulePrefilter {
 public:
  // `preconditions[i]` belongs to rule i (nullopt or no conjunction: always a
  // candidate).
  explicit RulePrefilter(const std::vector<std::optional<Precondition>>& preconditions);

  // Sets `*out` to the indexes of the rules that may fire on `document`, in
  // increasing order. Fields are read once per distinct indexed path.
  void Candidates(const EventDocument& document, std::vector<int>* out) const;

  // Rules with a pre-condition, for statistics.
  int conditioned_rules() const { return conditioned_; }

 private:
  // One conjunction of one rule's pre-condition.
  struct Entry {
    int rule = 0;
    FieldCondition first;
    std::vector<FieldCondition> rest;
  };
  // Entries (indexes into entries_) by the field their first condition reads.
  struct PathIndex {
    std::vector<std::string> path;
    // By accepted value.
    absl::flat_hash_map<std::string, std::vector<int>> by_value;
    // Accepting strings starting with a prefix.
    std::vector<std::pair<std::string, int>> by_prefix;
    // Accepting strings by a test of each (substrings, non-empty).
    std::vector<int> by_test;
    // To try when the value is missing / undecidable / unhashable / a number
    // or boolean.
    std::vector<int> when_missing;
    std::vector<int> when_unknown;
    std::vector<int> when_unhashable;
    std::vector<int> when_hashable;
  };
  std::vector<int> always_;
  std::vector<PathIndex> paths_;
  std::vector<Entry> entries_;
  int conditioned_ = 0;
};

}  // namespace pantherd::engine

#endif  // PANTHERD_ENGINE_RULE_PREFILTER_H_
