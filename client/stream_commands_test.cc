// `pantherctl send` and `pantherctl alerts tail` against an in-process fake
// DetectionService. Every CLI run is bounded (RunBounded aborts the test
// binary after kRunLimit), so a hang fails instead of blocking.
#include <signal.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <iostream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "client/cli.h"
#include "client/fake_pantherd.h"
#include "client/output.h"
#include "gmock/gmock.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"

namespace pantherd::client {
namespace {

namespace fs = std::filesystem;
namespace v1 = ::pantherd::v1;
using ::pantherd::client::testing::FakeDetectionService;
using ::pantherd::client::testing::FakePantherd;
using ::pantherd::client::testing::ReserveClosedPort;
using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::StartsWith;

constexpr auto kRunLimit = std::chrono::seconds(30);

struct CliResult {
  int code = -1;
  std::string out;
  std::string err;
};

CliResult RunBounded(const std::vector<std::string>& args, bool err_terminal = false) {
  auto run = [args, err_terminal] {
    std::ostringstream out, err;
    CliResult result;
    result.code = RunCli(args, out, err, /*color=*/false, err_terminal);
    result.out = out.str();
    result.err = err.str();
    return result;
  };
  std::future<CliResult> future = std::async(std::launch::async, run);
  if (future.wait_for(kRunLimit) != std::future_status::ready) {
    std::cerr << "pantherctl did not finish within the limit; aborting the test binary\n";
    std::abort();
  }
  return future.get();
}

std::vector<std::string> Lines(const std::string& text) {
  return absl::StrSplit(text, '\n', absl::SkipEmpty());
}

class SendTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(server_.ok());
    dir_ = fs::temp_directory_path() /
           ("pantherctl_send_" + std::to_string(getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string Write(const std::string& content) {
    const fs::path path = dir_ / "events.json";
    std::ofstream(path, std::ios::binary) << content;
    return path.string();
  }
  CliResult Send(std::vector<std::string> extra, bool err_terminal = false) {
    std::vector<std::string> args = {"--server", server_.address(), "send"};
    args.insert(args.end(), extra.begin(), extra.end());
    return RunBounded(args, err_terminal);
  }
  std::vector<std::vector<std::string>> Batches() {
    std::lock_guard<std::mutex> lock(fake_.mu);
    std::vector<std::vector<std::string>> batches;
    for (const auto& request : fake_.ingest_requests) {
      batches.emplace_back(request.events().begin(), request.events().end());
    }
    return batches;
  }

  FakeDetectionService fake_;
  FakePantherd server_{{&fake_}};
  fs::path dir_;
};

TEST_F(SendTest, JsonLinesInBatches) {
  const std::string file = Write("{\"n\":1}\n\n{\"n\":2}\n{\"n\":3}\n  \n{\"n\":4}\n{\"n\":5}\n");
  CliResult r = Send(
      {file, "--batch-size", "2", "--log-type", "AWS.CloudTrail", "--source-label", "backfill"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.err, "");
  EXPECT_THAT(Batches(),
              ElementsAre(ElementsAre("{\"n\":1}", "{\"n\":2}"),
                          ElementsAre("{\"n\":3}", "{\"n\":4}"), ElementsAre("{\"n\":5}")));
  std::lock_guard<std::mutex> lock(fake_.mu);
  for (size_t i = 0; i < fake_.ingest_requests.size(); ++i) {
    EXPECT_EQ(fake_.ingest_requests[i].batch_id(), i + 1);
    EXPECT_EQ(fake_.ingest_requests[i].log_type(), "AWS.CloudTrail");
    EXPECT_EQ(fake_.ingest_requests[i].source_label(), "backfill");
  }
  EXPECT_THAT(r.out, HasSubstr("Events sent:     5"));
  EXPECT_THAT(r.out, HasSubstr("Accepted:        5"));
  EXPECT_THAT(r.out, Not(HasSubstr("Not acknowledged")));
}

TEST_F(SendTest, DefaultsAndOneBatch) {
  CliResult r = Send({Write("{\"n\":1}\n{\"n\":2}\n")});
  EXPECT_EQ(r.code, 0) << r.err;
  std::lock_guard<std::mutex> lock(fake_.mu);
  ASSERT_EQ(fake_.ingest_requests.size(), 1u);
  EXPECT_EQ(fake_.ingest_requests[0].log_type(), "Okta.SystemLog");
  EXPECT_EQ(fake_.ingest_requests[0].source_label(), "api");
  EXPECT_EQ(fake_.ingest_requests[0].events_size(), 2);
}

TEST_F(SendTest, JsonArraySplitIntoElements) {
  const std::string file = Write(
      "[\n  {\"m\":\"a ] b\"},\n  {\"m\":\"say \\\"hi\\\" [\"},\n"
      "  {\"m\":{\"x\":[1,2]},\"n\":\"}\"}\n]\n");
  CliResult r = Send({file, "--batch-size", "2"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(Batches(),
              ElementsAre(ElementsAre("{\"m\":\"a ] b\"}", "{\"m\":\"say \\\"hi\\\" [\"}"),
                          ElementsAre("{\"m\":{\"x\":[1,2]},\"n\":\"}\"}")));
}

// Rejects events mentioning "bad", counts those mentioning "dup" as
// duplicates, and creates one alert per batch.
v1::IngestEventsResponse Judge(const v1::IngestEventsRequest& request) {
  v1::IngestEventsResponse response;
  for (int i = 0; i < request.events_size(); ++i) {
    const std::string& e = request.events(i);
    if (e.find("bad") != std::string::npos) {
      v1::RejectedEvent* r = response.add_rejected();
      r->set_index(i);
      r->set_reason("not a valid Okta.SystemLog event: missing uuid");
    } else if (e.find("dup") != std::string::npos) {
      response.set_duplicates(response.duplicates() + 1);
    } else {
      response.set_accepted(response.accepted() + 1);
    }
  }
  response.set_alerts_created(1);
  return response;
}

TEST_F(SendTest, RejectionsAreListedAndFail) {
  fake_.ingest_handler = Judge;
  const std::string file = Write("{\"n\":0}\n{\"dup\":1}\n\n{\"n\":2}\n{\"bad\":3}\n{\"n\":4}\n");
  CliResult r = Send({file, "--batch-size", "2"});
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.out, HasSubstr("Accepted:        3"));
  EXPECT_THAT(r.out, HasSubstr("Duplicates:      1"));
  EXPECT_THAT(r.out, HasSubstr("Rejected:        1"));
  EXPECT_THAT(r.out, HasSubstr("Alerts created:  3"));
  EXPECT_THAT(r.out, HasSubstr("#3 (line 5): not a valid Okta.SystemLog event: missing uuid"));
  EXPECT_EQ(r.err, "pantherctl: error: 1 of 5 events rejected\n");
}

TEST_F(SendTest, DuplicatesOnlyExitZero) {
  fake_.ingest_handler = Judge;
  CliResult r = Send({Write("{\"dup\":1}\n{\"n\":2}\n")});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("Duplicates:      1"));
}

TEST_F(SendTest, JsonSummary) {
  fake_.ingest_handler = Judge;
  CliResult r = Send({Write("[{\"n\":0},{\"bad\":1},{\"dup\":2}]"), "--output", "json"});
  EXPECT_EQ(r.code, 1);
  google::protobuf::Struct summary;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(r.out, &summary).ok()) << r.out;
  const auto& f = summary.fields();
  EXPECT_EQ(f.at("events").number_value(), 3);
  EXPECT_EQ(f.at("accepted").number_value(), 1);
  EXPECT_EQ(f.at("duplicates").number_value(), 1);
  EXPECT_EQ(f.at("rejected").number_value(), 1);
  EXPECT_EQ(f.at("alertsCreated").number_value(), 1);
  ASSERT_EQ(f.at("rejectedEvents").list_value().values_size(), 1);
  const auto& rejected = f.at("rejectedEvents").list_value().values(0).struct_value().fields();
  EXPECT_EQ(rejected.at("index").number_value(), 1);
  EXPECT_EQ(rejected.at("line").number_value(), 1);
  EXPECT_EQ(f.count("unacknowledgedFromIndex"), 0u);
}

// Reports, per batch, rule "Okta.FailedLogin" matching every event into one
// window of threshold 5 (the alert comes with the fifth event).
class FailedLoginJudge {
 public:
  v1::IngestEventsResponse operator()(const v1::IngestEventsRequest& request) {
    v1::IngestEventsResponse response;
    response.set_accepted(request.events_size());
    v1::RuleIngestStats* rule = response.add_rules();
    rule->set_rule_id("Okta.FailedLogin");
    rule->set_matches(request.events_size());
    const bool reached = count_ < 5 && count_ + request.events_size() >= 5;
    count_ += request.events_size();
    rule->set_alerts_created(reached ? 1 : 0);
    v1::RuleWindowState* w = rule->add_windows();
    w->set_dedup_string("admin");
    w->mutable_window_start()->set_seconds(1000);
    w->set_count(count_);
    w->set_threshold(5);
    if (count_ >= 5) w->set_alert_id("a1");
    return response;
  }

 private:
  int count_ = 0;
};

TEST_F(SendTest, SummaryCountsMatchesAndOpenWindowsPerRule) {
  fake_.ingest_handler = FailedLoginJudge();
  CliResult r = Send({Write("{\"n\":1}\n{\"n\":2}\n{\"n\":3}\n"), "--batch-size", "2"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("Matches by rule:\n"
                               "  Okta.FailedLogin: 3 matches, 0 alerts (window 3/5 open)\n"));

  // Two more reach the threshold: the window is no longer open.
  r = Send({Write("{\"n\":4}\n{\"n\":5}\n")});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("  Okta.FailedLogin: 2 matches, 1 alert\n"));

  fake_.ingest_handler = FailedLoginJudge();
  r = Send({Write("{\"n\":1}\n"), "--output", "json"});
  EXPECT_EQ(r.code, 0) << r.err;
  google::protobuf::Struct summary;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(r.out, &summary).ok()) << r.out;
  const auto& rules = summary.fields().at("rules").list_value();
  ASSERT_EQ(rules.values_size(), 1);
  const auto& rule = rules.values(0).struct_value().fields();
  EXPECT_EQ(rule.at("ruleId").string_value(), "Okta.FailedLogin");
  EXPECT_EQ(rule.at("matches").number_value(), 1);
  EXPECT_EQ(rule.at("alertsCreated").number_value(), 0);
  const auto& open = rule.at("openWindows").list_value();
  ASSERT_EQ(open.values_size(), 1);
  EXPECT_EQ(open.values(0).struct_value().fields().at("count").number_value(), 1);
  EXPECT_EQ(open.values(0).struct_value().fields().at("threshold").number_value(), 5);

  // Accepted events no rule matched say so.
  fake_.ingest_handler = nullptr;
  r = Send({Write("{\"n\":1}\n")});
  EXPECT_THAT(r.out, HasSubstr("Matches by rule: none"));
}

// A rule with CreateAlert: false reports signals, not alerts.
TEST_F(SendTest, SignalRulesSaySignals) {
  fake_.ingest_handler = [](const v1::IngestEventsRequest& request) {
    v1::IngestEventsResponse response;
    response.set_accepted(request.events_size());
    v1::RuleIngestStats* rule = response.add_rules();
    rule->set_rule_id("Okta.SSO.to.AWS");
    rule->set_matches(request.events_size());
    rule->set_signals_created(1);
    rule->set_signals_updated(request.events_size() - 1);
    return response;
  };
  CliResult r = Send({Write("{\"n\":1}\n{\"n\":2}\n")});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("Alerts created:  0\n"));
  EXPECT_THAT(r.out, HasSubstr("  Okta.SSO.to.AWS: 2 matches, 0 alerts, 1 signal (1 updated)\n"));
  r = Send({Write("{\"n\":1}\n"), "--output", "json"});
  EXPECT_EQ(r.code, 0) << r.err;
  google::protobuf::Struct summary;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(r.out, &summary).ok()) << r.out;
  const auto& rule = summary.fields().at("rules").list_value().values(0).struct_value().fields();
  EXPECT_EQ(rule.at("alertsCreated").number_value(), 0);
  EXPECT_EQ(rule.at("signalsCreated").number_value(), 1);
}

TEST_F(SendTest, ProgressBarOnlyOnATerminal) {
  const std::string file = Write("{\"n\":1}\n{\"n\":2}\n{\"n\":3}\n{\"n\":4}\n");
  CliResult r = Send({file, "--batch-size", "2"}, /*err_terminal=*/true);
  EXPECT_EQ(r.code, 0) << r.err;
  // Drawn in place (carriage return, erase to end of line) with the file's
  // total, then erased.
  EXPECT_THAT(r.err, HasSubstr("\r["));
  EXPECT_THAT(r.err, HasSubstr("/4 events"));
  EXPECT_THAT(r.err, HasSubstr("\033[K"));
  EXPECT_EQ(r.err.substr(r.err.size() - 4), "\r\033[K");
  EXPECT_THAT(r.out, HasSubstr("Events sent:     4"));

  r = Send({file, "--quiet"}, /*err_terminal=*/true);
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.err, "");
  r = Send({file, "--output", "json"}, /*err_terminal=*/true);
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.err, "");
  r = Send({file});
  EXPECT_EQ(r.err, "");
}

TEST_F(SendTest, BrokenStreamReportsUnacknowledged) {
  fake_.ingest_fail_after = 1;
  CliResult r =
      Send({Write("{\"n\":0}\n{\"n\":1}\n{\"n\":2}\n{\"n\":3}\n{\"n\":4}\n"), "--batch-size", "2"});
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.out, HasSubstr("Accepted:        2"));
  EXPECT_THAT(r.out, HasSubstr("Not acknowledged: events from #2 (line 3) on"));
  EXPECT_THAT(r.err, HasSubstr("pantherd is shutting down"));
  EXPECT_THAT(r.err, ::testing::Not(HasSubstr("UNAVAILABLE")));
}

TEST_F(SendTest, MalformedArrayFailsAfterSendingWhatCameBefore) {
  CliResult r =
      Send({Write("[{\"n\":0},\n{\"n\":1},\n{\"n\":\"unterminated}\n"), "--batch-size", "1"});
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(Batches(), ElementsAre(ElementsAre("{\"n\":0}"), ElementsAre("{\"n\":1}")));
  EXPECT_THAT(r.out, HasSubstr("Not acknowledged: events from #2"));
  EXPECT_THAT(r.err, HasSubstr("unterminated JSON array"));
}

TEST_F(SendTest, StandardInput) {
  std::istringstream in("{\"n\":1}\n{\"n\":2}\n");
  std::streambuf* saved = std::cin.rdbuf(in.rdbuf());
  CliResult r = Send({"-"});
  std::cin.rdbuf(saved);
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(Batches(), ElementsAre(ElementsAre("{\"n\":1}", "{\"n\":2}")));
}

TEST_F(SendTest, MissingFileAndUnreachableServer) {
  CliResult r = Send({(dir_ / "nope.json").string()});
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, HasSubstr("cannot open"));

  const std::string address = "127.0.0.1:" + std::to_string(ReserveClosedPort());
  r = RunBounded({"--server", address, "send", Write("{\"n\":1}\n")});
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, HasSubstr("cannot reach pantherd at " + address));
  EXPECT_EQ(Lines(r.err).size(), 1u);
}

// --- alerts tail ---

v1::StreamAlertsResponse Change(uint64_t sequence, const std::string& title) {
  v1::StreamAlertsResponse response;
  v1::AlertChange* change = response.mutable_change();
  change->set_sequence(sequence);
  change->mutable_alert()->set_id(absl::StrCat("alert", sequence));
  change->set_kind(sequence == 1 ? v1::AlertChange::KIND_CREATED : v1::AlertChange::KIND_UPDATED);
  change->mutable_time()->set_seconds(1714564800);  // 2024-05-01T12:00:00Z
  change->mutable_alert()->set_rule_id("Okta.Login.Failed");
  change->mutable_alert()->set_severity(v1::SEVERITY_CRITICAL);
  change->mutable_alert()->set_title(title);
  change->mutable_alert()->set_event_count(static_cast<int64_t>(sequence) + 4);
  return response;
}

v1::StreamAlertsResponse Heartbeat(uint64_t latest) {
  v1::StreamAlertsResponse response;
  response.mutable_heartbeat()->set_latest_sequence(latest);
  return response;
}

class TailTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(server_.ok()); }
  CliResult Tail(std::vector<std::string> extra) {
    std::vector<std::string> args = {"--server", server_.address(), "--timeout",
                                     "1",        "alerts",          "tail"};
    args.insert(args.end(), extra.begin(), extra.end());
    return RunBounded(args);
  }
  std::vector<v1::StreamAlertsRequest> Requests() {
    std::lock_guard<std::mutex> lock(fake_.mu);
    return fake_.stream_alerts_requests;
  }

  FakeDetectionService fake_;
  FakePantherd server_{{&fake_}};
};

TEST_F(TailTest, PrintsChangesSkipsHeartbeatsWarnsOnGap) {
  v1::StreamAlertsResponse gap;
  gap.mutable_gap()->set_from_sequence(2);
  gap.mutable_gap()->set_to_sequence(3);
  gap.mutable_gap()->set_reason("subscriber fell behind");
  fake_.alert_streams = {
      {Change(1, "Multiple Failed Logins for admin"), Heartbeat(1), gap, Change(4, "Later")}};
  CliResult r = Tail(
      {"--count", "2", "--min-severity", "high", "--rule", "a", "--rule", "b", "--type", "rule"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(Lines(r.out),
              ElementsAre("alert1  2024-05-01T12:00:00Z  CREATED  CRITICAL  Okta.Login.Failed  "
                          "Multiple Failed Logins for admin  events=5  seq=1",
                          "alert4  2024-05-01T12:00:00Z  UPDATED  CRITICAL  Okta.Login.Failed  "
                          "Later  events=8  seq=4"));
  EXPECT_THAT(r.err, StartsWith(absl::StrCat("pantherctl: connected to ", server_.address(),
                                             ", waiting for alerts")));
  EXPECT_THAT(r.err, HasSubstr("warning: alert changes 2..3 were not delivered "
                               "(subscriber fell behind)"));
  std::vector<v1::StreamAlertsRequest> requests = Requests();
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0].start_case(), v1::StreamAlertsRequest::START_NOT_SET);
  EXPECT_EQ(requests[0].min_severity(), v1::SEVERITY_HIGH);
  EXPECT_THAT(requests[0].rule_ids(), ElementsAre("a", "b"));
  EXPECT_THAT(requests[0].types(), ElementsAre(v1::ALERT_TYPE_RULE));
}

TEST_F(TailTest, ResumesAfterStreamEndsWithoutDuplicates) {
  fake_.alert_streams = {
      {Change(1, "one"), Change(2, "two")}, {}, {Change(2, "two again"), Change(3, "three")}};
  fake_.alert_stream_ends = {grpc::Status::OK,
                             grpc::Status(grpc::StatusCode::UNAVAILABLE, "restarting")};
  CliResult r = Tail({"--since", "0", "--count", "3"});
  EXPECT_EQ(r.code, 0) << r.err;
  std::vector<std::string> lines = Lines(r.out);
  ASSERT_EQ(lines.size(), 3u) << r.out;
  EXPECT_THAT(lines[0], HasSubstr("  one  "));
  EXPECT_THAT(lines[1], HasSubstr("  two  "));
  EXPECT_THAT(lines[2], HasSubstr("  three  "));
  std::vector<v1::StreamAlertsRequest> requests = Requests();
  ASSERT_EQ(requests.size(), 3u);
  EXPECT_EQ(requests[0].start_case(), v1::StreamAlertsRequest::kStartAfterSequence);
  EXPECT_EQ(requests[0].start_after_sequence(), 0u);
  EXPECT_EQ(requests[1].start_after_sequence(), 2u);
  EXPECT_EQ(requests[2].start_after_sequence(), 2u);
  EXPECT_THAT(r.err, HasSubstr("alert stream ended by the server"));
  EXPECT_THAT(r.err, HasSubstr("alert stream broken (restarting)"));
  // Said once at the start, and once more when a new stream delivered (the
  // empty second stream did not, the third did).
  EXPECT_THAT(r.err, StartsWith("pantherctl: connected to "));
  EXPECT_THAT(r.err, HasSubstr(absl::StrCat("pantherctl: reconnected to ", server_.address(),
                                            ", waiting for alerts\n")));
  EXPECT_EQ(r.err.find("reconnected"), r.err.rfind("reconnected")) << r.err;
  EXPECT_LT(r.err.find("broken (restarting)"), r.err.find("reconnected")) << r.err;
}

TEST_F(TailTest, HeartbeatGivesResumePointBeforeAnyChange) {
  fake_.alert_streams = {{Heartbeat(9)}, {Change(10, "ten")}};
  CliResult r = Tail({"--count", "1", "--output", "json"});
  EXPECT_EQ(r.code, 0) << r.err;
  std::vector<v1::StreamAlertsRequest> requests = Requests();
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_EQ(requests[0].start_case(), v1::StreamAlertsRequest::START_NOT_SET);
  EXPECT_EQ(requests[1].start_after_sequence(), 9u);
  std::vector<std::string> lines = Lines(r.out);
  ASSERT_EQ(lines.size(), 1u);
  v1::AlertChange change;
  ASSERT_TRUE(JsonToMessage(lines[0], &change).ok()) << lines[0];
  EXPECT_EQ(change.kind(), v1::AlertChange::KIND_UPDATED);
  EXPECT_EQ(change.sequence(), 10u);
  EXPECT_EQ(change.alert().title(), "ten");
  // One compact line, enums without prefix, 64-bit counts as numbers.
  EXPECT_THAT(lines[0],
              AllOf(StartsWith("{\"sequence\":10,\"kind\":\"UPDATED\","),
                    HasSubstr("\"severity\":\"CRITICAL\""), HasSubstr("\"eventCount\":14,")));
}

// --severity is the older name of --min-severity, kept as an alias.
TEST_F(TailTest, SeverityIsAnAliasOfMinSeverity) {
  fake_.alert_streams = {{Change(1, "one")}};
  CliResult r = Tail({"--count", "1", "--severity", "medium"});
  EXPECT_EQ(r.code, 0) << r.err;
  std::vector<v1::StreamAlertsRequest> requests = Requests();
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0].min_severity(), v1::SEVERITY_MEDIUM);
}

TEST_F(TailTest, PermanentErrorFails) {
  fake_.alert_streams = {{}};
  fake_.alert_stream_ends = {grpc::Status(grpc::StatusCode::PERMISSION_DENIED, "no role")};
  CliResult r = Tail({});
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, ::testing::EndsWith("\npantherctl: error: permission denied: no role\n"));
}

// Security row 9: alert titles, rule ids, gap reasons and error messages
// from the server reach the terminal with control and bidirectional
// characters escaped (an OSC title change, a screen clear, a right-to-left
// override), in the table and in JSON lines.
TEST_F(TailTest, ServerTextCannotDriveTheTerminal) {
  const std::string attack = "\x1b]0;pwned\x07 \x1b[2J evil \u202Egnp.exe";
  auto expect_clean = [](const std::string& text) {
    EXPECT_EQ(text.find('\x1b'), std::string::npos) << text;
    EXPECT_EQ(text.find('\x07'), std::string::npos) << text;
    EXPECT_EQ(text.find("\u202E"), std::string::npos) << text;
  };
  v1::StreamAlertsResponse change = Change(1, attack);
  change.mutable_change()->mutable_alert()->set_rule_id("rule\x1b[2J");
  change.mutable_change()->mutable_alert()->set_alert_context_json(
      absl::StrCat("{\"k\": \"", attack, "\"}"));
  v1::StreamAlertsResponse gap;
  gap.mutable_gap()->set_from_sequence(2);
  gap.mutable_gap()->set_to_sequence(3);
  gap.mutable_gap()->set_reason(attack);
  // Calls 0-1 serve the table run, 2 the JSON run, 3 the refused run.
  fake_.alert_streams = {{change, gap}, {Change(4, attack)}, {change}, {}};
  fake_.alert_stream_ends = {grpc::Status(grpc::StatusCode::UNAVAILABLE, attack), grpc::Status::OK,
                             grpc::Status::OK,
                             grpc::Status(grpc::StatusCode::PERMISSION_DENIED, attack)};
  CliResult table = Tail({"--since", "0", "--count", "2"});
  EXPECT_EQ(table.code, 0) << table.err;
  expect_clean(table.out + table.err);
  EXPECT_THAT(table.out, HasSubstr("rule\\x1b[2J  \\x1b]0;pwned\\x07 \\x1b[2J evil "
                                   "\\u202egnp.exe  events=5"));
  EXPECT_THAT(table.err, HasSubstr("not delivered (\\x1b]0;pwned"));
  EXPECT_THAT(table.err, HasSubstr("broken (\\x1b]0;pwned"));

  CliResult json = Tail({"--since", "0", "--count", "1", "--output", "json"});
  EXPECT_EQ(json.code, 0) << json.err;
  expect_clean(json.out + json.err);
  std::vector<std::string> lines = Lines(json.out);
  ASSERT_EQ(lines.size(), 1u) << json.out;
  v1::AlertChange parsed;
  ASSERT_TRUE(JsonToMessage(lines[0], &parsed).ok()) << lines[0];
  EXPECT_EQ(parsed.alert().title(), attack);
  EXPECT_EQ(parsed.alert().alert_context_json(), absl::StrCat("{\"k\": \"", attack, "\"}"));

  CliResult denied = Tail({});
  EXPECT_EQ(denied.code, 1);
  expect_clean(denied.err);
  EXPECT_THAT(denied.err, HasSubstr("permission denied: \\x1b]0;pwned"));
}

TEST_F(TailTest, OutlivesTimeoutAndStopsOnInterrupt) {
  fake_.alert_streams = {{Change(1, "one")}};
  fake_.alert_stream_ends = {grpc::Status::OK};
  std::future<CliResult> tail = std::async(std::launch::async, [this] { return Tail({}); });
  // Wait for the resumed (second) call, then past the 1s --timeout.
  for (int i = 0; i < 500 && fake_.StreamAlertsCalls() < 2; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_EQ(fake_.StreamAlertsCalls(), 2u);
  // Absence: the tail must not end at its 1 s --timeout, so the test lets
  // more than that pass before interrupting it.
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  raise(SIGINT);
  CliResult r = tail.get();
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(Lines(r.out), ElementsAre(HasSubstr("  one  ")));
  EXPECT_EQ(Requests()[1].start_after_sequence(), 1u);
  EXPECT_EQ(fake_.StreamAlertsCalls(), 2u);
}

TEST_F(TailTest, UnreachableAtStartFails) {
  const std::string address = "127.0.0.1:" + std::to_string(ReserveClosedPort());
  CliResult r = RunBounded({"--server", address, "alerts", "tail"});
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, HasSubstr("cannot reach pantherd at " + address));
}

}  // namespace
}  // namespace pantherd::client
