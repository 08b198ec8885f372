// File: tests/fuzz/make_worker_seeds.cc
//
// Writes the seed corpus of worker_messages_fuzzer (binary protobuf frames,
// which are not written by hand) into the directory given as argument. Built
// only on request, in the ordinary build:
//   cmake --build build --target make_worker_seeds
//   build/tests/fuzz/make_worker_seeds tests/fuzz/corpus/worker_messages_fuzzer
// The first byte of each seed selects the fuzzer's mode (see
// worker_messages_fuzzer.cc).

#include <cstdio>
#include <fstream>
#include <string>

#include "engine/ipc.h"
#include "engine/kv_item.h"
#include "pantherd/internal/worker.pb.h"

namespace {

namespace engine = ::pantherd::engine;
namespace internal = ::pantherd::internal;

std::string Frame(const google::protobuf::MessageLite& message) {
  const std::string body = message.SerializeAsString();
  char header[engine::kFrameHeaderBytes];
  engine::EncodeFrameHeader(static_cast<uint32_t>(body.size()), header);
  return std::string(header, sizeof(header)) + body;
}

std::string Item() {
  engine::KvItem item;
  item.expiry = 1800000000;
  item.counter = 7;
  item.members = {"alice", "bob"};
  item.has_dictionary = true;
  item.dictionary = R"({"seen": 2})";
  return engine::EncodeKvItem(item);
}

bool Write(const std::string& dir, const std::string& name, char mode, const std::string& bytes) {
  std::ofstream out(dir + "/" + name, std::ios::binary);
  out << mode << bytes;
  return static_cast<bool>(out);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s DIR\n", argv[0]);
    return 2;
  }
  const std::string dir = argv[1];
  bool ok = true;

  // Mode 0: what pantherd sends a worker.
  internal::WorkerRequest load;
  load.set_id(1);
  load.mutable_load()->set_version(3);
  pantherd::v1::AnalysisFile* file = load.mutable_load()->add_files();
  file->set_path("rules/a.yml");
  file->set_content("AnalysisType: rule\n");
  internal::KvSync* sync = load.mutable_kv_sync();
  sync->set_has_snapshot(true);
  internal::KvSnapshotItem* snap = sync->add_snapshot();
  snap->set_key("failures:alice");
  snap->set_item(Item());
  internal::WorkerRequest tests;
  tests.set_id(2);
  tests.mutable_run_tests()->add_rule_ids("Okta.Rule");
  tests.mutable_kv_sync()->add_keys("failures:alice");
  ok &= Write(dir, "worker_load_tests", 0, Frame(load) + Frame(tests));

  // An evaluation whose events make the cache fetch (answered by kv_reply),
  // then one that finds the key held.
  internal::WorkerRequest evaluate;
  evaluate.set_id(5);
  for (const char* json : {R"({"a": 1})", "{}", R"({"p_log_type": "Okta.SystemLog"})"}) {
    internal::EventToEvaluate* e = evaluate.mutable_evaluate()->add_events();
    e->set_normalized_json(json);
    e->set_log_type("counter:key");
  }
  internal::WorkerRequest reply;
  reply.set_id(5);
  reply.mutable_kv_reply()->set_call_id(1);
  reply.mutable_kv_reply()->set_present(true);
  reply.mutable_kv_reply()->set_item(Item());
  ok &= Write(dir, "worker_evaluate_fetch", 0, Frame(evaluate) + Frame(reply));
  internal::WorkerRequest cleared = evaluate;
  cleared.set_id(6);
  cleared.mutable_kv_sync()->set_clear_all(true);
  ok &= Write(dir, "worker_evaluate_twice", 0, Frame(evaluate) + Frame(reply) + Frame(cleared));

  internal::WorkerRequest stray;
  stray.set_id(9);
  stray.mutable_kv_reply()->set_call_id(4);
  ok &= Write(dir, "worker_stray_kv_reply", 0, Frame(stray));
  ok &= Write(dir, "worker_truncated", 0, Frame(load).substr(0, 20));
  ok &= Write(dir, "worker_huge_header", 0, std::string("\xff\xff\xff\x7f", 4));
  ok &= Write(dir, "worker_empty_frame", 0, std::string(4, '\0'));

  // Mode 1: what a worker sends pantherd.
  internal::WorkerResponse call;
  call.set_id(5);
  internal::KvCall* kv = call.mutable_kv_call();
  kv->set_call_id(1);
  kv->set_op(internal::KvCall::OP_ADD_TO_STRING_SET);
  kv->set_key("ips:alice");
  kv->add_values("192.0.2.1");
  kv->set_expire_epoch_seconds(1800000000);
  internal::WorkerResponse done;
  done.set_id(5);
  done.mutable_evaluated()->add_results();
  internal::KvCall* write = done.add_kv_writes();
  write->set_op(internal::KvCall::OP_INCREMENT_COUNTER);
  write->set_key("failures:alice");
  write->set_increment(1);
  write->set_now_epoch_seconds(1700000000);
  internal::KvCall* dict = done.add_kv_writes();
  dict->set_op(internal::KvCall::OP_PUT_DICTIONARY);
  dict->set_key("d");
  dict->set_json(R"({"k": [1, 2]})");
  ok &= Write(dir, "pantherd_kv_call_and_writes", 1, Frame(call) + Frame(done));
  internal::WorkerResponse error;
  error.set_id(2);
  error.set_error("no rule set loaded");
  ok &= Write(dir, "pantherd_error", 1, Frame(error) + std::string("\x03\0\0\0\xff\xff\xff", 7));

  // Mode 2: a stored item.
  ok &= Write(dir, "stored_item", 2, Item());
  ok &= Write(dir, "stored_item_short", 2, Item().substr(0, 10));

  if (!ok) {
    std::fprintf(stderr, "cannot write the seeds into %s\n", dir.c_str());
    return 1;
  }
  return 0;
}
