// The audit trail: who did what, when, to what, with what result.
//
// WHAT IS RECORDED. Every call of a method that changes state (MethodRule::
// changes_state in server/auth.h) and every call refused with
// UNAUTHENTICATED or PERMISSION_DENIED, whatever the method. An event holds
// the time, the actor (user and token name, looked up from the call's token;
// empty when it had none or an unknown one), the action (the method,
// "pantherd.v1.DetectionService/UploadRule"), the target (the request field
// named in the permission table, e.g. the rule id), the result ("OK" or the
// status code name), the status message for failures, and the peer. Request
// and response bodies are never recorded, so secrets (API tokens, a source's
// Okta token) cannot reach the trail.
//
// HOW. A gRPC server interceptor (NewAuditInterceptorFactory) sees every
// pantherd.v1 call: it reads the target from the request when it arrives and
// records the event when the status is sent. Recording never blocks: events go
// into a bounded queue that one writer thread stores in Family::kAudit, keyed
// by be64(sequence) from the store counter "audit_seq". When the queue is full
// the event is dropped and counted (dropped()), and the log says so.
//
// THREAD-SAFETY. All methods are thread-safe.
#ifndef PANTHERD_SERVER_AUDIT_H_
#define PANTHERD_SERVER_AUDIT_H_

#include <cstdint>
#include <deque>
#include <memory>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "grpcpp/support/server_interceptor.h"
#include "pantherd/v1/admin_service.pb.h"
#include "server/auth.h"
#include "store/store.h"

namespace pantherd::server {

class AuditLog {
 public:
  // `store` is not owned and must outlive this object. At most `capacity`
  // events wait for the writer.
  explicit AuditLog(store::Store* store, size_t capacity = 8192);
  // Stops, writing what is queued.
  ~AuditLog();

  AuditLog(const AuditLog&) = delete;
  AuditLog& operator=(const AuditLog&) = delete;

  // Queues `event` (its sequence is assigned when stored). Never blocks;
  // drops and counts the event when the queue is full or after Stop().
  void Record(v1::AuditEvent event) ABSL_LOCKS_EXCLUDED(mu_);

  // Waits until every event queued before the call is stored (or failed).
  void Drain() ABSL_LOCKS_EXCLUDED(mu_);

  // Stores what is queued, then stops the writer. Idempotent.
  void Stop() ABSL_LOCKS_EXCLUDED(mu_);

  // Events newest first, filtered as documented on ListAuditEventsRequest.
  // Blocks on disk. InvalidArgument names a bad page token or page size;
  // DataLoss for an unreadable record.
  absl::StatusOr<v1::ListAuditEventsResponse> List(const v1::ListAuditEventsRequest& req) const;

  int64_t dropped() const ABSL_LOCKS_EXCLUDED(mu_);
  int64_t write_failures() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  void WriterLoop() ABSL_LOCKS_EXCLUDED(mu_);

  store::Store* const store_;
  const size_t capacity_;
  mutable absl::Mutex mu_;
  std::deque<v1::AuditEvent> queue_ ABSL_GUARDED_BY(mu_);
  // Events taken by the writer and not yet stored.
  size_t in_flight_ ABSL_GUARDED_BY(mu_) = 0;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  int64_t dropped_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t write_failures_ ABSL_GUARDED_BY(mu_) = 0;
  std::thread writer_;
};

// The interceptor that feeds `log` (see the file comment); `auth` names the
// actor. Both must outlive the gRPC server. Calls outside pantherd.v1
// (health, reflection) are not intercepted.
std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface> NewAuditInterceptorFactory(
    AuditLog* log, const Authenticator* auth);

// The target of a call to `method` whose received request is `request` (the
// deserialized message as the interceptor sees it): the value of the table's
// target_field, "<n> <field>" for a repeated field; "" when the method has no
// target field or is unknown. Exposed for tests.
std::string AuditTarget(absl::string_view method, const void* request);

}  // namespace pantherd::server

#endif  // PANTHERD_SERVER_AUDIT_H_
