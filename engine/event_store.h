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
// docs/storage.md): events are stored in blocks, the events of one batch
// and log type sorted by (event time, id) and cut into blocks of at most
// kMaxBlockEvents events spanning less than kMaxBlockSpan of event time:
//   <log type> \0 i64(t0, unix µs) <id0>  ->  0x03 varint(n) varint(span µs)
//                                              <compressed payload>
// where (t0, id0) is the block's first event, span its last event's time
// minus t0, and the payload, compressed as one value by EventEncoder
// (engine/event_codec.h, with the log type's dictionary), holds the n
// events in order: varint(t - t0) varint(|id|) id varint(|json|) json.
// One compression and one key per block rather than per event: a third
// less CPU and of bytes than a value per event (docs/performance.md).
// A value of another format (the raw JSON, or a single compressed event,
// written by earlier versions) is one event, keyed by its own time and id.
// <id> is the event's id (Okta's uuid) or, for an event without one, "#"
// and 16 hex digits of SHA-256 of its JSON. Keys of one log type sort by
// the time of their first event, so a time range [since, until) of one log
// type is one range scan from since - kMaxBlockSpan (the blocks that start
// before since may reach into it) to until.
//
// An event's key (EventKey: log type, time, id) names it in the window
// index and the processed-id records, whichever block holds it; readers
// find it in the block that covers its time (StoredEventReader).
//
// The window index (family kWindowEvents) says which events were counted
// into which dedup window / alert:
//   w \0 <dedup window key> \0 <event key>  ->  ""   (window below threshold)
//   a \0 <alert id> \0 <event key>           ->  ""   (counted into the alert)
// When a window's alert is created, its "w" entries become "a" entries in
// the same write.
//
// Thread-safety: the functions only read or write through the Store, which
// is thread-safe (and the EventEncoder, also thread-safe); a
// StoredEventScanner or StoredEventReader is used by one thread at a time.
#ifndef PANTHERD_ENGINE_EVENT_STORE_H_
#define PANTHERD_ENGINE_EVENT_STORE_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "engine/event_codec.h"
#include "store/store.h"

namespace pantherd::engine {

// The leading byte of a block value.
inline constexpr char kEventValueBlock = '\x03';
// A block holds at most this many events ...
inline constexpr size_t kMaxBlockEvents = 64;
// ... whose times are less than this apart ...
inline constexpr absl::Duration kMaxBlockSpan = absl::Seconds(60);
// ... and whose JSON adds up to at most this many bytes (an event larger
// than that has a block of its own).
inline constexpr size_t kMaxBlockBytes = 1 << 20;

// The key of an event of `log_type` at `event_time` (µs precision) with
// `event_id` (may be empty: then `json` names it).
std::string EventKey(absl::string_view log_type, absl::Time event_time, absl::string_view event_id,
                     absl::string_view json);

// The id an event is stored under: `event_id`, or for an empty one "#" and
// 16 hex digits of SHA-256 of `json`.
std::string StoredEventId(absl::string_view event_id, absl::string_view json);

// The smallest key of `log_type` at or after `t` (a scan start or end).
std::string EventTimeKey(absl::string_view log_type, absl::Time t);

// One stored event. The views point into memory of whoever hands it out
// and are valid only during the call that receives it (or as documented).
struct StoredEvent {
  absl::string_view key;  // EventKey(log_type, event_time, id)
  absl::string_view log_type;
  absl::Time event_time;
  absl::string_view id;    // the event id, or "#<hex>" for one without
  absl::string_view json;  // the normalised event (decoded)
};

// Parses a key of family kEvents (a block's key names its first event);
// `json` stays empty. InvalidArgument when the key is not one.
absl::StatusOr<StoredEvent> ParseStoredEventKey(absl::string_view key);

// An event to store, for PlanEventBlocks and EncodeEventBlock. The views
// must outlive the calls.
struct EventToStore {
  absl::string_view log_type;
  int64_t time_us = 0;   // the event time of its key, unix µs
  absl::string_view id;  // StoredEventId
  absl::string_view json;
};

// Groups `events` into blocks (see the file comment): the indices of each
// block's events, in order. Every event is in exactly one block. Pure.
std::vector<std::vector<size_t>> PlanEventBlocks(absl::Span<const EventToStore> events);

// One block ready to write.
struct EncodedEventBlock {
  std::string key;
  std::string value;
  std::vector<size_t> members;  // indices of its events in the planned input
};

// Encodes the block of `events` listed by `members` (one block of
// PlanEventBlocks' plan: one log type, in order) with `encoder`. Thread-safe
// as the encoder is. Errors: the encoder's; InvalidArgument for an empty
// block.
absl::StatusOr<EncodedEventBlock> EncodeEventBlock(EventEncoder& encoder,
                                                   absl::Span<const EventToStore> events,
                                                   std::vector<size_t> members);

// Block keys are unique. Ingestion writes a block under its first event's
// key or, when that is taken already (the same event stored twice: an event
// without an id sent again, or one re-sent after its processed-id record
// expired), under that key plus "\x01" and a number; a purge's rewrite of a
// block always adds "\x02" and a number. Ingestion checks under the engine
// lock and is the only writer of the first two kinds, the purge the only
// writer of the third, so neither ever overwrites a block the other wrote.
// A suffix only extends the first event's id in the key (readers take each
// event's id from the block).
//
// The first of `key` (unless `ns` is kBlockKeyPurge), `key` + `ns` + "1",
// `key` + `ns` + "2", ... that neither the store nor `taken` (when not
// null) holds. One point read per candidate. Errors: the store's.
absl::StatusOr<std::string> UnusedEventBlockKey(const store::Store& store, absl::string_view key,
                                                char ns,
                                                const absl::flat_hash_set<std::string>* taken);
inline constexpr char kBlockKeyIngest = '\x01';
inline constexpr char kBlockKeyPurge = '\x02';

// The events of one stored value under `key` (a block, or one event of an
// earlier format): calls `fn` for each, in order, with `json` pointing
// into the decoder's buffer or `value` (valid during the call), until it
// returns false. Errors: InvalidArgument when the key is not an event key;
// DataLoss for a value that does not decode; the store's (dictionaries).
absl::Status DecodeStoredValue(absl::string_view key, absl::string_view value,
                               EventDecoder& decoder,
                               absl::FunctionRef<bool(const StoredEvent&)> fn);

// The first and last event times of a stored value under `key`, read from
// its header without decompressing. Errors as DecodeStoredValue.
absl::StatusOr<std::pair<absl::Time, absl::Time>> StoredValueTimes(absl::string_view key,
                                                                   absl::string_view value);

// Reads the stored events of one log type with since <= event time < until
// in event-time order (ties by id), a chunk at a time: blocks that overlap
// in time (batches whose events interleave) are merged. Holds the events
// of the blocks it has read and not handed out yet (at most those within
// kMaxBlockSpan of each other, plus a chunk). Not thread-safe; `store`
// must outlive it.
class StoredEventScanner {
 public:
  struct Event {
    std::string key;  // EventKey
    absl::Time event_time;
    std::string id;
    std::string json;
  };

  StoredEventScanner(const store::Store& store, std::string log_type, absl::Time since,
                     absl::Time until);
  ~StoredEventScanner();

  // Appends the next events to *out (about `max`, at least one unless the
  // range is exhausted: then none). Errors: the store's; DataLoss for a key
  // or value that does not parse (the scanner is then done).
  absl::Status Next(size_t max, std::vector<Event>* out);

  // The events read so far that lie in the range (handed out or pending).
  int64_t events_read() const { return events_read_; }

  StoredEventScanner(const StoredEventScanner&) = delete;
  StoredEventScanner& operator=(const StoredEventScanner&) = delete;

 private:
  struct Pending;
  // Moves pending events before (t_us, id) (all when `all`) to *out.
  void Release(bool all, int64_t t_us, absl::string_view id, std::vector<Event>* out);

  const store::Store& store_;
  const std::string log_type_;
  const int64_t since_us_;
  const int64_t until_us_;
  std::string next_start_;
  const std::string end_key_;
  bool exhausted_ = false;
  std::unique_ptr<EventDecoder> decoder_;
  std::unique_ptr<Pending> pending_;
  int64_t events_read_ = 0;
};

// Calls `fn` for every stored event of `log_type` with since <= event time
// < until, in event-time order (ties by id), until it returns false
// (StoredEventScanner; the event's views are valid only during its call).
// `scanned`, when not null, counts the events read. Errors as
// StoredEventScanner::Next.
absl::Status ScanEvents(const store::Store& store, absl::string_view log_type, absl::Time since,
                        absl::Time until, absl::FunctionRef<bool(const StoredEvent&)> fn,
                        int64_t* scanned = nullptr);

// Finds stored events by key, e.g. the events of an alert in the window
// index's order: reads only the blocks that cover each event's time, and
// keeps the last blocks it decoded, so events of one block cost one decode.
// Not thread-safe; `store` must outlive it.
class StoredEventReader {
 public:
  explicit StoredEventReader(const store::Store& store);
  ~StoredEventReader();

  // The JSON of the event with key `event_key` (EventKey), or nullopt when
  // no stored event has that key. Errors: InvalidArgument for a key that is
  // not an event key; as StoredEventScanner::Next.
  absl::StatusOr<std::optional<std::string>> Find(absl::string_view event_key);

  StoredEventReader(const StoredEventReader&) = delete;
  StoredEventReader& operator=(const StoredEventReader&) = delete;

 private:
  struct Block {
    std::string key;
    std::vector<StoredEventScanner::Event> events;
  };
  const store::Store& store_;
  std::unique_ptr<EventDecoder> decoder_;
  std::vector<Block> recent_;  // the last blocks decoded, newest last
};

// The number of stored events (all log types): reads every value's header,
// decompressing nothing. For tests and figures. Errors: the store's;
// DataLoss for a value that does not parse.
absl::StatusOr<int64_t> CountStoredEvents(const store::Store& store);

// The log types that have stored events (one seek per log type).
absl::StatusOr<std::vector<std::string>> StoredLogTypes(const store::Store& store);

// Deletes every stored event whose event time is before `cutoff`, a chunk
// per write; returns how many. A block whose events all precede the cutoff
// is deleted; one that straddles it is rewritten without them (with
// `encoder`, under the key of its first remaining event, in one write).
// Then, for each log type with deleted events, compacts the purged key
// range (Store::CompactRange), so the space the events held on disk is
// freed now rather than whenever RocksDB would next compact those files.
// Runs for as long as that takes (it rewrites at most the files holding the
// purged range): call it from a background thread, never under a lock that
// ingestion takes. Window-index entries are small and kept: one whose
// event is gone reads as "not retained". Errors: the store's and the
// encoder's; a failed compaction leaves the events deleted (only their
// space is not freed yet).
absl::StatusOr<int64_t> PurgeEventsBefore(store::Store& store, EventEncoder& encoder,
                                          absl::Time cutoff);

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

// Finds the stored event `event_id` of `log_type` without scanning the log
// type: reads the id's processed record for its event time, then the
// blocks covering that time (StoredEventReader). For kNoEventTime and
// kNoRecord the event may still be stored (its record expired or is old):
// a caller that must know scans the log type (ScanEvents), O(its events).
// Events without an id are stored under a hash of their JSON and cannot be
// found by id. Errors: DataLoss for a record that does not decode; the
// store's.
absl::StatusOr<EventLookup> FindStoredEvent(const store::Store& store, absl::string_view log_type,
                                            absl::string_view event_id);

// The window index keys (see the file comment).
std::string WindowEventKey(absl::string_view window_key, absl::string_view event_key);
std::string WindowEventPrefix(absl::string_view window_key);
std::string AlertEventKey(absl::string_view alert_id, absl::string_view event_key);
std::string AlertEventPrefix(absl::string_view alert_id);

}  // namespace pantherd::engine

#endif  // PANTHERD_ENGINE_EVENT_STORE_H_
