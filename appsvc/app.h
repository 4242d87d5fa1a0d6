#pragma once

#include <memory>

#include "absl/status/status.h"
#include "appsvc/api.h"
#include "appsvc/config.h"
#include "common/http/http_server.h"
#include "appsvc/local_cache.h"
#include "appsvc/metrics.h"
#include "appsvc/pg_repository.h"
#include "appsvc/readiness.h"
#include "appsvc/redis_cache.h"
#include "appsvc/worker_pool.h"

namespace hosting::appsvc {

// The application service: wires configuration, PostgreSQL, Redis, the in-process cache, the
// API, the worker pool and the HTTP server.
class App {
 public:
  explicit App(Config config);
  ~App();

  absl::Status Start();
  // Graceful stop (SIGTERM): /ready fails at once; requests are still served for drain_delay
  // (so load balancers take this replica out); then new connections are refused, in-flight
  // requests finish within shutdown_grace, and the pools close. Returns true when nothing was
  // cut.
  bool Drain();

  int port() const { return server_ ? server_->port() : 0; }

 private:
  void Handle(http::HttpRequest request, http::HttpServer::Respond respond);
  void Finish(const http::HttpRequest& request, const RouteMatch& route, absl::Time start,
              http::HttpResponse response, const http::HttpServer::Respond& respond);
  bool ShouldLogAccess();

  Config config_;
  AppMetrics metrics_;
  std::unique_ptr<LocalCache> local_;
  std::unique_ptr<PgRepository> repository_;
  std::unique_ptr<RedisCache> cache_;
  std::unique_ptr<Readiness> readiness_;
  std::unique_ptr<Api> api_;
  std::unique_ptr<WorkerPool> workers_;
  std::unique_ptr<http::HttpServer> server_;
  int access_sample_ = 0;  // 0: off, 1: every request, N: one in N
  std::atomic<uint64_t> access_counter_{0};
};

// `appsvc healthcheck`: GET /health on 127.0.0.1:port within 2 s; true on 200.
bool ProbeHealth(int port);

}  // namespace hosting::appsvc
