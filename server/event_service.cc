// DetectionService's stored-event RPCs: StreamAlertEvents and ListWindows
// (here), SearchEvents (event_search.h). They read the store on executor
// threads; streams are written one message at a time (producer_stream.h).
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "engine/event_store.h"
#include "google/protobuf/util/time_util.h"
#include "server/call_auth.h"
#include "server/event_search.h"
#include "server/producer_stream.h"
#include "server/service_helpers.h"
#include "server/services.h"

namespace pantherd::server {
namespace {

using google::protobuf::util::TimeUtil;

// A StreamAlertEvents message holds at most this many events, or this many
// bytes of event JSON (beyond one event).
constexpr int kEventsPerMessage = 100;
constexpr size_t kEventBytesPerMessage = size_t{1} << 20;
// ListWindows returns at most this many windows.
constexpr int kMaxWindows = 10000;

}  // namespace

grpc::ServerWriteReactor<v1::StreamAlertEventsResponse>* DetectionServiceImpl::StreamAlertEvents(
    grpc::CallbackServerContext* ctx, const v1::StreamAlertEventsRequest* req) {
  PANTHERD_AUTHORIZE_REQUEST(caller, req);
  const std::string alert_id = req->alert_id();
  return StartProducerStream<v1::StreamAlertEventsResponse>(
      env_->executor,
      [env = env_, alert_id](const ProducerEmit<v1::StreamAlertEventsResponse>& emit,
                             const std::atomic<bool>& cancelled) -> grpc::Status {
        if (alert_id.empty()) return InvalidField("alert_id", "is required");
        absl::StatusOr<v1::Alert> alert = env->alerts->GetAlert(alert_id);
        if (!alert.ok()) return ToGrpcStatus(alert.status());
        // The index first (small), then each event.
        std::vector<std::string> keys;
        const std::string prefix = engine::AlertEventPrefix(alert_id);
        absl::Status scanned = env->store->Scan(store::Family::kWindowEvents, prefix,
                                                [&](absl::string_view key, absl::string_view) {
                                                  keys.emplace_back(key.substr(prefix.size()));
                                                  return !cancelled;
                                                });
        if (!scanned.ok()) return ToGrpcStatus(scanned);
        v1::StreamAlertEventsResponse message;
        size_t bytes = 0;
        int64_t not_retained = 0;
        for (const std::string& key : keys) {
          if (cancelled) return grpc::Status(grpc::StatusCode::CANCELLED, "cancelled");
          absl::StatusOr<std::string> json = env->store->Get(store::Family::kEvents, key);
          if (absl::IsNotFound(json.status())) {
            ++not_retained;
            continue;
          }
          if (!json.ok()) return ToGrpcStatus(json.status());
          absl::StatusOr<engine::StoredEvent> e = engine::ParseStoredEvent(key, *json);
          if (!e.ok()) return ToGrpcStatus(e.status());
          v1::MatchedEvent* m = message.add_events();
          if (!absl::StartsWith(e->id, "#")) m->set_event_id(std::string(e->id));
          m->set_log_type(std::string(e->log_type));
          *m->mutable_event_time() =
              TimeUtil::MicrosecondsToTimestamp(absl::ToUnixMicros(e->event_time));
          m->set_original_bytes(static_cast<int64_t>(json->size()));
          bytes += json->size();
          m->set_json(std::move(*json));
          if (message.events_size() >= kEventsPerMessage || bytes >= kEventBytesPerMessage) {
            if (!emit(std::move(message))) {
              return grpc::Status(grpc::StatusCode::CANCELLED, "the client stopped reading");
            }
            message.Clear();
            bytes = 0;
          }
        }
        message.set_events_not_retained(not_retained);
        if (!emit(std::move(message))) {
          return grpc::Status(grpc::StatusCode::CANCELLED, "the client stopped reading");
        }
        return grpc::Status::OK;
      });
}

grpc::ServerUnaryReactor* DetectionServiceImpl::ListWindows(grpc::CallbackServerContext* ctx,
                                                            const v1::ListWindowsRequest* req,
                                                            v1::ListWindowsResponse* resp) {
  PANTHERD_AUTHORIZE_REQUEST(caller, req);
  return RunBlocking(ctx, env_->executor, [env = env_, req, resp]() -> grpc::Status {
    const std::string prefix =
        req->rule_id().empty() ? "" : absl::StrCat(req->rule_id(), std::string(1, '\0'));
    absl::Status error;
    absl::Status scanned = env->store->Scan(
        store::Family::kDedup, prefix, [&](absl::string_view key, absl::string_view value) {
          v1::DedupWindow w;
          if (!w.ParseFromArray(value.data(), static_cast<int>(value.size()))) {
            error = absl::DataLossError(absl::StrCat("dedup window record does not parse"));
            return false;
          }
          if (!w.alert_id().empty() && !req->include_alerted()) return true;
          if (resp->windows_size() >= kMaxWindows) {
            resp->set_truncated(true);
            return false;
          }
          v1::WindowView& v = *resp->add_windows();
          v.set_rule_id(w.rule_id());
          v.set_type(w.type());
          v.set_dedup_string(w.dedup_string());
          *v.mutable_start() = w.start();
          *v.mutable_end() = w.end();
          v.set_count(w.event_count());
          v.set_threshold(w.draft().threshold());
          *v.mutable_first_event_time() = w.first_event_time();
          *v.mutable_last_event_time() = w.last_event_time();
          v.set_alert_id(w.alert_id());
          if (!w.alert_id().empty()) {
            absl::StatusOr<v1::Alert> a = env->alerts->GetAlert(w.alert_id());
            if (a.ok()) v.set_threshold(a->threshold());
          }
          return true;
        });
    if (!scanned.ok()) return ToGrpcStatus(scanned);
    if (!error.ok()) return ToGrpcStatus(error);
    return grpc::Status::OK;
  });
}

grpc::ServerWriteReactor<v1::SearchEventsResponse>* DetectionServiceImpl::SearchEvents(
    grpc::CallbackServerContext* ctx, const v1::SearchEventsRequest* req) {
  PANTHERD_AUTHORIZE_REQUEST(caller, req);
  const v1::SearchEventsRequest request = *req;
  return StartProducerStream<v1::SearchEventsResponse>(
      env_->executor,
      [env = env_, request](const ProducerEmit<v1::SearchEventsResponse>& emit,
                            const std::atomic<bool>& cancelled) -> grpc::Status {
        if (absl::Status valid = ValidateSearchRequest(request); !valid.ok()) {
          return ToGrpcStatus(valid);
        }
        auto on_header = [&](v1::SearchHeader header) {
          v1::SearchEventsResponse message;
          *message.mutable_header() = std::move(header);
          return emit(std::move(message));
        };
        auto on_row = [&](v1::SearchRow row) {
          v1::SearchEventsResponse message;
          *message.mutable_row() = std::move(row);
          return emit(std::move(message));
        };
        absl::StatusOr<v1::SearchSummary> summary =
            RunEventSearch(*env->store, request, env->now(), cancelled, {on_header, on_row});
        if (!summary.ok()) return ToGrpcStatus(summary.status());
        v1::SearchEventsResponse message;
        *message.mutable_summary() = std::move(*summary);
        if (!emit(std::move(message))) {
          return grpc::Status(grpc::StatusCode::CANCELLED, "the client stopped reading");
        }
        return grpc::Status::OK;
      });
}

}  // namespace pantherd::server
