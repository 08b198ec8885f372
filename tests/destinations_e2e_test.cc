// Alert destinations end to end (docs/destinations.md): the real pantherd
// delivering to real HTTP receivers on 127.0.0.1 (tests/fake_receiver.h):
// the seed story (Slack and PagerDuty, once each, then the incident
// resolved), retries and permanent failures, at-least-once delivery across
// SIGKILLs, secrets kept out of every answer, log, audit entry and metric, and
// the roles of the destination RPCs.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "pantherd/v1/admin_service.grpc.pb.h"
#include "pantherd/v1/detection_service.grpc.pb.h"
#include "tests/fake_receiver.h"
#include "tests/test_util.h"

namespace pantherd::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kPantherd[] = PANTHERD_BINARY;
constexpr char kPantherctl[] = PANTHERCTL_BINARY;
constexpr char kRulesDir[] = PANTHERD_SOURCE_DIR "/rules";
constexpr char kDeliveryRulesDir[] = PANTHERD_SOURCE_DIR "/tests/testdata/destination_rules";

// A failed Okta sign-in of `user` from `ip` (Okta.FailedLogin counts them).
std::string FailedLogin(int n, const std::string& user, const std::string& ip, int minute) {
  return absl::StrFormat(
      R"({"uuid":"dest-%d","published":"2026-03-01T10:%02d:00.000Z","eventType":"user.session.start",)"
      R"("displayMessage":"User login to Okta","severity":"WARN","legacyEventType":null,)"
      R"("actor":{"id":"00u1","type":"User","alternateId":"%s","displayName":"Admin"},)"
      R"("client":{"ipAddress":"%s","userAgent":{"rawUserAgent":"curl/8"}},)"
      R"("outcome":{"result":"FAILURE","reason":"INVALID_CREDENTIALS"},"target":null})",
      n, minute, user, ip);
}

// A sign-in: Delivery.EveryLogin and Delivery.Suppressed make one alert each.
std::string Login(const std::string& uuid, int n) {
  return absl::StrFormat(
      R"({"uuid":"%s","published":"2026-03-01T11:%02d:%02d.000Z","eventType":"user.session.start",)"
      R"("actor":{"id":"00u2","type":"User","alternateId":"user%d@example.com"},)"
      R"("client":{"ipAddress":"198.51.100.%d"},"outcome":{"result":"SUCCESS"}})",
      uuid, (n / 60) % 60, n % 60, n % 7, 1 + n % 200);
}

// `json` as a Struct; an unparsable body is a test failure and gives {}.
google::protobuf::Struct ParseJson(const std::string& json) {
  google::protobuf::Struct s;
  auto status = google::protobuf::util::JsonStringToMessage(json, &s);
  EXPECT_TRUE(status.ok()) << status.ToString() << "\n" << json;
  return s;
}

// The string field `key` of `s` ("" when absent or not a string).
std::string Str(const google::protobuf::Struct& s, const std::string& key) {
  auto it = s.fields().find(key);
  if (it == s.fields().end() || !it->second.has_string_value()) return "";
  return it->second.string_value();
}

std::string HmacSha256Hex(const std::string& key, const std::string& body) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(body.data()), body.size(), digest, &length);
  return absl::BytesToHexString(absl::string_view(reinterpret_cast<const char*>(digest), length));
}

void WriteFile(const std::string& path, const std::string& text, bool owner_only = false) {
  {
    std::ofstream out(path);
    out << text << "\n";
  }
  if (owner_only) chmod(path.c_str(), 0600);
}

std::unique_ptr<FakeReceiver> StartReceiver(int port = 0) {
  FakeReceiver::Options options;
  options.port = port;
  absl::StatusOr<std::unique_ptr<FakeReceiver>> r = FakeReceiver::Start(options);
  EXPECT_TRUE(r.ok()) << r.status();
  return r.ok() ? std::move(*r) : nullptr;
}

class DestinationsE2eTest : public ::testing::Test {
 protected:
  // Starts pantherd on the test's data directory with `args`; the same
  // arguments are used by Restart.
  void Start(std::vector<std::string> args) {
    args_ = std::move(args);
    Restart();
  }
  void Restart() {
    absl::StatusOr<ServerProcess> s =
        ServerProcess::Start(kPantherd, tmp_.Sub("data"), tmp_.path(), args_, absl::Seconds(60));
    ASSERT_TRUE(s.ok()) << s.status();
    server_ = std::make_unique<ServerProcess>(std::move(*s));
    auto channel = grpc::CreateChannel(server_->address(), grpc::InsecureChannelCredentials());
    stub_ = v1::DetectionService::NewStub(channel);
    admin_ = v1::AdminService::NewStub(channel);
  }
  // SIGKILL; the log of every run is kept in logs_.
  void Kill() {
    server_->process().Signal(SIGKILL);
    ASSERT_TRUE(server_->process().Wait(absl::Seconds(30)).ok());
    logs_ += server_->Log();
    server_.reset();
  }
  void Stop() {
    if (server_ == nullptr) return;
    // Close the test's channel first: pantherd's shutdown waits for it.
    stub_.reset();
    admin_.reset();
    server_->process().Signal(SIGTERM);
    absl::StatusOr<int> code = server_->process().Wait(absl::Seconds(30));
    ASSERT_TRUE(code.ok());
    EXPECT_EQ(*code, 0) << server_->Log();
    logs_ += server_->Log();
    server_.reset();
  }
  void TearDown() override {
    if (server_ != nullptr) Stop();
  }

  // The port of --metrics-listen 127.0.0.1:0, from the log.
  int MetricsPort() {
    const std::string log = server_->Log();
    const std::string kMetrics = "msg=metrics listen=127.0.0.1:";
    const size_t at = log.find(kMetrics);
    EXPECT_NE(at, std::string::npos) << log;
    if (at == std::string::npos) return 0;
    const size_t end = log.find_first_of(" \n", at + kMetrics.size());
    int port = 0;
    EXPECT_TRUE(
        absl::SimpleAtoi(log.substr(at + kMetrics.size(), end - at - kMetrics.size()), &port))
        << log;
    return port;
  }

  // A context for one call as `bearer` (default: the admin).
  std::unique_ptr<grpc::ClientContext> Ctx(const std::string& bearer = "") {
    auto ctx = std::make_unique<grpc::ClientContext>();
    ctx->AddMetadata("authorization", bearer.empty() ? server_->bearer() : bearer);
    ctx->set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(30)));
    return ctx;
  }

  std::vector<v1::IngestEventsResponse> Send(const std::vector<std::vector<std::string>>& batches) {
    grpc::Status status;
    std::vector<v1::IngestEventsResponse> answers =
        IngestBatches(*stub_, server_->bearer(), batches, &batch_id_, &status, absl::Seconds(60));
    EXPECT_TRUE(status.ok()) << status.error_message();
    return answers;
  }

  v1::GetAlertResponse GetAlert(const std::string& id) {
    v1::GetAlertRequest req;
    req.set_id(id);
    v1::GetAlertResponse resp;
    grpc::Status s = stub_->GetAlert(Ctx().get(), req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return resp;
  }

  // The alert's delivery to destination `name` for `action` (null if none).
  static const v1::AlertDelivery* DeliveryTo(const v1::GetAlertResponse& alert,
                                             const std::string& name,
                                             const std::string& action = "trigger") {
    for (const v1::AlertDelivery& d : alert.deliveries()) {
      if (d.destination_name() == name && d.action() == action) return &d;
    }
    return nullptr;
  }

  // Waits until the alert's delivery to `name` has `status`.
  ::testing::AssertionResult WaitForDelivery(const std::string& alert_id, const std::string& name,
                                             v1::DeliveryStatus status,
                                             absl::Duration timeout = absl::Seconds(20),
                                             const std::string& action = "trigger") {
    v1::GetAlertResponse last;
    ::testing::AssertionResult r = WaitUntil(
        [&] {
          last = GetAlert(alert_id);
          const v1::AlertDelivery* d = DeliveryTo(last, name, action);
          return d != nullptr && d->status() == status;
        },
        timeout,
        absl::StrCat("delivery of ", alert_id, " to ", name, " (", action, ") ",
                     v1::DeliveryStatus_Name(status)));
    if (!r) r << "\n" << last.DebugString();
    return r;
  }

  v1::Destination AddDestination(const v1::AddDestinationRequest& req) {
    v1::AddDestinationResponse resp;
    grpc::Status s = stub_->AddDestination(Ctx().get(), req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return resp.destination();
  }

  v1::Destination AddWebhook(const std::string& name, const std::string& url,
                             const std::string& hmac_secret = "") {
    v1::AddDestinationRequest req;
    req.set_name(name);
    req.set_kind("webhook");
    (*req.mutable_secrets())["url"] = url;
    if (!hmac_secret.empty()) (*req.mutable_secrets())["hmac_secret"] = hmac_secret;
    return AddDestination(req);
  }

  RunResult Ctl(const std::vector<std::string>& args) {
    absl::StatusOr<RunResult> r =
        RunCommand(server_->Ctl(kPantherctl, args), tmp_.path(), absl::Seconds(60));
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *std::move(r) : RunResult();
  }

  // The alerts of rule `rule_id`.
  std::vector<v1::Alert> AlertsOf(const std::string& rule_id) {
    std::vector<v1::Alert> out;
    for (v1::Alert& a : ListAlerts(*stub_, server_->bearer())) {
      if (a.rule_id() == rule_id) out.push_back(std::move(a));
    }
    return out;
  }

  TempDir tmp_;
  std::vector<std::string> args_;
  std::unique_ptr<ServerProcess> server_;
  std::unique_ptr<v1::DetectionService::Stub> stub_;
  std::unique_ptr<v1::AdminService::Stub> admin_;
  uint64_t batch_id_ = 0;
  std::string logs_;  // the logs of the runs that ended
};

// ---- 1. The seed story -------------------------------------------------------

TEST_F(DestinationsE2eTest, SeedStoryReachesSlackAndPagerDutyOnceAndResolvesTheIncident) {
  std::unique_ptr<FakeReceiver> slack = StartReceiver();
  std::unique_ptr<FakeReceiver> pd = StartReceiver();
  ASSERT_TRUE(slack && pd);
  pd->SetDefaultAnswer({202, R"({"status":"success","message":"Event processed"})", {}});
  Start({"--rules-dir", kRulesDir, "--workers", "1", "--external-url",
         "https://pantherd.example.test", "--delivery-retry-base-ms", "200"});

  // Slack through pantherctl, with the webhook URL in a file.
  const std::string slack_url = slack->url("/services/T000/B000/xyzSlackHook");
  WriteFile(tmp_.Sub("slack-url.txt"), slack_url, /*owner_only=*/true);
  RunResult added = Ctl({"destinations", "add", "slack", "--name", "team-slack", "--secret-file",
                         tmp_.Sub("slack-url.txt")});
  ASSERT_EQ(added.exit_code, 0) << added.out << added.err;
  EXPECT_THAT(added.out, HasSubstr("team-slack"));
  EXPECT_THAT(added.out + added.err, Not(HasSubstr("xyzSlackHook")));

  // PagerDuty through the RPC.
  const std::string routing_key = "R0UT1NGKEY0123456789abcdefABCDEF";
  ASSERT_EQ(routing_key.size(), 32u);
  v1::AddDestinationRequest add_pd;
  add_pd.set_name("oncall-pagerduty");
  add_pd.set_kind("pagerduty");
  (*add_pd.mutable_secrets())["routing_key"] = routing_key;
  (*add_pd.mutable_settings())["url"] = pd->url("/v2/enqueue");
  v1::Destination pd_dest = AddDestination(add_pd);
  EXPECT_EQ(pd_dest.kind(), "pagerduty");
  EXPECT_THAT(pd_dest.secrets_set(), ::testing::ElementsAre("routing_key"));

  // Five failed logins of admin from one IP: one CRITICAL alert.
  std::vector<std::string> burst;
  for (int i = 0; i < 5; ++i) burst.push_back(FailedLogin(i, "admin", "203.0.113.9", i));
  std::vector<v1::IngestEventsResponse> answers = Send({burst});
  ASSERT_EQ(answers.size(), 1u);
  EXPECT_EQ(answers[0].alerts_created(), 1);
  std::vector<v1::Alert> alerts = AlertsOf("Okta.FailedLogin");
  ASSERT_EQ(alerts.size(), 1u);
  const v1::Alert alert = alerts[0];
  EXPECT_EQ(alert.title(), "Multiple Failed Logins for admin");
  EXPECT_EQ(alert.severity(), v1::SEVERITY_CRITICAL);

  ASSERT_TRUE(WaitUntil([&] { return slack->request_count() >= 1 && pd->request_count() >= 1; },
                        absl::Seconds(20), "Slack and PagerDuty to receive the alert"))
      << server_->Log();
  absl::SleepFor(absl::Milliseconds(1500));
  EXPECT_EQ(slack->request_count(), 1);
  EXPECT_EQ(pd->request_count(), 1);
  // A sixth failure updates the alert; updates do not notify again.
  answers = Send({{FailedLogin(5, "admin", "203.0.113.9", 30)}});
  ASSERT_EQ(answers.size(), 1u);
  EXPECT_EQ(answers[0].alerts_updated(), 1);
  EXPECT_EQ(answers[0].alerts_created(), 0);
  absl::SleepFor(absl::Milliseconds(1000));
  EXPECT_EQ(slack->request_count(), 1);
  EXPECT_EQ(pd->request_count(), 1);

  // Slack's message.
  const FakeReceiver::Request slack_req = slack->requests().at(0);
  EXPECT_EQ(slack_req.method, "POST");
  EXPECT_EQ(slack_req.path, "/services/T000/B000/xyzSlackHook");
  EXPECT_THAT(slack_req.Header("Content-Type"), HasSubstr("application/json"));
  EXPECT_FALSE(slack_req.Header("Idempotency-Key").empty());
  EXPECT_THAT(slack_req.body, HasSubstr("Multiple Failed Logins for admin"));
  google::protobuf::Struct slack_body = ParseJson(slack_req.body);
  EXPECT_TRUE(slack_body.fields().contains("blocks")) << slack_req.body;
  EXPECT_TRUE(slack_body.fields().at("blocks").has_list_value()) << slack_req.body;
  EXPECT_THAT(Str(slack_body, "text"), HasSubstr("Multiple Failed Logins for admin"));
  EXPECT_THAT(slack_req.body, HasSubstr("https://pantherd.example.test/alerts/" + alert.id()));

  // PagerDuty's event.
  const FakeReceiver::Request pd_req = pd->requests().at(0);
  EXPECT_EQ(pd_req.path, "/v2/enqueue");
  EXPECT_FALSE(pd_req.Header("Idempotency-Key").empty());
  EXPECT_NE(pd_req.Header("Idempotency-Key"), slack_req.Header("Idempotency-Key"));
  google::protobuf::Struct pd_body = ParseJson(pd_req.body);
  EXPECT_EQ(Str(pd_body, "event_action"), "trigger");
  EXPECT_EQ(Str(pd_body, "dedup_key"), alert.id());
  EXPECT_EQ(Str(pd_body, "routing_key"), routing_key);
  ASSERT_TRUE(pd_body.fields().contains("payload")) << pd_req.body;
  const google::protobuf::Struct& payload = pd_body.fields().at("payload").struct_value();
  EXPECT_EQ(Str(payload, "severity"), "critical");
  EXPECT_THAT(Str(payload, "summary"), HasSubstr("Multiple Failed Logins for admin"));
  ASSERT_TRUE(pd_body.fields().contains("links")) << pd_req.body;
  ASSERT_GE(pd_body.fields().at("links").list_value().values_size(), 1) << pd_req.body;
  EXPECT_EQ(Str(pd_body.fields().at("links").list_value().values(0).struct_value(), "href"),
            "https://pantherd.example.test/alerts/" + alert.id());

  // The alert's record: two deliveries, delivered at the first attempt.
  v1::GetAlertResponse got = GetAlert(alert.id());
  ASSERT_EQ(got.deliveries_size(), 2) << got.DebugString();
  for (const v1::AlertDelivery& d : got.deliveries()) {
    SCOPED_TRACE(d.destination_name());
    EXPECT_EQ(d.action(), "trigger");
    EXPECT_EQ(d.status(), v1::DELIVERY_STATUS_DELIVERED);
    EXPECT_EQ(d.attempts(), 1);
    EXPECT_EQ(d.routed_by(), "filters");
    EXPECT_EQ(d.last_error(), "");
  }
  const v1::AlertDelivery* slack_delivery = DeliveryTo(got, "team-slack");
  const v1::AlertDelivery* pd_delivery = DeliveryTo(got, "oncall-pagerduty");
  ASSERT_TRUE(slack_delivery && pd_delivery) << got.DebugString();
  EXPECT_EQ(slack_delivery->idempotency_key(), slack_req.Header("Idempotency-Key"));
  EXPECT_EQ(pd_delivery->idempotency_key(), pd_req.Header("Idempotency-Key"));
  EXPECT_EQ(slack_delivery->last_http_status(), 200);
  EXPECT_EQ(pd_delivery->last_http_status(), 202);

  // Resolving the alert resolves the PagerDuty incident; Slack hears nothing.
  v1::UpdateAlertRequest update;
  update.set_id(alert.id());
  update.set_status(v1::ALERT_STATUS_RESOLVED);
  v1::UpdateAlertResponse updated;
  grpc::Status s = stub_->UpdateAlert(Ctx().get(), update, &updated);
  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_TRUE(pd->WaitForRequests(2, absl::Seconds(20))) << server_->Log();
  const FakeReceiver::Request resolve_req = pd->requests().at(1);
  google::protobuf::Struct resolve_body = ParseJson(resolve_req.body);
  EXPECT_EQ(Str(resolve_body, "event_action"), "resolve");
  EXPECT_EQ(Str(resolve_body, "dedup_key"), alert.id());
  EXPECT_EQ(Str(resolve_body, "routing_key"), routing_key);
  EXPECT_FALSE(resolve_req.Header("Idempotency-Key").empty());
  EXPECT_NE(resolve_req.Header("Idempotency-Key"), pd_req.Header("Idempotency-Key"));
  ASSERT_TRUE(WaitForDelivery(alert.id(), "oncall-pagerduty", v1::DELIVERY_STATUS_DELIVERED,
                              absl::Seconds(10), "resolve"));
  absl::SleepFor(absl::Milliseconds(500));
  EXPECT_EQ(slack->request_count(), 1);
  EXPECT_EQ(pd->request_count(), 2);
  got = GetAlert(alert.id());
  EXPECT_EQ(got.deliveries_size(), 3) << got.DebugString();
  EXPECT_EQ(DeliveryTo(got, "team-slack", "resolve"), nullptr) << got.DebugString();

  // Reopened and resolved again: the resolve is sent again.
  for (v1::AlertStatus status : {v1::ALERT_STATUS_OPEN, v1::ALERT_STATUS_RESOLVED}) {
    update.set_status(status);
    s = stub_->UpdateAlert(Ctx().get(), update, &updated);
    ASSERT_TRUE(s.ok()) << s.error_message();
  }
  ASSERT_TRUE(pd->WaitForRequests(3, absl::Seconds(20))) << server_->Log();
  EXPECT_EQ(Str(ParseJson(pd->requests().at(2).body), "event_action"), "resolve");
  EXPECT_EQ(Str(ParseJson(pd->requests().at(2).body), "dedup_key"), alert.id());
  ASSERT_TRUE(WaitForDelivery(alert.id(), "oncall-pagerduty", v1::DELIVERY_STATUS_DELIVERED,
                              absl::Seconds(10), "resolve"));
  absl::SleepFor(absl::Milliseconds(300));
  EXPECT_EQ(slack->request_count(), 1);
  EXPECT_EQ(pd->request_count(), 3);

  // pantherctl shows the deliveries.
  RunResult shown = Ctl({"alerts", "get", alert.id()});
  EXPECT_EQ(shown.exit_code, 0) << shown.err;
  EXPECT_THAT(shown.out, HasSubstr("Deliveries:"));
  EXPECT_THAT(shown.out, HasSubstr("team-slack"));
  EXPECT_THAT(shown.out, HasSubstr("oncall-pagerduty"));
  EXPECT_THAT(shown.out, HasSubstr("resolve"));
  EXPECT_THAT(shown.out, HasSubstr("DELIVERED"));
  EXPECT_THAT(shown.out, Not(HasSubstr(routing_key)));
  EXPECT_THAT(shown.out, Not(HasSubstr("xyzSlackHook")));
}

// ---- 2. Retries, permanent failures, timeouts --------------------------------

TEST_F(DestinationsE2eTest, RetriesHonourRetryAfterAndGiveUpOnPermanentErrors) {
  std::unique_ptr<FakeReceiver> signed_rx = StartReceiver();
  std::unique_ptr<FakeReceiver> broken_rx = StartReceiver();
  std::unique_ptr<FakeReceiver> slow_rx = StartReceiver();
  ASSERT_TRUE(signed_rx && broken_rx && slow_rx);
  // 500, then 429 with Retry-After: 1, then the usual 200.
  signed_rx->Inject({FakeReceiver::Status(500, "internal error"),
                     FakeReceiver::Status(429, "slow down", {{"Retry-After", "1"}})});
  broken_rx->SetDefaultAnswer({404, "no such hook", {}});
  // Longer than --delivery-timeout-seconds: the first attempt times out.
  slow_rx->Inject({FakeReceiver::Delay(absl::Seconds(3))});
  Start({"--rules-dir", kDeliveryRulesDir, "--workers", "1", "--delivery-retry-base-ms", "200",
         "--delivery-timeout-seconds", "1", "--metrics-listen", "127.0.0.1:0"});
  const std::string hmac_key = "k3y-of-the-signed-hook";
  AddWebhook("signed", signed_rx->url("/in"), hmac_key);
  AddWebhook("broken", broken_rx->url("/gone"));
  AddWebhook("slow", slow_rx->url("/slow"));

  std::vector<v1::IngestEventsResponse> answers = Send({{Login("retry-1", 1)}});
  ASSERT_EQ(answers.size(), 1u);
  std::vector<v1::Alert> alerts = AlertsOf("Delivery.EveryLogin");
  ASSERT_EQ(alerts.size(), 1u);
  const std::string id = alerts[0].id();

  // The signed hook: delivered at the third attempt.
  ASSERT_TRUE(WaitForDelivery(id, "signed", v1::DELIVERY_STATUS_DELIVERED)) << server_->Log();
  std::vector<FakeReceiver::Request> reqs = signed_rx->requests();
  ASSERT_EQ(reqs.size(), 3u);
  EXPECT_EQ(reqs[0].status, 500);
  EXPECT_EQ(reqs[1].status, 429);
  EXPECT_EQ(reqs[2].status, 200);
  const std::string key = reqs[0].Header("Idempotency-Key");
  EXPECT_EQ(key.size(), 32u);
  for (const FakeReceiver::Request& r : reqs) {
    SCOPED_TRACE(r.attempt);
    EXPECT_EQ(r.Header("Idempotency-Key"), key);
    EXPECT_EQ(r.Header("X-Pantherd-Signature"), "sha256=" + HmacSha256Hex(hmac_key, r.body));
    google::protobuf::Struct body = ParseJson(r.body);
    EXPECT_EQ(Str(body, "alertId"), id);
    EXPECT_EQ(Str(body, "idempotencyKey"), key);
    EXPECT_EQ(Str(body, "action"), "trigger");
    EXPECT_EQ(Str(body, "id"), "Delivery.EveryLogin");
  }
  EXPECT_EQ(reqs[2].attempt, 3);
  // Retry-After: 1 was honoured (the backoff alone would be about 0.6 s).
  EXPECT_GE(reqs[2].time - reqs[1].time, absl::Milliseconds(950));
  v1::GetAlertResponse got = GetAlert(id);
  const v1::AlertDelivery* d = DeliveryTo(got, "signed");
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(d->attempts(), 3);
  EXPECT_EQ(d->last_http_status(), 200);
  EXPECT_EQ(d->idempotency_key(), key);

  // The broken hook: a 404 fails at once.
  ASSERT_TRUE(WaitForDelivery(id, "broken", v1::DELIVERY_STATUS_FAILED)) << server_->Log();
  got = GetAlert(id);
  d = DeliveryTo(got, "broken");
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(d->attempts(), 1);
  EXPECT_EQ(d->last_http_status(), 404);
  EXPECT_THAT(d->last_error(), HasSubstr("404"));
  absl::SleepFor(absl::Milliseconds(800));
  EXPECT_EQ(broken_rx->request_count(), 1);
  // Fixed, then resent.
  broken_rx->SetDefaultAnswer({200, "ok", {}});
  RunResult resent = Ctl({"alerts", "resend", id, "--destination", "broken"});
  EXPECT_EQ(resent.exit_code, 0) << resent.out << resent.err;
  EXPECT_THAT(resent.out, HasSubstr("broken"));
  ASSERT_TRUE(WaitForDelivery(id, "broken", v1::DELIVERY_STATUS_DELIVERED)) << server_->Log();
  got = GetAlert(id);
  d = DeliveryTo(got, "broken");
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(d->resends(), 1);
  EXPECT_EQ(d->last_http_status(), 200);
  reqs = broken_rx->requests();
  ASSERT_EQ(reqs.size(), 2u);
  EXPECT_EQ(reqs[0].Header("Idempotency-Key"), reqs[1].Header("Idempotency-Key"));
  // Resending one destination leaves the others alone.
  EXPECT_EQ(signed_rx->request_count(), 3);

  // The slow hook: the first attempt timed out, the second was delivered.
  ASSERT_TRUE(WaitForDelivery(id, "slow", v1::DELIVERY_STATUS_DELIVERED)) << server_->Log();
  got = GetAlert(id);
  d = DeliveryTo(got, "slow");
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(d->attempts(), 2);
  reqs = slow_rx->requests();
  ASSERT_GE(reqs.size(), 2u);
  EXPECT_EQ(reqs[0].Header("Idempotency-Key"), reqs[1].Header("Idempotency-Key"));
  EXPECT_THAT(server_->Log(), HasSubstr("alert delivery attempt"));

  // The figures: GetDestination's stats and /metrics count every attempt.
  struct Figures {
    std::string name;
    int64_t delivered, retried, failed;
  };
  const std::string metrics = LoopbackHttpGet(MetricsPort(), "/metrics");
  for (const Figures& f :
       {Figures{"signed", 1, 2, 0}, Figures{"broken", 1, 0, 1}, Figures{"slow", 1, 1, 0}}) {
    SCOPED_TRACE(f.name);
    v1::GetDestinationRequest req;
    req.set_destination(f.name);
    v1::GetDestinationResponse resp;
    grpc::Status s = stub_->GetDestination(Ctx().get(), req, &resp);
    ASSERT_TRUE(s.ok()) << s.error_message();
    EXPECT_EQ(resp.stats().delivered(), f.delivered);
    EXPECT_EQ(resp.stats().retried(), f.retried);
    EXPECT_EQ(resp.stats().failed(), f.failed);
    EXPECT_EQ(resp.stats().pending(), 0);
    for (const auto& [outcome, value] : {std::pair<std::string, int64_t>{"delivered", f.delivered},
                                         {"retried", f.retried},
                                         {"failed", f.failed}}) {
      EXPECT_THAT(metrics, HasSubstr(absl::StrCat("pantherd_deliveries_total{destination=\"",
                                                  f.name, "\",kind=\"webhook\",outcome=\"", outcome,
                                                  "\"} ", value, "\n")));
    }
    EXPECT_THAT(metrics, HasSubstr(absl::StrCat("pantherd_delivery_queue_depth{destination=\"",
                                                f.name, "\"} 0\n")));
  }
}

// A receiver that hangs holds only its own lane: ingestion answers at once
// and another destination receives every alert meanwhile.
TEST_F(DestinationsE2eTest, AHangingReceiverHoldsOnlyItsOwnLane) {
  std::unique_ptr<FakeReceiver> hanging = StartReceiver();
  std::unique_ptr<FakeReceiver> fine = StartReceiver();
  ASSERT_TRUE(hanging && fine);
  std::vector<FakeReceiver::Fault> faults;
  for (int i = 0; i < 10; ++i) faults.push_back(FakeReceiver::Delay(absl::Seconds(20)));
  hanging->Inject(std::move(faults));
  Start({"--rules-dir", kDeliveryRulesDir, "--workers", "1", "--delivery-retry-base-ms", "200",
         "--delivery-timeout-seconds", "10"});
  AddWebhook("hanging", hanging->url("/h"));
  AddWebhook("fine", fine->url("/f"));
  const absl::Time start = absl::Now();
  for (int i = 0; i < 5; ++i) Send({{Login(absl::StrCat("lane-", i), i)}});
  EXPECT_LT(absl::Now() - start, absl::Seconds(5)) << "ingestion waited for delivery";
  ASSERT_TRUE(fine->WaitForRequests(5, absl::Seconds(5))) << server_->Log();
  // One request at a time in the hanging lane, still unanswered.
  EXPECT_EQ(hanging->request_count(), 1);
  for (const v1::Alert& a : AlertsOf("Delivery.EveryLogin")) {
    ASSERT_TRUE(WaitForDelivery(a.id(), "fine", v1::DELIVERY_STATUS_DELIVERED, absl::Seconds(5)));
    const v1::GetAlertResponse got = GetAlert(a.id());
    const v1::AlertDelivery* d = DeliveryTo(got, "hanging");
    ASSERT_NE(d, nullptr);
    EXPECT_EQ(d->status(), v1::DELIVERY_STATUS_PENDING);
  }
  v1::GetDestinationRequest req;
  req.set_destination("hanging");
  v1::GetDestinationResponse resp;
  ASSERT_TRUE(stub_->GetDestination(Ctx().get(), req, &resp).ok());
  EXPECT_EQ(resp.stats().pending(), 5);
}

// A graceful shutdown cancels the request in flight without counting it; the
// delivery is sent after the restart. Removing a destination fails what was
// pending for it.
TEST_F(DestinationsE2eTest, ShutdownCancelsTheAttemptInFlightAndRemovalFailsWhatIsPending) {
  std::unique_ptr<FakeReceiver> slow_rx = StartReceiver();
  std::unique_ptr<FakeReceiver> down_rx = StartReceiver();
  ASSERT_TRUE(slow_rx && down_rx);
  slow_rx->Inject({FakeReceiver::Delay(absl::Seconds(8))});
  down_rx->SetDown(true);
  Start({"--rules-dir", kDeliveryRulesDir, "--workers", "1", "--delivery-retry-base-ms", "200",
         "--delivery-timeout-seconds", "10"});
  AddWebhook("slow", slow_rx->url("/slow"));
  AddWebhook("gone", down_rx->url("/gone"));
  Send({{Login("shutdown-1", 1)}});
  std::vector<v1::Alert> alerts = AlertsOf("Delivery.EveryLogin");
  ASSERT_EQ(alerts.size(), 1u);
  const std::string id = alerts[0].id();
  ASSERT_TRUE(slow_rx->WaitForRequests(1, absl::Seconds(10)));
  const absl::Time stopping = absl::Now();
  ASSERT_NO_FATAL_FAILURE(Stop());
  EXPECT_LT(absl::Now() - stopping, absl::Seconds(4)) << "the request in flight held the shutdown";
  ASSERT_NO_FATAL_FAILURE(Restart());
  ASSERT_TRUE(WaitForDelivery(id, "slow", v1::DELIVERY_STATUS_DELIVERED)) << server_->Log();
  v1::GetAlertResponse got = GetAlert(id);
  const v1::AlertDelivery* d = DeliveryTo(got, "slow");
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(d->attempts(), 1) << "the cancelled attempt was counted";
  std::vector<FakeReceiver::Request> reqs = slow_rx->requests();
  ASSERT_EQ(reqs.size(), 2u);
  EXPECT_EQ(reqs[0].Header("Idempotency-Key"), reqs[1].Header("Idempotency-Key"));

  // "gone" is still being retried; removing it fails the delivery.
  d = DeliveryTo(got, "gone");
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(d->status(), v1::DELIVERY_STATUS_PENDING);
  v1::RemoveDestinationRequest remove;
  remove.set_destination("gone");
  v1::RemoveDestinationResponse removed;
  grpc::Status s = stub_->RemoveDestination(Ctx().get(), remove, &removed);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(removed.pending_failed(), 1);
  got = GetAlert(id);
  d = DeliveryTo(got, "gone");
  ASSERT_NE(d, nullptr) << got.DebugString();
  EXPECT_EQ(d->status(), v1::DELIVERY_STATUS_FAILED);
  EXPECT_THAT(d->last_error(), HasSubstr("removed"));
}

// Panther's routing order: a rule's destinations() names, else its
// OutputIds, else the destinations' filters. Named destinations skip the
// severity filter; an unknown name fails the delivery until the destination
// exists and the alert is resent.
class DestinationsRoutingE2eTest : public DestinationsE2eTest {
 protected:
  // Starts pantherd with two rules, one naming "Named-Hook" in destinations(),
  // one "later-hook" in OutputIds (which does not exist yet), and two
  // destinations: named-hook (CRITICAL only) and all (no filters). Sends one
  // event to each rule, checks the routing, then adds later-hook and resends
  // the second alert, whose id is returned.
  void RouteAndResend(FakeReceiver& rx, std::string* resent_id) {
    Start({"--workers", "1", "--delivery-retry-base-ms", "200"});
    {
      v1::AddDestinationRequest req;
      req.set_name("named-hook");
      req.set_kind("webhook");
      (*req.mutable_secrets())["url"] = rx.url("/named");
      req.mutable_filters()->set_min_severity(v1::SEVERITY_CRITICAL);
      AddDestination(req);
    }
    AddWebhook("all", rx.url("/all"));
    v1::UploadRuleRequest upload;
    auto file = [&](const std::string& path, const std::string& content) {
      v1::AnalysisFile* f = upload.add_files();
      f->set_path(path);
      f->set_content(content);
    };
    file("routing/by_destinations.yml",
         "AnalysisType: rule\nRuleID: Routing.ByDestinations\nFilename: by_destinations.py\n"
         "Enabled: true\nLogTypes: [Okta.SystemLog]\nSeverity: Low\nTests:\n"
         "  - Name: a lock\n    ExpectedResult: true\n    Log: {eventType: user.account.lock}\n");
    file("routing/by_destinations.py",
         "def rule(event):\n    return event.get('eventType') == 'user.account.lock'\n\n"
         "def title(event):\n    return 'Locked ' + event.get('uuid', '')\n\n"
         "def destinations(event):\n    return ['Named-Hook']\n");
    file("routing/by_output_ids.yml",
         "AnalysisType: rule\nRuleID: Routing.ByOutputIds\nFilename: by_output_ids.py\n"
         "Enabled: true\nLogTypes: [Okta.SystemLog]\nSeverity: Info\nOutputIds: [later-hook]\n"
         "Tests:\n  - Name: a reset\n    ExpectedResult: true\n"
         "    Log: {eventType: user.mfa.factor.reset}\n");
    file("routing/by_output_ids.py",
         "def rule(event):\n    return event.get('eventType') == 'user.mfa.factor.reset'\n\n"
         "def title(event):\n    return 'Reset ' + event.get('uuid', '')\n");
    {
      v1::UploadRuleResponse resp;
      grpc::Status s = stub_->UploadRule(Ctx().get(), upload, &resp);
      ASSERT_TRUE(s.ok()) << s.error_message();
    }
    Send(
        {{R"({"uuid":"lock-1","published":"2026-03-01T10:00:00Z","eventType":"user.account.lock"})",
          R"({"uuid":"reset-1","published":"2026-03-01T10:00:01Z","eventType":"user.mfa.factor.reset"})"}});
    std::vector<v1::Alert> locked = AlertsOf("Routing.ByDestinations");
    std::vector<v1::Alert> reset = AlertsOf("Routing.ByOutputIds");
    ASSERT_EQ(locked.size(), 1u);
    ASSERT_EQ(reset.size(), 1u);
    *resent_id = reset[0].id();

    // destinations(): to named-hook whatever its severity filter, and only
    // there.
    ASSERT_TRUE(WaitForDelivery(locked[0].id(), "named-hook", v1::DELIVERY_STATUS_DELIVERED))
        << server_->Log();
    v1::GetAlertResponse got = GetAlert(locked[0].id());
    ASSERT_EQ(got.deliveries_size(), 1) << got.DebugString();
    EXPECT_EQ(got.deliveries(0).routed_by(), "destinations()");

    // OutputIds naming a destination that does not exist: failed, with the
    // name.
    ASSERT_TRUE(WaitForDelivery(reset[0].id(), "later-hook", v1::DELIVERY_STATUS_FAILED))
        << server_->Log();
    got = GetAlert(reset[0].id());
    ASSERT_EQ(got.deliveries_size(), 1) << got.DebugString();
    EXPECT_EQ(got.deliveries(0).routed_by(), "OutputIds");
    EXPECT_THAT(got.deliveries(0).last_error(), HasSubstr("no destination named later-hook"));
    // Added, then resent.
    v1::Destination later = AddWebhook("later-hook", rx.url("/later"));
    RunResult resent = Ctl({"alerts", "resend", reset[0].id()});
    EXPECT_EQ(resent.exit_code, 0) << resent.out << resent.err;
    ASSERT_TRUE(WaitUntil(
        [&] {
          const v1::GetAlertResponse now = GetAlert(reset[0].id());
          for (const v1::AlertDelivery& d : now.deliveries()) {
            if (d.destination_id() == later.id() && d.status() == v1::DELIVERY_STATUS_DELIVERED) {
              return true;
            }
          }
          return false;
        },
        absl::Seconds(20), "the resent alert delivered to later-hook"))
        << GetAlert(reset[0].id()).DebugString() << server_->Log();
  }
};

TEST_F(DestinationsRoutingE2eTest, RulesNameTheirDestinationsAndUnknownNamesAreResolvedOnResend) {
  std::unique_ptr<FakeReceiver> rx = StartReceiver();
  ASSERT_TRUE(rx);
  std::string id;
  ASSERT_NO_FATAL_FAILURE(RouteAndResend(*rx, &id));
  absl::SleepFor(absl::Milliseconds(500));
  std::map<std::string, int> by_path;
  for (const FakeReceiver::Request& r : rx->requests()) ++by_path[r.path];
  EXPECT_EQ(by_path["/named"], 1);
  EXPECT_EQ(by_path["/later"], 1);
  EXPECT_EQ(by_path["/all"], 0) << "a rule that names its destinations went to the filters too";
}

// Found by this file: resending an alert whose rule named a destination that
// did not exist yet created a record for the destination now found but kept
// the old one ("?later-hook", FAILED), so the alert showed a delivery failed
// forever. docs/destinations.md: "An unknown name recorded at routing time is
// resolved again."
TEST_F(DestinationsRoutingE2eTest, AResolvedUnknownNameLeavesNoFailedDeliveryBehind) {
  std::unique_ptr<FakeReceiver> rx = StartReceiver();
  ASSERT_TRUE(rx);
  std::string id;
  ASSERT_NO_FATAL_FAILURE(RouteAndResend(*rx, &id));
  v1::GetAlertResponse got = GetAlert(id);
  EXPECT_EQ(got.deliveries_size(), 1) << got.DebugString();
  for (const v1::AlertDelivery& d : got.deliveries()) {
    EXPECT_EQ(d.status(), v1::DELIVERY_STATUS_DELIVERED) << d.DebugString();
    EXPECT_FALSE(absl::StartsWith(d.destination_id(), "?")) << d.DebugString();
  }
}

// ---- 3. At least once across SIGKILLs ------------------------------------------

TEST_F(DestinationsE2eTest, KilledDuringDeliveryEveryAlertArrivesAtLeastOnceAndSuppressedNever) {
  std::unique_ptr<FakeReceiver> rx = StartReceiver();
  ASSERT_TRUE(rx);
  const int port = rx->port();
  rx->SetDown(true);
  // What receivers that were stopped had recorded.
  std::vector<FakeReceiver::Request> earlier;
  Start({"--rules-dir", kDeliveryRulesDir, "--workers", "1", "--delivery-retry-base-ms", "100",
         "--delivery-retry-max-seconds", "1", "--delivery-attempts", "1000"});
  AddWebhook("sink", rx->url("/sink"));

  int next_event = 0;
  auto batch = [&](int n) {
    std::vector<std::string> b;
    for (int i = 0; i < n; ++i, ++next_event) {
      b.push_back(Login(absl::StrFormat("kill-%03d", next_event), next_event));
    }
    return b;
  };
  auto slow_answers = [&](int n, absl::Duration delay) {
    std::vector<FakeReceiver::Fault> faults;
    for (int i = 0; i < n; ++i) faults.push_back(FakeReceiver::Delay(delay));
    rx->Inject(std::move(faults));
  };
  int kills = 0;
  auto kill_and_restart = [&] {
    Kill();
    ++kills;
    Restart();
  };

  // 1. The receiver is down: deliveries are being retried when pantherd dies.
  Send({batch(5), batch(5)});
  absl::SleepFor(absl::Milliseconds(400));
  ASSERT_NO_FATAL_FAILURE(kill_and_restart());

  // 2. The receiver is up but slow: killed with requests in flight.
  slow_answers(30, absl::Milliseconds(200));
  rx->SetDown(false);
  Send({batch(5), batch(5)});
  ASSERT_TRUE(
      WaitUntil([&] { return rx->request_count() >= 3; }, absl::Seconds(20), "deliveries to start"))
      << server_->Log();
  Kill();
  ++kills;
  const int delivered_before_kill_2 = rx->request_count();
  rx->SetDown(true);
  ASSERT_NO_FATAL_FAILURE(Restart());

  // 3. Down again, more alerts, killed while they are retried.
  Send({batch(5), batch(5)});
  absl::SleepFor(absl::Milliseconds(500));
  ASSERT_NO_FATAL_FAILURE(kill_and_restart());

  // 4. The receiver is gone (connections refused), then comes back on its
  // port while pantherd is down, and pantherd is killed mid-delivery again.
  for (const FakeReceiver::Request& r : rx->requests()) earlier.push_back(r);
  rx->Stop();
  rx.reset();
  Send({batch(5), batch(5)});
  absl::SleepFor(absl::Milliseconds(300));
  Kill();
  ++kills;
  rx = StartReceiver(port);
  ASSERT_TRUE(rx);
  slow_answers(10, absl::Milliseconds(150));
  ASSERT_NO_FATAL_FAILURE(Restart());
  ASSERT_TRUE(WaitUntil([&] { return rx->request_count() >= 2; }, absl::Seconds(20),
                        "deliveries to resume"))
      << server_->Log();
  ASSERT_NO_FATAL_FAILURE(kill_and_restart());
  EXPECT_GE(kills, 3);
  EXPECT_GE(delivered_before_kill_2, 3);

  // Up for good: every alert of Delivery.EveryLogin arrives.
  const std::vector<v1::Alert> every = AlertsOf("Delivery.EveryLogin");
  const std::vector<v1::Alert> suppressed = AlertsOf("Delivery.Suppressed");
  ASSERT_EQ(every.size(), static_cast<size_t>(next_event));
  ASSERT_EQ(suppressed.size(), static_cast<size_t>(next_event));
  auto all_requests = [&] {
    std::vector<FakeReceiver::Request> all = earlier;
    for (const FakeReceiver::Request& r : rx->requests()) all.push_back(r);
    return all;
  };
  std::set<std::string> missing;
  ASSERT_TRUE(WaitUntil(
      [&] {
        std::set<std::string> received;
        for (const FakeReceiver::Request& r : all_requests()) {
          received.insert(Str(ParseJson(r.body), "alertId"));
        }
        missing.clear();
        for (const v1::Alert& a : every) {
          if (!received.count(a.id())) missing.insert(a.id());
        }
        return missing.empty();
      },
      absl::Seconds(60), "every Delivery.EveryLogin alert to be received"))
      << missing.size() << " missing\n"
      << server_->Log();

  // Per alert: at least once, and always under one idempotency key.
  std::map<std::string, std::set<std::string>> keys;
  std::map<std::string, int> count;
  std::set<std::string> suppressed_ids;
  for (const v1::Alert& a : suppressed) suppressed_ids.insert(a.id());
  const std::vector<FakeReceiver::Request> all = all_requests();
  for (const FakeReceiver::Request& r : all) {
    google::protobuf::Struct body = ParseJson(r.body);
    const std::string id = Str(body, "alertId");
    EXPECT_FALSE(suppressed_ids.count(id)) << "a suppressed alert was delivered: " << r.body;
    EXPECT_FALSE(absl::StartsWith(Str(body, "title"), "Suppressed")) << r.body;
    EXPECT_EQ(Str(body, "id"), "Delivery.EveryLogin") << r.body;
    EXPECT_EQ(Str(body, "idempotencyKey"), r.Header("Idempotency-Key"));
    keys[id].insert(r.Header("Idempotency-Key"));
    ++count[id];
  }
  int duplicates = 0;
  for (const v1::Alert& a : every) {
    SCOPED_TRACE(a.id());
    EXPECT_GE(count[a.id()], 1);
    duplicates += std::max(0, count[a.id()] - 1);
    ASSERT_EQ(keys[a.id()].size(), 1u);
    ASSERT_TRUE(WaitForDelivery(a.id(), "sink", v1::DELIVERY_STATUS_DELIVERED, absl::Seconds(10)));
    v1::GetAlertResponse got = GetAlert(a.id());
    ASSERT_EQ(got.deliveries_size(), 1) << got.DebugString();
    EXPECT_EQ(got.deliveries(0).idempotency_key(), *keys[a.id()].begin());
    EXPECT_GE(got.deliveries(0).attempts(), 1);
  }
  for (const v1::Alert& a : suppressed) {
    EXPECT_EQ(GetAlert(a.id()).deliveries_size(), 0) << a.id();
  }
  std::cout << "alerts delivered: " << every.size() << ", requests received: " << all.size()
            << ", duplicates: " << duplicates << ", SIGKILLs: " << kills << "\n";
  // Nothing more arrives once every delivery is recorded.
  const int settled = static_cast<int>(all_requests().size());
  absl::SleepFor(absl::Milliseconds(1500));
  EXPECT_EQ(static_cast<int>(all_requests().size()), settled);
}

// ---- 4. Secrets ---------------------------------------------------------------

TEST_F(DestinationsE2eTest, SecretsNeverAppearInLogsAnswersAuditOrMetrics) {
  // Every secret holds "SECRET-", which nothing else in this test does.
  constexpr char kMark[] = "SECRET-";
  const std::string hmac = "SECRET-hmac-key-91bd";
  const std::string header_value = "Bearer SECRET-header-token-5c2e";
  const std::string routing_key = "SECRET-pd-routing-key-0123456789";
  const std::string jira_token = "SECRET-jira-api-token-8e8e";
  std::unique_ptr<FakeReceiver> echo_rx = StartReceiver();  // answers 400, echoing
  std::unique_ptr<FakeReceiver> down_rx = StartReceiver();  // down
  std::unique_ptr<FakeReceiver> ok_rx = StartReceiver();    // PagerDuty 400; Teams, Jira fine
  ASSERT_TRUE(echo_rx && down_rx && ok_rx);
  const std::string webhook_url = echo_rx->url("/hooks/SECRET-webhook-url-7f3a");
  const std::string slack_url = down_rx->url("/services/SECRET-slack-hooks-T000-B000-xyz");
  const std::string teams_url = ok_rx->url("/teams/SECRET-teams-webhook-4d4d");
  // The receiver echoes every secret it was sent, whole.
  echo_rx->SetDefaultAnswer({400,
                             absl::StrCat("refused POST to ", webhook_url, " with Authorization: ",
                                          header_value, " signed with ", hmac),
                             {}});
  down_rx->SetDown(true);
  ok_rx->SetAnswer("/v2/enqueue",
                   {400,
                    absl::StrCat(R"({"status":"invalid event","message":"routing key )",
                                 routing_key, R"( is unknown"})"),
                    {}});
  ok_rx->SetAnswer("/rest/api/2/issue", {201, R"({"id":"10001","key":"SEC-1"})", {}});
  Start({"--rules-dir", kDeliveryRulesDir, "--workers", "1", "--metrics-listen", "127.0.0.1:0",
         "--delivery-retry-base-ms", "200", "--delivery-attempts", "2",
         "--delivery-timeout-seconds", "2"});
  const int metrics_port = MetricsPort();
  ASSERT_NE(metrics_port, 0);

  // What pantherd said, by where it said it.
  std::vector<std::pair<std::string, std::string>> said;
  auto add = [&](const v1::AddDestinationRequest& req) {
    v1::AddDestinationResponse resp;
    grpc::Status s = stub_->AddDestination(Ctx().get(), req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    said.emplace_back("AddDestination " + req.name(), resp.DebugString());
  };
  {
    v1::AddDestinationRequest req;
    req.set_name("hook");
    req.set_kind("webhook");
    (*req.mutable_secrets())["url"] = webhook_url;
    (*req.mutable_secrets())["hmac_secret"] = hmac;
    (*req.mutable_headers())["Authorization"] = header_value;
    add(req);
    req.Clear();
    req.set_name("team-slack");
    req.set_kind("slack");
    (*req.mutable_secrets())["url"] = slack_url;
    add(req);
    req.Clear();
    req.set_name("pager");
    req.set_kind("pagerduty");
    (*req.mutable_secrets())["routing_key"] = routing_key;
    (*req.mutable_settings())["url"] = ok_rx->url("/v2/enqueue");
    add(req);
    req.Clear();
    req.set_name("teams");
    req.set_kind("teams");
    (*req.mutable_secrets())["url"] = teams_url;
    add(req);
    req.Clear();
    req.set_name("jira");
    req.set_kind("jira");
    (*req.mutable_settings())["url"] = ok_rx->base_url();
    (*req.mutable_settings())["project"] = "SEC";
    (*req.mutable_settings())["user"] = "bot@example.com";
    (*req.mutable_secrets())["api_token"] = jira_token;
    add(req);
  }
  // Refused secrets: the errors must not repeat them.
  auto refused = [&](v1::AddDestinationRequest req) {
    v1::AddDestinationResponse resp;
    grpc::Status s = stub_->AddDestination(Ctx().get(), req, &resp);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << req.name();
    said.emplace_back("refused AddDestination " + req.name(),
                      s.error_message() + s.error_details() + resp.DebugString());
  };
  {
    v1::AddDestinationRequest req;
    req.set_name("bad-slack");
    req.set_kind("slack");
    (*req.mutable_secrets())["url"] = "not a url SECRET-bad-slack";
    refused(req);
    req.Clear();
    req.set_name("bad-pager");
    req.set_kind("pagerduty");
    (*req.mutable_secrets())["routing_key"] = "SECRET-bad pager key";
    refused(req);
    req.Clear();
    req.set_name("bad-header");
    req.set_kind("webhook");
    (*req.mutable_secrets())["url"] = echo_rx->url("/x");
    (*req.mutable_headers())["X-Token"] = "SECRET-bad-header\r\nInjected: yes";
    refused(req);
  }

  // pantherctl: a bad secret file, a URL given for a file, a header value.
  {
    WriteFile(tmp_.Sub("bad-url.txt"), "not a url SECRET-cli-bad-url", true);
    RunResult bad = Ctl({"destinations", "add", "slack", "--name", "cli-bad", "--secret-file",
                         tmp_.Sub("bad-url.txt")});
    EXPECT_NE(bad.exit_code, 0);
    said.emplace_back("pantherctl destinations add (bad secret)", bad.out + bad.err);
    RunResult url = Ctl({"destinations", "add", "slack", "--name", "cli-url", "--secret-file",
                         "https://hooks.slack.com/services/SECRET-cli-url-given"});
    EXPECT_NE(url.exit_code, 0);
    said.emplace_back("pantherctl destinations add (URL for a file)", url.out + url.err);
    WriteFile(tmp_.Sub("cli-hook.txt"), echo_rx->url("/cli/SECRET-cli-hook-url"), true);
    RunResult hook = Ctl({"destinations", "add", "webhook", "--name", "cli-hook", "--secret-file",
                          tmp_.Sub("cli-hook.txt"), "--header",
                          "X-Api-Key: SECRET-cli-header-value", "--alert-type", "rule_error"});
    EXPECT_EQ(hook.exit_code, 0) << hook.out << hook.err;
    EXPECT_THAT(hook.out, HasSubstr("X-Api-Key"));
    said.emplace_back("pantherctl destinations add webhook", hook.out + hook.err);
    RunResult json = Ctl({"--output", "json", "destinations", "update", "cli-hook", "--header",
                          "X-Api-Key: SECRET-cli-header-rotated"});
    EXPECT_EQ(json.exit_code, 0) << json.out << json.err;
    said.emplace_back("pantherctl --output json destinations update", json.out + json.err);
  }

  // Each destination tested.
  for (const std::string name : {"hook", "team-slack", "pager", "teams", "jira"}) {
    v1::TestDestinationRequest req;
    req.set_destination(name);
    v1::TestDestinationResponse resp;
    grpc::Status s = stub_->TestDestination(Ctx().get(), req, &resp);
    EXPECT_TRUE(s.ok()) << name << ": " << s.error_message();
    said.emplace_back("TestDestination " + name, resp.DebugString() + s.error_message());
    const std::string n = name;
    if (n == "hook" || n == "pager") {
      EXPECT_FALSE(resp.ok()) << n;
      EXPECT_EQ(resp.http_status(), 400) << n;
      EXPECT_THAT(resp.response_body(), HasSubstr("[redacted]")) << n;
    } else if (n == "team-slack") {
      EXPECT_FALSE(resp.ok());
      EXPECT_EQ(resp.http_status(), 0);
      EXPECT_NE(resp.error(), "");
    } else {
      EXPECT_TRUE(resp.ok()) << n << ": " << resp.DebugString();
    }
  }
  {
    RunResult tested = Ctl({"destinations", "test", "hook"});
    EXPECT_EQ(tested.exit_code, 1) << tested.out << tested.err;
    said.emplace_back("pantherctl destinations test hook", tested.out + tested.err);
  }

  // An alert: delivered to Teams and Jira, refused by the hook and PagerDuty
  // (answers echoing secrets), unreachable on Slack.
  Send({{Login("secret-1", 1)}});
  std::vector<v1::Alert> alerts = AlertsOf("Delivery.EveryLogin");
  ASSERT_EQ(alerts.size(), 1u);
  const std::string id = alerts[0].id();
  EXPECT_TRUE(WaitForDelivery(id, "teams", v1::DELIVERY_STATUS_DELIVERED));
  EXPECT_TRUE(WaitForDelivery(id, "jira", v1::DELIVERY_STATUS_DELIVERED));
  EXPECT_TRUE(WaitForDelivery(id, "hook", v1::DELIVERY_STATUS_FAILED));
  EXPECT_TRUE(WaitForDelivery(id, "pager", v1::DELIVERY_STATUS_FAILED));
  EXPECT_TRUE(WaitForDelivery(id, "team-slack", v1::DELIVERY_STATUS_FAILED));
  {
    v1::GetAlertResponse got = GetAlert(id);
    const v1::AlertDelivery* hook = DeliveryTo(got, "hook");
    ASSERT_NE(hook, nullptr);
    EXPECT_EQ(hook->last_http_status(), 400);
    // The echo was stored, with the secrets replaced.
    EXPECT_THAT(hook->last_error(), HasSubstr("[redacted]"));
    const v1::AlertDelivery* pager = DeliveryTo(got, "pager");
    ASSERT_NE(pager, nullptr);
    EXPECT_THAT(pager->last_error(), HasSubstr("[redacted]"));
  }
  // The jira request used basic authentication with the token.
  bool jira_seen = false;
  for (const FakeReceiver::Request& r : ok_rx->requests()) {
    if (r.path != "/rest/api/2/issue") continue;
    jira_seen = true;
    EXPECT_EQ(r.Header("Authorization"),
              "Basic " + absl::Base64Escape("bot@example.com:" + jira_token));
  }
  EXPECT_TRUE(jira_seen);
  // The hook's requests carry the secrets (the receiver may see them).
  ASSERT_GE(echo_rx->request_count(), 1);
  EXPECT_EQ(echo_rx->requests().back().Header("Authorization"), header_value);

  // A secret changed, then the alert resent to it.
  {
    v1::UpdateDestinationRequest req;
    req.set_destination("team-slack");
    (*req.mutable_secrets())["url"] = down_rx->url("/services/SECRET-slack-rotated-T111");
    v1::UpdateDestinationResponse resp;
    grpc::Status s = stub_->UpdateDestination(Ctx().get(), req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    said.emplace_back("UpdateDestination", resp.DebugString());
    RunResult resent = Ctl({"alerts", "resend", id, "--destination", "team-slack"});
    EXPECT_EQ(resent.exit_code, 0) << resent.err;
    said.emplace_back("pantherctl alerts resend", resent.out + resent.err);
    EXPECT_TRUE(WaitForDelivery(id, "team-slack", v1::DELIVERY_STATUS_FAILED));
  }

  // Everything pantherd shows.
  said.emplace_back("GetAlert", GetAlert(id).DebugString());
  {
    v1::ListDestinationsResponse resp;
    EXPECT_TRUE(stub_->ListDestinations(Ctx().get(), v1::ListDestinationsRequest(), &resp).ok());
    EXPECT_EQ(resp.destinations_size(), 6);
    said.emplace_back("ListDestinations", resp.DebugString());
  }
  for (const std::string name : {"hook", "team-slack", "pager", "teams", "jira"}) {
    v1::GetDestinationRequest req;
    req.set_destination(name);
    v1::GetDestinationResponse resp;
    EXPECT_TRUE(stub_->GetDestination(Ctx().get(), req, &resp).ok());
    said.emplace_back("GetDestination " + name, resp.DebugString());
    for (const std::vector<std::string>& args :
         {std::vector<std::string>{"--output", "json", "destinations", "get", name},
          std::vector<std::string>{"destinations", "get", name}}) {
      RunResult r = Ctl(args);
      EXPECT_EQ(r.exit_code, 0) << r.err;
      said.emplace_back("pantherctl " + absl::StrJoin(args, " "), r.out + r.err);
    }
  }
  {
    v1::GetDestinationResponse resp;
    v1::GetDestinationRequest req;
    req.set_destination("hook");
    ASSERT_TRUE(stub_->GetDestination(Ctx().get(), req, &resp).ok());
    EXPECT_THAT(resp.destination().secrets_set(), ::testing::ElementsAre("hmac_secret", "url"));
    EXPECT_THAT(resp.destination().header_names(), ::testing::ElementsAre("Authorization"));
  }
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"--output", "json", "destinations", "list"},
        std::vector<std::string>{"destinations", "list"},
        std::vector<std::string>{"--output", "json", "alerts", "get", id},
        std::vector<std::string>{"alerts", "get", id}}) {
    RunResult r = Ctl(args);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    said.emplace_back("pantherctl " + absl::StrJoin(args, " "), r.out + r.err);
  }
  {
    v1::ListAuditEventsRequest req;
    req.mutable_page()->set_page_size(1000);
    v1::ListAuditEventsResponse resp;
    grpc::Status s = admin_->ListAuditEvents(Ctx().get(), req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    EXPECT_THAT(resp.DebugString(), HasSubstr("AddDestination"));
    EXPECT_THAT(resp.DebugString(), HasSubstr("UpdateDestination"));
    EXPECT_THAT(resp.DebugString(), HasSubstr("TestDestination"));
    EXPECT_THAT(resp.DebugString(), HasSubstr("ResendAlert"));
    said.emplace_back("ListAuditEvents", resp.DebugString());
  }
  {
    absl::StatusOr<v1::GetServerStatusResponse> st = GetServerStatus(*admin_, server_->bearer());
    ASSERT_TRUE(st.ok()) << st.status();
    said.emplace_back("GetServerStatus", st->DebugString());
  }
  {
    const std::string metrics = LoopbackHttpGet(metrics_port, "/metrics");
    EXPECT_THAT(metrics, HasSubstr("pantherd_deliveries_total"));
    EXPECT_THAT(metrics, HasSubstr("destination=\"team-slack\""));
    said.emplace_back("/metrics", metrics);
  }
  Stop();
  said.emplace_back("the server's log", logs_);
  EXPECT_THAT(logs_, HasSubstr("alert delivery attempt"));

  for (const auto& [where, text] : said) {
    EXPECT_THAT(text, Not(HasSubstr(kMark))) << "a secret in " << where << ":\n" << text;
  }
}

// A receiver that echoes only the path of its URL (the secret part of a
// Slack or Teams webhook URL: /services/T.../B.../token), as many web
// frameworks' default 404 does ("Cannot POST /path").
// Found by this file: only whole secret values used to be replaced by
// [redacted], so the echoed path, the secret part of the URL, reached the
// delivery's last_error, TestDestinationResponse.response_body and the log.
TEST_F(DestinationsE2eTest, APathEchoedByTheReceiverIsNotShown) {
  std::unique_ptr<FakeReceiver> rx = StartReceiver();
  ASSERT_TRUE(rx);
  const std::string path = "/services/T000/B000/SECRET-path-echo-1a2b";
  rx->SetDefaultAnswer({404, absl::StrCat("Cannot POST ", path), {}});
  Start({"--rules-dir", kDeliveryRulesDir, "--workers", "1", "--delivery-retry-base-ms", "200"});
  AddWebhook("echo", rx->url(path));
  v1::TestDestinationRequest treq;
  treq.set_destination("echo");
  v1::TestDestinationResponse tresp;
  ASSERT_TRUE(stub_->TestDestination(Ctx().get(), treq, &tresp).ok());
  EXPECT_EQ(tresp.http_status(), 404);
  Send({{Login("echo-1", 1)}});
  std::vector<v1::Alert> alerts = AlertsOf("Delivery.EveryLogin");
  ASSERT_EQ(alerts.size(), 1u);
  ASSERT_TRUE(WaitForDelivery(alerts[0].id(), "echo", v1::DELIVERY_STATUS_FAILED));
  const v1::GetAlertResponse got = GetAlert(alerts[0].id());
  const v1::AlertDelivery* d = DeliveryTo(got, "echo");
  ASSERT_NE(d, nullptr);
  Stop();
  EXPECT_THAT(tresp.response_body(), Not(HasSubstr("SECRET-")));
  EXPECT_THAT(d->last_error(), Not(HasSubstr("SECRET-")));
  for (absl::string_view line : absl::StrSplit(logs_, '\n')) {
    EXPECT_THAT(std::string(line), Not(HasSubstr("SECRET-")));
  }
}

// ---- 5. Roles ---------------------------------------------------------------

TEST_F(DestinationsE2eTest, PermissionsFollowTheTable) {
  std::unique_ptr<FakeReceiver> rx = StartReceiver();
  ASSERT_TRUE(rx);
  Start({"--rules-dir", kDeliveryRulesDir, "--workers", "1", "--delivery-retry-base-ms", "200"});
  AddWebhook("hook", rx->url("/hook"));
  Send({{Login("perm-1", 1)}});
  std::vector<v1::Alert> alerts = AlertsOf("Delivery.EveryLogin");
  ASSERT_EQ(alerts.size(), 1u);
  ASSERT_TRUE(WaitForDelivery(alerts[0].id(), "hook", v1::DELIVERY_STATUS_DELIVERED));

  auto token_of = [&](const std::string& name, v1::Role role) {
    v1::CreateUserRequest cu;
    cu.set_name(name);
    cu.set_role(role);
    v1::CreateUserResponse user;
    grpc::Status s = admin_->CreateUser(Ctx().get(), cu, &user);
    EXPECT_TRUE(s.ok()) << s.error_message();
    v1::CreateTokenRequest ct;
    ct.set_name(name + "-token");
    ct.set_owner(name);
    v1::CreateTokenResponse token;
    s = admin_->CreateToken(Ctx().get(), ct, &token);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return "Bearer " + token.secret();
  };
  const std::string viewer = token_of("vera", v1::ROLE_VIEWER);
  const std::string analyst = token_of("anna", v1::ROLE_ANALYST);
  const std::string author = token_of("otto", v1::ROLE_AUTHOR);

  auto add = [&](const std::string& bearer) {
    v1::AddDestinationRequest req;
    req.set_name("another");
    req.set_kind("webhook");
    (*req.mutable_secrets())["url"] = rx->url("/another");
    v1::AddDestinationResponse resp;
    return stub_->AddDestination(Ctx(bearer).get(), req, &resp).error_code();
  };
  auto test = [&](const std::string& bearer) {
    v1::TestDestinationRequest req;
    req.set_destination("hook");
    v1::TestDestinationResponse resp;
    return stub_->TestDestination(Ctx(bearer).get(), req, &resp).error_code();
  };
  auto list = [&](const std::string& bearer) {
    v1::ListDestinationsResponse resp;
    return stub_->ListDestinations(Ctx(bearer).get(), v1::ListDestinationsRequest(), &resp)
        .error_code();
  };
  auto get = [&](const std::string& bearer) {
    v1::GetDestinationRequest req;
    req.set_destination("hook");
    v1::GetDestinationResponse resp;
    return stub_->GetDestination(Ctx(bearer).get(), req, &resp).error_code();
  };
  auto resend = [&](const std::string& bearer) {
    v1::ResendAlertRequest req;
    req.set_alert_id(alerts[0].id());
    v1::ResendAlertResponse resp;
    return stub_->ResendAlert(Ctx(bearer).get(), req, &resp).error_code();
  };
  auto update = [&](const std::string& bearer) {
    v1::UpdateDestinationRequest req;
    req.set_destination("hook");
    req.set_name("renamed");
    v1::UpdateDestinationResponse resp;
    return stub_->UpdateDestination(Ctx(bearer).get(), req, &resp).error_code();
  };
  auto remove = [&](const std::string& bearer) {
    v1::RemoveDestinationRequest req;
    req.set_destination("hook");
    v1::RemoveDestinationResponse resp;
    return stub_->RemoveDestination(Ctx(bearer).get(), req, &resp).error_code();
  };
  constexpr grpc::StatusCode kDenied = grpc::StatusCode::PERMISSION_DENIED;
  for (const std::string* who : {&viewer, &analyst, &author}) {
    EXPECT_EQ(add(*who), kDenied);
    EXPECT_EQ(test(*who), kDenied);
    EXPECT_EQ(update(*who), kDenied);
    EXPECT_EQ(remove(*who), kDenied);
  }
  EXPECT_EQ(list(viewer), kDenied);
  EXPECT_EQ(get(viewer), kDenied);
  EXPECT_EQ(list(analyst), kDenied);
  EXPECT_EQ(get(analyst), kDenied);
  EXPECT_EQ(list(author), grpc::StatusCode::OK);
  EXPECT_EQ(get(author), grpc::StatusCode::OK);
  EXPECT_EQ(resend(viewer), kDenied);
  EXPECT_EQ(rx->request_count(), 1);  // nothing was tested or resent so far
  EXPECT_EQ(resend(analyst), grpc::StatusCode::OK);
  ASSERT_TRUE(rx->WaitForRequests(2, absl::Seconds(10)));
  // Resend again once that attempt is recorded (a resend during an attempt
  // in flight is tested in AResendDuringAnAttemptInFlightIsNotLost).
  ASSERT_TRUE(WaitForDelivery(alerts[0].id(), "hook", v1::DELIVERY_STATUS_DELIVERED));
  EXPECT_EQ(resend(author), grpc::StatusCode::OK);
  ASSERT_TRUE(rx->WaitForRequests(3, absl::Seconds(10)));
  // The admin may do everything.
  EXPECT_EQ(test(""), grpc::StatusCode::OK);
  EXPECT_EQ(add(""), grpc::StatusCode::OK);
  // pantherctl as the viewer is refused too.
  const std::string viewer_file = tmp_.Sub("viewer.token");
  WriteFile(viewer_file, viewer.substr(std::string("Bearer ").size()), /*owner_only=*/true);
  absl::StatusOr<RunResult> denied =
      RunCommand({kPantherctl, "--server", server_->address(), "--token-file", viewer_file,
                  "destinations", "list"},
                 tmp_.path());
  ASSERT_TRUE(denied.ok());
  EXPECT_NE(denied->exit_code, 0);
  EXPECT_THAT(denied->out + denied->err, HasSubstr("destinations.read"));
}

// Found by this file: a resend asked for while an attempt of the same
// delivery was in flight was lost: the attempt's outcome (a 404 from before
// the destination was fixed) was written over the pending record. The
// attempt's outcome now yields to the resend.
TEST_F(DestinationsE2eTest, AResendDuringAnAttemptInFlightIsNotLost) {
  std::unique_ptr<FakeReceiver> rx = StartReceiver();
  ASSERT_TRUE(rx);
  // The first request is answered 404, slowly.
  rx->SetDefaultAnswer({404, "no such hook", {}});
  rx->Inject({FakeReceiver::Delay(absl::Milliseconds(1500))});
  Start({"--rules-dir", kDeliveryRulesDir, "--workers", "1", "--delivery-retry-base-ms", "200"});
  AddWebhook("hook", rx->url("/hook"));
  Send({{Login("inflight-1", 1)}});
  std::vector<v1::Alert> alerts = AlertsOf("Delivery.EveryLogin");
  ASSERT_EQ(alerts.size(), 1u);
  const std::string id = alerts[0].id();
  // While the first attempt waits for its 404, the receiver is fixed and the
  // alert resent.
  ASSERT_TRUE(rx->WaitForRequests(1, absl::Seconds(10)));
  rx->SetDefaultAnswer({200, "ok", {}});
  v1::ResendAlertRequest req;
  req.set_alert_id(id);
  v1::ResendAlertResponse resp;
  grpc::Status s = stub_->ResendAlert(Ctx().get(), req, &resp);
  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_EQ(resp.deliveries_size(), 1);
  EXPECT_EQ(resp.deliveries(0).status(), v1::DELIVERY_STATUS_PENDING);
  // The resend must be sent, and delivered.
  EXPECT_TRUE(rx->WaitForRequests(2, absl::Seconds(10)))
      << GetAlert(id).DebugString() << server_->Log();
  EXPECT_TRUE(WaitForDelivery(id, "hook", v1::DELIVERY_STATUS_DELIVERED, absl::Seconds(5)));
}

}  // namespace
}  // namespace pantherd::testing
