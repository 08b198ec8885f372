// File: engine/kv_memory.h
//
// An in-memory KvBackend: the key-value space behind Panther's caching helpers
// (`panther_detection_helpers.caching`, see engine/python_runtime.h), held in
// a map. For tests and single-process tools; pantherd answers its workers
// from the RocksDB-backed StoreKvBackend (engine/kv_store.h), whose semantics
// this class follows operation by operation, so that a rule behaves the same
// on both:
//
//   KvMemory kv;                                    // real clock
//   KvMemory fake([&] { return now; });             // injected clock
//   internal::KvCall call;
//   call.set_op(internal::KvCall::OP_INCREMENT_COUNTER);
//   call.set_key("failures:alice");
//   call.set_increment(1);
//   absl::StatusOr<internal::KvReply> reply = kv.Call(call);  // reply->counter() == 1
//
// Data model (Panther's DynamoDB table): a key names one item with optional
// columns (a string set, a counter, a dictionary as JSON text) and one
// optional expiry (absolute epoch seconds) shared by the whole item. An item
// whose expiry is <= now reads as absent and is dropped when next touched; a
// write to it starts from an empty item. `expire_epoch_seconds` 0 in a call
// keeps the item's current expiry (none for a new item).
//
// Operations (request fields -> reply fields):
//   GET_STRING_SET         key                    -> values: members, sorted
//   PUT_STRING_SET         key, values, expire    -> replaces the whole item;
//                                                    no values deletes it
//   ADD_TO_STRING_SET      key, values, expire    -> values: members after the add
//   REMOVE_FROM_STRING_SET key, values, expire    -> values: members after the removal
//   RESET_STRING_SET       key                    -> deletes the item
//   INCREMENT_COUNTER      key, increment, expire -> counter: the value after the add
//   GET_COUNTER            key                    -> counter (0 when absent)
//   RESET_COUNTER          key                    -> deletes the item
//   SET_KEY_EXPIRATION     key, expire            -> sets the expiry (no-op when absent)
//   GET_DICTIONARY         key                    -> json ("{}" when absent)
//   PUT_DICTIONARY         key, json, expire      -> replaces the whole item
// The reply echoes call_id. An item left with no column is deleted.
// (Panther's reset_string_set/reset_counter remove only their column; like
// StoreKvBackend, these delete the item.)
//
// Errors: InvalidArgument for an unknown op, an empty key or one longer than
// 2048 bytes, a negative expiry, and a dictionary that is not a JSON object
// text; OutOfRange on counter overflow. Never throws.
//
// Thread-safety: all methods are thread-safe (one absl::Mutex).

#ifndef PANTHERD_ENGINE_KV_MEMORY_H_
#define PANTHERD_ENGINE_KV_MEMORY_H_

#include <cstdint>
#include <functional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/btree_set.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "engine/kv.h"
#include "pantherd/internal/worker.pb.h"
#include "proto/base/clock.h"

namespace pantherd::engine {

class KvMemory : public KvBackend {
 public:
  // The longest key accepted (DynamoDB's partition key limit, as StoreKvBackend).
  static constexpr size_t kMaxKeyBytes = 2048;

  // Uses absl::Now() as the clock.
  KvMemory();
  // Uses `clock` (called under the lock, so it must not call back into this
  // object) to decide which entries have expired.
  explicit KvMemory(base::Clock clock);

  // Performs `call` as described in the file comment.
  absl::StatusOr<internal::KvReply> Call(const internal::KvCall& call) override
      ABSL_LOCKS_EXCLUDED(mu_);

  // Removes every entry.
  void Clear() ABSL_LOCKS_EXCLUDED(mu_);

  // Number of entries, expired ones included until they are next touched.
  size_t size() const ABSL_LOCKS_EXCLUDED(mu_);

  // Number of calls answered (successfully or not) since construction.
  int64_t calls() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  struct Entry {
    absl::btree_set<std::string> strings;
    bool has_counter = false;
    int64_t counter = 0;
    std::string dictionary_json;  // empty = no dictionary
    int64_t expires_at = 0;       // epoch seconds; 0 = never
    bool empty() const { return strings.empty() && !has_counter && dictionary_json.empty(); }
  };

  // The live entry for `key`, or null; drops it if it has expired.
  Entry* FindLive(const std::string& key, int64_t now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The live entry for `key`, created empty if absent or expired.
  Entry& GetOrCreate(const std::string& key, int64_t now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Removes `key` if its entry holds no column.
  void DropIfEmpty(const std::string& key) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const base::Clock clock_;
  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, Entry> entries_ ABSL_GUARDED_BY(mu_);
  int64_t calls_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace pantherd::engine

#endif  // PANTHERD_ENGINE_KV_MEMORY_H_
