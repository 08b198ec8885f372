// pantherd-bench-send: the benchmark's ingestion driver.
//
// Sends JSON-lines event files to DetectionService.IngestEvents, one stream per
// file, all streams at once (one thread each), and measures what a client sees:
// total throughput and, per batch, the acknowledgement latency (from writing the
// batch to reading its IngestEventsResponse, which pantherd sends only once
// everything the batch caused is durable). Unlike `pantherctl send` it loads
// the files into memory before the clock starts, so reading and splitting the
// input is not measured, and it reports the latency of every batch.
//
//   pantherd-bench-send --server 127.0.0.1:PORT [--batch-size 500] [--window 4]
//                       [--source-label api] [--token-file FILE] FILE...
//
// Prints one JSON object on stdout: events, batches, accepted, duplicates,
// rejected, seconds, events_per_second, and batch_latency_us {p50, p90, p99,
// max} over every batch of every stream. Exit code 0 when every batch was
// acknowledged and no event was rejected, 1 otherwise (the reason on stderr),
// 2 for a usage error.
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <deque>
#include <fstream>
#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

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
  std::vector<std::string> files;
};

struct StreamResult {
  int64_t events = 0;
  int64_t batches = 0;
  int64_t accepted = 0;
  int64_t duplicates = 0;
  int64_t rejected = 0;
  std::vector<int64_t> latencies_us;
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

// Sends `events` over one IngestEvents stream with up to `window` batches in
// flight and records each batch's acknowledgement latency.
void RunStream(v1::DetectionService::Stub* stub, const Options& options,
               const std::vector<std::string>& events, StreamResult* result) {
  grpc::ClientContext context;
  if (!options.token.empty()) context.AddMetadata("authorization", "Bearer " + options.token);
  std::unique_ptr<grpc::ClientReaderWriter<v1::IngestEventsRequest, v1::IngestEventsResponse>>
      stream = stub->IngestEvents(&context);
  struct Pending {
    uint64_t id;
    Clock::time_point sent;
  };
  std::deque<Pending> in_flight;
  size_t next = 0;
  uint64_t next_id = 1;
  result->latencies_us.reserve(events.size() / options.batch_size + 1);
  bool broken = false;
  while (!broken) {
    while (next < events.size() && in_flight.size() < static_cast<size_t>(options.window)) {
      v1::IngestEventsRequest request;
      request.set_log_type("Okta.SystemLog");
      request.set_source_label(options.source_label);
      request.set_batch_id(next_id);
      const size_t end = std::min(events.size(), next + static_cast<size_t>(options.batch_size));
      for (; next < end; ++next) request.add_events(events[next]);
      in_flight.push_back({next_id++, Clock::now()});
      if (!stream->Write(request)) {
        broken = true;
        break;
      }
      result->events += request.events_size();
      ++result->batches;
    }
    if (broken || in_flight.empty()) break;
    v1::IngestEventsResponse response;
    if (!stream->Read(&response)) {
      broken = true;
      break;
    }
    const Clock::time_point now = Clock::now();
    if (response.batch_id() != in_flight.front().id) {
      result->error = "answer for batch " + std::to_string(response.batch_id()) + " but " +
                      std::to_string(in_flight.front().id) + " was expected";
      context.TryCancel();
      break;
    }
    result->latencies_us.push_back(
        std::chrono::duration_cast<std::chrono::microseconds>(now - in_flight.front().sent)
            .count());
    in_flight.pop_front();
    result->accepted += response.accepted();
    result->duplicates += response.duplicates();
    result->rejected += response.rejected_size();
    if (response.rejected_size() > 0 && result->error.empty()) {
      result->error = "event rejected: " + response.rejected(0).reason();
    }
  }
  if (!broken && result->error.empty()) stream->WritesDone();
  const grpc::Status status = stream->Finish();
  if (!status.ok() && result->error.empty()) {
    result->error = "IngestEvents failed: " + status.error_message();
  }
  if (!in_flight.empty() && result->error.empty()) {
    result->error = "the stream ended before every batch was acknowledged";
  }
}

int64_t Percentile(const std::vector<int64_t>& sorted, double p) {
  if (sorted.empty()) return 0;
  size_t i = static_cast<size_t>(p * static_cast<double>(sorted.size()));
  return sorted[std::min(i, sorted.size() - 1)];
}

int Usage(const std::string& message) {
  std::cerr << "pantherd-bench-send: " << message << "\n"
            << "usage: pantherd-bench-send --server HOST:PORT [--batch-size N] [--window N] "
               "[--source-label L] [--token-file FILE] FILE...\n";
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  Options options;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--server" || arg == "--batch-size" || arg == "--window" ||
        arg == "--source-label" || arg == "--token-file") {
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
      } else {
        const int n = std::atoi(v.c_str());
        if (n < 1) return Usage(arg + " must be a positive integer");
        (arg == "--batch-size" ? options.batch_size : options.window) = n;
      }
    } else if (!arg.empty() && arg[0] == '-') {
      return Usage("unknown flag " + arg);
    } else {
      options.files.push_back(arg);
    }
  }
  if (options.server.empty()) return Usage("--server is required");
  if (options.files.empty()) return Usage("no event file given");

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
  std::vector<StreamResult> results(inputs.size());
  const Clock::time_point start = Clock::now();
  std::vector<std::thread> threads;
  for (size_t i = 0; i < inputs.size(); ++i) {
    threads.emplace_back(RunStream, stubs[i].get(), std::cref(options), std::cref(inputs[i]),
                         &results[i]);
  }
  for (std::thread& t : threads) t.join();
  const double seconds =
      std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - start).count() / 1e6;

  StreamResult total;
  std::vector<int64_t> latencies;
  for (const StreamResult& r : results) {
    total.events += r.events;
    total.batches += r.batches;
    total.accepted += r.accepted;
    total.duplicates += r.duplicates;
    total.rejected += r.rejected;
    latencies.insert(latencies.end(), r.latencies_us.begin(), r.latencies_us.end());
    if (!r.error.empty() && total.error.empty()) total.error = r.error;
  }
  std::sort(latencies.begin(), latencies.end());
  std::cout << "{\"streams\": " << inputs.size() << ", \"events\": " << total.events
            << ", \"batches\": " << total.batches << ", \"batch_size\": " << options.batch_size
            << ", \"window\": " << options.window << ", \"accepted\": " << total.accepted
            << ", \"duplicates\": " << total.duplicates << ", \"rejected\": " << total.rejected
            << ", \"seconds\": " << seconds
            << ", \"events_per_second\": " << (seconds > 0 ? total.events / seconds : 0.0)
            << ", \"batch_latency_us\": {\"p50\": " << Percentile(latencies, 0.50)
            << ", \"p90\": " << Percentile(latencies, 0.90)
            << ", \"p99\": " << Percentile(latencies, 0.99)
            << ", \"max\": " << (latencies.empty() ? 0 : latencies.back()) << "}}" << std::endl;
  if (!total.error.empty()) {
    std::cerr << "pantherd-bench-send: " << total.error << "\n";
    return 1;
  }
  return 0;
}
