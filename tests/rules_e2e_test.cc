// End-to-end tests of Python detections (issue 3): the real pantherd (with its
// pantherd-worker processes) on a free 127.0.0.1 port with a temp data
// directory, driven by the real pantherctl binary.
//
// Fixtures are our own small rule folders under tests/testdata/rules_e2e/;
// the bundled pack is the repository's rules/ folder.
#include <signal.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "pantherd/v1/admin_service.pb.h"
#include "pantherd/v1/rules.pb.h"
#include "tests/test_util.h"

namespace pantherd::testing {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

constexpr char kPantherd[] = PANTHERD_BINARY;
constexpr char kPantherctl[] = PANTHERCTL_BINARY;
constexpr char kSourceDir[] = PANTHERD_SOURCE_DIR;

std::string BundledRules() { return absl::StrCat(kSourceDir, "/rules"); }
std::string Fixture(const std::string& name) {
  return absl::StrCat(kSourceDir, "/tests/testdata/rules_e2e/", name);
}

// Parses pantherctl's --output json into `message`. `status` output carries
// fields of pantherctl's own (uptimeSeconds): those callers allow unknown keys.
template <typename Message>
::testing::AssertionResult ParseJson(const std::string& json, Message* message,
                                     bool allow_unknown = false) {
  absl::Status status = ::pantherd::testing::ParsePantherctlJson(json, message, allow_unknown);
  if (!status.ok()) {
    return ::testing::AssertionFailure()
           << "not a " << message->GetTypeName() << ": " << status.ToString() << "\n"
           << json;
  }
  return ::testing::AssertionSuccess();
}

// pantherctl's error contract: exit `code`, stdout whatever, stderr exactly one
// line "pantherctl: error: <message>", the message for people: without the
// gRPC code name (`grpc_code`) the server failed with.
void ExpectOneLineError(const RunResult& r, int exit_code, const std::string& grpc_code) {
  EXPECT_EQ(r.exit_code, exit_code) << "stdout:\n" << r.out << "\nstderr:\n" << r.err;
  const absl::string_view err = absl::StripSuffix(r.err, "\n");
  EXPECT_FALSE(absl::StrContains(err, '\n')) << "stderr is not one line:\n" << r.err;
  EXPECT_THAT(std::string(err), StartsWith("pantherctl: error: ")) << r.err;
  EXPECT_THAT(std::string(err), Not(HasSubstr(grpc_code))) << r.err;
}

const v1::RuleTestResult* FindRule(const v1::TestReport& report, const std::string& id) {
  for (const v1::RuleTestResult& rule : report.rules()) {
    if (rule.rule_id() == id) return &rule;
  }
  return nullptr;
}

const v1::Rule* FindItem(const v1::ListRulesResponse& list, const std::string& id) {
  for (const v1::Rule& rule : list.rules()) {
    if (rule.id() == id) return &rule;
  }
  return nullptr;
}

// Declares `ServerProcess& name`, started by RulesE2ETest::Start(args...), or
// fails the test.
#define START_SERVER(name, ...)                                 \
  absl::StatusOr<ServerProcess> name##_or = Start(__VA_ARGS__); \
  ASSERT_TRUE(name##_or.ok()) << name##_or.status();            \
  ServerProcess& name = *name##_or

class RulesE2ETest : public ::testing::Test {
 protected:
  // Starts pantherd on 127.0.0.1:0 with data directory `data` (under the
  // test's temp dir) and two workers. Errors carry the server's log.
  absl::StatusOr<ServerProcess> Start(const std::string& data,
                                      std::vector<std::string> extra = {}) {
    extra.insert(extra.begin(), {"--workers", "2"});
    return ServerProcess::Start(kPantherd, tmp_.Sub(data), tmp_.path(), extra);
  }

  // Runs pantherctl against `server` with `args`.
  RunResult Ctl(const ServerProcess& server, const std::vector<std::string>& args,
                absl::Duration timeout = absl::Seconds(30)) {
    std::vector<std::string> argv = server.Ctl(kPantherctl, args);
    absl::StatusOr<RunResult> r = RunCommand(argv, tmp_.path(), timeout);
    EXPECT_TRUE(r.ok()) << absl::StrJoin(argv, " ") << ": " << r.status();
    return r.ok() ? *std::move(r) : RunResult();
  }

  // SIGTERM and a clean exit.
  void Stop(ServerProcess& server) {
    server.process().Signal(SIGTERM);
    absl::StatusOr<int> code = server.process().Wait(absl::Seconds(30));
    ASSERT_TRUE(code.ok()) << code.status();
    EXPECT_EQ(*code, 0) << server.Log();
  }

  v1::ListRulesResponse List(const ServerProcess& server) {
    RunResult r = Ctl(server, {"--output", "json", "rules", "list"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    v1::ListRulesResponse list;
    EXPECT_TRUE(ParseJson(r.out, &list));
    return list;
  }

  v1::GetRuleResponse Get(const ServerProcess& server, const std::string& id) {
    RunResult r = Ctl(server, {"--output", "json", "rules", "get", id, "--history", "--content"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    v1::GetRuleResponse got;
    EXPECT_TRUE(ParseJson(r.out, &got));
    return got;
  }

  void ExpectServing(const ServerProcess& server) {
    RunResult r = Ctl(server, {"--output", "json", "status"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    v1::GetServerStatusResponse status;
    EXPECT_TRUE(ParseJson(r.out, &status, /*allow_unknown=*/true));
    EXPECT_THAT(r.out, HasSubstr("\"SERVING\""));
  }

  TempDir tmp_;
};

// 1. `pantherctl test rules/` passes, as a pat-style table and as JSON.
TEST_F(RulesE2ETest, BundledPackPassesPantherctlTest) {
  START_SERVER(server, "data");

  RunResult table = Ctl(server, {"test", BundledRules()});
  EXPECT_EQ(table.exit_code, 0) << table.out << table.err;
  EXPECT_EQ(table.err, "");
  EXPECT_THAT(table.out, HasSubstr("Test Summary"));
  EXPECT_THAT(table.out, HasSubstr("\tFailed: 0\n"));
  EXPECT_THAT(table.out, HasSubstr("\tInvalid: 0\n"));
  EXPECT_THAT(table.out, Not(HasSubstr("[FAIL]")));
  EXPECT_THAT(table.out, HasSubstr("Okta.FailedLogin\n"));

  RunResult json = Ctl(server, {"--output", "json", "test", BundledRules()});
  EXPECT_EQ(json.exit_code, 0) << json.err;
  v1::RunTestsResponse response;
  ASSERT_TRUE(ParseJson(json.out, &response, /*allow_unknown=*/true));  // + "summary"
  const v1::TestReport& report = response.report();
  EXPECT_EQ(report.tests_failed(), 0);
  EXPECT_GT(report.tests_passed(), 0);
  EXPECT_EQ(report.invalid_size(), 0);
  EXPECT_GT(report.rules_size(), 10);
  for (const v1::RuleTestResult& rule : report.rules()) {
    EXPECT_TRUE(rule.passed()) << rule.rule_id();
    EXPECT_GT(rule.tests_size(), 0) << rule.rule_id();
  }
  EXPECT_NE(FindRule(report, "Okta.FailedLogin"), nullptr);
  // Every rule of the pack passed, and the table says so.
  EXPECT_THAT(table.out, HasSubstr(absl::StrCat("\tPassed: ", report.rules_size(), "\n")));
  // Nothing was stored by `test`.
  EXPECT_EQ(List(server).rules_size(), 0);
}

// 2. --rules-dir loads the bundled pack.
TEST_F(RulesE2ETest, BundledPackIsServedWithRulesDir) {
  START_SERVER(server, "data", {"--rules-dir", BundledRules()});

  RunResult list = Ctl(server, {"rules", "list"});
  EXPECT_EQ(list.exit_code, 0) << list.err;
  EXPECT_THAT(list.out, HasSubstr("Okta.FailedLogin"));
  EXPECT_THAT(list.out, HasSubstr("panther_base_helpers"));
  EXPECT_THAT(list.out, HasSubstr("panther_okta_helpers"));

  RunResult status = Ctl(server, {"--output", "json", "status"});
  EXPECT_EQ(status.exit_code, 0) << status.err;
  v1::GetServerStatusResponse parsed;
  ASSERT_TRUE(ParseJson(status.out, &parsed, /*allow_unknown=*/true));
  EXPECT_GT(parsed.rule_count(), 10);
  EXPECT_GE(parsed.global_count(), 2);

  v1::GetRuleResponse failed_login = Get(server, "Okta.FailedLogin");
  EXPECT_EQ(failed_login.rule().author(), "bundled");
  EXPECT_EQ(failed_login.rule().severity(), v1::SEVERITY_MEDIUM);
  EXPECT_EQ(failed_login.rule().dedup_period_minutes(), 60);
}

// 3 and 9. A failing test refuses the upload with a readable report; nothing
// of it is stored, the previous set stays; --skip-tests stores it.
TEST_F(RulesE2ETest, FailingTestRefusesUploadAtomically) {
  START_SERVER(server, "data");

  RunResult first = Ctl(server, {"upload", Fixture("good")});
  ASSERT_EQ(first.exit_code, 0) << first.out << first.err;
  const std::string alpha_sha = Get(server, "E2E.Alpha").rule().content_sha256();

  RunResult refused = Ctl(server, {"upload", Fixture("failing_upload")});
  ExpectOneLineError(refused, 1, "FAILED_PRECONDITION");
  EXPECT_THAT(refused.err, HasSubstr("E2E.Failing"));
  EXPECT_THAT(refused.err, HasSubstr("--skip-tests"));  // The flag, not the request field.
  EXPECT_THAT(refused.err, Not(HasSubstr("skip_tests")));
  EXPECT_THAT(refused.out, HasSubstr("E2E.Failing\n"));
  EXPECT_THAT(refused.out, HasSubstr("[FAIL] Title reads a missing key"));
  EXPECT_THAT(refused.out, HasSubstr("[FAIL] [title] KeyError"));
  EXPECT_THAT(refused.out, HasSubstr("Test Summary"));

  // Nothing of the refused upload was stored.
  RunResult missing = Ctl(server, {"rules", "get", "E2E.Failing"});
  ExpectOneLineError(missing, 1, "NOT_FOUND");

  // 9. The previous set is intact: same items, same versions, same content
  // (the refused upload carried a passing v2 of E2E.Alpha too).
  v1::ListRulesResponse list = List(server);
  EXPECT_EQ(list.rules_size(), 2);
  for (const char* id : {"E2E.Alpha", "E2E.Beta"}) {
    const v1::Rule* item = FindItem(list, id);
    ASSERT_NE(item, nullptr) << id;
    EXPECT_EQ(item->version(), 1) << id;
  }
  v1::GetRuleResponse alpha = Get(server, "E2E.Alpha");
  EXPECT_EQ(alpha.rule().content_sha256(), alpha_sha);
  EXPECT_EQ(alpha.history_size(), 1);

  // --skip-tests stores it anyway.
  RunResult skipped = Ctl(server, {"upload", "--skip-tests", Fixture("failing_upload")});
  EXPECT_EQ(skipped.exit_code, 0) << skipped.out << skipped.err;
  v1::GetRuleResponse failing = Get(server, "E2E.Failing");
  EXPECT_EQ(failing.rule().version(), 1);
  EXPECT_EQ(Get(server, "E2E.Alpha").rule().version(), 2);
}

// 4. A Python syntax error names the file (as uploaded) and the line.
TEST_F(RulesE2ETest, SyntaxErrorNamesFileAndLine) {
  START_SERVER(server, "data");
  RunResult r = Ctl(server, {"upload", Fixture("syntax_error")});
  ExpectOneLineError(r, 1, "INVALID_ARGUMENT");
  EXPECT_THAT(r.err, HasSubstr("nested/deeper/e2e_syntax.py:5"));
  EXPECT_THAT(r.err, HasSubstr("SyntaxError"));
  EXPECT_THAT(r.out, HasSubstr("nested/deeper/e2e_syntax.py:5: rule E2E.Syntax: SyntaxError"));
  // The path is the one the user wrote, not the server's or a worker's.
  for (const std::string* text : {&r.out, &r.err}) {
    EXPECT_THAT(*text, Not(HasSubstr(tmp_.path())));
    EXPECT_THAT(*text, Not(HasSubstr(Fixture("syntax_error/"))));
    EXPECT_THAT(*text, Not(HasSubstr("items/")));  // The server's internal layout.
  }
  EXPECT_EQ(List(server).rules_size(), 0);

  // `test` reports it the same way, as an invalid spec.
  RunResult test = Ctl(server, {"test", Fixture("syntax_error")});
  EXPECT_EQ(test.exit_code, 1);
  EXPECT_THAT(test.out, HasSubstr("nested/deeper/e2e_syntax.py:5: rule E2E.Syntax: SyntaxError"));
}

// 5. An invalid spec names file, field and line.
TEST_F(RulesE2ETest, InvalidSpecNamesFileFieldAndLine) {
  START_SERVER(server, "data");
  RunResult r = Ctl(server, {"upload", Fixture("bad_spec")});
  ExpectOneLineError(r, 1, "INVALID_ARGUMENT");
  EXPECT_THAT(r.err, HasSubstr("e2e_bad_spec.yml"));
  EXPECT_THAT(r.out, HasSubstr("e2e_bad_spec.yml:6: Severity: "));
  EXPECT_THAT(r.out, HasSubstr("Urgent"));
  EXPECT_THAT(r.out, HasSubstr("e2e_bad_spec.yml:7: Colour: "));
  EXPECT_THAT(r.out, HasSubstr("unknown key"));
  EXPECT_EQ(List(server).rules_size(), 0);

  RunResult json = Ctl(server, {"--output", "json", "upload", Fixture("bad_spec")});
  EXPECT_EQ(json.exit_code, 1);
  v1::UploadRuleResponse response;
  ASSERT_TRUE(ParseJson(json.out, &response));
  bool severity = false, unknown = false;
  for (const v1::Diagnostic& d : response.report().invalid()) {
    EXPECT_EQ(d.file(), "e2e_bad_spec.yml");
    if (d.field() == "Severity" && d.line() == 6) severity = true;
    if (d.field() == "Colour" && d.line() == 7) unknown = true;
  }
  EXPECT_TRUE(severity) << json.out;
  EXPECT_TRUE(unknown) << json.out;
}

// 6. Versions, history and content survive a restart.
TEST_F(RulesE2ETest, VersionsSurviveRestart) {
  std::string v1_sha;
  {
    START_SERVER(server, "data");
    RunResult up1 = Ctl(server, {"upload", Fixture("versions/v1")});
    ASSERT_EQ(up1.exit_code, 0) << up1.out << up1.err;
    v1_sha = Get(server, "E2E.Versioned").rule().content_sha256();
    RunResult up2 = Ctl(server, {"upload", Fixture("versions/v2")});
    ASSERT_EQ(up2.exit_code, 0) << up2.out << up2.err;
    // The same content again is not a new version.
    RunResult again = Ctl(server, {"upload", Fixture("versions/v2")});
    EXPECT_EQ(again.exit_code, 0) << again.err;
    EXPECT_THAT(again.out, HasSubstr("Unchanged: E2E.Versioned"));
    Stop(server);
  }
  START_SERVER(server, "data");
  RunResult r =
      Ctl(server, {"--output", "json", "rules", "get", "E2E.Versioned", "--history", "--content"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  v1::GetRuleResponse got;
  ASSERT_TRUE(ParseJson(r.out, &got));
  EXPECT_EQ(got.rule().version(), 2);
  EXPECT_EQ(got.rule().severity(), v1::SEVERITY_HIGH);
  ASSERT_EQ(got.history_size(), 2);
  EXPECT_EQ(got.history(0).version(), 2);  // Newest first.
  EXPECT_EQ(got.history(1).version(), 1);
  EXPECT_EQ(got.history(1).content_sha256(), v1_sha);
  EXPECT_EQ(got.history(0).content_sha256(), got.rule().content_sha256());
  EXPECT_NE(got.rule().content_sha256(), v1_sha);
  std::string py;
  for (const v1::AnalysisFile& f : got.rule().files()) {
    if (f.path() == "e2e_versioned.py") py = f.content();
  }
  EXPECT_THAT(py, HasSubstr("version two"));
  EXPECT_THAT(py, HasSubstr("versioned.v2"));

  // The table form shows the same.
  RunResult table = Ctl(server, {"rules", "get", "E2E.Versioned", "--history", "--content"});
  EXPECT_EQ(table.exit_code, 0) << table.err;
  EXPECT_THAT(table.out, HasSubstr("# e2e_versioned version two"));
  EXPECT_THAT(table.out, HasSubstr("History:"));

  // And the restored rule is live: its tests run from the store.
  RunResult test = Ctl(server, {"test", Fixture("versions/v2")});
  EXPECT_EQ(test.exit_code, 0) << test.out << test.err;
}

// 7. A rule that kills its worker is an error of that rule's test; the other
// rules pass and the server keeps serving.
TEST_F(RulesE2ETest, CrashingRuleIsAnErrorAndServerKeepsServing) {
  START_SERVER(server, "data");
  RunResult r = Ctl(server, {"--output", "json", "test", Fixture("crash")});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  v1::RunTestsResponse response;
  ASSERT_TRUE(ParseJson(r.out, &response, /*allow_unknown=*/true));  // + "summary"
  for (const char* id : {"E2E.Alpha", "E2E.Beta"}) {
    const v1::RuleTestResult* rule = FindRule(response.report(), id);
    ASSERT_NE(rule, nullptr) << id;
    EXPECT_TRUE(rule->passed()) << id;
  }
  const v1::RuleTestResult* crash = FindRule(response.report(), "E2E.Crash");
  ASSERT_NE(crash, nullptr) << r.out;
  EXPECT_FALSE(crash->passed());
  ASSERT_EQ(crash->tests_size(), 1) << r.out;
  const v1::TestCaseResult& test = crash->tests(0);
  EXPECT_EQ(test.outcome(), v1::TestCaseResult::OUTCOME_ERROR);
  std::string errors;
  for (const v1::FunctionResult& f : test.functions()) {
    absl::StrAppend(&errors, f.error().type(), ": ", f.error().message(), "\n");
  }
  EXPECT_THAT(errors, HasSubstr("crashed")) << r.out;
  EXPECT_THAT(errors, HasSubstr("SIGABRT")) << r.out;
  // The report names the test that crashed, as written in the spec.
  EXPECT_EQ(test.name(), "Aborts the worker") << r.out;

  // The table form says so too.
  RunResult table = Ctl(server, {"test", Fixture("crash")});
  EXPECT_EQ(table.exit_code, 1);
  EXPECT_THAT(table.out, HasSubstr("WorkerCrashed"));
  EXPECT_THAT(table.out, HasSubstr("\tPassed: 2\n"));
  EXPECT_THAT(table.out, HasSubstr("\tFailed: 1\n"));

  ExpectServing(server);
  // Replaced workers still run rules.
  RunResult good = Ctl(server, {"test", Fixture("good")});
  EXPECT_EQ(good.exit_code, 0) << good.out << good.err;
}

// 8. A rule that never returns times out after --rule-timeout-seconds.
TEST_F(RulesE2ETest, RunawayRuleTimesOut) {
  START_SERVER(server, "data", {"--rule-timeout-seconds", "1"});
  const absl::Time start = absl::Now();
  RunResult r = Ctl(server, {"--output", "json", "test", Fixture("runaway")});
  const absl::Duration took = absl::Now() - start;
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_LT(took, absl::Seconds(8));
  v1::RunTestsResponse response;
  ASSERT_TRUE(ParseJson(r.out, &response, /*allow_unknown=*/true));  // + "summary"
  const v1::RuleTestResult* beta = FindRule(response.report(), "E2E.Beta");
  ASSERT_NE(beta, nullptr);
  EXPECT_TRUE(beta->passed());
  const v1::RuleTestResult* runaway = FindRule(response.report(), "E2E.Runaway");
  ASSERT_NE(runaway, nullptr) << r.out;
  EXPECT_FALSE(runaway->passed());
  ASSERT_EQ(runaway->tests_size(), 1);
  EXPECT_EQ(runaway->tests(0).outcome(), v1::TestCaseResult::OUTCOME_ERROR);
  EXPECT_EQ(runaway->tests(0).name(), "Never returns");
  bool timeout = false;
  for (const v1::FunctionResult& f : runaway->tests(0).functions()) {
    if (f.function() == "rule" &&
        absl::StrContains(absl::StrCat(f.error().type(), f.error().message()), "Timeout")) {
      timeout = true;
    }
  }
  EXPECT_TRUE(timeout) << r.out;

  ExpectServing(server);
  RunResult good = Ctl(server, {"test", Fixture("good")});
  EXPECT_EQ(good.exit_code, 0) << good.out << good.err;
}

// 10. A user's global with a bundled GlobalID replaces ours, across restarts
// with --rules-dir.
TEST_F(RulesE2ETest, UserGlobalReplacesBundledOneAcrossRestart) {
  // The user's version: our helpers (so the bundled rules still pass) plus a
  // marker, in a folder of the user's own.
  const std::string folder = tmp_.Sub("user_global");
  std::filesystem::create_directories(folder);
  {
    std::ofstream(absl::StrCat(folder, "/panther_base_helpers.py"))
        << ReadFileOrEmpty(BundledRules() + "/global_helpers/panther_base_helpers.py")
        << "\n\nUSER_VERSION_MARKER = \"ours, not bundled\"\n";
    std::ofstream(absl::StrCat(folder, "/panther_base_helpers.yml"))
        << "AnalysisType: global\n"
           "Filename: panther_base_helpers.py\n"
           "GlobalID: panther_base_helpers\n"
           "Description: The team's own copy of the base helpers.\n";
  }
  ASSERT_THAT(ReadFileOrEmpty(absl::StrCat(folder, "/panther_base_helpers.py")),
              HasSubstr("def deep_get"));
  {
    START_SERVER(server, "data", {"--rules-dir", BundledRules()});
    v1::GetRuleResponse bundled = Get(server, "panther_base_helpers");
    EXPECT_EQ(bundled.rule().author(), "bundled");
    RunResult up = Ctl(server, {"upload", folder});
    ASSERT_EQ(up.exit_code, 0) << up.out << up.err;
    v1::GetRuleResponse mine = Get(server, "panther_base_helpers");
    EXPECT_EQ(mine.rule().version(), bundled.rule().version() + 1);
    EXPECT_NE(mine.rule().author(), "bundled");
    Stop(server);
  }
  START_SERVER(server, "data", {"--rules-dir", BundledRules()});
  v1::GetRuleResponse got = Get(server, "panther_base_helpers");
  EXPECT_NE(got.rule().author(), "bundled");
  EXPECT_EQ(got.rule().author(), "admin");  // The user behind the token.
  EXPECT_EQ(got.rule().version(), 2);
  EXPECT_EQ(got.history_size(), 2);
  bool marker = false;
  for (const v1::AnalysisFile& f : got.rule().files()) {
    if (absl::StrContains(f.content(), "USER_VERSION_MARKER")) marker = true;
  }
  EXPECT_TRUE(marker);
  RunResult table = Ctl(server, {"rules", "get", "panther_base_helpers"});
  EXPECT_THAT(table.out, Not(HasSubstr("bundled")));
  // The other bundled items are still the bundled ones.
  EXPECT_EQ(Get(server, "Okta.FailedLogin").rule().author(), "bundled");
}

// 11. disable, list --disabled, delete, get -> NOT_FOUND.
TEST_F(RulesE2ETest, DisableThenDelete) {
  START_SERVER(server, "data");
  RunResult up = Ctl(server, {"upload", Fixture("good")});
  ASSERT_EQ(up.exit_code, 0) << up.out << up.err;

  RunResult disable = Ctl(server, {"rules", "disable", "E2E.Beta"});
  EXPECT_EQ(disable.exit_code, 0) << disable.err;
  RunResult disabled = Ctl(server, {"rules", "list", "--disabled"});
  EXPECT_EQ(disabled.exit_code, 0) << disabled.err;
  EXPECT_THAT(disabled.out, HasSubstr("E2E.Beta"));
  EXPECT_THAT(disabled.out, Not(HasSubstr("E2E.Alpha")));
  RunResult enabled = Ctl(server, {"rules", "list", "--enabled"});
  EXPECT_THAT(enabled.out, AllOf(HasSubstr("E2E.Alpha"), Not(HasSubstr("E2E.Beta"))));
  EXPECT_FALSE(Get(server, "E2E.Beta").rule().enabled());

  RunResult del = Ctl(server, {"rules", "delete", "E2E.Beta"});
  EXPECT_EQ(del.exit_code, 0) << del.err;
  EXPECT_THAT(del.out, HasSubstr("Deleted E2E.Beta"));
  RunResult get = Ctl(server, {"rules", "get", "E2E.Beta"});
  ExpectOneLineError(get, 1, "NOT_FOUND");
  EXPECT_THAT(get.err, HasSubstr("E2E.Beta"));
  EXPECT_THAT(get.err, HasSubstr("add --include-deleted"));
  // The history is kept, as `rules delete --help` says: readable with
  // --include-deleted (upload v1, disable v2, delete v3).
  RunResult kept = Ctl(server, {"rules", "get", "E2E.Beta", "--history", "--include-deleted"});
  ASSERT_EQ(kept.exit_code, 0) << kept.err;
  EXPECT_THAT(kept.out, ::testing::ContainsRegex("Deleted: +yes, at version 3 by "));
  EXPECT_THAT(kept.out, HasSubstr("\nHistory:\nVERSION  AUTHOR"));
  v1::GetRuleResponse deleted;
  RunResult json = Ctl(
      server, {"--output", "json", "rules", "get", "E2E.Beta", "--history", "--include-deleted"});
  ASSERT_EQ(json.exit_code, 0) << json.err;
  ASSERT_TRUE(ParseJson(json.out, &deleted));
  EXPECT_TRUE(deleted.rule().deleted());
  EXPECT_EQ(deleted.rule().version(), 3);
  ASSERT_EQ(deleted.history_size(), 3);
  EXPECT_TRUE(deleted.history(0).deleted());
  v1::ListRulesResponse list = List(server);
  EXPECT_EQ(FindItem(list, "E2E.Beta"), nullptr);
  EXPECT_NE(FindItem(list, "E2E.Alpha"), nullptr);

  // Deleting it again, or an unknown id, is NOT_FOUND too.
  ExpectOneLineError(Ctl(server, {"rules", "delete", "E2E.Beta"}), 1, "NOT_FOUND");
  ExpectOneLineError(Ctl(server, {"rules", "disable", "E2E.Nope"}), 1, "NOT_FOUND");
}

// 12. `alternateID` in the rule finds Okta's `alternateId`.
TEST_F(RulesE2ETest, EventLookupIsCaseInsensitive) {
  START_SERVER(server, "data");
  RunResult r = Ctl(server, {"--output", "json", "test", Fixture("case_insensitive")});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  v1::RunTestsResponse response;
  ASSERT_TRUE(ParseJson(r.out, &response, /*allow_unknown=*/true));  // + "summary"
  const v1::RuleTestResult* rule = FindRule(response.report(), "E2E.CaseInsensitive");
  ASSERT_NE(rule, nullptr);
  EXPECT_TRUE(rule->passed());
  ASSERT_EQ(rule->tests_size(), 2);
  for (const v1::TestCaseResult& test : rule->tests()) {
    EXPECT_EQ(test.outcome(), v1::TestCaseResult::OUTCOME_PASSED) << test.name();
  }
  RunResult table = Ctl(server, {"test", Fixture("case_insensitive")});
  EXPECT_EQ(table.exit_code, 0) << table.out << table.err;
  EXPECT_THAT(table.out, HasSubstr("[PASS] alternateID finds alternateId"));
  EXPECT_THAT(table.out, HasSubstr("[PASS] [title] Login by jane.doe@acme.com"));

  // Uploading gates on the same tests.
  RunResult up = Ctl(server, {"upload", Fixture("case_insensitive")});
  EXPECT_EQ(up.exit_code, 0) << up.out << up.err;
}

}  // namespace
}  // namespace pantherd::testing
