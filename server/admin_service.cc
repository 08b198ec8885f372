// AdminService: users, API tokens and the audit trail (GetServerStatus is in
// services.cc). Reads come from the Authenticator's memory and answer on the
// gRPC thread; changes and audit queries touch the disk and run on the
// Executor.
#include <functional>
#include <utility>
#include <vector>

#include "server/call_auth.h"
#include "server/service_helpers.h"
#include "server/services.h"

namespace pantherd::server {

grpc::ServerUnaryReactor* AdminServiceImpl::WhoAmI(grpc::CallbackServerContext* ctx,
                                                   const v1::WhoAmIRequest* req,
                                                   v1::WhoAmIResponse* resp) {
  PANTHERD_AUTHORIZE_REQUEST(caller, req);
  *resp = env_->auth->WhoAmI(caller);
  return FinishUnary(ctx, grpc::Status::OK);
}

grpc::ServerUnaryReactor* AdminServiceImpl::CreateUser(grpc::CallbackServerContext* ctx,
                                                       const v1::CreateUserRequest* req,
                                                       v1::CreateUserResponse* resp) {
  PANTHERD_AUTHORIZE_REQUEST(caller, req);
  return RunBlocking(ctx, env_->executor, [env = env_, req, resp]() -> grpc::Status {
    absl::StatusOr<v1::User> user = env->auth->CreateUser(*req);
    if (!user.ok()) return ToGrpcStatus(user.status());
    *resp->mutable_user() = std::move(*user);
    return grpc::Status::OK;
  });
}

grpc::ServerUnaryReactor* AdminServiceImpl::ListUsers(grpc::CallbackServerContext* ctx,
                                                      const v1::ListUsersRequest* req,
                                                      v1::ListUsersResponse* resp) {
  PANTHERD_AUTHORIZE_REQUEST(caller, req);
  for (v1::User& user : env_->auth->ListUsers(req->include_disabled())) {
    *resp->add_users() = std::move(user);
  }
  return FinishUnary(ctx, grpc::Status::OK);
}

grpc::ServerUnaryReactor* AdminServiceImpl::UpdateUser(grpc::CallbackServerContext* ctx,
                                                       const v1::UpdateUserRequest* req,
                                                       v1::UpdateUserResponse* resp) {
  PANTHERD_AUTHORIZE_REQUEST(caller, req);
  return RunBlocking(ctx, env_->executor, [env = env_, req, resp]() -> grpc::Status {
    absl::StatusOr<v1::User> user = env->auth->UpdateUser(*req);
    if (!user.ok()) return ToGrpcStatus(user.status());
    *resp->mutable_user() = std::move(*user);
    return grpc::Status::OK;
  });
}

grpc::ServerUnaryReactor* AdminServiceImpl::CreateToken(grpc::CallbackServerContext* ctx,
                                                        const v1::CreateTokenRequest* req,
                                                        v1::CreateTokenResponse* resp) {
  PANTHERD_AUTHORIZE_REQUEST(caller, req);
  return RunBlocking(ctx, env_->executor, [env = env_, req, resp, caller]() -> grpc::Status {
    absl::StatusOr<v1::CreateTokenResponse> created = env->auth->CreateToken(caller, *req);
    if (!created.ok()) return ToGrpcStatus(created.status());
    *resp = std::move(*created);
    return grpc::Status::OK;
  });
}

grpc::ServerUnaryReactor* AdminServiceImpl::ListTokens(grpc::CallbackServerContext* ctx,
                                                       const v1::ListTokensRequest* req,
                                                       v1::ListTokensResponse* resp) {
  PANTHERD_AUTHORIZE_REQUEST(caller, req);
  absl::StatusOr<std::vector<v1::Token>> tokens = env_->auth->ListTokens(caller, *req);
  if (!tokens.ok()) return FinishUnary(ctx, ToGrpcStatus(tokens.status()));
  for (v1::Token& token : *tokens) *resp->add_tokens() = std::move(token);
  return FinishUnary(ctx, grpc::Status::OK);
}

grpc::ServerUnaryReactor* AdminServiceImpl::RevokeToken(grpc::CallbackServerContext* ctx,
                                                        const v1::RevokeTokenRequest* req,
                                                        v1::RevokeTokenResponse* resp) {
  PANTHERD_AUTHORIZE_REQUEST(caller, req);
  return RunBlocking(ctx, env_->executor, [env = env_, req, resp, caller]() -> grpc::Status {
    absl::StatusOr<v1::Token> token = env->auth->RevokeToken(caller, *req);
    if (!token.ok()) return ToGrpcStatus(token.status());
    *resp->mutable_token() = std::move(*token);
    return grpc::Status::OK;
  });
}

grpc::ServerUnaryReactor* AdminServiceImpl::ListAuditEvents(grpc::CallbackServerContext* ctx,
                                                            const v1::ListAuditEventsRequest* req,
                                                            v1::ListAuditEventsResponse* resp) {
  PANTHERD_AUTHORIZE_REQUEST(caller, req);
  return RunBlocking(ctx, env_->executor, [env = env_, req, resp]() -> grpc::Status {
    // Events recorded just before this call are listed too.
    env->audit->Drain();
    absl::StatusOr<v1::ListAuditEventsResponse> list = env->audit->List(*req);
    if (!list.ok()) return ToGrpcStatus(list.status());
    *resp = std::move(*list);
    return grpc::Status::OK;
  });
}

}  // namespace pantherd::server
