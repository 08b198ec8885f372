// The one line every RPC handler starts with: PANTHERD_AUTHORIZE(caller), or
// PANTHERD_AUTHORIZE_REQUEST(caller, req) when it has a request message.
//
// Inside a handler of DetectionServiceImpl or AdminServiceImpl (whose context
// parameter is named `ctx`),
//
//   grpc::ServerUnaryReactor* DetectionServiceImpl::GetRule(
//       grpc::CallbackServerContext* ctx, const v1::GetRuleRequest* req, ...) {
//     PANTHERD_AUTHORIZE_REQUEST(caller, req);
//     ... caller.user is the authenticated user ...
//
// asks Authenticator::Check for the method "<service>/<handler name>" and,
// when the call is refused, ends it at once with UNAUTHENTICATED or
// PERMISSION_DENIED (the answer to an unknown token may be delayed, see
// FailureThrottle), whatever the kind of call (unary, server or bidi stream).
// Otherwise it declares `const Principal caller`. The check reads memory only,
// so it is safe on gRPC callback threads.
//
// Handlers that receive a request message at once (unary and server-streaming
// calls) start with PANTHERD_AUTHORIZE_REQUEST(caller, req) instead: after the
// token check it refuses a request larger than the method's limit
// (server/request_limits.h) with RESOURCE_EXHAUSTED, before any work.
#ifndef PANTHERD_SERVER_CALL_AUTH_H_
#define PANTHERD_SERVER_CALL_AUTH_H_

#include <string>
#include <type_traits>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "grpcpp/grpcpp.h"
#include "server/auth.h"
#include "server/request_limits.h"
#include "server/services.h"

namespace pantherd::server {

// "pantherd.v1.DetectionService/<handler>" and the same for AdminService.
inline std::string MethodOf(const DetectionServiceImpl*, const char* handler) {
  return absl::StrCat(v1::DetectionService::service_full_name(), "/", handler);
}
inline std::string MethodOf(const AdminServiceImpl*, const char* handler) {
  return absl::StrCat(v1::AdminService::service_full_name(), "/", handler);
}

// A reactor for a refused streaming call: it only finishes.
template <typename Base>
class DeniedStreamReactor final : public Base {
 public:
  void OnDone() override { delete this; }
};

// Ends a refused call; converts to the reactor type the handler returns.
class DeniedCall {
 public:
  DeniedCall(ServiceEnv* env, grpc::CallbackServerContext* ctx, const absl::Status& status)
      : env_(env), ctx_(ctx), status_(ToGrpcStatus(status)) {
    if (absl::IsUnauthenticated(status)) delay_ = env->auth->FailureDelay(*ctx);
  }

  template <typename Reactor>
  operator Reactor*() const {  // NOLINT(google-explicit-constructor): the point of it
    if constexpr (std::is_same_v<Reactor, grpc::ServerUnaryReactor>) {
      grpc::ServerUnaryReactor* reactor = ctx_->DefaultReactor();
      Finish([reactor, status = status_] { reactor->Finish(status); });
      return reactor;
    } else {
      auto* reactor = new DeniedStreamReactor<Reactor>();
      Finish([reactor, status = status_] { reactor->Finish(status); });
      return reactor;
    }
  }

 private:
  void Finish(std::function<void()> finish) const {
    if (delay_ > absl::ZeroDuration() && env_->delayed != nullptr) {
      env_->delayed->Schedule(delay_, std::move(finish));
    } else {
      finish();
    }
  }

  ServiceEnv* env_;
  grpc::CallbackServerContext* ctx_;
  grpc::Status status_;
  absl::Duration delay_ = absl::ZeroDuration();
};

}  // namespace pantherd::server

#define PANTHERD_AUTHORIZE(caller)                                                 \
  ::absl::StatusOr<::pantherd::server::Principal> caller##_or_denied =             \
      env_->auth->Check(*ctx, ::pantherd::server::MethodOf(this, __func__));       \
  if (!caller##_or_denied.ok()) {                                                  \
    return ::pantherd::server::DeniedCall(env_, ctx, caller##_or_denied.status()); \
  }                                                                                \
  [[maybe_unused]] const ::pantherd::server::Principal caller = *std::move(caller##_or_denied)

#define PANTHERD_AUTHORIZE_REQUEST(caller, request)                        \
  PANTHERD_AUTHORIZE(caller);                                              \
  if (::absl::Status caller##_size = ::pantherd::server::CheckRequestSize( \
          ::pantherd::server::MethodOf(this, __func__), *(request));       \
      !caller##_size.ok()) {                                               \
    return ::pantherd::server::DeniedCall(env_, ctx, caller##_size);       \
  }                                                                        \
  static_assert(true, "a statement follows")

#endif  // PANTHERD_SERVER_CALL_AUTH_H_
