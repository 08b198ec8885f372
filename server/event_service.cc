// DetectionService's stored-event RPCs: StreamAlertEvents, ListWindows,
// ExplainEvent and ReplayRules (engine/replay.h) here, SearchEvents
// (event_search.h). They read the store on executor threads (replays on
// their own); streams are written one message at a time (producer_stream.h).
#include <openssl/rand.h>

#include <algorithm>
#include <optional>
#include <string>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "engine/event_store.h"
#include "engine/normalize.h"
#include "engine/replay.h"
#include "engine/yaml_json.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/time_util.h"
#include "proto/base/status_macros.h"
#include "server/call_auth.h"
#include "server/event_search.h"
#include "server/producer_stream.h"
#include "server/service_helpers.h"
#include "server/services.h"
#include "yaml-cpp/yaml.h"

namespace pantherd::server {
namespace {

using google::protobuf::util::TimeUtil;

// A StreamAlertEvents message holds at most this many events, or this many
// bytes of event JSON (beyond one event).
constexpr int kEventsPerMessage = 100;
constexpr size_t kEventBytesPerMessage = size_t{1} << 20;
// ListWindows returns at most this many windows.
constexpr int kMaxWindows = 10000;

// Whether `path` is a spec file (*.yml, *.yaml).
bool IsSpecFile(absl::string_view path) {
  return absl::EndsWith(path, ".yml") || absl::EndsWith(path, ".yaml");
}

// The JSON string value of a function's output ("" when it has none or it is
// not a string).
std::string OutputString(const v1::TestCaseResult& result, absl::string_view function) {
  for (const v1::FunctionResult& f : result.functions()) {
    if (f.function() != function || f.output_json().empty() || f.has_error()) continue;
    google::protobuf::Value v;
    if (!google::protobuf::util::JsonStringToMessage(f.output_json(), &v).ok()) return "";
    return v.kind_case() == google::protobuf::Value::kStringValue ? v.string_value() : "";
  }
  return "";
}

// The spec `file` (YAML) as JSON (which is YAML too, so the path stays)
// with its Tests replaced by `tests_json` (a JSON array).
absl::StatusOr<std::string> WithTests(const v1::AnalysisFile& file, absl::string_view tests_json) {
  YAML::Node node;
  try {
    node = YAML::Load(file.content());
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(file.path(), " does not parse: ", e.what()));
  }
  PANTHERD_ASSIGN_OR_RETURN(std::string spec_json, engine::YamlToJson(node));
  google::protobuf::Struct spec;
  if (!google::protobuf::util::JsonStringToMessage(spec_json, &spec).ok()) {
    return absl::InvalidArgumentError(absl::StrCat(file.path(), " is not a mapping"));
  }
  spec.mutable_fields()->erase("Tests");
  spec.mutable_fields()->erase("tests");
  std::string text;
  if (!google::protobuf::util::MessageToJsonString(spec, &text).ok() || text.size() < 2) {
    return absl::InternalError("re-encoding the spec failed");
  }
  text.pop_back();  // the closing brace
  absl::StrAppend(&text, text.size() > 1 ? "," : "", R"("Tests":)", tests_json, "}");
  return text;
}

// ExplainEvent: the stored rule run on one event through RunTests (a one-shot
// test worker with a private caching space), plus its live windows.
absl::StatusOr<v1::ExplainEventResponse> Explain(ServiceEnv& env,
                                                 const v1::ExplainEventRequest& req) {
  v1::ExplainEventResponse out;
  absl::StatusOr<v1::Rule> rule = env.rule_store->Get(req.rule_id());
  if (absl::IsNotFound(rule.status())) {
    return absl::NotFoundError(absl::StrCat("rule_id: no stored rule ", req.rule_id()));
  }
  if (!rule.ok()) return rule.status();
  if (rule->type() != v1::ANALYSIS_TYPE_RULE) {
    return absl::InvalidArgumentError(absl::StrCat("rule_id: ", req.rule_id(), " is not a rule"));
  }
  out.set_rule_id(rule->id());
  out.set_rule_version(rule->version());
  const std::string log_type =
      req.log_type().empty() ? std::string(engine::kOktaSystemLog) : req.log_type();
  if (!engine::IsSupportedLogType(log_type)) {
    return absl::InvalidArgumentError(
        absl::StrCat("log_type: pantherd does not ingest ", log_type));
  }
  out.set_log_type(log_type);
  // The event, normalised as the rules see it.
  if (req.event_case() == v1::ExplainEventRequest::kEventJson) {
    engine::NormalizeContext ctx;
    ctx.parse_time = env.now();
    absl::StatusOr<engine::NormalizedEvent> n =
        engine::NormalizeEvent(req.event_json(), log_type, ctx);
    if (!n.ok())
      return absl::InvalidArgumentError(absl::StrCat("event_json: ", n.status().message()));
    out.set_event_json(n->json);
  } else {
    // Two point reads through the id's processed record, which holds the
    // event's time (its store key); a scan of the log type only when that
    // record is gone (processed ids are kept 7 days, events 30) or was
    // written before records held event times.
    PANTHERD_ASSIGN_OR_RETURN(const engine::EventLookup lookup,
                              engine::FindStoredEvent(*env.store, log_type, req.event_id()));
    switch (lookup.result) {
      case engine::EventLookup::Result::kFound:
        out.set_event_json(lookup.json);
        break;
      case engine::EventLookup::Result::kNotStored:
        return absl::NotFoundError(absl::StrCat(
            "event_id: no stored ", log_type, " event ", req.event_id(),
            ": it was ingested (event time ",
            absl::FormatTime(absl::RFC3339_full, lookup.event_time, absl::UTCTimeZone()),
            ") but is not stored: it was older than the event retention when it arrived, or "
            "has been purged since; pass the event itself instead"));
      case engine::EventLookup::Result::kNoEventTime:
      case engine::EventLookup::Result::kNoRecord: {
        bool found = false;
        PANTHERD_RETURN_IF_ERROR(engine::ScanEvents(*env.store, log_type, absl::InfinitePast(),
                                                    absl::InfiniteFuture(),
                                                    [&](const engine::StoredEvent& e) {
                                                      if (e.id != req.event_id()) return true;
                                                      out.set_event_json(std::string(e.json));
                                                      found = true;
                                                      return false;
                                                    }));
        if (!found) {
          const absl::string_view why =
              lookup.result == engine::EventLookup::Result::kNoRecord
                  ? "no processed-id record of it is left (those are kept for "
                    "--processed-retention-seconds, 7 days by default)"
                  : "its processed-id record, written by an older pantherd, has no event time";
          return absl::NotFoundError(absl::StrCat(
              "event_id: no stored ", log_type, " event ", req.event_id(),
              " (never ingested, or older than the event retention; ", why, ", so every stored ",
              log_type, " event was searched); pass the event itself instead"));
        }
        break;
      }
    }
  }
  // Would live ingestion run the rule at all?
  if (!rule->enabled()) {
    out.set_skipped_reason("the rule is disabled");
  } else if (rule->has_quarantine() && !rule->quarantine().reason().empty()) {
    out.set_skipped_reason(absl::StrCat("the rule is quarantined: ", rule->quarantine().reason()));
  } else if (std::find(rule->log_types().begin(), rule->log_types().end(), log_type) ==
             rule->log_types().end()) {
    out.set_skipped_reason(absl::StrCat("the rule does not take log type ", log_type,
                                        " (its LogTypes: ", absl::StrJoin(rule->log_types(), ", "),
                                        ")"));
  }
  // The rule's files with its spec's Tests replaced by this one event. JSON
  // is YAML, so the spec keeps its path.
  v1::RunTestsRequest run;
  bool have_spec = false;
  for (const v1::AnalysisFile& f : rule->files()) {
    v1::AnalysisFile* file = run.mutable_content()->add_files();
    *file = f;
    if (!IsSpecFile(f.path()) || have_spec) continue;
    have_spec = true;
    PANTHERD_ASSIGN_OR_RETURN(
        std::string text,
        WithTests(*file, absl::StrCat(R"([{"Name":"explain","ExpectedResult":true,"Log":)",
                                      out.event_json(), "}]")));
    file->set_content(std::move(text));
  }
  if (!have_spec)
    return absl::DataLossError(absl::StrCat("rule ", rule->id(), " has no stored spec"));
  PANTHERD_ASSIGN_OR_RETURN(v1::TestReport report, env.rules->RunTests(run));
  if (report.invalid_size() > 0) {
    const v1::Diagnostic& d = report.invalid(0);
    return absl::FailedPreconditionError(
        absl::StrCat("the rule could not be run: ", d.file(),
                     d.line() > 0 ? absl::StrCat(":", d.line()) : "", " ", d.message()));
  }
  if (report.rules_size() == 0 || report.rules(0).tests_size() == 0) {
    return absl::InternalError("the test worker returned no result");
  }
  *out.mutable_result() = report.rules(0).tests(0);
  out.set_matched(out.result().outcome() == v1::TestCaseResult::OUTCOME_PASSED);
  std::string dedup = OutputString(out.result(), "dedup");
  if (dedup.empty()) dedup = OutputString(out.result(), "title");
  if (dedup.empty()) dedup = rule->display_name().empty() ? rule->id() : rule->display_name();
  out.set_dedup_string(dedup);
  out.set_threshold(std::max<int64_t>(1, rule->threshold()));
  out.set_dedup_period_minutes(rule->dedup_period_minutes() > 0 ? rule->dedup_period_minutes()
                                                                : 60);
  // The live windows of that dedup string.
  absl::Status parse;
  PANTHERD_RETURN_IF_ERROR(
      env.store->Scan(store::Family::kDedup, absl::StrCat(rule->id(), std::string(1, '\0')),
                      [&](absl::string_view, absl::string_view value) {
                        v1::DedupWindow w;
                        if (!w.ParseFromArray(value.data(), static_cast<int>(value.size())))
                          return true;
                        if (w.type() != v1::ALERT_TYPE_RULE || w.dedup_string() != dedup)
                          return true;
                        v1::WindowView& v = *out.add_windows();
                        v.set_rule_id(w.rule_id());
                        v.set_type(w.type());
                        v.set_dedup_string(w.dedup_string());
                        *v.mutable_start() = w.start();
                        *v.mutable_end() = w.end();
                        v.set_count(w.event_count());
                        v.set_threshold(out.threshold());
                        *v.mutable_first_event_time() = w.first_event_time();
                        *v.mutable_last_event_time() = w.last_event_time();
                        v.set_alert_id(w.alert_id());
                        return true;
                      }));
  return out;
}

// ---- Replay -------------------------------------------------------------------

// ReplayRules (engine/replay.h): the set, then the replay in an isolated
// worker and a scratch store under the data directory, with progress.
absl::StatusOr<v1::ReplayRulesResponse> Replay(ServiceEnv& env, const v1::ReplayRulesRequest& req,
                                               const std::atomic<bool>& cancelled,
                                               const engine::ReplayProgressFn& progress) {
  const std::string log_type =
      req.log_type().empty() ? std::string(engine::kOktaSystemLog) : req.log_type();
  if (!engine::IsSupportedLogType(log_type)) {
    return absl::InvalidArgumentError(
        absl::StrCat("log_type: pantherd does not ingest ", log_type));
  }
  engine::ReplayOptions options;
  options.until = req.has_until()
                      ? absl::FromUnixMicros(TimeUtil::TimestampToMicroseconds(req.until()))
                      : env.now();
  options.since = req.has_since()
                      ? absl::FromUnixMicros(TimeUtil::TimestampToMicroseconds(req.since()))
                      : options.until - absl::Hours(24);
  if (options.since >= options.until)
    return absl::InvalidArgumentError("since: must be before until");
  const std::vector<std::string> ids(req.stored().rule_ids().begin(),
                                     req.stored().rule_ids().end());
  PANTHERD_ASSIGN_OR_RETURN(
      engine::RuleSetManager::ReplaySet set,
      env.rules->PrepareReplay(req.has_content() ? &req.content() : nullptr, ids, log_type));
  unsigned char nonce[8];
  RAND_bytes(nonce, sizeof(nonce));
  options.scratch_dir = absl::StrCat(env.data_dir, "/replay-",
                                     absl::BytesToHexString(absl::string_view(
                                         reinterpret_cast<const char*>(nonce), sizeof(nonce))));
  options.events = env.store;
  options.pool = env.pool;
  options.log_type = log_type;
  options.now = env.now;
  options.cancelled = &cancelled;
  return engine::RunReplay(set, options, progress);
}

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
        // In the index's order (by log type, time, id), so an alert's
        // events in one block are found with one decompression.
        engine::StoredEventReader reader(*env->store);
        for (const std::string& key : keys) {
          if (cancelled) return grpc::Status(grpc::StatusCode::CANCELLED, "cancelled");
          absl::StatusOr<engine::StoredEvent> e = engine::ParseStoredEventKey(key);
          if (!e.ok()) return ToGrpcStatus(absl::DataLossError(e.status().message()));
          absl::StatusOr<std::optional<std::string>> found = reader.Find(key);
          if (!found.ok()) return ToGrpcStatus(found.status());
          if (!found->has_value()) {
            ++not_retained;
            continue;
          }
          std::string json = std::move(**found);
          v1::MatchedEvent* m = message.add_events();
          if (!absl::StartsWith(e->id, "#")) m->set_event_id(std::string(e->id));
          m->set_log_type(std::string(e->log_type));
          *m->mutable_event_time() =
              TimeUtil::MicrosecondsToTimestamp(absl::ToUnixMicros(e->event_time));
          m->set_original_bytes(static_cast<int64_t>(json.size()));
          bytes += json.size();
          m->set_json(std::move(json));
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

grpc::ServerUnaryReactor* DetectionServiceImpl::ExplainEvent(grpc::CallbackServerContext* ctx,
                                                             const v1::ExplainEventRequest* req,
                                                             v1::ExplainEventResponse* resp) {
  PANTHERD_AUTHORIZE_REQUEST(caller, req);
  if (req->rule_id().empty()) return FinishUnary(ctx, InvalidField("rule_id", "is required"));
  if (req->event_case() == v1::ExplainEventRequest::EVENT_NOT_SET) {
    return FinishUnary(ctx, InvalidField("event", "give event_id or event_json"));
  }
  // It waits on a test worker, like RunTests.
  return RunBlocking(ctx, env_->evaluation, [env = env_, req, resp]() -> grpc::Status {
    absl::StatusOr<v1::ExplainEventResponse> explained = Explain(*env, *req);
    if (!explained.ok()) return ToGrpcStatus(explained.status());
    *resp = std::move(*explained);
    return grpc::Status::OK;
  });
}

grpc::ServerWriteReactor<v1::ReplayRulesResponse>* DetectionServiceImpl::ReplayRules(
    grpc::CallbackServerContext* ctx, const v1::ReplayRulesRequest* req) {
  PANTHERD_AUTHORIZE_REQUEST(caller, req);
  const v1::ReplayRulesRequest request = *req;
  // It runs on the replay executor (one replay at a time), never on the
  // threads or workers of live batches and test runs.
  return StartProducerStream<v1::ReplayRulesResponse>(
      env_->replays,
      [env = env_, request](const ProducerEmit<v1::ReplayRulesResponse>& emit,
                            const std::atomic<bool>& cancelled) -> grpc::Status {
        if (request.target_case() == v1::ReplayRulesRequest::TARGET_NOT_SET) {
          return InvalidField("target", "give stored rule ids or content");
        }
        auto progress = [&](const v1::ReplayProgress& p) {
          v1::ReplayRulesResponse message;
          *message.mutable_progress() = p;
          return emit(std::move(message));
        };
        absl::StatusOr<v1::ReplayRulesResponse> replayed =
            Replay(*env, request, cancelled, progress);
        if (!replayed.ok()) return ToGrpcStatus(replayed.status());
        if (!emit(std::move(*replayed))) {
          return grpc::Status(grpc::StatusCode::CANCELLED, "the client stopped reading");
        }
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
