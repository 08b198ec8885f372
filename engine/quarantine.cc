#include "engine/quarantine.h"

namespace pantherd::engine {

int PoisonTracker::Record(absl::string_view rule_id, absl::Time now) {
  absl::MutexLock lock(&mu_);
  std::deque<absl::Time>& times = failures_[rule_id];
  times.push_back(now);
  while (!times.empty() && times.front() <= now - policy_.window) times.pop_front();
  // Bounded: more than `failures` entries are never needed.
  while (policy_.failures > 0 && times.size() > static_cast<size_t>(policy_.failures)) {
    times.pop_front();
  }
  return static_cast<int>(times.size());
}

void PoisonTracker::Forget(absl::string_view rule_id) {
  absl::MutexLock lock(&mu_);
  failures_.erase(rule_id);
}

}  // namespace pantherd::engine
