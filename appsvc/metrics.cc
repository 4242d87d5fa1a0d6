#include "appsvc/metrics.h"

#include <sstream>
#include <tuple>
#include <unordered_map>

#include "absl/strings/str_cat.h"
#include "prometheus/text_serializer.h"

namespace hosting::appsvc {
namespace {

// From sub-millisecond cache hits to slow database calls, ten buckets a decade (the R10
// series, 0.1 ms to 10 s): a latency 26 % higher crosses at least one bound, so the release
// judge's Mann-Whitney test, which sees a histogram's buckets as ties, tells a 30 % slower
// canary apart.
const prometheus::Histogram::BucketBoundaries& LatencyBuckets() {
  static const auto* b = [] {
    auto* bounds = new prometheus::Histogram::BucketBoundaries;
    for (double decade : {1e-4, 1e-3, 1e-2, 1e-1, 1.0}) {
      for (double m : {1.0, 1.25, 1.6, 2.0, 2.5, 3.15, 4.0, 5.0, 6.3, 8.0}) {
        bounds->push_back(decade * m);
      }
    }
    bounds->push_back(10);
    return bounds;
  }();
  return *b;
}

}  // namespace

AppMetrics::AppMetrics()
    : registry_(std::make_shared<prometheus::Registry>()),
      requests_(prometheus::BuildCounter()
                    .Name("http_requests_total")
                    .Help("HTTP requests by method, route template and status code.")
                    .Register(*registry_)),
      durations_(prometheus::BuildHistogram()
                     .Name("http_request_duration_seconds")
                     .Help("HTTP request duration by method and route template.")
                     .Register(*registry_)),
      cache_hits_(prometheus::BuildCounter()
                      .Name("appsvc_cache_hits_total")
                      .Help("Cache hits by layer (local: in-process, redis).")
                      .Register(*registry_)),
      primary_waits_(prometheus::BuildCounter()
                         .Name("appsvc_primary_retries_total")
                         .Help("Statements sent to the primary again after it was unreachable "
                               "(restart, failover), by outcome: served or gave_up.")
                         .Register(*registry_)),
      dependency_up_(prometheus::BuildGauge()
                         .Name("appsvc_dependency_up")
                         .Help("1 when the dependency answered its last readiness check.")
                         .Register(*registry_)) {
  // Both layers exist from the start at 0, so a hit ratio reads 0, not "no data", before the
  // first hit.
  cache_hits_.Add({{"layer", "local"}});
  cache_hits_.Add({{"layer", "redis"}});
  cache_misses_ = &prometheus::BuildCounter()
                       .Name("appsvc_cache_misses_total")
                       .Help("Reads that found nothing in any cache layer.")
                       .Register(*registry_)
                       .Add({});
  cache_errors_ = &prometheus::BuildCounter()
                       .Name("appsvc_cache_errors_total")
                       .Help("Redis operations that failed (served from PostgreSQL instead).")
                       .Register(*registry_)
                       .Add({});
  replica_fallbacks_ = &prometheus::BuildCounter()
                            .Name("appsvc_replica_fallbacks_total")
                            .Help("Reads meant for the replica that went to the primary.")
                            .Register(*registry_)
                            .Add({});
  in_flight_ = &prometheus::BuildGauge()
                    .Name("http_requests_in_flight")
                    .Help("Requests being served.")
                    .Register(*registry_)
                    .Add({});
  auto& pool = prometheus::BuildGauge()
                   .Name("appsvc_db_pool")
                   .Help("Database worker pool: size, in_use, waiting (queued requests).")
                   .Register(*registry_);
  pool_in_use_ = &pool.Add({{"state", "in_use"}});
  pool_waiting_ = &pool.Add({{"state", "waiting"}});
  pool_size_ = &pool.Add({{"state", "size"}});
  degraded_ = &prometheus::BuildGauge()
                   .Name("appsvc_degraded")
                   .Help("1 while serving without a dependency (Redis or the replica).")
                   .Register(*registry_)
                   .Add({});
}

void AppMetrics::ObserveRequest(const std::string& method, const char* route, int status,
                                double seconds) {
  // Family::Add hashes labels under a lock; each thread keeps the handles it has seen.
  struct Handles {
    prometheus::Counter* counter;
    prometheus::Histogram* histogram;
  };
  thread_local std::unordered_map<std::string, Handles> handles;
  std::string key = absl::StrCat(method, " ", route, " ", status);
  auto it = handles.find(key);
  if (it == handles.end()) {
    Handles h{&requests_.Add({{"method", method}, {"route", route}, {"status", std::to_string(status)}}),
              &durations_.Add({{"method", method}, {"route", route}}, LatencyBuckets())};
    it = handles.emplace(std::move(key), h).first;
  }
  it->second.counter->Increment();
  it->second.histogram->Observe(seconds);
}

void AppMetrics::CacheHit(const char* layer) { cache_hits_.Add({{"layer", layer}}).Increment(); }
void AppMetrics::CacheMiss() { cache_misses_->Increment(); }
void AppMetrics::CacheError() { cache_errors_->Increment(); }
void AppMetrics::ReplicaFallback() { replica_fallbacks_->Increment(); }
void AppMetrics::PrimaryRetried(bool waited) {
  primary_waits_.Add({{"outcome", waited ? "served" : "gave_up"}}).Increment();
}

void AppMetrics::SetDependencyUp(const std::string& dependency, bool up) {
  dependency_up_.Add({{"dependency", dependency}}).Set(up ? 1 : 0);
}

std::string AppMetrics::Serialize() {
  prometheus::TextSerializer serializer;
  std::ostringstream out;
  serializer.Serialize(out, registry_->Collect());
  return out.str();
}

}  // namespace hosting::appsvc
