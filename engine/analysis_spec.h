// File: engine/analysis_spec.h
//
// Loads and validates the analysis content of an upload: Panther-format YAML
// specs plus the Python files they name, as panther_analysis_tool (`pat test`,
// `pat upload`) reads them. The result is every rule, global helper and data
// model of the upload, checked against Panther's schemas, or a list of every
// problem found, each with its file, line and field. docs/rule-contract.md,
// "The analysis spec" (the YAML typing, each AnalysisType, and "Other types,
// IDs, outcome"), states the accepted format.
//
//   std::vector<v1::Diagnostic> diagnostics;
//   absl::StatusOr<AnalysisSet> set = LoadAnalysisFiles(request.files(), &diagnostics);
//   for (const v1::Diagnostic& d : diagnostics) { /* errors and warnings */ }
//   if (!set.ok()) {
//     // InvalidArgument "3 problems in 2 files (first: ...)"; details in diagnostics.
//   }
//
// What is read:
//   - Specs are the files named *.yml or *.yaml. Files and directories whose
//     name starts with '.' and everything under a `__pycache__` directory are
//     skipped. A YAML file without a top-level AnalysisType key is not a spec
//     and is ignored (but it must still parse).
//   - Python files are read only when a spec names them in `Filename`,
//     resolved relative to the spec's directory. Other files are ignored.
//   - AnalysisType rule, scheduled_rule, global and datamodel are validated
//     and returned. A scheduled_rule is a RuleSpec with `scheduled` set: its
//     unit tests run as pat runs them (rule() on each test row), but it sees
//     no live events (it has ScheduledQueries instead of LogTypes) and is not
//     stored by an upload. Other Panther types (policy, correlation_rule,
//     saved_query, scheduled_query, pack, lookup_table, simple_detection,
//     scheduled_prompt, rules derived from a BaseDetection, and Simple
//     Detections: rules with `Detection:` instead of `Filename:`, whose tests
//     pat runs only through a Panther backend) are not run by pantherd: they
//     are counted in AnalysisSet::skipped, never dropped silently and never an
//     error. Their IDs still take part in the duplicate ID check. Any other
//     AnalysisType is an error.
//
// Two ways to load: LoadAnalysisFiles is all-or-nothing (an upload that is
// stored), LoadValidAnalysisFiles keeps every valid item and reports the
// others (`pantherctl test` on a whole checkout, as `pat test` does).
//
// Thread safety: both are pure functions of their input.

#ifndef PANTHERD_ENGINE_ANALYSIS_SPEC_H_
#define PANTHERD_ENGINE_ANALYSIS_SPEC_H_

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/repeated_ptr_field.h"
#include "pantherd/v1/common.pb.h"
#include "pantherd/v1/rules.pb.h"

namespace pantherd::engine {

// One entry of a test's Mocks: a name bound in the rule module that the test
// replaces with a function returning `returnValue`.
struct TestMock {
  std::string object_name;
  // returnValue as JSON: a string ("\"[1, 2]\"") or a bool ("true").
  std::string return_value_json;
};

// One entry of a rule's Tests.
struct RuleTest {
  std::string name;
  bool expected_result = false;
  // The test's Log as JSON text (engine/yaml_json.h, YamlToJson with
  // NonFiniteFloats::kPythonTokens, so .inf becomes Infinity as Python's
  // json.dumps would write it; engine/event_document.h's ParseEvent accepts that).
  std::string log_json;
  std::vector<TestMock> mocks;
  // 1-based line of the test in its spec.
  int line = 0;
};

// A Python rule (AnalysisType: rule, or scheduled_rule with `scheduled`).
struct RuleSpec {
  // Type ANALYSIS_TYPE_RULE with every metadata field filled from the spec and
  // Panther's defaults (DedupPeriodMinutes 60, Threshold 1, CreateAlert true),
  // test_count, and `files` = {the spec, the Python file} with their content.
  // Version bookkeeping fields are left unset.
  v1::Rule rule;
  // Upload paths of the spec and of the Python file it names.
  std::string spec_path;
  std::string python_path;
  std::string python_source;
  std::vector<RuleTest> tests;
  // AnalysisType: scheduled_rule. Its rule has no log types (it sees no live
  // events); its tests run without a data model, as pat runs them.
  bool scheduled = false;
  // A scheduled rule's ScheduledQueries (query names), as written.
  std::vector<std::string> scheduled_queries;
};

// A global helper module (AnalysisType: global), imported by rules under its
// GlobalID.
struct GlobalSpec {
  std::string id;
  std::string spec_path;
  std::string python_path;
  std::string python_source;
  // Type ANALYSIS_TYPE_GLOBAL: id, description, tags, enabled (always true)
  // and `files` = {the spec, the Python file}.
  v1::Rule rule;
};

// One entry of a data model's Mappings: exactly one of `path` and `method` is
// non-empty.
struct DataModelMapping {
  std::string name;
  // A JSONPath as written in the spec, e.g. "$.client.ipAddress".
  std::string path;
  // The name of a function in the data model's Python file.
  std::string method;
  // 1-based line of the mapping in its spec.
  int line = 0;
};

// A data model (AnalysisType: datamodel).
struct DataModelSpec {
  // Type ANALYSIS_TYPE_DATA_MODEL: id, display_name, enabled, log_types and
  // `files` = {the spec} plus the Python file when there is one.
  v1::Rule rule;
  std::string spec_path;
  // Empty when the spec has no Filename (only Path mappings).
  std::string python_path;
  std::string python_source;
  std::vector<DataModelMapping> mappings;
};

// The validated content of an upload. Each vector is ordered by spec path.
struct AnalysisSet {
  // Rules and scheduled rules (RuleSpec::scheduled).
  std::vector<RuleSpec> rules;
  std::vector<GlobalSpec> globals;
  std::vector<DataModelSpec> data_models;
  // Content pantherd does not run, one entry per AnalysisType ("policy",
  // "scheduled_rule", ..., "derived" for rules with a BaseDetection), ordered
  // by type, with the spec paths in path order.
  std::vector<v1::SkippedContent> skipped;
  // GlobalID -> spec path of each global spec that is invalid (and whose ID
  // no valid global has): rules importing it fail with "No module named
  // 'ID'", which callers may report with the spec's problem instead.
  std::map<std::string, std::string> invalid_globals;
};

// Diagnostics whose message starts with this prefix are warnings: reported,
// but they do not make LoadAnalysisFiles fail.
inline constexpr absl::string_view kWarningPrefix = "warning: ";

// True if `diagnostic` is a warning (its message starts with kWarningPrefix).
bool IsWarning(const v1::Diagnostic& diagnostic);

// True if `path` names a spec file that LoadAnalysisFiles reads: *.yml or
// *.yaml, not hidden, not under __pycache__.
bool IsAnalysisSpecPath(absl::string_view path);

// Parses and validates `files`, the files of one upload (paths relative to the
// uploaded folder, '/'-separated).
//
// Appends every problem found to `*diagnostics` (which must not be null;
// existing entries are kept), in file order then line order: errors, and
// warnings whose message starts with kWarningPrefix. Diagnostic.file is the
// upload path, line is 1-based (0 when unknown, e.g. a missing key points at
// the spec's first line instead), field is the YAML field, with a path for
// nested ones ("Tests[2].ExpectedResult", "Mappings[0].Path").
//
// Returns the AnalysisSet if no error was found (warnings allowed). Returns
// InvalidArgument if any error was found; its message summarises
// ("3 problems in 2 files (first: rules/a.yml line 4: ...)") and the
// diagnostics hold the details. Checks, beyond the per-type schemas
// (docs/rule-contract.md): YAML syntax, Filename resolution (the named file
// must be among `files`), IDs unique across all specs ("Conflicting
// AnalysisID: [id]"), at most one enabled data model per log type
// ("Conflicting Enabled LogType [..] in Data Model [..]"), and upload paths
// that are absolute, leave the folder ("..") or occur twice. Never throws.
absl::StatusOr<AnalysisSet> LoadAnalysisFiles(const std::vector<v1::AnalysisFile>& files,
                                              std::vector<v1::Diagnostic>* diagnostics);

// The same, for the repeated `files` field of a request message.
absl::StatusOr<AnalysisSet> LoadAnalysisFiles(
    const google::protobuf::RepeatedPtrField<v1::AnalysisFile>& files,
    std::vector<v1::Diagnostic>* diagnostics);

// Like LoadAnalysisFiles, but never refuses the whole content, as `pat test`
// runs every valid rule of a checkout: returns every item that is valid on
// its own, and appends the problems of the others to `*diagnostics` (must not
// be null), exactly as LoadAnalysisFiles reports them. An item with an error
// is left out; of specs sharing an ID, the first in path order is kept; of
// enabled data models sharing a log type, the first in path order is kept.
// A Python file that fails to compile is not checked here (the runtime
// reports it per item, engine/python_runtime.h). Never throws.
AnalysisSet LoadValidAnalysisFiles(
    const google::protobuf::RepeatedPtrField<v1::AnalysisFile>& files,
    std::vector<v1::Diagnostic>* diagnostics);
AnalysisSet LoadValidAnalysisFiles(const std::vector<v1::AnalysisFile>& files,
                                   std::vector<v1::Diagnostic>* diagnostics);

}  // namespace pantherd::engine

#endif  // PANTHERD_ENGINE_ANALYSIS_SPEC_H_
