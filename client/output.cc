#include "client/output.h"

#include <algorithm>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"

namespace pantherd::client {
namespace {

// Number of UTF-8 code points in `text` (continuation bytes not counted).
size_t DisplayWidth(absl::string_view text) {
  return std::count_if(text.begin(), text.end(),
                       [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; });
}

// The length of the UTF-8 sequence at `text[i]` when it encodes a C1 control
// (U+0080..U+009F) or a bidirectional formatting character (U+200E, U+200F,
// U+202A..U+202E, U+2066..U+2069), which reorder or hide what a terminal
// shows; else 0.
size_t InvisibleControlAt(absl::string_view text, size_t i) {
  const auto b = [&](size_t k) { return static_cast<unsigned char>(text[i + k]); };
  if (i + 1 < text.size() && b(0) == 0xC2 && b(1) >= 0x80 && b(1) <= 0x9F) return 2;
  if (i + 2 < text.size() && b(0) == 0xE2) {
    if (b(1) == 0x80 && (b(2) == 0x8E || b(2) == 0x8F || (b(2) >= 0xAA && b(2) <= 0xAE))) return 3;
    if (b(1) == 0x81 && b(2) >= 0xA6 && b(2) <= 0xA9) return 3;
  }
  return 0;
}

}  // namespace

namespace {

// How EscapeControls treats the characters it may change.
enum class EscapeStyle {
  kOneLine,  // Line breaks and tabs become spaces; escapes are \x1b and \u202e.
  kLines,    // "\n", "\t" and the "\r" of "\r\n" stay; escapes as kOneLine.
  kJson,     // "\n", "\r", "\t" stay (JSON whitespace); escapes are \u001b and \u202e,
             // which mean the same inside a JSON string.
};

// The code point of the 2- or 3-byte UTF-8 sequence at `text[i]`.
uint32_t CodePointAt(absl::string_view text, size_t i, size_t length) {
  const auto b = [&](size_t k) {
    return static_cast<uint32_t>(static_cast<unsigned char>(text[i + k]));
  };
  if (length == 2) return ((b(0) & 0x1F) << 6) | (b(1) & 0x3F);
  return ((b(0) & 0x0F) << 12) | ((b(1) & 0x3F) << 6) | (b(2) & 0x3F);
}

std::string EscapeControls(absl::string_view text, EscapeStyle style) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(text[i]);
    const bool line_break =
        c == '\n' || c == '\t' || (c == '\r' && i + 1 < text.size() && text[i + 1] == '\n');
    if (style == EscapeStyle::kOneLine && (c == '\n' || c == '\r' || c == '\t')) {
      out.push_back(' ');
    } else if ((style == EscapeStyle::kLines && line_break) ||
               (style == EscapeStyle::kJson && (c == '\n' || c == '\r' || c == '\t'))) {
      out.push_back(static_cast<char>(c));
    } else if (c < 0x20 || c == 0x7f) {
      if (style == EscapeStyle::kJson) {
        absl::StrAppend(&out, "\\u", absl::Hex(c, absl::kZeroPad4));
      } else {
        absl::StrAppend(&out, "\\x", absl::Hex(c, absl::kZeroPad2));
      }
    } else if (const size_t n = InvisibleControlAt(text, i); n > 0) {
      absl::StrAppend(&out, "\\u", absl::Hex(CodePointAt(text, i, n), absl::kZeroPad4));
      i += n - 1;
    } else {
      out.push_back(static_cast<char>(c));
    }
  }
  return out;
}

}  // namespace

std::string EscapeForTerminal(absl::string_view text) {
  return EscapeControls(text, EscapeStyle::kOneLine);
}

std::string EscapeLinesForTerminal(absl::string_view text) {
  return EscapeControls(text, EscapeStyle::kLines);
}

std::string EscapeJsonForTerminal(absl::string_view json) {
  return EscapeControls(json, EscapeStyle::kJson);
}

namespace {

std::string CleanCell(std::string cell) { return EscapeForTerminal(cell); }

std::vector<std::string> CleanRow(std::vector<std::string> cells) {
  for (std::string& cell : cells) cell = CleanCell(std::move(cell));
  return cells;
}

}  // namespace

absl::StatusOr<OutputFormat> ParseOutputFormat(absl::string_view name) {
  if (name == "table") return OutputFormat::kTable;
  if (name == "json") return OutputFormat::kJson;
  return absl::InvalidArgumentError(
      absl::StrCat("unknown output format '", name, "' (want table or json)"));
}

Table::Table(std::vector<std::string> header) : header_(CleanRow(std::move(header))) {}

void Table::AddRow(std::vector<std::string> cells) { rows_.push_back(CleanRow(std::move(cells))); }

void Table::Print(std::ostream& out) const {
  std::vector<const std::vector<std::string>*> lines;
  if (!header_.empty()) lines.push_back(&header_);
  for (const auto& row : rows_) lines.push_back(&row);

  std::vector<size_t> widths;
  for (const auto* line : lines) {
    if (line->size() > widths.size()) widths.resize(line->size(), 0);
    for (size_t i = 0; i < line->size(); ++i) {
      widths[i] = std::max(widths[i], DisplayWidth((*line)[i]));
    }
  }
  for (const auto* line : lines) {
    std::string text;
    for (size_t i = 0; i < widths.size(); ++i) {
      const std::string cell = i < line->size() ? (*line)[i] : "";
      if (i > 0) text += "  ";
      text += cell;
      if (i + 1 < widths.size()) text.append(widths[i] - DisplayWidth(cell), ' ');
    }
    // Empty trailing cells would otherwise leave blanks at the end.
    text.erase(text.find_last_not_of(' ') + 1);
    out << text << '\n';
  }
}

std::string Table::ToString() const {
  std::ostringstream out;
  Print(out);
  return out.str();
}

void PrintFields(const std::vector<std::pair<std::string, std::string>>& fields,
                 std::ostream& out) {
  Table table({});
  for (const auto& [label, value] : fields) table.AddRow({absl::StrCat(label, ":"), value});
  table.Print(out);
}

google::protobuf::util::JsonPrintOptions JsonOptions() {
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = true;
  options.always_print_primitive_fields = true;
  options.always_print_enums_as_ints = false;
  options.preserve_proto_field_names = false;
  return options;
}

absl::StatusOr<std::string> MessageToJson(const google::protobuf::Message& message) {
  std::string json;
  auto status = google::protobuf::util::MessageToJsonString(message, &json, JsonOptions());
  if (!status.ok()) {
    return absl::InternalError(
        absl::StrCat("cannot print ", message.GetTypeName(), " as JSON: ", status.ToString()));
  }
  while (!json.empty() && json.back() == '\n') json.pop_back();
  return EscapeJsonForTerminal(json);
}

absl::Status PrintJson(const google::protobuf::Message& message, std::ostream& out) {
  absl::StatusOr<std::string> json = MessageToJson(message);
  if (!json.ok()) return json.status();
  out << *json << '\n';
  return absl::OkStatus();
}

std::string JsonQuote(absl::string_view text) {
  std::string result = "\"";
  for (char c : text) {
    switch (c) {
      case '"':
        result += "\\\"";
        break;
      case '\\':
        result += "\\\\";
        break;
      case '\n':
        result += "\\n";
        break;
      case '\r':
        result += "\\r";
        break;
      case '\t':
        result += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          static constexpr char kHex[] = "0123456789abcdef";
          result += "\\u00";
          result += kHex[(c >> 4) & 0xF];
          result += kHex[c & 0xF];
        } else {
          result += c;
        }
    }
  }
  result += '"';
  return EscapeJsonForTerminal(result);
}

JsonObject& JsonObject::AddString(absl::string_view key, absl::string_view value) {
  members_.emplace_back(std::string(key), JsonQuote(value));
  return *this;
}

JsonObject& JsonObject::AddInt(absl::string_view key, int64_t value) {
  members_.emplace_back(std::string(key), absl::StrCat(value));
  return *this;
}

JsonObject& JsonObject::AddRaw(absl::string_view key, absl::string_view json) {
  // Nested multi-line values are indented one more level.
  members_.emplace_back(std::string(key), absl::StrReplaceAll(json, {{"\n", "\n "}}));
  return *this;
}

std::string JsonObject::ToString() const {
  if (members_.empty()) return "{}";
  std::string result = "{\n";
  for (size_t i = 0; i < members_.size(); ++i) {
    absl::StrAppend(&result, " ", JsonQuote(members_[i].first), ": ", members_[i].second,
                    i + 1 < members_.size() ? ",\n" : "\n");
  }
  result += "}";
  return result;
}

std::string FormatSeconds(int64_t seconds) {
  if (seconds <= 0) return "0s";
  const int64_t days = seconds / 86400;
  const int64_t hours = seconds % 86400 / 3600;
  const int64_t minutes = seconds % 3600 / 60;
  const int64_t secs = seconds % 60;
  if (days > 0) return absl::StrCat(days, "d", hours, "h", minutes, "m", secs, "s");
  if (hours > 0) return absl::StrCat(hours, "h", minutes, "m", secs, "s");
  if (minutes > 0) return absl::StrCat(minutes, "m", secs, "s");
  return absl::StrCat(secs, "s");
}

std::string FormatDuration(const google::protobuf::Duration& duration) {
  return FormatSeconds(duration.seconds());
}

std::string FormatTimestamp(const google::protobuf::Timestamp& timestamp) {
  if (timestamp.seconds() == 0 && timestamp.nanos() == 0) return "-";
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", absl::FromUnixSeconds(timestamp.seconds()),
                          absl::UTCTimeZone());
}

absl::StatusOr<absl::Time> ParseTimeOrAge(absl::string_view flag, absl::string_view text,
                                          absl::Time now) {
  absl::Time t;
  std::string error;
  if (absl::ParseTime(absl::RFC3339_full, text, &t, &error)) return t;
  absl::string_view rest = text;
  int64_t days = 0;
  if (absl::ConsumeSuffix(&rest, "d") && absl::SimpleAtoi(rest, &days) && days >= 0) {
    return now - absl::Hours(24 * days);
  }
  absl::Duration age;
  if (absl::ParseDuration(text, &age) && age >= absl::ZeroDuration()) return now - age;
  return absl::InvalidArgumentError(
      absl::StrCat(flag, ": \"", text,
                   "\" is neither an RFC 3339 time (2026-03-01T10:00:00Z) nor an age "
                   "(2h, 30m, 7d)"));
}

std::string OrDash(absl::string_view text) { return text.empty() ? "-" : std::string(text); }

std::string JoinOrDash(const google::protobuf::RepeatedPtrField<std::string>& values) {
  return values.empty() ? "-" : absl::StrJoin(values, ",");
}

std::string ShortEnumName(absl::string_view name, absl::string_view prefix) {
  if (name.empty() || absl::EndsWith(name, "_UNSPECIFIED")) return "-";
  if (absl::StartsWith(name, prefix)) name.remove_prefix(prefix.size());
  return std::string(name);
}

}  // namespace pantherd::client
