// `pantherctl destinations ...` and `alerts resend` against an in-process
// fake DetectionService.
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "client/fake_pantherd.h"
#include "client/output.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/time_util.h"
#include "gtest/gtest.h"

namespace pantherd::client {
namespace {

namespace fs = std::filesystem;
namespace v1 = ::pantherd::v1;
using google::protobuf::util::TimeUtil;
using ::pantherd::client::testing::CliResult;
using ::pantherd::client::testing::FakeDetectionService;
using ::pantherd::client::testing::FakePantherd;
using ::pantherd::client::testing::RunPantherctl;
using ::testing::ContainsRegex;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::SizeIs;

// What the secret files hold; no output may ever contain them.
constexpr char kSecretUrl[] = "https://hooks.slack.com/services/T000/B000/XXsecretXX";
constexpr char kHmacKey[] = "hmac-KEY-do-not-print";
constexpr char kHeaderValue[] = "Bearer hdr-SECRET-value";

class DestinationsCommandsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(server_.ok());
    dir_ = fs::temp_directory_path() /
           absl::StrCat("pantherctl_destinations_", getpid(), "_",
                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
    secret_file_ = Write("secret", absl::StrCat(kSecretUrl, "\n"));
    hmac_file_ = Write("hmac", absl::StrCat(kHmacKey, "\r\n"));
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string Write(const std::string& name, const std::string& content) {
    const std::string path = (dir_ / name).string();
    std::ofstream(path, std::ios::binary) << content;
    return path;
  }

  CliResult Run(std::vector<std::string> args) {
    args.insert(args.begin(), {"--server", server_.address()});
    return RunPantherctl(args);
  }

  static void ExpectNoSecret(const CliResult& r) {
    for (const char* secret : {kSecretUrl, "XXsecretXX", kHmacKey, kHeaderValue, "hdr-SECRET"}) {
      EXPECT_THAT(r.out, Not(HasSubstr(secret)));
      EXPECT_THAT(r.err, Not(HasSubstr(secret)));
    }
  }

  static v1::Destination MakeDestination(const std::string& id, const std::string& name,
                                         const std::string& kind) {
    v1::Destination d;
    d.set_id(id);
    d.set_name(name);
    d.set_kind(kind);
    d.add_secrets_set("url");
    return d;
  }

  FakeDetectionService detection_;
  FakePantherd server_{{&detection_}};
  fs::path dir_;
  std::string secret_file_;
  std::string hmac_file_;
};

TEST_F(DestinationsCommandsTest, AddSendsTheSecretFileUnderEachKindsSecretName) {
  const std::vector<std::pair<std::string, std::string>> kinds = {{"webhook", "url"},
                                                                  {"slack", "url"},
                                                                  {"pagerduty", "routing_key"},
                                                                  {"teams", "url"},
                                                                  {"jira", "api_token"}};
  for (const auto& [kind, secret] : kinds) {
    std::vector<std::string> args = {"destinations", "add",           kind,        "--name",
                                     "d-" + kind,    "--secret-file", secret_file_};
    if (kind == "jira") {
      args.insert(args.end(), {"--set", "url=https://acme.atlassian.net", "--set", "project=SEC",
                               "--set", "user=bot@acme.com"});
    }
    CliResult r = Run(args);
    ASSERT_EQ(r.code, 0) << kind << ": " << r.err;
    const v1::AddDestinationRequest& req = detection_.add_destination_requests.back();
    EXPECT_EQ(req.kind(), kind);
    EXPECT_EQ(req.name(), "d-" + kind);
    ASSERT_EQ(req.secrets().size(), 1u) << kind;
    ASSERT_TRUE(req.secrets().contains(secret)) << kind;
    EXPECT_EQ(req.secrets().at(secret), kSecretUrl) << kind;  // Final newline dropped.
    EXPECT_THAT(r.out, ContainsRegex(absl::StrCat("Kind: +", kind, "\n")));
    EXPECT_THAT(r.out, ContainsRegex(absl::StrCat("Secrets: +", secret, ": \\(set\\)\n")));
    ExpectNoSecret(r);
  }
  const v1::AddDestinationRequest& jira = detection_.add_destination_requests.back();
  EXPECT_EQ(jira.settings().at("project"), "SEC");
  EXPECT_EQ(jira.settings().at("url"), "https://acme.atlassian.net");
  EXPECT_EQ(jira.settings().at("user"), "bot@acme.com");

  // --secret NAME=FILE also fills the main secret.
  CliResult r = Run({"destinations", "add", "slack", "--name", "s2", "--secret",
                     absl::StrCat("url=", secret_file_)});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(detection_.add_destination_requests.back().secrets().at("url"), kSecretUrl);

  // JSON: the response, without the secret (the server never returns it).
  r = Run({"--output", "json", "destinations", "add", "slack", "--name", "s3", "--secret-file",
           secret_file_});
  ASSERT_EQ(r.code, 0) << r.err;
  v1::AddDestinationResponse parsed;
  ASSERT_TRUE(JsonToMessage(r.out, &parsed).ok()) << r.out;
  EXPECT_EQ(parsed.destination().name(), "s3");
  EXPECT_THAT(r.out, HasSubstr("\"secretsSet\": [\n   \"url\"\n  ]"));
  ExpectNoSecret(r);
}

TEST_F(DestinationsCommandsTest, AddWebhookWithHmacHeadersSettingsAndFilters) {
  CliResult r = Run({"destinations",
                     "add",
                     "webhook",
                     "--name",
                     "soc",
                     "--secret-file",
                     secret_file_,
                     "--hmac-secret-file",
                     hmac_file_,
                     "--header",
                     "X-Team: sec-ops",
                     "--header",
                     absl::StrCat("Authorization:", kHeaderValue, "  "),
                     "--set",
                     "signature_header=X-Sig",
                     "--min-severity",
                     "HIGH",
                     "--alert-type",
                     "rule",
                     "--alert-type",
                     "rule_error",
                     "--rule",
                     "Okta.FailedLogin",
                     "--rule",
                     "Okta.MFA",
                     "--log-type",
                     "Okta.SystemLog"});
  ASSERT_EQ(r.code, 0) << r.err;
  ASSERT_THAT(detection_.add_destination_requests, SizeIs(1));
  const v1::AddDestinationRequest& req = detection_.add_destination_requests[0];
  EXPECT_EQ(req.secrets().at("url"), kSecretUrl);
  EXPECT_EQ(req.secrets().at("hmac_secret"), kHmacKey);  // CRLF dropped.
  EXPECT_EQ(req.headers().size(), 2u);
  EXPECT_EQ(req.headers().at("X-Team"), "sec-ops");
  EXPECT_EQ(req.headers().at("Authorization"), kHeaderValue);  // Trimmed.
  EXPECT_EQ(req.settings().at("signature_header"), "X-Sig");
  EXPECT_EQ(req.filters().min_severity(), v1::SEVERITY_HIGH);
  ASSERT_THAT(req.filters().alert_types(), SizeIs(2));
  EXPECT_EQ(req.filters().alert_types(0), v1::ALERT_TYPE_RULE);
  EXPECT_EQ(req.filters().alert_types(1), v1::ALERT_TYPE_RULE_ERROR);
  ASSERT_THAT(req.filters().rule_ids(), SizeIs(2));
  EXPECT_EQ(req.filters().rule_ids(1), "Okta.MFA");
  ASSERT_THAT(req.filters().log_types(), SizeIs(1));
  EXPECT_EQ(req.filters().log_types(0), "Okta.SystemLog");

  EXPECT_THAT(r.out, ContainsRegex("Secrets: +hmac_secret: \\(set\\), url: \\(set\\)\n"));
  EXPECT_THAT(r.out, ContainsRegex("Headers: +Authorization: \\(set\\), X-Team: \\(set\\)\n"));
  EXPECT_THAT(r.out, ContainsRegex("Settings: +signature_header=X-Sig\n"));
  EXPECT_THAT(r.out, ContainsRegex("Min severity: +HIGH\n"));
  EXPECT_THAT(r.out, ContainsRegex("Alert types: +RULE,RULE_ERROR\n"));
  EXPECT_THAT(r.out, ContainsRegex("Rules: +Okta.FailedLogin,Okta.MFA\n"));
  EXPECT_THAT(r.out, ContainsRegex("Log types: +Okta.SystemLog\n"));
  EXPECT_THAT(r.out, Not(HasSubstr("sec-ops")));  // Header values are secrets too.
  ExpectNoSecret(r);

  // Without filters: no severity floor, the default types.
  r = Run({"destinations", "add", "slack", "--name", "all", "--secret-file", secret_file_});
  ASSERT_EQ(r.code, 0) << r.err;
  const v1::DestinationFilters& none = detection_.add_destination_requests[1].filters();
  EXPECT_EQ(none.min_severity(), v1::SEVERITY_UNSPECIFIED);
  EXPECT_THAT(none.alert_types(), IsEmpty());
  EXPECT_THAT(r.out, ContainsRegex("Min severity: +any\n"));
  EXPECT_THAT(r.out, ContainsRegex("Alert types: +RULE,RULE_ERROR \\(default\\)\n"));
}

TEST_F(DestinationsCommandsTest, HeaderErrorsNameTheFlagButNotTheValue) {
  const std::vector<std::string> base = {"destinations",  "add",        "webhook", "--name", "w",
                                         "--secret-file", secret_file_, "--header"};
  auto run_with_header = [&](const std::string& header) {
    std::vector<std::string> args = base;
    args.push_back(header);
    return Run(args);
  };
  CliResult r = run_with_header(absl::StrCat("Authorization=", kHeaderValue));  // No ':'.
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, HasSubstr("--header: expected 'Name: value'"));
  ExpectNoSecret(r);
  r = run_with_header(absl::StrCat("Bad Name: ", kHeaderValue));
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, HasSubstr("--header: \"Bad Name\" is not a header name"));
  ExpectNoSecret(r);
  r = run_with_header("X-Empty:");
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, HasSubstr("--header X-Empty: empty value"));
  r = Run({"destinations", "add", "webhook", "--name", "w", "--secret-file", secret_file_,
           "--header", "X-A: 1", "--header", "x-a: 2"});
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, HasSubstr("--header x-a: given twice"));
  r = Run({"destinations", "add", "slack", "--name", "s", "--secret-file", secret_file_, "--header",
           "X-A: 1"});
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, HasSubstr("webhook destinations only"));
  r = Run({"destinations", "add", "slack", "--name", "s", "--secret-file", secret_file_,
           "--hmac-secret-file", hmac_file_});
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, HasSubstr("--hmac-secret-file"));
  EXPECT_THAT(detection_.add_destination_requests, IsEmpty());
}

TEST_F(DestinationsCommandsTest, SetErrorsNameTheFlag) {
  const std::vector<std::string> base = {"destinations",  "add",       "jira", "--name", "j",
                                         "--secret-file", secret_file_};
  auto run_with = [&](const std::vector<std::string>& extra) {
    std::vector<std::string> args = base;
    args.insert(args.end(), extra.begin(), extra.end());
    return Run(args);
  };
  CliResult r = run_with({"--set", "foo"});
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, HasSubstr("pantherctl: error: --set foo: expected KEY=VALUE"));
  r = run_with({"--set", "=x"});
  EXPECT_THAT(r.err, HasSubstr("--set =x: expected KEY=VALUE"));
  r = run_with({"--set", "project=A", "--set", "project=B"});
  EXPECT_THAT(r.err, HasSubstr("--set project: given twice"));
  r = run_with({"--set", "project="});
  EXPECT_THAT(r.err, HasSubstr("--set project: empty value"));
  // A secret on the command line is refused, without repeating it.
  r = Run({"destinations", "add", "slack", "--name", "s", "--secret-file", secret_file_, "--set",
           absl::StrCat("url=", kSecretUrl)});
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, HasSubstr("--set url: url is a secret of slack destinations"));
  ExpectNoSecret(r);
  r = run_with({"--set", absl::StrCat("api_token=", kHmacKey)});
  EXPECT_THAT(r.err, HasSubstr("--set api_token: api_token is a secret of jira"));
  ExpectNoSecret(r);
  // A setting is not a secret.
  r = run_with({"--secret", absl::StrCat("project=", secret_file_)});
  EXPECT_THAT(r.err, HasSubstr("--secret project: project is a setting of jira"));
  ExpectNoSecret(r);
  r = run_with({"--secret", "novalue"});
  EXPECT_THAT(r.err, HasSubstr("--secret novalue: expected NAME=FILE"));
  EXPECT_THAT(detection_.add_destination_requests, IsEmpty());
}

TEST_F(DestinationsCommandsTest, SecretFileErrorsNameTheFlagAndTheFile) {
  const std::string missing = (dir_ / "missing").string();
  CliResult r = Run({"destinations", "add", "slack", "--name", "s", "--secret-file", missing});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err, absl::StrCat("pantherctl: error: --secret-file: cannot read ", missing,
                                " (No such file or directory)\n"));
  const std::string empty = Write("empty", " \n\n");
  r = Run({"destinations", "add", "slack", "--name", "s", "--secret-file", empty});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err, absl::StrCat("pantherctl: error: --secret-file: ", empty, " is empty\n"));
  const std::string big = Write("big", std::string(64 * 1024 + 1, 'k'));
  r = Run({"destinations", "add", "slack", "--name", "s", "--secret-file", big});
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, HasSubstr(absl::StrCat("--secret-file: ", big, " is larger than 64 KiB")));
  EXPECT_THAT(r.err, Not(HasSubstr("kkkk")));
  // Exactly 64 KiB is accepted.
  const std::string max = Write("max", std::string(64 * 1024, 'k'));
  r = Run({"destinations", "add", "slack", "--name", "s", "--secret-file", max});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out + r.err, Not(HasSubstr("kkkk")));
  ASSERT_THAT(detection_.add_destination_requests, SizeIs(1));
  EXPECT_EQ(detection_.add_destination_requests[0].secrets().at("url").size(), 64u * 1024);

  r = Run({"destinations", "add", "slack", "--name", "s", "--secret-file", dir_.string()});
  EXPECT_THAT(r.err, HasSubstr("is a directory"));
  r = Run({"destinations", "add", "webhook", "--name", "w", "--secret-file", secret_file_,
           "--secret", absl::StrCat("hmac_secret=", missing)});
  EXPECT_THAT(r.err, HasSubstr(absl::StrCat("--secret hmac_secret: cannot read ", missing)));
  r = Run({"destinations", "add", "webhook", "--name", "w", "--secret-file", secret_file_,
           "--hmac-secret-file", empty});
  EXPECT_THAT(r.err, HasSubstr(absl::StrCat("--hmac-secret-file: ", empty, " is empty")));
  // The secret itself in place of its file is refused without repeating it.
  r = Run({"destinations", "add", "slack", "--name", "s", "--secret-file", kSecretUrl});
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, HasSubstr("--secret-file: expected a file holding the secret"));
  ExpectNoSecret(r);
  r = Run({"destinations", "add", "slack", "--name", "s", "--secret",
           absl::StrCat("url=", kSecretUrl)});
  EXPECT_THAT(r.err, HasSubstr("--secret url: expected a file holding the secret"));
  ExpectNoSecret(r);
  r = Run({"destinations", "add", "pagerduty", "--name", "p"});
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, HasSubstr("--secret-file FILE is required"));
  EXPECT_THAT(r.err, HasSubstr("routing_key"));
  r = Run({"destinations", "add", "slack", "--name", "s", "--secret-file", secret_file_, "--secret",
           absl::StrCat("url=", secret_file_)});
  EXPECT_THAT(r.err, HasSubstr("the url secret is given twice"));
  ExpectNoSecret(r);
  EXPECT_THAT(detection_.add_destination_requests, SizeIs(1));
}

TEST_F(DestinationsCommandsTest, UnknownKindListsTheKinds) {
  CliResult r = Run({"destinations", "add", "email", "--name", "e", "--secret-file", secret_file_});
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.err, HasSubstr("unknown kind \"email\" (kinds: webhook, slack, pagerduty, teams, "
                               "jira)"));
  EXPECT_THAT(detection_.add_destination_requests, IsEmpty());
}

TEST_F(DestinationsCommandsTest, ServerErrorsNeverEchoTheSecret) {
  detection_.destinations_error =
      grpc::Status(grpc::StatusCode::ALREADY_EXISTS, "name: a destination named \"s\" exists");
  for (const char* format : {"table", "json"}) {
    CliResult r = Run({"--output", format, "destinations", "add", "slack", "--name", "s",
                       "--secret-file", secret_file_, "--hmac-secret-file", hmac_file_});
    EXPECT_EQ(r.code, 1);
    ExpectNoSecret(r);
    r = Run({"--output", format, "destinations", "add", "webhook", "--name", "s", "--secret-file",
             secret_file_, "--hmac-secret-file", hmac_file_, "--header",
             absl::StrCat("Authorization: ", kHeaderValue)});
    EXPECT_EQ(r.code, 1);
    EXPECT_THAT(r.err, HasSubstr("exists"));
    EXPECT_THAT(r.out, IsEmpty());
    ExpectNoSecret(r);
  }
}

TEST_F(DestinationsCommandsTest, ListPrintsTableJsonAndCsv) {
  v1::Destination slack = MakeDestination("d1", "team-slack", "slack");
  slack.mutable_filters()->set_min_severity(v1::SEVERITY_HIGH);
  v1::Destination hook = MakeDestination("d2", "soc-webhook", "webhook");
  hook.mutable_filters()->add_alert_types(v1::ALERT_TYPE_RULE_ERROR);
  hook.mutable_filters()->add_rule_ids("A");
  hook.mutable_filters()->add_rule_ids("B");
  hook.mutable_filters()->add_log_types("Okta.SystemLog");
  detection_.destinations = {slack, hook};
  CliResult r = Run({"destinations", "list"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out,
            "ID  NAME         KIND     MIN-SEVERITY  FILTERS\n"
            "d1  team-slack   slack    HIGH          -\n"
            "d2  soc-webhook  webhook  -             types=RULE_ERROR rules=A,B "
            "log_types=Okta.SystemLog\n");
  r = Run({"--output", "csv", "destinations", "list"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out,
              HasSubstr("ID,NAME,KIND,MIN-SEVERITY,FILTERS\r\nd1,team-slack,slack,HIGH,-\r\n"));
  r = Run({"--output", "json", "destinations", "list"});
  ASSERT_EQ(r.code, 0) << r.err;
  v1::ListDestinationsResponse parsed;
  ASSERT_TRUE(JsonToMessage(r.out, &parsed).ok()) << r.out;
  ASSERT_THAT(parsed.destinations(), SizeIs(2));
  EXPECT_EQ(parsed.destinations(1).filters().rule_ids(1), "B");
  EXPECT_THAT(r.out, HasSubstr("\"minSeverity\": \"HIGH\""));
}

TEST_F(DestinationsCommandsTest, GetShowsFieldsFiltersSecretNamesAndStats) {
  v1::Destination jira = MakeDestination("d3", "jira-sec", "jira");
  jira.clear_secrets_set();
  jira.add_secrets_set("api_token");
  (*jira.mutable_settings())["url"] = "https://acme.atlassian.net";
  (*jira.mutable_settings())["project"] = "SEC";
  jira.mutable_filters()->set_min_severity(v1::SEVERITY_CRITICAL);
  jira.set_created_by("alice");
  *jira.mutable_created_time() = TimeUtil::SecondsToTimestamp(1764000000);
  detection_.destinations = {jira};
  detection_.destination_stats.set_pending(3);
  *detection_.destination_stats.mutable_oldest_pending_time() =
      TimeUtil::SecondsToTimestamp(absl::ToUnixSeconds(absl::Now()) - 125);
  detection_.destination_stats.set_delivered(120);
  detection_.destination_stats.set_failed(2);
  detection_.destination_stats.set_retried(7);
  CliResult r = Run({"destinations", "get", "jira-sec"});
  ASSERT_EQ(r.code, 0) << r.err;
  ASSERT_THAT(detection_.get_destination_requests, SizeIs(1));
  EXPECT_EQ(detection_.get_destination_requests[0].destination(), "jira-sec");
  EXPECT_THAT(r.out, ContainsRegex("ID: +d3\n"));
  EXPECT_THAT(r.out, ContainsRegex("Name: +jira-sec\n"));
  EXPECT_THAT(r.out, ContainsRegex("Settings: +project=SEC, url=https://acme.atlassian.net\n"));
  EXPECT_THAT(r.out, ContainsRegex("Secrets: +api_token: \\(set\\)\n"));
  EXPECT_THAT(r.out, ContainsRegex("Min severity: +CRITICAL\n"));
  EXPECT_THAT(r.out, ContainsRegex("Rules: +any\n"));
  EXPECT_THAT(r.out, ContainsRegex("Created by: +alice\n"));
  EXPECT_THAT(r.out, ContainsRegex("Created: +2025-11-24T16:00:00Z\n"));
  EXPECT_THAT(r.out, ContainsRegex("Pending: +3\n"));
  EXPECT_THAT(r.out, ContainsRegex("Oldest pending: +2m[0-9]+s ago \\("));
  EXPECT_THAT(r.out, ContainsRegex("Delivered: +120\n"));
  EXPECT_THAT(r.out, ContainsRegex("Failed: +2\n"));
  EXPECT_THAT(r.out, ContainsRegex("Retried: +7\n"));
  r = Run({"--output", "json", "destinations", "get", "d3"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("\"delivered\": 120"));
  r = Run({"destinations", "get", "nope"});
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, HasSubstr("no such destination"));
}

TEST_F(DestinationsCommandsTest, UpdateSendsOnlyWhatIsGiven) {
  detection_.destinations = {MakeDestination("d1", "team-slack", "slack"),
                             MakeDestination("d2", "pd", "pagerduty")};
  CliResult r = Run({"destinations", "update", "team-slack", "--name", "sec-slack"});
  ASSERT_EQ(r.code, 0) << r.err;
  ASSERT_THAT(detection_.update_destination_requests, SizeIs(1));
  const v1::UpdateDestinationRequest& rename = detection_.update_destination_requests[0];
  EXPECT_EQ(rename.destination(), "team-slack");
  EXPECT_EQ(rename.name(), "sec-slack");
  EXPECT_FALSE(rename.has_filters());
  EXPECT_TRUE(rename.secrets().empty());
  EXPECT_THAT(detection_.get_destination_requests, IsEmpty());  // The kind was not needed.
  EXPECT_THAT(r.out, ContainsRegex("Name: +sec-slack\n"));

  // --secret-file fills the kind's main secret: routing_key for PagerDuty.
  r = Run({"destinations", "update", "pd", "--secret-file", secret_file_, "--set",
           "url=", "--min-severity", "medium", "--rule", "A"});
  ASSERT_EQ(r.code, 0) << r.err;
  const v1::UpdateDestinationRequest& req = detection_.update_destination_requests[1];
  EXPECT_FALSE(req.has_name());
  ASSERT_TRUE(req.secrets().contains("routing_key"));
  EXPECT_EQ(req.secrets().at("routing_key"), kSecretUrl);
  EXPECT_EQ(req.settings().at("url"), "");  // Removes the setting.
  ASSERT_TRUE(req.has_filters());
  EXPECT_EQ(req.filters().min_severity(), v1::SEVERITY_MEDIUM);
  ASSERT_THAT(req.filters().rule_ids(), SizeIs(1));
  ExpectNoSecret(r);

  r = Run({"destinations", "update", "d1", "--clear-filters", "--header",
           "X-Old:", "--remove-secret", "hmac_secret"});
  ASSERT_EQ(r.code, 0) << r.err;
  const v1::UpdateDestinationRequest& clear = detection_.update_destination_requests[2];
  ASSERT_TRUE(clear.has_filters());
  EXPECT_EQ(clear.filters().ByteSizeLong(), 0u);
  EXPECT_EQ(clear.headers().at("X-Old"), "");
  EXPECT_EQ(clear.secrets().at("hmac_secret"), "");

  r = Run({"destinations", "update", "d1"});
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, HasSubstr("nothing to change"));
  r = Run({"destinations", "update", "d1", "--clear-filters", "--rule", "A"});
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, HasSubstr("--clear-filters"));
  r = Run({"destinations", "update", "team-slack", "--set", absl::StrCat("url=", kSecretUrl)});
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, HasSubstr("--set url: url is a secret of slack destinations"));
  ExpectNoSecret(r);
  r = Run({"destinations", "update", "gone", "--secret-file", secret_file_});
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, HasSubstr("no such destination"));
  ExpectNoSecret(r);
  EXPECT_THAT(detection_.update_destination_requests, SizeIs(3));
}

TEST_F(DestinationsCommandsTest, TestPrintsTheAnswerAndFailsWhenNotOk) {
  v1::TestDestinationResponse& answer = detection_.test_destination_response;
  answer.set_ok(true);
  answer.set_http_status(200);
  answer.set_latency_ms(35);
  CliResult r = Run({"destinations", "test", "team-slack"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "ok: HTTP 200 in 35 ms\n");
  ASSERT_THAT(detection_.test_destination_requests, SizeIs(1));
  EXPECT_EQ(detection_.test_destination_requests[0].destination(), "team-slack");

  answer.set_ok(false);
  answer.set_http_status(404);
  answer.set_latency_ms(120);
  answer.set_error("the receiver refused the request (HTTP 404)");
  answer.set_response_body("no_team");
  r = Run({"destinations", "test", "team-slack"});
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.out, HasSubstr("failed: HTTP 404 in 120 ms\n"));
  EXPECT_THAT(r.out, ContainsRegex("Error: +the receiver refused the request \\(HTTP 404\\)\n"));
  EXPECT_THAT(r.out, ContainsRegex("Response: +no_team\n"));
  EXPECT_EQ(r.err,
            "pantherctl: error: test delivery to team-slack failed: HTTP 404 in 120 ms: the "
            "receiver refused the request (HTTP 404)\n");

  answer.set_http_status(0);
  answer.set_response_body("");
  answer.set_error("connection refused");
  r = Run({"destinations", "test", "team-slack"});
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.out, HasSubstr("failed: no HTTP answer in 120 ms\n"));
  EXPECT_THAT(r.out, Not(HasSubstr("Response:")));

  r = Run({"--output", "json", "destinations", "test", "team-slack"});
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.out, HasSubstr("\"error\": \"connection refused\""));
  EXPECT_THAT(r.out, HasSubstr("\"latencyMs\": 120"));
}

TEST_F(DestinationsCommandsTest, RemovePrintsThePendingDeliveriesMarkedFailed) {
  detection_.remove_destination_response.set_pending_failed(3);
  CliResult r = Run({"destinations", "remove", "team-slack"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "Removed destination team-slack; 3 pending deliveries marked failed\n");
  ASSERT_THAT(detection_.remove_destination_requests, SizeIs(1));
  EXPECT_EQ(detection_.remove_destination_requests[0].destination(), "team-slack");
  detection_.remove_destination_response.set_pending_failed(1);
  r = Run({"destinations", "remove", "d1"});
  EXPECT_EQ(r.out, "Removed destination d1; 1 pending delivery marked failed\n");
  r = Run({"--output", "json", "destinations", "remove", "d1"});
  EXPECT_EQ(r.out, "{\n \"pendingFailed\": 1\n}\n");
}

TEST_F(DestinationsCommandsTest, KindsListsTheServersKindsAndFields) {
  v1::DestinationKindInfo slack;
  slack.set_kind("slack");
  slack.set_description("A Slack incoming webhook");
  auto* url = slack.add_fields();
  url->set_name("url");
  url->set_secret(true);
  url->set_required(true);
  url->set_help("The incoming webhook URL");
  v1::DestinationKindInfo pd;
  pd.set_kind("pagerduty");
  pd.set_description("PagerDuty Events API v2");
  pd.set_resolves(true);
  auto* key = pd.add_fields();
  key->set_name("routing_key");
  key->set_secret(true);
  key->set_required(true);
  key->set_help("The integration's routing key");
  auto* endpoint = pd.add_fields();
  endpoint->set_name("url");
  endpoint->set_help("The Events API endpoint");
  detection_.destination_kinds = {slack, pd};
  detection_.destinations = {MakeDestination("d1", "team-slack", "slack")};
  CliResult r = Run({"destinations", "kinds"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out,
            "slack: A Slack incoming webhook\n"
            "  (--secret-file fills url)\n"
            "  url  secret  required  The incoming webhook URL\n"
            "\n"
            "pagerduty: PagerDuty Events API v2\n"
            "  (--secret-file fills routing_key; resolving an alert is sent on)\n"
            "  routing_key  secret   required  The integration's routing key\n"
            "  url          setting  optional  The Events API endpoint\n");
  r = Run({"--output", "json", "destinations", "kinds"});
  ASSERT_EQ(r.code, 0) << r.err;
  v1::ListDestinationsResponse parsed;
  ASSERT_TRUE(JsonToMessage(r.out, &parsed).ok()) << r.out;
  EXPECT_THAT(parsed.kinds(), SizeIs(2));
  EXPECT_THAT(parsed.destinations(), IsEmpty());
}

v1::AlertDelivery MakeDelivery(const std::string& name, v1::DeliveryStatus status) {
  v1::AlertDelivery d;
  d.set_alert_id("a1");
  d.set_destination_id("d1");
  d.set_destination_name(name);
  d.set_kind("slack");
  d.set_action("trigger");
  d.set_status(status);
  d.set_routed_by("filters");
  return d;
}

TEST_F(DestinationsCommandsTest, ResendPrintsThePendingDeliveries) {
  v1::AlertDelivery pending = MakeDelivery("team-slack", v1::DELIVERY_STATUS_PENDING);
  pending.set_attempts(5);
  pending.set_resends(1);
  pending.set_routed_by("resend");
  *pending.mutable_next_attempt_time() = TimeUtil::SecondsToTimestamp(1764000000);
  *detection_.resend_response.add_deliveries() = pending;
  CliResult r = Run({"alerts", "resend", "a1", "--destination", "team-slack"});
  ASSERT_EQ(r.code, 0) << r.err;
  ASSERT_THAT(detection_.resend_requests, SizeIs(1));
  EXPECT_EQ(detection_.resend_requests[0].alert_id(), "a1");
  EXPECT_EQ(detection_.resend_requests[0].destination(), "team-slack");
  EXPECT_EQ(r.out,
            "Re-sending alert a1: 1 delivery pending\n"
            "\n"
            "Deliveries:\n"
            "  DESTINATION  KIND   ACTION   STATUS   ATTEMPTS  HTTP  WHEN                       "
            "ROUTED BY  LAST ERROR\n"
            "  team-slack   slack  trigger  PENDING  5         -     next 2025-11-24T16:00:00Z  "
            "resend     -\n");
  r = Run({"alerts", "resend", "a1"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(detection_.resend_requests[1].destination(), "");
  r = Run({"--output", "json", "alerts", "resend", "a1"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("\"status\": \"PENDING\""));
  EXPECT_THAT(r.out, HasSubstr("\"routedBy\": \"resend\""));
}

TEST_F(DestinationsCommandsTest, AlertsGetShowsTheDeliveries) {
  v1::Alert alert;
  alert.set_id("a1");
  alert.set_title("Multiple Failed Logins for admin");
  detection_.alerts = {alert};
  CliResult r = Run({"alerts", "get", "a1"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("\nHistory: none\n\nDeliveries: none\n"));

  v1::AlertDelivery failed = MakeDelivery("team-slack", v1::DELIVERY_STATUS_FAILED);
  failed.set_attempts(1);
  failed.set_last_http_status(404);
  failed.set_last_error("HTTP 404: no_team");
  *failed.mutable_last_attempt_time() = TimeUtil::SecondsToTimestamp(1764000000);
  v1::AlertDelivery delivered = MakeDelivery("pd", v1::DELIVERY_STATUS_DELIVERED);
  delivered.set_kind("pagerduty");
  delivered.set_attempts(2);
  delivered.set_last_http_status(202);
  delivered.set_routed_by("destinations()");
  *delivered.mutable_delivered_time() = TimeUtil::SecondsToTimestamp(1764000060);
  v1::AlertDelivery unknown = MakeDelivery("", v1::DELIVERY_STATUS_FAILED);
  unknown.set_destination_id("no-such-dest");
  unknown.set_kind("");
  unknown.set_last_error("no destination named \"no-such-dest\"");
  detection_.alert_deliveries = {failed, delivered, unknown};
  r = Run({"alerts", "get", "a1"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("\nDeliveries:\n  DESTINATION   KIND       ACTION   STATUS"));
  EXPECT_THAT(r.out, ContainsRegex("  team-slack +slack +trigger +FAILED +1 +404 +last "
                                   "2025-11-24T16:00:00Z +filters +HTTP 404: no_team\n"));
  EXPECT_THAT(r.out, ContainsRegex("  pd +pagerduty +trigger +DELIVERED +2 +202 +delivered "
                                   "2025-11-24T16:01:00Z +destinations\\(\\) +-\n"));
  EXPECT_THAT(r.out, ContainsRegex("  no-such-dest +- +trigger +FAILED +0 +- +- +filters +no "
                                   "destination named \"no-such-dest\"\n"));
  r = Run({"--output", "json", "alerts", "get", "a1"});
  ASSERT_EQ(r.code, 0) << r.err;
  v1::GetAlertResponse parsed;
  ASSERT_TRUE(JsonToMessage(r.out, &parsed).ok()) << r.out;
  ASSERT_THAT(parsed.deliveries(), SizeIs(3));
  EXPECT_EQ(parsed.deliveries(0).last_http_status(), 404);
}

TEST_F(DestinationsCommandsTest, ServerStringsAreEscaped) {
  const std::string evil = "team\x1b[2Jslack\u202e";
  v1::Destination d = MakeDestination("d1", evil, "slack");
  (*d.mutable_settings())["k"] = "v\x1b]0;x\x07";
  detection_.destinations = {d};
  v1::DestinationKindInfo kind;
  kind.set_kind("slack\x1b[31m");
  kind.set_description("desc\x1b[0m");
  kind.add_fields()->set_name("url\x1b");
  detection_.destination_kinds = {kind};
  v1::Alert alert;
  alert.set_id("a1");
  detection_.alerts = {alert};
  v1::AlertDelivery delivery = MakeDelivery(evil, v1::DELIVERY_STATUS_FAILED);
  delivery.set_last_error("err\x1b[2J");
  detection_.alert_deliveries = {delivery};
  *detection_.resend_response.add_deliveries() = delivery;
  detection_.test_destination_response.set_error("bad\x1b[2J");
  detection_.test_destination_response.set_response_body("body\x1b[2J\u202e");

  for (const std::vector<std::string>& args :
       std::vector<std::vector<std::string>>{{"destinations", "list"},
                                             {"destinations", "get", "d1"},
                                             {"destinations", "kinds"},
                                             {"destinations", "test", "d1"},
                                             {"destinations", "remove", evil},
                                             {"alerts", "get", "a1"},
                                             {"alerts", "resend", "a1"},
                                             {"--output", "json", "destinations", "list"},
                                             {"--output", "json", "alerts", "get", "a1"}}) {
    CliResult r = Run(args);
    const std::string all = r.out + r.err;
    EXPECT_EQ(all.find('\x1b'), std::string::npos) << args[1] << ": " << all;
    EXPECT_EQ(all.find('\x07'), std::string::npos) << args[1] << ": " << all;
    EXPECT_EQ(all.find("\u202e"), std::string::npos) << args[1] << ": " << all;
  }
  CliResult r = Run({"destinations", "list"});
  EXPECT_THAT(r.out, HasSubstr("team\\x1b[2Jslack\\u202e"));
  r = Run({"destinations", "get", "d1"});
  EXPECT_THAT(r.out, ContainsRegex("Name: +team\\\\x1b\\[2Jslack"));
}

}  // namespace
}  // namespace pantherd::client
