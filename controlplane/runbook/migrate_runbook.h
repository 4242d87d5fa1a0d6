#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "controlplane/runbook/backup_runbooks.h"
#include "controlplane/runbook/operations.h"
#include "controlplane/runbook/runbook.h"

namespace hosting::controlplane {

// migrate: a new version's database migration, then its release.
//   backup    a verified base backup first (TakeVerifiedBackup; `-p backup=false` skips it)
//   migrate   the new image's `migrate` as a one-off Swarm job with the service's env, secrets
//             and networks (ClusterOperations::RunJob); a failure ends the run here: nothing is
//             released, the current version keeps serving, and the job's logs say why
//   release   a release of the service to the new image under its own release policy; the
//             step ends with the release (succeeded, or failed naming a rollback)
class MigrateRunbook final : public Runbook {
 public:
  MigrateRunbook(BackupConfig backup, BackupTools& tools, ClusterOperations& cluster, Clock& clock)
      : backup_(std::move(backup)), tools_(tools), cluster_(cluster), clock_(clock) {}
  hosting::v1::Runbook Describe() const override;
  absl::StatusOr<std::vector<StepPlan>> Plan(const Parameters& params) override;
  absl::StatusOr<std::string> Execute(StepContext& ctx) override;

 private:
  BackupConfig backup_;
  BackupTools& tools_;
  ClusterOperations& cluster_;
  Clock& clock_;
};

}  // namespace hosting::controlplane
