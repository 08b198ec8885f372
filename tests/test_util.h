// Support for integration tests: temporary directories, and real pantherd /
// pantherctl processes started from the binaries the build produced.
//
// Everything stays on this machine: servers listen on 127.0.0.1 port 0 and the
// tests read the port pantherd reports in its "serving" log line.
#ifndef PANTHERD_TESTS_TEST_UTIL_H_
#define PANTHERD_TESTS_TEST_UTIL_H_

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "google/protobuf/message.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "pantherd/v1/admin_service.grpc.pb.h"
#include "pantherd/v1/detection_service.grpc.pb.h"

namespace pantherd::testing {

// A fresh directory under $TMPDIR (or /tmp), removed with its contents on
// destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string Sub(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// Reads a whole file; empty when it does not exist.
std::string ReadFileOrEmpty(const std::string& path);

// Parses pantherctl's --output json (docs/cli.md, "JSON": enum values without
// their type's prefix, 64-bit integers as numbers) into `message`, with
// client::JsonToMessage. `ignore_unknown_fields` lets keys of pantherctl's
// own (e.g. `status`'s uptimeSeconds) through.
absl::Status ParsePantherctlJson(const std::string& json, google::protobuf::Message* message,
                                 bool ignore_unknown_fields = false);

// A memory figure of process `pid` from /proc/<pid>/status, in KiB: `field`
// is e.g. "VmHWM" (peak resident set) or "VmRSS". -1 when unknown.
int64_t StatusKib(pid_t pid, const std::string& field);

// GET `path` from 127.0.0.1:`port` over plain HTTP/1.1 (Connection: close):
// the whole answer, status line and headers included; "" when the
// connection fails. Waits at most 20 s for data.
std::string LoopbackHttpGet(int port, const std::string& path);

// Polls `condition` (every 10 ms) until it holds or `timeout` has passed.
// Tests wait on something they can observe instead of sleeping and hoping:
//
//   ASSERT_TRUE(WaitUntil([&] { return hub.stats().subscribers == 2; },
//                         absl::Seconds(10), "two subscribers"));
//
// The failure names `description` and the time waited.
::testing::AssertionResult WaitUntil(const std::function<bool()>& condition, absl::Duration timeout,
                                     absl::string_view description);

// A child process whose stdout and stderr go to files. The destructor kills
// (SIGKILL) and reaps it if it is still running.
class Process {
 public:
  // Starts `argv[0]` with `argv`. stdout/stderr are written to the given files.
  static absl::StatusOr<Process> Start(const std::vector<std::string>& argv,
                                       const std::string& stdout_path,
                                       const std::string& stderr_path);
  Process(Process&& other) noexcept;
  Process& operator=(Process&& other) noexcept;
  ~Process();

  pid_t pid() const { return pid_; }
  // Sends `signal`.
  void Signal(int signal) const;
  // Waits up to `timeout` for exit. Returns the exit code, 128+signal when it
  // was killed by a signal, or DeadlineExceeded.
  absl::StatusOr<int> Wait(absl::Duration timeout);
  bool running() const { return pid_ > 0; }

 private:
  Process() = default;
  pid_t pid_ = -1;
};

// The result of running a command to completion.
struct RunResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

// Runs `argv` to completion (killed after `timeout`) with output captured;
// `scratch` is a directory for the capture files.
absl::StatusOr<RunResult> RunCommand(const std::vector<std::string>& argv,
                                     const std::string& scratch,
                                     absl::Duration timeout = absl::Seconds(60));

// A pantherd started for a test on 127.0.0.1:0 with its own data directory.
class ServerProcess {
 public:
  // Starts `binary` with --listen 127.0.0.1:0 --data-dir `data_dir` and
  // `extra_args`, and waits until its log says it is serving (or it exits).
  // Errors carry the server's log.
  static absl::StatusOr<ServerProcess> Start(const std::string& binary, const std::string& data_dir,
                                             const std::string& scratch,
                                             const std::vector<std::string>& extra_args = {},
                                             absl::Duration timeout = absl::Seconds(30));
  const std::string& address() const { return address_; }
  Process& process() { return process_; }
  // The server's stderr (its log) so far.
  std::string Log() const { return ReadFileOrEmpty(log_path_); }

  // The first admin's API token, as pantherd wrote it to
  // <data-dir>/admin.token on first start ("" if it did not, e.g. with
  // --auth=none), and that file's path.
  const std::string& admin_token() const { return admin_token_; }
  const std::string& admin_token_file() const { return admin_token_file_; }
  // "Bearer <admin token>", the value of the "authorization" metadata of a
  // gRPC call made as the admin.
  std::string bearer() const { return "Bearer " + admin_token_; }
  // The arguments that make pantherctl talk to this server as the admin:
  // {"--server", address(), "--token-file", admin_token_file()}. Tests run
  // pantherctl as {kPantherctl, server.CtlArgs()..., "status"}; see Ctl().
  std::vector<std::string> CtlArgs() const;
  // {pantherctl, CtlArgs()..., args...}.
  std::vector<std::string> Ctl(const std::string& pantherctl,
                               const std::vector<std::string>& args) const;

 private:
  ServerProcess(Process p, std::string address, std::string log_path, std::string token_file)
      : process_(std::move(p)),
        address_(std::move(address)),
        log_path_(std::move(log_path)),
        admin_token_file_(std::move(token_file)) {
    std::string token = ReadFileOrEmpty(admin_token_file_);
    admin_token_ = token.substr(0, token.find('\n'));
  }
  Process process_;
  std::string address_;
  std::string log_path_;
  std::string admin_token_file_;
  std::string admin_token_;
};

// gRPC helpers shared by the end-to-end tests. Each call is made as
// `bearer` ("Bearer <token>", see ServerProcess::bearer(); "" for none).

// GetServerStatus.
absl::StatusOr<v1::GetServerStatusResponse> GetServerStatus(v1::AdminService::Stub& admin,
                                                            const std::string& bearer);

// Waits until the server counts `n` StreamAlerts subscribers (GetServerStatus
// streams.subscribers), e.g. until an `alerts tail` started by the test has
// subscribed before the test produces the alerts it must see live.
::testing::AssertionResult WaitForSubscribers(const ServerProcess& server, int64_t n,
                                              absl::Duration timeout = absl::Seconds(30));

// Sends each batch of Okta.SystemLog events on one IngestEvents stream and
// returns the answers in order; `status` gets the stream's end. Batch ids are
// ++*batch_id, so a test keeps them increasing across calls when it wants.
std::vector<v1::IngestEventsResponse> IngestBatches(
    v1::DetectionService::Stub& stub, const std::string& bearer,
    const std::vector<std::vector<std::string>>& batches, uint64_t* batch_id, grpc::Status* status,
    absl::Duration timeout = absl::Seconds(120));

// The first 1000 alerts (ListAlerts with `request`'s filters); a failed call
// is a test failure and gives none.
std::vector<v1::Alert> ListAlerts(v1::DetectionService::Stub& stub, const std::string& bearer,
                                  v1::ListAlertsRequest request = {});

}  // namespace pantherd::testing

#endif  // PANTHERD_TESTS_TEST_UTIL_H_
