// The path of an ingested batch: normalise each raw event, evaluate the
// batch in a live worker, turn matches into alerts, and make all of it
// durable in one atomic write before answering.
//
//   IngestPipeline pipeline(&pool, &alerts, &rules);
//   PANTHERD_ASSIGN_OR_RETURN(IngestResult r, pipeline.Ingest(request));
//   hub.Publish(r.changes);  // only after the batch is durable
//
// Which workers evaluate a batch: batches evaluated at the same time (other
// streams, pollers) go whole to one idle worker each. A batch evaluated alone
// goes whole to worker 0 when it has fewer than 200 events (a stream of small
// batches keeps its rules' detection-cache items in one worker's cache);
// from 200 events its enabled rules are split between the workers, part p to
// worker p, each part over every event in batch order. The alerts are the
// same either way.
//
// Poison batches. When evaluating a batch ends its worker (a crash, the
// memory limit, a rule call ignoring its time limit, a broken channel
// protocol) even after the pool's retry, the batch is narrowed down: each
// event is evaluated alone, and each event that still ends its worker is
// evaluated once per rule, alone. A rule that ends its worker on an event
// gets a rule error on that event (type WorkerCrashed, WorkerOutOfMemory,
// Timeout or WorkerProtocolError; the message names the event's index in the
// batch, its id and the cause), which becomes a RULE_ERROR alert; every
// other rule's results on every event are kept, and the batch is stored and
// acknowledged as usual. A rule that does this to `quarantine.failures`
// events within `quarantine.window` is quarantined (RuleStore::Quarantine:
// disabled with the reason), gets a second rule error of type
// RuleQuarantined on the event that tipped it, is no longer evaluated for
// the rest of the batch, and on_quarantine is called. Only failures that are
// not the rules' doing (no live worker, overload, shutdown) fail the batch.
// docs/reliability.md has the whole contract.
//
// Thread-safe: batches may be ingested concurrently (the worker pool and the
// alert engine are thread-safe); each batch is all or nothing.
#ifndef PANTHERD_ENGINE_INGEST_PIPELINE_H_
#define PANTHERD_ENGINE_INGEST_PIPELINE_H_

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "engine/alert_engine.h"
#include "engine/helper_thread.h"
#include "engine/kv_store.h"
#include "engine/metrics.h"
#include "engine/quarantine.h"
#include "engine/rule_store.h"
#include "engine/worker_pool.h"
#include "pantherd/v1/sources.pb.h"
#include "proto/base/clock.h"

namespace pantherd::engine {

// Rule-function calls an evaluation of `events` by `rules` rules may make
// (its budget, WorkerPool::DispatchLive): every routed rule runs rule() and,
// on a match, up to nine more functions.
int64_t EvaluationCalls(size_t events, size_t rules);

// Adds the matches and errors of a worker's `result` to `event`, in rule id
// order, with each rule's stored metadata (version, threshold, dedup period,
// severity) from `rules`; a rule missing there (deleted since the worker
// loaded it) is left out.
void AddWorkerResult(const internal::EventResult& result,
                     const absl::flat_hash_map<std::string, const v1::Rule*>& rules,
                     EventResult* event);

struct IngestOptions {
  // Events larger than this are rejected (by index, with a reason).
  size_t max_event_bytes = 1 << 20;
  // The parse clock (p_parse_time, and p_event_time when an event has none).
  base::Clock now = base::RealClock();
  // Where the pipeline counts events (received, rejected by reason, accepted,
  // duplicate) and the workers' per-rule figures. Not owned; null counts
  // nothing.
  EngineMetrics* metrics = nullptr;
  // The caching helpers' key-value space (the same object as the worker
  // pool's WorkerPoolOptions.kv): each batch opens a transaction in it and
  // commits the rules' writes in the batch's atomic write. Not owned. Null:
  // the rules' writes are dropped.
  StoreKvBackend* kv = nullptr;
  // The clock the caching helpers run on, the same as the dedup windows':
  // each event's p_event_time (kEventTime), or `now` when the batch is
  // prepared (kProcessingTime). See EventToEvaluate.kv_now_seconds.
  AlertClock clock = AlertClock::kEventTime;
  // When a rule that keeps ending its worker is quarantined.
  QuarantinePolicy quarantine;
  // Called once a rule has been quarantined (stored), with its id and the
  // recorded quarantine, e.g. to audit and log it; may be empty. Runs on the
  // evaluating thread; must not block for long or call into the pipeline.
  std::function<void(const std::string& rule_id, const v1::RuleQuarantine& quarantine)>
      on_quarantine;
};

struct IngestResult {
  v1::IngestEventsResponse response;
  // Every alert change the batch caused, durable, in sequence order (signals
  // included: filter with ShouldNotify before notifying).
  std::vector<v1::AlertChange> changes;
};

class IngestPipeline;

// What a prepared batch holds until it commits: the event ids it reserved
// (no other batch evaluates them meanwhile) and its key-value transaction.
// Destroying it without a commit releases both: the transaction's writes
// vanish and every worker forgets the keys they touched.
class BatchReservation {
 public:
  ~BatchReservation();
  BatchReservation(const BatchReservation&) = delete;
  BatchReservation& operator=(const BatchReservation&) = delete;

 private:
  friend class IngestPipeline;
  explicit BatchReservation(IngestPipeline* pipeline) : pipeline_(pipeline) {}
  IngestPipeline* const pipeline_;
  uint64_t kv_txn_ = 0;
  // The largest EventToEvaluate.kv_now_seconds of the batch.
  int64_t max_kv_now_ = 0;
  std::vector<std::string> reserved_ids_;  // store::Join(log type, event id)
  bool ended_ = false;
};

// A batch normalised and evaluated, not stored yet (see Prepare).
struct PreparedBatch {
  // The response so far: batch id and rejected events.
  v1::IngestEventsResponse response;
  // The evaluated events, ready for AlertEngine::ApplyBatch (duplicates
  // found before evaluation included, marked IdCheck::kDuplicate).
  std::vector<EventResult> events;
  // The blocks of events to store, encoded while the batch was evaluated.
  PreparedEventBlocks blocks;
  // Released when the batch commits or is dropped.
  std::unique_ptr<BatchReservation> reservation;
};

class IngestPipeline {
 public:
  // None of the pointers is owned; all must outlive the pipeline.
  IngestPipeline(WorkerPool* pool, AlertEngine* alerts, RuleStore* rules,
                 IngestOptions options = {})
      : pool_(pool), alerts_(alerts), rules_(rules), options_(std::move(options)) {}

  // Ingests one batch. Invalid events (not JSON, not an object, too large,
  // unknown log type) are rejected by index in the response; the rest is
  // evaluated and stored. Errors (nothing of the batch was stored; the client
  // may re-send it, duplicates are skipped): InvalidArgument for a batch
  // without log type; Unavailable when no worker could evaluate it; those of
  // the store.
  //
  // `extra`, when set, adds writes to the batch's atomic write (see
  // engine::ExtraWrites): a poller's cursor lands with the effects of the
  // events it covers, or neither does. With `extra`, the write happens even
  // when no event survives normalisation (an empty page still moves the
  // cursor).
  absl::StatusOr<IngestResult> Ingest(const v1::IngestEventsRequest& request,
                                      const ExtraWrites& extra = nullptr);

  // Ingest in two steps, so that a caller can evaluate batches concurrently
  // and serialise only the commits (and what must follow them in commit
  // order, such as publishing the changes): Ingest(r, x) is
  // Commit(Prepare(r), x). Prepare normalises, recognises events already
  // processed (or being evaluated by another batch, or repeated in this
  // one) as duplicates before any rule runs on them, reserves the ids of
  // the others, evaluates them and meanwhile compresses the events to store
  // (AlertEngine::EncodeStoredEvent, on the pipeline's helper thread and this
  // one: engine/helper_thread.h); it writes nothing of the batch (the
  // rules' cache writes are held in the batch's key-value transaction; the
  // one write it may make is a log type's new compression dictionary,
  // engine/event_codec.h). Its errors are Ingest's. Commit makes the batch durable in one atomic
  // write (windows, alerts, alert log, processed ids and the rules' cache writes) and fills the
  // response; its errors are the store's (nothing of the batch was stored).
  absl::StatusOr<PreparedBatch> Prepare(const v1::IngestEventsRequest& request);
  absl::StatusOr<IngestResult> Commit(PreparedBatch batch, const ExtraWrites& extra = nullptr);

 private:
  friend class BatchReservation;
  // Ends `r`: drops its transaction unless committed and releases its ids.
  void Release(BatchReservation& r) ABSL_LOCKS_EXCLUDED(reserve_mu_);

  WorkerPool* pool_;
  // Batches between the start and the end of their evaluation.
  std::atomic<int> evaluating_{0};
  // Event ids (store::Join(log type, id)) of prepared batches not yet
  // committed or dropped.
  absl::Mutex reserve_mu_;
  absl::flat_hash_set<std::string> in_flight_ ABSL_GUARDED_BY(reserve_mu_);
  AlertEngine* alerts_;
  RuleStore* rules_;
  IngestOptions options_;
  // Poison failures per rule, for the quarantine policy.
  PoisonTracker poison_{options_.quarantine};
  // Compresses the events to store while their batch is evaluated (Prepare).
  HelperThread encoder_;
};

}  // namespace pantherd::engine

#endif  // PANTHERD_ENGINE_INGEST_PIPELINE_H_
