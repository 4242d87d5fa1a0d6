#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace hosting::appsvc {

// appsvc's configuration. Read from the reference platform's environment variables (PORT,
// DB_HOST, DB_PORT, DB_NAME, DB_USER, DB_PASSWORD, REDIS_HOST, REDIS_PORT, REDIS_PASSWORD) and
// appsvc's own, all documented in docs/appsvc.md.
struct Config {
  // HTTP
  int port = 3000;
  std::string bind_address = "0.0.0.0";
  int io_threads = 0;  // 0: one per core
  int64_t max_body_bytes = 1 << 20;
  absl::Duration idle_timeout = absl::Seconds(60);
  absl::Duration read_timeout = absl::Seconds(10);

  // PostgreSQL
  std::string db_host = "127.0.0.1";
  int db_port = 5432;
  std::string db_name = "app";
  std::string db_user = "app";
  std::string db_password;
  std::string db_replica_host;  // empty: no replica
  int db_replica_port = 5432;
  int db_pool_size = 8;  // worker threads, each with its own connections
  absl::Duration db_connect_timeout = absl::Seconds(2);
  absl::Duration db_statement_timeout = absl::Seconds(5);
  absl::Duration replica_max_lag = absl::Seconds(1);
  // How long a statement waits for an unreachable primary (a restart, a failover) when it
  // certainly committed nothing, trying again; meanwhile /ready stays 200 (degraded). 0: a
  // failure answers 503 at once and the primary down makes the service unready.
  absl::Duration db_primary_wait = absl::Seconds(15);
  bool migrate_on_start = false;
  // SQL migrations shipped beside the binary (<version>_<name>.sql), after the built-in ones.
  std::string migrations_dir = "/etc/appsvc/migrations";

  // Redis
  std::string redis_host = "127.0.0.1";
  int redis_port = 6379;
  std::string redis_password;
  absl::Duration redis_timeout = absl::Milliseconds(200);
  absl::Duration cache_ttl_user = absl::Seconds(300);
  absl::Duration cache_ttl_list = absl::Seconds(60);
  // In-process layer in front of Redis; 0 disables it.
  int local_cache_entries = 10000;
  absl::Duration local_cache_ttl = absl::Seconds(5);

  // Lifecycle
  // After SIGTERM, /ready fails at once and the server keeps serving for drain_delay (so load
  // balancers stop sending), then stops accepting and waits up to shutdown_grace for in-flight
  // requests.
  absl::Duration drain_delay = absl::Seconds(5);
  absl::Duration shutdown_grace = absl::Seconds(10);

  // Logs: "off", "on", or "sample:N" (one request in N).
  std::string access_log = "off";

  // Release-testing knobs: make this build misbehave on purpose (never set in production).
  double fault_error_rate = 0;           // share of /api requests answering 500
  absl::Duration fault_latency;          // added to every /api request
  bool fault_health_fail = false;        // /health and /ready answer 500/503

  // Identity, for /api/version.
  std::string env = "development";       // NODE_ENV / APP_ENV
  std::string hosting_revision;          // HOSTING_REVISION (set by hostd)
  std::string hosting_service;           // HOSTING_SERVICE
};

// Reads the environment. Errors name the variable and what is wrong with it.
absl::StatusOr<Config> ConfigFromEnv();
// Same, from an explicit lookup (for tests).
absl::StatusOr<Config> ConfigFromLookup(const std::function<const char*(const char*)>& getenv);

// libpq connection string for the primary or the replica.
std::string PgConnInfo(const Config& config, bool replica);

}  // namespace hosting::appsvc
