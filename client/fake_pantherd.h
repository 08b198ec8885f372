// Test-only: fake pantherd services on 127.0.0.1 (a port chosen by the OS),
// for the in-process tests of pantherctl. Each fake answers from fields the
// test sets before the call and records what it received.
//
//   FakeAdminService admin;
//   admin.status.set_version("0.1.0");
//   FakePantherd server({&admin});
//   RunCli({"--server", server.address(), "status"}, out, err);
#ifndef PANTHERD_CLIENT_FAKE_PANTHERD_H_
#define PANTHERD_CLIENT_FAKE_PANTHERD_H_

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "client/cli.h"
#include "client/connection.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/grpcpp.h"
#include "pantherd/v1/admin_service.grpc.pb.h"
#include "pantherd/v1/detection_service.grpc.pb.h"

namespace pantherd::client::testing {

// Returns the "authorization" metadata of a call, or "<none>".
inline std::string AuthorizationOf(const grpc::ServerContext& context) {
  auto it = context.client_metadata().find("authorization");
  if (it == context.client_metadata().end()) return "<none>";
  return std::string(it->second.data(), it->second.size());
}

// Returns a port on 127.0.0.1 that was free a moment ago and is now closed:
// bound, read back and released. Returns 0 on failure.
inline int ReserveClosedPort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return 0;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  int port = 0;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port = ntohs(addr.sin_port);
  }
  close(fd);
  return port;
}

// A TCP listener on 127.0.0.1 that never accepts nor answers: connections
// complete in the kernel, but no gRPC handshake ever does.
class SilentListener {
 public:
  SilentListener() {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    if (fd_ < 0) return;
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(addr);
    if (bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 && listen(fd_, 16) == 0 &&
        getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
      port_ = ntohs(addr.sin_port);
    }
  }
  ~SilentListener() {
    if (fd_ >= 0) close(fd_);
  }
  SilentListener(const SilentListener&) = delete;
  SilentListener& operator=(const SilentListener&) = delete;

  // 0 when the listener could not be set up.
  int port() const { return port_; }

 private:
  int fd_ = -1;
  int port_ = 0;
};

class FakeAdminService final : public pantherd::v1::AdminService::Service {
 public:
  grpc::Status GetServerStatus(grpc::ServerContext* context,
                               const pantherd::v1::GetServerStatusRequest*,
                               pantherd::v1::GetServerStatusResponse* response) override {
    std::lock_guard<std::mutex> lock(mu);
    last_authorization = AuthorizationOf(*context);
    if (!status_error.ok()) return status_error;
    *response = status;
    return grpc::Status::OK;
  }

  grpc::Status WhoAmI(grpc::ServerContext* context, const pantherd::v1::WhoAmIRequest*,
                      pantherd::v1::WhoAmIResponse* response) override {
    absl::SleepFor(whoami_delay);
    std::lock_guard<std::mutex> lock(mu);
    last_authorization = AuthorizationOf(*context);
    *response = whoami;
    return grpc::Status::OK;
  }

  // Answers list_users_error when set, else `users`; counts the calls.
  grpc::Status ListUsers(grpc::ServerContext*, const pantherd::v1::ListUsersRequest*,
                         pantherd::v1::ListUsersResponse* response) override {
    std::lock_guard<std::mutex> lock(mu);
    ++list_users_calls;
    if (!list_users_error.ok()) return list_users_error;
    for (const auto& user : users) *response->add_users() = user;
    return grpc::Status::OK;
  }

  std::mutex mu;
  // Set by the test before calls.
  std::vector<pantherd::v1::User> users;
  grpc::Status list_users_error = grpc::Status::OK;
  int list_users_calls = 0;
  pantherd::v1::GetServerStatusResponse status;
  grpc::Status status_error = grpc::Status::OK;
  pantherd::v1::WhoAmIResponse whoami;
  absl::Duration whoami_delay = absl::ZeroDuration();
  // Recorded from the last call.
  std::string last_authorization;
};

class FakeHealthService final : public grpc::health::v1::Health::Service {
 public:
  grpc::Status Check(grpc::ServerContext*, const grpc::health::v1::HealthCheckRequest* request,
                     grpc::health::v1::HealthCheckResponse* response) override {
    std::lock_guard<std::mutex> lock(mu);
    last_service = request->service();
    response->set_status(serving_status);
    return grpc::Status::OK;
  }

  std::mutex mu;
  grpc::health::v1::HealthCheckResponse::ServingStatus serving_status =
      grpc::health::v1::HealthCheckResponse::SERVING;
  std::string last_service = "<no call>";
};

// Answers the rule, test, alert, source and destination RPCs pantherctl uses.
// ListRules and ListAlerts serve their lists in pages of page_size items
// (tokens "1", "2", ...); methods not overridden answer UNIMPLEMENTED like a
// young server.
class FakeDetectionService final : public pantherd::v1::DetectionService::Service {
 public:
  grpc::Status ListRules(grpc::ServerContext*, const pantherd::v1::ListRulesRequest* request,
                         pantherd::v1::ListRulesResponse* response) override {
    std::lock_guard<std::mutex> lock(mu);
    list_rules_requests.push_back(*request);
    const int start =
        request->page().page_token().empty() ? 0 : std::stoi(request->page().page_token());
    for (int i = start; i < static_cast<int>(rules.size()) && i < start + page_size; ++i) {
      *response->add_rules() = rules[i];
    }
    if (start + page_size < static_cast<int>(rules.size())) {
      response->set_next_page_token(std::to_string(start + page_size));
    }
    response->set_total_count(static_cast<int>(rules.size()));
    return grpc::Status::OK;
  }

  grpc::Status ListAlerts(grpc::ServerContext*, const pantherd::v1::ListAlertsRequest* request,
                          pantherd::v1::ListAlertsResponse* response) override {
    std::lock_guard<std::mutex> lock(mu);
    list_alerts_requests.push_back(*request);
    if (!alerts_error.ok()) return alerts_error;
    const int start =
        request->page().page_token().empty() ? 0 : std::stoi(request->page().page_token());
    const int size = std::min(page_size, std::max(request->page().page_size(), 1));
    for (int i = start; i < static_cast<int>(alerts.size()) && i < start + size; ++i) {
      *response->add_alerts() = alerts[i];
    }
    if (start + size < static_cast<int>(alerts.size())) {
      response->set_next_page_token(std::to_string(start + size));
      if (request->count_remaining()) {
        const int64_t remaining = static_cast<int64_t>(alerts.size()) - (start + size);
        // As pantherd: beyond max_alerts_counted the count is a lower bound.
        response->set_remaining_count(std::min(remaining, max_alerts_counted));
        response->set_remaining_count_is_lower_bound(remaining > max_alerts_counted);
      }
    }
    return grpc::Status::OK;
  }

  // Answers alerts_error when set, else the alert of `alerts` with the id
  // asked for, else NOT_FOUND.
  grpc::Status GetAlert(grpc::ServerContext*, const pantherd::v1::GetAlertRequest* request,
                        pantherd::v1::GetAlertResponse* response) override {
    std::lock_guard<std::mutex> lock(mu);
    if (!alerts_error.ok()) return alerts_error;
    for (const pantherd::v1::Alert& alert : alerts) {
      if (alert.id() == request->id()) {
        *response->mutable_alert() = alert;
        for (const auto& d : alert_deliveries) *response->add_deliveries() = d;
        return grpc::Status::OK;
      }
    }
    return grpc::Status(grpc::StatusCode::NOT_FOUND, "no such alert");
  }

  grpc::Status UpdateAlert(grpc::ServerContext*, const pantherd::v1::UpdateAlertRequest* request,
                           pantherd::v1::UpdateAlertResponse* response) override {
    std::lock_guard<std::mutex> lock(mu);
    update_alert_requests.push_back(*request);
    response->mutable_alert()->set_id(request->id());
    response->mutable_alert()->set_status(request->status());
    return grpc::Status::OK;
  }

  // Records the request; answers upload_error when set (with its error
  // details), else upload_response.
  grpc::Status UploadRule(grpc::ServerContext*, const pantherd::v1::UploadRuleRequest* request,
                          pantherd::v1::UploadRuleResponse* response) override {
    std::lock_guard<std::mutex> lock(mu);
    upload_requests.push_back(*request);
    if (!upload_error.ok()) return upload_error;
    *response = upload_response;
    return grpc::Status::OK;
  }

  // Records the request; answers run_tests_error when set, else
  // run_tests_response.
  grpc::Status RunTests(grpc::ServerContext*, const pantherd::v1::RunTestsRequest* request,
                        pantherd::v1::RunTestsResponse* response) override {
    std::lock_guard<std::mutex> lock(mu);
    run_tests_requests.push_back(*request);
    if (!run_tests_error.ok()) return run_tests_error;
    *response = run_tests_response;
    return grpc::Status::OK;
  }

  // Answers with rule `id` at version 7 and the requested state.
  grpc::Status SetRuleEnabled(grpc::ServerContext*,
                              const pantherd::v1::SetRuleEnabledRequest* request,
                              pantherd::v1::SetRuleEnabledResponse* response) override {
    std::lock_guard<std::mutex> lock(mu);
    set_enabled_requests.push_back(*request);
    response->mutable_rule()->set_id(request->id());
    response->mutable_rule()->set_enabled(request->enabled());
    response->mutable_rule()->set_version(7);
    return grpc::Status::OK;
  }

  // IngestEvents: records every request and answers each batch with
  // ingest_handler(request) (its batch_id set here); the default accepts all.
  // After ingest_fail_after batches (when >= 0) the stream ends with
  // ingest_failure instead, without answering the later ones.
  grpc::Status IngestEvents(
      grpc::ServerContext*,
      grpc::ServerReaderWriter<pantherd::v1::IngestEventsResponse,
                               pantherd::v1::IngestEventsRequest>* stream) override {
    pantherd::v1::IngestEventsRequest request;
    while (stream->Read(&request)) {
      pantherd::v1::IngestEventsResponse response;
      {
        std::lock_guard<std::mutex> lock(mu);
        ingest_requests.push_back(request);
        if (ingest_fail_after >= 0 && ingest_answered >= ingest_fail_after) return ingest_failure;
        ++ingest_answered;
        if (ingest_handler) {
          response = ingest_handler(request);
        } else {
          response.set_accepted(request.events_size());
        }
      }
      response.set_batch_id(request.batch_id());
      if (!stream->Write(response)) break;
    }
    return grpc::Status::OK;
  }

  // StreamAlerts: call i (0-based) sends alert_streams[i], then ends with
  // alert_stream_ends[i] (OK when missing). Calls beyond the scripts stay
  // open, sending nothing, until cancelled. Records every request.
  grpc::Status StreamAlerts(
      grpc::ServerContext* context, const pantherd::v1::StreamAlertsRequest* request,
      grpc::ServerWriter<pantherd::v1::StreamAlertsResponse>* writer) override {
    std::vector<pantherd::v1::StreamAlertsResponse> script;
    grpc::Status end = grpc::Status::OK;
    bool scripted = false;
    {
      std::lock_guard<std::mutex> lock(mu);
      const size_t call = stream_alerts_requests.size();
      stream_alerts_requests.push_back(*request);
      if (call < alert_streams.size()) {
        scripted = true;
        script = alert_streams[call];
        if (call < alert_stream_ends.size()) end = alert_stream_ends[call];
      }
    }
    for (const auto& response : script) {
      if (!writer->Write(response)) return grpc::Status::OK;
    }
    if (scripted) return end;
    while (!context->IsCancelled()) absl::SleepFor(absl::Milliseconds(5));
    return grpc::Status::CANCELLED;
  }

  // Source RPCs: record the request; answer sources_error when set, else
  // the request's source echoed back (AddSource, SetSourcePaused) or
  // `sources` (ListSources).
  grpc::Status AddSource(grpc::ServerContext*, const pantherd::v1::AddSourceRequest* request,
                         pantherd::v1::AddSourceResponse* response) override {
    std::lock_guard<std::mutex> lock(mu);
    add_source_requests.push_back(*request);
    if (!sources_error.ok()) return sources_error;
    pantherd::v1::Source* s = response->mutable_source();
    s->set_id("src_1");
    s->set_label(request->label());
    s->set_kind("okta");
    s->set_state(pantherd::v1::SOURCE_STATE_ACTIVE);
    s->set_domain(request->okta().domain());
    s->set_base_url(request->okta().base_url());
    *s->mutable_poll_interval() = request->okta().poll_interval();
    for (const std::string& a : add_source_assumptions) response->add_assumptions(a);
    if (!request->skip_connection_check()) response->mutable_check()->set_ok(true);
    return grpc::Status::OK;
  }
  // Records the request; answers sources_error when set, else
  // test_source_response.
  grpc::Status TestSource(grpc::ServerContext*, const pantherd::v1::TestSourceRequest* request,
                          pantherd::v1::TestSourceResponse* response) override {
    std::lock_guard<std::mutex> lock(mu);
    test_source_requests.push_back(*request);
    if (!sources_error.ok()) return sources_error;
    *response = test_source_response;
    return grpc::Status::OK;
  }
  grpc::Status ListSources(grpc::ServerContext*, const pantherd::v1::ListSourcesRequest*,
                           pantherd::v1::ListSourcesResponse* response) override {
    std::lock_guard<std::mutex> lock(mu);
    if (!sources_error.ok()) return sources_error;
    for (const auto& s : sources) *response->add_sources() = s;
    return grpc::Status::OK;
  }
  grpc::Status SetSourcePaused(grpc::ServerContext*,
                               const pantherd::v1::SetSourcePausedRequest* request,
                               pantherd::v1::SetSourcePausedResponse* response) override {
    std::lock_guard<std::mutex> lock(mu);
    set_paused_requests.push_back(*request);
    if (!sources_error.ok()) return sources_error;
    response->mutable_source()->set_id(request->id());
    response->mutable_source()->set_state(request->paused() ? pantherd::v1::SOURCE_STATE_PAUSED
                                                            : pantherd::v1::SOURCE_STATE_ACTIVE);
    return grpc::Status::OK;
  }
  grpc::Status RemoveSource(grpc::ServerContext*, const pantherd::v1::RemoveSourceRequest* request,
                            pantherd::v1::RemoveSourceResponse*) override {
    std::lock_guard<std::mutex> lock(mu);
    remove_source_requests.push_back(*request);
    return sources_error;
  }

  // Destination RPCs: record the request; answer destinations_error when
  // set, else: AddDestination and UpdateDestination a destination built from
  // the request (id "d000000000000001", the secret and header names but
  // never their values); ListDestinations `destinations` and
  // `destination_kinds`; GetDestination the first of `destinations` whose id
  // or name matches (NOT_FOUND otherwise) with `destination_stats`;
  // RemoveDestination remove_destination_response; TestDestination
  // test_destination_response; ResendAlert resend_response.
  grpc::Status AddDestination(grpc::ServerContext*,
                              const pantherd::v1::AddDestinationRequest* request,
                              pantherd::v1::AddDestinationResponse* response) override {
    std::lock_guard<std::mutex> lock(mu);
    add_destination_requests.push_back(*request);
    if (!destinations_error.ok()) return destinations_error;
    pantherd::v1::Destination* d = response->mutable_destination();
    d->set_id("d000000000000001");
    d->set_name(request->name());
    d->set_kind(request->kind());
    *d->mutable_settings() = request->settings();
    std::vector<std::string> names;
    for (const auto& [name, value] : request->secrets()) names.push_back(name);
    std::sort(names.begin(), names.end());
    for (const std::string& name : names) d->add_secrets_set(name);
    names.clear();
    for (const auto& [name, value] : request->headers()) names.push_back(name);
    std::sort(names.begin(), names.end());
    for (const std::string& name : names) d->add_header_names(name);
    *d->mutable_filters() = request->filters();
    d->set_created_by("admin");
    return grpc::Status::OK;
  }
  grpc::Status ListDestinations(grpc::ServerContext*, const pantherd::v1::ListDestinationsRequest*,
                                pantherd::v1::ListDestinationsResponse* response) override {
    std::lock_guard<std::mutex> lock(mu);
    ++list_destinations_calls;
    if (!destinations_error.ok()) return destinations_error;
    for (const auto& d : destinations) *response->add_destinations() = d;
    for (const auto& k : destination_kinds) *response->add_kinds() = k;
    return grpc::Status::OK;
  }
  grpc::Status GetDestination(grpc::ServerContext*,
                              const pantherd::v1::GetDestinationRequest* request,
                              pantherd::v1::GetDestinationResponse* response) override {
    std::lock_guard<std::mutex> lock(mu);
    get_destination_requests.push_back(*request);
    if (!destinations_error.ok()) return destinations_error;
    for (const auto& d : destinations) {
      if (d.id() == request->destination() || d.name() == request->destination()) {
        *response->mutable_destination() = d;
        *response->mutable_stats() = destination_stats;
        return grpc::Status::OK;
      }
    }
    return grpc::Status(grpc::StatusCode::NOT_FOUND, "no such destination");
  }
  grpc::Status UpdateDestination(grpc::ServerContext*,
                                 const pantherd::v1::UpdateDestinationRequest* request,
                                 pantherd::v1::UpdateDestinationResponse* response) override {
    std::lock_guard<std::mutex> lock(mu);
    update_destination_requests.push_back(*request);
    if (!destinations_error.ok()) return destinations_error;
    pantherd::v1::Destination* d = response->mutable_destination();
    d->set_id("d000000000000001");
    d->set_name(request->has_name() ? request->name() : request->destination());
    *d->mutable_settings() = request->settings();
    if (request->has_filters()) *d->mutable_filters() = request->filters();
    return grpc::Status::OK;
  }
  grpc::Status RemoveDestination(grpc::ServerContext*,
                                 const pantherd::v1::RemoveDestinationRequest* request,
                                 pantherd::v1::RemoveDestinationResponse* response) override {
    std::lock_guard<std::mutex> lock(mu);
    remove_destination_requests.push_back(*request);
    if (!destinations_error.ok()) return destinations_error;
    *response = remove_destination_response;
    return grpc::Status::OK;
  }
  grpc::Status TestDestination(grpc::ServerContext*,
                               const pantherd::v1::TestDestinationRequest* request,
                               pantherd::v1::TestDestinationResponse* response) override {
    std::lock_guard<std::mutex> lock(mu);
    test_destination_requests.push_back(*request);
    if (!destinations_error.ok()) return destinations_error;
    *response = test_destination_response;
    return grpc::Status::OK;
  }
  grpc::Status ResendAlert(grpc::ServerContext*, const pantherd::v1::ResendAlertRequest* request,
                           pantherd::v1::ResendAlertResponse* response) override {
    std::lock_guard<std::mutex> lock(mu);
    resend_requests.push_back(*request);
    if (!destinations_error.ok()) return destinations_error;
    *response = resend_response;
    return grpc::Status::OK;
  }

  size_t StreamAlertsCalls() {
    std::lock_guard<std::mutex> lock(mu);
    return stream_alerts_requests.size();
  }

  std::mutex mu;
  std::vector<pantherd::v1::Destination> destinations;
  std::vector<pantherd::v1::DestinationKindInfo> destination_kinds;
  pantherd::v1::DestinationStats destination_stats;
  grpc::Status destinations_error = grpc::Status::OK;
  int list_destinations_calls = 0;
  std::vector<pantherd::v1::AddDestinationRequest> add_destination_requests;
  std::vector<pantherd::v1::GetDestinationRequest> get_destination_requests;
  std::vector<pantherd::v1::UpdateDestinationRequest> update_destination_requests;
  std::vector<pantherd::v1::RemoveDestinationRequest> remove_destination_requests;
  pantherd::v1::RemoveDestinationResponse remove_destination_response;
  std::vector<pantherd::v1::TestDestinationRequest> test_destination_requests;
  pantherd::v1::TestDestinationResponse test_destination_response;
  std::vector<pantherd::v1::ResendAlertRequest> resend_requests;
  pantherd::v1::ResendAlertResponse resend_response;
  // GetAlert adds these to its answer.
  std::vector<pantherd::v1::AlertDelivery> alert_deliveries;
  std::vector<pantherd::v1::Source> sources;
  grpc::Status sources_error = grpc::Status::OK;
  std::vector<pantherd::v1::AddSourceRequest> add_source_requests;
  std::vector<std::string> add_source_assumptions;
  std::vector<pantherd::v1::TestSourceRequest> test_source_requests;
  pantherd::v1::TestSourceResponse test_source_response;
  std::vector<pantherd::v1::SetSourcePausedRequest> set_paused_requests;
  std::vector<pantherd::v1::RemoveSourceRequest> remove_source_requests;
  std::function<pantherd::v1::IngestEventsResponse(const pantherd::v1::IngestEventsRequest&)>
      ingest_handler;
  int ingest_fail_after = -1;
  grpc::Status ingest_failure{grpc::StatusCode::UNAVAILABLE, "pantherd is shutting down"};
  int ingest_answered = 0;
  std::vector<pantherd::v1::IngestEventsRequest> ingest_requests;
  std::vector<std::vector<pantherd::v1::StreamAlertsResponse>> alert_streams;
  std::vector<grpc::Status> alert_stream_ends;
  std::vector<pantherd::v1::StreamAlertsRequest> stream_alerts_requests;
  int page_size = 2;
  pantherd::v1::UploadRuleResponse upload_response;
  grpc::Status upload_error = grpc::Status::OK;
  std::vector<pantherd::v1::UploadRuleRequest> upload_requests;
  pantherd::v1::RunTestsResponse run_tests_response;
  grpc::Status run_tests_error = grpc::Status::OK;
  std::vector<pantherd::v1::RunTestsRequest> run_tests_requests;
  std::vector<pantherd::v1::SetRuleEnabledRequest> set_enabled_requests;
  std::vector<pantherd::v1::Rule> rules;
  std::vector<pantherd::v1::Alert> alerts;
  grpc::Status alerts_error = grpc::Status::OK;
  std::vector<pantherd::v1::ListRulesRequest> list_rules_requests;
  std::vector<pantherd::v1::ListAlertsRequest> list_alerts_requests;
  int64_t max_alerts_counted = 10000;
  std::vector<pantherd::v1::UpdateAlertRequest> update_alert_requests;
};

// A gRPC server on 127.0.0.1:<free port> serving the given services (not
// owned; they must outlive it). Shuts down on destruction.
class FakePantherd {
 public:
  explicit FakePantherd(const std::vector<grpc::Service*>& services) {
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
    builder.SetMaxReceiveMessageSize(kMaxMessageBytes);  // As pantherd, for whole folders.
    for (grpc::Service* service : services) builder.RegisterService(service);
    server_ = builder.BuildAndStart();
  }
  ~FakePantherd() {
    if (server_ != nullptr) server_->Shutdown(std::chrono::system_clock::now());
  }

  // False when the server could not start.
  bool ok() const { return server_ != nullptr && port_ > 0; }
  std::string address() const { return absl::StrCat("127.0.0.1:", port_); }

 private:
  int port_ = 0;
  std::unique_ptr<grpc::Server> server_;
};

// What one in-process pantherctl run printed and returned.
struct CliResult {
  int code = -1;
  std::string out;
  std::string err;
};

// Runs pantherctl in-process with `args` (without argv[0]), without colours;
// `err_terminal` makes commands treat the error stream as a terminal (their
// progress lines are drawn there).
inline CliResult RunPantherctl(const std::vector<std::string>& args, bool err_terminal = false) {
  std::ostringstream out, err;
  CliResult result;
  result.code = RunCli(args, out, err, /*color=*/false, err_terminal);
  result.out = out.str();
  result.err = err.str();
  return result;
}

}  // namespace pantherd::client::testing

#endif  // PANTHERD_CLIENT_FAKE_PANTHERD_H_
