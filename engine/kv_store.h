// File: engine/kv_store.h
//
// StoreKvBackend: the key-value space of Panther's caching helpers
// (`panther_detection_helpers.caching`) kept in the store's `kv` family, so
// that string sets, counters and dictionaries survive restarts.
//
//   StoreKvBackend kv(store.get());
//   WorkerPoolOptions options;
//   options.kv = &kv;  // answers the workers' KvCalls
//   IngestOptions ingest;
//   ingest.kv = &kv;   // batches open and commit transactions
//
// Semantics follow Panther's DynamoDB-backed helpers, where a key is one item
// with optional columns (a string set, a counter, a dictionary) and an
// optional expiry:
//   GET_STRING_SET        the members, sorted; [] when absent.
//   PUT_STRING_SET        replaces the whole item with the set; an empty set
//                         deletes the item (DynamoDB cannot store one).
//   ADD_TO_STRING_SET     adds `values` to the set, keeping the item's other
//                         columns; returns the new set.
//   REMOVE_FROM_STRING_SET removes `values`; returns the new set.
//   RESET_STRING_SET      deletes the item.
//   INCREMENT_COUNTER     adds `increment` (may be negative or 0) to the
//                         counter (0 when absent); returns the new value.
//                         OutOfRange on int64 overflow.
//   GET_COUNTER           the counter; 0 when absent.
//   RESET_COUNTER         deletes the item.
//   SET_KEY_EXPIRATION    sets the item's expiry; no-op for an absent item.
//   GET_DICTIONARY        the JSON text; "{}" when absent.
//   PUT_DICTIONARY        replaces the whole item with the dictionary `json`
//                         (must be a JSON object text: InvalidArgument if it
//                         does not start with '{').
// Expiry: `expire_epoch_seconds` is absolute (seconds since the epoch); 0
// keeps the item's current expiry (none for a new item). An item whose expiry
// is <= now reads as absent; a read never deletes it (a write to it starts
// from an empty item), and PurgeExpired deletes it once it is past the purge
// horizon. An item left with no column is deleted. Keys: any non-empty byte
// string up to kMaxKvKeyBytes (InvalidArgument otherwise).
//
// Rules' writes and the batch's atomic commit. The rules of an ingested batch
// write through their workers' caches (engine/kv_cache.h); those writes never
// reach the store one by one. The batch opens a transaction (BeginTxn), its
// workers' write logs are held under it in memory (OP_APPLY_WRITES with
// KvCall.txn), and CommitTxn replays them on the stored items inside the
// batch's one atomic store write, with its windows, alerts and processed ids:
// a crash before that write loses them together with the rest of the batch,
// which the client re-sends. Until then the held writes are visible to
// OP_FETCH and Snapshot (the other workers' view), applied in arrival order
// on the stored item; a transaction that never commits (AbortTxn) vanishes
// and the keys it touched are returned so that every worker forgets them.
// Direct calls of the other operations (and OP_APPLY_WRITES without a
// transaction) apply at once, each in one buffered store write: for tests
// and tools, never for rules.
//
// The operations themselves are engine/kv_item.h's ApplyKvCall, shared with
// the workers' caches (engine/kv_cache.h). Two more serve those caches:
// OP_FETCH answers the stored item as it is (KvReply.present and .item, in
// the encoding below, expired or not), and OP_APPLY_WRITES performs
// `writes` in order (held under KvCall.txn when it is set), stopping at the
// first error. A call with `now_epoch_seconds` uses that time for expiry
// instead of the clock.
//
// Storage (family kKv): key "caching" '\0' <key>; value be64(expiry, 0 = none)
// then the encoded item: a format byte (1), i64 counter (8 bytes big-endian,
// two's complement), u32 member count, each member as u32 length + bytes
// (sorted, unique), u32 length + dictionary JSON (length 0 = no dictionary).
// All u32 are big-endian. A value that does not decode is DataLoss.
//
// Thread-safety: safe for concurrent use; read-modify-write operations on the
// same key are serialised (a striped lock per key hash), so concurrent
// increments from several workers are never lost.
#ifndef PANTHERD_ENGINE_KV_STORE_H_
#define PANTHERD_ENGINE_KV_STORE_H_

#include <array>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "engine/kv.h"
#include "engine/kv_item.h"
#include "proto/base/clock.h"
#include "store/store.h"

namespace pantherd::engine {

// The namespace part of every caching-helper key in the kv family.
inline constexpr absl::string_view kCachingKvNamespace = "caching";
// The meta-family key of the state clock's high water (be64 seconds).
inline constexpr absl::string_view kKvHighWaterKey = "kv_high_water";

class StoreKvBackend : public KvBackend {
 public:
  // `store` is not owned and must outlive this object. `clock` gives the
  // current time for expiry decisions of direct calls (injectable for tests).
  explicit StoreKvBackend(store::Store* store, base::Clock clock = base::RealClock());

  // See the file comment for each op. Errors: InvalidArgument (unknown op,
  // bad key, negative expiry, dictionary that is not an object, a write of a
  // transaction that is not open), OutOfRange (counter overflow), DataLoss
  // (a stored value that does not decode), and the store's errors.
  absl::StatusOr<internal::KvReply> Call(const internal::KvCall& call) override;

  // See KvBackend::Snapshot: the items of the caching namespace, scanned
  // from one consistent store snapshot, with the writes of open transactions
  // applied. Also the store's errors.
  absl::Status Snapshot(size_t max_items,
                        std::vector<std::pair<std::string, std::string>>* items) override;

  // Opens a transaction for one ingested batch and returns its id (never 0).
  uint64_t BeginTxn() ABSL_LOCKS_EXCLUDED(mu_);

  // Adds the effects of transaction `txn`'s writes, except those whose
  // KvCall.event_tag is in `dropped_tags` (events that turned out to be
  // duplicates), to `batch`: each written key's final item (Put) or its
  // removal (Delete), computed on the stored items. The keys of dropped
  // writes are added to `*forget` (every worker must forget them). Call it
  // inside the batch's commit, as the last step before the store write;
  // it blocks OP_FETCH, Snapshot and PurgeExpired until EndTxn, so that no
  // one can see the held writes and their stored effect at once. Errors:
  // InvalidArgument for a transaction that is not open; DataLoss, OutOfRange
  // and the store's errors (then it has not blocked anything; call AbortTxn).
  absl::Status StageTxn(uint64_t txn, const std::vector<uint32_t>& dropped_tags,
                        store::WriteBatch& batch,
                        std::vector<std::string>* forget) ABSL_NO_THREAD_SAFETY_ANALYSIS;

  // After StageTxn and the store write: forgets the transaction's held writes
  // (committed: the store has them now; `committed` false: the write failed,
  // and the keys it touched are added to `*forget`) and unblocks readers.
  void EndTxn(uint64_t txn, bool committed,
              std::vector<std::string>* forget) ABSL_NO_THREAD_SAFETY_ANALYSIS;

  // Drops an open transaction that will not commit (its batch failed before
  // StageTxn) and adds the keys it touched to `*forget`. Unknown ids are
  // ignored.
  void AbortTxn(uint64_t txn, std::vector<std::string>* forget) ABSL_LOCKS_EXCLUDED(mu_);

  // Deletes every item whose expiry is <= `horizon_seconds` (0 expiries never
  // expire) and that no open transaction touches; returns how many. Safe to
  // run while batches are evaluated and committed.
  absl::StatusOr<int64_t> PurgeExpired(int64_t horizon_seconds) ABSL_LOCKS_EXCLUDED(mu_);

  // The high water of the state clock: the largest state-clock time
  // (EventToEvaluate.kv_now_seconds) of any committed batch. Under event-time
  // windows that is the newest event time, the base of the purge horizon.
  // It is stored (family meta, key kKvHighWaterKey) in the batch's atomic
  // write, so it survives restarts: StageHighWater adds that write to
  // `batch` when `seconds` raises it, and AdvanceHighWater records it once
  // the batch committed.
  void StageHighWater(int64_t seconds, store::WriteBatch& batch) ABSL_LOCKS_EXCLUDED(mu_);
  void AdvanceHighWater(int64_t seconds) ABSL_LOCKS_EXCLUDED(mu_);
  // See AdvanceHighWater; the stored value after a restart, 0 before any
  // commit.
  int64_t committed_high_water() const ABSL_LOCKS_EXCLUDED(mu_);

  // Writes held in open transactions, for tests and status.
  size_t pending_writes() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  struct Txn {
    // Stable addresses: pending_by_key_ points into it.
    std::deque<internal::KvCall> writes;
  };
  absl::Mutex& StripeFor(absl::string_view key);
  // The stored state of `store_key` (the family key), or none.
  absl::StatusOr<KvItemState> ReadStored(absl::string_view store_key) const;
  // `state` with the held writes of `key` (the caching key) applied.
  void ApplyPending(const std::string& key, KvItemState* state) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  absl::Status AddPending(uint64_t txn, const internal::KvCall& apply_writes)
      ABSL_LOCKS_EXCLUDED(mu_);
  // Removes `txn` and its entries in pending_by_key_; adds its keys to
  // `*keys` when not null.
  void DropTxn(uint64_t txn, std::vector<std::string>* keys) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  store::Store* const store_;
  const base::Clock clock_;
  std::array<absl::Mutex, 64> stripes_;

  // Held writes. Readers of stored items that must see them (FETCH,
  // Snapshot) hold mu_ shared; StageTxn..EndTxn and the purge hold it
  // exclusively.
  mutable absl::Mutex mu_;
  uint64_t next_txn_ ABSL_GUARDED_BY(mu_) = 1;
  std::map<uint64_t, Txn> txns_ ABSL_GUARDED_BY(mu_);
  // Per caching key: the held writes, in arrival order.
  absl::flat_hash_map<std::string, std::vector<std::pair<uint64_t, const internal::KvCall*>>>
      pending_by_key_ ABSL_GUARDED_BY(mu_);
  int64_t high_water_ ABSL_GUARDED_BY(mu_) = 0;
  size_t pending_count_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace pantherd::engine

#endif  // PANTHERD_ENGINE_KV_STORE_H_
