#include "client/connection.h"

#include <algorithm>
#include <cstdlib>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "client/status_macros.h"

namespace pantherd::client {
namespace {

// Returns the value of environment variable `name`, or nullopt when it is
// unset or empty.
std::optional<std::string> NonEmptyEnv(const char* name) {
  const char* value = std::getenv(name);
  if (value == nullptr || *value == '\0') return std::nullopt;
  return std::string(value);
}

// True when a gRPC status says that no connection could be made, as opposed
// to an UNAVAILABLE sent by a server that is, e.g., shutting down.
bool IsConnectFailure(const grpc::Status& status) {
  if (status.error_code() != grpc::StatusCode::UNAVAILABLE) return false;
  const std::string& message = status.error_message();
  return absl::StartsWith(message, "failed to connect to all addresses") ||
         absl::StrContains(message, "DNS resolution failed") ||
         absl::StrContains(message, "Failed to connect to remote host");
}

}  // namespace

ConnectionOptions ResolveConnectionOptions(const ConnectionFlags& flags) {
  ConnectionOptions options;
  if (flags.server.has_value()) {
    options.server = *flags.server;
  } else {
    options.server = NonEmptyEnv(kServerEnvVar).value_or(kDefaultServer);
  }
  if (flags.token.has_value()) {
    options.token = *flags.token;
  } else {
    options.token = NonEmptyEnv(kTokenEnvVar).value_or("");
  }
  options.timeout = absl::Seconds(flags.timeout_seconds);
  return options;
}

std::string DescribeConnectFailure(absl::string_view grpc_message) {
  absl::string_view message = absl::StripAsciiWhitespace(grpc_message);
  // gRPC nests causes as "a: b: c"; the innermost one is the readable reason.
  absl::string_view reason = message;
  if (size_t pos = message.rfind(": "); pos != absl::string_view::npos) {
    reason = absl::StripAsciiWhitespace(message.substr(pos + 2));
  }
  if (reason.empty()) return "unavailable";
  std::string result(reason);
  // "Connection refused" -> "connection refused"; keep acronyms ("EOF").
  if (result.size() > 1 && absl::ascii_isupper(result[0]) && absl::ascii_islower(result[1])) {
    result[0] = absl::ascii_tolower(result[0]);
  }
  if (absl::StrContains(message, "DNS resolution failed")) {
    return absl::StrCat("name resolution failed: ", result);
  }
  return result;
}

std::string OneLine(absl::string_view text) {
  std::string result(absl::StripAsciiWhitespace(text));
  for (char& c : result) {
    if (c == '\n' || c == '\r' || c == '\t') c = ' ';
  }
  return result;
}

absl::StatusOr<std::unique_ptr<Connection>> Connection::Open(const ConnectionOptions& options) {
  if (!options.ca_cert_file.empty()) {
    return absl::UnimplementedError(
        "TLS is not supported yet; pantherctl only makes plain-text connections");
  }
  if (options.server.empty()) {
    return absl::InvalidArgumentError("no server address given");
  }
  grpc::ChannelArguments args;
  // A private subchannel pool: this connection's state (and backoff) is not
  // shared with other channels of the process, e.g. in tests.
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  args.SetUserAgentPrefix("pantherctl");
  args.SetMaxSendMessageSize(kMaxMessageBytes);
  args.SetMaxReceiveMessageSize(kMaxMessageBytes);
  args.SetInt(GRPC_ARG_MAX_METADATA_SIZE, kMaxMetadataBytes);
  std::shared_ptr<grpc::Channel> channel =
      grpc::CreateCustomChannel(options.server, grpc::InsecureChannelCredentials(), args);
  std::unique_ptr<Connection> connection(new Connection(options, std::move(channel)));
  PANTHERCTL_RETURN_IF_ERROR(connection->WaitForReady(std::min(options.timeout, kMaxConnectWait)));
  return connection;
}

Connection::Connection(ConnectionOptions options, std::shared_ptr<grpc::Channel> channel)
    : options_(std::move(options)),
      channel_(std::move(channel)),
      admin_(pantherd::v1::AdminService::NewStub(channel_)),
      detection_(pantherd::v1::DetectionService::NewStub(channel_)),
      health_(grpc::health::v1::Health::NewStub(channel_)) {}

absl::Status Connection::WaitForReady(absl::Duration wait) const {
  const absl::Time deadline = absl::Now() + wait;
  grpc_connectivity_state state = channel_->GetState(/*try_to_connect=*/true);
  while (state != GRPC_CHANNEL_READY) {
    if (state == GRPC_CHANNEL_TRANSIENT_FAILURE || state == GRPC_CHANNEL_SHUTDOWN) {
      // The first attempt failed. A call that is not wait-for-ready fails at
      // once with gRPC's account of why; use it for the reason.
      grpc::ClientContext probe;
      probe.set_deadline(absl::ToChronoTime(std::min(deadline, absl::Now() + absl::Seconds(1))));
      grpc::health::v1::HealthCheckResponse response;
      grpc::Status status =
          health_->Check(&probe, grpc::health::v1::HealthCheckRequest(), &response);
      if (status.error_code() == grpc::StatusCode::UNAVAILABLE) {
        return Unreachable(DescribeConnectFailure(status.error_message()));
      }
      return absl::OkStatus();  // Something answered: the server is there.
    }
    if (!channel_->WaitForStateChange(state, absl::ToChronoTime(deadline))) {
      return Unreachable(absl::StrCat("no connection within ", absl::FormatDuration(wait)));
    }
    state = channel_->GetState(/*try_to_connect=*/true);
  }
  return absl::OkStatus();
}

absl::Status Connection::Unreachable(absl::string_view reason) const {
  return absl::UnavailableError(
      OneLine(absl::StrCat("cannot reach pantherd at ", options_.server, " (", reason, ")")));
}

void Connection::PrepareContext(grpc::ClientContext* context) const {
  context->set_deadline(absl::ToChronoTime(absl::Now() + options_.timeout));
  PrepareStreamContext(context);
}

void Connection::PrepareStreamContext(grpc::ClientContext* context) const {
  if (!options_.token.empty()) {
    context->AddMetadata("authorization", absl::StrCat("Bearer ", options_.token));
  }
}

absl::Status Connection::ToStatus(absl::string_view method, const grpc::Status& status) const {
  if (status.ok()) return absl::OkStatus();
  if (IsConnectFailure(status)) return Unreachable(DescribeConnectFailure(status.error_message()));

  const auto code = static_cast<absl::StatusCode>(status.error_code());
  std::string text = absl::StatusCodeToString(code);
  if (text.empty()) text = absl::StrCat("CODE_", static_cast<int>(code));
  if (status.error_message().empty()) {
    absl::StrAppend(&text, ": ", method, " failed");
  } else {
    absl::StrAppend(&text, ": ", status.error_message());
  }
  if (code == absl::StatusCode::kUnauthenticated && options_.token.empty()) {
    absl::StrAppend(&text, " (no token given; use --token or ", kTokenEnvVar, ")");
  }
  if (code == absl::StatusCode::kDeadlineExceeded) {
    absl::StrAppend(&text, " (timeout ", absl::FormatDuration(options_.timeout),
                    "; see --timeout)");
  }
  return absl::Status(code, OneLine(text));
}

}  // namespace pantherd::client
