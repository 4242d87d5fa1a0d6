#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "controlplane/store/store.h"

struct sqlite3;

namespace hosting::controlplane {

// Store on an embedded SQLite file (WAL mode). One connection, serialized by a mutex: hostd's
// write rate is low and this keeps transactions trivially correct. Schema migrations run at
// Open and are recorded in schema_migrations.
//
// Reads of services and releases are served from memory once read: one hostd owns the file, so
// every write passes here and drops what it changes (before its transaction commits or rolls
// back), and a read that raced a write does not keep what it read (an epoch check). Cached
// reads take their own lock, never the connection's, so they do not wait for a write's fsync.
class SqliteStore final : public Store {
 public:
  // The event log keeps the newest `max_events` events; older ones are pruned every 1,000
  // appends, so up to 999 more may be listed between prunes.
  static constexpr int64_t kDefaultMaxEvents = 100000;

  // `path` may be ":memory:" for tests.
  static absl::StatusOr<std::unique_ptr<SqliteStore>> Open(
      const std::string& path, int64_t max_events = kDefaultMaxEvents);
  ~SqliteStore() override;

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
  int SchemaVersionForTest();

 private:
  SqliteStore(sqlite3* db, int64_t max_events) : db_(db), max_events_(max_events) {}
  absl::Status Migrate() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status Exec(const char* sql) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<int64_t> PutServiceLocked(const ServiceRecord& record,
                                           int64_t expected_generation,
                                           const RevisionRecord* new_revision)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<int64_t> CurrentGeneration(absl::string_view name) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Drops cached copies of service `name` (and the full list) and of release `release_id`
  // (may be empty). Called with mu_ held, inside the writing transaction.
  void Invalidate(absl::string_view name, absl::string_view release_id)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The cache's epoch, read before a database read that may fill the cache.
  int64_t CacheEpoch();
  absl::StatusOr<ServiceRecord> ReadService(absl::string_view name)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<std::vector<ServiceRecord>> ReadServices() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  absl::StatusOr<Lease> ReadLease() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // OK unless a fence is set and the lease moved on (SetFence).
  absl::Status CheckFence() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  absl::Mutex mu_ ABSL_ACQUIRED_BEFORE(cache_mu_);
  std::string fence_holder_ ABSL_GUARDED_BY(mu_);
  int64_t fence_epoch_ ABSL_GUARDED_BY(mu_) = 0;
  sqlite3* db_ ABSL_GUARDED_BY(mu_);
  const int64_t max_events_;

  absl::Mutex cache_mu_;
  // Bumped by every write; a read fills the cache only if it did not change meanwhile.
  int64_t epoch_ ABSL_GUARDED_BY(cache_mu_) = 0;
  std::map<std::string, ServiceRecord, std::less<>> services_ ABSL_GUARDED_BY(cache_mu_);
  std::optional<std::vector<ServiceRecord>> all_services_ ABSL_GUARDED_BY(cache_mu_);
  std::map<std::string, hosting::internal::ReleaseRecord, std::less<>> releases_
      ABSL_GUARDED_BY(cache_mu_);
};

}  // namespace hosting::controlplane
