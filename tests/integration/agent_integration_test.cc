// hostagent and hostd against the real Swarm: task health probed inside the tasks' network
// namespaces, transitions reported at once, container and application metrics, and both sides
// going away and coming back.
#include <csignal>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "hosting/v1/cluster.grpc.pb.h"
#include "hosting/v1/service.grpc.pb.h"
#include "tests/integration/harness.h"

namespace hosting::testing {
namespace {

using ::testing::HasSubstr;

class AgentIntegrationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(CheckDockerSwarm().ok()) << CheckDockerSwarm();
    dir_ = MakeTempDir("hosting-agent-");
    hostd_ = std::make_unique<HostdProcess>(dir_);
    ASSERT_TRUE(hostd_->Start().ok());
    agent_ = std::make_unique<AgentProcess>(hostd_->address(), dir_ + "/agent.log");
    ASSERT_TRUE(agent_->Start().ok());
    Connect();
    name_ = absl::StrCat("ag-", ::testing::UnitTest::GetInstance()->current_test_info()->line());
    EXPECT_EQ(RemoveSwarmServicesOf(name_), absl::OkStatus());
  }

  void TearDown() override {
    if (services_) DeleteHostedService(hostd_->channel(), name_);
    EXPECT_EQ(RemoveSwarmServicesOf(name_), absl::OkStatus());
  }

  void Connect() {
    services_ = hosting::v1::ServiceManager::NewStub(hostd_->channel());
    cluster_ = hosting::v1::Cluster::NewStub(hostd_->channel());
  }

  void Apply(const std::string& image, int replicas, uint32_t port, uint32_t published = 0,
             std::vector<std::string> env = {}) {
    hosting::v1::ApplyServiceRequest req;
    auto* spec = req.mutable_spec();
    spec->set_name(name_);
    spec->set_image(image);
    spec->set_replicas(replicas);
    auto* p = spec->add_ports();
    p->set_container_port(port);
    p->set_published_port(published);
    spec->mutable_health()->set_http_path("/health");
    spec->mutable_health()->mutable_interval()->set_seconds(1);
    spec->mutable_health()->mutable_timeout()->set_nanos(500'000'000);
    spec->mutable_health()->set_unhealthy_threshold(1);
    spec->mutable_stop_grace_period()->set_seconds(1);
    for (const auto& kv : env) {
      size_t eq = kv.find('=');
      (*spec->mutable_env())[kv.substr(0, eq)] = kv.substr(eq + 1);
    }
    grpc::ClientContext ctx;
    hosting::v1::ApplyServiceResponse resp;
    grpc::Status st = services_->ApplyService(&ctx, req, &resp);
    ASSERT_TRUE(st.ok()) << st.error_message();
  }

  hosting::v1::ServiceHealthStatus Status() {
    grpc::ClientContext ctx;
    hosting::v1::GetServiceStatusRequest req;
    req.set_name(name_);
    hosting::v1::ServiceHealthStatus s;
    cluster_->GetServiceStatus(&ctx, req, &s);
    return s;
  }

  hosting::v1::AgentState AgentState() {
    grpc::ClientContext ctx;
    hosting::v1::ListNodesResponse nodes;
    if (!cluster_->ListNodes(&ctx, {}, &nodes).ok() || nodes.nodes_size() == 0) {
      return hosting::v1::AGENT_STATE_UNSPECIFIED;
    }
    return nodes.nodes(0).agent_state();
  }

  absl::Status WaitHealthy(int n, absl::Duration timeout = absl::Seconds(60)) {
    return WaitFor(
        [&] {
          hosting::v1::ServiceHealthStatus s = Status();
          return s.revisions_size() == 1 && s.revisions(0).healthy() == n;
        },
        timeout, absl::StrCat(n, " healthy tasks"), absl::Milliseconds(100));
  }

  std::string dir_;
  std::string name_;
  std::unique_ptr<HostdProcess> hostd_;
  std::unique_ptr<AgentProcess> agent_;
  std::unique_ptr<hosting::v1::ServiceManager::Stub> services_;
  std::unique_ptr<hosting::v1::Cluster::Stub> cluster_;
};

TEST_F(AgentIntegrationTest, TasksAppearHealthyAndAnUnhealthyOneIsReportedAtOnce) {
  ASSERT_EQ(AgentState(), hosting::v1::AGENT_STATE_CONNECTED);
  Apply("hosting/sample:v1", 2, 8080);
  absl::Status st = WaitHealthy(2);
  ASSERT_TRUE(st.ok()) << st << "\n" << Status().DebugString();
  // Each task, with its node and health.
  {
    hosting::v1::ServiceHealthStatus s = Status();
    ASSERT_EQ(s.revisions(0).tasks_size(), 2) << s.DebugString();
    for (const hosting::v1::TaskHealthStatus& t : s.revisions(0).tasks()) {
      EXPECT_EQ(t.health(), "healthy");
      EXPECT_FALSE(t.node_id().empty());
      EXPECT_FALSE(t.task_id().empty());
    }
  }
  // Container metrics from the tasks' cgroups arrive with the next report.
  st = WaitFor([&] { return Status().revisions(0).memory_bytes() > 0; }, absl::Seconds(5),
               "memory use from the tasks' cgroups");
  EXPECT_TRUE(st.ok()) << st;

  // hostd exports the aggregates on its /metrics.
  EXPECT_THAT(Shell(absl::StrCat("curl -sf http://", hostd_->metrics_address(), "/metrics")).output,
              HasSubstr(absl::StrCat("hostd_revision_tasks{service=\"", name_,
                                     "\",revision=\"1\",health=\"healthy\"} 2")));
  // And the agent exports each task's CPU and memory itself (no cAdvisor needed).
  const std::string agent_metrics =
      Http("GET", "http://" + agent_->metrics_address() + "/metrics").body;
  EXPECT_THAT(agent_metrics, HasSubstr(absl::StrCat("hostagent_task_memory_bytes{service=\"",
                                                    name_, "\",revision=\"1\",task=\"")));
  EXPECT_THAT(agent_metrics, HasSubstr(absl::StrCat("hostagent_task_cpu_seconds_total{service=\"",
                                                    name_, "\",revision=\"1\",task=\"")));

  // Break one task's health endpoint and time the report from the watch stream.
  grpc::ClientContext watch_ctx;
  // A missed event fails the read at the deadline instead of hanging the test.
  watch_ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(60)));
  hosting::v1::WatchEventsRequest watch;
  watch.set_service(name_);
  watch.add_types("task.unhealthy");
  auto reader = cluster_->WatchEvents(&watch_ctx, watch);
  std::string container = Shell(absl::StrCat("docker ps -q --filter label=hosting.service=", name_,
                                              " | head -1 | tr -d '\\n'")).output;
  ASSERT_FALSE(container.empty());
  absl::Time broken = absl::Now();
  ASSERT_EQ(Shell("docker exec -u 0 " + container + " rm /srv/health").exit_code, 0);
  hosting::v1::Event e;
  ASSERT_TRUE(reader->Read(&e));
  absl::Duration took = absl::Now() - broken;
  watch_ctx.TryCancel();
  reader->Finish();
  EXPECT_EQ(e.type(), "task.unhealthy");
  EXPECT_THAT(e.message(), HasSubstr("HTTP 404"));
  // Within two probe intervals (1 s each).
  EXPECT_LT(took, absl::Seconds(2)) << absl::FormatDuration(took);
  std::cout << "[ measure ] task broken -> task.unhealthy event: " << absl::FormatDuration(took) << "\n";
}

TEST_F(AgentIntegrationTest, ApplicationMetricsBecomeRatesAndLatencies) {
  // appsvc without a database still serves /api/version (probes of /health are not counted as
  // the application's traffic): enough to measure.
  const int port = FreePort();
  Apply("hosting/appsvc:dev", 1, 3000, static_cast<uint32_t>(port),
        {"DB_HOST=127.0.0.1", "DB_PORT=1", "REDIS_PORT=1", "DRAIN_DELAY_MS=0"});
  ASSERT_TRUE(WaitHealthy(1).ok()) << Status().DebugString();
  const std::string url = absl::StrCat("http://127.0.0.1:", port, "/api/version");
  ASSERT_TRUE(WaitFor([&] { return Http("GET", url).status == 200; }, absl::Seconds(10), "published port").ok());
  // About 100 requests/s for 4 s, then look at the aggregates.
  absl::Time end = absl::Now() + absl::Seconds(4);
  while (absl::Now() < end) {
    Http("GET", url);
    absl::SleepFor(absl::Milliseconds(10));
  }
  absl::Status st = WaitFor([&] { return Status().revisions(0).requests_per_second() > 20; },
                            absl::Seconds(5), "a request rate from the agent's scrapes");
  hosting::v1::ServiceHealthStatus s = Status();
  EXPECT_TRUE(st.ok()) << st << "\n" << s.DebugString();
  EXPECT_GT(s.revisions(0).latency_p99().nanos() + s.revisions(0).latency_p99().seconds(), 0);
  EXPECT_EQ(s.revisions(0).error_ratio(), 0);
}

TEST_F(AgentIntegrationTest, HostdRestartIsSurvivedAndTheAgentReRegistersWithinFiveSeconds) {
  Apply("hosting/sample:v1", 1, 8080);
  ASSERT_TRUE(WaitHealthy(1).ok());
  const std::string address = hostd_->address();
  EXPECT_EQ(hostd_->Stop(SIGTERM), 0);
  absl::SleepFor(absl::Seconds(1));
  hostd_ = std::make_unique<HostdProcess>(dir_, std::vector<std::string>{}, address);
  ASSERT_TRUE(hostd_->Start().ok());
  Connect();
  absl::Time restarted = absl::Now();
  absl::Status st = WaitFor([&] { return AgentState() == hosting::v1::AGENT_STATE_CONNECTED; },
                            absl::Seconds(5), "the agent to re-register");
  EXPECT_TRUE(st.ok()) << st;
  std::cout << "[ measure ] hostd restarted -> agent registered: "
            << absl::FormatDuration(absl::Now() - restarted) << "\n";
  // Its snapshot brings the task's health back too.
  EXPECT_TRUE(WaitHealthy(1, absl::Seconds(5)).ok());
}

TEST_F(AgentIntegrationTest, AKilledAgentIsMarkedLostThenConnectedAgain) {
  ASSERT_EQ(AgentState(), hosting::v1::AGENT_STATE_CONNECTED);
  agent_->Stop(SIGKILL);
  // A killed process closes its TCP connection, so hostd notices at once (disconnected);
  // missed heartbeats cover the silent cases.
  absl::Status st = WaitFor([&] { return AgentState() == hosting::v1::AGENT_STATE_LOST; },
                            absl::Seconds(10), "hostd to mark the agent lost");
  EXPECT_TRUE(st.ok()) << st;
  agent_ = std::make_unique<AgentProcess>(hostd_->address(), dir_ + "/agent2.log");
  ASSERT_TRUE(agent_->Start().ok());
  st = WaitFor([&] { return AgentState() == hosting::v1::AGENT_STATE_CONNECTED; },
               absl::Seconds(10), "the agent to be connected again");
  EXPECT_TRUE(st.ok()) << st;
}

TEST_F(AgentIntegrationTest, NodeCommandsGoThroughTheAgent) {
  Apply("hosting/sample:v1", 1, 8080);
  ASSERT_TRUE(WaitHealthy(1).ok());
  const std::string task = Shell(absl::StrCat("docker service ps --no-trunc -q --filter desired-state=running ",
                                              name_, "-r1 | head -1 | tr -d '\\n'")).output;
  ASSERT_EQ(task.size(), 25u) << task;
  std::string hostctl = absl::StrCat(HostctlBinary(), " --server ", hostd_->address());

  // Logs: busybox httpd -v logs every response, the agent's probes among them.
  CommandResult logs;
  absl::Status logged = WaitFor(
      [&] {
        logs = Shell(hostctl + " logs " + task.substr(0, 10) + " -n 20");
        return logs.exit_code == 0 && absl::StrContains(logs.output, "response:200");
      },
      absl::Seconds(10), "a probe's response in the task's logs", absl::Milliseconds(500));
  EXPECT_TRUE(logged.ok()) << logged << "\n" << logs.exit_code << " " << logs.output;

  // Restart in place: the same container starts again.
  std::string container = Shell(absl::StrCat("docker ps -q --no-trunc --filter label=com.docker.swarm.task.id=",
                                             task, " | tr -d '\\n'")).output;
  std::string started = Shell("docker inspect --format '{{.State.StartedAt}}' " + container).output;
  CommandResult restart = Shell(hostctl + " task restart " + task);
  EXPECT_EQ(restart.exit_code, 0) << restart.output;
  EXPECT_THAT(restart.output, HasSubstr("restarted"));
  EXPECT_NE(Shell("docker inspect --format '{{.State.StartedAt}}' " + container).output, started);

  // A pull that cannot succeed (a registry on a closed loopback port) says why, per node.
  CommandResult pull = Shell(hostctl + " image pull 127.0.0.1:1/hosting/not-there:v9");
  EXPECT_EQ(pull.exit_code, 5) << pull.output;
  EXPECT_THAT(pull.output, HasSubstr("failed: pull: pulling 127.0.0.1:1/hosting/not-there:v9"));

  EXPECT_EQ(Shell(hostctl + " logs nosuchtask").exit_code, 4);
  EXPECT_EQ(Shell(hostctl + " logs abc").exit_code, 3);  // too short a prefix
}

// Runbooks through hostctl against the real hostd, agent and Swarm: the list, typed
// parameters refused by name, a dry run that records nothing, a log analysis whose logs come
// through the agent, a node maintenance refused on a one-node Swarm, and a run that outlives a
// hostd killed under it.
TEST_F(AgentIntegrationTest, RunbooksRunThroughTheAgentAndAreRecorded) {
  Apply("hosting/sample:v1", 2, 8080);
  ASSERT_TRUE(WaitHealthy(2).ok());
  const std::string hostctl = absl::StrCat(HostctlBinary(), " --server ", hostd_->address());

  CommandResult list = Shell(hostctl + " runbook list");
  ASSERT_EQ(list.exit_code, 0) << list.output;
  EXPECT_THAT(list.output, HasSubstr("node-maintenance"));
  EXPECT_THAT(list.output, HasSubstr("log-analysis"));

  CommandResult bad = Shell(hostctl + " runbook run log-analysis -p service=" + name_ +
                            " -p since=soon -p colour=blue");
  EXPECT_EQ(bad.exit_code, 3) << bad.output;
  EXPECT_THAT(bad.output, HasSubstr("parameters.since"));
  EXPECT_THAT(bad.output, HasSubstr("parameters.colour"));
  EXPECT_EQ(Shell(hostctl + " runbook run no-such-runbook").exit_code, 4);
  EXPECT_EQ(Shell(hostctl + " runbook status log-analysis-999").exit_code, 4);

  CommandResult plan =
      Shell(hostctl + " runbook run log-analysis --dry-run -p service=" + name_);
  ASSERT_EQ(plan.exit_code, 0) << plan.output;
  EXPECT_THAT(plan.output, HasSubstr("plan (dry run, nothing done)"));
  EXPECT_THAT(plan.output, HasSubstr("2 tasks of " + name_));
  EXPECT_THAT(Shell(hostctl + " runbook runs").output, ::testing::Not(HasSubstr("log-analysis-")));

  // The agent's probes are in the tasks' logs (busybox httpd -v).
  CommandResult analysis = Shell(hostctl + " runbook run log-analysis --wait --wait-timeout 60 -p service=" +
                                 name_ + " -p since=10m");
  EXPECT_EQ(analysis.exit_code, 0) << analysis.output;
  EXPECT_THAT(analysis.output, HasSubstr("step 1/1 analyze: succeeded"));
  EXPECT_THAT(analysis.output, HasSubstr(name_ + ": 2 tasks"));
  EXPECT_THAT(analysis.output, HasSubstr("errors: "));
  CommandResult runs = Shell(hostctl + " -o json runbook runs --runbook log-analysis");
  EXPECT_THAT(runs.output, HasSubstr("RUN_STATE_SUCCEEDED"));
  EXPECT_THAT(runs.output, HasSubstr("\"started_by\": \"token:"));

  // One node: its tasks would have nowhere to go.
  const std::string node =
      std::string(absl::StripAsciiWhitespace(Shell("docker info -f '{{.Name}}'").output));
  CommandResult maintenance = Shell(hostctl + " runbook run node-maintenance -p node=" + node);
  EXPECT_EQ(maintenance.exit_code, 5) << maintenance.output;
  EXPECT_THAT(maintenance.output, HasSubstr("nowhere to go"));

  // hostd killed as a run starts: the run ends either way, finished before the kill (a step
  // of a few milliseconds often is) or by the new hostd (the step is safe to run again), and
  // nothing is left running. (backup_integration_test kills hostd in the middle of a long step.)
  CommandResult started =
      Shell(hostctl + " -o json runbook run log-analysis -p service=" + name_);
  ASSERT_EQ(started.exit_code, 0) << started.output;
  hostd_->Stop(SIGKILL);
  ASSERT_TRUE(hostd_->Start().ok());
  Connect();
  CommandResult resumed;
  absl::Status ended = WaitFor(
      [&] {
        resumed = Shell(hostctl + " runbook runs --runbook log-analysis --active");
        return resumed.exit_code == 0 && !absl::StrContains(resumed.output, "log-analysis-");
      },
      absl::Seconds(60), "no log-analysis run left active", absl::Milliseconds(500));
  EXPECT_TRUE(ended.ok()) << ended << "\n" << resumed.output;
  // The step is tried again while the agent reconnects to the new hostd.
  const std::string last = Shell(hostctl + " -o json runbook runs --runbook log-analysis --limit 1").output;
  EXPECT_THAT(last, HasSubstr("RUN_STATE_SUCCEEDED")) << last;
}

TEST_F(AgentIntegrationTest, DrainAndActivateTheNode) {
  Apply("hosting/sample:v1", 1, 8080);
  ASSERT_TRUE(WaitHealthy(1).ok());
  std::string node = Shell("docker info --format '{{.Swarm.NodeID}}' | tr -d '\\n'").output;
  std::string hostctl = absl::StrCat(HostctlBinary(), " --server ", hostd_->address());
  CommandResult drain = Shell(hostctl + " node drain " + node);
  ASSERT_EQ(drain.exit_code, 0) << drain.output;
  EXPECT_THAT(drain.output, HasSubstr("drain"));
  // The only node drained: Swarm stops the task.
  EXPECT_TRUE(WaitFor([&] { return SwarmServicesOf(name_) == std::vector<std::string>{name_ + "-r1 1 0"}; },
                      absl::Seconds(30), "the task to leave the drained node").ok());
  CommandResult activate = Shell(hostctl + " node activate " + node);
  EXPECT_EQ(activate.exit_code, 0) << activate.output;
  EXPECT_THAT(activate.output, HasSubstr("active"));
  // A new task runs again, and the agent sees exactly that one task, healthy.
  EXPECT_TRUE(WaitFor([&] { return SwarmServicesOf(name_) == std::vector<std::string>{name_ + "-r1 1 1"}; },
                      absl::Seconds(30), "a task on the active node again").ok());
  EXPECT_TRUE(WaitFor(
                  [&] {
                    hosting::v1::ServiceHealthStatus s = Status();
                    return s.revisions_size() == 1 && s.revisions(0).healthy() == 1 &&
                           s.revisions(0).starting() == 0 && s.revisions(0).unhealthy() == 0;
                  },
                  absl::Seconds(30), "the new task healthy")
                  .ok());
  CommandResult missing = Shell(hostctl + " node drain no-such-node");
  EXPECT_EQ(missing.exit_code, 4) << missing.output;
}

// The deployed form: hostagent from its image, as a container beside the engine with the host's
// PID namespace, the capabilities to enter task namespaces and the host's cgroups mounted.
TEST(AgentImageTest, RunsAsAContainerBesideTheEngine) {
  ASSERT_TRUE(CheckDockerSwarm().ok());
  ASSERT_EQ(Shell("docker image inspect hosting/hostagent:dev").exit_code, 0) << "run scripts/images.sh";
  const std::string dir = MakeTempDir("hosting-agent-image-");
  HostdProcess hostd(dir);
  ASSERT_TRUE(hostd.Start().ok());
  const std::string name = "ag-image";
  EXPECT_EQ(RemoveSwarmServicesOf(name), absl::OkStatus());
  const std::string container = absl::StrCat("hostagent-it-", getpid());
  CommandResult run = Shell(absl::StrCat(
      "docker run -d --name ", container, " -e HOSTAGENT_TOKEN=", TestToken(),
      " --pid host --network host --cap-add SYS_ADMIN ",
      "--cap-add SYS_PTRACE --security-opt apparmor=unconfined --security-opt seccomp=unconfined ",
      "-v /var/run/docker.sock:/var/run/docker.sock -v /sys/fs/cgroup:/host/cgroup:ro ",
      "hosting/hostagent:dev --controller ", hostd.address(), " --metrics-listen 127.0.0.1:",
      FreePort(), " --cgroup-root /host/cgroup"));
  ASSERT_EQ(run.exit_code, 0) << run.output;
  auto services = hosting::v1::ServiceManager::NewStub(hostd.channel());
  auto cluster = hosting::v1::Cluster::NewStub(hostd.channel());
  hosting::v1::ApplyServiceRequest req;
  req.mutable_spec()->set_name(name);
  req.mutable_spec()->set_image("hosting/sample:v1");
  req.mutable_spec()->set_replicas(1);
  req.mutable_spec()->add_ports()->set_container_port(8080);
  req.mutable_spec()->mutable_health()->set_http_path("/health");
  req.mutable_spec()->mutable_stop_grace_period()->set_seconds(1);
  {
    grpc::ClientContext ctx;
    hosting::v1::ApplyServiceResponse resp;
    ASSERT_TRUE(services->ApplyService(&ctx, req, &resp).ok());
  }
  hosting::v1::ServiceHealthStatus s;
  absl::Status st = WaitFor(
      [&] {
        grpc::ClientContext ctx;
        hosting::v1::GetServiceStatusRequest r;
        r.set_name(name);
        return cluster->GetServiceStatus(&ctx, r, &s).ok() && s.revisions_size() == 1 &&
               s.revisions(0).healthy() == 1 && s.revisions(0).memory_bytes() > 0;
      },
      absl::Seconds(60), "the containerized agent to report the task healthy with its memory");
  EXPECT_TRUE(st.ok()) << st << "\n" << s.DebugString() << Shell("docker logs " + container).output;
  Shell("docker rm -f " + container);
  grpc::ClientContext ctx;
  hosting::v1::DeleteServiceRequest del;
  del.set_name(name);
  hosting::v1::DeleteServiceResponse resp;
  services->DeleteService(&ctx, del, &resp);
  WaitFor([&] { return SwarmServicesOf(name).empty(); }, absl::Seconds(30), "cleanup").IgnoreError();
}

}  // namespace
}  // namespace hosting::testing
