// `pantherctl rules ...`: rules, globals and data models.
#include <memory>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "client/commands.h"
#include "pantherd/v1/detection_service.grpc.pb.h"
#include "proto/base/status_macros.h"

namespace pantherd::client {
namespace {

namespace v1 = ::pantherd::v1;
using DetectionStub = Connection::DetectionStub;

// Guards against a server that never stops paginating.
constexpr int kMaxPages = 10000;

struct ListArgs {
  std::string type;  // "", "rule", "global" or "datamodel".
  std::string log_type;
  bool enabled = false;
  bool disabled = false;
};

struct GetArgs {
  std::string id;
  bool history = false;
  bool content = false;
  bool include_deleted = false;
};

v1::AnalysisType ParseType(const std::string& word) {
  if (word == "rule") return v1::ANALYSIS_TYPE_RULE;
  if (word == "global") return v1::ANALYSIS_TYPE_GLOBAL;
  if (word == "datamodel") return v1::ANALYSIS_TYPE_DATA_MODEL;
  return v1::ANALYSIS_TYPE_UNSPECIFIED;
}

// The --type word of `type`.
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

std::string SeverityName(v1::Severity severity) {
  return ShortEnumName(v1::Severity_Name(severity), "SEVERITY_");
}

absl::Status ListRules(const ListArgs& args, CommandEnv& env) {
  PANTHERD_ASSIGN_OR_RETURN(Connection * conn, env.Connect());
  v1::ListRulesRequest request;
  request.mutable_page()->set_page_size(1000);
  request.set_type(ParseType(args.type));
  request.set_log_type(args.log_type);
  if (args.enabled) request.set_enabled(v1::ListRulesRequest::ENABLED_FILTER_ENABLED);
  if (args.disabled) request.set_enabled(v1::ListRulesRequest::ENABLED_FILTER_DISABLED);

  v1::ListRulesResponse all;
  for (int page = 0;; ++page) {
    if (page == kMaxPages) return absl::InternalError("ListRules: too many pages");
    v1::ListRulesResponse response;
    PANTHERD_RETURN_IF_ERROR(
        conn->Call("ListRules", &DetectionStub::ListRules, conn->detection(), request, &response));
    all.set_total_count(response.total_count());
    all.mutable_rules()->MergeFrom(response.rules());
    const std::string& next = response.next_page_token();
    if (next.empty() || next == request.page().page_token()) break;
    request.mutable_page()->set_page_token(next);
  }
  if (env.json()) return PrintJson(all, env.out());

  Table table({"ID", "TYPE", "ENABLED", "SEVERITY", "LOG TYPES", "VERSION"});
  for (const v1::Rule& rule : all.rules()) {
    const bool is_rule = rule.type() == v1::ANALYSIS_TYPE_RULE;
    table.AddRow({rule.id(), TypeWord(rule.type()), is_rule ? (rule.enabled() ? "yes" : "no") : "-",
                  SeverityName(rule.severity()), JoinOrDash(rule.log_types()),
                  absl::StrCat(rule.version())});
  }
  env.PrintTable(table);
  return absl::OkStatus();
}

void PrintRule(const v1::GetRuleResponse& response, std::ostream& out) {
  const v1::Rule& rule = response.rule();
  std::vector<std::pair<std::string, std::string>> fields = {
      {"ID", rule.id()},
      {"Type", TypeWord(rule.type())},
      {"Display name", OrDash(rule.display_name())},
  };
  if (rule.deleted()) {
    fields.emplace_back(
        "Deleted", absl::StrCat("yes, at version ", rule.version(), " by ", OrDash(rule.author()),
                                " on ", FormatTimestamp(rule.updated_time())));
  }
  if (rule.type() == v1::ANALYSIS_TYPE_RULE) {
    fields.insert(fields.end(), {{"Enabled", rule.enabled()          ? "yes"
                                             : rule.has_quarantine() ? "no (quarantined)"
                                                                     : "no"}});
    if (rule.has_quarantine()) {
      fields.emplace_back(
          "Quarantined",
          absl::StrCat(FormatTimestamp(rule.quarantine().time()), ": ", rule.quarantine().reason(),
                       "; re-enable with: pantherctl rules enable ", rule.id()));
    }
    fields.insert(fields.end(), {{"Severity", SeverityName(rule.severity())},
                                 {"Log types", JoinOrDash(rule.log_types())},
                                 {"Tags", JoinOrDash(rule.tags())},
                                 {"Dedup period", absl::StrCat(rule.dedup_period_minutes(), "m")},
                                 {"Threshold", absl::StrCat(rule.threshold())},
                                 {"Create alert", rule.create_alert() ? "yes" : "no"},
                                 {"Outputs", JoinOrDash(rule.output_ids())},
                                 {"Tests", absl::StrCat(rule.test_count())},
                                 {"Description", OrDash(rule.description())},
                                 {"Reference", OrDash(rule.reference())},
                                 {"Runbook", OrDash(rule.runbook())}});
  } else if (rule.type() == v1::ANALYSIS_TYPE_DATA_MODEL) {
    fields.emplace_back("Log types", JoinOrDash(rule.log_types()));
  }
  fields.insert(fields.end(), {{"Version", absl::StrCat(rule.version())},
                               {"Author", OrDash(rule.author())},
                               {"Created", FormatTimestamp(rule.created_time())},
                               {"Updated", FormatTimestamp(rule.updated_time())},
                               {"SHA-256", OrDash(rule.content_sha256())}});
  PrintFields(fields, out);

  if (response.history_size() > 0) {
    out << "\nHistory:\n";
    Table history({"VERSION", "AUTHOR", "CREATED", "DELETED", "SHA-256"});
    for (const v1::RuleVersion& version : response.history()) {
      history.AddRow({absl::StrCat(version.version()), OrDash(version.author()),
                      FormatTimestamp(version.created_time()), version.deleted() ? "yes" : "no",
                      OrDash(version.content_sha256())});
    }
    history.Print(out);
  }
  for (const v1::AnalysisFile& file : rule.files()) {
    out << "\n--- " << EscapeForTerminal(file.path()) << " ---\n"
        << EscapeLinesForTerminal(file.content());
    if (!file.content().empty() && file.content().back() != '\n') out << '\n';
  }
}

absl::Status GetRule(const GetArgs& args, CommandEnv& env) {
  PANTHERD_ASSIGN_OR_RETURN(Connection * conn, env.Connect());
  v1::GetRuleRequest request;
  request.set_id(args.id);
  request.set_include_history(args.history);
  request.set_include_content(args.content);
  request.set_include_deleted(args.include_deleted);
  v1::GetRuleResponse response;
  absl::Status status =
      conn->Call("GetRule", &DetectionStub::GetRule, conn->detection(), request, &response);
  if (absl::IsNotFound(status) && !args.include_deleted) {
    return absl::NotFoundError(
        absl::StrCat(status.message(), " (if it was deleted, add --include-deleted)"));
  }
  PANTHERD_RETURN_IF_ERROR(status);
  if (env.json()) return PrintJson(response, env.out());
  PrintRule(response, env.out());
  return absl::OkStatus();
}

absl::Status DeleteRule(const std::string& id, CommandEnv& env) {
  PANTHERD_ASSIGN_OR_RETURN(Connection * conn, env.Connect());
  v1::DeleteRuleRequest request;
  request.set_id(id);
  v1::DeleteRuleResponse response;
  PANTHERD_RETURN_IF_ERROR(
      conn->Call("DeleteRule", &DetectionStub::DeleteRule, conn->detection(), request, &response));
  if (env.json()) return PrintJson(response, env.out());
  env.out() << "Deleted " << EscapeForTerminal(id) << " (version " << response.version() << ")\n";
  return absl::OkStatus();
}

absl::Status SetEnabled(const std::string& id, bool enabled, CommandEnv& env) {
  PANTHERD_ASSIGN_OR_RETURN(Connection * conn, env.Connect());
  v1::SetRuleEnabledRequest request;
  request.set_id(id);
  request.set_enabled(enabled);
  v1::SetRuleEnabledResponse response;
  PANTHERD_RETURN_IF_ERROR(conn->Call("SetRuleEnabled", &DetectionStub::SetRuleEnabled,
                                      conn->detection(), request, &response));
  if (env.json()) return PrintJson(response, env.out());
  env.out() << (enabled ? "Enabled " : "Disabled ") << EscapeForTerminal(id) << " (version "
            << response.rule().version() << ")\n";
  return absl::OkStatus();
}

// Adds `rules <name> ID` running `action(id, env)`.
void AddIdCommand(CommandRegistry& registry, CLI::App& rules, const std::string& name,
                  const std::string& description,
                  std::function<absl::Status(const std::string&, CommandEnv&)> action) {
  auto id = std::make_shared<std::string>();
  CLI::App* command = registry.AddCommand(
      rules, name, description, [id, action](CommandEnv& env) { return action(*id, env); });
  command->add_option("ID", *id, "Rule, global or data model id")->type_name("")->required();
}

}  // namespace

void AddRulesCommands(CLI::App& root, CommandRegistry& registry) {
  CLI::App* rules = registry.AddGroup(root, "rules", "Manage rules, globals and data models");

  auto list_args = std::make_shared<ListArgs>();
  CLI::App* list =
      registry.AddListCommand(*rules, "list", "List stored rules, globals and data models",
                              [list_args](CommandEnv& env) { return ListRules(*list_args, env); });
  list->add_option("--type", list_args->type, "Only items of this kind")
      ->type_name("KIND")
      ->check(CLI::IsMember({"rule", "global", "datamodel"}));
  list->add_option("--log-type", list_args->log_type, "Only items for this log type")
      ->type_name("LOG_TYPE");
  CLI::Option* enabled = list->add_flag("--enabled", list_args->enabled, "Only enabled rules");
  CLI::Option* disabled = list->add_flag("--disabled", list_args->disabled, "Only disabled rules");
  enabled->excludes(disabled);

  auto get_args = std::make_shared<GetArgs>();
  CLI::App* get = registry.AddCommand(
      *rules, "get", "Show one rule, global or data model at its current version",
      [get_args](CommandEnv& env) { return GetRule(*get_args, env); });
  get->add_option("ID", get_args->id, "Rule, global or data model id")->type_name("")->required();
  get->add_flag("--history", get_args->history, "Also show the version history");
  get->add_flag("--content", get_args->content, "Also show the source files");
  get->add_flag("--include-deleted", get_args->include_deleted,
                "Also show a deleted item: its deletion record, and with --history its history");

  AddIdCommand(registry, *rules, "delete",
               "Remove an item from live evaluation (its history is kept: see it with "
               "rules get ID --history --include-deleted)",
               DeleteRule);
  AddIdCommand(registry, *rules, "enable", "Enable a rule",
               [](const std::string& id, CommandEnv& env) { return SetEnabled(id, true, env); });
  AddIdCommand(registry, *rules, "disable", "Disable a rule",
               [](const std::string& id, CommandEnv& env) { return SetEnabled(id, false, env); });
}

}  // namespace pantherd::client
