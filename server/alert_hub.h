// AlertHub: the broadcast behind StreamAlerts.
//
// The alert engine calls Publish() (as its engine::AlertPublisher, see
// AlertEngine::SetPublisher) with the changes of every write once it is
// durable, in sequence order; every subscriber whose filters match receives each change
// (broadcast: each subscriber has its own bounded buffer, never a shared
// queue). StartStream() returns the server-streaming reactor of one
// StreamAlerts call.
//
//   AlertHub hub(&engine, &executor, {});
//   engine.SetPublisher(&hub);  // every durable change, in sequence order
//   ...
//   engine.SetPublisher(nullptr);  // before the hub goes
//   // DetectionServiceImpl::StreamAlerts:
//   return hub.StartStream(ctx, request);
//   // server shutdown, before grpc::Server::Shutdown:
//   hub.Shutdown();
//
// DELIVERY. A stream registers itself first, then (on the executor, never on
// a gRPC thread) resolves its start position and replays the alert log from
// the store in pages, while live changes published meanwhile wait in its
// buffer. When a read reaches the end of the log, the buffered changes newer
// than the last one replayed are sent and the stream is live: no gap and no
// duplicate at the switch-over (changes are deduplicated by sequence).
// Start positions: start_after_sequence N replays every retained change after
// N (0: from the oldest retained, no Gap); start_time T replays from
// FirstSequenceAtOrAfter(T); neither starts after LatestSequence(). N older
// than what is retained first gets a Gap{N+1, oldest-1}; N beyond the latest
// sequence fails the call with OUT_OF_RANGE (the client talks to a server
// whose log it has not seen).
//
// SLOW SUBSCRIBERS. Publish never blocks on a subscriber. Each live stream
// holds at most `buffer_capacity` unsent changes AND at most `buffer_bytes`
// of them (encoded size); when a change would exceed either, its unsent
// changes are dropped (counted in dropped_to_catch_up; byte_overflows counts
// the overflows caused by bytes) and the stream goes back to catch-up: it
// re-reads the log from the store after the last change it sent, exactly
// like the initial replay, then goes live again. During catch-up the live
// changes it holds are bounded the same way, and each store read stops at
// `page_size` changes or once it holds `page_bytes` (plus the change that
// crossed it). So a slow subscriber costs at most buffer_bytes + page_bytes
// + two changes (the one crossing the page limit and the one being written)
// of memory, whatever the count caps; never slows ingestion; and misses
// nothing that is still retained; what the purge removed meanwhile is
// announced with a Gap. A change is at most a few hundred KiB: the engine
// caps the samples an alert stores (engine/alert_engine.h, BYTE CAPS).
//
// OTHER MESSAGES. When a live stream has written nothing for
// `heartbeat_interval`, it writes a Heartbeat carrying the latest sequence
// the hub knows. Shutdown() ends every stream with UNAVAILABLE "server
// shutting down; resume after sequence N", N being the last sequence that
// stream has delivered (or skipped by its filters), and refuses new streams
// the same way.
//
// THREAD-SAFETY. All public methods are thread-safe. Lock order: the hub's
// mutex, then a stream's mutex; a stream never takes the hub's mutex while
// holding its own, and gRPC calls (StartWrite, Finish) are made with no
// stream mutex held. Reactions (OnWriteDone, OnCancel, OnDone) only move
// messages; store reads run on the Executor.
//
// LIFETIME. `engine` and `executor` must outlive the hub. Destroy the hub
// after the gRPC server has shut down: the destructor stops the heartbeat
// thread and waits until every stream object is gone (OnDone ran and no store
// read of theirs is still queued on the executor).
#ifndef PANTHERD_SERVER_ALERT_HUB_H_
#define PANTHERD_SERVER_ALERT_HUB_H_

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <thread>
#include <unordered_set>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "engine/alert_engine.h"
#include "engine/alert_publisher.h"
#include "pantherd/v1/alerts.pb.h"
#include "proto/base/clock.h"
#include "server/executor.h"

namespace pantherd::server {

struct AlertHubOptions {
  // Unsent changes a live stream may hold before it falls back to catch-up.
  size_t buffer_capacity = 1024;
  // The same in bytes (the changes' encoded size): 8 MiB.
  size_t buffer_bytes = size_t{8} << 20;
  // Changes read from the store per executor task: at most page_size, and
  // no more once they total page_bytes (4 MiB).
  size_t page_size = 256;
  size_t page_bytes = size_t{4} << 20;
  // A live stream that wrote nothing for this long writes a Heartbeat.
  absl::Duration heartbeat_interval = absl::Seconds(5);
  // The clock of heartbeat times.
  base::Clock now = base::RealClock();
};

struct AlertHubStats {
  int64_t subscribers = 0;          // streams currently registered
  int64_t delivered = 0;            // changes written to clients
  int64_t dropped_to_catch_up = 0;  // buffered changes dropped on overflow (re-read later)
  int64_t catch_ups = 0;            // times a live stream fell back to catch-up
  int64_t byte_overflows = 0;       // overflows (live or catch-up) caused by buffer_bytes
  int64_t gaps = 0;                 // Gap messages queued
  int64_t heartbeats = 0;           // Heartbeat messages written
  int64_t published = 0;            // notifiable changes handed to Publish
  // Each registered stream's backlog (changes queued or held while it
  // catches up), whether it is catching up, and the sequence through which
  // it delivered every matching change.
  struct Subscriber {
    int64_t backlog = 0;
    bool catching_up = false;
    uint64_t delivered_through = 0;
    int64_t backlog_bytes = 0;  // the backlog's encoded size
  };
  std::vector<Subscriber> backlogs;
};

class AlertStream;

class AlertHub : public engine::AlertPublisher {
 public:
  AlertHub(engine::AlertEngine* engine, Executor* executor, AlertHubOptions options = {});
  ~AlertHub();

  AlertHub(const AlertHub&) = delete;
  AlertHub& operator=(const AlertHub&) = delete;

  // Broadcasts `changes` (as returned by ApplyBatch or UpdateAlert, already
  // durable) to every matching stream; changes for which
  // engine::ShouldNotify() is false are not delivered. Never blocks on a
  // subscriber. CONTRACT: calls must come in increasing sequence order
  // (AlertEngine keeps it when it is the publisher); a change older than one
  // already published is counted nowhere and may be missed by live streams
  // (they would still find it after a reconnect).
  void Publish(std::vector<v1::AlertChange> changes) override ABSL_LOCKS_EXCLUDED(mu_);

  // The StreamAlerts handler. Invalid requests finish at once with
  // INVALID_ARGUMENT naming the field; after Shutdown(), with UNAVAILABLE.
  // `authorized` (may be null) is asked on every RecheckStreams() and
  // heartbeat tick; once it returns an error the stream ends with it. It must
  // be cheap, must not block and must not call into the hub.
  grpc::ServerWriteReactor<v1::StreamAlertsResponse>* StartStream(
      grpc::CallbackServerContext* ctx, const v1::StreamAlertsRequest* request,
      std::function<absl::Status()> authorized = nullptr) ABSL_LOCKS_EXCLUDED(mu_);

  // Asks every open stream's `authorized` again (after a token was revoked
  // or a user disabled) and ends those no longer allowed.
  void RecheckStreams() ABSL_LOCKS_EXCLUDED(mu_);

  // Ends every stream with UNAVAILABLE and refuses new ones. Idempotent. Does
  // not wait for the streams to be done (the gRPC server's Shutdown does).
  void Shutdown() ABSL_LOCKS_EXCLUDED(mu_);

  AlertHubStats stats() const ABSL_LOCKS_EXCLUDED(mu_);

  // OK, or INVALID_ARGUMENT naming the offending field.
  static absl::Status ValidateRequest(const v1::StreamAlertsRequest& request);
  // Whether `change` passes the request's filters (ShouldNotify aside).
  static bool Matches(const v1::StreamAlertsRequest& request, const v1::AlertChange& change);

 private:
  friend class AlertStream;

  void Unregister(AlertStream* stream) ABSL_LOCKS_EXCLUDED(mu_);
  void StreamDestroyed() ABSL_LOCKS_EXCLUDED(mu_);
  void TickerLoop() ABSL_LOCKS_EXCLUDED(mu_);

  engine::AlertEngine* const engine_;
  Executor* const executor_;
  const AlertHubOptions options_;

  // The highest sequence seen by Publish or read from the store.
  std::atomic<uint64_t> latest_sequence_{0};

  // Counters, updated by streams without the hub's mutex.
  std::atomic<int64_t> delivered_{0};
  std::atomic<int64_t> dropped_{0};
  std::atomic<int64_t> catch_ups_{0};
  std::atomic<int64_t> byte_overflows_{0};
  std::atomic<int64_t> gaps_{0};
  std::atomic<int64_t> heartbeats_{0};
  std::atomic<int64_t> published_{0};

  mutable absl::Mutex mu_;
  std::unordered_set<AlertStream*> streams_ ABSL_GUARDED_BY(mu_);
  // Stream objects not yet deleted (registered or not).
  int64_t alive_ ABSL_GUARDED_BY(mu_) = 0;
  bool shutting_down_ ABSL_GUARDED_BY(mu_) = false;
  bool stop_ticker_ ABSL_GUARDED_BY(mu_) = false;
  std::thread ticker_;
};

}  // namespace pantherd::server

#endif  // PANTHERD_SERVER_ALERT_HUB_H_
