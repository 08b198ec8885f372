// pantherd's configuration: defaults, an optional YAML file, then flags.
//
// Precedence, lowest first: built-in defaults, the YAML file named by
// --config, command-line flags. The YAML file uses the flag names with '_'
// for '-' (e.g. `data_dir: /var/lib/pantherd`); an unknown key is an error
// that names the file and line, so a typo never silently falls back to a
// default.
//
//   absl::StatusOr<ServerConfig> c = ParseServerFlags(argc, argv, &out, &err);
#ifndef PANTHERD_SERVER_CONFIG_H_
#define PANTHERD_SERVER_CONFIG_H_

#include <ostream>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "proto/base/log.h"

namespace pantherd::server {

struct ServerConfig {
  // host:port to serve gRPC on; port 0 picks a free port (logged at start).
  std::string listen = "127.0.0.1:50051";
  // The RocksDB store. Empty means the default (see DefaultDataDir).
  std::string data_dir;
  base::LogLevel log_level = base::LogLevel::kInfo;
  // A folder of rule content (panther-analysis layout) loaded at start; empty
  // for none.
  std::string rules_dir;
  // Seconds that in-flight calls get to finish at shutdown.
  int shutdown_grace_seconds = 10;
  // Threads that run blocking work (disk, Python) off the gRPC threads, and
  // how many tasks may wait for them before calls get RESOURCE_EXHAUSTED.
  int executor_threads = 4;
  int executor_queue = 1024;
  // Threads that run rule code's requests (ingested batches waiting for and
  // running in a worker, uploads' and RunTests' test runs) and how many may
  // wait: a pool of their own, so that reads, triage and admin calls never
  // queue behind evaluation.
  int evaluation_threads = 4;
  int evaluation_queue = 256;
  // Rule worker processes for live evaluation; 0 means one per core.
  int workers = 0;
  // Time limit of one call into rule code, and memory limit of a worker.
  int rule_timeout_seconds = 5;
  int worker_memory_mb = 1024;
  // The worker program; empty means `pantherd-worker` beside pantherd.
  std::string worker_binary;
  // Ingested events larger than this are rejected.
  int64_t max_event_bytes = 1 << 20;
  // The gRPC server's resource quota in MiB: memory gRPC may use for
  // connections and messages being received, beyond which it shrinks its
  // windows and closes connections (grpc::ResourceQuota). At least one
  // largest upload (64 MiB) must fit.
  int grpc_memory_quota_mib = 256;
  // The clock dedup windows run on: "event" (p_event_time, the default) or
  // "processing" (the server's clock when the batch is stored, as Panther).
  std::string window_clock = "event";
  // Matched events kept on each alert.
  int alert_sample_events = 10;
  // Seconds between purges of expired processed-event ids, windows and
  // alert-log entries.
  int purge_interval_seconds = 600;
  // How long a processed event id makes re-sends duplicates, how long an
  // untouched dedup window is kept (at least its period), and how long
  // alert-log entries are kept for stream resume, in seconds.
  int64_t processed_retention_seconds = 7 * 86400;
  int64_t window_retention_seconds = 7 * 86400;
  int64_t alert_log_retention_seconds = 30 * 86400;
  // Unsent alert changes one StreamAlerts subscriber may hold before it falls
  // back to re-reading the alert log from the store.
  int stream_buffer = 1024;
  // Source pollers: the first retry delay after a transient failure
  // (doubling, with jitter, up to the max), the slow retry pace of a source
  // in ERROR, and the time limit of one HTTP request.
  int source_retry_initial_ms = 1000;
  int source_retry_max_seconds = 300;
  int source_error_retry_seconds = 300;
  int source_http_timeout_seconds = 60;
  // Alert delivery (docs/destinations.md): the base URL of alert links in
  // payloads (empty: no link); attempts per delivery before it fails; the
  // first retry delay (tripling with jitter up to the max); the time limit of
  // one request to a receiver.
  std::string external_url;
  // How long ingested events are kept in the event store for search, alert
  // events and replay ("30d", "12h", "90m", "3600s"; "0" keeps nothing).
  std::string event_retention = "30d";
  int delivery_attempts = 10;
  int delivery_retry_base_ms = 30000;
  int delivery_retry_max_seconds = 6 * 3600;
  int delivery_timeout_seconds = 10;
  // "tokens" (every call needs an API token; the default) or "none" (no
  // tokens, every caller is the local admin; only on loopback or a Unix
  // socket).
  std::string auth = "tokens";
  // PEM files of the server's TLS certificate (chain) and key; both or
  // neither. With tls_client_ca, clients must present a certificate signed by
  // that CA.
  std::string tls_cert;
  std::string tls_key;
  std::string tls_client_ca;
  // Without TLS pantherd listens only on loopback or a Unix socket, unless
  // this is set (then it warns).
  bool allow_plaintext = false;
  // host:port of the Prometheus text endpoint (GET /metrics, plain HTTP, no
  // authentication: it names rule ids and source labels); empty (the
  // default) serves none. Port 0 picks a free port (logged at start).
  std::string metrics_listen;
  // FOR TESTS ONLY: a file holding pantherd's processing clock (Unix seconds
  // or RFC 3339; server/test_clock.h), re-read at every use. Empty (the
  // default): the system clock. It drives the alert engine (processing-time
  // windows, created/updated times, processed-id expiry, purges), the
  // caching helpers' expiry in pantherd, ingestion's parse time and triage
  // times.
  std::string test_clock_file;
};

// True for a Unix socket or a loopback host (127.0.0.0/8, ::1, localhost).
bool IsLocalListenAddress(absl::string_view address);

// Parses a retention such as "30d", "12h", "90m", "3600s" or "0" (a
// non-negative integer with a unit; a bare "0"). InvalidArgument naming
// `flag` otherwise.
absl::StatusOr<absl::Duration> ParseRetention(absl::string_view flag, absl::string_view value);

// Checks the combination of listen address, auth mode and TLS options.
// InvalidArgument naming the option otherwise.
absl::Status ValidateSecurity(const ServerConfig& config);

// The data directory used when none is configured: $XDG_DATA_HOME/pantherd
// when XDG_DATA_HOME is set and non-empty, else ".pantherd" under the working
// directory.
std::string DefaultDataDir();

// Applies the YAML file at `path` onto `config`. Errors: NotFound when the file
// is missing; InvalidArgument naming the file, line and key for bad YAML, an
// unknown key or a value of the wrong type.
absl::Status LoadConfigFile(const std::string& path, ServerConfig* config);

// Checks that `address` is host:port (or [ipv6]:port, or unix:PATH) with a
// port from 0 to 65535. Returns InvalidArgument naming the address otherwise.
absl::Status ValidateListenAddress(absl::string_view address);

// Parses pantherd's command line (argv[0] is the program). --help and
// --version print to `out` and return a Cancelled status with an empty
// message (the caller exits 0); a usage error is InvalidArgument whose message
// is the one-line error, with the usage on `err`. A config file error is
// returned as from LoadConfigFile.
absl::StatusOr<ServerConfig> ParseServerFlags(int argc, const char* const* argv, std::ostream& out,
                                              std::ostream& err);

}  // namespace pantherd::server

#endif  // PANTHERD_SERVER_CONFIG_H_
