#include "engine/helper_thread.h"

#include <atomic>
#include <memory>
#include <thread>
#include <vector>

#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"

namespace pantherd::engine {
namespace {

// Occupies the helper with a one-item task until release() is called.
class BusyHelper {
 public:
  explicit BusyHelper(HelperThread& helper)
      : task_(helper.Submit(1, [this](size_t) {
          entered_.Notify();
          release_.WaitForNotification();
          return absl::OkStatus();
        })) {
    entered_.WaitForNotification();  // the helper, not this thread, runs it
  }
  ~BusyHelper() {
    release();
    EXPECT_TRUE(task_->Finish().ok());
    EXPECT_EQ(task_->helped(), 1u);
  }
  void release() {
    if (!release_.HasBeenNotified()) release_.Notify();
  }
  HelperThread::Task& task() { return *task_; }

 private:
  absl::Notification entered_;
  absl::Notification release_;
  std::shared_ptr<HelperThread::Task> task_;
};

TEST(HelperThreadTest, EveryItemRunsOnceSharedBetweenTheHelperAndTheCaller) {
  HelperThread helper;
  constexpr size_t kItems = 2000;
  std::vector<std::atomic<int>> runs(kItems);
  std::shared_ptr<HelperThread::Task> task = helper.Submit(kItems, [&](size_t i) {
    runs[i].fetch_add(1);
    absl::SleepFor(absl::Microseconds(20));
    return absl::OkStatus();
  });
  // The caller's "evaluation": long enough for the helper to start.
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (task->helped() == 0 && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(1));
  ASSERT_TRUE(task->Finish().ok());
  for (size_t i = 0; i < kItems; ++i) EXPECT_EQ(runs[i].load(), 1) << "item " << i;
  EXPECT_GT(task->helped(), 0u);
  EXPECT_LT(task->helped(), kItems);  // the caller took the rest
  EXPECT_EQ(helper.inline_tasks(), 0);
}

TEST(HelperThreadTest, ACallerNeverWaitsForABusyHelper) {
  HelperThread helper;
  BusyHelper busy(helper);
  std::atomic<int> ran{0};
  std::shared_ptr<HelperThread::Task> task = helper.Submit(100, [&](size_t) {
    ran.fetch_add(1);
    return absl::OkStatus();
  });
  ASSERT_TRUE(task->Finish().ok());  // would hang if it waited for the helper
  EXPECT_EQ(ran.load(), 100);
  EXPECT_EQ(task->helped(), 0u);
}

TEST(HelperThreadTest, TheFirstErrorStopsTheTaskAndIsReturned) {
  HelperThread helper;
  BusyHelper busy(helper);  // so that only the caller runs items: exact counts
  std::atomic<int> ran{0};
  std::shared_ptr<HelperThread::Task> task = helper.Submit(100, [&](size_t i) {
    ran.fetch_add(1);
    if (i == 10) return absl::InternalError("item 10 failed");
    if (i == 20) return absl::InternalError("item 20 failed");
    return absl::OkStatus();
  });
  absl::Status status = task->Finish();
  EXPECT_TRUE(absl::IsInternal(status)) << status;
  EXPECT_EQ(status.message(), "item 10 failed");
  EXPECT_EQ(ran.load(), 11);  // items 0..10, none after the error
}

TEST(HelperThreadTest, AFullQueueLeavesTheTaskToItsCaller) {
  HelperThread helper(/*max_queued=*/1);
  BusyHelper busy(helper);
  std::atomic<int> ran{0};
  auto count = [&](size_t) {
    ran.fetch_add(1);
    return absl::OkStatus();
  };
  std::shared_ptr<HelperThread::Task> queued = helper.Submit(10, count);
  EXPECT_EQ(helper.inline_tasks(), 0);
  std::shared_ptr<HelperThread::Task> not_queued = helper.Submit(10, count);
  EXPECT_EQ(helper.inline_tasks(), 1);
  ASSERT_TRUE(not_queued->Finish().ok());
  ASSERT_TRUE(queued->Finish().ok());
  EXPECT_EQ(ran.load(), 20);
  // The helper, released, finds the queued task finished and runs nothing.
  busy.release();
  absl::SleepFor(absl::Milliseconds(20));
  EXPECT_EQ(queued->helped(), 0u);
  EXPECT_EQ(ran.load(), 20);
}

TEST(HelperThreadTest, CancelWaitsForTheRunningItemAndTakesNoMore) {
  HelperThread helper;
  std::atomic<int> ran{0};
  absl::Notification entered;
  absl::Notification release;
  std::shared_ptr<HelperThread::Task> task = helper.Submit(1000, [&](size_t i) {
    ran.fetch_add(1);
    if (i == 0) {
      entered.Notify();
      release.WaitForNotification();
    }
    return absl::OkStatus();
  });
  entered.WaitForNotification();  // the helper is in item 0
  std::atomic<bool> cancelled{false};
  std::thread canceller([&] {
    task->Cancel();
    cancelled = true;
  });
  absl::SleepFor(absl::Milliseconds(50));
  EXPECT_FALSE(cancelled.load());  // item 0 is still running
  release.Notify();
  canceller.join();
  EXPECT_TRUE(cancelled.load());
  EXPECT_EQ(ran.load(), 1);
  EXPECT_EQ(task->helped(), 1u);
  EXPECT_TRUE(task->Finish().ok());  // nothing left to run, no error
  EXPECT_EQ(ran.load(), 1);
}

TEST(HelperThreadTest, DestroyingTheHelperLeavesQueuedTasksToTheirCallers) {
  std::atomic<int> ran{0};
  std::shared_ptr<HelperThread::Task> task;
  {
    HelperThread helper;
    BusyHelper busy(helper);
    task = helper.Submit(5, [&](size_t) {
      ran.fetch_add(1);
      return absl::OkStatus();
    });
    ASSERT_TRUE(task->Finish().ok());
  }  // joins the helper without hanging on the queued task
  EXPECT_EQ(ran.load(), 5);
}

}  // namespace
}  // namespace pantherd::engine
