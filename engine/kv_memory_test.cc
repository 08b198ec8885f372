// File: engine/kv_memory_test.cc

#include "engine/kv_memory.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <vector>

#include "absl/time/time.h"
#include "engine/kv_test_util.h"

namespace pantherd::engine {
namespace {

using internal::KvCall;
using internal::KvReply;
using ::testing::ElementsAre;
using ::testing::IsEmpty;

class KvMemoryTest : public ::testing::Test {
 protected:
  KvMemoryTest() : kv_([this] { return now_; }) {}

  KvReply Do(KvCall::Op op, const std::string& key, std::vector<std::string> values = {},
             int64_t increment = 0, int64_t expire = 0, const std::string& json = "") {
    KvCall call = MakeKvCall(op, key, values, increment, expire, json);
    call.set_call_id(++id_);
    absl::StatusOr<KvReply> reply = kv_.Call(call);
    EXPECT_TRUE(reply.ok()) << reply.status();
    if (!reply.ok()) return KvReply();
    EXPECT_EQ(reply->call_id(), id_);
    return *reply;
  }
  std::vector<std::string> Members(const std::string& key) {
    KvReply r = Do(KvCall::OP_GET_STRING_SET, key);
    return {r.values().begin(), r.values().end()};
  }
  int64_t Seconds() const { return absl::ToUnixSeconds(now_); }

  absl::Time now_ = absl::FromUnixSeconds(1700000000);
  KvMemory kv_;
  uint64_t id_ = 0;
};

TEST_F(KvMemoryTest, StringSets) {
  EXPECT_THAT(Members("s"), IsEmpty());
  Do(KvCall::OP_PUT_STRING_SET, "s", {"b", "a", "b"});
  EXPECT_THAT(Members("s"), ElementsAre("a", "b"));
  KvReply added = Do(KvCall::OP_ADD_TO_STRING_SET, "s", {"c"});
  EXPECT_THAT(added.values(), ElementsAre("a", "b", "c"));
  KvReply removed = Do(KvCall::OP_REMOVE_FROM_STRING_SET, "s", {"a", "zz"});
  EXPECT_THAT(removed.values(), ElementsAre("b", "c"));
  Do(KvCall::OP_RESET_STRING_SET, "s");
  EXPECT_THAT(Members("s"), IsEmpty());
  EXPECT_EQ(kv_.size(), 0u);
  // put with no values removes the entry.
  Do(KvCall::OP_PUT_STRING_SET, "s", {"x"});
  Do(KvCall::OP_PUT_STRING_SET, "s", {});
  EXPECT_EQ(kv_.size(), 0u);
}

TEST_F(KvMemoryTest, Counters) {
  EXPECT_EQ(Do(KvCall::OP_GET_COUNTER, "c").counter(), 0);
  EXPECT_EQ(Do(KvCall::OP_INCREMENT_COUNTER, "c", {}, 1).counter(), 1);
  EXPECT_EQ(Do(KvCall::OP_INCREMENT_COUNTER, "c", {}, 5).counter(), 6);
  EXPECT_EQ(Do(KvCall::OP_INCREMENT_COUNTER, "c", {}, -2).counter(), 4);
  EXPECT_EQ(Do(KvCall::OP_GET_COUNTER, "c").counter(), 4);
  Do(KvCall::OP_RESET_COUNTER, "c");
  EXPECT_EQ(Do(KvCall::OP_GET_COUNTER, "c").counter(), 0);
}

TEST_F(KvMemoryTest, Dictionaries) {
  EXPECT_EQ(Do(KvCall::OP_GET_DICTIONARY, "d").json(), "{}");
  Do(KvCall::OP_PUT_DICTIONARY, "d", {}, 0, 0, R"({"a": 1})");
  EXPECT_EQ(Do(KvCall::OP_GET_DICTIONARY, "d").json(), R"({"a": 1})");
}

TEST_F(KvMemoryTest, ExpiryAppliesToTheWholeEntry) {
  Do(KvCall::OP_INCREMENT_COUNTER, "k", {}, 3, Seconds() + 60);
  Do(KvCall::OP_ADD_TO_STRING_SET, "k", {"x"});  // expiry 0: kept
  now_ += absl::Seconds(59);
  EXPECT_EQ(Do(KvCall::OP_GET_COUNTER, "k").counter(), 3);
  EXPECT_THAT(Members("k"), ElementsAre("x"));
  now_ += absl::Seconds(1);  // expires at == now: expired
  EXPECT_EQ(Do(KvCall::OP_GET_COUNTER, "k").counter(), 0);
  EXPECT_THAT(Members("k"), IsEmpty());
  // A write to an expired entry starts afresh.
  Do(KvCall::OP_INCREMENT_COUNTER, "k", {}, 3, Seconds() + 60);
  now_ += absl::Seconds(61);
  EXPECT_EQ(Do(KvCall::OP_INCREMENT_COUNTER, "k", {}, 1).counter(), 1);
  // set_key_expiration extends an entry, and does nothing without one.
  Do(KvCall::OP_SET_KEY_EXPIRATION, "absent", {}, 0, Seconds() + 10);
  EXPECT_EQ(kv_.size(), 1u);
  Do(KvCall::OP_SET_KEY_EXPIRATION, "k", {}, 0, Seconds() + 10);
  now_ += absl::Seconds(9);
  EXPECT_EQ(Do(KvCall::OP_GET_COUNTER, "k").counter(), 1);
  now_ += absl::Seconds(1);
  EXPECT_EQ(Do(KvCall::OP_GET_COUNTER, "k").counter(), 0);
}

TEST_F(KvMemoryTest, PutReplacesTheWholeEntryAsDynamoDbPutItem) {
  Do(KvCall::OP_INCREMENT_COUNTER, "k", {}, 3);
  Do(KvCall::OP_PUT_STRING_SET, "k", {"a"});
  EXPECT_EQ(Do(KvCall::OP_GET_COUNTER, "k").counter(), 0);
  EXPECT_THAT(Members("k"), ElementsAre("a"));
}

TEST_F(KvMemoryTest, BadCallsAreInvalidArgument) {
  KvCall call;
  call.set_op(KvCall::OP_GET_COUNTER);
  EXPECT_EQ(kv_.Call(call).status().code(), absl::StatusCode::kInvalidArgument);  // no key
  call.set_key("k");
  call.set_op(KvCall::OP_UNSPECIFIED);
  EXPECT_EQ(kv_.Call(call).status().code(), absl::StatusCode::kInvalidArgument);
  call.set_op(KvCall::OP_PUT_DICTIONARY);
  EXPECT_EQ(kv_.Call(call).status().code(), absl::StatusCode::kInvalidArgument);
  call.set_json("[1]");
  EXPECT_EQ(kv_.Call(call).status().code(), absl::StatusCode::kInvalidArgument);
  call.set_op(KvCall::OP_GET_COUNTER);
  call.set_key(std::string(2049, 'k'));
  EXPECT_EQ(kv_.Call(call).status().code(), absl::StatusCode::kInvalidArgument);
  call.set_key("k");
  call.set_op(KvCall::OP_INCREMENT_COUNTER);
  call.set_increment(INT64_MAX);
  EXPECT_TRUE(kv_.Call(call).ok());
  call.set_increment(1);
  EXPECT_EQ(kv_.Call(call).status().code(), absl::StatusCode::kOutOfRange);
  call.set_expire_epoch_seconds(-1);
  EXPECT_EQ(kv_.Call(call).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(KvMemoryTest, ResetsDeleteTheWholeItemAsStoreKvBackend) {
  Do(KvCall::OP_INCREMENT_COUNTER, "k", {}, 3);
  Do(KvCall::OP_ADD_TO_STRING_SET, "k", {"a"});
  Do(KvCall::OP_RESET_STRING_SET, "k");
  EXPECT_EQ(Do(KvCall::OP_GET_COUNTER, "k").counter(), 0);
  Do(KvCall::OP_ADD_TO_STRING_SET, "k", {"a"});
  Do(KvCall::OP_RESET_COUNTER, "k");
  EXPECT_THAT(Members("k"), IsEmpty());
  EXPECT_EQ(kv_.size(), 0u);
}

TEST(KvMemoryThreadsTest, ConcurrentIncrementsAreAtomic) {
  KvMemory kv;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&kv] {
      KvCall call;
      call.set_op(KvCall::OP_INCREMENT_COUNTER);
      call.set_key("c");
      call.set_increment(1);
      for (int i = 0; i < 1000; ++i) ASSERT_TRUE(kv.Call(call).ok());
    });
  }
  for (std::thread& t : threads) t.join();
  KvCall get;
  get.set_op(KvCall::OP_GET_COUNTER);
  get.set_key("c");
  EXPECT_EQ(kv.Call(get)->counter(), 4000);
  EXPECT_EQ(kv.calls(), 4001);
}

}  // namespace
}  // namespace pantherd::engine
