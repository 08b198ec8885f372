// The gRPC services pantherd serves: DetectionService and AdminService.
//
// Every handler starts with PANTHERD_AUTHORIZE (server/call_auth.h), which
// checks the caller against the permission table of server/auth.h.
//
// Handlers use gRPC's callback API. They never block a gRPC thread on disk or
// Python: blocking work is handed to the shared Executor, whose thread
// finishes the call; when its bounded queue is full the call fails with
// RESOURCE_EXHAUSTED at once. Every method of both services is implemented
// (the handlers are in services.cc, source_service.cc and admin_service.cc);
// none answers UNIMPLEMENTED.
#ifndef PANTHERD_SERVER_SERVICES_H_
#define PANTHERD_SERVER_SERVICES_H_

#include <functional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "engine/alert_engine.h"
#include "engine/ingest_pipeline.h"
#include "engine/metrics.h"
#include "engine/rule_set_manager.h"
#include "engine/rule_store.h"
#include "engine/worker_pool.h"
#include "pantherd/v1/admin_service.grpc.pb.h"
#include "pantherd/v1/detection_service.grpc.pb.h"
#include "proto/base/clock.h"
#include "server/alert_hub.h"
#include "server/audit.h"
#include "server/auth.h"
#include "server/delivery_manager.h"
#include "server/executor.h"
#include "server/source_manager.h"
#include "store/store.h"

namespace pantherd::server {

// What the services share: the components they call, wired once by the
// server at start (server.cc) before any service is registered, then only
// read. Every pointer is non-owning and, once CheckWired() has passed,
// non-null (but `sources`, which the server clears while shutting down after
// the gRPC server has stopped), and its target outlives the services. The
// components are thread-safe themselves; ServiceEnv adds no locking but for
// the listen address, which is set after the server binds.
class ServiceEnv {
 public:
  // OK when every component a service may call is set; FailedPrecondition
  // naming the first one missing otherwise. The server calls it before
  // serving, so a wiring mistake stops start-up instead of crashing a call.
  absl::Status CheckWired() const;

  store::Store* store = nullptr;
  // Blocking work (disk) off the gRPC threads.
  Executor* executor = nullptr;
  // Work that waits on rule workers (ingested batches, test runs), bounded
  // on its own so the rest of the API never queues behind it.
  Executor* evaluation = nullptr;
  // Replays (ReplayRules), one at a time on a thread of their own: a replay
  // may run for minutes and must never hold a thread that live batches
  // need. Queued replays wait; beyond its queue, RESOURCE_EXHAUSTED.
  Executor* replays = nullptr;
  engine::RuleStore* rule_store = nullptr;
  engine::RuleSetManager* rules = nullptr;
  engine::AlertEngine* alerts = nullptr;
  engine::IngestPipeline* ingest = nullptr;
  // Streams alert changes to subscribers; the alert engine publishes to it
  // (AlertEngine::SetPublisher), in sequence order.
  AlertHub* hub = nullptr;
  // Event sources and their pollers (source_service.cc).
  SourceManager* sources = nullptr;
  // Alert destinations and the delivery of alerts to them
  // (destination_service.cc); woken after every commit that may have
  // written outbox intents.
  DeliveryManager* deliveries = nullptr;
  // Who may call what (server/call_auth.h), the audit trail, and the runner
  // that delays answers to callers presenting unknown tokens.
  Authenticator* auth = nullptr;
  AuditLog* audit = nullptr;
  DelayedRunner* delayed = nullptr;
  // pantherd's own figures (GetServerStatus, GET /metrics): the ingestion
  // counters, and the worker pool whose Stats() they include.
  engine::EngineMetrics* metrics = nullptr;
  engine::WorkerPool* pool = nullptr;
  // The processing clock (absl::Now, or --test-clock-file's): triage times.
  base::Clock now = base::RealClock();
  absl::Time start_time;
  std::string data_dir;

  // The bound address, known only once the server has started. Thread-safe.
  void set_listen_address(std::string address) ABSL_LOCKS_EXCLUDED(mu_);
  std::string listen_address() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  mutable absl::Mutex mu_;
  std::string listen_address_ ABSL_GUARDED_BY(mu_);
};

class DetectionServiceImpl final : public v1::DetectionService::CallbackService {
 public:
  explicit DetectionServiceImpl(ServiceEnv* env) : env_(env) {}

  grpc::ServerUnaryReactor* UploadRule(grpc::CallbackServerContext* ctx,
                                       const v1::UploadRuleRequest* req,
                                       v1::UploadRuleResponse* resp) override;
  grpc::ServerUnaryReactor* GetRule(grpc::CallbackServerContext* ctx, const v1::GetRuleRequest* req,
                                    v1::GetRuleResponse* resp) override;
  grpc::ServerUnaryReactor* ListRules(grpc::CallbackServerContext* ctx,
                                      const v1::ListRulesRequest* req,
                                      v1::ListRulesResponse* resp) override;
  grpc::ServerUnaryReactor* DeleteRule(grpc::CallbackServerContext* ctx,
                                       const v1::DeleteRuleRequest* req,
                                       v1::DeleteRuleResponse* resp) override;
  grpc::ServerUnaryReactor* SetRuleEnabled(grpc::CallbackServerContext* ctx,
                                           const v1::SetRuleEnabledRequest* req,
                                           v1::SetRuleEnabledResponse* resp) override;
  grpc::ServerUnaryReactor* RunTests(grpc::CallbackServerContext* ctx,
                                     const v1::RunTestsRequest* req,
                                     v1::RunTestsResponse* resp) override;
  grpc::ServerBidiReactor<v1::IngestEventsRequest, v1::IngestEventsResponse>* IngestEvents(
      grpc::CallbackServerContext* ctx) override;
  grpc::ServerUnaryReactor* AddSource(grpc::CallbackServerContext* ctx,
                                      const v1::AddSourceRequest* req,
                                      v1::AddSourceResponse* resp) override;
  grpc::ServerUnaryReactor* ListSources(grpc::CallbackServerContext* ctx,
                                        const v1::ListSourcesRequest* req,
                                        v1::ListSourcesResponse* resp) override;
  grpc::ServerUnaryReactor* RemoveSource(grpc::CallbackServerContext* ctx,
                                         const v1::RemoveSourceRequest* req,
                                         v1::RemoveSourceResponse* resp) override;
  grpc::ServerUnaryReactor* SetSourcePaused(grpc::CallbackServerContext* ctx,
                                            const v1::SetSourcePausedRequest* req,
                                            v1::SetSourcePausedResponse* resp) override;
  grpc::ServerUnaryReactor* TestSource(grpc::CallbackServerContext* ctx,
                                       const v1::TestSourceRequest* req,
                                       v1::TestSourceResponse* resp) override;
  grpc::ServerWriteReactor<v1::StreamAlertsResponse>* StreamAlerts(
      grpc::CallbackServerContext* ctx, const v1::StreamAlertsRequest* req) override;
  grpc::ServerUnaryReactor* ListAlerts(grpc::CallbackServerContext* ctx,
                                       const v1::ListAlertsRequest* req,
                                       v1::ListAlertsResponse* resp) override;
  grpc::ServerUnaryReactor* GetAlert(grpc::CallbackServerContext* ctx,
                                     const v1::GetAlertRequest* req,
                                     v1::GetAlertResponse* resp) override;
  grpc::ServerUnaryReactor* ListAlertEvents(grpc::CallbackServerContext* ctx,
                                            const v1::ListAlertEventsRequest* req,
                                            v1::ListAlertEventsResponse* resp) override;
  grpc::ServerUnaryReactor* AddDestination(grpc::CallbackServerContext* ctx,
                                           const v1::AddDestinationRequest* req,
                                           v1::AddDestinationResponse* resp) override;
  grpc::ServerUnaryReactor* ListDestinations(grpc::CallbackServerContext* ctx,
                                             const v1::ListDestinationsRequest* req,
                                             v1::ListDestinationsResponse* resp) override;
  grpc::ServerUnaryReactor* GetDestination(grpc::CallbackServerContext* ctx,
                                           const v1::GetDestinationRequest* req,
                                           v1::GetDestinationResponse* resp) override;
  grpc::ServerUnaryReactor* UpdateDestination(grpc::CallbackServerContext* ctx,
                                              const v1::UpdateDestinationRequest* req,
                                              v1::UpdateDestinationResponse* resp) override;
  grpc::ServerUnaryReactor* RemoveDestination(grpc::CallbackServerContext* ctx,
                                              const v1::RemoveDestinationRequest* req,
                                              v1::RemoveDestinationResponse* resp) override;
  grpc::ServerUnaryReactor* TestDestination(grpc::CallbackServerContext* ctx,
                                            const v1::TestDestinationRequest* req,
                                            v1::TestDestinationResponse* resp) override;
  grpc::ServerUnaryReactor* ResendAlert(grpc::CallbackServerContext* ctx,
                                        const v1::ResendAlertRequest* req,
                                        v1::ResendAlertResponse* resp) override;
  grpc::ServerWriteReactor<v1::SearchEventsResponse>* SearchEvents(
      grpc::CallbackServerContext* ctx, const v1::SearchEventsRequest* req) override;
  grpc::ServerWriteReactor<v1::StreamAlertEventsResponse>* StreamAlertEvents(
      grpc::CallbackServerContext* ctx, const v1::StreamAlertEventsRequest* req) override;
  grpc::ServerUnaryReactor* ListWindows(grpc::CallbackServerContext* ctx,
                                        const v1::ListWindowsRequest* req,
                                        v1::ListWindowsResponse* resp) override;
  grpc::ServerUnaryReactor* ExplainEvent(grpc::CallbackServerContext* ctx,
                                         const v1::ExplainEventRequest* req,
                                         v1::ExplainEventResponse* resp) override;
  grpc::ServerWriteReactor<v1::ReplayRulesResponse>* ReplayRules(
      grpc::CallbackServerContext* ctx, const v1::ReplayRulesRequest* req) override;
  grpc::ServerUnaryReactor* UpdateAlert(grpc::CallbackServerContext* ctx,
                                        const v1::UpdateAlertRequest* req,
                                        v1::UpdateAlertResponse* resp) override;

 private:
  ServiceEnv* env_;
};

class AdminServiceImpl final : public v1::AdminService::CallbackService {
 public:
  explicit AdminServiceImpl(ServiceEnv* env) : env_(env) {}

  grpc::ServerUnaryReactor* GetServerStatus(grpc::CallbackServerContext* ctx,
                                            const v1::GetServerStatusRequest* req,
                                            v1::GetServerStatusResponse* resp) override;
  grpc::ServerUnaryReactor* WhoAmI(grpc::CallbackServerContext* ctx, const v1::WhoAmIRequest* req,
                                   v1::WhoAmIResponse* resp) override;
  grpc::ServerUnaryReactor* CreateUser(grpc::CallbackServerContext* ctx,
                                       const v1::CreateUserRequest* req,
                                       v1::CreateUserResponse* resp) override;
  grpc::ServerUnaryReactor* ListUsers(grpc::CallbackServerContext* ctx,
                                      const v1::ListUsersRequest* req,
                                      v1::ListUsersResponse* resp) override;
  grpc::ServerUnaryReactor* UpdateUser(grpc::CallbackServerContext* ctx,
                                       const v1::UpdateUserRequest* req,
                                       v1::UpdateUserResponse* resp) override;
  grpc::ServerUnaryReactor* CreateToken(grpc::CallbackServerContext* ctx,
                                        const v1::CreateTokenRequest* req,
                                        v1::CreateTokenResponse* resp) override;
  grpc::ServerUnaryReactor* ListTokens(grpc::CallbackServerContext* ctx,
                                       const v1::ListTokensRequest* req,
                                       v1::ListTokensResponse* resp) override;
  grpc::ServerUnaryReactor* RevokeToken(grpc::CallbackServerContext* ctx,
                                        const v1::RevokeTokenRequest* req,
                                        v1::RevokeTokenResponse* resp) override;
  grpc::ServerUnaryReactor* ListAuditEvents(grpc::CallbackServerContext* ctx,
                                            const v1::ListAuditEventsRequest* req,
                                            v1::ListAuditEventsResponse* resp) override;

 private:
  ServiceEnv* env_;
};

// Maps an absl::Status onto the same canonical gRPC code and message.
grpc::Status ToGrpcStatus(const absl::Status& status);

}  // namespace pantherd::server

#endif  // PANTHERD_SERVER_SERVICES_H_
