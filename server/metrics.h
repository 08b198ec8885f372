// File: server/metrics.h
//
// pantherd's own figures, gathered from the running components into the
// live part of a GetServerStatusResponse (version, start time, uptime, the
// alert feed's StreamStats and the ServerMetrics), and rendered in the
// Prometheus text exposition format 0.0.4. GetServerStatus and GET /metrics
// (server/metrics_http.h) both start from CollectLiveStatus, so they show the
// same numbers. docs/metrics.md lists every metric.
//
//   MetricsInputs in{&engine_metrics, pool, hub, executor, sources, start, "0.1.0"};
//   v1::GetServerStatusResponse status;
//   CollectLiveStatus(in, &status);
//   std::string text = RenderPrometheus(status);
//
// Collecting reads memory only (atomics and short critical sections of the
// components: the worker pool's, the hub's and each stream's, each poller's),
// never the disk or a rule worker, so it may run on any thread that may take
// a mutex briefly.
#ifndef PANTHERD_SERVER_METRICS_H_
#define PANTHERD_SERVER_METRICS_H_

#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "engine/metrics.h"
#include "engine/worker_pool.h"
#include "pantherd/v1/admin_service.pb.h"
#include "server/alert_hub.h"
#include "server/delivery_manager.h"
#include "server/executor.h"
#include "server/source_manager.h"

namespace pantherd::server {

// Where the figures come from. None is owned; a null component contributes
// nothing (its part of the status stays empty). All must outlive every
// CollectLiveStatus call that uses them.
struct MetricsInputs {
  const engine::EngineMetrics* engine = nullptr;
  const engine::WorkerPool* pool = nullptr;
  const AlertHub* hub = nullptr;
  const Executor* executor = nullptr;
  const Executor* evaluation = nullptr;
  const SourceManager* sources = nullptr;
  const DeliveryManager* deliveries = nullptr;
  absl::Time start_time = absl::InfinitePast();
  std::string version;
};

// Fills `status`'s version, start_time, uptime, streams and metrics from
// `in` (other fields are left as they are). Thread-safe as far as the
// components are (they all are).
void CollectLiveStatus(const MetricsInputs& in, v1::GetServerStatusResponse* status);

// The StreamStats of the alert feed from the hub's counters.
v1::StreamStats ToStreamStats(const AlertHubStats& hub);

// `status` (as CollectLiveStatus fills it) in the Prometheus text format
// 0.0.4: every family with its # HELP and # TYPE lines, label values
// escaped, seconds written exactly from nanoseconds. Pure.
std::string RenderPrometheus(const v1::GetServerStatusResponse& status);

// The Content-Type of RenderPrometheus's text.
inline constexpr absl::string_view kPrometheusContentType =
    "text/plain; version=0.0.4; charset=utf-8";

// `value` as a Prometheus label value between the quotes: backslash, double
// quote and line feed escaped. Pure.
std::string EscapeLabelValue(absl::string_view value);

// `seconds` + `nanos` as an exact decimal number of seconds ("1.5",
// "0.000000123", "-2.25"). Pure.
std::string FormatSeconds(int64_t seconds, int32_t nanos);

}  // namespace pantherd::server

#endif  // PANTHERD_SERVER_METRICS_H_
