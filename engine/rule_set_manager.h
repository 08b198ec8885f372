// The lifecycle of the live rule set: upload (validate, test, swap, store),
// test runs, deletion, enable/disable and the bundled pack.
//
// An upload is all or nothing: the content is validated (spec loader), its
// tests run in an isolated worker against the candidate set (stored items
// overlaid with the upload), the candidate set is loaded into fresh live
// workers, and only then stored as new versions. Any failure leaves both the
// store and the live workers as they were. Live evaluation never sees half a
// set: the RuleExecutor switches all workers to a new set at once.
//
// Thread-safe: changes to the live set are serialised by an internal mutex;
// test runs of content proceed concurrently with each other.
#ifndef PANTHERD_ENGINE_RULE_SET_MANAGER_H_
#define PANTHERD_ENGINE_RULE_SET_MANAGER_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "engine/rule_store.h"
#include "pantherd/internal/worker.pb.h"
#include "pantherd/v1/rules.pb.h"

namespace pantherd::engine {

// Where rule code runs (implemented over the worker process pool). The seam
// keeps this module free of process management.
class RuleExecutor {
 public:
  virtual ~RuleExecutor() = default;

  struct TestRun {
    // The compile result of the set; tests did not run when it has errors.
    internal::LoadResult load;
    v1::TestReport report;
  };

  // Loads `files` in an isolated, one-shot worker and runs the tests of
  // `rule_ids` (all rules when empty). A crash or timeout is reported in the
  // report as a rule error, not as a failed status; a failed status means the
  // worker machinery itself failed.
  virtual absl::StatusOr<TestRun> RunTests(const std::vector<v1::AnalysisFile>& files,
                                           const std::vector<std::string>& rule_ids) = 0;

  // Makes `files` the live set, switching every worker at once. On a compile
  // error the previous set keeps running and the returned LoadResult carries
  // the diagnostics.
  virtual absl::StatusOr<internal::LoadResult> LoadLive(const std::vector<v1::AnalysisFile>& files,
                                                        uint64_t version) = 0;
};

class RuleSetManager {
 public:
  // Neither argument is owned; both must outlive the manager.
  RuleSetManager(RuleStore* rules, RuleExecutor* executor) : rules_(rules), executor_(executor) {}

  // How Upload learns whether an OutputIds entry names a destination (a name
  // or id; the server's destination registry). Without one, every entry is
  // warned about. Set once before the first Upload; not thread-safe.
  void set_destination_lookup(std::function<bool(absl::string_view)> known) {
    destination_known_ = std::move(known);
  }

  // Loads the stored items into the live workers (at start). Errors: those of
  // the store; FailedPrecondition with the first diagnostic when stored
  // content no longer compiles.
  absl::Status LoadStored();

  // UploadRule. `*response` is filled even on failure (diagnostics in
  // report.invalid, test results in report). Errors: InvalidArgument for
  // invalid specs or code that does not compile (naming file, line, field);
  // FailedPrecondition when tests fail and !request.skip_tests(); those of the
  // store and the executor.
  absl::Status Upload(const v1::UploadRuleRequest& request, absl::string_view author,
                      v1::UploadRuleResponse* response);

  // RunTests: of stored rules or of content sent with the request (overlaid on
  // the stored globals and data models), filtered (see docs/rule-contract.md).
  // Errors: InvalidArgument for an unknown filter key or unknown rule id;
  // those of the store and the executor. Invalid content is reported in the
  // report, not as an error.
  absl::StatusOr<v1::TestReport> RunTests(const v1::RunTestsRequest& request);

  // What a replay runs (ReplayRules, engine/replay.h).
  struct ReplaySet {
    // The replayed rules with the globals and data models they use, laid
    // out as for the live workers (paths are folder-prefixed; see
    // StripLayoutPaths).
    std::vector<v1::AnalysisFile> files;
    // The replayed rules (metadata: threshold, dedup period, severity, ...),
    // in id order.
    std::vector<v1::Rule> rules;
    // Content that could not be read (each with file, line and field).
    std::vector<v1::Diagnostic> invalid;
  };

  // The set a replay of `log_type` runs. With `content` (a local folder's
  // files): its rules that take `log_type` and are enabled in their YAML,
  // with its globals and data models, the stored ones filling in as for
  // RunTests; invalid specs are reported in `invalid` and the valid rules
  // still replay. Without: the stored rules `stored_ids` names (whether
  // enabled or not: they were asked for), or, when empty, every enabled
  // stored rule that takes `log_type`, with the stored globals and data
  // models. Errors: NotFound naming a stored id that is not a stored rule;
  // InvalidArgument when no rule is left to replay; those of the store.
  absl::StatusOr<ReplaySet> PrepareReplay(const v1::ContentSelector* content,
                                          const std::vector<std::string>& stored_ids,
                                          absl::string_view log_type);

  // Removes the layout's folder prefixes from a diagnostic's file and
  // message (what the worker says of a laid-out set), so it names the
  // user's own paths.
  static void StripLayoutPaths(v1::Diagnostic* diagnostic);
  // The same for any text the worker wrote of a laid-out set, such as a rule
  // error's message and traceback ("File \"items/0006/okta_rules/x.py\""
  // becomes "File \"okta_rules/x.py\"").
  static std::string StripLayoutPaths(absl::string_view text);

  // DeleteRule and SetRuleEnabled, applied to the live set too.
  absl::StatusOr<int64_t> Delete(absl::string_view id, absl::string_view author);
  absl::StatusOr<v1::Rule> SetEnabled(absl::string_view id, bool enabled, absl::string_view author);

  // Installs the bundled pack found under `dir` (panther-analysis layout):
  // items that are not stored yet, or whose stored version was itself bundled,
  // are uploaded with author "bundled"; an item a user uploaded is left alone,
  // and one stored with exactly the same files is listed in unchanged_ids
  // without being tested again (so a restart does not re-run the pack's
  // tests). Errors as Upload.
  absl::Status InstallBundled(const std::string& dir, v1::UploadRuleResponse* response);

 private:
  // The files of `items` laid out so that their paths cannot collide.
  static std::vector<v1::AnalysisFile> LayOut(const std::vector<v1::Rule>& items);

  absl::Status UploadLocked(const v1::UploadRuleRequest& request, absl::string_view author,
                            v1::UploadRuleResponse* response) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status SwapLocked(const std::vector<v1::Rule>& items) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  RuleStore* rules_;
  RuleExecutor* executor_;
  std::function<bool(absl::string_view)> destination_known_;
  absl::Mutex mu_;
  uint64_t live_version_ ABSL_GUARDED_BY(mu_) = 0;
};

// The author recorded for the bundled pack.
inline constexpr absl::string_view kBundledAuthor = "bundled";

// Reads every regular file under `dir` (skipping hidden entries and
// __pycache__) as AnalysisFiles with '/'-separated paths relative to `dir`.
absl::StatusOr<std::vector<v1::AnalysisFile>> ReadAnalysisFolder(const std::string& dir);

}  // namespace pantherd::engine

#endif  // PANTHERD_ENGINE_RULE_SET_MANAGER_H_
