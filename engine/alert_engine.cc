#include "engine/alert_engine.h"

#include <openssl/evp.h>

#include <algorithm>
#include <functional>
#include <limits>
#include <map>
#include <optional>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "engine/delivery_outbox.h"
#include "engine/event_store.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/util/time_util.h"
#include "proto/base/status_macros.h"
#include "store/keys.h"

namespace pantherd::engine {
namespace {

using google::protobuf::Timestamp;
using google::protobuf::util::TimeUtil;
using store::Family;

// Prefix of the newest-first index rows in the alerts family. Alert ids are
// hex digits only, so no id starts with 't'.
constexpr absl::string_view kCreatedIndexPrefix("t\0", 2);
constexpr int kDefaultPageSize = 100;
constexpr int kMaxPageSize = 1000;

// InvalidArgument naming `field` unless `ts` is a valid Timestamp (years
// 0001 to 9999, nanos in [0, 1e9)), so that converting it cannot overflow.
absl::Status CheckTimestamp(const Timestamp& ts, absl::string_view field) {
  if (ts.seconds() < TimeUtil::kTimestampMinSeconds ||
      ts.seconds() > TimeUtil::kTimestampMaxSeconds || ts.nanos() < 0 || ts.nanos() > 999999999) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, " is not a valid time (years 0001 to 9999)"));
  }
  return absl::OkStatus();
}
constexpr int kDefaultEventsPageSize = 10;
// PurgeExpired deletes in write batches of this many keys.
constexpr size_t kPurgeChunk = 1000;

Timestamp TsFromMicros(int64_t us) { return TimeUtil::MicrosecondsToTimestamp(us); }
int64_t MicrosFromTs(const Timestamp& ts) { return TimeUtil::TimestampToMicroseconds(ts); }

std::string Sha256Hex32(absl::string_view data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), digest, &len, EVP_sha256(), nullptr);
  return absl::BytesToHexString(absl::string_view(reinterpret_cast<char*>(digest), 16));
}

char KindChar(v1::AlertType type) {
  switch (type) {
    case v1::ALERT_TYPE_RULE_ERROR:
      return 'e';
    case v1::ALERT_TYPE_SIGNAL:
      return 's';
    default:
      return 'r';
  }
}

// rule_id \0 <kind><hex32(dedup)> \0 : the scan prefix of one group's windows.
std::string GroupPrefix(v1::AlertType type, absl::string_view rule_id, absl::string_view dedup) {
  return store::Join(rule_id, absl::StrCat(std::string(1, KindChar(type)), Sha256Hex32(dedup)), "");
}

std::string AlertIdFor(v1::AlertType type, absl::string_view rule_id, absl::string_view dedup,
                       int64_t start_us) {
  return Sha256Hex32(absl::StrCat(std::string(1, KindChar(type)), absl::string_view("\0", 1),
                                  rule_id, absl::string_view("\0", 1), dedup,
                                  absl::string_view("\0", 1), start_us));
}

std::string CreatedIndexKey(int64_t created_us, absl::string_view id) {
  std::string key(kCreatedIndexPrefix);
  store::AppendInt64(&key, created_us);
  key.append(id.data(), id.size());
  return key;
}

void AddLogType(v1::Alert& alert, const std::string& log_type) {
  if (log_type.empty()) return;
  auto* types = alert.mutable_log_types();
  auto it = std::lower_bound(types->begin(), types->end(), log_type);
  if (it != types->end() && *it == log_type) return;
  const int index = static_cast<int>(it - types->begin());
  types->Add(std::string(log_type));
  for (int i = types->size() - 1; i > index; --i) types->SwapElements(i, i - 1);
}

// The longest prefix of `s` of at most `max` bytes that does not end inside a
// UTF-8 sequence (proto3 strings must stay valid UTF-8).
absl::string_view CutUtf8(absl::string_view s, size_t max) {
  if (s.size() <= max) return s;
  size_t n = max;
  // Back up over continuation bytes (10xxxxxx) to the start of the cut
  // character, which is then left out.
  while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;
  return s.substr(0, n);
}

// The json bytes of the matched events `alert` stores.
size_t StoredSampleBytes(const v1::Alert& alert) {
  size_t total = 0;
  for (const v1::MatchedEvent& m : alert.matched_events()) total += m.json().size();
  return total;
}

// The bytes `message` adds to a repeated message field of its parent.
size_t RepeatedEntryBytes(const google::protobuf::Message& message) {
  const size_t n = message.ByteSizeLong();
  return n + 1 + google::protobuf::io::CodedOutputStream::VarintSize64(n);
}

// The dedup window as the engine manipulates it; times in unix microseconds.
struct Window {
  std::string key;
  v1::AlertType type = v1::ALERT_TYPE_RULE;
  std::string rule_id;
  std::string dedup;
  int64_t anchor = 0;
  int64_t start = 0;
  int64_t end = 0;
  int64_t period = 0;
  int64_t count = 0;
  int64_t first = 0;       // earliest event time counted
  int64_t last = 0;        // latest event time counted
  int64_t last_clock = 0;  // latest window-clock time counted
  int64_t touched = 0;
  std::string alert_id;
  v1::Alert draft;
  bool dirty = false;
  bool erase = false;
};

Window WindowFromProto(std::string key, const v1::DedupWindow& p) {
  Window w;
  w.key = std::move(key);
  w.type = p.type();
  w.rule_id = p.rule_id();
  w.dedup = p.dedup_string();
  w.anchor = MicrosFromTs(p.anchor());
  w.start = MicrosFromTs(p.start());
  w.end = MicrosFromTs(p.end());
  w.period = p.period_seconds() * 1'000'000;
  w.count = p.event_count();
  w.first = MicrosFromTs(p.first_event_time());
  w.last = MicrosFromTs(p.last_event_time());
  w.last_clock = MicrosFromTs(p.last_clock_time());
  w.touched = MicrosFromTs(p.touched_time());
  w.alert_id = p.alert_id();
  w.draft = p.draft();
  return w;
}

v1::DedupWindow WindowToProto(const Window& w) {
  v1::DedupWindow p;
  p.set_type(w.type);
  p.set_rule_id(w.rule_id);
  p.set_dedup_string(w.dedup);
  *p.mutable_anchor() = TsFromMicros(w.anchor);
  *p.mutable_start() = TsFromMicros(w.start);
  *p.mutable_end() = TsFromMicros(w.end);
  p.set_period_seconds(w.period / 1'000'000);
  p.set_event_count(w.count);
  *p.mutable_first_event_time() = TsFromMicros(w.first);
  *p.mutable_last_event_time() = TsFromMicros(w.last);
  *p.mutable_last_clock_time() = TsFromMicros(w.last_clock);
  *p.mutable_touched_time() = TsFromMicros(w.touched);
  p.set_alert_id(w.alert_id);
  if (w.alert_id.empty()) *p.mutable_draft() = w.draft;
  return p;
}

absl::StatusOr<int64_t> AnchorFromKey(absl::string_view key) {
  if (key.size() < store::kEncodedInt64Size) {
    return absl::DataLossError(
        absl::StrCat("malformed dedup window key of ", key.size(), " bytes"));
  }
  absl::StatusOr<int64_t> v = store::DecodeInt64(key.substr(key.size() - store::kEncodedInt64Size));
  if (!v.ok()) return absl::DataLossError(v.status().message());
  return *v;
}

// What one match or rule error contributes to its group.
struct Contribution {
  v1::AlertType type = v1::ALERT_TYPE_RULE;
  const std::string* rule_id = nullptr;
  const std::string* dedup = nullptr;
  int64_t period_us = 0;
  int64_t threshold = 1;
  const RuleMatch* match = nullptr;        // for RULE and SIGNAL
  const RuleErrorResult* error = nullptr;  // for RULE_ERROR
};

v1::Alert DraftFor(const Contribution& c) {
  v1::Alert a;
  a.set_type(c.type);
  a.set_rule_id(*c.rule_id);
  a.set_dedup_string(*c.dedup);
  a.set_status(v1::ALERT_STATUS_OPEN);
  a.set_threshold(c.threshold);
  a.set_dedup_period_minutes(c.period_us / 60'000'000);
  if (c.match != nullptr) {
    const RuleMatch& m = *c.match;
    a.set_rule_version(m.rule_version);
    a.set_title(m.title.empty() ? m.rule_id : m.title);
    a.set_severity(m.severity);
    a.set_description(m.description);
    a.set_reference(m.reference);
    a.set_runbook(m.runbook);
    for (const std::string& d : m.destinations) a.add_destinations(d);
    a.set_destinations_overridden(m.destinations_overridden);
    a.set_alert_context_json(m.alert_context_json);
  } else {
    const RuleErrorResult& e = *c.error;
    a.set_rule_version(e.rule_version);
    a.set_title(absl::StrCat("Rule ", e.rule_id, " raised ", e.error.type(),
                             e.error.message().empty() ? "" : ": ", e.error.message()));
    a.set_severity(e.severity);
    *a.mutable_error() = e.error;
  }
  return a;
}

// An event's time in unix µs; an event without one counts as `now_us`.
int64_t EventMicros(absl::Time event_time, int64_t now_us) {
  return event_time == absl::InfinitePast() || event_time == absl::InfiniteFuture()
             ? now_us
             : absl::ToUnixMicros(event_time);
}

// Whether the event store keeps an event of `event_us` at `now_us`.
bool InEventRetention(const AlertEngineOptions& options, int64_t event_us, int64_t now_us) {
  return options.event_retention > absl::ZeroDuration() &&
         absl::FromUnixMicros(event_us) >= absl::FromUnixMicros(now_us) - options.event_retention;
}

// Whether `e` has an event time of its own (else it is keyed at the
// processing time, known only under the engine lock).
bool HasEventTime(const EventResult& e) {
  return e.event_time != absl::InfinitePast() && e.event_time != absl::InfiniteFuture();
}

}  // namespace

bool ShouldNotify(const v1::AlertChange& change) {
  return change.alert().type() != v1::ALERT_TYPE_SIGNAL;
}

// The working state of one ApplyBatch: windows and alerts read from the store
// (which does not change meanwhile: ApplyBatch holds mu_) overlaid with this
// batch's modifications, and the write batch being built.
class AlertEngine::BatchState {
 public:
  BatchState(const store::Store& store, const AlertEngineOptions& options, int64_t now_us)
      : store_(store), options_(options), now_us_(now_us) {}

  // Whether the event is a duplicate; if not, records its id as processed,
  // with `event_us`, the time of its event-store key.
  absl::StatusOr<bool> CheckAndMarkProcessed(const EventResult& e, int64_t event_us) {
    if (e.event_id.empty()) return false;
    if (e.id_check == IdCheck::kDuplicate) return true;
    std::string key = store::Join(e.log_type, e.event_id);
    if (!seen_.insert(key).second) return true;
    if (e.id_check == IdCheck::kNew) {  // checked and reserved by the caller
      processed_.emplace_back(std::move(key), event_us);
      return false;
    }
    absl::StatusOr<std::string> value = store_.Get(Family::kProcessed, key);
    if (value.ok()) {
      absl::StatusOr<ProcessedRecord> record = DecodeProcessedRecord(*value);
      if (!record.ok()) {
        return absl::DataLossError(absl::StrCat("processed-event record for log type ", e.log_type,
                                                " event ", e.event_id, ": ",
                                                record.status().message()));
      }
      if (record->expiry_seconds > now_us_ / 1'000'000) return true;
    } else if (!absl::IsNotFound(value.status())) {
      return value.status();
    }
    processed_.emplace_back(std::move(key), event_us);
    return false;
  }

  // Counts one contribution of event `e` (event time `event_us`) at window
  // clock time `t`. `event_key`, when not empty, is the event's key in the
  // event store: it is indexed under the window, or its alert.
  absl::Status Count(const Contribution& c, int64_t t, int64_t event_us, const EventResult& e,
                     const std::string& event_key) {
    const std::string prefix = GroupPrefix(c.type, *c.rule_id, *c.dedup);
    PANTHERD_ASSIGN_OR_RETURN(Window * prev, Neighbour(prefix, t, /*before=*/true));
    if (prev != nullptr && prev->erase) prev = nullptr;
    Window* w = nullptr;
    if (prev != nullptr && t < prev->end) {
      w = prev;  // rule 1: the window containing t (starting at or before t)
    } else {
      PANTHERD_ASSIGN_OR_RETURN(Window * next, Neighbour(prefix, t, /*before=*/false));
      if (next != nullptr && next->erase) next = nullptr;
      if (next != nullptr && next->start <= t) {
        w = next;  // rule 1: a window that moved back over t
      } else if (next != nullptr && next->last_clock < t + next->period) {
        w = next;  // rule 2: move the next window back to t
        w->start = t;
        w->end = std::min(t + w->period, w->end);
      } else {  // rule 3: a new window
        Window fresh;
        fresh.key = absl::StrCat(prefix, store::EncodeInt64(t));
        fresh.type = c.type;
        fresh.rule_id = *c.rule_id;
        fresh.dedup = *c.dedup;
        fresh.anchor = fresh.start = fresh.last_clock = t;
        fresh.first = fresh.last = event_us;
        fresh.period = c.period_us;
        fresh.end = t + c.period_us;
        if (next != nullptr) fresh.end = std::min(fresh.end, next->start);
        fresh.draft = DraftFor(c);
        if (options_.clock == AlertClock::kProcessingTime && prev != nullptr &&
            prev->alert_id.empty()) {
          prev->erase = true;  // expired below its threshold: dropped
          prev->dirty = true;
        }
        w = &windows_[prefix].emplace(t, std::move(fresh)).first->second;
      }
    }
    w->count += 1;
    w->first = std::min(w->first, event_us);
    w->last = std::max(w->last, event_us);
    w->last_clock = std::max(w->last_clock, t);
    w->touched = now_us_;
    w->dirty = true;
    if (w->type == v1::ALERT_TYPE_RULE) counted_[w->key] = {w, c.threshold};

    v1::Alert* alert = nullptr;
    const bool had_alert = !w->alert_id.empty();
    if (w->alert_id.empty()) {
      AppendSample(w->draft, e, event_us, /*draft=*/true);
      AddLogType(w->draft, e.log_type);
      if (w->count >= c.threshold) {
        const std::string id = AlertIdFor(w->type, w->rule_id, w->dedup, w->start);
        PANTHERD_ASSIGN_OR_RETURN(AlertEntry * existing, LoadAlert(id));
        if (existing != nullptr) {
          // A window re-opened at the start of a purged one: continue its alert.
          alert = &existing->alert;
          for (const v1::MatchedEvent& m : w->draft.matched_events()) {
            if (alert->matched_events_size() >= MaxSamples()) break;
            if (StoredSampleBytes(*alert) + m.json().size() > SampleBytesPerAlert()) {
              alert->set_samples_not_stored(alert->samples_not_stored() + 1);
              continue;
            }
            *alert->add_matched_events() = m;
          }
          alert->set_samples_not_stored(alert->samples_not_stored() +
                                        w->draft.samples_not_stored());
          alert->set_matched_events_stored(alert->matched_events_size());
          for (const std::string& lt : w->draft.log_types()) AddLogType(*alert, lt);
        } else {
          AlertEntry& created = alerts_[id];
          created.alert = std::move(w->draft);
          if (created.alert.sample_event_json().empty() &&
              created.alert.matched_events_size() > 0) {
            const v1::MatchedEvent& first = created.alert.matched_events(0);
            created.alert.set_sample_event_json(first.json());
            if (first.truncated()) {
              created.alert.set_sample_event_truncated(true);
              created.alert.set_sample_event_original_bytes(first.original_bytes());
            }
          }
          created.alert.set_id(id);
          *created.alert.mutable_created_time() = TsFromMicros(now_us_);
          created.created = true;
          alert = &created.alert;
        }
        w->draft.Clear();
        w->alert_id = id;
        Touch(id);
      }
    } else {
      PANTHERD_ASSIGN_OR_RETURN(AlertEntry * entry, LoadAlert(w->alert_id));
      if (entry == nullptr) {
        return absl::DataLossError(absl::StrCat("dedup window of rule ", w->rule_id,
                                                " refers to alert ", w->alert_id,
                                                ", which does not exist"));
      }
      alert = &entry->alert;
      AppendSample(*alert, e, event_us);
      AddLogType(*alert, e.log_type);
      Touch(w->alert_id);
    }
    if (!event_key.empty()) {
      PANTHERD_RETURN_IF_ERROR(IndexEvent(*w, had_alert, event_key));
    }
    if (alert != nullptr) {
      alert->set_event_count(w->count);
      *alert->mutable_window_start() = TsFromMicros(w->start);
      *alert->mutable_window_end() = TsFromMicros(w->end);
      *alert->mutable_first_event_time() = TsFromMicros(w->first);
      *alert->mutable_last_event_time() = TsFromMicros(w->last);
      *alert->mutable_updated_time() = TsFromMicros(now_us_);
    }
    return absl::OkStatus();
  }

  // Records that the event with key `event_key` was counted into window `w`
  // (engine/event_store.h). When the window's alert was created by this
  // count, its earlier events move from the window's entries to the alert's.
  absl::Status IndexEvent(const Window& w, bool had_alert, const std::string& event_key) {
    if (w.alert_id.empty()) {
      batch_.Put(Family::kWindowEvents, WindowEventKey(w.key, event_key), "");
      window_events_[w.key].push_back(event_key);
      return absl::OkStatus();
    }
    if (!had_alert) {
      const std::string prefix = WindowEventPrefix(w.key);
      std::vector<std::string> earlier;
      PANTHERD_RETURN_IF_ERROR(
          store_.Scan(Family::kWindowEvents, prefix, [&](absl::string_view key, absl::string_view) {
            earlier.emplace_back(key.substr(prefix.size()));
            return true;
          }));
      auto pending = window_events_.find(w.key);
      if (pending != window_events_.end()) {
        for (std::string& k : pending->second) earlier.push_back(std::move(k));
        window_events_.erase(pending);
      }
      for (const std::string& k : earlier) {
        batch_.Delete(Family::kWindowEvents, WindowEventKey(w.key, k));
        batch_.Put(Family::kWindowEvents, AlertEventKey(w.alert_id, k), "");
      }
    }
    batch_.Put(Family::kWindowEvents, AlertEventKey(w.alert_id, event_key), "");
    return absl::OkStatus();
  }

  // Adds the state of every ALERT_TYPE_RULE window this batch counted into
  // (and that was not dropped) to its rule's entry of `stats`.
  void ReportWindows(const std::function<v1::RuleIngestStats&(const std::string&)>& stats) const {
    for (const auto& [key, counted] : counted_) {
      const Window& w = *counted.first;
      if (w.erase) continue;
      v1::RuleIngestStats& rule = stats(w.rule_id);
      if (rule.windows_size() >= kMaxReportedWindows) continue;
      v1::RuleWindowState* state = rule.add_windows();
      state->set_dedup_string(w.dedup);
      *state->mutable_window_start() = TsFromMicros(w.start);
      *state->mutable_window_end() = TsFromMicros(w.end);
      state->set_count(w.count);
      state->set_threshold(counted.second);
      state->set_alert_id(w.alert_id);
    }
  }

  // Writes everything; on success returns the changes as logged.
  // The write being built (for ApplyBatch's extra writes).
  store::WriteBatch& batch() { return batch_; }

  absl::StatusOr<std::vector<v1::AlertChange>> Commit(store::Store& store) {
    // New processed ids, in key order: RocksDB's memtable inserts a run of
    // ascending keys faster than the same keys at random (each insert starts
    // from where the previous one ended).
    if (!processed_.empty()) {
      const int64_t expiry =
          absl::ToUnixSeconds(absl::FromUnixMicros(now_us_) + options_.processed_retention);
      std::sort(processed_.begin(), processed_.end());
      for (const auto& [key, event_us] : processed_) {
        batch_.Put(Family::kProcessed, key,
                   EncodeProcessedRecord(expiry, absl::FromUnixMicros(event_us)));
      }
    }
    for (auto& [prefix, group] : windows_) {
      for (auto& [anchor, w] : group) {
        if (!w.dirty) continue;
        if (w.erase) {
          batch_.Delete(Family::kDedup, w.key);
        } else {
          batch_.PutMessage(Family::kDedup, w.key, WindowToProto(w));
        }
      }
    }
    std::vector<v1::AlertChange> changes;
    if (order_.empty()) {
      PANTHERD_RETURN_IF_ERROR(store.Write(std::move(batch_)));
      return changes;
    }
    absl::StatusOr<uint64_t> first = store.WriteWithSequence(
        kAlertSequenceName, order_.size(), [&](uint64_t first_seq, store::WriteBatch& batch) {
          batch = std::move(batch_);
          for (size_t i = 0; i < order_.size(); ++i) {
            AlertEntry& entry = alerts_[order_[i]];
            const uint64_t seq = first_seq + i;
            entry.alert.set_sequence(seq);
            v1::AlertChange change;
            change.set_sequence(seq);
            change.set_kind(entry.created ? v1::AlertChange::KIND_CREATED
                                          : v1::AlertChange::KIND_UPDATED);
            *change.mutable_alert() = entry.alert;
            if (!entry.created) change.mutable_alert()->clear_matched_events();
            *change.mutable_time() = TsFromMicros(now_us_);
            batch.PutMessage(Family::kAlertLog, store::SequenceKey(seq), change);
            batch.PutMessage(Family::kAlerts, entry.alert.id(), entry.alert);
            // The outbox: the decision to notify lands with the alert.
            AddDeliveryIntent(change, v1::ALERT_STATUS_UNSPECIFIED, absl::FromUnixMicros(now_us_),
                              batch);
            if (entry.created) {
              batch.Put(Family::kAlerts, CreatedIndexKey(now_us_, entry.alert.id()), "");
            }
            changes.push_back(std::move(change));
          }
          return absl::OkStatus();
        });
    if (!first.ok()) return first.status();
    return changes;
  }

 private:
  struct AlertEntry {
    v1::Alert alert;
    bool created = false;
  };

  int MaxSamples() const { return std::max(1, options_.max_sample_events); }

  // Adds `e` to the alert's samples. A window's draft (`draft`) keeps the
  // first event only once, in matched_events (at least one sample is always
  // kept); the alert gets its sample_event_json from there when created.
  // Each stored json is cut to max_sample_event_bytes; an event whose json
  // would take the alert's stored total above max_sample_bytes_per_alert is
  // counted in samples_not_stored instead.
  void AppendSample(v1::Alert& alert, const EventResult& e, int64_t t, bool draft = false) {
    const size_t cap = SampleEventCap();
    if (!draft && alert.sample_event_json().empty()) {
      alert.set_sample_event_json(std::string(CutUtf8(e.event_json, cap)));
      if (e.event_json.size() > cap) {
        alert.set_sample_event_truncated(true);
        alert.set_sample_event_original_bytes(static_cast<int64_t>(e.event_json.size()));
      }
    }
    if (alert.matched_events_size() >= MaxSamples()) return;
    const absl::string_view json = CutUtf8(e.event_json, cap);
    if (alert.matched_events_size() > 0 &&
        StoredSampleBytes(alert) + json.size() > SampleBytesPerAlert()) {
      alert.set_samples_not_stored(alert.samples_not_stored() + 1);
      return;
    }
    v1::MatchedEvent* m = alert.add_matched_events();
    m->set_event_id(e.event_id);
    m->set_log_type(e.log_type);
    *m->mutable_event_time() = TsFromMicros(t);
    m->set_json(std::string(json));
    m->set_original_bytes(static_cast<int64_t>(e.event_json.size()));
    if (json.size() < e.event_json.size()) m->set_truncated(true);
    alert.set_matched_events_stored(alert.matched_events_size());
  }

  size_t SampleEventCap() const {
    return static_cast<size_t>(std::max<int64_t>(1, options_.max_sample_event_bytes));
  }
  size_t SampleBytesPerAlert() const {
    return static_cast<size_t>(std::max<int64_t>(1, options_.max_sample_bytes_per_alert));
  }

  void Touch(const std::string& id) {
    if (touched_.insert(id).second) order_.push_back(id);
  }

  // The alert `id` from this batch or the store; nullptr when it does not exist.
  absl::StatusOr<AlertEntry*> LoadAlert(const std::string& id) {
    auto it = alerts_.find(id);
    if (it != alerts_.end()) return &it->second;
    absl::StatusOr<v1::Alert> stored = store_.GetMessage<v1::Alert>(Family::kAlerts, id);
    if (absl::IsNotFound(stored.status())) return nullptr;
    if (!stored.ok()) return stored.status();
    AlertEntry& entry = alerts_[id];
    entry.alert = *std::move(stored);
    return &entry;
  }

  // The window of group `prefix` with the greatest anchor <= t (before) or the
  // smallest anchor > t (!before), from this batch or the store; nullptr if
  // there is none.
  absl::StatusOr<Window*> Neighbour(const std::string& prefix, int64_t t, bool before) {
    std::map<int64_t, Window>& group = windows_[prefix];
    std::optional<int64_t> in_batch;
    if (before) {
      auto it = group.upper_bound(t);
      if (it != group.begin()) in_batch = std::prev(it)->first;
    } else {
      auto it = group.upper_bound(t);
      if (it != group.end()) in_batch = it->first;
    }
    std::optional<std::pair<std::string, std::string>> found;
    auto take = [&](absl::string_view key, absl::string_view value) {
      found.emplace(std::string(key), std::string(value));
      return false;
    };
    if (before) {
      PANTHERD_RETURN_IF_ERROR(store_.ReverseScan(Family::kDedup, prefix, take,
                                                  absl::StrCat(prefix, store::EncodeInt64(t))));
    } else if (t < std::numeric_limits<int64_t>::max()) {
      PANTHERD_RETURN_IF_ERROR(store_.Scan(Family::kDedup, prefix, take,
                                           absl::StrCat(prefix, store::EncodeInt64(t + 1))));
    }
    std::optional<int64_t> in_store;
    if (found.has_value()) {
      PANTHERD_ASSIGN_OR_RETURN(in_store, AnchorFromKey(found->first));
    }
    if (!in_store.has_value() && !in_batch.has_value()) return nullptr;
    const bool use_batch =
        in_batch.has_value() &&
        (!in_store.has_value() || (before ? *in_batch >= *in_store : *in_batch <= *in_store));
    if (use_batch) return &group.at(*in_batch);
    v1::DedupWindow record;
    if (!record.ParseFromString(found->second)) {
      return absl::DataLossError(absl::StrCat("dedup window record for rule ",
                                              prefix.substr(0, prefix.find('\0')),
                                              " does not parse as pantherd.v1.DedupWindow"));
    }
    return &group.emplace(*in_store, WindowFromProto(found->first, record)).first->second;
  }

  const store::Store& store_;
  const AlertEngineOptions& options_;
  const int64_t now_us_;
  store::WriteBatch batch_;
  absl::flat_hash_set<std::string> seen_;
  // Ids first processed by this batch, with the time of their event-store
  // key in µs (Commit writes them).
  std::vector<std::pair<std::string, int64_t>> processed_;
  // std::map: pointers to elements stay valid while others are inserted.
  std::map<std::string, std::map<int64_t, Window>> windows_;
  std::map<std::string, AlertEntry> alerts_;
  absl::flat_hash_set<std::string> touched_;
  std::vector<std::string> order_;
  // The ALERT_TYPE_RULE windows counted into, by key, with the threshold of
  // their latest match.
  std::map<std::string, std::pair<const Window*, int64_t>> counted_;
  // Events indexed under a window (below its threshold) in this batch, not
  // yet in the store: moved to the alert if it is created later in the batch.
  std::map<std::string, std::vector<std::string>> window_events_;
};

AlertEngine::AlertEngine(store::Store* store, AlertEngineOptions options)
    : store_(store), options_(std::move(options)), event_encoder_(store) {}

absl::StatusOr<BatchOutcome> AlertEngine::ApplyBatch(const std::vector<EventResult>& events,
                                                     const ExtraWrites& extra,
                                                     const PreparedEventBlocks* prepared) {
  for (const EventResult& e : events) {
    if (!e.event_id.empty())
      PANTHERD_RETURN_IF_ERROR(store::ValidateKeyPart(e.log_type, "log type"));
    for (const RuleMatch& m : e.matches) {
      PANTHERD_RETURN_IF_ERROR(store::ValidateKeyPart(m.rule_id, "rule id"));
    }
    for (const RuleErrorResult& r : e.errors) {
      PANTHERD_RETURN_IF_ERROR(store::ValidateKeyPart(r.rule_id, "rule id"));
    }
  }
  // The event blocks, encoded before the lock when the caller did not.
  PreparedEventBlocks encoded;
  if (prepared == nullptr && StoresEvents()) {
    PANTHERD_ASSIGN_OR_RETURN(encoded, EncodeStoredEvents(events));
    prepared = &encoded;
  }
  absl::MutexLock lock(&mu_);
  const int64_t now_us = absl::ToUnixMicros(options_.now());
  BatchState state(*store_, options_, now_us);
  BatchOutcome outcome;
  outcome.events.reserve(events.size());
  std::vector<size_t> to_store;  // the events the store keeps, ascending
  auto period_us = [](int64_t minutes) -> int64_t {
    return (minutes > 0 ? minutes : 60) * 60'000'000;
  };
  for (size_t i = 0; i < events.size(); ++i) {
    const EventResult& e = events[i];
    const int64_t event_us = EventMicros(e.event_time, now_us);
    PANTHERD_ASSIGN_OR_RETURN(const bool duplicate, state.CheckAndMarkProcessed(e, event_us));
    if (duplicate) {
      outcome.events.push_back(EventStatus::kDuplicate);
      continue;
    }
    outcome.events.push_back(EventStatus::kProcessed);
    const int64_t t = options_.clock == AlertClock::kEventTime ? event_us : now_us;
    // The event store (engine/event_store.h): within the retention only.
    // Its key names it in the window index (only an event that counts
    // into a window needs one).
    std::string event_key;
    if (InEventRetention(options_, event_us, now_us)) {
      if (!e.matches.empty() || !e.errors.empty()) {
        event_key = EventKey(e.log_type, absl::FromUnixMicros(event_us), e.event_id, e.event_json);
      }
      to_store.push_back(i);
    }
    for (const RuleMatch& m : e.matches) {
      Contribution c;
      c.type = m.create_alert ? v1::ALERT_TYPE_RULE : v1::ALERT_TYPE_SIGNAL;
      c.rule_id = &m.rule_id;
      c.dedup = &m.dedup_string;
      c.period_us = period_us(m.dedup_period_minutes);
      c.threshold = m.create_alert ? std::max<int64_t>(1, m.threshold) : 1;
      c.match = &m;
      PANTHERD_RETURN_IF_ERROR(state.Count(c, t, event_us, e, event_key));
    }
    for (const RuleErrorResult& r : e.errors) {
      Contribution c;
      c.type = v1::ALERT_TYPE_RULE_ERROR;
      c.rule_id = &r.rule_id;
      c.dedup = &r.error.type();
      c.period_us = period_us(r.dedup_period_minutes);
      c.threshold = 1;
      c.error = &r;
      PANTHERD_RETURN_IF_ERROR(state.Count(c, t, event_us, e, event_key));
    }
  }
  if (!to_store.empty()) {
    // The blocks encoded ahead hold exactly the events to store, unless the
    // clock crossed the retention's edge meanwhile, an event has no time of
    // its own (keyed at `now_us`), or a duplicate was found only now: then
    // they are encoded again here, under the lock (rare).
    if (prepared == nullptr || prepared->planned != to_store) {
      PANTHERD_ASSIGN_OR_RETURN(encoded, EncodeBlocksOf(events, to_store, now_us));
      prepared = &encoded;
      outcome.event_blocks_encoded_at_commit = static_cast<int64_t>(encoded.blocks.size());
    }
    for (const EncodedEventBlock& b : prepared->blocks) {
      outcome.events_stored += static_cast<int64_t>(b.members.size());
    }
    // Commits are serialised by mu_, so what the store holds now is what
    // the keys must not collide with (a purge's rewrites use keys of their
    // own).
    absl::flat_hash_set<std::string> keys;
    for (const EncodedEventBlock& b : prepared->blocks) {
      PANTHERD_ASSIGN_OR_RETURN(std::string key,
                                UnusedEventBlockKey(*store_, b.key, kBlockKeyIngest, &keys));
      state.batch().Put(Family::kEvents, key, b.value);
      keys.insert(std::move(key));
    }
  }
  if (extra) PANTHERD_RETURN_IF_ERROR(extra(outcome, state.batch()));
  PANTHERD_ASSIGN_OR_RETURN(outcome.changes, state.Commit(*store_));
  if (publisher_ != nullptr && !outcome.changes.empty()) publisher_->Publish(outcome.changes);

  std::map<std::string, v1::RuleIngestStats> stats;
  auto stats_of = [&stats](const std::string& rule_id) -> v1::RuleIngestStats& {
    v1::RuleIngestStats& s = stats[rule_id];
    if (s.rule_id().empty()) s.set_rule_id(rule_id);
    return s;
  };
  for (size_t i = 0; i < events.size(); ++i) {
    if (outcome.events[i] == EventStatus::kDuplicate) continue;
    for (const RuleMatch& m : events[i].matches) {
      v1::RuleIngestStats& s = stats_of(m.rule_id);
      s.set_matches(s.matches() + 1);
    }
    for (const RuleErrorResult& r : events[i].errors) {
      v1::RuleIngestStats& s = stats_of(r.rule_id);
      s.set_errors(s.errors() + 1);
    }
  }
  for (const v1::AlertChange& change : outcome.changes) {
    v1::RuleIngestStats& s = stats_of(change.alert().rule_id());
    const bool created = change.kind() == v1::AlertChange::KIND_CREATED;
    if (change.alert().type() == v1::ALERT_TYPE_SIGNAL) {
      created ? s.set_signals_created(s.signals_created() + 1)
              : s.set_signals_updated(s.signals_updated() + 1);
    } else {
      created ? s.set_alerts_created(s.alerts_created() + 1)
              : s.set_alerts_updated(s.alerts_updated() + 1);
    }
  }
  state.ReportWindows(stats_of);
  outcome.rules.reserve(stats.size());
  for (auto& [id, s] : stats) outcome.rules.push_back(std::move(s));
  return outcome;
}

absl::StatusOr<PreparedEventBlocks> AlertEngine::EncodeStoredEvents(
    const std::vector<EventResult>& events) {
  if (!StoresEvents()) return PreparedEventBlocks();
  const int64_t now_us = absl::ToUnixMicros(options_.now());
  std::vector<size_t> planned;
  for (size_t i = 0; i < events.size(); ++i) {
    const EventResult& e = events[i];
    if (e.id_check != IdCheck::kDuplicate && HasEventTime(e) &&
        InEventRetention(options_, EventMicros(e.event_time, now_us), now_us)) {
      planned.push_back(i);
    }
  }
  return EncodeBlocksOf(events, std::move(planned), now_us);
}

absl::StatusOr<PreparedEventBlocks> AlertEngine::EncodeBlocksOf(
    const std::vector<EventResult>& events, std::vector<size_t> planned, int64_t now_us) {
  PreparedEventBlocks out;
  out.planned = std::move(planned);
  std::vector<std::string> ids;
  std::vector<EventToStore> inputs;
  ids.reserve(out.planned.size());
  inputs.reserve(out.planned.size());
  for (size_t i : out.planned) {
    const EventResult& e = events[i];
    ids.push_back(StoredEventId(e.event_id, e.event_json));
    inputs.push_back(
        EventToStore{e.log_type, EventMicros(e.event_time, now_us), ids.back(), e.event_json});
  }
  for (std::vector<size_t>& members : PlanEventBlocks(inputs)) {
    PANTHERD_ASSIGN_OR_RETURN(EncodedEventBlock b,
                              EncodeEventBlock(event_encoder_, inputs, std::move(members)));
    for (size_t& m : b.members) m = out.planned[m];
    out.blocks.push_back(std::move(b));
  }
  return out;
}

absl::StatusOr<EncodedEventBlock> AlertEngine::EncodeStoredBlock(
    absl::Span<const EventToStore> events, std::vector<size_t> members) {
  return EncodeEventBlock(event_encoder_, events, std::move(members));
}

bool AlertEngine::WouldStoreEvent(absl::Time event_time) const {
  if (options_.event_retention <= absl::ZeroDuration()) return false;
  const int64_t now_us = absl::ToUnixMicros(options_.now());
  return InEventRetention(options_, EventMicros(event_time, now_us), now_us);
}

void AlertEngine::SetPublisher(AlertPublisher* publisher) {
  absl::MutexLock lock(&mu_);
  publisher_ = publisher;
}

absl::StatusOr<v1::Alert> AlertEngine::GetAlert(absl::string_view id) const {
  if (id.empty()) return absl::InvalidArgumentError("alert id is empty");
  if (id.find('\0') != absl::string_view::npos) {
    return absl::NotFoundError(absl::StrCat("alert ", absl::CHexEscape(id), " not found"));
  }
  absl::StatusOr<v1::Alert> alert = store_->GetMessage<v1::Alert>(Family::kAlerts, id);
  if (absl::IsNotFound(alert.status())) {
    return absl::NotFoundError(absl::StrCat("alert ", id, " not found"));
  }
  return alert;
}

absl::StatusOr<v1::ListAlertsResponse> AlertEngine::ListAlerts(
    const v1::ListAlertsRequest& request) const {
  int page_size = request.page().page_size();
  if (page_size < 0) {
    return absl::InvalidArgumentError(absl::StrCat("page_size ", page_size, " is negative"));
  }
  if (page_size == 0) page_size = kDefaultPageSize;
  page_size = std::min(page_size, kMaxPageSize);
  if (request.has_created_after()) {
    PANTHERD_RETURN_IF_ERROR(CheckTimestamp(request.created_after(), "created_after"));
  }
  if (request.has_created_before()) {
    PANTHERD_RETURN_IF_ERROR(CheckTimestamp(request.created_before(), "created_before"));
  }
  if (request.has_updated_after()) {
    PANTHERD_RETURN_IF_ERROR(CheckTimestamp(request.updated_after(), "updated_after"));
  }
  if (request.has_updated_before()) {
    PANTHERD_RETURN_IF_ERROR(CheckTimestamp(request.updated_before(), "updated_before"));
  }

  std::string start;  // ReverseScan from the last key <= start.
  std::string token_key;
  if (!request.page().page_token().empty()) {
    const std::string& token = request.page().page_token();
    const bool hex = std::all_of(token.begin(), token.end(), [](char ch) {
      return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f');
    });
    if (hex && token.size() % 2 == 0) token_key = absl::HexStringToBytes(token);
    if (token_key.size() <= kCreatedIndexPrefix.size() + store::kEncodedInt64Size ||
        !absl::StartsWith(token_key, kCreatedIndexPrefix)) {
      return absl::InvalidArgumentError("page_token is not one this server returned");
    }
    start = token_key;
  } else if (request.has_created_before()) {
    start = CreatedIndexKey(MicrosFromTs(request.created_before()), "");
  }
  const std::optional<int64_t> before =
      request.has_created_before() ? std::optional<int64_t>(MicrosFromTs(request.created_before()))
                                   : std::nullopt;
  const std::optional<int64_t> after =
      request.has_created_after() ? std::optional<int64_t>(MicrosFromTs(request.created_after()))
                                  : std::nullopt;
  const std::optional<int64_t> updated_after =
      request.has_updated_after() ? std::optional<int64_t>(MicrosFromTs(request.updated_after()))
                                  : std::nullopt;
  const std::optional<int64_t> updated_before =
      request.has_updated_before() ? std::optional<int64_t>(MicrosFromTs(request.updated_before()))
                                   : std::nullopt;
  const absl::flat_hash_set<std::string> rule_ids(request.rule_ids().begin(),
                                                  request.rule_ids().end());
  const absl::flat_hash_set<int> statuses(request.statuses().begin(), request.statuses().end());
  const absl::flat_hash_set<int> types(request.types().begin(), request.types().end());

  v1::ListAlertsResponse response;
  std::string last_key;
  // What the alerts take so far, and the limit (leaving room for the token:
  // 2 hex digits per index-key byte).
  size_t reply_bytes = 0;
  const size_t max_reply_bytes = ReplyBudget();
  int64_t counted = 0;  // alerts read past the page, to count them
  absl::Status error;
  PANTHERD_RETURN_IF_ERROR(store_->ReverseScan(
      Family::kAlerts, kCreatedIndexPrefix,
      [&](absl::string_view key, absl::string_view) {
        if (key == token_key) return true;
        if (!response.next_page_token().empty() && ++counted > options_.max_alerts_counted) {
          response.set_remaining_count_is_lower_bound(true);
          return false;
        }
        absl::StatusOr<int64_t> created =
            store::DecodeInt64(key.substr(kCreatedIndexPrefix.size(), store::kEncodedInt64Size));
        if (!created.ok()) {
          error = absl::DataLossError("malformed alert index key");
          return false;
        }
        if (after.has_value() && *created < *after) return false;
        if (before.has_value() && *created >= *before) return true;
        const absl::string_view id =
            key.substr(kCreatedIndexPrefix.size() + store::kEncodedInt64Size);
        absl::StatusOr<v1::Alert> alert = store_->GetMessage<v1::Alert>(Family::kAlerts, id);
        if (absl::IsNotFound(alert.status())) return true;  // purged meanwhile
        if (!alert.ok()) {
          error = alert.status();
          return false;
        }
        if (!rule_ids.empty() && !rule_ids.contains(alert->rule_id())) return true;
        if (!statuses.empty() && !statuses.contains(alert->status())) return true;
        if (!types.empty() && !types.contains(alert->type())) return true;
        if (request.min_severity() != v1::SEVERITY_UNSPECIFIED &&
            alert->severity() < request.min_severity()) {
          return true;
        }
        if (updated_after.has_value() || updated_before.has_value()) {
          const int64_t updated = MicrosFromTs(alert->updated_time());
          if (updated_after.has_value() && updated < *updated_after) return true;
          if (updated_before.has_value() && updated >= *updated_before) return true;
        }
        if (!response.next_page_token().empty()) {  // Counting the rest.
          response.set_remaining_count(response.remaining_count() + 1);
          return true;
        }
        v1::Alert summary = SummaryOf(*std::move(alert));
        const size_t entry_bytes = RepeatedEntryBytes(summary);
        if (response.alerts_size() == page_size ||
            (response.alerts_size() > 0 && reply_bytes + entry_bytes > max_reply_bytes)) {
          // One more matches: the page is full and another follows.
          response.set_next_page_token(absl::BytesToHexString(last_key));
          if (!request.count_remaining()) return false;
          response.set_remaining_count(1);
          return true;
        }
        reply_bytes += entry_bytes;
        *response.add_alerts() = std::move(summary);
        last_key = std::string(key);
        return true;
      },
      start));
  PANTHERD_RETURN_IF_ERROR(error);
  return response;
}

v1::Alert AlertEngine::SummaryOf(v1::Alert alert) {
  alert.set_matched_events_stored(alert.matched_events_size());
  alert.clear_matched_events();
  alert.clear_sample_event_json();
  alert.clear_history();
  return alert;
}

size_t AlertEngine::ReplyBudget() const {
  // Room for a next_page_token and the response's own framing.
  constexpr int64_t kReserve = 1024;
  return static_cast<size_t>(std::max<int64_t>(1, options_.max_list_reply_bytes - kReserve));
}

absl::StatusOr<v1::ListAlertEventsResponse> AlertEngine::ListAlertEvents(
    const v1::ListAlertEventsRequest& request) const {
  int page_size = request.page().page_size();
  if (page_size < 0) {
    return absl::InvalidArgumentError(absl::StrCat("page_size ", page_size, " is negative"));
  }
  if (page_size == 0) page_size = kDefaultEventsPageSize;
  page_size = std::min(page_size, kMaxPageSize);
  int start = 0;
  if (!request.page().page_token().empty() &&
      (!absl::SimpleAtoi(request.page().page_token(), &start) || start < 0)) {
    return absl::InvalidArgumentError("page_token is not one this server returned");
  }
  PANTHERD_ASSIGN_OR_RETURN(v1::Alert alert, GetAlert(request.alert_id()));
  v1::ListAlertEventsResponse response;
  response.set_event_count(alert.event_count());
  response.set_stored(alert.matched_events_size());
  const size_t max_reply_bytes = ReplyBudget();
  size_t reply_bytes = 0;
  int i = start;
  for (; i < alert.matched_events_size() && response.events_size() < page_size; ++i) {
    const size_t entry_bytes = RepeatedEntryBytes(alert.matched_events(i));
    if (response.events_size() > 0 && reply_bytes + entry_bytes > max_reply_bytes) break;
    reply_bytes += entry_bytes;
    *response.add_events() = std::move(*alert.mutable_matched_events(i));
  }
  if (i < alert.matched_events_size()) response.set_next_page_token(absl::StrCat(i));
  return response;
}

absl::StatusOr<v1::AlertChange> AlertEngine::UpdateAlert(const v1::UpdateAlertRequest& request,
                                                         absl::string_view actor, absl::Time now) {
  if (!v1::AlertStatus_IsValid(request.status())) {
    return absl::InvalidArgumentError(
        absl::StrCat("status ", static_cast<int>(request.status()), " is not an alert status"));
  }
  if (request.status() == v1::ALERT_STATUS_UNSPECIFIED && !request.has_assignee() &&
      request.comment().empty()) {
    return absl::InvalidArgumentError("the update sets no status, assignee or comment");
  }
  if (static_cast<int64_t>(request.comment().size()) > options_.max_comment_bytes) {
    return absl::InvalidArgumentError(absl::StrCat("comment: ", request.comment().size(),
                                                   " bytes, at most ", options_.max_comment_bytes));
  }
  absl::MutexLock lock(&mu_);
  PANTHERD_ASSIGN_OR_RETURN(v1::Alert alert, GetAlert(request.id()));
  const int64_t now_us = absl::ToUnixMicros(now);
  const v1::AlertStatus old_status = alert.status();
  v1::AlertHistoryEntry* entry = alert.add_history();
  *entry->mutable_time() = TsFromMicros(now_us);
  entry->set_actor(std::string(actor));
  entry->set_old_status(alert.status());
  if (request.status() != v1::ALERT_STATUS_UNSPECIFIED) alert.set_status(request.status());
  entry->set_new_status(alert.status());
  if (request.has_assignee()) {
    alert.set_assignee(request.assignee());
    entry->set_assignee(request.assignee());
  }
  entry->set_comment(request.comment());
  // Triage is a change of the alert: updated_time moves (last_event_time,
  // the newest matched event, does not).
  *alert.mutable_updated_time() = TsFromMicros(now_us);
  // Bounded in bytes: the oldest entries give way (the newest always stays).
  int64_t history_bytes = 0;
  for (const v1::AlertHistoryEntry& e : alert.history()) history_bytes += e.ByteSizeLong();
  int dropped = 0;
  while (alert.history_size() - dropped > 1 && history_bytes > options_.max_history_bytes) {
    history_bytes -= alert.history(dropped).ByteSizeLong();
    ++dropped;
  }
  if (dropped > 0) {
    alert.mutable_history()->DeleteSubrange(0, dropped);
    alert.set_history_entries_dropped(alert.history_entries_dropped() + dropped);
  }

  v1::AlertChange change;
  PANTHERD_RETURN_IF_ERROR(
      store_
          ->WriteWithSequence(kAlertSequenceName, 1,
                              [&](uint64_t seq, store::WriteBatch& batch) {
                                alert.set_sequence(seq);
                                change.set_sequence(seq);
                                change.set_kind(v1::AlertChange::KIND_TRIAGED);
                                *change.mutable_alert() = alert;
                                change.mutable_alert()->clear_matched_events();
                                *change.mutable_time() = TsFromMicros(now_us);
                                batch.PutMessage(Family::kAlertLog, store::SequenceKey(seq),
                                                 change);
                                batch.PutMessage(Family::kAlerts, alert.id(), alert);
                                AddDeliveryIntent(change, old_status, now, batch);
                                return absl::OkStatus();
                              })
          .status());
  if (publisher_ != nullptr) publisher_->Publish({change});
  return change;
}

absl::StatusOr<std::vector<v1::AlertChange>> AlertEngine::ReadChangesAfter(uint64_t after,
                                                                           size_t limit,
                                                                           size_t max_bytes) const {
  if (limit == 0) return absl::InvalidArgumentError("limit must be positive");
  std::vector<v1::AlertChange> changes;
  if (after == std::numeric_limits<uint64_t>::max()) return changes;
  size_t bytes = 0;
  absl::Status error;
  PANTHERD_RETURN_IF_ERROR(store_->Scan(
      Family::kAlertLog, "",
      [&](absl::string_view key, absl::string_view value) {
        v1::AlertChange change;
        if (!change.ParseFromArray(value.data(), static_cast<int>(value.size()))) {
          error = absl::DataLossError(absl::StrCat("alert log entry ", absl::BytesToHexString(key),
                                                   " does not parse as pantherd.v1.AlertChange"));
          return false;
        }
        changes.push_back(std::move(change));
        bytes += value.size();
        return changes.size() < limit && bytes < max_bytes;
      },
      store::SequenceKey(after + 1)));
  PANTHERD_RETURN_IF_ERROR(error);
  return changes;
}

absl::StatusOr<uint64_t> AlertEngine::LatestSequence() const {
  return store_->LastSequence(kAlertSequenceName);
}

absl::StatusOr<uint64_t> AlertEngine::OldestRetainedSequence() const {
  // The latest sequence is read before the log: when the scan finds the log
  // empty, every change up to `latest` was trimmed, and a change committed
  // after this read has a larger sequence. Read after the scan, a change
  // committed in between would be answered as already gone.
  PANTHERD_ASSIGN_OR_RETURN(const uint64_t latest, LatestSequence());
  std::optional<uint64_t> oldest;
  absl::Status error;
  PANTHERD_RETURN_IF_ERROR(
      store_->Scan(Family::kAlertLog, "", [&](absl::string_view key, absl::string_view) {
        absl::StatusOr<uint64_t> seq = store::ParseSequenceKey(key);
        if (seq.ok()) {
          oldest = *seq;
        } else {
          error = absl::DataLossError("malformed alert log key");
        }
        return false;
      }));
  PANTHERD_RETURN_IF_ERROR(error);
  if (oldest.has_value()) return *oldest;
  return latest + 1;
}

absl::StatusOr<uint64_t> AlertEngine::FirstSequenceAtOrAfter(absl::Time t) const {
  PANTHERD_ASSIGN_OR_RETURN(uint64_t lo, OldestRetainedSequence());
  PANTHERD_ASSIGN_OR_RETURN(const uint64_t latest, LatestSequence());
  const int64_t t_us = absl::ToUnixMicros(t);
  // Invariant: every retained sequence < lo was recorded before t; the answer
  // is in [lo, hi].
  uint64_t hi = latest + 1;
  while (lo < hi) {
    const uint64_t mid = lo + (hi - lo) / 2;
    absl::StatusOr<v1::AlertChange> change =
        store_->GetMessage<v1::AlertChange>(Family::kAlertLog, store::SequenceKey(mid));
    if (absl::IsNotFound(change.status())) {
      lo = mid + 1;  // trimmed meanwhile: older than anything retained
      continue;
    }
    if (!change.ok()) return change.status();
    if (MicrosFromTs(change->time()) >= t_us) {
      hi = mid;
    } else {
      lo = mid + 1;
    }
  }
  return lo;
}

absl::StatusOr<bool> AlertEngine::IsProcessed(absl::string_view log_type,
                                              absl::string_view event_id) const {
  if (event_id.empty()) return false;
  absl::StatusOr<std::string> value =
      store_->Get(Family::kProcessed, store::Join(log_type, event_id));
  if (absl::IsNotFound(value.status())) return false;
  if (!value.ok()) return value.status();
  absl::StatusOr<ProcessedRecord> record = DecodeProcessedRecord(*value);
  if (!record.ok()) {
    return absl::DataLossError(absl::StrCat("processed-event record for log type ", log_type,
                                            " event ", event_id, ": ", record.status().message()));
  }
  return record->expiry_seconds > absl::ToUnixSeconds(options_.now());
}

absl::StatusOr<PurgeStats> AlertEngine::PurgeExpired() {
  PurgeStats stats;
  const absl::Time now = options_.now();
  const int64_t now_us = absl::ToUnixMicros(now);

  // Candidates are collected without the lock, then re-checked and deleted
  // under it, a chunk at a time, so ingestion is never blocked for long.
  auto delete_if = [&](Family family, std::vector<std::string> keys,
                       const std::function<bool(absl::string_view value)>& expired,
                       int64_t& counter) -> absl::Status {
    for (size_t i = 0; i < keys.size(); i += kPurgeChunk) {
      absl::MutexLock lock(&mu_);
      store::WriteBatch batch;
      int64_t n = 0;
      for (size_t j = i; j < std::min(keys.size(), i + kPurgeChunk); ++j) {
        absl::StatusOr<std::string> value = store_->Get(family, keys[j]);
        if (absl::IsNotFound(value.status())) continue;
        if (!value.ok()) return value.status();
        if (!expired(*value)) continue;
        batch.Delete(family, keys[j]);
        ++n;
      }
      PANTHERD_RETURN_IF_ERROR(store_->Write(std::move(batch)));
      counter += n;
    }
    return absl::OkStatus();
  };

  auto processed_expired = [&](absl::string_view value) {
    absl::StatusOr<ProcessedRecord> record = DecodeProcessedRecord(value);
    return !record.ok() || record->expiry_seconds <= absl::ToUnixSeconds(now);
  };
  std::vector<std::string> keys;
  PANTHERD_RETURN_IF_ERROR(
      store_->Scan(Family::kProcessed, "", [&](absl::string_view key, absl::string_view value) {
        if (processed_expired(value)) keys.emplace_back(key);
        return true;
      }));
  PANTHERD_RETURN_IF_ERROR(
      delete_if(Family::kProcessed, std::move(keys), processed_expired, stats.processed_ids));

  const int64_t retention_us = absl::ToInt64Microseconds(options_.window_retention);
  auto window_expired = [&](absl::string_view value) {
    v1::DedupWindow w;
    if (!w.ParseFromArray(value.data(), static_cast<int>(value.size())))
      return false;  // kept for inspection; ApplyBatch reports it
    const int64_t keep = std::max(retention_us, w.period_seconds() * 1'000'000);
    if (MicrosFromTs(w.touched_time()) + keep > now_us) return false;
    return options_.clock == AlertClock::kEventTime || MicrosFromTs(w.end()) <= now_us;
  };
  keys.clear();
  PANTHERD_RETURN_IF_ERROR(
      store_->Scan(Family::kDedup, "", [&](absl::string_view key, absl::string_view value) {
        if (window_expired(value)) keys.emplace_back(key);
        return true;
      }));
  PANTHERD_RETURN_IF_ERROR(
      delete_if(Family::kDedup, std::move(keys), window_expired, stats.windows));

  // Alert-log entries are immutable and only the oldest are trimmed, so they
  // need no lock.
  const int64_t log_cutoff_us = absl::ToUnixMicros(now - options_.alert_log_retention);
  store::WriteBatch batch;
  absl::Status error;
  PANTHERD_RETURN_IF_ERROR(
      store_->Scan(Family::kAlertLog, "", [&](absl::string_view key, absl::string_view value) {
        v1::AlertChange change;
        if (!change.ParseFromArray(value.data(), static_cast<int>(value.size())) ||
            MicrosFromTs(change.time()) >= log_cutoff_us) {
          return false;
        }
        batch.Delete(Family::kAlertLog, key);
        ++stats.log_entries;
        if (batch.Count() >= kPurgeChunk) {
          error = store_->Write(std::move(batch));
          batch.Clear();
          if (!error.ok()) return false;
        }
        return true;
      }));
  PANTHERD_RETURN_IF_ERROR(error);
  PANTHERD_RETURN_IF_ERROR(store_->Write(std::move(batch)));

  // The event store: events older than the retention (all of them with a
  // retention of 0), and the window-index entries of windows purged above.
  // Stored events are immutable, so neither needs the lock.
  const absl::Time event_cutoff = options_.event_retention > absl::ZeroDuration()
                                      ? now - options_.event_retention
                                      : absl::InfiniteFuture();
  // It also compacts what it purged; all of it outside mu_.
  PANTHERD_ASSIGN_OR_RETURN(stats.events, PurgeEventsBefore(*store_, event_encoder_, event_cutoff));
  PANTHERD_ASSIGN_OR_RETURN(stats.event_store_bytes, store_->FamilyDiskBytes(Family::kEvents));
  store::WriteBatch orphans;
  std::string last_window;
  bool last_exists = true;
  const std::string window_prefix("w\0", 2);
  PANTHERD_RETURN_IF_ERROR(store_->Scan(
      Family::kWindowEvents, window_prefix, [&](absl::string_view key, absl::string_view) {
        // "w\0" <rule id> "\0" <k><hex32> "\0" i64(anchor) "\0" <event key>
        absl::string_view rest = key.substr(window_prefix.size());
        const size_t rule_end = rest.find('\0');
        const size_t window_len = rule_end + 1 + 33 + 1 + 8;
        if (rule_end == absl::string_view::npos || rest.size() <= window_len) return true;
        const absl::string_view window = rest.substr(0, window_len);
        if (window != last_window) {
          last_window = std::string(window);
          last_exists = store_->Get(Family::kDedup, window).ok();
        }
        if (!last_exists) {
          orphans.Delete(Family::kWindowEvents, key);
          ++stats.window_index_entries;
        }
        return true;
      }));
  PANTHERD_RETURN_IF_ERROR(store_->Write(std::move(orphans)));
  return stats;
}

}  // namespace pantherd::engine
