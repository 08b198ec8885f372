"""Unit tests of prefilter_analyzer.py, run by CTest on /usr/bin/python3.

The analyzer imports pantherd's _pantherd_event to check that the event types
are intact; outside pantherd these tests put a stand-in with the same class
names in sys.modules. The expectations follow engine/rule_prefilter_test.cc,
which runs the embedded copy inside pantherd.
"""

import os
import sys
import types
import unittest

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import prefilter_analyzer  # noqa: E402  (after the path is set)


def _fake_event_module():
    module = types.ModuleType("_pantherd_event")
    for name in ("PantherEvent", "ImmutableCaseInsensitiveDict", "ImmutableList"):
        setattr(module, name, type(name, (), {}))
    return module


def describe(condition):
    """A condition as engine/rule_prefilter_test.cc's Describe writes it:
    path=v1|v2[^prefix][~substring][?][+missing][#hash][*other]."""
    path, values, missing, hashes, prefixes, other, substrings, nonempty = condition
    text = ".".join(path) + "=" + "|".join(sorted(values))
    if prefixes:
        text += "^" + "|".join(prefixes)
    if substrings:
        text += "~" + "|".join(substrings)
    if nonempty:
        text += "?"
    if missing:
        text += "+missing"
    if hashes:
        text += "#hash"
    if other:
        text += "*other"
    return text


def load(source):
    module = types.ModuleType("Probe.Rule")
    exec(compile(source, "Probe.Rule.py", "exec"), module.__dict__)
    return module


def conditions(source):
    """The conditions of a rule with at most one conjunction ([] for none)."""
    result = prefilter_analyzer.derive(source, load(source))
    if result is None:
        return []
    if len(result) != 1:
        return ["<%d conjunctions>" % len(result)]
    return [describe(c) for c in result[0]]


class PrefilterAnalyzerTest(unittest.TestCase):
    def setUp(self):
        self._saved = sys.modules.get("_pantherd_event")
        sys.modules["_pantherd_event"] = _fake_event_module()

    def tearDown(self):
        if self._saved is None:
            sys.modules.pop("_pantherd_event", None)
        else:
            sys.modules["_pantherd_event"] = self._saved

    def test_comparisons_in_the_return_expression(self):
        self.assertEqual(
            conditions("def rule(event):\n    return event.get('eventType') == 'a.b'\n"),
            ["eventType=a.b"])
        self.assertEqual(
            conditions("def rule(event):\n"
                       "    return bool(\n"
                       "        event.get('eventType') == 'x'\n"
                       "        and event.deep_get('outcome', 'result') == 'FAILURE'\n"
                       "        and len(event.get('actor', {})) > 0\n"
                       "    )\n"),
            ["eventType=x", "outcome.result=FAILURE"])
        self.assertEqual(
            conditions("def rule(event):\n"
                       "    return 'y' == event.get('eventType') and "
                       "event.deep_get('outcome', 'result', default='SUCCESS') == 'SUCCESS'\n"),
            ["eventType=y", "outcome.result=SUCCESS+missing"])

    def test_early_returns_and_module_constants(self):
        self.assertEqual(
            conditions("EVENTS = ('a', 'b')\n"
                       "def rule(event):\n"
                       "    if event.get('eventType') not in EVENTS:\n"
                       "        return False\n"
                       "    if not event.deep_get('outcome', 'result') == 'SUCCESS':\n"
                       "        return False\n"
                       "    return compute(event)\n"
                       "def compute(event):\n"
                       "    return True\n"),
            ["eventType=a|b", "outcome.result=SUCCESS"])
        self.assertEqual(
            conditions("EVENTS = {'a', 'b'}\n"
                       "def rule(event):\n"
                       "    return event.get('eventType') in EVENTS\n"),
            ["eventType=a|b#hash"])

    def test_an_or_of_exclusions_gives_two_conjunctions_or_one(self):
        self.assertEqual(
            conditions("def rule(event):\n"
                       "    if event.get('eventType') != 'a' or event.get('k', 'd') != 'd':\n"
                       "        return False\n"
                       "    return True\n"),
            ["eventType=a", "k=d+missing"])
        result = prefilter_analyzer.derive(
            "def rule(event):\n"
            "    return event.get('a') == 'x' or event.get('b') == 'y'\n",
            load("def rule(event):\n"
                 "    return event.get('a') == 'x' or event.get('b') == 'y'\n"))
        self.assertEqual(sorted(describe(c[0]) for c in result), ["a=x", "b=y"])

    def test_nothing_when_skipping_could_change_an_outcome(self):
        for source in (
            # A statement before the check may raise.
            "def rule(event):\n    x = event['k']\n    return event.get('eventType') == 'a'\n",
            # A list the module mutates is not a constant.
            "EVENTS = ['a']\nEVENTS.append('b')\n"
            "def rule(event):\n    return event.get('eventType') in EVENTS\n",
            # An exclusion, not a requirement.
            "def rule(event):\n    if event.get('eventType') == 'a':\n        return False\n"
            "    return True\n",
            # Substring membership; a shadowed builtin; a subscript that raises.
            "def rule(event):\n    return event.get('eventType') in 'abc'\n",
            "bool = lambda x: True\n"
            "def rule(event):\n    return bool(event.get('eventType') == 'a')\n",
            "def rule(event):\n    return event['eventType'] == 'a'\n",
            # A star import, a decorator, a replaced rule function.
            "from os.path import *\ndef rule(event):\n    return event.get('eventType') == 'a'\n",
            "import functools\n@functools.lru_cache\n"
            "def rule(event):\n    return event.get('eventType') == 'a'\n",
            "def rule(event):\n    return event.get('eventType') == 'a'\n"
            "def other(event):\n    return True\nrule = other\n",
            # Reflection.
            "def rule(event):\n    return getattr(event, 'get')('eventType') == 'a'\n",
        ):
            with self.subTest(source=source):
                self.assertEqual(conditions(source), [])

    def test_no_rule_function_or_a_syntax_error_gives_none(self):
        self.assertIsNone(prefilter_analyzer.derive("x = 1\n", load("x = 1\n")))
        self.assertIsNone(prefilter_analyzer.derive("def rule(event:\n", types.ModuleType("m")))

    def test_nothing_without_intact_event_types(self):
        source = "def rule(event):\n    return event.get('eventType') == 'a'\n"
        # Without pantherd's event module nothing can be assumed.
        sys.modules["_pantherd_event"] = None  # makes the import fail
        self.assertIsNone(prefilter_analyzer.derive(source, load(source)))
        # An event type whose method another module replaced with Python code.
        tampered = _fake_event_module()
        tampered.PantherEvent.get = lambda self, key, default=None: "a"
        sys.modules["_pantherd_event"] = tampered
        self.assertIsNone(prefilter_analyzer.derive(source, load(source)))
        # The stand-in as pantherd's: conditions again.
        sys.modules["_pantherd_event"] = _fake_event_module()
        self.assertEqual(conditions(source), ["eventType=a"])


if __name__ == "__main__":
    unittest.main()
