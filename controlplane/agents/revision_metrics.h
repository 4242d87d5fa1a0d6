#pragma once

#include <cmath>
#include <cstdint>
#include <vector>

namespace hosting::controlplane {

// What the agents' windows say about one revision of a service: task health and traffic over
// the registry's window. A plain value, so that the release machine and the analysis can take
// it without linking the registry that computes it.
struct RevisionMetrics {
  int healthy = 0;
  int unhealthy = 0;
  int starting = 0;
  // Tasks on a node whose agent is lost or disconnected: their last health and rates are
  // stale, so they count here and nowhere else (not healthy, not in rates or errors).
  int unknown = 0;
  // Tasks whose agent reports now: the rest of the fields are over these.
  int reporting_tasks = 0;
  int metrics_missing = 0;
  double rps = 0;
  // Requests and 5xx responses counted over the window (the analysis' sample size).
  double requests = 0;
  double errors = 0;
  double error_ratio = 0;
  double p50 = NAN, p95 = NAN, p99 = NAN;  // seconds
  // The tasks' latency histograms over the window, merged: ascending upper bounds (seconds)
  // and cumulative counts (what the statistical judge compares).
  std::vector<double> latency_bounds;
  std::vector<double> latency_counts;
  double cpu_cores = 0;     // mean per task
  int64_t memory_bytes = 0;  // mean per task
};

}  // namespace hosting::controlplane
