// `pantherctl upload PATH` and `pantherctl test PATH`: a folder of
// detections sent to pantherd. See commands.h.
#include <algorithm>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "client/analysis_folder.h"
#include "client/commands.h"
#include "client/output.h"
#include "client/test_report.h"
#include "google/protobuf/util/time_util.h"
#include "pantherd/v1/detection_service.grpc.pb.h"
#include "proto/base/status_macros.h"

namespace pantherd::client {
namespace {

namespace v1 = ::pantherd::v1;
using DetectionStub = Connection::DetectionStub;

// The keys pat's --filter accepts: the top-level keys of its GLOBAL_SCHEMA,
// POLICY_SCHEMA and RULE_SCHEMA (panther_analysis_tool/schemas.py, v1.7.0).
constexpr absl::string_view kFilterKeys =
    "ActionDelaySeconds AlertContext AlertTitle AnalysisType AutoRemediationID "
    "AutoRemediationParameters BaseVersion CreateAlert CreatedBy DedupPeriodMinutes Description "
    "Detection DisplayName DynamicSeverities Enabled Filename GlobalID GroupBy InlineFilters "
    "LogTypes OnlyUseBaseRiskScore OutputIds PolicyID Reference Reports ResourceTypes RuleID "
    "Runbook ScheduledQueries Severity Status SummaryAttributes Suppressions Tags Tests Threshold";

bool IsFilterKey(absl::string_view key) {
  for (absl::string_view known : absl::StrSplit(kFilterKeys, ' ')) {
    if (known == key) return true;
  }
  return false;
}

// pat's strtobool.
std::optional<bool> ParseBool(absl::string_view text) {
  const std::string lower = absl::AsciiStrToLower(text);
  for (const char* yes : {"y", "yes", "t", "true", "on", "1"}) {
    if (lower == yes) return true;
  }
  for (const char* no : {"n", "no", "f", "false", "off", "0"}) {
    if (lower == no) return false;
  }
  return std::nullopt;
}

absl::Status ParseOneFilter(const std::string& filter, std::map<std::string, std::string>& out) {
  const std::vector<std::string> parts = absl::StrSplit(filter, '=');
  if (parts.size() != 2 || parts[0].empty() || parts[1].empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("filter '", filter, "' is not in the form KEY=VALUE or KEY!=VALUE"));
  }
  std::string key = parts[0];
  const bool inverted = absl::EndsWith(key, "!");
  if (inverted) key.pop_back();
  if (!IsFilterKey(key)) {
    return absl::InvalidArgumentError(absl::StrCat("filter key '", key,
                                                   "' is not a field of a rule, policy or global "
                                                   "spec (e.g. Severity, Tags, LogTypes, RuleID)"));
  }
  std::string value = parts[1];
  if (key == "Enabled") {
    std::optional<bool> enabled = ParseBool(value);
    if (!enabled.has_value()) {
      return absl::InvalidArgumentError(
          absl::StrCat("filter '", filter, "': Enabled takes true or false"));
    }
    value = *enabled ? "true" : "false";
  }
  out[inverted ? key + "!" : key] = value;
  return absl::OkStatus();
}

// Decodes binary error details as `Message` (see commands.h); false when
// there are none or they are something else.
template <typename Message>
bool DecodeErrorDetails(const std::string& details, Message* message) {
  if (details.empty()) return false;
  if (!message->ParseFromString(details)) return false;
  // Anything else (e.g. a google.rpc.Status) parses too, as unknown fields.
  return message->GetReflection()->GetUnknownFields(*message).empty();
}

std::string TypeWord(v1::AnalysisType type) {
  switch (type) {
    case v1::ANALYSIS_TYPE_RULE:
      return "rule";
    case v1::ANALYSIS_TYPE_GLOBAL:
      return "global";
    case v1::ANALYSIS_TYPE_DATA_MODEL:
      return "datamodel";
    default:
      return "-";
  }
}

// --- upload ------------------------------------------------------------------

struct UploadArgs {
  std::string path;
  bool skip_tests = false;
  // An age ("7d"): replay the new and the live versions over it first.
  std::string backtest;
};

// `upload --backtest AGE`: what the new versions (the folder) would have
// alerted on over the stored events of the last AGE, next to what the stored
// (live) versions of the same rules give over the same events, on the error
// stream. Both are isolated replays (ReplayRules): nothing changes.
absl::Status Backtest(const UploadArgs& args, const std::vector<v1::AnalysisFile>& files,
                      Connection& conn, CommandEnv& env) {
  const absl::Time now = absl::Now();
  PANTHERD_ASSIGN_OR_RETURN(absl::Time since, ParseTimeOrAge("--backtest", args.backtest, now));
  auto replay = [&](v1::ReplayRulesRequest request) -> absl::StatusOr<v1::ReplayRulesResponse> {
    *request.mutable_since() =
        google::protobuf::util::TimeUtil::MicrosecondsToTimestamp(absl::ToUnixMicros(since));
    *request.mutable_until() =
        google::protobuf::util::TimeUtil::MicrosecondsToTimestamp(absl::ToUnixMicros(now));
    return CallReplayRules(conn, request, env);
  };
  v1::ReplayRulesRequest fresh;
  for (const v1::AnalysisFile& f : files) *fresh.mutable_content()->add_files() = f;
  PANTHERD_ASSIGN_OR_RETURN(v1::ReplayRulesResponse proposed, replay(std::move(fresh)));
  // The live versions of the rules the folder replaced, where stored.
  v1::ListRulesResponse stored;
  PANTHERD_RETURN_IF_ERROR(conn.Call("ListRules", &DetectionStub::ListRules, conn.detection(),
                                     v1::ListRulesRequest(), &stored));
  std::set<std::string> stored_ids;
  for (const v1::Rule& r : stored.rules()) stored_ids.insert(r.id());
  v1::ReplayRulesRequest live_request;
  for (const v1::ReplayRuleStats& r : proposed.rules()) {
    if (stored_ids.count(r.rule_id()) > 0) {
      live_request.mutable_stored()->add_rule_ids(r.rule_id());
    }
  }
  std::map<std::string, const v1::ReplayRuleStats*> live_by_rule;
  v1::ReplayRulesResponse live;
  if (live_request.stored().rule_ids_size() > 0) {
    PANTHERD_ASSIGN_OR_RETURN(live, replay(std::move(live_request)));
    for (const v1::ReplayRuleStats& r : live.rules()) live_by_rule[r.rule_id()] = &r;
  }
  std::ostream& err = env.err();
  err << "Backtest over " << proposed.events() << " stored events since "
      << FormatTimestamp(proposed.since()) << " (nothing is stored or notified):\n";
  Table table({"RULE", "NEW ALERTS", "NEW MATCHES", "NEW ERRORS", "LIVE ALERTS", "LIVE MATCHES",
               "LIVE ERRORS"});
  for (const v1::ReplayRuleStats& r : proposed.rules()) {
    auto it = live_by_rule.find(r.rule_id());
    const bool known = it != live_by_rule.end();
    table.AddRow({r.rule_id(), AlertsAndSignals(r.alerts(), r.signals()), absl::StrCat(r.matches()),
                  absl::StrCat(r.errors()),
                  known ? AlertsAndSignals(it->second->alerts(), it->second->signals()) : "new",
                  known ? absl::StrCat(it->second->matches()) : "-",
                  known ? absl::StrCat(it->second->errors()) : "-"});
  }
  table.Print(err);
  return absl::OkStatus();
}

// Counts of the tests in `report`.
std::pair<int, int> CountTests(const v1::TestReport& report) {
  int passed = 0, failed = 0;
  for (const v1::RuleTestResult& rule : report.rules()) {
    for (const v1::TestCaseResult& test : rule.tests()) {
      (test.outcome() == v1::TestCaseResult::OUTCOME_PASSED ? passed : failed) += 1;
    }
  }
  return {passed, failed};
}

void PrintUploadResult(const UploadArgs& args, const v1::UploadRuleResponse& response,
                       std::ostream& out) {
  const std::set<std::string> unchanged(response.unchanged_ids().begin(),
                                        response.unchanged_ids().end());
  Table stored({"ID", "TYPE", "VERSION"});
  for (const v1::Rule& rule : response.stored()) {
    if (unchanged.count(rule.id()) > 0) continue;
    stored.AddRow({rule.id(), TypeWord(rule.type()), absl::StrCat(rule.version())});
  }
  out << "Uploaded " << args.path << ": " << stored.row_count() << " stored, " << unchanged.size()
      << " unchanged\n";
  if (stored.row_count() > 0) stored.Print(out);
  if (!unchanged.empty()) {
    out << "Unchanged: " << EscapeForTerminal(absl::StrJoin(response.unchanged_ids(), ", "))
        << '\n';
  }

  const auto& skipped =
      response.skipped().empty() ? response.report().skipped() : response.skipped();
  if (!skipped.empty()) {
    std::vector<std::string> parts;
    for (const v1::SkippedContent& s : skipped) {
      parts.push_back(absl::StrCat(s.count(), " ", EscapeForTerminal(s.analysis_type())));
    }
    out << "Skipped (not run by pantherd): " << absl::StrJoin(parts, ", ") << '\n';
  }

  std::vector<std::string> warnings;
  for (const v1::Diagnostic& d : response.report().invalid()) {
    if (IsWarningDiagnostic(d)) warnings.push_back(FormatDiagnostic(d));
  }
  // Stored items that will do nothing as written (UploadRuleResponse.warnings).
  for (const v1::Diagnostic& d : response.warnings()) warnings.push_back(FormatDiagnostic(d));
  if (!warnings.empty()) {
    out << "Warnings:\n";
    for (const std::string& w : warnings) out << "  " << EscapeForTerminal(w) << '\n';
  }

  const auto [passed, failed] = CountTests(response.report());
  if (passed + failed == 0) {
    out << "Tests: " << (args.skip_tests ? "not run (--skip-tests)" : "none") << '\n';
    return;
  }
  out << "Tests: " << passed << " passed, " << failed << " failed";
  if (failed > 0) out << " (stored anyway: --skip-tests)";
  out << '\n';
  for (const v1::RuleTestResult& rule : response.report().rules()) {
    for (const v1::TestCaseResult& test : rule.tests()) {
      if (test.outcome() != v1::TestCaseResult::OUTCOME_PASSED) {
        out << "  FAIL " << EscapeForTerminal(rule.rule_id()) << ": "
            << EscapeForTerminal(test.name()) << '\n';
      }
    }
  }
}

// `status` with the request fields the server's message may name as hints
// ("upload with skip_tests") spelled as the pantherctl flags that set them.
absl::Status WithCliFlagNames(const absl::Status& status) {
  if (status.ok()) return status;
  return absl::Status(status.code(),
                      absl::StrReplaceAll(status.message(), {{"skip_tests", "--skip-tests"}}));
}

absl::Status Upload(const UploadArgs& args, CommandEnv& env) {
  PANTHERD_ASSIGN_OR_RETURN(std::vector<v1::AnalysisFile> files, ReadAnalysisPath(args.path));
  if (files.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("nothing to upload: no .yml, .yaml or .py files in ", args.path));
  }
  PANTHERD_ASSIGN_OR_RETURN(Connection * conn, env.Connect());
  if (!args.backtest.empty()) PANTHERD_RETURN_IF_ERROR(Backtest(args, files, *conn, env));
  v1::UploadRuleRequest request;
  for (v1::AnalysisFile& file : files) *request.add_files() = std::move(file);
  request.set_skip_tests(args.skip_tests);
  v1::UploadRuleResponse response;
  std::string details;
  absl::Status status = conn->Call("UploadRule", &DetectionStub::UploadRule, conn->detection(),
                                   request, &response, &details);
  if (!status.ok()) {
    v1::UploadRuleResponse refused;
    if (DecodeErrorDetails(details, &refused)) {
      if (env.json()) {
        PANTHERD_RETURN_IF_ERROR(PrintJson(refused, env.out()));
      } else {
        TestPrintOptions options;
        options.path = args.path;
        options.show_failures_only = true;  // The report says why; the rest passed.
        options.color = env.color();
        PrintTestReport(refused.report(), options, env.out());
      }
    }
    return WithCliFlagNames(status);
  }
  if (env.json()) return PrintJson(response, env.out());
  PrintUploadResult(args, response, env.out());
  return absl::OkStatus();
}

// --- test --------------------------------------------------------------------

struct TestArgs {
  std::string path;
  std::vector<std::string> filters;
  int minimum_tests = 0;
  bool skip_disabled_tests = false;
  bool show_failures_only = false;
};

// The outcome of a printed report as the command's status.
absl::Status TestOutcome(const TestTally& tally) {
  if (tally.ok()) return absl::OkStatus();
  return absl::FailedPreconditionError(absl::StrCat(
      "tests failed: ", tally.failed, tally.failed == 1 ? " detection" : " detections", " failed, ",
      tally.invalid, tally.invalid == 1 ? " invalid spec" : " invalid specs"));
}

// The JSON of `pantherctl test`: the RunTestsResponse's fields plus
// "summary", the counts the table prints (TestSummaryJson).
absl::Status PrintTestJson(const TestArgs& args, const v1::RunTestsResponse& response,
                           const TestTally& tally, std::ostream& out) {
  PANTHERD_ASSIGN_OR_RETURN(std::string report, MessageToJson(response.report()));
  out << JsonObject()
             .AddRaw("report", report)
             .AddRaw("summary", TestSummaryJson(tally, args.path))
             .ToString()
      << '\n';
  return absl::OkStatus();
}

absl::Status PrintTestResponse(const TestArgs& args, const v1::RunTestsResponse& response,
                               CommandEnv& env) {
  if (env.json()) {
    const TestTally tally = TallyTestReport(response.report(), args.minimum_tests);
    PANTHERD_RETURN_IF_ERROR(PrintTestJson(args, response, tally, env.out()));
    return TestOutcome(tally);
  }
  TestPrintOptions options;
  options.path = args.path;
  options.minimum_tests = args.minimum_tests;
  options.show_failures_only = args.show_failures_only;
  options.color = env.color();
  return TestOutcome(PrintTestReport(response.report(), options, env.out()));
}

absl::Status Test(const TestArgs& args, CommandEnv& env) {
  PANTHERD_ASSIGN_OR_RETURN(auto filters, ParseTestFilters(args.filters));
  PANTHERD_ASSIGN_OR_RETURN(std::vector<v1::AnalysisFile> files, ReadAnalysisPath(args.path));
  const std::string nothing = absl::StrCat("Nothing to test in ", args.path);
  if (files.empty()) return absl::NotFoundError(nothing);

  PANTHERD_ASSIGN_OR_RETURN(Connection * conn, env.Connect());
  v1::RunTestsRequest request;
  for (v1::AnalysisFile& file : files) *request.mutable_content()->add_files() = std::move(file);
  for (const auto& [key, value] : filters) (*request.mutable_filters())[key] = value;
  request.set_skip_disabled(args.skip_disabled_tests);
  v1::RunTestsResponse response;
  std::string details;
  absl::Status status = conn->Call("RunTests", &DetectionStub::RunTests, conn->detection(), request,
                                   &response, &details);
  if (!status.ok()) {
    v1::RunTestsResponse refused;
    if (DecodeErrorDetails(details, &refused)) {
      PrintTestResponse(args, refused, env).IgnoreError();
    }
    return status;
  }
  if (IsEmptyReport(response.report())) {
    if (env.json()) {
      PANTHERD_RETURN_IF_ERROR(
          PrintTestJson(args, response, TallyTestReport(response.report(), 0), env.out()));
    }
    if (filters.empty()) return absl::NotFoundError(nothing);
    std::vector<std::string> given;
    for (const auto& [key, value] : filters) given.push_back(absl::StrCat(key, "=", value));
    return absl::NotFoundError(
        absl::StrCat("No analysis in ", args.path, " matched filters ", absl::StrJoin(given, " ")));
  }
  return PrintTestResponse(args, response, env);
}

}  // namespace

absl::StatusOr<std::map<std::string, std::string>> ParseTestFilters(
    const std::vector<std::string>& filters) {
  std::map<std::string, std::string> parsed;
  for (const std::string& filter : filters) {
    PANTHERD_RETURN_IF_ERROR(ParseOneFilter(filter, parsed));
  }
  return parsed;
}

void AddAnalysisCommands(CLI::App& root, CommandRegistry& registry) {
  auto upload_args = std::make_shared<UploadArgs>();
  CLI::App* upload = registry.AddCommand(
      root, "upload",
      "Upload a folder of rules, globals and data models (or one file): validated, tested, "
      "then stored and swapped in at once; warns, per file, about rules that will do nothing "
      "(LogTypes pantherd does not ingest, OutputIds without a destination)",
      [upload_args](CommandEnv& env) { return Upload(*upload_args, env); });
  upload->add_option("PATH", upload_args->path, "Folder (any depth) or file to upload")
      ->type_name("")
      ->required();
  upload->add_flag("--skip-tests", upload_args->skip_tests,
                   "Store even if unit tests fail (invalid specs are still refused)");
  upload
      ->add_option("--backtest", upload_args->backtest,
                   "Before storing, replay the new and the live versions over the stored events "
                   "of this age (e.g. 7d) and print their alerts side by side")
      ->type_name("AGE");

  auto test_args = std::make_shared<TestArgs>();
  CLI::App* test = registry.AddCommand(
      root, "test",
      "Run the unit tests of a folder (or one file) on the server without storing anything, "
      "printed like `pat test`",
      [test_args](CommandEnv& env) { return Test(*test_args, env); });
  test->add_option("PATH", test_args->path, "Folder (any depth) or file to test")
      ->type_name("")
      ->required();
  test->add_option("--filter", test_args->filters,
                   "Only specs whose field KEY is one of the values (KEY=V1,V2) or none of them "
                   "(KEY!=V1,V2), case-insensitive; repeat to AND (globals and data models are "
                   "always included)")
      ->type_name("KEY=VALUE")
      ->allow_extra_args(false)
      ->check([](const std::string& value) {
        std::map<std::string, std::string> ignored;
        absl::Status status = ParseOneFilter(value, ignored);
        return status.ok() ? std::string() : std::string(status.message());
      });
  test->add_option("--minimum-tests", test_args->minimum_tests,
                   "Fail rules with fewer tests; above 1, also rules without both a true and a "
                   "false ExpectedResult")
      ->type_name("N")
      ->envname("PANTHER_MINIMUM_TESTS")
      ->check(CLI::NonNegativeNumber);
  test->add_flag("--skip-disabled-tests", test_args->skip_disabled_tests,
                 "Skip rules whose Enabled is false");
  test->add_flag("--show-failures-only", test_args->show_failures_only,
                 "Print only the failing tests and the summary");
}

}  // namespace pantherd::client
