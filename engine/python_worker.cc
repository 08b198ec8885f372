#include "engine/python_worker.h"

#include <cstdio>
#include <utility>

#include "engine/analysis_spec.h"
#include "engine/test_runner.h"

namespace pantherd::engine {

absl::StatusOr<std::unique_ptr<PythonWorker>> PythonWorker::Create(KvBackend* kv,
                                                                   const WorkerLimits& limits) {
  RuntimeOptions options;
  options.time_limit = limits.call_time_limit;
  absl::StatusOr<std::unique_ptr<PythonRuntime>> runtime = PythonRuntime::Create(kv, options);
  if (!runtime.ok()) return runtime.status();
  return std::unique_ptr<PythonWorker>(new PythonWorker(std::move(*runtime)));
}

absl::StatusOr<internal::LoadResult> PythonWorker::Load(const internal::LoadRuleSet& request) {
  internal::LoadResult result;
  result.set_version(request.version());
  std::vector<v1::Diagnostic> diagnostics;
  absl::StatusOr<AnalysisSet> set = LoadAnalysisFiles(request.files(), &diagnostics);
  if (set.ok()) {
    // Diagnostics of a failed load are returned as data; the status only
    // says that there were some.
    absl::Status loaded = runtime_->LoadRuleSet(*set, &diagnostics);
    (void)loaded;
    for (const v1::SkippedContent& s : set->skipped) *result.add_skipped() = s;
    if (runtime_->loaded_set() != nullptr) {
      result.set_rule_count(static_cast<int32_t>(runtime_->loaded_set()->rules.size()));
    }
    loaded_ = true;
  }
  for (v1::Diagnostic& d : diagnostics) *result.add_diagnostics() = std::move(d);
  return result;
}

absl::StatusOr<v1::TestReport> PythonWorker::RunTests(const internal::RunTestsTask& task) {
  if (!loaded_ || runtime_->loaded_set() == nullptr) {
    return absl::FailedPreconditionError("no rule set is loaded in this worker");
  }
  RunTestsOptions options;
  options.rule_ids.assign(task.rule_ids().begin(), task.rule_ids().end());
  return engine::RunTests(*runtime_, *runtime_->loaded_set(), options);
}

int WorkerMain(int argc, char** argv) {
  absl::StatusOr<WorkerConfig> config = ParseWorkerArgs(argc, argv);
  if (!config.ok()) {
    std::fprintf(stderr, "pantherd-worker: %s\n", std::string(config.status().message()).c_str());
    return kWorkerExitUsage;
  }
  if (absl::Status s = HardenWorkerProcess(*config); !s.ok()) {
    std::fprintf(stderr, "pantherd-worker: %s\n", std::string(s.message()).c_str());
    return kWorkerExitHardening;
  }
  RemoteKv kv(config->channel_fd);
  absl::StatusOr<std::unique_ptr<PythonWorker>> worker = PythonWorker::Create(&kv, config->limits);
  if (!worker.ok()) {
    std::fprintf(stderr, "pantherd-worker: cannot start Python: %s\n",
                 std::string(worker.status().message()).c_str());
    return kWorkerExitChannel;
  }
  return RunWorkerLoop(config->channel_fd, **worker, &kv);
}

}  // namespace pantherd::engine
