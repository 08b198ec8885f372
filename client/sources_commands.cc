// `pantherctl sources ...`: event sources and their polling state.
#include <string>

#include "absl/strings/str_cat.h"
#include "client/commands.h"
#include "client/status_macros.h"
#include "pantherd/v1/detection_service.grpc.pb.h"

namespace pantherd::client {
namespace {

namespace v1 = ::pantherd::v1;

absl::Status ListSources(CommandEnv& env) {
  PANTHERCTL_ASSIGN_OR_RETURN(Connection * conn, env.Connect());
  v1::ListSourcesResponse response;
  PANTHERCTL_RETURN_IF_ERROR(conn->Call("ListSources", &Connection::DetectionStub::ListSources,
                                        conn->detection(), v1::ListSourcesRequest(), &response));
  if (env.json()) return PrintJson(response, env.out());

  Table table(
      {"ID", "LABEL", "KIND", "STATE", "DOMAIN", "EVENTS", "LAST POLL", "LAG", "LAST ERROR"});
  for (const v1::Source& source : response.sources()) {
    table.AddRow({source.id(), OrDash(source.label()), OrDash(source.kind()),
                  ShortEnumName(v1::SourceState_Name(source.state()), "SOURCE_STATE_"),
                  OrDash(source.domain()), absl::StrCat(source.events_ingested()),
                  FormatTimestamp(source.last_poll_time()),
                  source.has_lag() ? FormatDuration(source.lag()) : std::string("-"),
                  OrDash(source.last_error())});
  }
  table.Print(env.out());
  return absl::OkStatus();
}

}  // namespace

void AddSourcesCommands(CLI::App& root, CommandRegistry& registry) {
  CLI::App* sources = registry.AddGroup(root, "sources", "Show event sources");
  registry.AddCommand(*sources, "list", "List sources with their polling state", ListSources);
}

}  // namespace pantherd::client
