// Helpers shared by the destination kinds (destination_*.cc): a small JSON
// writer, UTF-8-safe truncation and the human-readable facts of an alert.
// Internal to the kinds; the delivery manager uses destination_kind.h.
//
// Every function here is pure and thread-safe.
#ifndef PANTHERD_SERVER_DESTINATION_UTIL_H_
#define PANTHERD_SERVER_DESTINATION_UTIL_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"
#include "server/destination_kind.h"

namespace pantherd::server::destination_internal {

// Returns `s` as a JSON string literal (with quotes): '"', '\\' and control
// characters escaped, valid UTF-8 passed through, each invalid byte replaced
// by U+FFFD (so the result is always valid JSON).
std::string JsonString(absl::string_view s);

// Returns `s` when it has at most `max_bytes` bytes; otherwise its longest
// prefix ending at a UTF-8 character boundary followed by "…", together at
// most `max_bytes` bytes (at least 3).
std::string TruncateUtf8(absl::string_view s, size_t max_bytes);

// Returns `s` with each CR, LF and tab replaced by a space (for titles and
// summaries that must be one line).
std::string OneLine(absl::string_view s);

// Returns true if `json` is one JSON object (strict RFC 8259: no comments,
// single quotes, trailing commas, raw control characters or lone surrogate
// escapes; nested at most 64 deep; whitespace around it allowed) in valid
// UTF-8.
bool IsJsonObject(absl::string_view json);

// Writes one JSON object, members in the order added. Keys and string values
// are escaped with JsonString; AddRaw inserts `json` as given (the caller
// guarantees it is valid JSON).
class JsonObject {
 public:
  JsonObject& Add(absl::string_view key, absl::string_view value);
  JsonObject& Add(absl::string_view key, const char* value) {
    return Add(key, absl::string_view(value));
  }
  JsonObject& Add(absl::string_view key, int64_t value);
  JsonObject& Add(absl::string_view key, bool value);
  JsonObject& AddRaw(absl::string_view key, absl::string_view json);
  // Adds an array of strings.
  JsonObject& Add(absl::string_view key, const std::vector<std::string>& values);
  // Returns the object's text ("{...}").
  std::string Json() const { return out_ + "}"; }

 private:
  void Key(absl::string_view key);
  std::string out_ = "{";
};

// Writes one JSON array of raw JSON values (AddRaw) or strings (Add).
class JsonArray {
 public:
  JsonArray& Add(absl::string_view value);
  JsonArray& AddRaw(absl::string_view json);
  bool empty() const { return out_.size() == 1; }
  // Returns the array's text ("[...]").
  std::string Json() const { return out_ + "]"; }

 private:
  void Comma();
  std::string out_ = "[";
};

// The alert's context as JSON text: alert_context_json when it is an object,
// "{}" when empty, otherwise the text as a JSON string.
std::string ContextJson(const v1::Alert& alert);

// The rule's display name, else the rule id.
std::string RuleName(const AlertMessage& message);

// "[SEVERITY] title", prefixed "[Test] " for DeliveryAction::kTest; one line.
std::string DisplayTitle(const AlertMessage& message);

// "trigger", "resolve" or "test".
std::string ActionName(DeliveryAction action);

// The facts people read first, in order: Rule, Severity, Events, First
// event, Last event, Log types (values as display text; "-" when unknown).
std::vector<std::pair<std::string, std::string>> AlertFacts(const AlertMessage& message);

// The "Content-Type: application/json" and "Idempotency-Key" headers every
// kind sends.
HttpHeaders JsonHeaders(const AlertMessage& message);

// The value of settings[name] (or secrets[name] with `secret`), or
// `fallback` when absent or empty.
std::string Field(const DestinationConfig& config, const std::string& name, bool secret,
                  absl::string_view fallback = "");

}  // namespace pantherd::server::destination_internal

#endif  // PANTHERD_SERVER_DESTINATION_UTIL_H_
