// File: engine/internal/spec_fields.h
//
// Reading the fields of an analysis spec (engine/analysis_spec.cc) and
// reporting what is wrong with them: the Reporter that collects one file's
// diagnostics, a spec's top-level keys (Fields), typed reads of a key with
// the yaml_json.h readers (Get), unknown-key checks with a "did you mean"
// hint (CheckKeys), and the rules every AnalysisType shares for names, ids
// and list fields without duplicates. Every reader of a spec part (rules,
// their tests, globals, data models) uses these, so that all report
// problems the same way: "<file>:<line>: <field>: <message>".
//
//   Reporter r(file.path(), &diagnostics);
//   if (auto id = Get<std::string>(fields, "RuleID", /*required=*/true, ReadYamlString, r)) ...
//
// Internal to pantherd_engine: include only from engine/analysis_spec*.cc and
// engine/internal/. Functions are thread-safe on distinct arguments; a
// Reporter is used by one thread.

#ifndef PANTHERD_ENGINE_INTERNAL_SPEC_FIELDS_H_
#define PANTHERD_ENGINE_INTERNAL_SPEC_FIELDS_H_

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "engine/yaml_json.h"
#include "pantherd/v1/common.pb.h"

namespace pantherd::engine::internal {

// Collects the diagnostics of one file into a caller's list, counting the
// errors (warnings do not count).
class Reporter {
 public:
  Reporter(std::string file, std::vector<v1::Diagnostic>* out)
      : file_(std::move(file)), out_(out) {}

  // An error about `field` at `line` (0: the file as a whole).
  void Error(int line, absl::string_view field, std::string message);
  // A warning: its message is prefixed with kWarningPrefix.
  void Warning(int line, absl::string_view field, absl::string_view message);
  // Reports a failed yaml_json.h call made for `field` at `line`, taking the
  // field and line the status names ("<field> at line <N>: ...", "line <N>:
  // ...") when it names them.
  void Error(const absl::Status& status, absl::string_view field, int line);

  // The errors reported so far.
  int errors() const { return errors_; }
  const std::string& file() const { return file_; }

 private:
  void Add(int line, absl::string_view field, std::string message);

  std::string file_;
  std::vector<v1::Diagnostic>* out_;
  int errors_ = 0;
};

// The top-level keys of one spec (or of one mapping inside it).
class Fields {
 public:
  Fields(std::vector<YamlMapEntry> entries, int root_line)
      : entries_(std::move(entries)), root_line_(root_line) {}

  // The entry of `key`; null when absent.
  const YamlMapEntry* Find(absl::string_view key) const {
    for (const YamlMapEntry& e : entries_) {
      if (e.key == key) return &e;
    }
    return nullptr;
  }
  const std::vector<YamlMapEntry>& entries() const { return entries_; }
  // The line a missing key is reported at: the spec's first key.
  int root_line() const { return root_line_; }

 private:
  std::vector<YamlMapEntry> entries_;
  int root_line_;
};

// A yaml_json.h reader: the value of `node`, reported as `field` at `line`.
template <typename T>
using Reader = absl::StatusOr<T> (*)(const YAML::Node&, absl::string_view, int);

// Reads `key` of a mapping with `read`. A missing key is an error when
// `required`; a malformed value is always an error. nullopt on any problem or
// absence. `prefix` qualifies the reported field ("Tests[0]." ...).
template <typename T>
std::optional<T> Get(const Fields& fields, absl::string_view key, bool required, Reader<T> read,
                     Reporter& r, absl::string_view prefix = "") {
  const std::string field = absl::StrCat(prefix, key);
  const YamlMapEntry* e = fields.Find(key);
  if (e == nullptr) {
    if (required) r.Error(fields.root_line(), field, absl::StrCat("missing required key ", key));
    return std::nullopt;
  }
  absl::StatusOr<T> v = read(e->value, field, e->line);
  if (!v.ok()) {
    r.Error(v.status(), field, e->line);
    return std::nullopt;
  }
  return *std::move(v);
}

// The case-insensitive edit distance (Damerau-Levenshtein: insertions,
// deletions, substitutions and swaps of adjacent characters) of `a` and `b`.
size_t KeyDistance(absl::string_view a, absl::string_view b);

// The key of `allowed` closest to the unknown `key` by KeyDistance, when it
// is close enough to be a likely typo (at most 1 edit for keys of up to 4
// characters, 2 up to 8, else 3, and fewer than half of `key`'s length);
// the first of equally close keys. nullopt otherwise.
std::optional<absl::string_view> ClosestKey(absl::string_view key,
                                            const absl::string_view* allowed_begin,
                                            const absl::string_view* allowed_end);

// Reports keys of `fields` that are not in `allowed`; `what` names the
// mapping in the message ("a rule", "a test"). A key close to an allowed one
// (ClosestKey: other case, a typo) gets "(did you mean Key?)", others the
// list of allowed keys.
template <size_t N>
void CheckKeys(const Fields& fields, const absl::string_view (&allowed)[N], absl::string_view what,
               Reporter& r, absl::string_view prefix = "") {
  for (const YamlMapEntry& e : fields.entries()) {
    if (std::find(std::begin(allowed), std::end(allowed), e.key) != std::end(allowed)) continue;
    std::string hint;
    if (std::optional<absl::string_view> closest =
            ClosestKey(e.key, std::begin(allowed), std::end(allowed))) {
      hint = absl::StrCat(" (did you mean ", *closest, "?)");
    }
    if (hint.empty()) hint = absl::StrCat("; allowed keys: ", absl::StrJoin(allowed, ", "));
    r.Error(e.line, absl::StrCat(prefix, e.key),
            absl::StrCat("unknown key \"", e.key, "\" in ", what, hint));
  }
}

// The keys of `node`, which must be a mapping (InvalidArgument naming
// `field` and `line` otherwise, or the yaml_json.h error for a malformed
// mapping). A Reader.
absl::StatusOr<Fields> MappingFields(const YAML::Node& node, absl::string_view field, int line);

// Reports `value` of `field` unless it is non-empty and free of < > & " %
// (Panther's NAME_ID_VALIDATION_REGEX, ^[^<>&"%]+$).
void CheckName(const std::string& value, absl::string_view field, int line, Reporter& r);

// The longest analysis id accepted (RuleID, GlobalID, DataModelID).
inline constexpr size_t kMaxIdLength = 200;

// Reports an analysis id that breaks CheckName's rule, has anything but
// printable ASCII (no control characters, terminal escapes, bidirectional
// overrides or look-alike letters: ids are printed in terminals, logs and
// alerts), or is longer than kMaxIdLength (docs/rule-contract.md, "Ids").
void CheckId(const std::string& value, absl::string_view field, int line, Reporter& r);

// Reports duplicate `values` of the list field `entry` (Panther's
// SET_FIELDS); Tags must also be unique ignoring case.
void CheckUnique(const std::vector<std::string>& values, const YamlMapEntry& entry, Reporter& r);

// Reads a [str] field without duplicates (Get and CheckUnique).
std::optional<std::vector<std::string>> GetSet(const Fields& fields, absl::string_view key,
                                               bool required, Reporter& r);

// `v` as an int32; nullopt, reported as out of range, when it does not fit.
std::optional<int32_t> ToInt32(int64_t v, absl::string_view field, int line, Reporter& r);

}  // namespace pantherd::engine::internal

#endif  // PANTHERD_ENGINE_INTERNAL_SPEC_FIELDS_H_
