#include "controlplane/store/sqlite_store.h"

#include <filesystem>

#include "controlplane/store/store_conformance.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace hosting::controlplane {
namespace {

std::string TempDbPath() {
  static int n = 0;
  auto dir = std::filesystem::temp_directory_path() /
             ("hosting_store_test_" + std::to_string(getpid()) + "_" + std::to_string(n++));
  std::filesystem::create_directories(dir);
  return (dir / "hostd.db").string();
}

INSTANTIATE_TEST_SUITE_P(
    Sqlite, StoreConformanceTest,
    ::testing::Values(StoreFactory{"memory",
                                   [] {
                                     return std::unique_ptr<Store>(
                                         SqliteStore::Open(":memory:").value());
                                   }},
                      StoreFactory{"file",
                                   [] {
                                     return std::unique_ptr<Store>(
                                         SqliteStore::Open(TempDbPath()).value());
                                   }}),
    StoreFactoryName);

TEST(SqliteStoreTest, StateSurvivesReopenAndMigrationsRunOnce) {
  const std::string path = TempDbPath();
  {
    auto store = SqliteStore::Open(path);
    ASSERT_TRUE(store.ok()) << store.status();
    EXPECT_EQ((*store)->SchemaVersionForTest(), 4);
    ServiceRecord r;
    r.spec.set_name("web");
    r.spec.set_image("img");
    r.revision = 1;
    ASSERT_TRUE((*store)->PutService(r, 0, nullptr).ok());
  }
  auto reopened = SqliteStore::Open(path);
  ASSERT_TRUE(reopened.ok()) << reopened.status();
  EXPECT_EQ((*reopened)->SchemaVersionForTest(), 4);
  EXPECT_EQ((*reopened)->GetService("web")->spec.image(), "img");
}

TEST(SqliteStoreTest, UnopenablePathIsAnError) {
  auto store = SqliteStore::Open("/nonexistent-dir/sub/hostd.db");
  EXPECT_FALSE(store.ok());
  EXPECT_THAT(std::string(store.status().message()), ::testing::HasSubstr("/nonexistent-dir"));
}

TEST(OpenStoreTest, Urls) {
  EXPECT_TRUE(OpenStore("sqlite://:memory:").ok());
  EXPECT_TRUE(OpenStore("sqlite://" + TempDbPath()).ok());
  EXPECT_TRUE(absl::IsInvalidArgument(OpenStore("sqlite://relative.db").status()));
  EXPECT_TRUE(absl::IsInvalidArgument(OpenStore("mysql://x").status()));
  absl::Status pg = OpenStore("postgres://localhost/hosting").status();
  EXPECT_TRUE(absl::IsInvalidArgument(pg));
  EXPECT_THAT(std::string(pg.message()), ::testing::HasSubstr("PostgreSQL"));
}

}  // namespace
}  // namespace hosting::controlplane
