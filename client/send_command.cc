// `pantherctl send FILE|-`: streams events to DetectionService.IngestEvents.
#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <deque>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "client/commands.h"
#include "client/stream_support.h"
#include "pantherd/v1/detection_service.grpc.pb.h"
#include "proto/base/status_macros.h"

namespace pantherd::client {
namespace {

namespace v1 = ::pantherd::v1;

struct SendArgs {
  std::string path;
  std::string log_type = kDefaultSendLogType;
  int batch_size = kDefaultSendBatchSize;
  std::string source_label = "api";
  bool quiet = false;
};

// One dedup window of a rule as last reported.
struct WindowSeen {
  int64_t count = 0;
  int64_t threshold = 0;
  bool alerted = false;
};

// What one rule did with the events sent, summed over the batches.
struct RuleSummary {
  int64_t matches = 0;
  int64_t errors = 0;
  int64_t alerts_created = 0;
  int64_t alerts_updated = 0;
  int64_t signals_created = 0;
  int64_t signals_updated = 0;
  // By dedup string and window start; the latest state reported.
  std::map<std::pair<std::string, int64_t>, WindowSeen> windows;
};

struct Rejection {
  int64_t index;
  int64_t line;
  std::string reason;
};

// A batch sent and not yet answered.
struct InFlight {
  uint64_t batch_id;
  std::vector<int64_t> lines;  // Of its events, in order.
  int64_t first_index;
};

struct Summary {
  int64_t sent = 0;
  int64_t acknowledged = 0;
  int64_t batches = 0;
  int64_t accepted = 0;
  int64_t duplicates = 0;
  int64_t rejected = 0;
  int64_t alerts_created = 0;
  int64_t alerts_updated = 0;
  std::map<std::string, RuleSummary> rules;
  std::vector<Rejection> rejections;  // The first kMaxRejectionsKept.
  // The first event not acknowledged (and every later one), when any.
  std::optional<std::pair<int64_t, int64_t>> unacknowledged;  // index, line
  std::string error;
};

constexpr size_t kMaxRejectionsKept = 1000;
constexpr size_t kMaxRejectionsShown = 20;
constexpr absl::Duration kProgressRedrawInterval = absl::Milliseconds(100);
// Dedup windows followed per rule for the summary.
constexpr size_t kMaxWindowsTracked = 10000;

// The windows of `rule` still below their threshold.
std::vector<WindowSeen> OpenWindows(const RuleSummary& rule) {
  std::vector<WindowSeen> open;
  for (const auto& [key, w] : rule.windows) {
    if (!w.alerted) open.push_back(w);
  }
  return open;
}

// "Okta.FailedLogin: 3 matches, 0 alerts (window 3/5 open)"; a rule with
// CreateAlert: false adds ", 1 signal".
std::string RuleLine(const std::string& id, const RuleSummary& rule) {
  std::string line =
      absl::StrCat(EscapeForTerminal(id), ": ", Plural(rule.matches, "match", "matches"), ", ",
                   Plural(rule.alerts_created, "alert", "alerts"));
  if (rule.alerts_updated > 0) absl::StrAppend(&line, " (", rule.alerts_updated, " updated)");
  if (rule.signals_created > 0 || rule.signals_updated > 0) {
    absl::StrAppend(&line, ", ", Plural(rule.signals_created, "signal", "signals"));
    if (rule.signals_updated > 0) absl::StrAppend(&line, " (", rule.signals_updated, " updated)");
  }
  if (rule.errors > 0) absl::StrAppend(&line, ", ", Plural(rule.errors, "error", "errors"));
  const std::vector<WindowSeen> open = OpenWindows(rule);
  if (open.size() == 1) {
    absl::StrAppend(&line, " (window ", open[0].count, "/", open[0].threshold, " open)");
  } else if (open.size() > 1) {
    const WindowSeen& fullest =
        *std::max_element(open.begin(), open.end(), [](const WindowSeen& a, const WindowSeen& b) {
          return a.count * b.threshold < b.count * a.threshold;
        });
    absl::StrAppend(&line, " (", open.size(), " windows open, fullest ", fullest.count, "/",
                    fullest.threshold, ")");
  }
  return line;
}

// Folds one answer's per-rule figures into the summary.
void AddRuleStats(const v1::IngestEventsResponse& response,
                  std::map<std::string, RuleSummary>& rules) {
  for (const v1::RuleIngestStats& stats : response.rules()) {
    RuleSummary& rule = rules[stats.rule_id()];
    rule.matches += stats.matches();
    rule.errors += stats.errors();
    rule.alerts_created += stats.alerts_created();
    rule.alerts_updated += stats.alerts_updated();
    rule.signals_created += stats.signals_created();
    rule.signals_updated += stats.signals_updated();
    for (const v1::RuleWindowState& w : stats.windows()) {
      const std::pair<std::string, int64_t> key = {
          w.dedup_string(), w.window_start().seconds() * 1'000'000'000 + w.window_start().nanos()};
      // Bounded memory for sends with very many dedup strings.
      if (rule.windows.size() >= kMaxWindowsTracked && rule.windows.count(key) == 0) continue;
      WindowSeen& seen = rule.windows[key];
      seen.count = w.count();
      seen.threshold = w.threshold();
      seen.alerted = !w.alert_id().empty();
    }
  }
}

// The width of the terminal on standard error (80 when unknown).
int TerminalWidth() {
  winsize size{};
  if (ioctl(STDERR_FILENO, TIOCGWINSZ, &size) == 0 && size.ws_col > 0) return size.ws_col;
  return 80;
}

// The number of events in the file at `path`, for the progress bar; nullopt
// for standard input or when it cannot be read to the end.
std::optional<int64_t> CountEvents(const std::string& path) {
  if (path == "-") return std::nullopt;
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  EventReader reader(in);
  RawEvent event;
  while (true) {
    absl::StatusOr<bool> next = reader.Next(&event);
    if (!next.ok()) return std::nullopt;
    if (!*next) return reader.next_index();
  }
}

void PrintSummary(const SendArgs& args, const Summary& s, CommandEnv& env) {
  std::ostream& out = env.out();
  if (env.json()) {
    std::string rejected = "[";
    for (size_t i = 0; i < s.rejections.size(); ++i) {
      const Rejection& r = s.rejections[i];
      absl::StrAppend(&rejected, i == 0 ? "" : ", ", "{\"index\": ", r.index,
                      ", \"line\": ", r.line, ", \"reason\": ", JsonQuote(r.reason), "}");
    }
    rejected += "]";
    JsonObject object;
    object.AddString("file", args.path)
        .AddString("logType", args.log_type)
        .AddInt("events", s.sent)
        .AddInt("batches", s.batches)
        .AddInt("acknowledged", s.acknowledged)
        .AddInt("accepted", s.accepted)
        .AddInt("duplicates", s.duplicates)
        .AddInt("rejected", s.rejected)
        .AddRaw("rejectedEvents", rejected)
        .AddInt("alertsCreated", s.alerts_created)
        .AddInt("alertsUpdated", s.alerts_updated);
    std::string rules = "[";
    for (const auto& [id, rule] : s.rules) {
      std::string windows = "[";
      for (const WindowSeen& w : OpenWindows(rule)) {
        absl::StrAppend(&windows, windows.size() == 1 ? "" : ", ", "{\"count\": ", w.count,
                        ", \"threshold\": ", w.threshold, "}");
      }
      windows += "]";
      JsonObject entry;
      entry.AddString("ruleId", id)
          .AddInt("matches", rule.matches)
          .AddInt("alertsCreated", rule.alerts_created)
          .AddInt("alertsUpdated", rule.alerts_updated)
          .AddInt("signalsCreated", rule.signals_created)
          .AddInt("signalsUpdated", rule.signals_updated)
          .AddInt("errors", rule.errors)
          .AddRaw("openWindows", windows);
      absl::StrAppend(&rules, rules.size() == 1 ? "" : ", ", entry.ToString());
    }
    rules += "]";
    object.AddRaw("rules", rules);
    if (s.unacknowledged.has_value()) {
      object.AddInt("unacknowledgedFromIndex", s.unacknowledged->first)
          .AddInt("unacknowledgedFromLine", s.unacknowledged->second);
    }
    if (!s.error.empty()) object.AddString("error", s.error);
    out << object.ToString() << '\n';
    return;
  }
  PrintFields({{"Events sent", absl::StrCat(s.sent)},
               {"Accepted", absl::StrCat(s.accepted)},
               {"Duplicates", absl::StrCat(s.duplicates)},
               {"Rejected", absl::StrCat(s.rejected)},
               {"Alerts created", absl::StrCat(s.alerts_created)},
               {"Alerts updated", absl::StrCat(s.alerts_updated)}},
              out);
  if (s.rules.empty()) {
    if (s.accepted > 0) out << "Matches by rule: none (no enabled rule matched these events)\n";
  } else {
    out << "Matches by rule:\n";
    for (const auto& [id, rule] : s.rules) out << "  " << RuleLine(id, rule) << '\n';
  }
  if (!s.rejections.empty()) {
    out << "Rejected events:\n";
    for (size_t i = 0; i < s.rejections.size() && i < kMaxRejectionsShown; ++i) {
      const Rejection& r = s.rejections[i];
      out << "  #" << r.index << " (line " << r.line
          << "): " << EscapeForTerminal(OneLine(r.reason)) << '\n';
    }
    if (s.rejected > static_cast<int64_t>(kMaxRejectionsShown)) {
      out << "  ... and " << s.rejected - static_cast<int64_t>(kMaxRejectionsShown)
          << " more (see --output json)\n";
    }
  }
  if (s.unacknowledged.has_value()) {
    out << "Not acknowledged: events from #" << s.unacknowledged->first << " (line "
        << s.unacknowledged->second << ") on; re-send them (re-sending is safe)\n";
  }
}

absl::Status Send(const SendArgs& args, CommandEnv& env) {
  std::ifstream file;
  std::istream* in = &std::cin;
  if (args.path != "-") {
    file.open(args.path, std::ios::binary);
    if (!file) return absl::NotFoundError(absl::StrCat("cannot open ", args.path));
    in = &file;
  }
  EventReader reader(*in);
  // The progress bar: on a terminal only, not with --quiet or --output json.
  const bool progress = env.err_terminal() && !args.quiet && !env.json();
  const std::optional<int64_t> total = progress ? CountEvents(args.path) : std::nullopt;
  PANTHERD_ASSIGN_OR_RETURN(Connection * conn, env.Connect());
  const absl::Time started = absl::Now();
  absl::Time last_drawn = absl::InfinitePast();

  InterruptScope interrupts;
  grpc::ClientContext context;
  conn->PrepareStreamContext(&context);
  StreamWatchdog watchdog(&context, conn->options().timeout);
  std::unique_ptr<grpc::ClientReaderWriter<v1::IngestEventsRequest, v1::IngestEventsResponse>>
      stream = conn->detection().IngestEvents(&context);

  Summary summary;
  std::deque<InFlight> in_flight;
  std::optional<RawEvent> lookahead;
  absl::Status input_error;
  bool input_done = false;
  bool stream_broken = false;
  uint64_t next_batch_id = 1;
  absl::Status protocol_error;

  // Redraws the progress bar in place (at most every kProgressRedrawInterval
  // unless `force`).
  auto draw_progress = [&](bool force) {
    if (!progress) return;
    const absl::Time now = absl::Now();
    if (!force && now - last_drawn < kProgressRedrawInterval) return;
    last_drawn = now;
    env.err() << '\r'
              << RenderProgressBar(summary.acknowledged, total, now - started, TerminalWidth() - 1)
              << "\033[K" << std::flush;
  };

  // Applies one answer; false on a protocol violation.
  auto apply = [&](const v1::IngestEventsResponse& response) {
    if (in_flight.empty() || response.batch_id() != in_flight.front().batch_id) {
      protocol_error = absl::InternalError(absl::StrCat(
          "pantherd answered batch ", response.batch_id(), " but ",
          in_flight.empty() ? std::string("none was pending")
                            : absl::StrCat(in_flight.front().batch_id, " was expected")));
      return false;
    }
    const InFlight& batch = in_flight.front();
    summary.accepted += response.accepted();
    summary.duplicates += response.duplicates();
    summary.rejected += response.rejected_size();
    summary.alerts_created += response.alerts_created();
    summary.alerts_updated += response.alerts_updated();
    AddRuleStats(response, summary.rules);
    for (const v1::RejectedEvent& r : response.rejected()) {
      if (summary.rejections.size() >= kMaxRejectionsKept) break;
      const int64_t i = r.index();
      const bool known = i >= 0 && i < static_cast<int64_t>(batch.lines.size());
      summary.rejections.push_back({batch.first_index + i, known ? batch.lines[i] : 0, r.reason()});
    }
    summary.acknowledged += static_cast<int64_t>(batch.lines.size());
    in_flight.pop_front();
    watchdog.Touch();
    draw_progress(false);
    return true;
  };

  while (protocol_error.ok()) {
    // Fill the window.
    while (!input_done && in_flight.size() < static_cast<size_t>(kSendMaxBatchesInFlight)) {
      v1::IngestEventsRequest request;
      request.set_log_type(args.log_type);
      request.set_source_label(args.source_label);
      InFlight batch{next_batch_id, {}, 0};
      size_t bytes = 0;
      while (request.events_size() < args.batch_size) {
        if (!lookahead.has_value()) {
          RawEvent event;
          absl::StatusOr<bool> next = reader.Next(&event);
          if (!next.ok()) {
            input_error = next.status();
            input_done = true;
            break;
          }
          if (!*next) {
            input_done = true;
            break;
          }
          lookahead = std::move(event);
        }
        if (request.events_size() > 0 && bytes + lookahead->json.size() > kSendMaxBatchBytes) {
          break;
        }
        if (request.events_size() == 0) batch.first_index = lookahead->index;
        bytes += lookahead->json.size();
        batch.lines.push_back(lookahead->line);
        request.add_events(std::move(lookahead->json));
        lookahead.reset();
      }
      if (request.events_size() == 0) break;
      request.set_batch_id(next_batch_id++);
      const int count = request.events_size();
      in_flight.push_back(std::move(batch));
      if (!stream->Write(request)) {
        stream_broken = true;
        break;
      }
      summary.sent += count;
      ++summary.batches;
    }
    if (stream_broken || in_flight.empty()) break;
    v1::IngestEventsResponse response;
    if (!stream->Read(&response)) {
      stream_broken = true;
      break;
    }
    apply(response);
  }
  if (!stream_broken && protocol_error.ok()) {
    stream->WritesDone();
  } else if (!protocol_error.ok()) {
    context.TryCancel();
  }
  // Answers already on their way still acknowledge their batches.
  v1::IngestEventsResponse response;
  while (protocol_error.ok() && stream->Read(&response)) {
    if (!apply(response)) context.TryCancel();
  }
  const grpc::Status status = stream->Finish();
  if (progress) env.err() << "\r\033[K" << std::flush;

  absl::Status failure = protocol_error;
  if (failure.ok() && !status.ok()) {
    switch (watchdog.reason()) {
      case StreamWatchdog::Reason::kInterrupted:
        failure = absl::CancelledError("interrupted");
        break;
      case StreamWatchdog::Reason::kIdle:
        failure = absl::DeadlineExceededError(
            absl::StrCat("no answer from pantherd at ", conn->options().server, " within ",
                         absl::FormatDuration(conn->options().timeout), " (see --timeout)"));
        break;
      default:
        failure = conn->ToStatus("IngestEvents", status);
    }
  }
  if (failure.ok() && !in_flight.empty()) {
    failure = absl::UnavailableError("the stream ended before every batch was acknowledged");
  }
  if (failure.ok()) failure = input_error;
  // Acknowledgements come in order: everything from the first unanswered
  // batch (or the first event not sent) on is unacknowledged.
  if (!in_flight.empty()) {
    summary.unacknowledged = {in_flight.front().first_index, in_flight.front().lines.front()};
  } else if (lookahead.has_value()) {
    summary.unacknowledged = {lookahead->index, lookahead->line};
  } else if (!failure.ok() && !(input_done && input_error.ok())) {
    summary.unacknowledged = {reader.next_index(), reader.line()};
  }
  if (!failure.ok()) summary.error = std::string(failure.message());
  PrintSummary(args, summary, env);
  if (!failure.ok()) return failure;
  if (summary.rejected > 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(summary.rejected, " of ", summary.sent, " events rejected"));
  }
  return absl::OkStatus();
}

}  // namespace

void AddSendCommand(CLI::App& root, CommandRegistry& registry) {
  auto args = std::make_shared<SendArgs>();
  CLI::App* send =
      registry.AddCommand(root, "send",
                          "Send events (JSON lines or one JSON array) for detection; the summary "
                          "counts matches, alerts and open windows per rule",
                          [args](CommandEnv& env) { return Send(*args, env); });
  send->add_option("FILE", args->path, "Event file, or - for standard input")
      ->type_name("")
      ->required();
  send->add_option("--log-type", args->log_type,
                   absl::StrCat("Log type of the events (default ", kDefaultSendLogType, ")"))
      ->type_name("TYPE");
  send->add_option("--batch-size", args->batch_size,
                   absl::StrCat("Events per batch (default ", kDefaultSendBatchSize, ")"))
      ->type_name("N")
      ->check(CLI::Range(1, 100000));
  send->add_option("--source-label", args->source_label, "Recorded as p_source_label (default api)")
      ->type_name("LABEL");
  send->add_flag("--quiet", args->quiet,
                 "No progress bar (it is drawn on standard error only when that is a terminal, "
                 "and never with --output json)");
}

}  // namespace pantherd::client
