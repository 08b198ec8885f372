#include "engine/kv_store.h"

#include <string>
#include <utility>
#include <vector>

#include "absl/hash/hash.h"
#include "absl/strings/str_cat.h"
#include "store/keys.h"
#include "store/status_macros.h"

namespace pantherd::engine {
namespace {

using internal::KvCall;
using internal::KvReply;
using store::Family;

bool ReadU64(absl::string_view* in, uint64_t* v) {
  if (in->size() < 8) return false;
  *v = 0;
  for (int i = 0; i < 8; ++i) *v = (*v << 8) | static_cast<unsigned char>((*in)[i]);
  in->remove_prefix(8);
  return true;
}

}  // namespace

StoreKvBackend::StoreKvBackend(store::Store* store, std::function<absl::Time()> clock)
    : store_(store), clock_(std::move(clock)) {}

absl::Mutex& StoreKvBackend::StripeFor(absl::string_view key) {
  return stripes_[absl::HashOf(key) % stripes_.size()];
}

absl::StatusOr<KvReply> StoreKvBackend::Call(const KvCall& call) {
  if (call.op() == KvCall::OP_APPLY_WRITES) {
    KvReply reply;
    reply.set_call_id(call.call_id());
    for (const KvCall& write : call.writes()) {
      if (write.op() == KvCall::OP_APPLY_WRITES || !IsKvWrite(write.op())) {
        return absl::InvalidArgumentError(absl::StrCat(
            "apply_writes: operation ", static_cast<int>(write.op()), " is not a single write"));
      }
      PANTHERD_RETURN_IF_ERROR(Call(write).status());
    }
    return reply;
  }
  if (call.key().empty() || call.key().size() > kMaxKvKeyBytes) {
    return absl::InvalidArgumentError(absl::StrCat("key-value keys must have 1 to ", kMaxKvKeyBytes,
                                                   " bytes, got ", call.key().size()));
  }
  const std::string key = store::Join(kCachingKvNamespace, call.key());
  const int64_t now =
      call.now_epoch_seconds() != 0 ? call.now_epoch_seconds() : absl::ToUnixSeconds(clock_());

  absl::MutexLock lock(&StripeFor(key));
  KvItemState state;
  absl::StatusOr<std::string> stored = store_->Get(Family::kKv, key);
  if (stored.ok()) {
    if (call.op() == KvCall::OP_FETCH) {
      // Checked, so that a corrupt value fails here rather than in a worker.
      PANTHERD_RETURN_IF_ERROR(DecodeKvItem(key, *stored).status());
      KvReply reply;
      reply.set_call_id(call.call_id());
      reply.set_present(true);
      reply.set_item(std::move(*stored));
      return reply;
    }
    PANTHERD_ASSIGN_OR_RETURN(state, DecodeKvItem(key, *stored));
  } else if (!absl::IsNotFound(stored.status())) {
    return stored.status();
  } else if (call.op() == KvCall::OP_FETCH) {
    KvReply reply;
    reply.set_call_id(call.call_id());
    return reply;
  }

  PANTHERD_ASSIGN_OR_RETURN(KvApplied applied, ApplyKvCall(call, now, &state));
  if (applied.write != KvApplied::Write::kNone) {
    store::WriteBatch batch;
    if (applied.write == KvApplied::Write::kPut) {
      batch.Put(Family::kKv, key, EncodeKvItem(*state));
    } else {
      batch.Delete(Family::kKv, key);
    }
    // Not fsync'ed on its own: the ingested batch that caused it commits with
    // an fsync'ed write, which makes this one durable too (Durability).
    PANTHERD_RETURN_IF_ERROR(store_->Write(std::move(batch), store::Store::Durability::kBuffered));
  }
  return std::move(applied.reply);
}

absl::Status StoreKvBackend::Snapshot(size_t max_items,
                                      std::vector<std::pair<std::string, std::string>>* items) {
  const std::string prefix = store::Join(kCachingKvNamespace, "");
  bool too_many = false;
  PANTHERD_RETURN_IF_ERROR(
      store_->Scan(Family::kKv, prefix, [&](absl::string_view key, absl::string_view value) {
        if (items->size() >= max_items) {
          too_many = true;
          return false;
        }
        items->emplace_back(std::string(key.substr(prefix.size())), std::string(value));
        return true;
      }));
  if (too_many) {
    items->clear();
    return absl::ResourceExhaustedError(
        absl::StrCat("more than ", max_items, " key-value items are stored"));
  }
  return absl::OkStatus();
}

absl::StatusOr<int64_t> StoreKvBackend::PurgeExpired() {
  const int64_t now = absl::ToUnixSeconds(clock_());
  const std::string prefix = store::Join(kCachingKvNamespace, "");
  std::vector<std::string> candidates;
  PANTHERD_RETURN_IF_ERROR(
      store_->Scan(Family::kKv, prefix, [&](absl::string_view key, absl::string_view value) {
        absl::string_view v = value;
        uint64_t expiry;
        if (ReadU64(&v, &expiry) && expiry != 0 && static_cast<int64_t>(expiry) <= now) {
          candidates.emplace_back(key);
        }
        return true;
      }));
  int64_t purged = 0;
  for (const std::string& key : candidates) {
    absl::MutexLock lock(&StripeFor(key));
    // Re-check under the key's lock: it may have been rewritten meanwhile.
    absl::StatusOr<std::string> stored = store_->Get(Family::kKv, key);
    if (absl::IsNotFound(stored.status())) continue;
    if (!stored.ok()) return stored.status();
    absl::string_view v = *stored;
    uint64_t expiry;
    if (!ReadU64(&v, &expiry) || expiry == 0 || static_cast<int64_t>(expiry) > now) continue;
    PANTHERD_RETURN_IF_ERROR(store_->Delete(Family::kKv, key));
    ++purged;
  }
  return purged;
}

}  // namespace pantherd::engine
