#include "tests/test_util.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "client/output.h"

extern char** environ;

namespace pantherd::testing {

TempDir::TempDir() {
  const char* base = getenv("TMPDIR");
  std::string tmpl =
      absl::StrCat(base != nullptr && *base ? base : "/tmp", "/pantherd-test-XXXXXX");
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

int64_t StatusKib(pid_t pid, const std::string& field) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(field + ":", 0) != 0) continue;
    std::vector<std::string> parts =
        absl::StrSplit(line.substr(field.size() + 1), absl::ByAnyChar(" \t"), absl::SkipEmpty());
    int64_t kib = -1;
    if (!parts.empty() && absl::SimpleAtoi(parts[0], &kib)) return kib;
  }
  return -1;
}

absl::StatusOr<Process> Process::Start(const std::vector<std::string>& argv,
                                       const std::string& stdout_path,
                                       const std::string& stderr_path) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, stdout_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                   0644);
  posix_spawn_file_actions_addopen(&actions, 2, stderr_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                   0644);
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

::testing::AssertionResult WaitUntil(const std::function<bool()>& condition, absl::Duration timeout,
                                     absl::string_view description) {
  const absl::Time start = absl::Now();
  const absl::Time deadline = start + timeout;
  for (;;) {
    if (condition()) return ::testing::AssertionSuccess();
    if (absl::Now() > deadline) {
      return ::testing::AssertionFailure() << "gave up waiting for " << description << " after "
                                           << absl::FormatDuration(absl::Now() - start);
    }
    absl::SleepFor(absl::Milliseconds(10));
  }
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
      return absl::DeadlineExceededError(absl::StrCat(
          "pantherd not serving after ", absl::FormatDuration(timeout), "; log:\n", log));
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

namespace {

void Authorize(grpc::ClientContext& ctx, const std::string& bearer, absl::Duration timeout) {
  if (!bearer.empty()) ctx.AddMetadata("authorization", bearer);
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
}

}  // namespace

absl::StatusOr<v1::GetServerStatusResponse> GetServerStatus(v1::AdminService::Stub& admin,
                                                            const std::string& bearer) {
  grpc::ClientContext ctx;
  Authorize(ctx, bearer, absl::Seconds(20));
  v1::GetServerStatusResponse resp;
  grpc::Status s = admin.GetServerStatus(&ctx, v1::GetServerStatusRequest(), &resp);
  if (!s.ok()) {
    return absl::Status(static_cast<absl::StatusCode>(s.error_code()),
                        absl::StrCat("GetServerStatus: ", s.error_message()));
  }
  return resp;
}

::testing::AssertionResult WaitForSubscribers(const ServerProcess& server, int64_t n,
                                              absl::Duration timeout) {
  std::unique_ptr<v1::AdminService::Stub> admin = v1::AdminService::NewStub(
      grpc::CreateChannel(server.address(), grpc::InsecureChannelCredentials()));
  int64_t seen = -1;
  std::string error;
  ::testing::AssertionResult r = WaitUntil(
      [&] {
        absl::StatusOr<v1::GetServerStatusResponse> st = GetServerStatus(*admin, server.bearer());
        if (!st.ok()) {
          error = st.status().ToString();
          return false;
        }
        seen = st->streams().subscribers();
        return seen == n;
      },
      timeout, absl::StrCat(n, " StreamAlerts subscribers"));
  if (!r) r << " (last seen " << seen << (error.empty() ? "" : "; ") << error << ")";
  return r;
}

std::vector<v1::IngestEventsResponse> IngestBatches(
    v1::DetectionService::Stub& stub, const std::string& bearer,
    const std::vector<std::vector<std::string>>& batches, uint64_t* batch_id, grpc::Status* status,
    absl::Duration timeout) {
  grpc::ClientContext ctx;
  Authorize(ctx, bearer, timeout);
  auto stream = stub.IngestEvents(&ctx);
  std::vector<v1::IngestEventsResponse> answers;
  for (const std::vector<std::string>& batch : batches) {
    v1::IngestEventsRequest req;
    req.set_log_type("Okta.SystemLog");
    req.set_batch_id(++*batch_id);
    for (const std::string& e : batch) req.add_events(e);
    if (!stream->Write(req)) break;
    v1::IngestEventsResponse resp;
    if (!stream->Read(&resp)) break;
    answers.push_back(resp);
  }
  stream->WritesDone();
  *status = stream->Finish();
  return answers;
}

std::vector<v1::Alert> ListAlerts(v1::DetectionService::Stub& stub, const std::string& bearer,
                                  v1::ListAlertsRequest request) {
  grpc::ClientContext ctx;
  Authorize(ctx, bearer, absl::Seconds(30));
  request.mutable_page()->set_page_size(1000);
  v1::ListAlertsResponse resp;
  grpc::Status s = stub.ListAlerts(&ctx, request, &resp);
  EXPECT_TRUE(s.ok()) << "ListAlerts: " << s.error_message();
  return {resp.alerts().begin(), resp.alerts().end()};
}

absl::Status ParsePantherctlJson(const std::string& json, google::protobuf::Message* message,
                                 bool ignore_unknown_fields) {
  return client::JsonToMessage(json, message, ignore_unknown_fields);
}

std::string LoopbackHttpGet(int port, const std::string& path) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return "";
  timeval tv{20, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string answer;
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
    const std::string request =
        absl::StrCat("GET ", path, " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    if (send(fd, request.data(), request.size(), MSG_NOSIGNAL) ==
        static_cast<ssize_t>(request.size())) {
      char buf[8192];
      for (ssize_t n; (n = recv(fd, buf, sizeof(buf), 0)) > 0;) answer.append(buf, n);
    }
  }
  close(fd);
  return answer;
}

}  // namespace pantherd::testing
