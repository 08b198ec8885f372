#include "client/connection.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "proto/base/status_macros.h"

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

absl::StatusOr<std::string> ReadWholeFile(const std::string& path, absl::string_view what) {
  std::ifstream in(path);
  if (!in) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": cannot read ", path));
  }
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

std::string LoginFilePath() {
  if (std::optional<std::string> xdg = NonEmptyEnv("XDG_CONFIG_HOME")) {
    return (std::filesystem::path(*xdg) / "pantherctl" / "config").string();
  }
  if (std::optional<std::string> home = NonEmptyEnv("HOME")) {
    return (std::filesystem::path(*home) / ".config" / "pantherctl" / "config").string();
  }
  return "";
}

absl::StatusOr<std::optional<LoginFile>> ReadLoginFile(const std::string& path) {
  std::error_code ec;
  if (path.empty() || !std::filesystem::exists(path, ec)) return std::optional<LoginFile>();
  PANTHERD_ASSIGN_OR_RETURN(std::string text, ReadWholeFile(path, "login file"));
  LoginFile login;
  int line_number = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_number;
    line = absl::StripAsciiWhitespace(line);
    if (line.empty() || absl::StartsWith(line, "#")) continue;
    size_t colon = line.find(':');
    if (colon == absl::string_view::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ":", line_number, ": expected \"key: value\""));
    }
    absl::string_view key = absl::StripAsciiWhitespace(line.substr(0, colon));
    std::string value(absl::StripAsciiWhitespace(line.substr(colon + 1)));
    if (key == "server") {
      login.server = value;
    } else if (key == "token") {
      login.token = value;
    } else if (key == "ca_cert") {
      login.ca_cert = value;
    } else {
      return absl::InvalidArgumentError(absl::StrCat(path, ":", line_number, ": unknown key \"",
                                                     key, "\" (known: server, token, ca_cert)"));
    }
  }
  return std::optional<LoginFile>(login);
}

absl::Status WriteLoginFile(const std::string& path, const LoginFile& login) {
  if (path.empty()) {
    return absl::FailedPreconditionError(
        "cannot tell where to store the login: set HOME or XDG_CONFIG_HOME");
  }
  std::error_code ec;
  std::filesystem::path dir = std::filesystem::path(path).parent_path();
  std::filesystem::create_directories(dir, ec);
  if (ec)
    return absl::FailedPreconditionError(
        absl::StrCat("cannot create ", dir.string(), ": ", ec.message()));
  std::filesystem::permissions(dir, std::filesystem::perms::owner_all,
                               std::filesystem::perm_options::replace, ec);
  std::string text =
      absl::StrCat("# Written by pantherctl login; keep it private.\nserver: ", login.server,
                   "\ntoken: ", login.token, "\n");
  if (!login.ca_cert.empty()) absl::StrAppend(&text, "ca_cert: ", login.ca_cert, "\n");
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot write ", path, ": ", strerror(errno)));
  }
  bool ok = fchmod(fd, 0600) == 0 &&
            write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  int saved = errno;
  close(fd);
  if (!ok) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot write ", path, ": ", strerror(saved)));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> ReadTokenFile(const std::string& path, absl::string_view what) {
  PANTHERD_ASSIGN_OR_RETURN(std::string text, ReadWholeFile(path, what));
  std::string token(absl::StripAsciiWhitespace(text.substr(0, text.find('\n'))));
  if (token.empty()) return absl::InvalidArgumentError(absl::StrCat(what, ": ", path, " is empty"));
  return token;
}

absl::StatusOr<ConnectionOptions> ResolveConnection(const ConnectionFlags& flags) {
  ConnectionOptions options = ResolveConnectionOptions(flags);
  std::optional<LoginFile> login;
  if (!flags.ignore_login_file) {
    PANTHERD_ASSIGN_OR_RETURN(login, ReadLoginFile(LoginFilePath()));
  }
  const bool server_given = flags.server.has_value() || NonEmptyEnv(kServerEnvVar).has_value();
  if (login.has_value() && !server_given && !login->server.empty()) options.server = login->server;
  // The login file's secrets go only to the server they were stored for
  // (the same address up to the spelling of the loopback host).
  const bool login_applies = login.has_value() && SameServer(login->server, options.server);

  options.token_source.clear();
  if (flags.token.has_value()) {
    options.token = *flags.token;
    options.token_source = "--token";
  } else if (flags.token_file.has_value()) {
    PANTHERD_ASSIGN_OR_RETURN(options.token, ReadTokenFile(*flags.token_file, "--token-file"));
    options.token_source = absl::StrCat("--token-file ", *flags.token_file);
  } else if (std::optional<std::string> env = NonEmptyEnv(kTokenEnvVar)) {
    options.token = *env;
    options.token_source = absl::StrCat("$", kTokenEnvVar);
  } else if (std::optional<std::string> file = NonEmptyEnv(kTokenFileEnvVar)) {
    PANTHERD_ASSIGN_OR_RETURN(options.token, ReadTokenFile(*file, kTokenFileEnvVar));
    options.token_source = absl::StrCat("$", kTokenFileEnvVar, " (", *file, ")");
  } else if (login_applies && !login->token.empty()) {
    options.token = login->token;
    options.token_source = absl::StrCat("the login file ", LoginFilePath(), " (pantherctl login)");
  }

  if (flags.ca_cert.has_value()) {
    options.ca_cert_file = *flags.ca_cert;
  } else if (std::optional<std::string> env = NonEmptyEnv(kCaCertEnvVar)) {
    options.ca_cert_file = *env;
  } else if (login_applies) {
    options.ca_cert_file = login->ca_cert;
  }
  options.client_cert_file = flags.client_cert.value_or("");
  options.client_key_file = flags.client_key.value_or("");
  return options;
}

std::string NormalizeServerAddress(absl::string_view server) {
  absl::string_view host = server;
  absl::string_view port;
  if (absl::StartsWith(server, "[")) {
    const size_t close = server.find(']');
    if (close != absl::string_view::npos) {
      host = server.substr(1, close - 1);
      port = server.substr(close + 1);  // ":PORT" or "".
    }
  } else if (const size_t colon = server.rfind(':');
             colon != absl::string_view::npos && server.find(':') == colon) {
    host = server.substr(0, colon);
    port = server.substr(colon);
  } else if (server.find(':') != absl::string_view::npos) {
    port = "";  // A bare IPv6 address such as "::1".
  }
  if (absl::StartsWith(port, ":")) port.remove_prefix(1);
  const std::string lower = absl::AsciiStrToLower(host);
  if (lower == "localhost" || lower == "127.0.0.1" || lower == "::1" || lower == "ip6-localhost") {
    return absl::StrCat("loopback:", port);
  }
  return std::string(server);
}

bool SameServer(absl::string_view a, absl::string_view b) {
  return NormalizeServerAddress(a) == NormalizeServerAddress(b);
}

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
  if (options.server.empty()) {
    return absl::InvalidArgumentError("no server address given");
  }
  std::shared_ptr<grpc::ChannelCredentials> credentials = grpc::InsecureChannelCredentials();
  if (!options.ca_cert_file.empty()) {
    grpc::SslCredentialsOptions ssl;
    PANTHERD_ASSIGN_OR_RETURN(ssl.pem_root_certs, ReadWholeFile(options.ca_cert_file, "--ca-cert"));
    if (options.client_cert_file.empty() != options.client_key_file.empty()) {
      return absl::InvalidArgumentError("--client-cert and --client-key must be given together");
    }
    if (!options.client_cert_file.empty()) {
      PANTHERD_ASSIGN_OR_RETURN(ssl.pem_cert_chain,
                                ReadWholeFile(options.client_cert_file, "--client-cert"));
      PANTHERD_ASSIGN_OR_RETURN(ssl.pem_private_key,
                                ReadWholeFile(options.client_key_file, "--client-key"));
    }
    credentials = grpc::SslCredentials(ssl);
  } else if (!options.client_cert_file.empty()) {
    return absl::InvalidArgumentError("--client-cert needs --ca-cert (TLS)");
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
      grpc::CreateCustomChannel(options.server, credentials, args);
  std::unique_ptr<Connection> connection(new Connection(options, std::move(channel)));
  PANTHERD_RETURN_IF_ERROR(connection->WaitForReady(std::min(options.timeout, kMaxConnectWait)));
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
  // The server's message is written for people; the code stays in the
  // returned status for callers, and only the codes whose meaning the message
  // may not carry get words in front.
  std::string text = status.error_message();
  if (text.empty()) {
    std::string words = absl::AsciiStrToLower(absl::StatusCodeToString(code));
    for (char& c : words) {
      if (c == '_') c = ' ';
    }
    text = absl::StrCat(method, " failed", words.empty() ? "" : absl::StrCat(" (", words, ")"));
  }
  switch (code) {
    case absl::StatusCode::kUnauthenticated:
      text = absl::StrCat("not authenticated: ", text);
      if (options_.token.empty()) {
        absl::StrAppend(&text, " (no token given; run pantherctl login, or use --token-file or ",
                        kTokenEnvVar, ")");
      } else {
        absl::StrAppend(&text, " (", TokenRefusedHint(options_.token_source), ")");
      }
      break;
    case absl::StatusCode::kPermissionDenied:
      text = absl::StrCat("permission denied: ", text);
      if (!options_.token_source.empty()) {
        absl::StrAppend(&text, " (token from ", options_.token_source, ")");
      }
      break;
    case absl::StatusCode::kDeadlineExceeded:
      absl::StrAppend(&text, " (timeout ", absl::FormatDuration(options_.timeout),
                      "; see --timeout)");
      break;
    default:
      break;
  }
  return absl::Status(code, OneLine(text));
}

std::string TokenRefusedHint(absl::string_view token_source) {
  if (token_source.empty()) return "the token was refused";
  std::string fix;
  if (absl::StartsWith(token_source, "--token-file")) {
    fix = "check that file, or run pantherctl login";
  } else if (absl::StartsWith(token_source, "--token")) {
    fix = "check the token given, or run pantherctl login";
  } else if (absl::StartsWith(token_source, "$")) {
    fix = "check or unset that variable, or run pantherctl login";
  } else {
    fix = "run pantherctl login again, or pass --token-file";
  }
  return absl::StrCat("the token from ", token_source, " was refused; ", fix);
}

}  // namespace pantherd::client
