#include "engine/internal/json_numbers.h"

#include <cstdint>
#include <random>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace pantherd::engine::internal {

const std::string& NumberPlaceholderPrefix() {
  static const std::string* const prefix = [] {
    std::random_device random;
    std::string bits;
    for (int i = 0; i < 4; ++i) {
      absl::StrAppend(&bits, absl::Hex(static_cast<uint32_t>(random()), absl::kZeroPad8));
    }
    return new std::string(std::string(1, '\0') + "pantherd-number-" + bits + ":");
  }();
  return *prefix;
}

std::optional<std::string_view> NumberPlaceholderLiteral(std::string_view s) {
  const std::string& prefix = NumberPlaceholderPrefix();
  if (s.size() <= prefix.size() || s[0] != '\0' || s.substr(0, prefix.size()) != prefix) {
    return std::nullopt;
  }
  return s.substr(prefix.size());
}

std::optional<std::string> RewriteUnrepresentableNumbers(std::string_view json,
                                                         NonFiniteLiterals non_finite) {
  std::string out;
  size_t copied = 0;
  std::vector<char> containers;  // '{' or '['
  char last = 0;                 // Last structural character seen; 'v' after a value.
  for (size_t i = 0; i < json.size();) {
    char c = json[i];
    if (c == '"') {
      for (++i; i < json.size() && json[i] != '"'; ++i) {
        if (json[i] == '\\') ++i;
      }
      ++i;
      last = '"';
      continue;
    }
    if (c == '{' || c == '[') {
      containers.push_back(c);
      last = c;
      ++i;
      continue;
    }
    if (c == '}' || c == ']') {
      if (!containers.empty()) containers.pop_back();
      last = c;
      ++i;
      continue;
    }
    if (c == ':' || c == ',') {
      last = c;
      ++i;
      continue;
    }
    bool value_position = last == 0 || last == ':' || last == '[' ||
                          (last == ',' && !containers.empty() && containers.back() == '[');
    std::string_view rest = json.substr(i);
    size_t length = 0;
    bool replace = false;
    if (value_position) {
      if (non_finite == NonFiniteLiterals::kRewrite) {
        for (std::string_view atom : {"NaN", "Infinity", "-Infinity"}) {
          if (rest.substr(0, atom.size()) == atom) {
            length = atom.size();
            replace = true;
            break;
          }
        }
      }
      bool is_integer = false;
      if (!replace && (c == '-' || IsAsciiDigit(c))) {
        length = JsonNumberLength(rest, &is_integer);
        replace = length > 0 && JsonNumberExceedsSimdjson(rest.substr(0, length), is_integer);
      }
    }
    if (replace) {
      out.append(json.substr(copied, i - copied));
      out.append("\"\\u0000");
      out.append(std::string_view(NumberPlaceholderPrefix()).substr(1));
      out.append(rest.substr(0, length));
      out.append("\"");
      copied = i + length;
    }
    if (length > 0) {
      last = 'v';
      i += length;
    } else {
      if (!absl::ascii_isspace(static_cast<unsigned char>(c))) last = 'v';
      ++i;
    }
  }
  if (copied == 0) return std::nullopt;
  out.append(json.substr(copied));
  return out;
}

}  // namespace pantherd::engine::internal
