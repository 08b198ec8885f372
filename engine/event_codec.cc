#include "engine/event_codec.h"

// ZDICT_trainFromBuffer_fastCover with fixed parameters: zstd's "static
// linking only" API, exported by Debian 12's libzstd (1.5.4) and declared by
// the headers of the same package.
#define ZDICT_STATIC_LINKING_ONLY
#include <zdict.h>
#include <zstd.h>

#include <algorithm>
#include <thread>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "proto/base/status_macros.h"
#include "store/keys.h"

namespace pantherd::engine {
namespace {

using store::Family;

// No stored event decompresses to more than this (a corrupt frame header
// must not make a reader allocate without bound).
constexpr uint64_t kMaxEventBytes = 64 << 20;
// The samples of one log type never take more memory than this.
constexpr size_t kMaxSampleBytes = 16 << 20;

}  // namespace

std::string EventDictionaryKey(uint64_t id) {
  std::string key(kEventDictionaryPrefix);
  store::AppendUint64(&key, id);
  return key;
}

// A dictionary ready for compression. Immutable once built.
struct EventEncoder::Dictionary {
  Dictionary(uint64_t id, ZSTD_CDict* cdict) : id(id), cdict(cdict) {}
  ~Dictionary() { ZSTD_freeCDict(cdict); }
  Dictionary(const Dictionary&) = delete;
  Dictionary& operator=(const Dictionary&) = delete;

  const uint64_t id;
  ZSTD_CDict* const cdict;
};

// One dictionary training, shared by the encoder and the training's thread.
// The thread owns `samples` and `result` until it notifies `done`; after
// that they are only read.
struct EventEncoder::Training {
  std::string samples;  // concatenated
  std::vector<size_t> sizes;
  size_t dictionary_bytes = 0;
  int level = 0;       // the level the dictionary's values are compressed at
  std::string result;  // the dictionary; empty when training failed
  absl::Notification done;
};

struct EventEncoder::LogTypeState {
  // The dictionary in use (already stored), if any.
  std::shared_ptr<const Dictionary> dictionary;
  // Samples collected for training.
  std::string samples;
  std::vector<size_t> sizes;
  // The running or finished training not yet installed.
  std::shared_ptr<Training> training;
  // A dictionary was installed or training failed: collect no more samples.
  bool settled = false;

  // How the dictionary in use does (see Retraining in the header): events
  // that used it since it was installed or loaded, the current window, and
  // the baseline (stored / raw bytes of its first window; 0: not yet).
  // Values of one event and values of many (blocks, engine/event_store.h)
  // compress differently, so each kind has its own window and baseline.
  struct Drift {
    uint64_t window_events = 0;
    uint64_t window_raw = 0;
    uint64_t window_stored = 0;
    double baseline = 0;
  };
  uint64_t events_with_dictionary = 0;
  Drift drift[2];  // [0]: values of fewer than kManyEvents events; [1]: the others
  uint64_t retrainings = 0;
  // Recent events for a retraining: a ring of at most samples_to_train.
  std::vector<std::string> recent;
  size_t recent_next = 0;
  uint64_t seen = 0;
};

namespace {

// Starts measuring a log type's dictionary afresh (a new one, or a failed
// retraining that leaves the old one in use).
template <typename State>
void ResetDrift(State& state) {
  state.events_with_dictionary = 0;
  for (auto& d : state.drift) d = {};
}

// Values of at least this many events are measured apart (LogTypeState).
constexpr size_t kManyEvents = 16;

// Samples larger than this are not kept for a retraining.
constexpr size_t kMaxRecentSample = 64 << 10;

}  // namespace

void EventEncoder::CCtxDeleter::operator()(ZSTD_CCtx_s* cctx) const { ZSTD_freeCCtx(cctx); }

EventEncoder::EventEncoder(store::Store* store, EventEncoderOptions options)
    : store_(store), options_(options) {}

EventEncoder::~EventEncoder() = default;

absl::Status EventEncoder::LoadLocked() {
  if (loaded_) return absl::OkStatus();
  absl::flat_hash_map<std::string, std::pair<uint64_t, std::string>> latest;
  absl::Status error;
  PANTHERD_RETURN_IF_ERROR(store_->Scan(
      Family::kMeta, kEventDictionaryPrefix, [&](absl::string_view key, absl::string_view value) {
        absl::StatusOr<uint64_t> id =
            store::DecodeUint64(key.substr(kEventDictionaryPrefix.size()));
        const size_t sep = value.find('\0');
        if (!id.ok() || sep == absl::string_view::npos) {
          error = absl::DataLossError(
              absl::StrCat("event dictionary record \"", absl::CHexEscape(key), "\" is malformed"));
          return false;
        }
        std::pair<uint64_t, std::string>& slot = latest[value.substr(0, sep)];
        if (*id >= slot.first) slot = {*id, std::string(value.substr(sep + 1))};
        return true;
      }));
  PANTHERD_RETURN_IF_ERROR(error);
  for (auto& [log_type, dict] : latest) {
    ZSTD_CDict* cdict =
        ZSTD_createCDict(dict.second.data(), dict.second.size(), options_.dictionary_level);
    if (cdict == nullptr) {
      return absl::InternalError(absl::StrCat("zstd cannot load event dictionary ", dict.first));
    }
    LogTypeState& state = log_types_[log_type];
    state.dictionary = std::make_shared<const Dictionary>(dict.first, cdict);
    state.settled = true;
  }
  loaded_ = true;
  return absl::OkStatus();
}

absl::Status EventEncoder::InstallLocked(absl::string_view log_type, LogTypeState& state) {
  const std::string& dict = state.training->result;
  if (dict.empty()) {
    // Too few or too uniform samples: this log type stays on plain zstd, or
    // on its dictionary, which gets another retrain_min_events to go.
    state.training.reset();
    state.settled = true;
    ResetDrift(state);
    return absl::OkStatus();
  }
  ZSTD_CDict* cdict = ZSTD_createCDict(dict.data(), dict.size(), options_.dictionary_level);
  if (cdict == nullptr) return absl::InternalError("zstd cannot load a new event dictionary");
  // The dictionary is durable before any value uses it.
  absl::StatusOr<uint64_t> id = store_->WriteWithSequence(
      kEventDictionarySequence, 1, [&](uint64_t first, store::WriteBatch& batch) {
        batch.Put(Family::kMeta, EventDictionaryKey(first),
                  absl::StrCat(log_type, absl::string_view("\0", 1), dict));
        return absl::OkStatus();
      });
  if (!id.ok()) {
    ZSTD_freeCDict(cdict);
    return id.status();  // the training stays, to be written by a later call
  }
  state.dictionary = std::make_shared<const Dictionary>(*id, cdict);
  state.training.reset();
  state.settled = true;
  ResetDrift(state);
  return absl::OkStatus();
}

absl::Status EventEncoder::Encode(absl::string_view log_type, absl::string_view json,
                                  std::string* out) {
  const absl::string_view events[] = {json};
  return EncodeMany(log_type, events, json, out);
}

absl::Status EventEncoder::EncodeMany(absl::string_view log_type,
                                      absl::Span<const absl::string_view> events,
                                      absl::string_view payload, std::string* out) {
  std::shared_ptr<const Dictionary> dictionary;
  std::unique_ptr<Context> context;
  {
    absl::MutexLock lock(&mu_);
    PANTHERD_RETURN_IF_ERROR(LoadLocked());
    auto it = log_types_.find(log_type);
    if (it == log_types_.end()) it = log_types_.try_emplace(std::string(log_type)).first;
    LogTypeState& state = it->second;
    if (state.training != nullptr && state.training->done.HasBeenNotified()) {
      InstallLocked(log_type, state).IgnoreError();  // retried by a later call
    }
    // Trainings learn from single events, whatever the values hold.
    for (absl::string_view json : events) {
      if (!state.settled && state.training == nullptr && options_.samples_to_train > 0 &&
          state.samples.size() + json.size() <= kMaxSampleBytes) {
        state.samples.append(json.data(), json.size());
        state.sizes.push_back(json.size());
        if (state.sizes.size() >= options_.samples_to_train) {
          StartTrainingLocked(state, std::move(state.samples), std::move(state.sizes));
          state.samples = std::string();
          state.sizes = std::vector<size_t>();
        }
      }
      if (state.dictionary != nullptr) ResampleLocked(state, json);
    }
    dictionary = state.dictionary;
    if (!free_contexts_.empty()) {
      context = std::move(free_contexts_.back());
      free_contexts_.pop_back();
    }
  }
  if (context == nullptr) {
    context = std::make_unique<Context>();
    context->cctx.reset(ZSTD_createCCtx());
    if (context->cctx == nullptr) {
      return absl::InternalError("zstd cannot create a compression context");
    }
    // The level without a dictionary; a dictionary's own level supersedes it.
    ZSTD_CCtx_setParameter(context->cctx.get(), ZSTD_c_compressionLevel, options_.plain_level);
    // The value names its dictionary itself.
    ZSTD_CCtx_setParameter(context->cctx.get(), ZSTD_c_dictIDFlag, 0);
  }
  ZSTD_CCtx* const cctx = context->cctx.get();
  std::string& scratch = context->scratch;
  const size_t bound = ZSTD_compressBound(payload.size());
  if (scratch.size() < bound) scratch.resize(bound);
  ZSTD_CCtx_refCDict(cctx, dictionary != nullptr ? dictionary->cdict : nullptr);
  const size_t n = ZSTD_compress2(cctx, scratch.data(), bound, payload.data(), payload.size());
  ZSTD_CCtx_refCDict(cctx, nullptr);
  out->clear();
  if (!ZSTD_isError(n)) {
    out->reserve(1 + 10 + n);  // tag, varint dictionary id, frame
    if (dictionary != nullptr) {
      out->push_back(kEventValueZstdDictionary);
      store::AppendVarint(out, dictionary->id);
    } else {
      out->push_back(kEventValueZstd);
    }
    out->append(scratch.data(), n);
  }
  // A rare huge event does not pin its buffer in the pool.
  if (scratch.size() > (1 << 20)) scratch = std::string();
  {
    absl::MutexLock lock(&mu_);
    free_contexts_.push_back(std::move(context));
    if (dictionary != nullptr && !ZSTD_isError(n)) {
      auto it = log_types_.find(log_type);
      if (it != log_types_.end()) {
        MeasureLocked(it->second, dictionary->id, events.size(), payload.size(), n);
      }
    }
  }
  if (ZSTD_isError(n)) return absl::InternalError(absl::StrCat("zstd: ", ZSTD_getErrorName(n)));
  return absl::OkStatus();
}

void EventEncoder::StartTrainingLocked(LogTypeState& state, std::string samples,
                                       std::vector<size_t> sizes) {
  auto training = std::make_shared<Training>();
  training->samples = std::move(samples);
  training->sizes = std::move(sizes);
  training->dictionary_bytes = options_.dictionary_bytes;
  training->level = options_.dictionary_level;
  state.training = training;
  // Off the ingest path (about 20 ms for 1,000 Okta events).
  std::thread([training] { TrainDictionary(*training); }).detach();
}

void EventEncoder::ResampleLocked(LogTypeState& state, absl::string_view json) {
  if (options_.drift_window_events == 0 || options_.samples_to_train == 0) return;
  const size_t every = std::max<size_t>(1, options_.resample_every);
  if (state.seen++ % every != 0 || json.size() > kMaxRecentSample) return;
  if (state.recent.size() < options_.samples_to_train) {
    state.recent.emplace_back(json);
  } else {
    state.recent[state.recent_next].assign(json.data(), json.size());
    state.recent_next = (state.recent_next + 1) % state.recent.size();
  }
}

void EventEncoder::MeasureLocked(LogTypeState& state, uint64_t id, size_t events, size_t raw,
                                 size_t stored) {
  if (options_.drift_window_events == 0) return;
  // A value compressed with a dictionary replaced meanwhile says nothing
  // about the new one.
  if (state.dictionary == nullptr || state.dictionary->id != id) return;
  state.events_with_dictionary += events;
  LogTypeState::Drift& d = state.drift[events >= kManyEvents ? 1 : 0];
  d.window_events += events;
  d.window_raw += raw;
  d.window_stored += stored;
  if (d.window_events < options_.drift_window_events) return;
  const double ratio =
      d.window_raw == 0 ? 0
                        : static_cast<double>(d.window_stored) / static_cast<double>(d.window_raw);
  d.window_events = 0;
  d.window_raw = 0;
  d.window_stored = 0;
  if (d.baseline <= 0) {
    d.baseline = ratio;
    return;
  }
  if (ratio <= d.baseline * options_.retrain_ratio) return;
  if (state.events_with_dictionary < options_.retrain_min_events) return;
  if (state.training != nullptr || state.recent.size() < options_.samples_to_train) return;
  std::string samples;
  std::vector<size_t> sizes;
  sizes.reserve(state.recent.size());
  for (const std::string& r : state.recent) {
    samples += r;
    sizes.push_back(r.size());
  }
  ++state.retrainings;
  StartTrainingLocked(state, std::move(samples), std::move(sizes));
}

void EventEncoder::TrainDictionary(Training& t) {
  std::string dict(t.dictionary_bytes, '\0');
  // One fastCover pass with fixed parameters: about 20 ms for 1,000 Okta
  // events, and as good on them as ZDICT_trainFromBuffer's search over k
  // (which takes about 5 times as long).
  ZDICT_fastCover_params_t params = {};
  params.k = 1024;  // segment size
  params.d = 8;     // dmer size
  params.f = 18;    // log2 of the frequency table's entries (1 MB)
  params.accel = 1;
  params.zParams.compressionLevel = t.level;
  const size_t n =
      ZDICT_trainFromBuffer_fastCover(dict.data(), dict.size(), t.samples.data(), t.sizes.data(),
                                      static_cast<unsigned>(t.sizes.size()), params);
  if (ZDICT_isError(n)) {
    dict.clear();
  } else {
    dict.resize(n);
  }
  t.result = std::move(dict);
  t.samples = std::string();
  t.sizes = std::vector<size_t>();
  t.done.Notify();
}

absl::Status EventEncoder::FinishTraining() {
  std::vector<std::shared_ptr<Training>> running;
  {
    absl::MutexLock lock(&mu_);
    for (auto& [log_type, state] : log_types_) {
      if (state.training != nullptr) running.push_back(state.training);
    }
  }
  for (const std::shared_ptr<Training>& t : running) t->done.WaitForNotification();
  absl::MutexLock lock(&mu_);
  for (auto& [log_type, state] : log_types_) {
    if (state.training != nullptr && state.training->done.HasBeenNotified()) {
      PANTHERD_RETURN_IF_ERROR(InstallLocked(log_type, state));
    }
  }
  return absl::OkStatus();
}

std::optional<uint64_t> EventEncoder::DictionaryId(absl::string_view log_type) const {
  absl::MutexLock lock(&mu_);
  auto it = log_types_.find(log_type);
  if (it == log_types_.end() || it->second.dictionary == nullptr) return std::nullopt;
  return it->second.dictionary->id;
}

uint64_t EventEncoder::Retrainings(absl::string_view log_type) const {
  absl::MutexLock lock(&mu_);
  auto it = log_types_.find(log_type);
  return it == log_types_.end() ? 0 : it->second.retrainings;
}

void EventDecoder::DDictDeleter::operator()(ZSTD_DDict_s* ddict) const { ZSTD_freeDDict(ddict); }
void EventDecoder::DCtxDeleter::operator()(ZSTD_DCtx_s* dctx) const { ZSTD_freeDCtx(dctx); }

EventDecoder::EventDecoder(const store::Store& store) : store_(store) {}

EventDecoder::~EventDecoder() = default;

absl::StatusOr<const ZSTD_DDict_s*> EventDecoder::Dictionary(uint64_t id) {
  auto it = dictionaries_.find(id);
  if (it != dictionaries_.end()) return it->second.get();
  absl::StatusOr<std::string> record = store_.Get(Family::kMeta, EventDictionaryKey(id));
  if (absl::IsNotFound(record.status())) {
    return absl::DataLossError(absl::StrCat("a stored event uses compression dictionary ", id,
                                            ", which the store does not have"));
  }
  if (!record.ok()) return record.status();
  const size_t sep = record->find('\0');
  if (sep == std::string::npos) {
    return absl::DataLossError(absl::StrCat("event dictionary record ", id, " is malformed"));
  }
  ZSTD_DDict* ddict = ZSTD_createDDict(record->data() + sep + 1, record->size() - sep - 1);
  if (ddict == nullptr) {
    return absl::DataLossError(absl::StrCat("event dictionary ", id, " does not load"));
  }
  dictionaries_.emplace(id, ddict);
  return ddict;
}

absl::StatusOr<absl::string_view> EventDecoder::Decode(absl::string_view value) {
  if (value.empty()) return absl::DataLossError("a stored event value is empty");
  const ZSTD_DDict* ddict = nullptr;
  absl::string_view frame = value.substr(1);
  switch (value.front()) {
    case '{':
      return value;
    case kEventValueZstd:
      break;
    case kEventValueZstdDictionary: {
      uint64_t id = 0;
      if (!store::ConsumeVarint(&frame, &id)) {
        return absl::DataLossError("a stored event value has a malformed dictionary id");
      }
      PANTHERD_ASSIGN_OR_RETURN(ddict, Dictionary(id));
      break;
    }
    default:
      return absl::DataLossError(
          absl::StrCat("a stored event value starts with unknown format byte 0x",
                       absl::Hex(static_cast<uint8_t>(value.front()), absl::kZeroPad2)));
  }
  const unsigned long long size = ZSTD_getFrameContentSize(frame.data(), frame.size());
  if (size == ZSTD_CONTENTSIZE_ERROR || size == ZSTD_CONTENTSIZE_UNKNOWN || size > kMaxEventBytes) {
    return absl::DataLossError("a stored event value is not a zstd frame of a known size");
  }
  if (dctx_ == nullptr) {
    dctx_.reset(ZSTD_createDCtx());
    if (dctx_ == nullptr) return absl::InternalError("zstd cannot create a decompression context");
  }
  if (buffer_.size() < size) buffer_.resize(size);
  const size_t n = ddict != nullptr ? ZSTD_decompress_usingDDict(dctx_.get(), buffer_.data(), size,
                                                                 frame.data(), frame.size(), ddict)
                                    : ZSTD_decompressDCtx(dctx_.get(), buffer_.data(), size,
                                                          frame.data(), frame.size());
  if (ZSTD_isError(n) || n != size) {
    return absl::DataLossError(absl::StrCat("a stored event value does not decompress: ",
                                            ZSTD_isError(n) ? ZSTD_getErrorName(n) : "wrong size"));
  }
  return absl::string_view(buffer_.data(), n);
}

}  // namespace pantherd::engine
