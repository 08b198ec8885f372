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
// Layout (store family kEvents, whose files add no compression of their own;
// docs/storage.md):
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
#include <optional>
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
// per write; returns how many. Then, for each log type with deleted events,
// compacts the purged key range (Store::CompactRange), so the space the
// events held on disk is freed now rather than whenever RocksDB would next
// compact those files. Runs for as long as that takes (it rewrites at most
// the files holding the purged range): call it from a background thread,
// never under a lock that ingestion takes. Point deletes rather than a range
// delete: the count is exact, and the tombstones are gone with the
// compaction anyway. Window-index entries are small and kept: one whose
// event is gone reads as "not retained". Errors: the store's; a failed
// compaction leaves the events deleted (only their space is not freed yet).
absl::StatusOr<int64_t> PurgeEventsBefore(store::Store& store, absl::Time cutoff);

// PROCESSED-ID RECORDS (family kProcessed; written by AlertEngine::ApplyBatch
// for every processed event with an id, read by its duplicate check and
// purge and by FindStoredEvent):
//   log_type \0 event_id  ->  be64(expiry, unix s) i64(event time, unix µs)
// The event time is the one in the event's kEvents key (its p_event_time, or
// the processing time for an event without one), so the stored event can be
// found from its id. Records written before the time was added hold only the
// expiry (8 bytes); both forms are read.
struct ProcessedRecord {
  int64_t expiry_seconds = 0;
  std::optional<absl::Time> event_time;  // absent in an 8-byte record
};

// The 16-byte record for an id processed until `expiry_seconds` whose event
// is keyed at `event_time` (µs precision).
std::string EncodeProcessedRecord(int64_t expiry_seconds, absl::Time event_time);

// Decodes an 8- or 16-byte record; InvalidArgument for any other value.
absl::StatusOr<ProcessedRecord> DecodeProcessedRecord(absl::string_view value);

// What FindStoredEvent found.
struct EventLookup {
  enum class Result {
    kFound,        // `json` is the stored event, at `event_time`
    kNotStored,    // the id was processed (its event time is `event_time`) but
                   // no event is stored under it: it was older than the event
                   // retention when it arrived, has been purged since, or
                   // events were not being stored
    kNoEventTime,  // the id's record predates event times in records
    kNoRecord,     // no record: never processed, processed longer ago than
                   // the processed-id retention (then purged), or empty id
  };
  Result result = Result::kNoRecord;
  absl::Time event_time = absl::InfinitePast();  // kFound, kNotStored
  std::string json;                              // kFound
};

// Finds the stored event `event_id` of `log_type` without scanning: reads the
// id's processed record for its event time, then Gets its kEvents key (two
// point reads). For kNoEventTime and kNoRecord the event may still be stored
// (its record expired or is old): a caller that must know scans the log type
// (ScanEvents), O(its events). Events without an id are stored under a hash
// of their JSON and cannot be found by id. Errors: DataLoss for a record that
// does not decode; the store's.
absl::StatusOr<EventLookup> FindStoredEvent(const store::Store& store, absl::string_view log_type,
                                            absl::string_view event_id);

// The window index keys (see the file comment).
std::string WindowEventKey(absl::string_view window_key, absl::string_view event_key);
std::string WindowEventPrefix(absl::string_view window_key);
std::string AlertEventKey(absl::string_view alert_id, absl::string_view event_key);
std::string AlertEventPrefix(absl::string_view alert_id);

}  // namespace pantherd::engine

#endif  // PANTHERD_ENGINE_EVENT_STORE_H_
