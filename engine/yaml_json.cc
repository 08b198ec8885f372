// File: engine/yaml_json.cc
//
// See yaml_json.h. yaml-cpp accessors can throw (e.g. on an invalid node);
// every public function catches YAML::Exception and reports InvalidArgument.

#include "engine/yaml_json.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <optional>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/string_view.h"
#include "engine/internal/json_escape.h"

namespace pantherd::engine {
namespace {

constexpr absl::string_view kTagPrefix = "tag:yaml.org,2002:";

// Tags yaml-cpp gives untagged nodes: "?" for plain scalars and collections,
// "" for null nodes and nodes built in code.
bool IsNonSpecificPlain(const std::string& tag) { return tag.empty() || tag == "?"; }

std::string ShortTag(const std::string& tag) {
  if (absl::StartsWith(tag, kTagPrefix)) return absl::StrCat("!!", tag.substr(kTagPrefix.size()));
  return tag;
}

std::string LinePrefix(int line) { return line > 0 ? absl::StrCat("line ", line, ": ") : ""; }

bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsOctDigit(char c) { return c >= '0' && c <= '7'; }
bool IsHexDigit(char c) { return IsDigit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }
bool AllOf(absl::string_view s, bool (*pred)(char)) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!pred(c)) return false;
  }
  return true;
}

bool IsCoreBool(absl::string_view v) {
  return v == "true" || v == "True" || v == "TRUE" || v == "false" || v == "False" || v == "FALSE";
}
bool IsCoreNull(absl::string_view v) {
  return v.empty() || v == "~" || v == "null" || v == "Null" || v == "NULL";
}

// Converts digits in `base` (8 or 16) to decimal digits, of any length:
// little-endian limbs of 9 decimal digits, fed 7 hex or 9 octal digits at a
// time (a limb times 2^28 plus the carry stays below 2^64). Quadratic in the
// length, so callers bound it (kMaxIntegerDigits).
std::string BaseToDecimal(absl::string_view digits, int base) {
  constexpr uint64_t kLimb = 1000000000;
  const size_t chunk = base == 16 ? 7 : 9;
  std::vector<uint64_t> limbs = {0};
  for (size_t at = 0; at < digits.size(); at += chunk) {
    const absl::string_view part = digits.substr(at, chunk);
    uint64_t carry = 0;
    uint64_t scale = 1;
    for (char c : part) {
      carry = carry * base +
              static_cast<uint64_t>(IsDigit(c) ? c - '0' : absl::ascii_tolower(c) - 'a' + 10);
      scale *= base;
    }
    for (uint64_t& limb : limbs) {
      const uint64_t v = limb * scale + carry;
      limb = v % kLimb;
      carry = v / kLimb;
    }
    while (carry > 0) {
      limbs.push_back(carry % kLimb);
      carry /= kLimb;
    }
  }
  std::string out = std::to_string(limbs.back());
  for (size_t i = limbs.size() - 1; i-- > 0;)
    absl::StrAppend(&out, absl::Dec(limbs[i], absl::kZeroPad9));
  return out;
}

// Canonical decimal for [-+]?[0-9]+.
std::string CanonicalDecimal(absl::string_view v) {
  bool negative = false;
  if (!v.empty() && (v[0] == '-' || v[0] == '+')) {
    negative = v[0] == '-';
    v.remove_prefix(1);
  }
  size_t first = v.find_first_not_of('0');
  if (first == absl::string_view::npos) return "0";
  return absl::StrCat(negative ? "-" : "", v.substr(first));
}

// Python (3.11 and later, as Debian 12's) refuses to convert integers of
// more than 4300 digits to or from decimal text, so pat cannot load or dump
// them; here the limit also bounds BaseToDecimal's quadratic cost.
constexpr size_t kMaxIntegerDigits = 4300;

// InvalidArgument if `v` is a 0o/0x integer with more than kMaxIntegerDigits
// digits after its leading zeros.
absl::Status CheckIntegerLength(absl::string_view v, int line) {
  if (v.size() <= kMaxIntegerDigits + 2 || v[0] != '0' || (v[1] != 'o' && v[1] != 'x')) {
    return absl::OkStatus();
  }
  absl::string_view digits = v.substr(2);
  if (!AllOf(digits, v[1] == 'o' ? IsOctDigit : IsHexDigit)) return absl::OkStatus();
  const size_t first = digits.find_first_not_of('0');
  if (first == absl::string_view::npos || digits.size() - first <= kMaxIntegerDigits) {
    return absl::OkStatus();
  }
  return absl::InvalidArgumentError(absl::StrCat(LinePrefix(line), "the integer ", v.substr(0, 12),
                                                 "... has more than ", kMaxIntegerDigits,
                                                 " digits (Python refuses integers that long)"));
}

// Resolves a 1.2 core-schema int; nullopt if `v` is not one.
std::optional<std::string> ResolveInt(absl::string_view v) {
  if (v.size() > 2 && v[0] == '0' && v[1] == 'o' && AllOf(v.substr(2), IsOctDigit)) {
    return BaseToDecimal(v.substr(2), 8);
  }
  if (v.size() > 2 && v[0] == '0' && v[1] == 'x' && AllOf(v.substr(2), IsHexDigit)) {
    return BaseToDecimal(v.substr(2), 16);
  }
  absl::string_view digits = v;
  if (!digits.empty() && (digits[0] == '-' || digits[0] == '+')) digits.remove_prefix(1);
  if (AllOf(digits, IsDigit)) return CanonicalDecimal(v);
  return std::nullopt;
}

// True for [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?
bool IsCoreFloatSyntax(absl::string_view v) {
  size_t i = 0;
  if (i < v.size() && (v[i] == '-' || v[i] == '+')) ++i;
  size_t int_digits = 0;
  while (i < v.size() && IsDigit(v[i])) ++i, ++int_digits;
  size_t frac_digits = 0;
  if (i < v.size() && v[i] == '.') {
    ++i;
    while (i < v.size() && IsDigit(v[i])) ++i, ++frac_digits;
    if (int_digits == 0 && frac_digits == 0) return false;
  } else if (int_digits == 0) {
    return false;
  }
  if (i < v.size() && (v[i] == 'e' || v[i] == 'E')) {
    ++i;
    if (i < v.size() && (v[i] == '-' || v[i] == '+')) ++i;
    size_t exp_digits = 0;
    while (i < v.size() && IsDigit(v[i])) ++i, ++exp_digits;
    if (exp_digits == 0) return false;
  }
  return i == v.size();
}

// Python's repr() of a finite or non-finite double.
std::string PythonFloatRepr(double d) {
  if (std::isnan(d)) return "nan";
  if (std::isinf(d)) return d < 0 ? "-inf" : "inf";
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof(buf), d, std::chars_format::scientific);
  absl::string_view sci(buf, res.ptr - buf);  // e.g. "-1.5e+00", "1e+16"
  bool negative = false;
  if (!sci.empty() && sci[0] == '-') {
    negative = true;
    sci.remove_prefix(1);
  }
  size_t e = sci.find('e');
  std::string digits(sci.substr(0, e));
  digits.erase(std::remove(digits.begin(), digits.end(), '.'), digits.end());
  int exp = std::atoi(std::string(sci.substr(e + 1)).c_str());
  while (digits.size() > 1 && digits.back() == '0') digits.pop_back();
  std::string out = negative ? "-" : "";
  if (exp >= -4 && exp < 16) {
    if (exp >= 0) {
      size_t int_len = static_cast<size_t>(exp) + 1;
      if (digits.size() <= int_len) {
        absl::StrAppend(&out, digits, std::string(int_len - digits.size(), '0'), ".0");
      } else {
        absl::StrAppend(&out, digits.substr(0, int_len), ".", digits.substr(int_len));
      }
    } else {
      absl::StrAppend(&out, "0.", std::string(static_cast<size_t>(-exp - 1), '0'), digits);
    }
  } else {
    out.push_back(digits[0]);
    if (digits.size() > 1) absl::StrAppend(&out, ".", digits.substr(1));
    absl::StrAppend(&out, "e", exp < 0 ? "-" : "+", absl::StrFormat("%02d", exp < 0 ? -exp : exp));
  }
  return out;
}

// Resolves a 1.2 core-schema float; nullopt if `v` is not one.
std::optional<std::string> ResolveFloat(absl::string_view v) {
  absl::string_view body = v;
  bool negative = false;
  if (!body.empty() && (body[0] == '-' || body[0] == '+')) {
    negative = body[0] == '-';
    body.remove_prefix(1);
  }
  if (body == ".inf" || body == ".Inf" || body == ".INF") return negative ? "-inf" : "inf";
  if (v == ".nan" || v == ".NaN" || v == ".NAN") return "nan";
  if (!IsCoreFloatSyntax(v)) return std::nullopt;
  double d = 0;
  auto res = std::from_chars(body.data(), body.data() + body.size(), d);
  if (res.ec == std::errc::result_out_of_range || res.ptr != body.data() + body.size()) {
    // Overflow (-> inf) or underflow (-> 0 or a subnormal): strtod decides.
    d = std::strtod(std::string(body).c_str(), nullptr);
  }
  return PythonFloatRepr(negative ? -d : d);
}

// Resolves the value of a plain (untagged) scalar.
YamlScalar ResolvePlain(const std::string& v) {
  YamlScalar s;
  s.raw = v;
  if (IsCoreNull(v)) {
    s.type = YamlScalarType::kNull;
    s.text = "null";
  } else if (IsCoreBool(v)) {
    s.type = YamlScalarType::kBool;
    s.text = absl::AsciiStrToLower(v);
  } else if (auto i = ResolveInt(v)) {
    s.type = YamlScalarType::kInt;
    s.text = *std::move(i);
  } else if (auto f = ResolveFloat(v)) {
    s.type = YamlScalarType::kFloat;
    s.text = *std::move(f);
  } else {
    s.type = YamlScalarType::kString;
    s.text = v;
  }
  return s;
}

absl::StatusOr<YamlScalar> ResolveScalarImpl(const YAML::Node& node) {
  if (!node.IsDefined() || node.IsNull()) {
    YamlScalar s;
    s.type = YamlScalarType::kNull;
    s.text = "null";
    return s;
  }
  const int line = YamlLine(node);
  if (!node.IsScalar()) {
    return absl::InvalidArgumentError(absl::StrCat(LinePrefix(line), "expected a scalar, found a ",
                                                   node.IsSequence() ? "sequence" : "mapping"));
  }
  const std::string& tag = node.Tag();
  const std::string& value = node.Scalar();
  if (IsNonSpecificPlain(tag)) {
    if (absl::Status s = CheckIntegerLength(value, line); !s.ok()) return s;
    return ResolvePlain(value);
  }
  YamlScalar s;
  s.raw = value;
  if (tag == "!" || tag == absl::StrCat(kTagPrefix, "str")) {
    s.type = YamlScalarType::kString;
    s.text = value;
    return s;
  }
  if (absl::Status s = CheckIntegerLength(value, line); !s.ok()) return s;
  YamlScalar plain = ResolvePlain(value);
  auto mismatch = [&](absl::string_view what) {
    return absl::InvalidArgumentError(absl::StrCat(
        LinePrefix(line), "the value \"", value, "\" is not ", what, " (tag ", ShortTag(tag), ")"));
  };
  if (tag == absl::StrCat(kTagPrefix, "bool")) {
    if (plain.type != YamlScalarType::kBool) return mismatch("a boolean");
    return plain;
  }
  if (tag == absl::StrCat(kTagPrefix, "int")) {
    if (plain.type != YamlScalarType::kInt) return mismatch("an integer");
    return plain;
  }
  if (tag == absl::StrCat(kTagPrefix, "float")) {
    if (plain.type == YamlScalarType::kInt) {
      // !!float 1 is the float 1.0.
      auto f = ResolveFloat(value);
      if (!f) f = PythonFloatRepr(std::strtod(plain.text.c_str(), nullptr));
      plain.type = YamlScalarType::kFloat;
      plain.text = *std::move(f);
      return plain;
    }
    if (plain.type != YamlScalarType::kFloat) return mismatch("a float");
    return plain;
  }
  if (tag == absl::StrCat(kTagPrefix, "null")) {
    if (plain.type != YamlScalarType::kNull) return mismatch("null");
    return plain;
  }
  return absl::InvalidArgumentError(
      absl::StrCat(LinePrefix(line), "unsupported tag ", ShortTag(tag),
                   " (only !!str, !!int, !!float, !!bool, !!null, !!map and !!seq are allowed)"));
}

absl::Status CheckCollectionTag(const YAML::Node& node) {
  const std::string& tag = node.Tag();
  if (IsNonSpecificPlain(tag) || tag == "!") return absl::OkStatus();
  if (node.IsMap() && tag == absl::StrCat(kTagPrefix, "map")) return absl::OkStatus();
  if (node.IsSequence() && tag == absl::StrCat(kTagPrefix, "seq")) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(LinePrefix(YamlLine(node)), "unsupported tag ",
                                                 ShortTag(tag), " on a ",
                                                 node.IsMap() ? "mapping" : "sequence"));
}

bool IsMergeKey(const YAML::Node& key) {
  return key.IsScalar() && key.Tag() == "?" && key.Scalar() == "<<";
}

// The most entries merge keys may bring into one mapping, duplicates
// included: `<<: [*a, *a, ...]` over mappings that merge the same way grows
// exponentially with the depth of merging.
constexpr size_t kMaxMergedEntries = size_t{1} << 20;

// Appends the entries of `node` (a mapping), merge keys expanded, without
// resolving duplicates. `depth` bounds recursion through merges, `*merged`
// (entries collected through merge keys so far) their expansion.
absl::Status CollectEntries(const YAML::Node& node, int depth, size_t* merged_count,
                            std::vector<YamlMapEntry>* out) {
  if (depth > 64) {
    return absl::InvalidArgumentError(
        absl::StrCat(LinePrefix(YamlLine(node)), "merge keys nested too deeply"));
  }
  if (depth > 0 && (*merged_count += node.size()) > kMaxMergedEntries) {
    return absl::InvalidArgumentError(
        absl::StrCat(LinePrefix(YamlLine(node)), "merge keys (<<) expand a mapping to more than ",
                     kMaxMergedEntries, " entries (a merge-key bomb?)"));
  }
  std::vector<YamlMapEntry> merged;
  std::vector<YamlMapEntry> own;
  for (auto it = node.begin(); it != node.end(); ++it) {
    // Copies, not references: yaml-cpp's operator-> returns a temporary
    // proxy, so a reference to its member dangles after this statement
    // (AddressSanitizer: stack-use-after-scope).
    const YAML::Node key = it->first;
    const YAML::Node value = it->second;
    if (IsMergeKey(key)) {
      // PyYAML's flatten_mapping: a mapping merges its entries; a sequence of
      // mappings merges them with earlier mappings taking precedence.
      if (value.IsMap()) {
        absl::Status s = CollectEntries(value, depth + 1, merged_count, &merged);
        if (!s.ok()) return s;
      } else if (value.IsSequence()) {
        std::vector<std::vector<YamlMapEntry>> parts;
        for (const YAML::Node& sub : value) {
          if (!sub.IsMap()) {
            return absl::InvalidArgumentError(absl::StrCat(
                LinePrefix(YamlLine(sub)), "a merge key (<<) list may hold only mappings"));
          }
          parts.emplace_back();
          absl::Status s = CollectEntries(sub, depth + 1, merged_count, &parts.back());
          if (!s.ok()) return s;
        }
        for (auto p = parts.rbegin(); p != parts.rend(); ++p) {
          for (auto& e : *p) merged.push_back(std::move(e));
        }
      } else {
        return absl::InvalidArgumentError(
            absl::StrCat(LinePrefix(YamlLine(key)),
                         "the value of a merge key (<<) must be a mapping or a list of mappings"));
      }
      continue;
    }
    YamlMapEntry e;
    e.key_node = key;
    e.value = value;
    e.line = YamlLine(key);
    if (key.IsSequence() || key.IsMap()) {
      return absl::InvalidArgumentError(absl::StrCat(LinePrefix(e.line),
                                                     "a mapping key must be a scalar, not a ",
                                                     key.IsMap() ? "mapping" : "sequence"));
    }
    absl::StatusOr<YamlScalar> k = ResolveScalarImpl(key);
    if (!k.ok()) return k.status();
    e.key_is_string = k->type == YamlScalarType::kString;
    if (k->type == YamlScalarType::kFloat) {
      // As json.dumps writes float keys.
      if (k->text == "inf") {
        e.key = "Infinity";
      } else if (k->text == "-inf") {
        e.key = "-Infinity";
      } else if (k->text == "nan") {
        e.key = "NaN";
      } else {
        e.key = k->text;
      }
    } else {
      e.key = k->text;
    }
    own.push_back(std::move(e));
  }
  for (auto& e : merged) out->push_back(std::move(e));
  for (auto& e : own) out->push_back(std::move(e));
  return absl::OkStatus();
}

absl::StatusOr<std::vector<YamlMapEntry>> MappingEntriesImpl(const YAML::Node& node) {
  if (!node.IsMap()) {
    return absl::InvalidArgumentError(
        absl::StrCat(LinePrefix(YamlLine(node)), "expected a mapping"));
  }
  std::vector<YamlMapEntry> all;
  size_t merged_count = 0;
  absl::Status s = CollectEntries(node, 0, &merged_count, &all);
  if (!s.ok()) return s;
  // First position, last value.
  std::vector<YamlMapEntry> out;
  absl::flat_hash_map<std::string, size_t> index;
  for (auto& e : all) {
    auto [it, inserted] = index.emplace(e.key, out.size());
    if (inserted) {
      out.push_back(std::move(e));
    } else {
      // Node::reset rebinds the handle; operator= would overwrite the shared
      // node, which an alias may also reach.
      out[it->second].value.reset(e.value);
    }
  }
  return out;
}

// Walks the expanded tree for CheckYamlExpansion.
class ExpansionCounter {
 public:
  explicit ExpansionCounter(const YamlExpansionLimits& limits) : limits_(limits) {}

  absl::Status Visit(const YAML::Node& node, int depth) {
    if (++nodes_ > limits_.max_nodes) {
      return absl::InvalidArgumentError(
          absl::StrCat(LinePrefix(YamlLine(node)), "aliases expand the document to more than ",
                       limits_.max_nodes, " values (an alias or merge-key bomb?)"));
    }
    if (!node.IsDefined() || node.IsNull()) return absl::OkStatus();
    if (node.IsScalar()) {
      bytes_ += node.Scalar().size();
      if (bytes_ > limits_.max_scalar_bytes) {
        return absl::InvalidArgumentError(
            absl::StrCat(LinePrefix(YamlLine(node)), "aliases expand the document to more than ",
                         limits_.max_scalar_bytes, " bytes of text (an alias bomb?)"));
      }
      return absl::OkStatus();
    }
    if (depth >= limits_.max_depth) {
      return absl::InvalidArgumentError(absl::StrCat(LinePrefix(YamlLine(node)),
                                                     "nesting deeper than ", limits_.max_depth,
                                                     " levels (or a recursive alias)"));
    }
    if (node.IsSequence()) {
      for (const YAML::Node& item : node) {
        if (absl::Status s = Visit(item, depth + 1); !s.ok()) return s;
      }
      return absl::OkStatus();
    }
    for (auto it = node.begin(); it != node.end(); ++it) {
      if (absl::Status s = Visit(it->first, depth + 1); !s.ok()) return s;
      if (absl::Status s = Visit(it->second, depth + 1); !s.ok()) return s;
    }
    return absl::OkStatus();
  }

 private:
  const YamlExpansionLimits& limits_;
  size_t nodes_ = 0;
  size_t bytes_ = 0;
};

class JsonWriter {
 public:
  JsonWriter(const YamlJsonOptions& options, std::string* out) : options_(options), out_(out) {}

  absl::Status Write(const YAML::Node& node, int depth) {
    if (!node.IsDefined() || node.IsNull()) {
      // A tag on an empty value (`!!str` followed by nothing) is a scalar.
      out_->append("null");
      return CheckSize(node);
    }
    if (node.IsScalar()) {
      absl::StatusOr<YamlScalar> s = ResolveScalarImpl(node);
      if (!s.ok()) return s.status();
      if (absl::Status w = WriteScalar(*s, YamlLine(node)); !w.ok()) return w;
      // Also after a scalar: a list of aliases to one long scalar grows
      // the output by its length each time.
      return CheckSize(node);
    }
    if (depth >= options_.max_depth) {
      return absl::InvalidArgumentError(absl::StrCat(LinePrefix(YamlLine(node)),
                                                     "nesting deeper than ", options_.max_depth,
                                                     " levels (or a recursive alias)"));
    }
    absl::Status tag = CheckCollectionTag(node);
    if (!tag.ok()) return tag;
    if (node.IsSequence()) {
      out_->push_back('[');
      bool first = true;
      for (const YAML::Node& item : node) {
        if (!first) out_->append(", ");
        first = false;
        absl::Status s = Write(item, depth + 1);
        if (!s.ok()) return s;
      }
      out_->push_back(']');
      return CheckSize(node);
    }
    absl::StatusOr<std::vector<YamlMapEntry>> entries = MappingEntriesImpl(node);
    if (!entries.ok()) return entries.status();
    out_->push_back('{');
    bool first = true;
    for (const YamlMapEntry& e : *entries) {
      if (!first) out_->append(", ");
      first = false;
      if (!IsValidUtf8(e.key)) {
        return absl::InvalidArgumentError(
            absl::StrCat(LinePrefix(e.line), "a key is not valid UTF-8"));
      }
      AppendJsonString(e.key, out_);
      out_->append(": ");
      absl::Status s = Write(e.value, depth + 1);
      if (!s.ok()) return s;
    }
    out_->push_back('}');
    return CheckSize(node);
  }

 private:
  absl::Status WriteScalar(const YamlScalar& s, int line) {
    switch (s.type) {
      case YamlScalarType::kNull:
      case YamlScalarType::kBool:
      case YamlScalarType::kInt:
        out_->append(s.text);
        break;
      case YamlScalarType::kFloat:
        if (s.text == "inf" || s.text == "-inf" || s.text == "nan") {
          if (options_.non_finite == NonFiniteFloats::kError) {
            return absl::InvalidArgumentError(
                absl::StrCat(LinePrefix(line), "the float ", s.raw,
                             " has no JSON representation (JSON has no infinity or NaN)"));
          }
          out_->append(s.text == "inf" ? "Infinity" : s.text == "-inf" ? "-Infinity" : "NaN");
        } else {
          out_->append(s.text);
        }
        break;
      case YamlScalarType::kString:
        if (!IsValidUtf8(s.text)) {
          return absl::InvalidArgumentError(
              absl::StrCat(LinePrefix(line), "a string is not valid UTF-8"));
        }
        AppendJsonString(s.text, out_);
        break;
    }
    return absl::OkStatus();
  }

  absl::Status CheckSize(const YAML::Node& node) {
    if (out_->size() > options_.max_output_bytes) {
      return absl::InvalidArgumentError(absl::StrCat(LinePrefix(YamlLine(node)),
                                                     "the JSON form is larger than ",
                                                     options_.max_output_bytes, " bytes"));
    }
    return absl::OkStatus();
  }

  const YamlJsonOptions& options_;
  std::string* out_;
};

// "the string \"abc\"", "the integer 5", "an empty value (null)", ...
std::string Describe(const YAML::Node& node) {
  if (!node.IsDefined() || node.IsNull()) return "an empty value (null)";
  if (node.IsSequence()) return "a list";
  if (node.IsMap()) return "a mapping";
  absl::StatusOr<YamlScalar> s = ResolveScalarImpl(node);
  if (!s.ok()) return absl::StrCat("a value tagged ", ShortTag(node.Tag()));
  switch (s->type) {
    case YamlScalarType::kNull:
      return "null";
    case YamlScalarType::kBool:
      return absl::StrCat("the boolean ", s->text);
    case YamlScalarType::kInt:
      return absl::StrCat("the integer ", s->raw);
    case YamlScalarType::kFloat:
      return absl::StrCat("the number ", s->raw);
    case YamlScalarType::kString: {
      std::string shown = s->text.size() > 60 ? s->text.substr(0, 57) + "..." : s->text;
      const bool quoted = !IsNonSpecificPlain(node.Tag());
      return absl::StrCat(quoted ? "the quoted string " : "the string ", JsonQuote(shown));
    }
  }
  return "a value";
}

int LineOr(const YAML::Node& node, int line_hint) {
  if (line_hint > 0 && (!node.IsDefined() || node.IsNull())) return line_hint;
  int line = YamlLine(node);
  return line > 0 ? line : line_hint;
}

absl::Status FieldError(absl::string_view field, int line, absl::string_view problem) {
  if (line > 0) {
    return absl::InvalidArgumentError(absl::StrCat(field, " at line ", line, ": ", problem));
  }
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", problem));
}

absl::Status FromYamlException(const YAML::Exception& e) {
  int line = e.mark.is_null() ? 0 : e.mark.line + 1;
  return absl::InvalidArgumentError(absl::StrCat(LinePrefix(line), e.msg));
}

}  // namespace

int YamlLine(const YAML::Node& node) {
  try {
    if (!node.IsDefined()) return 0;
    YAML::Mark mark = node.Mark();
    return mark.is_null() ? 0 : mark.line + 1;
  } catch (const YAML::Exception&) {
    return 0;
  }
}

absl::StatusOr<YamlScalar> ResolveYamlScalar(const YAML::Node& node) {
  try {
    return ResolveScalarImpl(node);
  } catch (const YAML::Exception& e) {
    return FromYamlException(e);
  }
}

absl::StatusOr<std::string> YamlToJson(const YAML::Node& node, const YamlJsonOptions& options) {
  try {
    YamlExpansionLimits limits;
    limits.max_nodes = options.max_nodes;
    limits.max_scalar_bytes = options.max_output_bytes;
    limits.max_depth = options.max_depth;
    if (absl::Status s = CheckYamlExpansion(node, limits); !s.ok()) return s;
    std::string out;
    JsonWriter writer(options, &out);
    absl::Status s = writer.Write(node, 0);
    if (!s.ok()) return s;
    return out;
  } catch (const YAML::Exception& e) {
    return FromYamlException(e);
  }
}

absl::Status CheckYamlExpansion(const YAML::Node& node, const YamlExpansionLimits& limits) {
  try {
    return ExpansionCounter(limits).Visit(node, 0);
  } catch (const YAML::Exception& e) {
    return FromYamlException(e);
  }
}

absl::StatusOr<std::vector<YamlMapEntry>> YamlMappingEntries(const YAML::Node& node) {
  try {
    return MappingEntriesImpl(node);
  } catch (const YAML::Exception& e) {
    return FromYamlException(e);
  }
}

void AppendJsonString(absl::string_view s, std::string* out) {
  out->push_back('"');
  const unsigned char* bytes = reinterpret_cast<const unsigned char*>(s.data());
  const size_t n = s.size();
  size_t run = 0;  // Start of the current run of characters that need no escape.
  for (;;) {
    const size_t i = internal::FindJsonEscape(bytes, run, n);
    out->append(s.data() + run, i - run);
    if (i == n) break;
    char escape[internal::kMaxJsonEscapeLength];
    out->append(escape, internal::WriteJsonEscape(bytes[i], escape) - escape);
    run = i + 1;
  }
  out->push_back('"');
}

std::string JsonQuote(absl::string_view s) {
  std::string out;
  AppendJsonString(s, &out);
  return out;
}

size_t Utf8SequenceLength(absl::string_view s, size_t i) {
  const auto b = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char c = b(i);
  if (c < 0x80) return 1;
  size_t n;
  uint32_t min;
  uint32_t cp;
  if ((c & 0xE0) == 0xC0) {
    n = 2, min = 0x80, cp = c & 0x1F;
  } else if ((c & 0xF0) == 0xE0) {
    n = 3, min = 0x800, cp = c & 0x0F;
  } else if ((c & 0xF8) == 0xF0) {
    n = 4, min = 0x10000, cp = c & 0x07;
  } else {
    return 0;
  }
  if (i + n > s.size()) return 0;
  for (size_t k = 1; k < n; ++k) {
    if ((b(i + k) & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (b(i + k) & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return n;
}

std::string ReplaceInvalidUtf8(absl::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    const size_t n = Utf8SequenceLength(s, i);
    if (n == 0) {
      out += "\xEF\xBF\xBD";  // U+FFFD
      ++i;
    } else {
      out.append(s.data() + i, n);
      i += n;
    }
  }
  return out;
}

bool IsValidUtf8(absl::string_view s) {
  size_t i = 0;
  const size_t n = s.size();
  while (i < n) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    int len = 0;
    uint32_t cp = 0;
    if ((c & 0xE0) == 0xC0) {
      len = 2;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (i + len > n) return false;
    for (int k = 1; k < len; ++k) {
      unsigned char cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
        cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
      return false;
    }
    i += len;
  }
  return true;
}

absl::StatusOr<bool> ReadYamlBool(const YAML::Node& node, absl::string_view field, int line_hint) {
  try {
    const int line = LineOr(node, line_hint);
    if (node.IsDefined() && node.IsScalar()) {
      absl::StatusOr<YamlScalar> s = ResolveScalarImpl(node);
      if (!s.ok()) return FieldError(field, line, s.status().message());
      if (s->type == YamlScalarType::kBool) return s->text == "true";
      if (s->type == YamlScalarType::kString && IsNonSpecificPlain(node.Tag())) {
        std::string lower = absl::AsciiStrToLower(s->text);
        if (lower == "yes" || lower == "no" || lower == "on" || lower == "off" || lower == "y" ||
            lower == "n") {
          return FieldError(field, line,
                            absl::StrCat("must be true or false, found ", Describe(node),
                                         " (YAML 1.2 reads yes/no/on/off as strings)"));
        }
      }
      if (s->type == YamlScalarType::kString && IsCoreBool(s->text)) {
        return FieldError(
            field, line,
            absl::StrCat("must be true or false, found ", Describe(node), " (remove the quotes)"));
      }
    }
    return FieldError(field, line, absl::StrCat("must be true or false, found ", Describe(node)));
  } catch (const YAML::Exception& e) {
    return FieldError(field, line_hint, e.msg);
  }
}

absl::StatusOr<int64_t> ReadYamlInt(const YAML::Node& node, absl::string_view field,
                                    int line_hint) {
  try {
    const int line = LineOr(node, line_hint);
    if (node.IsDefined() && node.IsScalar()) {
      absl::StatusOr<YamlScalar> s = ResolveScalarImpl(node);
      if (!s.ok()) return FieldError(field, line, s.status().message());
      if (s->type == YamlScalarType::kInt) {
        int64_t value = 0;
        auto res = std::from_chars(s->text.data(), s->text.data() + s->text.size(), value);
        if (res.ec != std::errc() || res.ptr != s->text.data() + s->text.size()) {
          return FieldError(field, line, absl::StrCat("the integer ", s->raw, " is out of range"));
        }
        return value;
      }
    }
    return FieldError(field, line, absl::StrCat("must be an integer, found ", Describe(node)));
  } catch (const YAML::Exception& e) {
    return FieldError(field, line_hint, e.msg);
  }
}

absl::StatusOr<std::string> ReadYamlString(const YAML::Node& node, absl::string_view field,
                                           int line_hint) {
  try {
    const int line = LineOr(node, line_hint);
    if (node.IsDefined() && node.IsScalar()) {
      absl::StatusOr<YamlScalar> s = ResolveScalarImpl(node);
      if (!s.ok()) return FieldError(field, line, s.status().message());
      if (s->type == YamlScalarType::kString) {
        if (!IsValidUtf8(s->text)) return FieldError(field, line, "is not valid UTF-8");
        return s->text;
      }
    }
    std::string hint;
    if (node.IsDefined() && node.IsScalar()) hint = " (quote it to make it a string)";
    return FieldError(field, line, absl::StrCat("must be a string, found ", Describe(node), hint));
  } catch (const YAML::Exception& e) {
    return FieldError(field, line_hint, e.msg);
  }
}

absl::StatusOr<std::vector<std::string>> ReadYamlStringList(const YAML::Node& node,
                                                            absl::string_view field,
                                                            int line_hint) {
  try {
    const int line = LineOr(node, line_hint);
    if (!node.IsDefined() || !node.IsSequence()) {
      return FieldError(field, line,
                        absl::StrCat("must be a list of strings, found ", Describe(node)));
    }
    std::vector<std::string> out;
    size_t i = 0;
    for (const YAML::Node& item : node) {
      absl::StatusOr<std::string> s = ReadYamlString(item, absl::StrCat(field, "[", i, "]"), line);
      if (!s.ok()) return s.status();
      out.push_back(*std::move(s));
      ++i;
    }
    return out;
  } catch (const YAML::Exception& e) {
    return FieldError(field, line_hint, e.msg);
  }
}

}  // namespace pantherd::engine
