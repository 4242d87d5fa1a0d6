#include "controlplane/agents/agent_registry.h"

#include <cmath>

#include "controlplane/agents/agent_metrics.h"
#include "controlplane/store/sqlite_store.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/time_util.h"
#include "gtest/gtest.h"

namespace hosting::controlplane {
namespace {

using google::protobuf::util::TimeUtil;
using ::testing::Contains;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;

class AgentRegistryTest : public ::testing::Test {
 protected:
  AgentRegistryTest()
      : store_(SqliteStore::Open(":memory:").value()), events_(*store_, clock_),
        registry_(AgentRegistry::Options{absl::Seconds(2), 3, absl::Seconds(30)}, events_, clock_) {}

  hosting::v1::Register Reg(const std::string& node) {
    hosting::v1::Register r;
    r.set_node_id(node);
    r.set_hostname(node + ".local");
    r.set_agent_version("0.1.0");
    (*r.mutable_labels())["zone"] = "eu-1";
    return r;
  }

  hosting::v1::TaskReport Task(const std::string& id, int64_t revision, hosting::v1::TaskHealth h) {
    hosting::v1::TaskReport t;
    t.set_task_id(id);
    t.set_service("web");
    t.set_swarm_service("web-r" + std::to_string(revision));
    t.set_revision(revision);
    t.set_probe_health(h);
    return t;
  }

  std::vector<std::string> EventTypes() {
    std::vector<std::string> out;
    std::vector<hosting::v1::Event> events = store_->ListEvents(0, 1000).value();
    for (const auto& e : events) out.push_back(e.type());
    return out;
  }

  // A metrics report for one task at the fake clock's now.
  void Report(const std::string& task, int64_t revision, double requests, double errors,
              std::vector<double> counts, uint64_t cpu_ns) {
    hosting::v1::MetricsReport r;
    auto* m = r.add_tasks();
    m->set_task_id(task);
    m->set_service("web");
    m->set_revision(revision);
    m->set_requests_total(requests);
    m->set_errors_total(errors);
    for (double b : {0.001, 0.01, 0.1, static_cast<double>(INFINITY)}) m->add_latency_bucket_bounds(b);
    for (double c : counts) m->add_latency_bucket_counts(c);
    m->set_cpu_usage_ns(cpu_ns);
    m->set_memory_bytes(64 << 20);
    *m->mutable_scraped_at() = TimeUtil::NanosecondsToTimestamp(absl::ToUnixNanos(clock_.Now()));
    registry_.Metrics("n1", r);
  }

  FakeClock clock_;
  std::unique_ptr<Store> store_;
  EventLog events_;
  AgentRegistry registry_;
};

TEST_F(AgentRegistryTest, SessionsConnectGetLostAndComeBack) {
  EXPECT_EQ(registry_.Agent("n1").state, hosting::v1::AGENT_STATE_ABSENT);
  int64_t s = registry_.Connect(Reg("n1")).value();
  EXPECT_EQ(registry_.Agent("n1").state, hosting::v1::AGENT_STATE_CONNECTED);
  EXPECT_EQ(registry_.Agent("n1").version, "0.1.0");
  EXPECT_EQ(registry_.Agent("n1").labels.at("zone"), "eu-1");
  clock_.Advance(absl::Seconds(5));
  registry_.Sweep();
  EXPECT_EQ(registry_.Agent("n1").state, hosting::v1::AGENT_STATE_CONNECTED);  // 5 s < 3 x 2 s
  clock_.Advance(absl::Seconds(2));
  registry_.Sweep();
  EXPECT_EQ(registry_.Agent("n1").state, hosting::v1::AGENT_STATE_LOST);
  registry_.Sweep();  // reported once
  registry_.Touch("n1", s);
  EXPECT_EQ(registry_.Agent("n1").state, hosting::v1::AGENT_STATE_CONNECTED);
  std::vector<std::string> types = EventTypes();
  EXPECT_EQ(std::count(types.begin(), types.end(), "agent.lost"), 1);
  EXPECT_EQ(std::count(types.begin(), types.end(), "agent.connected"), 2);
}

// A connected node's size comes from its Register, the memory it has available from its last
// report (a report without the figure keeps the last one); a lost node offers nothing.
TEST_F(AgentRegistryTest, CapacityIsWhatConnectedNodesReport) {
  hosting::v1::Register reg = Reg("n1");
  reg.set_cpus(2);
  reg.set_memory_bytes(int64_t{8} << 30);
  registry_.Connect(reg).value();
  std::vector<AgentRegistry::NodeCapacity> nodes = registry_.Capacity();
  ASSERT_EQ(nodes.size(), 1u);
  EXPECT_EQ(nodes[0].cpus, 2);
  EXPECT_EQ(nodes[0].memory_bytes, int64_t{8} << 30);
  EXPECT_EQ(nodes[0].memory_available_bytes, 0);
  hosting::v1::MetricsReport r;
  r.set_node_memory_available_bytes(int64_t{5} << 30);
  registry_.Metrics("n1", r);
  registry_.Metrics("n1", hosting::v1::MetricsReport());
  EXPECT_EQ(registry_.Capacity()[0].memory_available_bytes, int64_t{5} << 30);
  clock_.Advance(absl::Seconds(7));
  registry_.Sweep();
  EXPECT_TRUE(registry_.Capacity().empty());
}

// One agent owns a node: a second session is refused while the first is live, and replaces
// it once it has gone quiet (a half-open stream after a partition).
TEST_F(AgentRegistryTest, ASecondAgentIsRefusedWhileTheFirstIsLiveAndReplacesAQuietOne) {
  int64_t old_session = registry_.Connect(Reg("n1")).value();
  absl::StatusOr<int64_t> forged = registry_.Connect(Reg("n1"));
  EXPECT_TRUE(absl::IsAlreadyExists(forged.status())) << forged.status();
  EXPECT_THAT(std::string(forged.status().message()), HasSubstr("one agent per node"));
  clock_.Advance(absl::Seconds(7));  // past 3 missed 2 s heartbeats
  int64_t new_session = registry_.Connect(Reg("n1")).value();
  registry_.Disconnect("n1", old_session);  // the old stream ends late: ignored
  EXPECT_EQ(registry_.Agent("n1").state, hosting::v1::AGENT_STATE_CONNECTED);
  registry_.Disconnect("n1", new_session);
  EXPECT_EQ(registry_.Agent("n1").state, hosting::v1::AGENT_STATE_LOST);
  EXPECT_THAT(EventTypes(), Contains("agent.disconnected"));
}

TEST_F(AgentRegistryTest, NodeIdsAreCheckedAndReportsBounded) {
  for (const std::string bad : {std::string(""), std::string(65, 'a'), std::string("n 1"),
                                std::string("n\0x", 3), std::string("../n1")}) {
    EXPECT_TRUE(absl::IsInvalidArgument(registry_.Connect(Reg(bad)).status())) << bad;
  }
  registry_.Connect(Reg("n1")).value();
  registry_.Connect(Reg("n2")).value();
  // A snapshot larger than any node runs is refused whole.
  hosting::v1::TaskSnapshot flood;
  for (int i = 0; i < 20000; ++i) {
    *flood.add_tasks() = Task(absl::StrCat("forged", i), 1, hosting::v1::TASK_HEALTH_HEALTHY);
  }
  absl::Status st = registry_.Snapshot("n2", flood);
  EXPECT_TRUE(absl::IsInvalidArgument(st)) << st;
  EXPECT_THAT(registry_.Tasks("web"), IsEmpty());
  // n2 cannot take over a task n1 reports, by snapshot or by change.
  registry_.TaskChanged("n1", Task("t1", 1, hosting::v1::TASK_HEALTH_HEALTHY));
  hosting::v1::TaskSnapshot steal;
  *steal.add_tasks() = Task("t1", 1, hosting::v1::TASK_HEALTH_UNHEALTHY);
  ASSERT_TRUE(registry_.Snapshot("n2", steal).ok());
  registry_.TaskChanged("n2", Task("t1", 1, hosting::v1::TASK_HEALTH_UNHEALTHY));
  ASSERT_THAT(registry_.Tasks("web"), SizeIs(1));
  EXPECT_EQ(registry_.Tasks("web")[0].probe_health(), hosting::v1::TASK_HEALTH_HEALTHY);
}

TEST_F(AgentRegistryTest, ReportsAreBoundedByWhatSwarmRuns) {
  auto listing = std::make_shared<SwarmTaskListing>();
  listing->listed_at = clock_.Now();
  bool swarm_answers = true;
  registry_.SetSwarmTasks([&]() -> std::shared_ptr<const SwarmTaskListing> {
    return swarm_answers ? listing : nullptr;
  });
  registry_.Connect(Reg("n1")).value();
  registry_.Connect(Reg("n2")).value();
  clock_.Advance(absl::Milliseconds(100));
  // Reported after the last listing: believed until a listing says otherwise (a task Swarm
  // just started is in no listing yet).
  hosting::v1::TaskSnapshot n1;
  *n1.add_tasks() = Task("real", 1, hosting::v1::TASK_HEALTH_HEALTHY);
  *n1.add_tasks() = Task("forged", 1, hosting::v1::TASK_HEALTH_HEALTHY);
  *n1.add_tasks() = Task("elsewhere", 1, hosting::v1::TASK_HEALTH_HEALTHY);
  ASSERT_TRUE(registry_.Snapshot("n1", n1).ok());
  EXPECT_THAT(registry_.Tasks("web"), SizeIs(3));
  EXPECT_EQ(registry_.UnconfirmedTasks(), 0);

  // A newer listing holds "real" on n1 and "elsewhere" on n2: the rest are not believed.
  auto newer = std::make_shared<SwarmTaskListing>();
  newer->listed_at = clock_.Now() + absl::Milliseconds(50);
  newer->node_of_task = {{"real", "n1"}, {"elsewhere", "n2"}};
  listing = newer;
  ASSERT_THAT(registry_.Tasks("web"), SizeIs(1));
  EXPECT_EQ(registry_.Tasks("web")[0].task_id(), "real");
  EXPECT_EQ(registry_.Aggregate("web")[1].healthy, 1);
  EXPECT_THAT(registry_.TaskMetrics("web", absl::Seconds(30)), SizeIs(1));
  EXPECT_EQ(registry_.Agent("n1").running_tasks, 1);
  EXPECT_TRUE(absl::IsNotFound(registry_.FindTask("forged").status()));
  EXPECT_EQ(registry_.UnconfirmedTasks(), 2);

  // Swarm cannot be listed: the agents are believed again (a Docker outage never takes
  // tasks out of routing).
  swarm_answers = false;
  EXPECT_THAT(registry_.Tasks("web"), SizeIs(3));
}

TEST_F(AgentRegistryTest, HealthTransitionsAreEvents) {
  registry_.Connect(Reg("n1")).value();
  registry_.TaskChanged("n1", Task("t1", 1, hosting::v1::TASK_HEALTH_STARTING));
  registry_.TaskChanged("n1", Task("t1", 1, hosting::v1::TASK_HEALTH_HEALTHY));
  registry_.TaskChanged("n1", Task("t1", 1, hosting::v1::TASK_HEALTH_HEALTHY));  // no change
  registry_.TaskChanged("n1", Task("t1", 1, hosting::v1::TASK_HEALTH_UNHEALTHY));
  std::vector<std::string> types = EventTypes();
  EXPECT_EQ(std::count(types.begin(), types.end(), "task.healthy"), 1);
  EXPECT_EQ(std::count(types.begin(), types.end(), "task.unhealthy"), 1);
  auto agg = registry_.Aggregate("web");
  EXPECT_EQ(agg[1].unhealthy, 1);
}

TEST_F(AgentRegistryTest, SnapshotReplacesTheNodesTasks) {
  registry_.Connect(Reg("n1")).value();
  registry_.TaskChanged("n1", Task("t1", 1, hosting::v1::TASK_HEALTH_HEALTHY));
  registry_.TaskChanged("n1", Task("t2", 1, hosting::v1::TASK_HEALTH_HEALTHY));
  hosting::v1::TaskSnapshot snap;
  *snap.add_tasks() = Task("t2", 1, hosting::v1::TASK_HEALTH_HEALTHY);
  *snap.add_tasks() = Task("t3", 2, hosting::v1::TASK_HEALTH_STARTING);
  ASSERT_TRUE(registry_.Snapshot("n1", snap).ok());
  EXPECT_EQ(registry_.Tasks("web").size(), 2u);
  auto agg = registry_.Aggregate("web");
  EXPECT_EQ(agg[1].healthy, 1);
  EXPECT_EQ(agg[2].starting, 1);
  EXPECT_EQ(registry_.Agent("n1").running_tasks, 2);
}

TEST_F(AgentRegistryTest, AggregatesRatesErrorsLatencyAndCpuPerRevision) {
  registry_.Connect(Reg("n1")).value();
  registry_.TaskChanged("n1", Task("a", 1, hosting::v1::TASK_HEALTH_HEALTHY));
  registry_.TaskChanged("n1", Task("b", 1, hosting::v1::TASK_HEALTH_HEALTHY));
  registry_.TaskChanged("n1", Task("c", 2, hosting::v1::TASK_HEALTH_HEALTHY));
  // 10 s: each r1 task serves 100 req/s, 1 % errors, all under 10 ms, using half a core;
  // the r2 task serves 50 req/s, 20 % errors, all between 10 and 100 ms.
  for (int s = 0; s <= 10; ++s) {
    double n = 100.0 * s;
    Report("a", 1, n, n / 100, {n / 2, n, n, n}, static_cast<uint64_t>(s * 5e8));
    Report("b", 1, n, n / 100, {n / 2, n, n, n}, static_cast<uint64_t>(s * 5e8));
    double m = 50.0 * s;
    Report("c", 2, m, m / 5, {0, 0, m, m}, 0);
    clock_.Advance(absl::Seconds(1));
  }
  auto agg = registry_.Aggregate("web");
  EXPECT_NEAR(agg[1].rps, 200, 1e-6);
  EXPECT_NEAR(agg[1].error_ratio, 0.01, 1e-9);
  EXPECT_LE(agg[1].p99, 0.01);
  EXPECT_NEAR(agg[1].cpu_cores, 0.5, 1e-9);
  EXPECT_EQ(agg[1].memory_bytes, 64 << 20);
  EXPECT_EQ(agg[1].metrics_missing, 0);
  EXPECT_NEAR(agg[2].rps, 50, 1e-6);
  EXPECT_NEAR(agg[2].error_ratio, 0.2, 1e-9);
  EXPECT_GT(agg[2].p50, 0.01);
  EXPECT_LE(agg[2].p99, 0.1);
}

TEST_F(AgentRegistryTest, AggregatesAreExportedForPrometheus) {
  registry_.Connect(Reg("n1")).value();
  registry_.TaskChanged("n1", Task("a", 3, hosting::v1::TASK_HEALTH_HEALTHY));
  for (int s = 0; s <= 2; ++s) {
    Report("a", 3, 10.0 * s, 0, {10.0 * s, 10.0 * s, 10.0 * s, 10.0 * s}, 0);
    clock_.Advance(absl::Seconds(1));
  }
  AgentMetricsCollector collector(registry_);
  std::vector<prometheus::MetricFamily> families = collector.Collect();
  std::map<std::string, const prometheus::MetricFamily*> by_name;
  for (const auto& f : families) by_name[f.name] = &f;
  ASSERT_TRUE(by_name.count("hostd_revision_requests_per_second"));
  const auto& rps = *by_name["hostd_revision_requests_per_second"];
  ASSERT_EQ(rps.metric.size(), 1u);
  EXPECT_NEAR(rps.metric[0].gauge.value, 10, 1e-9);
  EXPECT_EQ(rps.metric[0].label[0].value, "web");
  EXPECT_EQ(rps.metric[0].label[1].value, "3");
  // healthy, unhealthy, starting, unknown
  EXPECT_EQ(by_name["hostd_revision_tasks"]->metric.size(), 4u);  // healthy, unhealthy, starting
  EXPECT_EQ(by_name["hostd_revision_latency_seconds"]->metric.size(), 3u);
}

TEST_F(AgentRegistryTest, MissingMetricsAreCountedNotGuessed) {
  registry_.Connect(Reg("n1")).value();
  registry_.TaskChanged("n1", Task("a", 1, hosting::v1::TASK_HEALTH_HEALTHY));
  hosting::v1::MetricsReport r;
  auto* m = r.add_tasks();
  m->set_task_id("a");
  m->set_app_metrics_missing(true);
  registry_.Metrics("n1", r);
  auto agg = registry_.Aggregate("web");
  EXPECT_EQ(agg[1].metrics_missing, 1);
  EXPECT_EQ(agg[1].rps, 0);
  EXPECT_TRUE(std::isnan(agg[1].p99));
}

// A node whose agent is lost: its tasks' last health and rates are stale. Nothing reads them
// as healthy or busy; they are counted as unknown, and forgotten after a while.
TEST_F(AgentRegistryTest, ALostNodesTasksReadUnknownAndAgeOut) {
  const int64_t n1 = registry_.Connect(Reg("n1")).value();
  const int64_t n2 = registry_.Connect(Reg("n2")).value();
  registry_.TaskChanged("n1", Task("t1", 1, hosting::v1::TASK_HEALTH_HEALTHY));
  registry_.TaskChanged("n2", Task("t2", 1, hosting::v1::TASK_HEALTH_HEALTHY));
  Report("t1", 1, 0, 0, {0, 0, 0, 0}, 0);
  Report("t2", 1, 0, 0, {0, 0, 0, 0}, 0);
  clock_.Advance(absl::Seconds(5));
  registry_.Touch("n1", n1);
  Report("t1", 1, 500, 0, {500, 500, 500, 500}, 0);
  Report("t2", 1, 500, 0, {500, 500, 500, 500}, 0);
  (void)n2;
  // n2 goes silent past its heartbeats.
  clock_.Advance(absl::Seconds(2));
  registry_.Touch("n1", n1);
  registry_.Sweep();
  ASSERT_EQ(registry_.Agent("n2").state, hosting::v1::AGENT_STATE_LOST);

  RevisionMetrics a = registry_.Aggregate("web").at(1);
  EXPECT_EQ(a.healthy, 1);
  EXPECT_EQ(a.unknown, 1);
  EXPECT_EQ(a.reporting_tasks, 1);
  std::map<std::string, hosting::v1::TaskHealth> health;
  for (const auto& t : registry_.Tasks("web")) health[t.task_id()] = t.probe_health();
  EXPECT_EQ(health["t1"], hosting::v1::TASK_HEALTH_HEALTHY);
  EXPECT_EQ(health["t2"], hosting::v1::TASK_HEALTH_UNSPECIFIED);
  for (const auto& v : registry_.TaskMetrics("web", absl::Seconds(30))) {
    if (v.task_id == "t2") {
      EXPECT_EQ(v.health, hosting::v1::TASK_HEALTH_UNSPECIFIED);
      EXPECT_TRUE(std::isnan(v.rps)) << "a lost node's rate is missing data, not its last rate";
    } else {
      EXPECT_EQ(v.health, hosting::v1::TASK_HEALTH_HEALTHY);
    }
  }
  // Lost long enough: forgotten.
  clock_.Advance(absl::Minutes(5));
  registry_.Touch("n1", n1);
  registry_.Sweep();
  EXPECT_EQ(registry_.Tasks("web").size(), 1u);
  // A disconnected (not yet lost) agent's tasks are unknown at once.
  registry_.Disconnect("n1", n1);
  EXPECT_EQ(registry_.Tasks("web")[0].probe_health(), hosting::v1::TASK_HEALTH_UNSPECIFIED);
}

}  // namespace
}  // namespace hosting::controlplane
