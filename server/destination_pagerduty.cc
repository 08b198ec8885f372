// Kind "pagerduty": PagerDuty Events API v2 (trigger, and resolve when the
// alert is resolved in pantherd), deduplicated by the alert id.
#include "absl/strings/str_cat.h"
#include "server/destination_kind.h"
#include "server/destination_util.h"

namespace pantherd::server {
namespace {

namespace di = destination_internal;

constexpr char kDefaultUrl[] = "https://events.pagerduty.com/v2/enqueue";
constexpr size_t kSummaryMax = 1024;

// PagerDuty's severities: critical, error, warning, info.
std::string PagerDutySeverity(v1::Severity severity) {
  switch (severity) {
    case v1::SEVERITY_CRITICAL:
      return "critical";
    case v1::SEVERITY_HIGH:
      return "error";
    case v1::SEVERITY_MEDIUM:
      return "warning";
    default:
      return "info";
  }
}

absl::Status Validate(const DestinationConfig& config) {
  const std::string key = di::Field(config, "routing_key", true);
  bool printable = !key.empty() && key.size() <= 128;
  for (const char c : key) printable = printable && c > 0x20 && c < 0x7F;
  if (!printable) {
    return absl::InvalidArgumentError(
        "secrets.routing_key: must be 1 to 128 printable characters without spaces (the "
        "integration key of a PagerDuty service)");
  }
  return CheckHttpUrl("settings.url", di::Field(config, "url", false, kDefaultUrl), false);
}

absl::StatusOr<OutgoingRequest> Build(const AlertMessage& message,
                                      const DestinationConfig& config) {
  // The delivery manager validated the config when it was stored; check
  // again so that a bad value can never reach a request (e.g. CR/LF in a
  // header).
  if (absl::Status s = Validate(config); !s.ok()) return s;
  const std::string key = di::Field(config, "routing_key", true);
  if (key.empty()) {
    return absl::InvalidArgumentError("secrets.routing_key: required by kind pagerduty");
  }
  const v1::Alert& a = message.alert;
  OutgoingRequest req;
  req.url = di::Field(config, "url", false, kDefaultUrl);
  req.headers = di::JsonHeaders(message);
  if (message.action == DeliveryAction::kResolve) {
    req.body = di::JsonObject()
                   .Add("routing_key", key)
                   .Add("event_action", "resolve")
                   .Add("dedup_key", a.id())
                   .Json();
    return req;
  }
  const std::string dedup_key =
      message.action == DeliveryAction::kTest ? absl::StrCat("pantherd-test-", config.id) : a.id();
  std::string summary = di::OneLine(
      absl::StrCat(message.action == DeliveryAction::kTest ? "[Test] " : "", a.title()));
  if (summary.empty()) summary = di::RuleName(message);
  di::JsonObject payload;
  payload.Add("summary", di::TruncateUtf8(summary, kSummaryMax))
      .Add("source", "pantherd")
      .Add("severity", PagerDutySeverity(a.severity()));
  const std::string created = Rfc3339(a.created_time());
  if (!created.empty()) payload.Add("timestamp", created);
  payload.Add("component", a.rule_id());
  if (a.log_types_size() > 0) payload.Add("group", a.log_types(0));
  payload.Add("class", AlertTypeName(a.type()))
      .AddRaw("custom_details", WebhookPayloadJson(message));
  di::JsonObject body;
  body.Add("routing_key", key)
      .Add("event_action", "trigger")
      .Add("dedup_key", dedup_key)
      .AddRaw("payload", payload.Json());
  if (!message.link.empty()) {
    body.AddRaw(
        "links",
        di::JsonArray()
            .AddRaw(
                di::JsonObject().Add("href", message.link).Add("text", "Alert in pantherd").Json())
            .Json());
  }
  body.Add("client", "pantherd");
  req.body = body.Json();
  return req;
}

}  // namespace

extern const DestinationKind kPagerDutyDestination;
const DestinationKind kPagerDutyDestination = {
    .name = "pagerduty",
    .description = "triggers (and resolves) PagerDuty incidents through the Events API v2",
    .fields =
        {
            {"routing_key", true, true, "the integration (routing) key of a PagerDuty service"},
            {"url", false, false,
             "the Events API endpoint (default https://events.pagerduty.com/v2/enqueue)"},
        },
    .resolves = true,
    .accepts_headers = false,
    .validate = Validate,
    .build = Build,
};

}  // namespace pantherd::server
