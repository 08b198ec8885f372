// File: engine/yaml_json.h
//
// YAML values as Panther's loader sees them, for yaml-cpp nodes. yaml-cpp
// parses YAML syntax but leaves plain scalars untyped; this module types them
// with the YAML 1.2 core schema, which is what panther_analysis_tool
// (`_PATSafeLoader`) implements on purpose:
//
//   true/false (also True/TRUE/False/FALSE)     -> bool; yes/no/on/off/y/n
//                                                  stay strings
//   null, Null, NULL, ~, empty                  -> null
//   [-+]?[0-9]+, 0o[0-7]+, 0x[0-9a-fA-F]+        -> int; 0644 is decimal 644
//   [-+]?(.[0-9]+|[0-9]+(.[0-9]*)?)([eE][-+]?[0-9]+)?,
//   [-+]?.inf (.Inf, .INF), .nan (.NaN, .NAN)    -> float
//   anything else (timestamps, 1:30:00, ...)    -> string
//
// Quoted and block (| and >) scalars are always strings, and so is any scalar
// tagged !!str. The other standard tags (!!bool, !!int, !!float, !!null,
// !!map, !!seq) demand a value of that type; any other tag is an error.
//
// On top of that it converts whole nodes to JSON text, and reads single
// scalars as typed values with messages fit for a user ("Enabled at line 3:
// ..."). Nothing here throws: yaml-cpp exceptions are caught inside.
//
//   YAML::Node log = spec["Tests"][0]["Log"];
//   absl::StatusOr<std::string> json = YamlToJson(log);   // {"a": "yes", ...}
//   absl::StatusOr<bool> enabled = ReadYamlBool(spec["Enabled"], "Enabled");
//
// Thread safety: all functions are pure; concurrent calls on distinct nodes
// are safe. yaml-cpp nodes are not safe to share between threads.

#ifndef PANTHERD_ENGINE_YAML_JSON_H_
#define PANTHERD_ENGINE_YAML_JSON_H_

#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace pantherd::engine {

// The type a YAML scalar (or null node) resolves to.
enum class YamlScalarType { kNull, kBool, kInt, kFloat, kString };

// A resolved scalar. `text` is, by type:
//   kNull    "null"
//   kBool    "true" or "false"
//   kInt     canonical decimal digits with an optional leading '-', of any
//            size ("0644" -> "644", "0x1F" -> "31", "+7" -> "7", "-0" -> "0")
//   kFloat   Python's repr() of the value ("1." -> "1.0", "1e3" -> "1000.0",
//            "1e16" -> "1e+16"), or "inf", "-inf", "nan" for the non-finite
//            values (numbers too large for a double are "inf" or "-inf", as
//            in Python)
//   kString  the string itself
// `raw` is the scalar exactly as yaml-cpp read it ("" for a null node).
struct YamlScalar {
  YamlScalarType type = YamlScalarType::kNull;
  std::string text;
  std::string raw;
};

// Resolves a scalar or null node with the rules in the file comment.
// InvalidArgument if the node is a sequence or mapping, if it carries an
// unsupported tag, if a !!bool/!!int/!!float/!!null tag does not fit its
// value, or for a 0o/0x integer of more than 4300 digits (after leading
// zeros: Python refuses integers that long, and converting them to decimal
// costs time quadratic in their length). The message names the line, not a field.
absl::StatusOr<YamlScalar> ResolveYamlScalar(const YAML::Node& node);

// The 1-based line a node starts on, or 0 when yaml-cpp does not know (e.g. a
// node built in code). For an empty value ("Key:" followed by a newline)
// yaml-cpp reports the line of the next token, so prefer the key's line.
int YamlLine(const YAML::Node& node);

// How YamlToJson() writes floats that JSON cannot carry (.inf, -.inf, .nan,
// and numbers beyond the range of a double).
enum class NonFiniteFloats {
  // Fail with InvalidArgument naming the line. Output is strict RFC 8259.
  kError,
  // Write Infinity, -Infinity and NaN, as Python's json.dumps does by default.
  // Python's json.loads and engine/event_document.h's ParseEvent() accept these, so a
  // test Log keeps the float value pat would give the rule.
  kPythonTokens,
};

struct YamlJsonOptions {
  NonFiniteFloats non_finite = NonFiniteFloats::kError;
  // Nesting deeper than this (counting every mapping and sequence) fails with
  // InvalidArgument. This also stops recursive aliases (`&a [*a]`).
  int max_depth = 256;
  // Output longer than this fails with InvalidArgument, so that nested
  // aliases ("billion laughs") cannot expand without bound. It also bounds
  // the text of the scalars the node expands to (see max_nodes).
  size_t max_output_bytes = 64u << 20;
  // Before writing anything, the node is checked with CheckYamlExpansion
  // (max_nodes, max_output_bytes of scalar text, max_depth), so that alias
  // and merge-key bombs whose output stays small are refused in time
  // bounded by these limits, not by their expansion.
  size_t max_nodes = size_t{1} << 22;
};

// Limits of CheckYamlExpansion.
struct YamlExpansionLimits {
  // Values (scalars, nulls, sequences, mappings; keys count too) in the
  // document with every alias replaced by a copy of its anchor.
  size_t max_nodes = size_t{1} << 22;
  // Bytes of scalar text in that expanded document.
  size_t max_scalar_bytes = 64u << 20;
  // Nesting of sequences and mappings (the node itself is level 0); a
  // recursive alias (`&a [*a]`) exceeds any depth.
  int max_depth = 256;
};

// Checks how far aliases expand `node`: walks it as if every alias were a
// copy of its anchor (so merge keys' values count as often as they are
// merged), stopping at the first limit exceeded. Returns OK when the expanded
// document stays within `limits`, else InvalidArgument naming the line:
// "aliases expand the document to more than N values (an alias or merge-key
// bomb?)", "... more than N bytes of text (an alias bomb?)", or "nesting
// deeper than N levels (or a recursive alias)". Time is O(min(expanded size,
// limits.max_nodes)); no memory beyond a recursion of limits.max_depth.
// Call it on untrusted documents before walking them in other ways.
absl::Status CheckYamlExpansion(const YAML::Node& node, const YamlExpansionLimits& limits);

// Converts a node to compact JSON text (", " and ": " separators, like
// Python's json.dumps). Scalars follow ResolveYamlScalar(); ints are written
// in full decimal however large; mappings keep their key order; a key given
// twice keeps its first position and takes its last value (PyYAML and
// json.loads agree on this); non-string keys become strings ("1", "true",
// "null", "1.5"); merge keys (`<<: *base`) are expanded as PyYAML does.
// Strings are UTF-8 passed through, with '"', '\\' and control characters
// escaped.
//
// InvalidArgument (message names the line) for: an unsupported tag, a
// sequence or mapping used as a key, a string that is not valid UTF-8,
// nesting deeper than options.max_depth, output beyond
// options.max_output_bytes, an expansion beyond the limits of
// CheckYamlExpansion (see YamlJsonOptions), merge keys bringing more than
// 2^20 entries into one mapping, a 0o/0x integer of more than 4300 digits
// (Python refuses those), and non-finite floats under kError. A null
// (invalid) YAML::Node converts to "null".
absl::StatusOr<std::string> YamlToJson(const YAML::Node& node, const YamlJsonOptions& options = {});

// Appends `s` as a JSON string literal (with quotes) to `*out`. Bytes >= 0x80
// are copied unchanged; the caller guarantees `s` is valid UTF-8 (see
// IsValidUtf8).
void AppendJsonString(absl::string_view s, std::string* out);

// Returns `s` as a JSON string literal.
std::string JsonQuote(absl::string_view s);

// True if `s` is well-formed UTF-8 (no overlongs, surrogates or values above
// U+10FFFF).
bool IsValidUtf8(absl::string_view s);

// The length of the well-formed UTF-8 sequence that starts at s[i] (1 for
// ASCII), or 0 when none starts there: a continuation byte, an overlong
// form, a surrogate, a value above U+10FFFF, or a sequence cut short.
// Requires i < s.size().
size_t Utf8SequenceLength(absl::string_view s, size_t i);

// `s` with each byte that starts no well-formed UTF-8 sequence replaced by
// U+FFFD, so that the result is valid UTF-8 (e.g. for JsonQuote).
std::string ReplaceInvalidUtf8(absl::string_view s);

// One entry of a YAML mapping, as YamlMappingEntries() returns it.
struct YamlMapEntry {
  // The key as a string: the text of a string key, else the resolved
  // scalar's `text` ("1", "true", "null").
  std::string key;
  // False if the key was not a string (an int, bool, null or float key).
  bool key_is_string = true;
  YAML::Node key_node;
  YAML::Node value;
  // 1-based line of the key.
  int line = 0;
};

// The entries of a mapping in document order, after merge keys are expanded
// and duplicate keys are resolved as in YamlToJson(). InvalidArgument if
// `node` is not a mapping, if a key is a sequence or mapping, if a merge
// key's value is not a mapping or a sequence of mappings, or if merge keys
// bring more than 2^20 entries (duplicates included) into the mapping.
absl::StatusOr<std::vector<YamlMapEntry>> YamlMappingEntries(const YAML::Node& node);

// Typed readers for spec fields. Each reads `node`, the value of field
// `field`, and on a type mismatch returns InvalidArgument with a message of
// the form "<field> at line <N>: <problem>", where N is YamlLine(node), or
// `line_hint` when the node is null or its line is unknown (pass the key's
// line). The problem says what was expected and what was found.

// A bool: true/false/True/False/TRUE/FALSE. "yes", "on", quoted "true" and
// everything else are errors (YAML 1.2: they are strings).
absl::StatusOr<bool> ReadYamlBool(const YAML::Node& node, absl::string_view field,
                                  int line_hint = 0);

// An int that fits in int64 (decimal, 0o or 0x). Floats, bools, quoted
// numbers and out-of-range values are errors.
absl::StatusOr<int64_t> ReadYamlInt(const YAML::Node& node, absl::string_view field,
                                    int line_hint = 0);

// A string: a quoted scalar, or a plain scalar that resolves to a string.
// `Description: 123`, `Runbook: true` and `Reference:` (null) are errors, as
// they are for panther_analysis_tool. Must be valid UTF-8.
absl::StatusOr<std::string> ReadYamlString(const YAML::Node& node, absl::string_view field,
                                           int line_hint = 0);

// A sequence of strings (possibly empty). A null value, a lone scalar or any
// non-string item is an error; an item's error names "<field>[<index>]" and
// the item's line.
absl::StatusOr<std::vector<std::string>> ReadYamlStringList(const YAML::Node& node,
                                                            absl::string_view field,
                                                            int line_hint = 0);

}  // namespace pantherd::engine

#endif  // PANTHERD_ENGINE_YAML_JSON_H_
