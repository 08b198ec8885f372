// File: engine/worker_host.h
//
// The worker side of pantherd's rule worker processes. Rule code is user code:
// it never runs inside pantherd (which holds RocksDB, the gRPC listener, API
// tokens and source secrets) but in worker processes that pantherd starts
// with engine/worker_pool.h and talks to over a socketpair with the messages
// of proto/pantherd/internal/worker.proto, framed by engine/ipc.h.
//
// A worker's main() is:
//
//   int main(int argc, char** argv) {
//     absl::StatusOr<WorkerConfig> config = ParseWorkerArgs(argc, argv);
//     if (!config.ok()) { fprintf(stderr, ...); return kWorkerExitUsage; }
//     if (absl::Status s = HardenWorkerProcess(*config); !s.ok()) {
//       fprintf(stderr, ...); return kWorkerExitHardening;
//     }
//     RemoteKv kv(config->channel_fd);     // backs the caching helpers
//     MyHandler handler(&kv, config->limits);  // e.g. the Python runtime
//     return RunWorkerLoop(config->channel_fd, handler, &kv);
//   }
//
// The worker is single-threaded from the protocol's point of view: it answers
// requests in order, one at a time; while handling one it may make KV calls,
// which pantherd answers before the request's final response.
#ifndef PANTHERD_ENGINE_WORKER_HOST_H_
#define PANTHERD_ENGINE_WORKER_HOST_H_

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "engine/kv.h"
#include "engine/kv_cache.h"
#include "pantherd/internal/worker.pb.h"
#include "pantherd/v1/rules.pb.h"

namespace pantherd::engine {

// Exit codes of a worker process; WorkerPool names them in its errors.
inline constexpr int kWorkerExitOk = 0;            // pantherd closed the channel
inline constexpr int kWorkerExitUsage = 64;        // bad command line
inline constexpr int kWorkerExitChannel = 65;      // protocol or channel error
inline constexpr int kWorkerExitHardening = 66;    // HardenWorkerProcess failed
inline constexpr int kWorkerExitOutOfMemory = 67;  // operator new failed (memory limit)
// A rule call ran kill_grace past its time limit, ignoring the interrupt;
// the worker ended itself (engine/python_worker.cc).
inline constexpr int kWorkerExitCallTimeLimit = 68;

// The descriptor on which a worker finds its end of the channel.
inline constexpr int kWorkerChannelFd = 3;

// Resource limits of a worker process, set by pantherd (WorkerPoolOptions)
// and passed to each worker on its command line.
struct WorkerLimits {
  // RLIMIT_AS (address space) in bytes; 0 means unlimited. An allocation
  // beyond it fails: CPython raises MemoryError (a rule error); a failing
  // C++ allocation ends the worker with kWorkerExitOutOfMemory.
  int64_t memory_bytes = int64_t{1} << 30;
  // Longest a single rule-function call may run. The handler (the Python
  // runtime) interrupts a call at this limit and records a rule error.
  // pantherd kills a worker whose request overruns its budget (see
  // WorkerPool) by more than kill_grace.
  absl::Duration call_time_limit = absl::Seconds(5);
  // Extra time pantherd grants past a request's budget before SIGKILL.
  absl::Duration kill_grace = absl::Seconds(2);
  // The user and group a worker started as root switches to (nobody and
  // nogroup on Debian), so it cannot read pantherd's data directory (mode
  // 0700). Ignored when pantherd does not run as root.
  uint32_t unprivileged_uid = 65534;
  uint32_t unprivileged_gid = 65534;
};

// What a worker learns from its command line.
struct WorkerConfig {
  int channel_fd = kWorkerChannelFd;
  // pantherd's pid; the worker exits at start if its parent is already gone.
  // 0 skips the check.
  pid_t parent_pid = 0;
  WorkerLimits limits;
  // Arguments not recognised as worker flags, in order (argv[0] excluded).
  std::vector<std::string> args;
};

// The flags WorkerPool appends to a worker's command line:
//   --pantherd-channel-fd=3 --pantherd-parent-pid=P --pantherd-memory-bytes=N
//   --pantherd-call-time-limit-ms=M --pantherd-kill-grace-ms=G
//   --pantherd-uid=U --pantherd-gid=G
std::vector<std::string> WorkerFlags(const WorkerLimits& limits, pid_t parent_pid);

// Parses the flags of WorkerFlags (any order, each optional; defaults are
// those of WorkerConfig). InvalidArgument for a malformed value.
absl::StatusOr<WorkerConfig> ParseWorkerArgs(int argc, const char* const* argv);

// When the process runs as root (euid 0): drops supplementary groups and
// switches real, effective and saved ids to limits.unprivileged_uid/gid.
// Otherwise does nothing. Internal naming the failed call.
[[nodiscard]] absl::Status DropPrivileges(const WorkerLimits& limits);

// Hardens the calling worker process; call it first thing in main(), before
// starting any thread or interpreter. In order:
//   - RLIMIT_CORE = 0 (no core files with rule data in them);
//   - RLIMIT_AS = limits.memory_bytes (soft and hard, so rule code cannot
//     raise it again);
//   - closes every descriptor except 0, 1, 2 and the channel;
//   - chdir("/");
//   - when running as root (euid 0): drops supplementary groups and switches
//     real, effective and saved ids to limits.unprivileged_uid/gid. Without
//     root this protection is NOT available: the worker keeps pantherd's user
//     and can read whatever pantherd can, the data directory included.
//     WorkerPool::Create logs a warning saying so;
//   - PR_SET_NO_NEW_PRIVS (no privilege gain through exec of setuid
//     binaries), PR_SET_DUMPABLE 0 (no ptrace or /proc/<pid>/mem access by
//     other processes of the same user, e.g. other workers), and
//     PR_SET_PDEATHSIG(SIGKILL) so the worker dies with pantherd (set after
//     the uid change, which would clear it); then exits early if
//     config.parent_pid is set and is no longer the parent;
//   - installs a new-handler that ends the process with
//     kWorkerExitOutOfMemory when operator new fails.
// Returns the first failure (InvalidArgument for a channel fd < 3,
// FailedPrecondition when the parent is gone, Internal naming the failed
// system call otherwise); the worker must then exit with
// kWorkerExitHardening.
[[nodiscard]] absl::Status HardenWorkerProcess(const WorkerConfig& config);

// What a worker does with each request. Implementations run on the worker's
// only protocol thread and are called one request at a time.
class WorkerHandler {
 public:
  virtual ~WorkerHandler() = default;

  // Compiles and holds `request.files` as the worker's rule set, replacing
  // any previous one. Problems with the content are diagnostics in the
  // result (a non-warning diagnostic means "not loaded"); an error status
  // means the request itself could not be carried out and is sent back as
  // WorkerResponse.error.
  virtual absl::StatusOr<internal::LoadResult> Load(const internal::LoadRuleSet& request) = 0;

  // Runs the unit tests of `task.rule_ids` (all rules when empty) of the
  // loaded set. Error status: e.g. FailedPrecondition when no set is loaded.
  virtual absl::StatusOr<v1::TestReport> RunTests(const internal::RunTestsTask& task) = 0;

  // Runs `task.events` against the enabled rules of the loaded set that
  // match each event's log type (see EvaluateTask in worker.proto). Rule
  // errors and failures of single events are data in the result; an error
  // status (e.g. FailedPrecondition when no set is loaded) fails the whole
  // request. The default answers Unimplemented, for handlers that do not
  // evaluate (test doubles).
  virtual absl::StatusOr<internal::EvaluateResult> Evaluate(
      const internal::EvaluateTask& /*task*/) {
    return absl::UnimplementedError("this worker does not evaluate events");
  }
};

// A KvBackend that forwards each call to pantherd over the worker channel
// and blocks until the matching KvReply arrives, so that rule code calling
// the caching helpers gets its answer synchronously. Calls are accepted only
// while RunWorkerLoop is handling a request (BeginRequest..EndRequest);
// otherwise FailedPrecondition. A reply with a non-empty `error` becomes an
// Internal error carrying that text. Any protocol violation (a message other
// than the matching kv_reply, a channel error) is returned as an error and
// marks the channel broken: RunWorkerLoop then exits with
// kWorkerExitChannel. Thread-safe: concurrent calls are serialised.
class RemoteKv : public KvBackend {
 public:
  // `fd` is the worker's channel; not owned.
  explicit RemoteKv(int fd) : fd_(fd) {}

  absl::StatusOr<internal::KvReply> Call(const internal::KvCall& call) override;

  // Called by RunWorkerLoop around each request: KV calls are tagged with
  // `request_id`. EndRequest waits for a call in flight to finish.
  void BeginRequest(uint64_t request_id);
  void EndRequest();
  // True once the channel is unusable.
  bool broken() const;

 private:
  const int fd_;
  mutable absl::Mutex mu_;
  bool active_ ABSL_GUARDED_BY(mu_) = false;
  bool broken_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t request_id_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t next_call_id_ ABSL_GUARDED_BY(mu_) = 1;
};

// Serves requests from `fd` until pantherd closes the channel: each load,
// run_tests or evaluate request goes to `handler` and its answer (or `error`) is sent
// back with the request's id, in order. `kv`, when given, must be the
// RemoteKv on the same fd. `cache`, when given, is the KvCache over `kv` that
// the handler's rule code uses (engine/kv_cache.h): each request's kv_sync
// is applied to it first, and its logged writes go back with the final
// response. Returns the
// process exit code: kWorkerExitOk on EOF, kWorkerExitChannel on a channel
// or protocol error (an unexpected kv_reply, a bad frame), after writing one
// line to stderr.
int RunWorkerLoop(int fd, WorkerHandler& handler, RemoteKv* kv = nullptr,
                  KvCache* cache = nullptr);

}  // namespace pantherd::engine

#endif  // PANTHERD_ENGINE_WORKER_HOST_H_
