#include "store/keys.h"

#include <cassert>
#include <cstdint>
#include <limits>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace pantherd::store {
namespace {

constexpr uint64_t kSignBit = uint64_t{1} << 63;

absl::Status WrongSize(absl::string_view bytes) {
  return absl::InvalidArgumentError(absl::StrCat("malformed key: an encoded integer is ",
                                                 kEncodedInt64Size, " bytes, got ", bytes.size(),
                                                 " (\"", absl::CHexEscape(bytes), "\")"));
}

}  // namespace

void AppendUint64(std::string* dst, uint64_t value) {
  char buf[kEncodedInt64Size];
  for (size_t i = 0; i < kEncodedInt64Size; ++i) {
    buf[i] = static_cast<char>((value >> (8 * (kEncodedInt64Size - 1 - i))) & 0xff);
  }
  dst->append(buf, sizeof(buf));
}

std::string EncodeUint64(uint64_t value) {
  std::string out;
  AppendUint64(&out, value);
  return out;
}

absl::StatusOr<uint64_t> DecodeUint64(absl::string_view bytes) {
  if (bytes.size() != kEncodedInt64Size) return WrongSize(bytes);
  uint64_t value = 0;
  for (char c : bytes) value = (value << 8) | static_cast<uint8_t>(c);
  return value;
}

void AppendInt64(std::string* dst, int64_t value) {
  AppendUint64(dst, static_cast<uint64_t>(value) ^ kSignBit);
}

std::string EncodeInt64(int64_t value) {
  std::string out;
  AppendInt64(&out, value);
  return out;
}

absl::StatusOr<int64_t> DecodeInt64(absl::string_view bytes) {
  absl::StatusOr<uint64_t> raw = DecodeUint64(bytes);
  if (!raw.ok()) return raw.status();
  // Two's complement conversion; well defined since C++20 and on every
  // compiler we support before that.
  return static_cast<int64_t>(*raw ^ kSignBit);
}

void AppendVarint(std::string* dst, uint64_t value) {
  while (value >= 0x80) {
    dst->push_back(static_cast<char>((value & 0x7f) | 0x80));
    value >>= 7;
  }
  dst->push_back(static_cast<char>(value));
}

bool ConsumeVarint(absl::string_view* in, uint64_t* value) {
  *value = 0;
  for (int shift = 0; shift < 64 && !in->empty(); shift += 7) {
    const auto byte = static_cast<uint8_t>(in->front());
    in->remove_prefix(1);
    *value |= static_cast<uint64_t>(byte & 0x7f) << shift;
    if ((byte & 0x80) == 0) return true;
  }
  return false;
}

absl::Status ValidateKeyPart(absl::string_view part, absl::string_view what) {
  if (part.empty()) return absl::InvalidArgumentError(absl::StrCat(what, " must not be empty"));
  if (part.find(kKeySeparator) != absl::string_view::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " \"", absl::CHexEscape(part), "\" must not contain a NUL byte"));
  }
  return absl::OkStatus();
}

namespace keys_internal {

std::string JoinList(std::initializer_list<absl::string_view> parts) {
  size_t size = 0;
  for (absl::string_view p : parts) size += p.size() + 1;
  std::string out;
  out.reserve(size);
  size_t i = 0;
  for (absl::string_view p : parts) {
    const bool last = ++i == parts.size();
    assert(last || p.find(kKeySeparator) == absl::string_view::npos);
    out.append(p.data(), p.size());
    if (!last) out.push_back(kKeySeparator);
  }
  return out;
}

}  // namespace keys_internal

absl::StatusOr<std::vector<absl::string_view>> Split(absl::string_view key, size_t n) {
  if (n == 0) return absl::InvalidArgumentError("Split: a key has at least one part");
  std::vector<absl::string_view> parts;
  parts.reserve(n);
  while (parts.size() + 1 < n) {
    const size_t pos = key.find(kKeySeparator);
    if (pos == absl::string_view::npos) {
      return absl::InvalidArgumentError(absl::StrCat(
          "malformed key: expected ", n, " NUL-separated parts, found ", parts.size() + 1));
    }
    parts.push_back(key.substr(0, pos));
    key.remove_prefix(pos + 1);
  }
  parts.push_back(key);
  return parts;
}

std::string PrefixSuccessor(absl::string_view prefix) {
  std::string out(prefix);
  while (!out.empty()) {
    unsigned char& last = reinterpret_cast<unsigned char&>(out.back());
    if (last != 0xff) {
      ++last;
      return out;
    }
    out.pop_back();
  }
  return out;
}

std::string RuleVersionKey(absl::string_view id, int64_t version) {
  assert(version >= 0);
  std::string out = RuleVersionPrefix(id);
  AppendUint64(&out, static_cast<uint64_t>(version));
  return out;
}

std::string RuleVersionPrefix(absl::string_view id) {
  assert(id.find(kKeySeparator) == absl::string_view::npos);
  return Join(id, "");
}

absl::StatusOr<RuleVersionKeyParts> ParseRuleVersionKey(absl::string_view key) {
  absl::StatusOr<std::vector<absl::string_view>> parts = Split(key, 2);
  if (!parts.ok()) return parts.status();
  absl::StatusOr<uint64_t> version = DecodeUint64((*parts)[1]);
  if (!version.ok()) return version.status();
  if (*version > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
    return absl::InvalidArgumentError(
        absl::StrCat("malformed rule version key: version ", *version, " exceeds int64"));
  }
  if ((*parts)[0].empty()) {
    return absl::InvalidArgumentError("malformed rule version key: empty id");
  }
  return RuleVersionKeyParts{(*parts)[0], static_cast<int64_t>(*version)};
}

}  // namespace pantherd::store
