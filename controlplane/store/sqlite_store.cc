#include "controlplane/store/sqlite_store.h"

#include <sqlite3.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/proto_time.h"
#include "common/status_macros.h"
#include "controlplane/store/record_codec.h"

namespace hosting::controlplane {
namespace {

// Migrations in order; each runs once, in a transaction, and is recorded in schema_migrations.
// Never edit a released entry: append a new one.
constexpr const char* kMigrations[] = {
    // 1: services, revisions and the event log.
    R"sql(
    CREATE TABLE services (
      name        TEXT PRIMARY KEY,
      spec        TEXT NOT NULL,     -- ServiceSpec as proto JSON
      revision    INTEGER NOT NULL,
      generation  INTEGER NOT NULL,
      created_at  INTEGER NOT NULL,  -- Unix microseconds
      updated_at  INTEGER NOT NULL
    );
    CREATE TABLE revisions (
      service     TEXT NOT NULL,
      revision    INTEGER NOT NULL,
      spec        TEXT NOT NULL,
      created_at  INTEGER NOT NULL,
      PRIMARY KEY (service, revision)
    );
    -- Outlives deletes, so a re-created service never reuses a revision number (and so never
    -- collides with a Swarm service of the old one that is still being removed).
    CREATE TABLE revision_counters (
      service     TEXT PRIMARY KEY,
      last        INTEGER NOT NULL
    );
    CREATE TABLE events (
      sequence    INTEGER PRIMARY KEY AUTOINCREMENT,
      time        INTEGER NOT NULL,
      type        TEXT NOT NULL,
      service     TEXT NOT NULL,
      body        BLOB NOT NULL      -- hosting.v1.Event, binary
    );
    CREATE INDEX events_by_service ON events (service, sequence);
    )sql",
    // 2: the store's identity, which labels the Swarm services it owns.
    R"sql(
    CREATE TABLE meta (
      key         TEXT PRIMARY KEY,
      value       TEXT NOT NULL
    );
    INSERT INTO meta (key, value) VALUES ('instance_id', lower(hex(randomblob(8))));
    )sql",
    // 3: releases, and how revisions share a service while one runs.
    R"sql(
    ALTER TABLE services ADD COLUMN rollout BLOB NOT NULL DEFAULT x'';
    CREATE TABLE releases (
      id          TEXT PRIMARY KEY,
      service     TEXT NOT NULL,
      sequence    INTEGER NOT NULL,
      active      INTEGER NOT NULL,  -- 1 until the release reaches a terminal state
      version     INTEGER NOT NULL,
      started_at  INTEGER NOT NULL,
      body        BLOB NOT NULL,     -- hosting.internal.ReleaseRecord, binary
      UNIQUE (service, sequence)
    );
    CREATE INDEX releases_active ON releases (active, started_at);
    -- Outlives deletes, like revision_counters: release IDs are never reused.
    CREATE TABLE release_counters (
      service     TEXT PRIMARY KEY,
      last        INTEGER NOT NULL
    );
    )sql",
    // 4: the service's autoscaling policy (hosting.v1.AutoscalingPolicy, binary; empty: none).
    R"sql(
    ALTER TABLE services ADD COLUMN autoscaling BLOB NOT NULL DEFAULT x'';
    )sql",
    // 5: the leader lease (one row once taken).
    R"sql(
    CREATE TABLE leader (
      id          INTEGER PRIMARY KEY CHECK (id = 1),
      holder      TEXT NOT NULL,
      epoch       INTEGER NOT NULL,
      expires_at  INTEGER NOT NULL   -- Unix microseconds
    );
    )sql",
    // 6: API tokens (hosting.internal.TokenRecord, binary); the secret's SHA-256 finds one.
    R"sql(
    CREATE TABLE tokens (
      accessor       TEXT PRIMARY KEY,
      secret_sha256  TEXT NOT NULL UNIQUE,
      body           BLOB NOT NULL
    );
    )sql",
    // 7: the audit trail (hosting.v1.AuditEntry, binary).
    R"sql(
    CREATE TABLE audit (
      sequence  INTEGER PRIMARY KEY AUTOINCREMENT,
      time      INTEGER NOT NULL,     -- Unix microseconds
      service   TEXT NOT NULL,
      body      BLOB NOT NULL
    );
    CREATE INDEX audit_by_time ON audit (time);
    )sql",
    // 8: runbook runs (hosting.v1.RunbookRun, binary).
    R"sql(
    CREATE TABLE runs (
      sequence    INTEGER PRIMARY KEY AUTOINCREMENT,
      id          TEXT NOT NULL UNIQUE,
      runbook     TEXT NOT NULL,
      target      TEXT NOT NULL,
      active      INTEGER NOT NULL,  -- 1 until the run ends
      version     INTEGER NOT NULL,
      body        BLOB NOT NULL
    );
    CREATE INDEX runs_active ON runs (active, runbook, target);
    )sql",
};


// RAII prepared statement.
class Stmt {
 public:
  Stmt(sqlite3* db, const char* sql) : db_(db) {
    rc_ = sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr);
  }
  ~Stmt() { sqlite3_finalize(stmt_); }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;

  absl::Status prepared() const {
    if (rc_ == SQLITE_OK) return absl::OkStatus();
    return absl::InternalError(absl::StrCat("sqlite prepare: ", sqlite3_errmsg(db_)));
  }
  Stmt& Bind(int i, absl::string_view v) {
    sqlite3_bind_text(stmt_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
    return *this;
  }
  Stmt& BindBlob(int i, absl::string_view v) {
    sqlite3_bind_blob(stmt_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
    return *this;
  }
  Stmt& Bind(int i, int64_t v) {
    sqlite3_bind_int64(stmt_, i, v);
    return *this;
  }
  // SQLITE_ROW -> true, SQLITE_DONE -> false, else error.
  absl::StatusOr<bool> Step() {
    int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    return absl::InternalError(absl::StrCat("sqlite step: ", sqlite3_errmsg(db_)));
  }
  absl::Status Run() { return Step().status(); }
  int64_t Int(int col) { return sqlite3_column_int64(stmt_, col); }
  std::string Text(int col) {
    const unsigned char* t = sqlite3_column_text(stmt_, col);
    return t ? std::string(reinterpret_cast<const char*>(t), sqlite3_column_bytes(stmt_, col)) : "";
  }
  std::string Blob(int col) {
    const void* b = sqlite3_column_blob(stmt_, col);
    return b ? std::string(static_cast<const char*>(b), sqlite3_column_bytes(stmt_, col)) : "";
  }

 private:
  sqlite3* db_;
  sqlite3_stmt* stmt_ = nullptr;
  int rc_;
};

// The columns a services row is read with (ServiceRow's order).
constexpr char kServiceColumns[] =
    "SELECT spec, revision, generation, created_at, updated_at, rollout, autoscaling "
    "FROM services ";

int64_t ToMicros(absl::Time t) { return absl::ToUnixMicros(t); }
absl::Time FromMicros(int64_t us) { return absl::FromUnixMicros(us); }

// Begins a transaction; rolls back on destruction unless committed.
class Txn {
 public:
  explicit Txn(sqlite3* db) : db_(db) {
    ok_ = sqlite3_exec(db_, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr) == SQLITE_OK;
  }
  ~Txn() {
    if (ok_ && !done_) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
  }
  absl::Status begun() const {
    return ok_ ? absl::OkStatus()
               : absl::InternalError(absl::StrCat("sqlite begin: ", sqlite3_errmsg(db_)));
  }
  absl::Status Commit() {
    done_ = true;
    if (sqlite3_exec(db_, "COMMIT", nullptr, nullptr, nullptr) != SQLITE_OK) {
      return absl::InternalError(absl::StrCat("sqlite commit: ", sqlite3_errmsg(db_)));
    }
    return absl::OkStatus();
  }

 private:
  sqlite3* db_;
  bool ok_ = false;
  bool done_ = false;
};

}  // namespace

absl::StatusOr<std::unique_ptr<SqliteStore>> SqliteStore::Open(const std::string& path,
                                                               int64_t max_events) {
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &db,
                           SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                           nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = db ? sqlite3_errmsg(db) : "out of memory";
    sqlite3_close(db);
    return absl::UnavailableError(absl::StrCat("cannot open store ", path, ": ", msg));
  }
  std::unique_ptr<SqliteStore> store(new SqliteStore(db, max_events));
  absl::MutexLock lock(&store->mu_);
  sqlite3_busy_timeout(db, 5000);
  RETURN_IF_ERROR(store->Exec("PRAGMA journal_mode=WAL"));
  RETURN_IF_ERROR(store->Exec("PRAGMA synchronous=NORMAL"));
  RETURN_IF_ERROR(store->Exec("PRAGMA foreign_keys=ON"));
  RETURN_IF_ERROR(store->Migrate());
  return store;
}

SqliteStore::~SqliteStore() {
  absl::MutexLock lock(&mu_);
  sqlite3_close(db_);
}

absl::Status SqliteStore::Exec(const char* sql) {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = err ? err : "unknown error";
    sqlite3_free(err);
    return absl::InternalError(absl::StrCat("sqlite: ", msg));
  }
  return absl::OkStatus();
}

absl::Status SqliteStore::Migrate() {
  RETURN_IF_ERROR(Exec(
      "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, "
      "applied_at INTEGER NOT NULL)"));
  int64_t current = 0;
  {
    Stmt q(db_, "SELECT COALESCE(MAX(version), 0) FROM schema_migrations");
    RETURN_IF_ERROR(q.prepared());
    ASSIGN_OR_RETURN(bool row, q.Step());
    if (row) current = q.Int(0);
  }
  constexpr int64_t kKnown = sizeof(kMigrations) / sizeof(kMigrations[0]);
  if (current > kKnown) {
    return absl::FailedPreconditionError(absl::StrCat(
        "store schema version ", current, " is newer than this hostd knows (", kKnown,
        "): run a newer hostd"));
  }
  for (int64_t v = current + 1; v <= kKnown; ++v) {
    Txn txn(db_);
    RETURN_IF_ERROR(txn.begun());
    RETURN_IF_ERROR(Exec(kMigrations[v - 1]));
    Stmt rec(db_, "INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)");
    RETURN_IF_ERROR(rec.prepared());
    RETURN_IF_ERROR(rec.Bind(1, v).Bind(2, ToMicros(absl::Now())).Run());
    RETURN_IF_ERROR(txn.Commit());
  }
  return absl::OkStatus();
}

int SqliteStore::SchemaVersionForTest() {
  absl::MutexLock lock(&mu_);
  Stmt q(db_, "SELECT MAX(version) FROM schema_migrations");
  if (!q.prepared().ok() || !q.Step().value_or(false)) return 0;
  return static_cast<int>(q.Int(0));
}

absl::StatusOr<int64_t> SqliteStore::CurrentGeneration(absl::string_view name) {
  Stmt q(db_, "SELECT generation FROM services WHERE name = ?");
  RETURN_IF_ERROR(q.prepared());
  q.Bind(1, name);
  ASSIGN_OR_RETURN(bool row, q.Step());
  return row ? q.Int(0) : 0;
}

void SqliteStore::Invalidate(absl::string_view name, absl::string_view release_id) {
  absl::MutexLock lock(&cache_mu_);
  ++epoch_;
  if (!name.empty()) {
    if (auto it = services_.find(name); it != services_.end()) services_.erase(it);
    all_services_.reset();
  }
  if (!release_id.empty()) {
    if (auto it = releases_.find(release_id); it != releases_.end()) releases_.erase(it);
  }
}

namespace {

// One services row read with kServiceColumns.
absl::StatusOr<ServiceRecord> ServiceRow(Stmt& q) {
  ServiceRecord r;
  ASSIGN_OR_RETURN(r.spec, SpecFromJson(q.Text(0)));
  r.revision = q.Int(1);
  r.generation = q.Int(2);
  r.created_at = FromMicros(q.Int(3));
  r.updated_at = FromMicros(q.Int(4));
  RETURN_IF_ERROR(DecodeServiceBlobs(q.Blob(5), q.Blob(6), r));
  return r;
}

}  // namespace

int64_t SqliteStore::CacheEpoch() {
  absl::MutexLock lock(&cache_mu_);
  return epoch_;
}

absl::StatusOr<ServiceRecord> SqliteStore::ReadService(absl::string_view name) {
  Stmt q(db_, absl::StrCat(kServiceColumns, "WHERE name = ?").c_str());
  RETURN_IF_ERROR(q.prepared());
  q.Bind(1, name);
  ASSIGN_OR_RETURN(bool row, q.Step());
  if (!row) return absl::NotFoundError(absl::StrCat("service '", name, "' not found"));
  return ServiceRow(q);
}

absl::StatusOr<std::vector<ServiceRecord>> SqliteStore::ReadServices() {
  Stmt q(db_, absl::StrCat(kServiceColumns, "ORDER BY name").c_str());
  RETURN_IF_ERROR(q.prepared());
  std::vector<ServiceRecord> out;
  while (true) {
    ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) break;
    ASSIGN_OR_RETURN(ServiceRecord r, ServiceRow(q));
    out.push_back(std::move(r));
  }
  return out;
}

absl::StatusOr<ServiceRecord> SqliteStore::GetService(absl::string_view name) {
  {
    absl::MutexLock lock(&cache_mu_);
    if (auto it = services_.find(name); it != services_.end()) return it->second;
  }
  absl::MutexLock lock(&mu_);
  const int64_t epoch = CacheEpoch();
  absl::StatusOr<ServiceRecord> r = ReadService(name);
  if (r.ok()) {
    absl::MutexLock cache(&cache_mu_);
    if (epoch_ == epoch) services_.insert_or_assign(std::string(name), *r);
  }
  return r;
}

absl::StatusOr<std::vector<ServiceRecord>> SqliteStore::ListServices() {
  {
    absl::MutexLock lock(&cache_mu_);
    if (all_services_.has_value()) return *all_services_;
  }
  absl::MutexLock lock(&mu_);
  const int64_t epoch = CacheEpoch();
  absl::StatusOr<std::vector<ServiceRecord>> all = ReadServices();
  if (all.ok()) {
    absl::MutexLock cache(&cache_mu_);
    if (epoch_ == epoch) all_services_ = *all;
  }
  return all;
}

absl::StatusOr<int64_t> SqliteStore::PutService(const ServiceRecord& record,
                                                int64_t expected_generation,
                                                const RevisionRecord* new_revision) {
  absl::MutexLock lock(&mu_);
  Txn txn(db_);
  RETURN_IF_ERROR(txn.begun());
  ASSIGN_OR_RETURN(int64_t generation, PutServiceLocked(record, expected_generation, new_revision));
  RETURN_IF_ERROR(txn.Commit());
  return generation;
}

absl::StatusOr<int64_t> SqliteStore::PutServiceLocked(const ServiceRecord& record,
                                                      int64_t expected_generation,
                                                      const RevisionRecord* new_revision) {
  const std::string& name = record.spec.name();
  if (name.empty()) return absl::InvalidArgumentError("service record without a name");
  RETURN_IF_ERROR(CheckFence());
  Invalidate(name, "");
  ASSIGN_OR_RETURN(std::string spec_json, SpecToJson(record.spec));
  ASSIGN_OR_RETURN(int64_t current, CurrentGeneration(name));
  if (current != expected_generation) {
    return ServiceChangedConcurrently(name, current, expected_generation);
  }
  const int64_t generation = current + 1;
  const int64_t now = ToMicros(absl::Now());
  {
    Stmt w(db_,
           "INSERT INTO services (name, spec, revision, generation, created_at, updated_at, "
           "rollout, autoscaling) VALUES (?1, ?2, ?3, ?4, ?5, ?5, ?6, ?7) ON CONFLICT(name) DO "
           "UPDATE SET spec = ?2, revision = ?3, generation = ?4, updated_at = ?5, rollout = ?6, "
           "autoscaling = ?7");
    RETURN_IF_ERROR(w.prepared());
    RETURN_IF_ERROR(w.Bind(1, name).Bind(2, spec_json).Bind(3, record.revision)
                        .Bind(4, generation).Bind(5, now)
                        .BindBlob(6, record.rollout.SerializeAsString())
                        .BindBlob(7, EncodeAutoscaling(record))
                        .Run());
  }
  if (new_revision != nullptr) {
    ASSIGN_OR_RETURN(std::string rev_json, SpecToJson(new_revision->spec));
    Stmt w(db_,
           "INSERT INTO revisions (service, revision, spec, created_at) VALUES (?, ?, ?, ?)");
    RETURN_IF_ERROR(w.prepared());
    absl::Status s = w.Bind(1, name).Bind(2, new_revision->revision).Bind(3, rev_json)
                         .Bind(4, now).Run();
    if (!s.ok()) {
      if (absl::StrContains(s.message(), "UNIQUE")) {
        return absl::AlreadyExistsError(absl::StrCat("revision ", new_revision->revision,
                                                     " of '", name, "' exists already"));
      }
      return s;
    }
  }
  const int64_t last =
      std::max(new_revision != nullptr ? new_revision->revision : 0, HighestRevisionNamed(record));
  if (new_revision != nullptr || last > record.revision) {
    Stmt c(db_,
           "INSERT INTO revision_counters (service, last) VALUES (?1, ?2) "
           "ON CONFLICT(service) DO UPDATE SET last = MAX(last, ?2)");
    RETURN_IF_ERROR(c.prepared());
    RETURN_IF_ERROR(c.Bind(1, name).Bind(2, last).Run());
  }
  return generation;
}

absl::StatusOr<hosting::internal::ReleaseRecord> SqliteStore::CreateRelease(
    const ServiceRecord& service, int64_t expected_generation, const RevisionRecord* new_revision,
    hosting::internal::ReleaseRecord release) {
  const std::string& name = service.spec.name();
  absl::MutexLock lock(&mu_);
  Txn txn(db_);
  RETURN_IF_ERROR(txn.begun());
  {
    Stmt q(db_, "SELECT id FROM releases WHERE service = ? AND active = 1 LIMIT 1");
    RETURN_IF_ERROR(q.prepared());
    q.Bind(1, name);
    ASSIGN_OR_RETURN(bool row, q.Step());
    if (row) {
      return absl::FailedPreconditionError(absl::StrCat(
          "release ", q.Text(0), " of '", name, "' is still running; wait for it, or ",
          "abort it first (hostctl release abort ", q.Text(0), ")"));
    }
  }
  int64_t sequence = 1;
  {
    Stmt q(db_, "SELECT last FROM release_counters WHERE service = ?");
    RETURN_IF_ERROR(q.prepared());
    q.Bind(1, name);
    ASSIGN_OR_RETURN(bool row, q.Step());
    if (row) sequence = q.Int(0) + 1;
  }
  release.set_sequence(sequence);
  release.set_version(1);
  release.mutable_release()->set_id(absl::StrCat(name, "-", sequence));
  release.mutable_release()->set_service(name);
  ServiceRecord owned = service;
  owned.rollout.set_release_id(release.release().id());
  ASSIGN_OR_RETURN(int64_t generation, PutServiceLocked(owned, expected_generation, new_revision));
  (void)generation;
  {
    Stmt c(db_,
           "INSERT INTO release_counters (service, last) VALUES (?1, ?2) "
           "ON CONFLICT(service) DO UPDATE SET last = ?2");
    RETURN_IF_ERROR(c.prepared());
    RETURN_IF_ERROR(c.Bind(1, name).Bind(2, sequence).Run());
  }
  {
    Stmt w(db_,
           "INSERT INTO releases (id, service, sequence, active, version, started_at, body) "
           "VALUES (?, ?, ?, ?, 1, ?, ?)");
    RETURN_IF_ERROR(w.prepared());
    RETURN_IF_ERROR(w.Bind(1, release.release().id()).Bind(2, name).Bind(3, sequence)
                        .Bind(4, int64_t{IsTerminalRelease(release) ? 0 : 1})
                        .Bind(5, ToMicros(absl::Now()))
                        .BindBlob(6, release.SerializeAsString()).Run());
  }
  RETURN_IF_ERROR(txn.Commit());
  return release;
}

absl::StatusOr<Store::ReleaseWrite> SqliteStore::UpdateRelease(
    const hosting::internal::ReleaseRecord& release, const ServiceRecord* service,
    int64_t expected_generation) {
  const std::string& id = release.release().id();
  absl::MutexLock lock(&mu_);
  Invalidate("", id);
  Txn txn(db_);
  RETURN_IF_ERROR(txn.begun());
  RETURN_IF_ERROR(CheckFence());
  {
    Stmt q(db_, "SELECT version FROM releases WHERE id = ?");
    RETURN_IF_ERROR(q.prepared());
    q.Bind(1, id);
    ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) return absl::NotFoundError(absl::StrCat("release '", id, "' not found"));
    if (q.Int(0) != release.version()) {
      return absl::AbortedError(absl::StrCat("release '", id, "' was changed concurrently: stored ",
                                             "version ", q.Int(0), ", expected ",
                                             release.version()));
    }
  }
  ReleaseWrite out;
  out.release_version = release.version() + 1;
  if (service != nullptr) {
    ASSIGN_OR_RETURN(out.service_generation,
                     PutServiceLocked(*service, expected_generation, nullptr));
  }
  hosting::internal::ReleaseRecord stored = release;
  stored.set_version(out.release_version);
  Stmt w(db_, "UPDATE releases SET active = ?, version = ?, body = ? WHERE id = ?");
  RETURN_IF_ERROR(w.prepared());
  RETURN_IF_ERROR(w.Bind(1, int64_t{IsTerminalRelease(release) ? 0 : 1})
                      .Bind(2, out.release_version)
                      .BindBlob(3, stored.SerializeAsString()).Bind(4, id).Run());
  RETURN_IF_ERROR(txn.Commit());
  return out;
}

namespace {
absl::StatusOr<std::vector<hosting::internal::ReleaseRecord>> ReadReleases(Stmt& q) {
  std::vector<hosting::internal::ReleaseRecord> out;
  while (true) {
    ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) break;
    hosting::internal::ReleaseRecord r;
    if (!r.ParseFromString(q.Blob(0))) {
      return absl::DataLossError("stored release unreadable");
    }
    out.push_back(std::move(r));
  }
  return out;
}
}  // namespace

absl::StatusOr<hosting::internal::ReleaseRecord> SqliteStore::GetRelease(absl::string_view id) {
  {
    absl::MutexLock lock(&cache_mu_);
    if (auto it = releases_.find(id); it != releases_.end()) return it->second;
  }
  absl::MutexLock lock(&mu_);
  const int64_t epoch = CacheEpoch();
  Stmt q(db_, "SELECT body FROM releases WHERE id = ?");
  RETURN_IF_ERROR(q.prepared());
  q.Bind(1, id);
  ASSIGN_OR_RETURN(auto rows, ReadReleases(q));
  if (rows.empty()) return absl::NotFoundError(absl::StrCat("release '", id, "' not found"));
  absl::MutexLock cache(&cache_mu_);
  if (epoch_ == epoch) releases_.insert_or_assign(std::string(id), rows.front());
  return rows.front();
}

absl::StatusOr<std::vector<hosting::internal::ReleaseRecord>> SqliteStore::ListReleases(
    absl::string_view service, int limit) {
  absl::MutexLock lock(&mu_);
  Stmt q(db_,
         "SELECT body FROM releases WHERE (?1 = '' OR service = ?1) "
         "ORDER BY started_at DESC, sequence DESC LIMIT ?2");
  RETURN_IF_ERROR(q.prepared());
  q.Bind(1, service).Bind(2, int64_t{limit});
  return ReadReleases(q);
}

absl::StatusOr<std::vector<hosting::internal::ReleaseRecord>> SqliteStore::ListActiveReleases() {
  absl::MutexLock lock(&mu_);
  Stmt q(db_, "SELECT body FROM releases WHERE active = 1 ORDER BY started_at, id");
  RETURN_IF_ERROR(q.prepared());
  return ReadReleases(q);
}

absl::StatusOr<RunRecord> SqliteStore::CreateRun(hosting::v1::RunbookRun run) {
  absl::MutexLock lock(&mu_);
  Txn txn(db_);
  RETURN_IF_ERROR(txn.begun());
  RETURN_IF_ERROR(CheckFence());
  {
    Stmt q(db_, "SELECT id FROM runs WHERE active = 1 AND runbook = ? AND target = ? LIMIT 1");
    RETURN_IF_ERROR(q.prepared());
    q.Bind(1, run.runbook()).Bind(2, run.target());
    ASSIGN_OR_RETURN(bool row, q.Step());
    if (row) return RunInProgress(q.Text(0), run);
  }
  int64_t sequence = 1;
  {
    // AUTOINCREMENT never reuses a sequence, so neither does an ID.
    Stmt q(db_, "SELECT seq FROM sqlite_sequence WHERE name = 'runs'");
    RETURN_IF_ERROR(q.prepared());
    ASSIGN_OR_RETURN(bool row, q.Step());
    if (row) sequence = q.Int(0) + 1;
  }
  run.set_id(absl::StrCat(run.runbook(), "-", sequence));
  Stmt w(db_,
         "INSERT INTO runs (sequence, id, runbook, target, active, version, body) "
         "VALUES (?, ?, ?, ?, ?, 1, ?)");
  RETURN_IF_ERROR(w.prepared());
  RETURN_IF_ERROR(w.Bind(1, sequence).Bind(2, run.id()).Bind(3, run.runbook())
                      .Bind(4, run.target()).Bind(5, int64_t{IsTerminalRun(run.state()) ? 0 : 1})
                      .BindBlob(6, run.SerializeAsString()).Run());
  RETURN_IF_ERROR(txn.Commit());
  return RunRecord{std::move(run), 1};
}

absl::StatusOr<int64_t> SqliteStore::UpdateRun(const RunRecord& record) {
  const std::string& id = record.run.id();
  absl::MutexLock lock(&mu_);
  Txn txn(db_);
  RETURN_IF_ERROR(txn.begun());
  RETURN_IF_ERROR(CheckFence());
  {
    Stmt q(db_, "SELECT version FROM runs WHERE id = ?");
    RETURN_IF_ERROR(q.prepared());
    q.Bind(1, id);
    ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) return RunNotFound(id);
    if (q.Int(0) != record.version) return RunChangedConcurrently(id, q.Int(0), record.version);
  }
  Stmt w(db_, "UPDATE runs SET active = ?, version = ?, body = ? WHERE id = ?");
  RETURN_IF_ERROR(w.prepared());
  RETURN_IF_ERROR(w.Bind(1, int64_t{IsTerminalRun(record.run.state()) ? 0 : 1})
                      .Bind(2, record.version + 1)
                      .BindBlob(3, record.run.SerializeAsString()).Bind(4, id).Run());
  RETURN_IF_ERROR(txn.Commit());
  return record.version + 1;
}

namespace {
absl::StatusOr<std::vector<RunRecord>> ReadRuns(Stmt& q) {
  std::vector<RunRecord> out;
  while (true) {
    ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) break;
    ASSIGN_OR_RETURN(RunRecord r, ParseRun(q.Blob(0), q.Int(1)));
    out.push_back(std::move(r));
  }
  return out;
}
}  // namespace

absl::StatusOr<RunRecord> SqliteStore::GetRun(absl::string_view id) {
  absl::MutexLock lock(&mu_);
  Stmt q(db_, "SELECT body, version FROM runs WHERE id = ?");
  RETURN_IF_ERROR(q.prepared());
  q.Bind(1, id);
  ASSIGN_OR_RETURN(std::vector<RunRecord> rows, ReadRuns(q));
  if (rows.empty()) return RunNotFound(id);
  return std::move(rows.front());
}

absl::StatusOr<std::vector<RunRecord>> SqliteStore::ListRuns(absl::string_view runbook,
                                                             bool active_only, int limit) {
  absl::MutexLock lock(&mu_);
  Stmt q(db_,
         "SELECT body, version FROM runs WHERE (?1 = '' OR runbook = ?1) AND (?2 = 0 OR active = 1) "
         "ORDER BY sequence DESC LIMIT ?3");
  RETURN_IF_ERROR(q.prepared());
  q.Bind(1, runbook).Bind(2, int64_t{active_only ? 1 : 0}).Bind(3, int64_t{limit});
  return ReadRuns(q);
}

absl::Status SqliteStore::DeleteService(absl::string_view name, int64_t expected_generation) {
  absl::MutexLock lock(&mu_);
  Invalidate(name, "");
  Txn txn(db_);
  RETURN_IF_ERROR(txn.begun());
  RETURN_IF_ERROR(CheckFence());
  ASSIGN_OR_RETURN(int64_t current, CurrentGeneration(name));
  if (current == 0) return absl::NotFoundError(absl::StrCat("service '", name, "' not found"));
  if (current != expected_generation) {
    return ServiceChangedConcurrently(name, current, expected_generation);
  }
  for (const char* sql : {"DELETE FROM services WHERE name = ?", "DELETE FROM revisions WHERE service = ?"}) {
    Stmt d(db_, sql);
    RETURN_IF_ERROR(d.prepared());
    RETURN_IF_ERROR(d.Bind(1, name).Run());
  }
  return txn.Commit();
}

absl::StatusOr<std::vector<RevisionRecord>> SqliteStore::ListRevisions(absl::string_view service) {
  absl::MutexLock lock(&mu_);
  Stmt q(db_,
         "SELECT revision, spec, created_at FROM revisions WHERE service = ? "
         "ORDER BY revision DESC");
  RETURN_IF_ERROR(q.prepared());
  q.Bind(1, service);
  std::vector<RevisionRecord> out;
  while (true) {
    ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) break;
    RevisionRecord r;
    r.service = std::string(service);
    r.revision = q.Int(0);
    ASSIGN_OR_RETURN(r.spec, SpecFromJson(q.Text(1)));
    r.created_at = FromMicros(q.Int(2));
    out.push_back(std::move(r));
  }
  return out;
}

absl::StatusOr<int> SqliteStore::PruneRevisions(absl::string_view service, int keep) {
  absl::MutexLock lock(&mu_);
  RETURN_IF_ERROR(CheckFence());
  Stmt d(db_,
         "DELETE FROM revisions WHERE service = ?1 AND revision NOT IN "
         "(SELECT revision FROM revisions WHERE service = ?1 ORDER BY revision DESC LIMIT ?2)");
  RETURN_IF_ERROR(d.prepared());
  RETURN_IF_ERROR(d.Bind(1, service).Bind(2, static_cast<int64_t>(keep)).Run());
  return sqlite3_changes(db_);
}

absl::StatusOr<int64_t> SqliteStore::LastRevision(absl::string_view service) {
  absl::MutexLock lock(&mu_);
  Stmt q(db_, "SELECT last FROM revision_counters WHERE service = ?");
  RETURN_IF_ERROR(q.prepared());
  q.Bind(1, service);
  ASSIGN_OR_RETURN(bool row, q.Step());
  return row ? q.Int(0) : 0;
}

absl::StatusOr<std::string> SqliteStore::InstanceId() {
  absl::MutexLock lock(&mu_);
  Stmt q(db_, "SELECT value FROM meta WHERE key = 'instance_id'");
  RETURN_IF_ERROR(q.prepared());
  ASSIGN_OR_RETURN(bool row, q.Step());
  if (!row) return absl::DataLossError("store has no instance_id");
  return q.Text(0);
}

absl::StatusOr<Store::Lease> SqliteStore::ReadLease() {
  Lease lease;
  lease.now = absl::Now();
  Stmt q(db_, "SELECT holder, epoch, expires_at FROM leader WHERE id = 1");
  RETURN_IF_ERROR(q.prepared());
  ASSIGN_OR_RETURN(bool row, q.Step());
  if (row) {
    lease.holder = q.Text(0);
    lease.epoch = q.Int(1);
    lease.expires_at = FromMicros(q.Int(2));
  }
  return lease;
}

absl::Status SqliteStore::CheckFence() {
  if (fence_epoch_ == 0) return absl::OkStatus();
  ASSIGN_OR_RETURN(Lease lease, ReadLease());
  return FenceHolds(lease, fence_holder_, fence_epoch_);
}

absl::StatusOr<Store::Lease> SqliteStore::AcquireLease(absl::string_view holder,
                                                       absl::Duration ttl) {
  absl::MutexLock lock(&mu_);
  Txn txn(db_);
  RETURN_IF_ERROR(txn.begun());
  ASSIGN_OR_RETURN(Lease lease, ReadLease());
  const bool mine_and_live = lease.holder == holder && lease.expires_at > lease.now;
  if (!mine_and_live && lease.expires_at > lease.now) return lease;  // someone else's
  lease.epoch = mine_and_live ? lease.epoch : lease.epoch + 1;
  lease.holder = std::string(holder);
  lease.expires_at = lease.now + ttl;
  Stmt w(db_,
         "INSERT INTO leader (id, holder, epoch, expires_at) VALUES (1, ?1, ?2, ?3) "
         "ON CONFLICT(id) DO UPDATE SET holder = ?1, epoch = ?2, expires_at = ?3");
  RETURN_IF_ERROR(w.prepared());
  RETURN_IF_ERROR(
      w.Bind(1, holder).Bind(2, lease.epoch).Bind(3, ToMicros(lease.expires_at)).Run());
  RETURN_IF_ERROR(txn.Commit());
  return lease;
}

absl::Status SqliteStore::ReleaseLease(absl::string_view holder, int64_t epoch) {
  absl::MutexLock lock(&mu_);
  Stmt w(db_, "UPDATE leader SET expires_at = ?3 WHERE id = 1 AND holder = ?1 AND epoch = ?2");
  RETURN_IF_ERROR(w.prepared());
  return w.Bind(1, holder).Bind(2, epoch).Bind(3, ToMicros(absl::Now())).Run();
}

void SqliteStore::SetFence(absl::string_view holder, int64_t epoch) {
  absl::MutexLock lock(&mu_);
  fence_holder_ = std::string(holder);
  fence_epoch_ = epoch;
}

absl::Status SqliteStore::CreateToken(const hosting::internal::TokenRecord& token) {
  absl::MutexLock lock(&mu_);
  Txn txn(db_);
  RETURN_IF_ERROR(txn.begun());
  {
    Stmt q(db_, "SELECT 1 FROM tokens WHERE accessor = ? OR secret_sha256 = ?");
    RETURN_IF_ERROR(q.prepared());
    q.Bind(1, token.token().accessor()).Bind(2, token.secret_sha256());
    ASSIGN_OR_RETURN(bool row, q.Step());
    if (row) {
      return absl::AlreadyExistsError(
          absl::StrCat("a token with accessor ", token.token().accessor(), " or its secret exists"));
    }
  }
  Stmt w(db_, "INSERT INTO tokens (accessor, secret_sha256, body) VALUES (?, ?, ?)");
  RETURN_IF_ERROR(w.prepared());
  RETURN_IF_ERROR(w.Bind(1, token.token().accessor())
                      .Bind(2, token.secret_sha256())
                      .BindBlob(3, token.SerializeAsString())
                      .Run());
  return txn.Commit();
}

absl::StatusOr<hosting::internal::TokenRecord> SqliteStore::FindToken(
    absl::string_view secret_sha256) {
  absl::MutexLock lock(&mu_);
  Stmt q(db_, "SELECT body FROM tokens WHERE secret_sha256 = ?");
  RETURN_IF_ERROR(q.prepared());
  q.Bind(1, secret_sha256);
  ASSIGN_OR_RETURN(bool row, q.Step());
  if (!row) return absl::NotFoundError("no such token");
  hosting::internal::TokenRecord token;
  if (!token.ParseFromString(q.Blob(0))) return absl::DataLossError("stored token unreadable");
  return token;
}

absl::StatusOr<std::vector<hosting::internal::TokenRecord>> SqliteStore::ListTokens() {
  absl::MutexLock lock(&mu_);
  Stmt q(db_, "SELECT body FROM tokens ORDER BY rowid");
  RETURN_IF_ERROR(q.prepared());
  std::vector<hosting::internal::TokenRecord> out;
  while (true) {
    ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) break;
    hosting::internal::TokenRecord token;
    if (!token.ParseFromString(q.Blob(0))) return absl::DataLossError("stored token unreadable");
    out.push_back(std::move(token));
  }
  return out;
}

absl::StatusOr<hosting::internal::TokenRecord> SqliteStore::RevokeToken(
    absl::string_view accessor, absl::Time at) {
  absl::MutexLock lock(&mu_);
  Txn txn(db_);
  RETURN_IF_ERROR(txn.begun());
  hosting::internal::TokenRecord token;
  {
    Stmt q(db_, "SELECT body FROM tokens WHERE accessor = ?");
    RETURN_IF_ERROR(q.prepared());
    q.Bind(1, accessor);
    ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) return absl::NotFoundError(absl::StrCat("no token has accessor ", accessor));
    if (!token.ParseFromString(q.Blob(0))) return absl::DataLossError("stored token unreadable");
  }
  if (!token.token().has_revoked_at()) {
    *token.mutable_token()->mutable_revoked_at() = ToTimestamp(at);
    Stmt w(db_, "UPDATE tokens SET body = ? WHERE accessor = ?");
    RETURN_IF_ERROR(w.prepared());
    RETURN_IF_ERROR(w.BindBlob(1, token.SerializeAsString()).Bind(2, accessor).Run());
  }
  RETURN_IF_ERROR(txn.Commit());
  return token;
}

absl::StatusOr<int64_t> SqliteStore::AppendAudit(const hosting::v1::AuditEntry& entry) {
  absl::MutexLock lock(&mu_);
  Txn txn(db_);
  RETURN_IF_ERROR(txn.begun());
  {
    Stmt w(db_, "INSERT INTO audit (time, service, body) VALUES (?, ?, ?)");
    RETURN_IF_ERROR(w.prepared());
    RETURN_IF_ERROR(w.Bind(1, entry.time().seconds() * 1'000'000 + entry.time().nanos() / 1000)
                        .Bind(2, entry.service())
                        .BindBlob(3, entry.SerializeAsString())
                        .Run());
  }
  const int64_t sequence = sqlite3_last_insert_rowid(db_);
  if (sequence % 1000 == 0) {
    Stmt d(db_, "DELETE FROM audit WHERE sequence <= ?");
    RETURN_IF_ERROR(d.prepared());
    RETURN_IF_ERROR(d.Bind(1, sequence - max_events_).Run());
  }
  RETURN_IF_ERROR(txn.Commit());
  return sequence;
}

absl::StatusOr<std::vector<hosting::v1::AuditEntry>> SqliteStore::ListAudit(
    absl::Time since, absl::string_view service, int limit) {
  absl::MutexLock lock(&mu_);
  Stmt q(db_,
         "SELECT sequence, body FROM audit WHERE time >= ? AND (? = '' OR service = ?) "
         "ORDER BY sequence DESC LIMIT ?");
  RETURN_IF_ERROR(q.prepared());
  q.Bind(1, since == absl::InfinitePast() ? INT64_MIN : ToMicros(since))
      .Bind(2, service)
      .Bind(3, service)
      .Bind(4, static_cast<int64_t>(limit));
  std::vector<hosting::v1::AuditEntry> out;
  while (true) {
    ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) break;
    hosting::v1::AuditEntry e;
    if (!e.ParseFromString(q.Blob(1))) return absl::DataLossError("stored audit entry unreadable");
    e.set_sequence(q.Int(0));
    out.push_back(std::move(e));
  }
  return out;
}

absl::StatusOr<int64_t> SqliteStore::AppendEvent(const hosting::v1::Event& event) {
  absl::MutexLock lock(&mu_);
  Txn txn(db_);
  RETURN_IF_ERROR(txn.begun());
  int64_t sequence = 0;
  {
    Stmt q(db_, "SELECT COALESCE(MAX(sequence), 0) + 1 FROM events");
    RETURN_IF_ERROR(q.prepared());
    ASSIGN_OR_RETURN(bool row, q.Step());
    if (row) sequence = q.Int(0);
  }
  hosting::v1::Event stored = event;
  stored.set_sequence(sequence);
  {
    Stmt w(db_, "INSERT INTO events (sequence, time, type, service, body) VALUES (?, ?, ?, ?, ?)");
    RETURN_IF_ERROR(w.prepared());
    RETURN_IF_ERROR(w.Bind(1, sequence)
                        .Bind(2, event.time().seconds() * 1'000'000 + event.time().nanos() / 1000)
                        .Bind(3, event.type())
                        .Bind(4, event.service())
                        .BindBlob(5, stored.SerializeAsString())
                        .Run());
  }
  if (sequence % 1000 == 0) {
    Stmt d(db_, "DELETE FROM events WHERE sequence <= ?");
    RETURN_IF_ERROR(d.prepared());
    RETURN_IF_ERROR(d.Bind(1, sequence - max_events_).Run());
  }
  RETURN_IF_ERROR(txn.Commit());
  return sequence;
}

absl::StatusOr<std::vector<hosting::v1::Event>> SqliteStore::ListEvents(int64_t after_sequence,
                                                                        int limit) {
  absl::MutexLock lock(&mu_);
  Stmt q(db_, "SELECT body FROM events WHERE sequence > ? ORDER BY sequence LIMIT ?");
  RETURN_IF_ERROR(q.prepared());
  q.Bind(1, after_sequence).Bind(2, static_cast<int64_t>(limit));
  std::vector<hosting::v1::Event> out;
  while (true) {
    ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) break;
    hosting::v1::Event e;
    if (!e.ParseFromString(q.Blob(0))) return absl::DataLossError("stored event unreadable");
    out.push_back(std::move(e));
  }
  return out;
}

}  // namespace hosting::controlplane
