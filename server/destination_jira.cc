// Kind "jira": creates a Jira issue (REST API v2, basic auth with an API
// token) per alert.
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "server/destination_kind.h"
#include "server/destination_util.h"

namespace pantherd::server {
namespace {

namespace di = destination_internal;

constexpr size_t kSummaryMax = 255;
constexpr size_t kDescriptionMax = 32000;
constexpr size_t kContextMax = 10000;

std::vector<std::string> Labels(const DestinationConfig& config) {
  std::vector<std::string> labels = {"pantherd"};
  std::set<std::string> seen = {"pantherd"};
  for (absl::string_view label :
       absl::StrSplit(di::Field(config, "labels", false), ',', absl::SkipWhitespace())) {
    std::string l(absl::StripAsciiWhitespace(label));
    if (seen.insert(l).second) labels.push_back(std::move(l));
  }
  return labels;
}

absl::Status Validate(const DestinationConfig& config) {
  if (absl::Status s = CheckHttpUrl("settings.url", di::Field(config, "url", false), false);
      !s.ok()) {
    return s;
  }
  const std::string project = di::Field(config, "project", false);
  bool ok = !project.empty() && project.size() <= 64 && absl::ascii_isupper(project[0]);
  for (const char c : project) {
    ok = ok && (absl::ascii_isupper(c) || absl::ascii_isdigit(c) || c == '_');
  }
  if (!ok) {
    return absl::InvalidArgumentError(
        absl::StrCat("settings.project: must be a Jira project key ([A-Z][A-Z0-9_]*), got \"",
                     absl::CHexEscape(di::TruncateUtf8(project, 64)), "\""));
  }
  const std::string user = di::Field(config, "user", false);
  for (const char c : user) {
    if (c == ':' || static_cast<unsigned char>(c) < 0x20 || c == 0x7F) {
      return absl::InvalidArgumentError(
          "settings.user: must be the account's email, without ':' or control characters");
    }
  }
  const std::string issue_type = di::Field(config, "issue_type", false);
  for (const char c : issue_type) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7F) {
      return absl::InvalidArgumentError("settings.issue_type: holds a control character");
    }
  }
  for (const std::string& label : Labels(config)) {
    for (const char c : label) {
      if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7F) {
        return absl::InvalidArgumentError(
            "settings.labels: Jira labels cannot contain spaces or control characters");
      }
    }
  }
  return absl::OkStatus();
}

std::string Description(const AlertMessage& message) {
  const v1::Alert& a = message.alert;
  std::string out = absl::StrCat(a.title(), "\n\n");
  for (const auto& [name, value] : di::AlertFacts(message)) {
    absl::StrAppend(&out, name, ": ", value, "\n");
  }
  absl::StrAppend(&out, "Alert id: ", a.id(), "\n");
  if (!message.link.empty()) absl::StrAppend(&out, "Link: ", message.link, "\n");
  if (!a.description().empty()) absl::StrAppend(&out, "\nDescription: ", a.description(), "\n");
  if (!a.runbook().empty()) absl::StrAppend(&out, "\nRunbook: ", a.runbook(), "\n");
  if (!a.reference().empty()) absl::StrAppend(&out, "Reference: ", a.reference(), "\n");
  if (a.type() == v1::ALERT_TYPE_RULE_ERROR) {
    absl::StrAppend(&out, "\nError: ", a.error().type(), ": ", a.error().message(), "\n");
  }
  absl::StrAppend(&out, "\nContext:\n{code}\n", di::TruncateUtf8(di::ContextJson(a), kContextMax),
                  "\n{code}\n");
  return di::TruncateUtf8(out, kDescriptionMax);
}

absl::StatusOr<OutgoingRequest> Build(const AlertMessage& message,
                                      const DestinationConfig& config) {
  // The delivery manager validated the config when it was stored; check
  // again so that a bad value can never reach a request (e.g. CR/LF in a
  // header).
  if (absl::Status s = Validate(config); !s.ok()) return s;
  const std::string base = di::Field(config, "url", false);
  const std::string project = di::Field(config, "project", false);
  const std::string user = di::Field(config, "user", false);
  const std::string token = di::Field(config, "api_token", true);
  for (const auto& [name, value] :
       {std::pair<const char*, const std::string&>{"settings.url", base},
        {"settings.project", project},
        {"settings.user", user},
        {"secrets.api_token", token}}) {
    if (value.empty())
      return absl::InvalidArgumentError(absl::StrCat(name, ": required by kind jira"));
  }
  OutgoingRequest req;
  absl::string_view site = base;
  while (absl::ConsumeSuffix(&site, "/")) {
  }
  req.url = absl::StrCat(site, "/rest/api/2/issue");
  req.headers = di::JsonHeaders(message);
  req.headers.emplace_back(
      "Authorization", absl::StrCat("Basic ", absl::Base64Escape(absl::StrCat(user, ":", token))));
  const std::string summary = di::TruncateUtf8(di::DisplayTitle(message), kSummaryMax);
  di::JsonObject fields;
  fields.AddRaw("project", di::JsonObject().Add("key", project).Json())
      .AddRaw("issuetype",
              di::JsonObject().Add("name", di::Field(config, "issue_type", false, "Task")).Json())
      .Add("summary", summary)
      .Add("description", Description(message))
      .Add("labels", Labels(config));
  req.body = di::JsonObject().AddRaw("fields", fields.Json()).Json();
  return req;
}

}  // namespace

extern const DestinationKind kJiraDestination;
const DestinationKind kJiraDestination = {
    .name = "jira",
    .description = "creates a Jira issue per alert (REST API v2, API token)",
    .fields =
        {
            {"url", false, true, "the Jira site, e.g. https://acme.atlassian.net"},
            {"project", false, true, "the project key, e.g. SEC"},
            {"issue_type", false, false, "the issue type (default Task)"},
            {"user", false, true, "the account's email (basic auth user)"},
            {"labels", false, false, "extra labels, comma-separated (pantherd is always set)"},
            {"api_token", true, true, "an API token of that account"},
        },
    .resolves = false,
    .accepts_headers = false,
    .validate = Validate,
    .build = Build,
};

}  // namespace pantherd::server
