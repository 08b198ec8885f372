#include "store/store.h"

#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "pantherd/v1/alerts.pb.h"
#include "pantherd/v1/rules.pb.h"
#include "rocksdb/db.h"
#include "store/keys.h"

extern char** environ;

namespace pantherd::store {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void WriteFile(const std::string& path, absl::string_view contents) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(contents.data(), static_cast<std::streamsize>(contents.size()));
}

// --- A writer process for the crash test -----------------------------------
//
// When this binary starts with PANTHERD_STORE_CRASH_WRITER=<dir> in its
// environment it does not run tests: it writes numbered batches to the store
// in <dir>/db until it is killed, reporting progress in <dir>/progress.

constexpr char kCrashWriterEnv[] = "PANTHERD_STORE_CRASH_WRITER";
constexpr size_t kCrashValueSize = 512 * 1024;  // large, so WAL records span writes
const Family kCrashFamilies[] = {Family::kRules, Family::kAlerts, Family::kKv};

std::string CrashValue(uint64_t i, Family f) {
  std::string value(kCrashValueSize, static_cast<char>('a' + (i + static_cast<int>(f)) % 26));
  const std::string header = absl::StrCat(i, "/", FamilyName(f), "/");
  value.replace(0, header.size(), header);
  return value;
}

[[noreturn]] void RunCrashWriter(const std::string& dir) {
  StoreOptions options;
  options.sync_writes = false;  // a process crash must still not tear a batch
  absl::StatusOr<std::unique_ptr<Store>> store = Store::Open(dir + "/db", options);
  if (!store.ok()) _exit(2);
  absl::StatusOr<uint64_t> done = (*store)->LastSequence("crash_seq");
  if (!done.ok()) _exit(2);
  for (uint64_t i = *done;; ++i) {
    absl::StatusOr<uint64_t> seq =
        (*store)->WriteWithSequence("crash_seq", 1, [i](uint64_t, WriteBatch& batch) {
          for (Family f : kCrashFamilies) batch.Put(f, EncodeUint64(i), CrashValue(i, f));
          return absl::OkStatus();
        });
    if (!seq.ok()) _exit(3);
    WriteFile(dir + "/progress.tmp", absl::StrCat(i + 1));
    std::error_code ec;
    fs::rename(dir + "/progress.tmp", dir + "/progress", ec);
    if (ec) _exit(4);
  }
}

[[maybe_unused]] const bool kIsCrashWriter = [] {
  const char* dir = getenv(kCrashWriterEnv);
  if (dir != nullptr) RunCrashWriter(dir);
  return false;
}();

// --- Fixture ----------------------------------------------------------------

// Named after the test binary so `ctest -R store` selects these cases.
class store_test : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* tmp = getenv("TMPDIR");
    std::string pattern = absl::StrCat(tmp != nullptr && *tmp ? tmp : "/tmp", "/store_test.XXXXXX");
    ASSERT_NE(mkdtemp(pattern.data()), nullptr) << "mkdtemp " << pattern;
    root_ = pattern;
    dir_ = root_ + "/data";
  }

  void TearDown() override {
    std::error_code ec;
    fs::remove_all(root_, ec);
  }

  std::unique_ptr<Store> OpenOrDie(const StoreOptions& options = {}) {
    absl::StatusOr<std::unique_ptr<Store>> store = Store::Open(dir_, options);
    EXPECT_TRUE(store.ok()) << store.status();
    return store.ok() ? std::move(*store) : nullptr;
  }

  std::string root_;  // the mkdtemp directory, removed after each test
  std::string dir_;   // the store's data directory inside it
};

pantherd::v1::Rule SampleRule(const std::string& id, int64_t version) {
  pantherd::v1::Rule rule;
  rule.set_id(id);
  rule.set_type(pantherd::v1::ANALYSIS_TYPE_RULE);
  rule.set_display_name("Root login");
  rule.set_enabled(true);
  rule.add_log_types("Okta.SystemLog");
  rule.set_severity(pantherd::v1::SEVERITY_HIGH);
  rule.set_dedup_period_minutes(60);
  rule.set_version(version);
  rule.mutable_created_time()->set_seconds(1700000000);
  auto* file = rule.add_files();
  file->set_path("rules/root_login.py");
  file->set_content("def rule(event):\n    return True\n");
  (*rule.mutable_reports())["MITRE ATT&CK"].add_values("TA0001:T1078");
  return rule;
}

// --- Basic operations ---------------------------------------------------------

TEST_F(store_test, FamilyNamesAreDistinctColumnFamilies) {
  std::set<std::string> names;
  for (Family f : AllFamilies()) names.insert(std::string(FamilyName(f)));
  EXPECT_EQ(names.size(), static_cast<size_t>(kFamilyCount));
  EXPECT_EQ(FamilyName(Family::kRuleVersions), "rule_versions");
  EXPECT_EQ(FamilyName(Family::kAlertLog), "alert_log");
  EXPECT_EQ(FamilyName(static_cast<Family>(99)), "unknown");
}

TEST_F(store_test, EveryFamilyRoundTripsAndIsItsOwnKeyspace) {
  std::unique_ptr<Store> store = OpenOrDie();
  ASSERT_NE(store, nullptr);
  for (Family f : AllFamilies()) {
    ASSERT_TRUE(store->Put(f, "shared-key", absl::StrCat("value of ", FamilyName(f))).ok());
  }
  for (Family f : AllFamilies()) {
    absl::StatusOr<std::string> value = store->Get(f, "shared-key");
    ASSERT_TRUE(value.ok()) << FamilyName(f) << ": " << value.status();
    EXPECT_EQ(*value, absl::StrCat("value of ", FamilyName(f)));
  }
  // Binary keys and values survive unchanged.
  const std::string key("k\0\xff", 3), value("\0\x01\x02", 3);
  ASSERT_TRUE(store->Put(Family::kKv, key, value).ok());
  EXPECT_EQ(store->Get(Family::kKv, key).value(), value);
  EXPECT_TRUE(absl::IsNotFound(store->Get(Family::kRules, key).status()));
}

TEST_F(store_test, MissingKeyIsNotFoundAndNamesTheFamily) {
  std::unique_ptr<Store> store = OpenOrDie();
  ASSERT_NE(store, nullptr);
  absl::StatusOr<std::string> missing = store->Get(Family::kAlerts, "nope");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(missing.status().message()), HasSubstr("alerts"));
  EXPECT_THAT(std::string(missing.status().message()), HasSubstr("nope"));
  EXPECT_TRUE(absl::IsNotFound(store->GetMessage<v1::Alert>(Family::kAlerts, "nope").status()));
}

TEST_F(store_test, DeleteRemovesOnlyThatKey) {
  std::unique_ptr<Store> store = OpenOrDie();
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->Put(Family::kUsers, "alice", "a").ok());
  ASSERT_TRUE(store->Put(Family::kUsers, "bob", "b").ok());
  ASSERT_TRUE(store->Delete(Family::kUsers, "alice").ok());
  ASSERT_TRUE(store->Delete(Family::kUsers, "never-there").ok());
  EXPECT_TRUE(absl::IsNotFound(store->Get(Family::kUsers, "alice").status()));
  EXPECT_EQ(store->Get(Family::kUsers, "bob").value(), "b");
}

TEST_F(store_test, ProtoMessagesRoundTrip) {
  std::unique_ptr<Store> store = OpenOrDie();
  ASSERT_NE(store, nullptr);
  const v1::Rule rule = SampleRule("Okta.Root.Login", 2);
  ASSERT_TRUE(store->PutMessage(Family::kRules, rule.id(), rule).ok());
  absl::StatusOr<v1::Rule> got = store->GetMessage<v1::Rule>(Family::kRules, rule.id());
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->SerializeAsString(), rule.SerializeAsString());
  EXPECT_EQ(got->files(0).content(), rule.files(0).content());
  EXPECT_EQ(got->reports().at("MITRE ATT&CK").values(0), "TA0001:T1078");

  WriteBatch batch;
  v1::AlertChange change;
  change.set_sequence(9);
  change.set_kind(v1::AlertChange::KIND_CREATED);
  change.mutable_alert()->set_id("abc123");
  batch.PutMessage(Family::kAlertLog, SequenceKey(9), change);
  ASSERT_TRUE(store->Write(std::move(batch)).ok());
  absl::StatusOr<v1::AlertChange> got_change =
      store->GetMessage<v1::AlertChange>(Family::kAlertLog, SequenceKey(9));
  ASSERT_TRUE(got_change.ok()) << got_change.status();
  EXPECT_EQ(got_change->alert().id(), "abc123");
  EXPECT_EQ(got_change->kind(), v1::AlertChange::KIND_CREATED);
}

TEST_F(store_test, UnparsableMessageIsDataLoss) {
  std::unique_ptr<Store> store = OpenOrDie();
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->Put(Family::kRules, "broken", "\xff\xff\xff\xff").ok());
  absl::StatusOr<v1::Rule> got = store->GetMessage<v1::Rule>(Family::kRules, "broken");
  EXPECT_EQ(got.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(got.status().message()), HasSubstr("pantherd.v1.Rule"));
  EXPECT_THAT(std::string(got.status().message()), HasSubstr("broken"));
}

// --- Batches ------------------------------------------------------------------

TEST_F(store_test, BatchSpanningFamiliesLandsEntirely) {
  std::unique_ptr<Store> store = OpenOrDie();
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->Put(Family::kDedup, "stale", "x").ok());
  const v1::Rule rule = SampleRule("r1", 1);
  WriteBatch batch;
  EXPECT_TRUE(batch.Empty());
  batch.PutMessage(Family::kRules, "r1", rule);
  batch.PutMessage(Family::kRuleVersions, RuleVersionKey("r1", 1), rule);
  batch.Put(Family::kAlerts, "a1", "first");
  batch.Put(Family::kAlerts, "a1", "second");  // later operations win
  batch.Put(Family::kAlertLog, SequenceKey(1), "change");
  batch.Delete(Family::kDedup, "stale");
  EXPECT_EQ(batch.Count(), 6u);
  EXPECT_FALSE(batch.Empty());
  EXPECT_GT(batch.ApproximateSize(), rule.ByteSizeLong());
  ASSERT_TRUE(store->Write(std::move(batch)).ok());

  EXPECT_EQ(store->GetMessage<v1::Rule>(Family::kRules, "r1")->id(), "r1");
  EXPECT_EQ(store->GetMessage<v1::Rule>(Family::kRuleVersions, RuleVersionKey("r1", 1))->version(),
            1);
  EXPECT_EQ(store->Get(Family::kAlerts, "a1").value(), "second");
  EXPECT_EQ(store->Get(Family::kAlertLog, SequenceKey(1)).value(), "change");
  EXPECT_TRUE(absl::IsNotFound(store->Get(Family::kDedup, "stale").status()));
  EXPECT_TRUE(store->Write(WriteBatch()).ok());  // empty batch is a no-op
}

TEST_F(store_test, RejectedBatchWritesNothing) {
  std::unique_ptr<Store> store = OpenOrDie();
  ASSERT_NE(store, nullptr);
  WriteBatch batch;
  batch.Put(Family::kRules, "r1", "v");
  batch.Put(Family::kAlerts, "a1", "v");
  batch.Put(static_cast<Family>(42), "k", "v");  // invalid, after valid operations
  const absl::Status status = store->Write(std::move(batch));
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_TRUE(absl::IsNotFound(store->Get(Family::kRules, "r1").status()));
  EXPECT_TRUE(absl::IsNotFound(store->Get(Family::kAlerts, "a1").status()));
}

TEST_F(store_test, WriteToClosedStoreFailsAndWritesNothing) {
  std::unique_ptr<Store> store = OpenOrDie();
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->Close().ok());
  ASSERT_TRUE(store->Close().ok());  // idempotent
  WriteBatch batch;
  batch.Put(Family::kRules, "r1", "v");
  batch.Put(Family::kAlerts, "a1", "v");
  const absl::Status status = store->Write(std::move(batch));
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition) << status;
  EXPECT_THAT(std::string(status.message()), HasSubstr("closed"));
  EXPECT_EQ(store->Get(Family::kRules, "r1").status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(store->Flush().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_FALSE(store->NextSequence("s").ok());

  store = OpenOrDie();
  ASSERT_NE(store, nullptr);
  EXPECT_TRUE(absl::IsNotFound(store->Get(Family::kRules, "r1").status()));
  EXPECT_TRUE(absl::IsNotFound(store->Get(Family::kAlerts, "a1").status()));
}

// Starts the crash writer on `root`/db, waits until it has acknowledged at
// least `min_batches` batches in total, kills it with SIGKILL after a random
// delay and returns the count it had acknowledged.
uint64_t RunWriterAndKill(const std::string& root, uint64_t min_batches) {
  std::vector<std::string> env_strings;
  for (char** e = environ; *e != nullptr; ++e) env_strings.emplace_back(*e);
  env_strings.push_back(absl::StrCat(kCrashWriterEnv, "=", root));
  std::vector<char*> envp;
  for (std::string& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  char exe[] = "/proc/self/exe";
  char* argv[] = {exe, nullptr};
  pid_t pid = 0;
  EXPECT_EQ(posix_spawn(&pid, exe, nullptr, nullptr, argv, envp.data()), 0);
  if (pid <= 0) return 0;

  uint64_t acknowledged = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (acknowledged < min_batches && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
    int status = 0;
    if (waitpid(pid, &status, WNOHANG) != 0) {
      ADD_FAILURE() << "writer exited early, status " << status;
      return 0;
    }
    uint64_t n = 0;
    if (absl::SimpleAtoi(ReadFile(root + "/progress"), &n)) acknowledged = n;
  }
  // Any kill point must be safe; randomness only varies which one we test.
  std::random_device entropy;
  std::this_thread::sleep_for(std::chrono::microseconds(entropy() % 20000));
  EXPECT_EQ(kill(pid, SIGKILL), 0);
  int status = 0;
  EXPECT_EQ(waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFSIGNALED(status)) << "writer failed, status " << status;
  return acknowledged;
}

// Kills a writer process at random points and checks that every batch it
// wrote is entirely present or entirely absent, in all three families and in
// the sequence counter written in the same batch.
TEST_F(store_test, BatchesAreAtomicAcrossAProcessCrash) {
  dir_ = root_ + "/db";
  constexpr int kRounds = 4;
  constexpr uint64_t kBatchesPerRound = 8;
  uint64_t surviving = 0;
  for (int round = 1; round <= kRounds; ++round) {
    SCOPED_TRACE(absl::StrCat("round ", round));
    const uint64_t acknowledged = RunWriterAndKill(root_, surviving + kBatchesPerRound);
    ASSERT_GE(acknowledged, surviving + kBatchesPerRound) << "writer made too little progress";

    std::unique_ptr<Store> store = OpenOrDie();
    ASSERT_NE(store, nullptr);
    std::vector<uint64_t> ids;
    ASSERT_TRUE(store
                    ->Scan(Family::kRules, "",
                           [&](absl::string_view key, absl::string_view) {
                             ids.push_back(DecodeUint64(key).value());
                             return true;
                           })
                    .ok());
    ASSERT_GE(ids.size(), acknowledged);  // acknowledged writes survive a process crash
    for (size_t i = 0; i < ids.size(); ++i) {
      ASSERT_EQ(ids[i], i) << "batches must land in order with no holes";
      for (Family f : kCrashFamilies) {
        absl::StatusOr<std::string> value = store->Get(f, EncodeUint64(i));
        ASSERT_TRUE(value.ok()) << "batch " << i << " is missing from " << FamilyName(f);
        ASSERT_TRUE(*value == CrashValue(i, f)) << "batch " << i << " is torn in " << FamilyName(f);
      }
    }
    for (Family f : kCrashFamilies) {
      EXPECT_EQ(store->Count(f, "").value(), static_cast<int64_t>(ids.size())) << FamilyName(f);
    }
    EXPECT_EQ(store->LastSequence("crash_seq").value(), ids.size());
    // The next writer continues after the surviving batches.
    surviving = ids.size();
    WriteFile(root_ + "/progress", absl::StrCat(surviving));
  }
}

// --- Scans --------------------------------------------------------------------

std::vector<std::string> Keys(const Store& store, Family f, absl::string_view prefix,
                              absl::string_view start = {}, bool reverse = false,
                              size_t limit = 1000) {
  std::vector<std::string> keys;
  auto visit = [&](absl::string_view key, absl::string_view) {
    keys.emplace_back(key);
    return keys.size() < limit;
  };
  const absl::Status status =
      reverse ? store.ReverseScan(f, prefix, visit, start) : store.Scan(f, prefix, visit, start);
  EXPECT_TRUE(status.ok()) << status;
  return keys;
}

TEST_F(store_test, ScanVisitsPrefixInKeyOrder) {
  std::unique_ptr<Store> store = OpenOrDie();
  ASSERT_NE(store, nullptr);
  // Versions of "r" and of ids that share its first byte or extend it.
  for (int64_t v : {300, 2, 1, 256, 10}) {
    ASSERT_TRUE(store->Put(Family::kRuleVersions, RuleVersionKey("r", v), "x").ok());
  }
  ASSERT_TRUE(store->Put(Family::kRuleVersions, RuleVersionKey("r2", 1), "x").ok());
  ASSERT_TRUE(store->Put(Family::kRuleVersions, RuleVersionKey("q", 1), "x").ok());
  ASSERT_TRUE(store->Put(Family::kRules, RuleVersionKey("r", 5), "other family").ok());

  std::vector<int64_t> versions;
  ASSERT_TRUE(store
                  ->Scan(Family::kRuleVersions, RuleVersionPrefix("r"),
                         [&](absl::string_view key, absl::string_view value) {
                           versions.push_back(ParseRuleVersionKey(key)->version);
                           EXPECT_EQ(value, "x");
                           return true;
                         })
                  .ok());
  EXPECT_THAT(versions, ::testing::ElementsAre(1, 2, 10, 256, 300));

  // Starting point and early stop.
  EXPECT_EQ(Keys(*store, Family::kRuleVersions, RuleVersionPrefix("r"), RuleVersionKey("r", 3)),
            (std::vector<std::string>{RuleVersionKey("r", 10), RuleVersionKey("r", 256),
                                      RuleVersionKey("r", 300)}));
  EXPECT_EQ(Keys(*store, Family::kRuleVersions, RuleVersionPrefix("r"), {}, false, 2).size(), 2u);
  // A start before the prefix is the prefix; a start past it finds nothing.
  EXPECT_EQ(Keys(*store, Family::kRuleVersions, RuleVersionPrefix("r"), "a").size(), 5u);
  EXPECT_TRUE(Keys(*store, Family::kRuleVersions, RuleVersionPrefix("r"), "z").empty());
  // Empty prefix: the whole family, in order q, r..., r2.
  const std::vector<std::string> all = Keys(*store, Family::kRuleVersions, "");
  ASSERT_EQ(all.size(), 7u);
  EXPECT_EQ(all.front(), RuleVersionKey("q", 1));
  EXPECT_EQ(all.back(), RuleVersionKey("r2", 1));
  EXPECT_TRUE(std::is_sorted(all.begin(), all.end()));
  EXPECT_TRUE(Keys(*store, Family::kRuleVersions, "nothing-here").empty());
}

TEST_F(store_test, ReverseScanVisitsNewestFirst) {
  std::unique_ptr<Store> store = OpenOrDie();
  ASSERT_NE(store, nullptr);
  for (uint64_t seq : {1, 2, 3, 255, 256, 1000}) {
    ASSERT_TRUE(store->Put(Family::kAlertLog, SequenceKey(seq), absl::StrCat(seq)).ok());
  }
  auto seqs = [](const std::vector<std::string>& keys) {
    std::vector<uint64_t> out;
    for (const std::string& k : keys) out.push_back(ParseSequenceKey(k).value());
    return out;
  };
  EXPECT_THAT(seqs(Keys(*store, Family::kAlertLog, "", {}, true)),
              ::testing::ElementsAre(1000, 256, 255, 3, 2, 1));
  EXPECT_THAT(seqs(Keys(*store, Family::kAlertLog, "", SequenceKey(255), true)),
              ::testing::ElementsAre(255, 3, 2, 1));
  EXPECT_THAT(seqs(Keys(*store, Family::kAlertLog, "", SequenceKey(254), true, 2)),
              ::testing::ElementsAre(3, 2));

  // With a prefix: the last key of the prefix, never a key of the next one.
  ASSERT_TRUE(store->Put(Family::kDedup, Join("rule", "a"), "1").ok());
  ASSERT_TRUE(store->Put(Family::kDedup, Join("rule", "b"), "2").ok());
  ASSERT_TRUE(store->Put(Family::kDedup, Join("rule2", "a"), "3").ok());
  ASSERT_TRUE(store->Put(Family::kDedup, Join("rulf", "a"), "4").ok());
  EXPECT_EQ(Keys(*store, Family::kDedup, Join("rule", ""), {}, true),
            (std::vector<std::string>{Join("rule", "b"), Join("rule", "a")}));
  EXPECT_EQ(Keys(*store, Family::kDedup, Join("rule", ""), "zzz", true),
            (std::vector<std::string>{Join("rule", "b"), Join("rule", "a")}));
  EXPECT_TRUE(Keys(*store, Family::kDedup, Join("rule", ""), "a", true).empty());
  EXPECT_EQ(Keys(*store, Family::kDedup, "\xff", {}, true).size(), 0u);
}

// The dedup family is indexed by its keys' first two components (prefix Bloom
// filters): scans within one such prefix run in RocksDB's prefix mode, all
// others in total order. Both must see exactly the keys a plain ordered set
// holds, across the memtable and several SST files, with deletions, forward
// and reverse, from any start.
TEST_F(store_test, IndexedPrefixScansMatchAnOrderedSet) {
  std::unique_ptr<Store> store = OpenOrDie();
  ASSERT_NE(store, nullptr);
  std::mt19937 random(7);
  const std::vector<std::string> rules = {"r", "r2", "rule", "s"};
  const std::vector<std::string> groups = {"", "a", "a\x01", "b", "Kab", "\xff"};
  auto random_key = [&] {
    const std::string& rule = rules[random() % rules.size()];
    const std::string& group = groups[random() % groups.size()];
    switch (random() % 8) {
      case 0:  // outside the indexed domain: fewer than two separators
        return Join(rule, group);
      case 1:
        return rule;
      default: {  // (rule, group, 8-byte window start), separators in it too
        std::string start(8, '\0');
        for (char& c : start) c = static_cast<char>(random() % 3 == 0 ? 0 : random() % 256);
        return absl::StrCat(Join(rule, group, ""), start);
      }
    }
  };
  std::set<std::string> expected;
  for (int phase = 0; phase < 4; ++phase) {
    WriteBatch batch;
    for (int i = 0; i < 400; ++i) {
      const std::string key = random_key();
      if (random() % 5 == 0 && !expected.empty()) {
        auto it = expected.lower_bound(key);
        if (it == expected.end()) it = expected.begin();
        batch.Delete(Family::kDedup, *it);
        expected.erase(it);
      } else {
        batch.Put(Family::kDedup, key, "v");
        expected.insert(key);
      }
    }
    ASSERT_TRUE(store->Write(std::move(batch)).ok());
    if (phase < 3) ASSERT_TRUE(store->Flush().ok());  // the last phase stays in the memtable
  }
  auto reference = [&](absl::string_view prefix, absl::string_view start, bool reverse) {
    std::vector<std::string> keys;
    for (const std::string& k : expected) {
      if (!absl::StartsWith(k, prefix)) continue;
      if (!start.empty() && (reverse ? k > start : k < start)) continue;
      keys.push_back(k);
    }
    if (reverse) std::reverse(keys.begin(), keys.end());
    return keys;
  };
  int checked = 0;
  for (int i = 0; i < 600; ++i) {
    const std::string& rule = rules[random() % rules.size()];
    const std::string& group = groups[random() % groups.size()];
    std::string prefix;
    switch (random() % 4) {
      case 0:
        prefix = "";
        break;
      case 1:
        prefix = Join(rule, "");
        break;
      default:
        prefix = Join(rule, group, "");  // an indexed prefix
    }
    std::string start;
    if (random() % 4 != 0) start = random_key();
    if (random() % 3 == 0) start = absl::StrCat(prefix, start.substr(0, 3));
    const bool reverse = random() % 2 == 0;
    const std::vector<std::string> want = reference(prefix, start, reverse);
    checked += want.empty() ? 0 : 1;
    ASSERT_EQ(Keys(*store, Family::kDedup, prefix, start, reverse, 100000), want)
        << "prefix " << absl::CHexEscape(prefix) << " start " << absl::CHexEscape(start)
        << (reverse ? " reverse" : " forward");
  }
  EXPECT_GT(checked, 200);  // most scans found keys
}

TEST_F(store_test, ScanSeesASnapshotAndCallbackMayWrite) {
  std::unique_ptr<Store> store = OpenOrDie();
  ASSERT_NE(store, nullptr);
  for (int i = 0; i < 3; ++i)
    ASSERT_TRUE(store->Put(Family::kKv, Join("ns", absl::StrCat(i)), "v").ok());
  int visited = 0;
  ASSERT_TRUE(store
                  ->Scan(Family::kKv, Join("ns", ""),
                         [&](absl::string_view key, absl::string_view) {
                           ++visited;
                           // Deleting ahead and adding behind does not change what we see.
                           EXPECT_TRUE(store->Delete(Family::kKv, Join("ns", "2")).ok());
                           EXPECT_TRUE(store->Put(Family::kKv, Join("ns", "9"), "new").ok());
                           return true;
                         })
                  .ok());
  EXPECT_EQ(visited, 3);
  EXPECT_EQ(store->Count(Family::kKv, Join("ns", "")).value(), 3);  // 0, 1, 9
}

TEST_F(store_test, CountCountsKeysWithPrefix) {
  std::unique_ptr<Store> store = OpenOrDie();
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(store->Count(Family::kProcessed, "").value(), 0);
  for (int i = 0; i < 25; ++i) {
    ASSERT_TRUE(
        store->Put(Family::kProcessed, Join("Okta.SystemLog", absl::StrCat("evt", i)), "").ok());
  }
  for (int i = 0; i < 4; ++i) {
    ASSERT_TRUE(
        store->Put(Family::kProcessed, Join("AWS.CloudTrail", absl::StrCat("evt", i)), "").ok());
  }
  ASSERT_TRUE(store->Delete(Family::kProcessed, Join("Okta.SystemLog", "evt3")).ok());
  EXPECT_EQ(store->Count(Family::kProcessed, Join("Okta.SystemLog", "")).value(), 24);
  EXPECT_EQ(store->Count(Family::kProcessed, Join("AWS.CloudTrail", "")).value(), 4);
  EXPECT_EQ(store->Count(Family::kProcessed, "").value(), 28);
  EXPECT_EQ(store->Count(Family::kAudit, "").value(), 0);
  EXPECT_EQ(store->Count(static_cast<Family>(-1), "").status().code(),
            absl::StatusCode::kInvalidArgument);
}

// --- Sequences ------------------------------------------------------------------

TEST_F(store_test, NextSequenceIsMonotonicAcrossReopen) {
  std::unique_ptr<Store> store = OpenOrDie();
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(store->LastSequence("alert_seq").value(), 0u);
  EXPECT_EQ(store->NextSequence("alert_seq").value(), 1u);
  EXPECT_EQ(store->NextSequence("alert_seq").value(), 2u);
  EXPECT_EQ(store->NextSequence("alert_seq", 10).value(), 3u);  // 3..12
  EXPECT_EQ(store->NextSequence("audit_seq").value(), 1u);      // counters are independent
  EXPECT_EQ(store->LastSequence("alert_seq").value(), 12u);
  EXPECT_EQ(store->NextSequence("alert_seq", 0).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store->NextSequence("").status().code(), absl::StatusCode::kInvalidArgument);
  ASSERT_TRUE(store->Close().ok());

  store = OpenOrDie();
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(store->LastSequence("alert_seq").value(), 12u);
  EXPECT_EQ(store->NextSequence("alert_seq").value(), 13u);
  EXPECT_EQ(store->NextSequence("audit_seq").value(), 2u);
  // The counter is an ordinary kMeta record, as documented.
  EXPECT_EQ(store->Get(Family::kMeta, absl::StrCat(kSequenceKeyPrefix, "alert_seq")).value(),
            EncodeUint64(13));
}

TEST_F(store_test, NextSequenceIsUniqueUnderConcurrency) {
  StoreOptions options;
  options.sync_writes = false;  // keep the test fast; uniqueness does not depend on it
  std::unique_ptr<Store> store = OpenOrDie(options);
  ASSERT_NE(store, nullptr);
  constexpr int kThreads = 4, kPerThread = 50;
  std::vector<std::vector<uint64_t>> got(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        absl::StatusOr<uint64_t> seq = store->NextSequence("s");
        ASSERT_TRUE(seq.ok()) << seq.status();
        got[t].push_back(*seq);
      }
    });
  }
  for (std::thread& t : threads) t.join();
  std::set<uint64_t> all;
  for (const auto& v : got) {
    EXPECT_TRUE(std::is_sorted(v.begin(), v.end()));
    all.insert(v.begin(), v.end());
  }
  EXPECT_EQ(all.size(), static_cast<size_t>(kThreads * kPerThread));
  EXPECT_EQ(*all.begin(), 1u);
  EXPECT_EQ(*all.rbegin(), static_cast<uint64_t>(kThreads * kPerThread));
}

TEST_F(store_test, WriteWithSequenceIsAllOrNothing) {
  std::unique_ptr<Store> store = OpenOrDie();
  ASSERT_NE(store, nullptr);
  auto put_changes = [](uint64_t first, WriteBatch& batch) {
    for (uint64_t s = first; s < first + 2; ++s) batch.Put(Family::kAlertLog, SequenceKey(s), "c");
    return absl::OkStatus();
  };
  EXPECT_EQ(store->WriteWithSequence("alert_seq", 2, put_changes).value(), 1u);

  // A failing fill: no records, no counter advance.
  absl::StatusOr<uint64_t> failed =
      store->WriteWithSequence("alert_seq", 1, [](uint64_t first, WriteBatch& batch) {
        batch.Put(Family::kAlertLog, SequenceKey(first), "c");
        return absl::AbortedError("rule raised");
      });
  EXPECT_EQ(failed.status().code(), absl::StatusCode::kAborted);
  EXPECT_TRUE(absl::IsNotFound(store->Get(Family::kAlertLog, SequenceKey(3)).status()));
  // A failing write (invalid family): likewise.
  failed = store->WriteWithSequence("alert_seq", 1, [](uint64_t first, WriteBatch& batch) {
    batch.Put(Family::kAlertLog, SequenceKey(first), "c");
    batch.Put(static_cast<Family>(77), "k", "v");
    return absl::OkStatus();
  });
  EXPECT_EQ(failed.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::IsNotFound(store->Get(Family::kAlertLog, SequenceKey(3)).status()));
  EXPECT_EQ(store->LastSequence("alert_seq").value(), 2u);

  EXPECT_EQ(store->WriteWithSequence("alert_seq", 2, put_changes).value(), 3u);
  EXPECT_EQ(store->Count(Family::kAlertLog, "").value(), 4);
}

TEST_F(store_test, MalformedCounterIsDataLoss) {
  std::unique_ptr<Store> store = OpenOrDie();
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->Put(Family::kMeta, absl::StrCat(kSequenceKeyPrefix, "s"), "short").ok());
  EXPECT_EQ(store->NextSequence("s").status().code(), absl::StatusCode::kDataLoss);
}

// --- Persistence, Open and its errors ---------------------------------------------

TEST_F(store_test, DataPersistsAcrossReopen) {
  for (bool sync : {true, false}) {
    SCOPED_TRACE(sync ? "sync" : "no sync");
    StoreOptions options;
    options.sync_writes = sync;
    std::unique_ptr<Store> store = OpenOrDie(options);
    ASSERT_NE(store, nullptr);
    const std::string id = sync ? "sync-rule" : "async-rule";
    ASSERT_TRUE(store->PutMessage(Family::kRules, id, SampleRule(id, 1)).ok());
    ASSERT_TRUE(store->Put(Family::kTokens, id, "token").ok());
    ASSERT_TRUE(store->Flush().ok());
    ASSERT_TRUE(store->Put(Family::kSources, id, "after flush, only in the WAL").ok());
    store.reset();  // the destructor closes

    store = OpenOrDie(options);
    ASSERT_NE(store, nullptr);
    EXPECT_EQ(store->GetMessage<v1::Rule>(Family::kRules, id)->display_name(), "Root login");
    EXPECT_EQ(store->Get(Family::kTokens, id).value(), "token");
    EXPECT_EQ(store->Get(Family::kSources, id).value(), "after flush, only in the WAL");
    EXPECT_EQ(store->dir(), dir_);
  }
}

// Deleting keys leaves tombstones and frees nothing; compacting their range
// drops both, and FamilyDiskBytes sees the files shrink.
TEST_F(store_test, WithoutTheWriteAheadLogWritesReachNoLogFile) {
  StoreOptions options;
  options.write_ahead_log = false;
  std::unique_ptr<Store> store = OpenOrDie(options);
  ASSERT_NE(store, nullptr);
  auto log_bytes = [&] {
    uintmax_t bytes = 0;
    for (const fs::directory_entry& e : fs::directory_iterator(dir_)) {
      if (e.path().extension() == ".log") bytes += e.file_size();
    }
    return bytes;
  };
  const uintmax_t before = log_bytes();
  for (int i = 0; i < 100; ++i) {
    WriteBatch b;
    b.Put(Family::kAlerts, absl::StrCat("a", i), std::string(1000, 'x'));
    ASSERT_TRUE(store->Write(std::move(b)).ok());
  }
  EXPECT_EQ(log_bytes(), before);  // 100 KB written, none of it logged
  absl::StatusOr<std::string> got = store->Get(Family::kAlerts, "a99");
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->size(), 1000u);
}

TEST_F(store_test, CompactRangeReclaimsTheSpaceOfDeletedKeys) {
  std::unique_ptr<Store> store = OpenOrDie();
  ASSERT_NE(store, nullptr);
  std::mt19937_64 random(7);
  auto noise = [&random](size_t n) {  // incompressible bytes
    std::string s(n, '\0');
    for (char& c : s) c = static_cast<char>(random());
    return s;
  };
  for (int batch = 0; batch < 4; ++batch) {
    WriteBatch b;
    for (int i = 0; i < 500; ++i) {
      const int n = batch * 500 + i;
      b.Put(Family::kKv, absl::StrFormat("%s%05d", n % 4 == 0 ? "keep" : "drop", n), noise(1024));
    }
    ASSERT_TRUE(store->Write(std::move(b)).ok());
  }
  ASSERT_TRUE(store->Flush().ok());
  const uint64_t before = store->FamilyDiskBytes(Family::kKv).value();
  EXPECT_GT(before, uint64_t{2000} * 1024);
  EXPECT_EQ(store->FamilyDiskBytes(Family::kAudit).value(), 0u);

  WriteBatch deletes;
  ASSERT_TRUE(store
                  ->Scan(Family::kKv, "drop",
                         [&](absl::string_view key, absl::string_view) {
                           deletes.Delete(Family::kKv, key);
                           return true;
                         })
                  .ok());
  ASSERT_EQ(deletes.Count(), 1500u);
  ASSERT_TRUE(store->Write(std::move(deletes)).ok());
  ASSERT_TRUE(store->Flush().ok());
  EXPECT_GE(store->FamilyDiskBytes(Family::kKv).value(), before) << "deletes alone free nothing";

  ASSERT_TRUE(store->CompactRange(Family::kKv, "drop", PrefixSuccessor("drop")).ok());
  const uint64_t after = store->FamilyDiskBytes(Family::kKv).value();
  EXPECT_LT(after, before * 35 / 100) << "before " << before << " after " << after;
  EXPECT_EQ(store->Count(Family::kKv, "drop").value(), 0);
  EXPECT_EQ(store->Count(Family::kKv, "keep").value(), 500);
  // Empty bounds: the whole family.
  ASSERT_TRUE(store->CompactRange(Family::kKv, "", "").ok());
  EXPECT_EQ(store->Count(Family::kKv, "keep").value(), 500);

  EXPECT_EQ(store->FamilyDiskBytes(static_cast<Family>(99)).status().code(),
            absl::StatusCode::kInvalidArgument);
  ASSERT_TRUE(store->Close().ok());
  EXPECT_EQ(store->CompactRange(Family::kKv, "", "").code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(store->FamilyDiskBytes(Family::kKv).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST_F(store_test, BufferedWritesAreLoggedAndPersist) {
  std::unique_ptr<Store> store = OpenOrDie();
  ASSERT_NE(store, nullptr);
  WriteBatch buffered;
  buffered.Put(Family::kKv, "counter", "1");
  ASSERT_TRUE(store->Write(std::move(buffered), Store::Durability::kBuffered).ok());
  EXPECT_EQ(store->Get(Family::kKv, "counter").value(), "1");  // Visible at once.
  WriteBatch durable;  // Its fsync covers the buffered write before it.
  durable.Put(Family::kAlerts, "a", "x");
  ASSERT_TRUE(store->Write(std::move(durable)).ok());
  store.reset();
  store = OpenOrDie();
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(store->Get(Family::kKv, "counter").value(), "1");
  EXPECT_EQ(store->Get(Family::kAlerts, "a").value(), "x");
}

TEST_F(store_test, NewStoreRecordsSchemaVersion) {
  std::unique_ptr<Store> store = OpenOrDie();
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(store->Get(Family::kMeta, kSchemaVersionKey).value(), "1");
  EXPECT_TRUE(fs::exists(dir_ + "/CURRENT"));
}

TEST_F(store_test, SecondOpenOfLockedDirectoryIsFailedPrecondition) {
  std::unique_ptr<Store> first = OpenOrDie();
  ASSERT_NE(first, nullptr);
  absl::StatusOr<std::unique_ptr<Store>> second = Store::Open(dir_, {});
  ASSERT_EQ(second.status().code(), absl::StatusCode::kFailedPrecondition) << second.status();
  EXPECT_THAT(std::string(second.status().message()), HasSubstr(dir_ + "/LOCK"));
  EXPECT_THAT(std::string(second.status().message()), HasSubstr("in use"));
  // The first store is unaffected, and the lock goes with it.
  EXPECT_TRUE(first->Put(Family::kRules, "r", "v").ok());
  ASSERT_TRUE(first->Close().ok());
  EXPECT_NE(OpenOrDie(), nullptr);
}

TEST_F(store_test, GarbageCurrentFileIsDataLoss) {
  ASSERT_NE(OpenOrDie(), nullptr);  // create, then close
  WriteFile(dir_ + "/CURRENT", "this is not a manifest name");
  absl::StatusOr<std::unique_ptr<Store>> store = Store::Open(dir_, {});
  ASSERT_EQ(store.status().code(), absl::StatusCode::kDataLoss) << store.status();
  EXPECT_THAT(std::string(store.status().message()), HasSubstr(dir_ + " is corrupted"));
}

TEST_F(store_test, CurrentNamingAMissingManifestIsDataLoss) {
  ASSERT_NE(OpenOrDie(), nullptr);
  WriteFile(dir_ + "/CURRENT", "MANIFEST-999999\n");
  absl::StatusOr<std::unique_ptr<Store>> store = Store::Open(dir_, {});
  ASSERT_EQ(store.status().code(), absl::StatusCode::kDataLoss) << store.status();
  EXPECT_THAT(std::string(store.status().message()), HasSubstr("is corrupted"));
}

TEST_F(store_test, GarbageManifestIsDataLoss) {
  {
    std::unique_ptr<Store> store = OpenOrDie();
    ASSERT_NE(store, nullptr);
    ASSERT_TRUE(store->Put(Family::kRules, "r", "v").ok());
  }
  const std::string manifest = dir_ + "/" + ReadFile(dir_ + "/CURRENT").substr(0, 15);
  ASSERT_TRUE(absl::StartsWith(manifest, dir_ + "/MANIFEST-")) << manifest;
  const size_t size = ReadFile(manifest).size();
  ASSERT_GT(size, 0u);
  WriteFile(manifest, std::string(size, '\x5a'));
  absl::StatusOr<std::unique_ptr<Store>> store = Store::Open(dir_, {});
  ASSERT_EQ(store.status().code(), absl::StatusCode::kDataLoss) << store.status();
  EXPECT_THAT(std::string(store.status().message()), HasSubstr("is corrupted"));
}

TEST_F(store_test, RocksDBFilesWithoutCurrentAreDataLoss) {
  ASSERT_NE(OpenOrDie(), nullptr);
  ASSERT_TRUE(fs::remove(dir_ + "/CURRENT"));
  absl::StatusOr<std::unique_ptr<Store>> store = Store::Open(dir_, {});
  ASSERT_EQ(store.status().code(), absl::StatusCode::kDataLoss) << store.status();
  EXPECT_THAT(std::string(store.status().message()), HasSubstr("no CURRENT"));
}

TEST_F(store_test, RegularFileIsInvalidArgument) {
  WriteFile(dir_, "I am a file");
  absl::StatusOr<std::unique_ptr<Store>> store = Store::Open(dir_, {});
  ASSERT_EQ(store.status().code(), absl::StatusCode::kInvalidArgument) << store.status();
  EXPECT_THAT(std::string(store.status().message()), HasSubstr("is not a directory"));
  EXPECT_EQ(ReadFile(dir_), "I am a file");
}

TEST_F(store_test, ForeignDirectoryIsInvalidArgument) {
  fs::create_directories(dir_);
  WriteFile(dir_ + "/notes.txt", "mine");
  absl::StatusOr<std::unique_ptr<Store>> store = Store::Open(dir_, {});
  ASSERT_EQ(store.status().code(), absl::StatusCode::kInvalidArgument) << store.status();
  EXPECT_THAT(std::string(store.status().message()), HasSubstr("not a pantherd store"));
  EXPECT_FALSE(fs::exists(dir_ + "/CURRENT"));  // nothing was written
}

TEST_F(store_test, PlainRocksDBDatabaseIsInvalidArgument) {
  rocksdb::Options options;
  options.create_if_missing = true;
  rocksdb::DB* db = nullptr;
  ASSERT_TRUE(rocksdb::DB::Open(options, dir_, &db).ok());
  ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), "k", "v").ok());
  ASSERT_TRUE(db->Close().ok());
  delete db;
  absl::StatusOr<std::unique_ptr<Store>> store = Store::Open(dir_, {});
  ASSERT_EQ(store.status().code(), absl::StatusCode::kInvalidArgument) << store.status();
  EXPECT_THAT(std::string(store.status().message()), HasSubstr("not a pantherd store"));
}

TEST_F(store_test, MissingDirectoryWithoutCreateIsNotFound) {
  StoreOptions options;
  options.create_if_missing = false;
  absl::StatusOr<std::unique_ptr<Store>> store = Store::Open(dir_, options);
  EXPECT_EQ(store.status().code(), absl::StatusCode::kNotFound) << store.status();
  EXPECT_FALSE(fs::exists(dir_));
  fs::create_directories(dir_);
  EXPECT_EQ(Store::Open(dir_, options).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(Store::Open("", {}).status().code(), absl::StatusCode::kInvalidArgument);

  // Nested directories are created when allowed, and then reopen without create.
  dir_ = root_ + "/a/b/c";
  ASSERT_NE(OpenOrDie(), nullptr);
  EXPECT_NE(OpenOrDie(options), nullptr);
}

TEST_F(store_test, NewerSchemaVersionIsRefused) {
  {
    std::unique_ptr<Store> store = OpenOrDie();
    ASSERT_NE(store, nullptr);
    ASSERT_TRUE(store->Put(Family::kMeta, kSchemaVersionKey, "2").ok());
  }
  absl::StatusOr<std::unique_ptr<Store>> store = Store::Open(dir_, {});
  ASSERT_EQ(store.status().code(), absl::StatusCode::kFailedPrecondition) << store.status();
  EXPECT_THAT(std::string(store.status().message()), HasSubstr("schema version 2"));
  EXPECT_THAT(std::string(store.status().message()), HasSubstr("newer pantherd"));
  // The refusal released the lock: the same error again, not "in use".
  EXPECT_EQ(Store::Open(dir_, {}).status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(Store::Open(dir_, {}).status().message()), HasSubstr("schema version"));
}

TEST_F(store_test, MalformedSchemaVersionIsDataLoss) {
  {
    std::unique_ptr<Store> store = OpenOrDie();
    ASSERT_NE(store, nullptr);
    ASSERT_TRUE(store->Put(Family::kMeta, kSchemaVersionKey, "one").ok());
  }
  EXPECT_EQ(Store::Open(dir_, {}).status().code(), absl::StatusCode::kDataLoss);
}

}  // namespace
}  // namespace pantherd::store
