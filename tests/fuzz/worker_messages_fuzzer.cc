// File: tests/fuzz/worker_messages_fuzzer.cc
//
// Fuzz target: the worker channel (proto/pantherd/internal/worker.proto
// framed by engine/ipc.h) and what each side decodes from it, without
// starting a process. The first input byte selects what the rest is:
//
//   0  bytes pantherd sends a worker: engine/worker_host.h's RunWorkerLoop
//      reads them from a socketpair, with a RemoteKv and a KvCache on the
//      same channel (so KvSync snapshots are decoded, and frames that
//      arrive while a key-value call waits are read as its kv_reply) and a
//      handler that turns each evaluated event into a caching-helper call.
//      The other end reads every frame the loop writes back: each must be a
//      well-formed WorkerResponse.
//   1  bytes a worker sends pantherd: frames read with ReadMessage as
//      WorkerResponse, then handled as WorkerPool does (kv_call answered by
//      a key-value backend, kv_writes checked and applied), here with
//      KvMemory.
//   2  a stored key-value item (engine/kv_item.h's DecodeKvItem), which
//      arrives in KvSync snapshots and OP_FETCH replies: a decoded item
//      re-encodes to an item that decodes equal, and every operation applies
//      to it without crashing.
// Other values of the first byte are folded onto these.

#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "engine/ipc.h"
#include "engine/kv_cache.h"
#include "engine/kv_item.h"
#include "engine/kv_memory.h"
#include "engine/worker_host.h"
#include "pantherd/internal/worker.pb.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

namespace engine = ::pantherd::engine;
namespace internal = ::pantherd::internal;

// Larger inputs are skipped: in mode 0 the input must fit in the socket's
// buffer, since it is written before the loop's answers are read.
constexpr size_t kMaxInputBytes = 64 << 10;

const absl::Time kNow = absl::FromUnixSeconds(1700000000);

// Answers like a worker that holds no rules, but turns each evaluated event
// into one caching-helper call through `cache` (the op picked by the event's
// size), as rule code calling panther_detection_helpers.caching would.
class KvHandler : public engine::WorkerHandler {
 public:
  explicit KvHandler(engine::KvCache* cache) : cache_(cache) {}

  absl::StatusOr<internal::LoadResult> Load(const internal::LoadRuleSet& request) override {
    internal::LoadResult result;
    result.set_version(request.version());
    return result;
  }
  absl::StatusOr<pantherd::v1::TestReport> RunTests(const internal::RunTestsTask&) override {
    return pantherd::v1::TestReport();
  }
  absl::StatusOr<internal::EvaluateResult> Evaluate(const internal::EvaluateTask& task) override {
    internal::EvaluateResult result;
    for (const internal::EventToEvaluate& event : task.events()) {
      internal::KvCall call;
      call.set_op(static_cast<internal::KvCall::Op>(1 + event.normalized_json().size() % 11));
      call.set_key(event.log_type());
      call.add_values(event.normalized_json());
      call.set_increment(static_cast<int64_t>(event.normalized_json().size()) - 3);
      call.set_json(event.normalized_json());
      call.set_expire_epoch_seconds(static_cast<int64_t>(event.log_type().size()) * 100000000);
      absl::StatusOr<internal::KvReply> reply = cache_->Call(call);
      internal::EventResult* out = result.add_results();
      if (!reply.ok()) out->set_error(std::string(reply.status().message()));
    }
    return result;
  }

 private:
  engine::KvCache* cache_;
};

void WorkerSide(absl::string_view input) {
  int fds[2];
  FUZZ_CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) == 0, "socketpair");
  const int worker_fd = fds[0];
  const int pantherd_fd = fds[1];
  int responses = 0;
  std::thread pantherd([&] {
    size_t at = 0;
    while (at < input.size()) {
      const ssize_t n = send(pantherd_fd, input.data() + at, input.size() - at, MSG_NOSIGNAL);
      if (n <= 0) break;  // the loop stopped reading and closed its end
      at += static_cast<size_t>(n);
    }
    shutdown(pantherd_fd, SHUT_WR);
    for (;;) {
      internal::WorkerResponse response;
      absl::Status s = engine::ReadMessage(pantherd_fd, &response, absl::InfiniteFuture());
      if (absl::IsUnavailable(s) && s.message() == "worker closed the channel") break;
      FUZZ_CHECK(s.ok(), "the worker wrote a bad frame: %s", s.ToString().c_str());
      ++responses;
    }
  });
  engine::RemoteKv kv(worker_fd);
  engine::KvCache cache(&kv, [] { return kNow; });
  KvHandler handler(&cache);
  const int code = engine::RunWorkerLoop(worker_fd, handler, &kv, &cache);
  FUZZ_CHECK(code == engine::kWorkerExitOk || code == engine::kWorkerExitChannel, "exit code %d",
             code);
  close(worker_fd);
  pantherd.join();
  close(pantherd_fd);
}

// The channel as a memory file: ReadMessage falls back to read(2) on it.
int ChannelFromBytes(absl::string_view bytes) {
  const int fd = memfd_create("worker-channel", MFD_CLOEXEC);
  FUZZ_CHECK(fd >= 0, "memfd_create");
  size_t at = 0;
  while (at < bytes.size()) {
    const ssize_t n = write(fd, bytes.data() + at, bytes.size() - at);
    FUZZ_CHECK(n > 0, "writing the memory file failed");
    at += static_cast<size_t>(n);
  }
  FUZZ_CHECK(lseek(fd, 0, SEEK_SET) == 0, "lseek");
  return fd;
}

void CheckKvResult(const absl::StatusOr<internal::KvReply>& reply) {
  if (reply.ok()) return;
  FUZZ_CHECK(absl::IsInvalidArgument(reply.status()) || absl::IsOutOfRange(reply.status()),
             "unexpected error %s", reply.status().ToString().c_str());
}

void PantherdSide(absl::string_view input) {
  const int fd = ChannelFromBytes(input);
  engine::KvMemory kv([] { return kNow; });
  for (;;) {
    internal::WorkerResponse response;
    absl::Status s = engine::ReadMessage(fd, &response, absl::InfiniteFuture());
    if (!s.ok()) {
      FUZZ_CHECK(absl::IsUnavailable(s) || absl::IsDataLoss(s) || absl::IsInvalidArgument(s),
                 "unexpected error %s", s.ToString().c_str());
      break;
    }
    if (response.has_kv_call()) {
      CheckKvResult(kv.Call(response.kv_call()));
      continue;
    }
    for (const internal::KvCall& write : response.kv_writes()) {
      if (!engine::IsKvWrite(write.op()) || write.op() == internal::KvCall::OP_APPLY_WRITES) {
        break;  // WorkerPool refuses the response here
      }
      CheckKvResult(kv.Call(write));
    }
  }
  close(fd);
}

void StoredItem(absl::string_view input) {
  absl::StatusOr<engine::KvItem> item = engine::DecodeKvItem("key", input);
  if (!item.ok()) {
    FUZZ_CHECK(absl::IsDataLoss(item.status()), "unexpected error %s",
               item.status().ToString().c_str());
    return;
  }
  const std::string encoded = engine::EncodeKvItem(*item);
  absl::StatusOr<engine::KvItem> again = engine::DecodeKvItem("key", encoded);
  FUZZ_CHECK(again.ok() && *again == *item, "an item does not survive re-encoding");
  for (int op = 0; op <= internal::KvCall::OP_APPLY_WRITES + 1; ++op) {
    internal::KvCall call;
    call.set_op(static_cast<internal::KvCall::Op>(op));
    call.set_key("key");
    call.add_values("member");
    call.set_increment(item->counter);
    call.set_json(item->dictionary.empty() ? "{}" : item->dictionary);
    engine::KvItemState state = *item;
    (void)engine::ApplyKvCall(call, absl::ToUnixSeconds(kNow), &state);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0 || size > kMaxInputBytes) return 0;
  const absl::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] % 3) {
    case 0:
      WorkerSide(rest);
      break;
    case 1:
      PantherdSide(rest);
      break;
    default:
      StoredItem(rest);
      break;
  }
  return 0;
}
