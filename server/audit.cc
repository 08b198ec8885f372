#include "server/audit.h"

#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/message.h"
#include "google/protobuf/util/time_util.h"
#include "pantherd/v1/alerts.pb.h"
#include "pantherd/v1/destinations.pb.h"
#include "pantherd/v1/events.pb.h"
#include "pantherd/v1/rules.pb.h"
#include "pantherd/v1/sources.pb.h"
#include "proto/base/log.h"
#include "proto/base/status_macros.h"
#include "store/keys.h"

namespace pantherd::server {
namespace {

using google::protobuf::util::TimeUtil;

constexpr absl::string_view kAuditCounter = "audit_seq";
constexpr size_t kWriteBatch = 256;
constexpr int kDefaultPageSize = 100;
constexpr int kMaxPageSize = 1000;

// The request types of the methods with a target field, so that the
// interceptor's untyped message pointer is read as the right type.
using AsMessageFn = const google::protobuf::Message* (*)(const void*);
template <typename R>
const google::protobuf::Message* AsMessage(const void* p) {
  return static_cast<const R*>(p);
}

const absl::flat_hash_map<std::string, AsMessageFn>& RequestTypes() {
  static const auto* types = new absl::flat_hash_map<std::string, AsMessageFn>{
      {"pantherd.v1.DetectionService/UploadRule", &AsMessage<v1::UploadRuleRequest>},
      {"pantherd.v1.DetectionService/GetRule", &AsMessage<v1::GetRuleRequest>},
      {"pantherd.v1.DetectionService/DeleteRule", &AsMessage<v1::DeleteRuleRequest>},
      {"pantherd.v1.DetectionService/SetRuleEnabled", &AsMessage<v1::SetRuleEnabledRequest>},
      {"pantherd.v1.DetectionService/IngestEvents", &AsMessage<v1::IngestEventsRequest>},
      {"pantherd.v1.DetectionService/AddSource", &AsMessage<v1::AddSourceRequest>},
      {"pantherd.v1.DetectionService/RemoveSource", &AsMessage<v1::RemoveSourceRequest>},
      {"pantherd.v1.DetectionService/SetSourcePaused", &AsMessage<v1::SetSourcePausedRequest>},
      {"pantherd.v1.DetectionService/TestSource", &AsMessage<v1::TestSourceRequest>},
      {"pantherd.v1.DetectionService/GetAlert", &AsMessage<v1::GetAlertRequest>},
      {"pantherd.v1.DetectionService/ListAlertEvents", &AsMessage<v1::ListAlertEventsRequest>},
      {"pantherd.v1.DetectionService/UpdateAlert", &AsMessage<v1::UpdateAlertRequest>},
      {"pantherd.v1.DetectionService/AddDestination", &AsMessage<v1::AddDestinationRequest>},
      {"pantherd.v1.DetectionService/GetDestination", &AsMessage<v1::GetDestinationRequest>},
      {"pantherd.v1.DetectionService/UpdateDestination", &AsMessage<v1::UpdateDestinationRequest>},
      {"pantherd.v1.DetectionService/RemoveDestination", &AsMessage<v1::RemoveDestinationRequest>},
      {"pantherd.v1.DetectionService/TestDestination", &AsMessage<v1::TestDestinationRequest>},
      {"pantherd.v1.DetectionService/ResendAlert", &AsMessage<v1::ResendAlertRequest>},
      {"pantherd.v1.DetectionService/SearchEvents", &AsMessage<v1::SearchEventsRequest>},
      {"pantherd.v1.DetectionService/StreamAlertEvents", &AsMessage<v1::StreamAlertEventsRequest>},
      {"pantherd.v1.DetectionService/ListWindows", &AsMessage<v1::ListWindowsRequest>},
      {"pantherd.v1.DetectionService/ExplainEvent", &AsMessage<v1::ExplainEventRequest>},
      {"pantherd.v1.AdminService/CreateUser", &AsMessage<v1::CreateUserRequest>},
      {"pantherd.v1.AdminService/UpdateUser", &AsMessage<v1::UpdateUserRequest>},
      {"pantherd.v1.AdminService/CreateToken", &AsMessage<v1::CreateTokenRequest>},
      {"pantherd.v1.AdminService/ListTokens", &AsMessage<v1::ListTokensRequest>},
      {"pantherd.v1.AdminService/RevokeToken", &AsMessage<v1::RevokeTokenRequest>},
  };
  return *types;
}

std::string ResultName(grpc::StatusCode code) {
  std::string name = absl::StatusCodeToString(static_cast<absl::StatusCode>(code));
  return name.empty() ? absl::StrCat("CODE_", static_cast<int>(code)) : name;
}

class AuditInterceptor final : public grpc::experimental::Interceptor {
 public:
  AuditInterceptor(grpc::experimental::ServerRpcInfo* info, const MethodRule* rule, AuditLog* log,
                   const Authenticator* auth)
      : info_(info), rule_(rule), log_(log), auth_(auth) {}

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    using grpc::experimental::InterceptionHookPoints;
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::POST_RECV_MESSAGE) &&
        !have_target_) {
      const void* request = methods->GetRecvMessage();
      if (request != nullptr) {
        target_ = AuditTarget(rule_->method, request);
        have_target_ = true;
      }
    }
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_STATUS)) {
      const grpc::Status status = methods->GetSendStatus();
      const bool denied = status.error_code() == grpc::StatusCode::UNAUTHENTICATED ||
                          status.error_code() == grpc::StatusCode::PERMISSION_DENIED;
      if (rule_->changes_state || denied) Record(status);
    }
    methods->Proceed();
  }

 private:
  void Record(const grpc::Status& status) {
    v1::AuditEvent event;
    *event.mutable_time() = TimeUtil::NanosecondsToTimestamp(absl::ToUnixNanos(absl::Now()));
    grpc::ServerContextBase* ctx = info_->server_context();
    if (ctx != nullptr) {
      auto [user, token] = auth_->Identify(*ctx);
      event.set_actor_user(user);
      event.set_actor_token(token);
      event.set_peer(ctx->peer());
    }
    event.set_action(std::string(rule_->method));
    event.set_target(target_);
    event.set_result(ResultName(status.error_code()));
    if (!status.ok()) event.set_detail(status.error_message());
    log_->Record(std::move(event));
  }

  grpc::experimental::ServerRpcInfo* info_;
  const MethodRule* rule_;
  AuditLog* log_;
  const Authenticator* auth_;
  bool have_target_ = false;
  std::string target_;
};

class AuditInterceptorFactory final : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  AuditInterceptorFactory(AuditLog* log, const Authenticator* auth) : log_(log), auth_(auth) {}

  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override {
    const char* method = info->method();
    if (method == nullptr) return nullptr;
    absl::string_view name(method);
    if (!absl::StartsWith(name, "/pantherd.v1.")) return nullptr;
    const MethodRule* rule = FindMethodRule(name);
    if (rule == nullptr) {
      // Refused by the handler's check; still audit the denial.
      static const MethodRule* unknown = new MethodRule{"unknown method", "", false, ""};
      rule = unknown;
    }
    return new AuditInterceptor(info, rule, log_, auth_);
  }

 private:
  AuditLog* log_;
  const Authenticator* auth_;
};

bool Matches(const v1::ListAuditEventsRequest& req, const v1::AuditEvent& e) {
  if (!req.actor_user().empty() && e.actor_user() != req.actor_user()) return false;
  if (!req.action_prefix().empty() && !absl::StartsWith(e.action(), req.action_prefix())) {
    return false;
  }
  if (!req.target().empty() && e.target() != req.target()) return false;
  if (req.failures_only() && e.result() == "OK") return false;
  if (!req.result().empty() && e.result() != req.result()) return false;
  const int64_t t = TimeUtil::TimestampToNanoseconds(e.time());
  if (req.has_since() && t < TimeUtil::TimestampToNanoseconds(req.since())) return false;
  if (req.has_until() && t >= TimeUtil::TimestampToNanoseconds(req.until())) return false;
  return true;
}

}  // namespace

std::string AuditTarget(absl::string_view method, const void* request) {
  if (request == nullptr) return "";
  const MethodRule* rule = FindMethodRule(method);
  if (rule == nullptr || rule->target_field.empty()) return "";
  auto type = RequestTypes().find(std::string(rule->method));
  if (type == RequestTypes().end()) return "";
  const google::protobuf::Message* message = type->second(request);
  const google::protobuf::Descriptor* descriptor = message->GetDescriptor();
  const google::protobuf::FieldDescriptor* field =
      descriptor->FindFieldByName(std::string(rule->target_field));
  if (field == nullptr) return "";
  const google::protobuf::Reflection* reflection = message->GetReflection();
  if (field->is_repeated()) {
    return absl::StrCat(reflection->FieldSize(*message, field), " ", field->name());
  }
  if (field->cpp_type() != google::protobuf::FieldDescriptor::CPPTYPE_STRING) return "";
  std::string value = reflection->GetString(*message, field);
  if (value.size() > 256) value.resize(256);
  return value;
}

AuditLog::AuditLog(store::Store* store, size_t capacity) : store_(store), capacity_(capacity) {
  writer_ = std::thread([this] { WriterLoop(); });
}

AuditLog::~AuditLog() { Stop(); }

void AuditLog::Record(v1::AuditEvent event) {
  int64_t dropped = 0;
  {
    absl::MutexLock lock(&mu_);
    if (!stop_ && queue_.size() < capacity_) {
      queue_.push_back(std::move(event));
      return;
    }
    dropped = ++dropped_;
  }
  if (dropped == 1 || dropped % 1000 == 0) {
    base::Log(base::LogLevel::kWarn, "audit queue full: events dropped",
              {{"dropped_total", absl::StrCat(dropped)}});
  }
}

void AuditLog::Drain() {
  absl::MutexLock lock(&mu_);
  mu_.Await(absl::Condition(
      +[](AuditLog* self) ABSL_EXCLUSIVE_LOCKS_REQUIRED(self->mu_) {
        return self->queue_.empty() && self->in_flight_ == 0;
      },
      this));
}

void AuditLog::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  if (writer_.joinable()) writer_.join();
}

int64_t AuditLog::dropped() const {
  absl::MutexLock lock(&mu_);
  return dropped_;
}

int64_t AuditLog::write_failures() const {
  absl::MutexLock lock(&mu_);
  return write_failures_;
}

void AuditLog::WriterLoop() {
  for (;;) {
    std::vector<v1::AuditEvent> batch;
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(
          +[](AuditLog* self) ABSL_EXCLUSIVE_LOCKS_REQUIRED(self->mu_) {
            return self->stop_ || !self->queue_.empty();
          },
          this));
      if (queue_.empty()) return;  // stopped and drained
      while (!queue_.empty() && batch.size() < kWriteBatch) {
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
      in_flight_ = batch.size();
    }
    absl::StatusOr<uint64_t> written = store_->WriteWithSequence(
        kAuditCounter, batch.size(), [&](uint64_t first, store::WriteBatch& wb) {
          for (size_t i = 0; i < batch.size(); ++i) {
            batch[i].set_sequence(first + i);
            wb.PutMessage(store::Family::kAudit, store::EncodeUint64(first + i), batch[i]);
          }
          return absl::OkStatus();
        });
    absl::MutexLock lock(&mu_);
    in_flight_ = 0;
    if (!written.ok()) {
      write_failures_ += static_cast<int64_t>(batch.size());
      base::Log(base::LogLevel::kError, "audit events could not be stored",
                {{"events", absl::StrCat(batch.size())},
                 {"error", std::string(written.status().message())}});
    }
  }
}

absl::StatusOr<v1::ListAuditEventsResponse> AuditLog::List(
    const v1::ListAuditEventsRequest& req) const {
  if (req.page().page_size() < 0 || req.page().page_size() > kMaxPageSize) {
    return absl::InvalidArgumentError(absl::StrCat("page.page_size: must be 0 to ", kMaxPageSize));
  }
  const int page_size = req.page().page_size() == 0 ? kDefaultPageSize : req.page().page_size();
  std::string start;
  if (!req.page().page_token().empty()) {
    uint64_t before = 0;
    if (!absl::SimpleAtoi(req.page().page_token(), &before) || before == 0) {
      return absl::InvalidArgumentError(absl::StrCat("page.page_token: \"", req.page().page_token(),
                                                     "\" is not a token from this list"));
    }
    if (before == 1) return v1::ListAuditEventsResponse();
    start = store::EncodeUint64(before - 1);
  }
  v1::ListAuditEventsResponse resp;
  absl::Status corrupt;
  PANTHERD_RETURN_IF_ERROR(store_->ReverseScan(
      store::Family::kAudit, "",
      [&](absl::string_view key, absl::string_view value) {
        v1::AuditEvent event;
        if (!event.ParseFromArray(value.data(), static_cast<int>(value.size()))) {
          corrupt = absl::DataLossError("a stored audit event is unreadable");
          return false;
        }
        if (!Matches(req, event)) return true;
        if (resp.events_size() >= page_size) {
          resp.set_next_page_token(absl::StrCat(resp.events(resp.events_size() - 1).sequence()));
          return false;
        }
        *resp.add_events() = std::move(event);
        return true;
      },
      start));
  PANTHERD_RETURN_IF_ERROR(corrupt);
  return resp;
}

std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface> NewAuditInterceptorFactory(
    AuditLog* log, const Authenticator* auth) {
  return std::make_unique<AuditInterceptorFactory>(log, auth);
}

}  // namespace pantherd::server
