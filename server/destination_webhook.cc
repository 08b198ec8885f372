// Kind "webhook": Panther's custom webhook payload POSTed to any URL,
// optionally signed with HMAC-SHA256, with the destination's custom headers.
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "server/destination_kind.h"
#include "server/destination_util.h"

namespace pantherd::server {
namespace {

namespace di = destination_internal;

constexpr char kDefaultSignatureHeader[] = "X-Pantherd-Signature";
constexpr size_t kMaxHeaders = 32;
constexpr size_t kMaxHeaderValueBytes = 8192;

// RFC 9110 token characters.
bool IsToken(absl::string_view s) {
  if (s.empty() || s.size() > 256) return false;
  for (const char c : s) {
    if (absl::ascii_isalnum(static_cast<unsigned char>(c))) continue;
    if (absl::string_view("!#$%&'*+-.^_`|~").find(c) == absl::string_view::npos) return false;
  }
  return true;
}

std::string SignatureHeader(const DestinationConfig& config) {
  return di::Field(config, "signature_header", false, kDefaultSignatureHeader);
}

absl::Status Validate(const DestinationConfig& config) {
  if (absl::Status s = CheckHttpUrl("secrets.url", di::Field(config, "url", true), true); !s.ok()) {
    return s;
  }
  const std::string signature = SignatureHeader(config);
  if (!IsToken(signature)) {
    return absl::InvalidArgumentError(
        "settings.signature_header: must be an HTTP header name (letters, digits, -, _ ...)");
  }
  if (config.headers.size() > kMaxHeaders) {
    return absl::InvalidArgumentError(
        absl::StrCat("headers: at most ", kMaxHeaders, " custom headers"));
  }
  for (const auto& [name, value] : config.headers) {
    if (value.size() > kMaxHeaderValueBytes) {
      return absl::InvalidArgumentError(absl::StrCat(
          "headers.", name, ": the value is longer than ", kMaxHeaderValueBytes, " bytes"));
    }
    if (!IsToken(name)) {
      return absl::InvalidArgumentError(
          "headers: a header name is not an HTTP token (letters, digits, -, _ ...)");
    }
    for (absl::string_view reserved :
         {absl::string_view("Content-Type"), absl::string_view("Idempotency-Key"),
          absl::string_view(signature), absl::string_view("Content-Length"),
          absl::string_view("Host"), absl::string_view("Transfer-Encoding"),
          absl::string_view("Connection"), absl::string_view("Expect")}) {
      if (absl::EqualsIgnoreCase(name, reserved)) {
        return absl::InvalidArgumentError(
            absl::StrCat("headers.", name, ": set by pantherd; cannot be overridden"));
      }
    }
    for (const char c : value) {
      const unsigned char u = static_cast<unsigned char>(c);
      if ((u < 0x20 && c != '\t') || u == 0x7F) {
        return absl::InvalidArgumentError(absl::StrCat(
            "headers.", name, ": the value holds a control character (CR, LF, NUL ...)"));
      }
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<OutgoingRequest> Build(const AlertMessage& message,
                                      const DestinationConfig& config) {
  // The delivery manager validated the config when it was stored; check
  // again so that a bad value can never reach a request (e.g. CR/LF in a
  // header).
  if (absl::Status s = Validate(config); !s.ok()) return s;
  OutgoingRequest req;
  req.url = di::Field(config, "url", true);
  if (req.url.empty()) return absl::InvalidArgumentError("secrets.url: required by kind webhook");
  req.body = WebhookPayloadJson(message);
  req.headers = di::JsonHeaders(message);
  const std::string key = di::Field(config, "hmac_secret", true);
  if (!key.empty()) {
    req.headers.emplace_back(SignatureHeader(config),
                             absl::StrCat("sha256=", HmacSha256Hex(key, req.body)));
  }
  for (const auto& [name, value] : config.headers) req.headers.emplace_back(name, value);
  return req;
}

}  // namespace

extern const DestinationKind kWebhookDestination;
const DestinationKind kWebhookDestination = {
    .name = "webhook",
    .description = "POSTs Panther's custom webhook JSON to a URL, optionally HMAC-signed",
    .fields =
        {
            {"url", true, true, "the http(s) URL to POST to"},
            {"hmac_secret", true, false,
             "key of an HMAC-SHA256 signature of the body (header: sha256=<hex>)"},
            {"signature_header", false, false,
             "header carrying the signature (default X-Pantherd-Signature)"},
        },
    .resolves = false,
    .accepts_headers = true,
    .validate = Validate,
    .build = Build,
};

}  // namespace pantherd::server
