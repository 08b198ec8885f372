// End-to-end test of issue 13 item 8, "Panther's own content loads
// unchanged": `pantherctl test` on a folder laid out like a whole
// panther-analysis checkout (tests/testdata/checkout/, our own content: the
// repository root with templates/, a Simple Detection, a scheduled rule and
// its query, an invalid spec, a broken YAML file, a rule and a global helper
// importing modules that do not exist, a global helper importing boto3),
// against the real pantherd and its workers on 127.0.0.1 port 0.
//
// What must hold: every problem is reported per item, once, with its file
// and reason; every valid rule still runs; scheduled rules' tests run as pat
// runs them; the table and the JSON count the same.
#include <signal.h>

#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "pantherd/v1/rules.pb.h"
#include "tests/test_util.h"

namespace pantherd::testing {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::UnorderedElementsAre;

constexpr char kPantherd[] = PANTHERD_BINARY;
constexpr char kPantherctl[] = PANTHERCTL_BINARY;
constexpr char kSourceDir[] = PANTHERD_SOURCE_DIR;

std::string Checkout() { return absl::StrCat(kSourceDir, "/tests/testdata/checkout"); }

// Number of non-overlapping occurrences of `needle` in `text`.
int Count(const std::string& text, const std::string& needle) {
  int n = 0;
  for (size_t at = text.find(needle); at != std::string::npos;
       at = text.find(needle, at + needle.size())) {
    ++n;
  }
  return n;
}

class ContentE2ETest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<ServerProcess> server =
        ServerProcess::Start(kPantherd, tmp_.Sub("data"), tmp_.path(), {"--workers", "1"});
    ASSERT_TRUE(server.ok()) << server.status();
    server_.emplace(*std::move(server));
  }

  void TearDown() override {
    if (!server_.has_value()) return;
    server_->process().Signal(SIGTERM);
    absl::StatusOr<int> code = server_->process().Wait(absl::Seconds(30));
    ASSERT_TRUE(code.ok()) << code.status();
    EXPECT_EQ(*code, 0) << server_->Log();
  }

  RunResult Ctl(const std::vector<std::string>& args) {
    std::vector<std::string> argv = server_->Ctl(kPantherctl, args);
    absl::StatusOr<RunResult> r = RunCommand(argv, tmp_.path(), absl::Seconds(120));
    EXPECT_TRUE(r.ok()) << absl::StrJoin(argv, " ") << ": " << r.status();
    return r.ok() ? *std::move(r) : RunResult();
  }

  TempDir tmp_;
  std::optional<ServerProcess> server_;
};

const v1::RuleTestResult* FindRule(const v1::TestReport& report, const std::string& id) {
  for (const v1::RuleTestResult& rule : report.rules()) {
    if (rule.rule_id() == id) return &rule;
  }
  return nullptr;
}

TEST_F(ContentE2ETest, WholeCheckoutReportsEachProblemOnceAndRunsEveryValidRule) {
  RunResult table = Ctl({"test", Checkout()});
  // Invalid specs make the run fail, as pat's exit code.
  EXPECT_EQ(table.exit_code, 1) << table.out << table.err;
  const std::string& out = table.out;

  // Every valid rule ran, scheduled rules and the template's included.
  for (const char* id : {"Acme.Okta.AdminRoleGranted\n", "Acme.Okta.AWSFederationRole\n",
                         "Acme.Okta.NewDeviceEnrolled\n", "Acme.Okta.ManyAdminGrants\n",
                         "Template.Scheduled.Rule\n"}) {
    EXPECT_THAT(out, HasSubstr(id)) << out;
  }
  // The scheduled rule's row is not read through the Okta data model, even
  // though it carries p_log_type (pat gives scheduled rules none).
  EXPECT_THAT(out, HasSubstr("\t[PASS] Many grants by one actor\n"));
  EXPECT_THAT(out, HasSubstr("row-user@acme.example granted 12 admin roles in a day"));
  // The data model and both helpers that load serve the rules.
  EXPECT_THAT(out, HasSubstr("alice@acme.example was granted a super administrator role"));
  EXPECT_THAT(out, HasSubstr("\t[PASS] SSO into the AWS admin role\n"))
      << "the global helper importing boto3 must load: run .ci/install-deps "
         "(python3-boto3)\n"
      << out;

  // Each broken file once, with its reason.
  EXPECT_THAT(out, HasSubstr("\trules/okta_rules/acme_okta_invalid_spec.yml\n\t\t"
                             "rules/okta_rules/acme_okta_invalid_spec.yml:7: Severity: "));
  EXPECT_THAT(out, HasSubstr("\trules/okta_rules/acme_okta_broken_yaml.yml\n\t\t"
                             "rules/okta_rules/acme_okta_broken_yaml.yml:"));
  EXPECT_THAT(out, HasSubstr("invalid YAML"));
  EXPECT_THAT(out, HasSubstr("\ttemplates/example_rule.yml\n\t\ttemplates/example_rule.yml:2: "
                             "Filename: Filename \"rule_filename.py\" names "
                             "templates/rule_filename.py, which is not among the uploaded "
                             "files"));
  // The rule importing a missing module: per item, with the module and a hint.
  EXPECT_THAT(out, HasSubstr("\trules/okta_rules/acme_okta_geo_block.py\n\t\t"
                             "rules/okta_rules/acme_okta_geo_block.py:3: rule "
                             "Acme.Okta.LoginFromBlockedCountry: ModuleNotFoundError: No module "
                             "named 'acme_geoip_tables': install the Debian package "
                             "python3-acme-geoip-tables if there is one, or upload a global helper "
                             "named acme_geoip_tables\n"));
  // The broken global once, naming the two rules that import it.
  EXPECT_THAT(out, HasSubstr("\tglobal_helpers/acme_vendor_helpers.py\n\t\t"
                             "global_helpers/acme_vendor_helpers.py:3: global acme_vendor_helpers: "
                             "ModuleNotFoundError: No module named 'acme_threatintel_sdk': install "
                             "the Debian package python3-acme-threatintel-sdk if there is one, or "
                             "upload a global helper named acme_threatintel_sdk (so 2 items "
                             "importing it did not load either: rule Acme.Okta.KnownBadIP, rule "
                             "Acme.Okta.VendorFlaggedSession)\n"));
  EXPECT_EQ(Count(out, "No module named 'acme_threatintel_sdk'"), 1) << out;
  EXPECT_THAT(out, Not(HasSubstr("rules/okta_rules/acme_okta_known_bad_ip.py")));
  // Skipped, not invalid: the Simple Detection (pat needs a backend to test
  // it), the scheduled query and the template's policy.
  EXPECT_THAT(out, AllOf(HasSubstr("\trules/okta_rules/acme_okta_simple_mfa_reset.yml\n\t\t"
                                   "simple_detection: not run by pantherd\n"),
                         HasSubstr("\tqueries/okta_queries/acme_okta_admin_grants.yml\n"),
                         HasSubstr("\ttemplates/example_policy.yml\n")));

  EXPECT_THAT(out, HasSubstr("Test Summary\n"
                             "\tPath: " +
                             Checkout() +
                             "\n"
                             "\tPassed: 4\n"
                             "\tSkipped: 3\n"
                             "\tFailed: 1\n"
                             "\tInvalid: 5\n"
                             "\tTests: 8 passed, 1 failed\n"
                             "\tImport errors: 2\n"));

  // The JSON output counts the same, and its report agrees.
  RunResult json = Ctl({"--output", "json", "test", Checkout()});
  EXPECT_EQ(json.exit_code, 1) << json.err;
  google::protobuf::Struct parsed;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(json.out, &parsed).ok()) << json.out;
  const auto& summary = parsed.fields().at("summary").struct_value().fields();
  EXPECT_EQ(summary.at("passed").number_value(), 4);
  EXPECT_EQ(summary.at("skipped").number_value(), 3);
  EXPECT_EQ(summary.at("failed").number_value(), 1);
  EXPECT_EQ(summary.at("invalid").number_value(), 5);
  EXPECT_EQ(summary.at("testsPassed").number_value(), 8);
  EXPECT_EQ(summary.at("testsFailed").number_value(), 1);
  EXPECT_EQ(summary.at("importErrors").number_value(), 2);

  v1::RunTestsResponse response;
  ASSERT_TRUE(ParsePantherctlJson(json.out, &response, /*ignore_unknown_fields=*/true).ok());
  const v1::TestReport& report = response.report();
  EXPECT_EQ(report.tests_passed(), 8);
  EXPECT_EQ(report.tests_failed(), 1);
  std::vector<std::string> ids;
  for (const v1::RuleTestResult& rule : report.rules()) ids.push_back(rule.rule_id());
  EXPECT_THAT(ids, UnorderedElementsAre("Acme.Okta.AdminRoleGranted", "Acme.Okta.AWSFederationRole",
                                        "Acme.Okta.NewDeviceEnrolled", "Acme.Okta.ManyAdminGrants",
                                        "Template.Scheduled.Rule"));
  const v1::RuleTestResult* scheduled = FindRule(report, "Acme.Okta.ManyAdminGrants");
  ASSERT_NE(scheduled, nullptr);
  EXPECT_TRUE(scheduled->passed());
  EXPECT_EQ(scheduled->tests_size(), 2);
}

// --filter AnalysisType=scheduled_rule selects the scheduled rules alone, as
// pat's filter does.
TEST_F(ContentE2ETest, FilterOnAnalysisTypeSelectsScheduledRules) {
  RunResult r = Ctl({"test", Checkout(), "--filter", "AnalysisType=scheduled_rule"});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;  // The invalid specs are still reported.
  EXPECT_THAT(
      r.out, AllOf(HasSubstr("Acme.Okta.ManyAdminGrants\n"), HasSubstr("Template.Scheduled.Rule\n"),
                   Not(HasSubstr("Acme.Okta.AdminRoleGranted\n"))));
  EXPECT_THAT(r.out, HasSubstr("\tTests: 3 passed, 0 failed\n"));
}

}  // namespace
}  // namespace pantherd::testing
