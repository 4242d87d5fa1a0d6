#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/pg_conn.h"
#include "controlplane/store/store.h"

namespace hosting::controlplane {

// Store on PostgreSQL through libpq, for a control plane of several hostd on one database.
// Tables live in the schema `hosting`; migrations run at Open under an advisory lock, so
// several hostd starting at once apply each exactly once.
//
// One connection, serialized by a mutex, reconnected on demand: a libpq connection string or
// URL with several hosts and target_session_attrs=read-write follows a promoted replica. While
// the database is unreachable every call answers UNAVAILABLE naming the store; nothing is
// cached, because another hostd may write the same rows. Every statement has a bound
// (kStatementTimeout): a database that stops answering fails calls instead of holding them.
//
// The leader lease has a connection of its own, bounded by half the lease: a renewal never
// waits behind the API's queries (under load, one slow read would otherwise delay it past the
// lease and hand leadership to a standby for nothing).
//
// A hostd frozen in the middle of a write (SIGSTOP, a stalled VM) would hold its row locks,
// the lease row's among them, for as long as it stays frozen, and a standby's takeover waits
// on that lock. PostgreSQL ends such a session after kIdleInTransactionTimeout
// (idle_in_transaction_session_timeout): the frozen write is rolled back, the lock goes, the
// takeover proceeds. A running hostd never idles that long inside a transaction.
//
// Writes to one service are serialized by a transaction-level advisory lock on its name and
// compare-and-swap on its generation (ABORTED when stale); event sequences come from one
// counter row, so events commit in sequence order and a reader never sees a later event
// before an earlier one.
class PostgresStore final : public Store {
 public:
  static constexpr int64_t kDefaultMaxEvents = 100000;
  static constexpr absl::Duration kStatementTimeout = absl::Seconds(10);
  static constexpr absl::Duration kIdleInTransactionTimeout = absl::Seconds(2);

  // `conninfo`: a libpq connection string or postgres:// URL.
  static absl::StatusOr<std::unique_ptr<PostgresStore>> Open(
      const std::string& conninfo, int64_t max_events = kDefaultMaxEvents);

  absl::StatusOr<ServiceRecord> GetService(absl::string_view name) override;
  absl::StatusOr<std::vector<ServiceRecord>> ListServices() override;
  absl::StatusOr<int64_t> PutService(const ServiceRecord& record, int64_t expected_generation,
                                     const RevisionRecord* new_revision) override;
  absl::Status DeleteService(absl::string_view name, int64_t expected_generation) override;
  absl::StatusOr<std::vector<RevisionRecord>> ListRevisions(absl::string_view service) override;
  absl::StatusOr<int> PruneRevisions(absl::string_view service, int keep) override;
  absl::StatusOr<int64_t> LastRevision(absl::string_view service) override;
  absl::StatusOr<hosting::internal::ReleaseRecord> CreateRelease(
      const ServiceRecord& service, int64_t expected_generation,
      const RevisionRecord* new_revision, hosting::internal::ReleaseRecord release) override;
  absl::StatusOr<ReleaseWrite> UpdateRelease(const hosting::internal::ReleaseRecord& release,
                                             const ServiceRecord* service,
                                             int64_t expected_generation) override;
  absl::StatusOr<hosting::internal::ReleaseRecord> GetRelease(absl::string_view id) override;
  absl::StatusOr<std::vector<hosting::internal::ReleaseRecord>> ListReleases(
      absl::string_view service, int limit) override;
  absl::StatusOr<std::vector<hosting::internal::ReleaseRecord>> ListActiveReleases() override;
  absl::StatusOr<std::string> InstanceId() override;
  absl::StatusOr<Lease> AcquireLease(absl::string_view holder, absl::Duration ttl) override;
  absl::Status ReleaseLease(absl::string_view holder, int64_t epoch) override;
  void SetFence(absl::string_view holder, int64_t epoch) override;
  absl::Status CreateToken(const hosting::internal::TokenRecord& token) override;
  absl::StatusOr<hosting::internal::TokenRecord> FindToken(absl::string_view secret_sha256) override;
  absl::StatusOr<std::vector<hosting::internal::TokenRecord>> ListTokens() override;
  absl::StatusOr<hosting::internal::TokenRecord> RevokeToken(absl::string_view accessor,
                                                             absl::Time at) override;
  absl::StatusOr<RunRecord> CreateRun(hosting::v1::RunbookRun run) override;
  absl::StatusOr<int64_t> UpdateRun(const RunRecord& record) override;
  absl::StatusOr<RunRecord> GetRun(absl::string_view id) override;
  absl::StatusOr<std::vector<RunRecord>> ListRuns(absl::string_view runbook, bool active_only,
                                                  int limit) override;
  absl::StatusOr<int64_t> AppendAudit(const hosting::v1::AuditEntry& entry) override;
  absl::StatusOr<std::vector<hosting::v1::AuditEntry>> ListAudit(absl::Time since,
                                                                 absl::string_view service,
                                                                 int limit) override;
  absl::StatusOr<int64_t> AppendEvent(const hosting::v1::Event& event) override;
  absl::StatusOr<std::vector<hosting::v1::Event>> ListEvents(int64_t after_sequence,
                                                             int limit) override;

  // The schema version after migrations (for tests).
  absl::StatusOr<int> SchemaVersion();
  // The connection string with any password replaced by "***", for logs and errors.
  static std::string Redacted(absl::string_view conninfo);

 private:
  PostgresStore(const std::string& conninfo, int64_t max_events);
  // The store connection's session settings (kIdleInTransactionTimeout), on every connect.
  static absl::Status LimitIdleTransactions(PGconn* conn);

  // One statement, binary results.
  absl::StatusOr<PgResult> Exec(const char* sql, const std::vector<PgParam>& params = {})
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Runs `body` in a transaction holding the advisory lock of service `name` (if not empty);
  // commits when it returns OK, rolls back otherwise.
  // `fenced`: a write of desired state, which commits only under this hostd's lease (SetFence).
  absl::Status InTransaction(absl::string_view name, const std::function<absl::Status()>& body,
                             bool fenced = false) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<int64_t> PutServiceLocked(const ServiceRecord& record,
                                           int64_t expected_generation,
                                           const RevisionRecord* new_revision)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<std::vector<ServiceRecord>> ReadServices(const char* where,
                                                          const std::vector<PgParam>& params)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<std::vector<RunRecord>> ReadRuns(const char* sql,
                                                  const std::vector<PgParam>& params)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<std::vector<hosting::internal::ReleaseRecord>> ReadReleases(
      const char* sql, const std::vector<PgParam>& params) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  absl::Mutex mu_;
  PgConn conn_ ABSL_GUARDED_BY(mu_);
  // The lease's own connection (AcquireLease, ReleaseLease).
  absl::Mutex lease_mu_;
  PgConn lease_conn_ ABSL_GUARDED_BY(lease_mu_);
  // Set by the elector (SetFence) without waiting for a query in flight.
  absl::Mutex fence_mu_;
  std::string fence_holder_ ABSL_GUARDED_BY(fence_mu_);
  int64_t fence_epoch_ ABSL_GUARDED_BY(fence_mu_) = 0;
  const int64_t max_events_;
};

}  // namespace hosting::controlplane
