// The compression of stored events (family kEvents, engine/event_store.h):
// events are compressed before they enter the batch's write, so the
// write-ahead log, its fsync, the memtable and the files carry a few hundred
// bytes per event instead of the raw JSON. The event store compresses a
// block of events as one value (EncodeMany) and wraps it in a block header
// (0x03, engine/event_store.h); earlier versions stored one event per value
// (Encode), and those values still read.
//
// A compressed value is one of (docs/storage.md):
//   '{' ...                          the raw JSON (values written before
//                                    compression; still read)
//   0x01 <zstd frame>                zstd without a dictionary
//   0x02 varint(id) <zstd frame>     zstd with stored dictionary `id`
// The first byte of a JSON object is '{', so the formats cannot be confused.
// Frames carry their content size and no checksum (RocksDB checksums blocks).
//
// Dictionaries are trained per log type from the first events of that log
// type the encoder sees (the events meanwhile use 0x01), on a thread of
// their own, and written to family kMeta in their own synced write before
// any value uses them:
//   "event_dict\0" be64(id)  ->  <log type> \0 <zstd dictionary>
// Ids come from store sequence counter "event_dict". Dictionaries are
// immutable and never deleted (values that reference them may live as long
// as the retention; a dictionary is about 100 KB). The newest dictionary of
// a log type is the one in use, also after a restart.
//
// Retraining. A log type's events can change shape (new event types, new
// fields), and its first events may not be typical of it. The encoder
// measures how well the dictionary in use does, window by window
// (EventEncoderOptions::drift_window_events); the first window after the
// dictionary was installed or loaded sets its baseline. When a later window
// compresses worse than the baseline by retrain_ratio, and at least
// retrain_min_events used the dictionary, a new dictionary is trained from
// recent events (one in resample_every is kept, the newest samples_to_train
// of them) and replaces it the same way. Values written with the old one
// still name it and read as before. The minimum bounds the dictionaries a
// log type can accumulate (at the defaults, one per 100,000 events at most).
//
//   EventEncoder encoder(&store);
//   std::string value;
//   PANTHERD_RETURN_IF_ERROR(encoder.Encode("Okta.SystemLog", json, &value));
//   ...
//   EventDecoder decoder(store);
//   PANTHERD_ASSIGN_OR_RETURN(absl::string_view json, decoder.Decode(value));
#ifndef PANTHERD_ENGINE_EVENT_CODEC_H_
#define PANTHERD_ENGINE_EVENT_CODEC_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/types/span.h"
#include "store/store.h"

// zstd's context types (zstd.h), declared here so that users of this header
// need not include zstd.
struct ZSTD_CCtx_s;
struct ZSTD_DCtx_s;
struct ZSTD_DDict_s;

namespace pantherd::engine {

// The leading byte of a compressed event value (see the file comment).
inline constexpr char kEventValueZstd = '\x01';
inline constexpr char kEventValueZstdDictionary = '\x02';

// kMeta keys of the dictionaries: kEventDictionaryPrefix be64(id).
inline constexpr absl::string_view kEventDictionaryPrefix = absl::string_view("event_dict\0", 11);
// The store sequence counter that numbers dictionaries.
inline constexpr absl::string_view kEventDictionarySequence = "event_dict";

// The kMeta key of dictionary `id`.
std::string EventDictionaryKey(uint64_t id);

struct EventEncoderOptions {
  // zstd level of values compressed with a dictionary: about 2.5 µs for a
  // 2 KB Okta event at level 1, measurably cheaper in ingestion than level 3
  // for values about 5% larger.
  int dictionary_level = 1;
  // zstd level of values compressed without one (the first events of a log
  // type; several times dearer per event, so the fastest standard level).
  int plain_level = 1;
  // Train a dictionary for a log type once this many of its events were
  // encoded without one (0: never train).
  size_t samples_to_train = 1000;
  // The dictionary's target size.
  size_t dictionary_bytes = 112 << 10;
  // Retraining (see the file comment): events per measured window (0: never
  // retrain), how much worse (stored bytes / raw bytes) a window must do
  // than the baseline, the events that must have used the dictionary first,
  // and one event in how many is kept as a sample for the next training.
  size_t drift_window_events = 10000;
  double retrain_ratio = 1.3;
  size_t retrain_min_events = 100000;
  size_t resample_every = 16;
};

// Compresses event values. Thread-safe: Encode may be called from several
// threads at once (compression contexts are pooled; the dictionary state is
// guarded by a mutex). `store` is not owned and must outlive the encoder;
// the encoder reads the stored dictionaries on first use and writes new
// ones. Destroying the encoder does not wait for a running training: it
// finishes on its thread, touching only its own memory, and is discarded.
class EventEncoder {
 public:
  explicit EventEncoder(store::Store* store, EventEncoderOptions options = {});
  ~EventEncoder();

  EventEncoder(const EventEncoder&) = delete;
  EventEncoder& operator=(const EventEncoder&) = delete;

  // Sets *out to the stored value of `json`, an event of `log_type` (see the
  // file comment): with the log type's dictionary when it has one, else
  // plain zstd. May start a dictionary training (in the background), or
  // write a finished dictionary to the store (once per log type) before
  // using it. Errors: the store's when reading the stored dictionaries
  // fails, DataLoss for a malformed dictionary record (then nothing is
  // set; the next call reads them again); Internal when zstd fails. A
  // failure to write a new dictionary is not an error: the value uses
  // plain zstd and the write is retried by a later call.
  absl::Status Encode(absl::string_view log_type, absl::string_view json, std::string* out)
      ABSL_LOCKS_EXCLUDED(mu_);

  // The same for a value holding several events of `log_type` (a block,
  // engine/event_store.h): compresses `payload`, which holds `events` in
  // whatever framing the caller chose; `events` feed the dictionary's
  // training and drift measure as Encode's `json` does (values of many
  // events are measured apart from values of one: they compress better).
  // Errors as Encode.
  absl::Status EncodeMany(absl::string_view log_type, absl::Span<const absl::string_view> events,
                          absl::string_view payload, std::string* out) ABSL_LOCKS_EXCLUDED(mu_);

  // For tests: waits for the running trainings to finish and writes and
  // installs their dictionaries. Errors: the store's.
  absl::Status FinishTraining() ABSL_LOCKS_EXCLUDED(mu_);

  // The id of the dictionary `log_type`'s values use now, if any.
  std::optional<uint64_t> DictionaryId(absl::string_view log_type) const ABSL_LOCKS_EXCLUDED(mu_);

  // Trainings started for `log_type` because its dictionary compressed
  // worse than its baseline (for tests and figures).
  uint64_t Retrainings(absl::string_view log_type) const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  struct Dictionary;
  struct Training;
  struct LogTypeState;
  struct CCtxDeleter {
    void operator()(ZSTD_CCtx_s* cctx) const;
  };
  using CCtxPtr = std::unique_ptr<ZSTD_CCtx_s, CCtxDeleter>;
  // A compression context and the buffer it compresses into, reused from
  // call to call: the value is then copied out at its exact size, instead of
  // each value holding (and zero-filling) room for the worst case.
  struct Context {
    CCtxPtr cctx;
    std::string scratch;
  };

  absl::Status LoadLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Writes the finished training of `state` to the store and makes it the
  // log type's dictionary (or settles on plain zstd when training failed).
  // Errors: the store's (the training is kept for a later attempt).
  absl::Status InstallLocked(absl::string_view log_type, LogTypeState& state)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Runs on a training's own thread.
  static void TrainDictionary(Training& t);
  // Starts a training of `state` from `samples` (concatenated) and `sizes`.
  void StartTrainingLocked(LogTypeState& state, std::string samples, std::vector<size_t> sizes)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Keeps one in resample_every events of a log type with a dictionary.
  void ResampleLocked(LogTypeState& state, absl::string_view json)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Counts a value of `events` events, `raw` bytes stored in `stored` bytes
  // with dictionary `id`; starts a retraining when the window ends worse
  // than the baseline.
  void MeasureLocked(LogTypeState& state, uint64_t id, size_t events, size_t raw, size_t stored)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  store::Store* const store_;
  const EventEncoderOptions options_;
  mutable absl::Mutex mu_;
  bool loaded_ ABSL_GUARDED_BY(mu_) = false;
  absl::flat_hash_map<std::string, LogTypeState> log_types_ ABSL_GUARDED_BY(mu_);
  std::vector<std::unique_ptr<Context>> free_contexts_ ABSL_GUARDED_BY(mu_);
};

// Decompresses event values. Not thread-safe: one decoder per thread (or
// scan). Loads each dictionary from the store on first use and keeps it.
// `store` is not owned and must outlive the decoder.
class EventDecoder {
 public:
  explicit EventDecoder(const store::Store& store);
  ~EventDecoder();

  EventDecoder(const EventDecoder&) = delete;
  EventDecoder& operator=(const EventDecoder&) = delete;

  // The JSON of stored value `value`: a view into `value` for a raw one, or
  // into the decoder's buffer, valid until the next Decode. Errors: DataLoss
  // for a value that is empty, of an unknown format, does not decompress,
  // or names a dictionary the store does not have; the store's when reading
  // a dictionary fails.
  absl::StatusOr<absl::string_view> Decode(absl::string_view value);

 private:
  struct DDictDeleter {
    void operator()(ZSTD_DDict_s* ddict) const;
  };
  struct DCtxDeleter {
    void operator()(ZSTD_DCtx_s* dctx) const;
  };
  // Dictionary `id`, loaded on first use. Errors as Decode.
  absl::StatusOr<const ZSTD_DDict_s*> Dictionary(uint64_t id);

  const store::Store& store_;
  std::unique_ptr<ZSTD_DCtx_s, DCtxDeleter> dctx_;
  absl::flat_hash_map<uint64_t, std::unique_ptr<ZSTD_DDict_s, DDictDeleter>> dictionaries_;
  std::string buffer_;
};

}  // namespace pantherd::engine

#endif  // PANTHERD_ENGINE_EVENT_CODEC_H_
