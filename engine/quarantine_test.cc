#include "engine/quarantine.h"

#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace pantherd::engine {
namespace {

const absl::Time kStart = absl::FromUnixSeconds(1772352000);

TEST(PoisonTrackerTest, QuarantinesAtTheThirdFailureWithinTheWindow) {
  PoisonTracker tracker;  // 3 within 1 h
  EXPECT_FALSE(tracker.Quarantines(tracker.Record("R", kStart)));
  EXPECT_FALSE(tracker.Quarantines(tracker.Record("R", kStart + absl::Minutes(20))));
  EXPECT_TRUE(tracker.Quarantines(tracker.Record("R", kStart + absl::Minutes(40))));
}

TEST(PoisonTrackerTest, FailuresOlderThanTheWindowDoNotCount) {
  PoisonTracker tracker;
  EXPECT_EQ(tracker.Record("R", kStart), 1);
  EXPECT_EQ(tracker.Record("R", kStart + absl::Minutes(30)), 2);
  // The first is exactly one hour old: out of the window.
  EXPECT_EQ(tracker.Record("R", kStart + absl::Minutes(60)), 2);
  EXPECT_EQ(tracker.Record("R", kStart + absl::Minutes(200)), 1);
}

TEST(PoisonTrackerTest, RulesAreCountedApartAndForgetRestarts) {
  PoisonTracker tracker(QuarantinePolicy{2, absl::Minutes(5)});
  EXPECT_EQ(tracker.Record("A", kStart), 1);
  EXPECT_EQ(tracker.Record("B", kStart), 1);
  EXPECT_TRUE(tracker.Quarantines(tracker.Record("A", kStart + absl::Seconds(1))));
  tracker.Forget("A");
  EXPECT_EQ(tracker.Record("A", kStart + absl::Seconds(2)), 1);
  EXPECT_EQ(tracker.Record("B", kStart + absl::Seconds(2)), 2);
}

TEST(PoisonTrackerTest, ZeroFailuresNeverQuarantines) {
  PoisonTracker tracker(QuarantinePolicy{0, absl::Hours(1)});
  int count = 0;
  for (int i = 0; i < 10; ++i) count = tracker.Record("R", kStart + absl::Seconds(i));
  EXPECT_EQ(count, 10);
  EXPECT_FALSE(tracker.Quarantines(count));
}

TEST(PoisonTrackerTest, ConcurrentRecordsAreAllCounted) {
  PoisonTracker tracker(QuarantinePolicy{1000, absl::Hours(1)});
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 100; ++i) tracker.Record("R", kStart);
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(tracker.Record("R", kStart), 401);
}

}  // namespace
}  // namespace pantherd::engine
