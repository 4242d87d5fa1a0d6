#include "controlplane/leader/leader_elector.h"

#include <filesystem>

#include "absl/time/clock.h"
#include "controlplane/store/sqlite_store.h"
#include "controlplane/testing/fault_store.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace hosting::controlplane {
namespace {

using ::testing::HasSubstr;

// Two hostd on one store file: each its own store connection, event log and metrics. Leases
// are short and real (the store's clock is the real one); waits below only outlast a lease.
constexpr absl::Duration kLease = absl::Milliseconds(300);

struct Node {
  explicit Node(const std::string& path, const std::string& address)
      : store(SqliteStore::Open(path).value()), events(*store, Clock::Real()),
        elector(*store, events, metrics, Clock::Real(),
                LeaderOptions{address, kLease, absl::Milliseconds(50)}) {}
  std::unique_ptr<SqliteStore> store;
  EventLog events;
  HostdMetrics metrics;
  LeaderElector elector;
};

std::string TempDb() {
  static int n = 0;
  auto dir = std::filesystem::temp_directory_path() /
             ("hosting_leader_test_" + std::to_string(getpid()) + "_" + std::to_string(n++));
  std::filesystem::create_directories(dir);
  return (dir / "hostd.db").string();
}

ServiceRecord Record(const std::string& image) {
  ServiceRecord r;
  r.spec.set_name("web");
  r.spec.set_image(image);
  return r;
}

std::vector<std::string> EventTypes(Store& store) {
  std::vector<std::string> out;
  absl::StatusOr<std::vector<hosting::v1::Event>> events = store.ListEvents(0, 100);
  if (!events.ok()) return out;
  for (const auto& e : *events) out.push_back(e.type());
  return out;
}

TEST(LeaderElectorTest, ALoneHostdLeadsAtOnceAndWritesUnderItsEpoch) {
  Node a(TempDb(), "10.0.0.1:50051");
  EXPECT_FALSE(a.elector.IsLeader());
  // Before its first round a hostd writes nothing.
  EXPECT_TRUE(absl::IsUnavailable(a.store->PutService(Record("x"), 0, nullptr).status()));
  a.elector.Step();
  EXPECT_TRUE(a.elector.IsLeader());
  EXPECT_EQ(a.elector.epoch(), 1);
  EXPECT_TRUE(a.elector.CheckLeader().ok());
  EXPECT_EQ(a.elector.leader_address(), "10.0.0.1:50051");
  EXPECT_TRUE(a.store->PutService(Record("x"), 0, nullptr).ok());
  EXPECT_THAT(EventTypes(*a.store), ::testing::Contains("leader.elected"));
}

// Once the fence lets this hostd's writes commit, /metrics already says it leads (a client
// whose write succeeded must not read hostd_leader 0).
TEST(LeaderElectorTest, TheLeaderGaugeIsSetBeforeTheFenceOpens) {
  auto store = std::make_unique<FaultStore>(SqliteStore::Open(TempDb()).value());
  EventLog events(*store, Clock::Real());
  HostdMetrics metrics;
  double gauge_at_fence = -1;
  store->OnSetFence([&](int64_t epoch) {
    if (epoch <= 0) return;
    for (const auto& family : metrics.registry()->Collect()) {
      if (family.name == "hostd_leader") gauge_at_fence = family.metric[0].gauge.value;
    }
  });
  LeaderElector elector(*store, events, metrics, Clock::Real(),
                        LeaderOptions{"10.0.0.1:50051", kLease, absl::Milliseconds(50)});
  elector.Step();
  ASSERT_TRUE(elector.IsLeader());
  EXPECT_EQ(gauge_at_fence, 1);
}

TEST(LeaderElectorTest, StandbyNamesTheLeaderWritesNothingAndTakesOverOnceTheLeaseLapses) {
  const std::string db = TempDb();
  Node a(db, "10.0.0.1:50051");
  Node b(db, "10.0.0.2:50051");
  int elected_b = 0;
  b.elector.OnElected([&] { ++elected_b; });
  a.elector.Step();
  b.elector.Step();
  ASSERT_TRUE(a.elector.IsLeader());
  EXPECT_FALSE(b.elector.IsLeader());
  absl::Status standby = b.elector.CheckLeader();
  EXPECT_TRUE(absl::IsUnavailable(standby));
  EXPECT_THAT(std::string(standby.message()), HasSubstr("the leader is 10.0.0.1:50051"));
  EXPECT_EQ(b.elector.leader_address(), "10.0.0.1:50051");
  absl::StatusOr<int64_t> w = b.store->PutService(Record("from-b"), 0, nullptr);
  EXPECT_TRUE(absl::IsUnavailable(w.status())) << w.status();
  ASSERT_TRUE(a.store->PutService(Record("from-a"), 0, nullptr).ok());

  // a stops renewing (paused, partitioned): it stops acting by its own deadline, before the
  // lease lapses in the store, without any round of its own.
  absl::SleepFor(kLease + absl::Milliseconds(100));
  EXPECT_FALSE(a.elector.IsLeader());
  b.elector.Step();
  EXPECT_TRUE(b.elector.IsLeader());
  EXPECT_EQ(b.elector.epoch(), 2);
  EXPECT_EQ(elected_b, 1);
  // a wakes up: its write is fenced, and its next round steps it down for good.
  absl::StatusOr<int64_t> late = a.store->PutService(Record("late"), 1, nullptr);
  EXPECT_TRUE(absl::IsUnavailable(late.status())) << late.status();
  a.elector.Step();
  EXPECT_FALSE(a.elector.IsLeader());
  EXPECT_THAT(std::string(a.elector.CheckLeader().message()),
              HasSubstr("the leader is 10.0.0.2:50051"));
  EXPECT_EQ(b.store->GetService("web")->spec.image(), "from-a");
  EXPECT_EQ(*b.store->PutService(Record("from-b"), 1, nullptr), 2);
  EXPECT_THAT(EventTypes(*b.store), ::testing::Contains("leader.lost"));
}

TEST(LeaderElectorTest, StopGivesTheLeaseUpSoTheStandbyLeadsWithoutWaiting) {
  const std::string db = TempDb();
  Node a(db, "10.0.0.1:50051");
  Node b(db, "10.0.0.2:50051");
  a.elector.Step();
  b.elector.Step();
  ASSERT_TRUE(a.elector.IsLeader());
  a.elector.Stop();
  EXPECT_FALSE(a.elector.IsLeader());
  b.elector.Step();
  EXPECT_TRUE(b.elector.IsLeader());
  EXPECT_EQ(b.elector.epoch(), 2);
}

TEST(LeaderElectorTest, AStoreThatCannotBeReachedEndsLeadershipAtTheDeadline) {
  FaultStore store(SqliteStore::Open(TempDb()).value());
  EventLog events(store, Clock::Real());
  HostdMetrics metrics;
  LeaderElector a(store, events, metrics, Clock::Real(),
                  LeaderOptions{"10.0.0.1:50051", kLease, absl::Milliseconds(50)});
  a.Step();
  ASSERT_TRUE(a.IsLeader());
  store.SetUnavailable(true);
  a.Step();  // a failed renewal inside the lease changes nothing yet
  EXPECT_TRUE(a.IsLeader());
  absl::SleepFor(kLease + absl::Milliseconds(100));
  EXPECT_FALSE(a.IsLeader()) << "no renewal since the deadline";
  a.Step();
  absl::Status st = a.CheckLeader();
  EXPECT_TRUE(absl::IsUnavailable(st));
  EXPECT_THAT(std::string(st.message()), HasSubstr("store:"));
  store.SetUnavailable(false);
  a.Step();  // the lease lapsed in the store too: taken again under a new epoch
  EXPECT_TRUE(a.IsLeader());
  EXPECT_EQ(a.epoch(), 2);
}

}  // namespace
}  // namespace hosting::controlplane
