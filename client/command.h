// The plumbing shared by every pantherctl command.
//
// A command is a small function `absl::Status Foo(const FooArgs&, CommandEnv&)`
// registered under a CLI11 subcommand with CommandRegistry::AddCommand. The
// CLI parses first; then the action of the selected command runs with a
// CommandEnv that knows where and how to print and opens the connection to
// pantherd on first use (commands that need no server never connect).
//
//   CLI::App* rules = registry.AddGroup(root, "rules", "Manage rules");
//   auto args = std::make_shared<std::string>();
//   CLI::App* get = registry.AddCommand(*rules, "get", "Show one rule",
//       [args](CommandEnv& env) { return GetRule(*args, env); });
//   get->add_option("ID", *args, "Rule id")->required();
#ifndef PANTHERD_CLIENT_COMMAND_H_
#define PANTHERD_CLIENT_COMMAND_H_

#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <ostream>
#include <set>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "client/connection.h"
#include "client/output.h"

namespace pantherd::client {

// The runtime context of one command. Not thread-safe.
class CommandEnv {
 public:
  // Output goes to `out`, which must outlive this object. `color`: `out` is
  // a terminal that may get ANSI colours (RunCli decides).
  CommandEnv(std::ostream& out, OutputFormat format, ConnectionFlags flags, bool color = false);
  // As above, with `err` for warnings and progress (must outlive this
  // object); `err_terminal`: `err` is a terminal (progress lines are drawn
  // only then). The constructor above uses std::cerr, not a terminal.
  CommandEnv(std::ostream& out, std::ostream& err, OutputFormat format, ConnectionFlags flags,
             bool color, bool err_terminal);

  std::ostream& out() const { return out_; }
  // Warnings and progress; never the command's result.
  std::ostream& err() const { return err_; }
  bool err_terminal() const { return err_terminal_; }
  OutputFormat format() const { return format_; }
  bool json() const { return format_ == OutputFormat::kJson; }
  bool csv() const { return format_ == OutputFormat::kCsv; }

  // Prints a list command's table to out(): as CSV with --output csv
  // (Table::PrintCsv), else aligned (Table::Print).
  void PrintTable(const Table& table) const;
  bool color() const { return color_; }

  // Returns the connection, opening it on the first call from the resolved
  // flags (ResolveConnection); errors as ResolveConnection and
  // Connection::Open. The connection is owned by this object.
  absl::StatusOr<Connection*> Connect();

  // The connection flags as given (for `login`).
  const ConnectionFlags& flags() const { return flags_; }

 private:
  std::ostream& out_;
  std::ostream& err_;
  OutputFormat format_;
  ConnectionFlags flags_;
  bool color_;
  bool err_terminal_ = false;
  std::unique_ptr<Connection> connection_;
};

// The body of a command: prints its result to env.out() and returns OK, or
// returns an error whose message is one line (printed by RunCli).
using CommandAction = std::function<absl::Status(CommandEnv& env)>;

// Declares the command tree and remembers the action of each command.
class CommandRegistry {
 public:
  // Adds a command group (e.g. "rules"): it has subcommands, needs exactly
  // one of them and has no action of its own.
  CLI::App* AddGroup(CLI::App& parent, const std::string& name, const std::string& description);

  // Adds a command that runs `action` when it is the one selected.
  CLI::App* AddCommand(CLI::App& parent, const std::string& name, const std::string& description,
                       CommandAction action);

  // As AddCommand, for a command that prints a list and so also supports
  // --output csv (its action prints with CommandEnv::PrintTable).
  CLI::App* AddListCommand(CLI::App& parent, const std::string& name,
                           const std::string& description, CommandAction action);

  // After `root` parsed successfully: the action of the innermost selected
  // subcommand, or nullptr when it has none.
  const CommandAction* Selected(const CLI::App& root) const;

  // After `root` parsed successfully: true when the selected command was
  // added with AddListCommand.
  bool SelectedIsList(const CLI::App& root) const;

  // The paths ("rules list", ...) of the commands added with AddListCommand,
  // in the order they were added.
  const std::vector<std::string>& list_commands() const { return list_command_paths_; }

 private:
  // The innermost selected subcommand of a parsed `root`.
  static const CLI::App* Innermost(const CLI::App& root);

  std::map<const CLI::App*, CommandAction> actions_;
  std::set<const CLI::App*> list_commands_;
  std::vector<std::string> list_command_paths_;
};

}  // namespace pantherd::client

#endif  // PANTHERD_CLIENT_COMMAND_H_
