// The commands of pantherctl, one registration function per command group.
//
// Every command is a thin call of one or two RPCs. With --output table it
// prints an aligned table (lists) or "Label: value" lines (single items); with
// --output json it prints the RPC's response message as one JSON document
// (see output.h for the JSON conventions). List commands follow every page
// and print one merged response:
//   rules list    -> ListRulesResponse with all rules, nextPageToken "".
//   alerts list   -> ListAlertsResponse with at most --limit alerts; its
//                    nextPageToken is non-empty when more alerts exist.
//   sources list  -> ListSourcesResponse.
// `status` combines two RPCs; see PrintServerStatus.
//
// The command tree:
//   status | whoami
//   rules list [--type rule|global|datamodel] [--log-type X] [--enabled|--disabled]
//   rules get ID [--history] [--content] | delete ID | enable ID | disable ID
//   alerts list [--rule ID]... [--status S]... [--min-severity S] [--limit N]
//   alerts get ID | update ID [--status S] [--assignee U] [--comment C]
//   sources list
#ifndef PANTHERD_CLIENT_COMMANDS_H_
#define PANTHERD_CLIENT_COMMANDS_H_

#include <ostream>

#include "CLI/CLI.hpp"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "client/command.h"
#include "client/output.h"
#include "pantherd/v1/admin_service.pb.h"

namespace pantherd::client {

// `status` (AdminService.GetServerStatus + grpc.health.v1.Health/Check) and
// `whoami` (AdminService.WhoAmI).
void AddAdminCommands(CLI::App& root, CommandRegistry& registry);

// `rules list|get|delete|enable|disable` (DetectionService rule RPCs).
void AddRulesCommands(CLI::App& root, CommandRegistry& registry);

// `alerts list|get|update` (DetectionService alert RPCs).
void AddAlertsCommands(CLI::App& root, CommandRegistry& registry);

// `sources list` (DetectionService.ListSources).
void AddSourcesCommands(CLI::App& root, CommandRegistry& registry);

// Prints the result of `status`. `health` is the serving status from
// Health/Check ("SERVING", "NOT_SERVING", ...; "UNKNOWN" when the check
// failed). Table form: one "Label: value" line per field. JSON form: one
// object with the keys, in order, "version", "startTime" (RFC 3339; omitted
// when unset), "uptime" (proto Duration string, "192s"), "uptimeSeconds",
// "dataDir", "listenAddress", "ruleCount", "globalCount", "dataModelCount",
// "sourceCount", "alertCount" and "health". Counts and uptimeSeconds are JSON
// numbers, unlike the strings of the proto3 mapping for int64. Fails only if
// protobuf cannot print a Timestamp or Duration.
absl::Status PrintServerStatus(const pantherd::v1::GetServerStatusResponse& status,
                               absl::string_view health, OutputFormat format, std::ostream& out);

}  // namespace pantherd::client

#endif  // PANTHERD_CLIENT_COMMANDS_H_
