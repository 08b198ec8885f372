// The rule worker's request handler: the Python runtime behind the worker
// protocol. pantherd-worker's main() hardens the process, creates a
// PythonWorker on its main thread and runs engine/worker_host.h's loop with it.
//
// Thread-safety: none; a PythonWorker lives on the thread that created it
// (the thread that owns the interpreter, see engine/python_runtime.h).
#ifndef PANTHERD_ENGINE_PYTHON_WORKER_H_
#define PANTHERD_ENGINE_PYTHON_WORKER_H_

#include <memory>

#include "absl/status/statusor.h"
#include "engine/kv.h"
#include "engine/python_runtime.h"
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

 private:
  explicit PythonWorker(std::unique_ptr<PythonRuntime> runtime) : runtime_(std::move(runtime)) {}
  std::unique_ptr<PythonRuntime> runtime_;
  bool loaded_ = false;
};

// The whole pantherd-worker program. Returns its exit code.
int WorkerMain(int argc, char** argv);

}  // namespace pantherd::engine

#endif  // PANTHERD_ENGINE_PYTHON_WORKER_H_
