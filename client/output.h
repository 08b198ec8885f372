// Output of pantherctl: aligned tables for people, JSON for scripts.
//
// Table output (the default) is a header row plus one aligned row per item,
// or "Label:  value" lines for a single item. Cells never contain line breaks
// or control characters (EscapeForTerminal).
//
// JSON output (--output json) is pantherctl's own rendering of the RPC's
// response message, the same for every command (docs/cli.md, "Output
// formats"): lowerCamelCase keys as in the proto3 JSON mapping; every scalar
// and list field present even at its default (empty lists print as [], unset
// sub-messages and unset optional fields are left out); enum values by name
// without their type's prefix ("CRITICAL", "TRIAGED", "RULE_ERROR", not
// "SEVERITY_CRITICAL"; the zero value prints as "UNSPECIFIED"); 64-bit
// integers as JSON numbers, not the strings of the proto3 mapping; bytes as
// base64; Timestamp and Duration as in the proto3 mapping
// ("2024-05-01T12:00:00Z", "3.5s"). Documents are indented one space per
// level, one key per line; `alerts tail` prints one compact document per
// line. Each command prints exactly one JSON document: for single items and
// list commands that is the RPC's response message (lists are therefore an
// object such as {"rules": [...], "nextPageToken": ""}, not a bare array);
// `status` prints the combined object described in commands.h.
//
// CSV output (--output csv, list commands only) is the table's header and
// rows as RFC 4180 records: fields separated by commas, a field quoted with
// '"' when it holds a comma, a quote, a line break or leading/trailing
// space, quotes inside doubled, records ended by CRLF.
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
#include "google/protobuf/descriptor.h"
#include "google/protobuf/duration.pb.h"
#include "google/protobuf/message.h"
#include "google/protobuf/repeated_ptr_field.h"
#include "google/protobuf/timestamp.pb.h"
#include "google/protobuf/util/json_util.h"

namespace pantherd::client {

// The value of --output.
enum class OutputFormat { kTable, kJson, kCsv };

// Parses "table", "json" or "csv" (exact, lowercase). INVALID_ARGUMENT
// otherwise.
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
  // Prints the header (if any) and every row as RFC 4180 CSV records (see
  // the file comment), cells as they would appear in the table.
  void PrintCsv(std::ostream& out) const;
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

// `field` as one RFC 4180 CSV field: unchanged unless it holds a comma, a
// quote, CR, LF or leading/trailing space; then quoted with inner quotes
// doubled.
std::string CsvField(absl::string_view field);

// Prints "Label:" / value pairs as an aligned two-column block, e.g.
//   Version:  0.1.0
//   Uptime:   3m12s
void PrintFields(const std::vector<std::pair<std::string, std::string>>& fields, std::ostream& out);

// The options of protobuf's own JSON printer closest to pantherctl's JSON
// style; pantherctl prints with MessageToJson, which differs in enum names
// and 64-bit integers (see the file comment).
google::protobuf::util::JsonPrintOptions JsonOptions();

// Layout of MessageToJson: kPretty is one key per line with a one-space
// indent per level; kCompact has no whitespace (one line).
enum class JsonStyle { kPretty, kCompact };

// `message` in pantherctl's JSON style (file comment), without a trailing
// newline, passed through EscapeJsonForTerminal. INTERNAL if protobuf cannot
// print a well-known type (which it does not for well-formed messages).
// Thread-safe.
absl::StatusOr<std::string> MessageToJson(const google::protobuf::Message& message);
absl::StatusOr<std::string> MessageToJson(const google::protobuf::Message& message,
                                          JsonStyle style);

// The name of an enum value as pantherctl's JSON prints it: without the
// prefix its type's zero value has before "UNSPECIFIED" (SEVERITY_HIGH ->
// "HIGH", AlertChange.KIND_CREATED -> "CREATED"); the whole name when the
// type has no such zero value.
std::string ShortJsonEnumName(const google::protobuf::EnumValueDescriptor& value);

// Parses JSON in pantherctl's style (MessageToJson) into `message`: enum
// values may be short ("CRITICAL") or full names, 64-bit integers numbers or
// strings. For tests and tools that read pantherctl's output. Unknown keys
// are an error unless `ignore_unknown_fields`. INVALID_ARGUMENT with
// protobuf's message when `json` does not fit `message`.
absl::Status JsonToMessage(absl::string_view json, google::protobuf::Message* message,
                           bool ignore_unknown_fields = false);

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
// "1 match", "3 matches": `n` and the noun for it.
std::string Plural(int64_t n, absl::string_view one, absl::string_view many);
// A count of alerts with the signals (CreateAlert: false) apart: "3"; with
// signals "3 + 1 signal", or "2 signals" when there is no alert.
std::string AlertsAndSignals(int64_t alerts, int64_t signals);
// The strings joined by ",", or "-" when there are none.
std::string JoinOrDash(const google::protobuf::RepeatedPtrField<std::string>& values);
// An enum value name without its prefix ("SEVERITY_HIGH", "SEVERITY_" ->
// "HIGH"); "-" for the *_UNSPECIFIED value or an empty name.
std::string ShortEnumName(absl::string_view name, absl::string_view prefix);

}  // namespace pantherd::client

#endif  // PANTHERD_CLIENT_OUTPUT_H_
