// pantherd-bench-search: SQL search over a large event store, in-process.
//
// Fills a fresh store (in DIR, which must not exist) with --events synthetic
// Okta System Log events spread evenly over --days days, the way pantherd
// stores them: each raw event (one of the template events of FILE, a JSON-
// lines file such as examples/okta-events.jsonl, with a new uuid, published
// time and actor) goes through NormalizeEvent and then
// AlertEngine::ApplyBatch with an event retention, in batches of 1000. Then
// it runs each query of kQueries three times with RunEventSearch, as
// SearchEvents does, over the whole range, and prints per query: the wall
// time of the first run and of the best, the events read and the rows.
//
//   pantherd-bench-search [--events 1000000] [--days 30] FILE DIR
//
// Prints a readable report on stdout. No timing is asserted anywhere.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "engine/alert_engine.h"
#include "engine/normalize.h"
#include "google/protobuf/util/time_util.h"
#include "server/event_search.h"
#include "store/store.h"

namespace {

using google::protobuf::util::TimeUtil;
namespace engine = pantherd::engine;
namespace v1 = pantherd::v1;

constexpr int kBatch = 1000;
constexpr int kReps = 3;

struct Query {
  const char* what;
  const char* sql;
};

// The range ends at kEnd; the queries' hour and day are near its end.
const absl::Time kEnd =
    absl::FromCivil(absl::CivilSecond(2026, 4, 1, 0, 0, 0), absl::UTCTimeZone());

const Query kQueries[] = {
    {"one hour, failures by actor",
     "SELECT json_extract(actor, '$.alternateId') AS who, count(*) AS n FROM okta_systemlog "
     "WHERE p_occurs_between('2026-03-30T10:00:00Z', '2026-03-30T11:00:00Z') "
     "AND outcome ->> '$.result' = 'FAILURE' GROUP BY who ORDER BY n DESC LIMIT 10"},
    {"one day, events by type",
     "SELECT eventType, count(*) FROM okta_systemlog "
     "WHERE p_occurs_between('2026-03-30T00:00:00Z', '2026-03-31T00:00:00Z') GROUP BY 1"},
    {"whole range, count(*)", "SELECT count(*) FROM okta_systemlog"},
    {"whole range, events by type",
     "SELECT eventType, count(*) FROM okta_systemlog GROUP BY 1 ORDER BY 2 DESC"},
};

// Replaces the string value of "key":"..." in `json` (its first occurrence).
bool ReplaceString(std::string* json, const std::string& key, const std::string& value) {
  const std::string needle = absl::StrCat("\"", key, "\":\"");
  const size_t at = json->find(needle);
  if (at == std::string::npos) return false;
  const size_t start = at + needle.size();
  const size_t end = json->find('"', start);
  if (end == std::string::npos) return false;
  json->replace(start, end - start, value);
  return true;
}

int Usage() {
  std::cerr << "usage: pantherd-bench-search [--events N] [--days D] FILE DIR\n";
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  int64_t events = 1000000;
  int days = 30;
  std::vector<std::string> positional;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if ((arg == "--events" || arg == "--days") && i + 1 < argc) {
      int64_t v = 0;
      if (!absl::SimpleAtoi(argv[++i], &v) || v <= 0) return Usage();
      if (arg == "--events") events = v;
      if (arg == "--days") days = static_cast<int>(v);
    } else if (!arg.empty() && arg[0] == '-') {
      return Usage();
    } else {
      positional.push_back(arg);
    }
  }
  if (positional.size() != 2) return Usage();

  std::vector<std::string> templates;
  std::ifstream in(positional[0]);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) templates.push_back(line);
  }
  if (templates.empty()) {
    std::cerr << "no events in " << positional[0] << "\n";
    return 1;
  }

  absl::StatusOr<std::unique_ptr<pantherd::store::Store>> store =
      pantherd::store::Store::Open(positional[1], {});
  if (!store.ok()) {
    std::cerr << store.status() << "\n";
    return 1;
  }
  engine::AlertEngineOptions options;
  options.now = [] { return kEnd; };
  options.event_retention = absl::Hours(24 * (days + 1));
  engine::AlertEngine alerts(store->get(), options);

  const absl::Time start = kEnd - absl::Hours(24 * days);
  const absl::Duration step = absl::Hours(24 * days) / events;
  engine::NormalizeContext ctx;
  ctx.source_id = "bench";
  ctx.source_label = "bench";
  ctx.parse_time = kEnd;
  const absl::Time fill_start = absl::Now();
  int64_t raw_bytes = 0;
  std::vector<engine::EventResult> batch;
  for (int64_t i = 0; i < events; ++i) {
    std::string raw = templates[static_cast<size_t>(i) % templates.size()];
    const absl::Time t = start + step * i;
    ReplaceString(&raw, "uuid", absl::StrFormat("bench-%012d", i));
    ReplaceString(&raw, "published",
                  absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", t, absl::UTCTimeZone()));
    ReplaceString(&raw, "alternateId", absl::StrCat("user", i % 997, "@example.com"));
    raw_bytes += static_cast<int64_t>(raw.size());
    absl::StatusOr<engine::NormalizedEvent> n =
        engine::NormalizeEvent(raw, engine::kOktaSystemLog, ctx);
    if (!n.ok()) {
      std::cerr << "event " << i << ": " << n.status() << "\n";
      return 1;
    }
    engine::EventResult e;
    e.event_id = n->event_id;
    e.log_type = n->log_type;
    e.event_time = n->event_time;
    e.event_json = std::move(n->json);
    batch.push_back(std::move(e));
    if (batch.size() == kBatch || i + 1 == events) {
      absl::StatusOr<engine::BatchOutcome> out = alerts.ApplyBatch(batch);
      if (!out.ok()) {
        std::cerr << out.status() << "\n";
        return 1;
      }
      batch.clear();
    }
  }
  const absl::Duration fill = absl::Now() - fill_start;
  std::cout << absl::StrFormat(
      "stored %d events (%.0f MB of raw JSON, %d templates) over %d days in %.1f s "
      "(%.0f events/s, normalise + ApplyBatch)\n",
      events, raw_bytes / 1e6, templates.size(), days, absl::ToDoubleSeconds(fill),
      events / absl::ToDoubleSeconds(fill));

  for (const Query& q : kQueries) {
    v1::SearchEventsRequest request;
    request.set_sql(q.sql);
    *request.mutable_since() = TimeUtil::MicrosecondsToTimestamp(absl::ToUnixMicros(start));
    *request.mutable_until() = TimeUtil::MicrosecondsToTimestamp(absl::ToUnixMicros(kEnd));
    request.set_timeout_seconds(pantherd::server::kSearchMaxTimeoutSeconds);
    std::atomic<bool> cancelled{false};
    int64_t rows = 0;
    auto on_header = [](v1::SearchHeader) { return true; };
    auto on_row = [&](v1::SearchRow) {
      ++rows;
      return true;
    };
    // kReps runs: the first (after the fill, memtables and cache as the
    // writes left them) and the best.
    absl::Duration first, best = absl::InfiniteDuration();
    int64_t scanned = 0;
    for (int rep = 0; rep < kReps; ++rep) {
      rows = 0;
      const absl::Time t0 = absl::Now();
      absl::StatusOr<v1::SearchSummary> summary =
          pantherd::server::RunEventSearch(**store, request, kEnd, cancelled, {on_header, on_row});
      const absl::Duration took = absl::Now() - t0;
      if (!summary.ok()) {
        std::cerr << q.what << ": " << summary.status() << "\n";
        return 1;
      }
      if (rep == 0) first = took;
      best = std::min(best, took);
      scanned = summary->events_scanned();
    }
    std::cout << absl::StrFormat(
        "%-30s first %8.1f ms  best %8.1f ms  %8d events read  %3d rows  (%.0f events/s)\n", q.what,
        absl::ToDoubleMilliseconds(first), absl::ToDoubleMilliseconds(best), scanned, rows,
        scanned / absl::ToDoubleSeconds(best));
  }
  return 0;
}
