// File: engine/python_runtime.cc

#include "engine/python_runtime.h"

#include <pthread.h>
#include <pybind11/embed.h>
#include <pybind11/stl.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace pantherd::engine {

namespace py = pybind11;

namespace {

// Set by the first Create(): one runtime per process, ever.
std::atomic<bool> g_runtime_created{false};

// The private support module. It is not in sys.modules; rules cannot import it.
constexpr char kSupportSource[] = R"py(
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
)py";

// panther_detection_helpers.caching: Panther's signatures and argument
// handling (panther_detection_helpers 0.4+ caching.py), over `_kv_call`.
constexpr char kCachingSource[] = R"py(
"""Panther's detection cache (string sets, counters, dictionaries with expiry),
provided natively by pantherd over its key-value store."""
import json
from collections.abc import Mapping

_EPOCH_SECONDS_DELTA_DEFAULT = 90 * (60 * 60 * 24)  # 90 days

_OP_GET_STRING_SET = 1
_OP_PUT_STRING_SET = 2
_OP_ADD_TO_STRING_SET = 3
_OP_REMOVE_FROM_STRING_SET = 4
_OP_RESET_STRING_SET = 5
_OP_INCREMENT_COUNTER = 6
_OP_GET_COUNTER = 7
_OP_RESET_COUNTER = 8
_OP_SET_KEY_EXPIRATION = 9
_OP_GET_DICTIONARY = 10
_OP_PUT_DICTIONARY = 11


def _call(op, key, values=(), increment=0, expire=0, data=""):
    if not isinstance(key, str):
        raise TypeError("cache keys must be str, got [%s]" % type(key).__name__)
    return _kv_call(op, key, list(values), int(increment), int(expire), data)


def _finalize_epoch_seconds(epoch_seconds):
    if isinstance(epoch_seconds, str):
        epoch_seconds = float(epoch_seconds)
    if isinstance(epoch_seconds, float):
        epoch_seconds = int(epoch_seconds)
    if not isinstance(epoch_seconds, int):
        epoch_seconds = _kv_now() + _EPOCH_SECONDS_DELTA_DEFAULT
    # Values below 1e9 count from now, as in Panther; "now" is the cache's
    # clock (the event's time under event-time windows), not time.time().
    if epoch_seconds < 1000000000:
        epoch_seconds = _kv_now() + epoch_seconds
    return epoch_seconds


def _optional_expiry(epoch_seconds):
    return 0 if epoch_seconds is None else _finalize_epoch_seconds(epoch_seconds)


def _strings(val):
    if isinstance(val, str):
        return [val]
    items = set(val)
    for item in items:
        if not isinstance(item, str):
            raise TypeError("string sets hold str only, got [%s]" % type(item).__name__)
    return sorted(items)


def ttl_expired(response):
    """Expired entries always read as absent in pantherd, whatever
    force_ttl_check says (Panther only promises it with force_ttl_check=True)."""
    return False


def get_counter(key, force_ttl_check=False):
    """Get a counter's current value (0 if the key does not exist)."""
    return _call(_OP_GET_COUNTER, key)[1]


def increment_counter(key, val=1, epoch_seconds=_EPOCH_SECONDS_DELTA_DEFAULT):
    """Add `val` to a counter and return the new value; epoch_seconds=None keeps the expiry."""
    return _call(_OP_INCREMENT_COUNTER, key, increment=val, expire=_optional_expiry(epoch_seconds))[1]


def reset_counter(key):
    """Reset a counter to 0."""
    _call(_OP_RESET_COUNTER, key)


def set_key_expiration(key, epoch_seconds):
    """Make the key expire at `epoch_seconds` (absolute, or seconds from now if < 1e9)."""
    _call(_OP_SET_KEY_EXPIRATION, key, expire=_finalize_epoch_seconds(epoch_seconds))


def put_dictionary(key, val, epoch_seconds=None):
    """Overwrite a dictionary (JSON-serializable) under the given key."""
    if not isinstance(val, (dict, Mapping)):
        raise TypeError("panther_oss_helpers.put_dictionary: value is not a dictionary")
    try:
        data = json.dumps(val)
    except TypeError as exc:
        raise ValueError(
            "panther_oss_helpers.put_dictionary: "
            "value is a dictionary, but it is not JSON serializable"
        ) from exc
    _call(_OP_PUT_DICTIONARY, key, expire=_finalize_epoch_seconds(epoch_seconds), data=data)


def get_dictionary(key, force_ttl_check=False):
    """Retrieve the dictionary under the given key ({} if absent)."""
    item = _call(_OP_GET_DICTIONARY, key)[2]
    if not item:
        return {}
    try:
        return json.loads(item)
    except json.decoder.JSONDecodeError as exc:
        raise ValueError(
            "panther_oss_helpers.get_dictionary: "
            "Data found in DynamoDB could not be decoded into JSON"
        ) from exc


def get_string_set(key, force_ttl_check=False):
    """Get a string set's current value (empty set if the key does not exist)."""
    return set(_call(_OP_GET_STRING_SET, key)[0])


def put_string_set(key, val, epoch_seconds=None):
    """Overwrite a string set under the given key (an empty value removes it)."""
    if not val:
        reset_string_set(key)
        return
    _call(_OP_PUT_STRING_SET, key, _strings(val), expire=_finalize_epoch_seconds(epoch_seconds))


def add_to_string_set(key, val, epoch_seconds=_EPOCH_SECONDS_DELTA_DEFAULT):
    """Add one string or several to a set; returns the new value of the set."""
    values = _strings(val)
    if not values:
        return get_string_set(key, force_ttl_check=True)
    return set(_call(_OP_ADD_TO_STRING_SET, key, values, expire=_optional_expiry(epoch_seconds))[0])


def remove_from_string_set(key, val, epoch_seconds=_EPOCH_SECONDS_DELTA_DEFAULT):
    """Remove one string or several from a set; returns the new value of the set."""
    values = _strings(val)
    if not values:
        return get_string_set(key, force_ttl_check=True)
    return set(
        _call(_OP_REMOVE_FROM_STRING_SET, key, values, expire=_optional_expiry(epoch_seconds))[0]
    )


def reset_string_set(key):
    """Reset a string set to empty."""
    _call(_OP_RESET_STRING_SET, key)


def evaluate_threshold(key, threshold=10, expiry_seconds=3600):
    """Increment a counter; when it reaches `threshold`, reset it and return True."""
    count = increment_counter(key, epoch_seconds=expiry_seconds)
    if count >= threshold:
        reset_counter(key)
        return True
    return False


def check_account_age(key):
    """True if an indicator-creation rule stored a string set under `key`."""
    if isinstance(key, str) and key != "":
        return bool(get_string_set(key, force_ttl_check=True))
    return False
)py";

constexpr char kCachingPath[] = "panther_detection_helpers/caching.py";

// panther_core: the package of Panther's runtime. Rules and helpers import
// its types for type hints and isinstance checks (`from panther_core import
// PantherEvent`, panther-analysis' `panther_type_hints` global). Only these
// names exist; any other panther_core module is a ModuleNotFoundError.
// (submodule, names taken from _pantherd_event)
constexpr std::pair<const char*, const char*> kPantherCoreModules[] = {
    {"panther_core", "PantherEvent"},
    {"panther_core.enriched_event", "PantherEvent"},
    {"panther_core.immutable", "ImmutableCaseInsensitiveDict ImmutableList"},
    {"panther_core.data_model", "DataModel"},
    {"panther_core.exceptions", "PantherError"},
};

v1::Diagnostic MakeDiagnostic(absl::string_view file, int line, absl::string_view message,
                              absl::string_view field = "") {
  v1::Diagnostic d;
  d.set_file(std::string(file));
  d.set_line(line);
  d.set_field(std::string(field));
  d.set_message(std::string(message));
  return d;
}

std::string ToStdString(const py::handle& obj) {
  if (obj.is_none()) return "";
  py::object text = py::str(obj).attr("encode")("utf-8", "backslashreplace");
  return std::string(PyBytes_AsString(text.ptr()), static_cast<size_t>(PyBytes_Size(text.ptr())));
}

}  // namespace

absl::string_view RuleFunctionName(RuleFunction f) {
  switch (f) {
    case RuleFunction::kRule:
      return "rule";
    case RuleFunction::kTitle:
      return "title";
    case RuleFunction::kDescription:
      return "description";
    case RuleFunction::kReference:
      return "reference";
    case RuleFunction::kSeverity:
      return "severity";
    case RuleFunction::kRunbook:
      return "runbook";
    case RuleFunction::kDestinations:
      return "destinations";
    case RuleFunction::kDedup:
      return "dedup";
    case RuleFunction::kAlertContext:
      return "alert_context";
    case RuleFunction::kUnique:
      return "unique";
  }
  return "?";
}

const LoadedRule* LoadedSet::FindRule(absl::string_view id) const {
  for (const LoadedRule& rule : rules) {
    if (rule.id() == id) return &rule;
  }
  return nullptr;
}

std::shared_ptr<const DataModel> LoadedSet::DataModelFor(absl::string_view log_type) const {
  auto it = data_models.find(log_type);
  return it == data_models.end() ? nullptr : it->second;
}

PythonRuntime::PythonRuntime(KvBackend* kv, RuntimeOptions options) : kv_(kv), options_(options) {}

absl::StatusOr<std::unique_ptr<PythonRuntime>> PythonRuntime::Create(KvBackend* kv,
                                                                     RuntimeOptions options) {
  if (Py_IsInitialized()) {
    return absl::FailedPreconditionError("a Python interpreter is already running in this process");
  }
  if (g_runtime_created.exchange(true)) {
    return absl::FailedPreconditionError(
        "PythonRuntime::Create may be called once per process (the interpreter cannot be "
        "restarted safely)");
  }
  PyConfig config;
  PyConfig_InitIsolatedConfig(&config);
  config.install_signal_handlers = 0;
  config.write_bytecode = 0;
  config.parse_argv = 0;
  try {
    py::initialize_interpreter(&config, 0, nullptr, /*add_program_dir_to_path=*/false);
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat("cannot initialise CPython: ", e.what()));
  }
  std::unique_ptr<PythonRuntime> runtime(new PythonRuntime(kv, options));
  if (absl::Status s = runtime->Initialize(); !s.ok()) {
    // The destructor finalises the interpreter.
    return s;
  }
  return runtime;
}

absl::Status PythonRuntime::Initialize() {
  try {
    py::module_ sys = py::module_::import("sys");
    py::tuple version = sys.attr("version_info");
    const int major = version[0].cast<int>();
    const int minor = version[1].cast<int>();
    if (major != 3 || minor != 11) {
      return absl::InternalError(absl::StrFormat(
          "rules need CPython 3.11; the embedded interpreter is %d.%d", major, minor));
    }
    py::module_ json = py::module_::import("json");
    json_dumps_ = json.attr("dumps");
    json_loads_ = json.attr("loads");
    json_encoder_ = py::module_::import(kEventModuleName).attr("json_encoder");
    mapping_type_ = py::module_::import("collections.abc").attr("Mapping");

    py::module_ types = py::module_::import("types");
    support_ = types.attr("ModuleType")("_pantherd_runtime");
    py::dict support_dict = support_.attr("__dict__");
    py::exec(py::str(kSupportSource), support_dict);
    support_.attr("install_finder")();
    support_.attr("label_output")(py::cpp_function(
        [this]() { return py::str(output_label_ == nullptr ? std::string() : *output_label_); },
        py::name("_output_label")));
  } catch (const py::error_already_set& e) {
    return absl::InternalError(absl::StrCat("cannot set up the Python runtime: ", e.what()));
  }
  if (absl::Status s = InstallBuiltinModules(); !s.ok()) return s;
  return InstallTimer();
}

absl::Status PythonRuntime::InstallBuiltinModules() {
  try {
    builtin_modules_ = py::dict();
    py::module_ types = py::module_::import("types");
    helpers_package_ = types.attr("ModuleType")(
        "panther_detection_helpers", "Panther's detection helpers, provided by pantherd.");
    helpers_package_.attr("__path__") = py::list();
    caching_module_ = types.attr("ModuleType")("panther_detection_helpers.caching");
    caching_module_.attr("__file__") = kCachingPath;
    caching_module_.attr("_kv_call") = py::cpp_function(
        [this](int op, const std::string& key, const std::vector<std::string>& values,
               int64_t increment, int64_t expire, const std::string& json) {
          return KvCall(op, key, values, increment, expire, json);
        },
        py::name("_kv_call"));
    caching_module_.attr("_kv_now") = py::cpp_function(
        [this]() { return kv_ != nullptr ? kv_->NowSeconds() : absl::ToUnixSeconds(absl::Now()); },
        py::name("_kv_now"));
    py::dict caching_dict = caching_module_.attr("__dict__");
    py::module_ builtins = py::module_::import("builtins");
    py::object code = builtins.attr("compile")(kCachingSource, kCachingPath, "exec");
    builtins.attr("exec")(code, caching_dict);
    helpers_package_.attr("caching") = caching_module_;
    support_.attr("register_file")(kCachingPath, kCachingSource);
    builtin_modules_["panther_detection_helpers"] = helpers_package_;
    builtin_modules_["panther_detection_helpers.caching"] = caching_module_;
  } catch (const py::error_already_set& e) {
    return absl::InternalError(
        absl::StrCat("cannot install panther_detection_helpers: ", e.what()));
  }
  try {
    py::module_ types = py::module_::import("types");
    py::module_ event_module = py::module_::import(kEventModuleName);
    py::object core;
    for (const auto& [name, exported] : kPantherCoreModules) {
      const std::string module_name = name;
      py::object module = types.attr("ModuleType")(
          module_name, absl::StrCat("Panther's ", module_name, ", provided by pantherd."));
      for (absl::string_view attribute : absl::StrSplit(exported, ' ')) {
        const std::string attr(attribute);
        module.attr(attr.c_str()) = event_module.attr(attr.c_str());
      }
      if (module_name == "panther_core") {
        module.attr("__path__") = py::list();
        core = module;
      } else {
        const std::string submodule = module_name.substr(sizeof("panther_core"));
        core.attr(submodule.c_str()) = module;
      }
      builtin_modules_[py::str(module_name)] = module;
    }
    py::module_::import("sys").attr("modules").attr("update")(builtin_modules_);
  } catch (const py::error_already_set& e) {
    return absl::InternalError(absl::StrCat("cannot install panther_core: ", e.what()));
  }
  return absl::OkStatus();
}

absl::Status PythonRuntime::InstallTimer() {
  try {
    py::module_ signal = py::module_::import("signal");
    alarm_handler_ =
        py::cpp_function([this](py::object /*signum*/, py::object /*frame*/) { OnAlarm(); },
                         py::name("_pantherd_time_limit"));
    py::module_ c_signal = py::module_::import("_signal");
    signal_getsignal_ = c_signal.attr("getsignal");
    signal_signal_ = c_signal.attr("signal");
    sigalrm_ = c_signal.attr("SIGALRM");
    previous_alarm_handler_ = signal_signal_(sigalrm_, alarm_handler_);
    // Rule code cannot take SIGALRM away from the time limit: setting its
    // handler (signal.signal, which calls _signal.signal) leaves ours in
    // place and returns it.
    py::dict scope;
    scope["_set"] = signal_signal_;
    scope["_get"] = signal_getsignal_;
    scope["_alarm"] = sigalrm_;
    py::exec(R"(
def signal(signalnum, handler):
    if signalnum == _alarm:
        return _get(signalnum)
    return _set(signalnum, handler)
)",
             scope);
    c_signal.attr("signal") = scope["signal"];
  } catch (const py::error_already_set& e) {
    return absl::InternalError(absl::StrCat("cannot install the SIGALRM handler: ", e.what()));
  }
  owner_thread_ = pthread_self();
  watchdog_ = std::thread([this] { WatchCalls(); });
  return absl::OkStatus();
}

void PythonRuntime::WatchCalls() {
  const absl::Duration tick =
      std::clamp(options_.time_limit / 20, absl::Milliseconds(1), absl::Milliseconds(50));
  uint64_t signalled_call = 0;  // the call last sent SIGALRM
  int64_t next_signal_ns = 0;   // when to send it again (every second)
  absl::MutexLock lock(&watchdog_mu_);
  while (!watchdog_mu_.AwaitWithTimeout(absl::Condition(&stop_watchdog_), tick)) {
    const uint64_t call = call_number_.load(std::memory_order_acquire);
    const int64_t deadline = call_deadline_ns_.load(std::memory_order_acquire);
    if (deadline == INT64_MAX) continue;  // no call in progress
    const int64_t now = absl::GetCurrentTimeNanos();
    if (call == signalled_call ? now < next_signal_ns : now < deadline) continue;
    // The deadline read may belong to a call that has just ended: only signal
    // when the same call is still in progress.
    if (call_number_.load(std::memory_order_acquire) != call) continue;
    alarm_call_number_.store(call, std::memory_order_release);
    signalled_call = call;
    next_signal_ns = now + absl::ToInt64Nanoseconds(absl::Seconds(1));
    pthread_kill(owner_thread_, SIGALRM);
  }
}

PythonRuntime::~PythonRuntime() {
  if (watchdog_.joinable()) {
    {
      absl::MutexLock lock(&watchdog_mu_);
      stop_watchdog_ = true;
    }
    watchdog_.join();
  }
  ClearLoadedSet();
  json_dumps_ = py::object();
  json_loads_ = py::object();
  json_encoder_ = py::object();
  mapping_type_ = py::object();
  support_ = py::object();
  helpers_package_ = py::object();
  caching_module_ = py::object();
  builtin_modules_ = py::object();
  previous_alarm_handler_ = py::object();
  alarm_handler_ = py::object();
  signal_getsignal_ = py::object();
  signal_signal_ = py::object();
  sigalrm_ = py::object();
  py::finalize_interpreter();
}

void PythonRuntime::OnAlarm() {
  if (!in_call_ || alarm_call_number_.load(std::memory_order_acquire) !=
                       call_number_.load(std::memory_order_relaxed)) {
    return;
  }
  call_timed_out_ = true;
  const std::string message =
      absl::StrCat("rule function [", call_function_, "] exceeded the time limit of ",
                   absl::FormatDuration(options_.time_limit));
  PyErr_SetString(PyExc_TimeoutError, message.c_str());
  throw py::error_already_set();
}

v1::RuleError PythonRuntime::ToRuleError(const py::handle& type, const py::handle& value,
                                         const py::handle& trace) const {
  v1::RuleError error;
  try {
    py::object exc = py::reinterpret_borrow<py::object>(value);
    if (exc.is_none() || !PyExceptionInstance_Check(exc.ptr())) {
      // Normalise (e.g. a string raised from C): build the instance.
      exc = py::reinterpret_borrow<py::object>(type)(exc);
    }
    // The fetched traceback is the complete one; the exception's own
    // __traceback__ may be stale (set where the exception was last caught).
    if (trace && !trace.is_none()) {
      PyException_SetTraceback(exc.ptr(), trace.ptr());
    }
    py::tuple described = support_.attr("describe")(exc);
    error.set_type(ToStdString(described[0]));
    error.set_message(ToStdString(described[1]));
    error.set_traceback(ToStdString(described[2]));
  } catch (const py::error_already_set& e) {
    error.set_type("InternalError");
    error.set_message(absl::StrCat("cannot describe the exception: ", e.what()));
  }
  return error;
}

CallResult PythonRuntime::CallRuleCode(absl::string_view function_name,
                                       const std::function<py::object()>& body) {
  CallResult result;
  // Rule code may have replaced the handler (signal.signal); put ours back.
  if (++calls_since_handler_check_ >= kHandlerCheckCalls) {
    calls_since_handler_check_ = 0;
    try {
      if (!signal_getsignal_(sigalrm_).is(alarm_handler_)) {
        signal_signal_(sigalrm_, alarm_handler_);
      }
    } catch (const py::error_already_set&) {
      // Not fatal: the process pool's budget still bounds the call.
    }
  }

  in_call_ = true;
  call_timed_out_ = false;
  call_function_.assign(function_name.data(), function_name.size());
  const absl::Duration limit = options_.time_limit;
  if (limit > absl::ZeroDuration()) {
    const int64_t deadline = absl::GetCurrentTimeNanos() + absl::ToInt64Nanoseconds(limit);
    call_deadline_ns_.store(deadline, std::memory_order_release);
    if (deadline_mirror_ != nullptr) deadline_mirror_->store(deadline, std::memory_order_release);
  }
  call_number_.fetch_add(1, std::memory_order_acq_rel);
  try {
    result.value = body();
  } catch (py::error_already_set& e) {
    result.exception = e.value();
    result.error = ToRuleError(e.type(), e.value(), e.trace());
  } catch (const std::exception& e) {
    v1::RuleError error;
    error.set_type("InternalError");
    error.set_message(e.what());
    result.error = std::move(error);
  }
  call_deadline_ns_.store(INT64_MAX, std::memory_order_release);
  if (deadline_mirror_ != nullptr) deadline_mirror_->store(INT64_MAX, std::memory_order_release);
  in_call_ = false;
  // Run a SIGALRM handler still pending now, while it does nothing.
  if (PyErr_CheckSignals() != 0) PyErr_Clear();

  if (call_timed_out_) {
    result.timed_out = true;
    timeouts_.fetch_add(1, std::memory_order_relaxed);
    if (!result.error.has_value() || result.error->type() != "TimeoutError") {
      // The rule swallowed the TimeoutError: the call still failed.
      v1::RuleError error;
      error.set_type("TimeoutError");
      error.set_message(absl::StrCat("rule function [", call_function_,
                                     "] exceeded the time limit of ", absl::FormatDuration(limit)));
      if (result.error.has_value()) {
        absl::StrAppend(error.mutable_message(), " (it then raised ", result.error->type(), ": ",
                        result.error->message(), ")");
        error.set_traceback(result.error->traceback());
      }
      result.error = std::move(error);
      result.value = py::object();
    }
  }
  if (result.error.has_value()) result.value = py::object();
  return result;
}

py::tuple PythonRuntime::KvCall(int op, const std::string& key,
                                const std::vector<std::string>& values, int64_t increment,
                                int64_t expire, const std::string& json) {
  if (kv_ == nullptr) {
    PyErr_SetString(PyExc_RuntimeError,
                    "panther_detection_helpers.caching: no key-value store is configured");
    throw py::error_already_set();
  }
  internal::KvCall call;
  call.set_call_id(next_kv_call_id_++);
  call.set_op(static_cast<internal::KvCall::Op>(op));
  call.set_key(key);
  for (const std::string& v : values) call.add_values(v);
  call.set_increment(increment);
  call.set_expire_epoch_seconds(expire);
  call.set_json(json);
  absl::StatusOr<internal::KvReply> reply = kv_->Call(call);
  std::string error;
  if (!reply.ok()) {
    error = std::string(reply.status().message());
  } else if (!reply->error().empty()) {
    error = reply->error();
  }
  if (!error.empty()) {
    const std::string message =
        absl::StrCat("panther_detection_helpers.caching: the key-value store failed: ", error);
    PyErr_SetString(PyExc_RuntimeError, message.c_str());
    throw py::error_already_set();
  }
  py::list members;
  for (const std::string& v : reply->values()) members.append(py::str(v));
  return py::make_tuple(members, py::int_(reply->counter()), py::str(reply->json()));
}

void PythonRuntime::ClearLoadedSet() {
  if (set_ == nullptr) return;
  try {
    support_.attr("remove_modules")(set_->global_ids);
    support_.attr("set_globals")(py::list());
    support_.attr("clear_files")();
    support_.attr("register_file")(kCachingPath, kCachingSource);
  } catch (const py::error_already_set&) {
    // Best effort: the set is dropped below either way.
  }
  set_.reset();
}

absl::Status PythonRuntime::LoadRuleSet(const AnalysisSet& analysis,
                                        std::vector<v1::Diagnostic>* diagnostics) {
  ClearLoadedSet();
  auto set = std::make_unique<LoadedSet>();
  set->skipped = analysis.skipped;
  std::vector<v1::Diagnostic>& invalid = set->invalid;

  // Every item that failed to import, in load order. A failure that comes
  // from another uploaded file that failed too (a rule importing a broken
  // global) is reported once, with that file's own failure.
  struct Failure {
    std::string item;  // "rule Okta.X", "global panther_x", "datamodel Y"
    std::string path;
    int line = 0;
    std::string message;  // "<Type>: <message>[ (at FILE:LINE)][: hint]"
    std::string origin;   // the uploaded file the error happened in
  };
  std::vector<Failure> failures;
  auto report_failure = [&](std::string item, const std::string& path, const CallResult& call) {
    Failure f{std::move(item), path, 0, "", path};
    std::string note;
    std::string hint;
    if (call.exception && !call.exception.is_none()) {
      try {
        py::tuple location = support_.attr("error_location")(call.exception, path);
        f.line = location[0].cast<int>();
        note = location[1].cast<std::string>();
        f.origin = location[2].cast<std::string>();
        hint = support_.attr("import_hint")(call.exception).cast<std::string>();
      } catch (const py::error_already_set&) {
      }
    }
    f.message = absl::StrCat(call.error->type(), ": ", call.error->message(), note, hint);
    failures.push_back(std::move(f));
  };

  try {
    // Every uploaded Python file, for tracebacks.
    for (const GlobalSpec& g : analysis.globals) {
      support_.attr("register_file")(g.python_path, g.python_source);
    }
    for (const DataModelSpec& m : analysis.data_models) {
      if (!m.python_path.empty()) support_.attr("register_file")(m.python_path, m.python_source);
    }
    for (const RuleSpec& r : analysis.rules) {
      support_.attr("register_file")(r.python_path, r.python_source);
    }

    // 1. Globals. Our built-in modules first (a global may replace them).
    py::list entries;
    for (const GlobalSpec& g : analysis.globals) {
      entries.append(py::make_tuple(g.id, g.python_path, g.python_source));
      set->global_ids.push_back(g.id);
    }
    support_.attr("install_builtins")(builtin_modules_, set->global_ids);
    support_.attr("remove_modules")(set->global_ids);
    support_.attr("set_globals")(entries);
    RuleIntegrity& integrity = *set->integrity;
    // After each import: did it change what was sealed before it? (Undone.)
    auto tampered_at_import = [&](const std::string& item, const std::string& path) {
      std::vector<RuleIntegrity::Finding> findings = integrity.CheckAll();
      if (findings.empty()) return false;
      invalid.push_back(MakeDiagnostic(
          path, 0,
          absl::StrCat(item, ": its import changed code it does not own (",
                       RuleIntegrity::Describe(findings),
                       "); a rule, helper or data model may not change another")));
      return true;
    };
    for (const GlobalSpec& g : analysis.globals) {
      const std::string label = absl::StrCat("global ", g.id);
      set_output_label(&label);
      CallResult imported =
          CallRuleCode("<module>", [&] { return support_.attr("import_global")(g.id); });
      set_output_label(nullptr);
      if (imported.error.has_value()) {
        report_failure(absl::StrCat("global ", g.id), g.python_path, imported);
        continue;
      }
      if (tampered_at_import(absl::StrCat("global ", g.id), g.python_path)) continue;
      integrity.Seal(absl::StrCat("global ", g.id), imported.value, /*bindings=*/false);
    }

    // 2. Enabled data models.
    for (const DataModelSpec& m : analysis.data_models) {
      if (!m.rule.enabled()) continue;
      const std::string& model_id = m.rule.id();
      py::object module;
      if (!m.python_path.empty()) {
        CallResult loaded = CallRuleCode("<module>", [&] {
          return support_.attr("load_module")(model_id, m.python_path, m.python_source);
        });
        if (loaded.error.has_value()) {
          report_failure(absl::StrCat("datamodel ", model_id), m.python_path, loaded);
          continue;
        }
        if (tampered_at_import(absl::StrCat("datamodel ", model_id), m.python_path)) continue;
        module = loaded.value;
      }
      auto model = std::make_shared<DataModel>(model_id);
      bool ok = true;
      for (size_t i = 0; i < m.mappings.size(); ++i) {
        const DataModelMapping& mapping = m.mappings[i];
        absl::Status added;
        std::string field;
        if (!mapping.path.empty()) {
          added = model->AddPath(mapping.name, mapping.path);
          field = absl::StrCat("Mappings[", i, "].Path");
        } else {
          field = absl::StrCat("Mappings[", i, "].Method");
          py::object method;
          if (module && py::hasattr(module, mapping.method.c_str())) {
            method = module.attr(mapping.method.c_str());
          }
          if (!method || !PyCallable_Check(method.ptr())) {
            added = absl::InvalidArgumentError(
                absl::StrCat("data model method [", mapping.method, "] is not a function of ",
                             m.python_path.empty() ? "the data model" : m.python_path));
          } else {
            added = model->AddMethod(mapping.name, method);
          }
        }
        if (!added.ok()) {
          invalid.push_back(MakeDiagnostic(m.spec_path, mapping.line, added.message(), field));
          ok = false;
        }
      }
      if (!ok) continue;
      for (const std::string& log_type : m.rule.log_types()) {
        set->data_models[log_type] = model;
      }
    }

    // 3. Rules.
    for (const RuleSpec& r : analysis.rules) {
      const std::string label = absl::StrCat("rule ", r.rule.id());
      set_output_label(&label);
      CallResult loaded = CallRuleCode("<module>", [&] {
        return support_.attr("load_module")(r.rule.id(), r.python_path, r.python_source);
      });
      set_output_label(nullptr);
      if (loaded.error.has_value()) {
        report_failure(absl::StrCat(r.scheduled ? "scheduled_rule " : "rule ", r.rule.id()),
                       r.python_path, loaded);
        set->failed_rule_ids.insert(r.rule.id());
        continue;
      }
      const std::string item = absl::StrCat(r.scheduled ? "scheduled_rule " : "rule ", r.rule.id());
      if (tampered_at_import(item, r.python_path)) {
        set->failed_rule_ids.insert(r.rule.id());
        continue;
      }
      LoadedRule rule;
      rule.spec = r;
      rule.module = loaded.value;
      rule.integrity = &integrity;
      rule.seal = integrity.Seal(absl::StrCat("rule ", r.rule.id()), rule.module,
                                 /*bindings=*/true);
      for (int f = 0; f < kRuleFunctionCount; ++f) {
        const std::string name(RuleFunctionName(static_cast<RuleFunction>(f)));
        rule.defined[f] = py::hasattr(rule.module, name.c_str());
      }
      if (!rule.Defines(RuleFunction::kRule)) {
        invalid.push_back(
            MakeDiagnostic(r.python_path, 0, "rule needs to have a method named 'rule'"));
        set->failed_rule_ids.insert(r.rule.id());
        continue;
      }
      set->rules.push_back(std::move(rule));
    }
  } catch (const py::error_already_set& e) {
    set_ = std::move(set);
    return absl::InternalError(absl::StrCat("loading the rule set failed: ", e.what()));
  }

  // Import failures: each file's own failure once, naming the items that
  // failed only because they import it.
  {
    absl::flat_hash_map<std::string, size_t> own;  // path -> index in failures
    for (size_t i = 0; i < failures.size(); ++i) {
      if (failures[i].origin == failures[i].path) own.emplace(failures[i].path, i);
    }
    std::vector<std::vector<std::string>> consumers(failures.size());
    std::vector<bool> folded(failures.size(), false);
    for (size_t i = 0; i < failures.size(); ++i) {
      if (failures[i].origin == failures[i].path) continue;
      auto it = own.find(failures[i].origin);
      if (it == own.end()) continue;
      consumers[it->second].push_back(failures[i].item);
      folded[i] = true;
    }
    constexpr size_t kNamedConsumers = 20;
    for (size_t i = 0; i < failures.size(); ++i) {
      if (folded[i]) continue;
      Failure& f = failures[i];
      std::string message = absl::StrCat(f.item, ": ", f.message);
      if (!consumers[i].empty()) {
        const std::vector<std::string>& c = consumers[i];
        const size_t named = std::min(c.size(), kNamedConsumers);
        absl::StrAppend(&message, " (so ", c.size(), c.size() == 1 ? " item" : " items",
                        " importing it did not load either: ",
                        absl::StrJoin(c.begin(), c.begin() + named, ", "),
                        c.size() > named ? absl::StrCat(" and ", c.size() - named, " more") : "",
                        ")");
      }
      invalid.push_back(MakeDiagnostic(f.path, f.line, message));
    }
    std::stable_sort(
        invalid.begin(), invalid.end(),
        [](const v1::Diagnostic& a, const v1::Diagnostic& b) { return a.file() < b.file(); });
  }

  for (const v1::Diagnostic& d : invalid) diagnostics->push_back(d);
  const size_t problems = invalid.size();
  set_ = std::move(set);
  if (problems == 0) return absl::OkStatus();
  const v1::Diagnostic& first = set_->invalid.front();
  return absl::InvalidArgumentError(
      absl::StrFormat("%d problem%s loading the rule set (first: %s line %d: %s)", problems,
                      problems == 1 ? "" : "s", first.file(), first.line(), first.message()));
}

}  // namespace pantherd::engine
