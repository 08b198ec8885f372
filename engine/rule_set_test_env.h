// A test fixture base for tests of the rule-set stack over real parts: a
// store in a temp dir, its key-value backend, a one-worker pool running the
// pantherd-worker program (PANTHERD_WORKER_BINARY, defined by the test's
// build target), the executor on it, the rule store and the manager that
// loads the stored rules. Used by rule_set_manager_test and replay_test.
#ifndef PANTHERD_ENGINE_RULE_SET_TEST_ENV_H_
#define PANTHERD_ENGINE_RULE_SET_TEST_ENV_H_

#include <functional>
#include <memory>
#include <utility>

#include "absl/time/time.h"
#include "engine/kv_store.h"
#include "engine/pool_rule_executor.h"
#include "engine/rule_set_manager.h"
#include "engine/rule_store.h"
#include "engine/worker_pool.h"
#include "gtest/gtest.h"
#include "store/store.h"
#include "tests/test_util.h"

namespace pantherd::engine {

class RuleSetFixture : public ::testing::Test {
 protected:
  // Opens the store under tmp_ ("data"; again after CloseRuleSet: a
  // restart) and builds the stack on it. The pool has one worker with a 2 s
  // call time limit; `tweak`, when set, changes its options first.
  void OpenRuleSet(const std::function<void(WorkerPoolOptions&)>& tweak = nullptr) {
    absl::StatusOr<std::unique_ptr<store::Store>> s = store::Store::Open(tmp_.Sub("data"), {});
    ASSERT_TRUE(s.ok()) << s.status();
    store_ = std::move(*s);
    kv_ = std::make_unique<StoreKvBackend>(store_.get());
    WorkerPoolOptions options;
    options.worker_binary = PANTHERD_WORKER_BINARY;
    options.workers = 1;
    options.kv = kv_.get();
    options.limits.call_time_limit = absl::Seconds(2);
    if (tweak) tweak(options);
    absl::StatusOr<std::unique_ptr<WorkerPool>> pool = WorkerPool::Create(std::move(options));
    ASSERT_TRUE(pool.ok()) << pool.status();
    pool_ = std::move(*pool);
    executor_ = std::make_unique<PoolRuleExecutor>(pool_.get());
    rules_ = std::make_unique<RuleStore>(store_.get());
    manager_ = std::make_unique<RuleSetManager>(rules_.get(), executor_.get());
    ASSERT_TRUE(manager_->LoadStored().ok());
  }

  // Tears the stack down in reverse order and closes the store.
  void CloseRuleSet() {
    manager_.reset();
    rules_.reset();
    executor_.reset();
    pool_.reset();
    kv_.reset();
    if (store_ != nullptr) {
      ASSERT_TRUE(store_->Close().ok());
    }
    store_.reset();
  }

  pantherd::testing::TempDir tmp_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<StoreKvBackend> kv_;
  std::unique_ptr<WorkerPool> pool_;
  std::unique_ptr<PoolRuleExecutor> executor_;
  std::unique_ptr<RuleStore> rules_;
  std::unique_ptr<RuleSetManager> manager_;
};

}  // namespace pantherd::engine

#endif  // PANTHERD_ENGINE_RULE_SET_TEST_ENV_H_
