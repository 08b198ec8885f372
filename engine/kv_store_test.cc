#include "engine/kv_store.h"

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "engine/kv_test_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "store/keys.h"
#include "tests/test_util.h"

namespace pantherd::engine {
namespace {

using internal::KvCall;
using internal::KvReply;
using ::testing::ElementsAre;
using ::testing::IsEmpty;

class KvStoreTest : public ::testing::Test {
 protected:
  void SetUp() override { Open(); }

  void Open(bool sync = true) {
    store::StoreOptions options;
    options.sync_writes = sync;
    absl::StatusOr<std::unique_ptr<store::Store>> s = store::Store::Open(dir_.Sub("data"), options);
    ASSERT_TRUE(s.ok()) << s.status();
    store_ = *std::move(s);
    kv_ = std::make_unique<StoreKvBackend>(store_.get(),
                                           [this] { return absl::FromUnixSeconds(now_.load()); });
  }
  void Reopen() {
    kv_.reset();
    ASSERT_TRUE(store_->Close().ok());
    store_.reset();
    Open();
  }

  KvReply Call(KvCall::Op op, const std::string& key, std::vector<std::string> values = {},
               int64_t increment = 0, int64_t expire = 0, const std::string& json = "") {
    KvCall call = MakeKvCall(op, key, values, increment, expire, json);
    call.set_call_id(77);  // the reply must echo it
    absl::StatusOr<KvReply> reply = kv_->Call(call);
    EXPECT_TRUE(reply.ok()) << reply.status();
    if (reply.ok()) {
      EXPECT_EQ(reply->call_id(), 77u);
    }
    return reply.ok() ? *reply : KvReply();
  }
  std::vector<std::string> Set(const std::string& key) {
    KvReply r = Call(KvCall::OP_GET_STRING_SET, key);
    return {r.values().begin(), r.values().end()};
  }
  int64_t Counter(const std::string& key) { return Call(KvCall::OP_GET_COUNTER, key).counter(); }
  bool Stored(const std::string& key) {
    return store_->Get(store::Family::kKv, store::Join(kCachingKvNamespace, key)).ok();
  }

  pantherd::testing::TempDir dir_;
  std::atomic<int64_t> now_{1'700'000'000};
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<StoreKvBackend> kv_;
};

TEST_F(KvStoreTest, StringSets) {
  EXPECT_THAT(Set("s"), IsEmpty());
  KvReply added = Call(KvCall::OP_ADD_TO_STRING_SET, "s", {"b", "a", "b"});
  EXPECT_THAT(added.values(), ElementsAre("a", "b"));
  EXPECT_THAT(Call(KvCall::OP_ADD_TO_STRING_SET, "s", {"c"}).values(), ElementsAre("a", "b", "c"));
  EXPECT_THAT(Call(KvCall::OP_REMOVE_FROM_STRING_SET, "s", {"a", "zz"}).values(),
              ElementsAre("b", "c"));
  EXPECT_THAT(Set("s"), ElementsAre("b", "c"));
  Call(KvCall::OP_PUT_STRING_SET, "s", {"x"});
  EXPECT_THAT(Set("s"), ElementsAre("x"));
  Call(KvCall::OP_RESET_STRING_SET, "s");
  EXPECT_THAT(Set("s"), IsEmpty());
  EXPECT_FALSE(Stored("s"));
}

TEST_F(KvStoreTest, PuttingAnEmptySetDeletesTheItem) {
  Call(KvCall::OP_PUT_STRING_SET, "s", {"x"});
  ASSERT_TRUE(Stored("s"));
  Call(KvCall::OP_PUT_STRING_SET, "s", {});
  EXPECT_FALSE(Stored("s"));
}

TEST_F(KvStoreTest, RemovingTheLastMemberDeletesTheItem) {
  Call(KvCall::OP_ADD_TO_STRING_SET, "s", {"x"});
  EXPECT_THAT(Call(KvCall::OP_REMOVE_FROM_STRING_SET, "s", {"x"}).values(), IsEmpty());
  EXPECT_FALSE(Stored("s"));
  // Removing from an absent set writes nothing.
  EXPECT_THAT(Call(KvCall::OP_REMOVE_FROM_STRING_SET, "t", {"x"}).values(), IsEmpty());
  EXPECT_FALSE(Stored("t"));
}

TEST_F(KvStoreTest, Counters) {
  EXPECT_EQ(Counter("c"), 0);
  EXPECT_EQ(Call(KvCall::OP_INCREMENT_COUNTER, "c", {}, 1).counter(), 1);
  EXPECT_EQ(Call(KvCall::OP_INCREMENT_COUNTER, "c", {}, 10).counter(), 11);
  EXPECT_EQ(Call(KvCall::OP_INCREMENT_COUNTER, "c", {}, -4).counter(), 7);
  EXPECT_EQ(Counter("c"), 7);
  Call(KvCall::OP_RESET_COUNTER, "c");
  EXPECT_EQ(Counter("c"), 0);
  EXPECT_FALSE(Stored("c"));
}

TEST_F(KvStoreTest, CounterOverflowIsOutOfRange) {
  Call(KvCall::OP_INCREMENT_COUNTER, "c", {}, INT64_MAX);
  KvCall call;
  call.set_op(KvCall::OP_INCREMENT_COUNTER);
  call.set_key("c");
  call.set_increment(1);
  EXPECT_TRUE(absl::IsOutOfRange(kv_->Call(call).status()));
  EXPECT_EQ(Counter("c"), INT64_MAX);
}

TEST_F(KvStoreTest, ColumnsOfOneKeyCoexistLikeDynamoDbItems) {
  Call(KvCall::OP_ADD_TO_STRING_SET, "k", {"a"});
  Call(KvCall::OP_INCREMENT_COUNTER, "k", {}, 3);
  EXPECT_THAT(Set("k"), ElementsAre("a"));
  EXPECT_EQ(Counter("k"), 3);
  // Put replaces the whole item; reset deletes it.
  Call(KvCall::OP_PUT_STRING_SET, "k", {"b"});
  EXPECT_EQ(Counter("k"), 0);
  Call(KvCall::OP_INCREMENT_COUNTER, "k", {}, 1);
  Call(KvCall::OP_RESET_STRING_SET, "k");
  EXPECT_EQ(Counter("k"), 0);
}

TEST_F(KvStoreTest, Dictionaries) {
  EXPECT_EQ(Call(KvCall::OP_GET_DICTIONARY, "d").json(), "{}");
  EXPECT_EQ(Call(KvCall::OP_PUT_DICTIONARY, "d", {}, 0, 0, R"({"a": [1, 2]})").json(),
            R"({"a": [1, 2]})");
  EXPECT_EQ(Call(KvCall::OP_GET_DICTIONARY, "d").json(), R"({"a": [1, 2]})");
  KvCall call;
  call.set_op(KvCall::OP_PUT_DICTIONARY);
  call.set_key("d");
  call.set_json("[1]");
  EXPECT_TRUE(absl::IsInvalidArgument(kv_->Call(call).status()));
  EXPECT_EQ(Call(KvCall::OP_GET_DICTIONARY, "d").json(), R"({"a": [1, 2]})");
}

TEST_F(KvStoreTest, ExpiryMakesItemsAbsentAndIsDeletedLazily) {
  const int64_t t0 = now_;
  Call(KvCall::OP_ADD_TO_STRING_SET, "s", {"a"}, 0, t0 + 60);
  Call(KvCall::OP_INCREMENT_COUNTER, "c", {}, 5, t0 + 60);
  Call(KvCall::OP_PUT_DICTIONARY, "d", {}, 0, t0 + 60, R"({"x":1})");
  now_ = t0 + 59;
  EXPECT_THAT(Set("s"), ElementsAre("a"));
  EXPECT_EQ(Counter("c"), 5);
  now_ = t0 + 60;  // expiry is inclusive
  EXPECT_THAT(Set("s"), IsEmpty());
  EXPECT_FALSE(Stored("s"));                                               // deleted by the read
  EXPECT_EQ(Call(KvCall::OP_INCREMENT_COUNTER, "c", {}, 1).counter(), 1);  // starts afresh
  EXPECT_EQ(Call(KvCall::OP_GET_DICTIONARY, "d").json(), "{}");
  EXPECT_FALSE(Stored("d"));
}

TEST_F(KvStoreTest, ZeroExpiryKeepsTheCurrentOne) {
  const int64_t t0 = now_;
  Call(KvCall::OP_ADD_TO_STRING_SET, "s", {"a"}, 0, t0 + 10);
  Call(KvCall::OP_ADD_TO_STRING_SET, "s", {"b"});  // no expiry given: keeps t0 + 10
  now_ = t0 + 10;
  EXPECT_THAT(Set("s"), IsEmpty());
}

TEST_F(KvStoreTest, SetKeyExpiration) {
  const int64_t t0 = now_;
  Call(KvCall::OP_INCREMENT_COUNTER, "c", {}, 2);
  Call(KvCall::OP_SET_KEY_EXPIRATION, "c", {}, 0, t0 + 5);
  Call(KvCall::OP_SET_KEY_EXPIRATION, "absent", {}, 0, t0 + 5);
  EXPECT_FALSE(Stored("absent"));
  now_ = t0 + 4;
  EXPECT_EQ(Counter("c"), 2);
  Call(KvCall::OP_SET_KEY_EXPIRATION, "c", {}, 0, t0 + 100);  // extend
  now_ = t0 + 50;
  EXPECT_EQ(Counter("c"), 2);
  now_ = t0 + 100;
  EXPECT_EQ(Counter("c"), 0);
}

TEST_F(KvStoreTest, PurgeExpired) {
  const int64_t t0 = now_;
  Call(KvCall::OP_INCREMENT_COUNTER, "a", {}, 1, t0 + 10);
  Call(KvCall::OP_INCREMENT_COUNTER, "b", {}, 1, t0 + 20);
  Call(KvCall::OP_INCREMENT_COUNTER, "c", {}, 1);
  now_ = t0 + 15;
  absl::StatusOr<int64_t> purged = kv_->PurgeExpired();
  ASSERT_TRUE(purged.ok()) << purged.status();
  EXPECT_EQ(*purged, 1);
  EXPECT_FALSE(Stored("a"));
  EXPECT_TRUE(Stored("b"));
  EXPECT_TRUE(Stored("c"));
}

TEST_F(KvStoreTest, SurvivesReopen) {
  const int64_t t0 = now_;
  Call(KvCall::OP_ADD_TO_STRING_SET, "s", {"a", "b"});
  Call(KvCall::OP_INCREMENT_COUNTER, "c", {}, 42, t0 + 100);
  Call(KvCall::OP_PUT_DICTIONARY, "d", {}, 0, 0, R"({"k":"v"})");
  Reopen();
  EXPECT_THAT(Set("s"), ElementsAre("a", "b"));
  EXPECT_EQ(Counter("c"), 42);
  EXPECT_EQ(Call(KvCall::OP_GET_DICTIONARY, "d").json(), R"({"k":"v"})");
  now_ = t0 + 100;  // the expiry survived too
  EXPECT_EQ(Counter("c"), 0);
}

TEST_F(KvStoreTest, KeysAreArbitraryBytes) {
  const std::string key("a\0b", 3);
  Call(KvCall::OP_INCREMENT_COUNTER, key, {}, 1);
  EXPECT_EQ(Counter(key), 1);
  EXPECT_EQ(Counter("a"), 0);
  EXPECT_TRUE(store_->Get(store::Family::kKv, std::string("caching\0a\0b", 11)).ok());
}

TEST_F(KvStoreTest, RejectsBadCalls) {
  KvCall call;
  call.set_op(KvCall::OP_GET_COUNTER);
  EXPECT_TRUE(absl::IsInvalidArgument(kv_->Call(call).status()));  // empty key
  call.set_key(std::string(kMaxKvKeyBytes + 1, 'k'));
  EXPECT_TRUE(absl::IsInvalidArgument(kv_->Call(call).status()));
  call.set_key("k");
  call.set_expire_epoch_seconds(-1);
  EXPECT_TRUE(absl::IsInvalidArgument(kv_->Call(call).status()));
  call.set_expire_epoch_seconds(0);
  call.set_op(KvCall::OP_UNSPECIFIED);
  EXPECT_TRUE(absl::IsInvalidArgument(kv_->Call(call).status()));
}

TEST_F(KvStoreTest, CorruptValuesAreDataLoss) {
  ASSERT_TRUE(store_->Put(store::Family::kKv, store::Join(kCachingKvNamespace, "bad"), "xyz").ok());
  KvCall call;
  call.set_op(KvCall::OP_GET_COUNTER);
  call.set_key("bad");
  EXPECT_TRUE(absl::IsDataLoss(kv_->Call(call).status()));
}

TEST_F(KvStoreTest, ConcurrentIncrementsAreNeverLost) {
  Reopen();
  kv_.reset();
  ASSERT_TRUE(store_->Close().ok());
  store_.reset();
  Open(/*sync=*/false);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([this] {
      for (int i = 0; i < 250; ++i) {
        KvCall call;
        call.set_op(KvCall::OP_INCREMENT_COUNTER);
        call.set_key("shared");
        call.set_increment(1);
        EXPECT_TRUE(kv_->Call(call).ok());
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(Counter("shared"), 1000);
}

}  // namespace
}  // namespace pantherd::engine
