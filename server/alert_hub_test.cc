#include "server/alert_hub.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <atomic>
#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/time_util.h"
#include "gtest/gtest.h"
#include "pantherd/v1/detection_service.grpc.pb.h"
#include "store/store.h"
#include "tests/test_util.h"

namespace pantherd::server {
namespace {

using google::protobuf::util::TimeUtil;
using ::testing::HasSubstr;

const absl::Time kBase = absl::FromUnixSeconds(1709287200);

class HubService final : public v1::DetectionService::CallbackService {
 public:
  explicit HubService(AlertHub* hub) : hub_(hub) {}
  grpc::ServerWriteReactor<v1::StreamAlertsResponse>* StreamAlerts(
      grpc::CallbackServerContext* ctx, const v1::StreamAlertsRequest* req) override {
    return hub_->StartStream(ctx, req);
  }

 private:
  AlertHub* hub_;
};

// A client stream read on its own thread; `gate` false pauses reading.
class Sub {
 public:
  Sub(v1::DetectionService::Stub* stub, const v1::StreamAlertsRequest& req, bool reading = true)
      : reading_(reading) {
    reader_ = stub->StreamAlerts(&ctx_, req);
    thread_ = std::thread([this] {
      v1::StreamAlertsResponse r;
      while (true) {
        {
          absl::MutexLock lock(&mu_);
          mu_.Await(absl::Condition(
              +[](Sub* s) { return s->reading_ || s->stop_; }, this));
          if (stop_) break;
        }
        if (!reader_->Read(&r)) break;
        absl::MutexLock lock(&mu_);
        responses_.push_back(r);
      }
      grpc::Status st = reader_->Finish();
      absl::MutexLock lock(&mu_);
      status_ = st;
      ended_ = true;
    });
  }
  ~Sub() {
    Cancel();
    thread_.join();
  }
  void Resume() {
    absl::MutexLock lock(&mu_);
    reading_ = true;
  }
  void Cancel() {
    {
      absl::MutexLock lock(&mu_);
      stop_ = true;
    }
    ctx_.TryCancel();
  }
  // The change sequences received, once there are at least `n` (or timeout).
  std::vector<uint64_t> WaitChanges(size_t n, absl::Duration timeout = absl::Seconds(20)) {
    absl::MutexLock lock(&mu_);
    auto enough = [&] { return Changes().size() >= n || ended_; };
    const absl::Time deadline = absl::Now() + timeout;
    while (!enough() && absl::Now() < deadline)
      mu_.AwaitWithTimeout(absl::Condition(&ended_), absl::Milliseconds(10));
    return Changes();
  }
  std::vector<v1::StreamAlertsResponse> Responses() {
    absl::MutexLock lock(&mu_);
    return responses_;
  }
  grpc::Status WaitEnd(absl::Duration timeout = absl::Seconds(20)) {
    absl::MutexLock lock(&mu_);
    mu_.AwaitWithDeadline(absl::Condition(&ended_), absl::Now() + timeout);
    return ended_ ? status_ : grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED, "test timeout");
  }

 private:
  std::vector<uint64_t> Changes() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    std::vector<uint64_t> out;
    for (const auto& r : responses_) {
      if (r.has_change()) out.push_back(r.change().sequence());
    }
    return out;
  }

  grpc::ClientContext ctx_;
  std::unique_ptr<grpc::ClientReader<v1::StreamAlertsResponse>> reader_;
  absl::Mutex mu_;
  bool reading_ ABSL_GUARDED_BY(mu_);
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  bool ended_ ABSL_GUARDED_BY(mu_) = false;
  grpc::Status status_ ABSL_GUARDED_BY(mu_);
  std::vector<v1::StreamAlertsResponse> responses_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;
};

std::vector<uint64_t> Range(uint64_t from, uint64_t to) {
  std::vector<uint64_t> v;
  for (uint64_t i = from; i <= to; ++i) v.push_back(i);
  return v;
}

class AlertHubTest : public ::testing::Test {
 protected:
  void Start(AlertHubOptions hub_options = {}, engine::AlertEngineOptions eo = {}) {
    auto s = store::Store::Open(dir_.Sub("data"), {});
    ASSERT_TRUE(s.ok()) << s.status();
    store_ = *std::move(s);
    eo.now = [this] { return absl::FromUnixMicros(now_us_.load()); };
    engine_ = std::make_unique<engine::AlertEngine>(store_.get(), eo);
    executor_ = std::make_unique<Executor>(2, 256);
    hub_options.now = eo.now;
    hub_ = std::make_unique<AlertHub>(engine_.get(), executor_.get(), hub_options);
    service_ = std::make_unique<HubService>(hub_.get());
    grpc::ServerBuilder b;
    int port = 0;
    b.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    b.RegisterService(service_.get());
    server_ = b.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    channel_ =
        grpc::CreateChannel(absl::StrCat("127.0.0.1:", port), grpc::InsecureChannelCredentials());
    stub_ = v1::DetectionService::NewStub(channel_);
  }
  void TearDown() override {
    if (hub_) hub_->Shutdown();
    if (server_) server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
    if (executor_) executor_->Shutdown();
    hub_.reset();
  }

  // Applies `n` events, each creating one alert of `rule`, and publishes.
  std::vector<v1::AlertChange> Produce(int n, const std::string& rule = "r1",
                                       v1::Severity sev = v1::SEVERITY_HIGH, bool publish = true,
                                       size_t json_bytes = 2) {
    std::vector<engine::EventResult> events;
    for (int i = 0; i < n; ++i) {
      engine::EventResult e;
      e.event_id = absl::StrCat("ev", counter_++);
      e.log_type = "Okta.SystemLog";
      e.event_time = kBase;
      e.event_json = json_bytes <= 2
                         ? std::string("{}")
                         : absl::StrCat(R"({"p":")", std::string(json_bytes - 8, 'x'), R"("})");
      engine::RuleMatch m;
      m.rule_id = rule;
      m.dedup_string = e.event_id;
      m.severity = sev;
      e.matches.push_back(m);
      events.push_back(e);
    }
    auto out = engine_->ApplyBatch(events);
    EXPECT_TRUE(out.ok()) << out.status();
    if (!out.ok()) return {};
    if (publish) {
      const absl::Time t0 = absl::Now();
      hub_->Publish(out->changes);
      max_publish_ = std::max(max_publish_, absl::Now() - t0);
    }
    return out->changes;
  }

  // Waits until the hub has `n` subscribers.
  void WaitSubscribers(int64_t n) {
    ASSERT_TRUE(pantherd::testing::WaitUntil([&] { return hub_->stats().subscribers >= n; },
                                             absl::Seconds(10), "the subscribers"));
    ASSERT_EQ(hub_->stats().subscribers, n);
  }

  // Waits until the hub has `n` subscribers, each done with its replay (live).
  void WaitLive(int64_t n) {
    ASSERT_TRUE(pantherd::testing::WaitUntil(
        [&] {
          const AlertHubStats stats = hub_->stats();
          if (stats.subscribers != n) return false;
          for (const AlertHubStats::Subscriber& s : stats.backlogs) {
            if (s.catching_up) return false;
          }
          return true;
        },
        absl::Seconds(10), absl::StrCat(n, " live subscribers")));
  }

  pantherd::testing::TempDir dir_;
  std::atomic<int64_t> now_us_{absl::ToUnixMicros(kBase + absl::Minutes(1))};
  int counter_ = 0;
  absl::Duration max_publish_;  // the longest single Publish call
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<engine::AlertEngine> engine_;
  std::unique_ptr<Executor> executor_;
  std::unique_ptr<AlertHub> hub_;
  std::unique_ptr<HubService> service_;
  std::unique_ptr<grpc::Server> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::DetectionService::Stub> stub_;
};

v1::StreamAlertsRequest FromSeq(uint64_t n) {
  v1::StreamAlertsRequest r;
  r.set_start_after_sequence(n);
  return r;
}

TEST_F(AlertHubTest, TwoSubscribersReceiveEveryChangeLive) {
  Start();
  Produce(3, "r1", v1::SEVERITY_HIGH, /*publish=*/false);  // before: not streamed
  Sub a(stub_.get(), {}), b(stub_.get(), {});
  WaitLive(2);  // the (empty) replays have finished
  Produce(5);
  EXPECT_EQ(a.WaitChanges(5), Range(4, 8));
  EXPECT_EQ(b.WaitChanges(5), Range(4, 8));
  const AlertHubStats stats = hub_->stats();
  EXPECT_GE(stats.delivered, 10);
  EXPECT_EQ(stats.published, 5);  // the three unpublished changes are not counted
  ASSERT_EQ(stats.backlogs.size(), 2u);
  for (const AlertHubStats::Subscriber& s : stats.backlogs) EXPECT_FALSE(s.catching_up);
}

TEST_F(AlertHubTest, FiltersBySeverityAndRule) {
  Start();
  v1::StreamAlertsRequest high = FromSeq(0);
  high.set_min_severity(v1::SEVERITY_HIGH);
  v1::StreamAlertsRequest rule2 = FromSeq(0);
  rule2.add_rule_ids("r2");
  Produce(2, "r1", v1::SEVERITY_LOW);       // 1,2
  Produce(2, "r2", v1::SEVERITY_CRITICAL);  // 3,4
  Sub a(stub_.get(), high), b(stub_.get(), rule2);
  WaitSubscribers(2);
  Produce(1, "r1", v1::SEVERITY_HIGH);  // 5
  Produce(1, "r2", v1::SEVERITY_INFO);  // 6
  Produce(1, "r1", v1::SEVERITY_INFO);  // 7 (nobody)
  EXPECT_EQ(a.WaitChanges(3), (std::vector<uint64_t>{3, 4, 5}));
  EXPECT_EQ(b.WaitChanges(3), (std::vector<uint64_t>{3, 4, 6}));
  // Absence: nothing else arrives (change 7 matches neither filter) within
  // 300 ms.
  EXPECT_EQ(a.WaitChanges(4, absl::Milliseconds(300)).size(), 3u);
  EXPECT_EQ(b.WaitChanges(4, absl::Milliseconds(1)).size(), 3u);
}

TEST_F(AlertHubTest, InvalidRequestNamesTheField) {
  Start();
  v1::StreamAlertsRequest r;
  r.set_min_severity(static_cast<v1::Severity>(42));
  Sub a(stub_.get(), r);
  grpc::Status st = a.WaitEnd();
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(st.error_message(), HasSubstr("min_severity"));
}

TEST_F(AlertHubTest, ResumeWhilePublishingHasNoGapAndNoDuplicate) {
  AlertHubOptions o;
  o.page_size = 7;
  Start(o);
  Produce(100);  // 1..100, in the store
  std::atomic<bool> stop{false};
  std::thread publisher([&] {
    for (int i = 0; i < 50 && !stop; ++i) Produce(4);  // 101..300, concurrently
  });
  Sub a(stub_.get(), FromSeq(40));
  publisher.join();
  EXPECT_EQ(a.WaitChanges(260), Range(41, 300));
  Produce(1);
  EXPECT_EQ(a.WaitChanges(261), Range(41, 301));
}

TEST_F(AlertHubTest, StartTimeReplaysFromThatTime) {
  Start();
  Produce(3);  // 1..3 at +1 min
  now_us_ = absl::ToUnixMicros(kBase + absl::Minutes(10));
  Produce(2);  // 4,5 at +10 min
  v1::StreamAlertsRequest r;
  *r.mutable_start_time() =
      TimeUtil::MicrosecondsToTimestamp(absl::ToUnixMicros(kBase + absl::Minutes(5)));
  Sub a(stub_.get(), r);
  WaitSubscribers(1);
  Produce(1);
  EXPECT_EQ(a.WaitChanges(3), Range(4, 6));
}

TEST_F(AlertHubTest, SlowSubscriberDoesNotBlockPublishAndCatchesUp) {
  AlertHubOptions o;
  o.buffer_capacity = 16;
  o.page_size = 64;
  Start(o);
  Sub fast(stub_.get(), FromSeq(0));
  Sub slow(stub_.get(), FromSeq(0), /*reading=*/false);
  WaitSubscribers(2);
  for (int i = 0; i < 60; ++i) Produce(50);  // 3000 changes
  EXPECT_EQ(fast.WaitChanges(3000), Range(1, 3000));
  EXPECT_GT(hub_->stats().dropped_to_catch_up, 0);
  EXPECT_GT(hub_->stats().catch_ups, 0);
  // The stalled subscriber's backlog stays bounded: its buffer plus one page.
  const AlertHubStats stats = hub_->stats();
  ASSERT_EQ(stats.backlogs.size(), 2u);
  for (const AlertHubStats::Subscriber& s : stats.backlogs) EXPECT_LE(s.backlog, 16 + 64);
  // Publish only queues: it never waits for the stalled subscriber.
  EXPECT_LT(max_publish_, absl::Milliseconds(500));
  slow.Resume();
  EXPECT_EQ(slow.WaitChanges(3000), Range(1, 3000));
  Produce(2);
  EXPECT_EQ(slow.WaitChanges(3002), Range(1, 3002));
}

TEST_F(AlertHubTest, StalledSubscriberIsBoundedInBytesNotJustCount) {
  // Each change carries a 64 KiB sample twice (sample_event_json and its
  // matched event): about 128 KiB. The count caps (1024, 256) alone would let
  // a stalled subscriber hold all 100 changes (12.5 MiB).
  AlertHubOptions o;
  o.buffer_bytes = size_t{1} << 20;
  o.page_bytes = size_t{512} << 10;
  Start(o);
  constexpr size_t kEventBytes = size_t{1} << 20;  // cut to 64 KiB when stored
  size_t change_bytes = 0;
  for (const v1::AlertChange& c : Produce(40, "r1", v1::SEVERITY_HIGH, true, kEventBytes)) {
    change_bytes = std::max(change_bytes, c.ByteSizeLong());
  }
  ASSERT_GT(change_bytes, size_t{128} << 10);
  ASSERT_LT(change_bytes, size_t{140} << 10);
  // One more change than a page holds, plus the change being written.
  const int64_t catch_up_bound = static_cast<int64_t>(o.page_bytes + 2 * change_bytes);
  const int64_t bound = static_cast<int64_t>(o.buffer_bytes + o.page_bytes + 2 * change_bytes);

  Sub slow(stub_.get(), FromSeq(0), /*reading=*/false);
  Sub fast(stub_.get(), FromSeq(0));
  WaitSubscribers(2);
  EXPECT_EQ(fast.WaitChanges(40), Range(1, 40));
  // Catching up, the stalled reader holds one byte-bounded page.
  AlertHubStats stats = hub_->stats();
  for (const AlertHubStats::Subscriber& b : stats.backlogs) {
    EXPECT_LE(b.backlog_bytes, catch_up_bound);
  }
  for (int i = 0; i < 12; ++i) Produce(5, "r1", v1::SEVERITY_HIGH, true, kEventBytes);
  EXPECT_EQ(fast.WaitChanges(100), Range(1, 100));
  stats = hub_->stats();
  ASSERT_EQ(stats.backlogs.size(), 2u);
  int64_t largest = 0;
  for (const AlertHubStats::Subscriber& b : stats.backlogs) {
    EXPECT_LE(b.backlog_bytes, bound);
    largest = std::max(largest, b.backlog_bytes);
  }
  std::cout << "stalled subscriber backlog: " << largest << " bytes (bound " << bound
            << "; 100 changes of " << change_bytes << " bytes)" << std::endl;
  EXPECT_GT(stats.byte_overflows, 0);
  EXPECT_GT(stats.dropped_to_catch_up, 0);
  EXPECT_LT(max_publish_, absl::Milliseconds(500));
  // Nothing is lost: the stalled subscriber re-reads what was dropped.
  slow.Resume();
  EXPECT_EQ(slow.WaitChanges(100), Range(1, 100));
}

TEST_F(AlertHubTest, GapWhenStartIsOlderThanRetained) {
  engine::AlertEngineOptions eo;
  eo.alert_log_retention = absl::Hours(1);
  Start({}, eo);
  Produce(5);  // 1..5 at +1 min
  now_us_ = absl::ToUnixMicros(kBase + absl::Hours(3));
  Produce(2);  // 6,7
  auto purged = engine_->PurgeExpired();
  ASSERT_TRUE(purged.ok()) << purged.status();
  ASSERT_EQ(purged->log_entries, 5);
  Sub a(stub_.get(), FromSeq(2));
  EXPECT_EQ(a.WaitChanges(2), Range(6, 7));
  auto rs = a.Responses();
  ASSERT_FALSE(rs.empty());
  ASSERT_TRUE(rs[0].has_gap());
  EXPECT_EQ(rs[0].gap().from_sequence(), 3u);
  EXPECT_EQ(rs[0].gap().to_sequence(), 5u);
  EXPECT_EQ(hub_->stats().gaps, 1);
  Sub b(stub_.get(), FromSeq(0));  // 0: from the oldest retained, no gap
  EXPECT_EQ(b.WaitChanges(2), Range(6, 7));
  EXPECT_FALSE(b.Responses()[0].has_gap());
}

TEST_F(AlertHubTest, HeartbeatsWhenIdle) {
  AlertHubOptions o;
  o.heartbeat_interval = absl::Milliseconds(50);
  Start(o);
  // Heartbeat times follow the injected clock; idleness too, so move it.
  std::atomic<bool> stop{false};
  std::thread clock([&] {
    while (!stop) {
      now_us_ += 20000;
      absl::SleepFor(absl::Milliseconds(20));
    }
  });
  Produce(2);
  Sub a(stub_.get(), {});
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  int beats = 0;
  while (absl::Now() < deadline && beats < 2) {
    beats = 0;
    for (const auto& r : a.Responses()) {
      if (r.has_heartbeat()) {
        ++beats;
        EXPECT_EQ(r.heartbeat().latest_sequence(), 2u);
      }
    }
    absl::SleepFor(absl::Milliseconds(10));
  }
  stop = true;
  clock.join();
  EXPECT_GE(beats, 2);
}

TEST_F(AlertHubTest, ShutdownEndsStreamsWithUnavailable) {
  Start();
  Sub a(stub_.get(), FromSeq(0));
  Produce(3);
  EXPECT_EQ(a.WaitChanges(3), Range(1, 3));
  hub_->Shutdown();
  grpc::Status st = a.WaitEnd();
  EXPECT_EQ(st.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_THAT(st.error_message(), HasSubstr("resume after sequence 3"));
  Sub b(stub_.get(), {});
  EXPECT_EQ(b.WaitEnd().error_code(), grpc::StatusCode::UNAVAILABLE);
}

TEST_F(AlertHubTest, ClientCancelUnregisters) {
  Start();
  {
    Sub a(stub_.get(), {});
    WaitSubscribers(1);
  }
  EXPECT_TRUE(pantherd::testing::WaitUntil([&] { return hub_->stats().subscribers == 0; },
                                           absl::Seconds(10), "the subscriber to unregister"));
  Produce(2);  // nobody to deliver to
}

}  // namespace
}  // namespace pantherd::server
