#pragma once

#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "controlplane/runbook/runbook.h"

namespace hosting::controlplane {

// Where backups come from and go (hostd --backup-*).
struct BackupConfig {
  // The repository: one directory per backup, named by its ID (UTC time, 20261207T031500Z).
  std::string repository;
  // libpq connection string of the PostgreSQL to copy: the replica when there is one.
  std::string database;
  // host:port of Redis to snapshot beside it; empty: none.
  std::string redis;
};

// The programs a backup runs (PostgreSQL's and Redis's own tools). hostd's implementation runs
// them as processes (RunProcess); unit tests use a fake. Each gives up when `cancelled` says so.
class BackupTools {
 public:
  virtual ~BackupTools() = default;
  using Cancelled = std::function<bool()>;
  // A base backup of `database` into the new directory `dir`, with a backup_manifest of
  // SHA-256 checksums and the WAL it needs. Its output.
  virtual absl::StatusOr<std::string> BaseBackup(const std::string& database,
                                                 const std::string& dir, absl::Duration timeout,
                                                 Cancelled cancelled) = 0;
  // pg_verifybackup: every file against the manifest, and the WAL. Its output, or why not.
  virtual absl::StatusOr<std::string> VerifyBackup(const std::string& dir, Cancelled cancelled) = 0;
  // An RDB snapshot of the Redis at `address` into `file`.
  virtual absl::StatusOr<std::string> RedisSnapshot(const std::string& address,
                                                    const std::string& file,
                                                    Cancelled cancelled) = 0;
};

// BackupTools on pg_basebackup, pg_verifybackup (in `pg_bin`) and redis-cli.
class ProcessBackupTools final : public BackupTools {
 public:
  explicit ProcessBackupTools(std::string pg_bin) : pg_bin_(std::move(pg_bin)) {}
  absl::StatusOr<std::string> BaseBackup(const std::string& database, const std::string& dir,
                                         absl::Duration timeout, Cancelled cancelled) override;
  absl::StatusOr<std::string> VerifyBackup(const std::string& dir, Cancelled cancelled) override;
  absl::StatusOr<std::string> RedisSnapshot(const std::string& address, const std::string& file,
                                            Cancelled cancelled) override;

 private:
  std::string pg_bin_;
};

// backup: a verified base backup of the application's PostgreSQL (from the replica when the
// configured source is one), a Redis snapshot beside it, a manifest with every file's SHA-256,
// then retention (the newest `keep`, none older than `max_age`, never the one just made).
//   base-backup  pg_basebackup into <repository>/<id>.partial, renamed to <id> when complete
//   verify       pg_verifybackup
//   redis        redis-cli --rdb (when configured)
//   manifest     hosting-backup.json: ID, times, PostgreSQL version, WAL range, SHA-256 of files
//   retention    older backups removed
class BackupRunbook final : public Runbook {
 public:
  BackupRunbook(BackupConfig config, BackupTools& tools, Clock& clock)
      : config_(std::move(config)), tools_(tools), clock_(clock) {}
  hosting::v1::Runbook Describe() const override;
  absl::StatusOr<std::vector<StepPlan>> Plan(const Parameters& params) override;
  absl::StatusOr<std::string> Execute(StepContext& ctx) override;

 private:
  BackupConfig config_;
  BackupTools& tools_;
  Clock& clock_;
};

// backup-verify: checks a backup in the repository again (before a restore, or on a schedule):
// pg_verifybackup, then every file hosting-backup.json lists against its SHA-256.
class BackupVerifyRunbook final : public Runbook {
 public:
  BackupVerifyRunbook(BackupConfig config, BackupTools& tools)
      : config_(std::move(config)), tools_(tools) {}
  hosting::v1::Runbook Describe() const override;
  absl::StatusOr<std::vector<StepPlan>> Plan(const Parameters& params) override;
  absl::StatusOr<std::string> Execute(StepContext& ctx) override;

 private:
  BackupConfig config_;
  BackupTools& tools_;
};

// The backups in a repository, newest first (directories named like IDs, complete ones only).
std::vector<std::string> ListBackups(const std::string& repository);

// SHA-256 of a file, lowercase hex.
absl::StatusOr<std::string> FileSha256(const std::string& path);

}  // namespace hosting::controlplane
