// The pantherctl command line: parses the arguments, runs the chosen command
// and turns its outcome into an exit code.
//
// Global options, accepted before or after the command:
//   --server ADDR       pantherd address (env PANTHER_SERVER, default 127.0.0.1:50051)
//   --token TOKEN       API token (env PANTHER_TOKEN); prefer --token-file FILE,
//                       PANTHER_TOKEN_FILE, PANTHER_TOKEN or `pantherctl login`
//   --token-file FILE   file whose first line is the API token (env PANTHER_TOKEN_FILE)
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
// SECRETS IN ARGV: a token given with --token is visible to every local user
// in the process list (/proc/PID/cmdline, ps) while pantherctl runs. When
// --token has a non-empty value and the command line parses, pantherctl
// prints kTokenOnCommandLineWarning on the error stream before running the
// command (so a failing command then prints two lines), and main()'s argv
// copy of the token is overwritten with 'x' right away (ScrubTokenArguments).
// Overwriting only shortens the window: the token was readable from the
// moment the process started, and the shell may have logged it.
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

// The line printed on the error stream when --token carries a token.
inline constexpr char kTokenOnCommandLineWarning[] =
    "pantherctl: warning: --token puts the secret in the process list where other local users "
    "can read it; use --token-file FILE, PANTHER_TOKEN_FILE, PANTHER_TOKEN or pantherctl login";

// Runs pantherctl with `args` (the arguments after the program name), writing
// results to `out` and the error line to `err`. Returns the exit code. Safe to
// call repeatedly in one process (tests do); reads PANTHER_SERVER and
// PANTHER_TOKEN from the environment.
int RunCli(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

// As above; `color` allows ANSI colours on `out`.
int RunCli(const std::vector<std::string>& args, std::ostream& out, std::ostream& err, bool color);

// As above; `err_terminal` tells commands that `err` is a terminal (e.g.
// `send` then draws its progress bar there), as main() does after isatty.
int RunCli(const std::vector<std::string>& args, std::ostream& out, std::ostream& err, bool color,
           bool err_terminal);

// RunCli over main()'s arguments with std::cout and std::cerr, with colours
// when standard output is a terminal (see above). Copies the arguments, then
// calls ScrubTokenArguments(argc, argv) before parsing them.
int RunCli(int argc, char** argv);

// Overwrites with 'x' every character of the value of each "--token VALUE"
// and "--token=VALUE" in argv[1..argc) (up to a "--"), so that
// /proc/PID/cmdline no longer shows the token. Lengths stay, so the argument
// vector keeps its shape. Returns the number of values overwritten (empty
// values are left alone). Only shortens the window in which other local
// users can read the token; see the file comment.
int ScrubTokenArguments(int argc, char** argv);

}  // namespace pantherd::client

#endif  // PANTHERD_CLIENT_CLI_H_
