// SQL search over stored events (SearchEvents; docs/events.md, "SQL search").
//
// Each search opens a fresh in-memory SQLite connection with one virtual
// table per log type (Okta.SystemLog -> okta_systemlog: lower case, '.' and
// other non-identifier characters -> '_'), whose rows are the stored events
// (engine/event_store.h) of the search's event-time range [since, until).
// Columns: the log type's top-level fields, then the p_ fields pantherd adds;
// each value has its JSON type (strings TEXT, numbers INTEGER/REAL, booleans
// 0/1, objects and arrays their JSON text, a missing field NULL). Each event
// is parsed once per row, and only when a column of it is read.
//
// Push-down: constraints on p_event_time (=, >, >=, <, <=) whose value is a
// text in the stored format ('YYYY-MM-DD', 'YYYY-MM-DD HH:MM',
// 'YYYY-MM-DD HH:MM:SS' or with a fraction) narrow the range scanned, always
// within [since, until). SQLite still checks the constraints itself, so the
// narrowing only has to be a superset. p_occurs_since('6 hours') and
// p_occurs_between('2026-03-01T10:00:00Z', '2026-03-01T11:00:00Z') are
// rewritten in the SQL text (outside string literals, quoted identifiers and
// comments) to comparisons on p_event_time in the stored format, so they push
// down too (RewriteHelpers).
//
// Sandbox: an authorizer allows only SELECT, READ, FUNCTION (not
// load_extension) and RECURSIVE; extension loading is off; limits on SQL
// length (100 KB), string/blob length (16 MB), attached databases (0);
// exactly one statement, which must be read-only; a progress handler stops
// the query at the timeout or when the call is cancelled.
//
// Thread-safety: a Search runs on the calling thread; many may run at once
// (each has its own connection). The store is only read.
#ifndef PANTHERD_SERVER_EVENT_SEARCH_H_
#define PANTHERD_SERVER_EVENT_SEARCH_H_

#include <atomic>
#include <cstdint>
#include <optional>
#include <string>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "pantherd/v1/events.pb.h"
#include "store/store.h"

namespace pantherd::server {

inline constexpr int64_t kSearchDefaultLimit = 1000;
inline constexpr int64_t kSearchMaxLimit = 100000;
inline constexpr int kSearchDefaultTimeoutSeconds = 30;
inline constexpr int kSearchMaxTimeoutSeconds = 300;
inline constexpr int kSearchMaxSqlBytes = 100 * 1000;
inline constexpr int kSearchMaxValueBytes = 16 * 1000 * 1000;
inline constexpr absl::Duration kSearchDefaultRange = absl::Hours(24);

// The SQL table name of a log type: lower case, every character other than
// a letter, digit or '_' -> '_'.
std::string SearchTableName(absl::string_view log_type);

// Parses a p_event_time text in the stored format or a prefix of it at a
// field boundary: "YYYY-MM-DD", "YYYY-MM-DD HH:MM", "YYYY-MM-DD HH:MM:SS",
// "YYYY-MM-DD HH:MM:SS.fffffffff" (1 to 9 fraction digits), UTC.
std::optional<absl::Time> ParseStoredEventTime(absl::string_view text);

// Rewrites the helpers p_occurs_since('<N unit>') and
// p_occurs_between('<time>', '<time>') in `sql` (see the file comment):
//   p_occurs_since('6 hours')  -> (p_event_time >= '<now - 6h, stored format>')
//   p_occurs_between(a, b)     -> (p_event_time >= '<a>' AND p_event_time < '<b>')
// Units: second(s)/sec/s, minute(s)/min/m, hour(s)/h, day(s)/d, week(s)/w;
// times: RFC 3339 or the stored format. InvalidArgument for a malformed
// call (its arguments must be string literals). When `earliest` is set, it
// receives the earliest time a helper asks for (InfiniteFuture when the SQL
// uses none): a search without `since` reads from there when that is before
// its default start.
absl::StatusOr<std::string> RewriteHelpers(absl::string_view sql, absl::Time now,
                                           absl::Time* earliest = nullptr);

// Checks a request's fields: sql set; limit in [0, kSearchMaxLimit];
// timeout_seconds in [0, kSearchMaxTimeoutSeconds]; since and until valid
// times, since not after until. InvalidArgument "<field>: <problem>".
absl::Status ValidateSearchRequest(const v1::SearchEventsRequest& request);

// One search (the request was validated: sql set, limit and timeout in range;
// 0 means the default).
struct SearchCallbacks {
  // The header, before any row; false stops the search (CANCELLED).
  absl::FunctionRef<bool(v1::SearchHeader)> header;
  // Each row, in order; false stops the search (CANCELLED).
  absl::FunctionRef<bool(v1::SearchRow)> row;
};

// Runs `request` over `store` at time `now`; returns the summary after the
// last row. Errors: InvalidArgument for SQL that does not compile or is
// refused by the sandbox (SQLite's message, with the offset when known) and
// for errors while running it; DeadlineExceeded at the timeout; Cancelled
// when `cancelled` became true or a callback returned false; the store's
// errors.
absl::StatusOr<v1::SearchSummary> RunEventSearch(const store::Store& store,
                                                 const v1::SearchEventsRequest& request,
                                                 absl::Time now, const std::atomic<bool>& cancelled,
                                                 const SearchCallbacks& callbacks);

}  // namespace pantherd::server

#endif  // PANTHERD_SERVER_EVENT_SEARCH_H_
