#include "client/cli.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "client/connection.h"
#include "client/fake_pantherd.h"
#include "client/output.h"
#include "gmock/gmock.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"

namespace pantherd::client {
namespace {

namespace v1 = ::pantherd::v1;
using ::pantherd::client::testing::FakeAdminService;
using ::pantherd::client::testing::FakeDetectionService;
using ::pantherd::client::testing::FakeHealthService;
using ::pantherd::client::testing::FakePantherd;
using ::pantherd::client::testing::ReserveClosedPort;
using ::testing::AllOf;
using ::testing::ContainsRegex;
using ::testing::HasSubstr;
using ::testing::StartsWith;

using ::pantherd::client::testing::CliResult;
using ::pantherd::client::testing::RunPantherctl;

// Expects `result` to be a failure with `code`: nothing on stdout and exactly
// one "pantherctl: error: ..." line on stderr.
void ExpectOneErrorLine(const CliResult& result, int code) {
  EXPECT_EQ(result.code, code);
  EXPECT_EQ(result.out, "");
  EXPECT_THAT(result.err, StartsWith("pantherctl: error: "));
  ASSERT_FALSE(result.err.empty());
  EXPECT_EQ(result.err.back(), '\n');
  EXPECT_EQ(std::count(result.err.begin(), result.err.end(), '\n'), 1) << result.err;
}

class PantherctlCliTest : public ::testing::Test {
 protected:
  void SetUp() override { ClearEnv(); }
  void TearDown() override { ClearEnv(); }
  static void ClearEnv() {
    unsetenv(kServerEnvVar);
    unsetenv(kTokenEnvVar);
    unsetenv(kTokenFileEnvVar);
  }
};

// --- Usage -----------------------------------------------------------------

struct HelpCase {
  std::vector<std::string> command;
  std::vector<std::string> options;  // What its --help must mention.
};

class PantherctlHelpTest : public PantherctlCliTest,
                           public ::testing::WithParamInterface<HelpCase> {};

TEST_P(PantherctlHelpTest, HelpExitsZeroAndMentionsOptions) {
  std::vector<std::string> args = GetParam().command;
  args.push_back("--help");
  CliResult result = RunPantherctl(args);
  EXPECT_EQ(result.code, 0) << result.err;
  EXPECT_EQ(result.err, "");
  for (const std::string& option : GetParam().options) {
    EXPECT_THAT(result.out, HasSubstr(option)) << "help of '" << absl::StrJoin(args, " ") << "'";
  }
}

INSTANTIATE_TEST_SUITE_P(
    Pantherctl, PantherctlHelpTest,
    ::testing::Values(
        HelpCase{
            {},
            {"--server", "--token", "--output", "--timeout", "PANTHER_SERVER", "PANTHER_TOKEN",
             "status", "whoami", "rules", "alerts", "sources", "destinations", "upload", "test"}},
        HelpCase{{"upload"}, {"PATH", "--skip-tests"}},
        HelpCase{{"test"},
                 {"PATH", "--filter", "--minimum-tests", "--skip-disabled-tests",
                  "--show-failures-only", "PANTHER_MINIMUM_TESTS"}},
        HelpCase{{"status"}, {"pantherctl status", "--help", "Global options"}},
        HelpCase{{"whoami"}, {"pantherctl whoami", "--help"}},
        HelpCase{{"rules"}, {"list", "get", "delete", "enable", "disable"}},
        HelpCase{{"rules", "list"}, {"--type", "--log-type", "--enabled", "--disabled"}},
        HelpCase{{"rules", "get"}, {"ID", "--history", "--content", "--include-deleted"}},
        HelpCase{{"rules", "delete"}, {"ID", "history is kept"}},
        HelpCase{{"rules", "enable"}, {"ID"}}, HelpCase{{"rules", "disable"}, {"ID"}},
        HelpCase{{"alerts"}, {"list", "get", "update"}},
        HelpCase{{"alerts", "list"},
                 {"--rule", "--status", "--min-severity", "--severity", "--limit", "--all",
                  "--page-token", "--since", "--until", "--time"}},
        HelpCase{{"alerts", "tail"}, {"--min-severity", "--severity", "alias"}},
        HelpCase{{"alerts", "get"}, {"ID"}}, HelpCase{{"alerts", "events"}, {"ID", "--limit"}},
        HelpCase{{"alerts", "update"}, {"ID", "--status", "--assignee", "--comment"}},
        HelpCase{{"sources"}, {"list", "add", "pause", "resume", "remove", "test"}},
        HelpCase{{"sources", "test"}, {"ID"}},
        HelpCase{{"sources", "list"}, {"pantherctl sources list", "--help"}},
        HelpCase{{"sources", "add", "okta"},
                 {"--label", "--domain", "--token-file", "--since", "--interval", "--base-url",
                  "--no-check"}},
        HelpCase{{"sources", "resume"}, {"ID", "--token-file"}},
        HelpCase{{"sources", "remove"}, {"ID"}},
        HelpCase{{"destinations"}, {"add", "list", "get", "update", "test", "remove", "kinds"}},
        HelpCase{{"destinations", "add"},
                 {"KIND", "webhook, slack, pagerduty, teams, jira", "--name", "--secret-file",
                  "--secret", "--hmac-secret-file", "--header", "--set", "--min-severity",
                  "--alert-type", "--rule", "--log-type"}},
        HelpCase{
            {"destinations", "update"},
            {"ID", "--name", "--secret-file", "--secret", "--remove-secret", "--header", "--set",
             "--min-severity", "--alert-type", "--rule", "--log-type", "--clear-filters"}},
        HelpCase{{"destinations", "get"}, {"ID"}}, HelpCase{{"destinations", "test"}, {"ID"}},
        HelpCase{{"destinations", "remove"}, {"ID"}},
        HelpCase{{"alerts", "resend"}, {"ID", "--destination"}}),
    [](const ::testing::TestParamInfo<HelpCase>& info) {
      return info.param.command.empty() ? std::string("pantherctl")
                                        : absl::StrJoin(info.param.command, "_");
    });

TEST_F(PantherctlCliTest, UnknownCommandIsAUsageError) {
  CliResult result = RunPantherctl({"frobnicate"});
  ExpectOneErrorLine(result, 2);
  EXPECT_EQ(result.err,
            "pantherctl: error: unknown command 'frobnicate' for 'pantherctl' (see --help)\n");
}

TEST_F(PantherctlCliTest, UnknownSubcommandIsAUsageError) {
  CliResult result = RunPantherctl({"rules", "frob"});
  ExpectOneErrorLine(result, 2);
  EXPECT_EQ(result.err,
            "pantherctl: error: unknown command 'frob' for 'pantherctl rules' (see --help)\n");
}

TEST_F(PantherctlCliTest, MissingCommandIsAUsageError) {
  ExpectOneErrorLine(RunPantherctl({}), 2);
  CliResult result = RunPantherctl({"rules"});
  ExpectOneErrorLine(result, 2);
  EXPECT_EQ(result.err,
            "pantherctl: error: 'pantherctl rules' needs a command: list, get, delete, enable, "
            "disable (see --help)\n");
}

TEST_F(PantherctlCliTest, BadOptionsAreUsageErrors) {
  ExpectOneErrorLine(RunPantherctl({"--output", "yaml", "status"}), 2);
  ExpectOneErrorLine(RunPantherctl({"--timeout", "0", "status"}), 2);
  ExpectOneErrorLine(RunPantherctl({"--server", "", "status"}), 2);
  ExpectOneErrorLine(RunPantherctl({"status", "--bogus"}), 2);
  ExpectOneErrorLine(RunPantherctl({"rules", "list", "--enabled", "--disabled"}), 2);
  ExpectOneErrorLine(RunPantherctl({"rules", "list", "--type", "policy"}), 2);
  ExpectOneErrorLine(RunPantherctl({"rules", "get"}), 2);
  ExpectOneErrorLine(RunPantherctl({"alerts", "list", "--status", "pending"}), 2);
  ExpectOneErrorLine(RunPantherctl({"alerts", "list", "--limit", "0"}), 2);
  ExpectOneErrorLine(RunPantherctl({"alerts", "update", "a1"}), 2);
}

// --- Unreachable server ----------------------------------------------------

TEST_F(PantherctlCliTest, UnreachableServerNamesTheAddress) {
  const int port = ReserveClosedPort();
  ASSERT_GT(port, 0);
  const std::string address = absl::StrCat("127.0.0.1:", port);
  for (const std::vector<std::string>& args :
       std::vector<std::vector<std::string>>{{"--server", address, "status"},
                                             {"status", "--server", address},
                                             {"rules", "list", "--server", address}}) {
    CliResult result = RunPantherctl(args);
    ExpectOneErrorLine(result, 1);
    EXPECT_EQ(result.err, absl::StrCat("pantherctl: error: cannot reach pantherd at ", address,
                                       " (connection refused)\n"));
  }
}

TEST_F(PantherctlCliTest, ServerComesFromEnvironment) {
  const int port = ReserveClosedPort();
  ASSERT_GT(port, 0);
  const std::string address = absl::StrCat("127.0.0.1:", port);
  setenv(kServerEnvVar, address.c_str(), 1);
  CliResult result = RunPantherctl({"whoami"});
  ExpectOneErrorLine(result, 1);
  EXPECT_THAT(result.err, HasSubstr(address));
}

// --- Against fake servers --------------------------------------------------

class PantherctlStatusTest : public PantherctlCliTest {
 protected:
  void SetUp() override {
    PantherctlCliTest::SetUp();
    v1::GetServerStatusResponse& s = admin_.status;
    s.set_version("0.1.0");
    s.mutable_start_time()->set_seconds(1714564800);  // 2024-05-01T12:00:00Z
    s.mutable_uptime()->set_seconds(192);
    s.set_data_dir("/var/lib/pantherd");
    s.set_listen_address("127.0.0.1:50051");
    s.set_rule_count(12);
    s.set_global_count(3);
    s.set_data_model_count(2);
    s.set_source_count(1);
    s.set_alert_count(45);
    s.mutable_streams()->set_subscribers(2);
    s.mutable_streams()->set_delivered(130);
    s.mutable_streams()->set_catch_ups(1);
    s.mutable_streams()->set_published(7);
    s.mutable_streams()->set_backlog(3);
    s.mutable_streams()->set_max_backlog(3);
    s.set_health("SERVING");
    v1::ServerMetrics* m = s.mutable_metrics();
    m->mutable_ingest()->set_batches(3);
    m->mutable_ingest()->set_events_received(10);
    m->mutable_ingest()->set_events_accepted(6);
    m->mutable_ingest()->set_events_duplicate(1);
    for (const auto& [reason, count] :
         {std::pair<const char*, int>{"not_json", 2}, {"too_large", 1}}) {
      v1::RejectedEvents* r = m->mutable_ingest()->add_rejected();
      r->set_reason(reason);
      r->set_count(count);
    }
    v1::RuleMetrics* fast = m->add_rules();  // by id: Fast, then Slow
    fast->set_rule_id("Fast");
    fast->set_evaluations(5);
    fast->mutable_time()->set_nanos(100000);
    v1::RuleMetrics* slow = m->add_rules();
    slow->set_rule_id("Slow");
    slow->set_evaluations(5);
    slow->set_matches(2);
    slow->set_errors(1);
    slow->mutable_time()->set_seconds(1);
    slow->mutable_time()->set_nanos(500000000);
    m->mutable_workers()->set_live(2);
    m->mutable_workers()->set_restarts(1);
    m->mutable_executor()->set_threads(4);
    m->mutable_executor()->set_queue_capacity(1024);
    m->mutable_evaluation()->set_threads(2);
    m->mutable_evaluation()->set_queued(5);
    m->mutable_evaluation()->set_queue_capacity(64);
    m->mutable_evaluation()->set_rejected(7);
    v1::SourceMetrics* src = m->add_sources();
    src->set_id("s1");
    src->set_label("prod");
    src->set_state(v1::SOURCE_STATE_ACTIVE);
    src->set_polls(11);
    src->set_poll_failures(1);
    src->set_events_ingested(100);
    src->mutable_last_poll_time()->set_seconds(1714564980);  // 12:03:00Z
    src->mutable_lag()->set_seconds(2);
  }

  FakeAdminService admin_;
  FakeHealthService health_;
};

TEST_F(PantherctlStatusTest, PrintsTable) {
  FakePantherd server({&admin_, &health_});
  ASSERT_TRUE(server.ok());
  CliResult result = RunPantherctl({"--server", server.address(), "status"});
  ASSERT_EQ(result.code, 0) << result.err;
  EXPECT_EQ(result.err, "");
  EXPECT_EQ(result.out,
            "Version:         0.1.0\n"
            "Uptime:          3m12s\n"
            "Started:         2024-05-01T12:00:00Z\n"
            "Data dir:        /var/lib/pantherd\n"
            "Listen address:  127.0.0.1:50051\n"
            "Rules:           12\n"
            "Globals:         3\n"
            "Data models:     2\n"
            "Sources:         1\n"
            "Alerts:          45\n"
            "Subscribers:     2\n"
            "Delivered:       130\n"
            "Catch-ups:       1\n"
            "Health:          SERVING\n"
            "\n"
            "Batches:     stored 3, failed 0\n"
            "Events:      received 10, accepted 6, duplicate 1, unevaluated 0, poison 0\n"
            "Rejected:    not_json 2, too_large 1\n"
            "Workers:     live 2, busy 0, waiting 0, started 0, crashed 0, timed out 0, "
            "restarts 1, restart failures 0, restarts delayed 0, retries 0, refused 0\n"
            "Executor:    threads 4, queued 0, capacity 1024, refused 0\n"
            "Evaluation:  threads 2, queued 5, capacity 64, refused 7\n"
            "Alert feed:  published 7, backlog 3, max backlog 3, catching up 0, dropped 0, "
            "gaps 0\n"
            "\n"
            "RULE  EVALUATIONS  MATCHES  ERRORS  TIME\n"
            "Slow  5            2        1       1.500000s\n"  // most time first
            "Fast  5            0        0       0.000100s\n"
            "\n"
            "SOURCE  STATE   POLLS  FAILURES  EVENTS  LAST POLL             LAG\n"
            "prod    ACTIVE  11     1         100     2024-05-01T12:03:00Z  2s\n");
  std::lock_guard<std::mutex> lock(health_.mu);
  EXPECT_EQ(health_.last_service, "");
}

TEST_F(PantherctlStatusTest, PrintsOneJsonObject) {
  FakePantherd server({&admin_, &health_});
  ASSERT_TRUE(server.ok());
  CliResult result = RunPantherctl({"status", "--output", "json", "--server", server.address()});
  ASSERT_EQ(result.code, 0) << result.err;
  EXPECT_THAT(result.out, StartsWith("{\n"
                                     " \"version\": \"0.1.0\",\n"
                                     " \"startTime\": \"2024-05-01T12:00:00Z\",\n"
                                     " \"uptime\": \"192s\",\n"
                                     " \"uptimeSeconds\": 192,\n"
                                     " \"dataDir\": \"/var/lib/pantherd\",\n"
                                     " \"listenAddress\": \"127.0.0.1:50051\",\n"
                                     " \"ruleCount\": 12,\n"
                                     " \"globalCount\": 3,\n"
                                     " \"dataModelCount\": 2,\n"
                                     " \"sourceCount\": 1,\n"
                                     " \"alertCount\": 45,\n"
                                     " \"subscribers\": 2,\n"
                                     " \"alertChangesDelivered\": 130,\n"
                                     " \"subscriberCatchUps\": 1,\n"
                                     " \"health\": \"SERVING\",\n"
                                     " \"quarantinedRules\": [],\n"
                                     " \"figures\": {\n"));
  google::protobuf::Struct parsed;  // It is valid JSON.
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(result.out, &parsed).ok());
  EXPECT_EQ(parsed.fields().at("ruleCount").number_value(), 12);
  EXPECT_EQ(parsed.fields().at("health").string_value(), "SERVING");
  // pantherd's own figures, as numbers.
  const auto& figures = parsed.fields().at("figures").struct_value().fields();
  const auto& ingest = figures.at("ingest").struct_value().fields();
  EXPECT_EQ(ingest.at("eventsAccepted").number_value(), 6);
  EXPECT_EQ(ingest.at("eventsRejected").struct_value().fields().at("too_large").number_value(), 1);
  const auto& rules = figures.at("rules").list_value().values();
  ASSERT_EQ(rules.size(), 2);  // in id order
  EXPECT_EQ(rules[1].struct_value().fields().at("ruleId").string_value(), "Slow");
  EXPECT_EQ(rules[1].struct_value().fields().at("errors").number_value(), 1);
  EXPECT_EQ(rules[1].struct_value().fields().at("seconds").number_value(), 1.5);
  EXPECT_EQ(figures.at("workers").struct_value().fields().at("restarts").number_value(), 1);
  EXPECT_EQ(figures.at("alertFeed").struct_value().fields().at("published").number_value(), 7);
  const auto& evaluation = figures.at("evaluation").struct_value().fields();
  EXPECT_EQ(evaluation.at("queued").number_value(), 5);
  EXPECT_EQ(evaluation.at("rejected").number_value(), 7);
  const auto& sources = figures.at("sources").list_value().values();
  ASSERT_EQ(sources.size(), 1);
  EXPECT_EQ(sources[0].struct_value().fields().at("polls").number_value(), 11);
  EXPECT_EQ(sources[0].struct_value().fields().at("lastPollTime").string_value(),
            "2024-05-01T12:03:00Z");
}

TEST_F(PantherctlStatusTest, ShowsQuarantinedRulesAndHowToReEnableThem) {
  v1::QuarantinedRule* q = admin_.status.add_quarantined_rules();
  q->set_rule_id("Okta.Poison");
  q->mutable_quarantine()->mutable_time()->set_seconds(1714564900);  // 12:01:40Z
  q->mutable_quarantine()->set_failures(3);
  q->mutable_quarantine()->set_reason("3 events ended its worker within 1h");
  q->mutable_quarantine()->set_last_event_id("evt-9");
  q->mutable_quarantine()->set_last_failure_type("WorkerCrashed");
  FakePantherd server({&admin_, &health_});
  ASSERT_TRUE(server.ok());
  CliResult table = RunPantherctl({"--server", server.address(), "status"});
  ASSERT_EQ(table.code, 0) << table.err;
  EXPECT_THAT(table.out,
              HasSubstr("QUARANTINED RULE  SINCE                 FAILURES  REASON\n"
                        "Okta.Poison       2024-05-01T12:01:40Z  3         3 events ended its "
                        "worker within 1h\n"
                        "Re-enable a quarantined rule with: pantherctl rules enable RULE_ID\n"));
  CliResult json = RunPantherctl({"--server", server.address(), "--output", "json", "status"});
  ASSERT_EQ(json.code, 0) << json.err;
  google::protobuf::Struct parsed;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(json.out, &parsed).ok()) << json.out;
  const auto& rules = parsed.fields().at("quarantinedRules").list_value().values();
  ASSERT_EQ(rules.size(), 1);
  const auto& rule = rules[0].struct_value().fields();
  EXPECT_EQ(rule.at("ruleId").string_value(), "Okta.Poison");
  EXPECT_EQ(rule.at("since").string_value(), "2024-05-01T12:01:40Z");
  EXPECT_EQ(rule.at("failures").number_value(), 3);
  EXPECT_EQ(rule.at("lastEventId").string_value(), "evt-9");
  EXPECT_EQ(rule.at("lastFailureType").string_value(), "WorkerCrashed");
  EXPECT_EQ(rule.at("reEnable").string_value(), "pantherctl rules enable Okta.Poison");
}

TEST_F(PantherctlStatusTest, ReportsNotServing) {
  health_.serving_status = grpc::health::v1::HealthCheckResponse::NOT_SERVING;
  FakePantherd server({&admin_, &health_});
  ASSERT_TRUE(server.ok());
  CliResult result = RunPantherctl({"--server", server.address(), "status"});
  ASSERT_EQ(result.code, 0) << result.err;
  EXPECT_THAT(result.out, HasSubstr("Health:          NOT_SERVING\n"));
}

TEST_F(PantherctlStatusTest, FailedHealthCheckStillPrintsStatus) {
  FakePantherd server({&admin_});  // No health service: Check is UNIMPLEMENTED.
  ASSERT_TRUE(server.ok());
  CliResult result = RunPantherctl({"--server", server.address(), "--output", "json", "status"});
  ASSERT_EQ(result.code, 0) << result.err;
  EXPECT_EQ(result.err, "");
  EXPECT_THAT(result.out,
              AllOf(HasSubstr("\"ruleCount\": 12,"), HasSubstr("\"health\": \"UNKNOWN\",\n")));
}

TEST_F(PantherctlStatusTest, ServerErrorIsOneLineWithCodeName) {
  admin_.status_error = grpc::Status(grpc::StatusCode::PERMISSION_DENIED, "viewer may not");
  FakePantherd server({&admin_, &health_});
  ASSERT_TRUE(server.ok());
  setenv(kTokenEnvVar, "t", 1);  // --token would add its warning line.
  CliResult result = RunPantherctl({"--server", server.address(), "status"});
  ExpectOneErrorLine(result, 1);
  EXPECT_EQ(result.err,
            "pantherctl: error: permission denied: viewer may not (token from $PANTHER_TOKEN)\n");

  // With --token the warning comes first, then the one error line.
  unsetenv(kTokenEnvVar);
  result = RunPantherctl({"--server", server.address(), "--token", "t", "status"});
  EXPECT_EQ(result.code, 1);
  EXPECT_EQ(result.err, absl::StrCat(kTokenOnCommandLineWarning,
                                     "\npantherctl: error: permission denied: viewer may not "
                                     "(token from --token)\n"));
}

// A refused token: the error says where it came from and how to fix that.
TEST_F(PantherctlStatusTest, RefusedTokenNamesItsSource) {
  admin_.status_error = grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "unknown token");
  FakePantherd server({&admin_, &health_});
  ASSERT_TRUE(server.ok());
  const std::string file = ::testing::TempDir() + "/pantherctl_cli_test_bad_token";
  { std::ofstream(file) << "bad\n"; }
  CliResult result = RunPantherctl({"--server", server.address(), "--token-file", file, "status"});
  ExpectOneErrorLine(result, 1);
  EXPECT_EQ(result.err,
            absl::StrCat("pantherctl: error: not authenticated: unknown token (the "
                         "token from --token-file ",
                         file, " was refused; check that file, or run pantherctl login)\n"));
  setenv(kTokenEnvVar, "bad", 1);
  result = RunPantherctl({"--server", server.address(), "status"});
  ExpectOneErrorLine(result, 1);
  EXPECT_THAT(result.err, HasSubstr("(the token from $PANTHER_TOKEN was refused; check or unset "
                                    "that variable, or run pantherctl login)"));
  std::remove(file.c_str());
}

TEST_F(PantherctlStatusTest, WhoAmISendsTokenFromFlagOrEnvironment) {
  admin_.whoami.mutable_user()->set_name("alice");
  admin_.whoami.mutable_user()->set_role(v1::ROLE_ANALYST);
  admin_.whoami.mutable_token()->set_id("tok1");
  admin_.whoami.mutable_token()->set_name("laptop");
  FakePantherd server({&admin_});
  ASSERT_TRUE(server.ok());

  setenv(kTokenEnvVar, "from-env", 1);
  CliResult result = RunPantherctl({"--server", server.address(), "whoami"});
  ASSERT_EQ(result.code, 0) << result.err;
  EXPECT_EQ(result.err, "");
  EXPECT_THAT(result.out, AllOf(ContainsRegex("User: +alice\n"), ContainsRegex("Role: +ANALYST\n"),
                                ContainsRegex("Token: +tok1 \\(laptop\\)\n"),
                                ContainsRegex("Token expires: +never\n")));
  {
    std::lock_guard<std::mutex> lock(admin_.mu);
    EXPECT_EQ(admin_.last_authorization, "Bearer from-env");
  }

  result = RunPantherctl({"--server", server.address(), "whoami", "--token", "from-flag"});
  ASSERT_EQ(result.code, 0) << result.err;
  EXPECT_EQ(result.err, absl::StrCat(kTokenOnCommandLineWarning, "\n"));
  std::lock_guard<std::mutex> lock(admin_.mu);
  EXPECT_EQ(admin_.last_authorization, "Bearer from-flag");
}

// Security row 7: a token in argv is readable by every local user, so
// --token warns (once, on stderr) but still works.
TEST_F(PantherctlStatusTest, TokenFlagWarnsAndStillWorks) {
  admin_.whoami.mutable_user()->set_name("alice");
  FakePantherd server({&admin_});
  ASSERT_TRUE(server.ok());
  for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
           {"--server", server.address(), "--token", "s3cret", "whoami"},
           {"--server", server.address(), "whoami", "--token=s3cret"}}) {
    CliResult result = RunPantherctl(args);
    ASSERT_EQ(result.code, 0) << result.err;
    EXPECT_THAT(result.out, ContainsRegex("User: +alice\n"));
    EXPECT_EQ(result.err, absl::StrCat(kTokenOnCommandLineWarning, "\n"));
    EXPECT_THAT(result.err, ::testing::Not(HasSubstr("s3cret")));
    std::lock_guard<std::mutex> lock(admin_.mu);
    EXPECT_EQ(admin_.last_authorization, "Bearer s3cret");
  }
  // The warning names the sources pantherctl really reads.
  for (const char* source : {"--token-file", kTokenFileEnvVar, kTokenEnvVar, "pantherctl login"}) {
    EXPECT_THAT(kTokenOnCommandLineWarning, HasSubstr(source));
  }
}

TEST_F(PantherctlStatusTest, TokenFileEnvironmentAndEmptyFlagDoNotWarn) {
  FakePantherd server({&admin_});
  ASSERT_TRUE(server.ok());
  const std::string file = ::testing::TempDir() + "/pantherctl_cli_test_token";
  { std::ofstream(file) << "from-file\n"; }
  auto expect_quiet = [&](const std::vector<std::string>& args, const std::string& bearer) {
    CliResult result = RunPantherctl(args);
    ASSERT_EQ(result.code, 0) << result.err;
    EXPECT_EQ(result.err, "");
    std::lock_guard<std::mutex> lock(admin_.mu);
    EXPECT_EQ(admin_.last_authorization, bearer);
  };
  expect_quiet({"--server", server.address(), "--token-file", file, "whoami"}, "Bearer from-file");
  setenv(kTokenFileEnvVar, file.c_str(), 1);
  expect_quiet({"--server", server.address(), "whoami"}, "Bearer from-file");
  unsetenv(kTokenFileEnvVar);
  setenv(kTokenEnvVar, "from-env", 1);
  expect_quiet({"--server", server.address(), "whoami"}, "Bearer from-env");
  // An empty --token sends no token, so there is no secret to warn about.
  expect_quiet({"--server", server.address(), "--token", "", "whoami"}, "<none>");
  std::remove(file.c_str());
}

// An argv made of writable copies of `args`, as main() receives it.
class FakeArgv {
 public:
  explicit FakeArgv(const std::vector<std::string>& args) {
    for (const std::string& arg : args) storage_.emplace_back(arg.begin(), arg.end());
    for (std::vector<char>& arg : storage_) {
      arg.push_back('\0');
      pointers_.push_back(arg.data());
    }
    pointers_.push_back(nullptr);
  }
  int argc() const { return static_cast<int>(storage_.size()); }
  char** argv() { return pointers_.data(); }
  std::vector<std::string> Strings() const {
    std::vector<std::string> result;
    for (const std::vector<char>& arg : storage_) result.emplace_back(arg.data());
    return result;
  }

 private:
  std::vector<std::vector<char>> storage_;
  std::vector<char*> pointers_;
};

TEST(ScrubTokenArgumentsTest, OverwritesTokenValuesOnly) {
  FakeArgv args({"pantherctl", "--server", "h:1", "--token", "abc", "alerts", "tail", "--token=de",
                 "--token", "", "--", "--token", "keep"});
  EXPECT_EQ(ScrubTokenArguments(args.argc(), args.argv()), 2);
  EXPECT_EQ(args.Strings(), (std::vector<std::string>{"pantherctl", "--server", "h:1", "--token",
                                                      "xxx", "alerts", "tail", "--token=xx",
                                                      "--token", "", "--", "--token", "keep"}));
  FakeArgv trailing({"pantherctl", "status", "--token"});
  EXPECT_EQ(ScrubTokenArguments(trailing.argc(), trailing.argv()), 0);
}

class PantherctlDetectionTest : public PantherctlCliTest {
 protected:
  void SetUp() override {
    PantherctlCliTest::SetUp();
    ASSERT_TRUE(server_.ok());
  }

  v1::Rule MakeRule(const std::string& id, v1::AnalysisType type, bool enabled) {
    v1::Rule rule;
    rule.set_id(id);
    rule.set_type(type);
    rule.set_enabled(enabled);
    rule.set_version(2);
    if (type == v1::ANALYSIS_TYPE_RULE) {
      rule.set_severity(v1::SEVERITY_HIGH);
      rule.add_log_types("Okta.SystemLog");
    }
    return rule;
  }

  v1::Alert MakeAlert(const std::string& id) {
    v1::Alert alert;
    alert.set_id(id);
    alert.set_rule_id("okta.brute_force");
    alert.set_title(absl::StrCat("Brute force ", id));
    alert.set_severity(v1::SEVERITY_MEDIUM);
    alert.set_status(v1::ALERT_STATUS_OPEN);
    alert.set_event_count(5);
    alert.mutable_created_time()->set_seconds(1714564800);
    return alert;
  }

  FakeDetectionService detection_;
  FakePantherd server_{{&detection_}};
};

TEST_F(PantherctlDetectionTest, RulesListFollowsPagesInTable) {
  detection_.rules = {MakeRule("a.rule", v1::ANALYSIS_TYPE_RULE, true),
                      MakeRule("b.global", v1::ANALYSIS_TYPE_GLOBAL, false),
                      MakeRule("c.rule", v1::ANALYSIS_TYPE_RULE, false)};
  CliResult result = RunPantherctl({"--server", server_.address(), "rules", "list", "--type",
                                    "rule", "--log-type", "Okta.SystemLog", "--disabled"});
  ASSERT_EQ(result.code, 0) << result.err;
  EXPECT_EQ(result.out,
            "ID        TYPE    ENABLED  SEVERITY  LOG TYPES       VERSION\n"
            "a.rule    rule    yes      HIGH      Okta.SystemLog  2\n"
            "b.global  global  -        -         -               2\n"
            "c.rule    rule    no       HIGH      Okta.SystemLog  2\n");
  std::lock_guard<std::mutex> lock(detection_.mu);
  ASSERT_EQ(detection_.list_rules_requests.size(), 2u);  // Two pages of two.
  const v1::ListRulesRequest& first = detection_.list_rules_requests[0];
  EXPECT_EQ(first.type(), v1::ANALYSIS_TYPE_RULE);
  EXPECT_EQ(first.log_type(), "Okta.SystemLog");
  EXPECT_EQ(first.enabled(), v1::ListRulesRequest::ENABLED_FILTER_DISABLED);
  EXPECT_EQ(detection_.list_rules_requests[1].page().page_token(), "2");
}

TEST_F(PantherctlDetectionTest, RulesListJsonIsTheMergedResponse) {
  detection_.rules = {MakeRule("a.rule", v1::ANALYSIS_TYPE_RULE, true),
                      MakeRule("b.rule", v1::ANALYSIS_TYPE_RULE, true),
                      MakeRule("c.rule", v1::ANALYSIS_TYPE_RULE, true)};
  CliResult result =
      RunPantherctl({"--server", server_.address(), "--output", "json", "rules", "list"});
  ASSERT_EQ(result.code, 0) << result.err;
  EXPECT_THAT(result.out, StartsWith("{\n \"rules\": [\n"));
  EXPECT_THAT(result.out,
              AllOf(HasSubstr("\"id\": \"a.rule\""), HasSubstr("\"id\": \"c.rule\""),
                    HasSubstr("\"nextPageToken\": \"\""), HasSubstr("\"totalCount\": 3"),
                    HasSubstr("\"logTypes\": [\n"), HasSubstr("\"severity\": \"HIGH\""),
                    HasSubstr("\"version\": 2,"), HasSubstr("\"type\": \"RULE\""),
                    ::testing::Not(HasSubstr("SEVERITY_")), ::testing::Not(HasSubstr("\"2\""))));
  EXPECT_EQ(result.out.back(), '\n');
}

TEST_F(PantherctlDetectionTest, UnimplementedRpcIsOneLine) {
  // GetRule is not overridden by the fake, like today's server.
  CliResult result = RunPantherctl({"--server", server_.address(), "rules", "get", "x"});
  ExpectOneErrorLine(result, 1);
  EXPECT_THAT(result.err, StartsWith("pantherctl: error: "));
  EXPECT_THAT(result.err, ::testing::Not(HasSubstr("UNIMPLEMENTED")));

  detection_.alerts_error =
      grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "ListAlerts is not implemented yet (issue 7)");
  result = RunPantherctl({"--server", server_.address(), "alerts", "list"});
  ExpectOneErrorLine(result, 1);
  EXPECT_EQ(result.err, "pantherctl: error: ListAlerts is not implemented yet (issue 7)\n");
}

TEST_F(PantherctlDetectionTest, AlertsListAppliesFiltersAndLimit) {
  detection_.alerts = {MakeAlert("a1"), MakeAlert("a2"), MakeAlert("a3")};
  CliResult result = RunPantherctl({"--server", server_.address(), "alerts", "list", "--rule",
                                    "okta.brute_force", "--status", "open", "--status", "TRIAGED",
                                    "--min-severity", "medium", "--limit", "3"});
  ASSERT_EQ(result.code, 0) << result.err;
  EXPECT_EQ(
      result.out,
      "ID  CREATED               SEVERITY  STATUS  RULE              EVENTS  ASSIGNEE  TITLE\n"
      "a1  2024-05-01T12:00:00Z  MEDIUM    OPEN    okta.brute_force  5       -         "
      "Brute force a1\n"
      "a2  2024-05-01T12:00:00Z  MEDIUM    OPEN    okta.brute_force  5       -         "
      "Brute force a2\n"
      "a3  2024-05-01T12:00:00Z  MEDIUM    OPEN    okta.brute_force  5       -         "
      "Brute force a3\n");
  std::lock_guard<std::mutex> lock(detection_.mu);
  ASSERT_EQ(detection_.list_alerts_requests.size(), 2u);
  const v1::ListAlertsRequest& first = detection_.list_alerts_requests[0];
  EXPECT_THAT(first.rule_ids(), ::testing::ElementsAre("okta.brute_force"));
  EXPECT_THAT(first.statuses(),
              ::testing::ElementsAre(v1::ALERT_STATUS_OPEN, v1::ALERT_STATUS_TRIAGED));
  EXPECT_EQ(first.min_severity(), v1::SEVERITY_MEDIUM);
  EXPECT_EQ(first.page().page_size(), 3);
}

TEST_F(PantherctlDetectionTest, AlertsListJsonKeepsNextPageTokenWhenLimited) {
  detection_.alerts = {MakeAlert("a1"), MakeAlert("a2"), MakeAlert("a3")};
  CliResult result = RunPantherctl(
      {"--server", server_.address(), "--output", "json", "alerts", "list", "--limit", "2"});
  ASSERT_EQ(result.code, 0) << result.err;
  EXPECT_THAT(result.out, AllOf(HasSubstr("\"id\": \"a1\""), HasSubstr("\"id\": \"a2\""),
                                ::testing::Not(HasSubstr("\"id\": \"a3\"")),
                                HasSubstr("\"nextPageToken\": \"2\"")));
}

TEST_F(PantherctlDetectionTest, AlertsListSaysHowManyMoreWhenCut) {
  detection_.alerts = {MakeAlert("a1"), MakeAlert("a2"), MakeAlert("a3"), MakeAlert("a4"),
                       MakeAlert("a5")};
  CliResult result =
      RunPantherctl({"--server", server_.address(), "alerts", "list", "--limit", "2"});
  ASSERT_EQ(result.code, 0) << result.err;
  EXPECT_THAT(result.out, AllOf(HasSubstr("a2  "), ::testing::Not(HasSubstr("a3  "))));
  EXPECT_EQ(result.err, "3 more (use --limit or --all; next page: --page-token 2)\n");
  {
    std::lock_guard<std::mutex> lock(detection_.mu);
    ASSERT_EQ(detection_.list_alerts_requests.size(), 1u);
    EXPECT_TRUE(detection_.list_alerts_requests[0].count_remaining());
  }

  // The printed token continues the listing; the last page prints no hint.
  result = RunPantherctl(
      {"--server", server_.address(), "alerts", "list", "--limit", "3", "--page-token", "2"});
  ASSERT_EQ(result.code, 0) << result.err;
  EXPECT_THAT(result.out,
              AllOf(HasSubstr("a3  "), HasSubstr("a5  "), ::testing::Not(HasSubstr("a2  "))));
  EXPECT_EQ(result.err, "");

  // JSON carries the count.
  result = RunPantherctl(
      {"--server", server_.address(), "--output", "json", "alerts", "list", "--limit", "1"});
  ASSERT_EQ(result.code, 0) << result.err;
  EXPECT_THAT(result.out, HasSubstr("\"remainingCount\": 4"));

  // Past the server's counting cap the hint says "at least".
  {
    std::lock_guard<std::mutex> lock(detection_.mu);
    detection_.max_alerts_counted = 2;
  }
  result = RunPantherctl({"--server", server_.address(), "alerts", "list", "--limit", "1"});
  ASSERT_EQ(result.code, 0) << result.err;
  EXPECT_EQ(result.err, "At least 2 more (use --limit or --all; next page: --page-token 1)\n");
}

TEST_F(PantherctlDetectionTest, AlertsListAllFollowsEveryPage) {
  for (int i = 0; i < 7; ++i) detection_.alerts.push_back(MakeAlert(absl::StrCat("a", i)));
  CliResult result = RunPantherctl({"--server", server_.address(), "alerts", "list", "--all"});
  ASSERT_EQ(result.code, 0) << result.err;
  EXPECT_THAT(result.out, AllOf(HasSubstr("a0  "), HasSubstr("a6  ")));
  EXPECT_EQ(result.err, "");
  {
    std::lock_guard<std::mutex> lock(detection_.mu);
    EXPECT_EQ(detection_.list_alerts_requests.size(), 4u);  // Pages of two.
    EXPECT_FALSE(detection_.list_alerts_requests[0].count_remaining());
  }

  result =
      RunPantherctl({"--server", server_.address(), "alerts", "list", "--all", "--limit", "3"});
  EXPECT_EQ(result.code, 2);
}

TEST_F(PantherctlDetectionTest, AlertsListTimeFiltersGoToTheServer) {
  detection_.alerts = {MakeAlert("a1")};
  const absl::Time before = absl::Now();
  CliResult result = RunPantherctl({"--server", server_.address(), "alerts", "list", "--since",
                                    "2026-03-01T10:00:00Z", "--until", "24h"});
  ASSERT_EQ(result.code, 0) << result.err;
  result = RunPantherctl(
      {"--server", server_.address(), "alerts", "list", "--since", "7d", "--time", "updated"});
  ASSERT_EQ(result.code, 0) << result.err;
  result = RunPantherctl({"--server", server_.address(), "alerts", "list", "--since", "yesterday"});
  EXPECT_EQ(result.code, 1);
  EXPECT_THAT(result.err, HasSubstr("--since: \"yesterday\" is neither an RFC 3339 time"));

  std::lock_guard<std::mutex> lock(detection_.mu);
  ASSERT_EQ(detection_.list_alerts_requests.size(), 2u);
  const v1::ListAlertsRequest& created = detection_.list_alerts_requests[0];
  EXPECT_EQ(created.created_after().seconds(), 1772359200);
  const int64_t day_ago = absl::ToUnixSeconds(before - absl::Hours(24));
  EXPECT_NEAR(created.created_before().seconds(), day_ago, 60);
  EXPECT_FALSE(created.has_updated_after());
  const v1::ListAlertsRequest& updated = detection_.list_alerts_requests[1];
  EXPECT_FALSE(updated.has_created_after());
  EXPECT_NEAR(updated.updated_after().seconds(), day_ago - 6 * 86400, 60);
}

// alerts update --assignee: a warning (and success) for a name that is no
// user, checked only when the caller is an admin.
TEST_F(PantherctlCliTest, AlertsUpdateWarnsAboutUnknownAssignee) {
  FakeDetectionService detection;
  FakeAdminService admin;
  FakePantherd server({&detection, &admin});
  ASSERT_TRUE(server.ok());
  admin.whoami.mutable_user()->set_name("root");
  admin.whoami.mutable_user()->set_role(v1::ROLE_ADMIN);
  v1::User alice;
  alice.set_name("alice");
  v1::User bob;
  bob.set_name("bob");
  bob.set_disabled(true);
  admin.users = {alice, bob};
  auto update = [&](const std::string& assignee) {
    return RunPantherctl(
        {"--server", server.address(), "alerts", "update", "a1", "--assignee", assignee});
  };

  CliResult r = update("alcie");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.err,
            "pantherctl: warning: no user named alcie (see `pantherctl users list`); the alert "
            "was assigned anyway\n");
  EXPECT_THAT(r.out, ContainsRegex("ID: +a1\n"));
  r = update("alice");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.err, "");
  r = update("bob");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.err, HasSubstr("user bob is disabled"));
  {
    std::lock_guard<std::mutex> lock(admin.mu);
    EXPECT_EQ(admin.list_users_calls, 3);
  }

  // An analyst cannot list users: no call, no warning.
  {
    std::lock_guard<std::mutex> lock(admin.mu);
    admin.whoami.mutable_user()->set_role(v1::ROLE_ANALYST);
  }
  r = update("alcie");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.err, "");
  std::lock_guard<std::mutex> lock(admin.mu);
  EXPECT_EQ(admin.list_users_calls, 3);
  std::lock_guard<std::mutex> dlock(detection.mu);
  EXPECT_EQ(detection.update_alert_requests.size(), 4u);
}

TEST_F(PantherctlDetectionTest, AlertsUpdateSendsOnlyGivenChanges) {
  CliResult result = RunPantherctl({"--server", server_.address(), "alerts", "update", "a1",
                                    "--assignee", "", "--comment", "looking"});
  ASSERT_EQ(result.code, 0) << result.err;
  EXPECT_THAT(result.out, ContainsRegex("ID: +a1\n"));
  result = RunPantherctl(
      {"--server", server_.address(), "alerts", "update", "a2", "--status", "closed"});
  ASSERT_EQ(result.code, 0) << result.err;
  EXPECT_THAT(result.out, ContainsRegex("Status: +CLOSED\n"));

  std::lock_guard<std::mutex> lock(detection_.mu);
  ASSERT_EQ(detection_.update_alert_requests.size(), 2u);
  const v1::UpdateAlertRequest& unassign = detection_.update_alert_requests[0];
  EXPECT_TRUE(unassign.has_assignee());
  EXPECT_EQ(unassign.assignee(), "");
  EXPECT_EQ(unassign.status(), v1::ALERT_STATUS_UNSPECIFIED);
  EXPECT_EQ(unassign.comment(), "looking");
  const v1::UpdateAlertRequest& close = detection_.update_alert_requests[1];
  EXPECT_FALSE(close.has_assignee());
  EXPECT_EQ(close.status(), v1::ALERT_STATUS_CLOSED);
}

// Security row 9: text from the server (alert titles, context, error
// messages) must not reach the terminal with control sequences: an OSC title
// change, a screen clear and a right-to-left override.
constexpr char kTerminalAttack[] = "\x1b]0;pwned\x07 \x1b[2J evil \u202Egnp.exe";

// Expects `text` to hold no ESC, BEL or U+202E bytes.
void ExpectNoRawControls(const std::string& text, const std::string& what) {
  EXPECT_EQ(text.find('\x1b'), std::string::npos) << what << ": " << text;
  EXPECT_EQ(text.find('\x07'), std::string::npos) << what << ": " << text;
  EXPECT_EQ(text.find("\u202E"), std::string::npos) << what << ": " << text;
}

TEST_F(PantherctlDetectionTest, ServerTextCannotDriveTheTerminal) {
  v1::Alert alert = MakeAlert("evil");
  alert.set_title(kTerminalAttack);
  alert.set_rule_id("rule\x1b[2J");
  alert.set_alert_context_json(absl::StrCat("{\"k\": \"", "\x1b]0;pwned\x07\u202E", "\"}"));
  alert.set_description(kTerminalAttack);
  detection_.alerts = {alert};
  const std::string server = server_.address();

  CliResult list = RunPantherctl({"--server", server, "alerts", "list"});
  ASSERT_EQ(list.code, 0) << list.err;
  ExpectNoRawControls(list.out + list.err, "alerts list");
  EXPECT_THAT(list.out, HasSubstr("\\x1b]0;pwned\\x07 \\x1b[2J evil \\u202egnp.exe"));

  CliResult get = RunPantherctl({"--server", server, "alerts", "get", "evil"});
  ASSERT_EQ(get.code, 0) << get.err;
  ExpectNoRawControls(get.out + get.err, "alerts get");
  EXPECT_THAT(get.out, ContainsRegex("Title: +\\\\x1b\\]0;pwned"));
  EXPECT_THAT(get.out, HasSubstr("\\u202e"));

  // JSON escapes them too, and still parses back to the same text.
  CliResult json = RunPantherctl({"--server", server, "--output", "json", "alerts", "get", "evil"});
  ASSERT_EQ(json.code, 0) << json.err;
  ExpectNoRawControls(json.out + json.err, "alerts get --output json");
  EXPECT_THAT(json.out, AllOf(HasSubstr("\\u001b"), HasSubstr("\\u0007")));
  v1::GetAlertResponse parsed;
  ASSERT_TRUE(JsonToMessage(json.out, &parsed).ok()) << json.out;
  EXPECT_EQ(parsed.alert().severity(), v1::SEVERITY_MEDIUM);
  EXPECT_EQ(parsed.alert().title(), kTerminalAttack);
  CliResult json_list = RunPantherctl({"--server", server, "--output", "json", "alerts", "list"});
  ASSERT_EQ(json_list.code, 0) << json_list.err;
  ExpectNoRawControls(json_list.out, "alerts list --output json");

  // An error message from the server stays one escaped line.
  {
    std::lock_guard<std::mutex> lock(detection_.mu);
    detection_.alerts_error = grpc::Status(grpc::StatusCode::INTERNAL, kTerminalAttack);
  }
  for (const std::vector<std::string>& command :
       std::vector<std::vector<std::string>>{{"list"}, {"get", "evil"}}) {
    std::vector<std::string> args = {"--server", server, "alerts"};
    args.insert(args.end(), command.begin(), command.end());
    CliResult failed = RunPantherctl(args);
    ExpectOneErrorLine(failed, 1);
    ExpectNoRawControls(failed.err, "error of alerts " + command[0]);
    EXPECT_THAT(failed.err, HasSubstr("error: \\x1b]0;pwned\\x07"));
  }
}

// --- Output formats, errors and alert details -------------------------------

TEST_F(PantherctlCliTest, VersionPrintsTheClientVersion) {
  CliResult result = RunPantherctl({"--version"});
  EXPECT_EQ(result.code, 0) << result.err;
  EXPECT_THAT(result.out, ContainsRegex("^pantherctl [0-9]+\\.[0-9]+\\.[0-9]+\n$"));
  EXPECT_EQ(result.err, "");
}

TEST_F(PantherctlCliTest, CsvIsOnlyForListCommands) {
  CliResult result = RunPantherctl({"--output", "csv", "status"});
  ExpectOneErrorLine(result, 2);
  EXPECT_THAT(result.err, HasSubstr("--output csv is only for list commands (rules list, "));
  EXPECT_THAT(result.err, HasSubstr("alerts list"));
}

TEST_F(PantherctlDetectionTest, RulesListCsvQuotesPerRfc4180) {
  v1::Rule quoted = MakeRule("a,\"quoted\" rule", v1::ANALYSIS_TYPE_RULE, true);
  quoted.add_log_types("AWS.CloudTrail");
  detection_.rules = {quoted, MakeRule("b.global", v1::ANALYSIS_TYPE_GLOBAL, false)};
  CliResult result =
      RunPantherctl({"--server", server_.address(), "--output", "csv", "rules", "list"});
  ASSERT_EQ(result.code, 0) << result.err;
  EXPECT_EQ(result.out,
            "ID,TYPE,ENABLED,SEVERITY,LOG TYPES,VERSION\r\n"
            "\"a,\"\"quoted\"\" rule\",rule,yes,HIGH,\"Okta.SystemLog,AWS.CloudTrail\",2\r\n"
            "b.global,global,-,-,-,2\r\n");
}

TEST_F(PantherctlDetectionTest, AlertsListCsvAndSeverityAlias) {
  detection_.alerts = {MakeAlert("a1")};
  CliResult result = RunPantherctl(
      {"--server", server_.address(), "--output", "csv", "alerts", "list", "--severity", "high"});
  ASSERT_EQ(result.code, 0) << result.err;
  EXPECT_EQ(result.out,
            "ID,CREATED,SEVERITY,STATUS,RULE,EVENTS,ASSIGNEE,TITLE\r\n"
            "a1,2024-05-01T12:00:00Z,MEDIUM,OPEN,okta.brute_force,5,-,Brute force a1\r\n");
  std::lock_guard<std::mutex> lock(detection_.mu);
  ASSERT_EQ(detection_.list_alerts_requests.size(), 1u);
  EXPECT_EQ(detection_.list_alerts_requests[0].min_severity(), v1::SEVERITY_HIGH);
}

TEST_F(PantherctlDetectionTest, AlertJsonHasShortEnumsAndNumericCounts) {
  v1::Alert alert = MakeAlert("a1");
  alert.set_status(v1::ALERT_STATUS_TRIAGED);
  alert.set_severity(v1::SEVERITY_CRITICAL);
  alert.set_type(v1::ALERT_TYPE_RULE_ERROR);
  alert.set_event_count(int64_t{1} << 40);
  detection_.alerts = {alert};
  CliResult result =
      RunPantherctl({"--server", server_.address(), "--output", "json", "alerts", "get", "a1"});
  ASSERT_EQ(result.code, 0) << result.err;
  EXPECT_THAT(
      result.out,
      AllOf(HasSubstr("\"severity\": \"CRITICAL\""), HasSubstr("\"status\": \"TRIAGED\""),
            HasSubstr("\"type\": \"RULE_ERROR\""), HasSubstr("\"eventCount\": 1099511627776,"),
            HasSubstr("\"createdTime\": \"2024-05-01T12:00:00Z\""), HasSubstr("\"history\": []"),
            ::testing::Not(HasSubstr("SEVERITY_")), ::testing::Not(HasSubstr("ALERT_STATUS_"))));
}

TEST_F(PantherctlDetectionTest, AlertsGetShowsEventsHistoryAndTraceback) {
  v1::Alert alert = MakeAlert("e1");
  alert.set_type(v1::ALERT_TYPE_RULE_ERROR);
  alert.mutable_error()->set_type("KeyError");
  alert.mutable_error()->set_message("'actor'");
  alert.mutable_error()->set_traceback(
      "Traceback (most recent call last):\n  File \"okta.py\", line 3, in rule\nKeyError: "
      "'actor'\n");
  v1::MatchedEvent* event = alert.add_matched_events();
  event->set_event_id("ev-1");
  event->set_log_type("Okta.SystemLog");
  event->set_json("{\"eventType\":\"user.session.start\"}");
  event->set_original_bytes(36);
  v1::AlertHistoryEntry* triage = alert.add_history();
  triage->mutable_time()->set_seconds(1714568400);
  triage->set_actor("alice");
  triage->set_old_status(v1::ALERT_STATUS_OPEN);
  triage->set_new_status(v1::ALERT_STATUS_TRIAGED);
  triage->set_assignee("bob");
  triage->set_comment("looking into it");
  detection_.alerts = {alert};
  CliResult result = RunPantherctl({"--server", server_.address(), "alerts", "get", "e1"});
  ASSERT_EQ(result.code, 0) << result.err;
  EXPECT_THAT(result.out, ::testing::Not(ContainsRegex("Context: +-")));
  EXPECT_THAT(result.out, ContainsRegex("Error: +KeyError: 'actor'\n"));
  EXPECT_THAT(result.out, HasSubstr("\nTraceback:\n  Traceback (most recent call last):\n"
                                    "    File \"okta.py\", line 3, in rule\n"
                                    "  KeyError: 'actor'\n"));
  EXPECT_THAT(result.out, HasSubstr("\nMatched events:\n  1. ev-1  Okta.SystemLog  -  36 bytes\n"
                                    "     {\"eventType\":\"user.session.start\"}\n"));
  EXPECT_THAT(result.out, HasSubstr("\nHistory (oldest first):\n"
                                    "  2024-05-01T13:00:00Z  alice  OPEN -> TRIAGED  "
                                    "assignee=bob\n      looking into it\n"));
}

}  // namespace
}  // namespace pantherd::client
