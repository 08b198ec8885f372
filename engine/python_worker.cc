#include "engine/python_worker.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <optional>
#include <thread>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "engine/analysis_spec.h"
#include "engine/event.h"
#include "engine/metrics.h"
#include "engine/rule_runner.h"
#include "engine/test_runner.h"
#include "engine/worker_sandbox.h"
#include "proto/base/log.h"

namespace pantherd::engine {

absl::StatusOr<std::unique_ptr<PythonWorker>> PythonWorker::Create(KvBackend* kv,
                                                                   const WorkerLimits& limits) {
  RuntimeOptions options;
  options.time_limit = limits.call_time_limit;
  absl::StatusOr<std::unique_ptr<PythonRuntime>> runtime = PythonRuntime::Create(kv, options);
  if (!runtime.ok()) return runtime.status();
  return std::unique_ptr<PythonWorker>(new PythonWorker(std::move(*runtime)));
}

absl::StatusOr<internal::LoadResult> PythonWorker::Load(const internal::LoadRuleSet& request) {
  internal::LoadResult result;
  result.set_version(request.version());
  std::vector<v1::Diagnostic> diagnostics;
  // Every valid item is loaded; the problems of the others are returned as
  // data (a live swap refuses a set with any, a test run reports them and
  // runs the rest). The status only says that there were some.
  std::optional<AnalysisSet> set = LoadValidAnalysisFiles(request.files(), &diagnostics);
  {
    absl::Status loaded = runtime_->LoadRuleSet(*set, &diagnostics);
    (void)loaded;
    for (const v1::SkippedContent& s : set->skipped) *result.add_skipped() = s;
    if (runtime_->loaded_set() != nullptr) {
      result.set_rule_count(static_cast<int32_t>(runtime_->loaded_set()->rules.size()));
    }
    loaded_ = true;
  }
  IndexRules();
  for (v1::Diagnostic& d : diagnostics) *result.add_diagnostics() = std::move(d);
  return result;
}

void PythonWorker::IndexRules() {
  rules_by_log_type_.clear();
  prefiltered_rules_ = 0;
  const LoadedSet* set = runtime_->loaded_set();
  if (set == nullptr) return;
  absl::flat_hash_map<const LoadedRule*, std::optional<Precondition>> preconditions;
  for (const LoadedRule& rule : set->rules) {
    std::optional<Precondition> p = DerivePrecondition(rule);
    if (p.has_value()) ++prefiltered_rules_;
    preconditions.emplace(&rule, std::move(p));
    absl::flat_hash_set<std::string> seen;
    for (const std::string& log_type : rule.spec.rule.log_types()) {
      if (seen.insert(log_type).second) rules_by_log_type_[log_type].rules.push_back(&rule);
    }
  }
  for (auto& [log_type, entry] : rules_by_log_type_) {
    std::vector<std::optional<Precondition>> of_type;
    for (const LoadedRule* rule : entry.rules) of_type.push_back(preconditions[rule]);
    entry.prefilter = std::make_unique<RulePrefilter>(of_type);
  }
}

namespace {

// Fills `match` from a RunRule outcome whose rule() returned True.
void FillMatch(const LoadedRule& rule, const RuleOutcome& outcome, internal::RuleMatch* match) {
  const AlertFields& alert = outcome.alert;
  match->set_rule_id(rule.id());
  match->set_title(alert.title);
  match->set_dedup(alert.dedup);
  match->set_severity(alert.severity);
  match->set_description(alert.description);
  match->set_reference(alert.reference);
  match->set_runbook(alert.runbook);
  if (alert.destinations.has_value()) {
    match->set_destinations_overridden(true);
    for (const std::string& d : *alert.destinations) match->add_destinations(d);
  }
  match->set_alert_context_json(alert.alert_context_json);
  if (alert.unique_json.has_value()) match->set_unique_json(*alert.unique_json);
  match->set_create_alert(rule.spec.rule.create_alert());
  for (int i = 0; i < kRuleFunctionCount; ++i) {
    const auto f = static_cast<RuleFunction>(i);
    if (f == RuleFunction::kRule) continue;
    const FunctionOutcome& fo = outcome.function(f);
    if (!fo.error.has_value()) continue;
    internal::FunctionError* error = match->add_function_errors();
    error->set_function(std::string(RuleFunctionName(f)));
    *error->mutable_error() = *fo.error;
  }
  match->set_timed_out(outcome.timed_out);
}

}  // namespace

absl::StatusOr<internal::EvaluateResult> PythonWorker::Evaluate(
    const internal::EvaluateTask& task) {
  const LoadedSet* set = runtime_->loaded_set();
  if (!loaded_ || set == nullptr) {
    return absl::FailedPreconditionError("no rule set is loaded in this worker");
  }
  // The enabled rules of each log type seen in this task.
  absl::flat_hash_set<std::string> disabled(task.disabled_rule_ids().begin(),
                                            task.disabled_rule_ids().end());
  absl::flat_hash_set<std::string> enabled(task.enabled_rule_ids().begin(),
                                           task.enabled_rule_ids().end());
  auto is_enabled = [&](const LoadedRule& rule) {
    if (disabled.contains(rule.id())) return false;
    return enabled.contains(rule.id()) || rule.spec.rule.enabled();
  };
  // Per log type seen in this task: its rules and which are enabled.
  struct Routed {
    const LogTypeRules* rules = nullptr;
    std::vector<bool> enabled;
    int enabled_count = 0;
  };
  absl::flat_hash_map<std::string, Routed> routed;
  auto route = [&](const std::string& log_type) -> const Routed& {
    auto [it, inserted] = routed.try_emplace(log_type);
    if (inserted) {
      auto all = rules_by_log_type_.find(log_type);
      if (all != rules_by_log_type_.end()) {
        it->second.rules = &all->second;
        for (const LoadedRule* rule : all->second.rules) {
          it->second.enabled.push_back(is_enabled(*rule));
          if (it->second.enabled.back()) ++it->second.enabled_count;
        }
      }
    }
    return it->second;
  };
  std::vector<int> candidates;
  std::vector<const LoadedRule*> rules;

  internal::EvaluateResult result;
  RuleTally tally(set->rules.size());  // per-rule totals, sent with the result
  for (const internal::EventToEvaluate& input : task.events()) {
    internal::EventResult* out = result.add_results();
    absl::StatusOr<std::shared_ptr<const EventDocument>> document =
        ParseEvent(input.normalized_json());
    if (!document.ok()) {
      out->set_error(std::string(document.status().message()));
      continue;
    }
    std::string log_type = input.log_type();
    if (log_type.empty()) {
      if (std::optional<std::string_view> p = FindTopLevelString(**document, "p_log_type")) {
        log_type = std::string(*p);
      }
    }
    const Routed& r = route(log_type);
    if (r.enabled_count == 0) continue;
    rules.clear();
    if (prefilter_enabled_) {
      r.rules->prefilter->Candidates(**document, &candidates);
      for (int i : candidates) {
        if (r.enabled[i]) rules.push_back(r.rules->rules[i]);
      }
    } else {
      for (size_t i = 0; i < r.rules->rules.size(); ++i) {
        if (r.enabled[i]) rules.push_back(r.rules->rules[i]);
      }
    }
    if (rules.empty()) continue;  // No rule can fire: no Python at all.
    pybind11::object event;
    try {
      event = MakePantherEvent(*document, set->DataModelFor(log_type));
    } catch (pybind11::error_already_set& e) {
      out->set_error(absl::StrCat("cannot build the event object: ", e.what()));
      continue;
    }
    out->set_rules_evaluated(static_cast<int32_t>(rules.size()));
    if (event_clock_) event_clock_(input.kv_now_seconds(), input.tag());
    for (const LoadedRule* rule : rules) {
      const int64_t started = MonotonicNanos();
      RuleOutcome outcome = RunRule(*runtime_, *rule, event, RunMode::kLive);
      tally.Record(static_cast<size_t>(rule - set->rules.data()), rule->id(), outcome.matched,
                   outcome.rule_error(), MonotonicNanos() - started);
      if (outcome.rule_error()) {
        internal::RuleErrorResult* error = out->add_errors();
        error->set_rule_id(rule->id());
        *error->mutable_error() = *outcome.function(RuleFunction::kRule).error;
        error->set_function(std::string(RuleFunctionName(RuleFunction::kRule)));
        error->set_timed_out(outcome.timed_out);
      } else if (outcome.matched) {
        FillMatch(*rule, outcome, out->add_matches());
      }
    }
  }
  if (event_clock_) event_clock_(0, 0);
  // Helpers are not checked before each rule (only rules are): once a batch,
  // every seal. A change found is undone and makes the set strict (each run
  // then checked: engine/rule_integrity.h).
  if (const LoadedSet* set = runtime_->loaded_set(); set != nullptr) {
    std::vector<RuleIntegrity::Finding> changed = set->integrity->CheckAll();
    if (!changed.empty()) {
      set->integrity->set_strict();
      base::Log(base::LogLevel::kWarn, "rule code changed code it does not own; restored",
                {{"changed", RuleIntegrity::Describe(changed)}});
    }
  }
  tally.AppendTo(result.mutable_rule_stats());
  return result;
}

absl::StatusOr<v1::TestReport> PythonWorker::RunTests(const internal::RunTestsTask& task) {
  if (!loaded_ || runtime_->loaded_set() == nullptr) {
    return absl::FailedPreconditionError("no rule set is loaded in this worker");
  }
  RunTestsOptions options;
  options.rule_ids.assign(task.rule_ids().begin(), task.rule_ids().end());
  return engine::RunTests(*runtime_, *runtime_->loaded_set(), options);
}

int WorkerMain(int argc, char** argv) {
  absl::StatusOr<WorkerConfig> config = ParseWorkerArgs(argc, argv);
  if (!config.ok()) {
    base::Log(base::LogLevel::kError, "bad worker arguments",
              {{"error", std::string(config.status().message())}});
    return kWorkerExitUsage;
  }
  // The in-process hard limit below acts kill_grace past a call's deadline;
  // the watchdog process, for a worker that cannot act any more (stopped),
  // a second later.
  const absl::Duration grace = std::max(config->limits.kill_grace, absl::Milliseconds(100));
  absl::StatusOr<Confinement> confined = ConfineWorker(*config, grace + absl::Seconds(1));
  if (!confined.ok()) {
    base::Log(base::LogLevel::kError, "cannot confine the worker",
              {{"error", std::string(confined.status().message())}});
    return kWorkerExitHardening;
  }
  if (!confined->missing.empty()) {
    base::Log(base::LogLevel::kWarn, "confinement incomplete", {{"missing", confined->missing}});
  }
  RemoteKv kv(config->channel_fd);
  KvCache cache(&kv);
  absl::StatusOr<std::unique_ptr<PythonWorker>> worker =
      PythonWorker::Create(&cache, config->limits);
  if (worker.ok()) {
    (*worker)->set_event_clock(
        [&cache](int64_t now_seconds, uint32_t tag) { cache.SetEventClock(now_seconds, tag); });
  }
  if (!worker.ok()) {
    base::Log(base::LogLevel::kError, "cannot start Python",
              {{"error", std::string(worker.status().message())}});
    return kWorkerExitChannel;
  }
  // The hard time limit: a call still running kill_grace after its deadline
  // ignored the runtime's interrupts (it catches TimeoutError in a loop, or
  // loops in C code). The process ends itself with kWorkerExitCallTimeLimit
  // instead of holding its request (a whole batch) until pantherd's budget
  // for it runs out; pantherd reports the failure as a timeout.
  PythonRuntime& runtime = (*worker)->runtime();
  runtime.set_deadline_mirror(&confined->watch->call_deadline_ns);
  absl::Mutex stop_mu;
  bool stop = false;
  std::thread hard_limit([&] {
    absl::MutexLock lock(&stop_mu);
    while (!stop_mu.AwaitWithTimeout(absl::Condition(&stop), absl::Milliseconds(100))) {
      const int64_t deadline = runtime.call_deadline_unix_nanos();
      if (deadline == INT64_MAX) continue;
      if (absl::GetCurrentTimeNanos() - deadline < absl::ToInt64Nanoseconds(grace)) continue;
      static constexpr char kMessage[] =
          "pantherd-worker: a rule call ignored its time limit; ending the worker\n";
      ssize_t written = write(2, kMessage, sizeof(kMessage) - 1);
      (void)written;
      _exit(kWorkerExitCallTimeLimit);
    }
  });
  const int code = RunWorkerLoop(config->channel_fd, **worker, &kv, &cache);
  {
    absl::MutexLock lock(&stop_mu);
    stop = true;
  }
  hard_limit.join();
  return code;
}

}  // namespace pantherd::engine
