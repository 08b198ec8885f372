// Crash safety end to end: pantherd is killed with SIGKILL at random moments
// while a client streams a fixed file of events and, after each restart,
// re-sends every batch that was not acknowledged. Each run must end with
// exactly the alerts of a clean run: none lost, none duplicated, every window
// counted once. Besides the bundled pack, two stateful rules run
// (tests/testdata/crash_rules): one alerts on the second sighting of a
// session, one counts sign-ins with the count in its alerts, so a caching
// write made twice, lost, or made for a re-sent event changes the alerts.
#include <signal.h>

#include <algorithm>
#include <filesystem>
#include <iostream>
#include <memory>
#include <random>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/time_util.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "pantherd/v1/detection_service.grpc.pb.h"
#include "tests/test_util.h"

namespace pantherd::testing {
namespace {

using google::protobuf::util::TimeUtil;

constexpr char kPantherd[] = PANTHERD_BINARY;
constexpr char kPantherctl[] = PANTHERCTL_BINARY;
constexpr char kRulesDir[] = PANTHERD_SOURCE_DIR "/rules";
constexpr char kCrashRulesDir[] = PANTHERD_SOURCE_DIR "/tests/testdata/crash_rules";
// SIGKILLs over all runs, at least.
constexpr int kMinKills = 20;
constexpr int kEvents = 500;
constexpr int kBatchSize = 10;

// The fixed event file: failed and successful Okta sign-ins of a few users
// from a few IPs, spread over four hours and deliberately not in time order,
// so that windows open, fill, expire below threshold and receive late events.
std::vector<std::vector<std::string>> EventBatches(int batch_size = kBatchSize) {
  const absl::Time base = absl::FromUnixSeconds(1772352000);  // 2026-03-01T08:00:00Z
  std::vector<std::vector<std::string>> batches;
  for (int i = 0; i < kEvents; ++i) {
    if (i % batch_size == 0) batches.emplace_back();
    const absl::Time published = base + absl::Minutes((i * 37) % 240) + absl::Seconds(i % 60);
    const bool failed = i % 9 != 0;
    batches.back().push_back(absl::StrFormat(
        R"({"uuid":"crash-%04d","published":"%s","eventType":"user.session.start",)"
        R"("displayMessage":"User login to Okta","severity":"%s",)"
        R"("actor":{"id":"00u%d","type":"User","alternateId":"user%d@example.com","displayName":"U%d"},)"
        R"("client":{"ipAddress":"198.51.100.%d","userAgent":{"rawUserAgent":"curl/8"}},)"
        R"("outcome":{"result":"%s","reason":%s}})",
        i, absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", published, absl::UTCTimeZone()),
        failed ? "WARN" : "INFO", i % 5, i % 5, i % 5, 10 + i % 7, failed ? "FAILURE" : "SUCCESS",
        failed ? R"("INVALID_CREDENTIALS")" : "null"));
  }
  return batches;
}

// An alert as a line of every field a re-run must reproduce (ids included:
// they derive from the rule, dedup string and window).
std::string Canonical(const v1::Alert& a) {
  return absl::StrCat(a.id(), "|", a.type(), "|", a.rule_id(), "|", a.dedup_string(), "|",
                      a.title(), "|", a.severity(), "|", a.event_count(), "|",
                      TimeUtil::ToString(a.window_start()), "|", TimeUtil::ToString(a.window_end()),
                      "|", TimeUtil::ToString(a.first_event_time()), "|",
                      TimeUtil::ToString(a.last_event_time()), "|", a.matched_events_stored());
}

class CrashE2eTest : public ::testing::Test {
 protected:
  // A data directory with the bundled pack installed, copied by every run so
  // that each starts from the same state without re-testing the pack.
  static void SetUpTestSuite() {
    template_dir_ = new TempDir();
    absl::StatusOr<ServerProcess> s =
        ServerProcess::Start(kPantherd, template_dir_->Sub("data"), template_dir_->path(),
                             {"--rules-dir", kRulesDir, "--workers", "1"}, absl::Seconds(120));
    ASSERT_TRUE(s.ok()) << s.status();
    absl::StatusOr<RunResult> upload = RunCommand(s->Ctl(kPantherctl, {"upload", kCrashRulesDir}),
                                                  template_dir_->path(), absl::Seconds(120));
    ASSERT_TRUE(upload.ok()) << upload.status();
    ASSERT_EQ(upload->exit_code, 0) << upload->out << upload->err;
    s->process().Signal(SIGTERM);
    absl::StatusOr<int> code = s->process().Wait(absl::Seconds(30));
    ASSERT_TRUE(code.ok() && *code == 0) << s->Log();
  }
  static void TearDownTestSuite() {
    delete template_dir_;
    template_dir_ = nullptr;
  }

  // Copies the template data directory to a fresh one and returns its path.
  std::string FreshDataDir(const std::string& name) {
    std::string dir = tmp_.Sub(name);
    std::filesystem::copy(template_dir_->Sub("data"), dir,
                          std::filesystem::copy_options::recursive);
    return dir;
  }

  std::unique_ptr<ServerProcess> StartServer(const std::string& data_dir, int workers = 1) {
    absl::StatusOr<ServerProcess> s = ServerProcess::Start(
        kPantherd, data_dir, tmp_.path(), {"--workers", absl::StrCat(workers)}, absl::Seconds(60));
    EXPECT_TRUE(s.ok()) << s.status();
    if (!s.ok()) return nullptr;
    return std::make_unique<ServerProcess>(std::move(*s));
  }

  // Sends batches from `*next` on one stream, advancing `*next` past each
  // acknowledged batch. Returns false when the stream broke.
  bool SendFrom(const ServerProcess& server, const std::vector<std::vector<std::string>>& batches,
                size_t* next) {
    auto stub = v1::DetectionService::NewStub(
        grpc::CreateChannel(server.address(), grpc::InsecureChannelCredentials()));
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", server.bearer());
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(120));
    auto stream = stub->IngestEvents(&ctx);
    bool ok = true;
    while (*next < batches.size()) {
      v1::IngestEventsRequest req;
      req.set_log_type("Okta.SystemLog");
      req.set_batch_id(*next);
      for (const std::string& e : batches[*next]) req.add_events(e);
      v1::IngestEventsResponse resp;
      if (!stream->Write(req) || !stream->Read(&resp)) {
        ok = false;
        break;
      }
      EXPECT_EQ(resp.batch_id(), *next);
      EXPECT_TRUE(resp.rejected().empty());
      // Accepted or already processed before a crash: every event accounted.
      EXPECT_EQ(resp.accepted() + resp.duplicates(), static_cast<int>(batches[*next].size()));
      ++*next;
    }
    stream->WritesDone();
    grpc::Status status = stream->Finish();  // Fails when the server died meanwhile.
    return ok && status.ok();
  }

  std::vector<std::string> AllAlerts(const ServerProcess& server) {
    auto stub = v1::DetectionService::NewStub(
        grpc::CreateChannel(server.address(), grpc::InsecureChannelCredentials()));
    std::vector<std::string> out;
    std::string token;
    do {
      grpc::ClientContext ctx;
      ctx.AddMetadata("authorization", server.bearer());
      v1::ListAlertsRequest req;
      req.mutable_page()->set_page_size(1000);
      req.mutable_page()->set_page_token(token);
      v1::ListAlertsResponse resp;
      grpc::Status s = stub->ListAlerts(&ctx, req, &resp);
      EXPECT_TRUE(s.ok()) << s.error_message();
      if (!s.ok()) break;
      for (const v1::Alert& a : resp.alerts()) out.push_back(Canonical(a));
      token = resp.next_page_token();
    } while (!token.empty());
    std::sort(out.begin(), out.end());
    return out;
  }

  void Stop(ServerProcess& server) {
    server.process().Signal(SIGTERM);
    absl::StatusOr<int> code = server.process().Wait(absl::Seconds(30));
    ASSERT_TRUE(code.ok());
    EXPECT_EQ(*code, 0) << server.Log();
  }

  static TempDir* template_dir_;
  TempDir tmp_;
};

TempDir* CrashE2eTest::template_dir_ = nullptr;

TEST_F(CrashE2eTest, KilledAtRandomMomentsEndsWithExactlyTheAlertsOfACleanRun) {
  const std::vector<std::vector<std::string>> batches = EventBatches();

  // The clean run, with two workers: the crash runs use one, so equal alerts
  // also show that the outcome does not depend on the number of workers.
  std::vector<std::string> clean;
  absl::Duration clean_time;
  {
    std::unique_ptr<ServerProcess> server = StartServer(FreshDataDir("clean"), 2);
    ASSERT_NE(server, nullptr);
    size_t next = 0;
    const absl::Time start = absl::Now();
    ASSERT_TRUE(SendFrom(*server, batches, &next));
    clean_time = absl::Now() - start;
    clean = AllAlerts(*server);
    Stop(*server);
  }
  ASSERT_GE(clean.size(), 5u) << "the event file must produce several alerts";
  int stateful = 0;
  for (const std::string& line : clean) stateful += absl::StrContains(line, "|Crash.");
  ASSERT_GE(stateful, 10) << "the stateful rules must alert several times";
  // The same events in batches large enough to be split by rule between the
  // two workers: the same alerts.
  {
    std::unique_ptr<ServerProcess> server = StartServer(FreshDataDir("split"), 2);
    ASSERT_NE(server, nullptr);
    size_t next = 0;
    ASSERT_TRUE(SendFrom(*server, EventBatches(/*batch_size=*/250), &next));
    EXPECT_EQ(AllAlerts(*server), clean);
    Stop(*server);
  }

  // Runs with kills at random moments of the sending.
  int total_kills = 0;
  for (int run = 0; total_kills < kMinKills && run < 40; ++run) {
    SCOPED_TRACE(absl::StrCat("run ", run));
    std::mt19937 random(1234 + run);
    const int64_t clean_us = absl::ToInt64Microseconds(clean_time);
    const std::string data_dir = FreshDataDir(absl::StrCat("run", run));
    size_t next = 0;
    int kills = 0;
    while (true) {
      std::unique_ptr<ServerProcess> server = StartServer(data_dir);
      ASSERT_NE(server, nullptr);
      if (next >= batches.size() || kills >= 6) {
        // Done sending (or enough kills): finish cleanly and compare.
        if (next < batches.size()) {
          ASSERT_TRUE(SendFrom(*server, batches, &next));
        }
        EXPECT_EQ(AllAlerts(*server), clean);
        Stop(*server);
        break;
      }
      absl::Notification finished;
      const pid_t pid = server->process().pid();
      // A moment within what is left to send (as long as the clean run took
      // for it), so that most starts end in a kill whatever the machine's
      // speed.
      const int64_t remaining_us = clean_us * static_cast<int64_t>(batches.size() - next) /
                                   static_cast<int64_t>(batches.size());
      const absl::Duration delay =
          absl::Microseconds(std::uniform_int_distribution<int64_t>(0, remaining_us)(random));
      bool killed = false;
      std::thread killer([&] {
        if (!finished.WaitForNotificationWithTimeout(delay)) {
          kill(pid, SIGKILL);
          killed = true;
        }
      });
      const bool sent = SendFrom(*server, batches, &next);
      finished.Notify();
      killer.join();
      if (killed) {
        ++kills;
        absl::StatusOr<int> code = server->process().Wait(absl::Seconds(30));
        ASSERT_TRUE(code.ok()) << code.status();
        EXPECT_EQ(*code, 128 + SIGKILL);
      } else {
        ASSERT_TRUE(sent) << server->Log();
        // Sending finished before the kill was due: the next start compares.
        Stop(*server);
      }
    }
    total_kills += kills;
    std::cout << "run " << run << ": killed " << kills << " times, " << clean.size()
              << " alerts as in the clean run\n";
  }
  // The runs did kill pantherd mid-stream, at least kMinKills times.
  EXPECT_GE(total_kills, kMinKills);
}

}  // namespace
}  // namespace pantherd::testing
