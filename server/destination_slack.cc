// Kind "slack": a Slack incoming webhook message (Block Kit) with a fallback
// text line, within Slack's limits (header text 150 characters, section text
// 3000, field text 2000).
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "server/destination_kind.h"
#include "server/destination_util.h"

namespace pantherd::server {
namespace {

namespace di = destination_internal;

// Slack's limits, in bytes (never more characters than bytes).
constexpr size_t kHeaderMax = 150;
constexpr size_t kSectionMax = 3000;
constexpr size_t kFieldMax = 2000;
constexpr size_t kContextMax = 2500;

// `s` with Slack's mrkdwn control characters escaped.
std::string Mrkdwn(absl::string_view s) {
  return absl::StrReplaceAll(s, {{"&", "&amp;"}, {"<", "&lt;"}, {">", "&gt;"}});
}

// `s` for inside a ``` block: escaped, and unable to close the block.
std::string CodeText(absl::string_view s) {
  return absl::StrReplaceAll(Mrkdwn(s), {{"```", "'''"}});
}

std::string TextObject(absl::string_view type, absl::string_view text) {
  return di::JsonObject().Add("type", type).Add("text", text).Json();
}

std::string Section(absl::string_view mrkdwn) {
  return di::JsonObject()
      .Add("type", "section")
      .AddRaw("text", TextObject("mrkdwn", di::TruncateUtf8(mrkdwn, kSectionMax)))
      .Json();
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
  if (req.url.empty()) return absl::InvalidArgumentError("secrets.url: required by kind slack");
  const v1::Alert& a = message.alert;
  const std::string title = di::DisplayTitle(message);

  di::JsonArray blocks;
  blocks.AddRaw(di::JsonObject()
                    .Add("type", "header")
                    .AddRaw("text", di::JsonObject()
                                        .Add("type", "plain_text")
                                        .Add("text", di::TruncateUtf8(title, kHeaderMax))
                                        .Add("emoji", true)
                                        .Json())
                    .Json());
  di::JsonArray fields;
  for (const auto& [name, value] : di::AlertFacts(message)) {
    fields.AddRaw(TextObject(
        "mrkdwn", di::TruncateUtf8(absl::StrCat("*", name, "*\n", Mrkdwn(value)), kFieldMax)));
  }
  blocks.AddRaw(di::JsonObject().Add("type", "section").AddRaw("fields", fields.Json()).Json());
  if (!a.description().empty()) blocks.AddRaw(Section(Mrkdwn(a.description())));
  if (a.type() == v1::ALERT_TYPE_RULE_ERROR) {
    blocks.AddRaw(Section(absl::StrCat(
        "*Error* `", CodeText(di::OneLine(di::TruncateUtf8(a.error().type(), 200))), "`\n```",
        CodeText(di::TruncateUtf8(a.error().message(), kContextMax)), "```")));
  }
  blocks.AddRaw(Section(absl::StrCat(
      "*Context*\n```", CodeText(di::TruncateUtf8(di::ContextJson(a), kContextMax)), "```")));
  if (!message.link.empty()) {
    blocks.AddRaw(di::JsonObject()
                      .Add("type", "actions")
                      .AddRaw("elements", di::JsonArray()
                                              .AddRaw(di::JsonObject()
                                                          .Add("type", "button")
                                                          .AddRaw("text", TextObject("plain_text",
                                                                                     "View alert"))
                                                          .Add("url", message.link)
                                                          .Json())
                                              .Json())
                      .Json());
  }
  req.body = di::JsonObject()
                 .Add("text", di::TruncateUtf8(title, kSectionMax))
                 .AddRaw("blocks", blocks.Json())
                 .Json();
  req.headers = di::JsonHeaders(message);
  return req;
}

}  // namespace

extern const DestinationKind kSlackDestination;
const DestinationKind kSlackDestination = {
    .name = "slack",
    .description = "posts a message to a Slack channel through an incoming webhook",
    .fields =
        {
            {"url", true, true, "the incoming webhook URL (https://hooks.slack.com/services/...)"},
        },
    .resolves = false,
    .accepts_headers = false,
    .validate = Validate,
    .build = Build,
};

}  // namespace pantherd::server
