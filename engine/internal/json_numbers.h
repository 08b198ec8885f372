// File: engine/internal/json_numbers.h
//
// Scanning JSON number literals in raw text, for the places that must treat
// numbers simdjson cannot hold (integers beyond 64 bits, literals that
// overflow a double) before parsing: the event object and normalisation.
//
// Internal to pantherd_engine: include only from engine/.
#ifndef PANTHERD_ENGINE_INTERNAL_JSON_NUMBERS_H_
#define PANTHERD_ENGINE_INTERNAL_JSON_NUMBERS_H_

#include <cmath>
#include <cstdlib>
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

}  // namespace pantherd::engine::internal

#endif  // PANTHERD_ENGINE_INTERNAL_JSON_NUMBERS_H_
