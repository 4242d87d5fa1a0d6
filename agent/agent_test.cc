// Unit tests of the agent's parts over fakes: the Docker fake, a scripted node (FakeNodeAccess),
// a fake clock, a recording sink, and an in-process AgentGateway for the stream.
#include "agent/agent.h"

#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "agent/command_runner.h"
#include "agent/controller_stream.h"
#include "agent/prober.h"
#include "agent/reporter.h"
#include "agent/task_table.h"
#include "agent/task_watcher.h"
#include "agent/testing/fake_node_access.h"
#include "common/fake_docker_client.h"
#include "common/proto_time.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "prometheus/registry.h"

namespace hosting::agent {
namespace {

using hosting::v1::AgentMessage;
using hosting::v1::ControllerMessage;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

constexpr absl::Duration kWait = absl::Seconds(10);

// Records what the parts send.
class RecordingSink final : public MessageSink {
 public:
  void Send(const AgentMessage& msg) override {
    absl::MutexLock lock(&mu_);
    sent_.push_back(msg);
  }
  std::vector<AgentMessage> Take() {
    absl::MutexLock lock(&mu_);
    std::vector<AgentMessage> out;
    out.swap(sent_);
    return out;
  }

 private:
  absl::Mutex mu_;
  std::vector<AgentMessage> sent_ ABSL_GUARDED_BY(mu_);
};

docker::ContainerInfo TaskContainer(const std::string& id, const std::string& task,
                                    const std::string& service, int revision) {
  docker::ContainerInfo c;
  c.id = id;
  c.state = "running";
  c.labels = {{"com.docker.swarm.task.id", task},
              {"com.docker.swarm.service.name", service + "-r" + std::to_string(revision)},
              {"hosting.service", service},
              {"hosting.revision", std::to_string(revision)}};
  return c;
}

nlohmann::json Inspect(int pid, const std::string& address, const std::string& health = "") {
  nlohmann::json j = nlohmann::json::object();
  j["State"]["Pid"] = pid;
  j["NetworkSettings"]["Networks"]["ingress"]["IPAddress"] = "10.0.0.9";
  j["NetworkSettings"]["Networks"]["hosting"]["IPAddress"] = address;
  if (!health.empty()) j["State"]["Health"]["Status"] = health;
  return j;
}

hosting::v1::ProbeConfigs Probes(const std::string& service, uint32_t healthy,
                                 uint32_t unhealthy) {
  hosting::v1::ProbeConfigs configs;
  auto* p = configs.add_probes();
  p->set_service(service);
  p->set_http_path("/healthz");
  p->set_port(8080);
  *p->mutable_interval() = ToDuration(absl::Seconds(1));
  *p->mutable_timeout() = ToDuration(absl::Milliseconds(200));
  p->set_healthy_threshold(healthy);
  p->set_unhealthy_threshold(unhealthy);
  return configs;
}

class AgentPartsTest : public ::testing::Test {
 protected:
  AgentPartsTest()
      : metrics_(registry_), table_(clock_),
        watcher_(docker_, node_, table_, sink_, metrics_, clock_, absl::Seconds(10),
                 absl::Seconds(1)),
        prober_(table_, node_, sink_, metrics_, clock_),
        reporter_(table_, node_, sink_, metrics_, clock_, absl::Seconds(2), absl::Seconds(10)),
        commands_(docker_, table_, sink_) {}

  // One task container "c1" (task t1 of app revision 3, pid 101) on the node, listed.
  void OneTask() {
    docker_.AddContainer(TaskContainer("c1", "t1", "app", 3), Inspect(101, "10.1.0.5"));
    ASSERT_TRUE(watcher_.Refresh().ok());
    sink_.Take();
  }

  // OneTask, probed once and healthy (probe: /healthz, thresholds 1 and 1).
  void OneHealthyTask() {
    OneTask();
    table_.SetProbeConfigs(Probes("app", 1, 1));
    node_.SetHttp(101, "/healthz", 200);
    prober_.ScheduleDue();
    ASSERT_TRUE(prober_.ProbeNext());
    ASSERT_EQ(OnlyReport().probe_health(), hosting::v1::TASK_HEALTH_HEALTHY);
  }

  hosting::v1::TaskReport OnlyReport() {
    AgentMessage snap = table_.Snapshot();
    EXPECT_EQ(snap.snapshot().tasks_size(), 1);
    return snap.snapshot().tasks(0);
  }

  docker::FakeDockerClient docker_;
  FakeNodeAccess node_;
  FakeClock clock_;
  RecordingSink sink_;
  prometheus::Registry registry_;
  AgentMetrics metrics_;
  TaskTable table_;
  TaskWatcher watcher_;
  Prober prober_;
  Reporter reporter_;
  CommandRunner commands_;
};

TEST_F(AgentPartsTest, RefreshTracksTaskContainersAndSendsASnapshotOnlyOnChange) {
  docker_.AddContainer(TaskContainer("c1", "t1", "app", 3), Inspect(101, "10.1.0.5", "healthy"));
  ASSERT_TRUE(watcher_.Refresh().ok());
  std::vector<AgentMessage> sent = sink_.Take();
  ASSERT_EQ(sent.size(), 1u);
  ASSERT_TRUE(sent[0].has_snapshot());
  ASSERT_EQ(sent[0].snapshot().tasks_size(), 1);
  const hosting::v1::TaskReport& r = sent[0].snapshot().tasks(0);
  EXPECT_EQ(r.task_id(), "t1");
  EXPECT_EQ(r.container_id(), "c1");
  EXPECT_EQ(r.service(), "app");
  EXPECT_EQ(r.swarm_service(), "app-r3");
  EXPECT_EQ(r.revision(), 3);
  EXPECT_EQ(r.address(), "10.1.0.5");  // not the ingress address
  EXPECT_EQ(r.docker_health(), "healthy");
  EXPECT_EQ(r.probe_health(), hosting::v1::TASK_HEALTH_NONE);  // no probe configured

  // Nothing changed: nothing sent.
  ASSERT_TRUE(watcher_.Refresh().ok());
  EXPECT_THAT(sink_.Take(), IsEmpty());

  // Gone: a snapshot without it, and the node forgets its namespace.
  docker_.RemoveContainer("c1");
  ASSERT_TRUE(watcher_.Refresh().ok());
  sent = sink_.Take();
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0].snapshot().tasks_size(), 0);
  EXPECT_THAT(node_.forgotten(), ElementsAre(101));
}

TEST_F(AgentPartsTest, AnInspectAnswerWithoutStateOrNetworksIsReadAsUnknownNotACrash) {
  nlohmann::json odd = nlohmann::json::object();
  odd["State"] = nullptr;
  odd["NetworkSettings"]["Networks"] = nullptr;
  docker_.AddContainer(TaskContainer("c1", "t1", "app", 3), odd);
  ASSERT_TRUE(watcher_.Refresh().ok());
  const hosting::v1::TaskReport r = OnlyReport();
  EXPECT_EQ(r.address(), "");
  EXPECT_EQ(r.docker_health(), "none");
}

TEST_F(AgentPartsTest, RefreshFailsWhileTheEngineIsAwayAndKeepsTheTasks) {
  OneTask();
  docker_.SetUnavailable(true);
  absl::Status s = watcher_.Refresh();
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(table_.size(), 1u);
  EXPECT_THAT(sink_.Take(), IsEmpty());
}

TEST_F(AgentPartsTest, DockerHealthEventsAreReportedAtOnceAndLifecycleEventsAskForAList) {
  OneTask();
  bool dirty = false;
  watcher_.OnEvent({"container", "health_status: unhealthy", "c1", {}, 0}, &dirty);
  std::vector<AgentMessage> sent = sink_.Take();
  ASSERT_EQ(sent.size(), 1u);
  ASSERT_TRUE(sent[0].has_task());
  EXPECT_EQ(sent[0].task().docker_health(), "unhealthy");
  EXPECT_FALSE(dirty);
  watcher_.OnEvent({"container", "health_status: healthy", "other", {}, 0}, &dirty);
  EXPECT_THAT(sink_.Take(), IsEmpty());  // not a task of this table
  watcher_.OnEvent({"container", "die", "c1", {}, 0}, &dirty);
  EXPECT_TRUE(dirty);
}

TEST_F(AgentPartsTest, ProbesCountAgainstThresholdsAndReportOnlyTransitions) {
  OneTask();
  table_.SetProbeConfigs(Probes("app", /*healthy=*/2, /*unhealthy=*/3));
  EXPECT_EQ(OnlyReport().probe_health(), hosting::v1::TASK_HEALTH_STARTING);
  node_.SetHttp(101, "/healthz", 200);

  prober_.ScheduleDue();
  ASSERT_TRUE(prober_.ProbeNext());
  EXPECT_THAT(node_.requests(), ElementsAre("101:8080/healthz"));
  EXPECT_THAT(sink_.Take(), IsEmpty());  // one success of two: still starting

  // Still starting: due again at the start-up cadence, not one interval later.
  prober_.ScheduleDue();
  EXPECT_FALSE(prober_.ProbeNext());
  clock_.Advance(kStartupProbeInterval);
  prober_.ScheduleDue();
  ASSERT_TRUE(prober_.ProbeNext());
  std::vector<AgentMessage> sent = sink_.Take();
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0].task().probe_health(), hosting::v1::TASK_HEALTH_HEALTHY);

  // Healthy: the service's own interval from now on.
  clock_.Advance(kStartupProbeInterval);
  prober_.ScheduleDue();
  EXPECT_FALSE(prober_.ProbeNext());
  clock_.Advance(absl::Seconds(1) - kStartupProbeInterval);
  prober_.ScheduleDue();
  ASSERT_TRUE(prober_.ProbeNext());
  EXPECT_THAT(sink_.Take(), IsEmpty());

  // Three failures in a row make it unhealthy, with the reason; the first two say nothing.
  node_.SetHttp(101, "/healthz", 503);
  for (int i = 0; i < 3; ++i) {
    clock_.Advance(absl::Seconds(1));
    prober_.ScheduleDue();
    ASSERT_TRUE(prober_.ProbeNext());
    if (i < 2) {
      EXPECT_THAT(sink_.Take(), IsEmpty()) << "failure " << i + 1;
    }
  }
  sent = sink_.Take();
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0].task().probe_health(), hosting::v1::TASK_HEALTH_UNHEALTHY);
  EXPECT_EQ(sent[0].task().last_probe_error(), "HTTP 503");
}

// A task that has never passed and *answers* with a failure (not 503 or 429, which say "not
// yet") is unhealthy on that first answer: a version whose health never passes is known at once.
TEST_F(AgentPartsTest, ANewTaskAnsweringAFailureIsUnhealthyOnItsFirstAnswer) {
  OneTask();
  table_.SetProbeConfigs(Probes("app", 1, 3));
  node_.SetHttp(101, "/healthz", 500);
  prober_.ScheduleDue();
  ASSERT_TRUE(prober_.ProbeNext());
  std::vector<AgentMessage> sent = sink_.Take();
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0].task().probe_health(), hosting::v1::TASK_HEALTH_UNHEALTHY);
  EXPECT_EQ(sent[0].task().last_probe_error(),
            "HTTP 500 from a task that has never passed its probe");
}

// While it starts, "not yet" (no answer, 503) comes every start-up probe but counts once an
// interval: three in a row take three intervals, as the threshold means, not 600 ms.
TEST_F(AgentPartsTest, AStartingTaskCountsNotYetOnceAnInterval) {
  OneTask();
  table_.SetProbeConfigs(Probes("app", 1, 3));
  node_.SetHttp(101, "/healthz", 503);
  int probes = 0;
  for (absl::Duration t = absl::ZeroDuration(); t < absl::Seconds(2);
       t += kStartupProbeInterval) {
    prober_.ScheduleDue();
    if (prober_.ProbeNext()) ++probes;
    clock_.Advance(kStartupProbeInterval);
  }
  EXPECT_EQ(probes, 10);
  EXPECT_EQ(OnlyReport().probe_health(), hosting::v1::TASK_HEALTH_STARTING);  // 2 counted
  prober_.ScheduleDue();
  ASSERT_TRUE(prober_.ProbeNext());  // the third interval
  EXPECT_EQ(OnlyReport().probe_health(), hosting::v1::TASK_HEALTH_UNHEALTHY);
  EXPECT_EQ(OnlyReport().last_probe_error(), "HTTP 503");
}

// A task that was healthy counts every failure against the threshold, whatever it answers.
TEST_F(AgentPartsTest, AHealthyTaskAnsweringAFailureNeedsTheThreshold) {
  OneTask();
  table_.SetProbeConfigs(Probes("app", 1, 2));
  node_.SetHttp(101, "/healthz", 200);
  prober_.ScheduleDue();
  ASSERT_TRUE(prober_.ProbeNext());
  node_.SetHttp(101, "/healthz", 500);
  clock_.Advance(absl::Seconds(1));
  prober_.ScheduleDue();
  ASSERT_TRUE(prober_.ProbeNext());
  EXPECT_EQ(OnlyReport().probe_health(), hosting::v1::TASK_HEALTH_HEALTHY);
  clock_.Advance(absl::Seconds(1));
  prober_.ScheduleDue();
  ASSERT_TRUE(prober_.ProbeNext());
  EXPECT_EQ(OnlyReport().probe_health(), hosting::v1::TASK_HEALTH_UNHEALTHY);
}

// A task whose process is gone (its container exited, or Swarm is replacing it) was not asked
// anything: no failure is counted against it (three such "failures" once rolled a canary back).
TEST_F(AgentPartsTest, AProbeOfAGoneProcessIsNoVerdict) {
  OneHealthyTask();
  if (HasFatalFailure()) return;
  sink_.Take();
  node_.SetGone(101);
  for (int i = 0; i < 3; ++i) {
    clock_.Advance(absl::Seconds(1));
    prober_.ScheduleDue();
    ASSERT_TRUE(prober_.ProbeNext());
  }
  EXPECT_EQ(OnlyReport().probe_health(), hosting::v1::TASK_HEALTH_HEALTHY);
  EXPECT_THAT(sink_.Take(), IsEmpty());
}

TEST_F(AgentPartsTest, NoProbeWithoutAConfigOrAfterItIsWithdrawn) {
  OneTask();
  prober_.ScheduleDue();
  EXPECT_FALSE(prober_.ProbeNext());
  table_.SetProbeConfigs(Probes("app", 1, 1));
  prober_.ScheduleDue();
  table_.SetProbeConfigs({});  // withdrawn between scheduling and probing
  EXPECT_TRUE(prober_.ProbeNext());
  EXPECT_THAT(node_.requests(), IsEmpty());
  EXPECT_EQ(OnlyReport().probe_health(), hosting::v1::TASK_HEALTH_NONE);
}

// hostd sends the whole set again and again (every 30 s, and on each change elsewhere): a set
// that does not change a task's probe leaves its health and cadence alone.
TEST_F(AgentPartsTest, TheSameProbeSettingsAgainChangeNothing) {
  OneHealthyTask();
  if (HasFatalFailure()) return;
  hosting::v1::ProbeConfigs again = Probes("app", 1, 1);
  auto* other = again.add_probes();  // another service's probe joins the set
  other->set_service("api");
  other->set_http_path("/ok");
  table_.SetProbeConfigs(again);
  EXPECT_EQ(OnlyReport().probe_health(), hosting::v1::TASK_HEALTH_HEALTHY);
  prober_.ScheduleDue();
  EXPECT_FALSE(prober_.ProbeNext()) << "not probed again before its interval";
}

// A release that changes the check: each revision is probed with its own path.
TEST_F(AgentPartsTest, ATaskIsProbedWithItsRevisionsSettings) {
  OneTask();  // app revision 3
  hosting::v1::ProbeConfigs configs = Probes("app", 1, 1);
  configs.mutable_probes(0)->set_revision(2);
  auto* r3 = configs.add_probes();
  *r3 = configs.probes(0);
  r3->set_revision(3);
  r3->set_http_path("/v3/healthz");
  table_.SetProbeConfigs(configs);
  node_.SetHttp(101, "/v3/healthz", 200);
  prober_.ScheduleDue();
  ASSERT_TRUE(prober_.ProbeNext());
  EXPECT_THAT(node_.requests(), ElementsAre("101:8080/v3/healthz"));
  EXPECT_EQ(OnlyReport().probe_health(), hosting::v1::TASK_HEALTH_HEALTHY);
}

// A release's pre-pull asks only for what the node lacks: an image built or loaded on the
// node, with no registry to come from, is not pulled (the pull would fail at Docker Hub).
TEST_F(AgentPartsTest, APullIfMissingLeavesAPresentImageAndNamesAMissingRegistry) {
  docker_.AddImage("hosting/sample:v2");
  hosting::v1::Command pull;
  pull.set_command_id("p1");
  pull.mutable_pull_image()->set_image("hosting/sample:v2");
  pull.mutable_pull_image()->set_if_missing(true);
  hosting::v1::CommandResult r = commands_.Execute(pull);
  EXPECT_TRUE(r.ok()) << r.error();
  EXPECT_THAT(r.output(), HasSubstr("present"));
  EXPECT_THAT(docker_.actions(), IsEmpty());

  docker_.SetPullError("pull access denied");
  pull.mutable_pull_image()->set_image("hosting/other:v1");
  r = commands_.Execute(pull);
  EXPECT_FALSE(r.ok());
  EXPECT_THAT(r.error(), HasSubstr("names no registry"));
  pull.mutable_pull_image()->set_image("registry.example:5000/app:1");
  r = commands_.Execute(pull);
  EXPECT_FALSE(r.ok());
  EXPECT_THAT(r.error(), ::testing::Not(HasSubstr("names no registry")));
  EXPECT_TRUE(CommandRunner::NamesRegistry("localhost/app:1"));
  EXPECT_FALSE(CommandRunner::NamesRegistry("library/app:1"));
  EXPECT_FALSE(CommandRunner::NamesRegistry("app"));
}

TEST(NodeAccessTest, MemAvailableIsReadFromMeminfoAndAnOddFileIsAnError) {
  const std::string path = ::testing::TempDir() + "/meminfo";
  std::ofstream(path) << "MemTotal:       24576000 kB\nMemFree:  100 kB\n"
                         "MemAvailable:   20480000 kB\nBuffers: 1 kB\n";
  absl::StatusOr<int64_t> available = ReadMemAvailable(path);
  ASSERT_TRUE(available.ok()) << available.status();
  EXPECT_EQ(*available, int64_t{20480000} * 1024);
  std::ofstream(path) << "MemTotal: 1 kB\n";
  EXPECT_THAT(ReadMemAvailable(path).status().message(), HasSubstr("no MemAvailable"));
  EXPECT_FALSE(ReadMemAvailable(path + ".absent").ok());
  EXPECT_TRUE(ReadMemAvailable().ok());  // this machine's
}

TEST_F(AgentPartsTest, ReportCarriesCgroupAndApplicationMetrics) {
  OneTask();
  table_.SetProbeConfigs(Probes("app", 1, 1));
  node_.SetCgroup(101, CgroupStats{5'000'000, 64 << 20, 256 << 20});
  node_.SetHttp(101, "/metrics", 200,
                "http_requests_total{status=\"200\"} 90\n"
                "http_requests_total{status=\"503\"} 10\n"
                "http_requests_in_flight 4\n"
                "http_request_duration_seconds_bucket{le=\"0.1\"} 80\n"
                "http_request_duration_seconds_bucket{le=\"+Inf\"} 100\n");
  AgentMessage msg = reporter_.Collect();
  EXPECT_EQ(msg.metrics().node_memory_available_bytes(), 0);  // unreadable: unknown
  node_.SetMemoryAvailable(int64_t{3} << 30);
  msg = reporter_.Collect();
  EXPECT_EQ(msg.metrics().node_memory_available_bytes(), int64_t{3} << 30);
  ASSERT_EQ(msg.metrics().tasks_size(), 1);
  const hosting::v1::TaskMetrics& m = msg.metrics().tasks(0);
  EXPECT_EQ(m.task_id(), "t1");
  EXPECT_EQ(m.revision(), 3);
  EXPECT_EQ(m.cpu_usage_ns(), 5'000'000u);
  EXPECT_EQ(m.memory_bytes(), 64 << 20);
  EXPECT_EQ(m.memory_limit_bytes(), 256 << 20);
  // The same readings as the node's Prometheus series.
  std::vector<prometheus::MetricFamily> families = metrics_.task_resources->Collect();
  ASSERT_EQ(families.size(), 3u);
  EXPECT_EQ(families[0].name, "hostagent_task_cpu_seconds_total");
  ASSERT_EQ(families[0].metric.size(), 1u);
  EXPECT_DOUBLE_EQ(families[0].metric[0].counter.value, 0.005);
  EXPECT_EQ(families[0].metric[0].label[2].value, "t1");
  EXPECT_DOUBLE_EQ(families[1].metric[0].gauge.value, 64 << 20);
  EXPECT_DOUBLE_EQ(families[2].metric[0].gauge.value, 256 << 20);
  EXPECT_FALSE(m.app_metrics_missing());
  EXPECT_EQ(m.requests_total(), 100);
  EXPECT_EQ(m.errors_total(), 10);
  EXPECT_EQ(m.in_flight(), 4);
  EXPECT_THAT(m.latency_bucket_counts(), ElementsAre(80, 100));
  EXPECT_EQ(FromTimestamp(m.scraped_at()), clock_.Now());
}

TEST_F(AgentPartsTest, AHealthyTaskWithoutMetricsIsAskedAgainOnlyAfterAPause) {
  OneTask();
  table_.SetProbeConfigs(Probes("app", 1, 1));
  node_.SetHttp(101, "/healthz", 200);
  prober_.ScheduleDue();
  ASSERT_TRUE(prober_.ProbeNext());  // healthy now
  // No /metrics answer.
  EXPECT_TRUE(reporter_.Collect().metrics().tasks(0).app_metrics_missing());
  const size_t asked = node_.requests().size();
  reporter_.Collect();
  EXPECT_EQ(node_.requests().size(), asked);  // not asked within the pause
  clock_.Advance(absl::Seconds(11));
  reporter_.Collect();
  EXPECT_EQ(node_.requests().size(), asked + 1);
}

TEST_F(AgentPartsTest, AStartingTaskWithoutMetricsIsAskedAtEveryReport) {
  OneTask();
  table_.SetProbeConfigs(Probes("app", 1, 1));  // starting: not probed yet
  reporter_.Collect();
  reporter_.Collect();
  EXPECT_THAT(node_.requests(), ElementsAre("101:8080/metrics", "101:8080/metrics"));
}

// While a release analyses a canary, hostd asks for faster reports for a while: bounded on
// both sides, and back to the agent's own pace once the request runs out.
TEST_F(AgentPartsTest, HostdMayAskForFasterReportsForAWhile) {
  EXPECT_EQ(reporter_.Interval(), absl::Seconds(2));
  reporter_.RequestInterval(absl::Milliseconds(250), clock_.Now() + absl::Seconds(3));
  EXPECT_EQ(reporter_.Interval(), absl::Milliseconds(250));
  reporter_.RequestInterval(absl::Milliseconds(1), clock_.Now() + absl::Seconds(3));
  EXPECT_EQ(reporter_.Interval(), Reporter::kMinReportInterval);
  clock_.Advance(absl::Seconds(3));
  EXPECT_EQ(reporter_.Interval(), absl::Seconds(2)) << "the request ran out";
  reporter_.RequestInterval(absl::Seconds(30), clock_.Now() + absl::Seconds(3));
  EXPECT_EQ(reporter_.Interval(), absl::Seconds(2)) << "never slower than its own pace";
}

TEST_F(AgentPartsTest, CommandsActOnThisNodesContainersAndNameWhatIsMissing) {
  OneTask();
  hosting::v1::Command restart;
  restart.set_command_id("k1");
  restart.mutable_restart_task()->set_task_id("t1");
  hosting::v1::CommandResult r = commands_.Execute(restart);
  EXPECT_TRUE(r.ok()) << r.error();
  EXPECT_EQ(r.command_id(), "k1");

  hosting::v1::Command logs;
  logs.set_command_id("k2");
  logs.mutable_task_logs()->set_task_id("t1");
  r = commands_.Execute(logs);
  EXPECT_TRUE(r.ok());
  EXPECT_EQ(r.output(), "logs of c1\n");

  hosting::v1::Command missing;
  missing.set_command_id("k3");
  missing.mutable_restart_task()->set_task_id("t9");
  r = commands_.Execute(missing);
  EXPECT_FALSE(r.ok());
  EXPECT_THAT(r.error(), HasSubstr("task t9 has no container on this node"));

  hosting::v1::Command pull;
  pull.set_command_id("k4");
  pull.mutable_pull_image()->set_image("app:2");
  EXPECT_TRUE(commands_.Execute(pull).ok());

  hosting::v1::Command empty;
  empty.set_command_id("k5");
  r = commands_.Execute(empty);
  EXPECT_FALSE(r.ok());
  EXPECT_THAT(r.error(), HasSubstr("k5"));
  EXPECT_THAT(docker_.actions(), ElementsAre("restart c1", "pull app:2"));
}

TEST_F(AgentPartsTest, QueuedCommandsRunOffTheCallersThreadAndSendTheirResults) {
  OneTask();
  absl::Notification stop;
  std::thread runner([&] { commands_.Run(stop); });
  hosting::v1::Command restart;
  restart.set_command_id("k1");
  restart.mutable_restart_task()->set_task_id("t1");
  commands_.Enqueue(restart);
  std::vector<AgentMessage> sent;
  const absl::Time deadline = absl::Now() + kWait;
  while (sent.empty() && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(5));
    sent = sink_.Take();
  }
  stop.Notify();
  runner.join();
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0].result().command_id(), "k1");
  EXPECT_TRUE(sent[0].result().ok());
}

// An in-process AgentGateway: records what agents send, pushes what a test says.
class FakeGateway final : public hosting::v1::AgentGateway::Service {
 public:
  grpc::Status Connect(
      grpc::ServerContext* ctx,
      grpc::ServerReaderWriter<ControllerMessage, AgentMessage>* stream) override {
    AgentMessage in;
    if (!stream->Read(&in) || !in.has_register_()) {
      return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, "register first");
    }
    {
      absl::MutexLock lock(&mu_);
      if (!refusal_.empty()) {
        ++refusals_;
        return grpc::Status(grpc::StatusCode::UNAVAILABLE, refusal_);
      }
    }
    ControllerMessage registered;
    *registered.mutable_registered()->mutable_heartbeat_interval() =
        ToDuration(absl::Milliseconds(100));
    stream->Write(registered);
    {
      absl::MutexLock lock(&mu_);
      received_.push_back(in);
      ++connects_;
      stream_ = stream;
      ctx_ = ctx;
    }
    while (stream->Read(&in)) {
      absl::MutexLock lock(&mu_);
      received_.push_back(in);
    }
    absl::MutexLock lock(&mu_);
    stream_ = nullptr;
    ctx_ = nullptr;
    return grpc::Status::OK;
  }

  // As a standby: end every stream at Register with UNAVAILABLE and `message` ("" accepts).
  void Refuse(std::string message) {
    absl::MutexLock lock(&mu_);
    refusal_ = std::move(message);
  }
  int refusals() {
    absl::MutexLock lock(&mu_);
    return refusals_;
  }

  bool Push(const ControllerMessage& msg) {
    absl::MutexLock lock(&mu_);
    return stream_ != nullptr && stream_->Write(msg);
  }
  void Drop() {
    absl::MutexLock lock(&mu_);
    if (ctx_ != nullptr) ctx_->TryCancel();
  }
  // Waits until some received message satisfies `pred`; false after kWait.
  bool WaitFor(const std::function<bool(const AgentMessage&)>& pred) {
    absl::MutexLock lock(&mu_);
    auto found = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      for (const auto& m : received_) {
        if (pred(m)) return true;
      }
      return false;
    };
    return mu_.AwaitWithTimeout(absl::Condition(&found), kWait);
  }
  bool WaitForConnects(int n) {
    absl::MutexLock lock(&mu_);
    auto done = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return connects_ >= n && stream_ != nullptr;
    };
    return mu_.AwaitWithTimeout(absl::Condition(&done), kWait);
  }

 private:
  absl::Mutex mu_;
  std::vector<AgentMessage> received_ ABSL_GUARDED_BY(mu_);
  int connects_ ABSL_GUARDED_BY(mu_) = 0;
  std::string refusal_ ABSL_GUARDED_BY(mu_);
  int refusals_ ABSL_GUARDED_BY(mu_) = 0;
  grpc::ServerReaderWriter<ControllerMessage, AgentMessage>* stream_ ABSL_GUARDED_BY(mu_) =
      nullptr;
  grpc::ServerContext* ctx_ ABSL_GUARDED_BY(mu_) = nullptr;
};

class AgentStreamTest : public ::testing::Test {
 protected:
  void SetUp() override {
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    builder.RegisterService(&gateway_);
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    address_ = "127.0.0.1:" + std::to_string(port);
  }
  void TearDown() override { server_->Shutdown(absl::ToChronoTime(absl::Now() + kWait)); }

  FakeGateway gateway_;
  std::unique_ptr<grpc::Server> server_;
  std::string address_;
};

TEST_F(AgentStreamTest, RegistersHandsOnProbesAndCommandsAndReconnectsWhenDropped) {
  prometheus::Registry registry;
  AgentMetrics metrics(registry);
  absl::Mutex mu;
  int connected = 0;
  std::vector<std::string> got;
  ControllerStream::Handlers handlers;
  handlers.on_connected = [&] {
    absl::MutexLock lock(&mu);
    ++connected;
  };
  handlers.on_probes = [&](const hosting::v1::ProbeConfigs& p) {
    absl::MutexLock lock(&mu);
    got.push_back("probes " + p.probes(0).service());
  };
  handlers.on_command = [&](const hosting::v1::Command& c) {
    absl::MutexLock lock(&mu);
    got.push_back("command " + c.command_id());
  };
  NodeIdentity identity{"node-a", "host-a", 2, 1 << 30, {{"zone", "z1"}}};
  ControllerStream stream({address_}, identity, absl::Seconds(1),
                          metrics, Clock::Real(), handlers);
  absl::Notification stop;
  std::thread run([&] { stream.Run(stop); });
  std::thread beats([&] { stream.RunHeartbeats(stop); });

  ASSERT_TRUE(gateway_.WaitForConnects(1));
  EXPECT_TRUE(gateway_.WaitFor([](const AgentMessage& m) {
    return m.has_register_() && m.register_().node_id() == "node-a" &&
           m.register_().labels().at("zone") == "z1";
  }));
  // The heartbeat follows the interval hostd set (100 ms), not the 2 s default.
  EXPECT_TRUE(gateway_.WaitFor([](const AgentMessage& m) { return m.has_heartbeat(); }));

  ControllerMessage probes;
  *probes.mutable_probes() = Probes("app", 1, 1);
  ASSERT_TRUE(gateway_.Push(probes));
  ControllerMessage command;
  command.mutable_command()->set_command_id("k1");
  ASSERT_TRUE(gateway_.Push(command));
  AgentMessage report;
  report.mutable_task()->set_task_id("t1");
  // Send works while connected.
  absl::Time deadline = absl::Now() + kWait;
  while (!stream.connected() && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(5));
  stream.Send(report);
  EXPECT_TRUE(gateway_.WaitFor(
      [](const AgentMessage& m) { return m.has_task() && m.task().task_id() == "t1"; }));
  {
    absl::MutexLock lock(&mu);
    auto both = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) { return got.size() >= 2; };
    ASSERT_TRUE(mu.AwaitWithTimeout(absl::Condition(&both), kWait));
    EXPECT_THAT(got, ElementsAre("probes app", "command k1"));
  }

  // hostd drops the stream: the agent registers again.
  gateway_.Drop();
  ASSERT_TRUE(gateway_.WaitForConnects(2));
  {
    absl::MutexLock lock(&mu);
    auto twice = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) { return connected >= 2; };
    EXPECT_TRUE(mu.AwaitWithTimeout(absl::Condition(&twice), kWait));
  }
  stop.Notify();
  stream.Cancel();
  run.join();
  beats.join();
  EXPECT_FALSE(stream.connected());
}

TEST(ControllerStreamTest, ReadsTheLeaderOutOfAStandbysRefusal) {
  EXPECT_EQ(ControllerStream::LeaderNamedIn(
                "hostd 10.0.0.2:50051 is a standby; the leader is 10.0.0.1:50051: send it there"),
            "10.0.0.1:50051");
  EXPECT_EQ(ControllerStream::LeaderNamedIn("... the leader is [fd00::1]:7000"), "[fd00::1]:7000");
  EXPECT_EQ(ControllerStream::LeaderNamedIn("hostd a:1 is not the leader and knows of none"), "");
  EXPECT_EQ(ControllerStream::LeaderNamedIn("the leader is nohost"), "");
}

// Two hostd (a standby and the leader) and one dead address: the stream passes over the dead
// one, is refused by the standby, goes to the leader it names, and moves when leadership does.
TEST_F(AgentStreamTest, FollowsTheLeaderAcrossSeveralAddresses) {
  FakeGateway other;
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&other);
  std::unique_ptr<grpc::Server> other_server = builder.BuildAndStart();
  ASSERT_NE(other_server, nullptr);
  const std::string standby = "127.0.0.1:" + std::to_string(port);
  const std::string dead = "127.0.0.1:1";
  other.Refuse("hostd " + standby + " is a standby; the leader is " + address_ +
               ": send it there");

  prometheus::Registry registry;
  AgentMetrics metrics(registry);
  ControllerStream::Handlers handlers;
  handlers.on_connected = [] {};
  handlers.on_probes = [](const hosting::v1::ProbeConfigs&) {};
  handlers.on_command = [](const hosting::v1::Command&) {};
  ControllerStream stream({dead, standby, address_}, NodeIdentity{"node-a", "host-a", 1, 1, {}},
                          absl::Milliseconds(200), metrics, Clock::Real(), handlers,
                          absl::Milliseconds(300));
  absl::Notification stop;
  std::thread run([&] { stream.Run(stop); });

  ASSERT_TRUE(gateway_.WaitForConnects(1));
  EXPECT_EQ(other.refusals(), 1);
  EXPECT_EQ(stream.controller(), address_);

  // Leadership moves: the old leader refuses and drops the stream, the other accepts.
  gateway_.Refuse("hostd " + address_ + " is a standby; the leader is " + standby +
                  ": send it there");
  other.Refuse("");
  gateway_.Drop();
  ASSERT_TRUE(other.WaitForConnects(1));
  EXPECT_EQ(stream.controller(), standby);

  stop.Notify();
  stream.Cancel();
  run.join();
  other_server->Shutdown(absl::ToChronoTime(absl::Now() + kWait));
}

TEST_F(AgentStreamTest, TheWholeAgentReportsItsTasksAndTheirProbedHealth) {
  docker::FakeDockerClient docker;
  FakeNodeAccess node;
  docker.AddContainer(TaskContainer("c1", "t1", "app", 3), Inspect(101, "10.1.0.5"));
  node.SetHttp(101, "/healthz", 200);
  AgentOptions options;
  options.controller = address_;
  options.metrics_listen = "";
  options.report_interval = absl::Milliseconds(100);
  Agent agent(options, docker, node);
  ASSERT_TRUE(agent.Init().ok());
  EXPECT_EQ(agent.node_id(), "node1");  // from the engine's Swarm identity
  agent.Start();
  ASSERT_TRUE(gateway_.WaitForConnects(1));
  EXPECT_TRUE(gateway_.WaitFor([](const AgentMessage& m) {
    return m.has_snapshot() && m.snapshot().tasks_size() == 1 &&
           m.snapshot().tasks(0).task_id() == "t1";
  }));
  ControllerMessage probes;
  *probes.mutable_probes() = Probes("app", 1, 1);
  ASSERT_TRUE(gateway_.Push(probes));
  EXPECT_TRUE(gateway_.WaitFor([](const AgentMessage& m) {
    return m.has_task() && m.task().probe_health() == hosting::v1::TASK_HEALTH_HEALTHY;
  }));
  EXPECT_TRUE(gateway_.WaitFor([](const AgentMessage& m) {
    return m.has_metrics() && m.metrics().tasks_size() == 1;
  }));
  // A new task container appears: the watcher's next list (on its start event) reports it.
  docker.AddContainer(TaskContainer("c2", "t2", "app", 3), Inspect(102, "10.1.0.6"));
  docker.PushEvent({"container", "start", "c2", {}, 0});
  EXPECT_TRUE(gateway_.WaitFor(
      [](const AgentMessage& m) { return m.has_snapshot() && m.snapshot().tasks_size() == 2; }));
  agent.Stop();
}

TEST(AgentInitTest, InitFailsWhileTheEngineIsAway) {
  docker::FakeDockerClient docker;
  docker.SetUnavailable(true);
  FakeNodeAccess node;
  AgentOptions options;
  options.metrics_listen = "";
  Agent agent(options, docker, node);
  EXPECT_EQ(agent.Init().code(), absl::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace hosting::agent
