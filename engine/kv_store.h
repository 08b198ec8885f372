// File: engine/kv_store.h
//
// StoreKvBackend: the key-value space of Panther's caching helpers
// (`panther_detection_helpers.caching`) kept in the store's `kv` family, so
// that string sets, counters and dictionaries survive restarts.
//
//   StoreKvBackend kv(store.get());
//   WorkerPoolOptions options;
//   options.kv = &kv;  // answers the workers' KvCalls
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
// is <= now reads as absent and is deleted lazily, by the next operation that
// touches it or by PurgeExpired. Every write is one atomic store write,
// written to the log but not fsync'ed on its own (Store::Durability::
// kBuffered): a process crash cannot lose it, and the fsync'ed commit of the
// ingested batch that caused it makes it durable against a machine crash too.
// An item left with no column is deleted. Keys: any non-empty byte string up to
// kMaxKvKeyBytes (InvalidArgument otherwise).
//
// The operations themselves are engine/kv_item.h's ApplyKvCall, shared with
// the workers' caches (engine/kv_cache.h). Two more serve those caches:
// OP_FETCH answers the stored item as it is (KvReply.present and .item, in
// the encoding below, expired or not), and OP_APPLY_WRITES performs
// `writes` in order, stopping at the first error. A call with
// `now_epoch_seconds` uses that time for expiry instead of the clock.
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
#include <functional>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "engine/kv.h"
#include "engine/kv_item.h"
#include "store/store.h"

namespace pantherd::engine {

// The namespace part of every caching-helper key in the kv family.
inline constexpr absl::string_view kCachingKvNamespace = "caching";

class StoreKvBackend : public KvBackend {
 public:
  // `store` is not owned and must outlive this object. `clock` gives the
  // current time for expiry decisions (injectable for tests).
  explicit StoreKvBackend(store::Store* store, std::function<absl::Time()> clock = absl::Now);

  // See the file comment for each op. Errors: InvalidArgument (unknown op,
  // bad key, negative expiry, dictionary that is not an object),
  // OutOfRange (counter overflow), DataLoss (a stored value that does not
  // decode), and the store's errors.
  absl::StatusOr<internal::KvReply> Call(const internal::KvCall& call) override;

  // See KvBackend::Snapshot: the items of the caching namespace, scanned
  // from one consistent store snapshot. Also the store's errors.
  absl::Status Snapshot(size_t max_items,
                        std::vector<std::pair<std::string, std::string>>* items) override;

  // Deletes every expired item; returns how many. For a periodic sweep.
  absl::StatusOr<int64_t> PurgeExpired();

 private:
  absl::Mutex& StripeFor(absl::string_view key);

  store::Store* const store_;
  const std::function<absl::Time()> clock_;
  std::array<absl::Mutex, 64> stripes_;
};

}  // namespace pantherd::engine

#endif  // PANTHERD_ENGINE_KV_STORE_H_
