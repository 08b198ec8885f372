// File: engine/worker_process.h
//
// The process side of pantherd's rule workers, internal to the worker pool
// (engine/worker_pool.cc): starting a worker process with posix_spawn, the
// list of processes started and not reaped yet (which the pool's KillSwitch
// signals), reaping, and describing how a worker ended. What is said over a
// worker's channel, and which worker serves which request, is the pool's
// business; this module knows processes and their exit statuses only.
//
// Internal to pantherd_engine: include only from engine/worker_pool*.cc.
#ifndef PANTHERD_ENGINE_WORKER_PROCESS_H_
#define PANTHERD_ENGINE_WORKER_PROCESS_H_

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "engine/worker_host.h"
#include "engine/worker_output.h"

namespace pantherd::engine {

// The worker processes started and not reaped yet. A pid leaves the list in
// the same critical section as it is reaped, so a pid in the list is always
// still ours (at worst a zombie) and may be signalled safely. Thread-safe.
struct WorkerProcessList {
  absl::Mutex mu;
  absl::flat_hash_set<pid_t> pids ABSL_GUARDED_BY(mu);
  bool killed ABSL_GUARDED_BY(mu) = false;  // KillWorkerProcesses ran: start nothing more
};

// SIGKILLs the process group (and the process) of every pid in `processes`
// and makes every later SpawnWorkerProcess with this list fail. Returns the
// number of groups signalled. Thread-safe; never blocks but on the list's
// mutex, so it may run from a shutdown watchdog at any time.
int KillWorkerProcesses(WorkerProcessList& processes);

// One worker process and pantherd's end of its channel. Used by one thread at
// a time (whoever holds it); the destructor is the safety net that kills and
// reaps a process nobody reaped. Not thread-safe.
struct WorkerProcess {
  pid_t pid = -1;
  int fd = -1;  // pantherd's end of the channel; -1 once closed
  bool reaped = false;
  int wait_status = 0;  // valid once reaped
  std::shared_ptr<WorkerProcessList> processes;

  WorkerProcess() = default;
  WorkerProcess(const WorkerProcess&) = delete;
  WorkerProcess& operator=(const WorkerProcess&) = delete;
  // Closes the channel; SIGKILLs and reaps the process unless reaped.
  ~WorkerProcess();

  // Closes pantherd's end of the channel (the worker reads EOF). Idempotent.
  void CloseChannel();
  // Non-blocking; true once the process has been reaped (or cannot be).
  bool TryReap();
  // Waits for the exit (polling, so that the list's lock is never held
  // while blocked); callers have killed the process or closed its channel.
  void ReapBlocking();
  // Waits until the process exits or `deadline` passes; true if reaped.
  bool ReapUntil(absl::Time deadline);
};

// Starts `binary` with `args` and then WorkerFlags(limits, pantherd's pid) on
// its command line and `env` as its whole environment: stdin /dev/null,
// stdout and stderr into `output` (null: /dev/null), the channel (one end of
// a socketpair) on kWorkerChannelFd, its own process group, default signal
// dispositions and an empty signal mask. On success fills `process` (pid,
// the non-blocking parent end of the channel, `processes`) and lists the pid
// in `processes` in the same critical section as it starts. Errors:
// Unavailable when a descriptor cannot be made, the spawn fails, or
// KillWorkerProcesses already ran on `processes`. Call it from the one
// thread that is to be every worker's parent (PR_SET_PDEATHSIG).
absl::Status SpawnWorkerProcess(const std::string& binary, const std::vector<std::string>& args,
                                const std::vector<std::string>& env, const WorkerLimits& limits,
                                WorkerOutput* output,
                                const std::shared_ptr<WorkerProcessList>& processes,
                                WorkerProcess* process);

// How a request to a worker ended when it did not end with a response.
struct WorkerEnd {
  enum Kind { kCrash, kOutOfMemory, kTimeout, kProtocol } kind;
  std::string description;  // e.g. "worker crashed (signal SIGSEGV)"
};

// Ends `process` after a request to it failed with `status`, and says how it
// ended: DeadlineExceeded (the request overran `budget`) kills it (kTimeout);
// Unavailable (the channel closed) waits up to limits.kill_grace for the
// exit, killing it then, and describes the exit status (a signal, running
// out of limits.memory_bytes, a call past limits.call_time_limit, a failed
// hardening); any other error is a protocol error and kills it. Always
// reaps the process before returning. Not thread-safe for one process.
WorkerEnd EndFailedWorkerProcess(WorkerProcess& process, const absl::Status& status,
                                 absl::Duration budget, const WorkerLimits& limits);

}  // namespace pantherd::engine

#endif  // PANTHERD_ENGINE_WORKER_PROCESS_H_
