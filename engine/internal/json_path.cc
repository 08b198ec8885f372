// File: engine/internal/json_path.cc

#include "engine/internal/json_path.h"

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "engine/internal/dom_fields.h"

namespace pantherd::engine::internal {
namespace {

// jsonpath-ng 1.5.3 (the version panther-analysis pins) renders a field as
// its bare name, and a path as its steps joined by '.': "$.target.[0].id".
// (1.6 started quoting some names and 1.8 parenthesizes every step; Panther's
// p_enrichment keys, which udm_path() output indexes, use the bare form.)
std::string RenderField(std::string_view name) { return std::string(name); }

bool IsNameStart(char c) { return absl::ascii_isalpha(c) || c == '_' || c == '@'; }
bool IsNameChar(char c) { return IsNameStart(c) || absl::ascii_isdigit(c) || c == '-'; }

// A cursor over the path text; every Parse* method advances it on success.
class Parser {
 public:
  explicit Parser(std::string_view text) : text_(text) {}

  bool AtEnd() {
    SkipBlanks();
    return pos_ >= text_.size();
  }
  bool Consume(char c) {
    SkipBlanks();
    if (pos_ < text_.size() && text_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }
  bool Peek(char c) {
    SkipBlanks();
    return pos_ < text_.size() && text_[pos_] == c;
  }
  bool PeekQuote() { return Peek('\'') || Peek('"'); }
  bool PeekNameStart() {
    SkipBlanks();
    return pos_ < text_.size() && IsNameStart(text_[pos_]);
  }

  absl::StatusOr<std::string> ParseName() {
    SkipBlanks();
    size_t start = pos_;
    if (pos_ >= text_.size() || !IsNameStart(text_[pos_])) return Error("expected a field name");
    while (pos_ < text_.size() && IsNameChar(text_[pos_])) ++pos_;
    return std::string(text_.substr(start, pos_ - start));
  }

  absl::StatusOr<std::string> ParseQuoted() {
    SkipBlanks();
    char quote = text_[pos_++];
    std::string name;
    while (pos_ < text_.size() && text_[pos_] != quote) {
      if (text_[pos_] == '\\' && pos_ + 1 < text_.size()) ++pos_;
      name.push_back(text_[pos_++]);
    }
    if (pos_ >= text_.size()) return Error("unterminated quoted field name");
    ++pos_;
    return name;
  }

  absl::StatusOr<size_t> ParseIndex() {
    SkipBlanks();
    size_t start = pos_;
    uint64_t value = 0;
    while (pos_ < text_.size() && absl::ascii_isdigit(text_[pos_])) {
      if (pos_ - start >= 18) return Error("array index too large");
      value = value * 10 + static_cast<uint64_t>(text_[pos_] - '0');
      ++pos_;
    }
    if (pos_ == start) return Error("expected an array index, '*' or a quoted field name");
    return static_cast<size_t>(value);
  }

  absl::Status Error(std::string_view what) const {
    // Debian's Abseil has its own string_view type: convert explicitly.
    return absl::InvalidArgumentError(absl::StrCat("JSONPath [", std::string(text_),
                                                   "]: ", std::string(what), " at offset ", pos_,
                                                   " (pantherd supports $, .field, ['field'], "
                                                   "[N], [*] and .*)"));
  }

 private:
  void SkipBlanks() {
    while (pos_ < text_.size() && (text_[pos_] == ' ' || text_[pos_] == '\t')) ++pos_;
  }

  std::string_view text_;
  size_t pos_ = 0;
};

}  // namespace

absl::StatusOr<JsonPath> JsonPath::Parse(std::string_view text) {
  JsonPath path;
  path.text_ = std::string(text);
  Parser parser(text);
  if (parser.AtEnd()) return parser.Error("empty path");

  using Kind = Step::Kind;
  if (parser.Consume('$')) {
    path.rooted_ = true;
  } else if (parser.PeekNameStart()) {
    absl::StatusOr<std::string> name = parser.ParseName();
    if (!name.ok()) return name.status();
    path.steps_.push_back(Step{Kind::kField, *std::move(name)});
  } else if (parser.PeekQuote()) {
    absl::StatusOr<std::string> name = parser.ParseQuoted();
    if (!name.ok()) return name.status();
    path.steps_.push_back(Step{Kind::kField, *std::move(name)});
  } else {
    return parser.Error("a path starts with '$' or a field name");
  }

  while (!parser.AtEnd()) {
    if (parser.Consume('.')) {
      if (parser.Peek('.')) return parser.Error("recursive descent '..' is not supported");
      if (parser.Consume('*')) {
        path.steps_.push_back(Step{Kind::kAnyValue});
        continue;
      }
      absl::StatusOr<std::string> name =
          parser.PeekQuote() ? parser.ParseQuoted() : parser.ParseName();
      if (!name.ok()) return name.status();
      path.steps_.push_back(Step{Kind::kField, *std::move(name)});
    } else if (parser.Consume('[')) {
      if (parser.Consume('*')) {
        path.steps_.push_back(Step{Kind::kAnyElement});
      } else if (parser.PeekQuote()) {
        absl::StatusOr<std::string> name = parser.ParseQuoted();
        if (!name.ok()) return name.status();
        path.steps_.push_back(Step{Kind::kField, *std::move(name)});
      } else {
        absl::StatusOr<size_t> index = parser.ParseIndex();
        if (!index.ok()) return index.status();
        path.steps_.push_back(Step{Kind::kIndex, "", *index});
      }
      if (!parser.Consume(']')) return parser.Error("expected ']'");
    } else {
      return parser.Error("expected '.' or '['");
    }
  }
  return path;
}

std::string JsonPath::ToString() const {
  std::vector<std::string> parts;
  if (rooted_) parts.push_back("$");
  for (const Step& step : steps_) {
    switch (step.kind) {
      case Step::Kind::kField:
        parts.push_back(RenderField(step.field));
        break;
      case Step::Kind::kIndex:
        parts.push_back(absl::StrCat("[", step.index, "]"));
        break;
      case Step::Kind::kAnyValue:
        parts.push_back(RenderField("*"));
        break;
      case Step::Kind::kAnyElement:
        parts.push_back("[*]");
        break;
    }
  }
  return absl::StrJoin(parts, ".");
}

std::vector<JsonPath::Match> JsonPath::Find(simdjson::dom::element root, size_t max_matches) const {
  std::vector<Match> matches;
  std::vector<std::string> trail;
  if (max_matches > 0) FindFrom(root, 0, trail, max_matches, matches);
  return matches;
}

void JsonPath::FindFrom(simdjson::dom::element value, size_t step, std::vector<std::string>& trail,
                        size_t max_matches, std::vector<Match>& matches) const {
  if (matches.size() >= max_matches) return;
  if (step == steps_.size()) {
    matches.push_back(Match{value, trail.empty() ? "$" : absl::StrJoin(trail, ".")});
    return;
  }
  auto descend = [&](simdjson::dom::element child, std::string part) {
    trail.push_back(std::move(part));
    FindFrom(child, step + 1, trail, max_matches, matches);
    trail.pop_back();
  };

  const Step& current = steps_[step];
  using Type = simdjson::dom::element_type;
  switch (current.kind) {
    case Step::Kind::kField: {
      simdjson::dom::element child;
      if (value.type() == Type::OBJECT &&
          FindLastField(value.get_object().value_unsafe(), current.field, &child)) {
        descend(child, RenderField(current.field));
      }
      return;
    }
    case Step::Kind::kIndex: {
      if (value.type() != Type::ARRAY) return;
      size_t i = 0;
      for (simdjson::dom::element child : AsArray(value)) {
        if (i == current.index) {
          descend(child, absl::StrCat("[", i, "]"));
          return;
        }
        ++i;
      }
      return;
    }
    case Step::Kind::kAnyValue: {
      if (value.type() != Type::OBJECT) return;
      for (const DomField& field : UniqueFields(value.get_object().value_unsafe())) {
        if (matches.size() >= max_matches) return;
        descend(field.value, RenderField(field.key));
      }
      return;
    }
    case Step::Kind::kAnyElement: {
      switch (value.type()) {
        case Type::ARRAY: {
          size_t i = 0;
          for (simdjson::dom::element child : AsArray(value)) {
            if (matches.size() >= max_matches) return;
            descend(child, absl::StrCat("[", i++, "]"));
          }
          return;
        }
        // jsonpath-ng's Slice wraps a truthy object, string or integer (bool
        // included) in a one-element list.
        case Type::OBJECT:
          if (value.get_object().value_unsafe().begin() !=
              value.get_object().value_unsafe().end()) {
            descend(value, "[0]");
          }
          return;
        case Type::STRING:
          if (!value.get_string().value_unsafe().empty()) descend(value, "[0]");
          return;
        case Type::INT64:
          if (value.get_int64().value_unsafe() != 0) descend(value, "[0]");
          return;
        case Type::UINT64:
          if (value.get_uint64().value_unsafe() != 0) descend(value, "[0]");
          return;
        case Type::BOOL:
          if (value.get_bool().value_unsafe()) descend(value, "[0]");
          return;
        default:
          return;
      }
    }
  }
}

}  // namespace pantherd::engine::internal
