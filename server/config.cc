#include "server/config.h"

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <string>
#include <type_traits>
#include <variant>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "proto/base/status_macros.h"
#include "yaml-cpp/yaml.h"

#ifndef PANTHERD_VERSION
#define PANTHERD_VERSION "0.0.0"
#endif

namespace pantherd::server {
namespace {

absl::Status YamlError(const std::string& path, const YAML::Mark& mark, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(path, ":", mark.line + 1, ": ", what));
}

template <typename T>
absl::Status ReadScalar(const std::string& path, const std::string& key, const YAML::Node& node,
                        absl::string_view type_name, T* out) {
  if (!node.IsScalar()) {
    return YamlError(path, node.Mark(), absl::StrCat("\"", key, "\" must be a ", type_name));
  }
  try {
    *out = node.as<T>();
  } catch (const YAML::Exception&) {
    return YamlError(
        path, node.Mark(),
        absl::StrCat("\"", key, "\" must be a ", type_name, ", got \"", node.Scalar(), "\""));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ValidateListenAddress(absl::string_view address) {
  if (absl::StartsWith(address, "unix:")) {
    if (address.size() > 5) return absl::OkStatus();
    return absl::InvalidArgumentError("listen address \"unix:\" names no socket path");
  }
  size_t colon = address.rfind(':');
  absl::string_view host = colon == absl::string_view::npos ? "" : address.substr(0, colon);
  absl::string_view port = colon == absl::string_view::npos ? "" : address.substr(colon + 1);
  int port_number = -1;
  if (host.empty() || port.empty() || !absl::SimpleAtoi(port, &port_number) || port_number < 0 ||
      port_number > 65535 || port.find_first_not_of("0123456789") != absl::string_view::npos) {
    return absl::InvalidArgumentError(absl::StrCat(
        "listen address \"", address, "\" is not host:port with a port from 0 to 65535"));
  }
  return absl::OkStatus();
}

bool IsLocalListenAddress(absl::string_view address) {
  if (absl::StartsWith(address, "unix:") || absl::StartsWith(address, "unix-abstract:")) {
    return true;
  }
  size_t colon = address.rfind(':');
  absl::string_view host = colon == absl::string_view::npos ? address : address.substr(0, colon);
  if (absl::StartsWith(host, "[") && absl::EndsWith(host, "]")) {
    host = host.substr(1, host.size() - 2);
  }
  return absl::StartsWith(host, "127.") || host == "::1" || host == "localhost";
}

absl::Status ValidateSecurity(const ServerConfig& config) {
  if (config.auth != "tokens" && config.auth != "none") {
    return absl::InvalidArgumentError(
        absl::StrCat("--auth: \"", config.auth, "\" is not one of tokens, none"));
  }
  if (config.tls_cert.empty() != config.tls_key.empty()) {
    return absl::InvalidArgumentError("--tls-cert and --tls-key must be given together");
  }
  if (!config.tls_client_ca.empty() && config.tls_cert.empty()) {
    return absl::InvalidArgumentError("--tls-client-ca needs --tls-cert and --tls-key");
  }
  const bool local = IsLocalListenAddress(config.listen);
  if (config.auth == "none" && !local) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--auth=none is only allowed on a loopback address or a Unix socket, not ", config.listen));
  }
  if (config.tls_cert.empty() && !local && !config.allow_plaintext) {
    return absl::InvalidArgumentError(absl::StrCat(
        "refusing plain-text gRPC on ", config.listen,
        ": give --tls-cert and --tls-key, listen on loopback, or pass --allow-plaintext"));
  }
  return absl::OkStatus();
}

std::string DefaultDataDir() {
  const char* xdg = std::getenv("XDG_DATA_HOME");
  if (xdg != nullptr && *xdg != '\0') {
    return (std::filesystem::path(xdg) / "pantherd").string();
  }
  return (std::filesystem::current_path() / ".pantherd").string();
}

namespace {

// One setting: the key `key` of the config file and the flag --key (with '-'
// for '_'). The flag wins over the file; validation of the final values
// follows both (ParseServerFlags).
struct Option {
  enum class Check { kNone, kPositive, kNonNegative, kExistingFile };
  const char* key;
  const char* help;
  Check check;
  std::variant<std::string ServerConfig::*, int ServerConfig::*, int64_t ServerConfig::*,
               bool ServerConfig::*, base::LogLevel ServerConfig::*>
      field;
};

// Every option, in the order --help lists them.
const std::vector<Option>& Options() {
  using C = ServerConfig;
  using K = Option::Check;
  static const std::vector<Option>* const options = new std::vector<Option>{
      {"listen", "gRPC listen address host:port (default 127.0.0.1:50051)", K::kNone, &C::listen},
      {"data_dir",
       "RocksDB data directory, created on first start (default $XDG_DATA_HOME/pantherd, else "
       "./.pantherd)",
       K::kNone, &C::data_dir},
      {"rules_dir", "folder of rule content to load at start", K::kNone, &C::rules_dir},
      {"log_level", "debug, info, warn or error (default info)", K::kNone, &C::log_level},
      {"shutdown_grace_seconds",
       "seconds in-flight calls get at shutdown before the rule workers are killed (default 10)",
       K::kNonNegative, &C::shutdown_grace_seconds},
      {"executor_threads", "threads for blocking work (default 4)", K::kPositive,
       &C::executor_threads},
      {"executor_queue", "blocking tasks that may wait before calls are refused (default 1024)",
       K::kPositive, &C::executor_queue},
      {"evaluation_threads",
       "threads for rule evaluation: ingested batches, uploads' and RunTests' test runs "
       "(default 4)",
       K::kPositive, &C::evaluation_threads},
      {"evaluation_queue", "evaluation tasks that may wait before calls are refused (default 256)",
       K::kPositive, &C::evaluation_queue},
      {"workers", "rule worker processes (default: one per core)", K::kNonNegative, &C::workers},
      {"rule_timeout_seconds", "time limit of one call into rule code (default 5)", K::kPositive,
       &C::rule_timeout_seconds},
      {"worker_memory_mb", "memory limit of each rule worker process (default 1024)", K::kPositive,
       &C::worker_memory_mb},
      {"worker_binary", "the rule worker program (default: pantherd-worker beside pantherd)",
       K::kNone, &C::worker_binary},
      {"max_event_bytes", "ingested events larger than this are rejected (default 1048576)",
       K::kPositive, &C::max_event_bytes},
      {"grpc_memory_quota_mib",
       "memory in MiB the gRPC server may use for connections and messages being received; "
       "beyond, it shrinks flow-control windows and closes connections (default 256)",
       K::kPositive, &C::grpc_memory_quota_mib},
      {"window_clock",
       "clock of dedup windows and caching-helper expiry: event (p_event_time, default) "
       "or processing",
       K::kNone, &C::window_clock},
      {"alert_sample_events", "matched events kept on each alert (default 10)", K::kNonNegative,
       &C::alert_sample_events},
      {"purge_interval_seconds",
       "seconds between purges of expired dedup, idempotence and caching state (default 600)",
       K::kPositive, &C::purge_interval_seconds},
      {"processed_retention_seconds",
       "how long a processed event id makes a re-send a duplicate (default 604800, 7 days)",
       K::kPositive, &C::processed_retention_seconds},
      {"window_retention_seconds",
       "how long an untouched dedup window is kept, at least its period (default 604800, 7 days)",
       K::kPositive, &C::window_retention_seconds},
      {"alert_log_retention_seconds",
       "how long alert changes are kept for stream resume (default 2592000, 30 days)", K::kPositive,
       &C::alert_log_retention_seconds},
      {"stream_buffer",
       "unsent alert changes a StreamAlerts subscriber may hold before it re-reads from the "
       "store (default 1024)",
       K::kPositive, &C::stream_buffer},
      {"source_retry_initial_ms",
       "first retry delay of a source poll after a transient failure; doubles with jitter "
       "(default 1000)",
       K::kPositive, &C::source_retry_initial_ms},
      {"source_retry_max_seconds", "longest retry delay of a source poll (default 300)",
       K::kPositive, &C::source_retry_max_seconds},
      {"source_error_retry_seconds",
       "retry pace of a source in ERROR, e.g. after a 401 (default 300)", K::kPositive,
       &C::source_error_retry_seconds},
      {"source_http_timeout_seconds", "time limit of one source HTTP request (default 60)",
       K::kPositive, &C::source_http_timeout_seconds},
      {"event_retention",
       "how long ingested events are kept for search, alert events and replay: 30d, 12h, 90m, "
       "3600s; 0 keeps none (default 30d)",
       K::kNone, &C::event_retention},
      {"external_url",
       "base URL of alert links in delivered payloads, e.g. https://pantherd.example.com "
       "(default: no link)",
       K::kNone, &C::external_url},
      {"delivery_attempts", "attempts per alert delivery before it is marked failed (default 10)",
       K::kPositive, &C::delivery_attempts},
      {"delivery_retry_base_ms",
       "first retry delay of a failed delivery; triples with jitter (default 30000)", K::kPositive,
       &C::delivery_retry_base_ms},
      {"delivery_retry_max_seconds", "longest retry delay of a delivery (default 21600, 6 hours)",
       K::kPositive, &C::delivery_retry_max_seconds},
      {"delivery_timeout_seconds", "time limit of one request to a destination (default 10)",
       K::kPositive, &C::delivery_timeout_seconds},
      {"auth",
       "tokens (every call needs an API token; default) or none (no tokens, loopback or Unix "
       "socket only)",
       K::kNone, &C::auth},
      {"tls_cert", "PEM certificate (chain) of the server; enables TLS", K::kExistingFile,
       &C::tls_cert},
      {"tls_key", "PEM private key of --tls-cert", K::kExistingFile, &C::tls_key},
      {"tls_client_ca", "PEM CA: require client certificates signed by it", K::kExistingFile,
       &C::tls_client_ca},
      {"allow_plaintext", "allow listening without TLS on an address other than loopback (warns)",
       K::kNone, &C::allow_plaintext},
      {"metrics_listen",
       "host:port of a Prometheus GET /metrics endpoint (plain HTTP, no auth; e.g. "
       "127.0.0.1:9464; default: none)",
       K::kNone, &C::metrics_listen},
      {"test_clock_file",
       "FOR TESTS ONLY: file holding the processing clock (Unix seconds or RFC 3339), re-read at "
       "every use (default: the system clock)",
       K::kExistingFile, &C::test_clock_file},
  };
  return *options;
}

std::string FlagName(const Option& option) {
  std::string flag = absl::StrCat("--", option.key);
  std::replace(flag.begin(), flag.end(), '_', '-');
  return flag;
}

// Reads `value` of option `o` from the config file `path` into `config`.
absl::Status ReadOption(const std::string& path, const Option& o, const YAML::Node& value,
                        ServerConfig* config) {
  const std::string key = o.key;
  return std::visit(
      [&](auto member) -> absl::Status {
        using T = std::remove_reference_t<decltype(config->*member)>;
        if constexpr (std::is_same_v<T, base::LogLevel>) {
          std::string level;
          PANTHERD_RETURN_IF_ERROR(ReadScalar(path, key, value, "string", &level));
          absl::StatusOr<base::LogLevel> parsed = base::ParseLogLevel(level);
          if (!parsed.ok()) return YamlError(path, value.Mark(), parsed.status().message());
          config->*member = *parsed;
          return absl::OkStatus();
        } else if constexpr (std::is_same_v<T, std::string>) {
          return ReadScalar(path, key, value, "string", &(config->*member));
        } else if constexpr (std::is_same_v<T, bool>) {
          return ReadScalar(path, key, value, "boolean", &(config->*member));
        } else {
          return ReadScalar(path, key, value, "integer", &(config->*member));
        }
      },
      o.field);
}

}  // namespace

absl::StatusOr<absl::Duration> ParseRetention(absl::string_view flag, absl::string_view value) {
  if (value == "0") return absl::ZeroDuration();
  auto bad = [&] {
    return absl::InvalidArgumentError(absl::StrCat(
        flag, ": \"", value,
        "\" is not a retention; use a number with a unit: 30d, 12h, 90m, 3600s, or 0"));
  };
  if (value.size() < 2) return bad();
  int64_t n = 0;
  if (!absl::SimpleAtoi(value.substr(0, value.size() - 1), &n) || n < 0 || n > 100000) {
    return bad();
  }
  switch (value.back()) {
    case 'd':
      return absl::Hours(24 * n);
    case 'h':
      return absl::Hours(n);
    case 'm':
      return absl::Minutes(n);
    case 's':
      return absl::Seconds(n);
    default:
      return bad();
  }
}

absl::Status LoadConfigFile(const std::string& path, ServerConfig* config) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    return absl::NotFoundError(absl::StrCat("config file ", path, " does not exist"));
  }
  YAML::Node root;
  try {
    root = YAML::LoadFile(path);
  } catch (const YAML::ParserException& e) {
    return YamlError(path, e.mark, e.msg);
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": ", e.what()));
  }
  if (root.IsNull()) return absl::OkStatus();  // An empty file changes nothing.
  if (!root.IsMap()) {
    return YamlError(path, root.Mark(), "the config file must be a mapping of option: value");
  }
  for (const auto& entry : root) {
    const std::string key = entry.first.as<std::string>();
    const auto& options = Options();
    auto it =
        std::find_if(options.begin(), options.end(), [&](const Option& o) { return key == o.key; });
    if (it == options.end()) {
      std::vector<std::string> known;
      for (const Option& o : options) known.push_back(o.key);
      return YamlError(
          path, entry.first.Mark(),
          absl::StrCat("unknown option \"", key, "\" (known: ", absl::StrJoin(known, ", "), ")"));
    }
    PANTHERD_RETURN_IF_ERROR(ReadOption(path, *it, entry.second, config));
  }
  return absl::OkStatus();
}

absl::StatusOr<ServerConfig> ParseServerFlags(int argc, const char* const* argv, std::ostream& out,
                                              std::ostream& err) {
  CLI::App app{"pantherd: detection-as-code server for Panther-format Python rules", "pantherd"};
  app.set_version_flag("--version", PANTHERD_VERSION);
  std::string config_file;
  app.add_option("--config", config_file, "YAML config file (keys as the flags, '_' for '-')")
      ->check(CLI::ExistingFile);
  // What each flag was given as, when it was; bools are flags without a value.
  using Given =
      std::variant<std::optional<std::string>, std::optional<int>, std::optional<int64_t>, bool>;
  const std::vector<Option>& options = Options();
  std::vector<Given> given(options.size());
  for (size_t i = 0; i < options.size(); ++i) {
    const Option& o = options[i];
    const std::string flag = FlagName(o);
    CLI::Option* added = std::visit(
        [&](auto member) -> CLI::Option* {
          using T = std::remove_reference_t<decltype(std::declval<ServerConfig&>().*member)>;
          if constexpr (std::is_same_v<T, bool>) {
            given[i] = false;
            return app.add_flag(flag, std::get<bool>(given[i]), o.help);
          } else if constexpr (std::is_same_v<T, int> || std::is_same_v<T, int64_t>) {
            given[i] = std::optional<T>();
            return app.add_option(flag, std::get<std::optional<T>>(given[i]), o.help);
          } else {  // std::string, and base::LogLevel read as its name
            given[i] = std::optional<std::string>();
            return app.add_option(flag, std::get<std::optional<std::string>>(given[i]), o.help);
          }
        },
        o.field);
    switch (o.check) {
      case Option::Check::kNone:
        break;
      case Option::Check::kPositive:
        added->check(CLI::PositiveNumber);
        break;
      case Option::Check::kNonNegative:
        added->check(CLI::NonNegativeNumber);
        break;
      case Option::Check::kExistingFile:
        added->check(CLI::ExistingFile);
        break;
    }
  }

  try {
    app.parse(argc, argv);
  } catch (const CLI::Success& e) {
    app.exit(e, out, err);
    return absl::CancelledError("");
  } catch (const CLI::ParseError& e) {
    err << app.help();
    return absl::InvalidArgumentError(e.what());
  }

  ServerConfig config;
  if (!config_file.empty()) {
    absl::Status s = LoadConfigFile(config_file, &config);
    if (!s.ok()) return s;
  }
  // Flags override the file.
  for (size_t i = 0; i < options.size(); ++i) {
    const Option& o = options[i];
    absl::Status applied = std::visit(
        [&](auto member) -> absl::Status {
          using T = std::remove_reference_t<decltype(config.*member)>;
          if constexpr (std::is_same_v<T, bool>) {
            if (std::get<bool>(given[i])) config.*member = true;
          } else if constexpr (std::is_same_v<T, int> || std::is_same_v<T, int64_t>) {
            const std::optional<T>& value = std::get<std::optional<T>>(given[i]);
            if (value) config.*member = *value;
          } else {
            const std::optional<std::string>& value =
                std::get<std::optional<std::string>>(given[i]);
            if (!value) return absl::OkStatus();
            if constexpr (std::is_same_v<T, base::LogLevel>) {
              absl::StatusOr<base::LogLevel> level = base::ParseLogLevel(*value);
              if (!level.ok()) {
                return absl::InvalidArgumentError(
                    absl::StrCat(FlagName(o), ": ", level.status().message()));
              }
              config.*member = *level;
            } else {
              config.*member = *value;
            }
          }
          return absl::OkStatus();
        },
        o.field);
    if (!applied.ok()) return applied;
  }
  if (config.window_clock != "event" && config.window_clock != "processing") {
    return absl::InvalidArgumentError(absl::StrCat("--window-clock: \"", config.window_clock,
                                                   "\" is not one of event, processing"));
  }
  if (absl::StatusOr<absl::Duration> r =
          ParseRetention("--event-retention", config.event_retention);
      !r.ok()) {
    return r.status();
  }
  if (config.stream_buffer < 1) {
    return absl::InvalidArgumentError(absl::StrCat("stream_buffer: ", config.stream_buffer,
                                                   " is not a positive number of changes"));
  }
  if (config.data_dir.empty()) config.data_dir = DefaultDataDir();
  absl::Status listen_ok = ValidateListenAddress(config.listen);
  if (!listen_ok.ok()) return listen_ok;
  if (!config.metrics_listen.empty()) {
    absl::Status metrics_ok = ValidateListenAddress(config.metrics_listen);
    if (!metrics_ok.ok() || absl::StartsWith(config.metrics_listen, "unix:")) {
      return absl::InvalidArgumentError(absl::StrCat("metrics_listen: \"", config.metrics_listen,
                                                     "\" is not host:port with a port from 0 to "
                                                     "65535"));
    }
  }
  absl::Status security_ok = ValidateSecurity(config);
  if (!security_ok.ok()) return security_ok;
  return config;
}

}  // namespace pantherd::server
