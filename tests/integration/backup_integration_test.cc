// The backup runbooks against a real PostgreSQL primary + streaming replica and Redis, run by a
// real hostd through hostctl: a base backup taken from the replica while writes continue,
// verified by pg_verifybackup and a SHA-256 manifest; a corrupted backup refused by name.
#include <signal.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
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

}  // namespace
}  // namespace hosting::testing
