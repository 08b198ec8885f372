// pantherd-worker: runs rule code for pantherd in an isolated process. Started
// by pantherd only; see engine/worker_host.h.
#include "engine/python_worker.h"

int main(int argc, char** argv) { return pantherd::engine::WorkerMain(argc, argv); }
