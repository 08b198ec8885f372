// Stored analysis items (rules, globals, data models) and their versions.
//
// RuleStore is the typed layer over the store's `rules` and `rule_versions`
// families. Every change is a new version: an upload whose content differs,
// an enable/disable, a deletion. The current version of each live item sits in
// `rules` (with its files, so the live rule set can be rebuilt at start);
// every version, deletions included, sits in `rule_versions`. Each change is
// one atomic WriteBatch, so a crash never leaves an item half-updated.
//
//   RuleStore rules(store);
//   PANTHERD_ASSIGN_OR_RETURN(CommitResult r, rules.Commit(items, "alice", absl::Now()));
//
// Thread-safe: writers are serialised by an internal mutex (version numbers are
// read-modify-write); readers run concurrently.
#ifndef PANTHERD_ENGINE_RULE_STORE_H_
#define PANTHERD_ENGINE_RULE_STORE_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "pantherd/v1/rules.pb.h"
#include "store/store.h"

namespace pantherd::engine {

struct CommitResult {
  // Items written as new versions, with version, author and times filled and
  // without their files.
  std::vector<v1::Rule> stored;
  // Items whose content and enabled flag were already current.
  std::vector<std::string> unchanged_ids;
};

class RuleStore {
 public:
  // `store` is not owned and must outlive this object.
  explicit RuleStore(store::Store* store) : store_(store) {}

  // The SHA-256 (hex) of an item's files, over each file's path and content in
  // order; independent of metadata.
  static std::string ContentSha256(const v1::Rule& item);

  // Stores each item (metadata and files, as produced by the spec loader) as a
  // new version unless its content hash and enabled flag equal the current
  // version's. All of it in one atomic write. Errors: those of the store;
  // InvalidArgument for an item without an id or type.
  absl::StatusOr<CommitResult> Commit(std::vector<v1::Rule> items, absl::string_view author,
                                      absl::Time now);

  // The current version of a live item, with its files. NotFound if it never
  // existed or was deleted.
  absl::StatusOr<v1::Rule> Get(absl::string_view id) const;

  // As Get for a live item. For a deleted one: its newest recorded version
  // (the deletion, with `deleted` set), carrying the files of the last
  // version that had them. NotFound if the item never existed.
  absl::StatusOr<v1::Rule> GetIncludingDeleted(absl::string_view id) const;

  // Every version of an item, newest first (deletions included). NotFound if
  // the item never existed.
  absl::StatusOr<std::vector<v1::RuleVersion>> History(absl::string_view id) const;

  // Every live item with its files, ordered by id.
  absl::StatusOr<std::vector<v1::Rule>> ListCurrent() const;

  // Every live item without its files, ordered by id: one immutable snapshot
  // shared by every caller until the next change through this RuleStore
  // (which the following call sees), so that a reader on the ingest path does
  // not scan the stored items and their sources per batch. Errors: those of
  // the store.
  absl::StatusOr<std::shared_ptr<const std::vector<v1::Rule>>> LiveSnapshot() const;

  // Records a deletion as a new version and removes the item from the live
  // items. Returns that version. NotFound if the item is not live.
  absl::StatusOr<int64_t> Delete(absl::string_view id, absl::string_view author, absl::Time now);

  // Records a version with `enabled` changed (files unchanged). Returns the
  // item at its new version (or unchanged when the flag already had that
  // value). NotFound if not live; InvalidArgument for a global (always on).
  // Enabling also clears the rule's quarantine.
  absl::StatusOr<v1::Rule> SetEnabled(absl::string_view id, bool enabled, absl::string_view author,
                                      absl::Time now);

  // Quarantines a rule: records a version that is disabled and carries
  // `quarantine` (files unchanged); SetEnabled(id, true) or an upload of the
  // rule lifts it. Returns the item at its new version. NotFound if not
  // live; InvalidArgument for an item that is not a rule;
  // FailedPrecondition when it is already disabled (nothing to quarantine).
  absl::StatusOr<v1::Rule> Quarantine(absl::string_view id, const v1::RuleQuarantine& quarantine,
                                      absl::string_view author, absl::Time now);

 private:
  // The newest version number recorded for `id` (deletions included), 0 when
  // none.
  absl::StatusOr<int64_t> LatestVersion(absl::string_view id) const;

  // Writes one change and drops the live snapshot.
  absl::Status WriteChange(store::WriteBatch batch);

  store::Store* store_;
  absl::Mutex write_mu_;
  mutable absl::Mutex snapshot_mu_;
  // Changes written so far; a snapshot is kept only for the generation it
  // was built in.
  uint64_t generation_ ABSL_GUARDED_BY(snapshot_mu_) = 0;
  mutable std::shared_ptr<const std::vector<v1::Rule>> snapshot_ ABSL_GUARDED_BY(snapshot_mu_);
};

}  // namespace pantherd::engine

#endif  // PANTHERD_ENGINE_RULE_STORE_H_
