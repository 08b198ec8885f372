// RuleSetManager with everything real: RocksDB in a temp dir, the worker pool
// running the pantherd-worker program with embedded CPython.
#include "engine/rule_set_manager.h"

#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "engine/rule_set_test_env.h"
#include "engine/worker_pool.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/test_util.h"

namespace pantherd::engine {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

v1::AnalysisFile File(const std::string& path, const std::string& content) {
  v1::AnalysisFile f;
  f.set_path(path);
  f.set_content(content);
  return f;
}

// A rule spec + module. `body` is the module's Python source.
std::vector<v1::AnalysisFile> RuleFiles(const std::string& dir, const std::string& id,
                                        const std::string& body,
                                        const std::string& severity = "High", bool enabled = true) {
  std::string stem = dir + "/" + id;
  return {File(stem + ".yml", absl::StrCat("AnalysisType: rule\n"
                                           "RuleID: ",
                                           id,
                                           "\n"
                                           "Filename: ",
                                           id,
                                           ".py\n"
                                           "Enabled: ",
                                           enabled ? "true" : "false",
                                           "\n"
                                           "LogTypes: [Okta.SystemLog]\n"
                                           "Severity: ",
                                           severity,
                                           "\n"
                                           "Tests:\n"
                                           "  - Name: match\n"
                                           "    ExpectedResult: true\n"
                                           "    Log: {eventType: hit}\n"
                                           "  - Name: no match\n"
                                           "    ExpectedResult: false\n"
                                           "    Log: {eventType: miss}\n")),
          File(stem + ".py", body)};
}

constexpr char kGoodRule[] = "def rule(event):\n    return event.get('eventType') == 'hit'\n";
constexpr char kHelperRule[] =
    "from team_helpers import is_hit\n"
    "def rule(event):\n    return is_hit(event)\n";

std::vector<v1::AnalysisFile> GlobalFiles(const std::string& id, const std::string& body) {
  return {File("helpers/" + id + ".yml",
               absl::StrCat("AnalysisType: global\nGlobalID: ", id, "\nFilename: ", id, ".py\n")),
          File("helpers/" + id + ".py", body)};
}

v1::UploadRuleRequest Request(std::vector<v1::AnalysisFile> files, bool skip_tests = false) {
  v1::UploadRuleRequest r;
  for (v1::AnalysisFile& f : files) *r.add_files() = std::move(f);
  r.set_skip_tests(skip_tests);
  return r;
}

std::vector<v1::AnalysisFile> Concat(std::vector<v1::AnalysisFile> a,
                                     const std::vector<v1::AnalysisFile>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

class RuleSetManagerTest : public RuleSetFixture {
 protected:
  void SetUp() override { Open(); }
  void TearDown() override { Close(); }

  void Open() { OpenRuleSet(); }
  void Close() { CloseRuleSet(); }

  absl::Status Upload(std::vector<v1::AnalysisFile> files, v1::UploadRuleResponse* resp,
                      bool skip_tests = false, const std::string& author = "alice") {
    return manager_->Upload(Request(std::move(files), skip_tests), author, resp);
  }
};

TEST_F(RuleSetManagerTest, UploadTestsStoresAndSwapsThenSurvivesReopen) {
  v1::UploadRuleResponse resp;
  ASSERT_TRUE(Upload(RuleFiles("rules", "Team.Hit", kGoodRule), &resp).ok()) << resp.DebugString();
  ASSERT_EQ(resp.stored_size(), 1);
  EXPECT_EQ(resp.stored(0).version(), 1);
  EXPECT_EQ(resp.report().tests_passed(), 2);
  uint64_t live = pool_->Stats().live_version;

  // Paths are part of the content: the same rule from another folder is a
  // new version, and uploading it once more changes nothing.
  v1::UploadRuleResponse moved;
  ASSERT_TRUE(Upload(RuleFiles("elsewhere", "Team.Hit", kGoodRule), &moved).ok());
  ASSERT_EQ(moved.stored_size(), 1);
  EXPECT_EQ(moved.stored(0).version(), 2);
  EXPECT_GT(pool_->Stats().live_version, live);
  v1::UploadRuleResponse same;
  ASSERT_TRUE(Upload(RuleFiles("elsewhere", "Team.Hit", kGoodRule), &same).ok());
  EXPECT_EQ(same.stored_size(), 0);
  EXPECT_THAT(same.unchanged_ids(), ElementsAre("Team.Hit"));

  Close();
  Open();
  absl::StatusOr<v1::Rule> rule = rules_->Get("Team.Hit");
  ASSERT_TRUE(rule.ok()) << rule.status();
  EXPECT_EQ(rule->version(), 2);
  EXPECT_EQ(rule->author(), "alice");
  EXPECT_TRUE(pool_->Stats().has_live_generation);
}

TEST_F(RuleSetManagerTest, UploadWarnsAboutLogTypesNotIngestedAndUnknownOutputIds) {
  v1::UploadRuleResponse clean;
  ASSERT_TRUE(Upload(RuleFiles("rules", "Team.Hit", kGoodRule), &clean).ok());
  EXPECT_EQ(clean.warnings_size(), 0);

  std::vector<v1::AnalysisFile> files = {
      File("rules/aws.yml",
           "AnalysisType: rule\nRuleID: AWS.Root\nFilename: aws.py\nEnabled: true\n"
           "LogTypes: [AWS.CloudTrail, Okta.SystemLog]\nSeverity: High\n"
           "OutputIds: [slack-sec]\n"),
      File("rules/aws.py", kGoodRule),
      File("rules/gcp.yml",
           "AnalysisType: rule\nRuleID: GCP.Audit\nFilename: gcp.py\nEnabled: true\n"
           "LogTypes: [GCP.AuditLog]\nSeverity: Low\n"),
      File("rules/gcp.py", kGoodRule)};
  v1::UploadRuleResponse resp;
  ASSERT_TRUE(Upload(files, &resp).ok()) << resp.DebugString();
  EXPECT_EQ(resp.stored_size(), 2);  // Stored all the same.
  std::vector<std::string> seen;
  for (const v1::Diagnostic& d : resp.warnings()) {
    seen.push_back(absl::StrCat(d.file(), " ", d.field(), ": ", d.message()));
  }
  EXPECT_THAT(seen,
              ElementsAre("rules/aws.yml LogTypes: pantherd does not ingest log type "
                          "AWS.CloudTrail (supported: Okta.SystemLog)",
                          "rules/aws.yml OutputIds: no destination named slack-sec; its alerts "
                          "will record a failed delivery until one is added (pantherctl "
                          "destinations add)",
                          "rules/gcp.yml LogTypes: pantherd does not ingest log type "
                          "GCP.AuditLog (supported: Okta.SystemLog)",
                          "rules/gcp.yml LogTypes: rule GCP.Audit will never run: none of its "
                          "log types is ingested"));
}

TEST_F(RuleSetManagerTest, OutputIdsNamingAConfiguredDestinationOrSkipAreNotWarnedAbout) {
  manager_->set_destination_lookup([](absl::string_view name) { return name == "team-slack"; });
  std::vector<v1::AnalysisFile> files = {
      File("rules/hit.yml",
           "AnalysisType: rule\nRuleID: Team.Hit\nFilename: hit.py\nEnabled: true\n"
           "LogTypes: [Okta.SystemLog]\nSeverity: High\n"
           "OutputIds: [team-slack, SKIP, pager-team]\n"),
      File("rules/hit.py", kGoodRule)};
  v1::UploadRuleResponse resp;
  ASSERT_TRUE(Upload(files, &resp).ok()) << resp.DebugString();
  ASSERT_EQ(resp.warnings_size(), 1) << resp.DebugString();
  EXPECT_EQ(resp.warnings(0).field(), "OutputIds");
  EXPECT_THAT(resp.warnings(0).message(), HasSubstr("no destination named pager-team"));
}

TEST_F(RuleSetManagerTest, FailingTestsRejectTheWholeUploadAndKeepTheLiveSet) {
  v1::UploadRuleResponse first;
  ASSERT_TRUE(Upload(RuleFiles("rules", "Team.Hit", kGoodRule), &first).ok());
  uint64_t live = pool_->Stats().live_version;

  v1::UploadRuleResponse resp;
  absl::Status s = Upload(Concat(RuleFiles("rules", "Team.Hit", "def rule(e):\n    return True\n"),
                                 RuleFiles("rules", "Team.Other", kGoodRule)),
                          &resp);
  ASSERT_TRUE(absl::IsFailedPrecondition(s)) << s;
  EXPECT_THAT(s.message(), HasSubstr("Team.Hit"));
  EXPECT_EQ(resp.report().tests_failed(), 1);
  EXPECT_EQ(resp.stored_size(), 0);
  EXPECT_EQ(pool_->Stats().live_version, live);  // No swap.
  EXPECT_TRUE(absl::IsNotFound(rules_->Get("Team.Other").status()));
  absl::StatusOr<v1::Rule> kept = rules_->Get("Team.Hit");
  ASSERT_TRUE(kept.ok());
  EXPECT_EQ(kept->version(), 1);

  // Asked to skip tests, the same upload is stored.
  v1::UploadRuleResponse skipped;
  ASSERT_TRUE(Upload(Concat(RuleFiles("rules", "Team.Hit", "def rule(e):\n    return True\n"),
                            RuleFiles("rules", "Team.Other", kGoodRule)),
                     &skipped, /*skip_tests=*/true)
                  .ok());
  EXPECT_EQ(skipped.stored_size(), 2);
}

TEST_F(RuleSetManagerTest, SyntaxErrorNamesTheUploadedFileAndLine) {
  v1::UploadRuleResponse resp;
  absl::Status s =
      Upload(RuleFiles("rules/okta", "Team.Broken", "def rule(event):\n    return (\n"), &resp);
  ASSERT_TRUE(absl::IsInvalidArgument(s)) << s;
  EXPECT_THAT(s.message(), HasSubstr("rules/okta/Team.Broken.py:2"));
  EXPECT_THAT(s.message(), Not(HasSubstr("items/")));
  ASSERT_GT(resp.report().invalid_size(), 0);
  EXPECT_EQ(resp.report().invalid(0).file(), "rules/okta/Team.Broken.py");
  EXPECT_TRUE(absl::IsNotFound(rules_->Get("Team.Broken").status()));
}

TEST_F(RuleSetManagerTest, InvalidSpecIsRefusedBeforeAnyWorkerRuns) {
  v1::UploadRuleResponse resp;
  absl::Status s = Upload(RuleFiles("rules", "Team.Hit", kGoodRule, "Urgent"), &resp);
  ASSERT_TRUE(absl::IsInvalidArgument(s)) << s;
  ASSERT_GT(resp.report().invalid_size(), 0);
  EXPECT_EQ(resp.report().invalid(0).file(), "rules/Team.Hit.yml");
  EXPECT_EQ(resp.report().invalid(0).field(), "Severity");
  EXPECT_GT(resp.report().invalid(0).line(), 0);
  EXPECT_EQ(pool_->Stats().isolated_runs, 0);
}

TEST_F(RuleSetManagerTest, StoredGlobalsServeLaterUploadsAndTestRuns) {
  v1::UploadRuleResponse resp;
  ASSERT_TRUE(
      Upload(GlobalFiles("team_helpers",
                         "def is_hit(event):\n    return event.get('eventType') == 'hit'\n"),
             &resp)
          .ok());
  v1::UploadRuleResponse rule;
  ASSERT_TRUE(Upload(RuleFiles("rules", "Team.ViaHelper", kHelperRule), &rule).ok())
      << rule.DebugString();

  // Content tested without storing it sees the stored global too.
  v1::RunTestsRequest request;
  for (const v1::AnalysisFile& f : RuleFiles("draft", "Team.Draft", kHelperRule)) {
    *request.mutable_content()->add_files() = f;
  }
  absl::StatusOr<v1::TestReport> report = manager_->RunTests(request);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->tests_passed(), 2) << report->DebugString();
  EXPECT_TRUE(absl::IsNotFound(rules_->Get("Team.Draft").status()));

  // Deleting the global the stored rule imports would break the live set.
  absl::StatusOr<int64_t> deleted = manager_->Delete("team_helpers", "bob");
  EXPECT_TRUE(absl::IsFailedPrecondition(deleted.status())) << deleted.status();
  EXPECT_TRUE(rules_->Get("team_helpers").ok());
}

// `pantherctl test` on a checkout: an invalid spec does not stop the valid
// rules; a global whose spec is invalid is reported once, naming the rules
// that could not import it; scheduled rules are tested.
TEST_F(RuleSetManagerTest, ContentTestRunsEveryValidItemAndReportsABrokenGlobalOnce) {
  std::vector<v1::AnalysisFile> files = Concat(
      Concat(RuleFiles("draft", "Draft.Good", kGoodRule),
             RuleFiles("draft", "Draft.Invalid", kGoodRule, "Urgent")),
      Concat(RuleFiles("draft", "Draft.A", "import team_bad\ndef rule(e):\n    return True\n"),
             RuleFiles("draft", "Draft.B",
                       "from team_bad import x\ndef rule(e):\n    return True\n")));
  files.push_back(File("helpers/team_bad.yml",
                       "AnalysisType: global\nGlobalID: team_bad\nFilename: team_bad.py\n"
                       "Severity: High\n"));
  files.push_back(File("helpers/team_bad.py", "x = 1\n"));
  files.push_back(File("sched/s.yml",
                       "AnalysisType: scheduled_rule\nRuleID: Draft.Sched\nFilename: s.py\n"
                       "Enabled: true\nScheduledQueries: [Q]\nSeverity: Low\nTests:\n"
                       "  - Name: row\n    ExpectedResult: true\n    Log: {eventType: hit}\n"));
  files.push_back(File("sched/s.py", kGoodRule));
  v1::RunTestsRequest request;
  for (const v1::AnalysisFile& f : files) *request.mutable_content()->add_files() = f;
  absl::StatusOr<v1::TestReport> report = manager_->RunTests(request);
  ASSERT_TRUE(report.ok()) << report.status();
  std::vector<std::string> ran;
  for (const v1::RuleTestResult& r : report->rules()) ran.push_back(r.rule_id());
  EXPECT_THAT(ran, ::testing::UnorderedElementsAre("Draft.Good", "Draft.Sched"));
  EXPECT_EQ(report->tests_passed(), 3) << report->DebugString();
  EXPECT_EQ(report->tests_failed(), 0);
  std::vector<std::string> problems;
  for (const v1::Diagnostic& d : report->invalid()) {
    problems.push_back(absl::StrCat(d.file(), ": ", d.message()));
  }
  ASSERT_EQ(problems.size(), 2u) << absl::StrJoin(problems, "\n");
  EXPECT_THAT(problems,
              ::testing::UnorderedElementsAre(
                  HasSubstr("draft/Draft.Invalid.yml: Severity \"Urgent\""),
                  ::testing::AllOf(HasSubstr("helpers/team_bad.yml: unknown key \"Severity\""),
                                   HasSubstr("(so 2 items importing its GlobalID did not load "
                                             "either: rule Draft.A, rule Draft.B)"))));
  EXPECT_EQ(pool_->Stats().isolated_runs, 1);
}

TEST_F(RuleSetManagerTest, StoredTestRunsFilterAndListDisabledRules) {
  v1::UploadRuleResponse resp;
  ASSERT_TRUE(Upload(Concat(Concat(RuleFiles("r", "Team.High", kGoodRule, "High"),
                                   RuleFiles("r", "Team.Low", kGoodRule, "Low")),
                            RuleFiles("r", "Team.Off", kGoodRule, "High", /*enabled=*/false)),
                     &resp)
                  .ok());

  v1::RunTestsRequest request;
  request.mutable_stored();
  (*request.mutable_filters())["Severity"] = "high";
  request.set_skip_disabled(true);
  absl::StatusOr<v1::TestReport> report = manager_->RunTests(request);
  ASSERT_TRUE(report.ok()) << report.status();
  ASSERT_EQ(report->rules_size(), 1);
  EXPECT_EQ(report->rules(0).rule_id(), "Team.High");
  ASSERT_EQ(report->skipped_size(), 1);
  EXPECT_EQ(report->skipped(0).analysis_type(), "disabled_rule");
  EXPECT_THAT(report->skipped(0).files(), ElementsAre("Team.Off"));

  (*request.mutable_filters())["Severity!"] = "high";
  request.mutable_filters()->erase("Severity");
  report = manager_->RunTests(request);
  ASSERT_TRUE(report.ok());
  ASSERT_EQ(report->rules_size(), 1);
  EXPECT_EQ(report->rules(0).rule_id(), "Team.Low");

  (*request.mutable_filters())["Colour"] = "red";
  absl::Status bad = manager_->RunTests(request).status();
  EXPECT_TRUE(absl::IsInvalidArgument(bad));
  EXPECT_THAT(bad.message(), HasSubstr("Colour"));

  v1::RunTestsRequest unknown;
  unknown.mutable_stored()->add_rule_ids("Team.Nope");
  EXPECT_TRUE(absl::IsInvalidArgument(manager_->RunTests(unknown).status()));
}

TEST_F(RuleSetManagerTest, BundledPackInstallsOnceAndNeverOverwritesAUsersItem) {
  // A user's own version of a helper the pack also ships.
  v1::UploadRuleResponse user;
  ASSERT_TRUE(Upload(GlobalFiles("team_helpers", "def is_hit(event):\n    return True\n"), &user,
                     false, "carol")
                  .ok());

  std::string pack = tmp_.Sub("pack");
  std::filesystem::create_directories(pack + "/helpers");
  std::filesystem::create_directories(pack + "/rules");
  for (const v1::AnalysisFile& f :
       Concat(GlobalFiles("team_helpers",
                          "def is_hit(event):\n    return event.get('eventType') == 'hit'\n"),
              RuleFiles("rules", "Team.Bundled", kGoodRule))) {
    std::ofstream(pack + "/" + f.path()) << f.content();
  }
  std::ofstream(pack + "/.hidden.yml") << "not: a spec";

  v1::UploadRuleResponse first;
  ASSERT_TRUE(manager_->InstallBundled(pack, &first).ok()) << first.DebugString();
  EXPECT_EQ(first.stored_size(), 1);  // Only the rule: the helper is the user's.
  absl::StatusOr<v1::Rule> helper = rules_->Get("team_helpers");
  ASSERT_TRUE(helper.ok());
  EXPECT_EQ(helper->author(), "carol");
  absl::StatusOr<v1::Rule> bundled = rules_->Get("Team.Bundled");
  ASSERT_TRUE(bundled.ok());
  EXPECT_EQ(bundled->author(), kBundledAuthor);

  v1::UploadRuleResponse second;
  ASSERT_TRUE(manager_->InstallBundled(pack, &second).ok());
  EXPECT_EQ(second.stored_size(), 0);
  EXPECT_THAT(second.unchanged_ids(), ElementsAre("Team.Bundled"));
  // Unchanged items are not tested again.
  EXPECT_EQ(second.report().rules_size(), 0);
  EXPECT_EQ(second.report().tests_passed(), 0);

  // A pack whose rule changed installs (and tests) the new version.
  for (const v1::AnalysisFile& f :
       RuleFiles("rules", "Team.Bundled", std::string(kGoodRule) + "\n# revised\n")) {
    std::ofstream(pack + "/" + f.path()) << f.content();
  }
  v1::UploadRuleResponse third;
  ASSERT_TRUE(manager_->InstallBundled(pack, &third).ok()) << third.DebugString();
  ASSERT_EQ(third.stored_size(), 1);
  EXPECT_EQ(third.stored(0).version(), 2);
  EXPECT_GT(third.report().tests_passed(), 0);
}

TEST_F(RuleSetManagerTest, EnableDisableAndDeleteAreVersionsOfTheLiveSet) {
  v1::UploadRuleResponse resp;
  ASSERT_TRUE(Upload(RuleFiles("r", "Team.Hit", kGoodRule), &resp).ok());
  absl::StatusOr<v1::Rule> off = manager_->SetEnabled("Team.Hit", false, "bob");
  ASSERT_TRUE(off.ok()) << off.status();
  EXPECT_FALSE(off->enabled());
  EXPECT_EQ(off->version(), 2);
  absl::StatusOr<int64_t> deleted = manager_->Delete("Team.Hit", "bob");
  ASSERT_TRUE(deleted.ok()) << deleted.status();
  EXPECT_EQ(*deleted, 3);
  EXPECT_TRUE(absl::IsNotFound(rules_->Get("Team.Hit").status()));
  EXPECT_TRUE(absl::IsNotFound(manager_->Delete("Team.Hit", "bob").status()));
}

}  // namespace
}  // namespace pantherd::engine
