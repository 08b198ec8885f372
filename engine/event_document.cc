// File: engine/event_document.cc
//
// ParseEvent and the C++ lookups over a parsed event. Pure C++, no GIL.

#include "engine/event_document.h"

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "engine/internal/dom_fields.h"
#include "engine/internal/event_document.h"
#include "engine/internal/json_numbers.h"
#include "simdjson.h"

namespace pantherd::engine {

using internal::FindLastField;
using internal::ParseDocument;
using internal::RootObject;
using ElementType = simdjson::dom::element_type;

namespace internal {

// simdjson's DOM holds 64-bit integers and finite doubles; json.loads also
// accepts larger integers, numbers that overflow a double, and NaN/Infinity.
// When simdjson rejects a document we rewrite each such literal into a
// placeholder string (internal/json_numbers.h) and parse again; conversions to
// Python turn the placeholders back into the number json.loads would produce.
absl::StatusOr<std::shared_ptr<EventDocument>> ParseDocument(std::string_view json) {
  thread_local simdjson::dom::parser parser;
  auto document = std::make_shared<EventDocument>();
  simdjson::error_code error =
      parser.parse_into_document(document->dom, json.data(), json.size()).error();
  if (error != simdjson::SUCCESS) {
    std::optional<std::string> rewritten =
        internal::RewriteUnrepresentableNumbers(json, internal::NonFiniteLiterals::kRewrite);
    if (!rewritten.has_value() ||
        parser.parse_into_document(document->dom, rewritten->data(), rewritten->size()).error() !=
            simdjson::SUCCESS) {
      return absl::InvalidArgumentError(
          absl::StrCat("JSON parse error: ", simdjson::error_message(error)));
    }
    document->has_number_placeholders = true;
  }
  return document;
}

}  // namespace internal

absl::StatusOr<std::shared_ptr<const EventDocument>> ParseEvent(std::string_view json) {
  absl::StatusOr<std::shared_ptr<EventDocument>> document = ParseDocument(json);
  if (!document.ok()) return document.status();
  if ((*document)->dom.root().type() != ElementType::OBJECT) {
    return absl::InvalidArgumentError("event is not a JSON object");
  }
  return std::shared_ptr<const EventDocument>(*std::move(document));
}

std::optional<std::string_view> FindTopLevelString(const EventDocument& document,
                                                   std::string_view key) {
  simdjson::dom::element value;
  if (!FindLastField(RootObject(document), key, &value) || value.type() != ElementType::STRING) {
    return std::nullopt;
  }
  std::string_view text = value.get_string().value_unsafe();
  if (document.has_number_placeholders && internal::NumberPlaceholderLiteral(text).has_value()) {
    return std::nullopt;
  }
  return text;
}

}  // namespace pantherd::engine
