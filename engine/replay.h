// Replays (backtests, ReplayRules): rules run over stored events the way
// live ingestion runs them, in isolation.
//
// A replay evaluates the stored events of one log type in [since, until), in
// event-time order and in batches, with the live evaluation code (a worker's
// EvaluateTask, RunMode::kLive, each event's p_event_time as the caching
// helpers' clock) in an isolated worker of its own
// (WorkerPool::StartIsolated): a private caching space that starts empty,
// never the live one. Matches become windows and alerts in a scratch store of
// the replay's own (an AlertEngine with event-time windows, nothing
// notified), removed at the end, so a replay groups exactly as live traffic
// did and changes no live alert, window, caching item or rule.
//
//   ReplayOptions options;
//   options.events = store; options.pool = pool; options.scratch_dir = dir; ...
//   PANTHERD_ASSIGN_OR_RETURN(v1::ReplayRulesResponse result,
//                             RunReplay(set, options, [&](const v1::ReplayProgress& p) {
//                               return SendToClient(p);  // false stops the replay
//                             }));
//
// Priority. The replay's worker, and pantherd's side of the replay (a thread
// of its own that reads the events and runs the scratch store; the caller's
// thread waits for it), run at a lower scheduling priority
// (ReplayOptions::nice) than the live workers and pantherd, so on a busy
// machine the kernel gives them only the CPU that live ingestion leaves: at
// nice 10 a replay competing with live work for one core gets about a tenth
// of it. Its worker has a slot of its own (WorkerPoolOptions::
// max_isolated_sessions), never a live worker's or a test run's.
//
// Failures. A batch that ends the replay's worker (a crash, the memory
// limit, a call ignoring its time limit) is narrowed down as live ingestion
// does: event by event, then rule by rule; the rule that ended the worker
// gets a rule error on that event (a RULE_ERROR alert in the result). A rule
// that does this on kReplayFailureLimit events is left out of the rest of the
// replay (named in `invalid`). Each failure restarts the worker, whose
// caching space then starts empty again (worker_restarts).
//
// Thread-safety: RunReplay blocks its caller (worker I/O, store reads) and
// may run on any thread that may block; replays may run concurrently.
#ifndef PANTHERD_ENGINE_REPLAY_H_
#define PANTHERD_ENGINE_REPLAY_H_

#include <atomic>
#include <functional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "engine/rule_set_manager.h"
#include "engine/worker_pool.h"
#include "pantherd/v1/events.pb.h"
#include "proto/base/clock.h"
#include "store/store.h"

namespace pantherd::engine {

// A rule that ends the replay's worker on this many events is dropped.
inline constexpr int kReplayFailureLimit = 5;
// The most alerts a replay's answer lists (alerts_total counts them all).
inline constexpr int kReplayMaxListedAlerts = 1000;

struct ReplayOptions {
  // Where the stored events are (engine/event_store.h). Not owned.
  const store::Store* events = nullptr;
  // Starts the replay's isolated worker. Not owned.
  WorkerPool* pool = nullptr;
  // A directory for the scratch store; it must not exist. Removed at the end,
  // whatever happens (a crash of pantherd leaves it: the server removes
  // leftovers at start).
  std::string scratch_dir;
  std::string log_type;
  absl::Time since = absl::InfinitePast();
  absl::Time until = absl::InfiniteFuture();
  // The scratch alert engine's server clock (alert creation times).
  base::Clock now = base::RealClock();
  // Events per EvaluateTask.
  int batch_events = 500;
  // Scheduling niceness of the replay's worker and thread (0 to 19).
  int nice = 10;
  // How often progress is reported (after the batch that crosses it).
  absl::Duration progress_interval = absl::Seconds(1);
  // When it becomes true, the replay stops after its current batch with
  // Cancelled. May be null.
  const std::atomic<bool>* cancelled = nullptr;
};

// Called with the progress about every progress_interval; returning false
// stops the replay (Cancelled), e.g. when the client went away.
using ReplayProgressFn = std::function<bool(const v1::ReplayProgress&)>;

// Replays `set` (RuleSetManager::PrepareReplay) over the stored events of
// options.log_type in [since, until) and returns the result: the alerts the
// rules would have produced (newest first, at most kReplayMaxListedAlerts),
// per-rule figures, events and events/s, load problems of the set, worker
// restarts. Errors: InvalidArgument for an empty range or missing options;
// Cancelled (see above); ResourceExhausted or Unavailable when no worker
// could be started (too many test runs and replays at once, shutdown);
// those of the store; FailedPrecondition when the worker refused a task.
absl::StatusOr<v1::ReplayRulesResponse> RunReplay(const RuleSetManager::ReplaySet& set,
                                                  const ReplayOptions& options,
                                                  const ReplayProgressFn& progress);

}  // namespace pantherd::engine

#endif  // PANTHERD_ENGINE_REPLAY_H_
