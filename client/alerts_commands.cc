// `pantherctl alerts ...`: list, show and triage alerts.
#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "client/analysis_folder.h"
#include "client/commands.h"
#include "client/stream_support.h"
#include "client/test_report.h"
#include "google/protobuf/util/time_util.h"
#include "pantherd/v1/admin_service.grpc.pb.h"
#include "pantherd/v1/detection_service.grpc.pb.h"
#include "proto/base/status_macros.h"

namespace pantherd::client {
namespace {

namespace v1 = ::pantherd::v1;
using DetectionStub = Connection::DetectionStub;
using AdminStub = Connection::AdminStub;
using google::protobuf::util::TimeUtil;

constexpr int kMaxPageSize = 1000;
constexpr int kDefaultLimit = 100;

const std::vector<std::string> kStatusWords = {"open", "triaged", "closed", "resolved"};

struct ListArgs {
  std::vector<std::string> rule_ids;
  std::vector<std::string> statuses;
  std::string min_severity;
  int limit = kDefaultLimit;
  bool all = false;
  std::string page_token;
  std::string since;
  std::string until;
  std::string time_field = "created";
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

std::string StatusName(v1::AlertStatus status) {
  return ShortEnumName(v1::AlertStatus_Name(status), "ALERT_STATUS_");
}

std::string SeverityName(v1::Severity severity) {
  return ShortEnumName(v1::Severity_Name(severity), "SEVERITY_");
}

absl::Status ListAlerts(const ListArgs& args, CommandEnv& env) {
  v1::ListAlertsRequest request;
  for (const std::string& id : args.rule_ids) request.add_rule_ids(id);
  for (const std::string& word : args.statuses) request.add_statuses(ParseStatus(word));
  request.set_min_severity(ParseSeverityWord(args.min_severity));
  const absl::Time now = absl::Now();
  const bool by_update = args.time_field == "updated";
  if (!args.since.empty()) {
    PANTHERD_ASSIGN_OR_RETURN(absl::Time since, ParseTimeOrAge("--since", args.since, now));
    *(by_update ? request.mutable_updated_after() : request.mutable_created_after()) =
        TimeUtil::MicrosecondsToTimestamp(absl::ToUnixMicros(since));
  }
  if (!args.until.empty()) {
    PANTHERD_ASSIGN_OR_RETURN(absl::Time until, ParseTimeOrAge("--until", args.until, now));
    *(by_update ? request.mutable_updated_before() : request.mutable_created_before()) =
        TimeUtil::MicrosecondsToTimestamp(absl::ToUnixMicros(until));
  }
  request.mutable_page()->set_page_token(args.page_token);
  PANTHERD_ASSIGN_OR_RETURN(Connection * conn, env.Connect());

  // Follow pages until --limit alerts are in (all of them with --all) or the
  // server has no more. The page that may be the last one asks the server to
  // count what remains after it, for the "N more" hint.
  const int64_t limit = args.all ? std::numeric_limits<int64_t>::max() : args.limit;
  v1::ListAlertsResponse all;
  while (all.alerts_size() < limit) {
    const int64_t wanted = limit - all.alerts_size();
    request.mutable_page()->set_page_size(
        static_cast<int>(std::min<int64_t>(wanted, kMaxPageSize)));
    request.set_count_remaining(!args.all && wanted <= kMaxPageSize);
    v1::ListAlertsResponse response;
    PANTHERD_RETURN_IF_ERROR(conn->Call("ListAlerts", &DetectionStub::ListAlerts, conn->detection(),
                                        request, &response));
    for (v1::Alert& alert : *response.mutable_alerts()) {
      if (all.alerts_size() == limit) break;
      *all.add_alerts() = std::move(alert);
    }
    const std::string& next = response.next_page_token();
    all.set_next_page_token(next);
    all.set_remaining_count(response.remaining_count());
    all.set_remaining_count_is_lower_bound(response.remaining_count_is_lower_bound());
    if (next.empty() || next == request.page().page_token() || response.alerts_size() == 0) break;
    request.mutable_page()->set_page_token(next);
  }
  if (all.next_page_token().empty()) all.set_remaining_count(0);
  if (env.json()) return PrintJson(all, env.out());

  Table table({"ID", "CREATED", "SEVERITY", "STATUS", "RULE", "EVENTS", "ASSIGNEE", "TITLE"});
  for (const v1::Alert& alert : all.alerts()) {
    table.AddRow({alert.id(), FormatTimestamp(alert.created_time()), SeverityName(alert.severity()),
                  StatusName(alert.status()), OrDash(alert.rule_id()),
                  absl::StrCat(alert.event_count()), OrDash(alert.assignee()),
                  OrDash(alert.title())});
  }
  env.PrintTable(table);
  if (!all.next_page_token().empty()) {
    // Cut by --limit: say how much is left and how to get it.
    const std::string more =
        all.remaining_count() > 0
            ? absl::StrCat(all.remaining_count_is_lower_bound() ? "At least " : "",
                           all.remaining_count(), " more")
            : std::string("More alerts exist");
    env.err() << more << " (use --limit or --all; next page: --page-token "
              << EscapeForTerminal(all.next_page_token()) << ")\n";
  }
  return absl::OkStatus();
}

// The alert's triage history, oldest first, one line per entry:
//   2024-05-01T12:00:00Z  alice  OPEN -> TRIAGED  assignee=bob  "comment"
void PrintHistory(const v1::Alert& alert, std::ostream& out) {
  if (alert.history_size() == 0 && alert.history_entries_dropped() == 0) {
    out << "\nHistory: none\n";
    return;
  }
  out << "\nHistory (oldest first):\n";
  if (alert.history_entries_dropped() > 0) {
    out << "  (" << alert.history_entries_dropped()
        << " older entries dropped to keep the history within its byte cap)\n";
  }
  for (const v1::AlertHistoryEntry& entry : alert.history()) {
    std::string line = absl::StrCat(FormatTimestamp(entry.time()), "  ", OrDash(entry.actor()));
    if (entry.old_status() != entry.new_status()) {
      absl::StrAppend(&line, "  ", StatusName(entry.old_status()), " -> ",
                      StatusName(entry.new_status()));
    }
    if (entry.has_assignee()) {
      absl::StrAppend(&line, "  ",
                      entry.assignee().empty() ? std::string("unassigned")
                                               : absl::StrCat("assignee=", entry.assignee()));
    }
    out << "  " << EscapeForTerminal(line) << '\n';
    if (!entry.comment().empty()) {
      // Comments may span lines; each is indented under its entry.
      for (absl::string_view comment_line : absl::StrSplit(entry.comment(), '\n')) {
        out << "      " << EscapeForTerminal(comment_line) << '\n';
      }
    }
  }
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
  };
  // A RULE_ERROR alert has no alert_context(); its error says what happened.
  if (!alert.alert_context_json().empty() || !alert.has_error()) {
    fields.emplace_back("Context", OrDash(alert.alert_context_json()));
  }
  if (alert.has_error()) {
    fields.emplace_back(
        "Error", absl::StrCat(OrDash(alert.error().type()), ": ", OrDash(alert.error().message())));
  }
  std::string samples = absl::StrCat(alert.matched_events_size(), " stored");
  if (alert.samples_not_stored() > 0) {
    absl::StrAppend(&samples, ", ", alert.samples_not_stored(), " not stored (byte cap)");
  }
  fields.emplace_back("Matched events", samples);
  PrintFields(fields, out);

  if (alert.has_error() && !alert.error().traceback().empty()) {
    out << "\nTraceback:\n";
    for (absl::string_view line : absl::StrSplit(alert.error().traceback(), '\n')) {
      if (!line.empty()) out << "  " << EscapeForTerminal(line) << '\n';
    }
  }

  // The stored samples (byte-capped by the server): a header line each, then
  // the event's JSON. `alerts events ID --output json` pages through them.
  if (alert.matched_events_size() > 0) out << "\nMatched events:\n";
  for (int i = 0; i < alert.matched_events_size(); ++i) {
    const v1::MatchedEvent& m = alert.matched_events(i);
    out << "  " << (i + 1) << ". " << EscapeForTerminal(OrDash(m.event_id())) << "  "
        << EscapeForTerminal(OrDash(m.log_type())) << "  " << FormatTimestamp(m.event_time())
        << "  " << m.original_bytes() << " bytes" << (m.truncated() ? " (truncated)" : "") << "\n";
    if (!m.json().empty()) {
      out << "     " << EscapeForTerminal(m.json()) << (m.truncated() ? " ..." : "") << '\n';
    }
  }
  if (alert.matched_events_size() == 0 && !alert.sample_event_json().empty()) {
    out << "\nSample event:\n     " << EscapeForTerminal(alert.sample_event_json())
        << (alert.sample_event_truncated() ? " ..." : "") << '\n';
  }
  PrintHistory(alert, out);
}

absl::Status GetAlert(const std::string& id, CommandEnv& env) {
  PANTHERD_ASSIGN_OR_RETURN(Connection * conn, env.Connect());
  v1::GetAlertRequest request;
  request.set_id(id);
  v1::GetAlertResponse response;
  PANTHERD_RETURN_IF_ERROR(
      conn->Call("GetAlert", &DetectionStub::GetAlert, conn->detection(), request, &response));
  if (env.json()) return PrintJson(response, env.out());
  PrintAlert(response.alert(), env.out());
  PrintDeliveries(response.deliveries(), env.out());
  return absl::OkStatus();
}

struct EventsArgs {
  std::string id;
  // 0: every event (the stream); with --samples, 10.
  int limit = 0;
  bool samples = false;
};

void PrintEventsTable(const google::protobuf::RepeatedPtrField<v1::MatchedEvent>& events,
                      CommandEnv& env) {
  Table table({"EVENT ID", "LOG TYPE", "EVENT TIME", "BYTES", "TRUNCATED"});
  for (const v1::MatchedEvent& m : events) {
    table.AddRow({OrDash(m.event_id()), OrDash(m.log_type()), FormatTimestamp(m.event_time()),
                  absl::StrCat(m.original_bytes()), m.truncated() ? "yes" : "no"});
  }
  env.PrintTable(table);
}

// `alerts events ID --samples`: the alert's stored samples, following pages.
absl::Status ListAlertSamples(const EventsArgs& args, Connection* conn, CommandEnv& env) {
  const int limit = args.limit > 0 ? args.limit : 10;
  v1::ListAlertEventsRequest request;
  request.set_alert_id(args.id);
  v1::ListAlertEventsResponse all;
  while (all.events_size() < limit) {
    request.mutable_page()->set_page_size(std::min(limit - all.events_size(), kMaxPageSize));
    v1::ListAlertEventsResponse response;
    PANTHERD_RETURN_IF_ERROR(conn->Call("ListAlertEvents", &DetectionStub::ListAlertEvents,
                                        conn->detection(), request, &response));
    all.set_event_count(response.event_count());
    all.set_stored(response.stored());
    for (v1::MatchedEvent& m : *response.mutable_events()) {
      if (all.events_size() == limit) break;
      *all.add_events() = std::move(m);
    }
    const std::string& next = response.next_page_token();
    all.set_next_page_token(next);
    if (next.empty() || next == request.page().page_token() || response.events_size() == 0) break;
    request.mutable_page()->set_page_token(next);
  }
  if (env.json()) return PrintJson(all, env.out());
  PrintEventsTable(all.events(), env);
  return absl::OkStatus();
}

// `alerts events ID`: every stored event counted into the alert's window
// (StreamAlertEvents), or its stored samples with --samples.
absl::Status ListAlertEvents(const EventsArgs& args, CommandEnv& env) {
  PANTHERD_ASSIGN_OR_RETURN(Connection * conn, env.Connect());
  if (args.samples) return ListAlertSamples(args, conn, env);
  v1::StreamAlertEventsRequest request;
  request.set_alert_id(args.id);
  grpc::ClientContext context;
  conn->PrepareStreamContext(&context);
  std::unique_ptr<grpc::ClientReader<v1::StreamAlertEventsResponse>> reader =
      conn->detection().StreamAlertEvents(&context, request);
  v1::StreamAlertEventsResponse all;
  v1::StreamAlertEventsResponse response;
  bool cut = false;
  while (reader->Read(&response)) {
    for (v1::MatchedEvent& m : *response.mutable_events()) {
      if (args.limit > 0 && all.events_size() >= args.limit) {
        cut = true;
        break;
      }
      *all.add_events() = std::move(m);
    }
    all.set_events_not_retained(all.events_not_retained() + response.events_not_retained());
    if (cut) {
      context.TryCancel();
      break;
    }
  }
  const grpc::Status status = reader->Finish();
  if (!cut && status.error_code() == grpc::StatusCode::UNIMPLEMENTED) {
    env.err() << "pantherctl: this server does not keep events; showing the alert's stored "
                 "samples\n";
    return ListAlertSamples(args, conn, env);
  }
  if (!cut && !status.ok()) return conn->ToStatus("StreamAlertEvents", status);
  if (env.json()) return PrintJson(all, env.out());
  PrintEventsTable(all.events(), env);
  if (all.events_not_retained() > 0) {
    env.err() << all.events_not_retained()
              << " more counted events are no longer stored (past the event retention)\n";
  }
  if (cut) env.err() << "cut at --limit " << args.limit << '\n';
  return absl::OkStatus();
}

struct WindowsArgs {
  std::string rule;
  bool all = false;
};

// `windows list`: open dedup windows and their counts against the threshold.
absl::Status ListWindows(const WindowsArgs& args, CommandEnv& env) {
  PANTHERD_ASSIGN_OR_RETURN(Connection * conn, env.Connect());
  v1::ListWindowsRequest request;
  request.set_rule_id(args.rule);
  request.set_include_alerted(args.all);
  v1::ListWindowsResponse response;
  PANTHERD_RETURN_IF_ERROR(conn->Call("ListWindows", &DetectionStub::ListWindows, conn->detection(),
                                      request, &response));
  if (env.json()) return PrintJson(response, env.out());
  Table table({"RULE", "TYPE", "DEDUP", "COUNT", "THRESHOLD", "WINDOW START", "WINDOW END",
               "LAST EVENT", "ALERT"});
  for (const v1::WindowView& w : response.windows()) {
    std::string type = v1::AlertType_Name(w.type());
    if (absl::StartsWith(type, "ALERT_TYPE_")) type = type.substr(11);
    table.AddRow({w.rule_id(), absl::AsciiStrToLower(type), w.dedup_string(),
                  absl::StrCat(w.count()), absl::StrCat(w.threshold()), FormatTimestamp(w.start()),
                  FormatTimestamp(w.end()), FormatTimestamp(w.last_event_time()),
                  OrDash(w.alert_id())});
  }
  env.PrintTable(table);
  if (response.truncated()) env.err() << "only the first 10000 windows are shown\n";
  return absl::OkStatus();
}

// The raw event of `explain --event FILE` (at most 4 MiB).
absl::StatusOr<std::string> ReadEventFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::InvalidArgumentError(absl::StrCat("--event: cannot read ", path));
  std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (data.size() > (size_t{4} << 20)) {
    return absl::InvalidArgumentError(absl::StrCat("--event: ", path, " is larger than 4 MiB"));
  }
  return data;
}

struct ExplainArgs {
  std::string rule;
  std::string event_id;
  std::string event_file;
  std::string log_type;
};

// `explain RULE_ID (EVENT_ID | --event FILE)`: what the stored rule computes
// for one event, and the state of its dedup window.
absl::Status Explain(const ExplainArgs& args, CommandEnv& env) {
  if (args.event_id.empty() == args.event_file.empty()) {
    return absl::InvalidArgumentError("give either EVENT_ID (a stored event) or --event FILE");
  }
  v1::ExplainEventRequest request;
  request.set_rule_id(args.rule);
  request.set_log_type(args.log_type);
  if (!args.event_file.empty()) {
    PANTHERD_ASSIGN_OR_RETURN(std::string raw, ReadEventFile(args.event_file));
    request.set_event_json(std::move(raw));
  } else {
    request.set_event_id(args.event_id);
  }
  PANTHERD_ASSIGN_OR_RETURN(Connection * conn, env.Connect());
  v1::ExplainEventResponse response;
  PANTHERD_RETURN_IF_ERROR(conn->Call("ExplainEvent", &DetectionStub::ExplainEvent,
                                      conn->detection(), request, &response));
  if (env.json()) return PrintJson(response, env.out());
  std::ostream& out = env.out();
  std::vector<std::pair<std::string, std::string>> fields;
  fields.emplace_back("Rule",
                      absl::StrCat(response.rule_id(), " (version ", response.rule_version(), ")"));
  fields.emplace_back("Log type", response.log_type());
  fields.emplace_back("Live ingestion", response.skipped_reason().empty()
                                            ? "runs the rule on this event"
                                            : "skips it: " + response.skipped_reason());
  fields.emplace_back(
      "Verdict", response.matched() ? "MATCH (rule() returned True)" : "no alert from this event");
  PrintFields(fields, out);
  out << "\nFunctions:\n";
  for (const v1::FunctionResult& f : response.result().functions()) {
    if (f.has_error()) {
      out << "  " << FunctionLabel(f.function()) << ": raised "
          << EscapeForTerminal(f.error().type()) << ": " << EscapeForTerminal(f.error().message())
          << '\n';
      if (!f.error().traceback().empty()) {
        out << EscapeLinesForTerminal(f.error().traceback()) << '\n';
      }
      continue;
    }
    std::optional<std::string> shown = FormatFunctionOutput(f.output_json());
    if (!shown.has_value()) continue;
    out << "  " << FunctionLabel(f.function()) << (f.defined() ? "" : " (default)") << ": "
        << EscapeForTerminal(*shown) << '\n';
  }
  if (!response.result().output().empty()) {
    out << "\nPrinted:\n" << EscapeLinesForTerminal(response.result().output()) << '\n';
  }
  out << "\nDedup window (" << EscapeForTerminal(response.dedup_string()) << ", threshold "
      << response.threshold() << ", " << response.dedup_period_minutes() << " min):\n";
  if (response.windows_size() == 0) {
    out << "  none open: a match would open a new window\n";
  }
  for (const v1::WindowView& w : response.windows()) {
    out << "  " << FormatTimestamp(w.start()) << " to " << FormatTimestamp(w.end()) << ": "
        << w.count() << " of " << w.threshold()
        << (w.alert_id().empty() ? std::string(" (below the threshold)")
                                 : absl::StrCat(" (alert ", w.alert_id(), ")"))
        << '\n';
  }
  return absl::OkStatus();
}

struct ReplayArgs {
  std::string target;
  std::string since = "24h";
  std::string until;
  std::string log_type;
};

// `replay PATH_OR_RULE_ID --since 7d`: what the rules would have alerted on
// over stored events (ReplayRules).
absl::Status Replay(const ReplayArgs& args, CommandEnv& env) {
  v1::ReplayRulesRequest request;
  std::error_code ec;
  if (std::filesystem::exists(args.target, ec)) {
    PANTHERD_ASSIGN_OR_RETURN(std::vector<v1::AnalysisFile> files, ReadAnalysisPath(args.target));
    for (v1::AnalysisFile& f : files) *request.mutable_content()->add_files() = std::move(f);
  } else {
    request.mutable_stored()->add_rule_ids(args.target);
  }
  const absl::Time now = absl::Now();
  PANTHERD_ASSIGN_OR_RETURN(absl::Time since, ParseTimeOrAge("--since", args.since, now));
  *request.mutable_since() = TimeUtil::MicrosecondsToTimestamp(absl::ToUnixMicros(since));
  if (!args.until.empty()) {
    PANTHERD_ASSIGN_OR_RETURN(absl::Time until, ParseTimeOrAge("--until", args.until, now));
    *request.mutable_until() = TimeUtil::MicrosecondsToTimestamp(absl::ToUnixMicros(until));
  }
  request.set_log_type(args.log_type);
  PANTHERD_ASSIGN_OR_RETURN(Connection * conn, env.Connect());
  PANTHERD_ASSIGN_OR_RETURN(v1::ReplayRulesResponse response, CallReplayRules(*conn, request, env));
  if (env.json()) return PrintJson(response, env.out());
  Table alerts({"RULE", "SEVERITY", "TITLE", "DEDUP", "EVENTS", "FIRST EVENT", "LAST EVENT"});
  for (const v1::Alert& a : response.alerts()) {
    std::string severity = v1::Severity_Name(a.severity());
    if (absl::StartsWith(severity, "SEVERITY_")) severity = severity.substr(9);
    std::string rule = a.rule_id();
    if (a.type() == v1::ALERT_TYPE_RULE_ERROR) rule += " (error)";
    if (a.type() == v1::ALERT_TYPE_SIGNAL) rule += " (signal)";
    alerts.AddRow({rule, severity, a.title(), a.dedup_string(), absl::StrCat(a.event_count()),
                   FormatTimestamp(a.first_event_time()), FormatTimestamp(a.last_event_time())});
  }
  env.PrintTable(alerts);
  env.out() << '\n';
  // A SIGNALS column only when a rule produced signals (CreateAlert: false).
  const bool signals = response.signals_total() > 0;
  Table rules(signals ? std::vector<std::string>{"RULE", "MATCHES", "ERRORS", "ALERTS", "SIGNALS"}
                      : std::vector<std::string>{"RULE", "MATCHES", "ERRORS", "ALERTS"});
  for (const v1::ReplayRuleStats& r : response.rules()) {
    std::vector<std::string> row = {r.rule_id(), absl::StrCat(r.matches()),
                                    absl::StrCat(r.errors()), absl::StrCat(r.alerts())};
    if (signals) row.push_back(absl::StrCat(r.signals()));
    rules.AddRow(std::move(row));
  }
  env.PrintTable(rules);
  for (const v1::Diagnostic& d : response.invalid()) {
    env.err() << "pantherctl: not replayed: " << EscapeForTerminal(FormatDiagnostic(d)) << '\n';
  }
  if (response.alerts_total() > response.alerts_size()) {
    env.err() << "pantherctl: the newest " << response.alerts_size() << " of "
              << response.alerts_total()
              << (response.signals_total() > 0 ? " alerts and signals" : " alerts")
              << " are listed\n";
  }
  if (response.worker_restarts() > 0) {
    env.err() << "pantherctl: rules ended the replay's worker " << response.worker_restarts()
              << " times; each restart emptied the replay's caching state\n";
  }
  env.err() << response.events() << " events from " << FormatTimestamp(response.since()) << " to "
            << FormatTimestamp(response.until()) << ", "
            << static_cast<int64_t>(response.events_per_second()) << " events/s; "
            << Plural(response.alerts_total() - response.signals_total(), "alert", "alerts")
            << (response.signals_total() > 0
                    ? absl::StrCat(" and ", Plural(response.signals_total(), "signal", "signals"))
                    : "")
            << " (nothing was stored or notified)\n";
  return absl::OkStatus();
}

// Warns on `err` when `name` is not an enabled user of the server. Only an
// admin may list users: for other callers (and on any error) it says nothing,
// rather than leave a denied ListUsers call in the audit log.
void WarnIfUnknownUser(Connection& conn, const std::string& name, std::ostream& err) {
  v1::WhoAmIResponse me;
  if (!conn.Call("WhoAmI", &AdminStub::WhoAmI, conn.admin(), v1::WhoAmIRequest(), &me).ok()) return;
  if (me.user().name() == name || me.user().role() != v1::ROLE_ADMIN) return;
  v1::ListUsersRequest request;
  request.set_include_disabled(true);
  v1::ListUsersResponse users;
  if (!conn.Call("ListUsers", &AdminStub::ListUsers, conn.admin(), request, &users).ok()) return;
  for (const v1::User& user : users.users()) {
    if (user.name() != name) continue;
    if (user.disabled()) {
      err << "pantherctl: warning: user " << EscapeForTerminal(name)
          << " is disabled; the alert was assigned anyway\n";
    }
    return;
  }
  err << "pantherctl: warning: no user named " << EscapeForTerminal(name)
      << " (see `pantherctl users list`); the alert was assigned anyway\n";
}

absl::Status UpdateAlert(const UpdateArgs& args, CommandEnv& env) {
  PANTHERD_ASSIGN_OR_RETURN(Connection * conn, env.Connect());
  v1::UpdateAlertRequest request;
  request.set_id(args.id);
  request.set_status(ParseStatus(args.status));
  if (args.assignee_option != nullptr && args.assignee_option->count() > 0) {
    request.set_assignee(args.assignee);
  }
  request.set_comment(args.comment);
  v1::UpdateAlertResponse response;
  PANTHERD_RETURN_IF_ERROR(conn->Call("UpdateAlert", &DetectionStub::UpdateAlert, conn->detection(),
                                      request, &response));
  if (request.has_assignee() && !request.assignee().empty()) {
    WarnIfUnknownUser(*conn, request.assignee(), env.err());
  }
  if (env.json()) return PrintJson(response, env.out());
  PrintAlert(response.alert(), env.out());
  return absl::OkStatus();
}

struct TailArgs {
  uint64_t since = 0;
  CLI::Option* since_option = nullptr;
  std::string min_severity;
  std::vector<std::string> rule_ids;
  std::string type;
  int64_t count = 0;  // 0: no limit.
};

constexpr absl::Duration kTailInitialBackoff = absl::Milliseconds(200);
constexpr absl::Duration kTailMaxBackoff = absl::Seconds(10);

// Codes after which reconnecting cannot help.
bool IsPermanent(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::INVALID_ARGUMENT:
    case grpc::StatusCode::NOT_FOUND:
    case grpc::StatusCode::PERMISSION_DENIED:
    case grpc::StatusCode::UNAUTHENTICATED:
    case grpc::StatusCode::FAILED_PRECONDITION:
    case grpc::StatusCode::OUT_OF_RANGE:
    case grpc::StatusCode::UNIMPLEMENTED:
      return true;
    default:
      return false;
  }
}

absl::Status PrintChange(const v1::AlertChange& change, CommandEnv& env) {
  std::ostream& out = env.out();
  if (env.json()) {
    PANTHERD_ASSIGN_OR_RETURN(std::string json, MessageToJson(change, JsonStyle::kCompact));
    out << json << '\n' << std::flush;
    return absl::OkStatus();
  }
  // The alert id first, so that a line can be copied into `alerts get ID`
  // or `alerts update ID`; the stream position last, for --since.
  const v1::Alert& alert = change.alert();
  out << EscapeForTerminal(OrDash(alert.id())) << "  " << FormatTimestamp(change.time()) << "  "
      << ShortEnumName(v1::AlertChange::Kind_Name(change.kind()), "KIND_") << "  "
      << SeverityName(alert.severity()) << "  " << EscapeForTerminal(OrDash(alert.rule_id()))
      << "  " << EscapeForTerminal(OneLine(OrDash(alert.title())))
      << "  events=" << alert.event_count() << "  seq=" << change.sequence() << '\n'
      << std::flush;
  return absl::OkStatus();
}

absl::Status TailAlerts(const TailArgs& args, CommandEnv& env) {
  PANTHERD_ASSIGN_OR_RETURN(Connection * conn, env.Connect());
  v1::StreamAlertsRequest base;
  for (const std::string& id : args.rule_ids) base.add_rule_ids(id);
  base.set_min_severity(ParseSeverityWord(args.min_severity));
  if (!args.type.empty()) base.add_types(ParseAlertTypeWord(args.type));
  // The last sequence seen; the stream resumes after it.
  std::optional<uint64_t> resume;
  if (args.since_option != nullptr && args.since_option->count() > 0) resume = args.since;

  InterruptScope interrupts;
  int64_t printed = 0;
  absl::Duration backoff = kTailInitialBackoff;
  // Progress goes to the error stream so that standard output holds only
  // the changes (one per line, table or JSON).
  env.err() << "pantherctl: connected to " << EscapeForTerminal(conn->options().server)
            << ", waiting for alerts (Ctrl-C to stop)\n"
            << std::flush;
  bool reconnecting = false;  // The stream broke; say so once the next one delivers.
  while (!InterruptScope::Interrupted()) {
    v1::StreamAlertsRequest request = base;
    if (resume.has_value()) request.set_start_after_sequence(*resume);
    grpc::ClientContext context;
    conn->PrepareStreamContext(&context);
    StreamWatchdog watchdog(&context);
    std::unique_ptr<grpc::ClientReader<v1::StreamAlertsResponse>> reader =
        conn->detection().StreamAlerts(&context, request);
    bool delivered = false;
    bool done = false;
    absl::Status print_error;
    v1::StreamAlertsResponse response;
    while (!done && reader->Read(&response)) {
      delivered = true;
      if (reconnecting) {
        reconnecting = false;
        env.err() << "pantherctl: reconnected to " << EscapeForTerminal(conn->options().server)
                  << ", waiting for alerts\n"
                  << std::flush;
      }
      switch (response.message_case()) {
        case v1::StreamAlertsResponse::kChange: {
          const v1::AlertChange& change = response.change();
          if (resume.has_value() && change.sequence() <= *resume) break;  // Seen already.
          print_error = PrintChange(change, env);
          resume = change.sequence();
          ++printed;
          if (!print_error.ok() || (args.count > 0 && printed >= args.count)) done = true;
          break;
        }
        case v1::StreamAlertsResponse::kHeartbeat:
          if (!resume.has_value()) resume = response.heartbeat().latest_sequence();
          break;
        case v1::StreamAlertsResponse::kGap: {
          const v1::Gap& gap = response.gap();
          env.err() << "pantherctl: warning: alert changes " << gap.from_sequence() << ".."
                    << gap.to_sequence() << " were not delivered ("
                    << EscapeForTerminal(OneLine(OrDash(gap.reason())))
                    << "); see `pantherctl alerts list`\n"
                    << std::flush;
          break;
        }
        default:
          break;
      }
    }
    if (done) watchdog.Cancel();
    const grpc::Status status = reader->Finish();
    if (!print_error.ok()) return print_error;
    if (done || InterruptScope::Interrupted()) return absl::OkStatus();
    if (IsPermanent(status.error_code())) return conn->ToStatus("StreamAlerts", status);
    if (delivered) backoff = kTailInitialBackoff;
    reconnecting = true;
    env.err() << "pantherctl: warning: alert stream "
              << (status.ok() ? std::string("ended by the server")
                              : absl::StrCat("broken (",
                                             EscapeForTerminal(
                                                 conn->ToStatus("StreamAlerts", status).message()),
                                             ")"))
              << "; reconnecting in " << absl::FormatDuration(backoff)
              << (resume.has_value() ? absl::StrCat(" after sequence ", *resume) : std::string())
              << '\n'
              << std::flush;
    if (!SleepUnlessInterrupted(backoff)) break;
    backoff = std::min(backoff * 2, kTailMaxBackoff);
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<v1::ReplayRulesResponse> CallReplayRules(Connection& conn,
                                                        const v1::ReplayRulesRequest& request,
                                                        CommandEnv& env) {
  grpc::ClientContext context;
  conn.PrepareStreamContext(&context);  // a replay may take longer than --timeout
  std::unique_ptr<grpc::ClientReader<v1::ReplayRulesResponse>> reader =
      conn.detection().ReplayRules(&context, request);
  const bool draw = env.err_terminal() && !env.json();
  bool drawn = false;
  std::optional<v1::ReplayRulesResponse> result;
  v1::ReplayRulesResponse message;
  while (reader->Read(&message)) {
    if (!message.has_progress()) {
      result = std::move(message);
      continue;
    }
    if (!draw) continue;
    const v1::ReplayProgress& p = message.progress();
    env.err() << "\r\033[Kreplaying: " << static_cast<int>(p.fraction() * 100)
              << "% of the range (to " << FormatTimestamp(p.reached()) << "), " << p.events()
              << " events, " << static_cast<int64_t>(p.events_per_second()) << " events/s, "
              << p.alerts() << " alerts so far" << std::flush;
    drawn = true;
  }
  const grpc::Status status = reader->Finish();
  if (drawn) env.err() << "\r\033[K" << std::flush;
  if (!status.ok()) return conn.ToStatus("ReplayRules", status);
  if (!result.has_value()) return absl::InternalError("ReplayRules ended without a result");
  return *std::move(result);
}

const std::vector<std::string>& SeverityWords() {
  static const auto* const kWords =
      new std::vector<std::string>{"info", "low", "medium", "high", "critical"};
  return *kWords;
}

v1::Severity ParseSeverityWord(const std::string& word) {
  v1::Severity severity = v1::SEVERITY_UNSPECIFIED;
  if (!word.empty()) v1::Severity_Parse("SEVERITY_" + absl::AsciiStrToUpper(word), &severity);
  return severity;
}

const std::vector<std::string>& AlertTypeWords() {
  static const auto* const kWords = new std::vector<std::string>{"rule", "rule_error"};
  return *kWords;
}

v1::AlertType ParseAlertTypeWord(const std::string& word) {
  const std::string lower = absl::AsciiStrToLower(word);
  if (lower == "rule") return v1::ALERT_TYPE_RULE;
  if (lower == "rule_error") return v1::ALERT_TYPE_RULE_ERROR;
  return v1::ALERT_TYPE_UNSPECIFIED;
}

void AddAlertsCommands(CLI::App& root, CommandRegistry& registry) {
  CLI::App* alerts = registry.AddGroup(root, "alerts", "List, show, triage and re-send alerts");

  auto list_args = std::make_shared<ListArgs>();
  CLI::App* list = registry.AddListCommand(
      *alerts, "list", "List alerts, newest first (at most --limit; says how many more match)",
      [list_args](CommandEnv& env) { return ListAlerts(*list_args, env); });
  list->add_option("--rule", list_args->rule_ids, "Only alerts of this rule (repeatable)")
      ->type_name("ID");
  list->add_option("--status", list_args->statuses, "Only alerts in this status (repeatable)")
      ->type_name("STATUS")
      ->check(CLI::IsMember(kStatusWords, CLI::ignore_case));
  list->add_option("--min-severity,--severity", list_args->min_severity,
                   "Only alerts at least this severe (--severity is an alias, as in alerts tail)")
      ->type_name("SEVERITY")
      ->check(CLI::IsMember(SeverityWords(), CLI::ignore_case));
  CLI::Option* limit_option =
      list->add_option("--limit", list_args->limit,
                       absl::StrCat("Show at most this many alerts (default ", kDefaultLimit, ")"))
          ->type_name("N")
          ->check(CLI::Range(1, 1000000));
  list->add_flag("--all", list_args->all, "Show every matching alert (no --limit)")
      ->excludes(limit_option);
  list->add_option("--page-token", list_args->page_token,
                   "Start at this page (the token a cut listing printed)")
      ->type_name("TOKEN");
  list->add_option("--since", list_args->since,
                   "Only alerts created (see --time) at or after this: an RFC 3339 time or an "
                   "age like 24h or 7d")
      ->type_name("TIME");
  list->add_option("--until", list_args->until,
                   "Only alerts created (see --time) before this: an RFC 3339 time or an age")
      ->type_name("TIME");
  list->add_option("--time", list_args->time_field,
                   "Which time --since and --until filter on: created (default) or updated "
                   "(the last change: a new match or triage)")
      ->type_name("FIELD")
      ->check(CLI::IsMember({"created", "updated"}));

  auto get_id = std::make_shared<std::string>();
  CLI::App* get = registry.AddCommand(*alerts, "get", "Show one alert",
                                      [get_id](CommandEnv& env) { return GetAlert(*get_id, env); });
  get->add_option("ID", *get_id, "Alert id")->type_name("")->required();

  auto events_args = std::make_shared<EventsArgs>();
  CLI::App* events = registry.AddListCommand(
      *alerts, "events",
      "Show every stored event counted into an alert's window (with --samples: the alert's "
      "byte-capped samples)",
      [events_args](CommandEnv& env) { return ListAlertEvents(*events_args, env); });
  events->add_option("ID", events_args->id, "Alert id")->type_name("")->required();
  events
      ->add_option("--limit", events_args->limit,
                   "Show at most this many events (default: all; 10 with --samples)")
      ->type_name("N")
      ->check(CLI::Range(1, 1000000));
  events->add_flag("--samples", events_args->samples,
                   "Show the samples stored on the alert instead of the event store's events");

  auto explain_args = std::make_shared<ExplainArgs>();
  CLI::App* explain = registry.AddCommand(
      root, "explain",
      "Run a stored rule on one event (stored, or --event FILE) and show what it computed and "
      "its dedup window",
      [explain_args](CommandEnv& env) { return Explain(*explain_args, env); });
  explain->add_option("RULE_ID", explain_args->rule, "The stored rule")->required();
  explain->add_option("EVENT_ID", explain_args->event_id, "A stored event's id (Okta uuid)");
  explain->add_option("--event", explain_args->event_file, "A raw event in a JSON file")
      ->type_name("FILE");
  explain->add_option("--log-type", explain_args->log_type, "The event's log type")->type_name("T");

  auto replay_args = std::make_shared<ReplayArgs>();
  CLI::App* replay = registry.AddCommand(
      root, "replay",
      "Backtest: run a rule folder or a stored rule over stored events, in isolation, and show "
      "the alerts it would have produced",
      [replay_args](CommandEnv& env) { return Replay(*replay_args, env); });
  replay
      ->add_option("PATH_OR_RULE_ID", replay_args->target,
                   "A rule folder or file, or a stored rule id")
      ->required();
  replay->add_option("--since", replay_args->since, "Start: an age (24h, 7d) or RFC 3339 time")
      ->type_name("T");
  replay->add_option("--until", replay_args->until, "End (default now)")->type_name("T");
  replay->add_option("--log-type", replay_args->log_type, "Log type (Okta.SystemLog)")
      ->type_name("T");

  CLI::App* windows = registry.AddGroup(root, "windows", "Dedup windows of the live rules");
  auto windows_args = std::make_shared<WindowsArgs>();
  CLI::App* windows_list = registry.AddListCommand(
      *windows, "list",
      "Open dedup windows with their counts against the threshold (why a rule has not fired)",
      [windows_args](CommandEnv& env) { return ListWindows(*windows_args, env); });
  windows_list->add_option("--rule", windows_args->rule, "Only this rule's windows")
      ->type_name("ID");
  windows_list->add_flag("--all", windows_args->all,
                         "Also windows that reached their threshold (with their alert)");

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
                                                  "New assignee (an empty string unassigns); "
                                                  "warns when no such user exists (checked "
                                                  "only when the caller may list users)")
                                     ->type_name("USER");
  changes->add_option("--comment", update_args->comment, "A comment for the alert's audit trail")
      ->type_name("TEXT");
  changes->require_option(1, 0);

  auto tail_args = std::make_shared<TailArgs>();
  CLI::App* tail =
      registry.AddCommand(*alerts, "tail", "Follow alert changes as they happen (until Ctrl-C)",
                          [tail_args](CommandEnv& env) { return TailAlerts(*tail_args, env); });
  tail_args->since_option =
      tail->add_option("--since", tail_args->since,
                       "Replay retained changes after this sequence first (0: all)")
          ->type_name("SEQ");
  tail->add_option("--min-severity,--severity", tail_args->min_severity,
                   "Only alerts at least this severe (--severity is an alias, as in alerts list)")
      ->type_name("SEVERITY")
      ->check(CLI::IsMember(SeverityWords(), CLI::ignore_case));
  tail->add_option("--rule", tail_args->rule_ids, "Only alerts of this rule (repeatable)")
      ->type_name("ID");
  tail->add_option("--type", tail_args->type, "Only alerts of this type: rule or rule_error")
      ->type_name("TYPE")
      ->check(CLI::IsMember(AlertTypeWords()));
  tail->add_option("--count", tail_args->count, "Exit after printing this many changes")
      ->type_name("N")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 62));

  AddAlertsResendCommand(*alerts, registry);
}

}  // namespace pantherd::client
