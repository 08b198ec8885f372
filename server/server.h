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

 private:
  struct State;
  explicit PantherServer(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

// The whole pantherd program: parses flags, starts the server, waits for
// SIGINT or SIGTERM, shuts down. Returns the process exit code: 0 after a clean
// shutdown (and for --help/--version), 2 for usage errors, 1 for any other
// failure, reported as one log line.
int ServerMain(int argc, char** argv);

}  // namespace pantherd::server

#endif  // PANTHERD_SERVER_SERVER_H_
