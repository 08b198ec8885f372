#include "server/service_helpers.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "server/services.h"
#include "server/version.h"

namespace pantherd::server {

grpc::ServerUnaryReactor* FinishUnary(grpc::CallbackServerContext* ctx, grpc::Status status) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  reactor->Finish(std::move(status));
  return reactor;
}

grpc::ServerUnaryReactor* RunBlocking(grpc::CallbackServerContext* ctx, Executor* executor,
                                      std::function<grpc::Status()> work) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  if (!executor->Submit([reactor, work = std::move(work)] { reactor->Finish(work()); })) {
    reactor->Finish(grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                                 "pantherd is overloaded: its queue of blocking work is full; "
                                 "retry with backoff"));
  }
  return reactor;
}

grpc::Status InvalidField(absl::string_view field, absl::string_view problem) {
  return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, absl::StrCat(field, ": ", problem));
}

absl::StatusOr<engine::PreparedBatch> PrepareBatch(ServiceEnv& env,
                                                   const v1::IngestEventsRequest& request) {
  absl::StatusOr<engine::PreparedBatch> prepared = env.ingest->Prepare(request);
  if (!prepared.ok() && env.metrics != nullptr) env.metrics->batches_failed.Add();
  return prepared;
}

absl::StatusOr<engine::IngestResult> CommitAndPublish(ServiceEnv& env, engine::PreparedBatch batch,
                                                      const engine::ExtraWrites& extra) {
  // The alert engine publishes the changes (to the hub) as it commits them.
  absl::StatusOr<engine::IngestResult> result = env.ingest->Commit(std::move(batch), extra);
  if (env.metrics != nullptr) {
    (result.ok() ? env.metrics->batches : env.metrics->batches_failed).Add();
  }
  // New alerts wrote outbox intents in the same commit: route them now.
  if (result.ok() && !result->changes.empty() && env.deliveries != nullptr) {
    env.deliveries->Wake();
  }
  return result;
}

absl::StatusOr<engine::IngestResult> IngestAndPublish(ServiceEnv& env,
                                                      const v1::IngestEventsRequest& request,
                                                      const engine::ExtraWrites& extra) {
  // Batches are evaluated concurrently (each stream or poller on its own
  // executor thread), then stored and published in one order, so that
  // subscribers see sequences increase.
  absl::StatusOr<engine::PreparedBatch> prepared = PrepareBatch(env, request);
  if (!prepared.ok()) return prepared.status();
  return CommitAndPublish(env, *std::move(prepared), extra);
}

MetricsInputs LiveMetricsInputs(const ServiceEnv& env) {
  MetricsInputs in;
  in.engine = env.metrics;
  in.pool = env.pool;
  in.hub = env.hub;
  in.deliveries = env.deliveries;
  in.executor = env.executor;
  in.evaluation = env.evaluation;
  in.sources = env.sources;
  in.start_time = env.start_time;
  in.version = std::string(kVersion);
  return in;
}

}  // namespace pantherd::server
