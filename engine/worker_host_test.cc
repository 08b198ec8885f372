#include "engine/worker_host.h"

#include <sys/socket.h>
#include <unistd.h>

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "engine/ipc.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace pantherd::engine {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

absl::Time Soon() { return absl::Now() + absl::Seconds(5); }

TEST(WorkerFlagsTest, RoundTripThroughParseWorkerArgs) {
  WorkerLimits limits;
  limits.memory_bytes = 123456789;
  limits.call_time_limit = absl::Milliseconds(1500);
  limits.kill_grace = absl::Milliseconds(250);
  limits.unprivileged_uid = 1001;
  limits.unprivileged_gid = 1002;
  std::vector<std::string> args = {"worker", "--python-path=/x"};
  for (const std::string& f : WorkerFlags(limits, 4242)) args.push_back(f);
  args.push_back("last");
  std::vector<const char*> argv;
  for (const std::string& a : args) argv.push_back(a.c_str());
  absl::StatusOr<WorkerConfig> config = ParseWorkerArgs(static_cast<int>(argv.size()), argv.data());
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->channel_fd, kWorkerChannelFd);
  EXPECT_EQ(config->parent_pid, 4242);
  EXPECT_EQ(config->limits.memory_bytes, 123456789);
  EXPECT_EQ(config->limits.call_time_limit, absl::Milliseconds(1500));
  EXPECT_EQ(config->limits.kill_grace, absl::Milliseconds(250));
  EXPECT_EQ(config->limits.unprivileged_uid, 1001u);
  EXPECT_EQ(config->limits.unprivileged_gid, 1002u);
  EXPECT_THAT(config->args, ElementsAre("--python-path=/x", "last"));
}

TEST(WorkerFlagsTest, RejectsBadValues) {
  const char* bad_number[] = {"w", "--pantherd-memory-bytes=lots"};
  EXPECT_TRUE(absl::IsInvalidArgument(ParseWorkerArgs(2, bad_number).status()));
  const char* negative[] = {"w", "--pantherd-call-time-limit-ms=-5"};
  EXPECT_TRUE(absl::IsInvalidArgument(ParseWorkerArgs(2, negative).status()));
  const char* stdio_fd[] = {"w", "--pantherd-channel-fd=1"};
  EXPECT_TRUE(absl::IsInvalidArgument(ParseWorkerArgs(2, stdio_fd).status()));
}

TEST(HardenWorkerProcessTest, RejectsAStdioChannel) {
  WorkerConfig config;
  config.channel_fd = 2;
  EXPECT_TRUE(absl::IsInvalidArgument(HardenWorkerProcess(config)));
}

// A handler that echoes what it got and, for rule "kv", makes a KV call.
class EchoHandler : public WorkerHandler {
 public:
  explicit EchoHandler(RemoteKv* kv) : kv_(kv) {}
  absl::StatusOr<internal::LoadResult> Load(const internal::LoadRuleSet& request) override {
    internal::LoadResult result;
    result.set_version(request.version());
    result.set_rule_count(request.files_size());
    return result;
  }
  absl::StatusOr<v1::TestReport> RunTests(const internal::RunTestsTask& task) override {
    if (task.rule_ids_size() == 0) return absl::FailedPreconditionError("name a rule");
    v1::TestReport report;
    v1::RuleTestResult* rule = report.add_rules();
    rule->set_rule_id(task.rule_ids(0));
    if (task.rule_ids(0) == "kv") {
      internal::KvCall call;
      call.set_op(internal::KvCall::OP_INCREMENT_COUNTER);
      call.set_key("k");
      call.set_increment(5);
      absl::StatusOr<internal::KvReply> reply = kv_->Call(call);
      rule->set_file(reply.ok() ? absl::StrCat("counter=", reply->counter())
                                : std::string(reply.status().message()));
    }
    return report;
  }

 private:
  RemoteKv* kv_;
};

// Runs RunWorkerLoop on a thread over a socketpair; the test plays pantherd.
class WorkerLoopTest : public ::testing::Test {
 protected:
  WorkerLoopTest() {
    EXPECT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds_), 0);
    kv_ = std::make_unique<RemoteKv>(fds_[1]);
    handler_ = std::make_unique<EchoHandler>(kv_.get());
    loop_ = std::thread([this] { exit_code_ = RunWorkerLoop(fds_[1], *handler_, kv_.get()); });
  }
  ~WorkerLoopTest() override {
    if (fds_[0] >= 0) close(fds_[0]);
    if (loop_.joinable()) loop_.join();
    close(fds_[1]);
  }
  int Finish() {
    close(fds_[0]);
    fds_[0] = -1;
    loop_.join();
    return exit_code_;
  }
  int parent() const { return fds_[0]; }

  int fds_[2] = {-1, -1};
  std::unique_ptr<RemoteKv> kv_;
  std::unique_ptr<EchoHandler> handler_;
  std::thread loop_;
  int exit_code_ = -1;
};

TEST_F(WorkerLoopTest, AnswersInOrderAndExitsCleanlyOnEof) {
  internal::WorkerRequest load;
  load.set_id(1);
  load.mutable_load()->set_version(3);
  load.mutable_load()->add_files()->set_path("a.py");
  ASSERT_TRUE(WriteMessage(parent(), load).ok());
  internal::WorkerRequest tests;
  tests.set_id(2);
  tests.mutable_run_tests()->add_rule_ids("r1");
  ASSERT_TRUE(WriteMessage(parent(), tests).ok());

  internal::WorkerResponse response;
  ASSERT_TRUE(ReadMessage(parent(), &response, Soon()).ok());
  EXPECT_EQ(response.id(), 1u);
  ASSERT_TRUE(response.has_loaded());
  EXPECT_EQ(response.loaded().version(), 3u);
  EXPECT_EQ(response.loaded().rule_count(), 1);
  ASSERT_TRUE(ReadMessage(parent(), &response, Soon()).ok());
  EXPECT_EQ(response.id(), 2u);
  ASSERT_TRUE(response.has_test_report());
  EXPECT_EQ(response.test_report().rules(0).rule_id(), "r1");
  EXPECT_EQ(Finish(), kWorkerExitOk);
}

TEST_F(WorkerLoopTest, HandlerErrorsBecomeErrorResponses) {
  internal::WorkerRequest tests;
  tests.set_id(5);
  tests.mutable_run_tests();
  ASSERT_TRUE(WriteMessage(parent(), tests).ok());
  internal::WorkerResponse response;
  ASSERT_TRUE(ReadMessage(parent(), &response, Soon()).ok());
  EXPECT_EQ(response.id(), 5u);
  EXPECT_THAT(response.error(), HasSubstr("name a rule"));
  EXPECT_EQ(Finish(), kWorkerExitOk);
}

TEST_F(WorkerLoopTest, KvCallsGoUpTheChannelAndBlockForTheReply) {
  internal::WorkerRequest tests;
  tests.set_id(8);
  tests.mutable_run_tests()->add_rule_ids("kv");
  ASSERT_TRUE(WriteMessage(parent(), tests).ok());

  internal::WorkerResponse call;
  ASSERT_TRUE(ReadMessage(parent(), &call, Soon()).ok());
  EXPECT_EQ(call.id(), 8u);
  ASSERT_TRUE(call.has_kv_call());
  EXPECT_EQ(call.kv_call().op(), internal::KvCall::OP_INCREMENT_COUNTER);
  EXPECT_EQ(call.kv_call().key(), "k");
  EXPECT_EQ(call.kv_call().increment(), 5);
  internal::WorkerRequest reply;
  reply.set_id(8);
  reply.mutable_kv_reply()->set_call_id(call.kv_call().call_id());
  reply.mutable_kv_reply()->set_counter(17);
  ASSERT_TRUE(WriteMessage(parent(), reply).ok());

  internal::WorkerResponse response;
  ASSERT_TRUE(ReadMessage(parent(), &response, Soon()).ok());
  ASSERT_TRUE(response.has_test_report());
  EXPECT_EQ(response.test_report().rules(0).file(), "counter=17");
  EXPECT_EQ(Finish(), kWorkerExitOk);
}

TEST_F(WorkerLoopTest, KvReplyErrorsAreRaisedInTheRule) {
  internal::WorkerRequest tests;
  tests.set_id(8);
  tests.mutable_run_tests()->add_rule_ids("kv");
  ASSERT_TRUE(WriteMessage(parent(), tests).ok());
  internal::WorkerResponse call;
  ASSERT_TRUE(ReadMessage(parent(), &call, Soon()).ok());
  internal::WorkerRequest reply;
  reply.set_id(8);
  reply.mutable_kv_reply()->set_call_id(call.kv_call().call_id());
  reply.mutable_kv_reply()->set_error("disk on fire");
  ASSERT_TRUE(WriteMessage(parent(), reply).ok());
  internal::WorkerResponse response;
  ASSERT_TRUE(ReadMessage(parent(), &response, Soon()).ok());
  EXPECT_EQ(response.test_report().rules(0).file(), "disk on fire");
  EXPECT_EQ(Finish(), kWorkerExitOk);
}

TEST_F(WorkerLoopTest, AMismatchedKvReplyBreaksTheChannel) {
  internal::WorkerRequest tests;
  tests.set_id(8);
  tests.mutable_run_tests()->add_rule_ids("kv");
  ASSERT_TRUE(WriteMessage(parent(), tests).ok());
  internal::WorkerResponse call;
  ASSERT_TRUE(ReadMessage(parent(), &call, Soon()).ok());
  internal::WorkerRequest reply;
  reply.set_id(8);
  reply.mutable_kv_reply()->set_call_id(call.kv_call().call_id() + 100);
  ASSERT_TRUE(WriteMessage(parent(), reply).ok());
  loop_.join();
  EXPECT_EQ(exit_code_, kWorkerExitChannel);
}

TEST_F(WorkerLoopTest, AnUnexpectedKvReplyIsAProtocolError) {
  internal::WorkerRequest reply;
  reply.set_id(1);
  reply.mutable_kv_reply()->set_call_id(1);
  ASSERT_TRUE(WriteMessage(parent(), reply).ok());
  loop_.join();
  EXPECT_EQ(exit_code_, kWorkerExitChannel);
}

TEST(RemoteKvTest, RefusesCallsOutsideARequest) {
  int fds[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
  RemoteKv kv(fds[1]);
  internal::KvCall call;
  call.set_key("k");
  EXPECT_TRUE(absl::IsFailedPrecondition(kv.Call(call).status()));
  close(fds[0]);
  close(fds[1]);
}

}  // namespace
}  // namespace pantherd::engine
