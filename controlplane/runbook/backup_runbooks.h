#pragma once

#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "controlplane/runbook/backup_checksums.h"
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
  // libpq connection string of the primary whose WAL is archived continuously into
  // <repository>/wal (WalArchiver); empty: no archiving, and a restore reaches a backup's end
  // only.
  std::string wal_source;
  // Where restore makes its PostgreSQL instances, one directory per restore.
  std::string restore_root;

  std::string wal_dir() const { return repository + "/wal"; }
};

// The programs a backup runs (PostgreSQL's and Redis's own tools). hostd's implementation runs
// them as processes (RunProcess); unit tests use a fake. Each gives up when `cancelled` says so.
class BackupTools {
 public:
  virtual ~BackupTools() = default;
  using Cancelled = std::function<bool()>;
  // A base backup of `database` into `dir` (new, or made empty), with a backup_manifest of
  // CRC-32C checksums and the WAL it needs. Its output.
  virtual absl::StatusOr<std::string> BaseBackup(const std::string& database,
                                                 const std::string& dir, absl::Duration timeout,
                                                 Cancelled cancelled) = 0;
  // pg_verifybackup: every file against the manifest (its presence and size, and its checksum
  // unless `checksums_checked` says the caller has compared them already), and the WAL. Its
  // output, or why not.
  virtual absl::StatusOr<std::string> VerifyBackup(const std::string& dir, bool checksums_checked,
                                                   Cancelled cancelled) = 0;
  // An RDB snapshot of the Redis at `address` into `file`.
  virtual absl::StatusOr<std::string> RedisSnapshot(const std::string& address,
                                                    const std::string& file,
                                                    Cancelled cancelled) = 0;
  // Streams the WAL of `source` into `dir` through the physical replication slot `slot` (made
  // when missing), flushing each write, until it fails or `cancelled`: pg_receivewal.
  virtual absl::Status ReceiveWal(const std::string& source, const std::string& dir,
                                  const std::string& slot, Cancelled cancelled) = 0;
  // One SQL statement against `conninfo`: the rows, one a line, columns split by '|'.
  virtual absl::StatusOr<std::string> Query(const std::string& conninfo, const std::string& sql,
                                            Cancelled cancelled) = 0;
  // Hands `dir` (recursively) to the OS user PostgreSQL servers run as.
  virtual absl::Status GiveToServer(const std::string& dir) = 0;
  // Starts the PostgreSQL of `data_dir` (logging to `log`), returning once it runs.
  virtual absl::Status StartServer(const std::string& data_dir, const std::string& log,
                                   absl::Duration timeout, Cancelled cancelled) = 0;
  // Stops it (fast shutdown); OK when it was not running.
  virtual absl::Status StopServer(const std::string& data_dir) = 0;
};

// BackupTools on PostgreSQL's programs (in `pg_bin`), psql and redis-cli. Servers run as
// `server_user` when hostd runs as root (PostgreSQL refuses root), through runuser.
class ProcessBackupTools final : public BackupTools {
 public:
  explicit ProcessBackupTools(std::string pg_bin, std::string server_user = "postgres")
      : pg_bin_(std::move(pg_bin)), server_user_(std::move(server_user)) {}
  absl::StatusOr<std::string> BaseBackup(const std::string& database, const std::string& dir,
                                         absl::Duration timeout, Cancelled cancelled) override;
  absl::StatusOr<std::string> VerifyBackup(const std::string& dir, bool checksums_checked,
                                           Cancelled cancelled) override;
  absl::StatusOr<std::string> RedisSnapshot(const std::string& address, const std::string& file,
                                            Cancelled cancelled) override;
  absl::Status ReceiveWal(const std::string& source, const std::string& dir,
                          const std::string& slot, Cancelled cancelled) override;
  absl::StatusOr<std::string> Query(const std::string& conninfo, const std::string& sql,
                                    Cancelled cancelled) override;
  absl::Status GiveToServer(const std::string& dir) override;
  absl::Status StartServer(const std::string& data_dir, const std::string& log,
                           absl::Duration timeout, Cancelled cancelled) override;
  absl::Status StopServer(const std::string& data_dir) override;

 private:
  // argv run as the server's user.
  std::vector<std::string> AsServer(std::vector<std::string> argv) const;

  std::string pg_bin_;
  std::string server_user_;
};

// backup: (wal-archive: WAL archiving is streaming, when configured) a verified base backup of the
// application's PostgreSQL (from the replica when the configured source is one), a Redis snapshot
// beside it, a manifest with every file's SHA-256, then retention (the newest `keep`, none older
// than `max_age`, never the one just made).
//   base-backup  pg_basebackup into <repository>/<id>.partial, renamed to <id> when complete;
//                each file's CRC-32C taken as pg_basebackup closes it (ChecksumsWhileWriting)
//   verify       those CRC-32Cs against backup_manifest, and pg_verifybackup for the rest
//                (files present with their sizes, nothing extra, the manifest's own checksum,
//                the WAL parsed); after a hostd restart between the two, pg_verifybackup alone
//   redis        redis-cli --rdb (when configured)
//   manifest     hosting-backup.json: ID, times, PostgreSQL version, WAL range, SHA-256 of files
//   retention    older backups taken out of the repository at once (renamed .expired-<id>),
//                their files deleted in the background (a backup's thousands of files take
//                a while to unlink; the run need not wait). What a stopped hostd left is
//                deleted by the next retention.
class BackupRunbook final : public Runbook {
 public:
  BackupRunbook(BackupConfig config, BackupTools& tools, Clock& clock)
      : config_(std::move(config)), tools_(tools), clock_(clock) {}
  ~BackupRunbook() override;
  hosting::v1::Runbook Describe() const override;
  absl::StatusOr<std::vector<StepPlan>> Plan(const Parameters& params) override;
  absl::StatusOr<std::string> Execute(StepContext& ctx) override;

  // Waits until the expired backups' files are deleted (tests; the destructor).
  void WaitForExpiredDeleted();

 private:
  // Deletes every .expired-* entry of the repository on a thread of its own.
  void DeleteExpiredInBackground();

  BackupConfig config_;
  BackupTools& tools_;
  Clock& clock_;
  // The CRC-32Cs the base-backup step took, by backup directory, until its verify step.
  absl::Mutex sums_mu_;
  absl::flat_hash_map<std::string, FileSums> copy_sums_ ABSL_GUARDED_BY(sums_mu_);
  absl::Mutex reaper_mu_;
  std::thread reaper_ ABSL_GUARDED_BY(reaper_mu_);
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

// The WAL segment files of an archive directory, oldest first: complete ones, and the one
// being written as NAME.partial.
std::vector<std::string> ArchivedWal(const std::string& wal_dir);

// The backups in a repository, newest first (directories named like IDs, complete ones only).
std::vector<std::string> ListBackups(const std::string& repository);

// SHA-256 of a file, lowercase hex.
absl::StatusOr<std::string> FileSha256(const std::string& path);

// Checks every file a backup's hosting-backup.json lists against its SHA-256: DATA_LOSS naming
// the files that differ or are missing, or the manifest when it is absent (the backup did not
// finish).
absl::StatusOr<std::string> CheckBackupManifest(const std::string& dir);

// When the backup `id` started (its ID is that UTC time); InfinitePast for a name that is not
// an ID.
absl::Time BackupStartTime(const std::string& id);

// The WAL segment file a backup starts in, from its backup_label ("" when unreadable).
std::string BackupStartWalFile(const std::string& dir);

// A libpq connection string without its password.
std::string RedactedConninfo(const std::string& conninfo);

// Writes hosting-backup.json into a backup's directory: its ID, times, run, PostgreSQL version,
// WAL ranges and the SHA-256 of the files PostgreSQL's manifest does not cover.
absl::StatusOr<std::string> WriteBackupManifest(const std::string& dir, const std::string& id,
                                                const std::string& run_id, absl::Time finished);

// A verified base backup `id` into the repository in one go (a step of another runbook, such as
// migrate): pg_basebackup into ID.partial (checksummed as it is written), renamed once complete,
// verified (a backup that fails is removed), hosting-backup.json. What was done, for people.
absl::StatusOr<std::string> TakeVerifiedBackup(const BackupConfig& config, BackupTools& tools,
                                               Clock& clock, const std::string& id,
                                               const std::string& run_id, absl::Duration timeout,
                                               BackupTools::Cancelled cancelled);

// A backup ID for a backup starting at `t` (its UTC time, 20261207T031500Z).
std::string BackupIdAt(absl::Time t);

// The replication slot the WAL archive streams through.
inline constexpr char kWalArchiveSlot[] = "hosting_wal_archive";

}  // namespace hosting::controlplane
