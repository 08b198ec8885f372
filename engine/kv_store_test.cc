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

TEST_F(KvStoreTest, ExpiryMakesItemsAbsentAndReadsNeverDeleteThem) {
  const int64_t t0 = now_;
  Call(KvCall::OP_ADD_TO_STRING_SET, "s", {"a"}, 0, t0 + 60);
  Call(KvCall::OP_INCREMENT_COUNTER, "c", {}, 5, t0 + 60);
  Call(KvCall::OP_PUT_DICTIONARY, "d", {}, 0, t0 + 60, R"({"x":1})");
  now_ = t0 + 59;
  EXPECT_THAT(Set("s"), ElementsAre("a"));
  EXPECT_EQ(Counter("c"), 5);
  now_ = t0 + 60;  // expiry is inclusive
  EXPECT_THAT(Set("s"), IsEmpty());
  EXPECT_TRUE(Stored("s"));  // a read is a read: the purge deletes it
  EXPECT_EQ(Call(KvCall::OP_INCREMENT_COUNTER, "c", {}, 1).counter(), 1);  // starts afresh
  EXPECT_EQ(Call(KvCall::OP_GET_DICTIONARY, "d").json(), "{}");
  EXPECT_TRUE(Stored("d"));
  now_ = t0 - 1;  // an older event still sees the items (event-time state)
  EXPECT_THAT(Set("s"), ElementsAre("a"));
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
  absl::StatusOr<int64_t> purged = kv_->PurgeExpired(t0 + 15);
  ASSERT_TRUE(purged.ok()) << purged.status();
  EXPECT_EQ(*purged, 1);
  EXPECT_FALSE(Stored("a"));
  EXPECT_TRUE(Stored("b"));
  EXPECT_TRUE(Stored("c"));
}

// A held write in transaction `txn`, made at time `now` by the rules of the
// event tagged `tag`.
KvCall Held(KvCall call, int64_t now, uint32_t tag = 0) {
  call.set_call_id(0);
  call.set_now_epoch_seconds(now);
  call.set_event_tag(tag);
  return call;
}

KvCall Log(uint64_t txn, std::vector<KvCall> writes) {
  KvCall log;
  log.set_op(KvCall::OP_APPLY_WRITES);
  log.set_txn(txn);
  for (KvCall& w : writes) *log.add_writes() = std::move(w);
  return log;
}

TEST_F(KvStoreTest, HeldWritesReachTheStoreOnlyInTheCommitAndFetchesSeeThem) {
  const int64_t t = now_;
  Call(KvCall::OP_INCREMENT_COUNTER, "c", {}, 1);
  const uint64_t txn = kv_->BeginTxn();
  ASSERT_TRUE(kv_->Call(Log(txn, {Held(MakeKvCall(KvCall::OP_INCREMENT_COUNTER, "c", {}, 5), t),
                                  Held(MakeKvCall(KvCall::OP_ADD_TO_STRING_SET, "s", {"x"}), t)}))
                  .ok());
  EXPECT_EQ(kv_->pending_writes(), 2u);
  EXPECT_EQ(Counter("c"), 1);  // the store itself has not changed
  EXPECT_FALSE(Stored("s"));
  // Another worker's fetch sees the held writes.
  absl::StatusOr<KvReply> fetched = kv_->Call(MakeKvCall(KvCall::OP_FETCH, "c"));
  ASSERT_TRUE(fetched.ok()) << fetched.status();
  ASSERT_TRUE(fetched->present());
  absl::StatusOr<KvItem> item = DecodeKvItem("c", fetched->item());
  ASSERT_TRUE(item.ok());
  EXPECT_EQ(item->counter, 6);
  std::vector<std::pair<std::string, std::string>> snapshot;
  ASSERT_TRUE(kv_->Snapshot(100, &snapshot).ok());
  EXPECT_EQ(snapshot.size(), 2u);

  store::WriteBatch batch;
  std::vector<std::string> forget;
  ASSERT_TRUE(kv_->StageTxn(txn, {}, batch, &forget).ok());
  EXPECT_EQ(batch.Count(), 2u);
  ASSERT_TRUE(store_->Write(std::move(batch)).ok());
  kv_->EndTxn(txn, /*committed=*/true, &forget);
  EXPECT_THAT(forget, IsEmpty());
  EXPECT_EQ(kv_->pending_writes(), 0u);
  EXPECT_EQ(Counter("c"), 6);  // applied once, not twice
  EXPECT_THAT(Set("s"), ElementsAre("x"));
  EXPECT_EQ(kv_->committed_high_water(), 0);
  kv_->AdvanceHighWater(t);
  kv_->AdvanceHighWater(t - 5);
  EXPECT_EQ(kv_->committed_high_water(), t);
}

TEST_F(KvStoreTest, AbortedAndDroppedWritesNeverLand) {
  const int64_t t = now_;
  const uint64_t aborted = kv_->BeginTxn();
  ASSERT_TRUE(
      kv_->Call(Log(aborted, {Held(MakeKvCall(KvCall::OP_INCREMENT_COUNTER, "a", {}, 1), t)}))
          .ok());
  std::vector<std::string> forget;
  kv_->AbortTxn(aborted, &forget);
  EXPECT_THAT(forget, ElementsAre("a"));
  EXPECT_FALSE(Stored("a"));
  // A transaction that ended takes no more writes.
  EXPECT_TRUE(absl::IsInvalidArgument(
      kv_->Call(Log(aborted, {Held(MakeKvCall(KvCall::OP_INCREMENT_COUNTER, "a", {}, 1), t)}))
          .status()));

  // The writes of an event found to be a duplicate at commit are left out.
  const uint64_t txn = kv_->BeginTxn();
  ASSERT_TRUE(
      kv_->Call(Log(txn, {Held(MakeKvCall(KvCall::OP_INCREMENT_COUNTER, "n", {}, 1), t, 1),
                          Held(MakeKvCall(KvCall::OP_INCREMENT_COUNTER, "n", {}, 10), t, 2),
                          Held(MakeKvCall(KvCall::OP_INCREMENT_COUNTER, "m", {}, 1), t, 2)}))
          .ok());
  store::WriteBatch batch;
  forget.clear();
  ASSERT_TRUE(kv_->StageTxn(txn, {2}, batch, &forget).ok());
  ASSERT_TRUE(store_->Write(std::move(batch)).ok());
  kv_->EndTxn(txn, true, &forget);
  EXPECT_THAT(forget, ::testing::UnorderedElementsAre("n", "m"));
  EXPECT_EQ(Counter("n"), 1);
  EXPECT_FALSE(Stored("m"));

  // A commit whose store write failed forgets its keys too.
  const uint64_t failed = kv_->BeginTxn();
  ASSERT_TRUE(
      kv_->Call(Log(failed, {Held(MakeKvCall(KvCall::OP_INCREMENT_COUNTER, "f", {}, 1), t)})).ok());
  store::WriteBatch unused;
  forget.clear();
  ASSERT_TRUE(kv_->StageTxn(failed, {}, unused, &forget).ok());
  kv_->EndTxn(failed, /*committed=*/false, &forget);
  EXPECT_THAT(forget, ElementsAre("f"));
  EXPECT_FALSE(Stored("f"));
  EXPECT_EQ(kv_->pending_writes(), 0u);
}

TEST_F(KvStoreTest, ReadingExpiredItemsNeverWritesOnAnyOperation) {
  const int64_t t0 = now_;
  const std::vector<KvCall::Op> reads = {KvCall::OP_GET_STRING_SET, KvCall::OP_GET_COUNTER,
                                         KvCall::OP_GET_DICTIONARY};
  for (KvCall::Op op : reads) {
    KvItem stale;
    stale.expiry = t0;
    stale.counter = 3;
    KvItemState state = stale;
    KvCall call = MakeKvCall(op, "k");
    absl::StatusOr<KvApplied> applied = ApplyKvCall(call, t0 + 1, &state);
    ASSERT_TRUE(applied.ok());
    EXPECT_EQ(applied->write, KvApplied::Write::kNone) << call.ShortDebugString();
    EXPECT_TRUE(state.has_value());
  }
  // Every write on an expired item starts from an absent one.
  struct Case {
    KvCall call;
    KvApplied::Write write;
  };
  const std::vector<Case> writes = {
      {MakeKvCall(KvCall::OP_PUT_STRING_SET, "k", {"a"}), KvApplied::Write::kPut},
      {MakeKvCall(KvCall::OP_ADD_TO_STRING_SET, "k", {"a"}), KvApplied::Write::kPut},
      {MakeKvCall(KvCall::OP_REMOVE_FROM_STRING_SET, "k", {"a"}), KvApplied::Write::kNone},
      {MakeKvCall(KvCall::OP_RESET_STRING_SET, "k"), KvApplied::Write::kDelete},
      {MakeKvCall(KvCall::OP_INCREMENT_COUNTER, "k", {}, 2), KvApplied::Write::kPut},
      {MakeKvCall(KvCall::OP_RESET_COUNTER, "k"), KvApplied::Write::kDelete},
      {MakeKvCall(KvCall::OP_SET_KEY_EXPIRATION, "k", {}, 0, t0 + 100), KvApplied::Write::kNone},
      {MakeKvCall(KvCall::OP_PUT_DICTIONARY, "k", {}, 0, 0, "{}"), KvApplied::Write::kPut},
  };
  for (const Case& c : writes) {
    KvItem stale;
    stale.expiry = t0;
    stale.counter = 3;
    stale.members = {"old"};
    KvItemState state = stale;
    absl::StatusOr<KvApplied> applied = ApplyKvCall(c.call, t0 + 1, &state);
    ASSERT_TRUE(applied.ok()) << c.call.ShortDebugString();
    EXPECT_EQ(applied->write, c.write) << c.call.ShortDebugString();
    if (applied->write == KvApplied::Write::kPut) {
      ASSERT_TRUE(state.has_value());
      EXPECT_EQ(state->counter, c.call.op() == KvCall::OP_INCREMENT_COUNTER ? 2 : 0);
      EXPECT_EQ(state->members.count("old"), 0u);
    }
  }
}

TEST_F(KvStoreTest, PurgeSkipsItemsAnOpenTransactionTouches) {
  const int64_t t0 = now_;
  Call(KvCall::OP_INCREMENT_COUNTER, "a", {}, 1, t0 + 10);
  Call(KvCall::OP_INCREMENT_COUNTER, "b", {}, 1, t0 + 10);
  const uint64_t txn = kv_->BeginTxn();
  ASSERT_TRUE(
      kv_->Call(Log(txn, {Held(MakeKvCall(KvCall::OP_INCREMENT_COUNTER, "a", {}, 1), t0 + 5)}))
          .ok());
  absl::StatusOr<int64_t> purged = kv_->PurgeExpired(t0 + 20);
  ASSERT_TRUE(purged.ok()) << purged.status();
  EXPECT_EQ(*purged, 1);
  EXPECT_TRUE(Stored("a"));
  EXPECT_FALSE(Stored("b"));
  std::vector<std::string> forget;
  kv_->AbortTxn(txn, &forget);
}

TEST_F(KvStoreTest, TheHighWaterIsStoredWithTheBatchAndSurvivesReopen) {
  const int64_t t = now_;
  store::WriteBatch batch;
  kv_->StageHighWater(t, batch);
  EXPECT_EQ(batch.Count(), 1u);
  ASSERT_TRUE(store_->Write(std::move(batch)).ok());
  kv_->AdvanceHighWater(t);
  store::WriteBatch lower;
  kv_->StageHighWater(t - 10, lower);  // does not lower it
  EXPECT_EQ(lower.Count(), 0u);
  Reopen();
  EXPECT_EQ(kv_->committed_high_water(), t);
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
