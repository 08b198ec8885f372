// `pantherctl sources ...`: event sources and their polling state.
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
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

struct AddOktaArgs {
  std::string label;
  std::string domain;
  std::string token_file;
  std::string since;
  std::string interval;
  std::string base_url;
  bool no_check = false;
};

struct PauseArgs {
  std::string id;
  std::string token_file;
};

std::string StateName(v1::SourceState state) {
  return ShortEnumName(v1::SourceState_Name(state), "SOURCE_STATE_");
}

void PrintSource(const v1::Source& s, std::ostream& out) {
  PrintFields({{"ID", s.id()},
               {"Label", OrDash(s.label())},
               {"Kind", OrDash(s.kind())},
               {"State", StateName(s.state())},
               {"Domain", OrDash(s.domain())},
               {"Base URL", OrDash(s.base_url())},
               {"Poll interval", s.has_poll_interval() ? FormatDuration(s.poll_interval()) : "-"},
               {"Created", FormatTimestamp(s.created_time())},
               {"Last poll", FormatTimestamp(s.last_poll_time())},
               {"Last success", FormatTimestamp(s.last_success_time())},
               {"Events", absl::StrCat(s.events_ingested())},
               {"Duplicates", absl::StrCat(s.events_duplicate())},
               {"Rejected", absl::StrCat(s.events_rejected())},
               {"Lag", s.has_lag() ? FormatDuration(s.lag()) : std::string("-")},
               {"Last error", OrDash(s.last_error())}},
              out);
}

// A connection check (AddSource, TestSource) as "Check: ..." lines.
void PrintCheck(const v1::SourceCheck& check, std::ostream& out) {
  std::string result = check.ok() ? "OK" : "FAILED";
  if (!check.cause().empty()) absl::StrAppend(&result, " (", check.cause(), ")");
  std::vector<std::pair<std::string, std::string>> fields = {
      {"Check", result}, {"Check detail", OrDash(check.message())}};
  if (check.http_status() != 0)
    fields.emplace_back("HTTP status", absl::StrCat(check.http_status()));
  if (check.has_latency()) {
    fields.emplace_back(
        "Latency",
        absl::StrCat(google::protobuf::util::TimeUtil::DurationToMilliseconds(check.latency()),
                     "ms"));
  }
  PrintFields(fields, out);
}

// The token in `path`, without surrounding whitespace (a trailing newline is
// usual). The error never quotes the file's content.
absl::StatusOr<std::string> ReadTokenFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::InvalidArgumentError(absl::StrCat("--token-file: cannot read ", path));
  }
  std::stringstream content;
  content << in.rdbuf();
  std::string token(absl::StripAsciiWhitespace(content.str()));
  if (token.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("--token-file: ", path, " is empty"));
  }
  return token;
}

// --interval: a duration such as 60s, 5m or 1m30s (a bare number is seconds).
absl::StatusOr<absl::Duration> ParseInterval(const std::string& text) {
  absl::Duration d;
  int64_t seconds = 0;
  if (absl::SimpleAtoi(text, &seconds)) return absl::Seconds(seconds);
  if (!absl::ParseDuration(text, &d)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--interval: \"", text, "\" is not a duration (e.g. 60s, 5m)"));
  }
  return d;
}

absl::Status ListSources(CommandEnv& env) {
  PANTHERD_ASSIGN_OR_RETURN(Connection * conn, env.Connect());
  v1::ListSourcesResponse response;
  PANTHERD_RETURN_IF_ERROR(conn->Call("ListSources", &DetectionStub::ListSources, conn->detection(),
                                      v1::ListSourcesRequest(), &response));
  if (env.json()) return PrintJson(response, env.out());

  Table table(
      {"ID", "LABEL", "KIND", "STATE", "DOMAIN", "EVENTS", "LAST POLL", "LAG", "LAST ERROR"});
  for (const v1::Source& source : response.sources()) {
    table.AddRow({source.id(), OrDash(source.label()), OrDash(source.kind()),
                  StateName(source.state()), OrDash(source.domain()),
                  absl::StrCat(source.events_ingested()), FormatTimestamp(source.last_poll_time()),
                  source.has_lag() ? FormatDuration(source.lag()) : std::string("-"),
                  OrDash(source.last_error())});
  }
  env.PrintTable(table);
  return absl::OkStatus();
}

absl::Status AddOkta(const AddOktaArgs& args, CommandEnv& env) {
  v1::AddSourceRequest request;
  request.set_label(args.label);
  v1::OktaSourceConfig* okta = request.mutable_okta();
  okta->set_domain(args.domain);
  okta->set_base_url(args.base_url);
  PANTHERD_ASSIGN_OR_RETURN(std::string token, ReadTokenFile(args.token_file));
  okta->set_api_token(token);
  if (!args.interval.empty()) {
    PANTHERD_ASSIGN_OR_RETURN(absl::Duration interval, ParseInterval(args.interval));
    *okta->mutable_poll_interval() =
        TimeUtil::MicrosecondsToDuration(absl::ToInt64Microseconds(interval));
  }
  if (!args.since.empty()) {
    PANTHERD_ASSIGN_OR_RETURN(absl::Time since, ParseTimeOrAge("--since", args.since, absl::Now()));
    *okta->mutable_start_time() = TimeUtil::MicrosecondsToTimestamp(absl::ToUnixMicros(since));
  }
  request.set_skip_connection_check(args.no_check);
  PANTHERD_ASSIGN_OR_RETURN(Connection * conn, env.Connect());
  v1::AddSourceResponse response;
  PANTHERD_RETURN_IF_ERROR(
      conn->Call("AddSource", &DetectionStub::AddSource, conn->detection(), request, &response));
  for (const std::string& assumption : response.assumptions()) {
    env.err() << "pantherctl: note: " << EscapeForTerminal(assumption) << '\n';
  }
  if (env.json()) return PrintJson(response, env.out());
  PrintSource(response.source(), env.out());
  if (response.has_check()) PrintCheck(response.check(), env.out());
  return absl::OkStatus();
}

absl::Status TestSource(const std::string& id, CommandEnv& env) {
  PANTHERD_ASSIGN_OR_RETURN(Connection * conn, env.Connect());
  v1::TestSourceRequest request;
  request.set_id(id);
  v1::TestSourceResponse response;
  PANTHERD_RETURN_IF_ERROR(
      conn->Call("TestSource", &DetectionStub::TestSource, conn->detection(), request, &response));
  if (env.json()) {
    PANTHERD_RETURN_IF_ERROR(PrintJson(response, env.out()));
  } else {
    PrintFields({{"ID", OrDash(response.source().id())},
                 {"Label", OrDash(response.source().label())},
                 {"Domain", OrDash(response.source().domain())}},
                env.out());
    PrintCheck(response.check(), env.out());
  }
  if (!response.check().ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat("connection check failed: ", response.check().message()));
  }
  return absl::OkStatus();
}

absl::Status SetPaused(const PauseArgs& args, bool paused, CommandEnv& env) {
  v1::SetSourcePausedRequest request;
  request.set_id(args.id);
  request.set_paused(paused);
  if (!args.token_file.empty()) {
    PANTHERD_ASSIGN_OR_RETURN(std::string token, ReadTokenFile(args.token_file));
    request.set_api_token(token);
  }
  PANTHERD_ASSIGN_OR_RETURN(Connection * conn, env.Connect());
  v1::SetSourcePausedResponse response;
  PANTHERD_RETURN_IF_ERROR(conn->Call("SetSourcePaused", &DetectionStub::SetSourcePaused,
                                      conn->detection(), request, &response));
  if (env.json()) return PrintJson(response, env.out());
  PrintSource(response.source(), env.out());
  return absl::OkStatus();
}

absl::Status RemoveSource(const std::string& id, CommandEnv& env) {
  PANTHERD_ASSIGN_OR_RETURN(Connection * conn, env.Connect());
  v1::RemoveSourceRequest request;
  request.set_id(id);
  v1::RemoveSourceResponse response;
  PANTHERD_RETURN_IF_ERROR(conn->Call("RemoveSource", &DetectionStub::RemoveSource,
                                      conn->detection(), request, &response));
  if (env.json()) return PrintJson(response, env.out());
  env.out() << "Removed source " << EscapeForTerminal(id) << "\n";
  return absl::OkStatus();
}

}  // namespace

void AddSourcesCommands(CLI::App& root, CommandRegistry& registry) {
  CLI::App* sources = registry.AddGroup(root, "sources", "Manage event sources");
  registry.AddListCommand(*sources, "list", "List sources with their polling state", ListSources);

  CLI::App* add = registry.AddGroup(*sources, "add", "Add a source that pantherd polls");
  auto okta_args = std::make_shared<AddOktaArgs>();
  CLI::App* okta =
      registry.AddCommand(*add, "okta", "Poll an Okta org's System Log",
                          [okta_args](CommandEnv& env) { return AddOkta(*okta_args, env); });
  okta->add_option("--label", okta_args->label, "A unique name for the source (e.g. prod)")
      ->required();
  okta->add_option("--domain", okta_args->domain,
                   "The org's domain (e.g. acme.okta.com; a bare name like acme is taken as "
                   "acme.okta.com, and a note says so)")
      ->required();
  okta->add_option("--token-file", okta_args->token_file,
                   "A file holding the Okta API token (read-only admin recommended)")
      ->required();
  okta->add_option("--since", okta_args->since,
                   "Where to start: an RFC 3339 time or an age like 2h or 7d (default 1h, at "
                   "most 180d)");
  okta->add_option("--interval", okta_args->interval,
                   "Time between polls once caught up, e.g. 60s or 5m (default 60s, minimum 1s)");
  okta->add_option("--base-url", okta_args->base_url,
                   "Use this https:// base instead of https://DOMAIN (http:// only for loopback)");
  okta->add_flag("--no-check", okta_args->no_check,
                 "Store the source without first checking the connection (by default one "
                 "authenticated request must succeed, or nothing is stored)");

  auto test_id = std::make_shared<std::string>();
  CLI::App* test = registry.AddCommand(
      *sources, "test",
      "Check a stored source's connection now (one authenticated request); exit 1 when it fails",
      [test_id](CommandEnv& env) { return TestSource(*test_id, env); });
  test->add_option("ID", *test_id, "Source id or label")->type_name("")->required();

  for (const bool paused : {true, false}) {
    auto args = std::make_shared<PauseArgs>();
    CLI::App* command = registry.AddCommand(
        *sources, paused ? "pause" : "resume",
        paused ? "Stop polling a source (its cursor is kept)"
               : "Resume polling a source, optionally with a new token",
        [args, paused](CommandEnv& env) { return SetPaused(*args, paused, env); });
    command->add_option("ID", args->id, "Source id or label")->type_name("")->required();
    if (!paused) {
      command->add_option("--token-file", args->token_file,
                          "Replace the source's API token with the one in this file");
    }
  }

  auto remove_id = std::make_shared<std::string>();
  CLI::App* remove = registry.AddCommand(
      *sources, "remove", "Stop and delete a source (ingested events and alerts stay)",
      [remove_id](CommandEnv& env) { return RemoveSource(*remove_id, env); });
  remove->add_option("ID", *remove_id, "Source id or label")->type_name("")->required();
}

}  // namespace pantherd::client
