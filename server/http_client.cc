#include "server/http_client.h"

#include <curl/curl.h>

#include <cstdlib>
#include <mutex>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/strip.h"

namespace pantherd::server {

std::vector<std::string> HttpResponse::HeaderValues(absl::string_view name) const {
  std::vector<std::string> values;
  for (const auto& [key, value] : headers) {
    if (absl::EqualsIgnoreCase(key, name)) values.push_back(value);
  }
  return values;
}

std::string HttpResponse::Header(absl::string_view name) const {
  for (const auto& [key, value] : headers) {
    if (absl::EqualsIgnoreCase(key, name)) return value;
  }
  return "";
}

void InitHttpClients() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

absl::StatusOr<HttpResponse> HttpClient::Post(const HttpRequest&, absl::string_view,
                                              const std::atomic<bool>*) {
  return absl::UnimplementedError("this HTTP client does not send POST requests");
}

namespace {

struct Transfer {
  HttpResponse response;
  size_t max_body_bytes = 0;
  bool too_large = false;
  const std::atomic<bool>* cancel = nullptr;
  bool cancelled = false;
};

size_t OnBody(char* data, size_t size, size_t count, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const size_t n = size * count;
  if (t->response.body.size() + n > t->max_body_bytes) {
    t->too_large = true;
    return 0;  // Aborts the transfer.
  }
  t->response.body.append(data, n);
  return n;
}

size_t OnHeader(char* data, size_t size, size_t count, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const size_t n = size * count;
  absl::string_view line(data, n);
  line = absl::StripTrailingAsciiWhitespace(line);
  if (absl::StartsWith(line, "HTTP/")) {
    // A new response (e.g. after "100 Continue"): only the last one counts.
    t->response.headers.clear();
    return n;
  }
  const size_t colon = line.find(':');
  if (colon == absl::string_view::npos) return n;
  t->response.headers.emplace_back(std::string(absl::StripAsciiWhitespace(line.substr(0, colon))),
                                   std::string(absl::StripAsciiWhitespace(line.substr(colon + 1))));
  return n;
}

int OnProgress(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  auto* t = static_cast<Transfer*>(user);
  if (t->cancel != nullptr && t->cancel->load()) {
    t->cancelled = true;
    return 1;  // Aborts the transfer.
  }
  return 0;
}

// `text` with every occurrence of `url`, and of its path and query, replaced by
// "<url>" (curl's error buffer may quote them; they can hold secrets).
std::string Scrub(std::string text, absl::string_view url) {
  std::vector<std::string> secrets = {std::string(url)};
  const size_t scheme = url.find("://");
  if (scheme != absl::string_view::npos) {
    const size_t path = url.find_first_of("/?#", scheme + 3);
    if (path != absl::string_view::npos && url.size() - path > 1) {
      secrets.emplace_back(url.substr(path));
      // Without its slash too (in "http:///x", curl takes x for the host).
      if (url.size() - path > 6) secrets.emplace_back(url.substr(path + 1));
      const size_t query = url.find_first_of("?#", path);
      if (query != absl::string_view::npos && query - path > 1) {
        secrets.emplace_back(url.substr(path, query - path));
      }
    }
  }
  for (const std::string& secret : secrets) {
    if (secret.empty()) continue;
    text = absl::StrReplaceAll(text, {{secret, "<url>"}});
  }
  return text;
}

class CurlHttpClient final : public HttpClient {
 public:
  absl::StatusOr<HttpResponse> Get(const HttpRequest& request,
                                   const std::atomic<bool>* cancel) override {
    return Perform(request, /*post=*/false, "", cancel);
  }

  absl::StatusOr<HttpResponse> Post(const HttpRequest& request, absl::string_view body,
                                    const std::atomic<bool>* cancel) override {
    return Perform(request, /*post=*/true, body, cancel);
  }

 private:
  // One exchange: a GET, or a POST of `body`. Errors as documented at Get;
  // no message quotes the URL or its path.
  static absl::StatusOr<HttpResponse> Perform(const HttpRequest& request, bool post,
                                              absl::string_view body,
                                              const std::atomic<bool>* cancel) {
    CURL* curl = curl_easy_init();
    if (curl == nullptr) return absl::InternalError("libcurl could not create a handle");
    Transfer t;
    t.max_body_bytes = request.max_body_bytes;
    t.cancel = cancel;
    char error[CURL_ERROR_SIZE] = {0};
    curl_slist* headers = nullptr;
    for (const auto& [name, value] : request.headers) {
      headers = curl_slist_append(headers, absl::StrCat(name, ": ", value).c_str());
    }
    if (post) {
      // No "Expect: 100-continue" round trip before the body.
      headers = curl_slist_append(headers, "Expect:");
    }
    // Loopback is never proxied; otherwise curl's proxy variables apply.
    std::string no_proxy = "localhost,127.0.0.1,::1";
    for (const char* var : {"no_proxy", "NO_PROXY"}) {
      const char* v = std::getenv(var);
      if (v != nullptr && *v != '\0') {
        absl::StrAppend(&no_proxy, ",", v);
        break;
      }
    }
    curl_easy_setopt(curl, CURLOPT_URL, request.url.c_str());
    if (post) {
      curl_easy_setopt(curl, CURLOPT_POST, 1L);
      curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
      // `body` outlives curl_easy_perform, so curl may read it in place.
      // Never null: curl would then read the body from stdin.
      curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body.empty() ? "" : body.data());
    } else {
      curl_easy_setopt(curl, CURLOPT_HTTPGET, 1L);
    }
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 2L);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_NOPROXY, no_proxy.c_str());
    curl_easy_setopt(curl, CURLOPT_ACCEPT_ENCODING, "");  // Any curl supports.
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS,
                     static_cast<long>(absl::ToInt64Milliseconds(request.timeout)));
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, error);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, OnBody);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &t);
    curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, OnHeader);
    curl_easy_setopt(curl, CURLOPT_HEADERDATA, &t);
    curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, OnProgress);
    curl_easy_setopt(curl, CURLOPT_XFERINFODATA, &t);
    curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
    const CURLcode code = curl_easy_perform(curl);
    long status = 0;
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(headers);
    curl_easy_cleanup(curl);

    if (code == CURLE_OK) {
      t.response.status = static_cast<int>(status);
      return std::move(t.response);
    }
    const std::string detail =
        Scrub(error[0] != '\0' ? error : curl_easy_strerror(code), request.url);
    if (t.cancelled || code == CURLE_ABORTED_BY_CALLBACK) {
      return absl::CancelledError("the request was cancelled");
    }
    if (t.too_large) {
      return absl::ResourceExhaustedError(
          absl::StrCat("the response body is larger than ", t.max_body_bytes, " bytes"));
    }
    switch (code) {
      case CURLE_OPERATION_TIMEDOUT:
        return absl::DeadlineExceededError(absl::StrCat(
            "no complete answer within ", absl::FormatDuration(request.timeout), ": ", detail));
      case CURLE_URL_MALFORMAT:
      case CURLE_UNSUPPORTED_PROTOCOL:
        return absl::InvalidArgumentError(absl::StrCat("bad URL: ", detail));
      default:
        return absl::UnavailableError(absl::StrCat("HTTP request failed: ", detail));
    }
  }
};

}  // namespace

std::unique_ptr<HttpClient> NewCurlHttpClient() {
  InitHttpClients();
  return std::make_unique<CurlHttpClient>();
}

}  // namespace pantherd::server
