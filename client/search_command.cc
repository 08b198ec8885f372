// `pantherctl search "SQL"`: SQL over stored events (DetectionService.SearchEvents).
#include <chrono>
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "client/commands.h"
#include "google/protobuf/util/time_util.h"
#include "pantherd/v1/detection_service.grpc.pb.h"
#include "proto/base/status_macros.h"

namespace pantherd::client {
namespace {

namespace v1 = ::pantherd::v1;
using google::protobuf::util::TimeUtil;

// The call's deadline beyond the server's longest query timeout.
constexpr int kSearchCallSeconds = 300 + 30;

struct SearchArgs {
  std::string sql;
  std::string since;
  std::string until;
  int64_t limit = 0;
  int timeout_seconds = 0;
};

// A value as a table or CSV cell: NULL prints empty in CSV, "NULL" in a table.
std::string CellText(const v1::SearchValue& v, bool csv) {
  switch (v.kind_case()) {
    case v1::SearchValue::kIntValue:
      return absl::StrCat(v.int_value());
    case v1::SearchValue::kDoubleValue:
      return absl::StrCat(v.double_value());
    case v1::SearchValue::kTextValue:
      return v.text_value();
    case v1::SearchValue::kBlobValue:
      return absl::StrCat("x'", absl::BytesToHexString(v.blob_value()), "'");
    default:
      return csv ? "" : "NULL";
  }
}

// A value as JSON: null, a number, a string; a blob as its base64 text.
std::string CellJson(const v1::SearchValue& v) {
  switch (v.kind_case()) {
    case v1::SearchValue::kIntValue:
      return absl::StrCat(v.int_value());
    case v1::SearchValue::kDoubleValue:
      if (!std::isfinite(v.double_value())) return "null";
      return absl::StrFormat("%.17g", v.double_value());
    case v1::SearchValue::kTextValue:
      return JsonQuote(v.text_value());
    case v1::SearchValue::kBlobValue:
      return JsonQuote(absl::Base64Escape(v.blob_value()));
    default:
      return "null";
  }
}

std::string TimeText(const google::protobuf::Timestamp& t) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E*SZ",
                          absl::FromUnixMicros(TimeUtil::TimestampToMicroseconds(t)),
                          absl::UTCTimeZone());
}

absl::Status Search(const SearchArgs& args, CommandEnv& env) {
  v1::SearchEventsRequest request;
  request.set_sql(args.sql);
  const absl::Time now = absl::Now();
  if (!args.since.empty()) {
    PANTHERD_ASSIGN_OR_RETURN(absl::Time since, ParseTimeOrAge("--since", args.since, now));
    *request.mutable_since() = TimeUtil::MicrosecondsToTimestamp(absl::ToUnixMicros(since));
  }
  if (!args.until.empty()) {
    PANTHERD_ASSIGN_OR_RETURN(absl::Time until, ParseTimeOrAge("--until", args.until, now));
    *request.mutable_until() = TimeUtil::MicrosecondsToTimestamp(absl::ToUnixMicros(until));
  }
  request.set_limit(args.limit);
  request.set_timeout_seconds(args.timeout_seconds);
  PANTHERD_ASSIGN_OR_RETURN(Connection * conn, env.Connect());

  grpc::ClientContext context;
  conn->PrepareStreamContext(&context);
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(kSearchCallSeconds));
  std::unique_ptr<grpc::ClientReader<v1::SearchEventsResponse>> reader =
      conn->detection().SearchEvents(&context, request);
  v1::SearchHeader header;
  std::vector<v1::SearchRow> rows;
  v1::SearchSummary summary;
  v1::SearchEventsResponse response;
  while (reader->Read(&response)) {
    switch (response.part_case()) {
      case v1::SearchEventsResponse::kHeader:
        header = std::move(*response.mutable_header());
        break;
      case v1::SearchEventsResponse::kRow:
        rows.push_back(std::move(*response.mutable_row()));
        break;
      case v1::SearchEventsResponse::kSummary:
        summary = std::move(*response.mutable_summary());
        break;
      default:
        break;
    }
  }
  const grpc::Status status = reader->Finish();
  if (status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED &&
      !status.error_message().empty()) {
    // The server stopped the query at its own timeout (not the call's).
    return absl::DeadlineExceededError(
        absl::StrCat(status.error_message(), "; --query-timeout sets it (at most 300 seconds)"));
  }
  if (!status.ok()) return conn->ToStatus("SearchEvents", status);

  if (env.json()) {
    std::vector<std::string> columns;
    for (const std::string& c : header.columns()) columns.push_back(JsonQuote(c));
    std::vector<std::string> json_rows;
    for (const v1::SearchRow& row : rows) {
      std::vector<std::string> cells;
      for (const v1::SearchValue& v : row.values()) cells.push_back(CellJson(v));
      json_rows.push_back(absl::StrCat("[", absl::StrJoin(cells, ","), "]"));
    }
    PANTHERD_ASSIGN_OR_RETURN(std::string summary_json, MessageToJson(summary));
    JsonObject object;
    object.AddRaw("columns", absl::StrCat("[", absl::StrJoin(columns, ","), "]"));
    object.AddString("since", TimeText(header.since()));
    object.AddString("until", TimeText(header.until()));
    object.AddRaw("rows", absl::StrCat("[", absl::StrJoin(json_rows, ",\n "), "]"));
    object.AddRaw("summary", summary_json);
    env.out() << object.ToString() << '\n';
    return absl::OkStatus();
  }

  Table table(std::vector<std::string>(header.columns().begin(), header.columns().end()));
  for (const v1::SearchRow& row : rows) {
    std::vector<std::string> cells;
    for (const v1::SearchValue& v : row.values()) cells.push_back(CellText(v, env.csv()));
    table.AddRow(std::move(cells));
  }
  env.PrintTable(table);
  if (!env.csv()) {
    env.err() << "Events from " << TimeText(header.since()) << " until " << TimeText(header.until())
              << " (" << summary.events_scanned() << " read, " << summary.elapsed_ms() << " ms)\n"
              << summary.rows() << (summary.rows() == 1 ? " row" : " rows")
              << (summary.truncated() ? " (truncated at the limit)" : "") << '\n';
  } else if (summary.truncated()) {
    env.err() << summary.rows() << " rows (truncated at the limit)\n";
  }
  return absl::OkStatus();
}

}  // namespace

void AddSearchCommand(CLI::App& root, CommandRegistry& registry) {
  auto args = std::make_shared<SearchArgs>();
  CLI::App* search = registry.AddListCommand(
      root, "search",
      "Search stored events with one read-only SQL statement (tables such as okta_systemlog; "
      "see docs/events.md)",
      [args](CommandEnv& env) { return Search(*args, env); });
  search->add_option("SQL", args->sql, "The SELECT statement")->type_name("")->required();
  search
      ->add_option("--since", args->since,
                   "Search events at or after this event time: an RFC 3339 time or an age like "
                   "24h or 7d (default: 24 hours before --until, or earlier where the SQL's "
                   "p_occurs_since or p_occurs_between asks for earlier events)")
      ->type_name("TIME");
  search
      ->add_option("--until", args->until,
                   "Search events before this event time: an RFC 3339 time or an age (default: "
                   "now)")
      ->type_name("TIME");
  search->add_option("--limit", args->limit, "At most this many rows (default 1000)")
      ->type_name("N")
      ->check(CLI::Range(int64_t{1}, int64_t{100000}));
  search
      ->add_option("--query-timeout", args->timeout_seconds,
                   "Stop the query after this many seconds (default 30, at most 300)")
      ->type_name("SECONDS")
      ->check(CLI::Range(1, 300));
}

}  // namespace pantherd::client
