// File: engine/internal/event_document.h
//
// The inside of an EventDocument (engine/event_document.h) and the small
// helpers its readers share: the document parser (event_document.cc), the
// probe of the pre-conditions (event_probe.cc) and the Python types
// (event.cc). Not for use outside those files.
#ifndef PANTHERD_ENGINE_INTERNAL_EVENT_DOCUMENT_H_
#define PANTHERD_ENGINE_INTERNAL_EVENT_DOCUMENT_H_

#include <cstddef>
#include <memory>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "engine/event_document.h"
#include "simdjson.h"

namespace pantherd::engine {

class EventDocument {
 public:
  simdjson::dom::document dom;
  // True if some numbers were stored as placeholder strings
  // (engine/internal/json_numbers.h); readers turn them back into numbers.
  bool has_number_placeholders = false;
};

namespace internal {

// Parses any JSON value (ParseEvent requires an object; Python's constructors
// of the event types take lists and objects). Same number handling and
// errors as ParseEvent. Needs no GIL.
absl::StatusOr<std::shared_ptr<EventDocument>> ParseDocument(std::string_view json);

// The root object of a parsed event (ParseEvent guarantees it is one).
inline simdjson::dom::object RootObject(const EventDocument& document) {
  return document.dom.root().get_object().value_unsafe();
}

// Debian's Abseil is built with its own absl::string_view type, so absl's
// string helpers do not take the std::string_view that simdjson hands out.
inline bool EndsWith(std::string_view text, std::string_view suffix) {
  return text.size() >= suffix.size() && text.substr(text.size() - suffix.size()) == suffix;
}
inline bool AsciiEqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (absl::ascii_tolower(static_cast<unsigned char>(a[i])) !=
        absl::ascii_tolower(static_cast<unsigned char>(b[i]))) {
      return false;
    }
  }
  return true;
}

}  // namespace internal
}  // namespace pantherd::engine

#endif  // PANTHERD_ENGINE_INTERNAL_EVENT_DOCUMENT_H_
