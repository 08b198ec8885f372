#include "engine/rule_integrity.h"

#include <Python.h>

#include <algorithm>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace py = pybind11;

namespace pantherd::engine {
namespace {

// The most recent runs remembered for RanSince.
constexpr size_t kRecentRuns = 512;

// A new reference to `p`, or None for null.
py::object OrNone(PyObject* p) {
  return p == nullptr ? py::none() : py::reinterpret_borrow<py::object>(p);
}

PyObject* NoneToNull(const py::object& o) { return o.is_none() ? nullptr : o.ptr(); }

// A number that changes whenever `dict` changes (CPython's dict version tag,
// deprecated from 3.12 on); 0 where it is not available: always "changed".
uint64_t DictVersion(PyObject* dict) {
#if PY_VERSION_HEX < 0x030C0000
  return reinterpret_cast<PyDictObject*>(dict)->ma_version_tag;
#else
  (void)dict;
  return 0;
#endif
}

}  // namespace

std::vector<RuleIntegrity::FunctionSeal> RuleIntegrity::SealsOf(const py::object& dict) {
  std::vector<FunctionSeal> seals;
  PyObject* key = nullptr;
  PyObject* value = nullptr;
  Py_ssize_t pos = 0;
  while (PyDict_Next(dict.ptr(), &pos, &key, &value)) {
    if (!PyUnicode_Check(key) || !PyFunction_Check(value)) continue;
    FunctionSeal s;
    s.name = py::reinterpret_borrow<py::str>(key);
    s.function = py::reinterpret_borrow<py::object>(value);
    s.code = OrNone(PyFunction_GetCode(value));
    s.defaults = OrNone(PyFunction_GetDefaults(value));
    s.kwdefaults = OrNone(PyFunction_GetKwDefaults(value));
    if (PyObject* closure = PyFunction_GetClosure(value); closure != nullptr) {
      for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(closure); ++i) {
        PyObject* cell = PyTuple_GET_ITEM(closure, i);
        // A null object for an empty cell (or a non-cell).
        s.cells.push_back(PyCell_Check(cell) ? py::reinterpret_borrow<py::object>(PyCell_GET(cell))
                                             : py::object());
      }
    }
    seals.push_back(std::move(s));
  }
  return seals;
}

size_t RuleIntegrity::Seal(const std::string& owner, const py::object& module, bool bindings) {
  Owner o;
  o.owner = owner;
  o.dict = module.attr("__dict__");
  o.bindings = bindings;
  o.functions = SealsOf(o.dict);
  o.dict_version = DictVersion(o.dict.ptr());
  owners_.push_back(std::move(o));
  return owners_.size() - 1;
}

void RuleIntegrity::CheckOne(Owner& owner, std::vector<Finding>* findings) {
  // An unchanged namespace binds the same functions: only their fields can
  // have changed.
  const uint64_t version = DictVersion(owner.dict.ptr());
  const bool bindings = owner.bindings && (version == 0 || version != owner.dict_version);
  for (FunctionSeal& s : owner.functions) {
    PyObject* fn = s.function.ptr();
    auto found = [&](std::string change) {
      findings->push_back({owner.owner, std::string(s.name), std::move(change)});
    };
    if (bindings) {
      PyObject* bound = PyDict_GetItemWithError(owner.dict.ptr(), s.name.ptr());  // borrowed
      if (bound == nullptr) PyErr_Clear();
      if (bound != fn) {
        found(bound == nullptr ? "it was deleted from its module"
                               : "its name was bound to another object");
        if (PyDict_SetItem(owner.dict.ptr(), s.name.ptr(), fn) != 0) PyErr_Clear();
      }
    }
    if (PyFunction_GET_CODE(fn) != s.code.ptr()) {
      found("its code was replaced");
      if (PyObject_SetAttrString(fn, "__code__", s.code.ptr()) != 0) PyErr_Clear();
    }
    if (PyFunction_GET_DEFAULTS(fn) != NoneToNull(s.defaults)) {
      found("its default arguments were replaced");
      if (PyFunction_SetDefaults(fn, s.defaults.ptr()) != 0) PyErr_Clear();
    }
    if (PyFunction_GET_KW_DEFAULTS(fn) != NoneToNull(s.kwdefaults)) {
      found("its keyword defaults were replaced");
      if (PyFunction_SetKwDefaults(fn, s.kwdefaults.ptr()) != 0) PyErr_Clear();
    }
    // Closures only for rules (resealed after their own runs): a helper may
    // keep state in a closure.
    if (!owner.bindings) continue;
    PyObject* closure = PyFunction_GET_CLOSURE(fn);
    const size_t cells = closure == nullptr ? 0 : static_cast<size_t>(PyTuple_GET_SIZE(closure));
    for (size_t i = 0; i < cells && i < s.cells.size(); ++i) {
      PyObject* cell = PyTuple_GET_ITEM(closure, static_cast<Py_ssize_t>(i));
      if (PyCell_Check(cell) && PyCell_GET(cell) != s.cells[i].ptr()) {
        found("a variable of its closure was replaced");
        if (PyCell_Set(cell, s.cells[i].ptr()) != 0) PyErr_Clear();
      }
    }
  }
  owner.dict_version = DictVersion(owner.dict.ptr());  // restoring may change it
}

bool RuleIntegrity::Differs(const Owner& o) {
  const uint64_t version = DictVersion(o.dict.ptr());
  const bool bindings = o.bindings && (version == 0 || version != o.dict_version);
  if (bindings) {
    size_t functions = 0;
    PyObject* key = nullptr;
    PyObject* value = nullptr;
    Py_ssize_t pos = 0;
    while (PyDict_Next(o.dict.ptr(), &pos, &key, &value)) functions += PyFunction_Check(value);
    if (functions != o.functions.size()) return true;
  }
  for (const FunctionSeal& s : o.functions) {
    PyObject* fn = s.function.ptr();
    if (bindings) {
      PyObject* bound = PyDict_GetItemWithError(o.dict.ptr(), s.name.ptr());
      if (bound == nullptr) PyErr_Clear();
      if (bound != fn) return true;
    }
    if (PyFunction_GET_CODE(fn) != s.code.ptr() ||
        PyFunction_GET_DEFAULTS(fn) != NoneToNull(s.defaults) ||
        PyFunction_GET_KW_DEFAULTS(fn) != NoneToNull(s.kwdefaults)) {
      return true;
    }
    PyObject* closure = PyFunction_GET_CLOSURE(fn);
    const size_t cells = closure == nullptr ? 0 : static_cast<size_t>(PyTuple_GET_SIZE(closure));
    for (size_t i = 0; i < cells && i < s.cells.size(); ++i) {
      PyObject* cell = PyTuple_GET_ITEM(closure, static_cast<Py_ssize_t>(i));
      if (PyCell_Check(cell) && PyCell_GET(cell) != s.cells[i].ptr()) return true;
    }
  }
  return false;
}

std::vector<RuleIntegrity::Finding> RuleIntegrity::Check(size_t index) {
  std::vector<Finding> findings;
  if (index < owners_.size()) CheckOne(owners_[index], &findings);
  return findings;
}

std::vector<RuleIntegrity::Finding> RuleIntegrity::CheckAll(size_t except) {
  std::vector<Finding> findings;
  for (size_t i = 0; i < owners_.size(); ++i) {
    if (i != except) CheckOne(owners_[i], &findings);
  }
  return findings;
}

void RuleIntegrity::Reseal(size_t index) {
  if (index >= owners_.size()) return;
  Owner& o = owners_[index];
  if (Differs(o)) o.functions = SealsOf(o.dict);
  o.dict_version = DictVersion(o.dict.ptr());  // compare first: nothing changed is the rule
}

void RuleIntegrity::NoteRun(size_t index) {
  if (index >= owners_.size()) return;
  ++runs_;
  owners_[index].last_run = runs_;
  recent_.emplace_back(runs_, index);
  if (recent_.size() > kRecentRuns) recent_.pop_front();
}

std::vector<std::string> RuleIntegrity::RanSince(size_t index, size_t limit) const {
  std::vector<std::string> out;
  if (index >= owners_.size()) return out;
  const uint64_t since = owners_[index].last_run;
  absl::flat_hash_set<size_t> seen;
  for (auto it = recent_.rbegin(); it != recent_.rend() && out.size() < limit; ++it) {
    if (it->first <= since) break;
    if (it->second == index || !seen.insert(it->second).second) continue;
    out.push_back(owners_[it->second].owner);
  }
  return out;
}

void RuleIntegrity::NotePending(const std::vector<Finding>& findings, const std::string& note) {
  for (const Finding& f : findings) {
    for (Owner& o : owners_) {
      if (o.owner == f.owner && o.bindings && !o.told) o.pending = note;
    }
  }
}

std::string RuleIntegrity::TakePending(size_t index) {
  if (index >= owners_.size()) return "";
  std::string note = std::exchange(owners_[index].pending, std::string());
  if (!note.empty()) owners_[index].told = true;
  return note;
}

std::string RuleIntegrity::Describe(const std::vector<Finding>& findings) {
  std::vector<std::string> parts;
  for (const Finding& f : findings) {
    parts.push_back(absl::StrCat(f.owner, "'s function ", f.function, ": ", f.change));
  }
  return absl::StrJoin(parts, "; ");
}

}  // namespace pantherd::engine
