// A real three-node Swarm on this machine (scripts/cluster-up.sh: three dockerd, each in its own
// network namespace, overlay networking over VXLAN between them), hostd on the manager's engine
// and a hostagent on every node. The cluster comes up from nothing and goes away without
// leftovers; tasks spread over the nodes and every agent reports them healthy; a worker that
// dies is marked lost, its tasks come back elsewhere, and when it returns its agent reconnects.
#include <unistd.h>

#include <csignal>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "hosting/v1/cluster.grpc.pb.h"
#include "hosting/v1/releases.grpc.pb.h"
#include "hosting/v1/service.grpc.pb.h"
#include "tests/integration/harness.h"

namespace hosting::testing {
namespace {

using ::testing::IsEmpty;

constexpr int kNodes = 3;
// The service the drain test runs behind HAProxy (its backend is named after it).
constexpr char kDrainService[] = "it-cluster-drain";
constexpr char kNet[] = "192.168.77";

std::string NodeAddress(int i) { return absl::StrCat(kNet, ".", 10 + i); }
std::string NodeEngine(int i) { return absl::StrCat("unix:///run/hc/n", i, "/docker.sock"); }

CommandResult Script(const std::string& args) {
  return Shell(absl::StrCat("HOSTING_CLUSTER_NET=", kNet, " ", SourceDir(), "/scripts/", args));
}

// What a cluster leaves on the machine: namespaces, links, rules, mounts, processes.
std::string Leftovers() {
  return Shell("{ ip netns list | grep '^hc-n'; ip -o link | grep -o 'hc-[a-z0-9]*'; "
               "iptables -S | grep hc-br0; grep -E '[/]run/hc/|[/]var/lib/hosting/cluster/' /proc/mounts; "
               "pgrep -f '[/]run/hc/'; } 2>/dev/null || true")
      .output;
}

class ClusterTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    ASSERT_TRUE(CheckDockerSwarm().ok()) << CheckDockerSwarm();
    Script("cluster-down.sh");  // a previous run's, if it was interrupted
    ASSERT_THAT(Leftovers(), IsEmpty());
    CommandResult up = Script("cluster-up.sh 3");
    ASSERT_EQ(up.exit_code, 0) << up.output;
    // Every helper's docker CLI (SwarmServicesOf, ...) talks to the cluster's manager.
    setenv("DOCKER_HOST", NodeEngine(1).c_str(), 1);
    dir_ = new std::string(MakeTempDir("hosting-cluster-"));
    // HAProxy on the manager node, on the services' overlay network, published on the node's
    // address (the load comes from this machine over the bridge).
    haproxy_ = new HaproxyContainer(*dir_, {{kDrainService, ""}});
    haproxy_->PublishOn(NodeAddress(1));
    absl::Status ha = haproxy_->Start();
    ASSERT_TRUE(ha.ok()) << ha;
    hostd_ = new HostdProcess(*dir_, HostdFlags(haproxy_->socket()),
                              absl::StrCat(kNet, ".1:", FreePort()));
    absl::Status st = hostd_->Start();
    ASSERT_TRUE(st.ok()) << st;
    for (int i = 1; i <= kNodes; ++i) StartAgent(i);
  }

  static void TearDownTestSuite() {
    for (auto*& a : agents_) {
      delete a;
      a = nullptr;
    }
    delete hostd_;
    hostd_ = nullptr;
    delete haproxy_;
    haproxy_ = nullptr;
    unsetenv("DOCKER_HOST");
    CommandResult down = Script("cluster-down.sh");
    EXPECT_EQ(down.exit_code, 0) << down.output;
    EXPECT_THAT(Leftovers(), IsEmpty()) << "the cluster left these behind";
    delete dir_;
  }

  // hostd on the manager's engine, programming the HAProxy whose runtime API is `socket`.
  static std::vector<std::string> HostdFlags(const std::string& socket) {
    return {"--docker-host=" + NodeEngine(1), "--allow-insecure-remote", "--haproxy=" + socket};
  }

  // Stops the suite's hostd and starts it again (same store and address: the agents reconnect)
  // programming the HAProxy whose runtime API is `socket`.
  // SIGTERM hands its lease back; the new process then waits to lead (it acts and takes writes
  // only as the leader).
  static absl::Status RestartHostdOn(const std::string& socket) {
    const std::string address = hostd_->address();
    hostd_->Stop(SIGTERM);
    delete hostd_;
    hostd_ = new HostdProcess(*dir_, HostdFlags(socket), address);
    if (absl::Status st = hostd_->Start(); !st.ok()) return st;
    auto cluster = hosting::v1::Cluster::NewStub(hostd_->channel());
    return WaitFor(
        [&] {
          grpc::ClientContext ctx;
          ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
          hosting::v1::ControlPlane cp;
          return cluster->GetControlPlane(&ctx, {}, &cp).ok() && cp.leader();
        },
        absl::Seconds(60), "the restarted hostd leading", absl::Milliseconds(500));
  }

  static void StartAgent(int i) {
    delete agents_[i];
    agents_[i] = new AgentProcess(hostd_->address(), absl::StrCat(*dir_, "/agent", i, ".log"));
    agents_[i]->InNode(absl::StrCat("/run/netns/hc-n", i), NodeEngine(i),
                       absl::StrCat(NodeAddress(i), ":9465"));
    absl::Status st = agents_[i]->Start();
    ASSERT_TRUE(st.ok()) << "agent of node " << i << ": " << st;
  }

  void SetUp() override {
    static int n = 0;
    name_ = absl::StrCat("it-cluster-", n++);
    ASSERT_EQ(RemoveSwarmServicesOf(name_), absl::OkStatus());
  }
  void TearDown() override {
    if (hostd_ != nullptr) DeleteHostedService(hostd_->channel(), name_);
    EXPECT_EQ(RemoveSwarmServicesOf(name_), absl::OkStatus());
  }

  // hostname -> node, as hostd reports them.
  static std::map<std::string, hosting::v1::Node> Nodes() {
    auto stub = hosting::v1::Cluster::NewStub(hostd_->channel());
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    hosting::v1::ListNodesResponse resp;
    std::map<std::string, hosting::v1::Node> out;
    if (!stub->ListNodes(&ctx, {}, &resp).ok()) return out;
    for (const auto& node : resp.nodes()) out[node.hostname()] = node;
    return out;
  }

  static bool AgentsAre(const std::map<std::string, hosting::v1::AgentState>& want) {
    std::map<std::string, hosting::v1::Node> nodes = Nodes();
    for (const auto& [host, state] : want) {
      auto it = nodes.find(host);
      if (it == nodes.end() || it->second.agent_state() != state) return false;
    }
    return true;
  }

  grpc::Status Apply(int replicas) {
    auto stub = hosting::v1::ServiceManager::NewStub(hostd_->channel());
    hosting::v1::ApplyServiceRequest req;
    auto* spec = req.mutable_spec();
    spec->set_name(name_);
    spec->set_image("hosting/sample:v1");
    spec->set_replicas(replicas);
    spec->mutable_health()->set_http_path("/health");
    spec->mutable_health()->set_port(8080);
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    hosting::v1::ApplyServiceResponse resp;
    return stub->ApplyService(&ctx, req, &resp);
  }

  // Tasks the agents probed healthy, over all revisions.
  int Healthy() { return HealthyTasks(hostd_->channel(), name_); }

  // Running hosting tasks per hostname.
  static std::map<std::string, int> Spread() {
    std::map<std::string, int> out;
    for (const auto& [host, node] : Nodes()) out[host] = node.running_tasks();
    return out;
  }

  static std::string* dir_;
  static HaproxyContainer* haproxy_;
  static HostdProcess* hostd_;
  static AgentProcess* agents_[kNodes + 1];
  std::string name_;
};

std::string* ClusterTest::dir_ = nullptr;
HostdProcess* ClusterTest::hostd_ = nullptr;
HaproxyContainer* ClusterTest::haproxy_ = nullptr;
AgentProcess* ClusterTest::agents_[kNodes + 1] = {};

TEST_F(ClusterTest, TasksSpreadOverTheNodesAndEveryAgentReportsThemHealthy) {
  // Three Swarm nodes, each with its own identity and a connected agent.
  absl::Status st = WaitFor(
      [&] {
        return AgentsAre({{"hc-n1", hosting::v1::AGENT_STATE_CONNECTED},
                          {"hc-n2", hosting::v1::AGENT_STATE_CONNECTED},
                          {"hc-n3", hosting::v1::AGENT_STATE_CONNECTED}});
      },
      absl::Seconds(30), "three nodes with connected agents");
  ASSERT_TRUE(st.ok()) << st;
  std::map<std::string, hosting::v1::Node> nodes = Nodes();
  ASSERT_EQ(nodes.size(), 3u);
  EXPECT_EQ(nodes["hc-n1"].role(), "manager");
  EXPECT_EQ(nodes["hc-n2"].role(), "worker");
  EXPECT_EQ(nodes["hc-n3"].address(), NodeAddress(3));

  ASSERT_TRUE(Apply(6).ok());
  st = WaitFor([&] { return Healthy() == 6; }, absl::Seconds(90),
               "six tasks probed healthy by the agents");
  ASSERT_TRUE(st.ok()) << st << "; spread " << absl::StrJoin(Spread(), ", ", absl::PairFormatter("="));
  // Swarm spreads them: two per node, each node's own agent reporting its two.
  EXPECT_EQ(Spread(), (std::map<std::string, int>{{"hc-n1", 2}, {"hc-n2", 2}, {"hc-n3", 2}}));
}

TEST_F(ClusterTest, DrainingAWorkerUnderLoadMovesItsTasksWithoutAFailedRequest) {
  name_ = kDrainService;
  ASSERT_EQ(RemoveSwarmServicesOf(name_), absl::OkStatus());
  ASSERT_TRUE(Apply(6).ok());
  absl::Status st = WaitFor(
      [&] { return Healthy() == 6 && HaproxyReadyServers(haproxy_->socket(), name_) == 6; },
      absl::Seconds(90), "six healthy tasks in HAProxy");
  ASSERT_TRUE(st.ok()) << st;
  ASSERT_GT(Spread()["hc-n2"], 0);

  HttpLoad load(haproxy_->url(name_, "/health"), 4, 200);
  ASSERT_TRUE(WaitFor([&] { return load.ok() > 50; }, absl::Seconds(20), "load flowing").ok())
      << load.first_error();
  const std::string hostctl =
      absl::StrCat(HostctlBinary(), " --timeout 30 --server ", hostd_->address());
  // Through the node-maintenance runbook: drain (traffic off first), wait until the tasks run
  // elsewhere, then it waits for the operator's approval.
  CommandResult started =
      Shell(hostctl + " -o json runbook run node-maintenance -p node=hc-n2 -p move_timeout=90s");
  ASSERT_EQ(started.exit_code, 0) << started.output;
  const size_t id_at = started.output.find("\"id\": \"");
  ASSERT_NE(id_at, std::string::npos) << started.output;
  const std::string run = started.output.substr(
      id_at + 7, started.output.find('"', id_at + 7) - (id_at + 7));
  CommandResult status;
  st = WaitFor(
      [&] {
        status = Shell(hostctl + " runbook status " + run);
        return absl::StrContains(status.output, "waiting for approval") ||
               absl::StrContains(status.output, "  failed");
      },
      absl::Seconds(150), "the maintenance run at its approval gate");
  ASSERT_TRUE(st.ok()) << st << "\n" << status.output;
  ASSERT_THAT(status.output, ::testing::HasSubstr("wait-moved  succeeded")) << status.output;
  // Its tasks run elsewhere, all six healthy and in HAProxy again.
  st = WaitFor(
      [&] {
        return Spread()["hc-n2"] == 0 && Healthy() == 6 &&
               HaproxyReadyServers(haproxy_->socket(), name_) == 6;
      },
      absl::Seconds(90), "the tasks moved off hc-n2 and back to six in HAProxy");
  EXPECT_TRUE(st.ok()) << st << "; spread "
                       << absl::StrJoin(Spread(), ", ", absl::PairFormatter("="));
  const int64_t before = load.total();
  ASSERT_TRUE(WaitFor([&] { return load.total() > before + 100; }, absl::Seconds(20),
                      "load after the drain")
                  .ok());
  EXPECT_EQ(load.failed(), 0) << load.first_error();
  std::printf("[ measure ] drain under load: %lld requests, %lld failed\n",
              static_cast<long long>(load.total()), static_cast<long long>(load.failed()));

  // Approved: the node is activated, the service (none of its six tasks on hc-n2, its share
  // two) is rebalanced by a rolling release under the same load, and the run ends with the
  // tasks per node.
  CommandResult approve = Shell(hostctl + " runbook approve " + run + " --comment done");
  ASSERT_EQ(approve.exit_code, 0) << approve.output;
  CommandResult watch = Shell(hostctl + " runbook watch " + run + " --wait-timeout 300");
  ASSERT_EQ(watch.exit_code, 0) << watch.output;
  EXPECT_THAT(watch.output, ::testing::HasSubstr("spread: "));
  EXPECT_THAT(watch.output, ::testing::HasSubstr("restarted " + name_ + " (0 of 6 tasks on hc-n2"));
  st = WaitFor([&] { return Spread()["hc-n2"] > 0 && Healthy() == 6; }, absl::Seconds(60),
               "tasks on hc-n2 again");
  EXPECT_TRUE(st.ok()) << st << "; spread "
                       << absl::StrJoin(Spread(), ", ", absl::PairFormatter("="));
  load.Stop();
  EXPECT_EQ(load.failed(), 0) << load.first_error();
  std::printf("[ measure ] drain, maintenance and rebalance under load: %lld requests, %lld failed\n",
              static_cast<long long>(load.total()), static_cast<long long>(load.failed()));
  hosting::v1::Node n2 = Nodes()["hc-n2"];
  EXPECT_EQ(n2.availability(), hosting::v1::NODE_AVAILABILITY_ACTIVE);
  EXPECT_EQ(n2.labels().count("hosting.traffic-off"), 0u) << "the drain's label is lifted";
}

// The production Swarm stack (deploy/swarm) on the cluster: the primary and the replica on the
// nodes their labels name, the replica streaming from the primary across nodes over the
// overlay, a node exporter on every node, all seen by the stack's Prometheus on the manager;
// then hostd releases appsvc behind the stack with no failed request.
TEST_F(ClusterTest, TheSwarmStackPutsPrimaryAndReplicaOnTheirNodesAndStreams) {
  ASSERT_EQ(Shell("docker node update --label-add hosting.pg-primary=true hc-n2 && "
                  "docker node update --label-add hosting.pg-replica=true hc-n3")
                .exit_code,
            0);
  const int prometheus_port = FreePort();
  const int http_port = FreePort();
  const std::string env = absl::StrCat(
      "SWARM_STACK=hscit SECRET_PREFIX=hscit HOSTING_STATE_DIR=", *dir_, "/stack-state",
      " HAPROXY_RUN_DIR=", *dir_, "/stack-haproxy TLS_DIR=", *dir_, "/stack-tls",
      " HTTP_PORT=", http_port, " HTTPS_PORT=", FreePort(),
      " PREVIEW_PORT=", FreePort(), " HAPROXY_STATS_PORT=", FreePort(),
      " PROMETHEUS_PORT=", prometheus_port, " ALERTMANAGER_PORT=", FreePort(),
      " SWARM_STACK_WAIT_S=240 ", SourceDir(), "/scripts/swarm-stack.sh ");
  CommandResult up = Shell(env + "up --no-build 2>&1");
  EXPECT_EQ(up.exit_code, 0) << up.output;
  const auto node_of = [](const std::string& service) {
    return Shell("docker service ps --filter desired-state=running --format '{{.Node}}' hscit_" +
                 service + " 2>&1").output;
  };
  EXPECT_EQ(node_of("postgres-primary"), "hc-n2\n");
  EXPECT_EQ(node_of("postgres-replica"), "hc-n3\n");
  const std::string prometheus = absl::StrCat("http://", NodeAddress(1), ":", prometheus_port);
  absl::Status st = WaitFor(
      [&] {
        return PrometheusQuery(prometheus, "pg_replication_receiving{role=\"replica\"} == 1") != "[]" &&
               PrometheusQuery(prometheus, "count(up{job=\"node\"} == 1) == 3") != "[]" &&
               PrometheusQuery(prometheus, "count(up == 0)") == "[]";
      },
      absl::Seconds(90), "the replica streaming and every target up", absl::Seconds(1));
  EXPECT_TRUE(st.ok()) << st << ": " << PrometheusQuery(prometheus, "up");

  // hostd behind the stack: restarted on the stack's HAProxy, it runs appsvc (two tasks on the
  // cluster's nodes, 3 s checks: docs/cluster.md) against the stack's PostgreSQL and Redis and
  // releases it under load through the stack's front door on the manager.
  absl::Status restarted = RestartHostdOn(*dir_ + "/stack-haproxy/admin.sock");
  ASSERT_TRUE(restarted.ok()) << restarted;
  const auto secret = [&](const std::string& name) {
    return Shell(absl::StrCat("cat ", *dir_, "/stack-state/secrets/hscit_", name)).output;
  };
  hosting::v1::ServiceSpec spec = AppsvcSpec(
      "web", 2,
      {{"DB_HOST", "postgres-primary"}, {"DB_PORT", "5432"}, {"DB_NAME", "app"},
       {"DB_USER", "app"}, {"DB_PASSWORD", secret("pg_app")},
       {"DB_REPLICA_HOST", "postgres-replica"}, {"DB_REPLICA_PORT", "5432"},
       {"REDIS_HOST", "redis"}, {"REDIS_PORT", "6379"}, {"REDIS_PASSWORD", secret("redis")}});
  spec.mutable_health()->mutable_interval()->set_seconds(3);
  spec.mutable_health()->mutable_timeout()->set_seconds(2);
  {
    auto services = hosting::v1::ServiceManager::NewStub(hostd_->channel());
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    hosting::v1::ApplyServiceRequest req;
    *req.mutable_spec() = spec;
    hosting::v1::ApplyServiceResponse resp;
    grpc::Status applied = services->ApplyService(&ctx, req, &resp);
    ASSERT_TRUE(applied.ok()) << applied.error_message();
  }
  const std::string front = absl::StrCat("http://", NodeAddress(1), ":", http_port);
  st = WaitFor([&] { return HaproxyReadyServers(*dir_ + "/stack-haproxy/admin.sock", "web") == 2; },
               absl::Seconds(180), "both appsvc tasks in the stack's HAProxy", absl::Seconds(1));
  ASSERT_TRUE(st.ok()) << st;
  HttpResult post = Http("POST", front + "/api/users",
                         absl::StrCat(R"({"name":"Cluster","email":"cluster-)", getpid(),
                                      R"(@example.com"})"),
                         "application/json");
  ASSERT_EQ(post.status, 201) << post.body << post.error;
  absl::StatusOr<LoadedRelease> release = RollingReleaseUnderLoad(
      hostd_->channel(), spec, "cluster-v2", front + "/api/users?limit=5", absl::Seconds(300));
  ASSERT_TRUE(release.ok()) << release.status();
  EXPECT_EQ(release->release.state(), hosting::v1::RELEASE_STATE_SUCCEEDED)
      << release->release.DebugString();
  EXPECT_EQ(release->failed, 0) << release->first_error;
  std::printf("[ measure ] rolling release behind the Swarm stack on 3 nodes: %lld requests, "
              "%lld failed\n",
              static_cast<long long>(release->requests), static_cast<long long>(release->failed));
  DeleteHostedService(hostd_->channel(), "web");
  EXPECT_EQ(RemoveSwarmServicesOf("web"), absl::OkStatus());
  restarted = RestartHostdOn(haproxy_->socket());
  ASSERT_TRUE(restarted.ok()) << restarted;

  CommandResult down = Shell(env + "down --volumes 2>&1");
  EXPECT_EQ(down.exit_code, 0) << down.output;
  Shell("docker secret rm hscit_pg_superuser hscit_pg_app hscit_pg_replication hscit_redis hscit_tls; "
        "docker node update --label-rm hosting.pg-primary hc-n2; "
        "docker node update --label-rm hosting.pg-replica hc-n3");
}

TEST_F(ClusterTest, AWorkerThatDiesIsMarkedLostItsTasksComeBackAndItsAgentReconnects) {
  ASSERT_TRUE(Apply(3).ok());
  absl::Status st = WaitFor([&] { return Healthy() == 3; }, absl::Seconds(90), "three healthy tasks");
  ASSERT_TRUE(st.ok()) << st;

  // Node 3 dies at once: its dockerd, containerd, containers and agent.
  const absl::Time killed = absl::Now();
  CommandResult kill = Script("cluster-node.sh kill 3");
  ASSERT_EQ(kill.exit_code, 0) << kill.output;
  st = WaitFor([&] { return AgentsAre({{"hc-n3", hosting::v1::AGENT_STATE_LOST}}); },
               absl::Seconds(30), "hostd to mark node 3's agent lost");
  EXPECT_TRUE(st.ok()) << st;
  st = WaitFor([&] { return Nodes()["hc-n3"].state() == "down"; }, absl::Seconds(60),
               "Swarm to mark node 3 down");
  EXPECT_TRUE(st.ok()) << st;
  // Swarm reschedules; the service is back to full healthy strength on the other two.
  st = WaitFor(
      [&] {
        std::map<std::string, int> spread = Spread();
        return Healthy() == 3 && spread["hc-n1"] + spread["hc-n2"] == 3;
      },
      absl::Seconds(120), "three healthy tasks on nodes 1 and 2");
  ASSERT_TRUE(st.ok()) << st << "; spread " << absl::StrJoin(Spread(), ", ", absl::PairFormatter("="));
  std::printf("[ measure ] worker killed -> replacement tasks healthy: %.1f s\n",
              absl::ToDoubleSeconds(absl::Now() - killed));

  // It comes back: Swarm marks it ready, and its agent (restarted with the node) reconnects.
  CommandResult start = Script("cluster-node.sh start 3");
  ASSERT_EQ(start.exit_code, 0) << start.output;
  StartAgent(3);
  st = WaitFor(
      [&] {
        std::map<std::string, hosting::v1::Node> n = Nodes();
        return n["hc-n3"].state() == "ready" &&
               n["hc-n3"].agent_state() == hosting::v1::AGENT_STATE_CONNECTED;
      },
      absl::Seconds(60), "node 3 ready with its agent connected");
  EXPECT_TRUE(st.ok()) << st;
}

}  // namespace
}  // namespace hosting::testing
