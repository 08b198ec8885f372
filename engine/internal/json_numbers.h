// File: engine/internal/json_numbers.h
//
// Numbers simdjson cannot hold, for the two places that parse raw events with
// simdjson: the event object (event.cc) and normalisation (normalize.cc).
//
// simdjson's DOM holds 64-bit integers and finite doubles; a JSON document may
// hold larger integers and literals that overflow a double. When simdjson
// rejects a document, its caller rewrites each such literal into a placeholder
// string (RewriteUnrepresentableNumbers), parses the result, and turns every
// placeholder it meets back into its literal (NumberPlaceholderLiteral). The
// number scanner underneath is here too.
//
// Internal to pantherd_engine: include only from engine/.
#ifndef PANTHERD_ENGINE_INTERNAL_JSON_NUMBERS_H_
#define PANTHERD_ENGINE_INTERNAL_JSON_NUMBERS_H_

#include <cmath>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>

namespace pantherd::engine::internal {

inline bool IsAsciiDigit(char c) { return c >= '0' && c <= '9'; }

// Returns the length of the JSON number at the start of `s`, or 0 if there is
// none. Sets *is_integer when it has neither fraction nor exponent.
inline size_t JsonNumberLength(std::string_view s, bool* is_integer) {
  size_t i = 0;
  if (i < s.size() && s[i] == '-') ++i;
  if (i >= s.size() || !IsAsciiDigit(s[i])) return 0;
  if (s[i] == '0') {
    ++i;
  } else {
    while (i < s.size() && IsAsciiDigit(s[i])) ++i;
  }
  *is_integer = true;
  if (i < s.size() && s[i] == '.') {
    size_t digits = i + 1;
    while (digits < s.size() && IsAsciiDigit(s[digits])) ++digits;
    if (digits == i + 1) return i;
    i = digits;
    *is_integer = false;
  }
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    size_t j = i + 1;
    if (j < s.size() && (s[j] == '+' || s[j] == '-')) ++j;
    size_t digits = j;
    while (digits < s.size() && IsAsciiDigit(s[digits])) ++digits;
    if (digits == j) return i;
    i = digits;
    *is_integer = false;
  }
  return i;
}

// True if simdjson cannot hold the number literal `token` exactly: an integer
// outside int64/uint64, or a literal whose double value overflows.
inline bool JsonNumberExceedsSimdjson(std::string_view token, bool is_integer) {
  if (is_integer) {
    bool negative = token[0] == '-';
    std::string_view digits = negative ? token.substr(1) : token;
    std::string_view limit = negative ? "9223372036854775808" : "18446744073709551615";
    return digits.size() > limit.size() || (digits.size() == limit.size() && digits > limit);
  }
  return std::isinf(std::strtod(std::string(token).c_str(), nullptr));
}

// The literals that are not JSON numbers at all but that Python's json.loads
// accepts: NaN, Infinity and -Infinity.
enum class NonFiniteLiterals {
  // Left as they are, so simdjson rejects the document. For normalisation,
  // whose output is JSON that NaN and Infinity cannot appear in.
  kLeave,
  // Rewritten into placeholders like the numbers, so the document parses. For
  // the event object, which gives rules what json.loads would.
  kRewrite,
};

// Returns `json` with every number literal simdjson cannot hold (an integer
// outside int64/uint64, a literal whose double overflows: see
// JsonNumberExceedsSimdjson), and with `non_finite` also NaN, Infinity and
// -Infinity, replaced by a placeholder string: the JSON string "\u0000"
// followed by the rest of NumberPlaceholderPrefix() and the literal's text.
// Returns nullopt when there is no such literal.
//
// Only literals in a value's place are rewritten: at the top level, after ':',
// after '[' or after ',' inside an array. Text inside strings (escapes
// included) is never touched, and a literal where a key belongs stays as it
// is, so a document that is not JSON does not become JSON by the rewrite.
// Numbers simdjson can hold are left untouched byte for byte. `json` need not
// be valid JSON; the result is then whatever the rewrite makes of it.
std::optional<std::string> RewriteUnrepresentableNumbers(
    std::string_view json, NonFiniteLiterals non_finite = NonFiniteLiterals::kLeave);

// The prefix of every placeholder string (after JSON unescaping): a NUL
// character, "pantherd-number-", 128 random bits in hex (drawn once per
// process) and ':'. No string in real input collides with it.
const std::string& NumberPlaceholderPrefix();

// If `s` (an unescaped string value) is a placeholder, returns the literal it
// stands for, exactly as it was written in the input; otherwise nullopt.
std::optional<std::string_view> NumberPlaceholderLiteral(std::string_view s);

}  // namespace pantherd::engine::internal

#endif  // PANTHERD_ENGINE_INTERNAL_JSON_NUMBERS_H_
