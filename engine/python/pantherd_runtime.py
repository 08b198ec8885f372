"""_pantherd_runtime: the private support module of pantherd's Python runtime.

pantherd embeds this file at build time (engine/CMakeLists.txt turns it into a
C++ character array) and PythonRuntime::Initialize (engine/python_runtime.cc)
executes it in a fresh module named _pantherd_runtime, once per interpreter.
The module is not in sys.modules, so rule code cannot import it. The C++ side
calls its functions: the finder of global helpers, module loading, exception
descriptions, output capture and labelling, and the mocks of rule tests.

Its unit tests are engine/python/pantherd_runtime_test.py.
"""
import importlib.abc
import importlib.util
import io
import linecache
import sys
import traceback
import types
import unittest.mock

TRUNCATED_STRING_SUFFIX = "... (truncated)"


class LabelledOutput:
    """sys.stdout/sys.stderr of a worker: each line starts with the label of
    the rule (or helper) that printed it, e.g. "[rule Okta.X] "."""

    def __init__(self, stream, label):
        self._stream = stream
        self._label = label
        self._line_start = True

    def write(self, text):
        text = str(text)
        label = self._label()
        out = []
        for piece in text.splitlines(keepends=True):
            if self._line_start and label:
                out.append("[" + label + "] ")
            out.append(piece)
            self._line_start = piece.endswith(("\n", "\r"))
        self._stream.write("".join(out))
        return len(text)

    def flush(self):
        self._stream.flush()

    def __getattr__(self, name):
        return getattr(self._stream, name)


def label_output(label):
    """Labels what rule code prints (line-buffered, so lines arrive when
    printed)."""
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        if stream is None or isinstance(stream, LabelledOutput):
            continue
        try:
            stream.reconfigure(line_buffering=True)
        except (AttributeError, ValueError):
            pass
        setattr(sys, name, LabelledOutput(stream, label))


class GlobalFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Imports the global helpers of the loaded set by GlobalID, from memory."""

    def __init__(self):
        self.sources = {}

    def find_spec(self, fullname, path=None, target=None):
        entry = self.sources.get(fullname)
        if entry is None:
            return None
        return importlib.util.spec_from_loader(fullname, self, origin=entry[0])

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        path, source = self.sources[module.__name__]
        module.__file__ = path
        exec(compile(source, path, "exec", dont_inherit=True), module.__dict__)

    def get_source(self, fullname):
        entry = self.sources.get(fullname)
        return None if entry is None else entry[1]


FINDER = GlobalFinder()
_FILES = set()


def install_finder():
    if FINDER not in sys.meta_path:
        sys.meta_path.insert(0, FINDER)


def set_globals(entries):
    FINDER.sources = {gid: (path, source) for gid, path, source in entries}


def register_file(path, source):
    """Makes tracebacks show the lines of an uploaded file."""
    lines = source.splitlines(True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    linecache.cache[path] = (len(source), None, lines, path)
    _FILES.add(path)


def clear_files():
    for path in _FILES:
        linecache.cache.pop(path, None)
    _FILES.clear()


def remove_modules(names):
    for name in names:
        sys.modules.pop(name, None)


def install_builtins(builtins, global_ids):
    """Puts pantherd's built-in modules into sys.modules, except those a
    global replaces: a global named like a built-in package (or one of its
    submodules) hides that module and, for a package, its submodules."""
    for name, module in builtins.items():
        if any(name == gid or name.startswith(gid + ".") for gid in global_ids):
            sys.modules.pop(name, None)
        else:
            sys.modules[name] = module


def import_global(name):
    return importlib.import_module(name)


def load_module(name, path, source):
    module = types.ModuleType(name)
    module.__file__ = path
    exec(compile(source, path, "exec", dont_inherit=True), module.__dict__)
    return module


def describe(exc):
    """(type name, message, formatted traceback) of an exception."""
    try:
        message = exc.msg if isinstance(exc, SyntaxError) and exc.msg else str(exc)
    except Exception as err:  # a broken __str__
        message = "<unprintable %s: %r>" % (type(exc).__name__, err)
    try:
        text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    except Exception:
        text = ""
    return type(exc).__name__, message, text


def error_location(exc, path):
    """(line, note, origin) for a diagnostic about `path`: the deepest
    traceback line in `path`; where the error happened when that is another
    uploaded file; and that file (`path` itself when it happened there)."""
    line = 0
    last = None
    tb = exc.__traceback__
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if filename == path:
            line = tb.tb_lineno
        if filename in _FILES:
            last = (filename, tb.tb_lineno)
        tb = tb.tb_next
    if isinstance(exc, SyntaxError) and exc.filename:
        if exc.filename == path:
            return exc.lineno or 0, "", path
        return line, " (at %s:%d)" % (exc.filename, exc.lineno or 0), exc.filename
    if last is not None and last[0] != path:
        return line, " (at %s:%d)" % last, last[0]
    return line, "", path


# Top-level modules rules import whose Debian 12 package is not named
# python3-<module>, and those Debian 12 does not package at all.
_DEBIAN_PACKAGES = {
    "dateutil": "python3-dateutil",
    "yaml": "python3-yaml",
    "jwt": "python3-jwt",
    "Crypto": "python3-pycryptodome",
    "OpenSSL": "python3-openssl",
    "bs4": "python3-bs4",
    "google": "python3-google-auth",
}
_NOT_IN_DEBIAN = {"jsonpath_ng", "policyuniverse", "panther_analysis_tool"}
_BUILTIN_PACKAGES = {"panther_core", "panther_detection_helpers"}


def import_hint(exc):
    """What to do about a module the runtime cannot import ("" when `exc` is
    not a ModuleNotFoundError of a third-party module)."""
    if not isinstance(exc, ModuleNotFoundError) or not exc.name:
        return ""
    top = exc.name.split(".")[0]
    if top in _BUILTIN_PACKAGES or top in FINDER.sources:
        return ""  # A submodule that does not exist: the message names it.
    if top.startswith("panther_"):
        return ": upload the global helper named %s" % top
    if top in _NOT_IN_DEBIAN:
        return ": Debian 12 has no package of it; upload a global helper named %s" % top
    package = _DEBIAN_PACKAGES.get(top, "python3-" + top.lower().replace("_", "-"))
    return ": install the Debian package %s if there is one, or upload a global helper named %s" % (
        package, top)


def truncate(value, limit):
    if len(value) > limit:
        return value[: limit - len(TRUNCATED_STRING_SUFFIX)] + TRUNCATED_STRING_SUFFIX
    return value


def start_mocks(module, mocks):
    """Patches names of `module` with MagicMock(return_value=value) for each
    (name, value) of `mocks`; returns the patcher to stop()."""
    for name, _ in mocks:
        if not hasattr(module, name):
            raise AttributeError(
                "mock target [%s] does not exist in the rule module [%s]" % (name, module.__name__)
            )
    patcher = unittest.mock.patch.multiple(
        module, **{name: unittest.mock.MagicMock(return_value=value) for name, value in mocks}
    )
    patcher.start()
    return patcher


def start_capture():
    buffer = io.StringIO()
    saved = (sys.stdout, sys.stderr)
    sys.stdout = sys.stderr = buffer
    return buffer, saved


def stop_capture(state):
    buffer, saved = state
    sys.stdout, sys.stderr = saved
    return buffer.getvalue()
