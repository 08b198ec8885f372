#include "engine/replay.h"

#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <memory>
#include <set>
#include <thread>
#include <utility>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "engine/alert_engine.h"
#include "engine/analysis_spec.h"
#include "engine/event_store.h"
#include "engine/ingest_pipeline.h"
#include "google/protobuf/util/time_util.h"
#include "proto/base/status_macros.h"

namespace pantherd::engine {
namespace {

using google::protobuf::util::TimeUtil;

google::protobuf::Timestamp ToProto(absl::Time t) {
  return TimeUtil::MicrosecondsToTimestamp(absl::ToUnixMicros(t));
}

// One stored event of the batch being replayed.
struct ReplayEvent {
  std::string id;  // "#<hex>" for an event without one
  absl::Time time;
  std::string json;
};

// The replay of one set: its worker, the rules still replayed, and the
// narrowing down of batches that end the worker.
class Replayer {
 public:
  Replayer(const RuleSetManager::ReplaySet& set, IsolatedWorker* worker,
           v1::ReplayRulesResponse* out)
      : worker_(worker), out_(out) {
    for (const v1::Rule& r : set.rules) {
      rules_[r.id()] = &r;
      active_.push_back(r.id());
    }
  }

  // The results of `events` as the alert engine takes them.
  absl::StatusOr<std::vector<EventResult>> Evaluate(const std::vector<ReplayEvent>& events,
                                                    const std::string& log_type) {
    std::vector<internal::EventResult> evaluated(events.size());
    if (!active_.empty() && !events.empty()) {
      absl::StatusOr<internal::EvaluateResult> batch = Run(events, 0, events.size(), active_);
      if (batch.ok()) {
        for (size_t i = 0; i < events.size(); ++i) {
          evaluated[i].Swap(batch->mutable_results(static_cast<int>(i)));
        }
      } else if (WorkerFailureOf(batch.status()) == WorkerFailureKind::kNone) {
        return batch.status();
      } else {
        for (size_t i = 0; i < events.size(); ++i) {
          PANTHERD_RETURN_IF_ERROR(EvaluateAlone(events, i, &evaluated[i]));
        }
      }
    }
    std::vector<EventResult> results(events.size());
    for (size_t i = 0; i < events.size(); ++i) {
      EventResult& r = results[i];
      if (events[i].id.empty() || events[i].id[0] != '#') r.event_id = events[i].id;
      r.log_type = log_type;
      r.event_time = events[i].time;
      r.event_json = events[i].json;
      AddWorkerResult(evaluated[i], rules_, &r);
    }
    return results;
  }

 private:
  // Evaluates events [begin, end) with only `rule_ids` running.
  absl::StatusOr<internal::EvaluateResult> Run(const std::vector<ReplayEvent>& events, size_t begin,
                                               size_t end,
                                               const std::vector<std::string>& rule_ids) {
    internal::WorkerRequest request;
    internal::EvaluateTask& task = *request.mutable_evaluate();
    const std::set<std::string> running(rule_ids.begin(), rule_ids.end());
    for (const auto& [id, rule] : rules_) {
      if (running.count(id) > 0) {
        task.add_enabled_rule_ids(id);
      } else {
        task.add_disabled_rule_ids(id);
      }
    }
    for (size_t i = begin; i < end; ++i) {
      internal::EventToEvaluate* e = task.add_events();
      e->set_normalized_json(events[i].json);
      e->set_kv_now_seconds(absl::ToUnixSeconds(events[i].time));
      e->set_tag(static_cast<uint32_t>(i - begin + 1));
    }
    PANTHERD_ASSIGN_OR_RETURN(
        internal::WorkerResponse response,
        worker_->Exchange(request, EvaluationCalls(end - begin, rule_ids.size())));
    if (!response.has_evaluated() ||
        response.evaluated().results_size() != static_cast<int>(end - begin)) {
      return absl::InternalError("the replay's worker answered a different number of results");
    }
    return std::move(*response.mutable_evaluated());
  }

  // Evaluates event `i` alone; when that ends the worker too, each rule
  // alone, and the rule that ends it gets a rule error.
  absl::Status EvaluateAlone(const std::vector<ReplayEvent>& events, size_t i,
                             internal::EventResult* out) {
    if (active_.empty()) return absl::OkStatus();
    absl::StatusOr<internal::EvaluateResult> one = Run(events, i, i + 1, active_);
    if (one.ok()) {
      out->Swap(one->mutable_results(0));
      return absl::OkStatus();
    }
    if (WorkerFailureOf(one.status()) == WorkerFailureKind::kNone) return one.status();
    const std::vector<std::string> rules = active_;
    for (const std::string& rule_id : rules) {
      absl::StatusOr<internal::EvaluateResult> alone = Run(events, i, i + 1, {rule_id});
      if (alone.ok()) {
        internal::EventResult& r = *alone->mutable_results(0);
        for (internal::RuleMatch& m : *r.mutable_matches()) out->add_matches()->Swap(&m);
        for (internal::RuleErrorResult& e : *r.mutable_errors()) out->add_errors()->Swap(&e);
        continue;
      }
      const WorkerFailureKind kind = WorkerFailureOf(alone.status());
      if (kind == WorkerFailureKind::kNone) return alone.status();
      internal::RuleErrorResult* error = out->add_errors();
      error->set_rule_id(rule_id);
      error->mutable_error()->set_type(WorkerFailureType(kind));
      error->mutable_error()->set_message(
          absl::StrCat("event ", events[i].id, " at ", absl::FormatTime(events[i].time),
                       " ended the replay's worker: ", alone.status().message()));
      if (++failures_[rule_id] >= kReplayFailureLimit) {
        active_.erase(std::remove(active_.begin(), active_.end(), rule_id), active_.end());
        v1::Diagnostic* d = out_->add_invalid();
        d->set_file(rule_id);
        d->set_message(absl::StrCat("rule ", rule_id, " ended the replay's worker on ",
                                    kReplayFailureLimit,
                                    " events and was not replayed over the rest (live ingestion "
                                    "would quarantine it)"));
      }
    }
    return absl::OkStatus();
  }

  IsolatedWorker* const worker_;
  v1::ReplayRulesResponse* const out_;
  absl::flat_hash_map<std::string, const v1::Rule*> rules_;
  std::vector<std::string> active_;  // the rules still replayed
  std::map<std::string, int> failures_;
};

// The replay itself, on the calling thread.
absl::StatusOr<v1::ReplayRulesResponse> RunReplayHere(const RuleSetManager::ReplaySet& set,
                                                      const ReplayOptions& options,
                                                      const ReplayProgressFn& progress);

}  // namespace

absl::StatusOr<v1::ReplayRulesResponse> RunReplay(const RuleSetManager::ReplaySet& set,
                                                  const ReplayOptions& options,
                                                  const ReplayProgressFn& progress) {
  // pantherd's side of the replay (reading events, the scratch store) runs
  // on a thread of its own at the worker's niceness, so that it too yields
  // to live ingestion; the caller's thread waits for it.
  absl::StatusOr<v1::ReplayRulesResponse> result = absl::UnknownError("the replay did not run");
  std::thread replay([&] {
    if (options.nice > 0) {
      (void)setpriority(PRIO_PROCESS, static_cast<id_t>(syscall(SYS_gettid)), options.nice);
    }
    result = RunReplayHere(set, options, progress);
  });
  replay.join();
  return result;
}

namespace {

absl::StatusOr<v1::ReplayRulesResponse> RunReplayHere(const RuleSetManager::ReplaySet& set,
                                                      const ReplayOptions& options,
                                                      const ReplayProgressFn& progress) {
  if (options.events == nullptr || options.pool == nullptr || options.scratch_dir.empty()) {
    return absl::InvalidArgumentError("a replay needs an event store, a pool and a scratch dir");
  }
  if (options.since >= options.until || options.since == absl::InfinitePast() ||
      options.until == absl::InfiniteFuture()) {
    return absl::InvalidArgumentError("since: must be a time before until");
  }
  if (set.rules.empty()) return absl::InvalidArgumentError("no rules to replay");
  v1::ReplayRulesResponse out;
  *out.mutable_since() = ToProto(options.since);
  *out.mutable_until() = ToProto(options.until);
  for (const v1::Diagnostic& d : set.invalid) *out.add_invalid() = d;

  PANTHERD_ASSIGN_OR_RETURN(std::unique_ptr<IsolatedWorker> worker,
                            options.pool->StartIsolated(set.files, options.nice));
  for (v1::Diagnostic d : worker->loaded().diagnostics()) {
    if (absl::StartsWith(d.message(), kWarningPrefix)) continue;
    RuleSetManager::StripLayoutPaths(&d);
    *out.add_invalid() = std::move(d);
  }

  // Windows and alerts in a store of the replay's own.
  store::StoreOptions store_options;
  store_options.sync_writes = false;
  store_options.write_ahead_log = false;  // deleted afterwards: no log, no disk I/O
  PANTHERD_ASSIGN_OR_RETURN(std::unique_ptr<store::Store> scratch,
                            store::Store::Open(options.scratch_dir, store_options));
  auto remove_scratch = absl::MakeCleanup([&] {
    (void)scratch->Close();
    scratch.reset();
    std::error_code ec;
    std::filesystem::remove_all(options.scratch_dir, ec);
  });
  AlertEngineOptions alert_options;
  alert_options.now = options.now;
  alert_options.clock = AlertClock::kEventTime;
  AlertEngine engine(scratch.get(), alert_options);

  Replayer replayer(set, worker.get(), &out);
  std::map<std::string, v1::ReplayRuleStats> stats;
  for (const v1::Rule& r : set.rules) stats[r.id()].set_rule_id(r.id());
  v1::ReplayProgress figures;
  const absl::Time started = absl::Now();
  absl::Time last_report = started;
  const size_t batch_size = static_cast<size_t>(std::max(1, options.batch_events));
  absl::Time cursor = options.since;
  for (;;) {
    if (options.cancelled != nullptr && options.cancelled->load()) {
      return absl::CancelledError("the replay was cancelled");
    }
    // The next batch: whole microseconds, so that the next scan starts
    // exactly after it.
    std::vector<ReplayEvent> batch;
    absl::Time next = options.until;
    bool more = false;
    PANTHERD_RETURN_IF_ERROR(ScanEvents(
        *options.events, options.log_type, cursor, options.until, [&](const StoredEvent& e) {
          if (batch.size() >= batch_size && e.event_time != batch.back().time) {
            next = e.event_time;
            more = true;
            return false;
          }
          batch.push_back({std::string(e.id), e.event_time, std::string(e.json)});
          return true;
        }));
    PANTHERD_ASSIGN_OR_RETURN(std::vector<EventResult> results,
                              replayer.Evaluate(batch, options.log_type));
    for (const EventResult& r : results) {
      for (const RuleMatch& m : r.matches) {
        v1::ReplayRuleStats& st = stats[m.rule_id];
        st.set_matches(st.matches() + 1);
        figures.set_matches(figures.matches() + 1);
      }
      for (const RuleErrorResult& e : r.errors) {
        v1::ReplayRuleStats& st = stats[e.rule_id];
        st.set_errors(st.errors() + 1);
        figures.set_errors(figures.errors() + 1);
      }
    }
    if (!results.empty()) {
      PANTHERD_ASSIGN_OR_RETURN(BatchOutcome outcome, engine.ApplyBatch(results));
      for (const v1::RuleIngestStats& r : outcome.rules) {
        figures.set_alerts(figures.alerts() + r.alerts_created());
      }  // signals are not counted as alerts
    }
    figures.set_events(figures.events() + static_cast<int64_t>(batch.size()));
    cursor = next;
    const absl::Time now = absl::Now();
    if (more && progress && now - last_report >= options.progress_interval) {
      last_report = now;
      *figures.mutable_reached() = ToProto(cursor);
      figures.set_fraction(
          absl::FDivDuration(cursor - options.since, options.until - options.since));
      const double seconds = absl::ToDoubleSeconds(now - started);
      figures.set_events_per_second(seconds > 0 ? figures.events() / seconds : 0);
      if (!progress(figures)) return absl::CancelledError("the replay's caller stopped reading");
    }
    if (!more) break;
  }
  const double seconds = absl::ToDoubleSeconds(absl::Now() - started);
  out.set_events(figures.events());
  out.set_events_per_second(seconds > 0 ? figures.events() / seconds : 0);
  out.set_worker_restarts(worker->restarts());

  // Every alert counted per rule; the newest listed.
  v1::ListAlertsRequest list;
  list.mutable_page()->set_page_size(1000);
  for (;;) {
    PANTHERD_ASSIGN_OR_RETURN(v1::ListAlertsResponse page, engine.ListAlerts(list));
    for (v1::Alert& a : *page.mutable_alerts()) {
      out.set_alerts_total(out.alerts_total() + 1);
      const bool signal = a.type() == v1::ALERT_TYPE_SIGNAL;
      if (signal) out.set_signals_total(out.signals_total() + 1);
      auto st = stats.find(a.rule_id());
      if (st != stats.end()) {
        signal ? st->second.set_signals(st->second.signals() + 1)
               : st->second.set_alerts(st->second.alerts() + 1);
      }
      if (out.alerts_size() < kReplayMaxListedAlerts) out.add_alerts()->Swap(&a);
    }
    if (page.next_page_token().empty()) break;
    list.mutable_page()->set_page_token(page.next_page_token());
  }
  for (auto& [id, st] : stats) *out.add_rules() = std::move(st);
  return out;
}

}  // namespace

}  // namespace pantherd::engine
