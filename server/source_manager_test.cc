// The Okta poller against the fake Okta org (a real HTTP server), over a real
// RocksDB store and the real alert engine. The page ingester stands in for
// rule evaluation only: it normalises each event like IngestPipeline and
// gives it one match of a catch-all rule, so every evaluated event is
// counted on one alert; it also records every uuid it evaluated.
#include "server/source_manager.h"

#include <map>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "engine/normalize.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/time_util.h"
#include "gtest/gtest.h"
#include "proto/base/log.h"
#include "tests/fake_okta.h"
#include "tests/test_util.h"

namespace pantherd::server {
namespace {

using google::protobuf::util::TimeUtil;
using pantherd::testing::FakeOkta;
using pantherd::testing::OktaFailedLogin;
using pantherd::testing::OktaLogout;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kToken[] = "00abcTOKENsecret-xyz";

class SourceManagerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    FakeOkta::Options fake_options;
    fake_options.token = kToken;
    absl::StatusOr<std::unique_ptr<FakeOkta>> fake = FakeOkta::Start(fake_options);
    ASSERT_TRUE(fake.ok()) << fake.status();
    fake_ = std::move(*fake);
    options_.retry_initial = absl::Milliseconds(20);
    options_.retry_max = absl::Milliseconds(200);
    options_.error_retry = absl::Milliseconds(300);
    options_.http_timeout = absl::Seconds(2);
    options_.logger = &logger_;
    OpenStore();
  }
  void TearDown() override {
    manager_.reset();
  }

  // What the manager logged, as the log would show it.
  std::string LogText() const {
    std::string text;
    for (const base::CapturingLogger::Entry& e : logger_.entries()) {
      text += base::FormatLogLine("-", e.level, e.msg, e.fields) + "\n";
    }
    return text;
  }

  void OpenStore() {
    absl::StatusOr<std::unique_ptr<store::Store>> s = store::Store::Open(dir_.Sub("data"), {});
    ASSERT_TRUE(s.ok()) << s.status();
    store_ = std::move(*s);
    alerts_ = std::make_unique<engine::AlertEngine>(store_.get());
  }

  void StartManager() {
    manager_ = std::make_unique<SourceManager>(
        store_.get(), http_.get(),
        [this](const v1::IngestEventsRequest& request, const engine::ExtraWrites& extra) {
          return Ingest(request, extra);
        },
        options_);
    ASSERT_TRUE(manager_->Start().ok());
  }

  // Stops the manager and reopens the store: a restart.
  void Restart() {
    manager_.reset();
    alerts_.reset();
    ASSERT_TRUE(store_->Close().ok());
    store_.reset();
    OpenStore();
    StartManager();
  }

  absl::StatusOr<engine::IngestResult> Ingest(const v1::IngestEventsRequest& request,
                                              const engine::ExtraWrites& extra) {
    {
      absl::MutexLock lock(&mu_);
      if (fail_ingests_ > 0) {
        --fail_ingests_;
        return absl::UnavailableError("no worker could evaluate the batch");
      }
    }
    engine::NormalizeContext context;
    context.source_id = request.source_label();
    context.source_label = request.source_label();
    std::vector<engine::EventResult> events;
    for (const std::string& raw : request.events()) {
      absl::StatusOr<engine::NormalizedEvent> n =
          engine::NormalizeEvent(raw, request.log_type(), context);
      if (!n.ok()) continue;
      engine::EventResult e;
      e.event_id = n->event_id;
      e.log_type = n->log_type;
      e.event_time = n->event_time;
      e.event_json = n->json;
      engine::RuleMatch m;
      m.rule_id = "Test.Everything";
      m.dedup_string = "all";
      m.dedup_period_minutes = 24 * 60;
      e.matches.push_back(m);
      events.push_back(std::move(e));
    }
    absl::StatusOr<engine::BatchOutcome> outcome = alerts_->ApplyBatch(events, extra);
    if (!outcome.ok()) return outcome.status();
    absl::MutexLock lock(&mu_);
    for (size_t i = 0; i < events.size(); ++i) {
      if (outcome->events[i] == engine::EventStatus::kProcessed) ++evaluated_[events[i].event_id];
    }
    engine::IngestResult result;
    result.changes = outcome->changes;
    return result;
  }

  v1::AddSourceRequest OktaRequest(const std::string& label) {
    v1::AddSourceRequest req;
    req.set_label(label);
    req.mutable_okta()->set_domain("acme.okta.com");
    req.mutable_okta()->set_api_token(kToken);
    req.mutable_okta()->set_base_url(fake_->base_url());
    *req.mutable_okta()->mutable_poll_interval() = TimeUtil::SecondsToDuration(1);
    // The poller's tests count the fake's requests and faults; the connection
    // check has tests of its own.
    req.set_skip_connection_check(true);
    return req;
  }

  v1::Source Add(const v1::AddSourceRequest& req) {
    absl::StatusOr<v1::AddSourceResponse> s = manager_->Add(req);
    EXPECT_TRUE(s.ok()) << s.status();
    return s.ok() ? s->source() : v1::Source();
  }

  v1::Source Get(const std::string& label) {
    absl::StatusOr<std::vector<v1::Source>> list = manager_->List();
    EXPECT_TRUE(list.ok());
    for (const v1::Source& s : *list) {
      if (s.label() == label) return s;
    }
    return v1::Source();
  }

  // Waits (up to 20 s) until `done` holds for the source.
  bool WaitFor(const std::string& label, const std::function<bool(const v1::Source&)>& done) {
    const absl::Time deadline = absl::Now() + absl::Seconds(20);
    while (absl::Now() < deadline) {
      if (done(Get(label))) return true;
      absl::SleepFor(absl::Milliseconds(20));
    }
    return false;
  }

  // Every event the fake holds was evaluated exactly once.
  void ExpectEachEvaluatedOnce(int expected) {
    absl::MutexLock lock(&mu_);
    EXPECT_EQ(static_cast<int>(evaluated_.size()), expected);
    for (const auto& [uuid, times] : evaluated_) EXPECT_EQ(times, 1) << uuid;
  }

  void AddEvents(int from, int to) {
    for (int i = from; i < to; ++i) {
      fake_->AddEvent(OktaLogout(absl::StrCat("ev-", i), "alice",
                                 absl::Now() - absl::Minutes(5) + absl::Milliseconds(i)));
    }
  }

  pantherd::testing::TempDir dir_;
  std::unique_ptr<FakeOkta> fake_;
  std::unique_ptr<HttpClient> http_ = NewCurlHttpClient();
  SourceManagerOptions options_;
  base::CapturingLogger logger_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<engine::AlertEngine> alerts_;
  std::unique_ptr<SourceManager> manager_;
  absl::Mutex mu_;
  std::map<std::string, int> evaluated_ ABSL_GUARDED_BY(mu_);
  int fail_ingests_ ABSL_GUARDED_BY(mu_) = 0;
};

TEST_F(SourceManagerTest, AddValidatesEveryFieldAndNeverReturnsTheToken) {
  StartManager();
  auto code_of = [&](v1::AddSourceRequest req) { return manager_->Add(req).status(); };
  v1::AddSourceRequest r = OktaRequest("");
  EXPECT_THAT(code_of(r).message(), HasSubstr("label"));
  r = OktaRequest("bad label");
  EXPECT_THAT(code_of(r).message(), HasSubstr("label"));
  r = OktaRequest("prod");
  r.mutable_okta()->set_domain("https://acme.okta.com");
  EXPECT_THAT(code_of(r).message(), HasSubstr("okta.domain"));
  r = OktaRequest("prod");
  r.mutable_okta()->set_api_token("");
  EXPECT_THAT(code_of(r).message(), HasSubstr("okta.api_token"));
  r = OktaRequest("prod");
  r.mutable_okta()->set_api_token("abc\r\nX-Injected: 1");
  absl::Status s = code_of(r);
  EXPECT_THAT(s.message(), HasSubstr("okta.api_token"));
  EXPECT_THAT(s.message(), Not(HasSubstr("Injected")));
  r = OktaRequest("prod");
  r.mutable_okta()->set_base_url("http://acme.okta.com");
  EXPECT_THAT(code_of(r).message(), HasSubstr("okta.base_url"));
  // A token in the URL's user part is refused and never echoed.
  for (const char* url : {"https://admin:00SecretTok3n@acme.okta.com",
                          "http://00SecretTok3n@127.0.0.1:9", "ftp://u:00SecretTok3n@x/y"}) {
    r = OktaRequest("prod");
    r.mutable_okta()->set_base_url(url);
    s = code_of(r);
    EXPECT_THAT(s.message(), HasSubstr("okta.base_url")) << url;
    EXPECT_THAT(s.message(), HasSubstr("REDACTED@")) << url;
    EXPECT_THAT(s.message(), Not(HasSubstr("00SecretTok3n"))) << url;
  }
  r = OktaRequest("prod");
  *r.mutable_okta()->mutable_poll_interval() = TimeUtil::MillisecondsToDuration(500);
  EXPECT_THAT(code_of(r).message(), HasSubstr("okta.poll_interval"));
  r = OktaRequest("prod");
  *r.mutable_okta()->mutable_start_time() =
      TimeUtil::SecondsToTimestamp(absl::ToUnixSeconds(absl::Now() - absl::Hours(181 * 24)));
  EXPECT_THAT(code_of(r).message(), HasSubstr("okta.start_time"));
  r.clear_okta();
  EXPECT_THAT(code_of(r).message(), HasSubstr("config"));
  EXPECT_EQ(code_of(r).code(), absl::StatusCode::kInvalidArgument);

  v1::Source added = Add(OktaRequest("prod"));
  EXPECT_EQ(added.label(), "prod");
  EXPECT_EQ(added.kind(), "okta");
  EXPECT_EQ(added.domain(), "acme.okta.com");
  EXPECT_EQ(added.base_url(), fake_->base_url());
  EXPECT_EQ(added.state(), v1::SOURCE_STATE_ACTIVE);
  EXPECT_THAT(added.SerializeAsString(), Not(HasSubstr(kToken)));
  EXPECT_EQ(manager_->Add(OktaRequest("prod")).status().code(), absl::StatusCode::kAlreadyExists);
  ASSERT_TRUE(WaitFor("prod", [](const v1::Source& s) { return s.has_last_success_time(); }));
  absl::StatusOr<std::vector<v1::Source>> listed_all = manager_->List();
  ASSERT_TRUE(listed_all.ok());
  for (const v1::Source& listed : *listed_all) {
    EXPECT_THAT(listed.SerializeAsString(), Not(HasSubstr(kToken)));
  }
  // The token was sent, as Okta wants it.
  ASSERT_FALSE(fake_->requests().empty());
  EXPECT_EQ(fake_->requests()[0].authorization, absl::StrCat("SSWS ", kToken));
  EXPECT_THAT(LogText(), HasSubstr("source added"));
  EXPECT_THAT(LogText(), Not(HasSubstr(kToken)));
}

TEST_F(SourceManagerTest, FollowsNextLinksAcrossPagesEmptyPagesLateEventsAndRestarts) {
  options_.page_limit = 10;
  StartManager();
  AddEvents(0, 25);
  v1::Source source = Add(OktaRequest("prod"));
  ASSERT_TRUE(WaitFor("prod", [](const v1::Source& s) { return s.events_ingested() == 25; }))
      << Get("prod").DebugString();
  // Caught up: empty polling pages keep following next.
  const size_t before = fake_->requests().size();
  ASSERT_TRUE(
      WaitFor("prod", [&](const v1::Source&) { return fake_->requests().size() >= before + 2; }));
  std::vector<FakeOkta::Request> requests = fake_->requests();
  EXPECT_THAT(requests[0].target, HasSubstr("since="));
  EXPECT_THAT(requests[0].target, HasSubstr("sortOrder=ASCENDING"));
  EXPECT_THAT(requests[0].target, HasSubstr("limit=10"));
  for (size_t i = 1; i < requests.size(); ++i) {
    EXPECT_THAT(requests[i].target, Not(HasSubstr("since="))) << i;
    EXPECT_THAT(requests[i].target, HasSubstr("after=")) << i;
  }
  v1::Source caught_up = Get("prod");
  EXPECT_TRUE(caught_up.has_lag());
  EXPECT_LT(TimeUtil::DurationToSeconds(caught_up.lag()), 60);

  // An event that reaches Okta's log late, published long before the others.
  fake_->AddEvent(
      OktaFailedLogin("late-1", "admin", "203.0.113.9", absl::Now() - absl::Minutes(50)));
  ASSERT_TRUE(WaitFor("prod", [](const v1::Source& s) { return s.events_ingested() == 26; }));

  // A restart resumes from the stored next link, not from the start time.
  const size_t before_restart = fake_->requests().size();
  Restart();
  AddEvents(100, 103);
  ASSERT_TRUE(WaitFor("prod", [](const v1::Source& s) { return s.events_ingested() == 29; }))
      << Get("prod").DebugString();
  requests = fake_->requests();
  ASSERT_GT(requests.size(), before_restart);
  EXPECT_THAT(requests[before_restart].target, HasSubstr("after="));
  EXPECT_EQ(Get("prod").id(), source.id());
  EXPECT_EQ(Get("prod").events_duplicate(), 0);
  ExpectEachEvaluatedOnce(29);
}

// Links in one comma-joined header, and empty pages without a next link (the
// poller then asks the same URL again): still every event once.
TEST_F(SourceManagerTest, JoinedLinksAndEmptyPagesWithoutNextLink) {
  FakeOkta::Options odd;
  odd.token = kToken;
  odd.join_links = true;
  odd.no_next_on_empty = true;
  odd.page_cap = 3;
  absl::StatusOr<std::unique_ptr<FakeOkta>> fake = FakeOkta::Start(odd);
  ASSERT_TRUE(fake.ok()) << fake.status();
  fake_ = std::move(*fake);
  StartManager();
  AddEvents(0, 7);
  Add(OktaRequest("prod"));
  ASSERT_TRUE(WaitFor("prod", [](const v1::Source& s) { return s.events_ingested() == 7; }))
      << Get("prod").DebugString();
  // At least one empty page (a 200 answer without events) after the seventh.
  const size_t seen = fake_->requests().size();
  ASSERT_TRUE(pantherd::testing::WaitUntil(
      [&] {
        const std::vector<FakeOkta::Request> requests = fake_->requests();
        for (size_t i = seen; i < requests.size(); ++i) {
          if (requests[i].status == 200 && requests[i].events == 0) return true;
        }
        return false;
      },
      absl::Seconds(20), "an empty page"));
  AddEvents(7, 9);
  ASSERT_TRUE(WaitFor("prod", [](const v1::Source& s) { return s.events_ingested() == 9; }))
      << Get("prod").DebugString();
  EXPECT_EQ(Get("prod").events_duplicate(), 0);
  ExpectEachEvaluatedOnce(9);
}

TEST_F(SourceManagerTest, TransientFaultsAreRetriedAndNothingIsLostOrRepeated) {
  options_.page_limit = 5;
  options_.http_timeout = absl::Milliseconds(400);
  StartManager();
  AddEvents(0, 12);
  fake_->Inject({{FakeOkta::Fault::kServerError},
                 {FakeOkta::Fault::kCutOff},
                 {FakeOkta::Fault::kMalformed},
                 {FakeOkta::Fault::kSlow, absl::Seconds(1)},
                 {FakeOkta::Fault::kServerError}});
  {
    absl::MutexLock lock(&mu_);
    fail_ingests_ = 2;  // Then the store refuses two pages.
  }
  Add(OktaRequest("prod"));
  ASSERT_TRUE(WaitFor("prod", [](const v1::Source& s) { return s.events_ingested() == 12; }))
      << Get("prod").DebugString();
  // A storm of 429s mid-way: each waits until the reset + 1 s.
  AddEvents(12, 20);
  fake_->Inject({{FakeOkta::Fault::kTooManyRequests, {}, absl::Seconds(1)},
                 {FakeOkta::Fault::kTooManyRequests, {}, absl::Seconds(1)}});
  ASSERT_TRUE(WaitFor("prod", [](const v1::Source& s) { return s.events_ingested() == 20; }))
      << Get("prod").DebugString();
  std::vector<FakeOkta::Request> requests = fake_->requests();
  for (size_t i = 0; i + 1 < requests.size(); ++i) {
    if (requests[i].status == 429) {
      EXPECT_GE(requests[i + 1].time - requests[i].time, absl::Milliseconds(900)) << i;
    }
  }
  v1::Source s = Get("prod");
  EXPECT_EQ(s.state(), v1::SOURCE_STATE_ACTIVE);
  EXPECT_EQ(s.last_error(), "");
  EXPECT_EQ(s.events_duplicate(), 0);
  // Every fault above is one failed poll: five injected faults, two refused
  // pages, two 429s. Each request is a poll (the poller keeps polling).
  EXPECT_EQ(s.poll_failures(), 9);
  EXPECT_GE(s.polls(), s.poll_failures() + 4);  // at least 4 pages of 5 stored
  EXPECT_LE(s.polls(), static_cast<int64_t>(fake_->requests().size()));
  ExpectEachEvaluatedOnce(20);
  EXPECT_THAT(LogText(), HasSubstr("E0000009"));
  EXPECT_THAT(LogText(), HasSubstr("malformed page"));
  EXPECT_THAT(LogText(), Not(HasSubstr(kToken)));
}

TEST_F(SourceManagerTest, RateLimitHeadersSlowThePollerDownBeforeA429) {
  options_.page_limit = 2;
  StartManager();
  fake_->SetRateLimit(5, absl::Seconds(2));
  AddEvents(0, 16);
  Add(OktaRequest("prod"));
  ASSERT_TRUE(WaitFor("prod", [](const v1::Source& s) { return s.events_ingested() == 16; }))
      << Get("prod").DebugString();
  for (const FakeOkta::Request& r : fake_->requests()) EXPECT_NE(r.status, 429) << r.target;
  ExpectEachEvaluatedOnce(16);
}

TEST_F(SourceManagerTest, BadTokenIsAnErrorUntilANewTokenArrives) {
  StartManager();
  AddEvents(0, 3);
  v1::AddSourceRequest req = OktaRequest("prod");
  req.mutable_okta()->set_api_token("expired-token");
  Add(req);
  ASSERT_TRUE(
      WaitFor("prod", [](const v1::Source& s) { return s.state() == v1::SOURCE_STATE_ERROR; }));
  v1::Source s = Get("prod");
  EXPECT_EQ(s.last_error(), "HTTP 401 E0000011: Invalid token provided");
  EXPECT_EQ(s.events_ingested(), 0);
  // Slow pace: a few retries, not a storm. This checks what does not happen
  // (more requests) within a time, so it has to let the time pass.
  absl::SleepFor(absl::Milliseconds(700));
  EXPECT_LE(fake_->requests().size(), 5u);

  absl::StatusOr<v1::Source> fixed = manager_->SetPaused("prod", false, kToken);
  ASSERT_TRUE(fixed.ok()) << fixed.status();
  ASSERT_TRUE(WaitFor("prod", [](const v1::Source& s) { return s.events_ingested() == 3; }));
  s = Get("prod");
  EXPECT_EQ(s.state(), v1::SOURCE_STATE_ACTIVE);
  EXPECT_EQ(s.last_error(), "");
  EXPECT_THAT(LogText(), HasSubstr("E0000011"));
  EXPECT_THAT(LogText(), Not(HasSubstr(kToken)));
  EXPECT_THAT(LogText(), Not(HasSubstr("expired-token")));

  // A 403 (the token lost its admin role) is an error too.
  fake_->Inject({{FakeOkta::Fault::kForbidden}});
  ASSERT_TRUE(
      WaitFor("prod", [](const v1::Source& s) { return s.state() == v1::SOURCE_STATE_ERROR; }));
  EXPECT_THAT(Get("prod").last_error(), HasSubstr("E0000006"));
  ASSERT_TRUE(
      WaitFor("prod", [](const v1::Source& s) { return s.state() == v1::SOURCE_STATE_ACTIVE; }));
}

// Add checks the connection first (one authenticated request) and stores
// nothing when it fails; Test repeats the check on a stored source.
TEST_F(SourceManagerTest, AddChecksTheConnectionAndTestRepeatsTheCheck) {
  StartManager();
  auto checked = [&](const std::string& label) {
    v1::AddSourceRequest req = OktaRequest(label);
    req.set_skip_connection_check(false);
    return req;
  };
  auto listed = [&]() {
    absl::StatusOr<std::vector<v1::Source>> list = manager_->List();
    EXPECT_TRUE(list.ok());
    return list.ok() ? list->size() : 0u;
  };

  v1::AddSourceRequest wrong = checked("prod");
  wrong.mutable_okta()->set_api_token("expired-token");
  absl::StatusOr<v1::AddSourceResponse> refused = manager_->Add(wrong);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(refused.status().message(), HasSubstr("token rejected by " + fake_->base_url()));
  EXPECT_THAT(refused.status().message(), HasSubstr("E0000011"));
  EXPECT_THAT(refused.status().message(), HasSubstr("nothing was stored"));
  EXPECT_THAT(refused.status().message(), Not(HasSubstr("expired-token")));
  EXPECT_EQ(listed(), 0u);
  // The fake records a request once it has answered it: wait a moment.
  for (int i = 0; i < 200 && fake_->requests().empty(); ++i) absl::SleepFor(absl::Milliseconds(10));
  ASSERT_EQ(fake_->requests().size(), 1u);
  EXPECT_THAT(fake_->requests()[0].target, HasSubstr("limit=1"));

  v1::AddSourceRequest unreachable = checked("prod");
  unreachable.mutable_okta()->set_base_url("http://127.0.0.1:1");
  refused = manager_->Add(unreachable);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(refused.status().message(), HasSubstr("http://127.0.0.1:1 is unreachable"));
  EXPECT_EQ(listed(), 0u);

  fake_->Inject({{FakeOkta::Fault::kForbidden}});
  refused = manager_->Add(checked("prod"));
  EXPECT_THAT(refused.status().message(), HasSubstr("may not read the System Log"));
  EXPECT_EQ(listed(), 0u);

  // A bare subdomain is taken as <name>.okta.com, and said so.
  v1::AddSourceRequest bare = checked("prod");
  bare.mutable_okta()->set_domain("acme");
  absl::StatusOr<v1::AddSourceResponse> added = manager_->Add(bare);
  ASSERT_TRUE(added.ok()) << added.status();
  EXPECT_THAT(added->assumptions(), ::testing::ElementsAre("assumed acme.okta.com for \"acme\""));
  EXPECT_EQ(added->source().domain(), "acme.okta.com");
  EXPECT_TRUE(added->check().ok());
  EXPECT_EQ(added->check().cause(), "ok");
  EXPECT_EQ(added->check().http_status(), 200);
  EXPECT_EQ(listed(), 1u);

  absl::StatusOr<v1::TestSourceResponse> tested = manager_->Test("prod");
  ASSERT_TRUE(tested.ok()) << tested.status();
  EXPECT_TRUE(tested->check().ok());
  EXPECT_EQ(tested->source().label(), "prod");
  fake_->SetToken("rotated-token");
  tested = manager_->Test(added->source().id());
  ASSERT_TRUE(tested.ok()) << tested.status();
  EXPECT_FALSE(tested->check().ok());
  EXPECT_EQ(tested->check().cause(), "token_rejected");
  EXPECT_EQ(tested->check().http_status(), 401);
  EXPECT_THAT(tested->SerializeAsString(), Not(HasSubstr(kToken)));
  EXPECT_EQ(manager_->Test("nope").status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(LogText(), Not(HasSubstr(kToken)));
}

TEST_F(SourceManagerTest, PauseResumeAndRemove) {
  StartManager();
  AddEvents(0, 2);
  v1::Source source = Add(OktaRequest("prod"));
  ASSERT_TRUE(WaitFor("prod", [](const v1::Source& s) { return s.events_ingested() == 2; }));
  absl::StatusOr<v1::Source> paused = manager_->SetPaused(source.id(), true, "");
  ASSERT_TRUE(paused.ok());
  EXPECT_EQ(paused->state(), v1::SOURCE_STATE_PAUSED);
  // Let a request in flight finish: the poller counts a poll once it has the
  // answer, the fake records a request once it has answered.
  ASSERT_TRUE(pantherd::testing::WaitUntil(
      [&] { return Get("prod").polls() == static_cast<int64_t>(fake_->requests().size()); },
      absl::Seconds(10), "no request in flight"));
  const size_t requests = fake_->requests().size();
  AddEvents(2, 4);
  // Absence: no request while paused, over more than the 1 s poll interval.
  absl::SleepFor(absl::Milliseconds(1500));
  EXPECT_EQ(fake_->requests().size(), requests);
  EXPECT_EQ(Get("prod").events_ingested(), 2);
  // Paused survives a restart.
  Restart();
  EXPECT_EQ(Get("prod").state(), v1::SOURCE_STATE_PAUSED);
  ASSERT_TRUE(manager_->SetPaused("prod", false, "").ok());
  ASSERT_TRUE(WaitFor("prod", [](const v1::Source& s) { return s.events_ingested() == 4; }));

  EXPECT_EQ(manager_->Remove("nope").code(), absl::StatusCode::kNotFound);
  ASSERT_TRUE(manager_->Remove("prod").ok());
  EXPECT_TRUE(manager_->List()->empty());
  EXPECT_EQ(*store_->Count(store::Family::kSources, ""), 0);
  const size_t after_remove = fake_->requests().size();
  // Absence: no request after the removal, over more than the poll interval.
  absl::SleepFor(absl::Milliseconds(1200));
  EXPECT_EQ(fake_->requests().size(), after_remove);
  // The label is free again; the new source starts from its start time and
  // events already processed are skipped as duplicates.
  Add(OktaRequest("prod"));
  ASSERT_TRUE(WaitFor("prod", [](const v1::Source& s) { return s.events_duplicate() == 4; }));
  EXPECT_EQ(Get("prod").events_ingested(), 0);
  ExpectEachEvaluatedOnce(4);
}

TEST_F(SourceManagerTest, ShutdownCancelsASlowRequest) {
  options_.http_timeout = absl::Seconds(30);
  StartManager();
  fake_->Inject({{FakeOkta::Fault::kSlow, absl::Seconds(20)}});
  Add(OktaRequest("prod"));
  ASSERT_TRUE(pantherd::testing::WaitUntil([&] { return fake_->faults_pending() == 0; },
                                           absl::Seconds(10), "the first request to be in flight"));
  const absl::Time start = absl::Now();
  manager_->Shutdown();
  EXPECT_LT(absl::Now() - start, absl::Seconds(10));
  EXPECT_EQ(manager_->Add(OktaRequest("other")).status().code(), absl::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace pantherd::server
