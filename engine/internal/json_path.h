// File: engine/internal/json_path.h
//
// The subset of JSONPath that Panther data models use for `Path` mappings,
// evaluated the way jsonpath-ng 1.5.3 (the version panther-analysis pins)
// evaluates it: on the raw event, case-sensitively. jsonpath-ng versions
// disagree on [N] and [*] applied to non-arrays (some crash); here [N] only
// ever matches an array element.
//
// Supported syntax (everything the panther-analysis data models use, and a
// little more):
//   $                  the root (optional: `client.ipAddress` means the same
//                      as `$.client.ipAddress`)
//   .name  ['name']  ["name"]  .'name'
//                      a field; bare names are [A-Za-z_@][A-Za-z0-9_@-]*,
//                      quoted ones may hold anything (backslash escapes the
//                      next character)
//   [N]                the N-th element of an array, N >= 0
//   [*]                every element of an array (jsonpath-ng also treats a
//                      non-empty object, string, integer or true as a
//                      one-element array here, and so do we)
//   .*                 every value of an object
// Anything else (recursive descent `..`, filters, slices, unions, negative
// indexes) is rejected by Parse().
//
//   ASSIGN_OR_RETURN(JsonPath path, JsonPath::Parse("$.client.ipAddress"));
//   std::vector<JsonPath::Match> matches = path.Find(root, /*max_matches=*/2);
//
// Internal to pantherd_engine: include only from engine/.

#ifndef PANTHERD_ENGINE_INTERNAL_JSON_PATH_H_
#define PANTHERD_ENGINE_INTERNAL_JSON_PATH_H_

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "simdjson.h"

namespace pantherd::engine::internal {

class JsonPath {
 public:
  struct Match {
    simdjson::dom::element value;
    // jsonpath-ng's str(match.full_path): the concrete steps that led to the
    // value, e.g. "client.ipAddress" or "target.[0].id"; "$" for the root.
    std::string full_path;
  };

  // Parses `text`. Returns InvalidArgument naming the offending position if
  // `text` is empty or uses syntax outside the subset above.
  static absl::StatusOr<JsonPath> Parse(std::string_view text);

  // The text given to Parse().
  const std::string& text() const { return text_; }

  // jsonpath-ng's str() of the parsed path, e.g. "$.client.ipAddress" or
  // "$.a.[0]"; Panther puts it in the "matched multiple fields" error.
  std::string ToString() const;

  // Returns the matches of this path in the document rooted at `root`, in
  // jsonpath-ng's order, stopping after `max_matches` of them. Field steps are
  // exact-case; a repeated key resolves to its last value, as in json.loads.
  std::vector<Match> Find(simdjson::dom::element root, size_t max_matches) const;

 private:
  struct Step {
    enum class Kind { kField, kIndex, kAnyValue, kAnyElement };
    Kind kind;
    std::string field;  // kField only.
    size_t index = 0;   // kIndex only.
  };

  JsonPath() = default;
  void FindFrom(simdjson::dom::element value, size_t step, std::vector<std::string>& trail,
                size_t max_matches, std::vector<Match>& matches) const;

  std::string text_;
  bool rooted_ = false;
  std::vector<Step> steps_;
};

}  // namespace pantherd::engine::internal

#endif  // PANTHERD_ENGINE_INTERNAL_JSON_PATH_H_
