#include "appsvc/pg_repository.h"


#include <filesystem>
#include <fstream>
#include <map>
#include <unordered_map>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/log.h"
#include "common/pg_conn.h"
#include "common/status_macros.h"

namespace hosting::appsvc {
namespace {

// The tables' ids are SERIAL (PostgreSQL's integer): a larger id names no row, and sent to
// PostgreSQL it would be an "out of range" error (a 500) instead of a 404.
constexpr int64_t kMaxSerial = 2147483647;

constexpr char kTs[] = "to_char(%s AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')";

std::string Ts(const char* col) {
  std::string out(kTs);
  out.replace(out.find("%s"), 2, col);
  return out;
}

std::string UserCols(const char* prefix = "") {
  return absl::StrCat(prefix, "id, ", prefix, "name, ", prefix, "email, ",
                      Ts(absl::StrCat(prefix, "created_at").c_str()), ", ",
                      Ts(absl::StrCat(prefix, "updated_at").c_str()));
}

std::string OrderCols(const char* prefix = "") {
  return absl::StrCat(prefix, "id, ", prefix, "user_id, ", prefix, "total_amount::text, ", prefix,
                      "status, ", Ts(absl::StrCat(prefix, "created_at").c_str()), ", ",
                      Ts(absl::StrCat(prefix, "updated_at").c_str()));
}

struct Statement {
  const char* name;
  std::string sql;
  int params;
};

const std::vector<Statement>& Statements() {
  static const auto* s = new std::vector<Statement>{
      {"get_user", absl::StrCat("SELECT ", UserCols(), " FROM users WHERE id = $1"), 1},
      {"list_users",
       absl::StrCat("SELECT ", UserCols(),
                    " FROM users WHERE ($2::bigint = 0 OR id < $2) ORDER BY id DESC LIMIT $1"),
       2},
      {"create_user",
       absl::StrCat("INSERT INTO users (name, email) VALUES ($1, $2) RETURNING ", UserCols()), 2},
      {"update_user",
       absl::StrCat("UPDATE users SET name = COALESCE($2, name), email = COALESCE($3, email) "
                    "WHERE id = $1 RETURNING ",
                    UserCols()),
       3},
      {"delete_user", "DELETE FROM users WHERE id = $1", 1},
      {"list_orders",
       absl::StrCat("SELECT u.id, ", OrderCols("o."),
                    " FROM users u LEFT JOIN orders o ON o.user_id = u.id WHERE u.id = $1 "
                    "ORDER BY o.created_at DESC, o.id DESC"),
       1},
      {"create_order",
       absl::StrCat("INSERT INTO orders (user_id, total_amount, status) VALUES ($1, $2::numeric, $3) "
                    "RETURNING ",
                    OrderCols()),
       3},
      {"get_order", absl::StrCat("SELECT ", OrderCols(), " FROM orders WHERE id = $1"), 1},
  };
  return *s;
}

User RowToUser(PGresult* r, int row, int col = 0) {
  User u;
  u.id = std::strtoll(PQgetvalue(r, row, col), nullptr, 10);
  u.name = PQgetvalue(r, row, col + 1);
  u.email = PQgetvalue(r, row, col + 2);
  u.created_at = PQgetvalue(r, row, col + 3);
  u.updated_at = PQgetvalue(r, row, col + 4);
  return u;
}

Order RowToOrder(PGresult* r, int row, int col = 0) {
  Order o;
  o.id = std::strtoll(PQgetvalue(r, row, col), nullptr, 10);
  o.user_id = std::strtoll(PQgetvalue(r, row, col + 1), nullptr, 10);
  o.total_amount = PQgetvalue(r, row, col + 2);
  o.status = PQgetvalue(r, row, col + 3);
  o.created_at = PQgetvalue(r, row, col + 4);
  o.updated_at = PQgetvalue(r, row, col + 5);
  return o;
}

std::atomic<uint64_t> next_instance{1};

}  // namespace

// One connection with the statements prepared on connect.
class PgRepository::Conn : public PgConn {
 public:
  Conn(std::string conninfo, const char* role)
      : PgConn(std::move(conninfo), absl::StrCat("database ", role), &Prepare) {}

 private:
  static absl::Status Prepare(PGconn* conn) {
    for (const auto& s : Statements()) {
      PgResult r(PQprepare(conn, s.name, s.sql.c_str(), s.params, nullptr));
      if (PQresultStatus(r.get()) != PGRES_COMMAND_OK) {
        // Most likely the schema is missing: say so.
        return absl::UnavailableError(absl::StrCat("preparing ", s.name, ": ",
                                                   PgMessage(PQresultErrorMessage(r.get())),
                                                   " (has `appsvc migrate` run?)"));
      }
    }
    return absl::OkStatus();
  }
};

struct PgRepository::ThreadConns {
  std::unique_ptr<Conn> primary;
  std::unique_ptr<Conn> replica;
};

PgRepository::PgRepository(const Config& config, AppMetrics& metrics)
    : config_(config), metrics_(metrics), instance_(next_instance++) {}

PgRepository::~PgRepository() = default;

PgRepository::ThreadConns& PgRepository::Conns() {
  // Keyed by instance number, not address, so a new repository never inherits a dead one's.
  thread_local std::unordered_map<uint64_t, ThreadConns> conns;
  ThreadConns& c = conns[instance_];
  if (!c.primary) {
    c.primary = std::make_unique<Conn>(PgConnInfo(config_, false), "primary");
    if (replica_configured()) c.replica = std::make_unique<Conn>(PgConnInfo(config_, true), "replica");
  }
  return c;
}

template <typename T, typename Fn, typename Pred>
absl::StatusOr<T> PgRepository::Read(Fn fn, Pred retry_primary_if) {
  ThreadConns& c = Conns();
  if (c.replica && replica_usable_.load()) {
    absl::StatusOr<T> r = fn(*c.replica);
    if (r.ok() && !retry_primary_if(*r)) return r;
    if (!r.ok() && !absl::IsUnavailable(r.status()) && !absl::IsDeadlineExceeded(r.status())) {
      return r;
    }
    metrics_.ReplicaFallback();
  } else if (c.replica) {
    metrics_.ReplicaFallback();
  }
  return OnPrimary<T>([&] { return fn(*c.primary); }, /*idempotent=*/true);
}

template <typename T, typename Fn>
absl::StatusOr<T> PgRepository::OnPrimary(Fn fn, bool idempotent) {
  absl::StatusOr<T> r = fn();
  auto retryable = [&](const absl::StatusOr<T>& r) {
    return absl::IsUnavailable(r.status()) &&
           (idempotent || PgConn::NothingCommitted(r.status()));
  };
  if (r.ok() || !retryable(r) || config_.db_primary_wait <= absl::ZeroDuration()) return r;
  const int max_waiters = std::max(1, config_.db_pool_size / 2);
  if (primary_waiters_.fetch_add(1) >= max_waiters) {
    primary_waiters_.fetch_sub(1);
    return r;
  }
  const absl::Time give_up = absl::Now() + config_.db_primary_wait;
  while (!r.ok() && retryable(r) && absl::Now() < give_up) {
    absl::SleepFor(absl::Milliseconds(100));
    r = fn();
  }
  primary_waiters_.fetch_sub(1);
  metrics_.PrimaryRetried(r.ok());
  if (!r.ok() && retryable(r)) {
    return absl::UnavailableError(absl::StrCat(r.status().message(), " (waited ",
                                               absl::FormatDuration(config_.db_primary_wait),
                                               " for the primary)"));
  }
  return r;
}

absl::StatusOr<PgResult> PgRepository::Write(const char* statement,
                                             const std::vector<const char*>& params) {
  Conn& primary = *Conns().primary;
  return OnPrimary<PgResult>([&] { return primary.ExecPrepared(statement, params); },
                             /*idempotent=*/false);
}

absl::StatusOr<std::optional<User>> PgRepository::GetUser(int64_t id) {
  if (id > kMaxSerial) return std::optional<User>();
  std::string ids = std::to_string(id);
  return Read<std::optional<User>>(
      [&](Conn& conn) -> absl::StatusOr<std::optional<User>> {
        ASSIGN_OR_RETURN(PgResult r, conn.ExecPrepared("get_user", {ids.c_str()}));
        if (PQntuples(r.get()) == 0) return std::optional<User>();
        return std::optional<User>(RowToUser(r.get(), 0));
      },
      [](const std::optional<User>& u) { return !u.has_value(); });
}

absl::StatusOr<std::vector<User>> PgRepository::ListUsers(int limit, int64_t before_id) {
  std::string l = std::to_string(limit);
  std::string b = std::to_string(before_id);
  return Read<std::vector<User>>(
      [&](Conn& conn) -> absl::StatusOr<std::vector<User>> {
        ASSIGN_OR_RETURN(PgResult r, conn.ExecPrepared("list_users", {l.c_str(), b.c_str()}));
        std::vector<User> out;
        for (int i = 0; i < PQntuples(r.get()); ++i) out.push_back(RowToUser(r.get(), i));
        return out;
      },
      [](const std::vector<User>&) { return false; });
}

absl::StatusOr<User> PgRepository::CreateUser(const std::string& name, const std::string& email) {
  ASSIGN_OR_RETURN(PgResult r, Write("create_user", {name.c_str(), email.c_str()}));
  return RowToUser(r.get(), 0);
}

absl::StatusOr<std::optional<User>> PgRepository::UpdateUser(int64_t id, const UserInput& input) {
  if (id > kMaxSerial) return std::optional<User>();
  std::string ids = std::to_string(id);
  ASSIGN_OR_RETURN(PgResult r, Write("update_user",
                                     {ids.c_str(), input.name ? input.name->c_str() : nullptr,
                                      input.email ? input.email->c_str() : nullptr}));
  if (PQntuples(r.get()) == 0) return std::optional<User>();
  return std::optional<User>(RowToUser(r.get(), 0));
}

absl::StatusOr<bool> PgRepository::DeleteUser(int64_t id) {
  if (id > kMaxSerial) return false;
  std::string ids = std::to_string(id);
  ASSIGN_OR_RETURN(PgResult r, Write("delete_user", {ids.c_str()}));
  return std::string(PQcmdTuples(r.get())) != "0";
}

absl::StatusOr<std::optional<std::vector<Order>>> PgRepository::ListOrders(int64_t user_id) {
  if (user_id > kMaxSerial) return std::optional<std::vector<Order>>();
  std::string ids = std::to_string(user_id);
  using Out = std::optional<std::vector<Order>>;
  return Read<Out>(
      [&](Conn& conn) -> absl::StatusOr<Out> {
        ASSIGN_OR_RETURN(PgResult r, conn.ExecPrepared("list_orders", {ids.c_str()}));
        if (PQntuples(r.get()) == 0) return Out();
        std::vector<Order> orders;
        for (int i = 0; i < PQntuples(r.get()); ++i) {
          if (PQgetisnull(r.get(), i, 1)) continue;  // the user has no orders
          orders.push_back(RowToOrder(r.get(), i, 1));
        }
        return Out(std::move(orders));
      },
      [](const Out& o) { return !o.has_value(); });
}

absl::StatusOr<std::optional<Order>> PgRepository::CreateOrder(int64_t user_id,
                                                               const OrderInput& input) {
  if (user_id > kMaxSerial) return std::optional<Order>();
  std::string ids = std::to_string(user_id);
  absl::StatusOr<PgResult> r =
      Write("create_order", {ids.c_str(), input.total_amount.c_str(), input.status.c_str()});
  if (absl::IsNotFound(r.status())) return std::optional<Order>();  // foreign key: no such user
  if (!r.ok()) return r.status();
  return std::optional<Order>(RowToOrder(r->get(), 0));
}

absl::StatusOr<std::optional<Order>> PgRepository::GetOrder(int64_t id) {
  if (id > kMaxSerial) return std::optional<Order>();
  std::string ids = std::to_string(id);
  return Read<std::optional<Order>>(
      [&](Conn& conn) -> absl::StatusOr<std::optional<Order>> {
        ASSIGN_OR_RETURN(PgResult r, conn.ExecPrepared("get_order", {ids.c_str()}));
        if (PQntuples(r.get()) == 0) return std::optional<Order>();
        return std::optional<Order>(RowToOrder(r.get(), 0));
      },
      [](const std::optional<Order>& o) { return !o.has_value(); });
}

DependencyHealth PgRepository::CheckPrimary() {
  DependencyHealth h;
  absl::StatusOr<PgResult> r = Conns().primary->Query("SELECT 1");
  h.up = r.ok();
  if (!r.ok()) h.detail = std::string(r.status().message());
  return h;
}

DependencyHealth PgRepository::CheckReplica() {
  DependencyHealth h;
  if (!replica_configured()) {
    h.configured = false;
    return h;
  }
  // Lag: zero when everything received is replayed, else the age of the last replayed commit.
  absl::StatusOr<PgResult> r = Conns().replica->Query(
      "SELECT pg_is_in_recovery(), CASE WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() "
      "THEN 0 ELSE COALESCE(EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp()) * 1000, 0) "
      "END");
  if (!r.ok()) {
    h.detail = std::string(r.status().message());
    replica_usable_ = false;
    return h;
  }
  const bool in_recovery = std::string(PQgetvalue(r->get(), 0, 0)) == "t";
  const double lag_ms = std::strtod(PQgetvalue(r->get(), 0, 1), nullptr);
  h.up = in_recovery;
  const bool lag_ok = lag_ms <= absl::ToDoubleMilliseconds(config_.replica_max_lag);
  h.detail = in_recovery ? absl::StrCat("lag ", static_cast<int64_t>(lag_ms), " ms",
                                        lag_ok ? "" : " (over the limit: reads go to the primary)")
                         : "not a standby (pg_is_in_recovery() is false)";
  replica_usable_ = in_recovery && lag_ok;
  return h;
}

namespace {

// Numbered migrations; never edit a released one, append.
const std::vector<PgMigration>& Migrations() {
  static const auto* m = new std::vector<PgMigration>{
    {1, "reference schema: users, orders, indexes, updated_at triggers", R"sql(
CREATE TABLE users (
  id          SERIAL PRIMARY KEY,
  name        VARCHAR(255) NOT NULL,
  email       VARCHAR(255) UNIQUE NOT NULL,
  created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
  updated_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE TABLE orders (
  id            SERIAL PRIMARY KEY,
  user_id       INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  total_amount  DECIMAL(10, 2) NOT NULL,
  status        VARCHAR(50) NOT NULL DEFAULT 'pending',
  created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
  updated_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX idx_users_created_at ON users (created_at DESC);
CREATE INDEX idx_orders_user_id ON orders (user_id);
CREATE INDEX idx_orders_user_created ON orders (user_id, created_at DESC);
CREATE INDEX idx_orders_status ON orders (status);
CREATE FUNCTION set_updated_at() RETURNS trigger AS $$
BEGIN
  NEW.updated_at = now();
  RETURN NEW;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER users_updated_at BEFORE UPDATE ON users
  FOR EACH ROW EXECUTE FUNCTION set_updated_at();
CREATE TRIGGER orders_updated_at BEFORE UPDATE ON orders
  FOR EACH ROW EXECUTE FUNCTION set_updated_at();
)sql"},
  };
  return *m;
}

// Any fixed number: the advisory lock that serializes migrators.
constexpr int64_t kMigrationLock = 7402114;

}  // namespace

absl::StatusOr<std::vector<PgMigration>> AppMigrations(const std::string& dir) {
  std::vector<PgMigration> all = Migrations();
  const int built_in = all.back().version;
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) return all;
  std::map<int, PgMigration> files;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (entry.path().extension() != ".sql") continue;
    const size_t sep = name.find('_');
    int version = 0;
    if (sep == std::string::npos || !absl::SimpleAtoi(name.substr(0, sep), &version) ||
        version <= built_in) {
      return absl::InvalidArgumentError(absl::StrCat(
          dir, "/", name, ": want <version>_<name>.sql with a version above ", built_in));
    }
    std::ifstream in(entry.path());
    std::string sql((std::istreambuf_iterator<char>(in)), {});
    if (!in.good() && !in.eof()) {
      return absl::InvalidArgumentError(absl::StrCat("cannot read ", dir, "/", name));
    }
    const std::string label = name.substr(sep + 1, name.size() - sep - 1 - 4);
    if (!files.emplace(version, PgMigration{version, label, std::move(sql)}).second) {
      return absl::InvalidArgumentError(
          absl::StrCat(dir, ": version ", version, " is given twice (", name, ")"));
    }
  }
  for (auto& [v, m] : files) all.push_back(std::move(m));
  return all;
}

absl::StatusOr<std::vector<int>> Migrate(const Config& config) {
  ASSIGN_OR_RETURN(std::vector<PgMigration> migrations, AppMigrations(config.migrations_dir));
  PgConn conn(PgConnInfo(config, false), "database primary", nullptr, absl::ZeroDuration());
  ASSIGN_OR_RETURN(std::vector<int> applied,
                   PgMigrate(conn, "schema_migrations", kMigrationLock, migrations));
  for (int v : applied) {
    for (const PgMigration& m : migrations) {
      if (m.version == v) LogInfo("migration applied", {{"version", std::to_string(v)}, {"name", m.name}});
    }
  }
  return applied;
}

}  // namespace hosting::appsvc
