#include "client/command.h"

#include <utility>
#include <vector>

#include "proto/base/status_macros.h"

namespace pantherd::client {

CommandEnv::CommandEnv(std::ostream& out, OutputFormat format, ConnectionFlags flags, bool color)
    : CommandEnv(out, std::cerr, format, std::move(flags), color, /*err_terminal=*/false) {}

CommandEnv::CommandEnv(std::ostream& out, std::ostream& err, OutputFormat format,
                       ConnectionFlags flags, bool color, bool err_terminal)
    : out_(out),
      err_(err),
      format_(format),
      flags_(std::move(flags)),
      color_(color),
      err_terminal_(err_terminal) {}

absl::StatusOr<Connection*> CommandEnv::Connect() {
  if (connection_ == nullptr) {
    PANTHERD_ASSIGN_OR_RETURN(ConnectionOptions options, ResolveConnection(flags_));
    PANTHERD_ASSIGN_OR_RETURN(connection_, Connection::Open(options));
  }
  return connection_.get();
}

CLI::App* CommandRegistry::AddGroup(CLI::App& parent, const std::string& name,
                                    const std::string& description) {
  CLI::App* group = parent.add_subcommand(name, description);
  group->require_subcommand(1);
  return group;
}

CLI::App* CommandRegistry::AddCommand(CLI::App& parent, const std::string& name,
                                      const std::string& description, CommandAction action) {
  CLI::App* command = parent.add_subcommand(name, description);
  actions_[command] = std::move(action);
  return command;
}

CLI::App* CommandRegistry::AddListCommand(CLI::App& parent, const std::string& name,
                                          const std::string& description, CommandAction action) {
  CLI::App* command = AddCommand(parent, name, description, std::move(action));
  list_commands_.insert(command);
  std::string path = name;
  for (const CLI::App* app = &parent; app != nullptr && app->get_parent() != nullptr;
       app = app->get_parent()) {
    path = app->get_name() + " " + path;
  }
  list_command_paths_.push_back(path);
  return command;
}

const CLI::App* CommandRegistry::Innermost(const CLI::App& root) {
  const CLI::App* current = &root;
  while (true) {
    std::vector<CLI::App*> selected = current->get_subcommands();
    if (selected.empty()) break;
    current = selected.front();
  }
  return current;
}

const CommandAction* CommandRegistry::Selected(const CLI::App& root) const {
  auto it = actions_.find(Innermost(root));
  return it == actions_.end() ? nullptr : &it->second;
}

bool CommandRegistry::SelectedIsList(const CLI::App& root) const {
  return list_commands_.count(Innermost(root)) > 0;
}

void CommandEnv::PrintTable(const Table& table) const {
  if (csv()) {
    table.PrintCsv(out_);
  } else {
    table.Print(out_);
  }
}

}  // namespace pantherd::client
