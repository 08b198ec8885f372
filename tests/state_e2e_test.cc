// Stateful rules over real time, end to end: the caching helpers
// (`panther_detection_helpers.caching`) on the events' own clock, expired
// items, re-sent batches and a restart, through a real pantherd with real
// workers, driven over gRPC on loopback.
#include <signal.h>

#include <fstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "pantherd/v1/admin_service.grpc.pb.h"
#include "pantherd/v1/detection_service.grpc.pb.h"
#include "tests/test_util.h"

namespace pantherd::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kPantherd[] = PANTHERD_BINARY;
constexpr char kPantherctl[] = PANTHERCTL_BINARY;

void WriteFile(const std::string& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
}

// An Okta event with id `id` for `user` at `t`.
std::string Event(const std::string& id, const std::string& user, absl::Time t) {
  return absl::StrFormat(R"({"uuid":"%s","published":"%s","eventType":"user.session.start",)"
                         R"("actor":{"id":"00u1","type":"User","alternateId":"%s"},)"
                         R"("client":{"ipAddress":"198.51.100.7"},"outcome":{"result":"SUCCESS"}})",
                         id, absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", t, absl::UTCTimeZone()),
                         user);
}

class StateE2eTest : public ::testing::Test {
 protected:
  // Writes rule `id` with body `python` (a module defining rule()).
  void AddRule(const std::string& id, const std::string& python) {
    const std::string stem = absl::StrCat(rules_.path(), "/", id);
    WriteFile(stem + ".py", python);
    WriteFile(stem + ".yml", absl::StrCat("AnalysisType: rule\nRuleID: ", id, "\nFilename: ", id,
                                          ".py\nEnabled: true\nLogTypes:\n  - Okta.SystemLog\n",
                                          "Severity: High\nDedupPeriodMinutes: 60\n"));
  }

  void Start(const std::vector<std::string>& args = {}, const std::string& data = "data") {
    std::vector<std::string> all = {"--workers", "1"};
    all.insert(all.end(), args.begin(), args.end());
    absl::StatusOr<ServerProcess> s =
        ServerProcess::Start(kPantherd, tmp_.Sub(data), tmp_.path(), all, absl::Seconds(60));
    ASSERT_TRUE(s.ok()) << s.status();
    server_ = std::make_unique<ServerProcess>(std::move(*s));
    auto channel = grpc::CreateChannel(server_->address(), grpc::InsecureChannelCredentials());
    stub_ = v1::DetectionService::NewStub(channel);
    admin_ = v1::AdminService::NewStub(channel);
  }

  void Upload() {
    absl::StatusOr<RunResult> r = RunCommand(server_->Ctl(kPantherctl, {"upload", rules_.path()}),
                                             tmp_.path(), absl::Seconds(120));
    ASSERT_TRUE(r.ok()) << r.status();
    ASSERT_EQ(r->exit_code, 0) << r->out << r->err;
  }

  void Stop() {
    server_->process().Signal(SIGTERM);
    absl::StatusOr<int> code = server_->process().Wait(absl::Seconds(30));
    ASSERT_TRUE(code.ok()) << server_->Log();
    EXPECT_EQ(*code, 0) << server_->Log();
    server_.reset();
  }

  // Sends each event as its own batch on one stream, waiting for each answer.
  std::vector<v1::IngestEventsResponse> SendOneByOne(const std::vector<std::string>& events) {
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", server_->bearer());
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
    auto stream = stub_->IngestEvents(&ctx);
    std::vector<v1::IngestEventsResponse> answers;
    uint64_t id = 0;
    for (const std::string& e : events) {
      v1::IngestEventsRequest req;
      req.set_log_type("Okta.SystemLog");
      req.set_batch_id(++id);
      req.add_events(e);
      if (!stream->Write(req)) break;
      v1::IngestEventsResponse resp;
      if (!stream->Read(&resp)) break;
      answers.push_back(resp);
    }
    stream->WritesDone();
    grpc::Status status = stream->Finish();
    EXPECT_TRUE(status.ok()) << status.error_message() << "\n" << server_->Log();
    return answers;
  }

  std::vector<v1::Alert> Alerts(const std::string& rule_id) {
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", server_->bearer());
    v1::ListAlertsRequest req;
    req.add_rule_ids(rule_id);
    v1::ListAlertsResponse resp;
    grpc::Status s = stub_->ListAlerts(&ctx, req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    std::vector<v1::Alert> out;
    for (const v1::Alert& a : resp.alerts()) {
      grpc::ClientContext get_ctx;
      get_ctx.AddMetadata("authorization", server_->bearer());
      v1::GetAlertRequest get;
      get.set_id(a.id());
      v1::GetAlertResponse full;
      grpc::Status g = stub_->GetAlert(&get_ctx, get, &full);
      EXPECT_TRUE(g.ok()) << g.error_message();
      out.push_back(full.alert());
    }
    return out;
  }

  v1::GetServerStatusResponse Status() {
    absl::StatusOr<v1::GetServerStatusResponse> status =
        GetServerStatus(*admin_, server_->bearer());
    EXPECT_TRUE(status.ok()) << status.status();
    return status.ok() ? *std::move(status) : v1::GetServerStatusResponse();
  }

  TempDir tmp_;
  TempDir rules_;
  std::unique_ptr<ServerProcess> server_;
  std::unique_ptr<v1::DetectionService::Stub> stub_;
  std::unique_ptr<v1::AdminService::Stub> admin_;
};

// The issue's reproduction: an item whose expiry passed (by the wall clock)
// is read by the next batch. It used to kill the worker in a loop and stall
// ingestion for good.
constexpr char kExpiredByWallClock[] = R"py(
import time
from panther_detection_helpers.caching import get_string_set, put_string_set
def rule(event):
    if get_string_set("k"):
        return True
    put_string_set("k", ["seen"], epoch_seconds=int(time.time()) - 60)
    return False
)py";

TEST_F(StateE2eTest, ExpiredItemsNeverBreakIngestionOnEitherClock) {
  AddRule("Test.ExpiredItem", kExpiredByWallClock);
  for (const std::string& clock : {"event", "processing"}) {
    SCOPED_TRACE(clock);
    Start({"--window-clock", clock}, "data-" + clock);
    Upload();
    const absl::Time past = absl::Now() - absl::Hours(24 * 30);  // a backfill
    std::vector<v1::IngestEventsResponse> answers =
        SendOneByOne({Event("a1", "alice", past), Event("a2", "alice", past + absl::Minutes(1)),
                      Event("a3", "alice", past + absl::Minutes(2))});
    ASSERT_EQ(answers.size(), 3u) << server_->Log();
    for (const v1::IngestEventsResponse& a : answers) EXPECT_EQ(a.accepted(), 1);
    std::vector<v1::Alert> alerts = Alerts("Test.ExpiredItem");
    if (clock == "event") {
      // By the events' time (last month) the item expires in the future: the
      // second and third events see it, as live traffic last month would have.
      ASSERT_EQ(alerts.size(), 1u);
      EXPECT_EQ(alerts[0].event_count(), 2);
    } else {
      // By the processing clock it expired when it was written.
      EXPECT_TRUE(alerts.empty());
    }
    EXPECT_EQ(Status().metrics().workers().crashed(), 0) << server_->Log();
    EXPECT_THAT(server_->Log(), Not(HasSubstr("cannot have made")));
    Stop();
  }
}

// Relative expiries count from the event's time, and an item read by an
// event later than its expiry is absent, whatever the wall clock says.
constexpr char kSessionSeenTwice[] = R"py(
from panther_detection_helpers.caching import get_string_set, put_string_set
def rule(event):
    key = "session:" + event.deep_get("actor", "alternateId")
    if get_string_set(key, force_ttl_check=True):
        return True
    put_string_set(key, ["seen"], epoch_seconds=3600)  # one hour from "now"
    return False
)py";

// A counter: alerts on exactly the third sighting of a user.
constexpr char kThirdSighting[] = R"py(
from panther_detection_helpers.caching import increment_counter
def rule(event):
    return increment_counter("count:" + event.deep_get("actor", "alternateId"), 1) == 3
)py";

TEST_F(StateE2eTest, EventTimeExpiryResentBatchesAndRestarts) {
  AddRule("Test.SessionSeenTwice", kSessionSeenTwice);
  AddRule("Test.ThirdSighting", kThirdSighting);
  Start();
  Upload();
  const absl::Time t0 = absl::FromUnixSeconds(1767225600);  // 2026-01-01, long past
  std::vector<v1::IngestEventsResponse> answers = SendOneByOne({
      Event("s1", "bob", t0),                       // remembered for one hour
      Event("s2", "bob", t0 + absl::Minutes(30)),   // seen again: match
      Event("s3", "carol", t0),                     // carol: count 1
      Event("s4", "carol", t0 + absl::Minutes(1)),  // carol: count 2
  });
  ASSERT_EQ(answers.size(), 4u);
  // Re-sent events are duplicates before any rule runs: no count changes.
  answers = SendOneByOne({Event("s3", "carol", t0), Event("s4", "carol", t0 + absl::Minutes(1))});
  ASSERT_EQ(answers.size(), 2u);
  for (const v1::IngestEventsResponse& a : answers) EXPECT_EQ(a.duplicates(), 1);
  EXPECT_TRUE(Alerts("Test.ThirdSighting").empty());

  // State survives a restart exactly.
  Stop();
  Start();
  answers = SendOneByOne({
      Event("s5", "carol", t0 + absl::Minutes(2)),  // carol: count 3: match
      Event("s6", "bob", t0 + absl::Minutes(120)),  // bob's item expired by event time
      Event("s7", "bob", t0 + absl::Minutes(121)),  // re-remembered at s6: match
  });
  ASSERT_EQ(answers.size(), 3u);
  // carol's third sighting is s5 (the re-sent s3 and s4 counted nothing);
  // bob's is s6.
  std::vector<v1::Alert> third = Alerts("Test.ThirdSighting");
  std::vector<std::string> third_ids;
  for (const v1::Alert& a : third) {
    EXPECT_EQ(a.event_count(), 1);
    for (const v1::MatchedEvent& e : a.matched_events()) third_ids.push_back(e.event_id());
  }
  EXPECT_THAT(third_ids, ::testing::UnorderedElementsAre("s5", "s6"));

  // bob: s1 remembered for an hour of event time, s2 (30 min later) sees it,
  // s6 (two hours later) finds it expired and remembers again, s7 sees that.
  // carol: s3 remembered, s4 and s5 see it.
  std::vector<std::string> session_ids;
  for (const v1::Alert& a : Alerts("Test.SessionSeenTwice")) {
    for (const v1::MatchedEvent& e : a.matched_events()) session_ids.push_back(e.event_id());
  }
  EXPECT_THAT(session_ids, ::testing::UnorderedElementsAre("s2", "s4", "s5", "s7"));
  Stop();
}

// Security (issue 14, row 1): an analyst's `pantherctl test` of rule code
// that writes the caching helpers must not change what live rules see. The
// live rule learns each user's countries and alerts on a new one; the
// analyst's test writes "FR" into alice's known countries.
constexpr char kNewCountry[] = R"py(
from panther_detection_helpers.caching import add_to_string_set, get_string_set
def rule(event):
    key = "countries:" + event.deep_get("actor", "alternateId")
    country = event.deep_get("client", "geographicalContext", "country", default="?")
    known = get_string_set(key)
    add_to_string_set(key, country)
    return bool(known) and country not in known
)py";

constexpr char kPoisoner[] = R"py(
from panther_detection_helpers.caching import add_to_string_set
def rule(event):
    add_to_string_set("countries:alice@example.com", "FR")
    return False
)py";

constexpr char kPoisonerSpec[] = R"yml(AnalysisType: rule
RuleID: Analyst.Poisoner
Filename: poisoner.py
Enabled: true
LogTypes:
  - Okta.SystemLog
Severity: Info
Tests:
  - Name: writes the cache
    ExpectedResult: false
    Log:
      eventType: user.session.start
)yml";

std::string SignIn(const std::string& id, const std::string& country, absl::Time t) {
  return absl::StrFormat(
      R"({"uuid":"%s","published":"%s","eventType":"user.session.start",)"
      R"("actor":{"id":"00u1","type":"User","alternateId":"alice@example.com"},)"
      R"("client":{"ipAddress":"198.51.100.7","geographicalContext":{"country":"%s"}},)"
      R"("outcome":{"result":"SUCCESS"}})",
      id, absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", t, absl::UTCTimeZone()), country);
}

TEST_F(StateE2eTest, AnAnalystsTestRunCannotPoisonTheLiveCache) {
  AddRule("Test.NewCountry", kNewCountry);
  Start();
  Upload();
  const absl::Time t0 = absl::Now() - absl::Hours(1);
  ASSERT_EQ(SendOneByOne({SignIn("c1", "US", t0)}).size(), 1u);  // learns US

  // An analyst, the lowest role that may run tests.
  grpc::ClientContext c1;
  c1.AddMetadata("authorization", server_->bearer());
  v1::CreateUserRequest user;
  user.set_name("ana");
  user.set_role(v1::ROLE_ANALYST);
  v1::CreateUserResponse created;
  ASSERT_TRUE(admin_->CreateUser(&c1, user, &created).ok());
  grpc::ClientContext c2;
  c2.AddMetadata("authorization", server_->bearer());
  v1::CreateTokenRequest token_request;
  token_request.set_name("ana-laptop");
  token_request.set_owner("ana");
  v1::CreateTokenResponse token;
  ASSERT_TRUE(admin_->CreateToken(&c2, token_request, &token).ok());
  const std::string token_file = tmp_.Sub("ana.token");
  WriteFile(token_file, token.secret() + "\n");

  TempDir folder;
  WriteFile(folder.Sub("poisoner.py"), kPoisoner);
  WriteFile(folder.Sub("poisoner.yml"), kPoisonerSpec);
  absl::StatusOr<RunResult> tested =
      RunCommand({kPantherctl, "--server", server_->address(), "--token-file", token_file, "test",
                  folder.path()},
                 tmp_.path(), absl::Seconds(120));
  ASSERT_TRUE(tested.ok()) << tested.status();
  ASSERT_EQ(tested->exit_code, 0) << tested->out << tested->err;  // the test ran and passed

  // alice's sign-in from France is new to the live rule: it alerts.
  ASSERT_EQ(SendOneByOne({SignIn("c2", "FR", t0 + absl::Minutes(5))}).size(), 1u);
  std::vector<v1::Alert> alerts = Alerts("Test.NewCountry");
  ASSERT_EQ(alerts.size(), 1u);
  ASSERT_EQ(alerts[0].matched_events_size(), 1);
  EXPECT_EQ(alerts[0].matched_events(0).event_id(), "c2");
  Stop();
}

}  // namespace
}  // namespace pantherd::testing
