// Poison batches, quarantine and shutdown end to end (docs/reliability.md):
// the real pantherd with its rule workers and test rules that end their
// worker on one kind of event (a segfault, a loop that ignores the time
// limit, garbage written on the worker channel), driven over gRPC and with
// pantherctl.
#include <dirent.h>
#include <signal.h>

#include <chrono>
#include <fstream>
#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "pantherd/v1/admin_service.grpc.pb.h"
#include "pantherd/v1/detection_service.grpc.pb.h"
#include "tests/fake_okta.h"
#include "tests/test_util.h"

namespace pantherd::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kPantherd[] = PANTHERD_BINARY;
constexpr char kPantherctl[] = PANTHERCTL_BINARY;
// The pace of the bounded waits for a condition another process brings about
// (a worker busy, a log line, an asynchronous audit write).
constexpr absl::Duration kPollPace = absl::Milliseconds(20);

// An Okta event of type `type` with id `uuid`, published at `published`.
std::string Event(const std::string& uuid, const std::string& type,
                  absl::Time published = absl::FromUnixSeconds(1772359200)) {
  return absl::StrFormat(
      R"({"uuid":"%s","published":"%s","eventType":"%s",)"
      R"("actor":{"id":"00u1","type":"User","alternateId":"a@example.com"}})",
      uuid, absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", published, absl::UTCTimeZone()), type);
}

// A rule spec and its Python file under poison/.
void AddRule(v1::UploadRuleRequest* upload, const std::string& id, const std::string& python) {
  v1::AnalysisFile* spec = upload->add_files();
  spec->set_path(absl::StrCat("poison/", id, ".yml"));
  spec->set_content(absl::StrCat("AnalysisType: rule\nRuleID: ", id, "\nFilename: ", id,
                                 ".py\nEnabled: true\nLogTypes: [Okta.SystemLog]\n"
                                 "Severity: High\nTests:\n"
                                 "  - Name: calm\n    ExpectedResult: ",
                                 id == "Poison.Match" ? "true" : "false",
                                 "\n    Log: {eventType: calm, uuid: t}\n"));
  v1::AnalysisFile* code = upload->add_files();
  code->set_path(absl::StrCat("poison/", id, ".py"));
  code->set_content(python);
}

// Segfaults on poison.segv; loops forever, swallowing the time limit's
// TimeoutError, on poison.loop; writes a frame that is not a message on the
// worker channel (fd 3) on poison.protocol; Poison.Match matches every
// event (one alert per event id).
v1::UploadRuleRequest PoisonRules(bool only_loop = false) {
  v1::UploadRuleRequest upload;
  AddRule(&upload, "Poison.Loop",
          "def rule(event):\n"
          "    if event.get('eventType') == 'poison.loop':\n"
          "        while True:\n"
          "            try:\n"
          "                while True:\n"
          "                    pass\n"
          "            except BaseException:\n"
          "                pass\n"
          "    return False\n");
  if (only_loop) return upload;
  AddRule(&upload, "Poison.Segv",
          "import os\n"
          "def rule(event):\n"
          "    if event.get('eventType') == 'poison.segv':\n"
          "        os.kill(os.getpid(), 11)\n"
          "    return False\n");
  AddRule(&upload, "Poison.Protocol",
          "import os\n"
          "def rule(event):\n"
          "    if event.get('eventType') == 'poison.protocol':\n"
          "        os.write(3, b'\\x03\\x00\\x00\\x00\\xff\\xff\\xff')\n"
          "    return False\n");
  AddRule(&upload, "Poison.Match",
          "def rule(event):\n"
          "    return True\n"
          "def dedup(event):\n"
          "    return event.get('uuid')\n");
  return upload;
}

class PoisonE2eTest : public ::testing::Test {
 protected:
  void Start(const std::vector<std::string>& args) {
    absl::StatusOr<ServerProcess> s =
        ServerProcess::Start(kPantherd, tmp_.Sub("data"), tmp_.path(), args, absl::Seconds(60));
    ASSERT_TRUE(s.ok()) << s.status();
    server_ = std::make_unique<ServerProcess>(std::move(*s));
    auto channel = grpc::CreateChannel(server_->address(), grpc::InsecureChannelCredentials());
    stub_ = v1::DetectionService::NewStub(channel);
    admin_ = v1::AdminService::NewStub(channel);
  }

  void Upload(const v1::UploadRuleRequest& upload) {
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", server_->bearer());
    v1::UploadRuleResponse resp;
    grpc::Status s = stub_->UploadRule(&ctx, upload, &resp);
    ASSERT_TRUE(s.ok()) << s.error_message() << resp.DebugString();
  }

  // Sends each batch on one stream; returns the answers in order.
  std::vector<v1::IngestEventsResponse> Send(const std::vector<std::vector<std::string>>& batches,
                                             grpc::Status* status) {
    return IngestBatches(*stub_, server_->bearer(), batches, &batch_id_, status);
  }

  std::vector<v1::Alert> Alerts() { return ListAlerts(*stub_, server_->bearer()); }

  // The alerts of `rule_id` of `type`.
  int64_t SourceEventsIngested(const std::string& label) {
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", server_->bearer());
    v1::ListSourcesResponse resp;
    grpc::Status s = stub_->ListSources(&ctx, v1::ListSourcesRequest(), &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    for (const v1::Source& source : resp.sources()) {
      if (source.label() == label) return source.events_ingested();
    }
    return -1;
  }

  // Waits (bounded) until the source `label` has ingested `n` events.
  bool WaitForIngested(const std::string& label, int64_t n) {
    for (const absl::Time until = absl::Now() + absl::Seconds(60); absl::Now() < until;) {
      if (SourceEventsIngested(label) == n) return true;
      absl::SleepFor(kPollPace);
    }
    return false;
  }

  std::vector<v1::Alert> AlertsOf(const std::string& rule_id, v1::AlertType type) {
    std::vector<v1::Alert> out;
    for (v1::Alert& a : Alerts()) {
      if (a.rule_id() == rule_id && a.type() == type) out.push_back(std::move(a));
    }
    return out;
  }

  v1::GetServerStatusResponse Status() {
    absl::StatusOr<v1::GetServerStatusResponse> status =
        GetServerStatus(*admin_, server_->bearer());
    EXPECT_TRUE(status.ok()) << status.status();
    return status.ok() ? *std::move(status) : v1::GetServerStatusResponse();
  }

  RunResult Ctl(const std::vector<std::string>& args) {
    absl::StatusOr<RunResult> r = RunCommand(server_->Ctl(kPantherctl, args), tmp_.path());
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : RunResult{};
  }

  // The rule worker processes: pantherd's children.
  std::vector<pid_t> Workers() {
    std::vector<pid_t> pids;
    DIR* proc = opendir("/proc");
    if (proc == nullptr) return pids;
    while (dirent* entry = readdir(proc)) {
      int pid = 0;
      if (!absl::SimpleAtoi(entry->d_name, &pid)) continue;
      std::string stat = ReadFileOrEmpty(absl::StrCat("/proc/", pid, "/stat"));
      const size_t close = stat.rfind(')');
      if (close == std::string::npos) continue;
      std::vector<std::string> fields = absl::StrSplit(stat.substr(close + 2), ' ');
      int ppid = 0;
      if (fields.size() > 1 && absl::SimpleAtoi(fields[1], &ppid) &&
          ppid == server_->process().pid() && fields[0] != "Z") {
        pids.push_back(pid);
      }
    }
    closedir(proc);
    return pids;
  }

  // Whether `pid` is gone (or a zombie nobody reaped yet: it runs no code).
  static bool Gone(pid_t pid) {
    std::string stat = ReadFileOrEmpty(absl::StrCat("/proc/", pid, "/stat"));
    const size_t close = stat.rfind(')');
    return stat.empty() || close == std::string::npos || stat.substr(close + 2, 1) == "Z";
  }

  TempDir tmp_;
  std::unique_ptr<ServerProcess> server_;
  std::unique_ptr<v1::DetectionService::Stub> stub_;
  std::unique_ptr<v1::AdminService::Stub> admin_;
  uint64_t batch_id_ = 0;
};

TEST_F(PoisonE2eTest, PoisonEventsAreNarrowedDownAndTheBatchIsAcknowledged) {
  Start({"--workers", "1", "--rule-timeout-seconds", "1"});
  Upload(PoisonRules());
  grpc::Status status;
  const absl::Time start = absl::Now();
  std::vector<v1::IngestEventsResponse> answers =
      Send({{Event("ok-1", "calm"), Event("segv-1", "poison.segv"), Event("ok-2", "calm"),
             Event("loop-1", "poison.loop"), Event("protocol-1", "poison.protocol"),
             Event("ok-3", "calm")},
            {Event("ok-4", "calm")}},
           &status);
  const absl::Duration took = absl::Now() - start;
  std::cout << "poison batch (3 poison events of 6) and the next batch acknowledged in "
            << absl::FormatDuration(took) << "\n";
  ASSERT_TRUE(status.ok()) << status.error_message() << server_->Log();
  ASSERT_EQ(answers.size(), 2u);
  EXPECT_EQ(answers[0].accepted(), 6);
  EXPECT_EQ(answers[1].accepted(), 1);

  // Every event's alert from the rule that did nothing wrong.
  EXPECT_EQ(AlertsOf("Poison.Match", v1::ALERT_TYPE_RULE).size(), 7u);
  // Each culprit: one rule error naming the event (index, id) and the cause.
  std::vector<v1::Alert> segv = AlertsOf("Poison.Segv", v1::ALERT_TYPE_RULE_ERROR);
  ASSERT_EQ(segv.size(), 1u);
  EXPECT_EQ(segv[0].error().type(), "WorkerCrashed");
  EXPECT_THAT(segv[0].title(), HasSubstr("event 1 (id segv-1)"));
  EXPECT_THAT(segv[0].error().message(), HasSubstr("SIGSEGV"));
  std::vector<v1::Alert> loop = AlertsOf("Poison.Loop", v1::ALERT_TYPE_RULE_ERROR);
  ASSERT_EQ(loop.size(), 1u);
  EXPECT_EQ(loop[0].error().type(), "Timeout");
  EXPECT_THAT(loop[0].error().message(), HasSubstr("event 3 (id loop-1)"));
  EXPECT_THAT(loop[0].error().message(), HasSubstr("time limit"));
  std::vector<v1::Alert> protocol = AlertsOf("Poison.Protocol", v1::ALERT_TYPE_RULE_ERROR);
  ASSERT_EQ(protocol.size(), 1u);
  EXPECT_EQ(protocol[0].error().type(), "WorkerProtocolError");
  EXPECT_THAT(protocol[0].error().message(), HasSubstr("event 4 (id protocol-1)"));
  EXPECT_THAT(protocol[0].error().message(), HasSubstr("DATA_LOSS"));

  v1::GetServerStatusResponse st = Status();
  EXPECT_EQ(st.metrics().ingest().poison_events(), 3);
  EXPECT_EQ(st.metrics().ingest().batches_failed(), 0);
  EXPECT_EQ(st.quarantined_rules_size(), 0);  // one failure each: below the policy
  std::cout << "workers started " << st.metrics().workers().started() << ", crashed "
            << st.metrics().workers().crashed() << ", timed out "
            << st.metrics().workers().killed_for_timeout() << ", restarts "
            << st.metrics().workers().restarts() << ", restarts delayed "
            << st.metrics().workers().restarts_delayed() << "\n";
  // Bounded: the batch attempt (and its retry), each poison event alone, and
  // each culprit alone (a crash retried once) — not a replacement loop.
  EXPECT_LE(st.metrics().workers().crashed() + st.metrics().workers().killed_for_timeout(), 12);
}

TEST_F(PoisonE2eTest, ARuleThatKeepsEndingItsWorkerIsQuarantinedUntilReEnabled) {
  Start({"--workers", "1", "--rule-timeout-seconds", "1"});
  Upload(PoisonRules());
  grpc::Status status;
  std::vector<v1::IngestEventsResponse> answers =
      Send({{Event("segv-a", "poison.segv"), Event("ok-a", "calm")},
            {Event("segv-b", "poison.segv")},
            {Event("segv-c", "poison.segv"), Event("ok-c", "calm"), Event("segv-d", "poison.segv")},
            {Event("segv-e", "poison.segv"), Event("ok-e", "calm")}},
           &status);
  ASSERT_TRUE(status.ok()) << status.error_message() << server_->Log();
  ASSERT_EQ(answers.size(), 4u);
  for (const v1::IngestEventsResponse& a : answers) EXPECT_TRUE(a.rejected().empty());
  EXPECT_EQ(answers[2].accepted(), 3);
  EXPECT_EQ(answers[3].accepted(), 2);

  // The third poison event quarantined the rule: one WorkerCrashed alert
  // counting a, b and c (segv-d and segv-e ran without the rule), and the
  // quarantine's own rule error.
  std::vector<v1::Alert> errors = AlertsOf("Poison.Segv", v1::ALERT_TYPE_RULE_ERROR);
  ASSERT_EQ(errors.size(), 2u);
  const v1::Alert& crashed = errors[0].error().type() == "WorkerCrashed" ? errors[0] : errors[1];
  const v1::Alert& quarantined =
      errors[0].error().type() == "WorkerCrashed" ? errors[1] : errors[0];
  EXPECT_EQ(crashed.error().type(), "WorkerCrashed");
  EXPECT_EQ(crashed.event_count(), 3);
  EXPECT_EQ(quarantined.error().type(), "RuleQuarantined");
  EXPECT_THAT(quarantined.error().message(), HasSubstr("id segv-c"));
  EXPECT_THAT(quarantined.error().message(), HasSubstr("pantherctl rules enable Poison.Segv"));
  EXPECT_EQ(AlertsOf("Poison.Match", v1::ALERT_TYPE_RULE).size(), 8u);

  // Status (gRPC, and pantherctl's table and JSON) shows it.
  v1::GetServerStatusResponse st = Status();
  ASSERT_EQ(st.quarantined_rules_size(), 1);
  EXPECT_EQ(st.quarantined_rules(0).rule_id(), "Poison.Segv");
  EXPECT_EQ(st.quarantined_rules(0).quarantine().failures(), 3);
  EXPECT_EQ(st.quarantined_rules(0).quarantine().last_event_id(), "segv-c");
  EXPECT_EQ(st.metrics().ingest().rules_quarantined(), 1);
  RunResult table = Ctl({"status"});
  EXPECT_EQ(table.exit_code, 0) << table.err;
  EXPECT_THAT(table.out, HasSubstr("QUARANTINED RULE"));
  EXPECT_THAT(table.out, HasSubstr("Poison.Segv"));
  EXPECT_THAT(table.out, HasSubstr("pantherctl rules enable RULE_ID"));
  RunResult json = Ctl({"--output", "json", "status"});
  EXPECT_EQ(json.exit_code, 0) << json.err;
  EXPECT_THAT(json.out, HasSubstr(R"("ruleId": "Poison.Segv")"));
  EXPECT_THAT(json.out, HasSubstr(R"("reEnable": "pantherctl rules enable Poison.Segv")"));
  // The stored rule is disabled and says why.
  RunResult rule = Ctl({"--output", "json", "rules", "get", "Poison.Segv"});
  EXPECT_THAT(rule.out, HasSubstr("segv-c"));
  RunResult rule_table = Ctl({"rules", "get", "Poison.Segv"});
  EXPECT_THAT(rule_table.out, HasSubstr("no (quarantined)"));
  EXPECT_THAT(rule_table.out, HasSubstr("re-enable with: pantherctl rules enable Poison.Segv"));

  // The audit trail has the quarantine (its writer is asynchronous: wait
  // for the entry, bounded).
  bool audited = false;
  for (const absl::Time until = absl::Now() + absl::Seconds(20); !audited && absl::Now() < until;) {
    RunResult audit = Ctl({"--output", "json", "audit", "--action", "pantherd/QuarantineRule"});
    audited = absl::StrContains(audit.out, "Poison.Segv");
    if (!audited) absl::SleepFor(kPollPace);
  }
  EXPECT_TRUE(audited);

  // Re-enabled, it runs again and counts from zero.
  RunResult enable = Ctl({"rules", "enable", "Poison.Segv"});
  EXPECT_EQ(enable.exit_code, 0) << enable.err;
  EXPECT_EQ(Status().quarantined_rules_size(), 0);
  answers = Send({{Event("segv-f", "poison.segv")}}, &status);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(answers.size(), 1u);
  EXPECT_EQ(answers[0].accepted(), 1);
  EXPECT_EQ(Status().quarantined_rules_size(), 0);
  EXPECT_EQ(Status().metrics().ingest().poison_events(), 4);
}

// The Okta poller goes on past a poison event: the page with it is stored
// (the culprit gets its rule error) and later events are polled as usual.
TEST_F(PoisonE2eTest, AnOktaPollerGoesOnPastAPoisonEvent) {
  constexpr char kToken[] = "00poison-e2e-token";
  FakeOkta::Options options;
  options.token = kToken;
  absl::StatusOr<std::unique_ptr<FakeOkta>> fake = FakeOkta::Start(options);
  ASSERT_TRUE(fake.ok()) << fake.status();
  const absl::Time now = absl::Now();
  (*fake)->AddEvent(Event("okta-ok-1", "calm", now - absl::Minutes(10)));
  (*fake)->AddEvent(Event("okta-segv-1", "poison.segv", now - absl::Minutes(9)));
  (*fake)->AddEvent(Event("okta-ok-2", "calm", now - absl::Minutes(8)));
  Start({"--workers", "1", "--rule-timeout-seconds", "1", "--source-retry-initial-ms", "50",
         "--source-retry-max-seconds", "1"});
  Upload(PoisonRules());
  { std::ofstream(tmp_.Sub("okta-token")) << kToken; }
  RunResult added = Ctl({"sources", "add", "okta", "--label", "poisoned", "--domain",
                         "acme.okta.com", "--token-file", tmp_.Sub("okta-token"), "--interval",
                         "1s", "--base-url", (*fake)->base_url()});
  ASSERT_EQ(added.exit_code, 0) << added.err;
  ASSERT_TRUE(WaitForIngested("poisoned", 3)) << server_->Log();
  (*fake)->AddEvent(Event("okta-ok-3", "calm", absl::Now()));
  ASSERT_TRUE(WaitForIngested("poisoned", 4)) << server_->Log();
  std::vector<v1::Alert> segv = AlertsOf("Poison.Segv", v1::ALERT_TYPE_RULE_ERROR);
  ASSERT_EQ(segv.size(), 1u);
  EXPECT_THAT(segv[0].error().message(), HasSubstr("(id okta-segv-1)"));
  EXPECT_THAT(segv[0].error().message(), HasSubstr("from poisoned"));
  EXPECT_EQ(AlertsOf("Poison.Match", v1::ALERT_TYPE_RULE).size(), 4u);
  EXPECT_EQ(Status().metrics().ingest().batches_failed(), 0);
}

// The worst state we can build: one worker looping forever in the middle of
// a batch (its time limit is 600 s, so it is not ending itself), the other
// stopped with SIGSTOP, a subscriber stream open, an ingest in flight.
class ShutdownE2eTest : public PoisonE2eTest {
 protected:
  // Builds that state; returns the worker pids.
  std::vector<pid_t> WorstState(int grace_seconds) {
    Start({"--workers", "2", "--rule-timeout-seconds", "600", "--shutdown-grace-seconds",
           absl::StrCat(grace_seconds)});
    Upload(PoisonRules(/*only_loop=*/true));
    subscriber_ = std::thread([this] {
      grpc::ClientContext ctx;
      ctx.AddMetadata("authorization", server_->bearer());
      std::unique_ptr<grpc::ClientReader<v1::StreamAlertsResponse>> stream =
          stub_->StreamAlerts(&ctx, v1::StreamAlertsRequest());
      v1::StreamAlertsResponse r;
      while (stream->Read(&r)) {
      }
      stream->Finish();
    });
    ingest_ = std::thread([this] {
      grpc::Status status;
      Send({{Event("loop-1", "poison.loop")}}, &status);
    });
    // Wait for the batch to be in a worker (bounded).
    bool busy = false;
    for (const absl::Time until = absl::Now() + absl::Seconds(30); !busy && absl::Now() < until;) {
      v1::GetServerStatusResponse st = Status();
      busy = st.metrics().workers().busy() == 1 && st.streams().subscribers() == 1;
      if (!busy) absl::SleepFor(kPollPace);
    }
    EXPECT_TRUE(busy) << server_->Log();
    std::vector<pid_t> workers = Workers();
    EXPECT_GE(workers.size(), 2u);  // also retired workers of the previous set, if still exiting
    // Stop both: the looping one keeps its batch, the idle one can answer
    // nothing.
    for (pid_t pid : workers) kill(pid, SIGSTOP);
    return workers;
  }

  void TearDown() override {
    if (ingest_.joinable()) ingest_.join();
    if (subscriber_.joinable()) subscriber_.join();
  }

  std::thread subscriber_;
  std::thread ingest_;
};

TEST_F(ShutdownE2eTest, SigtermEndsPantherdWithinTheGraceWhateverTheWorkersDo) {
  constexpr int kGrace = 2;
  std::vector<pid_t> workers = WorstState(kGrace);
  const absl::Time signalled = absl::Now();
  server_->process().Signal(SIGTERM);
  absl::StatusOr<int> code = server_->process().Wait(absl::Seconds(kGrace + 30));
  const absl::Duration took = absl::Now() - signalled;
  std::cout << "SIGTERM to exit (grace " << kGrace << " s, worker looping, worker stopped, "
            << "subscriber open, ingest in flight): " << absl::FormatDuration(took) << "\n";
  ASSERT_TRUE(code.ok()) << server_->Log();
  EXPECT_EQ(*code, 0) << server_->Log();  // the store was closed cleanly
  EXPECT_LT(took, absl::Seconds(kGrace + 5)) << server_->Log();
  EXPECT_THAT(server_->Log(), HasSubstr("shutdown grace ran out: rule workers killed"));
  bool all_gone = false;
  for (const absl::Time until = absl::Now() + absl::Seconds(10);
       !all_gone && absl::Now() < until;) {
    all_gone = true;
    for (pid_t pid : workers) all_gone = all_gone && Gone(pid);
    if (!all_gone) absl::SleepFor(kPollPace);
  }
  EXPECT_TRUE(all_gone);
}

// Evaluation has a pool of its own: with its one thread held by a batch whose
// rule loops (and one executor thread), reads still answer.
TEST_F(ShutdownE2eTest, ReadsAnswerWhileEvaluationIsHeldByALoopingRule) {
  Start({"--workers", "1", "--executor-threads", "1", "--evaluation-threads", "1",
         "--rule-timeout-seconds", "600", "--shutdown-grace-seconds", "1"});
  Upload(PoisonRules(/*only_loop=*/true));
  ingest_ = std::thread([this] {
    grpc::Status status;
    Send({{Event("loop-1", "poison.loop")}}, &status);
  });
  ASSERT_TRUE(WaitUntil([&] { return Status().metrics().workers().busy() == 1; },
                        absl::Seconds(30), "the looping batch in the worker"))
      << server_->Log();
  for (int i = 0; i < 3; ++i) {
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", server_->bearer());
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    v1::ListRulesResponse rules;
    grpc::Status listed = stub_->ListRules(&ctx, v1::ListRulesRequest(), &rules);
    ASSERT_TRUE(listed.ok()) << listed.error_message();
    EXPECT_GT(rules.rules_size(), 0);
    EXPECT_THAT(Alerts(), ::testing::IsEmpty());  // ListAlerts answers too
  }
  server_->process().Signal(SIGTERM);
  absl::StatusOr<int> code = server_->process().Wait(absl::Seconds(30));
  ASSERT_TRUE(code.ok()) << server_->Log();
}

TEST_F(ShutdownE2eTest, ASecondSigtermKillsTheWorkersAndExits) {
  constexpr int kGrace = 120;  // never reached
  std::vector<pid_t> workers = WorstState(kGrace);
  server_->process().Signal(SIGTERM);
  // The first signal began the shutdown (bounded wait for its log line).
  for (const absl::Time until = absl::Now() + absl::Seconds(10);
       !absl::StrContains(server_->Log(), "shutting down") && absl::Now() < until;) {
    absl::SleepFor(kPollPace);
  }
  ASSERT_THAT(server_->Log(), HasSubstr("shutting down"));
  const absl::Time signalled = absl::Now();
  server_->process().Signal(SIGTERM);
  absl::StatusOr<int> code = server_->process().Wait(absl::Seconds(30));
  const absl::Duration took = absl::Now() - signalled;
  std::cout << "second SIGTERM to exit (worker looping, worker stopped, subscriber open, ingest "
            << "in flight): " << absl::FormatDuration(took) << "\n";
  ASSERT_TRUE(code.ok()) << server_->Log();
  EXPECT_LT(took, absl::Seconds(5)) << server_->Log();
  EXPECT_THAT(server_->Log(), HasSubstr("second signal: rule workers killed"));
  EXPECT_THAT(server_->Log(), Not(HasSubstr("could not start")));
  bool all_gone = false;
  for (const absl::Time until = absl::Now() + absl::Seconds(10);
       !all_gone && absl::Now() < until;) {
    all_gone = true;
    for (pid_t pid : workers) all_gone = all_gone && Gone(pid);
    if (!all_gone) absl::SleepFor(kPollPace);
  }
  EXPECT_TRUE(all_gone);
}

}  // namespace
}  // namespace pantherd::testing
