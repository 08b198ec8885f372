#include "engine/ipc.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <string>
#include <thread>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "pantherd/internal/worker.pb.h"

namespace pantherd::engine {
namespace {

using ::testing::HasSubstr;

class Channel {
 public:
  Channel() { EXPECT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds_), 0); }
  ~Channel() {
    CloseA();
    CloseB();
  }
  int a() const { return fds_[0]; }
  int b() const { return fds_[1]; }
  void CloseA() {
    if (fds_[0] >= 0) close(fds_[0]);
    fds_[0] = -1;
  }
  void CloseB() {
    if (fds_[1] >= 0) close(fds_[1]);
    fds_[1] = -1;
  }

 private:
  int fds_[2] = {-1, -1};
};

internal::WorkerRequest SampleRequest(size_t content_bytes) {
  internal::WorkerRequest request;
  request.set_id(42);
  request.mutable_load()->set_version(7);
  v1::AnalysisFile* file = request.mutable_load()->add_files();
  file->set_path("rules/a.py");
  file->set_content(std::string(content_bytes, 'x'));
  return request;
}

absl::Time Soon(int ms) { return absl::Now() + absl::Milliseconds(ms); }

TEST(IpcTest, RoundTrip) {
  Channel ch;
  const internal::WorkerRequest sent = SampleRequest(100);
  ASSERT_TRUE(WriteMessage(ch.a(), sent, Soon(1000)).ok());
  internal::WorkerRequest got;
  ASSERT_TRUE(ReadMessage(ch.b(), &got, Soon(1000)).ok());
  EXPECT_EQ(got.SerializeAsString(), sent.SerializeAsString());
}

TEST(IpcTest, EmptyMessageRoundTrip) {
  Channel ch;
  ASSERT_TRUE(WriteMessage(ch.a(), internal::WorkerResponse(), Soon(1000)).ok());
  internal::WorkerResponse got;
  got.set_id(9);
  ASSERT_TRUE(ReadMessage(ch.b(), &got, Soon(1000)).ok());
  EXPECT_EQ(got.id(), 0u);
}

// MergeMessage keeps what the message held; cleared repeated elements are
// reused, with their strings' capacity (the worker loop relies on it).
TEST(IpcTest, MergeMessageMergesAndReusesClearedElements) {
  Channel ch;
  internal::WorkerRequest first;
  first.set_id(1);
  first.mutable_evaluate()->add_events()->set_normalized_json(std::string(3000, 'a'));
  internal::WorkerRequest second;
  second.mutable_evaluate()->add_events()->set_normalized_json("{}");
  second.mutable_evaluate()->add_events()->set_normalized_json(std::string(100, 'b'));
  ASSERT_TRUE(WriteMessage(ch.a(), first, Soon(1000)).ok());
  ASSERT_TRUE(WriteMessage(ch.a(), second, Soon(1000)).ok());

  internal::WorkerRequest got;
  ASSERT_TRUE(MergeMessage(ch.b(), &got, Soon(1000)).ok());
  ASSERT_EQ(got.evaluate().events_size(), 1);
  const char* kept = got.evaluate().events(0).normalized_json().data();
  got.mutable_evaluate()->Clear();
  ASSERT_TRUE(MergeMessage(ch.b(), &got, Soon(1000)).ok());
  EXPECT_EQ(got.id(), 1u);  // not cleared by the merge
  ASSERT_EQ(got.evaluate().events_size(), 2);
  EXPECT_EQ(got.evaluate().events(0).normalized_json(), "{}");
  EXPECT_EQ(got.evaluate().events(1).normalized_json(), std::string(100, 'b'));
  EXPECT_EQ(got.evaluate().events(0).normalized_json().data(), kept);  // the same buffer

  // A garbage body is still DataLoss.
  char frame[kFrameHeaderBytes + 5];
  EncodeFrameHeader(5, frame);
  std::memset(frame + kFrameHeaderBytes, 0xff, 5);
  ASSERT_EQ(write(ch.a(), frame, sizeof(frame)), static_cast<ssize_t>(sizeof(frame)));
  EXPECT_EQ(MergeMessage(ch.b(), &got, Soon(1000)).code(), absl::StatusCode::kDataLoss);
}

TEST(IpcTest, LargeMessageAcrossThreadsAndBackToBackFrames) {
  Channel ch;
  const internal::WorkerRequest big = SampleRequest(8 << 20);  // far beyond the socket buffer
  std::thread writer([&] {
    EXPECT_TRUE(WriteMessage(ch.a(), big, Soon(10000)).ok());
    EXPECT_TRUE(WriteMessage(ch.a(), SampleRequest(3), Soon(10000)).ok());
  });
  internal::WorkerRequest got;
  ASSERT_TRUE(ReadMessage(ch.b(), &got, Soon(10000)).ok());
  EXPECT_EQ(got.load().files(0).content().size(), size_t{8} << 20);
  ASSERT_TRUE(ReadMessage(ch.b(), &got, Soon(10000)).ok());
  EXPECT_EQ(got.load().files(0).content(), "xxx");
  writer.join();
}

TEST(IpcTest, EofBeforeAFrameIsUnavailable) {
  Channel ch;
  ch.CloseA();
  internal::WorkerRequest got;
  absl::Status s = ReadMessage(ch.b(), &got, Soon(1000));
  EXPECT_TRUE(absl::IsUnavailable(s)) << s;
  EXPECT_EQ(s.message(), "worker closed the channel");
}

TEST(IpcTest, EofInsideAFrameIsUnavailable) {
  Channel ch;
  char header[kFrameHeaderBytes];
  EncodeFrameHeader(100, header);
  ASSERT_EQ(write(ch.a(), header, sizeof(header)), 4);
  ASSERT_EQ(write(ch.a(), "0123456789", 10), 10);
  ch.CloseA();
  internal::WorkerRequest got;
  absl::Status s = ReadMessage(ch.b(), &got, Soon(1000));
  EXPECT_TRUE(absl::IsUnavailable(s)) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr("middle of a message"));
}

long MaxRssKb() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_maxrss;
}

// Found by tests/fuzz/worker_messages_fuzzer (25 inputs a second): the
// reader allocated and zero-filled the whole announced body before reading
// any of it, so each 4-byte header announcing up to 256 MiB cost that much
// memory. A worker's rule code can write such a header to pantherd.
TEST(IpcTest, AnnouncedSizeIsNotAllocatedBeforeTheBytesArrive) {
  const long before_kb = MaxRssKb();
  for (int i = 0; i < 4; ++i) {
    Channel ch;
    char header[kFrameHeaderBytes];
    EncodeFrameHeader(static_cast<uint32_t>(kMaxFrameBytes), header);
    ASSERT_EQ(write(ch.a(), header, sizeof(header)), 4);
    ASSERT_EQ(write(ch.a(), "0123456789", 10), 10);
    ch.CloseA();
    internal::WorkerResponse got;
    absl::Status s = ReadMessage(ch.b(), &got, Soon(1000));
    EXPECT_TRUE(absl::IsUnavailable(s)) << s;
    EXPECT_THAT(std::string(s.message()), HasSubstr("middle of a message"));
  }
  // 256 MiB zero-filled would raise the peak by 262144 KiB.
  EXPECT_LT(MaxRssKb() - before_kb, 32 * 1024);
  // A large frame that does arrive is still read whole.
  Channel ch;
  const internal::WorkerRequest big = SampleRequest(size_t{5} << 20);
  std::thread writer([&] { EXPECT_TRUE(WriteMessage(ch.a(), big).ok()); });
  internal::WorkerRequest got;
  absl::Status s = ReadMessage(ch.b(), &got, Soon(10000));
  writer.join();
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(got.load().files(0).content().size(), size_t{5} << 20);
}

TEST(IpcTest, TimeoutIsDeadlineExceeded) {
  Channel ch;
  internal::WorkerRequest got;
  const absl::Time start = absl::Now();
  absl::Status s = ReadMessage(ch.b(), &got, start + absl::Milliseconds(150));
  const absl::Duration took = absl::Now() - start;
  EXPECT_TRUE(absl::IsDeadlineExceeded(s)) << s;
  EXPECT_GE(took, absl::Milliseconds(150));
  EXPECT_LT(took, absl::Seconds(2));
}

TEST(IpcTest, TimeoutInsideAFrame) {
  Channel ch;
  char header[kFrameHeaderBytes];
  EncodeFrameHeader(100, header);
  ASSERT_EQ(write(ch.a(), header, sizeof(header)), 4);
  internal::WorkerRequest got;
  absl::Status s = ReadMessage(ch.b(), &got, Soon(100));
  EXPECT_TRUE(absl::IsDeadlineExceeded(s)) << s;
}

TEST(IpcTest, OversizedFrameIsInvalidArgument) {
  Channel ch;
  char header[kFrameHeaderBytes];
  EncodeFrameHeader(static_cast<uint32_t>(kMaxFrameBytes + 1), header);
  ASSERT_EQ(write(ch.a(), header, sizeof(header)), 4);
  internal::WorkerRequest got;
  absl::Status s = ReadMessage(ch.b(), &got, Soon(1000));
  EXPECT_TRUE(absl::IsInvalidArgument(s)) << s;
}

TEST(IpcTest, OversizedMessageIsNotWritten) {
  Channel ch;
  const internal::WorkerRequest huge = SampleRequest(kMaxFrameBytes + 1);
  absl::Status s = WriteMessage(ch.a(), huge, Soon(1000));
  EXPECT_TRUE(absl::IsInvalidArgument(s)) << s;
  // Nothing reached the peer.
  internal::WorkerRequest got;
  EXPECT_TRUE(absl::IsDeadlineExceeded(ReadMessage(ch.b(), &got, Soon(50))));
}

TEST(IpcTest, GarbageBodyIsDataLoss) {
  Channel ch;
  char frame[kFrameHeaderBytes + 3];
  EncodeFrameHeader(3, frame);
  frame[4] = '\xff';
  frame[5] = '\xff';
  frame[6] = '\xff';
  ASSERT_EQ(write(ch.a(), frame, sizeof(frame)), static_cast<ssize_t>(sizeof(frame)));
  internal::WorkerRequest got;
  absl::Status s = ReadMessage(ch.b(), &got, Soon(1000));
  EXPECT_TRUE(absl::IsDataLoss(s)) << s;
}

TEST(IpcTest, WriteToClosedPeerIsUnavailableWithoutSigpipe) {
  Channel ch;
  ch.CloseB();
  // SIGPIPE's default action would kill the test; MSG_NOSIGNAL prevents it.
  absl::Status s = WriteMessage(ch.a(), SampleRequest(10), Soon(1000));
  EXPECT_TRUE(absl::IsUnavailable(s)) << s;
}

TEST(IpcTest, WriteTimesOutWhenThePeerDoesNotRead) {
  Channel ch;
  absl::Status s = WriteMessage(ch.a(), SampleRequest(16 << 20), Soon(200));
  EXPECT_TRUE(absl::IsDeadlineExceeded(s)) << s;
}

TEST(IpcTest, WorksOverPipes) {
  int p[2];
  ASSERT_EQ(pipe2(p, O_CLOEXEC), 0);
  const internal::WorkerRequest sent = SampleRequest(1000);
  ASSERT_TRUE(WriteMessage(p[1], sent, Soon(1000)).ok());
  internal::WorkerRequest got;
  ASSERT_TRUE(ReadMessage(p[0], &got, Soon(1000)).ok());
  EXPECT_EQ(got.SerializeAsString(), sent.SerializeAsString());
  close(p[1]);
  EXPECT_TRUE(absl::IsUnavailable(ReadMessage(p[0], &got, Soon(1000))));
  close(p[0]);
}

void NoopHandler(int) {}

TEST(IpcTest, ReadSurvivesSignals) {
  struct sigaction action {};
  action.sa_handler = NoopHandler;  // no SA_RESTART: poll/read return EINTR
  struct sigaction old {};
  ASSERT_EQ(sigaction(SIGUSR1, &action, &old), 0);
  Channel ch;
  std::atomic<bool> done{false};
  absl::Status status;
  internal::WorkerRequest got;
  std::thread reader([&] {
    status = ReadMessage(ch.b(), &got, Soon(5000));
    done = true;
  });
  for (int i = 0; i < 20; ++i) {
    pthread_kill(reader.native_handle(), SIGUSR1);
    absl::SleepFor(absl::Milliseconds(5));
  }
  ASSERT_TRUE(WriteMessage(ch.a(), SampleRequest(5), Soon(1000)).ok());
  reader.join();
  EXPECT_TRUE(status.ok()) << status;
  EXPECT_EQ(got.id(), 42u);
  sigaction(SIGUSR1, &old, nullptr);
}

}  // namespace
}  // namespace pantherd::engine
