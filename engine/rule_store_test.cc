#include "engine/rule_store.h"

#include <filesystem>

#include "absl/strings/str_cat.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace pantherd::engine {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

v1::Rule MakeRule(const std::string& id, const std::string& py, bool enabled = true) {
  v1::Rule r;
  r.set_id(id);
  r.set_type(v1::ANALYSIS_TYPE_RULE);
  r.set_enabled(enabled);
  v1::AnalysisFile* spec = r.add_files();
  spec->set_path(id + ".yml");
  spec->set_content("RuleID: " + id);
  v1::AnalysisFile* code = r.add_files();
  code->set_path(id + ".py");
  code->set_content(py);
  return r;
}

class RuleStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (std::filesystem::temp_directory_path() / "rule-store-XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    Reopen();
  }
  void TearDown() override {
    rules_.reset();
    store_.reset();
    std::filesystem::remove_all(dir_);
  }
  void Reopen() {
    rules_.reset();
    store_.reset();
    absl::StatusOr<std::unique_ptr<store::Store>> s = store::Store::Open(dir_, {});
    ASSERT_TRUE(s.ok()) << s.status();
    store_ = std::move(*s);
    rules_ = std::make_unique<RuleStore>(store_.get());
  }

  std::string dir_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<RuleStore> rules_;
  absl::Time t0_ = absl::FromUnixSeconds(1700000000);
};

TEST_F(RuleStoreTest, VersionsAdvanceOnlyOnChangeAndSurviveReopen) {
  absl::StatusOr<CommitResult> first =
      rules_->Commit({MakeRule("A", "def rule(e): return True")}, "alice", t0_);
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_EQ(first->stored.size(), 1u);
  EXPECT_EQ(first->stored[0].version(), 1);
  EXPECT_EQ(first->stored[0].author(), "alice");
  EXPECT_EQ(first->stored[0].files_size(), 0);  // Summaries carry no files.

  absl::StatusOr<CommitResult> same =
      rules_->Commit({MakeRule("A", "def rule(e): return True")}, "bob", t0_);
  ASSERT_TRUE(same.ok());
  EXPECT_TRUE(same->stored.empty());
  EXPECT_THAT(same->unchanged_ids, ElementsAre("A"));

  absl::StatusOr<CommitResult> changed =
      rules_->Commit({MakeRule("A", "def rule(e): return False")}, "bob", t0_ + absl::Hours(1));
  ASSERT_TRUE(changed.ok());
  ASSERT_EQ(changed->stored.size(), 1u);
  EXPECT_EQ(changed->stored[0].version(), 2);

  Reopen();
  absl::StatusOr<v1::Rule> got = rules_->Get("A");
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->version(), 2);
  EXPECT_EQ(got->author(), "bob");
  EXPECT_EQ(got->files(1).content(), "def rule(e): return False");
  EXPECT_EQ(got->created_time().seconds(), 1700000000);  // Creation time is kept.
  absl::StatusOr<std::vector<v1::RuleVersion>> history = rules_->History("A");
  ASSERT_TRUE(history.ok());
  ASSERT_EQ(history->size(), 2u);
  EXPECT_EQ((*history)[0].version(), 2);
  EXPECT_EQ((*history)[1].author(), "alice");
  EXPECT_NE((*history)[0].content_sha256(), (*history)[1].content_sha256());
}

TEST_F(RuleStoreTest, HashCoversPathsAndContents) {
  v1::Rule a = MakeRule("A", "x");
  v1::Rule b = MakeRule("A", "x");
  EXPECT_EQ(RuleStore::ContentSha256(a), RuleStore::ContentSha256(b));
  b.mutable_files(1)->set_path("other.py");
  EXPECT_NE(RuleStore::ContentSha256(a), RuleStore::ContentSha256(b));
  EXPECT_EQ(RuleStore::ContentSha256(a).size(), 64u);
}

TEST_F(RuleStoreTest, DeleteKeepsHistoryAndNumbersContinue) {
  ASSERT_TRUE(rules_->Commit({MakeRule("A", "1"), MakeRule("B", "1")}, "alice", t0_).ok());
  absl::StatusOr<int64_t> deleted = rules_->Delete("A", "bob", t0_);
  ASSERT_TRUE(deleted.ok()) << deleted.status();
  EXPECT_EQ(*deleted, 2);
  EXPECT_TRUE(absl::IsNotFound(rules_->Get("A").status()));
  EXPECT_TRUE(absl::IsNotFound(rules_->Delete("A", "bob", t0_).status()));
  absl::StatusOr<std::vector<v1::Rule>> live = rules_->ListCurrent();
  ASSERT_TRUE(live.ok());
  ASSERT_EQ(live->size(), 1u);
  EXPECT_EQ((*live)[0].id(), "B");

  // Re-creating continues the numbering after the deletion.
  absl::StatusOr<CommitResult> again = rules_->Commit({MakeRule("A", "1")}, "carol", t0_);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->stored[0].version(), 3);
  absl::StatusOr<std::vector<v1::RuleVersion>> history = rules_->History("A");
  ASSERT_TRUE(history.ok());
  ASSERT_EQ(history->size(), 3u);
  EXPECT_TRUE((*history)[1].deleted());
}

// A deleted item stays readable with GetIncludingDeleted: its deletion
// record, with the files of the version before it.
TEST_F(RuleStoreTest, GetIncludingDeletedReturnsTheDeletion) {
  ASSERT_TRUE(rules_->Commit({MakeRule("A", "1")}, "alice", t0_).ok());
  absl::StatusOr<v1::Rule> live = rules_->GetIncludingDeleted("A");
  ASSERT_TRUE(live.ok()) << live.status();
  EXPECT_FALSE(live->deleted());
  EXPECT_EQ(live->version(), 1);
  ASSERT_TRUE(rules_->Delete("A", "bob", t0_).ok());
  EXPECT_TRUE(absl::IsNotFound(rules_->Get("A").status()));
  absl::StatusOr<v1::Rule> gone = rules_->GetIncludingDeleted("A");
  ASSERT_TRUE(gone.ok()) << gone.status();
  EXPECT_TRUE(gone->deleted());
  EXPECT_EQ(gone->version(), 2);
  EXPECT_EQ(gone->author(), "bob");
  EXPECT_EQ(gone->files_size(), live->files_size());
  EXPECT_GT(gone->files_size(), 0);
  EXPECT_TRUE(absl::IsNotFound(rules_->GetIncludingDeleted("Never").status()));
}

TEST_F(RuleStoreTest, EnableDisableIsAVersion) {
  ASSERT_TRUE(rules_->Commit({MakeRule("A", "1")}, "alice", t0_).ok());
  absl::StatusOr<v1::Rule> off = rules_->SetEnabled("A", false, "bob", t0_);
  ASSERT_TRUE(off.ok());
  EXPECT_FALSE(off->enabled());
  EXPECT_EQ(off->version(), 2);
  absl::StatusOr<v1::Rule> again = rules_->SetEnabled("A", false, "bob", t0_);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->version(), 2);  // No change, no version.
  EXPECT_TRUE(absl::IsNotFound(rules_->SetEnabled("Z", true, "bob", t0_).status()));

  v1::Rule global = MakeRule("helpers", "x");
  global.set_type(v1::ANALYSIS_TYPE_GLOBAL);
  ASSERT_TRUE(rules_->Commit({global}, "alice", t0_).ok());
  absl::Status s = rules_->SetEnabled("helpers", false, "bob", t0_).status();
  EXPECT_TRUE(absl::IsInvalidArgument(s));
  EXPECT_THAT(s.message(), HasSubstr("global"));
}

TEST_F(RuleStoreTest, QuarantineDisablesWithReasonUntilEnabledAgain) {
  ASSERT_TRUE(rules_->Commit({MakeRule("A", "def rule(e): return True")}, "alice", t0_).ok());
  v1::RuleQuarantine why;
  why.set_reason("3 events ended its worker within 1h");
  why.set_failures(3);
  why.set_last_event_id("evt-9");
  why.set_last_failure_type("WorkerCrashed");
  absl::StatusOr<v1::Rule> q = rules_->Quarantine("A", why, "pantherd", t0_ + absl::Minutes(1));
  ASSERT_TRUE(q.ok()) << q.status();
  EXPECT_FALSE(q->enabled());
  EXPECT_EQ(q->version(), 2);
  EXPECT_EQ(q->author(), "pantherd");

  Reopen();  // Stored, with its reason.
  absl::StatusOr<v1::Rule> got = rules_->Get("A");
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_FALSE(got->enabled());
  EXPECT_EQ(got->quarantine().last_event_id(), "evt-9");
  EXPECT_EQ(got->quarantine().failures(), 3);
  EXPECT_EQ(got->files_size(), 2);  // The files stay.
  // Already disabled: nothing to quarantine.
  EXPECT_TRUE(absl::IsFailedPrecondition(
      rules_->Quarantine("A", why, "pantherd", t0_ + absl::Minutes(2)).status()));

  absl::StatusOr<v1::Rule> enabled = rules_->SetEnabled("A", true, "bob", t0_ + absl::Minutes(3));
  ASSERT_TRUE(enabled.ok()) << enabled.status();
  EXPECT_TRUE(enabled->enabled());
  EXPECT_FALSE(enabled->has_quarantine());
  EXPECT_EQ(enabled->version(), 3);

  // An upload of the rule lifts a quarantine too (the upload carries none).
  ASSERT_TRUE(rules_->Quarantine("A", why, "pantherd", t0_ + absl::Minutes(4)).ok());
  ASSERT_TRUE(
      rules_->Commit({MakeRule("A", "def rule(e): return True")}, "alice", t0_ + absl::Minutes(5))
          .ok());
  got = rules_->Get("A");
  ASSERT_TRUE(got.ok());
  EXPECT_TRUE(got->enabled());
  EXPECT_FALSE(got->has_quarantine());
  EXPECT_TRUE(absl::IsNotFound(rules_->Quarantine("B", why, "pantherd", t0_).status()));
}

TEST_F(RuleStoreTest, UnknownIdIsNotFoundWithTheId) {
  absl::Status s = rules_->Get("Nope").status();
  EXPECT_TRUE(absl::IsNotFound(s));
  EXPECT_THAT(s.message(), HasSubstr("\"Nope\""));
  EXPECT_TRUE(absl::IsNotFound(rules_->History("Nope").status()));
}

}  // namespace
}  // namespace pantherd::engine

namespace pantherd::engine {
namespace {

// The ingest path's view: one shared snapshot until a change, then the change.
TEST_F(RuleStoreTest, LiveSnapshotIsSharedUntilAChangeAndSeesEveryKindOfChange) {
  ASSERT_TRUE(rules_->Commit({MakeRule("a", "1"), MakeRule("b", "1")}, "alice", t0_).ok());
  auto first = rules_->LiveSnapshot();
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_EQ((*first)->size(), 2u);
  EXPECT_EQ((**first)[0].files_size(), 0);  // no sources in the snapshot
  auto again = rules_->LiveSnapshot();
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(first->get(), again->get());  // no scan: the same snapshot

  auto versions = [&](const std::shared_ptr<const std::vector<v1::Rule>>& s) {
    std::vector<std::string> out;
    for (const v1::Rule& r : *s) {
      out.push_back(absl::StrCat(r.id(), ":", r.version(), r.enabled() ? "" : ":off"));
    }
    return out;
  };
  ASSERT_TRUE(rules_->Commit({MakeRule("a", "2")}, "alice", t0_).ok());
  EXPECT_THAT(versions(*rules_->LiveSnapshot()), ElementsAre("a:2", "b:1"));
  ASSERT_TRUE(rules_->SetEnabled("b", false, "alice", t0_).ok());
  EXPECT_THAT(versions(*rules_->LiveSnapshot()), ElementsAre("a:2", "b:2:off"));
  ASSERT_TRUE(rules_->Delete("a", "alice", t0_).ok());
  EXPECT_THAT(versions(*rules_->LiveSnapshot()), ElementsAre("b:2:off"));
  v1::RuleQuarantine q;
  q.set_reason("poison");
  ASSERT_TRUE(rules_->SetEnabled("b", true, "alice", t0_).ok());
  ASSERT_TRUE(rules_->Quarantine("b", q, "pantherd", t0_).ok());
  EXPECT_THAT(versions(*rules_->LiveSnapshot()), ElementsAre("b:4:off"));
  // An old snapshot its holder still uses is unchanged.
  EXPECT_EQ((*first)->size(), 2u);
}

}  // namespace
}  // namespace pantherd::engine
