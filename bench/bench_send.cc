// pantherd-bench-send: the benchmark's ingestion driver and alert-latency probe.
//
// Sends JSON-lines event files to DetectionService.IngestEvents, one stream per
// file, all streams at once, and measures what a client sees: total throughput
// and, per batch, the acknowledgement latency (from writing the batch to reading
// its IngestEventsResponse, which pantherd sends only once everything the batch
// caused is durable). Unlike `pantherctl send` it loads the files into memory
// before the clock starts, so reading and splitting the input is not measured,
// and it reports the latency of every batch.
//
//   pantherd-bench-send --server 127.0.0.1:PORT [--batch-size 500] [--window 4]
//                       [--source-label api] [--token-file FILE]
//                       [--rate EVENTS_PER_SECOND] [--subscribe [--drain-seconds 30]]
//                       FILE...
//
// --rate paces the sending: batch k of a stream is written at
// start + k * batch_size / (rate / streams), never earlier; a batch that cannot
// go out on time (its stream already has --window batches unacknowledged) goes
// out as soon as it can and counts as late. Without --rate, each stream sends
// as fast as its window allows.
//
// --subscribe (one FILE only) also opens a StreamAlerts subscriber in this
// process before the first batch and records when each alert change arrives,
// on the same monotonic clock as the sends and acknowledgements. Each
// acknowledgement says how many notifiable changes its batch made
// (alerts_created + alerts_updated), pantherd commits one stream's batches in
// order, and their changes carry increasing sequences, so the received changes
// (in sequence order) split exactly into the changes of each batch. For every
// change it reports the time from the acknowledgement of its batch to its
// arrival (negative when the change arrived first: pantherd publishes a batch's
// changes just before it acknowledges the batch), from the batch's write to its
// arrival, and from the change's recorded time (server clock) to its arrival.
// After the last acknowledgement it waits up to --drain-seconds for the
// changes still expected.
//
// Prints one JSON object on stdout: streams, events, batches, accepted,
// duplicates, rejected, seconds, events_per_second, batch_latency_us {p50, p90,
// p99, max} over every batch of every stream; with --rate also rate,
// send_events_per_second, late_batches and max_send_lag_us; with --subscribe
// also "alerts": expected, received, created, updated, verified (created
// changes whose triggering event, named in the change, is in the batch they
// were attributed to), unmatched, gaps and
// from_ack_us / from_send_us / from_record_us {min, p50, p90, p99, max}.
// Exit code 0 when every batch was acknowledged, no event was rejected and
// (with --subscribe) every expected change arrived and matched its batch; 1
// otherwise (the reason on stderr); 2 for a usage error.
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <deque>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "pantherd/v1/admin_service.grpc.pb.h"
#include "pantherd/v1/detection_service.grpc.pb.h"

namespace {

namespace v1 = ::pantherd::v1;
using Clock = std::chrono::steady_clock;

struct Options {
  std::string server;
  int batch_size = 500;
  int window = 4;
  std::string source_label = "api";
  // The API token sent as "authorization: Bearer <token>" (first line of the file).
  std::string token;
  // Events per second over all streams; 0: as fast as the window allows.
  double rate = 0;
  bool subscribe = false;
  int drain_seconds = 30;
  std::vector<std::string> files;
};

// Microseconds since `origin` on the monotonic clock.
int64_t MicrosSince(Clock::time_point origin) {
  return std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - origin).count();
}

// One batch as the client saw it; times in µs since the run's start.
struct BatchRecord {
  int64_t scheduled_us = 0;  // when pacing wanted it written (0 without --rate)
  int64_t sent_us = -1;      // just before Write
  int64_t acked_us = -1;     // when its response was read
  int32_t created = 0;       // alerts_created of the response
  int32_t updated = 0;       // alerts_updated of the response
};

struct StreamResult {
  int64_t events = 0;
  int64_t accepted = 0;
  int64_t duplicates = 0;
  int64_t rejected = 0;
  int64_t late_batches = 0;
  int64_t max_send_lag_us = 0;
  // In send order; only batches that were written.
  std::vector<BatchRecord> batches;
  std::string error;
};

// The non-empty lines of `path`; false (with `error`) when it cannot be read.
bool ReadLines(const std::string& path, std::vector<std::string>* lines, std::string* error) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    *error = "cannot open " + path;
    return false;
  }
  std::string line;
  while (std::getline(in, line)) {
    if (line.find_first_not_of(" \t\r") != std::string::npos) lines->push_back(std::move(line));
  }
  return true;
}

// The window of one stream: the writer waits for room, the reader frees it.
struct InFlight {
  absl::Mutex mu;
  std::deque<size_t> batches ABSL_GUARDED_BY(mu);  // indices into StreamResult::batches
  bool stop ABSL_GUARDED_BY(mu) = false;           // the reader ended: write no more
};

struct RoomArgs {
  InFlight* flight;
  size_t window;
};

// Whether the writer may go on: the window has room or the reader ended.
bool HasRoom(RoomArgs* a) ABSL_EXCLUSIVE_LOCKS_REQUIRED(a->flight->mu) {
  return a->flight->stop || a->flight->batches.size() < a->window;
}

// Sends `events` over one IngestEvents stream: a writer thread writes the
// batches (paced when `events_per_second` > 0) with up to `window` of them
// unacknowledged, this thread reads the acknowledgements.
void RunStream(v1::DetectionService::Stub* stub, const Options& options,
               const std::vector<std::string>& events, double events_per_second,
               Clock::time_point start, StreamResult* result) {
  grpc::ClientContext context;
  if (!options.token.empty()) context.AddMetadata("authorization", "Bearer " + options.token);
  std::unique_ptr<grpc::ClientReaderWriter<v1::IngestEventsRequest, v1::IngestEventsResponse>>
      stream = stub->IngestEvents(&context);
  const size_t batch_size = static_cast<size_t>(options.batch_size);
  const size_t n_batches = (events.size() + batch_size - 1) / batch_size;
  // Sized up front: the writer fills entries the reader reads (both under
  // `flight.mu` for the hand-over), and the vector never reallocates.
  result->batches.resize(n_batches);
  InFlight flight;
  bool write_failed = false;

  std::thread writer([&] {
    for (size_t k = 0; k < n_batches; ++k) {
      v1::IngestEventsRequest request;
      request.set_log_type("Okta.SystemLog");
      request.set_source_label(options.source_label);
      request.set_batch_id(k + 1);
      const size_t end = std::min(events.size(), (k + 1) * batch_size);
      for (size_t i = k * batch_size; i < end; ++i) request.add_events(events[i]);
      BatchRecord record;
      if (events_per_second > 0) {
        record.scheduled_us =
            static_cast<int64_t>(static_cast<double>(k * batch_size) * 1e6 / events_per_second);
        const int64_t wait_us = record.scheduled_us - MicrosSince(start);
        if (wait_us > 0) std::this_thread::sleep_for(std::chrono::microseconds(wait_us));
      }
      {
        absl::MutexLock lock(&flight.mu);
        RoomArgs room{&flight, static_cast<size_t>(options.window)};
        flight.mu.Await(absl::Condition(&HasRoom, &room));
        if (flight.stop) break;
        record.sent_us = MicrosSince(start);
        result->batches[k] = record;
        flight.batches.push_back(k);
      }
      if (events_per_second > 0) {
        const int64_t lag = record.sent_us - record.scheduled_us;
        result->max_send_lag_us = std::max(result->max_send_lag_us, lag);
        if (lag > 1000) ++result->late_batches;
      }
      result->events += request.events_size();
      if (!stream->Write(request)) {
        write_failed = true;
        break;
      }
    }
    if (!write_failed) stream->WritesDone();
  });

  size_t acked = 0;
  v1::IngestEventsResponse response;
  while (stream->Read(&response)) {
    const int64_t now_us = MicrosSince(start);
    absl::MutexLock lock(&flight.mu);
    if (flight.batches.empty() || response.batch_id() != flight.batches.front() + 1) {
      result->error = "answer for batch " + std::to_string(response.batch_id()) +
                      " that was not the oldest one in flight";
      context.TryCancel();
      break;
    }
    BatchRecord& record = result->batches[flight.batches.front()];
    flight.batches.pop_front();
    record.acked_us = now_us;
    record.created = response.alerts_created();
    record.updated = response.alerts_updated();
    ++acked;
    result->accepted += response.accepted();
    result->duplicates += response.duplicates();
    result->rejected += response.rejected_size();
    if (response.rejected_size() > 0 && result->error.empty()) {
      result->error = "event rejected: " + response.rejected(0).reason();
    }
  }
  {
    absl::MutexLock lock(&flight.mu);
    flight.stop = true;
  }
  writer.join();
  const grpc::Status status = stream->Finish();
  if (!status.ok() && result->error.empty()) {
    result->error = "IngestEvents failed: " + status.error_message();
  }
  // Keep only the batches that were written.
  size_t written = 0;
  while (written < result->batches.size() && result->batches[written].sent_us >= 0) ++written;
  result->batches.resize(written);
  if (acked != n_batches && result->error.empty()) {
    result->error =
        "the stream ended with " + std::to_string(n_batches - acked) + " batches not acknowledged";
  }
}

// One alert change as the subscriber received it.
struct ReceivedChange {
  uint64_t sequence = 0;
  // For KIND_CREATED: the event that reached the threshold (its matched event
  // number `threshold`), when the change carries it; empty otherwise.
  std::string trigger_event_id;
  v1::AlertChange::Kind kind = v1::AlertChange::KIND_UNSPECIFIED;
  Clock::time_point received;    // monotonic
  int64_t received_unix_us = 0;  // system clock
  int64_t recorded_unix_us = 0;  // AlertChange.time (server clock, same machine)
};

// A StreamAlerts call read by its own thread. Thread-safe.
class Subscriber {
 public:
  Subscriber(v1::DetectionService::Stub* stub, const std::string& token) {
    if (!token.empty()) context_.AddMetadata("authorization", "Bearer " + token);
    v1::StreamAlertsRequest request;
    // From the oldest retained change: nothing is missed even if the stream
    // registers after the first batch was committed.
    request.set_start_after_sequence(0);
    reader_ = stub->StreamAlerts(&context_, request);
    thread_ = std::thread([this] { Loop(); });
  }

  // Waits until at least `count` changes arrived or `timeout` passed; returns
  // how many arrived.
  size_t WaitFor(size_t count, absl::Duration timeout) ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    WaitArgs args{this, count};
    mu_.AwaitWithTimeout(absl::Condition(&Arrived, &args), timeout);
    return changes_.size();
  }

  // Ends the call and returns every change received, in sequence order, and
  // the number of Gap messages. `error` is set when the stream failed before
  // it was cancelled.
  std::vector<ReceivedChange> Stop(int64_t* gaps, std::string* error) ABSL_LOCKS_EXCLUDED(mu_) {
    context_.TryCancel();
    thread_.join();
    absl::MutexLock lock(&mu_);
    *gaps = gaps_;
    *error = error_;
    std::vector<ReceivedChange> out = std::move(changes_);
    std::sort(out.begin(), out.end(), [](const ReceivedChange& a, const ReceivedChange& b) {
      return a.sequence < b.sequence;
    });
    return out;
  }

 private:
  struct WaitArgs {
    Subscriber* self;
    size_t count;
  };
  static bool Arrived(WaitArgs* a) ABSL_EXCLUSIVE_LOCKS_REQUIRED(a->self->mu_) {
    return a->self->ended_ || a->self->changes_.size() >= a->count;
  }

  void Loop() {
    v1::StreamAlertsResponse response;
    while (reader_->Read(&response)) {
      const Clock::time_point received = Clock::now();
      const int64_t received_unix_us = absl::ToUnixMicros(absl::Now());
      if (response.has_change()) {
        const v1::AlertChange& c = response.change();
        ReceivedChange r;
        r.sequence = c.sequence();
        r.kind = c.kind();
        const int64_t threshold = std::max<int64_t>(1, c.alert().threshold());
        if (c.kind() == v1::AlertChange::KIND_CREATED &&
            c.alert().matched_events_size() >= threshold) {
          r.trigger_event_id = c.alert().matched_events(static_cast<int>(threshold - 1)).event_id();
        }
        r.received = received;
        r.received_unix_us = received_unix_us;
        r.recorded_unix_us = c.time().seconds() * 1000000 + c.time().nanos() / 1000;
        absl::MutexLock lock(&mu_);
        changes_.push_back(r);
      } else if (response.has_gap()) {
        absl::MutexLock lock(&mu_);
        ++gaps_;
      }
    }
    const grpc::Status status = reader_->Finish();
    absl::MutexLock lock(&mu_);
    ended_ = true;
    if (!status.ok() && status.error_code() != grpc::StatusCode::CANCELLED) {
      error_ = "StreamAlerts failed: " + status.error_message();
    }
  }

  grpc::ClientContext context_;
  std::unique_ptr<grpc::ClientReader<v1::StreamAlertsResponse>> reader_;
  std::thread thread_;
  absl::Mutex mu_;
  std::vector<ReceivedChange> changes_ ABSL_GUARDED_BY(mu_);
  int64_t gaps_ ABSL_GUARDED_BY(mu_) = 0;
  bool ended_ ABSL_GUARDED_BY(mu_) = false;
  std::string error_ ABSL_GUARDED_BY(mu_);
};

// Polls GetServerStatus until the server counts a StreamAlerts subscriber, for
// at most 5 s (the run is correct either way: the subscriber replays from the
// start; this only keeps the first changes off the replay path).
void WaitForSubscriber(const std::shared_ptr<grpc::Channel>& channel, const std::string& token) {
  std::unique_ptr<v1::AdminService::Stub> admin = v1::AdminService::NewStub(channel);
  const Clock::time_point deadline = Clock::now() + std::chrono::seconds(5);
  while (Clock::now() < deadline) {
    grpc::ClientContext context;
    if (!token.empty()) context.AddMetadata("authorization", "Bearer " + token);
    v1::GetServerStatusResponse status;
    if (admin->GetServerStatus(&context, {}, &status).ok() && status.streams().subscribers() > 0) {
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

// The value of the top-level "uuid" member of an Okta event line, found
// textually (the generator writes `"uuid":"<id>"`); empty when absent.
std::string EventId(const std::string& line) {
  static constexpr char kKey[] = "\"uuid\":\"";
  const size_t at = line.rfind(kKey);
  if (at == std::string::npos) return "";
  const size_t begin = at + sizeof(kKey) - 1;
  const size_t end = line.find('"', begin);
  return end == std::string::npos ? "" : line.substr(begin, end - begin);
}

int64_t Percentile(const std::vector<int64_t>& sorted, double p) {
  if (sorted.empty()) return 0;
  size_t i = static_cast<size_t>(p * static_cast<double>(sorted.size()));
  return sorted[std::min(i, sorted.size() - 1)];
}

// {"min": .., "p50": .., "p90": .., "p99": .., "max": ..} of `values` (sorted here).
std::string Distribution(std::vector<int64_t> values) {
  std::sort(values.begin(), values.end());
  std::ostringstream out;
  out << "{\"min\": " << (values.empty() ? 0 : values.front())
      << ", \"p50\": " << Percentile(values, 0.50) << ", \"p90\": " << Percentile(values, 0.90)
      << ", \"p99\": " << Percentile(values, 0.99)
      << ", \"max\": " << (values.empty() ? 0 : values.back()) << "}";
  return out.str();
}

// Splits `changes` (sequence order) into the batches of `batches` (commit
// order) by each batch's acknowledged counts and returns the "alerts" JSON
// object; `error` is set when the changes do not account for the counts.
// `batch_of_event` maps an event id (uuid) to the index of its batch: a created
// change whose triggering event is known must come from that batch (counted in
// "verified", else in "unmatched").
std::string AlertLatencies(Clock::time_point start, const std::vector<BatchRecord>& batches,
                           const std::vector<ReceivedChange>& changes, int64_t gaps,
                           const absl::flat_hash_map<std::string, size_t>& batch_of_event,
                           std::string* error) {
  std::vector<int64_t> from_ack, from_send, from_record;
  size_t next = 0;
  int64_t expected = 0, created = 0, updated = 0, unmatched = 0, verified = 0;
  for (size_t k = 0; k < batches.size(); ++k) {
    const BatchRecord& b = batches[k];
    const size_t n = static_cast<size_t>(b.created) + static_cast<size_t>(b.updated);
    expected += static_cast<int64_t>(n);
    if (n == 0) continue;
    if (next + n > changes.size()) {
      unmatched += static_cast<int64_t>(next + n - std::max(next, changes.size()));
      next = changes.size();
      continue;
    }
    int32_t batch_created = 0;
    for (size_t i = next; i < next + n; ++i) {
      const ReceivedChange& c = changes[i];
      if (c.kind == v1::AlertChange::KIND_CREATED) ++batch_created;
      if (!c.trigger_event_id.empty()) {
        auto it = batch_of_event.find(c.trigger_event_id);
        if (it != batch_of_event.end() && it->second == k) {
          ++verified;
        } else {
          ++unmatched;
        }
      }
      const int64_t received_us =
          std::chrono::duration_cast<std::chrono::microseconds>(c.received - start).count();
      from_ack.push_back(received_us - b.acked_us);
      from_send.push_back(received_us - b.sent_us);
      from_record.push_back(c.received_unix_us - c.recorded_unix_us);
    }
    if (batch_created != b.created) unmatched += static_cast<int64_t>(n);
    created += batch_created;
    updated += static_cast<int64_t>(n) - batch_created;
    next += n;
  }
  const int64_t received = static_cast<int64_t>(changes.size());
  if (received != expected && error->empty()) {
    *error = "the subscriber received " + std::to_string(received) + " alert changes, the " +
             "acknowledgements announced " + std::to_string(expected);
  } else if (unmatched > 0 && error->empty()) {
    *error = std::to_string(unmatched) +
             " alert changes do not match their batch (the kinds its acknowledgement announced, "
             "or the batch of their triggering event)";
  } else if (gaps > 0 && error->empty()) {
    *error = "the subscriber received " + std::to_string(gaps) + " gap messages";
  }
  std::ostringstream out;
  out << "{\"expected\": " << expected << ", \"received\": " << received
      << ", \"created\": " << created << ", \"updated\": " << updated
      << ", \"verified\": " << verified << ", \"unmatched\": " << unmatched
      << ", \"gaps\": " << gaps << ", \"from_ack_us\": " << Distribution(std::move(from_ack))
      << ", \"from_send_us\": " << Distribution(std::move(from_send))
      << ", \"from_record_us\": " << Distribution(std::move(from_record)) << "}";
  return out.str();
}

int Usage(const std::string& message) {
  std::cerr << "pantherd-bench-send: " << message << "\n"
            << "usage: pantherd-bench-send --server HOST:PORT [--batch-size N] [--window N] "
               "[--source-label L] [--token-file FILE] [--rate EVENTS_PER_SECOND] "
               "[--subscribe] [--drain-seconds N] FILE...\n";
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  Options options;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--subscribe") {
      options.subscribe = true;
    } else if (arg == "--server" || arg == "--batch-size" || arg == "--window" ||
               arg == "--source-label" || arg == "--token-file" || arg == "--rate" ||
               arg == "--drain-seconds") {
      if (i + 1 >= argc) return Usage(arg + " needs a value");
      const std::string v = argv[++i];
      if (arg == "--server") {
        options.server = v;
      } else if (arg == "--token-file") {
        std::ifstream in(v);
        if (!std::getline(in, options.token) || options.token.empty()) {
          return Usage("--token-file " + v + ": cannot read a token from it");
        }
      } else if (arg == "--source-label") {
        options.source_label = v;
      } else if (arg == "--rate") {
        char* end = nullptr;
        options.rate = std::strtod(v.c_str(), &end);
        if (end == v.c_str() || *end != '\0' || !(options.rate > 0)) {
          return Usage("--rate must be a positive number of events per second");
        }
      } else {
        const int n = std::atoi(v.c_str());
        if (n < 1) return Usage(arg + " must be a positive integer");
        if (arg == "--batch-size") {
          options.batch_size = n;
        } else if (arg == "--window") {
          options.window = n;
        } else {
          options.drain_seconds = n;
        }
      }
    } else if (!arg.empty() && arg[0] == '-') {
      return Usage("unknown flag " + arg);
    } else {
      options.files.push_back(arg);
    }
  }
  if (options.server.empty()) return Usage("--server is required");
  if (options.files.empty()) return Usage("no event file given");
  if (options.subscribe && options.files.size() != 1) {
    return Usage("--subscribe needs exactly one FILE (one stream: its batches commit in order)");
  }

  std::vector<std::vector<std::string>> inputs(options.files.size());
  for (size_t i = 0; i < options.files.size(); ++i) {
    std::string error;
    if (!ReadLines(options.files[i], &inputs[i], &error)) {
      std::cerr << "pantherd-bench-send: " << error << "\n";
      return 1;
    }
  }
  grpc::ChannelArguments args;
  args.SetMaxSendMessageSize(256 << 20);
  args.SetMaxReceiveMessageSize(256 << 20);
  // One channel (one HTTP/2 connection) per stream, as independent clients would.
  std::vector<std::unique_ptr<v1::DetectionService::Stub>> stubs;
  for (size_t i = 0; i < inputs.size(); ++i) {
    args.SetInt("bench.stream", static_cast<int>(i));  // Distinct args: no shared subchannel.
    stubs.push_back(v1::DetectionService::NewStub(
        grpc::CreateCustomChannel(options.server, grpc::InsecureChannelCredentials(), args)));
  }

  // The subscriber has its own connection, like a separate consumer.
  std::unique_ptr<Subscriber> subscriber;
  std::unique_ptr<v1::DetectionService::Stub> subscriber_stub;
  if (options.subscribe) {
    args.SetInt("bench.stream", -1);
    std::shared_ptr<grpc::Channel> channel =
        grpc::CreateCustomChannel(options.server, grpc::InsecureChannelCredentials(), args);
    subscriber_stub = v1::DetectionService::NewStub(channel);
    subscriber = std::make_unique<Subscriber>(subscriber_stub.get(), options.token);
    WaitForSubscriber(channel, options.token);
  }

  std::vector<StreamResult> results(inputs.size());
  const double per_stream_rate = options.rate / static_cast<double>(inputs.size());
  const Clock::time_point start = Clock::now();
  std::vector<std::thread> threads;
  for (size_t i = 0; i < inputs.size(); ++i) {
    threads.emplace_back(RunStream, stubs[i].get(), std::cref(options), std::cref(inputs[i]),
                         per_stream_rate, start, &results[i]);
  }
  for (std::thread& t : threads) t.join();
  const double seconds = static_cast<double>(MicrosSince(start)) / 1e6;

  StreamResult total;
  std::vector<int64_t> latencies;
  int64_t first_send = -1, last_send = 0;
  for (const StreamResult& r : results) {
    total.events += r.events;
    total.accepted += r.accepted;
    total.duplicates += r.duplicates;
    total.rejected += r.rejected;
    total.late_batches += r.late_batches;
    total.max_send_lag_us = std::max(total.max_send_lag_us, r.max_send_lag_us);
    for (const BatchRecord& b : r.batches) {
      if (b.acked_us >= 0) latencies.push_back(b.acked_us - b.sent_us);
      if (first_send < 0 || b.sent_us < first_send) first_send = b.sent_us;
      last_send = std::max(last_send, b.sent_us);
    }
    total.batches.insert(total.batches.end(), r.batches.begin(), r.batches.end());
    if (!r.error.empty() && total.error.empty()) total.error = r.error;
  }
  std::sort(latencies.begin(), latencies.end());
  std::ostringstream out;
  out << "{\"streams\": " << inputs.size() << ", \"events\": " << total.events
      << ", \"batches\": " << total.batches.size() << ", \"batch_size\": " << options.batch_size
      << ", \"window\": " << options.window << ", \"accepted\": " << total.accepted
      << ", \"duplicates\": " << total.duplicates << ", \"rejected\": " << total.rejected
      << ", \"seconds\": " << seconds
      << ", \"events_per_second\": " << (seconds > 0 ? total.events / seconds : 0.0)
      << ", \"batch_latency_us\": {\"p50\": " << Percentile(latencies, 0.50)
      << ", \"p90\": " << Percentile(latencies, 0.90)
      << ", \"p99\": " << Percentile(latencies, 0.99)
      << ", \"max\": " << (latencies.empty() ? 0 : latencies.back()) << "}";
  if (options.rate > 0) {
    // Events written per second from the first write to the last, i.e. the
    // rate actually offered (the last batch's events count toward the span).
    const double span = static_cast<double>(last_send - first_send) / 1e6;
    const int64_t last_batch =
        total.events - static_cast<int64_t>(total.batches.size() - 1) * options.batch_size;
    out << ", \"rate\": " << options.rate << ", \"send_events_per_second\": "
        << (span > 0 ? static_cast<double>(total.events - last_batch) / span : 0.0)
        << ", \"late_batches\": " << total.late_batches
        << ", \"max_send_lag_us\": " << total.max_send_lag_us;
  }
  if (subscriber != nullptr) {
    int64_t expected = 0;
    for (const BatchRecord& b : total.batches) expected += b.created + b.updated;
    subscriber->WaitFor(static_cast<size_t>(expected), absl::Seconds(options.drain_seconds));
    int64_t gaps = 0;
    std::string stream_error;
    const std::vector<ReceivedChange> changes = subscriber->Stop(&gaps, &stream_error);
    std::string alert_error = stream_error;
    // Event ids (Okta's uuid) of the one input, by batch.
    absl::flat_hash_map<std::string, size_t> batch_of_event;
    for (size_t i = 0; i < inputs[0].size(); ++i) {
      std::string id = EventId(inputs[0][i]);
      if (!id.empty()) batch_of_event[std::move(id)] = i / static_cast<size_t>(options.batch_size);
    }
    out << ", \"alerts\": "
        << AlertLatencies(start, total.batches, changes, gaps, batch_of_event, &alert_error);
    if (!alert_error.empty() && total.error.empty()) total.error = alert_error;
  }
  out << "}";
  std::cout << out.str() << std::endl;
  if (!total.error.empty()) {
    std::cerr << "pantherd-bench-send: " << total.error << "\n";
    return 1;
  }
  return 0;
}
