// End to end: users, roles, API tokens, TLS and the audit trail against the
// real pantherd and pantherctl binaries, on 127.0.0.1 only.
//
// The permission matrix test calls every RPC of both services (enumerated
// from the descriptors) without a token, with an unknown, a revoked and an
// expired token, and as each role, and checks the outcome against the
// permission table of server/auth.h.
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <future>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/util/time_util.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "pantherd/v1/admin_service.grpc.pb.h"
#include "pantherd/v1/admin_service.pb.h"
#include "pantherd/v1/detection_service.grpc.pb.h"
#include "pantherd/v1/detection_service.pb.h"
#include "server/auth.h"
#include "tests/test_util.h"

namespace pantherd::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kPantherd[] = PANTHERD_BINARY;
constexpr char kPantherctl[] = PANTHERCTL_BINARY;

std::vector<std::string> AllMethods() { return server::ServiceMethods(); }

class AuthE2eTest : public ::testing::Test {
 protected:
  void Start(std::vector<std::string> extra = {}) {
    extra.insert(extra.begin(), {"--workers", "1"});
    absl::StatusOr<ServerProcess> s =
        ServerProcess::Start(kPantherd, tmp_.Sub("data"), tmp_.path(), extra, absl::Seconds(60));
    ASSERT_TRUE(s.ok()) << s.status();
    server_ = std::make_unique<ServerProcess>(std::move(*s));
    ASSERT_FALSE(server_->admin_token().empty());
    channel_ = grpc::CreateChannel(server_->address(), grpc::InsecureChannelCredentials());
    admin_ = v1::AdminService::NewStub(channel_);
    detection_ = v1::DetectionService::NewStub(channel_);
  }

  void Authorize(grpc::ClientContext* ctx, const std::string& token) {
    if (!token.empty()) ctx->AddMetadata("authorization", "Bearer " + token);
    ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  }

  // Creates user `name` with `role` and returns a new token of theirs.
  std::string UserToken(const std::string& name, v1::Role role, int ttl_seconds = 0) {
    grpc::ClientContext c1;
    Authorize(&c1, server_->admin_token());
    v1::CreateUserRequest cu;
    cu.set_name(name);
    cu.set_role(role);
    v1::CreateUserResponse user;
    grpc::Status s = admin_->CreateUser(&c1, cu, &user);
    EXPECT_TRUE(s.ok() || s.error_code() == grpc::StatusCode::ALREADY_EXISTS) << s.error_message();
    grpc::ClientContext c2;
    Authorize(&c2, server_->admin_token());
    v1::CreateTokenRequest ct;
    ct.set_name(absl::StrCat("t", ++tokens_made_));
    ct.set_owner(name);
    if (ttl_seconds > 0) {
      *ct.mutable_ttl() = google::protobuf::util::TimeUtil::SecondsToDuration(ttl_seconds);
    }
    v1::CreateTokenResponse token;
    s = admin_->CreateToken(&c2, ct, &token);
    EXPECT_TRUE(s.ok()) << s.error_message();
    secrets_.push_back(token.secret());
    return token.secret();
  }

  grpc::Status Revoke(const std::string& secret) {
    grpc::ClientContext ctx;
    Authorize(&ctx, server_->admin_token());
    v1::RevokeTokenRequest req;
    req.set_id(server::TokenIdOf(server::HashToken(secret)));
    v1::RevokeTokenResponse resp;
    return admin_->RevokeToken(&ctx, req, &resp);
  }

  // Calls `method` with an empty request and `token`.
  grpc::Status Call(const std::string& method, const std::string& token) {
    grpc::ClientContext ctx;
    Authorize(&ctx, token);
    if (method == "pantherd.v1.DetectionService/IngestEvents") {
      auto stream = detection_->IngestEvents(&ctx);
      stream->WritesDone();
      return stream->Finish();
    }
    if (method == "pantherd.v1.DetectionService/StreamAlerts") {
      ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(1500));
      auto stream = detection_->StreamAlerts(&ctx, v1::StreamAlertsRequest());
      v1::StreamAlertsResponse resp;
      while (stream->Read(&resp)) {
      }
      return stream->Finish();
    }
    grpc::GenericStub stub(channel_);
    grpc::ByteBuffer request, response;
    grpc::Slice empty("");
    request = grpc::ByteBuffer(&empty, 1);
    std::promise<grpc::Status> done;
    stub.UnaryCall(&ctx, "/" + method, grpc::StubOptions(), &request, &response,
                   [&done](grpc::Status s) { done.set_value(std::move(s)); });
    return done.get_future().get();
  }

  // Runs pantherctl as the admin (unless args name a token themselves).
  RunResult Ctl(const std::vector<std::string>& args) {
    absl::StatusOr<RunResult> r = RunCommand(server_->Ctl(kPantherctl, args), tmp_.path());
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *std::move(r) : RunResult();
  }
  // Runs pantherctl with `token`, passed in a mode-0600 --token-file as
  // users should (--token would show it to other local users and warn).
  RunResult CtlAs(const std::string& token, const std::vector<std::string>& args) {
    const std::string file = tmp_.Sub(absl::StrCat("token-", ++token_files_made_));
    {
      std::ofstream out(file);
      out << token << "\n";
    }
    chmod(file.c_str(), 0600);
    std::vector<std::string> argv = {kPantherctl, "--server", server_->address(), "--token-file",
                                     file};
    argv.insert(argv.end(), args.begin(), args.end());
    absl::StatusOr<RunResult> r = RunCommand(argv, tmp_.path());
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *std::move(r) : RunResult();
  }

  TempDir tmp_;
  std::unique_ptr<ServerProcess> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::AdminService::Stub> admin_;
  std::unique_ptr<v1::DetectionService::Stub> detection_;
  int tokens_made_ = 0;
  int token_files_made_ = 0;
  std::vector<std::string> secrets_;
};

bool IsAuthFailure(grpc::StatusCode code) {
  return code == grpc::StatusCode::UNAUTHENTICATED || code == grpc::StatusCode::PERMISSION_DENIED;
}

TEST_F(AuthE2eTest, EveryRpcMatchesThePermissionTable) {
  Start();
  const std::string viewer = UserToken("vera", v1::ROLE_VIEWER);
  const std::string analyst = UserToken("anna", v1::ROLE_ANALYST);
  const std::string author = UserToken("otto", v1::ROLE_AUTHOR);
  const std::string admin = UserToken("ada", v1::ROLE_ADMIN);
  const std::string revoked = UserToken("rev", v1::ROLE_ADMIN);
  ASSERT_TRUE(Revoke(revoked).ok());
  const std::string expired = UserToken("exp", v1::ROLE_ADMIN, /*ttl_seconds=*/1);
  // Expired and revoked tokens do not count as failed attempts (see
  // server/auth.h), so polling with it does not slow the calls below.
  ASSERT_TRUE(WaitUntil(
      [&] {
        return Call("pantherd.v1.AdminService/WhoAmI", expired).error_code() ==
               grpc::StatusCode::UNAUTHENTICATED;
      },
      absl::Seconds(20), "the one-second token to expire"));

  const std::vector<std::string> methods = AllMethods();
  ASSERT_GE(methods.size(), 20u);
  int unknown_calls = 0;
  for (const std::string& method : methods) {
    SCOPED_TRACE(method);
    const server::MethodRule* rule = server::FindMethodRule(method);
    ASSERT_NE(rule, nullptr);
    grpc::Status none = Call(method, "");
    EXPECT_EQ(none.error_code(), grpc::StatusCode::UNAUTHENTICATED) << none.error_message();
    // Unknown tokens are slowed down after a few (see below): a handful is
    // enough.
    if (++unknown_calls <= 7) {
      grpc::Status unknown = Call(method, "pth_" + std::string(64, '0'));
      EXPECT_EQ(unknown.error_code(), grpc::StatusCode::UNAUTHENTICATED);
    }
    grpc::Status rev = Call(method, revoked);
    EXPECT_EQ(rev.error_code(), grpc::StatusCode::UNAUTHENTICATED);
    EXPECT_THAT(rev.error_message(), HasSubstr("revoked"));
    grpc::Status exp = Call(method, expired);
    EXPECT_EQ(exp.error_code(), grpc::StatusCode::UNAUTHENTICATED);
    EXPECT_THAT(exp.error_message(), HasSubstr("expired"));

    for (const auto& [role, token] :
         std::vector<std::pair<v1::Role, std::string>>{{v1::ROLE_VIEWER, viewer},
                                                       {v1::ROLE_ANALYST, analyst},
                                                       {v1::ROLE_AUTHOR, author},
                                                       {v1::ROLE_ADMIN, admin}}) {
      SCOPED_TRACE(server::RoleName(role));
      grpc::Status s = Call(method, token);
      if (server::RoleHas(role, rule->permission)) {
        EXPECT_FALSE(IsAuthFailure(s.error_code())) << s.error_message();
      } else {
        EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << s.error_message();
        EXPECT_THAT(s.error_message(),
                    HasSubstr(absl::StrCat("missing permission ", rule->permission)));
      }
    }
  }

  // Health and reflection stay open.
  auto health = grpc::health::v1::Health::NewStub(channel_);
  grpc::ClientContext hctx;
  grpc::health::v1::HealthCheckResponse hresp;
  EXPECT_TRUE(health->Check(&hctx, grpc::health::v1::HealthCheckRequest(), &hresp).ok());

  // Denied calls are in the audit trail, with the actor where known.
  RunResult audit = Ctl({"--output", "json", "audit", "--result", "PERMISSION_DENIED", "--actor",
                         "vera", "--limit", "1000"});
  EXPECT_EQ(audit.exit_code, 0) << audit.err;
  EXPECT_THAT(audit.out, HasSubstr("pantherd.v1.DetectionService/UploadRule"));
  EXPECT_THAT(audit.out, HasSubstr("missing permission rules.write"));
  RunResult unauth = Ctl({"--output", "json", "audit", "--result", "UNAUTHENTICATED"});
  EXPECT_EQ(unauth.exit_code, 0) << unauth.err;
  EXPECT_THAT(unauth.out, HasSubstr("has been revoked"));
  // Unknown tokens from one peer were slowed down, and counted.
  EXPECT_THAT(server_->Log(), HasSubstr("slowing down failed authentication"));
  server_->process().Signal(SIGTERM);
  ASSERT_TRUE(server_->process().Wait(absl::Seconds(30)).ok());
  EXPECT_THAT(server_->Log(), HasSubstr("failed_auth_delayed=2 "));
  EXPECT_THAT(server_->Log(), HasSubstr("audit_events_dropped=0 "));
}

TEST_F(AuthE2eTest, RolesInPractice) {
  Start();
  const std::string viewer = UserToken("vera", v1::ROLE_VIEWER);
  const std::string author = UserToken("otto", v1::ROLE_AUTHOR);
  const std::string rules = std::string(PANTHERD_SOURCE_DIR) + "/tests/testdata/rules_e2e/good";

  // A viewer cannot upload a rule, add a source or change an alert.
  RunResult upload = CtlAs(viewer, {"upload", rules});
  EXPECT_EQ(upload.exit_code, 1);
  EXPECT_THAT(upload.err, HasSubstr("permission denied: missing permission rules.write"));
  EXPECT_THAT(upload.err, Not(HasSubstr("PERMISSION_DENIED")));
  {
    grpc::ClientContext ctx;
    Authorize(&ctx, viewer);
    v1::AddSourceRequest req;
    req.set_label("okta");
    v1::AddSourceResponse resp;
    grpc::Status s = detection_->AddSource(&ctx, req, &resp);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
    EXPECT_THAT(s.error_message(), HasSubstr("sources.write"));
  }
  RunResult triage = CtlAs(viewer, {"alerts", "update", "some-alert", "--status", "RESOLVED"});
  EXPECT_EQ(triage.exit_code, 1);
  EXPECT_THAT(triage.err, HasSubstr("missing permission alerts.triage"));
  // A viewer may read.
  RunResult list = CtlAs(viewer, {"rules", "list"});
  EXPECT_EQ(list.exit_code, 0) << list.err;

  // An author can upload (the version records them) but cannot manage users.
  RunResult up = CtlAs(author, {"upload", rules});
  EXPECT_EQ(up.exit_code, 0) << up.err << up.out;
  RunResult users = CtlAs(author, {"users", "create", "mallory", "--role", "admin"});
  EXPECT_EQ(users.exit_code, 1);
  EXPECT_THAT(users.err, HasSubstr("missing permission users.manage"));
  RunResult rl = Ctl({"--output", "json", "rules", "list"});
  ASSERT_EQ(rl.exit_code, 0);
  EXPECT_THAT(rl.out, HasSubstr("\"author\": \"otto\""));

  // whoami.
  RunResult who = CtlAs(author, {"whoami"});
  EXPECT_EQ(who.exit_code, 0) << who.err;
  EXPECT_THAT(who.out, HasSubstr("otto"));
  EXPECT_THAT(who.out, HasSubstr("AUTHOR"));

  // The audit trail names the author, the token and the target.
  RunResult audit = Ctl({"--output", "json", "audit", "--actor", "otto", "--action",
                         "pantherd.v1.DetectionService/UploadRule"});
  EXPECT_EQ(audit.exit_code, 0) << audit.err;
  EXPECT_THAT(audit.out, HasSubstr("\"result\": \"OK\""));
  EXPECT_THAT(audit.out, HasSubstr("files\""));
  EXPECT_THAT(audit.out, HasSubstr("\"actorToken\": \"t2\""));

  // Users: set-role takes effect on the next call; disabling stops tokens.
  RunResult promote = Ctl({"users", "set-role", "vera", "author"});
  EXPECT_EQ(promote.exit_code, 0) << promote.err;
  EXPECT_EQ(CtlAs(viewer, {"upload", rules}).exit_code, 0);
  EXPECT_EQ(Ctl({"users", "disable", "vera"}).exit_code, 0);
  RunResult disabled = CtlAs(viewer, {"whoami"});
  EXPECT_THAT(disabled.err, HasSubstr("not authenticated: user vera is disabled"));
  EXPECT_THAT(disabled.err, Not(HasSubstr("UNAUTHENTICATED")));
  RunResult ul = Ctl({"users", "list", "--all"});
  EXPECT_THAT(ul.out, HasSubstr("vera"));
}

TEST_F(AuthE2eTest, RevokedTokenStopsAtOnceIncludingAnOpenStream) {
  Start();
  const std::string analyst = UserToken("anna", v1::ROLE_ANALYST);
  grpc::ClientContext ctx;
  Authorize(&ctx, analyst);
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  auto stream = detection_->StreamAlerts(&ctx, v1::StreamAlertsRequest());
  ASSERT_TRUE(WaitForSubscribers(*server_, 1));
  const absl::Time revoked_at = absl::Now();
  ASSERT_TRUE(Revoke(analyst).ok());
  v1::StreamAlertsResponse resp;
  while (stream->Read(&resp)) {
  }
  grpc::Status s = stream->Finish();
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED) << s.error_message();
  EXPECT_THAT(s.error_message(), HasSubstr("revoked"));
  // Ended by the revocation, not by the 30 s deadline.
  EXPECT_LT(absl::Now() - revoked_at, absl::Seconds(10));
  EXPECT_EQ(Call("pantherd.v1.AdminService/WhoAmI", analyst).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);

  // An open IngestEvents stream stops at its next batch.
  std::string author = UserToken("otto", v1::ROLE_AUTHOR);
  {
    grpc::ClientContext ictx;
    Authorize(&ictx, author);
    auto ingest = detection_->IngestEvents(&ictx);
    v1::IngestEventsRequest batch;
    batch.set_log_type("Okta.SystemLog");
    batch.set_batch_id(1);
    batch.add_events("{}");
    ASSERT_TRUE(ingest->Write(batch));
    v1::IngestEventsResponse answer;
    ASSERT_TRUE(ingest->Read(&answer));
    grpc::ClientContext c2;
    Authorize(&c2, server_->admin_token());
    v1::CreateTokenRequest keep;  // a second token, so that otto stays usable
    keep.set_name("keep");
    keep.set_owner("otto");
    v1::CreateTokenResponse kept;
    ASSERT_TRUE(admin_->CreateToken(&c2, keep, &kept).ok());
    ASSERT_TRUE(Revoke(author).ok());
    batch.set_batch_id(2);
    ingest->Write(batch);
    ingest->WritesDone();
    while (ingest->Read(&answer)) {
    }
    grpc::Status s = ingest->Finish();
    EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED) << s.error_message();
    secrets_.push_back(kept.secret());
    author = kept.secret();
  }

  // pantherctl tokens: a user manages their own; the secret is shown once.
  RunResult created = CtlAs(author, {"tokens", "create", "ci", "--ttl", "30d"});
  ASSERT_EQ(created.exit_code, 0) << created.err;
  EXPECT_THAT(created.out, HasSubstr("pth_"));
  RunResult mine = CtlAs(author, {"tokens", "list"});
  EXPECT_THAT(mine.out, HasSubstr("ci"));
  EXPECT_THAT(mine.out, Not(HasSubstr("pth_")));
  RunResult others = CtlAs(author, {"tokens", "list", "--all"});
  EXPECT_THAT(others.err, HasSubstr("tokens.manage"));
  RunResult all = Ctl({"tokens", "list", "--all", "--include-revoked"});
  EXPECT_THAT(all.out, HasSubstr("anna"));
  EXPECT_THAT(all.out, Not(HasSubstr("pth_")));
}

TEST_F(AuthE2eTest, FirstStartTokenFileAndLogin) {
  Start();
  struct stat st;
  ASSERT_EQ(stat(server_->admin_token_file().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600);
  EXPECT_THAT(server_->Log(), HasSubstr("first start: created user admin"));
  EXPECT_THAT(server_->Log(), Not(HasSubstr(server_->admin_token())));

  // Without a token: a clear refusal.
  absl::StatusOr<RunResult> bare =
      RunCommand({kPantherctl, "--server", server_->address(), "status"}, tmp_.path());
  ASSERT_TRUE(bare.ok());
  EXPECT_EQ(bare->exit_code, 1);
  EXPECT_THAT(bare->err, HasSubstr("not authenticated: "));
  EXPECT_THAT(bare->err, HasSubstr("no token given; run pantherctl login"));

  // login stores server and token (mode 0600); later commands need neither.
  const std::string config_home = tmp_.Sub("config");
  setenv("XDG_CONFIG_HOME", config_home.c_str(), 1);
  RunResult login = Ctl({"login"});
  EXPECT_EQ(login.exit_code, 0) << login.err;
  EXPECT_THAT(login.out, HasSubstr("as admin"));
  const std::string file = config_home + "/pantherctl/config";
  ASSERT_EQ(stat(file.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600);
  absl::StatusOr<RunResult> who = RunCommand({kPantherctl, "whoami"}, tmp_.path());
  ASSERT_TRUE(who.ok());
  EXPECT_EQ(who->exit_code, 0) << who->err;
  EXPECT_THAT(who->out, HasSubstr("admin"));
  unsetenv("XDG_CONFIG_HOME");

  // Restart: no second admin, the same token works.
  server_->process().Signal(SIGTERM);
  ASSERT_TRUE(server_->process().Wait(absl::Seconds(30)).ok());
  const std::string token = server_->admin_token();
  Start();
  EXPECT_EQ(server_->admin_token(), token);
  EXPECT_THAT(server_->Log(), Not(HasSubstr("first start")));
  EXPECT_EQ(Ctl({"whoami"}).exit_code, 0);
}

TEST_F(AuthE2eTest, SecretsNeverLeak) {
  Start();
  const std::string author = UserToken("otto", v1::ROLE_AUTHOR);
  const std::string okta_secret = "okta-secret-00c0ffee";
  {
    grpc::ClientContext ctx;
    Authorize(&ctx, author);
    v1::AddSourceRequest req;
    req.set_label("okta-prod");
    // A closed loopback port: whatever the server does with the source, it
    // never leaves this machine.
    req.mutable_okta()->set_domain("example.okta.com");
    req.mutable_okta()->set_base_url("http://127.0.0.1:1");
    req.mutable_okta()->set_api_token(okta_secret);
    v1::AddSourceResponse resp;
    grpc::Status s = detection_->AddSource(&ctx, req, &resp);
    EXPECT_FALSE(IsAuthFailure(s.error_code())) << s.error_message();
    EXPECT_THAT(s.error_message(), Not(HasSubstr(okta_secret)));
    EXPECT_THAT(resp.DebugString(), Not(HasSubstr(okta_secret)));
  }
  Call("pantherd.v1.AdminService/WhoAmI", "pth_" + std::string(64, '1'));
  std::vector<std::string> outputs;
  for (const auto& args : std::vector<std::vector<std::string>>{
           {"--output", "json", "audit", "--limit", "1000"},
           {"--output", "json", "tokens", "list", "--all", "--include-revoked"},
           {"--output", "json", "whoami"},
           {"--output", "json", "users", "list", "--all"},
           {"--output", "json", "sources", "list"}}) {
    RunResult r = Ctl(args);
    outputs.push_back(r.out + r.err);
  }
  RunResult audit =
      Ctl({"--output", "json", "audit", "--action", "pantherd.v1.DetectionService/AddSource"});
  EXPECT_THAT(audit.out, HasSubstr("okta-prod"));
  outputs.push_back(server_->Log());
  for (const std::string& text : outputs) {
    EXPECT_THAT(text, Not(HasSubstr(okta_secret)));
    EXPECT_THAT(text, Not(HasSubstr(server_->admin_token())));
    EXPECT_THAT(text, Not(HasSubstr(std::string(64, '1'))));
    for (const std::string& secret : secrets_) EXPECT_THAT(text, Not(HasSubstr(secret)));
  }
}

// Security row 7: a token given with --token works but warns, and pantherctl
// overwrites it in its argv at once, so that /proc/PID/cmdline (what other
// local users, rule code included, can read) stops showing it.
TEST_F(AuthE2eTest, TokenOnCommandLineWarnsAndLeavesTheProcessList) {
  Start();
  const std::string token = server_->admin_token();
  absl::StatusOr<RunResult> who = RunCommand(
      {kPantherctl, "--server", server_->address(), "--token", token, "whoami"}, tmp_.path());
  ASSERT_TRUE(who.ok()) << who.status();
  EXPECT_EQ(who->exit_code, 0) << who->err;
  EXPECT_THAT(who->out, HasSubstr("admin"));
  EXPECT_THAT(who->err, HasSubstr("pantherctl: warning: --token puts the secret in the process "
                                  "list"));
  EXPECT_THAT(who->err, Not(HasSubstr(token)));

  // A long-running command: its command line, as anyone on the machine sees it.
  absl::StatusOr<Process> tail = Process::Start(
      {kPantherctl, "--server", server_->address(), "--token", token, "alerts", "tail"},
      tmp_.Sub("tail.out"), tmp_.Sub("tail.err"));
  ASSERT_TRUE(tail.ok()) << tail.status();
  const std::string cmdline_path = absl::StrCat("/proc/", tail->pid(), "/cmdline");
  const std::string scrubbed(token.size(), 'x');
  std::string cmdline;
  const absl::Time deadline = absl::Now() + absl::Seconds(20);
  while (absl::Now() < deadline) {
    cmdline = ReadFileOrEmpty(cmdline_path);
    if (!cmdline.empty() && cmdline.find(token) == std::string::npos) break;
    absl::SleepFor(absl::Milliseconds(20));
  }
  EXPECT_THAT(cmdline, Not(HasSubstr(token)));
  EXPECT_THAT(cmdline, HasSubstr(absl::StrCat("--token", std::string(1, '\0'), scrubbed)));
  EXPECT_THAT(cmdline, HasSubstr("alerts"));
  // It keeps the token it copied before scrubbing: it subscribes with it, and
  // its command line stays scrubbed.
  EXPECT_TRUE(WaitForSubscribers(*server_, 1)) << ReadFileOrEmpty(tmp_.Sub("tail.err"));
  EXPECT_EQ(ReadFileOrEmpty(cmdline_path), cmdline);
  tail->Signal(SIGINT);
  absl::StatusOr<int> code = tail->Wait(absl::Seconds(20));
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_EQ(*code, 0) << ReadFileOrEmpty(tmp_.Sub("tail.err"));
  EXPECT_THAT(ReadFileOrEmpty(tmp_.Sub("tail.err")), HasSubstr("warning: --token"));
}

TEST_F(AuthE2eTest, LocalModeAndPlaintextOnlyWhenAskedFor) {
  // Plain text on a non-loopback address is refused before anything binds.
  absl::StatusOr<RunResult> open =
      RunCommand({kPantherd, "--listen", "0.0.0.0:0", "--data-dir", tmp_.Sub("d1")}, tmp_.path());
  ASSERT_TRUE(open.ok());
  EXPECT_EQ(open->exit_code, 2);
  EXPECT_THAT(open->err, HasSubstr("--allow-plaintext"));
  absl::StatusOr<RunResult> none = RunCommand({kPantherd, "--listen", "0.0.0.0:0", "--auth", "none",
                                               "--allow-plaintext", "--data-dir", tmp_.Sub("d2")},
                                              tmp_.path());
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(none->exit_code, 2);
  EXPECT_THAT(none->err, HasSubstr("--auth=none is only allowed on a loopback"));

  // --auth=none on loopback: no token needed, the caller is "local".
  absl::StatusOr<ServerProcess> local = ServerProcess::Start(
      kPantherd, tmp_.Sub("local"), tmp_.path(), {"--workers", "1", "--auth", "none"});
  ASSERT_TRUE(local.ok()) << local.status();
  EXPECT_TRUE(local->admin_token().empty());
  absl::StatusOr<RunResult> who =
      RunCommand({kPantherctl, "--server", local->address(), "whoami"}, tmp_.path());
  ASSERT_TRUE(who.ok());
  EXPECT_EQ(who->exit_code, 0) << who->err;
  EXPECT_THAT(who->out, HasSubstr("local"));
  EXPECT_THAT(local->Log(), HasSubstr("authentication is off"));
}

// Certificates made at test time with the openssl command.
class TlsE2eTest : public AuthE2eTest {
 protected:
  void Openssl(const std::string& command) {
    int rc = system(("cd " + tmp_.path() + " && " + command + " >/dev/null 2>&1").c_str());
    ASSERT_EQ(rc, 0) << command;
  }
  // A CA `name` (name.key, name.pem) and a certificate `leaf` signed by it
  // for 127.0.0.1.
  void MakeCa(const std::string& name) {
    Openssl("openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=" + name + " -keyout " +
            name + ".key -out " + name + ".pem");
  }
  void MakeLeaf(const std::string& ca, const std::string& leaf) {
    std::ofstream(tmp_.Sub(leaf + ".ext")) << "subjectAltName=IP:127.0.0.1,DNS:localhost\n";
    Openssl("openssl req -newkey rsa:2048 -nodes -subj /CN=" + leaf + " -keyout " + leaf +
            ".key -out " + leaf + ".csr");
    Openssl("openssl x509 -req -in " + leaf + ".csr -CA " + ca + ".pem -CAkey " + ca +
            ".key -CAcreateserial -days 2 -extfile " + leaf + ".ext -out " + leaf + ".pem");
  }
  RunResult Run(const std::vector<std::string>& argv) {
    absl::StatusOr<RunResult> r = RunCommand(argv, tmp_.path());
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *std::move(r) : RunResult();
  }
};

TEST_F(TlsE2eTest, ServerCertificateIsVerified) {
  MakeCa("ca");
  MakeCa("otherca");
  MakeLeaf("ca", "server");
  Start({"--tls-cert", tmp_.Sub("server.pem"), "--tls-key", tmp_.Sub("server.key")});
  EXPECT_THAT(server_->Log(), HasSubstr("tls=on"));
  std::vector<std::string> base = server_->Ctl(kPantherctl, {});
  auto with = [&](std::vector<std::string> extra) {
    std::vector<std::string> argv = base;
    argv.insert(argv.end(), extra.begin(), extra.end());
    return Run(argv);
  };
  RunResult trusted = with({"--ca-cert", tmp_.Sub("ca.pem"), "whoami"});
  EXPECT_EQ(trusted.exit_code, 0) << trusted.err;
  RunResult untrusted = with({"--ca-cert", tmp_.Sub("otherca.pem"), "--timeout", "5", "whoami"});
  EXPECT_EQ(untrusted.exit_code, 1);
  EXPECT_THAT(untrusted.err, HasSubstr("cannot reach pantherd"));
  RunResult plain = with({"--timeout", "5", "whoami"});
  EXPECT_EQ(plain.exit_code, 1);
}

TEST_F(TlsE2eTest, ClientCertificateRequiredWithClientCa) {
  MakeCa("ca");
  MakeCa("clientca");
  MakeLeaf("ca", "server");
  MakeLeaf("clientca", "client");
  Start({"--tls-cert", tmp_.Sub("server.pem"), "--tls-key", tmp_.Sub("server.key"),
         "--tls-client-ca", tmp_.Sub("clientca.pem")});
  std::vector<std::string> base = server_->Ctl(kPantherctl, {"--ca-cert", tmp_.Sub("ca.pem")});
  auto with = [&](std::vector<std::string> extra) {
    std::vector<std::string> argv = base;
    argv.insert(argv.end(), extra.begin(), extra.end());
    return Run(argv);
  };
  RunResult refused = with({"--timeout", "5", "whoami"});
  EXPECT_EQ(refused.exit_code, 1);
  RunResult accepted = with(
      {"--client-cert", tmp_.Sub("client.pem"), "--client-key", tmp_.Sub("client.key"), "whoami"});
  EXPECT_EQ(accepted.exit_code, 0) << accepted.err;
  EXPECT_THAT(accepted.out, HasSubstr("admin"));
}

}  // namespace
}  // namespace pantherd::testing
