#include "engine/metrics.h"

#include <algorithm>
#include <chrono>

#include "absl/strings/match.h"

namespace pantherd::engine {

absl::string_view RejectReasonName(RejectReason reason) {
  switch (reason) {
    case RejectReason::kNotJson:
      return "not_json";
    case RejectReason::kNotObject:
      return "not_object";
    case RejectReason::kTooLarge:
      return "too_large";
    case RejectReason::kUnknownLogType:
      return "unknown_log_type";
    case RejectReason::kOther:
      break;
  }
  return "other";
}

RejectReason ClassifyRejection(absl::string_view message) {
  // The wording of engine/normalize.cc's errors. metrics_test feeds real
  // NormalizeEvent errors through here, so a change of wording fails there.
  if (absl::StartsWith(message, "JSON parse error")) return RejectReason::kNotJson;
  if (absl::StartsWith(message, "event is not a JSON object")) return RejectReason::kNotObject;
  if (absl::StartsWith(message, "event is ") && absl::StrContains(message, "more than the limit")) {
    return RejectReason::kTooLarge;
  }
  if (absl::StartsWith(message, "unknown log type")) return RejectReason::kUnknownLogType;
  return RejectReason::kOther;
}

EngineMetrics::RuleCounters* EngineMetrics::Find(absl::string_view rule_id) {
  {
    absl::ReaderMutexLock lock(&mu_);
    auto it = rules_.find(rule_id);
    if (it != rules_.end()) return it->second.get();
  }
  absl::MutexLock lock(&mu_);
  std::unique_ptr<RuleCounters>& slot = rules_[rule_id];
  if (slot == nullptr) slot = std::make_unique<RuleCounters>();
  return slot.get();
}

void EngineMetrics::AddRule(absl::string_view rule_id, const RuleFigures& delta) {
  RuleCounters* counters = Find(rule_id);
  if (delta.evaluations != 0) counters->evaluations.Add(delta.evaluations);
  if (delta.matches != 0) counters->matches.Add(delta.matches);
  if (delta.errors != 0) counters->errors.Add(delta.errors);
  if (delta.time_nanos != 0) counters->time_nanos.Add(delta.time_nanos);
}

void EngineMetrics::AddRuleStats(
    const google::protobuf::RepeatedPtrField<internal::RuleRunStats>& stats) {
  for (const internal::RuleRunStats& s : stats) {
    if (s.rule_id().empty()) continue;
    AddRule(s.rule_id(), RuleFigures{s.evaluations(), s.matches(), s.errors(), s.time_nanos()});
  }
}

std::vector<std::pair<std::string, RuleFigures>> EngineMetrics::Rules() const {
  std::vector<std::pair<std::string, RuleFigures>> out;
  {
    absl::ReaderMutexLock lock(&mu_);
    out.reserve(rules_.size());
    for (const auto& [id, c] : rules_) {
      out.emplace_back(id, RuleFigures{c->evaluations.value(), c->matches.value(),
                                       c->errors.value(), c->time_nanos.value()});
    }
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  return out;
}

void RuleTally::Record(size_t position, const std::string& rule_id, bool matched, bool error,
                       int64_t nanos) {
  if (position >= entries_.size()) return;
  Entry& e = entries_[position];
  e.rule_id = &rule_id;
  ++e.figures.evaluations;
  if (matched) ++e.figures.matches;
  if (error) ++e.figures.errors;
  e.figures.time_nanos += nanos;
}

void RuleTally::AppendTo(google::protobuf::RepeatedPtrField<internal::RuleRunStats>* out) const {
  for (const Entry& e : entries_) {
    if (e.rule_id == nullptr) continue;
    internal::RuleRunStats* s = out->Add();
    s->set_rule_id(*e.rule_id);
    s->set_evaluations(e.figures.evaluations);
    s->set_matches(e.figures.matches);
    s->set_errors(e.figures.errors);
    s->set_time_nanos(e.figures.time_nanos);
  }
}

int64_t MonotonicNanos() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace pantherd::engine
