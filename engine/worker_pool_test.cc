// Tests of WorkerPool with real worker processes (the fake worker of
// engine/testdata/fake_worker_main.cc, whose rules are scripted by their file
// content), real socketpairs and, for KV, a real store in a temp dir.
#include "engine/worker_pool.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <functional>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "engine/kv_store.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/test_util.h"

namespace pantherd::engine {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

std::vector<v1::AnalysisFile> Files(std::vector<std::pair<std::string, std::string>> rules) {
  std::vector<v1::AnalysisFile> files;
  for (auto& [id, content] : rules) {
    v1::AnalysisFile f;
    f.set_path(absl::StrCat("rules/", id, id == "skipped" ? ".policy" : ".rule"));
    f.set_content(content);
    files.push_back(std::move(f));
  }
  return files;
}

internal::RunTestsTask Task(std::vector<std::string> ids) {
  internal::RunTestsTask task;
  for (auto& id : ids) task.add_rule_ids(id);
  return task;
}

const v1::RuleTestResult* FindRule(const v1::TestReport& report, const std::string& id) {
  for (const v1::RuleTestResult& r : report.rules()) {
    if (r.rule_id() == id) return &r;
  }
  return nullptr;
}

std::string Output(const v1::RuleTestResult& rule) {
  if (rule.tests_size() == 0 || rule.tests(0).functions_size() == 0) return "";
  return rule.tests(0).functions(0).output_json();
}

const v1::RuleError& Error(const v1::RuleTestResult& rule) {
  return rule.tests(0).functions(0).error();
}

// The integer after "key": in a flat JSON text; -999 when absent.
int64_t JsonInt(const std::string& json, const std::string& key) {
  const std::string needle = absl::StrCat("\"", key, "\":");
  const size_t at = json.find(needle);
  if (at == std::string::npos) return -999;
  return std::strtoll(json.c_str() + at + needle.size(), nullptr, 10);
}

// The raw text of "key":<value> up to the matching ']' or the next ','/'}'.
std::string JsonRaw(const std::string& json, const std::string& key) {
  const std::string needle = absl::StrCat("\"", key, "\":");
  size_t at = json.find(needle);
  if (at == std::string::npos) return "";
  at += needle.size();
  const size_t end = json[at] == '[' ? json.find(']', at) + 1 : json.find_first_of(",}", at);
  return json.substr(at, end - at);
}

bool WaitFor(const std::function<bool()>& condition, absl::Duration timeout = absl::Seconds(5)) {
  const absl::Time deadline = absl::Now() + timeout;
  while (!condition()) {
    if (absl::Now() > deadline) return false;
    absl::SleepFor(absl::Milliseconds(10));
  }
  return true;
}

// True once `pid` has exited and been reaped.
bool Gone(pid_t pid) { return kill(pid, 0) != 0 && errno == ESRCH; }

class WorkerPoolTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // Workers run as nobody when the tests run as root; let them create
    // marker files here.
    ASSERT_EQ(chmod(dir_.path().c_str(), 01777), 0);
  }

  WorkerPoolOptions Options() {
    WorkerPoolOptions options;
    options.worker_binary = PANTHERD_FAKE_WORKER;
    options.workers = 2;
    options.limits.call_time_limit = absl::Milliseconds(200);
    options.limits.kill_grace = absl::Milliseconds(300);
    options.calls_per_rule_tests = 1;  // budget per rule: 200 ms + 300 ms
    options.logger = &logger_;
    return options;
  }

  std::unique_ptr<WorkerPool> MakePool(WorkerPoolOptions options) {
    absl::StatusOr<std::unique_ptr<WorkerPool>> pool = WorkerPool::Create(std::move(options));
    EXPECT_TRUE(pool.ok()) << pool.status();
    return pool.ok() ? *std::move(pool) : nullptr;
  }

  std::string Marker(const std::string& name) { return dir_.Sub(name); }

  // What the pool logged, one "msg key=value ..." string per event.
  std::vector<std::string> Logs() {
    std::vector<std::string> lines;
    for (const base::CapturingLogger::Entry& e : logger_.entries()) {
      lines.push_back(base::FormatLogLine("-", e.level, e.msg, e.fields));
    }
    return lines;
  }

  // The (pid, version) of every live worker: as many concurrent "state 300"
  // requests as there are workers, so each worker takes one.
  std::vector<std::pair<int64_t, int64_t>> LiveStates(WorkerPool& pool, const std::string& rule) {
    std::vector<std::pair<int64_t, int64_t>> states(pool.workers());
    std::vector<std::thread> threads;
    for (int i = 0; i < pool.workers(); ++i) {
      threads.emplace_back([&, i] {
        internal::WorkerRequest request;
        request.mutable_run_tests()->add_rule_ids(rule);
        absl::StatusOr<LiveResponse> response = pool.DispatchLive(request, 10);
        ASSERT_TRUE(response.ok()) << response.status();
        const std::string json = Output(response->response.test_report().rules(0));
        states[i] = {JsonInt(json, "pid"), JsonInt(json, "version")};
        EXPECT_EQ(static_cast<int64_t>(response->version), JsonInt(json, "version"));
      });
    }
    for (auto& t : threads) t.join();
    return states;
  }

  static std::set<int64_t> Pids(const std::vector<std::pair<int64_t, int64_t>>& states) {
    std::set<int64_t> pids;
    for (auto& [pid, version] : states) pids.insert(pid);
    return pids;
  }

  pantherd::testing::TempDir dir_;
  base::CapturingLogger logger_;
};

// Creation --------------------------------------------------------------------

TEST_F(WorkerPoolTest, CreateRejectsBadOptions) {
  WorkerPoolOptions options = Options();
  options.worker_binary = dir_.Sub("no-such-worker");
  EXPECT_TRUE(absl::IsInvalidArgument(WorkerPool::Create(options).status()));
  options = Options();
  options.limits.call_time_limit = absl::ZeroDuration();
  EXPECT_TRUE(absl::IsInvalidArgument(WorkerPool::Create(options).status()));
}

TEST_F(WorkerPoolTest, DefaultsToOneWorkerPerCoreAndWarnsWithoutRoot) {
  WorkerPoolOptions options = Options();
  options.workers = 0;
  std::unique_ptr<WorkerPool> pool = MakePool(options);
  ASSERT_NE(pool, nullptr);
  EXPECT_EQ(pool->workers(), static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
  bool warned = false;
  for (const std::string& line : Logs())
    warned = warned || absl::StrContains(line, "not running as root");
  EXPECT_EQ(warned, geteuid() != 0);
}

// One-shot test runs -----------------------------------------------------------

TEST_F(WorkerPoolTest, IsolatedRunReportsEachRuleAndTheWorkerExits) {
  std::unique_ptr<WorkerPool> pool = MakePool(Options());
  auto files = Files({{"good", "ok"}, {"bad", "fail"}, {"me", "state"}, {"skipped", "x"}});
  absl::StatusOr<v1::TestReport> report =
      pool->RunTestsIsolated(files, Task({"good", "bad", "me"}));
  ASSERT_TRUE(report.ok()) << report.status();
  ASSERT_EQ(report->rules_size(), 3);
  EXPECT_EQ(report->rules(0).rule_id(), "good");  // in the order asked
  EXPECT_TRUE(report->rules(0).passed());
  EXPECT_EQ(report->rules(0).file(), "rules/good.rule");
  EXPECT_FALSE(report->rules(1).passed());
  EXPECT_EQ(report->tests_passed(), 2);
  EXPECT_EQ(report->tests_failed(), 1);
  ASSERT_EQ(report->skipped_size(), 1);
  EXPECT_EQ(report->skipped(0).analysis_type(), "policy");
  EXPECT_EQ(report->skipped(0).count(), 1);
  EXPECT_THAT(report->invalid(), IsEmpty());

  const pid_t pid = static_cast<pid_t>(JsonInt(Output(report->rules(2)), "pid"));
  ASSERT_GT(pid, 0);
  EXPECT_TRUE(WaitFor([&] { return Gone(pid); })) << "one-shot worker " << pid << " still exists";
  const WorkerPoolStats stats = pool->Stats();
  EXPECT_EQ(stats.workers_started, 1);
  EXPECT_EQ(stats.isolated_runs, 1);
  EXPECT_EQ(stats.workers_crashed, 0);
  EXPECT_FALSE(stats.has_live_generation);
}

TEST_F(WorkerPoolTest, EachIsolatedRunGetsAFreshWorker) {
  std::unique_ptr<WorkerPool> pool = MakePool(Options());
  auto files = Files({{"me", "state"}});
  absl::StatusOr<v1::TestReport> first = pool->RunTestsIsolated(files, Task({"me"}));
  absl::StatusOr<v1::TestReport> second = pool->RunTestsIsolated(files, Task({}));
  ASSERT_TRUE(first.ok() && second.ok());
  EXPECT_NE(JsonInt(Output(first->rules(0)), "pid"), JsonInt(Output(second->rules(0)), "pid"));
  EXPECT_EQ(pool->Stats().workers_started, 2);
}

TEST_F(WorkerPoolTest, LoadErrorsAreReportedAsInvalidAndTheRestIsTested) {
  std::unique_ptr<WorkerPool> pool = MakePool(Options());
  absl::StatusOr<v1::TestReport> report =
      pool->RunTestsIsolated(Files({{"a", "ok"}, {"broken", "load-error"}}), Task({"a", "broken"}));
  ASSERT_TRUE(report.ok()) << report.status();
  ASSERT_EQ(report->rules_size(), 1);
  EXPECT_TRUE(report->rules(0).passed());
  // Once from the load, deduplicated against the copies in each rule's
  // report, plus the rule that did not load.
  ASSERT_EQ(report->invalid_size(), 2);
  EXPECT_EQ(report->invalid(0).file(), "rules/broken.rule");
  EXPECT_EQ(report->invalid(0).message(), "fake syntax error");
  EXPECT_EQ(report->invalid(1).message(), "no rule [broken] in the loaded set");
}

TEST_F(WorkerPoolTest, AnIsolatedSessionHasItsOwnSlotApartFromTestRuns) {
  WorkerPoolOptions options = Options();
  options.max_isolated_runs = 1;
  options.max_waiting = 0;  // no waiting: a second caller is refused at once
  std::unique_ptr<WorkerPool> pool = MakePool(options);
  absl::StatusOr<std::unique_ptr<IsolatedWorker>> session =
      pool->StartIsolated(Files({{"a", "ok"}}), /*nice=*/5);
  ASSERT_TRUE(session.ok()) << session.status();
  // A test run still gets the one test-run slot while the session lives.
  absl::StatusOr<v1::TestReport> report = pool->RunTestsIsolated(Files({{"a", "ok"}}), Task({"a"}));
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_TRUE(report->rules(0).passed());
  // A second session is one too many.
  absl::StatusOr<std::unique_ptr<IsolatedWorker>> second =
      pool->StartIsolated(Files({{"a", "ok"}}));
  EXPECT_TRUE(absl::IsResourceExhausted(second.status())) << second.status();
  EXPECT_THAT(second.status().message(), HasSubstr("too many replays"));
  // Once the first ends, its slot is free again.
  session->reset();
  second = pool->StartIsolated(Files({{"a", "ok"}}));
  EXPECT_TRUE(second.ok()) << second.status();
  EXPECT_TRUE(absl::IsInvalidArgument(pool->StartIsolated(Files({{"a", "ok"}}), 20).status()));
}

TEST_F(WorkerPoolTest, WhenNothingLoadsOnlyTheLoadErrorsAreReported) {
  std::unique_ptr<WorkerPool> pool = MakePool(Options());
  absl::StatusOr<v1::TestReport> report =
      pool->RunTestsIsolated(Files({{"broken", "load-error"}, {"skipped", "x"}}), Task({"broken"}));
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_THAT(report->rules(), IsEmpty());
  ASSERT_EQ(report->invalid_size(), 1);
  EXPECT_EQ(report->invalid(0).message(), "fake syntax error");
  ASSERT_EQ(report->skipped_size(), 1);
}

TEST_F(WorkerPoolTest, LoadWarningsDoNotStopTests) {
  std::unique_ptr<WorkerPool> pool = MakePool(Options());
  absl::StatusOr<v1::TestReport> report =
      pool->RunTestsIsolated(Files({{"a", "ok"}, {"w", "load-warning"}}), Task({"a"}));
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->tests_passed(), 1);
}

TEST_F(WorkerPoolTest, AWorkerRefusalIsAnError) {
  std::unique_ptr<WorkerPool> pool = MakePool(Options());
  absl::StatusOr<v1::TestReport> report =
      pool->RunTestsIsolated(Files({{"a", "ok"}}), Task({"a", "refuse"}));
  EXPECT_TRUE(absl::IsFailedPrecondition(report.status())) << report.status();
  EXPECT_THAT(std::string(report.status().message()), HasSubstr("refused on request"));
}

TEST_F(WorkerPoolTest, WorkersAreHardened) {
  // A descriptor without close-on-exec, as a careless library might leave.
  const int leaked = open("/dev/null", O_RDONLY);
  ASSERT_GE(leaked, 0);
  WorkerPoolOptions options = Options();
  options.limits.memory_bytes = int64_t{512} << 20;
  std::unique_ptr<WorkerPool> pool = MakePool(options);
  absl::StatusOr<v1::TestReport> report =
      pool->RunTestsIsolated(Files({{"me", "state"}}), Task({"me"}));
  close(leaked);
  ASSERT_TRUE(report.ok()) << report.status();
  const std::string state = Output(report->rules(0));
  SCOPED_TRACE(state);
  EXPECT_EQ(JsonRaw(state, "cwd"), "\"/\"");
  EXPECT_EQ(JsonRaw(state, "fds"), "[0,1,2,3]");
  EXPECT_EQ(JsonInt(state, "rlimit_as"), int64_t{512} << 20);
  EXPECT_EQ(JsonInt(state, "rlimit_as_max"), int64_t{512} << 20);
  EXPECT_EQ(JsonInt(state, "rlimit_core"), 0);
  EXPECT_EQ(JsonInt(state, "pdeathsig"), SIGKILL);
  EXPECT_EQ(JsonInt(state, "no_new_privs"), 1);
  EXPECT_EQ(JsonInt(state, "dumpable"), 0);
  EXPECT_EQ(JsonInt(state, "ppid"), getpid());
  EXPECT_EQ(JsonInt(state, "pgid"), JsonInt(state, "pid"));  // own process group
  EXPECT_EQ(JsonRaw(state, "env"), "[\"PATH=/usr/local/bin:/usr/bin:/bin\",\"LANG=C.UTF-8\"]");
  if (geteuid() == 0) {
    EXPECT_EQ(JsonInt(state, "uid"), 65534);
    EXPECT_EQ(JsonInt(state, "euid"), 65534);
    EXPECT_EQ(JsonInt(state, "gid"), 65534);
  } else {
    EXPECT_EQ(JsonInt(state, "uid"), static_cast<int64_t>(getuid()));
  }
}

// Key-value calls ---------------------------------------------------------------

// Test runs never touch the live key-value space: each run's rules see a
// private one that starts empty (an analyst's test cannot change live
// detection state).
TEST_F(WorkerPoolTest, TestRunsSeeAPrivateKeyValueSpace) {
  absl::StatusOr<std::unique_ptr<store::Store>> store = store::Store::Open(dir_.Sub("data"), {});
  ASSERT_TRUE(store.ok()) << store.status();
  StoreKvBackend kv(store->get());
  internal::KvCall put;
  put.set_op(internal::KvCall::OP_INCREMENT_COUNTER);
  put.set_key("fake-counter");
  put.set_increment(40);
  ASSERT_TRUE(kv.Call(put).ok());  // live state the test must not see
  WorkerPoolOptions options = Options();
  options.kv = &kv;
  std::unique_ptr<WorkerPool> pool = MakePool(options);
  auto files = Files({{"cache", "kv"}, {"bad", "kv-error"}});
  for (int run = 0; run < 2; ++run) {
    absl::StatusOr<v1::TestReport> report = pool->RunTestsIsolated(files, Task({"cache", "bad"}));
    ASSERT_TRUE(report.ok()) << report.status();
    const std::string out = Output(*FindRule(*report, "cache"));
    EXPECT_THAT(out, HasSubstr(R"({"values":[],"counter":2,)"));  // not 42, not 4
    EXPECT_THAT(out, HasSubstr(R"({"values":["a","b"],"counter":0,)"));
    EXPECT_THAT(out, HasSubstr(R"("json":"{}"})"));  // a missing dictionary
    EXPECT_THAT(Output(*FindRule(*report, "bad")), HasSubstr("1 to 2048 bytes"));
  }
  internal::KvCall get;
  get.set_op(internal::KvCall::OP_GET_COUNTER);
  get.set_key("fake-counter");
  EXPECT_EQ(kv.Call(get)->counter(), 40);
  get.set_key("fake-set");
  get.set_op(internal::KvCall::OP_GET_STRING_SET);
  EXPECT_EQ(kv.Call(get)->values_size(), 0);
  EXPECT_EQ(kv.pending_writes(), 0u);
}

// A live request's writes are held under its batch transaction and reach the
// store only through the commit; without a transaction they are dropped.
TEST_F(WorkerPoolTest, LiveWritesAreHeldUntilTheirBatchCommits) {
  absl::StatusOr<std::unique_ptr<store::Store>> store = store::Store::Open(dir_.Sub("data"), {});
  ASSERT_TRUE(store.ok()) << store.status();
  StoreKvBackend kv(store->get());
  WorkerPoolOptions options = Options();
  options.kv = &kv;
  options.workers = 1;
  std::unique_ptr<WorkerPool> pool = MakePool(options);
  ASSERT_TRUE(pool->LoadLive(Files({{"cache", "kv"}}), 1).ok());
  internal::KvCall get;
  get.set_op(internal::KvCall::OP_GET_COUNTER);
  get.set_key("fake-counter");

  internal::WorkerRequest request;
  request.mutable_run_tests()->add_rule_ids("cache");
  ASSERT_TRUE(pool->DispatchLive(request, 10).ok());  // no transaction
  EXPECT_EQ(kv.pending_writes(), 0u);
  EXPECT_EQ(kv.Call(get)->counter(), 0);

  const uint64_t txn = kv.BeginTxn();
  request.set_kv_txn(txn);
  absl::StatusOr<LiveResponse> answer = pool->DispatchLive(request, 10);
  ASSERT_TRUE(answer.ok()) << answer.status();
  EXPECT_EQ(kv.pending_writes(), 3u);     // counter, set, dictionary
  EXPECT_EQ(kv.Call(get)->counter(), 0);  // not in the store yet
  store::WriteBatch batch;
  std::vector<std::string> forget;
  ASSERT_TRUE(kv.StageTxn(txn, {}, batch, &forget).ok());
  ASSERT_TRUE((*store)->Write(std::move(batch)).ok());
  kv.EndTxn(txn, true, &forget);
  EXPECT_EQ(kv.Call(get)->counter(), 2);
}

TEST_F(WorkerPoolTest, KvCallsFailCleanlyWithoutABackend) {
  WorkerPoolOptions options = Options();
  options.workers = 1;
  std::unique_ptr<WorkerPool> pool = MakePool(options);
  ASSERT_TRUE(pool->LoadLive(Files({{"cache", "kv"}}), 1).ok());
  internal::WorkerRequest request;
  request.mutable_run_tests()->add_rule_ids("cache");
  absl::StatusOr<LiveResponse> answer = pool->DispatchLive(request, 10);
  ASSERT_TRUE(answer.ok()) << answer.status();
  EXPECT_THAT(Output(answer->response.test_report().rules(0)), HasSubstr("no key-value store"));
}

// Crashes and time limits in one-shot runs ---------------------------------------

TEST_F(WorkerPoolTest, CrashIsRetriedOnceThenReportedAsARuleError) {
  std::unique_ptr<WorkerPool> pool = MakePool(Options());
  auto files = Files({{"before", "ok"}, {"boom", "abort"}, {"after", "ok"}});
  absl::StatusOr<v1::TestReport> report =
      pool->RunTestsIsolated(files, Task({"before", "boom", "after"}));
  ASSERT_TRUE(report.ok()) << report.status();
  ASSERT_EQ(report->rules_size(), 3);
  EXPECT_TRUE(FindRule(*report, "before")->passed());
  EXPECT_TRUE(FindRule(*report, "after")->passed());  // later rules still run
  const v1::RuleTestResult& boom = *FindRule(*report, "boom");
  EXPECT_FALSE(boom.passed());
  EXPECT_EQ(boom.tests(0).outcome(), v1::TestCaseResult::OUTCOME_ERROR);
  EXPECT_EQ(Error(boom).type(), "WorkerCrashed");
  EXPECT_THAT(Error(boom).message(), HasSubstr("worker crashed (signal SIGABRT)"));
  EXPECT_THAT(Error(boom).message(), HasSubstr("while running the tests of rule boom"));
  EXPECT_THAT(Error(boom).message(), HasSubstr("retried once"));
  EXPECT_EQ(report->tests_passed(), 2);
  EXPECT_EQ(report->tests_failed(), 1);
  WorkerPoolStats stats = pool->Stats();
  EXPECT_EQ(stats.workers_crashed, 2);
  EXPECT_EQ(stats.retries, 1);
  EXPECT_EQ(stats.workers_started, 3);  // first, retry, and one for "after"

  // The pool keeps serving.
  absl::StatusOr<v1::TestReport> again = pool->RunTestsIsolated(files, Task({"before"}));
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->rules(0).passed());
}

TEST_F(WorkerPoolTest, ACrashThatDoesNotRepeatPassesOnRetry) {
  std::unique_ptr<WorkerPool> pool = MakePool(Options());
  absl::StatusOr<v1::TestReport> report = pool->RunTestsIsolated(
      Files({{"flaky", absl::StrCat("abort-once ", Marker("flaky"))}}), Task({"flaky"}));
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_TRUE(report->rules(0).passed());
  EXPECT_EQ(pool->Stats().workers_crashed, 1);
  EXPECT_EQ(pool->Stats().retries, 1);
}

TEST_F(WorkerPoolTest, SegfaultAndEarlyExitAreDescribed) {
  std::unique_ptr<WorkerPool> pool = MakePool(Options());
  absl::StatusOr<v1::TestReport> report =
      pool->RunTestsIsolated(Files({{"segv", "segv"}, {"quit", "exit"}}), Task({"segv", "quit"}));
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_THAT(Error(*FindRule(*report, "segv")).message(), HasSubstr("signal SIGSEGV"));
  EXPECT_THAT(Error(*FindRule(*report, "quit")).message(),
              HasSubstr("exited unexpectedly with code 3"));
}

TEST_F(WorkerPoolTest, ProtocolViolationKillsTheWorker) {
  std::unique_ptr<WorkerPool> pool = MakePool(Options());
  absl::StatusOr<v1::TestReport> report =
      pool->RunTestsIsolated(Files({{"junk", "garbage"}}), Task({"junk"}));
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_THAT(Error(report->rules(0)).message(), HasSubstr("broke the protocol"));
}

TEST_F(WorkerPoolTest, TimeoutKillsTheWorkerWithinLimitPlusGrace) {
  std::unique_ptr<WorkerPool> pool = MakePool(Options());
  const absl::Time start = absl::Now();
  absl::StatusOr<v1::TestReport> report =
      pool->RunTestsIsolated(Files({{"loop", "sleep"}, {"next", "ok"}}), Task({"loop", "next"}));
  const absl::Duration took = absl::Now() - start;
  ASSERT_TRUE(report.ok()) << report.status();
  // Budget: 200 ms limit x 1 call + 300 ms grace; allow for process starts.
  EXPECT_GE(took, absl::Milliseconds(500));
  EXPECT_LT(took, absl::Milliseconds(2000));
  const v1::RuleTestResult& loop = *FindRule(*report, "loop");
  EXPECT_EQ(Error(loop).type(), "Timeout");
  EXPECT_THAT(Error(loop).message(), HasSubstr("no answer within 500ms; worker killed"));
  EXPECT_THAT(Error(loop).message(), HasSubstr("rule loop"));
  EXPECT_TRUE(FindRule(*report, "next")->passed());
  WorkerPoolStats stats = pool->Stats();
  EXPECT_EQ(stats.workers_killed_for_timeout, 1);
  EXPECT_EQ(stats.retries, 0);  // timeouts are not retried
}

TEST_F(WorkerPoolTest, MemoryLimitIsEnforced) {
  WorkerPoolOptions options = Options();
  options.limits.memory_bytes = int64_t{256} << 20;
  options.limits.call_time_limit = absl::Seconds(5);  // never the reason here
  std::unique_ptr<WorkerPool> pool = MakePool(options);
  absl::StatusOr<v1::TestReport> report =
      pool->RunTestsIsolated(Files({{"hog", "oom"}, {"fine", "ok"}}), Task({"hog", "fine"}));
  ASSERT_TRUE(report.ok()) << report.status();
  const v1::RuleTestResult& hog = *FindRule(*report, "hog");
  EXPECT_EQ(Error(hog).type(), "WorkerOutOfMemory");
  EXPECT_THAT(Error(hog).message(), HasSubstr("worker ran out of memory (limit 256 MiB)"));
  EXPECT_TRUE(FindRule(*report, "fine")->passed());
  EXPECT_EQ(pool->Stats().workers_crashed, 2);
}

TEST_F(WorkerPoolTest, LoadCrashAndLoadTimeoutAreReportedAsInvalid) {
  std::unique_ptr<WorkerPool> pool = MakePool(Options());
  absl::StatusOr<v1::TestReport> crash =
      pool->RunTestsIsolated(Files({{"x", "load-abort"}}), Task({"x"}));
  ASSERT_TRUE(crash.ok()) << crash.status();
  ASSERT_EQ(crash->invalid_size(), 1);
  EXPECT_THAT(crash->invalid(0).message(), HasSubstr("signal SIGABRT"));
  EXPECT_THAT(crash->invalid(0).message(), HasSubstr("while loading"));
  EXPECT_THAT(crash->invalid(0).message(), HasSubstr("retried once"));

  absl::StatusOr<v1::TestReport> hang =
      pool->RunTestsIsolated(Files({{"x", "load-sleep"}}), Task({"x"}));
  ASSERT_TRUE(hang.ok()) << hang.status();
  ASSERT_EQ(hang->invalid_size(), 1);
  EXPECT_THAT(hang->invalid(0).message(), HasSubstr("no answer within"));
  EXPECT_EQ(pool->Stats().workers_killed_for_timeout, 1);
}

TEST_F(WorkerPoolTest, TooManyConcurrentRunsAreRefused) {
  WorkerPoolOptions options = Options();
  options.max_isolated_runs = 1;
  options.max_waiting = 0;
  options.limits.call_time_limit = absl::Seconds(2);
  std::unique_ptr<WorkerPool> pool = MakePool(options);
  auto files = Files({{"slow", "sleep-ms 400"}});
  std::thread busy([&] { EXPECT_TRUE(pool->RunTestsIsolated(files, Task({"slow"})).ok()); });
  ASSERT_TRUE(WaitFor([&] { return pool->Stats().isolated_runs == 1; }));
  absl::StatusOr<v1::TestReport> refused = pool->RunTestsIsolated(files, Task({"slow"}));
  EXPECT_TRUE(absl::IsResourceExhausted(refused.status())) << refused.status();
  busy.join();
  EXPECT_EQ(pool->Stats().rejected, 1);
}

TEST_F(WorkerPoolTest, StatsShowBusyWorkersAndWaitingCallers) {
  WorkerPoolOptions options = Options();
  options.workers = 1;
  std::unique_ptr<WorkerPool> pool = MakePool(options);
  ASSERT_TRUE(pool->LoadLive(Files({{"slow", "sleep-ms 1500"}}), 1).ok());
  EXPECT_EQ(pool->Stats().busy_workers, 0);
  EXPECT_EQ(pool->Stats().waiting, 0);
  internal::WorkerRequest request;
  request.mutable_run_tests()->add_rule_ids("slow");
  auto dispatch = [&] { EXPECT_TRUE(pool->DispatchLive(request, 10).ok()); };
  std::thread first(dispatch);
  ASSERT_TRUE(WaitFor([&] { return pool->Stats().busy_workers == 1; }));
  std::thread second(dispatch);  // waits for the only worker
  EXPECT_TRUE(WaitFor([&] { return pool->Stats().waiting == 1; }));
  first.join();
  second.join();
  const WorkerPoolStats stats = pool->Stats();
  EXPECT_EQ(stats.busy_workers, 0);
  EXPECT_EQ(stats.waiting, 0);
}

// The live generation ---------------------------------------------------------------

TEST_F(WorkerPoolTest, DispatchWithoutALiveSetFails) {
  std::unique_ptr<WorkerPool> pool = MakePool(Options());
  internal::WorkerRequest request;
  request.mutable_run_tests();
  EXPECT_TRUE(absl::IsFailedPrecondition(pool->DispatchLive(request, 1).status()));
  internal::WorkerRequest reply;
  reply.mutable_kv_reply();
  EXPECT_TRUE(absl::IsInvalidArgument(pool->DispatchLive(reply, 1).status()));
}

TEST_F(WorkerPoolTest, LoadLiveSwitchesAllWorkersOnlyWhenAllLoaded) {
  std::unique_ptr<WorkerPool> pool = MakePool(Options());
  absl::StatusOr<internal::LoadResult> v1 = pool->LoadLive(Files({{"me", "state 300"}}), 1);
  ASSERT_TRUE(v1.ok()) << v1.status();
  EXPECT_FALSE(HasLoadErrors(*v1));
  EXPECT_EQ(v1->version(), 1u);
  EXPECT_EQ(v1->rule_count(), 1);
  auto states1 = LiveStates(*pool, "me");
  const std::set<int64_t> pids1 = Pids(states1);
  EXPECT_EQ(pids1.size(), 2u);
  for (auto& [pid, version] : states1) EXPECT_EQ(version, 1);

  // A set with errors: diagnostics back, version 1 keeps serving.
  absl::StatusOr<internal::LoadResult> v2 =
      pool->LoadLive(Files({{"me", "state 300"}, {"broken", "load-error"}}), 2);
  ASSERT_TRUE(v2.ok()) << v2.status();
  EXPECT_TRUE(HasLoadErrors(*v2));
  EXPECT_EQ(v2->diagnostics(0).file(), "rules/broken.rule");
  EXPECT_EQ(pool->Stats().live_version, 1u);

  // A set that fails in only one of the new workers: still no switch.
  absl::StatusOr<internal::LoadResult> v3 = pool->LoadLive(
      Files({{"me", "state 300"}, {"odd", absl::StrCat("load-error-once ", Marker("odd"))}}), 3);
  ASSERT_TRUE(v3.ok()) << v3.status();
  EXPECT_TRUE(HasLoadErrors(*v3));
  EXPECT_EQ(pool->Stats().live_version, 1u);

  // A set whose load crashes a worker: an error, no switch.
  absl::StatusOr<internal::LoadResult> crash = pool->LoadLive(Files({{"me", "load-abort"}}), 4);
  EXPECT_TRUE(absl::IsAborted(crash.status())) << crash.status();
  EXPECT_THAT(std::string(crash.status().message()), HasSubstr("SIGABRT"));

  auto still1 = LiveStates(*pool, "me");
  EXPECT_EQ(Pids(still1), pids1);
  for (auto& [pid, version] : still1) EXPECT_EQ(version, 1);

  // A good set: every worker is new and on version 5; the old ones exit.
  absl::StatusOr<internal::LoadResult> v5 = pool->LoadLive(Files({{"me", "state 300"}}), 5);
  ASSERT_TRUE(v5.ok()) << v5.status();
  EXPECT_FALSE(HasLoadErrors(*v5));
  auto states5 = LiveStates(*pool, "me");
  EXPECT_EQ(Pids(states5).size(), 2u);
  for (auto& [pid, version] : states5) {
    EXPECT_EQ(version, 5);
    EXPECT_EQ(pids1.count(pid), 0u);
  }
  for (int64_t pid : pids1) {
    EXPECT_TRUE(WaitFor([&] { return Gone(static_cast<pid_t>(pid)); })) << pid;
  }
  WorkerPoolStats stats = pool->Stats();
  EXPECT_EQ(stats.live_version, 5u);
  EXPECT_EQ(stats.live_workers, 2);
}

TEST_F(WorkerPoolTest, TheSwitchIsAtomicForConcurrentDispatches) {
  WorkerPoolOptions options = Options();
  options.workers = 2;
  std::unique_ptr<WorkerPool> pool = MakePool(options);
  ASSERT_TRUE(pool->LoadLive(Files({{"me", "state"}}), 1).ok());
  std::atomic<bool> stop{false};
  std::atomic<int> errors{0};
  std::vector<std::thread> clients;
  std::vector<std::vector<uint64_t>> seen(3);
  // The version each client saw last, for the main thread to wait on.
  std::vector<std::atomic<uint64_t>> last(3);
  for (int c = 0; c < 3; ++c) {
    clients.emplace_back([&, c] {
      while (!stop) {
        internal::WorkerRequest request;
        request.mutable_run_tests()->add_rule_ids("me");
        absl::StatusOr<LiveResponse> r = pool->DispatchLive(request, 10);
        if (!r.ok()) {
          ++errors;
          continue;
        }
        seen[c].push_back(r->version);
        last[c] = r->version;
      }
    });
  }
  auto all_saw = [&](uint64_t version) {
    return [&last, version] {
      for (const std::atomic<uint64_t>& v : last) {
        if (v < version) return false;
      }
      return true;
    };
  };
  // Every client dispatches on version 1 before the switch.
  EXPECT_TRUE(WaitFor(all_saw(1)));
  ASSERT_TRUE(pool->LoadLive(Files({{"me", "state"}}), 2).ok());
  // Right after LoadLive returns, every new dispatch sees version 2.
  internal::WorkerRequest request;
  request.mutable_run_tests()->add_rule_ids("me");
  for (int i = 0; i < 5; ++i) {
    absl::StatusOr<LiveResponse> r = pool->DispatchLive(request, 10);
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->version, 2u);
  }
  // And every client goes on to dispatch on version 2.
  EXPECT_TRUE(WaitFor(all_saw(2)));
  stop = true;
  for (auto& t : clients) t.join();
  EXPECT_EQ(errors, 0);
  for (const auto& versions : seen) {
    ASSERT_FALSE(versions.empty());
    EXPECT_TRUE(std::is_sorted(versions.begin(), versions.end()));  // never back to 1
    EXPECT_EQ(versions.back(), 2u);
  }
}

TEST_F(WorkerPoolTest, InFlightWorkFinishesOnTheOldGeneration) {
  WorkerPoolOptions options = Options();
  options.workers = 1;
  std::unique_ptr<WorkerPool> pool = MakePool(options);
  ASSERT_TRUE(pool->LoadLive(Files({{"me", "state 600"}}), 1).ok());
  absl::StatusOr<LiveResponse> in_flight = absl::UnknownError("not run");
  std::thread t([&] {
    internal::WorkerRequest request;
    request.mutable_run_tests()->add_rule_ids("me");
    in_flight = pool->DispatchLive(request, 10);
  });
  EXPECT_TRUE(WaitFor([&] { return pool->Stats().busy_workers == 1; }));  // in flight
  ASSERT_TRUE(pool->LoadLive(Files({{"me", "state"}}), 2).ok());
  t.join();
  ASSERT_TRUE(in_flight.ok()) << in_flight.status();
  EXPECT_EQ(in_flight->version, 1u);
  const pid_t old_pid =
      static_cast<pid_t>(JsonInt(Output(in_flight->response.test_report().rules(0)), "pid"));
  EXPECT_TRUE(WaitFor([&] { return Gone(old_pid); }));
  auto states = LiveStates(*pool, "me");
  EXPECT_EQ(states[0].second, 2);
}

TEST_F(WorkerPoolTest, ADeadLiveWorkerIsReplaced) {
  std::unique_ptr<WorkerPool> pool = MakePool(Options());
  ASSERT_TRUE(pool->LoadLive(Files({{"me", "state 300"}}), 7).ok());
  const std::set<int64_t> before = Pids(LiveStates(*pool, "me"));
  ASSERT_EQ(before.size(), 2u);
  const pid_t victim = static_cast<pid_t>(*before.begin());
  ASSERT_EQ(kill(victim, SIGKILL), 0);
  ASSERT_TRUE(WaitFor([&] { return pool->Stats().workers_replaced == 1; }));
  auto after = LiveStates(*pool, "me");
  const std::set<int64_t> pids = Pids(after);
  EXPECT_EQ(pids.size(), 2u);
  EXPECT_EQ(pids.count(victim), 0u);
  for (auto& [pid, version] : after) EXPECT_EQ(version, 7);  // replacement loaded the same set
  WorkerPoolStats stats = pool->Stats();
  EXPECT_EQ(stats.workers_crashed, 1);
  EXPECT_EQ(stats.live_workers, 2);
  EXPECT_TRUE(Gone(victim));
}

// A preferred worker takes the request when idle (so a caller's rules keep
// their cache in one worker); when it is busy another idle worker does.
TEST_F(WorkerPoolTest, APreferredIdleWorkerTakesTheRequest) {
  std::unique_ptr<WorkerPool> pool = MakePool(Options());  // two workers
  ASSERT_TRUE(pool->LoadLive(Files({{"me", "state"}, {"slow", "sleep-ms 1500"}}), 3).ok());
  auto pid_of = [&](int preferred) -> int64_t {
    internal::WorkerRequest request;
    request.mutable_run_tests()->add_rule_ids("me");
    absl::StatusOr<LiveResponse> response = pool->DispatchLive(request, 10, nullptr, preferred);
    EXPECT_TRUE(response.ok()) << response.status();
    if (!response.ok()) return -1;
    return JsonInt(Output(response->response.test_report().rules(0)), "pid");
  };
  const int64_t zero = pid_of(0);
  const int64_t one = pid_of(1);
  EXPECT_NE(zero, one);
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(pid_of(0), zero);
    EXPECT_EQ(pid_of(1), one);
    EXPECT_EQ(pid_of(2), zero);  // modulo the number of workers
  }
  // Worker 1 busy: a request preferring it goes to worker 0 without waiting.
  internal::WorkerRequest slow;
  slow.mutable_run_tests()->add_rule_ids("slow");
  std::thread busy([&] { EXPECT_TRUE(pool->DispatchLive(slow, 10, nullptr, 1).ok()); });
  ASSERT_TRUE(WaitFor([&] { return pool->Stats().busy_workers == 1; }));
  EXPECT_EQ(pid_of(1), zero);
  busy.join();
  EXPECT_EQ(pid_of(1), one);
}

TEST_F(WorkerPoolTest, DispatchCrashIsRetriedOnceThenAbortedAndWorkersAreReplaced) {
  std::unique_ptr<WorkerPool> pool = MakePool(Options());
  ASSERT_TRUE(pool->LoadLive(Files({{"boom", "abort"}, {"fine", "ok"}}), 1).ok());
  internal::WorkerRequest boom;
  boom.mutable_run_tests()->add_rule_ids("boom");
  absl::StatusOr<LiveResponse> r = pool->DispatchLive(boom, 1);
  EXPECT_TRUE(absl::IsAborted(r.status())) << r.status();
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("worker crashed (signal SIGABRT)"));
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("retried once"));
  EXPECT_EQ(pool->Stats().retries, 1);
  EXPECT_EQ(pool->Stats().workers_crashed, 2);
  ASSERT_TRUE(WaitFor([&] { return pool->Stats().workers_replaced == 2; }));
  internal::WorkerRequest fine;
  fine.mutable_run_tests()->add_rule_ids("fine");
  absl::StatusOr<LiveResponse> ok = pool->DispatchLive(fine, 1);
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_TRUE(ok->response.test_report().rules(0).passed());
}

TEST_F(WorkerPoolTest, DispatchTimeoutKillsAndReplaces) {
  std::unique_ptr<WorkerPool> pool = MakePool(Options());
  ASSERT_TRUE(pool->LoadLive(Files({{"loop", "sleep"}}), 1).ok());
  internal::WorkerRequest request;
  request.mutable_run_tests()->add_rule_ids("loop");
  const absl::Time start = absl::Now();
  absl::StatusOr<LiveResponse> r = pool->DispatchLive(request, 2);  // 2 x 200 ms + 300 ms
  const absl::Duration took = absl::Now() - start;
  EXPECT_TRUE(absl::IsDeadlineExceeded(r.status())) << r.status();
  EXPECT_GE(took, absl::Milliseconds(700));
  EXPECT_LT(took, absl::Milliseconds(2000));
  EXPECT_EQ(pool->Stats().workers_killed_for_timeout, 1);
  ASSERT_TRUE(WaitFor([&] { return pool->Stats().workers_replaced == 1; }));
  EXPECT_EQ(pool->Stats().live_workers, 2);
}

TEST_F(WorkerPoolTest, WorkerErrorsAreFailedPrecondition) {
  std::unique_ptr<WorkerPool> pool = MakePool(Options());
  ASSERT_TRUE(pool->LoadLive(Files({{"a", "ok"}}), 1).ok());
  internal::WorkerRequest request;
  request.mutable_run_tests()->add_rule_ids("refuse");
  absl::StatusOr<LiveResponse> r = pool->DispatchLive(request, 1);
  EXPECT_TRUE(absl::IsFailedPrecondition(r.status())) << r.status();
  EXPECT_EQ(pool->Stats().workers_crashed, 0);
}

TEST_F(WorkerPoolTest, TooManyWaitersAreRefused) {
  WorkerPoolOptions options = Options();
  options.workers = 1;
  options.max_waiting = 0;
  std::unique_ptr<WorkerPool> pool = MakePool(options);
  ASSERT_TRUE(pool->LoadLive(Files({{"me", "state 1000"}}), 1).ok());
  internal::WorkerRequest request;
  request.mutable_run_tests()->add_rule_ids("me");
  std::thread busy([&] { EXPECT_TRUE(pool->DispatchLive(request, 10).ok()); });
  EXPECT_TRUE(WaitFor([&] { return pool->Stats().busy_workers == 1; }));  // in flight
  absl::StatusOr<LiveResponse> refused = pool->DispatchLive(request, 10);
  EXPECT_TRUE(absl::IsResourceExhausted(refused.status())) << refused.status();
  busy.join();
  EXPECT_EQ(pool->Stats().rejected, 1);
}

// Poison batches: each DispatchLive error says whether and how the request
// ended its worker, so that the pipeline can narrow a batch down.
TEST_F(WorkerPoolTest, DispatchErrorsCarryTheWorkerFailureKind) {
  std::unique_ptr<WorkerPool> pool = MakePool(Options());
  ASSERT_TRUE(pool->LoadLive(Files({{"boom", "abort"},
                                    {"segv", "segv"},
                                    {"loop", "sleep"},
                                    {"junk", "garbage"},
                                    {"fine", "ok"}}),
                             1)
                  .ok());
  auto dispatch = [&](const std::string& rule, bool retry) {
    internal::WorkerRequest request;
    request.mutable_run_tests()->add_rule_ids(rule);
    return pool->DispatchLive(request, 1, nullptr, -1, retry);
  };
  absl::StatusOr<LiveResponse> boom = dispatch("boom", true);
  EXPECT_EQ(WorkerFailureOf(boom.status()), WorkerFailureKind::kCrash) << boom.status();
  EXPECT_STREQ(WorkerFailureType(WorkerFailureOf(boom.status())), "WorkerCrashed");
  EXPECT_EQ(pool->Stats().retries, 1);
  // Without the retry: one worker ended, reported at once.
  absl::StatusOr<LiveResponse> segv = dispatch("segv", false);
  EXPECT_TRUE(absl::IsAborted(segv.status())) << segv.status();
  EXPECT_EQ(WorkerFailureOf(segv.status()), WorkerFailureKind::kCrash);
  EXPECT_THAT(std::string(segv.status().message()), HasSubstr("SIGSEGV"));
  EXPECT_THAT(std::string(segv.status().message()), Not(HasSubstr("retried")));
  EXPECT_EQ(pool->Stats().retries, 1);
  absl::StatusOr<LiveResponse> loop = dispatch("loop", true);
  EXPECT_EQ(WorkerFailureOf(loop.status()), WorkerFailureKind::kTimeout) << loop.status();
  EXPECT_STREQ(WorkerFailureType(WorkerFailureKind::kTimeout), "Timeout");
  absl::StatusOr<LiveResponse> junk = dispatch("junk", false);
  EXPECT_EQ(WorkerFailureOf(junk.status()), WorkerFailureKind::kProtocol) << junk.status();
  EXPECT_STREQ(WorkerFailureType(WorkerFailureKind::kProtocol), "WorkerProtocolError");
  // Not worker failures: a refusal, no live set, success.
  absl::StatusOr<LiveResponse> refused = dispatch("refuse", true);
  EXPECT_TRUE(absl::IsFailedPrecondition(refused.status()));
  EXPECT_EQ(WorkerFailureOf(refused.status()), WorkerFailureKind::kNone);
  EXPECT_EQ(WorkerFailureOf(absl::OkStatus()), WorkerFailureKind::kNone);
  EXPECT_EQ(WorkerFailureOf(absl::AbortedError("x")), WorkerFailureKind::kNone);
  absl::StatusOr<LiveResponse> fine = dispatch("fine", true);
  EXPECT_TRUE(fine.ok()) << fine.status();
}

// A worker that dies before serving anything is replaced after a doubling
// delay, counted; one that had served is replaced at once.
TEST_F(WorkerPoolTest, ReplacingWorkersThatDieUnusedBacksOff) {
  WorkerPoolOptions options = Options();
  options.workers = 1;
  std::unique_ptr<WorkerPool> pool = MakePool(options);
  ASSERT_TRUE(pool->LoadLive(Files({{"boom", "abort"}, {"me", "state"}}), 1).ok());
  internal::WorkerRequest boom;
  boom.mutable_run_tests()->add_rule_ids("boom");
  // The loaded worker and its replacement both die unused: 100 ms, then
  // 200 ms before the next replacement.
  EXPECT_TRUE(absl::IsAborted(pool->DispatchLive(boom, 1).status()));
  EXPECT_EQ(pool->Stats().replacements_delayed, 2);
  internal::WorkerRequest me;
  me.mutable_run_tests()->add_rule_ids("me");
  const absl::Time start = absl::Now();
  absl::StatusOr<LiveResponse> served = pool->DispatchLive(me, 10);
  ASSERT_TRUE(served.ok()) << served.status();
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(150));  // waited out the backoff
  const pid_t pid =
      static_cast<pid_t>(JsonInt(Output(served->response.test_report().rules(0)), "pid"));
  // This worker served: killing it now is replaced without delay.
  ASSERT_EQ(kill(pid, SIGKILL), 0);
  ASSERT_TRUE(WaitFor([&] { return pool->Stats().workers_replaced == 3; }));
  EXPECT_EQ(pool->Stats().replacements_delayed, 2);
}

// Shutdown: Stop fails waiters at once, KillSwitch ends a worker that would
// otherwise hold its request for its whole budget, and no process starts
// after it.
TEST_F(WorkerPoolTest, StopAndKillSwitchEndBusyAndWaitingCallers) {
  WorkerPoolOptions options = Options();
  options.workers = 1;
  std::unique_ptr<WorkerPool> pool = MakePool(options);
  ASSERT_TRUE(pool->LoadLive(Files({{"loop", "sleep"}, {"me", "state"}}), 1).ok());
  std::function<int()> kill_all = pool->KillSwitch();
  internal::WorkerRequest loop;
  loop.mutable_run_tests()->add_rule_ids("loop");
  absl::StatusOr<LiveResponse> looped = absl::UnknownError("not run");
  absl::Time ended;
  std::thread busy([&] {
    looped = pool->DispatchLive(loop, 1000);  // a 200 s budget
    ended = absl::Now();
  });
  ASSERT_TRUE(WaitFor([&] { return pool->Stats().busy_workers == 1; }));
  absl::StatusOr<LiveResponse> waited = absl::UnknownError("not run");
  std::thread waiter([&] {
    internal::WorkerRequest me;
    me.mutable_run_tests()->add_rule_ids("me");
    waited = pool->DispatchLive(me, 1000);
  });
  ASSERT_TRUE(WaitFor([&] { return pool->Stats().waiting == 1; }));
  pool->Stop();
  waiter.join();
  EXPECT_TRUE(absl::IsUnavailable(waited.status())) << waited.status();
  const absl::Time killed = absl::Now();
  EXPECT_EQ(kill_all(), 1);
  busy.join();
  EXPECT_FALSE(looped.ok());
  EXPECT_EQ(WorkerFailureOf(looped.status()), WorkerFailureKind::kNone) << looped.status();
  EXPECT_LT(ended - killed, absl::Seconds(2));
  EXPECT_TRUE(
      absl::IsUnavailable(pool->RunTestsIsolated(Files({{"me", "ok"}}), Task({"me"})).status()));
  pool.reset();
  EXPECT_EQ(kill_all(), 0);  // still callable; nothing left
}

TEST_F(WorkerPoolTest, DestructionEndsEveryWorker) {
  std::unique_ptr<WorkerPool> pool = MakePool(Options());
  ASSERT_TRUE(pool->LoadLive(Files({{"me", "state 300"}}), 1).ok());
  const std::set<int64_t> pids = Pids(LiveStates(*pool, "me"));
  ASSERT_EQ(pids.size(), 2u);
  pool.reset();
  for (int64_t pid : pids) EXPECT_TRUE(Gone(static_cast<pid_t>(pid))) << pid;
}

}  // namespace
}  // namespace pantherd::engine
