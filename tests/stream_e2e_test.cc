// The alert feed end to end, through the real pantherd: several subscribers
// each receive every change (broadcast), one that stops reading neither stalls
// ingestion nor misses anything once it reads again, a subscriber resuming
// from a sequence gets exactly what followed it, and an independent Python
// client built only from our .proto files sees the same alerts.
#include <algorithm>
#include <memory>
#include <set>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "pantherd/v1/admin_service.grpc.pb.h"
#include "pantherd/v1/detection_service.grpc.pb.h"
#include "tests/test_util.h"

namespace pantherd::testing {
namespace {

using ::testing::HasSubstr;

constexpr char kPantherd[] = PANTHERD_BINARY;
constexpr char kRulesDir[] = PANTHERD_SOURCE_DIR "/rules";
constexpr char kPythonSubscriber[] = PANTHERD_SOURCE_DIR "/tests/python/subscribe_alerts.py";

// A channel of its own (not shared with other channels to the same address),
// so that a stalled stream's flow control cannot hold back another's.
std::shared_ptr<grpc::Channel> OwnChannel(const std::string& address) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  return grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args);
}

// One StreamAlerts call. The call starts at construction; changes are read
// only once Read() is called, so a subscriber may stay stalled for a while.
class Subscriber {
 public:
  Subscriber(const ServerProcess& server, const v1::StreamAlertsRequest& request)
      : stub_(v1::DetectionService::NewStub(OwnChannel(server.address()))) {
    ctx_.AddMetadata("authorization", server.bearer());
    ctx_.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(240));
    reader_ = stub_->StreamAlerts(&ctx_, request);
  }
  ~Subscriber() {
    ctx_.TryCancel();
    if (thread_.joinable()) thread_.join();
  }

  // Starts reading in the background until `want` changes have arrived or
  // the stream ends.
  void Read(size_t want) {
    thread_ = std::thread([this, want] {
      v1::StreamAlertsResponse message;
      while (reader_->Read(&message)) {
        if (!message.has_change()) continue;
        absl::MutexLock lock(&mu_);
        // Keep what the checks need, not the events.
        v1::AlertChange change;
        change.set_sequence(message.change().sequence());
        change.set_kind(message.change().kind());
        change.mutable_alert()->set_id(message.change().alert().id());
        change.mutable_alert()->set_title(message.change().alert().title());
        change.mutable_alert()->set_event_count(message.change().alert().event_count());
        changes_.push_back(std::move(change));
        if (changes_.size() >= want) break;
      }
      ctx_.TryCancel();
      reader_->Finish();
    });
  }

  // Waits until the reader stopped; returns what it received.
  std::vector<v1::AlertChange> Wait() {
    if (thread_.joinable()) thread_.join();
    absl::MutexLock lock(&mu_);
    return changes_;
  }

 private:
  std::unique_ptr<v1::DetectionService::Stub> stub_;
  grpc::ClientContext ctx_;
  std::unique_ptr<grpc::ClientReader<v1::StreamAlertsResponse>> reader_;
  std::thread thread_;
  absl::Mutex mu_;
  std::vector<v1::AlertChange> changes_ ABSL_GUARDED_BY(mu_);
};

std::vector<uint64_t> Sequences(const std::vector<v1::AlertChange>& changes) {
  std::vector<uint64_t> out;
  for (const v1::AlertChange& c : changes) out.push_back(c.sequence());
  return out;
}

// Strictly increasing: no duplicate and in order.
bool StrictlyIncreasing(const std::vector<uint64_t>& s) {
  return std::adjacent_find(s.begin(), s.end(), [](uint64_t a, uint64_t b) { return a >= b; }) ==
         s.end();
}

std::string FailedLogin(int n, const std::string& ip, int minute) {
  return absl::StrFormat(
      R"({"uuid":"py-%d","published":"2026-03-01T10:%02d:00.000Z","eventType":"user.session.start",)"
      R"("actor":{"id":"00u1","type":"User","alternateId":"admin","displayName":"Admin"},)"
      R"("client":{"ipAddress":"%s"},"outcome":{"result":"FAILURE","reason":"INVALID_CREDENTIALS"}})",
      n, minute, ip);
}

class StreamE2eTest : public ::testing::Test {
 protected:
  void Start(std::vector<std::string> args) {
    args.insert(args.end(), {"--workers", "1"});
    absl::StatusOr<ServerProcess> s =
        ServerProcess::Start(kPantherd, tmp_.Sub("data"), tmp_.path(), args, absl::Seconds(90));
    ASSERT_TRUE(s.ok()) << s.status();
    server_ = std::make_unique<ServerProcess>(std::move(*s));
    stub_ = v1::DetectionService::NewStub(OwnChannel(server_->address()));
    admin_ = v1::AdminService::NewStub(OwnChannel(server_->address()));
  }

  // Uploads a rule that alerts once per "stream.test" event (dedup by uuid).
  void UploadEveryEventRule() {
    v1::UploadRuleRequest upload;
    v1::AnalysisFile* spec = upload.add_files();
    spec->set_path("stream/every_event.yml");
    spec->set_content(
        "AnalysisType: rule\nRuleID: Stream.EveryEvent\nFilename: every_event.py\n"
        "Enabled: true\nLogTypes: [Okta.SystemLog]\nSeverity: Medium\nDedupPeriodMinutes: 60\n"
        "Tests:\n  - Name: hit\n    ExpectedResult: true\n"
        "    Log: {eventType: stream.test, uuid: a}\n");
    v1::AnalysisFile* code = upload.add_files();
    code->set_path("stream/every_event.py");
    code->set_content(
        "def rule(event):\n    return event.get('eventType') == 'stream.test'\n\n"
        "def title(event):\n    return 'event ' + event.get('uuid')\n\n"
        "def dedup(event):\n    return event.get('uuid')\n");
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", server_->bearer());
    v1::UploadRuleResponse resp;
    grpc::Status s = stub_->UploadRule(&ctx, upload, &resp);
    ASSERT_TRUE(s.ok()) << s.error_message();
  }

  // Sends `batches` on one IngestEvents stream; returns the acknowledgements.
  std::vector<v1::IngestEventsResponse> Send(const std::vector<std::vector<std::string>>& batches) {
    uint64_t batch_id = 0;
    grpc::Status status;
    std::vector<v1::IngestEventsResponse> answers =
        IngestBatches(*stub_, server_->bearer(), batches, &batch_id, &status, absl::Seconds(180));
    EXPECT_TRUE(status.ok()) << status.error_message();
    return answers;
  }

  v1::GetServerStatusResponse Status() {
    absl::StatusOr<v1::GetServerStatusResponse> status =
        GetServerStatus(*admin_, server_->bearer());
    EXPECT_TRUE(status.ok()) << status.status();
    return status.ok() ? *std::move(status) : v1::GetServerStatusResponse();
  }

  TempDir tmp_;
  std::unique_ptr<ServerProcess> server_;
  std::unique_ptr<v1::DetectionService::Stub> stub_;
  std::unique_ptr<v1::AdminService::Stub> admin_;
};

TEST_F(StreamE2eTest, EverySubscriberGetsEveryChangeAndAStalledOneStallsNothing) {
  // A tiny per-subscriber buffer so that the stalled subscriber overflows.
  Start({"--stream-buffer", "8"});
  UploadEveryEventRule();

  constexpr int kBatches = 20;
  constexpr int kPerBatch = 100;
  constexpr size_t kTotal = kBatches * kPerBatch;
  // Big events (each change carries its event), so that the stalled stream
  // fills gRPC's flow-control windows and then its buffer on the server.
  const std::string padding(8000, 'x');
  std::vector<std::vector<std::string>> batches(kBatches);
  for (int b = 0; b < kBatches; ++b) {
    for (int i = 0; i < kPerBatch; ++i) {
      batches[b].push_back(absl::StrFormat(
          R"({"uuid":"s-%05d","published":"2026-03-01T10:00:%02d.000Z","eventType":"stream.test",)"
          R"("displayMessage":"%s"})",
          b * kPerBatch + i, i % 60, padding));
    }
  }

  v1::StreamAlertsRequest from_start;
  from_start.set_start_after_sequence(0);
  Subscriber first(*server_, from_start);
  Subscriber second(*server_, from_start);
  Subscriber stalled(*server_, from_start);  // Does not read yet.
  first.Read(kTotal);
  second.Read(kTotal);

  // Ingestion completes while one subscriber reads nothing.
  std::vector<v1::IngestEventsResponse> answers = Send(batches);
  ASSERT_EQ(answers.size(), static_cast<size_t>(kBatches));
  int created = 0;
  for (const v1::IngestEventsResponse& a : answers) {
    EXPECT_EQ(a.accepted(), kPerBatch);
    created += a.alerts_created();
  }
  EXPECT_EQ(created, static_cast<int>(kTotal));

  std::vector<v1::AlertChange> got_first = first.Wait();
  std::vector<v1::AlertChange> got_second = second.Wait();
  ASSERT_EQ(got_first.size(), kTotal);
  ASSERT_EQ(got_second.size(), kTotal);
  EXPECT_TRUE(StrictlyIncreasing(Sequences(got_first)));
  EXPECT_EQ(Sequences(got_first), Sequences(got_second));
  std::set<std::string> titles;
  for (const v1::AlertChange& c : got_first) {
    EXPECT_EQ(c.kind(), v1::AlertChange::KIND_CREATED);
    titles.insert(c.alert().title());
  }
  EXPECT_EQ(titles.size(), kTotal);  // One alert per event, none twice.

  // The stalled subscriber overflowed its buffer and fell back to the store.
  v1::GetServerStatusResponse status = Status();
  EXPECT_GE(status.streams().catch_ups(), 1) << status.DebugString();
  EXPECT_GT(status.streams().dropped_to_catch_up(), 0) << status.DebugString();

  // When it reads again, it receives everything, in order, exactly once.
  stalled.Read(kTotal);
  std::vector<v1::AlertChange> got_stalled = stalled.Wait();
  ASSERT_EQ(got_stalled.size(), kTotal);
  EXPECT_EQ(Sequences(got_stalled), Sequences(got_first));

  // Resuming after a sequence gives exactly the changes that followed it.
  const size_t half = kTotal / 2;
  v1::StreamAlertsRequest resume;
  resume.set_start_after_sequence(got_first[half - 1].sequence());
  Subscriber resumed(*server_, resume);
  resumed.Read(kTotal - half);
  std::vector<v1::AlertChange> got_resumed = resumed.Wait();
  const std::vector<uint64_t> all = Sequences(got_first);
  const std::vector<uint64_t> expected(all.begin() + half, all.end());
  EXPECT_EQ(Sequences(got_resumed), expected);
}

// A Python service using Debian's python3-grpcio and stubs generated from
// our .proto files follows the same feed as a C++ subscriber.
TEST_F(StreamE2eTest, PythonSubscriberFromGeneratedStubsReceivesTheSameAlerts) {
  Start({"--rules-dir", kRulesDir});
  v1::StreamAlertsRequest high;
  high.set_start_after_sequence(0);
  high.set_min_severity(v1::SEVERITY_HIGH);
  Subscriber cpp(*server_, high);
  cpp.Read(2);
  absl::StatusOr<Process> python =
      Process::Start({PANTHERD_DEBIAN_PYTHON, kPythonSubscriber, "--server", server_->address(),
                      "--stubs", PANTHERD_PY_STUBS, "--count", "2", "--after", "0",
                      "--min-severity", "HIGH", "--token", server_->admin_token(), "--timeout", "120"},
                     tmp_.Sub("py.out"), tmp_.Sub("py.err"));
  ASSERT_TRUE(python.ok()) << python.status();

  // Five failures for admin from one IP reach the threshold: one CRITICAL
  // alert; a sixth within the hour updates it.
  std::vector<std::string> burst;
  for (int i = 0; i < 5; ++i) burst.push_back(FailedLogin(i, "203.0.113.5", i));
  std::vector<v1::IngestEventsResponse> answers =
      Send({burst, {FailedLogin(9, "203.0.113.5", 20)}});
  ASSERT_EQ(answers.size(), 2u);
  EXPECT_EQ(answers[0].alerts_created(), 1);
  EXPECT_EQ(answers[1].alerts_updated(), 1);

  absl::StatusOr<int> code = python->Wait(absl::Seconds(120));
  ASSERT_TRUE(code.ok()) << code.status();
  ASSERT_EQ(*code, 0) << ReadFileOrEmpty(tmp_.Sub("py.err"));
  std::vector<v1::AlertChange> expected = cpp.Wait();
  ASSERT_EQ(expected.size(), 2u);

  std::vector<std::string> lines =
      absl::StrSplit(ReadFileOrEmpty(tmp_.Sub("py.out")), '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 2u) << ReadFileOrEmpty(tmp_.Sub("py.out"));
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_THAT(lines[i], HasSubstr(absl::StrCat("\"sequence\": ", expected[i].sequence(), ",")));
    EXPECT_THAT(lines[i], HasSubstr(absl::StrCat("\"alert_id\": \"", expected[i].alert().id())));
    EXPECT_THAT(lines[i], HasSubstr("\"title\": \"Multiple Failed Logins for admin\""));
    EXPECT_THAT(lines[i], HasSubstr("\"severity\": \"SEVERITY_CRITICAL\""));
  }
  EXPECT_THAT(lines[0], HasSubstr("\"kind\": \"KIND_CREATED\""));
  EXPECT_THAT(lines[0], HasSubstr("\"event_count\": 5"));
  EXPECT_THAT(lines[1], HasSubstr("\"kind\": \"KIND_UPDATED\""));
  EXPECT_THAT(lines[1], HasSubstr("\"event_count\": 6"));
}

}  // namespace
}  // namespace pantherd::testing
