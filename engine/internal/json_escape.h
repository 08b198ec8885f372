// File: engine/internal/json_escape.h
//
// The byte rules of pantherd's JSON string escaping, shared by
// AppendJsonString (engine/yaml_json.cc) and the normaliser's row writer
// (engine/normalize.cc), so both write the same bytes: '"' and '\\' are
// escaped with a backslash, \b \f \n \r \t by name, every other byte below
// 0x20 and 0x7f as \u00xx (lowercase hex); every other byte, UTF-8 included,
// is copied as it is.
//
// Internal to pantherd_engine: include only from engine/. All functions are
// pure and thread-safe.

#ifndef PANTHERD_ENGINE_INTERNAL_JSON_ESCAPE_H_
#define PANTHERD_ENGINE_INTERNAL_JSON_ESCAPE_H_

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace pantherd::engine::internal {

// Which bytes need an escape.
struct JsonEscapeTable {
  bool needed[256] = {};
  constexpr JsonEscapeTable() {
    for (int c = 0; c < 0x20; ++c) needed[c] = true;
    needed[static_cast<unsigned char>('"')] = true;
    needed[static_cast<unsigned char>('\\')] = true;
    needed[0x7f] = true;
  }
};
inline constexpr JsonEscapeTable kJsonEscapeTable;

// True if one of the 8 bytes of `word` needs an escape. Each test is the
// exact "some byte is zero / below n" bit trick (n <= 0x80), so a word
// without such a byte is never reported.
inline bool WordNeedsJsonEscape(uint64_t word) {
  constexpr uint64_t kOnes = 0x0101010101010101ULL;
  constexpr uint64_t kHigh = 0x8080808080808080ULL;
  auto below = [](uint64_t x, uint64_t n) { return (x - kOnes * n) & ~x & kHigh; };
  return (below(word, 0x20) | below(word ^ (kOnes * '"'), 1) | below(word ^ (kOnes * '\\'), 1) |
          below(word ^ (kOnes * 0x7f), 1)) != 0;
}

// Returns the position of the first byte at or after `from` in bytes[0, n)
// that needs an escape, or n when none does. Reads only bytes[from, n).
inline size_t FindJsonEscape(const unsigned char* bytes, size_t from, size_t n) {
  size_t i = from;
  // 8 bytes at a time while none needs an escape, then byte by byte.
  while (i + 8 <= n) {
    uint64_t word;
    std::memcpy(&word, bytes + i, sizeof(word));
    if (WordNeedsJsonEscape(word)) break;
    i += 8;
  }
  while (i < n && !kJsonEscapeTable.needed[bytes[i]]) ++i;
  return i;
}

// The longest escape WriteJsonEscape writes.
inline constexpr size_t kMaxJsonEscapeLength = 6;

// Writes the escape of `c`, a byte that needs one, at `out` (room for
// kMaxJsonEscapeLength bytes) and returns the end of what it wrote.
inline char* WriteJsonEscape(unsigned char c, char* out) {
  char name = 0;
  switch (c) {
    case '"':
      name = '"';
      break;
    case '\\':
      name = '\\';
      break;
    case '\b':
      name = 'b';
      break;
    case '\f':
      name = 'f';
      break;
    case '\n':
      name = 'n';
      break;
    case '\r':
      name = 'r';
      break;
    case '\t':
      name = 't';
      break;
    default: {
      static constexpr char kHex[] = "0123456789abcdef";
      out[0] = '\\';
      out[1] = 'u';
      out[2] = '0';
      out[3] = '0';
      out[4] = kHex[c >> 4];
      out[5] = kHex[c & 0xf];
      return out + 6;
    }
  }
  out[0] = '\\';
  out[1] = name;
  return out + 2;
}

}  // namespace pantherd::engine::internal

#endif  // PANTHERD_ENGINE_INTERNAL_JSON_ESCAPE_H_
