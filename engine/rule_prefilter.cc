#include "engine/rule_prefilter.h"

#include <pybind11/embed.h>

#include <algorithm>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/string_view.h"

namespace pantherd::engine {
namespace {

namespace py = pybind11;

// The analysis, in Python because Python's own parser is the only exact
// reader of Python. It reads the source's syntax tree and the loaded module's
// constants; it never calls rule code. derive() returns None or a list of
// (path tuple, values list, missing_may_match, hashes_value).
constexpr char kAnalyzer[] = R"PY(
import ast

_BUILTINS = ("bool", "set", "list", "dict", "frozenset", "tuple", "str")


def _bindings(tree):
    """Every name bound anywhere in the module, with a count."""
    counts = {}
    def add(name):
        counts[name] = counts.get(name, 0) + 1
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
            add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            add(node.name)
        elif isinstance(node, ast.alias):
            add((node.asname or node.name).split(".")[0])
        elif isinstance(node, ast.arg):
            add(node.arg)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            add(node.name)
    return counts


class _Analysis:
    def __init__(self, tree, module, fn):
        self.tree = tree
        self.module = module
        self.param = fn.args.args[0].arg
        self.bound = _bindings(tree)
        self.declared_global = set()
        for node in ast.walk(tree):
            if isinstance(node, (ast.Global, ast.Nonlocal)):
                self.declared_global.update(node.names)
        self.rule_local = set(_bindings(fn))
        self.parents = {}
        for node in ast.walk(tree):
            for child in ast.iter_child_nodes(node):
                self.parents[child] = node

    def builtin_ok(self, name):
        return name in _BUILTINS and name not in self.bound

    def pure(self, expr):
        if isinstance(expr, ast.Constant):
            return True
        if isinstance(expr, (ast.Tuple, ast.List, ast.Set)):
            return all(self.pure(e) for e in expr.elts)
        if isinstance(expr, ast.Dict):
            return all(k is not None and self.pure(k) for k in expr.keys) and all(
                self.pure(v) for v in expr.values)
        if isinstance(expr, ast.Call):
            return (isinstance(expr.func, ast.Name) and self.builtin_ok(expr.func.id)
                    and not expr.args and not expr.keywords)
        return False

    def field(self, expr):
        """(path, default) for event.get(...) / event.deep_get(...), else None."""
        if not (isinstance(expr, ast.Call) and isinstance(expr.func, ast.Attribute)
                and isinstance(expr.func.value, ast.Name) and expr.func.value.id == self.param):
            return None
        args = expr.args
        if any(not isinstance(a, ast.Constant) for a in args):
            return None
        default = None
        for kw in expr.keywords:
            if kw.arg != "default" or not isinstance(kw.value, ast.Constant):
                return None
            default = kw.value.value
        if expr.func.attr == "get":
            if len(args) == 2 and not expr.keywords:
                default = args[1].value
                args = args[:1]
            if len(args) != 1:
                return None
        elif expr.func.attr == "deep_get":
            if not args:
                return None
        else:
            return None
        if any(type(a.value) is not str for a in args):
            return None
        if default is not None and type(default) is not str:
            return None
        return tuple(a.value for a in args), default

    def constant(self, name):
        """The value of a module-level name that nothing can change, else None."""
        if name in self.rule_local or name in self.declared_global:
            return None
        if not hasattr(self.module, name):
            return None
        value = getattr(self.module, name)
        if type(value) in (str, tuple, frozenset):
            return value
        if type(value) in (list, set):
            # Mutable: only if bound once, by a plain assignment at module
            # level, and used nowhere but as the right side of `in`.
            if self.bound.get(name, 0) != 1:
                return None
            assigned = False
            for stmt in self.tree.body:
                targets = stmt.targets if isinstance(stmt, ast.Assign) else (
                    [stmt.target] if isinstance(stmt, ast.AnnAssign) else [])
                if any(isinstance(t, ast.Name) and t.id == name for t in targets):
                    assigned = True
            if not assigned:
                return None
            for node in ast.walk(self.tree):
                if isinstance(node, ast.Name) and node.id == name and isinstance(node.ctx, ast.Load):
                    parent = self.parents.get(node)
                    if not (isinstance(parent, ast.Compare) and len(parent.ops) == 1
                            and isinstance(parent.ops[0], (ast.In, ast.NotIn))
                            and parent.comparators[0] is node):
                        return None
            return value
        return None

    def values(self, expr, membership):
        """(set of str, hashes_value) that the field is compared with."""
        if isinstance(expr, ast.Constant):
            value = expr.value
        elif isinstance(expr, (ast.Tuple, ast.List, ast.Set)) and membership:
            if not all(isinstance(e, ast.Constant) for e in expr.elts):
                return None
            value = (set if isinstance(expr, ast.Set) else tuple)(e.value for e in expr.elts)
        elif isinstance(expr, ast.Name):
            value = self.constant(expr.id)
            if value is None:
                return None
        else:
            return None
        if not membership:
            return ({value}, False) if type(value) is str else None
        if type(value) not in (tuple, list, set, frozenset):
            return None
        if any(type(v) is not str for v in value):
            return None
        return set(value), type(value) in (set, frozenset)

    def prefixes(self, expr):
        """The non-empty str prefixes `expr` (a str or tuple of str) gives, else None."""
        if isinstance(expr, ast.Constant):
            value = expr.value
        elif isinstance(expr, ast.Tuple):
            if not all(isinstance(e, ast.Constant) for e in expr.elts):
                return None
            value = tuple(e.value for e in expr.elts)
        elif isinstance(expr, ast.Name):
            value = self.constant(expr.id)
        else:
            return None
        if type(value) is str:
            value = (value,)
        if type(value) is not tuple or not value:
            return None
        if any(type(v) is not str or not v for v in value):
            return None
        return sorted(set(value))

    def startswith(self, test):
        """The condition under which `X.startswith(P)` is true, else None."""
        if not (isinstance(test, ast.Call) and isinstance(test.func, ast.Attribute)
                and test.func.attr == "startswith" and len(test.args) == 1
                and not test.keywords):
            return None
        prefixes = self.prefixes(test.args[0])
        if prefixes is None:
            return None
        target = test.func.value
        inner = target.args[0] if (isinstance(target, ast.Call)
                                   and isinstance(target.func, ast.Name)
                                   and target.func.id == "str" and self.builtin_ok("str")
                                   and len(target.args) == 1 and not target.keywords) else None
        if (inner is not None and isinstance(inner, ast.BoolOp) and isinstance(inner.op, ast.Or)
                and len(inner.values) == 2 and isinstance(inner.values[1], ast.Constant)
                and inner.values[1].value == ""):
            # str(<lookup> or ""): a missing field reads as its default, or "".
            field = self.field(inner.values[0])
            if field is None:
                return None
            path, default = field
            missing = str(default or "")
        else:
            field = self.field(target)
            if field is None:
                return None
            path, default = field
            if default is None:
                return None  # None.startswith raises: nothing to skip on
            missing = default
        missing_may_match = any(missing.startswith(p) for p in prefixes)
        return (path, [], missing_may_match, False, prefixes, True)

    def condition(self, test, continues_when):
        """The field condition under which `test` evaluates to `continues_when`."""
        if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
            return self.condition(test.operand, not continues_when)
        if continues_when:
            found = self.startswith(test)
            if found is not None:
                return found
        if not isinstance(test, ast.Compare) or len(test.ops) != 1:
            return None
        op, left, right = test.ops[0], test.left, test.comparators[0]
        if isinstance(op, (ast.Eq, ast.NotEq)):
            field, other = self.field(left), right
            if field is None:
                field, other = self.field(right), left
            membership = False
        elif isinstance(op, (ast.In, ast.NotIn)):
            field, other, membership = self.field(left), right, True
        else:
            return None
        if field is None:
            return None
        positive = isinstance(op, (ast.Eq, ast.In))
        if positive != continues_when:
            return None
        found = self.values(other, membership)
        if found is None:
            return None
        values, hashes = found
        path, default = field
        return (path, sorted(values), default is not None and default in values, hashes, [],
                False)

    def leading(self, operands, continues_when):
        out = []
        for operand in operands:
            c = self.condition(operand, continues_when)
            if c is None:
                break
            out.append(c)
        return out


def derive(source, module):
    try:
        tree = ast.parse(source)
    except Exception:
        return None
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and any(a.name == "*" for a in node.names):
            return None
    defs = [s for s in tree.body if isinstance(s, ast.FunctionDef) and s.name == "rule"]
    if len(defs) != 1 or _bindings(tree).get("rule", 0) != 1:
        return None
    fn = defs[0]
    a = fn.args
    if (fn.decorator_list or a.posonlyargs or a.vararg or a.kwonlyargs or a.kwarg
            or len(a.args) != 1 or a.defaults):
        return None
    code = getattr(getattr(module, "rule", None), "__code__", None)
    if code is None or code.co_name != "rule" or code.co_firstlineno != fn.lineno:
        return None
    an = _Analysis(tree, module, fn)
    conditions = []
    declared = set()
    for i, stmt in enumerate(fn.body):
        if (i == 0 and isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant)
                and isinstance(stmt.value.value, str)):
            continue
        if isinstance(stmt, ast.Global):
            declared.update(stmt.names)
            continue
        if (isinstance(stmt, ast.Assign)
                and all(isinstance(t, ast.Name) and t.id != an.param for t in stmt.targets)
                and an.pure(stmt.value)):
            continue
        if (isinstance(stmt, ast.If) and not stmt.orelse and len(stmt.body) == 1
                and isinstance(stmt.body[0], ast.Return)
                and isinstance(stmt.body[0].value, ast.Constant)
                and stmt.body[0].value.value is False):
            test = stmt.test
            operands = test.values if (isinstance(test, ast.BoolOp)
                                       and isinstance(test.op, ast.Or)) else [test]
            found = an.leading(operands, False)
            conditions.extend(found)
            if len(found) == len(operands):
                continue
            break
        if isinstance(stmt, ast.Return) and stmt.value is not None:
            expr = stmt.value
            if (isinstance(expr, ast.Call) and isinstance(expr.func, ast.Name)
                    and an.builtin_ok(expr.func.id) and expr.func.id == "bool"
                    and len(expr.args) == 1 and not expr.keywords):
                expr = expr.args[0]
            operands = expr.values if (isinstance(expr, ast.BoolOp)
                                       and isinstance(expr.op, ast.And)) else [expr]
            conditions.extend(an.leading(operands, True))
        break
    return conditions or None
)PY";

// The analyzer's derive(), compiled once per interpreter.
py::object Analyzer() {
  static py::object* derive = nullptr;  // Owning thread only; lives with the interpreter.
  if (derive == nullptr) {
    py::dict scope;
    scope["__builtins__"] = py::module_::import("builtins");
    py::exec(kAnalyzer, scope);
    derive = new py::object(scope["derive"]);
  }
  return *derive;
}

}  // namespace

std::optional<Precondition> DerivePrecondition(const LoadedRule& rule) {
  try {
    py::object result = Analyzer()(rule.spec.python_source, rule.module);
    if (result.is_none()) return std::nullopt;
    Precondition out;
    for (py::handle item : result) {
      py::tuple t = py::reinterpret_borrow<py::tuple>(item);
      FieldCondition c;
      for (py::handle key : py::reinterpret_borrow<py::tuple>(t[0])) {
        c.path.push_back(key.cast<std::string>());
      }
      for (py::handle value : py::reinterpret_borrow<py::list>(t[1])) {
        c.values.insert(value.cast<std::string>());
      }
      c.missing_may_match = t[2].cast<bool>();
      c.hashes_value = t[3].cast<bool>();
      for (py::handle prefix : py::reinterpret_borrow<py::list>(t[4])) {
        c.prefixes.push_back(prefix.cast<std::string>());
      }
      c.other_types_may_match = t[5].cast<bool>();
      out.all.push_back(std::move(c));
    }
    if (out.all.empty()) return std::nullopt;
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
      if (c.values.contains(absl::string_view(probe.text.data(), probe.text.size()))) return true;
      for (const std::string& prefix : c.prefixes) {
        if (absl::StartsWith(absl::string_view(probe.text.data(), probe.text.size()), prefix)) {
          return true;
        }
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
  rest_.resize(preconditions.size());
  for (int i = 0; i < static_cast<int>(preconditions.size()); ++i) {
    const std::optional<Precondition>& p = preconditions[i];
    if (!p.has_value() || p->all.empty()) {
      always_.push_back(i);
      continue;
    }
    ++conditioned_;
    const FieldCondition& first = p->all.front();
    auto it = std::find_if(paths_.begin(), paths_.end(),
                           [&](const PathIndex& index) { return index.path == first.path; });
    if (it == paths_.end()) {
      paths_.push_back(PathIndex{});
      paths_.back().path = first.path;
      it = paths_.end() - 1;
    }
    for (const std::string& value : first.values) it->by_value[value].push_back(i);
    for (const std::string& prefix : first.prefixes) it->by_prefix.emplace_back(prefix, i);
    if (first.missing_may_match) it->when_missing.push_back(i);
    if (first.hashes_value || first.other_types_may_match) it->when_unhashable.push_back(i);
    if (first.other_types_may_match) it->when_hashable.push_back(i);
    it->when_unknown.push_back(i);
    rest_[i].assign(p->all.begin() + 1, p->all.end());
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
        if (!index.by_prefix.empty()) {
          string_hits.clear();
          if (hits != nullptr) string_hits = *hits;
          for (const auto& [prefix, rule] : index.by_prefix) {
            if (absl::StartsWith(text, prefix)) string_hits.push_back(rule);
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
    for (int rule : *hits) {
      bool all = true;
      for (const FieldCondition& c : rest_[rule]) {
        if (!MayHold(c, document)) {
          all = false;
          break;
        }
      }
      if (all) out->push_back(rule);
    }
  }
  if (out->size() > unconditional) {
    std::sort(out->begin(), out->end());
    // A rule with several matching prefixes was added once per prefix.
    out->erase(std::unique(out->begin(), out->end()), out->end());
  }
}

}  // namespace pantherd::engine
