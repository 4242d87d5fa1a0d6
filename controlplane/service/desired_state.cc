#include "controlplane/service/desired_state.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "common/status_macros.h"

namespace hosting::controlplane {

void Mutation::Publish(std::string type, std::string message,
                       std::map<std::string, std::string> attributes) {
  hosting::v1::Event e;
  e.set_type(std::move(type));
  e.set_message(std::move(message));
  for (auto& [k, v] : attributes) (*e.mutable_attributes())[k] = std::move(v);
  events.push_back(std::move(e));
}

absl::StatusOr<RevisionRecord> DesiredState::NewRevision(const std::string& name,
                                                         const hosting::v1::ServiceSpec& spec) {
  ASSIGN_OR_RETURN(int64_t last, store_.LastRevision(name));
  return RevisionRecord{name, last + 1, spec, clock_.Now()};
}

absl::StatusOr<ServiceRecord> DesiredState::Mutate(const std::string& name,
                                                   const Mutator& mutate,
                                                   MutateOptions options) {
  for (int attempt = 1;; ++attempt) {
    absl::StatusOr<ServiceRecord> stored = store_.GetService(name);
    if (!stored.ok() && !(options.may_create && absl::IsNotFound(stored.status()))) {
      return stored.status();
    }
    const int64_t stored_generation = stored.ok() ? stored->generation : 0;
    if (options.expected_generation != 0 && options.expected_generation != stored_generation) {
      return absl::AbortedError(absl::StrCat(
          "service '", name, "' is at generation ", stored_generation, ", not the expected ",
          options.expected_generation, ": read it again and retry"));
    }
    ServiceRecord record;
    if (stored.ok()) {
      record = *stored;
    } else {
      record.spec.set_name(name);
      record.created_at = clock_.Now();
    }
    Mutation m;
    RETURN_IF_ERROR(mutate(record, m));
    if (!m.write) return record;
    if (m.revision.has_value()) record.revision = m.revision->revision;
    record.updated_at = clock_.Now();

    const RevisionRecord* revision = m.revision.has_value() ? &*m.revision : nullptr;
    absl::StatusOr<int64_t> generation =
        m.commit ? m.commit(record, stored_generation, revision)
                 : store_.PutService(record, stored_generation, revision);
    const bool lost_race =
        absl::IsAborted(generation.status()) || absl::IsAlreadyExists(generation.status());
    if (lost_race && options.expected_generation == 0 && attempt < kAttempts) continue;
    if (!generation.ok()) return generation.status();
    record.generation = *generation;

    // Committed. Nothing below may turn the call into a failure.
    if (revision != nullptr) {
      const int keep = std::max<int>(
          m.min_revisions_kept, static_cast<int>(record.spec.release().revision_history_limit()));
      if (absl::StatusOr<int> pruned = store_.PruneRevisions(name, keep); !pruned.ok()) {
        LogWarning("old revisions not pruned (retried at the next new revision)",
                   {{"service", name}, {"error", pruned.status().ToString()}});
      }
    }
    for (hosting::v1::Event& e : m.events) {
      e.set_service(name);
      if (e.revision() == 0) e.set_revision(record.revision);
      events_.Publish(std::move(e));
    }
    if (m.changes_what_runs) reconciler_.DesiredStateChanged(name, record.revision);
    return record;
  }
}

absl::StatusOr<ServiceRecord> DesiredState::Delete(const std::string& name) {
  for (int attempt = 1;; ++attempt) {
    ASSIGN_OR_RETURN(ServiceRecord record, store_.GetService(name));
    absl::Status st = store_.DeleteService(name, record.generation);
    if (absl::IsAborted(st) && attempt < kAttempts) continue;
    RETURN_IF_ERROR(st);
    events_.Publish("service.deleted", name, record.revision,
                    absl::StrCat("deleted service '", name, "'; its Swarm services are removed"));
    reconciler_.Enqueue(name);
    return record;
  }
}

}  // namespace hosting::controlplane
