// The pantherctl command line: parses the arguments, runs the chosen command
// and turns its outcome into an exit code.
//
// Global options, accepted before or after the command:
//   --server ADDR       pantherd address (env PANTHER_SERVER, default 127.0.0.1:50051)
//   --token TOKEN       API token (env PANTHER_TOKEN)
//   --output table|json output format (default table)
//   --timeout SECONDS   deadline of each call (default 30)
// The commands are listed in commands.h.
//
// Exit codes: 0 on success, 2 for a usage error (reported by CLI11), 1 for
// every other failure. A failure prints exactly one line on the error stream,
// "pantherctl: error: <message>", and nothing on the output stream, except
// for `test` and `upload`, which print their report on the output stream
// first (failing tests, invalid specs). --help prints to the output stream
// and exits 0.
//
// Colours (the [PASS]/[FAIL] of `test`) are used only when the output stream
// is standard output on a terminal, TERM is not "dumb" and NO_COLOR is unset.
#ifndef PANTHERD_CLIENT_CLI_H_
#define PANTHERD_CLIENT_CLI_H_

#include <ostream>
#include <string>
#include <vector>

namespace pantherd::client {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;
inline constexpr int kExitUsage = 2;

// Runs pantherctl with `args` (the arguments after the program name), writing
// results to `out` and the error line to `err`. Returns the exit code. Safe to
// call repeatedly in one process (tests do); reads PANTHER_SERVER and
// PANTHER_TOKEN from the environment.
int RunCli(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

// As above; `color` allows ANSI colours on `out`.
int RunCli(const std::vector<std::string>& args, std::ostream& out, std::ostream& err, bool color);

// RunCli over main()'s arguments with std::cout and std::cerr, with colours
// when standard output is a terminal (see above).
int RunCli(int argc, char** argv);

}  // namespace pantherd::client

#endif  // PANTHERD_CLIENT_CLI_H_
