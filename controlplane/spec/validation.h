#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "hosting/v1/service.pb.h"

namespace hosting::controlplane {

struct FieldViolation {
  std::string field;        // "spec.ports[0].container_port"
  std::string description;  // what is wrong, for people
  bool operator==(const FieldViolation&) const = default;
};

// Checks a ServiceSpec; returns every violation found (empty when valid). Field paths start at
// `prefix` (e.g. "spec").
std::vector<FieldViolation> ValidateServiceSpec(const hosting::v1::ServiceSpec& spec,
                                                const std::string& prefix = "spec");

// Checks a release policy (in a spec or a StartReleaseRequest); `field` names it.
// The metrics the statistical judge compares (JudgeSpec.critical and dry_run name them).
const std::vector<std::string>& JudgeMetricNames();

std::vector<FieldViolation> ValidateReleasePolicy(const hosting::v1::ReleasePolicy& policy,
                                                  const std::string& field);

// Checks an autoscaling policy; `field` names it ("policy", "spec.autoscaling").
std::vector<FieldViolation> ValidateAutoscalingPolicy(const hosting::v1::AutoscalingPolicy& policy,
                                                      const std::string& field);

// Fills the policy's defaults: tolerance 0.1, scale-down stabilization 300 s, evaluation every
// 5 s, rate limits selecting "max". Call after validation.
void ApplyAutoscalingDefaults(hosting::v1::AutoscalingPolicy& policy);

// Checks a service name alone (also used for Get/Delete/Scale requests).
std::vector<FieldViolation> ValidateServiceName(const std::string& name, const std::string& field);

// INVALID_ARGUMENT whose message lists the violations and whose payload carries them as a
// google.rpc.BadRequest, which the gRPC layer forwards as error details. OK when empty.
absl::Status InvalidArgumentWithViolations(const std::vector<FieldViolation>& violations);

// The type URL under which the BadRequest payload is stored in an absl::Status.
inline constexpr char kBadRequestTypeUrl[] = "type.googleapis.com/google.rpc.BadRequest";

// Fills defaults that matter for what runs (so that an omitted value and its default produce
// the same revision). Call after validation.
void ApplySpecDefaults(hosting::v1::ServiceSpec& spec);

}  // namespace hosting::controlplane
