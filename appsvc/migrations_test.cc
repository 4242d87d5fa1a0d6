#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "appsvc/pg_repository.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace hosting::appsvc {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

class MigrationsTest : public ::testing::Test {
 protected:
  MigrationsTest() : dir_(fs::temp_directory_path() / absl::StrCat("appsvc_migrations_", getpid())) {
    fs::create_directories(dir_);
  }
  ~MigrationsTest() override { fs::remove_all(dir_); }
  void Write(const std::string& name, const std::string& sql) {
    std::ofstream(dir_ / name) << sql;
  }
  fs::path dir_;
};

TEST_F(MigrationsTest, FilesFollowTheBuiltInOnesInVersionOrder) {
  absl::StatusOr<std::vector<PgMigration>> none = AppMigrations((dir_ / "absent").string());
  ASSERT_TRUE(none.ok()) << none.status();
  const size_t built_in = none->size();
  ASSERT_GE(built_in, 1u);
  Write("0010_add_nickname.sql", "ALTER TABLE users ADD COLUMN nickname text;");
  Write("3_orders_note.sql", "ALTER TABLE orders ADD COLUMN note text;");
  Write("README", "not a migration");
  absl::StatusOr<std::vector<PgMigration>> all = AppMigrations(dir_.string());
  ASSERT_TRUE(all.ok()) << all.status();
  ASSERT_EQ(all->size(), built_in + 2);
  EXPECT_EQ((*all)[built_in].version, 3);
  EXPECT_EQ((*all)[built_in].name, "orders_note");
  EXPECT_EQ((*all)[built_in + 1].version, 10);
  EXPECT_EQ((*all)[built_in + 1].sql, "ALTER TABLE users ADD COLUMN nickname text;");
}

TEST_F(MigrationsTest, ABadNameOrARepeatedVersionIsNamed) {
  Write("1_again.sql", "SELECT 1;");
  absl::Status low = AppMigrations(dir_.string()).status();
  EXPECT_TRUE(absl::IsInvalidArgument(low)) << low;
  EXPECT_THAT(std::string(low.message()), HasSubstr("1_again.sql: want <version>_<name>.sql"));
  fs::remove(dir_ / "1_again.sql");
  Write("5_a.sql", "SELECT 1;");
  Write("005_b.sql", "SELECT 2;");
  absl::Status twice = AppMigrations(dir_.string()).status();
  EXPECT_THAT(std::string(twice.message()), HasSubstr("version 5 is given twice"));
}

}  // namespace
}  // namespace hosting::appsvc
