#include "engine/pool_rule_executor.h"

#include <utility>

namespace pantherd::engine {

absl::StatusOr<RuleExecutor::TestRun> PoolRuleExecutor::RunTests(
    const std::vector<v1::AnalysisFile>& files, const std::vector<std::string>& rule_ids) {
  internal::RunTestsTask task;
  for (const std::string& id : rule_ids) task.add_rule_ids(id);
  absl::StatusOr<v1::TestReport> report = pool_->RunTestsIsolated(files, task);
  if (!report.ok()) return report.status();
  TestRun run;
  // The worker reports compile problems among the report's invalid entries;
  // move them to the load result, where the manager looks for them.
  for (v1::Diagnostic& d : *report->mutable_invalid()) {
    *run.load.add_diagnostics() = std::move(d);
  }
  report->clear_invalid();
  run.report = std::move(*report);
  return run;
}

absl::StatusOr<internal::LoadResult> PoolRuleExecutor::LoadLive(
    const std::vector<v1::AnalysisFile>& files, uint64_t version) {
  return pool_->LoadLive(files, version);
}

}  // namespace pantherd::engine
