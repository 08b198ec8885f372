#include "engine/rule_set_manager.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <string_view>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "engine/analysis_spec.h"
#include "engine/normalize.h"
#include "proto/base/status_macros.h"

namespace pantherd::engine {
namespace {

std::string DescribeDiagnostic(const v1::Diagnostic& d) {
  std::string out = d.file();
  if (d.line() > 0) absl::StrAppend(&out, ":", d.line());
  if (!out.empty()) out += ": ";
  if (!d.field().empty()) absl::StrAppend(&out, d.field(), ": ");
  absl::StrAppend(&out, d.message());
  return out;
}

// The errors (not warnings) among `diagnostics`, summarised as one status.
absl::Status ErrorsToStatus(const google::protobuf::RepeatedPtrField<v1::Diagnostic>& diagnostics,
                            absl::string_view what) {
  int errors = 0;
  const v1::Diagnostic* first = nullptr;
  for (const v1::Diagnostic& d : diagnostics) {
    if (IsWarning(d)) continue;
    if (first == nullptr) first = &d;
    ++errors;
  }
  if (errors == 0) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat(what, ": ", DescribeDiagnostic(*first),
                   errors > 1 ? absl::StrCat(" (and ", errors - 1, " more)") : ""));
}

// The items of `set`. Scheduled rules only when `with_scheduled` (a test
// run): they are never stored, so never live.
std::vector<v1::Rule> ItemsOf(const AnalysisSet& set, bool with_scheduled = false) {
  std::vector<v1::Rule> items;
  for (const GlobalSpec& g : set.globals) items.push_back(g.rule);
  for (const DataModelSpec& m : set.data_models) items.push_back(m.rule);
  for (const RuleSpec& r : set.rules) {
    if (!r.scheduled || with_scheduled) items.push_back(r.rule);
  }
  return items;
}

// Warnings about the rules of `set` that will do nothing as written: a log
// type pantherd does not ingest (no event of it ever reaches the rule), an
// OutputIds entry that names no destination (`known`; null: none is known).
std::vector<v1::Diagnostic> UploadWarnings(const AnalysisSet& set,
                                           const std::function<bool(absl::string_view)>& known) {
  std::vector<v1::Diagnostic> warnings;
  const std::string supported = absl::StrJoin(SupportedLogTypes(), ", ");
  for (const RuleSpec& r : set.rules) {
    if (r.scheduled) continue;
    int unsupported = 0;
    for (const std::string& log_type : r.rule.log_types()) {
      if (IsSupportedLogType(log_type)) continue;
      ++unsupported;
      v1::Diagnostic& d = warnings.emplace_back();
      d.set_file(r.spec_path);
      d.set_field("LogTypes");
      d.set_message(absl::StrCat("pantherd does not ingest log type ", log_type,
                                 " (supported: ", supported, ")"));
    }
    if (unsupported > 0 && unsupported == r.rule.log_types_size()) {
      v1::Diagnostic& d = warnings.emplace_back();
      d.set_file(r.spec_path);
      d.set_field("LogTypes");
      d.set_message(
          absl::StrCat("rule ", r.rule.id(), " will never run: none of its log types is ingested"));
    }
    for (const std::string& output : r.rule.output_ids()) {
      if (output == "SKIP") continue;  // suppresses delivery, by design
      if (known && known(output)) continue;
      v1::Diagnostic& d = warnings.emplace_back();
      d.set_file(r.spec_path);
      d.set_field("OutputIds");
      d.set_message(absl::StrCat("no destination named ", output,
                                 "; its alerts will record a failed delivery until one is added "
                                 "(pantherctl destinations add)"));
    }
  }
  return warnings;
}

// The scheduled rules of `set`, which an upload does not store, as skipped
// content merged into `skipped` (ordered by type).
std::vector<v1::SkippedContent> WithScheduledSkipped(const AnalysisSet& set) {
  std::vector<v1::SkippedContent> skipped = set.skipped;
  v1::SkippedContent scheduled;
  scheduled.set_analysis_type("scheduled_rule");
  for (const RuleSpec& r : set.rules) {
    if (!r.scheduled) continue;
    scheduled.set_count(scheduled.count() + 1);
    scheduled.add_files(r.spec_path);
  }
  if (scheduled.count() == 0) return skipped;
  auto at = std::lower_bound(skipped.begin(), skipped.end(), scheduled.analysis_type(),
                             [](const v1::SkippedContent& s, const std::string& type) {
                               return s.analysis_type() < type;
                             });
  skipped.insert(at, std::move(scheduled));
  return skipped;
}

// `base` with every item of `overlay` replacing the one with its id.
std::vector<v1::Rule> Overlay(std::vector<v1::Rule> base, const std::vector<v1::Rule>& overlay) {
  std::map<std::string, v1::Rule> by_id;
  for (v1::Rule& item : base) by_id[item.id()] = std::move(item);
  for (const v1::Rule& item : overlay) by_id[item.id()] = item;
  std::vector<v1::Rule> out;
  for (auto& [id, item] : by_id) out.push_back(std::move(item));
  return out;
}

// The stored globals and data models that `content` (an upload's or a test
// run's items) leaves in place: the content's own items win, and a stored
// data model whose log type an enabled data model of the content covers is
// left out too (at most one per log type).
std::vector<v1::Rule> StoredSupport(const std::vector<v1::Rule>& stored,
                                    const std::vector<v1::Rule>& content) {
  std::set<std::string> content_ids;
  std::set<std::string> content_log_types;
  for (const v1::Rule& item : content) {
    content_ids.insert(item.id());
    if (item.type() == v1::ANALYSIS_TYPE_DATA_MODEL && item.enabled()) {
      content_log_types.insert(item.log_types().begin(), item.log_types().end());
    }
  }
  std::vector<v1::Rule> support;
  for (const v1::Rule& item : stored) {
    if (item.type() == v1::ANALYSIS_TYPE_RULE || content_ids.count(item.id()) > 0) continue;
    bool covered = false;
    if (item.type() == v1::ANALYSIS_TYPE_DATA_MODEL && item.enabled()) {
      for (const std::string& t : item.log_types()) covered |= content_log_types.count(t) > 0;
    }
    if (!covered) support.push_back(item);
  }
  return support;
}

// Filter keys accepted by RunTests, as spec field names, with how to read
// each from stored metadata. Values compare case-insensitively.
std::vector<std::string> FilterValues(const v1::Rule& rule, absl::string_view key) {
  auto severity = [](v1::Severity s) -> std::string {
    switch (s) {
      case v1::SEVERITY_INFO:
        return "info";
      case v1::SEVERITY_LOW:
        return "low";
      case v1::SEVERITY_MEDIUM:
        return "medium";
      case v1::SEVERITY_HIGH:
        return "high";
      case v1::SEVERITY_CRITICAL:
        return "critical";
      default:
        return "";
    }
  };
  if (key == "ruleid") return {rule.id()};
  if (key == "displayname") return {rule.display_name()};
  if (key == "enabled") return {rule.enabled() ? "true" : "false"};
  if (key == "severity") return {severity(rule.severity())};
  if (key == "logtypes") return {rule.log_types().begin(), rule.log_types().end()};
  if (key == "tags") return {rule.tags().begin(), rule.tags().end()};
  if (key == "outputids") return {rule.output_ids().begin(), rule.output_ids().end()};
  if (key == "createalert") return {rule.create_alert() ? "true" : "false"};
  if (key == "dedupperiodminutes") return {absl::StrCat(rule.dedup_period_minutes())};
  if (key == "threshold") return {absl::StrCat(rule.threshold())};
  if (key == "analysistype") return {"rule"};
  return {};
}

constexpr absl::string_view kFilterKeys =
    "AnalysisType, CreateAlert, DedupPeriodMinutes, DisplayName, Enabled, LogTypes, OutputIds, "
    "RuleID, Severity, Tags, Threshold";

bool KnownFilterKey(absl::string_view key) {
  for (absl::string_view k : absl::StrSplit(kFilterKeys, ", ")) {
    if (absl::AsciiStrToLower(k) == key) return true;
  }
  return false;
}

// Filters as pat's --filter: "KEY" -> "V1,V2" matches when any value equals
// one of the rule's values; "KEY!" -> "V" matches when none does. All filters
// must match.
absl::StatusOr<bool> MatchesFilters(const v1::Rule& rule,
                                    const google::protobuf::Map<std::string, std::string>& filters,
                                    bool scheduled = false) {
  for (const auto& [raw_key, raw_values] : filters) {
    bool negate = absl::EndsWith(raw_key, "!");
    std::string key =
        absl::AsciiStrToLower(negate ? raw_key.substr(0, raw_key.size() - 1) : raw_key);
    if (!KnownFilterKey(key)) {
      return absl::InvalidArgumentError(
          absl::StrCat("filters: unknown key \"", raw_key, "\" (known: ", kFilterKeys, ")"));
    }
    std::set<std::string> have;
    if (key == "analysistype") {
      have.insert(scheduled ? "scheduled_rule" : "rule");
    } else {
      for (const std::string& v : FilterValues(rule, key)) have.insert(absl::AsciiStrToLower(v));
    }
    bool any = false;
    for (absl::string_view want : absl::StrSplit(raw_values, ',', absl::SkipEmpty())) {
      if (have.count(absl::AsciiStrToLower(absl::StripAsciiWhitespace(want))) > 0) any = true;
    }
    if (any == negate) return false;
  }
  return true;
}

// LayOut puts each item under "items/NNNN/"; users know their own paths, so
// reports name those.
constexpr absl::string_view kLayoutRoot = "items/";

std::string StripLayout(absl::string_view text) {
  std::string out;
  size_t pos = 0;
  for (;;) {
    size_t at = text.find(kLayoutRoot, pos);
    size_t digits = at + kLayoutRoot.size();
    bool ours = at != absl::string_view::npos && digits + 5 <= text.size() &&
                (at == 0 || text[at - 1] == ' ' || text[at - 1] == '(' || text[at - 1] == '"' ||
                 text[at - 1] == '\'') &&
                text[digits + 4] == '/';
    for (size_t i = 0; ours && i < 4; ++i) ours = absl::ascii_isdigit(text[digits + i]);
    if (at == absl::string_view::npos) break;
    absl::StrAppend(&out, text.substr(pos, at - pos));
    pos = ours ? digits + 5 : at + kLayoutRoot.size();
    if (!ours) absl::StrAppend(&out, kLayoutRoot);
  }
  absl::StrAppend(&out, text.substr(pos));
  return out;
}

void StripLayout(v1::Diagnostic* d) {
  d->set_file(StripLayout(d->file()));
  d->set_message(StripLayout(d->message()));
}

void StripLayout(v1::TestReport* report) {
  for (v1::Diagnostic& d : *report->mutable_invalid()) StripLayout(&d);
  for (v1::SkippedContent& s : *report->mutable_skipped()) {
    for (std::string& f : *s.mutable_files()) f = StripLayout(f);
  }
  for (v1::RuleTestResult& r : *report->mutable_rules()) {
    r.set_file(StripLayout(r.file()));
    for (v1::TestCaseResult& t : *r.mutable_tests()) {
      for (v1::FunctionResult& f : *t.mutable_functions()) {
        if (f.has_error()) f.mutable_error()->set_traceback(StripLayout(f.error().traceback()));
      }
    }
  }
}

void StripLayout(internal::LoadResult* load) {
  for (v1::Diagnostic& d : *load->mutable_diagnostics()) StripLayout(&d);
}

void AppendDiagnostics(const google::protobuf::RepeatedPtrField<v1::Diagnostic>& from,
                       v1::TestReport* report) {
  for (const v1::Diagnostic& d : from) *report->add_invalid() = d;
}

// A broken file is reported once: the load diagnostics of items that failed
// only with "No module named 'ID'" where ID is a global whose spec is invalid
// (`invalid_globals`, GlobalID -> spec path) are folded into that spec's
// first error, as the runtime folds the consumers of a global that fails to
// import (engine/python_runtime.h).
void FoldInvalidGlobalConsumers(const std::map<std::string, std::string>& invalid_globals,
                                v1::TestReport* report) {
  if (invalid_globals.empty()) return;
  constexpr std::string_view kMissing = ": ModuleNotFoundError: No module named '";
  constexpr std::string_view kEither = " did not load either: ";
  std::map<std::string, std::vector<std::string>> consumers;  // spec path -> items
  google::protobuf::RepeatedPtrField<v1::Diagnostic> kept;
  for (v1::Diagnostic& d : *report->mutable_invalid()) {
    const std::string& message = d.message();
    const size_t at = message.find(kMissing);
    if (at != std::string::npos) {
      const size_t start = at + kMissing.size();
      const size_t end = message.find('\'', start);
      auto it = end == std::string::npos ? invalid_globals.end()
                                         : invalid_globals.find(message.substr(start, end - start));
      if (it != invalid_globals.end()) {
        std::vector<std::string>& items = consumers[it->second];
        items.push_back(message.substr(0, at));
        // Items the consumer itself broke (the runtime's fold) come along.
        const size_t either = message.rfind(kEither);
        if (either != std::string::npos && absl::EndsWith(message, ")")) {
          for (absl::string_view item : absl::StrSplit(
                   absl::string_view(message).substr(either + kEither.size(),
                                                     message.size() - either - kEither.size() - 1),
                   ", ")) {
            items.emplace_back(item);
          }
        }
        continue;
      }
    }
    kept.Add(std::move(d));
  }
  for (auto& [path, items] : consumers) {
    v1::Diagnostic* target = nullptr;
    for (v1::Diagnostic& d : kept) {
      if (d.file() == path && !IsWarning(d)) {
        target = &d;
        break;
      }
    }
    if (target == nullptr) {
      target = kept.Add();
      target->set_file(path);
      target->set_message("the global helper spec is invalid");
    }
    absl::StrAppend(
        target->mutable_message(), " (so ", items.size(), items.size() == 1 ? " item" : " items",
        " importing its GlobalID did not load either: ", absl::StrJoin(items, ", "), ")");
  }
  report->mutable_invalid()->Swap(&kept);
}

}  // namespace

std::vector<v1::AnalysisFile> RuleSetManager::LayOut(const std::vector<v1::Rule>& items) {
  std::vector<v1::AnalysisFile> files;
  int index = 0;
  for (const v1::Rule& item : items) {
    // A folder per item keeps each spec's Filename resolvable and the paths of
    // separately uploaded items apart.
    std::string prefix = absl::StrFormat("items/%04d/", index++);
    for (const v1::AnalysisFile& f : item.files()) {
      v1::AnalysisFile copy = f;
      copy.set_path(prefix + f.path());
      files.push_back(std::move(copy));
    }
  }
  return files;
}

absl::Status RuleSetManager::SwapLocked(const std::vector<v1::Rule>& items) {
  uint64_t version = ++live_version_;
  PANTHERD_ASSIGN_OR_RETURN(internal::LoadResult loaded,
                            executor_->LoadLive(LayOut(items), version));
  StripLayout(&loaded);
  return ErrorsToStatus(loaded.diagnostics(), "the rule set does not load");
}

absl::Status RuleSetManager::LoadStored() {
  absl::MutexLock lock(&mu_);
  PANTHERD_ASSIGN_OR_RETURN(std::vector<v1::Rule> items, rules_->ListCurrent());
  absl::Status s = SwapLocked(items);
  if (!s.ok()) return absl::FailedPreconditionError(s.message());
  return absl::OkStatus();
}

absl::Status RuleSetManager::Upload(const v1::UploadRuleRequest& request, absl::string_view author,
                                    v1::UploadRuleResponse* response) {
  absl::MutexLock lock(&mu_);
  return UploadLocked(request, author, response);
}

absl::Status RuleSetManager::UploadLocked(const v1::UploadRuleRequest& request,
                                          absl::string_view author,
                                          v1::UploadRuleResponse* response) {
  if (request.files().empty()) {
    return absl::InvalidArgumentError("files: the upload is empty");
  }
  std::vector<v1::Diagnostic> diagnostics;
  absl::StatusOr<AnalysisSet> set = LoadAnalysisFiles(request.files(), &diagnostics);
  for (const v1::Diagnostic& d : diagnostics) *response->mutable_report()->add_invalid() = d;
  if (!set.ok()) return set.status();
  for (const v1::SkippedContent& s : WithScheduledSkipped(*set)) {
    *response->add_skipped() = s;
    *response->mutable_report()->add_skipped() = s;
  }
  std::vector<v1::Rule> uploaded = ItemsOf(*set);
  if (uploaded.empty()) {
    return absl::InvalidArgumentError(
        "files: no rule, global or data model found (specs are .yml/.yaml files with an "
        "AnalysisType)");
  }

  PANTHERD_ASSIGN_OR_RETURN(std::vector<v1::Rule> stored, rules_->ListCurrent());
  std::vector<v1::Rule> candidate = Overlay(stored, uploaded);

  if (!request.skip_tests()) {
    // Rules uploaded are tested; when shared code changes (a global or a data
    // model), every rule that may use it is tested too.
    bool shared_changed = !set->globals.empty() || !set->data_models.empty();
    std::vector<std::string> ids;
    for (const v1::Rule& item : shared_changed ? candidate : uploaded) {
      if (item.type() == v1::ANALYSIS_TYPE_RULE) ids.push_back(item.id());
    }
    if (!ids.empty()) {
      PANTHERD_ASSIGN_OR_RETURN(RuleExecutor::TestRun run,
                                executor_->RunTests(LayOut(candidate), ids));
      StripLayout(&run.report);
      StripLayout(&run.load);
      v1::TestReport* report = response->mutable_report();
      report->MergeFrom(run.report);
      AppendDiagnostics(run.load.diagnostics(), report);
      PANTHERD_RETURN_IF_ERROR(ErrorsToStatus(run.load.diagnostics(), "the upload does not load"));
      if (report->tests_failed() > 0) {
        std::vector<std::string> failing;
        for (const v1::RuleTestResult& r : report->rules()) {
          if (!r.passed()) failing.push_back(r.rule_id());
        }
        return absl::FailedPreconditionError(absl::StrCat(
            report->tests_failed(), " of ", report->tests_failed() + report->tests_passed(),
            " tests failed (", absl::StrJoin(failing, ", "),
            "); nothing was stored. Fix the rules, or upload with skip_tests."));
      }
    }
  }

  PANTHERD_RETURN_IF_ERROR(SwapLocked(candidate));
  absl::StatusOr<CommitResult> committed = rules_->Commit(uploaded, author, absl::Now());
  if (!committed.ok()) {
    absl::Status restored = SwapLocked(stored);  // Keep live == stored.
    if (!restored.ok()) {
      return absl::InternalError(absl::StrCat(
          "storing the upload failed (", committed.status().message(),
          ") and restoring the previous rule set failed too (", restored.message(), ")"));
    }
    return committed.status();
  }
  for (v1::Rule& r : committed->stored) *response->add_stored() = std::move(r);
  for (std::string& id : committed->unchanged_ids) response->add_unchanged_ids(std::move(id));
  for (v1::Diagnostic& d : UploadWarnings(*set, destination_known_))
    *response->add_warnings() = std::move(d);
  return absl::OkStatus();
}

absl::StatusOr<v1::TestReport> RuleSetManager::RunTests(const v1::RunTestsRequest& request) {
  v1::TestReport report;
  std::vector<v1::AnalysisFile> files;
  std::vector<std::string> ids;

  v1::SkippedContent disabled;
  disabled.set_analysis_type("disabled_rule");
  auto select = [&](const v1::Rule& rule, bool scheduled = false) -> absl::StatusOr<bool> {
    if (rule.type() != v1::ANALYSIS_TYPE_RULE) return false;
    PANTHERD_ASSIGN_OR_RETURN(bool matches, MatchesFilters(rule, request.filters(), scheduled));
    if (!matches) return false;
    if (request.skip_disabled() && !rule.enabled()) {
      disabled.set_count(disabled.count() + 1);
      disabled.add_files(rule.id());
      return false;
    }
    return true;
  };

  PANTHERD_ASSIGN_OR_RETURN(std::vector<v1::Rule> stored, rules_->ListCurrent());
  std::map<std::string, std::string> invalid_globals;
  if (request.has_content()) {
    // Invalid specs are reported, not an RPC error, and the valid rules
    // still run, as `pat test` does on a checkout.
    std::vector<v1::Diagnostic> diagnostics;
    std::optional<AnalysisSet> set =
        LoadValidAnalysisFiles(request.content().files(), &diagnostics);
    for (const v1::Diagnostic& d : diagnostics) *report.add_invalid() = d;
    for (const v1::SkippedContent& s : set->skipped) *report.add_skipped() = s;
    invalid_globals = set->invalid_globals;
    std::vector<v1::Rule> content = ItemsOf(*set, /*with_scheduled=*/true);
    files = LayOut(Overlay(StoredSupport(stored, content), content));
    for (const RuleSpec& r : set->rules) {
      PANTHERD_ASSIGN_OR_RETURN(bool selected, select(r.rule, r.scheduled));
      if (selected) ids.push_back(r.rule.id());
    }
  } else {
    std::set<std::string> wanted(request.stored().rule_ids().begin(),
                                 request.stored().rule_ids().end());
    for (const v1::Rule& item : stored) {
      if (!wanted.empty() && wanted.erase(item.id()) == 0) continue;
      PANTHERD_ASSIGN_OR_RETURN(bool selected, select(item));
      if (selected) ids.push_back(item.id());
    }
    if (!wanted.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("stored.rule_ids: no stored rule with id ", absl::StrJoin(wanted, ", ")));
    }
    files = LayOut(stored);
  }
  if (disabled.count() > 0) *report.add_skipped() = disabled;
  if (ids.empty()) return report;  // Nothing selected: nothing to run.

  PANTHERD_ASSIGN_OR_RETURN(RuleExecutor::TestRun run, executor_->RunTests(files, ids));
  StripLayout(&run.report);
  StripLayout(&run.load);
  report.MergeFrom(run.report);
  AppendDiagnostics(run.load.diagnostics(), &report);
  FoldInvalidGlobalConsumers(invalid_globals, &report);
  return report;
}

void RuleSetManager::StripLayoutPaths(v1::Diagnostic* diagnostic) { StripLayout(diagnostic); }

std::string RuleSetManager::StripLayoutPaths(absl::string_view text) { return StripLayout(text); }

absl::StatusOr<RuleSetManager::ReplaySet> RuleSetManager::PrepareReplay(
    const v1::ContentSelector* content, const std::vector<std::string>& stored_ids,
    absl::string_view log_type) {
  ReplaySet out;
  auto takes = [&](const v1::Rule& rule) {
    return std::find(rule.log_types().begin(), rule.log_types().end(), log_type) !=
           rule.log_types().end();
  };
  PANTHERD_ASSIGN_OR_RETURN(std::vector<v1::Rule> stored, rules_->ListCurrent());
  std::vector<v1::Rule> support;  // globals and data models
  if (content != nullptr) {
    std::vector<v1::Diagnostic> diagnostics;
    std::optional<AnalysisSet> set = LoadValidAnalysisFiles(content->files(), &diagnostics);
    for (v1::Diagnostic& d : diagnostics) {
      if (!IsWarning(d)) out.invalid.push_back(std::move(d));
    }
    std::vector<v1::Rule> items = ItemsOf(*set);
    support = StoredSupport(stored, items);  // as RunTests
    for (v1::Rule& item : items) {
      if (item.type() != v1::ANALYSIS_TYPE_RULE) {
        support.push_back(std::move(item));
      } else if (item.enabled() && takes(item)) {
        out.rules.push_back(std::move(item));
      }
    }
  } else {
    std::set<std::string> wanted(stored_ids.begin(), stored_ids.end());
    for (v1::Rule& item : stored) {
      if (item.type() != v1::ANALYSIS_TYPE_RULE) {
        support.push_back(std::move(item));
        continue;
      }
      const bool named = wanted.erase(item.id()) > 0;
      if (named || (stored_ids.empty() && item.enabled() && takes(item))) {
        out.rules.push_back(std::move(item));
      }
    }
    if (!wanted.empty()) {
      return absl::NotFoundError(
          absl::StrCat("stored.rule_ids: no stored rule ", absl::StrJoin(wanted, ", ")));
    }
  }
  if (out.rules.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "no rules to replay: none ", content != nullptr ? "in the content" : "stored",
        " is enabled and takes log type ", log_type,
        out.invalid.empty() ? "" : absl::StrCat(" (", out.invalid.size(), " problems in it)")));
  }
  std::sort(out.rules.begin(), out.rules.end(),
            [](const v1::Rule& a, const v1::Rule& b) { return a.id() < b.id(); });
  std::vector<v1::Rule> loaded = support;
  loaded.insert(loaded.end(), out.rules.begin(), out.rules.end());
  out.files = LayOut(loaded);
  return out;
}

absl::StatusOr<int64_t> RuleSetManager::Delete(absl::string_view id, absl::string_view author) {
  absl::MutexLock lock(&mu_);
  PANTHERD_ASSIGN_OR_RETURN(std::vector<v1::Rule> stored, rules_->ListCurrent());
  std::vector<v1::Rule> remaining;
  bool found = false;
  for (v1::Rule& item : stored) {
    if (item.id() == id) {
      found = true;
    } else {
      remaining.push_back(std::move(item));
    }
  }
  if (!found) return rules_->Get(id).status();  // NotFound with the id.
  absl::Status swapped = SwapLocked(remaining);
  if (!swapped.ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat("deleting \"", id, "\" would break the rule set: ", swapped.message()));
  }
  absl::StatusOr<int64_t> version = rules_->Delete(id, author, absl::Now());
  if (!version.ok()) {
    absl::Status restored = SwapLocked(stored);
    (void)restored;  // The store error is the one to report.
  }
  return version;
}

absl::StatusOr<v1::Rule> RuleSetManager::SetEnabled(absl::string_view id, bool enabled,
                                                    absl::string_view author) {
  absl::MutexLock lock(&mu_);
  PANTHERD_ASSIGN_OR_RETURN(v1::Rule updated, rules_->SetEnabled(id, enabled, author, absl::Now()));
  // The live set carries every item; evaluation reads the enabled flag.
  PANTHERD_ASSIGN_OR_RETURN(std::vector<v1::Rule> stored, rules_->ListCurrent());
  PANTHERD_RETURN_IF_ERROR(SwapLocked(stored));
  return updated;
}

namespace {

// Whether two versions of an item consist of the same files (paths and
// contents), whatever their order.
bool SameFiles(const v1::Rule& a, const v1::Rule& b) {
  if (a.files_size() != b.files_size()) return false;
  std::vector<std::pair<std::string, std::string>> fa, fb;
  for (const v1::AnalysisFile& f : a.files()) fa.emplace_back(f.path(), f.content());
  for (const v1::AnalysisFile& f : b.files()) fb.emplace_back(f.path(), f.content());
  std::sort(fa.begin(), fa.end());
  std::sort(fb.begin(), fb.end());
  return fa == fb;
}

}  // namespace

absl::Status RuleSetManager::InstallBundled(const std::string& dir,
                                            v1::UploadRuleResponse* response) {
  PANTHERD_ASSIGN_OR_RETURN(std::vector<v1::AnalysisFile> files, ReadAnalysisFolder(dir));
  std::vector<v1::Diagnostic> diagnostics;
  absl::StatusOr<AnalysisSet> set = LoadAnalysisFiles(files, &diagnostics);
  if (!set.ok()) {
    for (const v1::Diagnostic& d : diagnostics) *response->mutable_report()->add_invalid() = d;
    return set.status();
  }
  absl::MutexLock lock(&mu_);
  v1::UploadRuleRequest request;
  for (const v1::Rule& item : ItemsOf(*set)) {
    absl::StatusOr<v1::Rule> current = rules_->Get(item.id());
    if (current.ok() && current->author() != kBundledAuthor) continue;  // The user's wins.
    if (!current.ok() && !absl::IsNotFound(current.status())) return current.status();
    if (current.ok() && SameFiles(*current, item)) {  // Installed as is: nothing to test.
      response->add_unchanged_ids(item.id());
      continue;
    }
    for (const v1::AnalysisFile& f : item.files()) *request.add_files() = f;
  }
  if (request.files().empty()) return absl::OkStatus();
  // Installed or changed items are validated and tested; the unchanged ones
  // listed above stay as they are.
  return UploadLocked(request, kBundledAuthor, response);
}

absl::StatusOr<std::vector<v1::AnalysisFile>> ReadAnalysisFolder(const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    return absl::InvalidArgumentError(absl::StrCat(dir, " is not a directory"));
  }
  std::vector<v1::AnalysisFile> files;
  fs::recursive_directory_iterator it(dir, ec), end;
  for (; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (absl::StartsWith(name, ".") || name == "__pycache__") {
      if (it->is_directory()) it.disable_recursion_pending();
      continue;
    }
    if (!it->is_regular_file()) continue;
    std::ifstream in(it->path(), std::ios::binary);
    std::stringstream content;
    content << in.rdbuf();
    if (!in.good() && !in.eof()) {
      return absl::InvalidArgumentError(absl::StrCat("cannot read ", it->path().string()));
    }
    v1::AnalysisFile f;
    f.set_path(fs::relative(it->path(), dir).generic_string());
    f.set_content(content.str());
    files.push_back(std::move(f));
  }
  if (ec) return absl::InvalidArgumentError(absl::StrCat("cannot read ", dir, ": ", ec.message()));
  std::sort(files.begin(), files.end(), [](const v1::AnalysisFile& a, const v1::AnalysisFile& b) {
    return a.path() < b.path();
  });
  return files;
}

}  // namespace pantherd::engine
