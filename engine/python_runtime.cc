// File: engine/python_runtime.cc
//
// PythonRuntime: the interpreter's life (start, built-in modules, finalize),
// calling rule code and the key-value bridge of the caching module. The time
// limit is python_time_limit.cc, loading a rule set python_rule_loader.cc.

#include "engine/python_runtime.h"

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
#include "engine/python/caching_py.h"
#include "engine/python/pantherd_runtime_py.h"

namespace pantherd::engine {

namespace py = pybind11;

namespace {

// Set by the first Create(): one runtime per process, ever.
std::atomic<bool> g_runtime_created{false};

// panther_detection_helpers.caching (engine/python/caching.py) is compiled
// under this path, so that tracebacks through it read like Panther's.
constexpr char kCachingPath[] = "panther_detection_helpers/caching.py";

// The text of engine/python/caching.py (embedded at build time).
py::str CachingSource() { return py::str(embedded::kCachingPy, embedded::kCachingPySize); }

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
    // engine/python/pantherd_runtime.py. The module is not in sys.modules:
    // rules cannot import it.
    py::exec(py::str(embedded::kPantherdRuntimePy, embedded::kPantherdRuntimePySize), support_dict);
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
    py::dict caching_dict = caching_module_.attr("__dict__");
    py::module_ builtins = py::module_::import("builtins");
    py::object code = builtins.attr("compile")(CachingSource(), kCachingPath, "exec");
    builtins.attr("exec")(code, caching_dict);
    // The module's placeholders for the key-value calls give way to ours.
    caching_module_.attr("_kv_call") = py::cpp_function(
        [this](int op, const std::string& key, const std::vector<std::string>& values,
               int64_t increment, int64_t expire, const std::string& json) {
          return KvCall(op, key, values, increment, expire, json);
        },
        py::name("_kv_call"));
    caching_module_.attr("_kv_now") = py::cpp_function(
        [this]() { return kv_ != nullptr ? kv_->NowSeconds() : absl::ToUnixSeconds(absl::Now()); },
        py::name("_kv_now"));
    helpers_package_.attr("caching") = caching_module_;
    support_.attr("register_file")(kCachingPath, CachingSource());
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
    support_.attr("register_file")(kCachingPath, CachingSource());
  } catch (const py::error_already_set&) {
    // Best effort: the set is dropped below either way.
  }
  set_.reset();
}

}  // namespace pantherd::engine
