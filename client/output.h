// Output of pantherctl: aligned tables for people, JSON for scripts.
//
// Table output (the default) is a header row plus one aligned row per item,
// or "Label:  value" lines for a single item. Cells never contain line breaks
// or control characters (EscapeForTerminal).
//
// JSON output follows the proto3 JSON mapping through
// google::protobuf::util::MessageToJsonString with the options of
// JsonOptions(): lowerCamelCase field names (preserve_proto_field_names =
// false, the mapping's canonical form, so pantherctl prints the same keys as
// any other proto3 JSON client), enum values by name, fields with default
// values included (every key is always present and empty lists print as []),
// and protobuf's whitespace style (one key per line, one-space indent). Note that the mapping
// prints int64 fields as JSON strings and bytes fields as base64. Each command prints exactly one
// JSON document: for single items and list commands that is the RPC's response message (lists are
// therefore an object such as {"rules": [...], "nextPageToken": ""}, not a bare array); `status`
// prints the combined object described in commands.h.
//
//   Table table({"ID", "SEVERITY"});
//   table.AddRow({"okta.login", "HIGH"});
//   table.Print(std::cout);
#ifndef PANTHERD_CLIENT_OUTPUT_H_
#define PANTHERD_CLIENT_OUTPUT_H_

#include <cstdint>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "google/protobuf/duration.pb.h"
#include "google/protobuf/message.h"
#include "google/protobuf/repeated_ptr_field.h"
#include "google/protobuf/timestamp.pb.h"
#include "google/protobuf/util/json_util.h"

namespace pantherd::client {

// The value of --output.
enum class OutputFormat { kTable, kJson };

// Parses "table" or "json" (exact, lowercase). INVALID_ARGUMENT otherwise.
absl::StatusOr<OutputFormat> ParseOutputFormat(absl::string_view name);

// A table of text with columns aligned on the widest cell. Columns are
// separated by two spaces; the last column is not padded, so lines carry no
// trailing blanks. Widths count UTF-8 code points. Line breaks and tabs in
// cells become spaces.
class Table {
 public:
  // `header` is the first row; an empty header prints no header row.
  explicit Table(std::vector<std::string> header);

  // Appends a row. Missing cells print empty; extra cells add columns.
  void AddRow(std::vector<std::string> cells);

  size_t row_count() const { return rows_.size(); }

  // Prints the header (if any) and every row, one line each.
  void Print(std::ostream& out) const;
  std::string ToString() const;

 private:
  std::vector<std::string> header_;
  std::vector<std::vector<std::string>> rows_;
};

// `text` made safe to print on a terminal: line breaks and tabs become
// spaces, other control characters (C0, DEL, C1) and bidirectional formatting
// characters become visible escapes (\x1b, \u202e). Every table cell and
// field value pantherctl prints goes through it, since text from the server
// (event fields, rule ids, titles, error messages) may carry them.
std::string EscapeForTerminal(absl::string_view text);

// As EscapeForTerminal for multi-line text (test reports, rule files): "\n",
// tabs and the "\r" of "\r\n" stay, every other control or bidirectional
// formatting character becomes a visible escape.
std::string EscapeLinesForTerminal(absl::string_view text);

// `json` (a JSON document) with every raw control character other than JSON
// whitespace, and every C1 control or bidirectional formatting character,
// replaced by its \uXXXX escape. Inside a JSON string that means the same
// text, so the document stays equal for a parser but is safe to show on a
// terminal. MessageToJson, PrintJson and JsonQuote apply it.
std::string EscapeJsonForTerminal(absl::string_view json);

// Prints "Label:" / value pairs as an aligned two-column block, e.g.
//   Version:  0.1.0
//   Uptime:   3m12s
void PrintFields(const std::vector<std::pair<std::string, std::string>>& fields, std::ostream& out);

// The JSON options of every proto printed by pantherctl (see file comment).
google::protobuf::util::JsonPrintOptions JsonOptions();

// `message` as JSON with JsonOptions(), without a trailing newline, passed
// through EscapeJsonForTerminal. INTERNAL
// if protobuf refuses (which it does not for well-formed messages).
absl::StatusOr<std::string> MessageToJson(const google::protobuf::Message& message);

// Prints MessageToJson(message) and a newline.
absl::Status PrintJson(const google::protobuf::Message& message, std::ostream& out);

// `text` as a JSON string literal, quotes included; control, C1 and
// bidirectional formatting characters are \uXXXX escapes.
std::string JsonQuote(absl::string_view text);

// Builds one JSON object with keys in insertion order, formatted like
// JsonOptions() output (one key per line, one-space indent). For the few outputs that combine
// several RPCs; single messages go through PrintJson.
class JsonObject {
 public:
  JsonObject& AddString(absl::string_view key, absl::string_view value);
  JsonObject& AddInt(absl::string_view key, int64_t value);
  // `json` must be a valid JSON value, e.g. from MessageToJson.
  JsonObject& AddRaw(absl::string_view key, absl::string_view json);

  // The object, without a trailing newline.
  std::string ToString() const;

 private:
  std::vector<std::pair<std::string, std::string>> members_;  // key, JSON value
};

// Seconds as a short human duration: "0s", "59s", "3m12s", "2h0m5s",
// "3d4h0m0s". Negative values print as "0s".
std::string FormatSeconds(int64_t seconds);
// A Duration by FormatSeconds (sub-second parts are dropped).
std::string FormatDuration(const google::protobuf::Duration& duration);
// A Timestamp as RFC 3339 UTC to the second ("2024-05-01T12:00:00Z"), or "-"
// when unset (zero).
std::string FormatTimestamp(const google::protobuf::Timestamp& timestamp);

// A time given on the command line for flag `flag` (e.g. "--since"): an RFC
// 3339 time (2026-03-01T10:00:00Z) or an age such as 2h, 30m or 7d (that
// long before `now`). InvalidArgument naming the flag otherwise.
absl::StatusOr<absl::Time> ParseTimeOrAge(absl::string_view flag, absl::string_view text,
                                          absl::Time now);

// `text`, or "-" when empty.
std::string OrDash(absl::string_view text);
// The strings joined by ",", or "-" when there are none.
std::string JoinOrDash(const google::protobuf::RepeatedPtrField<std::string>& values);
// An enum value name without its prefix ("SEVERITY_HIGH", "SEVERITY_" ->
// "HIGH"); "-" for the *_UNSPECIFIED value or an empty name.
std::string ShortEnumName(absl::string_view name, absl::string_view prefix);

}  // namespace pantherd::client

#endif  // PANTHERD_CLIENT_OUTPUT_H_
