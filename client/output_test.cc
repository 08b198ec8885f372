#include "client/output.h"

#include <sstream>

#include "absl/status/statusor.h"
#include "gmock/gmock.h"
#include "google/protobuf/struct.pb.h"
#include "gtest/gtest.h"
#include "pantherd/v1/alerts.pb.h"
#include "pantherd/v1/detection_service.pb.h"
#include "pantherd/v1/rules.pb.h"

namespace pantherd::client {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

TEST(PantherctlOutputTest, AlertsAndSignalsCountsSignalsApart) {
  EXPECT_EQ(AlertsAndSignals(3, 0), "3");
  EXPECT_EQ(AlertsAndSignals(0, 0), "0");
  EXPECT_EQ(AlertsAndSignals(0, 1), "1 signal");
  EXPECT_EQ(AlertsAndSignals(0, 2), "2 signals");
  EXPECT_EQ(AlertsAndSignals(3, 1), "3 + 1 signal");
  EXPECT_EQ(Plural(1, "alert", "alerts"), "1 alert");
  EXPECT_EQ(Plural(0, "alert", "alerts"), "0 alerts");
  EXPECT_EQ(Plural(2, "match", "matches"), "2 matches");
}

TEST(PantherctlOutputTest, TableAlignsColumnsUnderHeader) {
  Table table({"ID", "SEVERITY", "TITLE"});
  table.AddRow({"okta.brute_force", "HIGH", "Brute force"});
  table.AddRow({"a", "LOW", "x"});
  EXPECT_EQ(table.ToString(),
            "ID                SEVERITY  TITLE\n"
            "okta.brute_force  HIGH      Brute force\n"
            "a                 LOW       x\n");
  EXPECT_EQ(table.row_count(), 2u);
}

TEST(PantherctlOutputTest, TableWithNoRowsPrintsHeaderOnly) {
  Table table({"ID", "NAME"});
  EXPECT_EQ(table.ToString(), "ID  NAME\n");
}

TEST(PantherctlOutputTest, TableHasNoTrailingBlanksAndPadsMissingCells) {
  Table table({"A", "B", "C"});
  table.AddRow({"long value", "", ""});
  table.AddRow({"x"});
  EXPECT_EQ(table.ToString(),
            "A           B  C\n"
            "long value\n"
            "x\n");
}

TEST(PantherctlOutputTest, TableCountsCodePointsAndFlattensLineBreaks) {
  Table table({"NAME", "N"});
  table.AddRow({"Zoë", "1"});
  table.AddRow({"two\nlines", "2"});
  EXPECT_EQ(table.ToString(),
            "NAME       N\n"
            "Zoë        1\n"
            "two lines  2\n");
}

// Security (issue 14, row 9): text from the server (an Okta alternateId, a
// rule id, an error) never reaches the terminal as raw escape sequences or
// bidirectional overrides.
TEST(PantherctlOutputTest, ControlCharactersAreEscapedInEveryCell) {
  EXPECT_EQ(EscapeForTerminal("a\x1b[2Jb"), "a\\x1b[2Jb");
  EXPECT_EQ(EscapeForTerminal(absl::string_view("x\x07\x7f\x00y", 5)), "x\\x07\\x7f\\x00y");
  EXPECT_EQ(EscapeForTerminal("admin\u202egnp.exe"), "admin\\u202egnp.exe");
  EXPECT_EQ(EscapeForTerminal("\u2066x\u2069 \xc2\x9b"), "\\u2066x\\u2069 \\u009b");
  EXPECT_EQ(EscapeForTerminal("Zürich — ok\tthen"), "Zürich — ok then");
  Table table({"USER"});
  table.AddRow({"evil\x1b]0;owned\x07@example.com"});
  const std::string printed = table.ToString();
  EXPECT_EQ(printed.find('\x1b'), std::string::npos) << printed;
  EXPECT_EQ(printed.find('\x07'), std::string::npos) << printed;
  std::ostringstream fields;
  PrintFields({{"Title", "login from \x1b[31mnowhere"}}, fields);
  EXPECT_EQ(fields.str().find('\x1b'), std::string::npos);
}

TEST(PantherctlOutputTest, MultiLineTextKeepsLineBreaksAndEscapesTheRest) {
  EXPECT_EQ(EscapeLinesForTerminal("def rule(e):\n\treturn True\r\n"),
            "def rule(e):\n\treturn True\r\n");
  EXPECT_EQ(EscapeLinesForTerminal("a\rb\x1b]0;t\x07\n\u202ec"), "a\\x0db\\x1b]0;t\\x07\n\\u202ec");
}

TEST(PantherctlOutputTest, JsonEscapesControlAndBidiCharactersAsUnicodeEscapes) {
  EXPECT_EQ(JsonQuote("a\x1b[2J\x07\x7f\u202e\xc2\x9b"),
            "\"a\\u001b[2J\\u0007\\u007f\\u202e\\u009b\"");
  // JSON whitespace between tokens stays; only raw characters change.
  EXPECT_EQ(EscapeJsonForTerminal("{\n \"t\": \"x\u202ey\x1b\"\n}"),
            "{\n \"t\": \"x\\u202ey\\u001b\"\n}");
  google::protobuf::Value value;
  value.set_string_value("\x1b]0;pwned\x07 \u202e");
  absl::StatusOr<std::string> json = MessageToJson(value);
  ASSERT_TRUE(json.ok()) << json.status();
  EXPECT_EQ(*json, "\"\\u001b]0;pwned\\u0007 \\u202e\"");
}

TEST(PantherctlOutputTest, PrintFieldsAlignsValues) {
  std::ostringstream out;
  PrintFields({{"Version", "0.1.0"}, {"Data dir", "/var/lib/pantherd"}}, out);
  EXPECT_EQ(out.str(),
            "Version:   0.1.0\n"
            "Data dir:  /var/lib/pantherd\n");
}

TEST(PantherctlOutputTest, ParsesOutputFormats) {
  EXPECT_EQ(*ParseOutputFormat("table"), OutputFormat::kTable);
  EXPECT_EQ(*ParseOutputFormat("json"), OutputFormat::kJson);
  EXPECT_EQ(*ParseOutputFormat("csv"), OutputFormat::kCsv);
  EXPECT_EQ(ParseOutputFormat("yaml").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(PantherctlOutputTest, FormatsSecondsForPeople) {
  EXPECT_EQ(FormatSeconds(0), "0s");
  EXPECT_EQ(FormatSeconds(-5), "0s");
  EXPECT_EQ(FormatSeconds(59), "59s");
  EXPECT_EQ(FormatSeconds(192), "3m12s");
  EXPECT_EQ(FormatSeconds(7205), "2h0m5s");
  EXPECT_EQ(FormatSeconds(3 * 86400 + 4 * 3600), "3d4h0m0s");
}

TEST(PantherctlOutputTest, FormatsTimestampsAsUtcOrDash) {
  google::protobuf::Timestamp unset;
  EXPECT_EQ(FormatTimestamp(unset), "-");
  google::protobuf::Timestamp t;
  t.set_seconds(1714564800);  // 2024-05-01T12:00:00Z
  t.set_nanos(999);
  EXPECT_EQ(FormatTimestamp(t), "2024-05-01T12:00:00Z");
}

TEST(PantherctlOutputTest, ShortEnumNamesAndDashes) {
  EXPECT_EQ(ShortEnumName("SEVERITY_HIGH", "SEVERITY_"), "HIGH");
  EXPECT_EQ(ShortEnumName("SEVERITY_UNSPECIFIED", "SEVERITY_"), "-");
  EXPECT_EQ(ShortEnumName("", "SEVERITY_"), "-");
  EXPECT_EQ(OrDash(""), "-");
  EXPECT_EQ(OrDash("x"), "x");
  google::protobuf::RepeatedPtrField<std::string> values;
  EXPECT_EQ(JoinOrDash(values), "-");
  *values.Add() = "Okta.SystemLog";
  *values.Add() = "AWS.CloudTrail";
  EXPECT_EQ(JoinOrDash(values), "Okta.SystemLog,AWS.CloudTrail");
}

TEST(PantherctlOutputTest, JsonQuoteEscapes) {
  EXPECT_EQ(JsonQuote("plain"), "\"plain\"");
  EXPECT_EQ(JsonQuote("a\"b\\c\nd\x01"), "\"a\\\"b\\\\c\\nd\\u0001\"");
  EXPECT_EQ(JsonQuote("Zoë"), "\"Zoë\"");
}

TEST(PantherctlOutputTest, JsonObjectKeepsOrderAndIndents) {
  JsonObject object;
  object.AddString("version", "0.1.0").AddInt("ruleCount", 3).AddRaw("uptime", "\"192s\"");
  EXPECT_EQ(object.ToString(),
            "{\n"
            " \"version\": \"0.1.0\",\n"
            " \"ruleCount\": 3,\n"
            " \"uptime\": \"192s\"\n"
            "}");
  EXPECT_EQ(JsonObject().ToString(), "{}");
}

TEST(PantherctlOutputTest, MessageJsonUsesLowerCamelCaseAndEnumNames) {
  pantherd::v1::Rule rule;
  rule.set_id("okta.brute_force");
  rule.set_display_name("Okta brute force");
  rule.set_type(pantherd::v1::ANALYSIS_TYPE_RULE);
  rule.set_dedup_period_minutes(60);
  rule.set_version(7);
  absl::StatusOr<std::string> json = MessageToJson(rule);
  ASSERT_TRUE(json.ok()) << json.status();
  EXPECT_THAT(*json, HasSubstr("\"displayName\": \"Okta brute force\""));
  EXPECT_THAT(*json, HasSubstr("\"dedupPeriodMinutes\": 60"));
  EXPECT_THAT(*json, HasSubstr("\"type\": \"RULE\""));  // Without the ANALYSIS_TYPE_ prefix.
  EXPECT_THAT(*json, HasSubstr("\"version\": 7,"));     // int64: a number, not a string.
  EXPECT_THAT(*json, Not(HasSubstr("display_name")));
  EXPECT_NE(json->back(), '\n');
}

TEST(PantherctlOutputTest, MessageJsonPrintsEmptyListsAndDefaults) {
  pantherd::v1::ListRulesResponse response;
  absl::StatusOr<std::string> json = MessageToJson(response);
  ASSERT_TRUE(json.ok()) << json.status();
  EXPECT_THAT(*json, HasSubstr("\"rules\": []"));
  EXPECT_THAT(*json, HasSubstr("\"nextPageToken\": \"\""));
  EXPECT_THAT(*json, HasSubstr("\"totalCount\": 0"));
  EXPECT_EQ(json->front(), '{');

  std::ostringstream out;
  ASSERT_TRUE(PrintJson(response, out).ok());
  EXPECT_EQ(out.str(), *json + "\n");
}

TEST(PantherctlOutputTest, MessageJsonLayoutEnumsNumbersAndPresence) {
  pantherd::v1::Alert alert;
  alert.set_id("a1");
  alert.set_severity(pantherd::v1::SEVERITY_CRITICAL);
  alert.set_event_count(int64_t{9007199254740993});  // Beyond a double's exact range.
  alert.mutable_created_time()->set_seconds(1714564800);
  pantherd::v1::AlertHistoryEntry* entry = alert.add_history();
  entry->set_new_status(pantherd::v1::ALERT_STATUS_TRIAGED);
  absl::StatusOr<std::string> json = MessageToJson(alert);
  ASSERT_TRUE(json.ok()) << json.status();
  EXPECT_THAT(*json, testing::StartsWith("{\n \"id\": \"a1\",\n \"type\": \"UNSPECIFIED\",\n"));
  EXPECT_THAT(*json, HasSubstr("\n \"severity\": \"CRITICAL\",\n"));
  EXPECT_THAT(*json, HasSubstr("\n \"eventCount\": 9007199254740993,\n"));
  EXPECT_THAT(*json, HasSubstr("\n \"createdTime\": \"2024-05-01T12:00:00Z\",\n"));
  // Unset sub-messages and proto3 optional fields are left out; lists nest.
  EXPECT_THAT(*json, Not(HasSubstr("\"updatedTime\"")));
  EXPECT_THAT(*json, Not(HasSubstr("\"assignee\": null")));
  EXPECT_THAT(*json,
              HasSubstr("\n \"history\": [\n  {\n   \"actor\": \"\",\n"
                        "   \"oldStatus\": \"UNSPECIFIED\",\n   \"newStatus\": \"TRIAGED\",\n"
                        "   \"comment\": \"\"\n  }\n ],\n"));
  EXPECT_THAT(*json, Not(HasSubstr("SEVERITY_")));

  absl::StatusOr<std::string> compact = MessageToJson(alert, JsonStyle::kCompact);
  ASSERT_TRUE(compact.ok()) << compact.status();
  EXPECT_THAT(*compact, testing::StartsWith("{\"id\":\"a1\",\"type\":\"UNSPECIFIED\","));
  EXPECT_EQ(compact->find('\n'), std::string::npos);
}

TEST(PantherctlOutputTest, MessageJsonMapsAndBytes) {
  pantherd::v1::RunTestsRequest request;
  (*request.mutable_filters())["Severity"] = "High";
  (*request.mutable_filters())["Enabled"] = "true";
  pantherd::v1::AnalysisFile* file = request.mutable_content()->add_files();
  file->set_path("r.py");
  file->set_content("ab");
  absl::StatusOr<std::string> json = MessageToJson(request, JsonStyle::kCompact);
  ASSERT_TRUE(json.ok()) << json.status();
  EXPECT_THAT(*json, HasSubstr("\"files\":[{\"path\":\"r.py\",\"content\":\"YWI=\"}]"));
  // Map keys sorted, so that the output is stable.
  EXPECT_THAT(*json, HasSubstr("\"filters\":{\"Enabled\":\"true\",\"Severity\":\"High\"}"));
}

TEST(PantherctlOutputTest, JsonToMessageReadsMessageToJsonBack) {
  pantherd::v1::AlertChange change;
  change.set_sequence(42);
  change.set_kind(pantherd::v1::AlertChange::KIND_TRIAGED);
  change.mutable_alert()->set_severity(pantherd::v1::SEVERITY_LOW);
  change.mutable_alert()->add_history()->set_new_status(pantherd::v1::ALERT_STATUS_CLOSED);
  change.mutable_alert()->set_event_count(12);
  for (JsonStyle style : {JsonStyle::kPretty, JsonStyle::kCompact}) {
    absl::StatusOr<std::string> json = MessageToJson(change, style);
    ASSERT_TRUE(json.ok()) << json.status();
    pantherd::v1::AlertChange parsed;
    ASSERT_TRUE(JsonToMessage(*json, &parsed).ok()) << *json;
    EXPECT_EQ(parsed.SerializeAsString(), change.SerializeAsString()) << *json;
  }
  pantherd::v1::AlertChange full;  // Full enum names still read.
  ASSERT_TRUE(JsonToMessage(R"({"kind": "KIND_CREATED"})", &full).ok());
  EXPECT_EQ(full.kind(), pantherd::v1::AlertChange::KIND_CREATED);
  EXPECT_EQ(JsonToMessage(R"({"bogus": 1})", &full).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(JsonToMessage(R"({"bogus": 1})", &full, /*ignore_unknown_fields=*/true).ok());
}

TEST(PantherctlOutputTest, ShortJsonEnumNamesDropTheTypePrefix) {
  const auto* severity = pantherd::v1::Severity_descriptor();
  EXPECT_EQ(ShortJsonEnumName(*severity->FindValueByNumber(pantherd::v1::SEVERITY_HIGH)), "HIGH");
  EXPECT_EQ(ShortJsonEnumName(*severity->FindValueByNumber(0)), "UNSPECIFIED");
  const auto* kind = pantherd::v1::AlertChange::Kind_descriptor();
  EXPECT_EQ(ShortJsonEnumName(*kind->FindValueByNumber(pantherd::v1::AlertChange::KIND_CREATED)),
            "CREATED");
}

TEST(PantherctlOutputTest, CsvQuotesPerRfc4180) {
  EXPECT_EQ(CsvField("plain"), "plain");
  EXPECT_EQ(CsvField(""), "");
  EXPECT_EQ(CsvField("a,b"), "\"a,b\"");
  EXPECT_EQ(CsvField("say \"hi\""), "\"say \"\"hi\"\"\"");
  EXPECT_EQ(CsvField("two\nlines"), "\"two\nlines\"");
  EXPECT_EQ(CsvField(" padded"), "\" padded\"");
  Table table({"ID", "TITLE"});
  table.AddRow({"a1", "Brute force, admin"});
  table.AddRow({"a2", "\"quoted\""});
  std::ostringstream out;
  table.PrintCsv(out);
  EXPECT_EQ(out.str(), "ID,TITLE\r\na1,\"Brute force, admin\"\r\na2,\"\"\"quoted\"\"\"\r\n");
}

}  // namespace
}  // namespace pantherd::client
