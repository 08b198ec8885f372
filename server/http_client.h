// A minimal HTTP client: GET for pollers of external APIs (the Okta System
// Log), POST for alert destinations; behind an interface so that their logic
// does not depend on the transport. The implementation uses libcurl with TLS peer and host
// verification always on.
//
//   std::unique_ptr<HttpClient> http = NewCurlHttpClient();
//   HttpRequest req{.url = "https://acme.okta.com/api/v1/logs?...", ...};
//   absl::StatusOr<HttpResponse> resp = http->Get(req, &cancelled);
#ifndef PANTHERD_SERVER_HTTP_CLIENT_H_
#define PANTHERD_SERVER_HTTP_CLIENT_H_

#include <atomic>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace pantherd::server {

using HttpHeaders = std::vector<std::pair<std::string, std::string>>;

struct HttpRequest {
  std::string url;
  // Request headers, sent as given.
  HttpHeaders headers;
  // The whole exchange (connect, send, receive) must finish within this.
  absl::Duration timeout = absl::Seconds(60);
  // Bodies larger than this fail the request (ResourceExhausted).
  size_t max_body_bytes = 64 << 20;
};

struct HttpResponse {
  int status = 0;
  // Every header line of the final response, in order, names as sent (a
  // header repeated on several lines appears several times).
  HttpHeaders headers;
  std::string body;

  // The values of every header named `name` (ASCII case-insensitive), in order.
  std::vector<std::string> HeaderValues(absl::string_view name) const;
  // The first value of header `name`, or "" when absent.
  std::string Header(absl::string_view name) const;
};

class HttpClient {
 public:
  virtual ~HttpClient() = default;

  // Performs a GET. Any HTTP status is a response (the caller interprets 4xx
  // and 5xx). Errors: DeadlineExceeded when the timeout passed; Cancelled when
  // `*cancel` became true during the exchange (checked at least every 100 ms;
  // `cancel` may be null); Unavailable when the connection failed or broke
  // (refused, reset, closed before the whole body arrived, TLS or certificate
  // failure); InvalidArgument for a malformed URL; ResourceExhausted for a
  // body over max_body_bytes. Thread-safe: concurrent calls are independent.
  virtual absl::StatusOr<HttpResponse> Get(const HttpRequest& request,
                                           const std::atomic<bool>* cancel) = 0;

  // Performs a POST of `body` (request.headers should carry its
  // Content-Type). Same answers and errors as Get; in no error message does
  // the request's URL appear (it may hold a secret, e.g. a Slack webhook
  // path). The default implementation answers Unimplemented (clients that
  // only poll need not provide it). Thread-safe.
  virtual absl::StatusOr<HttpResponse> Post(const HttpRequest& request, absl::string_view body,
                                            const std::atomic<bool>* cancel);
};

// The libcurl client: HTTP/1.1 and HTTPS with certificate and host-name
// verification (never disabled), redirects not followed, curl's usual proxy
// variables honoured except for loopback addresses (never proxied). Call once per process
// before threads start: InitHttpClients() (curl_global_init); it is also
// called by the first NewCurlHttpClient().
void InitHttpClients();
std::unique_ptr<HttpClient> NewCurlHttpClient();

}  // namespace pantherd::server

#endif  // PANTHERD_SERVER_HTTP_CLIENT_H_
