// File: engine/internal/rule_test_spec.h
//
// Reading a rule's unit tests from its spec (engine/analysis_spec.cc): one
// entry of `Tests` (Name, ExpectedResult, the Log event, its LogType) and its
// `Mocks` ({objectName, returnValue}), following panther_analysis_tool's
// RULE_SCHEMA and MOCK_SCHEMA. The test's Log becomes JSON the way Python's
// json module would write it (non-finite floats as Python's tokens); mocks
// return strings or booleans only.
//
// Internal to pantherd_engine: include only from engine/analysis_spec*.cc.
// Thread-safe on distinct arguments.

#ifndef PANTHERD_ENGINE_INTERNAL_RULE_TEST_SPEC_H_
#define PANTHERD_ENGINE_INTERNAL_RULE_TEST_SPEC_H_

#include <yaml-cpp/yaml.h>

#include <cstddef>
#include <optional>

#include "engine/analysis_spec.h"
#include "engine/internal/spec_fields.h"

namespace pantherd::engine::internal {

// Reads `node`, the test at `index` of a rule's Tests list found at `line`.
// Every problem is reported to `r` under the field "Tests[<index>]..." (an
// unknown key, a missing Name, ExpectedResult or Log, a malformed mock);
// returns nullopt when there was any.
std::optional<RuleTest> ReadTest(const YAML::Node& node, size_t index, int line, Reporter& r);

}  // namespace pantherd::engine::internal

#endif  // PANTHERD_ENGINE_INTERNAL_RULE_TEST_SPEC_H_
