// A fixed pool of threads for blocking work (RocksDB, later Python calls), so
// that gRPC callback threads never block on disk or on Python.
//
// The queue of waiting tasks is bounded. When it is full, Submit refuses the
// task at once (the caller answers RESOURCE_EXHAUSTED) and the refusal is
// counted; nothing waits unboundedly and nothing is dropped silently.
//
//   Executor pool(4, 1024);
//   if (!pool.Submit([=] { reactor->Finish(DoWork()); })) { ...refused... }
#ifndef PANTHERD_SERVER_EXECUTOR_H_
#define PANTHERD_SERVER_EXECUTOR_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace pantherd::server {

class Executor {
 public:
  // Starts `threads` workers (at least 1) with room for `max_queued` waiting
  // tasks (at least 1).
  Executor(int threads, int max_queued);
  // Runs every task already accepted, then joins the workers.
  ~Executor();

  Executor(const Executor&) = delete;
  Executor& operator=(const Executor&) = delete;

  // Queues `task`. Returns false, without running it, when the queue is full
  // or the executor is shutting down. Thread-safe.
  bool Submit(std::function<void()> task);

  // Stops accepting tasks, runs the ones accepted, and joins the workers.
  // Idempotent. Must not be called from a task.
  void Shutdown();

  // Tasks refused since construction. Thread-safe.
  int64_t rejected() const;
  // Tasks waiting for a thread now, the most that may wait, and the number
  // of threads. Thread-safe.
  int64_t queued() const;
  int64_t queue_capacity() const { return static_cast<int64_t>(max_queued_); }
  int threads() const { return static_cast<int>(workers_.size()); }

 private:
  void WorkerLoop();

  const size_t max_queued_;
  mutable absl::Mutex mu_;
  std::deque<std::function<void()>> queue_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  int64_t rejected_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<std::thread> workers_;
};

}  // namespace pantherd::server

#endif  // PANTHERD_SERVER_EXECUTOR_H_
