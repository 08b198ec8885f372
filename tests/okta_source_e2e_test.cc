// The Okta source end to end: the real pantherd (with rule workers) polls the
// fake Okta org (a real HTTP server on 127.0.0.1), driven by the real
// pantherctl.
#include <signal.h>

#include <fstream>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "pantherd/v1/detection_service.grpc.pb.h"
#include "tests/fake_okta.h"
#include "tests/test_util.h"

namespace pantherd::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kPantherd[] = PANTHERD_BINARY;
constexpr char kPantherctl[] = PANTHERCTL_BINARY;
constexpr char kRulesDir[] = PANTHERD_SOURCE_DIR "/rules";
constexpr char kToken[] = "00okta-e2e-SECRET-token";

class OktaSourceE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    FakeOkta::Options options;
    options.token = kToken;
    options.page_cap = 25;
    absl::StatusOr<std::unique_ptr<FakeOkta>> fake = FakeOkta::Start(options);
    ASSERT_TRUE(fake.ok()) << fake.status();
    fake_ = std::move(*fake);
    WriteFile("token", kToken);
    WriteFile("bad-token", "00not-the-right-token\n");
  }

  void WriteFile(const std::string& name, const std::string& content) {
    std::ofstream(tmp_.Sub(name)) << content;
  }

  void Start(std::vector<std::string> extra = {}) {
    extra.insert(extra.end(),
                 {"--workers", "1", "--source-retry-initial-ms", "50", "--source-retry-max-seconds",
                  "1", "--source-error-retry-seconds", "1", "--source-http-timeout-seconds", "2"});
    absl::StatusOr<ServerProcess> s =
        ServerProcess::Start(kPantherd, tmp_.Sub("data"), tmp_.path(), extra, absl::Seconds(60));
    ASSERT_TRUE(s.ok()) << s.status();
    server_ = std::make_unique<ServerProcess>(std::move(*s));
    stub_ = v1::DetectionService::NewStub(
        grpc::CreateChannel(server_->address(), grpc::InsecureChannelCredentials()));
  }

  RunResult Ctl(std::vector<std::string> args) {
    args = server_->Ctl(kPantherctl, args);
    absl::StatusOr<RunResult> r = RunCommand(args, tmp_.path(), absl::Seconds(30));
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : RunResult();
  }

  v1::Source Source(const std::string& label) {
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", server_->bearer());
    v1::ListSourcesResponse resp;
    grpc::Status s = stub_->ListSources(&ctx, v1::ListSourcesRequest(), &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    for (const v1::Source& source : resp.sources()) {
      if (source.label() == label) return source;
    }
    return v1::Source();
  }

  bool WaitForSource(const std::string& label, const std::function<bool(const v1::Source&)>& done,
                     absl::Duration timeout = absl::Seconds(20)) {
    const absl::Time deadline = absl::Now() + timeout;
    while (absl::Now() < deadline) {
      if (done(Source(label))) return true;
      absl::SleepFor(absl::Milliseconds(50));
    }
    return false;
  }

  std::vector<v1::Alert> Alerts() { return ListAlerts(*stub_, server_->bearer()); }

  TempDir tmp_;
  std::unique_ptr<FakeOkta> fake_;
  std::unique_ptr<ServerProcess> server_;
  std::unique_ptr<v1::DetectionService::Stub> stub_;
};

// A new user's story: their Okta org sees a burst of failed sign-ins for
// admin; they add the org as a source and the bundled brute-force rule's
// CRITICAL alert appears on `alerts tail`.
TEST_F(OktaSourceE2eTest, FailedLoginsForAdminInOktaBecomeACriticalAlertOnTail) {
  const absl::Time now = absl::Now();
  fake_->AddEvent(OktaLogout("story-0", "jane.doe@acme.com", now - absl::Minutes(20)));
  for (int i = 1; i <= 6; ++i) {
    fake_->AddEvent(OktaFailedLogin(absl::StrCat("story-", i), "admin", "203.0.113.9",
                                    now - absl::Minutes(10) + absl::Seconds(i)));
  }
  Start({"--rules-dir", kRulesDir});
  absl::StatusOr<Process> tail =
      Process::Start(server_->Ctl(kPantherctl, {"alerts", "tail", "--count", "1"}),
                     tmp_.Sub("tail.out"), tmp_.Sub("tail.err"));
  ASSERT_TRUE(tail.ok()) << tail.status();
  ASSERT_TRUE(WaitForSubscribers(*server_, 1)) << ReadFileOrEmpty(tmp_.Sub("tail.err"));

  RunResult added =
      Ctl({"sources", "add", "okta", "--label", "prod", "--domain", "acme.okta.com", "--token-file",
           tmp_.Sub("token"), "--interval", "1s", "--base-url", fake_->base_url()});
  ASSERT_EQ(added.exit_code, 0) << added.err;
  EXPECT_THAT(added.out, HasSubstr("prod"));
  EXPECT_THAT(added.out, HasSubstr("ACTIVE"));

  absl::StatusOr<int> code = tail->Wait(absl::Seconds(30));
  ASSERT_TRUE(code.ok()) << code.status() << server_->Log();
  EXPECT_EQ(*code, 0) << ReadFileOrEmpty(tmp_.Sub("tail.err"));
  const std::string streamed = ReadFileOrEmpty(tmp_.Sub("tail.out"));
  EXPECT_THAT(streamed, HasSubstr("Multiple Failed Logins for admin"));
  EXPECT_THAT(streamed, HasSubstr("CRITICAL"));

  ASSERT_TRUE(WaitForSource("prod", [](const v1::Source& s) { return s.events_ingested() == 7; }));
  RunResult list = Ctl({"sources", "list"});
  ASSERT_EQ(list.exit_code, 0) << list.err;
  EXPECT_THAT(list.out, HasSubstr("prod"));
  EXPECT_THAT(list.out, HasSubstr("ACTIVE"));
  EXPECT_THAT(list.out, HasSubstr("acme.okta.com"));
  RunResult json = Ctl({"--output", "json", "sources", "list"});
  EXPECT_THAT(json.out, HasSubstr("\"eventsIngested\": 7,"));

  // The token went to Okta and nowhere else.
  EXPECT_EQ(fake_->requests().at(0).authorization, absl::StrCat("SSWS ", kToken));
  EXPECT_THAT(added.out + list.out + json.out, Not(HasSubstr(kToken)));
  EXPECT_THAT(server_->Log(), Not(HasSubstr(kToken)));
  EXPECT_THAT(server_->Log(), HasSubstr("source added"));
  server_->process().Signal(SIGTERM);
  absl::StatusOr<int> stopped = server_->process().Wait(absl::Seconds(30));
  ASSERT_TRUE(stopped.ok());
  EXPECT_EQ(*stopped, 0) << server_->Log();
  EXPECT_THAT(server_->Log(), Not(HasSubstr(kToken)));
}

// Faults on every side: a bad token, 429 storms, 500s, timeouts, cut-off and
// malformed pages, late events, and pantherd killed with SIGKILL mid-page
// and restarted. A catch-all rule counts every evaluated event on one alert:
// the count must equal the events Okta holds, with no duplicate skipped
// (nothing was evaluated twice into the store).
TEST_F(OktaSourceE2eTest, EveryServedEventIsEvaluatedExactlyOnceThroughFaultsAndSigkill) {
  Start();
  {
    v1::UploadRuleRequest upload;
    v1::AnalysisFile* spec = upload.add_files();
    spec->set_path("everything.yml");
    spec->set_content(
        "AnalysisType: rule\nRuleID: E2E.Everything\nFilename: everything.py\nEnabled: true\n"
        "LogTypes: [Okta.SystemLog]\nSeverity: Info\nDedupPeriodMinutes: 1440\nTests:\n"
        "  - Name: any\n    ExpectedResult: true\n    Log: {eventType: x}\n");
    v1::AnalysisFile* code = upload.add_files();
    code->set_path("everything.py");
    code->set_content("def rule(event):\n    return True\n\ndef dedup(event):\n    return 'all'\n");
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", server_->bearer());
    v1::UploadRuleResponse resp;
    grpc::Status s = stub_->UploadRule(&ctx, upload, &resp);
    ASSERT_TRUE(s.ok()) << s.error_message();
  }
  int total = 0;
  auto add_events = [&](int n, absl::Duration age) {
    for (int i = 0; i < n; ++i, ++total) {
      fake_->AddEvent(OktaLogout(absl::StrCat("fi-", total), "alice",
                                 absl::Now() - age + absl::Milliseconds(total)));
    }
  };
  add_events(30, absl::Minutes(20));

  // A bad token is refused at once (the connection check), and nothing is
  // stored.
  RunResult refused =
      Ctl({"sources", "add", "okta", "--label", "prod", "--domain", "acme.okta.com", "--token-file",
           tmp_.Sub("bad-token"), "--interval", "1s", "--base-url", fake_->base_url()});
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_THAT(refused.err, HasSubstr("token rejected by " + fake_->base_url()));
  EXPECT_THAT(refused.err, HasSubstr("E0000011"));
  EXPECT_THAT(Ctl({"sources", "list"}).out, Not(HasSubstr("prod")));

  // Stored anyway (--no-check): ERROR with Okta's message; the fixed token
  // recovers.
  RunResult added = Ctl({"sources", "add", "okta", "--label", "prod", "--domain", "acme.okta.com",
                         "--token-file", tmp_.Sub("bad-token"), "--interval", "1s", "--base-url",
                         fake_->base_url(), "--no-check"});
  ASSERT_EQ(added.exit_code, 0) << added.err;
  RunResult tested = Ctl({"sources", "test", "prod"});
  EXPECT_EQ(tested.exit_code, 1);
  EXPECT_THAT(tested.out, HasSubstr("FAILED (token_rejected)"));
  ASSERT_TRUE(WaitForSource(
      "prod", [](const v1::Source& s) { return s.state() == v1::SOURCE_STATE_ERROR; }));
  EXPECT_EQ(Source("prod").last_error(), "HTTP 401 E0000011: Invalid token provided");
  RunResult resumed = Ctl({"sources", "resume", "prod", "--token-file", tmp_.Sub("token")});
  ASSERT_EQ(resumed.exit_code, 0) << resumed.err;
  tested = Ctl({"sources", "test", "prod"});
  EXPECT_EQ(tested.exit_code, 0) << tested.err;
  EXPECT_THAT(tested.out, HasSubstr("OK (ok)"));
  ASSERT_TRUE(WaitForSource("prod", [&](const v1::Source& s) {
    return s.events_ingested() == total && s.state() == v1::SOURCE_STATE_ACTIVE;
  })) << Source("prod").DebugString();

  // Faults, with events arriving meanwhile (some published long ago).
  fake_->Inject({{FakeOkta::Fault::kTooManyRequests, {}, absl::Seconds(1)},
                 {FakeOkta::Fault::kTooManyRequests, {}, absl::Seconds(1)},
                 {FakeOkta::Fault::kServerError},
                 {FakeOkta::Fault::kSlow, absl::Seconds(3)},  // Beyond the 2 s timeout.
                 {FakeOkta::Fault::kCutOff},
                 {FakeOkta::Fault::kServerError},
                 {FakeOkta::Fault::kMalformed}});
  add_events(60, absl::Minutes(5));
  add_events(10, absl::Minutes(55));  // Late arrivals.
  ASSERT_TRUE(WaitForSource("prod", [&](const v1::Source& s) {
    return s.events_ingested() == total;
  })) << Source("prod").DebugString();

  // SIGKILL while a page is on its way, then again while pages are stored.
  fake_->Inject({{FakeOkta::Fault::kSlow, absl::Milliseconds(1500)}});
  add_events(40, absl::Minutes(3));
  ASSERT_TRUE(WaitUntil([&] { return fake_->faults_pending() == 0; }, absl::Seconds(20),
                        "a poll to take the slow answer"));
  server_->process().Signal(SIGKILL);
  ASSERT_TRUE(server_->process().Wait(absl::Seconds(10)).ok());
  Start();
  const absl::Time restarted = absl::Now();
  add_events(150, absl::Minutes(2));  // Six pages of 25.
  ASSERT_TRUE(WaitUntil(
      [&] {
        for (const FakeOkta::Request& r : fake_->requests()) {
          if (r.time > restarted && r.events > 0) return true;
        }
        return false;
      },
      absl::Seconds(20), "a page of events served to the restarted pantherd"));
  server_->process().Signal(SIGKILL);
  ASSERT_TRUE(server_->process().Wait(absl::Seconds(10)).ok());
  Start();
  ASSERT_TRUE(WaitForSource(
      "prod", [&](const v1::Source& s) { return s.events_ingested() == total; }, absl::Seconds(25)))
      << Source("prod").DebugString();

  const v1::Source source = Source("prod");
  EXPECT_EQ(source.events_duplicate(), 0);
  EXPECT_EQ(source.events_rejected(), 0);
  EXPECT_EQ(source.state(), v1::SOURCE_STATE_ACTIVE);
  EXPECT_EQ(fake_->event_count(), total);
  int64_t evaluated = 0;
  for (const v1::Alert& alert : Alerts()) {
    if (alert.rule_id() == "E2E.Everything") evaluated += alert.event_count();
  }
  EXPECT_EQ(evaluated, total);
  int too_many = 0;
  for (const FakeOkta::Request& r : fake_->requests()) too_many += r.status == 429 ? 1 : 0;
  EXPECT_GE(too_many, 2);
  EXPECT_THAT(server_->Log(), Not(HasSubstr(kToken)));
}

}  // namespace
}  // namespace pantherd::testing
