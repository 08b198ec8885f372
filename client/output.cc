#include "client/output.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <sstream>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"
#include "google/protobuf/struct.pb.h"

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
  if (name == "csv") return OutputFormat::kCsv;
  return absl::InvalidArgumentError(
      absl::StrCat("unknown output format '", name, "' (want table, json or csv)"));
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

void Table::PrintCsv(std::ostream& out) const {
  const auto print_row = [&out](const std::vector<std::string>& row) {
    for (size_t i = 0; i < row.size(); ++i) {
      if (i > 0) out << ',';
      out << CsvField(row[i]);
    }
    out << "\r\n";
  };
  if (!header_.empty()) print_row(header_);
  for (const auto& row : rows_) print_row(row);
}

std::string CsvField(absl::string_view field) {
  const bool quote = field.find_first_of(",\"\r\n") != absl::string_view::npos ||
                     (!field.empty() && (field.front() == ' ' || field.back() == ' '));
  if (!quote) return std::string(field);
  return absl::StrCat("\"", absl::StrReplaceAll(field, {{"\"", "\"\""}}), "\"");
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

namespace {

using ::google::protobuf::Descriptor;
using ::google::protobuf::EnumDescriptor;
using ::google::protobuf::EnumValueDescriptor;
using ::google::protobuf::FieldDescriptor;
using ::google::protobuf::Message;
using ::google::protobuf::Reflection;

// Prints messages in pantherctl's JSON style (see output.h) by reflection.
class JsonWriter {
 public:
  explicit JsonWriter(bool pretty) : pretty_(pretty) {}

  absl::Status WriteMessage(const Message& message, int depth, std::string& out) const {
    const Descriptor* descriptor = message.GetDescriptor();
    if (absl::StartsWith(descriptor->full_name(), "google.protobuf.")) {
      return WriteWellKnown(message, out);  // Timestamp, Duration, Struct, ...
    }
    const Reflection* reflection = message.GetReflection();
    std::vector<const FieldDescriptor*> fields;
    for (int i = 0; i < descriptor->field_count(); ++i) {
      const FieldDescriptor* field = descriptor->field(i);
      if (field->is_repeated()) {
        fields.push_back(field);  // Empty lists print as [] (maps as {}).
      } else if (field->has_presence()) {
        // Sub-messages, oneof members and proto3 `optional`: only when set.
        if (reflection->HasField(message, field)) fields.push_back(field);
      } else {
        fields.push_back(field);  // Scalars print even at their default.
      }
    }
    std::sort(fields.begin(), fields.end(), [](const FieldDescriptor* a, const FieldDescriptor* b) {
      return a->number() < b->number();
    });
    if (fields.empty()) {
      out += "{}";
      return absl::OkStatus();
    }
    out += '{';
    for (size_t i = 0; i < fields.size(); ++i) {
      if (i > 0) out += ',';
      NewLine(depth + 1, out);
      absl::StrAppend(&out, JsonQuote(fields[i]->json_name()), pretty_ ? ": " : ":");
      absl::Status status = WriteField(message, fields[i], depth + 1, out);
      if (!status.ok()) return status;
    }
    NewLine(depth, out);
    out += '}';
    return absl::OkStatus();
  }

 private:
  void NewLine(int depth, std::string& out) const {
    if (!pretty_) return;
    out += '\n';
    out.append(static_cast<size_t>(depth), ' ');
  }

  // Well-known types keep protobuf's JSON mapping ("2024-05-01T12:00:00Z",
  // "3.5s", free-form objects), printed compactly.
  static absl::Status WriteWellKnown(const Message& message, std::string& out) {
    google::protobuf::util::JsonPrintOptions options;
    options.add_whitespace = false;
    options.always_print_primitive_fields = true;
    std::string json;
    auto status = google::protobuf::util::MessageToJsonString(message, &json, options);
    if (!status.ok()) {
      return absl::InternalError(
          absl::StrCat("cannot print ", message.GetTypeName(), " as JSON: ", status.ToString()));
    }
    out += json;
    return absl::OkStatus();
  }

  absl::Status WriteField(const Message& message, const FieldDescriptor* field, int depth,
                          std::string& out) const {
    const Reflection* reflection = message.GetReflection();
    if (field->is_map()) return WriteMap(message, field, depth, out);
    if (field->is_repeated()) {
      const int size = reflection->FieldSize(message, field);
      if (size == 0) {
        out += "[]";
        return absl::OkStatus();
      }
      out += '[';
      for (int i = 0; i < size; ++i) {
        if (i > 0) out += ',';
        NewLine(depth + 1, out);
        absl::Status status = WriteValue(message, field, i, depth + 1, out);
        if (!status.ok()) return status;
      }
      NewLine(depth, out);
      out += ']';
      return absl::OkStatus();
    }
    return WriteValue(message, field, -1, depth, out);
  }

  // A map as an object, entries sorted by key so that output is stable.
  absl::Status WriteMap(const Message& message, const FieldDescriptor* field, int depth,
                        std::string& out) const {
    const Reflection* reflection = message.GetReflection();
    const int size = reflection->FieldSize(message, field);
    const FieldDescriptor* key_field = field->message_type()->map_key();
    const FieldDescriptor* value_field = field->message_type()->map_value();
    std::vector<std::pair<std::string, const Message*>> entries;
    for (int i = 0; i < size; ++i) {
      const Message& entry = reflection->GetRepeatedMessage(message, field, i);
      std::string key;
      absl::Status status = ScalarText(entry, key_field, -1, /*quote=*/false, key);
      if (!status.ok()) return status;
      entries.emplace_back(std::move(key), &entry);
    }
    std::sort(entries.begin(), entries.end(),
              [](const auto& a, const auto& b) { return a.first < b.first; });
    if (entries.empty()) {
      out += "{}";
      return absl::OkStatus();
    }
    out += '{';
    for (size_t i = 0; i < entries.size(); ++i) {
      if (i > 0) out += ',';
      NewLine(depth + 1, out);
      absl::StrAppend(&out, JsonQuote(entries[i].first), pretty_ ? ": " : ":");
      absl::Status status = WriteValue(*entries[i].second, value_field, -1, depth + 1, out);
      if (!status.ok()) return status;
    }
    NewLine(depth, out);
    out += '}';
    return absl::OkStatus();
  }

  // One value of `field` (element `index` when repeated, else -1).
  absl::Status WriteValue(const Message& message, const FieldDescriptor* field, int index,
                          int depth, std::string& out) const {
    if (field->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
      const Reflection* reflection = message.GetReflection();
      const Message& sub = index < 0 ? reflection->GetMessage(message, field)
                                     : reflection->GetRepeatedMessage(message, field, index);
      return WriteMessage(sub, depth, out);
    }
    return ScalarText(message, field, index, /*quote=*/true, out);
  }

  // Appends a scalar as JSON (`quote`) or as a map key's bare text.
  static absl::Status ScalarText(const Message& message, const FieldDescriptor* field, int index,
                                 bool quote, std::string& out) {
    const Reflection* r = message.GetReflection();
    const bool rep = index >= 0;
    switch (field->cpp_type()) {
      case FieldDescriptor::CPPTYPE_INT32:
        absl::StrAppend(
            &out, rep ? r->GetRepeatedInt32(message, field, index) : r->GetInt32(message, field));
        break;
      case FieldDescriptor::CPPTYPE_INT64:
        absl::StrAppend(
            &out, rep ? r->GetRepeatedInt64(message, field, index) : r->GetInt64(message, field));
        break;
      case FieldDescriptor::CPPTYPE_UINT32:
        absl::StrAppend(
            &out, rep ? r->GetRepeatedUInt32(message, field, index) : r->GetUInt32(message, field));
        break;
      case FieldDescriptor::CPPTYPE_UINT64:
        absl::StrAppend(
            &out, rep ? r->GetRepeatedUInt64(message, field, index) : r->GetUInt64(message, field));
        break;
      case FieldDescriptor::CPPTYPE_DOUBLE:
        AppendDouble(
            rep ? r->GetRepeatedDouble(message, field, index) : r->GetDouble(message, field), quote,
            out);
        break;
      case FieldDescriptor::CPPTYPE_FLOAT:
        AppendDouble(rep ? r->GetRepeatedFloat(message, field, index) : r->GetFloat(message, field),
                     quote, out);
        break;
      case FieldDescriptor::CPPTYPE_BOOL:
        out += (rep ? r->GetRepeatedBool(message, field, index) : r->GetBool(message, field))
                   ? "true"
                   : "false";
        break;
      case FieldDescriptor::CPPTYPE_ENUM: {
        const int number =
            rep ? r->GetRepeatedEnumValue(message, field, index) : r->GetEnumValue(message, field);
        const EnumValueDescriptor* value = field->enum_type()->FindValueByNumber(number);
        if (value == nullptr) {
          absl::StrAppend(&out, number);  // A value this client does not know.
        } else {
          const std::string name = ShortJsonEnumName(*value);
          out += quote ? JsonQuote(name) : name;
        }
        break;
      }
      case FieldDescriptor::CPPTYPE_STRING: {
        std::string scratch;
        const std::string& text =
            rep ? r->GetRepeatedStringReference(message, field, index, &scratch)
                : r->GetStringReference(message, field, &scratch);
        std::string value =
            field->type() == FieldDescriptor::TYPE_BYTES ? absl::Base64Escape(text) : text;
        out += quote ? JsonQuote(value) : value;
        break;
      }
      default:
        return absl::InternalError(
            absl::StrCat("cannot print field ", field->full_name(), " as JSON"));
    }
    return absl::OkStatus();
  }

  static void AppendDouble(double value, bool quote, std::string& out) {
    if (std::isnan(value)) {
      out += quote ? "\"NaN\"" : "NaN";
    } else if (std::isinf(value)) {
      out += value > 0 ? (quote ? "\"Infinity\"" : "Infinity")
                       : (quote ? "\"-Infinity\"" : "-Infinity");
    } else {
      // Shortest text that reads back as the same double.
      char buffer[32];
      std::snprintf(buffer, sizeof(buffer), "%.17g", value);
      for (int precision = 1; precision <= 17; ++precision) {
        char shorter[32];
        std::snprintf(shorter, sizeof(shorter), "%.*g", precision, value);
        if (std::strtod(shorter, nullptr) == value) {
          out += shorter;
          return;
        }
      }
      out += buffer;
    }
  }

  bool pretty_;
};

}  // namespace

std::string ShortJsonEnumName(const google::protobuf::EnumValueDescriptor& value) {
  const EnumDescriptor* type = value.type();
  // The prefix is what the type's zero value has before "UNSPECIFIED"
  // (SEVERITY_UNSPECIFIED -> "SEVERITY_"); types without one keep full names.
  const EnumValueDescriptor* zero = type->FindValueByNumber(0);
  if (zero == nullptr || !absl::EndsWith(zero->name(), "UNSPECIFIED")) return value.name();
  absl::string_view prefix(zero->name());
  prefix.remove_suffix(std::strlen("UNSPECIFIED"));
  absl::string_view name(value.name());
  if (!prefix.empty() && absl::StartsWith(name, prefix) && name.size() > prefix.size()) {
    name.remove_prefix(prefix.size());
  }
  return std::string(name);
}

absl::StatusOr<std::string> MessageToJson(const google::protobuf::Message& message) {
  return MessageToJson(message, JsonStyle::kPretty);
}

absl::StatusOr<std::string> MessageToJson(const google::protobuf::Message& message,
                                          JsonStyle style) {
  std::string json;
  absl::Status status = JsonWriter(style == JsonStyle::kPretty).WriteMessage(message, 0, json);
  if (!status.ok()) return status;
  return EscapeJsonForTerminal(json);
}

namespace {

using ::google::protobuf::Value;

// The full name of enum value `short_name` of `type` as pantherctl shortens
// it ("CRITICAL" -> "SEVERITY_CRITICAL"); `short_name` when it is one already.
std::string FullEnumName(const EnumDescriptor& type, const std::string& short_name) {
  if (type.FindValueByName(short_name) != nullptr) return short_name;
  const EnumValueDescriptor* zero = type.FindValueByNumber(0);
  if (zero == nullptr || !absl::EndsWith(zero->name(), "UNSPECIFIED")) return short_name;
  const std::string prefix = zero->name().substr(0, zero->name().size() - strlen("UNSPECIFIED"));
  return prefix + short_name;
}

void RestoreEnums(const Descriptor& type, Value& value);

void RestoreFieldValue(const FieldDescriptor& field, Value& value) {
  if (field.enum_type() != nullptr && value.has_string_value()) {
    value.set_string_value(FullEnumName(*field.enum_type(), value.string_value()));
  } else if (field.message_type() != nullptr && value.has_struct_value()) {
    RestoreEnums(*field.message_type(), value);
  }
}

void RestoreEnums(const Descriptor& type, Value& value) {
  if (!value.has_struct_value() || absl::StartsWith(type.full_name(), "google.protobuf.")) {
    return;
  }
  for (auto& [key, member] : *value.mutable_struct_value()->mutable_fields()) {
    const FieldDescriptor* field = nullptr;
    for (int i = 0; i < type.field_count() && field == nullptr; ++i) {
      if (type.field(i)->json_name() == key) field = type.field(i);
    }
    if (field == nullptr) continue;
    if (field->is_map()) {
      const FieldDescriptor* map_value = field->message_type()->map_value();
      if (!member.has_struct_value()) continue;
      for (auto& [ignored, entry] : *member.mutable_struct_value()->mutable_fields()) {
        RestoreFieldValue(*map_value, entry);
      }
    } else if (field->is_repeated() && member.has_list_value()) {
      for (Value& item : *member.mutable_list_value()->mutable_values()) {
        RestoreFieldValue(*field, item);
      }
    } else {
      RestoreFieldValue(*field, member);
    }
  }
}

}  // namespace

absl::Status JsonToMessage(absl::string_view json, google::protobuf::Message* message,
                           bool ignore_unknown_fields) {
  Value value;
  auto parsed = google::protobuf::util::JsonStringToMessage(std::string(json), &value);
  if (!parsed.ok()) return absl::InvalidArgumentError(parsed.ToString());
  RestoreEnums(*message->GetDescriptor(), value);
  std::string restored;
  auto printed = google::protobuf::util::MessageToJsonString(value, &restored);
  if (!printed.ok()) return absl::InvalidArgumentError(printed.ToString());
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = ignore_unknown_fields;
  auto converted = google::protobuf::util::JsonStringToMessage(restored, message, options);
  if (!converted.ok()) return absl::InvalidArgumentError(converted.ToString());
  return absl::OkStatus();
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

std::string Plural(int64_t n, absl::string_view one, absl::string_view many) {
  return absl::StrCat(n, " ", n == 1 ? one : many);
}

std::string AlertsAndSignals(int64_t alerts, int64_t signals) {
  if (signals == 0) return absl::StrCat(alerts);
  const std::string s = Plural(signals, "signal", "signals");
  return alerts == 0 ? s : absl::StrCat(alerts, " + ", s);
}

std::string JoinOrDash(const google::protobuf::RepeatedPtrField<std::string>& values) {
  return values.empty() ? "-" : absl::StrJoin(values, ",");
}

std::string ShortEnumName(absl::string_view name, absl::string_view prefix) {
  if (name.empty() || absl::EndsWith(name, "_UNSPECIFIED")) return "-";
  if (absl::StartsWith(name, prefix)) name.remove_prefix(prefix.size());
  return std::string(name);
}

}  // namespace pantherd::client
