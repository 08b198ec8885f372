// `pantherctl replay` against an in-process fake ReplayRules stream.
#include <mutex>
#include <string>
#include <vector>

#include "client/cli.h"
#include "client/fake_pantherd.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/time_util.h"
#include "gtest/gtest.h"

namespace pantherd::client {
namespace {

namespace v1 = ::pantherd::v1;
using google::protobuf::util::TimeUtil;
using ::pantherd::client::testing::CliResult;
using ::pantherd::client::testing::FakePantherd;
using ::pantherd::client::testing::RunPantherctl;
using ::testing::HasSubstr;
using ::testing::Not;

// Streams two progress messages, then a result with one alert of two; or
// ends with `error` after the progress, or without a result.
class FakeReplay final : public v1::DetectionService::Service {
 public:
  grpc::Status ReplayRules(grpc::ServerContext*, const v1::ReplayRulesRequest* request,
                           grpc::ServerWriter<v1::ReplayRulesResponse>* writer) override {
    {
      std::lock_guard<std::mutex> lock(mu);
      requests.push_back(*request);
    }
    for (int i = 1; i <= 2; ++i) {
      v1::ReplayRulesResponse p;
      p.mutable_progress()->set_events(500 * i);
      p.mutable_progress()->set_fraction(0.25 * i);
      *p.mutable_progress()->mutable_reached() = TimeUtil::SecondsToTimestamp(1772359200 + i);
      p.mutable_progress()->set_events_per_second(4000);
      p.mutable_progress()->set_alerts(i);
      writer->Write(p);
    }
    if (!error.ok()) return error;
    if (no_result) return grpc::Status::OK;
    v1::ReplayRulesResponse result;
    v1::Alert* a = result.add_alerts();
    a->set_rule_id("Okta.Failed");
    a->set_title("failures of alice");
    a->set_severity(v1::SEVERITY_HIGH);
    a->set_event_count(3);
    result.set_alerts_total(2);
    result.set_events(1200);
    result.set_events_per_second(4100);
    result.set_worker_restarts(1);
    v1::ReplayRuleStats* st = result.add_rules();
    st->set_rule_id("Okta.Failed");
    st->set_matches(3);
    st->set_alerts(2);
    if (with_signal) {
      v1::Alert* s = result.add_alerts();
      s->set_rule_id("Okta.SSO");
      s->set_type(v1::ALERT_TYPE_SIGNAL);
      s->set_title("SIGNAL - sso");
      result.set_alerts_total(3);
      result.set_signals_total(1);
      v1::ReplayRuleStats* sso = result.add_rules();
      sso->set_rule_id("Okta.SSO");
      sso->set_matches(1);
      sso->set_signals(1);
    }
    writer->Write(result);
    return grpc::Status::OK;
  }

  std::mutex mu;
  std::vector<v1::ReplayRulesRequest> requests;
  grpc::Status error = grpc::Status::OK;
  bool no_result = false;
  // Adds a signal of rule Okta.SSO to the result.
  bool with_signal = false;
};

class ReplayCommandTest : public ::testing::Test {
 protected:
  CliResult Run(std::vector<std::string> args, bool err_terminal = false) {
    args.insert(args.begin(), {"--server", server_.address(), "replay"});
    return RunPantherctl(args, err_terminal);
  }
  FakeReplay replay_;
  FakePantherd server_{{&replay_}};
};

TEST_F(ReplayCommandTest, ATerminalSeesProgressThenTheResult) {
  CliResult r = Run({"Okta.Failed", "--since", "7d"}, /*err_terminal=*/true);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.err, HasSubstr("\r\033[Kreplaying: 50% of the range"));
  EXPECT_THAT(r.err, HasSubstr("1000 events, 4000 events/s, 2 alerts so far"));
  EXPECT_THAT(r.err, HasSubstr("the newest 1 of 2 alerts are listed"));
  EXPECT_THAT(r.err, HasSubstr("rules ended the replay's worker 1 times"));
  EXPECT_THAT(r.err, HasSubstr("1200 events from"));
  EXPECT_THAT(r.err, HasSubstr("2 alerts (nothing was stored or notified)"));
  EXPECT_THAT(r.out, HasSubstr("failures of alice"));
  ASSERT_EQ(replay_.requests.size(), 1u);
  EXPECT_EQ(replay_.requests[0].stored().rule_ids(0), "Okta.Failed");
}

TEST_F(ReplayCommandTest, NoProgressOffATerminalOrInJson) {
  CliResult r = Run({"Okta.Failed"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.err, Not(HasSubstr("replaying:")));
  r = Run({"--output", "json", "Okta.Failed"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.err, Not(HasSubstr("replaying:")));
  EXPECT_THAT(r.out, HasSubstr("\"alertsTotal\": 2"));
  EXPECT_THAT(r.out, Not(HasSubstr("progress")));
}

// Signals (CreateAlert: false) are told apart from alerts: labelled in the
// list, a column of their own, and counted apart in the last line.
TEST_F(ReplayCommandTest, SignalsAreCountedApartFromAlerts) {
  replay_.with_signal = true;
  CliResult r = Run({"Okta.Failed"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("Okta.SSO (signal)"));
  EXPECT_THAT(r.out, HasSubstr("RULE         MATCHES  ERRORS  ALERTS  SIGNALS\n"
                               "Okta.Failed  3        0       2       0\n"
                               "Okta.SSO     1        0       0       1\n"));
  EXPECT_THAT(r.err, HasSubstr("2 alerts and 1 signal (nothing was stored or notified)"));
  // Without signals the column is not shown.
  replay_.with_signal = false;
  r = Run({"Okta.Failed"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, Not(HasSubstr("SIGNALS")));
}

TEST_F(ReplayCommandTest, ErrorsAndAStreamWithoutAResult) {
  replay_.error = grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "since: must be before until");
  CliResult r = Run({"Okta.Failed"}, /*err_terminal=*/true);
  EXPECT_NE(r.code, 0);
  EXPECT_THAT(r.err, HasSubstr("since: must be before until"));
  // The progress line is erased before the error.
  EXPECT_THAT(r.err, HasSubstr("\r\033[Kpantherctl"));
  replay_.error = grpc::Status::OK;
  replay_.no_result = true;
  r = Run({"Okta.Failed"});
  EXPECT_NE(r.code, 0);
  EXPECT_THAT(r.err, HasSubstr("ended without a result"));
}

}  // namespace
}  // namespace pantherd::client
