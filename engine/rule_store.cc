#include "engine/rule_store.h"

#include <openssl/evp.h>

#include <optional>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/util/time_util.h"
#include "proto/base/status_macros.h"
#include "store/keys.h"

namespace pantherd::engine {
namespace {

using google::protobuf::util::TimeUtil;

google::protobuf::Timestamp ToProto(absl::Time t) {
  return TimeUtil::NanosecondsToTimestamp(absl::ToUnixNanos(t));
}

v1::RuleVersion VersionOf(const v1::Rule& rule) {
  v1::RuleVersion v;
  v.set_version(rule.version());
  v.set_author(rule.author());
  *v.mutable_created_time() = rule.updated_time();
  v.set_content_sha256(rule.content_sha256());
  v.set_deleted(rule.deleted());
  return v;
}

v1::Rule WithoutFiles(v1::Rule rule) {
  rule.clear_files();
  return rule;
}

}  // namespace

std::string RuleStore::ContentSha256(const v1::Rule& item) {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr);
  for (const v1::AnalysisFile& f : item.files()) {
    // Length-prefix both parts so that no two file lists hash alike.
    std::string header = absl::StrCat(f.path().size(), ":", f.path(), ":", f.content().size(), ":");
    EVP_DigestUpdate(ctx, header.data(), header.size());
    EVP_DigestUpdate(ctx, f.content().data(), f.content().size());
  }
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(ctx, digest, &len);
  EVP_MD_CTX_free(ctx);
  return absl::BytesToHexString(absl::string_view(reinterpret_cast<char*>(digest), len));
}

absl::StatusOr<int64_t> RuleStore::LatestVersion(absl::string_view id) const {
  int64_t latest = 0;
  absl::Status decode;
  PANTHERD_RETURN_IF_ERROR(store_->ReverseScan(
      store::Family::kRuleVersions, store::RuleVersionPrefix(id),
      [&](absl::string_view key, absl::string_view) {
        absl::StatusOr<store::RuleVersionKeyParts> parts = store::ParseRuleVersionKey(key);
        if (!parts.ok()) {
          decode = absl::DataLossError(
              absl::StrCat("bad rule version key for \"", id, "\": ", parts.status().message()));
        } else {
          latest = parts->version;
        }
        return false;  // The first key in reverse order is the newest.
      }));
  PANTHERD_RETURN_IF_ERROR(decode);
  return latest;
}

absl::StatusOr<CommitResult> RuleStore::Commit(std::vector<v1::Rule> items,
                                               absl::string_view author, absl::Time now) {
  absl::MutexLock lock(&write_mu_);
  CommitResult result;
  store::WriteBatch batch;
  for (v1::Rule& item : items) {
    if (item.id().empty() || item.type() == v1::ANALYSIS_TYPE_UNSPECIFIED) {
      return absl::InvalidArgumentError("an analysis item needs an id and a type");
    }
    item.set_content_sha256(ContentSha256(item));
    absl::StatusOr<v1::Rule> current = Get(item.id());
    if (current.ok() && current->content_sha256() == item.content_sha256() &&
        current->enabled() == item.enabled() && current->type() == item.type()) {
      result.unchanged_ids.push_back(item.id());
      continue;
    }
    if (!current.ok() && !absl::IsNotFound(current.status())) return current.status();
    PANTHERD_ASSIGN_OR_RETURN(int64_t latest, LatestVersion(item.id()));
    item.set_version(latest + 1);
    item.set_author(std::string(author));
    item.set_deleted(false);
    *item.mutable_updated_time() = ToProto(now);
    *item.mutable_created_time() = current.ok() ? current->created_time() : ToProto(now);
    batch.PutMessage(store::Family::kRules, item.id(), item);
    batch.PutMessage(store::Family::kRuleVersions, store::RuleVersionKey(item.id(), item.version()),
                     item);
    result.stored.push_back(WithoutFiles(item));
  }
  if (!batch.Empty()) PANTHERD_RETURN_IF_ERROR(WriteChange(std::move(batch)));
  return result;
}

absl::StatusOr<v1::Rule> RuleStore::Get(absl::string_view id) const {
  absl::StatusOr<v1::Rule> rule = store_->GetMessage<v1::Rule>(store::Family::kRules, id);
  if (absl::IsNotFound(rule.status())) {
    return absl::NotFoundError(absl::StrCat("no rule, global or data model with id \"", id, "\""));
  }
  return rule;
}

absl::StatusOr<v1::Rule> RuleStore::GetIncludingDeleted(absl::string_view id) const {
  absl::StatusOr<v1::Rule> live = Get(id);
  if (!absl::IsNotFound(live.status())) return live;
  std::optional<v1::Rule> newest;
  absl::Status parse;
  PANTHERD_RETURN_IF_ERROR(store_->ReverseScan(
      store::Family::kRuleVersions, store::RuleVersionPrefix(id),
      [&](absl::string_view, absl::string_view value) {
        v1::Rule rule;
        if (!rule.ParseFromArray(value.data(), static_cast<int>(value.size()))) {
          parse = absl::DataLossError(absl::StrCat("stored version of \"", id, "\" is unreadable"));
          return false;
        }
        if (!newest.has_value()) {
          newest = std::move(rule);
          return newest->files_size() == 0;  // A deletion: look on for the files.
        }
        if (rule.files_size() == 0) return true;
        *newest->mutable_files() = std::move(*rule.mutable_files());
        return false;
      }));
  PANTHERD_RETURN_IF_ERROR(parse);
  if (!newest.has_value()) return live.status();
  return *std::move(newest);
}

absl::StatusOr<std::vector<v1::RuleVersion>> RuleStore::History(absl::string_view id) const {
  std::vector<v1::RuleVersion> history;
  absl::Status parse;
  PANTHERD_RETURN_IF_ERROR(store_->ReverseScan(
      store::Family::kRuleVersions, store::RuleVersionPrefix(id),
      [&](absl::string_view key, absl::string_view value) {
        v1::Rule rule;
        if (!rule.ParseFromArray(value.data(), static_cast<int>(value.size()))) {
          parse = absl::DataLossError(absl::StrCat("stored version of \"", id, "\" is unreadable"));
          return false;
        }
        history.push_back(VersionOf(rule));
        return true;
      }));
  PANTHERD_RETURN_IF_ERROR(parse);
  if (history.empty()) {
    return absl::NotFoundError(absl::StrCat("no rule, global or data model with id \"", id, "\""));
  }
  return history;
}

absl::Status RuleStore::WriteChange(store::WriteBatch batch) {
  absl::Status written = store_->Write(std::move(batch));
  // Even after a failure: what is stored may have changed.
  absl::MutexLock lock(&snapshot_mu_);
  ++generation_;
  snapshot_.reset();
  return written;
}

absl::StatusOr<std::shared_ptr<const std::vector<v1::Rule>>> RuleStore::LiveSnapshot() const {
  uint64_t generation;
  {
    absl::MutexLock lock(&snapshot_mu_);
    if (snapshot_ != nullptr) return snapshot_;
    generation = generation_;
  }
  // Built outside the lock; kept only if no change landed meanwhile (a
  // change that did sees a newer generation, and the next call scans again).
  PANTHERD_ASSIGN_OR_RETURN(std::vector<v1::Rule> items, ListCurrent());
  for (v1::Rule& item : items) item.clear_files();
  auto built = std::make_shared<const std::vector<v1::Rule>>(std::move(items));
  absl::MutexLock lock(&snapshot_mu_);
  if (generation_ == generation) snapshot_ = built;
  return built;
}

absl::StatusOr<std::vector<v1::Rule>> RuleStore::ListCurrent() const {
  std::vector<v1::Rule> items;
  absl::Status parse;
  PANTHERD_RETURN_IF_ERROR(
      store_->Scan(store::Family::kRules, "", [&](absl::string_view key, absl::string_view value) {
        v1::Rule rule;
        if (!rule.ParseFromArray(value.data(), static_cast<int>(value.size()))) {
          parse = absl::DataLossError(absl::StrCat("stored rule \"", key, "\" is unreadable"));
          return false;
        }
        items.push_back(std::move(rule));
        return true;
      }));
  PANTHERD_RETURN_IF_ERROR(parse);
  return items;
}

absl::StatusOr<int64_t> RuleStore::Delete(absl::string_view id, absl::string_view author,
                                          absl::Time now) {
  absl::MutexLock lock(&write_mu_);
  PANTHERD_ASSIGN_OR_RETURN(v1::Rule current, Get(id));
  PANTHERD_ASSIGN_OR_RETURN(int64_t latest, LatestVersion(id));
  v1::Rule tombstone = WithoutFiles(current);
  tombstone.set_version(latest + 1);
  tombstone.set_author(std::string(author));
  tombstone.set_deleted(true);
  *tombstone.mutable_updated_time() = ToProto(now);
  store::WriteBatch batch;
  batch.Delete(store::Family::kRules, id);
  batch.PutMessage(store::Family::kRuleVersions, store::RuleVersionKey(id, tombstone.version()),
                   tombstone);
  PANTHERD_RETURN_IF_ERROR(WriteChange(std::move(batch)));
  return tombstone.version();
}

absl::StatusOr<v1::Rule> RuleStore::SetEnabled(absl::string_view id, bool enabled,
                                               absl::string_view author, absl::Time now) {
  absl::MutexLock lock(&write_mu_);
  PANTHERD_ASSIGN_OR_RETURN(v1::Rule current, Get(id));
  if (current.type() == v1::ANALYSIS_TYPE_GLOBAL) {
    return absl::InvalidArgumentError(
        absl::StrCat("\"", id, "\" is a global helper; globals cannot be enabled or disabled"));
  }
  if (current.enabled() == enabled) return WithoutFiles(current);
  PANTHERD_ASSIGN_OR_RETURN(int64_t latest, LatestVersion(id));
  current.set_enabled(enabled);
  if (enabled) current.clear_quarantine();
  current.set_version(latest + 1);
  current.set_author(std::string(author));
  *current.mutable_updated_time() = ToProto(now);
  store::WriteBatch batch;
  batch.PutMessage(store::Family::kRules, id, current);
  batch.PutMessage(store::Family::kRuleVersions, store::RuleVersionKey(id, current.version()),
                   current);
  PANTHERD_RETURN_IF_ERROR(WriteChange(std::move(batch)));
  return WithoutFiles(current);
}

absl::StatusOr<v1::Rule> RuleStore::Quarantine(absl::string_view id,
                                               const v1::RuleQuarantine& quarantine,
                                               absl::string_view author, absl::Time now) {
  absl::MutexLock lock(&write_mu_);
  PANTHERD_ASSIGN_OR_RETURN(v1::Rule current, Get(id));
  if (current.type() != v1::ANALYSIS_TYPE_RULE) {
    return absl::InvalidArgumentError(absl::StrCat("\"", id, "\" is not a rule"));
  }
  if (!current.enabled()) {
    return absl::FailedPreconditionError(absl::StrCat("rule \"", id, "\" is already disabled"));
  }
  PANTHERD_ASSIGN_OR_RETURN(int64_t latest, LatestVersion(id));
  current.set_enabled(false);
  *current.mutable_quarantine() = quarantine;
  current.set_version(latest + 1);
  current.set_author(std::string(author));
  *current.mutable_updated_time() = ToProto(now);
  store::WriteBatch batch;
  batch.PutMessage(store::Family::kRules, id, current);
  batch.PutMessage(store::Family::kRuleVersions, store::RuleVersionKey(id, current.version()),
                   current);
  PANTHERD_RETURN_IF_ERROR(WriteChange(std::move(batch)));
  return WithoutFiles(current);
}

}  // namespace pantherd::engine
