#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "controlplane/store/store.h"

namespace hosting::controlplane {

// A Store that injects faults into a real one (as LevelDB's fault-injection Env wraps the real
// Env): failures of chosen operations, a whole store that is unavailable, and another writer
// that wins a race just before an operation runs. Unit tests only.
class FaultStore final : public Store {
 public:
  enum class Op {
    kGetService, kListServices, kPutService, kDeleteService, kListRevisions, kPruneRevisions,
    kLastRevision, kCreateRelease, kUpdateRelease, kGetRelease, kListReleases,
    kListActiveReleases, kInstanceId, kAppendEvent, kListEvents, kLease, kTokens, kAudit,
    kCreateRun, kUpdateRun, kGetRun, kListRuns,
  };

  explicit FaultStore(std::unique_ptr<Store> base) : base_(std::move(base)) {}

  // The next `times` calls of `op` fail with `status` and change nothing.
  void FailNext(Op op, absl::Status status, int times = 1);
  // Every call fails with UNAVAILABLE while set.
  void SetUnavailable(bool unavailable);
  // Before each of the next `times` calls of `op`, `writer` runs against the real store (a
  // concurrent writer that commits first, so the call's compare-and-swap loses).
  void InterleaveBeforeNext(Op op, std::function<void(Store&)> writer, int times = 1);
  // Runs before every SetFence reaches the real store (set before the store is shared).
  void OnSetFence(std::function<void(int64_t epoch)> hook) { on_set_fence_ = std::move(hook); }
  // Calls of `op` so far (including failed ones).
  int calls(Op op);

  Store& base() { return *base_; }

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

 private:
  struct Interleave {
    std::function<void(Store&)> writer;
    int times = 0;
  };
  // Counts the call, runs an interleaved writer, and returns the injected fault if any.
  absl::Status Enter(Op op);

  std::unique_ptr<Store> base_;
  std::function<void(int64_t)> on_set_fence_;
  absl::Mutex mu_;
  bool unavailable_ ABSL_GUARDED_BY(mu_) = false;
  std::map<Op, std::vector<absl::Status>> failures_ ABSL_GUARDED_BY(mu_);
  std::map<Op, Interleave> interleaves_ ABSL_GUARDED_BY(mu_);
  std::map<Op, int> calls_ ABSL_GUARDED_BY(mu_);
};

}  // namespace hosting::controlplane
