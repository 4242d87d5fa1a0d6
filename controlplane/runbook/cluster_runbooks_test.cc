#include "controlplane/runbook/cluster_runbooks.h"

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/clock.h"
#include "controlplane/runbook/engine.h"
#include "controlplane/runbook/platform_restart_runbook.h"
#include "controlplane/testing/fake_control_plane.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace hosting::controlplane {
namespace {

using ::hosting::v1::RunbookRun;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

// Two nodes; a drain moves the drained node's tasks to the other one after `moves_after`
// further listings (never, when negative).
class FakeClusterOperations : public ClusterOperations {
 public:
  FakeClusterOperations() {
    for (const char* id : {"n1", "n2"}) {
      hosting::v1::Node n;
      n.set_id(id);
      n.set_hostname(absl::StrCat("host-", id));
      n.set_availability(hosting::v1::NODE_AVAILABILITY_ACTIVE);
      n.set_state("ready");
      nodes.push_back(n);
    }
    tasks = {{"t1", "web", "n1", "running"},
             {"t2", "web", "n2", "running"},
             {"t3", "api", "n1", "running"}};
  }
  absl::StatusOr<std::vector<hosting::v1::Node>> ListNodes() override { return nodes; }
  absl::StatusOr<hosting::v1::Node> GetNode(const std::string& node) override {
    for (const auto& n : nodes) {
      if (n.id() == node || n.hostname() == node) return n;
    }
    return absl::NotFoundError(absl::StrCat("node '", node, "' not found"));
  }
  absl::StatusOr<hosting::v1::Node> SetAvailability(const std::string& node,
                                                    const std::string& availability) override {
    calls.push_back(absl::StrCat(availability, " ", node));
    for (auto& n : nodes) {
      if (n.id() != node) continue;
      n.set_availability(availability == "drain" ? hosting::v1::NODE_AVAILABILITY_DRAIN
                                                 : hosting::v1::NODE_AVAILABILITY_ACTIVE);
      if (availability == "drain") drained = node;
      if (availability == "active") {
        activated = node;
        drained.clear();
      }
      return n;
    }
    return absl::NotFoundError(node);
  }
  absl::StatusOr<hosting::v1::ServiceSpec> ServiceSpec(const std::string& service) override {
    return absl::NotFoundError(service);
  }
  absl::StatusOr<JobResult> RunJob(const std::string&, const std::string&, const std::string&,
                                   const std::vector<std::string>&, absl::Duration,
                                   const std::function<bool()>&) override {
    return absl::InternalError("not used here");
  }
  absl::StatusOr<hosting::v1::Release> StartRelease(const std::string&, const std::string&,
                                                    const std::string&) override {
    return absl::InternalError("not used here");
  }
  // Releases succeed; a restart moves the service's first task back to the node last activated
  // (as Swarm's spread places a new revision's tasks).
  absl::StatusOr<hosting::v1::Release> GetRelease(const std::string& id) override {
    hosting::v1::Release r;
    r.set_id(id);
    r.set_state(hosting::v1::RELEASE_STATE_SUCCEEDED);
    return r;
  }
  absl::StatusOr<hosting::v1::Release> ReleaseEnv(const std::string& service,
                                                  const std::map<std::string, std::string>& env,
                                                  const std::string&) override {
    if (env.count("HOSTING_RESTARTED_AT") == 0) return absl::InternalError("not a restart");
    calls.push_back(absl::StrCat("restart ", service));
    for (auto& t : tasks) {
      if (t.service == service) {
        t.node_id = activated;
        break;
      }
    }
    hosting::v1::Release r;
    r.set_id(service + "-9");
    return r;
  }
  absl::StatusOr<std::vector<HostedTask>> Tasks() override {
    if (!drained.empty() && moves_after >= 0 && listings++ >= moves_after) {
      for (auto& t : tasks) {
        if (t.node_id == drained) t.node_id = drained == "n1" ? "n2" : "n1";
      }
    }
    return tasks;
  }
  absl::StatusOr<std::vector<std::string>> ServicesShort() override { return short_services; }
  absl::StatusOr<std::string> TaskLogs(const std::string& task_id, int) override {
    auto it = logs.find(task_id);
    if (it == logs.end()) return absl::UnavailableError("agent not connected");
    return it->second;
  }

  std::vector<hosting::v1::Node> nodes;
  std::vector<HostedTask> tasks;
  std::vector<std::string> short_services;
  std::map<std::string, std::string> logs;
  std::vector<std::string> calls;
  std::string drained, activated;
  int moves_after = 2;
  int listings = 0;
};

// The platform's stack: a forced update is "updating" at the next look and done at the one
// after (or paused, for a service in `pause_update_of`); a reload replaces worker 1 by 2.
class FakePlatformOperations : public PlatformOperations {
 public:
  absl::StatusOr<std::vector<PlatformService>> StackServices(const std::string& stack) override {
    if (stack != "hosting") return absl::NotFoundError(absl::StrCat("no stack ", stack));
    return services;
  }
  absl::Status ForceUpdate(const std::string& id) override {
    calls.push_back("update " + id);
    looks[id] = 0;
    return absl::OkStatus();
  }
  absl::StatusOr<UpdateProgress> Progress(const std::string& id) override {
    UpdateProgress p;
    const int look = looks[id]++;
    if (pause_update_of == id && look >= 1) {
      p.failed = true;
      p.detail = "paused, 0/1 tasks running";
      return p;
    }
    // The last update's state, the old task stopped, the new one running (Swarm's monitor
    // period), completed.
    p.desired = 1;
    p.running = look == 1 ? 0 : 1;
    p.done = look == 0 || look >= 3;
    p.detail = absl::StrCat(p.done ? "completed" : "updating", ", ", p.running, "/1 tasks running");
    if (look >= 3 && writes_held) held_at_completion.push_back(id);
    return p;
  }
  absl::Status PauseWrites(bool paused) override {
    writes_held = paused;
    calls.push_back(paused ? "writes held" : "writes let go");
    return absl::OkStatus();
  }
  absl::StatusOr<std::vector<std::string>> ProxyWorkers() override {
    return std::vector<std::string>{reloaded ? "2" : "1"};
  }
  absl::Status ReloadProxy() override {
    calls.push_back("reload");
    reloaded = true;
    // The new workers start empty; hostd adds the servers back a moment later.
    servers_after_reload = 0;
    return absl::OkStatus();
  }
  absl::StatusOr<int> ProxyServers(const std::string& backend) override {
    if (!reloaded) return 2;
    return servers_after_reload++ >= 2 ? 2 : 0;
  }

  static PlatformService Service(std::string name, std::string tier, int order,
                                 std::string restart = "update") {
    PlatformService s;
    s.id = "id-" + name;
    s.name = "hosting_" + name;
    s.tier = std::move(tier);
    s.order = order;
    s.restart = std::move(restart);
    s.desired_tasks = 1;
    return s;
  }

  std::vector<PlatformService> services = {
      Service("node-exporter", "monitoring", 100), Service("haproxy", "proxy", 100, "reload"),
      Service("postgres-primary", "data", 30, "pause-writes"), Service("redis", "data", 20),
      Service("postgres-replica", "data", 10)};
  std::vector<std::string> calls;
  std::map<std::string, int> looks;
  std::string pause_update_of;
  bool writes_held = false;
  // Services whose update completed while writes were still held.
  std::vector<std::string> held_at_completion;
  bool reloaded = false;
  int servers_after_reload = 2;
};

class ClusterRunbooksTest : public ::testing::Test {
 protected:
  ClusterRunbooksTest() {
    RunbookEngineOptions o;
    o.stop_grace = absl::ZeroDuration();
    o.launch = [](std::function<void()> attempt) { attempt(); };  // inline, on the fake clock
    engine_ = std::make_unique<RunbookEngine>(cp_.store, cp_.events, clock_, o);
    engine_->Register(std::make_shared<NodeMaintenanceRunbook>(ops_));
    engine_->Register(std::make_shared<LogAnalysisRunbook>(ops_));
    engine_->Register(std::make_shared<PlatformRestartRunbook>(ops_, platform_));
  }
  absl::StatusOr<RunbookRun> Run(const std::string& runbook,
                                 std::map<std::string, std::string> params) {
    hosting::v1::RunRunbookRequest req;
    req.set_runbook(runbook);
    for (const auto& [k, v] : params) (*req.mutable_parameters())[k] = v;
    return engine_->Run(req, "token:ops");
  }
  RunbookRun Drive(const std::string& id, int ticks = 20) {
    for (int i = 0; i < ticks; ++i) {
      engine_->Tick();
      clock_.Advance(absl::Seconds(1));
    }
    return engine_->Get(id).value();
  }

  FakeClock clock_;
  FakeControlPlane cp_{clock_};
  FakeClusterOperations ops_;
  FakePlatformOperations platform_;
  std::unique_ptr<RunbookEngine> engine_;
};

TEST_F(ClusterRunbooksTest, NodeMaintenanceDrainsWaitsForApprovalAndActivates) {
  absl::StatusOr<RunbookRun> run = Run("node-maintenance", {{"node", "host-n1"}});
  ASSERT_TRUE(run.ok()) << run.status();
  EXPECT_EQ(run->target(), "host-n1");
  EXPECT_THAT(run->steps(0).detail(), HasSubstr("2 hosted tasks"));
  RunbookRun r = Drive(run->id());
  ASSERT_EQ(r.state(), hosting::v1::RUN_STATE_WAITING_APPROVAL) << r.message();
  EXPECT_EQ(r.steps(1).state(), hosting::v1::RUN_STATE_SUCCEEDED);
  EXPECT_THAT(ops_.calls, ElementsAre("drain n1"));
  ASSERT_TRUE(engine_->Approve(run->id(), "disk replaced", "token:ops").ok());
  r = Drive(run->id());
  EXPECT_EQ(r.state(), hosting::v1::RUN_STATE_SUCCEEDED) << r.message();
  // web (2 tasks, both moved) is short of its share on n1 and is restarted; api (1 task) is not.
  EXPECT_THAT(ops_.calls, ElementsAre("drain n1", "active n1", "restart web"));
  EXPECT_THAT(r.steps(4).output(), HasSubstr("restarted web (0 of 2 tasks on host-n1; release web-9)"));
  EXPECT_EQ(r.outputs().at("spread"), "host-n1=1 host-n2=2");
  EXPECT_THAT(r.steps(2).output(), HasSubstr("approved by token:ops"));
}

TEST_F(ClusterRunbooksTest, NodeMaintenanceWithAWaitNeedsNoApproval) {
  absl::StatusOr<RunbookRun> run =
      Run("node-maintenance", {{"node", "n2"}, {"wait", "10m"}, {"rebalance", "false"}});
  ASSERT_TRUE(run.ok()) << run.status();
  ASSERT_EQ(run->steps_size(), 5);  // no rebalance
  RunbookRun r = Drive(run->id());
  EXPECT_EQ(r.state(), hosting::v1::RUN_STATE_SUCCEEDED) << r.message();
  EXPECT_THAT(r.steps(2).output(), HasSubstr("kept host-n2 drained for 10m"));
  EXPECT_THAT(ops_.calls, ElementsAre("drain n2", "active n2"));
}

TEST_F(ClusterRunbooksTest, NodeMaintenanceIsRefusedForTheOnlyActiveNodeAndAnUnknownOne) {
  ops_.nodes[1].set_availability(hosting::v1::NODE_AVAILABILITY_DRAIN);
  absl::Status only = Run("node-maintenance", {{"node", "n1"}}).status();
  EXPECT_TRUE(absl::IsFailedPrecondition(only)) << only;
  EXPECT_THAT(std::string(only.message()), HasSubstr("nowhere to go"));
  EXPECT_TRUE(absl::IsNotFound(Run("node-maintenance", {{"node", "n9"}}).status()));
  EXPECT_TRUE(ops_.calls.empty());
}

TEST_F(ClusterRunbooksTest, TasksThatNeverMoveFailTheRunAndLeaveTheNodeDrained) {
  ops_.moves_after = -1;
  absl::StatusOr<RunbookRun> run =
      Run("node-maintenance", {{"node", "n1"}, {"move_timeout", "20s"}});
  ASSERT_TRUE(run.ok()) << run.status();
  RunbookRun r = Drive(run->id(), 200);
  EXPECT_EQ(r.state(), hosting::v1::RUN_STATE_FAILED);
  EXPECT_THAT(r.message(), HasSubstr("wait-moved"));
  EXPECT_THAT(r.message(), HasSubstr("the tasks to leave host-n1"));
  EXPECT_THAT(ops_.calls, ElementsAre("drain n1"));
}

TEST(LogAnalyzerTest, NormalizesNumbersAndIds) {
  EXPECT_EQ(LogAnalyzer::Normalize("db timeout after 1503ms (req 9f3a2b1c44)"),
            "db timeout after Nms (req X)");
  EXPECT_EQ(LogAnalyzer::Normalize("worker r2 added"), "worker r2 added");
}

TEST(LogAnalyzerTest, CountsErrorsByPatternInTheWindowWithTheFirstOccurrence) {
  LogAnalyzer a(absl::FromUnixSeconds(1'700'000'000));
  // 2023-11-14T22:13:20Z is the window's start.
  a.Add("task-a",
        "{\"ts\":\"2023-11-14T22:00:00Z\",\"level\":\"error\",\"msg\":\"too old\"}\n"
        "{\"ts\":\"2023-11-14T22:20:00Z\",\"level\":\"error\",\"msg\":\"db timeout after 12ms\"}\n"
        "{\"ts\":\"2023-11-14T22:21:00Z\",\"level\":\"info\",\"msg\":\"request\",\"status\":503}\n"
        "{\"ts\":\"2023-11-14T22:22:00Z\",\"level\":\"info\",\"msg\":\"fine\"}\n");
  a.Add("task-b",
        "{\"ts\":\"2023-11-14T22:15:00Z\",\"level\":\"error\",\"msg\":\"db timeout after 7ms\"}\n"
        "Error: connection refused\n");
  LogFindings f = a.Findings(2);
  EXPECT_EQ(f.lines, 5);
  EXPECT_EQ(f.untimed, 1);
  EXPECT_EQ(f.errors, 4);
  EXPECT_EQ(f.by_pattern["level-error"], 3);
  EXPECT_EQ(f.by_pattern["timeout"], 2);
  EXPECT_EQ(f.by_pattern["http-5xx"], 1);
  EXPECT_EQ(f.by_pattern["connection-refused"], 1);
  ASSERT_EQ(f.top.size(), 2u);
  EXPECT_EQ(f.top[0].text, "db timeout after Nms");
  EXPECT_EQ(f.top[0].count, 2);
  EXPECT_EQ(f.top[0].first_task, "task-b");
  EXPECT_EQ(f.top[0].first_time, "2023-11-14T22:15:00Z");
}

TEST_F(ClusterRunbooksTest, LogAnalysisReportsThroughTheRunsOutputs) {
  ops_.logs["t1"] = "{\"ts\":\"2023-11-14T22:20:00Z\",\"level\":\"error\",\"msg\":\"boom 1\"}\n";
  absl::StatusOr<RunbookRun> run = Run("log-analysis", {{"service", "web"}, {"since", "24h"}});
  ASSERT_TRUE(run.ok()) << run.status();
  RunbookRun r = Drive(run->id(), 3);
  ASSERT_EQ(r.state(), hosting::v1::RUN_STATE_SUCCEEDED) << r.message();
  EXPECT_EQ(r.outputs().at("errors"), "1");
  EXPECT_EQ(r.outputs().at("top.1"), "1 x boom N");
  EXPECT_THAT(r.steps(0).output(), HasSubstr("not read: t2: agent not connected"));
  absl::Status none = Run("log-analysis", {{"service", "ghost"}}).status();
  EXPECT_TRUE(absl::IsNotFound(none)) << none;
  EXPECT_THAT(std::string(none.message()), HasSubstr("'ghost' has no task"));
}

// Lines of containers c1... as Loki would keep them; or an error.
class FakeLogStore : public LogStore {
 public:
  absl::StatusOr<std::vector<StoredLogLine>> Lines(const std::vector<std::string>& containers,
                                                   absl::Time since, absl::Time until,
                                                   int limit) override {
    asked = containers;
    window = until - since;
    asked_limit = limit;
    if (!error.ok()) return error;
    return lines;
  }
  std::vector<StoredLogLine> lines;
  absl::Status error = absl::OkStatus();
  std::vector<std::string> asked;
  absl::Duration window;
  int asked_limit = 0;
};

TEST_F(ClusterRunbooksTest, LogAnalysisReadsLokiWhenHostdHasOneAndTheAgentsWhenItFails) {
  ops_.tasks[0].container_id = "aaaaaaaaaaaa1111";
  ops_.tasks[1].container_id = "bbbbbbbbbbbb2222";
  ops_.logs["t1"] = "{\"level\":\"error\",\"msg\":\"from the agent\"}\n";
  FakeLogStore loki;
  const absl::Time now = clock_.Now();
  loki.lines = {{"aaaaaaaaaaaa", now - absl::Minutes(50), R"({"level":"error","msg":"db timeout 1"})"},
                {"bbbbbbbbbbbb", now - absl::Minutes(40), R"({"level":"error","msg":"db timeout 2"})"},
                {"bbbbbbbbbbbb", now - absl::Minutes(30), R"({"level":"info","msg":"ok"})"}};
  RunbookEngineOptions o;
  o.stop_grace = absl::ZeroDuration();
  o.launch = [](std::function<void()> attempt) { attempt(); };
  RunbookEngine engine(cp_.store, cp_.events, clock_, o);
  engine.Register(std::make_shared<LogAnalysisRunbook>(ops_, &loki));
  hosting::v1::RunRunbookRequest req;
  req.set_runbook("log-analysis");
  (*req.mutable_parameters())["service"] = "web";
  (*req.mutable_parameters())["lines"] = "100";
  absl::StatusOr<RunbookRun> run = engine.Run(req, "me");
  ASSERT_TRUE(run.ok()) << run.status();
  EXPECT_THAT(run->steps(0).detail(), HasSubstr("from Loki"));
  for (int i = 0; i < 10; ++i) engine.Tick();
  RunbookRun r = engine.Get(run->id()).value();
  ASSERT_EQ(r.state(), hosting::v1::RUN_STATE_SUCCEEDED) << r.message();
  EXPECT_EQ(loki.asked, (std::vector<std::string>{"aaaaaaaaaaaa1111", "bbbbbbbbbbbb2222"}));
  EXPECT_EQ(loki.window, absl::Hours(1));
  EXPECT_EQ(loki.asked_limit, 200);
  EXPECT_EQ(r.outputs().at("source"), "loki");
  EXPECT_EQ(r.outputs().at("lines"), "3");
  EXPECT_EQ(r.outputs().at("errors"), "2");
  EXPECT_EQ(r.outputs().at("top.1"), "2 x db timeout N");

  // Loki down: the agents, and the run says why.
  loki.error = absl::UnavailableError("Loki at http://loki:3100: Couldn't connect to server");
  run = engine.Run(req, "me");
  ASSERT_TRUE(run.ok()) << run.status();
  for (int i = 0; i < 10; ++i) engine.Tick();
  r = engine.Get(run->id()).value();
  ASSERT_EQ(r.state(), hosting::v1::RUN_STATE_SUCCEEDED) << r.message();
  EXPECT_EQ(r.outputs().at("source"), "agents");
  EXPECT_EQ(r.outputs().at("top.1"), "1 x from the agent");
  EXPECT_THAT(r.steps(0).output(), HasSubstr("Couldn't connect to server; read through the agents"));
}

}  // namespace
}  // namespace hosting::controlplane

namespace hosting::controlplane {
namespace {

TEST_F(ClusterRunbooksTest, PlatformRestartGoesInDependencyOrderHoldingWritesForThePrimary) {
  absl::StatusOr<RunbookRun> run = Run("platform-restart", {});
  ASSERT_TRUE(run.ok()) << run.status();
  std::vector<std::string> steps;
  for (const auto& step : run->steps()) steps.push_back(step.name());
  EXPECT_THAT(steps, ElementsAre("restart-postgres-replica", "restart-redis",
                                 "restart-postgres-primary", "restart-node-exporter", "app-api",
                                 "app-web", "reload-haproxy"));
  EXPECT_THAT(run->steps(2).detail(), HasSubstr("writes held at the front door"));
  RunbookRun r = Drive(run->id(), 60);
  ASSERT_EQ(r.state(), hosting::v1::RUN_STATE_SUCCEEDED) << r.message();
  EXPECT_THAT(platform_.calls,
              ElementsAre("update id-postgres-replica", "update id-redis", "writes held",
                          "update id-postgres-primary", "writes let go",
                          "update id-node-exporter", "reload"));
  EXPECT_THAT(ops_.calls, ElementsAre("restart api", "restart web"));
  EXPECT_THAT(r.steps(0).output(), HasSubstr("completed, 1/1 tasks running"));
  EXPECT_THAT(r.steps(6).output(), HasSubstr("workers 1 -> 2; servers back: api=2 web=2"));
  EXPECT_TRUE(r.outputs().contains("postgres-primary.seconds"));
  // Writes go on once the new primary runs, not after Swarm's monitor period.
  EXPECT_THAT(platform_.held_at_completion, ::testing::IsEmpty());
  EXPECT_TRUE(r.outputs().contains("postgres-primary.writes_held_seconds"));
  EXPECT_THAT(r.steps(2).output(), HasSubstr("writes held at the front door for"));
}

TEST_F(ClusterRunbooksTest, PlatformRestartLeavesTiersOutAndRefusesWhatItCannotOrder) {
  absl::StatusOr<RunbookRun> run = Run(
      "platform-restart", {{"data", "false"}, {"monitoring", "false"}, {"app", "false"}});
  ASSERT_TRUE(run.ok()) << run.status();
  ASSERT_EQ(run->steps_size(), 1);
  EXPECT_EQ(run->steps(0).name(), "reload-haproxy");

  EXPECT_EQ(Run("platform-restart", {{"stack", "other"}}).status().code(),
            absl::StatusCode::kNotFound);
  platform_.services.push_back(FakePlatformOperations::Service("grafana", "", 100));
  absl::StatusOr<RunbookRun> refused = Run("platform-restart", {{"stack", "hosting"}});
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(refused.status().message(), HasSubstr("hosting_grafana"));
}

TEST_F(ClusterRunbooksTest, APausedSwarmUpdateFailsTheRunAndLetsWritesGo) {
  platform_.pause_update_of = "id-postgres-primary";
  absl::StatusOr<RunbookRun> run = Run("platform-restart", {{"monitoring", "false"}});
  ASSERT_TRUE(run.ok()) << run.status();
  RunbookRun r = Drive(run->id(), 60);
  ASSERT_EQ(r.state(), hosting::v1::RUN_STATE_FAILED);
  EXPECT_THAT(r.message(), HasSubstr("hosting_postgres-primary"));
  EXPECT_THAT(r.message(), HasSubstr("paused"));
  EXPECT_THAT(platform_.calls, ElementsAre("update id-postgres-replica", "update id-redis",
                                           "writes held", "update id-postgres-primary",
                                           "writes let go"));
}

TEST(PlatformOperationsTest, FindsTheMasterSocketAndItsWorkers) {
  EXPECT_EQ(HaproxyMasterAddress("/run/hosting/haproxy/admin.sock", ""),
            "/run/hosting/haproxy/master.sock");
  EXPECT_EQ(HaproxyMasterAddress("unix:///run/h/admin.sock", ""), "/run/h/master.sock");
  EXPECT_EQ(HaproxyMasterAddress("127.0.0.1:9999", ""), "");
  EXPECT_EQ(HaproxyMasterAddress("/a/admin.sock", "/b/m.sock"), "/b/m.sock");
  EXPECT_THAT(PlatformOperationsImpl::ParseWorkers(
                  "#<PID>          <type>          <reloads>       <uptime>        <version>\n"
                  "5235            master          2 [failed: 0]   0d00h00m14s     2.6.12\n"
                  "# workers\n"
                  "14941           worker          0               0d00h00m04s     2.6.12\n"
                  "# programs\n"),
              ElementsAre("14941"));
}

}  // namespace
}  // namespace hosting::controlplane
