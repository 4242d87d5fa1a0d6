#pragma once

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace hosting {

// Which outside system a failure came from, carried as a payload on the absl::Status so that
// a caller several layers up (the reconciler's worker, a status page, a metric) can tell a
// store outage from a Docker outage from a fenced write, without parsing messages.
enum class FaultSource {
  kUnknown,
  // The desired-state store (SQLite or PostgreSQL) could not be read or written.
  kStore,
  // A write refused because this hostd does not hold the leader lease (or lost it).
  kFence,
  // The Docker Engine API did not answer.
  kDocker,
};

// `status` tagged with `source` (OK stays OK; an existing tag is kept: the innermost layer
// knows best).
absl::Status WithFaultSource(absl::Status status, FaultSource source);
FaultSource FaultSourceOf(const absl::Status& status);
// "store", "fence", "docker", "unknown".
const char* FaultSourceName(FaultSource source);

// Whether the failure says the other side did not answer (UNAVAILABLE or DEADLINE_EXCEEDED),
// as opposed to answering with a refusal.
inline bool IsUnreachable(const absl::Status& status) {
  return absl::IsUnavailable(status) || absl::IsDeadlineExceeded(status);
}

}  // namespace hosting
