#include "controlplane/testing/fake_metrics_query.h"

namespace hosting::controlplane {

void FakeMetricsQuery::Set(const std::string& query, absl::StatusOr<double> value) {
  absl::MutexLock lock(&mu_);
  values_.insert_or_assign(query, std::move(value));
}

absl::StatusOr<double> FakeMetricsQuery::Instant(const std::string& query) {
  absl::MutexLock lock(&mu_);
  auto it = values_.find(query);
  if (it == values_.end()) return absl::NotFoundError("the query returned no series");
  return it->second;
}

}  // namespace hosting::controlplane
