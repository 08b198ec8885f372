#include "tests/fake_okta.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <optional>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"

namespace pantherd::testing {
namespace {

constexpr int kMaxLimit = 1000;
constexpr int kDefaultLimit = 100;

std::string PercentDecode(absl::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size()) {
      int v = 0;
      if (absl::SimpleHexAtoi(s.substr(i + 1, 2), &v)) {
        out.push_back(static_cast<char>(v));
        i += 2;
        continue;
      }
    }
    out.push_back(s[i] == '+' ? ' ' : s[i]);
  }
  return out;
}

std::string Iso(absl::Time t) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", t, absl::UTCTimeZone());
}

bool SendAll(int fd, absl::string_view data) {
  while (!data.empty()) {
    ssize_t n = send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

std::string PublishedOf(const std::string& json) {
  const std::string key = "\"published\":\"";
  size_t at = json.find(key);
  if (at == std::string::npos) return "";
  at += key.size();
  size_t end = json.find('"', at);
  return end == std::string::npos ? "" : json.substr(at, end - at);
}

}  // namespace

absl::StatusOr<std::unique_ptr<FakeOkta>> FakeOkta::Start(Options options) {
  std::unique_ptr<FakeOkta> fake(new FakeOkta(std::move(options)));
  fake->listen_fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fake->listen_fd_ < 0) return absl::InternalError(strerror(errno));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  if (bind(fake->listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      listen(fake->listen_fd_, 64) != 0 ||
      getsockname(fake->listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    return absl::InternalError(absl::StrCat("fake Okta cannot listen: ", strerror(errno)));
  }
  fake->port_ = ntohs(addr.sin_port);
  fake->thread_ = std::thread([f = fake.get()] { f->Serve(); });
  return fake;
}

FakeOkta::~FakeOkta() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (thread_.joinable()) thread_.join();
  if (listen_fd_ >= 0) close(listen_fd_);
}

std::string FakeOkta::base_url() const { return absl::StrCat("http://127.0.0.1:", port_); }

void FakeOkta::AddEvent(std::string json) {
  absl::MutexLock lock(&mu_);
  Event e;
  e.published = PublishedOf(json);
  e.json = std::move(json);
  e.persisted = absl::Now();
  log_.push_back(std::move(e));
}

void FakeOkta::SetToken(std::string token) {
  absl::MutexLock lock(&mu_);
  options_.token = std::move(token);
}

void FakeOkta::Inject(std::vector<Injected> faults) {
  absl::MutexLock lock(&mu_);
  for (Injected& f : faults) faults_.push_back(f);
}

void FakeOkta::SetRateLimit(int limit, absl::Duration window) {
  absl::MutexLock lock(&mu_);
  options_.rate_limit = limit;
  options_.rate_window = window;
  window_start_ = absl::InfinitePast();
  window_used_ = 0;
}

std::vector<FakeOkta::Request> FakeOkta::requests() const {
  absl::MutexLock lock(&mu_);
  return requests_;
}

int FakeOkta::events_served() const {
  absl::MutexLock lock(&mu_);
  return events_served_;
}

int FakeOkta::faults_pending() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int>(faults_.size());
}

int FakeOkta::event_count() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int>(log_.size());
}

void FakeOkta::Sleep(absl::Duration d) {
  absl::MutexLock lock(&mu_);
  mu_.AwaitWithTimeout(absl::Condition(&stopping_), d);
}

void FakeOkta::Serve() {
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      if (stopping_) return;
    }
    pollfd p{listen_fd_, POLLIN, 0};
    if (poll(&p, 1, 50) <= 0) continue;
    int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    HandleConnection(fd);
    close(fd);
  }
}

void FakeOkta::HandleConnection(int fd) {
  // Read the request head (a GET has no body).
  std::string head;
  char buf[4096];
  const absl::Time deadline = absl::Now() + absl::Seconds(5);
  while (head.find("\r\n\r\n") == std::string::npos && head.size() < 65536) {
    if (absl::Now() > deadline) return;
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 50) <= 0) continue;
    ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) return;
    head.append(buf, static_cast<size_t>(n));
  }
  std::vector<std::string> lines = absl::StrSplit(head.substr(0, head.find("\r\n\r\n")), "\r\n");
  if (lines.empty()) return;
  std::vector<std::string> request_line = absl::StrSplit(lines[0], ' ');
  std::string authorization;
  for (size_t i = 1; i < lines.size(); ++i) {
    const size_t colon = lines[i].find(':');
    if (colon == std::string::npos) continue;
    if (absl::EqualsIgnoreCase(lines[i].substr(0, colon), "authorization")) {
      authorization = std::string(absl::StripAsciiWhitespace(lines[i].substr(colon + 1)));
    }
  }
  Response r;
  Request record;
  {
    absl::MutexLock lock(&mu_);
    if (request_line.size() != 3 || request_line[0] != "GET") {
      r = Error(405, "E0000022", "The endpoint does not support the provided HTTP method");
    } else {
      r = Answer(request_line[1], authorization);
    }
    record.time = absl::Now();
    record.target = request_line.size() > 1 ? request_line[1] : "";
    record.authorization = authorization;
    record.status = r.cut_off ? 0 : r.status;
    if (r.status == 200 && !r.cut_off) {
      record.events = static_cast<int>(std::count(r.body.begin(), r.body.end(), '\x1e'));
    }
  }
  // Events are separated by a marker while counting; remove it.
  r.body.erase(std::remove(r.body.begin(), r.body.end(), '\x1e'), r.body.end());
  if (r.delay > absl::ZeroDuration()) Sleep(r.delay);
  std::string out = absl::StrCat("HTTP/1.1 ", r.status, r.status == 200 ? " OK" : " Error", "\r\n");
  for (const auto& [k, v] : r.headers) absl::StrAppend(&out, k, ": ", v, "\r\n");
  absl::StrAppend(&out, "Content-Length: ", r.body.size(), "\r\nConnection: close\r\n\r\n");
  if (r.cut_off) {
    absl::StrAppend(&out, r.body.substr(0, r.body.size() / 2));
    SendAll(fd, out);
  } else {
    absl::StrAppend(&out, r.body);
    SendAll(fd, out);
  }
  {
    absl::MutexLock lock(&mu_);
    if (r.status == 200 && !r.cut_off) events_served_ += record.events;
    requests_.push_back(record);
  }
  shutdown(fd, SHUT_WR);
}

void FakeOkta::AddRateHeaders(Response& r, bool exhausted) {
  const absl::Time now = absl::Now();
  if (window_start_ == absl::InfinitePast() || now >= window_start_ + options_.rate_window) {
    window_start_ = now;
    window_used_ = 0;
  }
  const absl::Time reset = window_start_ + options_.rate_window;
  r.headers.emplace_back("X-Rate-Limit-Limit", absl::StrCat(options_.rate_limit));
  r.headers.emplace_back(
      "X-Rate-Limit-Remaining",
      absl::StrCat(exhausted ? 0 : std::max(0, options_.rate_limit - window_used_)));
  r.headers.emplace_back(
      "X-Rate-Limit-Reset",
      absl::StrCat(absl::ToInt64Seconds(absl::Ceil(reset - absl::UnixEpoch(), absl::Seconds(1)))));
}

FakeOkta::Response FakeOkta::Error(int status, const std::string& code,
                                   const std::string& summary) {
  Response r;
  r.status = status;
  r.headers.emplace_back("Content-Type", "application/json");
  r.body = absl::StrFormat(
      R"({"errorCode":"%s","errorSummary":"%s","errorLink":"%s","errorId":"oae%08d","errorCauses":[]})",
      code, summary, code, static_cast<int>(request_ids_));
  return r;
}

FakeOkta::Response FakeOkta::Answer(const std::string& target, const std::string& authorization) {
  ++request_ids_;
  const absl::Time now = absl::Now();
  auto finish = [&](Response r, bool exhausted = false) {
    r.headers.emplace_back("Date",
                           absl::FormatTime("%a, %d %b %Y %H:%M:%S GMT", now, absl::UTCTimeZone()));
    r.headers.emplace_back("X-Okta-Request-Id", absl::StrCat("req", request_ids_));
    AddRateHeaders(r, exhausted);
    return r;
  };
  // The bucket counts every request that reaches the API.
  if (window_start_ != absl::InfinitePast() && now >= window_start_ + options_.rate_window) {
    window_start_ = absl::InfinitePast();
  }
  if (window_start_ == absl::InfinitePast()) {
    window_start_ = now;
    window_used_ = 0;
  }
  ++window_used_;
  std::optional<Injected> fault;
  if (!faults_.empty()) {
    fault = faults_.front();
    faults_.erase(faults_.begin());
  }
  if (fault && fault->fault == Fault::kTooManyRequests) {
    Response r = Error(429, "E0000047", "API call exceeded rate limit due to too many requests.");
    r = finish(std::move(r), true);
    for (auto& [k, v] : r.headers) {
      if (k == "X-Rate-Limit-Reset") {
        v = absl::StrCat(absl::ToUnixSeconds(now + fault->reset_in));
      }
    }
    return r;
  }
  if (window_used_ > options_.rate_limit) {
    return finish(Error(429, "E0000047", "API call exceeded rate limit due to too many requests."),
                  true);
  }
  if (fault && fault->fault == Fault::kServerError) {
    return finish(Error(500, "E0000009",
                        "Your last request took too long to complete. This is likely due to a "
                        "load issue on our side. We recommend that you make your request again "
                        "after a short delay."));
  }
  if (authorization != absl::StrCat("SSWS ", options_.token)) {
    return finish(Error(401, "E0000011", "Invalid token provided"));
  }
  if (fault && fault->fault == Fault::kForbidden) {
    return finish(
        Error(403, "E0000006", "You do not have permission to perform the requested action"));
  }

  // Route and parameters.
  const size_t q = target.find('?');
  const std::string path = target.substr(0, q);
  if (path != "/api/v1/logs") {
    return finish(Error(404, "E0000022", "The endpoint does not support the provided HTTP method"));
  }
  std::map<std::string, std::string> params;
  if (q != std::string::npos) {
    for (absl::string_view kv : absl::StrSplit(target.substr(q + 1), '&', absl::SkipEmpty())) {
      const size_t eq = kv.find('=');
      params[PercentDecode(kv.substr(0, eq))] =
          eq == absl::string_view::npos ? "" : PercentDecode(kv.substr(eq + 1));
    }
  }
  int limit = kDefaultLimit;
  if (params.count("limit") &&
      (!absl::SimpleAtoi(params["limit"], &limit) || limit < 0 || limit > kMaxLimit)) {
    return finish(Error(400, "E0000001", "Api validation failed: 'limit': must be 0 to 1000"));
  }
  if (params.count("since") && params.count("after")) {
    return finish(Error(400, "E0000001",
                        "Api validation failed: 'since' and 'after' cannot be used together"));
  }
  absl::Time since = now - absl::Hours(7 * 24), until = absl::InfiniteFuture();
  std::string error;
  if (params.count("since") &&
      !absl::ParseTime(absl::RFC3339_full, params["since"], &since, &error)) {
    return finish(Error(400, "E0000001",
                        "Api validation failed: 'since': The date format in your query is not "
                        "recognized. Please enter dates using ISO8601 string format.. 'until': "
                        "The date format in your query is not recognized. Please enter dates "
                        "using ISO8601 string format."));
  }
  if (since < now - absl::Hours(180 * 24)) {
    return finish(Error(400, "E0000053",
                        "Invalid parameter: The since parameter is over 180 days prior to the "
                        "current day."));
  }
  const bool bounded = params.count("until") > 0;
  if (bounded && !absl::ParseTime(absl::RFC3339_full, params["until"], &until, &error)) {
    return finish(Error(400, "E0000001",
                        "Api validation failed: 'until': The date format in your "
                        "query is not recognized."));
  }
  const bool polling = !bounded && params["sortOrder"] != "DESCENDING";

  // Where to start: the cursor's position, or the first event persisted (for
  // polling) or published (bounded) at or after since.
  size_t start = 0;
  if (params.count("after")) {
    const std::string& after = params["after"];
    const size_t underscore = after.rfind('_');
    if (underscore == std::string::npos ||
        !absl::SimpleAtoi(absl::string_view(after).substr(underscore + 1), &start) ||
        start > log_.size()) {
      return finish(Error(400, "E0000001", "Api validation failed: 'after': invalid cursor"));
    }
  } else {
    while (start < log_.size() && log_[start].persisted < since) ++start;
  }
  Response r;
  r.headers.emplace_back("Content-Type", "application/json");
  std::vector<std::string> page;
  size_t i = start;
  const int page_size = std::min(limit, options_.page_cap);
  for (; i < log_.size() && static_cast<int>(page.size()) < page_size; ++i) {
    if (bounded) {
      absl::Time published;
      if (!absl::ParseTime(absl::RFC3339_full, log_[i].published, &published, &error) ||
          published < since || published >= until) {
        continue;
      }
    }
    page.push_back(log_[i].json + "\x1e");
  }
  r.body = absl::StrCat("[", absl::StrJoin(page, ","), "]");
  const std::string base = base_url();
  const std::string self = absl::StrCat(base, target);
  const std::string next = absl::StrCat(
      base, "/api/v1/logs?limit=", limit,
      "&after=", absl::ToUnixMillis(i < log_.size() ? log_[i].persisted : now), "_", i,
      bounded ? absl::StrCat("&until=", Iso(until)) : "", polling ? "&sortOrder=ASCENDING" : "");
  const bool has_next = polling ? !(page.empty() && options_.no_next_on_empty) : i < log_.size();
  if (options_.join_links && has_next) {
    r.headers.emplace_back("link",
                           absl::StrCat("<", self, ">; rel=\"self\", <", next, ">; rel=\"next\""));
  } else {
    r.headers.emplace_back("link", absl::StrCat("<", self, ">; rel=\"self\""));
    if (has_next) r.headers.emplace_back("link", absl::StrCat("<", next, ">; rel=\"next\""));
  }
  if (fault && fault->fault == Fault::kSlow) r.delay = fault->delay;
  if (fault && fault->fault == Fault::kCutOff) r.cut_off = true;
  if (fault && fault->fault == Fault::kMalformed) {
    r.body = "[{\"uuid\":\"broken\",\"published\":";
  }
  return finish(std::move(r));
}

namespace {

std::string Common(const std::string& uuid, const std::string& event_type, const std::string& login,
                   const std::string& ip, absl::Time published, const std::string& result,
                   const std::string& reason, const std::string& legacy,
                   const std::string& display) {
  return absl::StrFormat(
      R"({"uuid":"%s","published":"%s","eventType":"%s","version":"0","severity":"%s",)"
      R"("legacyEventType":"%s","displayMessage":"%s",)"
      R"("actor":{"id":"00u1a2b3c4AdminQ0x697","type":"User","alternateId":"%s",)"
      R"("displayName":"Acme Admin","detailEntry":null},)"
      R"("client":{"userAgent":{"rawUserAgent":"python-requests/2.31.0","os":"Unknown",)"
      R"("browser":"UNKNOWN"},"zone":"null","device":"Unknown","id":null,"ipAddress":"%s",)"
      R"("geographicalContext":{"city":"Frankfurt am Main","state":"Hesse","country":"Germany",)"
      R"("postalCode":"60313","geolocation":{"lat":50.1109,"lon":8.6821}}},)"
      R"("device":null,"authenticationContext":{"authenticationProvider":null,)"
      R"("credentialProvider":null,"credentialType":null,"issuer":null,"interface":null,)"
      R"("authenticationStep":0,"externalSessionId":"102Kz8vQfT3Sx2b5mUZ9hQ2Ag"},)"
      R"("securityContext":{"asNumber":60068,"asOrg":"datacamp limited","isp":"cdn77.com",)"
      R"("domain":"cdn77.com","isProxy":true},)"
      R"("debugContext":{"debugData":{"requestId":"Ze98b52002cf7e46ed722d2a",)"
      R"("requestUri":"/idp/idx/identify","url":"/idp/idx/identify?","threatSuspected":"false"}},)"
      R"("outcome":{"result":"%s","reason":%s},"target":null,)"
      R"("transaction":{"type":"WEB","id":"Zeb49cbe9b9eca7a09bd3259","detail":{}},)"
      R"("request":{"ipChain":[{"ip":"%s","geographicalContext":null,"version":"V4","source":null}]}})",
      uuid, Iso(published), event_type, result == "FAILURE" ? "WARN" : "INFO", legacy, display,
      login, ip, result, reason.empty() ? "null" : absl::StrCat("\"", reason, "\""), ip);
}

}  // namespace

std::string OktaFailedLogin(const std::string& uuid, const std::string& login,
                            const std::string& ip, absl::Time published) {
  return Common(uuid, "user.session.start", login, ip, published, "FAILURE", "INVALID_CREDENTIALS",
                "core.user_auth.login_failed", "User login to Okta");
}

std::string OktaLogout(const std::string& uuid, const std::string& login, absl::Time published) {
  return Common(uuid, "user.session.end", login, "198.51.100.23", published, "SUCCESS", "",
                "core.user_auth.logout_success", "User logout from Okta");
}

}  // namespace pantherd::testing
