#pragma once

#include <memory>
#include <string>

#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"

namespace hosting::appsvc {

// appsvc's Prometheus metrics. Labels are route templates, never raw paths.
class AppMetrics {
 public:
  AppMetrics();

  void ObserveRequest(const std::string& method, const char* route, int status, double seconds);
  // layer: "local" or "redis".
  void CacheHit(const char* layer);
  void CacheMiss();
  void CacheError();
  void ReplicaFallback();
  // A statement sent to the primary again after it was unreachable; `waited`: it then
  // succeeded (false: it gave up).
  void PrimaryRetried(bool waited);
  void AddInFlight(double d) { in_flight_->Increment(d); }
  void SetPoolInUse(double v) { pool_in_use_->Set(v); }
  void SetPoolWaiting(double v) { pool_waiting_->Set(v); }
  void SetPoolSize(double v) { pool_size_->Set(v); }
  void SetDependencyUp(const std::string& dependency, bool up);
  void SetDegraded(bool degraded) { degraded_->Set(degraded ? 1 : 0); }

  // Prometheus text exposition of everything.
  std::string Serialize();

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Family<prometheus::Counter>& requests_;
  prometheus::Family<prometheus::Histogram>& durations_;
  prometheus::Family<prometheus::Counter>& cache_hits_;
  prometheus::Counter* cache_misses_;
  prometheus::Counter* cache_errors_;
  prometheus::Counter* replica_fallbacks_;
  prometheus::Family<prometheus::Counter>& primary_waits_;
  prometheus::Gauge* in_flight_;
  prometheus::Gauge* pool_in_use_;
  prometheus::Gauge* pool_waiting_;
  prometheus::Gauge* pool_size_;
  prometheus::Family<prometheus::Gauge>& dependency_up_;
  prometheus::Gauge* degraded_;
};

}  // namespace hosting::appsvc
