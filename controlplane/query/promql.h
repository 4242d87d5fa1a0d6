#pragma once

#include <map>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"

namespace hosting::controlplane {

// A PromQL source for analysis checks (brief, decision 4: an option on top of the agents).
class MetricsQuery {
 public:
  virtual ~MetricsQuery() = default;
  // The value of an instant query that yields one number (a scalar, or a vector whose first
  // sample is taken). NOT_FOUND when the query returns no series; UNAVAILABLE when the server
  // cannot be reached; INVALID_ARGUMENT when it rejects the query.
  virtual absl::StatusOr<double> Instant(const std::string& query) = 0;
};

// Prometheus' HTTP API: GET <base>/api/v1/query?query=...
class PrometheusQuery final : public MetricsQuery {
 public:
  // `base_url`, e.g. "http://127.0.0.1:9090".
  explicit PrometheusQuery(std::string base_url) : base_url_(std::move(base_url)) {}
  absl::StatusOr<double> Instant(const std::string& query) override;

  // Parses a /api/v1/query answer.
  static absl::StatusOr<double> ParseInstant(const std::string& body);

 private:
  std::string base_url_;
};

// "{{service}}" and "{{revision}}" in a check's query replaced.
std::string SubstituteQuery(const std::string& query, const std::string& service,
                            int64_t revision);

}  // namespace hosting::controlplane
