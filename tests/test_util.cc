#include "tests/test_util.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

extern char** environ;

namespace pantherd::testing {

TempDir::TempDir() {
  const char* base = getenv("TMPDIR");
  std::string tmpl = absl::StrCat(base != nullptr && *base ? base : "/tmp", "/pantherd-test-XXXXXX");
  if (mkdtemp(tmpl.data()) == nullptr) abort();
  path_ = tmpl;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

std::string ReadFileOrEmpty(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

absl::StatusOr<Process> Process::Start(const std::vector<std::string>& argv,
                                       const std::string& stdout_path,
                                       const std::string& stderr_path) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, stdout_path.c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_addopen(&actions, 2, stderr_path.c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0644);
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  // The child must not inherit a blocked-signal mask from a test thread.
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none;
  sigemptyset(&none);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK);
  pid_t pid = -1;
  int rc = posix_spawn(&pid, args[0], &actions, &attr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) {
    return absl::InternalError(absl::StrCat("cannot start ", argv[0], ": ", strerror(rc)));
  }
  Process p;
  p.pid_ = pid;
  return p;
}

Process::Process(Process&& other) noexcept : pid_(other.pid_) { other.pid_ = -1; }

Process& Process::operator=(Process&& other) noexcept {
  std::swap(pid_, other.pid_);
  return *this;
}

Process::~Process() {
  if (pid_ > 0) {
    kill(pid_, SIGKILL);
    int status;
    waitpid(pid_, &status, 0);
  }
}

void Process::Signal(int signal) const {
  if (pid_ > 0) kill(pid_, signal);
}

absl::StatusOr<int> Process::Wait(absl::Duration timeout) {
  if (pid_ <= 0) return absl::FailedPreconditionError("process already reaped");
  absl::Time deadline = absl::Now() + timeout;
  for (;;) {
    int status = 0;
    pid_t r = waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      pid_ = -1;
      if (WIFEXITED(status)) return WEXITSTATUS(status);
      if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
      return -1;
    }
    if (absl::Now() > deadline) {
      return absl::DeadlineExceededError(absl::StrCat("process ", pid_, " still running"));
    }
    absl::SleepFor(absl::Milliseconds(20));
  }
}

absl::StatusOr<RunResult> RunCommand(const std::vector<std::string>& argv,
                                     const std::string& scratch, absl::Duration timeout) {
  static std::atomic<int> counter{0};
  int n = counter++;
  std::string out_path = absl::StrCat(scratch, "/cmd-", n, ".out");
  std::string err_path = absl::StrCat(scratch, "/cmd-", n, ".err");
  absl::StatusOr<Process> p = Process::Start(argv, out_path, err_path);
  if (!p.ok()) return p.status();
  absl::StatusOr<int> code = p->Wait(timeout);
  if (!code.ok()) return code.status();
  RunResult r;
  r.exit_code = *code;
  r.out = ReadFileOrEmpty(out_path);
  r.err = ReadFileOrEmpty(err_path);
  return r;
}

absl::StatusOr<ServerProcess> ServerProcess::Start(const std::string& binary,
                                                   const std::string& data_dir,
                                                   const std::string& scratch,
                                                   const std::vector<std::string>& extra_args,
                                                   absl::Duration timeout) {
  static std::atomic<int> counter{0};
  std::string log_path = absl::StrCat(scratch, "/pantherd-", counter++, ".log");
  std::vector<std::string> argv = {binary, "--listen", "127.0.0.1:0", "--data-dir", data_dir};
  argv.insert(argv.end(), extra_args.begin(), extra_args.end());
  absl::StatusOr<Process> p = Process::Start(argv, log_path + ".out", log_path);
  if (!p.ok()) return p.status();
  absl::Time deadline = absl::Now() + timeout;
  const std::string kServing = "msg=serving listen=";
  for (;;) {
    std::string log = ReadFileOrEmpty(log_path);
    size_t at = log.find(kServing);
    size_t end = at == std::string::npos ? at : log.find_first_of(" \n", at + kServing.size());
    if (end != std::string::npos) {
      std::string address = log.substr(at + kServing.size(), end - at - kServing.size());
      return ServerProcess(std::move(*p), address, log_path, data_dir + "/admin.token");
    }
    absl::StatusOr<int> exited = p->Wait(absl::ZeroDuration());
    if (exited.ok()) {
      return absl::FailedPreconditionError(
          absl::StrCat("pantherd exited with code ", *exited, " before serving; log:\n", log));
    }
    if (absl::Now() > deadline) {
      return absl::DeadlineExceededError(absl::StrCat("pantherd not serving after ",
                                                      absl::FormatDuration(timeout), "; log:\n",
                                                      log));
    }
    absl::SleepFor(absl::Milliseconds(20));
  }
}

std::vector<std::string> ServerProcess::CtlArgs() const {
  return {"--server", address_, "--token-file", admin_token_file_};
}

std::vector<std::string> ServerProcess::Ctl(const std::string& pantherctl,
                                            const std::vector<std::string>& args) const {
  std::vector<std::string> argv = {pantherctl};
  for (const std::string& a : CtlArgs()) argv.push_back(a);
  argv.insert(argv.end(), args.begin(), args.end());
  return argv;
}

}  // namespace pantherd::testing
