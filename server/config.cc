#include "server/config.h"

#include <cstdlib>
#include <filesystem>
#include <optional>

#include "CLI/CLI.hpp"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
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
    return YamlError(path, node.Mark(),
                     absl::StrCat("\"", key, "\" must be a ", type_name, ", got \"",
                                  node.Scalar(), "\""));
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
        "--auth=none is only allowed on a loopback address or a Unix socket, not ",
        config.listen));
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
    const YAML::Node& value = entry.second;
    absl::Status s;
    if (key == "listen") {
      s = ReadScalar(path, key, value, "string", &config->listen);
    } else if (key == "data_dir") {
      s = ReadScalar(path, key, value, "string", &config->data_dir);
    } else if (key == "rules_dir") {
      s = ReadScalar(path, key, value, "string", &config->rules_dir);
    } else if (key == "log_level") {
      std::string level;
      s = ReadScalar(path, key, value, "string", &level);
      if (s.ok()) {
        absl::StatusOr<LogLevel> parsed = ParseLogLevel(level);
        if (!parsed.ok()) return YamlError(path, value.Mark(), parsed.status().message());
        config->log_level = *parsed;
      }
    } else if (key == "shutdown_grace_seconds") {
      s = ReadScalar(path, key, value, "integer", &config->shutdown_grace_seconds);
    } else if (key == "executor_threads") {
      s = ReadScalar(path, key, value, "integer", &config->executor_threads);
    } else if (key == "executor_queue") {
      s = ReadScalar(path, key, value, "integer", &config->executor_queue);
    } else if (key == "workers") {
      s = ReadScalar(path, key, value, "integer", &config->workers);
    } else if (key == "rule_timeout_seconds") {
      s = ReadScalar(path, key, value, "integer", &config->rule_timeout_seconds);
    } else if (key == "worker_memory_mb") {
      s = ReadScalar(path, key, value, "integer", &config->worker_memory_mb);
    } else if (key == "window_clock") {
      s = ReadScalar(path, key, value, "string", &config->window_clock);
    } else if (key == "alert_sample_events") {
      s = ReadScalar(path, key, value, "integer", &config->alert_sample_events);
    } else if (key == "purge_interval_seconds") {
      s = ReadScalar(path, key, value, "integer", &config->purge_interval_seconds);
    } else if (key == "stream_buffer") {
      s = ReadScalar(path, key, value, "integer", &config->stream_buffer);
    } else if (key == "source_retry_initial_ms") {
      s = ReadScalar(path, key, value, "integer", &config->source_retry_initial_ms);
    } else if (key == "source_retry_max_seconds") {
      s = ReadScalar(path, key, value, "integer", &config->source_retry_max_seconds);
    } else if (key == "source_error_retry_seconds") {
      s = ReadScalar(path, key, value, "integer", &config->source_error_retry_seconds);
    } else if (key == "source_http_timeout_seconds") {
      s = ReadScalar(path, key, value, "integer", &config->source_http_timeout_seconds);
    } else if (key == "max_event_bytes") {
      s = ReadScalar(path, key, value, "integer", &config->max_event_bytes);
    } else if (key == "worker_binary") {
      s = ReadScalar(path, key, value, "string", &config->worker_binary);
    } else if (key == "auth") {
      s = ReadScalar(path, key, value, "string", &config->auth);
    } else if (key == "tls_cert") {
      s = ReadScalar(path, key, value, "string", &config->tls_cert);
    } else if (key == "tls_key") {
      s = ReadScalar(path, key, value, "string", &config->tls_key);
    } else if (key == "tls_client_ca") {
      s = ReadScalar(path, key, value, "string", &config->tls_client_ca);
    } else if (key == "allow_plaintext") {
      s = ReadScalar(path, key, value, "boolean", &config->allow_plaintext);
    } else if (key == "metrics_listen") {
      s = ReadScalar(path, key, value, "string", &config->metrics_listen);
    } else {
      return YamlError(path, entry.first.Mark(),
                       absl::StrCat("unknown option \"", key,
                                    "\" (known: listen, data_dir, rules_dir, log_level, "
                                    "shutdown_grace_seconds, executor_threads, executor_queue, workers, "
                                    "rule_timeout_seconds, worker_memory_mb, worker_binary, max_event_bytes, "
                                    "window_clock, alert_sample_events, purge_interval_seconds, "
                                    "stream_buffer, source_retry_initial_ms, source_retry_max_seconds, "
                                    "source_error_retry_seconds, source_http_timeout_seconds, auth, "
                                    "tls_cert, tls_key, tls_client_ca, allow_plaintext, "
                                    "metrics_listen)"));
    }
    if (!s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::StatusOr<ServerConfig> ParseServerFlags(int argc, const char* const* argv, std::ostream& out,
                                              std::ostream& err) {
  CLI::App app{"pantherd: detection-as-code server for Panther-format Python rules", "pantherd"};
  app.set_version_flag("--version", PANTHERD_VERSION);
  std::string config_file;
  std::optional<std::string> listen, data_dir, rules_dir, log_level;
  std::optional<int> grace, threads, queue, workers, rule_timeout, worker_memory;
  std::optional<std::string> worker_binary;
  std::optional<int64_t> max_event_bytes;
  std::optional<std::string> window_clock;
  std::optional<int> alert_sample_events, purge_interval, stream_buffer;
  std::optional<int> source_retry_initial_ms, source_retry_max, source_error_retry,
      source_http_timeout;
  std::optional<std::string> auth, tls_cert, tls_key, tls_client_ca;
  bool allow_plaintext = false;
  std::optional<std::string> metrics_listen;
  app.add_option("--config", config_file, "YAML config file (keys as the flags, '_' for '-')")
      ->check(CLI::ExistingFile);
  app.add_option("--listen", listen, "gRPC listen address host:port (default 127.0.0.1:50051)");
  app.add_option("--data-dir", data_dir,
                 "RocksDB data directory, created on first start (default "
                 "$XDG_DATA_HOME/pantherd, else ./.pantherd)");
  app.add_option("--rules-dir", rules_dir, "folder of rule content to load at start");
  app.add_option("--log-level", log_level, "debug, info, warn or error (default info)");
  app.add_option("--shutdown-grace-seconds", grace,
                 "seconds in-flight calls get to finish at shutdown (default 10)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--executor-threads", threads, "threads for blocking work (default 4)")
      ->check(CLI::PositiveNumber);
  app.add_option("--executor-queue", queue,
                 "blocking tasks that may wait before calls are refused (default 1024)")
      ->check(CLI::PositiveNumber);

  app.add_option("--workers", workers, "rule worker processes (default: one per core)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--rule-timeout-seconds", rule_timeout,
                 "time limit of one call into rule code (default 5)")
      ->check(CLI::PositiveNumber);
  app.add_option("--worker-memory-mb", worker_memory,
                 "memory limit of each rule worker process (default 1024)")
      ->check(CLI::PositiveNumber);
  app.add_option("--worker-binary", worker_binary,
                 "the rule worker program (default: pantherd-worker beside pantherd)");

  app.add_option("--max-event-bytes", max_event_bytes,
                 "ingested events larger than this are rejected (default 1048576)")
      ->check(CLI::PositiveNumber);

  app.add_option("--window-clock", window_clock,
                 "clock of dedup windows: event (p_event_time, default) or processing");
  app.add_option("--alert-sample-events", alert_sample_events,
                 "matched events kept on each alert (default 10)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--purge-interval-seconds", purge_interval,
                 "seconds between purges of expired dedup and idempotence state (default 600)")
      ->check(CLI::PositiveNumber);
  app.add_option("--stream-buffer", stream_buffer,
                 "unsent alert changes a StreamAlerts subscriber may hold before it re-reads "
                 "from the store (default 1024)")
      ->check(CLI::PositiveNumber);

  app.add_option("--source-retry-initial-ms", source_retry_initial_ms,
                 "first retry delay of a source poll after a transient failure; doubles with "
                 "jitter (default 1000)")
      ->check(CLI::PositiveNumber);
  app.add_option("--source-retry-max-seconds", source_retry_max,
                 "longest retry delay of a source poll (default 300)")
      ->check(CLI::PositiveNumber);
  app.add_option("--source-error-retry-seconds", source_error_retry,
                 "retry pace of a source in ERROR, e.g. after a 401 (default 300)")
      ->check(CLI::PositiveNumber);
  app.add_option("--source-http-timeout-seconds", source_http_timeout,
                 "time limit of one source HTTP request (default 60)")
      ->check(CLI::PositiveNumber);

  app.add_option("--auth", auth,
                 "tokens (every call needs an API token; default) or none (no tokens, "
                 "loopback or Unix socket only)");
  app.add_option("--tls-cert", tls_cert, "PEM certificate (chain) of the server; enables TLS")
      ->check(CLI::ExistingFile);
  app.add_option("--tls-key", tls_key, "PEM private key of --tls-cert")->check(CLI::ExistingFile);
  app.add_option("--tls-client-ca", tls_client_ca,
                 "PEM CA: require client certificates signed by it")
      ->check(CLI::ExistingFile);
  app.add_flag("--allow-plaintext", allow_plaintext,
               "allow listening without TLS on an address other than loopback (warns)");
  app.add_option("--metrics-listen", metrics_listen,
                 "host:port of a Prometheus GET /metrics endpoint (plain HTTP, no auth; "
                 "e.g. 127.0.0.1:9464; default: none)");

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
  if (listen) config.listen = *listen;
  if (data_dir) config.data_dir = *data_dir;
  if (rules_dir) config.rules_dir = *rules_dir;
  if (log_level) {
    absl::StatusOr<LogLevel> level = ParseLogLevel(*log_level);
    if (!level.ok()) return absl::InvalidArgumentError(absl::StrCat("--log-level: ", level.status().message()));
    config.log_level = *level;
  }
  if (grace) config.shutdown_grace_seconds = *grace;
  if (threads) config.executor_threads = *threads;
  if (queue) config.executor_queue = *queue;
  if (workers) config.workers = *workers;
  if (rule_timeout) config.rule_timeout_seconds = *rule_timeout;
  if (worker_memory) config.worker_memory_mb = *worker_memory;
  if (worker_binary) config.worker_binary = *worker_binary;
  if (max_event_bytes) config.max_event_bytes = *max_event_bytes;
  if (window_clock) config.window_clock = *window_clock;
  if (alert_sample_events) config.alert_sample_events = *alert_sample_events;
  if (purge_interval) config.purge_interval_seconds = *purge_interval;
  if (stream_buffer) config.stream_buffer = *stream_buffer;
  if (source_retry_initial_ms) config.source_retry_initial_ms = *source_retry_initial_ms;
  if (source_retry_max) config.source_retry_max_seconds = *source_retry_max;
  if (source_error_retry) config.source_error_retry_seconds = *source_error_retry;
  if (source_http_timeout) config.source_http_timeout_seconds = *source_http_timeout;
  if (auth) config.auth = *auth;
  if (tls_cert) config.tls_cert = *tls_cert;
  if (tls_key) config.tls_key = *tls_key;
  if (tls_client_ca) config.tls_client_ca = *tls_client_ca;
  if (allow_plaintext) config.allow_plaintext = true;
  if (metrics_listen) config.metrics_listen = *metrics_listen;
  if (config.window_clock != "event" && config.window_clock != "processing") {
    return absl::InvalidArgumentError(absl::StrCat("--window-clock: \"", config.window_clock,
                                                   "\" is not one of event, processing"));
  }
  if (config.stream_buffer < 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "stream_buffer: ", config.stream_buffer, " is not a positive number of changes"));
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
