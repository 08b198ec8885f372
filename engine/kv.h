// The key-value space behind Panther's caching helpers
// (`panther_detection_helpers.caching`: string sets, counters, dictionaries,
// each with an optional expiry).
//
// Rules call the helpers inside a worker process, where a KvCache
// (engine/kv_cache.h) answers them, asking pantherd (a KvCall on the worker
// channel, answered from a KvBackend) only for items it does not hold. The
// same interface serves in-process tests with an in-memory backend.
#ifndef PANTHERD_ENGINE_KV_H_
#define PANTHERD_ENGINE_KV_H_

#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "pantherd/internal/worker.pb.h"

namespace pantherd::engine {

class KvBackend {
 public:
  virtual ~KvBackend() = default;

  // Performs one operation and returns its result: for string-set reads the
  // set's members (sorted), for counters the value after the operation, for
  // dictionaries the JSON text ("{}" when absent). An expired entry reads as
  // absent. Errors (an unknown op, a store failure) are raised in the rule
  // as exceptions. Implementations document their thread-safety.
  virtual absl::StatusOr<internal::KvReply> Call(const internal::KvCall& call) = 0;

  // The time (seconds since the epoch) the caching helpers compute relative
  // expiries from (`epoch_seconds` below 1e9, and the 90-day default): the
  // time this backend compares expiries with. The default is the real clock;
  // a worker's cache answers with the time of the event being evaluated
  // (KvCache::SetEventClock).
  virtual int64_t NowSeconds() { return absl::ToUnixSeconds(absl::Now()); }

  // Every stored item (key and encoded item, engine/kv_item.h), expired ones
  // included, for a worker's cache to start from (engine/kv_cache.h).
  // Errors: ResourceExhausted when more than `max_items` are stored;
  // Unimplemented for backends that cannot list their items (the default).
  virtual absl::Status Snapshot(size_t max_items,
                                std::vector<std::pair<std::string, std::string>>* items) {
    (void)max_items;
    (void)items;
    return absl::UnimplementedError("this key-value backend cannot list its items");
  }
};

}  // namespace pantherd::engine

#endif  // PANTHERD_ENGINE_KV_H_
