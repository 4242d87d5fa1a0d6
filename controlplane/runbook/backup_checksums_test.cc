#include "controlplane/runbook/backup_checksums.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "common/crc32c.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace hosting::controlplane {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

void Write(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

class BackupChecksumsTest : public ::testing::Test {
 protected:
  BackupChecksumsTest()
      : dir_((fs::temp_directory_path() / absl::StrCat("hosting_sums_test_", getpid())).string()) {
    fs::remove_all(dir_);
  }
  ~BackupChecksumsTest() override { fs::remove_all(dir_); }

  // A manifest as pg_basebackup writes it, listing `files` with the CRC-32C of their text.
  void WriteManifest(const std::map<std::string, std::string>& files) {
    nlohmann::json listed = nlohmann::json::array();
    for (const auto& [name, text] : files) {
      listed.push_back({{"Path", name},
                        {"Size", text.size()},
                        {"Checksum-Algorithm", "CRC32C"},
                        {"Checksum", ManifestCrc32cHex(Crc32c(0, text))}});
    }
    Write(dir_ + "/backup_manifest",
          nlohmann::json({{"PostgreSQL-Backup-Manifest-Version", 1}, {"Files", listed}}).dump());
  }

  std::string dir_;
};

TEST(ManifestCrc32cHexTest, IsTheLittleEndianBytesPostgresWrites) {
  EXPECT_EQ(ManifestCrc32cHex(0xE3069283), "839206e3");
  EXPECT_EQ(ManifestCrc32cHex(0), "00000000");
}

TEST_F(BackupChecksumsTest, EveryFileIsSummedAsItsWriterClosesItInDirectoriesMadeMeanwhile) {
  absl::StatusOr<std::unique_ptr<ChecksumsWhileWriting>> watch =
      ChecksumsWhileWriting::Start(dir_, {"pg_wal"});
  ASSERT_TRUE(watch.ok()) << watch.status();
  EXPECT_EQ(fs::status(dir_).permissions() & fs::perms::all, fs::perms::owner_all);
  std::map<std::string, std::string> files;
  std::thread writer([&] {
    fs::create_directories(dir_ + "/global");
    for (int db = 1; db <= 3; ++db) {
      fs::create_directories(absl::StrCat(dir_, "/base/", db));
      // Give the watcher time to watch the directory before its files are written: the ones
      // written before are left to the check (tested below), and this test wants them summed.
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      for (int f = 0; f < 5; ++f) {
        const std::string name = absl::StrCat("base/", db, "/", 1000 + f);
        files[name] = std::string(1000 * (f + 1) + db, static_cast<char>('a' + f));
        Write(dir_ + "/" + name, files[name]);
      }
    }
    files["global/pg_control"] = std::string(8192, 'c');
    Write(dir_ + "/global/pg_control", files["global/pg_control"]);
    files["PG_VERSION"] = "15\n";
    Write(dir_ + "/PG_VERSION", "15\n");
    fs::create_directories(dir_ + "/pg_wal");
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    Write(dir_ + "/pg_wal/000000010000000000000001", std::string(4096, 'w'));
  });
  writer.join();
  FileSums sums = (*watch)->Finish();
  EXPECT_EQ(sums.size(), files.size());
  for (const auto& [name, text] : files) {
    ASSERT_TRUE(sums.contains(name)) << name;
    EXPECT_EQ(sums[name].crc32c, Crc32c(0, text)) << name;
    EXPECT_EQ(sums[name].size, text.size()) << name;
  }
  EXPECT_FALSE(sums.contains("pg_wal/000000010000000000000001"));

  WriteManifest(files);
  absl::StatusOr<std::string> checked = CheckManifestCrc32c(dir_, sums);
  ASSERT_TRUE(checked.ok()) << checked.status();
  EXPECT_THAT(*checked, HasSubstr(absl::StrCat(files.size(), " files match")));
  EXPECT_THAT(*checked, HasSubstr(absl::StrCat(files.size(), " summed while copying, 0 read now")));
}

TEST_F(BackupChecksumsTest, FilesNotSummedOrChangedSinceAreReadAndADifferenceNamesTheFile) {
  fs::create_directories(dir_ + "/base/1");
  const std::map<std::string, std::string> files = {
      {"base/1/1", std::string(5000, 'x')}, {"base/1/2", "short"}, {"PG_VERSION", "15\n"}};
  for (const auto& [name, text] : files) Write(dir_ + "/" + name, text);
  WriteManifest(files);
  FileSums known;
  known["base/1/1"] = SumFile(dir_ + "/base/1/1").value();
  absl::StatusOr<std::string> checked = CheckManifestCrc32c(dir_, known);
  ASSERT_TRUE(checked.ok()) << checked.status();
  EXPECT_THAT(*checked, HasSubstr("1 summed while copying, 2 read now"));

  // Changed after it was summed (same size): read again, and found to differ.
  Write(dir_ + "/base/1/1", std::string(4999, 'x') + "y");
  absl::StatusOr<std::string> changed = CheckManifestCrc32c(dir_, known);
  EXPECT_TRUE(absl::IsDataLoss(changed.status())) << changed.status();
  EXPECT_THAT(changed.status().message(), HasSubstr("base/1/1 has CRC-32C"));

  fs::remove(dir_ + "/base/1/2");
  absl::StatusOr<std::string> missing = CheckManifestCrc32c(dir_, {});
  EXPECT_THAT(missing.status().message(), HasSubstr("base/1/2 is missing"));
}

TEST_F(BackupChecksumsTest, AManifestOfAnotherAlgorithmIsLeftToPgVerifybackup) {
  fs::create_directories(dir_);
  Write(dir_ + "/PG_VERSION", "15\n");
  Write(dir_ + "/backup_manifest",
        R"({"PostgreSQL-Backup-Manifest-Version": 1, "Files": [{"Path": "PG_VERSION", "Size": 3,
            "Checksum-Algorithm": "SHA256", "Checksum": "ab"}]})");
  EXPECT_TRUE(absl::IsFailedPrecondition(CheckManifestCrc32c(dir_, {}).status()));
  fs::remove(dir_ + "/backup_manifest");
  EXPECT_TRUE(absl::IsFailedPrecondition(CheckManifestCrc32c(dir_, {}).status()));
}

}  // namespace
}  // namespace hosting::controlplane
