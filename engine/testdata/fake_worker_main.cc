// A stand-in for the real rule worker (which embeds CPython), for the tests of
// engine/worker_pool.h and engine/worker_host.h. It is a real worker process:
// it parses the worker flags, hardens itself and serves the channel with
// RunWorkerLoop; only the handler is fake.
//
// Each file whose path ends in ".rule" is a rule; its id is the file name
// without the extension, its content a directive (whitespace-separated words)
// saying what the rule does:
//   at load time:  load-error | load-warning | load-abort | load-sleep |
//                  load-error-once <marker>   (an error in the one worker that
//                                              creates <marker> first)
//   at test time:  ok (default) | fail | abort | segv | oom | sleep |
//                  sleep-ms <n> | exit | abort-once <marker> | state [<ms>] | kv |
//                  kv-error | garbage
// "state" reports the worker's own process state (pid, uid, cwd, open fds,
// limits, loaded version) as the rule function's output_json; "kv" makes
// caching calls through a KvCache over RemoteKv (as pantherd-worker does)
// and reports their answers. Files ending in
// ".policy" are reported as skipped content.
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "engine/ipc.h"
#include "engine/kv_cache.h"
#include "engine/worker_host.h"

namespace pantherd::engine {
namespace {

struct FakeRule {
  std::string id;
  std::string path;
  std::vector<std::string> words;
  std::string word(size_t i) const { return i < words.size() ? words[i] : std::string(); }
};

// Creates `path` exclusively; true for the first caller only.
bool ClaimMarker(const std::string& path) {
  const int fd = open(path.c_str(), O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0666);
  if (fd < 0) return false;
  close(fd);
  return true;
}

[[noreturn]] void SleepForever() {
  for (;;) pause();
}

std::string JsonString(absl::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  return out + "\"";
}

class FakeHandler : public WorkerHandler {
 public:
  FakeHandler(int fd, KvBackend* kv) : fd_(fd), kv_(kv) {}

  absl::StatusOr<internal::LoadResult> Load(const internal::LoadRuleSet& request) override {
    internal::LoadResult result;
    result.set_version(request.version());
    std::map<std::string, FakeRule> rules;
    std::vector<v1::Diagnostic> invalid;
    int policies = 0;
    for (const v1::AnalysisFile& file : request.files()) {
      if (absl::EndsWith(file.path(), ".policy")) {
        ++policies;
        continue;
      }
      if (!absl::EndsWith(file.path(), ".rule")) continue;
      FakeRule rule;
      rule.path = file.path();
      absl::string_view name = file.path();
      name = name.substr(name.rfind('/') == absl::string_view::npos ? 0 : name.rfind('/') + 1);
      name.remove_suffix(5);
      rule.id = std::string(name);
      rule.words = absl::StrSplit(file.content(), absl::ByAnyChar(" \t\n"), absl::SkipEmpty());
      const std::string verb = rule.word(0);
      if (verb == "load-error" || (verb == "load-error-once" && ClaimMarker(rule.word(1)))) {
        v1::Diagnostic* d = result.add_diagnostics();
        d->set_file(rule.path);
        d->set_line(1);
        d->set_message("fake syntax error");
        invalid.push_back(*d);
        continue;  // left out of the set, as the real runtime does
      } else if (verb == "load-warning") {
        v1::Diagnostic* d = result.add_diagnostics();
        d->set_file(rule.path);
        d->set_message("warning: fake warning");
      } else if (verb == "load-abort") {
        abort();
      } else if (verb == "load-sleep") {
        SleepForever();
      }
      rules[rule.id] = std::move(rule);
    }
    if (policies > 0) {
      v1::SkippedContent* s = result.add_skipped();
      s->set_analysis_type("policy");
      s->set_count(policies);
    }
    result.set_rule_count(static_cast<int>(rules.size()));
    rules_ = std::move(rules);
    invalid_ = std::move(invalid);
    version_ = request.version();
    loaded_ = true;
    return result;
  }

  absl::StatusOr<v1::TestReport> RunTests(const internal::RunTestsTask& task) override {
    if (!loaded_) return absl::FailedPreconditionError("no rule set loaded");
    std::vector<const FakeRule*> selected;
    v1::TestReport report;
    for (const v1::Diagnostic& d : invalid_) *report.add_invalid() = d;
    if (task.rule_ids().empty()) {
      for (const auto& [id, rule] : rules_) selected.push_back(&rule);
    } else {
      for (const std::string& id : task.rule_ids()) {
        if (id == "refuse") return absl::FailedPreconditionError("refused on request");
        auto it = rules_.find(id);
        if (it == rules_.end()) {  // as the real test runner does
          report.add_invalid()->set_message(absl::StrCat("no rule [", id, "] in the loaded set"));
          continue;
        }
        selected.push_back(&it->second);
      }
    }
    for (const FakeRule* rule : selected) {
      bool passed = true;
      const std::string output = Run(*rule, &passed);
      v1::RuleTestResult* r = report.add_rules();
      r->set_rule_id(rule->id);
      r->set_file(rule->path);
      r->set_passed(passed);
      v1::TestCaseResult* t = r->add_tests();
      t->set_name("t1");
      t->set_expected_result(true);
      t->set_outcome(passed ? v1::TestCaseResult::OUTCOME_PASSED
                            : v1::TestCaseResult::OUTCOME_FAILED);
      v1::FunctionResult* f = t->add_functions();
      f->set_function("rule");
      f->set_defined(true);
      f->set_output_json(output);
      if (passed) {
        report.set_tests_passed(report.tests_passed() + 1);
      } else {
        report.set_tests_failed(report.tests_failed() + 1);
      }
    }
    return report;
  }

 private:
  std::string Run(const FakeRule& rule, bool* passed) {
    const std::string verb = rule.word(0);
    if (verb == "fail") {
      *passed = false;
      return "false";
    }
    if (verb == "abort") abort();
    if (verb == "abort-once" && ClaimMarker(rule.word(1))) abort();
    if (verb == "segv") {
      int* volatile p = nullptr;
      *p = 1;
    }
    if (verb == "oom") {
      std::vector<char*> blocks;
      for (;;) {
        // RLIMIT_AS limits address space, so reserving is enough; touching
        // one byte per page would only make the test slower.
        char* block = new char[64 << 20];
        block[0] = 1;
        blocks.push_back(block);
      }
    }
    if (verb == "sleep") SleepForever();
    if (verb == "sleep-ms") {
      int ms = 0;
      (void)absl::SimpleAtoi(rule.word(1), &ms);
      usleep(ms * 1000);
    }
    if (verb == "exit") _exit(3);
    if (verb == "garbage") {
      const char junk[] = "\xff\xff\xff\x7fjunk";
      (void)!write(fd_, junk, sizeof(junk) - 1);
      SleepForever();
    }
    if (verb == "state") {  // "state <ms>" first sleeps <ms>
      int ms = 0;
      if (absl::SimpleAtoi(rule.word(1), &ms)) usleep(ms * 1000);
      return State();
    }
    if (verb == "kv") return Kv();
    if (verb == "kv-error") {
      internal::KvCall call;
      call.set_op(internal::KvCall::OP_GET_COUNTER);  // empty key: refused
      absl::StatusOr<internal::KvReply> reply = kv_->Call(call);
      return JsonString(reply.ok() ? "ok" : reply.status().ToString());
    }
    return "true";
  }

  std::string State() {
    std::vector<int> fds;
    for (int fd = 0; fd < 4096; ++fd) {
      if (fcntl(fd, F_GETFD) != -1) fds.push_back(fd);
    }
    rlimit as{}, core{};
    getrlimit(RLIMIT_AS, &as);
    getrlimit(RLIMIT_CORE, &core);
    int pdeathsig = 0;
    prctl(PR_GET_PDEATHSIG, &pdeathsig);
    char cwd[4096] = "";
    if (getcwd(cwd, sizeof(cwd)) == nullptr) std::strcpy(cwd, "?");
    std::vector<std::string> env;
    for (char** e = environ; *e != nullptr; ++e) env.push_back(JsonString(*e));
    return absl::StrCat(
        "{\"pid\":", getpid(), ",\"ppid\":", getppid(), ",\"uid\":", getuid(),
        ",\"euid\":", geteuid(), ",\"gid\":", getgid(), ",\"cwd\":", JsonString(cwd), ",\"fds\":[",
        absl::StrJoin(fds, ","), "],\"rlimit_as\":", static_cast<int64_t>(as.rlim_cur),
        ",\"rlimit_as_max\":", static_cast<int64_t>(as.rlim_max),
        ",\"rlimit_core\":", static_cast<int64_t>(core.rlim_max), ",\"pdeathsig\":", pdeathsig,
        ",\"no_new_privs\":", prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0),
        ",\"dumpable\":", prctl(PR_GET_DUMPABLE, 0, 0, 0, 0), ",\"pgid\":", getpgrp(),
        ",\"version\":", version_, ",\"env\":[", absl::StrJoin(env, ","), "]}");
  }

  std::string Kv() {
    std::vector<std::string> parts;
    auto call = [&](internal::KvCall::Op op, const std::string& key,
                    std::vector<std::string> values, int64_t increment, const std::string& json) {
      internal::KvCall c;
      c.set_op(op);
      c.set_key(key);
      for (auto& v : values) c.add_values(v);
      c.set_increment(increment);
      c.set_json(json);
      absl::StatusOr<internal::KvReply> r = kv_->Call(c);
      if (!r.ok()) return JsonString(r.status().ToString());
      std::vector<std::string> quoted;
      for (const std::string& v : r->values()) quoted.push_back(JsonString(v));
      return absl::StrCat("{\"values\":[", absl::StrJoin(quoted, ","),
                          "],\"counter\":", r->counter(), ",\"json\":", JsonString(r->json()), "}");
    };
    parts.push_back(call(internal::KvCall::OP_INCREMENT_COUNTER, "fake-counter", {}, 2, ""));
    parts.push_back(call(internal::KvCall::OP_ADD_TO_STRING_SET, "fake-set", {"b", "a"}, 0, ""));
    parts.push_back(call(internal::KvCall::OP_PUT_DICTIONARY, "fake-dict", {}, 0, "{\"x\":1}"));
    parts.push_back(call(internal::KvCall::OP_GET_DICTIONARY, "fake-missing", {}, 0, ""));
    return absl::StrCat("[", absl::StrJoin(parts, ","), "]");
  }

  const int fd_;
  KvBackend* const kv_;
  std::map<std::string, FakeRule> rules_;
  std::vector<v1::Diagnostic> invalid_;  // load errors, repeated in each report
  uint64_t version_ = 0;
  bool loaded_ = false;
};

}  // namespace
}  // namespace pantherd::engine

int main(int argc, char** argv) {
  using namespace pantherd::engine;
  absl::StatusOr<WorkerConfig> config = ParseWorkerArgs(argc, argv);
  if (!config.ok()) {
    std::fprintf(stderr, "fake_worker: %s\n", config.status().ToString().c_str());
    return kWorkerExitUsage;
  }
  if (absl::Status s = HardenWorkerProcess(*config); !s.ok()) {
    std::fprintf(stderr, "fake_worker: %s\n", s.ToString().c_str());
    return kWorkerExitHardening;
  }
  // As pantherd-worker: the caching calls go through a KvCache.
  RemoteKv kv(config->channel_fd);
  KvCache cache(&kv);
  FakeHandler handler(config->channel_fd, &cache);
  return RunWorkerLoop(config->channel_fd, handler, &kv, &cache);
}
