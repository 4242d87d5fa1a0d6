#include "controlplane/service/service_manager.h"

#include <algorithm>
#include <optional>

#include "absl/strings/str_cat.h"
#include "common/proto_time.h"
#include "common/status_macros.h"
#include "controlplane/spec/swarm_spec.h"
#include "controlplane/spec/validation.h"
#include "google/protobuf/util/message_differencer.h"

namespace hosting::controlplane {

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

  hosting::v1::ApplyServiceResponse response;
  // The record as a dry run would have written it.
  std::optional<ServiceRecord> planned;
  auto mutate = [&](ServiceRecord& record, Mutation& m) -> absl::Status {
    const bool exists = record.generation != 0;
    hosting::v1::ServiceSpec spec = requested_spec;
    const std::optional<hosting::v1::AutoscalingPolicy> policy =
        requested_policy.has_value() ? requested_policy : record.autoscaling;
    if (policy.has_value()) {
      // The autoscaler owns the count: an apply only seeds a new service's.
      spec.set_replicas(std::clamp(exists ? record.spec.replicas() : spec.replicas(),
                                   policy->min_replicas(), policy->max_replicas()));
    }
    const bool policy_changed =
        policy.has_value() != record.autoscaling.has_value() ||
        (policy.has_value() &&
         !google::protobuf::util::MessageDifferencer::Equals(*policy, *record.autoscaling));
    response.set_created(!exists);
    if (exists && !policy_changed &&
        google::protobuf::util::MessageDifferencer::Equals(record.spec, spec)) {
      response.set_changed(false);
      m.write = false;
      return absl::OkStatus();
    }
    const bool new_revision = !exists || TemplateHash(record.spec) != TemplateHash(spec);
    if (exists && !record.rollout.release_id().empty() && new_revision) {
      return absl::FailedPreconditionError(absl::StrCat(
          "release ", record.rollout.release_id(), " of '", name, "' is running: wait for ",
          "it, or abort it (hostctl release abort ", record.rollout.release_id(),
          "), before applying a change to what runs"));
    }
    // A scale or policy change during a release keeps its rollout: the release goes on.
    if (!exists || record.rollout.release_id().empty()) record.rollout.Clear();
    record.spec = spec;
    record.autoscaling = policy;
    if (new_revision) {
      ASSIGN_OR_RETURN(RevisionRecord revision, state_.NewRevision(name, spec));
      m.revision = std::move(revision);
    }
    response.set_changed(true);
    response.set_revision_created(new_revision);
    if (request.dry_run()) {
      planned = record;
      if (new_revision) planned->revision = m.revision->revision;
      planned->updated_at = clock_.Now();
      m.write = false;
      return absl::OkStatus();
    }
    const int64_t revision = new_revision ? m.revision->revision : record.revision;
    m.Publish("service.applied",
              absl::StrCat(exists ? "updated" : "created", " service '", name, "': ",
                           spec.image(), " x", spec.replicas()),
              {{"generation", std::to_string(record.generation + 1)},
               {"image", spec.image()},
               {"replicas", std::to_string(spec.replicas())}});
    if (policy_changed && policy.has_value()) {
      m.Publish("autoscale.policy_set",
                absl::StrCat("autoscaling policy of '", name, "' set with the spec: ",
                             policy->min_replicas(), "..", policy->max_replicas(), " replicas"));
    }
    if (new_revision) {
      m.Publish("revision.created",
                absl::StrCat("revision ", revision, " of '", name, "' runs ", spec.image()),
                {{"spec_hash", TemplateHash(spec)}});
    }
    return absl::OkStatus();
  };
  MutateOptions options;
  options.may_create = true;
  options.expected_generation = request.expected_generation();
  ASSIGN_OR_RETURN(ServiceRecord stored, state_.Mutate(name, mutate, options));
  if (!response.changed()) reconciler_.Enqueue(name);  // cheap, and repairs any drift
  *response.mutable_service() = ToProto(planned.has_value() ? *planned : stored);
  return response;
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
  ASSIGN_OR_RETURN(ServiceRecord record, state_.Delete(name));
  return ToProto(record);
}

namespace {

// Sets the replicas in `record` and says so in `m`. A running release splits the new size
// over its revisions itself; a warm revision kept after a blue-green switch is left alone
// while the current one takes the new count.
void SetReplicas(ServiceRecord& record, int32_t replicas, Mutation& m, std::string event_type,
                 std::string message, std::map<std::string, std::string> attributes) {
  attributes["from"] = std::to_string(record.spec.replicas());
  attributes["to"] = std::to_string(replicas);
  record.spec.set_replicas(replicas);
  if (record.rollout.release_id().empty() && !record.rollout.replicas().empty()) {
    (*record.rollout.mutable_replicas())[record.revision] = replicas;
  }
  m.Publish(std::move(event_type), std::move(message), std::move(attributes));
}

}  // namespace

absl::StatusOr<ServiceRecord> ServiceManager::Resize(
    const std::string& name, int32_t expected_from, int32_t replicas,
    const std::string& event_type, const std::string& message,
    std::map<std::string, std::string> attributes) {
  return state_.Mutate(name, [&](ServiceRecord& record, Mutation& m) -> absl::Status {
    if (record.spec.replicas() != expected_from) {
      return absl::AbortedError(absl::StrCat("service '", name, "' has ", record.spec.replicas(),
                                             " replicas, not the expected ", expected_from));
    }
    if (expected_from == replicas) {
      m.write = false;
      return absl::OkStatus();
    }
    SetReplicas(record, replicas, m, event_type, message, attributes);
    return absl::OkStatus();
  });
}

absl::StatusOr<hosting::v1::Service> ServiceManager::Scale(
    const hosting::v1::ScaleServiceRequest& request) {
  std::vector<FieldViolation> v = ValidateServiceName(request.name(), "name");
  if (request.replicas() < 0 || request.replicas() > 1000) {
    v.push_back({"replicas", absl::StrCat("must be between 0 and 1000, got ", request.replicas())});
  }
  RETURN_IF_ERROR(InvalidArgumentWithViolations(v));
  const std::string& name = request.name();
  ASSIGN_OR_RETURN(
      ServiceRecord stored,
      state_.Mutate(name, [&](ServiceRecord& record, Mutation& m) -> absl::Status {
        const int32_t from = record.spec.replicas();
        if (record.autoscaling.has_value() && !request.force()) {
          return absl::FailedPreconditionError(absl::StrCat(
              "service '", name, "' is autoscaled (", record.autoscaling->min_replicas(), "..",
              record.autoscaling->max_replicas(), " replicas, now ", from,
              "): change the policy (hostctl autoscale set ", name,
              " --min/--max), delete it (hostctl autoscale delete ", name,
              "), or scale with --force (the autoscaler may scale it again at its next "
              "evaluation)"));
        }
        if (from == request.replicas()) {
          m.write = false;
          return absl::OkStatus();
        }
        std::map<std::string, std::string> attrs;
        if (record.autoscaling.has_value()) attrs["forced"] = "true";
        SetReplicas(record, request.replicas(), m, "service.scaled",
                    absl::StrCat("scaled '", name, "' from ", from, " to ", request.replicas(),
                                 " replicas",
                                 record.autoscaling.has_value() ? " (forced, autoscaled)" : ""),
                    std::move(attrs));
        return absl::OkStatus();
      }));
  hosting::v1::Service service = ToProto(stored);
  if (absl::StatusOr<hosting::v1::ServiceStatus> status = reconciler_.Observe(stored);
      status.ok()) {
    *service.mutable_status() = *std::move(status);
  }
  return service;
}

}  // namespace hosting::controlplane
