// The backup runbooks against a real PostgreSQL primary + streaming replica and Redis, run by a
// real hostd through hostctl: a base backup taken from the replica while writes continue,
// verified (CRC-32Cs taken while copying, pg_verifybackup) with a SHA-256 manifest; a corrupted
// backup refused by name; a restore to a point between two writes with the WAL archive; hostd
// killed during a backup.
#include <signal.h>

#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "hosting/v1/runbooks.grpc.pb.h"
#include "tests/integration/harness.h"

namespace hosting::testing {
namespace {

using ::testing::HasSubstr;

TEST(BackupIntegrationTest, ABackupFromTheReplicaUnderWritesVerifiesAndCorruptionIsFound) {
  Datastores ds;
  ASSERT_TRUE(ds.Start().ok());
  const std::string dir = MakeTempDir("hosting-backup-");
  const std::string repo = dir + "/backups";
  HostdProcess hostd(dir, {"--backup-repository=" + repo,
                           absl::StrCat("--backup-database=host=127.0.0.1 port=", ds.replica_port(),
                                        " user=postgres"),
                           absl::StrCat("--backup-redis=127.0.0.1:", ds.redis_port())});
  ASSERT_TRUE(hostd.Start().ok());
  const std::string hostctl = absl::StrCat(HostctlBinary(), " --server ", hostd.address());
  ds.Sql(
      "CREATE TABLE IF NOT EXISTS backup_probe (id serial PRIMARY KEY, at timestamptz DEFAULT "
      "now())");

  // Writes go on during the backup.
  absl::Notification stop;
  int written = 0;
  std::thread writer([&] {
    while (!stop.HasBeenNotified()) {
      ds.Sql("INSERT INTO backup_probe DEFAULT VALUES");
      ++written;
    }
  });
  CommandResult backup = Shell(hostctl + " runbook run backup --wait --wait-timeout 300 -p keep=2");
  stop.Notify();
  writer.join();
  ASSERT_EQ(backup.exit_code, 0) << backup.output << "\n"
                                 << Shell("tail -20 " + hostd.log_path()).output;
  EXPECT_GT(written, 0);
  EXPECT_THAT(backup.output, HasSubstr("step 2/5 verify: succeeded"));
  EXPECT_THAT(backup.output, HasSubstr("backup successfully verified"));
  // Every file's CRC-32C was taken as pg_basebackup wrote it, and matched its manifest.
  EXPECT_THAT(backup.output, HasSubstr("files match their CRC-32C in backup_manifest"));
  EXPECT_THAT(backup.output, ::testing::ContainsRegex("[1-9][0-9]* summed while copying"));
  EXPECT_THAT(backup.output, HasSubstr("backup_id: "));
  // The backup came from the replica: its label says so.
  const std::string id = Shell("ls " + repo + " | head -1 | tr -d '\\n'").output;
  ASSERT_EQ(id.size(), 16u) << id;
  EXPECT_THAT(Shell("cat " + repo + "/" + id + "/backup_label").output,
              HasSubstr("BACKUP FROM: standby"));
  EXPECT_TRUE(std::filesystem::exists(repo + "/" + id + "/redis.rdb"));
  EXPECT_THAT(Shell("cat " + repo + "/" + id + "/hosting-backup.json").output,
              HasSubstr("\"wal_ranges\""));

  CommandResult verify = Shell(hostctl + " runbook run backup-verify --wait --wait-timeout 120");
  EXPECT_EQ(verify.exit_code, 0) << verify.output;
  EXPECT_THAT(verify.output, HasSubstr("files match their SHA-256"));

  // A WAL segment of the backup changed on disk (the manifest lists no WAL: only parsing it
  // finds this): the WAL parse that runs beside the checksum pass names it, the run fails.
  // The backup's first WAL record (at its start LSN, from backup_manifest's WAL-Ranges).
  const std::string start_lsn =
      Shell("sed -n 's/.*\"Start-LSN\": *\"\\([0-9A-F/]*\\)\".*/\\1/p' " + repo + "/" + id +
            "/backup_manifest | head -1 | tr -d '\\n'")
          .output;
  const size_t slash = start_lsn.find('/');
  ASSERT_NE(slash, std::string::npos) << start_lsn;
  const uint64_t lsn = (std::stoull(start_lsn.substr(0, slash), nullptr, 16) << 32) |
                       std::stoull(start_lsn.substr(slash + 1), nullptr, 16);
  const uint64_t segment_size = 16 << 20, segno = lsn / segment_size;
  const std::string segment = absl::StrFormat("%s/%s/pg_wal/%08X%08X%08X", repo, id, 1,
                                              segno / 256, segno % 256);
  ASSERT_TRUE(std::filesystem::exists(segment)) << segment;
  ASSERT_EQ(Shell("cp " + segment + " " + segment + ".good").exit_code, 0);
  {
    std::fstream f(segment, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(lsn % segment_size));
    f.write("corrupt!corrupt!", 16);
  }
  CommandResult bad_wal =
      Shell(hostctl + " runbook run backup-verify --wait --wait-timeout 120 -p backup=" + id);
  EXPECT_EQ(bad_wal.exit_code, 15) << bad_wal.output;
  EXPECT_THAT(bad_wal.output, HasSubstr("WAL parsing failed")) << bad_wal.output;
  ASSERT_EQ(Shell("mv " + segment + ".good " + segment).exit_code, 0);

  // A data file changed on disk: pg_verifybackup names it, the run fails (exit 15).
  const std::string victim =
      Shell("find " + repo + "/" + id + "/base -type f -size +8k | head -1 | tr -d '\\n'").output;
  ASSERT_FALSE(victim.empty());
  {
    std::fstream f(victim, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(4096);
    f.write("corrupt!", 8);
  }
  CommandResult bad =
      Shell(hostctl + " runbook run backup-verify --wait --wait-timeout 120 -p backup=" + id);
  EXPECT_EQ(bad.exit_code, 15) << bad.output;
  EXPECT_THAT(bad.output, HasSubstr("failed verification"));
  EXPECT_THAT(bad.output, HasSubstr("checksum mismatch"));
}

// hostd with the backup flags over `ds`: backups from the replica, WAL archived from the
// primary, restores under `dir`/restores (reachable by the postgres user).
std::vector<std::string> BackupFlags(const Datastores& ds, const std::string& dir) {
  chmod(dir.c_str(), 0755);
  return {"--backup-repository=" + dir + "/backups",
          absl::StrCat("--backup-database=host=127.0.0.1 port=", ds.replica_port(), " user=postgres"),
          absl::StrCat("--wal-archive-source=host=127.0.0.1 port=", ds.pg_port(), " user=postgres"),
          "--restore-root=" + dir + "/restores"};
}

// Stops the PostgreSQL servers restores started under `dir`/restores.
void StopRestored(const std::string& dir) {
  Shell("for d in " + dir + "/restores/*/; do [ -f \"$d/postmaster.pid\" ] && runuser -u postgres "
        "-- /usr/lib/postgresql/15/bin/pg_ctl -D \"$d\" -m immediate -w stop; done; true");
}

TEST(BackupIntegrationTest, ARestoreToAPointBetweenTwoWritesHasExactlyTheRowsBeforeIt) {
  Datastores ds;
  ASSERT_TRUE(ds.Start().ok());
  const std::string dir = MakeTempDir("hosting-restore-");
  HostdProcess hostd(dir, BackupFlags(ds, dir));
  ASSERT_TRUE(hostd.Start().ok());
  const std::string hostctl = absl::StrCat(HostctlBinary(), " --server ", hostd.address());
  ds.Sql("CREATE TABLE pitr (id int PRIMARY KEY, phase text NOT NULL)");
  ds.Sql("INSERT INTO pitr SELECT g, 'before-backup' FROM generate_series(1, 1000) g");

  CommandResult backup = Shell(hostctl + " runbook run backup --wait --wait-timeout 300");
  ASSERT_EQ(backup.exit_code, 0) << backup.output << "\n"
                                 << Shell("tail -20 " + hostd.log_path()).output;
  EXPECT_THAT(backup.output, HasSubstr("1. wal-archive"));

  // Two writes after the backup, the point to restore to between them (PostgreSQL's clock).
  ds.Sql("INSERT INTO pitr SELECT g, 'first' FROM generate_series(1001, 1050) g");
  absl::SleepFor(absl::Seconds(1));
  const std::string point(absl::StripAsciiWhitespace(ds.Sql(
      "SELECT replace(to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US'), "
      "' ', 'T') || 'Z'")));
  absl::SleepFor(absl::Seconds(1));
  ds.Sql("INSERT INTO pitr SELECT g, 'second' FROM generate_series(1051, 1070) g");
  ds.Sql("UPDATE pitr SET phase = 'changed' WHERE id <= 10");

  const int port = FreePort();
  CommandResult restore = Shell(absl::StrCat(hostctl, " runbook run restore --wait --wait-timeout 300 -p target_time=",
                                             point, " -p port=", port));
  ASSERT_EQ(restore.exit_code, 0) << restore.output << "\n"
                                  << Shell("tail -20 " + hostd.log_path()).output;
  EXPECT_THAT(restore.output, HasSubstr("recovery_seconds: "));
  EXPECT_THAT(restore.output, HasSubstr("pass amcheck"));
  EXPECT_THAT(restore.output, HasSubstr("app.public.pitr=1050"));
  const std::string restored = Shell(absl::StrCat(
      "psql -h 127.0.0.1 -p ", port, " -U postgres -d app -Atc \"SELECT phase, count(*) FROM "
      "pitr GROUP BY phase ORDER BY phase\"")).output;
  EXPECT_EQ(restored, "before-backup|1000\nfirst|50\n");
  // The original is untouched and the restored instance is a primary of its own.
  EXPECT_EQ(ds.Sql("SELECT count(*) FROM pitr"), "1070\n");
  EXPECT_EQ(Shell(absl::StrCat("psql -h 127.0.0.1 -p ", port,
                               " -U postgres -d app -Atc 'SELECT pg_is_in_recovery()'")).output,
            "f\n");

  // A second restore to "latest" while the first runs: every write is there.
  const int latest_port = FreePort();
  CommandResult latest = Shell(absl::StrCat(hostctl, " runbook run restore --wait --wait-timeout 300 -p port=",
                                            latest_port));
  EXPECT_EQ(latest.exit_code, 0) << latest.output;
  EXPECT_EQ(Shell(absl::StrCat("psql -h 127.0.0.1 -p ", latest_port,
                               " -U postgres -d app -Atc \"SELECT count(*), count(*) FILTER (WHERE "
                               "phase = 'changed') FROM pitr\"")).output,
            "1070|10\n");
  StopRestored(dir);
}

TEST(BackupIntegrationTest, AHostdKilledDuringABackupResumesTheRunAndItEnds) {
  Datastores ds;
  ASSERT_TRUE(ds.Start().ok());
  const std::string dir = MakeTempDir("hosting-backup-kill-");
  std::vector<std::string> flags = BackupFlags(ds, dir);
  // Enough data that the base backup takes a while.
  ds.Sql("CREATE TABLE bulk AS SELECT g AS id, repeat('x', 200) AS pad FROM generate_series(1, 600000) g");
  ASSERT_TRUE(ds.WaitReplicaReplayed(absl::Seconds(60)).ok());
  auto hostd = std::make_unique<HostdProcess>(dir, flags);
  ASSERT_TRUE(hostd->Start().ok());
  auto stub = hosting::v1::Runbooks::NewStub(hostd->channel());
  hosting::v1::RunRunbookRequest req;
  req.set_runbook("backup");
  hosting::v1::RunbookRun run;
  {
    grpc::ClientContext ctx;
    ASSERT_TRUE(stub->RunRunbook(&ctx, req, &run).ok());
  }
  // Killed while the base backup runs.
  bool copying = false;
  for (int i = 0; i < 600 && !copying; ++i) {
    grpc::ClientContext ctx;
    hosting::v1::GetRunRequest get;
    get.set_id(run.id());
    hosting::v1::RunbookRun now;
    ASSERT_TRUE(stub->GetRun(&ctx, get, &now).ok());
    copying = now.steps(1).state() == hosting::v1::RUN_STATE_RUNNING;
    if (!copying) absl::SleepFor(absl::Milliseconds(50));
  }
  ASSERT_TRUE(copying);
  hostd->Stop(SIGKILL);
  // The same store: the run is there, and ends.
  hostd = std::make_unique<HostdProcess>(dir, flags);
  ASSERT_TRUE(hostd->Start().ok());
  CommandResult watch = Shell(absl::StrCat(HostctlBinary(), " --server ", hostd->address(),
                                           " runbook watch ", run.id(), " --wait-timeout 300"));
  EXPECT_EQ(watch.exit_code, 0) << watch.output << "\n"
                                << Shell("tail -30 " + hostd->log_path()).output;
  CommandResult status = Shell(absl::StrCat(HostctlBinary(), " --server ", hostd->address(),
                                            " runbook status ", run.id()));
  EXPECT_THAT(status.output, HasSubstr("2. base-backup  succeeded (attempt 2 of 2)")) << status.output;
  EXPECT_THAT(status.output, HasSubstr("backup successfully verified"));
  // Nothing half-made is left as a backup.
  EXPECT_EQ(Shell("ls " + dir + "/backups | grep -c partial || true").output, "0\n");
}

}  // namespace
}  // namespace hosting::testing
