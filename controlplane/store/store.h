#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include "absl/strings/string_view.h"
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "controlplane/store/records.h"
#include "hosting/internal/state.pb.h"
#include "hosting/v1/autoscaling.pb.h"
#include "hosting/v1/cluster.pb.h"
#include "hosting/v1/service.pb.h"

namespace hosting::controlplane {

// Durable state of hostd. Every implementation passes store_conformance_test.
// Writes are compare-and-swap on ServiceRecord::generation: a write with a stale expectation
// fails with ABORTED and changes nothing; a write that succeeds bumps it by exactly one.
class Store {
 public:
  virtual ~Store() = default;

  // NOT_FOUND when there is no such service.
  virtual absl::StatusOr<ServiceRecord> GetService(absl::string_view name) = 0;
  // Sorted by name.
  virtual absl::StatusOr<std::vector<ServiceRecord>> ListServices() = 0;
  // Writes `record` when the stored generation equals `expected_generation` (0: the service must
  // not exist). When `new_revision` is given it is stored in the same transaction. Returns the
  // new generation.
  virtual absl::StatusOr<int64_t> PutService(const ServiceRecord& record,
                                             int64_t expected_generation,
                                             const RevisionRecord* new_revision) = 0;
  // Deletes the service and its revisions when the stored generation matches.
  virtual absl::Status DeleteService(absl::string_view name, int64_t expected_generation) = 0;

  // Newest first.
  virtual absl::StatusOr<std::vector<RevisionRecord>> ListRevisions(absl::string_view service) = 0;
  // Keeps the newest `keep` revisions of the service; returns how many were deleted.
  virtual absl::StatusOr<int> PruneRevisions(absl::string_view service, int keep) = 0;
  // The highest revision ever stored for the service, including deleted history (0 if none).
  virtual absl::StatusOr<int64_t> LastRevision(absl::string_view service) = 0;

  // Starts a release: writes `service` (compare-and-swap on its generation, with
  // `new_revision` when given) and inserts `release` in one transaction. The store assigns the
  // release's sequence, its ID "<service>-<sequence>" (also written to the service's
  // rollout.release_id) and version 1, and returns it.
  // FAILED_PRECONDITION naming the running release when the service has one.
  virtual absl::StatusOr<hosting::internal::ReleaseRecord> CreateRelease(
      const ServiceRecord& service, int64_t expected_generation,
      const RevisionRecord* new_revision, hosting::internal::ReleaseRecord release) = 0;
  struct ReleaseWrite {
    int64_t release_version = 0;
    // The service's new generation; 0 when no service was written.
    int64_t service_generation = 0;
  };
  // Writes `release` when the stored version equals release.version (ABORTED otherwise) and,
  // when `service` is given, the service record under its own compare-and-swap, atomically.
  virtual absl::StatusOr<ReleaseWrite> UpdateRelease(const hosting::internal::ReleaseRecord& release,
                                                     const ServiceRecord* service,
                                                     int64_t expected_generation) = 0;
  // NOT_FOUND when there is no such release.
  virtual absl::StatusOr<hosting::internal::ReleaseRecord> GetRelease(absl::string_view id) = 0;
  // Newest first; all services when `service` is empty.
  virtual absl::StatusOr<std::vector<hosting::internal::ReleaseRecord>> ListReleases(
      absl::string_view service, int limit) = 0;
  // Releases not in a terminal state, oldest first.
  virtual absl::StatusOr<std::vector<hosting::internal::ReleaseRecord>> ListActiveReleases() = 0;

  // A random ID made when the store was created; it names the hostd instance that owns the
  // Swarm services made from this store (label hosting.controller).
  virtual absl::StatusOr<std::string> InstanceId() = 0;

  // The leader lease, one per store: several hostd on one store elect their leader with it.
  struct Lease {
    std::string holder;     // empty: never taken
    int64_t epoch = 0;      // bumped whenever the lease is taken after it lapsed or changed hands
    absl::Time expires_at;  // by the store's clock
    absl::Time now;         // the store's clock when this was read
  };
  // Takes or renews the lease for `holder` for `ttl`, by the store's clock, when it is free,
  // lapsed or already `holder`'s (a renewal keeps the epoch). Returns the lease as it stands
  // afterwards: held by someone else when it was not taken.
  virtual absl::StatusOr<Lease> AcquireLease(absl::string_view holder, absl::Duration ttl) = 0;
  // Ends the lease at once if `holder` still holds it at `epoch` (a clean step-down).
  virtual absl::Status ReleaseLease(absl::string_view holder, int64_t epoch) = 0;
  // Fencing: from now on, a write of desired state (services, revisions, releases) commits
  // only while `holder` holds an unexpired lease at `epoch`, checked inside the write's own
  // transaction; UNAVAILABLE naming the current holder otherwise. Epoch 0: no fence (a single
  // hostd). Events are not fenced: they are facts any hostd may report.
  virtual void SetFence(absl::string_view holder, int64_t epoch) = 0;

  // API tokens. Only the SHA-256 of a secret is kept. Not fenced: any hostd sharing the store
  // serves the Auth API. ALREADY_EXISTS when the accessor or the hash is taken.
  virtual absl::Status CreateToken(const hosting::internal::TokenRecord& token) = 0;
  // The token whose secret hashes to `secret_sha256`, revoked or expired ones too (the caller
  // judges); NOT_FOUND when there is none.
  virtual absl::StatusOr<hosting::internal::TokenRecord> FindToken(
      absl::string_view secret_sha256) = 0;
  // Every token, oldest first.
  virtual absl::StatusOr<std::vector<hosting::internal::TokenRecord>> ListTokens() = 0;
  // Marks the token revoked at `at` (a revoked token keeps its first revocation time) and
  // returns it; NOT_FOUND when no token has this accessor.
  virtual absl::StatusOr<hosting::internal::TokenRecord> RevokeToken(absl::string_view accessor,
                                                                     absl::Time at) = 0;

  // The audit trail. Appends an entry (the store assigns its sequence) and keeps the newest
  // max entries; not fenced (any hostd records what it served).
  virtual absl::StatusOr<int64_t> AppendAudit(const hosting::v1::AuditEntry& entry) = 0;
  // Newest first: at most `limit`, at or after `since`, naming `service` when not empty.
  virtual absl::StatusOr<std::vector<hosting::v1::AuditEntry>> ListAudit(
      absl::Time since, absl::string_view service, int limit) = 0;

  // Runbook runs. CreateRun stores a new run: the store assigns its ID "<runbook>-<sequence>"
  // and version 1. FAILED_PRECONDITION naming the run in progress when a run of the same
  // runbook and target has not ended. Fenced, like every write of desired state.
  virtual absl::StatusOr<RunRecord> CreateRun(hosting::v1::RunbookRun run) = 0;
  // Writes the run when the stored version equals record.version (ABORTED otherwise, NOT_FOUND
  // when there is no such run); returns the new version. Fenced.
  virtual absl::StatusOr<int64_t> UpdateRun(const RunRecord& record) = 0;
  // NOT_FOUND when there is no such run.
  virtual absl::StatusOr<RunRecord> GetRun(absl::string_view id) = 0;
  // Newest first, at most `limit`: one runbook's (all when empty), only those not ended when
  // `active_only`.
  virtual absl::StatusOr<std::vector<RunRecord>> ListRuns(absl::string_view runbook,
                                                          bool active_only, int limit) = 0;
  // Appends to the event log; assigns and returns the event's sequence.
  virtual absl::StatusOr<int64_t> AppendEvent(const hosting::v1::Event& event) = 0;
  // Events with sequence > after_sequence, oldest first, at most `limit`.
  virtual absl::StatusOr<std::vector<hosting::v1::Event>> ListEvents(int64_t after_sequence,
                                                                     int limit) = 0;
};

// Opens the store a URL names: "sqlite:///absolute/path.db" (created when missing), or a
// PostgreSQL URL "postgres://user@host[:port][,host2[:port]]/db[?params]" (the schema
// `hosting` is created and migrated).
absl::StatusOr<std::unique_ptr<Store>> OpenStore(absl::string_view url);

}  // namespace hosting::controlplane
