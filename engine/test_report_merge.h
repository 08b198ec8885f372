// File: engine/test_report_merge.h
//
// Building one v1::TestReport out of the parts a test run produces, internal
// to the worker pool (engine/worker_pool.cc): a one-shot worker answers one
// report per rule, and the pool adds what the worker could not say itself
// (load problems, the rules whose tests ended their worker). Pure functions
// on protos; nothing here talks to a worker.
//
// Internal to pantherd_engine: include only from engine/worker_pool*.cc.
#ifndef PANTHERD_ENGINE_TEST_REPORT_MERGE_H_
#define PANTHERD_ENGINE_TEST_REPORT_MERGE_H_

#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "pantherd/v1/common.pb.h"
#include "pantherd/v1/rules.pb.h"

namespace pantherd::engine {

// Appends `part` to `into`: rules and counts add up; invalid and skipped
// entries that `into` already has (same file, line, field and message; same
// analysis type) are not repeated. Moves out of `part`.
void MergeTestReport(v1::TestReport& into, v1::TestReport& part);

// Records that the worker failed while running the tests of `rule_id`: a
// RuleTestResult with passed = false in which each of the rule's tests
// (`test_names`, from its spec; "worker" stands in when the spec names none)
// is an OUTCOME_ERROR whose "rule" function carries a RuleError of `type`
// ("WorkerCrashed", "WorkerOutOfMemory", "Timeout") and `message`. Each
// counts in tests_failed.
void AddWorkerFailedRule(v1::TestReport& report, const std::string& rule_id,
                         const std::vector<std::string>& test_names, const std::string& type,
                         const std::string& message);

// Adds a content problem (a Diagnostic with only `message`) to `invalid`.
void AddInvalidMessage(v1::TestReport& report, const std::string& message);

// The test names of each rule in `files`, from their specs; empty when the
// specs do not load (the worker reports that itself).
absl::flat_hash_map<std::string, std::vector<std::string>> TestNamesByRule(
    const std::vector<v1::AnalysisFile>& files);

}  // namespace pantherd::engine

#endif  // PANTHERD_ENGINE_TEST_REPORT_MERGE_H_
