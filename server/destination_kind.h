// Destination kinds: how an alert becomes an HTTP request for one kind of
// receiver (generic webhook, Slack, PagerDuty, Microsoft Teams, Jira).
//
// Each kind is one file (destination_<kind>.cc) defining one DestinationKind
// value, and one row in the table of destination_kinds.cc. A kind only builds
// requests from an AlertMessage and its destination's settings; it never
// sends, stores or retries anything (the delivery manager does, the same way
// for every kind), so a new kind cannot weaken the delivery guarantees.
//
//   const DestinationKind* slack = FindDestinationKind("slack");
//   PANTHERD_ASSIGN_OR_RETURN(OutgoingRequest req, slack->build(message, config));
//
// Secrets: a kind reads them from DestinationConfig::secrets and may put them
// in the request (URL, headers), never in an error message. Every function
// here is pure and thread-safe.
#ifndef PANTHERD_SERVER_DESTINATION_KIND_H_
#define PANTHERD_SERVER_DESTINATION_KIND_H_

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "pantherd/v1/alerts.pb.h"
#include "server/http_client.h"

namespace pantherd::server {

// One setting or secret a kind accepts.
struct DestinationFieldSpec {
  const char* name;  // e.g. "url", "project"
  bool secret;       // write-only: stored in StoredDestination.secrets
  bool required;     // Add refuses a destination without it
  const char* help;  // one line, shown by `pantherctl destinations kinds`
};

// A destination's configuration as the kinds see it.
struct DestinationConfig {
  std::string id;
  std::string name;
  std::map<std::string, std::string> settings;  // non-secret fields
  std::map<std::string, std::string> secrets;   // secret fields
  std::map<std::string, std::string> headers;   // custom headers (webhook), secret values
};

// What is being delivered.
enum class DeliveryAction {
  kTrigger,  // a new alert
  kResolve,  // the alert was resolved in pantherd (kinds with `resolves`)
  kTest,     // a sample alert sent by TestDestination
};

// The alert and everything a payload names, resolved by the delivery manager.
struct AlertMessage {
  v1::Alert alert;  // with alert_context_json; matched_events may be empty
  DeliveryAction action = DeliveryAction::kTrigger;
  // The rule's DisplayName (empty: use the rule id), Tags and Reports-free
  // metadata, from the rule version that produced the alert.
  std::string rule_name;
  std::vector<std::string> tags;
  // Link to the alert: "<--external-url>/alerts/<id>", or empty when no
  // external URL is configured.
  std::string link;
  // Stable across attempts and restarts (AlertDelivery.idempotency_key).
  std::string idempotency_key;
  // Attempt number, from 1 (informational; never part of the key).
  int attempt = 1;
};

// An HTTP POST to make.
struct OutgoingRequest {
  std::string url;
  HttpHeaders headers;  // Content-Type included
  std::string body;
};

struct DestinationKind {
  const char* name;         // "webhook", "slack", ...
  const char* description;  // one line
  std::vector<DestinationFieldSpec> fields;
  // Whether kResolve is sent (PagerDuty); other kinds get no resolve
  // deliveries at all.
  bool resolves = false;
  // Whether custom headers are accepted (webhook).
  bool accepts_headers = false;
  // Extra validation beyond the field table (URL forms, key formats).
  // InvalidArgument naming the field ("settings.project: ..."); never quotes
  // a secret's value. May be null.
  absl::Status (*validate)(const DestinationConfig& config) = nullptr;
  // The request for `message`. InvalidArgument when the config cannot make
  // one (a missing field); the message never contains a secret.
  absl::StatusOr<OutgoingRequest> (*build)(const AlertMessage& message,
                                           const DestinationConfig& config) = nullptr;
};

// Every kind, in table order (webhook, slack, pagerduty, teams, jira).
const std::vector<const DestinationKind*>& DestinationKinds();

// The kind named `name` (exact, lowercase), or null.
const DestinationKind* FindDestinationKind(absl::string_view name);

// Checks `config` against `kind`'s field table (required fields present, no
// unknown setting, secret or header names, headers only where accepted),
// then its `validate`. InvalidArgument "settings.<name>: ..." /
// "secrets.<name>: ..." / "headers: ..."; never quotes a secret's value.
absl::Status ValidateDestinationConfig(const DestinationKind& kind,
                                       const DestinationConfig& config);

// ---- Shared by the kinds ---------------------------------------------------

// Panther's webhook payload for `message` (docs/destinations.md): id,
// createdAt, severity, type, link, title, name, alertId, description, runbook,
// reference, tags, version, context (alert_context as an object), eventCount,
// firstEventTime, lastEventTime, logTypes, dedupString, status, idempotencyKey,
// action ("trigger", "resolve", "test"). A JSON object, compact.
std::string WebhookPayloadJson(const AlertMessage& message);

// "INFO", "LOW", "MEDIUM", "HIGH", "CRITICAL" (Panther's spelling).
std::string SeverityName(v1::Severity severity);
// "RULE", "RULE_ERROR", "SIGNAL".
std::string AlertTypeName(v1::AlertType type);
// RFC 3339 UTC with milliseconds ("2026-12-06T10:07:00.000Z"); "" for an
// unset timestamp.
std::string Rfc3339(const google::protobuf::Timestamp& t);

// Lowercase hex HMAC-SHA256 of `body` under `key`.
std::string HmacSha256Hex(absl::string_view key, absl::string_view body);

// OK when `url` is an http:// or https:// URL with a host; InvalidArgument
// "<field>: must be an http(s) URL" otherwise (never quoting the value when
// `secret`).
absl::Status CheckHttpUrl(absl::string_view field, absl::string_view url, bool secret);

}  // namespace pantherd::server

#endif  // PANTHERD_SERVER_DESTINATION_KIND_H_
