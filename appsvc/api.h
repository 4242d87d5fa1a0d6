#pragma once

#include <atomic>
#include <optional>
#include <string>

#include "appsvc/cache.h"
#include "appsvc/config.h"
#include "common/http/http_types.h"
#include "appsvc/local_cache.h"
#include "appsvc/metrics.h"
#include "appsvc/readiness.h"
#include "appsvc/repository.h"
#include "appsvc/router.h"
#include "common/clock.h"

namespace hosting::appsvc {

// The HTTP API, independent of sockets. TryFast serves what needs no blocking work (health,
// metrics, version, in-process cache hits) and runs on the I/O threads; everything else goes
// through Handle on a database worker.
class Api {
 public:
  Api(const Config& config, Repository& repository, RemoteCache& cache, LocalCache& local,
      Readiness& readiness, AppMetrics& metrics, Clock& clock);

  // A response, or nullopt when the request needs a worker.
  std::optional<http::HttpResponse> TryFast(const http::HttpRequest& request, const RouteMatch& route);
  // Blocking; called on a worker.
  http::HttpResponse Handle(const http::HttpRequest& request, const RouteMatch& route);

 private:
  std::optional<http::HttpResponse> Precheck(const http::HttpRequest& request, const RouteMatch& route);
  http::HttpResponse Health();
  http::HttpResponse Ready();
  http::HttpResponse Version();
  http::HttpResponse ListUsers(const http::HttpRequest& request);
  http::HttpResponse GetUser(int64_t id);
  http::HttpResponse CreateUser(const http::HttpRequest& request);
  http::HttpResponse UpdateUser(const http::HttpRequest& request, int64_t id);
  http::HttpResponse DeleteUser(int64_t id);
  http::HttpResponse ListOrders(int64_t user_id);
  http::HttpResponse CreateOrder(const http::HttpRequest& request, int64_t user_id);
  http::HttpResponse GetOrder(int64_t id);

  // Cache-aside read: local layer, then Redis, then `load` (which returns the data JSON text,
  // or nullopt for "not found", or an error). Returns {body, source} or the error response.
  struct CachedRead {
    std::optional<std::string> data;  // nullopt: not found
    const char* source = "database";
    std::optional<http::HttpResponse> error;
  };
  CachedRead ReadThrough(const std::string& key, absl::Duration ttl,
                         const std::function<absl::StatusOr<std::optional<std::string>>()>& load);
  void Invalidate(std::vector<std::string> keys);
  http::HttpResponse FromStatus(const absl::Status& status);
  bool FaultInjected();

  const Config& config_;
  Repository& repository_;
  RemoteCache& cache_;
  LocalCache& local_;
  Readiness& readiness_;
  AppMetrics& metrics_;
  Clock& clock_;
  const absl::Time started_;
  const std::string hostname_;
  std::atomic<uint64_t> fault_counter_{0};
};

// {"source": source, "data": <data>} without re-serializing `data`.
std::string SourceDataBody(const char* source, const std::string& data,
                           const std::string& extra = "");

}  // namespace hosting::appsvc
