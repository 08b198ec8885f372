// File: engine/kv_test_util.h
//
// Test helper for the key-value space's tests (kv_memory_test, kv_store_test,
// kv_cache_test):
// builds a KvCall from its fields. Header-only, for tests only.
#ifndef PANTHERD_ENGINE_KV_TEST_UTIL_H_
#define PANTHERD_ENGINE_KV_TEST_UTIL_H_

#include <cstdint>
#include <string>
#include <vector>

#include "pantherd/internal/worker.pb.h"

namespace pantherd::engine {

// A call of `op` on `key` with the given arguments (call id 1).
inline internal::KvCall MakeKvCall(internal::KvCall::Op op, const std::string& key,
                                   const std::vector<std::string>& values = {},
                                   int64_t increment = 0, int64_t expire = 0,
                                   const std::string& json = "") {
  internal::KvCall call;
  call.set_call_id(1);
  call.set_op(op);
  call.set_key(key);
  for (const std::string& v : values) call.add_values(v);
  call.set_increment(increment);
  call.set_expire_epoch_seconds(expire);
  call.set_json(json);
  return call;
}

}  // namespace pantherd::engine

#endif  // PANTHERD_ENGINE_KV_TEST_UTIL_H_
