// File: store/keys.h
//
// Key codecs for the store's column families. RocksDB orders keys by their
// bytes (memcmp), so every encoding here is chosen to make byte order equal
// the order callers want to scan in:
//
//   * integers are fixed-width 8-byte big-endian; signed integers have their
//     sign bit flipped first, so -1 < 0 < 1 holds for the encoded bytes too;
//   * composite keys join their parts with kKeySeparator ('\0'), a byte that
//     cannot occur inside ids, so all keys of id "a" sort before those of
//     "a\x01" or "ab", and the keys of one id are contiguous.
//
// Only the last part of a composite key may contain '\0' (it is typically a
// fixed-width integer or free text such as a dedup string); Split relies on it.
//
//   std::string key = RuleVersionKey("AWS.Root.Login", 3);  // id \0 be64(3)
//   PANTHERD_ASSIGN_OR_RETURN(RuleVersionKeyParts parts, ParseRuleVersionKey(key));
//
// Encoders never fail. Decoders return InvalidArgument for malformed input;
// a caller decoding a key it read from the store should report that as
// absl::DataLossError, since the store only ever holds well-formed keys.
// Every function here is pure and thread-safe.

#ifndef PANTHERD_STORE_KEYS_H_
#define PANTHERD_STORE_KEYS_H_

#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace pantherd::store {

// Separates the parts of a composite key.
inline constexpr char kKeySeparator = '\0';

// Size in bytes of an encoded 64-bit integer.
inline constexpr size_t kEncodedInt64Size = 8;

// Returns the 8-byte big-endian encoding of `value`. Byte order of encodings
// equals numeric order.
std::string EncodeUint64(uint64_t value);
// Appends EncodeUint64(value) to *dst. `dst` must not be null.
void AppendUint64(std::string* dst, uint64_t value);
// Inverse of EncodeUint64. InvalidArgument unless `bytes` is exactly 8 bytes.
absl::StatusOr<uint64_t> DecodeUint64(absl::string_view bytes);

// Returns the 8-byte order-preserving encoding of `value`: big-endian with the
// sign bit flipped, so INT64_MIN encodes as 00..00 and INT64_MAX as ff..ff.
std::string EncodeInt64(int64_t value);
// Appends EncodeInt64(value) to *dst. `dst` must not be null.
void AppendInt64(std::string* dst, int64_t value);
// Inverse of EncodeInt64. InvalidArgument unless `bytes` is exactly 8 bytes.
absl::StatusOr<int64_t> DecodeInt64(absl::string_view bytes);

// Appends `value` to *dst as a varint (7 bits a byte, least significant
// first; a value's bytes, not ordered). `dst` must not be null.
void AppendVarint(std::string* dst, uint64_t value);
// Reads a varint from the front of *in and removes it; false (with *in
// advanced arbitrarily) when *in ends inside one or it is longer than ten
// bytes.
bool ConsumeVarint(absl::string_view* in, uint64_t* value);

// Returns OK when `part` can be a non-final part of a composite key: it is
// non-empty and contains no kKeySeparator. Otherwise InvalidArgument naming
// `what` (e.g. "rule id"). Use it on ids that come from users before calling
// Join.
absl::Status ValidateKeyPart(absl::string_view part, absl::string_view what);

namespace keys_internal {
std::string JoinList(std::initializer_list<absl::string_view> parts);
}  // namespace keys_internal

// Returns the parts joined by kKeySeparator: Join("a", "b") == "a\0b"
// (as a 3-byte string). Each part is anything convertible to
// absl::string_view. Precondition (asserted in debug builds): no part but the
// last contains kKeySeparator. Join(id, "") yields id + '\0', the scan prefix
// of every composite key that starts with `id`.
template <typename... Parts>
std::string Join(const Parts&... parts) {
  return keys_internal::JoinList({absl::string_view(parts)...});
}

// Splits `key` into exactly `n` parts (n >= 1) at its first n - 1 separators;
// the last part is the remainder and may itself contain separators. The views
// point into `key`, which must outlive them. InvalidArgument when `key` has
// fewer than n - 1 separators or n is 0.
absl::StatusOr<std::vector<absl::string_view>> Split(absl::string_view key, size_t n);

// Returns the smallest string greater than every string that starts with
// `prefix`, for use as an exclusive upper bound; empty when there is none
// (`prefix` is empty or consists only of 0xff bytes).
std::string PrefixSuccessor(absl::string_view prefix);

// kRuleVersions keys: id '\0' be64(version). `id` must satisfy
// ValidateKeyPart and `version` must be >= 0 (asserted in debug builds).
std::string RuleVersionKey(absl::string_view id, int64_t version);
// The scan prefix of every version of `id`: id '\0'.
std::string RuleVersionPrefix(absl::string_view id);

// The decoded parts of a kRuleVersions key; `id` points into the key.
struct RuleVersionKeyParts {
  absl::string_view id;
  int64_t version = 0;
};
// Inverse of RuleVersionKey. InvalidArgument when `key` is not an id, a
// separator and 8 bytes, or the version does not fit in an int64.
absl::StatusOr<RuleVersionKeyParts> ParseRuleVersionKey(absl::string_view key);

// Keys of sequence-ordered families (kAlertLog, kAudit): be64(sequence).
inline std::string SequenceKey(uint64_t sequence) { return EncodeUint64(sequence); }
// Inverse of SequenceKey; InvalidArgument unless `key` is 8 bytes.
inline absl::StatusOr<uint64_t> ParseSequenceKey(absl::string_view key) {
  return DecodeUint64(key);
}

}  // namespace pantherd::store

#endif  // PANTHERD_STORE_KEYS_H_
