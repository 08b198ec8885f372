#include "engine/kv_cache.h"

#include <memory>
#include <random>
#include <string>
#include <vector>

#include "engine/kv_store.h"
#include "engine/kv_test_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/test_util.h"

namespace pantherd::engine {
namespace {

using internal::KvCall;
using internal::KvReply;
using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::UnorderedElementsAre;

// A KvBackend in front of another that counts what reaches it.
class CountingKv : public KvBackend {
 public:
  explicit CountingKv(KvBackend* inner) : inner_(inner) {}
  absl::StatusOr<KvReply> Call(const KvCall& call) override {
    ++calls_[call.op()];
    return inner_->Call(call);
  }
  int calls(KvCall::Op op) const {
    auto it = calls_.find(op);
    return it == calls_.end() ? 0 : it->second;
  }

 private:
  KvBackend* const inner_;
  std::map<KvCall::Op, int> calls_;
};

class KvCacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
    reference_ = OpenStore("reference");
    served_ = OpenStore("served");
    reference_kv_ = std::make_unique<StoreKvBackend>(reference_.get(), Clock());
    served_kv_ = std::make_unique<StoreKvBackend>(served_.get(), Clock());
  }

  std::unique_ptr<store::Store> OpenStore(const std::string& name) {
    absl::StatusOr<std::unique_ptr<store::Store>> s = store::Store::Open(dir_.Sub(name), {});
    EXPECT_TRUE(s.ok()) << s.status();
    return s.ok() ? *std::move(s) : nullptr;
  }
  std::function<absl::Time()> Clock() {
    return [this] { return absl::FromUnixSeconds(now_); };
  }

  // What pantherd does with a request's final response: replays the writes.
  void Replay(KvCache& cache, KvBackend& into, KvChangeLog* log = nullptr, uint64_t writer = 0) {
    for (const KvCall& write : cache.TakeWrites()) {
      EXPECT_NE(write.now_epoch_seconds(), 0);
      absl::StatusOr<KvReply> done = into.Call(write);
      EXPECT_TRUE(done.ok()) << done.status();
      if (log != nullptr) log->Record(writer, write.key());
    }
  }

  static KvCall Make(KvCall::Op op, const std::string& key, std::vector<std::string> values = {},
                     int64_t increment = 0, int64_t expire = 0, const std::string& json = "") {
    return MakeKvCall(op, key, values, increment, expire, json);
  }

  static std::string Describe(const absl::StatusOr<KvReply>& r) {
    if (!r.ok()) return r.status().ToString();
    return r->ShortDebugString();
  }

  testing::TempDir dir_;
  int64_t now_ = 1700000000;
  std::unique_ptr<store::Store> reference_;
  std::unique_ptr<store::Store> served_;
  std::unique_ptr<StoreKvBackend> reference_kv_;
  std::unique_ptr<StoreKvBackend> served_kv_;
};

// Random operations of every kind, on a few keys, with expiries falling due
// as the clock moves: the cache answers exactly what the store answers, and
// after its writes are replayed the served store holds exactly the
// reference's items.
TEST_F(KvCacheTest, AnswersAndStoresExactlyAsTheStore) {
  CountingKv remote(served_kv_.get());
  KvCache cache(&remote, Clock());
  std::mt19937 rng(7);
  auto pick = [&](int n) { return static_cast<int>(rng() % n); };
  const std::vector<std::string> keys = {"a", "b", "c", "d", "e"};
  const std::vector<std::string> members = {"x", "y", "z"};
  internal::KvSync none;
  cache.BeginRequest(none);
  int errors = 0;
  for (int i = 0; i < 5000; ++i) {
    if (pick(10) == 0) now_ += pick(4);
    const std::string& key = keys[pick(keys.size())];
    std::vector<std::string> values;
    for (int v = pick(3); v > 0; --v) values.push_back(members[pick(members.size())]);
    const int64_t expire = pick(3) == 0 ? now_ + pick(5) : 0;
    KvCall call;
    switch (pick(12)) {
      case 0:
        call = Make(KvCall::OP_GET_STRING_SET, key);
        break;
      case 1:
        call = Make(KvCall::OP_PUT_STRING_SET, key, values, 0, expire);
        break;
      case 2:
        call = Make(KvCall::OP_ADD_TO_STRING_SET, key, values, 0, expire);
        break;
      case 3:
        call = Make(KvCall::OP_REMOVE_FROM_STRING_SET, key, values, 0, expire);
        break;
      case 4:
        call = Make(KvCall::OP_RESET_STRING_SET, key);
        break;
      case 5:
        call = Make(KvCall::OP_INCREMENT_COUNTER, key, {}, pick(5) - 2, expire);
        break;
      case 6:
        call = Make(KvCall::OP_GET_COUNTER, key);
        break;
      case 7:
        call = Make(KvCall::OP_RESET_COUNTER, key);
        break;
      case 8:
        call = Make(KvCall::OP_SET_KEY_EXPIRATION, key, {}, 0, expire);
        break;
      case 9:
        call = Make(KvCall::OP_GET_DICTIONARY, key);
        break;
      case 10:
        call = Make(KvCall::OP_PUT_DICTIONARY, key, {}, 0, expire,
                    pick(4) == 0 ? "[1]" : absl::StrCat("{\"n\": ", i, "}"));
        break;
      default:
        call = Make(KvCall::OP_INCREMENT_COUNTER, key, {}, INT64_MAX, 0);
        break;
    }
    absl::StatusOr<KvReply> want = reference_kv_->Call(call);
    absl::StatusOr<KvReply> got = cache.Call(call);
    ASSERT_EQ(Describe(got), Describe(want))
        << "operation " << i << ": " << call.ShortDebugString();
    errors += !want.ok();
    if (pick(50) == 0) {  // a request ends
      Replay(cache, *served_kv_);
      cache.BeginRequest(none);
    }
  }
  Replay(cache, *served_kv_);
  EXPECT_GT(errors, 0);  // bad dictionaries and overflows were exercised
  for (const std::string& key : keys) {
    KvCall fetch = Make(KvCall::OP_FETCH, key);
    EXPECT_EQ(Describe(served_kv_->Call(fetch)), Describe(reference_kv_->Call(fetch))) << key;
  }
  // Each key was fetched once; nothing else but fetches reached pantherd.
  EXPECT_EQ(remote.calls(KvCall::OP_FETCH), static_cast<int>(keys.size()));
  EXPECT_EQ(cache.fetches(), static_cast<int64_t>(keys.size()));
  EXPECT_EQ(remote.calls(KvCall::OP_APPLY_WRITES), 0);
}

TEST_F(KvCacheTest, InvalidCallsFailWithoutAFetch) {
  CountingKv remote(served_kv_.get());
  KvCache cache(&remote, Clock());
  EXPECT_EQ(cache.Call(Make(KvCall::OP_GET_COUNTER, "")).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(cache.Call(Make(KvCall::OP_GET_COUNTER, std::string(kMaxKvKeyBytes + 1, 'k')))
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(cache.Call(Make(KvCall::OP_INCREMENT_COUNTER, "k", {}, 1, -5)).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(cache.Call(Make(KvCall::OP_FETCH, "k")).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(remote.calls(KvCall::OP_FETCH), 0);
  EXPECT_THAT(cache.TakeWrites(), IsEmpty());
}

// Two workers' caches with pantherd's change log between them.
TEST_F(KvCacheTest, AWorkerSeesAnotherWorkersWritesFromItsNextRequest) {
  KvChangeLog log;
  KvCache one(served_kv_.get(), Clock());
  KvCache two(served_kv_.get(), Clock());
  uint64_t pos_one = log.Position(), pos_two = log.Position();

  one.BeginRequest(log.ChangesFor(1, &pos_one));
  two.BeginRequest(log.ChangesFor(2, &pos_two));
  EXPECT_EQ(one.Call(Make(KvCall::OP_INCREMENT_COUNTER, "n", {}, 1))->counter(), 1);
  EXPECT_EQ(two.Call(Make(KvCall::OP_INCREMENT_COUNTER, "n", {}, 1))->counter(), 1);  // concurrent
  Replay(one, *served_kv_, &log, 1);
  Replay(two, *served_kv_, &log, 2);
  // Both increments are in the store.
  EXPECT_EQ(served_kv_->Call(Make(KvCall::OP_GET_COUNTER, "n"))->counter(), 2);

  // Without the sync a cache would keep answering its stale copy.
  EXPECT_EQ(one.Call(Make(KvCall::OP_GET_COUNTER, "n"))->counter(), 1);
  internal::KvSync sync = log.ChangesFor(1, &pos_one);
  EXPECT_THAT(sync.keys(), ElementsAre("n"));  // two's write, not one's own
  one.BeginRequest(sync);
  EXPECT_EQ(one.Call(Make(KvCall::OP_GET_COUNTER, "n"))->counter(), 2);
  two.BeginRequest(log.ChangesFor(2, &pos_two));
  EXPECT_EQ(two.Call(Make(KvCall::OP_GET_COUNTER, "n"))->counter(), 2);

  // Sequential requests in different workers see each other's writes.
  one.BeginRequest(log.ChangesFor(1, &pos_one));
  one.Call(Make(KvCall::OP_ADD_TO_STRING_SET, "s", {"x"}));
  Replay(one, *served_kv_, &log, 1);
  two.BeginRequest(log.ChangesFor(2, &pos_two));
  EXPECT_THAT(two.Call(Make(KvCall::OP_ADD_TO_STRING_SET, "s", {"y"}))->values(),
              ElementsAre("x", "y"));
}

TEST_F(KvCacheTest, ChangeLogListsOthersKeysOnceAndOverflowsToClearAll) {
  KvChangeLog log(4);
  uint64_t reader = log.Position();
  log.Record(2, "a");
  log.Record(1, "mine");
  log.Record(2, "a");
  log.Record(3, "b");
  internal::KvSync sync = log.ChangesFor(1, &reader);
  EXPECT_FALSE(sync.clear_all());
  EXPECT_THAT(sync.keys(), UnorderedElementsAre("a", "b"));
  EXPECT_THAT(log.ChangesFor(1, &reader).keys(), IsEmpty());
  for (int i = 0; i < 5; ++i) log.Record(2, absl::StrCat("k", i));
  sync = log.ChangesFor(1, &reader);
  EXPECT_TRUE(sync.clear_all());
  EXPECT_THAT(log.ChangesFor(1, &reader).keys(), IsEmpty());

  KvCache cache(served_kv_.get(), Clock());
  cache.BeginRequest({});
  cache.Call(Make(KvCall::OP_GET_COUNTER, "a"));
  EXPECT_EQ(cache.size(), 1u);
  cache.BeginRequest(sync);
  EXPECT_EQ(cache.size(), 0u);
  EXPECT_EQ(cache.clears(), 1);
}

TEST_F(KvCacheTest, ALongWriteLogIsSentAhead) {
  CountingKv remote(served_kv_.get());
  KvCache cache(&remote, Clock());
  cache.BeginRequest({});
  const int n = static_cast<int>(KvCache::kMaxLoggedWrites) + 10;
  for (int i = 0; i < n; ++i) {
    ASSERT_TRUE(cache.Call(Make(KvCall::OP_INCREMENT_COUNTER, "n", {}, 1)).ok());
  }
  EXPECT_EQ(remote.calls(KvCall::OP_APPLY_WRITES), 1);
  EXPECT_EQ(served_kv_->Call(Make(KvCall::OP_GET_COUNTER, "n"))->counter(),
            static_cast<int64_t>(KvCache::kMaxLoggedWrites));
  EXPECT_EQ(cache.TakeWrites().size(), 10u);
}

// A cache started from a snapshot asks only for the keys others changed.
TEST_F(KvCacheTest, ACompleteCacheFetchesOnlyWhatOthersChanged) {
  served_kv_->Call(Make(KvCall::OP_ADD_TO_STRING_SET, "s", {"x"})).IgnoreError();
  served_kv_->Call(Make(KvCall::OP_INCREMENT_COUNTER, "n", {}, 5)).IgnoreError();
  std::vector<std::pair<std::string, std::string>> items;
  ASSERT_TRUE(served_kv_->Snapshot(10, &items).ok());
  ASSERT_EQ(items.size(), 2u);
  std::vector<std::pair<std::string, std::string>> too_many;
  EXPECT_EQ(served_kv_->Snapshot(1, &too_many).code(), absl::StatusCode::kResourceExhausted);
  EXPECT_TRUE(too_many.empty());

  CountingKv remote(served_kv_.get());
  KvCache cache(&remote, Clock());
  internal::KvSync first;
  first.set_has_snapshot(true);
  for (auto& [key, item] : items) {
    internal::KvSnapshotItem* entry = first.add_snapshot();
    entry->set_key(key);
    entry->set_item(item);
  }
  cache.BeginRequest(first);
  EXPECT_TRUE(cache.complete());
  EXPECT_THAT(cache.Call(Make(KvCall::OP_GET_STRING_SET, "s"))->values(), ElementsAre("x"));
  EXPECT_EQ(cache.Call(Make(KvCall::OP_GET_COUNTER, "n"))->counter(), 5);
  EXPECT_EQ(cache.Call(Make(KvCall::OP_GET_COUNTER, "absent"))->counter(), 0);
  EXPECT_EQ(remote.calls(KvCall::OP_FETCH), 0);

  // Another worker changes "n" and creates "new".
  served_kv_->Call(Make(KvCall::OP_INCREMENT_COUNTER, "n", {}, 1)).IgnoreError();
  served_kv_->Call(Make(KvCall::OP_INCREMENT_COUNTER, "new", {}, 1)).IgnoreError();
  internal::KvSync changed;
  changed.add_keys("n");
  changed.add_keys("new");
  cache.BeginRequest(changed);
  EXPECT_EQ(cache.Call(Make(KvCall::OP_GET_COUNTER, "n"))->counter(), 6);
  EXPECT_EQ(cache.Call(Make(KvCall::OP_GET_COUNTER, "new"))->counter(), 1);
  EXPECT_THAT(cache.Call(Make(KvCall::OP_GET_STRING_SET, "s"))->values(), ElementsAre("x"));
  EXPECT_EQ(remote.calls(KvCall::OP_FETCH), 2);
  EXPECT_EQ(cache.Call(Make(KvCall::OP_GET_COUNTER, "n"))->counter(), 6);
  EXPECT_EQ(remote.calls(KvCall::OP_FETCH), 2);

  // Cleared, it asks again for every key.
  internal::KvSync clear;
  clear.set_clear_all(true);
  cache.BeginRequest(clear);
  EXPECT_FALSE(cache.complete());
  EXPECT_EQ(cache.Call(Make(KvCall::OP_GET_COUNTER, "absent"))->counter(), 0);
  EXPECT_EQ(remote.calls(KvCall::OP_FETCH), 3);
}

// Replayed writes use the time they were made, not the time of the replay.
TEST_F(KvCacheTest, ReplayUsesTheTimeOfTheWrite) {
  KvCache cache(served_kv_.get(), Clock());
  served_kv_->Call(Make(KvCall::OP_ADD_TO_STRING_SET, "s", {"old"}, 0, now_ + 10)).IgnoreError();
  cache.BeginRequest({});
  EXPECT_THAT(cache.Call(Make(KvCall::OP_ADD_TO_STRING_SET, "s", {"new"}))->values(),
              ElementsAre("new", "old"));
  now_ += 60;  // the item has expired by the time pantherd replays the write
  Replay(cache, *served_kv_);
  now_ -= 60;
  EXPECT_THAT(served_kv_->Call(Make(KvCall::OP_GET_STRING_SET, "s"))->values(),
              ElementsAre("new", "old"));
}

}  // namespace
}  // namespace pantherd::engine

namespace pantherd::engine {
namespace {

// The reported bug: a read of an expired item was logged as a write
// (a lazy delete of a read operation), which pantherd rejects as a protocol
// error. No operation on an expired item may log a read.
TEST_F(KvCacheTest, ExpiredItemsReadAsAbsentAndReadsLogNothing) {
  const int64_t t0 = now_;
  ASSERT_TRUE(served_kv_->Call(Make(KvCall::OP_PUT_STRING_SET, "s", {"seen"}, 0, t0 - 60)).ok());
  ASSERT_TRUE(served_kv_->Call(Make(KvCall::OP_INCREMENT_COUNTER, "c", {}, 4, t0 - 60)).ok());
  ASSERT_TRUE(
      served_kv_->Call(Make(KvCall::OP_PUT_DICTIONARY, "d", {}, 0, t0 - 60, R"({"a":1})")).ok());
  for (const KvCall& read :
       {Make(KvCall::OP_GET_STRING_SET, "s"), Make(KvCall::OP_GET_COUNTER, "c"),
        Make(KvCall::OP_GET_DICTIONARY, "d")}) {
    KvCache cache(served_kv_.get(), Clock());
    cache.BeginRequest({});
    absl::StatusOr<KvReply> reply = cache.Call(read);
    ASSERT_TRUE(reply.ok()) << reply.status();
    EXPECT_EQ(reply->values_size(), 0);
    EXPECT_EQ(reply->counter(), 0);
    for (const KvCall& write : cache.TakeWrites()) {
      EXPECT_TRUE(IsKvWrite(write.op())) << write.ShortDebugString();
    }
  }
  // Writes to expired items start from nothing and replay to the same state.
  KvCache cache(served_kv_.get(), Clock());
  cache.BeginRequest({});
  EXPECT_THAT(Describe(cache.Call(Make(KvCall::OP_ADD_TO_STRING_SET, "s", {"new"}))),
              ::testing::HasSubstr("values: \"new\""));
  EXPECT_EQ(cache.Call(Make(KvCall::OP_INCREMENT_COUNTER, "c", {}, 1))->counter(), 1);
  EXPECT_TRUE(cache.Call(Make(KvCall::OP_SET_KEY_EXPIRATION, "d", {}, 0, t0 + 100)).ok());
  std::vector<KvCall> writes = cache.TakeWrites();
  ASSERT_EQ(writes.size(), 2u);
  for (const KvCall& write : writes) EXPECT_TRUE(IsKvWrite(write.op()));
}

// The clock of the event being evaluated decides expiry, and relative
// expiries in the helpers count from it.
TEST_F(KvCacheTest, TheEventClockDecidesExpiryAndTagsWrites) {
  const int64_t event_time = now_ - 30 * 24 * 3600;  // a backfill of last month
  ASSERT_TRUE(
      served_kv_->Call(Make(KvCall::OP_PUT_STRING_SET, "s", {"x"}, 0, event_time + 60)).ok());
  KvCache cache(served_kv_.get(), Clock());
  cache.BeginRequest({});
  EXPECT_EQ(cache.NowSeconds(), now_);
  cache.SetEventClock(event_time, 7);
  EXPECT_EQ(cache.NowSeconds(), event_time);
  // Expired by the wall clock, not by the event's time.
  EXPECT_EQ(cache.Call(Make(KvCall::OP_GET_STRING_SET, "s"))->values_size(), 1);
  ASSERT_TRUE(cache.Call(Make(KvCall::OP_INCREMENT_COUNTER, "c", {}, 1)).ok());
  cache.SetEventClock(event_time + 60, 8);
  EXPECT_EQ(cache.Call(Make(KvCall::OP_GET_STRING_SET, "s"))->values_size(), 0);
  cache.SetEventClock(0, 0);
  EXPECT_EQ(cache.NowSeconds(), now_);
  std::vector<KvCall> writes = cache.TakeWrites();
  ASSERT_EQ(writes.size(), 1u);
  EXPECT_EQ(writes[0].event_tag(), 7u);
  EXPECT_EQ(writes[0].now_epoch_seconds(), event_time);
}

}  // namespace
}  // namespace pantherd::engine
