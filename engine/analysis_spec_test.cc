#include "engine/analysis_spec.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "engine/internal/spec_fields.h"
#include "pantherd/v1/common.pb.h"
#include "pantherd/v1/rules.pb.h"

namespace pantherd::engine {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;

v1::AnalysisFile File(const std::string& path, const std::string& content) {
  v1::AnalysisFile f;
  f.set_path(path);
  f.set_content(content);
  return f;
}

struct Loaded {
  absl::StatusOr<AnalysisSet> set;
  std::vector<v1::Diagnostic> diagnostics;

  std::vector<const v1::Diagnostic*> Errors() const {
    std::vector<const v1::Diagnostic*> out;
    for (const v1::Diagnostic& d : diagnostics) {
      if (!IsWarning(d)) out.push_back(&d);
    }
    return out;
  }
  std::vector<const v1::Diagnostic*> Warnings() const {
    std::vector<const v1::Diagnostic*> out;
    for (const v1::Diagnostic& d : diagnostics) {
      if (IsWarning(d)) out.push_back(&d);
    }
    return out;
  }
  // The only diagnostic for `file` and `field`; fails the test otherwise.
  v1::Diagnostic Find(const std::string& file, const std::string& field) const {
    std::vector<v1::Diagnostic> found;
    for (const v1::Diagnostic& d : diagnostics) {
      if (d.file() == file && d.field() == field) found.push_back(d);
    }
    EXPECT_EQ(found.size(), 1u) << "diagnostics for " << file << " / " << field << ":\n" << Dump();
    return found.empty() ? v1::Diagnostic() : found[0];
  }
  std::string Dump() const {
    std::string out;
    for (const v1::Diagnostic& d : diagnostics) {
      absl::StrAppend(&out, d.file(), ":", d.line(), " [", d.field(), "] ", d.message(), "\n");
    }
    return out;
  }
};

Loaded Load(const std::vector<v1::AnalysisFile>& files) {
  Loaded l;
  l.set = LoadAnalysisFiles(files, &l.diagnostics);
  return l;
}

// A minimal valid rule spec with `extra` lines appended.
std::string RuleYaml(const std::string& id, const std::string& filename,
                     const std::string& extra = "") {
  return absl::StrCat("AnalysisType: rule\n", "RuleID: ", id, "\n", "Filename: ", filename, "\n",
                      "Enabled: true\n", "LogTypes:\n  - Okta.SystemLog\n", "Severity: Low\n",
                      extra);
}

constexpr char kRulePy[] = "def rule(event):\n    return True\n";

// ---------------------------------------------------------------------------
// A complete, valid upload.

constexpr char kOktaRule[] = R"yaml(AnalysisType: rule
Filename: okta_failed_login.py
RuleID: "Okta.FailedLogin"
DisplayName: Okta Failed Login
Enabled: true
LogTypes:
  - Okta.SystemLog
Severity: Medium
Description: Detects failed logins.
Reference: https://example.com/okta
Runbook: Check the user.
DedupPeriodMinutes: 30
Threshold: 5
CreateAlert: false
Status: Experimental
CreatedBy: someone
OnlyUseBaseRiskScore: false
BaseVersion: 3
Tags:
  - Okta
  - Identity
Reports:
  MITRE ATT&CK:
    - TA0006:T1110
  CIS:
    - 3.10
SummaryAttributes:
  - p_any_ip_addresses
OutputIds:
  - slack
Tests:
  - Name: Failed login
    ExpectedResult: true
    LogType: Okta.SystemLog
    Log:
      eventType: user.session.start
      outcome: {result: FAILURE, reason: "INVALID_CREDENTIALS"}
      flag: YES
      toggle: on
      quoted: "true"
      mode: 0644
      duration: 1:30:00
      published: 2024-01-15 14:23:45.123
      ratio: .inf
  - Name: Success
    ExpectedResult: false
    Mocks:
      - objectName: get_counter
        returnValue: "5"
      - objectName: is_enabled
        returnValue: true
      - objectName: as_text
        returnValue: 'false'
    Log: {eventType: user.session.start, outcome: {result: SUCCESS}}
)yaml";

constexpr char kGlobalYaml[] = R"yaml(AnalysisType: global
GlobalID: panther_base_helpers
Filename: panther_base_helpers.py
Description: Shared helpers.
Tags: [Utility]
BaseVersion: 1
)yaml";

constexpr char kDataModelYaml[] = R"yaml(AnalysisType: datamodel
DataModelID: Standard.Okta.SystemLog
DisplayName: Okta System Log
Enabled: true
Filename: okta_data_model.py
LogTypes:
  - Okta.SystemLog
Mappings:
  - Name: actor_user
    Method: get_actor_user
  - Name: source_ip
    Path: $.client.ipAddress
)yaml";

std::vector<v1::AnalysisFile> ValidUpload() {
  return {
      File("rules/okta_rules/okta_failed_login.yml", kOktaRule),
      File("rules/okta_rules/okta_failed_login.py", kRulePy),
      File("global_helpers/panther_base_helpers.yml", kGlobalYaml),
      File("global_helpers/panther_base_helpers.py", "def helper():\n    return 1\n"),
      File("data_models/okta_data_model.yml", kDataModelYaml),
      File("data_models/okta_data_model.py", "def get_actor_user(event):\n    return 'x'\n"),
      // Not specs, or not read: all ignored.
      File("README.md", "# readme\n"),
      File("rules/unused_helper.py", "x = 1\n"),
      File("rules/sample.json", "{\"AnalysisType\": \"rule\"}"),
      File("rules/not_a_spec.yml", "just: some\nyaml: [1, 2]\n"),
      File("rules/empty.yaml", ""),
      File(".github/workflows/ci.yml", "this: is: not: valid: yaml\n"),
      File("rules/.hidden_rule.yml", RuleYaml("Hidden", "missing.py")),
      File("rules/__pycache__/junk.yml", "AnalysisType: nonsense\n"),
  };
}

TEST(AnalysisSpecTest, LoadsAValidUpload) {
  Loaded l = Load(ValidUpload());
  ASSERT_TRUE(l.set.ok()) << l.set.status() << "\n" << l.Dump();
  EXPECT_THAT(l.diagnostics, IsEmpty()) << l.Dump();
  const AnalysisSet& set = *l.set;
  ASSERT_THAT(set.rules, SizeIs(1));
  ASSERT_THAT(set.globals, SizeIs(1));
  ASSERT_THAT(set.data_models, SizeIs(1));
  EXPECT_THAT(set.skipped, IsEmpty());

  const RuleSpec& r = set.rules[0];
  EXPECT_EQ(r.spec_path, "rules/okta_rules/okta_failed_login.yml");
  EXPECT_EQ(r.python_path, "rules/okta_rules/okta_failed_login.py");
  EXPECT_EQ(r.python_source, kRulePy);
  EXPECT_EQ(r.rule.id(), "Okta.FailedLogin");
  EXPECT_EQ(r.rule.type(), v1::ANALYSIS_TYPE_RULE);
  EXPECT_EQ(r.rule.display_name(), "Okta Failed Login");
  EXPECT_TRUE(r.rule.enabled());
  EXPECT_THAT(r.rule.log_types(), ElementsAre("Okta.SystemLog"));
  EXPECT_EQ(r.rule.severity(), v1::SEVERITY_MEDIUM);
  EXPECT_EQ(r.rule.description(), "Detects failed logins.");
  EXPECT_EQ(r.rule.reference(), "https://example.com/okta");
  EXPECT_EQ(r.rule.runbook(), "Check the user.");
  EXPECT_EQ(r.rule.dedup_period_minutes(), 30);
  EXPECT_EQ(r.rule.threshold(), 5);
  EXPECT_FALSE(r.rule.create_alert());
  EXPECT_THAT(r.rule.tags(), ElementsAre("Okta", "Identity"));
  EXPECT_THAT(r.rule.summary_attributes(), ElementsAre("p_any_ip_addresses"));
  EXPECT_THAT(r.rule.output_ids(), ElementsAre("slack"));
  ASSERT_EQ(r.rule.reports().count("MITRE ATT&CK"), 1u);
  EXPECT_THAT(r.rule.reports().at("MITRE ATT&CK").values(), ElementsAre("TA0006:T1110"));
  EXPECT_THAT(r.rule.reports().at("CIS").values(), ElementsAre("3.10"));
  EXPECT_EQ(r.rule.test_count(), 2);
  ASSERT_EQ(r.rule.files_size(), 2);
  EXPECT_EQ(r.rule.files(0).path(), "rules/okta_rules/okta_failed_login.yml");
  EXPECT_EQ(r.rule.files(0).content(), kOktaRule);
  EXPECT_EQ(r.rule.files(1).path(), "rules/okta_rules/okta_failed_login.py");
  EXPECT_EQ(r.rule.files(1).content(), kRulePy);
  EXPECT_EQ(r.rule.version(), 0);

  ASSERT_THAT(r.tests, SizeIs(2));
  EXPECT_EQ(r.tests[0].name, "Failed login");
  EXPECT_TRUE(r.tests[0].expected_result);
  EXPECT_EQ(r.tests[0].line, 32);
  // YES/on stay strings, quoted "true" stays a string, 0644 is decimal,
  // 1:30:00 and the timestamp stay strings, key order is kept, and .inf is
  // written as Python's json.dumps writes it.
  EXPECT_EQ(r.tests[0].log_json,
            "{\"eventType\": \"user.session.start\", "
            "\"outcome\": {\"result\": \"FAILURE\", \"reason\": \"INVALID_CREDENTIALS\"}, "
            "\"flag\": \"YES\", \"toggle\": \"on\", \"quoted\": \"true\", \"mode\": 644, "
            "\"duration\": \"1:30:00\", \"published\": \"2024-01-15 14:23:45.123\", "
            "\"ratio\": Infinity}");
  EXPECT_THAT(r.tests[0].mocks, IsEmpty());
  EXPECT_EQ(r.tests[1].name, "Success");
  EXPECT_FALSE(r.tests[1].expected_result);
  EXPECT_EQ(r.tests[1].log_json,
            "{\"eventType\": \"user.session.start\", \"outcome\": {\"result\": \"SUCCESS\"}}");
  ASSERT_THAT(r.tests[1].mocks, SizeIs(3));
  EXPECT_EQ(r.tests[1].mocks[0].object_name, "get_counter");
  EXPECT_EQ(r.tests[1].mocks[0].return_value_json, "\"5\"");
  EXPECT_EQ(r.tests[1].mocks[1].object_name, "is_enabled");
  EXPECT_EQ(r.tests[1].mocks[1].return_value_json, "true");
  EXPECT_EQ(r.tests[1].mocks[2].return_value_json, "\"false\"");

  const GlobalSpec& g = set.globals[0];
  EXPECT_EQ(g.id, "panther_base_helpers");
  EXPECT_EQ(g.spec_path, "global_helpers/panther_base_helpers.yml");
  EXPECT_EQ(g.python_path, "global_helpers/panther_base_helpers.py");
  EXPECT_EQ(g.python_source, "def helper():\n    return 1\n");
  EXPECT_EQ(g.rule.id(), "panther_base_helpers");
  EXPECT_EQ(g.rule.type(), v1::ANALYSIS_TYPE_GLOBAL);
  EXPECT_EQ(g.rule.description(), "Shared helpers.");
  EXPECT_THAT(g.rule.tags(), ElementsAre("Utility"));
  EXPECT_EQ(g.rule.files_size(), 2);

  const DataModelSpec& dm = set.data_models[0];
  EXPECT_EQ(dm.rule.id(), "Standard.Okta.SystemLog");
  EXPECT_EQ(dm.rule.type(), v1::ANALYSIS_TYPE_DATA_MODEL);
  EXPECT_EQ(dm.rule.display_name(), "Okta System Log");
  EXPECT_TRUE(dm.rule.enabled());
  EXPECT_THAT(dm.rule.log_types(), ElementsAre("Okta.SystemLog"));
  EXPECT_EQ(dm.python_path, "data_models/okta_data_model.py");
  EXPECT_EQ(dm.rule.files_size(), 2);
  ASSERT_THAT(dm.mappings, SizeIs(2));
  EXPECT_EQ(dm.mappings[0].name, "actor_user");
  EXPECT_EQ(dm.mappings[0].method, "get_actor_user");
  EXPECT_EQ(dm.mappings[0].path, "");
  EXPECT_EQ(dm.mappings[0].line, 9);
  EXPECT_EQ(dm.mappings[1].name, "source_ip");
  EXPECT_EQ(dm.mappings[1].path, "$.client.ipAddress");
  EXPECT_EQ(dm.mappings[1].method, "");
}

TEST(AnalysisSpecTest, RepeatedFieldOverloadGivesTheSameResult) {
  v1::UploadRuleRequest request;
  for (const v1::AnalysisFile& f : ValidUpload()) *request.add_files() = f;
  std::vector<v1::Diagnostic> diagnostics;
  absl::StatusOr<AnalysisSet> set = LoadAnalysisFiles(request.files(), &diagnostics);
  ASSERT_TRUE(set.ok()) << set.status();
  EXPECT_THAT(set->rules, SizeIs(1));
}

TEST(AnalysisSpecTest, AppliesPantherDefaults) {
  Loaded l = Load({File("r.yml", RuleYaml("Minimal", "r.py")), File("r.py", kRulePy)});
  ASSERT_TRUE(l.set.ok()) << l.Dump();
  const v1::Rule& rule = l.set->rules[0].rule;
  EXPECT_EQ(rule.dedup_period_minutes(), 60);
  EXPECT_EQ(rule.threshold(), 1);
  EXPECT_TRUE(rule.create_alert());
  EXPECT_EQ(rule.display_name(), "");
  EXPECT_EQ(rule.test_count(), 0);
  EXPECT_EQ(rule.severity(), v1::SEVERITY_LOW);
}

TEST(AnalysisSpecTest, AcceptsEveryOptionalRuleKey) {
  const std::string extra = R"yaml(InlineFilters:
  All: []
DynamicSeverities:
  - ChangeTo: HIGH
AlertTitle: Title
AlertContext: [{KeyName: a, KeyValue: {Key: x}}]
GroupBy: [{Key: a}]
Tests:
  - Name: t
    ExpectedResult: true
    Log: {}
    Resource: {}
    ResourceType: AWS.S3.Bucket
    RuleOutputs: []
)yaml";
  Loaded l = Load({File("r.yml", RuleYaml("Everything", "r.py", extra)), File("r.py", kRulePy)});
  ASSERT_TRUE(l.set.ok()) << l.Dump();
  // InlineFilters are accepted with a warning: pantherd does not apply them.
  ASSERT_THAT(l.Warnings(), SizeIs(1)) << l.Dump();
  EXPECT_EQ(l.Warnings()[0]->field(), "InlineFilters");
  EXPECT_EQ(l.Warnings()[0]->line(), 8);
  EXPECT_EQ(l.set->rules[0].tests[0].log_json, "{}");
}

// ---------------------------------------------------------------------------
// Files: which are read, Filename resolution.

TEST(AnalysisSpecTest, ResolvesFilenameRelativeToTheSpecInNestedFolders) {
  Loaded l = Load({
      File("rules/aws/cloudtrail/deep/spec.yml", RuleYaml("Nested", "../shared/impl.py")),
      File("rules/aws/cloudtrail/shared/impl.py", kRulePy),
      File("./rules/top.yaml", RuleYaml("Top", "./code/top.py")),
      File("rules/code/top.py", "def rule(e):\n    return False\n"),
  });
  ASSERT_TRUE(l.set.ok()) << l.Dump();
  ASSERT_THAT(l.set->rules, SizeIs(2));
  EXPECT_EQ(l.set->rules[0].rule.id(), "Nested");
  EXPECT_EQ(l.set->rules[0].python_path, "rules/aws/cloudtrail/shared/impl.py");
  EXPECT_EQ(l.set->rules[1].rule.id(), "Top");
  EXPECT_EQ(l.set->rules[1].spec_path, "./rules/top.yaml");
  EXPECT_EQ(l.set->rules[1].python_path, "rules/code/top.py");
}

TEST(AnalysisSpecTest, FilenameMustBeAmongTheUploadedFiles) {
  Loaded l = Load({
      File("rules/a/spec.yml", RuleYaml("A", "a.py")),
      File("rules/a.py", kRulePy),  // Not next to the spec.
      File("rules/b.yml", RuleYaml("B", "../../outside.py")),
      File("rules/c.yml", RuleYaml("C", "/abs/c.py")),
  });
  ASSERT_FALSE(l.set.ok());
  v1::Diagnostic a = l.Find("rules/a/spec.yml", "Filename");
  EXPECT_EQ(a.line(), 3);
  EXPECT_THAT(a.message(), HasSubstr("rules/a/a.py"));
  EXPECT_THAT(a.message(), HasSubstr("not among the uploaded files"));
  EXPECT_EQ(l.Find("rules/b.yml", "Filename").line(), 3);
  EXPECT_THAT(l.Find("rules/b.yml", "Filename").message(), HasSubstr("inside the upload"));
  EXPECT_EQ(l.Find("rules/c.yml", "Filename").line(), 3);
  EXPECT_THAT(l.set.status().message(), HasSubstr("3 problems in 3 files"));
}

TEST(AnalysisSpecTest, MissingFilenameAndSimpleDetections) {
  Loaded l = Load({
      File("missing.yml",
           "AnalysisType: rule\nRuleID: NoFile\nEnabled: true\nLogTypes: [A.B]\n"
           "Severity: Low\n"),
      File("simple.yml",
           "AnalysisType: rule\nRuleID: Simple\nEnabled: true\nLogTypes: [A.B]\n"
           "Severity: Low\nDetection:\n  - Key: x\n    Condition: Equals\n    Value: 1\n"),
      File("both.yml", RuleYaml("Both", "both.py", "Detection: []\n")),
      File("both.py", kRulePy),
  });
  ASSERT_FALSE(l.set.ok());
  v1::Diagnostic missing = l.Find("missing.yml", "Filename");
  EXPECT_EQ(missing.line(), 1);
  EXPECT_THAT(missing.message(), HasSubstr("missing required key Filename"));
  EXPECT_THAT(l.Find("both.yml", "Detection").message(), HasSubstr("not both"));
  // A Simple Detection is skipped, as pat skips it without a backend.
  EXPECT_THAT(l.Errors(), SizeIs(2)) << l.Dump();
  std::vector<v1::AnalysisFile> files = {
      File("simple.yml",
           "AnalysisType: rule\nRuleID: Simple\nEnabled: true\nLogTypes: [A.B]\n"
           "Severity: Low\nDetection:\n  - Key: x\n    Condition: Equals\n    Value: 1\n")};
  Loaded simple = Load(files);
  ASSERT_TRUE(simple.set.ok()) << simple.Dump();
  ASSERT_THAT(simple.set->skipped, SizeIs(1));
  EXPECT_EQ(simple.set->skipped[0].analysis_type(), "simple_detection");
  EXPECT_THAT(simple.set->skipped[0].files(), ElementsAre("simple.yml"));
}

TEST(AnalysisSpecTest, HiddenFilesAndFoldersAreIgnored) {
  Loaded l = Load({
      File(".hidden/rule.yml", "AnalysisType: rule\n"), File("rules/.git/x.yml", "{{{ not yaml"),
      File("rules/.x.yml", "AnalysisType: whatever\n"),
      File("rules/__pycache__/y.yml", "AnalysisType: whatever\n"),
      File("rules/r.yml", RuleYaml("Visible", ".impl/r.py")),
      File("rules/.impl/r.py", kRulePy),  // Hidden, but named by a spec: fine.
  });
  ASSERT_TRUE(l.set.ok()) << l.Dump();
  ASSERT_THAT(l.set->rules, SizeIs(1));
  EXPECT_EQ(l.set->rules[0].python_path, "rules/.impl/r.py");
  EXPECT_TRUE(IsAnalysisSpecPath("rules/a.yml"));
  EXPECT_TRUE(IsAnalysisSpecPath("a.yaml"));
  EXPECT_FALSE(IsAnalysisSpecPath("rules/a.json"));
  EXPECT_FALSE(IsAnalysisSpecPath("rules/a.YML"));
  EXPECT_FALSE(IsAnalysisSpecPath(".a.yml"));
  EXPECT_FALSE(IsAnalysisSpecPath("x/__pycache__/a.yml"));
}

TEST(AnalysisSpecTest, BadUploadPaths) {
  Loaded l = Load({
      File("../escape.yml", "a: 1\n"),
      File("/abs.yml", "a: 1\n"),
      File("rules/x.py", "1"),
      File("rules/./x.py", "2"),
  });
  ASSERT_FALSE(l.set.ok());
  EXPECT_THAT(l.Find("../escape.yml", "").message(), HasSubstr("relative"));
  EXPECT_THAT(l.Find("/abs.yml", "").message(), HasSubstr("relative"));
  EXPECT_THAT(l.Find("rules/./x.py", "").message(), HasSubstr("uploaded twice"));
}

// ---------------------------------------------------------------------------
// YAML and AnalysisType.

TEST(AnalysisSpecTest, InvalidYamlReportsTheParserLine) {
  Loaded l =
      Load({File("rules/broken.yml", "AnalysisType: rule\nRuleID: [unclosed\nEnabled: true\n")});
  ASSERT_FALSE(l.set.ok());
  ASSERT_THAT(l.Errors(), SizeIs(1)) << l.Dump();
  EXPECT_EQ(l.Errors()[0]->file(), "rules/broken.yml");
  EXPECT_EQ(l.Errors()[0]->line(), 3);
  EXPECT_THAT(l.Errors()[0]->message(), HasSubstr("invalid YAML"));
  EXPECT_EQ(l.set.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(l.set.status().message(), HasSubstr("1 problem in 1 file"));
}

TEST(AnalysisSpecTest, SeveralDocumentsAndBadUtf8AreErrors) {
  Loaded l = Load({
      File("multi.yml", "AnalysisType: rule\n---\nAnalysisType: global\n"),
      File("latin1.yml", "AnalysisType: rule\nDescription: caf\xE9\n"),
  });
  ASSERT_FALSE(l.set.ok());
  EXPECT_THAT(l.Find("multi.yml", "").message(), HasSubstr("single YAML document"));
  v1::Diagnostic latin1 = l.Find("latin1.yml", "");
  EXPECT_EQ(latin1.line(), 2);
  EXPECT_THAT(latin1.message(), HasSubstr("UTF-8"));
}

TEST(AnalysisSpecTest, UnknownAnalysisTypeIsAnError) {
  Loaded l = Load({File("x.yml", "# comment\nAnalysisType: detection\n"),
                   File("y.yml", "AnalysisType: [rule]\n")});
  ASSERT_FALSE(l.set.ok());
  v1::Diagnostic d = l.Find("x.yml", "AnalysisType");
  EXPECT_EQ(d.line(), 2);
  EXPECT_THAT(d.message(), HasSubstr("unknown AnalysisType \"detection\""));
  EXPECT_THAT(l.Find("y.yml", "AnalysisType").message(), HasSubstr("must be a string"));
}

TEST(AnalysisSpecTest, OtherPantherTypesAreSkippedAndCounted) {
  Loaded l = Load({
      File("policies/p1.yml", "AnalysisType: policy\nPolicyID: P1\n"),
      File("policies/p2.yml", "AnalysisType: policy\nPolicyID: P2\nAnything: goes\n"),
      File("rules/corr.yml", "AnalysisType: correlation_rule\nRuleID: C1\n"),
      File("queries/q.yml", "AnalysisType: saved_query\nQueryName: Q1\n"),
      File("queries/sq.yml", "AnalysisType: scheduled_query\nQueryName: Q2\n"),
      File("packs/p.yml", "AnalysisType: pack\nPackID: Pack1\n"),
      File("luts/l.yml", "AnalysisType: lookup_table\nLookupName: L1\n"),
      File("rules/simple.yml", "AnalysisType: simple_detection\nRuleID: SD\n"),
      File("rules/derived.yml", "AnalysisType: rule\nRuleID: D1\nBaseDetection: Base.Rule\n"),
      File("rules/r.yml", RuleYaml("Real", "r.py")),
      File("rules/r.py", kRulePy),
  });
  ASSERT_TRUE(l.set.ok()) << l.Dump();
  EXPECT_THAT(l.set->rules, SizeIs(1));
  std::vector<std::string> got;
  for (const v1::SkippedContent& s : l.set->skipped) {
    got.push_back(
        absl::StrCat(s.analysis_type(), "=", s.count(), ":", absl::StrJoin(s.files(), ",")));
  }
  EXPECT_THAT(
      got, ElementsAre("correlation_rule=1:rules/corr.yml", "derived=1:rules/derived.yml",
                       "lookup_table=1:luts/l.yml", "pack=1:packs/p.yml",
                       "policy=2:policies/p1.yml,policies/p2.yml", "saved_query=1:queries/q.yml",
                       "scheduled_query=1:queries/sq.yml", "simple_detection=1:rules/simple.yml"));
}

// A scheduled rule is a Python rule on the rows of its ScheduledQueries: its
// tests run (as pat runs them); it has no log types.
TEST(AnalysisSpecTest, ScheduledRulesLoadWithTheirQueriesAndTests) {
  Loaded l = Load({
      File("rules/s.yml",
           "AnalysisType: scheduled_rule\nRuleID: Sched.One\nFilename: s.py\nEnabled: false\n"
           "ScheduledQueries:\n  - Admin Grants Per Actor\nSeverity: Medium\nTests:\n"
           "  - Name: Row\n    ExpectedResult: true\n    Log: {grants: 12}\n"),
      File("rules/s.py", kRulePy),
      File("rules/missing.yml",
           "AnalysisType: scheduled_rule\nRuleID: Sched.Two\nFilename: s.py\nEnabled: true\n"
           "Severity: Low\n"),
      File("rules/dup.yml", RuleYaml("Sched.One", "s.py")),
  });
  ASSERT_FALSE(l.set.ok());
  EXPECT_THAT(l.Find("rules/missing.yml", "ScheduledQueries").message(),
              HasSubstr("missing required key ScheduledQueries"));
  EXPECT_THAT(l.Find("rules/s.yml", "RuleID").message(),
              HasSubstr("Conflicting AnalysisID: [Sched.One] is also the ID of rules/dup.yml"));

  std::vector<v1::AnalysisFile> files = {
      File("rules/s.yml",
           "AnalysisType: scheduled_rule\nRuleID: Sched.One\nFilename: s.py\nEnabled: false\n"
           "ScheduledQueries:\n  - Admin Grants Per Actor\nSeverity: Medium\nTests:\n"
           "  - Name: Row\n    ExpectedResult: true\n    Log: {grants: 12}\n"),
      File("rules/s.py", kRulePy)};
  Loaded good = Load(files);
  ASSERT_TRUE(good.set.ok()) << good.Dump();
  ASSERT_THAT(good.set->rules, SizeIs(1));
  const RuleSpec& rule = good.set->rules[0];
  EXPECT_TRUE(rule.scheduled);
  EXPECT_THAT(rule.scheduled_queries, ElementsAre("Admin Grants Per Actor"));
  EXPECT_EQ(rule.rule.log_types_size(), 0);
  EXPECT_EQ(rule.rule.type(), v1::ANALYSIS_TYPE_RULE);
  ASSERT_THAT(rule.tests, SizeIs(1));
  EXPECT_EQ(rule.tests[0].log_json, "{\"grants\": 12}");
  EXPECT_THAT(good.set->skipped, IsEmpty());
}

// `pat test` on a checkout: every valid item is kept, every problem is
// reported, the first of two specs with one ID wins.
TEST(AnalysisSpecTest, LoadValidKeepsEveryValidItem) {
  std::vector<v1::AnalysisFile> files = {
      File("rules/a.yml", RuleYaml("A", "a.py")),
      File("rules/a.py", kRulePy),
      File("rules/b.yml", RuleYaml("B", "b.py", "Severity2: High\n")),
      File("rules/b.py", kRulePy),
      File("rules/broken.yml", "AnalysisType: rule\nLogTypes: [A\n"),
      File("rules/c.yml", RuleYaml("A", "c.py")),
      File("rules/c.py", kRulePy),
      File("templates/t.yml", RuleYaml("T", "missing.py")),
      File("global_helpers/g.yml", "AnalysisType: global\nGlobalID: g\nFilename: g.py\n"),
      File("global_helpers/g.py", "X = 1\n"),
      File("data_models/d1.yml",
           "AnalysisType: datamodel\nDataModelID: D1\nEnabled: true\nLogTypes: [Okta.SystemLog]\n"
           "Mappings:\n  - Name: ip\n    Path: $.client.ipAddress\n"),
      File("data_models/d2.yml",
           "AnalysisType: datamodel\nDataModelID: D2\nEnabled: true\nLogTypes: [Okta.SystemLog]\n"
           "Mappings:\n  - Name: ip\n    Path: $.ip\n"),
  };
  std::vector<v1::Diagnostic> strict;
  EXPECT_FALSE(LoadAnalysisFiles(files, &strict).ok());
  std::vector<v1::Diagnostic> diagnostics;
  AnalysisSet set = LoadValidAnalysisFiles(files, &diagnostics);
  // The same problems as the all-or-nothing load.
  ASSERT_EQ(diagnostics.size(), strict.size());
  for (size_t i = 0; i < strict.size(); ++i) {
    EXPECT_EQ(diagnostics[i].SerializeAsString(), strict[i].SerializeAsString());
  }
  std::vector<std::string> files_with_errors;
  for (const v1::Diagnostic& d : diagnostics) {
    if (files_with_errors.empty() || files_with_errors.back() != d.file()) {
      files_with_errors.push_back(d.file());
    }
  }
  EXPECT_THAT(files_with_errors, ElementsAre("data_models/d2.yml", "rules/b.yml",
                                             "rules/broken.yml", "rules/c.yml", "templates/t.yml"));
  ASSERT_THAT(set.rules, SizeIs(1));
  EXPECT_EQ(set.rules[0].spec_path, "rules/a.yml");
  ASSERT_THAT(set.globals, SizeIs(1));
  ASSERT_THAT(set.data_models, SizeIs(1));
  EXPECT_EQ(set.data_models[0].rule.id(), "D1");
}

// ---------------------------------------------------------------------------
// Rule schema.

TEST(AnalysisSpecTest, UnknownKeysAreErrors) {
  Loaded l = Load({File("r.yml", RuleYaml("R", "r.py", "Foo: 1\ndedupPeriodMinutes: 5\n")),
                   File("r.py", kRulePy)});
  ASSERT_FALSE(l.set.ok());
  v1::Diagnostic foo = l.Find("r.yml", "Foo");
  EXPECT_EQ(foo.line(), 8);
  EXPECT_THAT(foo.message(), HasSubstr("unknown key \"Foo\""));
  EXPECT_THAT(foo.message(), HasSubstr("allowed keys: AnalysisType, Enabled"));
  v1::Diagnostic typo = l.Find("r.yml", "dedupPeriodMinutes");
  EXPECT_EQ(typo.line(), 9);
  EXPECT_THAT(typo.message(), HasSubstr("did you mean DedupPeriodMinutes?"));
}

// A misspelt key (a letter missing, two swapped, another case) names the
// closest valid key, for upload and test alike (both load specs here).
TEST(AnalysisSpecTest, MisspeltKeysSuggestTheClosestKey) {
  Loaded l =
      Load({File("r.yml", RuleYaml("R", "r.py", "DedupPeriodMinuts: 5\nthresold: 2\nRunBook: x\n")),
            File("r.py", kRulePy)});
  ASSERT_FALSE(l.set.ok());
  EXPECT_THAT(l.Find("r.yml", "DedupPeriodMinuts").message(),
              HasSubstr("unknown key \"DedupPeriodMinuts\" in a rule (did you mean "
                        "DedupPeriodMinutes?)"));
  EXPECT_THAT(l.Find("r.yml", "thresold").message(), HasSubstr("(did you mean Threshold?)"));
  EXPECT_THAT(l.Find("r.yml", "RunBook").message(), HasSubstr("(did you mean Runbook?)"));
}

TEST(SpecKeyDistanceTest, CaseInsensitiveWithSwaps) {
  EXPECT_EQ(internal::KeyDistance("Severity", "severity"), 0u);
  EXPECT_EQ(internal::KeyDistance("Sevreity", "Severity"), 1u);  // Swap.
  EXPECT_EQ(internal::KeyDistance("Severty", "Severity"), 1u);
  EXPECT_EQ(internal::KeyDistance("", "abc"), 3u);
  constexpr absl::string_view kKeys[] = {"Tags", "Tests", "Severity"};
  EXPECT_EQ(internal::ClosestKey("Test", std::begin(kKeys), std::end(kKeys)).value_or(""), "Tests");
  EXPECT_FALSE(internal::ClosestKey("Foo", std::begin(kKeys), std::end(kKeys)).has_value());
  EXPECT_FALSE(internal::ClosestKey("Reports", std::begin(kKeys), std::end(kKeys)).has_value());
}

TEST(AnalysisSpecTest, MissingRequiredKeys) {
  Loaded l = Load({File("r.yml", "AnalysisType: rule\nFilename: r.py\n"), File("r.py", kRulePy)});
  ASSERT_FALSE(l.set.ok());
  for (const char* key : {"RuleID", "Enabled", "LogTypes", "Severity"}) {
    v1::Diagnostic d = l.Find("r.yml", key);
    EXPECT_EQ(d.line(), 1) << key;
    EXPECT_THAT(d.message(), HasSubstr(absl::StrCat("missing required key ", key)));
  }
  EXPECT_THAT(l.Errors(), SizeIs(4));
}

TEST(AnalysisSpecTest, SeverityMustBeAPantherLevel) {
  Loaded bad = Load({File("r.yml",
                          "AnalysisType: rule\nRuleID: R\nFilename: r.py\n"
                          "Enabled: true\nLogTypes: [A.B]\nSeverity: high\n"),
                     File("r.py", kRulePy)});
  ASSERT_FALSE(bad.set.ok());
  v1::Diagnostic d = bad.Find("r.yml", "Severity");
  EXPECT_EQ(d.line(), 6);
  EXPECT_THAT(d.message(), HasSubstr("\"high\" is not one of Info, Low, Medium, High, Critical"));

  // Upper case is accepted (Panther's JSON schema), with a warning.
  Loaded upper = Load({File("r.yml",
                            "AnalysisType: rule\nRuleID: R\nFilename: r.py\n"
                            "Enabled: true\nLogTypes: [A.B]\nSeverity: CRITICAL\n"),
                       File("r.py", kRulePy)});
  ASSERT_TRUE(upper.set.ok()) << upper.Dump();
  EXPECT_EQ(upper.set->rules[0].rule.severity(), v1::SEVERITY_CRITICAL);
  ASSERT_THAT(upper.Warnings(), SizeIs(1));
  EXPECT_EQ(upper.Warnings()[0]->field(), "Severity");
  EXPECT_THAT(upper.Warnings()[0]->message(), HasSubstr("warning: "));
}

TEST(AnalysisSpecTest, FieldTypesFollowYaml12) {
  Loaded l = Load({File("r.yml",
                        "AnalysisType: rule\nRuleID: 123\nFilename: r.py\n"
                        "Enabled: yes\nLogTypes: Okta.SystemLog\nSeverity: Low\n"
                        "Threshold: '5'\nCreateAlert: \"false\"\nDescription:\n"
                        "Tags: [ok, 5]\n"),
                   File("r.py", kRulePy)});
  ASSERT_FALSE(l.set.ok());
  EXPECT_EQ(l.Find("r.yml", "RuleID").line(), 2);
  EXPECT_THAT(l.Find("r.yml", "RuleID").message(), HasSubstr("must be a string"));
  v1::Diagnostic enabled = l.Find("r.yml", "Enabled");
  EXPECT_EQ(enabled.line(), 4);
  EXPECT_THAT(enabled.message(), HasSubstr("must be true or false"));
  EXPECT_THAT(enabled.message(), HasSubstr("YAML 1.2"));
  EXPECT_EQ(l.Find("r.yml", "LogTypes").line(), 5);
  EXPECT_THAT(l.Find("r.yml", "Threshold").message(), HasSubstr("must be an integer"));
  EXPECT_THAT(l.Find("r.yml", "CreateAlert").message(), HasSubstr("remove the quotes"));
  EXPECT_EQ(l.Find("r.yml", "Description").line(), 9);
  EXPECT_EQ(l.Find("r.yml", "Tags[1]").line(), 10);
}

TEST(AnalysisSpecTest, IdsMustMatchPanthersRegex) {
  Loaded l = Load({File("r.yml", RuleYaml("\"Bad<ID>\"", "r.py", "DisplayName: '50%'\n")),
                   File("r.py", kRulePy)});
  ASSERT_FALSE(l.set.ok());
  EXPECT_EQ(l.Find("r.yml", "RuleID").line(), 2);
  EXPECT_THAT(l.Find("r.yml", "RuleID").message(), HasSubstr("may not contain"));
  EXPECT_EQ(l.Find("r.yml", "DisplayName").line(), 8);
}

// Security (issue 14, row 9): ids are printed in terminals, logs and alerts,
// so escapes, bidirectional overrides, look-alike letters and huge ids are
// refused, with the offending bytes escaped in the message.
TEST(AnalysisSpecTest, IdsArePrintableAsciiOfBoundedLength) {
  const std::vector<std::string> bad = {
      "\"Okta.\\e[2JFailedLogin\"",            // a terminal escape
      "\"Okta.\\u202eFailedLogin\"",           // a right-to-left override
      "\"Okta.Fаiled\"",                         // a Cyrillic look-alike letter
      std::string(100000, 'A'),                   // far too long
  };
  for (const std::string& id : bad) {
    Loaded l = Load({File("r.yml", RuleYaml(id, "r.py")), File("r.py", kRulePy)});
    ASSERT_FALSE(l.set.ok()) << id.substr(0, 40);
    const std::string message = l.Find("r.yml", "RuleID").message();
    EXPECT_EQ(l.Find("r.yml", "RuleID").line(), 2);
    EXPECT_LT(message.size(), 400u);
    for (char c : message) {
      EXPECT_TRUE(c >= 0x20 && c < 0x7f) << "unescaped byte in: " << message.substr(0, 80);
    }
  }
  // Panther's own ids (letters, digits, dots, dashes, underscores) load.
  Loaded ok = Load({File("r.yml", RuleYaml("AWS.CloudTrail-Created_2", "r.py")),
                    File("r.py", kRulePy)});
  EXPECT_TRUE(ok.set.ok()) << ok.Dump();
  Loaded longest = Load({File("r.yml", RuleYaml(std::string(200, 'x'), "r.py")),
                         File("r.py", kRulePy)});
  EXPECT_TRUE(longest.set.ok()) << longest.Dump();
}

TEST(AnalysisSpecTest, SetFieldsRejectDuplicates) {
  Loaded l = Load({File("r.yml",
                        "AnalysisType: rule\nRuleID: R\nFilename: r.py\n"
                        "Enabled: true\nLogTypes:\n  - A.B\n  - A.B\nSeverity: Low\n"
                        "Tags:\n  - AWS\n  - aws\nOutputIds: [x, x]\n"
                        "SummaryAttributes: [a, b, a]\n"),
                   File("r.py", kRulePy)});
  ASSERT_FALSE(l.set.ok());
  EXPECT_EQ(l.Find("r.yml", "LogTypes[1]").line(), 7);
  EXPECT_THAT(l.Find("r.yml", "LogTypes[1]").message(), HasSubstr("duplicate value \"A.B\""));
  v1::Diagnostic tags = l.Find("r.yml", "Tags[1]");
  EXPECT_EQ(tags.line(), 11);
  EXPECT_THAT(tags.message(), HasSubstr("unique ignoring case: \"AWS\" and \"aws\""));
  EXPECT_EQ(l.Find("r.yml", "OutputIds[1]").line(), 12);
  EXPECT_EQ(l.Find("r.yml", "SummaryAttributes[2]").line(), 13);
}

TEST(AnalysisSpecTest, ReportsMustMapStringsToLists) {
  Loaded l = Load({File("r.yml", RuleYaml("R", "r.py",
                                          "Reports:\n  MITRE: TA0001\n  2024: [a]\n"
                                          "  OK: [a, 1]\n  Bad: [a, {x: 1}]\n")),
                   File("r.py", kRulePy)});
  ASSERT_FALSE(l.set.ok());
  EXPECT_EQ(l.Find("r.yml", "Reports.MITRE").line(), 9);
  EXPECT_THAT(l.Find("r.yml", "Reports.MITRE").message(), HasSubstr("must be a list"));
  EXPECT_EQ(l.Find("r.yml", "Reports.2024").line(), 10);
  EXPECT_EQ(l.Find("r.yml", "Reports.Bad[1]").line(), 12);
  EXPECT_THAT(l.Errors(), SizeIs(3)) << l.Dump();
}

TEST(AnalysisSpecTest, ScheduledQueriesInARuleIsAnError) {
  Loaded l = Load({File("r.yml",
                        "AnalysisType: rule\nRuleID: R\nFilename: r.py\nEnabled: true\n"
                        "ScheduledQueries: [Q]\nSeverity: Low\n"),
                   File("r.py", kRulePy)});
  ASSERT_FALSE(l.set.ok());
  EXPECT_EQ(l.Find("r.yml", "ScheduledQueries").line(), 5);
  EXPECT_THAT(l.Errors(), SizeIs(1)) << l.Dump();
}

TEST(AnalysisSpecTest, DedupPeriodWarnings) {
  Loaded zero = Load({File("z.yml", RuleYaml("Z", "r.py", "DedupPeriodMinutes: 0\n")),
                      File("s.yml", RuleYaml("S", "r.py", "DedupPeriodMinutes: 3\n")),
                      File("r.py", kRulePy)});
  ASSERT_TRUE(zero.set.ok()) << zero.Dump();
  ASSERT_THAT(zero.Warnings(), SizeIs(2)) << zero.Dump();
  v1::Diagnostic z = zero.Find("z.yml", "DedupPeriodMinutes");
  EXPECT_EQ(z.line(), 8);
  EXPECT_THAT(z.message(), HasSubstr("warning: "));
  EXPECT_THAT(z.message(), HasSubstr("p_row_id"));
  EXPECT_THAT(zero.Find("s.yml", "DedupPeriodMinutes").message(), HasSubstr("minimum of 5"));
  EXPECT_EQ(zero.set->rules[0].rule.dedup_period_minutes(), 3);  // s.yml sorts first.
  EXPECT_EQ(zero.set->rules[1].rule.dedup_period_minutes(), 0);

  Loaded huge = Load({File("h.yml", RuleYaml("H", "r.py", "DedupPeriodMinutes: 99999999999\n")),
                      File("r.py", kRulePy)});
  ASSERT_FALSE(huge.set.ok());
  EXPECT_THAT(huge.Find("h.yml", "DedupPeriodMinutes").message(), HasSubstr("out of range"));
}

// ---------------------------------------------------------------------------
// Tests and Mocks.

TEST(AnalysisSpecTest, TestAndMockErrors) {
  const std::string tests = R"yaml(Tests:
  - Name: missing result
    Log: {a: 1}
  - Name: unknown key
    ExpectedResult: true
    Log: {}
    Expected: true
  - Name: bad mocks
    ExpectedResult: yes
    Log: {}
    Mocks:
      - objectName: f
        returnValue: 5
      - objectName: g
      - objectName: h
        returnValue: x
        extra: 1
  - Name: no log
    ExpectedResult: false
  - just a string
)yaml";
  Loaded l = Load({File("r.yml", RuleYaml("R", "r.py", tests)), File("r.py", kRulePy)});
  ASSERT_FALSE(l.set.ok());
  v1::Diagnostic missing = l.Find("r.yml", "Tests[0].ExpectedResult");
  EXPECT_EQ(missing.line(), 9);
  EXPECT_THAT(missing.message(), HasSubstr("missing required key ExpectedResult"));
  v1::Diagnostic unknown = l.Find("r.yml", "Tests[1].Expected");
  EXPECT_EQ(unknown.line(), 14);
  EXPECT_THAT(unknown.message(), HasSubstr("unknown key \"Expected\" in a test"));
  EXPECT_EQ(l.Find("r.yml", "Tests[2].ExpectedResult").line(), 16);
  v1::Diagnostic rv = l.Find("r.yml", "Tests[2].Mocks[0].returnValue");
  EXPECT_EQ(rv.line(), 20);
  EXPECT_THAT(rv.message(), HasSubstr("string or a boolean"));
  EXPECT_EQ(l.Find("r.yml", "Tests[2].Mocks[1].returnValue").line(), 21);
  EXPECT_EQ(l.Find("r.yml", "Tests[2].Mocks[2].extra").line(), 24);
  v1::Diagnostic nolog = l.Find("r.yml", "Tests[3].Log");
  EXPECT_EQ(nolog.line(), 25);
  EXPECT_THAT(nolog.message(), HasSubstr("missing required key Log"));
  v1::Diagnostic notmap = l.Find("r.yml", "Tests[4]");
  EXPECT_EQ(notmap.line(), 27);
  EXPECT_THAT(l.Errors(), SizeIs(8)) << l.Dump();
  EXPECT_THAT(l.set.status().message(), HasSubstr("8 problems in 1 file"));
}

TEST(AnalysisSpecTest, TestsMustBeAList) {
  Loaded l =
      Load({File("r.yml", RuleYaml("R", "r.py", "Tests:\n  Name: x\n")), File("r.py", kRulePy)});
  ASSERT_FALSE(l.set.ok());
  EXPECT_EQ(l.Find("r.yml", "Tests").line(), 8);
}

TEST(AnalysisSpecTest, BadValueInsideALogNamesItsLine) {
  Loaded l = Load({File("r.yml", RuleYaml("R", "r.py",
                                          "Tests:\n  - Name: t\n    ExpectedResult: true\n"
                                          "    Log:\n      a: 1\n      b: !custom x\n")),
                   File("r.py", kRulePy)});
  ASSERT_FALSE(l.set.ok());
  v1::Diagnostic d = l.Find("r.yml", "Tests[0].Log");
  EXPECT_EQ(d.line(), 13);
  EXPECT_THAT(d.message(), HasSubstr("unsupported tag !custom"));
}

// ---------------------------------------------------------------------------
// Globals and data models.

TEST(AnalysisSpecTest, GlobalSchema) {
  Loaded l = Load({
      File("g1.yml", "AnalysisType: global\nGlobalID: helpers\nFilename: g.py\nEnabled: true\n"),
      File("g2.yml", "AnalysisType: global\nFilename: g.py\n"),
      File("g3.yml", "AnalysisType: global\nGlobalID: my.helpers\nFilename: g.py\n"),
      File("g.py", "x = 1\n"),
  });
  ASSERT_FALSE(l.set.ok());
  EXPECT_EQ(l.Find("g1.yml", "Enabled").line(), 4);
  EXPECT_EQ(l.Find("g2.yml", "GlobalID").line(), 1);
  // Not a Python module name: a warning, not an error.
  v1::Diagnostic dotted = l.Find("g3.yml", "GlobalID");
  EXPECT_TRUE(IsWarning(dotted));
  EXPECT_THAT(l.Errors(), SizeIs(2)) << l.Dump();
}

TEST(AnalysisSpecTest, DataModelSchema) {
  Loaded l = Load({File("dm.yml", R"yaml(AnalysisType: datamodel
DataModelID: DM
Enabled: true
LogTypes: [A.B]
Mappings:
  - Name: both
    Path: $.a
    Method: f
  - Name: neither
  - Name: method
    Method: get_x
  - Path: $.nameless
  - Name: extra
    Path: $.x
    Foo: 1
)yaml")});
  ASSERT_FALSE(l.set.ok());
  EXPECT_EQ(l.Find("dm.yml", "Mappings[0]").line(), 6);
  EXPECT_THAT(l.Find("dm.yml", "Mappings[0]").message(),
              HasSubstr("exactly one of Path and Method"));
  EXPECT_EQ(l.Find("dm.yml", "Mappings[1]").line(), 9);
  EXPECT_EQ(l.Find("dm.yml", "Mappings[3].Name").line(), 12);
  EXPECT_EQ(l.Find("dm.yml", "Mappings[4].Foo").line(), 15);
  // A Method mapping needs the Python file.
  v1::Diagnostic filename = l.Find("dm.yml", "Filename");
  EXPECT_EQ(filename.line(), 1);
  EXPECT_THAT(filename.message(), HasSubstr("Method (line 10)"));
  EXPECT_THAT(l.Errors(), SizeIs(5)) << l.Dump();
}

TEST(AnalysisSpecTest, DataModelWithOnlyPathsNeedsNoFile) {
  Loaded l = Load({File("dm.yml",
                        "AnalysisType: datamodel\nDataModelID: DM\nEnabled: false\n"
                        "LogTypes: [A.B]\nMappings:\n  - Name: ip\n    Path: ip\n")});
  ASSERT_TRUE(l.set.ok()) << l.Dump();
  ASSERT_THAT(l.set->data_models, SizeIs(1));
  EXPECT_FALSE(l.set->data_models[0].rule.enabled());
  EXPECT_EQ(l.set->data_models[0].python_path, "");
  EXPECT_EQ(l.set->data_models[0].rule.files_size(), 1);
}

TEST(AnalysisSpecTest, OneEnabledDataModelPerLogType) {
  auto model = [](const std::string& id, bool enabled, const std::string& log_types) {
    return absl::StrCat("AnalysisType: datamodel\nDataModelID: ", id,
                        "\nEnabled: ", enabled ? "true" : "false", "\nLogTypes: ", log_types,
                        "\nMappings:\n  - Name: ip\n    Path: $.ip\n");
  };
  Loaded l = Load({
      File("a.yml", model("ModelA", true, "[Okta.SystemLog, AWS.CloudTrail]")),
      File("b.yml", model("ModelB", true, "[Okta.SystemLog]")),
      File("c.yml", model("ModelC", false, "[Okta.SystemLog, AWS.CloudTrail]")),
  });
  ASSERT_FALSE(l.set.ok());
  ASSERT_THAT(l.Errors(), SizeIs(1)) << l.Dump();
  v1::Diagnostic d = l.Find("b.yml", "LogTypes");
  EXPECT_THAT(d.message(),
              HasSubstr("Conflicting Enabled LogType [Okta.SystemLog] in Data Model [ModelB]"));
  EXPECT_THAT(d.message(), HasSubstr("ModelA"));
  EXPECT_THAT(d.message(), HasSubstr("a.yml"));
}

// ---------------------------------------------------------------------------
// Across specs.

TEST(AnalysisSpecTest, DuplicateIdsAcrossAllSpecs) {
  Loaded l = Load({
      File("rules/a.yml", RuleYaml("Same.ID", "r.py")),
      File("rules/b.yml", RuleYaml("Same.ID", "r.py")),
      File("rules/r.py", kRulePy),
      File("policies/p.yml", "AnalysisType: policy\nPolicyID: Shared\n"),
      File("rules/shared.yml", RuleYaml("Shared", "r.py")),
      File("helpers/g.yml", "AnalysisType: global\nGlobalID: Same.ID\nFilename: g.py\n"),
      File("helpers/g.py", ""),
  });
  ASSERT_FALSE(l.set.ok());
  v1::Diagnostic b = l.Find("rules/b.yml", "RuleID");
  EXPECT_EQ(b.line(), 2);
  EXPECT_THAT(b.message(), HasSubstr("Conflicting AnalysisID: [Same.ID]"));
  // helpers/g.yml sorts first, so it owns the ID.
  EXPECT_THAT(b.message(), HasSubstr("helpers/g.yml"));
  EXPECT_THAT(l.Find("rules/a.yml", "RuleID").message(), HasSubstr("helpers/g.yml"));
  v1::Diagnostic shared = l.Find("rules/shared.yml", "RuleID");
  EXPECT_THAT(shared.message(), HasSubstr("Conflicting AnalysisID: [Shared]"));
  EXPECT_THAT(shared.message(), HasSubstr("policies/p.yml (policy)"));
  EXPECT_THAT(l.Errors(), SizeIs(3)) << l.Dump();
}

TEST(AnalysisSpecTest, CollectsEveryProblemAndSummarises) {
  Loaded l = Load({
      File("one.yml", RuleYaml("One", "one.py", "Severity: Low\nFoo: 1\n")),
      File("two.yml", "AnalysisType: rule\nRuleID: Two\n"),
      File("one.py", kRulePy),
      File("ok.yml", RuleYaml("Ok", "one.py", "DedupPeriodMinutes: 1\n")),
  });
  ASSERT_FALSE(l.set.ok());
  EXPECT_EQ(l.set.status().code(), absl::StatusCode::kInvalidArgument);
  // one.yml: repeated Severity (warning) + Foo; two.yml: 4 missing keys.
  EXPECT_THAT(l.Errors(), SizeIs(5)) << l.Dump();
  EXPECT_THAT(l.set.status().message(), HasSubstr("5 problems in 2 files"));
  EXPECT_THAT(l.set.status().message(), HasSubstr("(first: one.yml line 9: unknown key"));
  // Diagnostics come in file order, then line order.
  std::vector<std::string> order;
  for (const v1::Diagnostic& d : l.diagnostics)
    order.push_back(absl::StrCat(d.file(), ":", d.line()));
  EXPECT_THAT(order, ElementsAre("ok.yml:8", "one.yml:8", "one.yml:9", "two.yml:1", "two.yml:1",
                                 "two.yml:1", "two.yml:1"));
  EXPECT_THAT(l.Find("one.yml", "Severity").message(), HasSubstr("also set at line 7"));
}

TEST(AnalysisSpecTest, KeepsExistingDiagnostics) {
  std::vector<v1::Diagnostic> diagnostics(1);
  diagnostics[0].set_message("earlier");
  absl::StatusOr<AnalysisSet> set = LoadAnalysisFiles(
      {File("r.yml", RuleYaml("R", "r.py")), File("r.py", kRulePy)}, &diagnostics);
  ASSERT_TRUE(set.ok());
  ASSERT_THAT(diagnostics, SizeIs(1));
  EXPECT_EQ(diagnostics[0].message(), "earlier");
}

TEST(AnalysisSpecTest, EmptyUploadIsAnEmptySet) {
  Loaded l = Load({});
  ASSERT_TRUE(l.set.ok());
  EXPECT_THAT(l.set->rules, IsEmpty());
  EXPECT_THAT(l.set->skipped, IsEmpty());
}

// Found by tests/fuzz/analysis_spec_fuzzer: every test converted its Log on
// its own, so a list of aliases to one test whose Log is itself a list of
// aliases to a long string (a few hundred kilobytes of spec) made gigabytes
// of JSON, and a merge-key bomb in a spec ran for hours. The whole spec's
// expansion is now bounded before anything else reads it.
TEST(AnalysisSpecTest, AliasAndMergeBombsAreRefusedForTheWholeSpec) {
  std::string laughs = RuleYaml("Bomb.Laughs", "r.py",
                                absl::StrCat("s: &s ", std::string(100000, 'x'), "\n",
                                             "Tests:\n  - &t\n    Name: t\n"
                                             "    ExpectedResult: true\n    Log: [*s"));
  for (int i = 1; i < 100; ++i) laughs += ", *s";
  laughs += "]\n";
  for (int i = 0; i < 2000; ++i) laughs += "  - *t\n";
  Loaded l = Load({File("r.yml", laughs), File("r.py", kRulePy)});
  EXPECT_FALSE(l.set.ok());
  ASSERT_THAT(l.Errors(), SizeIs(1)) << l.Dump();
  EXPECT_THAT(l.Errors()[0]->message(), HasSubstr("alias bomb"));

  std::string merges = RuleYaml("Bomb.Merge", "r.py", "a0: &a0 {k: 1}\n");
  for (int level = 1; level <= 8; ++level) {
    absl::StrAppend(&merges, "a", level, ": &a", level, " {<<: [");
    for (int i = 0; i < 10; ++i) absl::StrAppend(&merges, i ? ", " : "", "*a", level - 1);
    absl::StrAppend(&merges, "]}\n");
  }
  merges += "Tests:\n  - Name: t\n    ExpectedResult: true\n    Log: *a8\n";
  l = Load({File("r.yml", merges), File("r.py", kRulePy)});
  EXPECT_FALSE(l.set.ok());
  ASSERT_THAT(l.Errors(), SizeIs(1)) << l.Dump();
  EXPECT_THAT(l.Errors()[0]->message(), HasSubstr("bomb"));

  // Aliases that expand modestly are fine.
  std::string small = RuleYaml("Small.Aliases", "r.py",
                               "Tests:\n  - &t\n    Name: t\n    ExpectedResult: true\n"
                               "    Log: &log {a: [1, 2], b: {c: d}}\n  - *t\n"
                               "  - Name: u\n    ExpectedResult: false\n    Log: {x: *log}\n");
  l = Load({File("r.yml", small), File("r.py", kRulePy)});
  ASSERT_TRUE(l.set.ok()) << l.Dump();
  ASSERT_THAT(l.set->rules, SizeIs(1));
  ASSERT_THAT(l.set->rules[0].tests, SizeIs(3));
  EXPECT_EQ(l.set->rules[0].tests[2].log_json, R"({"x": {"a": [1, 2], "b": {"c": "d"}}})");
}

// Found by tests/fuzz/analysis_spec_fuzzer: on the 4 bytes ",.+?" yaml-cpp
// 0.7's LoadAll never returned (its parser yields empty documents forever)
// and its memory grew until the process was killed. The load now ends with
// an error.
TEST(AnalysisSpecTest, MalformedYamlThatYieldsEndlessDocumentsEnds) {
  Loaded l = Load({File("bad.yml", ",.+?"), File("r.py", kRulePy)});
  EXPECT_FALSE(l.set.ok());
  ASSERT_THAT(l.Errors(), SizeIs(1)) << l.Dump();
  EXPECT_EQ(l.Errors()[0]->file(), "bad.yml");
}

}  // namespace
}  // namespace pantherd::engine
