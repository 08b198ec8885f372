#include "client/analysis_folder.h"

#include <grp.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace pantherd::client {
namespace {

namespace fs = std::filesystem;
namespace v1 = ::pantherd::v1;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Pair;

// A fresh folder under the test's temporary directory, removed afterwards.
class AnalysisFolderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const ::testing::TestInfo* info = ::testing::UnitTest::GetInstance()->current_test_info();
    root_ = fs::path(::testing::TempDir()) /
            (std::string("pantherctl_folder_") + info->name() + "_" + std::to_string(getpid()));
    fs::remove_all(root_);
    fs::create_directories(root_);
  }
  void TearDown() override { fs::remove_all(root_); }

  void Write(const std::string& relative, const std::string& content) {
    const fs::path path = root_ / relative;
    fs::create_directories(path.parent_path());
    std::ofstream(path, std::ios::binary) << content;
  }

  // (path, content) pairs of what ReadAnalysisPath returned.
  static std::vector<std::pair<std::string, std::string>> Pairs(
      const std::vector<v1::AnalysisFile>& files) {
    std::vector<std::pair<std::string, std::string>> pairs;
    for (const v1::AnalysisFile& file : files) pairs.emplace_back(file.path(), file.content());
    return pairs;
  }

  fs::path root_;
};

TEST_F(AnalysisFolderTest, ReadsNestedFoldersWithRelativePathsInOrder) {
  Write("rules/okta_rules/okta_failed_login.yml", "AnalysisType: rule\n");
  Write("rules/okta_rules/okta_failed_login.py", "def rule(e):\n    return True\n");
  Write("global_helpers/panther_base_helpers.py", "X = 1\n");
  Write("global_helpers/panther_base_helpers.yaml", "AnalysisType: global\n");
  Write("data_models/a/b/c/okta.yml", "AnalysisType: datamodel\n");
  Write("top.yml", "x: 1\n");
  Write("README.md", "# not sent\n");
  Write("rules/okta_rules/sample.json", "{}");
  Write("rules/okta_rules/notes.txt", "no");

  absl::StatusOr<std::vector<v1::AnalysisFile>> files = ReadAnalysisPath(root_.string());
  ASSERT_TRUE(files.ok()) << files.status();
  EXPECT_THAT(
      Pairs(*files),
      ElementsAre(Pair("data_models/a/b/c/okta.yml", "AnalysisType: datamodel\n"),
                  Pair("global_helpers/panther_base_helpers.py", "X = 1\n"),
                  Pair("global_helpers/panther_base_helpers.yaml", "AnalysisType: global\n"),
                  Pair("rules/okta_rules/okta_failed_login.py", "def rule(e):\n    return True\n"),
                  Pair("rules/okta_rules/okta_failed_login.yml", "AnalysisType: rule\n"),
                  Pair("top.yml", "x: 1\n")));
}

TEST_F(AnalysisFolderTest, SkipsHiddenFilesHiddenFoldersAndPycache) {
  Write("rules/a.yml", "a");
  Write("rules/.hidden.yml", "hidden file");
  Write(".github/workflows/ci.yml", "hidden folder");
  Write("rules/.venv/lib/x.py", "hidden nested folder");
  Write("rules/__pycache__/a.cpython-311.py", "cache");
  Write("rules/__pycache__/deeper/b.py", "cache");

  absl::StatusOr<std::vector<v1::AnalysisFile>> files = ReadAnalysisPath(root_.string());
  ASSERT_TRUE(files.ok()) << files.status();
  EXPECT_THAT(Pairs(*files), ElementsAre(Pair("rules/a.yml", "a")));
}

TEST_F(AnalysisFolderTest, PathWithTrailingSlashOrSubfolderIsTheRoot) {
  Write("rules/okta/a.yml", "a");
  Write("rules/okta/a.py", "p");
  absl::StatusOr<std::vector<v1::AnalysisFile>> files =
      ReadAnalysisPath((root_ / "rules").string() + "/");
  ASSERT_TRUE(files.ok()) << files.status();
  EXPECT_THAT(Pairs(*files), ElementsAre(Pair("okta/a.py", "p"), Pair("okta/a.yml", "a")));
}

TEST_F(AnalysisFolderTest, KeepsBytesExactly) {
  const std::string binary("a\0b\r\n\xff\xfe", 7);
  Write("x.py", binary);
  absl::StatusOr<std::vector<v1::AnalysisFile>> files = ReadAnalysisPath(root_.string());
  ASSERT_TRUE(files.ok()) << files.status();
  ASSERT_EQ(files->size(), 1u);
  EXPECT_EQ((*files)[0].content(), binary);
}

TEST_F(AnalysisFolderTest, FollowsFileLinksButNotFolderLinks) {
  Write("real/a.yml", "a");
  Write("outside/b.py", "b");
  fs::create_symlink(root_ / "outside" / "b.py", root_ / "real" / "b.py");
  fs::create_directory_symlink(root_ / "real", root_ / "real" / "loop");
  absl::StatusOr<std::vector<v1::AnalysisFile>> files = ReadAnalysisPath((root_ / "real").string());
  ASSERT_TRUE(files.ok()) << files.status();
  EXPECT_THAT(Pairs(*files), ElementsAre(Pair("a.yml", "a"), Pair("b.py", "b")));
}

TEST_F(AnalysisFolderTest, SingleSpecBringsItsPythonFile) {
  Write("rules/okta_failed_login.yml",
        "AnalysisType: rule\nFilename: okta_failed_login.py  # the code\nRuleID: x\n");
  Write("rules/okta_failed_login.py", "code");
  Write("rules/other.py", "not sent");
  absl::StatusOr<std::vector<v1::AnalysisFile>> files =
      ReadAnalysisPath((root_ / "rules" / "okta_failed_login.yml").string());
  ASSERT_TRUE(files.ok()) << files.status();
  ASSERT_EQ(files->size(), 2u);
  EXPECT_EQ((*files)[0].path(), "okta_failed_login.py");
  EXPECT_EQ((*files)[0].content(), "code");
  EXPECT_EQ((*files)[1].path(), "okta_failed_login.yml");
}

// `test rules/x.py` works like `test rules/x.yml`: the spec beside the
// Python file that names it comes along; specs naming other files do not.
TEST_F(AnalysisFolderTest, SinglePythonFileBringsItsSpec) {
  Write("rules/okta_failed_login.yml",
        "AnalysisType: rule\nFilename: okta_failed_login.py  # the code\nRuleID: x\n");
  Write("rules/okta_failed_login.py", "code");
  Write("rules/other.yml", "AnalysisType: rule\nFilename: other.py\n");
  Write("rules/.hidden.yml", "AnalysisType: rule\nFilename: okta_failed_login.py\n");
  absl::StatusOr<std::vector<v1::AnalysisFile>> files =
      ReadAnalysisPath((root_ / "rules" / "okta_failed_login.py").string());
  ASSERT_TRUE(files.ok()) << files.status();
  EXPECT_THAT(Pairs(*files),
              ElementsAre(Pair("okta_failed_login.py", "code"),
                          Pair("okta_failed_login.yml",
                               "AnalysisType: rule\nFilename: okta_failed_login.py  # the "
                               "code\nRuleID: x\n")));
}

TEST_F(AnalysisFolderTest, SingleFileAlone) {
  Write("helper.py", "X = 1\n");
  Write("spec.yaml", "AnalysisType: rule\nFilename: 'missing.py'\n");  // The server reports it.
  absl::StatusOr<std::vector<v1::AnalysisFile>> files =
      ReadAnalysisPath((root_ / "helper.py").string());
  ASSERT_TRUE(files.ok()) << files.status();
  EXPECT_THAT(Pairs(*files), ElementsAre(Pair("helper.py", "X = 1\n")));
  files = ReadAnalysisPath((root_ / "spec.yaml").string());
  ASSERT_TRUE(files.ok()) << files.status();
  ASSERT_EQ(files->size(), 1u);
  EXPECT_EQ((*files)[0].path(), "spec.yaml");
}

TEST_F(AnalysisFolderTest, SingleFileOfAnotherKindIsAnError) {
  Write("README.md", "x");
  absl::StatusOr<std::vector<v1::AnalysisFile>> files =
      ReadAnalysisPath((root_ / "README.md").string());
  ASSERT_FALSE(files.ok());
  EXPECT_EQ(files.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(files.status().message(), HasSubstr("README.md"));
}

TEST_F(AnalysisFolderTest, MissingPathIsNotFoundNamingIt) {
  const std::string missing = (root_ / "nope").string();
  absl::StatusOr<std::vector<v1::AnalysisFile>> files = ReadAnalysisPath(missing);
  ASSERT_FALSE(files.ok());
  EXPECT_EQ(files.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(files.status().message(), missing + ": no such file or folder");
  EXPECT_EQ(ReadAnalysisPath("").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(AnalysisFolderTest, EmptyFolderIsAnEmptyList) {
  Write("docs/README.md", "x");
  absl::StatusOr<std::vector<v1::AnalysisFile>> files = ReadAnalysisPath(root_.string());
  ASSERT_TRUE(files.ok()) << files.status();
  EXPECT_TRUE(files->empty());
}

TEST_F(AnalysisFolderTest, FileOverTheSizeCapIsAnError) {
  Write("rules/small.yml", "ok");
  Write("rules/big.py", std::string(101, 'x'));
  ReadAnalysisOptions options;
  options.max_file_bytes = 100;
  absl::StatusOr<std::vector<v1::AnalysisFile>> files = ReadAnalysisPath(root_.string(), options);
  ASSERT_FALSE(files.ok());
  EXPECT_EQ(files.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(files.status().message(), HasSubstr("big.py is larger than 100 bytes"));

  options.max_file_bytes = 101;  // Exactly at the cap is fine.
  files = ReadAnalysisPath(root_.string(), options);
  ASSERT_TRUE(files.ok()) << files.status();
  EXPECT_EQ(files->size(), 2u);

  options.max_total_bytes = 102;
  files = ReadAnalysisPath(root_.string(), options);
  ASSERT_FALSE(files.ok());
  EXPECT_EQ(files.status().code(), absl::StatusCode::kResourceExhausted);
}

// The status of ReadAnalysisPath(".") run in `folder` by a user who may not
// read every file. When this process is not root that is this process;
// otherwise (CI runs as root, and root reads every file) a child process
// drops to nobody (uid and gid 65534, no supplementary groups) before the
// call and reports the status through a pipe.
absl::Status ReadFolderUnprivileged(const fs::path& folder) {
  if (geteuid() != 0) {
    const fs::path cwd = fs::current_path();
    fs::current_path(folder);
    absl::Status status = ReadAnalysisPath(".").status();
    fs::current_path(cwd);
    return status;
  }
  int fds[2];
  if (pipe(fds) != 0) return absl::InternalError("pipe failed");
  const pid_t pid = fork();
  if (pid < 0) return absl::InternalError("fork failed");
  if (pid == 0) {
    close(fds[0]);
    constexpr uid_t kNobody = 65534;
    std::string report;
    if (chdir(folder.c_str()) != 0 || setgroups(0, nullptr) != 0 ||
        setresgid(kNobody, kNobody, kNobody) != 0 || setresuid(kNobody, kNobody, kNobody) != 0 ||
        geteuid() != kNobody) {
      report =
          absl::StrCat(static_cast<int>(absl::StatusCode::kInternal), " could not drop privileges");
    } else {
      const absl::Status status = ReadAnalysisPath(".").status();
      report = absl::StrCat(static_cast<int>(status.code()), " ", status.message());
    }
    const char* data = report.data();
    size_t left = report.size();
    while (left > 0) {
      const ssize_t n = write(fds[1], data, left);
      if (n <= 0) break;
      data += n;
      left -= static_cast<size_t>(n);
    }
    _exit(0);
  }
  close(fds[1]);
  std::string report;
  char buffer[4096];
  for (ssize_t n; (n = read(fds[0], buffer, sizeof(buffer))) != 0;) {
    if (n < 0) {
      if (errno == EINTR) continue;
      break;
    }
    report.append(buffer, static_cast<size_t>(n));
  }
  close(fds[0]);
  int wait_status = 0;
  waitpid(pid, &wait_status, 0);
  const size_t space = report.find(' ');
  int code = 0;
  if (!WIFEXITED(wait_status) || WEXITSTATUS(wait_status) != 0 ||
      !absl::SimpleAtoi(report.substr(0, space), &code)) {
    return absl::InternalError(absl::StrCat("the unprivileged child failed: ", report));
  }
  return absl::Status(static_cast<absl::StatusCode>(code),
                      space == std::string::npos ? "" : report.substr(space + 1));
}

TEST_F(AnalysisFolderTest, UnreadableFileIsAnError) {
  Write("rules/readable.yml", "AnalysisType: rule\n");
  Write("rules/secret.py", "x");
  // Folders open to everyone (the unprivileged child must list them); the
  // file open to no one.
  constexpr fs::perms kOpenFolder = fs::perms::owner_all | fs::perms::group_read |
                                    fs::perms::group_exec | fs::perms::others_read |
                                    fs::perms::others_exec;
  fs::permissions(root_, kOpenFolder);
  fs::permissions(root_ / "rules", kOpenFolder);
  fs::permissions(root_ / "rules" / "secret.py", fs::perms::none);
  const absl::Status status = ReadFolderUnprivileged(root_);
  EXPECT_EQ(status.code(), absl::StatusCode::kPermissionDenied) << status;
  EXPECT_THAT(status.message(), HasSubstr("cannot read"));
  EXPECT_THAT(status.message(), HasSubstr("secret.py"));
  // Readable by everyone, the same folder reads without error: the error above
  // was the file's permission and nothing else.
  constexpr fs::perms kReadableByAll = fs::perms::owner_read | fs::perms::owner_write |
                                       fs::perms::group_read | fs::perms::others_read;
  fs::permissions(root_ / "rules" / "secret.py", kReadableByAll);
  const absl::Status readable = ReadFolderUnprivileged(root_);
  EXPECT_TRUE(readable.ok()) << readable;
}

TEST(AnalysisFileNameTest, Kinds) {
  EXPECT_TRUE(IsAnalysisFileName("a.yml"));
  EXPECT_TRUE(IsAnalysisFileName("a.yaml"));
  EXPECT_TRUE(IsAnalysisFileName("a.py"));
  EXPECT_FALSE(IsAnalysisFileName(".a.yml"));
  EXPECT_FALSE(IsAnalysisFileName("a.json"));
  EXPECT_FALSE(IsAnalysisFileName("a.pyc"));
  EXPECT_FALSE(IsAnalysisFileName("a.yml.bak"));
  EXPECT_FALSE(IsAnalysisFileName(""));
}

}  // namespace
}  // namespace pantherd::client
