#include "controlplane/runbook/backup_runbooks.h"

#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/clock.h"
#include "common/crc32c.h"
#include "controlplane/runbook/engine.h"
#include "controlplane/runbook/migrate_runbook.h"
#include "controlplane/runbook/restore_runbook.h"
#include "controlplane/runbook/wal_archiver.h"
#include "controlplane/testing/fake_control_plane.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

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
    fs::create_directories(dir + "/pg_wal");
    const std::map<std::string, std::string> files = {
        {"PG_VERSION", "15\n"},
        {"base/1", std::string(4096, 'x')},
        {"backup_label", "START WAL LOCATION: 0/2000028 (file 000000010000000000000002)\n"}};
    nlohmann::json listed = nlohmann::json::array();
    for (const auto& [name, text] : files) {
      Write(dir + "/" + name, text);
      // A copy that differs from what the server sent: the manifest says otherwise.
      const uint32_t crc = Crc32c(0, corrupt_copy && name == "base/1" ? "other" : text);
      listed.push_back({{"Path", name},
                        {"Size", text.size()},
                        {"Checksum-Algorithm", "CRC32C"},
                        {"Checksum", ManifestCrc32cHex(crc)}});
    }
    Write(dir + "/pg_wal/000000010000000000000002", std::string(1024, 'w'));
    nlohmann::json manifest = {
        {"PostgreSQL-Backup-Manifest-Version", 1},
        {"Files", listed},
        {"WAL-Ranges",
         {{{"Timeline", 1}, {"Start-LSN", "0/2000028"}, {"End-LSN", "0/2000100"}}}}};
    Write(dir + "/backup_manifest", manifest.dump());
    return std::string();
  }
  absl::StatusOr<std::string> VerifyBackup(const std::string& dir, bool checksums_checked,
                                           Cancelled) override {
    verified_with_checksums.push_back(!checksums_checked);
    if (!checksums_checked && corrupt_copy) {
      return absl::InternalError("pg_verifybackup exited 1: \"base/1\" has checksum mismatch");
    }
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
  absl::Status ReceiveWal(const std::string&, const std::string&, const std::string& slot,
                          Cancelled cancelled) override {
    {
      absl::MutexLock lock(&mu);
      ++streams;
      slots.push_back(slot);
    }
    if (stream_fails) return absl::UnavailableError("pg_receivewal exited 1: connection refused");
    while (!cancelled()) absl::SleepFor(absl::Milliseconds(5));
    return absl::OkStatus();
  }
  // The restored server answers once started; the WAL source always. Every statement is kept.
  absl::StatusOr<std::string> Query(const std::string& conninfo, const std::string& sql,
                                    Cancelled) override {
    queries.push_back(sql);
    if (conninfo.find("dbname=") != std::string::npos && !server_running) {
      return absl::UnavailableError("psql exited 2: connection refused");
    }
    if (absl::StrContains(sql, "pg_replication_slots")) return std::string(slot_active);
    if (absl::StrContains(sql, "pg_current_wal_lsn")) return std::string("0/3000100\n");
    if (absl::StrContains(sql, "pg_stat_replication")) return std::string("1\n");
    if (absl::StrContains(sql, "pg_is_in_recovery")) return std::string("f\n");
    if (absl::StrContains(sql, "pg_last_xact_replay_timestamp")) {
      return std::string("2023-11-14T22:30:00.000000Z\n");
    }
    if (absl::StrContains(sql, "FROM pg_database")) return std::string("app\npostgres\n");
    if (absl::StrContains(sql, "information_schema.tables")) {
      return std::string("public.items|42\npublic.orders|7\n");
    }
    if (absl::StrContains(sql, "bt_index_check")) {
      if (amcheck_fails) return absl::InternalError("psql exited 3: ERROR: index \"items_pkey\" lacks a main relation tuple");
      return std::string("items_pkey|\norders_pkey|\n");
    }
    return std::string("1\n");
  }
  absl::Status GiveToServer(const std::string& dir) override {
    given.push_back(dir);
    return absl::OkStatus();
  }
  absl::Status StartServer(const std::string& data_dir, const std::string& log, absl::Duration,
                           Cancelled) override {
    started.push_back(data_dir);
    if (start_fails) {
      Write(log, "FATAL:  recovery ended before configured recovery target was reached\n");
      return absl::InternalError("pg_ctl exited 1: could not start server");
    }
    server_running = true;
    return absl::OkStatus();
  }
  absl::Status StopServer(const std::string&) override {
    server_running = false;
    return absl::OkStatus();
  }
  int base_backups = 0;
  int fail_base = 0;
  // The copy's base/1 differs from what the manifest says the server sent.
  bool corrupt_copy = false;
  // Each VerifyBackup call: whether pg_verifybackup was to read the checksums itself.
  std::vector<bool> verified_with_checksums;
  std::vector<std::string> sources;
  absl::Mutex mu;
  int streams ABSL_GUARDED_BY(mu) = 0;
  std::vector<std::string> slots ABSL_GUARDED_BY(mu);
  std::atomic<bool> stream_fails = false;
  std::string slot_active = "t\n";
  std::vector<std::string> queries, given, started;
  bool server_running = false, start_fails = false, amcheck_fails = false;
};

// Records the env it is asked to set.
class FakeCluster : public ClusterOperations {
 public:
  absl::StatusOr<std::vector<hosting::v1::Node>> ListNodes() override { return Unused(); }
  absl::StatusOr<hosting::v1::Node> GetNode(const std::string&) override { return Unused(); }
  absl::StatusOr<hosting::v1::Node> SetAvailability(const std::string&,
                                                    const std::string&) override {
    return Unused();
  }
  absl::StatusOr<std::vector<HostedTask>> Tasks() override { return Unused(); }
  absl::StatusOr<std::vector<std::string>> ServicesShort() override { return Unused(); }
  absl::StatusOr<std::string> TaskLogs(const std::string&, int) override { return Unused(); }
  absl::StatusOr<hosting::v1::Release> ReleaseEnv(const std::string& service,
                                                  const std::map<std::string, std::string>& env,
                                                  const std::string&) override {
    if (service != "web") return absl::NotFoundError(absl::StrCat("service '", service, "'"));
    set_env = env;
    hosting::v1::Release r;
    r.set_id("web-4");
    return r;
  }
  // Service web runs app:v1; a job of app:bad fails; releases end in `release_end`.
  absl::StatusOr<hosting::v1::ServiceSpec> ServiceSpec(const std::string& service) override {
    if (service != "web") return absl::NotFoundError(absl::StrCat("service '", service, "'"));
    hosting::v1::ServiceSpec spec;
    spec.set_name("web");
    spec.set_image("app:v1");
    return spec;
  }
  absl::StatusOr<JobResult> RunJob(const std::string& service, const std::string& name,
                                   const std::string& image, const std::vector<std::string>& args,
                                   absl::Duration, const std::function<bool()>&) override {
    jobs.push_back(absl::StrCat(service, " ", name, " ", image, " ", args.at(0)));
    JobResult r;
    r.succeeded = image != "app:bad";
    r.state = r.succeeded ? "complete" : "failed";
    r.message = r.succeeded ? "finished" : "task: non-zero exit (1)";
    r.logs = r.succeeded ? "migration applied version=2\n"
                         : "migrate failed: migration 2 (add_column): ERROR: division by zero\n";
    return r;
  }
  absl::StatusOr<hosting::v1::Release> StartRelease(const std::string& service,
                                                    const std::string& image,
                                                    const std::string&) override {
    releases.push_back(absl::StrCat(service, " ", image));
    hosting::v1::Release r;
    r.set_id("rel-1");
    r.set_state(hosting::v1::RELEASE_STATE_PROGRESSING);
    return r;
  }
  absl::StatusOr<hosting::v1::Release> GetRelease(const std::string& id) override {
    hosting::v1::Release r;
    r.set_id(id);
    r.set_state(release_end);
    r.set_message(release_end == hosting::v1::RELEASE_STATE_SUCCEEDED ? "done"
                                                                      : "error rate 40% > 5%");
    return r;
  }
  std::vector<std::string> jobs, releases;
  hosting::v1::ReleaseState release_end = hosting::v1::RELEASE_STATE_SUCCEEDED;
  static absl::Status Unused() { return absl::InternalError("not used by restore"); }
  std::map<std::string, std::string> set_env;
};

class BackupRunbooksTest : public ::testing::Test {
 protected:
  BackupRunbooksTest() {
    repo_ = (fs::temp_directory_path() /
             absl::StrCat("hosting_backup_test_", getpid(), "_", counter_++))
                .string();
    config_ = {repo_, "host=10.0.0.6 port=5432 user=replicator password=s3cret", "10.0.0.7:6379",
               "host=10.0.0.5 port=5432 user=replicator", repo_ + "/restores"};
    RunbookEngineOptions o;
    o.stop_grace = absl::ZeroDuration();
    o.launch = [](std::function<void()> attempt) { attempt(); };
    engine_ = std::make_unique<RunbookEngine>(cp_.store, cp_.events, clock_, o);
    backup_ = std::make_shared<BackupRunbook>(config_, tools_, clock_);
    engine_->Register(backup_);
    engine_->Register(std::make_shared<BackupVerifyRunbook>(config_, tools_));
    engine_->Register(std::make_shared<RestoreRunbook>(config_, tools_, cluster_, clock_));
    engine_->Register(std::make_shared<MigrateRunbook>(config_, tools_, cluster_, clock_));
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
  FakeCluster cluster_;
  std::shared_ptr<BackupRunbook> backup_;
  std::unique_ptr<RunbookEngine> engine_;
};

TEST_F(BackupRunbooksTest, ABackupIsVerifiedChecksummedAndOldOnesGo) {
  std::vector<std::string> ids;
  for (int i = 0; i < 3; ++i) {
    absl::StatusOr<RunbookRun> run = Run("backup", {{"keep", "2"}});
    ASSERT_TRUE(run.ok()) << run.status();
    ASSERT_EQ(run->steps(1).name(), "base-backup");
    EXPECT_THAT(run->steps(1).detail(), HasSubstr("password=***"));
    EXPECT_THAT(run->steps(1).detail(), ::testing::Not(HasSubstr("s3cret")));
    RunbookRun r = Finish(run->id());
    ASSERT_EQ(r.state(), hosting::v1::RUN_STATE_SUCCEEDED) << r.message();
    ids.push_back(r.outputs().at("backup_id"));
    clock_.Advance(absl::Hours(1));
  }
  EXPECT_EQ(tools_.sources.front(), config_.database);
  // keep=2: the first is gone, at once from the repository's list, and its files once the
  // background deletion is done.
  EXPECT_EQ(ListBackups(repo_), (std::vector<std::string>{ids[2], ids[1]}));
  backup_->WaitForExpiredDeleted();
  std::vector<std::string> entries;
  for (const auto& e : fs::directory_iterator(repo_)) entries.push_back(e.path().filename());
  EXPECT_THAT(entries, ::testing::Not(::testing::Contains(::testing::HasSubstr(ids[0]))));
  EXPECT_THAT(entries, ::testing::Not(::testing::Contains(::testing::StartsWith(".expired-"))));
  // The manifest: SHA-256 of the files, the WAL range, the version.
  std::ifstream in(repo_ + "/" + ids[2] + "/hosting-backup.json");
  std::string manifest((std::istreambuf_iterator<char>(in)), {});
  EXPECT_THAT(manifest, HasSubstr("\"redis.rdb\""));
  EXPECT_THAT(manifest, HasSubstr(FileSha256(repo_ + "/" + ids[2] + "/backup_manifest").value()));
  EXPECT_THAT(manifest, HasSubstr("\"Start-LSN\": \"0/2000028\""));
  EXPECT_THAT(manifest, HasSubstr("\"postgresql_version\": \"15\""));
  EXPECT_FALSE(fs::exists(repo_ + "/" + ids[2] + ".partial"));
  // Checksummed while copying: pg_verifybackup was left the rest (--skip-checksums).
  EXPECT_EQ(tools_.verified_with_checksums, std::vector<bool>(3, false));
}

TEST_F(BackupRunbooksTest, TheChecksumsTakenWhileCopyingAreCheckedAgainstTheManifest) {
  absl::StatusOr<RunbookRun> run = Run("backup");
  ASSERT_TRUE(run.ok()) << run.status();
  RunbookRun r = Finish(run->id());
  ASSERT_EQ(r.state(), hosting::v1::RUN_STATE_SUCCEEDED) << r.message();
  const int verify = run->steps_size() - 4;
  ASSERT_EQ(r.steps(verify).name(), "verify");
  EXPECT_THAT(r.steps(verify).output(),
              HasSubstr("3 files match their CRC-32C in backup_manifest"));

  // A copy that differs from what the server sent fails verification naming the file, and
  // leaves no backup.
  tools_.corrupt_copy = true;
  clock_.Advance(absl::Hours(1));
  absl::StatusOr<RunbookRun> bad = Run("backup");
  ASSERT_TRUE(bad.ok()) << bad.status();
  RunbookRun failed = Finish(bad->id());
  EXPECT_EQ(failed.state(), hosting::v1::RUN_STATE_FAILED);
  EXPECT_THAT(failed.message(), HasSubstr("base/1 has CRC-32C"));
  EXPECT_THAT(failed.message(), HasSubstr("the manifest " + ManifestCrc32cHex(Crc32c(0, "other"))));
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
  bare.Register(std::make_shared<RestoreRunbook>(BackupConfig{repo_, "", ""}, tools_, cluster_,
                                                 clock_));
  hosting::v1::RunRunbookRequest req;
  req.set_runbook("backup");
  absl::Status st = bare.Run(req, "me").status();
  EXPECT_TRUE(absl::IsFailedPrecondition(st)) << st;
  EXPECT_THAT(std::string(st.message()), HasSubstr("--backup-database"));
  req.set_runbook("restore");
  st = bare.Run(req, "me").status();
  EXPECT_TRUE(absl::IsFailedPrecondition(st)) << st;
  EXPECT_THAT(std::string(st.message()), HasSubstr("--restore-root"));
}

TEST_F(BackupRunbooksTest, ABackupChecksTheWalArchiveStreamsFirstAndRetentionTrimsTheArchive) {
  fs::create_directories(config_.wal_dir());
  // Older than any backup (the fake's backups start in ...02), and newer.
  for (const char* seg : {"000000010000000000000001", "000000010000000000000002",
                          "000000010000000000000003.partial"}) {
    Write(config_.wal_dir() + "/" + seg, "wal");
  }
  absl::StatusOr<RunbookRun> run = Run("backup");
  ASSERT_TRUE(run.ok()) << run.status();
  EXPECT_EQ(run->steps(0).name(), "wal-archive");
  RunbookRun r = Finish(run->id());
  ASSERT_EQ(r.state(), hosting::v1::RUN_STATE_SUCCEEDED) << r.message();
  EXPECT_THAT(r.steps(0).output(), HasSubstr("000000010000000000000003.partial"));
  EXPECT_EQ(ArchivedWal(config_.wal_dir()),
            (std::vector<std::string>{"000000010000000000000002",
                                      "000000010000000000000003.partial"}));

  tools_.slot_active = "f\n";
  clock_.Advance(absl::Hours(1));
  absl::StatusOr<RunbookRun> stalled = Run("backup");
  ASSERT_TRUE(stalled.ok());
  RunbookRun s = Finish(stalled->id());
  EXPECT_EQ(s.state(), hosting::v1::RUN_STATE_FAILED);
  EXPECT_THAT(s.message(), HasSubstr("WAL archiving is not streaming"));
  EXPECT_EQ(s.steps(0).attempts(), 4);
}

TEST_F(BackupRunbooksTest, TheWalArchiverStreamsThroughItsSlotAndRestartsWhenTheStreamEnds) {
  tools_.stream_fails = true;
  WalArchiver archiver(config_, tools_, absl::Milliseconds(1));
  archiver.Start();
  const absl::Time deadline = absl::Now() + absl::Seconds(30);  // slack for sanitizer builds
  while (archiver.status().starts < 3 && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(1));
  }
  archiver.Stop();
  EXPECT_GE(archiver.status().starts, 3);
  EXPECT_THAT(archiver.status().last_error, HasSubstr("connection refused"));
  {
    absl::MutexLock lock(&tools_.mu);
    EXPECT_EQ(tools_.slots.front(), kWalArchiveSlot);
  }
  // A stream that runs ends when the archiver stops.
  tools_.stream_fails = false;
  WalArchiver streaming(config_, tools_);
  streaming.Start();
  while (!streaming.status().streaming) absl::SleepFor(absl::Milliseconds(1));
  streaming.Stop();
  EXPECT_FALSE(streaming.status().streaming);
  EXPECT_EQ(streaming.status().starts, 1);
}

class RestoreTest : public BackupRunbooksTest {
 protected:
  // A backup made by the backup runbook an hour after the start, and WAL around it.
  void SetUp() override {
    fs::create_directories(config_.wal_dir());
    for (const char* seg : {"000000010000000000000001", "000000010000000000000002",
                            "000000010000000000000003.partial"}) {
      Write(config_.wal_dir() + "/" + seg, seg);
    }
    backup_made_ = clock_.Now();
    absl::StatusOr<RunbookRun> run = Run("backup");
    ASSERT_TRUE(run.ok());
    RunbookRun r = Finish(run->id());
    ASSERT_EQ(r.state(), hosting::v1::RUN_STATE_SUCCEEDED) << r.message();
    id_ = r.outputs().at("backup_id");
    clock_.Advance(absl::Hours(1));
  }
  std::string At(absl::Time t) { return absl::FormatTime(absl::RFC3339_sec, t, absl::UTCTimeZone()); }

  absl::Time backup_made_;
  std::string id_;
};

TEST_F(RestoreTest, APlanNamesTheBackupForTheTargetAndRefusesWhatCannotBeRestored) {
  hosting::v1::RunRunbookRequest req;
  req.set_runbook("restore");
  req.set_dry_run(true);
  (*req.mutable_parameters())["target_time"] = At(clock_.Now() - absl::Minutes(10));
  absl::StatusOr<RunbookRun> plan = engine_->Run(req, "me");
  ASSERT_TRUE(plan.ok()) << plan.status();
  ASSERT_EQ(plan->steps_size(), 4);  // no service: no switch
  EXPECT_THAT(plan->steps(1).detail(), HasSubstr("copy " + id_));
  EXPECT_THAT(plan->steps(1).detail(), HasSubstr(At(clock_.Now() - absl::Minutes(10)).substr(0, 16)));

  absl::Status before = Run("restore", {{"target_time", At(backup_made_ - absl::Hours(1))}}).status();
  EXPECT_TRUE(absl::IsFailedPrecondition(before)) << before;
  EXPECT_THAT(std::string(before.message()), HasSubstr("the oldest is " + id_));
  absl::Status future = Run("restore", {{"target_time", At(clock_.Now() + absl::Hours(1))}}).status();
  EXPECT_THAT(std::string(future.message()), HasSubstr("parameters.target_time"));
  absl::Status unknown = Run("restore", {{"backup", "20200101T000000Z"}}).status();
  EXPECT_TRUE(absl::IsNotFound(unknown)) << unknown;

  // Without WAL archiving, only "latest" (the backup's end) can be restored.
  RunbookEngineOptions o;
  o.stop_grace = absl::ZeroDuration();
  RunbookEngine no_wal(cp_.store, cp_.events, clock_, o);
  BackupConfig bare = config_;
  bare.wal_source.clear();
  no_wal.Register(std::make_shared<RestoreRunbook>(bare, tools_, cluster_, clock_));
  absl::Status pitr = no_wal.Run(req, "me").status();
  EXPECT_TRUE(absl::IsFailedPrecondition(pitr)) << pitr;
  EXPECT_THAT(std::string(pitr.message()), HasSubstr("--wal-archive-source"));
}

TEST_F(RestoreTest, ARestoreRecoversToTheTargetChecksAndSwitchesOnlyOnceApproved) {
  const std::string target = At(clock_.Now() - absl::Minutes(10));
  absl::StatusOr<RunbookRun> run =
      Run("restore", {{"target_time", target}, {"service", "web"}, {"port", "55999"}});
  ASSERT_TRUE(run.ok()) << run.status();
  RunbookRun r = Finish(run->id());
  ASSERT_EQ(r.state(), hosting::v1::RUN_STATE_WAITING_APPROVAL) << r.message();
  EXPECT_TRUE(cluster_.set_env.empty());
  const std::string data = r.outputs().at("restored_data_dir");
  // The WAL from the backup's start on, the partial segment as a whole one.
  std::vector<std::string> wal;
  for (const auto& e : fs::directory_iterator(data + "/restore_wal")) {
    wal.push_back(e.path().filename().string());
  }
  std::sort(wal.begin(), wal.end());
  EXPECT_EQ(wal, (std::vector<std::string>{"000000010000000000000002",
                                           "000000010000000000000003"}));
  std::ifstream conf(data + "/postgresql.auto.conf");
  std::string text((std::istreambuf_iterator<char>(conf)), {});
  EXPECT_THAT(text, HasSubstr(absl::StrCat("recovery_target_time = '", target.substr(0, 10), " ",
                                           target.substr(11, 8), ".000000+00'")));
  EXPECT_THAT(text, HasSubstr("port = 55999"));
  EXPECT_THAT(text, HasSubstr("recovery_target_action = 'promote'"));
  EXPECT_TRUE(fs::exists(data + "/recovery.signal"));
  EXPECT_FALSE(fs::exists(data + "/hosting-backup.json"));
  EXPECT_EQ(tools_.given, std::vector<std::string>{data});
  EXPECT_EQ(tools_.started, std::vector<std::string>{data});
  EXPECT_EQ(r.outputs().at("row_counts"),
            "app.public.items=42,app.public.orders=7,postgres.public.items=42,"
            "postgres.public.orders=7");
  EXPECT_TRUE(r.outputs().contains("recovery_seconds"));
  EXPECT_EQ(r.outputs().at("recovered_to"), "2023-11-14T22:30:00.000000Z");
  EXPECT_THAT(r.steps(3).output(), HasSubstr("4 B-tree indexes pass amcheck"));

  ASSERT_TRUE(engine_->Approve(run->id(), "checked the counts", "token:ops").ok());
  r = Finish(run->id());
  ASSERT_EQ(r.state(), hosting::v1::RUN_STATE_SUCCEEDED) << r.message();
  EXPECT_EQ(cluster_.set_env, (std::map<std::string, std::string>{{"DB_HOST", "127.0.0.1"},
                                                                  {"DB_PORT", "55999"},
                                                                  {"DB_REPLICA_HOST", "127.0.0.1"},
                                                                  {"DB_REPLICA_PORT", "55999"}}));
}

TEST_F(RestoreTest, ARestoreThatCannotStartOrIsDamagedFailsSayingWhy) {
  tools_.start_fails = true;
  absl::StatusOr<RunbookRun> run = Run("restore");
  ASSERT_TRUE(run.ok()) << run.status();
  RunbookRun r = Finish(run->id());
  EXPECT_EQ(r.state(), hosting::v1::RUN_STATE_FAILED);
  EXPECT_THAT(r.message(), HasSubstr("did not start"));
  EXPECT_THAT(r.message(), HasSubstr("recovery ended before configured recovery target"));

  tools_.start_fails = false;
  tools_.amcheck_fails = true;
  clock_.Advance(absl::Seconds(2));
  run = Run("restore");
  ASSERT_TRUE(run.ok()) << run.status();
  r = Finish(run->id());
  EXPECT_EQ(r.state(), hosting::v1::RUN_STATE_FAILED);
  EXPECT_THAT(r.message(), HasSubstr("amcheck found the restored database app damaged"));

  // A changed backup is refused before anything is copied.
  Write(repo_ + "/" + id_ + "/redis.rdb", "tampered");
  tools_.started.clear();
  clock_.Advance(absl::Seconds(2));
  run = Run("restore");
  ASSERT_TRUE(run.ok()) << run.status();
  r = Finish(run->id());
  EXPECT_EQ(r.state(), hosting::v1::RUN_STATE_FAILED);
  EXPECT_THAT(r.message(), HasSubstr("is corrupt"));
  EXPECT_TRUE(tools_.started.empty());
}

TEST_F(BackupRunbooksTest, AMigrationRunsAfterABackupAndItsReleaseAfterIt) {
  absl::StatusOr<RunbookRun> run = Run("migrate", {{"service", "web"}, {"image", "app:v2"}});
  ASSERT_TRUE(run.ok()) << run.status();
  EXPECT_EQ(run->target(), "web");
  RunbookRun r = Finish(run->id());
  ASSERT_EQ(r.state(), hosting::v1::RUN_STATE_SUCCEEDED) << r.message();
  EXPECT_EQ(ListBackups(repo_), std::vector<std::string>{r.outputs().at("backup_id")});
  EXPECT_TRUE(fs::exists(repo_ + "/" + r.outputs().at("backup_id") + "/hosting-backup.json"));
  EXPECT_EQ(cluster_.jobs, std::vector<std::string>{"web web-" + run->id() + " app:v2 migrate"});
  EXPECT_EQ(cluster_.releases, std::vector<std::string>{"web app:v2"});
  EXPECT_EQ(r.outputs().at("release"), "rel-1");
  EXPECT_THAT(r.steps(1).output(), HasSubstr("migration applied version=2"));

  // One migration of a service at a time; unknown services and the same image are refused.
  EXPECT_TRUE(absl::IsNotFound(Run("migrate", {{"service", "api"}, {"image", "x:1"}}).status()));
  absl::Status same = Run("migrate", {{"service", "web"}, {"image", "app:v1"}}).status();
  EXPECT_THAT(std::string(same.message()), HasSubstr("runs app:v1 already"));
}

TEST_F(BackupRunbooksTest, AFailingMigrationReleasesNothingAndShowsWhy) {
  absl::StatusOr<RunbookRun> run =
      Run("migrate", {{"service", "web"}, {"image", "app:bad"}, {"backup", "false"}});
  ASSERT_TRUE(run.ok()) << run.status();
  ASSERT_EQ(run->steps_size(), 2);  // no backup
  RunbookRun r = Finish(run->id());
  EXPECT_EQ(r.state(), hosting::v1::RUN_STATE_FAILED);
  EXPECT_THAT(r.message(), HasSubstr("the migration failed (failed: task: non-zero exit (1))"));
  EXPECT_THAT(r.message(), HasSubstr("web still runs app:v1"));
  EXPECT_THAT(r.message(), HasSubstr("division by zero"));
  EXPECT_TRUE(cluster_.releases.empty());
  EXPECT_TRUE(ListBackups(repo_).empty());

  // A release that rolls back fails the run, naming it.
  cluster_.release_end = hosting::v1::RELEASE_STATE_ROLLED_BACK;
  run = Run("migrate", {{"service", "web"}, {"image", "app:v2"}, {"backup", "false"}});
  ASSERT_TRUE(run.ok()) << run.status();
  r = Finish(run->id());
  EXPECT_EQ(r.state(), hosting::v1::RUN_STATE_FAILED);
  EXPECT_THAT(r.message(), HasSubstr("release rel-1 ended rolled_back: error rate 40% > 5%"));
}

}  // namespace
}  // namespace hosting::controlplane
