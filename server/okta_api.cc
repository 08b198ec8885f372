#include "server/okta_api.h"

#include <optional>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "engine/normalize.h"
#include "simdjson.h"

namespace pantherd::server::okta {
namespace {

bool IsLoopbackHost(absl::string_view host) {
  if (absl::EqualsIgnoreCase(host, "localhost") || host == "[::1]") return true;
  if (!absl::StartsWith(host, "127.")) return false;
  for (char c : host) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c)) && c != '.') return false;
  }
  return true;
}

size_t SkipSpace(absl::string_view s, size_t i) {
  while (i < s.size() && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r')) ++i;
  return i;
}

// The string member `key` of a parsed JSON object, or "".
std::string StringMember(simdjson::dom::element object, const char* key) {
  std::string_view value;
  if (object[key].get_string().get(value) != simdjson::SUCCESS) return "";
  return std::string(value);
}

}  // namespace

std::string RedactUrlCredentials(absl::string_view url) {
  const size_t scheme = url.find("://");
  const size_t start = scheme == absl::string_view::npos ? 0 : scheme + 3;
  size_t end = url.find_first_of("/?#", start);
  if (end == absl::string_view::npos) end = url.size();
  const size_t at = url.substr(start, end - start).rfind('@');
  if (at == absl::string_view::npos) return std::string(url);
  return absl::StrCat(url.substr(0, start), "REDACTED@", url.substr(start + at + 1));
}

absl::StatusOr<std::string> NormalizeBaseUrl(absl::string_view given) {
  // Messages show the URL without credentials; a URL that has some is
  // refused below (no user part), so the redacted form is all that is shown.
  const std::string shown = RedactUrlCredentials(given);
  absl::string_view url = given;
  absl::string_view rest = url;
  bool https = false;
  if (absl::ConsumePrefix(&rest, "https://")) {
    https = true;
  } else if (!absl::ConsumePrefix(&rest, "http://")) {
    return absl::InvalidArgumentError(
        absl::StrCat("\"", shown,
                     "\" is not an https:// URL (http:// is accepted only for a "
                     "loopback address)"));
  }
  absl::ConsumeSuffix(&rest, "/");
  if (rest.empty()) return absl::InvalidArgumentError(absl::StrCat("\"", shown, "\" has no host"));
  for (char c : rest) {
    if (c == '/' || c == '?' || c == '#' || c == '@' || c <= ' ' || c == 0x7f) {
      return absl::InvalidArgumentError(absl::StrCat(
          "\"", shown, "\" must be scheme://host[:port] only (no path, query, user or spaces)"));
    }
  }
  absl::string_view host = rest;
  if (absl::StartsWith(rest, "[")) {
    const size_t close = rest.find(']');
    if (close == absl::string_view::npos) {
      return absl::InvalidArgumentError(absl::StrCat("\"", shown, "\" has an unclosed [IPv6]"));
    }
    host = rest.substr(0, close + 1);
  } else {
    host = rest.substr(0, rest.find(':'));
  }
  if (!https && !IsLoopbackHost(host)) {
    return absl::InvalidArgumentError(
        absl::StrCat("\"", shown,
                     "\": http:// is accepted only for a loopback address (the token would cross "
                     "the network in clear); use https://"));
  }
  return std::string(url.substr(0, url.size() - (absl::EndsWith(url, "/") ? 1 : 0)));
}

absl::Status ValidateDomain(absl::string_view domain) {
  if (domain.empty()) return absl::InvalidArgumentError("is required (e.g. acme.okta.com)");
  if (domain.size() > 253) return absl::InvalidArgumentError("is longer than 253 characters");
  for (char c : domain) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '.') {
      return absl::InvalidArgumentError(absl::StrCat(
          "\"", domain, "\" is not a host name (e.g. acme.okta.com, without https://)"));
    }
  }
  return absl::OkStatus();
}

std::string FirstPollUrl(absl::string_view base_url, absl::Time since, int limit) {
  return absl::StrCat(base_url, "/api/v1/logs?since=",
                      absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", since, absl::UTCTimeZone()),
                      "&sortOrder=ASCENDING&limit=", limit);
}

bool SameOrigin(absl::string_view url, absl::string_view base_url) {
  if (url.size() < base_url.size()) return false;
  if (!absl::EqualsIgnoreCase(url.substr(0, base_url.size()), base_url)) return false;
  if (url.size() == base_url.size()) return true;
  const char next = url[base_url.size()];
  return next == '/' || next == '?';
}

std::optional<std::string> FindLink(const std::vector<std::string>& link_values,
                                    absl::string_view rel) {
  for (const std::string& value : link_values) {
    // Split on commas outside <...>: a URL may contain commas.
    std::vector<absl::string_view> parts;
    size_t start = 0;
    bool in_url = false;
    for (size_t i = 0; i <= value.size(); ++i) {
      if (i == value.size() || (value[i] == ',' && !in_url)) {
        parts.push_back(absl::string_view(value).substr(start, i - start));
        start = i + 1;
      } else if (value[i] == '<') {
        in_url = true;
      } else if (value[i] == '>') {
        in_url = false;
      }
    }
    for (absl::string_view part : parts) {
      part = absl::StripAsciiWhitespace(part);
      if (!absl::StartsWith(part, "<")) continue;
      const size_t close = part.find('>');
      if (close == absl::string_view::npos) continue;
      const absl::string_view target = part.substr(1, close - 1);
      for (absl::string_view param : absl::StrSplit(part.substr(close + 1), ';')) {
        param = absl::StripAsciiWhitespace(param);
        const size_t eq = param.find('=');
        if (eq == absl::string_view::npos) continue;
        if (!absl::EqualsIgnoreCase(absl::StripAsciiWhitespace(param.substr(0, eq)), "rel")) {
          continue;
        }
        absl::string_view rels = absl::StripAsciiWhitespace(param.substr(eq + 1));
        absl::ConsumePrefix(&rels, "\"");
        absl::ConsumeSuffix(&rels, "\"");
        for (absl::string_view r : absl::StrSplit(rels, ' ', absl::SkipEmpty())) {
          if (absl::EqualsIgnoreCase(r, rel)) return std::string(target);
        }
      }
    }
  }
  return std::nullopt;
}

RateLimit ParseRateLimit(const HttpResponse& response) {
  auto number = [&](absl::string_view name) -> std::optional<int64_t> {
    std::vector<std::string> values = response.HeaderValues(name);
    int64_t n = 0;
    if (values.size() != 1 || !absl::SimpleAtoi(values[0], &n)) return std::nullopt;
    return n;
  };
  RateLimit r;
  r.limit = number("X-Rate-Limit-Limit");
  r.remaining = number("X-Rate-Limit-Remaining");
  if (std::optional<int64_t> reset = number("X-Rate-Limit-Reset")) {
    r.reset = absl::FromUnixSeconds(*reset);
  }
  return r;
}

std::string DescribeError(const HttpResponse& response) {
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  if (parser.parse(response.body).get(root) == simdjson::SUCCESS && root.is_object()) {
    const std::string code = StringMember(root, "errorCode");
    const std::string summary = StringMember(root, "errorSummary");
    if (!code.empty() || !summary.empty()) {
      return absl::StrCat("HTTP ", response.status, " ", code, code.empty() ? "" : ": ", summary);
    }
  }
  std::string start = response.body.substr(0, 200);
  for (char& c : start) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = ' ';
  }
  if (start.empty()) return absl::StrCat("HTTP ", response.status);
  return absl::StrCat("HTTP ", response.status, ": ", start);
}

absl::StatusOr<std::vector<LogEvent>> ParseLogPage(absl::string_view body) {
  std::vector<LogEvent> events;
  size_t i = SkipSpace(body, 0);
  if (i >= body.size() || body[i] != '[') {
    return absl::InvalidArgumentError("malformed page: the body is not a JSON array");
  }
  i = SkipSpace(body, i + 1);
  if (i < body.size() && body[i] == ']') {
    i = SkipSpace(body, i + 1);
    if (i != body.size()) {
      return absl::InvalidArgumentError("malformed page: text after the array");
    }
    return events;
  }
  simdjson::dom::parser parser;
  while (true) {
    i = SkipSpace(body, i);
    if (i >= body.size()) {
      return absl::InvalidArgumentError(
          absl::StrCat("malformed page: it ends after ", events.size(), " events (cut off?)"));
    }
    if (body[i] != '{') {
      return absl::InvalidArgumentError(
          absl::StrCat("malformed page: element ", events.size(), " is not a JSON object"));
    }
    const size_t start = i;
    int depth = 0;
    bool in_string = false;
    for (; i < body.size(); ++i) {
      const char c = body[i];
      if (in_string) {
        if (c == '\\') {
          ++i;
        } else if (c == '"') {
          in_string = false;
        }
        continue;
      }
      if (c == '"') {
        in_string = true;
      } else if (c == '{' || c == '[') {
        ++depth;
      } else if (c == '}' || c == ']') {
        if (--depth == 0) {
          ++i;
          break;
        }
      }
    }
    if (depth != 0 || in_string) {
      return absl::InvalidArgumentError(
          absl::StrCat("malformed page: it ends inside element ", events.size(), " (cut off?)"));
    }
    LogEvent event;
    event.json = std::string(body.substr(start, i - start));
    simdjson::dom::element object;
    if (parser.parse(event.json).get(object) == simdjson::SUCCESS && object.is_object()) {
      event.uuid = StringMember(object, "uuid");
      // pantherd's one timestamp parser (engine/normalize.h): the time the
      // event's row will carry.
      std::optional<absl::Time> published =
          engine::ParseEventTimestamp(StringMember(object, "published"));
      if (published.has_value()) event.published = *published;
    }
    events.push_back(std::move(event));
    i = SkipSpace(body, i);
    if (i < body.size() && body[i] == ',') {
      ++i;
      continue;
    }
    if (i < body.size() && body[i] == ']') {
      i = SkipSpace(body, i + 1);
      if (i != body.size()) {
        return absl::InvalidArgumentError("malformed page: text after the array");
      }
      return events;
    }
    return absl::InvalidArgumentError(
        absl::StrCat("malformed page: expected ',' or ']' after element ", events.size() - 1));
  }
}

std::string ExpandDomain(absl::string_view domain, std::string* assumption) {
  assumption->clear();
  if (domain.empty() || absl::StrContains(domain, '.')) return std::string(domain);
  std::string expanded = absl::StrCat(domain, ".okta.com");
  *assumption = absl::StrCat("assumed ", expanded, " for \"", domain, "\"");
  return expanded;
}

std::string CheckUrl(absl::string_view base_url, absl::Time now) {
  return FirstPollUrl(base_url, now - absl::Minutes(1), /*limit=*/1);
}

v1::SourceCheck ClassifyCheck(const absl::StatusOr<HttpResponse>& answer,
                              absl::string_view base_url) {
  v1::SourceCheck check;
  const std::string base = RedactUrlCredentials(base_url);
  auto set = [&check](bool ok, absl::string_view cause, std::string message) {
    check.set_ok(ok);
    check.set_cause(std::string(cause));
    check.set_message(std::move(message));
  };
  if (!answer.ok()) {
    const bool timeout = absl::IsDeadlineExceeded(answer.status());
    set(false, "unreachable",
        absl::StrCat(
            base, " is unreachable (",
            timeout ? std::string("no answer in time") : std::string(answer.status().message()),
            "): check the domain (e.g. acme.okta.com) and the network"));
    return check;
  }
  const HttpResponse& r = *answer;
  check.set_http_status(r.status);
  if (r.status == 200) {
    absl::StatusOr<std::vector<LogEvent>> page = ParseLogPage(r.body);
    if (page.ok()) {
      set(true, "ok", absl::StrCat("Okta at ", base, " accepted the token (System Log readable)"));
    } else {
      set(false, "bad_response",
          absl::StrCat(base, " answered HTTP 200 but not with a System Log page (",
                       page.status().message(), "): is the domain an Okta org?"));
    }
    return check;
  }
  const std::string error = DescribeError(r);
  switch (r.status) {
    case 401:
      set(false, "token_rejected",
          absl::StrCat("token rejected by ", base, " (", error,
                       "): check the token and that it belongs to this org"));
      break;
    case 403:
      set(false, "forbidden",
          absl::StrCat("the token may not read the System Log of ", base, " (", error,
                       "): it needs an admin role that can read logs"));
      break;
    case 404:
      set(false, "not_found",
          absl::StrCat(base, " has no System Log API (", error, "): is the domain an Okta org?"));
      break;
    case 429:
      set(true, "rate_limited",
          absl::StrCat(base, " is rate-limiting (", error,
                       "); the org answered, the token is checked on the first poll"));
      break;
    default:
      if (r.status >= 500) {
        set(false, "server_error",
            absl::StrCat(base, " failed to answer (", error, "); try again later"));
      } else {
        set(false, "bad_response",
            absl::StrCat(base, " answered ", error,
                         ", not a System Log page: is the domain an "
                         "Okta org (e.g. acme.okta.com)?"));
      }
  }
  return check;
}

}  // namespace pantherd::server::okta
