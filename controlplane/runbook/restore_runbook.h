#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "controlplane/runbook/backup_runbooks.h"
#include "controlplane/runbook/operations.h"
#include "controlplane/runbook/runbook.h"

namespace hosting::controlplane {

// restore: a backup, to a point in time, into a new PostgreSQL instance, checked before anything
// uses it; switching a service to it waits for approval.
//   verify    the backup's files against its manifests (pg_verifybackup, SHA-256)
//   prepare   a copy of the backup under --restore-root with the archived WAL it needs and the
//             recovery target (recovery_target_time, or the end of the archive)
//   recover   the server started; done once it has replayed to the target and promoted itself
//   check     every table's row count and amcheck of every B-tree index (heap included); the
//             recovery time, from verify to here, is the run's output recovery_seconds
//   switch    (with `service`, after ApproveRun) a release of the service with DB_HOST/DB_PORT
//             and its replica's pointing at the restored instance, followed to its end
class RestoreRunbook final : public Runbook {
 public:
  RestoreRunbook(BackupConfig config, BackupTools& tools, ClusterOperations& cluster, Clock& clock)
      : config_(std::move(config)), tools_(tools), cluster_(cluster), clock_(clock) {}
  hosting::v1::Runbook Describe() const override;
  absl::StatusOr<std::vector<StepPlan>> Plan(const Parameters& params) override;
  absl::StatusOr<std::string> Execute(StepContext& ctx) override;

 private:
  absl::StatusOr<std::string> Prepare(StepContext& ctx);
  absl::StatusOr<std::string> Recover(StepContext& ctx);
  absl::StatusOr<std::string> Check(StepContext& ctx);
  // libpq connection string of the restored instance, database `db`.
  std::string Conninfo(const StepContext& ctx, const std::string& db) const;

  BackupConfig config_;
  BackupTools& tools_;
  ClusterOperations& cluster_;
  Clock& clock_;
};

}  // namespace hosting::controlplane
