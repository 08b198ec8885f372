// `pantherctl login`, `users ...`, `tokens ...` and `audit`: the team side of
// pantherd (AdminService).
//
// login -> AdminService.WhoAmI with the token from --token, --token-file or
//   PANTHER_TOKEN (the login file itself is ignored), then stores server,
//   token and CA in the login file (LoginFilePath(), mode 0600) and prints
//   who it logged in as.
// users list -> ListUsers (--all includes disabled users); create ->
//   CreateUser; set-role / disable / enable -> UpdateUser.
// tokens create -> CreateToken; prints the secret once (table form: the
//   secret on its own line after the fields). tokens list -> ListTokens
//   (--all: every user's, "*"); tokens revoke ID -> RevokeToken.
// audit -> ListAuditEvents, following pages up to --limit events, newest
//   first.
#include <algorithm>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"
#include "client/commands.h"
#include "google/protobuf/util/time_util.h"
#include "proto/base/status_macros.h"

namespace pantherd::client {
namespace {

namespace v1 = ::pantherd::v1;
using google::protobuf::util::TimeUtil;

absl::StatusOr<v1::Role> ParseRoleArg(const std::string& name) {
  for (v1::Role r : {v1::ROLE_VIEWER, v1::ROLE_ANALYST, v1::ROLE_AUTHOR, v1::ROLE_ADMIN}) {
    if (absl::EqualsIgnoreCase(ShortEnumName(v1::Role_Name(r), "ROLE_"), name)) return r;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("role \"", name, "\" is not one of viewer, analyst, author, admin"));
}

std::string RoleText(v1::Role role) { return ShortEnumName(v1::Role_Name(role), "ROLE_"); }

// "30d", "12h", "90m", "3600s" (any absl duration, plus days).
absl::StatusOr<absl::Duration> ParseTtl(const std::string& text) {
  absl::string_view view(text);
  int64_t days = 0;
  if (absl::ConsumeSuffix(&view, "d") && absl::SimpleAtoi(view, &days) && days > 0) {
    return absl::Hours(24 * days);
  }
  absl::Duration d;
  if (absl::ParseDuration(text, &d) && d > absl::ZeroDuration()) return d;
  return absl::InvalidArgumentError(
      absl::StrCat("--ttl: \"", text, "\" is not a positive duration such as 30d, 12h or 90m"));
}

absl::StatusOr<google::protobuf::Timestamp> ParseTimeArg(const std::string& flag,
                                                         const std::string& text) {
  absl::Time t;
  std::string err;
  if (!absl::ParseTime(absl::RFC3339_full, text, &t, &err)) {
    return absl::InvalidArgumentError(absl::StrCat(
        flag, ": \"", text, "\" is not an RFC 3339 time such as 2026-01-31T12:00:00Z"));
  }
  return TimeUtil::NanosecondsToTimestamp(absl::ToUnixNanos(t));
}

void PrintUser(const v1::User& user, std::ostream& out) {
  PrintFields({{"User", user.name()},
               {"Role", RoleText(user.role())},
               {"Disabled", user.disabled() ? "yes" : "no"},
               {"Created", FormatTimestamp(user.created_time())}},
              out);
}

// ---- login --------------------------------------------------------------------

absl::Status Login(CommandEnv& env) {
  ConnectionFlags flags = env.flags();
  flags.ignore_login_file = true;
  PANTHERD_ASSIGN_OR_RETURN(ConnectionOptions options, ResolveConnection(flags));
  if (options.token.empty()) {
    return absl::InvalidArgumentError(
        "login needs a token: --token-file FILE (e.g. the server's admin.token), --token or "
        "PANTHER_TOKEN");
  }
  PANTHERD_ASSIGN_OR_RETURN(std::unique_ptr<Connection> conn, Connection::Open(options));
  v1::WhoAmIResponse who;
  PANTHERD_RETURN_IF_ERROR(conn->Call("WhoAmI", &Connection::AdminStub::WhoAmI, conn->admin(),
                                      v1::WhoAmIRequest(), &who));
  LoginFile login{options.server, options.token, options.ca_cert_file};
  if (!login.ca_cert.empty()) {
    std::error_code ec;
    std::filesystem::path absolute = std::filesystem::absolute(login.ca_cert, ec);
    if (!ec) login.ca_cert = absolute.string();
  }
  const std::string path = LoginFilePath();
  PANTHERD_RETURN_IF_ERROR(WriteLoginFile(path, login));
  if (env.json()) return PrintJson(who, env.out());
  env.out() << "Logged in to " << EscapeForTerminal(options.server) << " as "
            << EscapeForTerminal(who.user().name()) << " (role " << RoleText(who.user().role())
            << "). Saved to " << path << ".\n";
  return absl::OkStatus();
}

// ---- users ----------------------------------------------------------------------

absl::Status ListUsers(bool all, CommandEnv& env) {
  PANTHERD_ASSIGN_OR_RETURN(Connection * conn, env.Connect());
  v1::ListUsersRequest req;
  req.set_include_disabled(all);
  v1::ListUsersResponse resp;
  PANTHERD_RETURN_IF_ERROR(
      conn->Call("ListUsers", &Connection::AdminStub::ListUsers, conn->admin(), req, &resp));
  if (env.json()) return PrintJson(resp, env.out());
  Table table({"USER", "ROLE", "DISABLED", "CREATED"});
  for (const v1::User& u : resp.users()) {
    table.AddRow({u.name(), RoleText(u.role()), u.disabled() ? "yes" : "no",
                  FormatTimestamp(u.created_time())});
  }
  env.PrintTable(table);
  return absl::OkStatus();
}

absl::Status CreateUser(const std::string& name, const std::string& role, CommandEnv& env) {
  PANTHERD_ASSIGN_OR_RETURN(v1::Role parsed, ParseRoleArg(role));
  PANTHERD_ASSIGN_OR_RETURN(Connection * conn, env.Connect());
  v1::CreateUserRequest req;
  req.set_name(name);
  req.set_role(parsed);
  v1::CreateUserResponse resp;
  PANTHERD_RETURN_IF_ERROR(
      conn->Call("CreateUser", &Connection::AdminStub::CreateUser, conn->admin(), req, &resp));
  if (env.json()) return PrintJson(resp, env.out());
  PrintUser(resp.user(), env.out());
  return absl::OkStatus();
}

absl::Status UpdateUser(v1::UpdateUserRequest req, CommandEnv& env) {
  PANTHERD_ASSIGN_OR_RETURN(Connection * conn, env.Connect());
  v1::UpdateUserResponse resp;
  PANTHERD_RETURN_IF_ERROR(
      conn->Call("UpdateUser", &Connection::AdminStub::UpdateUser, conn->admin(), req, &resp));
  if (env.json()) return PrintJson(resp, env.out());
  PrintUser(resp.user(), env.out());
  return absl::OkStatus();
}

// ---- tokens ---------------------------------------------------------------------

struct TokenArgs {
  std::string name;
  std::string owner;
  std::string ttl;
  bool all = false;
  bool include_revoked = false;
  std::string id;
};

absl::Status CreateToken(const TokenArgs& args, CommandEnv& env) {
  v1::CreateTokenRequest req;
  req.set_name(args.name);
  req.set_owner(args.owner);
  if (!args.ttl.empty()) {
    PANTHERD_ASSIGN_OR_RETURN(absl::Duration ttl, ParseTtl(args.ttl));
    *req.mutable_ttl() = TimeUtil::NanosecondsToDuration(absl::ToInt64Nanoseconds(ttl));
  }
  PANTHERD_ASSIGN_OR_RETURN(Connection * conn, env.Connect());
  v1::CreateTokenResponse resp;
  PANTHERD_RETURN_IF_ERROR(
      conn->Call("CreateToken", &Connection::AdminStub::CreateToken, conn->admin(), req, &resp));
  if (env.json()) return PrintJson(resp, env.out());
  const v1::Token& t = resp.token();
  PrintFields(
      {{"Token", t.id()},
       {"Name", t.name()},
       {"Owner", t.owner()},
       {"Expires", t.has_expire_time() ? FormatTimestamp(t.expire_time()) : std::string("never")}},
      env.out());
  env.out() << "\nSecret (shown only now; store it safely):\n"
            << EscapeForTerminal(resp.secret()) << "\n";
  return absl::OkStatus();
}

absl::Status ListTokens(const TokenArgs& args, CommandEnv& env) {
  v1::ListTokensRequest req;
  req.set_owner(args.all ? "*" : args.owner);
  req.set_include_revoked(args.include_revoked);
  PANTHERD_ASSIGN_OR_RETURN(Connection * conn, env.Connect());
  v1::ListTokensResponse resp;
  PANTHERD_RETURN_IF_ERROR(
      conn->Call("ListTokens", &Connection::AdminStub::ListTokens, conn->admin(), req, &resp));
  if (env.json()) return PrintJson(resp, env.out());
  Table table({"ID", "NAME", "OWNER", "CREATED", "EXPIRES", "LAST USED", "REVOKED"});
  for (const v1::Token& t : resp.tokens()) {
    table.AddRow({t.id(), t.name(), t.owner(), FormatTimestamp(t.created_time()),
                  t.has_expire_time() ? FormatTimestamp(t.expire_time()) : std::string("never"),
                  FormatTimestamp(t.last_used_time()), t.revoked() ? "yes" : "no"});
  }
  env.PrintTable(table);
  return absl::OkStatus();
}

absl::Status RevokeToken(const std::string& id, CommandEnv& env) {
  PANTHERD_ASSIGN_OR_RETURN(Connection * conn, env.Connect());
  v1::RevokeTokenRequest req;
  req.set_id(id);
  v1::RevokeTokenResponse resp;
  PANTHERD_RETURN_IF_ERROR(
      conn->Call("RevokeToken", &Connection::AdminStub::RevokeToken, conn->admin(), req, &resp));
  if (env.json()) return PrintJson(resp, env.out());
  env.out() << "Revoked token " << EscapeForTerminal(resp.token().id()) << " ("
            << EscapeForTerminal(resp.token().name()) << ", owner "
            << EscapeForTerminal(resp.token().owner()) << ").\n";
  return absl::OkStatus();
}

// ---- audit ----------------------------------------------------------------------

struct AuditArgs {
  std::string actor, action, target, result, since, until;
  bool failures = false;
  int limit = 50;
};

absl::Status ListAudit(const AuditArgs& args, CommandEnv& env) {
  v1::ListAuditEventsRequest req;
  req.set_actor_user(args.actor);
  req.set_action_prefix(args.action);
  req.set_target(args.target);
  req.set_result(args.result);
  req.set_failures_only(args.failures);
  if (!args.since.empty()) {
    PANTHERD_ASSIGN_OR_RETURN(*req.mutable_since(), ParseTimeArg("--since", args.since));
  }
  if (!args.until.empty()) {
    PANTHERD_ASSIGN_OR_RETURN(*req.mutable_until(), ParseTimeArg("--until", args.until));
  }
  PANTHERD_ASSIGN_OR_RETURN(Connection * conn, env.Connect());
  v1::ListAuditEventsResponse all;
  while (all.events_size() < args.limit) {
    req.mutable_page()->set_page_size(std::min(1000, args.limit - all.events_size()));
    v1::ListAuditEventsResponse page;
    PANTHERD_RETURN_IF_ERROR(conn->Call("ListAuditEvents", &Connection::AdminStub::ListAuditEvents,
                                        conn->admin(), req, &page));
    for (v1::AuditEvent& e : *page.mutable_events()) *all.add_events() = std::move(e);
    all.set_next_page_token(page.next_page_token());
    if (page.next_page_token().empty()) break;
    req.mutable_page()->set_page_token(page.next_page_token());
  }
  if (env.json()) return PrintJson(all, env.out());
  Table table({"SEQ", "TIME", "ACTOR", "TOKEN", "ACTION", "TARGET", "RESULT", "DETAIL"});
  for (const v1::AuditEvent& e : all.events()) {
    table.AddRow({absl::StrCat(e.sequence()), FormatTimestamp(e.time()), OrDash(e.actor_user()),
                  OrDash(e.actor_token()), e.action(), OrDash(e.target()), e.result(),
                  OrDash(e.detail())});
  }
  env.PrintTable(table);
  return absl::OkStatus();
}

}  // namespace

void AddTeamCommands(CLI::App& root, CommandRegistry& registry) {
  registry.AddCommand(root, "login",
                      "Check a token and store server, token and CA for later commands", Login);

  CLI::App* users = registry.AddGroup(root, "users", "Manage users (admin)");
  auto all_users = std::make_shared<bool>(false);
  registry
      .AddListCommand(*users, "list", "List users",
                      [all_users](CommandEnv& env) { return ListUsers(*all_users, env); })
      ->add_flag("--all", *all_users, "Include disabled users");
  auto user_name = std::make_shared<std::string>();
  auto user_role = std::make_shared<std::string>();
  CLI::App* create = registry.AddCommand(
      *users, "create", "Create a user with a role",
      [user_name, user_role](CommandEnv& env) { return CreateUser(*user_name, *user_role, env); });
  create->add_option("NAME", *user_name, "User name")->required();
  create->add_option("--role", *user_role, "viewer, analyst, author or admin")->required();
  CLI::App* set_role = registry.AddCommand(
      *users, "set-role", "Change a user's role", [user_name, user_role](CommandEnv& env) {
        PANTHERD_ASSIGN_OR_RETURN(v1::Role role, ParseRoleArg(*user_role));
        v1::UpdateUserRequest req;
        req.set_name(*user_name);
        req.set_role(role);
        return UpdateUser(req, env);
      });
  set_role->add_option("NAME", *user_name, "User name")->required();
  set_role->add_option("ROLE", *user_role, "viewer, analyst, author or admin")->required();
  for (bool disable : {true, false}) {
    CLI::App* cmd = registry.AddCommand(
        *users, disable ? "disable" : "enable",
        disable ? "Disable a user (their tokens stop working at once)" : "Re-enable a user",
        [user_name, disable](CommandEnv& env) {
          v1::UpdateUserRequest req;
          req.set_name(*user_name);
          req.set_disabled(disable);
          return UpdateUser(req, env);
        });
    cmd->add_option("NAME", *user_name, "User name")->required();
  }

  CLI::App* tokens = registry.AddGroup(root, "tokens", "Manage API tokens");
  auto targs = std::make_shared<TokenArgs>();
  CLI::App* tcreate =
      registry.AddCommand(*tokens, "create", "Create an API token (the secret is shown once)",
                          [targs](CommandEnv& env) { return CreateToken(*targs, env); });
  tcreate->add_option("NAME", targs->name, "Token name, unique per user")->required();
  tcreate->add_option("--owner", targs->owner, "User the token acts as (admin; default: you)");
  tcreate->add_option("--ttl", targs->ttl, "Lifetime, e.g. 30d, 12h, 90m (default: never expires)");
  CLI::App* tlist =
      registry.AddListCommand(*tokens, "list", "List API tokens (not their secrets)",
                              [targs](CommandEnv& env) { return ListTokens(*targs, env); });
  tlist->add_option("--owner", targs->owner, "Whose tokens (admin; default: yours)");
  tlist->add_flag("--all", targs->all, "Every user's tokens (admin)");
  tlist->add_flag("--include-revoked", targs->include_revoked, "Include revoked tokens");
  CLI::App* trevoke =
      registry.AddCommand(*tokens, "revoke", "Revoke a token; it stops working at once",
                          [targs](CommandEnv& env) { return RevokeToken(targs->id, env); });
  trevoke->add_option("ID", targs->id, "Token id (from tokens list)")->required();

  auto aargs = std::make_shared<AuditArgs>();
  CLI::App* audit =
      registry.AddListCommand(root, "audit", "List the audit trail, newest first (admin)",
                              [aargs](CommandEnv& env) { return ListAudit(*aargs, env); });
  audit->add_option("--actor", aargs->actor, "Only calls by this user");
  audit->add_option("--action", aargs->action,
                    "Only methods starting with this, e.g. pantherd.v1.AdminService/");
  audit->add_option("--target", aargs->target, "Only calls on this target (rule id, user, ...)");
  audit->add_option("--result", aargs->result, "Only this result, e.g. OK or PERMISSION_DENIED");
  audit->add_flag("--failures", aargs->failures, "Only denied or failed calls");
  audit->add_option("--since", aargs->since, "Only events at or after this RFC 3339 time");
  audit->add_option("--until", aargs->until, "Only events before this RFC 3339 time");
  audit->add_option("--limit", aargs->limit, "At most this many events (default 50)")
      ->check(CLI::PositiveNumber);
}

}  // namespace pantherd::client
