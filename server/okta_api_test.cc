#include "server/okta_api.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace pantherd::server::okta {
namespace {

using ::testing::HasSubstr;
using ::testing::SizeIs;

TEST(FindLinkTest, SeparateLinesJoinedLinesAndMixedCase) {
  // Two header lines, as Okta sends them.
  std::vector<std::string> lines = {
      R"(<https://acme.okta.com/api/v1/logs?since=2026-01-01T00:00:00Z&limit=1000>; rel="self")",
      R"(<https://acme.okta.com/api/v1/logs?limit=1000&after=1627500044869_1>; rel="next")"};
  EXPECT_EQ(FindLink(lines, "next"),
            "https://acme.okta.com/api/v1/logs?limit=1000&after=1627500044869_1");
  EXPECT_EQ(FindLink(lines, "self"),
            "https://acme.okta.com/api/v1/logs?since=2026-01-01T00:00:00Z&limit=1000");
  // One comma-joined header; a comma inside a URL does not split it.
  std::vector<std::string> joined = {
      R"(<https://a.okta.com/x?q=a,b>; rel="self", <https://a.okta.com/x?after=9_9>; REL=next)"};
  EXPECT_EQ(FindLink(joined, "next"), "https://a.okta.com/x?after=9_9");
  EXPECT_EQ(FindLink(joined, "self"), "https://a.okta.com/x?q=a,b");
  // A rel listing several relations.
  EXPECT_EQ(FindLink({R"(<https://a/x>; type="json"; rel="prev next")"}, "next"), "https://a/x");
  EXPECT_FALSE(FindLink({R"(<https://a/x>; rel="self")"}, "next").has_value());
  EXPECT_FALSE(FindLink({}, "next").has_value());
  EXPECT_FALSE(FindLink({"garbage; rel=next"}, "next").has_value());
}

TEST(RateLimitTest, ParsesEachHeaderAndRefusesDuplicates) {
  HttpResponse r;
  r.headers = {{"x-rate-limit-limit", "50"},
               {"X-Rate-Limit-Remaining", "49"},
               {"X-Rate-Limit-Reset", "1609459200"}};
  RateLimit limit = ParseRateLimit(r);
  EXPECT_EQ(limit.limit, 50);
  EXPECT_EQ(limit.remaining, 49);
  EXPECT_EQ(limit.reset, absl::FromUnixSeconds(1609459200));
  r.headers = {{"X-Rate-Limit-Reset", "1609459200, 1609459260"}, {"X-Rate-Limit-Remaining", "x"}};
  limit = ParseRateLimit(r);
  EXPECT_FALSE(limit.reset.has_value());
  EXPECT_FALSE(limit.remaining.has_value());
  EXPECT_FALSE(limit.limit.has_value());
}

TEST(DescribeErrorTest, OktaBodiesAndOthers) {
  HttpResponse r;
  r.status = 401;
  r.body =
      R"({"errorCode":"E0000011","errorSummary":"Invalid token provided","errorLink":"E0000011","errorId":"oaeHfmOAx1iRLa0H10DeMz5fQ","errorCauses":[]})";
  EXPECT_EQ(DescribeError(r), "HTTP 401 E0000011: Invalid token provided");
  r.status = 502;
  r.body = "<html>\nBad gateway</html>";
  EXPECT_EQ(DescribeError(r), "HTTP 502: <html> Bad gateway</html>");
  r.body.clear();
  EXPECT_EQ(DescribeError(r), "HTTP 502");
}

TEST(ParseLogPageTest, KeepsEachEventsTextAndReadsUuidAndPublished) {
  absl::StatusOr<std::vector<LogEvent>> page =
      ParseLogPage(R"( [ {"uuid":"a","published":"2020-02-14T20:18:57.718Z","x":{"s":"]},\"{"}} ,)"
                   R"({"uuid":"b","big":123456789012345678901234567890} ] )");
  ASSERT_TRUE(page.ok()) << page.status();
  ASSERT_THAT(*page, SizeIs(2));
  EXPECT_EQ((*page)[0].json,
            R"({"uuid":"a","published":"2020-02-14T20:18:57.718Z","x":{"s":"]},\"{"}})");
  EXPECT_EQ((*page)[0].uuid, "a");
  EXPECT_EQ((*page)[0].published, absl::FromUnixMillis(1581711537718));
  // A number simdjson cannot hold keeps its text (normalisation handles it).
  EXPECT_EQ((*page)[1].json, R"({"uuid":"b","big":123456789012345678901234567890})");
  EXPECT_EQ((*page)[1].published, absl::InfinitePast());
  EXPECT_THAT(*ParseLogPage("[]"), SizeIs(0));
  EXPECT_THAT(*ParseLogPage(" [ ]\n"), SizeIs(0));
}

TEST(ParseLogPageTest, MalformedBodiesAreErrors) {
  for (const char* body : {"", "{}", "[", "[{\"uuid\":\"a\"}", "[{\"uuid\":\"a\"", "[1,2]",
                           "[{\"a\":1} {\"b\":2}]", "[{}] trailing", "[{\"s\":\"unterminated}]"}) {
    absl::StatusOr<std::vector<LogEvent>> page = ParseLogPage(body);
    EXPECT_EQ(page.status().code(), absl::StatusCode::kInvalidArgument) << body;
    if (!page.ok()) {
      EXPECT_THAT(page.status().message(), HasSubstr("malformed page")) << body;
    }
  }
}

TEST(UrlTest, BaseUrlsOriginsAndTheFirstPoll) {
  EXPECT_EQ(*NormalizeBaseUrl("https://acme.okta.com/"), "https://acme.okta.com");
  EXPECT_EQ(*NormalizeBaseUrl("http://127.0.0.1:8080"), "http://127.0.0.1:8080");
  EXPECT_EQ(*NormalizeBaseUrl("http://localhost:1"), "http://localhost:1");
  EXPECT_EQ(*NormalizeBaseUrl("http://[::1]:1"), "http://[::1]:1");
  for (const char* bad :
       {"http://acme.okta.com", "ftp://x", "acme.okta.com", "https://", "https://a.okta.com/api",
        "https://u@a.okta.com", "https://a b", "http://127.0.0.1.evil.com"}) {
    EXPECT_EQ(NormalizeBaseUrl(bad).status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
  EXPECT_TRUE(ValidateDomain("acme.okta.com").ok());
  EXPECT_FALSE(ValidateDomain("https://acme.okta.com").ok());
  EXPECT_FALSE(ValidateDomain("").ok());

  EXPECT_TRUE(SameOrigin("https://acme.okta.com/api/v1/logs?after=1", "https://acme.okta.com"));
  EXPECT_TRUE(SameOrigin("https://ACME.okta.com/api", "https://acme.okta.com"));
  EXPECT_FALSE(SameOrigin("https://acme.okta.com.evil.com/api", "https://acme.okta.com"));
  EXPECT_FALSE(SameOrigin("http://acme.okta.com/api", "https://acme.okta.com"));
  EXPECT_FALSE(SameOrigin("https://acme.okta.com:444/api", "https://acme.okta.com"));

  EXPECT_EQ(FirstPollUrl("https://acme.okta.com", absl::FromUnixMillis(1581711537718)),
            "https://acme.okta.com/api/v1/logs?since=2020-02-14T20:18:57.718Z"
            "&sortOrder=ASCENDING&limit=1000");
}

TEST(RedactUrlCredentialsTest, HidesTheUserPartOnly) {
  EXPECT_EQ(RedactUrlCredentials("https://acme.okta.com/x"), "https://acme.okta.com/x");
  EXPECT_EQ(RedactUrlCredentials("https://u:tok@acme.okta.com/x?a=b@c"),
            "https://REDACTED@acme.okta.com/x?a=b@c");
  EXPECT_EQ(RedactUrlCredentials("https://a@b@host:8443"), "https://REDACTED@host:8443");
  EXPECT_EQ(RedactUrlCredentials("tok@host"), "REDACTED@host");
  EXPECT_EQ(RedactUrlCredentials("https://host/path@x"), "https://host/path@x");
  absl::Status refused = NormalizeBaseUrl("https://user:s3cr3t@acme.okta.com").status();
  EXPECT_EQ(refused.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(std::string(refused.message()).find("s3cr3t"), std::string::npos) << refused;
}

TEST(ConnectionCheckTest, BareNamesAreAssumedToBeOktaDomains) {
  std::string assumption;
  EXPECT_EQ(ExpandDomain("acme", &assumption), "acme.okta.com");
  EXPECT_EQ(assumption, "assumed acme.okta.com for \"acme\"");
  EXPECT_EQ(ExpandDomain("acme.oktapreview.com", &assumption), "acme.oktapreview.com");
  EXPECT_EQ(assumption, "");
  EXPECT_EQ(ExpandDomain("", &assumption), "");
  EXPECT_EQ(CheckUrl("https://acme.okta.com", absl::FromUnixSeconds(1700000060)),
            "https://acme.okta.com/api/v1/logs?since=2023-11-14T22:13:20.000Z"
            "&sortOrder=ASCENDING&limit=1");
}

TEST(ConnectionCheckTest, EachAnswerNamesItsCause) {
  const std::string base = "https://acme.okta.com";
  auto answer = [](int status, std::string body) {
    HttpResponse r;
    r.status = status;
    r.body = std::move(body);
    return absl::StatusOr<HttpResponse>(std::move(r));
  };
  v1::SourceCheck c = ClassifyCheck(answer(200, "[]"), base);
  EXPECT_TRUE(c.ok());
  EXPECT_EQ(c.cause(), "ok");
  EXPECT_EQ(c.http_status(), 200);
  c = ClassifyCheck(answer(200, "<html>welcome</html>"), base);
  EXPECT_FALSE(c.ok());
  EXPECT_EQ(c.cause(), "bad_response");
  c = ClassifyCheck(
      answer(401, R"({"errorCode":"E0000011","errorSummary":"Invalid token provided"})"), base);
  EXPECT_FALSE(c.ok());
  EXPECT_EQ(c.cause(), "token_rejected");
  EXPECT_EQ(c.message(),
            "token rejected by https://acme.okta.com (HTTP 401 E0000011: Invalid token "
            "provided): check the token and that it belongs to this org");
  EXPECT_EQ(ClassifyCheck(answer(403, "{}"), base).cause(), "forbidden");
  EXPECT_EQ(ClassifyCheck(answer(404, "not here"), base).cause(), "not_found");
  EXPECT_EQ(ClassifyCheck(answer(301, ""), base).cause(), "bad_response");
  EXPECT_EQ(ClassifyCheck(answer(503, ""), base).cause(), "server_error");
  c = ClassifyCheck(answer(429, ""), base);
  EXPECT_TRUE(c.ok());
  EXPECT_EQ(c.cause(), "rate_limited");
  c = ClassifyCheck(absl::UnavailableError("Could not resolve host: acme.okta.com"), base);
  EXPECT_FALSE(c.ok());
  EXPECT_EQ(c.cause(), "unreachable");
  EXPECT_EQ(c.http_status(), 0);
  EXPECT_THAT(c.message(), HasSubstr("https://acme.okta.com is unreachable (Could not resolve"));
  EXPECT_EQ(ClassifyCheck(absl::DeadlineExceededError("t"), base).cause(), "unreachable");
}

}  // namespace
}  // namespace pantherd::server::okta
