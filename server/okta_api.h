// The Okta System Log API as pantherd's poller speaks it: the first polling
// URL, Link headers, rate-limit headers, error bodies and log pages. Pure
// functions over strings (no I/O), so every rule here is unit-tested.
//
// Okta's rules (docs/api.md, "Sources"): a polling request is
// GET /api/v1/logs?since=<start>&sortOrder=ASCENDING&limit=1000, and after it
// the client follows the rel="next" Link of each answer forever, even when a
// page is empty; it never builds since/until pages by hand.
#ifndef PANTHERD_SERVER_OKTA_API_H_
#define PANTHERD_SERVER_OKTA_API_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "pantherd/v1/sources.pb.h"
#include "server/http_client.h"

namespace pantherd::server::okta {

// The log type Okta System Log events are ingested as.
inline constexpr char kLogType[] = "Okta.SystemLog";
// Events per page requested (Okta's maximum).
inline constexpr int kPageLimit = 1000;

// `url` with any credentials in its authority (the "user:secret@" before the
// host) replaced by "REDACTED@", for every message, log line and audit entry
// that shows a URL a caller gave. URLs without credentials are unchanged.
std::string RedactUrlCredentials(absl::string_view url);

// Checks an explicit base URL: "https://host[:port]" (any host), or
// "http://host[:port]" only for a loopback host (127.0.0.0/8, localhost,
// [::1]) since the token would otherwise cross the network in clear; no
// path, query or fragment beyond a trailing "/". Returns the URL without the
// trailing "/", or InvalidArgument saying what is wrong.
absl::StatusOr<std::string> NormalizeBaseUrl(absl::string_view url);

// Checks an Okta domain ("acme.okta.com"): a host name of letters, digits,
// '-' and '.', at most 253 characters. InvalidArgument otherwise.
absl::Status ValidateDomain(absl::string_view domain);

// The first polling URL: <base>/api/v1/logs?since=<since, RFC 3339 UTC with
// milliseconds>&sortOrder=ASCENDING&limit=<limit>.
std::string FirstPollUrl(absl::string_view base_url, absl::Time since, int limit = kPageLimit);

// Whether `url` is on the origin (scheme, host and port) of `base_url`, so
// that following it never sends the token elsewhere.
bool SameOrigin(absl::string_view url, absl::string_view base_url);

// The URL of the link with relation `rel` among the values of every Link
// header of a response: several header lines, one comma-joined line, or a
// mix; relation names are compared case-insensitively and a rel listing
// several relations matches each. nullopt when absent.
std::optional<std::string> FindLink(const std::vector<std::string>& link_values,
                                    absl::string_view rel);

// X-Rate-Limit-Limit/-Remaining/-Reset of one response; each unset when
// absent or not a number (a duplicated, comma-joined value is unset too).
struct RateLimit {
  std::optional<int64_t> limit;
  std::optional<int64_t> remaining;
  std::optional<absl::Time> reset;
};
RateLimit ParseRateLimit(const HttpResponse& response);

// A one-line description of an error answer: "HTTP <status> <errorCode>:
// <errorSummary>" from Okta's JSON error body, or "HTTP <status>" followed by
// the start of the body (at most 200 bytes, control characters replaced) when
// the body is not one.
std::string DescribeError(const HttpResponse& response);

// One event of a page: its JSON text as received, its uuid and its published
// time (empty / InfinitePast when missing or unreadable).
struct LogEvent {
  std::string json;
  std::string uuid;
  absl::Time published = absl::InfinitePast();
};

// Splits a page body (a JSON array of objects) into its events, keeping each
// object's text as received. InvalidArgument ("malformed page: ...") when the
// body is not a complete JSON array, or an element is not an object.
absl::StatusOr<std::vector<LogEvent>> ParseLogPage(absl::string_view body);

// The domain to use for `domain` as given: "acme" (one label, no dot) is
// taken as "acme.okta.com" and `*assumption` says so ("assumed
// acme.okta.com for \"acme\""); anything else is returned unchanged and
// `*assumption` cleared.
std::string ExpandDomain(absl::string_view domain, std::string* assumption);

// The URL of the connection check (AddSource, TestSource): one authenticated
// request for at most one event, <base>/api/v1/logs?since=<now - 1 min>
// &sortOrder=ASCENDING&limit=1, which needs the same permission as polling.
std::string CheckUrl(absl::string_view base_url, absl::Time now);

// What the answer to the check request (or its transport error) says about
// the source at `base_url`, in one SourceCheck (latency not set):
//   200 with a JSON array        ok, cause "ok"
//   429                          ok, cause "rate_limited" (the org answered;
//                                the token is checked on the next poll)
//   401                          cause "token_rejected"
//   403                          cause "forbidden" (token lacks the right)
//   404                          cause "not_found" (no System Log there)
//   5xx                          cause "server_error"
//   other statuses, or 200 with a body that is not a JSON array
//                                cause "bad_response" (not an Okta org?)
//   transport errors (DNS, refused, TLS, timeout)
//                                cause "unreachable"
// The message names the base URL and the cause in one sentence and never
// contains the token.
v1::SourceCheck ClassifyCheck(const absl::StatusOr<HttpResponse>& answer,
                              absl::string_view base_url);

}  // namespace pantherd::server::okta

#endif  // PANTHERD_SERVER_OKTA_API_H_
