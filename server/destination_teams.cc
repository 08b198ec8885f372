// Kind "teams": a Microsoft Teams message carrying an Adaptive Card (1.4),
// POSTed to an incoming webhook or Workflows URL.
#include "absl/strings/str_cat.h"
#include "server/destination_kind.h"
#include "server/destination_util.h"

namespace pantherd::server {
namespace {

namespace di = destination_internal;

constexpr size_t kTitleMax = 500;
constexpr size_t kFactMax = 1000;
constexpr size_t kContextMax = 2500;

std::string TextBlock(absl::string_view text, bool monospace = false) {
  di::JsonObject block;
  block.Add("type", "TextBlock").Add("text", text).Add("wrap", true);
  if (monospace) block.Add("fontType", "Monospace");
  return block.Json();
}

absl::Status Validate(const DestinationConfig& config) {
  return CheckHttpUrl("secrets.url", di::Field(config, "url", true), true);
}

absl::StatusOr<OutgoingRequest> Build(const AlertMessage& message,
                                      const DestinationConfig& config) {
  // The delivery manager validated the config when it was stored; check
  // again so that a bad value can never reach a request (e.g. CR/LF in a
  // header).
  if (absl::Status s = Validate(config); !s.ok()) return s;
  OutgoingRequest req;
  req.url = di::Field(config, "url", true);
  if (req.url.empty()) return absl::InvalidArgumentError("secrets.url: required by kind teams");
  const v1::Alert& a = message.alert;

  di::JsonArray body;
  body.AddRaw(di::JsonObject()
                  .Add("type", "TextBlock")
                  .Add("text", di::TruncateUtf8(di::DisplayTitle(message), kTitleMax))
                  .Add("weight", "Bolder")
                  .Add("size", "Medium")
                  .Add("wrap", true)
                  .Json());
  di::JsonArray facts;
  for (const auto& [name, value] : di::AlertFacts(message)) {
    facts.AddRaw(
        di::JsonObject().Add("title", name).Add("value", di::TruncateUtf8(value, kFactMax)).Json());
  }
  body.AddRaw(di::JsonObject().Add("type", "FactSet").AddRaw("facts", facts.Json()).Json());
  if (!a.description().empty()) body.AddRaw(TextBlock(di::TruncateUtf8(a.description(), 2000)));
  if (a.type() == v1::ALERT_TYPE_RULE_ERROR) {
    body.AddRaw(TextBlock(
        di::TruncateUtf8(absl::StrCat("Error ", a.error().type(), ": ", a.error().message()),
                         kContextMax),
        true));
  }
  body.AddRaw(TextBlock(di::TruncateUtf8(di::ContextJson(a), kContextMax), true));

  di::JsonObject card;
  card.Add("$schema", "http://adaptivecards.io/schemas/adaptive-card.json")
      .Add("type", "AdaptiveCard")
      .Add("version", "1.4")
      .AddRaw("body", body.Json());
  if (!message.link.empty()) {
    card.AddRaw("actions", di::JsonArray()
                               .AddRaw(di::JsonObject()
                                           .Add("type", "Action.OpenUrl")
                                           .Add("title", "View alert")
                                           .Add("url", message.link)
                                           .Json())
                               .Json());
  }
  req.body =
      di::JsonObject()
          .Add("type", "message")
          .AddRaw("attachments",
                  di::JsonArray()
                      .AddRaw(di::JsonObject()
                                  .Add("contentType", "application/vnd.microsoft.card.adaptive")
                                  .AddRaw("content", card.Json())
                                  .Json())
                      .Json())
          .Json();
  req.headers = di::JsonHeaders(message);
  return req;
}

}  // namespace

extern const DestinationKind kTeamsDestination;
const DestinationKind kTeamsDestination = {
    .name = "teams",
    .description = "posts an Adaptive Card to a Microsoft Teams channel through a webhook",
    .fields =
        {
            {"url", true, true, "the Teams incoming webhook or Workflows URL"},
        },
    .resolves = false,
    .accepts_headers = false,
    .validate = Validate,
    .build = Build,
};

}  // namespace pantherd::server
