// File: engine/analysis_spec.cc
//
// See analysis_spec.h. Schemas follow panther_analysis_tool's schemas.py
// (RULE_SCHEMA, GLOBAL_SCHEMA, DATA_MODEL_SCHEMA, MOCK_SCHEMA) and its
// analysis_config_schema.json; docs/rule-contract.md lists them.

#include "engine/analysis_spec.h"

#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "engine/internal/rule_test_spec.h"
#include "engine/internal/spec_fields.h"
#include "engine/yaml_json.h"

namespace pantherd::engine {
namespace {

using v1::AnalysisFile;
using v1::Diagnostic;

// Reading fields and reporting problems (engine/internal/spec_fields.h), and
// a rule's tests (engine/internal/rule_test_spec.h).
using internal::CheckId;
using internal::CheckKeys;
using internal::CheckName;
using internal::Fields;
using internal::Get;
using internal::GetSet;
using internal::MappingFields;
using internal::ReadTest;
using internal::Reporter;
using internal::ToInt32;

// ---------------------------------------------------------------------------
// Schemas: the keys each AnalysisType accepts (panther_analysis_tool
// schemas.py at v1.7.0).

constexpr absl::string_view kRuleKeys[] = {
    // Required.
    "AnalysisType", "Enabled", "Filename", "Detection", "RuleID", "LogTypes", "ScheduledQueries",
    "Severity",
    // Optional.
    "Description", "DedupPeriodMinutes", "InlineFilters", "DisplayName", "OnlyUseBaseRiskScore",
    "OutputIds", "CreatedBy", "Reference", "Runbook", "Status", "SummaryAttributes", "Threshold",
    "Tags", "Reports", "Tests", "DynamicSeverities", "AlertTitle", "AlertContext", "GroupBy",
    "CreateAlert", "BaseVersion"};

constexpr absl::string_view kGlobalKeys[] = {"AnalysisType", "Filename", "GlobalID",
                                             "Description",  "Tags",     "BaseVersion"};

constexpr absl::string_view kDataModelKeys[] = {"AnalysisType", "DataModelID", "Enabled",
                                                "LogTypes",     "Mappings",    "DisplayName",
                                                "Filename",     "BaseVersion"};

constexpr absl::string_view kMappingKeys[] = {"Name", "Path", "Method"};

// Panther content types pantherd does not run, with the key holding their ID
// (panther_analysis_tool core/definitions.py analysis_id_field_name).
struct SkippedType {
  absl::string_view type;
  absl::string_view id_field;
};
constexpr SkippedType kSkippedTypes[] = {{"policy", "PolicyID"},
                                         {"correlation_rule", "RuleID"},
                                         {"saved_query", "QueryName"},
                                         {"scheduled_query", "QueryName"},
                                         {"pack", "PackID"},
                                         {"lookup_table", "LookupName"},
                                         {"simple_detection", "RuleID"},
                                         {"scheduled_prompt", "PromptName"}};

constexpr absl::string_view kSeverities[] = {"Info", "Low", "Medium", "High", "Critical"};

constexpr int kDefaultDedupPeriodMinutes = 60;
constexpr int kDefaultThreshold = 1;

// ---------------------------------------------------------------------------
// Paths.

// Normalizes a '/'-separated relative path: drops "." and empty segments and
// applies "..". nullopt if it is absolute or leaves its root.
std::optional<std::string> NormalizePath(absl::string_view path) {
  if (absl::StartsWith(path, "/")) return std::nullopt;
  std::vector<absl::string_view> out;
  for (absl::string_view seg : absl::StrSplit(path, '/')) {
    if (seg.empty() || seg == ".") continue;
    if (seg == "..") {
      if (out.empty()) return std::nullopt;
      out.pop_back();
      continue;
    }
    out.push_back(seg);
  }
  if (out.empty()) return std::nullopt;
  return absl::StrJoin(out, "/");
}

absl::string_view DirName(absl::string_view path) {
  size_t slash = path.rfind('/');
  return slash == absl::string_view::npos ? absl::string_view() : path.substr(0, slash);
}

// True if a segment of the normalized `path` is hidden or a directory is
// __pycache__ (panther_analysis_tool's load_analysis_specs_ex skips them).
bool IsHiddenPath(absl::string_view path) {
  std::vector<absl::string_view> segs = absl::StrSplit(path, '/');
  for (size_t i = 0; i < segs.size(); ++i) {
    if (absl::StartsWith(segs[i], ".")) return true;
    if (i + 1 < segs.size() && segs[i] == "__pycache__") return true;
  }
  return false;
}

bool HasSpecExtension(absl::string_view path) {
  return absl::EndsWith(path, ".yml") || absl::EndsWith(path, ".yaml");
}

// ---------------------------------------------------------------------------
// Reading spec fields.

// An uploaded file.
struct UploadFile {
  const AnalysisFile* file;
  std::string normalized;
};

// Shared state of one LoadAnalysisFiles call.
struct Context {
  absl::flat_hash_map<std::string, const UploadFile*> by_path;  // normalized path
  struct IdOwner {
    std::string file;
    std::string type;
  };
  absl::flat_hash_map<std::string, IdOwner> ids;
  std::map<std::string, v1::SkippedContent> skipped;
  AnalysisSet set;
};

// Records the ID of a spec; reports it if another spec already has it.
void RegisterId(Context& ctx, const std::string& id, absl::string_view type,
                absl::string_view id_field, int line, Reporter& r) {
  auto [it, inserted] = ctx.ids.emplace(id, Context::IdOwner{r.file(), std::string(type)});
  if (inserted) return;
  r.Error(line, id_field,
          absl::StrCat("Conflicting AnalysisID: [", id, "] is also the ID of ", it->second.file,
                       " (", it->second.type, ")"));
}

// Resolves `Filename` of the spec at `spec` and finds the file in the upload.
const UploadFile* ResolveFilename(const Context& ctx, const UploadFile& spec,
                                  const std::string& filename, int line, Reporter& r) {
  if (filename.empty()) {
    r.Error(line, "Filename", "Filename is empty");
    return nullptr;
  }
  std::optional<std::string> path;
  if (!absl::StartsWith(filename, "/")) {
    absl::string_view dir = DirName(spec.normalized);
    path = NormalizePath(dir.empty() ? filename : absl::StrCat(dir, "/", filename));
  }
  if (!path) {
    r.Error(line, "Filename",
            absl::StrCat("Filename ", JsonQuote(filename),
                         " must be a path relative to the spec's directory, inside the upload"));
    return nullptr;
  }
  auto it = ctx.by_path.find(*path);
  if (it == ctx.by_path.end()) {
    r.Error(line, "Filename",
            absl::StrCat("Filename ", JsonQuote(filename), " names ", *path,
                         ", which is not among the uploaded files"));
    return nullptr;
  }
  return it->second;
}

AnalysisFile* AddFile(v1::Rule& rule, const AnalysisFile& f) {
  AnalysisFile* out = rule.add_files();
  *out = f;
  return out;
}

bool IsPythonIdentifier(absl::string_view s) {
  if (s.empty() || absl::ascii_isdigit(static_cast<unsigned char>(s[0]))) return false;
  for (char c : s) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '_') return false;
  }
  return true;
}

// ---------------------------------------------------------------------------
// AnalysisType: rule.

std::optional<v1::Severity> ParseSeverity(const std::string& s, int line, Reporter& r) {
  static constexpr v1::Severity kValues[] = {v1::SEVERITY_INFO, v1::SEVERITY_LOW,
                                             v1::SEVERITY_MEDIUM, v1::SEVERITY_HIGH,
                                             v1::SEVERITY_CRITICAL};
  for (size_t i = 0; i < std::size(kSeverities); ++i) {
    if (s == kSeverities[i]) return kValues[i];
    if (s == absl::AsciiStrToUpper(kSeverities[i])) {
      r.Warning(line, "Severity",
                absl::StrCat("Severity ", s,
                             " is upper-case; Panther's JSON schema accepts it "
                             "but panther_analysis_tool's RULE_SCHEMA accepts only ",
                             absl::StrJoin(kSeverities, ", ")));
      return kValues[i];
    }
  }
  r.Error(line, "Severity",
          absl::StrCat("Severity ", JsonQuote(s), " is not one of ",
                       absl::StrJoin(kSeverities, ", "), " (or the same in upper case)"));
  return std::nullopt;
}

void ReadReports(const YamlMapEntry& entry, v1::Rule& rule, Reporter& r) {
  absl::StatusOr<Fields> fields = MappingFields(entry.value, "Reports", entry.line);
  if (!fields.ok()) {
    r.Error(fields.status(), "Reports", entry.line);
    return;
  }
  for (const YamlMapEntry& e : fields->entries()) {
    const std::string field = absl::StrCat("Reports.", e.key);
    if (!e.key_is_string) {
      r.Error(e.line, field, absl::StrCat("Reports key ", e.key, " must be a string"));
      continue;
    }
    if (!e.value.IsDefined() || !e.value.IsSequence()) {
      r.Error(e.line, field, absl::StrCat(field, " must be a list (e.g. [TA0006:T1621])"));
      continue;
    }
    v1::StringList list;
    size_t i = 0;
    for (const YAML::Node& item : e.value) {
      const std::string item_field = absl::StrCat(field, "[", i++, "]");
      const int line = YamlLine(item) > 0 && !item.IsNull() ? YamlLine(item) : e.line;
      if (!item.IsScalar()) {
        r.Error(line, item_field,
                absl::StrCat(item_field, " must be a string or number, found ",
                             item.IsNull()  ? "null"
                             : item.IsMap() ? "a mapping"
                                            : "a list"));
        continue;
      }
      absl::StatusOr<YamlScalar> s = ResolveYamlScalar(item);
      if (!s.ok()) {
        r.Error(s.status(), item_field, line);
      } else if (s->type == YamlScalarType::kString) {
        list.add_values(s->text);
      } else if (s->type == YamlScalarType::kInt || s->type == YamlScalarType::kFloat) {
        list.add_values(s->raw);  // As written: "3.10" stays "3.10".
      } else {
        r.Error(line, item_field,
                absl::StrCat(item_field, " must be a string or number, found ", s->text));
      }
    }
    (*rule.mutable_reports())[e.key] = std::move(list);
  }
}

void LoadRule(Context& ctx, const UploadFile& spec, const Fields& fields, bool scheduled,
              Reporter& r) {
  const int errors = r.errors();
  CheckKeys(fields, kRuleKeys, scheduled ? "a scheduled rule" : "a rule", r);
  RuleSpec out;
  v1::Rule& rule = out.rule;
  rule.set_type(v1::ANALYSIS_TYPE_RULE);
  out.spec_path = spec.file->path();
  out.scheduled = scheduled;

  if (auto id = Get<std::string>(fields, "RuleID", true, ReadYamlString, r)) {
    const int line = fields.Find("RuleID")->line;
    CheckId(*id, "RuleID", line, r);
    RegisterId(ctx, *id, scheduled ? "scheduled_rule" : "rule", "RuleID", line, r);
    rule.set_id(*id);
  }
  if (auto v = Get<bool>(fields, "Enabled", true, ReadYamlBool, r)) rule.set_enabled(*v);

  // Filename xor Detection (a Simple Detection without Filename is skipped
  // before this point).
  const YamlMapEntry* filename = fields.Find("Filename");
  const YamlMapEntry* detection = fields.Find("Detection");
  if (filename != nullptr && detection != nullptr) {
    r.Error(detection->line, "Detection",
            "a rule has either Filename (Python) or Detection (YAML), not both");
  } else if (filename == nullptr) {
    r.Error(fields.root_line(), "Filename", "missing required key Filename");
  }
  const UploadFile* py = nullptr;
  if (filename != nullptr) {
    if (auto name = Get<std::string>(fields, "Filename", false, ReadYamlString, r)) {
      py = ResolveFilename(ctx, spec, *name, filename->line, r);
      if (py != nullptr) {
        out.python_path = py->file->path();
        out.python_source = py->file->content();
      }
    }
  }

  // LogTypes xor ScheduledQueries.
  if (scheduled) {
    const YamlMapEntry* log_types = fields.Find("LogTypes");
    const YamlMapEntry* queries = fields.Find("ScheduledQueries");
    if (log_types != nullptr && queries != nullptr) {
      r.Error(log_types->line, "LogTypes",
              "a scheduled rule has either ScheduledQueries or LogTypes, not both");
    } else if (log_types != nullptr) {
      GetSet(fields, "LogTypes", true, r);  // Checked; a scheduled rule sees no live events.
    } else if (auto v = GetSet(fields, "ScheduledQueries", true, r)) {
      out.scheduled_queries = *std::move(v);
    }
  } else if (const YamlMapEntry* sq = fields.Find("ScheduledQueries")) {
    r.Error(sq->line, "ScheduledQueries",
            "ScheduledQueries makes this a scheduled rule, which pantherd does not run; use "
            "LogTypes, or AnalysisType: scheduled_rule to have it skipped");
  } else if (auto v = GetSet(fields, "LogTypes", true, r)) {
    if (v->empty()) {
      r.Warning(fields.Find("LogTypes")->line, "LogTypes",
                "LogTypes is empty, so the rule sees no events");
    }
    for (const std::string& t : *v) rule.add_log_types(t);
  }

  if (auto v = Get<std::string>(fields, "Severity", true, ReadYamlString, r)) {
    if (auto sev = ParseSeverity(*v, fields.Find("Severity")->line, r)) rule.set_severity(*sev);
  }
  if (auto v = Get<std::string>(fields, "DisplayName", false, ReadYamlString, r)) {
    CheckName(*v, "DisplayName", fields.Find("DisplayName")->line, r);
    rule.set_display_name(*v);
  }
  if (auto v = Get<std::string>(fields, "Description", false, ReadYamlString, r)) {
    rule.set_description(*v);
  }
  if (auto v = Get<std::string>(fields, "Reference", false, ReadYamlString, r)) {
    rule.set_reference(*v);
  }
  if (auto v = Get<std::string>(fields, "Runbook", false, ReadYamlString, r)) {
    rule.set_runbook(*v);
  }
  // Accepted and type-checked; pantherd does not use them.
  Get<std::string>(fields, "Status", false, ReadYamlString, r);
  Get<std::string>(fields, "CreatedBy", false, ReadYamlString, r);
  Get<std::string>(fields, "AlertTitle", false, ReadYamlString, r);
  Get<bool>(fields, "OnlyUseBaseRiskScore", false, ReadYamlBool, r);
  Get<int64_t>(fields, "BaseVersion", false, ReadYamlInt, r);

  rule.set_dedup_period_minutes(kDefaultDedupPeriodMinutes);
  if (auto v = Get<int64_t>(fields, "DedupPeriodMinutes", false, ReadYamlInt, r)) {
    const int line = fields.Find("DedupPeriodMinutes")->line;
    if (auto m = ToInt32(*v, "DedupPeriodMinutes", line, r)) {
      rule.set_dedup_period_minutes(*m);
      if (*m == 0) {
        r.Warning(line, "DedupPeriodMinutes",
                  "DedupPeriodMinutes is 0, which Panther's backend ignores; to disable dedup, "
                  "make dedup() return p_row_id");
      } else if (*m < 5) {
        r.Warning(line, "DedupPeriodMinutes",
                  absl::StrCat("DedupPeriodMinutes ", *m,
                               " is below Panther's minimum of 5, which Panther uses instead"));
      }
    }
  }
  rule.set_threshold(kDefaultThreshold);
  if (auto v = Get<int64_t>(fields, "Threshold", false, ReadYamlInt, r)) {
    if (auto t = ToInt32(*v, "Threshold", fields.Find("Threshold")->line, r)) {
      rule.set_threshold(*t);
    }
  }
  rule.set_create_alert(true);
  if (auto v = Get<bool>(fields, "CreateAlert", false, ReadYamlBool, r)) {
    rule.set_create_alert(*v);
  }
  if (auto v = GetSet(fields, "Tags", false, r)) {
    for (const std::string& t : *v) rule.add_tags(t);
  }
  if (auto v = GetSet(fields, "OutputIds", false, r)) {
    for (const std::string& t : *v) rule.add_output_ids(t);
  }
  if (auto v = GetSet(fields, "SummaryAttributes", false, r)) {
    for (const std::string& t : *v) rule.add_summary_attributes(t);
  }
  if (const YamlMapEntry* e = fields.Find("Reports")) ReadReports(*e, rule, r);
  if (const YamlMapEntry* e = fields.Find("InlineFilters")) {
    r.Warning(e->line, "InlineFilters",
              "InlineFilters are not applied by pantherd: rule() sees every event of the "
              "rule's LogTypes (panther_analysis_tool also skips them in tests)");
  }
  // DynamicSeverities, AlertContext, GroupBy: any value (Simple Detection
  // features), accepted and ignored.

  if (const YamlMapEntry* e = fields.Find("Tests")) {
    if (!e->value.IsDefined() || !e->value.IsSequence()) {
      r.Error(e->line, "Tests", "Tests must be a list of tests");
    } else {
      size_t i = 0;
      for (const YAML::Node& t : e->value) {
        int line = YamlLine(t) > 0 ? YamlLine(t) : e->line;
        if (auto test = ReadTest(t, i, line, r)) out.tests.push_back(*std::move(test));
        ++i;
      }
    }
  }
  rule.set_test_count(static_cast<int32_t>(out.tests.size()));

  if (r.errors() != errors || py == nullptr) return;
  AddFile(rule, *spec.file);
  AddFile(rule, *py->file);
  ctx.set.rules.push_back(std::move(out));
}

// ---------------------------------------------------------------------------
// AnalysisType: global.

void LoadGlobal(Context& ctx, const UploadFile& spec, const Fields& fields, Reporter& r) {
  const int errors = r.errors();
  CheckKeys(fields, kGlobalKeys, "a global", r);
  GlobalSpec out;
  out.spec_path = spec.file->path();
  out.rule.set_type(v1::ANALYSIS_TYPE_GLOBAL);
  out.rule.set_enabled(true);
  if (auto id = Get<std::string>(fields, "GlobalID", true, ReadYamlString, r)) {
    const int line = fields.Find("GlobalID")->line;
    CheckId(*id, "GlobalID", line, r);
    RegisterId(ctx, *id, "global", "GlobalID", line, r);
    if (!id->empty() && !IsPythonIdentifier(*id)) {
      r.Warning(line, "GlobalID",
                absl::StrCat("GlobalID ", JsonQuote(*id),
                             " is not a Python identifier, so rules cannot import it by name"));
    }
    out.id = *id;
    out.rule.set_id(*id);
  }
  const UploadFile* py = nullptr;
  if (auto name = Get<std::string>(fields, "Filename", true, ReadYamlString, r)) {
    py = ResolveFilename(ctx, spec, *name, fields.Find("Filename")->line, r);
    if (py != nullptr) {
      out.python_path = py->file->path();
      out.python_source = py->file->content();
    }
  }
  if (auto v = Get<std::string>(fields, "Description", false, ReadYamlString, r)) {
    out.rule.set_description(*v);
  }
  if (auto v = GetSet(fields, "Tags", false, r)) {
    for (const std::string& t : *v) out.rule.add_tags(t);
  }
  Get<int64_t>(fields, "BaseVersion", false, ReadYamlInt, r);
  if (r.errors() != errors || py == nullptr) {
    if (!out.id.empty()) ctx.set.invalid_globals.emplace(out.id, spec.file->path());
    return;
  }
  AddFile(out.rule, *spec.file);
  AddFile(out.rule, *py->file);
  ctx.set.globals.push_back(std::move(out));
}

// ---------------------------------------------------------------------------
// AnalysisType: datamodel.

std::optional<DataModelMapping> ReadMapping(const YAML::Node& node, size_t index, int line,
                                            Reporter& r) {
  const std::string prefix = absl::StrCat("Mappings[", index, "]");
  absl::StatusOr<Fields> fields = MappingFields(node, prefix, line);
  if (!fields.ok()) {
    r.Error(fields.status(), prefix, line);
    return std::nullopt;
  }
  const std::string dot = absl::StrCat(prefix, ".");
  const int errors = r.errors();
  CheckKeys(*fields, kMappingKeys, "a data model mapping", r, dot);
  DataModelMapping m;
  m.line = fields->root_line();
  if (auto v = Get<std::string>(*fields, "Name", true, ReadYamlString, r, dot)) m.name = *v;
  const bool has_path = fields->Find("Path") != nullptr;
  const bool has_method = fields->Find("Method") != nullptr;
  if (has_path == has_method) {
    r.Error(m.line, prefix,
            absl::StrCat("a mapping needs exactly one of Path and Method, found ",
                         has_path ? "both" : "neither"));
  } else if (has_path) {
    if (auto v = Get<std::string>(*fields, "Path", true, ReadYamlString, r, dot)) m.path = *v;
  } else {
    if (auto v = Get<std::string>(*fields, "Method", true, ReadYamlString, r, dot)) {
      m.method = *v;
    }
  }
  if (r.errors() != errors) return std::nullopt;
  return m;
}

void LoadDataModel(Context& ctx, const UploadFile& spec, const Fields& fields, Reporter& r) {
  const int errors = r.errors();
  CheckKeys(fields, kDataModelKeys, "a data model", r);
  DataModelSpec out;
  out.spec_path = spec.file->path();
  v1::Rule& rule = out.rule;
  rule.set_type(v1::ANALYSIS_TYPE_DATA_MODEL);
  if (auto id = Get<std::string>(fields, "DataModelID", true, ReadYamlString, r)) {
    const int line = fields.Find("DataModelID")->line;
    CheckId(*id, "DataModelID", line, r);
    RegisterId(ctx, *id, "datamodel", "DataModelID", line, r);
    rule.set_id(*id);
  }
  if (auto v = Get<bool>(fields, "Enabled", true, ReadYamlBool, r)) rule.set_enabled(*v);
  if (auto v = GetSet(fields, "LogTypes", true, r)) {
    for (const std::string& t : *v) rule.add_log_types(t);
  }
  if (auto v = Get<std::string>(fields, "DisplayName", false, ReadYamlString, r)) {
    CheckName(*v, "DisplayName", fields.Find("DisplayName")->line, r);
    rule.set_display_name(*v);
  }
  Get<int64_t>(fields, "BaseVersion", false, ReadYamlInt, r);

  const YamlMapEntry* mappings = fields.Find("Mappings");
  bool uses_method = false;
  int method_line = 0;
  if (mappings == nullptr) {
    r.Error(fields.root_line(), "Mappings", "missing required key Mappings");
  } else if (!mappings->value.IsDefined() || !mappings->value.IsSequence()) {
    r.Error(mappings->line, "Mappings", "Mappings must be a list of {Name, Path or Method}");
  } else {
    size_t i = 0;
    for (const YAML::Node& m : mappings->value) {
      int line = YamlLine(m) > 0 ? YamlLine(m) : mappings->line;
      if (auto mapping = ReadMapping(m, i, line, r)) {
        if (!mapping->method.empty() && !uses_method) {
          uses_method = true;
          method_line = mapping->line;
        }
        out.mappings.push_back(*std::move(mapping));
      }
      ++i;
    }
  }

  const UploadFile* py = nullptr;
  if (const YamlMapEntry* e = fields.Find("Filename")) {
    if (auto name = Get<std::string>(fields, "Filename", false, ReadYamlString, r)) {
      py = ResolveFilename(ctx, spec, *name, e->line, r);
      if (py != nullptr) {
        out.python_path = py->file->path();
        out.python_source = py->file->content();
      }
    }
  } else if (uses_method) {
    r.Error(fields.root_line(), "Filename",
            absl::StrCat("Filename is required because a mapping uses Method (line ", method_line,
                         ")"));
  }

  if (r.errors() != errors) return;
  AddFile(rule, *spec.file);
  if (py != nullptr) AddFile(rule, *py->file);
  ctx.set.data_models.push_back(std::move(out));
}

// At most one enabled data model per log type (panther_analysis_tool
// main.py setup_data_models).
void CheckDataModelConflicts(Context& ctx, std::vector<Diagnostic>* diagnostics, int* error_count) {
  struct Owner {
    std::string id;
    std::string file;
  };
  absl::flat_hash_map<std::string, Owner> owners;
  std::vector<DataModelSpec> kept;
  for (DataModelSpec& dm : ctx.set.data_models) {
    if (!dm.rule.enabled()) {
      kept.push_back(std::move(dm));
      continue;
    }
    Reporter r(dm.spec_path, diagnostics);
    for (const std::string& t : dm.rule.log_types()) {
      auto [it, inserted] = owners.emplace(t, Owner{dm.rule.id(), dm.spec_path});
      if (inserted) continue;
      r.Error(0, "LogTypes",
              absl::StrCat("Conflicting Enabled LogType [", t, "] in Data Model [", dm.rule.id(),
                           "]: enabled Data Model [", it->second.id, "] in ", it->second.file,
                           " already covers it"));
    }
    *error_count += r.errors();
    // The first model of a log type is kept (LoadValidAnalysisFiles).
    if (r.errors() == 0) kept.push_back(std::move(dm));
  }
  ctx.set.data_models = std::move(kept);
}

// ---------------------------------------------------------------------------
// One spec file.

int FirstInvalidUtf8Line(absl::string_view content) {
  int line = 1;
  for (absl::string_view l : absl::StrSplit(content, '\n')) {
    if (!IsValidUtf8(l)) return line;
    ++line;
  }
  return 0;
}

// How far aliases may expand one spec beyond its own size: values, and
// bytes of scalar text (engine/yaml_json.h's CheckYamlExpansion).
constexpr size_t kMaxSpecExpansionNodes = size_t{1} << 18;
constexpr size_t kMaxSpecExpansionBytes = size_t{16} << 20;
// Levels of a spec above a test's Log (root, Tests, the test), whose own
// nesting YamlToJson bounds.
constexpr int kSpecNestingAboveLog = 3;

// Counts the documents of a YAML stream (LoadSpec); only their starts matter.
class DocumentCounter : public YAML::EventHandler {
 public:
  // The 1-based line of the second document, 0 before there is one.
  int second_line() const { return second_line_; }

  void OnDocumentStart(const YAML::Mark& mark) override {
    if (++documents_ == 2) second_line_ = mark.line + 1;
  }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
  void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
  void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t,
                const std::string&) override {}
  void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                       YAML::EmitterStyle::value) override {}
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                  YAML::EmitterStyle::value) override {}
  void OnMapEnd() override {}

 private:
  int documents_ = 0;
  int second_line_ = 0;
};

void LoadSpec(Context& ctx, const UploadFile& spec, Reporter& r) {
  const std::string& content = spec.file->content();
  if (!IsValidUtf8(content)) {
    r.Error(FirstInvalidUtf8Line(content), "", "the file is not valid UTF-8");
    return;
  }
  // Not YAML::LoadAll: on some malformed input (",.+?") yaml-cpp 0.7's
  // parser yields empty documents forever, and LoadAll collects them until
  // memory runs out. The documents are counted first, up to the second.
  YAML::Node root;
  try {
    std::istringstream stream(content);
    YAML::Parser parser(stream);
    DocumentCounter counter;
    int documents = 0;
    while (documents < 2 && parser.HandleNextDocument(counter)) ++documents;
    if (documents == 0) return;
    if (documents > 1) {
      r.Error(counter.second_line(), "", "expected a single YAML document, found more than one");
      return;
    }
    root = YAML::Load(content);
  } catch (const YAML::Exception& e) {
    r.Error(e.mark.is_null() ? 0 : e.mark.line + 1, "", absl::StrCat("invalid YAML: ", e.msg));
    return;
  }
  if (!root.IsMap()) return;  // Not an analysis spec.
  // Everything below walks the document with its aliases expanded, a test's
  // Log once per test that names it: bound the expansion for the whole file
  // first, so that alias and merge-key bombs are refused at once. A spec
  // without aliases is always within these limits.
  {
    YamlExpansionLimits limits;
    limits.max_nodes = content.size() + kMaxSpecExpansionNodes;
    limits.max_scalar_bytes = content.size() + kMaxSpecExpansionBytes;
    limits.max_depth = YamlJsonOptions().max_depth + kSpecNestingAboveLog;
    if (absl::Status s = CheckYamlExpansion(root, limits); !s.ok()) {
      r.Error(s, "", 0);
      return;
    }
  }

  // A key written twice is legal YAML for PyYAML (the last value wins), but
  // almost always a mistake.
  {
    absl::flat_hash_map<std::string, int> first_line;
    for (auto it = root.begin(); it != root.end(); ++it) {
      if (!it->first.IsScalar()) continue;
      auto [pos, inserted] = first_line.emplace(it->first.Scalar(), YamlLine(it->first));
      if (!inserted) {
        r.Warning(YamlLine(it->first), it->first.Scalar(),
                  absl::StrCat("key ", it->first.Scalar(), " is also set at line ", pos->second,
                               "; the last value is used"));
      }
    }
  }

  absl::StatusOr<std::vector<YamlMapEntry>> entries = YamlMappingEntries(root);
  if (!entries.ok()) {
    r.Error(entries.status(), "", 0);
    return;
  }
  Fields fields(*std::move(entries), std::max(YamlLine(root), 1));
  const YamlMapEntry* type_entry = fields.Find("AnalysisType");
  if (type_entry == nullptr) return;  // Not an analysis spec.
  absl::StatusOr<std::string> type =
      ReadYamlString(type_entry->value, "AnalysisType", type_entry->line);
  if (!type.ok()) {
    r.Error(type.status(), "AnalysisType", type_entry->line);
    return;
  }

  auto skip = [&](absl::string_view skipped_type, absl::string_view id_field) {
    v1::SkippedContent& s = ctx.skipped[std::string(skipped_type)];
    s.set_analysis_type(std::string(skipped_type));
    s.set_count(s.count() + 1);
    s.add_files(spec.file->path());
    if (const YamlMapEntry* id = fields.Find(id_field)) {
      absl::StatusOr<YamlScalar> v = ResolveYamlScalar(id->value);
      if (v.ok() && v->type == YamlScalarType::kString) {
        RegisterId(ctx, v->text, skipped_type, id_field, id->line, r);
      }
    }
  };

  if (*type == "rule" || *type == "scheduled_rule") {
    const YamlMapEntry* base = fields.Find("BaseDetection");
    if (base != nullptr &&
        !(base->value.IsNull() || (base->value.IsScalar() && base->value.Scalar().empty()))) {
      skip("derived", "RuleID");  // panther_analysis_tool's DERIVED_SCHEMA.
      return;
    }
    if (fields.Find("Detection") != nullptr && fields.Find("Filename") == nullptr) {
      // A Simple Detection: pat tests it only after a Panther backend has
      // transpiled it to Python; without one it skips it, and so do we.
      skip("simple_detection", "RuleID");
      return;
    }
    LoadRule(ctx, spec, fields, *type == "scheduled_rule", r);
  } else if (*type == "global") {
    LoadGlobal(ctx, spec, fields, r);
  } else if (*type == "datamodel") {
    LoadDataModel(ctx, spec, fields, r);
  } else {
    for (const SkippedType& t : kSkippedTypes) {
      if (*type == t.type) {
        skip(t.type, t.id_field);
        return;
      }
    }
    std::vector<absl::string_view> known = {"rule", "scheduled_rule", "global", "datamodel"};
    for (const SkippedType& t : kSkippedTypes) known.push_back(t.type);
    r.Error(type_entry->line, "AnalysisType",
            absl::StrCat("unknown AnalysisType ", JsonQuote(*type), "; Panther's types are ",
                         absl::StrJoin(known, ", ")));
  }
}

// What LoadImpl found: the valid items, and the errors with their summary.
struct LoadOutcome {
  AnalysisSet set;
  int errors = 0;
  std::string summary;
};

LoadOutcome LoadImpl(const std::vector<const AnalysisFile*>& files,
                     std::vector<Diagnostic>* diagnostics) {
  std::vector<Diagnostic> diags;
  int errors = 0;

  // Index the upload by normalized path.
  std::vector<UploadFile> uploads;
  uploads.reserve(files.size());
  for (const AnalysisFile* f : files) {
    Reporter r(f->path(), &diags);
    std::optional<std::string> normalized = NormalizePath(f->path());
    if (!normalized) {
      r.Error(0, "", "the path must be relative to the uploaded folder and stay inside it");
      ++errors;
      continue;
    }
    uploads.push_back(UploadFile{f, *std::move(normalized)});
  }
  std::stable_sort(uploads.begin(), uploads.end(), [](const UploadFile& a, const UploadFile& b) {
    return a.normalized < b.normalized;
  });
  Context ctx;
  for (const UploadFile& u : uploads) {
    auto [it, inserted] = ctx.by_path.emplace(u.normalized, &u);
    if (!inserted) {
      Reporter r(u.file->path(), &diags);
      r.Error(0, "",
              absl::StrCat("the file is uploaded twice (also as ", it->second->file->path(), ")"));
      ++errors;
    }
  }

  for (const UploadFile& u : uploads) {
    if (!HasSpecExtension(u.normalized) || IsHiddenPath(u.normalized)) continue;
    if (ctx.by_path.at(u.normalized) != &u) continue;  // A duplicate, reported above.
    Reporter r(u.file->path(), &diags);
    LoadSpec(ctx, u, r);
    errors += r.errors();
  }
  CheckDataModelConflicts(ctx, &diags, &errors);
  for (const GlobalSpec& g : ctx.set.globals) ctx.set.invalid_globals.erase(g.id);
  for (auto& [type, s] : ctx.skipped) ctx.set.skipped.push_back(std::move(s));

  std::stable_sort(diags.begin(), diags.end(), [](const Diagnostic& a, const Diagnostic& b) {
    if (a.file() != b.file()) return a.file() < b.file();
    return a.line() < b.line();
  });
  const Diagnostic* first_error = nullptr;
  absl::flat_hash_set<std::string> error_files;
  for (const Diagnostic& d : diags) {
    if (IsWarning(d)) continue;
    if (first_error == nullptr) first_error = &d;
    error_files.insert(d.file());
  }
  std::string summary;
  if (first_error != nullptr) {
    summary = absl::StrCat(errors, errors == 1 ? " problem in " : " problems in ",
                           error_files.size(), error_files.size() == 1 ? " file" : " files",
                           " (first: ", first_error->file());
    if (first_error->line() > 0) absl::StrAppend(&summary, " line ", first_error->line());
    absl::StrAppend(&summary, ": ", first_error->message(), ")");
  }
  for (Diagnostic& d : diags) diagnostics->push_back(std::move(d));
  LoadOutcome outcome;
  outcome.set = std::move(ctx.set);
  outcome.errors = errors;
  outcome.summary = std::move(summary);
  return outcome;
}

absl::StatusOr<AnalysisSet> AllOrNothing(LoadOutcome outcome) {
  if (outcome.errors > 0) return absl::InvalidArgumentError(outcome.summary);
  return std::move(outcome.set);
}

template <typename Files>
std::vector<const AnalysisFile*> Pointers(const Files& files) {
  std::vector<const AnalysisFile*> ptrs;
  ptrs.reserve(files.size());
  for (const AnalysisFile& f : files) ptrs.push_back(&f);
  return ptrs;
}

}  // namespace

bool IsWarning(const v1::Diagnostic& diagnostic) {
  return absl::StartsWith(diagnostic.message(), kWarningPrefix);
}

bool IsAnalysisSpecPath(absl::string_view path) {
  std::optional<std::string> normalized = NormalizePath(path);
  return normalized && HasSpecExtension(*normalized) && !IsHiddenPath(*normalized);
}

absl::StatusOr<AnalysisSet> LoadAnalysisFiles(const std::vector<v1::AnalysisFile>& files,
                                              std::vector<v1::Diagnostic>* diagnostics) {
  return AllOrNothing(LoadImpl(Pointers(files), diagnostics));
}

absl::StatusOr<AnalysisSet> LoadAnalysisFiles(
    const google::protobuf::RepeatedPtrField<v1::AnalysisFile>& files,
    std::vector<v1::Diagnostic>* diagnostics) {
  return AllOrNothing(LoadImpl(Pointers(files), diagnostics));
}

AnalysisSet LoadValidAnalysisFiles(
    const google::protobuf::RepeatedPtrField<v1::AnalysisFile>& files,
    std::vector<v1::Diagnostic>* diagnostics) {
  return LoadImpl(Pointers(files), diagnostics).set;
}

AnalysisSet LoadValidAnalysisFiles(const std::vector<v1::AnalysisFile>& files,
                                   std::vector<v1::Diagnostic>* diagnostics) {
  return LoadImpl(Pointers(files), diagnostics).set;
}

}  // namespace pantherd::engine
