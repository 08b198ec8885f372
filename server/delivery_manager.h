// The delivery manager: takes the alert engine's outbox (engine/delivery_outbox.h)
// to every destination an alert is routed to, at least once, surviving
// crashes, restarts and receivers that are down for a while.
//
// How (docs/destinations.md has the user's view):
//   - A router thread reads outbox intents in sequence order, routes each
//     (RouteAlert below) and, in one store write, creates one
//     DeliveryRecord per (alert, action, destination) and deletes the
//     intent. A crash before that write leaves the intent to be routed again;
//     after it, the records are durable.
//   - One lane thread per destination sends its due deliveries in due order,
//     one at a time, with the kind's request (server/destination_kind.h) over
//     the HTTP client, and records the outcome in one write per attempt:
//     2xx delivered; 408, 429 (its Retry-After honoured), 5xx, timeouts and
//     broken connections retried with exponential backoff and jitter until
//     max_attempts; other answers fail at once. A slow or dead receiver only
//     holds its own lane: ingestion never waits for delivery (it only writes
//     the outbox), nor do other destinations or StreamAlerts.
//   - What is queued lives in the store ("q" and "p" indexes of the
//     deliveries family, docs/storage.md); a lane holds one delivery in
//     memory at a time, so queues are bounded by the disk, not by memory.
//   - Every request of one delivery carries the same idempotency key, across
//     retries, restarts and resends; a crash between a receiver's 2xx and the
//     write recording it makes the delivery happen again with that key.
//
// Thread-safety: every public method may be called from any thread.
// Record read-modify-writes serialise on one mutex (never held during an
// HTTP request). Blocking (disk, and HTTP for TestDestination): call from
// executor threads, never gRPC callback threads.
#ifndef PANTHERD_SERVER_DELIVERY_MANAGER_H_
#define PANTHERD_SERVER_DELIVERY_MANAGER_H_

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "pantherd/internal/delivery.pb.h"
#include "pantherd/v1/admin_service.pb.h"
#include "pantherd/v1/alerts.pb.h"
#include "pantherd/v1/destinations.pb.h"
#include "pantherd/v1/rules.pb.h"
#include "proto/base/clock.h"
#include "proto/base/log.h"
#include "server/destination_kind.h"
#include "server/destination_registry.h"
#include "server/http_client.h"
#include "store/store.h"

namespace pantherd::server {

struct DeliveryOptions {
  // Attempts per delivery before it is marked failed (--delivery-attempts).
  int max_attempts = 10;
  // Backoff: the n-th retry waits min(retry_max, retry_base * 3^(n-1)),
  // times a random factor in [0.75, 1.25). With the defaults, 10 attempts
  // span about 21 hours (Panther retries for about a day).
  absl::Duration retry_base = absl::Seconds(30);
  absl::Duration retry_max = absl::Hours(6);
  // A 429's Retry-After is honoured up to this (longer values are cut).
  absl::Duration max_retry_after = absl::Hours(6);
  // Each request must finish within this (--delivery-timeout).
  absl::Duration request_timeout = absl::Seconds(10);
  // How often the router and idle lanes look at the store without being
  // woken (they are woken when intents or deliveries are added).
  absl::Duration poll_interval = absl::Seconds(1);
  // The base of every payload's `link` (--external-url); empty: no link.
  std::string external_url;
  base::Clock now = base::RealClock();
  // Null: base::DefaultLogger().
  base::Logger* logger = nullptr;
};

// Where one alert goes, as decided by RouteAlert.
struct Route {
  // The destination's id; for a name that matches none, "?<name>".
  std::string destination_id;
  std::string destination_name;
  std::string kind;
  // "destinations()", "OutputIds" or "filters".
  std::string routed_by;
  // Set for a name that matches no destination: the record is FAILED with it.
  std::string error;
};

// Panther's routing order for a new alert (signals never route):
//   1. the rule's destinations() result when it defined one: names or ids;
//      an empty list or "SKIP" suppresses delivery;
//   2. else the rule version's OutputIds (`rule`, may be null), same rules;
//   3. else every destination whose filters accept the alert.
// Named destinations (1, 2) skip the severity, log type and rule filters but
// keep the alert-type filter. A name that matches no destination gives a
// Route with `error`. Routes are unique per destination, in destination name
// order. Pure.
std::vector<Route> RouteAlert(const v1::Alert& alert, const v1::Rule* rule,
                              const std::vector<internal::StoredDestination>& destinations);

// Whether `filters` accept `alert` (routing step 3).
bool FiltersAccept(const v1::DestinationFilters& filters, const v1::Alert& alert);

// The stable idempotency key of one delivery: 32 hex digits of SHA-256 over
// (alert id, destination id, action).
std::string IdempotencyKey(absl::string_view alert_id, absl::string_view destination_id,
                           absl::string_view action);

// The wait before the attempt after failed attempt number `attempt` (from 1),
// without jitter.
absl::Duration BackoffDelay(const DeliveryOptions& options, int attempt);

// Seconds or an HTTP date in a Retry-After value, relative to `now`; nullopt
// when absent or malformed. Never negative.
std::optional<absl::Duration> ParseRetryAfter(absl::string_view value, absl::Time now);

class DeliveryManager {
 public:
  // None of the pointers is owned; all must outlive the manager.
  DeliveryManager(store::Store* store, DestinationRegistry* registry, HttpClient* http,
                  DeliveryOptions options);
  // Stops (see Stop).
  ~DeliveryManager();

  DeliveryManager(const DeliveryManager&) = delete;
  DeliveryManager& operator=(const DeliveryManager&) = delete;

  // Starts the router and one lane per destination. The registry must be
  // loaded. Pending deliveries left by an earlier run are picked up.
  absl::Status Start() ABSL_LOCKS_EXCLUDED(lanes_mu_);
  // Stops every thread; an HTTP request in flight is cancelled (within
  // 100 ms) and not counted as an attempt. Idempotent.
  void Stop() ABSL_LOCKS_EXCLUDED(lanes_mu_);
  // New outbox intents may be waiting (the alert engine committed changes).
  void Wake() ABSL_LOCKS_EXCLUDED(lanes_mu_);

  // ---- The RPCs' backends ---------------------------------------------------
  // As DestinationRegistry::Add/Update, plus starting the lane.
  absl::StatusOr<v1::Destination> AddDestination(const v1::AddDestinationRequest& request,
                                                 absl::string_view actor);
  absl::StatusOr<v1::Destination> UpdateDestination(const v1::UpdateDestinationRequest& request);
  // Removes it, stops its lane and marks its pending deliveries FAILED
  // ("destination removed"); returns how many. NotFound for an unknown one.
  absl::StatusOr<int64_t> RemoveDestination(absl::string_view id_or_name);
  absl::StatusOr<v1::GetDestinationResponse> GetDestination(absl::string_view id_or_name) const;
  v1::ListDestinationsResponse ListDestinations() const;
  // Sends a sample alert (action "test", a fresh idempotency key) and
  // reports the answer. NotFound for an unknown destination; transport
  // failures are reported in the response, not as errors.
  absl::StatusOr<v1::TestDestinationResponse> TestDestination(absl::string_view id_or_name);
  // Makes the alert's deliveries (all, or those to one destination) pending
  // again, due now, with a fresh attempt budget. An alert with no delivery
  // record yet (created before its destinations existed) is routed now.
  // NotFound for an unknown alert or destination.
  absl::StatusOr<std::vector<v1::AlertDelivery>> Resend(absl::string_view alert_id,
                                                        absl::string_view destination);
  // The alert's deliveries, by action then destination name.
  absl::StatusOr<std::vector<v1::AlertDelivery>> DeliveriesOf(absl::string_view alert_id) const;
  // Figures per destination, ordered by name.
  std::vector<v1::DestinationMetrics> Metrics() const;

  // Routes up to `limit` outbox intents now (the router's step; for tests).
  // Returns how many were routed.
  absl::StatusOr<int> RouteOutbox(int limit) ABSL_LOCKS_EXCLUDED(records_mu_);

 private:
  struct Lane;
  struct Counters {
    std::atomic<int64_t> delivered{0};
    std::atomic<int64_t> retried{0};
    std::atomic<int64_t> failed{0};
  };
  enum class Outcome { kDelivered, kRetry, kFailed, kCancelled };

  void RouterLoop();
  void LaneLoop(Lane* lane);
  // Attempts the lane's due deliveries; returns when the next is due
  // (InfiniteFuture when none).
  absl::Time ProcessDue(Lane* lane);
  void Attempt(Lane* lane, const std::string& alert_id, const std::string& action);
  void StartLane(const std::string& destination_id) ABSL_LOCKS_EXCLUDED(lanes_mu_);
  void StopLane(const std::string& destination_id) ABSL_LOCKS_EXCLUDED(lanes_mu_);
  void WakeLane(const std::string& destination_id) ABSL_LOCKS_EXCLUDED(lanes_mu_);
  absl::Status RouteIntent(absl::string_view key, const internal::DeliveryIntent& intent)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(records_mu_);
  // Adds a new pending record (and its index keys) for `route` to `batch`.
  void AddPending(const v1::Alert& alert, const Route& route, absl::string_view action,
                  absl::Time now, store::WriteBatch& batch);
  // Writes `record` over its former state `before` (index keys moved).
  void PutRecord(const internal::DeliveryRecord* before, const internal::DeliveryRecord& record,
                 store::WriteBatch& batch);
  absl::StatusOr<std::optional<internal::DeliveryRecord>> ReadRecord(absl::string_view alert_id,
                                                                     absl::string_view action,
                                                                     absl::string_view dest) const;
  absl::StatusOr<AlertMessage> MessageFor(const v1::Alert& alert, DeliveryAction action,
                                          absl::string_view idempotency_key, int attempt) const;
  Counters& CountersOf(const std::string& destination_id) ABSL_LOCKS_EXCLUDED(counters_mu_);
  double Jitter() ABSL_LOCKS_EXCLUDED(rng_mu_);
  base::Logger& logger() const;

  store::Store* const store_;
  DestinationRegistry* const registry_;
  HttpClient* const http_;
  const DeliveryOptions options_;

  // Serialises every read-modify-write of delivery records.
  mutable absl::Mutex records_mu_;

  absl::Mutex lanes_mu_;
  std::map<std::string, std::unique_ptr<Lane>> lanes_ ABSL_GUARDED_BY(lanes_mu_);
  bool started_ ABSL_GUARDED_BY(lanes_mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(lanes_mu_) = false;
  bool router_wake_ ABSL_GUARDED_BY(lanes_mu_) = false;
  std::thread router_;

  mutable absl::Mutex counters_mu_;
  std::map<std::string, std::unique_ptr<Counters>> counters_ ABSL_GUARDED_BY(counters_mu_);

  absl::Mutex rng_mu_;
  std::mt19937_64 rng_ ABSL_GUARDED_BY(rng_mu_);
};

}  // namespace pantherd::server

#endif  // PANTHERD_SERVER_DELIVERY_MANAGER_H_
