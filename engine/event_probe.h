// File: engine/event_probe.h
//
// What a rule's `event.get(key)` or `event.deep_get(*keys)` would return,
// decided in C++ over the parsed document without Python, or "unknown" where
// only Python can decide. The pre-conditions of engine/rule_prefilter.h use
// it to skip rules that cannot match an event. Needs no GIL; thread-safe.
#ifndef PANTHERD_ENGINE_EVENT_PROBE_H_
#define PANTHERD_ENGINE_EVENT_PROBE_H_

#include <string>
#include <string_view>
#include <vector>

#include "engine/event_document.h"

namespace pantherd::engine {

// What ProbeField found at a path of an event.
enum class FieldKind {
  kMissing,     // absent (get/deep_get would return their default)
  kString,      // a JSON string; ProbeResult::text holds it
  kHashable,    // a number or a boolean
  kUnhashable,  // an object or an array
  kUnknown,     // cannot be decided without Python (null, odd keys, big numbers)
};

struct ProbeResult {
  FieldKind kind = FieldKind::kUnknown;
  std::string_view text;  // set for kString; lives as long as the document
};

// Reads the value that `event.get(path[0])` (one key) or
// `event.deep_get(*path)` returns in a rule, without Python: each key is
// looked up as Panther's case-insensitive mapping does (the exact key, else
// the first key in document order equal to it ignoring case), and a hop
// through a non-object ends at the default (kMissing). When the answer could
// depend on what only Python decides (a JSON null, a key that is not ASCII
// while the exact key is absent, numbers stored as placeholders), returns
// kUnknown. For the pre-conditions of engine/rule_prefilter.h. Needs no GIL.
ProbeResult ProbeField(const EventDocument& document, const std::vector<std::string>& path);

}  // namespace pantherd::engine

#endif  // PANTHERD_ENGINE_EVENT_PROBE_H_
