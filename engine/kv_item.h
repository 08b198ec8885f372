// File: engine/kv_item.h
//
// One item of the caching helpers' key-value space and what each operation
// does to it: the semantics StoreKvBackend (engine/kv_store.h) documents, as
// pure functions on an item in memory, so that pantherd's store and a
// worker's cache (engine/kv_cache.h) compute exactly the same replies and
// items.
//
//   KvItemState state;                       // absent
//   absl::StatusOr<KvApplied> done = ApplyKvCall(call, now_seconds, &state);
//   // done->reply for the rule; done->write says what to store.
//
// Thread-safety: plain functions and values; no shared state.
#ifndef PANTHERD_ENGINE_KV_ITEM_H_
#define PANTHERD_ENGINE_KV_ITEM_H_

#include <cstdint>
#include <optional>
#include <set>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "pantherd/internal/worker.pb.h"

namespace pantherd::engine {

// The longest key accepted (DynamoDB's partition key limit).
inline constexpr size_t kMaxKvKeyBytes = 2048;

// One item: the columns of a DynamoDB item of Panther's KV table.
struct KvItem {
  int64_t expiry = 0;  // epoch seconds; 0 = none
  int64_t counter = 0;
  std::set<std::string> members;
  bool has_dictionary = false;
  std::string dictionary;

  // An item with no column is not stored.
  bool Empty() const { return counter == 0 && members.empty() && !has_dictionary; }
  bool operator==(const KvItem& other) const {
    return expiry == other.expiry && counter == other.counter && members == other.members &&
           has_dictionary == other.has_dictionary && dictionary == other.dictionary;
  }
};

// The stored value of an item (the format engine/kv_store.h describes).
std::string EncodeKvItem(const KvItem& item);
// Decodes a stored value; DataLoss (naming `key`) when it does not decode.
absl::StatusOr<KvItem> DecodeKvItem(absl::string_view key, absl::string_view value);

// What is stored for one key: an item (possibly expired), or nothing.
using KvItemState = std::optional<KvItem>;

struct KvApplied {
  internal::KvReply reply;  // call_id echoed
  // What the operation did to the stored state: nothing, store `*state`
  // (kPut), or remove the key (kDelete). Only the operations IsKvWrite names
  // ever write: reading an expired item answers as if it were absent and
  // leaves it for the purge.
  enum class Write { kNone, kPut, kDelete } write = Write::kNone;
};

// True for the operations that may change the stored state.
bool IsKvWrite(internal::KvCall::Op op);

// Performs `call` (one of the caching helpers' operations, not OP_FETCH or
// OP_APPLY_WRITES) on `*state` at time `now` (epoch seconds: an item whose
// expiry is <= now is absent) and updates `*state` to what must be stored.
// Errors (the state is then unchanged): InvalidArgument for an empty or too
// long key, a negative expiry, a dictionary that is not a JSON object, or an
// unsupported op; OutOfRange on counter overflow.
absl::StatusOr<KvApplied> ApplyKvCall(const internal::KvCall& call, int64_t now,
                                      KvItemState* state);

}  // namespace pantherd::engine

#endif  // PANTHERD_ENGINE_KV_ITEM_H_
