#include "engine/worker_pool.h"

#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <utility>

#include "absl/cleanup/cleanup.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/cord.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "engine/analysis_spec.h"
#include "engine/ipc.h"
#include "engine/test_report_merge.h"
#include "engine/worker_process.h"
#include "proto/base/status_macros.h"

namespace pantherd::engine {
namespace {

constexpr absl::Duration kSupervisorTick = absl::Milliseconds(50);
constexpr absl::Duration kInitialBackoff = absl::Milliseconds(100);
constexpr absl::Duration kMaxBackoff = absl::Seconds(5);
// The status payload naming the WorkerFailureKind of a DispatchLive error.
constexpr char kFailurePayload[] = "type.pantherd.dev/worker-failure";

}  // namespace

const char* WorkerFailureType(WorkerFailureKind kind) {
  switch (kind) {
    case WorkerFailureKind::kCrash:
      return "WorkerCrashed";
    case WorkerFailureKind::kOutOfMemory:
      return "WorkerOutOfMemory";
    case WorkerFailureKind::kTimeout:
      return "Timeout";
    case WorkerFailureKind::kProtocol:
      return "WorkerProtocolError";
    case WorkerFailureKind::kNone:
      break;
  }
  return "";
}

WorkerFailureKind WorkerFailureOf(const absl::Status& status) {
  const auto payload = status.GetPayload(kFailurePayload);
  if (!payload.has_value()) return WorkerFailureKind::kNone;
  for (WorkerFailureKind kind : {WorkerFailureKind::kCrash, WorkerFailureKind::kOutOfMemory,
                                 WorkerFailureKind::kTimeout, WorkerFailureKind::kProtocol}) {
    if (*payload == WorkerFailureType(kind)) return kind;
  }
  return WorkerFailureKind::kNone;
}

bool HasLoadErrors(const internal::LoadResult& result) {
  for (const v1::Diagnostic& d : result.diagnostics()) {
    if (!absl::StartsWith(d.message(), kWarningPrefix)) return true;
  }
  return false;
}

// One worker process (engine/worker_process.h) and what the pool knows of
// the conversation with it. Used by one thread at a time (whoever holds it
// busy).
struct WorkerPool::Worker : WorkerProcess {
  uint64_t next_request_id = 1;
  // This worker in the key-value change log, and how far it has read it.
  uint64_t kv_id = 0;
  uint64_t kv_position = 0;
  // Whether its first request (with the key-value snapshot) was sent.
  bool kv_started = false;
  // A one-shot test worker: its rules see a private, initially empty
  // key-value space (its own cache), never the live one (see Exchange).
  bool isolated_kv = false;
};

struct WorkerPool::Slot {
  std::shared_ptr<Worker> worker;  // null: dead, to be replaced
  bool busy = false;
  bool replacing = false;  // the supervisor is starting a replacement
  absl::Time next_attempt = absl::InfinitePast();
  absl::Duration backoff = kInitialBackoff;
  bool served = false;  // the current worker answered at least one request
};

struct WorkerPool::Generation {
  uint64_t version = 0;
  internal::LoadRuleSet load;  // to load replacements
  std::vector<Slot> slots;     // never resized
};

struct WorkerPool::SpawnTask {
  absl::Mutex mu;
  bool done ABSL_GUARDED_BY(mu) = false;
  absl::StatusOr<std::shared_ptr<Worker>> result ABSL_GUARDED_BY(mu) =
      absl::UnknownError("not spawned");
};

// Creation and destruction ----------------------------------------------------

absl::StatusOr<std::unique_ptr<WorkerPool>> WorkerPool::Create(WorkerPoolOptions options) {
  if (options.worker_binary.empty() || access(options.worker_binary.c_str(), X_OK) != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("worker binary '", options.worker_binary, "' is not an executable file"));
  }
  if (options.workers < 0 || options.max_isolated_runs < 0 || options.max_waiting < 0 ||
      options.calls_per_rule_tests < 1) {
    return absl::InvalidArgumentError(
        "workers, max_isolated_runs and max_waiting must be >= 0, calls_per_rule_tests >= 1");
  }
  if (options.limits.call_time_limit <= absl::ZeroDuration() ||
      options.limits.kill_grace < absl::ZeroDuration() || options.limits.memory_bytes < 0) {
    return absl::InvalidArgumentError(
        "worker call_time_limit must be positive, kill_grace and memory_bytes non-negative");
  }
  auto pool = std::unique_ptr<WorkerPool>(new WorkerPool(std::move(options)));
  if (geteuid() != 0) {
    pool->Log(base::LogLevel::kWarn,
              "pantherd is not running as root: rule workers cannot switch to an unprivileged "
              "user and can read everything pantherd can, including its data directory");
  }
  return pool;
}

WorkerPool::WorkerPool(WorkerPoolOptions options)
    : options_(std::move(options)),
      workers_(options_.workers > 0
                   ? options_.workers
                   : std::max(1, static_cast<int>(std::thread::hardware_concurrency()))),
      max_isolated_runs_(options_.max_isolated_runs > 0 ? options_.max_isolated_runs : workers_),
      max_isolated_sessions_(options_.max_isolated_sessions > 0 ? options_.max_isolated_sessions
                                                                : 1),
      processes_(std::make_shared<WorkerProcessList>()) {
  if (options_.worker_output_to_stderr) {
    WorkerOutputSink sink;
    sink.line = [this](pid_t pid, const std::string& text) {
      Log(base::LogLevel::kInfo, "worker output",
          {{"worker_pid", absl::StrCat(pid)}, {"line", text}});
    };
    sink.dropped = [this](pid_t pid, int64_t count) {
      Log(base::LogLevel::kWarn, "worker output dropped (rate limit)",
          {{"worker_pid", absl::StrCat(pid)}, {"lines", absl::StrCat(count)}});
    };
    output_ = std::make_unique<WorkerOutput>(std::move(sink));
  }
  spawner_ = std::thread([this] { SpawnerLoop(); });
  supervisor_ = std::thread([this] { SupervisorLoop(); });
}

WorkerPool::~WorkerPool() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  supervisor_.join();
  std::vector<std::shared_ptr<Worker>> all;
  {
    absl::MutexLock lock(&mu_);
    if (current_ != nullptr) {
      for (Slot& slot : current_->slots) {
        if (slot.worker != nullptr) all.push_back(std::move(slot.worker));
      }
    }
    for (Retiring& r : retiring_) all.push_back(std::move(r.worker));
    retiring_.clear();
    current_.reset();
  }
  // EOF first, so workers exit on their own; SIGKILL after the grace.
  for (auto& w : all) w->CloseChannel();
  const absl::Time deadline = absl::Now() + options_.limits.kill_grace;
  for (auto& w : all) {
    if (!w->ReapUntil(deadline)) {
      kill(w->pid, SIGKILL);
      w->ReapBlocking();
    }
  }
  // Last: the spawner is every worker's parent thread (PR_SET_PDEATHSIG).
  {
    absl::MutexLock lock(&spawn_mu_);
    spawn_stopping_ = true;
  }
  spawner_.join();
}

void WorkerPool::Log(base::LogLevel level, absl::string_view msg, base::LogFields fields) const {
  fields.insert(fields.begin(), {"component", "workers"});
  options_.logger->Write(level, msg, fields);
}

void WorkerPool::Stop() {
  absl::MutexLock lock(&mu_);
  stopping_ = true;
  supervisor_wake_ = true;
}

std::function<int()> WorkerPool::KillSwitch() const {
  return [processes = processes_] { return KillWorkerProcesses(*processes); };
}

WorkerPoolStats WorkerPool::Stats() const {
  WorkerPoolStats stats;
  stats.workers_started = started_.load();
  stats.workers_crashed = crashed_.load();
  stats.workers_killed_for_timeout = killed_timeout_.load();
  stats.workers_replaced = replaced_.load();
  stats.replacement_failures = replacement_failures_.load();
  stats.replacements_delayed = replacements_delayed_.load();
  stats.retries = retries_.load();
  stats.isolated_runs = isolated_runs_.load();
  stats.rejected = rejected_.load();
  absl::MutexLock lock(&mu_);
  stats.waiting = waiting_;
  if (current_ != nullptr) {
    stats.has_live_generation = true;
    stats.live_version = current_->version;
    for (const Slot& slot : current_->slots) stats.live_workers += slot.worker != nullptr;
    for (const Slot& slot : current_->slots) stats.busy_workers += slot.busy;
  }
  return stats;
}

// Spawning ---------------------------------------------------------------------

absl::StatusOr<std::shared_ptr<WorkerPool::Worker>> WorkerPool::Spawn() {
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return absl::UnavailableError("worker pool is shutting down");
  }
  auto task = std::make_shared<SpawnTask>();
  {
    absl::MutexLock lock(&spawn_mu_);
    if (spawn_stopping_) return absl::UnavailableError("worker pool is shutting down");
    const size_t bound = static_cast<size_t>(options_.max_waiting) + 2 * workers_ +
                         max_isolated_runs_ + max_isolated_sessions_;
    if (spawn_queue_.size() >= bound) {
      ++rejected_;
      return absl::ResourceExhaustedError(
          absl::StrCat("too many worker starts pending (", spawn_queue_.size(), ")"));
    }
    spawn_queue_.push_back(task);
  }
  absl::MutexLock lock(&task->mu);
  task->mu.Await(absl::Condition(&task->done));
  return task->result;
}

void WorkerPool::SpawnerLoop() {
  for (;;) {
    std::shared_ptr<SpawnTask> task;
    {
      absl::MutexLock lock(&spawn_mu_);
      spawn_mu_.Await(absl::Condition(
          +[](WorkerPool* pool) ABSL_NO_THREAD_SAFETY_ANALYSIS {
            return pool->spawn_stopping_ || !pool->spawn_queue_.empty();
          },
          this));
      if (spawn_queue_.empty()) return;  // stopping, nothing left
      task = spawn_queue_.front();
      spawn_queue_.pop_front();
      if (spawn_stopping_) {
        absl::MutexLock task_lock(&task->mu);
        task->result = absl::UnavailableError("worker pool is shutting down");
        task->done = true;
        continue;
      }
    }
    absl::StatusOr<std::shared_ptr<Worker>> result = SpawnNow();
    absl::MutexLock task_lock(&task->mu);
    task->result = std::move(result);
    task->done = true;
  }
}

absl::StatusOr<std::shared_ptr<WorkerPool::Worker>> WorkerPool::SpawnNow() {
  auto worker = std::make_shared<Worker>();
  PANTHERD_RETURN_IF_ERROR(SpawnWorkerProcess(options_.worker_binary, options_.worker_args,
                                              options_.worker_env, options_.limits, output_.get(),
                                              processes_, worker.get()));
  worker->kv_id = next_kv_worker_id_.fetch_add(1) + 1;
  worker->kv_position = kv_changes_.Position();
  ++started_;
  return worker;
}

// Talking to a worker ------------------------------------------------------------

absl::Duration WorkerPool::Budget(int64_t calls) const {
  return options_.limits.call_time_limit * std::max<int64_t>(1, calls) + options_.limits.kill_grace;
}

int64_t WorkerPool::LoadCalls(const internal::LoadRuleSet& load) const {
  int64_t python_files = 0;
  for (const v1::AnalysisFile& f : load.files()) python_files += absl::EndsWith(f.path(), ".py");
  return std::max<int64_t>(1, python_files);
}

absl::StatusOr<internal::WorkerResponse> WorkerPool::Exchange(
    Worker& worker, const internal::WorkerRequest& request, absl::Time deadline,
    const internal::WorkerRequest* extra) {
  const uint64_t id = worker.next_request_id++;
  const uint64_t txn =
      extra != nullptr && extra->kv_txn() != 0 ? extra->kv_txn() : request.kv_txn();
  // The request's key-value writes, held until its final response.
  internal::KvCall held_log;
  held_log.set_op(internal::KvCall::OP_APPLY_WRITES);
  // The id, and what other workers changed since this one's previous
  // request, ride in an overlay: the request (a batch of events) is not copied.
  internal::WorkerRequest overlay;
  if (extra != nullptr) overlay = *extra;
  overlay.set_id(id);
  internal::KvSync* sync = overlay.mutable_kv_sync();
  std::vector<std::pair<std::string, std::string>> snapshot;
  if (!worker.kv_started && worker.isolated_kv) {
    // A private space that starts empty: the worker's cache is all of it.
    sync->set_has_snapshot(true);
  } else if (!worker.kv_started && options_.kv != nullptr) {
    // Items written before the scan are in it; those written while it runs
    // are also listed as changed below, and fetched again.
    const uint64_t before_scan = kv_changes_.Position();
    if (options_.kv->Snapshot(KvCache::kMaxItems, &snapshot).ok()) {
      worker.kv_position = before_scan;
      sync->set_has_snapshot(true);
      for (auto& [key, item] : snapshot) {
        internal::KvSnapshotItem* entry = sync->add_snapshot();
        entry->set_key(std::move(key));
        entry->set_item(std::move(item));
      }
    }
  }
  worker.kv_started = true;
  internal::KvSync changes = kv_changes_.ChangesFor(worker.kv_id, &worker.kv_position);
  sync->set_clear_all(changes.clear_all());
  for (std::string& key : *changes.mutable_keys()) sync->add_keys(std::move(key));
  if (absl::Status s = WriteMessageWithOverlay(worker.fd, request, overlay, deadline); !s.ok()) {
    return s;
  }
  for (;;) {
    internal::WorkerResponse response;
    if (absl::Status s = ReadMessage(worker.fd, &response, deadline); !s.ok()) return s;
    if (response.id() != id) {
      return absl::DataLossError(
          absl::StrCat("worker answered request ", response.id(), " while ", id, " was pending"));
    }
    if (response.has_kv_call()) {
      const internal::KvCall& call = response.kv_call();
      internal::WorkerRequest reply;
      reply.set_id(id);
      internal::KvReply* kv_reply = reply.mutable_kv_reply();
      absl::Status answered = AnswerKvCall(worker, call, &held_log, kv_reply);
      if (!answered.ok()) kv_reply->set_error(std::string(answered.message()));
      kv_reply->set_call_id(call.call_id());
      if (absl::Status s = WriteMessage(worker.fd, reply, deadline); !s.ok()) return s;
      continue;
    }
    if (response.kind_case() == internal::WorkerResponse::KIND_NOT_SET) {
      return absl::DataLossError("worker sent an empty response");
    }
    // The writes the worker's cache made (a long log's earlier parts first),
    // held under the batch's transaction before anyone can send another
    // request (engine/kv_cache.h). A request that fails holds nothing: its
    // writes were never visible outside its worker.
    for (internal::KvCall& write : *response.mutable_kv_writes()) {
      if ((options_.kv == nullptr && !worker.isolated_kv) || !IsKvWrite(write.op()) ||
          write.op() == internal::KvCall::OP_APPLY_WRITES) {
        return absl::DataLossError(
            absl::StrCat("worker sent a key-value write it cannot have made (operation ",
                         static_cast<int>(write.op()), ")"));
      }
      *held_log.add_writes() = std::move(write);
    }
    response.clear_kv_writes();
    if (held_log.writes_size() > 0) {
      if (absl::Status s = HoldKvWrites(worker, held_log, txn); !s.ok()) {
        return absl::InternalError(
            absl::StrCat("holding a worker's key-value writes failed: ", s.message()));
      }
    }
    return response;
  }
}

absl::Status WorkerPool::AnswerKvCall(Worker& worker, const internal::KvCall& call,
                                      internal::KvCall* held_log, internal::KvReply* reply) {
  switch (call.op()) {
    case internal::KvCall::OP_FETCH: {
      if (worker.isolated_kv) return absl::OkStatus();  // private space: no stored item
      if (options_.kv == nullptr) {
        return absl::FailedPreconditionError("no key-value store is available to rules here");
      }
      PANTHERD_ASSIGN_OR_RETURN(*reply, options_.kv->Call(call));
      return absl::OkStatus();
    }
    case internal::KvCall::OP_APPLY_WRITES:
      if (options_.kv == nullptr && !worker.isolated_kv) {
        return absl::FailedPreconditionError("no key-value store is available to rules here");
      }
      for (const internal::KvCall& write : call.writes()) {
        if (!IsKvWrite(write.op()) || write.op() == internal::KvCall::OP_APPLY_WRITES) {
          return absl::InvalidArgumentError(absl::StrCat(
              "apply_writes: operation ", static_cast<int>(write.op()), " is not a single write"));
        }
        *held_log->add_writes() = write;
      }
      return absl::OkStatus();
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("workers may only fetch key-value items and send their write logs, not "
                       "operation ",
                       static_cast<int>(call.op())));
  }
}

absl::Status WorkerPool::HoldKvWrites(Worker& worker, const internal::KvCall& log, uint64_t txn) {
  if (worker.isolated_kv) return absl::OkStatus();  // the worker's own cache holds them
  if (txn == 0) {
    // Not evaluating a batch (a load, a test run on a live worker): nothing
    // is kept, and every worker forgets what it knew of those keys.
    for (const internal::KvCall& write : log.writes()) kv_changes_.Record(0, write.key());
    return absl::OkStatus();
  }
  internal::KvCall held = log;
  held.set_txn(txn);
  absl::Status s = options_.kv->Call(held).status();
  // Recorded even after a failure: other workers must not trust their copies.
  for (const internal::KvCall& write : log.writes()) kv_changes_.Record(worker.kv_id, write.key());
  return s;
}

void WorkerPool::ForgetKvKeys(const std::vector<std::string>& keys) {
  for (const std::string& key : keys) kv_changes_.Record(0, key);
}

WorkerEnd WorkerPool::EndFailedWorker(Worker& worker, const absl::Status& status,
                                      absl::Duration budget) {
  WorkerEnd failure = EndFailedWorkerProcess(worker, status, budget, options_.limits);
  if (failure.kind == WorkerEnd::kTimeout) {
    ++killed_timeout_;
  } else {
    ++crashed_;
  }
  Log(base::LogLevel::kWarn, "rule worker ended",
      {{"worker_pid", absl::StrCat(worker.pid)}, {"cause", failure.description}});
  return failure;
}

void WorkerPool::Retire(std::shared_ptr<Worker> worker) {
  absl::MutexLock lock(&mu_);
  worker->CloseChannel();
  retiring_.push_back({std::move(worker), absl::Now() + options_.limits.kill_grace});
  supervisor_wake_ = true;
}

absl::StatusOr<std::shared_ptr<WorkerPool::Worker>> WorkerPool::StartLoaded(
    const internal::LoadRuleSet& load, internal::LoadResult* result, absl::Status* failure_status,
    bool isolated_kv) {
  absl::StatusOr<std::shared_ptr<Worker>> worker = Spawn();
  if (!worker.ok()) return worker.status();
  (*worker)->isolated_kv = isolated_kv;
  internal::WorkerRequest request;
  *request.mutable_load() = load;
  const absl::Duration budget = Budget(LoadCalls(load));
  absl::StatusOr<internal::WorkerResponse> response =
      Exchange(**worker, std::move(request), absl::Now() + budget);
  if (!response.ok()) {
    WorkerEnd failure = EndFailedWorker(**worker, response.status(), budget);
    const std::string message =
        absl::StrCat(failure.description, " while loading rule set version ", load.version());
    *failure_status = failure.kind == WorkerEnd::kTimeout ? absl::DeadlineExceededError(message)
                                                          : absl::AbortedError(message);
    return *failure_status;
  }
  if (!response->has_loaded()) {
    Retire(*worker);
    *failure_status = absl::FailedPreconditionError(
        absl::StrCat("worker refused to load rule set version ", load.version(), ": ",
                     response->has_error() ? response->error() : "unexpected response"));
    return *failure_status;
  }
  *result = std::move(*response->mutable_loaded());
  return worker;
}

// One-shot test runs ---------------------------------------------------------------

absl::Status WorkerPool::AcquireSlot(int* running, int limit) {
  absl::MutexLock lock(&mu_);
  if (stopping_) return absl::UnavailableError("worker pool is shutting down");
  if (*running >= limit) {
    if (waiting_ >= options_.max_waiting) {
      ++rejected_;
      return absl::ResourceExhaustedError(
          absl::StrCat("too many ", running == &sessions_running_ ? "replays" : "test runs", ": ",
                       *running, " running and ", waiting_, " waiting"));
    }
    ++waiting_;
    auto free = [this, running, limit]()
                    ABSL_NO_THREAD_SAFETY_ANALYSIS { return stopping_ || *running < limit; };
    mu_.Await(absl::Condition(&free));
    --waiting_;
    if (stopping_) return absl::UnavailableError("worker pool is shutting down");
  }
  ++*running;
  ++isolated_runs_;
  return absl::OkStatus();
}

void WorkerPool::ReleaseSlot(int* running) {
  absl::MutexLock lock(&mu_);
  --*running;
}

absl::StatusOr<v1::TestReport> WorkerPool::RunTestsIsolated(
    const std::vector<v1::AnalysisFile>& files, const internal::RunTestsTask& task) {
  PANTHERD_RETURN_IF_ERROR(AcquireSlot(&isolated_running_, max_isolated_runs_));
  auto release = absl::MakeCleanup([this] { ReleaseSlot(&isolated_running_); });

  internal::LoadRuleSet load;
  load.set_version(0);
  for (const v1::AnalysisFile& f : files) *load.add_files() = f;

  // Each group is one RunTests request; an empty group means "every rule".
  std::vector<std::vector<std::string>> groups;
  if (task.rule_ids().empty()) {
    groups.emplace_back();
  } else {
    for (const std::string& id : task.rule_ids()) groups.push_back({id});
  }
  auto describe_group = [](const std::vector<std::string>& group) {
    return group.empty() ? std::string("the rule set") : absl::StrCat("rule ", group[0]);
  };

  v1::TestReport report;
  absl::flat_hash_map<std::string, std::vector<std::string>> test_names;
  bool test_names_loaded = false;
  std::shared_ptr<Worker> worker;
  internal::LoadResult loaded;
  int load_crashes = 0;
  int group_crashes = 0;
  size_t next = 0;
  while (next < groups.size()) {
    if (worker == nullptr) {
      absl::Status failure;
      absl::StatusOr<std::shared_ptr<Worker>> started =
          StartLoaded(load, &loaded, &failure, /*isolated_kv=*/true);
      if (!started.ok()) {
        if (failure.ok() || absl::IsFailedPrecondition(failure))
          return started.status();  // spawn error or refusal
        if (absl::IsAborted(failure) && load_crashes++ == 0) {
          ++retries_;
          continue;
        }
        AddInvalidMessage(
            report,
            absl::StrCat(failure.message(),
                         absl::IsAborted(failure) ? " (retried once in a new worker)" : ""));
        return report;
      }
      worker = *std::move(started);
      // What failed to load is reported; the tests of the rest still run
      // (the handler reports the requested rules that did not load).
      if (report.invalid().empty()) {
        v1::TestReport load_problems;
        for (const v1::Diagnostic& d : loaded.diagnostics()) {
          if (!absl::StartsWith(d.message(), kWarningPrefix)) *load_problems.add_invalid() = d;
        }
        MergeTestReport(report, load_problems);
      }
      if (HasLoadErrors(loaded) && loaded.rule_count() == 0) {  // nothing to test
        Retire(std::move(worker));
        for (v1::SkippedContent& s : *loaded.mutable_skipped()) report.add_skipped()->Swap(&s);
        return report;
      }
    }
    const std::vector<std::string>& group = groups[next];
    internal::WorkerRequest request;
    for (const std::string& id : group) request.mutable_run_tests()->add_rule_ids(id);
    if (group.empty()) request.mutable_run_tests();
    const int64_t rules = group.empty() ? std::max(1, loaded.rule_count()) : 1;
    const absl::Duration budget = Budget(rules * options_.calls_per_rule_tests);
    absl::StatusOr<internal::WorkerResponse> response =
        Exchange(*worker, std::move(request), absl::Now() + budget);
    if (response.ok() && response->has_test_report()) {
      MergeTestReport(report, *response->mutable_test_report());
      ++next;
      group_crashes = 0;
      continue;
    }
    if (response.ok()) {  // the worker refused; it is still usable
      Retire(std::move(worker));
      if (HasLoadErrors(loaded)) return report;  // refused because the set did not load
      return absl::FailedPreconditionError(
          absl::StrCat("worker refused to run the tests of ", describe_group(group), ": ",
                       response->has_error() ? response->error() : "unexpected response"));
    }
    WorkerEnd failure = EndFailedWorker(*worker, response.status(), budget);
    worker.reset();
    if (failure.kind != WorkerEnd::kTimeout && group_crashes++ == 0) {
      ++retries_;
      continue;  // same group, new worker
    }
    std::string message =
        absl::StrCat(failure.description, " while running the tests of ", describe_group(group));
    if (failure.kind != WorkerEnd::kTimeout)
      absl::StrAppend(&message, " (retried once in a new worker)");
    if (group.empty()) {
      AddInvalidMessage(report, message);
    } else {
      const char* type = failure.kind == WorkerEnd::kTimeout       ? "Timeout"
                         : failure.kind == WorkerEnd::kOutOfMemory ? "WorkerOutOfMemory"
                                                                   : "WorkerCrashed";
      if (!test_names_loaded) {
        test_names = TestNamesByRule(files);
        test_names_loaded = true;
      }
      AddWorkerFailedRule(report, group[0], test_names[group[0]], type, message);
    }
    ++next;
    group_crashes = 0;
  }
  if (worker != nullptr) Retire(std::move(worker));
  if (report.skipped().empty()) {
    for (v1::SkippedContent& s : *loaded.mutable_skipped()) report.add_skipped()->Swap(&s);
  }
  return report;
}

namespace {

// `status` carrying the WorkerFailureKind of `kind` (see WorkerFailureOf).
absl::Status WithFailureKind(absl::Status status, WorkerFailureKind kind) {
  status.SetPayload(kFailurePayload, absl::Cord(WorkerFailureType(kind)));
  return status;
}

// Sets the niceness of every thread of every process in the worker's
// process group (its watchdog, and the init and Python processes it forks,
// which keep the group) to `nice`. PRIO_PGRP reaches every thread; threads
// started later inherit it.
absl::Status LowerPriority(pid_t pid, int nice) {
  const pid_t group = getpgid(pid);
  if (group < 0) return absl::ErrnoToStatus(errno, "getpgid");
  if (setpriority(PRIO_PGRP, static_cast<id_t>(group), nice) != 0) {
    return absl::ErrnoToStatus(errno, "setpriority");
  }
  return absl::OkStatus();
}

}  // namespace

// Isolated workers kept for a series of requests ---------------------------------------

absl::StatusOr<std::unique_ptr<IsolatedWorker>> WorkerPool::StartIsolated(
    const std::vector<v1::AnalysisFile>& files, int nice) {
  if (nice < 0 || nice > 19) return absl::InvalidArgumentError("nice: must be 0 to 19");
  internal::LoadRuleSet load;
  load.set_version(0);
  for (const v1::AnalysisFile& f : files) *load.add_files() = f;
  PANTHERD_RETURN_IF_ERROR(AcquireSlot(&sessions_running_, max_isolated_sessions_));
  // From here the IsolatedWorker owns the slot.
  std::unique_ptr<IsolatedWorker> isolated(new IsolatedWorker(this, std::move(load), nice));
  PANTHERD_RETURN_IF_ERROR(isolated->Start());
  return isolated;
}

IsolatedWorker::IsolatedWorker(WorkerPool* pool, internal::LoadRuleSet load, int nice)
    : pool_(pool), load_(std::move(load)), nice_(nice) {}

IsolatedWorker::~IsolatedWorker() {
  if (worker_ != nullptr) pool_->Retire(std::move(worker_));
  pool_->ReleaseSlot(&pool_->sessions_running_);
}

absl::Status IsolatedWorker::Start() {
  // A load that crashes its worker is retried once, as RunTestsIsolated does.
  for (int attempt = 0;; ++attempt) {
    absl::Status failure;
    absl::StatusOr<std::shared_ptr<WorkerPool::Worker>> started =
        pool_->StartLoaded(load_, &loaded_, &failure, /*isolated_kv=*/true);
    if (started.ok()) {
      worker_ = *std::move(started);
      if (nice_ > 0) {
        if (absl::Status s = LowerPriority(worker_->pid, nice_); !s.ok()) {
          pool_->Log(base::LogLevel::kWarn, "could not lower an isolated worker's priority",
                     {{"worker_pid", absl::StrCat(worker_->pid)}, {"error", s.ToString()}});
        }
      }
      if (started_once_) ++restarts_;
      started_once_ = true;
      return absl::OkStatus();
    }
    if (failure.ok() || !absl::IsAborted(failure) || attempt > 0) return started.status();
    ++pool_->retries_;
  }
}

absl::StatusOr<internal::WorkerResponse> IsolatedWorker::Exchange(
    const internal::WorkerRequest& request, int64_t calls) {
  if (worker_ == nullptr) PANTHERD_RETURN_IF_ERROR(Start());
  {
    absl::MutexLock lock(&pool_->mu_);
    if (pool_->stopping_) return absl::UnavailableError("worker pool is shutting down");
  }
  const absl::Duration budget = pool_->Budget(calls);
  absl::StatusOr<internal::WorkerResponse> response =
      pool_->Exchange(*worker_, request, absl::Now() + budget);
  if (response.ok()) {
    if (response->has_error()) {
      return absl::FailedPreconditionError(absl::StrCat("rule worker: ", response->error()));
    }
    return response;
  }
  WorkerEnd failure = pool_->EndFailedWorker(*worker_, response.status(), budget);
  worker_.reset();
  const WorkerFailureKind kind =
      failure.kind == WorkerEnd::kTimeout       ? WorkerFailureKind::kTimeout
      : failure.kind == WorkerEnd::kOutOfMemory ? WorkerFailureKind::kOutOfMemory
      : failure.kind == WorkerEnd::kProtocol    ? WorkerFailureKind::kProtocol
                                                : WorkerFailureKind::kCrash;
  return WithFailureKind(failure.kind == WorkerEnd::kTimeout
                             ? absl::DeadlineExceededError(failure.description)
                             : absl::AbortedError(failure.description),
                         kind);
}

// The live generation -----------------------------------------------------------------

absl::StatusOr<internal::LoadResult> WorkerPool::LoadLive(
    const std::vector<v1::AnalysisFile>& files, uint64_t version) {
  absl::MutexLock load_lock(&load_mu_);
  auto generation = std::make_shared<Generation>();
  generation->version = version;
  generation->load.set_version(version);
  for (const v1::AnalysisFile& f : files) *generation->load.add_files() = f;

  const int n = workers_;
  std::vector<absl::StatusOr<std::shared_ptr<Worker>>> started(n,
                                                               absl::UnknownError("not started"));
  std::vector<absl::Status> failures(n);
  std::vector<internal::LoadResult> results(n);
  {
    std::vector<std::thread> threads;
    for (int i = 1; i < n; ++i) {
      threads.emplace_back(
          [&, i] { started[i] = StartLoaded(generation->load, &results[i], &failures[i]); });
    }
    started[0] = StartLoaded(generation->load, &results[0], &failures[0]);
    for (std::thread& t : threads) t.join();
  }
  auto retire_all = [&] {
    for (auto& w : started) {
      if (w.ok()) Retire(*std::move(w));
    }
  };
  for (int i = 0; i < n; ++i) {
    if (!started[i].ok()) {
      retire_all();
      return started[i].status();
    }
  }
  for (int i = 0; i < n; ++i) {
    if (HasLoadErrors(results[i])) {
      retire_all();
      Log(base::LogLevel::kWarn, "rule set did not load; the previous set stays live",
          {{"version", absl::StrCat(version)}});
      return std::move(results[i]);
    }
  }
  generation->slots.resize(n);
  for (int i = 0; i < n; ++i) generation->slots[i].worker = *std::move(started[i]);
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) {
      for (Slot& slot : generation->slots) {
        slot.worker->CloseChannel();
        retiring_.push_back({std::move(slot.worker), absl::Now() + options_.limits.kill_grace});
      }
      return absl::UnavailableError("worker pool is shutting down");
    }
    std::shared_ptr<Generation> old = std::move(current_);
    current_ = generation;
    if (old != nullptr) {
      for (Slot& slot : old->slots) {
        // Busy workers are retired by their dispatcher when it gets them back.
        if (slot.worker != nullptr && !slot.busy) {
          slot.worker->CloseChannel();
          retiring_.push_back({std::move(slot.worker), absl::Now() + options_.limits.kill_grace});
        }
      }
    }
    supervisor_wake_ = true;
  }
  Log(base::LogLevel::kInfo, "rule set live",
      {{"version", absl::StrCat(version)}, {"workers", absl::StrCat(n)}});
  return std::move(results[0]);
}

bool WorkerPool::HasIdleLiveWorkerOrNone() const {
  if (stopping_ || current_ == nullptr) return true;
  for (const Slot& slot : current_->slots) {
    if (slot.worker != nullptr && !slot.busy) return true;
  }
  return false;
}

void WorkerPool::MarkSlotDeadLocked(Slot& slot) {
  slot.worker.reset();  // the supervisor replaces it
  if (slot.served) {
    slot.backoff = kInitialBackoff;
    slot.next_attempt = absl::InfinitePast();
  } else {
    // Died before answering anything: the set (or a poison batch) may kill
    // every new worker; do not spin.
    slot.next_attempt = absl::Now() + slot.backoff;
    slot.backoff = std::min(slot.backoff * 2, kMaxBackoff);
    ++replacements_delayed_;
  }
  slot.served = false;
  supervisor_wake_ = true;
}

absl::StatusOr<LiveResponse> WorkerPool::DispatchLive(const internal::WorkerRequest& request,
                                                      int64_t calls,
                                                      const internal::WorkerRequest* overlay,
                                                      int preferred_worker,
                                                      bool retry_after_crash) {
  if (request.has_kv_reply() || request.kind_case() == internal::WorkerRequest::KIND_NOT_SET) {
    return absl::InvalidArgumentError("DispatchLive needs a load, run_tests or evaluation request");
  }
  const absl::Duration budget = Budget(calls);
  bool crashed_once = false;
  std::string first_failure;
  for (;;) {
    std::shared_ptr<Generation> generation;
    size_t index = 0;
    std::shared_ptr<Worker> worker;
    {
      absl::MutexLock lock(&mu_);
      if (!HasIdleLiveWorkerOrNone()) {
        if (waiting_ >= options_.max_waiting) {
          ++rejected_;
          return absl::ResourceExhaustedError(absl::StrCat(
              "all ", workers_, " rule workers are busy and ", waiting_, " requests wait"));
        }
        ++waiting_;
        const bool ready = mu_.AwaitWithDeadline(
            absl::Condition(this, &WorkerPool::HasIdleLiveWorkerOrNone), absl::Now() + budget);
        --waiting_;
        if (!ready) {
          return absl::DeadlineExceededError(
              absl::StrCat("no rule worker became free within ", absl::FormatDuration(budget)));
        }
      }
      if (stopping_) return absl::UnavailableError("worker pool is shutting down");
      if (current_ == nullptr) return absl::FailedPreconditionError("no rule set is live");
      generation = current_;
      const size_t slots = generation->slots.size();
      const size_t preferred =
          preferred_worker >= 0 ? static_cast<size_t>(preferred_worker) % slots : slots;
      if (preferred < slots && generation->slots[preferred].worker != nullptr &&
          !generation->slots[preferred].busy) {
        index = preferred;
      } else {
        for (size_t i = 0; i < slots; ++i) {
          Slot& slot = generation->slots[i];
          if (slot.worker != nullptr && !slot.busy) {
            index = i;
            break;
          }
        }
      }
      Slot& slot = generation->slots[index];
      slot.busy = true;
      worker = slot.worker;
    }

    absl::StatusOr<internal::WorkerResponse> response =
        Exchange(*worker, request, absl::Now() + budget, overlay);
    if (response.ok()) {
      absl::MutexLock lock(&mu_);
      Slot& slot = generation->slots[index];
      slot.busy = false;
      slot.served = true;
      if (generation != current_ || stopping_) {  // retired while we used it
        worker->CloseChannel();
        retiring_.push_back({std::move(slot.worker), absl::Now() + options_.limits.kill_grace});
        supervisor_wake_ = true;
      }
      if (response->has_error()) {
        return absl::FailedPreconditionError(absl::StrCat("rule worker: ", response->error()));
      }
      return LiveResponse{*std::move(response), generation->version};
    }

    WorkerEnd failure = EndFailedWorker(*worker, response.status(), budget);
    {
      absl::MutexLock lock(&mu_);
      Slot& slot = generation->slots[index];
      slot.busy = false;
      if (slot.worker == worker) MarkSlotDeadLocked(slot);
    }
    const std::string context = absl::StrCat(" (rule set version ", generation->version, ")");
    const WorkerFailureKind kind =
        failure.kind == WorkerEnd::kTimeout       ? WorkerFailureKind::kTimeout
        : failure.kind == WorkerEnd::kOutOfMemory ? WorkerFailureKind::kOutOfMemory
        : failure.kind == WorkerEnd::kProtocol    ? WorkerFailureKind::kProtocol
                                                  : WorkerFailureKind::kCrash;
    if (failure.kind == WorkerEnd::kTimeout) {
      return WithFailureKind(absl::DeadlineExceededError(failure.description + context), kind);
    }
    if (!crashed_once && retry_after_crash) {
      crashed_once = true;
      ++retries_;
      continue;
    }
    return WithFailureKind(
        absl::AbortedError(absl::StrCat(failure.description, context,
                                        crashed_once ? "; retried once in a new worker" : "")),
        kind);
  }
}

// Supervision --------------------------------------------------------------------------

void WorkerPool::SupervisorLoop() {
  for (;;) {
    std::vector<std::shared_ptr<Worker>> died;
    std::vector<std::pair<std::shared_ptr<Generation>, size_t>> to_replace;
    {
      absl::MutexLock lock(&mu_);
      mu_.AwaitWithTimeout(absl::Condition(
                               +[](WorkerPool* pool) ABSL_NO_THREAD_SAFETY_ANALYSIS {
                                 return pool->supervisor_wake_ || pool->stopping_;
                               },
                               this),
                           kSupervisorTick);
      supervisor_wake_ = false;
      if (stopping_) return;
      const absl::Time now = absl::Now();
      if (current_ != nullptr) {
        for (size_t i = 0; i < current_->slots.size(); ++i) {
          Slot& slot = current_->slots[i];
          if (slot.worker != nullptr && !slot.busy) {
            // An idle worker has nothing to say: readable means EOF (it
            // died) or garbage; either way it is done.
            pollfd p{slot.worker->fd, POLLIN, 0};
            if (poll(&p, 1, 0) > 0) {
              died.push_back(slot.worker);
              MarkSlotDeadLocked(slot);
            }
          }
          if (slot.worker == nullptr && !slot.replacing && now >= slot.next_attempt) {
            slot.replacing = true;
            to_replace.emplace_back(current_, i);
          }
        }
      }
      // Reap retired workers; SIGKILL those that outstay their grace.
      for (auto it = retiring_.begin(); it != retiring_.end();) {
        if (it->worker->TryReap()) {
          it = retiring_.erase(it);
          continue;
        }
        if (now >= it->kill_at) {
          kill(it->worker->pid, SIGKILL);
          it->kill_at = absl::InfiniteFuture();
        }
        ++it;
      }
    }
    for (auto& worker : died) {
      EndFailedWorker(*worker, absl::UnavailableError("worker closed the channel while idle"),
                      absl::ZeroDuration());
    }
    for (auto& [generation, index] : to_replace) {
      internal::LoadResult result;
      absl::Status failure;
      absl::StatusOr<std::shared_ptr<Worker>> worker =
          StartLoaded(generation->load, &result, &failure);
      if (worker.ok() && HasLoadErrors(result)) {
        Retire(*std::move(worker));
        worker = absl::InternalError("the live rule set no longer loads in a new worker");
      }
      std::string message;
      base::LogFields fields;
      base::LogLevel level = base::LogLevel::kInfo;
      {
        absl::MutexLock lock(&mu_);
        Slot& slot = generation->slots[index];
        slot.replacing = false;
        if (!worker.ok()) {
          ++replacement_failures_;
          slot.next_attempt = absl::Now() + slot.backoff;
          level = base::LogLevel::kError;
          message = "replacing a rule worker failed; retrying";
          fields = {{"error", worker.status().ToString()},
                    {"retry_in", absl::FormatDuration(slot.backoff)}};
          slot.backoff = std::min(slot.backoff * 2, kMaxBackoff);
        } else if (generation != current_ || stopping_) {
          (*worker)->CloseChannel();
          retiring_.push_back({*std::move(worker), absl::Now() + options_.limits.kill_grace});
        } else {
          slot.worker = *std::move(worker);
          // The backoff is reset once the new worker has served a request.
          ++replaced_;
          message = "rule worker replaced";
          fields = {{"version", absl::StrCat(generation->version)},
                    {"worker_pid", absl::StrCat(slot.worker->pid)}};
        }
      }
      if (!message.empty()) Log(level, message, std::move(fields));
    }
  }
}

}  // namespace pantherd::engine
