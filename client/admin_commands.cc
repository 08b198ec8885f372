// `pantherctl status` and `pantherctl whoami`.
#include <string>

#include "absl/strings/str_cat.h"
#include "client/commands.h"
#include "client/status_macros.h"

namespace pantherd::client {
namespace {

namespace v1 = ::pantherd::v1;
using ::grpc::health::v1::HealthCheckRequest;
using ::grpc::health::v1::HealthCheckResponse;

absl::Status RunStatus(CommandEnv& env) {
  PANTHERCTL_ASSIGN_OR_RETURN(Connection * conn, env.Connect());
  v1::GetServerStatusResponse status;
  PANTHERCTL_RETURN_IF_ERROR(conn->Call("GetServerStatus", &Connection::AdminStub::GetServerStatus,
                                        conn->admin(), v1::GetServerStatusRequest(), &status));
  // A failed health check still shows the status, with health UNKNOWN.
  HealthCheckRequest health_request;  // service "": the server as a whole.
  HealthCheckResponse health;
  std::string health_name = "UNKNOWN";
  if (conn->Call("Check", &Connection::HealthStub::Check, conn->health(), health_request, &health)
          .ok()) {
    health_name = HealthCheckResponse::ServingStatus_Name(health.status());
  }
  return PrintServerStatus(status, health_name, env.format(), env.out());
}

absl::Status RunWhoAmI(CommandEnv& env) {
  PANTHERCTL_ASSIGN_OR_RETURN(Connection * conn, env.Connect());
  v1::WhoAmIResponse response;
  PANTHERCTL_RETURN_IF_ERROR(conn->Call("WhoAmI", &Connection::AdminStub::WhoAmI, conn->admin(),
                                        v1::WhoAmIRequest(), &response));
  if (env.json()) return PrintJson(response, env.out());

  const v1::User& user = response.user();
  const v1::Token& token = response.token();
  std::string token_text = OrDash(token.id());
  if (!token.name().empty()) absl::StrAppend(&token_text, " (", token.name(), ")");
  PrintFields({{"User", OrDash(user.name())},
               {"Role", ShortEnumName(v1::Role_Name(user.role()), "ROLE_")},
               {"Disabled", user.disabled() ? "yes" : "no"},
               {"Token", token_text},
               {"Token expires", token.has_expire_time() ? FormatTimestamp(token.expire_time())
                                                         : std::string("never")}},
              env.out());
  return absl::OkStatus();
}

}  // namespace

absl::Status PrintServerStatus(const v1::GetServerStatusResponse& status, absl::string_view health,
                               OutputFormat format, std::ostream& out) {
  if (format == OutputFormat::kTable) {
    PrintFields({{"Version", OrDash(status.version())},
                 {"Uptime", FormatDuration(status.uptime())},
                 {"Started", FormatTimestamp(status.start_time())},
                 {"Data dir", OrDash(status.data_dir())},
                 {"Listen address", OrDash(status.listen_address())},
                 {"Rules", absl::StrCat(status.rule_count())},
                 {"Globals", absl::StrCat(status.global_count())},
                 {"Data models", absl::StrCat(status.data_model_count())},
                 {"Sources", absl::StrCat(status.source_count())},
                 {"Alerts", absl::StrCat(status.alert_count())},
                 {"Subscribers", absl::StrCat(status.streams().subscribers())},
                 {"Delivered", absl::StrCat(status.streams().delivered())},
                 {"Catch-ups", absl::StrCat(status.streams().catch_ups())},
                 {"Health", std::string(health)}},
                out);
    return absl::OkStatus();
  }

  JsonObject object;
  object.AddString("version", status.version());
  if (status.has_start_time()) {
    PANTHERCTL_ASSIGN_OR_RETURN(std::string start_time, MessageToJson(status.start_time()));
    object.AddRaw("startTime", start_time);
  }
  PANTHERCTL_ASSIGN_OR_RETURN(std::string uptime, MessageToJson(status.uptime()));
  object.AddRaw("uptime", uptime)
      .AddInt("uptimeSeconds", status.uptime().seconds())
      .AddString("dataDir", status.data_dir())
      .AddString("listenAddress", status.listen_address())
      .AddInt("ruleCount", status.rule_count())
      .AddInt("globalCount", status.global_count())
      .AddInt("dataModelCount", status.data_model_count())
      .AddInt("sourceCount", status.source_count())
      .AddInt("alertCount", status.alert_count())
      .AddInt("subscribers", status.streams().subscribers())
      .AddInt("alertChangesDelivered", status.streams().delivered())
      .AddInt("subscriberCatchUps", status.streams().catch_ups())
      .AddString("health", health);
  out << object.ToString() << '\n';
  return absl::OkStatus();
}

void AddAdminCommands(CLI::App& root, CommandRegistry& registry) {
  registry.AddCommand(root, "status",
                      "Show the server's version, uptime, data directory, content counts and "
                      "health",
                      RunStatus);
  registry.AddCommand(root, "whoami", "Show the user and token behind your calls", RunWhoAmI);
}

}  // namespace pantherd::client
