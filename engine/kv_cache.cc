// File: engine/kv_cache.cc

#include "engine/kv_cache.h"

#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace pantherd::engine {

using internal::KvCall;
using internal::KvReply;

KvCache::KvCache(KvBackend* remote, base::Clock clock)
    : remote_(remote), clock_(std::move(clock)) {}

void KvCache::BeginRequest(const internal::KvSync& sync) {
  if (sync.has_snapshot()) {
    items_.clear();
    stale_.clear();
    complete_ = true;
    for (const internal::KvSnapshotItem& entry : sync.snapshot()) {
      absl::StatusOr<KvItem> item = DecodeKvItem(entry.key(), entry.item());
      if (!item.ok()) {  // Unusable: start empty and ask for every key.
        items_.clear();
        complete_ = false;
        break;
      }
      items_.emplace(entry.key(), *std::move(item));
    }
  }
  if (sync.clear_all() || items_.size() > kMaxItems) {
    if (!items_.empty() || complete_) ++clears_;
    items_.clear();
    stale_.clear();
    complete_ = false;
    return;
  }
  for (const std::string& key : sync.keys()) {
    items_.erase(key);
    if (complete_) stale_.insert(key);
  }
}

absl::StatusOr<KvReply> KvCache::Call(const KvCall& call) {
  if (call.op() == KvCall::OP_FETCH || call.op() == KvCall::OP_APPLY_WRITES) {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown key-value operation ", static_cast<int>(call.op())));
  }
  const int64_t now = NowSeconds();
  auto it = items_.find(call.key());
  if (it == items_.end()) {
    // Invalid calls fail before costing a fetch (the state is not read).
    KvItemState probe;
    KvCall check = call;
    check.set_op(KvCall::OP_GET_COUNTER);
    if (absl::Status s = ApplyKvCall(check, now, &probe).status(); !s.ok()) return s;
    if (complete_ && !stale_.contains(call.key())) {
      // Known to have no item.
      it = items_.emplace(call.key(), KvItemState()).first;
      ++hits_;
      return Apply(call, now, it);
    }
    KvCall fetch;
    fetch.set_op(KvCall::OP_FETCH);
    fetch.set_key(call.key());
    absl::StatusOr<KvReply> fetched = remote_->Call(fetch);
    if (!fetched.ok()) return fetched.status();
    ++fetches_;
    KvItemState state;
    if (fetched->present()) {
      absl::StatusOr<KvItem> item = DecodeKvItem(call.key(), fetched->item());
      if (!item.ok()) return item.status();
      state = std::move(*item);
    }
    it = items_.emplace(call.key(), std::move(state)).first;
    stale_.erase(call.key());
  } else {
    ++hits_;
  }
  return Apply(call, now, it);
}

absl::StatusOr<KvReply> KvCache::Apply(const KvCall& call, int64_t now, Items::iterator it) {
  absl::StatusOr<KvApplied> applied = ApplyKvCall(call, now, &it->second);
  if (!applied.ok()) return applied.status();
  if (applied->write != KvApplied::Write::kNone) {
    KvCall& logged = writes_.emplace_back(call);
    logged.set_call_id(0);
    logged.set_now_epoch_seconds(now);
    logged.set_event_tag(event_tag_);
    if (writes_.size() >= kMaxLoggedWrites) {
      KvCall flush;
      flush.set_op(KvCall::OP_APPLY_WRITES);
      for (KvCall& w : writes_) *flush.add_writes() = std::move(w);
      writes_.clear();
      if (absl::StatusOr<KvReply> done = remote_->Call(flush); !done.ok()) {
        // What was flushed is unknown now: forget every copy.
        items_.clear();
        stale_.clear();
        complete_ = false;
        return done.status();
      }
    }
  }
  return std::move(applied->reply);
}

int64_t KvCache::NowSeconds() {
  return event_now_ != 0 ? event_now_ : absl::ToUnixSeconds(clock_());
}

std::vector<KvCall> KvCache::TakeWrites() {
  std::vector<KvCall> out;
  out.swap(writes_);
  return out;
}

uint64_t KvChangeLog::Position() const {
  absl::MutexLock lock(&mu_);
  return first_ + changes_.size();
}

void KvChangeLog::Record(uint64_t writer, absl::string_view key) {
  absl::MutexLock lock(&mu_);
  changes_.push_back(Change{writer, std::string(key)});
  while (changes_.size() > capacity_) {
    changes_.pop_front();
    ++first_;
  }
}

internal::KvSync KvChangeLog::ChangesFor(uint64_t reader, uint64_t* position) const {
  internal::KvSync sync;
  absl::MutexLock lock(&mu_);
  const uint64_t end = first_ + changes_.size();
  if (*position < first_) {
    sync.set_clear_all(true);
  } else {
    absl::flat_hash_set<absl::string_view> seen;
    for (uint64_t p = *position; p < end; ++p) {
      const Change& c = changes_[p - first_];
      if (c.writer == reader || !seen.insert(c.key).second) continue;
      sync.add_keys(c.key);
    }
  }
  *position = end;
  return sync;
}

}  // namespace pantherd::engine
