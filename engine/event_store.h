// The event store: every accepted event, kept in its normalised form (what
// the rules saw, p_ fields included) for search, for the events behind an
// alert, and for replays, with a retention period.
//
// Events are written by the alert engine in the same atomic write as the
// rest of their batch (AlertEngine::ApplyBatch, when
// AlertEngineOptions::event_retention > 0), so ingestion stays exactly-once:
// a stored event was processed, a processed event is stored. Duplicates
// (already processed ids) are not stored again.
//
// Layout (store family kEvents, compressed with ZSTD; docs/storage.md):
//   <log type> \0 i64(p_event_time, unix µs) <id>  ->  the normalised JSON,
//                                                     compressed on its own
// Values are compressed by EventEncoder (engine/event_codec.h), with a zstd
// dictionary trained per log type once enough events were seen; readers
// decode them with EventDecoder (ParseStoredEvent, ScanEvents). Values
// stored before that format (the raw JSON) still read.
// where <id> is the event's id (Okta's uuid) or, for an event without one,
// "#" and 16 hex digits of SHA-256 of its JSON. Keys of one log type sort by
// event time, so a time range of one log type is one range scan.
//
// The window index (family kWindowEvents) says which events were counted
// into which dedup window / alert:
//   w \0 <dedup window key> \0 <event key>  ->  ""   (window below threshold)
//   a \0 <alert id> \0 <event key>           ->  ""   (counted into the alert)
// When a window's alert is created, its "w" entries become "a" entries in
// the same write.
//
// Thread-safety: the functions only read or write through the Store, which
// is thread-safe.
#ifndef PANTHERD_ENGINE_EVENT_STORE_H_
#define PANTHERD_ENGINE_EVENT_STORE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "engine/event_codec.h"
#include "store/store.h"

namespace pantherd::engine {

// The key of an event of `log_type` at `event_time` (µs precision) with
// `event_id` (may be empty: then `json` names it).
std::string EventKey(absl::string_view log_type, absl::Time event_time, absl::string_view event_id,
                     absl::string_view json);

// The smallest key of `log_type` at or after `t` (a scan start or end).
std::string EventTimeKey(absl::string_view log_type, absl::Time t);

// One stored event. The views point into the key and value read (or the
// decoder's buffer) and are valid only as long as those are.
struct StoredEvent {
  absl::string_view key;
  absl::string_view log_type;
  absl::Time event_time;
  absl::string_view id;    // the event id, or "#<hex>" for one without
  absl::string_view json;  // the normalised event (decoded)
};

// Parses a key of family kEvents; `json` stays empty. InvalidArgument when
// the key is not one.
absl::StatusOr<StoredEvent> ParseStoredEventKey(absl::string_view key);

// Parses a key of family kEvents and its stored value, which `decoder`
// decodes: `json` points into `value` (a raw JSON value) or into the
// decoder's buffer, valid until its next Decode. Errors: InvalidArgument
// when the key is not one; the decoder's (DataLoss for a value that does
// not decode).
absl::StatusOr<StoredEvent> ParseStoredEvent(absl::string_view key, absl::string_view value,
                                             EventDecoder& decoder);

// Calls `fn` for every stored event of `log_type` with since <= event time
// < until, in event-time order (ties by id), until it returns false. Reads
// exactly that range, decoding each value with one decoder (the event's
// `json` is valid only during its call). `scanned`, when not null, counts
// the events read. Errors: the store's; DataLoss for a key or value that
// does not parse.
absl::Status ScanEvents(const store::Store& store, absl::string_view log_type, absl::Time since,
                        absl::Time until, absl::FunctionRef<bool(const StoredEvent&)> fn,
                        int64_t* scanned = nullptr);

// The log types that have stored events (one seek per log type).
absl::StatusOr<std::vector<std::string>> StoredLogTypes(const store::Store& store);

// Deletes every stored event whose event time is before `cutoff`, a chunk
// per write; returns how many. Window-index entries are small and kept: one
// whose event is gone reads as "not retained".
absl::StatusOr<int64_t> PurgeEventsBefore(store::Store& store, absl::Time cutoff);

// The window index keys (see the file comment).
std::string WindowEventKey(absl::string_view window_key, absl::string_view event_key);
std::string WindowEventPrefix(absl::string_view window_key);
std::string AlertEventKey(absl::string_view alert_id, absl::string_view event_key);
std::string AlertEventPrefix(absl::string_view alert_id);

}  // namespace pantherd::engine

#endif  // PANTHERD_ENGINE_EVENT_STORE_H_
