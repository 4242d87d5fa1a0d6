#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "appsvc/config.h"
#include "common/pg_conn.h"
#include "appsvc/metrics.h"
#include "appsvc/readiness.h"
#include "appsvc/repository.h"

namespace hosting::appsvc {

// Repository on PostgreSQL through libpq. Every thread that calls it gets its own primary (and
// replica) connection with the statements prepared, so the database workers are the connection
// pool. Writes go to the primary; reads go to the replica while it answers and lags less than
// DB_REPLICA_MAX_LAG_MS, else to the primary (counted in appsvc_replica_fallbacks_total). A read
// that finds nothing on the replica asks the primary too, so a client reads its own writes.
class PgRepository final : public Repository {
 public:
  PgRepository(const Config& config, AppMetrics& metrics);
  ~PgRepository() override;

  absl::StatusOr<std::optional<User>> GetUser(int64_t id) override;
  absl::StatusOr<std::vector<User>> ListUsers(int limit, int64_t before_id) override;
  absl::StatusOr<User> CreateUser(const std::string& name, const std::string& email) override;
  absl::StatusOr<std::optional<User>> UpdateUser(int64_t id, const UserInput& input) override;
  absl::StatusOr<bool> DeleteUser(int64_t id) override;
  absl::StatusOr<std::optional<std::vector<Order>>> ListOrders(int64_t user_id) override;
  absl::StatusOr<std::optional<Order>> CreateOrder(int64_t user_id, const OrderInput& input) override;
  absl::StatusOr<std::optional<Order>> GetOrder(int64_t id) override;

  // Readiness probes (run on the readiness thread with its own connections). CheckReplica also
  // decides whether reads may use the replica.
  DependencyHealth CheckPrimary();
  DependencyHealth CheckReplica();

  bool replica_configured() const { return !config_.db_replica_host.empty(); }
  bool replica_usable() const { return replica_usable_.load(); }

  class Conn;
  struct ThreadConns;

 private:
  ThreadConns& Conns();
  // Runs `fn` on the replica when usable (falling back to the primary on a replica error), else
  // on the primary. `retry_primary_if` re-runs a successful replica result on the primary.
  template <typename T, typename Fn, typename Pred>
  absl::StatusOr<T> Read(Fn fn, Pred retry_primary_if);
  // Runs `fn` on the primary. While the primary is unreachable (a restart, a failover) it is
  // tried again every 100 ms for up to DB_PRIMARY_WAIT_MS: any failure of an `idempotent` call,
  // only failures that certainly committed nothing (PgConn::NothingCommitted) of a write. At
  // most half the workers wait at once, so reads from the replica keep a worker.
  template <typename T, typename Fn>
  absl::StatusOr<T> OnPrimary(Fn fn, bool idempotent);
  // A prepared write on the primary, through OnPrimary.
  absl::StatusOr<PgResult> Write(const char* statement, const std::vector<const char*>& params);

  const Config config_;
  AppMetrics& metrics_;
  std::atomic<bool> replica_usable_{false};
  std::atomic<int> primary_waiters_{0};
  const uint64_t instance_;
};

// Applies the schema migrations (numbered, recorded in schema_migrations, the pending ones in
// one transaction, serialized across appsvc replicas by an advisory lock): those built in, then
// those of MIGRATIONS_DIR. Returns the versions applied now (empty when the schema was
// current). A failing migration leaves the schema as it was.
absl::StatusOr<std::vector<int>> Migrate(const Config& config);

// The migrations built in, then the files `dir` holds: `<version>_<name>.sql`, versions above
// the built-in ones, in order of version (how an image ships its schema changes). A missing
// directory adds none; a badly named file or a repeated version is INVALID_ARGUMENT naming it.
absl::StatusOr<std::vector<PgMigration>> AppMigrations(const std::string& dir);

}  // namespace hosting::appsvc
