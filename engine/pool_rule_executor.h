// RuleExecutor over the worker process pool: test runs in one-shot workers,
// the live set in the pool's current generation.
#ifndef PANTHERD_ENGINE_POOL_RULE_EXECUTOR_H_
#define PANTHERD_ENGINE_POOL_RULE_EXECUTOR_H_

#include "engine/rule_set_manager.h"
#include "engine/worker_pool.h"

namespace pantherd::engine {

// Thread-safe as WorkerPool is. `pool` is not owned and must outlive this.
class PoolRuleExecutor : public RuleExecutor {
 public:
  explicit PoolRuleExecutor(WorkerPool* pool) : pool_(pool) {}

  // Problems compiling the set come back in `load`; the report keeps the
  // test results.
  absl::StatusOr<TestRun> RunTests(const std::vector<v1::AnalysisFile>& files,
                                   const std::vector<std::string>& rule_ids) override;
  absl::StatusOr<internal::LoadResult> LoadLive(const std::vector<v1::AnalysisFile>& files,
                                                uint64_t version) override;

 private:
  WorkerPool* pool_;
};

}  // namespace pantherd::engine

#endif  // PANTHERD_ENGINE_POOL_RULE_EXECUTOR_H_
