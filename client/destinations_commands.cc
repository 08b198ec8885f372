// `pantherctl destinations ...`: where alerts are delivered (webhook, Slack,
// PagerDuty, Microsoft Teams, Jira), and `alerts resend`.
//
// Secrets (webhook URLs, routing keys, API tokens, HMAC keys, header values)
// are read from files or given as header values, sent once, and never
// printed: not in tables, not in JSON (the server never returns them) and not
// in error messages (which name the flag and the file, never the content).
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "client/commands.h"
#include "google/protobuf/util/time_util.h"
#include "pantherd/v1/detection_service.grpc.pb.h"
#include "proto/base/status_macros.h"

namespace pantherd::client {
namespace {

namespace v1 = ::pantherd::v1;
using DetectionStub = Connection::DetectionStub;
using google::protobuf::util::TimeUtil;

// The largest secret file read (a URL, key or token is far smaller).
constexpr size_t kMaxSecretFileBytes = 64 * 1024;

// What pantherctl knows of a kind, for checks before anything is sent and for
// --secret-file. The server has the authoritative list (`destinations kinds`).
struct KindSpec {
  const char* kind;
  // The secret --secret-file fills.
  const char* primary_secret;
  std::vector<std::string> secrets;
  std::vector<std::string> settings;
  // Custom headers (--header) are allowed.
  bool headers;
};

const std::vector<KindSpec>& Kinds() {
  static const auto* const kKinds = new std::vector<KindSpec>{
      {"webhook", "url", {"url", "hmac_secret"}, {"signature_header"}, true},
      {"slack", "url", {"url"}, {}, false},
      {"pagerduty", "routing_key", {"routing_key"}, {"url"}, false},
      {"teams", "url", {"url"}, {}, false},
      {"jira",
       "api_token",
       {"api_token"},
       {"url", "project", "issue_type", "user", "labels"},
       false},
  };
  return *kKinds;
}

const KindSpec* FindKind(absl::string_view kind) {
  for (const KindSpec& spec : Kinds()) {
    if (kind == spec.kind) return &spec;
  }
  return nullptr;
}

std::string KindList() {
  std::vector<std::string> names;
  for (const KindSpec& spec : Kinds()) names.push_back(spec.kind);
  return absl::StrJoin(names, ", ");
}

bool Contains(const std::vector<std::string>& names, absl::string_view name) {
  for (const std::string& n : names) {
    if (n == name) return true;
  }
  return false;
}

// The secret in `path`, without trailing whitespace (the usual final
// newline). `flag` names the flag in errors ("--secret-file", "--secret
// hmac_secret"); errors name the file, never its content.
absl::StatusOr<std::string> ReadSecretFile(absl::string_view flag, const std::string& path) {
  if (path.empty()) return absl::InvalidArgumentError(absl::StrCat(flag, ": no file given"));
  if (absl::StrContains(path, "://")) {
    // The secret itself (a webhook URL) in place of its file: not repeated.
    return absl::InvalidArgumentError(
        absl::StrCat(flag,
                     ": expected a file holding the secret, not the secret itself (a URL "
                     "was given; save it in a file and pass the file's path)"));
  }
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    return absl::InvalidArgumentError(absl::StrCat(flag, ": ", path, " is a directory"));
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    const int error = errno;
    return absl::InvalidArgumentError(
        absl::StrCat(flag, ": cannot read ", path,
                     error != 0 ? absl::StrCat(" (", std::strerror(error), ")") : std::string()));
  }
  std::string content(kMaxSecretFileBytes + 1, '\0');
  in.read(content.data(), static_cast<std::streamsize>(content.size()));
  if (in.bad()) {
    return absl::InvalidArgumentError(absl::StrCat(flag, ": cannot read ", path));
  }
  content.resize(static_cast<size_t>(in.gcount()));
  if (content.size() > kMaxSecretFileBytes) {
    return absl::InvalidArgumentError(absl::StrCat(flag, ": ", path, " is larger than ",
                                                   kMaxSecretFileBytes / 1024,
                                                   " KiB; it should hold only the secret"));
  }
  absl::StripTrailingAsciiWhitespace(&content);
  if (content.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(flag, ": ", path, " is empty"));
  }
  return content;
}

// The flags that set settings, secrets and headers (add and update).
struct ConfigFlags {
  std::string secret_file;
  std::vector<std::string> secrets;  // NAME=FILE
  std::string hmac_secret_file;
  std::vector<std::string> headers;         // "Name: value"
  std::vector<std::string> settings;        // KEY=VALUE
  std::vector<std::string> remove_secrets;  // update only
};

// The filter flags (add and update).
struct FilterFlags {
  std::string min_severity;
  std::vector<std::string> alert_types;
  std::vector<std::string> rule_ids;
  std::vector<std::string> log_types;
  bool clear = false;  // update only
  std::vector<CLI::Option*> options;

  bool given() const {
    if (clear) return true;
    for (const CLI::Option* option : options) {
      if (option->count() > 0) return true;
    }
    return false;
  }

  v1::DestinationFilters ToProto() const {
    v1::DestinationFilters filters;
    filters.set_min_severity(ParseSeverityWord(min_severity));
    std::set<v1::AlertType> seen;
    for (const std::string& word : alert_types) {
      const v1::AlertType type = ParseAlertTypeWord(word);
      if (seen.insert(type).second) filters.add_alert_types(type);
    }
    for (const std::string& id : rule_ids) filters.add_rule_ids(id);
    for (const std::string& type : log_types) filters.add_log_types(type);
    return filters;
  }
};

struct AddArgs {
  std::string kind;
  std::string name;
  ConfigFlags config;
  FilterFlags filters;
};

struct UpdateArgs {
  std::string destination;
  std::string name;
  CLI::Option* name_option = nullptr;
  ConfigFlags config;
  FilterFlags filters;
};

struct ResendArgs {
  std::string alert_id;
  std::string destination;
};

// --set KEY=VALUE, each once. An empty VALUE (removing a setting) only when
// `allow_empty` (update).
absl::StatusOr<std::map<std::string, std::string>> ParseSettings(
    const std::vector<std::string>& flags, bool allow_empty) {
  std::map<std::string, std::string> settings;
  for (const std::string& flag : flags) {
    const size_t eq = flag.find('=');
    if (eq == std::string::npos || eq == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("--set ", flag, ": expected KEY=VALUE (e.g. --set project=SEC)"));
    }
    std::string key(absl::StripAsciiWhitespace(flag.substr(0, eq)));
    std::string value(absl::StripAsciiWhitespace(flag.substr(eq + 1)));
    if (key.empty()) {
      return absl::InvalidArgumentError(absl::StrCat("--set ", flag, ": expected KEY=VALUE"));
    }
    if (value.empty() && !allow_empty) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--set ", key, ": empty value (an empty value removes a setting, with update)"));
    }
    if (!settings.emplace(key, value).second) {
      return absl::InvalidArgumentError(absl::StrCat("--set ", key, ": given twice"));
    }
  }
  return settings;
}

// An HTTP header name: RFC 9110 token characters.
bool IsHeaderName(absl::string_view name) {
  if (name.empty()) return false;
  for (char c : name) {
    if (absl::ascii_isalnum(static_cast<unsigned char>(c))) continue;
    if (std::strchr("!#$%&'*+-.^_`|~", c) == nullptr || c == '\0') return false;
  }
  return true;
}

// --header 'Name: value', each name once (case-insensitively). The value is
// a secret: errors never quote it. An empty value (removing a header) only
// when `allow_empty` (update).
absl::StatusOr<std::map<std::string, std::string>> ParseHeaders(
    const std::vector<std::string>& flags, bool allow_empty) {
  std::map<std::string, std::string> headers;
  std::set<std::string> lower_names;
  for (const std::string& flag : flags) {
    const size_t colon = flag.find(':');
    if (colon == std::string::npos) {
      // Without a colon the whole argument may be the secret: not quoted.
      return absl::InvalidArgumentError(
          "--header: expected 'Name: value' (e.g. --header 'X-Team: sec'); one argument has no "
          "':'");
    }
    std::string name(absl::StripAsciiWhitespace(flag.substr(0, colon)));
    std::string value(absl::StripAsciiWhitespace(flag.substr(colon + 1)));
    if (!IsHeaderName(name)) {
      return absl::InvalidArgumentError(
          absl::StrCat("--header: \"", name,
                       "\" is not a header name (letters, digits and !#$%&'*+-.^_`|~ only)"));
    }
    if (value.empty() && !allow_empty) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--header ", name, ": empty value (an empty value removes a header, with update)"));
    }
    if (!lower_names.insert(absl::AsciiStrToLower(name)).second) {
      return absl::InvalidArgumentError(absl::StrCat("--header ", name, ": given twice"));
    }
    headers.emplace(name, value);
  }
  return headers;
}

// Adds secret `name` from `flag`; refuses a name given twice.
absl::Status PutSecret(std::map<std::string, std::string>& secrets, const std::string& name,
                       absl::string_view flag, std::string value) {
  if (!secrets.emplace(name, std::move(value)).second) {
    return absl::InvalidArgumentError(absl::StrCat(flag, ": the ", name, " secret is given twice"));
  }
  return absl::OkStatus();
}

// The secrets of --secret NAME=FILE, --hmac-secret-file and (update)
// --remove-secret, read from their files. --secret-file is added by the
// caller, which knows the kind.
absl::StatusOr<std::map<std::string, std::string>> ReadSecrets(const ConfigFlags& flags) {
  std::map<std::string, std::string> secrets;
  for (const std::string& flag : flags.secrets) {
    const size_t eq = flag.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == flag.size()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--secret ", flag, ": expected NAME=FILE (e.g. --secret hmac_secret=key.txt)"));
    }
    const std::string name = flag.substr(0, eq);
    const std::string flag_name = absl::StrCat("--secret ", name);
    PANTHERD_ASSIGN_OR_RETURN(std::string value, ReadSecretFile(flag_name, flag.substr(eq + 1)));
    PANTHERD_RETURN_IF_ERROR(PutSecret(secrets, name, flag_name, std::move(value)));
  }
  if (!flags.hmac_secret_file.empty()) {
    PANTHERD_ASSIGN_OR_RETURN(std::string value,
                              ReadSecretFile("--hmac-secret-file", flags.hmac_secret_file));
    PANTHERD_RETURN_IF_ERROR(
        PutSecret(secrets, "hmac_secret", "--hmac-secret-file", std::move(value)));
  }
  for (const std::string& name : flags.remove_secrets) {
    PANTHERD_RETURN_IF_ERROR(PutSecret(secrets, name, absl::StrCat("--remove-secret ", name), ""));
  }
  return secrets;
}

// Refuses settings and secrets that `kind` keeps on the other side: a secret
// given with --set would sit in the process list and the shell history. The
// value is never quoted.
absl::Status CheckAgainstKind(const KindSpec& kind,
                              const std::map<std::string, std::string>& settings,
                              const std::map<std::string, std::string>& secrets,
                              const ConfigFlags& flags) {
  for (const auto& [key, value] : settings) {
    if (Contains(kind.secrets, key)) {
      return absl::InvalidArgumentError(
          absl::StrCat("--set ", key, ": ", key, " is a secret of ", kind.kind,
                       " destinations; put it in a file and use ",
                       key == kind.primary_secret ? std::string("--secret-file FILE")
                                                  : absl::StrCat("--secret ", key, "=FILE")));
    }
  }
  for (const auto& [name, value] : secrets) {
    if (Contains(kind.settings, name) && !Contains(kind.secrets, name)) {
      return absl::InvalidArgumentError(absl::StrCat("--secret ", name, ": ", name,
                                                     " is a setting of ", kind.kind,
                                                     " destinations; use --set ", name, "=VALUE"));
    }
  }
  if (!kind.headers && !flags.headers.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--header: custom headers are for webhook destinations only, not ", kind.kind));
  }
  if (!flags.hmac_secret_file.empty() && !Contains(kind.secrets, "hmac_secret")) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--hmac-secret-file: HMAC signing is for webhook destinations only, not ", kind.kind));
  }
  return absl::OkStatus();
}

std::string AlertTypeName(int type) {
  return ShortEnumName(v1::AlertType_Name(static_cast<v1::AlertType>(type)), "ALERT_TYPE_");
}

std::string AlertTypes(const v1::DestinationFilters& filters) {
  std::vector<std::string> names;
  for (int type : filters.alert_types()) names.push_back(AlertTypeName(type));
  return absl::StrJoin(names, ",");
}

// The filters of a listing in one cell: "types=RULE rules=a,b logs=X", "-"
// for none.
std::string FiltersSummary(const v1::DestinationFilters& filters) {
  std::vector<std::string> parts;
  if (filters.alert_types_size() > 0) parts.push_back(absl::StrCat("types=", AlertTypes(filters)));
  if (filters.rule_ids_size() > 0) {
    parts.push_back(absl::StrCat("rules=", absl::StrJoin(filters.rule_ids(), ",")));
  }
  if (filters.log_types_size() > 0) {
    parts.push_back(absl::StrCat("log_types=", absl::StrJoin(filters.log_types(), ",")));
  }
  return parts.empty() ? std::string("-") : absl::StrJoin(parts, " ");
}

std::string SeverityText(v1::Severity severity) {
  return ShortEnumName(v1::Severity_Name(severity), "SEVERITY_");
}

// "key=value, key=value" (sorted), "-" for none.
std::string SettingsText(const google::protobuf::Map<std::string, std::string>& settings) {
  std::map<std::string, std::string> sorted(settings.begin(), settings.end());
  std::vector<std::string> parts;
  for (const auto& [key, value] : sorted) parts.push_back(absl::StrCat(key, "=", value));
  return parts.empty() ? std::string("-") : absl::StrJoin(parts, ", ");
}

// "url: (set), hmac_secret: (set)", "-" for none.
std::string SetNames(const google::protobuf::RepeatedPtrField<std::string>& names) {
  std::vector<std::string> parts;
  for (const std::string& name : names) parts.push_back(absl::StrCat(name, ": (set)"));
  return parts.empty() ? std::string("-") : absl::StrJoin(parts, ", ");
}

std::vector<std::pair<std::string, std::string>> DestinationFields(const v1::Destination& d) {
  const v1::DestinationFilters& f = d.filters();
  return {
      {"ID", OrDash(d.id())},
      {"Name", OrDash(d.name())},
      {"Kind", OrDash(d.kind())},
      {"Settings", SettingsText(d.settings())},
      {"Secrets", SetNames(d.secrets_set())},
      {"Headers", SetNames(d.header_names())},
      {"Min severity", f.min_severity() == v1::SEVERITY_UNSPECIFIED
                           ? std::string("any")
                           : SeverityText(f.min_severity())},
      {"Alert types",
       f.alert_types_size() == 0 ? std::string("RULE,RULE_ERROR (default)") : AlertTypes(f)},
      {"Rules", f.rule_ids_size() == 0 ? std::string("any") : absl::StrJoin(f.rule_ids(), ",")},
      {"Log types",
       f.log_types_size() == 0 ? std::string("any") : absl::StrJoin(f.log_types(), ",")},
      {"Created", FormatTimestamp(d.created_time())},
      {"Created by", OrDash(d.created_by())},
      {"Updated", FormatTimestamp(d.updated_time())},
  };
}

void PrintDestination(const v1::Destination& d, std::ostream& out) {
  PrintFields(DestinationFields(d), out);
}

absl::Status AddDestination(const AddArgs& args, CommandEnv& env) {
  const KindSpec* kind = FindKind(args.kind);
  if (kind == nullptr) {  // CLI11 checked it; kept for safety.
    return absl::InvalidArgumentError(
        absl::StrCat("unknown kind \"", args.kind, "\" (kinds: ", KindList(), ")"));
  }
  v1::AddDestinationRequest request;
  request.set_name(args.name);
  request.set_kind(kind->kind);
  PANTHERD_ASSIGN_OR_RETURN(auto settings, ParseSettings(args.config.settings, false));
  PANTHERD_ASSIGN_OR_RETURN(auto headers, ParseHeaders(args.config.headers, false));
  // Checked before any file is read, so that a misplaced secret is refused
  // without touching it.
  PANTHERD_RETURN_IF_ERROR(CheckAgainstKind(*kind, settings, {}, args.config));
  PANTHERD_ASSIGN_OR_RETURN(auto secrets, ReadSecrets(args.config));
  PANTHERD_RETURN_IF_ERROR(CheckAgainstKind(*kind, {}, secrets, args.config));
  if (!args.config.secret_file.empty()) {
    PANTHERD_ASSIGN_OR_RETURN(std::string value,
                              ReadSecretFile("--secret-file", args.config.secret_file));
    PANTHERD_RETURN_IF_ERROR(
        PutSecret(secrets, kind->primary_secret, "--secret-file", std::move(value)));
  }
  if (secrets.count(kind->primary_secret) == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("--secret-file FILE is required: a file holding the ", kind->kind,
                     " destination's ", kind->primary_secret));
  }
  request.mutable_settings()->insert(settings.begin(), settings.end());
  request.mutable_secrets()->insert(secrets.begin(), secrets.end());
  request.mutable_headers()->insert(headers.begin(), headers.end());
  *request.mutable_filters() = args.filters.ToProto();

  PANTHERD_ASSIGN_OR_RETURN(Connection * conn, env.Connect());
  v1::AddDestinationResponse response;
  PANTHERD_RETURN_IF_ERROR(conn->Call("AddDestination", &DetectionStub::AddDestination,
                                      conn->detection(), request, &response));
  if (env.json()) return PrintJson(response, env.out());
  PrintDestination(response.destination(), env.out());
  return absl::OkStatus();
}

absl::Status ListDestinations(CommandEnv& env) {
  PANTHERD_ASSIGN_OR_RETURN(Connection * conn, env.Connect());
  v1::ListDestinationsResponse response;
  PANTHERD_RETURN_IF_ERROR(conn->Call("ListDestinations", &DetectionStub::ListDestinations,
                                      conn->detection(), v1::ListDestinationsRequest(), &response));
  if (env.json()) return PrintJson(response, env.out());
  Table table({"ID", "NAME", "KIND", "MIN-SEVERITY", "FILTERS"});
  for (const v1::Destination& d : response.destinations()) {
    table.AddRow({OrDash(d.id()), OrDash(d.name()), OrDash(d.kind()),
                  SeverityText(d.filters().min_severity()), FiltersSummary(d.filters())});
  }
  env.PrintTable(table);
  return absl::OkStatus();
}

absl::Status GetDestination(const std::string& id, CommandEnv& env) {
  PANTHERD_ASSIGN_OR_RETURN(Connection * conn, env.Connect());
  v1::GetDestinationRequest request;
  request.set_destination(id);
  v1::GetDestinationResponse response;
  PANTHERD_RETURN_IF_ERROR(conn->Call("GetDestination", &DetectionStub::GetDestination,
                                      conn->detection(), request, &response));
  if (env.json()) return PrintJson(response, env.out());
  std::vector<std::pair<std::string, std::string>> fields =
      DestinationFields(response.destination());
  const v1::DestinationStats& stats = response.stats();
  std::string oldest = "-";
  if (stats.has_oldest_pending_time() && stats.pending() > 0) {
    const absl::Time t =
        absl::FromUnixMillis(TimeUtil::TimestampToMilliseconds(stats.oldest_pending_time()));
    oldest = absl::StrCat(FormatSeconds(absl::ToInt64Seconds(absl::Now() - t)), " ago (",
                          FormatTimestamp(stats.oldest_pending_time()), ")");
  }
  fields.insert(fields.end(), {{"Pending", absl::StrCat(stats.pending())},
                               {"Oldest pending", oldest},
                               {"Delivered", absl::StrCat(stats.delivered())},
                               {"Failed", absl::StrCat(stats.failed())},
                               {"Retried", absl::StrCat(stats.retried())}});
  PrintFields(fields, env.out());
  return absl::OkStatus();
}

absl::Status UpdateDestination(const UpdateArgs& args, CommandEnv& env) {
  const ConfigFlags& config = args.config;
  const bool rename = args.name_option != nullptr && args.name_option->count() > 0;
  if (!rename && config.secret_file.empty() && config.secrets.empty() &&
      config.hmac_secret_file.empty() && config.headers.empty() && config.settings.empty() &&
      config.remove_secrets.empty() && !args.filters.given()) {
    return absl::InvalidArgumentError(
        "nothing to change: give --name, --secret-file, --secret, --hmac-secret-file, "
        "--remove-secret, --set, --header or a filter flag (--min-severity, --alert-type, --rule, "
        "--log-type, --clear-filters)");
  }
  if (args.filters.clear && args.filters.given() &&
      (!args.filters.min_severity.empty() || !args.filters.alert_types.empty() ||
       !args.filters.rule_ids.empty() || !args.filters.log_types.empty())) {
    return absl::InvalidArgumentError(
        "--clear-filters: give it alone, or the new filters without it (they replace the old "
        "ones as a whole)");
  }
  v1::UpdateDestinationRequest request;
  request.set_destination(args.destination);
  if (rename) request.set_name(args.name);
  PANTHERD_ASSIGN_OR_RETURN(auto settings, ParseSettings(config.settings, true));
  PANTHERD_ASSIGN_OR_RETURN(auto headers, ParseHeaders(config.headers, true));

  PANTHERD_ASSIGN_OR_RETURN(Connection * conn, env.Connect());
  // --secret-file fills the kind's primary secret, and --set must not carry
  // a secret of the kind: both need the kind, which the server knows.
  const KindSpec* kind = nullptr;
  if (!config.secret_file.empty() || !settings.empty()) {
    v1::GetDestinationRequest get;
    get.set_destination(args.destination);
    v1::GetDestinationResponse got;
    PANTHERD_RETURN_IF_ERROR(
        conn->Call("GetDestination", &DetectionStub::GetDestination, conn->detection(), get, &got));
    kind = FindKind(got.destination().kind());
    if (kind == nullptr && !config.secret_file.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--secret-file: pantherctl does not know the secrets of kind \"",
                       got.destination().kind(),
                       "\"; use --secret NAME=FILE (see `pantherctl destinations "
                       "kinds`)"));
    }
  }
  if (kind != nullptr) PANTHERD_RETURN_IF_ERROR(CheckAgainstKind(*kind, settings, {}, config));
  PANTHERD_ASSIGN_OR_RETURN(auto secrets, ReadSecrets(config));
  if (kind != nullptr) PANTHERD_RETURN_IF_ERROR(CheckAgainstKind(*kind, {}, secrets, config));
  if (!config.secret_file.empty()) {
    PANTHERD_ASSIGN_OR_RETURN(std::string value,
                              ReadSecretFile("--secret-file", config.secret_file));
    PANTHERD_RETURN_IF_ERROR(
        PutSecret(secrets, kind->primary_secret, "--secret-file", std::move(value)));
  }
  request.mutable_settings()->insert(settings.begin(), settings.end());
  request.mutable_secrets()->insert(secrets.begin(), secrets.end());
  request.mutable_headers()->insert(headers.begin(), headers.end());
  if (args.filters.given()) *request.mutable_filters() = args.filters.ToProto();

  v1::UpdateDestinationResponse response;
  PANTHERD_RETURN_IF_ERROR(conn->Call("UpdateDestination", &DetectionStub::UpdateDestination,
                                      conn->detection(), request, &response));
  if (env.json()) return PrintJson(response, env.out());
  PrintDestination(response.destination(), env.out());
  return absl::OkStatus();
}

absl::Status TestDestination(const std::string& id, CommandEnv& env) {
  PANTHERD_ASSIGN_OR_RETURN(Connection * conn, env.Connect());
  v1::TestDestinationRequest request;
  request.set_destination(id);
  v1::TestDestinationResponse response;
  PANTHERD_RETURN_IF_ERROR(conn->Call("TestDestination", &DetectionStub::TestDestination,
                                      conn->detection(), request, &response));
  const std::string answer = response.http_status() != 0
                                 ? absl::StrCat("HTTP ", response.http_status())
                                 : std::string("no HTTP answer");
  const std::string summary = absl::StrCat(answer, " in ", response.latency_ms(), " ms");
  if (env.json()) {
    PANTHERD_RETURN_IF_ERROR(PrintJson(response, env.out()));
  } else if (response.ok()) {
    env.out() << "ok: " << summary << '\n';
  } else {
    env.out() << "failed: " << summary << '\n';
    std::vector<std::pair<std::string, std::string>> fields = {{"Error", OrDash(response.error())}};
    if (!response.response_body().empty())
      fields.emplace_back("Response", response.response_body());
    PrintFields(fields, env.out());
  }
  if (!response.ok()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "test delivery to ", id, " failed: ", summary,
        response.error().empty() ? std::string() : absl::StrCat(": ", response.error())));
  }
  return absl::OkStatus();
}

absl::Status RemoveDestination(const std::string& id, CommandEnv& env) {
  PANTHERD_ASSIGN_OR_RETURN(Connection * conn, env.Connect());
  v1::RemoveDestinationRequest request;
  request.set_destination(id);
  v1::RemoveDestinationResponse response;
  PANTHERD_RETURN_IF_ERROR(conn->Call("RemoveDestination", &DetectionStub::RemoveDestination,
                                      conn->detection(), request, &response));
  if (env.json()) return PrintJson(response, env.out());
  env.out() << "Removed destination " << EscapeForTerminal(id) << "; " << response.pending_failed()
            << (response.pending_failed() == 1 ? " pending delivery" : " pending deliveries")
            << " marked failed\n";
  return absl::OkStatus();
}

absl::Status ListKinds(CommandEnv& env) {
  PANTHERD_ASSIGN_OR_RETURN(Connection * conn, env.Connect());
  v1::ListDestinationsResponse response;
  PANTHERD_RETURN_IF_ERROR(conn->Call("ListDestinations", &DetectionStub::ListDestinations,
                                      conn->detection(), v1::ListDestinationsRequest(), &response));
  // Only the kinds: this command is about what can be added.
  response.clear_destinations();
  if (env.json()) return PrintJson(response, env.out());
  std::ostream& out = env.out();
  bool first = true;
  for (const v1::DestinationKindInfo& info : response.kinds()) {
    if (!first) out << '\n';
    first = false;
    out << EscapeForTerminal(OrDash(info.kind()));
    if (!info.description().empty()) out << ": " << EscapeForTerminal(info.description());
    out << '\n';
    std::vector<std::string> notes;
    if (const KindSpec* spec = FindKind(info.kind()); spec != nullptr) {
      notes.push_back(absl::StrCat("--secret-file fills ", spec->primary_secret));
      if (spec->headers) notes.push_back("custom headers with --header 'Name: value'");
    }
    if (info.resolves()) notes.push_back("resolving an alert is sent on");
    if (!notes.empty()) out << "  (" << EscapeForTerminal(absl::StrJoin(notes, "; ")) << ")\n";
    Table table({});
    for (const v1::DestinationField& field : info.fields()) {
      table.AddRow({field.name(), field.secret() ? "secret" : "setting",
                    field.required() ? "required" : "optional", field.help()});
    }
    std::string text = table.ToString();
    for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
      out << "  " << line << '\n';
    }
  }
  if (response.kinds_size() == 0) out << "The server lists no destination kinds\n";
  return absl::OkStatus();
}

absl::Status ResendAlert(const ResendArgs& args, CommandEnv& env) {
  PANTHERD_ASSIGN_OR_RETURN(Connection * conn, env.Connect());
  v1::ResendAlertRequest request;
  request.set_alert_id(args.alert_id);
  request.set_destination(args.destination);
  v1::ResendAlertResponse response;
  PANTHERD_RETURN_IF_ERROR(conn->Call("ResendAlert", &DetectionStub::ResendAlert, conn->detection(),
                                      request, &response));
  if (env.json()) return PrintJson(response, env.out());
  const int n = response.deliveries_size();
  env.out() << "Re-sending alert " << EscapeForTerminal(args.alert_id) << ": " << n
            << (n == 1 ? " delivery" : " deliveries") << " pending\n";
  PrintDeliveries(response.deliveries(), env.out());
  return absl::OkStatus();
}

// Adds the filter flags to `command`, bound to `flags`.
void AddFilterOptions(CLI::App& command, FilterFlags& flags, bool update) {
  const std::string replace =
      update ? " (any filter flag replaces all the filters)" : std::string();
  flags.options.push_back(command
                              .add_option("--min-severity,--severity", flags.min_severity,
                                          "Only alerts at least this severe" + replace)
                              ->type_name("SEVERITY")
                              ->check(CLI::IsMember(SeverityWords(), CLI::ignore_case)));
  flags.options.push_back(
      command
          .add_option(
              "--alert-type", flags.alert_types,
              "Only alerts of this type, repeatable (default: rule and rule_error)" + replace)
          ->type_name("TYPE")
          ->check(CLI::IsMember(AlertTypeWords(), CLI::ignore_case)));
  flags.options.push_back(
      command
          .add_option("--rule", flags.rule_ids, "Only alerts of this rule, repeatable" + replace)
          ->type_name("ID"));
  flags.options.push_back(command
                              .add_option("--log-type", flags.log_types,
                                          "Only alerts with this log type, repeatable" + replace)
                              ->type_name("TYPE"));
  if (update) {
    command.add_flag("--clear-filters", flags.clear,
                     "Remove every filter (the destination then receives every alert routed by "
                     "filters)");
  }
}

// Adds the flags that set secrets, settings and headers.
void AddConfigOptions(CLI::App& command, ConfigFlags& flags, bool update) {
  command
      .add_option("--secret-file", flags.secret_file,
                  update ? "Replace the kind's main secret (webhook, slack, teams: url; "
                           "pagerduty: routing_key; jira: api_token) with the one in this file"
                         : "A file holding the kind's main secret (webhook, slack, teams: url; "
                           "pagerduty: routing_key; jira: api_token); trailing whitespace is "
                           "dropped, at most 64 KiB")
      ->type_name("FILE");
  command
      .add_option("--secret", flags.secrets,
                  "Another secret from a file, as NAME=FILE (e.g. hmac_secret=key.txt); "
                  "repeatable")
      ->type_name("NAME=FILE");
  command
      .add_option("--hmac-secret-file", flags.hmac_secret_file,
                  "Webhook: a file holding the key each request body is signed with (the "
                  "hmac_secret secret)")
      ->type_name("FILE");
  command
      .add_option("--header", flags.headers,
                  update ? "Webhook: set a custom header, 'Name: value' (the value is stored as a "
                           "secret; 'Name:' removes it); repeatable"
                         : "Webhook: a custom header, 'Name: value' (the value is stored as a "
                           "secret, but is visible in the process list); repeatable")
      ->type_name("'NAME: VALUE'");
  command
      .add_option("--set", flags.settings,
                  update ? "Change a setting, KEY=VALUE ('KEY=' removes it); repeatable"
                         : "A setting, KEY=VALUE (e.g. project=SEC for jira; see `pantherctl "
                           "destinations kinds`); repeatable")
      ->type_name("KEY=VALUE");
  if (update) {
    command.add_option("--remove-secret", flags.remove_secrets, "Remove this secret; repeatable")
        ->type_name("NAME");
  }
}

}  // namespace

void PrintDeliveries(const google::protobuf::RepeatedPtrField<v1::AlertDelivery>& deliveries,
                     std::ostream& out) {
  if (deliveries.empty()) {
    out << "\nDeliveries: none\n";
    return;
  }
  out << "\nDeliveries:\n";
  Table table({"DESTINATION", "KIND", "ACTION", "STATUS", "ATTEMPTS", "HTTP", "WHEN", "ROUTED BY",
               "LAST ERROR"});
  for (const v1::AlertDelivery& d : deliveries) {
    std::string when = "-";
    switch (d.status()) {
      case v1::DELIVERY_STATUS_PENDING:
        if (d.has_next_attempt_time()) {
          when = absl::StrCat("next ", FormatTimestamp(d.next_attempt_time()));
        }
        break;
      case v1::DELIVERY_STATUS_DELIVERED:
        if (d.has_delivered_time()) {
          when = absl::StrCat("delivered ", FormatTimestamp(d.delivered_time()));
        }
        break;
      default:
        if (d.has_last_attempt_time()) {
          when = absl::StrCat("last ", FormatTimestamp(d.last_attempt_time()));
        }
        break;
    }
    table.AddRow({OrDash(d.destination_name().empty() ? d.destination_id() : d.destination_name()),
                  OrDash(d.kind()), OrDash(d.action()),
                  ShortEnumName(v1::DeliveryStatus_Name(d.status()), "DELIVERY_STATUS_"),
                  absl::StrCat(d.attempts()),
                  d.last_http_status() != 0 ? absl::StrCat(d.last_http_status()) : "-", when,
                  OrDash(d.routed_by()), OrDash(d.last_error())});
  }
  std::string text = table.ToString();
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    out << "  " << line << '\n';
  }
}

void AddAlertsResendCommand(CLI::App& alerts, CommandRegistry& registry) {
  auto args = std::make_shared<ResendArgs>();
  CLI::App* resend = registry.AddCommand(
      alerts, "resend",
      "Deliver an alert again now, to every destination it was routed to or to one",
      [args](CommandEnv& env) { return ResendAlert(*args, env); });
  resend->add_option("ID", args->alert_id, "Alert id")->type_name("")->required();
  resend->add_option("--destination", args->destination, "Only to this destination (id or name)")
      ->type_name("ID|NAME");
}

void AddDestinationsCommands(CLI::App& root, CommandRegistry& registry) {
  CLI::App* group = registry.AddGroup(
      root, "destinations",
      "Manage alert destinations (webhook, Slack, PagerDuty, Microsoft Teams, Jira)");

  auto add_args = std::make_shared<AddArgs>();
  CLI::App* add =
      registry.AddCommand(*group, "add", "Add a destination that alerts are delivered to",
                          [add_args](CommandEnv& env) { return AddDestination(*add_args, env); });
  add->add_option("KIND", add_args->kind, absl::StrCat("The kind: ", KindList()))
      ->type_name("")
      ->required()
      ->check(CLI::Validator(
          [](std::string& kind) {
            return FindKind(kind) != nullptr
                       ? std::string()
                       : absl::StrCat("unknown kind \"", kind, "\" (kinds: ", KindList(), ")");
          },
          "", "KIND"));
  add->add_option("--name", add_args->name, "A unique name (rules name destinations by name or id)")
      ->required();
  AddConfigOptions(*add, add_args->config, /*update=*/false);
  AddFilterOptions(*add, add_args->filters, /*update=*/false);

  registry.AddListCommand(*group, "list", "List destinations and their filters", ListDestinations);

  auto get_id = std::make_shared<std::string>();
  CLI::App* get = registry.AddCommand(
      *group, "get", "Show one destination: settings, secret names, filters and delivery counts",
      [get_id](CommandEnv& env) { return GetDestination(*get_id, env); });
  get->add_option("ID", *get_id, "Destination id or name")->type_name("")->required();

  auto update_args = std::make_shared<UpdateArgs>();
  CLI::App* update = registry.AddCommand(
      *group, "update", "Change a destination's name, secrets, settings, headers or filters",
      [update_args](CommandEnv& env) { return UpdateDestination(*update_args, env); });
  update->add_option("ID", update_args->destination, "Destination id or name")
      ->type_name("")
      ->required();
  update_args->name_option =
      update->add_option("--name", update_args->name, "A new name")->type_name("NAME");
  AddConfigOptions(*update, update_args->config, /*update=*/true);
  AddFilterOptions(*update, update_args->filters, /*update=*/true);

  auto test_id = std::make_shared<std::string>();
  CLI::App* test = registry.AddCommand(
      *group, "test",
      "Send a sample alert to a destination and show the answer; exit 1 when it fails",
      [test_id](CommandEnv& env) { return TestDestination(*test_id, env); });
  test->add_option("ID", *test_id, "Destination id or name")->type_name("")->required();

  auto remove_id = std::make_shared<std::string>();
  CLI::App* remove = registry.AddCommand(
      *group, "remove",
      "Delete a destination (its pending deliveries are marked failed; alerts stay)",
      [remove_id](CommandEnv& env) { return RemoveDestination(*remove_id, env); });
  remove->add_option("ID", *remove_id, "Destination id or name")->type_name("")->required();

  registry.AddCommand(*group, "kinds", "List the destination kinds and their fields", ListKinds);
}

}  // namespace pantherd::client
