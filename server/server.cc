#include "server/server.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <sstream>
#include <thread>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "engine/alert_engine.h"
#include "engine/ingest_pipeline.h"
#include "engine/kv_store.h"
#include "engine/metrics.h"
#include "engine/pool_rule_executor.h"
#include "engine/rule_set_manager.h"
#include "engine/rule_store.h"
#include "engine/worker_pool.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/health_check_service_interface.h"
#include "grpcpp/resource_quota.h"
#include "proto/base/log.h"
#include "proto/base/status_macros.h"
#include "server/audit.h"
#include "server/auth.h"
#include "server/delivery_manager.h"
#include "server/destination_registry.h"
#include "server/executor.h"
#include "server/http_client.h"
#include "server/metrics.h"
#include "server/metrics_http.h"
#include "server/request_limits.h"
#include "server/service_helpers.h"
#include "server/services.h"
#include "server/source_manager.h"
#include "server/test_clock.h"
#include "server/version.h"
#include "store/store.h"

namespace pantherd::server {

// Replays waiting for the replay executor before ReplayRules refuses more.
constexpr int kReplaysQueued = 8;

struct PantherServer::State {
  // pantherd's own figures; counted into from start to shutdown.
  std::unique_ptr<engine::EngineMetrics> metrics = std::make_unique<engine::EngineMetrics>();
  std::unique_ptr<store::Store> store;
  std::unique_ptr<engine::StoreKvBackend> kv;
  std::unique_ptr<engine::WorkerPool> pool;
  std::unique_ptr<engine::PoolRuleExecutor> rule_executor;
  std::unique_ptr<engine::RuleStore> rule_store;
  std::unique_ptr<engine::RuleSetManager> rules;
  std::unique_ptr<engine::AlertEngine> alerts;
  std::unique_ptr<engine::IngestPipeline> ingest;
  std::unique_ptr<Executor> executor;
  std::unique_ptr<Executor> evaluation;
  std::unique_ptr<Executor> replays;
  std::unique_ptr<AlertHub> hub;
  std::unique_ptr<HttpClient> http;
  std::unique_ptr<SourceManager> sources;
  std::unique_ptr<DestinationRegistry> destinations;
  std::unique_ptr<DeliveryManager> deliveries;
  std::unique_ptr<Authenticator> auth;
  std::unique_ptr<AuditLog> audit;
  std::unique_ptr<DelayedRunner> delayed;
  ServiceEnv env;

  // Writes the tokens' last-used times once a minute until stop_flushing.
  absl::Notification stop_flushing;
  std::thread flusher;
  void FlushLoop() {
    while (!stop_flushing.WaitForNotificationWithTimeout(absl::Minutes(1))) {
      absl::Status s = auth->FlushLastUsed();
      if (!s.ok()) {
        base::Log(base::LogLevel::kWarn, "token last-used times not stored",
                  {{"error", std::string(s.message())}});
      }
    }
  }
  void StopFlushing() {
    if (!stop_flushing.HasBeenNotified()) stop_flushing.Notify();
    if (flusher.joinable()) flusher.join();
  }

  // Purges expired dedup and idempotence state every purge_interval until
  // stop_purging is notified.
  absl::Duration purge_interval;
  absl::Notification stop_purging;
  std::thread purger;
  void PurgeLoop() {
    while (!stop_purging.WaitForNotificationWithTimeout(purge_interval)) {
      absl::StatusOr<engine::PurgeStats> purged = alerts->PurgeExpired();
      absl::StatusOr<int64_t> kv_items = kv->PurgeExpired(KvPurgeHorizon());
      if (!purged.ok() || !kv_items.ok()) {
        base::Log(base::LogLevel::kWarn, "purge of expired state failed",
                  {{"error", std::string(!purged.ok() ? purged.status().message()
                                                      : kv_items.status().message())}});
      } else if (purged->processed_ids + purged->windows + purged->log_entries + purged->events +
                     purged->window_index_entries + *kv_items >
                 0) {
        base::Log(base::LogLevel::kInfo, "expired state purged",
                  {{"processed_ids", absl::StrCat(purged->processed_ids)},
                   {"windows", absl::StrCat(purged->windows)},
                   {"alert_log_entries", absl::StrCat(purged->log_entries)},
                   {"events", absl::StrCat(purged->events)},
                   {"event_store_bytes", absl::StrCat(purged->event_store_bytes)},
                   {"window_index_entries", absl::StrCat(purged->window_index_entries)},
                   {"cache_items", absl::StrCat(*kv_items)}});
      }
      // Every run, also when nothing expired: tests wait for it.
      base::Log(base::LogLevel::kDebug, "purge finished", {{"ok", purged.ok() ? "true" : "false"}});
    }
  }
  // The caching helpers' items expired at or before this time (seconds) are
  // purged. They expire on the windows' clock: under processing time, now;
  // under event time, the newest event time committed minus the window
  // retention, so that events arriving that late still see what live
  // traffic saw (docs/rule-contract.md, "State clock").
  engine::AlertClock window_clock = engine::AlertClock::kEventTime;
  absl::Duration late_event_retention = absl::Hours(7 * 24);
  // The processing clock (absl::Now, or --test-clock-file).
  base::Clock clock = base::RealClock();
  int64_t KvPurgeHorizon() const {
    if (window_clock == engine::AlertClock::kProcessingTime) return absl::ToUnixSeconds(clock());
    const int64_t high_water = kv->committed_high_water();
    if (high_water == 0) return 0;  // nothing committed since the start
    return high_water - absl::ToInt64Seconds(late_event_retention);
  }
  void StopPurging() {
    if (!stop_purging.HasBeenNotified()) stop_purging.Notify();
    if (purger.joinable()) purger.join();
  }
  ~State() {
    StopPurging();
    StopFlushing();
  }
  std::unique_ptr<DetectionServiceImpl> detection;
  std::unique_ptr<AdminServiceImpl> admin;
  std::unique_ptr<grpc::Server> grpc_server;
  std::string listen_address;
  int grace_seconds = 10;
  bool stopped = false;
  // SIGKILLs the rule workers' process groups (WorkerPool::KillSwitch);
  // valid for the whole life of State, even after the pool is destroyed.
  std::function<int()> kill_workers;
  // Guards `pool` against AbortWorkers while Shutdown destroys it.
  absl::Mutex pool_mu;
  bool pool_gone ABSL_GUARDED_BY(pool_mu) = false;
  // GET /metrics (--metrics-listen); stopped first at shutdown, since it
  // reads the components above.
  std::unique_ptr<MetricsHttpServer> metrics_http;
};

namespace {

// The worker program: --worker-binary, else pantherd-worker beside pantherd.
absl::StatusOr<std::string> WorkerBinary(const ServerConfig& config) {
  std::error_code ec;
  std::string path = config.worker_binary;
  if (path.empty()) {
    std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe", ec);
    if (ec)
      return absl::InternalError(absl::StrCat("cannot find pantherd's own path: ", ec.message()));
    path = (self.parent_path() / "pantherd-worker").string();
  }
  if (!std::filesystem::is_regular_file(path, ec)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the rule worker program ", path,
        " does not exist (build the pantherd-worker target, or pass --worker-binary)"));
  }
  return path;
}

absl::StatusOr<std::string> ReadPem(const std::string& path, absl::string_view flag) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  if (!in.good() && !in.eof()) {
    return absl::FailedPreconditionError(absl::StrCat(flag, ": cannot read ", path));
  }
  std::string pem = ss.str();
  if (pem.find("-----BEGIN ") == std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat(flag, ": ", path, " is not a PEM file"));
  }
  return pem;
}

// The listening credentials: TLS when configured, else plain text (loopback
// only unless --allow-plaintext; then it warns).
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> ListenCredentials(
    const ServerConfig& config) {
  if (config.tls_cert.empty()) {
    if (!IsLocalListenAddress(config.listen)) {
      base::Log(base::LogLevel::kWarn,
                "serving plain text (no TLS) on a non-loopback address: tokens and data cross the "
                "network unencrypted",
                {{"listen", config.listen}});
    }
    return grpc::InsecureServerCredentials();
  }
  grpc::SslServerCredentialsOptions options;
  absl::StatusOr<std::string> cert = ReadPem(config.tls_cert, "--tls-cert");
  if (!cert.ok()) return cert.status();
  absl::StatusOr<std::string> key = ReadPem(config.tls_key, "--tls-key");
  if (!key.ok()) return key.status();
  options.pem_key_cert_pairs.push_back({*key, *cert});
  if (!config.tls_client_ca.empty()) {
    absl::StatusOr<std::string> ca = ReadPem(config.tls_client_ca, "--tls-client-ca");
    if (!ca.ok()) return ca.status();
    options.pem_root_certs = *ca;
    options.client_certificate_request = GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY;
  }
  return grpc::SslServerCredentials(options);
}

// Writes the first admin's token to `path`, readable by the owner only.
absl::Status WriteAdminToken(const std::string& path, const std::string& secret) {
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot write the admin token to ", path, ": ", strerror(errno)));
  }
  std::string line = secret + "\n";
  bool ok = fchmod(fd, 0600) == 0 &&
            write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size()) &&
            fsync(fd) == 0;
  int saved = errno;
  close(fd);
  if (!ok) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot write the admin token to ", path, ": ", strerror(saved)));
  }
  return absl::OkStatus();
}

// Replaces the port of "host:port" (or "[v6]:port").
std::string WithPort(const std::string& address, int port) {
  size_t colon = address.rfind(':');
  if (colon == std::string::npos) return absl::StrCat(address, ":", port);
  return absl::StrCat(address.substr(0, colon), ":", port);
}

}  // namespace

PantherServer::PantherServer(std::unique_ptr<State> state) : state_(std::move(state)) {}

PantherServer::~PantherServer() {
  absl::Status s = Shutdown();
  if (!s.ok())
    base::Log(base::LogLevel::kError, "shutdown failed", {{"error", std::string(s.message())}});
}

const std::string& PantherServer::listen_address() const { return state_->listen_address; }

absl::StatusOr<std::unique_ptr<PantherServer>> PantherServer::Start(const ServerConfig& config) {
  auto state = std::make_unique<State>();
  state->grace_seconds = config.shutdown_grace_seconds;

  // Step 1: the store. A second pantherd on the same directory stops here.
  std::error_code ec;
  std::filesystem::create_directories(config.data_dir, ec);
  if (ec) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot create data directory ", config.data_dir, ": ", ec.message()));
  }
  // Only pantherd's own user may read the store (rule workers run as another
  // user when pantherd runs as root).
  std::filesystem::permissions(config.data_dir, std::filesystem::perms::owner_all,
                               std::filesystem::perm_options::replace, ec);
  if (ec) {
    return absl::FailedPreconditionError(absl::StrCat(
        "cannot restrict data directory ", config.data_dir, " to its owner: ", ec.message()));
  }
  absl::StatusOr<std::unique_ptr<store::Store>> opened =
      store::Store::Open(config.data_dir, store::StoreOptions());
  if (!opened.ok()) return opened.status();
  state->store = std::move(*opened);
  base::Log(base::LogLevel::kInfo, "store opened", {{"data_dir", config.data_dir}});
  // The scratch stores of replays a crash interrupted (ReplayRules removes
  // its own when it ends).
  for (const auto& entry : std::filesystem::directory_iterator(config.data_dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (!absl::StartsWith(name, "replay-")) continue;
    std::error_code removed;
    std::filesystem::remove_all(entry.path(), removed);
    base::Log(base::LogLevel::kInfo, "removed an unfinished replay's scratch store",
              {{"dir", entry.path().string()}});
  }

  // Users and tokens; on first start, the first admin and its token file.
  absl::StatusOr<std::unique_ptr<Authenticator>> auth = Authenticator::Load(
      state->store.get(), config.auth == "none" ? AuthMode::kNone : AuthMode::kTokens);
  if (!auth.ok()) return auth.status();
  state->auth = std::move(*auth);
  if (state->auth->mode() == AuthMode::kTokens) {
    absl::StatusOr<std::optional<std::string>> first = state->auth->Bootstrap();
    if (!first.ok()) return first.status();
    if (first->has_value()) {
      const std::string path = (std::filesystem::path(config.data_dir) / "admin.token").string();
      absl::Status written = WriteAdminToken(path, **first);
      if (!written.ok()) return written;
      base::Log(base::LogLevel::kInfo,
                "first start: created user admin; its API token is in the token file (owner-only); "
                "use it with: pantherctl login --token-file <file>",
                {{"token_file", path}});
    }
  } else {
    base::Log(base::LogLevel::kWarn,
              "authentication is off (--auth=none): every local caller is an admin",
              {{"listen", config.listen}});
  }
  state->audit = std::make_unique<AuditLog>(state->store.get());
  state->delayed = std::make_unique<DelayedRunner>();

  // The processing clock: the system clock, or for tests the file of
  // --test-clock-file. Every time-dependent decision about alert state goes
  // through it: processing-time windows, alert and alert-log times,
  // processed-id and caching-item expiry, the purge, parse times and triage.
  base::Clock clock = base::RealClock();
  if (!config.test_clock_file.empty()) {
    absl::StatusOr<base::Clock> file_clock = FileClock(config.test_clock_file);
    if (!file_clock.ok()) return file_clock.status();
    clock = *std::move(file_clock);
    base::Log(base::LogLevel::kWarn, "processing clock read from a file: for tests only",
              {{"test_clock_file", config.test_clock_file},
               {"now", absl::FormatTime(absl::RFC3339_full, clock(), absl::UTCTimeZone())}});
  }
  state->env.now = clock;
  state->clock = clock;

  // Step 2: the rule workers, loaded with the stored rules, then the bundled
  // pack (items a user replaced are left alone).
  absl::StatusOr<std::string> worker_binary = WorkerBinary(config);
  if (!worker_binary.ok()) return worker_binary.status();
  state->kv = std::make_unique<engine::StoreKvBackend>(state->store.get(), clock);
  engine::WorkerPoolOptions pool_options;
  pool_options.worker_binary = *worker_binary;
  pool_options.workers = config.workers;
  pool_options.limits.memory_bytes = int64_t{config.worker_memory_mb} << 20;
  pool_options.limits.call_time_limit = absl::Seconds(config.rule_timeout_seconds);
  pool_options.kv = state->kv.get();
  absl::StatusOr<std::unique_ptr<engine::WorkerPool>> pool =
      engine::WorkerPool::Create(std::move(pool_options));
  if (!pool.ok()) return pool.status();
  state->pool = std::move(*pool);
  state->kill_workers = state->pool->KillSwitch();
  state->rule_executor = std::make_unique<engine::PoolRuleExecutor>(state->pool.get());
  state->rule_store = std::make_unique<engine::RuleStore>(state->store.get());
  state->rules =
      std::make_unique<engine::RuleSetManager>(state->rule_store.get(), state->rule_executor.get());
  absl::Status loaded = state->rules->LoadStored();
  if (!loaded.ok()) return loaded;
  if (!config.rules_dir.empty()) {
    v1::UploadRuleResponse bundled;
    absl::Status installed = state->rules->InstallBundled(config.rules_dir, &bundled);
    if (!installed.ok()) {
      return absl::Status(installed.code(), absl::StrCat("bundled rules in ", config.rules_dir,
                                                         " were refused: ", installed.message()));
    }
    base::Log(base::LogLevel::kInfo, "bundled rules installed",
              {{"rules_dir", config.rules_dir},
               {"stored", absl::StrCat(bundled.stored_size())},
               {"unchanged", absl::StrCat(bundled.unchanged_ids_size())},
               {"tests_passed", absl::StrCat(bundled.report().tests_passed())}});
  }
  base::Log(base::LogLevel::kInfo, "rule workers ready",
            {{"workers", absl::StrCat(state->pool->workers())}, {"worker_binary", *worker_binary}});

  // Step 3: live detection.
  engine::AlertEngineOptions alert_options;
  alert_options.clock = config.window_clock == "processing" ? engine::AlertClock::kProcessingTime
                                                            : engine::AlertClock::kEventTime;
  alert_options.max_sample_events = config.alert_sample_events;
  alert_options.now = clock;
  alert_options.processed_retention = absl::Seconds(config.processed_retention_seconds);
  alert_options.window_retention = absl::Seconds(config.window_retention_seconds);
  alert_options.alert_log_retention = absl::Seconds(config.alert_log_retention_seconds);
  PANTHERD_ASSIGN_OR_RETURN(alert_options.event_retention,
                            ParseRetention("--event-retention", config.event_retention));
  state->alerts = std::make_unique<engine::AlertEngine>(state->store.get(), alert_options);
  state->window_clock = alert_options.clock;
  state->late_event_retention = alert_options.window_retention;
  state->purge_interval = absl::Seconds(config.purge_interval_seconds);
  state->purger = std::thread([s = state.get()] { s->PurgeLoop(); });
  engine::IngestOptions ingest_options;
  ingest_options.max_event_bytes = static_cast<size_t>(config.max_event_bytes);
  ingest_options.metrics = state->metrics.get();
  ingest_options.kv = state->kv.get();
  ingest_options.clock = alert_options.clock;
  ingest_options.on_quarantine = [audit = state->audit.get()](
                                     const std::string& rule_id,
                                     const v1::RuleQuarantine& quarantine) {
    base::Log(base::LogLevel::kError, "rule quarantined: events kept ending its worker",
              {{"rule_id", rule_id},
               {"reason", quarantine.reason()},
               {"re_enable", absl::StrCat("pantherctl rules enable ", rule_id)}});
    v1::AuditEvent event;
    *event.mutable_time() = quarantine.time();
    event.set_actor_user("pantherd");
    event.set_action(std::string(kQuarantineAuditAction));
    event.set_target(rule_id);
    event.set_result("OK");
    event.set_detail(quarantine.reason());
    audit->Record(std::move(event));
  };
  ingest_options.now = clock;
  state->ingest = std::make_unique<engine::IngestPipeline>(state->pool.get(), state->alerts.get(),
                                                           state->rule_store.get(), ingest_options);

  // Step 4: serve.
  state->executor = std::make_unique<Executor>(config.executor_threads, config.executor_queue);
  state->evaluation =
      std::make_unique<Executor>(config.evaluation_threads, config.evaluation_queue);
  // One replay at a time, up to kReplaysQueued more waiting.
  state->replays = std::make_unique<Executor>(1, kReplaysQueued);
  AlertHubOptions hub_options;
  hub_options.buffer_capacity = static_cast<size_t>(config.stream_buffer);
  state->hub = std::make_unique<AlertHub>(state->alerts.get(), state->executor.get(), hub_options);
  state->alerts->SetPublisher(state->hub.get());
  state->env.store = state->store.get();
  state->env.executor = state->executor.get();
  state->env.evaluation = state->evaluation.get();
  state->env.replays = state->replays.get();
  state->env.rule_store = state->rule_store.get();
  state->env.rules = state->rules.get();
  state->env.alerts = state->alerts.get();
  state->env.ingest = state->ingest.get();
  state->env.hub = state->hub.get();
  state->env.auth = state->auth.get();
  state->env.audit = state->audit.get();
  state->env.delayed = state->delayed.get();
  state->env.metrics = state->metrics.get();
  state->env.pool = state->pool.get();
  state->auth->set_on_revocation([hub = state->hub.get()] { hub->RecheckStreams(); });
  state->flusher = std::thread([s = state.get()] { s->FlushLoop(); });
  state->env.start_time = absl::Now();
  state->env.data_dir = config.data_dir;
  // The source pollers, once ingestion and the hub they publish to are ready.
  SourceManagerOptions source_options;
  source_options.retry_initial = absl::Milliseconds(config.source_retry_initial_ms);
  source_options.retry_max = absl::Seconds(config.source_retry_max_seconds);
  source_options.error_retry = absl::Seconds(config.source_error_retry_seconds);
  source_options.http_timeout = absl::Seconds(config.source_http_timeout_seconds);
  source_options.user_agent = absl::StrCat("pantherd/", kVersion);
  state->http = NewCurlHttpClient();
  // Alert delivery: destinations and the durable outbox's sender.
  if (!config.external_url.empty()) {
    PANTHERD_RETURN_IF_ERROR(CheckHttpUrl("--external-url", config.external_url, false));
  }
  state->destinations = std::make_unique<DestinationRegistry>(state->store.get(), clock);
  PANTHERD_RETURN_IF_ERROR(state->destinations->Load());
  state->rules->set_destination_lookup(
      [registry = state->destinations.get()](absl::string_view name) {
        return registry->Find(name).ok();
      });
  DeliveryOptions delivery_options;
  delivery_options.max_attempts = config.delivery_attempts;
  delivery_options.retry_base = absl::Milliseconds(config.delivery_retry_base_ms);
  delivery_options.retry_max = absl::Seconds(config.delivery_retry_max_seconds);
  delivery_options.request_timeout = absl::Seconds(config.delivery_timeout_seconds);
  delivery_options.external_url = config.external_url;
  delivery_options.now = clock;
  state->deliveries = std::make_unique<DeliveryManager>(
      state->store.get(), state->destinations.get(), state->http.get(), delivery_options);
  state->env.deliveries = state->deliveries.get();
  state->sources = std::make_unique<SourceManager>(
      state->store.get(), state->http.get(),
      [env = &state->env](const v1::IngestEventsRequest& request,
                          const engine::ExtraWrites& extra) {
        return IngestAndPublish(*env, request, extra);
      },
      source_options);
  state->env.sources = state->sources.get();
  absl::Status sources_started = state->env.CheckWired();
  if (sources_started.ok()) sources_started = state->sources->Start();
  if (sources_started.ok()) sources_started = state->deliveries->Start();
  if (!sources_started.ok()) {
    state->deliveries->Stop();
    state->sources->Shutdown();
    state->hub->Shutdown();
    state->executor->Shutdown();
    state->evaluation->Shutdown();
    state->replays->Shutdown();
    return sources_started;
  }
  if (!config.metrics_listen.empty()) {
    absl::StatusOr<std::unique_ptr<MetricsHttpServer>> http =
        MetricsHttpServer::Start(config.metrics_listen, [env = &state->env] {
          v1::GetServerStatusResponse status;
          CollectLiveStatus(LiveMetricsInputs(*env), &status);
          return RenderPrometheus(status);
        });
    if (!http.ok()) {
      state->deliveries->Stop();
      state->sources->Shutdown();
      state->hub->Shutdown();
      state->executor->Shutdown();
      state->evaluation->Shutdown();
      state->replays->Shutdown();
      return http.status();
    }
    state->metrics_http = std::move(*http);
    if (!IsLocalListenAddress(state->metrics_http->address())) {
      base::Log(base::LogLevel::kWarn,
                "the metrics endpoint listens on a non-loopback address without authentication: it "
                "names every rule id and source label",
                {{"listen", state->metrics_http->address()}});
    }
    base::Log(base::LogLevel::kInfo, "metrics", {{"listen", state->metrics_http->address()}});
  }
  state->detection = std::make_unique<DetectionServiceImpl>(&state->env);
  state->admin = std::make_unique<AdminServiceImpl>(&state->env);

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  // gRPC sets SO_REUSEPORT by default, which would let a second server share
  // the port silently; an address in use must be an error.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  // A whole rule folder travels in one UploadRule/RunTests call; every other
  // method's handler refuses more than kMaxSmallRequestBytes
  // (server/request_limits.h).
  builder.SetMaxReceiveMessageSize(static_cast<int>(kMaxUploadMessageBytes));
  // Bounds the memory gRPC holds for connections and messages being received,
  // whoever sends them (tokens are checked only once a message is whole).
  grpc::ResourceQuota quota("pantherd-grpc");
  quota.Resize(static_cast<size_t>(config.grpc_memory_quota_mib) << 20);
  builder.SetResourceQuota(quota);
  int port = 0;
  absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> credentials = ListenCredentials(config);
  if (!credentials.ok()) return credentials.status();
  builder.AddListeningPort(config.listen, *credentials, &port);
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> interceptors;
  interceptors.push_back(NewAuditInterceptorFactory(state->audit.get(), state->auth.get()));
  builder.experimental().SetInterceptorCreators(std::move(interceptors));
  builder.RegisterService(state->detection.get());
  builder.RegisterService(state->admin.get());
  state->grpc_server = builder.BuildAndStart();
  if (state->grpc_server == nullptr || port == 0) {
    state->metrics_http.reset();
    state->deliveries->Stop();
    state->sources->Shutdown();
    state->hub->Shutdown();
    state->executor->Shutdown();
    state->evaluation->Shutdown();
    state->replays->Shutdown();
    state->StopFlushing();
    state->delayed->Stop();
    state->audit->Stop();
    state->alerts->SetPublisher(nullptr);
    state->hub.reset();
    state->rules.reset();
    state->rule_executor.reset();
    state->pool.reset();
    absl::Status closed = state->store->Close();
    (void)closed;  // The listen error is the one to report.
    return absl::UnavailableError(absl::StrCat("cannot listen on ", config.listen,
                                               " (address in use, or not a valid host:port)"));
  }
  state->listen_address = WithPort(config.listen, port);
  state->env.set_listen_address(state->listen_address);
  state->grpc_server->GetHealthCheckService()->SetServingStatus(true);
  base::Log(base::LogLevel::kInfo, "serving",
            {{"listen", state->listen_address},
             {"version", std::string(kVersion)},
             {"tls", config.tls_cert.empty()        ? "off"
                     : config.tls_client_ca.empty() ? "on"
                                                    : "on, client certificates required"},
             {"auth", config.auth}});
  return std::unique_ptr<PantherServer>(new PantherServer(std::move(state)));
}

int PantherServer::AbortWorkers() {
  if (state_ == nullptr) return 0;
  {
    absl::MutexLock lock(&state_->pool_mu);
    if (!state_->pool_gone && state_->pool != nullptr) state_->pool->Stop();
  }
  return state_->kill_workers ? state_->kill_workers() : 0;
}

absl::Status PantherServer::Shutdown() {
  if (state_ == nullptr || state_->stopped) return absl::OkStatus();
  state_->stopped = true;
  // In-flight calls get the grace from now, whatever the steps before the
  // gRPC shutdown take.
  const auto grpc_deadline =
      std::chrono::system_clock::now() + std::chrono::seconds(state_->grace_seconds);
  base::Log(base::LogLevel::kInfo, "shutting down",
            {{"grace_seconds", absl::StrCat(state_->grace_seconds)}});
  state_->grpc_server->GetHealthCheckService()->SetServingStatus(false);
  if (state_->metrics_http != nullptr) {
    state_->metrics_http->Stop();  // It reads the components stopped below.
    base::Log(base::LogLevel::kInfo, "metrics endpoint counters",
              {{"answered", absl::StrCat(state_->metrics_http->answered())},
               {"refused_or_abandoned", absl::StrCat(state_->metrics_http->failed())},
               {"evicted", absl::StrCat(state_->metrics_http->evicted())}});
    state_->metrics_http.reset();
  }
  // Pollers first: their HTTP requests are cancelled, a page being stored
  // finishes (and is published) before the hub closes.
  state_->sources->Shutdown();
  state_->hub->Shutdown();  // Ends alert streams, naming where to resume.
  state_->grpc_server->Shutdown(grpc_deadline);
  state_->grpc_server->Wait();
  state_->delayed->Stop();
  state_->executor->Shutdown();
  state_->evaluation->Shutdown();
  state_->replays->Shutdown();
  // After the calls that use it ended; a request in flight is cancelled and
  // its delivery stays pending in the store for the next start.
  state_->deliveries->Stop();
  state_->env.sources = nullptr;
  state_->sources.reset();
  state_->StopPurging();
  state_->StopFlushing();
  state_->audit->Stop();
  base::Log(base::LogLevel::kInfo, "auth and audit counters",
            {{"failed_auth_delayed", absl::StrCat(state_->auth->throttle().delayed())},
             {"failed_auth_peers_untracked", absl::StrCat(state_->auth->throttle().untracked())},
             {"delayed_answers_not_delayed", absl::StrCat(state_->delayed->overflowed())},
             {"audit_events_dropped", absl::StrCat(state_->audit->dropped())},
             {"audit_events_not_stored", absl::StrCat(state_->audit->write_failures())}});
  absl::Status flushed = state_->auth->FlushLastUsed();
  if (!flushed.ok()) {
    base::Log(base::LogLevel::kWarn, "token last-used times not stored",
              {{"error", std::string(flushed.message())}});
  }
  state_->alerts->SetPublisher(nullptr);
  state_->hub.reset();
  state_->ingest.reset();
  state_->rules.reset();
  state_->rule_executor.reset();
  {
    absl::MutexLock lock(&state_->pool_mu);
    state_->pool_gone = true;
  }
  state_->pool.reset();  // Ends the rule workers.
  absl::Status closed = state_->store->Close();
  if (closed.ok())
    base::Log(base::LogLevel::kInfo, "store closed", {{"data_dir", state_->env.data_dir}});
  return closed;
}

namespace {

int g_signal_pipe[2] = {-1, -1};

// How long the shutdown may go on after the rule workers were killed.
constexpr absl::Duration kForcedExitDelay = absl::Seconds(3);

void OnShutdownSignal(int signal) {
  unsigned char byte = static_cast<unsigned char>(signal);
  ssize_t written = write(g_signal_pipe[1], &byte, 1);
  (void)written;  // Nothing more can be done inside a signal handler.
}

}  // namespace

int ServerMain(int argc, char** argv) {
  absl::StatusOr<ServerConfig> config = ParseServerFlags(argc, argv, std::cout, std::cerr);
  if (!config.ok()) {
    if (absl::IsCancelled(config.status())) return 0;  // --help / --version
    base::Log(base::LogLevel::kError, "invalid configuration",
              {{"error", std::string(config.status().message())}});
    return absl::IsInvalidArgument(config.status()) ? 2 : 1;
  }
  base::SetLogLevel(config->log_level);

  // SIGINT/SIGTERM are turned into a byte on a pipe by an async-signal-safe
  // handler, whichever thread receives them; the main thread waits on it.
  if (pipe(g_signal_pipe) != 0) {
    base::Log(base::LogLevel::kError, "cannot create the signal pipe",
              {{"error", strerror(errno)}});
    return 1;
  }
  struct sigaction action = {};
  action.sa_handler = OnShutdownSignal;
  sigemptyset(&action.sa_mask);
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);

  absl::StatusOr<std::unique_ptr<PantherServer>> server = PantherServer::Start(*config);
  if (!server.ok()) {
    base::Log(base::LogLevel::kError, "pantherd could not start",
              {{"error", std::string(server.status().message())}});
    return 1;
  }
  unsigned char received = 0;
  while (read(g_signal_pipe[0], &received, 1) < 0 && errno == EINTR) {
  }
  base::Log(base::LogLevel::kInfo, "signal received",
            {{"signal", received == SIGINT ? "SIGINT" : "SIGTERM"}});
  // The shutdown watchdog: a second signal, or the grace running out, kills
  // the rule workers (whatever they are doing: looping, stopped with
  // SIGSTOP, in the middle of a batch), which ends the calls waiting for
  // them; if the shutdown still has not finished kForcedExitDelay later,
  // pantherd exits without closing the store (RocksDB's write-ahead log
  // keeps every acknowledged batch).
  const absl::Time kill_at = absl::Now() + absl::Seconds(config->shutdown_grace_seconds);
  absl::Notification shut_down;
  std::thread watchdog([&] {
    bool second_signal = false;
    while (!shut_down.HasBeenNotified() && !second_signal) {
      const absl::Duration left = kill_at - absl::Now();
      if (left <= absl::ZeroDuration()) break;
      pollfd p{g_signal_pipe[0], POLLIN, 0};
      const int wait_ms =
          static_cast<int>(std::min<int64_t>(100, absl::ToInt64Milliseconds(left) + 1));
      unsigned char again = 0;
      if (poll(&p, 1, wait_ms) > 0 && read(g_signal_pipe[0], &again, 1) == 1) {
        second_signal = true;
      }
    }
    if (shut_down.HasBeenNotified()) return;
    const int killed = (*server)->AbortWorkers();
    base::Log(base::LogLevel::kWarn,
              second_signal ? "second signal: rule workers killed, exiting"
                            : "shutdown grace ran out: rule workers killed",
              {{"worker_processes_killed", absl::StrCat(killed)}});
    if (shut_down.WaitForNotificationWithTimeout(kForcedExitDelay)) return;
    base::Log(base::LogLevel::kError, "shutdown did not finish; exiting without closing the store",
              {{"waited_seconds", absl::StrCat(absl::ToInt64Seconds(kForcedExitDelay))}});
    std::fflush(stderr);
    _exit(1);
  });
  absl::Status closed = (*server)->Shutdown();
  shut_down.Notify();
  watchdog.join();
  if (!closed.ok()) {
    base::Log(base::LogLevel::kError, "shutdown failed",
              {{"error", std::string(closed.message())}});
    return 1;
  }
  base::Log(base::LogLevel::kInfo, "stopped");
  return 0;
}

}  // namespace pantherd::server
