// File: engine/kv_memory.cc

#include "engine/kv_memory.h"

#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace pantherd::engine {

using internal::KvCall;
using internal::KvReply;

KvMemory::KvMemory() : KvMemory([] { return absl::Now(); }) {}

KvMemory::KvMemory(base::Clock clock) : clock_(std::move(clock)) {}

KvMemory::Entry* KvMemory::FindLive(const std::string& key, int64_t now) {
  auto it = entries_.find(key);
  if (it == entries_.end()) return nullptr;
  if (it->second.expires_at != 0 && it->second.expires_at <= now) {
    entries_.erase(it);
    return nullptr;
  }
  return &it->second;
}

KvMemory::Entry& KvMemory::GetOrCreate(const std::string& key, int64_t now) {
  if (Entry* entry = FindLive(key, now)) return *entry;
  return entries_[key];
}

void KvMemory::DropIfEmpty(const std::string& key) {
  auto it = entries_.find(key);
  if (it != entries_.end() && it->second.empty()) entries_.erase(it);
}

absl::StatusOr<KvReply> KvMemory::Call(const KvCall& call) {
  absl::MutexLock lock(&mu_);
  ++calls_;
  if (call.key().empty() || call.key().size() > kMaxKeyBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("key-value keys must have 1 to ", kMaxKeyBytes, " bytes"));
  }
  if (call.expire_epoch_seconds() < 0) {
    return absl::InvalidArgumentError("negative expiry");
  }
  const int64_t now = absl::ToUnixSeconds(clock_());
  const std::string& key = call.key();
  const int64_t expire = call.expire_epoch_seconds();
  KvReply reply;
  reply.set_call_id(call.call_id());
  auto set_expiry = [expire](Entry& entry) {
    if (expire != 0) entry.expires_at = expire;
  };
  auto reply_members = [&reply](const Entry* entry) {
    if (entry == nullptr) return;
    for (const std::string& s : entry->strings) reply.add_values(s);
  };

  switch (call.op()) {
    case KvCall::OP_GET_STRING_SET:
      reply_members(FindLive(key, now));
      return reply;

    case KvCall::OP_PUT_STRING_SET: {
      entries_.erase(key);
      if (call.values().empty()) return reply;
      Entry& entry = entries_[key];
      entry.strings.insert(call.values().begin(), call.values().end());
      set_expiry(entry);
      return reply;
    }

    case KvCall::OP_ADD_TO_STRING_SET: {
      Entry& entry = GetOrCreate(key, now);
      entry.strings.insert(call.values().begin(), call.values().end());
      set_expiry(entry);
      reply_members(&entry);
      DropIfEmpty(key);
      return reply;
    }

    case KvCall::OP_REMOVE_FROM_STRING_SET: {
      Entry& entry = GetOrCreate(key, now);
      for (const std::string& s : call.values()) entry.strings.erase(s);
      set_expiry(entry);
      reply_members(&entry);
      DropIfEmpty(key);
      return reply;
    }

    case KvCall::OP_RESET_STRING_SET:
    case KvCall::OP_RESET_COUNTER:
      entries_.erase(key);
      return reply;

    case KvCall::OP_INCREMENT_COUNTER: {
      Entry& entry = GetOrCreate(key, now);
      int64_t sum;
      if (__builtin_add_overflow(entry.counter, call.increment(), &sum)) {
        DropIfEmpty(key);
        return absl::OutOfRangeError(absl::StrCat("counter [", key, "] would overflow"));
      }
      entry.has_counter = true;
      entry.counter = sum;
      set_expiry(entry);
      reply.set_counter(entry.counter);
      return reply;
    }

    case KvCall::OP_GET_COUNTER:
      if (const Entry* entry = FindLive(key, now)) reply.set_counter(entry->counter);
      return reply;

    case KvCall::OP_SET_KEY_EXPIRATION:
      if (Entry* entry = FindLive(key, now)) entry->expires_at = expire;
      return reply;

    case KvCall::OP_GET_DICTIONARY: {
      const Entry* entry = FindLive(key, now);
      reply.set_json(entry != nullptr && !entry->dictionary_json.empty() ? entry->dictionary_json
                                                                         : "{}");
      return reply;
    }

    case KvCall::OP_PUT_DICTIONARY: {
      if (call.json().empty() || call.json().front() != '{') {
        return absl::InvalidArgumentError("put_dictionary needs a JSON object text");
      }
      entries_.erase(key);
      Entry& entry = entries_[key];
      entry.dictionary_json = call.json();
      set_expiry(entry);
      return reply;
    }

    default:
      return absl::InvalidArgumentError(
          absl::StrCat("unknown key-value operation ", static_cast<int>(call.op())));
  }
}

void KvMemory::Clear() {
  absl::MutexLock lock(&mu_);
  entries_.clear();
}

size_t KvMemory::size() const {
  absl::MutexLock lock(&mu_);
  return entries_.size();
}

int64_t KvMemory::calls() const {
  absl::MutexLock lock(&mu_);
  return calls_;
}

}  // namespace pantherd::engine
