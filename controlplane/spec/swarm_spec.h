#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include "absl/strings/string_view.h"

#include "hosting/v1/service.pb.h"
#include "nlohmann/json.hpp"

namespace hosting::controlplane {

// Labels hosting puts on every Swarm service it owns.
inline constexpr char kLabelService[] = "hosting.service";
inline constexpr char kLabelRevision[] = "hosting.revision";
inline constexpr char kLabelSpecHash[] = "hosting.spec-hash";
// The hostd instance (its store's ID) that owns the Swarm service. A hostd only ever changes or
// removes Swarm services carrying its own ID, so two hostds on one Swarm never fight.
inline constexpr char kLabelController[] = "hosting.controller";
// On a canary's baseline: the revision whose spec it runs.
inline constexpr char kLabelBaselineOf[] = "hosting.baseline-of";

// "<service>-r<revision>".
std::string RevisionServiceName(absl::string_view service, int64_t revision);

// The hosted service and revision a Swarm service name stands for, if it has that shape.
struct RevisionName {
  std::string service;
  int64_t revision;
};
std::optional<RevisionName> ParseRevisionServiceName(absl::string_view swarm_name);

// A stable hash (hex) of everything in the spec that decides what a task runs: the spec without
// replicas and release policy. Two specs with the same hash run the same revision.
std::string TemplateHash(const hosting::v1::ServiceSpec& spec);

// The Docker Engine ServiceSpec (API 1.41) of one revision of a hosted service: replicated, DNS
// round-robin endpoints, host-mode published ports, attached to `network` (plus the spec's own
// networks), labelled for ownership (`controller`) and drift detection. `secret_ids`: the
// Swarm ID of each secret the spec mounts, by name (the engine takes IDs).
nlohmann::json BuildSwarmSpec(const hosting::v1::ServiceSpec& spec, int64_t revision,
                              int32_t replicas, absl::string_view network,
                              absl::string_view controller,
                              const std::map<std::string, std::string>& secret_ids = {});

}  // namespace hosting::controlplane
