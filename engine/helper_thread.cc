#include "engine/helper_thread.h"

#include <utility>

namespace pantherd::engine {

HelperThread::Task::Task(size_t items, std::function<absl::Status(size_t)> fn)
    : items_(items), fn_(std::move(fn)) {}

void HelperThread::Task::Work(bool by_helper) {
  for (;;) {
    size_t item;
    {
      absl::MutexLock lock(&mu_);
      if (stopped_ || taken_ >= items_) return;
      item = taken_++;
    }
    absl::Status status = fn_(item);
    if (by_helper) helped_.fetch_add(1);  // before it counts as finished
    absl::MutexLock lock(&mu_);
    ++finished_;
    if (!status.ok() && error_.ok()) {
      error_ = std::move(status);
      stopped_ = true;
    }
  }
}

void HelperThread::Task::WaitForTaken() {
  absl::MutexLock lock(&mu_);
  mu_.Await(absl::Condition(
      +[](Task* t) ABSL_EXCLUSIVE_LOCKS_REQUIRED(t->mu_) { return t->finished_ == t->taken_; },
      this));
}

absl::Status HelperThread::Task::Finish() {
  Work(/*by_helper=*/false);
  WaitForTaken();
  absl::MutexLock lock(&mu_);
  return error_;
}

void HelperThread::Task::Cancel() {
  {
    absl::MutexLock lock(&mu_);
    stopped_ = true;
  }
  WaitForTaken();
}

HelperThread::HelperThread(size_t max_queued)
    : max_queued_(max_queued), thread_([this] { Loop(); }) {}

HelperThread::~HelperThread() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  thread_.join();
}

std::shared_ptr<HelperThread::Task> HelperThread::Submit(size_t items,
                                                         std::function<absl::Status(size_t)> fn) {
  auto task = std::make_shared<Task>(items, std::move(fn));
  absl::MutexLock lock(&mu_);
  if (queue_.size() >= max_queued_) {
    inline_tasks_.fetch_add(1);
  } else {
    queue_.push_back(task);
  }
  return task;
}

void HelperThread::Loop() {
  for (;;) {
    std::shared_ptr<Task> task;
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(
          +[](HelperThread* h)
               ABSL_EXCLUSIVE_LOCKS_REQUIRED(h->mu_) { return h->stopping_ || !h->queue_.empty(); },
          this));
      if (stopping_) return;
      task = std::move(queue_.front());
      queue_.pop_front();
    }
    task->Work(/*by_helper=*/true);
  }
}

}  // namespace pantherd::engine
