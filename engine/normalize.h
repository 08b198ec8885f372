// File: engine/normalize.h
//
// Normalisation of raw log events into the rows rules see, as Panther's log
// processing does, in C++ (no Python): one simdjson parse and one streaming
// write per event.
//
//   NormalizeContext ctx;
//   ctx.source_id = "okta-prod";
//   ctx.source_label = "Okta (prod)";
//   ctx.parse_time = clock.Now();  // injected clock
//   absl::StatusOr<NormalizedEvent> row = NormalizeEvent(raw, "Okta.SystemLog", ctx);
//   if (!row.ok()) { /* InvalidArgument: reject this event, with the message as reason */ }
//   // row->json goes to the rule workers; row->event_id / row->event_time
//   // drive de-duplication of re-sent events and the dedup windows.
//
// What a row is. The raw event, minus every object member whose value is JSON
// null (at every nesting level, inside arrays of objects too), with its
// timestamp rewritten in Panther's format, plus Panther's standard fields
// appended after the event's own:
//
//   p_log_type          the log type
//   p_row_id            32 lowercase hex digits (ctx.row_id_generator)
//   p_event_time        the log type's timestamp field (Okta: `published`),
//                       else p_parse_time
//   p_parse_time        ctx.parse_time
//   p_source_id, p_source_label   from ctx (always present, "" when unset)
//   p_any_ip_addresses, p_any_domain_names, p_any_emails, p_any_usernames
//                       always lists (possibly empty) of strings, de-duplicated
//                       and sorted (byte order), extracted from the fields
//                       the log type's schema marks (below).
//
// Decisions (and why):
//   - Null members are dropped so that `event.get(key, default)` returns the
//     default, as rules written for Panther expect (Panther's Go log processor
//     omits null fields). A null *element of an array* is kept: dropping it
//     would shift the positions of the elements after it (`[1, null, 3]`
//     stays as it is); objects inside arrays still lose their null members.
//     An object left empty by the removal stays as `{}`.
//   - Timestamps are written `YYYY-MM-DD HH:MM:SS.fffffffff` in UTC: nine
//     fractional digits, always present, as Panther's log processor writes
//     every timestamp (Go layout "2006-01-02 15:04:05.000000000"; see
//     docs/rule-contract.md, "Methods of PantherEvent" (event_time_epoch),
//     and panther_base_helpers' panther_nanotime_to_python_datetime, which
//     needs the fraction to be there). The same format replaces the value of the log type's timestamp
//     field in the row (Okta's `published`), as Panther's typed schemas do
//     (panther-analysis' Okta test events carry `"published": "2022-09-09
//     04:26:09.792"`). A timestamp that does not parse is left as it was and
//     p_event_time falls back to the parse time.
//   - Timestamps read: RFC 3339 (`2020-02-14T20:18:57.718Z`, any offset,
//     `T`/`t`, `Z`/`z`; a fraction of any length, truncated to nanoseconds)
//     and, for replayed Panther rows, Panther's own `YYYY-MM-DD HH:MM:SS[.f]`
//     (UTC, offset optional). Calendar-invalid dates (`2017-09-31`) and second
//     60 are rejected, as Go's time.Parse does, and so is a time outside the
//     years 1000-9999 in UTC (including one that its offset carries past
//     9999): FormatPantherTime would not write its year in four digits, so
//     the row's timestamp would not read back.
//   - Input fields named like the generated p_ fields above are replaced by
//     the generated values; other p_ fields (p_enrichment, p_udm, ...) are kept.
//   - A key repeated within one object keeps its first position and its last
//     value (json.loads' reading, which is how rules would see it), and is
//     dropped when that last value is null.
//   - Numbers keep their value, not their spelling: integers are written
//     exactly, floats in the shortest form that reads back to the same double
//     and always with a `.` or exponent (`1.0` stays a float for Python).
//     Integers beyond 64 bits and numbers beyond a double's range are copied
//     verbatim. NaN and Infinity are not JSON and are rejected.
//   - The output is compact JSON; strings are re-escaped (only `"`, `\` and
//     control characters; non-ASCII stays UTF-8).
//
// Okta.SystemLog indicators (fields are case-sensitive, as in Panther's
// schema; a field must hold a string):
//   p_any_ip_addresses  client.ipAddress, request.ipChain[].ip (exactly the
//                       fields Panther's Okta parser reads), when the value is
//                       an IPv4 or IPv6 address. These are the only IP-typed
//                       fields of the LogEvent schema: other places where an
//                       IP can appear (debugContext.debugData) are free-form.
//   p_any_domain_names  securityContext.domain (Panther's parser; any
//                       non-empty value is kept as it is: Panther's own Okta
//                       test data shows ".").
//   p_any_emails        actor.alternateId and target[].alternateId, when the
//                       value looks like an address (local@domain.tld):
//                       panther-analysis' Okta events (okta_password_accessed)
//                       list the email alternateIds of the actor and of user
//                       targets, and not an app target's "Application2".
//   p_any_usernames     actor.alternateId and target[].alternateId of
//                       entities of type User or AppUser, when the value is
//                       NOT an email (an AD/LDAP login such as "jdoe" or
//                       "CORP\jdoe"). Panther's Okta events with email logins
//                       have no p_any_usernames (and displayName, a person's
//                       name, is never one), so an email is not repeated here.
// Adding a log type is one entry in the schema table of normalize.cc: the
// name, the id field, the timestamp field and its indicator fields.
//
// Thread-safety: every function may be called from any thread concurrently
// (the parser is per thread); no GIL, no Python.

#ifndef PANTHERD_ENGINE_NORMALIZE_H_
#define PANTHERD_ENGINE_NORMALIZE_H_

#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace pantherd::engine {

// The largest raw event accepted by default (1 MiB).
inline constexpr size_t kDefaultMaxEventBytes = size_t{1} << 20;

// The Okta System Log, the first supported log type.
inline constexpr absl::string_view kOktaSystemLog = "Okta.SystemLog";

struct NormalizeContext {
  // The source the event came from: p_source_id and p_source_label.
  std::string source_id;
  std::string source_label;
  // When the event was parsed: p_parse_time, and p_event_time when the event
  // has no usable timestamp. absl::InfinitePast() (the default) means
  // absl::Now(); pass the injected clock's time for reproducible rows.
  absl::Time parse_time = absl::InfinitePast();
  // Makes p_row_id. Null: RandomRowId().
  std::function<std::string()> row_id_generator;
  // Raw events longer than this many bytes are rejected before parsing.
  size_t max_event_bytes = kDefaultMaxEventBytes;
};

struct NormalizedEvent {
  // The row as compact JSON text (see the file comment).
  std::string json;
  std::string log_type;
  // The event's own id (Okta: `uuid`) when it is a non-empty string, else "".
  std::string event_id;
  // p_event_time as a time: the event's timestamp, or the parse time.
  absl::Time event_time;
  // True when event_time came from the event, false when it is the parse time.
  bool event_time_from_event = false;
  absl::Time parse_time;
  std::string row_id;
};

// Normalises one raw event of `log_type`. Errors, all InvalidArgument with a
// message fit to show as the rejection reason:
//   "unknown log type \"X\" (supported: Okta.SystemLog)"
//   "event is N bytes, more than the limit of M bytes"
//   "JSON parse error: <simdjson's reason>"  (also NaN/Infinity)
//   "event is not a JSON object"
absl::StatusOr<NormalizedEvent> NormalizeEvent(absl::string_view raw_json,
                                               absl::string_view log_type,
                                               const NormalizeContext& ctx);

// True if NormalizeEvent knows `log_type`.
bool IsSupportedLogType(absl::string_view log_type);

// The supported log types, sorted.
std::vector<std::string> SupportedLogTypes();

// `t` in Panther's timestamp format, UTC: "2020-02-14 20:18:57.718000000".
std::string FormatPantherTime(absl::Time t);

// Parses an RFC 3339 timestamp or Panther's format (see the file comment).
std::optional<absl::Time> ParseEventTimestamp(absl::string_view text);

// 32 lowercase hex digits from 128 pseudo-random bits: a per-thread
// splitmix64 sequence seeded from OpenSSL's CSPRNG (unique, not secret).
std::string RandomRowId();

}  // namespace pantherd::engine

#endif  // PANTHERD_ENGINE_NORMALIZE_H_
