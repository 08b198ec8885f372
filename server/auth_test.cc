// The permission table against the service descriptors and the docs; users,
// tokens and revocation against a real store; the failure throttle; the
// audit log's storage and filters.
#include "server/auth.h"

#include <fstream>
#include <set>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/util/time_util.h"
#include "gtest/gtest.h"
#include "pantherd/v1/admin_service.grpc.pb.h"
#include "pantherd/v1/admin_service.pb.h"
#include "pantherd/v1/detection_service.grpc.pb.h"
#include "pantherd/v1/detection_service.pb.h"
#include "server/audit.h"
#include "tests/test_util.h"

namespace pantherd::server {
namespace {

using ::google::protobuf::util::TimeUtil;
using ::testing::HasSubstr;
using ::testing::Not;

TEST(PermissionTable, EveryRpcHasExactlyOneEntry) {
  std::vector<std::string> methods = ServiceMethods();
  ASSERT_GE(methods.size(), 20u);
  for (const std::string& m : methods) {
    const MethodRule* rule = FindMethodRule(m);
    ASSERT_NE(rule, nullptr) << m << " is missing from MethodTable() in server/auth.cc";
    EXPECT_FALSE(rule->permission.empty()) << m;
    EXPECT_NE(FindMethodRule("/" + m), nullptr);
  }
  std::set<std::string> known(methods.begin(), methods.end());
  std::set<std::string> seen;
  for (const MethodRule& rule : MethodTable()) {
    EXPECT_TRUE(known.count(std::string(rule.method))) << rule.method << " is not an RPC";
    EXPECT_TRUE(seen.insert(std::string(rule.method)).second) << rule.method << " twice";
    // The admin has every permission the table uses.
    EXPECT_TRUE(RoleHas(v1::ROLE_ADMIN, rule.permission)) << rule.permission;
  }
}

TEST(PermissionTable, DocsShowTheSameTable) {
  std::ifstream in(std::string(PANTHERD_SOURCE_DIR) + "/docs/security.md");
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string doc = ss.str();
  ASSERT_FALSE(doc.empty());
  for (const MethodRule& rule : MethodTable()) {
    const std::string row = absl::StrCat("| `", rule.method, "` | `", rule.permission, "` | ",
                                         rule.changes_state ? "yes" : "no", " | ");
    EXPECT_THAT(doc, HasSubstr(row)) << "docs/security.md lacks or differs on " << rule.method;
  }
  for (v1::Role role : {v1::ROLE_VIEWER, v1::ROLE_ANALYST, v1::ROLE_AUTHOR, v1::ROLE_ADMIN}) {
    for (absl::string_view p : PermissionsOf(role)) {
      EXPECT_THAT(doc, HasSubstr(absl::StrCat("| `", p, "` |"))) << p;
    }
  }
}

TEST(PermissionTable, RolesAreNestedAsDocumented) {
  EXPECT_TRUE(RoleHas(v1::ROLE_VIEWER, kPermAlertsRead));
  EXPECT_FALSE(RoleHas(v1::ROLE_VIEWER, kPermRulesWrite));
  EXPECT_FALSE(RoleHas(v1::ROLE_VIEWER, kPermAlertsTriage));
  EXPECT_FALSE(RoleHas(v1::ROLE_VIEWER, kPermSourcesWrite));
  EXPECT_TRUE(RoleHas(v1::ROLE_ANALYST, kPermRulesTest));
  EXPECT_TRUE(RoleHas(v1::ROLE_ANALYST, kPermAlertsTriage));
  EXPECT_FALSE(RoleHas(v1::ROLE_ANALYST, kPermRulesWrite));
  EXPECT_TRUE(RoleHas(v1::ROLE_AUTHOR, kPermRulesWrite));
  EXPECT_TRUE(RoleHas(v1::ROLE_AUTHOR, kPermSourcesWrite));
  EXPECT_FALSE(RoleHas(v1::ROLE_AUTHOR, kPermUsersManage));
  EXPECT_FALSE(RoleHas(v1::ROLE_AUTHOR, kPermAuditRead));
  EXPECT_TRUE(PermissionsOf(v1::ROLE_UNSPECIFIED).empty());
  // Each role has everything the previous one has.
  const v1::Role order[] = {v1::ROLE_VIEWER, v1::ROLE_ANALYST, v1::ROLE_AUTHOR, v1::ROLE_ADMIN};
  for (int i = 1; i < 4; ++i) {
    for (absl::string_view p : PermissionsOf(order[i - 1])) EXPECT_TRUE(RoleHas(order[i], p)) << p;
  }
}

TEST(Names, RolesAndNames) {
  EXPECT_EQ(*ParseRole("viewer"), v1::ROLE_VIEWER);
  EXPECT_EQ(*ParseRole("ROLE_ADMIN"), v1::ROLE_ADMIN);
  EXPECT_FALSE(ParseRole("root").ok());
  EXPECT_TRUE(ValidateName("name", "alice@example.com").ok());
  EXPECT_THAT(std::string(ValidateName("name", "a b").message()), HasSubstr("name"));
  EXPECT_FALSE(ValidateName("name", "").ok());
  EXPECT_FALSE(ValidateName("name", std::string(65, 'a')).ok());
  EXPECT_EQ(PeerKey("ipv4:127.0.0.1:5555"), "ipv4:127.0.0.1");
  EXPECT_EQ(PeerKey("ipv6:[::1]:5555"), "ipv6:[::1]");
}

TEST(Tokens, SecretsAreRandomAndHashed) {
  std::string a = NewTokenSecret(), b = NewTokenSecret();
  EXPECT_NE(a, b);
  EXPECT_EQ(a.size(), 4u + 64u);
  EXPECT_EQ(a.substr(0, 4), "pth_");
  EXPECT_EQ(HashToken("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(TokenIdOf(HashToken("abc")), "ba7816bf8f01cfea");
}

class AuthStoreTest : public ::testing::Test {
 protected:
  void SetUp() override { Open(); }
  void Open() {
    auto s = store::Store::Open(tmp_.Sub("db"), store::StoreOptions());
    ASSERT_TRUE(s.ok()) << s.status();
    store_ = std::move(*s);
    auto a = Authenticator::Load(store_.get(), AuthMode::kTokens, [this] { return now_; });
    ASSERT_TRUE(a.ok()) << a.status();
    auth_ = std::move(*a);
  }
  void Reopen() {
    auth_.reset();
    ASSERT_TRUE(store_->Close().ok());
    store_.reset();
    Open();
  }
  Principal As(const std::string& user, v1::Role role) {
    Principal p;
    p.user = user;
    p.role = role;
    return p;
  }

  testing::TempDir tmp_;
  absl::Time now_ = absl::FromUnixSeconds(1'800'000'000);
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<Authenticator> auth_;
};

TEST_F(AuthStoreTest, BootstrapCreatesTheFirstAdminOnce) {
  absl::StatusOr<std::optional<std::string>> first = auth_->Bootstrap();
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_TRUE(first->has_value());
  std::vector<v1::User> users = auth_->ListUsers(true);
  ASSERT_EQ(users.size(), 1u);
  EXPECT_EQ(users[0].name(), "admin");
  EXPECT_EQ(users[0].role(), v1::ROLE_ADMIN);

  // Only the hash is stored, never the secret.
  const std::string secret = **first;
  bool found_hash = false;
  ASSERT_TRUE(store_
                  ->Scan(store::Family::kTokens, "",
                         [&](absl::string_view key, absl::string_view value) {
                           EXPECT_EQ(key, HashToken(secret));
                           EXPECT_THAT(std::string(value), Not(HasSubstr(secret)));
                           found_hash = true;
                           return true;
                         })
                  .ok());
  EXPECT_TRUE(found_hash);

  Reopen();
  absl::StatusOr<std::optional<std::string>> again = auth_->Bootstrap();
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(again->has_value());  // Users exist: nothing new.
  EXPECT_EQ(auth_->ListUsers(true).size(), 1u);
}

TEST_F(AuthStoreTest, UsersTokensRevocationAndExpiry) {
  ASSERT_TRUE(auth_->Bootstrap().ok());
  v1::CreateUserRequest cu;
  cu.set_name("vera");
  cu.set_role(v1::ROLE_VIEWER);
  ASSERT_TRUE(auth_->CreateUser(cu).ok());
  EXPECT_EQ(auth_->CreateUser(cu).status().code(), absl::StatusCode::kAlreadyExists);
  cu.set_role(v1::ROLE_UNSPECIFIED);
  cu.set_name("x");
  EXPECT_EQ(auth_->CreateUser(cu).status().code(), absl::StatusCode::kInvalidArgument);

  const Principal vera = As("vera", v1::ROLE_VIEWER);
  v1::CreateTokenRequest ct;
  ct.set_name("laptop");
  *ct.mutable_ttl() = TimeUtil::SecondsToDuration(3600);
  absl::StatusOr<v1::CreateTokenResponse> tok = auth_->CreateToken(vera, ct);
  ASSERT_TRUE(tok.ok()) << tok.status();
  EXPECT_EQ(tok->token().owner(), "vera");
  EXPECT_TRUE(tok->token().has_expire_time());
  EXPECT_EQ(auth_->CreateToken(vera, ct).status().code(), absl::StatusCode::kAlreadyExists);

  // A viewer may not create or list tokens of someone else.
  ct.set_name("other");
  ct.set_owner("admin");
  absl::Status denied = auth_->CreateToken(vera, ct).status();
  EXPECT_EQ(denied.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(std::string(denied.message()), HasSubstr("tokens.manage"));
  v1::ListTokensRequest lt;
  lt.set_owner("*");
  EXPECT_EQ(auth_->ListTokens(vera, lt).status().code(), absl::StatusCode::kPermissionDenied);
  lt.set_owner("");
  ASSERT_EQ(auth_->ListTokens(vera, lt)->size(), 1u);

  const std::string id = tok->token().id();
  EXPECT_TRUE(auth_->StillValid(id).ok());
  now_ += absl::Hours(2);
  EXPECT_THAT(std::string(auth_->StillValid(id).message()), HasSubstr("expired"));
  now_ -= absl::Hours(2);

  // Revocation: immediate, kept across a restart; a non-admin cannot see or
  // revoke someone else's token.
  int notified = 0;
  auth_->set_on_revocation([&] { ++notified; });
  v1::RevokeTokenRequest rt;
  rt.set_id(id);
  EXPECT_EQ(auth_->RevokeToken(As("someone", v1::ROLE_AUTHOR), rt).status().code(),
            absl::StatusCode::kNotFound);
  ASSERT_TRUE(auth_->RevokeToken(vera, rt).ok());
  EXPECT_EQ(notified, 1);
  EXPECT_THAT(std::string(auth_->StillValid(id).message()), HasSubstr("revoked"));
  Reopen();
  EXPECT_THAT(std::string(auth_->StillValid(id).message()), HasSubstr("revoked"));
  lt.set_include_revoked(false);
  EXPECT_TRUE(auth_->ListTokens(vera, lt)->empty());

  // Disabling a user stops their tokens.
  ct.set_owner("");
  ct.set_name("second");
  ct.clear_ttl();
  absl::StatusOr<v1::CreateTokenResponse> second = auth_->CreateToken(vera, ct);
  ASSERT_TRUE(second.ok());
  v1::UpdateUserRequest uu;
  uu.set_name("vera");
  uu.set_disabled(true);
  ASSERT_TRUE(auth_->UpdateUser(uu).ok());
  EXPECT_THAT(std::string(auth_->StillValid(second->token().id()).message()),
              HasSubstr("disabled"));
}

TEST_F(AuthStoreTest, TheLastAdminCannotBeRemoved) {
  ASSERT_TRUE(auth_->Bootstrap().ok());
  v1::UpdateUserRequest uu;
  uu.set_name("admin");
  uu.set_role(v1::ROLE_VIEWER);
  EXPECT_EQ(auth_->UpdateUser(uu).status().code(), absl::StatusCode::kFailedPrecondition);
  uu.clear_role();
  uu.set_disabled(true);
  EXPECT_EQ(auth_->UpdateUser(uu).status().code(), absl::StatusCode::kFailedPrecondition);
  v1::CreateUserRequest cu;
  cu.set_name("second");
  cu.set_role(v1::ROLE_ADMIN);
  ASSERT_TRUE(auth_->CreateUser(cu).ok());
  EXPECT_TRUE(auth_->UpdateUser(uu).ok());
  uu.set_name("nobody");
  EXPECT_EQ(auth_->UpdateUser(uu).status().code(), absl::StatusCode::kNotFound);
}

TEST(FailureThrottleTest, DelaysGrowAfterTheFreeFailuresAndResetAfterTheWindow) {
  absl::Time now = absl::FromUnixSeconds(1000);
  FailureThrottle::Options o;
  o.free_failures = 2;
  o.first_delay = absl::Milliseconds(100);
  o.max_delay = absl::Milliseconds(350);
  o.window = absl::Minutes(1);
  o.max_peers = 2;
  FailureThrottle t(o, [&] { return now; });
  EXPECT_EQ(t.RecordFailure("a"), absl::ZeroDuration());
  EXPECT_EQ(t.RecordFailure("a"), absl::ZeroDuration());
  EXPECT_EQ(t.RecordFailure("a"), absl::Milliseconds(100));
  EXPECT_EQ(t.RecordFailure("a"), absl::Milliseconds(200));
  EXPECT_EQ(t.RecordFailure("a"), absl::Milliseconds(350));  // capped
  EXPECT_EQ(t.RecordFailure("b"), absl::ZeroDuration());     // per peer
  EXPECT_EQ(t.delayed(), 3);
  // The map is full: a third peer is not tracked, and counted.
  EXPECT_EQ(t.RecordFailure("c"), absl::ZeroDuration());
  EXPECT_EQ(t.untracked(), 1);
  EXPECT_EQ(t.tracked_peers(), 2u);
  now += absl::Minutes(2);
  EXPECT_EQ(t.RecordFailure("a"), absl::ZeroDuration());  // new window
  EXPECT_EQ(t.RecordFailure("c"), absl::ZeroDuration());  // expired peers make room
  EXPECT_EQ(t.untracked(), 1);
}

TEST(DelayedRunnerTest, RunsEverythingAndOverflowsToImmediate) {
  std::atomic<int> ran{0};
  {
    DelayedRunner r(1);
    r.Schedule(absl::Milliseconds(10), [&] { ++ran; });
    r.Schedule(absl::Hours(1), [&] { ++ran; });  // queue full: runs now
    EXPECT_EQ(r.overflowed(), 1);
    EXPECT_GE(ran.load(), 1);
    r.Stop();  // runs what is left
  }
  EXPECT_EQ(ran.load(), 2);
}

v1::AuditEvent Event(const std::string& user, const std::string& action, const std::string& result,
                     int64_t seconds) {
  v1::AuditEvent e;
  e.set_actor_user(user);
  e.set_action(action);
  e.set_target("t-" + user);
  e.set_result(result);
  *e.mutable_time() = TimeUtil::SecondsToTimestamp(seconds);
  return e;
}

TEST(AuditLogTest, StoresInOrderAndFiltersAndPages) {
  testing::TempDir tmp;
  auto store = store::Store::Open(tmp.Sub("db"), store::StoreOptions());
  ASSERT_TRUE(store.ok());
  {
    AuditLog log(store->get());
    log.Record(Event("ann", "pantherd.v1.DetectionService/UploadRule", "OK", 100));
    log.Record(Event("bob", "pantherd.v1.AdminService/CreateUser", "PERMISSION_DENIED", 200));
    log.Record(Event("ann", "pantherd.v1.DetectionService/DeleteRule", "OK", 300));
    log.Drain();

    v1::ListAuditEventsRequest req;
    absl::StatusOr<v1::ListAuditEventsResponse> all = log.List(req);
    ASSERT_TRUE(all.ok()) << all.status();
    ASSERT_EQ(all->events_size(), 3);
    EXPECT_EQ(all->events(0).sequence(), 3u);  // newest first
    EXPECT_EQ(all->events(2).sequence(), 1u);

    req.set_actor_user("ann");
    EXPECT_EQ(log.List(req)->events_size(), 2);
    req.set_action_prefix("pantherd.v1.DetectionService/Del");
    EXPECT_EQ(log.List(req)->events_size(), 1);
    req.Clear();
    req.set_failures_only(true);
    ASSERT_EQ(log.List(req)->events_size(), 1);
    EXPECT_EQ(log.List(req)->events(0).actor_user(), "bob");
    req.Clear();
    *req.mutable_since() = TimeUtil::SecondsToTimestamp(200);
    *req.mutable_until() = TimeUtil::SecondsToTimestamp(300);
    ASSERT_EQ(log.List(req)->events_size(), 1);
    EXPECT_EQ(log.List(req)->events(0).sequence(), 2u);
    req.Clear();
    req.set_target("t-bob");
    EXPECT_EQ(log.List(req)->events_size(), 1);

    // Pages.
    req.Clear();
    req.mutable_page()->set_page_size(2);
    absl::StatusOr<v1::ListAuditEventsResponse> p1 = log.List(req);
    ASSERT_EQ(p1->events_size(), 2);
    ASSERT_EQ(p1->next_page_token(), "2");
    req.mutable_page()->set_page_token(p1->next_page_token());
    absl::StatusOr<v1::ListAuditEventsResponse> p2 = log.List(req);
    ASSERT_EQ(p2->events_size(), 1);
    EXPECT_EQ(p2->events(0).sequence(), 1u);
    EXPECT_EQ(p2->next_page_token(), "");
    req.mutable_page()->set_page_token("x");
    EXPECT_EQ(log.List(req).status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(log.dropped(), 0);
  }
}

TEST(AuditLogTest, AFullQueueDropsAndCounts) {
  testing::TempDir tmp;
  auto store = store::Store::Open(tmp.Sub("db"), store::StoreOptions());
  ASSERT_TRUE(store.ok());
  AuditLog log(store->get(), /*capacity=*/1);
  log.Stop();  // Nothing is accepted after Stop.
  log.Record(Event("ann", "x", "OK", 1));
  EXPECT_EQ(log.dropped(), 1);
}

TEST(AuditTargetTest, ReadsTheTableField) {
  v1::DeleteRuleRequest del;
  del.set_id("My.Rule");
  EXPECT_EQ(AuditTarget("/pantherd.v1.DetectionService/DeleteRule", &del), "My.Rule");
  v1::UploadRuleRequest up;
  up.add_files();
  up.add_files();
  EXPECT_EQ(AuditTarget("pantherd.v1.DetectionService/UploadRule", &up), "2 files");
  v1::AddSourceRequest add;
  add.set_label("okta-prod");
  add.mutable_okta()->set_api_token("secret-okta-token");
  EXPECT_EQ(AuditTarget("pantherd.v1.DetectionService/AddSource", &add), "okta-prod");
  v1::ListRulesRequest list;
  EXPECT_EQ(AuditTarget("pantherd.v1.DetectionService/ListRules", &list), "");
  // Every table entry with a target field can be read.
  for (const MethodRule& rule : MethodTable()) {
    if (rule.target_field.empty()) continue;
    const google::protobuf::MethodDescriptor* m =
        google::protobuf::DescriptorPool::generated_pool()->FindMethodByName(
            absl::StrCat(rule.method.substr(0, rule.method.find('/')), ".",
                         rule.method.substr(rule.method.find('/') + 1)));
    ASSERT_NE(m, nullptr) << rule.method;
    EXPECT_NE(m->input_type()->FindFieldByName(std::string(rule.target_field)), nullptr)
        << rule.method << " has no field " << rule.target_field;
  }
}

}  // namespace
}  // namespace pantherd::server
