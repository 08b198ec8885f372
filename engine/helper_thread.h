// A long-lived thread that lends a hand with a caller's independent items
// while the caller does something else, such as waiting for a worker.
//
//   HelperThread helper;  // one per ingest pipeline
//   std::shared_ptr<HelperThread::Task> task =
//       helper.Submit(n, [&](size_t i) { return Compress(i); });
//   ... evaluate the batch ...
//   PANTHERD_RETURN_IF_ERROR(task->Finish());  // all n items are done
//
// The helper takes items one at a time from the front of the task; Finish
// runs every item not yet taken on the calling thread, then waits for those
// the helper is running. So a caller never waits for the helper to reach
// its task: a busy helper, or a full queue, only means the caller does the
// items itself. This replaces a thread started per batch, whose creation,
// stack faults and teardown cost about as much as the work it took over.
//
// The queue holds at most `max_queued` tasks; Submit on a full queue does
// not queue the task (its items then run in Finish) and counts it in
// inline_tasks().
//
// Thread-safety: Submit, Finish and Cancel may be called from any thread;
// a task's function is called from the helper and from its Finish at the
// same time, once per item, for different items.
#ifndef PANTHERD_ENGINE_HELPER_THREAD_H_
#define PANTHERD_ENGINE_HELPER_THREAD_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"

namespace pantherd::engine {

class HelperThread {
 public:
  // Items of one Submit. Owned jointly by the caller and the helper (the
  // helper may still hold it, idle, after Finish returns).
  class Task {
   public:
    Task(size_t items, std::function<absl::Status(size_t)> fn);

    // Runs the items nobody has taken yet on the calling thread, waits for
    // the items the helper is running, and returns the first error of any
    // item (after an error, items not yet taken are skipped). Call once,
    // from the submitting thread; afterwards the function is never called
    // again, so it may refer to the caller's locals.
    absl::Status Finish();

    // Takes no more items and waits for the helper's running one: for a
    // caller giving up (e.g. its batch failed). Afterwards the function is
    // never called again. Finish after Cancel returns the first error so far.
    void Cancel();

    // Items run by the helper (for tests and figures); final once Finish or
    // Cancel returned.
    size_t helped() const { return helped_.load(); }

   private:
    friend class HelperThread;
    // Takes and runs items until none is left.
    void Work(bool by_helper) ABSL_LOCKS_EXCLUDED(mu_);
    // Waits until every taken item has finished.
    void WaitForTaken() ABSL_LOCKS_EXCLUDED(mu_);

    const size_t items_;
    const std::function<absl::Status(size_t)> fn_;
    std::atomic<size_t> helped_{0};
    absl::Mutex mu_;
    size_t taken_ ABSL_GUARDED_BY(mu_) = 0;      // items 0 .. taken_-1 were taken
    size_t finished_ ABSL_GUARDED_BY(mu_) = 0;   // of them, done
    bool stopped_ ABSL_GUARDED_BY(mu_) = false;  // an error, or Cancel
    absl::Status error_ ABSL_GUARDED_BY(mu_);
  };

  explicit HelperThread(size_t max_queued = 16);
  // Stops the thread after its current item. Tasks still queued are left to
  // their callers' Finish.
  ~HelperThread();

  HelperThread(const HelperThread&) = delete;
  HelperThread& operator=(const HelperThread&) = delete;

  // Queues `items` calls of `fn` (with 0 .. items-1) for the helper; the
  // caller must call Finish (or Cancel) on the returned task.
  std::shared_ptr<Task> Submit(size_t items, std::function<absl::Status(size_t)> fn)
      ABSL_LOCKS_EXCLUDED(mu_);

  // Tasks not queued because the queue was full (their items ran in Finish).
  int64_t inline_tasks() const { return inline_tasks_.load(); }

 private:
  void Loop() ABSL_LOCKS_EXCLUDED(mu_);

  const size_t max_queued_;
  absl::Mutex mu_;
  std::deque<std::shared_ptr<Task>> queue_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::atomic<int64_t> inline_tasks_{0};
  std::thread thread_;
};

}  // namespace pantherd::engine

#endif  // PANTHERD_ENGINE_HELPER_THREAD_H_
