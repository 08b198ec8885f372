#include "server/delivery_manager.h"

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "engine/alert_engine.h"
#include "engine/delivery_outbox.h"
#include "gmock/gmock.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "server/destination_registry.h"
#include "server/http_client.h"
#include "tests/fake_receiver.h"
#include "tests/test_util.h"

namespace pantherd::server {
namespace {

using ::pantherd::testing::FakeReceiver;
using ::pantherd::testing::TempDir;
using ::pantherd::testing::WaitUntil;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::SizeIs;

const absl::Time kT0 = absl::FromUnixSeconds(1772359200);  // 2026-03-01T10:00:00Z

internal::StoredDestination Dest(const std::string& id, const std::string& name,
                                 const std::string& kind, v1::DestinationFilters filters = {}) {
  internal::StoredDestination d;
  d.mutable_destination()->set_id(id);
  d.mutable_destination()->set_name(name);
  d.mutable_destination()->set_kind(kind);
  *d.mutable_destination()->mutable_filters() = filters;
  return d;
}

v1::Alert RuleAlert(v1::Severity severity = v1::SEVERITY_HIGH) {
  v1::Alert a;
  a.set_id("a1");
  a.set_type(v1::ALERT_TYPE_RULE);
  a.set_rule_id("Okta.FailedLogin");
  a.set_severity(severity);
  a.add_log_types("Okta.SystemLog");
  return a;
}

std::vector<std::string> Names(const std::vector<Route>& routes) {
  std::vector<std::string> out;
  for (const Route& r : routes) out.push_back(r.destination_name + "/" + r.routed_by);
  return out;
}

// ---- Routing (pure) -------------------------------------------------------------

TEST(RouteAlertTest, FollowsPanthersOrder) {
  v1::DestinationFilters high;
  high.set_min_severity(v1::SEVERITY_HIGH);
  v1::DestinationFilters errors_only;
  errors_only.add_alert_types(v1::ALERT_TYPE_RULE_ERROR);
  v1::DestinationFilters other_log;
  other_log.add_log_types("AWS.CloudTrail");
  v1::DestinationFilters one_rule;
  one_rule.add_rule_ids("Okta.FailedLogin");
  const std::vector<internal::StoredDestination> all = {
      Dest("00000000000000a1", "pager", "pagerduty", high),
      Dest("00000000000000a2", "errors", "webhook", errors_only),
      Dest("00000000000000a3", "aws", "slack", other_log),
      Dest("00000000000000a4", "Team-Slack", "slack", one_rule),
  };
  // 3. Filters: severity, type, log type and rule.
  EXPECT_THAT(Names(RouteAlert(RuleAlert(), nullptr, all)),
              ::testing::ElementsAre("Team-Slack/filters", "pager/filters"));
  EXPECT_THAT(Names(RouteAlert(RuleAlert(v1::SEVERITY_LOW), nullptr, all)),
              ::testing::ElementsAre("Team-Slack/filters"));
  // 2. OutputIds, by name (any case) or id, skipping the filters but the type.
  v1::Rule rule;
  rule.add_output_ids("team-slack");
  rule.add_output_ids("00000000000000a3");
  rule.add_output_ids("errors");
  EXPECT_THAT(Names(RouteAlert(RuleAlert(v1::SEVERITY_INFO), &rule, all)),
              ::testing::ElementsAre("Team-Slack/OutputIds", "aws/OutputIds"));
  // 1. destinations() wins over OutputIds; an unknown name is a failed route.
  v1::Alert alert = RuleAlert();
  alert.set_destinations_overridden(true);
  alert.add_destinations("aws");
  alert.add_destinations("nope");
  std::vector<Route> routes = RouteAlert(alert, &rule, all);
  ASSERT_THAT(routes, SizeIs(2));
  EXPECT_EQ(routes[0].destination_name, "aws");
  EXPECT_EQ(routes[1].destination_id, "?nope");
  EXPECT_THAT(routes[1].error, HasSubstr("no destination named nope"));
  // An empty list or SKIP suppresses; signals never route.
  alert.clear_destinations();
  EXPECT_THAT(RouteAlert(alert, &rule, all), SizeIs(0));
  alert.add_destinations("SKIP");
  alert.add_destinations("aws");
  EXPECT_THAT(RouteAlert(alert, &rule, all), SizeIs(0));
  v1::Rule skip;
  skip.add_output_ids("SKIP");
  EXPECT_THAT(RouteAlert(RuleAlert(), &skip, all), SizeIs(0));
  v1::Alert signal = RuleAlert();
  signal.set_type(v1::ALERT_TYPE_SIGNAL);
  EXPECT_THAT(RouteAlert(signal, nullptr, all), SizeIs(0));
  // Rule errors go to destinations taking them.
  v1::Alert error = RuleAlert(v1::SEVERITY_INFO);
  error.set_type(v1::ALERT_TYPE_RULE_ERROR);
  EXPECT_THAT(Names(RouteAlert(error, nullptr, all)),
              ::testing::ElementsAre("Team-Slack/filters", "errors/filters"));
}

TEST(DeliveryTimingTest, DefaultRetriesSpanAboutADay) {
  DeliveryOptions options;
  absl::Duration total;
  for (int attempt = 1; attempt < options.max_attempts; ++attempt) {
    total += BackoffDelay(options, attempt);
  }
  EXPECT_GT(total, absl::Hours(18));
  EXPECT_LT(total, absl::Hours(26));
  EXPECT_EQ(BackoffDelay(options, 1), absl::Seconds(30));
  EXPECT_EQ(BackoffDelay(options, 3), absl::Seconds(270));
  EXPECT_EQ(BackoffDelay(options, 9), absl::Hours(6));
}

TEST(DeliveryTimingTest, RetryAfterSecondsOrHttpDate) {
  const absl::Time now = absl::FromUnixSeconds(1445412480);  // Wed, 21 Oct 2015 07:28:00 GMT
  EXPECT_EQ(ParseRetryAfter("120", now), absl::Seconds(120));
  EXPECT_EQ(ParseRetryAfter(" 0 ", now), absl::ZeroDuration());
  EXPECT_EQ(ParseRetryAfter("Wed, 21 Oct 2015 07:29:00 GMT", now), absl::Seconds(60));
  EXPECT_EQ(ParseRetryAfter("Wed, 21 Oct 2015 07:00:00 GMT", now), absl::ZeroDuration());
  EXPECT_EQ(ParseRetryAfter("-5", now), std::nullopt);
  EXPECT_EQ(ParseRetryAfter("soon", now), std::nullopt);
  EXPECT_EQ(ParseRetryAfter("", now), std::nullopt);
}

TEST(DeliveryTimingTest, IdempotencyKeysAreStablePerDeliveryOnly) {
  const std::string k = IdempotencyKey("a1", "d1", "trigger");
  EXPECT_EQ(k.size(), 32u);
  EXPECT_EQ(k, IdempotencyKey("a1", "d1", "trigger"));
  EXPECT_NE(k, IdempotencyKey("a1", "d2", "trigger"));
  EXPECT_NE(k, IdempotencyKey("a1", "d1", "resolve"));
  EXPECT_NE(k, IdempotencyKey("a2", "d1", "trigger"));
}

// ---- The manager, over a real store, the real curl client and a loopback receiver ----

class DeliveryManagerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<store::Store>> s = store::Store::Open(dir_.Sub("data"), {});
    ASSERT_TRUE(s.ok()) << s.status();
    store_ = *std::move(s);
    engine::AlertEngineOptions engine_options;
    engine_options.now = [] { return kT0; };
    engine_ = std::make_unique<engine::AlertEngine>(store_.get(), engine_options);
    registry_ = std::make_unique<DestinationRegistry>(store_.get(), base::RealClock());
    ASSERT_TRUE(registry_->Load().ok());
    http_ = NewCurlHttpClient();
    absl::StatusOr<std::unique_ptr<FakeReceiver>> r = FakeReceiver::Start();
    ASSERT_TRUE(r.ok()) << r.status();
    receiver_ = *std::move(r);
    options_.retry_base = absl::Milliseconds(20);
    options_.retry_max = absl::Milliseconds(200);
    options_.poll_interval = absl::Milliseconds(50);
    options_.request_timeout = absl::Seconds(2);
    options_.max_attempts = 5;
    options_.external_url = "https://pantherd.example.test/";
  }
  void TearDown() override {
    manager_.reset();
    receiver_->Stop();
  }

  void StartManager() {
    manager_ =
        std::make_unique<DeliveryManager>(store_.get(), registry_.get(), http_.get(), options_);
    ASSERT_TRUE(manager_->Start().ok());
  }

  std::string AddWebhook(const std::string& name, const std::string& path,
                         const std::string& secret = "") {
    v1::AddDestinationRequest req;
    req.set_name(name);
    req.set_kind("webhook");
    (*req.mutable_secrets())["url"] =
        receiver_->url(path) + (secret.empty() ? "" : absl::StrCat("?token=", secret));
    absl::StatusOr<v1::Destination> d = manager_->AddDestination(req, "ann");
    EXPECT_TRUE(d.ok()) << d.status();
    return d.ok() ? d->id() : "";
  }

  // Creates one alert of rule `rule` (dedup `dedup`); returns its id.
  std::string CreateAlert(const std::string& rule, const std::string& dedup,
                          std::vector<std::string> destinations = {}, bool overridden = false) {
    engine::RuleMatch m;
    m.rule_id = rule;
    m.rule_version = 1;
    m.dedup_string = dedup;
    m.title = "Title " + dedup;
    m.severity = v1::SEVERITY_HIGH;
    m.alert_context_json = R"({"ip":"203.0.113.9"})";
    m.destinations = std::move(destinations);
    m.destinations_overridden = overridden;
    engine::EventResult e;
    e.event_id = "e-" + dedup;
    e.log_type = "Okta.SystemLog";
    e.event_time = kT0;
    e.event_json = "{}";
    e.matches.push_back(m);
    absl::StatusOr<engine::BatchOutcome> out = engine_->ApplyBatch({e});
    EXPECT_TRUE(out.ok()) << out.status();
    if (!out.ok() || out->changes.empty()) return "";
    if (manager_ != nullptr) manager_->Wake();
    return out->changes[0].alert().id();
  }

  std::vector<v1::AlertDelivery> Deliveries(const std::string& alert_id) {
    absl::StatusOr<std::vector<v1::AlertDelivery>> d = manager_->DeliveriesOf(alert_id);
    EXPECT_TRUE(d.ok()) << d.status();
    return d.ok() ? *d : std::vector<v1::AlertDelivery>{};
  }

  bool AllIn(const std::string& alert_id, v1::DeliveryStatus status, size_t n) {
    std::vector<v1::AlertDelivery> d = Deliveries(alert_id);
    if (d.size() != n) return false;
    for (const v1::AlertDelivery& x : d) {
      if (x.status() != status) return false;
    }
    return true;
  }

  TempDir dir_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<engine::AlertEngine> engine_;
  std::unique_ptr<DestinationRegistry> registry_;
  std::unique_ptr<HttpClient> http_;
  std::unique_ptr<FakeReceiver> receiver_;
  DeliveryOptions options_;
  std::unique_ptr<DeliveryManager> manager_;
};

TEST_F(DeliveryManagerTest, DeliversANewAlertOnceWithItsPayloadAndKey) {
  StartManager();
  const std::string dest = AddWebhook("hook", "/hook");
  const std::string id = CreateAlert("Okta.FailedLogin", "admin");
  ASSERT_TRUE(WaitUntil([&] { return AllIn(id, v1::DELIVERY_STATUS_DELIVERED, 1); },
                        absl::Seconds(10), "delivered"));
  ASSERT_EQ(receiver_->request_count(), 1);
  const FakeReceiver::Request req = receiver_->requests()[0];
  EXPECT_EQ(req.method, "POST");
  EXPECT_EQ(req.path, "/hook");
  const v1::AlertDelivery d = Deliveries(id)[0];
  EXPECT_EQ(d.attempts(), 1);
  EXPECT_EQ(d.last_http_status(), 200);
  EXPECT_EQ(d.routed_by(), "filters");
  EXPECT_EQ(d.idempotency_key(), IdempotencyKey(id, dest, "trigger"));
  EXPECT_EQ(req.Header("Idempotency-Key"), d.idempotency_key());
  google::protobuf::Struct body;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(req.body, &body).ok()) << req.body;
  EXPECT_EQ(body.fields().at("alertId").string_value(), id);
  EXPECT_EQ(body.fields().at("link").string_value(), "https://pantherd.example.test/alerts/" + id);
  EXPECT_EQ(body.fields().at("context").struct_value().fields().at("ip").string_value(),
            "203.0.113.9");
  // The outbox is empty again, and nothing else is sent.
  EXPECT_EQ(*store_->Count(store::Family::kDeliveries, engine::kOutboxPrefix), 0);
  absl::SleepFor(absl::Milliseconds(300));
  EXPECT_EQ(receiver_->request_count(), 1);
}

TEST_F(DeliveryManagerTest, RetriesFailuresWithTheSameKeyThenGivesUp) {
  options_.max_attempts = 3;
  StartManager();
  AddWebhook("hook", "/hook");
  receiver_->Inject({FakeReceiver::Status(500, "oops"), FakeReceiver::Drop()});
  const std::string ok_id = CreateAlert("R", "first");
  ASSERT_TRUE(WaitUntil([&] { return AllIn(ok_id, v1::DELIVERY_STATUS_DELIVERED, 1); },
                        absl::Seconds(10), "delivered after two failures"));
  EXPECT_EQ(Deliveries(ok_id)[0].attempts(), 3);
  std::vector<FakeReceiver::Request> reqs = receiver_->requests();
  ASSERT_THAT(reqs, SizeIs(3));
  EXPECT_EQ(reqs[0].Header("Idempotency-Key"), reqs[2].Header("Idempotency-Key"));
  EXPECT_EQ(reqs[2].attempt, 3);

  receiver_->SetDefaultAnswer({503, "down for maintenance", {}});
  const std::string failed_id = CreateAlert("R", "second");
  ASSERT_TRUE(WaitUntil([&] { return AllIn(failed_id, v1::DELIVERY_STATUS_FAILED, 1); },
                        absl::Seconds(10), "failed after 3 attempts"));
  const v1::AlertDelivery d = Deliveries(failed_id)[0];
  EXPECT_EQ(d.attempts(), 3);
  EXPECT_EQ(d.last_http_status(), 503);
  EXPECT_THAT(d.last_error(), HasSubstr("gave up after 3 attempts"));
  EXPECT_THAT(d.last_error(), HasSubstr("down for maintenance"));
  std::vector<v1::DestinationMetrics> metrics = manager_->Metrics();
  ASSERT_THAT(metrics, SizeIs(1));
  EXPECT_EQ(metrics[0].delivered(), 1);
  EXPECT_EQ(metrics[0].failed(), 1);
  EXPECT_EQ(metrics[0].retried(), 4);
  EXPECT_EQ(metrics[0].pending(), 0);

  // Resend, with the receiver fixed: delivered, same key.
  receiver_->SetDefaultAnswer({200, "ok", {}});
  absl::StatusOr<std::vector<v1::AlertDelivery>> resent = manager_->Resend(failed_id, "HOOK");
  ASSERT_TRUE(resent.ok()) << resent.status();
  ASSERT_THAT(*resent, SizeIs(1));
  EXPECT_EQ((*resent)[0].status(), v1::DELIVERY_STATUS_PENDING);
  ASSERT_TRUE(WaitUntil([&] { return AllIn(failed_id, v1::DELIVERY_STATUS_DELIVERED, 1); },
                        absl::Seconds(10), "delivered after resend"));
  EXPECT_EQ(Deliveries(failed_id)[0].resends(), 1);
  EXPECT_EQ(receiver_->requests().back().Header("Idempotency-Key"), d.idempotency_key());
}

TEST_F(DeliveryManagerTest, PermanentRefusalsFailAtOnceAndRetryAfterIsHonoured) {
  options_.retry_base = absl::Seconds(30);  // only Retry-After can make the retry quick
  StartManager();
  AddWebhook("hook", "/hook");
  receiver_->Inject({FakeReceiver::Status(404, "no such hook")});
  const std::string gone = CreateAlert("R", "gone");
  ASSERT_TRUE(WaitUntil([&] { return AllIn(gone, v1::DELIVERY_STATUS_FAILED, 1); },
                        absl::Seconds(10), "404 fails at once"));
  EXPECT_EQ(Deliveries(gone)[0].attempts(), 1);
  EXPECT_EQ(Deliveries(gone)[0].last_http_status(), 404);

  receiver_->Inject({FakeReceiver::Status(429, "slow down", {{"Retry-After", "1"}})});
  const std::string slow = CreateAlert("R", "slow");
  ASSERT_TRUE(WaitUntil([&] { return AllIn(slow, v1::DELIVERY_STATUS_DELIVERED, 1); },
                        absl::Seconds(10), "delivered after Retry-After"));
  std::vector<FakeReceiver::Request> reqs = receiver_->requests();
  ASSERT_GE(reqs.size(), 3u);
  const absl::Duration waited = reqs.back().time - reqs[reqs.size() - 2].time;
  EXPECT_GE(waited, absl::Milliseconds(900));
  EXPECT_LT(waited, absl::Seconds(5));
}

TEST_F(DeliveryManagerTest, ASlowDestinationDoesNotHoldUpAnother) {
  absl::StatusOr<std::unique_ptr<FakeReceiver>> fast = FakeReceiver::Start();
  ASSERT_TRUE(fast.ok());
  options_.request_timeout = absl::Seconds(5);
  StartManager();
  AddWebhook("slow", "/slow");
  v1::AddDestinationRequest req;
  req.set_name("fast");
  req.set_kind("webhook");
  (*req.mutable_secrets())["url"] = (*fast)->url("/fast");
  ASSERT_TRUE(manager_->AddDestination(req, "ann").ok());
  receiver_->Inject({FakeReceiver::Delay(absl::Seconds(3)), FakeReceiver::Delay(absl::Seconds(3))});
  const absl::Time start = absl::Now();
  const std::string a = CreateAlert("R", "one");
  const std::string b = CreateAlert("R", "two");
  ASSERT_TRUE((*fast)->WaitForRequests(2, absl::Seconds(10)));
  EXPECT_LT(absl::Now() - start, absl::Seconds(2)) << "the fast lane waited for the slow one";
  ASSERT_TRUE(WaitUntil(
      [&] {
        return AllIn(a, v1::DELIVERY_STATUS_DELIVERED, 2) &&
               AllIn(b, v1::DELIVERY_STATUS_DELIVERED, 2);
      },
      absl::Seconds(15), "both delivered everywhere"));
  (*fast)->Stop();
}

TEST_F(DeliveryManagerTest, NothingIsLostAcrossARestart) {
  StartManager();
  const std::string dest = AddWebhook("hook", "/hook");
  receiver_->SetDown(true);
  const std::string pending = CreateAlert("R", "pending");
  ASSERT_TRUE(WaitUntil(
      [&] {
        std::vector<v1::AlertDelivery> d = Deliveries(pending);
        return d.size() == 1 && d[0].attempts() >= 1;
      },
      absl::Seconds(10), "a failed attempt"));
  manager_.reset();
  // Alerts created while nothing delivers stay in the outbox.
  const std::string later = CreateAlert("R", "later");
  receiver_->SetDown(false);
  StartManager();
  ASSERT_TRUE(WaitUntil(
      [&] {
        return AllIn(pending, v1::DELIVERY_STATUS_DELIVERED, 1) &&
               AllIn(later, v1::DELIVERY_STATUS_DELIVERED, 1);
      },
      absl::Seconds(10), "both delivered after the restart"));
  std::set<std::string> keys;
  for (const FakeReceiver::Request& r : receiver_->requests()) {
    keys.insert(r.Header("Idempotency-Key"));
  }
  EXPECT_EQ(keys, (std::set<std::string>{IdempotencyKey(pending, dest, "trigger"),
                                         IdempotencyKey(later, dest, "trigger")}));
}

TEST_F(DeliveryManagerTest, UnknownNamesAreRecordedFailuresUntilResent) {
  StartManager();
  AddWebhook("hook", "/hook");
  const std::string id = CreateAlert("R", "x", {"pager-team"}, true);
  ASSERT_TRUE(WaitUntil([&] { return AllIn(id, v1::DELIVERY_STATUS_FAILED, 1); }, absl::Seconds(10),
                        "a failed record"));
  EXPECT_THAT(Deliveries(id)[0].last_error(), HasSubstr("no destination named pager-team"));
  EXPECT_EQ(receiver_->request_count(), 0);  // not sent to "hook": the rule named its own
  const std::string suppressed = CreateAlert("R", "quiet", {}, true);
  AddWebhook("pager-team", "/pager");
  absl::StatusOr<std::vector<v1::AlertDelivery>> resent = manager_->Resend(id, "");
  ASSERT_TRUE(resent.ok()) << resent.status();
  ASSERT_TRUE(receiver_->WaitForRequests(1, absl::Seconds(10)));
  EXPECT_EQ(receiver_->requests()[0].path, "/pager");
  absl::SleepFor(absl::Milliseconds(300));
  EXPECT_EQ(receiver_->request_count(), 1);
  EXPECT_TRUE(Deliveries(suppressed).empty());
}

TEST_F(DeliveryManagerTest, ResolvingAnAlertResolvesItsPagerDutyIncidentOnly) {
  StartManager();
  AddWebhook("hook", "/hook");
  v1::AddDestinationRequest pd;
  pd.set_name("pd");
  pd.set_kind("pagerduty");
  (*pd.mutable_secrets())["routing_key"] = "R0UT1NGKEY0123456789abcdefABCDEF";
  (*pd.mutable_settings())["url"] = receiver_->url("/pd");
  ASSERT_TRUE(manager_->AddDestination(pd, "ann").ok());
  const std::string id = CreateAlert("R", "x");
  ASSERT_TRUE(WaitUntil([&] { return AllIn(id, v1::DELIVERY_STATUS_DELIVERED, 2); },
                        absl::Seconds(10), "triggered"));
  v1::UpdateAlertRequest resolve;
  resolve.set_id(id);
  resolve.set_status(v1::ALERT_STATUS_RESOLVED);
  ASSERT_TRUE(engine_->UpdateAlert(resolve, "ann", kT0 + absl::Minutes(5)).ok());
  manager_->Wake();
  ASSERT_TRUE(WaitUntil([&] { return AllIn(id, v1::DELIVERY_STATUS_DELIVERED, 3); },
                        absl::Seconds(10), "resolved"));
  std::vector<FakeReceiver::Request> reqs = receiver_->requests();
  ASSERT_THAT(reqs, SizeIs(3));
  EXPECT_EQ(reqs[2].path, "/pd");
  google::protobuf::Struct body;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(reqs[2].body, &body).ok());
  EXPECT_EQ(body.fields().at("event_action").string_value(), "resolve");
  EXPECT_EQ(body.fields().at("dedup_key").string_value(), id);
}

TEST_F(DeliveryManagerTest, RemovingADestinationFailsItsPendingDeliveries) {
  StartManager();
  AddWebhook("hook", "/hook");
  receiver_->SetDown(true);
  const std::string id = CreateAlert("R", "x");
  ASSERT_TRUE(
      WaitUntil([&] { return Deliveries(id).size() == 1; }, absl::Seconds(10), "a pending record"));
  absl::StatusOr<int64_t> failed = manager_->RemoveDestination("hook");
  ASSERT_TRUE(failed.ok()) << failed.status();
  EXPECT_EQ(*failed, 1);
  EXPECT_TRUE(AllIn(id, v1::DELIVERY_STATUS_FAILED, 1));
  EXPECT_THAT(Deliveries(id)[0].last_error(), HasSubstr("destination was removed"));
  EXPECT_TRUE(manager_->Metrics().empty());
}

TEST_F(DeliveryManagerTest, StoredErrorsAndViewsNeverHoldTheSecret) {
  StartManager();
  const std::string secret = "S3CRET-token-value-42";
  AddWebhook("hook", "/hook", secret);
  receiver_->Inject({FakeReceiver::Status(400, "bad token " + secret + " in the URL")});
  const std::string id = CreateAlert("R", "x");
  ASSERT_TRUE(WaitUntil([&] { return AllIn(id, v1::DELIVERY_STATUS_FAILED, 1); }, absl::Seconds(10),
                        "refused"));
  const v1::AlertDelivery d = Deliveries(id)[0];
  EXPECT_THAT(d.last_error(), Not(HasSubstr(secret)));
  EXPECT_THAT(d.last_error(), HasSubstr("[redacted]"));
  const v1::ListDestinationsResponse listed = manager_->ListDestinations();
  for (const v1::Destination& view : listed.destinations()) {
    EXPECT_THAT(view.DebugString(), Not(HasSubstr(secret)));
    EXPECT_THAT(view.secrets_set(), ::testing::ElementsAre("url"));
  }
  receiver_->Inject({FakeReceiver::Status(401, "token " + secret + " is revoked")});
  absl::StatusOr<v1::TestDestinationResponse> tested = manager_->TestDestination("hook");
  ASSERT_TRUE(tested.ok());
  EXPECT_FALSE(tested->ok());
  EXPECT_EQ(tested->http_status(), 401);
  EXPECT_THAT(tested->DebugString(), Not(HasSubstr(secret)));
  // A refused connection's error does not hold the URL either.
  receiver_->Stop();
  tested = manager_->TestDestination("hook");
  ASSERT_TRUE(tested.ok());
  EXPECT_FALSE(tested->ok());
  EXPECT_FALSE(tested->error().empty());
  EXPECT_THAT(tested->DebugString(), Not(HasSubstr(secret)));
}

TEST_F(DeliveryManagerTest, RegistryRefusesBadDestinationsByField) {
  StartManager();
  v1::AddDestinationRequest req;
  req.set_name("x");
  req.set_kind("carrier-pigeon");
  absl::StatusOr<v1::Destination> d = manager_->AddDestination(req, "ann");
  ASSERT_EQ(d.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(d.status().message(), HasSubstr("kind:"));
  EXPECT_THAT(d.status().message(), HasSubstr("slack"));
  req.set_kind("slack");
  (*req.mutable_secrets())["url"] = "not a url SECRETVALUE";
  d = manager_->AddDestination(req, "ann");
  ASSERT_EQ(d.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(d.status().message(), Not(HasSubstr("SECRETVALUE")));
  (*req.mutable_secrets())["url"] = receiver_->url("/s");
  req.set_name("SKIP");
  EXPECT_EQ(manager_->AddDestination(req, "ann").status().code(),
            absl::StatusCode::kInvalidArgument);
  req.set_name("Team");
  req.mutable_filters()->add_alert_types(v1::ALERT_TYPE_SIGNAL);
  d = manager_->AddDestination(req, "ann");
  EXPECT_THAT(d.status().message(), HasSubstr("filters.alert_types"));
  req.clear_filters();
  ASSERT_TRUE(manager_->AddDestination(req, "ann").ok());
  req.set_name("team");
  EXPECT_EQ(manager_->AddDestination(req, "ann").status().code(), absl::StatusCode::kAlreadyExists);
  // Survives a reload.
  DestinationRegistry reloaded(store_.get(), base::RealClock());
  ASSERT_TRUE(reloaded.Load().ok());
  ASSERT_THAT(reloaded.All(), SizeIs(1));
  EXPECT_EQ(reloaded.All()[0].secrets().at("url"), receiver_->url("/s"));
}

}  // namespace
}  // namespace pantherd::server
