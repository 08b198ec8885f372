// File: engine/alert_engine.h
//
// AlertEngine turns rule matches into alerts, durably: dedup and threshold
// windows, alert records, the sequenced alert log that StreamAlerts replays,
// and the processed-event ids that make ingestion idempotent. Everything one
// ingested batch causes is written in ONE atomic store write; only after it
// succeeds does the caller receive the changes (to broadcast them).
//
//   AlertEngine engine(store.get(), {});
//   PANTHERD_ASSIGN_OR_RETURN(BatchOutcome out, engine.ApplyBatch(results));
//   for (const v1::AlertChange& c : out.changes) if (ShouldNotify(c)) bus.Publish(c);
//
// SEMANTICS (Panther's dedup/threshold behaviour, on event time by default)
//
// Grouping. Matches are grouped per (rule id, dedup string) into windows.
// Rule errors are grouped per (rule id, exception type) in a separate key
// space (type ALERT_TYPE_RULE_ERROR, threshold 1, never counted toward the
// rule's own windows). Matches of rules with CreateAlert: false are grouped
// per (rule id, dedup string) in a third key space, threshold 1, producing
// records of type ALERT_TYPE_SIGNAL: stored and sequenced like alerts, but
// ShouldNotify() is false for them.
//
// Clock. Each match has a time t: its event time (p_event_time, truncated to
// microseconds) with AlertClock::kEventTime (the default), so a replay or a
// backfill groups exactly as live traffic did; or the engine's clock at
// ApplyBatch with AlertClock::kProcessingTime (Panther's behaviour). An event
// time of absl::InfinitePast()/InfiniteFuture() falls back to the engine's
// clock.
//
// Windows. A window is a half-open interval [start, end) of the clock; windows
// of one group never overlap. A match at time t, in this order:
//   1. joins the window that contains t, if any;
//   2. else, if the next window after t (the earliest one starting after t)
//      can move its start back to t and still cover every match it counted
//      (its latest match's time < t + its period), that window's start moves
//      back to t (its end becomes min(t + period, its old end)) and the match
//      joins it;
//   3. else opens a new window [t, t + period), cut short at the start of the
//      next window if that comes earlier.
// So, with matches in time order: the first match opens a window lasting
// DedupPeriodMinutes; every match before its end joins it; the first match at
// or after its end opens a new one (Panther: 10:07 opens, 11:06 joins, 11:07
// opens a new window with a 60 min period). Rule 1 lets a late event join the
// (still retained) window its time belongs to, even after later windows
// opened, updating that window's alert; rule 2 makes the outcome independent
// of arrival order for any set of matches that all lie within one period of
// the earliest of them (reordering within a window's span is harmless). It is
// not fully independent beyond that: windows are never split or merged after
// the fact, so a late match older than one period before a window's newest
// match opens its own (possibly shortened) window (rule 3).
//
// Threshold and alerts. A window counts its matches. When the count reaches
// the Threshold of the match being counted (1 for errors and signals), the
// alert is created (one KIND_CREATED change) from the window's first match
// in arrival order: title (rule id when empty), severity, dedup string,
// description, reference, runbook, destinations, alert context, rule
// version. Later matches of the window update event_count (all matches of the
// window, including those before the threshold), first/last_event_time
// (min/max of the events' p_event_time, whatever the clock), log_types
// (union of the events' log types), updated_time (the engine clock),
// window_start/end, and append to matched_events up to max_sample_events
// and within the byte caps of AlertEngineOptions (KIND_UPDATED); title, severity and context stay
// those of the first match. A window whose end passes below its threshold never produces an alert
// and its count never carries over. Triage (UpdateAlert) never resets a window: later matches keep
// updating a resolved alert. Triage sets updated_time (the time of the UpdateAlert) and
// leaves last_event_time alone: updated_time is the alert's last change of any kind,
// last_event_time its newest matched event. Within one ApplyBatch, all changes to one alert
// coalesce into one change (CREATED if it was created in the batch, else UPDATED) carrying its
// state after the batch.
//
// Alert ids are the first 32 hex digits of SHA-256 over (type, rule id, dedup
// string, window start in microseconds when the alert is created): the same
// matches in the same order always give the same ids.
//
// Duplicates. An event with a non-empty event_id whose (log_type, event_id)
// was processed within processed_retention (by the engine clock), or that
// appears earlier in the same batch, is EventStatus::kDuplicate and is
// skipped entirely (no window, alert or count changes). Events with an empty
// id are never duplicates.
//
// Expiry. PurgeExpired deletes processed ids past their expiry, windows not
// touched for max(window_retention, their period) (with the processing clock
// only once they ended too), and alert-log entries recorded more than
// alert_log_retention ago. With the processing clock a below-threshold window
// is also deleted when the next window of its group opens; with event time it
// is kept until purged, so late events can still join it.
//
// STORAGE (docs/storage.md; one WriteBatch per ApplyBatch/UpdateAlert)
//   dedup      rule_id \0 <k><hex32(sha256(dedup))> \0 i64(anchor µs)
//              -> v1::DedupWindow; k = 'r' rule, 'e' rule error, 's' signal;
//              anchor = time of the match that opened the window (fixed).
//   alerts     <alert id> -> v1::Alert (with matched_events and history);
//              "t\0" i64(created µs) <alert id> -> "" (newest-first index).
//   alert_log  be64(sequence) -> v1::AlertChange (counter "alert_seq"; the
//              alert omits matched_events except on KIND_CREATED).
//   processed  log_type \0 event_id -> be64(expiry, unix seconds) followed by
//              i64(the event's store-key time, unix µs) (engine/event_store.h,
//              ProcessedRecord; records written before hold the expiry only).
//
// THREAD-SAFETY. All methods may be called from any thread. ApplyBatch,
// UpdateAlert and the deleting part of PurgeExpired serialise on one internal
// mutex: window, alert and processed-id read-modify-writes must not
// interleave, and the alert log must commit in sequence order; each call
// costs one synced write, so callers should batch events. Readers (GetAlert,
// ListAlerts, ReadChangesAfter, the sequence queries) take no lock and see
// only committed writes.
#ifndef PANTHERD_ENGINE_ALERT_ENGINE_H_
#define PANTHERD_ENGINE_ALERT_ENGINE_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "engine/alert_publisher.h"
#include "engine/event_codec.h"
#include "engine/event_store.h"
#include "pantherd/v1/alerts.pb.h"
#include "pantherd/v1/sources.pb.h"
#include "proto/base/clock.h"
#include "store/store.h"

namespace pantherd::engine {

// The name of the store sequence counter that numbers alert changes.
inline constexpr absl::string_view kAlertSequenceName = "alert_seq";

// Which clock dedup windows run on.
enum class AlertClock {
  kEventTime,       // the event's p_event_time (default)
  kProcessingTime,  // the engine clock at ApplyBatch (Panther's behaviour)
};

struct AlertEngineOptions {
  AlertClock clock = AlertClock::kEventTime;
  // The server clock: processing time, creation/update times, expiries.
  base::Clock now = base::RealClock();
  // How long a processed event id makes re-sends duplicates.
  absl::Duration processed_retention = absl::Hours(7 * 24);
  // How long an untouched window is kept (at least its period).
  absl::Duration window_retention = absl::Hours(7 * 24);
  // How long alert-log entries are kept for stream resume.
  absl::Duration alert_log_retention = absl::Hours(30 * 24);
  // How many matched events an alert keeps (the first N). Values < 1 mean 1.
  int max_sample_events = 10;
  // BYTE CAPS (issue 14, row 4). A stored sample event (each
  // MatchedEvent.json and Alert.sample_event_json) larger than this is cut to
  // it, at a UTF-8 boundary, and marked (truncated / original_bytes). Values
  // < 1 mean 1.
  int64_t max_sample_event_bytes = int64_t{64} << 10;
  // The json of all MatchedEvents of one alert together stays within this;
  // an event that would exceed it is counted (event_count,
  // samples_not_stored) but not stored. The first event is always stored
  // (cut to max_sample_event_bytes).
  int64_t max_sample_bytes_per_alert = int64_t{256} << 10;
  // ListAlerts and ListAlertEvents end a page early, with a next_page_token,
  // when the next item would take the reply above this many bytes (a page
  // always holds at least one item).
  int64_t max_list_reply_bytes = int64_t{4} << 20;
  // An UpdateAlert comment longer than this is refused (InvalidArgument).
  int64_t max_comment_bytes = int64_t{16} << 10;
  // An alert's triage history stays within this many bytes: the oldest
  // entries are removed (counted in history_entries_dropped); the newest is
  // always kept.
  int64_t max_history_bytes = int64_t{64} << 10;
  // ListAlerts with count_remaining reads at most this many alerts past the
  // page; beyond, remaining_count is a lower bound.
  int64_t max_alerts_counted = 10000;
  // The event store (engine/event_store.h): processed events whose event
  // time is within this of the engine clock are stored in the batch's write,
  // and indexed under the windows they were counted into; PurgeExpired
  // deletes older ones. Zero (the default here; the server keeps 30 days)
  // stores none.
  absl::Duration event_retention = absl::ZeroDuration();
};

// One rule that returned True for an event, with its generated fields
// (already defaulted by the producer: title()/dedup() defaults, YAML values).
struct RuleMatch {
  std::string rule_id;  // must satisfy store::ValidateKeyPart
  int64_t rule_version = 0;
  int64_t dedup_period_minutes = 60;  // <= 0 means 60
  int64_t threshold = 1;              // <= 0 means 1
  bool create_alert = true;           // false: a signal
  std::string title;                  // empty: the rule id
  std::string dedup_string;
  v1::Severity severity = v1::SEVERITY_INFO;
  std::string description;
  std::string reference;
  std::string runbook;
  std::vector<std::string> destinations;
  bool destinations_overridden = false;
  std::string alert_context_json;  // a JSON object, or empty
};

// One rule that raised (or returned a non-bool) on an event.
struct RuleErrorResult {
  std::string rule_id;  // must satisfy store::ValidateKeyPart
  int64_t rule_version = 0;
  int64_t dedup_period_minutes = 60;  // the rule's; <= 0 means 60
  v1::Severity severity = v1::SEVERITY_INFO;
  v1::RuleError error;  // error.type is the dedup string
};

// Whether an event's id was already checked against the processed ids.
enum class IdCheck {
  kUnchecked,  // ApplyBatch checks it
  kNew,        // checked and reserved by the caller: ApplyBatch records it
  kDuplicate,  // already processed: ApplyBatch skips it as a duplicate
};

// Everything the rules produced for one event.
struct EventResult {
  std::string event_id;  // Okta's uuid; empty: never a duplicate
  IdCheck id_check = IdCheck::kUnchecked;
  std::string log_type;  // must satisfy store::ValidateKeyPart when event_id is set
  absl::Time event_time = absl::InfinitePast();  // p_event_time
  std::string event_json;                        // the normalised event
  std::vector<RuleMatch> matches;
  std::vector<RuleErrorResult> errors;
};

enum class EventStatus {
  kProcessed,  // counted (it may have matched nothing)
  kDuplicate,  // already processed: acknowledged, skipped
};

// A batch's event blocks, encoded ahead of ApplyBatch.
struct PreparedEventBlocks {
  // The indices (into ApplyBatch's `events`, ascending) of the events the
  // blocks hold; the blocks' members index `events` too.
  std::vector<size_t> planned;
  std::vector<EncodedEventBlock> blocks;
};

struct BatchOutcome {
  // One per input event, in input order.
  std::vector<EventStatus> events;
  // Events written to the event store, and of its blocks those compressed
  // under the engine lock (the prepared blocks did not fit, see ApplyBatch).
  int64_t events_stored = 0;
  int64_t event_blocks_encoded_at_commit = 0;
  // The changes the batch committed, in strictly increasing sequence order,
  // exactly as recorded in the alert log.
  std::vector<v1::AlertChange> changes;
  // Per rule with a match or an error on a processed (not duplicate) event of
  // the batch, ordered by rule id: matches, errors, alerts (and signals)
  // created and updated, and the rule's ALERT_TYPE_RULE windows the batch
  // counted into, in their state after it (at most kMaxReportedWindows per
  // rule; a window that expired below its threshold is not listed).
  std::vector<v1::RuleIngestStats> rules;
};

// The most windows BatchOutcome.rules lists per rule.
inline constexpr int kMaxReportedWindows = 100;

// Whether a change is to be notified (broadcast to destinations): false for
// signals (ALERT_TYPE_SIGNAL), true otherwise.
bool ShouldNotify(const v1::AlertChange& change);

// What PurgeExpired deleted.
struct PurgeStats {
  int64_t processed_ids = 0;
  int64_t windows = 0;
  int64_t log_entries = 0;
  int64_t events = 0;
  int64_t window_index_entries = 0;
  // The event store's size on disk after the purge (its compaction
  // included): Store::FamilyDiskBytes(kEvents).
  uint64_t event_store_bytes = 0;
};

// Writes a caller adds to the atomic write of one ApplyBatch (e.g. a source's
// cursor, so that it lands together with the effects of the events it
// covers). Called once, under the engine's mutex, after every event was
// classified (outcome.events is filled; outcome.changes is not yet) and before
// the write; it must only add operations to `batch` (not read-modify-write
// alert-engine state). An error aborts the batch: nothing is written and the
// error is returned by ApplyBatch.
using ExtraWrites =
    std::function<absl::Status(const BatchOutcome& outcome, store::WriteBatch& batch)>;

class AlertEngine {
 public:
  // `store` is not owned and must outlive the engine. The engine holds no
  // state of its own besides options: a new engine over a reopened store
  // continues every window exactly where it was.
  explicit AlertEngine(store::Store* store, AlertEngineOptions options = {});

  // Every later write's changes go to `publisher` once durable, in sequence
  // order (engine/alert_publisher.h). Null stops publishing. Not owned: must
  // outlive its use (set null before destroying it). Thread-safe.
  void SetPublisher(AlertPublisher* publisher) ABSL_LOCKS_EXCLUDED(mu_);

  AlertEngine(const AlertEngine&) = delete;
  AlertEngine& operator=(const AlertEngine&) = delete;

  // Applies the rule results of one ingested batch (see the file comment) and
  // writes windows, alerts, alert-log entries and processed ids in one atomic
  // write. On error nothing was written and nothing is returned. Errors:
  // InvalidArgument (a rule id or log type that is not a valid key part),
  // DataLoss (a stored record that does not parse), and the store's errors
  // (e.g. FailedPrecondition when it is closed). `extra`, when set, adds its
  // writes to the same atomic write (see ExtraWrites); an empty `events` with
  // `extra` writes only what `extra` adds.
  // `prepared`, when set, holds the event blocks encoded ahead
  // (EncodeStoredEvents, or the same plan built by the caller): used when
  // its `planned` events are exactly the ones ApplyBatch stores, else the
  // blocks are encoded again under the engine lock. Without it, ApplyBatch
  // encodes them itself before taking the lock.
  absl::StatusOr<BatchOutcome> ApplyBatch(const std::vector<EventResult>& events,
                                          const ExtraWrites& extra = nullptr,
                                          const PreparedEventBlocks* prepared = nullptr);

  // The event blocks ApplyBatch, run now, would write for `events` (with an
  // event retention: the events that are not id_check kDuplicate, have an
  // event time and are within the retention), encoded: the compression is
  // then done by the caller's thread, e.g. while the batch before commits,
  // instead of on the path that commits batches one by one. Takes no engine
  // lock; thread-safe. Errors: the encoder's (store errors when reading the
  // stored dictionaries, Internal from zstd).
  absl::StatusOr<PreparedEventBlocks> EncodeStoredEvents(const std::vector<EventResult>& events);

  // Encodes one block of a plan (PlanEventBlocks over `events`) with the
  // engine's encoder, for a caller that spreads a batch's blocks over
  // threads. Thread-safe; takes no engine lock. Errors as EncodeEventBlock.
  absl::StatusOr<EncodedEventBlock> EncodeStoredBlock(absl::Span<const EventToStore> events,
                                                      std::vector<size_t> members);

  // Whether ApplyBatch, run now, would store an event of p_event_time
  // `event_time` (not a duplicate): there is an event retention and the
  // event is within it (an event without a time counts as now).
  bool WouldStoreEvent(absl::Time event_time) const;

  // Whether ApplyBatch stores events (it has an event retention).
  bool StoresEvents() const { return options_.event_retention > absl::ZeroDuration(); }

  // Whether (log_type, event_id) was processed within processed_retention
  // (by the engine clock), i.e. ApplyBatch would skip it as a duplicate.
  // Reads committed state only; takes no lock. Errors: DataLoss for a
  // record that does not decode, and the store's.
  absl::StatusOr<bool> IsProcessed(absl::string_view log_type, absl::string_view event_id) const;

  // The alert with id `id`. NotFound when there is none; InvalidArgument for
  // an empty id.
  absl::StatusOr<v1::Alert> GetAlert(absl::string_view id) const;

  // Alerts matching every filter given (an empty list filters nothing, so
  // signals are listed unless `types` excludes them; created range is
  // [created_after, created_before), last-change range [updated_after,
  // updated_before)), newest created first (ties by id,
  // descending), as summaries (see SummaryOf). page.page_size: 0 means 100,
  // at most 1000; negative is InvalidArgument. The page also ends early when
  // the next summary would take the response above max_list_reply_bytes (at
  // least one alert per page). page_token is the next_page_token of the
  // previous call with the same filters (InvalidArgument when malformed); the
  // response's next_page_token is empty on the last page. With
  // count_remaining, the scan goes on past a full page to count the matching
  // alerts after it (remaining_count).
  absl::StatusOr<v1::ListAlertsResponse> ListAlerts(const v1::ListAlertsRequest& request) const;

  // The stored matched events of alert `request.alert_id()`, a page at a
  // time: page_size 0 means 10, at most 1000 (negative: InvalidArgument);
  // the page also ends early at max_list_reply_bytes (at least one event).
  // page_token is the previous response's next_page_token (InvalidArgument
  // when malformed). NotFound for an unknown alert; InvalidArgument for an
  // empty id.
  absl::StatusOr<v1::ListAlertEventsResponse> ListAlertEvents(
      const v1::ListAlertEventsRequest& request) const;

  // What ListAlerts returns for `alert`: the alert without matched_events,
  // sample_event_json and history (matched_events_stored still says how many
  // events are stored).
  static v1::Alert SummaryOf(v1::Alert alert);

  // Triage: sets the status (when not UNSPECIFIED) and/or the assignee (when
  // present; "" unassigns), appends a history entry {now, actor, old and new
  // status, assignee, comment}, and records a KIND_TRIAGED change with a new
  // sequence. Windows are untouched. Returns the change as logged (its alert
  // is the updated alert without matched_events). The history keeps within
  // max_history_bytes (oldest entries removed, counted). NotFound for an
  // unknown id; InvalidArgument for an invalid status, a comment longer than
  // max_comment_bytes, or a request that changes nothing and has no comment.
  absl::StatusOr<v1::AlertChange> UpdateAlert(const v1::UpdateAlertRequest& request,
                                              absl::string_view actor, absl::Time now);

  // Up to `limit` (> 0) changes with sequence > `after`, in order, and stops
  // after the change that brings their encoded size to `max_bytes` or more
  // (so at most max_bytes plus one change; the default is no byte limit).
  // Fewer (or none) at the end of the log. Changes below
  // OldestRetainedSequence() are gone; the caller detects that by comparing.
  // InvalidArgument for limit 0.
  absl::StatusOr<std::vector<v1::AlertChange>> ReadChangesAfter(uint64_t after, size_t limit,
                                                                size_t max_bytes = SIZE_MAX) const;

  // The smallest sequence still in the alert log; LatestSequence() + 1 when
  // the log is empty. Never above a change committed while it runs (a stream
  // starting from its answer misses nothing).
  absl::StatusOr<uint64_t> OldestRetainedSequence() const;
  // The last sequence handed out (0 if none).
  absl::StatusOr<uint64_t> LatestSequence() const;
  // The first retained sequence whose change was recorded at or after `t`;
  // LatestSequence() + 1 when none (for StreamAlerts' start_time). Assumes
  // recording times grow with sequences (a server clock that does not jump
  // backwards); O(log n) reads.
  absl::StatusOr<uint64_t> FirstSequenceAtOrAfter(absl::Time t) const;

  // Deletes expired processed ids, windows and alert-log entries (see the
  // file comment), and stored events older than event_retention, then
  // compacts the purged event ranges so their disk space is freed
  // (PurgeEventsBefore). Safe to run while batches are applied: the engine's
  // mutex is taken only for a chunk of deletes at a time, never during the
  // event purge or its compaction, which may take seconds per GB purged; so
  // call it from a background thread (the server's purge thread).
  absl::StatusOr<PurgeStats> PurgeExpired();

 private:
  // Plans and encodes the blocks of events[planned] (ascending indices),
  // keyed at `now_us` when they have no time of their own. Thread-safe;
  // takes no engine lock. Errors as EncodeEventBlock.
  absl::StatusOr<PreparedEventBlocks> EncodeBlocksOf(const std::vector<EventResult>& events,
                                                     std::vector<size_t> planned, int64_t now_us);

  class BatchState;

  // max_list_reply_bytes less room for a page token and framing.
  size_t ReplyBudget() const;

  store::Store* const store_;
  const AlertEngineOptions options_;
  // Compresses stored events; thread-safe on its own, used before mu_.
  EventEncoder event_encoder_;
  // Serialises every read-modify-write of windows, alerts and processed ids,
  // and the publication of their changes.
  absl::Mutex mu_;
  AlertPublisher* publisher_ ABSL_GUARDED_BY(mu_) = nullptr;
};

}  // namespace pantherd::engine

#endif  // PANTHERD_ENGINE_ALERT_ENGINE_H_
