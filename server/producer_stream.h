// A server-streaming call whose messages are produced by blocking code (disk
// reads, a SQL query) on an executor thread, written one at a time with
// gRPC's callback API. The producer blocks only its own executor thread,
// never a gRPC thread: Emit waits until the previous message was written.
//
//   return StartProducerStream<v1::StreamAlertEventsResponse>(
//       ctx, env_->executor,
//       [=](const ProducerEmit<v1::StreamAlertEventsResponse>& emit,
//           const std::atomic<bool>& cancelled) -> grpc::Status {
//         ... if (!emit(message)) return grpc::Status::CANCELLED; ...
//         return grpc::Status::OK;
//       });
//
// Bounded: one message in flight. A client that does not read for
// kProducerWriteTimeout makes Emit return false (the producer should stop);
// so does a cancelled call. When the executor's queue is full the call ends
// at once with RESOURCE_EXHAUSTED.
#ifndef PANTHERD_SERVER_PRODUCER_STREAM_H_
#define PANTHERD_SERVER_PRODUCER_STREAM_H_

#include <atomic>
#include <functional>
#include <utility>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
#include "server/executor.h"

namespace pantherd::server {

inline constexpr absl::Duration kProducerWriteTimeout = absl::Seconds(60);

// Writes one message; false when the call was cancelled, a write failed or
// the client stopped reading (then the producer should return).
template <typename Response>
using ProducerEmit = std::function<bool(Response)>;

template <typename Response>
class ProducerStreamReactor final : public grpc::ServerWriteReactor<Response> {
 public:
  using Produce =
      std::function<grpc::Status(const ProducerEmit<Response>&, const std::atomic<bool>&)>;

  explicit ProducerStreamReactor(Produce produce) : produce_(std::move(produce)) {}

  // Runs the producer (on an executor thread) and finishes the call.
  void Run() {
    ProducerEmit<Response> emit = [this](Response r) { return Emit(std::move(r)); };
    grpc::Status status = produce_(emit, cancelled_);
    {
      // Let the last write complete before finishing.
      absl::MutexLock lock(&mu_);
      auto idle = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return !writing_ || cancelled_; };
      mu_.AwaitWithTimeout(absl::Condition(&idle), kProducerWriteTimeout);
    }
    if (cancelled_ && status.ok()) status = grpc::Status(grpc::StatusCode::CANCELLED, "cancelled");
    this->Finish(status);
    Unref();
  }

  void OnWriteDone(bool ok) override {
    absl::MutexLock lock(&mu_);
    writing_ = false;
    if (!ok) cancelled_ = true;
  }
  void OnCancel() override {
    absl::MutexLock lock(&mu_);
    cancelled_ = true;
  }
  void OnDone() override { Unref(); }

  // Two references: the producer (Run) and gRPC (OnDone).
  void Unref() {
    if (refs_.fetch_sub(1) == 1) delete this;
  }

 private:
  bool Emit(Response r) {
    {
      absl::MutexLock lock(&mu_);
      auto idle = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return !writing_ || cancelled_; };
      if (!mu_.AwaitWithTimeout(absl::Condition(&idle), kProducerWriteTimeout)) {
        cancelled_ = true;  // the client stopped reading
        return false;
      }
      if (cancelled_) return false;
      current_ = std::move(r);
      writing_ = true;
    }
    this->StartWrite(&current_);
    return true;
  }

  Produce produce_;
  std::atomic<int> refs_{2};
  absl::Mutex mu_;
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  std::atomic<bool> cancelled_{false};
  Response current_;
};

// Starts a producer stream (see the file comment).
template <typename Response>
grpc::ServerWriteReactor<Response>* StartProducerStream(
    Executor* executor, typename ProducerStreamReactor<Response>::Produce produce) {
  auto* reactor = new ProducerStreamReactor<Response>(std::move(produce));
  if (!executor->Submit([reactor] { reactor->Run(); })) {
    reactor->Finish(grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                                 "pantherd is overloaded: its queue of blocking work is full; "
                                 "retry with backoff"));
    reactor->Unref();
  }
  return reactor;
}

}  // namespace pantherd::server

#endif  // PANTHERD_SERVER_PRODUCER_STREAM_H_
