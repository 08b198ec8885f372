// File: store/store.h
//
// The store is pantherd's only persistent state: one RocksDB database in the
// server's data directory, with one column family per kind of state (rules and
// their history, alerts and the alert change log, dedup windows, sources,
// users, tokens, the audit trail, ...). This header is the whole interface the
// rest of the server sees: a typed, Status-returning wrapper over RocksDB with
// atomic multi-family batches, ordered prefix scans and durable sequence
// counters. Key layouts and value types per family are documented in
// docs/storage.md; key codecs are in store/keys.h.
//
//   PANTHERD_ASSIGN_OR_RETURN(std::unique_ptr<Store> store, Store::Open(dir, {}));
//   WriteBatch batch;
//   batch.PutMessage(Family::kRules, rule.id(), rule);
//   batch.PutMessage(Family::kRuleVersions, RuleVersionKey(rule.id(), rule.version()), rule);
//   PANTHERD_RETURN_IF_ERROR(store->Write(std::move(batch)));  // both or neither
//
// Errors: every fallible call returns absl::Status / absl::StatusOr; nothing
// throws. RocksDB errors are mapped to canonical codes and their messages name
// the data directory, the family and the operation:
//   NotFound          the key (or, from Open, the directory) does not exist;
//   DataLoss          stored bytes are corrupt (RocksDB corruption, a missing
//                     file, a value that does not parse as the asked message);
//   FailedPrecondition the store is closed, the directory is locked by another
//                     process, or it was written by a newer pantherd;
//   InvalidArgument   a bad argument (unknown Family, empty counter name, ...);
//   ResourceExhausted the disk is full;
//   Unavailable       RocksDB is busy or shutting down (retrying may help);
//   Internal          any other RocksDB failure.
//
// Thread-safety: a Store is safe for concurrent use by many threads without
// external locking (RocksDB is), with one exception: Close() and the
// destructor must not run concurrently with any other call on the same Store.
// WriteBatch is a plain value: not thread-safe, but movable between threads.

#ifndef PANTHERD_STORE_STORE_H_
#define PANTHERD_STORE_STORE_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "google/protobuf/message_lite.h"

namespace rocksdb {
class ColumnFamilyHandle;
class DB;
}  // namespace rocksdb

namespace pantherd::store {

// The kinds of state, one RocksDB column family each. Values are stable
// (they index internal tables) but never written to disk; the on-disk name of
// each family is FamilyName(f).
enum class Family {
  kMeta,          // server metadata: schema version, counters, sequences
  kRules,         // current version of each analysis item (rule/global/data model), by id
  kRuleVersions,  // every version of every item, by (id, version)
  kDedup,         // dedup/threshold windows
  kAlerts,        // alerts by id
  kAlertLog,      // alert changes by sequence (the resumable stream)
  kProcessed,     // processed-event ids with expiry (idempotence)
  kSources,       // sources and their cursors
  kUsers,         // users by name
  kTokens,        // API tokens by hash of their secret
  kAudit,         // audit events by sequence
  kKv,            // key-value space for stateful detections (caching helpers)
  kDestinations,  // alert destinations (with their secrets), by id
  kDeliveries,    // the delivery outbox and each alert's delivery records
  kEvents,        // every accepted event, normalised, by (log type, event time)
  kWindowEvents,  // which stored events were counted into which window / alert
};

// Number of Family values.
inline constexpr int kFamilyCount = static_cast<int>(Family::kWindowEvents) + 1;

// Returns every Family, in declaration order.
const std::vector<Family>& AllFamilies();

// Returns the column family name of `f` ("meta", "rules", "rule_versions",
// "dedup", "alerts", "alert_log", "processed", "sources", "users", "tokens",
// "audit", "kv", "destinations", "deliveries", "events", "window_events"), or
// "unknown" for a value outside the enum.
absl::string_view FamilyName(Family f);

// The schema version this build writes and understands. Stored in kMeta under
// kSchemaVersionKey as decimal text when a store is created.
inline constexpr int kSchemaVersion = 1;
inline constexpr absl::string_view kSchemaVersionKey = "schema_version";

// Keys in kMeta that start with this prefix hold sequence counters
// ("seq\0<name>" -> be64(last value handed out)); callers must not write them.
inline constexpr absl::string_view kSequenceKeyPrefix = absl::string_view("seq\0", 4);

// Accumulates puts and deletes over any families; Store::Write applies all of
// them atomically or none. Operations are applied in the order they were
// added, so a later Put or Delete of the same key wins. Keys and values are
// copied. Not thread-safe; movable, not copyable.
class WriteBatch {
 public:
  WriteBatch() = default;
  WriteBatch(WriteBatch&&) = default;
  WriteBatch& operator=(WriteBatch&&) = default;
  WriteBatch(const WriteBatch&) = delete;
  WriteBatch& operator=(const WriteBatch&) = delete;

  // Sets `key` in `family` to `value`.
  void Put(Family family, absl::string_view key, absl::string_view value);

  // Sets `key` in `family` to the serialized bytes of `message`. If `message`
  // cannot be serialized (e.g. a proto2 message missing required fields), the
  // batch records an InvalidArgument error and Store::Write will return it
  // without writing anything.
  void PutMessage(Family family, absl::string_view key,
                  const google::protobuf::MessageLite& message);

  // Removes `key` from `family`; removing an absent key is not an error.
  void Delete(Family family, absl::string_view key);

  // Number of operations added since construction or Clear().
  size_t Count() const { return ops_.size(); }
  bool Empty() const { return ops_.empty(); }
  // Approximate bytes of keys and values held.
  size_t ApproximateSize() const { return bytes_; }

  // Drops every operation and any recorded error.
  void Clear();

  // OK, or the first error recorded by PutMessage.
  const absl::Status& status() const { return status_; }

 private:
  friend class Store;
  struct Op {
    bool is_delete;
    Family family;
    std::string key;
    std::string value;
  };
  std::vector<Op> ops_;
  size_t bytes_ = 0;
  absl::Status status_;
};

struct StoreOptions {
  // Create the directory (and its parents) and an empty store when `dir`
  // does not exist or is empty. When false, Open returns NotFound instead.
  bool create_if_missing = true;
  // fsync the write-ahead log before each write returns, so an acknowledged
  // write survives a power loss. When false, writes survive a process crash
  // but the last few may be lost on power loss or an OS crash.
  bool sync_writes = true;
  // Write the write-ahead log at all. False (for scratch stores that are
  // deleted after use, such as a replay's): writes go to the memtables only,
  // so they cost no disk I/O until a memtable fills, and everything not yet
  // flushed is lost when the process ends, whatever sync_writes says.
  bool write_ahead_log = true;
};

// A persistent, ordered key-value store with one keyspace per Family. Keys and
// values are arbitrary bytes; keys are ordered bytewise (memcmp).
class Store {
 public:
  // Opens the store in directory `dir`, creating the directory and the
  // database when allowed, and every column family that is missing. On
  // success the caller owns the returned Store. Errors:
  //   FailedPrecondition  "data directory <dir> is in use by another process
  //                       (RocksDB lock <dir>/LOCK)": another Store, in this
  //                       or another process, has it open; or the store was
  //                       written by a newer pantherd (schema_version > 1);
  //   DataLoss            "data directory <dir> is corrupted: <rocksdb message>"
  //                       (unreadable CURRENT/MANIFEST, missing files, ...);
  //   NotFound            `dir` does not exist or is empty and
  //                       !options.create_if_missing;
  //   InvalidArgument     `dir` is empty, not a directory, or a non-empty
  //                       directory that is not a pantherd store (including a
  //                       RocksDB database without pantherd's families);
  //   PermissionDenied    `dir` cannot be created or read;
  //   Internal            anything else.
  static absl::StatusOr<std::unique_ptr<Store>> Open(const std::string& dir,
                                                     const StoreOptions& options);

  // Closes the store (see Close), ignoring errors. Must not run concurrently
  // with any other call on this Store.
  ~Store();

  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // Returns a copy of the value of `key` in `family`. NotFound when the key
  // is absent; FailedPrecondition when the store is closed.
  absl::StatusOr<std::string> Get(Family family, absl::string_view key) const;

  // Returns the value of `key` parsed as message type M (any generated
  // protobuf message). NotFound when absent; DataLoss when the stored bytes
  // do not parse as an M.
  template <typename M>
  absl::StatusOr<M> GetMessage(Family family, absl::string_view key) const;

  // Sets `key` in `family` to `value` (a one-operation Write).
  [[nodiscard]] absl::Status Put(Family family, absl::string_view key, absl::string_view value);
  // Sets `key` in `family` to the serialized `message`.
  [[nodiscard]] absl::Status PutMessage(Family family, absl::string_view key,
                                        const google::protobuf::MessageLite& message);
  // Removes `key` from `family`; OK when it was absent.
  [[nodiscard]] absl::Status Delete(Family family, absl::string_view key);

  // How soon a write must reach the disk.
  enum class Durability {
    // With StoreOptions::sync_writes, on disk (fsync) when Write returns.
    kDurable,
    // In the write-ahead log when Write returns, so a crash of the process
    // cannot lose it, but not fsync'ed: a machine crash may, unless a later
    // kDurable write returned (the log is written in order, so its fsync
    // covers every earlier write). For state whose own durability point is a
    // later write, such as rule cache updates before their batch commits.
    kBuffered,
  };

  // Applies every operation of `batch` atomically: after Write returns, and
  // after any crash, either all of them are visible or none is. Readers never
  // observe part of a batch. With StoreOptions::sync_writes and kDurable the
  // batch is durable when Write returns OK (see Durability). An empty batch is
  // a no-op. Errors: batch.status() when PutMessage failed; InvalidArgument
  // for an unknown Family; FailedPrecondition when closed; otherwise a mapped
  // RocksDB error, in which case nothing was written.
  [[nodiscard]] absl::Status Write(WriteBatch batch, Durability durability = Durability::kDurable);

  // Calls fn(key, value) for each key of `family` that starts with `prefix`,
  // in ascending key order, starting at the first key >= max(prefix, start);
  // stops early when fn returns false. The views are valid only during the
  // call. The scan reads a consistent snapshot taken when it begins; writes
  // made meanwhile (also by fn, which may call any method but Close) are not
  // seen. An empty prefix visits the whole family.
  [[nodiscard]] absl::Status Scan(
      Family family, absl::string_view prefix,
      absl::FunctionRef<bool(absl::string_view key, absl::string_view value)> fn,
      absl::string_view start = {}) const;

  // Like Scan but in descending key order (newest first for sequence-keyed
  // families), starting at the last key <= `start` that has `prefix`, or at
  // the last key with `prefix` when `start` is empty.
  [[nodiscard]] absl::Status ReverseScan(
      Family family, absl::string_view prefix,
      absl::FunctionRef<bool(absl::string_view key, absl::string_view value)> fn,
      absl::string_view start = {}) const;

  // Returns the number of keys in `family` that start with `prefix` (the
  // whole family for an empty prefix). Linear in that number.
  absl::StatusOr<int64_t> Count(Family family, absl::string_view prefix) const;

  // Sequence counters. Each named counter (e.g. "alert_seq", "audit_seq")
  // hands out strictly increasing values starting at 1, never twice, also
  // across restarts and crashes. The last value handed out is stored in kMeta
  // under kSequenceKeyPrefix + name, and cached in memory after first use.
  //
  // Design: allocation and the write that uses the values happen under the
  // counter's mutex, in one atomic batch that also advances the stored
  // counter. So (1) a crash cannot leave records without their counter
  // update or vice versa, and (2) for one counter, batches become visible in
  // sequence order: a reader that sees value N can rely on every record < N
  // of that counter already being visible, which is what makes the alert
  // stream resumable by sequence. The cost is that writers of one counter are
  // serialised (one fsync each); different counters do not contend.

  // Allocates `n` consecutive values of counter `name`, lets `fill` add the
  // records that use them to `batch`, then writes `batch` plus the counter
  // update atomically. fill(first, batch) receives the first of the values
  // first, ..., first + n - 1. Returns `first`. If fill returns an error,
  // that error is returned; if the write fails, its error is returned; in
  // both cases nothing is written and the counter does not advance. `fill`
  // runs with the counter's mutex held: it may read the store but must not
  // allocate from the same counter (deadlock). Errors besides those:
  // InvalidArgument for an empty name or n == 0; OutOfRange when the counter
  // would pass UINT64_MAX; DataLoss when the stored counter is malformed.
  absl::StatusOr<uint64_t> WriteWithSequence(
      absl::string_view name, uint64_t n,
      absl::FunctionRef<absl::Status(uint64_t first, WriteBatch& batch)> fill);

  // Allocates `n` consecutive values of counter `name` on their own and
  // returns the first; durable when it returns (per sync_writes). Prefer
  // WriteWithSequence when the values label records written afterwards,
  // otherwise a crash in between leaves a gap and concurrent writers may
  // commit out of sequence order. Errors as WriteWithSequence.
  absl::StatusOr<uint64_t> NextSequence(absl::string_view name, uint64_t n = 1);

  // Returns the last value handed out by counter `name`, 0 if none.
  absl::StatusOr<uint64_t> LastSequence(absl::string_view name) const;

  // Flushes the memtables of every family to SST files and waits for it.
  // Not needed for durability (the write-ahead log provides it).
  [[nodiscard]] absl::Status Flush();

  // Compacts the keys of `family` from `begin` through `end` (an empty
  // `begin` means from the first key, an empty `end` to the last): flushes
  // the family's memtable when it overlaps the range, then rewrites the
  // range's files down to the bottom level, dropping deleted and overwritten
  // entries, so the space they held is freed. Blocks the caller until done
  // (seconds per GB rewritten); other reads and writes, and background
  // compactions, go on meanwhile. Deleted keys still visible to a scan that
  // is running stay on disk until it ends. Errors: InvalidArgument for an
  // unknown family, FailedPrecondition when closed, otherwise a mapped
  // RocksDB error (the data is unchanged by a failed compaction).
  [[nodiscard]] absl::Status CompactRange(Family family, absl::string_view begin,
                                          absl::string_view end);

  // The bytes on disk of `family`'s SST files, including files that a
  // compaction replaced but a running read still uses (they are deleted when
  // it ends). Data only in the memtable (written since the last flush, and
  // on disk only in the shared write-ahead log) is not counted. Errors:
  // InvalidArgument for an unknown family, FailedPrecondition when closed,
  // Internal when RocksDB does not report the figure.
  absl::StatusOr<uint64_t> FamilyDiskBytes(Family family) const;

  // Flushes, then closes the database and releases the directory lock.
  // Afterwards every other method returns FailedPrecondition. Idempotent:
  // later calls return OK. Must not run concurrently with any other call on
  // this Store. Returns the first error met; the store is closed regardless.
  [[nodiscard]] absl::Status Close();

  // The data directory, as passed to Open.
  const std::string& dir() const { return dir_; }

 private:
  struct Counter;

  Store(std::string dir, const StoreOptions& options);

  // Returns the handle of `family`, or InvalidArgument / FailedPrecondition.
  absl::StatusOr<rocksdb::ColumnFamilyHandle*> Handle(Family family) const;
  absl::Status ScanImpl(Family family, absl::string_view prefix, absl::string_view start,
                        bool reverse,
                        absl::FunctionRef<bool(absl::string_view, absl::string_view)> fn) const;
  // DataLoss for a value of `family`/`key` that is not a valid `type_name`.
  absl::Status ParseError(Family family, absl::string_view key, absl::string_view type_name) const;
  absl::StatusOr<Counter*> GetCounter(absl::string_view name) const;
  absl::Status LoadCounter(absl::string_view name, Counter& counter) const;
  absl::Status InitSchema(bool fresh);

  const std::string dir_;
  const bool sync_writes_;
  const bool write_ahead_log_;
  rocksdb::DB* db_ = nullptr;  // owned; null once closed
  // Indexed by Family; owned. Followed by handles of families this build
  // does not know (opened because RocksDB requires all to be).
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;

  mutable absl::Mutex counters_mu_;
  // Never erased while the Store lives, so Counter pointers stay valid.
  mutable std::map<std::string, std::unique_ptr<Counter>, std::less<>> counters_
      ABSL_GUARDED_BY(counters_mu_);
};

template <typename M>
absl::StatusOr<M> Store::GetMessage(Family family, absl::string_view key) const {
  static_assert(std::is_base_of_v<google::protobuf::MessageLite, M>,
                "GetMessage needs a protobuf message type");
  absl::StatusOr<std::string> bytes = Get(family, key);
  if (!bytes.ok()) return bytes.status();
  M message;
  if (!message.ParseFromString(*bytes)) return ParseError(family, key, message.GetTypeName());
  return message;
}

}  // namespace pantherd::store

#endif  // PANTHERD_STORE_STORE_H_
