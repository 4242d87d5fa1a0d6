#include "controlplane/service_manager.h"

#include <algorithm>
#include <optional>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "controlplane/swarm_spec.h"
#include "controlplane/validation.h"
#include "google/protobuf/util/message_differencer.h"
#include "google/protobuf/util/time_util.h"

namespace hosting::controlplane {
namespace {

using google::protobuf::util::TimeUtil;

google::protobuf::Timestamp ToTimestamp(absl::Time t) {
  return TimeUtil::NanosecondsToTimestamp(absl::ToUnixNanos(t));
}

// Concurrent writers retry a lost compare-and-swap this many times before giving up.
constexpr int kCasAttempts = 5;

}  // namespace

hosting::v1::Service ServiceManager::ToProto(const ServiceRecord& record) {
  hosting::v1::Service s;
  *s.mutable_spec() = record.spec;
  if (record.autoscaling.has_value()) *s.mutable_spec()->mutable_autoscaling() = *record.autoscaling;
  s.set_revision(record.revision);
  s.set_generation(record.generation);
  *s.mutable_created_at() = ToTimestamp(record.created_at);
  *s.mutable_updated_at() = ToTimestamp(record.updated_at);
  return s;
}

absl::StatusOr<hosting::v1::ApplyServiceResponse> ServiceManager::Apply(
    const hosting::v1::ApplyServiceRequest& request) {
  if (!request.has_spec()) {
    return InvalidArgumentWithViolations({{"spec", "required"}});
  }
  RETURN_IF_ERROR(InvalidArgumentWithViolations(ValidateServiceSpec(request.spec())));
  hosting::v1::ServiceSpec requested_spec = request.spec();
  ApplySpecDefaults(requested_spec);
  // The policy is kept beside the spec, not in it (it is not part of what runs).
  std::optional<hosting::v1::AutoscalingPolicy> requested_policy;
  if (requested_spec.has_autoscaling()) {
    requested_policy = requested_spec.autoscaling();
    requested_policy->set_service(requested_spec.name());
    ApplyAutoscalingDefaults(*requested_policy);
    requested_spec.clear_autoscaling();
  }
  const std::string name = requested_spec.name();

  for (int attempt = 0;; ++attempt) {
    absl::StatusOr<ServiceRecord> existing = store_.GetService(name);
    if (!existing.ok() && !absl::IsNotFound(existing.status())) return existing.status();
    const bool exists = existing.ok();
    const int64_t stored_generation = exists ? existing->generation : 0;
    if (request.expected_generation() != 0 && request.expected_generation() != stored_generation) {
      return absl::AbortedError(absl::StrCat(
          "service '", name, "' is at generation ", stored_generation,
          ", not the expected ", request.expected_generation(), ": read it again and re-apply"));
    }

    hosting::v1::ServiceSpec spec = requested_spec;
    const std::optional<hosting::v1::AutoscalingPolicy> policy =
        requested_policy.has_value() ? requested_policy
                                     : (exists ? existing->autoscaling : std::nullopt);
    if (policy.has_value()) {
      // The autoscaler owns the count: an apply only seeds a new service's.
      spec.set_replicas(std::clamp(exists ? existing->spec.replicas() : spec.replicas(),
                                   policy->min_replicas(), policy->max_replicas()));
    }
    const bool policy_changed =
        policy.has_value() != (exists && existing->autoscaling.has_value()) ||
        (policy.has_value() && !google::protobuf::util::MessageDifferencer::Equals(
                                   *policy, *existing->autoscaling));

    hosting::v1::ApplyServiceResponse response;
    response.set_created(!exists);
    if (exists && !policy_changed &&
        google::protobuf::util::MessageDifferencer::Equals(existing->spec, spec)) {
      response.set_changed(false);
      *response.mutable_service() = ToProto(*existing);
      reconciler_.Enqueue(name);  // cheap, and repairs anything drifted meanwhile
      return response;
    }

    ServiceRecord record;
    record.spec = spec;
    record.autoscaling = policy;
    const bool new_revision = !exists || TemplateHash(existing->spec) != TemplateHash(spec);
    if (exists && !existing->rollout.release_id().empty()) {
      if (new_revision) {
        return absl::FailedPreconditionError(absl::StrCat(
            "release ", existing->rollout.release_id(), " of '", name, "' is running: wait for ",
            "it, or abort it (hostctl release abort ", existing->rollout.release_id(),
            "), before applying a change to what runs"));
      }
      record.rollout = existing->rollout;  // a scale or policy change: the release goes on
    }
    std::optional<RevisionRecord> revision;
    if (new_revision) {
      ASSIGN_OR_RETURN(int64_t last, store_.LastRevision(name));
      record.revision = last + 1;
      revision = RevisionRecord{name, record.revision, spec, clock_.Now()};
    } else {
      record.revision = existing->revision;
    }
    response.set_changed(true);
    response.set_revision_created(new_revision);
    if (request.dry_run()) {
      record.generation = stored_generation;
      record.created_at = exists ? existing->created_at : clock_.Now();
      record.updated_at = clock_.Now();
      *response.mutable_service() = ToProto(record);
      return response;
    }

    absl::StatusOr<int64_t> generation =
        store_.PutService(record, stored_generation, revision ? &*revision : nullptr);
    if ((absl::IsAborted(generation.status()) || absl::IsAlreadyExists(generation.status())) &&
        request.expected_generation() == 0 && attempt + 1 < kCasAttempts) {
      continue;  // another writer won the race; re-read and decide again
    }
    if (!generation.ok()) return generation.status();
    if (new_revision) {
      ASSIGN_OR_RETURN(int pruned, store_.PruneRevisions(
                                       name, static_cast<int>(spec.release().revision_history_limit())));
      (void)pruned;
    }
    ASSIGN_OR_RETURN(ServiceRecord stored, store_.GetService(name));
    *response.mutable_service() = ToProto(stored);

    events_.Publish("service.applied", name, stored.revision,
                    absl::StrCat(exists ? "updated" : "created", " service '", name, "': ",
                                 spec.image(), " x", spec.replicas()),
                    {{"generation", std::to_string(stored.generation)},
                     {"image", spec.image()},
                     {"replicas", std::to_string(spec.replicas())}});
    if (policy_changed && policy.has_value()) {
      events_.Publish("autoscale.policy_set", name, stored.revision,
                      absl::StrCat("autoscaling policy of '", name, "' set with the spec: ",
                                   policy->min_replicas(), "..", policy->max_replicas(),
                                   " replicas"));
    }
    if (new_revision) {
      events_.Publish("revision.created", name, stored.revision,
                      absl::StrCat("revision ", stored.revision, " of '", name, "' runs ",
                                   spec.image()),
                      {{"spec_hash", TemplateHash(spec)}});
    }
    reconciler_.DesiredStateChanged(name, stored.revision);
    return response;
  }
}

absl::StatusOr<hosting::v1::Service> ServiceManager::Get(const std::string& name) {
  RETURN_IF_ERROR(InvalidArgumentWithViolations(ValidateServiceName(name, "name")));
  ASSIGN_OR_RETURN(ServiceRecord record, store_.GetService(name));
  hosting::v1::Service service = ToProto(record);
  absl::StatusOr<hosting::v1::ServiceStatus> status = reconciler_.Observe(record);
  if (!status.ok()) {
    return absl::Status(status.status().code(),
                        absl::StrCat("cannot observe service '", name, "' (desired: revision ",
                                     record.revision, ", ", record.spec.image(), " x",
                                     record.spec.replicas(), "): ", status.status().message()));
  }
  *service.mutable_status() = *std::move(status);
  return service;
}

absl::StatusOr<std::vector<hosting::v1::Service>> ServiceManager::List() {
  ASSIGN_OR_RETURN(std::vector<ServiceRecord> records, store_.ListServices());
  ASSIGN_OR_RETURN(auto statuses, reconciler_.ObserveAll(records));
  std::vector<hosting::v1::Service> out;
  for (const auto& r : records) {
    hosting::v1::Service s = ToProto(r);
    *s.mutable_status() = statuses[r.spec.name()];
    out.push_back(std::move(s));
  }
  return out;
}

absl::StatusOr<hosting::v1::Service> ServiceManager::Delete(const std::string& name) {
  RETURN_IF_ERROR(InvalidArgumentWithViolations(ValidateServiceName(name, "name")));
  for (int attempt = 0;; ++attempt) {
    ASSIGN_OR_RETURN(ServiceRecord record, store_.GetService(name));
    absl::Status st = store_.DeleteService(name, record.generation);
    if (absl::IsAborted(st) && attempt + 1 < kCasAttempts) continue;
    RETURN_IF_ERROR(st);
    events_.Publish("service.deleted", name, record.revision,
                    absl::StrCat("deleted service '", name, "'; its Swarm services are removed"));
    reconciler_.Enqueue(name);
    return ToProto(record);
  }
}

absl::StatusOr<ServiceRecord> ServiceManager::Resize(
    const std::string& name, int32_t expected_from, int32_t replicas,
    const std::string& event_type, const std::string& message,
    std::map<std::string, std::string> attributes) {
  ASSIGN_OR_RETURN(ServiceRecord record, store_.GetService(name));
  if (record.spec.replicas() != expected_from) {
    return absl::AbortedError(absl::StrCat("service '", name, "' has ", record.spec.replicas(),
                                           " replicas, not the expected ", expected_from));
  }
  if (expected_from == replicas) return record;
  record.spec.set_replicas(replicas);
  // A warm revision kept after a blue-green switch: the current one takes the new count.
  // (During a release, the release itself follows spec.replicas.)
  if (record.rollout.release_id().empty() && !record.rollout.replicas().empty()) {
    (*record.rollout.mutable_replicas())[record.revision] = replicas;
  }
  ASSIGN_OR_RETURN(int64_t generation, store_.PutService(record, record.generation, nullptr));
  record.generation = generation;
  attributes["from"] = std::to_string(expected_from);
  attributes["to"] = std::to_string(replicas);
  events_.Publish(event_type, name, record.revision, message, std::move(attributes));
  reconciler_.DesiredStateChanged(name, record.revision);
  return record;
}

absl::StatusOr<hosting::v1::Service> ServiceManager::Scale(
    const hosting::v1::ScaleServiceRequest& request) {
  std::vector<FieldViolation> v = ValidateServiceName(request.name(), "name");
  if (request.replicas() < 0 || request.replicas() > 1000) {
    v.push_back({"replicas", absl::StrCat("must be between 0 and 1000, got ", request.replicas())});
  }
  RETURN_IF_ERROR(InvalidArgumentWithViolations(v));
  for (int attempt = 0;; ++attempt) {
    ASSIGN_OR_RETURN(ServiceRecord record, store_.GetService(request.name()));
    const int32_t from = record.spec.replicas();
    if (record.autoscaling.has_value() && !request.force()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "service '", request.name(), "' is autoscaled (", record.autoscaling->min_replicas(),
          "..", record.autoscaling->max_replicas(), " replicas, now ", from,
          "): change the policy (hostctl autoscale set ", request.name(),
          " --min/--max), delete it (hostctl autoscale delete ", request.name(),
          "), or scale with --force (the autoscaler may scale it again at its next evaluation)"));
    }
    if (from != request.replicas()) {
      std::map<std::string, std::string> attrs;
      if (record.autoscaling.has_value()) attrs["forced"] = "true";
      absl::StatusOr<ServiceRecord> resized = Resize(
          request.name(), from, request.replicas(), "service.scaled",
          absl::StrCat("scaled '", request.name(), "' from ", from, " to ", request.replicas(),
                       " replicas", record.autoscaling.has_value() ? " (forced, autoscaled)" : ""),
          std::move(attrs));
      if (absl::IsAborted(resized.status()) && attempt + 1 < kCasAttempts) continue;
      if (!resized.ok()) return resized.status();
    }
    ASSIGN_OR_RETURN(ServiceRecord stored, store_.GetService(request.name()));
    hosting::v1::Service service = ToProto(stored);
    if (absl::StatusOr<hosting::v1::ServiceStatus> status = reconciler_.Observe(stored);
        status.ok()) {
      *service.mutable_status() = *std::move(status);
    }
    return service;
  }
}

}  // namespace hosting::controlplane
