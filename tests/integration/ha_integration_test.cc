// Two hostd on one PostgreSQL store and one real Swarm: one leads, the other serves reads and
// refuses writes naming the leader; a leader killed with SIGKILL is replaced within its lease
// and nothing is duplicated or lost; a leader paused (SIGSTOP) past its lease wakes up fenced.
#include <csignal>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "hosting/v1/cluster.grpc.pb.h"
#include "hosting/v1/releases.grpc.pb.h"
#include "hosting/v1/service.grpc.pb.h"
#include "tests/integration/harness.h"

namespace hosting::testing {
namespace {

using ::testing::HasSubstr;

constexpr char kImage[] = "hosting/sample:v1";
constexpr absl::Duration kConverge = absl::Seconds(60);

class HaTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    ds_ = new Datastores();
    absl::Status st = ds_->Start();
    ASSERT_TRUE(st.ok()) << st;
  }
  static void TearDownTestSuite() {
    delete ds_;
    ds_ = nullptr;
  }

  void SetUp() override {
    ASSERT_TRUE(CheckDockerSwarm().ok()) << CheckDockerSwarm();
    static int n = 0;
    db_ = absl::StrCat("ha_", getpid(), "_", n++);
    ds_->Sql("CREATE DATABASE " + db_, false, "postgres");
    name_ = absl::StrCat("it-ha-", n);
    ASSERT_EQ(RemoveSwarmServicesOf(name_), absl::OkStatus());
  }
  void TearDown() override {
    for (auto& h : hostd_) {
      if (h) h->Stop(SIGKILL);
    }
    EXPECT_EQ(RemoveSwarmServicesOf(name_), absl::OkStatus());
  }

  // A hostd on the test's database, with the default lease and renewal (what users run).
  HostdProcess& StartHostd(int i) {
    const std::string url = absl::StrCat("postgresql://postgres@127.0.0.1:", ds_->pg_port(), "/",
                                         db_, "?connect_timeout=2");
    hostd_[i] = std::make_unique<HostdProcess>(MakeTempDir("hosting-ha-"),
                                               std::vector<std::string>{"--store=" + url});
    absl::Status st = hostd_[i]->Start();
    EXPECT_TRUE(st.ok()) << st;
    return *hostd_[i];
  }

  grpc::Status Apply(HostdProcess& h, int replicas) {
    auto stub = hosting::v1::ServiceManager::NewStub(h.channel());
    hosting::v1::ApplyServiceRequest req;
    req.mutable_spec()->set_name(name_);
    req.mutable_spec()->set_image(kImage);
    req.mutable_spec()->set_replicas(replicas);
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    hosting::v1::ApplyServiceResponse resp;
    return stub->ApplyService(&ctx, req, &resp);
  }

  grpc::Status Get(HostdProcess& h, hosting::v1::Service* out) {
    auto stub = hosting::v1::ServiceManager::NewStub(h.channel());
    hosting::v1::GetServiceRequest req;
    req.set_name(name_);
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    return stub->GetService(&ctx, req, out);
  }

  double Metric(HostdProcess& h, const std::string& series) {
    return MetricValue(Http("GET", "http://" + h.metrics_address() + "/metrics").body, series);
  }

  // The agent state of the (one) node as hostd `h` sees it.
  hosting::v1::AgentState AgentState(HostdProcess& h) {
    auto stub = hosting::v1::Cluster::NewStub(h.channel());
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    hosting::v1::ListNodesResponse nodes;
    if (!stub->ListNodes(&ctx, {}, &nodes).ok() || nodes.nodes_size() == 0) {
      return hosting::v1::AGENT_STATE_UNSPECIFIED;
    }
    return nodes.nodes(0).agent_state();
  }

  int CountEvents(const std::string& type) {
    std::string out = ds_->Sql(
        absl::StrCat("SELECT count(*) FROM hosting.events WHERE type = '", type, "'"), false, db_);
    return std::atoi(out.c_str());
  }

  static Datastores* ds_;
  std::string db_;
  std::string name_;
  std::unique_ptr<HostdProcess> hostd_[2];
};

Datastores* HaTest::ds_ = nullptr;

TEST_F(HaTest, StandbyServesReadsRefusesWritesAndTakesOverFromAKilledLeader) {
  HostdProcess& a = StartHostd(0);
  HostdProcess& b = StartHostd(1);
  EXPECT_EQ(Metric(a, "hostd_leader"), 1);
  EXPECT_EQ(Metric(b, "hostd_leader"), 0);
  // An agent given both addresses (the standby first) reports to the leader only.
  AgentProcess agent(b.address() + "," + a.address(), MakeTempDir("hosting-ha-agent-") + "/agent.log");
  ASSERT_TRUE(agent.Start().ok());
  absl::Status st = WaitFor(
      [&] { return AgentState(a) == hosting::v1::AGENT_STATE_CONNECTED; }, absl::Seconds(20),
      "the agent to connect to the leader");
  ASSERT_TRUE(st.ok()) << st;
  EXPECT_NE(AgentState(b), hosting::v1::AGENT_STATE_CONNECTED);

  ASSERT_TRUE(Apply(a, 1).ok());
  ASSERT_TRUE(WaitFor([&] { return SwarmServicesOf(name_) == std::vector<std::string>{name_ + "-r1 1 1"}; },
                      kConverge, "the leader to create the service")
                  .ok());
  // The standby reads the same desired state, and refuses a write naming the leader.
  hosting::v1::Service s;
  ASSERT_TRUE(Get(b, &s).ok());
  EXPECT_EQ(s.spec().replicas(), 1);
  grpc::Status refused = Apply(b, 2);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_THAT(refused.error_message(), HasSubstr("the leader is " + a.address()));

  // The leader dies without a word. The standby takes the lease once it lapses.
  const absl::Time killed = absl::Now();
  a.Stop(SIGKILL);
  absl::Time took_over;
  st = WaitFor(
      [&] {
        if (!Apply(b, 2).ok()) return false;
        took_over = absl::Now();
        return true;
      },
      absl::Seconds(20), "the standby to accept a write", absl::Milliseconds(50));
  ASSERT_TRUE(st.ok()) << st;
  std::printf("[ measure ] leader killed -> standby accepts writes: %.0f ms\n",
              absl::ToDoubleMilliseconds(took_over - killed));
  // Acting, not just accepting: the new leader reconciles the change.
  ASSERT_TRUE(WaitFor([&] { return SwarmServicesOf(name_) == std::vector<std::string>{name_ + "-r1 2 2"}; },
                      kConverge, "the new leader to scale the service")
                  .ok())
      << absl::StrJoin(SwarmServicesOf(name_), "; ");
  EXPECT_EQ(Metric(b, "hostd_leader"), 1);
  EXPECT_EQ(Metric(b, "hostd_leader_epoch"), 2);
  EXPECT_EQ(CountEvents("leader.elected"), 2);
  ASSERT_TRUE(Get(b, &s).ok());
  EXPECT_EQ(s.revision(), 1) << "a scale is no new revision";
  EXPECT_EQ(s.generation(), 2);
  // The agent lost its stream with the old leader and found the new one.
  st = WaitFor([&] { return AgentState(b) == hosting::v1::AGENT_STATE_CONNECTED; },
               absl::Seconds(20), "the agent to connect to the new leader");
  EXPECT_TRUE(st.ok()) << st;

  // hostctl with both addresses (the dead one first) finds the leader and says who leads.
  const std::string both = absl::StrCat(HostctlBinary(), " --timeout 5 --server ", a.address(),
                                        ",", b.address());
  CommandResult status = Shell(both + " cluster status");
  EXPECT_EQ(status.exit_code, 0) << status.output;
  EXPECT_THAT(status.output, HasSubstr(b.address() + "  leader"));
  EXPECT_THAT(status.output, HasSubstr("unreachable"));
  CommandResult scaled = Shell(both + " service scale " + name_ + " 1");
  EXPECT_EQ(scaled.exit_code, 0) << scaled.output;
  ASSERT_TRUE(Get(b, &s).ok());
  EXPECT_EQ(s.spec().replicas(), 1);
}

TEST_F(HaTest, ALeaderPausedPastItsLeaseWakesUpFencedAndFollows) {
  HostdProcess& a = StartHostd(0);
  HostdProcess& b = StartHostd(1);
  ASSERT_EQ(Metric(a, "hostd_leader"), 1);
  ASSERT_TRUE(Apply(a, 1).ok());
  AgentProcess agent(a.address() + "," + b.address(), MakeTempDir("hosting-ha-agent-") + "/agent.log");
  ASSERT_TRUE(agent.Start().ok());
  ASSERT_TRUE(WaitFor([&] { return AgentState(a) == hosting::v1::AGENT_STATE_CONNECTED; },
                      absl::Seconds(20), "the agent to connect to the leader")
                  .ok());

  kill(a.pid(), SIGSTOP);
  absl::Status st = WaitFor([&] { return Apply(b, 2).ok(); }, absl::Seconds(20),
                            "the standby to take over from the paused leader",
                            absl::Milliseconds(100));
  ASSERT_TRUE(st.ok()) << st;
  kill(a.pid(), SIGCONT);
  // Whatever a's threads were doing when it froze, a write from it now commits nothing.
  grpc::Status late = Apply(a, 5);
  EXPECT_EQ(late.error_code(), grpc::StatusCode::UNAVAILABLE) << late.error_message();
  hosting::v1::Service s;
  ASSERT_TRUE(Get(b, &s).ok());
  EXPECT_EQ(s.spec().replicas(), 2);
  // It steps down for good and names the new leader.
  ASSERT_TRUE(WaitFor([&] { return Metric(a, "hostd_leader") == 0; }, absl::Seconds(10),
                      "the old leader to step down")
                  .ok());
  EXPECT_EQ(Metric(a, "hostd_leader_epoch"), 2);
  EXPECT_THAT(Apply(a, 5).error_message(), HasSubstr("the leader is " + b.address()));
  EXPECT_EQ(CountEvents("leader.lost"), 1);
  // Stepping down, it sent its agent on to the new leader.
  st = WaitFor([&] { return AgentState(b) == hosting::v1::AGENT_STATE_CONNECTED; },
               absl::Seconds(20), "the agent to follow the new leader");
  EXPECT_TRUE(st.ok()) << st;
  ASSERT_TRUE(WaitFor([&] { return SwarmServicesOf(name_) == std::vector<std::string>{name_ + "-r1 2 2"}; },
                      kConverge, "the service at the new leader's size")
                  .ok())
      << absl::StrJoin(SwarmServicesOf(name_), "; ");
}

TEST_F(HaTest, TheStoresPrimaryStoppedLeavesReadsOfSwarmWritesRefusedAndRecoversByItself) {
  HostdProcess& a = StartHostd(0);
  // The last test's hostd may hold the lease until it lapses.
  ASSERT_TRUE(WaitFor([&] { return Apply(a, 1).ok(); }, absl::Seconds(10), "a to lead",
                      absl::Milliseconds(50))
                  .ok());
  ASSERT_TRUE(WaitFor([&] { return SwarmServicesOf(name_) == std::vector<std::string>{name_ + "-r1 1 1"}; },
                      kConverge, "the service created")
                  .ok());
  ASSERT_TRUE(ds_->Do("stop-primary").ok());
  // Writes are refused with a status that says the store is down; the daemon keeps serving
  // what does not need the store (the cluster's nodes come from its watch cache of Swarm).
  grpc::Status refused = Apply(a, 2);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::UNAVAILABLE) << refused.error_message();
  auto cluster = hosting::v1::Cluster::NewStub(a.channel());
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  hosting::v1::ListNodesResponse nodes;
  grpc::Status listed = cluster->ListNodes(&ctx, {}, &nodes);
  EXPECT_TRUE(listed.ok()) << listed.error_message();
  EXPECT_GT(nodes.nodes_size(), 0);
  // Past its lease without the store, it stops leading (it cannot renew).
  EXPECT_TRUE(WaitFor([&] { return Metric(a, "hostd_leader") == 0; }, absl::Seconds(15),
                      "hostd to stop leading without its store")
                  .ok());
  EXPECT_TRUE(a.running());

  // The database returns: hostd leads again and takes writes, with nothing to restart.
  ASSERT_TRUE(ds_->Do("start-primary").ok());
  absl::Status st = WaitFor([&] { return Apply(a, 2).ok(); }, absl::Seconds(30),
                            "hostd to take writes again", absl::Milliseconds(200));
  ASSERT_TRUE(st.ok()) << st;
  EXPECT_EQ(Metric(a, "hostd_leader"), 1);
  ASSERT_TRUE(WaitFor([&] { return SwarmServicesOf(name_) == std::vector<std::string>{name_ + "-r1 2 2"}; },
                      kConverge, "the write reconciled")
                  .ok())
      << absl::StrJoin(SwarmServicesOf(name_), "; ");
}

// kill -9 of the leader in the middle of a release: the standby takes over and finishes it
// from the store, with no Swarm service twice and no step lost or done again.
TEST_F(HaTest, AReleaseCarriesAcrossALeaderFailover) {
  HostdProcess& a = StartHostd(0);
  ASSERT_TRUE(WaitFor([&] { return Apply(a, 3).ok(); }, absl::Seconds(10), "a to lead",
                      absl::Milliseconds(50))
                  .ok());
  HostdProcess& b = StartHostd(1);
  ASSERT_TRUE(WaitFor([&] { return SwarmServicesOf(name_) == std::vector<std::string>{name_ + "-r1 3 3"}; },
                      kConverge, "revision 1 running")
                  .ok());
  auto releases = hosting::v1::Releases::NewStub(a.channel());
  hosting::v1::StartReleaseRequest req;
  req.set_service(name_);
  req.set_image("hosting/sample:v2");
  req.mutable_policy()->set_strategy(hosting::v1::RELEASE_STRATEGY_CANARY);
  auto* canary = req.mutable_policy()->mutable_canary();
  canary->add_steps()->set_set_weight(34);
  canary->add_steps()->mutable_pause()->mutable_duration()->set_seconds(4);
  canary->add_steps()->set_set_weight(100);
  hosting::v1::Release release;
  {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    grpc::Status st = releases->StartRelease(&ctx, req, &release);
    ASSERT_TRUE(st.ok()) << st.error_message();
  }
  // Mid-way: past its first weight, in its pause.
  ASSERT_TRUE(WaitFor([&] { return GetRelease(*releases, release.id()).current_step() >= 1; },
                      kConverge, "the canary at its first weight")
                  .ok());
  const hosting::v1::Release before = GetRelease(*releases, release.id());
  ASSERT_EQ(before.state(), hosting::v1::RELEASE_STATE_PROGRESSING);
  a.Stop(SIGKILL);

  // The standby finishes it (reads it through b).
  auto from_b = hosting::v1::Releases::NewStub(b.channel());
  absl::Status st = WaitFor(
      [&] { return GetRelease(*from_b, release.id()).state() == hosting::v1::RELEASE_STATE_SUCCEEDED; },
      absl::Seconds(90), "the new leader to finish the release");
  ASSERT_TRUE(st.ok()) << st << ": " << GetRelease(*from_b, release.id()).message();
  ASSERT_TRUE(WaitFor([&] { return SwarmServicesOf(name_) == std::vector<std::string>{name_ + "-r2 3 3"}; },
                      kConverge, "revision 2 alone, at full size")
                  .ok())
      << absl::StrJoin(SwarmServicesOf(name_), "; ");
  EXPECT_EQ(Metric(b, "hostd_leader"), 1);
  // Each step once: one release.created, one release.finished, and the steps the new leader
  // took are not repeated from the start.
  EXPECT_EQ(CountEvents("release.created"), 1);
  EXPECT_EQ(CountEvents("release.finished"), 1);
}

}  // namespace
}  // namespace hosting::testing
