// pantherd: the detection-as-code server. See README.md.
#include "server/server.h"

int main(int argc, char** argv) { return pantherd::server::ServerMain(argc, argv); }
