// DetectionService's source RPCs: AddSource, ListSources, RemoveSource,
// SetSourcePaused and TestSource, answered by the SourceManager on the executor (the manager
// writes to the store and may wait for a poller to stop).
#include <utility>

#include "server/call_auth.h"
#include "server/service_helpers.h"
#include "server/services.h"

namespace pantherd::server {
namespace {

grpc::Status NoSources() {
  return grpc::Status(grpc::StatusCode::UNAVAILABLE, "sources are not available in this server");
}

}  // namespace

grpc::ServerUnaryReactor* DetectionServiceImpl::AddSource(grpc::CallbackServerContext* ctx,
                                                          const v1::AddSourceRequest* req,
                                                          v1::AddSourceResponse* resp) {
  PANTHERD_AUTHORIZE_REQUEST(caller, req);
  if (env_->sources == nullptr) return FinishUnary(ctx, NoSources());
  if (req->label().empty()) return FinishUnary(ctx, InvalidField("label", "is required"));
  return RunBlocking(ctx, env_->executor, [env = env_, req, resp]() -> grpc::Status {
    absl::StatusOr<v1::AddSourceResponse> added = env->sources->Add(*req);
    if (!added.ok()) return ToGrpcStatus(added.status());
    *resp = std::move(*added);
    return grpc::Status::OK;
  });
}

grpc::ServerUnaryReactor* DetectionServiceImpl::TestSource(grpc::CallbackServerContext* ctx,
                                                           const v1::TestSourceRequest* req,
                                                           v1::TestSourceResponse* resp) {
  PANTHERD_AUTHORIZE_REQUEST(caller, req);
  if (env_->sources == nullptr) return FinishUnary(ctx, NoSources());
  if (req->id().empty()) return FinishUnary(ctx, InvalidField("id", "is required"));
  return RunBlocking(ctx, env_->executor, [env = env_, req, resp]() -> grpc::Status {
    absl::StatusOr<v1::TestSourceResponse> tested = env->sources->Test(req->id());
    if (!tested.ok()) return ToGrpcStatus(tested.status());
    *resp = std::move(*tested);
    return grpc::Status::OK;
  });
}

grpc::ServerUnaryReactor* DetectionServiceImpl::ListSources(grpc::CallbackServerContext* ctx,
                                                            const v1::ListSourcesRequest* req,
                                                            v1::ListSourcesResponse* resp) {
  PANTHERD_AUTHORIZE_REQUEST(caller, req);
  if (env_->sources == nullptr) return FinishUnary(ctx, NoSources());
  return RunBlocking(ctx, env_->executor, [env = env_, resp]() -> grpc::Status {
    absl::StatusOr<std::vector<v1::Source>> sources = env->sources->List();
    if (!sources.ok()) return ToGrpcStatus(sources.status());
    for (v1::Source& s : *sources) *resp->add_sources() = std::move(s);
    return grpc::Status::OK;
  });
}

grpc::ServerUnaryReactor* DetectionServiceImpl::RemoveSource(grpc::CallbackServerContext* ctx,
                                                             const v1::RemoveSourceRequest* req,
                                                             v1::RemoveSourceResponse*) {
  PANTHERD_AUTHORIZE_REQUEST(caller, req);
  if (env_->sources == nullptr) return FinishUnary(ctx, NoSources());
  if (req->id().empty()) return FinishUnary(ctx, InvalidField("id", "is required"));
  return RunBlocking(ctx, env_->executor, [env = env_, req]() -> grpc::Status {
    return ToGrpcStatus(env->sources->Remove(req->id()));
  });
}

grpc::ServerUnaryReactor* DetectionServiceImpl::SetSourcePaused(
    grpc::CallbackServerContext* ctx, const v1::SetSourcePausedRequest* req,
    v1::SetSourcePausedResponse* resp) {
  PANTHERD_AUTHORIZE_REQUEST(caller, req);
  if (env_->sources == nullptr) return FinishUnary(ctx, NoSources());
  if (req->id().empty()) return FinishUnary(ctx, InvalidField("id", "is required"));
  return RunBlocking(ctx, env_->executor, [env = env_, req, resp]() -> grpc::Status {
    absl::StatusOr<v1::Source> source =
        env->sources->SetPaused(req->id(), req->paused(), req->api_token());
    if (!source.ok()) return ToGrpcStatus(source.status());
    *resp->mutable_source() = std::move(*source);
    return grpc::Status::OK;
  });
}

}  // namespace pantherd::server
