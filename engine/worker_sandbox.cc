#include "engine/worker_sandbox.h"

#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <new>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace pantherd::engine {
namespace {

absl::Status Errno(absl::string_view what) {
  return absl::InternalError(absl::StrCat(what, ": ", std::strerror(errno)));
}

// Writes `text` to stderr without allocating (also after fork).
void Say(absl::string_view text) {
  ssize_t ignored = write(2, text.data(), text.size());
  (void)ignored;
}

// Ends the calling process the way `wait_status` says a process ended:
// the same exit code, or the same fatal signal.
[[noreturn]] void EndLike(int wait_status) {
  if (WIFEXITED(wait_status)) _exit(WEXITSTATUS(wait_status));
  if (WIFSIGNALED(wait_status)) {
    const int sig = WTERMSIG(wait_status);
    signal(sig, SIG_DFL);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, sig);
    sigprocmask(SIG_UNBLOCK, &set, nullptr);
    kill(getpid(), sig);
  }
  _exit(kWorkerExitChannel);
}

// No privilege gain through exec, no ptrace or /proc/<pid>/mem access by
// processes of the same user, death with the parent. After any uid change,
// which clears the parent-death signal.
absl::Status LockProcess() {
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return Errno("prctl(PR_SET_NO_NEW_PRIVS)");
  if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) return Errno("prctl(PR_SET_DUMPABLE)");
  if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0) return Errno("prctl(PR_SET_PDEATHSIG)");
  return absl::OkStatus();
}

// W: waits for its child (I, or P without namespaces) and ends like P;
// kills the tree when a call in P runs `grace` past its deadline.
[[noreturn]] void RunWatchdog(pid_t child, const WorkerWatch* watch, bool child_is_init,
                              absl::Duration grace) {
  const int64_t grace_ns = absl::ToInt64Nanoseconds(grace);
  for (;;) {
    int status = 0;
    const pid_t r = waitpid(child, &status, WNOHANG);
    if (r == child) {
      if (child_is_init && watch->python_ended.load(std::memory_order_acquire) != 0) {
        EndLike(watch->python_wait_status.load(std::memory_order_acquire));
      }
      EndLike(status);
    }
    if (r < 0 && errno != EINTR) _exit(kWorkerExitChannel);
    const int64_t deadline = watch->call_deadline_ns.load(std::memory_order_acquire);
    if (deadline != INT64_MAX && absl::GetCurrentTimeNanos() - deadline >= grace_ns) {
      Say("pantherd-worker: a rule call ran past its time limit and did not end (stopped, or "
          "ignoring the interrupt); the watchdog ends the worker\n");
      kill(child, SIGKILL);
      while (waitpid(child, &status, 0) < 0 && errno == EINTR) {
      }
      _exit(kWorkerExitCallTimeLimit);
    }
    usleep(20 * 1000);
  }
}

// I: pid 1 of the namespace. Reaps every child; when P ends, records how
// and exits, which ends whatever else is left in the namespace.
[[noreturn]] void RunInit(pid_t python, WorkerWatch* watch) {
  for (;;) {
    int status = 0;
    const pid_t r = waitpid(-1, &status, 0);
    if (r == python) {
      watch->python_wait_status.store(status, std::memory_order_release);
      watch->python_ended.store(1, std::memory_order_release);
      _exit(0);
    }
    if (r < 0 && errno == ECHILD) _exit(kWorkerExitChannel);
  }
}

[[noreturn]] void Fail(absl::string_view who, const absl::Status& status) {
  Say(absl::StrCat("pantherd-worker (", who, "): ", status.message(), "\n"));
  _exit(kWorkerExitHardening);
}

}  // namespace

absl::Status InstallNoNewProcessesFilter() {
#if defined(__x86_64__)
  constexpr uint32_t kArch = AUDIT_ARCH_X86_64;
#elif defined(__aarch64__)
  constexpr uint32_t kArch = AUDIT_ARCH_AARCH64;
#else
  return absl::UnimplementedError("no seccomp filter for this architecture");
#endif
#if defined(__x86_64__) || defined(__aarch64__)
  const uint32_t kDeny = SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA);
  const uint32_t self = static_cast<uint32_t>(getpid());
  std::vector<sock_filter> p;
  auto stmt = [&p](uint16_t code, uint32_t k) { p.push_back(BPF_STMT(code, k)); };
  auto jump = [&p](uint16_t code, uint32_t k, uint8_t jt, uint8_t jf) {
    p.push_back(BPF_JUMP(code, k, jt, jf));
  };
  const uint32_t kArg0 = offsetof(seccomp_data, args[0]);  // low half (little-endian)
  stmt(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, arch));
  jump(BPF_JMP | BPF_JEQ | BPF_K, kArch, 1, 0);
  stmt(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS);  // another ABI: no way around the rules
  stmt(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr));
#if defined(__x86_64__)
  jump(BPF_JMP | BPF_JGE | BPF_K, 0x40000000u, 0, 1);  // the x32 ABI
  stmt(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS);
#endif
  std::vector<uint32_t> denied = {SYS_unshare, SYS_setns,  SYS_mount,   SYS_umount2,
                                  SYS_ptrace,  SYS_tkill,  SYS_rt_sigqueueinfo,
                                  SYS_rt_tgsigqueueinfo, SYS_process_vm_writev,
                                  SYS_pivot_root};
#ifdef SYS_fork
  denied.push_back(SYS_fork);
#endif
#ifdef SYS_vfork
  denied.push_back(SYS_vfork);
#endif
#ifdef SYS_pidfd_send_signal
  denied.push_back(SYS_pidfd_send_signal);
#endif
  for (uint32_t nr : denied) {
    jump(BPF_JMP | BPF_JEQ | BPF_K, nr, 0, 1);
    stmt(BPF_RET | BPF_K, kDeny);
  }
#ifdef SYS_clone3
  jump(BPF_JMP | BPF_JEQ | BPF_K, SYS_clone3, 0, 1);
  stmt(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (ENOSYS & SECCOMP_RET_DATA));  // falls back to clone
#endif
  // clone: threads only.
  jump(BPF_JMP | BPF_JEQ | BPF_K, SYS_clone, 0, 4);
  stmt(BPF_LD | BPF_W | BPF_ABS, kArg0);
  jump(BPF_JMP | BPF_JSET | BPF_K, CLONE_THREAD, 0, 1);
  stmt(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
  stmt(BPF_RET | BPF_K, kDeny);
  // kill and tgkill: only this process (signals to itself and its threads).
  for (uint32_t nr : {static_cast<uint32_t>(SYS_kill), static_cast<uint32_t>(SYS_tgkill)}) {
    jump(BPF_JMP | BPF_JEQ | BPF_K, nr, 0, 4);
    stmt(BPF_LD | BPF_W | BPF_ABS, kArg0);
    jump(BPF_JMP | BPF_JEQ | BPF_K, self, 0, 1);
    stmt(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
    stmt(BPF_RET | BPF_K, kDeny);
  }
  stmt(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);

  sock_fprog program{static_cast<unsigned short>(p.size()), p.data()};
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return Errno("prctl(PR_SET_NO_NEW_PRIVS)");
  if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &program, 0, 0) != 0) {
    return Errno("prctl(PR_SET_SECCOMP)");
  }
  return absl::OkStatus();
#endif
}

absl::StatusOr<Confinement> ConfineWorker(const WorkerConfig& config, absl::Duration grace) {
  if (config.channel_fd < 3) {
    return absl::InvalidArgumentError(
        absl::StrCat("worker channel fd must be >= 3, got ", config.channel_fd));
  }
  rlimit no_core{0, 0};
  if (setrlimit(RLIMIT_CORE, &no_core) != 0) return Errno("setrlimit(RLIMIT_CORE)");
  void* page = mmap(nullptr, sizeof(WorkerWatch), PROT_READ | PROT_WRITE,
                    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (page == MAP_FAILED) return Errno("mmap(shared watch page)");
  Confinement c;
  c.watch = new (page) WorkerWatch();

  // Namespaces need CAP_SYS_ADMIN; without root the tree is W and P.
  if (geteuid() == 0) {
    if (unshare(CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWUTS) == 0) {
      c.namespaces = true;
    } else {
      c.missing = absl::StrCat("namespaces refused (unshare: ", std::strerror(errno), ")");
    }
  } else {
    c.missing = "not started as root: no pid, network or /proc isolation";
  }

  const pid_t watchdog = getpid();
  const pid_t child = fork();
  if (child < 0) return Errno("fork");
  if (child > 0) {  // W
    close(config.channel_fd);
    absl::Status s = DropPrivileges(config.limits);
    if (s.ok()) s = LockProcess();
    if (s.ok() && config.parent_pid != 0 && getppid() != config.parent_pid) {
      s = absl::FailedPreconditionError("pantherd exited before the worker started");
    }
    if (!s.ok()) {
      kill(child, SIGKILL);
      Fail("watchdog", s);
    }
    RunWatchdog(child, c.watch, c.namespaces, grace);
  }

  if (c.namespaces) {  // I
    if (absl::Status s = LockProcess(); !s.ok()) Fail("init", s);
    if (mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) == 0 &&
        mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr) == 0) {
      c.own_proc = true;
    } else {
      c.missing = absl::StrCat("/proc not replaced (mount: ", std::strerror(errno), ")");
    }
    absl::Status s = DropPrivileges(config.limits);
    if (s.ok()) s = LockProcess();
    if (!s.ok()) Fail("init", s);
    const pid_t python = fork();
    if (python < 0) Fail("init", Errno("fork"));
    if (python > 0) {
      close(config.channel_fd);
      RunInit(python, c.watch);
    }
  }

  // P. Its parent is I (whose death ends the namespace) or W.
  WorkerConfig own = config;
  own.parent_pid = 0;
  if (absl::Status s = HardenWorkerProcess(own); !s.ok()) return s;
  if (!c.namespaces && getppid() != watchdog) {
    return absl::FailedPreconditionError("the worker's watchdog exited before it started");
  }
  absl::Status filter = InstallNoNewProcessesFilter();
  if (filter.ok()) {
    c.no_new_processes = true;
  } else if (absl::IsUnimplemented(filter)) {
    absl::StrAppend(&c.missing, c.missing.empty() ? "" : "; ", filter.message());
  } else {
    return filter;
  }
  return c;
}

}  // namespace pantherd::engine
