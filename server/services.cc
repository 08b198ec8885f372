#include "server/services.h"

#include <algorithm>
#include <deque>
#include <optional>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "google/protobuf/util/time_util.h"
#include "pantherd/v1/rules.pb.h"
#include "server/call_auth.h"
#include "server/service_helpers.h"
#include "server/version.h"

namespace pantherd::server {
namespace {

using google::protobuf::util::TimeUtil;

// A streaming reactor that ends the call at once with a status.
template <typename Base>
class FinishNowReactor final : public Base {
 public:
  explicit FinishNowReactor(grpc::Status status) { this->Finish(std::move(status)); }
  void OnDone() override { delete this; }
};

constexpr int kDefaultPageSize = 100;
constexpr int kMaxPageSize = 1000;

}  // namespace

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), std::string(status.message()));
}

absl::Status ServiceEnv::CheckWired() const {
  const std::pair<const char*, const void*> parts[] = {
      {"store", store},           {"executor", executor},
      {"evaluation", evaluation}, {"rule_store", rule_store},
      {"rules", rules},           {"alerts", alerts},
      {"ingest", ingest},         {"hub", hub},
      {"sources", sources},       {"auth", auth},
      {"audit", audit},           {"delayed", delayed},
      {"metrics", metrics},       {"pool", pool},
      {"deliveries", deliveries}, {"replays", replays},
  };
  for (const auto& [name, part] : parts) {
    if (part == nullptr) {
      return absl::FailedPreconditionError(
          absl::StrCat("service environment: ", name, " is not set"));
    }
  }
  if (!now) return absl::FailedPreconditionError("service environment: now is not set");
  return absl::OkStatus();
}

void ServiceEnv::set_listen_address(std::string address) {
  absl::MutexLock lock(&mu_);
  listen_address_ = std::move(address);
}

std::string ServiceEnv::listen_address() const {
  absl::MutexLock lock(&mu_);
  return listen_address_;
}

// ---- DetectionService ------------------------------------------------------

namespace {

// IngestEvents: each batch is evaluated and committed on env.evaluation (never
// on a gRPC thread) and answered only once durable, in order. Two batches of
// a stream overlap: once batch N is evaluated, batch N+1 is read and
// evaluated while N commits. Evaluation stays in stream order (N+1 is read
// only after N's evaluation ended), and so do commits (a ticket per batch)
// and answers (queued behind the write in flight). A stream therefore holds
// at most two batches in memory and two answers queued.
//
// Lifetime: Finish is called only once no executor task runs and no write is
// in flight, and nothing new starts after an error, so OnDone (which deletes
// the reactor) cannot overtake a task. gRPC operations (StartRead,
// StartWrite, Finish) are started outside mu_.
class IngestReactor final
    : public grpc::ServerBidiReactor<v1::IngestEventsRequest, v1::IngestEventsResponse> {
 public:
  // `authorized` is asked before each batch; once it fails, the stream ends
  // with its status (a revoked token stops ingesting at its next batch).
  IngestReactor(ServiceEnv* env, std::function<absl::Status()> authorized)
      : env_(env), authorized_(std::move(authorized)) {
    StartRead(&request_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {  // The client finished sending.
      Act(Locked([&] { client_done_ = true; }));
      return;
    }
    if (absl::Status allowed = authorized_(); !allowed.ok()) {
      Act(Locked([&] { Fail(ToGrpcStatus(allowed)); }));
      return;
    }
    bool start = false;
    {
      absl::MutexLock lock(&mu_);
      if (!failed_.has_value()) {
        ++tasks_;
        start = true;
      }
    }
    if (!start) {
      Act(Locked([] {}));
      return;
    }
    if (!env_->evaluation->Submit([this] { IngestOne(); })) {
      const uint64_t batch_id = request_.batch_id();
      Act(Locked([&] {
        --tasks_;
        Fail(grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                          absl::StrCat("pantherd is overloaded; batch ", batch_id,
                                       " was not stored, re-send it")));
      }));
    }
  }

  void OnWriteDone(bool ok) override {
    Act(Locked([&] {
      writing_ = false;
      responses_.pop_front();
      if (!ok) Fail(grpc::Status(grpc::StatusCode::CANCELLED, "the client went away"));
    }));
  }

  void OnDone() override { delete this; }

 private:
  // What to start once mu_ is released.
  struct Actions {
    bool read = false;
    const v1::IngestEventsResponse* write = nullptr;
    std::optional<grpc::Status> finish;
  };

  // Runs `change` under mu_, then decides (still under mu_) what to start.
  template <typename F>
  Actions Locked(F change) {
    absl::MutexLock lock(&mu_);
    change();
    Actions next;
    if (read_next_) {
      read_next_ = false;
      next.read = true;
    }
    if (finished_) return next;
    // Answers of batches already stored are written even after an error.
    if (!writing_ && !responses_.empty()) {
      writing_ = true;
      next.write = &responses_.front();
    }
    if (tasks_ == 0 && !writing_ && responses_.empty() && (failed_.has_value() || client_done_)) {
      finished_ = true;
      next.finish = failed_.value_or(grpc::Status::OK);
    }
    return next;
  }

  void Act(const Actions& next) {
    if (next.read) {
      request_.Clear();
      StartRead(&request_);
    }
    if (next.write != nullptr) StartWrite(next.write);
    if (next.finish.has_value()) Finish(*next.finish);
  }

  // The first error ends the stream (later ones are dropped).
  void Fail(grpc::Status status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (!failed_.has_value()) failed_ = std::move(status);
  }

  void IngestOne() {
    const uint64_t batch_id = request_.batch_id();
    absl::StatusOr<engine::PreparedBatch> prepared = PrepareBatch(*env_, request_);
    uint64_t ticket = 0;
    Act(Locked([&] {
      if (!prepared.ok()) {
        --tasks_;
        Fail(grpc::Status(static_cast<grpc::StatusCode>(prepared.status().code()),
                          absl::StrCat("batch ", batch_id, ": ", prepared.status().message())));
        return;
      }
      ticket = next_ticket_++;
      // The next batch is read and evaluated while this one commits.
      if (!client_done_ && !failed_.has_value()) read_next_ = true;
    }));
    if (!prepared.ok()) return;

    bool skip = false;
    {
      absl::MutexLock lock(&mu_);
      auto my_turn = [this, ticket]()
                         ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return commit_turn_ == ticket; };
      mu_.Await(absl::Condition(&my_turn));
      // An earlier commit failed: store nothing after it. (Other failures
      // concern later batches, or the client's reading; this batch was
      // accepted before them and is stored and answered.)
      skip = commit_failed_;
    }
    absl::StatusOr<engine::IngestResult> result =
        skip ? absl::StatusOr<engine::IngestResult>(absl::AbortedError("not stored"))
             : CommitAndPublish(*env_, *std::move(prepared));
    Act(Locked([&] {
      ++commit_turn_;
      --tasks_;
      if (skip) return;
      if (!result.ok()) {
        commit_failed_ = true;
        Fail(grpc::Status(static_cast<grpc::StatusCode>(result.status().code()),
                          absl::StrCat("batch ", batch_id, ": ", result.status().message())));
        return;
      }
      responses_.push_back(std::move(result->response));
    }));
  }

  ServiceEnv* env_;
  const std::function<absl::Status()> authorized_;
  // Filled by the read in flight; read by IngestOne until its Prepare ends.
  v1::IngestEventsRequest request_;

  absl::Mutex mu_;
  int tasks_ ABSL_GUARDED_BY(mu_) = 0;  // batches on env.evaluation
  uint64_t next_ticket_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t commit_turn_ ABSL_GUARDED_BY(mu_) = 0;
  // Answers to write, in order; the front one is being written when writing_.
  std::deque<v1::IngestEventsResponse> responses_ ABSL_GUARDED_BY(mu_);
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool client_done_ ABSL_GUARDED_BY(mu_) = false;
  std::optional<grpc::Status> failed_ ABSL_GUARDED_BY(mu_);
  bool commit_failed_ ABSL_GUARDED_BY(mu_) = false;
  // Set by IngestOne once its batch is evaluated: Act starts the next read.
  bool read_next_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace

grpc::ServerBidiReactor<v1::IngestEventsRequest, v1::IngestEventsResponse>*
DetectionServiceImpl::IngestEvents(grpc::CallbackServerContext* ctx) {
  // Each batch may be as large as the gRPC limit (kMaxUploadMessageBytes); the
  // pipeline bounds each event (--max-event-bytes).
  PANTHERD_AUTHORIZE(caller);
  return new IngestReactor(env_, [auth = env_->auth, id = caller.token_id] {
    return auth->StillValid(id, kPermEventsIngest);
  });
}

grpc::ServerUnaryReactor* DetectionServiceImpl::ListAlerts(grpc::CallbackServerContext* ctx,
                                                           const v1::ListAlertsRequest* req,
                                                           v1::ListAlertsResponse* resp) {
  PANTHERD_AUTHORIZE_REQUEST(caller, req);
  if (req->page().page_size() < 0 || req->page().page_size() > kMaxPageSize) {
    return FinishUnary(ctx,
                       InvalidField("page.page_size", absl::StrCat("must be 0 to ", kMaxPageSize)));
  }
  return RunBlocking(ctx, env_->executor, [env = env_, req, resp]() -> grpc::Status {
    absl::StatusOr<v1::ListAlertsResponse> list = env->alerts->ListAlerts(*req);
    if (!list.ok()) return ToGrpcStatus(list.status());
    *resp = std::move(*list);
    return grpc::Status::OK;
  });
}

grpc::ServerUnaryReactor* DetectionServiceImpl::GetAlert(grpc::CallbackServerContext* ctx,
                                                         const v1::GetAlertRequest* req,
                                                         v1::GetAlertResponse* resp) {
  PANTHERD_AUTHORIZE_REQUEST(caller, req);
  if (req->id().empty()) return FinishUnary(ctx, InvalidField("id", "is required"));
  return RunBlocking(ctx, env_->executor, [env = env_, req, resp]() -> grpc::Status {
    absl::StatusOr<v1::Alert> alert = env->alerts->GetAlert(req->id());
    if (!alert.ok()) return ToGrpcStatus(alert.status());
    *resp->mutable_alert() = std::move(*alert);
    absl::StatusOr<std::vector<v1::AlertDelivery>> deliveries =
        env->deliveries->DeliveriesOf(req->id());
    if (!deliveries.ok()) return ToGrpcStatus(deliveries.status());
    for (v1::AlertDelivery& d : *deliveries) *resp->add_deliveries() = std::move(d);
    return grpc::Status::OK;
  });
}

grpc::ServerUnaryReactor* DetectionServiceImpl::ListAlertEvents(
    grpc::CallbackServerContext* ctx, const v1::ListAlertEventsRequest* req,
    v1::ListAlertEventsResponse* resp) {
  PANTHERD_AUTHORIZE_REQUEST(caller, req);
  if (req->alert_id().empty()) return FinishUnary(ctx, InvalidField("alert_id", "is required"));
  if (req->page().page_size() < 0 || req->page().page_size() > kMaxPageSize) {
    return FinishUnary(ctx,
                       InvalidField("page.page_size", absl::StrCat("must be 0 to ", kMaxPageSize)));
  }
  return RunBlocking(ctx, env_->executor, [env = env_, req, resp]() -> grpc::Status {
    absl::StatusOr<v1::ListAlertEventsResponse> events = env->alerts->ListAlertEvents(*req);
    if (!events.ok()) return ToGrpcStatus(events.status());
    *resp = std::move(*events);
    return grpc::Status::OK;
  });
}

grpc::ServerUnaryReactor* DetectionServiceImpl::UpdateAlert(grpc::CallbackServerContext* ctx,
                                                            const v1::UpdateAlertRequest* req,
                                                            v1::UpdateAlertResponse* resp) {
  PANTHERD_AUTHORIZE_REQUEST(caller, req);
  if (req->id().empty()) return FinishUnary(ctx, InvalidField("id", "is required"));
  return RunBlocking(ctx, env_->executor, [env = env_, req, resp, caller]() -> grpc::Status {
    // Published to the hub by the alert engine, in sequence order.
    absl::StatusOr<v1::AlertChange> change =
        env->alerts->UpdateAlert(*req, caller.user, env->now());
    if (!change.ok()) return ToGrpcStatus(change.status());
    env->deliveries->Wake();  // a resolve may have written an outbox intent
    *resp->mutable_alert() = change->alert();
    return grpc::Status::OK;
  });
}

grpc::ServerWriteReactor<v1::StreamAlertsResponse>* DetectionServiceImpl::StreamAlerts(
    grpc::CallbackServerContext* ctx, const v1::StreamAlertsRequest* req) {
  PANTHERD_AUTHORIZE_REQUEST(caller, req);
  // The stream ends as soon as the caller's token stops being valid.
  return env_->hub->StartStream(ctx, req, [auth = env_->auth, id = caller.token_id] {
    return auth->StillValid(id, kPermAlertsRead);
  });
}

grpc::ServerUnaryReactor* DetectionServiceImpl::UploadRule(grpc::CallbackServerContext* ctx,
                                                           const v1::UploadRuleRequest* req,
                                                           v1::UploadRuleResponse* resp) {
  PANTHERD_AUTHORIZE_REQUEST(caller, req);
  return RunBlocking(ctx, env_->evaluation, [env = env_, req, resp, caller]() -> grpc::Status {
    absl::Status s = env->rules->Upload(*req, caller.user, resp);
    if (s.ok()) return grpc::Status::OK;
    // The report (diagnostics, test results) travels in the error details.
    return grpc::Status(static_cast<grpc::StatusCode>(s.code()), std::string(s.message()),
                        resp->SerializeAsString());
  });
}

grpc::ServerUnaryReactor* DetectionServiceImpl::GetRule(grpc::CallbackServerContext* ctx,
                                                        const v1::GetRuleRequest* req,
                                                        v1::GetRuleResponse* resp) {
  PANTHERD_AUTHORIZE_REQUEST(caller, req);
  if (req->id().empty()) return FinishUnary(ctx, InvalidField("id", "is required"));
  return RunBlocking(ctx, env_->executor, [env = env_, req, resp]() -> grpc::Status {
    absl::StatusOr<v1::Rule> rule = req->include_deleted()
                                        ? env->rule_store->GetIncludingDeleted(req->id())
                                        : env->rule_store->Get(req->id());
    if (!rule.ok()) return ToGrpcStatus(rule.status());
    if (!req->include_content()) rule->clear_files();
    *resp->mutable_rule() = std::move(*rule);
    if (req->include_history()) {
      absl::StatusOr<std::vector<v1::RuleVersion>> history = env->rule_store->History(req->id());
      if (!history.ok()) return ToGrpcStatus(history.status());
      for (v1::RuleVersion& v : *history) *resp->add_history() = std::move(v);
    }
    return grpc::Status::OK;
  });
}

grpc::ServerUnaryReactor* DetectionServiceImpl::ListRules(grpc::CallbackServerContext* ctx,
                                                          const v1::ListRulesRequest* req,
                                                          v1::ListRulesResponse* resp) {
  PANTHERD_AUTHORIZE_REQUEST(caller, req);
  if (req->page().page_size() < 0 || req->page().page_size() > kMaxPageSize) {
    return FinishUnary(ctx,
                       InvalidField("page.page_size", absl::StrCat("must be 0 to ", kMaxPageSize)));
  }
  return RunBlocking(ctx, env_->executor, [env = env_, req, resp]() -> grpc::Status {
    absl::StatusOr<std::vector<v1::Rule>> items = env->rule_store->ListCurrent();
    if (!items.ok()) return ToGrpcStatus(items.status());
    const int page_size = req->page().page_size() == 0 ? kDefaultPageSize : req->page().page_size();
    const std::string& after = req->page().page_token();
    int total = 0;
    for (v1::Rule& item : *items) {
      if (req->type() != v1::ANALYSIS_TYPE_UNSPECIFIED && item.type() != req->type()) continue;
      if (!req->log_type().empty() && std::find(item.log_types().begin(), item.log_types().end(),
                                                req->log_type()) == item.log_types().end()) {
        continue;
      }
      if (req->severity() != v1::SEVERITY_UNSPECIFIED && item.severity() != req->severity())
        continue;
      if (!req->tag().empty() &&
          std::find(item.tags().begin(), item.tags().end(), req->tag()) == item.tags().end()) {
        continue;
      }
      if (req->enabled() == v1::ListRulesRequest::ENABLED_FILTER_ENABLED && !item.enabled())
        continue;
      if (req->enabled() == v1::ListRulesRequest::ENABLED_FILTER_DISABLED && item.enabled())
        continue;
      ++total;
      // Items are ordered by id; the page token is the last id returned.
      if (!after.empty() && item.id() <= after) continue;
      if (resp->rules_size() >= page_size) {
        resp->set_next_page_token(resp->rules(resp->rules_size() - 1).id());
        continue;
      }
      item.clear_files();
      *resp->add_rules() = std::move(item);
    }
    resp->set_total_count(total);
    return grpc::Status::OK;
  });
}

grpc::ServerUnaryReactor* DetectionServiceImpl::DeleteRule(grpc::CallbackServerContext* ctx,
                                                           const v1::DeleteRuleRequest* req,
                                                           v1::DeleteRuleResponse* resp) {
  PANTHERD_AUTHORIZE_REQUEST(caller, req);
  if (req->id().empty()) return FinishUnary(ctx, InvalidField("id", "is required"));
  return RunBlocking(ctx, env_->executor, [env = env_, req, resp, caller]() -> grpc::Status {
    absl::StatusOr<int64_t> version = env->rules->Delete(req->id(), caller.user);
    if (!version.ok()) return ToGrpcStatus(version.status());
    resp->set_version(*version);
    return grpc::Status::OK;
  });
}

grpc::ServerUnaryReactor* DetectionServiceImpl::SetRuleEnabled(grpc::CallbackServerContext* ctx,
                                                               const v1::SetRuleEnabledRequest* req,
                                                               v1::SetRuleEnabledResponse* resp) {
  PANTHERD_AUTHORIZE_REQUEST(caller, req);
  if (req->id().empty()) return FinishUnary(ctx, InvalidField("id", "is required"));
  return RunBlocking(ctx, env_->executor, [env = env_, req, resp, caller]() -> grpc::Status {
    absl::StatusOr<v1::Rule> rule = env->rules->SetEnabled(req->id(), req->enabled(), caller.user);
    if (!rule.ok()) return ToGrpcStatus(rule.status());
    *resp->mutable_rule() = std::move(*rule);
    return grpc::Status::OK;
  });
}

grpc::ServerUnaryReactor* DetectionServiceImpl::RunTests(grpc::CallbackServerContext* ctx,
                                                         const v1::RunTestsRequest* req,
                                                         v1::RunTestsResponse* resp) {
  PANTHERD_AUTHORIZE_REQUEST(caller, req);
  if (req->target_case() == v1::RunTestsRequest::TARGET_NOT_SET) {
    return FinishUnary(ctx, InvalidField("target", "set either stored or content"));
  }
  return RunBlocking(ctx, env_->evaluation, [env = env_, req, resp]() -> grpc::Status {
    absl::StatusOr<v1::TestReport> report = env->rules->RunTests(*req);
    if (!report.ok()) return ToGrpcStatus(report.status());
    *resp->mutable_report() = std::move(*report);
    return grpc::Status::OK;
  });
}

// ---- AdminService ------------------------------------------------------------

// The other AdminService methods are in admin_service.cc.

grpc::ServerUnaryReactor* AdminServiceImpl::GetServerStatus(grpc::CallbackServerContext* ctx,
                                                            const v1::GetServerStatusRequest* req,
                                                            v1::GetServerStatusResponse* resp) {
  PANTHERD_AUTHORIZE_REQUEST(caller, req);
  return RunBlocking(ctx, env_->executor, [env = env_, resp]() -> grpc::Status {
    // Version, start time, uptime, the alert feed and pantherd's figures:
    // the same collection GET /metrics renders.
    CollectLiveStatus(LiveMetricsInputs(*env), resp);
    resp->set_data_dir(env->data_dir);
    resp->set_listen_address(env->listen_address());

    int64_t rules = 0, globals = 0, data_models = 0;
    absl::Status corrupt;
    absl::Status scan = env->store->Scan(
        store::Family::kRules, "", [&](absl::string_view key, absl::string_view value) {
          v1::Rule rule;
          if (!rule.ParseFromArray(value.data(), static_cast<int>(value.size()))) {
            corrupt = absl::DataLossError(absl::StrCat("stored rule \"", key, "\" is unreadable"));
            return false;
          }
          switch (rule.type()) {
            case v1::ANALYSIS_TYPE_RULE:
              ++rules;
              if (!rule.enabled() && rule.has_quarantine()) {
                v1::QuarantinedRule* q = resp->add_quarantined_rules();
                q->set_rule_id(rule.id());
                *q->mutable_quarantine() = rule.quarantine();
              }
              break;
            case v1::ANALYSIS_TYPE_GLOBAL:
              ++globals;
              break;
            case v1::ANALYSIS_TYPE_DATA_MODEL:
              ++data_models;
              break;
            default:
              break;
          }
          return true;
        });
    if (!scan.ok()) return ToGrpcStatus(scan);
    if (!corrupt.ok()) return ToGrpcStatus(corrupt);
    resp->set_rule_count(rules);
    resp->set_global_count(globals);
    resp->set_data_model_count(data_models);

    absl::StatusOr<int64_t> sources =
        env->store->Count(store::Family::kSources, SourceConfigKey(""));
    if (!sources.ok()) return ToGrpcStatus(sources.status());
    resp->set_source_count(*sources);
    absl::StatusOr<int64_t> alerts = env->store->Count(store::Family::kAlerts, "");
    if (!alerts.ok()) return ToGrpcStatus(alerts.status());
    resp->set_alert_count(*alerts);
    resp->set_health("SERVING");
    return grpc::Status::OK;
  });
}

}  // namespace pantherd::server
