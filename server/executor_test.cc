#include "server/executor.h"

#include <atomic>

#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"

namespace pantherd::server {
namespace {

TEST(ExecutorTest, RunsEveryAcceptedTaskBeforeShutdownReturns) {
  std::atomic<int> ran{0};
  Executor pool(2, 100);
  for (int i = 0; i < 50; ++i) ASSERT_TRUE(pool.Submit([&] { ran++; }));
  pool.Shutdown();
  EXPECT_EQ(ran.load(), 50);
  EXPECT_EQ(pool.rejected(), 0);
}

TEST(ExecutorTest, RefusesAndCountsWhenQueueIsFull) {
  absl::Notification release;
  absl::Notification started;
  Executor pool(1, 2);
  ASSERT_TRUE(pool.Submit([&] {
    started.Notify();
    release.WaitForNotification();
  }));
  started.WaitForNotification();  // The only worker is now busy.
  EXPECT_TRUE(pool.Submit([] {}));
  EXPECT_TRUE(pool.Submit([] {}));
  EXPECT_FALSE(pool.Submit([] {}));  // Queue holds 2.
  EXPECT_FALSE(pool.Submit([] {}));
  EXPECT_EQ(pool.rejected(), 2);
  release.Notify();
  pool.Shutdown();
}

TEST(ExecutorTest, RefusesAfterShutdown) {
  Executor pool(1, 10);
  pool.Shutdown();
  EXPECT_FALSE(pool.Submit([] {}));
  EXPECT_EQ(pool.rejected(), 1);
}

}  // namespace
}  // namespace pantherd::server
