#include "controlplane/runbook/operations.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/status_macros.h"

namespace hosting::controlplane {

absl::Status WaitForRelease(StepContext& ctx, ClusterOperations& cluster,
                            const std::string& release_id) {
  hosting::v1::Release last;
  RETURN_IF_ERROR(ctx.WaitUntil(
      [&]() -> absl::StatusOr<bool> {
        ASSIGN_OR_RETURN(last, cluster.GetRelease(release_id));
        // SUCCEEDED and every state after it in the enum are terminal.
        return last.state() >= hosting::v1::RELEASE_STATE_SUCCEEDED;
      },
      ctx.deadline() - ctx.clock().Now(), absl::Milliseconds(500),
      absl::StrCat("release ", release_id, " to end")));
  if (last.state() == hosting::v1::RELEASE_STATE_SUCCEEDED) return absl::OkStatus();
  absl::string_view state = hosting::v1::ReleaseState_Name(last.state());
  absl::ConsumePrefix(&state, "RELEASE_STATE_");
  return absl::AbortedError(absl::StrCat("release ", release_id, " ended ",
                                         absl::AsciiStrToLower(state), ": ", last.message()));
}

absl::StatusOr<hosting::v1::Release> RollingRestart(StepContext& ctx, ClusterOperations& cluster,
                                                    const std::string& service,
                                                    const std::string& reason) {
  ASSIGN_OR_RETURN(
      hosting::v1::Release release,
      cluster.ReleaseEnv(service,
                         {{"HOSTING_RESTARTED_AT",
                           absl::FormatTime(absl::RFC3339_sec, ctx.clock().Now(),
                                            absl::UTCTimeZone())}},
                         reason));
  if (absl::Status ended = WaitForRelease(ctx, cluster, release.id()); !ended.ok()) {
    return absl::Status(ended.code(), absl::StrCat("restarting ", service, ": ", ended.message()));
  }
  return release;
}

}  // namespace hosting::controlplane
