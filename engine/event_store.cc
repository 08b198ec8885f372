#include "engine/event_store.h"

#include <openssl/evp.h>

#include <utility>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "proto/base/status_macros.h"
#include "store/keys.h"

namespace pantherd::engine {
namespace {

using store::Family;

constexpr char kSep = '\0';
constexpr size_t kPurgeChunk = 1000;

std::string Sep() { return std::string(1, kSep); }

std::string ContentId(absl::string_view json) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(json.data(), json.size(), digest, &len, EVP_sha256(), nullptr);
  return absl::StrCat(
      "#", absl::BytesToHexString(absl::string_view(reinterpret_cast<const char*>(digest), 8)));
}

}  // namespace

std::string EventKey(absl::string_view log_type, absl::Time event_time, absl::string_view event_id,
                     absl::string_view json) {
  return absl::StrCat(EventTimeKey(log_type, event_time),
                      event_id.empty() ? ContentId(json) : std::string(event_id));
}

std::string EventTimeKey(absl::string_view log_type, absl::Time t) {
  return absl::StrCat(log_type, Sep(), store::EncodeInt64(absl::ToUnixMicros(t)));
}

absl::StatusOr<StoredEvent> ParseStoredEventKey(absl::string_view key) {
  const size_t sep = key.find(kSep);
  if (sep == absl::string_view::npos || key.size() < sep + 1 + 8) {
    return absl::InvalidArgumentError(
        absl::StrCat("not an event key: \"", absl::CHexEscape(key.substr(0, 80)), "\""));
  }
  PANTHERD_ASSIGN_OR_RETURN(int64_t micros, store::DecodeInt64(key.substr(sep + 1, 8)));
  StoredEvent e;
  e.key = key;
  e.log_type = key.substr(0, sep);
  e.event_time = absl::FromUnixMicros(micros);
  e.id = key.substr(sep + 1 + 8);
  return e;
}

absl::StatusOr<StoredEvent> ParseStoredEvent(absl::string_view key, absl::string_view value,
                                             EventDecoder& decoder) {
  PANTHERD_ASSIGN_OR_RETURN(StoredEvent e, ParseStoredEventKey(key));
  PANTHERD_ASSIGN_OR_RETURN(e.json, decoder.Decode(value));
  return e;
}

absl::Status ScanEvents(const store::Store& store, absl::string_view log_type, absl::Time since,
                        absl::Time until, absl::FunctionRef<bool(const StoredEvent&)> fn,
                        int64_t* scanned) {
  const std::string prefix = absl::StrCat(log_type, Sep());
  const std::string start = EventTimeKey(log_type, since);
  const std::string end = EventTimeKey(log_type, until);
  EventDecoder decoder(store);
  absl::Status error;
  PANTHERD_RETURN_IF_ERROR(store.Scan(
      Family::kEvents, prefix,
      [&](absl::string_view key, absl::string_view value) {
        if (key >= absl::string_view(end)) return false;
        absl::StatusOr<StoredEvent> e = ParseStoredEvent(key, value, decoder);
        if (!e.ok()) {
          error = absl::IsInvalidArgument(e.status()) ? absl::DataLossError(e.status().message())
                                                      : e.status();
          return false;
        }
        if (scanned != nullptr) ++*scanned;
        return fn(*e);
      },
      start));
  return error;
}

absl::StatusOr<std::vector<std::string>> StoredLogTypes(const store::Store& store) {
  std::vector<std::string> types;
  std::string from;
  while (true) {
    std::string found;
    PANTHERD_RETURN_IF_ERROR(store.Scan(
        Family::kEvents, "",
        [&](absl::string_view key, absl::string_view) {
          const size_t sep = key.find(kSep);
          found = std::string(key.substr(0, sep));
          return false;
        },
        from));
    if (found.empty()) break;
    types.push_back(found);
    // The next log type starts after every key "<found>\0...": "<found>\1".
    from = absl::StrCat(found, std::string(1, '\1'));
  }
  return types;
}

absl::StatusOr<int64_t> PurgeEventsBefore(store::Store& store, absl::Time cutoff) {
  PANTHERD_ASSIGN_OR_RETURN(std::vector<std::string> types, StoredLogTypes(store));
  int64_t deleted = 0;
  for (const std::string& log_type : types) {
    const std::string prefix = absl::StrCat(log_type, Sep());
    const std::string end = EventTimeKey(log_type, cutoff);
    // Each chunk's scan resumes after the last key deleted, so it never
    // walks over the tombstones of the chunks before it.
    std::string resume = prefix;
    int64_t deleted_here = 0;
    while (true) {
      // Keys only: the values are not decoded.
      std::vector<std::string> keys;
      PANTHERD_RETURN_IF_ERROR(store.Scan(
          Family::kEvents, prefix,
          [&](absl::string_view key, absl::string_view) {
            if (key >= absl::string_view(end)) return false;
            keys.emplace_back(key);
            return keys.size() < kPurgeChunk;
          },
          resume));
      if (keys.empty()) break;
      store::WriteBatch batch;
      for (const std::string& k : keys) batch.Delete(Family::kEvents, k);
      PANTHERD_RETURN_IF_ERROR(store.Write(std::move(batch)));
      deleted_here += static_cast<int64_t>(keys.size());
      if (keys.size() < kPurgeChunk) break;
      resume = absl::StrCat(keys.back(), Sep());  // the smallest key after it
    }
    // Deletes only write tombstones: the events' bytes stay on disk until a
    // compaction rewrites their files. Compact the purged range now, so the
    // store shrinks by what was purged.
    if (deleted_here > 0) {
      PANTHERD_RETURN_IF_ERROR(store.CompactRange(Family::kEvents, prefix, end));
    }
    deleted += deleted_here;
  }
  return deleted;
}

std::string EncodeProcessedRecord(int64_t expiry_seconds, absl::Time event_time) {
  std::string value = store::EncodeUint64(static_cast<uint64_t>(expiry_seconds));
  store::AppendInt64(&value, absl::ToUnixMicros(event_time));
  return value;
}

absl::StatusOr<ProcessedRecord> DecodeProcessedRecord(absl::string_view value) {
  if (value.size() != store::kEncodedInt64Size && value.size() != 2 * store::kEncodedInt64Size) {
    return absl::InvalidArgumentError(
        absl::StrCat("a processed-event record is 8 or 16 bytes, this one is ", value.size()));
  }
  ProcessedRecord record;
  PANTHERD_ASSIGN_OR_RETURN(const uint64_t expiry,
                            store::DecodeUint64(value.substr(0, store::kEncodedInt64Size)));
  record.expiry_seconds = static_cast<int64_t>(expiry);
  if (value.size() > store::kEncodedInt64Size) {
    PANTHERD_ASSIGN_OR_RETURN(const int64_t micros,
                              store::DecodeInt64(value.substr(store::kEncodedInt64Size)));
    record.event_time = absl::FromUnixMicros(micros);
  }
  return record;
}

absl::StatusOr<EventLookup> FindStoredEvent(const store::Store& store, absl::string_view log_type,
                                            absl::string_view event_id) {
  EventLookup lookup;
  if (event_id.empty()) return lookup;  // kNoRecord: such events have no id
  absl::StatusOr<std::string> value =
      store.Get(Family::kProcessed, store::Join(log_type, event_id));
  if (absl::IsNotFound(value.status())) return lookup;
  if (!value.ok()) return value.status();
  absl::StatusOr<ProcessedRecord> record = DecodeProcessedRecord(*value);
  if (!record.ok()) {
    return absl::DataLossError(absl::StrCat("processed-event record for log type ", log_type,
                                            " event ", event_id, ": ", record.status().message()));
  }
  if (!record->event_time.has_value()) {
    lookup.result = EventLookup::Result::kNoEventTime;
    return lookup;
  }
  lookup.event_time = *record->event_time;
  absl::StatusOr<std::string> stored =
      store.Get(Family::kEvents, EventKey(log_type, lookup.event_time, event_id, ""));
  if (absl::IsNotFound(stored.status())) {
    lookup.result = EventLookup::Result::kNotStored;
    return lookup;
  }
  if (!stored.ok()) return stored.status();
  EventDecoder decoder(store);
  PANTHERD_ASSIGN_OR_RETURN(absl::string_view json, decoder.Decode(*stored));
  lookup.result = EventLookup::Result::kFound;
  lookup.json = std::string(json);
  return lookup;
}

std::string WindowEventKey(absl::string_view window_key, absl::string_view event_key) {
  return absl::StrCat(WindowEventPrefix(window_key), event_key);
}
std::string WindowEventPrefix(absl::string_view window_key) {
  return absl::StrCat("w", Sep(), window_key, Sep());
}
std::string AlertEventKey(absl::string_view alert_id, absl::string_view event_key) {
  return absl::StrCat(AlertEventPrefix(alert_id), event_key);
}
std::string AlertEventPrefix(absl::string_view alert_id) {
  return absl::StrCat("a", Sep(), alert_id, Sep());
}

}  // namespace pantherd::engine
