#include "engine/ingest_pipeline.h"

#include <algorithm>
#include <thread>
#include <utility>

#include "absl/cleanup/cleanup.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "engine/normalize.h"
#include "engine/rule_set_manager.h"
#include "proto/base/status_macros.h"
#include "store/keys.h"

namespace pantherd::engine {

int64_t EvaluationCalls(size_t events, size_t rules) {
  return static_cast<int64_t>(events) * static_cast<int64_t>(rules == 0 ? 1 : rules) * 10;
}

namespace {

// Batches with fewer events are evaluated whole by one worker, never split by
// rule across workers (see IngestPipeline::Prepare).
constexpr size_t kMinEventsToSplit = 200;

// The author of the rule version a quarantine records.
constexpr char kQuarantineAuthor[] = "pantherd";

// The narrowing down of one batch's poison events (see the file comment of
// engine/ingest_pipeline.h), shared by the parts of a batch split by rule,
// which may narrow concurrently.
class PoisonIsolation {
 public:
  PoisonIsolation(std::vector<std::string> labels, std::vector<std::string> event_ids,
                  PoisonTracker* tracker, RuleStore* rules, const IngestOptions* options)
      : labels_(std::move(labels)),
        event_ids_(std::move(event_ids)),
        tracker_(tracker),
        rules_(rules),
        options_(options) {}

  // Whether `rule_id` was quarantined while this batch ran.
  bool Quarantined(const std::string& rule_id) const {
    absl::MutexLock lock(&mu_);
    return quarantined_.contains(rule_id);
  }

  // Records that `rule_id` ended its worker on event `event` (its position
  // in the request) with `status`: adds the rule error (and, when this
  // quarantines the rule, the RuleQuarantined error) to `out`.
  void RecordFailure(int event, const std::string& rule_id, const absl::Status& status,
                     internal::EventResult* out) {
    const WorkerFailureKind kind = WorkerFailureOf(status);
    const std::string& label = labels_[static_cast<size_t>(event)];
    internal::RuleErrorResult* error = out->add_errors();
    error->set_rule_id(rule_id);
    error->mutable_error()->set_type(WorkerFailureType(kind));
    error->mutable_error()->set_message(absl::StrCat(
        label, " ended the rule's worker: ", status.message(),
        ". The rest of the batch was evaluated without it; pantherd quarantines a rule after ",
        tracker_->policy().failures, " such events within ",
        absl::FormatDuration(tracker_->policy().window)));
    if (options_->metrics != nullptr) options_->metrics->poison_events.Add();
    const int count = tracker_->Record(rule_id, options_->now());
    if (!tracker_->Quarantines(count)) return;
    {
      absl::MutexLock lock(&mu_);
      if (!quarantined_.insert(rule_id).second) return;
    }
    tracker_->Forget(rule_id);
    v1::RuleQuarantine quarantine;
    const absl::Time now = options_->now();
    quarantine.mutable_time()->set_seconds(absl::ToUnixSeconds(now));
    quarantine.set_failures(count);
    quarantine.set_last_event_id(event_ids_[static_cast<size_t>(event)]);
    quarantine.set_last_failure_type(WorkerFailureType(kind));
    quarantine.set_reason(absl::StrCat(count, " events ended its worker within ",
                                       absl::FormatDuration(tracker_->policy().window),
                                       " (last: ", label, ", ", WorkerFailureType(kind), ")"));
    absl::StatusOr<v1::Rule> stored =
        rules_->Quarantine(rule_id, quarantine, kQuarantineAuthor, now);
    internal::RuleErrorResult* notice = out->add_errors();
    notice->set_rule_id(rule_id);
    notice->mutable_error()->set_type("RuleQuarantined");
    if (stored.ok()) {
      if (options_->metrics != nullptr) options_->metrics->rules_quarantined.Add();
      notice->mutable_error()->set_message(
          absl::StrCat("quarantined: ", quarantine.reason(),
                       ". The rule is disabled until someone re-enables it: pantherctl rules "
                       "enable ",
                       rule_id));
      if (options_->on_quarantine) options_->on_quarantine(rule_id, quarantine);
    } else {
      notice->mutable_error()->set_message(absl::StrCat(
          quarantine.reason(), "; it could not be quarantined (", stored.status().message(),
          "), it is skipped for the rest of this batch only"));
    }
  }

 private:
  const std::vector<std::string> labels_;     // per event of the request
  const std::vector<std::string> event_ids_;  // per event of the request
  PoisonTracker* const tracker_;
  RuleStore* const rules_;
  const IngestOptions* const options_;
  mutable absl::Mutex mu_;
  absl::flat_hash_set<std::string> quarantined_ ABSL_GUARDED_BY(mu_);
};

// Evaluates `request` event by event after the batch ended its workers (see
// PoisonIsolation): events that evaluate cleanly keep their results; for an
// event that ends its worker again, each enabled rule runs alone (retried
// once after a crash), and a rule that ends its worker on it is recorded by
// `isolation`. Rules quarantined meanwhile are left out. Errors that are not
// worker failures (no live worker, overload, shutdown) are returned.
absl::StatusOr<internal::EvaluateResult> EvaluateIsolatingPoison(
    WorkerPool* pool, const internal::WorkerRequest& request, PoisonIsolation* isolation) {
  const internal::EvaluateTask& task = request.evaluate();
  internal::EvaluateResult out;
  for (int i = 0; i < task.events_size(); ++i) {
    const internal::EventToEvaluate& event = task.events(i);
    std::vector<std::string> enabled;
    internal::WorkerRequest one;
    one.set_kv_txn(request.kv_txn());
    *one.mutable_evaluate()->add_events() = event;
    *one.mutable_evaluate()->mutable_disabled_rule_ids() = task.disabled_rule_ids();
    for (const std::string& rule_id : task.enabled_rule_ids()) {
      if (isolation->Quarantined(rule_id)) {
        one.mutable_evaluate()->add_disabled_rule_ids(rule_id);
      } else {
        one.mutable_evaluate()->add_enabled_rule_ids(rule_id);
        enabled.push_back(rule_id);
      }
    }
    absl::StatusOr<LiveResponse> answer =
        pool->DispatchLive(one, EvaluationCalls(1, enabled.size()), nullptr, -1,
                           /*retry_after_crash=*/false);
    if (answer.ok() && answer->response.evaluated().results_size() == 1) {
      *out.add_results() = answer->response.evaluated().results(0);
      out.mutable_rule_stats()->MergeFrom(answer->response.evaluated().rule_stats());
      continue;
    }
    if (!answer.ok() && WorkerFailureOf(answer.status()) == WorkerFailureKind::kNone) {
      return answer.status();
    }
    internal::EventResult* merged = out.add_results();
    for (const std::string& rule_id : enabled) {
      if (isolation->Quarantined(rule_id)) continue;
      internal::WorkerRequest alone;
      alone.set_kv_txn(request.kv_txn());
      *alone.mutable_evaluate()->add_events() = event;
      alone.mutable_evaluate()->add_enabled_rule_ids(rule_id);
      *alone.mutable_evaluate()->mutable_disabled_rule_ids() = task.disabled_rule_ids();
      for (const std::string& other : task.enabled_rule_ids()) {
        if (other != rule_id) alone.mutable_evaluate()->add_disabled_rule_ids(other);
      }
      absl::StatusOr<LiveResponse> single = pool->DispatchLive(alone, EvaluationCalls(1, 1));
      if (single.ok() && single->response.evaluated().results_size() == 1) {
        const internal::EventResult& r = single->response.evaluated().results(0);
        for (const internal::RuleMatch& m : r.matches()) *merged->add_matches() = m;
        for (const internal::RuleErrorResult& e : r.errors()) *merged->add_errors() = e;
        merged->set_rules_evaluated(merged->rules_evaluated() + r.rules_evaluated());
        out.mutable_rule_stats()->MergeFrom(single->response.evaluated().rule_stats());
        continue;
      }
      if (single.ok()) {
        return absl::InternalError(absl::StrCat("a worker answered ",
                                                single->response.evaluated().results_size(),
                                                " results for 1 event"));
      }
      if (WorkerFailureOf(single.status()) == WorkerFailureKind::kNone) return single.status();
      isolation->RecordFailure(i, rule_id, single.status(), merged);
    }
  }
  return out;
}

// Evaluates `request` in one live worker; a batch that ended its workers is
// narrowed down event by event and rule by rule (EvaluateIsolatingPoison).
// `overlay`, when given, is merged into `request` (see
// WorkerPool::DispatchLive).
absl::StatusOr<internal::EvaluateResult> EvaluateInOneWorker(
    WorkerPool* pool, const internal::WorkerRequest& request, size_t events, size_t rule_count,
    PoisonIsolation* isolation, const internal::WorkerRequest* overlay = nullptr,
    int preferred_worker = -1) {
  absl::StatusOr<LiveResponse> answer =
      pool->DispatchLive(request, EvaluationCalls(events, rule_count), overlay, preferred_worker);
  if (answer.ok()) return std::move(*answer->response.mutable_evaluated());
  if (WorkerFailureOf(answer.status()) == WorkerFailureKind::kNone) return answer.status();
  if (overlay == nullptr) return EvaluateIsolatingPoison(pool, request, isolation);
  internal::WorkerRequest merged = request;
  merged.MergeFrom(*overlay);
  return EvaluateIsolatingPoison(pool, merged, isolation);
}

// Evaluates the batch with its enabled rules split into `parts` groups, each
// group over every event in its own live worker, concurrently; the results of
// each event are merged. Every rule still sees the events in batch order, so
// the outcome does not depend on the number of workers (only rules that share
// cache keys across rules could observe the concurrency). `events` holds the
// batch's events and `rules` its rule lists; each part sends `events` with
// its own rule lists as an overlay, so the events are not copied.
absl::StatusOr<internal::EvaluateResult> EvaluateSplitByRule(
    WorkerPool* pool, const internal::WorkerRequest& events, const internal::EvaluateTask& rules,
    size_t count, int parts, uint64_t kv_txn, PoisonIsolation* isolation) {
  std::vector<internal::WorkerRequest> requests(parts);
  for (int p = 0; p < parts; ++p) {
    requests[p].set_kv_txn(kv_txn);
    internal::EvaluateTask* part = requests[p].mutable_evaluate();
    *part->mutable_disabled_rule_ids() = rules.disabled_rule_ids();
    for (int i = 0; i < rules.enabled_rule_ids_size(); ++i) {
      if (i % parts == p) {
        part->add_enabled_rule_ids(rules.enabled_rule_ids(i));
      } else {
        part->add_disabled_rule_ids(rules.enabled_rule_ids(i));
      }
    }
  }
  std::vector<absl::StatusOr<internal::EvaluateResult>> answers(
      parts, absl::UnknownError("not evaluated"));
  std::vector<std::thread> helpers;
  // Part p goes to worker p when it is free, so a rule's detection-cache
  // items stay in one worker's cache from batch to batch.
  for (int p = 1; p < parts; ++p) {
    helpers.emplace_back([&, p] {
      answers[p] =
          EvaluateInOneWorker(pool, events, count, requests[p].evaluate().enabled_rule_ids_size(),
                              isolation, &requests[p], /*preferred_worker=*/p);
    });
  }
  answers[0] =
      EvaluateInOneWorker(pool, events, count, requests[0].evaluate().enabled_rule_ids_size(),
                          isolation, &requests[0], /*preferred_worker=*/0);
  for (std::thread& t : helpers) t.join();
  internal::EvaluateResult merged;
  for (int p = 0; p < parts; ++p) {
    if (!answers[p].ok()) return answers[p].status();
    if (answers[p]->results_size() != static_cast<int>(count)) {
      return absl::InternalError(absl::StrCat("a worker answered ", answers[p]->results_size(),
                                              " results for ", count, " events"));
    }
  }
  for (int p = 0; p < parts; ++p) merged.mutable_rule_stats()->MergeFrom(answers[p]->rule_stats());
  for (size_t i = 0; i < count; ++i) {
    internal::EventResult* out = merged.add_results();
    for (int p = 0; p < parts; ++p) {
      internal::EventResult& r = *answers[p]->mutable_results(static_cast<int>(i));
      if (!r.error().empty()) out->set_error(r.error());
      out->set_rules_evaluated(out->rules_evaluated() + r.rules_evaluated());
      for (internal::RuleMatch& m : *r.mutable_matches()) *out->add_matches() = std::move(m);
      for (internal::RuleErrorResult& e : *r.mutable_errors()) *out->add_errors() = std::move(e);
    }
  }
  return merged;
}

}  // namespace

void AddWorkerResult(const internal::EventResult& result,
                     const absl::flat_hash_map<std::string, const v1::Rule*>& rules,
                     EventResult* event) {
  // Matches and errors in rule id order, whichever worker produced them.
  std::vector<const internal::RuleMatch*> matches;
  for (const internal::RuleMatch& m : result.matches()) matches.push_back(&m);
  std::sort(matches.begin(), matches.end(),
            [](const auto* a, const auto* b) { return a->rule_id() < b->rule_id(); });
  std::vector<const internal::RuleErrorResult*> errors;
  for (const internal::RuleErrorResult& e : result.errors()) errors.push_back(&e);
  std::sort(errors.begin(), errors.end(),
            [](const auto* a, const auto* b) { return a->rule_id() < b->rule_id(); });
  for (const internal::RuleMatch* match_ptr : matches) {
    const internal::RuleMatch& m = *match_ptr;
    auto rule = rules.find(m.rule_id());
    if (rule == rules.end()) continue;  // Deleted since the worker loaded it.
    RuleMatch match;
    match.rule_id = m.rule_id();
    match.rule_version = rule->second->version();
    match.dedup_period_minutes = rule->second->dedup_period_minutes();
    match.threshold = rule->second->threshold();
    match.create_alert = m.create_alert();
    match.title = m.title();
    match.dedup_string = m.dedup();
    match.severity = m.severity();
    match.description = m.description();
    match.reference = m.reference();
    match.runbook = m.runbook();
    match.destinations.assign(m.destinations().begin(), m.destinations().end());
    match.destinations_overridden = m.destinations_overridden();
    match.alert_context_json = m.alert_context_json();
    event->matches.push_back(std::move(match));
  }
  for (const internal::RuleErrorResult* error_ptr : errors) {
    const internal::RuleErrorResult& e = *error_ptr;
    auto rule = rules.find(e.rule_id());
    if (rule == rules.end()) continue;
    RuleErrorResult error;
    error.rule_id = e.rule_id();
    error.rule_version = rule->second->version();
    error.dedup_period_minutes = rule->second->dedup_period_minutes();
    error.severity = rule->second->severity();
    error.error = e.error();
    // The live set is laid out in folders of pantherd's (RuleSetManager::
    // LayOut); the alert's traceback names the user's own paths.
    error.error.set_traceback(RuleSetManager::StripLayoutPaths(error.error.traceback()));
    error.error.set_message(RuleSetManager::StripLayoutPaths(error.error.message()));
    event->errors.push_back(std::move(error));
  }
}

absl::StatusOr<IngestResult> IngestPipeline::Ingest(const v1::IngestEventsRequest& request,
                                                    const ExtraWrites& extra) {
  PANTHERD_ASSIGN_OR_RETURN(PreparedBatch batch, Prepare(request));
  return Commit(std::move(batch), extra);
}

absl::StatusOr<PreparedBatch> IngestPipeline::Prepare(const v1::IngestEventsRequest& request) {
  if (request.log_type().empty()) {
    return absl::InvalidArgumentError("log_type: is required (e.g. \"Okta.SystemLog\")");
  }
  PreparedBatch result;
  v1::IngestEventsResponse& response = result.response;
  response.set_batch_id(request.batch_id());

  NormalizeContext context;
  context.source_id = request.source_label().empty() ? "api" : request.source_label();
  context.source_label = context.source_id;
  context.parse_time = options_.now();
  context.max_event_bytes = options_.max_event_bytes;

  EngineMetrics* const metrics = options_.metrics;
  if (metrics != nullptr) metrics->events_received.Add(request.events_size());
  result.reservation.reset(new BatchReservation(this));
  BatchReservation& reservation = *result.reservation;
  const int64_t processing_seconds = absl::ToUnixSeconds(context.parse_time);
  // Every valid event, in order; `evaluated_at[i]` is its position in the
  // evaluation request, or -1 for a duplicate found here (no rule runs on
  // it: a re-sent event changes no state).
  std::vector<NormalizedEvent> normalized;
  std::vector<int> evaluated_at;
  // Each evaluated event as a poison failure names it, and its id.
  std::vector<std::string> labels;
  std::vector<std::string> event_ids;
  std::vector<absl::Time> event_times;
  internal::WorkerRequest evaluate;
  absl::flat_hash_set<std::string> in_batch;
  for (int i = 0; i < request.events_size(); ++i) {
    absl::StatusOr<NormalizedEvent> event =
        NormalizeEvent(request.events(i), request.log_type(), context);
    if (!event.ok()) {
      v1::RejectedEvent* rejected = response.add_rejected();
      rejected->set_index(i);
      rejected->set_reason(std::string(event.status().message()));
      if (metrics != nullptr) metrics->rejected(ClassifyRejection(event.status().message())).Add();
      continue;
    }
    bool duplicate = false;
    if (!event->event_id.empty()) {
      std::string key = store::Join(event->log_type, event->event_id);
      if (!in_batch.insert(key).second) {
        duplicate = true;
      } else {
        PANTHERD_ASSIGN_OR_RETURN(duplicate,
                                  alerts_->IsProcessed(event->log_type, event->event_id));
        if (!duplicate) {
          absl::MutexLock lock(&reserve_mu_);
          // Being evaluated by another batch: a duplicate of it.
          duplicate = !in_flight_.insert(key).second;
          if (!duplicate) reservation.reserved_ids_.push_back(std::move(key));
        }
      }
    }
    if (duplicate) {
      evaluated_at.push_back(-1);
      normalized.push_back(std::move(*event));
      continue;
    }
    evaluated_at.push_back(evaluate.evaluate().events_size());
    // The JSON moves into the request and back out after evaluation.
    internal::EventToEvaluate* e = evaluate.mutable_evaluate()->add_events();
    e->set_normalized_json(std::move(event->json));
    e->set_log_type(event->log_type);
    const bool has_time =
        event->event_time != absl::InfinitePast() && event->event_time != absl::InfiniteFuture();
    e->set_kv_now_seconds(options_.clock == AlertClock::kEventTime && has_time
                              ? absl::ToUnixSeconds(event->event_time)
                              : processing_seconds);
    e->set_tag(static_cast<uint32_t>(normalized.size() + 1));
    reservation.max_kv_now_ = std::max(reservation.max_kv_now_, e->kv_now_seconds());
    labels.push_back(absl::StrCat("event ", i, " (id ",
                                  event->event_id.empty() ? "none" : event->event_id, ") of batch ",
                                  request.batch_id(), " from ", context.source_label));
    event_ids.push_back(event->event_id);
    event_times.push_back(event->event_time);
    normalized.push_back(std::move(*event));
  }
  if (normalized.empty()) return result;
  const size_t to_evaluate = static_cast<size_t>(evaluate.evaluate().events_size());

  // The stored flags decide which rules run, whatever their YAML says. They
  // go in a separate overlay message (see WorkerPool::DispatchLive).
  PANTHERD_ASSIGN_OR_RETURN(std::shared_ptr<const std::vector<v1::Rule>> live,
                            rules_->LiveSnapshot());
  const std::vector<v1::Rule>& items = *live;
  absl::flat_hash_map<std::string, const v1::Rule*> rules;
  internal::WorkerRequest rule_lists;
  internal::EvaluateTask& flags = *rule_lists.mutable_evaluate();
  for (const v1::Rule& item : items) {
    if (item.type() != v1::ANALYSIS_TYPE_RULE) continue;
    rules[item.id()] = &item;
    if (item.enabled()) {
      flags.add_enabled_rule_ids(item.id());
    } else {
      flags.add_disabled_rule_ids(item.id());
    }
  }

  if (options_.kv != nullptr && to_evaluate > 0) {
    reservation.kv_txn_ = options_.kv->BeginTxn();
    rule_lists.set_kv_txn(reservation.kv_txn_);
  }

  // The events to store are compressed, in blocks (engine/event_store.h),
  // while the workers evaluate them: by the pipeline's helper thread, and by
  // this thread, which would otherwise only wait, for the blocks the helper
  // has not reached once the evaluation is done. Events older than the event
  // retention are not stored, so not compressed; neither are events without
  // a time of their own, keyed at the commit's clock (ApplyBatch does them).
  // `to_store` lists the evaluated events the blocks hold, ascending.
  std::vector<size_t> to_store;
  std::vector<std::string> store_ids;
  std::vector<EventToStore> store_inputs;
  std::vector<std::vector<size_t>> plan;
  std::vector<EncodedEventBlock> blocks;
  std::shared_ptr<HelperThread::Task> encoding;
  if (alerts_ != nullptr && alerts_->StoresEvents() && to_evaluate > 0) {
    for (size_t j = 0; j < to_evaluate; ++j) {
      const absl::Time t = event_times[j];
      if (t == absl::InfinitePast() || t == absl::InfiniteFuture()) continue;
      if (!alerts_->WouldStoreEvent(t)) continue;
      to_store.push_back(j);
    }
    store_ids.reserve(to_store.size());
    store_inputs.reserve(to_store.size());
    for (size_t j : to_store) {
      const internal::EventToEvaluate& e = evaluate.evaluate().events(static_cast<int>(j));
      store_ids.push_back(StoredEventId(event_ids[j], e.normalized_json()));
      store_inputs.push_back(EventToStore{e.log_type(), absl::ToUnixMicros(event_times[j]),
                                          store_ids.back(), e.normalized_json()});
    }
    plan = PlanEventBlocks(store_inputs);
    blocks.resize(plan.size());
    if (!plan.empty()) {
      encoding = encoder_.Submit(plan.size(), [&](size_t k) -> absl::Status {
        PANTHERD_ASSIGN_OR_RETURN(blocks[k],
                                  alerts_->EncodeStoredBlock(store_inputs, std::move(plan[k])));
        return absl::OkStatus();
      });
    }
  }
  absl::Cleanup cancel_encoding = [&encoding] {
    if (encoding != nullptr) encoding->Cancel();
  };

  // With several live workers and no other batch being evaluated, the
  // enabled rules are split between the workers. Batches evaluated at the
  // same time (other streams, pollers) each go whole to one worker instead:
  // splitting them would make every worker parse every event of both.
  // A small batch is not split either: two workers parsing every event of it
  // cost more than its rules. A batch evaluated alone prefers worker 0, so
  // that one stream's rules keep their detection-cache items in one worker.
  internal::EvaluateResult evaluated;
  if (to_evaluate > 0) {
    const int evaluating = evaluating_.fetch_add(1) + 1;
    const int parts = evaluating > 1 || to_evaluate < kMinEventsToSplit
                          ? 1
                          : std::min(pool_->workers(), flags.enabled_rule_ids_size());
    PoisonIsolation isolation(std::move(labels), std::move(event_ids), &poison_, rules_, &options_);
    absl::StatusOr<internal::EvaluateResult> answer =
        parts > 1 ? EvaluateSplitByRule(pool_, evaluate, flags, to_evaluate, parts,
                                        reservation.kv_txn_, &isolation)
                  : EvaluateInOneWorker(pool_, evaluate, to_evaluate, rules.size(), &isolation,
                                        &rule_lists, evaluating > 1 ? -1 : 0);
    evaluating_.fetch_sub(1);
    if (!answer.ok()) {
      return absl::UnavailableError(absl::StrCat("the batch could not be evaluated (",
                                                 answer.status().message(),
                                                 "); nothing was stored, re-send it"));
    }
    evaluated = std::move(*answer);
  }
  if (encoding != nullptr) {
    std::move(cancel_encoding).Cancel();
    PANTHERD_RETURN_IF_ERROR(encoding->Finish());
  }
  if (metrics != nullptr) metrics->AddRuleStats(evaluated.rule_stats());
  if (evaluated.results_size() != static_cast<int>(to_evaluate)) {
    return absl::InternalError(absl::StrCat("a worker answered ", evaluated.results_size(),
                                            " results for ", to_evaluate, " events"));
  }

  std::vector<EventResult>& events = result.events;
  events.reserve(normalized.size());
  const internal::EventResult no_result;
  for (size_t i = 0; i < normalized.size(); ++i) {
    NormalizedEvent& n = normalized[i];
    if (evaluated_at[i] < 0) {
      EventResult duplicate;
      duplicate.event_id = n.event_id;
      duplicate.id_check = IdCheck::kDuplicate;
      duplicate.log_type = n.log_type;
      duplicate.event_time = n.event_time;
      events.push_back(std::move(duplicate));
      continue;
    }
    const int at = evaluated_at[i];
    const internal::EventResult& r = evaluated.results(at);
    if (metrics != nullptr && !r.error().empty()) metrics->events_unevaluated.Add();
    EventResult event;
    event.event_id = n.event_id;
    if (!n.event_id.empty()) event.id_check = IdCheck::kNew;  // reserved above
    event.log_type = n.log_type;
    event.event_time = n.event_time;
    event.event_json =
        std::move(*evaluate.mutable_evaluate()->mutable_events(at)->mutable_normalized_json());
    AddWorkerResult(r, rules, &event);
    events.push_back(std::move(event));
  }
  // The blocks' members: from positions in `store_inputs` to positions in
  // `events` (one per normalised event, so evaluated event j is at the i
  // with evaluated_at[i] == j).
  if (!blocks.empty()) {
    std::vector<size_t> position(to_evaluate);
    for (size_t i = 0; i < normalized.size(); ++i) {
      if (evaluated_at[i] >= 0) position[static_cast<size_t>(evaluated_at[i])] = i;
    }
    PreparedEventBlocks& prepared = result.blocks;
    prepared.planned.reserve(to_store.size());
    for (size_t j : to_store) prepared.planned.push_back(position[j]);
    for (EncodedEventBlock& b : blocks) {
      for (size_t& m : b.members) m = prepared.planned[m];
    }
    prepared.blocks = std::move(blocks);
  }

  return result;
}

BatchReservation::~BatchReservation() {
  if (!ended_) pipeline_->Release(*this);
}

void IngestPipeline::Release(BatchReservation& r) {
  r.ended_ = true;
  if (r.kv_txn_ != 0 && options_.kv != nullptr) {
    std::vector<std::string> forget;
    options_.kv->AbortTxn(r.kv_txn_, &forget);
    if (!forget.empty()) pool_->ForgetKvKeys(forget);
  }
  if (!r.reserved_ids_.empty()) {
    absl::MutexLock lock(&reserve_mu_);
    for (const std::string& key : r.reserved_ids_) in_flight_.erase(key);
  }
}

absl::StatusOr<IngestResult> IngestPipeline::Commit(PreparedBatch batch, const ExtraWrites& extra) {
  IngestResult result;
  v1::IngestEventsResponse& response = result.response;
  response = std::move(batch.response);
  if (batch.events.empty() && !extra) return result;
  // The rules' cache writes join the batch's atomic write: staged last,
  // right before it, and visible to the workers' fetches again only once it
  // is done (engine/kv_store.h). Writes of events found to be duplicates
  // at commit are left out.
  const uint64_t txn = batch.reservation != nullptr ? batch.reservation->kv_txn_ : 0;
  bool staged = false;
  std::vector<std::string> forget;
  ExtraWrites commit_writes = [&](const BatchOutcome& outcome,
                                  store::WriteBatch& write) -> absl::Status {
    if (extra) PANTHERD_RETURN_IF_ERROR(extra(outcome, write));
    if (options_.kv == nullptr) return absl::OkStatus();
    if (batch.reservation != nullptr) {
      options_.kv->StageHighWater(batch.reservation->max_kv_now_, write);
    }
    if (txn == 0) return absl::OkStatus();
    std::vector<uint32_t> dropped;
    for (size_t i = 0; i < outcome.events.size(); ++i) {
      if (outcome.events[i] == EventStatus::kDuplicate) dropped.push_back(i + 1);
    }
    PANTHERD_RETURN_IF_ERROR(options_.kv->StageTxn(txn, dropped, write, &forget));
    staged = true;
    return absl::OkStatus();
  };
  // With `extra`, the write happens even without events (an empty page still
  // moves a poller's cursor).
  absl::StatusOr<BatchOutcome> applied =
      alerts_->ApplyBatch(batch.events, commit_writes, &batch.blocks);
  if (staged) {
    options_.kv->EndTxn(txn, applied.ok(), &forget);
    batch.reservation->kv_txn_ = 0;  // ended
  }
  if (!forget.empty()) pool_->ForgetKvKeys(forget);
  if (applied.ok() && options_.kv != nullptr && batch.reservation != nullptr) {
    options_.kv->AdvanceHighWater(batch.reservation->max_kv_now_);
  }
  if (batch.reservation != nullptr) Release(*batch.reservation);
  if (!applied.ok()) return applied.status();
  BatchOutcome& outcome = *applied;
  for (EventStatus status : outcome.events) {
    if (status == EventStatus::kDuplicate) {
      response.set_duplicates(response.duplicates() + 1);
    } else {
      response.set_accepted(response.accepted() + 1);
    }
  }
  for (const v1::AlertChange& change : outcome.changes) {
    if (!ShouldNotify(change)) continue;
    if (change.kind() == v1::AlertChange::KIND_CREATED) {
      response.set_alerts_created(response.alerts_created() + 1);
    } else if (change.kind() == v1::AlertChange::KIND_UPDATED) {
      response.set_alerts_updated(response.alerts_updated() + 1);
    }
  }
  for (v1::RuleIngestStats& rule : outcome.rules) *response.add_rules() = std::move(rule);
  if (options_.metrics != nullptr) {
    options_.metrics->events_accepted.Add(response.accepted());
    options_.metrics->events_duplicate.Add(response.duplicates());
    options_.metrics->events_stored.Add(outcome.events_stored);
    options_.metrics->event_blocks_encoded_at_commit.Add(outcome.event_blocks_encoded_at_commit);
  }
  result.changes = std::move(outcome.changes);
  return result;
}

}  // namespace pantherd::engine

// MISSING
