"""The rule pre-condition analyzer: which events a rule may fire on.

In Python because Python's own parser is the only exact reader of Python. It
reads a rule's syntax tree and the loaded module's constants; it never calls
rule code. derive(source, module) returns None or a list of conjunctions,
each a list of conditions [path tuple, values, missing_may_match,
hashes_value, prefixes, other_types_may_match, substrings, nonempty_strings].

pantherd embeds this file at build time (engine/CMakeLists.txt turns it into a
C++ character array); engine/rule_prefilter.cc executes it once per
interpreter in a private namespace and calls derive() for each loaded rule
(DerivePrecondition). Its unit tests are
engine/python/prefilter_analyzer_test.py.
"""
import ast

_BUILTINS = ("bool", "set", "list", "dict", "frozenset", "tuple", "str")
_MAX_TERMS = 32
_MAX_DEPTH = 4

# Names and attributes through which code reaches or rebinds a namespace,
# replaces code or builtins, or reaches frames, behind the syntax read here.
# A module that mentions any of them is not analysed.
_REFLECTIVE = frozenset((
    "globals", "locals", "vars", "exec", "eval", "compile", "getattr", "setattr", "delattr",
    "__import__", "__dict__", "__globals__", "__code__", "__builtins__", "__closure__",
    "__defaults__", "__kwdefaults__", "__traceback__", "__self__", "__func__", "f_globals",
    "f_locals", "f_back", "tb_frame", "gi_frame", "cr_frame", "ag_frame", "_getframe",
    "currentframe", "get_referrers", "get_objects", "builtins", "inspect", "gc", "ctypes",
    "importlib", "types"))

# Code flags of functions whose call does not run their body.
_CO_NOT_PLAIN = 0x20 | 0x80 | 0x100 | 0x200  # generator, coroutine, iterable coroutine, async gen

# Conditions are DNFs: a list of conjunctions, each a list of atoms. TRUE has
# one empty conjunction (no constraint); FALSE has none. Every DNF here is an
# over-approximation ("may"), so replacing one by TRUE is always sound.
TRUE = [[]]
FALSE = []


def _or(a, b):
    out = list(a)
    for c in b:
        if c not in out:
            out.append(c)
    if any(not c for c in out):
        return TRUE
    # A conjunction with every atom of another adds nothing to it.
    out = [c for c in out
           if not any(d is not c and len(d) < len(c) and all(t in c for t in d) for d in out)]
    return out if len(out) <= _MAX_TERMS else TRUE


def _and(a, b):
    out = []
    for x in a:
        for y in b:
            c = x + [t for t in y if t not in x]
            if c not in out:
                out.append(c)
    if any(not c for c in out):
        return TRUE
    return out if len(out) <= _MAX_TERMS else TRUE


def _bindings(tree):
    """Every name bound anywhere in `tree`, with a count."""
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
        elif isinstance(node, (ast.MatchAs, ast.MatchStar)) and node.name:
            add(node.name)
        elif isinstance(node, ast.MatchMapping) and node.rest:
            add(node.rest)
    return counts


def _reflective(tree):
    """Whether `tree` mentions a name or attribute of _REFLECTIVE."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id in _REFLECTIVE:
            return True
        if isinstance(node, ast.Attribute) and node.attr in _REFLECTIVE:
            return True
        if isinstance(node, ast.alias) and (
                node.name.split(".")[0] in _REFLECTIVE or node.asname in _REFLECTIVE):
            return True
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in _REFLECTIVE:
            return True
    return False


# Builtins that consume a generator expression or call a key function and
# keep neither.
_CONSUMERS = ("any", "all", "sum", "min", "max", "sorted", "set", "list", "tuple", "frozenset",
              "dict", "next")


def _environment_intact():
    """Whether the builtins the conditions use and the event types' methods
    are the originals (another module may have replaced them)."""
    import builtins
    real = {"bool": type(True), "str": type(""), "list": type([]), "dict": type({}),
            "set": type({1}), "tuple": type(())}
    real["frozenset"] = next(c for c in object.__subclasses__()
                             if c.__name__ == "frozenset" and c.__module__ == "builtins")
    if any(getattr(builtins, name, None) is not cls for name, cls in real.items()):
        return False
    try:
        import _pantherd_event as event_types
    except ImportError:
        return False
    python_function = type(_or)  # the types' own methods are built in
    for cls in (event_types.PantherEvent, event_types.ImmutableCaseInsensitiveDict,
                event_types.ImmutableList):
        for v in vars(cls).values():
            inner = (getattr(v, "__func__", None) if isinstance(v, (staticmethod, classmethod))
                     else v.fget if isinstance(v, property) else v)
            if isinstance(inner, python_function):
                return False
    return True


def _escapes(tree, functions, bound):
    """Whether code outside the module may reach its namespace (and so read
    or rebind its globals, through a function's __globals__ or a frame): a
    function object of it that can outlive the call that made it (a lambda,
    a nested def or class, a generator, a decorated def, a def used as a
    value) or a caught exception held by name (its traceback holds frames).
    A generator expression given to any/all/next/sorted/... or str.join, and a
    lambda given as key= to sorted/min/max/list.sort, do not outlive the call."""
    parents = {}
    for node in ast.walk(tree):
        for child in ast.iter_child_nodes(node):
            parents[child] = node

    def consumer(call, attrs):
        f = call.func
        return ((isinstance(f, ast.Name) and f.id in _CONSUMERS and f.id not in bound)
                or (isinstance(f, ast.Attribute) and f.attr in attrs))

    for node in ast.walk(tree):
        if isinstance(node, ast.GeneratorExp):
            call = parents.get(node)
            if (isinstance(call, ast.Call) and node in call.args
                    and consumer(call, ("join",))):
                continue
            return True
        if isinstance(node, ast.Lambda):
            kw = parents.get(node)
            call = parents.get(kw)
            if (isinstance(kw, ast.keyword) and kw.arg == "key" and isinstance(call, ast.Call)
                    and consumer(call, ("sort",))):
                continue
            return True
        if isinstance(node, (ast.Yield, ast.YieldFrom, ast.Await, ast.AsyncFunctionDef,
                             ast.ClassDef)):
            return True
        if isinstance(node, ast.FunctionDef) and (node.decorator_list
                                                  or parents.get(node) is not tree):
            return True
        if isinstance(node, ast.ExceptHandler) and node.name:
            return True
        if (isinstance(node, ast.Name) and node.id in functions
                and isinstance(node.ctx, ast.Load)):
            parent = parents.get(node)
            if not (isinstance(parent, ast.Call) and parent.func is node):
                return True
    return False


def _plain_function(fn, module):
    """Whether `fn` (a module-level def) is a plain function of one argument
    and the module's attribute of that name is this very function."""
    a = fn.args
    if (fn.decorator_list or a.posonlyargs or a.vararg or a.kwonlyargs or a.kwarg
            or len(a.args) != 1 or a.defaults):
        return False
    # The namespace itself: a module-level __getattr__ would run rule code and
    # answer for names that the function's global lookups do not see.
    code = getattr(vars(module).get(fn.name), "__code__", None)
    return (code is not None and code.co_name == fn.name and code.co_firstlineno == fn.lineno
            and not code.co_flags & _CO_NOT_PLAIN)


class _Module:
    def __init__(self, tree, module):
        self.tree = tree
        self.module = module
        self.bound = _bindings(tree)
        self.declared_global = set()
        for node in ast.walk(tree):
            if isinstance(node, (ast.Global, ast.Nonlocal)):
                self.declared_global.update(node.names)
        self.parents = {}
        for node in ast.walk(tree):
            for child in ast.iter_child_nodes(node):
                self.parents[child] = node
        self.functions = {s.name: s for s in tree.body if isinstance(s, ast.FunctionDef)}
        self.helpers = {}
        # Whether other code may observe the module's globals between calls.
        self.escapes = _escapes(tree, set(self.functions), self.bound)

    def builtin_ok(self, name):
        return name in _BUILTINS and name not in self.bound

    def helper(self, name, stack):
        """The fire DNF of module function `name`, or None when not analysable."""
        if name in self.helpers:
            return self.helpers[name]
        fn = self.functions.get(name)
        if (fn is None or name in stack or len(stack) >= _MAX_DEPTH
                or self.bound.get(name, 0) != 1 or not _plain_function(fn, self.module)):
            return None
        fire = _Function(self, fn, stack + (name,), is_rule=False).fire()
        self.helpers[name] = fire
        return fire


class _Function:
    """The analysis of one function: rule() or a helper it calls with the event.

    fire() is a DNF outside of which a call is known to end without raising
    and without effects, returning exactly False (rule) or a falsy value
    (helper)."""

    def __init__(self, mod, fn, stack, is_rule):
        self.m = mod
        self.fn = fn
        self.stack = stack
        self.is_rule = is_rule
        self.param = fn.args.args[0].arg
        self.local = _bindings(fn)
        self.own_globals = set()
        for node in ast.walk(fn):
            if isinstance(node, (ast.Global, ast.Nonlocal)):
                self.own_globals.update(node.names)
        self.aliases = {}
        self.fires = FALSE

    # ---- atoms --------------------------------------------------------

    def field(self, expr):
        """(path, default) for event.get(...) / event.deep_get(...) or a local
        holding one, else None."""
        if isinstance(expr, ast.Name) and isinstance(expr.ctx, ast.Load):
            return self.aliases.get(expr.id)
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
        if name in self.local or name in self.m.declared_global:
            return None
        namespace = vars(self.m.module)  # not getattr: see _plain_function
        if name not in namespace:
            return None
        value = namespace[name]
        if type(value) in (str, tuple, frozenset):
            return value
        if type(value) in (list, set):
            # Mutable: only if bound once, at module level, to a new list or
            # set made by a display (so that no other name or module holds
            # it), and used nowhere but as the right side of `in` (so that
            # nothing can reach it to change it).
            if self.m.bound.get(name, 0) != 1:
                return None
            fresh = False
            for stmt in self.m.tree.body:
                if isinstance(stmt, ast.Assign):
                    targets, assigned = stmt.targets, stmt.value
                elif isinstance(stmt, ast.AnnAssign) and stmt.value is not None:
                    targets, assigned = [stmt.target], stmt.value
                else:
                    continue
                if len(targets) == 1 and isinstance(targets[0], ast.Name) and (
                        targets[0].id == name):
                    fresh = isinstance(assigned, (ast.List, ast.Set))
            if not fresh:
                return None
            for node in ast.walk(self.m.tree):
                if (isinstance(node, ast.Name) and node.id == name
                        and isinstance(node.ctx, ast.Load)):
                    parent = self.m.parents.get(node)
                    if not (isinstance(parent, ast.Compare) and len(parent.ops) == 1
                            and isinstance(parent.ops[0], (ast.In, ast.NotIn))
                            and parent.comparators[0] is node):
                        return None
            return value
        return None

    def values(self, expr, membership):
        """(sorted str values, hashes_value) that a field is compared with."""
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
            return ((value,), False) if type(value) is str else None
        if type(value) not in (tuple, list, set, frozenset):
            return None
        if any(type(v) is not str for v in value):
            return None
        return tuple(sorted(set(value))), type(value) in (set, frozenset)

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
        return tuple(sorted(set(value)))

    @staticmethod
    def atom(path, values=(), missing=False, hashes=False, prefixes=(), other=False,
             substrings=(), nonempty=False):
        return (path, values, missing, hashes, prefixes, other, substrings, nonempty)

    def startswith(self, test):
        """(atom, may_raise) for `X.startswith(P)`: the atom holds where it may be
        true, and where it may raise when may_raise; else None."""
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
                                   and target.func.id == "str" and self.m.builtin_ok("str")
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
            may_raise = False  # str() of a JSON value never raises
        else:
            field = self.field(target)
            if field is None:
                return None
            path, default = field
            if default is None:
                return None  # None.startswith raises: nothing to skip on
            missing = default
            may_raise = True  # a number, bool, object or array has no .startswith
        missing_may_match = any(missing.startswith(p) for p in prefixes)
        # A number, bool, object or array may pass str() or make .startswith raise.
        a = self.atom(path, prefixes=prefixes, missing=missing_may_match, other=True)
        return a, may_raise

    # ---- expressions ----------------------------------------------------

    # expr() returns (T, F, E, NB): DNFs of the events on which the expression
    # may be truthy, may be falsy, may raise or have effects, and may have a
    # value that is not a bool. Anything not understood is (TRUE,)*4.

    def expr(self, e):
        unknown = (TRUE, TRUE, TRUE, TRUE)
        if isinstance(e, ast.Constant):
            nb = FALSE if type(e.value) is bool else TRUE
            return (TRUE, FALSE, FALSE, nb) if e.value else (FALSE, TRUE, FALSE, nb)
        if isinstance(e, ast.UnaryOp) and isinstance(e.op, ast.Not):
            t, f, x, _ = self.expr(e.operand)
            return f, t, x, FALSE
        if isinstance(e, ast.BoolOp):
            # `a and b and c`: each operand is evaluated while the previous
            # ones were truthy (falsy for `or`); the value is the first falsy
            # (truthy) operand's, or the last one's.
            conj = isinstance(e.op, ast.And)
            parts = [self.expr(v) for v in e.values]
            reach, stop, x, nb = TRUE, FALSE, FALSE, FALSE
            for k, (pt, pf, px, pnb) in enumerate(parts):
                go, ends = (pt, pf) if conj else (pf, pt)
                x = _or(x, _and(reach, px))
                stop = _or(stop, _and(reach, ends))
                if k + 1 < len(parts):
                    nb = _or(nb, _and(reach, _and(ends, pnb)))
                else:
                    nb = _or(nb, _and(reach, pnb))
                reach = _and(reach, go)
            return (reach, stop, x, nb) if conj else (stop, reach, x, nb)
        if (isinstance(e, ast.Call) and isinstance(e.func, ast.Name) and e.func.id == "bool"
                and self.m.builtin_ok("bool") and len(e.args) == 1 and not e.keywords):
            t, f, x, _ = self.expr(e.args[0])
            return t, f, x, FALSE
        field = self.field(e)
        if field is not None:  # the lookup's truth
            path, default = field
            a = self.atom(path, missing=bool(default), other=True, nonempty=True)
            return [[a]], TRUE, FALSE, TRUE
        if (isinstance(e, ast.Call) and isinstance(e.func, ast.Name) and len(e.args) == 1
                and not e.keywords and isinstance(e.args[0], ast.Name)
                and e.args[0].id == self.param and e.func.id not in self.local):
            fire = self.m.helper(e.func.id, self.stack)
            if fire is None:
                return unknown
            return fire, TRUE, fire, TRUE
        found = self.startswith(e)
        if found is not None:
            a, may_raise = found
            return [[a]], TRUE, [[a]] if may_raise else FALSE, FALSE
        if isinstance(e, ast.Compare) and len(e.ops) == 1:
            return self.compare(e)
        return unknown

    def simple(self, e):
        """An operand whose evaluation cannot raise or have effects."""
        if isinstance(e, ast.Constant) or self.field(e) is not None:
            return True
        if isinstance(e, ast.Name):
            return self.constant(e.id) is not None
        return False

    def compare(self, e):
        unknown = (TRUE, TRUE, TRUE, TRUE)
        op, left, right = e.ops[0], e.left, e.comparators[0]
        if isinstance(op, (ast.Eq, ast.NotEq)):
            field, other = self.field(left), right
            if field is None:
                field, other = self.field(right), left
            found = self.values(other, False) if field is not None else None
            if found is None:
                # JSON values and constants compare without raising.
                pure = self.simple(left) and self.simple(right)
                return (TRUE, TRUE, FALSE, FALSE) if pure else unknown
            path, default = field
            a = self.atom(path, values=found[0], missing=default is not None and default in found[0])
            if isinstance(op, ast.Eq):
                return [[a]], TRUE, FALSE, FALSE
            return TRUE, [[a]], FALSE, FALSE
        if isinstance(op, (ast.In, ast.NotIn)):
            positive = isinstance(op, ast.In)
            field = self.field(left)
            if field is not None:
                found = self.values(right, True)
                if found is None:
                    return unknown
                path, default = field
                values, hashes = found
                a = self.atom(path, values=values, hashes=hashes,
                              missing=default is not None and default in values)
                raises = [[a]] if hashes else FALSE  # an unhashable value in a set test
                return ([[a]], TRUE, raises, FALSE) if positive else (TRUE, [[a]], raises, FALSE)
            field = self.field(right)
            if (field is not None and isinstance(left, ast.Constant)
                    and type(left.value) is str):
                # "text" in <lookup>: a substring of a str. A missing field
                # (None), a number or a bool raises; an array or object tests
                # membership. All of these let the rule run.
                path, default = field
                missing = default is None or left.value in default
                a = self.atom(path, substrings=(left.value,), missing=missing, other=True)
                return ([[a]], TRUE, [[a]], FALSE) if positive else (TRUE, [[a]], [[a]], FALSE)
            return unknown
        if isinstance(op, (ast.Is, ast.IsNot)):
            field, other = self.field(left), right
            if field is None:
                field, other = self.field(right), left
            if field is None or not (isinstance(other, ast.Constant) and other.value is None):
                return (TRUE, TRUE, FALSE, FALSE) if (
                    self.simple(left) and self.simple(right)) else unknown
            path, default = field
            a = self.atom(path, missing=default is None)  # only a missing field is None
            return ([[a]], TRUE, FALSE, FALSE) if isinstance(op, ast.Is) else (
                TRUE, [[a]], FALSE, FALSE)
        return unknown

    # ---- statements -----------------------------------------------------

    def fire(self):
        out = self.block(self.fn.body, TRUE, top=True)
        if self.is_rule:
            self.fires = _or(self.fires, out)  # falling off the end returns None
        return self.fires

    def block(self, stmts, guard, top=False):
        """Adds to self.fires what `stmts` may do when entered under `guard`;
        returns the guard under which control falls off their end."""
        for i, s in enumerate(stmts):
            if not guard:
                return FALSE
            if isinstance(s, ast.Pass) or (isinstance(s, ast.Expr)
                                           and isinstance(s.value, ast.Constant)):
                continue
            if isinstance(s, ast.Global) and self.is_rule:
                continue
            if isinstance(s, ast.Assign) and self.assignment(s, top):
                continue
            if isinstance(s, ast.If):
                t, f, x, _ = self.expr(s.test)
                self.fires = _or(self.fires, _and(guard, x))
                after = self.block(s.body, _and(guard, t))
                after = _or(after, self.block(s.orelse, _and(guard, f)))
                guard = after
                continue
            if isinstance(s, ast.Return):
                if s.value is None:
                    if self.is_rule:
                        self.fires = _or(self.fires, guard)  # None is not a bool
                    return FALSE
                t, f, x, nb = self.expr(s.value)
                may = _or(t, x)
                if self.is_rule:
                    may = _or(may, nb)
                self.fires = _or(self.fires, _and(guard, may))
                return FALSE
            # Anything else may do anything; every event reaching it is a
            # candidate, so nothing after it needs reading.
            self.fires = _or(self.fires, guard)
            return FALSE
        return guard

    def assignment(self, s, top):
        """Whether assignment `s` is one the analysis can step over."""
        targets = s.targets
        if len(targets) == 1 and isinstance(targets[0], ast.Name):
            name = targets[0].id
            field = self.field(s.value) if not isinstance(s.value, ast.Name) else None
            if (field is not None and name != self.param and self.local.get(name, 0) == 1
                    and name not in self.own_globals):
                # A local holding a lookup. Only at the top of the function does
                # the assignment run before everything after it; in a branch,
                # a later read may find the name unbound (and raise), so the
                # name is not read as the lookup there.
                if top:
                    self.aliases[name] = field
                return True
        names = []
        for t in targets:
            if isinstance(t, ast.Name):
                names.append(t.id)
                continue
            # Unpacking raises unless the value is a display of exactly as
            # many items.
            if not (isinstance(t, (ast.Tuple, ast.List))
                    and all(isinstance(n, ast.Name) for n in t.elts)
                    and isinstance(s.value, (ast.Tuple, ast.List))
                    and len(s.value.elts) == len(t.elts)):
                return False
            names.extend(n.id for n in t.elts)
        if self.param in names or not self._pure(s.value):
            return False
        if any(n in self.own_globals for n in names):
            # Resetting module state: only at the top of rule(), before
            # anything that may fire, where every call that may count runs it
            # first; and only when no code outside the module can read the
            # globals between calls.
            return self.is_rule and top and not self.fires and not self.m.escapes
        return True

    def _pure(self, expr):
        """Whether evaluating `expr` cannot raise and has no effects."""
        if isinstance(expr, ast.Constant):
            return True
        if isinstance(expr, (ast.Tuple, ast.List)):
            return all(not isinstance(e, ast.Starred) and self._pure(e) for e in expr.elts)
        if isinstance(expr, ast.Set):
            return all(self._hashable(e) for e in expr.elts)
        if isinstance(expr, ast.Dict):
            return all(k is not None and self._hashable(k) for k in expr.keys) and all(
                self._pure(v) for v in expr.values)
        if isinstance(expr, ast.Call):
            return (isinstance(expr.func, ast.Name) and self.m.builtin_ok(expr.func.id)
                    and not expr.args and not expr.keywords)
        return False

    @classmethod
    def _hashable(cls, expr):
        """A constant or a tuple of them: pure, and hashable (a set item or key)."""
        if isinstance(expr, ast.Constant):
            return True
        return isinstance(expr, ast.Tuple) and all(cls._hashable(e) for e in expr.elts)


def derive(source, module):
    try:
        tree = ast.parse(source)
    except Exception:
        return None
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and any(a.name == "*" for a in node.names):
            return None
    if _reflective(tree) or not _environment_intact():
        return None
    mod = _Module(tree, module)
    if mod.escapes:
        # Code elsewhere may rebind or change any global of the module.
        return None
    fn = mod.functions.get("rule")
    if fn is None or mod.bound.get("rule", 0) != 1 or not _plain_function(fn, module):
        return None
    fire = _Function(mod, fn, ("rule",), is_rule=True).fire()
    if not fire or any(not c for c in fire):
        return None
    return [[list(a) for a in c] for c in fire]
