// pantherd-soak-inspect: what a stopped pantherd's store holds, for the soak
// test (tests/soak/soak_test.py).
//
//   pantherd-soak-inspect DATA_DIR [--compact] [--dump FAMILY]...
//
// Opens the RocksDB database in DATA_DIR (pantherd must not be running: the
// directory lock makes a second opener fail), optionally compacts every
// column family fully (so that deleted keys and their tombstones leave the
// files, as they eventually do in a long-running server), and prints one JSON
// object on stdout:
//
//   {"families": {"processed": {"keys": 12, "sst_bytes": 2048}, ...},
//    "dump": {"dedup": [["<key hex>", "<value hex>"], ...], ...}}
//
// "keys" is an exact count (a full scan), "sst_bytes" RocksDB's
// rocksdb.total-sst-files-size of the family. Values are dumped as hex for
// the test to decode with the Python stubs of the public protos. Exit status
// 0, or 1 with a message on stderr.
//
// It opens the database with RocksDB directly (not store::Store) because the
// store offers no compaction; it writes nothing but what compaction rewrites.
#include <cstdio>
#include <iostream>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "rocksdb/db.h"
#include "rocksdb/options.h"

namespace {

std::string Hex(const rocksdb::Slice& s) {
  static const char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(s.size() * 2);
  for (size_t i = 0; i < s.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    out.push_back(kDigits[c >> 4]);
    out.push_back(kDigits[c & 15]);
  }
  return out;
}

std::string JsonString(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(c);
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\u%04x", c);
      out += buf;
    } else {
      out.push_back(c);
    }
  }
  return out + "\"";
}

int Fail(const std::string& what, const rocksdb::Status& s) {
  std::cerr << "pantherd-soak-inspect: " << what << ": " << s.ToString() << "\n";
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "usage: pantherd-soak-inspect DATA_DIR [--compact] [--dump FAMILY]...\n";
    return 2;
  }
  const std::string dir = argv[1];
  bool compact = false;
  std::set<std::string> dump;
  for (int i = 2; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--compact") {
      compact = true;
    } else if (arg == "--dump" && i + 1 < argc) {
      dump.insert(argv[++i]);
    } else {
      std::cerr << "pantherd-soak-inspect: unknown argument " << arg << "\n";
      return 2;
    }
  }

  std::vector<std::string> names;
  rocksdb::Status s = rocksdb::DB::ListColumnFamilies(rocksdb::DBOptions(), dir, &names);
  if (!s.ok()) return Fail("cannot list the column families of " + dir, s);
  std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
  for (const std::string& name : names) {
    descriptors.emplace_back(name, rocksdb::ColumnFamilyOptions());
  }
  rocksdb::DBOptions options;
  options.create_if_missing = false;
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  s = rocksdb::DB::Open(options, dir, descriptors, &handles, &raw);
  if (!s.ok()) return Fail("cannot open " + dir, s);
  std::unique_ptr<rocksdb::DB> db(raw);

  if (compact) {
    rocksdb::CompactRangeOptions how;
    how.bottommost_level_compaction = rocksdb::BottommostLevelCompaction::kForce;
    for (rocksdb::ColumnFamilyHandle* h : handles) {
      s = db->Flush(rocksdb::FlushOptions(), h);
      if (!s.ok()) return Fail("flush of " + h->GetName(), s);
      s = db->CompactRange(how, h, nullptr, nullptr);
      if (!s.ok()) return Fail("compaction of " + h->GetName(), s);
    }
  }

  std::string out = "{\"families\": {";
  std::string dumped;
  bool first = true;
  for (rocksdb::ColumnFamilyHandle* h : handles) {
    int64_t keys = 0;
    const bool dumping = dump.count(h->GetName()) > 0;
    std::string rows;
    std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions(), h));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      ++keys;
      if (dumping) {
        if (!rows.empty()) rows += ", ";
        rows += "[\"" + Hex(it->key()) + "\", \"" + Hex(it->value()) + "\"]";
      }
    }
    if (!it->status().ok()) return Fail("scan of " + h->GetName(), it->status());
    uint64_t sst_bytes = 0;
    db->GetIntProperty(h, "rocksdb.total-sst-files-size", &sst_bytes);
    if (!first) out += ", ";
    first = false;
    out += JsonString(h->GetName()) + ": {\"keys\": " + std::to_string(keys) +
           ", \"sst_bytes\": " + std::to_string(sst_bytes) + "}";
    if (dumping) {
      if (!dumped.empty()) dumped += ", ";
      dumped += JsonString(h->GetName()) + ": [" + rows + "]";
    }
  }
  out += "}, \"dump\": {" + dumped + "}}";
  std::cout << out << "\n";

  for (rocksdb::ColumnFamilyHandle* h : handles) {
    s = db->DestroyColumnFamilyHandle(h);
    if (!s.ok()) return Fail("close", s);
  }
  s = db->Close();
  if (!s.ok()) return Fail("close", s);
  return 0;
}
