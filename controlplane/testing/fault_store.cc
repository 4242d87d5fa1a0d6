#include "controlplane/testing/fault_store.h"

#include <utility>

namespace hosting::controlplane {

void FaultStore::FailNext(Op op, absl::Status status, int times) {
  absl::MutexLock lock(&mu_);
  for (int i = 0; i < times; ++i) failures_[op].push_back(status);
}

void FaultStore::SetUnavailable(bool unavailable) {
  absl::MutexLock lock(&mu_);
  unavailable_ = unavailable;
}

void FaultStore::InterleaveBeforeNext(Op op, std::function<void(Store&)> writer, int times) {
  absl::MutexLock lock(&mu_);
  interleaves_[op] = Interleave{std::move(writer), times};
}

int FaultStore::calls(Op op) {
  absl::MutexLock lock(&mu_);
  return calls_[op];
}

absl::Status FaultStore::Enter(Op op) {
  std::function<void(Store&)> writer;
  {
    absl::MutexLock lock(&mu_);
    ++calls_[op];
    if (unavailable_) return absl::UnavailableError("store unavailable (injected)");
    auto f = failures_.find(op);
    if (f != failures_.end() && !f->second.empty()) {
      absl::Status st = f->second.front();
      f->second.erase(f->second.begin());
      return st;
    }
    auto i = interleaves_.find(op);
    if (i != interleaves_.end() && i->second.times > 0) {
      --i->second.times;
      writer = i->second.writer;
    }
  }
  if (writer) writer(*base_);  // outside the lock: it writes through the real store
  return absl::OkStatus();
}

absl::StatusOr<ServiceRecord> FaultStore::GetService(absl::string_view name) {
  if (absl::Status st = Enter(Op::kGetService); !st.ok()) return st;
  return base_->GetService(name);
}

absl::StatusOr<std::vector<ServiceRecord>> FaultStore::ListServices() {
  if (absl::Status st = Enter(Op::kListServices); !st.ok()) return st;
  return base_->ListServices();
}

absl::StatusOr<int64_t> FaultStore::PutService(const ServiceRecord& record, int64_t expected_generation,
                                      const RevisionRecord* new_revision) {
  if (absl::Status st = Enter(Op::kPutService); !st.ok()) return st;
  return base_->PutService(record, expected_generation, new_revision);
}

absl::Status FaultStore::DeleteService(absl::string_view name, int64_t expected_generation) {
  if (absl::Status st = Enter(Op::kDeleteService); !st.ok()) return st;
  return base_->DeleteService(name, expected_generation);
}

absl::StatusOr<std::vector<RevisionRecord>> FaultStore::ListRevisions(absl::string_view service) {
  if (absl::Status st = Enter(Op::kListRevisions); !st.ok()) return st;
  return base_->ListRevisions(service);
}

absl::StatusOr<int> FaultStore::PruneRevisions(absl::string_view service, int keep) {
  if (absl::Status st = Enter(Op::kPruneRevisions); !st.ok()) return st;
  return base_->PruneRevisions(service, keep);
}

absl::StatusOr<int64_t> FaultStore::LastRevision(absl::string_view service) {
  if (absl::Status st = Enter(Op::kLastRevision); !st.ok()) return st;
  return base_->LastRevision(service);
}

absl::StatusOr<hosting::internal::ReleaseRecord> FaultStore::CreateRelease(const ServiceRecord& service, int64_t expected_generation,
    const RevisionRecord* new_revision, hosting::internal::ReleaseRecord release) {
  if (absl::Status st = Enter(Op::kCreateRelease); !st.ok()) return st;
  return base_->CreateRelease(service, expected_generation, new_revision, std::move(release));
}

absl::StatusOr<Store::ReleaseWrite> FaultStore::UpdateRelease(const hosting::internal::ReleaseRecord& release, const ServiceRecord* service,
    int64_t expected_generation) {
  if (absl::Status st = Enter(Op::kUpdateRelease); !st.ok()) return st;
  return base_->UpdateRelease(release, service, expected_generation);
}

absl::StatusOr<hosting::internal::ReleaseRecord> FaultStore::GetRelease(absl::string_view id) {
  if (absl::Status st = Enter(Op::kGetRelease); !st.ok()) return st;
  return base_->GetRelease(id);
}

absl::StatusOr<std::vector<hosting::internal::ReleaseRecord>> FaultStore::ListReleases(absl::string_view service, int limit) {
  if (absl::Status st = Enter(Op::kListReleases); !st.ok()) return st;
  return base_->ListReleases(service, limit);
}

absl::StatusOr<std::vector<hosting::internal::ReleaseRecord>> FaultStore::ListActiveReleases() {
  if (absl::Status st = Enter(Op::kListActiveReleases); !st.ok()) return st;
  return base_->ListActiveReleases();
}

absl::StatusOr<RunRecord> FaultStore::CreateRun(hosting::v1::RunbookRun run) {
  if (absl::Status st = Enter(Op::kCreateRun); !st.ok()) return st;
  return base_->CreateRun(std::move(run));
}

absl::StatusOr<int64_t> FaultStore::UpdateRun(const RunRecord& record) {
  if (absl::Status st = Enter(Op::kUpdateRun); !st.ok()) return st;
  return base_->UpdateRun(record);
}

absl::StatusOr<RunRecord> FaultStore::GetRun(absl::string_view id) {
  if (absl::Status st = Enter(Op::kGetRun); !st.ok()) return st;
  return base_->GetRun(id);
}

absl::StatusOr<std::vector<RunRecord>> FaultStore::ListRuns(absl::string_view runbook,
                                                            bool active_only, int limit) {
  if (absl::Status st = Enter(Op::kListRuns); !st.ok()) return st;
  return base_->ListRuns(runbook, active_only, limit);
}

absl::StatusOr<std::string> FaultStore::InstanceId() {
  if (absl::Status st = Enter(Op::kInstanceId); !st.ok()) return st;
  return base_->InstanceId();
}

absl::StatusOr<Store::Lease> FaultStore::AcquireLease(absl::string_view holder,
                                                       absl::Duration ttl) {
  if (absl::Status st = Enter(Op::kLease); !st.ok()) return st;
  return base_->AcquireLease(holder, ttl);
}

absl::Status FaultStore::ReleaseLease(absl::string_view holder, int64_t epoch) {
  if (absl::Status st = Enter(Op::kLease); !st.ok()) return st;
  return base_->ReleaseLease(holder, epoch);
}

void FaultStore::SetFence(absl::string_view holder, int64_t epoch) {
  if (on_set_fence_) on_set_fence_(epoch);
  base_->SetFence(holder, epoch);
}

absl::Status FaultStore::CreateToken(const hosting::internal::TokenRecord& token) {
  if (absl::Status st = Enter(Op::kTokens); !st.ok()) return st;
  return base_->CreateToken(token);
}

absl::StatusOr<hosting::internal::TokenRecord> FaultStore::FindToken(
    absl::string_view secret_sha256) {
  if (absl::Status st = Enter(Op::kTokens); !st.ok()) return st;
  return base_->FindToken(secret_sha256);
}

absl::StatusOr<std::vector<hosting::internal::TokenRecord>> FaultStore::ListTokens() {
  if (absl::Status st = Enter(Op::kTokens); !st.ok()) return st;
  return base_->ListTokens();
}

absl::StatusOr<hosting::internal::TokenRecord> FaultStore::RevokeToken(absl::string_view accessor,
                                                                       absl::Time at) {
  if (absl::Status st = Enter(Op::kTokens); !st.ok()) return st;
  return base_->RevokeToken(accessor, at);
}

absl::StatusOr<int64_t> FaultStore::AppendAudit(const hosting::v1::AuditEntry& entry) {
  if (absl::Status st = Enter(Op::kAudit); !st.ok()) return st;
  return base_->AppendAudit(entry);
}

absl::StatusOr<std::vector<hosting::v1::AuditEntry>> FaultStore::ListAudit(
    absl::Time since, absl::string_view service, int limit) {
  if (absl::Status st = Enter(Op::kAudit); !st.ok()) return st;
  return base_->ListAudit(since, service, limit);
}

absl::StatusOr<int64_t> FaultStore::AppendEvent(const hosting::v1::Event& event) {
  if (absl::Status st = Enter(Op::kAppendEvent); !st.ok()) return st;
  return base_->AppendEvent(event);
}

absl::StatusOr<std::vector<hosting::v1::Event>> FaultStore::ListEvents(int64_t after_sequence, int limit) {
  if (absl::Status st = Enter(Op::kListEvents); !st.ok()) return st;
  return base_->ListEvents(after_sequence, limit);
}

}  // namespace hosting::controlplane
