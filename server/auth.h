// Who may call what: users, roles, API tokens and the permission table.
//
// PERMISSIONS. Every RPC of pantherd.v1 has exactly one entry in MethodTable():
// the permission it needs, whether it changes state (then every call is
// audited) and the request field that names its target. Every role has a
// fixed set of permissions (PermissionsOf). A handler asks
// Authenticator::Check(ctx, method) before anything else (see
// server/call_auth.h); a method missing from the table is refused, so a new
// RPC cannot be served without a decision. docs/security.md shows the same
// table; a test keeps the two in step.
//
// TOKENS. An API token is "pth_" followed by 64 hex digits (256 random bits
// from OpenSSL). Only its SHA-256 (lowercase hex) is stored, as the key of
// Family::kTokens; the secret is returned once, by CreateToken. Clients send
// "authorization: Bearer <token>".
//
// MEMORY, NOT DISK, ON THE CALL PATH. Users and tokens are loaded at start
// into an in-memory index; Check() reads only that index (a SHA-256 and a
// hash lookup under a mutex), so it may run on gRPC callback threads. The
// changing calls (CreateUser, RevokeToken, ...) write the store first and then
// update the index, so a revocation takes effect on the very next call. They
// block on disk: run them on the Executor. A token's last-used time is kept in
// memory and written by FlushLastUsed() (periodically and at shutdown), so a
// call never costs a disk write.
//
// FAILED ATTEMPTS. A call presenting a token that is not known at all counts
// as a failure of its peer address (FailureThrottle). After a few failures in
// a window, the answers to that peer are delayed, growing to a cap, so that
// guessing gets slow; known but revoked or expired tokens and calls without a
// token do not count. The peer map is bounded.
//
// THREAD-SAFETY. All methods of Authenticator and FailureThrottle are
// thread-safe.
#ifndef PANTHERD_SERVER_AUTH_H_
#define PANTHERD_SERVER_AUTH_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
#include "pantherd/v1/admin_service.pb.h"
#include "proto/base/clock.h"
#include "store/store.h"

namespace pantherd::server {

// The permissions. Names are stable: they appear in PERMISSION_DENIED
// messages, the docs and the audit trail.
inline constexpr absl::string_view kPermServerStatus = "server.status";
inline constexpr absl::string_view kPermSelf = "self";
inline constexpr absl::string_view kPermRulesRead = "rules.read";
inline constexpr absl::string_view kPermRulesWrite = "rules.write";
inline constexpr absl::string_view kPermRulesTest = "rules.test";
inline constexpr absl::string_view kPermEventsIngest = "events.ingest";
inline constexpr absl::string_view kPermSourcesRead = "sources.read";
inline constexpr absl::string_view kPermSourcesWrite = "sources.write";
inline constexpr absl::string_view kPermAlertsRead = "alerts.read";
inline constexpr absl::string_view kPermAlertsTriage = "alerts.triage";
inline constexpr absl::string_view kPermUsersManage = "users.manage";
inline constexpr absl::string_view kPermTokensManage = "tokens.manage";
inline constexpr absl::string_view kPermAuditRead = "audit.read";
// Listing and reading destinations (never their secrets): author and above.
inline constexpr absl::string_view kPermDestinationsRead = "destinations.read";
// Adding, changing, removing and testing destinations: admin.
inline constexpr absl::string_view kPermDestinationsManage = "destinations.manage";
// Searching stored events with SQL (SearchEvents): analyst and above.
inline constexpr absl::string_view kPermEventsSearch = "events.search";

// One RPC's entry in the permission table.
struct MethodRule {
  // "pantherd.v1.DetectionService/UploadRule" (no leading '/').
  absl::string_view method;
  absl::string_view permission;
  // Every call is recorded in the audit trail (denied calls always are).
  bool changes_state;
  // The request field that names what the call acts on ("" for none). A
  // repeated field is summarised as "<n> <field>".
  absl::string_view target_field;
};

// The permission table: every RPC of pantherd.v1.DetectionService and
// pantherd.v1.AdminService, in proto order.
const std::vector<MethodRule>& MethodTable();

// The entry of `method` ("pkg.Service/Method", with or without a leading
// '/'), or nullptr when it has none.
const MethodRule* FindMethodRule(absl::string_view method);

// Every RPC of DetectionService and AdminService as "pantherd.v1.<Service>/
// <Method>", read from the generated service descriptors: what MethodTable()
// must cover exactly (its tests compare the two).
std::vector<std::string> ServiceMethods();

// The permissions of `role`, in table order; empty for ROLE_UNSPECIFIED.
const std::vector<absl::string_view>& PermissionsOf(v1::Role role);
bool RoleHas(v1::Role role, absl::string_view permission);

// "viewer", "analyst", "author", "admin" ("unspecified" otherwise), and back
// (also accepts the enum names, e.g. "ROLE_ADMIN"; InvalidArgument otherwise).
std::string RoleName(v1::Role role);
absl::StatusOr<v1::Role> ParseRole(absl::string_view name);

// OK when `name` can name a user or a token: 1 to 64 characters from
// [A-Za-z0-9._@-]. InvalidArgument naming `field` otherwise.
absl::Status ValidateName(absl::string_view field, absl::string_view name);

// A new random token secret ("pth_" + 64 lowercase hex digits). Aborts if the
// system cannot produce random bytes.
std::string NewTokenSecret();
// Lowercase hex SHA-256 of `secret`.
std::string HashToken(absl::string_view secret);
// The public id of a token: the first 16 hex digits of its hash.
std::string TokenIdOf(absl::string_view token_hash);

// "ipv4:127.0.0.1:5000" -> "ipv4:127.0.0.1" (the port changes per connection).
std::string PeerKey(absl::string_view peer);

// The caller behind a call.
struct Principal {
  std::string user;
  v1::Role role = v1::ROLE_UNSPECIFIED;
  std::string token_id;    // empty in --auth=none mode
  std::string token_name;  // empty in --auth=none mode
  bool Has(absl::string_view permission) const { return RoleHas(role, permission); }
};

// Counts failed authentications per peer and says how long to delay the
// answer. Bounded: at most `max_peers` peers are tracked; when full, peers
// whose window ended are forgotten, and if none did, a new peer is not
// tracked (counted in untracked()).
class FailureThrottle {
 public:
  struct Options {
    int free_failures = 5;  // failures answered at once
    absl::Duration window = absl::Minutes(5);
    absl::Duration first_delay = absl::Milliseconds(200);
    absl::Duration max_delay = absl::Seconds(5);
    size_t max_peers = 4096;
  };
  explicit FailureThrottle(Options options, base::Clock now = base::RealClock());

  // Records a failure of `peer`; returns how long its answer should wait:
  // zero for the first free_failures in a window, then first_delay doubling
  // per failure, capped at max_delay.
  absl::Duration RecordFailure(absl::string_view peer) ABSL_LOCKS_EXCLUDED(mu_);

  int64_t delayed() const ABSL_LOCKS_EXCLUDED(mu_);
  int64_t untracked() const ABSL_LOCKS_EXCLUDED(mu_);
  size_t tracked_peers() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  struct Entry {
    absl::Time window_start;
    int failures = 0;
  };
  const Options options_;
  const base::Clock now_;
  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, Entry> peers_ ABSL_GUARDED_BY(mu_);
  int64_t delayed_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t untracked_ ABSL_GUARDED_BY(mu_) = 0;
};

// Runs tasks after a delay on one thread. Bounded: when `capacity` tasks are
// waiting, Schedule runs the new task at once (counted in overflowed()).
// Stop() runs every waiting task at once and joins the thread.
class DelayedRunner {
 public:
  explicit DelayedRunner(size_t capacity = 1024);
  ~DelayedRunner();
  void Schedule(absl::Duration delay, std::function<void()> task) ABSL_LOCKS_EXCLUDED(mu_);
  void Stop() ABSL_LOCKS_EXCLUDED(mu_);
  int64_t overflowed() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  void Loop();
  const size_t capacity_;
  mutable absl::Mutex mu_;
  std::multimap<absl::Time, std::function<void()>> tasks_ ABSL_GUARDED_BY(mu_);
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  int64_t overflowed_ ABSL_GUARDED_BY(mu_) = 0;
  std::thread thread_;
};

enum class AuthMode {
  kTokens,  // every call needs a valid token (the default)
  kNone,    // no tokens; every caller is the local admin "local" (loopback only)
};

class Authenticator {
 public:
  // Loads users and tokens from `store` (not owned; must outlive this
  // object). Errors: the store's, DataLoss for an unreadable record.
  static absl::StatusOr<std::unique_ptr<Authenticator>> Load(store::Store* store, AuthMode mode,
                                                             base::Clock now = base::RealClock());

  AuthMode mode() const { return mode_; }

  // On a store without users: creates the user "admin" (role admin) and its
  // token "bootstrap", and returns the token's secret; nullopt when users
  // exist already. Blocks on disk.
  absl::StatusOr<std::optional<std::string>> Bootstrap() ABSL_LOCKS_EXCLUDED(mu_);

  // The one check every RPC makes: authenticates the bearer token of `ctx`
  // and checks the permission of `method` ("pkg.Service/Method") in the
  // table. Returns the caller, or UNAUTHENTICATED (no, unknown, revoked or
  // expired token; disabled user), or PERMISSION_DENIED naming the missing
  // permission (or the method missing from the table). Never blocks on disk.
  absl::StatusOr<Principal> Check(const grpc::ServerContextBase& ctx, absl::string_view method)
      ABSL_LOCKS_EXCLUDED(mu_);

  // How long to delay the answer of a failed Check on `ctx` (see
  // FailureThrottle); zero unless the call presented an unknown token.
  absl::Duration FailureDelay(const grpc::ServerContextBase& ctx);

  // For the audit trail: the user and token name behind `ctx`'s token even if
  // it is revoked or expired; empty strings when there is none or it is
  // unknown. Never blocks on disk.
  std::pair<std::string, std::string> Identify(const grpc::ServerContextBase& ctx) const
      ABSL_LOCKS_EXCLUDED(mu_);

  // OK while the token `token_id` still authenticates (exists, not revoked,
  // not expired, user enabled) and its user's role still has `permission`
  // (unless empty); UNAUTHENTICATED or PERMISSION_DENIED saying why
  // otherwise. Used to end open streams. Never blocks on disk.
  absl::Status StillValid(absl::string_view token_id, absl::string_view permission = "") const
      ABSL_LOCKS_EXCLUDED(mu_);

  // Called (without locks) after a token was revoked or a user changed, so
  // that open streams are checked again. Set once, before serving.
  void set_on_revocation(std::function<void()> fn) { on_revocation_ = std::move(fn); }

  // The AdminService operations. They block on disk (run on the Executor).
  // `caller` is the principal from Check(); permission checks beyond the
  // table (an admin for other users' tokens) are made here and fail with
  // PERMISSION_DENIED naming tokens.manage. InvalidArgument names the field;
  // NotFound / AlreadyExists name the user or token.
  absl::StatusOr<v1::User> CreateUser(const v1::CreateUserRequest& req) ABSL_LOCKS_EXCLUDED(mu_);
  std::vector<v1::User> ListUsers(bool include_disabled) const ABSL_LOCKS_EXCLUDED(mu_);
  // Refuses to disable or demote the last enabled admin (FailedPrecondition).
  absl::StatusOr<v1::User> UpdateUser(const v1::UpdateUserRequest& req) ABSL_LOCKS_EXCLUDED(mu_);
  absl::StatusOr<v1::CreateTokenResponse> CreateToken(const Principal& caller,
                                                      const v1::CreateTokenRequest& req)
      ABSL_LOCKS_EXCLUDED(mu_);
  absl::StatusOr<std::vector<v1::Token>> ListTokens(const Principal& caller,
                                                    const v1::ListTokensRequest& req) const
      ABSL_LOCKS_EXCLUDED(mu_);
  absl::StatusOr<v1::Token> RevokeToken(const Principal& caller, const v1::RevokeTokenRequest& req)
      ABSL_LOCKS_EXCLUDED(mu_);
  // The user and token of `caller`, as WhoAmI answers.
  v1::WhoAmIResponse WhoAmI(const Principal& caller) const ABSL_LOCKS_EXCLUDED(mu_);

  // Writes the last-used times that changed since the previous flush.
  // Blocks on disk.
  absl::Status FlushLastUsed() ABSL_LOCKS_EXCLUDED(mu_);

  // Answers of failed checks delayed so far, and peers not tracked because
  // the throttle's map was full.
  const FailureThrottle& throttle() const { return throttle_; }

 private:
  struct TokenEntry {
    std::string hash;
    v1::Token token;
    bool last_used_dirty = false;
  };

  Authenticator(store::Store* store, AuthMode mode, base::Clock now);
  absl::Status LoadAll() ABSL_LOCKS_EXCLUDED(mu_);
  // The bearer token of `ctx`, or "" when none was sent.
  static std::string BearerToken(const grpc::ServerContextBase& ctx);
  absl::Status ValidLocked(const TokenEntry& entry) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  int EnabledAdminsLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<v1::CreateTokenResponse> CreateTokenLocked(absl::string_view owner,
                                                            absl::string_view name,
                                                            std::optional<absl::Duration> ttl)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mu_);
  void NotifyRevocation();

  store::Store* const store_;
  const AuthMode mode_;
  const base::Clock now_;
  FailureThrottle throttle_;
  std::function<void()> on_revocation_;

  // Serialises the changing operations (store write, then index update).
  // Lock order: write_mu_, then mu_.
  absl::Mutex write_mu_;
  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, v1::User> users_ ABSL_GUARDED_BY(mu_);
  // By token hash.
  absl::flat_hash_map<std::string, TokenEntry> tokens_ ABSL_GUARDED_BY(mu_);
  // Token id -> token hash.
  absl::flat_hash_map<std::string, std::string> token_ids_ ABSL_GUARDED_BY(mu_);
};

}  // namespace pantherd::server

#endif  // PANTHERD_SERVER_AUTH_H_
