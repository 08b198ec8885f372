#include "client/cli.h"

#include <unistd.h>

#include <cstdlib>
#include <exception>
#include <iostream>
#include <optional>
#include <string>
#include <utility>

#include "CLI/CLI.hpp"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "client/command.h"
#include "client/commands.h"
#include "client/connection.h"
#include "client/output.h"

namespace pantherd::client {
namespace {

constexpr char kErrorPrefix[] = "pantherctl: error: ";

#ifndef PANTHERCTL_VERSION
#error "PANTHERCTL_VERSION must be defined by the build"
#endif
// The project version pantherctl was built from (CMake's project() version,
// the same as pantherd's).
constexpr char kPantherctlVersion[] = PANTHERCTL_VERSION;

// Shown under every command's --help, since CLI11 lists only a command's own
// options there.
constexpr char kGlobalOptionsFooter[] =
    "Global options (before or after the command): --server ADDR, --token TOKEN, "
    "--token-file FILE, --ca-cert FILE, --output table|json|csv, --timeout SECONDS; see "
    "pantherctl --help.";

// The global options as bound to CLI11.
struct GlobalOptions {
  std::string server;
  std::string token;
  std::string token_file;
  std::string ca_cert;
  std::string client_cert;
  std::string client_key;
  std::string output = "table";
  double timeout_seconds = kDefaultTimeoutSeconds;
  CLI::Option* server_option = nullptr;
  CLI::Option* token_option = nullptr;
  CLI::Option* token_file_option = nullptr;
  CLI::Option* ca_cert_option = nullptr;
  CLI::Option* client_cert_option = nullptr;
  CLI::Option* client_key_option = nullptr;

  ConnectionFlags ToConnectionFlags() const {
    ConnectionFlags flags;
    if (server_option->count() > 0) flags.server = server;
    if (token_option->count() > 0) flags.token = token;
    if (token_file_option->count() > 0) flags.token_file = token_file;
    if (ca_cert_option->count() > 0) flags.ca_cert = ca_cert;
    if (client_cert_option->count() > 0) flags.client_cert = client_cert;
    if (client_key_option->count() > 0) flags.client_key = client_key;
    flags.timeout_seconds = timeout_seconds;
    return flags;
  }
};

void AddGlobalOptions(CLI::App& app, GlobalOptions& options) {
  options.server_option =
      app.add_option("--server", options.server,
                     absl::StrCat("pantherd address, host:port (env ", kServerEnvVar, "; default ",
                                  kDefaultServer, ")"))
          ->type_name("ADDR")
          ->check([](const std::string& value) {
            return value.empty() ? std::string("must not be empty") : std::string();
          });
  options.token_option =
      app.add_option("--token", options.token,
                     absl::StrCat("API token, sent as a bearer token (env ", kTokenEnvVar,
                                  "); other local users can read it in the process list, so "
                                  "prefer --token-file or the environment"))
          ->type_name("TOKEN");
  options.token_file_option =
      app.add_option(
             "--token-file", options.token_file,
             absl::StrCat("File whose first line is the API token (env ", kTokenFileEnvVar, ")"))
          ->type_name("FILE");
  options.ca_cert_option =
      app.add_option("--ca-cert", options.ca_cert,
                     absl::StrCat("PEM CA to verify the server with; enables TLS (env ",
                                  kCaCertEnvVar, ")"))
          ->type_name("FILE");
  options.client_cert_option =
      app.add_option("--client-cert", options.client_cert,
                     "PEM client certificate, for servers that require one")
          ->type_name("FILE");
  options.client_key_option =
      app.add_option("--client-key", options.client_key, "PEM key of --client-cert")
          ->type_name("FILE");
  app.add_option("--output", options.output,
                 "Output format: table, json or csv (default table; csv for list commands "
                 "only; see docs/cli.md)")
      ->type_name("FORMAT")
      ->check(CLI::IsMember({"table", "json", "csv"}));
  app.add_option(
         "--timeout", options.timeout_seconds,
         absl::StrCat("Deadline of each call in seconds (default ", kDefaultTimeoutSeconds, ")"))
      ->type_name("SECONDS")
      ->check([](const std::string& value) {
        double seconds = 0;
        return absl::SimpleAtod(value, &seconds) && seconds > 0
                   ? std::string()
                   : std::string("must be a positive number of seconds");
      });
}

// "pantherctl rules" for the `rules` command.
std::string CommandPath(const CLI::App& command) {
  std::string path = command.get_name();
  for (const CLI::App* app = command.get_parent(); app != nullptr; app = app->get_parent()) {
    path = absl::StrCat(app->get_name(), " ", path);
  }
  return path;
}

// CLI11's message for `e`, except when a command is missing or unknown,
// which CLI11 reports as "A subcommand is required" without naming either.
std::string UsageErrorMessage(const CLI::App& root, const CLI::ParseError& e) {
  const CLI::App* deepest = &root;
  while (!deepest->get_subcommands().empty()) deepest = deepest->get_subcommands().front();
  if (deepest->get_require_subcommand_min() == 0) return e.what();
  for (const CLI::App* app = deepest; app != nullptr; app = app->get_parent()) {
    std::vector<std::string> extra = app->remaining();
    if (!extra.empty()) {
      return absl::StrCat("unknown command '", extra.front(), "' for '", CommandPath(*deepest),
                          "'");
    }
  }
  std::vector<std::string> names;
  for (const CLI::App* command : deepest->get_subcommands([](const CLI::App*) { return true; })) {
    names.push_back(command->get_name());
  }
  return absl::StrCat("'", CommandPath(*deepest),
                      "' needs a command: ", absl::StrJoin(names, ", "));
}

int Fail(std::ostream& err, absl::string_view message, int code) {
  err << kErrorPrefix << EscapeForTerminal(OneLine(message)) << '\n' << std::flush;
  return code;
}

// True when standard output is a terminal that wants colours: a tty, TERM is
// not "dumb" and NO_COLOR (no-color.org) is not set.
bool StdoutWantsColor() {
  if (!isatty(STDOUT_FILENO)) return false;
  const char* term = std::getenv("TERM");
  if (term != nullptr && std::string(term) == "dumb") return false;
  const char* no_color = std::getenv("NO_COLOR");
  return no_color == nullptr || *no_color == '\0';
}

int Run(const std::vector<std::string>& args, std::ostream& out, std::ostream& err, bool color,
        bool err_terminal) {
  CLI::App app("pantherctl: the command-line client of pantherd, the detection-as-code server.",
               "pantherctl");
  // Set before the commands are added, so that every command inherits them:
  // unknown options fall through to the parent (global options work after
  // the command), and the footer reminds of the global options.
  app.fallthrough();
  app.require_subcommand(1);
  app.footer(kGlobalOptionsFooter);

  app.set_version_flag("--version", absl::StrCat("pantherctl ", kPantherctlVersion),
                       "Print pantherctl's version and exit");

  GlobalOptions globals;
  AddGlobalOptions(app, globals);
  CommandRegistry registry;
  AddAdminCommands(app, registry);
  AddRulesCommands(app, registry);
  AddAlertsCommands(app, registry);
  AddSourcesCommands(app, registry);
  AddDestinationsCommands(app, registry);
  AddSendCommand(app, registry);
  AddSearchCommand(app, registry);
  AddAnalysisCommands(app, registry);
  AddTeamCommands(app, registry);
  app.footer("");  // The top-level help lists the global options itself.

  std::vector<std::string> reversed(args.rbegin(), args.rend());  // CLI11 wants them reversed.
  try {
    app.parse(reversed);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == static_cast<int>(CLI::ExitCodes::Success)) {
      return app.exit(e, out, err);  // --help.
    }
    return Fail(err, absl::StrCat(UsageErrorMessage(app, e), " (see --help)"), kExitUsage);
  }

  const CommandAction* action = registry.Selected(app);
  if (action == nullptr) return Fail(err, "no command given (see --help)", kExitUsage);
  absl::StatusOr<OutputFormat> format = ParseOutputFormat(globals.output);
  if (!format.ok()) return Fail(err, format.status().message(), kExitUsage);
  if (*format == OutputFormat::kCsv && !registry.SelectedIsList(app)) {
    return Fail(err,
                absl::StrCat("--output csv is only for list commands (",
                             absl::StrJoin(registry.list_commands(), ", "),
                             "); use --output table or json here"),
                kExitUsage);
  }

  if (globals.token_option->count() > 0 && !globals.token.empty()) {
    err << kTokenOnCommandLineWarning << '\n' << std::flush;
  }

  CommandEnv env(out, err, *format, globals.ToConnectionFlags(), color, err_terminal);
  absl::Status status = (*action)(env);
  out << std::flush;
  if (!status.ok()) return Fail(err, status.message(), kExitFailure);
  return kExitOk;
}

}  // namespace

int RunCli(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  return RunCli(args, out, err, /*color=*/false);
}

int RunCli(const std::vector<std::string>& args, std::ostream& out, std::ostream& err, bool color) {
  return RunCli(args, out, err, color, /*err_terminal=*/false);
}

int RunCli(const std::vector<std::string>& args, std::ostream& out, std::ostream& err, bool color,
           bool err_terminal) {
  try {
    return Run(args, out, err, color, err_terminal);
  } catch (const std::exception& e) {
    // Nothing below is meant to throw; keep the one-line contract if it does.
    return Fail(err, absl::StrCat("internal error: ", e.what()), kExitFailure);
  }
}

int ScrubTokenArguments(int argc, char** argv) {
  int scrubbed = 0;
  const auto scrub = [&scrubbed](char* value) {
    if (*value == '\0') return;
    for (char* c = value; *c != '\0'; ++c) *c = 'x';
    ++scrubbed;
  };
  constexpr absl::string_view kTokenEquals = "--token=";
  for (int i = 1; i < argc; ++i) {
    const absl::string_view arg(argv[i]);
    if (arg == "--") break;  // The rest are positional arguments.
    if (arg == "--token" && i + 1 < argc) {
      scrub(argv[++i]);
    } else if (absl::StartsWith(arg, kTokenEquals)) {
      scrub(argv[i] + kTokenEquals.size());
    }
  }
  return scrubbed;
}

int RunCli(int argc, char** argv) {
  std::vector<std::string> args;
  for (int i = 1; i < argc; ++i) args.emplace_back(argv[i]);
  // The copy above is all pantherctl reads; hide the token from
  // /proc/PID/cmdline at once (see ScrubTokenArguments).
  ScrubTokenArguments(argc, argv);
  try {
    return Run(args, std::cout, std::cerr, StdoutWantsColor(), isatty(STDERR_FILENO) == 1);
  } catch (const std::exception& e) {
    return Fail(std::cerr, absl::StrCat("internal error: ", e.what()), kExitFailure);
  }
}

}  // namespace pantherd::client
