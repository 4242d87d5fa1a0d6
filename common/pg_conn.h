#pragma once

// One libpq connection with the error mapping every PostgreSQL user in this project shares:
// reconnects on demand (at most once per `retry_delay` after a failure, so a dead database
// costs callers little), maps SQLSTATEs to absl status codes, and never blocks on a notice.

#include <libpq-fe.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace hosting {

struct PgResultDeleter {
  void operator()(PGresult* r) const { PQclear(r); }
};
using PgResult = std::unique_ptr<PGresult, PgResultDeleter>;

// A statement parameter: text, or raw bytes for a bytea column; nullopt is SQL NULL.
struct PgParam {
  std::optional<std::string> value;
  bool binary = false;

  static PgParam Text(std::string v) { return {std::move(v), false}; }
  static PgParam Int(int64_t v) { return {std::to_string(v), false}; }
  static PgParam Bytes(std::string v) { return {std::move(v), true}; }
  static PgParam Null() { return {std::nullopt, false}; }
};

class PgConn {
 public:
  // Runs once per new connection (e.g. to prepare statements); an error closes it.
  using OnConnect = std::function<absl::Status(PGconn*)>;

  // `role` names the database in every error ("database primary", "store").
  PgConn(std::string conninfo, std::string role, OnConnect on_connect = nullptr,
         absl::Duration retry_delay = absl::Milliseconds(500));
  ~PgConn();
  PgConn(const PgConn&) = delete;
  PgConn& operator=(const PgConn&) = delete;

  // Bounds every statement (and the connect, at libpq's granularity of whole seconds, at least
  // 2): a server that stops answering (paused, a dead network path) fails the call with
  // UNAVAILABLE after `timeout` and the connection is closed, instead of blocking the caller
  // for good. Infinite by default.
  void set_timeout(absl::Duration timeout) { timeout_ = timeout; }

  // Connects when not connected. UNAVAILABLE naming the role and libpq's reason.
  absl::Status Ensure();
  // A statement with parameters ($1 ...). Results in text (0) or binary (1) format.
  absl::StatusOr<PgResult> Exec(const char* sql, const std::vector<PgParam>& params,
                                int result_format = 0);
  // A statement prepared by OnConnect; nullptr params are SQL NULLs.
  absl::StatusOr<PgResult> ExecPrepared(const char* name, const std::vector<const char*>& params);
  // One or more statements without parameters.
  absl::StatusOr<PgResult> Query(const char* sql);
  void Close();

  bool connected() const { return conn_ != nullptr && PQstatus(conn_) == CONNECTION_OK; }

  // Whether a failed call certainly committed nothing, so that even a write may be sent again:
  // it never reached the server (no connection, the server refused or was starting), or the
  // server ended the session and so aborted the statement's transaction (SQLSTATE 57P01-57P03
  // during a restart or failover, 25006 read-only). A connection cut with no answer from the
  // server is not one of these: the statement may have committed.
  static bool NothingCommitted(const absl::Status& status);
  // The server this connection reached ("host:port"), empty when not connected.
  std::string server() const;

 private:
  absl::StatusOr<PgResult> Check(PgResult r);
  // Whether the open connection is still open: reads what the server sent without waiting.
  bool Alive();
  // Waits (within the timeout) for the results of a statement sent with PQsend*; `sent` is
  // what PQsend* returned.
  absl::StatusOr<PgResult> Await(int sent);

  const std::string conninfo_;
  const std::string role_;
  const OnConnect on_connect_;
  const absl::Duration retry_delay_;
  absl::Duration timeout_ = absl::InfiniteDuration();
  PGconn* conn_ = nullptr;
  absl::Time retry_after_ = absl::InfinitePast();
  std::string last_error_;
  // The server said it ended this session (SQLSTATE 57P0x) while no statement was running.
  bool terminated_ = false;
};

// libpq's message without its trailing newlines.
std::string PgMessage(const char* message);

// A binary-format integer column (int2, int4 or int8), or a text one.
int64_t PgInt(const PGresult* r, int row, int col);
// A column's bytes as they came (text, or a binary-format bytea).
std::string PgBytes(const PGresult* r, int row, int col);

}  // namespace hosting

namespace hosting {

// A numbered schema change; never edit a released one, append.
struct PgMigration {
  int version;
  std::string name;
  std::string sql;
};

// Applies the migrations not yet recorded in `table` (created when missing), all in one
// transaction under the transaction-level advisory lock `lock_key`: concurrent migrators
// (several hostd or appsvc starting at once) apply each exactly once, and a failing one leaves
// the schema as it was (none of that run's migrations applied). Returns the versions
// applied. FAILED_PRECONDITION when `table` records a version newer than `migrations` know.
absl::StatusOr<std::vector<int>> PgMigrate(PgConn& conn, const std::string& table,
                                           int64_t lock_key,
                                           const std::vector<PgMigration>& migrations);

}  // namespace hosting
