// The destination kinds: payload shapes, signatures, validation, escaping and
// limits; and the curl client's POST against the fake receiver.
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <atomic>
#include <string>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "server/destination_kind.h"
#include "server/destination_util.h"
#include "server/http_client.h"
#include "tests/fake_receiver.h"

namespace pantherd::server {
namespace {

using ::google::protobuf::Struct;
using ::google::protobuf::Value;
using ::pantherd::testing::FakeReceiver;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kSlackUrl[] = "https://hooks.slack.test/T000/B000/SECRETVALUE";

google::protobuf::Timestamp Ts(int64_t seconds, int32_t nanos = 0) {
  google::protobuf::Timestamp t;
  t.set_seconds(seconds);
  t.set_nanos(nanos);
  return t;
}

AlertMessage SampleMessage() {
  AlertMessage m;
  v1::Alert& a = m.alert;
  a.set_id("a1b2c3d4");
  a.set_type(v1::ALERT_TYPE_RULE);
  a.set_rule_id("Okta.BruteForce");
  a.set_rule_version(7);
  a.set_title("Brute force against alice@example.com");
  a.set_severity(v1::SEVERITY_HIGH);
  a.set_dedup_string("alice@example.com");
  a.set_status(v1::ALERT_STATUS_OPEN);
  a.set_event_count(12);
  *a.mutable_first_event_time() = Ts(1796551620, 250000000);  // 2026-12-06T10:07:00.250Z
  *a.mutable_last_event_time() = Ts(1796551680);
  *a.mutable_created_time() = Ts(1796551690);
  a.set_alert_context_json(R"({"ip":"198.51.100.7","n":12345678901234567,"nested":{"a":[1,2]}})");
  a.set_description("Many failed logins");
  a.set_reference("https://ref.example/bf");
  a.set_runbook("Lock the account");
  a.add_log_types("Okta.SystemLog");
  a.add_log_types("Okta.Other");
  m.rule_name = "Okta brute force";
  m.tags = {"Okta", "Credential Access"};
  m.link = "https://pantherd.example/alerts/a1b2c3d4";
  m.idempotency_key = "idem-123";
  return m;
}

Struct Parse(const std::string& json) {
  Struct s;
  const auto status = google::protobuf::util::JsonStringToMessage(json, &s);
  EXPECT_TRUE(status.ok()) << status.ToString() << "\n" << json;
  return s;
}

// The value at a dotted path of objects ("a.b.c"); a null Value when absent.
const Value& At(const Struct& s, absl::string_view path) {
  static const Value* const kMissing = new Value();
  const Struct* cur = &s;
  const Value* v = kMissing;
  for (absl::string_view part : absl::StrSplit(path, '.')) {
    if (cur == nullptr) return *kMissing;
    const auto it = cur->fields().find(std::string(part));
    if (it == cur->fields().end()) return *kMissing;
    v = &it->second;
    cur = v->has_struct_value() ? &v->struct_value() : nullptr;
  }
  return *v;
}

bool Has(const Struct& s, absl::string_view path) {
  return At(s, path).kind_case() != Value::KIND_NOT_SET;
}

std::string Str(const Struct& s, absl::string_view path) { return At(s, path).string_value(); }

std::string HeaderOf(const HttpHeaders& headers, absl::string_view name) {
  for (const auto& [k, v] : headers) {
    if (absl::EqualsIgnoreCase(k, name)) return v;
  }
  return "";
}

DestinationConfig Config(std::map<std::string, std::string> settings,
                         std::map<std::string, std::string> secrets) {
  DestinationConfig c;
  c.id = "dest42";
  c.name = "test";
  c.settings = std::move(settings);
  c.secrets = std::move(secrets);
  return c;
}

OutgoingRequest Build(absl::string_view kind, const AlertMessage& m, const DestinationConfig& c) {
  const DestinationKind* k = FindDestinationKind(kind);
  EXPECT_NE(k, nullptr) << kind;
  absl::StatusOr<OutgoingRequest> req = k->build(m, c);
  EXPECT_TRUE(req.ok()) << req.status();
  return req.ok() ? *req : OutgoingRequest();
}

std::string IndependentHmac(absl::string_view key, absl::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), out, &n);
  return absl::BytesToHexString(absl::string_view(reinterpret_cast<char*>(out), n));
}

TEST(DestinationKindsTest, TableNamesAndFields) {
  std::vector<std::string> names;
  for (const DestinationKind* k : DestinationKinds()) names.push_back(k->name);
  EXPECT_THAT(names, ElementsAre("webhook", "slack", "pagerduty", "teams", "jira"));
  EXPECT_EQ(FindDestinationKind("nope"), nullptr);
  EXPECT_EQ(FindDestinationKind("Slack"), nullptr);
  auto fields = [](absl::string_view kind) {
    std::vector<std::string> out;
    for (const DestinationFieldSpec& f : FindDestinationKind(kind)->fields) {
      out.push_back(
          absl::StrCat(f.secret ? "secrets." : "settings.", f.name, f.required ? "!" : ""));
    }
    return out;
  };
  EXPECT_THAT(fields("webhook"),
              ElementsAre("secrets.url!", "secrets.hmac_secret", "settings.signature_header"));
  EXPECT_THAT(fields("slack"), ElementsAre("secrets.url!"));
  EXPECT_THAT(fields("pagerduty"), ElementsAre("secrets.routing_key!", "settings.url"));
  EXPECT_THAT(fields("teams"), ElementsAre("secrets.url!"));
  EXPECT_THAT(fields("jira"),
              ElementsAre("settings.url!", "settings.project!", "settings.issue_type",
                          "settings.user!", "settings.labels", "secrets.api_token!"));
  for (const DestinationKind* k : DestinationKinds()) {
    EXPECT_EQ(k->resolves, std::string(k->name) == "pagerduty") << k->name;
    EXPECT_EQ(k->accepts_headers, std::string(k->name) == "webhook") << k->name;
    EXPECT_NE(k->build, nullptr);
    EXPECT_NE(k->description, nullptr);
  }
}

TEST(DestinationKindsTest, HmacMatchesRfc4231AndIndependentComputation) {
  EXPECT_EQ(HmacSha256Hex("Jefe", "what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  EXPECT_EQ(IndependentHmac("Jefe", "what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

TEST(DestinationKindsTest, NamesAndTimes) {
  EXPECT_EQ(SeverityName(v1::SEVERITY_CRITICAL), "CRITICAL");
  EXPECT_EQ(SeverityName(v1::SEVERITY_MEDIUM), "MEDIUM");
  EXPECT_EQ(SeverityName(v1::SEVERITY_INFO), "INFO");
  EXPECT_EQ(AlertTypeName(v1::ALERT_TYPE_RULE_ERROR), "RULE_ERROR");
  EXPECT_EQ(AlertTypeName(v1::ALERT_TYPE_SIGNAL), "SIGNAL");
  EXPECT_EQ(AlertTypeName(v1::ALERT_TYPE_RULE), "RULE");
  EXPECT_EQ(Rfc3339(Ts(1796551620, 250000000)), "2026-12-06T10:07:00.250Z");
  EXPECT_EQ(Rfc3339(Ts(1796551620)), "2026-12-06T10:07:00.000Z");
  EXPECT_EQ(Rfc3339(google::protobuf::Timestamp()), "");
}

TEST(DestinationKindsTest, CheckHttpUrl) {
  EXPECT_TRUE(CheckHttpUrl("secrets.url", "https://hooks.slack.com/x", true).ok());
  EXPECT_TRUE(CheckHttpUrl("secrets.url", "http://127.0.0.1:8080/hook", true).ok());
  EXPECT_TRUE(CheckHttpUrl("secrets.url", "HTTPS://[::1]:99/", true).ok());
  for (const char* bad : {"ftp://x/y", "https://", "https:///path", "hooks.slack.com/x",
                          "https://a b/", "https://host/\npath", ""}) {
    const absl::Status s = CheckHttpUrl("secrets.url", bad, true);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_EQ(s.message(), "secrets.url: must be an http(s) URL") << bad;
  }
  const absl::Status s = CheckHttpUrl("settings.url", "ftp://jira", false);
  EXPECT_THAT(s.message(), HasSubstr("settings.url: must be an http(s) URL"));
  EXPECT_THAT(s.message(), HasSubstr("ftp://jira"));
}

TEST(WebhookTest, PayloadHasPantherFieldsAndOurs) {
  AlertMessage m = SampleMessage();
  const Struct p = Parse(WebhookPayloadJson(m));
  EXPECT_EQ(Str(p, "id"), "Okta.BruteForce");
  EXPECT_EQ(Str(p, "createdAt"), "2026-12-06T10:08:10.000Z");
  EXPECT_EQ(Str(p, "severity"), "HIGH");
  EXPECT_EQ(Str(p, "type"), "RULE");
  EXPECT_EQ(Str(p, "link"), m.link);
  EXPECT_EQ(Str(p, "title"), m.alert.title());
  EXPECT_EQ(Str(p, "name"), "Okta brute force");
  EXPECT_EQ(Str(p, "alertId"), "a1b2c3d4");
  EXPECT_EQ(Str(p, "description"), "Many failed logins");
  EXPECT_EQ(Str(p, "runbook"), "Lock the account");
  EXPECT_EQ(Str(p, "reference"), "https://ref.example/bf");
  ASSERT_EQ(At(p, "tags").list_value().values_size(), 2);
  EXPECT_EQ(At(p, "tags").list_value().values(1).string_value(), "Credential Access");
  EXPECT_EQ(Str(p, "version"), "7");
  EXPECT_EQ(Str(p, "context.ip"), "198.51.100.7");
  EXPECT_EQ(At(p, "context.nested.a").list_value().values_size(), 2);
  EXPECT_EQ(At(p, "eventCount").number_value(), 12);
  EXPECT_EQ(Str(p, "firstEventTime"), "2026-12-06T10:07:00.250Z");
  EXPECT_EQ(Str(p, "lastEventTime"), "2026-12-06T10:08:00.000Z");
  ASSERT_EQ(At(p, "logTypes").list_value().values_size(), 2);
  EXPECT_EQ(At(p, "logTypes").list_value().values(0).string_value(), "Okta.SystemLog");
  EXPECT_EQ(Str(p, "dedupString"), "alice@example.com");
  EXPECT_EQ(Str(p, "status"), "OPEN");
  EXPECT_EQ(Str(p, "idempotencyKey"), "idem-123");
  EXPECT_EQ(Str(p, "action"), "trigger");
  EXPECT_FALSE(Has(p, "error"));
  // Large integers in the context are kept as written (not through a double).
  EXPECT_THAT(WebhookPayloadJson(m), HasSubstr("12345678901234567"));

  m.rule_name.clear();
  m.action = DeliveryAction::kTest;
  m.alert.set_type(v1::ALERT_TYPE_RULE_ERROR);
  m.alert.mutable_error()->set_type("KeyError");
  m.alert.mutable_error()->set_message("'ip'");
  m.alert.set_alert_context_json("not json {");
  const Struct e = Parse(WebhookPayloadJson(m));
  EXPECT_EQ(Str(e, "name"), "Okta.BruteForce");
  EXPECT_EQ(Str(e, "action"), "test");
  EXPECT_EQ(Str(e, "type"), "RULE_ERROR");
  EXPECT_EQ(Str(e, "error.type"), "KeyError");
  EXPECT_EQ(Str(e, "error.message"), "'ip'");
  EXPECT_EQ(Str(e, "context"), "not json {");
  // Not one JSON object: kept as a string, and the payload stays valid.
  for (const char* text :
       {"[1,2]", R"({"a":1} {"b":2})", R"({"a":1},)", R"({"a":1}])", R"({"a":NaN})",
        R"({"a":"\ud800"})", R"({"a":01})", R"({"a":1.})", R"({"a":tru})", R"({"a":"\x"})",
        R"({"a" 1})", "{\"a\":1} // c", R"({'a':1})", R"({"a":1,})", "{\"a\":\"\x01\"}"}) {
    m.alert.set_alert_context_json(text);
    EXPECT_EQ(Str(Parse(WebhookPayloadJson(m)), "context"), text) << text;
  }
  const std::string deep =
      absl::StrCat("{\"a\":", std::string(100, '['), std::string(100, ']'), "}");
  m.alert.set_alert_context_json(deep);
  EXPECT_EQ(Str(Parse(WebhookPayloadJson(m)), "context"), deep);
  m.alert.set_alert_context_json(
      R"({"s":"\ud83d\ude00 \u00e9 \/ \b","n":-0.5e+3,"t":true,"f":false,"z":null,"e":{},"l":[]})");
  EXPECT_EQ(Str(Parse(WebhookPayloadJson(m)), "context.s"), "😀 é / \b");
  m.alert.set_alert_context_json("  {\"pretty\": [1,\n 2]}\n");
  EXPECT_EQ(At(Parse(WebhookPayloadJson(m)), "context.pretty").list_value().values_size(), 2);
  m.alert.clear_alert_context_json();
  EXPECT_TRUE(At(Parse(WebhookPayloadJson(m)), "context").has_struct_value());
}

TEST(WebhookTest, HeadersAndSignature) {
  const AlertMessage m = SampleMessage();
  DestinationConfig c = Config({}, {{"url", "https://hook.example/in"}, {"hmac_secret", "k3y"}});
  c.headers = {{"X-Team", "secops"}};
  const DestinationKind& kind = *FindDestinationKind("webhook");
  ASSERT_TRUE(ValidateDestinationConfig(kind, c).ok());
  OutgoingRequest req = Build("webhook", m, c);
  EXPECT_EQ(req.url, "https://hook.example/in");
  EXPECT_EQ(req.body, WebhookPayloadJson(m));
  EXPECT_EQ(HeaderOf(req.headers, "Content-Type"), "application/json");
  EXPECT_EQ(HeaderOf(req.headers, "Idempotency-Key"), "idem-123");
  EXPECT_EQ(HeaderOf(req.headers, "X-Pantherd-Signature"),
            absl::StrCat("sha256=", IndependentHmac("k3y", req.body)));
  EXPECT_EQ(HeaderOf(req.headers, "X-Team"), "secops");

  c.settings["signature_header"] = "X-Hub-Signature-256";
  req = Build("webhook", m, c);
  EXPECT_EQ(HeaderOf(req.headers, "X-Pantherd-Signature"), "");
  EXPECT_EQ(HeaderOf(req.headers, "X-Hub-Signature-256"),
            absl::StrCat("sha256=", IndependentHmac("k3y", req.body)));

  c.secrets.erase("hmac_secret");
  req = Build("webhook", m, c);
  EXPECT_EQ(HeaderOf(req.headers, "X-Hub-Signature-256"), "");
}

TEST(ValidationTest, ErrorsNameTheFieldAndNeverTheSecret) {
  const DestinationKind& slack = *FindDestinationKind("slack");
  const DestinationKind& webhook = *FindDestinationKind("webhook");
  const DestinationKind& pd = *FindDestinationKind("pagerduty");
  const DestinationKind& jira = *FindDestinationKind("jira");
  auto expect_error = [](const absl::Status& s, absl::string_view field) {
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
    EXPECT_TRUE(absl::StartsWith(s.message(), field)) << s;
    EXPECT_THAT(s.message(), Not(HasSubstr("SECRETVALUE")));
    EXPECT_THAT(s.message(), Not(HasSubstr("T000")));
  };
  EXPECT_TRUE(ValidateDestinationConfig(slack, Config({}, {{"url", kSlackUrl}})).ok());
  expect_error(ValidateDestinationConfig(slack, Config({}, {})), "secrets.url");
  expect_error(ValidateDestinationConfig(slack, Config({}, {{"url", ""}})), "secrets.url");
  expect_error(ValidateDestinationConfig(
                   slack, Config({}, {{"url", "ftp://hooks.slack.test/T000/SECRETVALUE"}})),
               "secrets.url");
  // A secret given as a setting is refused without echoing it.
  expect_error(ValidateDestinationConfig(slack, Config({{"url", kSlackUrl}}, {{"url", kSlackUrl}})),
               "settings.url");
  expect_error(
      ValidateDestinationConfig(slack, Config({}, {{"url", kSlackUrl}, {"token", "SECRETVALUE"}})),
      "secrets.token:");
  expect_error(ValidateDestinationConfig(slack, Config({{"channel", "x"}}, {{"url", kSlackUrl}})),
               "settings.channel:");
  DestinationConfig with_headers = Config({}, {{"url", kSlackUrl}});
  with_headers.headers = {{"X-A", "b"}};
  expect_error(ValidateDestinationConfig(slack, with_headers), "headers");

  DestinationConfig hook = Config({}, {{"url", kSlackUrl}, {"hmac_secret", "SECRETVALUE"}});
  hook.headers = {{"X-Token", "SECRETVALUE\r\nX-Evil: 1"}};
  expect_error(ValidateDestinationConfig(webhook, hook), "headers.X-Token");
  // Build refuses it too: a bad value never reaches a request.
  absl::StatusOr<OutgoingRequest> built = webhook.build(SampleMessage(), hook);
  ASSERT_FALSE(built.ok());
  expect_error(built.status(), "headers.X-Token");
  hook.headers = {{"X-Long", std::string(9000, 'v')}};
  expect_error(ValidateDestinationConfig(webhook, hook), "headers.X-Long");
  hook.headers.clear();
  for (int i = 0; i < 33; ++i) hook.headers[absl::StrCat("X-H", i)] = "v";
  expect_error(ValidateDestinationConfig(webhook, hook), "headers: at most 32");
  hook.headers = {{"Bad Name", "SECRETVALUE"}};
  expect_error(ValidateDestinationConfig(webhook, hook), "headers");
  for (const char* reserved : {"content-type", "Idempotency-Key", "X-Pantherd-Signature"}) {
    hook.headers = {{reserved, "SECRETVALUE"}};
    expect_error(ValidateDestinationConfig(webhook, hook), "headers.");
  }
  hook.headers = {{"X-Sig", "v"}};
  hook.settings["signature_header"] = "X-Sig";
  expect_error(ValidateDestinationConfig(webhook, hook), "headers.X-Sig");
  hook.settings["signature_header"] = "Bad Header:";
  hook.headers.clear();
  expect_error(ValidateDestinationConfig(webhook, hook), "settings.signature_header");

  EXPECT_TRUE(ValidateDestinationConfig(
                  pd, Config({}, {{"routing_key", "R0123456789abcdef0123456789abcd"}}))
                  .ok());
  expect_error(
      ValidateDestinationConfig(pd, Config({}, {{"routing_key", "SECRETVALUE with space"}})),
      "secrets.routing_key");
  expect_error(ValidateDestinationConfig(pd, Config({}, {{"routing_key", std::string(129, 'k')}})),
               "secrets.routing_key");
  expect_error(ValidateDestinationConfig(
                   pd, Config({{"url", "events.pagerduty.com"}}, {{"routing_key", "k"}})),
               "settings.url");

  auto jira_config = [] {
    return Config({{"url", "https://acme.atlassian.net"}, {"project", "SEC"}, {"user", "a@b.c"}},
                  {{"api_token", "SECRETVALUE"}});
  };
  EXPECT_TRUE(ValidateDestinationConfig(jira, jira_config()).ok());
  DestinationConfig j = jira_config();
  j.settings["project"] = "sec";
  expect_error(ValidateDestinationConfig(jira, j), "settings.project");
  j = jira_config();
  j.settings.erase("user");
  expect_error(ValidateDestinationConfig(jira, j), "settings.user");
  j = jira_config();
  j.secrets.clear();
  expect_error(ValidateDestinationConfig(jira, j), "secrets.api_token");
  j = jira_config();
  j.settings["labels"] = "ok, not ok";
  expect_error(ValidateDestinationConfig(jira, j), "settings.labels");
}

TEST(SlackTest, BlocksAndFallbackText) {
  AlertMessage m = SampleMessage();
  m.alert.set_severity(v1::SEVERITY_CRITICAL);
  const OutgoingRequest req = Build("slack", m, Config({}, {{"url", kSlackUrl}}));
  EXPECT_EQ(req.url, kSlackUrl);
  EXPECT_EQ(HeaderOf(req.headers, "Content-Type"), "application/json");
  EXPECT_EQ(HeaderOf(req.headers, "Idempotency-Key"), "idem-123");
  const Struct p = Parse(req.body);
  EXPECT_EQ(Str(p, "text"), "[CRITICAL] Brute force against alice@example.com");
  const auto& blocks = At(p, "blocks").list_value();
  ASSERT_GE(blocks.values_size(), 4);
  const Struct& header = blocks.values(0).struct_value();
  EXPECT_EQ(Str(header, "type"), "header");
  EXPECT_EQ(Str(header, "text.type"), "plain_text");
  EXPECT_EQ(Str(header, "text.text"), "[CRITICAL] Brute force against alice@example.com");
  const Struct& facts = blocks.values(1).struct_value();
  EXPECT_EQ(Str(facts, "type"), "section");
  const auto& fields = At(facts, "fields").list_value();
  ASSERT_EQ(fields.values_size(), 6);
  EXPECT_EQ(Str(fields.values(0).struct_value(), "text"), "*Rule*\nOkta brute force");
  EXPECT_EQ(Str(fields.values(1).struct_value(), "text"), "*Severity*\nCRITICAL");
  EXPECT_EQ(Str(fields.values(2).struct_value(), "text"), "*Events*\n12");
  EXPECT_EQ(Str(fields.values(3).struct_value(), "text"),
            "*First event*\n2026-12-06T10:07:00.250Z");
  EXPECT_EQ(Str(fields.values(5).struct_value(), "text"),
            "*Log types*\nOkta.SystemLog, Okta.Other");
  bool context = false, button = false;
  for (const Value& b : blocks.values()) {
    const Struct& s = b.struct_value();
    if (absl::StrContains(Str(s, "text.text"), "```{\"ip\":\"198.51.100.7\"")) context = true;
    if (Str(s, "type") == "actions") {
      const Struct& e = At(s, "elements").list_value().values(0).struct_value();
      EXPECT_EQ(Str(e, "type"), "button");
      EXPECT_EQ(Str(e, "text.text"), "View alert");
      EXPECT_EQ(Str(e, "url"), m.link);
      button = true;
    }
  }
  EXPECT_TRUE(context);
  EXPECT_TRUE(button);

  // Test sends, errors, no link, limits.
  m.action = DeliveryAction::kTest;
  m.link.clear();
  m.alert.set_type(v1::ALERT_TYPE_RULE_ERROR);
  m.alert.mutable_error()->set_type("KeyError");
  m.alert.mutable_error()->set_message("'ip' <missing>");
  std::string long_title;
  for (int i = 0; i < 100; ++i) long_title += "é";  // 2 bytes each
  m.alert.set_title(long_title);
  m.alert.set_alert_context_json(absl::StrCat(R"({"big":")", std::string(10000, 'x'), R"("})"));
  const Struct t = Parse(Build("slack", m, Config({}, {{"url", kSlackUrl}})).body);
  EXPECT_TRUE(absl::StartsWith(Str(t, "text"), "[Test] [CRITICAL] éé"));
  const auto& tb = At(t, "blocks").list_value();
  const std::string header_text = Str(tb.values(0).struct_value(), "text.text");
  EXPECT_LE(header_text.size(), 150u);
  EXPECT_TRUE(absl::EndsWith(header_text, "…"));
  EXPECT_TRUE(absl::StartsWith(header_text, "[Test] [CRITICAL] é"));
  bool error = false;
  for (const Value& b : tb.values()) {
    const Struct& s = b.struct_value();
    EXPECT_NE(Str(s, "type"), "actions");
    EXPECT_LE(Str(s, "text.text").size(), 3000u);
    if (absl::StrContains(Str(s, "text.text"), "KeyError")) {
      error = true;
      EXPECT_THAT(Str(s, "text.text"), HasSubstr("'ip' &lt;missing&gt;"));
    }
    if (absl::StrContains(Str(s, "text.text"), "*Context*")) {
      EXPECT_LE(Str(s, "text.text").size(), 2500u + 30u);
    }
  }
  EXPECT_TRUE(error);
}

TEST(PagerDutyTest, TriggerResolveTestAndSeverities) {
  AlertMessage m = SampleMessage();
  const DestinationConfig c = Config({}, {{"routing_key", "R0123456789abcdef0123456789abcd"}});
  OutgoingRequest req = Build("pagerduty", m, c);
  EXPECT_EQ(req.url, "https://events.pagerduty.com/v2/enqueue");
  EXPECT_EQ(HeaderOf(req.headers, "Idempotency-Key"), "idem-123");
  Struct p = Parse(req.body);
  EXPECT_EQ(Str(p, "routing_key"), "R0123456789abcdef0123456789abcd");
  EXPECT_EQ(Str(p, "event_action"), "trigger");
  EXPECT_EQ(Str(p, "dedup_key"), "a1b2c3d4");
  EXPECT_EQ(Str(p, "client"), "pantherd");
  EXPECT_EQ(Str(p, "payload.summary"), m.alert.title());
  EXPECT_EQ(Str(p, "payload.source"), "pantherd");
  EXPECT_EQ(Str(p, "payload.severity"), "error");
  EXPECT_EQ(Str(p, "payload.timestamp"), "2026-12-06T10:08:10.000Z");
  EXPECT_EQ(Str(p, "payload.component"), "Okta.BruteForce");
  EXPECT_EQ(Str(p, "payload.group"), "Okta.SystemLog");
  EXPECT_EQ(Str(p, "payload.class"), "RULE");
  EXPECT_EQ(Str(p, "payload.custom_details.alertId"), "a1b2c3d4");
  EXPECT_EQ(Str(p, "payload.custom_details.context.ip"), "198.51.100.7");
  const Struct& link = At(p, "links").list_value().values(0).struct_value();
  EXPECT_EQ(Str(link, "href"), m.link);
  EXPECT_EQ(Str(link, "text"), "Alert in pantherd");

  const std::pair<v1::Severity, const char*> mapping[] = {{v1::SEVERITY_INFO, "info"},
                                                          {v1::SEVERITY_LOW, "info"},
                                                          {v1::SEVERITY_MEDIUM, "warning"},
                                                          {v1::SEVERITY_HIGH, "error"},
                                                          {v1::SEVERITY_CRITICAL, "critical"}};
  for (const auto& [severity, expected] : mapping) {
    m.alert.set_severity(severity);
    EXPECT_EQ(Str(Parse(Build("pagerduty", m, c).body), "payload.severity"), expected);
  }

  m.action = DeliveryAction::kResolve;
  p = Parse(Build("pagerduty", m, c).body);
  EXPECT_EQ(p.fields_size(), 3);
  EXPECT_EQ(Str(p, "routing_key"), "R0123456789abcdef0123456789abcd");
  EXPECT_EQ(Str(p, "event_action"), "resolve");
  EXPECT_EQ(Str(p, "dedup_key"), "a1b2c3d4");

  m.action = DeliveryAction::kTest;
  m.link.clear();
  m.alert.set_title(std::string(3000, 't'));
  const DestinationConfig custom =
      Config({{"url", "http://127.0.0.1:9/v2/enqueue"}}, {{"routing_key", "k"}});
  req = Build("pagerduty", m, custom);
  EXPECT_EQ(req.url, "http://127.0.0.1:9/v2/enqueue");
  p = Parse(req.body);
  EXPECT_EQ(Str(p, "event_action"), "trigger");
  EXPECT_EQ(Str(p, "dedup_key"), "pantherd-test-dest42");
  EXPECT_FALSE(Has(p, "links"));
  EXPECT_LE(Str(p, "payload.summary").size(), 1024u);
  EXPECT_TRUE(absl::StartsWith(Str(p, "payload.summary"), "[Test] ttt"));
}

TEST(TeamsTest, AdaptiveCard) {
  AlertMessage m = SampleMessage();
  const OutgoingRequest req =
      Build("teams", m, Config({}, {{"url", "https://acme.webhook.office.com/x"}}));
  EXPECT_EQ(HeaderOf(req.headers, "Content-Type"), "application/json");
  const Struct p = Parse(req.body);
  EXPECT_EQ(Str(p, "type"), "message");
  const Struct& att = At(p, "attachments").list_value().values(0).struct_value();
  EXPECT_EQ(Str(att, "contentType"), "application/vnd.microsoft.card.adaptive");
  EXPECT_EQ(Str(att, "content.$schema"), "http://adaptivecards.io/schemas/adaptive-card.json");
  EXPECT_EQ(Str(att, "content.type"), "AdaptiveCard");
  EXPECT_EQ(Str(att, "content.version"), "1.4");
  const auto& body = At(att, "content.body").list_value();
  ASSERT_GE(body.values_size(), 3);
  EXPECT_EQ(Str(body.values(0).struct_value(), "type"), "TextBlock");
  EXPECT_EQ(Str(body.values(0).struct_value(), "weight"), "Bolder");
  EXPECT_EQ(Str(body.values(0).struct_value(), "text"),
            "[HIGH] Brute force against alice@example.com");
  EXPECT_EQ(Str(body.values(1).struct_value(), "type"), "FactSet");
  const auto& facts = At(body.values(1).struct_value(), "facts").list_value();
  ASSERT_EQ(facts.values_size(), 6);
  EXPECT_EQ(Str(facts.values(0).struct_value(), "title"), "Rule");
  EXPECT_EQ(Str(facts.values(2).struct_value(), "value"), "12");
  EXPECT_THAT(Str(body.values(body.values_size() - 1).struct_value(), "text"),
              HasSubstr("198.51.100.7"));
  const Struct& action = At(att, "content.actions").list_value().values(0).struct_value();
  EXPECT_EQ(Str(action, "type"), "Action.OpenUrl");
  EXPECT_EQ(Str(action, "title"), "View alert");
  EXPECT_EQ(Str(action, "url"), m.link);
  m.link.clear();
  EXPECT_FALSE(
      Has(At(Parse(Build("teams", m, Config({}, {{"url", "https://t/x"}})).body), "attachments")
              .list_value()
              .values(0)
              .struct_value(),
          "content.actions"));
}

TEST(JiraTest, IssueRequest) {
  AlertMessage m = SampleMessage();
  DestinationConfig c = Config({{"url", "https://acme.atlassian.net//"},
                                {"project", "SEC"},
                                {"user", "bot@acme.com"},
                                {"labels", "okta, detection,okta"}},
                               {{"api_token", "tok3n"}});
  const OutgoingRequest req = Build("jira", m, c);
  EXPECT_EQ(req.url, "https://acme.atlassian.net/rest/api/2/issue");
  EXPECT_EQ(HeaderOf(req.headers, "Authorization"),
            absl::StrCat("Basic ", absl::Base64Escape("bot@acme.com:tok3n")));
  EXPECT_EQ(HeaderOf(req.headers, "Authorization"), "Basic Ym90QGFjbWUuY29tOnRvazNu");
  EXPECT_EQ(HeaderOf(req.headers, "Content-Type"), "application/json");
  EXPECT_EQ(HeaderOf(req.headers, "Idempotency-Key"), "idem-123");
  const Struct p = Parse(req.body);
  EXPECT_EQ(Str(p, "fields.project.key"), "SEC");
  EXPECT_EQ(Str(p, "fields.issuetype.name"), "Task");
  EXPECT_EQ(Str(p, "fields.summary"), "[HIGH] Brute force against alice@example.com");
  const auto& labels = At(p, "fields.labels").list_value();
  ASSERT_EQ(labels.values_size(), 3);
  EXPECT_EQ(labels.values(0).string_value(), "pantherd");
  EXPECT_EQ(labels.values(1).string_value(), "okta");
  EXPECT_EQ(labels.values(2).string_value(), "detection");
  const std::string description = Str(p, "fields.description");
  EXPECT_THAT(description, HasSubstr("Rule: Okta brute force"));
  EXPECT_THAT(description, HasSubstr("Events: 12"));
  EXPECT_THAT(description, HasSubstr(m.link));
  EXPECT_THAT(description, HasSubstr("198.51.100.7"));
  EXPECT_THAT(description, HasSubstr("Lock the account"));

  c.settings["issue_type"] = "Bug";
  m.alert.set_title(absl::StrCat("line1\nline2 ", std::string(400, 'x')));
  const Struct q = Parse(Build("jira", m, c).body);
  EXPECT_EQ(Str(q, "fields.issuetype.name"), "Bug");
  EXPECT_LE(Str(q, "fields.summary").size(), 255u);
  EXPECT_THAT(Str(q, "fields.summary"), Not(HasSubstr("\n")));
  EXPECT_TRUE(absl::StartsWith(Str(q, "fields.summary"), "[HIGH] line1 line2 xxx"));
}

TEST(EscapingTest, HostileStringsMakeValidJsonInEveryKind) {
  AlertMessage m = SampleMessage();
  const std::string hostile =
      "q\"uote\\ back\nnew\rline\ttab \x01\x1f\x7f </script><b>&amp; Zürich 日本 😀";
  m.alert.set_title(hostile);
  m.alert.set_description(hostile);
  m.alert.set_dedup_string(hostile);
  m.rule_name = hostile;
  m.tags = {hostile};
  m.alert.set_alert_context_json(R"({"s":"q\"uote </script> \u0001 \n Zürich 😀","o":{"k":"v"}})");
  const std::map<std::string, DestinationConfig> configs = {
      {"webhook", Config({}, {{"url", "https://h/x"}, {"hmac_secret", "k"}})},
      {"slack", Config({}, {{"url", kSlackUrl}})},
      {"pagerduty", Config({}, {{"routing_key", "k"}})},
      {"teams", Config({}, {{"url", "https://t/x"}})},
      {"jira",
       Config({{"url", "https://j"}, {"project", "SEC"}, {"user", "u@x"}}, {{"api_token", "t"}})},
  };
  for (const auto& [kind, config] : configs) {
    const std::string body = Build(kind, m, config).body;
    Parse(body);  // Fails the test when invalid.
    EXPECT_THAT(body, Not(HasSubstr("\n"))) << kind;
    EXPECT_THAT(body, Not(HasSubstr("\x01"))) << kind;
  }
  const Struct p = Parse(WebhookPayloadJson(m));
  EXPECT_EQ(Str(p, "title"), hostile);
  EXPECT_EQ(Str(p, "name"), hostile);
  EXPECT_EQ(Str(p, "context.s"), "q\"uote </script> \x01 \n Zürich 😀");
  // Invalid UTF-8 becomes U+FFFD; the JSON stays valid.
  m.alert.set_title("bad \xff\xc3 byte");
  m.alert.set_alert_context_json("{\"k\":\"\xff\"}");
  const Struct bad = Parse(WebhookPayloadJson(m));
  EXPECT_EQ(Str(bad, "title"), "bad \xEF\xBF\xBD\xEF\xBF\xBD byte");
  EXPECT_TRUE(At(bad, "context").has_string_value());
}

TEST(TruncateTest, CutsAtCharacterBoundaries) {
  using destination_internal::TruncateUtf8;
  EXPECT_EQ(TruncateUtf8("short", 10), "short");
  EXPECT_EQ(TruncateUtf8("abcdefghij", 10), "abcdefghij");
  EXPECT_EQ(TruncateUtf8("abcdefghijk", 10), "abcdefg…");
  // "日" is 3 bytes: never cut inside it.
  const std::string cut = TruncateUtf8("日本語日本語", 10);
  EXPECT_LE(cut.size(), 10u);
  EXPECT_EQ(cut, "日本…");
  EXPECT_EQ(destination_internal::JsonString("\x01"), "\"\\u0001\"");
}

// ---- The curl client's POST and the fake receiver --------------------------

TEST(CurlPostTest, ReceiverSeesExactBodyAndHeaders) {
  auto receiver = FakeReceiver::Start();
  ASSERT_TRUE(receiver.ok()) << receiver.status();
  FakeReceiver& r = **receiver;
  r.SetAnswer("/v2/enqueue", {202,
                              R"({"status":"success","dedup_key":"a1b2c3d4"})",
                              {{"Content-Type", "application/json"}}});
  DestinationConfig c =
      Config({}, {{"url", r.url("/hooks/T000/B000/SECRETVALUE")}, {"hmac_secret", "s3cret"}});
  c.headers = {{"X-Custom", "value with spaces"}};
  const AlertMessage m = SampleMessage();
  const OutgoingRequest req = Build("webhook", m, c);
  std::unique_ptr<HttpClient> http = NewCurlHttpClient();
  HttpRequest hr{.url = req.url, .headers = req.headers, .timeout = absl::Seconds(10)};
  absl::StatusOr<HttpResponse> resp = http->Post(hr, req.body, nullptr);
  ASSERT_TRUE(resp.ok()) << resp.status();
  EXPECT_EQ(resp->status, 200);
  EXPECT_EQ(resp->body, "ok");
  ASSERT_TRUE(r.WaitForRequests(1, absl::Seconds(5)));
  FakeReceiver::Request got = r.requests()[0];
  EXPECT_EQ(got.method, "POST");
  EXPECT_EQ(got.path, "/hooks/T000/B000/SECRETVALUE");
  EXPECT_EQ(got.body, req.body);
  EXPECT_EQ(got.attempt, 1);
  EXPECT_EQ(got.Header("content-type"), "application/json");
  EXPECT_EQ(got.Header("IDEMPOTENCY-KEY"), "idem-123");
  EXPECT_EQ(got.Header("X-Custom"), "value with spaces");
  EXPECT_EQ(got.Header("X-Pantherd-Signature"),
            absl::StrCat("sha256=", IndependentHmac("s3cret", got.body)));
  EXPECT_FALSE(got.HasHeader("Expect"));

  // The same delivery again: the receiver counts a second attempt.
  ASSERT_TRUE(http->Post(hr, req.body, nullptr).ok());
  ASSERT_TRUE(r.WaitForRequests(2, absl::Seconds(5)));
  EXPECT_EQ(r.requests()[1].attempt, 2);

  // A per-path answer, and a GET.
  const OutgoingRequest pd =
      Build("pagerduty", m, Config({{"url", r.url("/v2/enqueue")}}, {{"routing_key", "k"}}));
  resp = http->Post({.url = pd.url, .headers = pd.headers}, pd.body, nullptr);
  ASSERT_TRUE(resp.ok()) << resp.status();
  EXPECT_EQ(resp->status, 202);
  EXPECT_EQ(resp->Header("Content-Type"), "application/json");
  EXPECT_THAT(resp->body, HasSubstr("success"));
  resp = http->Get({.url = r.url("/health?x=1")}, nullptr);
  ASSERT_TRUE(resp.ok()) << resp.status();
  EXPECT_EQ(resp->status, 200);
  ASSERT_TRUE(r.WaitForRequests(4, absl::Seconds(5)));
  EXPECT_EQ(r.requests()[3].method, "GET");
  EXPECT_EQ(r.requests()[3].path, "/health?x=1");
  EXPECT_EQ(r.requests()[3].body, "");
}

TEST(CurlPostTest, RefusedConnectionErrorHidesTheUrl) {
  auto receiver = FakeReceiver::Start();
  ASSERT_TRUE(receiver.ok()) << receiver.status();
  const std::string url = (*receiver)->url("/services/T000/B000/SECRETVALUE");
  (*receiver)->Stop();
  std::unique_ptr<HttpClient> http = NewCurlHttpClient();
  absl::StatusOr<HttpResponse> resp =
      http->Post({.url = url, .headers = {{"Content-Type", "application/json"}}}, "{}", nullptr);
  ASSERT_FALSE(resp.ok());
  EXPECT_EQ(resp.status().code(), absl::StatusCode::kUnavailable) << resp.status();
  EXPECT_THAT(resp.status().message(), Not(HasSubstr("SECRETVALUE")));
  EXPECT_THAT(resp.status().message(), Not(HasSubstr("/services")));
}

TEST(CurlPostTest, FaultsTimeoutsDownAndRestart) {
  auto receiver = FakeReceiver::Start(FakeReceiver::Options{.max_body_bytes = 1000});
  ASSERT_TRUE(receiver.ok()) << receiver.status();
  FakeReceiver& r = **receiver;
  const int port = r.port();
  const std::string url = r.url("/T000/SECRETVALUE");
  std::unique_ptr<HttpClient> http = NewCurlHttpClient();
  const HttpRequest req{
      .url = url, .headers = {{"Content-Type", "application/json"}}, .timeout = absl::Seconds(10)};

  r.Inject({FakeReceiver::Status(429, "slow down", {{"Retry-After", "2"}}),
            FakeReceiver::Status(500, "boom"), FakeReceiver::Drop()});
  absl::StatusOr<HttpResponse> resp = http->Post(req, "{}", nullptr);
  ASSERT_TRUE(resp.ok()) << resp.status();
  EXPECT_EQ(resp->status, 429);
  EXPECT_EQ(resp->Header("Retry-After"), "2");
  EXPECT_EQ(resp->body, "slow down");
  resp = http->Post(req, "{}", nullptr);
  ASSERT_TRUE(resp.ok()) << resp.status();
  EXPECT_EQ(resp->status, 500);
  resp = http->Post(req, "{}", nullptr);
  ASSERT_FALSE(resp.ok());
  EXPECT_EQ(resp.status().code(), absl::StatusCode::kUnavailable) << resp.status();
  EXPECT_THAT(resp.status().message(), Not(HasSubstr("SECRETVALUE")));
  EXPECT_EQ(r.faults_pending(), 0);
  EXPECT_EQ(r.requests()[2].status, 0);

  // A delay beyond the client's timeout.
  r.Inject({FakeReceiver::Delay(absl::Seconds(3))});
  HttpRequest quick = req;
  quick.timeout = absl::Milliseconds(300);
  resp = http->Post(quick, "{}", nullptr);
  ASSERT_FALSE(resp.ok());
  EXPECT_EQ(resp.status().code(), absl::StatusCode::kDeadlineExceeded) << resp.status();
  EXPECT_THAT(resp.status().message(), Not(HasSubstr("SECRETVALUE")));

  // Too large a body.
  resp = http->Post(req, std::string(5000, 'x'), nullptr);
  ASSERT_TRUE(resp.ok()) << resp.status();
  EXPECT_EQ(resp->status, 413);

  // Down: connections are closed at once, nothing is recorded.
  const int before = r.request_count();
  r.SetDown(true);
  resp = http->Post(req, "{}", nullptr);
  ASSERT_FALSE(resp.ok());
  EXPECT_EQ(resp.status().code(), absl::StatusCode::kUnavailable) << resp.status();
  EXPECT_EQ(r.request_count(), before);
  r.SetDown(false);
  resp = http->Post(req, "{}", nullptr);
  ASSERT_TRUE(resp.ok()) << resp.status();
  EXPECT_EQ(resp->status, 200);

  // An empty body.
  resp = http->Post(req, "", nullptr);
  ASSERT_TRUE(resp.ok()) << resp.status();
  EXPECT_EQ(resp->status, 200);
  ASSERT_TRUE(r.WaitForRequests(before + 2, absl::Seconds(5)));
  EXPECT_EQ(r.requests().back().body, "");
  EXPECT_EQ(r.requests().back().Header("Content-Length"), "0");

  // Stop, then a new receiver on the same port.
  r.Stop();
  EXPECT_FALSE(http->Post(req, "{}", nullptr).ok());
  auto again = FakeReceiver::Start(FakeReceiver::Options{.port = port});
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ((*again)->port(), port);
  resp = http->Post(req, "{\"n\":1}", nullptr);
  ASSERT_TRUE(resp.ok()) << resp.status();
  EXPECT_EQ(resp->status, 200);
  ASSERT_TRUE((*again)->WaitForRequests(1, absl::Seconds(5)));
  EXPECT_EQ((*again)->requests()[0].body, "{\"n\":1}");
  EXPECT_FALSE((*again)->WaitForRequests(2, absl::Milliseconds(50)));
}

TEST(CurlPostTest, BadUrlsAreRefusedWithoutQuotingThem) {
  std::unique_ptr<HttpClient> http = NewCurlHttpClient();
  for (const char* url :
       {"htp://127.0.0.1:1/T000/SECRETVALUE", "http://127.0.0.1:1/se cret/SECRETVALUE",
        "http://[::1/SECRETVALUE", "http:///SECRETVALUE"}) {
    absl::StatusOr<HttpResponse> resp = http->Post({.url = url}, "{}", nullptr);
    ASSERT_FALSE(resp.ok()) << url;
    EXPECT_THAT(std::string(resp.status().message()), Not(HasSubstr("SECRETVALUE")))
        << resp.status();
  }
}

TEST(CurlPostTest, CancelledPost) {
  auto receiver = FakeReceiver::Start();
  ASSERT_TRUE(receiver.ok()) << receiver.status();
  (*receiver)->Inject({FakeReceiver::Delay(absl::Seconds(5))});
  std::atomic<bool> cancel(false);
  std::thread canceller([&] {
    absl::SleepFor(absl::Milliseconds(200));
    cancel.store(true);
  });
  std::unique_ptr<HttpClient> http = NewCurlHttpClient();
  const absl::Time start = absl::Now();
  absl::StatusOr<HttpResponse> resp =
      http->Post({.url = (*receiver)->url("/x"), .timeout = absl::Seconds(10)}, "{}", &cancel);
  canceller.join();
  ASSERT_FALSE(resp.ok());
  EXPECT_EQ(resp.status().code(), absl::StatusCode::kCancelled);
  EXPECT_LT(absl::Now() - start, absl::Seconds(4));
}

}  // namespace
}  // namespace pantherd::server
