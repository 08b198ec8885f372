#include "server/auth.h"

#include <openssl/rand.h>
#include <openssl/sha.h>

#include <algorithm>
#include <cstdlib>
#include <tuple>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/util/time_util.h"
#include "pantherd/v1/admin_service.pb.h"
#include "pantherd/v1/detection_service.pb.h"
#include "proto/base/log.h"
#include "proto/base/status_macros.h"

namespace pantherd::server {
namespace {

using google::protobuf::util::TimeUtil;

constexpr absl::string_view kTokenPrefix = "pth_";
constexpr absl::string_view kBootstrapUser = "admin";
constexpr absl::string_view kBootstrapToken = "bootstrap";
// The identity of every caller in --auth=none mode.
constexpr absl::string_view kLocalUser = "local";

google::protobuf::Timestamp ToProto(absl::Time t) {
  return TimeUtil::NanosecondsToTimestamp(absl::ToUnixNanos(t));
}

absl::Time FromProto(const google::protobuf::Timestamp& t) {
  return absl::FromUnixNanos(TimeUtil::TimestampToNanoseconds(t));
}

absl::string_view StripSlash(absl::string_view method) {
  if (absl::StartsWith(method, "/")) method.remove_prefix(1);
  return method;
}

}  // namespace

// ---- The table ---------------------------------------------------------------

const std::vector<MethodRule>& MethodTable() {
  static const auto* table = new std::vector<MethodRule>{
      // DetectionService
      {"pantherd.v1.DetectionService/UploadRule", kPermRulesWrite, true, "files"},
      {"pantherd.v1.DetectionService/GetRule", kPermRulesRead, false, "id"},
      {"pantherd.v1.DetectionService/ListRules", kPermRulesRead, false, ""},
      {"pantherd.v1.DetectionService/DeleteRule", kPermRulesWrite, true, "id"},
      {"pantherd.v1.DetectionService/SetRuleEnabled", kPermRulesWrite, true, "id"},
      {"pantherd.v1.DetectionService/RunTests", kPermRulesTest, false, ""},
      {"pantherd.v1.DetectionService/IngestEvents", kPermEventsIngest, true, "log_type"},
      {"pantherd.v1.DetectionService/AddSource", kPermSourcesWrite, true, "label"},
      {"pantherd.v1.DetectionService/ListSources", kPermSourcesRead, false, ""},
      {"pantherd.v1.DetectionService/RemoveSource", kPermSourcesWrite, true, "id"},
      {"pantherd.v1.DetectionService/SetSourcePaused", kPermSourcesWrite, true, "id"},
      // Sends the source's stored token to its org: as sensitive as changing
      // it, and audited though it changes nothing.
      {"pantherd.v1.DetectionService/TestSource", kPermSourcesWrite, true, "id"},
      {"pantherd.v1.DetectionService/StreamAlerts", kPermAlertsRead, false, ""},
      {"pantherd.v1.DetectionService/ListAlerts", kPermAlertsRead, false, ""},
      {"pantherd.v1.DetectionService/GetAlert", kPermAlertsRead, false, "id"},
      {"pantherd.v1.DetectionService/ListAlertEvents", kPermAlertsRead, false, "alert_id"},
      {"pantherd.v1.DetectionService/UpdateAlert", kPermAlertsTriage, true, "id"},
      {"pantherd.v1.DetectionService/AddDestination", kPermDestinationsManage, true, "name"},
      {"pantherd.v1.DetectionService/ListDestinations", kPermDestinationsRead, false, ""},
      {"pantherd.v1.DetectionService/GetDestination", kPermDestinationsRead, false, "destination"},
      {"pantherd.v1.DetectionService/UpdateDestination", kPermDestinationsManage, true,
       "destination"},
      {"pantherd.v1.DetectionService/RemoveDestination", kPermDestinationsManage, true,
       "destination"},
      // Sends the stored secret to the receiver: as sensitive as changing it.
      {"pantherd.v1.DetectionService/TestDestination", kPermDestinationsManage, true,
       "destination"},
      // Causes deliveries again: a triage action, audited.
      {"pantherd.v1.DetectionService/ResendAlert", kPermAlertsTriage, true, "alert_id"},
      // Audited with its text (the target), though it changes nothing.
      {"pantherd.v1.DetectionService/SearchEvents", kPermEventsSearch, true, "sql"},
      {"pantherd.v1.DetectionService/StreamAlertEvents", kPermAlertsRead, false, "alert_id"},
      {"pantherd.v1.DetectionService/ListWindows", kPermAlertsRead, false, "rule_id"},
      // Runs rule code on an event, as RunTests does.
      {"pantherd.v1.DetectionService/ExplainEvent", kPermRulesTest, false, "rule_id"},
      {"pantherd.v1.DetectionService/ReplayRules", kPermRulesTest, false, ""},
      // AdminService
      {"pantherd.v1.AdminService/GetServerStatus", kPermServerStatus, false, ""},
      {"pantherd.v1.AdminService/WhoAmI", kPermSelf, false, ""},
      {"pantherd.v1.AdminService/CreateUser", kPermUsersManage, true, "name"},
      {"pantherd.v1.AdminService/ListUsers", kPermUsersManage, false, ""},
      {"pantherd.v1.AdminService/UpdateUser", kPermUsersManage, true, "name"},
      {"pantherd.v1.AdminService/CreateToken", kPermSelf, true, "name"},
      {"pantherd.v1.AdminService/ListTokens", kPermSelf, false, "owner"},
      {"pantherd.v1.AdminService/RevokeToken", kPermSelf, true, "id"},
      {"pantherd.v1.AdminService/ListAuditEvents", kPermAuditRead, false, ""},
  };
  return *table;
}

const MethodRule* FindMethodRule(absl::string_view method) {
  method = StripSlash(method);
  for (const MethodRule& rule : MethodTable()) {
    if (rule.method == method) return &rule;
  }
  return nullptr;
}

std::vector<std::string> ServiceMethods() {
  // Referring to the generated descriptor tables keeps the files that
  // register the services linked in (volatile, so that an optimising build
  // cannot fold the references away).
  static const void* volatile files[] = {
      &descriptor_table_pantherd_2fv1_2fdetection_5fservice_2eproto,
      &descriptor_table_pantherd_2fv1_2fadmin_5fservice_2eproto};
  const void* const kept = files[0];
  (void)kept;
  std::vector<std::string> methods;
  for (const char* service : {"pantherd.v1.DetectionService", "pantherd.v1.AdminService"}) {
    const google::protobuf::ServiceDescriptor* d =
        google::protobuf::DescriptorPool::generated_pool()->FindServiceByName(service);
    if (d == nullptr) continue;
    for (int i = 0; i < d->method_count(); ++i) {
      methods.push_back(absl::StrCat(service, "/", d->method(i)->name()));
    }
  }
  return methods;
}

const std::vector<absl::string_view>& PermissionsOf(v1::Role role) {
  static const auto* viewer = new std::vector<absl::string_view>{
      kPermServerStatus, kPermSelf, kPermRulesRead, kPermSourcesRead, kPermAlertsRead};
  static const auto* analyst = new std::vector<absl::string_view>{
      kPermServerStatus, kPermSelf,      kPermRulesRead,    kPermSourcesRead,
      kPermAlertsRead,   kPermRulesTest, kPermAlertsTriage, kPermEventsSearch};
  static const auto* author = new std::vector<absl::string_view>{
      kPermServerStatus, kPermSelf,         kPermRulesRead,        kPermSourcesRead,
      kPermAlertsRead,   kPermRulesTest,    kPermAlertsTriage,     kPermRulesWrite,
      kPermEventsIngest, kPermSourcesWrite, kPermDestinationsRead, kPermEventsSearch};
  static const auto* admin =
      new std::vector<absl::string_view>{kPermServerStatus,       kPermSelf,
                                         kPermRulesRead,          kPermSourcesRead,
                                         kPermAlertsRead,         kPermRulesTest,
                                         kPermAlertsTriage,       kPermRulesWrite,
                                         kPermEventsIngest,       kPermSourcesWrite,
                                         kPermUsersManage,        kPermTokensManage,
                                         kPermAuditRead,          kPermDestinationsRead,
                                         kPermDestinationsManage, kPermEventsSearch};
  static const auto* none = new std::vector<absl::string_view>{};
  switch (role) {
    case v1::ROLE_VIEWER:
      return *viewer;
    case v1::ROLE_ANALYST:
      return *analyst;
    case v1::ROLE_AUTHOR:
      return *author;
    case v1::ROLE_ADMIN:
      return *admin;
    default:
      return *none;
  }
}

bool RoleHas(v1::Role role, absl::string_view permission) {
  const std::vector<absl::string_view>& perms = PermissionsOf(role);
  return std::find(perms.begin(), perms.end(), permission) != perms.end();
}

std::string RoleName(v1::Role role) {
  switch (role) {
    case v1::ROLE_VIEWER:
      return "viewer";
    case v1::ROLE_ANALYST:
      return "analyst";
    case v1::ROLE_AUTHOR:
      return "author";
    case v1::ROLE_ADMIN:
      return "admin";
    default:
      return "unspecified";
  }
}

absl::StatusOr<v1::Role> ParseRole(absl::string_view name) {
  std::string lower = absl::AsciiStrToLower(name);
  if (absl::StartsWith(lower, "role_")) lower = lower.substr(5);
  for (v1::Role r : {v1::ROLE_VIEWER, v1::ROLE_ANALYST, v1::ROLE_AUTHOR, v1::ROLE_ADMIN}) {
    if (lower == RoleName(r)) return r;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("role \"", name, "\" is not one of viewer, analyst, author, admin"));
}

absl::Status ValidateName(absl::string_view field, absl::string_view name) {
  if (name.empty()) return absl::InvalidArgumentError(absl::StrCat(field, ": is required"));
  if (name.size() > 64) {
    return absl::InvalidArgumentError(absl::StrCat(field, ": longer than 64 characters"));
  }
  for (char c : name) {
    if (!absl::ascii_isalnum(c) && c != '.' && c != '_' && c != '@' && c != '-') {
      return absl::InvalidArgumentError(
          absl::StrCat(field, ": \"", name, "\" may only use letters, digits and . _ @ -"));
    }
  }
  return absl::OkStatus();
}

std::string NewTokenSecret() {
  unsigned char bytes[32];
  if (RAND_bytes(bytes, sizeof(bytes)) != 1) {
    base::Log(base::LogLevel::kError, "the system cannot produce random bytes for a token");
    std::abort();
  }
  return absl::StrCat(kTokenPrefix, absl::BytesToHexString(absl::string_view(
                                        reinterpret_cast<const char*>(bytes), sizeof(bytes))));
}

std::string HashToken(absl::string_view secret) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(secret.data()), secret.size(), digest);
  return absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(digest), sizeof(digest)));
}

std::string TokenIdOf(absl::string_view token_hash) {
  return std::string(token_hash.substr(0, 16));
}

std::string PeerKey(absl::string_view peer) {
  if (absl::StartsWith(peer, "ipv4:") || absl::StartsWith(peer, "ipv6:")) {
    size_t colon = peer.rfind(':');
    if (colon > 4) return std::string(peer.substr(0, colon));
  }
  return std::string(peer);
}

// ---- FailureThrottle -----------------------------------------------------------

FailureThrottle::FailureThrottle(Options options, base::Clock now)
    : options_(options), now_(std::move(now)) {}

absl::Duration FailureThrottle::RecordFailure(absl::string_view peer) {
  const absl::Time now = now_();
  absl::MutexLock lock(&mu_);
  auto it = peers_.find(peer);
  if (it == peers_.end()) {
    if (peers_.size() >= options_.max_peers) {
      absl::erase_if(peers_,
                     [&](const auto& p) { return now - p.second.window_start >= options_.window; });
    }
    if (peers_.size() >= options_.max_peers) {
      ++untracked_;
      return absl::ZeroDuration();
    }
    it = peers_.emplace(std::string(peer), Entry{now, 0}).first;
  }
  Entry& e = it->second;
  if (now - e.window_start >= options_.window) e = Entry{now, 0};
  ++e.failures;
  if (e.failures <= options_.free_failures) return absl::ZeroDuration();
  ++delayed_;
  absl::Duration delay = options_.first_delay;
  for (int i = options_.free_failures + 1; i < e.failures && delay < options_.max_delay; ++i) {
    delay *= 2;
  }
  return std::min(delay, options_.max_delay);
}

int64_t FailureThrottle::delayed() const {
  absl::MutexLock lock(&mu_);
  return delayed_;
}

int64_t FailureThrottle::untracked() const {
  absl::MutexLock lock(&mu_);
  return untracked_;
}

size_t FailureThrottle::tracked_peers() const {
  absl::MutexLock lock(&mu_);
  return peers_.size();
}

// ---- DelayedRunner ---------------------------------------------------------------

DelayedRunner::DelayedRunner(size_t capacity) : capacity_(capacity) {
  thread_ = std::thread([this] { Loop(); });
}

DelayedRunner::~DelayedRunner() { Stop(); }

void DelayedRunner::Schedule(absl::Duration delay, std::function<void()> task) {
  {
    absl::MutexLock lock(&mu_);
    if (!stop_ && tasks_.size() < capacity_) {
      tasks_.emplace(absl::Now() + delay, std::move(task));
      return;
    }
    if (!stop_) ++overflowed_;
  }
  task();
}

void DelayedRunner::Stop() {
  {
    absl::MutexLock lock(&mu_);
    if (stop_ && !thread_.joinable()) return;
    stop_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

int64_t DelayedRunner::overflowed() const {
  absl::MutexLock lock(&mu_);
  return overflowed_;
}

void DelayedRunner::Loop() {
  absl::MutexLock lock(&mu_);
  for (;;) {
    if (stop_ && tasks_.empty()) return;
    const absl::Time now = absl::Now();
    if (!tasks_.empty() && (stop_ || tasks_.begin()->first <= now)) {
      std::function<void()> task = std::move(tasks_.begin()->second);
      tasks_.erase(tasks_.begin());
      mu_.Unlock();
      task();
      mu_.Lock();
      continue;
    }
    const absl::Time until = tasks_.empty() ? now + absl::Seconds(1) : tasks_.begin()->first;
    mu_.AwaitWithDeadline(absl::Condition(&stop_), until);
  }
}

// ---- Authenticator -------------------------------------------------------------

Authenticator::Authenticator(store::Store* store, AuthMode mode, base::Clock now)
    : store_(store), mode_(mode), now_(now), throttle_(FailureThrottle::Options(), now) {}

absl::StatusOr<std::unique_ptr<Authenticator>> Authenticator::Load(store::Store* store,
                                                                   AuthMode mode, base::Clock now) {
  std::unique_ptr<Authenticator> auth(new Authenticator(store, mode, std::move(now)));
  PANTHERD_RETURN_IF_ERROR(auth->LoadAll());
  return auth;
}

absl::Status Authenticator::LoadAll() {
  absl::MutexLock lock(&mu_);
  absl::Status corrupt;
  PANTHERD_RETURN_IF_ERROR(
      store_->Scan(store::Family::kUsers, "", [&](absl::string_view key, absl::string_view value) {
        v1::User user;
        if (!user.ParseFromArray(value.data(), static_cast<int>(value.size()))) {
          corrupt = absl::DataLossError(absl::StrCat("stored user \"", key, "\" is unreadable"));
          return false;
        }
        users_[std::string(key)] = std::move(user);
        return true;
      }));
  PANTHERD_RETURN_IF_ERROR(corrupt);
  PANTHERD_RETURN_IF_ERROR(
      store_->Scan(store::Family::kTokens, "", [&](absl::string_view key, absl::string_view value) {
        TokenEntry entry;
        if (!entry.token.ParseFromArray(value.data(), static_cast<int>(value.size()))) {
          corrupt =
              absl::DataLossError(absl::StrCat("stored token ", TokenIdOf(key), " is unreadable"));
          return false;
        }
        entry.hash = std::string(key);
        token_ids_[entry.token.id()] = entry.hash;
        tokens_[entry.hash] = std::move(entry);
        return true;
      }));
  return corrupt;
}

absl::StatusOr<std::optional<std::string>> Authenticator::Bootstrap() {
  absl::MutexLock write(&write_mu_);
  {
    absl::MutexLock lock(&mu_);
    if (!users_.empty()) return std::optional<std::string>();
  }
  v1::User user;
  user.set_name(std::string(kBootstrapUser));
  user.set_role(v1::ROLE_ADMIN);
  *user.mutable_created_time() = ToProto(now_());
  PANTHERD_RETURN_IF_ERROR(store_->PutMessage(store::Family::kUsers, user.name(), user));
  {
    absl::MutexLock lock(&mu_);
    users_[user.name()] = user;
  }
  PANTHERD_ASSIGN_OR_RETURN(v1::CreateTokenResponse created,
                            CreateTokenLocked(kBootstrapUser, kBootstrapToken, std::nullopt));
  return std::optional<std::string>(created.secret());
}

std::string Authenticator::BearerToken(const grpc::ServerContextBase& ctx) {
  const auto& md = ctx.client_metadata();
  auto it = md.find("authorization");
  if (it == md.end()) return "";
  absl::string_view value(it->second.data(), it->second.size());
  value = absl::StripAsciiWhitespace(value);
  if (value.size() > 7 && absl::EqualsIgnoreCase(value.substr(0, 7), "bearer ")) {
    return std::string(absl::StripAsciiWhitespace(value.substr(7)));
  }
  return std::string(value);  // A malformed header is an unknown token.
}

absl::Status Authenticator::ValidLocked(const TokenEntry& entry) const {
  if (entry.token.revoked()) {
    return absl::UnauthenticatedError(
        absl::StrCat("token ", entry.token.id(), " has been revoked"));
  }
  if (entry.token.has_expire_time() && FromProto(entry.token.expire_time()) <= now_()) {
    return absl::UnauthenticatedError(absl::StrCat("token ", entry.token.id(), " has expired"));
  }
  auto user = users_.find(entry.token.owner());
  if (user == users_.end()) {
    return absl::UnauthenticatedError(
        absl::StrCat("the user of token ", entry.token.id(), " no longer exists"));
  }
  if (user->second.disabled()) {
    return absl::UnauthenticatedError(absl::StrCat("user ", user->second.name(), " is disabled"));
  }
  return absl::OkStatus();
}

absl::StatusOr<Principal> Authenticator::Check(const grpc::ServerContextBase& ctx,
                                               absl::string_view method) {
  const MethodRule* rule = FindMethodRule(method);
  Principal p;
  if (mode_ == AuthMode::kNone) {
    p.user = std::string(kLocalUser);
    p.role = v1::ROLE_ADMIN;
  } else {
    const std::string secret = BearerToken(ctx);
    if (secret.empty()) {
      return absl::UnauthenticatedError("no API token: send \"authorization: Bearer <token>\"");
    }
    const std::string hash = HashToken(secret);
    absl::MutexLock lock(&mu_);
    auto it = tokens_.find(hash);
    if (it == tokens_.end()) return absl::UnauthenticatedError("unknown API token");
    PANTHERD_RETURN_IF_ERROR(ValidLocked(it->second));
    TokenEntry& entry = it->second;
    const absl::Time now = now_();
    // The stored time is refreshed at most once a minute per token.
    if (!entry.token.has_last_used_time() ||
        now - FromProto(entry.token.last_used_time()) >= absl::Minutes(1)) {
      *entry.token.mutable_last_used_time() = ToProto(now);
      entry.last_used_dirty = true;
    }
    p.user = entry.token.owner();
    p.role = users_.at(entry.token.owner()).role();
    p.token_id = entry.token.id();
    p.token_name = entry.token.name();
  }
  if (rule == nullptr) {
    return absl::PermissionDeniedError(absl::StrCat(
        "method ", StripSlash(method), " has no entry in the permission table; refused"));
  }
  if (!p.Has(rule->permission)) {
    return absl::PermissionDeniedError(absl::StrCat("missing permission ", rule->permission,
                                                    ": role ", RoleName(p.role), " of user ",
                                                    p.user, " may not call ", rule->method));
  }
  return p;
}

absl::Duration Authenticator::FailureDelay(const grpc::ServerContextBase& ctx) {
  if (mode_ == AuthMode::kNone) return absl::ZeroDuration();
  const std::string secret = BearerToken(ctx);
  if (secret.empty()) return absl::ZeroDuration();
  {
    absl::MutexLock lock(&mu_);
    if (tokens_.contains(HashToken(secret))) return absl::ZeroDuration();
  }
  const std::string peer = PeerKey(ctx.peer());
  absl::Duration delay = throttle_.RecordFailure(peer);
  if (delay > absl::ZeroDuration() && delay < absl::Milliseconds(201)) {
    base::Log(base::LogLevel::kWarn, "slowing down failed authentication", {{"peer", peer}});
  }
  return delay;
}

std::pair<std::string, std::string> Authenticator::Identify(
    const grpc::ServerContextBase& ctx) const {
  if (mode_ == AuthMode::kNone) return {std::string(kLocalUser), ""};
  const std::string secret = BearerToken(ctx);
  if (secret.empty()) return {"", ""};
  const std::string hash = HashToken(secret);
  absl::MutexLock lock(&mu_);
  auto it = tokens_.find(hash);
  if (it == tokens_.end()) return {"", ""};
  return {it->second.token.owner(), it->second.token.name()};
}

absl::Status Authenticator::StillValid(absl::string_view token_id,
                                       absl::string_view permission) const {
  if (mode_ == AuthMode::kNone) return absl::OkStatus();
  absl::MutexLock lock(&mu_);
  auto id = token_ids_.find(token_id);
  if (id == token_ids_.end()) return absl::UnauthenticatedError("unknown API token");
  const TokenEntry& entry = tokens_.at(id->second);
  PANTHERD_RETURN_IF_ERROR(ValidLocked(entry));
  const v1::Role role = users_.at(entry.token.owner()).role();
  if (!permission.empty() && !RoleHas(role, permission)) {
    return absl::PermissionDeniedError(absl::StrCat("missing permission ", permission, ": role ",
                                                    RoleName(role), " of user ",
                                                    entry.token.owner()));
  }
  return absl::OkStatus();
}

void Authenticator::NotifyRevocation() {
  if (on_revocation_) on_revocation_();
}

int Authenticator::EnabledAdminsLocked() const {
  int n = 0;
  for (const auto& [name, user] : users_) {
    if (user.role() == v1::ROLE_ADMIN && !user.disabled()) ++n;
  }
  return n;
}

absl::StatusOr<v1::User> Authenticator::CreateUser(const v1::CreateUserRequest& req) {
  PANTHERD_RETURN_IF_ERROR(ValidateName("name", req.name()));
  if (req.role() == v1::ROLE_UNSPECIFIED || !v1::Role_IsValid(req.role())) {
    return absl::InvalidArgumentError("role: is required (viewer, analyst, author or admin)");
  }
  absl::MutexLock write(&write_mu_);
  {
    absl::MutexLock lock(&mu_);
    if (users_.contains(req.name())) {
      return absl::AlreadyExistsError(absl::StrCat("user ", req.name(), " already exists"));
    }
  }
  v1::User user;
  user.set_name(req.name());
  user.set_role(req.role());
  *user.mutable_created_time() = ToProto(now_());
  PANTHERD_RETURN_IF_ERROR(store_->PutMessage(store::Family::kUsers, user.name(), user));
  absl::MutexLock lock(&mu_);
  users_[user.name()] = user;
  return user;
}

std::vector<v1::User> Authenticator::ListUsers(bool include_disabled) const {
  std::vector<v1::User> users;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [name, user] : users_) {
      if (include_disabled || !user.disabled()) users.push_back(user);
    }
  }
  std::sort(users.begin(), users.end(),
            [](const v1::User& a, const v1::User& b) { return a.name() < b.name(); });
  return users;
}

absl::StatusOr<v1::User> Authenticator::UpdateUser(const v1::UpdateUserRequest& req) {
  PANTHERD_RETURN_IF_ERROR(ValidateName("name", req.name()));
  if (!v1::Role_IsValid(req.role())) return absl::InvalidArgumentError("role: unknown value");
  v1::User user;
  {
    absl::MutexLock write(&write_mu_);
    {
      absl::MutexLock lock(&mu_);
      auto it = users_.find(req.name());
      if (it == users_.end()) {
        return absl::NotFoundError(absl::StrCat("no user ", req.name()));
      }
      user = it->second;
      if (req.role() != v1::ROLE_UNSPECIFIED) user.set_role(req.role());
      if (req.has_disabled()) user.set_disabled(req.disabled());
      const bool was_admin = it->second.role() == v1::ROLE_ADMIN && !it->second.disabled();
      const bool is_admin = user.role() == v1::ROLE_ADMIN && !user.disabled();
      if (was_admin && !is_admin && EnabledAdminsLocked() <= 1) {
        return absl::FailedPreconditionError(absl::StrCat(
            "user ", req.name(), " is the last enabled admin; make another admin first"));
      }
    }
    PANTHERD_RETURN_IF_ERROR(store_->PutMessage(store::Family::kUsers, user.name(), user));
    absl::MutexLock lock(&mu_);
    users_[user.name()] = user;
  }
  NotifyRevocation();  // A disabled user's streams end; a role change applies at once.
  return user;
}

absl::StatusOr<v1::CreateTokenResponse> Authenticator::CreateTokenLocked(
    absl::string_view owner, absl::string_view name, std::optional<absl::Duration> ttl) {
  const std::string secret = NewTokenSecret();
  TokenEntry entry;
  entry.hash = HashToken(secret);
  v1::Token& token = entry.token;
  token.set_id(TokenIdOf(entry.hash));
  token.set_name(std::string(name));
  token.set_owner(std::string(owner));
  const absl::Time now = now_();
  *token.mutable_created_time() = ToProto(now);
  if (ttl.has_value()) *token.mutable_expire_time() = ToProto(now + *ttl);
  PANTHERD_RETURN_IF_ERROR(store_->PutMessage(store::Family::kTokens, entry.hash, token));
  v1::CreateTokenResponse resp;
  *resp.mutable_token() = token;
  resp.set_secret(secret);
  absl::MutexLock lock(&mu_);
  token_ids_[token.id()] = entry.hash;
  tokens_[entry.hash] = std::move(entry);
  return resp;
}

absl::StatusOr<v1::CreateTokenResponse> Authenticator::CreateToken(
    const Principal& caller, const v1::CreateTokenRequest& req) {
  PANTHERD_RETURN_IF_ERROR(ValidateName("name", req.name()));
  const std::string owner = req.owner().empty() ? caller.user : req.owner();
  if (owner != caller.user && !caller.Has(kPermTokensManage)) {
    return absl::PermissionDeniedError(absl::StrCat(
        "missing permission ", kPermTokensManage, ": only an admin may create tokens for ", owner));
  }
  std::optional<absl::Duration> ttl;
  if (req.has_ttl()) {
    ttl = absl::Nanoseconds(TimeUtil::DurationToNanoseconds(req.ttl()));
    if (*ttl <= absl::ZeroDuration()) return absl::InvalidArgumentError("ttl: must be positive");
  }
  absl::MutexLock write(&write_mu_);
  {
    absl::MutexLock lock(&mu_);
    auto user = users_.find(owner);
    if (user == users_.end()) return absl::NotFoundError(absl::StrCat("no user ", owner));
    if (user->second.disabled()) {
      return absl::FailedPreconditionError(absl::StrCat("user ", owner, " is disabled"));
    }
    for (const auto& [hash, entry] : tokens_) {
      if (entry.token.owner() == owner && entry.token.name() == req.name() &&
          !entry.token.revoked()) {
        return absl::AlreadyExistsError(
            absl::StrCat("user ", owner, " already has a token named ", req.name()));
      }
    }
  }
  return CreateTokenLocked(owner, req.name(), ttl);
}

absl::StatusOr<std::vector<v1::Token>> Authenticator::ListTokens(
    const Principal& caller, const v1::ListTokensRequest& req) const {
  const std::string owner = req.owner().empty() ? caller.user : req.owner();
  if (owner != caller.user && !caller.Has(kPermTokensManage)) {
    return absl::PermissionDeniedError(absl::StrCat("missing permission ", kPermTokensManage,
                                                    ": only an admin may list tokens of ", owner));
  }
  std::vector<v1::Token> tokens;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [hash, entry] : tokens_) {
      if (owner != "*" && entry.token.owner() != owner) continue;
      if (entry.token.revoked() && !req.include_revoked()) continue;
      tokens.push_back(entry.token);
    }
  }
  std::sort(tokens.begin(), tokens.end(), [](const v1::Token& a, const v1::Token& b) {
    return std::tie(a.owner(), a.name(), a.id()) < std::tie(b.owner(), b.name(), b.id());
  });
  return tokens;
}

absl::StatusOr<v1::Token> Authenticator::RevokeToken(const Principal& caller,
                                                     const v1::RevokeTokenRequest& req) {
  if (req.id().empty()) return absl::InvalidArgumentError("id: is required");
  v1::Token token;
  {
    absl::MutexLock write(&write_mu_);
    std::string hash;
    {
      absl::MutexLock lock(&mu_);
      auto id = token_ids_.find(req.id());
      if (id == token_ids_.end()) return absl::NotFoundError(absl::StrCat("no token ", req.id()));
      hash = id->second;
      token = tokens_.at(hash).token;
    }
    if (token.owner() != caller.user && !caller.Has(kPermTokensManage)) {
      // Same answer as for an unknown id: a token of someone else is not
      // revealed to a non-admin.
      return absl::NotFoundError(absl::StrCat("no token ", req.id()));
    }
    if (token.revoked()) return token;
    token.set_revoked(true);
    PANTHERD_RETURN_IF_ERROR(store_->PutMessage(store::Family::kTokens, hash, token));
    absl::MutexLock lock(&mu_);
    tokens_[hash].token.set_revoked(true);
  }
  NotifyRevocation();
  return token;
}

v1::WhoAmIResponse Authenticator::WhoAmI(const Principal& caller) const {
  v1::WhoAmIResponse resp;
  absl::MutexLock lock(&mu_);
  auto user = users_.find(caller.user);
  if (user != users_.end()) {
    *resp.mutable_user() = user->second;
  } else {
    resp.mutable_user()->set_name(caller.user);
    resp.mutable_user()->set_role(caller.role);
  }
  auto id = token_ids_.find(caller.token_id);
  if (id != token_ids_.end()) *resp.mutable_token() = tokens_.at(id->second).token;
  return resp;
}

absl::Status Authenticator::FlushLastUsed() {
  absl::MutexLock write(&write_mu_);
  store::WriteBatch batch;
  std::vector<std::string> flushed;
  {
    absl::MutexLock lock(&mu_);
    for (auto& [hash, entry] : tokens_) {
      if (!entry.last_used_dirty) continue;
      batch.PutMessage(store::Family::kTokens, hash, entry.token);
      flushed.push_back(hash);
    }
  }
  if (batch.Empty()) return absl::OkStatus();
  PANTHERD_RETURN_IF_ERROR(store_->Write(std::move(batch)));
  absl::MutexLock lock(&mu_);
  for (const std::string& hash : flushed) tokens_[hash].last_used_dirty = false;
  return absl::OkStatus();
}

}  // namespace pantherd::server
