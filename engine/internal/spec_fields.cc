#include "engine/internal/spec_fields.h"

#include <algorithm>
#include <limits>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/strip.h"
#include "engine/analysis_spec.h"

namespace pantherd::engine::internal {
namespace {

// "<field> at line <N>: <problem>" (yaml_json.h readers) or "line <N>:
// <problem>" (ResolveYamlScalar, YamlToJson), split into a Diagnostic's parts.
struct Problem {
  std::string field;
  int line = 0;
  std::string message;
};

Problem SplitStatus(const absl::Status& status, absl::string_view field, int line) {
  Problem p{std::string(field), line, std::string(status.message())};
  absl::string_view msg = status.message();
  auto take_line = [&](absl::string_view rest) -> bool {
    size_t colon = rest.find(": ");
    int n = 0;
    if (colon == absl::string_view::npos || !absl::SimpleAtoi(rest.substr(0, colon), &n)) {
      return false;
    }
    p.line = n;
    p.message = std::string(rest.substr(colon + 2));
    return true;
  };
  if (absl::ConsumePrefix(&msg, "line ")) {
    take_line(msg);
    return p;
  }
  size_t at = msg.find(" at line ");
  size_t colon = msg.find(": ");
  if (at != absl::string_view::npos && (colon == absl::string_view::npos || at < colon)) {
    if (take_line(msg.substr(at + 9))) {
      p.field = std::string(msg.substr(0, at));
      return p;
    }
  }
  if (colon != absl::string_view::npos && msg.substr(0, colon) == field) {
    p.message = std::string(msg.substr(colon + 2));
  }
  return p;
}

}  // namespace

// Reporter ---------------------------------------------------------------------

void Reporter::Error(int line, absl::string_view field, std::string message) {
  ++errors_;
  Add(line, field, std::move(message));
}

void Reporter::Warning(int line, absl::string_view field, absl::string_view message) {
  Add(line, field, absl::StrCat(kWarningPrefix, message));
}

void Reporter::Error(const absl::Status& status, absl::string_view field, int line) {
  Problem p = SplitStatus(status, field, line);
  Error(p.line, p.field, std::move(p.message));
}

void Reporter::Add(int line, absl::string_view field, std::string message) {
  v1::Diagnostic d;
  d.set_file(file_);
  d.set_line(line);
  d.set_field(std::string(field));
  d.set_message(std::move(message));
  out_->push_back(std::move(d));
}

// Fields -----------------------------------------------------------------------

absl::StatusOr<Fields> MappingFields(const YAML::Node& node, absl::string_view field, int line) {
  if (!node.IsDefined() || !node.IsMap()) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, " at line ", line, ": must be a mapping (key: value pairs)"));
  }
  absl::StatusOr<std::vector<YamlMapEntry>> entries = YamlMappingEntries(node);
  if (!entries.ok()) return entries.status();
  int root = YamlLine(node);
  return Fields(*std::move(entries), root > 0 ? root : line);
}

// Panther's NAME_ID_VALIDATION_REGEX, ^[^<>&"%]+$.
void CheckName(const std::string& value, absl::string_view field, int line, Reporter& r) {
  if (value.empty() || value.find_first_of("<>&\"%") != std::string::npos) {
    r.Error(line, field,
            absl::StrCat(field, " ", JsonQuote(value),
                         " must be non-empty and may not contain < > & \" or % "
                         "(Panther's ^[^<>&\"%]+$)"));
  }
}

// An analysis id: CheckName's rule, and only printable ASCII (no control
// characters, terminal escapes, bidirectional overrides or look-alike
// letters: ids are printed in terminals, logs and alerts), at most
// kMaxIdLength characters (docs/rule-contract.md, "Ids").
void CheckId(const std::string& value, absl::string_view field, int line, Reporter& r) {
  if (value.size() > kMaxIdLength) {
    r.Error(line, field,
            absl::StrCat(field, " \"", absl::CHexEscape(value.substr(0, 40)), "...\" has ",
                         value.size(), " characters; at most ", kMaxIdLength, " are accepted"));
    return;
  }
  for (size_t i = 0; i < value.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(value[i]);
    if (c < 0x20 || c >= 0x7f) {
      r.Error(line, field,
              absl::StrCat(field, " \"", absl::CHexEscape(value), "\" has byte 0x",
                           absl::Hex(c, absl::kZeroPad2), " at position ", i,
                           ": ids may contain only printable ASCII (letters, digits, space and "
                           "punctuation other than < > & \" %)"));
      return;
    }
  }
  CheckName(value, field, line, r);
}

// Reports duplicate values of a list field (Panther's SET_FIELDS); Tags must
// also be unique ignoring case.
void CheckUnique(const std::vector<std::string>& values, const YamlMapEntry& entry, Reporter& r) {
  std::vector<YAML::Node> items;
  if (entry.value.IsSequence()) {
    for (const YAML::Node& n : entry.value) items.push_back(n);
  }
  const bool fold_case = entry.key == "Tags";
  absl::flat_hash_map<std::string, std::string> seen;  // key -> first value
  for (size_t i = 0; i < values.size(); ++i) {
    const std::string key = fold_case ? absl::AsciiStrToLower(values[i]) : values[i];
    int line = i < items.size() ? YamlLine(items[i]) : entry.line;
    if (line == 0) line = entry.line;
    auto [it, inserted] = seen.emplace(key, values[i]);
    if (inserted) continue;
    const std::string field = absl::StrCat(entry.key, "[", i, "]");
    if (it->second == values[i]) {
      r.Error(line, field,
              absl::StrCat("duplicate value ", JsonQuote(values[i]), " in ", entry.key));
    } else {
      r.Error(line, field,
              absl::StrCat("Tags must be unique ignoring case: ", JsonQuote(it->second), " and ",
                           JsonQuote(values[i])));
    }
  }
}

// Reads a [str] field without duplicates.
std::optional<std::vector<std::string>> GetSet(const Fields& fields, absl::string_view key,
                                               bool required, Reporter& r) {
  std::optional<std::vector<std::string>> v =
      Get<std::vector<std::string>>(fields, key, required, ReadYamlStringList, r);
  if (v) CheckUnique(*v, *fields.Find(key), r);
  return v;
}

std::optional<int32_t> ToInt32(int64_t v, absl::string_view field, int line, Reporter& r) {
  if (v < std::numeric_limits<int32_t>::min() || v > std::numeric_limits<int32_t>::max()) {
    r.Error(line, field, absl::StrCat(field, " ", v, " is out of range"));
    return std::nullopt;
  }
  return static_cast<int32_t>(v);
}

size_t KeyDistance(absl::string_view a, absl::string_view b) {
  // Optimal string alignment distance over lowercased ASCII.
  const size_t n = a.size(), m = b.size();
  std::vector<std::vector<size_t>> d(n + 1, std::vector<size_t>(m + 1, 0));
  for (size_t i = 0; i <= n; ++i) d[i][0] = i;
  for (size_t j = 0; j <= m; ++j) d[0][j] = j;
  const auto lower = [](char c) { return absl::ascii_tolower(static_cast<unsigned char>(c)); };
  for (size_t i = 1; i <= n; ++i) {
    for (size_t j = 1; j <= m; ++j) {
      const size_t cost = lower(a[i - 1]) == lower(b[j - 1]) ? 0 : 1;
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
      if (i > 1 && j > 1 && lower(a[i - 1]) == lower(b[j - 2]) &&
          lower(a[i - 2]) == lower(b[j - 1])) {
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
  }
  return d[n][m];
}

std::optional<absl::string_view> ClosestKey(absl::string_view key,
                                            const absl::string_view* allowed_begin,
                                            const absl::string_view* allowed_end) {
  const size_t limit = key.size() <= 4 ? 1 : key.size() <= 8 ? 2 : 3;
  std::optional<absl::string_view> best;
  size_t best_distance = limit + 1;
  for (const absl::string_view* a = allowed_begin; a != allowed_end; ++a) {
    const size_t distance = KeyDistance(key, *a);
    if (distance < best_distance && 2 * distance < key.size()) {
      best = *a;
      best_distance = distance;
    }
  }
  return best;
}

}  // namespace pantherd::engine::internal
