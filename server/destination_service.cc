// DetectionService's destination RPCs (AddDestination, ListDestinations,
// GetDestination, UpdateDestination, RemoveDestination, TestDestination) and
// ResendAlert, answered by the DeliveryManager on the executor (they write to
// the store; TestDestination waits for the receiver, at most the delivery
// timeout). No answer carries a secret.
#include <utility>

#include "server/call_auth.h"
#include "server/service_helpers.h"
#include "server/services.h"

namespace pantherd::server {

grpc::ServerUnaryReactor* DetectionServiceImpl::AddDestination(grpc::CallbackServerContext* ctx,
                                                               const v1::AddDestinationRequest* req,
                                                               v1::AddDestinationResponse* resp) {
  PANTHERD_AUTHORIZE_REQUEST(caller, req);
  if (req->name().empty()) return FinishUnary(ctx, InvalidField("name", "is required"));
  if (req->kind().empty()) return FinishUnary(ctx, InvalidField("kind", "is required"));
  return RunBlocking(ctx, env_->executor, [env = env_, req, resp, caller]() -> grpc::Status {
    absl::StatusOr<v1::Destination> added = env->deliveries->AddDestination(*req, caller.user);
    if (!added.ok()) return ToGrpcStatus(added.status());
    *resp->mutable_destination() = std::move(*added);
    return grpc::Status::OK;
  });
}

grpc::ServerUnaryReactor* DetectionServiceImpl::ListDestinations(
    grpc::CallbackServerContext* ctx, const v1::ListDestinationsRequest* req,
    v1::ListDestinationsResponse* resp) {
  PANTHERD_AUTHORIZE_REQUEST(caller, req);
  // Memory only, but kept off the gRPC thread like every other reader.
  return RunBlocking(ctx, env_->executor, [env = env_, resp]() -> grpc::Status {
    *resp = env->deliveries->ListDestinations();
    return grpc::Status::OK;
  });
}

grpc::ServerUnaryReactor* DetectionServiceImpl::GetDestination(grpc::CallbackServerContext* ctx,
                                                               const v1::GetDestinationRequest* req,
                                                               v1::GetDestinationResponse* resp) {
  PANTHERD_AUTHORIZE_REQUEST(caller, req);
  if (req->destination().empty()) {
    return FinishUnary(ctx, InvalidField("destination", "is required"));
  }
  return RunBlocking(ctx, env_->executor, [env = env_, req, resp]() -> grpc::Status {
    absl::StatusOr<v1::GetDestinationResponse> got =
        env->deliveries->GetDestination(req->destination());
    if (!got.ok()) return ToGrpcStatus(got.status());
    *resp = std::move(*got);
    return grpc::Status::OK;
  });
}

grpc::ServerUnaryReactor* DetectionServiceImpl::UpdateDestination(
    grpc::CallbackServerContext* ctx, const v1::UpdateDestinationRequest* req,
    v1::UpdateDestinationResponse* resp) {
  PANTHERD_AUTHORIZE_REQUEST(caller, req);
  if (req->destination().empty()) {
    return FinishUnary(ctx, InvalidField("destination", "is required"));
  }
  return RunBlocking(ctx, env_->executor, [env = env_, req, resp]() -> grpc::Status {
    absl::StatusOr<v1::Destination> updated = env->deliveries->UpdateDestination(*req);
    if (!updated.ok()) return ToGrpcStatus(updated.status());
    *resp->mutable_destination() = std::move(*updated);
    return grpc::Status::OK;
  });
}

grpc::ServerUnaryReactor* DetectionServiceImpl::RemoveDestination(
    grpc::CallbackServerContext* ctx, const v1::RemoveDestinationRequest* req,
    v1::RemoveDestinationResponse* resp) {
  PANTHERD_AUTHORIZE_REQUEST(caller, req);
  if (req->destination().empty()) {
    return FinishUnary(ctx, InvalidField("destination", "is required"));
  }
  return RunBlocking(ctx, env_->executor, [env = env_, req, resp]() -> grpc::Status {
    absl::StatusOr<int64_t> failed = env->deliveries->RemoveDestination(req->destination());
    if (!failed.ok()) return ToGrpcStatus(failed.status());
    resp->set_pending_failed(*failed);
    return grpc::Status::OK;
  });
}

grpc::ServerUnaryReactor* DetectionServiceImpl::TestDestination(
    grpc::CallbackServerContext* ctx, const v1::TestDestinationRequest* req,
    v1::TestDestinationResponse* resp) {
  PANTHERD_AUTHORIZE_REQUEST(caller, req);
  if (req->destination().empty()) {
    return FinishUnary(ctx, InvalidField("destination", "is required"));
  }
  return RunBlocking(ctx, env_->executor, [env = env_, req, resp]() -> grpc::Status {
    absl::StatusOr<v1::TestDestinationResponse> tested =
        env->deliveries->TestDestination(req->destination());
    if (!tested.ok()) return ToGrpcStatus(tested.status());
    *resp = std::move(*tested);
    return grpc::Status::OK;
  });
}

grpc::ServerUnaryReactor* DetectionServiceImpl::ResendAlert(grpc::CallbackServerContext* ctx,
                                                            const v1::ResendAlertRequest* req,
                                                            v1::ResendAlertResponse* resp) {
  PANTHERD_AUTHORIZE_REQUEST(caller, req);
  if (req->alert_id().empty()) return FinishUnary(ctx, InvalidField("alert_id", "is required"));
  return RunBlocking(ctx, env_->executor, [env = env_, req, resp]() -> grpc::Status {
    absl::StatusOr<std::vector<v1::AlertDelivery>> resent =
        env->deliveries->Resend(req->alert_id(), req->destination());
    if (!resent.ok()) return ToGrpcStatus(resent.status());
    for (v1::AlertDelivery& d : *resent) *resp->add_deliveries() = std::move(d);
    return grpc::Status::OK;
  });
}

}  // namespace pantherd::server
