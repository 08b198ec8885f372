#include "engine/worker_host.h"

#include <dirent.h>
#include <grp.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "engine/ipc.h"
#include "proto/base/log.h"

namespace pantherd::engine {
namespace {

constexpr absl::string_view kFlagChannelFd = "--pantherd-channel-fd=";
constexpr absl::string_view kFlagParentPid = "--pantherd-parent-pid=";
constexpr absl::string_view kFlagMemory = "--pantherd-memory-bytes=";
constexpr absl::string_view kFlagCallLimit = "--pantherd-call-time-limit-ms=";
constexpr absl::string_view kFlagGrace = "--pantherd-kill-grace-ms=";
constexpr absl::string_view kFlagUid = "--pantherd-uid=";
constexpr absl::string_view kFlagGid = "--pantherd-gid=";

absl::Status Errno(absl::string_view what) {
  return absl::InternalError(absl::StrCat(what, ": ", std::strerror(errno)));
}

absl::Status SetLimit(int resource, rlim_t value, absl::string_view name) {
  rlimit limit{value, value};
  if (setrlimit(resource, &limit) != 0) return Errno(absl::StrCat("setrlimit(", name, ")"));
  return absl::OkStatus();
}

// Closes every descriptor >= 3 except `keep`.
absl::Status CloseOtherFds(int keep) {
#ifdef SYS_close_range
  bool ok = true;
  if (keep > 3 && syscall(SYS_close_range, 3u, static_cast<unsigned>(keep - 1), 0u) != 0)
    ok = false;
  if (ok && syscall(SYS_close_range, static_cast<unsigned>(keep + 1), ~0u, 0u) == 0) {
    return absl::OkStatus();
  }
#endif
  // Fallback (kernels before 5.9): list /proc/self/fd, then close.
  DIR* dir = opendir("/proc/self/fd");
  if (dir == nullptr) return Errno("opendir(/proc/self/fd)");
  std::vector<int> fds;
  const int dir_fd = dirfd(dir);
  while (dirent* entry = readdir(dir)) {
    int fd;
    if (!absl::SimpleAtoi(entry->d_name, &fd)) continue;
    if (fd > 2 && fd != keep && fd != dir_fd) fds.push_back(fd);
  }
  closedir(dir);
  for (int fd : fds) close(fd);
  return absl::OkStatus();
}

void OnOutOfMemory() {
  static const char kMessage[] =
      "pantherd-worker: out of memory (allocation failed under the worker memory limit)\n";
  ssize_t ignored = write(2, kMessage, sizeof(kMessage) - 1);
  (void)ignored;
  _exit(kWorkerExitOutOfMemory);
}

template <typename T>
absl::Status ParseFlagValue(absl::string_view arg, absl::string_view flag, T* out) {
  absl::string_view value = arg.substr(flag.size());
  if (!absl::SimpleAtoi(value, out)) {
    return absl::InvalidArgumentError(absl::StrCat("bad value in worker flag ", arg));
  }
  return absl::OkStatus();
}

}  // namespace

std::vector<std::string> WorkerFlags(const WorkerLimits& limits, pid_t parent_pid) {
  return {
      absl::StrCat(kFlagChannelFd, kWorkerChannelFd),
      absl::StrCat(kFlagParentPid, parent_pid),
      absl::StrCat(kFlagMemory, limits.memory_bytes),
      absl::StrCat(kFlagCallLimit, absl::ToInt64Milliseconds(limits.call_time_limit)),
      absl::StrCat(kFlagGrace, absl::ToInt64Milliseconds(limits.kill_grace)),
      absl::StrCat(kFlagUid, limits.unprivileged_uid),
      absl::StrCat(kFlagGid, limits.unprivileged_gid),
  };
}

absl::StatusOr<WorkerConfig> ParseWorkerArgs(int argc, const char* const* argv) {
  WorkerConfig config;
  for (int i = 1; i < argc; ++i) {
    absl::string_view arg = argv[i];
    absl::Status status;
    int64_t ms = 0;
    if (absl::StartsWith(arg, kFlagChannelFd)) {
      status = ParseFlagValue(arg, kFlagChannelFd, &config.channel_fd);
    } else if (absl::StartsWith(arg, kFlagParentPid)) {
      status = ParseFlagValue(arg, kFlagParentPid, &config.parent_pid);
    } else if (absl::StartsWith(arg, kFlagMemory)) {
      status = ParseFlagValue(arg, kFlagMemory, &config.limits.memory_bytes);
    } else if (absl::StartsWith(arg, kFlagCallLimit)) {
      status = ParseFlagValue(arg, kFlagCallLimit, &ms);
      config.limits.call_time_limit = absl::Milliseconds(ms);
    } else if (absl::StartsWith(arg, kFlagGrace)) {
      status = ParseFlagValue(arg, kFlagGrace, &ms);
      config.limits.kill_grace = absl::Milliseconds(ms);
    } else if (absl::StartsWith(arg, kFlagUid)) {
      status = ParseFlagValue(arg, kFlagUid, &config.limits.unprivileged_uid);
    } else if (absl::StartsWith(arg, kFlagGid)) {
      status = ParseFlagValue(arg, kFlagGid, &config.limits.unprivileged_gid);
    } else {
      config.args.emplace_back(arg);
      continue;
    }
    if (!status.ok()) return status;
    if (ms < 0 || config.limits.memory_bytes < 0 || config.parent_pid < 0) {
      return absl::InvalidArgumentError(absl::StrCat("negative value in worker flag ", arg));
    }
  }
  if (config.channel_fd < 3) {
    return absl::InvalidArgumentError(
        absl::StrCat("worker channel fd must be >= 3, got ", config.channel_fd));
  }
  return config;
}

absl::Status DropPrivileges(const WorkerLimits& limits) {
  if (geteuid() != 0) return absl::OkStatus();
  const gid_t gid = limits.unprivileged_gid;
  const uid_t uid = limits.unprivileged_uid;
  if (setgroups(0, nullptr) != 0) return Errno("setgroups");
  if (setresgid(gid, gid, gid) != 0) return Errno(absl::StrCat("setresgid(", gid, ")"));
  if (setresuid(uid, uid, uid) != 0) return Errno(absl::StrCat("setresuid(", uid, ")"));
  if (geteuid() == 0 || getegid() == 0) {
    return absl::InternalError("still root after dropping privileges");
  }
  return absl::OkStatus();
}

absl::Status HardenWorkerProcess(const WorkerConfig& config) {
  if (config.channel_fd < 3) {
    return absl::InvalidArgumentError(
        absl::StrCat("worker channel fd must be >= 3, got ", config.channel_fd));
  }
  if (absl::Status s = SetLimit(RLIMIT_CORE, 0, "RLIMIT_CORE"); !s.ok()) return s;
  if (config.limits.memory_bytes > 0) {
    absl::Status s =
        SetLimit(RLIMIT_AS, static_cast<rlim_t>(config.limits.memory_bytes), "RLIMIT_AS");
    if (!s.ok()) return s;
  }
  if (absl::Status s = CloseOtherFds(config.channel_fd); !s.ok()) return s;
  if (chdir("/") != 0) return Errno("chdir(/)");

  if (absl::Status s = DropPrivileges(config.limits); !s.ok()) return s;

  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return Errno("prctl(PR_SET_NO_NEW_PRIVS)");
  if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) return Errno("prctl(PR_SET_DUMPABLE)");
  // After the credential change, which clears the parent-death signal.
  if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0) return Errno("prctl(PR_SET_PDEATHSIG)");
  if (config.parent_pid != 0 && getppid() != config.parent_pid) {
    return absl::FailedPreconditionError("pantherd exited before the worker started");
  }
  std::set_new_handler(OnOutOfMemory);
  return absl::OkStatus();
}

// RemoteKv ------------------------------------------------------------------

void RemoteKv::BeginRequest(uint64_t request_id) {
  absl::MutexLock lock(&mu_);
  active_ = true;
  request_id_ = request_id;
}

void RemoteKv::EndRequest() {
  absl::MutexLock lock(&mu_);
  active_ = false;
}

bool RemoteKv::broken() const {
  absl::MutexLock lock(&mu_);
  return broken_;
}

absl::StatusOr<internal::KvReply> RemoteKv::Call(const internal::KvCall& call) {
  absl::MutexLock lock(&mu_);
  if (broken_) return absl::UnavailableError("the worker channel is broken");
  if (!active_) {
    return absl::FailedPreconditionError(
        "key-value calls are only possible while the worker handles a request");
  }
  internal::WorkerResponse out;
  out.set_id(request_id_);
  internal::KvCall* sent = out.mutable_kv_call();
  *sent = call;
  const uint64_t call_id = next_call_id_++;
  sent->set_call_id(call_id);
  if (absl::Status s = WriteMessage(fd_, out); !s.ok()) {
    broken_ = true;
    return s;
  }
  internal::WorkerRequest in;
  if (absl::Status s = ReadMessage(fd_, &in, absl::InfiniteFuture()); !s.ok()) {
    broken_ = true;
    return s;
  }
  if (!in.has_kv_reply() || in.kv_reply().call_id() != call_id) {
    broken_ = true;
    return absl::DataLossError(
        absl::StrCat("expected the reply to key-value call ", call_id, ", got another message"));
  }
  if (!in.kv_reply().error().empty()) {
    return absl::InternalError(in.kv_reply().error());
  }
  return std::move(*in.mutable_kv_reply());
}

// RunWorkerLoop --------------------------------------------------------------

int RunWorkerLoop(int fd, WorkerHandler& handler, RemoteKv* kv, KvCache* cache) {
  // The previous request's evaluation task, cleared: reading the next one into
  // it reuses its event messages and their string capacity, sparing a heap
  // allocation per event (a batch's events are mostly of similar size). A
  // request of another kind replaces it. (pantherd always sets a kind; a
  // frame without one would read as an evaluation of no events.)
  std::unique_ptr<internal::EvaluateTask> spare;
  internal::WorkerRequest request;
  for (;;) {
    request.Clear();
    if (spare != nullptr) request.set_allocated_evaluate(spare.release());
    absl::Status read = MergeMessage(fd, &request, absl::InfiniteFuture());
    if (absl::IsUnavailable(read) && read.message() == "worker closed the channel") {
      return kWorkerExitOk;  // pantherd closed the channel between requests
    }
    if (!read.ok()) {
      base::Log(base::LogLevel::kError, "cannot read a request", {{"error", read.ToString()}});
      return kWorkerExitChannel;
    }
    internal::WorkerResponse response;
    response.set_id(request.id());
    if (kv != nullptr) kv->BeginRequest(request.id());
    if (cache != nullptr) cache->BeginRequest(request.kv_sync());
    switch (request.kind_case()) {
      case internal::WorkerRequest::kLoad: {
        absl::StatusOr<internal::LoadResult> loaded = handler.Load(request.load());
        if (loaded.ok()) {
          *response.mutable_loaded() = std::move(*loaded);
        } else {
          response.set_error(loaded.status().ToString());
        }
        break;
      }
      case internal::WorkerRequest::kRunTests: {
        absl::StatusOr<v1::TestReport> report = handler.RunTests(request.run_tests());
        if (report.ok()) {
          *response.mutable_test_report() = std::move(*report);
        } else {
          response.set_error(report.status().ToString());
        }
        break;
      }
      case internal::WorkerRequest::kEvaluate: {
        absl::StatusOr<internal::EvaluateResult> result = handler.Evaluate(request.evaluate());
        if (result.ok()) {
          *response.mutable_evaluated() = std::move(*result);
        } else {
          response.set_error(result.status().ToString());
        }
        break;
      }
      case internal::WorkerRequest::kKvReply:
        if (kv != nullptr) kv->EndRequest();
        base::Log(base::LogLevel::kError, "unexpected kv_reply outside of a key-value call");
        return kWorkerExitChannel;
      default:
        response.set_error(absl::StrCat("unsupported worker request kind ",
                                        static_cast<int>(request.kind_case())));
        break;
    }
    if (cache != nullptr) {
      for (internal::KvCall& write : cache->TakeWrites()) {
        *response.add_kv_writes() = std::move(write);
      }
    }
    if (kv != nullptr) {
      kv->EndRequest();
      if (kv->broken()) {
        base::Log(base::LogLevel::kError, "the channel broke during a key-value call");
        return kWorkerExitChannel;
      }
    }
    if (absl::Status s = WriteMessage(fd, response); !s.ok()) {
      base::Log(base::LogLevel::kError, "cannot write a response", {{"error", s.ToString()}});
      return kWorkerExitChannel;
    }
    if (request.has_evaluate()) {
      spare.reset(request.release_evaluate());
      spare->Clear();
    }
  }
}

}  // namespace pantherd::engine
