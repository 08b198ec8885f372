// Helpers shared by the gRPC handlers of pantherd (services.cc,
// source_service.cc) and by the paths that ingest events (IngestEvents and the
// source pollers). Internal to pantherd_server.
#ifndef PANTHERD_SERVER_SERVICE_HELPERS_H_
#define PANTHERD_SERVER_SERVICE_HELPERS_H_

#include <functional>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "engine/alert_engine.h"
#include "engine/ingest_pipeline.h"
#include "grpcpp/grpcpp.h"
#include "pantherd/v1/sources.pb.h"
#include "server/executor.h"
#include "server/metrics.h"

namespace pantherd::server {

class ServiceEnv;

// Finishes a unary call at once with `status`; returns its reactor.
grpc::ServerUnaryReactor* FinishUnary(grpc::CallbackServerContext* ctx, grpc::Status status);

// Runs `work` on the executor and finishes the unary call with its status;
// RESOURCE_EXHAUSTED at once when the executor's queue is full. Never blocks
// the calling (gRPC) thread.
grpc::ServerUnaryReactor* RunBlocking(grpc::CallbackServerContext* ctx, Executor* executor,
                                      std::function<grpc::Status()> work);

// INVALID_ARGUMENT "<field>: <problem>".
grpc::Status InvalidField(absl::string_view field, absl::string_view problem);

// The two halves of IngestAndPublish, for callers that overlap the
// evaluation of one batch with the commit of the previous one. PrepareBatch
// normalises and evaluates (IngestPipeline::Prepare; counts a failure);
// CommitAndPublish commits; the alert engine publishes the changes to the
// hub as it commits them (in sequence order). Blocking: executor or poller
// threads only.
absl::StatusOr<engine::PreparedBatch> PrepareBatch(ServiceEnv& env,
                                                   const v1::IngestEventsRequest& request);
absl::StatusOr<engine::IngestResult> CommitAndPublish(ServiceEnv& env,
                                                      engine::PreparedBatch batch,
                                                      const engine::ExtraWrites& extra = nullptr);

// Ingests one batch through env.ingest (with `extra` in its atomic write)
// and, once durable, publishes its alert changes to env.hub. Evaluation
// (IngestPipeline::Prepare) runs concurrently with other batches; the alert
// engine serialises the commit and the publication, so subscribers see
// sequences in order. Returns the
// result (its changes already handed to the hub) or the error of Ingest, in
// which case nothing was stored nor published. Blocking (evaluation, disk):
// call from the executor or a poller thread, never a gRPC thread.
absl::StatusOr<engine::IngestResult> IngestAndPublish(ServiceEnv& env,
                                                      const v1::IngestEventsRequest& request,
                                                      const engine::ExtraWrites& extra = nullptr);

// The components of `env` that pantherd's figures are collected from
// (server/metrics.h), with `version` and env.start_time.
MetricsInputs LiveMetricsInputs(const ServiceEnv& env);

}  // namespace pantherd::server

#endif  // PANTHERD_SERVER_SERVICE_HELPERS_H_
