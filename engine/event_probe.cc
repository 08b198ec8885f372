// File: engine/event_probe.cc
//
// ProbeField: Panther's case-insensitive get/deep_get, decided over the
// parsed document without Python. Pure C++, no GIL.

#include "engine/event_probe.h"

#include <string>
#include <string_view>
#include <vector>

#include "engine/internal/dom_fields.h"
#include "engine/internal/event_document.h"
#include "simdjson.h"

namespace pantherd::engine {

using internal::AsciiEqualsIgnoreCase;
using internal::FindLastField;
using ElementType = simdjson::dom::element_type;

namespace {
bool AllAscii(std::string_view text) {
  for (char c : text) {
    if (static_cast<unsigned char>(c) >= 0x80) return false;
  }
  return true;
}
}  // namespace

ProbeResult ProbeField(const EventDocument& document, const std::vector<std::string>& path) {
  if (document.has_number_placeholders) return {FieldKind::kUnknown, {}};
  simdjson::dom::element current = document.dom.root();
  for (const std::string& key : path) {
    if (current.type() != ElementType::OBJECT) return {FieldKind::kMissing, {}};
    simdjson::dom::object object = current.get_object().value_unsafe();
    simdjson::dom::element value;
    if (!FindLastField(object, key, &value)) {
      if (!AllAscii(key)) return {FieldKind::kUnknown, {}};
      bool found = false;
      std::string_view found_key;
      for (simdjson::dom::key_value_pair field : object) {
        // Python's lower() maps some non-ASCII letters to ASCII ones.
        if (!AllAscii(field.key)) return {FieldKind::kUnknown, {}};
        if (found) {
          if (field.key == found_key) value = field.value;
        } else if (AsciiEqualsIgnoreCase(field.key, key)) {
          found = true;
          found_key = field.key;
          value = field.value;
        }
      }
      if (!found) return {FieldKind::kMissing, {}};
    }
    current = value;
  }
  switch (current.type()) {
    case ElementType::STRING:
      return {FieldKind::kString, current.get_string().value_unsafe()};
    case ElementType::INT64:
    case ElementType::UINT64:
    case ElementType::DOUBLE:
    case ElementType::BOOL:
      return {FieldKind::kHashable, {}};
    case ElementType::OBJECT:
    case ElementType::ARRAY:
      return {FieldKind::kUnhashable, {}};
    default:
      return {FieldKind::kUnknown, {}};
  }
}

}  // namespace pantherd::engine
