#include "engine/worker_process.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <utility>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"

namespace pantherd::engine {
namespace {

std::string FormatBytes(int64_t bytes) {
  constexpr int64_t kMiB = int64_t{1} << 20;
  constexpr int64_t kGiB = int64_t{1} << 30;
  if (bytes > 0 && bytes % kGiB == 0) return absl::StrCat(bytes / kGiB, " GiB");
  if (bytes > 0 && bytes % kMiB == 0) return absl::StrCat(bytes / kMiB, " MiB");
  return absl::StrCat(bytes, " bytes");
}

std::string SignalName(int sig) {
  const char* abbrev = sigabbrev_np(sig);
  if (abbrev != nullptr) return absl::StrCat("SIG", abbrev);
  return absl::StrCat("signal ", sig);
}

}  // namespace

int KillWorkerProcesses(WorkerProcessList& processes) {
  absl::MutexLock lock(&processes.mu);
  processes.killed = true;
  for (pid_t pid : processes.pids) {
    kill(-pid, SIGKILL);  // its process group: also what rule code forked
    kill(pid, SIGKILL);
  }
  return static_cast<int>(processes.pids.size());
}

// WorkerProcess ----------------------------------------------------------------

WorkerProcess::~WorkerProcess() {
  CloseChannel();
  if (!reaped && pid > 0) {
    kill(pid, SIGKILL);
    ReapBlocking();
  }
}

void WorkerProcess::CloseChannel() {
  if (fd >= 0) close(fd);
  fd = -1;
}

bool WorkerProcess::TryReap() {
  if (reaped) return true;
  absl::MutexLock lock(&processes->mu);
  const pid_t rc = waitpid(pid, &wait_status, WNOHANG);
  if (rc == pid || (rc < 0 && errno != EINTR)) {
    reaped = true;
    processes->pids.erase(pid);
  }
  return reaped;
}

void WorkerProcess::ReapBlocking() {
  while (!TryReap()) absl::SleepFor(absl::Milliseconds(1));
}

bool WorkerProcess::ReapUntil(absl::Time deadline) {
  while (!TryReap()) {
    if (absl::Now() >= deadline) return false;
    absl::SleepFor(absl::Milliseconds(2));
  }
  return true;
}

// Spawning ---------------------------------------------------------------------

absl::Status SpawnWorkerProcess(const std::string& binary, const std::vector<std::string>& args,
                                const std::vector<std::string>& env, const WorkerLimits& limits,
                                WorkerOutput* output,
                                const std::shared_ptr<WorkerProcessList>& processes,
                                WorkerProcess* process) {
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
    return absl::UnavailableError(absl::StrCat("socketpair for a worker: ", strerror(errno)));
  }
  int parent_fd = sv[0];
  int child_fd = sv[1];
  if (child_fd == kWorkerChannelFd) {  // dup2(3, 3) would keep close-on-exec
    const int moved = fcntl(child_fd, F_DUPFD_CLOEXEC, kWorkerChannelFd + 1);
    close(child_fd);
    child_fd = moved;
    if (child_fd < 0) {
      close(parent_fd);
      return absl::UnavailableError(absl::StrCat("fcntl(F_DUPFD_CLOEXEC): ", strerror(errno)));
    }
  }
  auto close_both = absl::MakeCleanup([&] {
    if (parent_fd >= 0) close(parent_fd);
    close(child_fd);
  });

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  auto destroy_actions = absl::MakeCleanup([&] { posix_spawn_file_actions_destroy(&actions); });
  // The worker's stdout and stderr: a pipe read by `output`.
  int out_pipe[2] = {-1, -1};
  if (output != nullptr && pipe2(out_pipe, O_CLOEXEC) != 0) {
    return absl::UnavailableError(absl::StrCat("pipe for a worker's output: ", strerror(errno)));
  }
  auto close_out_pipe = absl::MakeCleanup([&] {
    if (out_pipe[0] >= 0) close(out_pipe[0]);
    if (out_pipe[1] >= 0) close(out_pipe[1]);
  });
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  if (output != nullptr) {
    posix_spawn_file_actions_adddup2(&actions, out_pipe[1], 1);
    posix_spawn_file_actions_adddup2(&actions, out_pipe[1], 2);
  } else {
    posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
  }
  posix_spawn_file_actions_adddup2(&actions, child_fd, kWorkerChannelFd);

  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  auto destroy_attr = absl::MakeCleanup([&] { posix_spawnattr_destroy(&attr); });
  sigset_t empty, all;
  sigemptyset(&empty);
  sigfillset(&all);
  posix_spawnattr_setsigmask(&attr, &empty);
  posix_spawnattr_setsigdefault(&attr, &all);
  posix_spawnattr_setpgroup(&attr, 0);
  posix_spawnattr_setflags(&attr,
                           POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP);

  std::vector<std::string> argv_strings;
  argv_strings.push_back(binary);
  argv_strings.insert(argv_strings.end(), args.begin(), args.end());
  for (std::string& flag : WorkerFlags(limits, getpid())) argv_strings.push_back(std::move(flag));
  std::vector<char*> argv;
  for (std::string& a : argv_strings) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<std::string> env_strings = env;
  std::vector<char*> envp;
  for (std::string& e : env_strings) envp.push_back(e.data());
  envp.push_back(nullptr);

  pid_t pid = -1;
  // Started and listed in one critical section, so KillWorkerProcesses sees
  // every process, and nothing starts after it ran.
  absl::ReleasableMutexLock listed(&processes->mu);
  if (processes->killed) {
    return absl::UnavailableError("worker pool is shutting down (workers killed)");
  }
  const int rc = posix_spawn(&pid, binary.c_str(), &actions, &attr, argv.data(), envp.data());
  if (rc == 0) processes->pids.insert(pid);
  listed.Release();
  if (rc != 0) {
    return absl::UnavailableError(absl::StrCat("cannot start worker ", binary, ": ", strerror(rc)));
  }
  if (output != nullptr) {
    close(out_pipe[1]);
    out_pipe[1] = -1;
    output->Add(pid, out_pipe[0]);  // takes it
    out_pipe[0] = -1;
  }
  const int flags = fcntl(parent_fd, F_GETFL);
  if (flags >= 0) fcntl(parent_fd, F_SETFL, flags | O_NONBLOCK);
  process->pid = pid;
  process->processes = processes;
  process->fd = parent_fd;
  parent_fd = -1;  // owned by the process now
  return absl::OkStatus();
}

// Ending -----------------------------------------------------------------------

WorkerEnd EndFailedWorkerProcess(WorkerProcess& process, const absl::Status& status,
                                 absl::Duration budget, const WorkerLimits& limits) {
  WorkerEnd end{WorkerEnd::kCrash, ""};
  if (absl::IsDeadlineExceeded(status)) {
    kill(process.pid, SIGKILL);
    process.CloseChannel();
    process.ReapBlocking();
    end.kind = WorkerEnd::kTimeout;
    end.description =
        absl::StrCat("no answer within ", absl::FormatDuration(budget), "; worker killed");
  } else if (absl::IsUnavailable(status)) {
    process.CloseChannel();
    if (!process.ReapUntil(absl::Now() + limits.kill_grace)) {
      kill(process.pid, SIGKILL);
      process.ReapBlocking();
      end.description = "worker closed its channel but kept running; worker killed";
    } else if (WIFSIGNALED(process.wait_status)) {
      const int sig = WTERMSIG(process.wait_status);
      end.description =
          sig == SIGKILL
              ? "worker was killed (signal SIGKILL, e.g. by the kernel's out-of-memory killer)"
              : absl::StrCat("worker crashed (signal ", SignalName(sig), ")");
    } else if (WIFEXITED(process.wait_status)) {
      const int code = WEXITSTATUS(process.wait_status);
      if (code == kWorkerExitOutOfMemory) {
        end.kind = WorkerEnd::kOutOfMemory;
        end.description =
            absl::StrCat("worker ran out of memory (limit ", FormatBytes(limits.memory_bytes), ")");
      } else if (code == kWorkerExitCallTimeLimit) {
        end.kind = WorkerEnd::kTimeout;
        end.description = absl::StrCat(
            "a rule call ran past its time limit of ", absl::FormatDuration(limits.call_time_limit),
            " and did not end (it ignored the interrupt or was stopped); the worker was ended");
      } else if (code == kWorkerExitHardening) {
        end.description = "worker failed to start (it could not harden itself; see its stderr)";
      } else {
        end.description = absl::StrCat("worker exited unexpectedly with code ", code);
      }
    } else {
      end.description = "worker exited unexpectedly";
    }
  } else {
    kill(process.pid, SIGKILL);
    process.CloseChannel();
    process.ReapBlocking();
    end.kind = WorkerEnd::kProtocol;
    end.description =
        absl::StrCat("worker broke the protocol (", status.ToString(), "); worker killed");
  }
  return end;
}

}  // namespace pantherd::engine
