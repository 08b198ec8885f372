// File: engine/python_time_limit.cc
//
// The per-call time limit of PythonRuntime: a watchdog thread that sends
// SIGALRM to the thread running rule code once its deadline passes (and
// again every second while the same call runs), and the handler that raises
// TimeoutError in it. Rule code cannot take SIGALRM away. What a call that
// swallows TimeoutError meets next is the worker's hard limit
// (python_worker.cc) and then the watchdog process (worker_sandbox.h).

#include <pthread.h>
#include <pybind11/embed.h>
#include <signal.h>

#include <algorithm>
#include <climits>
#include <cstdint>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "engine/python_runtime.h"

namespace pantherd::engine {

namespace py = pybind11;

absl::Status PythonRuntime::InstallTimer() {
  try {
    py::module_ signal = py::module_::import("signal");
    alarm_handler_ =
        py::cpp_function([this](py::object /*signum*/, py::object /*frame*/) { OnAlarm(); },
                         py::name("_pantherd_time_limit"));
    py::module_ c_signal = py::module_::import("_signal");
    signal_getsignal_ = c_signal.attr("getsignal");
    signal_signal_ = c_signal.attr("signal");
    sigalrm_ = c_signal.attr("SIGALRM");
    previous_alarm_handler_ = signal_signal_(sigalrm_, alarm_handler_);
    // Rule code cannot take SIGALRM away from the time limit: setting its
    // handler (signal.signal, which calls _signal.signal) leaves ours in
    // place and returns it.
    py::dict scope;
    scope["_set"] = signal_signal_;
    scope["_get"] = signal_getsignal_;
    scope["_alarm"] = sigalrm_;
    py::exec(R"(
def signal(signalnum, handler):
    if signalnum == _alarm:
        return _get(signalnum)
    return _set(signalnum, handler)
)",
             scope);
    c_signal.attr("signal") = scope["signal"];
  } catch (const py::error_already_set& e) {
    return absl::InternalError(absl::StrCat("cannot install the SIGALRM handler: ", e.what()));
  }
  owner_thread_ = pthread_self();
  watchdog_ = std::thread([this] { WatchCalls(); });
  return absl::OkStatus();
}

void PythonRuntime::WatchCalls() {
  const absl::Duration tick =
      std::clamp(options_.time_limit / 20, absl::Milliseconds(1), absl::Milliseconds(50));
  uint64_t signalled_call = 0;  // the call last sent SIGALRM
  int64_t next_signal_ns = 0;   // when to send it again (every second)
  absl::MutexLock lock(&watchdog_mu_);
  while (!watchdog_mu_.AwaitWithTimeout(absl::Condition(&stop_watchdog_), tick)) {
    const uint64_t call = call_number_.load(std::memory_order_acquire);
    const int64_t deadline = call_deadline_ns_.load(std::memory_order_acquire);
    if (deadline == INT64_MAX) continue;  // no call in progress
    const int64_t now = absl::GetCurrentTimeNanos();
    if (call == signalled_call ? now < next_signal_ns : now < deadline) continue;
    // The deadline read may belong to a call that has just ended: only signal
    // when the same call is still in progress.
    if (call_number_.load(std::memory_order_acquire) != call) continue;
    alarm_call_number_.store(call, std::memory_order_release);
    signalled_call = call;
    next_signal_ns = now + absl::ToInt64Nanoseconds(absl::Seconds(1));
    pthread_kill(owner_thread_, SIGALRM);
  }
}

void PythonRuntime::OnAlarm() {
  if (!in_call_ || alarm_call_number_.load(std::memory_order_acquire) !=
                       call_number_.load(std::memory_order_relaxed)) {
    return;
  }
  call_timed_out_ = true;
  const std::string message =
      absl::StrCat("rule function [", call_function_, "] exceeded the time limit of ",
                   absl::FormatDuration(options_.time_limit));
  PyErr_SetString(PyExc_TimeoutError, message.c_str());
  throw py::error_already_set();
}

}  // namespace pantherd::engine
