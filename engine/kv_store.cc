#include "engine/kv_store.h"

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/hash/hash.h"
#include "absl/strings/str_cat.h"
#include "proto/base/status_macros.h"
#include "store/keys.h"

namespace pantherd::engine {
namespace {

using internal::KvCall;
using internal::KvReply;
using store::Family;

// Purge deletes in store writes of at most this many keys.
constexpr size_t kPurgeChunk = 1000;

bool ReadU64(absl::string_view* in, uint64_t* v) {
  if (in->size() < 8) return false;
  *v = 0;
  for (int i = 0; i < 8; ++i) *v = (*v << 8) | static_cast<unsigned char>((*in)[i]);
  in->remove_prefix(8);
  return true;
}

// The expiry of an encoded item (0 = none), or -1 when it does not decode.
int64_t EncodedExpiry(absl::string_view value) {
  uint64_t expiry;
  if (!ReadU64(&value, &expiry)) return -1;
  return static_cast<int64_t>(expiry);
}

std::string StoreKey(absl::string_view key) { return store::Join(kCachingKvNamespace, key); }

absl::Status ValidateKey(absl::string_view key) {
  if (key.empty() || key.size() > kMaxKvKeyBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("key-value keys must have 1 to ", kMaxKvKeyBytes, " bytes, got ", key.size()));
  }
  return absl::OkStatus();
}

absl::Status ValidateSingleWrite(const KvCall& write) {
  if (write.op() == KvCall::OP_APPLY_WRITES || !IsKvWrite(write.op())) {
    return absl::InvalidArgumentError(absl::StrCat(
        "apply_writes: operation ", static_cast<int>(write.op()), " is not a single write"));
  }
  return ValidateKey(write.key());
}

}  // namespace

StoreKvBackend::StoreKvBackend(store::Store* store, base::Clock clock)
    : store_(store), clock_(std::move(clock)) {
  // A missing or unreadable value starts the high water at 0 (no purge by
  // event time until the next commit).
  absl::StatusOr<std::string> stored = store_->Get(Family::kMeta, kKvHighWaterKey);
  if (stored.ok()) {
    absl::StatusOr<uint64_t> value = store::DecodeUint64(*stored);
    if (value.ok()) high_water_ = static_cast<int64_t>(*value);
  }
}

absl::Mutex& StoreKvBackend::StripeFor(absl::string_view key) {
  return stripes_[absl::HashOf(key) % stripes_.size()];
}

absl::StatusOr<KvItemState> StoreKvBackend::ReadStored(absl::string_view store_key) const {
  absl::StatusOr<std::string> stored = store_->Get(Family::kKv, store_key);
  if (absl::IsNotFound(stored.status())) return KvItemState();
  if (!stored.ok()) return stored.status();
  PANTHERD_ASSIGN_OR_RETURN(KvItem item, DecodeKvItem(store_key, *stored));
  return KvItemState(std::move(item));
}

void StoreKvBackend::ApplyPending(const std::string& key, KvItemState* state) const {
  auto it = pending_by_key_.find(key);
  if (it == pending_by_key_.end()) return;
  for (const auto& [txn, write] : it->second) {
    // A write the worker made on its copy can fail on this state only when
    // another worker changed the item meanwhile (e.g. a counter overflow);
    // it is then left out, as it will be at commit.
    (void)ApplyKvCall(*write, write->now_epoch_seconds(), state);
  }
}

absl::StatusOr<KvReply> StoreKvBackend::Call(const KvCall& call) {
  if (call.op() == KvCall::OP_APPLY_WRITES) {
    if (call.txn() != 0) {
      PANTHERD_RETURN_IF_ERROR(AddPending(call.txn(), call));
      KvReply reply;
      reply.set_call_id(call.call_id());
      return reply;
    }
    KvReply reply;
    reply.set_call_id(call.call_id());
    for (const KvCall& write : call.writes()) {
      PANTHERD_RETURN_IF_ERROR(ValidateSingleWrite(write));
      PANTHERD_RETURN_IF_ERROR(Call(write).status());
    }
    return reply;
  }
  PANTHERD_RETURN_IF_ERROR(ValidateKey(call.key()));
  const std::string key = StoreKey(call.key());

  if (call.op() == KvCall::OP_FETCH) {
    absl::ReaderMutexLock lock(&mu_);
    PANTHERD_ASSIGN_OR_RETURN(KvItemState state, ReadStored(key));
    ApplyPending(call.key(), &state);
    KvReply reply;
    reply.set_call_id(call.call_id());
    if (state.has_value()) {
      reply.set_present(true);
      reply.set_item(EncodeKvItem(*state));
    }
    return reply;
  }

  // A direct operation (tests and tools): applied at once.
  const int64_t now =
      call.now_epoch_seconds() != 0 ? call.now_epoch_seconds() : absl::ToUnixSeconds(clock_());
  absl::ReaderMutexLock purge_lock(&mu_);
  absl::MutexLock lock(&StripeFor(key));
  PANTHERD_ASSIGN_OR_RETURN(KvItemState state, ReadStored(key));
  PANTHERD_ASSIGN_OR_RETURN(KvApplied applied, ApplyKvCall(call, now, &state));
  if (applied.write != KvApplied::Write::kNone) {
    store::WriteBatch batch;
    if (applied.write == KvApplied::Write::kPut) {
      batch.Put(Family::kKv, key, EncodeKvItem(*state));
    } else {
      batch.Delete(Family::kKv, key);
    }
    PANTHERD_RETURN_IF_ERROR(store_->Write(std::move(batch), store::Store::Durability::kBuffered));
  }
  return std::move(applied.reply);
}

absl::Status StoreKvBackend::AddPending(uint64_t txn, const KvCall& apply_writes) {
  for (const KvCall& write : apply_writes.writes()) {
    PANTHERD_RETURN_IF_ERROR(ValidateSingleWrite(write));
  }
  absl::MutexLock lock(&mu_);
  auto it = txns_.find(txn);
  if (it == txns_.end()) {
    return absl::InvalidArgumentError(
        absl::StrCat("key-value transaction ", txn, " is not open (its batch ended)"));
  }
  for (const KvCall& write : apply_writes.writes()) {
    const KvCall& held = it->second.writes.emplace_back(write);
    pending_by_key_[held.key()].emplace_back(txn, &held);
    ++pending_count_;
  }
  return absl::OkStatus();
}

uint64_t StoreKvBackend::BeginTxn() {
  absl::MutexLock lock(&mu_);
  const uint64_t txn = next_txn_++;
  txns_.emplace(txn, Txn());
  return txn;
}

void StoreKvBackend::DropTxn(uint64_t txn, std::vector<std::string>* keys) {
  auto it = txns_.find(txn);
  if (it == txns_.end()) return;
  absl::flat_hash_set<std::string> seen;
  for (const KvCall& write : it->second.writes) {
    auto held = pending_by_key_.find(write.key());
    if (held != pending_by_key_.end()) {
      auto& list = held->second;
      list.erase(std::remove_if(list.begin(), list.end(),
                                [txn](const auto& entry) { return entry.first == txn; }),
                 list.end());
      if (list.empty()) pending_by_key_.erase(held);
    }
    --pending_count_;
    if (keys != nullptr && seen.insert(write.key()).second) keys->push_back(write.key());
  }
  txns_.erase(it);
}

absl::Status StoreKvBackend::StageTxn(uint64_t txn, const std::vector<uint32_t>& dropped_tags,
                                      store::WriteBatch& batch, std::vector<std::string>* forget) {
  mu_.Lock();
  auto it = txns_.find(txn);
  if (it == txns_.end()) {
    mu_.Unlock();
    return absl::InvalidArgumentError(
        absl::StrCat("key-value transaction ", txn, " is not open (its batch ended)"));
  }
  const absl::flat_hash_set<uint32_t> dropped(dropped_tags.begin(), dropped_tags.end());
  // The final state of each written key, in first-write order.
  std::vector<std::string> order;
  absl::flat_hash_map<std::string, KvItemState> finals;
  for (const KvCall& write : it->second.writes) {
    if (write.event_tag() != 0 && dropped.contains(write.event_tag())) {
      if (forget != nullptr) forget->push_back(write.key());
      continue;
    }
    auto [entry, inserted] = finals.try_emplace(write.key());
    if (inserted) {
      order.push_back(write.key());
      absl::StatusOr<KvItemState> stored = ReadStored(StoreKey(write.key()));
      if (!stored.ok()) {
        mu_.Unlock();
        return stored.status();
      }
      entry->second = std::move(*stored);
    }
    if (!ApplyKvCall(write, write.now_epoch_seconds(), &entry->second).ok()) {
      // See ApplyPending: another worker changed the item meanwhile.
      if (forget != nullptr) forget->push_back(write.key());
    }
  }
  for (const std::string& key : order) {
    const KvItemState& state = finals[key];
    if (state.has_value()) {
      batch.Put(Family::kKv, StoreKey(key), EncodeKvItem(*state));
    } else {
      batch.Delete(Family::kKv, StoreKey(key));
    }
  }
  return absl::OkStatus();  // mu_ stays held until EndTxn.
}

void StoreKvBackend::EndTxn(uint64_t txn, bool committed, std::vector<std::string>* forget) {
  DropTxn(txn, committed ? nullptr : forget);
  mu_.Unlock();
}

void StoreKvBackend::AbortTxn(uint64_t txn, std::vector<std::string>* forget) {
  absl::MutexLock lock(&mu_);
  DropTxn(txn, forget);
}

void StoreKvBackend::StageHighWater(int64_t seconds, store::WriteBatch& batch) {
  absl::ReaderMutexLock lock(&mu_);
  if (seconds > high_water_) {
    batch.Put(Family::kMeta, kKvHighWaterKey, store::EncodeUint64(static_cast<uint64_t>(seconds)));
  }
}

void StoreKvBackend::AdvanceHighWater(int64_t seconds) {
  absl::MutexLock lock(&mu_);
  high_water_ = std::max(high_water_, seconds);
}

int64_t StoreKvBackend::committed_high_water() const {
  absl::ReaderMutexLock lock(&mu_);
  return high_water_;
}

size_t StoreKvBackend::pending_writes() const {
  absl::ReaderMutexLock lock(&mu_);
  return pending_count_;
}

absl::Status StoreKvBackend::Snapshot(size_t max_items,
                                      std::vector<std::pair<std::string, std::string>>* items) {
  const std::string prefix = StoreKey("");
  absl::ReaderMutexLock lock(&mu_);
  bool too_many = false;
  absl::flat_hash_map<std::string, size_t> index;
  PANTHERD_RETURN_IF_ERROR(
      store_->Scan(Family::kKv, prefix, [&](absl::string_view key, absl::string_view value) {
        if (items->size() >= max_items) {
          too_many = true;
          return false;
        }
        items->emplace_back(std::string(key.substr(prefix.size())), std::string(value));
        if (pending_by_key_.contains(items->back().first)) {
          index[items->back().first] = items->size() - 1;
        }
        return true;
      }));
  if (!too_many) {
    // Held writes: their keys' items as the other workers must see them.
    std::vector<size_t> removed;
    for (const auto& [key, writes] : pending_by_key_) {
      KvItemState state;
      auto at = index.find(key);
      if (at != index.end()) {
        absl::StatusOr<KvItem> item = DecodeKvItem(key, (*items)[at->second].second);
        if (!item.ok()) return item.status();
        state = std::move(*item);
      }
      ApplyPending(key, &state);
      if (at != index.end()) {
        if (state.has_value()) {
          (*items)[at->second].second = EncodeKvItem(*state);
        } else {
          removed.push_back(at->second);
        }
      } else if (state.has_value()) {
        if (items->size() >= max_items) {
          too_many = true;
          break;
        }
        items->emplace_back(key, EncodeKvItem(*state));
      }
    }
    std::sort(removed.rbegin(), removed.rend());
    for (size_t i : removed) items->erase(items->begin() + static_cast<std::ptrdiff_t>(i));
  }
  if (too_many) {
    items->clear();
    return absl::ResourceExhaustedError(
        absl::StrCat("more than ", max_items, " key-value items are stored"));
  }
  return absl::OkStatus();
}

absl::StatusOr<int64_t> StoreKvBackend::PurgeExpired(int64_t horizon_seconds) {
  const std::string prefix = StoreKey("");
  auto expired = [horizon_seconds](absl::string_view value) {
    const int64_t expiry = EncodedExpiry(value);
    return expiry > 0 && expiry <= horizon_seconds;
  };
  std::vector<std::string> candidates;
  PANTHERD_RETURN_IF_ERROR(
      store_->Scan(Family::kKv, prefix, [&](absl::string_view key, absl::string_view value) {
        if (expired(value)) candidates.emplace_back(key);
        return true;
      }));
  int64_t purged = 0;
  for (size_t i = 0; i < candidates.size(); i += kPurgeChunk) {
    // Exclusive: no transaction stages or commits meanwhile, and no reader
    // sees an item half purged.
    absl::MutexLock lock(&mu_);
    store::WriteBatch batch;
    int64_t n = 0;
    for (size_t j = i; j < std::min(candidates.size(), i + kPurgeChunk); ++j) {
      const std::string& key = candidates[j];
      if (pending_by_key_.contains(absl::string_view(key).substr(prefix.size()))) continue;
      absl::StatusOr<std::string> stored = store_->Get(Family::kKv, key);
      if (absl::IsNotFound(stored.status())) continue;
      if (!stored.ok()) return stored.status();
      if (!expired(*stored)) continue;
      batch.Delete(Family::kKv, key);
      ++n;
    }
    if (n > 0) PANTHERD_RETURN_IF_ERROR(store_->Write(std::move(batch)));
    purged += n;
  }
  return purged;
}

}  // namespace pantherd::engine
