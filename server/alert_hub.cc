#include "server/alert_hub.h"

#include <algorithm>
#include <deque>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "google/protobuf/util/time_util.h"

namespace pantherd::server {
namespace {

using google::protobuf::util::TimeUtil;

grpc::Status ToGrpc(const absl::Status& s) {
  return grpc::Status(static_cast<grpc::StatusCode>(s.code()), std::string(s.message()));
}

// A call that ends before it begins (invalid request, hub shut down).
class FinishedReactor final : public grpc::ServerWriteReactor<v1::StreamAlertsResponse> {
 public:
  explicit FinishedReactor(const grpc::Status& status) { Finish(status); }
  void OnDone() override { delete this; }
};

template <typename E>
bool InList(const google::protobuf::RepeatedField<int>& list, E value) {
  return std::find(list.begin(), list.end(), static_cast<int>(value)) != list.end();
}

}  // namespace

// One StreamAlerts call (see the file comment of alert_hub.h).
//
// Everything mutable is guarded by mu_. Decisions are taken under mu_ by
// NextLocked(), which returns an Action; Act() performs it (StartWrite,
// Finish, Executor::Submit) without mu_, so that no gRPC call is made with
// the mutex held. The object deletes itself once OnDone ran and no store read
// of its own is queued or running.
class AlertStream final : public grpc::ServerWriteReactor<v1::StreamAlertsResponse> {
 public:
  AlertStream(AlertHub* hub, const v1::StreamAlertsRequest& request,
              std::function<absl::Status()> authorized)
      : hub_(hub),
        request_(request),
        authorized_(std::move(authorized)),
        last_write_(hub->options_.now()) {}
  ~AlertStream() override { hub_->StreamDestroyed(); }

  // Moves the stream forward: starts a write, a store read, or Finish.
  void Pump() ABSL_LOCKS_EXCLUDED(mu_) {
    Action a;
    {
      absl::MutexLock lock(&mu_);
      a = NextLocked();
    }
    Act(a);
  }

  // Publish: `changes` are notifiable, in sequence order; `sizes[i]` is
  // the encoded size of changes[i]. Called with the hub's mutex held.
  void Offer(const std::vector<v1::AlertChange>& changes, const std::vector<size_t>& sizes)
      ABSL_LOCKS_EXCLUDED(mu_) {
    Action a;
    {
      absl::MutexLock lock(&mu_);
      if (finish_requested_) return;
      const size_t cap = std::max<size_t>(1, hub_->options_.buffer_capacity);
      const size_t byte_cap = std::max<size_t>(1, hub_->options_.buffer_bytes);
      for (size_t i = 0; i < changes.size(); ++i) {
        const v1::AlertChange& c = changes[i];
        const size_t bytes = sizes[i];
        if (!AlertHub::Matches(request_, c)) continue;
        if (mode_ == Mode::kCatchUp) {
          const bool too_many = buffer_.size() >= cap;
          if (too_many || buffer_bytes_ + bytes > byte_cap) {
            // The store has all of them: the catch-up reads them again.
            if (!too_many) ++hub_->byte_overflows_;
            hub_->dropped_ += static_cast<int64_t>(buffer_.size()) + 1;
            buffer_.clear();
            buffer_bytes_ = 0;
            overflowed_ = true;
            continue;
          }
          buffer_.push_back(c);
          buffer_bytes_ += bytes;
          continue;
        }
        if (c.sequence() <= cursor_) continue;  // already replayed
        const bool too_many = queued_changes_ >= cap;
        if (too_many || queued_bytes_ + bytes > byte_cap) {
          if (!too_many) ++hub_->byte_overflows_;
          DropToCatchUpLocked();
          hub_->dropped_ += 1;  // `c` itself
          continue;
        }
        v1::StreamAlertsResponse r;
        *r.mutable_change() = c;
        outbox_.push_back({std::move(r), c.sequence(), bytes});
        ++queued_changes_;
        queued_bytes_ += bytes;
        cursor_ = c.sequence();
      }
      a = NextLocked();
    }
    Act(a);
  }

  // What this stream has not written yet (AlertHub::stats). Called with the
  // hub's mutex held.
  AlertHubStats::Subscriber Backlog() const ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    AlertHubStats::Subscriber b;
    b.backlog = static_cast<int64_t>(queued_changes_ + buffer_.size());
    b.backlog_bytes = static_cast<int64_t>(queued_bytes_ + buffer_bytes_);
    b.catching_up = mode_ == Mode::kCatchUp;
    b.delivered_through = delivered_through_;
    return b;
  }

  // Ends the call with the status of `authorized_` when it is no longer OK
  // (e.g. the caller's token was revoked). Called with the hub's mutex held.
  void Recheck() ABSL_LOCKS_EXCLUDED(mu_) {
    if (!authorized_) return;
    absl::Status allowed = authorized_();
    if (allowed.ok()) return;
    Action a;
    {
      absl::MutexLock lock(&mu_);
      if (finish_requested_) return;
      outbox_.clear();
      queued_changes_ = 0;
      queued_bytes_ = 0;
      buffer_.clear();
      buffer_bytes_ = 0;
      RequestFinishLocked(ToGrpc(allowed));
      a = NextLocked();
    }
    Act(a);
  }

  // The heartbeat thread; called with the hub's mutex held.
  void Tick(absl::Time now) ABSL_LOCKS_EXCLUDED(mu_) {
    Recheck();  // e.g. a token that expired meanwhile
    Action a;
    {
      absl::MutexLock lock(&mu_);
      if (finish_requested_) return;
      if (mode_ == Mode::kLive && !write_in_flight_ && outbox_.empty() &&
          now - last_write_ >= hub_->options_.heartbeat_interval) {
        v1::StreamAlertsResponse r;
        r.mutable_heartbeat()->set_latest_sequence(
            std::max<uint64_t>(hub_->latest_sequence_.load(), cursor_));
        *r.mutable_heartbeat()->mutable_time() =
            TimeUtil::MicrosecondsToTimestamp(absl::ToUnixMicros(now));
        outbox_.push_back({std::move(r), 0, 0});
      }
      a = NextLocked();  // also retries a refused store read
    }
    Act(a);
  }

  // Shutdown: ends the call with UNAVAILABLE once the write in flight is done.
  void EndForShutdown() ABSL_LOCKS_EXCLUDED(mu_) {
    Action a;
    {
      absl::MutexLock lock(&mu_);
      if (finish_requested_) return;
      std::string resume;
      if (!started_) {
        switch (request_.start_case()) {
          case v1::StreamAlertsRequest::kStartAfterSequence:
            resume = absl::StrCat("resume after sequence ", request_.start_after_sequence());
            break;
          case v1::StreamAlertsRequest::kStartTime:
            resume = "resume with the same request";
            break;
          default:
            resume = absl::StrCat("resume after sequence ", hub_->latest_sequence_.load());
        }
      } else {
        // With nothing queued, everything up to cursor_ was delivered (or is
        // in flight) or filtered out; otherwise the queue is dropped.
        const uint64_t n = queued_changes_ == 0 ? cursor_ : delivered_through_;
        resume = absl::StrCat("resume after sequence ", n);
      }
      outbox_.clear();
      queued_changes_ = 0;
      queued_bytes_ = 0;
      buffer_.clear();
      buffer_bytes_ = 0;
      RequestFinishLocked(
          grpc::Status(grpc::StatusCode::UNAVAILABLE, "server shutting down; " + resume));
      a = NextLocked();
    }
    Act(a);
  }

  void OnWriteDone(bool ok) override ABSL_LOCKS_EXCLUDED(mu_) {
    Action a;
    {
      absl::MutexLock lock(&mu_);
      write_in_flight_ = false;
      if (!ok) {
        RequestFinishLocked(grpc::Status(grpc::StatusCode::CANCELLED, "stream broken"));
      } else {
        if (current_.has_change()) ++hub_->delivered_;
        if (current_.has_heartbeat()) ++hub_->heartbeats_;
        delivered_through_ = std::max(delivered_through_, current_through_);
      }
      a = NextLocked();
    }
    Act(a);
  }

  void OnCancel() override ABSL_LOCKS_EXCLUDED(mu_) {
    Action a;
    {
      absl::MutexLock lock(&mu_);
      outbox_.clear();
      queued_changes_ = 0;
      queued_bytes_ = 0;
      RequestFinishLocked(grpc::Status(grpc::StatusCode::CANCELLED, "cancelled by the client"));
      a = NextLocked();
    }
    Act(a);
  }

  void OnDone() override ABSL_LOCKS_EXCLUDED(mu_) {
    hub_->Unregister(this);
    bool del;
    {
      absl::MutexLock lock(&mu_);
      done_ = true;
      del = refs_ == 0;
    }
    if (del) delete this;
  }

 private:
  enum class Mode { kCatchUp, kLive };
  struct Action {
    bool write = false;
    bool submit = false;
    bool finish = false;
    grpc::Status status;
  };
  struct Queued {
    v1::StreamAlertsResponse response;
    uint64_t through;  // the sequence delivered once written (0: none)
    size_t bytes;      // a change's encoded size (counted in queued_bytes_)
  };

  void RequestFinishLocked(grpc::Status status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (finish_requested_) return;
    finish_requested_ = true;
    finish_status_ = std::move(status);
  }

  // Live overflow: drop the unsent changes and re-read them from the store.
  void DropToCatchUpLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    std::deque<Queued> kept;
    for (Queued& q : outbox_) {
      if (!q.response.has_change()) kept.push_back(std::move(q));
    }
    hub_->dropped_ += static_cast<int64_t>(queued_changes_);
    ++hub_->catch_ups_;
    outbox_ = std::move(kept);
    queued_changes_ = 0;
    queued_bytes_ = 0;
    cursor_ =
        write_in_flight_ ? std::max(delivered_through_, current_through_) : delivered_through_;
    mode_ = Mode::kCatchUp;
    overflowed_ = false;
    buffer_.clear();
    buffer_bytes_ = 0;
  }

  Action NextLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    Action a;
    if (finished_ || done_) return a;
    if (finish_requested_) {
      if (!write_in_flight_) {
        finished_ = true;
        a.finish = true;
        a.status = finish_status_;
      }
      return a;
    }
    if (!write_in_flight_ && !outbox_.empty()) {
      current_ = std::move(outbox_.front().response);
      current_through_ = outbox_.front().through;
      const size_t outbox_front_bytes = outbox_.front().bytes;
      outbox_.pop_front();
      if (current_.has_change()) {
        --queued_changes_;
        queued_bytes_ -= std::min(queued_bytes_, outbox_front_bytes);
      }
      write_in_flight_ = true;
      last_write_ = hub_->options_.now();
      a.write = true;
    }
    if (mode_ == Mode::kCatchUp && !read_pending_ && outbox_.empty()) {
      read_pending_ = true;
      ++refs_;
      a.submit = true;
    }
    return a;
  }

  void Act(const Action& a) ABSL_LOCKS_EXCLUDED(mu_) {
    if (a.write) StartWrite(&current_);
    if (a.finish) Finish(a.status);
    if (a.submit && !hub_->executor_->Submit([this] { ReadTask(); })) {
      // The executor is saturated: the heartbeat thread retries (Tick).
      bool del;
      {
        absl::MutexLock lock(&mu_);
        read_pending_ = false;
        --refs_;
        del = done_ && refs_ == 0;
      }
      if (del) delete this;
    }
  }

  // On the executor: resolves the start position (first time), then reads
  // one page of the alert log after cursor_.
  void ReadTask() ABSL_LOCKS_EXCLUDED(mu_) {
    uint64_t after = 0;
    bool first = false;
    bool stop = false;
    bool del = false;
    {
      absl::MutexLock lock(&mu_);
      if (done_ || finish_requested_) {
        read_pending_ = false;
        stop = true;
        del = --refs_ == 0 && done_;
      } else {
        after = cursor_;
        first = !started_;
      }
    }
    if (stop) {
      if (del) delete this;
      return;
    }
    engine::AlertEngine* engine = hub_->engine_;
    absl::Status error;
    bool gap_allowed = true;
    if (first) {
      absl::StatusOr<uint64_t> latest = engine->LatestSequence();
      if (!latest.ok()) {
        error = latest.status();
      } else {
        switch (request_.start_case()) {
          case v1::StreamAlertsRequest::kStartAfterSequence:
            after = request_.start_after_sequence();
            gap_allowed = after != 0;
            if (after > *latest) {
              error = absl::OutOfRangeError(absl::StrCat(
                  "start_after_sequence ", after, " is beyond the latest sequence ", *latest));
            }
            break;
          case v1::StreamAlertsRequest::kStartTime: {
            const absl::Time t =
                absl::FromUnixMicros(TimeUtil::TimestampToMicroseconds(request_.start_time()));
            absl::StatusOr<uint64_t> first_seq = engine->FirstSequenceAtOrAfter(t);
            if (!first_seq.ok()) {
              error = first_seq.status();
            } else {
              after = *first_seq == 0 ? 0 : *first_seq - 1;
              gap_allowed = false;
            }
            break;
          }
          default:
            after = *latest;
            break;
        }
      }
    }
    uint64_t oldest = 0;
    std::vector<v1::AlertChange> page;
    const size_t page_size = std::max<size_t>(1, hub_->options_.page_size);
    const size_t page_bytes = std::max<size_t>(1, hub_->options_.page_bytes);
    size_t read_bytes = 0;
    if (error.ok()) {
      absl::StatusOr<uint64_t> o = engine->OldestRetainedSequence();
      if (!o.ok()) {
        error = o.status();
      } else {
        oldest = *o;
        absl::StatusOr<std::vector<v1::AlertChange>> r =
            engine->ReadChangesAfter(std::max(after, oldest - 1), page_size, page_bytes);
        if (!r.ok()) {
          error = r.status();
        } else {
          page = *std::move(r);
          for (const v1::AlertChange& c : page) read_bytes += c.ByteSizeLong();
        }
      }
    }

    Action a;
    {
      absl::MutexLock lock(&mu_);
      read_pending_ = false;
      if (!done_ && !finish_requested_) {
        if (!error.ok()) {
          RequestFinishLocked(ToGrpc(error));
        } else {
          if (first) {
            started_ = true;
            // Without a gap to announce (start 0, start_time, live only), the
            // stream starts at the oldest retained change at the earliest.
            cursor_ = gap_allowed ? after : std::max(after, oldest - 1);
            delivered_through_ = cursor_;
          }
          if (gap_allowed && cursor_ + 1 < oldest) {
            v1::StreamAlertsResponse r;
            v1::Gap* gap = r.mutable_gap();
            gap->set_from_sequence(cursor_ + 1);
            gap->set_to_sequence(oldest - 1);
            gap->set_reason(absl::StrCat("changes ", cursor_ + 1, " to ", oldest - 1,
                                         " are no longer retained"));
            outbox_.push_back({std::move(r), oldest - 1, 0});
            ++hub_->gaps_;
            cursor_ = oldest - 1;
          }
          for (v1::AlertChange& c : page) {
            if (c.sequence() <= cursor_) continue;
            const uint64_t seq = c.sequence();
            if (engine::ShouldNotify(c) && AlertHub::Matches(request_, c)) {
              const size_t bytes = c.ByteSizeLong();
              v1::StreamAlertsResponse r;
              *r.mutable_change() = std::move(c);
              outbox_.push_back({std::move(r), seq, bytes});
              ++queued_changes_;
              queued_bytes_ += bytes;
            }
            cursor_ = seq;
          }
          uint64_t seen = hub_->latest_sequence_.load();
          while (cursor_ > seen && !hub_->latest_sequence_.compare_exchange_weak(seen, cursor_)) {
          }
          // A page cut short by neither limit reached the end of the log.
          if (page.size() < page_size && read_bytes < page_bytes) {
            if (overflowed_) {
              overflowed_ = false;  // what was dropped is in the store: read on
            } else {
              for (v1::AlertChange& c : buffer_) {
                if (c.sequence() <= cursor_) continue;
                const uint64_t seq = c.sequence();
                const size_t bytes = c.ByteSizeLong();
                v1::StreamAlertsResponse r;
                *r.mutable_change() = std::move(c);
                outbox_.push_back({std::move(r), seq, bytes});
                ++queued_changes_;
                queued_bytes_ += bytes;
                cursor_ = seq;
              }
              buffer_.clear();
              buffer_bytes_ = 0;
              mode_ = Mode::kLive;
            }
          }
        }
      }
      if (!done_) a = NextLocked();
    }
    Act(a);
    {
      absl::MutexLock lock(&mu_);
      del = --refs_ == 0 && done_;
    }
    if (del) delete this;
  }

  AlertHub* const hub_;
  const v1::StreamAlertsRequest request_;
  // Whether the caller may still stream; null: always.
  const std::function<absl::Status()> authorized_;

  mutable absl::Mutex mu_;
  Mode mode_ ABSL_GUARDED_BY(mu_) = Mode::kCatchUp;
  bool started_ ABSL_GUARDED_BY(mu_) = false;  // start position resolved
  // Every change <= cursor_ is queued, written, or filtered out.
  uint64_t cursor_ ABSL_GUARDED_BY(mu_) = 0;
  // Every matching change <= delivered_through_ was written.
  uint64_t delivered_through_ ABSL_GUARDED_BY(mu_) = 0;
  // Live changes published during catch-up (bounded).
  std::deque<v1::AlertChange> buffer_ ABSL_GUARDED_BY(mu_);
  size_t buffer_bytes_ ABSL_GUARDED_BY(mu_) = 0;  // their encoded size
  bool overflowed_ ABSL_GUARDED_BY(mu_) = false;
  // What to write next; queued_changes_ counts its changes.
  std::deque<Queued> outbox_ ABSL_GUARDED_BY(mu_);
  size_t queued_changes_ ABSL_GUARDED_BY(mu_) = 0;
  size_t queued_bytes_ ABSL_GUARDED_BY(mu_) = 0;  // their encoded size
  // The write in flight (must live until OnWriteDone).
  v1::StreamAlertsResponse current_ ABSL_GUARDED_BY(mu_);
  uint64_t current_through_ ABSL_GUARDED_BY(mu_) = 0;
  bool write_in_flight_ ABSL_GUARDED_BY(mu_) = false;
  absl::Time last_write_ ABSL_GUARDED_BY(mu_);
  bool read_pending_ ABSL_GUARDED_BY(mu_) = false;
  // Store reads submitted and not yet returned (they use `this`).
  int refs_ ABSL_GUARDED_BY(mu_) = 0;
  bool finish_requested_ ABSL_GUARDED_BY(mu_) = false;
  grpc::Status finish_status_ ABSL_GUARDED_BY(mu_);
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  bool done_ ABSL_GUARDED_BY(mu_) = false;
};

AlertHub::AlertHub(engine::AlertEngine* engine, Executor* executor, AlertHubOptions options)
    : engine_(engine), executor_(executor), options_(std::move(options)) {
  absl::StatusOr<uint64_t> latest = engine_->LatestSequence();
  if (latest.ok()) latest_sequence_ = *latest;
  ticker_ = std::thread([this] { TickerLoop(); });
}

AlertHub::~AlertHub() {
  Shutdown();
  {
    absl::MutexLock lock(&mu_);
    stop_ticker_ = true;
  }
  ticker_.join();
  absl::MutexLock lock(&mu_);
  mu_.Await(absl::Condition(
      +[](int64_t* alive) { return *alive == 0; }, &alive_));
}

void AlertHub::Publish(std::vector<v1::AlertChange> changes) {
  std::vector<v1::AlertChange> notify;
  notify.reserve(changes.size());
  std::vector<size_t> sizes;
  uint64_t max_seq = 0;
  for (v1::AlertChange& c : changes) {
    max_seq = std::max<uint64_t>(max_seq, c.sequence());
    if (engine::ShouldNotify(c)) notify.push_back(std::move(c));
  }
  uint64_t seen = latest_sequence_.load();
  while (max_seq > seen && !latest_sequence_.compare_exchange_weak(seen, max_seq)) {
  }
  if (notify.empty()) return;
  sizes.reserve(notify.size());
  for (const v1::AlertChange& c : notify) sizes.push_back(c.ByteSizeLong());
  published_.fetch_add(static_cast<int64_t>(notify.size()), std::memory_order_relaxed);
  absl::MutexLock lock(&mu_);
  for (AlertStream* s : streams_) s->Offer(notify, sizes);
}

grpc::ServerWriteReactor<v1::StreamAlertsResponse>* AlertHub::StartStream(
    grpc::CallbackServerContext* /*ctx*/, const v1::StreamAlertsRequest* request,
    std::function<absl::Status()> authorized) {
  absl::Status valid = ValidateRequest(*request);
  if (!valid.ok()) return new FinishedReactor(ToGrpc(valid));
  AlertStream* stream;
  {
    absl::MutexLock lock(&mu_);
    if (shutting_down_) {
      return new FinishedReactor(
          grpc::Status(grpc::StatusCode::UNAVAILABLE, "server shutting down"));
    }
    stream = new AlertStream(this, *request, std::move(authorized));
    ++alive_;
    // Registered before the replay starts: nothing published meanwhile is lost.
    streams_.insert(stream);
  }
  stream->Pump();  // schedules the first store read
  return stream;
}

void AlertHub::Shutdown() {
  absl::MutexLock lock(&mu_);
  shutting_down_ = true;
  for (AlertStream* s : streams_) s->EndForShutdown();
}

void AlertHub::RecheckStreams() {
  absl::MutexLock lock(&mu_);
  for (AlertStream* s : streams_) s->Recheck();
}

AlertHubStats AlertHub::stats() const {
  AlertHubStats s;
  {
    absl::MutexLock lock(&mu_);
    s.subscribers = static_cast<int64_t>(streams_.size());
    for (const AlertStream* stream : streams_) s.backlogs.push_back(stream->Backlog());
  }
  s.published = published_.load();
  s.delivered = delivered_.load();
  s.dropped_to_catch_up = dropped_.load();
  s.catch_ups = catch_ups_.load();
  s.byte_overflows = byte_overflows_.load();
  s.gaps = gaps_.load();
  s.heartbeats = heartbeats_.load();
  return s;
}

void AlertHub::Unregister(AlertStream* stream) {
  absl::MutexLock lock(&mu_);
  streams_.erase(stream);
}

void AlertHub::StreamDestroyed() {
  absl::MutexLock lock(&mu_);
  --alive_;
}

void AlertHub::TickerLoop() {
  const absl::Duration tick =
      std::clamp(options_.heartbeat_interval / 4, absl::Milliseconds(5), absl::Seconds(1));
  absl::MutexLock lock(&mu_);
  while (!stop_ticker_) {
    mu_.AwaitWithTimeout(absl::Condition(&stop_ticker_), tick);
    if (stop_ticker_) break;
    const absl::Time now = options_.now();
    for (AlertStream* s : streams_) s->Tick(now);
  }
}

absl::Status AlertHub::ValidateRequest(const v1::StreamAlertsRequest& request) {
  for (int i = 0; i < request.rule_ids_size(); ++i) {
    if (request.rule_ids(i).empty()) {
      return absl::InvalidArgumentError(absl::StrCat("rule_ids[", i, "]: empty"));
    }
  }
  if (!v1::Severity_IsValid(request.min_severity())) {
    return absl::InvalidArgumentError(
        absl::StrCat("min_severity: unknown value ", request.min_severity()));
  }
  for (int i = 0; i < request.types_size(); ++i) {
    if (!v1::AlertType_IsValid(request.types(i)) ||
        request.types(i) == v1::ALERT_TYPE_UNSPECIFIED) {
      return absl::InvalidArgumentError(
          absl::StrCat("types[", i, "]: invalid value ", request.types(i)));
    }
  }
  for (int i = 0; i < request.kinds_size(); ++i) {
    if (!v1::AlertChange::Kind_IsValid(request.kinds(i)) ||
        request.kinds(i) == v1::AlertChange::KIND_UNSPECIFIED) {
      return absl::InvalidArgumentError(
          absl::StrCat("kinds[", i, "]: invalid value ", request.kinds(i)));
    }
  }
  for (int i = 0; i < request.log_types_size(); ++i) {
    if (request.log_types(i).empty()) {
      return absl::InvalidArgumentError(absl::StrCat("log_types[", i, "]: empty"));
    }
  }
  if (request.has_start_time() &&
      (request.start_time().nanos() < 0 || request.start_time().nanos() > 999999999 ||
       request.start_time().seconds() < TimeUtil::kTimestampMinSeconds ||
       request.start_time().seconds() > TimeUtil::kTimestampMaxSeconds)) {
    return absl::InvalidArgumentError("start_time: not a valid timestamp");
  }
  return absl::OkStatus();
}

bool AlertHub::Matches(const v1::StreamAlertsRequest& request, const v1::AlertChange& change) {
  const v1::Alert& alert = change.alert();
  if (request.min_severity() != v1::SEVERITY_UNSPECIFIED &&
      alert.severity() < request.min_severity()) {
    return false;
  }
  if (!request.rule_ids().empty() && std::find(request.rule_ids().begin(), request.rule_ids().end(),
                                               alert.rule_id()) == request.rule_ids().end()) {
    return false;
  }
  if (!request.types().empty() && !InList(request.types(), alert.type())) return false;
  if (!request.kinds().empty() && !InList(request.kinds(), change.kind())) return false;
  if (!request.log_types().empty()) {
    bool any = false;
    for (const std::string& lt : alert.log_types()) {
      if (std::find(request.log_types().begin(), request.log_types().end(), lt) !=
          request.log_types().end()) {
        any = true;
        break;
      }
    }
    if (!any) return false;
  }
  return true;
}

}  // namespace pantherd::server
