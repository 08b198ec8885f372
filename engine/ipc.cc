#include "engine/ipc.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <string>

#include "absl/strings/str_cat.h"
#include "google/protobuf/io/coded_stream.h"

namespace pantherd::engine {
namespace {

// Milliseconds poll(2) should wait to reach `deadline`: -1 for an infinite
// deadline, 0 when it has passed, rounded up otherwise.
int PollTimeoutMs(absl::Time deadline) {
  if (deadline == absl::InfiniteFuture()) return -1;
  const absl::Duration left = deadline - absl::Now();
  if (left <= absl::ZeroDuration()) return 0;
  const int64_t ms = absl::ToInt64Milliseconds(absl::Ceil(left, absl::Milliseconds(1)));
  return ms > INT_MAX ? INT_MAX : static_cast<int>(ms);
}

// Waits for `events` on `fd` until `deadline`. OK when ready (or on
// POLLHUP/POLLERR: the next read/write reports it), DeadlineExceeded, or
// Internal.
absl::Status WaitFor(int fd, short events, absl::Time deadline, const char* what) {
  for (;;) {
    pollfd p{fd, events, 0};
    const int rc = poll(&p, 1, PollTimeoutMs(deadline));
    if (rc > 0) return absl::OkStatus();
    if (rc == 0) {
      if (deadline != absl::InfiniteFuture() && absl::Now() >= deadline) {
        return absl::DeadlineExceededError(absl::StrCat("timed out ", what, " the worker channel"));
      }
      continue;  // woke early (rounding); wait for the rest
    }
    if (errno == EINTR) continue;
    return absl::InternalError(absl::StrCat("poll on the worker channel: ", std::strerror(errno)));
  }
}

// Writes all of [data, data + size). Sockets get MSG_NOSIGNAL | MSG_DONTWAIT;
// other descriptors plain write(2).
absl::Status WriteAll(int fd, const char* data, size_t size, absl::Time deadline) {
  bool is_socket = true;
  while (size > 0) {
    ssize_t n;
    if (is_socket) {
      n = send(fd, data, size, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n < 0 && errno == ENOTSOCK) {
        is_socket = false;
        continue;
      }
    } else {
      n = write(fd, data, size);
    }
    if (n > 0) {
      data += n;
      size -= static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      absl::Status waited = WaitFor(fd, POLLOUT, deadline, "writing to");
      if (!waited.ok()) return waited;
      continue;
    }
    if (n < 0 && (errno == EPIPE || errno == ECONNRESET)) {
      return absl::UnavailableError("worker closed the channel");
    }
    return absl::InternalError(absl::StrCat("write to the worker channel: ",
                                            n == 0 ? "no progress" : std::strerror(errno)));
  }
  return absl::OkStatus();
}

// Reads exactly `size` bytes. `*got_any` tells whether any byte was read
// (EOF before the first byte is a clean close, after it a truncation).
absl::Status ReadAll(int fd, char* data, size_t size, absl::Time deadline, bool* got_any) {
  bool is_socket = true;
  while (size > 0) {
    absl::Status ready = WaitFor(fd, POLLIN, deadline, "reading from");
    if (!ready.ok()) return ready;
    ssize_t n;
    if (is_socket) {
      n = recv(fd, data, size, MSG_DONTWAIT);
      if (n < 0 && errno == ENOTSOCK) {
        is_socket = false;
        continue;
      }
    } else {
      n = read(fd, data, size);
    }
    if (n > 0) {
      *got_any = true;
      data += n;
      size -= static_cast<size_t>(n);
      continue;
    }
    if (n == 0) {
      return absl::UnavailableError(*got_any
                                        ? "worker closed the channel in the middle of a message"
                                        : "worker closed the channel");
    }
    if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK) continue;
    if (errno == ECONNRESET) return absl::UnavailableError("worker closed the channel");
    return absl::InternalError(
        absl::StrCat("read from the worker channel: ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

}  // namespace

void EncodeFrameHeader(uint32_t size, char out[kFrameHeaderBytes]) {
  for (size_t i = 0; i < kFrameHeaderBytes; ++i)
    out[i] = static_cast<char>((size >> (8 * i)) & 0xff);
}

namespace {

// Frames above this size do not keep their buffer.
constexpr size_t kKeptBufferBytes = size_t{8} << 20;

// A frame's body is read into at most this many bytes of buffer before its
// first bytes have arrived (see ReadFrame).
constexpr size_t kFirstReadBytes = size_t{1} << 20;

// The calling thread's frame buffer, at least `size` bytes long.
std::string& FrameBuffer(size_t size) {
  thread_local std::string buffer;
  if (buffer.size() < size) buffer.resize(size);
  return buffer;
}

void ReleaseIfLarge(std::string& buffer) {
  if (buffer.size() > kKeptBufferBytes) std::string().swap(buffer);
}

absl::Status WriteFrame(int fd, const google::protobuf::MessageLite& message,
                        const google::protobuf::MessageLite* overlay, absl::Time deadline) {
  const size_t first = message.ByteSizeLong();
  const size_t second = overlay == nullptr ? 0 : overlay->ByteSizeLong();
  const size_t size = first + second;
  if (size > kMaxFrameBytes) {
    return absl::InvalidArgumentError(absl::StrCat("message of ", size,
                                                   " bytes exceeds the worker channel limit of ",
                                                   kMaxFrameBytes, " bytes"));
  }
  std::string& frame = FrameBuffer(kFrameHeaderBytes + size);
  EncodeFrameHeader(static_cast<uint32_t>(size), frame.data());
  uint8_t* body = reinterpret_cast<uint8_t*>(frame.data() + kFrameHeaderBytes);
  if (!message.SerializeToArray(body, static_cast<int>(first)) ||
      (overlay != nullptr && !overlay->SerializeToArray(body + first, static_cast<int>(second)))) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot serialise ", message.GetTypeName(), " for the worker channel"));
  }
  absl::Status status = WriteAll(fd, frame.data(), kFrameHeaderBytes + size, deadline);
  ReleaseIfLarge(frame);
  return status;
}

}  // namespace

absl::Status WriteMessage(int fd, const google::protobuf::MessageLite& message,
                          absl::Time deadline) {
  return WriteFrame(fd, message, nullptr, deadline);
}

absl::Status WriteMessageWithOverlay(int fd, const google::protobuf::MessageLite& message,
                                     const google::protobuf::MessageLite& overlay,
                                     absl::Time deadline) {
  return WriteFrame(fd, message, &overlay, deadline);
}

namespace {

// Reads one frame and merges it into `*message`.
absl::Status ReadFrame(int fd, google::protobuf::MessageLite* message, absl::Time deadline) {
  unsigned char header[kFrameHeaderBytes];
  bool got_any = false;
  absl::Status status =
      ReadAll(fd, reinterpret_cast<char*>(header), sizeof(header), deadline, &got_any);
  if (!status.ok()) return status;
  uint32_t size = 0;
  for (size_t i = 0; i < kFrameHeaderBytes; ++i)
    size |= static_cast<uint32_t>(header[i]) << (8 * i);
  if (size > kMaxFrameBytes) {
    return absl::InvalidArgumentError(absl::StrCat("worker channel frame of ", size,
                                                   " bytes exceeds the limit of ", kMaxFrameBytes,
                                                   " bytes"));
  }
  // The buffer grows with the bytes that arrive (doubling from
  // kFirstReadBytes), not to the announced size at once: a peer that sends
  // only a header announcing 256 MiB costs at most kFirstReadBytes.
  size_t got = 0;
  while (got < size) {
    const size_t until = std::min<size_t>(size, std::max(got * 2, kFirstReadBytes));
    std::string& buffer = FrameBuffer(until);
    status = ReadAll(fd, buffer.data() + got, until - got, deadline, &got_any);
    if (!status.ok()) return status;
    got = until;
  }
  std::string& body = FrameBuffer(size);
  google::protobuf::io::CodedInputStream input(reinterpret_cast<const uint8_t*>(body.data()),
                                               static_cast<int>(size));
  const bool parsed = message->MergeFromCodedStream(&input) && input.ConsumedEntireMessage();
  ReleaseIfLarge(body);
  if (!parsed) {
    return absl::DataLossError(absl::StrCat("worker channel frame of ", size,
                                            " bytes is not a valid ", message->GetTypeName()));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ReadMessage(int fd, google::protobuf::MessageLite* message, absl::Time deadline) {
  message->Clear();
  return ReadFrame(fd, message, deadline);
}

absl::Status MergeMessage(int fd, google::protobuf::MessageLite* message, absl::Time deadline) {
  return ReadFrame(fd, message, deadline);
}

}  // namespace pantherd::engine
