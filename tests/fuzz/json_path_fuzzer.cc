// File: tests/fuzz/json_path_fuzzer.cc
//
// Fuzz target: engine/internal/json_path.h, the JSONPath subset of data
// model `Path` mappings. The input is a path, a newline, then a JSON document
// (without a newline, the whole input is the path and the document is a
// fixed Okta-like event). Checks, beyond no crash and no sanitizer report:
//   - a refused path fails with InvalidArgument and a message;
//   - an accepted path keeps its text, and renders (ToString, jsonpath-ng's
//     form, which is not always parseable; `""` renders as "") to text
//     starting with '$' when the path did;
//   - Find never returns more than max_matches matches, whatever
//     max_matches (0, 1, 2, unlimited).

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/internal/json_path.h"
#include "simdjson.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

using ::pantherd::engine::internal::JsonPath;

constexpr std::string_view kDefaultDocument =
    R"({"client": {"ipAddress": "1.2.3.4", "geo": {"city": "X"}},)"
    R"( "target": [{"id": "a", "type": "User"}, {"id": "b"}, 3, null, [1, [2]]],)"
    R"( "actor": {"alternateId": "x@example.com"}, "a": {"a": {"a": []}}, "": {"": 1}})";

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const size_t newline = input.find('\n');
  const std::string_view path_text = input.substr(0, newline);
  const std::string_view document =
      newline == std::string_view::npos ? kDefaultDocument : input.substr(newline + 1);

  absl::StatusOr<JsonPath> path = JsonPath::Parse(path_text);
  if (!path.ok()) {
    FUZZ_CHECK(absl::IsInvalidArgument(path.status()) && !path.status().message().empty(),
               "unexpected error %s", path.status().ToString().c_str());
    return 0;
  }
  FUZZ_CHECK(path->text() == path_text, "text() is not the parsed text");
  const std::string rendered = path->ToString();
  // An accepted path is not blank, so `start` exists.
  const size_t start = path_text.find_first_not_of(" \t");
  if (path_text[start] == '$') {
    FUZZ_CHECK(!rendered.empty() && rendered[0] == '$', "%s renders as %s",
               FuzzClip(path_text).c_str(), FuzzClip(rendered).c_str());
  }

  simdjson::dom::parser parser;
  simdjson::dom::element root;
  if (parser.parse(document.data(), document.size()).get(root) != simdjson::SUCCESS) return 0;
  for (size_t max_matches : {size_t{0}, size_t{1}, size_t{2}, size_t{1} << 20}) {
    std::vector<JsonPath::Match> matches = path->Find(root, max_matches);
    FUZZ_CHECK(matches.size() <= max_matches, "%zu matches for at most %zu", matches.size(),
               max_matches);
  }
  return 0;
}
