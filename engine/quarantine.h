// Rule quarantine: counting the "poison" failures of each rule and deciding
// when a rule is quarantined (disabled by pantherd itself).
//
// A poison failure is an event on which a rule ended its worker process
// (crash, memory limit, time limit ignored, channel protocol broken), found
// by IngestPipeline when it narrows a failing batch down to the event and
// rule responsible. Each one is a RULE_ERROR alert already; a rule that does
// it repeatedly would make every later batch pay for the narrowing again, so
// after `policy.failures` of them within `policy.window` the rule is
// quarantined: disabled with the reason recorded (RuleStore::Quarantine),
// until someone re-enables it (`pantherctl rules enable ID`). See
// docs/reliability.md.
//
//   PoisonTracker tracker(QuarantinePolicy{});
//   if (tracker.Record("Okta.X", absl::Now()) >= tracker.policy().failures) { /* quarantine */ }
//
// Counts live in memory: a restart forgets them (a rule already quarantined
// stays so, that is stored). Thread-safe.
#ifndef PANTHERD_ENGINE_QUARANTINE_H_
#define PANTHERD_ENGINE_QUARANTINE_H_

#include <deque>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace pantherd::engine {

struct QuarantinePolicy {
  // Poison failures of one rule within `window` that quarantine it; 0 never
  // quarantines.
  int failures = 3;
  absl::Duration window = absl::Hours(1);
};

class PoisonTracker {
 public:
  explicit PoisonTracker(QuarantinePolicy policy = {}) : policy_(policy) {}

  // Records a poison failure of `rule_id` at `now` and returns how many the
  // rule has within the policy's window ending at `now`, this one included.
  // The caller quarantines the rule when the count reaches
  // policy().failures (and then calls Forget). Thread-safe.
  int Record(absl::string_view rule_id, absl::Time now) ABSL_LOCKS_EXCLUDED(mu_);

  // Whether `count` (a Record result) quarantines the rule.
  bool Quarantines(int count) const { return policy_.failures > 0 && count >= policy_.failures; }

  // Drops the failures recorded for `rule_id` (after quarantining it, so
  // that a re-enabled rule starts from zero). Thread-safe.
  void Forget(absl::string_view rule_id) ABSL_LOCKS_EXCLUDED(mu_);

  const QuarantinePolicy& policy() const { return policy_; }

 private:
  const QuarantinePolicy policy_;
  absl::Mutex mu_;
  // Failure times of each rule within the window, oldest first.
  absl::flat_hash_map<std::string, std::deque<absl::Time>> failures_ ABSL_GUARDED_BY(mu_);
};

}  // namespace pantherd::engine

#endif  // PANTHERD_ENGINE_QUARANTINE_H_
