// pantherctl: the command-line client of pantherd. See client/cli.h.
#include "client/cli.h"

int main(int argc, char** argv) { return pantherd::client::RunCli(argc, argv); }
