// The commands of pantherctl, one registration function per command group.
//
// Every command is a thin call of one or two RPCs. With --output table it
// prints an aligned table (lists) or "Label: value" lines (single items); with
// --output json it prints the RPC's response message as one JSON document
// (see output.h and docs/cli.md for the JSON conventions); list commands
// (registered with AddListCommand) also take --output csv. List commands
// follow every page and print one merged response:
//   rules list    -> ListRulesResponse with all rules, nextPageToken "".
//   alerts list   -> ListAlertsResponse with at most --limit alerts (all
//                    with --all); its nextPageToken is non-empty when more
//                    alerts exist, and remainingCount says how many. In a
//                    table, a cut listing ends with "N more (use --limit or
//                    --all; next page: --page-token T)" on the error stream.
//   sources list  -> ListSourcesResponse.
//   destinations list -> ListDestinationsResponse (destinations and kinds).
// `status` combines two RPCs; see PrintServerStatus.
//
// The command tree:
//   status | whoami
//   login [--server ADDR] [--token-file FILE | --token T] [--ca-cert FILE]
//   users list [--all] | create NAME --role R | set-role NAME R | disable NAME | enable NAME
//   tokens list [--owner U | --all] [--include-revoked] | create NAME [--owner U] [--ttl D]
//          | revoke ID
//   audit [--actor U] [--action PREFIX] [--target T] [--result R] [--failures]
//         [--since T] [--until T] [--limit N]
//   upload PATH [--skip-tests] [--backtest AGE]
//   test PATH [--filter KEY=V1,V2 | --filter KEY!=V]... [--minimum-tests N]
//             [--skip-disabled-tests] [--show-failures-only]
//   rules list [--type rule|global|datamodel] [--log-type X] [--enabled|--disabled]
//   rules get ID [--history] [--content] | delete ID | enable ID | disable ID
//   alerts list [--rule ID]... [--status S]... [--min-severity S] [--limit N | --all]
//               [--page-token T] [--since T] [--until T] [--time created|updated]
//   alerts get ID | events ID [--limit N] [--samples]
//   windows list [--rule ID] [--all]
//   explain RULE_ID (EVENT_ID | --event FILE) [--log-type T]
//   replay PATH_OR_RULE_ID [--since 24h] [--until T] [--log-type T]
//          | update ID [--status S] [--assignee U] [--comment C]
//          | resend ID [--destination ID|NAME]
//   sources list
//   sources add okta --label L --domain D --token-file FILE [--since TIME]
//                    [--interval 60s] [--base-url URL] [--no-check]
//   sources test ID|LABEL
//   sources pause ID|LABEL | resume ID|LABEL [--token-file FILE] | remove ID|LABEL
//   destinations list | kinds | get ID|NAME | test ID|NAME | remove ID|NAME
//   destinations add webhook|slack|pagerduty|teams|jira --name N --secret-file FILE
//                    [--secret NAME=FILE]... [--hmac-secret-file FILE]
//                    [--header 'Name: value']... [--set KEY=VALUE]... [FILTERS]
//   destinations update ID|NAME [--name N] [--secret-file FILE] [--secret NAME=FILE]...
//                    [--hmac-secret-file FILE] [--remove-secret NAME]...
//                    [--header 'Name: value']... [--set KEY=VALUE]... [FILTERS | --clear-filters]
//     FILTERS: [--min-severity S] [--alert-type rule|rule_error]... [--rule ID]...
//              [--log-type T]...
//   send FILE|- [--log-type T] [--batch-size N] [--source-label L] [--quiet]
//   search SQL [--since T] [--until T] [--limit N] [--query-timeout S]
//   alerts tail [--since SEQ] [--min-severity S] [--rule ID]... [--type rule|rule_error]
//               [--count N]
// (--severity is an alias of --min-severity on alerts list, alerts tail and
// destinations add|update.)
//
// alerts get -> DetectionService.GetAlert. Table form: the alert's fields; for
//   a RULE_ERROR alert its error and, when set, the Python traceback (instead
//   of an empty Context); the stored matched events (a header line and the
//   event's JSON each, "..." when cut to the per-event cap); and the triage
//   history, oldest first (time, actor, status change, assignee, comment);
//   then its deliveries (PrintDeliveries: destination, kind, action, status,
//   attempts, last HTTP status, next attempt / delivered / last attempt time,
//   routed by, last error), or "Deliveries: none".
// alerts resend -> DetectionService.ResendAlert{alert_id, destination (empty:
//   every destination the alert was routed to)}; prints "Re-sending alert ID:
//   N deliveries pending" and the deliveries; JSON: the ResendAlertResponse.
//
// `upload PATH` and `test PATH` read PATH with ReadAnalysisPath
// (analysis_folder.h) and send every file in one request.
//
// upload -> DetectionService.UploadRule{files, skip_tests}. On success it
//   prints the stored items (ID, TYPE, VERSION), the unchanged ids, the
//   skipped content per type, warnings and the test counts; JSON: the
//   UploadRuleResponse. A refused upload (INVALID_ARGUMENT for invalid specs,
//   FAILED_PRECONDITION for failing tests) prints its report, then fails with
//   the server's status. The report comes from the error details (below).
//
// test -> DetectionService.RunTests{content.files, filters, skip_disabled};
//   nothing is stored. With skip_disabled the server lists the disabled rules
//   it skipped in report.skipped under analysis_type "disabled_rule". Prints the report as `pat
//   test` does (test_report.h); JSON: the RunTestsResponse. Exit 1 when a rule failed (including
//   --minimum-tests, checked here) or a spec is invalid, and on an empty
//   report ("Nothing to test in PATH"; with filters "No analysis in PATH
//   matched filters ..."), else 0.
//
// The filters encoding (RunTestsRequest.filters), pat's --filter:
//   --filter KEY=V1,V2   ->  filters["KEY"]  = "V1,V2"
//   --filter KEY!=V1,V2  ->  filters["KEY!"] = "V1,V2"
// KEY is a top-level spec field (Severity, Tags, LogTypes, RuleID, Enabled,
// ...; pat's rule, policy and global schema keys, checked here). Values are
// the comma-separated list as typed; the server splits on ',' and compares
// case-insensitively. A spec passes "KEY" when its field (or, for a list
// field, one of its items) equals one of the values, and passes "KEY!" when
// none does; a missing field counts as "". All entries must pass (AND);
// globals and data models are always included. A key given twice keeps the
// last value, as in pat. Enabled takes one boolean, sent as "true" or
// "false" (pat's strtobool: y/yes/t/true/on/1, n/no/f/false/off/0).
//
// send -> DetectionService.IngestEvents, one bidirectional stream. FILE (or
//   standard input for "-") holds JSON lines or one JSON array (EventReader,
//   stream_support.h). Events go in batches of --batch-size (and at most
//   kSendMaxBatchBytes), batch_id 1, 2, ...; at most kSendMaxBatchesInFlight
//   batches are unanswered at a time. The stream has no deadline, but fails
//   when no answer comes for --timeout; Ctrl-C stops it. When the error
//   stream is a terminal (and neither --quiet nor --output json is given), a
//   progress bar (RenderProgressBar, stream_support.h: acknowledged events of
//   the file's total, percentage, events/s, ETA; no total for standard
//   input) is redrawn in place on it. Then a summary is printed on
//   the output stream (also on failure): events sent, accepted, duplicates,
//   rejected with "#INDEX (line L): reason" (INDEX is 0-based among the
//   file's events; first 20 shown), alerts created and updated, the matches
//   per rule ("Matches by rule:" then one line per rule from the answers'
//   IngestEventsResponse.rules, e.g. "Okta.FailedLogin: 3 matches, 0 alerts
//   (window 3/5 open)": matches, alerts created (and updated), rule errors,
//   and the dedup windows still below their threshold after the last batch
//   that counted into them), and, when the
//   stream failed, the first event not acknowledged ("Not acknowledged: events
//   from #I (line L) on"; answers come in order, so everything from there on
//   should be re-sent, which idempotence makes safe). JSON: one object with
//   file, logType, events, batches, acknowledged, accepted, duplicates,
//   rejected, rejectedEvents [{index, line, reason}] (first 1000),
//   alertsCreated, alertsUpdated (signals not included), rules [{ruleId,
//   matches, alertsCreated, alertsUpdated, signalsCreated, signalsUpdated,
//   errors, openWindows [{count, threshold}]}], and when set
//   unacknowledgedFromIndex,
//   unacknowledgedFromLine and error. Exit 0 when every event was accepted or
//   a duplicate; 1 when any was rejected ("N of M events rejected"), the
//   input is malformed or the stream failed.
//
// sources add okta -> DetectionService.AddSource{label, okta{domain,
//   api_token (the content of --token-file without surrounding whitespace),
//   base_url, poll_interval (--interval: a duration like 60s or 5m, a bare
//   number is seconds), start_time (--since: RFC 3339, or an age like 2h or
//   7d before now), skip_connection_check (--no-check)}}. The server checks
//   the connection first and refuses the source (nothing stored) when the
//   check fails; its assumptions (e.g. "assumed acme.okta.com for \"acme\"")
//   are printed as "pantherctl: note: ..." on the error stream. Prints the
//   source ("Label: value" lines) and the check ("Check: OK (ok)", "Check
//   detail", "HTTP status", "Latency"); JSON: the AddSourceResponse. The
//   token is never printed.
// sources test -> DetectionService.TestSource{id}: the same check on a stored
//   source; prints ID, Label, Domain and the check; JSON: the
//   TestSourceResponse. Exit 1 ("connection check failed: ...") when the
//   check failed.
// sources pause|resume -> DetectionService.SetSourcePaused{id, paused,
//   api_token from resume's --token-file}; prints the source. sources remove
//   -> DetectionService.RemoveSource; prints "Removed source ID".
//
// Destinations (destinations_commands.cc). Secrets are write-only: read from
//   files, sent once and never printed (the server returns only their names;
//   errors name the flag and the file, never the content, and never quote a
//   --header value).
// destinations add KIND -> DetectionService.AddDestination{name, kind,
//   settings (--set KEY=VALUE, each key once), secrets, headers (--header
//   'Name: value', webhook only, each name once, case-insensitively), filters}.
//   The secrets: --secret-file fills the kind's main secret (webhook, slack,
//   teams: "url"; pagerduty: "routing_key"; jira: "api_token"), required;
//   --secret NAME=FILE any other, --hmac-secret-file "hmac_secret" (webhook).
//   A secret file is read whole, without trailing whitespace; a missing,
//   empty or over-64-KiB file is refused. Refused before any call: an unknown
//   kind (usage error listing the kinds), a secret of the kind given with
//   --set, a setting given with --secret, --header or --hmac-secret-file for
//   another kind than webhook. Filters: --min-severity, --alert-type (rule,
//   rule_error), --rule, --log-type (repeatable). Prints the stored
//   destination ("Label: value" lines: ID, Name, Kind, Settings, Secrets
//   "url: (set)", Headers, the filters, Created, Created by, Updated); JSON:
//   the AddDestinationResponse.
// destinations list -> ListDestinations; table ID NAME KIND MIN-SEVERITY
//   FILTERS ("types=RULE rules=A,B log_types=T", "-" for none).
// destinations get -> GetDestination{destination: id or name}; the fields of
//   add plus the stats: Pending, Oldest pending ("2m5s ago (TIME)"),
//   Delivered, Failed, Retried.
// destinations update -> UpdateDestination: only what is given. --set
//   'KEY=', --header 'Name:' and --remove-secret NAME send empty values,
//   which remove the entry; any filter flag sends all the filters (they
//   replace the stored ones as a whole), --clear-filters empty ones. With
//   --secret-file or --set it first asks GetDestination for the kind (the
//   main secret's name; the --set check of add).
// destinations test -> TestDestination; prints "ok: HTTP 200 in 35 ms" or
//   "failed: HTTP 404 in 120 ms" ("no HTTP answer" without one) with Error
//   and Response lines, then exits 1 ("test delivery to D failed: ...").
// destinations remove -> RemoveDestination; prints "Removed destination D; N
//   pending deliveries marked failed".
// destinations kinds -> ListDestinations; per kind its description and
//   fields (name, secret or setting, required or optional, help); JSON: the
//   ListDestinationsResponse with only its kinds.
//
// alerts tail -> DetectionService.StreamAlerts, with no deadline. Prints one
//   line per change: "ALERT_ID  TIME  KIND  SEVERITY  RULE  TITLE  events=N
//   seq=SEQ"; JSON: one AlertChange per line (compact). Heartbeats print
//   nothing; a Gap prints a warning on the error stream. On the error stream
//   it says "connected to ADDR, waiting for alerts" at the start and
//   "reconnected to ADDR" when a stream after a break delivers something. When the stream ends or
//   breaks (any code but the permanent ones: INVALID_ARGUMENT, NOT_FOUND, PERMISSION_DENIED,
//   UNAUTHENTICATED, FAILED_PRECONDITION, OUT_OF_RANGE, UNIMPLEMENTED), it reconnects after a
//   backoff (0.2s doubling to 10s, reset once a stream delivered something) with
//   start_after_sequence = the last sequence seen (a change or, before any change, a heartbeat),
//   and drops changes at or below it, so nothing is missed or printed twice. Without --since and
//   before anything was seen it resumes live only. Runs until Ctrl-C (exit 0) or --count changes
//   were printed (exit 0). Fails at once when the server cannot be reached at the start.
//
// The error-details convention: when UploadRule (or RunTests) fails, the
// server may attach the serialized UploadRuleResponse (RunTestsResponse) as
// the binary error details of its grpc::Status (the grpc-status-details-bin
// trailer); its report carries the diagnostics (report.invalid) and the test
// results (report.rules). pantherctl decodes and prints it when present and
// parseable, and otherwise prints only the status message.
#ifndef PANTHERD_CLIENT_COMMANDS_H_
#define PANTHERD_CLIENT_COMMANDS_H_

#include <map>
#include <ostream>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "client/command.h"
#include "client/output.h"
#include "google/protobuf/repeated_ptr_field.h"
#include "pantherd/v1/admin_service.pb.h"
#include "pantherd/v1/alerts.pb.h"
#include "pantherd/v1/events.pb.h"

namespace pantherd::client {

// `status` (AdminService.GetServerStatus + grpc.health.v1.Health/Check) and
// `whoami` (AdminService.WhoAmI).
void AddAdminCommands(CLI::App& root, CommandRegistry& registry);

// `login`, `users list|create|set-role|disable|enable`, `tokens
// list|create|revoke` and `audit` (AdminService). See team_commands.cc.
void AddTeamCommands(CLI::App& root, CommandRegistry& registry);

// `rules list|get|delete|enable|disable` (DetectionService rule RPCs).
void AddRulesCommands(CLI::App& root, CommandRegistry& registry);

// `alerts list|get|update|tail` (DetectionService alert RPCs).
void AddAlertsCommands(CLI::App& root, CommandRegistry& registry);

// `sources list|add okta|pause|resume|remove` (DetectionService source RPCs).
void AddSourcesCommands(CLI::App& root, CommandRegistry& registry);

// `destinations add|list|get|update|test|remove|kinds` (DetectionService
// destination RPCs). See destinations_commands.cc.
void AddDestinationsCommands(CLI::App& root, CommandRegistry& registry);

// `alerts resend ID [--destination D]` (DetectionService.ResendAlert), added
// to the `alerts` group by AddAlertsCommands.
void AddAlertsResendCommand(CLI::App& alerts, CommandRegistry& registry);

// The "Deliveries" section of `alerts get` and `alerts resend`: a blank line,
// "Deliveries:" and an indented table (DESTINATION, KIND, ACTION, STATUS,
// ATTEMPTS, HTTP, WHEN, ROUTED BY, LAST ERROR), or "Deliveries: none".
void PrintDeliveries(
    const google::protobuf::RepeatedPtrField<pantherd::v1::AlertDelivery>& deliveries,
    std::ostream& out);

// Calls ReplayRules (`replay`, `upload --backtest`) and returns its last
// message, the result. While the replay runs, its progress messages redraw
// one line on the error stream ("replaying: 42% of the range, 12000 events,
// 3100 events/s, 4 alerts so far") when that is a terminal and the output
// is not JSON; the line is cleared before returning. Errors: the RPC's
// (Connection::ToStatus); Internal when the stream ended without a result.
absl::StatusOr<pantherd::v1::ReplayRulesResponse> CallReplayRules(
    Connection& conn, const pantherd::v1::ReplayRulesRequest& request, CommandEnv& env);

// The words of --min-severity: info, low, medium, high, critical (checked
// case-insensitively with CLI::IsMember).
const std::vector<std::string>& SeverityWords();
// "high" (any case) -> SEVERITY_HIGH; SEVERITY_UNSPECIFIED for "" or an
// unknown word.
pantherd::v1::Severity ParseSeverityWord(const std::string& word);
// The words of --type (alerts tail) and --alert-type (destinations): rule,
// rule_error. Signals never notify, so they are not among them.
const std::vector<std::string>& AlertTypeWords();
// "rule" -> ALERT_TYPE_RULE, "rule_error" -> ALERT_TYPE_RULE_ERROR;
// ALERT_TYPE_UNSPECIFIED otherwise.
pantherd::v1::AlertType ParseAlertTypeWord(const std::string& word);

// `send FILE|-` (DetectionService.IngestEvents).
inline constexpr char kDefaultSendLogType[] = "Okta.SystemLog";
inline constexpr int kDefaultSendBatchSize = 500;
inline constexpr int kSendMaxBatchesInFlight = 4;
inline constexpr size_t kSendMaxBatchBytes = 4 << 20;
void AddSendCommand(CLI::App& root, CommandRegistry& registry);

// `search "SQL" [--since T] [--until T] [--limit N] [--query-timeout S]`
// (DetectionService.SearchEvents). Table and CSV: the result's columns; the
// effective range, events read and "N rows (truncated at the limit)" on the
// error stream. JSON: one object {columns, since, until, rows (arrays of
// typed values: null, numbers, strings; blobs as base64), summary}.
void AddSearchCommand(CLI::App& root, CommandRegistry& registry);

// `upload PATH` (DetectionService.UploadRule) and `test PATH`
// (DetectionService.RunTests with content).
void AddAnalysisCommands(CLI::App& root, CommandRegistry& registry);

// The RunTestsRequest.filters of pat-style --filter arguments, encoded as
// described above. INVALID_ARGUMENT, naming the argument, for a malformed
// filter, an unknown key or a non-boolean Enabled.
absl::StatusOr<std::map<std::string, std::string>> ParseTestFilters(
    const std::vector<std::string>& filters);

// Prints the result of `status`. `health` is the serving status from
// Health/Check ("SERVING", "NOT_SERVING", ...; "UNKNOWN" when the check
// failed). Table form: one "Label: value" line per field. JSON form: one
// object with the keys, in order, "version", "startTime" (RFC 3339; omitted
// when unset), "uptime" (proto Duration string, "192s"), "uptimeSeconds",
// "dataDir", "listenAddress", "ruleCount", "globalCount", "dataModelCount",
// "sourceCount", "alertCount", "health" and "figures" (pantherd's own
// figures, docs/metrics.md: "ingest", "rules", "workers", "executor",
// "alertFeed", "sources"; times in seconds). Table form adds the figures
// after the main block, and a table of the rules by time spent and one of
// the sources when there are any. Counts and uptimeSeconds are JSON
// numbers, unlike the strings of the proto3 mapping for int64. Fails only if
// protobuf cannot print a Timestamp or Duration.
absl::Status PrintServerStatus(const pantherd::v1::GetServerStatusResponse& status,
                               absl::string_view health, OutputFormat format, std::ostream& out);

}  // namespace pantherd::client

#endif  // PANTHERD_CLIENT_COMMANDS_H_
