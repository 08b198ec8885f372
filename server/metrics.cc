#include "server/metrics.h"

#include <algorithm>
#include <cstdlib>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "google/protobuf/util/time_util.h"

namespace pantherd::server {
namespace {

using google::protobuf::util::TimeUtil;

google::protobuf::Duration NanosToDuration(int64_t nanos) {
  return TimeUtil::NanosecondsToDuration(nanos);
}

// Writes metric families in the text format, each family's # HELP and
// # TYPE once, before its samples.
class TextWriter {
 public:
  using Labels = std::vector<std::pair<absl::string_view, std::string>>;

  void Family(absl::string_view name, absl::string_view type, absl::string_view help) {
    absl::StrAppend(&out_, "# HELP ", name, " ", EscapeHelp(help), "\n# TYPE ", name, " ", type,
                    "\n");
  }
  void Sample(absl::string_view name, const Labels& labels, absl::string_view value) {
    absl::StrAppend(&out_, name);
    if (!labels.empty()) {
      out_.push_back('{');
      for (size_t i = 0; i < labels.size(); ++i) {
        absl::StrAppend(&out_, i == 0 ? "" : ",", labels[i].first, "=\"",
                        EscapeLabelValue(labels[i].second), "\"");
      }
      out_.push_back('}');
    }
    absl::StrAppend(&out_, " ", value, "\n");
  }
  void Sample(absl::string_view name, const Labels& labels, int64_t value) {
    Sample(name, labels, absl::StrCat(value));
  }
  // A family of one unlabelled sample.
  void Single(absl::string_view name, absl::string_view type, absl::string_view help,
              int64_t value) {
    Family(name, type, help);
    Sample(name, {}, value);
  }
  std::string Take() { return std::move(out_); }

 private:
  static std::string EscapeHelp(absl::string_view help) {
    std::string out;
    for (char c : help) {
      if (c == '\\') {
        out += "\\\\";
      } else if (c == '\n') {
        out += "\\n";
      } else {
        out.push_back(c);
      }
    }
    return out;
  }
  std::string out_;
};

std::string StateName(v1::SourceState state) {
  std::string name = v1::SourceState_Name(state);
  constexpr absl::string_view kPrefix = "SOURCE_STATE_";
  if (absl::StartsWith(name, kPrefix)) name = name.substr(kPrefix.size());
  return absl::AsciiStrToLower(name);
}

void CollectIngest(const engine::EngineMetrics& m, v1::ServerMetrics* out) {
  v1::IngestMetrics* ingest = out->mutable_ingest();
  ingest->set_batches(m.batches.value());
  ingest->set_batches_failed(m.batches_failed.value());
  ingest->set_events_received(m.events_received.value());
  ingest->set_events_accepted(m.events_accepted.value());
  ingest->set_events_duplicate(m.events_duplicate.value());
  ingest->set_events_unevaluated(m.events_unevaluated.value());
  ingest->set_events_stored(m.events_stored.value());
  ingest->set_event_blocks_encoded_at_commit(m.event_blocks_encoded_at_commit.value());
  ingest->set_poison_events(m.poison_events.value());
  ingest->set_rules_quarantined(m.rules_quarantined.value());
  for (int i = 0; i < engine::kRejectReasonCount; ++i) {
    const auto reason = static_cast<engine::RejectReason>(i);
    v1::RejectedEvents* r = ingest->add_rejected();
    r->set_reason(std::string(engine::RejectReasonName(reason)));
    r->set_count(m.rejected(reason).value());
  }
  for (const auto& [id, figures] : m.Rules()) {
    v1::RuleMetrics* rule = out->add_rules();
    rule->set_rule_id(id);
    rule->set_evaluations(figures.evaluations);
    rule->set_matches(figures.matches);
    rule->set_errors(figures.errors);
    *rule->mutable_time() = NanosToDuration(figures.time_nanos);
  }
}

void CollectWorkers(const engine::WorkerPool& pool, v1::ServerMetrics* out) {
  const engine::WorkerPoolStats s = pool.Stats();
  v1::WorkerMetrics* w = out->mutable_workers();
  w->set_live(s.live_workers);
  w->set_busy(s.busy_workers);
  w->set_waiting(s.waiting);
  w->set_started(s.workers_started);
  w->set_crashed(s.workers_crashed);
  w->set_killed_for_timeout(s.workers_killed_for_timeout);
  w->set_restarts(s.workers_replaced);
  w->set_restart_failures(s.replacement_failures);
  w->set_restarts_delayed(s.replacements_delayed);
  w->set_retries(s.retries);
  w->set_rejected(s.rejected);
}

void CollectSources(const SourceManager& sources, v1::ServerMetrics* out) {
  absl::StatusOr<std::vector<v1::Source>> list = sources.List();
  if (!list.ok()) return;  // List reads memory only; it does not fail today.
  for (const v1::Source& s : *list) {
    v1::SourceMetrics* m = out->add_sources();
    m->set_id(s.id());
    m->set_label(s.label());
    m->set_state(s.state());
    m->set_polls(s.polls());
    m->set_poll_failures(s.poll_failures());
    m->set_events_ingested(s.events_ingested());
    m->set_events_duplicate(s.events_duplicate());
    m->set_events_rejected(s.events_rejected());
    if (s.has_last_poll_time()) *m->mutable_last_poll_time() = s.last_poll_time();
    if (s.has_lag()) *m->mutable_lag() = s.lag();
  }
}

}  // namespace

std::string EscapeLabelValue(absl::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out.push_back(c);
    }
  }
  return out;
}

std::string FormatSeconds(int64_t seconds, int32_t nanos) {
  // Normalise to one sign (a Timestamp before 1970 has seconds < 0 and
  // nanos >= 0).
  if (seconds < 0 && nanos > 0) {
    seconds += 1;
    nanos -= 1000000000;
  }
  const bool negative = seconds < 0 || nanos < 0;
  const uint64_t whole =
      seconds < 0 ? 0 - static_cast<uint64_t>(seconds) : static_cast<uint64_t>(seconds);
  const int32_t fraction = std::abs(nanos);
  std::string out = absl::StrCat(negative ? "-" : "", whole);
  if (fraction != 0) {
    std::string digits = absl::StrFormat("%09d", fraction);
    digits.erase(digits.find_last_not_of('0') + 1);
    absl::StrAppend(&out, ".", digits);
  }
  return out;
}

v1::StreamStats ToStreamStats(const AlertHubStats& hub) {
  v1::StreamStats streams;
  streams.set_subscribers(hub.subscribers);
  streams.set_delivered(hub.delivered);
  streams.set_dropped_to_catch_up(hub.dropped_to_catch_up);
  streams.set_catch_ups(hub.catch_ups);
  streams.set_gaps(hub.gaps);
  streams.set_heartbeats(hub.heartbeats);
  streams.set_published(hub.published);
  int64_t total = 0, largest = 0, catching_up = 0;
  for (const AlertHubStats::Subscriber& s : hub.backlogs) {
    total += s.backlog;
    largest = std::max(largest, s.backlog);
    catching_up += s.catching_up ? 1 : 0;
    v1::SubscriberBacklog* b = streams.add_subscriber_backlogs();
    b->set_backlog(s.backlog);
    b->set_catching_up(s.catching_up);
    b->set_delivered_through(s.delivered_through);
  }
  streams.set_backlog(total);
  streams.set_max_backlog(largest);
  streams.set_catching_up(catching_up);
  return streams;
}

namespace {

void CollectExecutor(const Executor& executor, v1::ExecutorMetrics* e) {
  e->set_threads(executor.threads());
  e->set_queued(executor.queued());
  e->set_queue_capacity(executor.queue_capacity());
  e->set_rejected(executor.rejected());
}

// A bounded pool's four figures, as pantherd_<name>_threads, _queue_depth,
// _queue_capacity and _rejected_total; `work` says what it runs.
void WritePool(TextWriter& w, absl::string_view name, absl::string_view work,
               const v1::ExecutorMetrics& pool) {
  const std::string prefix = absl::StrCat("pantherd_", name);
  w.Single(absl::StrCat(prefix, "_threads"), "gauge", absl::StrCat("Threads running ", work, "."),
           pool.threads());
  w.Single(absl::StrCat(prefix, "_queue_depth"), "gauge",
           absl::StrCat("Tasks waiting for a thread of the ", name, " pool."), pool.queued());
  w.Single(absl::StrCat(prefix, "_queue_capacity"), "gauge",
           "Tasks that may wait; beyond, calls get RESOURCE_EXHAUSTED.", pool.queue_capacity());
  w.Single(absl::StrCat(prefix, "_rejected_total"), "counter",
           absl::StrCat("Tasks refused because the ", name, " queue was full."), pool.rejected());
}

}  // namespace

void CollectLiveStatus(const MetricsInputs& in, v1::GetServerStatusResponse* status) {
  status->set_version(in.version);
  if (in.start_time != absl::InfinitePast()) {
    *status->mutable_start_time() =
        TimeUtil::NanosecondsToTimestamp(absl::ToUnixNanos(in.start_time));
    *status->mutable_uptime() =
        TimeUtil::NanosecondsToDuration(absl::ToInt64Nanoseconds(absl::Now() - in.start_time));
  }
  if (in.hub != nullptr) *status->mutable_streams() = ToStreamStats(in.hub->stats());
  v1::ServerMetrics* metrics = status->mutable_metrics();
  if (in.engine != nullptr) CollectIngest(*in.engine, metrics);
  if (in.pool != nullptr) CollectWorkers(*in.pool, metrics);
  if (in.executor != nullptr) CollectExecutor(*in.executor, metrics->mutable_executor());
  if (in.evaluation != nullptr) CollectExecutor(*in.evaluation, metrics->mutable_evaluation());
  if (in.sources != nullptr) CollectSources(*in.sources, metrics);
  if (in.deliveries != nullptr) {
    for (v1::DestinationMetrics& d : in.deliveries->Metrics()) {
      *metrics->add_destinations() = std::move(d);
    }
  }
}

std::string RenderPrometheus(const v1::GetServerStatusResponse& status) {
  TextWriter w;
  const v1::ServerMetrics& m = status.metrics();

  w.Family("pantherd_build_info", "gauge", "Always 1; the version label names the build.");
  w.Sample("pantherd_build_info", {{"version", status.version()}}, 1);
  if (status.has_start_time()) {
    w.Family("pantherd_start_time_seconds", "gauge",
             "When the server started, in seconds since the Unix epoch.");
    w.Sample("pantherd_start_time_seconds", {},
             FormatSeconds(status.start_time().seconds(), status.start_time().nanos()));
  }

  // Ingestion.
  const v1::IngestMetrics& ingest = m.ingest();
  w.Single("pantherd_ingest_batches_total", "counter",
           "Batches of events evaluated and stored (API streams and source pages).",
           ingest.batches());
  w.Single("pantherd_ingest_batches_failed_total", "counter",
           "Batches that failed; nothing of them was stored.", ingest.batches_failed());
  w.Single("pantherd_events_received_total", "counter",
           "Events in the batches received, before normalisation.", ingest.events_received());
  w.Single("pantherd_events_accepted_total", "counter", "Events stored for the first time.",
           ingest.events_accepted());
  w.Single("pantherd_events_duplicate_total", "counter",
           "Events skipped because an event with the same id was processed already.",
           ingest.events_duplicate());
  w.Family("pantherd_events_rejected_total", "counter",
           "Events rejected by normalisation, by reason.");
  for (const v1::RejectedEvents& r : ingest.rejected()) {
    w.Sample("pantherd_events_rejected_total", {{"reason", r.reason()}}, r.count());
  }
  w.Single("pantherd_events_unevaluated_total", "counter",
           "Events a rule worker could not evaluate at all (no rule ran on them).",
           ingest.events_unevaluated());
  w.Single("pantherd_events_stored_total", "counter",
           "Events written to the event store (within --event-retention).", ingest.events_stored());
  w.Single("pantherd_event_blocks_encoded_at_commit_total", "counter",
           "Blocks of stored events compressed on the commit path instead of ahead of it.",
           ingest.event_blocks_encoded_at_commit());
  w.Single("pantherd_poison_events_total", "counter",
           "Events on which a rule ended its worker (each a RULE_ERROR alert).",
           ingest.poison_events());
  w.Single("pantherd_rules_quarantined_total", "counter",
           "Rules quarantined because events kept ending their workers.",
           ingest.rules_quarantined());

  // Rules.
  w.Family("pantherd_rule_evaluations_total", "counter", "Calls of the rule's rule() function.");
  for (const v1::RuleMetrics& r : m.rules()) {
    w.Sample("pantherd_rule_evaluations_total", {{"rule", r.rule_id()}}, r.evaluations());
  }
  w.Family("pantherd_rule_matches_total", "counter", "Calls of rule() that returned True.");
  for (const v1::RuleMetrics& r : m.rules()) {
    w.Sample("pantherd_rule_matches_total", {{"rule", r.rule_id()}}, r.matches());
  }
  w.Family("pantherd_rule_errors_total", "counter",
           "Calls of rule() that raised, returned a non-bool or timed out.");
  for (const v1::RuleMetrics& r : m.rules()) {
    w.Sample("pantherd_rule_errors_total", {{"rule", r.rule_id()}}, r.errors());
  }
  w.Family("pantherd_rule_seconds_total", "counter",
           "Time spent in the rule's Python functions, measured in the rule worker.");
  for (const v1::RuleMetrics& r : m.rules()) {
    w.Sample("pantherd_rule_seconds_total", {{"rule", r.rule_id()}},
             FormatSeconds(r.time().seconds(), r.time().nanos()));
  }

  // Rule workers.
  const v1::WorkerMetrics& workers = m.workers();
  w.Single("pantherd_workers_live", "gauge", "Live rule worker processes.", workers.live());
  w.Single("pantherd_workers_busy", "gauge", "Live rule workers busy with a request.",
           workers.busy());
  w.Single("pantherd_worker_queue_waiting", "gauge",
           "Requests waiting for a free rule worker or test-run slot.", workers.waiting());
  w.Single("pantherd_workers_started_total", "counter",
           "Rule worker processes started (live, replacements, one-shot test runs).",
           workers.started());
  w.Single("pantherd_worker_crashes_total", "counter",
           "Rule workers that died or broke the protocol.", workers.crashed());
  w.Single("pantherd_worker_timeouts_total", "counter",
           "Rule workers killed for overrunning their time budget.", workers.killed_for_timeout());
  w.Single("pantherd_worker_restarts_total", "counter", "Live rule workers restarted after dying.",
           workers.restarts());
  w.Single("pantherd_worker_restart_failures_total", "counter",
           "Attempts to restart a live rule worker that failed (retried with backoff).",
           workers.restart_failures());
  w.Single("pantherd_worker_restarts_delayed_total", "counter",
           "Restarts held back (backoff) because the worker died before serving a request.",
           workers.restarts_delayed());
  w.Single("pantherd_worker_retries_total", "counter",
           "Requests retried in a new rule worker after a crash.", workers.retries());
  w.Single("pantherd_worker_rejected_total", "counter",
           "Requests refused because too many already waited for a rule worker.",
           workers.rejected());

  // The two bounded pools.
  WritePool(w, "executor", "blocking work (disk)", m.executor());
  WritePool(w, "evaluation", "work that waits on rule workers (batches, test runs)",
            m.evaluation());

  // The alert feed.
  const v1::StreamStats& streams = status.streams();
  w.Single("pantherd_alert_changes_published_total", "counter",
           "Alert changes (created, updated) handed to the alert feed.", streams.published());
  w.Single("pantherd_stream_subscribers", "gauge", "Open StreamAlerts streams.",
           streams.subscribers());
  w.Single("pantherd_stream_subscribers_catching_up", "gauge",
           "Open streams re-reading the alert log from the store.", streams.catching_up());
  w.Single("pantherd_stream_backlog", "gauge",
           "Alert changes waiting to be written, summed over the open streams.", streams.backlog());
  w.Single("pantherd_stream_backlog_max", "gauge",
           "The largest backlog of one open stream, in alert changes.", streams.max_backlog());
  w.Single("pantherd_stream_changes_delivered_total", "counter",
           "Alert changes written to subscribers.", streams.delivered());
  w.Single("pantherd_stream_changes_dropped_total", "counter",
           "Alert changes dropped from a slow subscriber's full buffer (it re-reads them from "
           "the store).",
           streams.dropped_to_catch_up());
  w.Single("pantherd_stream_catch_ups_total", "counter",
           "Times a subscriber fell back to reading from the store.", streams.catch_ups());
  w.Single("pantherd_stream_gaps_total", "counter",
           "Gap messages sent (changes no longer retained).", streams.gaps());
  w.Single("pantherd_stream_heartbeats_total", "counter", "Heartbeat messages written.",
           streams.heartbeats());

  // Sources.
  w.Family("pantherd_source_polls_total", "counter",
           "Requests made to the source since the server started.");
  for (const v1::SourceMetrics& s : m.sources()) {
    w.Sample("pantherd_source_polls_total", {{"source", s.label()}}, s.polls());
  }
  w.Family("pantherd_source_poll_failures_total", "counter",
           "Polls of the source that failed since the server started.");
  for (const v1::SourceMetrics& s : m.sources()) {
    w.Sample("pantherd_source_poll_failures_total", {{"source", s.label()}}, s.poll_failures());
  }
  w.Family("pantherd_source_events_ingested_total", "counter",
           "Events of the source stored, over the source's life.");
  for (const v1::SourceMetrics& s : m.sources()) {
    w.Sample("pantherd_source_events_ingested_total", {{"source", s.label()}}, s.events_ingested());
  }
  w.Family("pantherd_source_events_duplicate_total", "counter",
           "Events of the source skipped as already processed, over the source's life.");
  for (const v1::SourceMetrics& s : m.sources()) {
    w.Sample("pantherd_source_events_duplicate_total", {{"source", s.label()}},
             s.events_duplicate());
  }
  w.Family("pantherd_source_events_rejected_total", "counter",
           "Events of the source rejected by normalisation, over the source's life.");
  for (const v1::SourceMetrics& s : m.sources()) {
    w.Sample("pantherd_source_events_rejected_total", {{"source", s.label()}}, s.events_rejected());
  }
  w.Family("pantherd_source_last_poll_timestamp_seconds", "gauge",
           "When the source was last polled, in seconds since the Unix epoch.");
  for (const v1::SourceMetrics& s : m.sources()) {
    if (!s.has_last_poll_time()) continue;
    w.Sample("pantherd_source_last_poll_timestamp_seconds", {{"source", s.label()}},
             FormatSeconds(s.last_poll_time().seconds(), s.last_poll_time().nanos()));
  }
  w.Family("pantherd_source_lag_seconds", "gauge",
           "How far behind real time the source's newest stored event is.");
  for (const v1::SourceMetrics& s : m.sources()) {
    if (!s.has_lag()) continue;
    w.Sample("pantherd_source_lag_seconds", {{"source", s.label()}},
             FormatSeconds(s.lag().seconds(), s.lag().nanos()));
  }
  w.Family("pantherd_source_state", "gauge",
           "1 for the source's current state (active, paused, error).");
  for (const v1::SourceMetrics& s : m.sources()) {
    w.Sample("pantherd_source_state", {{"source", s.label()}, {"state", StateName(s.state())}}, 1);
  }

  // Destinations (docs/destinations.md).
  w.Family("pantherd_deliveries_total", "counter",
           "Delivery attempts to the destination since the server started, by outcome "
           "(delivered, retried, failed).");
  for (const v1::DestinationMetrics& d : m.destinations()) {
    const std::pair<const char*, int64_t> outcomes[] = {
        {"delivered", d.delivered()}, {"retried", d.retried()}, {"failed", d.failed()}};
    for (const auto& [outcome, value] : outcomes) {
      w.Sample("pantherd_deliveries_total",
               {{"destination", d.name()}, {"kind", d.kind()}, {"outcome", outcome}}, value);
    }
  }
  w.Family("pantherd_delivery_queue_depth", "gauge",
           "Deliveries to the destination waiting for their next attempt.");
  for (const v1::DestinationMetrics& d : m.destinations()) {
    w.Sample("pantherd_delivery_queue_depth", {{"destination", d.name()}}, d.pending());
  }
  w.Family("pantherd_delivery_oldest_pending_seconds", "gauge",
           "How long the oldest waiting delivery to the destination has waited (0: none).");
  for (const v1::DestinationMetrics& d : m.destinations()) {
    w.Sample("pantherd_delivery_oldest_pending_seconds", {{"destination", d.name()}},
             FormatSeconds(d.oldest_pending_age().seconds(), d.oldest_pending_age().nanos()));
  }
  return w.Take();
}

}  // namespace pantherd::server
