// File: engine/python_runtime.h
//
// The embedded CPython 3.11 that runs Panther-format rules, inside one rule
// worker process (engine/worker_host.h). A PythonRuntime owns the process's
// interpreter, compiles a rule set (global helpers, data models, rules) into
// Python modules, provides Panther's built-in module
// `panther_detection_helpers.caching` over a KvBackend, and runs every call
// into rule code under a time limit. Running rules on events is
// engine/rule_runner.h; running their unit tests is engine/test_runner.h.
// docs/rule-contract.md ("Rule functions and tests") is the contract.
//
//   KvMemory kv;  // or the worker's RemoteKv
//   absl::StatusOr<std::unique_ptr<PythonRuntime>> runtime = PythonRuntime::Create(&kv);
//   if (!runtime.ok()) return runtime.status();
//   std::vector<v1::Diagnostic> diagnostics;
//   absl::Status loaded = (*runtime)->LoadRuleSet(analysis_set, &diagnostics);
//   v1::TestReport report = RunTests(**runtime, *(*runtime)->loaded_set(), {});
//
// GIL POLICY (the one place it is written down; nothing else in pantherd
// touches Python):
//   - The interpreter is initialised once per process, by
//     PythonRuntime::Create, and finalised by the runtime's destructor.
//   - The thread that calls Create owns the runtime: it is Python's main
//     thread. Every method of PythonRuntime, every function of
//     engine/rule_runner.h and engine/test_runner.h, and every use of a
//     pybind11 object they hand out, must happen on that thread.
//   - The owning thread holds the GIL from Create until the destructor, so
//     the GIL is held for the whole of every call and never needs to be taken
//     or released around one. No other thread may touch Python: threads
//     started by rule code run only while a call into Python is in progress.
//   - engine/event_document.h and engine/event_probe.h need no GIL
//     (ParseEvent, FindTopLevelString, ProbeField) and may run on any thread; everything else needs the
//     owning thread.
//
// Time limit. Every call into rule code (a rule function, a module's
// top-level code at load) runs under options.time_limit. A call only writes
// its deadline and a call number to atomics (no system call); a watchdog
// thread owned by the runtime checks them every time_limit/20 (between 1 ms
// and 50 ms) and, once the deadline has passed, sends SIGALRM to the owning
// thread (pthread_kill), where Python's signal handler
// raises `TimeoutError("rule function [f] exceeded the time limit of 5s")`
// inside the rule, which is recorded as that call's error; `while True: pass`
// and `time.sleep(100)` both stop. A rule that catches the exception is
// interrupted again every second, and its call is recorded as timed out even
// if it then returns. Code that never returns to the interpreter (a C
// extension looping, a `try: ... except BaseException: pass` inside a loop)
// is not stopped by the runtime: pantherd-worker (engine/python_worker.cc)
// watches call_deadline_unix_nanos() and ends its process with
// kWorkerExitCallTimeLimit once a call is kill_grace past its deadline, and
// the process pool kills a worker whose request overruns its budget
// (engine/worker_pool.h). Rule code cannot take SIGALRM over: setting its
// handler through `signal.signal` (or `_signal.signal`) leaves the runtime's
// in place, and every kHandlerCheckCalls calls the runtime also checks it and
// puts it back. Requirements on the host process: SIGALRM is reserved for the
// runtime, and the owning thread must not block it.
//
// Errors: methods return absl::Status; Python exceptions never escape this
// API (rule errors are data, v1::RuleError).

#ifndef PANTHERD_ENGINE_PYTHON_RUNTIME_H_
#define PANTHERD_ENGINE_PYTHON_RUNTIME_H_

#include <pthread.h>
#include <pybind11/pybind11.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "engine/analysis_spec.h"
#include "engine/rule_integrity.h"
#include "engine/event.h"
#include "engine/kv.h"
#include "pantherd/v1/common.pb.h"
#include "pantherd/v1/rules.pb.h"

namespace pantherd::engine {

// The functions a rule module may define, in Panther's evaluation order
// (rule first, then the auxiliary functions; unique last).
enum class RuleFunction {
  kRule = 0,
  kTitle,
  kDescription,
  kReference,
  kSeverity,
  kRunbook,
  kDestinations,
  kDedup,
  kAlertContext,
  kUnique,
};
inline constexpr int kRuleFunctionCount = 10;

// The Python name of `f` ("rule", "title", ..., "alert_context", "unique").
absl::string_view RuleFunctionName(RuleFunction f);

// One compiled rule of the loaded set.
struct LoadedRule {
  // The rule's spec, as LoadAnalysisFiles returned it.
  RuleSpec spec;
  // The rule's module: named after the RuleID, not in sys.modules, loaded
  // once per set, so module globals persist across events and tests.
  pybind11::object module;
  // Which functions the module defines (hasattr at load time, as Panther),
  // indexed by RuleFunction. `rule` is always defined.
  std::array<bool, kRuleFunctionCount> defined{};

  // The seals of its module (engine/rule_integrity.h): the set's guard and
  // this rule's index in it. Null when not sealed.
  RuleIntegrity* integrity = nullptr;
  size_t seal = 0;

  const std::string& id() const { return spec.rule.id(); }
  bool Defines(RuleFunction f) const { return defined[static_cast<int>(f)]; }
};

// The compiled rule set a runtime holds. Holds Python objects: destroyed only
// by its runtime, on the owning thread.
struct LoadedSet {
  // Rules whose module compiled and defines `rule`, in spec path order,
  // enabled or not.
  std::vector<LoadedRule> rules;
  // The enabled data models by log type.
  absl::flat_hash_map<std::string, std::shared_ptr<const DataModel>> data_models;
  // The global helpers installed in sys.modules, by GlobalID.
  std::vector<std::string> global_ids;
  // Everything that failed to load (also appended to LoadRuleSet's output).
  std::vector<v1::Diagnostic> invalid;
  // The RuleIDs of the rules that failed to load (their problem, or the
  // problem of the file that broke them, is in `invalid`).
  absl::flat_hash_set<std::string> failed_rule_ids;
  // Content not run by pantherd, copied from the AnalysisSet.
  std::vector<v1::SkippedContent> skipped;
  // The seals of the rules' and helpers' functions; rules point to it.
  std::unique_ptr<RuleIntegrity> integrity = std::make_unique<RuleIntegrity>();

  // The rule with `id`, or null.
  const LoadedRule* FindRule(absl::string_view id) const;
  // The enabled data model of `log_type`, or null.
  std::shared_ptr<const DataModel> DataModelFor(absl::string_view log_type) const;
};

struct RuntimeOptions {
  // The longest one call into rule code may run (see the file comment).
  absl::Duration time_limit = absl::Seconds(5);
};

// What one timed call into rule code produced: exactly one of `value` (it
// returned) and `error` (it raised, or ran past the time limit) is set.
struct CallResult {
  pybind11::object value;
  std::optional<v1::RuleError> error;
  // The exception object when the call raised (for repr()), else None.
  pybind11::object exception;
  // True when the time limit expired during the call.
  bool timed_out = false;
};

class PythonRuntime {
 public:
  // Initialises CPython (Debian's 3.11, isolated configuration, Python's
  // default signal handlers not installed), checks the version is 3.11,
  // registers `panther_detection_helpers` (with its submodule `caching`,
  // whose functions forward to `kv`) and `panther_core` (Panther's runtime
  // package, for the names rules import from it: `PantherEvent`,
  // `panther_core.immutable`, `.enriched_event`, `.data_model`,
  // `.exceptions`, all backed by `_pantherd_event`) and installs the SIGALRM handler and
  // watchdog thread of the time limit. `kv` is not owned and must outlive the runtime;
  // null makes every caching call raise RuntimeError in the rule. The
  // calling thread becomes the owning thread (see GIL POLICY).
  //
  // Returns FailedPrecondition if a Python interpreter already runs in this
  // process or a runtime was created before (one per process, ever),
  // Internal if the interpreter is not CPython 3.11 or setup fails.
  static absl::StatusOr<std::unique_ptr<PythonRuntime>> Create(KvBackend* kv,
                                                               RuntimeOptions options = {});

  // Drops the loaded set and finalises the interpreter. Owning thread only.
  ~PythonRuntime();
  PythonRuntime(const PythonRuntime&) = delete;
  PythonRuntime& operator=(const PythonRuntime&) = delete;

  // Compiles `set` and makes it the runtime's set, replacing the previous one
  // entirely (its globals are removed from sys.modules and its modules
  // dropped). In order:
  //   1. Globals: each becomes the module `GlobalID` in sys.modules (any
  //      module of that name is replaced, bundled helpers,
  //      panther_detection_helpers and panther_core included: a global named
  //      after a built-in package also hides the package's submodules); they
  //      may import each other in any order.
  //   2. Enabled data models: Path mappings, and Method mappings resolved in
  //      the model's own Python module.
  //   3. Rules: each module is named after its RuleID, kept out of
  //      sys.modules, and must define `rule`.
  // Every file is compiled under its upload path, so tracebacks and syntax
  // errors name it and show its lines; module code runs under the time limit.
  //
  // Each problem is appended to `*diagnostics` (must not be null) and to
  // loaded_set()->invalid, ordered by file: a SyntaxError or an exception at
  // import as {the module's file, the line (of the deepest frame in that
  // file), "<item>: <Type>: <message>"} where <item> is "rule ID",
  // "scheduled_rule ID", "global ID" or "datamodel ID", with " (at
  // FILE:LINE)" when it was raised in another uploaded file and, for a
  // ModuleNotFoundError, a hint (": install the Debian package python3-x if
  // there is one, or upload a global helper named x"); a module without
  // `rule`; an unknown data-model Method. An item that failed only because
  // it imports an uploaded file that failed itself gets no diagnostic: that
  // file's diagnostic ends "(so N items importing it did not load either:
  // rule A, ...)". What failed is left out of the set (failed rules' IDs in
  // failed_rule_ids); the rest is loaded. Returns OK when nothing failed, else InvalidArgument
  // summarising ("2 problems loading the rule set (first: ...)"): callers
  // that need all-or-nothing (a live swap) must not use a set that failed.
  absl::Status LoadRuleSet(const AnalysisSet& set, std::vector<v1::Diagnostic>* diagnostics);

  // The current set; null before the first LoadRuleSet.
  const LoadedSet* loaded_set() const { return set_.get(); }

  // Calls `body` (which calls into rule code, e.g. `fn(event)`) under the
  // time limit, as `function_name` (for the TimeoutError message). Converts
  // any Python exception to CallResult::error (type, message and the
  // formatted traceback); never throws. Calls may not nest.
  CallResult CallRuleCode(absl::string_view function_name,
                          const std::function<pybind11::object()>& body);

  // The time limit of each call; takes effect at the next call.
  absl::Duration time_limit() const { return options_.time_limit; }
  void set_time_limit(absl::Duration limit) { options_.time_limit = limit; }

  // When the call in progress must end, as Unix nanoseconds; INT64_MAX when
  // no call is in progress. Thread-safe (no GIL): meant for a watchdog
  // thread that kills the process once this lies `grace` in the past.
  int64_t call_deadline_unix_nanos() const {
    return call_deadline_ns_.load(std::memory_order_relaxed);
  }

  // Also writes every call deadline (and INT64_MAX after each call) to
  // `*mirror`, e.g. a page shared with a watchdog process that kills this one
  // when a call outlives its deadline (engine/worker_sandbox.h). Null stops
  // mirroring. Not owned; must outlive the runtime. Owning thread, between
  // calls.
  void set_deadline_mirror(std::atomic<int64_t>* mirror) { deadline_mirror_ = mirror; }

  // What rule code prints (sys.stdout, sys.stderr) is prefixed, line by
  // line, with "[<*label>] " while `label` is set (e.g. "rule Okta.X"); null
  // clears it. Not owned: must stay valid until cleared. Owning thread.
  void set_output_label(const std::string* label) { output_label_ = label; }

  // Number of calls that ran past the time limit since Create. Thread-safe.
  int64_t timeouts() const { return timeouts_.load(std::memory_order_relaxed); }

  // Commonly used Python objects, imported once (owning thread only).
  const pybind11::object& json_dumps() const { return json_dumps_; }
  const pybind11::object& json_loads() const { return json_loads_; }
  const pybind11::object& json_encoder() const { return json_encoder_; }
  const pybind11::object& mapping_type() const { return mapping_type_; }
  // The private support module (mocks, tracebacks, output capture).
  const pybind11::object& support() const { return support_; }

  // Converts the Python exception being handled (from a caught
  // pybind11::error_already_set) to a RuleError. Owning thread only.
  v1::RuleError ToRuleError(const pybind11::handle& type, const pybind11::handle& value,
                            const pybind11::handle& trace) const;

 private:
  PythonRuntime(KvBackend* kv, RuntimeOptions options);
  absl::Status Initialize();
  absl::Status InstallBuiltinModules();
  absl::Status InstallTimer();
  void ClearLoadedSet();
  // Python's SIGALRM handler (runs on the owning thread, inside a call).
  void OnAlarm();
  // The `_kv_call` function behind the caching module.
  pybind11::tuple KvCall(int op, const std::string& key, const std::vector<std::string>& values,
                         int64_t increment, int64_t expire, const std::string& json);

  KvBackend* const kv_;
  RuntimeOptions options_;
  uint64_t next_kv_call_id_ = 1;

  // The watchdog thread's loop (see the file comment).
  void WatchCalls();

  // How often CallRuleCode checks that the SIGALRM handler is still ours.
  static constexpr uint32_t kHandlerCheckCalls = 64;

  // Time-limit state. in_call_, call_timed_out_, call_function_ and
  // calls_since_handler_check_ are touched only on the owning thread
  // (CallRuleCode, OnAlarm); the atomics are shared with the watchdog.
  bool in_call_ = false;
  bool call_timed_out_ = false;
  uint32_t calls_since_handler_check_ = 0;
  std::string call_function_;
  std::atomic<int64_t> call_deadline_ns_{INT64_MAX};
  std::atomic<int64_t>* deadline_mirror_ = nullptr;
  const std::string* output_label_ = nullptr;
  // Number of the call in progress (or last made), and the number of the call
  // the watchdog last sent SIGALRM for: OnAlarm acts only when they match, so
  // a signal aimed at a call that has just returned cannot hit the next one.
  std::atomic<uint64_t> call_number_{0};
  std::atomic<uint64_t> alarm_call_number_{0};
  std::atomic<int64_t> timeouts_{0};
  // The watchdog and its stop flag.
  pthread_t owner_thread_{};
  std::thread watchdog_;
  absl::Mutex watchdog_mu_;
  bool stop_watchdog_ ABSL_GUARDED_BY(watchdog_mu_) = false;

  std::unique_ptr<LoadedSet> set_;

  // Python objects; released in the destructor before finalisation.
  pybind11::object json_dumps_;
  pybind11::object json_loads_;
  pybind11::object json_encoder_;
  pybind11::object mapping_type_;
  pybind11::object support_;
  pybind11::object helpers_package_;
  pybind11::object caching_module_;
  // Every built-in module by its sys.modules name (the two above and
  // panther_core's); put back into sys.modules at each LoadRuleSet.
  pybind11::object builtin_modules_;  // dict
  pybind11::object previous_alarm_handler_;
  pybind11::object alarm_handler_;
  pybind11::object signal_getsignal_;
  pybind11::object signal_signal_;
  pybind11::object sigalrm_;
};

}  // namespace pantherd::engine

#endif  // PANTHERD_ENGINE_PYTHON_RUNTIME_H_
