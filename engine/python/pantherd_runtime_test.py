"""Unit tests of pantherd_runtime.py (pantherd's _pantherd_runtime support
module), run by CTest on /usr/bin/python3 against the file in the source tree.
engine/python_runtime_test.cc tests the embedded copy inside pantherd."""

import io
import linecache
import os
import sys
import types
import unittest

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import pantherd_runtime as rt  # noqa: E402  (after the path is set)


class LabelledOutputTest(unittest.TestCase):
    def test_every_line_starts_with_the_label(self):
        out = io.StringIO()
        labelled = rt.LabelledOutput(out, lambda: "rule A")
        self.assertEqual(labelled.write("one\ntwo\n"), len("one\ntwo\n"))
        self.assertEqual(out.getvalue(), "[rule A] one\n[rule A] two\n")

    def test_partial_writes_are_labelled_once_per_line(self):
        out = io.StringIO()
        label = ["rule A"]
        labelled = rt.LabelledOutput(out, lambda: label[0])
        labelled.write("par")
        labelled.write("tial")
        labelled.write("\nnext")
        label[0] = "rule B"
        labelled.write(" end\r")
        labelled.write("after")
        self.assertEqual(out.getvalue(),
                         "[rule A] partial\n[rule A] next end\r[rule B] after")

    def test_no_label_no_prefix_and_non_strings_are_written_as_str(self):
        out = io.StringIO()
        labelled = rt.LabelledOutput(out, lambda: "")
        self.assertEqual(labelled.write(12), 2)
        self.assertEqual(out.getvalue(), "12")

    def test_other_attributes_come_from_the_stream(self):
        out = io.StringIO()
        labelled = rt.LabelledOutput(out, lambda: "x")
        self.assertIs(labelled.getvalue.__self__, out)
        labelled.flush()

    def test_label_output_wraps_stdout_and_stderr_once(self):
        saved = (sys.stdout, sys.stderr)
        try:
            sys.stdout, sys.stderr = io.StringIO(), io.StringIO()
            rt.label_output(lambda: "helper h")
            rt.label_output(lambda: "twice")  # already labelled: unchanged
            self.assertIsInstance(sys.stdout, rt.LabelledOutput)
            self.assertIsInstance(sys.stderr, rt.LabelledOutput)
            print("hi")
            self.assertEqual(sys.stdout._stream.getvalue(), "[helper h] hi\n")
        finally:
            sys.stdout, sys.stderr = saved


class CaptureTest(unittest.TestCase):
    def test_capture_takes_both_streams_and_restores_them(self):
        saved = (sys.stdout, sys.stderr)
        state = rt.start_capture()
        try:
            print("out")
            print("err", file=sys.stderr)
        finally:
            text = rt.stop_capture(state)
        self.assertEqual(text, "out\nerr\n")
        self.assertIs(sys.stdout, saved[0])
        self.assertIs(sys.stderr, saved[1])


class LoadingTest(unittest.TestCase):
    def test_load_module_runs_the_source_under_its_path(self):
        module = rt.load_module("Rule.X", "Rule.X.py", "A = 1\ndef rule(event):\n    return A\n")
        self.assertEqual(module.__name__, "Rule.X")
        self.assertEqual(module.__file__, "Rule.X.py")
        self.assertEqual(module.rule(None), 1)
        self.assertNotIn("Rule.X", sys.modules)
        with self.assertRaises(SyntaxError) as caught:
            rt.load_module("Bad", "Bad.py", "def rule(:\n")
        self.assertEqual(caught.exception.filename, "Bad.py")

    def test_global_finder_imports_helpers_from_memory(self):
        rt.install_finder()
        rt.install_finder()
        self.assertEqual(sys.meta_path.count(rt.FINDER), 1)
        try:
            rt.set_globals([("pantherd_test_helper", "helper.py", "VALUE = 42\n")])
            module = rt.import_global("pantherd_test_helper")
            self.assertEqual(module.VALUE, 42)
            self.assertEqual(module.__file__, "helper.py")
            self.assertEqual(rt.FINDER.get_source("pantherd_test_helper"), "VALUE = 42\n")
            self.assertIsNone(rt.FINDER.get_source("absent"))
            rt.remove_modules(["pantherd_test_helper"])
            self.assertNotIn("pantherd_test_helper", sys.modules)
        finally:
            rt.set_globals([])
            sys.meta_path.remove(rt.FINDER)

    def test_install_builtins_yields_to_globals_of_the_same_name(self):
        a, b = types.ModuleType("pantherd_test_pkg"), types.ModuleType("pantherd_test_pkg.sub")
        c = types.ModuleType("pantherd_test_other")
        try:
            rt.install_builtins({"pantherd_test_pkg": a, "pantherd_test_pkg.sub": b,
                                 "pantherd_test_other": c}, ["pantherd_test_pkg"])
            self.assertNotIn("pantherd_test_pkg", sys.modules)
            self.assertNotIn("pantherd_test_pkg.sub", sys.modules)
            self.assertIs(sys.modules["pantherd_test_other"], c)
        finally:
            rt.remove_modules(["pantherd_test_pkg", "pantherd_test_pkg.sub",
                               "pantherd_test_other"])

    def test_register_file_feeds_tracebacks_until_cleared(self):
        rt.register_file("up.py", "a = 1\nb = 2")
        self.assertEqual(linecache.getline("up.py", 2), "b = 2\n")
        rt.clear_files()
        self.assertNotIn("up.py", linecache.cache)


class DescribeTest(unittest.TestCase):
    def test_an_exception_with_its_traceback(self):
        rt.register_file("Rule.Y.py", "def rule(event):\n    return 1 / 0\n")
        module = rt.load_module("Rule.Y", "Rule.Y.py", "def rule(event):\n    return 1 / 0\n")
        try:
            module.rule(None)
        except ZeroDivisionError as exc:
            name, message, text = rt.describe(exc)
            line, note, origin = rt.error_location(exc, "Rule.Y.py")
        finally:
            rt.clear_files()
        self.assertEqual(name, "ZeroDivisionError")
        self.assertEqual(message, "division by zero")
        self.assertIn('File "Rule.Y.py", line 2, in rule', text)
        self.assertIn("return 1 / 0", text)
        self.assertEqual((line, note, origin), (2, "", "Rule.Y.py"))

    def test_a_syntax_error_gives_its_message_and_line(self):
        try:
            rt.load_module("Rule.Z", "Rule.Z.py", "x = 1\ndef rule(:\n")
        except SyntaxError as exc:
            name, message, _ = rt.describe(exc)
            location = rt.error_location(exc, "Rule.Z.py")
        self.assertEqual((name, message), ("SyntaxError", "invalid syntax"))
        self.assertEqual(location, (2, "", "Rule.Z.py"))

    def test_an_error_in_another_uploaded_file_is_noted(self):
        rt.register_file("helper.py", "def boom():\n    raise ValueError('no')\n")
        helper = rt.load_module("helper", "helper.py", "def boom():\n    raise ValueError('no')\n")
        rule = rt.load_module("Rule.W", "Rule.W.py", "def rule(event):\n    return boom()\n")
        rule.boom = helper.boom
        rt.register_file("Rule.W.py", "def rule(event):\n    return boom()\n")
        try:
            rule.rule(None)
        except ValueError as exc:
            location = rt.error_location(exc, "Rule.W.py")
        finally:
            rt.clear_files()
        self.assertEqual(location, (2, " (at helper.py:2)", "helper.py"))

    def test_a_broken_str_is_described_not_raised(self):
        class Broken(Exception):
            def __str__(self):
                raise RuntimeError("bad str")

        name, message, _ = rt.describe(Broken())
        self.assertEqual(name, "Broken")
        self.assertEqual(message, "<unprintable Broken: RuntimeError('bad str')>")


class HelpersTest(unittest.TestCase):
    def test_import_hint(self):
        def hint(name):
            return rt.import_hint(ModuleNotFoundError("No module named %r" % name, name=name))

        self.assertEqual(hint("panther_foo"), ": upload the global helper named panther_foo")
        self.assertEqual(hint("panther_core.nope"), "")
        self.assertEqual(
            hint("policyuniverse.arn"),
            ": Debian 12 has no package of it; upload a global helper named policyuniverse")
        self.assertEqual(
            hint("dateutil"),
            ": install the Debian package python3-dateutil if there is one, or upload a "
            "global helper named dateutil")
        self.assertEqual(hint("Some_Mod"), ": install the Debian package python3-some-mod if "
                         "there is one, or upload a global helper named Some_Mod")
        self.assertEqual(rt.import_hint(ValueError("x")), "")

    def test_truncate(self):
        self.assertEqual(rt.truncate("short", 10), "short")
        long_text = "x" * 30
        cut = rt.truncate(long_text, 20)
        self.assertEqual(len(cut), 20)
        self.assertTrue(cut.endswith(rt.TRUNCATED_STRING_SUFFIX))

    def test_start_mocks_patches_and_stops(self):
        module = rt.load_module("Rule.M", "Rule.M.py",
                                "def lookup(x):\n    return 'real'\n"
                                "def rule(event):\n    return lookup(event)\n")
        patcher = rt.start_mocks(module, [("lookup", "mocked")])
        self.assertEqual(module.rule(1), "mocked")
        patcher.stop()
        self.assertEqual(module.rule(1), "real")
        with self.assertRaisesRegex(AttributeError, r"mock target \[absent\] does not exist "
                                    r"in the rule module \[Rule.M\]"):
            rt.start_mocks(module, [("absent", 1)])


if __name__ == "__main__":
    unittest.main()
