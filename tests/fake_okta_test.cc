// The fake Okta org behaves like the System Log API, checked with pantherd's
// own HTTP client and Okta helpers (server/http_client.h, server/okta_api.h).
#include "tests/fake_okta.h"

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/http_client.h"
#include "server/okta_api.h"

namespace pantherd::testing {
namespace {

using server::HttpRequest;
using server::HttpResponse;
using ::testing::HasSubstr;
using ::testing::SizeIs;

class FakeOktaTest : public ::testing::Test {
 protected:
  void StartFake(FakeOkta::Options options = {}) {
    absl::StatusOr<std::unique_ptr<FakeOkta>> fake = FakeOkta::Start(options);
    ASSERT_TRUE(fake.ok()) << fake.status();
    fake_ = std::move(*fake);
  }
  absl::StatusOr<HttpResponse> Get(const std::string& url, const std::string& token,
                                   absl::Duration timeout = absl::Seconds(10)) {
    HttpRequest req;
    req.url = url;
    req.timeout = timeout;
    req.headers = {{"Accept", "application/json"}, {"Authorization", "SSWS " + token}};
    return http_->Get(req, nullptr);
  }
  std::string First(absl::Time since, int limit) {
    return absl::StrCat(fake_->base_url(), "/api/v1/logs?since=",
                        absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", since, absl::UTCTimeZone()),
                        "&sortOrder=ASCENDING&limit=", limit);
  }

  std::unique_ptr<server::HttpClient> http_ = server::NewCurlHttpClient();
  std::unique_ptr<FakeOkta> fake_;
  const std::string token_ = "fake-okta-token";
  const absl::Time now_ = absl::Now();
};

TEST_F(FakeOktaTest, PollingFollowsOpaqueNextLinksForeverAndFindsLateEvents) {
  StartFake();
  fake_->AddEvent(OktaLogout("u1", "alice", now_ - absl::Minutes(3)));
  fake_->AddEvent(OktaLogout("u2", "alice", now_ - absl::Minutes(2)));
  fake_->AddEvent(OktaLogout("u3", "alice", now_ - absl::Minutes(1)));

  absl::StatusOr<HttpResponse> r = Get(First(now_ - absl::Hours(1), 2), token_);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->status, 200) << r->body;
  // self and next come as two separate header lines.
  EXPECT_THAT(r->HeaderValues("link"), SizeIs(2));
  EXPECT_FALSE(r->Header("X-Rate-Limit-Limit").empty());
  EXPECT_FALSE(r->Header("X-Okta-Request-Id").empty());
  absl::StatusOr<std::vector<server::okta::LogEvent>> page = server::okta::ParseLogPage(r->body);
  ASSERT_TRUE(page.ok()) << page.status();
  ASSERT_THAT(*page, SizeIs(2));
  EXPECT_EQ((*page)[0].uuid, "u1");
  EXPECT_EQ((*page)[1].uuid, "u2");
  std::optional<std::string> next = server::okta::FindLink(r->HeaderValues("link"), "next");
  ASSERT_TRUE(next.has_value());
  EXPECT_THAT(*next, HasSubstr("after="));
  EXPECT_TRUE(server::okta::SameOrigin(*next, fake_->base_url()));

  r = Get(*next, token_);
  ASSERT_TRUE(r.ok() && r->status == 200);
  page = server::okta::ParseLogPage(r->body);
  ASSERT_THAT(*page, SizeIs(1));
  EXPECT_EQ((*page)[0].uuid, "u3");
  next = server::okta::FindLink(r->HeaderValues("link"), "next");
  ASSERT_TRUE(next.has_value());

  // Caught up: an empty page that still links to the next one.
  r = Get(*next, token_);
  ASSERT_TRUE(r.ok() && r->status == 200);
  EXPECT_EQ(r->body, "[]");
  std::optional<std::string> after_empty = server::okta::FindLink(r->HeaderValues("link"), "next");
  ASSERT_TRUE(after_empty.has_value());

  // An event that reaches the log late (published before the others) is on
  // the next page of the stored link.
  fake_->AddEvent(OktaLogout("late", "alice", now_ - absl::Minutes(30)));
  r = Get(*after_empty, token_);
  ASSERT_TRUE(r.ok() && r->status == 200);
  page = server::okta::ParseLogPage(r->body);
  ASSERT_THAT(*page, SizeIs(1));
  EXPECT_EQ((*page)[0].uuid, "late");
  EXPECT_EQ((*page)[0].published,
            absl::FromUnixMillis(absl::ToUnixMillis(now_ - absl::Minutes(30))));

  EXPECT_EQ(fake_->events_served(), 4);
  std::vector<FakeOkta::Request> requests = fake_->requests();
  ASSERT_THAT(requests, SizeIs(4));
  EXPECT_EQ(requests[0].authorization, "SSWS " + token_);
  EXPECT_EQ(requests[1].events, 1);
}

TEST_F(FakeOktaTest, BoundedQueriesEndAndJoinedLinksParse) {
  FakeOkta::Options options;
  options.join_links = true;
  StartFake(options);
  fake_->AddEvent(OktaLogout("b1", "bob", now_ - absl::Minutes(10)));
  const std::string url = absl::StrCat(
      fake_->base_url(), "/api/v1/logs?since=",
      absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", now_ - absl::Hours(1), absl::UTCTimeZone()),
      "&until=", absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", now_, absl::UTCTimeZone()));
  absl::StatusOr<HttpResponse> r = Get(url, token_);
  ASSERT_TRUE(r.ok() && r->status == 200);
  EXPECT_THAT(*server::okta::ParseLogPage(r->body), SizeIs(1));
  EXPECT_FALSE(server::okta::FindLink(r->HeaderValues("link"), "next").has_value());
  EXPECT_TRUE(server::okta::FindLink(r->HeaderValues("link"), "self").has_value());

  r = Get(First(now_ - absl::Hours(1), 1000), token_);
  ASSERT_TRUE(r.ok() && r->status == 200);
  ASSERT_THAT(r->HeaderValues("link"), SizeIs(1));  // One comma-joined header.
  EXPECT_TRUE(server::okta::FindLink(r->HeaderValues("link"), "next").has_value());
}

TEST_F(FakeOktaTest, BadTokenGetsOktasExactErrorBody) {
  StartFake();
  absl::StatusOr<HttpResponse> r = Get(First(now_ - absl::Hours(1), 10), "wrong");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 401);
  EXPECT_THAT(r->body,
              HasSubstr(R"("errorCode":"E0000011","errorSummary":"Invalid token provided")"));
  EXPECT_EQ(r->Header("Content-Type"), "application/json");
  EXPECT_EQ(server::okta::DescribeError(*r), "HTTP 401 E0000011: Invalid token provided");

  fake_->SetToken("rotated");
  r = Get(First(now_ - absl::Hours(1), 10), token_);
  EXPECT_EQ(r->status, 401);
  r = Get(First(now_ - absl::Hours(1), 10), "rotated");
  EXPECT_EQ(r->status, 200);
}

TEST_F(FakeOktaTest, ParameterErrorsAreOkta400s) {
  StartFake();
  absl::StatusOr<HttpResponse> r = Get(First(now_ - absl::Hours(200 * 24), 10), token_);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 400);
  EXPECT_THAT(server::okta::DescribeError(*r), HasSubstr("E0000053"));
  r = Get(absl::StrCat(fake_->base_url(), "/api/v1/logs?since=yesterday"), token_);
  EXPECT_EQ(r->status, 400);
  EXPECT_THAT(r->body, HasSubstr("E0000001"));
  r = Get(absl::StrCat(First(now_ - absl::Hours(1), 10), "&after=1_0"), token_);
  EXPECT_EQ(r->status, 400);
}

TEST_F(FakeOktaTest, RateLimitHeadersCountDownTo429) {
  StartFake();
  fake_->SetRateLimit(2, absl::Seconds(30));
  absl::StatusOr<HttpResponse> r = Get(First(now_ - absl::Hours(1), 10), token_);
  EXPECT_EQ(r->Header("X-Rate-Limit-Limit"), "2");
  EXPECT_EQ(r->Header("X-Rate-Limit-Remaining"), "1");
  server::okta::RateLimit limit = server::okta::ParseRateLimit(*r);
  ASSERT_TRUE(limit.reset.has_value());
  EXPECT_GT(*limit.reset, now_);
  EXPECT_LE(*limit.reset, now_ + absl::Seconds(32));
  r = Get(First(now_ - absl::Hours(1), 10), token_);
  EXPECT_EQ(r->Header("X-Rate-Limit-Remaining"), "0");
  EXPECT_EQ(r->status, 200);
  r = Get(First(now_ - absl::Hours(1), 10), token_);
  EXPECT_EQ(r->status, 429);
  EXPECT_THAT(server::okta::DescribeError(*r), HasSubstr("E0000047"));
}

TEST_F(FakeOktaTest, InjectedFaultsLookLikeTheRealThing) {
  StartFake();
  fake_->AddEvent(OktaFailedLogin("f1", "admin", "203.0.113.9", now_));
  fake_->Inject({{FakeOkta::Fault::kTooManyRequests},
                 {FakeOkta::Fault::kServerError},
                 {FakeOkta::Fault::kForbidden},
                 {FakeOkta::Fault::kCutOff},
                 {FakeOkta::Fault::kMalformed},
                 {FakeOkta::Fault::kSlow, absl::Seconds(3)}});
  const std::string url = First(now_ - absl::Hours(1), 10);
  absl::StatusOr<HttpResponse> r = Get(url, token_);
  EXPECT_EQ(r->status, 429);
  EXPECT_EQ(r->Header("X-Rate-Limit-Remaining"), "0");
  r = Get(url, token_);
  EXPECT_EQ(r->status, 500);
  EXPECT_THAT(server::okta::DescribeError(*r), HasSubstr("E0000009"));
  r = Get(url, token_);
  EXPECT_EQ(r->status, 403);
  EXPECT_THAT(server::okta::DescribeError(*r), HasSubstr("E0000006"));
  r = Get(url, token_);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable) << r.status();
  r = Get(url, token_);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(server::okta::ParseLogPage(r->body).status().code(),
            absl::StatusCode::kInvalidArgument);
  r = Get(url, token_, absl::Milliseconds(500));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDeadlineExceeded) << r.status();
  r = Get(url, token_);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 200);
  EXPECT_THAT(*server::okta::ParseLogPage(r->body), SizeIs(1));
}

}  // namespace
}  // namespace pantherd::testing
