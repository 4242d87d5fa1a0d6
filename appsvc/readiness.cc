#include "appsvc/readiness.h"

#include "absl/time/clock.h"

namespace hosting::appsvc {

Readiness::Readiness(std::vector<std::pair<std::string, Probe>> probes, absl::Duration interval,
                     AppMetrics& metrics, absl::Duration database_grace)
    : probes_(std::move(probes)),
      interval_(interval),
      database_grace_(database_grace),
      metrics_(metrics) {}

Readiness::~Readiness() { Stop(); }

void Readiness::CheckNow() {
  std::map<std::string, DependencyHealth> results;
  bool degraded = false;
  for (const auto& [name, probe] : probes_) {
    absl::Time start = absl::Now();
    DependencyHealth h = probe();
    h.latency_ms = absl::ToDoubleMilliseconds(absl::Now() - start);
    if (h.configured) {
      metrics_.SetDependencyUp(name, h.up);
      if (!h.up && name != "database") degraded = true;
    }
    results[name] = std::move(h);
  }
  absl::MutexLock lock(&mu_);
  auto db = results.find("database");
  if (db != results.end() && db->second.configured && !db->second.up) {
    if (database_down_since_ == absl::InfiniteFuture()) database_down_since_ = absl::Now();
    degraded = true;
  } else {
    database_down_since_ = absl::InfiniteFuture();
  }
  metrics_.SetDegraded(degraded);
  results_ = std::move(results);
  checked_at_ = absl::Now();
}

void Readiness::Start() {
  CheckNow();
  thread_ = std::thread([this] {
    while (!stop_.WaitForNotificationWithTimeout(interval_)) CheckNow();
  });
}

void Readiness::Stop() {
  if (!stop_.HasBeenNotified()) stop_.Notify();
  if (thread_.joinable()) thread_.join();
}

Readiness::Snapshot Readiness::Get() {
  Snapshot s;
  s.draining = draining_.load();
  absl::MutexLock lock(&mu_);
  s.dependencies = results_;
  s.checked_at = checked_at_;
  auto db = results_.find("database");
  const bool db_up = db != results_.end() && db->second.up;
  for (const auto& [name, h] : results_) {
    if (h.configured && !h.up) s.degraded = true;
  }
  // Down, but for less than the time statements wait for it: still ready.
  const bool db_waited_for = db != results_.end() && !db_up &&
                             absl::Now() - database_down_since_ < database_grace_;
  s.ready = (db_up || db_waited_for) && !s.draining;
  return s;
}

}  // namespace hosting::appsvc
