// File: tests/fuzz/analysis_spec_fuzzer.cc
//
// Fuzz target: the rule spec parser. The input is the text of one uploaded
// YAML spec, read three ways:
//   - engine/analysis_spec.h's LoadAnalysisFiles, as an upload of that spec
//     plus a Python file it may name (rules/fuzz.py) and a data model file;
//   - yaml-cpp's YAML::Load followed by engine/yaml_json.h's YamlToJson (both
//     float modes) and YamlMappingEntries on the root;
//   - the typed readers (ReadYamlBool/Int/String/StringList) on the root.
// None may throw or crash, whatever the YAML (alias bombs, merge-key bombs,
// recursive aliases, deep nesting): hostile input must end in an
// InvalidArgument with a message, within the limits libFuzzer sets
// (-timeout, -rss_limit_mb). Properties checked:
//   - LoadAnalysisFiles fails exactly when it reports an error diagnostic,
//     and every failure is InvalidArgument;
//   - YamlToJson's output (kError mode) is valid JSON (simdjson parses it)
//     and never longer than the limit it was given.

#include <yaml-cpp/yaml.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/analysis_spec.h"
#include "engine/yaml_json.h"
#include "pantherd/v1/common.pb.h"
#include "pantherd/v1/rules.pb.h"
#include "simdjson.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

namespace engine = ::pantherd::engine;
namespace v1 = ::pantherd::v1;

// Small enough that an alias bomb is refused quickly under the sanitizers
// (the defaults, 64 MiB and 2^22 values, are tested in yaml_json_test).
constexpr size_t kMaxJsonBytes = size_t{1} << 20;
constexpr size_t kMaxJsonNodes = size_t{1} << 16;

v1::AnalysisFile File(const std::string& path, const std::string& content) {
  v1::AnalysisFile f;
  f.set_path(path);
  f.set_content(content);
  return f;
}

void CheckLoad(const std::string& spec) {
  std::vector<v1::AnalysisFile> files = {
      File("rules/fuzz.yml", spec),
      File("rules/fuzz.py", "def rule(event):\n    return True\n"),
      File("rules/model.py", "def get_user(event):\n    return None\n"),
  };
  std::vector<v1::Diagnostic> diagnostics;
  absl::StatusOr<engine::AnalysisSet> set = engine::LoadAnalysisFiles(files, &diagnostics);
  bool any_error = false;
  for (const v1::Diagnostic& d : diagnostics) {
    FUZZ_CHECK(!d.message().empty(), "a diagnostic without a message (file %s line %d)",
               d.file().c_str(), d.line());
    if (!engine::IsWarning(d)) any_error = true;
  }
  FUZZ_CHECK(set.ok() != any_error, "status %s but %zu diagnostics (error: %d)",
             set.status().ToString().substr(0, 300).c_str(), diagnostics.size(), any_error);
  if (!set.ok()) {
    FUZZ_CHECK(absl::IsInvalidArgument(set.status()), "unexpected error %s",
               set.status().ToString().substr(0, 300).c_str());
  }
}

void CheckJson(const YAML::Node& node, engine::NonFiniteFloats mode) {
  engine::YamlJsonOptions options;
  options.non_finite = mode;
  options.max_output_bytes = kMaxJsonBytes;
  options.max_nodes = kMaxJsonNodes;
  absl::StatusOr<std::string> json = engine::YamlToJson(node, options);
  if (!json.ok()) {
    FUZZ_CHECK(absl::IsInvalidArgument(json.status()), "unexpected error %s",
               json.status().ToString().substr(0, 300).c_str());
    FUZZ_CHECK(!json.status().message().empty(), "an error without a message");
    return;
  }
  FUZZ_CHECK(json->size() <= kMaxJsonBytes, "%zu bytes of JSON, over the limit", json->size());
  if (mode == engine::NonFiniteFloats::kError) {
    // simdjson refuses integers beyond 64 bits (NUMBER_ERROR), which
    // YamlToJson writes in full, as json.dumps does.
    simdjson::dom::parser parser;
    simdjson::dom::element root;
    const simdjson::error_code error = parser.parse(*json).get(root);
    FUZZ_CHECK(error == simdjson::SUCCESS || error == simdjson::NUMBER_ERROR, "not JSON (%s): %s",
               simdjson::error_message(error), FuzzClip(*json).c_str());
  }
}

void CheckYaml(const std::string& text) {
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception&) {
    return;  // yaml-cpp's own refusal (syntax, or its nesting limit)
  }
  CheckJson(root, engine::NonFiniteFloats::kError);
  CheckJson(root, engine::NonFiniteFloats::kPythonTokens);
  if (root.IsMap()) {
    absl::StatusOr<std::vector<engine::YamlMapEntry>> entries = engine::YamlMappingEntries(root);
    if (entries.ok()) {
      for (const engine::YamlMapEntry& e : *entries) {
        (void)engine::ReadYamlBool(e.value, e.key, e.line);
        (void)engine::ReadYamlInt(e.value, e.key, e.line);
        (void)engine::ReadYamlString(e.value, e.key, e.line);
        (void)engine::ReadYamlStringList(e.value, e.key, e.line);
      }
    }
  } else {
    (void)engine::ResolveYamlScalar(root);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  CheckLoad(text);
  CheckYaml(text);
  return 0;
}
