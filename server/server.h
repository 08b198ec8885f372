// The pantherd server process: opens the store, serves the gRPC services, and
// shuts down cleanly.
//
// Start-up is a list of steps, each of which may fail with a clear status:
// open the store (a data directory held by another pantherd fails here, before
// any port is bound), start the rule workers with the stored rule set and
// install the bundled pack, bind and serve. Shutdown marks the health service
// NOT_SERVING, stops accepting calls, lets in-flight calls finish within the
// grace period, drains the executor, ends the workers, then flushes and closes
// RocksDB.
//
//   absl::StatusOr<std::unique_ptr<PantherServer>> s = PantherServer::Start(config);
//   ... (*s)->Shutdown();
#ifndef PANTHERD_SERVER_SERVER_H_
#define PANTHERD_SERVER_SERVER_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "server/config.h"

namespace pantherd::server {

class PantherServer {
 public:
  // Starts serving. Errors: those of store::Store::Open (FailedPrecondition
  // when another process holds the data directory, DataLoss when it is
  // corrupted), FailedPrecondition when the worker program is missing or the
  // stored rules no longer load, the errors of an upload when the bundled
  // pack is refused, Unavailable when the listen address cannot be bound.
  static absl::StatusOr<std::unique_ptr<PantherServer>> Start(const ServerConfig& config);

  // Shuts down if still running.
  ~PantherServer();

  PantherServer(const PantherServer&) = delete;
  PantherServer& operator=(const PantherServer&) = delete;

  // The address actually bound, host:port (port 0 resolved).
  const std::string& listen_address() const;

  // Clean shutdown as described above; returns the status of closing the
  // store. Idempotent. Not thread-safe with itself.
  absl::Status Shutdown();

  // For a shutdown that takes too long: stops the worker pool (waiting and
  // later evaluations fail with Unavailable, nothing is restarted) and
  // SIGKILLs every rule worker's process group, which ends the calls waiting
  // for them. Returns the number of worker processes signalled. Thread-safe,
  // also while Shutdown runs on another thread.
  int AbortWorkers();

 private:
  struct State;
  explicit PantherServer(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

// The audit action recorded when pantherd quarantines a rule (actor
// "pantherd", target the rule id, detail the reason).
inline constexpr absl::string_view kQuarantineAuditAction = "pantherd/QuarantineRule";

// The whole pantherd program: parses flags, starts the server, waits for
// SIGINT or SIGTERM, shuts down. A second signal, or the shutdown grace
// running out, SIGKILLs the rule workers; if the shutdown has not finished 3 s
// after that, the process exits with 1 without closing the store. Returns the process exit code: 0
// after a clean shutdown (and for --help/--version), 2 for usage errors, 1 for any other failure,
// reported as one log line.
int ServerMain(int argc, char** argv);

}  // namespace pantherd::server

#endif  // PANTHERD_SERVER_SERVER_H_
