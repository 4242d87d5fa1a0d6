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

}  // namespace hosting::controlplane
