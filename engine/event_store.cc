#include "engine/event_store.h"

#include <openssl/evp.h>

#include <algorithm>
#include <tuple>
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
  return absl::StrCat(EventTimeKey(log_type, event_time), StoredEventId(event_id, json));
}

std::string StoredEventId(absl::string_view event_id, absl::string_view json) {
  return event_id.empty() ? ContentId(json) : std::string(event_id);
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

std::vector<std::vector<size_t>> PlanEventBlocks(absl::Span<const EventToStore> events) {
  std::vector<size_t> order(events.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  auto key_of = [&](size_t i) {
    const EventToStore& e = events[i];
    return std::make_tuple(e.log_type, e.time_us, e.id);
  };
  auto before = [&](size_t a, size_t b) { return key_of(a) < key_of(b); };
  // Events usually arrive in order (a poller's pages are).
  if (!std::is_sorted(order.begin(), order.end(), before)) {
    std::stable_sort(order.begin(), order.end(), before);
  }
  const int64_t span_us = absl::ToInt64Microseconds(kMaxBlockSpan);
  std::vector<std::vector<size_t>> blocks;
  size_t bytes = 0;
  for (size_t k = 0; k < order.size(); ++k) {
    const size_t i = order[k];
    const EventToStore& e = events[i];
    // The same key twice (an event without an id sent twice): stored once.
    if (k > 0 && key_of(order[k - 1]) == key_of(i)) continue;
    bool fresh = blocks.empty();
    if (!fresh) {
      const std::vector<size_t>& b = blocks.back();
      const EventToStore& first = events[b.front()];
      fresh = first.log_type != e.log_type || b.size() >= kMaxBlockEvents ||
              e.time_us - first.time_us >= span_us || bytes + e.json.size() > kMaxBlockBytes;
    }
    if (fresh) {
      blocks.emplace_back();
      bytes = 0;
    }
    blocks.back().push_back(i);
    bytes += e.json.size();
  }
  return blocks;
}

absl::StatusOr<EncodedEventBlock> EncodeEventBlock(EventEncoder& encoder,
                                                   absl::Span<const EventToStore> events,
                                                   std::vector<size_t> members) {
  if (members.empty()) return absl::InvalidArgumentError("an event block needs an event");
  const EventToStore& first = events[members.front()];
  std::string payload;
  size_t total = 0;
  for (size_t i : members) total += events[i].json.size() + events[i].id.size() + 16;
  payload.reserve(total);
  std::vector<absl::string_view> jsons;
  jsons.reserve(members.size());
  for (size_t i : members) {
    const EventToStore& e = events[i];
    store::AppendVarint(&payload, static_cast<uint64_t>(e.time_us - first.time_us));
    store::AppendVarint(&payload, e.id.size());
    payload.append(e.id.data(), e.id.size());
    store::AppendVarint(&payload, e.json.size());
    payload.append(e.json.data(), e.json.size());
    jsons.push_back(e.json);
  }
  EncodedEventBlock block;
  std::string inner;
  PANTHERD_RETURN_IF_ERROR(encoder.EncodeMany(first.log_type, jsons, payload, &inner));
  block.key =
      absl::StrCat(EventTimeKey(first.log_type, absl::FromUnixMicros(first.time_us)), first.id);
  block.value.reserve(1 + 20 + inner.size());
  block.value.push_back(kEventValueBlock);
  store::AppendVarint(&block.value, members.size());
  store::AppendVarint(&block.value,
                      static_cast<uint64_t>(events[members.back()].time_us - first.time_us));
  block.value.append(inner);
  block.members = std::move(members);
  return block;
}

absl::StatusOr<std::string> UnusedEventBlockKey(const store::Store& store, absl::string_view key,
                                                char ns,
                                                const absl::flat_hash_set<std::string>* taken) {
  std::string candidate =
      ns == kBlockKeyPurge ? absl::StrCat(key, std::string(1, ns), 1) : std::string(key);
  for (int n = ns == kBlockKeyPurge ? 2 : 1;; ++n) {
    if (taken == nullptr || !taken->contains(candidate)) {
      absl::StatusOr<std::string> existing = store.Get(Family::kEvents, candidate);
      if (absl::IsNotFound(existing.status())) return candidate;
      if (!existing.ok()) return existing.status();
    }
    candidate = absl::StrCat(key, std::string(1, ns), n);
  }
}

namespace {

// A block value's header: its event count, span and compressed payload.
struct BlockHeader {
  uint64_t count = 0;
  uint64_t span_us = 0;
  absl::string_view inner;
};

absl::StatusOr<BlockHeader> ParseBlockHeader(absl::string_view key, absl::string_view value) {
  BlockHeader h;
  absl::string_view rest = value.substr(1);
  if (!store::ConsumeVarint(&rest, &h.count) || !store::ConsumeVarint(&rest, &h.span_us) ||
      h.count == 0) {
    return absl::DataLossError(absl::StrCat("event block \"", absl::CHexEscape(key.substr(0, 80)),
                                            "\" has a malformed header"));
  }
  h.inner = rest;
  return h;
}

}  // namespace

absl::StatusOr<std::pair<absl::Time, absl::Time>> StoredValueTimes(absl::string_view key,
                                                                   absl::string_view value) {
  PANTHERD_ASSIGN_OR_RETURN(StoredEvent k, ParseStoredEventKey(key));
  if (value.empty() || value.front() != kEventValueBlock) {
    return std::make_pair(k.event_time, k.event_time);
  }
  PANTHERD_ASSIGN_OR_RETURN(BlockHeader h, ParseBlockHeader(key, value));
  return std::make_pair(k.event_time,
                        k.event_time + absl::Microseconds(static_cast<int64_t>(h.span_us)));
}

absl::Status DecodeStoredValue(absl::string_view key, absl::string_view value,
                               EventDecoder& decoder,
                               absl::FunctionRef<bool(const StoredEvent&)> fn) {
  PANTHERD_ASSIGN_OR_RETURN(StoredEvent e, ParseStoredEventKey(key));
  if (value.empty() || value.front() != kEventValueBlock) {
    PANTHERD_ASSIGN_OR_RETURN(e.json, decoder.Decode(value));
    fn(e);
    return absl::OkStatus();
  }
  PANTHERD_ASSIGN_OR_RETURN(BlockHeader h, ParseBlockHeader(key, value));
  PANTHERD_ASSIGN_OR_RETURN(absl::string_view payload, decoder.Decode(h.inner));
  const int64_t t0 = absl::ToUnixMicros(e.event_time);
  auto malformed = [&] {
    return absl::DataLossError(absl::StrCat("event block \"", absl::CHexEscape(key.substr(0, 80)),
                                            "\" has a malformed payload"));
  };
  std::string event_key;
  for (uint64_t n = 0; n < h.count; ++n) {
    uint64_t dt = 0, id_size = 0, json_size = 0;
    if (!store::ConsumeVarint(&payload, &dt) || dt > h.span_us ||
        !store::ConsumeVarint(&payload, &id_size) || id_size > payload.size()) {
      return malformed();
    }
    const absl::string_view id = payload.substr(0, id_size);
    payload.remove_prefix(id_size);
    if (!store::ConsumeVarint(&payload, &json_size) || json_size > payload.size())
      return malformed();
    const absl::Time t = absl::FromUnixMicros(t0 + static_cast<int64_t>(dt));
    event_key = absl::StrCat(EventTimeKey(e.log_type, t), id);
    StoredEvent one;
    one.key = event_key;
    one.log_type = e.log_type;
    one.event_time = t;
    one.id = id;
    one.json = payload.substr(0, json_size);
    payload.remove_prefix(json_size);
    if (!fn(one)) return absl::OkStatus();
  }
  if (!payload.empty()) return malformed();
  return absl::OkStatus();
}

// ---- StoredEventScanner ----------------------------------------------------

namespace {

// Blocks read per store scan (the scan resumes after the last one).
constexpr int kBlocksPerScan = 64;

// Min-heap order on (time, id).
struct LaterEvent {
  bool operator()(const StoredEventScanner::Event& a, const StoredEventScanner::Event& b) const {
    if (a.event_time != b.event_time) return a.event_time > b.event_time;
    return a.id > b.id;
  }
};

absl::Status AsDataLoss(const absl::Status& s) {
  return absl::IsInvalidArgument(s) ? absl::DataLossError(s.message()) : s;
}

}  // namespace

struct StoredEventScanner::Pending {
  std::vector<Event> heap;  // LaterEvent heap
};

StoredEventScanner::StoredEventScanner(const store::Store& store, std::string log_type,
                                       absl::Time since, absl::Time until)
    : store_(store),
      log_type_(std::move(log_type)),
      since_us_(absl::ToUnixMicros(since)),
      until_us_(absl::ToUnixMicros(until)),
      // Blocks that start up to kMaxBlockSpan before `since` may reach it.
      next_start_(EventTimeKey(log_type_, since - kMaxBlockSpan)),
      end_key_(EventTimeKey(log_type_, until)),
      decoder_(std::make_unique<EventDecoder>(store)),
      pending_(std::make_unique<Pending>()) {
  if (since >= until) exhausted_ = true;
}

StoredEventScanner::~StoredEventScanner() = default;

void StoredEventScanner::Release(bool all, int64_t t_us, absl::string_view id,
                                 std::vector<Event>* out) {
  std::vector<Event>& heap = pending_->heap;
  const absl::Time t = absl::FromUnixMicros(t_us);
  while (!heap.empty()) {
    const Event& top = heap.front();
    if (!all && (top.event_time > t || (top.event_time == t && top.id >= id))) break;
    std::pop_heap(heap.begin(), heap.end(), LaterEvent());
    out->push_back(std::move(heap.back()));
    heap.pop_back();
  }
}

absl::Status StoredEventScanner::Next(size_t max, std::vector<Event>* out) {
  const size_t target = out->size() + std::max<size_t>(1, max);
  while (out->size() < target) {
    if (exhausted_) {
      Release(true, 0, "", out);
      return absl::OkStatus();
    }
    const std::string prefix = absl::StrCat(log_type_, Sep());
    bool ended = true;
    int blocks = 0;
    absl::Status error;
    absl::Status scanned = store_.Scan(
        store::Family::kEvents, prefix,
        [&](absl::string_view key, absl::string_view value) {
          if (key >= absl::string_view(end_key_)) return false;
          absl::StatusOr<StoredEvent> first = ParseStoredEventKey(key);
          if (!first.ok()) {
            error = AsDataLoss(first.status());
            return false;
          }
          // Every event still to come is at or after this block's first one.
          Release(false, absl::ToUnixMicros(first->event_time), first->id, out);
          error = AsDataLoss(DecodeStoredValue(key, value, *decoder_, [&](const StoredEvent& e) {
            const int64_t t = absl::ToUnixMicros(e.event_time);
            if (t < since_us_ || t >= until_us_) return true;
            ++events_read_;
            pending_->heap.push_back(
                Event{std::string(e.key), e.event_time, std::string(e.id), std::string(e.json)});
            std::push_heap(pending_->heap.begin(), pending_->heap.end(), LaterEvent());
            return true;
          }));
          if (!error.ok()) return false;
          next_start_ = absl::StrCat(key, Sep());  // the smallest key after it
          if (++blocks >= kBlocksPerScan || out->size() >= target) {
            ended = false;
            return false;
          }
          return true;
        },
        next_start_);
    if (!scanned.ok() || !error.ok()) {
      exhausted_ = true;
      pending_->heap.clear();
      return !scanned.ok() ? scanned : error;
    }
    if (ended) exhausted_ = true;
  }
  return absl::OkStatus();
}

absl::Status ScanEvents(const store::Store& store, absl::string_view log_type, absl::Time since,
                        absl::Time until, absl::FunctionRef<bool(const StoredEvent&)> fn,
                        int64_t* scanned) {
  StoredEventScanner scanner(store, std::string(log_type), since, until);
  std::vector<StoredEventScanner::Event> chunk;
  absl::Status status;
  while (true) {
    chunk.clear();
    status = scanner.Next(256, &chunk);
    if (!status.ok() || chunk.empty()) break;
    bool more = true;
    for (const StoredEventScanner::Event& e : chunk) {
      StoredEvent view;
      view.key = e.key;
      view.log_type = log_type;
      view.event_time = e.event_time;
      view.id = e.id;
      view.json = e.json;
      if (scanned != nullptr) ++*scanned;
      if (!fn(view)) {
        more = false;
        break;
      }
    }
    if (!more) break;
  }
  return status;
}

// ---- StoredEventReader -----------------------------------------------------

namespace {
constexpr size_t kRecentBlocks = 4;
}  // namespace

StoredEventReader::StoredEventReader(const store::Store& store)
    : store_(store), decoder_(std::make_unique<EventDecoder>(store)) {}

StoredEventReader::~StoredEventReader() = default;

absl::StatusOr<std::optional<std::string>> StoredEventReader::Find(absl::string_view event_key) {
  PANTHERD_ASSIGN_OR_RETURN(StoredEvent wanted, ParseStoredEventKey(event_key));
  for (const Block& b : recent_) {
    for (const StoredEventScanner::Event& e : b.events) {
      if (e.key == event_key) return std::optional<std::string>(e.json);
    }
  }
  // The blocks that may cover the event: those that start at most
  // kMaxBlockSpan before it, and not after it.
  const std::string prefix = absl::StrCat(wanted.log_type, Sep());
  const std::string end = EventTimeKey(wanted.log_type, wanted.event_time + absl::Microseconds(1));
  std::optional<std::string> found;
  absl::Status error;
  PANTHERD_RETURN_IF_ERROR(store_.Scan(
      store::Family::kEvents, prefix,
      [&](absl::string_view key, absl::string_view value) {
        if (key >= absl::string_view(end)) return false;
        absl::StatusOr<std::pair<absl::Time, absl::Time>> times = StoredValueTimes(key, value);
        if (!times.ok()) {
          error = AsDataLoss(times.status());
          return false;
        }
        if (times->second < wanted.event_time) return true;  // ends before it
        Block block;
        block.key = std::string(key);
        error = AsDataLoss(DecodeStoredValue(key, value, *decoder_, [&](const StoredEvent& e) {
          block.events.push_back(StoredEventScanner::Event{std::string(e.key), e.event_time,
                                                           std::string(e.id), std::string(e.json)});
          if (e.key == event_key) found = std::string(e.json);
          return true;
        }));
        if (!error.ok()) return false;
        if (recent_.size() >= kRecentBlocks) recent_.erase(recent_.begin());
        recent_.push_back(std::move(block));
        return !found.has_value();
      },
      EventTimeKey(wanted.log_type, wanted.event_time - kMaxBlockSpan)));
  PANTHERD_RETURN_IF_ERROR(error);
  return found;
}

absl::StatusOr<int64_t> CountStoredEvents(const store::Store& store) {
  int64_t count = 0;
  absl::Status error;
  PANTHERD_RETURN_IF_ERROR(
      store.Scan(Family::kEvents, "", [&](absl::string_view key, absl::string_view value) {
        if (value.empty() || value.front() != kEventValueBlock) {
          ++count;
          return true;
        }
        absl::StatusOr<BlockHeader> h = ParseBlockHeader(key, value);
        if (!h.ok()) {
          error = h.status();
          return false;
        }
        count += static_cast<int64_t>(h->count);
        return true;
      }));
  PANTHERD_RETURN_IF_ERROR(error);
  return count;
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

absl::StatusOr<int64_t> PurgeEventsBefore(store::Store& store, EventEncoder& encoder,
                                          absl::Time cutoff) {
  PANTHERD_ASSIGN_OR_RETURN(std::vector<std::string> types, StoredLogTypes(store));
  int64_t deleted = 0;
  EventDecoder decoder(store);
  for (const std::string& log_type : types) {
    const std::string prefix = absl::StrCat(log_type, Sep());
    // Every value that holds an event before the cutoff starts before it.
    const std::string end = EventTimeKey(log_type, cutoff);
    // Each chunk's scan resumes after the last key it read, so it never
    // walks over the tombstones of the chunks before it.
    std::string resume = prefix;
    int64_t deleted_here = 0;
    while (true) {
      // Headers only, except for a block that straddles the cutoff.
      std::vector<std::string> gone;
      std::vector<std::pair<std::string, std::string>> straddling;  // key, value
      int64_t events_gone = 0;
      std::string last;
      absl::Status error;
      size_t read = 0;
      PANTHERD_RETURN_IF_ERROR(store.Scan(
          Family::kEvents, prefix,
          [&](absl::string_view key, absl::string_view value) {
            if (key >= absl::string_view(end)) return false;
            last = std::string(key);
            absl::StatusOr<std::pair<absl::Time, absl::Time>> times = StoredValueTimes(key, value);
            if (!times.ok()) {
              error = AsDataLoss(times.status());
              return false;
            }
            if (times->second < cutoff) {
              gone.emplace_back(key);
              if (value.empty() || value.front() != kEventValueBlock) {
                ++events_gone;
              } else {
                absl::StatusOr<BlockHeader> h = ParseBlockHeader(key, value);
                if (!h.ok()) {
                  error = h.status();
                  return false;
                }
                events_gone += static_cast<int64_t>(h->count);
              }
            } else {
              straddling.emplace_back(std::string(key), std::string(value));
            }
            return ++read < kPurgeChunk;
          },
          resume));
      PANTHERD_RETURN_IF_ERROR(error);
      if (read == 0) break;
      store::WriteBatch batch;
      for (const std::string& k : gone) batch.Delete(Family::kEvents, k);
      absl::flat_hash_set<std::string> rewritten;  // keys this write puts
      // A straddling block keeps its events from the cutoff on, as a block
      // of its own under its first remaining event's key.
      for (const auto& [key, value] : straddling) {
        std::vector<std::string> ids, jsons;
        std::vector<int64_t> times;
        int64_t before = 0;
        PANTHERD_RETURN_IF_ERROR(
            AsDataLoss(DecodeStoredValue(key, value, decoder, [&](const StoredEvent& e) {
              if (e.event_time < cutoff) {
                ++before;
              } else {
                ids.emplace_back(e.id);
                jsons.emplace_back(e.json);
                times.push_back(absl::ToUnixMicros(e.event_time));
              }
              return true;
            })));
        if (before == 0) continue;
        std::vector<EventToStore> keep(ids.size());
        std::vector<size_t> members(ids.size());
        for (size_t i = 0; i < ids.size(); ++i) {
          keep[i] = EventToStore{log_type, times[i], ids[i], jsons[i]};
          members[i] = i;
        }
        batch.Delete(Family::kEvents, key);
        if (!keep.empty()) {
          PANTHERD_ASSIGN_OR_RETURN(EncodedEventBlock b,
                                    EncodeEventBlock(encoder, keep, std::move(members)));
          PANTHERD_ASSIGN_OR_RETURN(const std::string new_key,
                                    UnusedEventBlockKey(store, b.key, kBlockKeyPurge, &rewritten));
          rewritten.insert(new_key);
          batch.Put(Family::kEvents, new_key, b.value);
        }
        events_gone += before;
      }
      if (!gone.empty() || events_gone > 0) {
        PANTHERD_RETURN_IF_ERROR(store.Write(std::move(batch)));
      }
      deleted_here += events_gone;
      if (read < kPurgeChunk) break;
      resume = absl::StrCat(last, Sep());  // the smallest key after it
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
  StoredEventReader reader(store);
  PANTHERD_ASSIGN_OR_RETURN(std::optional<std::string> json,
                            reader.Find(EventKey(log_type, lookup.event_time, event_id, "")));
  if (!json.has_value()) {
    lookup.result = EventLookup::Result::kNotStored;
    return lookup;
  }
  lookup.result = EventLookup::Result::kFound;
  lookup.json = std::move(*json);
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
