#pragma once

#include <map>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "controlplane/query/promql.h"

namespace hosting::controlplane {

// Answers from a table, for unit tests.
class FakeMetricsQuery final : public MetricsQuery {
 public:
  void Set(const std::string& query, absl::StatusOr<double> value);
  absl::StatusOr<double> Instant(const std::string& query) override;

 private:
  absl::Mutex mu_;
  std::map<std::string, absl::StatusOr<double>> values_ ABSL_GUARDED_BY(mu_);
};

}  // namespace hosting::controlplane
