// File: engine/kv_item.cc

#include "engine/kv_item.h"

#include <utility>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "store/keys.h"

namespace pantherd::engine {
namespace {

using internal::KvCall;
using internal::KvReply;

constexpr char kFormatVersion = 1;

void AppendU32(std::string* out, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) {
    out->push_back(static_cast<char>((v >> shift) & 0xff));
  }
}

bool ReadU32(absl::string_view* in, uint32_t* v) {
  if (in->size() < 4) return false;
  *v = 0;
  for (int i = 0; i < 4; ++i) *v = (*v << 8) | static_cast<unsigned char>((*in)[i]);
  in->remove_prefix(4);
  return true;
}

bool ReadU64(absl::string_view* in, uint64_t* v) {
  if (in->size() < 8) return false;
  *v = 0;
  for (int i = 0; i < 8; ++i) *v = (*v << 8) | static_cast<unsigned char>((*in)[i]);
  in->remove_prefix(8);
  return true;
}

void SetMembers(const KvItem& item, KvReply* reply) {
  for (const std::string& m : item.members) reply->add_values(m);
}

bool LooksLikeJsonObject(absl::string_view json) {
  json = absl::StripLeadingAsciiWhitespace(json);
  return !json.empty() && json.front() == '{';
}

}  // namespace

std::string EncodeKvItem(const KvItem& item) {
  std::string out = store::EncodeUint64(static_cast<uint64_t>(item.expiry));
  out.push_back(kFormatVersion);
  store::AppendUint64(&out, static_cast<uint64_t>(item.counter));
  AppendU32(&out, static_cast<uint32_t>(item.members.size()));
  for (const std::string& m : item.members) {
    AppendU32(&out, static_cast<uint32_t>(m.size()));
    out += m;
  }
  AppendU32(&out, item.has_dictionary ? static_cast<uint32_t>(item.dictionary.size()) : 0);
  if (item.has_dictionary) out += item.dictionary;
  return out;
}

absl::StatusOr<KvItem> DecodeKvItem(absl::string_view key, absl::string_view value) {
  auto corrupt = [&] {
    return absl::DataLossError(
        absl::StrCat("kv value of key '", absl::CHexEscape(key), "' does not decode"));
  };
  KvItem item;
  uint64_t expiry, counter;
  if (!ReadU64(&value, &expiry) || value.empty() || value[0] != kFormatVersion) return corrupt();
  value.remove_prefix(1);
  if (!ReadU64(&value, &counter)) return corrupt();
  item.expiry = static_cast<int64_t>(expiry);
  item.counter = static_cast<int64_t>(counter);
  uint32_t count;
  if (!ReadU32(&value, &count)) return corrupt();
  for (uint32_t i = 0; i < count; ++i) {
    uint32_t len;
    if (!ReadU32(&value, &len) || value.size() < len) return corrupt();
    item.members.emplace(value.substr(0, len));
    value.remove_prefix(len);
  }
  uint32_t len;
  if (!ReadU32(&value, &len) || value.size() != len) return corrupt();
  item.has_dictionary = len > 0;
  item.dictionary = std::string(value);
  return item;
}

bool IsKvWrite(KvCall::Op op) {
  switch (op) {
    case KvCall::OP_PUT_STRING_SET:
    case KvCall::OP_ADD_TO_STRING_SET:
    case KvCall::OP_REMOVE_FROM_STRING_SET:
    case KvCall::OP_RESET_STRING_SET:
    case KvCall::OP_INCREMENT_COUNTER:
    case KvCall::OP_RESET_COUNTER:
    case KvCall::OP_SET_KEY_EXPIRATION:
    case KvCall::OP_PUT_DICTIONARY:
    case KvCall::OP_APPLY_WRITES:
      return true;
    default:
      return false;
  }
}

absl::StatusOr<KvApplied> ApplyKvCall(const KvCall& call, int64_t now, KvItemState* state) {
  if (call.key().empty() || call.key().size() > kMaxKvKeyBytes) {
    return absl::InvalidArgumentError(absl::StrCat("key-value keys must have 1 to ", kMaxKvKeyBytes,
                                                   " bytes, got ", call.key().size()));
  }
  if (call.expire_epoch_seconds() < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("expiry must be seconds since the epoch, got ", call.expire_epoch_seconds()));
  }
  // The current item; an expired one is absent (and replaced or deleted
  // when the operation writes it).
  KvItem item;
  bool present = false;
  bool expired = false;
  if (state->has_value()) {
    if ((*state)->expiry != 0 && (*state)->expiry <= now) {
      expired = true;
    } else {
      item = **state;
      present = true;
    }
  }

  using Write = KvApplied::Write;
  Write write = Write::kNone;
  auto apply_expiry = [&] {
    if (call.expire_epoch_seconds() != 0) item.expiry = call.expire_epoch_seconds();
  };
  // Replaces the whole item, keeping the current expiry unless one is given.
  auto replace = [&](KvItem fresh) {
    fresh.expiry = item.expiry;
    item = std::move(fresh);
    apply_expiry();
  };

  KvApplied out;
  KvReply& reply = out.reply;
  reply.set_call_id(call.call_id());
  switch (call.op()) {
    case KvCall::OP_GET_STRING_SET:
      SetMembers(item, &reply);
      break;
    case KvCall::OP_PUT_STRING_SET: {
      KvItem fresh;
      fresh.members.insert(call.values().begin(), call.values().end());
      replace(std::move(fresh));
      write = item.members.empty() ? Write::kDelete : Write::kPut;
      SetMembers(item, &reply);
      break;
    }
    case KvCall::OP_ADD_TO_STRING_SET:
      item.members.insert(call.values().begin(), call.values().end());
      if (!call.values().empty()) {
        apply_expiry();
        write = Write::kPut;
      }
      SetMembers(item, &reply);
      break;
    case KvCall::OP_REMOVE_FROM_STRING_SET:
      for (const std::string& v : call.values()) item.members.erase(v);
      if (present) write = Write::kPut;
      SetMembers(item, &reply);
      break;
    case KvCall::OP_RESET_STRING_SET:
    case KvCall::OP_RESET_COUNTER:
      write = Write::kDelete;
      break;
    case KvCall::OP_INCREMENT_COUNTER: {
      int64_t value;
      if (__builtin_add_overflow(item.counter, call.increment(), &value)) {
        return absl::OutOfRangeError(absl::StrCat("counter '", call.key(), "' would overflow"));
      }
      item.counter = value;
      apply_expiry();
      write = Write::kPut;
      reply.set_counter(item.counter);
      break;
    }
    case KvCall::OP_GET_COUNTER:
      reply.set_counter(item.counter);
      break;
    case KvCall::OP_SET_KEY_EXPIRATION:
      if (present && call.expire_epoch_seconds() != 0) {
        apply_expiry();
        write = Write::kPut;
      }
      break;
    case KvCall::OP_GET_DICTIONARY:
      reply.set_json(item.has_dictionary ? item.dictionary : "{}");
      break;
    case KvCall::OP_PUT_DICTIONARY: {
      if (!LooksLikeJsonObject(call.json())) {
        return absl::InvalidArgumentError("put_dictionary needs a JSON object");
      }
      KvItem fresh;
      fresh.has_dictionary = true;
      fresh.dictionary = call.json();
      replace(std::move(fresh));
      write = Write::kPut;
      reply.set_json(item.dictionary);
      break;
    }
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("unknown key-value operation ", static_cast<int>(call.op())));
  }

  if (write == Write::kPut && item.Empty()) write = Write::kDelete;
  // A read never writes, not even to delete an expired item: reads must stay
  // reads in a worker's write log (engine/kv_cache.h), and expired items are
  // deleted by the purge (StoreKvBackend::PurgeExpired).
  if (write == Write::kDelete && !present && !expired) write = Write::kNone;
  if (write == Write::kPut) {
    *state = std::move(item);
  } else if (write == Write::kDelete) {
    state->reset();
  }
  out.write = write;
  return out;
}

}  // namespace pantherd::engine
