// `pantherctl upload`, `pantherctl test` and `rules enable|disable` against
// an in-process fake DetectionService.
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "client/cli.h"
#include "client/commands.h"
#include "client/connection.h"
#include "client/fake_pantherd.h"
#include "client/output.h"
#include "gmock/gmock.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"

namespace pantherd::client {
namespace {

namespace fs = std::filesystem;
namespace v1 = ::pantherd::v1;
using ::pantherd::client::testing::FakeDetectionService;
using ::pantherd::client::testing::FakePantherd;
using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::Pair;
using ::testing::StartsWith;
using ::testing::UnorderedElementsAre;

using ::pantherd::client::testing::CliResult;
using ::pantherd::client::testing::RunPantherctl;

// (path, content) of each file of a request.
std::vector<std::pair<std::string, std::string>> Pairs(
    const google::protobuf::RepeatedPtrField<v1::AnalysisFile>& files) {
  std::vector<std::pair<std::string, std::string>> pairs;
  for (const v1::AnalysisFile& file : files) pairs.emplace_back(file.path(), file.content());
  return pairs;
}

v1::TestReport PassingReport() {
  v1::TestReport report;
  v1::RuleTestResult* rule = report.add_rules();
  rule->set_rule_id("Okta.Login.Failed");
  rule->set_passed(true);
  v1::TestCaseResult* test = rule->add_tests();
  test->set_name("Failed Login");
  test->set_expected_result(true);
  test->set_outcome(v1::TestCaseResult::OUTCOME_PASSED);
  v1::FunctionResult* f = test->add_functions();
  f->set_function("rule");
  f->set_output_json("true");
  f = test->add_functions();
  f->set_function("title");
  f->set_output_json("\"Multiple Failed Logins for homer\"");
  report.set_tests_passed(1);
  return report;
}

v1::TestReport FailingReport() {
  v1::TestReport report = PassingReport();
  v1::RuleTestResult* rule = report.add_rules();
  rule->set_rule_id("Okta.Admin.Granted");
  v1::TestCaseResult* test = rule->add_tests();
  test->set_name("Admin role");
  test->set_expected_result(true);
  test->set_outcome(v1::TestCaseResult::OUTCOME_ERROR);
  v1::FunctionResult* f = test->add_functions();
  f->set_function("rule");
  f->set_output_json("true");
  f = test->add_functions();
  f->set_function("alert_context");
  f->mutable_error()->set_type("KeyError");
  f->mutable_error()->set_message("'target'");
  report.set_tests_failed(1);
  return report;
}

class AnalysisCommandsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    unsetenv(kServerEnvVar);
    unsetenv(kTokenEnvVar);
    unsetenv("PANTHER_MINIMUM_TESTS");
    ASSERT_TRUE(server_.ok());
    const ::testing::TestInfo* info = ::testing::UnitTest::GetInstance()->current_test_info();
    root_ = fs::path(::testing::TempDir()) /
            (std::string("pantherctl_cmd_") + info->name() + "_" + std::to_string(getpid()));
    fs::remove_all(root_);
    Write("okta_rules/okta_failed_login.yml",
          "AnalysisType: rule\nFilename: okta_failed_login.py\n");
    Write("okta_rules/okta_failed_login.py", "def rule(event):\n    return True\n");
    Write("okta_rules/deeper/admin.yml", "AnalysisType: rule\n");
    Write("okta_rules/deeper/admin.py", "def rule(event):\n    return False\n");
    Write("global_helpers/panther_base_helpers.py", "X = 1\n");
    Write("global_helpers/panther_base_helpers.yml", "AnalysisType: global\n");
    Write(".git/config.yml", "hidden");
    Write("okta_rules/__pycache__/x.py", "cache");
    Write("README.md", "docs");
  }
  void TearDown() override {
    fs::remove_all(root_);
    unsetenv("PANTHER_MINIMUM_TESTS");
  }

  void Write(const std::string& relative, const std::string& content) {
    const fs::path path = root_ / relative;
    fs::create_directories(path.parent_path());
    std::ofstream(path, std::ios::binary) << content;
  }

  std::vector<std::string> Args(std::vector<std::string> args) {
    args.insert(args.begin(), {"--server", server_.address()});
    return args;
  }

  const std::vector<std::pair<std::string, std::string>> kExpectedFiles = {
      {"global_helpers/panther_base_helpers.py", "X = 1\n"},
      {"global_helpers/panther_base_helpers.yml", "AnalysisType: global\n"},
      {"okta_rules/deeper/admin.py", "def rule(event):\n    return False\n"},
      {"okta_rules/deeper/admin.yml", "AnalysisType: rule\n"},
      {"okta_rules/okta_failed_login.py", "def rule(event):\n    return True\n"},
      {"okta_rules/okta_failed_login.yml", "AnalysisType: rule\nFilename: okta_failed_login.py\n"},
  };

  fs::path root_;
  FakeDetectionService detection_;
  FakePantherd server_{{&detection_}};
};

// --- upload ------------------------------------------------------------------

TEST_F(AnalysisCommandsTest, UploadSendsEveryFileOnceWithRelativePaths) {
  v1::Rule* stored = detection_.upload_response.add_stored();
  stored->set_id("Okta.Login.Failed");
  stored->set_type(v1::ANALYSIS_TYPE_RULE);
  stored->set_version(3);
  stored = detection_.upload_response.add_stored();
  stored->set_id("panther_base_helpers");
  stored->set_type(v1::ANALYSIS_TYPE_GLOBAL);
  stored->set_version(1);
  detection_.upload_response.add_unchanged_ids("Okta.Admin.Granted");
  v1::SkippedContent* skipped = detection_.upload_response.add_skipped();
  skipped->set_analysis_type("policy");
  skipped->set_count(2);
  *detection_.upload_response.mutable_report() = PassingReport();

  CliResult result = RunPantherctl(Args({"upload", root_.string()}));
  ASSERT_EQ(result.code, 0) << result.err;
  EXPECT_EQ(result.err, "");
  EXPECT_EQ(result.out, "Uploaded " + root_.string() +
                            ": 2 stored, 1 unchanged\n"
                            "ID                    TYPE    VERSION\n"
                            "Okta.Login.Failed     rule    3\n"
                            "panther_base_helpers  global  1\n"
                            "Unchanged: Okta.Admin.Granted\n"
                            "Skipped (not run by pantherd): 2 policy\n"
                            "Tests: 1 passed, 0 failed\n");

  std::lock_guard<std::mutex> lock(detection_.mu);
  ASSERT_EQ(detection_.upload_requests.size(), 1u);
  const v1::UploadRuleRequest& request = detection_.upload_requests[0];
  EXPECT_EQ(Pairs(request.files()), kExpectedFiles);
  EXPECT_FALSE(request.skip_tests());
}

TEST_F(AnalysisCommandsTest, UploadPrintsTheServersWarningsPerFile) {
  detection_.upload_response.add_stored()->set_id("AWS.Root");
  v1::Diagnostic* w = detection_.upload_response.add_warnings();
  w->set_file("okta_rules/okta_failed_login.yml");
  w->set_field("LogTypes");
  w->set_message("pantherd does not ingest log type AWS.CloudTrail (supported: Okta.SystemLog)");
  w = detection_.upload_response.add_warnings();
  w->set_file("okta_rules/deeper/admin.yml");
  w->set_field("OutputIds");
  w->set_message("no destination named slack-sec; destinations are not configured");
  CliResult result = RunPantherctl(Args({"upload", root_.string()}));
  ASSERT_EQ(result.code, 0) << result.err;
  EXPECT_THAT(result.out,
              HasSubstr("Warnings:\n"
                        "  okta_rules/okta_failed_login.yml: LogTypes: pantherd does not ingest "
                        "log type AWS.CloudTrail (supported: Okta.SystemLog)\n"
                        "  okta_rules/deeper/admin.yml: OutputIds: no destination named "
                        "slack-sec; destinations are not configured\n"));

  result = RunPantherctl(Args({"--output", "json", "upload", root_.string()}));
  ASSERT_EQ(result.code, 0) << result.err;
  EXPECT_THAT(result.out, HasSubstr("\"warnings\": ["));
}

TEST_F(AnalysisCommandsTest, UploadSkipTestsFlagAndJson) {
  detection_.upload_response.add_stored()->set_id("Okta.Login.Failed");
  CliResult result = RunPantherctl(Args({"upload", root_.string(), "--skip-tests"}));
  ASSERT_EQ(result.code, 0) << result.err;
  EXPECT_THAT(result.out, HasSubstr("Tests: not run (--skip-tests)\n"));

  result = RunPantherctl(Args({"--output", "json", "upload", root_.string() + "/okta_rules"}));
  ASSERT_EQ(result.code, 0) << result.err;
  v1::UploadRuleResponse parsed;
  ASSERT_TRUE(JsonToMessage(result.out, &parsed).ok()) << result.out;
  EXPECT_EQ(parsed.stored(0).id(), "Okta.Login.Failed");

  std::lock_guard<std::mutex> lock(detection_.mu);
  ASSERT_EQ(detection_.upload_requests.size(), 2u);
  EXPECT_TRUE(detection_.upload_requests[0].skip_tests());
  EXPECT_FALSE(detection_.upload_requests[1].skip_tests());
  // Paths are relative to the folder given.
  EXPECT_THAT(
      Pairs(detection_.upload_requests[1].files()),
      ElementsAre(Pair("deeper/admin.py", ::testing::_), Pair("deeper/admin.yml", ::testing::_),
                  Pair("okta_failed_login.py", ::testing::_),
                  Pair("okta_failed_login.yml", ::testing::_)));
}

TEST_F(AnalysisCommandsTest, RefusedUploadPrintsTheReportFromErrorDetails) {
  v1::UploadRuleResponse refused;
  *refused.mutable_report() = FailingReport();
  detection_.upload_error =
      grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, "1 test failed; nothing was stored",
                   refused.SerializeAsString());
  CliResult result = RunPantherctl(Args({"upload", root_.string()}));
  EXPECT_EQ(result.code, 1);
  EXPECT_EQ(result.err, "pantherctl: error: 1 test failed; nothing was stored\n");
  EXPECT_EQ(result.out,
            "Okta.Admin.Granted\n"
            "\t[FAIL] Admin role\n"
            "\t\t[PASS] [rule] true\n"
            "\t\t[FAIL] [alertContext] KeyError: 'target'\n"
            "\n"
            "--------------------------\n"
            "Failed Tests Summary\n"
            "\tOkta.Admin.Granted\n"
            "\t\t['Admin role:alertContext']\n"
            "\n"
            "--------------------------\n"
            "Test Summary\n"
            "\tPath: " +
                root_.string() +
                "\n"
                "\tPassed: 1\n"
                "\tSkipped: 0\n"
                "\tFailed: 1\n"
                "\tInvalid: 0\n"
                "\tTests: 1 passed, 1 failed\n"
                "\n");

  // JSON: the decoded response.
  result = RunPantherctl(Args({"upload", root_.string(), "--output", "json"}));
  EXPECT_EQ(result.code, 1);
  v1::UploadRuleResponse parsed;
  ASSERT_TRUE(JsonToMessage(result.out, &parsed).ok()) << result.out;
  EXPECT_EQ(parsed.report().rules(1).tests(0).functions(1).error().type(), "KeyError");
  EXPECT_EQ(parsed.report().rules(1).tests(0).outcome(), v1::TestCaseResult::OUTCOME_ERROR);
  EXPECT_THAT(result.out, HasSubstr("\"outcome\": \"ERROR\""));  // Without OUTCOME_.
}

// The server's hint names the request field; pantherctl names its flag.
TEST_F(AnalysisCommandsTest, RefusedUploadHintNamesTheFlag) {
  detection_.upload_error =
      grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                   "1 rule failed its tests (Okta.Admin.Granted); nothing was stored. Fix the "
                   "rules, or upload with skip_tests.");
  CliResult result = RunPantherctl(Args({"upload", root_.string()}));
  EXPECT_EQ(result.code, 1);
  EXPECT_EQ(result.err,
            "pantherctl: error: 1 rule failed its tests (Okta.Admin.Granted); nothing was "
            "stored. Fix the rules, or upload with --skip-tests.\n");
}

TEST_F(AnalysisCommandsTest, InvalidUploadPrintsDiagnostics) {
  v1::UploadRuleResponse refused;
  v1::Diagnostic* d = refused.mutable_report()->add_invalid();
  d->set_file("okta_rules/deeper/admin.yml");
  d->set_line(1);
  d->set_field("RuleID");
  d->set_message("is required");
  detection_.upload_error =
      grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                   "1 problem in 1 file (first: okta_rules/deeper/admin.yml line 1: RuleID is "
                   "required)",
                   refused.SerializeAsString());
  CliResult result = RunPantherctl(Args({"upload", root_.string()}));
  EXPECT_EQ(result.code, 1);
  EXPECT_THAT(result.err, StartsWith("pantherctl: error: 1 problem in 1 file"));
  EXPECT_THAT(result.out,
              AllOf(HasSubstr("Invalid Tests Summary\n"
                              "\tokta_rules/deeper/admin.yml\n"
                              "\t\tokta_rules/deeper/admin.yml:1: RuleID: is required\n"),
                    HasSubstr("\tInvalid: 1\n")));
}

TEST_F(AnalysisCommandsTest, LargeErrorDetailsGetThrough) {
  v1::UploadRuleResponse refused;
  *refused.mutable_report() = FailingReport();
  // A long traceback: well beyond gRPC's default 8 KiB metadata limit.
  refused.mutable_report()
      ->mutable_rules(1)
      ->mutable_tests(0)
      ->mutable_functions(1)
      ->mutable_error()
      ->set_traceback(std::string(200 * 1024, 't'));
  detection_.upload_error = grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, "tests failed",
                                         refused.SerializeAsString());
  CliResult result = RunPantherctl(Args({"upload", root_.string()}));
  EXPECT_EQ(result.code, 1);
  EXPECT_EQ(result.err, "pantherctl: error: tests failed\n");
  EXPECT_THAT(result.out, HasSubstr("[FAIL] [alertContext] KeyError: 'target'\n"));
}

TEST_F(AnalysisCommandsTest, ErrorWithoutDetailsIsOneLine) {
  detection_.upload_error = grpc::Status(grpc::StatusCode::PERMISSION_DENIED, "viewer may not");
  CliResult result = RunPantherctl(Args({"upload", root_.string()}));
  EXPECT_EQ(result.code, 1);
  EXPECT_EQ(result.out, "");
  EXPECT_EQ(result.err, "pantherctl: error: permission denied: viewer may not\n");

  // Details that are not an UploadRuleResponse are ignored.
  detection_.upload_error =
      grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "bad", std::string("\x08\x03\x12\x01x", 5));
  result = RunPantherctl(Args({"upload", root_.string()}));
  EXPECT_EQ(result.code, 1);
  EXPECT_EQ(result.out, "");
  EXPECT_EQ(result.err, "pantherctl: error: bad\n");
}

TEST_F(AnalysisCommandsTest, UploadOfMissingOrEmptyPathFailsBeforeCalling) {
  CliResult result = RunPantherctl(Args({"upload", (root_ / "nope").string()}));
  EXPECT_EQ(result.code, 1);
  EXPECT_EQ(result.err,
            "pantherctl: error: " + (root_ / "nope").string() + ": no such file or folder\n");
  fs::create_directories(root_ / "empty");
  result = RunPantherctl(Args({"upload", (root_ / "empty").string()}));
  EXPECT_EQ(result.code, 1);
  EXPECT_THAT(result.err, HasSubstr("nothing to upload"));
  result = RunPantherctl(Args({"upload"}));
  EXPECT_EQ(result.code, 2);
  std::lock_guard<std::mutex> lock(detection_.mu);
  EXPECT_THAT(detection_.upload_requests, IsEmpty());
}

// --- test --------------------------------------------------------------------

TEST_F(AnalysisCommandsTest, TestSendsContentFiltersAndFlagsAndPassesWithZero) {
  *detection_.run_tests_response.mutable_report() = PassingReport();
  CliResult result = RunPantherctl(
      Args({"test", "--filter", "Severity=High,Critical", "--filter", "Tags!=Deprecated",
            root_.string(), "--filter=Enabled=yes", "--skip-disabled-tests"}));
  ASSERT_EQ(result.code, 0) << result.err;
  EXPECT_EQ(result.err, "");
  EXPECT_EQ(result.out,
            "Okta.Login.Failed\n"
            "\t[PASS] Failed Login\n"
            "\t\t[PASS] [rule] true\n"
            "\t\t[PASS] [title] Multiple Failed Logins for homer\n"
            "\n"
            "--------------------------\n"
            "Test Summary\n"
            "\tPath: " +
                root_.string() +
                "\n"
                "\tPassed: 1\n"
                "\tSkipped: 0\n"
                "\tFailed: 0\n"
                "\tInvalid: 0\n"
                "\tTests: 1 passed, 0 failed\n"
                "\n");

  std::lock_guard<std::mutex> lock(detection_.mu);
  ASSERT_EQ(detection_.run_tests_requests.size(), 1u);
  const v1::RunTestsRequest& request = detection_.run_tests_requests[0];
  ASSERT_TRUE(request.has_content());
  EXPECT_EQ(Pairs(request.content().files()), kExpectedFiles);
  EXPECT_THAT(request.filters(),
              UnorderedElementsAre(Pair("Severity", "High,Critical"), Pair("Tags!", "Deprecated"),
                                   Pair("Enabled", "true")));
  EXPECT_TRUE(request.skip_disabled());
}

TEST_F(AnalysisCommandsTest, TestWithoutFlagsSendsNoFilters) {
  *detection_.run_tests_response.mutable_report() = PassingReport();
  CliResult result =
      RunPantherctl(Args({"test", root_.string() + "/okta_rules/okta_failed_login.yml"}));
  ASSERT_EQ(result.code, 0) << result.err;
  std::lock_guard<std::mutex> lock(detection_.mu);
  ASSERT_EQ(detection_.run_tests_requests.size(), 1u);
  const v1::RunTestsRequest& request = detection_.run_tests_requests[0];
  EXPECT_THAT(request.filters(), IsEmpty());
  EXPECT_FALSE(request.skip_disabled());
  EXPECT_THAT(Pairs(request.content().files()),
              ElementsAre(Pair("okta_failed_login.py", ::testing::_),
                          Pair("okta_failed_login.yml", ::testing::_)));
}

// `test x.py` sends the same request as `test x.yml`: the spec comes along.
TEST_F(AnalysisCommandsTest, TestOfAPythonFileSendsItsSpec) {
  *detection_.run_tests_response.mutable_report() = PassingReport();
  CliResult result =
      RunPantherctl(Args({"test", root_.string() + "/okta_rules/okta_failed_login.py"}));
  ASSERT_EQ(result.code, 0) << result.err;
  std::lock_guard<std::mutex> lock(detection_.mu);
  ASSERT_EQ(detection_.run_tests_requests.size(), 1u);
  EXPECT_THAT(Pairs(detection_.run_tests_requests[0].content().files()),
              ElementsAre(Pair("okta_failed_login.py", "def rule(event):\n    return True\n"),
                          Pair("okta_failed_login.yml",
                               "AnalysisType: rule\nFilename: okta_failed_login.py\n")));
}

TEST_F(AnalysisCommandsTest, TestFailureExitsOneAfterPrinting) {
  *detection_.run_tests_response.mutable_report() = FailingReport();
  CliResult result = RunPantherctl(Args({"test", root_.string()}));
  EXPECT_EQ(result.code, 1);
  EXPECT_EQ(result.err, "pantherctl: error: tests failed: 1 detection failed, 0 invalid specs\n");
  EXPECT_THAT(result.out, AllOf(StartsWith("Okta.Login.Failed\n\t[PASS] Failed Login\n"),
                                HasSubstr("Okta.Admin.Granted\n\t[FAIL] Admin role\n"),
                                HasSubstr("\t\t[FAIL] [alertContext] KeyError: 'target'\n"),
                                HasSubstr("\tPassed: 1\n\tSkipped: 0\n\tFailed: 1\n\tInvalid: 0\n"),
                                Not(HasSubstr("\x1b["))));

  result = RunPantherctl(Args({"test", root_.string(), "--show-failures-only"}));
  EXPECT_EQ(result.code, 1);
  EXPECT_THAT(result.out, AllOf(StartsWith("Okta.Admin.Granted\n\t[FAIL] Admin role\n"),
                                Not(HasSubstr("[PASS] Failed Login"))));
}

TEST_F(AnalysisCommandsTest, InvalidSpecExitsOne) {
  v1::TestReport report = PassingReport();
  v1::Diagnostic* d = report.add_invalid();
  d->set_file("okta_rules/deeper/admin.yml");
  d->set_field("Severity");
  d->set_message("must be one of Info, Low, Medium, High, Critical");
  *detection_.run_tests_response.mutable_report() = report;
  CliResult result = RunPantherctl(Args({"test", root_.string()}));
  EXPECT_EQ(result.code, 1);
  EXPECT_EQ(result.err, "pantherctl: error: tests failed: 0 detections failed, 1 invalid spec\n");
  EXPECT_THAT(result.out, HasSubstr("\tokta_rules/deeper/admin.yml\n\t\tokta_rules/deeper/"
                                    "admin.yml: Severity: must be one of"));

  // A warning alone does not fail.
  report.mutable_invalid(0)->set_message("warning: Severity in upper case");
  *detection_.run_tests_response.mutable_report() = report;
  result = RunPantherctl(Args({"test", root_.string()}));
  EXPECT_EQ(result.code, 0) << result.err;
}

TEST_F(AnalysisCommandsTest, MinimumTestsFailsRulesWithTooFewTests) {
  *detection_.run_tests_response.mutable_report() = PassingReport();  // One positive test.
  CliResult result = RunPantherctl(Args({"test", root_.string(), "--minimum-tests", "1"}));
  EXPECT_EQ(result.code, 0) << result.err;
  result = RunPantherctl(Args({"test", root_.string(), "--minimum-tests", "2"}));
  EXPECT_EQ(result.code, 1);
  EXPECT_THAT(result.out,
              HasSubstr("\t\t['Insufficient test coverage: 2 tests required but only 1 found', "
                        "'Insufficient test coverage: expected at least one positive and one "
                        "negative test']\n"));
  setenv("PANTHER_MINIMUM_TESTS", "5", 1);
  result = RunPantherctl(Args({"test", root_.string()}));
  EXPECT_EQ(result.code, 1);
  EXPECT_THAT(result.out, HasSubstr("5 tests required but only 1 found"));
}

TEST_F(AnalysisCommandsTest, NothingToTest) {
  // The server found nothing (e.g. only skipped-free helpers).
  CliResult result = RunPantherctl(Args({"test", root_.string()}));
  EXPECT_EQ(result.code, 1);
  EXPECT_EQ(result.out, "");
  EXPECT_EQ(result.err, "pantherctl: error: Nothing to test in " + root_.string() + "\n");

  result = RunPantherctl(Args({"test", root_.string(), "--filter", "Severity=Low"}));
  EXPECT_EQ(result.code, 1);
  EXPECT_EQ(result.err, "pantherctl: error: No analysis in " + root_.string() +
                            " matched filters Severity=Low\n");

  // An empty folder fails before calling.
  fs::create_directories(root_ / "empty");
  result = RunPantherctl(Args({"test", (root_ / "empty").string()}));
  EXPECT_EQ(result.code, 1);
  EXPECT_EQ(result.err,
            "pantherctl: error: Nothing to test in " + (root_ / "empty").string() + "\n");
  std::lock_guard<std::mutex> lock(detection_.mu);
  EXPECT_EQ(detection_.run_tests_requests.size(), 2u);
}

TEST_F(AnalysisCommandsTest, OnlySkippedContentPasses) {
  v1::SkippedContent* s = detection_.run_tests_response.mutable_report()->add_skipped();
  s->set_analysis_type("disabled_rule");
  s->set_count(1);
  s->add_files("okta_rules/deeper/admin.yml");
  CliResult result = RunPantherctl(Args({"test", root_.string(), "--skip-disabled-tests"}));
  EXPECT_EQ(result.code, 0) << result.err;
  EXPECT_THAT(result.out, AllOf(HasSubstr("Skipped Tests Summary\n\tokta_rules/deeper/admin.yml\n"),
                                HasSubstr("\tPassed: 0\n\tSkipped: 1\n")));
}

TEST_F(AnalysisCommandsTest, TestJsonPrintsTheResponseAndKeepsTheExitCode) {
  *detection_.run_tests_response.mutable_report() = FailingReport();
  CliResult result = RunPantherctl(Args({"--output", "json", "test", root_.string()}));
  EXPECT_EQ(result.code, 1);
  v1::RunTestsResponse parsed;
  // Unknown: "summary", beside the response's "report".
  ASSERT_TRUE(JsonToMessage(result.out, &parsed, /*ignore_unknown_fields=*/true).ok())
      << result.out;
  EXPECT_EQ(parsed.report().rules_size(), 2);
  EXPECT_THAT(result.out, HasSubstr("\"summary\": {"));
  EXPECT_THAT(result.out, HasSubstr("\"ruleId\": \"Okta.Admin.Granted\""));

  *detection_.run_tests_response.mutable_report() = PassingReport();
  result = RunPantherctl(Args({"--output", "json", "test", root_.string()}));
  EXPECT_EQ(result.code, 0) << result.err;
}

// tests/testdata/checkout/: a folder laid out like a panther-analysis
// checkout (templates/, queries/, a broken YAML file, a README).
fs::path Checkout() { return fs::path(PANTHERD_SOURCE_DIR) / "tests/testdata/checkout"; }

TEST_F(AnalysisCommandsTest, TestOfACheckoutSendsEverySpecAndPythonFileOnce) {
  *detection_.run_tests_response.mutable_report() = PassingReport();
  CliResult result = RunPantherctl(Args({"test", Checkout().string()}));
  ASSERT_EQ(result.code, 0) << result.err;

  // What the folder holds, read independently of pantherctl.
  std::vector<std::string> expected;
  for (const fs::directory_entry& entry : fs::recursive_directory_iterator(Checkout())) {
    const std::string name = entry.path().filename().string();
    if (!entry.is_regular_file()) continue;
    if (name.size() > 3 &&
        (name.substr(name.size() - 3) == ".py" || name.substr(name.size() - 4) == ".yml")) {
      expected.push_back(entry.path().lexically_relative(Checkout()).generic_string());
    }
  }
  std::sort(expected.begin(), expected.end());
  ASSERT_GT(expected.size(), 20u);

  std::lock_guard<std::mutex> lock(detection_.mu);
  ASSERT_EQ(detection_.run_tests_requests.size(), 1u);
  std::vector<std::string> sent;
  for (const v1::AnalysisFile& file : detection_.run_tests_requests[0].content().files()) {
    sent.push_back(file.path());
  }
  EXPECT_EQ(sent, expected);
  // The broken YAML, the templates and the query travel like the rest; the
  // README does not.
  EXPECT_THAT(sent, ::testing::IsSupersetOf({"rules/okta_rules/acme_okta_broken_yaml.yml",
                                             "templates/example_rule.yml",
                                             "queries/okta_queries/acme_okta_admin_grants.yml"}));
  EXPECT_THAT(sent, Not(::testing::Contains("README.md")));
}

// A report as pantherd gives it for a checkout: a failing test, a scheduled
// rule, two problems in one spec, a broken global reported once with its
// consumers, a missing module, skipped content.
v1::TestReport CheckoutReport() {
  v1::TestReport report = FailingReport();  // 1 rule passes, 1 fails.
  v1::RuleTestResult* scheduled = report.add_rules();
  scheduled->set_rule_id("Acme.Okta.ManyAdminGrants");
  scheduled->set_passed(true);
  for (bool expected : {true, false}) {
    v1::TestCaseResult* test = scheduled->add_tests();
    test->set_name(expected ? "Many grants" : "Few grants");
    test->set_expected_result(expected);
    test->set_outcome(v1::TestCaseResult::OUTCOME_PASSED);
    v1::FunctionResult* f = test->add_functions();
    f->set_function("rule");
    f->set_output_json(expected ? "true" : "false");
  }
  report.set_tests_passed(3);
  auto add = [&](const std::string& file, int line, const std::string& field,
                 const std::string& message) {
    v1::Diagnostic* d = report.add_invalid();
    d->set_file(file);
    d->set_line(line);
    d->set_field(field);
    d->set_message(message);
  };
  add("rules/x.yml", 7, "Severity", "Severity \"Urgent\" is not one of Info, Low");
  add("rules/x.yml", 9, "Tests[0].ExpectedResult", "missing required key ExpectedResult");
  add("global_helpers/vendor.py", 3, "",
      "global vendor: ModuleNotFoundError: No module named 'sdk': install the Debian package "
      "python3-sdk if there is one, or upload a global helper named sdk (so 2 items importing it "
      "did not load either: rule A, rule B)");
  add("rules/geo.py", 3, "",
      "rule Geo: ModuleNotFoundError: No module named 'geo': install the Debian package "
      "python3-geo if there is one, or upload a global helper named geo");
  add("rules/y.yml", 4, "DedupPeriodMinutes", "warning: DedupPeriodMinutes is 0");
  v1::SkippedContent* skipped = report.add_skipped();
  skipped->set_analysis_type("simple_detection");
  skipped->set_count(1);
  skipped->add_files("rules/simple.yml");
  return report;
}

TEST_F(AnalysisCommandsTest, TableAndJsonCountACheckoutTheSame) {
  *detection_.run_tests_response.mutable_report() = CheckoutReport();
  CliResult table = RunPantherctl(Args({"test", root_.string()}));
  EXPECT_EQ(table.code, 1);
  EXPECT_EQ(table.err,
            "pantherctl: error: tests failed: 1 detection failed, 3 invalid "
            "specs\n");
  EXPECT_THAT(table.out,
              HasSubstr("Invalid Tests Summary\n"
                        "\trules/x.yml\n"
                        "\t\trules/x.yml:7: Severity: Severity \"Urgent\" is not one of Info, Low\n"
                        "\t\trules/x.yml:9: Tests[0].ExpectedResult: missing required key "
                        "ExpectedResult\n\n"
                        "\tglobal_helpers/vendor.py\n"));
  EXPECT_THAT(table.out, HasSubstr("\tPassed: 2\n"
                                   "\tSkipped: 1\n"
                                   "\tFailed: 1\n"
                                   "\tInvalid: 3\n"
                                   "\tTests: 3 passed, 1 failed\n"
                                   "\tImport errors: 2\n\n"));

  CliResult json = RunPantherctl(Args({"--output", "json", "test", root_.string()}));
  EXPECT_EQ(json.code, 1);
  EXPECT_EQ(json.err, table.err);
  google::protobuf::Struct parsed;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(json.out, &parsed).ok()) << json.out;
  const auto& summary = parsed.fields().at("summary").struct_value().fields();
  EXPECT_EQ(summary.at("path").string_value(), root_.string());
  EXPECT_EQ(summary.at("passed").number_value(), 2);
  EXPECT_EQ(summary.at("skipped").number_value(), 1);
  EXPECT_EQ(summary.at("failed").number_value(), 1);
  EXPECT_EQ(summary.at("invalid").number_value(), 3);
  EXPECT_EQ(summary.at("warnings").number_value(), 1);
  EXPECT_EQ(summary.at("testsPassed").number_value(), 3);
  EXPECT_EQ(summary.at("testsFailed").number_value(), 1);
  EXPECT_EQ(summary.at("importErrors").number_value(), 2);
  // The report itself is the response's, unchanged.
  v1::RunTestsResponse response;
  ASSERT_TRUE(JsonToMessage(json.out, &response, /*ignore_unknown_fields=*/true).ok());
  EXPECT_EQ(response.report().SerializeAsString(), CheckoutReport().SerializeAsString());
}

TEST_F(AnalysisCommandsTest, RunTestsErrorDetailsArePrinted) {
  v1::RunTestsResponse refused;
  v1::Diagnostic* d = refused.mutable_report()->add_invalid();
  d->set_file("okta_rules/okta_failed_login.py");
  d->set_line(2);
  d->set_message("SyntaxError: invalid syntax");
  detection_.run_tests_error = grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                            "1 problem in 1 file", refused.SerializeAsString());
  CliResult result = RunPantherctl(Args({"test", root_.string()}));
  EXPECT_EQ(result.code, 1);
  EXPECT_EQ(result.err, "pantherctl: error: 1 problem in 1 file\n");
  EXPECT_THAT(result.out, HasSubstr("\t\tokta_rules/okta_failed_login.py:2: SyntaxError: invalid "
                                    "syntax\n"));
}

TEST_F(AnalysisCommandsTest, BadFiltersAreUsageErrors) {
  for (const char* filter :
       {"Severity", "=High", "Severity=", "Bogus=1", "A=b=c", "Enabled=maybe"}) {
    CliResult result = RunPantherctl(Args({"test", root_.string(), "--filter", filter}));
    EXPECT_EQ(result.code, 2) << filter;
    EXPECT_THAT(result.err, StartsWith("pantherctl: error: ")) << filter;
  }
  CliResult result = RunPantherctl(Args({"test", root_.string(), "--minimum-tests", "-1"}));
  EXPECT_EQ(result.code, 2);
  std::lock_guard<std::mutex> lock(detection_.mu);
  EXPECT_THAT(detection_.run_tests_requests, IsEmpty());
}

TEST(ParseTestFiltersTest, Encoding) {
  absl::StatusOr<std::map<std::string, std::string>> filters = ParseTestFilters(
      {"Severity=High,Critical", "LogTypes!=AWS.CloudTrail", "Enabled!=false", "Severity=Low"});
  ASSERT_TRUE(filters.ok()) << filters.status();
  EXPECT_THAT(*filters, ElementsAre(Pair("Enabled!", "false"), Pair("LogTypes!", "AWS.CloudTrail"),
                                    Pair("Severity", "Low")));  // The last Severity wins.
  EXPECT_FALSE(ParseTestFilters({"Nope=1"}).ok());
  EXPECT_THAT(ParseTestFilters({"Nope=1"}).status().message(), HasSubstr("'Nope'"));
}

// --- rules enable|disable keep working -------------------------------------

TEST_F(AnalysisCommandsTest, RulesEnableDisable) {
  CliResult result = RunPantherctl(Args({"rules", "disable", "Okta.Login.Failed"}));
  ASSERT_EQ(result.code, 0) << result.err;
  EXPECT_EQ(result.out, "Disabled Okta.Login.Failed (version 7)\n");
  result = RunPantherctl(Args({"rules", "enable", "Okta.Login.Failed"}));
  ASSERT_EQ(result.code, 0) << result.err;
  EXPECT_EQ(result.out, "Enabled Okta.Login.Failed (version 7)\n");
  std::lock_guard<std::mutex> lock(detection_.mu);
  ASSERT_EQ(detection_.set_enabled_requests.size(), 2u);
  EXPECT_EQ(detection_.set_enabled_requests[0].id(), "Okta.Login.Failed");
  EXPECT_FALSE(detection_.set_enabled_requests[0].enabled());
  EXPECT_TRUE(detection_.set_enabled_requests[1].enabled());
}

}  // namespace
}  // namespace pantherd::client
