"""Random rules and events for the differential test of the rule pre-conditions.

Used by engine/rule_prefilter_diff_test.cc, which runs this file in the test's
embedded interpreter and calls generate_group(seed, rules, events). Everything
is drawn from random.Random(seed): the same seed gives the same group.

A group is a rule set of `rules` generated rules (each its own module, RuleID
Gen.R<seed>.<i>), one shared global helper module (HELPER_ID), one data model
of Okta.SystemLog, and `events` events. The rules are built from the
constructs the analysis accepts (field lookups compared in every way it
reads, branches, early returns, locals holding lookups, helper functions,
module constants, resets of globals at the top of rule()) mixed with what it
must not be fooled by: module state mutated by rule(), helpers, title() or
module code (append, extend, add, update, insert, pop, clear, item
assignment, del, augmented assignment, `global` rebinding), constants reached
through aliases or imported from the helper module, helpers of the helper
module that mutate what they are given, data model lookups (event.udm),
generator functions, escaping functions, and statements that raise.

Per-call scratch globals are named SCRATCH_...: rule() may reset them at its
top. The test compares every global that rule() assigns outside branches
through title()'s output only (see ModuleState in
engine/rule_prefilter_test_util.h).
"""

import json
import random
import re

HELPER_ID = "pf_gen_helpers"

HELPER_SOURCE = '''\
"""Shared helpers of the generated rules: state, and functions that mutate."""
SHARED = ["user.session.start", "policy.evaluate_sign_on"]
SHARED_T = ("user.session.start", "user.account.lock")
CALLS = 0
_KEPT = []


def add(xs, value):
    xs.append(value)


def grow(value):
    SHARED.append(value)


def bump():
    global CALLS
    CALLS += 1
    return CALLS


def keep(fn):
    _KEPT.append(fn)


def peek():
    return ",".join(str(fn()) for fn in _KEPT)


def poke():
    """Changes the constants of the modules whose functions were kept."""
    for fn in list(_KEPT):
        namespace = getattr(fn, "__globals__", {})
        for name, value in list(namespace.items()):
            if name.startswith("C") and isinstance(value, list):
                value.append("user.account.lock")
            elif name.startswith("C") and isinstance(value, tuple):
                namespace[name] = value + ("user.account.lock",)


def check(event):
    return event.get("severity") == "WARN"


def is_type(event, value):
    return event.get("eventType") == value
'''

MODEL_YML = """AnalysisType: datamodel
DataModelID: Gen.Okta.SystemLog
Enabled: true
Filename: gen_model.py
LogTypes:
  - Okta.SystemLog
Mappings:
  - Name: event_type
    Path: $.eventType
  - Name: actor
    Path: $.actor.alternateId
  - Name: sev
    Method: get_sev
"""

MODEL_SOURCE = '''\
def get_sev(event):
    return event.get("severity")
'''

HELPER_YML = "AnalysisType: global\nGlobalID: %s\nFilename: %s.py\n" % (HELPER_ID, HELPER_ID)

# Event fields the rules read and the strings they compare them with.
FIELDS = {
    ("eventType",): ["user.session.start", "user.account.lock", "policy.evaluate_sign_on",
                     "system.api_token.create", "user.session", "user.", ""],
    ("severity",): ["WARN", "INFO", "warn", ""],
    ("outcome", "result"): ["SUCCESS", "FAILURE", "SUCC"],
    ("actor", "alternateId"): ["admin", "user1", "admin@example.com", ""],
    ("client", "ipAddress"): ["10.0.0.1", "10.0.0.10", "192.168.1.1"],
    ("k",): ["a", "b", "ab", "ba", ""],
}
PATHS = list(FIELDS)
STRINGS = sorted({v for vs in FIELDS.values() for v in vs} | {"zzz"})


class _Rule:
    """One generated rule module."""

    def __init__(self, rnd):
        self.r = rnd
        self.consts = {}  # name -> (kind, python text)
        self.lines = []  # module-level lines before the functions
        self.after = []  # module-level lines after the functions
        self.helpers = []  # names of module helper functions (event) -> ...
        self.functions = []  # sources of functions
        self.locals = []  # local aliases bound at the top of the current function
        self.fn_globals = []  # names the current function declares global

    # ---- leaves -------------------------------------------------------

    def choice(self, xs):
        return self.r.choice(xs)

    def chance(self, p):
        return self.r.random() < p

    def string(self, path=None):
        pool = FIELDS[path] if path and self.chance(0.85) else STRINGS
        return self.choice(pool)

    def strings(self, path, n=None):
        n = n or self.r.randint(1, 3)
        return sorted({self.string(path) for _ in range(n)})

    def lookup(self, path=None):
        """A lookup expression of `path` (or of a random one) and its path."""
        path = path or self.choice(PATHS)
        roll = self.r.random()
        if self.locals and roll < 0.15:
            name, p = self.choice(self.locals)
            return name, p
        if roll < 0.04:
            return "event.udm(%r)" % self.choice(["event_type", "actor", "sev"]), path
        if roll < 0.06:
            return "event[%r]" % path[0], path
        if roll < 0.08:
            return "event.get(%r, 0)" % path[0], path
        default = None
        if self.chance(0.3):
            default = self.string(path) if self.chance(0.8) else "none"
        keys = path
        if self.chance(0.05):
            # Lookups are case-insensitive.
            keys = tuple(k.upper() if self.chance(0.5) else k.capitalize() for k in path)
        if len(path) == 1 and self.chance(0.7):
            if default is None:
                return "event.get(%r)" % keys[0], path
            if self.chance(0.5):
                return "event.get(%r, %r)" % (keys[0], default), path
            return "event.get(%r, default=%r)" % (keys[0], default), path
        keys = ", ".join(repr(k) for k in keys)
        if default is None:
            return "event.deep_get(%s)" % keys, path
        return "event.deep_get(%s, default=%r)" % (keys, default), path

    def const(self, kind, path):
        """A module constant of `kind` holding strings of `path`; its name."""
        name = "C%d_%s" % (len(self.consts), kind.upper())
        values = self.strings(path)
        if kind == "str":
            text = repr(values[0])
        elif kind == "tuple":
            text = repr(tuple(values))
        elif kind == "frozenset":
            text = "frozenset(%r)" % (set(values),)
        elif kind == "list":
            text = repr(values)
        elif kind == "set":
            text = repr(set(values))
        elif kind == "setcall":
            text = "set(%r)" % (values,)
        elif kind == "alias":
            base = self.const(self.choice(["list", "set", "tuple"]), path)
            text = base
        elif kind == "chain":
            other = "C%d_CHAINED" % len(self.consts)
            self.consts[other] = ("list", None)
            self.lines.append("%s = %s = %r" % (name, other, values))
            self.consts[name] = (kind, None)
            return name
        elif kind == "shared":
            text = HELPER_ID + "." + self.choice(["SHARED", "SHARED_T"])
        else:
            raise ValueError(kind)
        self.lines.append("%s = %s" % (name, text))
        self.consts[name] = (kind, text)
        return name

    # ---- conditions ---------------------------------------------------

    def cond(self, depth=0):
        roll = self.r.random()
        if depth < 2 and roll < 0.15:
            op = self.choice([" and ", " or "])
            return "(" + op.join(self.cond(depth + 1) for _ in range(self.r.randint(2, 3))) + ")"
        if depth < 3 and roll < 0.22:
            return "not " + self.cond(depth + 1)
        if depth < 3 and roll < 0.26:
            return "bool(%s)" % self.cond(depth + 1)
        if roll < 0.30 and self.helpers:
            return "%s(event)" % self.choice(self.helpers)
        if roll < 0.33:
            return self.choice([
                "COUNT > 1", "len(SEEN) > 0", "FLAG", "'x' in D",
                "%s.check(event)" % HELPER_ID,
                "%s.is_type(event, %r)" % (HELPER_ID, self.string(("eventType",))),
                "%s.CALLS > 2" % HELPER_ID,
            ])
        look, path = self.lookup()
        roll = self.r.random()
        if roll < 0.25:
            op = self.choice(["==", "!="])
            if self.chance(0.2):
                return "%r %s %s" % (self.string(path), op, look)
            if self.chance(0.15):
                return "%s %s %s" % (look, op, self.const("str", path))
            return "%s %s %r" % (look, op, self.string(path))
        if roll < 0.55:
            op = self.choice(["in", "not in"])
            form = self.r.random()
            values = self.strings(path)
            if form < 0.2:
                rhs = repr(tuple(values))
            elif form < 0.3:
                rhs = repr(values)
            elif form < 0.4:
                rhs = repr(set(values))
            else:
                rhs = self.const(self.choice(
                    ["tuple", "frozenset", "list", "set", "setcall", "alias", "chain", "shared",
                     "list", "set"]), path)
            return "%s %s %s" % (look, op, rhs)
        if roll < 0.62:
            return "%s is %sNone" % (look, self.choice(["", "not "]))
        if roll < 0.72:
            return "%r %s %s" % (self.string(path)[:3], self.choice(["in", "not in"]), look)
        if roll < 0.84:
            prefixes = [p[:self.r.randint(1, 5)] for p in self.strings(path) if p]
            if not prefixes:
                prefixes = ["u"]
            arg = repr(prefixes[0]) if len(prefixes) == 1 else repr(tuple(prefixes))
            if self.chance(0.2):
                arg = self.const("tuple", path)
            if self.chance(0.5):
                return "str(%s or '').startswith(%s)" % (look, arg)
            return "%s.startswith(%s)" % (look, arg)
        if roll < 0.92:
            return self.choice(["%s", "bool(%s)", "not %s"]) % look
        return self.choice(["True", "False", "None", "'yes'", "0"])

    # ---- statements ---------------------------------------------------

    def effect(self):
        """A statement that changes module state (and may raise); a `global`
        it needs is declared at the top of the current function."""
        text = self._effect()
        if text.startswith("global "):
            declaration, text = text.split("\n", 1)
            name = declaration[len("global "):]
            if name not in self.fn_globals:
                self.fn_globals.append(name)
        return text

    def _effect(self):
        v = repr(self.string(("eventType",)))
        lists = [n for n, (k, _) in self.consts.items() if k in ("list", "alias", "chain", "shared")]
        sets = [n for n, (k, _) in self.consts.items() if k in ("set", "setcall")]
        pool = [
            "SEEN.append(%s)" % v, "SEEN.extend([%s])" % v, "SEEN.insert(0, %s)" % v,
            "SEEN.pop()", "SEEN.clear()", "SEEN += [%s]" % v, "global SEEN\nSEEN += [%s]" % v, "D[%s] = 1" % v, "del D[%s]" % v,
            "D.update({%s: 2})" % v, "D.pop(%s, None)" % v,
            "global COUNT\nCOUNT += 1", "global COUNT\nCOUNT = COUNT + 1", "global FLAG\nFLAG = True",
            "global SEEN\nSEEN = [%s]" % v,
            "%s.grow(%s)" % (HELPER_ID, v), "%s.bump()" % HELPER_ID,
            "%s.SHARED.append(%s)" % (HELPER_ID, v),
        ]
        for n in lists:
            pool += ["%s.append(%s)" % (n, v), "%s.extend([%s])" % (n, v), "%s.pop()" % n,
                     "%s.clear()" % n, "%s.insert(0, %s)" % (n, v), "%s[0:0] = [%s]" % (n, v),
                     "%s.add(%s, %s)" % (HELPER_ID, n, v), "global %s\n%s += [%s]" % (n, n, v),
                     "global %s\n%s = [%s]" % (n, n, v), "%s.__setitem__(slice(0, 0), [%s])" % (n, v),
                     "del %s[0]" % n]
        for n in sets:
            pool += ["%s.add(%s)" % (n, v), "%s.update([%s])" % (n, v), "%s.discard(%s)" % (n, v),
                     "%s.clear()" % n, "%s |= {%s}" % (n, v), "global %s\n%s = {%s}" % (n, n, v)]
        for n, (k, _) in self.consts.items():
            if k in ("tuple", "str", "frozenset"):
                pool.append("global %s\n%s = %s + %s" % (
                    n, n, n, {"tuple": "(%s,)" % v, "str": v, "frozenset": "frozenset({%s})" % v}[k]))
        return self.choice(pool)

    def raising(self):
        return self.choice([
            "user, domain = ('admin',)", "a, b = 'abc'", "a, b = 1", "x = {['a']: 1}",
            "x = {['a']}", "x = 1 / 0", "raise ValueError('generated')",
            "assert %s" % self.lookup()[0], "x = event['missing_field']", "x = undefined_name",
            "x = int('z')", "(a, b), c = (1, 2), 3, 4", "x = {(): 1, ([],): 2}",
            "x = %s.lower()" % self.lookup()[0], "x = len(%s)" % self.lookup()[0],
        ])

    def pure(self):
        return self.choice([
            "x = 1", "a, b = (1, 2)", "x = {}", "x = {'a': 1, ('b',): [2]}", "x = []", "x = ()",
            "x = {'a', ('b', 1)}", "[a, b] = ['x', 'y']", "x = y = 'z'", "x = dict()", "x = set()",
            "pass", "'''docstring'''",
        ])

    def block(self, depth, is_rule, indent):
        out = []
        for _ in range(self.r.randint(1, 3)):
            out.extend(self.stmt(depth, is_rule, indent))
            if out and out[-1].lstrip().startswith(("return", "raise")):
                break
        return out

    def stmt(self, depth, is_rule, indent):
        pad = "    " * indent
        roll = self.r.random()
        if depth < 3 and roll < 0.40:
            lines = [pad + "if %s:" % self.cond()]
            lines += self.block(depth + 1, is_rule, indent + 1)
            while self.chance(0.3):
                lines.append(pad + "elif %s:" % self.cond())
                lines += self.block(depth + 1, is_rule, indent + 1)
            if self.chance(0.35):
                lines.append(pad + "else:")
                lines += self.block(depth + 1, is_rule, indent + 1)
            return lines
        if roll < 0.70:
            value = self.r.random()
            if value < 0.3:
                text = "False"
            elif value < 0.4:
                text = "True"
            elif value < 0.45:
                text = self.choice(["None", "'yes'", "1", ""])
            else:
                text = self.cond()
            return [(pad + "return " + text).rstrip()]
        if roll < 0.78:
            return [pad + self.effect()]
        if roll < 0.83:
            return [pad + self.raising()]
        if roll < 0.93:
            return [pad + self.pure()]
        if self.helpers:
            return [pad + "%s(event)" % self.choice(self.helpers)]
        return [pad + "pass"]

    def function(self, name, is_rule):
        self.locals = []
        self.fn_globals = []
        lines = ["def %s(event):" % name]
        if is_rule and self.chance(0.4):
            names = ["SCRATCH_N", "SCRATCH_F"][: self.r.randint(1, 2)]
            self.fn_globals.extend(names)
            reset = self.choice(["0", "False", "()", "[]", "{}", "set()"])
            if len(names) == 1:
                lines.append("    SCRATCH_N = %s" % reset)
            elif self.chance(0.85):
                lines.append("    SCRATCH_N, SCRATCH_F = 0, %s" % reset)
            else:
                lines.append("    SCRATCH_N, SCRATCH_F = (0,)")
        for i in range(self.r.randint(0, 2)):
            look, path = self.lookup()
            local = "v%d" % i
            if self.chance(0.2):
                # Bound in a branch only: a later read may raise.
                lines.append("    if %s:" % self.cond())
                lines.append("        %s = %s" % (local, look))
            else:
                lines.append("    %s = %s" % (local, look))
            self.locals.append((local, path))
        if is_rule and self.chance(0.3):
            lines.append("    SCRATCH_N = 1" if "SCRATCH_N" in self.fn_globals else "    pass")
        for _ in range(self.r.randint(0, 2)):
            # Guards, as detections usually open.
            lines.append("    if %s%s:" % (self.choice(["", "not "]), self.cond(1)))
            lines.append("        return False")
        lines += self.block(0, is_rule, 1)
        if self.chance(0.6) and not lines[-1].startswith("    return"):
            lines.append("    return %s" % self.choice(["False", "True", self.cond()]))
        self.locals = []
        if self.fn_globals:
            lines.insert(1, "    global " + ", ".join(self.fn_globals))
        text = "\n".join(lines) + "\n"
        if self.chance(0.1):
            text = re.sub(r"\bevent\b", "e", text)  # another name for the parameter
        return text

    def module(self):
        self.lines.append("import %s" % HELPER_ID)
        if self.chance(0.2):
            self.lines.append("from %s import SHARED, SHARED_T, add" % HELPER_ID)
            self.consts["SHARED"] = ("shared", None)
            self.consts["SHARED_T"] = ("tuple", None)
        self.lines.append("COUNT = 0\nSEEN = []\nFLAG = False\nD = {}\nSCRATCH_N = 0\nSCRATCH_F = 0")
        for i in range(self.r.randint(0, 2)):
            name = "_h%d" % i
            if self.chance(0.1):
                # A generator function: calling it runs nothing and gives a
                # truthy generator.
                self.functions.append(
                    "def %s(event):\n    if %s:\n        return False\n    yield 1\n"
                    % (name, self.cond()))
            else:
                self.functions.append(self.function(name, False))
            self.helpers.append(name)
        rule = self.function("rule", True)
        title = ["def title(event):"]
        self.fn_globals = []
        for _ in range(self.r.randint(0, 2)):
            if self.chance(0.5):
                title.append("    " + self.effect())
        if self.chance(0.1):
            title.append("    %s.poke()" % HELPER_ID)
        if self.fn_globals:
            title.insert(1, "    global " + ", ".join(self.fn_globals))
        title.append("    return f'{SCRATCH_N} {SCRATCH_F} {COUNT} {len(SEEN)} {FLAG} {sorted(D)}'"
                     + (" + %s.peek()" % HELPER_ID if self.chance(0.2) else ""))
        extra = []
        if self.chance(0.05):
            extra.append("%s.keep(lambda: SCRATCH_N)" % HELPER_ID)
        if self.chance(0.05):
            extra.append("%s.keep(title)" % HELPER_ID)
        if self.chance(0.1):
            # Module code after the definitions; it must not fail the import.
            extra.append("try:\n    %s\nexcept Exception:\n    pass"
                         % self._effect().split("\n")[-1])
        source = "\n".join(self.lines) + "\n\n\n" + "\n\n".join(self.functions + [rule]) + "\n\n"
        source += "\n".join(title) + "\n"
        if extra:
            source += "\n\n" + "\n".join(extra) + "\n"
        return source


def _value(rnd, path):
    """A JSON value for a field: mostly strings rules look for, else odd ones."""
    roll = rnd.random()
    if roll < 0.70:
        pool = FIELDS[path] if rnd.random() < 0.8 else STRINGS
        s = rnd.choice(pool)
        if rnd.random() < 0.1:
            s = s + "_x"
        if rnd.random() < 0.05:
            s = s.upper()
        return s
    return rnd.choice([42, 0, True, False, None, {"x": 1}, {}, [], ["a"], 1.5, "", "\u00e9",
                       2 ** 70, -(2 ** 63), float("inf"), -0.0, "a\u0000b", "\\n"])


def _event(rnd):
    event = {}
    for path in PATHS:
        if rnd.random() < 0.2:
            continue
        keys = list(path)
        if rnd.random() < 0.05:
            keys[-1] = keys[-1].upper()
        node = event
        for key in keys[:-1]:
            if rnd.random() < 0.04:
                node[key] = rnd.choice(["text", 7, ["x"], None])
                node = None
                break
            node = node.setdefault(key, {})
            if not isinstance(node, dict):
                node = None
                break
        if node is not None:
            node[keys[-1]] = _value(rnd, path)
            if rnd.random() < 0.05:
                # The same key in another case (the first in document order
                # wins when the exact key is absent).
                node[keys[-1].swapcase()] = _value(rnd, path)
    if rnd.random() < 0.03:
        event["\u212a"] = "kelvin"  # lower() gives "k": only Python can judge
    text = json.dumps(event)
    if rnd.random() < 0.05 and len(event) > 0:
        # A key repeated in the text: the last value wins.
        key = rnd.choice(sorted(event))
        text = text[:-1] + ", %s: %s}" % (json.dumps(key), json.dumps(_value(rnd, PATHS[0])))
    return text


def generate_group(seed, rules, events):
    """(files, event JSON texts) of one group: files as (path, content) pairs."""
    rnd = random.Random(seed)
    files = [
        ("gen/%s.yml" % HELPER_ID, HELPER_YML),
        ("gen/%s.py" % HELPER_ID, HELPER_SOURCE),
        ("gen/gen_model.yml", MODEL_YML),
        ("gen/gen_model.py", MODEL_SOURCE),
    ]
    for i in range(rules):
        rule_id = "Gen.R%d.%d" % (seed, i)
        source = _Rule(random.Random(rnd.random())).module()
        files.append(("gen/%s.yml" % rule_id,
                      "AnalysisType: rule\nRuleID: %s\nFilename: %s.py\nEnabled: true\n"
                      "LogTypes: [Okta.SystemLog]\nSeverity: Low\n" % (rule_id, rule_id)))
        files.append(("gen/%s.py" % rule_id, source))
    return files, [_event(rnd) for _ in range(events)]


if __name__ == "__main__":
    # Prints one group, for reading the generator's output.
    group_files, group_events = generate_group(1, 3, 5)
    for path, content in group_files[4:]:
        print("#", path)
        print(content)
    for e in group_events:
        print(e)
