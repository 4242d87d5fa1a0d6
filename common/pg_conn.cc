#include "common/pg_conn.h"

#include <endian.h>
#include <poll.h>

#include <cerrno>

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace hosting {
namespace {

// The payload NothingCommitted reads.
constexpr char kNothingCommitted[] = "hosting.pg/nothing-committed";

absl::Status NotCommitted(absl::Status st) {
  st.SetPayload(kNothingCommitted, absl::Cord("1"));
  return st;
}

}  // namespace

bool PgConn::NothingCommitted(const absl::Status& status) {
  return status.GetPayload(kNothingCommitted).has_value();
}

std::string PgMessage(const char* message) {
  std::string msg = message ? message : "";
  while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
  return msg;
}

PgConn::PgConn(std::string conninfo, std::string role, OnConnect on_connect,
               absl::Duration retry_delay)
    : conninfo_(std::move(conninfo)), role_(std::move(role)),
      on_connect_(std::move(on_connect)), retry_delay_(retry_delay) {}

PgConn::~PgConn() { Close(); }

void PgConn::Close() {
  if (conn_ != nullptr) PQfinish(conn_);
  conn_ = nullptr;
}

std::string PgConn::server() const {
  if (!connected()) return "";
  return absl::StrCat(PQhost(conn_), ":", PQport(conn_));
}

bool PgConn::Alive() {
  // One poll on the hot path: nothing pending means an idle, open session. Otherwise read what
  // came: the server's last words ("terminating connection ...") may arrive in one read and the
  // end of the connection in the next.
  for (int i = 0; i < 4; ++i) {
    if (terminated_ || PQstatus(conn_) != CONNECTION_OK) return false;
    pollfd p{PQsocket(conn_), POLLIN, 0};
    const int rc = poll(&p, 1, 0);
    if (rc == 0) return true;
    if (rc < 0) return errno == EINTR;
    if (p.revents & (POLLHUP | POLLERR | POLLNVAL)) return false;
    if (PQconsumeInput(conn_) == 0) return false;
  }
  return !terminated_ && PQstatus(conn_) == CONNECTION_OK;
}

absl::Status PgConn::Ensure() {
  if (connected()) {
    // A session the server ended while it sat idle (a restart: "terminating connection due to
    // administrator command") shows here, before a statement is sent on it, by reading what
    // the server sent without waiting: the statement then goes on a new connection instead of
    // failing in a way that could not tell whether it ran.
    if (Alive()) return absl::OkStatus();
    last_error_ = PgMessage(PQerrorMessage(conn_));
    retry_after_ = absl::InfinitePast();
  }
  Close();
  const absl::Time now = absl::Now();
  if (now < retry_after_) {
    return NotCommitted(absl::UnavailableError(absl::StrCat(role_, " unavailable: ", last_error_)));
  }
  if (timeout_ == absl::InfiniteDuration()) {
    conn_ = PQconnectdb(conninfo_.c_str());
  } else {
    // The connection string (or URL) is expanded in place of dbname; a connect_timeout after
    // it overrides any it holds.
    const std::string seconds = std::to_string(
        std::max<int64_t>(2, absl::ToInt64Seconds(absl::Ceil(timeout_, absl::Seconds(1)))));
    const char* keys[] = {"dbname", "connect_timeout", nullptr};
    const char* values[] = {conninfo_.c_str(), seconds.c_str(), nullptr};
    conn_ = PQconnectdbParams(keys, values, /*expand_dbname=*/1);
  }
  // Notices are dropped, but a session ended by the server while idle ("terminating
  // connection due to administrator command", 57P01) arrives as one: remember it.
  terminated_ = false;
  PQsetNoticeReceiver(
      conn_,
      [](void* self, const PGresult* r) {
        const char* state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
        if (state != nullptr && std::strncmp(state, "57P0", 4) == 0) {
          static_cast<PgConn*>(self)->terminated_ = true;
        }
      },
      this);
  if (PQstatus(conn_) != CONNECTION_OK) {
    last_error_ = PgMessage(PQerrorMessage(conn_));
    Close();
    retry_after_ = now + retry_delay_;
    return NotCommitted(absl::UnavailableError(absl::StrCat(role_, " unavailable: ", last_error_)));
  }
  if (on_connect_) {
    if (absl::Status st = on_connect_(conn_); !st.ok()) {
      Close();
      retry_after_ = now + retry_delay_;
      last_error_ = std::string(st.message());
      return NotCommitted(absl::Status(st.code(), absl::StrCat(role_, ": ", st.message())));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<PgResult> PgConn::Exec(const char* sql, const std::vector<PgParam>& params,
                                      int result_format) {
  if (absl::Status st = Ensure(); !st.ok()) return st;
  std::vector<const char*> values;
  std::vector<int> lengths;
  std::vector<int> formats;
  for (const PgParam& p : params) {
    values.push_back(p.value.has_value() ? p.value->data() : nullptr);
    lengths.push_back(p.value.has_value() ? static_cast<int>(p.value->size()) : 0);
    formats.push_back(p.binary ? 1 : 0);
  }
  return Await(PQsendQueryParams(conn_, sql, static_cast<int>(params.size()), nullptr,
                                 values.data(), lengths.data(), formats.data(), result_format));
}

absl::StatusOr<PgResult> PgConn::Await(int sent) {
  if (sent == 0) {
    // Not sent at all.
    absl::StatusOr<PgResult> r = Check(PgResult(nullptr));
    return r.ok() ? std::move(r) : NotCommitted(r.status());
  }
  const absl::Time deadline = timeout_ == absl::InfiniteDuration()
                                  ? absl::InfiniteFuture()
                                  : absl::Now() + timeout_;
  while (PQisBusy(conn_)) {
    int wait_ms = -1;
    if (deadline != absl::InfiniteFuture()) {
      wait_ms = static_cast<int>(
          std::max<int64_t>(0, absl::ToInt64Milliseconds(deadline - absl::Now())));
    }
    pollfd p{PQsocket(conn_), POLLIN, 0};
    const int rc = poll(&p, 1, wait_ms);
    if (rc < 0 && errno == EINTR) continue;
    if (rc == 0) {
      last_error_ = absl::StrCat("no answer within ", absl::FormatDuration(timeout_));
      // Whatever the server does with the statement, this connection is done with it.
      Close();
      return absl::UnavailableError(absl::StrCat(role_, " did not answer within ",
                                                 absl::FormatDuration(timeout_)));
    }
    if (PQconsumeInput(conn_) == 0) break;  // the error shows in the result below
  }
  // The last result, or the first error among them (a script of several statements).
  PgResult out;
  while (PGresult* r = PQgetResult(conn_)) {
    const ExecStatusType st = PQresultStatus(r);
    const bool failed = st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK;
    const bool have_failure =
        out != nullptr && PQresultStatus(out.get()) != PGRES_TUPLES_OK &&
        PQresultStatus(out.get()) != PGRES_COMMAND_OK;
    if (have_failure && !failed) {
      PQclear(r);
    } else {
      out.reset(r);
    }
  }
  return Check(std::move(out));
}

absl::StatusOr<PgResult> PgConn::ExecPrepared(const char* name,
                                              const std::vector<const char*>& params) {
  if (absl::Status st = Ensure(); !st.ok()) return st;
  return Await(PQsendQueryPrepared(conn_, name, static_cast<int>(params.size()), params.data(),
                                   nullptr, nullptr, 0));
}

absl::StatusOr<PgResult> PgConn::Query(const char* sql) {
  if (absl::Status st = Ensure(); !st.ok()) return st;
  return Await(PQsendQuery(conn_, sql));
}

absl::StatusOr<PgResult> PgConn::Check(PgResult r) {
  const ExecStatusType st = PQresultStatus(r.get());
  if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK) return r;
  const char* state = r ? PQresultErrorField(r.get(), PG_DIAG_SQLSTATE) : nullptr;
  const std::string sqlstate = state ? state : "";
  const std::string msg = PgMessage(r ? PQresultErrorMessage(r.get()) : PQerrorMessage(conn_));
  // 08: connection exceptions; 57P01-57P03: the server shutting down or starting.
  if (PQstatus(conn_) != CONNECTION_OK || sqlstate.rfind("08", 0) == 0 ||
      sqlstate.rfind("57P0", 0) == 0) {
    last_error_ = msg;
    Close();
    absl::Status lost = absl::UnavailableError(absl::StrCat(role_, " connection lost: ", msg));
    // The server ended the session (during the statement, or before it while the session was
    // idle): the statement's transaction was rolled back, or it never ran.
    const bool ended = sqlstate.rfind("57P0", 0) == 0 || terminated_;
    return ended ? NotCommitted(std::move(lost)) : lost;
  }
  if (sqlstate == "23505") return absl::AlreadyExistsError(msg);
  if (sqlstate == "23503") return absl::NotFoundError(msg);
  if (sqlstate == "57014") return absl::DeadlineExceededError(msg);
  if (sqlstate == "40001" || sqlstate == "40P01") return absl::AbortedError(msg);
  if (sqlstate == "25006") {
    // Read-only: a replica (or a primary demoted under us). The next call reconnects, which
    // with target_session_attrs=read-write finds the new primary.
    Close();
    return NotCommitted(
        absl::UnavailableError(absl::StrCat(role_, " is read-only (a replica): ", msg)));
  }
  return absl::InternalError(absl::StrCat(role_, ": ", msg, " [", sqlstate, "]"));
}

int64_t PgInt(const PGresult* r, int row, int col) {
  const char* v = PQgetvalue(r, row, col);
  if (PQfformat(r, col) == 0) return std::strtoll(v, nullptr, 10);
  switch (PQgetlength(r, row, col)) {
    case 2: {
      uint16_t x;
      std::memcpy(&x, v, 2);
      return static_cast<int16_t>(be16toh(x));
    }
    case 4: {
      uint32_t x;
      std::memcpy(&x, v, 4);
      return static_cast<int32_t>(be32toh(x));
    }
    case 8: {
      uint64_t x;
      std::memcpy(&x, v, 8);
      return static_cast<int64_t>(be64toh(x));
    }
    default:
      return 0;
  }
}

std::string PgBytes(const PGresult* r, int row, int col) {
  return std::string(PQgetvalue(r, row, col), static_cast<size_t>(PQgetlength(r, row, col)));
}

}  // namespace hosting

namespace hosting {

absl::StatusOr<std::vector<int>> PgMigrate(PgConn& conn, const std::string& table,
                                           int64_t lock_key,
                                           const std::vector<PgMigration>& migrations) {
  auto fail = [&](const absl::Status& st, absl::string_view what) {
    if (conn.connected()) conn.Query("ROLLBACK").IgnoreError();
    return absl::Status(st.code(), absl::StrCat("migrate ", table, ": ", what, ": ", st.message()));
  };
  int known = 0;
  for (const PgMigration& m : migrations) known = std::max(known, m.version);
  std::vector<int> applied;
  const std::string lock = absl::StrCat("SELECT pg_advisory_xact_lock(", lock_key, ")");
  // Created under the lock too: two first starts at once would otherwise race on the CREATE.
  const std::string create = absl::StrCat("CREATE TABLE IF NOT EXISTS ", table,
                                          " (version INTEGER PRIMARY KEY, name TEXT NOT NULL, "
                                          "applied_at TIMESTAMPTZ NOT NULL DEFAULT now())");
  const std::string newest = absl::StrCat("SELECT COALESCE(MAX(version), 0) FROM ", table);
  const std::string seen = absl::StrCat("SELECT 1 FROM ", table, " WHERE version = $1");
  const std::string record = absl::StrCat("INSERT INTO ", table, " (version, name) VALUES ($1, $2)");
  // All pending migrations in one transaction: a failing one leaves the schema as it was, with
  // none of the others applied (PostgreSQL's DDL is transactional).
  if (absl::StatusOr<PgResult> r = conn.Query("BEGIN"); !r.ok()) return fail(r.status(), "begin");
  if (absl::StatusOr<PgResult> r = conn.Query(lock.c_str()); !r.ok()) {
    return fail(r.status(), "taking the migration lock");
  }
  if (absl::StatusOr<PgResult> r = conn.Query(create.c_str()); !r.ok()) {
    return fail(r.status(), "creating the table");
  }
  absl::StatusOr<PgResult> top = conn.Query(newest.c_str());
  if (!top.ok()) return fail(top.status(), "reading the schema version");
  if (const int64_t v = PgInt(top->get(), 0, 0); v > known) {
    return fail(absl::FailedPreconditionError(absl::StrCat(
                    "the schema is at version ", v, ", newer than this binary knows (", known,
                    "): run a newer one")),
                "version check");
  }
  for (const PgMigration& m : migrations) {
    absl::StatusOr<PgResult> r = conn.Exec(seen.c_str(), {PgParam::Int(m.version)});
    if (!r.ok()) return fail(r.status(), "reading the applied versions");
    if (PQntuples(r->get()) != 0) continue;
    if (absl::StatusOr<PgResult> w = conn.Query(m.sql.c_str()); !w.ok()) {
      return fail(w.status(), absl::StrCat("migration ", m.version, " (", m.name,
                                           "); nothing of this run was applied"));
    }
    if (absl::StatusOr<PgResult> w =
            conn.Exec(record.c_str(), {PgParam::Int(m.version), PgParam::Text(m.name)});
        !w.ok()) {
      return fail(w.status(), "recording the version");
    }
    applied.push_back(m.version);
  }
  if (absl::StatusOr<PgResult> c = conn.Query("COMMIT"); !c.ok()) return fail(c.status(), "commit");
  return applied;
}

}  // namespace hosting
