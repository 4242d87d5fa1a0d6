#include "controlplane/api/audit.h"

#include <filesystem>
#include <memory>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/clock.h"
#include "controlplane/store/sqlite_store.h"
#include "controlplane/testing/fault_store.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "hosting/v1/auth.pb.h"
#include "hosting/v1/releases.pb.h"
#include "hosting/v1/service.pb.h"

namespace hosting::controlplane {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

std::unique_ptr<Store> TempStore() {
  static int n = 0;
  auto dir = std::filesystem::temp_directory_path() /
             absl::StrCat("hosting_audit_test_", getpid(), "_", n++);
  std::filesystem::create_directories(dir);
  return std::unique_ptr<Store>(SqliteStore::Open((dir / "hostd.db").string()).value());
}

TEST(AuditTest, SecretsAreRedactedWhereverTheyAre) {
  hosting::v1::ApplyServiceRequest apply;
  apply.mutable_spec()->set_name("web");
  (*apply.mutable_spec()->mutable_env())["DB_PASSWORD"] = "hunter2";
  (*apply.mutable_spec()->mutable_env())["API_TOKEN"] = "t0ken";
  (*apply.mutable_spec()->mutable_env())["aws_secret_access_key"] = "s3cr3t";
  (*apply.mutable_spec()->mutable_env())["MODE"] = "production";
  const std::string json = RedactedJson(apply);
  for (const char* secret : {"hunter2", "t0ken", "s3cr3t"}) {
    EXPECT_THAT(json, Not(HasSubstr(secret)));
  }
  EXPECT_THAT(json, HasSubstr("\"DB_PASSWORD\":\"[redacted]\""));
  EXPECT_THAT(json, HasSubstr("production"));
  EXPECT_THAT(json, HasSubstr("\"name\":\"web\""));
}

TEST(AuditTest, TheServiceIsReadFromWhicheverFieldNamesIt) {
  hosting::v1::ApplyServiceRequest apply;
  apply.mutable_spec()->set_name("web");
  EXPECT_EQ(ServiceNamedIn(apply), "web");
  hosting::v1::AbortReleaseRequest abort;
  abort.set_id("my-api-12");
  EXPECT_EQ(ServiceNamedIn(abort), "my-api");
  hosting::v1::RollbackServiceRequest rollback;
  rollback.set_service("db");
  EXPECT_EQ(ServiceNamedIn(rollback), "db");
  EXPECT_EQ(ServiceNamedIn(hosting::v1::CreateTokenRequest()), "");
}

TEST(AuditTest, EntriesReachTheStoreOnceItAnswersAgain) {
  FakeClock clock;
  FaultStore store(TempStore());
  AuditLog log(store, clock);
  store.SetUnavailable(true);
  hosting::v1::AuditEntry entry;
  entry.set_method("/hosting.v1.ServiceManager/ScaleService");
  entry.set_service("web");
  entry.set_code("OK");
  log.Record(entry);
  // The writer retries while the store is down; nothing is lost.
  absl::SleepFor(absl::Milliseconds(50));
  store.SetUnavailable(false);
  log.Flush();
  hosting::v1::ListAuditRequest all;
  absl::StatusOr<std::vector<hosting::v1::AuditEntry>> listed = log.List(all);
  ASSERT_TRUE(listed.ok()) << listed.status();
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ((*listed)[0].service(), "web");
  EXPECT_EQ((*listed)[0].time().seconds(), absl::ToUnixSeconds(clock.Now()));
  EXPECT_EQ(log.dropped(), 0);
  hosting::v1::ListAuditRequest too_many;
  too_many.set_limit(5000);
  EXPECT_TRUE(absl::IsInvalidArgument(log.List(too_many).status()));
}

TEST(AuditTest, AFullQueueDropsAndCountsInsteadOfBlocking) {
  FakeClock clock;
  FaultStore store(TempStore());
  store.SetUnavailable(true);
  AuditLog log(store, clock, /*max_queued=*/2);
  for (int i = 0; i < 5; ++i) log.Record(hosting::v1::AuditEntry());
  EXPECT_GE(log.dropped(), 2);
  store.SetUnavailable(false);
  log.Stop();
}

}  // namespace
}  // namespace hosting::controlplane
