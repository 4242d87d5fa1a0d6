#pragma once

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>

#include "absl/time/time.h"
#include "hosting/internal/state.pb.h"
#include "hosting/v1/autoscaling.pb.h"
#include "hosting/v1/runbooks.pb.h"
#include "hosting/v1/service.pb.h"

// The records the Store keeps, as plain values: what the pure logic above the store (the
// release machine, validation) takes and returns without linking a store implementation.
namespace hosting::controlplane {

// The desired state of one hosted service.
struct ServiceRecord {
  hosting::v1::ServiceSpec spec;
  // The revision the spec runs as.
  int64_t revision = 0;
  // Version of the record; the store bumps it on every write (compare-and-swap).
  int64_t generation = 0;
  absl::Time created_at;
  absl::Time updated_at;
  // How revisions share the service while a release runs (empty otherwise).
  hosting::internal::Rollout rollout;
  // The autoscaling policy, when the service has one.
  std::optional<hosting::v1::AutoscalingPolicy> autoscaling;
};

// The highest revision number `r` names: its own, or one its rollout runs beyond it (a
// canary's baseline, which no stored revision has). Stores keep every number up to it from
// being given out again (Store::LastRevision).
inline int64_t HighestRevisionNamed(const ServiceRecord& r) {
  int64_t highest = r.revision;
  for (const auto& [revision, replicas] : r.rollout.replicas()) {
    highest = std::max(highest, revision);
  }
  return highest;
}

// The revision whose spec `revision` of `r` runs: its own, or for a canary's baseline
// (Rollout.baseline_of) the revision it is a fresh copy of.
inline int64_t SpecRevision(const ServiceRecord& r, int64_t revision) {
  const auto it = r.rollout.baseline_of().find(revision);
  return it == r.rollout.baseline_of().end() ? revision : it->second;
}

// One revision of a service: the spec that defined it.
struct RevisionRecord {
  std::string service;
  int64_t revision = 0;
  hosting::v1::ServiceSpec spec;
  absl::Time created_at;
};

// One runbook run as stored: the run and the version its compare-and-swap writes check.
struct RunRecord {
  hosting::v1::RunbookRun run;
  int64_t version = 0;
};

// Whether a run has ended (succeeded, failed or cancelled).
inline bool IsTerminalRun(hosting::v1::RunState state) {
  return state == hosting::v1::RUN_STATE_SUCCEEDED || state == hosting::v1::RUN_STATE_FAILED ||
         state == hosting::v1::RUN_STATE_CANCELLED;
}

}  // namespace hosting::controlplane
