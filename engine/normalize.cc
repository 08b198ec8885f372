#include "engine/normalize.h"

#include <arpa/inet.h>
#include <openssl/rand.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <random>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "engine/internal/dom_fields.h"
#include "engine/internal/json_escape.h"
#include "engine/internal/json_numbers.h"
#include "simdjson.h"

namespace pantherd::engine {
namespace {

using internal::AppendUniqueFields;
using internal::AsArray;
using internal::AsObject;
using internal::DomField;
using internal::FindLastField;
using ElementType = simdjson::dom::element_type;

// Debian's Abseil has its own absl::string_view; simdjson speaks std.
std::string_view Std(absl::string_view s) { return std::string_view(s.data(), s.size()); }
absl::string_view Absl(std::string_view s) { return absl::string_view(s.data(), s.size()); }

// ---------------------------------------------------------------------------
// The schema table
// ---------------------------------------------------------------------------

enum class Indicator { kIpAddress, kDomainName, kEmail, kUsername };
constexpr int kIndicatorCount = 4;

// One segment of an indicator path: a member name, and whether the member is
// an array whose every element is walked ("ipChain[]").
struct PathSegment {
  std::string_view name;
  bool each = false;
};

struct IndicatorField {
  Indicator kind;
  // Dotted path from the root; a segment ending in "[]" walks every element
  // of the array it names: "request.ipChain[].ip".
  std::string_view path;
  // When non-empty: only if the object holding the field has a string `type`
  // equal to one of these.
  std::vector<std::string_view> when_type_in;
  // Skip values that look like email addresses (they are listed as emails).
  bool skip_emails = false;
  // `path` split once, when the schema table is built (SplitPath).
  std::vector<PathSegment> segments = {};
};

struct LogTypeSchema {
  std::string_view log_type;
  // Top-level string field with the event's unique id ("" when none).
  std::string_view id_field;
  // Top-level timestamp field for p_event_time ("" when none).
  std::string_view time_field;
  std::vector<IndicatorField> indicators;
};

std::vector<PathSegment> SplitPath(std::string_view path) {
  std::vector<PathSegment> segments;
  size_t start = 0;
  for (;;) {
    size_t dot = path.find('.', start);
    PathSegment segment{path.substr(start, dot - start)};
    if (segment.name.size() > 2 && segment.name.substr(segment.name.size() - 2) == "[]") {
      segment.name.remove_suffix(2);
      segment.each = true;
    }
    segments.push_back(segment);
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  return segments;
}

const std::vector<LogTypeSchema>& Schemas() {
  static const std::vector<LogTypeSchema>* const schemas = [] {
    auto* table = new std::vector<LogTypeSchema>{
        {
            "Okta.SystemLog",
            "uuid",
            "published",
            {
                {Indicator::kIpAddress, "client.ipAddress", {}, false},
                {Indicator::kIpAddress, "request.ipChain[].ip", {}, false},
                {Indicator::kDomainName, "securityContext.domain", {}, false},
                {Indicator::kEmail, "actor.alternateId", {}, false},
                {Indicator::kEmail, "target[].alternateId", {}, false},
                {Indicator::kUsername, "actor.alternateId", {"User", "AppUser"}, true},
                {Indicator::kUsername, "target[].alternateId", {"User", "AppUser"}, true},
            },
        },
    };
    for (LogTypeSchema& schema : *table) {
      for (IndicatorField& field : schema.indicators) field.segments = SplitPath(field.path);
    }
    return table;
  }();
  return *schemas;
}

const LogTypeSchema* FindSchema(absl::string_view log_type) {
  for (const LogTypeSchema& schema : Schemas()) {
    if (schema.log_type == Std(log_type)) return &schema;
  }
  return nullptr;
}

// The generated fields, in the order they are appended.
constexpr std::string_view kGeneratedFields[] = {
    "p_log_type",     "p_row_id",           "p_event_time",       "p_parse_time", "p_source_id",
    "p_source_label", "p_any_ip_addresses", "p_any_domain_names", "p_any_emails", "p_any_usernames",
};
constexpr std::string_view kIndicatorFields[kIndicatorCount] = {
    "p_any_ip_addresses", "p_any_domain_names", "p_any_emails", "p_any_usernames"};

bool IsGeneratedField(std::string_view key) {
  if (key.size() < 2 || key[0] != 'p' || key[1] != '_') return false;
  for (std::string_view f : kGeneratedFields) {
    if (key == f) return true;
  }
  return false;
}

// ---------------------------------------------------------------------------
// Indicator values
// ---------------------------------------------------------------------------

bool LooksLikeEmail(std::string_view s) {
  size_t at = s.find('@');
  if (at == std::string_view::npos || at == 0 || s.find('@', at + 1) != std::string_view::npos) {
    return false;
  }
  for (char c : s) {
    if (static_cast<unsigned char>(c) <= ' ' || c == '"' || c == '<' || c == '>' || c == ',') {
      return false;
    }
  }
  std::string_view domain = s.substr(at + 1);
  if (domain.empty() || domain.front() == '.' || domain.back() == '.' ||
      domain.find("..") != std::string_view::npos || domain.find('.') == std::string_view::npos) {
    return false;
  }
  return true;
}

bool IsIpAddress(std::string_view s) {
  if (s.empty() || s.size() > 64) return false;
  char text[65];  // inet_pton needs a NUL-terminated copy
  std::memcpy(text, s.data(), s.size());
  text[s.size()] = '\0';
  unsigned char buffer[16];
  return inet_pton(AF_INET, text, buffer) == 1 || inet_pton(AF_INET6, text, buffer) == 1;
}

// The values found for each indicator, as views into the parsed document
// (valid until the thread's parser parses again); SortUnique makes each a
// sorted set. One per thread, reused: no allocation once grown.
using IndicatorSets = std::array<std::vector<std::string_view>, kIndicatorCount>;

// Sorts `values` in byte order (std::string_view's order, the same as
// std::string's) and removes repeats.
void SortUnique(std::vector<std::string_view>* values) {
  std::sort(values->begin(), values->end());
  values->erase(std::unique(values->begin(), values->end()), values->end());
}

void AddIndicator(const IndicatorField& field, simdjson::dom::object holder, std::string_view value,
                  IndicatorSets* sets) {
  if (value.empty()) return;
  if (!field.when_type_in.empty()) {
    simdjson::dom::element type;
    if (!FindLastField(holder, "type", &type) || type.type() != ElementType::STRING) return;
    std::string_view t = type.get_string().value_unsafe();
    if (std::find(field.when_type_in.begin(), field.when_type_in.end(), t) ==
        field.when_type_in.end()) {
      return;
    }
  }
  bool email = LooksLikeEmail(value);
  if (field.skip_emails && email) return;
  switch (field.kind) {
    case Indicator::kIpAddress:
      if (!IsIpAddress(value)) return;
      break;
    case Indicator::kEmail:
      if (!email) return;
      break;
    case Indicator::kDomainName:
    case Indicator::kUsername:
      break;
  }
  (*sets)[static_cast<int>(field.kind)].push_back(value);
}

void Collect(const IndicatorField& field, size_t segment, simdjson::dom::object object,
             IndicatorSets* sets);

// Follows the field's path from `value`, the value of segment `segment`
// found in `object`.
void Visit(const IndicatorField& field, size_t segment, simdjson::dom::object object,
           simdjson::dom::element value, IndicatorSets* sets) {
  const bool last = segment + 1 == field.segments.size();
  auto visit = [&](simdjson::dom::element v) {
    if (last) {
      if (v.type() == ElementType::STRING) {
        AddIndicator(field, object, v.get_string().value_unsafe(), sets);
      }
    } else if (v.type() == ElementType::OBJECT) {
      Collect(field, segment + 1, AsObject(v), sets);
    }
  };
  if (!field.segments[segment].each) {
    visit(value);
    return;
  }
  if (value.type() != ElementType::ARRAY) return;
  for (simdjson::dom::element item : AsArray(value)) {
    if (last) {
      // "list[]" as the last segment: the array's strings, held by `object`.
      if (item.type() == ElementType::STRING) {
        AddIndicator(field, object, item.get_string().value_unsafe(), sets);
      }
    } else if (item.type() == ElementType::OBJECT) {
      Collect(field, segment + 1, AsObject(item), sets);
    }
  }
}

// Walks the field's path (segments from `segment` on) below `object`.
void Collect(const IndicatorField& field, size_t segment, simdjson::dom::object object,
             IndicatorSets* sets) {
  simdjson::dom::element value;
  if (!FindLastField(object, field.segments[segment].name, &value)) return;
  Visit(field, segment, object, value, sets);
}

// The value of `key` among the distinct fields [begin, end) of an object
// (AppendUniqueFields' output: each key once, with its last value), or null.
const DomField* FindUniqueField(const DomField* begin, const DomField* end, std::string_view key) {
  for (const DomField* f = begin; f != end; ++f) {
    if (f->key == key) return f;
  }
  return nullptr;
}

// ---------------------------------------------------------------------------
// Numbers simdjson cannot hold
// ---------------------------------------------------------------------------

// simdjson's DOM holds 64-bit integers and finite doubles. A document with a
// larger integer, or a number beyond a double's range, is parsed a second
// time with each such literal turned into a placeholder string
// (internal/json_numbers.h), which the writer copies back verbatim. NaN and
// Infinity are left alone: they are not JSON, and the row is JSON.

using internal::IsAsciiDigit;

// ---------------------------------------------------------------------------
// The writer
// ---------------------------------------------------------------------------

// The row under construction: bytes are written through a cursor into a
// std::string sized ahead of the writing (Reserve before each piece; the
// string grows by doubling when a piece does not fit), then cut to what was
// written by Finish. Small pieces cost a store, not a call.
class RowBuffer {
 public:
  // Sizes *out for `expected` bytes; writes from its start.
  RowBuffer(std::string* out, size_t expected) : out_(out) {
    out_->resize(std::max<size_t>(expected, 64));
    pos_ = out_->data();
    end_ = pos_ + out_->size();
  }

  // Makes room for `n` more bytes and returns where they go.
  char* Reserve(size_t n) {
    if (static_cast<size_t>(end_ - pos_) < n) Grow(n);
    return pos_;
  }
  // The caller wrote `n` bytes at Reserve's pointer.
  void Advance(size_t n) { pos_ += n; }

  void Put(char c) {
    Reserve(1);
    *pos_++ = c;
  }
  void Append(std::string_view text) {
    Reserve(text.size());
    std::memcpy(pos_, text.data(), text.size());
    pos_ += text.size();
  }

  // `s` as a JSON string literal: the bytes AppendJsonString writes.
  void String(std::string_view s) {
    const unsigned char* bytes = reinterpret_cast<const unsigned char*>(s.data());
    const size_t n = s.size();
    // Room for the quotes and every byte unescaped; each escape makes room
    // for itself and what is left.
    Reserve(n + 2);
    *pos_++ = '"';
    size_t run = 0;
    for (;;) {
      const size_t i = internal::FindJsonEscape(bytes, run, n);
      Copy(bytes + run, i - run);
      if (i == n) break;
      Reserve(internal::kMaxJsonEscapeLength + (n - i - 1) + 1);
      pos_ = internal::WriteJsonEscape(bytes[i], pos_);
      run = i + 1;
    }
    *pos_++ = '"';
  }

  // Copies n bytes to the cursor (room reserved). Keys and most values are
  // short: up to 16 bytes are moved by two overlapping loads and stores
  // (never outside [from, from + n)) instead of a call to memcpy.
  void Copy(const unsigned char* from, size_t n) {
    if (n >= 8 && n <= 16) {
      uint64_t head, tail;
      std::memcpy(&head, from, 8);
      std::memcpy(&tail, from + n - 8, 8);
      std::memcpy(pos_, &head, 8);
      std::memcpy(pos_ + n - 8, &tail, 8);
    } else if (n >= 4 && n < 8) {
      uint32_t head, tail;
      std::memcpy(&head, from, 4);
      std::memcpy(&tail, from + n - 4, 4);
      std::memcpy(pos_, &head, 4);
      std::memcpy(pos_ + n - 4, &tail, 4);
    } else if (n < 4) {
      for (size_t i = 0; i < n; ++i) pos_[i] = static_cast<char>(from[i]);
    } else {
      std::memcpy(pos_, from, n);
    }
    pos_ += n;
  }

  // Cuts the string to what was written.
  void Finish() { out_->resize(static_cast<size_t>(pos_ - out_->data())); }

 private:
  void Grow(size_t n) {
    const size_t used = static_cast<size_t>(pos_ - out_->data());
    out_->resize(std::max(out_->size() * 2, used + n));
    pos_ = out_->data() + used;
    end_ = out_->data() + out_->size();
  }

  std::string* out_;
  char* pos_;
  char* end_;
};

void WriteDouble(double d, RowBuffer* out) {
  char* at = out->Reserve(64 + 2);
  std::to_chars_result r = std::to_chars(at, at + 64, d);
  std::string_view text(at, static_cast<size_t>(r.ptr - at));
  // Keep it a float when read back ("1" would become an int).
  if (text.find_first_of(".eE") == std::string_view::npos) {
    r.ptr[0] = '.';
    r.ptr[1] = '0';
    r.ptr += 2;
  }
  out->Advance(static_cast<size_t>(r.ptr - at));
}

template <typename Integer>
void WriteInteger(Integer value, RowBuffer* out) {
  char* at = out->Reserve(24);  // 20 digits and a sign at most
  std::to_chars_result r = std::to_chars(at, at + 24, value);
  out->Advance(static_cast<size_t>(r.ptr - at));
}

class Writer {
 public:
  // `fields` is scratch space for the members of the objects being written
  // (used as a stack; left as it was found).
  Writer(RowBuffer* out, bool has_placeholders, std::vector<DomField>* fields)
      : out_(out), placeholders_(has_placeholders), fields_(fields) {}

  void Value(simdjson::dom::element e) {
    switch (e.type()) {
      case ElementType::OBJECT:
        Object(AsObject(e));
        return;
      case ElementType::ARRAY: {
        out_->Put('[');
        bool first = true;
        for (simdjson::dom::element item : AsArray(e)) {
          if (!first) out_->Put(',');
          first = false;
          Value(item);  // null elements are kept (see normalize.h)
        }
        out_->Put(']');
        return;
      }
      case ElementType::STRING: {
        std::string_view s = e.get_string().value_unsafe();
        if (placeholders_) {
          if (std::optional<std::string_view> literal = internal::NumberPlaceholderLiteral(s)) {
            out_->Append(*literal);
            return;
          }
        }
        out_->String(s);
        return;
      }
      case ElementType::INT64:
        WriteInteger(e.get_int64().value_unsafe(), out_);
        return;
      case ElementType::UINT64:
        WriteInteger(e.get_uint64().value_unsafe(), out_);
        return;
      case ElementType::DOUBLE:
        WriteDouble(e.get_double().value_unsafe(), out_);
        return;
      case ElementType::BOOL:
        out_->Append(e.get_bool().value_unsafe() ? "true" : "false");
        return;
      case ElementType::NULL_VALUE:
        out_->Append("null");
        return;
    }
  }

  // Writes `"key":` preceded by a comma unless it is the first member.
  void Key(std::string_view key, bool* first) {
    if (!*first) out_->Put(',');
    *first = false;
    out_->String(key);
    out_->Put(':');
  }

 private:
  void Object(simdjson::dom::object object) {
    out_->Put('{');
    bool first = true;
    const size_t base = fields_->size();
    AppendUniqueFields(object, fields_);
    const size_t end = fields_->size();
    for (size_t i = base; i < end; ++i) {
      // Read before writing: a nested object appends to (and may move) *fields_.
      const simdjson::dom::element value = (*fields_)[i].value;
      if (value.type() == ElementType::NULL_VALUE) continue;
      Key((*fields_)[i].key, &first);
      Value(value);
    }
    fields_->resize(base);
    out_->Put('}');
  }

  RowBuffer* out_;
  bool placeholders_;
  std::vector<DomField>* fields_;
};

void WriteStringList(const std::vector<std::string_view>& values, RowBuffer* out) {
  out->Put('[');
  bool first = true;
  for (std::string_view v : values) {
    if (!first) out->Put(',');
    first = false;
    out->String(v);
  }
  out->Put(']');
}

// ---------------------------------------------------------------------------
// Timestamps
// ---------------------------------------------------------------------------

bool Digits(std::string_view s, size_t pos, size_t n, int* value) {
  if (pos + n > s.size()) return false;
  int v = 0;
  for (size_t i = pos; i < pos + n; ++i) {
    if (!IsAsciiDigit(s[i])) return false;
    v = v * 10 + (s[i] - '0');
  }
  *value = v;
  return true;
}

// Panther's timestamp text is this long: "2020-02-14 20:18:57.718000000".
constexpr size_t kPantherTimeLength = 29;

// Writes `t` as "YYYY-MM-DD HH:MM:SS.fffffffff" (UTC) into buffer[0..29) and
// returns true, as absl::FormatTime("%Y-%m-%d %H:%M:%E9S") would, by civil-
// time arithmetic; returns false, writing nothing, for a time outside the
// years 1000..9999 (and the infinite ones), where FormatTime's year is not
// four digits and which are left to it.
bool FormatPantherTimeFast(absl::Time t, char* buffer) {
  // 1000-01-01 00:00:00 and 9999-12-31 23:59:59 UTC, in Unix seconds.
  constexpr int64_t kFirstSecond = -30610224000;
  constexpr int64_t kLastSecond = 253402300799;
  if (t < absl::FromUnixSeconds(kFirstSecond) || t >= absl::FromUnixSeconds(kLastSecond + 1)) {
    return false;
  }
  const int64_t seconds = absl::ToUnixSeconds(t);  // rounds toward the past
  // In [0, 1e9): the sub-second part, truncated to nanoseconds as %E9S does.
  const int64_t nanos = absl::ToInt64Nanoseconds(t - absl::FromUnixSeconds(seconds));
  int64_t days = seconds / 86400;
  int64_t second_of_day = seconds % 86400;
  if (second_of_day < 0) {
    second_of_day += 86400;
    --days;
  }
  // Days since 1970-01-01 to the proleptic Gregorian calendar, by 400-year
  // eras counted from 0000-03-01 (so that the leap day ends each year).
  const int64_t z = days + 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const int64_t day_of_era = z - era * 146097;  // [0, 146096]
  const int64_t year_of_era =
      (day_of_era - day_of_era / 1460 + day_of_era / 36524 - day_of_era / 146096) / 365;
  const int64_t day_of_year =
      day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
  const int64_t march_month = (5 * day_of_year + 2) / 153;  // 0 = March
  const int day = static_cast<int>(day_of_year - (153 * march_month + 2) / 5 + 1);
  const int month = static_cast<int>(march_month < 10 ? march_month + 3 : march_month - 9);
  const int year = static_cast<int>(year_of_era + era * 400 + (month <= 2 ? 1 : 0));
  const int hour = static_cast<int>(second_of_day / 3600);
  const int minute = static_cast<int>(second_of_day / 60 % 60);
  const int second = static_cast<int>(second_of_day % 60);

  auto put = [](char* at, int64_t value, int width) {
    for (int i = width - 1; i >= 0; --i) {
      at[i] = static_cast<char>('0' + value % 10);
      value /= 10;
    }
  };
  put(buffer, year, 4);
  buffer[4] = '-';
  put(buffer + 5, month, 2);
  buffer[7] = '-';
  put(buffer + 8, day, 2);
  buffer[10] = ' ';
  put(buffer + 11, hour, 2);
  buffer[13] = ':';
  put(buffer + 14, minute, 2);
  buffer[16] = ':';
  put(buffer + 17, second, 2);
  buffer[19] = '.';
  put(buffer + 20, nanos, 9);
  return true;
}

// Writes `t` in Panther's format, as a JSON string (with quotes).
void WritePantherTime(absl::Time t, RowBuffer* out) {
  char* at = out->Reserve(kPantherTimeLength + 2);
  if (FormatPantherTimeFast(t, at + 1)) {
    at[0] = '"';
    at[kPantherTimeLength + 1] = '"';
    out->Advance(kPantherTimeLength + 2);
    return;
  }
  out->String(absl::FormatTime("%Y-%m-%d %H:%M:%E9S", t, absl::UTCTimeZone()));
}

int DaysInMonth(int year, int month) {
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (month == 2 && ((year % 4 == 0 && year % 100 != 0) || year % 400 == 0)) return 29;
  return kDays[month - 1];
}

}  // namespace

std::optional<absl::Time> ParseEventTimestamp(absl::string_view text_in) {
  std::string_view s = Std(text_in);
  int year, month, day, hour, minute, second;
  if (!Digits(s, 0, 4, &year) || s.size() < 19 || s[4] != '-' || !Digits(s, 5, 2, &month) ||
      s[7] != '-' || !Digits(s, 8, 2, &day) || !Digits(s, 11, 2, &hour) || s[13] != ':' ||
      !Digits(s, 14, 2, &minute) || s[16] != ':' || !Digits(s, 17, 2, &second)) {
    return std::nullopt;
  }
  const char sep = s[10];
  const bool rfc3339 = sep == 'T' || sep == 't';
  if (!rfc3339 && sep != ' ') return std::nullopt;
  if (month < 1 || month > 12 || day < 1 || day > DaysInMonth(year, month) || hour > 23 ||
      minute > 59 || second > 59) {
    return std::nullopt;
  }
  size_t i = 19;
  int64_t nanos = 0;
  if (i < s.size() && s[i] == '.') {
    size_t start = ++i;
    int digits = 0;
    while (i < s.size() && IsAsciiDigit(s[i])) {
      if (digits < 9) {
        nanos = nanos * 10 + (s[i] - '0');
        ++digits;
      }
      ++i;
    }
    if (i == start) return std::nullopt;
    for (; digits < 9; ++digits) nanos *= 10;
  }
  int offset_seconds = 0;
  if (i < s.size() && (s[i] == 'Z' || s[i] == 'z')) {
    ++i;
  } else if (i < s.size() && (s[i] == '+' || s[i] == '-')) {
    int oh, om;
    if (!Digits(s, i + 1, 2, &oh) || i + 3 >= s.size() || s[i + 3] != ':' ||
        !Digits(s, i + 4, 2, &om) || oh > 23 || om > 59) {
      return std::nullopt;
    }
    offset_seconds = (oh * 3600 + om * 60) * (s[i] == '-' ? -1 : 1);
    i += 6;
  } else if (rfc3339) {
    return std::nullopt;  // RFC 3339 requires the offset
  }
  if (i != s.size()) return std::nullopt;
  absl::Time t = absl::FromCivil(absl::CivilSecond(year, month, day, hour, minute, second),
                                 absl::UTCTimeZone());
  t = t - absl::Seconds(offset_seconds) + absl::Nanoseconds(nanos);
  // Years 1000-9999 in UTC only, which FormatPantherTime writes in four
  // digits: other years would be written in another width (or with a sign)
  // and not read back, so a row normalised again would change. (The text's
  // year has four digits, but the offset can carry it past 9999.)
  const int64_t utc_year = absl::ToCivilYear(t, absl::UTCTimeZone()).year();
  if (utc_year < 1000 || utc_year > 9999) return std::nullopt;
  return t;
}

std::string FormatPantherTime(absl::Time t) {
  char buffer[kPantherTimeLength];
  if (FormatPantherTimeFast(t, buffer)) return std::string(buffer, sizeof(buffer));
  return absl::FormatTime("%Y-%m-%d %H:%M:%E9S", t, absl::UTCTimeZone());
}

std::string RandomRowId() {
  // A per-thread splitmix64 sequence, seeded once from OpenSSL's CSPRNG:
  // row ids need to be unique, not unpredictable, and a CSPRNG call per
  // event cost more than parsing it.
  thread_local uint64_t state = [] {
    uint64_t seed = 0;
    if (RAND_bytes(reinterpret_cast<unsigned char*>(&seed), sizeof(seed)) != 1) {
      std::random_device random;
      seed = (static_cast<uint64_t>(random()) << 32) ^ random();
    }
    return seed;
  }();
  auto next = [] {
    uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  };
  static constexpr char kHex[] = "0123456789abcdef";
  std::string id(32, '0');
  for (int half = 0; half < 2; ++half) {
    uint64_t bits = next();
    for (int i = 0; i < 16; ++i) {
      id[half * 16 + i] = kHex[(bits >> (60 - 4 * i)) & 0xf];
    }
  }
  return id;
}

bool IsSupportedLogType(absl::string_view log_type) { return FindSchema(log_type) != nullptr; }

std::vector<std::string> SupportedLogTypes() {
  std::vector<std::string> types;
  for (const LogTypeSchema& schema : Schemas()) types.emplace_back(schema.log_type);
  std::sort(types.begin(), types.end());
  return types;
}

absl::StatusOr<NormalizedEvent> NormalizeEvent(absl::string_view raw_json,
                                               absl::string_view log_type,
                                               const NormalizeContext& ctx) {
  const LogTypeSchema* schema = FindSchema(log_type);
  if (schema == nullptr) {
    std::string supported;
    for (const std::string& t : SupportedLogTypes()) {
      absl::StrAppend(&supported, supported.empty() ? "" : ", ", t);
    }
    return absl::InvalidArgumentError(
        absl::StrCat("unknown log type \"", log_type, "\" (supported: ", supported, ")"));
  }
  if (raw_json.size() > ctx.max_event_bytes) {
    return absl::InvalidArgumentError(absl::StrCat("event is ", raw_json.size(),
                                                   " bytes, more than the limit of ",
                                                   ctx.max_event_bytes, " bytes"));
  }

  thread_local simdjson::dom::parser parser;
  // simdjson reads up to SIMDJSON_PADDING bytes past the input: given
  // unpadded input it copies it into a fresh allocation each time, so the
  // event is copied into this thread's reused, padded buffer instead.
  thread_local std::vector<char> padded;
  if (padded.size() < raw_json.size() + simdjson::SIMDJSON_PADDING) {
    padded.resize(raw_json.size() + simdjson::SIMDJSON_PADDING);
  }
  std::memcpy(padded.data(), raw_json.data(), raw_json.size());
  simdjson::dom::element root;
  bool placeholders = false;
  std::optional<std::string> rewritten;
  simdjson::error_code error =
      parser.parse(padded.data(), raw_json.size(), /*realloc_if_needed=*/false).get(root);
  if (error != simdjson::SUCCESS) {
    rewritten =
        internal::RewriteUnrepresentableNumbers(Std(raw_json), internal::NonFiniteLiterals::kLeave);
    if (!rewritten.has_value() ||
        parser.parse(rewritten->data(), rewritten->size()).get(root) != simdjson::SUCCESS) {
      return absl::InvalidArgumentError(
          absl::StrCat("JSON parse error: ", simdjson::error_message(error)));
    }
    placeholders = true;
  }
  if (root.type() != ElementType::OBJECT) {
    return absl::InvalidArgumentError("event is not a JSON object");
  }
  simdjson::dom::object object = AsObject(root);

  NormalizedEvent event;
  event.log_type = std::string(log_type);
  event.parse_time = ctx.parse_time == absl::InfinitePast() ? absl::Now() : ctx.parse_time;
  event.row_id = ctx.row_id_generator ? ctx.row_id_generator() : RandomRowId();

  // The top level's distinct fields, found once for the lookups below and
  // for the writer. They are the bottom of the writer's stack: nested
  // objects append after them and shrink back, so they stay where they are.
  thread_local std::vector<DomField> fields;
  fields.clear();
  AppendUniqueFields(object, &fields);
  const size_t top_level = fields.size();
  const DomField* const top_begin = fields.data();
  const DomField* const top_end = top_begin + top_level;

  const DomField* found;
  if (!schema->id_field.empty() &&
      (found = FindUniqueField(top_begin, top_end, schema->id_field)) != nullptr &&
      found->value.type() == ElementType::STRING) {
    event.event_id = std::string(found->value.get_string().value_unsafe());
  }
  std::optional<absl::Time> event_time;
  if (!schema->time_field.empty() &&
      (found = FindUniqueField(top_begin, top_end, schema->time_field)) != nullptr &&
      found->value.type() == ElementType::STRING) {
    event_time = ParseEventTimestamp(Absl(found->value.get_string().value_unsafe()));
  }
  event.event_time_from_event = event_time.has_value();
  event.event_time = event_time.value_or(event.parse_time);

  thread_local IndicatorSets indicators;
  for (std::vector<std::string_view>& values : indicators) values.clear();
  for (const IndicatorField& field : schema->indicators) {
    found = FindUniqueField(top_begin, top_end, field.segments[0].name);
    if (found != nullptr) Visit(field, 0, object, found->value, &indicators);
  }
  size_t indicator_bytes = 0;
  for (std::vector<std::string_view>& values : indicators) {
    SortUnique(&values);
    for (std::string_view v : values) indicator_bytes += v.size() + 3;  // quotes and comma
  }

  // The raw event's size bounds the copy unless strings gain escapes; the
  // generated fields add their names (~200 bytes), three timestamps, the
  // source and the indicator values.
  RowBuffer out(&event.json, raw_json.size() + 512 + ctx.source_id.size() +
                                 ctx.source_label.size() + indicator_bytes);
  Writer writer(&out, placeholders, &fields);
  out.Put('{');
  bool first = true;
  for (size_t i = 0; i < top_level; ++i) {
    const DomField field = fields[i];
    if (field.value.type() == ElementType::NULL_VALUE || IsGeneratedField(field.key)) continue;
    writer.Key(field.key, &first);
    if (event_time.has_value() && field.key == schema->time_field) {
      WritePantherTime(*event_time, &out);
    } else {
      writer.Value(field.value);
    }
  }
  auto string_field = [&](std::string_view key, std::string_view text) {
    writer.Key(key, &first);
    out.String(text);
  };
  string_field("p_log_type", Std(log_type));
  string_field("p_row_id", event.row_id);
  writer.Key("p_event_time", &first);
  WritePantherTime(event.event_time, &out);
  writer.Key("p_parse_time", &first);
  WritePantherTime(event.parse_time, &out);
  string_field("p_source_id", ctx.source_id);
  string_field("p_source_label", ctx.source_label);
  for (int i = 0; i < kIndicatorCount; ++i) {
    writer.Key(kIndicatorFields[i], &first);
    WriteStringList(indicators[i], &out);
  }
  out.Put('}');
  out.Finish();
  return event;
}

}  // namespace pantherd::engine
