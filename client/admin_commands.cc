// `pantherctl status` and `pantherctl whoami`.
#include <algorithm>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "client/commands.h"
#include "proto/base/status_macros.h"

namespace pantherd::client {
namespace {

namespace v1 = ::pantherd::v1;
using ::grpc::health::v1::HealthCheckRequest;
using ::grpc::health::v1::HealthCheckResponse;

absl::Status RunStatus(CommandEnv& env) {
  PANTHERD_ASSIGN_OR_RETURN(Connection * conn, env.Connect());
  v1::GetServerStatusResponse status;
  PANTHERD_RETURN_IF_ERROR(conn->Call("GetServerStatus", &Connection::AdminStub::GetServerStatus,
                                      conn->admin(), v1::GetServerStatusRequest(), &status));
  // A failed health check still shows the status, with health UNKNOWN.
  HealthCheckRequest health_request;  // service "": the server as a whole.
  HealthCheckResponse health;
  std::string health_name = "UNKNOWN";
  if (conn->Call("Check", &Connection::HealthStub::Check, conn->health(), health_request, &health)
          .ok()) {
    health_name = HealthCheckResponse::ServingStatus_Name(health.status());
  }
  return PrintServerStatus(status, health_name, env.format(), env.out());
}

absl::Status RunWhoAmI(CommandEnv& env) {
  PANTHERD_ASSIGN_OR_RETURN(Connection * conn, env.Connect());
  v1::WhoAmIResponse response;
  PANTHERD_RETURN_IF_ERROR(conn->Call("WhoAmI", &Connection::AdminStub::WhoAmI, conn->admin(),
                                      v1::WhoAmIRequest(), &response));
  if (env.json()) return PrintJson(response, env.out());

  const v1::User& user = response.user();
  const v1::Token& token = response.token();
  std::string token_text = OrDash(token.id());
  if (!token.name().empty()) absl::StrAppend(&token_text, " (", token.name(), ")");
  PrintFields({{"User", OrDash(user.name())},
               {"Role", ShortEnumName(v1::Role_Name(user.role()), "ROLE_")},
               {"Disabled", user.disabled() ? "yes" : "no"},
               {"Token", token_text},
               {"Token expires", token.has_expire_time() ? FormatTimestamp(token.expire_time())
                                                         : std::string("never")}},
              env.out());
  return absl::OkStatus();
}

// A Duration as seconds with microseconds: "0.001500s".
std::string Seconds(const google::protobuf::Duration& d) {
  return absl::StrFormat("%.6fs", static_cast<double>(d.seconds()) + d.nanos() / 1e9);
}

// "a 1, b 2" from name/count pairs.
std::string Counts(const std::vector<std::pair<std::string, int64_t>>& counts) {
  std::vector<std::string> parts;
  for (const auto& [name, count] : counts) parts.push_back(absl::StrCat(name, " ", count));
  return absl::StrJoin(parts, ", ");
}

// The rules by time spent, most first (ties by id).
std::vector<const v1::RuleMetrics*> RulesByTime(const v1::ServerMetrics& m) {
  std::vector<const v1::RuleMetrics*> rules;
  for (const v1::RuleMetrics& r : m.rules()) rules.push_back(&r);
  auto nanos = [](const v1::RuleMetrics* r) {
    return r->time().seconds() * 1000000000 + r->time().nanos();
  };
  std::stable_sort(rules.begin(), rules.end(),
                   [&](const auto* a, const auto* b) { return nanos(a) > nanos(b); });
  return rules;
}

// The figures of `status` after the main block (table form).
void PrintFigures(const v1::GetServerStatusResponse& status, std::ostream& out) {
  const v1::ServerMetrics& m = status.metrics();
  const v1::IngestMetrics& in = m.ingest();
  std::vector<std::pair<std::string, int64_t>> rejected;
  for (const v1::RejectedEvents& r : in.rejected()) rejected.emplace_back(r.reason(), r.count());
  const v1::WorkerMetrics& w = m.workers();
  const v1::ExecutorMetrics& e = m.executor();
  const v1::StreamStats& s = status.streams();
  out << "\n";
  PrintFields({{"Batches", Counts({{"stored", in.batches()}, {"failed", in.batches_failed()}})},
               {"Events", Counts({{"received", in.events_received()},
                                  {"accepted", in.events_accepted()},
                                  {"duplicate", in.events_duplicate()},
                                  {"unevaluated", in.events_unevaluated()},
                                  {"poison", in.poison_events()}})},
               {"Rejected", rejected.empty() ? "-" : Counts(rejected)},
               {"Workers", Counts({{"live", w.live()},
                                   {"busy", w.busy()},
                                   {"waiting", w.waiting()},
                                   {"started", w.started()},
                                   {"crashed", w.crashed()},
                                   {"timed out", w.killed_for_timeout()},
                                   {"restarts", w.restarts()},
                                   {"restart failures", w.restart_failures()},
                                   {"restarts delayed", w.restarts_delayed()},
                                   {"retries", w.retries()},
                                   {"refused", w.rejected()}})},
               {"Executor", Counts({{"threads", e.threads()},
                                    {"queued", e.queued()},
                                    {"capacity", e.queue_capacity()},
                                    {"refused", e.rejected()}})},
               {"Evaluation", Counts({{"threads", m.evaluation().threads()},
                                      {"queued", m.evaluation().queued()},
                                      {"capacity", m.evaluation().queue_capacity()},
                                      {"refused", m.evaluation().rejected()}})},
               {"Alert feed", Counts({{"published", s.published()},
                                      {"backlog", s.backlog()},
                                      {"max backlog", s.max_backlog()},
                                      {"catching up", s.catching_up()},
                                      {"dropped", s.dropped_to_catch_up()},
                                      {"gaps", s.gaps()}})}},
              out);
  if (m.rules_size() > 0) {
    Table rules({"RULE", "EVALUATIONS", "MATCHES", "ERRORS", "TIME"});
    for (const v1::RuleMetrics* r : RulesByTime(m)) {
      rules.AddRow({r->rule_id(), absl::StrCat(r->evaluations()), absl::StrCat(r->matches()),
                    absl::StrCat(r->errors()), Seconds(r->time())});
    }
    out << "\n";
    rules.Print(out);
  }
  if (m.sources_size() > 0) {
    Table sources({"SOURCE", "STATE", "POLLS", "FAILURES", "EVENTS", "LAST POLL", "LAG"});
    for (const v1::SourceMetrics& src : m.sources()) {
      sources.AddRow({src.label(),
                      ShortEnumName(v1::SourceState_Name(src.state()), "SOURCE_STATE_"),
                      absl::StrCat(src.polls()), absl::StrCat(src.poll_failures()),
                      absl::StrCat(src.events_ingested()), FormatTimestamp(src.last_poll_time()),
                      src.has_lag() ? FormatDuration(src.lag()) : "-"});
    }
    out << "\n";
    sources.Print(out);
  }
}

// The figures as one JSON object (numbers as JSON numbers, durations in
// seconds as numbers, times as RFC 3339 strings).
absl::StatusOr<std::string> FiguresJson(const v1::GetServerStatusResponse& status) {
  const v1::ServerMetrics& m = status.metrics();
  const v1::IngestMetrics& in = m.ingest();
  JsonObject rejected;
  for (const v1::RejectedEvents& r : in.rejected()) rejected.AddInt(r.reason(), r.count());
  JsonObject ingest;
  ingest.AddInt("batches", in.batches())
      .AddInt("batchesFailed", in.batches_failed())
      .AddInt("eventsReceived", in.events_received())
      .AddInt("eventsAccepted", in.events_accepted())
      .AddInt("eventsDuplicate", in.events_duplicate())
      .AddInt("eventsUnevaluated", in.events_unevaluated())
      .AddInt("poisonEvents", in.poison_events())
      .AddInt("rulesQuarantined", in.rules_quarantined())
      .AddRaw("eventsRejected", rejected.ToString());
  std::vector<std::string> rules;
  for (const v1::RuleMetrics& r : m.rules()) {
    JsonObject rule;
    rule.AddString("ruleId", r.rule_id())
        .AddInt("evaluations", r.evaluations())
        .AddInt("matches", r.matches())
        .AddInt("errors", r.errors())
        .AddRaw("seconds", absl::StrFormat("%.9f", static_cast<double>(r.time().seconds()) +
                                                       r.time().nanos() / 1e9));
    rules.push_back(rule.ToString());
  }
  const v1::WorkerMetrics& w = m.workers();
  JsonObject workers;
  workers.AddInt("live", w.live())
      .AddInt("busy", w.busy())
      .AddInt("waiting", w.waiting())
      .AddInt("started", w.started())
      .AddInt("crashed", w.crashed())
      .AddInt("killedForTimeout", w.killed_for_timeout())
      .AddInt("restarts", w.restarts())
      .AddInt("restartFailures", w.restart_failures())
      .AddInt("restartsDelayed", w.restarts_delayed())
      .AddInt("retries", w.retries())
      .AddInt("rejected", w.rejected());
  const v1::ExecutorMetrics& e = m.executor();
  JsonObject executor;
  executor.AddInt("threads", e.threads())
      .AddInt("queued", e.queued())
      .AddInt("queueCapacity", e.queue_capacity())
      .AddInt("rejected", e.rejected());
  const v1::ExecutorMetrics& ev = m.evaluation();
  JsonObject evaluation;
  evaluation.AddInt("threads", ev.threads())
      .AddInt("queued", ev.queued())
      .AddInt("queueCapacity", ev.queue_capacity())
      .AddInt("rejected", ev.rejected());
  const v1::StreamStats& s = status.streams();
  JsonObject streams;
  streams.AddInt("subscribers", s.subscribers())
      .AddInt("published", s.published())
      .AddInt("delivered", s.delivered())
      .AddInt("backlog", s.backlog())
      .AddInt("maxBacklog", s.max_backlog())
      .AddInt("catchingUp", s.catching_up())
      .AddInt("droppedToCatchUp", s.dropped_to_catch_up())
      .AddInt("catchUps", s.catch_ups())
      .AddInt("gaps", s.gaps())
      .AddInt("heartbeats", s.heartbeats());
  std::vector<std::string> sources;
  for (const v1::SourceMetrics& src : m.sources()) {
    JsonObject source;
    source.AddString("id", src.id())
        .AddString("label", src.label())
        .AddString("state", ShortEnumName(v1::SourceState_Name(src.state()), "SOURCE_STATE_"))
        .AddInt("polls", src.polls())
        .AddInt("pollFailures", src.poll_failures())
        .AddInt("eventsIngested", src.events_ingested())
        .AddInt("eventsDuplicate", src.events_duplicate())
        .AddInt("eventsRejected", src.events_rejected());
    if (src.has_last_poll_time()) {
      PANTHERD_ASSIGN_OR_RETURN(std::string t, MessageToJson(src.last_poll_time()));
      source.AddRaw("lastPollTime", t);
    }
    if (src.has_lag()) {
      source.AddRaw("lagSeconds", absl::StrFormat("%.9f", static_cast<double>(src.lag().seconds()) +
                                                              src.lag().nanos() / 1e9));
    }
    sources.push_back(source.ToString());
  }
  JsonObject figures;
  figures.AddRaw("ingest", ingest.ToString())
      .AddRaw("rules", absl::StrCat("[", absl::StrJoin(rules, ", "), "]"))
      .AddRaw("workers", workers.ToString())
      .AddRaw("executor", executor.ToString())
      .AddRaw("evaluation", evaluation.ToString())
      .AddRaw("alertFeed", streams.ToString())
      .AddRaw("sources", absl::StrCat("[", absl::StrJoin(sources, ", "), "]"));
  return figures.ToString();
}

}  // namespace

absl::Status PrintServerStatus(const v1::GetServerStatusResponse& status, absl::string_view health,
                               OutputFormat format, std::ostream& out) {
  if (format == OutputFormat::kTable) {
    PrintFields({{"Version", OrDash(status.version())},
                 {"Uptime", FormatDuration(status.uptime())},
                 {"Started", FormatTimestamp(status.start_time())},
                 {"Data dir", OrDash(status.data_dir())},
                 {"Listen address", OrDash(status.listen_address())},
                 {"Rules", absl::StrCat(status.rule_count())},
                 {"Globals", absl::StrCat(status.global_count())},
                 {"Data models", absl::StrCat(status.data_model_count())},
                 {"Sources", absl::StrCat(status.source_count())},
                 {"Alerts", absl::StrCat(status.alert_count())},
                 {"Subscribers", absl::StrCat(status.streams().subscribers())},
                 {"Delivered", absl::StrCat(status.streams().delivered())},
                 {"Catch-ups", absl::StrCat(status.streams().catch_ups())},
                 {"Health", std::string(health)}},
                out);
    PrintFigures(status, out);
    if (status.quarantined_rules_size() > 0) {
      Table quarantined({"QUARANTINED RULE", "SINCE", "FAILURES", "REASON"});
      for (const v1::QuarantinedRule& q : status.quarantined_rules()) {
        quarantined.AddRow({q.rule_id(), FormatTimestamp(q.quarantine().time()),
                            absl::StrCat(q.quarantine().failures()), q.quarantine().reason()});
      }
      out << "\n";
      quarantined.Print(out);
      out << "Re-enable a quarantined rule with: pantherctl rules enable RULE_ID\n";
    }
    return absl::OkStatus();
  }

  JsonObject object;
  object.AddString("version", status.version());
  if (status.has_start_time()) {
    PANTHERD_ASSIGN_OR_RETURN(std::string start_time, MessageToJson(status.start_time()));
    object.AddRaw("startTime", start_time);
  }
  PANTHERD_ASSIGN_OR_RETURN(std::string uptime, MessageToJson(status.uptime()));
  object.AddRaw("uptime", uptime)
      .AddInt("uptimeSeconds", status.uptime().seconds())
      .AddString("dataDir", status.data_dir())
      .AddString("listenAddress", status.listen_address())
      .AddInt("ruleCount", status.rule_count())
      .AddInt("globalCount", status.global_count())
      .AddInt("dataModelCount", status.data_model_count())
      .AddInt("sourceCount", status.source_count())
      .AddInt("alertCount", status.alert_count())
      .AddInt("subscribers", status.streams().subscribers())
      .AddInt("alertChangesDelivered", status.streams().delivered())
      .AddInt("subscriberCatchUps", status.streams().catch_ups())
      .AddString("health", health);
  std::vector<std::string> quarantined;
  for (const v1::QuarantinedRule& q : status.quarantined_rules()) {
    JsonObject rule;
    rule.AddString("ruleId", q.rule_id());
    if (q.quarantine().has_time()) {
      PANTHERD_ASSIGN_OR_RETURN(std::string since, MessageToJson(q.quarantine().time()));
      rule.AddRaw("since", since);
    }
    rule.AddInt("failures", q.quarantine().failures())
        .AddString("reason", q.quarantine().reason())
        .AddString("lastEventId", q.quarantine().last_event_id())
        .AddString("lastFailureType", q.quarantine().last_failure_type())
        .AddString("reEnable", absl::StrCat("pantherctl rules enable ", q.rule_id()));
    quarantined.push_back(rule.ToString());
  }
  object.AddRaw("quarantinedRules", absl::StrCat("[", absl::StrJoin(quarantined, ", "), "]"));
  PANTHERD_ASSIGN_OR_RETURN(std::string figures, FiguresJson(status));
  object.AddRaw("figures", figures);
  out << object.ToString() << '\n';
  return absl::OkStatus();
}

void AddAdminCommands(CLI::App& root, CommandRegistry& registry) {
  registry.AddCommand(root, "status",
                      "Show the server's version, uptime, data directory, content counts and "
                      "health",
                      RunStatus);
  registry.AddCommand(root, "whoami", "Show the user and token behind your calls", RunWhoAmI);
}

}  // namespace pantherd::client
