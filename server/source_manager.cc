#include "server/source_manager.h"

#include <algorithm>
#include <random>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/util/time_util.h"
#include "proto/base/log.h"
#include "proto/base/status_macros.h"
#include "server/okta_api.h"
#include "store/keys.h"

namespace pantherd::server {
namespace {

using google::protobuf::util::TimeUtil;
using store::Family;

constexpr char kConfigPrefix[] = "config";
constexpr char kProgressPrefix[] = "progress";
constexpr size_t kMaxLabelBytes = 64;
constexpr size_t kMaxTokenBytes = 1024;
const absl::Duration kDefaultPollInterval = absl::Seconds(60);
const absl::Duration kDefaultLookback = absl::Hours(1);
const absl::Duration kMaxLookback = absl::Hours(180 * 24);

google::protobuf::Timestamp Ts(absl::Time t) {
  return TimeUtil::MicrosecondsToTimestamp(absl::ToUnixMicros(t));
}
absl::Time FromTs(const google::protobuf::Timestamp& ts) {
  return absl::FromUnixMicros(TimeUtil::TimestampToMicroseconds(ts));
}
absl::Duration FromDuration(const google::protobuf::Duration& d) {
  return absl::Microseconds(TimeUtil::DurationToMicroseconds(d));
}
google::protobuf::Duration ToDuration(absl::Duration d) {
  return TimeUtil::MicrosecondsToDuration(absl::ToInt64Microseconds(d));
}

absl::Status Invalid(absl::string_view field, absl::string_view problem) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", problem));
}

absl::Status ValidateLabel(const std::string& label) {
  if (label.empty()) return Invalid("label", "is required (e.g. prod)");
  if (label.size() > kMaxLabelBytes) {
    return Invalid("label", absl::StrCat("is longer than ", kMaxLabelBytes, " characters"));
  }
  for (char c : label) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.') {
      return Invalid(
          "label",
          absl::StrCat("\"", label, "\" may contain only letters, digits, '-', '_' and '.'"));
    }
  }
  return absl::OkStatus();
}

// The token is sent in a header: no spaces or control characters (which
// would also allow header injection). The message never quotes it.
absl::Status ValidateToken(const std::string& token, absl::string_view field) {
  if (token.empty()) return Invalid(field, "is required (an Okta API token)");
  if (token.size() > kMaxTokenBytes) {
    return Invalid(field, absl::StrCat("is longer than ", kMaxTokenBytes, " characters"));
  }
  for (char c : token) {
    if (static_cast<unsigned char>(c) <= ' ' || static_cast<unsigned char>(c) >= 0x7f) {
      return Invalid(field, "contains spaces, line breaks or non-ASCII characters");
    }
  }
  return absl::OkStatus();
}

std::string NewSourceId() {
  std::random_device random;
  return absl::StrCat("src_", absl::Hex(static_cast<uint32_t>(random()), absl::kZeroPad8),
                      absl::Hex(static_cast<uint32_t>(random()), absl::kZeroPad8));
}

std::string BaseUrl(const internal::StoredSource& config) {
  return config.okta().base_url().empty() ? absl::StrCat("https://", config.okta().domain())
                                          : config.okta().base_url();
}

}  // namespace

std::string SourceConfigKey(const std::string& id) { return store::Join(kConfigPrefix, id); }
std::string SourceProgressKey(const std::string& id) { return store::Join(kProgressPrefix, id); }

// ---- Poller ------------------------------------------------------------------

class SourceManager::Poller {
 public:
  Poller(SourceManager* manager, internal::StoredSource config, internal::SourceProgress progress)
      : manager_(manager),
        options_(manager->options_),
        id_(config.id()),
        config_(std::move(config)),
        progress_(std::move(progress)),
        random_(std::random_device()()) {}

  ~Poller() { Stop(); }

  void Start() {
    thread_ = std::thread([this] { Run(); });
  }

  // Cancels the in-flight request, wakes the thread and joins it.
  void Stop() ABSL_LOCKS_EXCLUDED(mu_) {
    {
      absl::MutexLock lock(&mu_);
      stopping_ = true;
    }
    cancel_.store(true);
    if (thread_.joinable()) thread_.join();
  }

  const std::string& id() const { return id_; }

  internal::StoredSource config() const ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    return config_;
  }

  // Adopts a new configuration (pause, resume, token) and polls at once when
  // the source is not paused.
  void Update(internal::StoredSource config) ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    const bool resumed = config_.paused() && !config.paused();
    const bool new_token = config_.okta().api_token() != config.okta().api_token();
    config_ = std::move(config);
    if (resumed || new_token) state_ = v1::SOURCE_STATE_ACTIVE;
    wake_ = true;
  }

  v1::Source View(absl::Time now) const ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    v1::Source s;
    s.set_id(config_.id());
    s.set_label(config_.label());
    s.set_kind(config_.kind());
    s.set_state(config_.paused() ? v1::SOURCE_STATE_PAUSED : state_);
    s.set_domain(config_.okta().domain());
    s.set_base_url(BaseUrl(config_));
    *s.mutable_poll_interval() = config_.okta().poll_interval();
    *s.mutable_created_time() = config_.created_time();
    if (last_poll_ != absl::InfinitePast()) {
      *s.mutable_last_poll_time() = Ts(last_poll_);
    } else if (progress_.has_last_poll_time()) {
      *s.mutable_last_poll_time() = progress_.last_poll_time();
    }
    if (progress_.has_last_success_time()) {
      *s.mutable_last_success_time() = progress_.last_success_time();
    }
    s.set_last_error(last_error_);
    s.set_events_ingested(progress_.events_ingested());
    s.set_events_duplicate(progress_.events_duplicate());
    s.set_events_rejected(progress_.events_rejected());
    s.set_polls(polls_);
    s.set_poll_failures(poll_failures_);
    // Caught up: behind by the time since the last answer that proved it;
    // otherwise by the age of the newest event stored.
    if (progress_.has_last_success_time()) {
      const absl::Time since = progress_.caught_up() || !progress_.has_newest_event_time()
                                   ? FromTs(progress_.last_success_time())
                                   : FromTs(progress_.newest_event_time());
      *s.mutable_lag() = ToDuration(std::max(absl::ZeroDuration(), now - since));
    }
    return s;
  }

 private:
  void Run() {
    absl::Duration backoff = options_.retry_initial;
    while (true) {
      internal::StoredSource config;
      internal::SourceProgress progress;
      {
        absl::MutexLock lock(&mu_);
        mu_.Await(absl::Condition(
            +[](Poller* p) ABSL_EXCLUSIVE_LOCKS_REQUIRED(p->mu_) {
              return p->stopping_ || !p->config_.paused();
            },
            this));
        if (stopping_) return;
        wake_ = false;
        config = config_;
        progress = progress_;
      }
      const std::string base = BaseUrl(config);
      const std::string url =
          progress.next_url().empty()
              ? okta::FirstPollUrl(base, FromTs(config.okta().start_time()), options_.page_limit)
              : progress.next_url();
      HttpRequest request;
      request.url = url;
      request.timeout = options_.http_timeout;
      request.headers = {{"Accept", "application/json"},
                         {"Content-Type", "application/json"},
                         {"User-Agent", options_.user_agent},
                         {"Authorization", absl::StrCat("SSWS ", config.okta().api_token())}};
      absl::StatusOr<HttpResponse> response = manager_->http_->Get(request, &cancel_);
      const absl::Time now = options_.now();
      {
        absl::MutexLock lock(&mu_);
        if (stopping_) return;
        last_poll_ = now;
        ++polls_;
      }
      absl::Duration delay;
      if (!response.ok()) {
        delay = Transient(absl::StrCat("GET failed: ", response.status().message()), &backoff);
      } else if (response->status == 200) {
        delay = StorePage(config, progress, url, base, *response, now, &backoff);
      } else if (response->status == 429) {
        const okta::RateLimit limit = okta::ParseRateLimit(*response);
        delay = Transient(okta::DescribeError(*response), &backoff);
        if (limit.reset.has_value()) {
          // Okta's windows are one minute long: never wait much longer.
          const absl::Duration longest = std::max(
              {options_.retry_initial, options_.retry_max, absl::Minutes(1) + absl::Seconds(1)});
          delay =
              std::clamp(*limit.reset + absl::Seconds(1) - now, options_.retry_initial, longest);
        }
      } else if (response->status >= 500) {
        delay = Transient(okta::DescribeError(*response), &backoff);
      } else {
        // 401/403 and any other 4xx: a person must act (token, permissions,
        // start time); retry at a slow pace meanwhile.
        SetError(okta::DescribeError(*response));
        delay = options_.error_retry;
      }
      if (response.ok()) delay = std::max(delay, RateLimitWait(*response, now));
      if (!Sleep(delay)) return;
    }
  }

  // Ingests one page with the progress record in the same write.
  absl::Duration StorePage(const internal::StoredSource& config,
                           const internal::SourceProgress& progress, const std::string& url,
                           const std::string& base, const HttpResponse& response, absl::Time now,
                           absl::Duration* backoff) {
    absl::StatusOr<std::vector<okta::LogEvent>> page = okta::ParseLogPage(response.body);
    if (!page.ok()) return Transient(std::string(page.status().message()), backoff);
    const std::optional<std::string> next = okta::FindLink(response.HeaderValues("Link"), "next");
    if (next.has_value() && !okta::SameOrigin(*next, base)) {
      SetError(absl::StrCat("the next link leaves ", base,
                            "; refusing to send the token to another origin"));
      return options_.error_retry;
    }
    v1::IngestEventsRequest request;
    request.set_log_type(okta::kLogType);
    request.set_source_label(config.label());
    absl::Time newest = absl::InfinitePast();
    for (okta::LogEvent& event : *page) {
      newest = std::max(newest, event.published);
      request.add_events(std::move(event.json));
    }
    internal::SourceProgress updated = progress;
    // Without a next link (Okta always sends one on polling requests) the
    // same URL is asked again; events already stored are then duplicates.
    updated.set_next_url(next.value_or(url));
    updated.set_pages(progress.pages() + 1);
    *updated.mutable_last_poll_time() = Ts(now);
    *updated.mutable_last_success_time() = Ts(now);
    updated.set_caught_up(page->empty());
    if (newest != absl::InfinitePast()) *updated.mutable_newest_event_time() = Ts(newest);
    const int events = request.events_size();
    engine::ExtraWrites extra = [&](const engine::BatchOutcome& outcome, store::WriteBatch& batch) {
      int64_t fresh = 0, duplicate = 0;
      for (engine::EventStatus s : outcome.events) {
        (s == engine::EventStatus::kDuplicate ? duplicate : fresh) += 1;
      }
      updated.set_events_ingested(progress.events_ingested() + fresh);
      updated.set_events_duplicate(progress.events_duplicate() + duplicate);
      updated.set_events_rejected(progress.events_rejected() + events -
                                  static_cast<int64_t>(outcome.events.size()));
      batch.PutMessage(Family::kSources, SourceProgressKey(id_), updated);
      return absl::OkStatus();
    };
    absl::StatusOr<engine::IngestResult> stored = manager_->ingest_(request, extra);
    if (!stored.ok()) {
      return Transient(
          absl::StrCat("storing a page of ", events, " events failed: ", stored.status().message()),
          backoff);
    }
    {
      absl::MutexLock lock(&mu_);
      progress_ = updated;
      if (state_ != v1::SOURCE_STATE_ACTIVE || !last_error_.empty()) {
        options_.logger->Write(base::LogLevel::kInfo, "source polling again",
                  {{"source", id_}, {"label", config_.label()}});
      }
      state_ = v1::SOURCE_STATE_ACTIVE;
      last_error_.clear();
    }
    *backoff = options_.retry_initial;
    // A page with events: ask for the next one at once; an empty page means
    // caught up: wait for the poll interval.
    if (!page->empty()) return absl::ZeroDuration();
    return std::max(FromDuration(config.okta().poll_interval()), options_.min_poll_interval);
  }

  // The wait the rate-limit headers ask for: until the reset (+1 s) once the
  // remaining requests fall to the reserve; zero otherwise.
  absl::Duration RateLimitWait(const HttpResponse& response, absl::Time now) const {
    const okta::RateLimit limit = okta::ParseRateLimit(response);
    if (!limit.remaining.has_value() || !limit.reset.has_value()) return absl::ZeroDuration();
    const int64_t reserve =
        std::max<int64_t>(options_.rate_limit_reserve_min,
                          static_cast<int64_t>(static_cast<double>(limit.limit.value_or(0)) *
                                               options_.rate_limit_reserve_fraction));
    if (*limit.remaining > reserve) return absl::ZeroDuration();
    return std::clamp(*limit.reset + absl::Seconds(1) - now, absl::ZeroDuration(),
                      absl::Minutes(1) + absl::Seconds(1));
  }

  // Records a transient failure (the source stays ACTIVE) and returns the
  // jittered backoff, doubling it for next time.
  absl::Duration Transient(const std::string& error, absl::Duration* backoff) {
    {
      absl::MutexLock lock(&mu_);
      if (state_ != v1::SOURCE_STATE_ERROR) state_ = v1::SOURCE_STATE_ACTIVE;
      ++poll_failures_;
      if (error != last_error_) {
        options_.logger->Write(base::LogLevel::kWarn, "source poll failed; retrying",
                  {{"source", id_}, {"label", config_.label()}, {"error", error}});
      }
      last_error_ = error;
    }
    std::uniform_real_distribution<double> jitter(0.5, 1.0);
    const absl::Duration delay = *backoff * jitter(random_);
    *backoff = std::min(*backoff * 2, options_.retry_max);
    return delay;
  }

  void SetError(const std::string& error) {
    absl::MutexLock lock(&mu_);
    if (state_ != v1::SOURCE_STATE_ERROR || error != last_error_) {
      options_.logger->Write(base::LogLevel::kWarn, "source in error; retrying slowly",
                {{"source", id_},
                 {"label", config_.label()},
                 {"error", error},
                 {"retry_in", absl::FormatDuration(options_.error_retry)}});
    }
    state_ = v1::SOURCE_STATE_ERROR;
    last_error_ = error;
    ++poll_failures_;
  }

  // Waits `delay`, or until stopped or woken. False when stopping.
  bool Sleep(absl::Duration delay) ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    mu_.AwaitWithTimeout(absl::Condition(
                             +[](Poller* p) ABSL_EXCLUSIVE_LOCKS_REQUIRED(p->mu_) {
                               return p->stopping_ || p->wake_;
                             },
                             this),
                         delay);
    return !stopping_;
  }

  SourceManager* const manager_;
  const SourceManagerOptions& options_;
  const std::string id_;

  mutable absl::Mutex mu_;
  internal::StoredSource config_ ABSL_GUARDED_BY(mu_);
  internal::SourceProgress progress_ ABSL_GUARDED_BY(mu_);
  v1::SourceState state_ ABSL_GUARDED_BY(mu_) = v1::SOURCE_STATE_ACTIVE;
  std::string last_error_ ABSL_GUARDED_BY(mu_);
  absl::Time last_poll_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  // Requests made since the poller started, and failed polls.
  int64_t polls_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t poll_failures_ ABSL_GUARDED_BY(mu_) = 0;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool wake_ ABSL_GUARDED_BY(mu_) = false;
  std::atomic<bool> cancel_{false};
  std::mt19937_64 random_;  // Used by the poller thread only.
  std::thread thread_;
};

// ---- SourceManager -----------------------------------------------------------

SourceManager::SourceManager(store::Store* store, HttpClient* http, PageIngester ingest,
                             SourceManagerOptions options)
    : store_(store), http_(http), ingest_(std::move(ingest)), options_(std::move(options)) {}

SourceManager::~SourceManager() { Shutdown(); }

std::unique_ptr<SourceManager::Poller> SourceManager::MakePoller(
    internal::StoredSource config, internal::SourceProgress progress) {
  return std::make_unique<Poller>(this, std::move(config), std::move(progress));
}

absl::Status SourceManager::Start() {
  absl::MutexLock control(&control_mu_);
  std::vector<internal::StoredSource> configs;
  absl::Status corrupt;
  PANTHERD_RETURN_IF_ERROR(
      store_->Scan(Family::kSources, store::Join(kConfigPrefix, ""),
                   [&](absl::string_view key, absl::string_view value) {
                     internal::StoredSource config;
                     if (!config.ParseFromArray(value.data(), static_cast<int>(value.size()))) {
                       corrupt = absl::DataLossError(absl::StrCat(
                           "stored source record ", absl::CHexEscape(key), " is unreadable"));
                       return false;
                     }
                     configs.push_back(std::move(config));
                     return true;
                   }));
  PANTHERD_RETURN_IF_ERROR(corrupt);
  for (internal::StoredSource& config : configs) {
    internal::SourceProgress progress;
    absl::StatusOr<internal::SourceProgress> stored = store_->GetMessage<internal::SourceProgress>(
        Family::kSources, SourceProgressKey(config.id()));
    if (stored.ok()) {
      progress = *std::move(stored);
    } else if (!absl::IsNotFound(stored.status())) {
      return stored.status();
    }
    const std::string id = config.id();
    options_.logger->Write(base::LogLevel::kInfo, "source loaded",
              {{"source", id},
               {"label", config.label()},
               {"domain", config.okta().domain()},
               {"paused", config.paused() ? "true" : "false"},
               {"events_ingested", absl::StrCat(progress.events_ingested())}});
    std::unique_ptr<Poller> poller = MakePoller(std::move(config), std::move(progress));
    Poller* raw = poller.get();
    {
      absl::MutexLock lock(&mu_);
      pollers_[id] = std::move(poller);
    }
    raw->Start();
  }
  return absl::OkStatus();
}

void SourceManager::Shutdown() {
  checks_cancelled_ = true;  // A connection check in progress ends at once.
  absl::MutexLock control(&control_mu_);
  std::map<std::string, std::unique_ptr<Poller>> pollers;
  {
    absl::MutexLock lock(&mu_);
    if (shut_down_) return;
    shut_down_ = true;
    pollers.swap(pollers_);
  }
  // Cancel all first, then join, so that pollers stop in parallel.
  std::vector<std::thread> stoppers;
  for (auto& [id, poller] : pollers) {
    stoppers.emplace_back([p = poller.get()] { p->Stop(); });
  }
  for (std::thread& t : stoppers) t.join();
}

absl::StatusOr<SourceManager::Poller*> SourceManager::Find(const std::string& id_or_label) const {
  if (id_or_label.empty()) return Invalid("id", "is required (a source id or label)");
  auto it = pollers_.find(id_or_label);
  if (it != pollers_.end()) return it->second.get();
  for (const auto& [id, poller] : pollers_) {
    if (poller->config().label() == id_or_label) return poller.get();
  }
  return absl::NotFoundError(absl::StrCat("no source with id or label \"", id_or_label, "\""));
}

v1::SourceCheck SourceManager::Check(const internal::StoredSource& config) const {
  const std::string base = BaseUrl(config);
  HttpRequest request;
  request.url = okta::CheckUrl(base, options_.now());
  request.timeout = std::min(options_.http_timeout, options_.check_timeout);
  request.headers = {{"Accept", "application/json"},
                     {"Content-Type", "application/json"},
                     {"User-Agent", options_.user_agent},
                     {"Authorization", absl::StrCat("SSWS ", config.okta().api_token())}};
  const absl::Time started = absl::Now();
  absl::StatusOr<HttpResponse> answer = http_->Get(request, &checks_cancelled_);
  const absl::Duration latency = absl::Now() - started;
  v1::SourceCheck check = okta::ClassifyCheck(answer, base);
  *check.mutable_latency() = ToDuration(latency);
  options_.logger->Write(check.ok() ? base::LogLevel::kInfo : base::LogLevel::kWarn, "source connection checked",
      {{"label", config.label()},
       {"base_url", base},
       {"cause", check.cause()},
       {"http_status", absl::StrCat(check.http_status())}});
  return check;
}

absl::StatusOr<v1::TestSourceResponse> SourceManager::Test(const std::string& id_or_label) {
  internal::StoredSource config;
  {
    absl::ReaderMutexLock lock(&mu_);
    if (shut_down_) return absl::UnavailableError("pantherd is shutting down");
    PANTHERD_ASSIGN_OR_RETURN(Poller * poller, Find(id_or_label));
    config = poller->config();
  }
  v1::TestSourceResponse response;
  *response.mutable_check() = Check(config);
  {
    absl::ReaderMutexLock lock(&mu_);
    auto it = pollers_.find(config.id());
    if (it != pollers_.end()) *response.mutable_source() = it->second->View(options_.now());
  }
  return response;
}

absl::StatusOr<v1::AddSourceResponse> SourceManager::Add(const v1::AddSourceRequest& request) {
  PANTHERD_RETURN_IF_ERROR(ValidateLabel(request.label()));
  if (request.config_case() != v1::AddSourceRequest::kOkta) {
    return Invalid("config", "is required (okta)");
  }
  v1::AddSourceResponse response;
  v1::OktaSourceConfig okta = request.okta();
  std::string assumption;
  okta.set_domain(okta::ExpandDomain(okta.domain(), &assumption));
  if (!assumption.empty()) response.add_assumptions(assumption);
  absl::Status domain = okta::ValidateDomain(okta.domain());
  if (!domain.ok()) return Invalid("okta.domain", domain.message());
  PANTHERD_RETURN_IF_ERROR(ValidateToken(okta.api_token(), "okta.api_token"));
  internal::StoredSource config;
  config.set_label(request.label());
  config.set_kind("okta");
  *config.mutable_okta() = okta;
  if (!okta.base_url().empty()) {
    absl::StatusOr<std::string> base = okta::NormalizeBaseUrl(okta.base_url());
    if (!base.ok()) return Invalid("okta.base_url", base.status().message());
    config.mutable_okta()->set_base_url(*base);
  }
  const absl::Time now = options_.now();
  if (okta.has_poll_interval()) {
    const absl::Duration interval = FromDuration(okta.poll_interval());
    if (interval < options_.min_poll_interval) {
      return Invalid("okta.poll_interval",
                     absl::StrCat(absl::FormatDuration(interval), " is shorter than the minimum ",
                                  absl::FormatDuration(options_.min_poll_interval)));
    }
  } else {
    *config.mutable_okta()->mutable_poll_interval() = ToDuration(kDefaultPollInterval);
  }
  if (okta.has_start_time()) {
    const absl::Time start = FromTs(okta.start_time());
    if (start < now - kMaxLookback) {
      return Invalid("okta.start_time",
                     "is more than 180 days ago (Okta refuses such a since parameter)");
    }
    if (start > now + absl::Minutes(1)) return Invalid("okta.start_time", "is in the future");
  } else {
    *config.mutable_okta()->mutable_start_time() = Ts(now - kDefaultLookback);
  }
  *config.mutable_created_time() = Ts(now);

  // Called with mu_ held.
  auto label_in_use = [&]() -> absl::Status {
    for (const auto& [id, poller] : pollers_) {
      if (poller->config().label() == request.label()) {
        return absl::AlreadyExistsError(
            absl::StrCat("label: a source labelled \"", request.label(), "\" exists (", id, ")"));
      }
    }
    return absl::OkStatus();
  };
  if (!request.skip_connection_check()) {
    // Checked before the (slow) request, so that a taken label fails fast;
    // checked again below, under the control lock.
    {
      absl::ReaderMutexLock lock(&mu_);
      if (shut_down_) return absl::UnavailableError("pantherd is shutting down");
      PANTHERD_RETURN_IF_ERROR(label_in_use());
    }
    *response.mutable_check() = Check(config);
    if (!response.check().ok()) {
      return absl::FailedPreconditionError(
          absl::StrCat("okta: ", response.check().message(),
                       "; nothing was stored (skip_connection_check stores it anyway)"));
    }
  }

  absl::MutexLock control(&control_mu_);
  {
    absl::ReaderMutexLock lock(&mu_);
    if (shut_down_) return absl::UnavailableError("pantherd is shutting down");
    PANTHERD_RETURN_IF_ERROR(label_in_use());
    do {
      config.set_id(NewSourceId());
    } while (pollers_.count(config.id()) > 0);
  }
  PANTHERD_RETURN_IF_ERROR(
      store_->PutMessage(Family::kSources, SourceConfigKey(config.id()), config));
  options_.logger->Write(base::LogLevel::kInfo, "source added",
            {{"source", config.id()},
             {"label", config.label()},
             {"kind", "okta"},
             {"domain", config.okta().domain()},
             {"base_url", BaseUrl(config)},
             {"start_time", absl::FormatTime(absl::RFC3339_sec, FromTs(config.okta().start_time()),
                                             absl::UTCTimeZone())}});
  std::unique_ptr<Poller> poller = MakePoller(config, internal::SourceProgress());
  Poller* raw = poller.get();
  {
    absl::MutexLock lock(&mu_);
    pollers_[config.id()] = std::move(poller);
  }
  raw->Start();
  *response.mutable_source() = raw->View(options_.now());
  return response;
}

absl::StatusOr<std::vector<v1::Source>> SourceManager::List() const {
  const absl::Time now = options_.now();
  std::vector<v1::Source> sources;
  {
    absl::ReaderMutexLock lock(&mu_);
    for (const auto& [id, poller] : pollers_) sources.push_back(poller->View(now));
  }
  std::sort(sources.begin(), sources.end(),
            [](const v1::Source& a, const v1::Source& b) { return a.label() < b.label(); });
  return sources;
}

absl::StatusOr<v1::Source> SourceManager::SetPaused(const std::string& id_or_label, bool paused,
                                                    const std::string& api_token) {
  if (!api_token.empty()) PANTHERD_RETURN_IF_ERROR(ValidateToken(api_token, "api_token"));
  absl::MutexLock control(&control_mu_);
  Poller* poller = nullptr;
  {
    absl::ReaderMutexLock lock(&mu_);
    if (shut_down_) return absl::UnavailableError("pantherd is shutting down");
    PANTHERD_ASSIGN_OR_RETURN(poller, Find(id_or_label));
  }
  // The poller stays alive: only control calls (serialised by control_mu_)
  // remove pollers.
  internal::StoredSource config = poller->config();
  const bool changed =
      config.paused() != paused || (!api_token.empty() && api_token != config.okta().api_token());
  config.set_paused(paused);
  if (!api_token.empty()) config.mutable_okta()->set_api_token(api_token);
  if (changed) {
    PANTHERD_RETURN_IF_ERROR(
        store_->PutMessage(Family::kSources, SourceConfigKey(config.id()), config));
    options_.logger->Write(base::LogLevel::kInfo, paused ? "source paused" : "source resumed",
              {{"source", config.id()},
               {"label", config.label()},
               {"token_replaced", api_token.empty() ? "false" : "true"}});
  }
  poller->Update(std::move(config));
  return poller->View(options_.now());
}

absl::Status SourceManager::Remove(const std::string& id_or_label) {
  absl::MutexLock control(&control_mu_);
  std::unique_ptr<Poller> poller;
  {
    absl::MutexLock lock(&mu_);
    if (shut_down_) return absl::UnavailableError("pantherd is shutting down");
    PANTHERD_ASSIGN_OR_RETURN(Poller * found, Find(id_or_label));
    auto it = pollers_.find(found->id());
    poller = std::move(it->second);
    pollers_.erase(it);
  }
  poller->Stop();
  const internal::StoredSource config = poller->config();
  store::WriteBatch batch;
  batch.Delete(Family::kSources, SourceConfigKey(config.id()));
  batch.Delete(Family::kSources, SourceProgressKey(config.id()));
  PANTHERD_RETURN_IF_ERROR(store_->Write(std::move(batch)));
  options_.logger->Write(base::LogLevel::kInfo, "source removed",
            {{"source", config.id()}, {"label", config.label()}});
  return absl::OkStatus();
}

}  // namespace pantherd::server
