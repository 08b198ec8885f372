// The rule worker's request handler: the Python runtime behind the worker
// protocol. pantherd-worker's main() hardens the process, creates a
// PythonWorker on its main thread and runs engine/worker_host.h's loop with it.
//
// Thread-safety: none; a PythonWorker lives on the thread that created it
// (the thread that owns the interpreter, see engine/python_runtime.h).
#ifndef PANTHERD_ENGINE_PYTHON_WORKER_H_
#define PANTHERD_ENGINE_PYTHON_WORKER_H_

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "engine/kv.h"
#include "engine/python_runtime.h"
#include "engine/rule_prefilter.h"
#include "engine/worker_host.h"

namespace pantherd::engine {

class PythonWorker : public WorkerHandler {
 public:
  // Starts the interpreter. `kv` (not owned) backs the caching helpers.
  // Errors: those of PythonRuntime::Create.
  static absl::StatusOr<std::unique_ptr<PythonWorker>> Create(KvBackend* kv,
                                                              const WorkerLimits& limits);

  // Validates the files (spec loader) and compiles them into the runtime. The
  // LoadResult lists every problem; a set with errors is still loaded where
  // it could be, and the caller must treat errors as a failed load.
  absl::StatusOr<internal::LoadResult> Load(const internal::LoadRuleSet& request) override;

  // Runs the unit tests of the loaded set. FailedPrecondition when no set was
  // loaded.
  absl::StatusOr<v1::TestReport> RunTests(const internal::RunTestsTask& task) override;

  // Live detection: runs each event of `task` against the enabled rules
  // whose LogTypes include its log type (routing precomputed at Load), in
  // set order, each through RunRule(kLive) on a PantherEvent built with the
  // log type's data model. One event object per event, shared by its rules
  // (it is immutable). Results follow worker.proto's EvaluateResult: a
  // rule() that raised, returned a non-bool or timed out is a RuleErrorResult
  // (function "rule"); errors of the other functions of a match are listed
  // on the RuleMatch, whose fields hold Panther's fallbacks. An event that is
  // not a JSON object gets EventResult.error and runs no rule.
  // FailedPrecondition when no set was loaded.
  absl::StatusOr<internal::EvaluateResult> Evaluate(const internal::EvaluateTask& task) override;

  // The runtime, for in-process tests.
  PythonRuntime& runtime() { return *runtime_; }

  // Whether Evaluate skips the rules whose pre-condition (engine/
  // rule_prefilter.h) an event fails. On by default; off runs every routed
  // rule, for the tests and benchmarks that prove the two agree.
  void set_prefilter_enabled(bool enabled) { prefilter_enabled_ = enabled; }
  // Rules of the loaded set that have a pre-condition.
  int prefiltered_rules() const { return prefiltered_rules_; }

  // Called by Evaluate before the rules of each event run, with the event's
  // EventToEvaluate.kv_now_seconds and tag, and with (0, 0) after the last
  // one: the worker points its key-value cache's clock at the event
  // (KvCache::SetEventClock). Unset: nothing is called.
  void set_event_clock(std::function<void(int64_t now_seconds, uint32_t tag)> event_clock) {
    event_clock_ = std::move(event_clock);
  }

 private:
  explicit PythonWorker(std::unique_ptr<PythonRuntime> runtime) : runtime_(std::move(runtime)) {}
  // Rebuilds rules_by_log_type_ from the loaded set.
  void IndexRules();

  std::unique_ptr<PythonRuntime> runtime_;
  std::function<void(int64_t, uint32_t)> event_clock_;
  bool loaded_ = false;
  // Every loaded rule (enabled or not) by each of its LogTypes, in set
  // order, with their pre-condition index. Points into
  // runtime_->loaded_set(); rebuilt by every Load.
  struct LogTypeRules {
    std::vector<const LoadedRule*> rules;
    std::unique_ptr<RulePrefilter> prefilter;
  };
  absl::flat_hash_map<std::string, LogTypeRules> rules_by_log_type_;
  bool prefilter_enabled_ = true;
  int prefiltered_rules_ = 0;
};

// The whole pantherd-worker program. Returns its exit code.
int WorkerMain(int argc, char** argv);

}  // namespace pantherd::engine

#endif  // PANTHERD_ENGINE_PYTHON_WORKER_H_
