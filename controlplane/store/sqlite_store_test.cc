#include "controlplane/store/sqlite_store.h"

#include <filesystem>

#include "controlplane/store/postgres_store.h"
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
    EXPECT_EQ((*store)->SchemaVersionForTest(), 8);
    ServiceRecord r;
    r.spec.set_name("web");
    r.spec.set_image("img");
    r.revision = 1;
    ASSERT_TRUE((*store)->PutService(r, 0, nullptr).ok());
  }
  auto reopened = SqliteStore::Open(path);
  ASSERT_TRUE(reopened.ok()) << reopened.status();
  EXPECT_EQ((*reopened)->SchemaVersionForTest(), 8);
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
  // Nothing listens on port 1: the PostgreSQL backend is tried and says what it could not reach.
  absl::Status pg = OpenStore("postgres://hostd:pw@127.0.0.1:1/hosting?connect_timeout=2").status();
  EXPECT_TRUE(absl::IsUnavailable(pg)) << pg;
  EXPECT_THAT(std::string(pg.message()),
              ::testing::HasSubstr("store postgres://hostd:***@127.0.0.1:1/hosting"));
  EXPECT_THAT(std::string(pg.message()), ::testing::Not(::testing::HasSubstr(":pw@")));
}

TEST(PostgresStoreTest, RedactedHidesPasswordsInEveryForm) {
  EXPECT_EQ(PostgresStore::Redacted("postgresql://u:secret@h:5432,h2/db?x=1"),
            "postgresql://u:***@h:5432,h2/db?x=1");
  EXPECT_EQ(PostgresStore::Redacted("postgres://u@h/db?password=secret&sslmode=require"),
            "postgres://u@h/db?password=***&sslmode=require");
  EXPECT_EQ(PostgresStore::Redacted("host=a password='se cret' dbname=x"),
            "host=a password=*** dbname=x");
  EXPECT_EQ(PostgresStore::Redacted("postgres://h/db"), "postgres://h/db");
}

}  // namespace
}  // namespace hosting::controlplane

namespace hosting::controlplane {
namespace {

// The event log keeps the newest events and prunes the rest: replay starts at the oldest kept.
TEST(SqliteStoreTest, EventRetentionKeepsTheNewestAndPrunesTheOldest) {
  auto store = SqliteStore::Open(":memory:", /*max_events=*/1000).value();
  for (int i = 1; i <= 3500; ++i) {
    hosting::v1::Event e;
    e.set_type("test.event");
    e.set_message(std::to_string(i));
    ASSERT_EQ(store->AppendEvent(e).value(), i);
  }
  // Pruned at 3000 (every 1,000 appends): everything up to 2000 is gone, 2001..3500 kept.
  std::vector<hosting::v1::Event> kept = store->ListEvents(0, 10000).value();
  ASSERT_EQ(kept.size(), 1500u);
  EXPECT_EQ(kept.front().sequence(), 2001);
  EXPECT_EQ(kept.front().message(), "2001");
  EXPECT_EQ(kept.back().sequence(), 3500);
  // A replay from a pruned sequence starts at the oldest kept event, in order.
  std::vector<hosting::v1::Event> from = store->ListEvents(10, 5).value();
  ASSERT_EQ(from.size(), 5u);
  EXPECT_EQ(from.front().sequence(), 2001);
  EXPECT_EQ(from.back().sequence(), 2005);
  // Sequences keep counting after a prune.
  hosting::v1::Event next;
  next.set_type("test.event");
  EXPECT_EQ(store->AppendEvent(next).value(), 3501);
}

}  // namespace
}  // namespace hosting::controlplane
