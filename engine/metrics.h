// File: engine/metrics.h
//
// pantherd's own figures about ingestion and rule evaluation: how many events
// were accepted and rejected (by reason), how many batches, and per rule how
// many times rule() ran, matched and failed, and how long its Python took.
// The server renders them (GET /metrics in Prometheus text, and
// GetServerStatus); see docs/metrics.md for every name.
//
//   EngineMetrics metrics;
//   IngestOptions options;
//   options.metrics = &metrics;          // the pipeline counts as it goes
//   ...
//   int64_t accepted = metrics.events_accepted.value();
//   for (const auto& [id, figures] : metrics.Rules()) { ... }
//
// Cost. Counters are relaxed atomics (no lock, no ordering with other
// memory): a reader may see one counter of a batch updated and another not
// yet. Rule figures arrive once per batch per rule (the worker sums them per
// rule over the batch, see RuleTally), so the per-rule map is looked up under
// a reader lock once per rule and batch, never per event; the writer lock is
// taken only the first time a rule id is seen.
//
// Rule ids are kept for the life of the process, also after a rule is
// deleted (a counter never goes back; its count is bounded by the rules ever
// loaded).
#ifndef PANTHERD_ENGINE_METRICS_H_
#define PANTHERD_ENGINE_METRICS_H_

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "pantherd/internal/worker.pb.h"

namespace pantherd::engine {

// A count that only goes up. Thread-safe and lock-free.
class Counter {
 public:
  void Add(int64_t n = 1) { value_.fetch_add(n, std::memory_order_relaxed); }
  int64_t value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<int64_t> value_{0};
};

// Why normalisation rejected an event (engine/normalize.h's errors).
enum class RejectReason : int {
  kNotJson = 0,         // the text does not parse as JSON
  kNotObject = 1,       // JSON, but not an object
  kTooLarge = 2,        // more bytes than max_event_bytes
  kUnknownLogType = 3,  // the batch's log type has no schema
  kOther = 4,           // any other normalisation error
};
inline constexpr int kRejectReasonCount = 5;

// The label value of `reason`: "not_json", "not_object", "too_large",
// "unknown_log_type", "other".
absl::string_view RejectReasonName(RejectReason reason);

// Classifies the message of a NormalizeEvent error. Messages it does not
// recognise are kOther. Pure; thread-safe.
RejectReason ClassifyRejection(absl::string_view message);

// One rule's figures: rule() calls, rule() == True, rule() errors (raised,
// non-bool, timed out), and the time spent in the rule's Python functions
// (rule() and, on a match, the alert functions), in nanoseconds.
struct RuleFigures {
  int64_t evaluations = 0;
  int64_t matches = 0;
  int64_t errors = 0;
  int64_t time_nanos = 0;
};

// The ingestion figures of one pantherd process. All members are
// thread-safe; an EngineMetrics is shared by every ingest path and must
// outlive whoever counts into it.
class EngineMetrics {
 public:
  EngineMetrics() = default;
  EngineMetrics(const EngineMetrics&) = delete;
  EngineMetrics& operator=(const EngineMetrics&) = delete;

  // Batches that were stored (evaluated and committed), and batches that
  // failed (nothing of them stored; the client may re-send them).
  Counter batches;
  Counter batches_failed;
  // Events in the batches received (before normalisation).
  Counter events_received;
  // Events stored for the first time, and events skipped because their id
  // was processed already.
  Counter events_accepted;
  Counter events_duplicate;
  // Events a worker could not evaluate at all (no rule ran on them).
  Counter events_unevaluated;
  // Events written to the event store, and event blocks the commit had to
  // compress itself (engine/event_store.h; normally done ahead).
  Counter events_stored;
  Counter event_blocks_encoded_at_commit;
  // (Event, rule) pairs on which the rule ended its worker (each a
  // RULE_ERROR alert), and rules quarantined for it (docs/reliability.md).
  Counter poison_events;
  Counter rules_quarantined;

  // Events rejected by normalisation, by reason.
  Counter& rejected(RejectReason reason) { return rejected_[static_cast<int>(reason)]; }
  const Counter& rejected(RejectReason reason) const { return rejected_[static_cast<int>(reason)]; }

  // Adds `delta` to the figures of `rule_id` (created at zero when new).
  void AddRule(absl::string_view rule_id, const RuleFigures& delta) ABSL_LOCKS_EXCLUDED(mu_);
  // Adds the per-rule totals a worker returned with a batch.
  void AddRuleStats(const google::protobuf::RepeatedPtrField<internal::RuleRunStats>& stats)
      ABSL_LOCKS_EXCLUDED(mu_);

  // Every rule seen so far with its figures, ordered by rule id.
  std::vector<std::pair<std::string, RuleFigures>> Rules() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  struct RuleCounters {
    Counter evaluations;
    Counter matches;
    Counter errors;
    Counter time_nanos;
  };
  // The counters of `rule_id`, created when missing. Never null; the
  // counters live as long as this object.
  RuleCounters* Find(absl::string_view rule_id) ABSL_LOCKS_EXCLUDED(mu_);

  std::array<Counter, kRejectReasonCount> rejected_;
  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, std::unique_ptr<RuleCounters>> rules_ ABSL_GUARDED_BY(mu_);
};

// Sums the runs of each rule over one evaluation task, in the worker, so that
// the task's answer carries one RuleRunStats per rule that ran instead of a
// figure per event. Rules are identified by their position in the loaded set
// (O(1), no lookup by id). Not thread-safe: one tally per task.
class RuleTally {
 public:
  // `rules`: the number of rules of the loaded set (positions 0..rules-1).
  explicit RuleTally(size_t rules) : entries_(rules) {}

  // Records one rule() call of the rule at `position` whose id is `rule_id`
  // (not copied until AppendTo: it must outlive the tally). Positions out of
  // range are ignored.
  void Record(size_t position, const std::string& rule_id, bool matched, bool error, int64_t nanos);

  // Appends one RuleRunStats per rule that ran, in set order.
  void AppendTo(google::protobuf::RepeatedPtrField<internal::RuleRunStats>* out) const;

 private:
  struct Entry {
    const std::string* rule_id = nullptr;
    RuleFigures figures;
  };
  std::vector<Entry> entries_;
};

// A monotonic clock reading in nanoseconds, for measuring durations.
int64_t MonotonicNanos();

}  // namespace pantherd::engine

#endif  // PANTHERD_ENGINE_METRICS_H_
