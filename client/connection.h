// The connection of pantherctl to a pantherd server.
//
// This module turns the global flags into ConnectionOptions (flag, then
// environment variable, then default), opens a gRPC channel, waits briefly for
// it to connect so that an unreachable server is reported at once and by
// address, and runs unary calls with the caller's bearer token and a deadline.
// Every failure comes back as an absl::Status whose message is one
// human-readable line, ready for "pantherctl: error: <message>".
//
//   ConnectionOptions options = ResolveConnectionOptions(flags);
//   absl::StatusOr<std::unique_ptr<Connection>> conn = Connection::Open(options);
//   pantherd::v1::WhoAmIResponse response;
//   absl::Status s = (*conn)->Call("WhoAmI", &AdminStub::WhoAmI, (*conn)->admin(),
//                                  pantherd::v1::WhoAmIRequest(), &response);
//
// With a CA certificate (--ca-cert, PANTHER_CA_CERT or the login file) the
// channel uses TLS and verifies the server against that CA; a client
// certificate and key may be added for servers that require one. Without a
// CA the channel is plain text.
//
// WHERE THE TOKEN COMES FROM (first match wins):
//   1. --token TOKEN
//   2. --token-file FILE (the first line of FILE)
//   3. $PANTHER_TOKEN
//   4. $PANTHER_TOKEN_FILE
//   5. the file written by `pantherctl login`, but only when the server in
//      use is the one it was written for (loopback names are equal:
//      localhost, 127.0.0.1, ::1 and [::1] with the same port).
// The server is --server, else $PANTHER_SERVER, else the login file's, else
// 127.0.0.1:50051. The CA is --ca-cert, else $PANTHER_CA_CERT, else the login
// file's (again only for its server).
#ifndef PANTHERD_CLIENT_CONNECTION_H_
#define PANTHERD_CLIENT_CONNECTION_H_

#include <memory>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/grpcpp.h"
#include "pantherd/v1/admin_service.grpc.pb.h"
#include "pantherd/v1/detection_service.grpc.pb.h"

namespace pantherd::client {

// Environment variables and defaults behind the global flags.
inline constexpr char kServerEnvVar[] = "PANTHER_SERVER";
inline constexpr char kTokenEnvVar[] = "PANTHER_TOKEN";
inline constexpr char kTokenFileEnvVar[] = "PANTHER_TOKEN_FILE";
inline constexpr char kCaCertEnvVar[] = "PANTHER_CA_CERT";
inline constexpr char kDefaultServer[] = "127.0.0.1:50051";
inline constexpr double kDefaultTimeoutSeconds = 30;
// The longest pantherctl waits for the channel to connect before the first
// call (shorter when --timeout is shorter).
inline constexpr absl::Duration kMaxConnectWait = absl::Seconds(5);
// The largest message pantherctl sends or accepts (64 MiB): `upload` and
// `test` send a whole folder in one request (the whole panther-analysis
// repository is about 7 MiB). pantherd accepts as much for UploadRule,
// RunTests and IngestEvents, and at most 4 MiB for every other method
// (server/request_limits.h).
inline constexpr int kMaxMessageBytes = 64 << 20;
// The largest metadata pantherctl accepts (16 MiB), so that the trailer
// carrying a failed call's error details (a whole test report) gets through.
inline constexpr int kMaxMetadataBytes = 16 << 20;

// The connection-related global flags as given on the command line; an empty
// optional means the flag was not given.
struct ConnectionFlags {
  std::optional<std::string> server;
  std::optional<std::string> token;
  std::optional<std::string> token_file;
  std::optional<std::string> ca_cert;
  std::optional<std::string> client_cert;
  std::optional<std::string> client_key;
  double timeout_seconds = kDefaultTimeoutSeconds;
  // Ignore the login file (used by `login` itself).
  bool ignore_login_file = false;
};

// Everything needed to reach and call pantherd.
struct ConnectionOptions {
  // host:port (or any gRPC target URI) of the server.
  std::string server;
  // The API token sent as "authorization: Bearer <token>"; empty sends none.
  std::string token;
  // Where the token came from, for error messages: "--token", "--token-file
  // FILE", "$PANTHER_TOKEN", "$PANTHER_TOKEN_FILE (FILE)" or "the login file
  // PATH (pantherctl login)"; empty when there is none. Never the token.
  std::string token_source;
  // Deadline of every call, measured from its start.
  absl::Duration timeout = absl::Seconds(kDefaultTimeoutSeconds);
  // PEM file of the CA to verify the server with; empty: plain text.
  std::string ca_cert_file;
  // PEM client certificate and key, for servers that require one (TLS only).
  std::string client_cert_file;
  std::string client_key_file;
};

// What `pantherctl login` stores: one "key: value" per line (server, token,
// ca_cert).
struct LoginFile {
  std::string server;
  std::string token;
  std::string ca_cert;
};

// $XDG_CONFIG_HOME/pantherctl/config when XDG_CONFIG_HOME is set and
// non-empty, else $HOME/.config/pantherctl/config; "" when neither is set.
std::string LoginFilePath();

// Reads the login file at `path`; nullopt when it does not exist.
// InvalidArgument naming the file and line for a malformed line.
absl::StatusOr<std::optional<LoginFile>> ReadLoginFile(const std::string& path);

// Writes `login` to `path` with mode 0600 (its directory is created with
// mode 0700). Errors name the file.
absl::Status WriteLoginFile(const std::string& path, const LoginFile& login);

// The first line of the file at `path`, trimmed. InvalidArgument naming
// `what` and the file when it cannot be read or is empty.
absl::StatusOr<std::string> ReadTokenFile(const std::string& path, absl::string_view what);

// Resolves everything as described in the file comment, reading token
// files and the login file. Errors: those of ReadTokenFile and ReadLoginFile.
absl::StatusOr<ConnectionOptions> ResolveConnection(const ConnectionFlags& flags);

// Resolves each option as: the flag when given, else its environment variable
// (PANTHER_SERVER, PANTHER_TOKEN) when set and non-empty, else the default
// (127.0.0.1:50051, no token). A flag given with an empty value wins too, so
// `--token ""` sends no token even with PANTHER_TOKEN set. Reads the process
// environment; never fails.
ConnectionOptions ResolveConnectionOptions(const ConnectionFlags& flags);

// Turns the message of a gRPC UNAVAILABLE status raised while connecting
// (e.g. "failed to connect to all addresses; last error: UNKNOWN:
// ipv4:127.0.0.1:1: Failed to connect to remote host: Connection refused")
// into a short lowercase reason ("connection refused"). Returns "unavailable"
// when nothing useful is found.
std::string DescribeConnectFailure(absl::string_view grpc_message);

// `server` (host:port) with the loopback host spelled one way, so that
// "localhost:50051", "127.0.0.1:50051", "[::1]:50051" and "::1" variants
// compare equal ("loopback:50051"); every other address is returned as is.
std::string NormalizeServerAddress(absl::string_view server);

// True when `a` and `b` name the same server per NormalizeServerAddress.
// Decides whether the login file's token applies to the server in use.
bool SameServer(absl::string_view a, absl::string_view b);

// The hint added when pantherd refused a token: where it came from
// (ConnectionOptions.token_source) and how to fix that.
std::string TokenRefusedHint(absl::string_view token_source);

// Replaces line breaks and tabs with spaces so that `text` fits on one line.
std::string OneLine(absl::string_view text);

// An open channel to pantherd plus stubs of its services. Not copyable;
// safe to use from one thread at a time.
class Connection {
 public:
  using AdminStub = pantherd::v1::AdminService::Stub;
  using DetectionStub = pantherd::v1::DetectionService::Stub;
  using HealthStub = grpc::health::v1::Health::Stub;

  // Creates the channel to options.server (messages up to kMaxMessageBytes
  // both ways, metadata up to kMaxMetadataBytes) and waits up to
  // min(options.timeout, kMaxConnectWait) for it to become ready. Returns
  // UNAVAILABLE with the message "cannot reach pantherd at <server>
  // (<reason>)" when the server refuses, cannot be resolved or does not answer
  // in time; INVALID_ARGUMENT naming a PEM file that cannot be read.
  static absl::StatusOr<std::unique_ptr<Connection>> Open(const ConnectionOptions& options);

  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Prepares `context` for one call: deadline now + timeout and, when a
  // token is set, the "authorization: Bearer <token>" metadata.
  void PrepareContext(grpc::ClientContext* context) const;

  // Prepares `context` for a long-lived stream (`send`, `alerts tail`): the
  // token metadata only, no deadline (--timeout does not apply to streams).
  void PrepareStreamContext(grpc::ClientContext* context) const;

  // Runs the unary call `rpc` of `stub` with a context from PrepareContext.
  // Returns OK when the server answered OK (and fills *response); otherwise
  // the status of ToStatus(method, ...). `method` names the RPC in messages.
  template <typename Stub, typename Request, typename Response>
  absl::Status Call(absl::string_view method,
                    grpc::Status (Stub::*rpc)(grpc::ClientContext*, const Request&, Response*),
                    Stub& stub, const Request& request, Response* response) const {
    return Call(method, rpc, stub, request, response, nullptr);
  }

  // As above; when the call fails, also stores the binary error details the
  // server attached to its status (grpc::Status::error_details(), sent as the
  // grpc-status-details-bin trailer; empty when there are none) in
  // *error_details, if not null.
  template <typename Stub, typename Request, typename Response>
  absl::Status Call(absl::string_view method,
                    grpc::Status (Stub::*rpc)(grpc::ClientContext*, const Request&, Response*),
                    Stub& stub, const Request& request, Response* response,
                    std::string* error_details) const {
    grpc::ClientContext context;
    PrepareContext(&context);
    const grpc::Status status = (stub.*rpc)(&context, request, response);
    if (error_details != nullptr) *error_details = status.ok() ? "" : status.error_details();
    return ToStatus(method, status);
  }

  // Maps a gRPC status to an absl::Status with the same code (the two share
  // the canonical code space) and a one-line message for people, without
  // gRPC code names:
  //   - "cannot reach pantherd at <server> (<reason>)" when the call failed
  //     because no connection could be made;
  //   - otherwise the server's message, e.g. "no rule 'x'", or "<method>
  //     failed (not found)" when it sent none; UNAUTHENTICATED is prefixed
  //     "not authenticated: " and says where the token came from and how to
  //     fix it (or that none was given), PERMISSION_DENIED is prefixed
  //     "permission denied: " and names the token's source, and
  //     DEADLINE_EXCEEDED names the timeout.
  absl::Status ToStatus(absl::string_view method, const grpc::Status& status) const;

  const ConnectionOptions& options() const { return options_; }
  AdminStub& admin() const { return *admin_; }
  DetectionStub& detection() const { return *detection_; }
  HealthStub& health() const { return *health_; }

 private:
  Connection(ConnectionOptions options, std::shared_ptr<grpc::Channel> channel);

  // Waits up to `wait` for the channel to be ready; fails early when the
  // first connection attempt fails.
  absl::Status WaitForReady(absl::Duration wait) const;
  absl::Status Unreachable(absl::string_view reason) const;

  ConnectionOptions options_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<AdminStub> admin_;
  std::unique_ptr<DetectionStub> detection_;
  std::unique_ptr<HealthStub> health_;
};

}  // namespace pantherd::client

#endif  // PANTHERD_CLIENT_CONNECTION_H_
