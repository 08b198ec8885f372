// pantherd's own figures end to end: pantherd started with
// --metrics-listen 127.0.0.1:0, a rule set uploaded with pantherctl, events
// ingested over IngestEvents (some rejected, one duplicate), then GET /metrics
// over a real socket and `pantherctl status` must show the exact counts.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "pantherd/v1/detection_service.grpc.pb.h"
#include "tests/test_util.h"

namespace pantherd::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

constexpr char kPantherd[] = PANTHERD_BINARY;
constexpr char kPantherctl[] = PANTHERCTL_BINARY;

void WriteText(const std::string& path, const std::string& text) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  std::ofstream(path) << text;
}

std::string Event(const std::string& uuid, const std::string& who) {
  return absl::StrCat(R"({"uuid":")", uuid, R"(","published":"2026-03-01T10:00:00.000Z",)",
                      R"("eventType":"user.session.start","who":")", who, R"("})");
}

// The samples of an exposition text, by "name{labels}".
std::map<std::string, std::string> Samples(const std::string& body) {
  std::map<std::string, std::string> samples;
  for (absl::string_view line : absl::StrSplit(body, '\n', absl::SkipEmpty())) {
    if (absl::StartsWith(line, "#")) continue;
    const size_t space = line.rfind(' ');
    samples[std::string(line.substr(0, space))] = std::string(line.substr(space + 1));
  }
  return samples;
}

class MetricsE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<ServerProcess> s = ServerProcess::Start(
        kPantherd, tmp_.Sub("data"), tmp_.path(),
        {"--workers", "2", "--max-event-bytes", "400", "--metrics-listen", "127.0.0.1:0"},
        absl::Seconds(60));
    ASSERT_TRUE(s.ok()) << s.status();
    server_ = std::make_unique<ServerProcess>(std::move(*s));
    stub_ = v1::DetectionService::NewStub(
        grpc::CreateChannel(server_->address(), grpc::InsecureChannelCredentials()));
    // The endpoint logs its bound address before the server says "serving".
    const std::string log = server_->Log();
    const std::string kMetrics = "msg=metrics listen=127.0.0.1:";
    const size_t at = log.find(kMetrics);
    ASSERT_NE(at, std::string::npos) << log;
    const size_t end = log.find_first_of(" \n", at + kMetrics.size());
    ASSERT_TRUE(absl::SimpleAtoi(log.substr(at + kMetrics.size(), end - at - kMetrics.size()),
                                 &metrics_port_))
        << log;
  }

  void TearDown() override {
    if (server_ == nullptr) return;
    server_->process().Signal(SIGTERM);
    absl::StatusOr<int> code = server_->process().Wait(absl::Seconds(30));
    ASSERT_TRUE(code.ok());
    EXPECT_EQ(*code, 0) << server_->Log();
    // The endpoint's own counters, logged at shutdown: the test's four GETs.
    EXPECT_THAT(server_->Log(), HasSubstr("answered=4 refused_or_abandoned=0"));
  }

  // Sends one batch of `log_type` on its own stream and returns the answer.
  v1::IngestEventsResponse Send(const std::vector<std::string>& events,
                                const std::string& log_type = "Okta.SystemLog") {
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", server_->bearer());
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
    auto stream = stub_->IngestEvents(&ctx);
    v1::IngestEventsRequest req;
    req.set_log_type(log_type);
    req.set_batch_id(++batch_id_);
    for (const std::string& e : events) req.add_events(e);
    v1::IngestEventsResponse resp;
    EXPECT_TRUE(stream->Write(req));
    EXPECT_TRUE(stream->Read(&resp));
    stream->WritesDone();
    grpc::Status status = stream->Finish();
    EXPECT_TRUE(status.ok()) << status.error_message();
    return resp;
  }

  RunResult Ctl(const std::vector<std::string>& args) {
    absl::StatusOr<RunResult> r = RunCommand(server_->Ctl(kPantherctl, args), tmp_.path());
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : RunResult{};
  }

  TempDir tmp_;
  std::unique_ptr<ServerProcess> server_;
  std::unique_ptr<v1::DetectionService::Stub> stub_;
  int metrics_port_ = 0;
  uint64_t batch_id_ = 0;
};

TEST_F(MetricsE2eTest, CountersMatchWhatWasSentInMetricsAndStatus) {
  // Nothing ingested yet: the figures are there, at zero.
  std::string answer = LoopbackHttpGet(metrics_port_, "/metrics");
  ASSERT_THAT(answer, StartsWith("HTTP/1.1 200 OK\r\n"));
  EXPECT_THAT(answer, HasSubstr("Content-Type: text/plain; version=0.0.4"));
  std::map<std::string, std::string> before = Samples(answer.substr(answer.find("\r\n\r\n") + 4));
  EXPECT_EQ(before["pantherd_events_accepted_total"], "0");
  EXPECT_EQ(before["pantherd_workers_live"], "2");
  EXPECT_THAT(LoopbackHttpGet(metrics_port_, "/"), StartsWith("HTTP/1.1 404 "));

  // Two rules and two workers.
  const std::string rules = tmp_.Sub("rules");
  WriteText(rules + "/who_x.yml",
            "AnalysisType: rule\nRuleID: Metrics.WhoX\nFilename: who_x.py\nEnabled: true\n"
            "LogTypes: [Okta.SystemLog]\nSeverity: Low\n");
  WriteText(rules + "/who_x.py", "def rule(event):\n    return event.get('who') == 'x'\n");
  WriteText(rules + "/raises.yml",
            "AnalysisType: rule\nRuleID: Metrics.Raises\nFilename: raises.py\nEnabled: true\n"
            "LogTypes: [Okta.SystemLog]\nSeverity: Low\n");
  WriteText(rules + "/raises.py", "def rule(event):\n    raise ValueError('boom')\n");
  RunResult uploaded = Ctl({"upload", rules});
  ASSERT_EQ(uploaded.exit_code, 0) << uploaded.out << uploaded.err;

  // Batch 1: three good events (two match), not JSON, not an object, too
  // large (over --max-event-bytes 400).
  v1::IngestEventsResponse r = Send({Event("m-1", "x"), Event("m-2", "y"), Event("m-3", "x"),
                                     "{not json", "[1, 2]", Event("m-4", std::string(500, 'z'))});
  EXPECT_EQ(r.accepted(), 3);
  EXPECT_EQ(r.rejected_size(), 3);
  // Batch 2: a log type pantherd does not know.
  r = Send({"{}", "{}"}, "No.Such.Type");
  EXPECT_EQ(r.rejected_size(), 2);
  // Batch 3: m-1 again (a duplicate: recognised before any rule runs on it).
  r = Send({Event("m-1", "x")});
  EXPECT_EQ(r.duplicates(), 1);

  answer = LoopbackHttpGet(metrics_port_, "/metrics");
  ASSERT_THAT(answer, StartsWith("HTTP/1.1 200 OK\r\n"));
  std::map<std::string, std::string> m = Samples(answer.substr(answer.find("\r\n\r\n") + 4));
  // The events of 2026-03-01 are older than the event retention.
  EXPECT_EQ(m["pantherd_events_stored_total"], "0");
  EXPECT_EQ(m["pantherd_ingest_batches_total"], "3");
  EXPECT_EQ(m["pantherd_ingest_batches_failed_total"], "0");
  EXPECT_EQ(m["pantherd_events_received_total"], "9");
  EXPECT_EQ(m["pantherd_events_accepted_total"], "3");
  EXPECT_EQ(m["pantherd_events_duplicate_total"], "1");
  EXPECT_EQ(m["pantherd_events_rejected_total{reason=\"not_json\"}"], "1");
  EXPECT_EQ(m["pantherd_events_rejected_total{reason=\"not_object\"}"], "1");
  EXPECT_EQ(m["pantherd_events_rejected_total{reason=\"too_large\"}"], "1");
  EXPECT_EQ(m["pantherd_events_rejected_total{reason=\"unknown_log_type\"}"], "2");
  EXPECT_EQ(m["pantherd_events_rejected_total{reason=\"other\"}"], "0");
  // rule() calls: the pre-filter skips Metrics.WhoX on the "y" event (it
  // cannot match), so it ran on m-1 and m-3; no rule ran on the re-sent m-1.
  EXPECT_EQ(m["pantherd_rule_evaluations_total{rule=\"Metrics.WhoX\"}"], "2");
  EXPECT_EQ(m["pantherd_rule_matches_total{rule=\"Metrics.WhoX\"}"], "2");
  EXPECT_EQ(m["pantherd_rule_errors_total{rule=\"Metrics.WhoX\"}"], "0");
  EXPECT_EQ(m["pantherd_rule_evaluations_total{rule=\"Metrics.Raises\"}"], "3");
  EXPECT_EQ(m["pantherd_rule_matches_total{rule=\"Metrics.Raises\"}"], "0");
  EXPECT_EQ(m["pantherd_rule_errors_total{rule=\"Metrics.Raises\"}"], "3");
  double seconds = 0;
  ASSERT_TRUE(absl::SimpleAtod(m["pantherd_rule_seconds_total{rule=\"Metrics.WhoX\"}"], &seconds));
  EXPECT_GT(seconds, 0);
  EXPECT_EQ(m["pantherd_workers_live"], "2");
  EXPECT_EQ(m["pantherd_worker_restarts_total"], "0");
  // The matches made an alert (its changes went to the feed); nobody listens.
  int64_t published = 0;
  ASSERT_TRUE(absl::SimpleAtoi(m["pantherd_alert_changes_published_total"], &published));
  EXPECT_GE(published, 1);
  EXPECT_EQ(m["pantherd_stream_subscribers"], "0");

  // `pantherctl status` shows the same numbers.
  RunResult status = Ctl({"--output", "json", "status"});
  ASSERT_EQ(status.exit_code, 0) << status.err;
  google::protobuf::Struct parsed;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(status.out, &parsed).ok()) << status.out;
  const auto& figures = parsed.fields().at("figures").struct_value().fields();
  const auto& ingest = figures.at("ingest").struct_value().fields();
  EXPECT_EQ(ingest.at("batches").number_value(), 3);
  EXPECT_EQ(ingest.at("eventsReceived").number_value(), 9);
  EXPECT_EQ(ingest.at("eventsAccepted").number_value(), 3);
  EXPECT_EQ(ingest.at("eventsDuplicate").number_value(), 1);
  const auto& rejected = ingest.at("eventsRejected").struct_value().fields();
  EXPECT_EQ(rejected.at("not_json").number_value(), 1);
  EXPECT_EQ(rejected.at("not_object").number_value(), 1);
  EXPECT_EQ(rejected.at("too_large").number_value(), 1);
  EXPECT_EQ(rejected.at("unknown_log_type").number_value(), 2);
  const auto& rule_list = figures.at("rules").list_value().values();
  ASSERT_EQ(rule_list.size(), 2);
  std::map<std::string, std::vector<double>> by_id;
  for (const auto& v : rule_list) {
    const auto& f = v.struct_value().fields();
    by_id[f.at("ruleId").string_value()] = {f.at("evaluations").number_value(),
                                            f.at("matches").number_value(),
                                            f.at("errors").number_value()};
  }
  EXPECT_EQ(by_id["Metrics.WhoX"], (std::vector<double>{2, 2, 0}));
  EXPECT_EQ(by_id["Metrics.Raises"], (std::vector<double>{3, 0, 3}));
  EXPECT_EQ(figures.at("workers").struct_value().fields().at("live").number_value(), 2);

  // And in the human form.
  RunResult text = Ctl({"status"});
  ASSERT_EQ(text.exit_code, 0) << text.err;
  EXPECT_THAT(text.out, HasSubstr("received 9, accepted 3, duplicate 1, unevaluated 0"));
  EXPECT_THAT(text.out,
              HasSubstr("not_json 1, not_object 1, too_large 1, unknown_log_type 2, other 0"));
  EXPECT_THAT(text.out, HasSubstr("RULE"));
  EXPECT_THAT(text.out, ::testing::ContainsRegex("Metrics\\.WhoX +2 +2 +0 "));
  EXPECT_THAT(text.out, ::testing::ContainsRegex("Metrics\\.Raises +3 +0 +3 "));

  // Batch 4: events of today, within the event retention, out of order and
  // with an event already processed among them: stored in blocks encoded
  // while the batch was evaluated, none on the commit path.
  // An hour ago (the search's default range ends now).
  const absl::Time base = absl::Now() - absl::Hours(1);
  auto recent = [&](const std::string& uuid, int second) {
    return absl::StrCat(
        R"({"uuid":")", uuid, R"(","published":")",
        absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", base + absl::Seconds(second), absl::UTCTimeZone()),
        R"(","eventType":"x","who":"y"})");
  };
  r = Send({recent("s-3", 13), recent("s-1", 11), Event("m-2", "y"), recent("s-2", 12)});
  EXPECT_EQ(r.accepted(), 3);
  EXPECT_EQ(r.duplicates(), 1);

  answer = LoopbackHttpGet(metrics_port_, "/metrics");
  m = Samples(answer.substr(answer.find("\r\n\r\n") + 4));
  EXPECT_EQ(m["pantherd_events_stored_total"], "3");
  EXPECT_EQ(m["pantherd_event_blocks_encoded_at_commit_total"], "0");
  RunResult found =
      Ctl({"--output", "csv", "search", "SELECT uuid FROM okta_systemlog ORDER BY p_event_time"});
  ASSERT_EQ(found.exit_code, 0) << found.err;
  EXPECT_THAT(found.out, HasSubstr("s-1\r\ns-2\r\ns-3\r\n"));
}

}  // namespace
}  // namespace pantherd::testing
