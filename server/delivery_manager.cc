#include "server/delivery_manager.h"

#include <openssl/evp.h>

#include <algorithm>
#include <cmath>
#include <set>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "engine/delivery_outbox.h"
#include "google/protobuf/util/time_util.h"
#include "proto/base/status_macros.h"
#include "store/keys.h"

namespace pantherd::server {

// One destination's sender.
struct DeliveryManager::Lane {
  std::string destination_id;
  std::thread thread;
  absl::Mutex mu;
  bool wake ABSL_GUARDED_BY(mu) = false;
  bool stop ABSL_GUARDED_BY(mu) = false;
  // Cancels the request in flight (Stop, RemoveDestination).
  std::atomic<bool> cancel{false};
};

namespace {

using google::protobuf::util::TimeUtil;
using store::Family;

constexpr absl::string_view kTrigger = "trigger";
constexpr absl::string_view kResolve = "resolve";
constexpr absl::string_view kRecordPrefix = absl::string_view("d\0", 2);
constexpr absl::string_view kDuePrefix = absl::string_view("q\0", 2);
constexpr absl::string_view kPendingPrefix = absl::string_view("p\0", 2);
constexpr char kSep = '\0';
// Lanes attempt at most this many deliveries before looking at their flags.
constexpr int kAttemptsPerPass = 32;
// Stored answer bodies and errors are cut to this.
constexpr size_t kMaxErrorBytes = 512;
constexpr size_t kMaxTestBodyBytes = 1024;

google::protobuf::Timestamp Ts(absl::Time t) {
  return TimeUtil::MicrosecondsToTimestamp(absl::ToUnixMicros(t));
}
absl::Time FromTs(const google::protobuf::Timestamp& t) {
  return absl::FromUnixMicros(TimeUtil::TimestampToMicroseconds(t));
}
int64_t Micros(const google::protobuf::Timestamp& t) {
  return TimeUtil::TimestampToMicroseconds(t);
}

std::string RecordKey(absl::string_view alert_id, absl::string_view action,
                      absl::string_view dest) {
  return absl::StrCat(kRecordPrefix, alert_id, std::string(1, kSep), action, std::string(1, kSep),
                      dest);
}
std::string RecordPrefixOf(absl::string_view alert_id) {
  return absl::StrCat(kRecordPrefix, alert_id, std::string(1, kSep));
}
std::string IndexPrefix(absl::string_view prefix, absl::string_view dest) {
  return absl::StrCat(prefix, dest, std::string(1, kSep));
}
std::string IndexKey(absl::string_view prefix, absl::string_view dest, int64_t micros,
                     absl::string_view alert_id, absl::string_view action) {
  return absl::StrCat(IndexPrefix(prefix, dest), store::EncodeUint64(static_cast<uint64_t>(micros)),
                      alert_id, std::string(1, kSep), action);
}

struct IndexEntry {
  int64_t micros = 0;
  std::string alert_id;
  std::string action;
};
// Parses the part of an index key after IndexPrefix.
std::optional<IndexEntry> ParseIndexRest(absl::string_view rest) {
  if (rest.size() < 8) return std::nullopt;
  absl::StatusOr<uint64_t> micros = store::DecodeUint64(rest.substr(0, 8));
  if (!micros.ok()) return std::nullopt;
  rest.remove_prefix(8);
  const size_t sep = rest.find(kSep);
  if (sep == absl::string_view::npos) return std::nullopt;
  return IndexEntry{static_cast<int64_t>(*micros), std::string(rest.substr(0, sep)),
                    std::string(rest.substr(sep + 1))};
}

// Removes every secret value of `config` from `text`, and cuts it.
std::string Scrub(std::string text, const DestinationConfig& config, size_t max_bytes) {
  std::vector<std::pair<std::string, std::string>> replacements;
  auto add_one = [&](absl::string_view secret) {
    if (secret.size() >= 4) replacements.emplace_back(std::string(secret), "[redacted]");
  };
  auto add = [&](const std::string& secret) {
    add_one(secret);
    // A URL's secret parts may be echoed alone: everything after its host,
    // and each long path segment, query value and user-info part.
    const size_t scheme = secret.find("://");
    if (scheme == std::string::npos) return;
    const size_t host_start = scheme + 3;
    const size_t path = secret.find_first_of("/?#", host_start);
    const absl::string_view authority = absl::string_view(secret).substr(
        host_start, path == std::string::npos ? std::string::npos : path - host_start);
    const size_t at = authority.rfind('@');
    if (at != absl::string_view::npos) {
      for (absl::string_view part : absl::StrSplit(authority.substr(0, at), ':')) add_one(part);
    }
    if (path == std::string::npos) return;
    const absl::string_view rest = absl::string_view(secret).substr(path);
    if (rest.size() > 1) add_one(rest);
    for (absl::string_view part : absl::StrSplit(rest, absl::ByAnyChar("/?&=#"))) {
      if (part.size() >= 8) add_one(part);
    }
  };
  for (const auto& [name, value] : config.secrets) add(value);
  for (const auto& [name, value] : config.headers) add(value);
  // Longest first, so that a secret containing another is replaced whole.
  std::sort(replacements.begin(), replacements.end(),
            [](const auto& a, const auto& b) { return a.first.size() > b.first.size(); });
  for (const auto& [from, to] : replacements) absl::StrReplaceAll({{from, to}}, &text);
  if (text.size() > max_bytes) {
    size_t cut = max_bytes;
    while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
    text.resize(cut);
    text += "...";
  }
  for (char& c : text) {
    if (static_cast<unsigned char>(c) < 0x20 && c != '\n' && c != '\t') c = ' ';
  }
  return text;
}

const internal::StoredDestination* ResolveName(
    absl::string_view name, const std::vector<internal::StoredDestination>& destinations) {
  for (const auto& d : destinations) {
    if (d.destination().id() == name) return &d;
  }
  for (const auto& d : destinations) {
    if (d.destination().name() == name) return &d;
  }
  for (const auto& d : destinations) {
    if (absl::EqualsIgnoreCase(d.destination().name(), name)) return &d;
  }
  return nullptr;
}

bool TypeAccepted(const v1::DestinationFilters& filters, v1::AlertType type) {
  if (type != v1::ALERT_TYPE_RULE && type != v1::ALERT_TYPE_RULE_ERROR) return false;
  if (filters.alert_types_size() == 0) return true;
  return std::find(filters.alert_types().begin(), filters.alert_types().end(), type) !=
         filters.alert_types().end();
}

std::string StatusName(v1::DeliveryStatus s) {
  switch (s) {
    case v1::DELIVERY_STATUS_PENDING:
      return "pending";
    case v1::DELIVERY_STATUS_DELIVERED:
      return "delivered";
    case v1::DELIVERY_STATUS_FAILED:
      return "failed";
    default:
      return "unknown";
  }
}

}  // namespace

// ---- Pure parts --------------------------------------------------------------

bool FiltersAccept(const v1::DestinationFilters& filters, const v1::Alert& alert) {
  if (!TypeAccepted(filters, alert.type())) return false;
  if (filters.min_severity() != v1::SEVERITY_UNSPECIFIED &&
      alert.severity() < filters.min_severity()) {
    return false;
  }
  if (filters.log_types_size() > 0) {
    bool any = false;
    for (const std::string& t : alert.log_types()) {
      if (std::find(filters.log_types().begin(), filters.log_types().end(), t) !=
          filters.log_types().end()) {
        any = true;
      }
    }
    if (!any) return false;
  }
  if (filters.rule_ids_size() > 0 && std::find(filters.rule_ids().begin(), filters.rule_ids().end(),
                                               alert.rule_id()) == filters.rule_ids().end()) {
    return false;
  }
  return true;
}

std::vector<Route> RouteAlert(const v1::Alert& alert, const v1::Rule* rule,
                              const std::vector<internal::StoredDestination>& destinations) {
  std::vector<Route> routes;
  if (alert.type() != v1::ALERT_TYPE_RULE && alert.type() != v1::ALERT_TYPE_RULE_ERROR) {
    return routes;
  }
  std::vector<std::string> named;
  std::string by;
  if (alert.destinations_overridden() && alert.type() == v1::ALERT_TYPE_RULE) {
    named.assign(alert.destinations().begin(), alert.destinations().end());
    by = "destinations()";
    if (named.empty()) return routes;  // an empty list suppresses delivery
  } else if (rule != nullptr && rule->output_ids_size() > 0) {
    named.assign(rule->output_ids().begin(), rule->output_ids().end());
    by = "OutputIds";
  }
  std::set<std::string> seen;
  if (!by.empty()) {
    for (const std::string& name : named) {
      if (name == kSkipDestination) return {};
    }
    for (const std::string& name : named) {
      const internal::StoredDestination* d = ResolveName(name, destinations);
      Route r;
      r.routed_by = by;
      if (d == nullptr) {
        // Keys must not hold NUL; the name is shown escaped.
        const std::string shown = absl::CEscape(name);
        r.destination_id = absl::StrCat("?", shown);
        r.destination_name = shown;
        r.error = absl::StrCat("no destination named ", shown, " (named by the rule's ", by, ")");
      } else {
        if (!TypeAccepted(d->destination().filters(), alert.type())) continue;
        r.destination_id = d->destination().id();
        r.destination_name = d->destination().name();
        r.kind = d->destination().kind();
      }
      if (seen.insert(r.destination_id).second) routes.push_back(std::move(r));
    }
  } else {
    for (const internal::StoredDestination& d : destinations) {
      if (!FiltersAccept(d.destination().filters(), alert)) continue;
      Route r;
      r.routed_by = "filters";
      r.destination_id = d.destination().id();
      r.destination_name = d.destination().name();
      r.kind = d.destination().kind();
      if (seen.insert(r.destination_id).second) routes.push_back(std::move(r));
    }
  }
  std::sort(routes.begin(), routes.end(),
            [](const Route& a, const Route& b) { return a.destination_name < b.destination_name; });
  return routes;
}

std::string IdempotencyKey(absl::string_view alert_id, absl::string_view destination_id,
                           absl::string_view action) {
  const std::string input =
      absl::StrCat(alert_id, std::string(1, '\0'), destination_id, std::string(1, '\0'), action);
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(input.data(), input.size(), digest, &len, EVP_sha256(), nullptr);
  return absl::BytesToHexString(absl::string_view(reinterpret_cast<const char*>(digest), 16));
}

absl::Duration BackoffDelay(const DeliveryOptions& options, int attempt) {
  double factor = std::pow(3.0, std::max(0, attempt - 1));
  absl::Duration d = options.retry_base * std::min(factor, 1e9);
  return std::min(d, options.retry_max);
}

std::optional<absl::Duration> ParseRetryAfter(absl::string_view value, absl::Time now) {
  value = absl::StripAsciiWhitespace(value);
  if (value.empty()) return std::nullopt;
  int64_t seconds = 0;
  if (absl::SimpleAtoi(value, &seconds)) {
    if (seconds < 0) return std::nullopt;
    return absl::Seconds(seconds);
  }
  absl::Time when;
  std::string err;
  // IMF-fixdate, e.g. "Wed, 21 Oct 2015 07:28:00 GMT".
  if (absl::ParseTime("%a, %d %b %Y %H:%M:%S GMT", value, absl::UTCTimeZone(), &when, &err)) {
    return std::max(absl::ZeroDuration(), when - now);
  }
  return std::nullopt;
}

// ---- The manager ---------------------------------------------------------------

DeliveryManager::DeliveryManager(store::Store* store, DestinationRegistry* registry,
                                 HttpClient* http, DeliveryOptions options)
    : store_(store),
      registry_(registry),
      http_(http),
      options_(std::move(options)),
      rng_(std::random_device{}()) {}

DeliveryManager::~DeliveryManager() { Stop(); }

base::Logger& DeliveryManager::logger() const {
  return options_.logger != nullptr ? *options_.logger : *base::DefaultLogger();
}

absl::Status DeliveryManager::Start() {
  {
    absl::MutexLock lock(&lanes_mu_);
    if (started_) return absl::FailedPreconditionError("the delivery manager is already started");
    started_ = true;
  }
  for (const internal::StoredDestination& d : registry_->All()) {
    StartLane(d.destination().id());
  }
  router_ = std::thread([this] { RouterLoop(); });
  return absl::OkStatus();
}

void DeliveryManager::Stop() {
  std::map<std::string, std::unique_ptr<Lane>> lanes;
  {
    absl::MutexLock lock(&lanes_mu_);
    if (!started_ || stopping_) return;
    stopping_ = true;
    lanes.swap(lanes_);
  }
  for (auto& [id, lane] : lanes) {
    lane->cancel = true;
    absl::MutexLock lock(&lane->mu);
    lane->stop = true;
  }
  for (auto& [id, lane] : lanes) {
    if (lane->thread.joinable()) lane->thread.join();
  }
  if (router_.joinable()) router_.join();
}

void DeliveryManager::Wake() {
  absl::MutexLock lock(&lanes_mu_);
  router_wake_ = true;
}

void DeliveryManager::StartLane(const std::string& destination_id) {
  absl::MutexLock lock(&lanes_mu_);
  if (stopping_ || !started_ || lanes_.count(destination_id) > 0) return;
  auto lane = std::make_unique<Lane>();
  lane->destination_id = destination_id;
  Lane* raw = lane.get();
  lanes_[destination_id] = std::move(lane);
  raw->thread = std::thread([this, raw] { LaneLoop(raw); });
}

void DeliveryManager::StopLane(const std::string& destination_id) {
  std::unique_ptr<Lane> lane;
  {
    absl::MutexLock lock(&lanes_mu_);
    auto it = lanes_.find(destination_id);
    if (it == lanes_.end()) return;
    lane = std::move(it->second);
    lanes_.erase(it);
  }
  lane->cancel = true;
  {
    absl::MutexLock lock(&lane->mu);
    lane->stop = true;
  }
  if (lane->thread.joinable()) lane->thread.join();
}

void DeliveryManager::WakeLane(const std::string& destination_id) {
  absl::MutexLock lock(&lanes_mu_);
  auto it = lanes_.find(destination_id);
  if (it == lanes_.end()) return;
  absl::MutexLock lane_lock(&it->second->mu);
  it->second->wake = true;
}

double DeliveryManager::Jitter() {
  absl::MutexLock lock(&rng_mu_);
  std::uniform_real_distribution<double> dist(0.75, 1.25);
  return dist(rng_);
}

DeliveryManager::Counters& DeliveryManager::CountersOf(const std::string& destination_id) {
  absl::MutexLock lock(&counters_mu_);
  std::unique_ptr<Counters>& c = counters_[destination_id];
  if (c == nullptr) c = std::make_unique<Counters>();
  return *c;
}

// ---- Router --------------------------------------------------------------------

void DeliveryManager::RouterLoop() {
  while (true) {
    {
      absl::MutexLock lock(&lanes_mu_);
      if (stopping_) return;
      router_wake_ = false;
    }
    absl::StatusOr<int> routed = RouteOutbox(100);
    if (!routed.ok()) {
      logger().Write(
          base::LogLevel::kWarn, "routing alert deliveries failed",
          {{"component", "delivery"}, {"error", std::string(routed.status().message())}});
    }
    if (routed.ok() && *routed == 100) continue;  // more may be waiting
    absl::MutexLock lock(&lanes_mu_);
    auto woken = [this]()
                     ABSL_EXCLUSIVE_LOCKS_REQUIRED(lanes_mu_) { return router_wake_ || stopping_; };
    lanes_mu_.AwaitWithTimeout(absl::Condition(&woken), options_.poll_interval);
  }
}

absl::StatusOr<int> DeliveryManager::RouteOutbox(int limit) {
  std::vector<std::pair<std::string, internal::DeliveryIntent>> intents;
  absl::Status parse;
  PANTHERD_RETURN_IF_ERROR(
      store_->Scan(Family::kDeliveries, engine::kOutboxPrefix,
                   [&](absl::string_view key, absl::string_view value) {
                     internal::DeliveryIntent intent;
                     if (!intent.ParseFromArray(value.data(), static_cast<int>(value.size()))) {
                       parse = absl::DataLossError(
                           absl::StrCat("outbox entry ", absl::CEscape(key), " does not parse"));
                       // A corrupt intent is dropped (logged), never retried forever.
                       intent.Clear();
                     }
                     intents.emplace_back(std::string(key), std::move(intent));
                     return static_cast<int>(intents.size()) < limit;
                   }));
  int routed = 0;
  absl::MutexLock lock(&records_mu_);
  for (const auto& [key, intent] : intents) {
    absl::Status s = RouteIntent(key, intent);
    if (!s.ok()) return s;
    ++routed;
  }
  if (!parse.ok()) {
    logger().Write(base::LogLevel::kError, "dropped a corrupt delivery intent",
                   {{"component", "delivery"}, {"error", std::string(parse.message())}});
  }
  return routed;
}

absl::Status DeliveryManager::RouteIntent(absl::string_view key,
                                          const internal::DeliveryIntent& intent) {
  store::WriteBatch batch;
  batch.Delete(Family::kDeliveries, key);
  const absl::Time now = options_.now();
  std::set<std::string> wake;
  absl::StatusOr<v1::Alert> alert =
      store_->GetMessage<v1::Alert>(Family::kAlerts, intent.alert_id());
  if (absl::IsNotFound(alert.status()) || intent.alert_id().empty()) {
    return store_->Write(std::move(batch));  // nothing to deliver
  }
  if (!alert.ok()) return alert.status();
  if (intent.action() == internal::DeliveryIntent::ACTION_TRIGGER) {
    std::optional<v1::Rule> rule;
    absl::StatusOr<v1::Rule> r = store_->GetMessage<v1::Rule>(
        Family::kRuleVersions, store::RuleVersionKey(alert->rule_id(), alert->rule_version()));
    if (r.ok()) rule = *std::move(r);
    for (const Route& route : RouteAlert(*alert, rule ? &*rule : nullptr, registry_->All())) {
      absl::StatusOr<std::optional<internal::DeliveryRecord>> existing =
          ReadRecord(alert->id(), kTrigger, route.destination_id);
      if (!existing.ok()) return existing.status();
      if (existing->has_value()) continue;
      AddPending(*alert, route, kTrigger, now, batch);
      if (route.error.empty()) wake.insert(route.destination_id);
    }
  } else if (intent.action() == internal::DeliveryIntent::ACTION_RESOLVE) {
    // Resolve where the alert was triggered and the kind resolves.
    std::vector<internal::DeliveryRecord> triggers;
    absl::Status parse;
    PANTHERD_RETURN_IF_ERROR(
        store_->Scan(Family::kDeliveries, RecordKey(alert->id(), kTrigger, ""),
                     [&](absl::string_view, absl::string_view value) {
                       internal::DeliveryRecord rec;
                       if (rec.ParseFromArray(value.data(), static_cast<int>(value.size()))) {
                         triggers.push_back(std::move(rec));
                       }
                       return true;
                     }));
    for (const internal::DeliveryRecord& t : triggers) {
      std::optional<internal::StoredDestination> d = registry_->ById(t.delivery().destination_id());
      if (!d.has_value()) continue;
      const DestinationKind* kind = FindDestinationKind(d->destination().kind());
      if (kind == nullptr || !kind->resolves) continue;
      absl::StatusOr<std::optional<internal::DeliveryRecord>> existing =
          ReadRecord(alert->id(), kResolve, t.delivery().destination_id());
      if (!existing.ok()) return existing.status();
      Route route;
      route.destination_id = d->destination().id();
      route.destination_name = d->destination().name();
      route.kind = d->destination().kind();
      route.routed_by = t.delivery().routed_by();
      if (existing->has_value()) {
        // Resolved again after a reopen: send the resolve again.
        internal::DeliveryRecord rec = **existing;
        v1::AlertDelivery& del = *rec.mutable_delivery();
        del.set_status(v1::DELIVERY_STATUS_PENDING);
        del.set_attempts(0);
        *del.mutable_next_attempt_time() = Ts(now);
        *rec.mutable_pending_since() = Ts(now);
        PutRecord(&**existing, rec, batch);
      } else {
        AddPending(*alert, route, kResolve, now, batch);
      }
      wake.insert(route.destination_id);
    }
  }
  PANTHERD_RETURN_IF_ERROR(store_->Write(std::move(batch)));
  for (const std::string& id : wake) WakeLane(id);
  return absl::OkStatus();
}

void DeliveryManager::AddPending(const v1::Alert& alert, const Route& route,
                                 absl::string_view action, absl::Time now,
                                 store::WriteBatch& batch) {
  internal::DeliveryRecord rec;
  v1::AlertDelivery& d = *rec.mutable_delivery();
  d.set_alert_id(alert.id());
  d.set_destination_id(route.destination_id);
  d.set_destination_name(route.destination_name);
  d.set_kind(route.kind);
  d.set_action(std::string(action));
  d.set_routed_by(route.routed_by);
  d.set_idempotency_key(IdempotencyKey(alert.id(), route.destination_id, action));
  *d.mutable_created_time() = Ts(now);
  if (!route.error.empty()) {
    d.set_status(v1::DELIVERY_STATUS_FAILED);
    d.set_last_error(route.error);
    CountersOf(route.destination_id).failed++;
    logger().Write(base::LogLevel::kWarn, "alert delivery failed",
                   {{"component", "delivery"},
                    {"alert_id", alert.id()},
                    {"destination", route.destination_name},
                    {"error", route.error}});
  } else {
    d.set_status(v1::DELIVERY_STATUS_PENDING);
    *d.mutable_next_attempt_time() = Ts(now);
    *rec.mutable_pending_since() = Ts(now);
  }
  PutRecord(nullptr, rec, batch);
}

void DeliveryManager::PutRecord(const internal::DeliveryRecord* before,
                                const internal::DeliveryRecord& record, store::WriteBatch& batch) {
  const v1::AlertDelivery& d = record.delivery();
  if (before != nullptr && before->delivery().status() == v1::DELIVERY_STATUS_PENDING) {
    const v1::AlertDelivery& b = before->delivery();
    batch.Delete(Family::kDeliveries,
                 IndexKey(kDuePrefix, b.destination_id(), Micros(b.next_attempt_time()),
                          b.alert_id(), b.action()));
    batch.Delete(Family::kDeliveries,
                 IndexKey(kPendingPrefix, b.destination_id(), Micros(before->pending_since()),
                          b.alert_id(), b.action()));
  }
  if (d.status() == v1::DELIVERY_STATUS_PENDING) {
    batch.Put(Family::kDeliveries,
              IndexKey(kDuePrefix, d.destination_id(), Micros(d.next_attempt_time()), d.alert_id(),
                       d.action()),
              "");
    batch.Put(Family::kDeliveries,
              IndexKey(kPendingPrefix, d.destination_id(), Micros(record.pending_since()),
                       d.alert_id(), d.action()),
              "");
  }
  batch.PutMessage(Family::kDeliveries, RecordKey(d.alert_id(), d.action(), d.destination_id()),
                   record);
}

absl::StatusOr<std::optional<internal::DeliveryRecord>> DeliveryManager::ReadRecord(
    absl::string_view alert_id, absl::string_view action, absl::string_view dest) const {
  absl::StatusOr<internal::DeliveryRecord> rec = store_->GetMessage<internal::DeliveryRecord>(
      Family::kDeliveries, RecordKey(alert_id, action, dest));
  if (absl::IsNotFound(rec.status())) return std::optional<internal::DeliveryRecord>();
  if (!rec.ok()) return rec.status();
  return std::optional<internal::DeliveryRecord>(*std::move(rec));
}

// ---- Lanes ---------------------------------------------------------------------

void DeliveryManager::LaneLoop(Lane* lane) {
  while (true) {
    {
      absl::MutexLock lock(&lane->mu);
      if (lane->stop) return;
      lane->wake = false;
    }
    const absl::Time next = ProcessDue(lane);
    absl::Duration wait = std::min(options_.poll_interval, next - options_.now());
    absl::MutexLock lock(&lane->mu);
    if (wait <= absl::ZeroDuration()) continue;
    auto woken = [lane]()
                     ABSL_EXCLUSIVE_LOCKS_REQUIRED(lane->mu) { return lane->wake || lane->stop; };
    lane->mu.AwaitWithTimeout(absl::Condition(&woken), wait);
  }
}

absl::Time DeliveryManager::ProcessDue(Lane* lane) {
  const std::string prefix = IndexPrefix(kDuePrefix, lane->destination_id);
  for (int done = 0; done < kAttemptsPerPass;) {
    if (lane->cancel) return absl::InfiniteFuture();
    std::optional<IndexEntry> first;
    absl::Status s =
        store_->Scan(Family::kDeliveries, prefix, [&](absl::string_view key, absl::string_view) {
          first = ParseIndexRest(key.substr(prefix.size()));
          if (!first.has_value()) {
            // Not ours to parse: remove it.
            (void)store_->Delete(Family::kDeliveries, key);
          }
          return false;
        });
    if (!s.ok()) {
      logger().Write(base::LogLevel::kWarn, "reading due deliveries failed",
                     {{"component", "delivery"}, {"error", std::string(s.message())}});
      return options_.now() + options_.poll_interval;
    }
    if (!first.has_value()) return absl::InfiniteFuture();
    const absl::Time due = absl::FromUnixMicros(first->micros);
    if (due > options_.now()) return due;
    Attempt(lane, first->alert_id, first->action);
    ++done;
  }
  return options_.now();
}

void DeliveryManager::Attempt(Lane* lane, const std::string& alert_id, const std::string& action) {
  const std::string& dest_id = lane->destination_id;
  std::optional<internal::DeliveryRecord> rec;
  {
    absl::MutexLock lock(&records_mu_);
    absl::StatusOr<std::optional<internal::DeliveryRecord>> read =
        ReadRecord(alert_id, action, dest_id);
    if (!read.ok()) return;
    rec = *std::move(read);
    if (!rec.has_value() || rec->delivery().status() != v1::DELIVERY_STATUS_PENDING) {
      // A stale index entry (the record moved on): drop it.
      store::WriteBatch batch;
      absl::Status s = store_->Scan(Family::kDeliveries, IndexPrefix(kDuePrefix, dest_id),
                                    [&](absl::string_view key, absl::string_view) {
                                      std::optional<IndexEntry> e = ParseIndexRest(
                                          key.substr(IndexPrefix(kDuePrefix, dest_id).size()));
                                      if (e && e->alert_id == alert_id && e->action == action) {
                                        batch.Delete(Family::kDeliveries, key);
                                      }
                                      return true;
                                    });
      if (s.ok()) (void)store_->Write(std::move(batch));
      return;
    }
  }
  const absl::Time started = options_.now();
  Outcome outcome = Outcome::kRetry;
  int http_status = 0;
  std::string error;
  std::optional<absl::Duration> retry_after;
  std::optional<internal::StoredDestination> dest = registry_->ById(dest_id);
  DestinationConfig config;
  if (!dest.has_value()) {
    outcome = Outcome::kFailed;
    error = "the destination was removed";
  } else {
    config = DestinationRegistry::ConfigOf(*dest);
    const DestinationKind* kind = FindDestinationKind(dest->destination().kind());
    absl::StatusOr<v1::Alert> alert = store_->GetMessage<v1::Alert>(Family::kAlerts, alert_id);
    if (kind == nullptr) {
      outcome = Outcome::kFailed;
      error = absl::StrCat("unknown destination kind ", dest->destination().kind());
    } else if (!alert.ok()) {
      outcome = absl::IsNotFound(alert.status()) ? Outcome::kFailed : Outcome::kRetry;
      error = absl::StrCat("reading the alert: ", alert.status().message());
    } else {
      absl::StatusOr<AlertMessage> message = MessageFor(
          *alert, action == kResolve ? DeliveryAction::kResolve : DeliveryAction::kTrigger,
          rec->delivery().idempotency_key(), rec->delivery().attempts() + 1);
      absl::StatusOr<OutgoingRequest> request =
          message.ok() ? kind->build(*message, config) : message.status();
      if (!request.ok()) {
        outcome = Outcome::kFailed;
        error = absl::StrCat("building the request: ", request.status().message());
      } else {
        HttpRequest http;
        http.url = request->url;
        http.headers = request->headers;
        http.timeout = options_.request_timeout;
        http.max_body_bytes = 1 << 20;
        absl::StatusOr<HttpResponse> response = http_->Post(http, request->body, &lane->cancel);
        if (absl::IsCancelled(response.status())) {
          outcome = Outcome::kCancelled;
        } else if (!response.ok()) {
          const absl::StatusCode code = response.status().code();
          outcome = (code == absl::StatusCode::kInvalidArgument ||
                     code == absl::StatusCode::kUnimplemented)
                        ? Outcome::kFailed
                        : Outcome::kRetry;
          error = std::string(response.status().message());
          if (code == absl::StatusCode::kResourceExhausted) {
            error = "the receiver's answer was larger than 1 MiB";
          }
        } else {
          http_status = response->status;
          if (http_status >= 200 && http_status < 300) {
            outcome = Outcome::kDelivered;
          } else {
            error = absl::StrCat("HTTP ", http_status, response->body.empty() ? "" : ": ",
                                 response->body);
            if (http_status == 429) {
              retry_after = ParseRetryAfter(response->Header("Retry-After"), options_.now());
              outcome = Outcome::kRetry;
            } else if (http_status == 408 || http_status >= 500) {
              outcome = Outcome::kRetry;
            } else {
              outcome = Outcome::kFailed;  // 3xx (not followed) and other 4xx
            }
          }
        }
      }
    }
  }
  if (outcome == Outcome::kCancelled) return;
  error = Scrub(std::move(error), config, kMaxErrorBytes);

  absl::MutexLock lock(&records_mu_);
  absl::StatusOr<std::optional<internal::DeliveryRecord>> read =
      ReadRecord(alert_id, action, dest_id);
  if (!read.ok() || !read->has_value()) return;
  const internal::DeliveryRecord before = **read;
  if (before.delivery().status() != v1::DELIVERY_STATUS_PENDING) return;
  // Re-sent while this attempt was in flight: the resend stands (pending,
  // due now, fresh budget); this attempt's outcome is not recorded over it.
  if (before.delivery().resends() != rec->delivery().resends()) return;
  internal::DeliveryRecord after = before;
  v1::AlertDelivery& d = *after.mutable_delivery();
  const absl::Time now = options_.now();
  d.set_attempts(d.attempts() + 1);
  d.set_last_http_status(http_status);
  *d.mutable_last_attempt_time() = Ts(started);
  Counters& counters = CountersOf(dest_id);
  if (outcome == Outcome::kDelivered) {
    d.set_status(v1::DELIVERY_STATUS_DELIVERED);
    d.clear_next_attempt_time();
    *d.mutable_delivered_time() = Ts(now);
    d.clear_last_error();
    counters.delivered++;
  } else if (outcome == Outcome::kRetry && d.attempts() < options_.max_attempts) {
    d.set_last_error(error);
    absl::Duration wait = BackoffDelay(options_, d.attempts()) * Jitter();
    if (retry_after.has_value()) wait = std::min(*retry_after, options_.max_retry_after);
    *d.mutable_next_attempt_time() = Ts(now + wait);
    counters.retried++;
  } else {
    d.set_status(v1::DELIVERY_STATUS_FAILED);
    d.clear_next_attempt_time();
    d.set_last_error(outcome == Outcome::kRetry
                         ? absl::StrCat(error, " (gave up after ", d.attempts(), " attempts)")
                         : error);
    counters.failed++;
  }
  store::WriteBatch batch;
  PutRecord(&before, after, batch);
  absl::Status written = store_->Write(std::move(batch));
  logger().Write(outcome == Outcome::kDelivered ? base::LogLevel::kInfo : base::LogLevel::kWarn,
                 "alert delivery attempt",
                 {{"component", "delivery"},
                  {"alert_id", alert_id},
                  {"destination", d.destination_name()},
                  {"action", action},
                  {"attempt", absl::StrCat(d.attempts())},
                  {"status", StatusName(d.status())},
                  {"http_status", absl::StrCat(http_status)},
                  {"error", d.last_error()},
                  {"write_error", written.ok() ? "" : std::string(written.message())}});
}

absl::StatusOr<AlertMessage> DeliveryManager::MessageFor(const v1::Alert& alert,
                                                         DeliveryAction action,
                                                         absl::string_view idempotency_key,
                                                         int attempt) const {
  AlertMessage m;
  m.alert = alert;
  m.alert.clear_matched_events();
  m.alert.clear_history();
  m.action = action;
  m.idempotency_key = std::string(idempotency_key);
  m.attempt = attempt;
  if (!options_.external_url.empty()) {
    std::string base = options_.external_url;
    while (!base.empty() && base.back() == '/') base.pop_back();
    m.link = absl::StrCat(base, "/alerts/", alert.id());
  }
  absl::StatusOr<v1::Rule> rule = store_->GetMessage<v1::Rule>(
      Family::kRuleVersions, store::RuleVersionKey(alert.rule_id(), alert.rule_version()));
  if (rule.ok()) {
    m.rule_name = rule->display_name();
    m.tags.assign(rule->tags().begin(), rule->tags().end());
    if (m.alert.runbook().empty()) m.alert.set_runbook(rule->runbook());
    if (m.alert.reference().empty()) m.alert.set_reference(rule->reference());
    if (m.alert.description().empty()) m.alert.set_description(rule->description());
  }
  return m;
}

// ---- RPC backends -------------------------------------------------------------

absl::StatusOr<v1::Destination> DeliveryManager::AddDestination(
    const v1::AddDestinationRequest& request, absl::string_view actor) {
  PANTHERD_ASSIGN_OR_RETURN(internal::StoredDestination d, registry_->Add(request, actor));
  StartLane(d.destination().id());
  logger().Write(base::LogLevel::kInfo, "destination added",
                 {{"component", "delivery"},
                  {"destination", d.destination().name()},
                  {"id", d.destination().id()},
                  {"kind", d.destination().kind()}});
  return DestinationRegistry::PublicView(d);
}

absl::StatusOr<v1::Destination> DeliveryManager::UpdateDestination(
    const v1::UpdateDestinationRequest& request) {
  PANTHERD_ASSIGN_OR_RETURN(internal::StoredDestination d, registry_->Update(request));
  WakeLane(d.destination().id());
  return DestinationRegistry::PublicView(d);
}

absl::StatusOr<int64_t> DeliveryManager::RemoveDestination(absl::string_view id_or_name) {
  PANTHERD_ASSIGN_OR_RETURN(internal::StoredDestination d, registry_->Remove(id_or_name));
  const std::string id = d.destination().id();
  StopLane(id);
  absl::MutexLock lock(&records_mu_);
  const std::string prefix = IndexPrefix(kDuePrefix, id);
  std::vector<IndexEntry> pending;
  PANTHERD_RETURN_IF_ERROR(
      store_->Scan(Family::kDeliveries, prefix, [&](absl::string_view key, absl::string_view) {
        std::optional<IndexEntry> e = ParseIndexRest(key.substr(prefix.size()));
        if (e.has_value()) pending.push_back(*std::move(e));
        return true;
      }));
  int64_t failed = 0;
  const absl::Time now = options_.now();
  for (size_t i = 0; i < pending.size(); i += 256) {
    store::WriteBatch batch;
    for (size_t j = i; j < std::min(pending.size(), i + 256); ++j) {
      PANTHERD_ASSIGN_OR_RETURN(std::optional<internal::DeliveryRecord> rec,
                                ReadRecord(pending[j].alert_id, pending[j].action, id));
      if (!rec.has_value() || rec->delivery().status() != v1::DELIVERY_STATUS_PENDING) continue;
      internal::DeliveryRecord after = *rec;
      after.mutable_delivery()->set_status(v1::DELIVERY_STATUS_FAILED);
      after.mutable_delivery()->clear_next_attempt_time();
      after.mutable_delivery()->set_last_error(
          absl::StrCat("the destination was removed at ", absl::FormatTime(now)));
      PutRecord(&*rec, after, batch);
      ++failed;
    }
    PANTHERD_RETURN_IF_ERROR(store_->Write(std::move(batch)));
  }
  CountersOf(id).failed += failed;
  logger().Write(base::LogLevel::kInfo, "destination removed",
                 {{"component", "delivery"},
                  {"destination", d.destination().name()},
                  {"id", id},
                  {"pending_failed", absl::StrCat(failed)}});
  return failed;
}

absl::StatusOr<v1::GetDestinationResponse> DeliveryManager::GetDestination(
    absl::string_view id_or_name) const {
  PANTHERD_ASSIGN_OR_RETURN(internal::StoredDestination d, registry_->Find(id_or_name));
  v1::GetDestinationResponse response;
  *response.mutable_destination() = DestinationRegistry::PublicView(d);
  for (const v1::DestinationMetrics& m : Metrics()) {
    if (m.id() != d.destination().id()) continue;
    v1::DestinationStats& s = *response.mutable_stats();
    s.set_pending(m.pending());
    s.set_delivered(m.delivered());
    s.set_failed(m.failed());
    s.set_retried(m.retried());
    if (m.pending() > 0) {
      const absl::Time oldest = options_.now() - absl::Seconds(m.oldest_pending_age().seconds()) -
                                absl::Nanoseconds(m.oldest_pending_age().nanos());
      *s.mutable_oldest_pending_time() = Ts(oldest);
    }
  }
  return response;
}

v1::ListDestinationsResponse DeliveryManager::ListDestinations() const {
  v1::ListDestinationsResponse response;
  for (const internal::StoredDestination& d : registry_->All()) {
    *response.add_destinations() = DestinationRegistry::PublicView(d);
  }
  for (const DestinationKind* kind : DestinationKinds()) {
    v1::DestinationKindInfo& info = *response.add_kinds();
    info.set_kind(kind->name);
    info.set_description(kind->description);
    info.set_resolves(kind->resolves);
    for (const DestinationFieldSpec& f : kind->fields) {
      v1::DestinationField& field = *info.add_fields();
      field.set_name(f.name);
      field.set_secret(f.secret);
      field.set_required(f.required);
      field.set_help(f.help);
    }
  }
  return response;
}

absl::StatusOr<v1::TestDestinationResponse> DeliveryManager::TestDestination(
    absl::string_view id_or_name) {
  PANTHERD_ASSIGN_OR_RETURN(internal::StoredDestination d, registry_->Find(id_or_name));
  const DestinationKind* kind = FindDestinationKind(d.destination().kind());
  if (kind == nullptr) {
    return absl::FailedPreconditionError(
        absl::StrCat("destination kind ", d.destination().kind(), " is not known to this server"));
  }
  const absl::Time now = options_.now();
  AlertMessage m;
  v1::Alert& a = m.alert;
  a.set_id(absl::StrCat(
      "test", IdempotencyKey(d.destination().id(), "", absl::FormatTime(now)).substr(0, 28)));
  a.set_type(v1::ALERT_TYPE_RULE);
  a.set_rule_id("pantherd.DestinationTest");
  a.set_rule_version(1);
  a.set_title(absl::StrCat("Test alert from pantherd for destination ", d.destination().name()));
  a.set_severity(v1::SEVERITY_INFO);
  a.set_dedup_string("test");
  a.set_status(v1::ALERT_STATUS_OPEN);
  a.set_event_count(1);
  a.add_log_types("Okta.SystemLog");
  a.set_alert_context_json(R"({"test":true})");
  a.set_description("This alert was sent by `pantherctl destinations test`; no rule matched.");
  *a.mutable_created_time() = Ts(now);
  *a.mutable_updated_time() = Ts(now);
  *a.mutable_first_event_time() = Ts(now);
  *a.mutable_last_event_time() = Ts(now);
  m.action = DeliveryAction::kTest;
  m.rule_name = "pantherd destination test";
  m.idempotency_key = IdempotencyKey(a.id(), d.destination().id(), "test");
  if (!options_.external_url.empty()) {
    std::string base = options_.external_url;
    while (!base.empty() && base.back() == '/') base.pop_back();
    m.link = absl::StrCat(base, "/alerts/", a.id());
  }
  const DestinationConfig config = DestinationRegistry::ConfigOf(d);
  v1::TestDestinationResponse response;
  absl::StatusOr<OutgoingRequest> request = kind->build(m, config);
  if (!request.ok()) {
    response.set_error(Scrub(std::string(request.status().message()), config, kMaxErrorBytes));
    return response;
  }
  HttpRequest http;
  http.url = request->url;
  http.headers = request->headers;
  http.timeout = options_.request_timeout;
  http.max_body_bytes = 1 << 20;
  const absl::Time start = absl::Now();
  absl::StatusOr<HttpResponse> answer = http_->Post(http, request->body, nullptr);
  response.set_latency_ms(absl::ToInt64Milliseconds(absl::Now() - start));
  if (!answer.ok()) {
    response.set_error(Scrub(std::string(answer.status().message()), config, kMaxErrorBytes));
    return response;
  }
  response.set_http_status(answer->status);
  response.set_response_body(Scrub(answer->body, config, kMaxTestBodyBytes));
  response.set_ok(answer->status >= 200 && answer->status < 300);
  if (!response.ok())
    response.set_error(absl::StrCat("the receiver answered HTTP ", answer->status));
  return response;
}

absl::StatusOr<std::vector<v1::AlertDelivery>> DeliveryManager::DeliveriesOf(
    absl::string_view alert_id) const {
  std::vector<v1::AlertDelivery> out;
  absl::Status parse;
  PANTHERD_RETURN_IF_ERROR(
      store_->Scan(Family::kDeliveries, RecordPrefixOf(alert_id),
                   [&](absl::string_view key, absl::string_view value) {
                     internal::DeliveryRecord rec;
                     if (!rec.ParseFromArray(value.data(), static_cast<int>(value.size()))) {
                       parse = absl::DataLossError(
                           absl::StrCat("delivery record ", absl::CEscape(key), " does not parse"));
                       return false;
                     }
                     out.push_back(rec.delivery());
                     return true;
                   }));
  PANTHERD_RETURN_IF_ERROR(parse);
  std::sort(out.begin(), out.end(), [](const v1::AlertDelivery& a, const v1::AlertDelivery& b) {
    // trigger before resolve, then by destination name
    if (a.action() != b.action()) return a.action() > b.action();
    return a.destination_name() < b.destination_name();
  });
  return out;
}

absl::StatusOr<std::vector<v1::AlertDelivery>> DeliveryManager::Resend(
    absl::string_view alert_id, absl::string_view destination) {
  if (alert_id.empty()) return absl::InvalidArgumentError("alert_id: is required");
  absl::StatusOr<v1::Alert> alert =
      store_->GetMessage<v1::Alert>(Family::kAlerts, std::string(alert_id));
  if (absl::IsNotFound(alert.status())) {
    return absl::NotFoundError(absl::StrCat("no alert with id ", absl::CEscape(alert_id)));
  }
  if (!alert.ok()) return alert.status();
  if (alert->type() == v1::ALERT_TYPE_SIGNAL) {
    return absl::FailedPreconditionError(
        absl::StrCat("alert ", alert_id, " is a signal; signals are never delivered"));
  }
  std::optional<internal::StoredDestination> only;
  if (!destination.empty()) {
    PANTHERD_ASSIGN_OR_RETURN(internal::StoredDestination d, registry_->Find(destination));
    only = std::move(d);
  }
  const absl::Time now = options_.now();
  std::set<std::string> wake;
  std::vector<std::pair<std::string, std::string>> touched;  // (action, destination id)
  {
    absl::MutexLock lock(&records_mu_);
    std::vector<internal::DeliveryRecord> records;
    PANTHERD_RETURN_IF_ERROR(
        store_->Scan(Family::kDeliveries, RecordPrefixOf(alert_id),
                     [&](absl::string_view, absl::string_view value) {
                       internal::DeliveryRecord rec;
                       if (rec.ParseFromArray(value.data(), static_cast<int>(value.size()))) {
                         records.push_back(std::move(rec));
                       }
                       return true;
                     }));
    store::WriteBatch batch;
    const std::vector<internal::StoredDestination> all = registry_->All();
    bool has_trigger_for_only = false;
    for (const internal::DeliveryRecord& rec : records) {
      const v1::AlertDelivery& d = rec.delivery();
      std::string dest_id = d.destination_id();
      std::optional<internal::StoredDestination> target = registry_->ById(dest_id);
      if (!target.has_value() && absl::StartsWith(dest_id, "?")) {
        // A name that matched nothing at routing time may exist now.
        const internal::StoredDestination* named = ResolveName(d.destination_name(), all);
        if (named != nullptr) target = *named;
      }
      if (only.has_value() &&
          (!target.has_value() || target->destination().id() != only->destination().id())) {
        continue;
      }
      if (!target.has_value()) continue;  // removed, or still unknown: nothing to send to
      if (d.action() == kTrigger) has_trigger_for_only = true;
      internal::DeliveryRecord after;
      const internal::DeliveryRecord* before = nullptr;
      if (target->destination().id() != dest_id) {
        // Re-routed from an unknown name: a new record for the real one.
        absl::StatusOr<std::optional<internal::DeliveryRecord>> existing =
            ReadRecord(alert_id, d.action(), target->destination().id());
        if (!existing.ok()) return existing.status();
        if (existing->has_value()) continue;  // handled through its own record
        after = rec;
        // The failed record of the unknown name is replaced by the new one.
        batch.Delete(Family::kDeliveries, RecordKey(alert_id, d.action(), dest_id));
        v1::AlertDelivery& n = *after.mutable_delivery();
        n.set_destination_id(target->destination().id());
        n.set_idempotency_key(IdempotencyKey(alert_id, target->destination().id(), d.action()));
        n.set_attempts(0);
      } else {
        before = &rec;
        after = rec;
      }
      v1::AlertDelivery& n = *after.mutable_delivery();
      n.set_destination_name(target->destination().name());
      n.set_kind(target->destination().kind());
      n.set_status(v1::DELIVERY_STATUS_PENDING);
      n.set_attempts(0);
      n.set_resends(n.resends() + 1);
      *n.mutable_next_attempt_time() = Ts(now);
      *after.mutable_pending_since() = Ts(now);
      PutRecord(before, after, batch);
      wake.insert(n.destination_id());
      touched.emplace_back(n.action(), n.destination_id());
    }
    // Nothing recorded yet for the trigger (the alert predates the
    // destination, or was suppressed): route it now.
    if (!has_trigger_for_only) {
      std::vector<Route> routes;
      if (only.has_value()) {
        Route r;
        r.destination_id = only->destination().id();
        r.destination_name = only->destination().name();
        r.kind = only->destination().kind();
        r.routed_by = "resend";
        routes.push_back(std::move(r));
      } else if (records.empty()) {
        std::optional<v1::Rule> rule;
        absl::StatusOr<v1::Rule> r = store_->GetMessage<v1::Rule>(
            Family::kRuleVersions, store::RuleVersionKey(alert->rule_id(), alert->rule_version()));
        if (r.ok()) rule = *std::move(r);
        routes = RouteAlert(*alert, rule ? &*rule : nullptr, all);
      }
      for (Route& r : routes) {
        if (!r.error.empty()) continue;
        absl::StatusOr<std::optional<internal::DeliveryRecord>> existing =
            ReadRecord(alert_id, kTrigger, r.destination_id);
        if (!existing.ok()) return existing.status();
        if (existing->has_value()) continue;
        r.routed_by = "resend";
        AddPending(*alert, r, kTrigger, now, batch);
        wake.insert(r.destination_id);
        touched.emplace_back(std::string(kTrigger), r.destination_id);
      }
    }
    if (touched.empty()) {
      return absl::FailedPreconditionError(
          absl::StrCat("alert ", alert_id, " has no delivery to re-send",
                       only.has_value() ? absl::StrCat(" to ", only->destination().name()) : "",
                       registry_->All().empty() ? " (no destinations are configured)" : ""));
    }
    PANTHERD_RETURN_IF_ERROR(store_->Write(std::move(batch)));
  }
  for (const std::string& id : wake) WakeLane(id);
  std::vector<v1::AlertDelivery> out;
  for (const auto& [action, dest_id] : touched) {
    PANTHERD_ASSIGN_OR_RETURN(std::optional<internal::DeliveryRecord> rec,
                              ReadRecord(alert_id, action, dest_id));
    if (rec.has_value()) out.push_back(rec->delivery());
  }
  return out;
}

std::vector<v1::DestinationMetrics> DeliveryManager::Metrics() const {
  std::vector<v1::DestinationMetrics> out;
  const absl::Time now = options_.now();
  for (const internal::StoredDestination& d : registry_->All()) {
    v1::DestinationMetrics& m = out.emplace_back();
    const std::string& id = d.destination().id();
    m.set_id(id);
    m.set_name(d.destination().name());
    m.set_kind(d.destination().kind());
    {
      absl::MutexLock lock(&counters_mu_);
      auto it = counters_.find(id);
      if (it != counters_.end()) {
        m.set_delivered(it->second->delivered.load());
        m.set_retried(it->second->retried.load());
        m.set_failed(it->second->failed.load());
      }
    }
    const std::string prefix = IndexPrefix(kPendingPrefix, id);
    absl::StatusOr<int64_t> count = store_->Count(Family::kDeliveries, prefix);
    if (count.ok()) m.set_pending(*count);
    std::optional<IndexEntry> oldest;
    (void)store_->Scan(Family::kDeliveries, prefix, [&](absl::string_view key, absl::string_view) {
      oldest = ParseIndexRest(key.substr(prefix.size()));
      return false;
    });
    if (oldest.has_value()) {
      const absl::Duration age =
          std::max(absl::ZeroDuration(), now - absl::FromUnixMicros(oldest->micros));
      m.mutable_oldest_pending_age()->set_seconds(absl::ToInt64Seconds(age));
      m.mutable_oldest_pending_age()->set_nanos(
          static_cast<int32_t>(absl::ToInt64Nanoseconds(age % absl::Seconds(1))));
    }
  }
  return out;
}

}  // namespace pantherd::server
