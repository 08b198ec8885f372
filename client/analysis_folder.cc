#include "client/analysis_folder.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <optional>
#include <system_error>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "proto/base/status_macros.h"

namespace pantherd::client {
namespace {

namespace fs = std::filesystem;
namespace v1 = ::pantherd::v1;

// An error about `path` from an errno value or error_code.
absl::Status IoError(const std::string& what, const fs::path& path, int error) {
  const std::string message = absl::StrCat(what, " ", path.string(), ": ", std::strerror(error));
  switch (error) {
    case EACCES:
    case EPERM:
      return absl::PermissionDeniedError(message);
    case ENOENT:
    case ENOTDIR:
      return absl::NotFoundError(message);
    default:
      return absl::UnknownError(message);
  }
}

std::string MiB(uint64_t bytes) {
  if (bytes % (uint64_t{1} << 20) == 0) return absl::StrCat(bytes >> 20, " MiB");
  return absl::StrCat(bytes, " bytes");
}

// Reads the whole regular file `path` (at most `max_bytes`).
absl::StatusOr<std::string> ReadFile(const fs::path& path, uint64_t max_bytes) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return IoError("cannot read", path, errno);
  std::string content;
  char buffer[1 << 16];
  absl::Status status;
  while (true) {
    const ssize_t n = ::read(fd, buffer, sizeof(buffer));
    if (n < 0) {
      if (errno == EINTR) continue;
      status = IoError("cannot read", path, errno);
      break;
    }
    if (n == 0) break;
    if (content.size() + static_cast<uint64_t>(n) > max_bytes) {
      status = absl::ResourceExhaustedError(absl::StrCat(path.string(), " is larger than ",
                                                         MiB(max_bytes),
                                                         ", the largest file pantherctl sends"));
      break;
    }
    content.append(buffer, static_cast<size_t>(n));
  }
  ::close(fd);
  if (!status.ok()) return status;
  return content;
}

// The value of a top-level `Filename:` line of a YAML spec, unquoted; nullopt
// when there is none. A line scan, not a YAML parse: good for the usual
// `Filename: x.py`, and harmless otherwise (the server checks the spec).
std::optional<std::string> SpecFilename(absl::string_view yaml) {
  for (absl::string_view line : absl::StrSplit(yaml, '\n')) {
    if (!absl::ConsumePrefix(&line, "Filename:")) continue;
    if (size_t hash = line.find(" #"); hash != absl::string_view::npos) line = line.substr(0, hash);
    line = absl::StripAsciiWhitespace(line);
    if (line.size() >= 2 && (line.front() == '"' || line.front() == '\'') &&
        line.back() == line.front()) {
      line = line.substr(1, line.size() - 2);
    }
    if (line.empty()) return std::nullopt;
    return std::string(line);
  }
  return std::nullopt;
}

class Reader {
 public:
  explicit Reader(const ReadAnalysisOptions& options) : options_(options) {}

  // Reads `file` and adds it as `relative`.
  absl::Status Add(const fs::path& file, const fs::path& relative) {
    PANTHERD_ASSIGN_OR_RETURN(std::string content, ReadFile(file, options_.max_file_bytes));
    total_ += content.size();
    if (total_ > options_.max_total_bytes) {
      return absl::ResourceExhaustedError(
          absl::StrCat("the files under ", root_, " add up to more than ",
                       MiB(options_.max_total_bytes), ", the most pantherctl sends in one call"));
    }
    v1::AnalysisFile& added = files_.emplace_back();
    added.set_path(relative.generic_string());
    added.set_content(std::move(content));
    return absl::OkStatus();
  }

  absl::Status ReadFolder(const fs::path& root) {
    root_ = root.string();
    std::error_code ec;
    fs::recursive_directory_iterator it(root, fs::directory_options::none, ec);
    if (ec) return IoError("cannot list", root, ec.value());
    // The folder being entered, to name it when listing it fails.
    fs::path entering = root;
    for (const fs::recursive_directory_iterator end; it != end; it.increment(ec)) {
      if (ec) break;
      const fs::directory_entry& entry = *it;
      const std::string name = entry.path().filename().string();
      std::error_code type_ec;
      const bool is_dir = entry.is_directory(type_ec) && !entry.is_symlink(type_ec);
      if (is_dir) {
        if (absl::StartsWith(name, ".") || name == "__pycache__") {
          it.disable_recursion_pending();
        } else {
          entering = entry.path();
        }
        continue;
      }
      if (!IsAnalysisFileName(name)) continue;
      if (!entry.is_regular_file(type_ec)) continue;  // Sockets, dangling links, dirs via links.
      PANTHERD_RETURN_IF_ERROR(Add(entry.path(), entry.path().lexically_relative(root)));
    }
    if (ec) return IoError("cannot list", entering, ec.value());
    return absl::OkStatus();
  }

  absl::Status ReadSingleFile(const fs::path& file) {
    root_ = file.string();
    const std::string name = file.filename().string();
    if (!IsAnalysisFileName(name)) {
      return absl::InvalidArgumentError(
          absl::StrCat(file.string(), " is not a .yml, .yaml or .py file nor a folder"));
    }
    PANTHERD_RETURN_IF_ERROR(Add(file, file.filename()));
    if (absl::EndsWith(name, ".py")) return AddSpecsOf(file);
    std::optional<std::string> python = SpecFilename(files_.back().content());
    if (!python.has_value()) return absl::OkStatus();
    const fs::path relative = fs::path(*python).lexically_normal();
    if (relative.is_absolute() || relative.empty() || *relative.begin() == "..") {
      return absl::OkStatus();  // Outside the upload: the server reports it.
    }
    const fs::path python_file = file.parent_path() / relative;
    std::error_code ec;
    if (!fs::is_regular_file(python_file, ec)) return absl::OkStatus();  // Ditto.
    return Add(python_file, relative);
  }

  // For a single Python file: adds every spec beside it (*.yml, *.yaml in
  // the same folder, not hidden) whose `Filename:` names it, so that
  // `pantherctl test rules/x.py` tests the rule as `test rules/x.yml` does.
  absl::Status AddSpecsOf(const fs::path& python_file) {
    const fs::path folder =
        python_file.has_parent_path() ? python_file.parent_path() : fs::path(".");
    std::error_code ec;
    std::vector<fs::path> specs;
    for (fs::directory_iterator it(folder, ec), end; !ec && it != end; it.increment(ec)) {
      const std::string spec_name = it->path().filename().string();
      if (spec_name.empty() || spec_name.front() == '.') continue;
      if (!absl::EndsWith(spec_name, ".yml") && !absl::EndsWith(spec_name, ".yaml")) continue;
      std::error_code type_ec;
      if (!it->is_regular_file(type_ec)) continue;
      specs.push_back(it->path());
    }
    if (ec) return IoError("cannot list", folder, ec.value());
    std::sort(specs.begin(), specs.end());
    for (const fs::path& spec : specs) {
      PANTHERD_ASSIGN_OR_RETURN(std::string content, ReadFile(spec, options_.max_file_bytes));
      std::optional<std::string> python = SpecFilename(content);
      if (!python.has_value() || fs::path(*python).lexically_normal() != python_file.filename()) {
        continue;
      }
      PANTHERD_RETURN_IF_ERROR(Add(spec, spec.filename()));
    }
    return absl::OkStatus();
  }

  std::vector<v1::AnalysisFile> Take() && {
    std::sort(
        files_.begin(), files_.end(),
        [](const v1::AnalysisFile& a, const v1::AnalysisFile& b) { return a.path() < b.path(); });
    return std::move(files_);
  }

 private:
  const ReadAnalysisOptions& options_;
  std::string root_;
  uint64_t total_ = 0;
  std::vector<v1::AnalysisFile> files_;
};

}  // namespace

bool IsAnalysisFileName(absl::string_view name) {
  if (name.empty() || name.front() == '.') return false;
  return absl::EndsWith(name, ".yml") || absl::EndsWith(name, ".yaml") ||
         absl::EndsWith(name, ".py");
}

absl::StatusOr<std::vector<v1::AnalysisFile>> ReadAnalysisPath(const std::string& path,
                                                               const ReadAnalysisOptions& options) {
  if (path.empty()) return absl::InvalidArgumentError("no path given");
  const fs::path root(path);
  std::error_code ec;
  const fs::file_status status = fs::status(root, ec);
  if (ec || !fs::exists(status)) {
    if (ec && ec.value() != ENOENT && ec.value() != ENOTDIR) {
      return IoError("cannot open", root, ec.value());
    }
    return absl::NotFoundError(absl::StrCat(path, ": no such file or folder"));
  }
  Reader reader(options);
  if (fs::is_directory(status)) {
    PANTHERD_RETURN_IF_ERROR(reader.ReadFolder(root));
  } else if (fs::is_regular_file(status)) {
    PANTHERD_RETURN_IF_ERROR(reader.ReadSingleFile(root));
  } else {
    return absl::InvalidArgumentError(absl::StrCat(path, " is neither a file nor a folder"));
  }
  return std::move(reader).Take();
}

}  // namespace pantherd::client
