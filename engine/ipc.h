// File: engine/ipc.h
//
// Message framing between pantherd and its rule worker processes
// (proto/pantherd/internal/worker.proto): each message is a 4-byte
// little-endian length followed by that many bytes of a serialised protobuf
// message. The channel is one end of a socketpair (any stream fd works).
// Each thread reuses one buffer for the frames it writes and reads (released
// after a frame larger than 8 MiB), so a message costs no allocation of its
// size. A frame being read grows that buffer as its bytes arrive (from 1 MiB,
// doubling), so a header announcing a large frame costs no memory until the
// peer actually sends it.
//
//   PANTHERD_RETURN_IF_ERROR(WriteMessage(fd, request, deadline));
//   internal::WorkerResponse response;
//   PANTHERD_RETURN_IF_ERROR(ReadMessage(fd, &response, deadline));
//
// Both calls wait with poll(2) and retry on EINTR and EAGAIN, so they work on
// blocking and non-blocking descriptors alike; writes to sockets use
// MSG_NOSIGNAL, so a peer that has died yields an error, never SIGPIPE.
//
// After any error but DeadlineExceeded-before-the-first-byte the stream may be
// desynchronised (part of a frame was consumed or sent): the caller must stop
// using the channel. pantherd kills the worker in that case.
//
// Thread-safety: the functions keep no state; concurrent reads (or concurrent
// writes) on one fd interleave frames and must be serialised by the caller.
#ifndef PANTHERD_ENGINE_IPC_H_
#define PANTHERD_ENGINE_IPC_H_

#include <cstddef>
#include <cstdint>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "google/protobuf/message_lite.h"

namespace pantherd::engine {

// Largest message body either side accepts (256 MiB). A whole rule set
// travels in one LoadRuleSet; panther-analysis in full is about 15 MiB.
inline constexpr size_t kMaxFrameBytes = size_t{256} << 20;

// Size of the length prefix.
inline constexpr size_t kFrameHeaderBytes = 4;

// Serialises `message` and writes it as one frame. Errors:
//   InvalidArgument   the message is larger than kMaxFrameBytes, or cannot be
//                     serialised; nothing was written;
//   DeadlineExceeded  the peer did not take the bytes before `deadline`
//                     (only possible when the fd is non-blocking or a socket);
//   Unavailable       the peer closed the channel (EPIPE, ECONNRESET);
//   Internal          any other write error (names errno).
[[nodiscard]] absl::Status WriteMessage(int fd, const google::protobuf::MessageLite& message,
                                        absl::Time deadline = absl::InfiniteFuture());

// Writes `message` followed by `overlay` as one frame, which the reader
// parses as one message: `overlay`'s fields replace (scalars) or merge into
// (messages, repeated fields) `message`'s, as protobuf parsing of
// concatenated encodings does. Both must be of the same type. Lets a sender
// add per-send fields (a request id) to a large message without copying it.
// Errors: those of WriteMessage.
[[nodiscard]] absl::Status WriteMessageWithOverlay(int fd,
                                                   const google::protobuf::MessageLite& message,
                                                   const google::protobuf::MessageLite& overlay,
                                                   absl::Time deadline = absl::InfiniteFuture());

// Reads one frame and parses it into `*message` (cleared first). Waits until
// `deadline` for the whole frame. Errors:
//   DeadlineExceeded  the frame was not complete at `deadline`;
//   Unavailable       "worker closed the channel": EOF before a frame began,
//                     or in the middle of one (the message says which);
//   InvalidArgument   the announced length exceeds kMaxFrameBytes;
//   DataLoss          the body does not parse as the message type;
//   Internal          a read or poll error (names errno).
[[nodiscard]] absl::Status ReadMessage(int fd, google::protobuf::MessageLite* message,
                                       absl::Time deadline);

// As ReadMessage, but merges the frame into `*message` without clearing it
// first (protobuf merge semantics). A caller that clears sub-messages itself
// reuses their allocated elements and string capacity from frame to frame.
[[nodiscard]] absl::Status MergeMessage(int fd, google::protobuf::MessageLite* message,
                                        absl::Time deadline);

// Encodes `size` as the 4-byte little-endian frame header into `out`.
// Exposed for tests that forge frames.
void EncodeFrameHeader(uint32_t size, char out[kFrameHeaderBytes]);

}  // namespace pantherd::engine

#endif  // PANTHERD_ENGINE_IPC_H_
