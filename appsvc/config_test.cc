#include "appsvc/config.h"

#include <fstream>

#include <map>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace hosting::appsvc {
namespace {

using ::testing::HasSubstr;

absl::StatusOr<Config> FromMap(std::map<std::string, std::string> env) {
  return ConfigFromLookup([&](const char* name) -> const char* {
    auto it = env.find(name);
    return it == env.end() ? nullptr : it->second.c_str();
  });
}

TEST(ConfigTest, ReferenceVariables) {
  auto c = FromMap({{"PORT", "8080"}, {"DB_HOST", "db"}, {"DB_PORT", "6432"}, {"DB_NAME", "shop"},
                    {"DB_USER", "u"}, {"DB_PASSWORD", "p w'"}, {"REDIS_HOST", "cache"},
                    {"REDIS_PORT", "6380"}, {"DB_REPLICA_HOST", "replica"},
                    {"DB_REPLICA_MAX_LAG_MS", "250"}, {"FAULT_ERROR_RATE", "0.3"}});
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->port, 8080);
  EXPECT_EQ(c->db_port, 6432);
  EXPECT_EQ(c->redis_host, "cache");
  EXPECT_EQ(c->replica_max_lag, absl::Milliseconds(250));
  EXPECT_DOUBLE_EQ(c->fault_error_rate, 0.3);
  std::string info = PgConnInfo(*c, false);
  EXPECT_THAT(info, HasSubstr("host='db' port=6432 dbname='shop' user='u'"));
  EXPECT_THAT(info, HasSubstr(R"(password='p w\'')"));
  EXPECT_THAT(PgConnInfo(*c, true), HasSubstr("host='replica'"));
}

TEST(ConfigTest, ErrorsNameTheVariable) {
  auto c = FromMap({{"PORT", "http"}, {"DB_POOL_SIZE", "0"}, {"FAULT_ERROR_RATE", "2"},
                    {"ACCESS_LOG", "maybe"}, {"MIGRATE_ON_START", "perhaps"}});
  ASSERT_FALSE(c.ok());
  std::string msg(c.status().message());
  for (const char* v : {"PORT=http", "DB_POOL_SIZE=0", "FAULT_ERROR_RATE=2", "ACCESS_LOG=maybe",
                        "MIGRATE_ON_START=perhaps"}) {
    EXPECT_THAT(msg, HasSubstr(v));
  }
}

TEST(ConfigTest, Defaults) {
  auto c = FromMap({});
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->port, 3000);
  EXPECT_TRUE(c->db_replica_host.empty());
  EXPECT_EQ(c->cache_ttl_user, absl::Seconds(300));
  EXPECT_EQ(c->cache_ttl_list, absl::Seconds(60));
}

TEST(ConfigTest, PasswordsComeFromDockerSecretFiles) {
  const std::string path = ::testing::TempDir() + "/db_password";
  {
    std::ofstream f(path);
    f << "s3cret pass\n";
  }
  absl::StatusOr<Config> c = FromMap({{"DB_PASSWORD_FILE", path}, {"REDIS_PASSWORD", "r"}});
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->db_password, "s3cret pass");
  EXPECT_EQ(c->redis_password, "r");
  // Both given, or a file that cannot be read: an error naming the variable, not the value.
  absl::Status both = FromMap({{"DB_PASSWORD_FILE", path}, {"DB_PASSWORD", "x"}}).status();
  EXPECT_THAT(std::string(both.message()), ::testing::HasSubstr("both set"));
  absl::Status missing = FromMap({{"REDIS_PASSWORD_FILE", "/nonexistent/secret"}}).status();
  EXPECT_THAT(std::string(missing.message()), ::testing::HasSubstr("REDIS_PASSWORD_FILE"));
  EXPECT_THAT(std::string(missing.message()), ::testing::Not(::testing::HasSubstr("s3cret")));
}

}  // namespace
}  // namespace hosting::appsvc
