// Reads a folder of detections from disk for `pantherctl upload` and
// `pantherctl test`: the files pantherd needs, as AnalysisFile messages.
//
// PATH is a folder laid out like panther-analysis (any depth) or a single
// file. From a folder, every regular file named *.yml, *.yaml or *.py is
// read; names starting with "." (files and directories) and __pycache__
// directories are skipped, as pat skips them. Symbolic links to files are
// followed; links to directories are not (no loops). Each file becomes
// AnalysisFile{path relative to PATH with '/' separators, exact bytes}, and
// the list is sorted by path (bytewise), so the same folder always gives the
// same request.
//
// A single file is sent under its own name ("okta_failed_login.yml"). When it
// is a spec, the Python file named by its top-level `Filename:` line is sent
// too when that file exists beside it (or below it), so that
// `pantherctl test rules/x.yml` works without the rest of the folder. When it
// is a Python file, every spec beside it (*.yml, *.yaml in the same folder)
// whose `Filename:` names it is sent too, so `pantherctl test rules/x.py`
// works like `pantherctl test rules/x.yml`.
//
// pantherd reads only *.yml/*.yaml as specs (docs/rule-contract.md), so .json
// files, READMEs and the like are not sent.
//
//   absl::StatusOr<std::vector<v1::AnalysisFile>> files = ReadAnalysisPath("rules");
#ifndef PANTHERD_CLIENT_ANALYSIS_FOLDER_H_
#define PANTHERD_CLIENT_ANALYSIS_FOLDER_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "pantherd/v1/common.pb.h"

namespace pantherd::client {

// Default largest file read (10 MiB); larger files are an error, not skipped.
inline constexpr uint64_t kMaxAnalysisFileBytes = uint64_t{10} << 20;
// Default largest total of all files read (48 MiB), below the 64 MiB a
// pantherctl call may send (kMaxMessageBytes in connection.h), leaving room
// for the paths and framing of many small files.
inline constexpr uint64_t kMaxAnalysisTotalBytes = uint64_t{48} << 20;

struct ReadAnalysisOptions {
  uint64_t max_file_bytes = kMaxAnalysisFileBytes;
  uint64_t max_total_bytes = kMaxAnalysisTotalBytes;
};

// True if a file called `name` (a base name) is one pantherctl sends:
// *.yml, *.yaml or *.py, not hidden.
bool IsAnalysisFileName(absl::string_view name);

// Reads PATH as described above. Errors, each one line naming the path:
//   NOT_FOUND          PATH does not exist;
//   INVALID_ARGUMENT   PATH is a single file that is not .yml/.yaml/.py, or
//                      neither a file nor a folder;
//   PERMISSION_DENIED  a folder cannot be listed or a file cannot be read
//                      (other I/O errors: UNKNOWN);
//   RESOURCE_EXHAUSTED a file is larger than options.max_file_bytes, or all
//                      of them together than options.max_total_bytes.
// A folder without any such file gives an empty list, not an error.
absl::StatusOr<std::vector<pantherd::v1::AnalysisFile>> ReadAnalysisPath(
    const std::string& path, const ReadAnalysisOptions& options = {});

}  // namespace pantherd::client

#endif  // PANTHERD_CLIENT_ANALYSIS_FOLDER_H_
