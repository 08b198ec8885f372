// `pantherctl alerts ...`: list, show and triage alerts.
#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "client/commands.h"
#include "client/status_macros.h"
#include "pantherd/v1/detection_service.grpc.pb.h"

namespace pantherd::client {
namespace {

namespace v1 = ::pantherd::v1;
using DetectionStub = Connection::DetectionStub;

constexpr int kMaxPageSize = 1000;
constexpr int kDefaultLimit = 100;

const std::vector<std::string> kStatusWords = {"open", "triaged", "closed", "resolved"};
const std::vector<std::string> kSeverityWords = {"info", "low", "medium", "high", "critical"};

struct ListArgs {
  std::vector<std::string> rule_ids;
  std::vector<std::string> statuses;
  std::string min_severity;
  int limit = kDefaultLimit;
};

struct UpdateArgs {
  std::string id;
  std::string status;
  std::string assignee;
  std::string comment;
  CLI::Option* assignee_option = nullptr;  // Tells "--assignee ''" from absent.
};

// "open" -> ALERT_STATUS_OPEN; UNSPECIFIED for "" (CLI11 checked the rest).
v1::AlertStatus ParseStatus(const std::string& word) {
  v1::AlertStatus status = v1::ALERT_STATUS_UNSPECIFIED;
  if (!word.empty()) v1::AlertStatus_Parse("ALERT_STATUS_" + absl::AsciiStrToUpper(word), &status);
  return status;
}

v1::Severity ParseSeverity(const std::string& word) {
  v1::Severity severity = v1::SEVERITY_UNSPECIFIED;
  if (!word.empty()) v1::Severity_Parse("SEVERITY_" + absl::AsciiStrToUpper(word), &severity);
  return severity;
}

std::string StatusName(v1::AlertStatus status) {
  return ShortEnumName(v1::AlertStatus_Name(status), "ALERT_STATUS_");
}

std::string SeverityName(v1::Severity severity) {
  return ShortEnumName(v1::Severity_Name(severity), "SEVERITY_");
}

absl::Status ListAlerts(const ListArgs& args, CommandEnv& env) {
  PANTHERCTL_ASSIGN_OR_RETURN(Connection * conn, env.Connect());
  v1::ListAlertsRequest request;
  for (const std::string& id : args.rule_ids) request.add_rule_ids(id);
  for (const std::string& word : args.statuses) request.add_statuses(ParseStatus(word));
  request.set_min_severity(ParseSeverity(args.min_severity));

  // Follow pages until --limit alerts are in or the server has no more.
  v1::ListAlertsResponse all;
  while (all.alerts_size() < args.limit) {
    request.mutable_page()->set_page_size(std::min(args.limit - all.alerts_size(), kMaxPageSize));
    v1::ListAlertsResponse response;
    PANTHERCTL_RETURN_IF_ERROR(conn->Call("ListAlerts", &DetectionStub::ListAlerts,
                                          conn->detection(), request, &response));
    for (v1::Alert& alert : *response.mutable_alerts()) {
      if (all.alerts_size() == args.limit) break;
      *all.add_alerts() = std::move(alert);
    }
    const std::string& next = response.next_page_token();
    all.set_next_page_token(next);
    if (next.empty() || next == request.page().page_token() || response.alerts_size() == 0) break;
    request.mutable_page()->set_page_token(next);
  }
  if (env.json()) return PrintJson(all, env.out());

  Table table({"ID", "CREATED", "SEVERITY", "STATUS", "RULE", "EVENTS", "ASSIGNEE", "TITLE"});
  for (const v1::Alert& alert : all.alerts()) {
    table.AddRow({alert.id(), FormatTimestamp(alert.created_time()), SeverityName(alert.severity()),
                  StatusName(alert.status()), OrDash(alert.rule_id()),
                  absl::StrCat(alert.event_count()), OrDash(alert.assignee()),
                  OrDash(alert.title())});
  }
  table.Print(env.out());
  return absl::OkStatus();
}

void PrintAlert(const v1::Alert& alert, std::ostream& out) {
  std::vector<std::pair<std::string, std::string>> fields = {
      {"ID", alert.id()},
      {"Type", ShortEnumName(v1::AlertType_Name(alert.type()), "ALERT_TYPE_")},
      {"Title", OrDash(alert.title())},
      {"Rule", alert.rule_id().empty()
                   ? std::string("-")
                   : absl::StrCat(alert.rule_id(), " (version ", alert.rule_version(), ")")},
      {"Severity", SeverityName(alert.severity())},
      {"Status", StatusName(alert.status())},
      {"Assignee", OrDash(alert.assignee())},
      {"Events", absl::StrCat(alert.event_count())},
      {"Created", FormatTimestamp(alert.created_time())},
      {"Updated", FormatTimestamp(alert.updated_time())},
      {"First event", FormatTimestamp(alert.first_event_time())},
      {"Last event", FormatTimestamp(alert.last_event_time())},
      {"Window", absl::StrCat(FormatTimestamp(alert.window_start()), " .. ",
                              FormatTimestamp(alert.window_end()))},
      {"Dedup", OrDash(alert.dedup_string())},
      {"Log types", JoinOrDash(alert.log_types())},
      {"Destinations", JoinOrDash(alert.destinations())},
      {"Description", OrDash(alert.description())},
      {"Reference", OrDash(alert.reference())},
      {"Runbook", OrDash(alert.runbook())},
      {"Context", OrDash(alert.alert_context_json())},
  };
  if (alert.has_error()) {
    fields.emplace_back("Error", absl::StrCat(alert.error().type(), ": ", alert.error().message()));
  }
  PrintFields(fields, out);
}

absl::Status GetAlert(const std::string& id, CommandEnv& env) {
  PANTHERCTL_ASSIGN_OR_RETURN(Connection * conn, env.Connect());
  v1::GetAlertRequest request;
  request.set_id(id);
  v1::GetAlertResponse response;
  PANTHERCTL_RETURN_IF_ERROR(
      conn->Call("GetAlert", &DetectionStub::GetAlert, conn->detection(), request, &response));
  if (env.json()) return PrintJson(response, env.out());
  PrintAlert(response.alert(), env.out());
  return absl::OkStatus();
}

absl::Status UpdateAlert(const UpdateArgs& args, CommandEnv& env) {
  PANTHERCTL_ASSIGN_OR_RETURN(Connection * conn, env.Connect());
  v1::UpdateAlertRequest request;
  request.set_id(args.id);
  request.set_status(ParseStatus(args.status));
  if (args.assignee_option != nullptr && args.assignee_option->count() > 0) {
    request.set_assignee(args.assignee);
  }
  request.set_comment(args.comment);
  v1::UpdateAlertResponse response;
  PANTHERCTL_RETURN_IF_ERROR(conn->Call("UpdateAlert", &DetectionStub::UpdateAlert,
                                        conn->detection(), request, &response));
  if (env.json()) return PrintJson(response, env.out());
  PrintAlert(response.alert(), env.out());
  return absl::OkStatus();
}

}  // namespace

void AddAlertsCommands(CLI::App& root, CommandRegistry& registry) {
  CLI::App* alerts = registry.AddGroup(root, "alerts", "List, show and triage alerts");

  auto list_args = std::make_shared<ListArgs>();
  CLI::App* list =
      registry.AddCommand(*alerts, "list", "List alerts, newest first",
                          [list_args](CommandEnv& env) { return ListAlerts(*list_args, env); });
  list->add_option("--rule", list_args->rule_ids, "Only alerts of this rule (repeatable)")
      ->type_name("ID");
  list->add_option("--status", list_args->statuses, "Only alerts in this status (repeatable)")
      ->type_name("STATUS")
      ->check(CLI::IsMember(kStatusWords, CLI::ignore_case));
  list->add_option("--min-severity", list_args->min_severity, "Only alerts at least this severe")
      ->type_name("SEVERITY")
      ->check(CLI::IsMember(kSeverityWords, CLI::ignore_case));
  list->add_option("--limit", list_args->limit,
                   absl::StrCat("Show at most this many alerts (default ", kDefaultLimit, ")"))
      ->type_name("N")
      ->check(CLI::Range(1, 1000000));

  auto get_id = std::make_shared<std::string>();
  CLI::App* get = registry.AddCommand(*alerts, "get", "Show one alert",
                                      [get_id](CommandEnv& env) { return GetAlert(*get_id, env); });
  get->add_option("ID", *get_id, "Alert id")->type_name("")->required();

  auto update_args = std::make_shared<UpdateArgs>();
  CLI::App* update = registry.AddCommand(
      *alerts, "update", "Triage an alert: change its status or assignee, or add a comment",
      [update_args](CommandEnv& env) { return UpdateAlert(*update_args, env); });
  update->add_option("ID", update_args->id, "Alert id")->type_name("")->required();
  CLI::Option_group* changes = update->add_option_group("Changes", "What to change");
  changes->add_option("--status", update_args->status, "New triage status")
      ->type_name("STATUS")
      ->check(CLI::IsMember(kStatusWords, CLI::ignore_case));
  update_args->assignee_option = changes
                                     ->add_option("--assignee", update_args->assignee,
                                                  "New assignee (an empty string unassigns)")
                                     ->type_name("USER");
  changes->add_option("--comment", update_args->comment, "A comment for the alert's audit trail")
      ->type_name("TEXT");
  changes->require_option(1, 0);
}

}  // namespace pantherd::client
