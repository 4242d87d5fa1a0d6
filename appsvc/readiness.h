#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "appsvc/metrics.h"

namespace hosting::appsvc {

struct DependencyHealth {
  bool configured = true;
  bool up = false;
  std::string detail;
  double latency_ms = 0;
};

// Checks the dependencies in the background (each probe bounded by its own short timeout) so
// that /ready answers at once from the latest results, even when the workers are all busy.
// Ready = not draining and the primary database answers, or stopped answering less than
// `database_grace` ago (statements wait that long for it: a restart or a failover makes the
// service degraded, not unready). Redis or the replica missing makes the service degraded,
// not unready: it still serves from PostgreSQL's primary.
class Readiness {
 public:
  using Probe = std::function<DependencyHealth()>;

  Readiness(std::vector<std::pair<std::string, Probe>> probes, absl::Duration interval,
            AppMetrics& metrics, absl::Duration database_grace = absl::ZeroDuration());
  ~Readiness();

  void Start();
  void Stop();
  // Runs every probe once, now.
  void CheckNow();

  struct Snapshot {
    bool ready = false;
    bool degraded = false;
    bool draining = false;
    std::map<std::string, DependencyHealth> dependencies;
    absl::Time checked_at;
  };
  Snapshot Get();

  // From now on /ready fails (SIGTERM).
  void SetDraining() { draining_ = true; }
  bool draining() const { return draining_.load(); }

 private:
  const std::vector<std::pair<std::string, Probe>> probes_;
  const absl::Duration interval_;
  const absl::Duration database_grace_;
  AppMetrics& metrics_;
  std::atomic<bool> draining_{false};
  absl::Notification stop_;
  std::thread thread_;
  absl::Mutex mu_;
  std::map<std::string, DependencyHealth> results_ ABSL_GUARDED_BY(mu_);
  absl::Time checked_at_ ABSL_GUARDED_BY(mu_);
  // When the primary stopped answering; InfiniteFuture while it answers.
  absl::Time database_down_since_ ABSL_GUARDED_BY(mu_) = absl::InfiniteFuture();
};

}  // namespace hosting::appsvc
