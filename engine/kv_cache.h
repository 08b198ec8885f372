// File: engine/kv_cache.h
//
// Keeping the caching helpers' key-value space close to the rules. Without
// it, every `panther_detection_helpers.caching` call a rule makes in a worker
// is one round trip to pantherd (RemoteKv): about 20 to 40 us of two context
// switches on each side, more than the rule itself costs. With it:
//
//   - KvCache, in each worker, holds copies of the items the worker has used
//     (the item, or the fact that there is none) and answers the rules from
//     them with the same function pantherd's store uses (ApplyKvCall, in
//     engine/kv_item.h), so replies are identical. An item it does not hold
//     is fetched once (OP_FETCH, one round trip). Writes change the copy at
//     once and are logged, each with the time it was made; the log goes back
//     to pantherd with the request's final response (WorkerResponse.
//     kv_writes), where it is held under the batch's transaction and
//     replayed in order at that time (KvCall.now_epoch_seconds) inside the
//     batch's atomic commit (engine/kv_store.h), so the stored item ends
//     exactly as the worker's copy unless another worker wrote the same key
//     meanwhile. A log longer than kMaxLoggedWrites is sent ahead
//     (OP_APPLY_WRITES, one round trip; held the same way). Reads never log
//     anything, not even for an expired item.
//   - KvChangeLog, in pantherd, records which worker changed which key; with
//     each request a worker receives the keys other workers changed since
//     its previous request (WorkerRequest.kv_sync) and forgets its copies of
//     them before the rules run.
//   - With a worker's first request pantherd sends every stored item when
//     there are at most kMaxItems (KvSync.snapshot). The cache is then
//     complete: a key it does not hold has no item, and only keys another
//     worker changed since (listed in later syncs) are fetched. It stays
//     complete until it is cleared (clear_all, growth past kMaxItems, a
//     failed flush).
//
// Consistency. A worker sees its own writes at once and other workers'
// writes from its next request on. Requests that run at the same time in
// different workers (batches of different streams, or the rule groups of one
// batch) therefore do not see each other's writes until they end; increments
// and set additions from both are all applied (the log replays operations,
// not values). A request's rules see every write of the requests that ended
// before it was sent, so a stream's batches, evaluated one after another,
// behave as with one shared store. A worker that crashes takes its unsent log
// with it: the batch it was evaluating is re-evaluated elsewhere, so its
// writes are made once, not twice. Time: each operation uses the time
// pantherd sent with the event being evaluated (SetEventClock: its
// p_event_time under event-time windows, pantherd's processing clock
// otherwise), else the worker's clock; a write is replayed with the same
// time.
//
// Memory: a cache holding more than kMaxItems items is emptied at the start
// of the next request (counted in clears()).
//
// Thread-safety: KvCache is used by one worker thread, between BeginRequest
// and TakeWrites (not thread-safe); KvChangeLog is thread-safe.
#ifndef PANTHERD_ENGINE_KV_CACHE_H_
#define PANTHERD_ENGINE_KV_CACHE_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "engine/kv.h"
#include "engine/kv_item.h"
#include "pantherd/internal/worker.pb.h"
#include "proto/base/clock.h"

namespace pantherd::engine {

class KvCache : public KvBackend {
 public:
  static constexpr size_t kMaxItems = 200000;
  static constexpr size_t kMaxLoggedWrites = 4096;

  // `remote` answers OP_FETCH and OP_APPLY_WRITES (pantherd, through the
  // worker channel); not owned, must outlive the cache. `clock` gives the
  // time of each operation.
  explicit KvCache(KvBackend* remote, base::Clock clock = base::RealClock());

  // Applies `sync` (forgets the keys other workers changed, or everything)
  // and, when the cache has grown past kMaxItems, empties it. Call before
  // handling a request; the write log must be empty (TakeWrites).
  void BeginRequest(const internal::KvSync& sync);

  // Answers one caching-helper operation (see engine/kv_store.h) from the
  // cache, fetching the item first when it is not held. Errors: those of
  // ApplyKvCall (the rule's mistake: nothing changes), and those of the
  // remote (fetch or early flush failed; the cache forgets the key).
  absl::StatusOr<internal::KvReply> Call(const internal::KvCall& call) override;

  // From now on, operations use `now_seconds` (seconds since the epoch) as
  // their time instead of the clock, and the writes they log carry
  // `event_tag` (KvCall.event_tag): the worker calls it before the rules of
  // each event run, with the event's EventToEvaluate.kv_now_seconds and tag.
  // `now_seconds` 0 returns to the clock.
  void SetEventClock(int64_t now_seconds, uint32_t event_tag) {
    event_now_ = now_seconds;
    event_tag_ = event_tag;
  }

  // The time operations use now (see SetEventClock).
  int64_t NowSeconds() override;

  // The writes made since the last TakeWrites, in order, and clears the log.
  std::vector<internal::KvCall> TakeWrites();

  size_t size() const { return items_.size(); }
  // True while a key not held is known to have no item (see above).
  bool complete() const { return complete_; }
  int64_t fetches() const { return fetches_; }
  int64_t hits() const { return hits_; }
  int64_t clears() const { return clears_; }

 private:
  KvBackend* const remote_;
  const base::Clock clock_;
  using Items = absl::flat_hash_map<std::string, KvItemState>;
  // Performs `call` on the held state `it` and logs it if it wrote.
  absl::StatusOr<internal::KvReply> Apply(const internal::KvCall& call, int64_t now,
                                          Items::iterator it);

  // The stored state of every key held: an item, or none.
  Items items_;
  // While complete_: the keys other workers changed that must be fetched.
  bool complete_ = false;
  absl::flat_hash_set<std::string> stale_;
  std::vector<internal::KvCall> writes_;
  int64_t event_now_ = 0;
  uint32_t event_tag_ = 0;
  int64_t fetches_ = 0;
  int64_t hits_ = 0;
  int64_t clears_ = 0;
};

// pantherd's record of which worker changed which key, for KvSync.
class KvChangeLog {
 public:
  // Keeps the last `capacity` changes; a worker that has missed more is told
  // to forget everything.
  explicit KvChangeLog(size_t capacity = 1 << 16) : capacity_(capacity) {}

  // The position a new worker starts from (it holds nothing yet).
  uint64_t Position() const ABSL_LOCKS_EXCLUDED(mu_);

  // Records that worker `writer` changed `key`.
  void Record(uint64_t writer, absl::string_view key) ABSL_LOCKS_EXCLUDED(mu_);

  // The keys changed by workers other than `reader` since `*position`
  // (each once), and advances `*position` to now.
  internal::KvSync ChangesFor(uint64_t reader, uint64_t* position) const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  struct Change {
    uint64_t writer;
    std::string key;
  };
  const size_t capacity_;
  mutable absl::Mutex mu_;
  // changes_[i] has position first_ + i + 1.
  std::deque<Change> changes_ ABSL_GUARDED_BY(mu_);
  uint64_t first_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace pantherd::engine

#endif  // PANTHERD_ENGINE_KV_CACHE_H_
