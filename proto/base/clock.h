// File: proto/base/clock.h
//
// The clock every component that reads time takes, so that tests (and
// pantherd's `--test-clock-file`) can move time: a function returning the
// current time. Components default to RealClock() and document which time
// they mean (event time never comes from a Clock; it comes from events).
//
//   explicit AlertHub(AlertHubOptions options);   // options.now = base::RealClock()
//
// A Clock must be safe to call from any thread.
#ifndef PANTHERD_BASE_CLOCK_H_
#define PANTHERD_BASE_CLOCK_H_

#include <functional>

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace pantherd::base {

using Clock = std::function<absl::Time()>;

// The wall clock (absl::Now).
inline Clock RealClock() { return absl::Now; }

}  // namespace pantherd::base

#endif  // PANTHERD_BASE_CLOCK_H_
