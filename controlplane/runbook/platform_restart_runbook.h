#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "controlplane/runbook/operations.h"
#include "controlplane/runbook/platform_operations.h"
#include "controlplane/runbook/runbook.h"

namespace hosting::controlplane {

// platform-restart: every service of the platform, in dependency order, each without a failed
// request:
//   restart-<service>  the stack's data stores (hosting.tier=data, by hosting.restart-order:
//                      the replica, Redis, the primary), then its monitoring: a forced update
//                      (new tasks, health checks passed) followed to its end. For the
//                      primary (hosting.restart=pause-writes) the front door holds write
//                      requests first, so none is in transit when the server ends its
//                      sessions; appsvc sends again what the server did not run and reads
//                      from the replica meanwhile. The hold ends when the step ends, however.
//   app-<service>      each hosted service: a rolling restart (a release with env
//                      HOSTING_RESTARTED_AT) under its own policy, followed to its end
//   reload-<service>   the front door (hosting.restart=reload): HAProxy's master reloads, new
//                      workers take over the listening sockets, hostd adds the servers back
//                      within a tick while the new workers hold requests (hold.lua); done when
//                      every backend has the servers it had. The HAProxy reloaded is the one
//                      hostd drives (--haproxy-master), on its own node.
// `-p data=false`, `monitoring=false`, `app=false`, `proxy=false` leave a tier out.
class PlatformRestartRunbook final : public Runbook {
 public:
  PlatformRestartRunbook(ClusterOperations& cluster, PlatformOperations& platform)
      : cluster_(cluster), platform_(platform) {}
  hosting::v1::Runbook Describe() const override;
  absl::StatusOr<std::vector<StepPlan>> Plan(const Parameters& params) override;
  absl::StatusOr<std::string> Execute(StepContext& ctx) override;

 private:
  absl::StatusOr<std::string> Restart(StepContext& ctx);
  absl::StatusOr<std::string> RestartApp(StepContext& ctx);
  absl::StatusOr<std::string> Reload(StepContext& ctx);
  // Hosted services with tasks, by name.
  absl::StatusOr<std::vector<std::string>> HostedServices();

  ClusterOperations& cluster_;
  PlatformOperations& platform_;
};

}  // namespace hosting::controlplane
