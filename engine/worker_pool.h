// File: engine/worker_pool.h
//
// pantherd's side of the rule worker processes (see engine/worker_host.h for
// the worker side and proto/pantherd/internal/worker.proto for the protocol).
// Rule code is user code and never runs in pantherd: a WorkerPool starts
// worker processes, sends them rule sets and test runs, answers their
// key-value calls from a KvBackend, and survives whatever the rule code does
// to its worker (abort, segfault, running out of memory, looping forever).
//
//   WorkerPoolOptions options;
//   options.worker_binary = "/usr/lib/pantherd/pantherd-worker";
//   options.kv = &kv;  // e.g. a StoreKvBackend
//   PANTHERD_ASSIGN_OR_RETURN(std::unique_ptr<WorkerPool> pool, WorkerPool::Create(options));
//   // Test content without keeping any state (a fresh worker per call):
//   PANTHERD_ASSIGN_OR_RETURN(v1::TestReport report, pool->RunTestsIsolated(files, task));
//   // Make a set live in every worker, atomically:
//   PANTHERD_ASSIGN_OR_RETURN(internal::LoadResult loaded, pool->LoadLive(files, version));
//   if (HasLoadErrors(loaded)) { /* old set still live; loaded.diagnostics says why */ }
//
// Processes. Workers are started with posix_spawn from one pool-owned thread
// (PR_SET_PDEATHSIG fires when the *thread* that started a process exits, so
// no caller thread may be the parent), with: stdin /dev/null; stdout and
// stderr on pantherd's stderr (or /dev/null, see options), so stray prints
// and worker diagnostics reach pantherd's log; the channel on fd 3 (a
// socketpair; every other pantherd descriptor is close-on-exec, and the
// worker closes any leftover itself); a minimal environment (no pantherd
// secrets); their own process group (a terminal's Ctrl-C reaches pantherd
// only); default signal dispositions and an empty signal mask. Each worker
// then hardens itself (HardenWorkerProcess: memory limit, no core files,
// cwd "/", unprivileged uid when pantherd is root, death with pantherd).
//
// Two kinds of worker:
//   - One-shot workers (RunTestsIsolated) load a set, run its tests and exit:
//     no state leaks from one test run into another.
//   - Live workers form the current *generation*: `workers` processes that all
//     hold the same rule-set version. LoadLive builds a complete new
//     generation and switches to it only when every worker loaded the set;
//     then the old workers finish what they are doing, get EOF and exit.
//     DispatchLive sends a request to an idle worker of the current
//     generation; evaluation of events will use it. A live worker that dies
//     (while busy or idle) is replaced by a new one loaded with the same set.
//   - Isolated sessions (StartIsolated, for replays) are one-shot workers
//     kept for a series of evaluations, with a private key-value space, at
//     a lower scheduling priority, on slots of their own.
//
// Failures and time limits. A request's budget is
//   limits.call_time_limit × (number of calls it implies) + limits.kill_grace
// where a load implies one call per Python file (at least 1) and the tests of
// one rule imply `calls_per_rule_tests` calls (the tests of the whole set:
// that many per loaded rule). The worker interrupts an individual call at
// call_time_limit itself; when a request overruns its budget anyway, pantherd
// SIGKILLs the worker and reports a timeout. A worker that dies or breaks the
// protocol is reaped and described ("worker crashed (signal SIGSEGV)",
// "worker ran out of memory (limit 1 GiB)"); the request is retried once in a
// new worker, and if it fails again the failure is reported as a rule error.
// Timeouts are not retried. A worker that ends itself because a rule call
// ignored its time limit (kWorkerExitCallTimeLimit) counts as a timeout.
// DispatchLive's errors say whether the request ended its worker and how
// (WorkerFailureOf), so that a caller can narrow a failing batch down to
// the event and rule responsible (engine/ingest_pipeline.cc).
//
// Replacement backoff. A live worker that dies before it ever answered a
// request is replaced only after a delay that doubles from 100 ms up to 5 s
// (counted in Stats().replacements_delayed); one that had served requests is
// replaced at once. So a rule set that kills every new worker cannot make
// the pool spin starting processes.
//
// Shutdown. Stop() makes waiting and later calls fail with Unavailable and
// ends replacements; KillSwitch() returns a function that SIGKILLs the
// process group of every worker still running, usable from a shutdown
// watchdog even while (or after) the pool is being destroyed.
//
// Threads and blocking. Every public method blocks its caller (on I/O with
// workers, on KvBackend calls, on waiting for a free worker) and must be
// called from a thread that may block, never from a gRPC callback thread:
// the server calls them from its executor. The pool owns two threads: the
// spawner, and a supervisor that health-checks idle live workers, replaces
// dead ones and reaps retired ones. All public methods are thread-safe; the
// destructor must not run concurrently with them.
//
// Bounded waiting. At most `max_isolated_runs` one-shot workers run at once
// and at most `max_waiting` callers wait for a live worker or a one-shot
// slot; a caller beyond that is refused at once with ResourceExhausted and
// counted in Stats().rejected.
#ifndef PANTHERD_ENGINE_WORKER_POOL_H_
#define PANTHERD_ENGINE_WORKER_POOL_H_

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "engine/kv.h"
#include "engine/kv_cache.h"
#include "engine/worker_host.h"
#include "engine/worker_output.h"
#include "pantherd/internal/worker.pb.h"
#include "pantherd/v1/common.pb.h"
#include "pantherd/v1/rules.pb.h"
#include "proto/base/log.h"

namespace pantherd::engine {

// Internal to the worker pool (engine/worker_process.h).
struct WorkerProcessList;
struct WorkerEnd;

struct WorkerPoolOptions {
  // The worker program and the arguments placed before the worker flags
  // (WorkerFlags) on its command line.
  std::string worker_binary;
  std::vector<std::string> worker_args;
  // The worker's whole environment (pantherd's own is not passed on).
  std::vector<std::string> worker_env = {"PATH=/usr/local/bin:/usr/bin:/bin", "LANG=C.UTF-8"};
  // Live workers per generation; 0 means one per core.
  int workers = 0;
  WorkerLimits limits;
  // Calls implied by the tests of one rule (see the budget above): with the
  // defaults, the tests of one rule may take 10 × 5 s + 2 s before the worker
  // is killed.
  int calls_per_rule_tests = 10;
  // Answers the live workers' KvCalls; not owned, must outlive the pool,
  // must be thread-safe. Null: every KvCall gets an error (raised in the
  // rule). Workers only fetch items (OP_FETCH) and send their write logs
  // (OP_APPLY_WRITES), which the pool passes on with the request's
  // WorkerRequest.kv_txn (KvCall.txn), to be held until the batch commits
  // (engine/kv_store.h); the writes of a request without a transaction (a
  // load) are dropped. One-shot test workers (RunTestsIsolated) never reach
  // it: their rules see a private key-value space that starts empty.
  KvBackend* kv = nullptr;
  // When true, worker stdout/stderr are read by the pool and logged through
  // `log` (kInfo), one message per line: "worker pid <pid>: <line>", control
  // characters escaped, lines cut at 1 KiB, at most 20 lines at once and 5 a
  // second per worker, drops counted (engine/worker_output.h). Rule code's
  // print() is data: it can never write a line of pantherd's log. When
  // false, the output goes to /dev/null.
  bool worker_output_to_stderr = true;
  // One-shot workers running at once; 0 means `workers`.
  int max_isolated_runs = 0;
  // Workers kept for a series of requests (StartIsolated: replays) running
  // at once, apart from max_isolated_runs so that a long replay never holds
  // up test runs; 0 means 1.
  int max_isolated_sessions = 1;
  // Callers allowed to wait (for a live worker, or a one-shot slot) at once.
  int max_waiting = 64;
  // Where the pool logs (worker crashes, timeouts, replacements, rule set
  // changes, the "not root" warning, and every line workers write, as
  // `msg="worker output"` events with the worker's pid). Not owned; must
  // outlive the pool; never null.
  base::Logger* logger = base::DefaultLogger();
};

// How a request ended its worker, as reported in DispatchLive's errors.
enum class WorkerFailureKind {
  kNone,         // the error was not a worker failure (no worker, overload, shutdown)
  kCrash,        // the worker died (signal, unexpected exit)
  kOutOfMemory,  // the worker hit its memory limit
  kTimeout,      // the request overran its budget, or a call ignored its time limit
  kProtocol,     // the worker broke the channel protocol (DataLoss and the like)
};

// The WorkerFailureKind carried by `status` (an error of DispatchLive);
// kNone for OK and for errors that did not end a worker.
WorkerFailureKind WorkerFailureOf(const absl::Status& status);

// The rule-error type pantherd records for `kind`: "WorkerCrashed",
// "WorkerOutOfMemory", "Timeout", "WorkerProtocolError" ("" for kNone).
const char* WorkerFailureType(WorkerFailureKind kind);

struct WorkerPoolStats {
  int64_t workers_started = 0;  // processes spawned (live, replacement, one-shot)
  int64_t workers_crashed = 0;  // died or broke the protocol unasked
  int64_t workers_killed_for_timeout = 0;
  int64_t workers_replaced = 0;      // live workers restarted after dying
  int64_t replacement_failures = 0;  // replacement attempts that failed (retried with backoff)
  int64_t replacements_delayed = 0;  // replacements held back because the worker died unused
  int64_t retries = 0;               // requests retried in a new worker after a crash
  int64_t isolated_runs = 0;         // RunTestsIsolated calls that ran
  int64_t rejected = 0;              // calls refused with ResourceExhausted
  int live_workers = 0;              // live workers of the current generation
  int busy_workers = 0;              // live workers busy with a request now
  int waiting = 0;                   // callers waiting for a worker or a slot now
  bool has_live_generation = false;
  uint64_t live_version = 0;
};

// A DispatchLive answer and the rule-set version of the worker that gave it.
struct LiveResponse {
  internal::WorkerResponse response;
  uint64_t version = 0;
};

// True when `result` has a diagnostic that is not a warning (its message
// does not start with "warning: "), i.e. the set was not loaded.
bool HasLoadErrors(const internal::LoadResult& result);

class IsolatedWorker;

class WorkerPool {
 public:
  // Validates `options` (InvalidArgument for a missing or non-executable
  // worker_binary, a negative count or limit) and starts the pool's threads.
  // No worker runs until LoadLive or RunTestsIsolated. Logs a warning when
  // pantherd is not root: workers then cannot switch to an unprivileged user
  // and can read the data directory.
  static absl::StatusOr<std::unique_ptr<WorkerPool>> Create(WorkerPoolOptions options);

  // Closes every worker's channel, waits up to kill_grace for them to exit,
  // SIGKILLs the rest, reaps them all and joins the pool's threads.
  ~WorkerPool();

  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  // Runs the unit tests of `files` in a fresh one-shot worker that exits
  // afterwards. The tests of each rule of `task.rule_ids` are run as one
  // request, in order, so a crash or timeout is attributed to its rule and
  // the other rules still report: pass the ids (the caller has parsed the
  // set) rather than an empty list, which runs everything as one request.
  // A crashing worker is replaced and the rule retried once; if it crashes
  // again, or times out, the rule gets a RuleTestResult with passed = false
  // and one TestCaseResult named "worker" (OUTCOME_ERROR) whose "rule"
  // function carries a RuleError of type "WorkerCrashed", "WorkerOutOfMemory"
  // or "Timeout" and a message naming the rule, e.g. "worker crashed (signal
  // SIGABRT) while running the tests of rule Okta.X (retried once in a new
  // worker)"; it counts in tests_failed. Load errors (non-warning
  // diagnostics) are listed in `invalid` and the tests of what did load
  // still run (none when no rule loaded); when loading itself crashes
  // (twice) or times out, `invalid` says so and no tests run. Returns an error only when no worker
  // could be used at all (spawn failure: Internal/Unavailable; overload: ResourceExhausted) or a
  // worker refused a request (FailedPrecondition with its `error`).
  absl::StatusOr<v1::TestReport> RunTestsIsolated(const std::vector<v1::AnalysisFile>& files,
                                                  const internal::RunTestsTask& task);

  // Starts a one-shot worker loaded with `files` that stays for a series of
  // requests (IsolatedWorker), counted among max_isolated_sessions (waiting
  // for a slot as RunTestsIsolated does for its own). `nice` (0..19) is
  // added to the worker's scheduling niceness so that, on a busy machine,
  // the kernel gives live workers and pantherd precedence. Load errors are
  // in loaded() (the rules that loaded still run). Errors: as
  // RunTestsIsolated's when no worker could be started or loading it
  // crashed twice or timed out (Aborted, DeadlineExceeded).
  absl::StatusOr<std::unique_ptr<IsolatedWorker>> StartIsolated(
      const std::vector<v1::AnalysisFile>& files, int nice = 0);

  // Starts a new generation of `workers` processes, loads `files` as
  // `version` in each, and only when every one loaded it without error
  // switches to it atomically: from then on DispatchLive uses only the new
  // workers, and the old ones exit after their request in flight. Returns
  // the LoadResult (of the first worker; all must agree). When the set has
  // errors, returns OK with that LoadResult (HasLoadErrors() is true) and the
  // previous generation keeps serving; likewise, but with an error status
  // (Aborted for a crash, DeadlineExceeded for a timeout, or the spawn
  // error), when a worker failed. Calls are serialised.
  absl::StatusOr<internal::LoadResult> LoadLive(const std::vector<v1::AnalysisFile>& files,
                                                uint64_t version);

  // Sends `request` (load or run_tests; later evaluation) to an idle worker
  // of the current generation and returns its final response, serving its
  // KvCalls meanwhile. `calls` is the number of rule-function calls the
  // request implies (its budget, see above). Waits for an idle worker up to
  // the same budget. Errors: FailedPrecondition when no generation is live or
  // the worker answered with `error`; ResourceExhausted when max_waiting
  // callers already wait; DeadlineExceeded when no worker became free, or
  // the worker overran its budget (it is killed and replaced); Aborted when
  // the request crashed two workers in a row (each is replaced). `overlay`,
  // when given, is merged into the request as the worker reads it (see
  // engine/ipc.h WriteMessageWithOverlay): callers sending one large request
  // with small variations (the rule groups of one batch) copy nothing.
  // `preferred_worker` >= 0 picks worker number preferred_worker % workers()
  // when it is idle (any idle worker otherwise): a caller that sends the same
  // rules to the same worker keeps their detection-cache items in that
  // worker's cache, instead of moving them between workers.
  //
  // Every error that ended a worker carries its WorkerFailureKind
  // (WorkerFailureOf). `retry_after_crash` false reports the first crash at
  // once (Aborted) instead of retrying: for callers narrowing down a poison
  // batch, which retry themselves.
  absl::StatusOr<LiveResponse> DispatchLive(const internal::WorkerRequest& request, int64_t calls,
                                            const internal::WorkerRequest* overlay = nullptr,
                                            int preferred_worker = -1,
                                            bool retry_after_crash = true);

  // Begins shutdown: callers waiting for a worker or a test-run slot, and
  // every later call, get Unavailable; dead workers are no longer replaced
  // and no process is started. Requests in flight go on until they end or
  // their workers are killed (KillSwitch). Idempotent; thread-safe.
  void Stop();

  // A function that SIGKILLs the process group of every worker this pool
  // started and has not reaped yet, refuses every later start, and returns
  // the number of groups signalled. It shares no state with the pool but the
  // list of processes, so it may be called at any time from any thread, also
  // while or after the pool is destroyed (then it kills what is left).
  std::function<int()> KillSwitch() const;

  WorkerPoolStats Stats() const;

  // Makes every live worker forget its cached copies of `keys` before its
  // next request (e.g. the keys of a batch transaction that did not commit,
  // engine/kv_store.h). Thread-safe; never blocks on workers.
  void ForgetKvKeys(const std::vector<std::string>& keys);

  // The number of live workers per generation.
  int workers() const { return workers_; }

 private:
  friend class IsolatedWorker;
  struct Worker;
  struct Slot;
  struct Generation;
  struct SpawnTask;

  explicit WorkerPool(WorkerPoolOptions options);

  // Starts a worker through the spawner thread.
  absl::StatusOr<std::shared_ptr<Worker>> Spawn();
  void SpawnerLoop();
  absl::StatusOr<std::shared_ptr<Worker>> SpawnNow();

  // Sends `request` and waits for its final response until `deadline`,
  // answering KvCalls. Any error means the worker is unusable.
  // `extra`, when given, is sent after the request as an overlay (see
  // engine/ipc.h WriteMessageWithOverlay).
  absl::StatusOr<internal::WorkerResponse> Exchange(Worker& worker,
                                                    const internal::WorkerRequest& request,
                                                    absl::Time deadline,
                                                    const internal::WorkerRequest* extra = nullptr);
  // Answers a worker's KvCall during a request: OP_FETCH from the
  // KvBackend, OP_APPLY_WRITES (the early part of a long write log) by
  // appending its writes to `held_log`, held with the final response's.
  // Errors are raised in the rule.
  absl::Status AnswerKvCall(Worker& worker, const internal::KvCall& call,
                            internal::KvCall* held_log, internal::KvReply* reply);
  // Holds `log` (an OP_APPLY_WRITES) under transaction `txn` in the
  // KvBackend and notes in kv_changes_ the keys it changes; without a
  // transaction the writes are dropped and every worker forgets those keys;
  // a one-shot test worker's writes stay in its own cache.
  absl::Status HoldKvWrites(Worker& worker, const internal::KvCall& log, uint64_t txn);
  // Ends a worker after Exchange failed with `status`: kills it if needed,
  // reaps it, counts and logs, and describes what happened.
  WorkerEnd EndFailedWorker(Worker& worker, const absl::Status& status, absl::Duration budget);
  // Clears a slot whose worker died; schedules its replacement, delayed
  // with backoff when the worker never served a request.
  void MarkSlotDeadLocked(Slot& slot) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Closes the worker's channel and lets the supervisor reap it.
  void Retire(std::shared_ptr<Worker> worker);
  // Spawns and loads one worker with `load` (for LoadLive and replacements).
  absl::StatusOr<std::shared_ptr<Worker>> StartLoaded(const internal::LoadRuleSet& load,
                                                      internal::LoadResult* result,
                                                      absl::Status* failure_status,
                                                      bool isolated_kv = false);

  absl::Duration Budget(int64_t calls) const;
  // Takes one of `limit` slots counted in `*running` (isolated_running_ or
  // sessions_running_), waiting like other callers (ResourceExhausted
  // beyond max_waiting; Unavailable when stopping).
  absl::Status AcquireSlot(int* running, int limit) ABSL_LOCKS_EXCLUDED(mu_);
  void ReleaseSlot(int* running) ABSL_LOCKS_EXCLUDED(mu_);
  int64_t LoadCalls(const internal::LoadRuleSet& load) const;

  void SupervisorLoop();
  bool HasIdleLiveWorkerOrNone() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Logs through options_.logger with component=workers.
  void Log(base::LogLevel level, absl::string_view msg, base::LogFields fields = {}) const;

  const WorkerPoolOptions options_;
  const int workers_;
  const int max_isolated_runs_;
  const int max_isolated_sessions_;

  // Serialises LoadLive.
  absl::Mutex load_mu_;

  mutable absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::shared_ptr<Generation> current_ ABSL_GUARDED_BY(mu_);
  // Workers whose channel is closed, waiting to exit; the supervisor reaps
  // them (SIGKILL after kill_grace).
  struct Retiring {
    std::shared_ptr<Worker> worker;
    absl::Time kill_at;
  };
  std::vector<Retiring> retiring_ ABSL_GUARDED_BY(mu_);
  int waiting_ ABSL_GUARDED_BY(mu_) = 0;
  int isolated_running_ ABSL_GUARDED_BY(mu_) = 0;
  int sessions_running_ ABSL_GUARDED_BY(mu_) = 0;
  bool supervisor_wake_ ABSL_GUARDED_BY(mu_) = false;

  // Spawn requests for the spawner thread (bounded by max_waiting plus the
  // live workers; beyond, ResourceExhausted).
  absl::Mutex spawn_mu_;
  std::deque<std::shared_ptr<SpawnTask>> spawn_queue_ ABSL_GUARDED_BY(spawn_mu_);
  bool spawn_stopping_ ABSL_GUARDED_BY(spawn_mu_) = false;

  // Every worker process started and not reaped yet (for KillSwitch).
  std::shared_ptr<WorkerProcessList> processes_;

  // Reads the workers' output pipes (null: worker_output_to_stderr false).
  std::unique_ptr<WorkerOutput> output_;

  // Which worker changed which caching key, for the workers' caches
  // (engine/kv_cache.h); each worker process gets its own id.
  KvChangeLog kv_changes_;
  std::atomic<uint64_t> next_kv_worker_id_{0};

  std::atomic<int64_t> started_{0};
  std::atomic<int64_t> crashed_{0};
  std::atomic<int64_t> killed_timeout_{0};
  std::atomic<int64_t> replaced_{0};
  std::atomic<int64_t> replacement_failures_{0};
  std::atomic<int64_t> replacements_delayed_{0};
  std::atomic<int64_t> retries_{0};
  std::atomic<int64_t> isolated_runs_{0};
  std::atomic<int64_t> rejected_{0};

  std::thread spawner_;
  std::thread supervisor_;
};

// A one-shot worker kept for a series of requests (a replay's evaluator,
// WorkerPool::StartIsolated): loaded with one set, its rules see a private
// key-value space that starts empty and lives as long as the worker (never
// the live one), and it holds one of the pool's one-shot slots until
// destroyed. Use from one thread at a time; destroy before the pool.
class IsolatedWorker {
 public:
  ~IsolatedWorker();
  IsolatedWorker(const IsolatedWorker&) = delete;
  IsolatedWorker& operator=(const IsolatedWorker&) = delete;

  // What loading the set said (diagnostics; rule_count).
  const internal::LoadResult& loaded() const { return loaded_; }

  // Sends `request` (an evaluation) and returns the final response, within
  // the budget of `calls` rule-function calls. Errors: FailedPrecondition
  // when the worker answered with `error` (the worker stays usable);
  // DeadlineExceeded or Aborted when the request ended the worker, carrying
  // its WorkerFailureKind (WorkerFailureOf): the worker is gone, and the
  // next call starts a new one loaded with the same set, whose private
  // key-value space starts empty again (counted in restarts()); Unavailable
  // when the pool is stopping; a start's errors.
  absl::StatusOr<internal::WorkerResponse> Exchange(const internal::WorkerRequest& request,
                                                    int64_t calls);

  // Workers started after one ended.
  int restarts() const { return restarts_; }

 private:
  friend class WorkerPool;
  IsolatedWorker(WorkerPool* pool, internal::LoadRuleSet load, int nice);
  absl::Status Start();

  WorkerPool* const pool_;
  const internal::LoadRuleSet load_;
  const int nice_;
  std::shared_ptr<WorkerPool::Worker> worker_;  // null: start one at the next call
  internal::LoadResult loaded_;
  bool started_once_ = false;
  int restarts_ = 0;
};

}  // namespace pantherd::engine

#endif  // PANTHERD_ENGINE_WORKER_POOL_H_
