#include "store/store.h"

#include <algorithm>
#include <filesystem>
#include <limits>
#include <memory>
#include <optional>
#include <system_error>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "proto/base/status_macros.h"
#include "rocksdb/cache.h"
#include "rocksdb/convenience.h"
#include "rocksdb/db.h"
#include "rocksdb/filter_policy.h"
#include "rocksdb/iterator.h"
#include "rocksdb/options.h"
#include "rocksdb/slice_transform.h"
#include "rocksdb/status.h"
#include "rocksdb/table.h"
#include "rocksdb/write_batch.h"
#include "store/keys.h"

namespace pantherd::store {
namespace {

namespace fs = std::filesystem;

// The block cache all families share.
constexpr size_t kBlockCacheBytes = size_t{32} << 20;

constexpr absl::string_view kFamilyNames[kFamilyCount] = {
    "meta",         "rules",      "rule_versions", "dedup",         "alerts", "alert_log",
    "processed",    "sources",    "users",         "tokens",        "audit",  "kv",
    "destinations", "deliveries", "events",        "window_events",
};

rocksdb::Slice ToSlice(absl::string_view s) { return rocksdb::Slice(s.data(), s.size()); }

int FamilyIndex(Family family) { return static_cast<int>(family); }

bool IsKnownFamily(Family family) {
  return FamilyIndex(family) >= 0 && FamilyIndex(family) < kFamilyCount;
}

// How many leading key components (separated by kKeySeparator) RocksDB
// indexes a family's keys by, for prefix Bloom filters; 0 when none.
// kDedup: (rule id, group) of (rule id, group, window start), so a scan within
// one dedup group (the alert engine's neighbour lookups) skips every SST file
// and memtable without the group.
int IndexedComponents(Family family) { return family == Family::kDedup ? 2 : 0; }

// The length of `key`'s first `n` components with their separators, or
// npos when `key` has fewer than `n` separators.
size_t LeadingComponentsLength(absl::string_view key, int n) {
  size_t end = 0;
  for (int i = 0; i < n; ++i) {
    const size_t sep = key.find(kKeySeparator, end);
    if (sep == absl::string_view::npos) return absl::string_view::npos;
    end = sep + 1;
  }
  return end;
}

// RocksDB's prefix extractor for IndexedComponents. Every key in its domain
// has exactly one prefix, and keys sharing a prefix are contiguous in key
// order, as prefix Bloom filters require.
class LeadingComponents final : public rocksdb::SliceTransform {
 public:
  explicit LeadingComponents(int n) : n_(n), name_(absl::StrCat("pantherd.LeadingComponents", n)) {}
  const char* Name() const override { return name_.c_str(); }
  rocksdb::Slice Transform(const rocksdb::Slice& key) const override {
    return rocksdb::Slice(key.data(), LeadingComponentsLength(Absl(key), n_));
  }
  bool InDomain(const rocksdb::Slice& key) const override {
    return LeadingComponentsLength(Absl(key), n_) != absl::string_view::npos;
  }

 private:
  static absl::string_view Absl(const rocksdb::Slice& s) {
    return absl::string_view(s.data(), s.size());
  }
  const int n_;
  const std::string name_;
};

// The options of one of our column families. Every family keeps whole-key
// Bloom filters in its SST files (a Get of an absent key reads no data block)
// and shares `cache`. kProcessed, probed for every ingested event with mostly
// absent ids, also keeps a whole-key Bloom filter on its memtable; kDedup
// keeps prefix filters (IndexedComponents) in its files and memtable.
rocksdb::ColumnFamilyOptions FamilyOptions(Family family,
                                           const std::shared_ptr<rocksdb::Cache>& cache) {
  rocksdb::ColumnFamilyOptions options;
  rocksdb::BlockBasedTableOptions table;
  table.block_cache = cache;
  table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  table.whole_key_filtering = true;
  options.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  if (family == Family::kEvents) {
    // Events are the bulk of the store and are read in ranges: larger
    // blocks. Each value (a block of events) is already compressed by
    // pantherd, with its log type's dictionary (engine/event_codec.h,
    // engine/event_store.h), so the files add no
    // compression of their own: LZ4 or ZSTD over those values found little
    // but the keys' shared bytes, which the blocks' prefix encoding already
    // takes, and cost flush and compaction CPU on every event.
    table.block_size = 32 << 10;
    options.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
    options.compression = rocksdb::kNoCompression;
    options.bottommost_compression = rocksdb::kNoCompression;
    // Events arrive nearly in event-time order within a log type, so each
    // memtable insert starts from where the log type's last one ended
    // instead of descending the skip list from its head.
    options.memtable_insert_with_hint_prefix_extractor = std::make_shared<LeadingComponents>(1);
  }
  if (family == Family::kProcessed) {
    options.memtable_prefix_bloom_size_ratio = 0.02;
    options.memtable_whole_key_filtering = true;
  }
  if (const int n = IndexedComponents(family); n > 0) {
    options.prefix_extractor = std::make_shared<LeadingComponents>(n);
    options.memtable_prefix_bloom_size_ratio = 0.02;
  }
  return options;
}

// Quotes a key for an error message: C-escaped and truncated.
std::string QuoteKey(absl::string_view key) {
  constexpr size_t kMax = 80;
  std::string out = absl::StrCat("\"", absl::CHexEscape(key.substr(0, kMax)), "\"");
  if (key.size() > kMax) absl::StrAppend(&out, "...");
  return out;
}

// The only conversion from rocksdb::Status to absl::Status in pantherd.
// `what` says what was being done ("reading rules key \"x\""); the message
// names it and the data directory.
absl::Status FromRocksDB(const rocksdb::Status& s, absl::string_view dir, absl::string_view what) {
  if (s.ok()) return absl::OkStatus();
  const std::string detail = s.ToString();
  if (s.IsIOError() && absl::StrContains(detail, "/LOCK")) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "data directory %s is in use by another process (RocksDB lock %s/LOCK)", dir, dir));
  }
  if (s.IsCorruption() || s.IsPathNotFound()) {
    return absl::DataLossError(
        absl::StrFormat("data directory %s is corrupted: %s (while %s)", dir, detail, what));
  }
  const std::string message = absl::StrFormat("%s in data directory %s: %s", what, dir, detail);
  if (s.IsNotFound()) {
    return absl::NotFoundError(absl::StrFormat("%s in data directory %s: not found", what, dir));
  }
  if (s.IsInvalidArgument()) return absl::InvalidArgumentError(message);
  if (s.IsNoSpace()) return absl::ResourceExhaustedError(message);
  if (s.IsBusy() || s.IsTimedOut() || s.IsTryAgain() || s.IsShutdownInProgress()) {
    return absl::UnavailableError(message);
  }
  if (s.IsAborted()) return absl::AbortedError(message);
  if (s.IsNotSupported()) return absl::UnimplementedError(message);
  return absl::InternalError(message);
}

// Maps a filesystem error met while preparing `dir`.
absl::Status FromErrorCode(const std::error_code& ec, absl::string_view dir,
                           absl::string_view what) {
  const std::string message = absl::StrFormat("%s data directory %s: %s", what, dir, ec.message());
  if (ec == std::errc::permission_denied || ec == std::errc::operation_not_permitted) {
    return absl::PermissionDeniedError(message);
  }
  if (ec == std::errc::not_a_directory || ec == std::errc::file_exists) {
    return absl::InvalidArgumentError(message);
  }
  return absl::InternalError(message);
}

// What an existing directory holds.
enum class DirContents {
  kEmpty,     // nothing, or only RocksDB's bookkeeping files: create a store
  kDatabase,  // a RocksDB database (CURRENT exists)
  kOrphans,   // RocksDB data files without CURRENT: corrupted
  kForeign,   // something else: refuse to touch it
};

bool IsRocksDBBookkeeping(const std::string& name) {
  return name == "LOCK" || name == "IDENTITY" || name == "LOG" ||
         absl::StartsWith(name, "LOG.old.") || absl::StartsWith(name, "OPTIONS-");
}

bool IsRocksDBData(const std::string& name) {
  return absl::StartsWith(name, "MANIFEST-") || absl::EndsWith(name, ".sst") ||
         absl::EndsWith(name, ".log") || absl::EndsWith(name, ".blob");
}

absl::StatusOr<DirContents> Classify(const std::string& dir, std::string* example) {
  std::error_code ec;
  fs::directory_iterator it(dir, ec);
  if (ec) return FromErrorCode(ec, dir, "reading");
  bool orphans = false;
  bool foreign = false;
  for (; it != fs::directory_iterator(); it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name == "CURRENT") return DirContents::kDatabase;
    if (IsRocksDBData(name)) {
      orphans = true;
    } else if (!IsRocksDBBookkeeping(name) && !foreign) {
      foreign = true;
      *example = name;
    }
  }
  if (ec) return FromErrorCode(ec, dir, "reading");
  if (orphans) return DirContents::kOrphans;
  if (foreign) return DirContents::kForeign;
  return DirContents::kEmpty;
}

std::string CounterKey(absl::string_view name) { return absl::StrCat(kSequenceKeyPrefix, name); }

}  // namespace

const std::vector<Family>& AllFamilies() {
  static const std::vector<Family>* const kAll = [] {
    auto* all = new std::vector<Family>;
    for (int i = 0; i < kFamilyCount; ++i) all->push_back(static_cast<Family>(i));
    return all;
  }();
  return *kAll;
}

absl::string_view FamilyName(Family f) {
  return IsKnownFamily(f) ? kFamilyNames[FamilyIndex(f)] : absl::string_view("unknown");
}

// ---------------------------------------------------------------------------
// WriteBatch

void WriteBatch::Put(Family family, absl::string_view key, absl::string_view value) {
  ops_.push_back(Op{false, family, std::string(key), std::string(value)});
  bytes_ += key.size() + value.size();
}

void WriteBatch::PutMessage(Family family, absl::string_view key,
                            const google::protobuf::MessageLite& message) {
  std::string bytes;
  // IsInitialized first: serializing an uninitialized message is a fatal
  // DCHECK in protobuf debug builds.
  if (!message.IsInitialized() || !message.SerializePartialToString(&bytes)) {
    if (status_.ok()) {
      status_ = absl::InvalidArgumentError(absl::StrFormat("cannot serialize %s for %s key %s",
                                                           message.GetTypeName(),
                                                           FamilyName(family), QuoteKey(key)));
    }
    return;
  }
  Put(family, key, bytes);
}

void WriteBatch::Delete(Family family, absl::string_view key) {
  ops_.push_back(Op{true, family, std::string(key), std::string()});
  bytes_ += key.size();
}

void WriteBatch::Clear() {
  ops_.clear();
  bytes_ = 0;
  status_ = absl::OkStatus();
}

// ---------------------------------------------------------------------------
// Store

struct Store::Counter {
  absl::Mutex mu;
  bool loaded ABSL_GUARDED_BY(mu) = false;
  uint64_t last ABSL_GUARDED_BY(mu) = 0;
};

Store::Store(std::string dir, const StoreOptions& options)
    : dir_(std::move(dir)),
      sync_writes_(options.sync_writes),
      write_ahead_log_(options.write_ahead_log) {}

Store::~Store() { Close().IgnoreError(); }

absl::StatusOr<std::unique_ptr<Store>> Store::Open(const std::string& dir,
                                                   const StoreOptions& options) {
  if (dir.empty()) return absl::InvalidArgumentError("data directory path is empty");

  // Look at the directory first, so the common mistakes get precise errors
  // and RocksDB never writes into a directory that is not ours.
  std::error_code ec;
  const fs::file_status st = fs::status(dir, ec);
  bool fresh = false;
  if (st.type() == fs::file_type::not_found) {
    if (!options.create_if_missing) {
      return absl::NotFoundError(
          absl::StrFormat("data directory %s does not exist (create_if_missing is off)", dir));
    }
    fs::create_directories(dir, ec);
    if (ec) return FromErrorCode(ec, dir, "creating");
    fresh = true;
  } else if (ec) {
    return FromErrorCode(ec, dir, "inspecting");
  } else if (!fs::is_directory(st)) {
    return absl::InvalidArgumentError(absl::StrFormat("data directory %s is not a directory", dir));
  } else {
    std::string example;
    PANTHERD_ASSIGN_OR_RETURN(const DirContents contents, Classify(dir, &example));
    switch (contents) {
      case DirContents::kDatabase:
        break;
      case DirContents::kOrphans:
        return absl::DataLossError(absl::StrFormat(
            "data directory %s is corrupted: it holds RocksDB files but no CURRENT file", dir));
      case DirContents::kForeign:
        return absl::InvalidArgumentError(absl::StrFormat(
            "data directory %s is not empty and is not a pantherd store (it contains \"%s\")", dir,
            example));
      case DirContents::kEmpty:
        if (!options.create_if_missing) {
          return absl::NotFoundError(absl::StrFormat(
              "data directory %s holds no pantherd store (create_if_missing is off)", dir));
        }
        fresh = true;
        break;
    }
  }

  rocksdb::DBOptions db_options;
  db_options.create_if_missing = fresh;
  db_options.create_missing_column_families = true;
  db_options.paranoid_checks = true;
  db_options.keep_log_file_num = 5;
  // Every ingest commit is one write at a time (the alert engine's lock), so
  // parallel memtable inserts gain nothing, and without them RocksDB keeps
  // the insert hints of the events family (FamilyOptions).
  db_options.allow_concurrent_memtable_write = false;

  // RocksDB insists that every existing column family be opened: ours, the
  // default one, and any a newer pantherd may have added.
  std::vector<std::string> existing;
  if (!fresh) {
    PANTHERD_RETURN_IF_ERROR(FromRocksDB(
        rocksdb::DB::ListColumnFamilies(db_options, dir, &existing), dir, "opening the store"));
    if (std::find(existing.begin(), existing.end(), FamilyName(Family::kMeta)) == existing.end()) {
      // ListColumnFamilies skips manifest records it cannot read, so a garbage
      // MANIFEST looks like a database with only "default". A read-only open
      // (which neither locks nor writes) tells the two apart.
      std::vector<rocksdb::ColumnFamilyDescriptor> probe_families;
      for (const std::string& name : existing) {
        probe_families.emplace_back(name, rocksdb::ColumnFamilyOptions());
      }
      std::vector<rocksdb::ColumnFamilyHandle*> probe_handles;
      rocksdb::DB* probe = nullptr;
      PANTHERD_RETURN_IF_ERROR(FromRocksDB(
          rocksdb::DB::OpenForReadOnly(db_options, dir, probe_families, &probe_handles, &probe),
          dir, "opening the store"));
      for (rocksdb::ColumnFamilyHandle* h : probe_handles) {
        probe->DestroyColumnFamilyHandle(h).PermitUncheckedError();
      }
      probe->Close().PermitUncheckedError();
      delete probe;
      return absl::InvalidArgumentError(
          absl::StrFormat("data directory %s holds a RocksDB database that is not a pantherd store "
                          "(no \"meta\" column family; found %s)",
                          dir, absl::StrJoin(existing, ", ")));
    }
  }
  std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
  const std::shared_ptr<rocksdb::Cache> cache = rocksdb::NewLRUCache(kBlockCacheBytes);
  for (Family f : AllFamilies()) {
    descriptors.emplace_back(std::string(FamilyName(f)), FamilyOptions(f, cache));
  }
  descriptors.emplace_back(rocksdb::kDefaultColumnFamilyName, rocksdb::ColumnFamilyOptions());
  for (const std::string& name : existing) {
    const bool known = std::any_of(descriptors.begin(), descriptors.end(),
                                   [&](const auto& d) { return d.name == name; });
    if (!known) descriptors.emplace_back(name, rocksdb::ColumnFamilyOptions());
  }

  std::unique_ptr<Store> store(new Store(dir, options));
  PANTHERD_RETURN_IF_ERROR(
      FromRocksDB(rocksdb::DB::Open(db_options, dir, descriptors, &store->handles_, &store->db_),
                  dir, "opening the store"));
  absl::Status schema = store->InitSchema(fresh);
  if (!schema.ok()) {
    // Close without flushing: leave a store we refuse exactly as it was.
    for (rocksdb::ColumnFamilyHandle* h : store->handles_) {
      store->db_->DestroyColumnFamilyHandle(h).PermitUncheckedError();
    }
    store->handles_.clear();
    store->db_->Close().PermitUncheckedError();
    delete store->db_;
    store->db_ = nullptr;
    return schema;
  }
  return store;
}

absl::Status Store::InitSchema(bool fresh) {
  absl::StatusOr<std::string> version = Get(Family::kMeta, kSchemaVersionKey);
  if (absl::IsNotFound(version.status())) {
    // A store whose creation was interrupted before this write has an empty
    // kMeta; anything else without a version is damaged.
    PANTHERD_ASSIGN_OR_RETURN(const int64_t meta_keys, Count(Family::kMeta, ""));
    if (!fresh && meta_keys > 0) {
      return absl::DataLossError(absl::StrFormat(
          "data directory %s is corrupted: the meta family has no %s", dir_, kSchemaVersionKey));
    }
    rocksdb::WriteOptions sync;
    sync.sync = true;
    return FromRocksDB(db_->Put(sync, handles_[FamilyIndex(Family::kMeta)],
                                std::string(kSchemaVersionKey), absl::StrCat(kSchemaVersion)),
                       dir_, "writing the schema version");
  }
  if (!version.ok()) return version.status();
  int found = 0;
  if (!absl::SimpleAtoi(*version, &found) || found < 1) {
    return absl::DataLossError(
        absl::StrFormat("data directory %s is corrupted: malformed %s \"%s\"", dir_,
                        kSchemaVersionKey, absl::CHexEscape(*version)));
  }
  if (found > kSchemaVersion) {
    return absl::FailedPreconditionError(
        absl::StrFormat("data directory %s has store schema version %d, but this pantherd supports "
                        "versions up to %d; run a newer pantherd",
                        dir_, found, kSchemaVersion));
  }
  return absl::OkStatus();
}

absl::StatusOr<rocksdb::ColumnFamilyHandle*> Store::Handle(Family family) const {
  if (db_ == nullptr) {
    return absl::FailedPreconditionError(absl::StrFormat("store %s is closed", dir_));
  }
  if (!IsKnownFamily(family)) {
    return absl::InvalidArgumentError(
        absl::StrFormat("unknown store family %d", FamilyIndex(family)));
  }
  return handles_[FamilyIndex(family)];
}

absl::StatusOr<std::string> Store::Get(Family family, absl::string_view key) const {
  PANTHERD_ASSIGN_OR_RETURN(rocksdb::ColumnFamilyHandle* const handle, Handle(family));
  std::string value;
  PANTHERD_RETURN_IF_ERROR(
      FromRocksDB(db_->Get(rocksdb::ReadOptions(), handle, ToSlice(key), &value), dir_,
                  absl::StrFormat("reading %s key %s", FamilyName(family), QuoteKey(key))));
  return value;
}

absl::Status Store::ParseError(Family family, absl::string_view key,
                               absl::string_view type_name) const {
  return absl::DataLossError(
      absl::StrFormat("%s key %s in data directory %s does not hold a valid %s", FamilyName(family),
                      QuoteKey(key), dir_, type_name));
}

absl::Status Store::Put(Family family, absl::string_view key, absl::string_view value) {
  WriteBatch batch;
  batch.Put(family, key, value);
  return Write(std::move(batch));
}

absl::Status Store::PutMessage(Family family, absl::string_view key,
                               const google::protobuf::MessageLite& message) {
  WriteBatch batch;
  batch.PutMessage(family, key, message);
  return Write(std::move(batch));
}

absl::Status Store::Delete(Family family, absl::string_view key) {
  WriteBatch batch;
  batch.Delete(family, key);
  return Write(std::move(batch));
}

absl::Status Store::Write(WriteBatch batch, Durability durability) {
  if (db_ == nullptr) {
    return absl::FailedPreconditionError(absl::StrFormat("store %s is closed", dir_));
  }
  PANTHERD_RETURN_IF_ERROR(batch.status_);
  if (batch.Empty()) return absl::OkStatus();

  // Room for every key and value plus RocksDB's record headers (a tag, a
  // family id and two lengths, at most 16 bytes per operation), so that the
  // batch is not regrown and copied as it fills.
  rocksdb::WriteBatch rocks_batch(/*reserved_bytes=*/12 + batch.ApproximateSize() +
                                  16 * batch.Count());
  bool touched[kFamilyCount] = {};
  for (const WriteBatch::Op& op : batch.ops_) {
    PANTHERD_ASSIGN_OR_RETURN(rocksdb::ColumnFamilyHandle* const handle, Handle(op.family));
    touched[FamilyIndex(op.family)] = true;
    const rocksdb::Status s = op.is_delete ? rocks_batch.Delete(handle, op.key)
                                           : rocks_batch.Put(handle, op.key, op.value);
    PANTHERD_RETURN_IF_ERROR(FromRocksDB(s, dir_, "building a write batch"));
  }
  std::vector<absl::string_view> families;
  for (Family f : AllFamilies()) {
    if (touched[FamilyIndex(f)]) families.push_back(FamilyName(f));
  }
  rocksdb::WriteOptions write_options;
  write_options.sync = write_ahead_log_ && sync_writes_ && durability == Durability::kDurable;
  write_options.disableWAL = !write_ahead_log_;
  return FromRocksDB(db_->Write(write_options, &rocks_batch), dir_,
                     absl::StrFormat("writing a batch of %d operations to %s", batch.Count(),
                                     absl::StrJoin(families, ", ")));
}

absl::Status Store::Scan(Family family, absl::string_view prefix,
                         absl::FunctionRef<bool(absl::string_view key, absl::string_view value)> fn,
                         absl::string_view start) const {
  return ScanImpl(family, prefix, start, /*reverse=*/false, fn);
}

absl::Status Store::ReverseScan(
    Family family, absl::string_view prefix,
    absl::FunctionRef<bool(absl::string_view key, absl::string_view value)> fn,
    absl::string_view start) const {
  return ScanImpl(family, prefix, start, /*reverse=*/true, fn);
}

absl::Status Store::ScanImpl(
    Family family, absl::string_view prefix, absl::string_view start, bool reverse,
    absl::FunctionRef<bool(absl::string_view, absl::string_view)> fn) const {
  PANTHERD_ASSIGN_OR_RETURN(rocksdb::ColumnFamilyHandle* const handle, Handle(family));
  // Bound the iterator to the prefix so RocksDB stops (and skips deleted
  // entries) at its edges.
  const std::string upper = PrefixSuccessor(prefix);
  const rocksdb::Slice upper_slice(upper);
  const rocksdb::Slice lower_slice = ToSlice(prefix);
  rocksdb::ReadOptions read_options;
  if (!upper.empty()) read_options.iterate_upper_bound = &upper_slice;
  if (!prefix.empty()) read_options.iterate_lower_bound = &lower_slice;

  // Where the iterator starts: Seek(target), SeekForPrev(target), or (no
  // target) SeekToLast.
  std::optional<absl::string_view> target;
  if (!reverse) {
    target = std::max(prefix, start);
  } else if (start.empty() || (!upper.empty() && start >= upper)) {
    target = std::nullopt;
  } else if (start < prefix) {
    return absl::OkStatus();  // every key with `prefix` is after `start`
  } else {
    target = start;
  }
  // A scan that stays within one indexed prefix (the whole prefix, sought
  // from a key inside it) runs in RocksDB's prefix mode, which consults the
  // prefix Bloom filters; any other scan is a total-order scan.
  const int indexed = IndexedComponents(family);
  const bool prefix_mode = indexed > 0 && target.has_value() &&
                           LeadingComponentsLength(prefix, indexed) == prefix.size() &&
                           absl::StartsWith(*target, prefix);
  read_options.total_order_seek = !prefix_mode;
  read_options.prefix_same_as_start = prefix_mode;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(read_options, handle));

  if (!target.has_value()) {
    it->SeekToLast();
  } else if (!reverse) {
    it->Seek(ToSlice(*target));
  } else {
    it->SeekForPrev(ToSlice(*target));
  }
  for (; it->Valid(); reverse ? it->Prev() : it->Next()) {
    const rocksdb::Slice key = it->key();
    const absl::string_view key_view(key.data(), key.size());
    if (!absl::StartsWith(key_view, prefix)) break;
    const rocksdb::Slice value = it->value();
    if (!fn(key_view, absl::string_view(value.data(), value.size()))) break;
  }
  return FromRocksDB(
      it->status(), dir_,
      absl::StrFormat("scanning %s prefix %s", FamilyName(family), QuoteKey(prefix)));
}

absl::StatusOr<int64_t> Store::Count(Family family, absl::string_view prefix) const {
  int64_t count = 0;
  PANTHERD_RETURN_IF_ERROR(Scan(family, prefix, [&count](absl::string_view, absl::string_view) {
    ++count;
    return true;
  }));
  return count;
}

absl::StatusOr<Store::Counter*> Store::GetCounter(absl::string_view name) const {
  if (name.empty()) return absl::InvalidArgumentError("sequence counter name is empty");
  absl::MutexLock lock(&counters_mu_);
  auto it = counters_.find(name);
  if (it == counters_.end()) {
    it = counters_.emplace(std::string(name), std::make_unique<Counter>()).first;
  }
  return it->second.get();
}

absl::Status Store::LoadCounter(absl::string_view name, Counter& counter) const
    ABSL_NO_THREAD_SAFETY_ANALYSIS {  // caller holds counter.mu
  if (counter.loaded) return absl::OkStatus();
  absl::StatusOr<std::string> stored = Get(Family::kMeta, CounterKey(name));
  if (absl::IsNotFound(stored.status())) {
    counter.last = 0;
  } else if (!stored.ok()) {
    return stored.status();
  } else {
    absl::StatusOr<uint64_t> last = DecodeUint64(*stored);
    if (!last.ok()) {
      return absl::DataLossError(
          absl::StrFormat("data directory %s is corrupted: sequence counter \"%s\": %s", dir_, name,
                          last.status().message()));
    }
    counter.last = *last;
  }
  counter.loaded = true;
  return absl::OkStatus();
}

absl::StatusOr<uint64_t> Store::WriteWithSequence(
    absl::string_view name, uint64_t n,
    absl::FunctionRef<absl::Status(uint64_t first, WriteBatch& batch)> fill) {
  if (n == 0) {
    return absl::InvalidArgumentError(
        absl::StrFormat("sequence counter \"%s\": cannot allocate 0 values", name));
  }
  PANTHERD_ASSIGN_OR_RETURN(Counter* const counter, GetCounter(name));
  absl::MutexLock lock(&counter->mu);
  PANTHERD_RETURN_IF_ERROR(LoadCounter(name, *counter));
  if (counter->last > std::numeric_limits<uint64_t>::max() - n) {
    return absl::OutOfRangeError(absl::StrFormat(
        "sequence counter \"%s\" is exhausted (at %d, asked for %d more)", name, counter->last, n));
  }
  const uint64_t first = counter->last + 1;
  const uint64_t last = counter->last + n;
  WriteBatch batch;
  PANTHERD_RETURN_IF_ERROR(fill(first, batch));
  batch.Put(Family::kMeta, CounterKey(name), EncodeUint64(last));
  PANTHERD_RETURN_IF_ERROR(Write(std::move(batch)));
  counter->last = last;
  return first;
}

absl::StatusOr<uint64_t> Store::NextSequence(absl::string_view name, uint64_t n) {
  return WriteWithSequence(name, n, [](uint64_t, WriteBatch&) { return absl::OkStatus(); });
}

absl::StatusOr<uint64_t> Store::LastSequence(absl::string_view name) const {
  PANTHERD_ASSIGN_OR_RETURN(Counter* const counter, GetCounter(name));
  absl::MutexLock lock(&counter->mu);
  PANTHERD_RETURN_IF_ERROR(LoadCounter(name, *counter));
  return counter->last;
}

absl::Status Store::Flush() {
  if (db_ == nullptr) {
    return absl::FailedPreconditionError(absl::StrFormat("store %s is closed", dir_));
  }
  rocksdb::FlushOptions flush_options;
  flush_options.wait = true;
  const std::vector<rocksdb::ColumnFamilyHandle*> ours(handles_.begin(),
                                                       handles_.begin() + kFamilyCount);
  return FromRocksDB(db_->Flush(flush_options, ours), dir_, "flushing all families");
}

absl::Status Store::CompactRange(Family family, absl::string_view begin, absl::string_view end) {
  PANTHERD_ASSIGN_OR_RETURN(rocksdb::ColumnFamilyHandle* const handle, Handle(family));
  rocksdb::CompactRangeOptions options;
  // Background compactions of every family keep running meanwhile, so
  // writers are not stalled behind this one.
  options.exclusive_manual_compaction = false;
  // Bottom-level files in the range are rewritten too (once), so tombstones
  // that already reached the bottom level, with the data they delete, are
  // dropped as well.
  options.bottommost_level_compaction = rocksdb::BottommostLevelCompaction::kForceOptimized;
  const rocksdb::Slice begin_slice = ToSlice(begin);
  const rocksdb::Slice end_slice = ToSlice(end);
  return FromRocksDB(db_->CompactRange(options, handle, begin.empty() ? nullptr : &begin_slice,
                                       end.empty() ? nullptr : &end_slice),
                     dir_,
                     absl::StrFormat("compacting %s keys %s to %s", FamilyName(family),
                                     QuoteKey(begin), QuoteKey(end)));
}

absl::StatusOr<uint64_t> Store::FamilyDiskBytes(Family family) const {
  PANTHERD_ASSIGN_OR_RETURN(rocksdb::ColumnFamilyHandle* const handle, Handle(family));
  uint64_t bytes = 0;
  if (!db_->GetIntProperty(handle, rocksdb::DB::Properties::kTotalSstFilesSize, &bytes)) {
    return absl::InternalError(
        absl::StrFormat("data directory %s: RocksDB does not report the "
                        "SST file size of family %s",
                        dir_, FamilyName(family)));
  }
  return bytes;
}

absl::Status Store::Close() {
  if (db_ == nullptr) return absl::OkStatus();
  absl::Status result = Flush();
  for (rocksdb::ColumnFamilyHandle* h : handles_) {
    absl::Status s =
        FromRocksDB(db_->DestroyColumnFamilyHandle(h), dir_, "releasing a column family");
    if (result.ok()) result = s;
  }
  handles_.clear();
  absl::Status s = FromRocksDB(db_->Close(), dir_, "closing the store");
  if (result.ok()) result = s;
  delete db_;
  db_ = nullptr;
  return result;
}

}  // namespace pantherd::store
