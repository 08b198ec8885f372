#include <string>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/services.h"

namespace pantherd::server {
namespace {

using ::testing::HasSubstr;

// The components only need to be non-null for the check: it must not read
// them. Distinct addresses stand in for each.
template <typename T>
T* Fake(int n) {
  static char storage[32];
  return reinterpret_cast<T*>(&storage[n]);
}

void Wire(ServiceEnv& env) {
  env.store = Fake<store::Store>(0);
  env.executor = Fake<Executor>(1);
  env.evaluation = Fake<Executor>(2);
  env.rule_store = Fake<engine::RuleStore>(3);
  env.rules = Fake<engine::RuleSetManager>(4);
  env.alerts = Fake<engine::AlertEngine>(5);
  env.ingest = Fake<engine::IngestPipeline>(6);
  env.hub = Fake<AlertHub>(7);
  env.sources = Fake<SourceManager>(8);
  env.auth = Fake<Authenticator>(9);
  env.audit = Fake<AuditLog>(10);
  env.delayed = Fake<DelayedRunner>(11);
  env.metrics = Fake<engine::EngineMetrics>(12);
  env.pool = Fake<engine::WorkerPool>(13);
  env.deliveries = Fake<DeliveryManager>(14);
  env.replays = Fake<Executor>(15);
}

TEST(ServiceEnvTest, CompleteWiringPasses) {
  ServiceEnv env;
  Wire(env);
  EXPECT_TRUE(env.CheckWired().ok());
}

TEST(ServiceEnvTest, EachMissingComponentIsNamed) {
  ServiceEnv env;
  Wire(env);
  env.evaluation = nullptr;
  absl::Status s = env.CheckWired();
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(s.message()), HasSubstr("evaluation is not set"));

  Wire(env);
  env.sources = nullptr;
  EXPECT_THAT(std::string(env.CheckWired().message()), HasSubstr("sources is not set"));

  Wire(env);
  env.deliveries = nullptr;
  EXPECT_THAT(std::string(env.CheckWired().message()), HasSubstr("deliveries is not set"));

  Wire(env);
  env.replays = nullptr;
  EXPECT_THAT(std::string(env.CheckWired().message()), HasSubstr("replays is not set"));

  Wire(env);
  env.now = nullptr;
  EXPECT_THAT(std::string(env.CheckWired().message()), HasSubstr("now is not set"));
}

TEST(ServiceEnvTest, ListenAddressIsSetOnceKnown) {
  ServiceEnv env;
  EXPECT_EQ(env.listen_address(), "");
  env.set_listen_address("127.0.0.1:5");
  EXPECT_EQ(env.listen_address(), "127.0.0.1:5");
}

}  // namespace
}  // namespace pantherd::server
