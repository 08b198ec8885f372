#include "engine/internal/rule_test_spec.h"

#include <string>
#include <utility>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "engine/yaml_json.h"

namespace pantherd::engine::internal {
namespace {

// RULE_SCHEMA's test keys plus those the JSON schema's Test accepts
// (Resource, ResourceType, RuleOutputs: accepted and ignored).
constexpr absl::string_view kTestKeys[] = {
    "Name", "ExpectedResult", "Log", "Mocks", "LogType", "Resource", "ResourceType", "RuleOutputs"};

constexpr absl::string_view kMockKeys[] = {"objectName", "returnValue"};

// Reads `node`, one entry of a test's Mocks reported as `prefix`; nullopt
// after reporting any problem.
std::optional<TestMock> ReadMock(const YAML::Node& node, const std::string& prefix, int line,
                                 Reporter& r) {
  absl::StatusOr<Fields> fields = MappingFields(node, prefix, line);
  if (!fields.ok()) {
    r.Error(fields.status(), prefix, line);
    return std::nullopt;
  }
  const std::string dot = absl::StrCat(prefix, ".");
  const int errors = r.errors();
  CheckKeys(*fields, kMockKeys, "a mock", r, dot);
  TestMock mock;
  if (auto v = Get<std::string>(*fields, "objectName", true, ReadYamlString, r, dot)) {
    mock.object_name = *v;
  }
  if (const YamlMapEntry* e = fields->Find("returnValue")) {
    absl::StatusOr<YamlScalar> s = e->value.IsDefined() && e->value.IsScalar()
                                       ? ResolveYamlScalar(e->value)
                                       : absl::StatusOr<YamlScalar>(YamlScalar{});
    const std::string field = absl::StrCat(dot, "returnValue");
    if (!s.ok()) {
      r.Error(s.status(), field, e->line);
    } else if (s->type == YamlScalarType::kString) {
      mock.return_value_json = JsonQuote(s->text);
    } else if (s->type == YamlScalarType::kBool) {
      mock.return_value_json = s->text;
    } else {
      r.Error(e->line, field,
              absl::StrCat("returnValue must be a string or a boolean (quote other values and "
                           "parse them in the rule), found ",
                           e->value.IsDefined() && e->value.IsScalar()
                               ? std::string(s->type == YamlScalarType::kNull ? "null" : s->raw)
                               : std::string(e->value.IsSequence() ? "a list" : "a mapping")));
    }
  } else {
    r.Error(fields->root_line(), absl::StrCat(dot, "returnValue"),
            "missing required key returnValue");
  }
  if (r.errors() != errors) return std::nullopt;
  return mock;
}

}  // namespace

std::optional<RuleTest> ReadTest(const YAML::Node& node, size_t index, int line, Reporter& r) {
  const std::string prefix = absl::StrCat("Tests[", index, "]");
  absl::StatusOr<Fields> fields = MappingFields(node, prefix, line);
  if (!fields.ok()) {
    r.Error(fields.status(), prefix, line);
    return std::nullopt;
  }
  const std::string dot = absl::StrCat(prefix, ".");
  const int errors = r.errors();
  CheckKeys(*fields, kTestKeys, "a test", r, dot);
  RuleTest test;
  test.line = fields->root_line();
  if (auto v = Get<std::string>(*fields, "Name", true, ReadYamlString, r, dot)) test.name = *v;
  if (auto v = Get<bool>(*fields, "ExpectedResult", true, ReadYamlBool, r, dot)) {
    test.expected_result = *v;
  }
  Get<std::string>(*fields, "LogType", false, ReadYamlString, r, dot);
  if (const YamlMapEntry* e = fields->Find("Log")) {
    YamlJsonOptions options;
    options.non_finite = NonFiniteFloats::kPythonTokens;
    absl::StatusOr<std::string> json = YamlToJson(e->value, options);
    if (json.ok()) {
      test.log_json = *std::move(json);
    } else {
      r.Error(json.status(), absl::StrCat(dot, "Log"), e->line);
    }
  } else {
    r.Error(test.line, absl::StrCat(dot, "Log"),
            "missing required key Log (the event the rule is tested with)");
  }
  if (const YamlMapEntry* e = fields->Find("Mocks")) {
    const std::string field = absl::StrCat(dot, "Mocks");
    if (!e->value.IsDefined() || !e->value.IsSequence()) {
      r.Error(e->line, field, "Mocks must be a list of {objectName, returnValue}");
    } else {
      size_t i = 0;
      for (const YAML::Node& m : e->value) {
        int mline = YamlLine(m) > 0 ? YamlLine(m) : e->line;
        if (auto mock = ReadMock(m, absl::StrCat(field, "[", i, "]"), mline, r)) {
          test.mocks.push_back(*std::move(mock));
        }
        ++i;
      }
    }
  }
  if (r.errors() != errors) return std::nullopt;
  return test;
}

}  // namespace pantherd::engine::internal
