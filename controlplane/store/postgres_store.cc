#include "controlplane/store/postgres_store.h"


#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/proto_time.h"
#include "common/status_macros.h"
#include "controlplane/store/record_codec.h"

namespace hosting::controlplane {
namespace {

// Numbered migrations of the schema `hosting`; never edit a released one, append.
const std::vector<PgMigration>& Migrations() {
  static const auto* m = new std::vector<PgMigration>{
      {1, "services, revisions, releases, the event log and the store's identity", R"sql(
CREATE TABLE hosting.services (
  name         TEXT PRIMARY KEY,
  spec         TEXT NOT NULL,              -- ServiceSpec as proto JSON
  revision     BIGINT NOT NULL,
  generation   BIGINT NOT NULL,
  created_at   BIGINT NOT NULL,            -- Unix microseconds
  updated_at   BIGINT NOT NULL,
  rollout      BYTEA NOT NULL DEFAULT '',  -- hosting.internal.Rollout, binary
  autoscaling  BYTEA NOT NULL DEFAULT ''   -- hosting.v1.AutoscalingPolicy, binary; empty: none
);
CREATE TABLE hosting.revisions (
  service     TEXT NOT NULL,
  revision    BIGINT NOT NULL,
  spec        TEXT NOT NULL,
  created_at  BIGINT NOT NULL,
  PRIMARY KEY (service, revision)
);
-- Outlive deletes, so a re-created service never reuses a revision number or release ID.
CREATE TABLE hosting.revision_counters (service TEXT PRIMARY KEY, last BIGINT NOT NULL);
CREATE TABLE hosting.release_counters (service TEXT PRIMARY KEY, last BIGINT NOT NULL);
CREATE TABLE hosting.releases (
  id          TEXT PRIMARY KEY,
  service     TEXT NOT NULL,
  sequence    BIGINT NOT NULL,
  active      BOOLEAN NOT NULL,            -- true until the release reaches a terminal state
  version     BIGINT NOT NULL,
  started_at  BIGINT NOT NULL,
  body        BYTEA NOT NULL,              -- hosting.internal.ReleaseRecord, binary
  UNIQUE (service, sequence)
);
CREATE INDEX releases_active ON hosting.releases (active, started_at);
CREATE TABLE hosting.events (
  sequence    BIGINT PRIMARY KEY,
  time        BIGINT NOT NULL,
  type        TEXT NOT NULL,
  service     TEXT NOT NULL,
  body        BYTEA NOT NULL               -- hosting.v1.Event, binary
);
CREATE INDEX events_by_service ON hosting.events (service, sequence);
-- One row: appenders take its lock in turn, so sequences commit in order.
CREATE TABLE hosting.event_counter (id INT PRIMARY KEY CHECK (id = 1), last BIGINT NOT NULL);
INSERT INTO hosting.event_counter VALUES (1, 0);
CREATE TABLE hosting.meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
INSERT INTO hosting.meta (key, value)
  VALUES ('instance_id', substr(md5(random()::text || clock_timestamp()::text), 1, 16));
)sql"},
      {2, "the leader lease", R"sql(
CREATE TABLE hosting.leader (
  id          INT PRIMARY KEY CHECK (id = 1),
  holder      TEXT NOT NULL,
  epoch       BIGINT NOT NULL,
  expires_at  BIGINT NOT NULL                -- Unix microseconds, by PostgreSQL's clock
);
)sql"},
      {3, "API tokens", R"sql(
CREATE TABLE hosting.tokens (
  accessor       TEXT PRIMARY KEY,
  secret_sha256  TEXT NOT NULL UNIQUE,
  body           BYTEA NOT NULL,             -- hosting.internal.TokenRecord, binary
  created        BIGSERIAL                   -- insertion order
);
)sql"},
      {4, "the audit trail", R"sql(
CREATE TABLE hosting.audit (
  sequence  BIGSERIAL PRIMARY KEY,
  time      BIGINT NOT NULL,                 -- Unix microseconds
  service   TEXT NOT NULL,
  body      BYTEA NOT NULL                   -- hosting.v1.AuditEntry, binary
);
CREATE INDEX audit_by_time ON hosting.audit (time);
)sql"},
      {5, "runbook runs", R"sql(
CREATE TABLE hosting.runs (
  sequence    BIGSERIAL PRIMARY KEY,
  id          TEXT NOT NULL UNIQUE,
  runbook     TEXT NOT NULL,
  target      TEXT NOT NULL,
  active      BOOLEAN NOT NULL,              -- true until the run ends
  version     BIGINT NOT NULL,
  body        BYTEA NOT NULL                 -- hosting.v1.RunbookRun, binary
);
-- One run per runbook and target at a time, whatever races CreateRun.
CREATE UNIQUE INDEX runs_one_active ON hosting.runs (runbook, target) WHERE active;
)sql"},
  };
  return *m;
}

// Any fixed number: the advisory lock migrators take.
constexpr int64_t kMigrationLock = 7402115;

constexpr char kServiceColumns[] =
    "SELECT spec, revision, generation, created_at, updated_at, rollout, autoscaling, name "
    "FROM hosting.services ";

int64_t NowMicros() { return absl::ToUnixMicros(absl::Now()); }

// PostgreSQL's clock, in Unix microseconds: the lease's only clock, so hostd's clocks may differ.
#define PG_NOW_US "(extract(epoch from clock_timestamp()) * 1000000)::bigint"

Store::Lease LeaseRow(const PGresult* r) {
  Store::Lease lease;
  lease.now = absl::FromUnixMicros(PgInt(r, 0, 0));
  if (PQntuples(r) > 0 && !PQgetisnull(r, 0, 1)) {
    lease.holder = PgBytes(r, 0, 1);
    lease.epoch = PgInt(r, 0, 2);
    lease.expires_at = absl::FromUnixMicros(PgInt(r, 0, 3));
  }
  return lease;
}

// The lease with the database's clock; one row even before the lease was ever taken.
constexpr char kReadLease[] =
    "SELECT " PG_NOW_US ", l.holder, l.epoch, l.expires_at FROM (SELECT 1) AS one "
    "LEFT JOIN hosting.leader l ON l.id = 1";

}  // namespace

absl::Status PostgresStore::LimitIdleTransactions(PGconn* conn) {
  const std::string sql =
      absl::StrCat("SET idle_in_transaction_session_timeout = ",
                   absl::ToInt64Milliseconds(kIdleInTransactionTimeout));
  PgResult r(PQexec(conn, sql.c_str()));
  if (PQresultStatus(r.get()) != PGRES_COMMAND_OK) {
    return absl::UnavailableError(
        absl::StrCat("setting idle_in_transaction_session_timeout: ", PQerrorMessage(conn)));
  }
  return absl::OkStatus();
}

std::string PostgresStore::Redacted(absl::string_view conninfo) {
  // Plain string work, no std::regex: this runs for every store opened, on any thread.
  std::string s(conninfo);
  // URL form: scheme://user:password@host...
  if (size_t scheme = s.find("://"); scheme != std::string::npos) {
    const size_t start = scheme + 3;
    const size_t at = s.find('@', start);
    const size_t end = s.find_first_of("/?", start);
    if (at != std::string::npos && (end == std::string::npos || at < end)) {
      const size_t colon = s.find(':', start);
      if (colon != std::string::npos && colon < at) s.replace(colon + 1, at - colon - 1, "***");
    }
  }
  // key=value form and URL parameters: password=value, password = 'a value'.
  for (size_t pos = s.find("password"); pos != std::string::npos;
       pos = s.find("password", pos + 1)) {
    size_t eq = pos + 8;
    while (eq < s.size() && s[eq] == ' ') ++eq;
    if (eq >= s.size() || s[eq] != '=') continue;
    size_t value = eq + 1;
    while (value < s.size() && s[value] == ' ') ++value;
    size_t end = value;
    if (value < s.size() && s[value] == '\'') {
      end = s.find('\'', value + 1);
      end = end == std::string::npos ? s.size() : end + 1;
    } else {
      while (end < s.size() && s[end] != ' ' && s[end] != '&') ++end;
    }
    s.replace(value, end - value, "***");
  }
  return s;
}

PostgresStore::PostgresStore(const std::string& conninfo, int64_t max_events)
    : conn_(conninfo, absl::StrCat("store ", Redacted(conninfo)), &LimitIdleTransactions,
            absl::Milliseconds(200)),
      lease_conn_(conninfo, absl::StrCat("store ", Redacted(conninfo), " (lease)"), nullptr,
                  absl::Milliseconds(100)),
      max_events_(max_events) {
  absl::MutexLock lock(&mu_);
  conn_.set_timeout(kStatementTimeout);
}

absl::StatusOr<std::unique_ptr<PostgresStore>> PostgresStore::Open(const std::string& conninfo,
                                                                   int64_t max_events) {
  std::unique_ptr<PostgresStore> store(new PostgresStore(conninfo, max_events));
  absl::MutexLock lock(&store->mu_);
  // Two first starts may race on the schema itself; the advisory lock covers it.
  RETURN_IF_ERROR(store->InTransaction("", [&]() -> absl::Status {
    RETURN_IF_ERROR(store->Exec("SELECT pg_advisory_xact_lock($1)",
                                {PgParam::Int(kMigrationLock)})
                        .status());
    return store->Exec("CREATE SCHEMA IF NOT EXISTS hosting").status();
  }));
  RETURN_IF_ERROR(
      PgMigrate(store->conn_, "hosting.schema_migrations", kMigrationLock, Migrations()).status());
  return store;
}

absl::StatusOr<int> PostgresStore::SchemaVersion() {
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(PgResult r, Exec("SELECT COALESCE(MAX(version), 0) FROM hosting.schema_migrations"));
  return static_cast<int>(PgInt(r.get(), 0, 0));
}

absl::StatusOr<PgResult> PostgresStore::Exec(const char* sql, const std::vector<PgParam>& params) {
  return conn_.Exec(sql, params, /*result_format=*/1);
}

absl::Status PostgresStore::InTransaction(absl::string_view name,
                                          const std::function<absl::Status()>& body,
                                          bool fenced) {
  std::string fence_holder;
  int64_t fence_epoch;
  {
    absl::MutexLock lock(&fence_mu_);
    fence_holder = fence_holder_;
    fence_epoch = fence_epoch_;
  }
  // The lease as the database has it now; `lock` holds the row (FOR SHARE) until the
  // transaction ends.
  auto fence = [&](bool lock) -> absl::Status {
    absl::StatusOr<PgResult> lease = Exec(
        lock ? "SELECT " PG_NOW_US ", holder, epoch, expires_at FROM hosting.leader "
               "WHERE id = 1 FOR SHARE"
             : "SELECT " PG_NOW_US ", holder, epoch, expires_at FROM hosting.leader WHERE id = 1");
    if (!lease.ok()) return lease.status();
    Lease l = PQntuples(lease->get()) > 0 ? LeaseRow(lease->get()) : Lease{};
    return FenceHolds(l, fence_holder, fence_epoch);
  };
  RETURN_IF_ERROR(Exec("BEGIN").status());
  absl::Status st;
  // Not the leader: refused at once, naming the one that is.
  if (fenced && fence_epoch < 0) st = fence(/*lock=*/false);
  if (st.ok() && !name.empty()) {
    st = Exec("SELECT pg_advisory_xact_lock(hashtext('hosting.service:' || $1::text))",
              {PgParam::Text(std::string(name))})
             .status();
  }
  if (st.ok()) st = body();
  // The leader's fence comes last and its row lock is held only until the COMMIT right after:
  // a takeover (an UPDATE of the lease row) waits for this write, so no write of an old
  // leader lands after a new one took over; and a leader paused in the middle of a write
  // holds up no lease renewal (its own or a standby's) for more than that one round trip.
  if (st.ok() && fenced && fence_epoch > 0) st = fence(/*lock=*/true);
  if (st.ok()) return Exec("COMMIT").status();
  if (conn_.connected()) Exec("ROLLBACK").IgnoreError();
  return st;
}

absl::StatusOr<std::vector<ServiceRecord>> PostgresStore::ReadServices(
    const char* where, const std::vector<PgParam>& params) {
  ASSIGN_OR_RETURN(PgResult r, Exec(absl::StrCat(kServiceColumns, where).c_str(), params));
  std::vector<ServiceRecord> out;
  for (int i = 0; i < PQntuples(r.get()); ++i) {
    ServiceRecord s;
    ASSIGN_OR_RETURN(s.spec, SpecFromJson(PgBytes(r.get(), i, 0)));
    s.spec.set_name(PgBytes(r.get(), i, 7));
    s.revision = PgInt(r.get(), i, 1);
    s.generation = PgInt(r.get(), i, 2);
    s.created_at = absl::FromUnixMicros(PgInt(r.get(), i, 3));
    s.updated_at = absl::FromUnixMicros(PgInt(r.get(), i, 4));
    RETURN_IF_ERROR(DecodeServiceBlobs(PgBytes(r.get(), i, 5), PgBytes(r.get(), i, 6), s));
    out.push_back(std::move(s));
  }
  return out;
}

absl::StatusOr<ServiceRecord> PostgresStore::GetService(absl::string_view name) {
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(std::vector<ServiceRecord> rows,
                   ReadServices("WHERE name = $1", {PgParam::Text(std::string(name))}));
  if (rows.empty()) return absl::NotFoundError(absl::StrCat("service '", name, "' not found"));
  return std::move(rows.front());
}

absl::StatusOr<std::vector<ServiceRecord>> PostgresStore::ListServices() {
  absl::MutexLock lock(&mu_);
  return ReadServices("ORDER BY name COLLATE \"C\"", {});
}

absl::StatusOr<int64_t> PostgresStore::PutService(const ServiceRecord& record,
                                                  int64_t expected_generation,
                                                  const RevisionRecord* new_revision) {
  if (record.spec.name().empty()) return absl::InvalidArgumentError("service record without a name");
  absl::MutexLock lock(&mu_);
  int64_t generation = 0;
  RETURN_IF_ERROR(InTransaction(
      record.spec.name(),
      [&]() -> absl::Status {
        ASSIGN_OR_RETURN(generation, PutServiceLocked(record, expected_generation, new_revision));
        return absl::OkStatus();
      },
      /*fenced=*/true));
  return generation;
}

absl::StatusOr<int64_t> PostgresStore::PutServiceLocked(const ServiceRecord& record,
                                                        int64_t expected_generation,
                                                        const RevisionRecord* new_revision) {
  const std::string& name = record.spec.name();
  if (name.empty()) return absl::InvalidArgumentError("service record without a name");
  ASSIGN_OR_RETURN(PgResult cur, Exec("SELECT generation FROM hosting.services WHERE name = $1",
                                      {PgParam::Text(name)}));
  const int64_t current = PQntuples(cur.get()) > 0 ? PgInt(cur.get(), 0, 0) : 0;
  if (current != expected_generation) {
    return ServiceChangedConcurrently(name, current, expected_generation);
  }
  const int64_t generation = current + 1;
  const int64_t now = NowMicros();
  ASSIGN_OR_RETURN(std::string spec_json, SpecToJson(record.spec));
  RETURN_IF_ERROR(
      Exec("INSERT INTO hosting.services (name, spec, revision, generation, created_at, "
           "updated_at, rollout, autoscaling) VALUES ($1, $2, $3, $4, $5, $5, $6, $7) "
           "ON CONFLICT (name) DO UPDATE SET spec = $2, revision = $3, generation = $4, "
           "updated_at = $5, rollout = $6, autoscaling = $7",
           {PgParam::Text(name), PgParam::Text(spec_json), PgParam::Int(record.revision),
            PgParam::Int(generation), PgParam::Int(now),
            PgParam::Bytes(record.rollout.SerializeAsString()),
            PgParam::Bytes(EncodeAutoscaling(record))})
          .status());
  if (new_revision != nullptr) {
    ASSIGN_OR_RETURN(std::string rev_json, SpecToJson(new_revision->spec));
    absl::StatusOr<PgResult> w = Exec(
        "INSERT INTO hosting.revisions (service, revision, spec, created_at) "
        "VALUES ($1, $2, $3, $4)",
        {PgParam::Text(name), PgParam::Int(new_revision->revision), PgParam::Text(rev_json),
         PgParam::Int(now)});
    if (absl::IsAlreadyExists(w.status())) {
      return absl::AlreadyExistsError(absl::StrCat("revision ", new_revision->revision, " of '",
                                                   name, "' exists already"));
    }
    RETURN_IF_ERROR(w.status());
  }
  const int64_t last =
      std::max(new_revision != nullptr ? new_revision->revision : 0, HighestRevisionNamed(record));
  if (new_revision != nullptr || last > record.revision) {
    RETURN_IF_ERROR(Exec("INSERT INTO hosting.revision_counters (service, last) VALUES ($1, $2) "
                         "ON CONFLICT (service) DO UPDATE SET "
                         "last = GREATEST(hosting.revision_counters.last, EXCLUDED.last)",
                         {PgParam::Text(name), PgParam::Int(last)})
                        .status());
  }
  return generation;
}

absl::Status PostgresStore::DeleteService(absl::string_view name, int64_t expected_generation) {
  absl::MutexLock lock(&mu_);
  const std::string n(name);
  return InTransaction(n, [&]() -> absl::Status {
    ASSIGN_OR_RETURN(PgResult cur, Exec("SELECT generation FROM hosting.services WHERE name = $1",
                                        {PgParam::Text(n)}));
    if (PQntuples(cur.get()) == 0) {
      return absl::NotFoundError(absl::StrCat("service '", n, "' not found"));
    }
    const int64_t current = PgInt(cur.get(), 0, 0);
    if (current != expected_generation) {
      return ServiceChangedConcurrently(n, current, expected_generation);
    }
    RETURN_IF_ERROR(Exec("DELETE FROM hosting.services WHERE name = $1", {PgParam::Text(n)}).status());
    return Exec("DELETE FROM hosting.revisions WHERE service = $1", {PgParam::Text(n)}).status();
  }, /*fenced=*/true);
}

absl::StatusOr<std::vector<RevisionRecord>> PostgresStore::ListRevisions(
    absl::string_view service) {
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(PgResult r, Exec("SELECT revision, spec, created_at FROM hosting.revisions "
                                    "WHERE service = $1 ORDER BY revision DESC",
                                    {PgParam::Text(std::string(service))}));
  std::vector<RevisionRecord> out;
  for (int i = 0; i < PQntuples(r.get()); ++i) {
    RevisionRecord rev;
    rev.service = std::string(service);
    rev.revision = PgInt(r.get(), i, 0);
    ASSIGN_OR_RETURN(rev.spec, SpecFromJson(PgBytes(r.get(), i, 1)));
    rev.created_at = absl::FromUnixMicros(PgInt(r.get(), i, 2));
    out.push_back(std::move(rev));
  }
  return out;
}

absl::StatusOr<int> PostgresStore::PruneRevisions(absl::string_view service, int keep) {
  absl::MutexLock lock(&mu_);
  int deleted = 0;
  RETURN_IF_ERROR(InTransaction(
      "",
      [&]() -> absl::Status {
        ASSIGN_OR_RETURN(PgResult r,
                         Exec("DELETE FROM hosting.revisions WHERE service = $1 AND revision "
                              "NOT IN (SELECT revision FROM hosting.revisions WHERE service = $1 "
                              "ORDER BY revision DESC LIMIT $2)",
                              {PgParam::Text(std::string(service)), PgParam::Int(keep)}));
        deleted = std::atoi(PQcmdTuples(r.get()));
        return absl::OkStatus();
      },
      /*fenced=*/true));
  return deleted;
}

absl::StatusOr<int64_t> PostgresStore::LastRevision(absl::string_view service) {
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(PgResult r, Exec("SELECT last FROM hosting.revision_counters WHERE service = $1",
                                    {PgParam::Text(std::string(service))}));
  return PQntuples(r.get()) > 0 ? PgInt(r.get(), 0, 0) : 0;
}

absl::StatusOr<hosting::internal::ReleaseRecord> PostgresStore::CreateRelease(
    const ServiceRecord& service, int64_t expected_generation, const RevisionRecord* new_revision,
    hosting::internal::ReleaseRecord release) {
  const std::string& name = service.spec.name();
  absl::MutexLock lock(&mu_);
  RETURN_IF_ERROR(InTransaction(name, [&]() -> absl::Status {
    ASSIGN_OR_RETURN(PgResult running,
                     Exec("SELECT id FROM hosting.releases WHERE service = $1 AND active LIMIT 1",
                          {PgParam::Text(name)}));
    if (PQntuples(running.get()) > 0) {
      const std::string id = PgBytes(running.get(), 0, 0);
      return absl::FailedPreconditionError(
          absl::StrCat("release ", id, " of '", name, "' is still running; wait for it, or ",
                       "abort it first (hostctl release abort ", id, ")"));
    }
    ASSIGN_OR_RETURN(PgResult counter,
                     Exec("INSERT INTO hosting.release_counters (service, last) VALUES ($1, 1) "
                          "ON CONFLICT (service) DO UPDATE SET "
                          "last = hosting.release_counters.last + 1 RETURNING last",
                          {PgParam::Text(name)}));
    const int64_t sequence = PgInt(counter.get(), 0, 0);
    release.set_sequence(sequence);
    release.set_version(1);
    release.mutable_release()->set_id(absl::StrCat(name, "-", sequence));
    release.mutable_release()->set_service(name);
    ServiceRecord owned = service;
    owned.rollout.set_release_id(release.release().id());
    RETURN_IF_ERROR(PutServiceLocked(owned, expected_generation, new_revision).status());
    return Exec("INSERT INTO hosting.releases (id, service, sequence, active, version, "
                "started_at, body) VALUES ($1, $2, $3, $4, 1, $5, $6)",
                {PgParam::Text(release.release().id()), PgParam::Text(name),
                 PgParam::Int(sequence),
                 PgParam::Text(IsTerminalRelease(release) ? "false" : "true"),
                 PgParam::Int(NowMicros()), PgParam::Bytes(release.SerializeAsString())})
        .status();
  }, /*fenced=*/true));
  return release;
}

absl::StatusOr<Store::ReleaseWrite> PostgresStore::UpdateRelease(
    const hosting::internal::ReleaseRecord& release, const ServiceRecord* service,
    int64_t expected_generation) {
  const std::string& id = release.release().id();
  absl::MutexLock lock(&mu_);
  ReleaseWrite out;
  RETURN_IF_ERROR(InTransaction(
      service != nullptr ? service->spec.name() : std::string(), [&]() -> absl::Status {
        ASSIGN_OR_RETURN(PgResult cur,
                         Exec("SELECT version FROM hosting.releases WHERE id = $1 FOR UPDATE",
                              {PgParam::Text(id)}));
        if (PQntuples(cur.get()) == 0) {
          return absl::NotFoundError(absl::StrCat("release '", id, "' not found"));
        }
        const int64_t stored_version = PgInt(cur.get(), 0, 0);
        if (stored_version != release.version()) {
          return absl::AbortedError(absl::StrCat("release '", id,
                                                 "' was changed concurrently: stored version ",
                                                 stored_version, ", expected ", release.version()));
        }
        out.release_version = release.version() + 1;
        if (service != nullptr) {
          ASSIGN_OR_RETURN(out.service_generation,
                           PutServiceLocked(*service, expected_generation, nullptr));
        }
        hosting::internal::ReleaseRecord stored = release;
        stored.set_version(out.release_version);
        return Exec("UPDATE hosting.releases SET active = $1, version = $2, body = $3 "
                    "WHERE id = $4",
                    {PgParam::Text(IsTerminalRelease(release) ? "false" : "true"),
                     PgParam::Int(out.release_version),
                     PgParam::Bytes(stored.SerializeAsString()), PgParam::Text(id)})
            .status();
      },
      /*fenced=*/true));
  return out;
}

absl::StatusOr<RunRecord> PostgresStore::CreateRun(hosting::v1::RunbookRun run) {
  absl::MutexLock lock(&mu_);
  RETURN_IF_ERROR(InTransaction("", [&]() -> absl::Status {
    // Concurrent creators of one runbook and target queue here, so the second sees the first.
    RETURN_IF_ERROR(Exec("SELECT pg_advisory_xact_lock(hashtext($1))",
                         {PgParam::Text(absl::StrCat("run:", run.runbook(), "/", run.target()))})
                        .status());
    ASSIGN_OR_RETURN(PgResult running,
                     Exec("SELECT id FROM hosting.runs WHERE active AND runbook = $1 AND "
                          "target = $2 LIMIT 1",
                          {PgParam::Text(run.runbook()), PgParam::Text(run.target())}));
    if (PQntuples(running.get()) > 0) return RunInProgress(PgBytes(running.get(), 0, 0), run);
    ASSIGN_OR_RETURN(PgResult seq, Exec("SELECT nextval('hosting.runs_sequence_seq')"));
    const int64_t sequence = PgInt(seq.get(), 0, 0);
    run.set_id(absl::StrCat(run.runbook(), "-", sequence));
    return Exec("INSERT INTO hosting.runs (sequence, id, runbook, target, active, version, body) "
                "VALUES ($1, $2, $3, $4, $5, 1, $6)",
                {PgParam::Int(sequence), PgParam::Text(run.id()), PgParam::Text(run.runbook()),
                 PgParam::Text(run.target()),
                 PgParam::Text(IsTerminalRun(run.state()) ? "false" : "true"),
                 PgParam::Bytes(run.SerializeAsString())})
        .status();
  }, /*fenced=*/true));
  return RunRecord{std::move(run), 1};
}

absl::StatusOr<int64_t> PostgresStore::UpdateRun(const RunRecord& record) {
  const std::string& id = record.run.id();
  absl::MutexLock lock(&mu_);
  RETURN_IF_ERROR(InTransaction("", [&]() -> absl::Status {
    ASSIGN_OR_RETURN(PgResult cur, Exec("SELECT version FROM hosting.runs WHERE id = $1 FOR UPDATE",
                                        {PgParam::Text(id)}));
    if (PQntuples(cur.get()) == 0) return RunNotFound(id);
    const int64_t stored = PgInt(cur.get(), 0, 0);
    if (stored != record.version) return RunChangedConcurrently(id, stored, record.version);
    return Exec("UPDATE hosting.runs SET active = $1, version = $2, body = $3 WHERE id = $4",
                {PgParam::Text(IsTerminalRun(record.run.state()) ? "false" : "true"),
                 PgParam::Int(record.version + 1), PgParam::Bytes(record.run.SerializeAsString()),
                 PgParam::Text(id)})
        .status();
  }, /*fenced=*/true));
  return record.version + 1;
}

absl::StatusOr<std::vector<RunRecord>> PostgresStore::ReadRuns(const char* sql,
                                                                const std::vector<PgParam>& params) {
  ASSIGN_OR_RETURN(PgResult r, Exec(sql, params));
  std::vector<RunRecord> out;
  for (int i = 0; i < PQntuples(r.get()); ++i) {
    ASSIGN_OR_RETURN(RunRecord run, ParseRun(PgBytes(r.get(), i, 0), PgInt(r.get(), i, 1)));
    out.push_back(std::move(run));
  }
  return out;
}

absl::StatusOr<RunRecord> PostgresStore::GetRun(absl::string_view id) {
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(std::vector<RunRecord> rows,
                   ReadRuns("SELECT body, version FROM hosting.runs WHERE id = $1",
                            {PgParam::Text(std::string(id))}));
  if (rows.empty()) return RunNotFound(id);
  return std::move(rows.front());
}

absl::StatusOr<std::vector<RunRecord>> PostgresStore::ListRuns(absl::string_view runbook,
                                                               bool active_only, int limit) {
  absl::MutexLock lock(&mu_);
  return ReadRuns(
      "SELECT body, version FROM hosting.runs WHERE ($1::text = '' OR runbook = $1::text) "
      "AND ($2::bool = false OR active) ORDER BY sequence DESC LIMIT $3",
      {PgParam::Text(std::string(runbook)), PgParam::Text(active_only ? "true" : "false"),
       PgParam::Int(limit)});
}

absl::StatusOr<std::vector<hosting::internal::ReleaseRecord>> PostgresStore::ReadReleases(
    const char* sql, const std::vector<PgParam>& params) {
  ASSIGN_OR_RETURN(PgResult r, Exec(sql, params));
  std::vector<hosting::internal::ReleaseRecord> out;
  for (int i = 0; i < PQntuples(r.get()); ++i) {
    hosting::internal::ReleaseRecord rec;
    const std::string body = PgBytes(r.get(), i, 0);
    if (!rec.ParseFromString(body)) return absl::DataLossError("stored release unreadable");
    out.push_back(std::move(rec));
  }
  return out;
}

absl::StatusOr<hosting::internal::ReleaseRecord> PostgresStore::GetRelease(absl::string_view id) {
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(auto rows, ReadReleases("SELECT body FROM hosting.releases WHERE id = $1",
                                           {PgParam::Text(std::string(id))}));
  if (rows.empty()) return absl::NotFoundError(absl::StrCat("release '", id, "' not found"));
  return std::move(rows.front());
}

absl::StatusOr<std::vector<hosting::internal::ReleaseRecord>> PostgresStore::ListReleases(
    absl::string_view service, int limit) {
  absl::MutexLock lock(&mu_);
  return ReadReleases(
      "SELECT body FROM hosting.releases WHERE ($1::text = '' OR service = $1::text) "
      "ORDER BY started_at DESC, sequence DESC LIMIT $2",
      {PgParam::Text(std::string(service)), PgParam::Int(limit)});
}

absl::StatusOr<std::vector<hosting::internal::ReleaseRecord>>
PostgresStore::ListActiveReleases() {
  absl::MutexLock lock(&mu_);
  return ReadReleases(
      "SELECT body FROM hosting.releases WHERE active ORDER BY started_at, id COLLATE \"C\"", {});
}

absl::StatusOr<std::string> PostgresStore::InstanceId() {
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(PgResult r,
                   Exec("SELECT value FROM hosting.meta WHERE key = 'instance_id'"));
  if (PQntuples(r.get()) == 0) return absl::DataLossError("store has no instance_id");
  return PgBytes(r.get(), 0, 0);
}

absl::StatusOr<Store::Lease> PostgresStore::AcquireLease(absl::string_view holder,
                                                         absl::Duration ttl) {
  absl::MutexLock lock(&lease_mu_);
  // A renewal that takes half the lease is as good as lost: give up and let the elector's own
  // deadline decide, rather than hold the caller.
  lease_conn_.set_timeout(std::max(absl::Milliseconds(100), ttl / 2));
  const std::string h(holder);
  // One statement, so no transaction of its own is needed: taken when free, lapsed, or
  // already ours (a renewal of a live lease keeps the epoch); then read back.
  absl::StatusOr<PgResult> r = lease_conn_.Exec(
      "WITH taken AS ("
      "INSERT INTO hosting.leader AS l (id, holder, epoch, expires_at) "
      "VALUES (1, $1, 1, " PG_NOW_US " + $2) "
      "ON CONFLICT (id) DO UPDATE SET holder = EXCLUDED.holder, "
      "epoch = CASE WHEN l.holder = EXCLUDED.holder AND l.expires_at > " PG_NOW_US
      " THEN l.epoch ELSE l.epoch + 1 END, expires_at = EXCLUDED.expires_at "
      "WHERE (l.holder = EXCLUDED.holder AND l.expires_at > " PG_NOW_US ") "
      "OR l.expires_at <= " PG_NOW_US " "
      "RETURNING " PG_NOW_US " AS now, holder, epoch, expires_at) "
      "SELECT * FROM taken UNION ALL "
      "SELECT " PG_NOW_US ", holder, epoch, expires_at FROM hosting.leader "
      "WHERE id = 1 AND NOT EXISTS (SELECT 1 FROM taken)",
      {PgParam::Text(h), PgParam::Int(absl::ToInt64Microseconds(ttl))}, /*result_format=*/1);
  if (!r.ok()) return r.status();
  if (PQntuples(r->get()) != 1) {
    return absl::InternalError("store: the lease row could be neither taken nor read");
  }
  return LeaseRow(r->get());
}

absl::Status PostgresStore::ReleaseLease(absl::string_view holder, int64_t epoch) {
  absl::MutexLock lock(&lease_mu_);
  return lease_conn_
      .Exec("UPDATE hosting.leader SET expires_at = " PG_NOW_US
            " WHERE id = 1 AND holder = $1 AND epoch = $2",
            {PgParam::Text(std::string(holder)), PgParam::Int(epoch)})
      .status();
}

void PostgresStore::SetFence(absl::string_view holder, int64_t epoch) {
  absl::MutexLock lock(&fence_mu_);
  fence_holder_ = std::string(holder);
  fence_epoch_ = epoch;
}

namespace {

absl::StatusOr<std::vector<hosting::internal::TokenRecord>> TokenRows(const PGresult* r) {
  std::vector<hosting::internal::TokenRecord> out;
  for (int i = 0; i < PQntuples(r); ++i) {
    hosting::internal::TokenRecord token;
    if (!token.ParseFromString(PgBytes(r, i, 0))) {
      return absl::DataLossError("stored token unreadable");
    }
    out.push_back(std::move(token));
  }
  return out;
}

}  // namespace

absl::Status PostgresStore::CreateToken(const hosting::internal::TokenRecord& token) {
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(PgResult r,
                   Exec("INSERT INTO hosting.tokens (accessor, secret_sha256, body) "
                        "VALUES ($1, $2, $3) ON CONFLICT DO NOTHING RETURNING accessor",
                        {PgParam::Text(token.token().accessor()),
                         PgParam::Text(token.secret_sha256()),
                         PgParam::Bytes(token.SerializeAsString())}));
  if (PQntuples(r.get()) == 0) {
    return absl::AlreadyExistsError(
        absl::StrCat("a token with accessor ", token.token().accessor(), " or its secret exists"));
  }
  return absl::OkStatus();
}

absl::StatusOr<hosting::internal::TokenRecord> PostgresStore::FindToken(
    absl::string_view secret_sha256) {
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(PgResult r, Exec("SELECT body FROM hosting.tokens WHERE secret_sha256 = $1",
                                    {PgParam::Text(std::string(secret_sha256))}));
  ASSIGN_OR_RETURN(std::vector<hosting::internal::TokenRecord> tokens, TokenRows(r.get()));
  if (tokens.empty()) return absl::NotFoundError("no such token");
  return std::move(tokens.front());
}

absl::StatusOr<std::vector<hosting::internal::TokenRecord>> PostgresStore::ListTokens() {
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(PgResult r, Exec("SELECT body FROM hosting.tokens ORDER BY created"));
  return TokenRows(r.get());
}

absl::StatusOr<hosting::internal::TokenRecord> PostgresStore::RevokeToken(
    absl::string_view accessor, absl::Time at) {
  absl::MutexLock lock(&mu_);
  hosting::internal::TokenRecord token;
  RETURN_IF_ERROR(InTransaction("", [&]() -> absl::Status {
    ASSIGN_OR_RETURN(PgResult r,
                     Exec("SELECT body FROM hosting.tokens WHERE accessor = $1 FOR UPDATE",
                          {PgParam::Text(std::string(accessor))}));
    ASSIGN_OR_RETURN(std::vector<hosting::internal::TokenRecord> tokens, TokenRows(r.get()));
    if (tokens.empty()) return absl::NotFoundError(absl::StrCat("no token has accessor ", accessor));
    token = std::move(tokens.front());
    if (token.token().has_revoked_at()) return absl::OkStatus();
    *token.mutable_token()->mutable_revoked_at() = ToTimestamp(at);
    return Exec("UPDATE hosting.tokens SET body = $1 WHERE accessor = $2",
                {PgParam::Bytes(token.SerializeAsString()), PgParam::Text(std::string(accessor))})
        .status();
  }));
  return token;
}

absl::StatusOr<int64_t> PostgresStore::AppendAudit(const hosting::v1::AuditEntry& entry) {
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(
      PgResult r,
      Exec("INSERT INTO hosting.audit (time, service, body) VALUES ($1, $2, $3) RETURNING sequence",
           {PgParam::Int(entry.time().seconds() * 1'000'000 + entry.time().nanos() / 1000),
            PgParam::Text(entry.service()), PgParam::Bytes(entry.SerializeAsString())}));
  const int64_t sequence = PgInt(r.get(), 0, 0);
  if (sequence % 1000 == 0) {
    RETURN_IF_ERROR(Exec("DELETE FROM hosting.audit WHERE sequence <= $1",
                         {PgParam::Int(sequence - max_events_)})
                        .status());
  }
  return sequence;
}

absl::StatusOr<std::vector<hosting::v1::AuditEntry>> PostgresStore::ListAudit(
    absl::Time since, absl::string_view service, int limit) {
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(
      PgResult r,
      Exec("SELECT sequence, body FROM hosting.audit WHERE time >= $1 AND ($2 = '' OR service = $2) "
           "ORDER BY sequence DESC LIMIT $3",
           {PgParam::Int(since == absl::InfinitePast() ? INT64_MIN : absl::ToUnixMicros(since)),
            PgParam::Text(std::string(service)), PgParam::Int(limit)}));
  std::vector<hosting::v1::AuditEntry> out;
  for (int i = 0; i < PQntuples(r.get()); ++i) {
    hosting::v1::AuditEntry e;
    if (!e.ParseFromString(PgBytes(r.get(), i, 1))) {
      return absl::DataLossError("stored audit entry unreadable");
    }
    e.set_sequence(PgInt(r.get(), i, 0));
    out.push_back(std::move(e));
  }
  return out;
}

absl::StatusOr<int64_t> PostgresStore::AppendEvent(const hosting::v1::Event& event) {
  absl::MutexLock lock(&mu_);
  int64_t sequence = 0;
  RETURN_IF_ERROR(InTransaction("", [&]() -> absl::Status {
    ASSIGN_OR_RETURN(PgResult c, Exec("UPDATE hosting.event_counter SET last = last + 1 "
                                      "WHERE id = 1 RETURNING last"));
    if (PQntuples(c.get()) != 1) return absl::DataLossError("store has no event counter");
    sequence = PgInt(c.get(), 0, 0);
    hosting::v1::Event stored = event;
    stored.set_sequence(sequence);
    RETURN_IF_ERROR(
        Exec("INSERT INTO hosting.events (sequence, time, type, service, body) "
             "VALUES ($1, $2, $3, $4, $5)",
             {PgParam::Int(sequence),
              PgParam::Int(event.time().seconds() * 1'000'000 + event.time().nanos() / 1000),
              PgParam::Text(event.type()), PgParam::Text(event.service()),
              PgParam::Bytes(stored.SerializeAsString())})
            .status());
    if (sequence % 1000 == 0) {
      RETURN_IF_ERROR(Exec("DELETE FROM hosting.events WHERE sequence <= $1",
                           {PgParam::Int(sequence - max_events_)})
                          .status());
    }
    return absl::OkStatus();
  }));
  return sequence;
}

absl::StatusOr<std::vector<hosting::v1::Event>> PostgresStore::ListEvents(int64_t after_sequence,
                                                                          int limit) {
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(PgResult r, Exec("SELECT body FROM hosting.events WHERE sequence > $1 "
                                    "ORDER BY sequence LIMIT $2",
                                    {PgParam::Int(after_sequence), PgParam::Int(limit)}));
  std::vector<hosting::v1::Event> out;
  for (int i = 0; i < PQntuples(r.get()); ++i) {
    hosting::v1::Event e;
    if (!e.ParseFromString(PgBytes(r.get(), i, 0))) {
      return absl::DataLossError("stored event unreadable");
    }
    out.push_back(std::move(e));
  }
  return out;
}

}  // namespace hosting::controlplane
