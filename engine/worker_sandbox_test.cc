// The attacks of rule code on its neighbours, run through real pantherd-worker
// processes: what a confined worker can no longer do (engine/worker_sandbox.h).
#include "engine/worker_sandbox.h"

#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "engine/worker_pool.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace pantherd::engine {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

v1::AnalysisFile File(const std::string& path, const std::string& content) {
  v1::AnalysisFile f;
  f.set_path(path);
  f.set_content(content);
  return f;
}

// A rule with one test whose module is `body`.
std::vector<v1::AnalysisFile> Rule(const std::string& body) {
  return {File("rules/probe.yml",
               "AnalysisType: rule\nRuleID: Probe\nFilename: probe.py\nEnabled: true\n"
               "LogTypes: [Okta.SystemLog]\nSeverity: High\n"
               "Tests:\n  - Name: t\n    ExpectedResult: true\n    Log: {eventType: x}\n"),
          File("rules/probe.py", body)};
}

// Whether this process may create the namespaces the sandbox uses.
bool NamespacesAvailable() {
  if (geteuid() != 0) return false;
  const pid_t pid = fork();
  if (pid == 0) {
    _exit(unshare(CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWUTS) == 0
              ? 0
              : 1);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

class WorkerSandboxTest : public ::testing::Test {
 protected:
  std::unique_ptr<WorkerPool> Pool(int calls_per_rule_tests = 10) {
    WorkerPoolOptions options;
    options.worker_binary = PANTHERD_WORKER_BINARY;
    options.workers = 1;
    options.limits.call_time_limit = absl::Seconds(1);
    options.limits.kill_grace = absl::Milliseconds(300);
    options.calls_per_rule_tests = calls_per_rule_tests;
    options.logger = &logger_;
    absl::StatusOr<std::unique_ptr<WorkerPool>> pool = WorkerPool::Create(std::move(options));
    EXPECT_TRUE(pool.ok()) << pool.status();
    return pool.ok() ? std::move(*pool) : nullptr;
  }

  // The rule function's error of the rule's one test (type: message).
  std::string RunProbe(WorkerPool& pool, const std::string& body) {
    internal::RunTestsTask task;
    task.add_rule_ids("Probe");
    absl::StatusOr<v1::TestReport> report = pool.RunTestsIsolated(Rule(body), task);
    EXPECT_TRUE(report.ok()) << report.status();
    if (!report.ok() || report->rules_size() != 1 || report->rules(0).tests_size() != 1 ||
        report->rules(0).tests(0).functions_size() == 0) {
      return absl::StrCat("unexpected report: ", report.ok() ? report->DebugString() : "");
    }
    const v1::RuleError& e = report->rules(0).tests(0).functions(0).error();
    return absl::StrCat(e.type(), ": ", e.message());
  }

  // The pool's log events once one has a field or message containing `text`
  // (or after 10 s).
  std::vector<base::CapturingLogger::Entry> LogOnce(const std::string& text) {
    const absl::Time deadline = absl::Now() + absl::Seconds(10);
    for (;;) {
      std::vector<base::CapturingLogger::Entry> entries = logger_.entries();
      for (const base::CapturingLogger::Entry& e : entries) {
        bool found = absl::StrContains(e.msg, text);
        for (const auto& [key, value] : e.fields) found = found || absl::StrContains(value, text);
        if (found) return entries;
      }
      if (absl::Now() > deadline) return entries;
      absl::SleepFor(absl::Milliseconds(10));
    }
  }

  // The events as the log would show them, for failure messages.
  static std::string Render(const std::vector<base::CapturingLogger::Entry>& entries) {
    std::string out;
    for (const base::CapturingLogger::Entry& e : entries) {
      absl::StrAppend(&out, base::FormatLogLine("-", e.level, e.msg, e.fields), "\n");
    }
    return out;
  }

  base::CapturingLogger logger_;
};

TEST_F(WorkerSandboxTest, RuleCodeCannotForkSignalSeeOthersOrConnect) {
  if (!NamespacesAvailable()) GTEST_SKIP() << "needs root and namespaces";
  // A process of the worker's own user (as another worker would be), and a
  // listening socket on loopback.
  const pid_t victim = fork();
  if (victim == 0) {
    if (setresgid(65534, 65534, 65534) != 0 || setresuid(65534, 65534, 65534) != 0) _exit(1);
    pause();
    _exit(0);
  }
  const int listener = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(listen(listener, 4), 0);
  socklen_t len = sizeof(addr);
  ASSERT_EQ(getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len), 0);

  const std::string body = absl::StrReplaceAll(
      R"(import os, signal, socket, subprocess
def attempt(out, name, f):
    try:
        f()
        out.append(name + '=ok')
    except OSError as e:
        out.append(name + '=' + type(e).__name__)
def fork():
    if os.fork() == 0:
        os._exit(0)
def rule(event):
    out = ['pids=' + ','.join(sorted(p for p in os.listdir('/proc') if p.isdigit()))]
    attempt(out, 'fork', fork)
    attempt(out, 'spawn', lambda: subprocess.run(['/bin/true']))
    attempt(out, 'kill', lambda: os.kill(VICTIM, signal.SIGKILL))
    attempt(out, 'killall', lambda: os.kill(-1, signal.SIGKILL))
    attempt(out, 'connect', lambda: socket.create_connection(('127.0.0.1', PORT), timeout=2))
    attempt(out, 'self', lambda: os.kill(os.getpid(), 0))
    raise RuntimeError(' '.join(out))
)",
      {{"VICTIM", absl::StrCat(victim)}, {"PORT", absl::StrCat(ntohs(addr.sin_port))}});
  std::unique_ptr<WorkerPool> pool = Pool();
  ASSERT_NE(pool, nullptr);
  const std::string result = RunProbe(*pool, body);
  EXPECT_THAT(result, HasSubstr("pids=1,2 "));  // its init and itself
  EXPECT_THAT(result, HasSubstr("fork=PermissionError"));
  EXPECT_THAT(result, HasSubstr("spawn=PermissionError"));
  EXPECT_THAT(result, HasSubstr("kill=PermissionError"));
  EXPECT_THAT(result, HasSubstr("killall=PermissionError"));
  EXPECT_THAT(result, Not(HasSubstr("connect=ok")));
  EXPECT_THAT(result, HasSubstr("self=ok"));
  EXPECT_EQ(kill(victim, 0), 0) << "the process of the worker's user was killed";
  kill(victim, SIGKILL);
  waitpid(victim, nullptr, 0);
  close(listener);
}

// Without namespaces (pantherd not root) the seccomp filter still refuses
// process creation and signals to others.
TEST_F(WorkerSandboxTest, RuleCodeCannotForkOrSignalEvenWithoutNamespaces) {
  std::unique_ptr<WorkerPool> pool = Pool();
  ASSERT_NE(pool, nullptr);
  const std::string result = RunProbe(*pool, R"(import os, signal
def rule(event):
    out = []
    try:
        if os.fork() == 0:
            os._exit(0)
        out.append('fork=ok')
    except OSError as e:
        out.append('fork=' + type(e).__name__)
    try:
        os.kill(os.getppid() or 1, signal.SIGKILL)
        out.append('parent=ok')
    except OSError as e:
        out.append('parent=' + type(e).__name__)
    raise RuntimeError(' '.join(out))
)");
  EXPECT_THAT(result, HasSubstr("fork=PermissionError"));
  EXPECT_THAT(result, HasSubstr("parent=PermissionError"));
}

// A worker that stops itself (SIGSTOP) or swallows the time-limit exception
// ends at the call's limit plus the grace, not at the request's budget (here
// 100 calls: 100 s).
TEST_F(WorkerSandboxTest, StoppedOrStubbornCallsEndAtTheirLimitNotTheBudget) {
  std::unique_ptr<WorkerPool> pool = Pool(/*calls_per_rule_tests=*/100);
  ASSERT_NE(pool, nullptr);
  for (const char* body : {
           "import os, signal\ndef rule(event):\n    os.kill(os.getpid(), signal.SIGSTOP)\n"
           "    return True\n",
           "import time\ndef rule(event):\n    while True:\n        try:\n"
           "            time.sleep(10)\n        except BaseException:\n            pass\n",
       }) {
    const absl::Time start = absl::Now();
    const std::string result = RunProbe(*pool, body);
    const absl::Duration took = absl::Now() - start;
    EXPECT_THAT(result, HasSubstr("Timeout")) << body;
    // 1 s limit, 0.3 s grace, 1 s watchdog margin, a restart: far below 100 s.
    EXPECT_LT(took, absl::Seconds(30)) << body;
  }
}

// Rule code's output is data: a printed line shaped like pantherd's log, with
// escape sequences, reaches the log only labelled and escaped.
TEST_F(WorkerSandboxTest, PrintedLinesReachTheLogLabelledAndEscaped) {
  std::unique_ptr<WorkerPool> pool = Pool();
  ASSERT_NE(pool, nullptr);
  // At import: a test run captures what rule functions print (as pat does).
  RunProbe(*pool, R"(import sys
print('level=warn msg="token revoked" token=bootstrap\x1b[2J', flush=True)
sys.stderr.write('to stderr\n')
def rule(event):
    return True
)");
  std::vector<base::CapturingLogger::Entry> log = LogOnce("to stderr");
  // What rule code printed is only ever the `line` field of a "worker output"
  // event carrying the worker's pid, escaped: never a message or a field of
  // its own, and never a raw escape sequence.
  bool forged = false, labelled = false, err = false;
  for (const base::CapturingLogger::Entry& e : log) {
    const bool output = e.msg == "worker output" && !e.Field("worker_pid").empty();
    for (const auto& [key, value] : e.fields) {
      forged = forged || absl::StrContains(value, "\x1b") ||
               (absl::StrContains(value, "token revoked") && !(output && key == "line"));
    }
    forged = forged || absl::StrContains(e.msg, "token revoked");
    labelled =
        labelled ||
        (output && e.Field("line") ==
                       "[rule Probe] level=warn msg=\"token revoked\" token=bootstrap\\x1b[2J");
    err = err || (output && e.Field("line") == "[rule Probe] to stderr");
  }
  EXPECT_FALSE(forged) << Render(log);
  EXPECT_TRUE(labelled) << Render(log);
  EXPECT_TRUE(err) << Render(log);
}

}  // namespace
}  // namespace pantherd::engine
