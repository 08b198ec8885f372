// Stored events end to end (docs/events.md): the real pantherd with the
// bundled rules keeps every accepted event, `pantherctl windows list` shows a
// window below its threshold, `pantherctl alerts events` streams every event
// counted into an alert (not just its samples), and --event-retention purges.
// Event times are relative to now: the retention is measured against the
// server clock.
#include <signal.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <optional>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"
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
using ::testing::HasSubstr;

constexpr char kPantherd[] = PANTHERD_BINARY;
constexpr char kPantherctl[] = PANTHERCTL_BINARY;
constexpr char kRulesDir[] = PANTHERD_SOURCE_DIR "/rules";

std::string FailedLogin(int n, absl::Time published) {
  return absl::StrFormat(
      R"({"uuid":"ev-%d","published":"%s","eventType":"user.session.start",)"
      R"("displayMessage":"User login to Okta","severity":"WARN",)"
      R"("actor":{"id":"00u1","type":"User","alternateId":"admin","displayName":"Admin"},)"
      R"("client":{"ipAddress":"203.0.113.9","userAgent":{"rawUserAgent":"curl/8"}},)"
      R"("outcome":{"result":"FAILURE","reason":"INVALID_CREDENTIALS"}})",
      n, absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", published, absl::UTCTimeZone()));
}

class EventsE2eTest : public ::testing::Test {
 protected:
  void Start(std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"--rules-dir", kRulesDir};
    args.insert(args.end(), extra.begin(), extra.end());
    StartWith("data", args);
  }
  // A server on data directory `name` with only `args` (no rules unless they
  // say so).
  void StartWith(const std::string& name, std::vector<std::string> args) {
    args.insert(args.end(), {"--workers", "1"});
    absl::StatusOr<ServerProcess> s =
        ServerProcess::Start(kPantherd, tmp_.Sub(name), tmp_.path(), args, absl::Seconds(60));
    ASSERT_TRUE(s.ok()) << s.status();
    server_ = std::make_unique<ServerProcess>(std::move(*s));
    stub_ = v1::DetectionService::NewStub(
        grpc::CreateChannel(server_->address(), grpc::InsecureChannelCredentials()));
  }
  void Stop() {
    stub_.reset();
    server_->process().Signal(SIGTERM);
    absl::StatusOr<int> code = server_->process().Wait(absl::Seconds(30));
    ASSERT_TRUE(code.ok());
    EXPECT_EQ(*code, 0) << server_->Log();
    server_.reset();
  }
  void Send(const std::vector<std::string>& events) {
    grpc::Status status;
    IngestBatches(*stub_, server_->bearer(), {events}, &batch_id_, &status);
    ASSERT_TRUE(status.ok()) << status.error_message();
  }
  RunResult Ctl(const std::vector<std::string>& args) {
    absl::StatusOr<RunResult> r = RunCommand(server_->Ctl(kPantherctl, args), tmp_.path());
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : RunResult();
  }

  TempDir tmp_;
  std::unique_ptr<ServerProcess> server_;
  std::unique_ptr<v1::DetectionService::Stub> stub_;
  uint64_t batch_id_ = 0;
};

TEST_F(EventsE2eTest, WindowsExplainSilenceAndAlertsStreamEveryCountedEvent) {
  Start({"--alert-sample-events", "3"});
  const absl::Time base = absl::Now() - absl::Hours(2);
  std::vector<std::string> first;
  for (int i = 0; i < 4; ++i) first.push_back(FailedLogin(i, base + absl::Minutes(i)));
  Send(first);

  // Four failures against a threshold of five: no alert, but a window says so.
  RunResult windows = Ctl({"windows", "list", "--rule", "Okta.FailedLogin"});
  ASSERT_EQ(windows.exit_code, 0) << windows.err;
  EXPECT_THAT(windows.out, HasSubstr("Okta.FailedLogin"));
  EXPECT_THAT(windows.out, HasSubstr("203.0.113.9"));
  v1::ListWindowsResponse listed;
  RunResult json = Ctl({"--output", "json", "windows", "list", "--rule", "Okta.FailedLogin"});
  ASSERT_EQ(json.exit_code, 0) << json.err;
  ASSERT_TRUE(ParsePantherctlJson(json.out, &listed).ok()) << json.out;
  ASSERT_EQ(listed.windows_size(), 1) << json.out;
  EXPECT_EQ(listed.windows(0).count(), 4);
  EXPECT_EQ(listed.windows(0).threshold(), 5);
  EXPECT_EQ(listed.windows(0).alert_id(), "");

  // Explain: the stored event matched, with its dedup string, and its window
  // is at 4 of 5.
  RunResult explained = Ctl({"explain", "Okta.FailedLogin", "ev-1"});
  ASSERT_EQ(explained.exit_code, 0) << explained.err;
  EXPECT_THAT(explained.out, HasSubstr("MATCH"));
  EXPECT_THAT(explained.out, HasSubstr("runs the rule on this event"));
  EXPECT_THAT(explained.out, HasSubstr("Multiple Failed Logins for admin"));
  EXPECT_THAT(explained.out, HasSubstr("4 of 5 (below the threshold)"));
  json = Ctl({"--output", "json", "explain", "Okta.FailedLogin", "ev-1"});
  v1::ExplainEventResponse why;
  ASSERT_TRUE(ParsePantherctlJson(json.out, &why).ok()) << json.out << json.err;
  EXPECT_TRUE(why.matched());
  EXPECT_EQ(why.dedup_string(), "203.0.113.9");
  EXPECT_EQ(why.threshold(), 5);
  ASSERT_EQ(why.windows_size(), 1);
  EXPECT_EQ(why.windows(0).count(), 4);
  EXPECT_THAT(why.event_json(), HasSubstr("p_event_time"));
  // A raw event from a file that does not match.
  const std::string success_file = tmp_.Sub("success.json");
  {
    std::string success = FailedLogin(99, base);
    absl::StrReplaceAll({{"FAILURE", "SUCCESS"}}, &success);
    std::ofstream(success_file) << success;
  }
  json = Ctl({"--output", "json", "explain", "Okta.FailedLogin", "--event", success_file});
  why.Clear();
  ASSERT_TRUE(ParsePantherctlJson(json.out, &why).ok()) << json.out << json.err;
  EXPECT_FALSE(why.matched());
  bool saw_rule = false;
  for (const v1::FunctionResult& f : why.result().functions()) {
    if (f.function() == "rule") {
      saw_rule = true;
      EXPECT_EQ(f.output_json(), "false");
    }
  }
  EXPECT_TRUE(saw_rule) << json.out;
  RunResult missing = Ctl({"explain", "Okta.FailedLogin", "no-such-event"});
  EXPECT_NE(missing.exit_code, 0);
  EXPECT_THAT(missing.err, HasSubstr("no stored Okta.SystemLog event no-such-event"));
  RunResult no_rule = Ctl({"explain", "No.Such.Rule", "ev-1"});
  EXPECT_NE(no_rule.exit_code, 0);
  EXPECT_THAT(no_rule.err, HasSubstr("no stored rule No.Such.Rule"));

  std::vector<std::string> second;
  for (int i = 4; i < 8; ++i) second.push_back(FailedLogin(i, base + absl::Minutes(i)));
  Send(second);
  std::vector<v1::Alert> alerts = ListAlerts(*stub_, server_->bearer());
  ASSERT_EQ(alerts.size(), 1u);
  EXPECT_EQ(alerts[0].event_count(), 8);
  EXPECT_EQ(alerts[0].matched_events_stored(), 3);  // --alert-sample-events 3
  // The window has its alert now: listed only with --all.
  json = Ctl({"--output", "json", "windows", "list"});
  listed.Clear();
  ASSERT_TRUE(ParsePantherctlJson(json.out, &listed).ok()) << json.out;
  EXPECT_EQ(listed.windows_size(), 0) << json.out;
  json = Ctl({"--output", "json", "windows", "list", "--all"});
  listed.Clear();
  ASSERT_TRUE(ParsePantherctlJson(json.out, &listed).ok()) << json.out;
  ASSERT_GE(listed.windows_size(), 1) << json.out;

  // Every counted event, in event-time order, not just the three samples.
  json = Ctl({"--output", "json", "alerts", "events", alerts[0].id()});
  ASSERT_EQ(json.exit_code, 0) << json.err;
  v1::StreamAlertEventsResponse events;
  ASSERT_TRUE(ParsePantherctlJson(json.out, &events).ok()) << json.out;
  ASSERT_EQ(events.events_size(), 8) << json.out;
  for (int i = 0; i < 8; ++i) {
    EXPECT_EQ(events.events(i).event_id(), absl::StrCat("ev-", i));
    EXPECT_THAT(events.events(i).json(), HasSubstr("\"p_event_time\""));
  }
  RunResult samples = Ctl({"--output", "json", "alerts", "events", alerts[0].id(), "--samples"});
  ASSERT_EQ(samples.exit_code, 0) << samples.err;
  v1::ListAlertEventsResponse stored;
  ASSERT_TRUE(ParsePantherctlJson(samples.out, &stored).ok()) << samples.out;
  EXPECT_EQ(stored.events_size(), 3);
  RunResult table = Ctl({"alerts", "events", alerts[0].id(), "--limit", "5"});
  ASSERT_EQ(table.exit_code, 0) << table.err;
  EXPECT_THAT(table.out, HasSubstr("ev-4"));
  EXPECT_THAT(table.out, ::testing::Not(HasSubstr("ev-5")));
  EXPECT_THAT(table.err, HasSubstr("--limit 5"));
  // An unknown alert is refused by name.
  RunResult unknown = Ctl({"alerts", "events", "0123456789abcdef0123456789abcdef"});
  EXPECT_NE(unknown.exit_code, 0);
  EXPECT_THAT(unknown.err, HasSubstr("not found"));

  // A retention of 0 keeps nothing: the next purge deletes the stored events;
  // the alert still counts them.
  Stop();
  // A replay's scratch store left by a crash is removed at start.
  const std::string scratch = tmp_.Sub("data") + "/replay-00112233aabbccdd";
  std::filesystem::create_directories(scratch);
  std::ofstream(scratch + "/CURRENT") << "MANIFEST-000001\n";
  Start({"--event-retention", "0", "--purge-interval-seconds", "1"});
  EXPECT_FALSE(std::filesystem::exists(scratch));
  ASSERT_TRUE(WaitUntil(
      [&] {
        RunResult r = Ctl({"--output", "json", "alerts", "events", alerts[0].id()});
        v1::StreamAlertEventsResponse e;
        return r.exit_code == 0 && ParsePantherctlJson(r.out, &e).ok() && e.events_size() == 0 &&
               e.events_not_retained() == 8;
      },
      absl::Seconds(30), "the events purged"));
  // The purge logs once it has also compacted what it deleted, a moment after
  // the events are gone. They were on disk (flushed at the stop), and the
  // compaction leaves no file of them.
  ASSERT_TRUE(WaitUntil([&] { return absl::StrContains(server_->Log(), "events=8"); },
                        absl::Seconds(30), "the purge logged"));
  EXPECT_THAT(server_->Log(), HasSubstr("event_store_bytes=0"));
  // Explain by id still knows the event from its processed record: ingested,
  // no longer stored.
  RunResult gone = Ctl({"explain", "Okta.FailedLogin", "ev-1"});
  EXPECT_NE(gone.exit_code, 0);
  EXPECT_THAT(gone.err, HasSubstr("no stored Okta.SystemLog event ev-1: it was ingested"));
  EXPECT_THAT(gone.err, HasSubstr("has been purged since"));
  RunResult bad = Ctl({"status"});
  EXPECT_EQ(bad.exit_code, 0);
  Stop();
  absl::StatusOr<ServerProcess> refused =
      ServerProcess::Start(kPantherd, tmp_.Sub("data"), tmp_.path(),
                           {"--event-retention", "30 days"}, absl::Seconds(30));
  ASSERT_FALSE(refused.ok());
  EXPECT_THAT(std::string(refused.status().message()), HasSubstr("--event-retention"));
}

// Replay: a day ingested before the rules existed, replayed with the rule
// folder, gives the alerts that ingesting the same day with the rules
// uploaded first gives (examples/okta-events.jsonl, the bundled pack).
TEST_F(EventsE2eTest, ReplayingADayGivesTheAlertsOfIngestingItWithTheRules) {
  const std::string events = PANTHERD_SOURCE_DIR "/examples/okta-events.jsonl";
  auto canonical = [](const v1::Alert& a) {
    return absl::StrCat(
        a.type(), "|", a.rule_id(), "|", a.dedup_string(), "|", a.title(), "|", a.severity(), "|",
        a.event_count(), "|", TimeUtil::ToString(a.window_start()), "|",
        TimeUtil::ToString(a.first_event_time()), "|", TimeUtil::ToString(a.last_event_time()));
  };
  // Live: the rules first, then the day.
  Start({"--event-retention", "36500d"});
  RunResult sent = Ctl({"send", events, "--quiet"});
  ASSERT_EQ(sent.exit_code, 0) << sent.err;
  std::vector<std::string> live;
  for (const v1::Alert& a : ListAlerts(*stub_, server_->bearer())) live.push_back(canonical(a));
  ASSERT_FALSE(live.empty());
  Stop();

  // Replay: the day first, on a server without rules; then the folder.
  StartWith("data-replay", {"--event-retention", "36500d"});
  sent = Ctl({"send", events, "--quiet"});
  ASSERT_EQ(sent.exit_code, 0) << sent.err;
  EXPECT_TRUE(ListAlerts(*stub_, server_->bearer()).empty());
  RunResult replayed = Ctl({"--output", "json", "replay", kRulesDir, "--since",
                            "2026-11-24T00:00:00Z", "--until", "2026-11-25T00:00:00Z"});
  ASSERT_EQ(replayed.exit_code, 0) << replayed.err;
  v1::ReplayRulesResponse replay;
  ASSERT_TRUE(ParsePantherctlJson(replayed.out, &replay).ok()) << replayed.out;
  EXPECT_EQ(replay.events(), 345);
  std::vector<std::string> backtest;
  for (const v1::Alert& a : replay.alerts()) backtest.push_back(canonical(a));
  std::sort(live.begin(), live.end());
  std::sort(backtest.begin(), backtest.end());
  EXPECT_EQ(backtest, live) << replayed.out.substr(0, 3000);
  // Nothing live changed: no alert, no window.
  EXPECT_TRUE(ListAlerts(*stub_, server_->bearer()).empty());
  RunResult windows = Ctl({"--output", "json", "windows", "list", "--all"});
  v1::ListWindowsResponse listed;
  ASSERT_TRUE(ParsePantherctlJson(windows.out, &listed).ok()) << windows.out;
  EXPECT_EQ(listed.windows_size(), 0);
  // A table for people, and a stored rule replayed by id.
  RunResult table = Ctl(
      {"replay", kRulesDir, "--since", "2026-11-24T00:00:00Z", "--until", "2026-11-25T00:00:00Z"});
  ASSERT_EQ(table.exit_code, 0) << table.err;
  EXPECT_THAT(table.err, HasSubstr("345 events"));
  EXPECT_THAT(table.err, HasSubstr("nothing was stored or notified"));
  RunResult unknown = Ctl({"replay", "No.Such.Rule", "--since", "30d"});
  EXPECT_NE(unknown.exit_code, 0);
  EXPECT_THAT(unknown.err, HasSubstr("no stored rule No.Such.Rule"));

  // upload --backtest: the new versions next to the live ones, then stored.
  RunResult first = Ctl({"upload", kRulesDir, "--backtest", "3650d"});
  ASSERT_EQ(first.exit_code, 0) << first.err;
  EXPECT_THAT(first.err, HasSubstr("Backtest over 345 stored events"));
  EXPECT_THAT(first.err, ::testing::ContainsRegex("Okta.FailedLogin +1 +[0-9]+ +0 +new"));
  RunResult again = Ctl({"upload", kRulesDir, "--backtest", "3650d"});
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_THAT(again.err, ::testing::ContainsRegex("Okta.FailedLogin +1 +[0-9]+ +0 +1 +[0-9]+ +0"));
}

// A replay streams progress while it runs; a client that cancels stops it
// (after its current batch), and its scratch store is removed. Rule code
// that is slow on purpose makes the replay last long enough to cancel.
TEST_F(EventsE2eTest, AReplayStreamsProgressAndACancelledOneLeavesNothingBehind) {
  StartWith("data-cancel", {"--event-retention", "36500d"});
  const absl::Time now = absl::Now();
  std::vector<std::string> events;
  for (int i = 0; i < 3000; ++i) {
    events.push_back(FailedLogin(i, now - absl::Minutes(50) + absl::Milliseconds(10 * i)));
  }
  Send(events);
  v1::ReplayRulesRequest request;
  v1::AnalysisFile* spec = request.mutable_content()->add_files();
  spec->set_path("slow.yml");
  spec->set_content(
      "AnalysisType: rule\nRuleID: Slow.Rule\nFilename: slow.py\nEnabled: true\n"
      "LogTypes: [Okta.SystemLog]\nSeverity: Low\n");
  v1::AnalysisFile* code = request.mutable_content()->add_files();
  code->set_path("slow.py");
  code->set_content("import time\ndef rule(event):\n    time.sleep(0.005)\n    return False\n");
  *request.mutable_since() =
      TimeUtil::MicrosecondsToTimestamp(absl::ToUnixMicros(now - absl::Hours(2)));
  *request.mutable_until() = TimeUtil::MicrosecondsToTimestamp(absl::ToUnixMicros(now));

  grpc::ClientContext context;
  context.AddMetadata("authorization", server_->bearer());
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
  std::unique_ptr<grpc::ClientReader<v1::ReplayRulesResponse>> reader =
      stub_->ReplayRules(&context, request);
  v1::ReplayRulesResponse message;
  ASSERT_TRUE(reader->Read(&message));
  ASSERT_TRUE(message.has_progress()) << message.DebugString();
  EXPECT_GE(message.progress().events(), 500);
  EXPECT_LT(message.progress().events(), 3000);
  EXPECT_GT(message.progress().fraction(), 0);
  EXPECT_LT(message.progress().fraction(), 1);
  // While it runs, its scratch store is in the data directory.
  auto scratch_stores = [&] {
    int n = 0;
    for (const auto& e : std::filesystem::directory_iterator(tmp_.Sub("data-cancel"))) {
      n += absl::StartsWith(e.path().filename().string(), "replay-");
    }
    return n;
  };
  EXPECT_EQ(scratch_stores(), 1);
  context.TryCancel();
  while (reader->Read(&message)) {
  }
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::CANCELLED);
  // A batch takes about 2.5 s (500 events, 5 ms each); the rest of the
  // replay would take 10 s more. Gone well before that: it stopped early.
  const absl::Time deadline = absl::Now() + absl::Seconds(7);
  while (scratch_stores() > 0 && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(50));
  EXPECT_EQ(scratch_stores(), 0) << "the replay went on after its client cancelled";
  // The server goes on: a replay of a quick rule runs to its end.
  code->set_content("def rule(event):\n    return False\n");
  grpc::ClientContext again;
  again.AddMetadata("authorization", server_->bearer());
  again.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
  reader = stub_->ReplayRules(&again, request);
  std::optional<v1::ReplayRulesResponse> result;
  while (reader->Read(&message)) {
    if (!message.has_progress()) result = message;
  }
  ASSERT_TRUE(reader->Finish().ok());
  ASSERT_TRUE(result.has_value());
  EXPECT_EQ(result->events(), 3000);
  EXPECT_EQ(result->alerts_total(), 0);
  EXPECT_TRUE(ListAlerts(*stub_, server_->bearer()).empty());
}

}  // namespace
}  // namespace pantherd::testing
