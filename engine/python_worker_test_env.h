// For tests that run rule code in-process: a GoogleTest Environment that
// owns the test binary's one PythonWorker (one embedded interpreter per
// process) and its in-memory key-value space, created before the first test
// and destroyed after the last.
//
//   ::testing::Environment* const kEnv = ::testing::AddGlobalTestEnvironment(
//       new pantherd::engine::PythonWorkerEnvironment(absl::Seconds(1)));
//   ... PythonWorkerEnvironment::worker().Evaluate(task) ...
//
// Thread-safety: the worker must be used on the thread that created it (the
// main test thread), as engine/python_runtime.h requires.
#ifndef PANTHERD_ENGINE_PYTHON_WORKER_TEST_ENV_H_
#define PANTHERD_ENGINE_PYTHON_WORKER_TEST_ENV_H_

#include <gtest/gtest.h>

#include <memory>

#include "absl/time/time.h"
#include "engine/kv_memory.h"
#include "engine/python_worker.h"

namespace pantherd::engine {

class PythonWorkerEnvironment : public ::testing::Environment {
 public:
  // `call_time_limit`: the time limit of each call into rule code.
  explicit PythonWorkerEnvironment(absl::Duration call_time_limit) : limit_(call_time_limit) {}

  void SetUp() override {
    kv_ = std::make_unique<KvMemory>();
    WorkerLimits limits;
    limits.call_time_limit = limit_;
    absl::StatusOr<std::unique_ptr<PythonWorker>> worker = PythonWorker::Create(kv_.get(), limits);
    ASSERT_TRUE(worker.ok()) << worker.status();
    worker_ = std::move(*worker);
    Current() = this;
  }
  void TearDown() override {
    Current() = nullptr;
    worker_.reset();
    kv_.reset();
  }

  // The running environment's worker and key-value space (between SetUp and
  // TearDown only).
  static PythonWorker& worker() { return *Current()->worker_; }
  static KvMemory& kv() { return *Current()->kv_; }

 private:
  static PythonWorkerEnvironment*& Current() {
    static PythonWorkerEnvironment* current = nullptr;
    return current;
  }

  absl::Duration limit_;
  std::unique_ptr<KvMemory> kv_;
  std::unique_ptr<PythonWorker> worker_;
};

}  // namespace pantherd::engine

#endif  // PANTHERD_ENGINE_PYTHON_WORKER_TEST_ENV_H_
