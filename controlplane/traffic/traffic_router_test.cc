#include "controlplane/traffic/traffic_router.h"

#include "common/clock.h"
#include "controlplane/store/sqlite_store.h"
#include "controlplane/testing/fake_load_balancer.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace hosting::controlplane {
namespace {

// A task Swarm runs, ready or not.
RouteTarget Task(const std::string& id, int64_t rev, bool ready = true) {
  RouteTarget t{id, rev, "10.0.0." + id.substr(1), 3000, ready};
  t.running = true;
  t.check = {.enabled = true, .port = 3000, .interval = absl::Seconds(2), .fall = 2, .rise = 1};
  t.http_path = "/health";
  return t;
}

// A running task whose health the control plane does not know now.
RouteTarget Unknown(const std::string& id, int64_t rev) {
  RouteTarget t = Task(id, rev, false);
  t.unknown = true;
  return t;
}

class TrafficRouterTest : public ::testing::Test {
 protected:
  TrafficRouterTest() : store_(SqliteStore::Open(":memory:").value()), events_(*store_, clock_) {
    lb_.AddBackend("web");
  }
  std::vector<std::string> EventTypes() {
    std::vector<std::string> out;
    const std::vector<hosting::v1::Event> events = store_->ListEvents(0, 1000).value();
    for (const auto& e : events) out.push_back(e.type());
    return out;
  }
  std::map<std::string, LbServer> Servers(const std::string& backend = "web") {
    std::map<std::string, LbServer> out;
    std::vector<LbServer> servers = lb_.Servers(backend).value();
    for (auto& s : servers) out[s.name] = s;
    return out;
  }
  FakeClock clock_;
  std::unique_ptr<Store> store_;
  EventLog events_;
  FakeLoadBalancer lb_;
  TrafficRouter router_{&lb_, events_};
};

TEST_F(TrafficRouterTest, WeightsGiveExactSharesPerRevision) {
  hosting::internal::Rollout rollout;
  (*rollout.mutable_weights())[1] = 90;
  (*rollout.mutable_weights())[2] = 10;
  std::vector<RouteTarget> t = {Task("a1", 1), Task("a2", 1), Task("a3", 1), Task("a4", 1),
                                Task("b1", 2)};
  auto w = TrafficRouter::Weights(rollout, t);
  double stable = 0, canary = 0;
  for (auto& [name, weight] : w) (name[1] == '1' ? stable : canary) += weight;
  EXPECT_NEAR(canary / (stable + canary), 0.10, 0.002);
  // Without weights every ready task weighs the same; unready ones get nothing.
  t.push_back(Task("b2", 2, false));
  auto equal = TrafficRouter::Weights({}, t);
  EXPECT_EQ(equal.size(), 5u);
  for (auto& [name, weight] : equal) EXPECT_EQ(weight, 256);
  // A weighted revision with no ready task does not black-hole its share.
  hosting::internal::Rollout only_new;
  (*only_new.mutable_weights())[3] = 100;
  auto fallback = TrafficRouter::Weights(only_new, {Task("a1", 1)});
  EXPECT_EQ(fallback.at("r1-a1"), 256);
}

TEST_F(TrafficRouterTest, AddsReadyTasksDrainsAndRemovesIdleOnes) {
  hosting::internal::Rollout rollout;
  RouteStatus st = router_.Sync("web", rollout, {Task("a1", 1), Task("a2", 1), Task("b1", 2, false)});
  ASSERT_TRUE(st.routed) << st.detail;
  EXPECT_EQ(Servers().size(), 2u);
  EXPECT_NEAR(st.shares.at(1), 100, 1e-9);

  rollout.add_drain_tasks("a2");
  lb_.SetSessions("web", "r1-a2", 2);
  st = router_.Sync("web", rollout, {Task("a1", 1), Task("a2", 1), Task("b1", 2)});
  EXPECT_EQ(Servers().at("r1-a2").state, LbServer::State::kDrain);
  EXPECT_EQ(st.sessions.at("a2"), 2);
  EXPECT_EQ(Servers().at("r2-b1").state, LbServer::State::kReady);

  // a2 is gone: maintenance while it has sessions, deleted once idle.
  router_.Sync("web", rollout, {Task("a1", 1), Task("b1", 2)});
  EXPECT_EQ(Servers().at("r1-a2").state, LbServer::State::kMaint);
  lb_.SetSessions("web", "r1-a2", 0);
  router_.Sync("web", rollout, {Task("a1", 1), Task("b1", 2)});
  EXPECT_FALSE(Servers().contains("r1-a2"));
}

TEST_F(TrafficRouterTest, PreviewBackendServesThePreviewRevision) {
  lb_.AddBackend("web-preview");
  hosting::internal::Rollout rollout;
  (*rollout.mutable_weights())[1] = 100;
  (*rollout.mutable_weights())[2] = 0;
  rollout.set_preview_revision(2);
  router_.Sync("web", rollout, {Task("a1", 1), Task("b1", 2)});
  EXPECT_EQ(Servers("web").at("r2-b1").weight, 0);
  EXPECT_EQ(Servers("web-preview").size(), 1u);
  EXPECT_EQ(Servers("web-preview").at("r2-b1").weight, 256);
}

TEST_F(TrafficRouterTest, ASwitchNeverLeavesTheBackendWithoutAServer) {
  hosting::internal::Rollout blue;
  (*blue.mutable_weights())[1] = 100;
  (*blue.mutable_weights())[2] = 0;
  std::vector<RouteTarget> t = {Task("a1", 1), Task("a2", 1), Task("b1", 2), Task("b2", 2)};
  router_.Sync("web", blue, t);
  hosting::internal::Rollout green;
  (*green.mutable_weights())[1] = 0;
  (*green.mutable_weights())[2] = 100;
  router_.Sync("web", green, t);
  router_.Sync("web", blue, t);
  EXPECT_GT(lb_.min_ready_weight("web"), 0);
  EXPECT_EQ(Servers().at("r1-a1").weight, 256);
  EXPECT_EQ(Servers().at("r2-b1").weight, 0);
}

TEST_F(TrafficRouterTest, ServersCarryTheBalancersOwnCheck) {
  router_.Sync("web", {}, {Task("a1", 1)});
  const LbServer s = Servers().at("r1-a1");
  EXPECT_TRUE(s.check.enabled);
  EXPECT_EQ(s.check.interval, absl::Seconds(2));
  EXPECT_EQ(s.check.fall, 2);
}

// A hostd that restarts, or whose agent reconnects, does not know its tasks' health for a
// moment: the servers stay as the balancer has them (its own checks guard them meanwhile).
TEST_F(TrafficRouterTest, ATaskOfUnknownHealthKeepsItsServerAndIsNeverAdded) {
  router_.Sync("web", {}, {Task("a1", 1), Task("a2", 1)});
  ASSERT_EQ(Servers().size(), 2u);
  TrafficRouter restarted(&lb_, events_);
  RouteStatus st = restarted.Sync("web", {}, {Unknown("a1", 1), Unknown("a2", 1), Unknown("a3", 1)});
  ASSERT_TRUE(st.routed) << st.detail;
  EXPECT_EQ(Servers().size(), 2u) << "a3 is not added before anyone knows it is healthy";
  EXPECT_EQ(Servers().at("r1-a1").state, LbServer::State::kReady);
  EXPECT_EQ(Servers().at("r1-a2").state, LbServer::State::kReady);
  // Once known: a1 healthy stays, a2 unhealthy goes (deleted once idle), a3 healthy joins.
  restarted.Sync("web", {}, {Task("a1", 1), Task("a2", 1, false), Task("a3", 1)});
  EXPECT_FALSE(Servers().contains("r1-a2"));
  EXPECT_EQ(Servers().at("r1-a3").state, LbServer::State::kReady);
  EXPECT_GT(lb_.min_ready_weight("web"), 0);
}

TEST_F(TrafficRouterTest, NoSyncEmptiesABackendWhileItsTasksRun) {
  router_.Sync("web", {}, {Task("a1", 1), Task("a2", 1)});
  // Every task reads unready (a probe outage, a wrong path): an empty backend would fail every
  // request, so the servers stay and the balancer's checks choose among them.
  RouteStatus st = router_.Sync("web", {}, {Task("a1", 1, false), Task("a2", 1, false)});
  ASSERT_TRUE(st.routed);
  EXPECT_EQ(Servers().at("r1-a1").state, LbServer::State::kReady);
  EXPECT_EQ(Servers().at("r1-a2").state, LbServer::State::kReady);
  EXPECT_GT(lb_.min_ready_weight("web"), 0);
  EXPECT_THAT(EventTypes(), ::testing::Contains("traffic.panic"));
  // One task ready again: the rest go, as usual.
  lb_.SetSessions("web", "r1-a2", 1);
  router_.Sync("web", {}, {Task("a1", 1), Task("a2", 1, false)});
  EXPECT_EQ(Servers().at("r1-a2").state, LbServer::State::kMaint);
  EXPECT_THAT(EventTypes(), ::testing::Contains("traffic.unpanicked"));
  // Tasks that no longer run are taken out, even the last.
  lb_.SetSessions("web", "r1-a1", 1);
  router_.Sync("web", {}, {});
  EXPECT_EQ(Servers().at("r1-a1").state, LbServer::State::kMaint);
}

TEST_F(TrafficRouterTest, ABackendThatChecksOnlyTcpIsReportedOnce) {
  router_.Sync("web", {}, {Task("a1", 1)});
  lb_.SetCheck("web", "r1-a1", "L4OK", true);
  router_.Sync("web", {}, {Task("a1", 1)});
  router_.Sync("web", {}, {Task("a1", 1)});
  std::vector<std::string> types = EventTypes();
  EXPECT_EQ(std::count(types.begin(), types.end(), "traffic.check_mismatch"), 1);
  std::vector<hosting::v1::Event> events = store_->ListEvents(0, 1000).value();
  for (const auto& e : events) {
    if (e.type() == "traffic.check_mismatch") {
      EXPECT_THAT(e.message(), ::testing::HasSubstr("option httpchk"));
      EXPECT_THAT(e.message(), ::testing::HasSubstr("/health"));
    }
  }
}

TEST_F(TrafficRouterTest, MissingBackendOrBalancerIsReportedNotFatal) {
  RouteStatus st = router_.Sync("api", {}, {Task("a1", 1)});
  EXPECT_FALSE(st.routed);
  EXPECT_THAT(st.detail, ::testing::HasSubstr("api"));
  TrafficRouter none(nullptr, events_);
  EXPECT_THAT(none.Sync("web", {}, {}).detail, ::testing::HasSubstr("--haproxy"));
  lb_.SetUnavailable(true);
  EXPECT_FALSE(router_.Sync("web", {}, {Task("a1", 1)}).routed);
}

}  // namespace
}  // namespace hosting::controlplane
