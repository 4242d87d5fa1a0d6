#include "controlplane/runbook/backup_runbooks.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/clock.h"
#include "controlplane/runbook/engine.h"
#include "controlplane/testing/fake_control_plane.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace hosting::controlplane {
namespace {

namespace fs = std::filesystem;
using ::hosting::v1::RunbookRun;
using ::testing::HasSubstr;

void Write(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

// Writes what pg_basebackup would (a few files, a manifest with a WAL range); verification
// fails when a file named CORRUPT is in the backup.
class FakeBackupTools : public BackupTools {
 public:
  absl::StatusOr<std::string> BaseBackup(const std::string& database, const std::string& dir,
                                         absl::Duration, Cancelled) override {
    ++base_backups;
    if (fail_base > 0) {
      --fail_base;
      return absl::InternalError("pg_basebackup exited 1: could not connect to server");
    }
    sources.push_back(database);
    fs::create_directories(dir + "/base");
    Write(dir + "/PG_VERSION", "15\n");
    Write(dir + "/base/1", std::string(4096, 'x'));
    Write(dir + "/backup_label", "START WAL LOCATION: 0/2000028\n");
    Write(
        dir + "/backup_manifest",
        R"({"PostgreSQL-Backup-Manifest-Version": 1, "WAL-Ranges": [{"Timeline": 1, "Start-LSN": "0/2000028", "End-LSN": "0/2000100"}]})");
    return std::string();
  }
  absl::StatusOr<std::string> VerifyBackup(const std::string& dir, Cancelled) override {
    if (fs::exists(dir + "/CORRUPT")) {
      return absl::InternalError("pg_verifybackup exited 1: \"base/1\" has checksum mismatch");
    }
    return std::string("backup successfully verified\n");
  }
  absl::StatusOr<std::string> RedisSnapshot(const std::string&, const std::string& file,
                                            Cancelled) override {
    Write(file, "REDIS0011...");
    return std::string("Transfer finished with success.");
  }
  int base_backups = 0;
  int fail_base = 0;
  std::vector<std::string> sources;
};

class BackupRunbooksTest : public ::testing::Test {
 protected:
  BackupRunbooksTest() {
    repo_ = (fs::temp_directory_path() /
             absl::StrCat("hosting_backup_test_", getpid(), "_", counter_++))
                .string();
    config_ = {repo_, "host=10.0.0.6 port=5432 user=replicator password=s3cret", "10.0.0.7:6379"};
    RunbookEngineOptions o;
    o.stop_grace = absl::ZeroDuration();
    o.launch = [](std::function<void()> attempt) { attempt(); };
    engine_ = std::make_unique<RunbookEngine>(cp_.store, cp_.events, clock_, o);
    engine_->Register(std::make_shared<BackupRunbook>(config_, tools_, clock_));
    engine_->Register(std::make_shared<BackupVerifyRunbook>(config_, tools_));
  }
  ~BackupRunbooksTest() override { fs::remove_all(repo_); }

  absl::StatusOr<RunbookRun> Run(const std::string& runbook,
                                 std::map<std::string, std::string> params = {}) {
    hosting::v1::RunRunbookRequest req;
    req.set_runbook(runbook);
    for (const auto& [k, v] : params) (*req.mutable_parameters())[k] = v;
    return engine_->Run(req, "token:ops");
  }
  RunbookRun Finish(const std::string& id) {
    for (int i = 0; i < 60; ++i) {
      engine_->Tick();
      clock_.Advance(absl::Seconds(5));
    }
    return engine_->Get(id).value();
  }

  static inline int counter_ = 0;
  std::string repo_;
  BackupConfig config_;
  FakeClock clock_;
  FakeControlPlane cp_{clock_};
  FakeBackupTools tools_;
  std::unique_ptr<RunbookEngine> engine_;
};

TEST_F(BackupRunbooksTest, ABackupIsVerifiedChecksummedAndOldOnesGo) {
  std::vector<std::string> ids;
  for (int i = 0; i < 3; ++i) {
    absl::StatusOr<RunbookRun> run = Run("backup", {{"keep", "2"}});
    ASSERT_TRUE(run.ok()) << run.status();
    EXPECT_THAT(run->steps(0).detail(), HasSubstr("password=***"));
    EXPECT_THAT(run->steps(0).detail(), ::testing::Not(HasSubstr("s3cret")));
    RunbookRun r = Finish(run->id());
    ASSERT_EQ(r.state(), hosting::v1::RUN_STATE_SUCCEEDED) << r.message();
    ids.push_back(r.outputs().at("backup_id"));
    clock_.Advance(absl::Hours(1));
  }
  EXPECT_EQ(tools_.sources.front(), config_.database);
  // keep=2: the first is gone.
  EXPECT_EQ(ListBackups(repo_), (std::vector<std::string>{ids[2], ids[1]}));
  // The manifest: SHA-256 of the files, the WAL range, the version.
  std::ifstream in(repo_ + "/" + ids[2] + "/hosting-backup.json");
  std::string manifest((std::istreambuf_iterator<char>(in)), {});
  EXPECT_THAT(manifest, HasSubstr("\"redis.rdb\""));
  EXPECT_THAT(manifest, HasSubstr(FileSha256(repo_ + "/" + ids[2] + "/backup_manifest").value()));
  EXPECT_THAT(manifest, HasSubstr("\"Start-LSN\": \"0/2000028\""));
  EXPECT_THAT(manifest, HasSubstr("\"postgresql_version\": \"15\""));
  EXPECT_FALSE(fs::exists(repo_ + "/" + ids[2] + ".partial"));
}

TEST_F(BackupRunbooksTest, AFailedBaseBackupIsRetriedAndLeavesNoBackupBehind) {
  tools_.fail_base = 2;
  absl::StatusOr<RunbookRun> run = Run("backup");
  ASSERT_TRUE(run.ok());
  RunbookRun r = Finish(run->id());
  EXPECT_EQ(r.state(), hosting::v1::RUN_STATE_FAILED);
  EXPECT_THAT(r.message(), HasSubstr("could not connect to server"));
  EXPECT_EQ(tools_.base_backups, 2);
  EXPECT_TRUE(ListBackups(repo_).empty());
}

TEST_F(BackupRunbooksTest, VerifyFindsACorruptBackupAndSaysWhichFile) {
  absl::StatusOr<RunbookRun> run = Run("backup");
  ASSERT_TRUE(run.ok());
  ASSERT_EQ(Finish(run->id()).state(), hosting::v1::RUN_STATE_SUCCEEDED);
  const std::string id = ListBackups(repo_).front();

  absl::StatusOr<RunbookRun> ok = Run("backup-verify");
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(ok->target(), "latest");
  RunbookRun good = Finish(ok->id());
  EXPECT_EQ(good.state(), hosting::v1::RUN_STATE_SUCCEEDED) << good.message();
  EXPECT_EQ(good.outputs().at("verified"), id);

  Write(repo_ + "/" + id + "/redis.rdb", "tampered");
  absl::StatusOr<RunbookRun> bad = Run("backup-verify", {{"backup", id}});
  ASSERT_TRUE(bad.ok()) << bad.status();
  RunbookRun corrupt = Finish(bad->id());
  EXPECT_EQ(corrupt.state(), hosting::v1::RUN_STATE_FAILED);
  EXPECT_THAT(corrupt.message(), HasSubstr("is corrupt: redis.rdb has SHA-256"));

  Write(repo_ + "/" + id + "/CORRUPT", "");
  absl::StatusOr<RunbookRun> pg = Run("backup-verify", {{"backup", id}});
  ASSERT_TRUE(pg.ok());
  RunbookRun pg_bad = Finish(pg->id());
  EXPECT_THAT(pg_bad.message(), HasSubstr("failed verification: pg_verifybackup exited 1"));

  absl::Status unknown = Run("backup-verify", {{"backup", "20200101T000000Z"}}).status();
  EXPECT_TRUE(absl::IsNotFound(unknown)) << unknown;
}

TEST_F(BackupRunbooksTest, AHostdWithoutABackupSourceSaysWhichFlag) {
  RunbookEngineOptions o;
  o.stop_grace = absl::ZeroDuration();
  RunbookEngine bare(cp_.store, cp_.events, clock_, o);
  bare.Register(std::make_shared<BackupRunbook>(BackupConfig{repo_, "", ""}, tools_, clock_));
  hosting::v1::RunRunbookRequest req;
  req.set_runbook("backup");
  absl::Status st = bare.Run(req, "me").status();
  EXPECT_TRUE(absl::IsFailedPrecondition(st)) << st;
  EXPECT_THAT(std::string(st.message()), HasSubstr("--backup-database"));
}

}  // namespace
}  // namespace hosting::controlplane
