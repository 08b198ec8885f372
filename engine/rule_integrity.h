// File: engine/rule_integrity.h
//
// All rules of a set share one interpreter, so rule code can reach another
// rule's functions (through gc, sys.modules or a helper module) and change
// them: swap a function's code, defaults or closure, or rebind a name in the
// rule's module. RuleIntegrity seals, for each module it is given, the Python
// functions its namespace binds, and later checks them:
//
//   - At load, after each module is imported, every earlier seal is checked:
//     an import that changed another module fails to load, naming both.
//   - Before a rule runs on an event, its own seals are checked: a change
//     made since its last run (by other rule code) is undone, and this run
//     is a rule error of type RuleTampered naming the rules that ran since.
//     After a rule runs, its seals follow what it changed in its own module
//     (a rule may change itself).
//   - After the first finding, the set turns strict: after each rule's run,
//     every other seal is checked, so the rule that changes another is
//     caught in the act; its run is a rule error of type RuleTampering, and
//     the rule it changed gets one RuleTampered error at its next run.
//   - Helper (global) modules are sealed too; only their functions' code,
//     defaults and closures are checked (a helper may rebind its own names).
//
// Every change found is undone, so a tampered rule evaluates as uploaded from
// its next run on. Not covered: in-place changes to data (a module-level set
// or dict a rule reads), monkey-patching of modules pantherd did not load
// (the standard library, builtins), and anything done through ctypes. See
// docs/rule-contract.md ("Rules share an interpreter").
//
// Thread-safety: Python objects; owning thread of the runtime, GIL held.
#ifndef PANTHERD_ENGINE_RULE_INTEGRITY_H_
#define PANTHERD_ENGINE_RULE_INTEGRITY_H_

#include <pybind11/pybind11.h>

#include <cstddef>
#include <cstdint>
#include <deque>
#include <string>
#include <vector>

namespace pantherd::engine {

class RuleIntegrity {
 public:
  // A seal that no longer held (and was restored).
  struct Finding {
    std::string owner;     // the module's owner, e.g. "rule Okta.X" or "global panther_base_helpers"
    std::string function;  // the name in its module
    std::string change;    // e.g. "its code was replaced"
  };

  // Seals the functions bound in `module`'s namespace as `owner`'s.
  // `bindings`: whether rebinding a name counts (rules: yes; helpers: no).
  // Returns the owner's index for the calls below.
  size_t Seal(const std::string& owner, const pybind11::object& module, bool bindings);

  // Checks `index`'s seals, restoring what changed.
  std::vector<Finding> Check(size_t index);
  // Checks every owner but `except` (SIZE_MAX: all), restoring what changed.
  std::vector<Finding> CheckAll(size_t except = SIZE_MAX);
  // Takes what `index`'s module looks like now as its seal.
  void Reseal(size_t index);

  // Records that `index` ran (the suspects of a later RuleTampered).
  void NoteRun(size_t index);
  // The owners that ran since `index` last did, most recent first, at most
  // `limit`, without `index` itself.
  std::vector<std::string> RanSince(size_t index, size_t limit) const;

  // After a finding, every run is followed by CheckAll (see above).
  bool strict() const { return strict_; }
  void set_strict() { strict_ = true; }

  // Leaves `note` for each rule named in `findings` (the strict check's
  // victims) that was not told of tampering yet; TakePending takes it once.
  // A rule is told at most once per set: later changes are undone silently
  // right after the rule that made them ran (which gets the error).
  void NotePending(const std::vector<Finding>& findings, const std::string& note);
  std::string TakePending(size_t index);
  void MarkTold(size_t index) {
    if (index < owners_.size()) owners_[index].told = true;
  }

  // "rule X's function f: its code was replaced; ..." for messages.
  static std::string Describe(const std::vector<Finding>& findings);

  const std::string& owner(size_t index) const { return owners_[index].owner; }

 private:
  struct FunctionSeal {
    pybind11::str name;
    pybind11::object function;
    pybind11::object code;
    pybind11::object defaults;    // None when absent
    pybind11::object kwdefaults;  // None when absent
    std::vector<pybind11::object> cells;  // closure cell contents (null: empty cell)
  };
  struct Owner {
    std::string owner;
    pybind11::object dict;  // the module's namespace
    bool bindings = false;
    uint64_t dict_version = 0;  // the namespace's version when last checked
    std::vector<FunctionSeal> functions;
    uint64_t last_run = 0;  // run number of its last NoteRun (0: never)
    std::string pending;
    bool told = false;
  };

  static std::vector<FunctionSeal> SealsOf(const pybind11::object& dict);
  static void CheckOne(Owner& owner, std::vector<Finding>* findings);
  static bool Differs(const Owner& owner);

  std::vector<Owner> owners_;
  // The owners of the latest runs: (run number, owner index), newest last.
  std::deque<std::pair<uint64_t, size_t>> recent_;
  uint64_t runs_ = 0;
  bool strict_ = false;
};

}  // namespace pantherd::engine

#endif  // PANTHERD_ENGINE_RULE_INTEGRITY_H_
