// End-to-end ingestion: the real pantherd with the bundled rules, events sent
// over IngestEvents, alerts read back with ListAlerts/GetAlert/UpdateAlert.
#include <signal.h>

#include <fstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/time_util.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "pantherd/v1/detection_service.grpc.pb.h"
#include "tests/test_util.h"

namespace pantherd::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kPantherd[] = PANTHERD_BINARY;
constexpr char kPantherctl[] = PANTHERCTL_BINARY;
constexpr char kRulesDir[] = PANTHERD_SOURCE_DIR "/rules";

std::string FailedLogin(int n, const std::string& user, const std::string& ip, int minute) {
  return absl::StrFormat(
      R"({"uuid":"e2e-%d","published":"2026-03-01T10:%02d:00.000Z","eventType":"user.session.start",)"
      R"("displayMessage":"User login to Okta","severity":"WARN","legacyEventType":null,)"
      R"("actor":{"id":"00u1","type":"User","alternateId":"%s","displayName":"Admin"},)"
      R"("client":{"ipAddress":"%s","userAgent":{"rawUserAgent":"curl/8"}},)"
      R"("outcome":{"result":"FAILURE","reason":"INVALID_CREDENTIALS"},"target":null})",
      n, minute, user, ip);
}

absl::Time ToTime(const google::protobuf::Timestamp& t) {
  return absl::FromUnixMicros(google::protobuf::util::TimeUtil::TimestampToMicroseconds(t));
}

class IngestE2eTest : public ::testing::Test {
 protected:
  void Start() {
    absl::StatusOr<ServerProcess> s =
        ServerProcess::Start(kPantherd, tmp_.Sub("data"), tmp_.path(),
                             {"--rules-dir", kRulesDir, "--workers", "1"}, absl::Seconds(60));
    ASSERT_TRUE(s.ok()) << s.status();
    server_ = std::make_unique<ServerProcess>(std::move(*s));
    stub_ = v1::DetectionService::NewStub(
        grpc::CreateChannel(server_->address(), grpc::InsecureChannelCredentials()));
  }

  void Stop() {
    server_->process().Signal(SIGTERM);
    absl::StatusOr<int> code = server_->process().Wait(absl::Seconds(30));
    ASSERT_TRUE(code.ok());
    EXPECT_EQ(*code, 0) << server_->Log();
    server_.reset();
  }

  // Sends each batch on one stream; returns the answers in order.
  std::vector<v1::IngestEventsResponse> Send(const std::vector<std::vector<std::string>>& batches,
                                             grpc::Status* status) {
    uint64_t batch_id = 0;
    return IngestBatches(*stub_, server_->bearer(), batches, &batch_id, status, absl::Seconds(60));
  }

  std::vector<v1::Alert> Alerts() { return ListAlerts(*stub_, server_->bearer()); }

  TempDir tmp_;
  std::unique_ptr<ServerProcess> server_;
  std::unique_ptr<v1::DetectionService::Stub> stub_;
};

TEST_F(IngestE2eTest, FailedLoginsBecomeOneCriticalAlertThatLaterFailuresUpdate) {
  Start();
  // A subscriber started beforehand sees the alert being created.
  absl::StatusOr<Process> tail = Process::Start(
      server_->Ctl(kPantherctl, {"--output", "json", "alerts", "tail", "--count", "1"}),
      tmp_.Sub("tail.out"), tmp_.Sub("tail.err"));
  ASSERT_TRUE(tail.ok()) << tail.status();
  ASSERT_TRUE(WaitForSubscribers(*server_, 1)) << ReadFileOrEmpty(tmp_.Sub("tail.err"));
  std::vector<std::string> burst;
  for (int i = 0; i < 4; ++i) burst.push_back(FailedLogin(i, "admin", "203.0.113.9", i));
  grpc::Status status;
  std::vector<v1::IngestEventsResponse> answers = Send({burst}, &status);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(answers.size(), 1u);
  EXPECT_EQ(answers[0].accepted(), 4);
  EXPECT_EQ(answers[0].alerts_created(), 0);  // Threshold 5 not reached.
  EXPECT_TRUE(Alerts().empty());
  // The answer says which rule matched and that its window is open at 4/5.
  const v1::RuleIngestStats* failed_login = nullptr;
  for (const v1::RuleIngestStats& r : answers[0].rules()) {
    if (r.rule_id() == "Okta.FailedLogin") failed_login = &r;
  }
  ASSERT_NE(failed_login, nullptr) << answers[0].DebugString();
  EXPECT_EQ(failed_login->matches(), 4);
  EXPECT_EQ(failed_login->alerts_created(), 0);
  ASSERT_EQ(failed_login->windows_size(), 1);
  EXPECT_EQ(failed_login->windows(0).count(), 4);
  EXPECT_EQ(failed_login->windows(0).threshold(), 5);
  EXPECT_EQ(failed_login->windows(0).alert_id(), "");

  // The fifth failure reaches the threshold; a bad event is rejected by index
  // and does not stop the batch.
  answers = Send({{FailedLogin(4, "admin", "203.0.113.9", 4), "{not json"}}, &status);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(answers.size(), 1u);
  EXPECT_EQ(answers[0].accepted(), 1);
  ASSERT_EQ(answers[0].rejected_size(), 1);
  EXPECT_EQ(answers[0].rejected(0).index(), 1);
  EXPECT_THAT(answers[0].rejected(0).reason(), HasSubstr("JSON"));
  EXPECT_EQ(answers[0].alerts_created(), 1);

  std::vector<v1::Alert> alerts = Alerts();
  ASSERT_EQ(alerts.size(), 1u);
  EXPECT_EQ(alerts[0].rule_id(), "Okta.FailedLogin");
  EXPECT_EQ(alerts[0].title(), "Multiple Failed Logins for admin");
  EXPECT_EQ(alerts[0].severity(), v1::SEVERITY_CRITICAL);
  EXPECT_EQ(alerts[0].dedup_string(), "203.0.113.9");
  EXPECT_EQ(alerts[0].event_count(), 5);
  absl::StatusOr<int> tail_code = tail->Wait(absl::Seconds(30));
  ASSERT_TRUE(tail_code.ok()) << tail_code.status() << ReadFileOrEmpty(tmp_.Sub("tail.err"));
  EXPECT_EQ(*tail_code, 0) << ReadFileOrEmpty(tmp_.Sub("tail.err"));
  std::string streamed = ReadFileOrEmpty(tmp_.Sub("tail.out"));
  EXPECT_THAT(streamed, HasSubstr("Multiple Failed Logins for admin"));
  EXPECT_THAT(streamed, HasSubstr("\"kind\":\"CREATED\""));
  EXPECT_THAT(streamed, HasSubstr("\"severity\":\"CRITICAL\""));

  // Re-sending already processed events changes nothing.
  answers = Send({burst}, &status);
  ASSERT_TRUE(status.ok());
  EXPECT_EQ(answers[0].duplicates(), 4);
  EXPECT_EQ(answers[0].accepted(), 0);

  // Across a restart, a later failure from the same IP within the hour
  // updates the same alert instead of creating another.
  Stop();
  Start();
  answers = Send({{FailedLogin(5, "admin", "203.0.113.9", 30)}}, &status);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(answers[0].alerts_updated(), 1);
  EXPECT_EQ(answers[0].alerts_created(), 0);
  alerts = Alerts();
  ASSERT_EQ(alerts.size(), 1u);
  EXPECT_EQ(alerts[0].event_count(), 6);

  // Triage.
  grpc::ClientContext ctx;
  ctx.AddMetadata("authorization", server_->bearer());
  v1::UpdateAlertRequest update;
  update.set_id(alerts[0].id());
  update.set_status(v1::ALERT_STATUS_TRIAGED);
  update.set_assignee("alice");
  v1::UpdateAlertResponse updated;
  grpc::Status s = stub_->UpdateAlert(&ctx, update, &updated);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(updated.alert().status(), v1::ALERT_STATUS_TRIAGED);
  EXPECT_EQ(updated.alert().assignee(), "alice");
  // Triage is a change: Updated moves, the last event's time does not.
  EXPECT_GT(ToTime(updated.alert().updated_time()), ToTime(alerts[0].updated_time()));
  EXPECT_EQ(ToTime(updated.alert().last_event_time()), ToTime(alerts[0].last_event_time()));

  // pantherctl send prints the matches per rule, with the open window.
  {
    std::ofstream(tmp_.Sub("more.json")) << FailedLogin(10, "root", "198.51.100.7", 40) << "\n"
                                         << FailedLogin(11, "root", "198.51.100.7", 41) << "\n";
  }
  absl::StatusOr<RunResult> sent = RunCommand(
      server_->Ctl(kPantherctl, {"send", tmp_.Sub("more.json")}), tmp_.path(), absl::Seconds(60));
  ASSERT_TRUE(sent.ok()) << sent.status();
  EXPECT_EQ(sent->exit_code, 0) << sent->err;
  EXPECT_THAT(sent->out, HasSubstr("Okta.FailedLogin: 2 matches, 0 alerts (window 2/5 open)"));

  grpc::ClientContext get_ctx;

  get_ctx.AddMetadata("authorization", server_->bearer());
  v1::GetAlertRequest get;
  get.set_id("no-such-alert");
  v1::GetAlertResponse got;
  EXPECT_EQ(stub_->GetAlert(&get_ctx, get, &got).error_code(), grpc::StatusCode::NOT_FOUND);
  Stop();
}

TEST_F(IngestE2eTest, ARuleThatCrashesItsWorkerBecomesARuleErrorAndTheBatchLands) {
  Start();
  // A rule that kills its worker on one kind of event (its own tests do not).
  v1::UploadRuleRequest upload;
  v1::AnalysisFile* spec = upload.add_files();
  spec->set_path("crash/e2e_crash.yml");
  spec->set_content(
      "AnalysisType: rule\nRuleID: E2E.CrashOnBoom\nFilename: e2e_crash.py\nEnabled: true\n"
      "LogTypes: [Okta.SystemLog]\nSeverity: Low\nTests:\n"
      "  - Name: quiet\n    ExpectedResult: false\n    Log: {eventType: calm}\n");
  v1::AnalysisFile* code = upload.add_files();
  code->set_path("crash/e2e_crash.py");
  code->set_content(
      "import os\n"
      "def rule(event):\n"
      "    if event.get('eventType') == 'boom':\n"
      "        os.abort()\n"
      "    return False\n");
  {
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", server_->bearer());
    v1::UploadRuleResponse resp;
    grpc::Status s = stub_->UploadRule(&ctx, upload, &resp);
    ASSERT_TRUE(s.ok()) << s.error_message();
  }
  grpc::Status status;
  std::vector<v1::IngestEventsResponse> answers =
      Send({{R"({"uuid":"boom-1","published":"2026-03-01T10:00:00Z","eventType":"boom"})",
             FailedLogin(100, "test", "198.51.100.7", 1)}},
           &status);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(answers.size(), 1u);
  EXPECT_EQ(answers[0].accepted(), 2);
  std::vector<v1::Alert> alerts = Alerts();
  ASSERT_EQ(alerts.size(), 1u);
  EXPECT_EQ(alerts[0].type(), v1::ALERT_TYPE_RULE_ERROR);
  EXPECT_EQ(alerts[0].rule_id(), "E2E.CrashOnBoom");
  EXPECT_EQ(alerts[0].error().type(), "WorkerCrashed");
  // The server keeps serving.
  answers = Send({{FailedLogin(101, "test", "198.51.100.7", 2)}}, &status);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(answers[0].accepted(), 1);
  Stop();
}

// A rule error's traceback names the file as the user uploaded it, not the
// folder pantherd lays the live set out in (found with panther-analysis'
// okta_idp_create_modify.py on events without an eventType).
TEST_F(IngestE2eTest, ARuleErrorsTracebackNamesTheUploadedPath) {
  Start();
  v1::UploadRuleRequest upload;
  v1::AnalysisFile* spec = upload.add_files();
  spec->set_path("okta_rules/e2e_raises.yml");
  spec->set_content(
      "AnalysisType: rule\nRuleID: E2E.Raises\nFilename: e2e_raises.py\nEnabled: true\n"
      "LogTypes: [Okta.SystemLog]\nSeverity: Low\n");
  v1::AnalysisFile* code = upload.add_files();
  code->set_path("okta_rules/e2e_raises.py");
  code->set_content(
      "def rule(event):\n"
      "    return 'system.idp.lifecycle' in event.get('eventType')\n");
  {
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", server_->bearer());
    v1::UploadRuleResponse resp;
    grpc::Status s = stub_->UploadRule(&ctx, upload, &resp);
    ASSERT_TRUE(s.ok()) << s.error_message();
  }
  grpc::Status status;
  Send({{R"({"uuid":"no-type-1","published":"2026-03-01T10:00:00Z"})"}}, &status);
  ASSERT_TRUE(status.ok()) << status.error_message();
  std::vector<v1::Alert> alerts = Alerts();
  ASSERT_EQ(alerts.size(), 1u);
  EXPECT_EQ(alerts[0].type(), v1::ALERT_TYPE_RULE_ERROR);
  EXPECT_EQ(alerts[0].error().type(), "TypeError");
  EXPECT_THAT(alerts[0].error().traceback(),
              HasSubstr("File \"okta_rules/e2e_raises.py\", line 2, in rule"));
  EXPECT_THAT(alerts[0].error().traceback(), Not(HasSubstr("items/")));
  Stop();
}

TEST_F(IngestE2eTest, BatchWithoutLogTypeIsRefusedWithTheField) {
  Start();
  grpc::ClientContext ctx;
  ctx.AddMetadata("authorization", server_->bearer());
  auto stream = stub_->IngestEvents(&ctx);
  v1::IngestEventsRequest req;
  req.add_events(FailedLogin(1, "x", "198.51.100.1", 1));
  ASSERT_TRUE(stream->Write(req));
  v1::IngestEventsResponse resp;
  EXPECT_FALSE(stream->Read(&resp));
  grpc::Status s = stream->Finish();
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("log_type"));
  Stop();
}

// Batches written ahead of their answers overlap in the server (the next is
// evaluated while the previous commits); answers still come in order, and
// after a bad batch nothing later is stored while earlier batches are
// answered.
TEST_F(IngestE2eTest, BatchesWrittenAheadAreAnsweredInOrderAndStopAtTheFirstBadOne) {
  Start();
  {
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", server_->bearer());
    auto stream = stub_->IngestEvents(&ctx);
    for (uint64_t id = 1; id <= 20; ++id) {
      v1::IngestEventsRequest req;
      req.set_log_type("Okta.SystemLog");
      req.set_batch_id(id);
      req.add_events(FailedLogin(static_cast<int>(1000 + id), "ahead", "198.51.100.9", 1));
      ASSERT_TRUE(stream->Write(req));
    }
    stream->WritesDone();
    for (uint64_t id = 1; id <= 20; ++id) {
      v1::IngestEventsResponse resp;
      ASSERT_TRUE(stream->Read(&resp)) << id;
      EXPECT_EQ(resp.batch_id(), id);
      EXPECT_EQ(resp.accepted(), 1);
    }
    grpc::Status s = stream->Finish();
    EXPECT_TRUE(s.ok()) << s.error_message();
  }
  {
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", server_->bearer());
    auto stream = stub_->IngestEvents(&ctx);
    for (uint64_t id = 1; id <= 3; ++id) {
      v1::IngestEventsRequest req;
      if (id != 2) req.set_log_type("Okta.SystemLog");
      req.set_batch_id(id);
      req.add_events(FailedLogin(static_cast<int>(2000 + id), "bad", "198.51.100.10", 1));
      stream->Write(req);  // may fail once the server has ended the stream
    }
    stream->WritesDone();
    v1::IngestEventsResponse resp;
    ASSERT_TRUE(stream->Read(&resp));
    EXPECT_EQ(resp.batch_id(), 1u);
    EXPECT_EQ(resp.accepted(), 1);
    EXPECT_FALSE(stream->Read(&resp));
    grpc::Status s = stream->Finish();
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_THAT(s.error_message(), HasSubstr("batch 2"));
  }
  // Batch 3 was not stored: its event is new, batch 1's a duplicate.
  grpc::Status status;
  std::vector<v1::IngestEventsResponse> answers =
      Send({{FailedLogin(2003, "bad", "198.51.100.10", 1)},
            {FailedLogin(2001, "bad", "198.51.100.10", 1)}},
           &status);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(answers.size(), 2u);
  EXPECT_EQ(answers[0].accepted(), 1);
  EXPECT_EQ(answers[1].duplicates(), 1);
  Stop();
}

}  // namespace
}  // namespace pantherd::testing
