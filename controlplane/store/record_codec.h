#pragma once

// How the SQL backends encode a record's columns, shared so both read and write the same bytes:
// specs as proto JSON (readable with any SQL client, and tolerant of fields a newer hostd
// added), the rollout and autoscaling policy as binary protos.

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "controlplane/store/records.h"
#include "controlplane/store/store.h"

namespace hosting::controlplane {

absl::StatusOr<std::string> SpecToJson(const hosting::v1::ServiceSpec& spec);
// DATA_LOSS when the stored text is not a spec.
absl::StatusOr<hosting::v1::ServiceSpec> SpecFromJson(absl::string_view json);

// The autoscaling column: the policy's bytes, empty when the service has none.
std::string EncodeAutoscaling(const ServiceRecord& r);
// Reads the rollout and autoscaling columns into `r` (whose spec names it in errors).
absl::Status DecodeServiceBlobs(absl::string_view rollout, absl::string_view autoscaling,
                                ServiceRecord& r);

// A release in a terminal state is no longer "active" (the column both backends index).
bool IsTerminalRelease(const hosting::internal::ReleaseRecord& r);

// A stored run's body (hosting.v1.RunbookRun, binary) and version.
absl::StatusOr<RunRecord> ParseRun(absl::string_view body, int64_t version);
// FAILED_PRECONDITION: run `id` of the same runbook and target has not ended.
absl::Status RunInProgress(absl::string_view id, const hosting::v1::RunbookRun& run);
absl::Status RunNotFound(absl::string_view id);
absl::Status RunChangedConcurrently(absl::string_view id, int64_t stored, int64_t expected);

// The error both backends return for a lost compare-and-swap.
absl::Status ServiceChangedConcurrently(absl::string_view name, int64_t stored,
                                        int64_t expected);

// OK when `lease` is still `holder`'s at `epoch` and unexpired; the fencing error otherwise.
absl::Status FenceHolds(const Store::Lease& lease, absl::string_view holder, int64_t epoch);

}  // namespace hosting::controlplane
