#pragma once

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace hosting::agent {

// One sample of the Prometheus text exposition format (version 0.0.4).
struct Sample {
  std::string name;
  std::map<std::string, std::string> labels;
  double value = 0;
};

// Parses a /metrics body. Comment and TYPE/HELP lines are skipped. Any malformed line makes the
// whole body an INVALID_ARGUMENT naming the line number: a task whose metrics are malformed is
// reported as such rather than half-read.
absl::StatusOr<std::vector<Sample>> ParsePrometheusText(absl::string_view text);

// What the agent needs from an application's metrics, summed over label sets.
struct AppMetrics {
  double requests_total = 0;
  double errors_total = 0;  // status label starting with "5"
  // Cumulative histogram of request durations: upper bounds (seconds, ascending, last +Inf)
  // and cumulative counts.
  std::vector<double> bucket_bounds;
  std::vector<double> bucket_counts;
  double in_flight = 0;
  bool has_requests = false;
  bool has_histogram = false;
};

// Extracts request totals (http_requests_total{status|status_code}), the
// http_request_duration_seconds histogram and http_requests_in_flight.
AppMetrics ExtractAppMetrics(const std::vector<Sample>& samples);

}  // namespace hosting::agent
