// File: engine/event_document.h
//
// One event as rules read it, parsed once: an immutable simdjson document
// that the Python event type (engine/event.h), the pre-conditions' probe
// (engine/event_probe.h) and C++ routing read without converting it. Parsing
// takes no GIL and runs on any thread.
//
//   absl::StatusOr<std::shared_ptr<const EventDocument>> doc = ParseEvent(json);
//   if (!doc.ok()) return doc.status();  // InvalidArgument: bad JSON
//   std::optional<std::string_view> type = FindTopLevelString(**doc, "p_log_type");
#ifndef PANTHERD_ENGINE_EVENT_DOCUMENT_H_
#define PANTHERD_ENGINE_EVENT_DOCUMENT_H_

#include <memory>
#include <optional>
#include <string_view>

#include "absl/status/statusor.h"

namespace pantherd::engine {

// One parsed event: an immutable simdjson document. Opaque outside the event files
// (engine/internal/event_document.h).
// Safe to share between threads and to destroy without the GIL.
class EventDocument;

// Parses one event. The top level must be a JSON object.
//
// Accepts what Python's json.loads accepts (so what Panther accepts), with
// json.loads' meaning: a repeated key keeps its first position and its last
// value; integers beyond 64 bits become Python ints of any size; NaN,
// Infinity and -Infinity, and numbers too large for a double, become Python
// floats. The one input json.loads takes and this rejects is a string with an
// unpaired UTF-16 surrogate escape ("\ud800").
//
// Returns InvalidArgument with simdjson's error text ("JSON parse error: ...")
// if `json` is not valid JSON, or "event is not a JSON object" if the top
// level is an array or a scalar. Needs no GIL; safe to call from any thread.
absl::StatusOr<std::shared_ptr<const EventDocument>> ParseEvent(std::string_view json);

// Returns the string value of the top-level field named exactly `key`
// (case-sensitive, last occurrence wins), or nullopt if it is absent or not a
// string. For C++ callers that route events (p_log_type, p_event_time) before
// any Python runs. The view lives as long as `document`. Needs no GIL.
std::optional<std::string_view> FindTopLevelString(const EventDocument& document,
                                                   std::string_view key);

}  // namespace pantherd::engine

#endif  // PANTHERD_ENGINE_EVENT_DOCUMENT_H_
