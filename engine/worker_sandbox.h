// File: engine/worker_sandbox.h
//
// The confinement of a rule worker process (docs/security.md, "Rule
// workers"). Rule code is hostile by assumption: it may fork, signal other
// processes, read their /proc entries, open network connections, stop
// itself, or catch the time-limit exception. ConfineWorker turns the process
// pantherd started into a small tree in which it can do none of that:
//
//   pantherd
//    └ W  the process pantherd started: a watchdog outside the namespaces.
//         It kills the tree when a rule call runs past its deadline plus the
//         grace (also when the Python process is stopped), and exits with
//         the Python process's status, so pantherd sees one process.
//       └ I  pid 1 of a new pid namespace (with new network, mount, IPC and
//            UTS namespaces and its own /proc): reaps, reports P's end to W.
//            When I ends, the kernel kills everything left in the namespace.
//          └ P  the Python process: the only one that returns from
//               ConfineWorker. It cannot create processes (a seccomp filter
//               refuses fork, vfork and clone without CLONE_THREAD), sees
//               only I and itself in /proc, has no network but the channel
//               socketpair pantherd passed, and cannot signal W or pantherd.
//
// pantherd kills W's process group; W's death kills I (parent-death signal),
// and I's death ends the namespace. Nothing rule code starts outlives its
// worker.
//
// Namespaces need root (or unprivileged user namespaces, tried when pantherd
// is not root). When they are refused, the tree is W and P only: the
// watchdog and the seccomp filter still hold, the pid, network and /proc
// isolation do not; ConfineWorker reports what holds in Confinement and on
// stderr.
#ifndef PANTHERD_ENGINE_WORKER_SANDBOX_H_
#define PANTHERD_ENGINE_WORKER_SANDBOX_H_

#include <atomic>
#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "engine/worker_host.h"

namespace pantherd::engine {

// A page shared by W, I and P (MAP_SHARED, created before the forks).
struct WorkerWatch {
  // The deadline of the rule call in progress in P, Unix nanoseconds;
  // INT64_MAX between calls. Written by P's runtime (PythonRuntime's
  // deadline mirror), read by W.
  std::atomic<int64_t> call_deadline_ns{INT64_MAX};
  // P's wait status, set by I when P has ended (python_ended then 1).
  std::atomic<int32_t> python_wait_status{0};
  std::atomic<int32_t> python_ended{0};
};

// What ConfineWorker could set up.
struct Confinement {
  WorkerWatch* watch = nullptr;  // shared page; lives as long as the process
  bool namespaces = false;       // pid, network, mount, IPC and UTS
  bool own_proc = false;         // /proc shows only the namespace's processes
  bool no_new_processes = false;  // the seccomp filter is installed
  // Why something is missing ("" when everything holds).
  std::string missing;
};

// Confines the calling worker process as described above; call it first
// thing in main(), before any thread or interpreter starts, instead of
// HardenWorkerProcess (which it calls in P). Returns only in P. W and I never
// return: they end with _exit (W with P's exit code, re-raising P's fatal
// signal, or kWorkerExitCallTimeLimit when its watchdog fired). Errors (in P
// or before the fork): those of HardenWorkerProcess, or Internal naming a
// failed system call; the caller must exit with kWorkerExitHardening.
// `grace`: how long past a call's deadline W waits before killing; it should
// exceed the in-process limit's grace so that the cheaper path acts first.
absl::StatusOr<Confinement> ConfineWorker(const WorkerConfig& config, absl::Duration grace);

// Installs the seccomp filter that refuses process creation (fork, vfork,
// clone without CLONE_THREAD: EPERM; clone3: ENOSYS, so that thread creation
// falls back to clone) and the namespace and tracing calls (unshare, setns,
// mount, ptrace: EPERM). Requires PR_SET_NO_NEW_PRIVS. Unimplemented on
// architectures other than x86-64 and AArch64; Internal when the kernel
// refuses the filter.
absl::Status InstallNoNewProcessesFilter();

}  // namespace pantherd::engine

#endif  // PANTHERD_ENGINE_WORKER_SANDBOX_H_
