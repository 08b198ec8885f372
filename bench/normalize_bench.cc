// pantherd-bench-normalize: the cost of event normalisation, in-process.
//
// Reads a JSON-lines file of raw Okta System Log events (one per line, as
// okta_gen.py writes them) into memory, then times, on one thread and in CPU
// time (CLOCK_THREAD_CPUTIME_ID):
//   parse      the simdjson DOM parse alone, from the same reused padded
//              buffer NormalizeEvent parses from;
//   normalize  the whole NormalizeEvent (parse, indicators, row writing),
//              with a context as the ingest pipeline makes it: one parse time
//              for the run, default (random) row ids.
// Each is run --reps times over every event; the best repetition counts.
//
//   pantherd-bench-normalize [--reps 5] [--log-type Okta.SystemLog]
//                            [--dump OUT] FILE
//
// --dump OUT writes every normalised row (or "ERROR: <message>" for a
// rejected event), one per line, to OUT before timing. Rows are made with a
// fixed parse time (2024-01-01 00:00:00 UTC) and row ids counting up from 0
// in hex, so two builds given the same input write the same bytes when they
// normalise alike: compare their dumps with cmp.
//
// Prints one JSON object on stdout: events, bytes, reps, parse_ns_per_event,
// parse_events_per_second, normalize_ns_per_event,
// normalize_events_per_second, rejected; and a readable summary on stderr.
// Exit code 0 on success, 1 when the file cannot be read or has no events,
// 2 for a usage error.
#include <time.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <iostream>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "engine/normalize.h"
#include "simdjson.h"

namespace {

using pantherd::engine::NormalizeContext;
using pantherd::engine::NormalizedEvent;
using pantherd::engine::NormalizeEvent;

int64_t ThreadCpuNanos() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec;
}

// Counter-based row ids: 32 lowercase hex digits, 0, 1, 2, ...
std::function<std::string()> CountingRowIds() {
  auto counter = std::make_shared<uint64_t>(0);
  return [counter] { return absl::StrFormat("%032x", (*counter)++); };
}

// The context of the timed runs; `dump` adds counting row ids.
NormalizeContext BenchContext(bool dump) {
  NormalizeContext ctx;
  ctx.source_id = "bench-source";
  ctx.source_label = "Okta (bench)";
  ctx.parse_time = absl::FromUnixSeconds(1704067200);  // 2024-01-01 00:00:00 UTC
  if (dump) ctx.row_id_generator = CountingRowIds();
  return ctx;
}

// The simdjson parse NormalizeEvent does, on its own: copy into a reused
// padded buffer, parse without reallocation. Returns false on a parse error.
bool ParseOnly(simdjson::dom::parser& parser, std::vector<char>& padded, const std::string& raw) {
  if (padded.size() < raw.size() + simdjson::SIMDJSON_PADDING) {
    padded.resize(raw.size() + simdjson::SIMDJSON_PADDING);
  }
  std::memcpy(padded.data(), raw.data(), raw.size());
  simdjson::dom::element root;
  return parser.parse(padded.data(), raw.size(), /*realloc_if_needed=*/false).get(root) ==
         simdjson::SUCCESS;
}

int Usage(const char* message) {
  std::cerr << "pantherd-bench-normalize: " << message << "\n"
            << "usage: pantherd-bench-normalize [--reps N] [--log-type T] [--dump OUT] FILE\n";
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  int reps = 5;
  std::string log_type(pantherd::engine::kOktaSystemLog);
  std::string dump_path;
  std::string input_path;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    auto next = [&]() -> const char* { return i + 1 < argc ? argv[++i] : nullptr; };
    if (arg == "--reps") {
      const char* v = next();
      if (v == nullptr || !absl::SimpleAtoi(v, &reps) || reps < 1) {
        return Usage("--reps needs a positive integer");
      }
    } else if (arg == "--log-type") {
      const char* v = next();
      if (v == nullptr) return Usage("--log-type needs a value");
      log_type = v;
    } else if (arg == "--dump") {
      const char* v = next();
      if (v == nullptr) return Usage("--dump needs a file");
      dump_path = v;
    } else if (!arg.empty() && arg[0] == '-') {
      return Usage(("unknown option " + arg).c_str());
    } else if (input_path.empty()) {
      input_path = arg;
    } else {
      return Usage("exactly one input file");
    }
  }
  if (input_path.empty()) return Usage("no input file");

  std::ifstream in(input_path, std::ios::binary);
  if (!in) {
    std::cerr << "pantherd-bench-normalize: cannot read " << input_path << "\n";
    return 1;
  }
  std::vector<std::string> events;
  uint64_t bytes = 0;
  for (std::string line; std::getline(in, line);) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) continue;
    bytes += line.size();
    events.push_back(std::move(line));
  }
  if (events.empty()) {
    std::cerr << "pantherd-bench-normalize: no events in " << input_path << "\n";
    return 1;
  }

  if (!dump_path.empty()) {
    std::ofstream dump(dump_path, std::ios::binary | std::ios::trunc);
    if (!dump) {
      std::cerr << "pantherd-bench-normalize: cannot write " << dump_path << "\n";
      return 1;
    }
    NormalizeContext ctx = BenchContext(/*dump=*/true);
    for (const std::string& raw : events) {
      absl::StatusOr<NormalizedEvent> row = NormalizeEvent(raw, log_type, ctx);
      if (row.ok()) {
        dump << row->json << "\n";
      } else {
        dump << "ERROR: " << row.status().message() << "\n";
      }
    }
    dump.close();
    if (!dump) {
      std::cerr << "pantherd-bench-normalize: writing " << dump_path << " failed\n";
      return 1;
    }
  }

  // Parse only.
  int64_t best_parse = std::numeric_limits<int64_t>::max();
  {
    simdjson::dom::parser parser;
    std::vector<char> padded;
    size_t failures = 0;
    for (int rep = 0; rep < reps; ++rep) {
      int64_t start = ThreadCpuNanos();
      for (const std::string& raw : events) failures += ParseOnly(parser, padded, raw) ? 0 : 1;
      best_parse = std::min(best_parse, ThreadCpuNanos() - start);
    }
    if (failures > 0) std::cerr << "note: " << failures / reps << " events do not parse\n";
  }

  // Full normalisation.
  int64_t best_normalize = std::numeric_limits<int64_t>::max();
  size_t rejected = 0;
  size_t output_bytes = 0;
  {
    NormalizeContext ctx = BenchContext(/*dump=*/false);
    for (int rep = 0; rep < reps; ++rep) {
      rejected = 0;
      output_bytes = 0;
      int64_t start = ThreadCpuNanos();
      for (const std::string& raw : events) {
        absl::StatusOr<NormalizedEvent> row = NormalizeEvent(raw, log_type, ctx);
        if (row.ok()) {
          output_bytes += row->json.size();
        } else {
          ++rejected;
        }
      }
      best_normalize = std::min(best_normalize, ThreadCpuNanos() - start);
    }
  }

  const double n = static_cast<double>(events.size());
  const double parse_ns = static_cast<double>(best_parse) / n;
  const double normalize_ns = static_cast<double>(best_normalize) / n;
  std::cout << absl::StrFormat(
      "{\"events\":%d,\"bytes\":%d,\"reps\":%d,\"parse_ns_per_event\":%.1f,"
      "\"parse_events_per_second\":%.0f,\"normalize_ns_per_event\":%.1f,"
      "\"normalize_events_per_second\":%.0f,\"output_bytes\":%d,\"rejected\":%d}\n",
      events.size(), bytes, reps, parse_ns, 1e9 / parse_ns, normalize_ns, 1e9 / normalize_ns,
      output_bytes, rejected);
  std::cerr << absl::StrFormat(
      "%d events, %.1f MB (%.0f bytes/event), best of %d, CPU time of one thread:\n"
      "  parse only      %8.1f ns/event  %10.0f events/s  %7.1f MB/s\n"
      "  NormalizeEvent  %8.1f ns/event  %10.0f events/s  %7.1f MB/s  (%d rejected)\n",
      events.size(), static_cast<double>(bytes) / 1e6, static_cast<double>(bytes) / n, reps,
      parse_ns, 1e9 / parse_ns, static_cast<double>(bytes) / best_parse * 1e3, normalize_ns,
      1e9 / normalize_ns, static_cast<double>(bytes) / best_normalize * 1e3, rejected);
  return 0;
}
