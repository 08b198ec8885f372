// Event sources pantherd pulls from: today the Okta System Log. The manager
// owns the source records (family "sources", docs/storage.md) and one poller
// thread per source, and answers the source RPCs (server/source_service.cc
// calls it from the Executor, never from a gRPC thread).
//
// A poller follows Okta's polling protocol (server/okta_api.h): the first
// request asks for events since the source's start time, every later one is
// the rel="next" link of the previous answer, forever. Each page goes through
// the ingestion path (the PageIngester: normalisation, rules, alerts) with the
// source's progress record (the next URL and the counters) added to the same
// atomic write, so a crash at any moment neither skips nor repeats a page;
// events are also de-duplicated by uuid.
//
// Faults: transport errors, timeouts, 5xx, malformed pages and failed
// ingestion retry the same URL after an exponential backoff with jitter
// (state stays ACTIVE, last_error says why); 429 waits until
// X-Rate-Limit-Reset + 1 s; when X-Rate-Limit-Remaining falls to the reserve
// the poller waits for the reset before its next request; 401/403 (and
// other 4xx) put the source in ERROR with Okta's errorCode/errorSummary and
// retry every error_retry. A new token (SetPaused with a token), a resume, or
// an answer that succeeds brings it back to ACTIVE.
//
// The API token is stored and sent, never returned (ToApi omits it) and never
// logged.
//
// Thread-safety: every public method may be called from any thread. Control
// calls (Add, SetPaused, Remove) are serialised among themselves; they may
// block briefly (a store write; Remove also waits for the source's poller to
// stop, which cancels its HTTP request at once but lets a page being stored
// finish).
#ifndef PANTHERD_SERVER_SOURCE_MANAGER_H_
#define PANTHERD_SERVER_SOURCE_MANAGER_H_

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "engine/alert_engine.h"
#include "engine/ingest_pipeline.h"
#include "pantherd/internal/source.pb.h"
#include "pantherd/v1/sources.pb.h"
#include "proto/base/clock.h"
#include "proto/base/log.h"
#include "server/http_client.h"
#include "store/store.h"

namespace pantherd::server {

// Stores one page: ingests `request` (the page's events) with `extra` added
// to the batch's atomic write, publishes the alert changes, and returns the
// result. Errors as engine::IngestPipeline::Ingest; on error nothing of the
// page was stored. Called from poller threads, concurrently.
using PageIngester = std::function<absl::StatusOr<engine::IngestResult>(
    const v1::IngestEventsRequest& request, const engine::ExtraWrites& extra)>;

struct SourceManagerOptions {
  // Backoff after a transient failure: initial, doubled each time up to max,
  // each wait drawn uniformly from [d/2, d] (jitter).
  absl::Duration retry_initial = absl::Seconds(1);
  absl::Duration retry_max = absl::Minutes(5);
  // The slow pace of a source in ERROR (401/403/other 4xx).
  absl::Duration error_retry = absl::Minutes(5);
  // Time limit of one HTTP exchange (Okta's own query limit is 30 s).
  absl::Duration http_timeout = absl::Seconds(60);
  // Shortest poll interval a source may ask for.
  absl::Duration min_poll_interval = absl::Seconds(1);
  // When X-Rate-Limit-Remaining is at most max(reserve_min,
  // limit * reserve_fraction), the next request waits for the reset.
  int64_t rate_limit_reserve_min = 2;
  double rate_limit_reserve_fraction = 0.1;
  // Events per page asked for in the first request (Okta's next links keep
  // it). Okta's maximum, 1000, unless a test wants small pages.
  int page_limit = 1000;
  // The clock (start times, lag, rate-limit resets).
  base::Clock now = base::RealClock();
  // Sent as User-Agent.
  std::string user_agent = "pantherd";
  // Time limit of a connection check (Add, Test); at most http_timeout.
  absl::Duration check_timeout = absl::Seconds(15);
  // Where the manager and its pollers log (sources loaded, added, paused,
  // removed; polls failing and recovering; connection checks). Not owned;
  // must outlive the manager; never null.
  base::Logger* logger = base::DefaultLogger();
};

class SourceManager {
 public:
  // Pointers are not owned and must outlive the manager.
  SourceManager(store::Store* store, HttpClient* http, PageIngester ingest,
                SourceManagerOptions options = {});
  // Stops every poller (Shutdown).
  ~SourceManager();

  SourceManager(const SourceManager&) = delete;
  SourceManager& operator=(const SourceManager&) = delete;

  // Loads the stored sources and starts their pollers (paused ones wait).
  // Errors: the store's; DataLoss for a record that does not parse.
  absl::Status Start() ABSL_LOCKS_EXCLUDED(control_mu_, mu_);

  // Stops every poller: in-flight HTTP requests are cancelled, a page being
  // stored finishes, threads are joined. Later control calls fail with
  // Unavailable. Idempotent.
  void Shutdown() ABSL_LOCKS_EXCLUDED(control_mu_, mu_);

  // Adds a source and starts polling it. A domain without a dot ("acme") is
  // taken as "acme.okta.com", said in the response's assumptions. Unless
  // request.skip_connection_check(), the connection is checked first (one
  // authenticated request, see okta::ClassifyCheck; it blocks for up to
  // check_timeout) and a failed check stores nothing. Returns the source as
  // ListSources shows it, the assumptions and the check. Errors:
  // InvalidArgument naming the field (label, okta.domain, okta.api_token,
  // okta.base_url, okta.poll_interval, okta.start_time, config);
  // AlreadyExists for a label in use; FailedPrecondition "okta: <the
  // check's message>; nothing was stored ..." for a failed check;
  // Unavailable after Shutdown; the store's.
  absl::StatusOr<v1::AddSourceResponse> Add(const v1::AddSourceRequest& request)
      ABSL_LOCKS_EXCLUDED(control_mu_, mu_);

  // Checks the connection of the source with this id or label now, as Add
  // does, with its stored token; changes nothing (not even its state).
  // Blocks for up to check_timeout. Returns the source and the check (a
  // failed check is a result, not an error). Errors: NotFound for an unknown
  // source, InvalidArgument for an empty id, Unavailable after Shutdown.
  absl::StatusOr<v1::TestSourceResponse> Test(const std::string& id_or_label)
      ABSL_LOCKS_EXCLUDED(control_mu_, mu_);

  // Every source, ordered by label.
  absl::StatusOr<std::vector<v1::Source>> List() const ABSL_LOCKS_EXCLUDED(mu_);

  // Pauses or resumes the source with this id or label; a non-empty
  // `api_token` replaces its token (InvalidArgument when malformed). Resuming
  // (or a new token) polls at once. NotFound for an unknown source.
  absl::StatusOr<v1::Source> SetPaused(const std::string& id_or_label, bool paused,
                                       const std::string& api_token)
      ABSL_LOCKS_EXCLUDED(control_mu_, mu_);

  // Stops the source's poller and deletes its records (events already
  // ingested and their alerts stay). NotFound for an unknown source.
  absl::Status Remove(const std::string& id_or_label) ABSL_LOCKS_EXCLUDED(control_mu_, mu_);

 private:
  class Poller;

  absl::StatusOr<Poller*> Find(const std::string& id_or_label) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  std::unique_ptr<Poller> MakePoller(internal::StoredSource config,
                                     internal::SourceProgress progress);
  // One connection check of `config` (see Add). Takes no lock.
  v1::SourceCheck Check(const internal::StoredSource& config) const;

  store::Store* const store_;
  HttpClient* const http_;
  const PageIngester ingest_;
  const SourceManagerOptions options_;

  // Serialises Add/SetPaused/Remove/Start/Shutdown.
  absl::Mutex control_mu_ ABSL_ACQUIRED_BEFORE(mu_);
  mutable absl::Mutex mu_;
  std::map<std::string, std::unique_ptr<Poller>> pollers_ ABSL_GUARDED_BY(mu_);  // by id
  bool shut_down_ ABSL_GUARDED_BY(mu_) = false;
  // Set by Shutdown: cancels connection checks in progress.
  std::atomic<bool> checks_cancelled_{false};
};

// Store keys of a source's records in family kSources.
std::string SourceConfigKey(const std::string& id);
std::string SourceProgressKey(const std::string& id);

}  // namespace pantherd::server

#endif  // PANTHERD_SERVER_SOURCE_MANAGER_H_
