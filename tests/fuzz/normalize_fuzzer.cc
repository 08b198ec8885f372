// File: tests/fuzz/normalize_fuzzer.cc
//
// Fuzz target: engine/normalize.h's NormalizeEvent, fed arbitrary bytes as a
// raw Okta System Log event (what an Okta source or an Ingest call hands it).
//
// Beyond "no crash, no sanitizer report" it checks, for every event that is
// accepted:
//   - the row is one JSON object, and it carries the standard p_ fields;
//   - normalising the row again (same context) gives the same row: a
//     re-sent Panther row is read exactly as it was written.
// And, for every input, ParseEventTimestamp on the bytes as text: a time it
// returns prints with FormatPantherTime and parses back to the same time.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "engine/normalize.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

using ::pantherd::engine::NormalizeContext;
using ::pantherd::engine::NormalizedEvent;

NormalizeContext FixedContext() {
  NormalizeContext ctx;
  ctx.source_id = "fuzz-source";
  ctx.source_label = "Fuzz";
  ctx.parse_time = absl::FromUnixSeconds(1700000000) + absl::Nanoseconds(123);
  ctx.row_id_generator = [] { return std::string("0123456789abcdef0123456789abcdef"); };
  return ctx;
}

void CheckRow(const NormalizedEvent& row) {
  // Not parsed with simdjson here: numbers beyond a double's range are
  // copied verbatim (1e400), which simdjson refuses; normalising the row
  // again (below) reads it the way pantherd does.
  FUZZ_CHECK(row.json.size() >= 2 && row.json.front() == '{' && row.json.back() == '}',
             "row is not an object: %s", FuzzClip(row.json).c_str());
  for (const char* field :
       {"p_log_type", "p_row_id", "p_event_time", "p_parse_time", "p_source_id", "p_source_label",
        "p_any_ip_addresses", "p_any_domain_names", "p_any_emails", "p_any_usernames"}) {
    const std::string member = std::string("\"") + field + "\":";
    // The last occurrence: the generated fields come after the event's own
    // (whose keys may contain the same text after an escaped quote).
    const size_t at = row.json.rfind(member);
    FUZZ_CHECK(at != std::string::npos && (row.json[at - 1] == ',' || row.json[at - 1] == '{'),
               "row lacks %s: %s", field, FuzzClip(row.json).c_str());
  }
}

void CheckTimestamp(absl::string_view text) {
  std::optional<absl::Time> t = pantherd::engine::ParseEventTimestamp(text);
  if (!t.has_value()) return;
  const std::string formatted = pantherd::engine::FormatPantherTime(*t);
  std::optional<absl::Time> again = pantherd::engine::ParseEventTimestamp(formatted);
  FUZZ_CHECK(again.has_value() && *again == *t, "%s formats as %s, which reads back differently",
             FuzzClip(std::string(text)).c_str(), formatted.c_str());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view raw(reinterpret_cast<const char*>(data), size);
  CheckTimestamp(raw);
  const NormalizeContext ctx = FixedContext();
  absl::StatusOr<NormalizedEvent> row =
      pantherd::engine::NormalizeEvent(raw, pantherd::engine::kOktaSystemLog, ctx);
  if (!row.ok()) {
    FUZZ_CHECK(absl::IsInvalidArgument(row.status()), "unexpected error %s",
               row.status().ToString().c_str());
    return 0;
  }
  CheckRow(*row);
  absl::StatusOr<NormalizedEvent> again =
      pantherd::engine::NormalizeEvent(row->json, pantherd::engine::kOktaSystemLog, ctx);
  FUZZ_CHECK(again.ok(), "the row does not normalise again: %s (row %s)",
             again.status().ToString().c_str(), FuzzClip(row->json).c_str());
  FUZZ_CHECK(again->json == row->json, "normalising twice changes the row:\n%s\n%s",
             FuzzClip(row->json).c_str(), FuzzClip(again->json).c_str());
  FUZZ_CHECK(again->event_id == row->event_id && again->event_time == row->event_time,
             "normalising twice changes the id or time of %s", FuzzClip(row->json).c_str());
  return 0;
}
