// The fault suite: the hosted service keeps serving whatever the control plane does. A real
// dockerd and Swarm, hostd on a real PostgreSQL (through a proxy that can slow it down),
// HAProxy from the platform's image with an HTTP-checked backend, a real hostagent, and a
// 3-task service under load from 127.0.0.1 through HAProxy. Each case breaks one part of the
// control plane and asserts, from the load generator's own count, that no request failed and
// (where the part does not touch the tasks) that HAProxy never had fewer servers.
#include <algorithm>
#include <csignal>
#include <optional>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "hosting/v1/cluster.grpc.pb.h"
#include "hosting/v1/releases.grpc.pb.h"
#include "hosting/v1/service.grpc.pb.h"
#include "tests/integration/delay_proxy.h"
#include "tests/integration/harness.h"

namespace hosting::testing {
namespace {

constexpr char kService[] = "it-fault";
constexpr int kTasks = 3;
constexpr int kLoadClients = 4;

// Samples HAProxy's ready servers of the service every 100 ms while it lives; the lowest seen.
class CapacityWatch {
 public:
  explicit CapacityWatch(std::string socket) : socket_(std::move(socket)) {
    thread_ = std::thread([this] {
      while (!stop_) {
        const int n = HaproxyReadyServers(socket_, kService);
        if (n >= 0) {
          int prev = min_.load();
          while (n < prev && !min_.compare_exchange_weak(prev, n)) {
          }
        }
        absl::SleepFor(absl::Milliseconds(100));
      }
    });
  }
  ~CapacityWatch() { Stop(); }
  void Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  int min() const { return min_; }

 private:
  std::string socket_;
  std::atomic<bool> stop_{false};
  std::atomic<int> min_{1 << 20};
  std::thread thread_;
};

class FaultTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    ASSERT_TRUE(CheckDockerSwarm().ok()) << CheckDockerSwarm();
    ASSERT_EQ(RemoveSwarmServicesOf(kService), absl::OkStatus());
    dir_ = new std::string(MakeTempDir("hosting-fault-"));
    ds_ = new Datastores();
    absl::Status st = ds_->Start();
    ASSERT_TRUE(st.ok()) << st;
    ds_->Sql("CREATE DATABASE fault", false, "postgres");
    proxy_ = new DelayProxy(ds_->pg_port());
    ASSERT_TRUE(proxy_->Start().ok());
    // The backend checks the service's health path itself (the platform's convention).
    haproxy_ = new HaproxyContainer(
        *dir_, {{kService, "  option httpchk\n  http-check send meth GET uri /health\n"}});
    st = haproxy_->Start();
    ASSERT_TRUE(st.ok()) << st;
    hostd_address_ = new std::string(absl::StrCat("127.0.0.1:", FreePort()));
    StartHostd();
    agent_ = new AgentProcess(*hostd_address_, *dir_ + "/agent.log");
    ASSERT_TRUE(agent_->Start().ok());

    auto stub = hosting::v1::ServiceManager::NewStub(hostd_->channel());
    hosting::v1::ApplyServiceRequest req;
    auto* spec = req.mutable_spec();
    spec->set_name(kService);
    spec->set_image("hosting/sample:v1");
    spec->set_replicas(kTasks);
    spec->mutable_health()->set_http_path("/health");
    spec->mutable_health()->set_port(8080);
    spec->mutable_health()->mutable_interval()->set_seconds(1);
    spec->mutable_health()->set_unhealthy_threshold(2);
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    hosting::v1::ApplyServiceResponse resp;
    grpc::Status applied = stub->ApplyService(&ctx, req, &resp);
    ASSERT_TRUE(applied.ok()) << applied.error_message();
  }

  static void TearDownTestSuite() {
    delete agent_;
    agent_ = nullptr;
    delete hostd_;
    hostd_ = nullptr;
    EXPECT_EQ(RemoveSwarmServicesOf(kService), absl::OkStatus());
    delete haproxy_;
    delete proxy_;
    delete ds_;
    delete hostd_address_;
    delete dir_;
  }

  // hostd on the proxied store, at the same address every time (the agent knows it).
  static void StartHostd() {
    delete hostd_;
    hostd_ = new HostdProcess(
        *dir_ + "/hostd",
        {absl::StrCat("--store=postgresql://postgres@127.0.0.1:", proxy_->port(),
                      "/fault?connect_timeout=2"),
         "--haproxy=" + haproxy_->socket(), "--resync-interval=5s"},
        *hostd_address_);
    absl::Status st = hostd_->Start();
    ASSERT_TRUE(st.ok()) << st;
  }

  void SetUp() override {
    ASSERT_NE(hostd_, nullptr);
    // Every case starts from the whole service in HAProxy, probed healthy.
    absl::Status st = WaitFor(
        [] { return HaproxyReadyServers(haproxy_->socket(), kService) == kTasks && Healthy() == kTasks; },
        absl::Seconds(120), "three healthy tasks in HAProxy");
    ASSERT_TRUE(st.ok()) << st << "; HAProxy has "
                         << HaproxyReadyServers(haproxy_->socket(), kService);
  }

  static int Healthy() { return HealthyTasks(hostd_->channel(), kService); }

  static hosting::v1::AgentState AgentState() {
    auto stub = hosting::v1::Cluster::NewStub(hostd_->channel());
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    hosting::v1::ListNodesResponse resp;
    if (!stub->ListNodes(&ctx, {}, &resp).ok() || resp.nodes().empty()) {
      return hosting::v1::AGENT_STATE_UNSPECIFIED;
    }
    return resp.nodes(0).agent_state();
  }

  static double Metric(const std::string& series) {
    return MetricValue(Http("GET", "http://" + hostd_->metrics_address() + "/metrics").body,
                       series);
  }

  std::unique_ptr<HttpLoad> Load() {
    auto load = std::make_unique<HttpLoad>(haproxy_->url(kService, "/health"), kLoadClients, 200);
    EXPECT_TRUE(WaitFor([&] { return load->ok() > 50; }, absl::Seconds(20), "load flowing").ok())
        << load->first_error();
    return load;
  }

  // Lets the load run on a little, stops it and checks its count. `killed`: when a task was
  // killed with SIGKILL. A response the task was writing at that instant is cut (HAProxy logs
  // it "SD": the server aborted during the data phase), and no proxy can retry a request whose
  // response has begun; so failures are allowed only there: completed within 2 s of the kill,
  // at most one per load client. Every request sent after it must succeed.
  static void Finish(HttpLoad& load, const char* what,
                     std::optional<absl::Time> killed = std::nullopt) {
    const int64_t before = load.total();
    EXPECT_TRUE(WaitFor([&] { return load.total() > before + 200; }, absl::Seconds(20),
                        "load after the fault")
                    .ok());
    load.Stop();
    int64_t cut = 0;
    if (killed.has_value()) {
      cut = std::min<int64_t>(kLoadClients,
                              load.FailedBetween(*killed, *killed + absl::Seconds(2)));
    }
    EXPECT_EQ(load.failed() - cut, 0) << what << ": " << load.first_error() << "\nHAProxy's log:\n"
                                      << haproxy_->Logs();
    std::printf("[ measure ] %s: %lld requests, %lld failed (%lld cut by the kill)\n", what,
                static_cast<long long>(load.total()), static_cast<long long>(load.failed()),
                static_cast<long long>(cut));
  }

  static std::string* dir_;
  static std::string* hostd_address_;
  static Datastores* ds_;
  static DelayProxy* proxy_;
  static HaproxyContainer* haproxy_;
  static HostdProcess* hostd_;
  static AgentProcess* agent_;
};

std::string* FaultTest::dir_ = nullptr;
std::string* FaultTest::hostd_address_ = nullptr;
Datastores* FaultTest::ds_ = nullptr;
DelayProxy* FaultTest::proxy_ = nullptr;
HaproxyContainer* FaultTest::haproxy_ = nullptr;
HostdProcess* FaultTest::hostd_ = nullptr;
AgentProcess* FaultTest::agent_ = nullptr;

// With hostd gone, a task that dies leaves HAProxy by HAProxy's own check; the requests sent
// to it meanwhile are retried on the others (only the responses it was writing when it died
// are lost). The restarted hostd adopts HAProxy's servers.
TEST_F(FaultTest, HostdKilledAndATaskKilledWhileItIsDown) {
  std::unique_ptr<HttpLoad> load = Load();
  hostd_->Stop(SIGKILL);
  CommandResult victim = Shell(absl::StrCat("docker ps -q --filter label=com.docker.swarm.service.name=",
                                            kService, "-r1 | head -1"));
  ASSERT_EQ(victim.exit_code, 0);
  ASSERT_FALSE(victim.output.empty());
  const absl::Time killed = absl::Now();
  ASSERT_EQ(Shell("docker kill " + victim.output).exit_code, 0);
  // Down with no control plane: HAProxy's check takes it out (fall 2 at 1 s).
  absl::Status st = WaitFor(
      [] { return HaproxyReadyServers(haproxy_->socket(), kService) == kTasks - 1; },
      absl::Seconds(10), "HAProxy to take the dead task out by itself");
  EXPECT_TRUE(st.ok()) << st;
  absl::SleepFor(absl::Seconds(5));
  StartHostd();
  // Swarm replaced the task meanwhile; hostd adds the new one once its agent probed it.
  st = WaitFor([] { return HaproxyReadyServers(haproxy_->socket(), kService) == kTasks; },
               absl::Seconds(60), "the replacement task in HAProxy");
  EXPECT_TRUE(st.ok()) << st;
  Finish(*load, "hostd killed, a task killed while it was down", killed);
}

// The store down for 10 s while the agent restarts. No hostd can lead without the store (the
// lease is in it), so the new agent cannot report until it is back; the data plane must not
// notice any of it: HAProxy keeps every server, and when the agent reports again its tasks'
// fresh probes (starting) do not take them out either.
TEST_F(FaultTest, TheStoreStoppedWhileTheAgentReconnects) {
  std::unique_ptr<HttpLoad> load = Load();
  CapacityWatch capacity(haproxy_->socket());
  ASSERT_TRUE(ds_->Do("stop-primary").ok());
  const absl::Time stopped = absl::Now();
  agent_->Stop(SIGKILL);
  delete agent_;
  agent_ = new AgentProcess(*hostd_address_, *dir_ + "/agent.log");
  ASSERT_TRUE(agent_->Start().ok());
  absl::Status st = WaitFor([] { return Metric("hostd_store_reachable") == 0; },
                            absl::Seconds(10), "hostd to see the store down");
  EXPECT_TRUE(st.ok()) << st;
  EXPECT_EQ(Metric("hostd_docker_reachable"), 1) << "the store's outage is not Docker's";
  absl::SleepFor(std::max(absl::ZeroDuration(), stopped + absl::Seconds(10) - absl::Now()));
  ASSERT_TRUE(ds_->Do("start-primary").ok());
  st = WaitFor([] { return Metric("hostd_store_reachable") == 1; }, absl::Seconds(30),
               "hostd to read the store again");
  EXPECT_TRUE(st.ok()) << st;
  st = WaitFor(
      [] { return AgentState() == hosting::v1::AGENT_STATE_CONNECTED && Healthy() == kTasks; },
      absl::Seconds(30), "the agent back with every task probed healthy");
  EXPECT_TRUE(st.ok()) << st;
  capacity.Stop();
  EXPECT_EQ(capacity.min(), kTasks) << "a store fault removed capacity";
  Finish(*load, "store stopped 10 s while the agent reconnected");
}

// The store answering in seconds in the middle of a canary: the release waits (hostd cannot
// even keep its lease), the traffic does not, and the release ends once the store is back.
TEST_F(FaultTest, TheStoreAnsweringSlowlyDuringACanary) {
  std::unique_ptr<HttpLoad> load = Load();
  CapacityWatch capacity(haproxy_->socket());
  auto releases = hosting::v1::Releases::NewStub(hostd_->channel());
  hosting::v1::StartReleaseRequest req;
  req.set_service(kService);
  req.set_image("hosting/sample:v2");
  req.mutable_policy()->set_strategy(hosting::v1::RELEASE_STRATEGY_CANARY);
  auto* canary = req.mutable_policy()->mutable_canary();
  canary->add_steps()->set_set_weight(34);
  canary->add_steps()->mutable_pause()->mutable_duration()->set_seconds(5);
  canary->add_steps()->set_set_weight(100);
  hosting::v1::Release release;
  {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    grpc::Status st = releases->StartRelease(&ctx, req, &release);
    ASSERT_TRUE(st.ok()) << st.error_message();
  }
  ASSERT_TRUE(WaitFor([&] { return GetRelease(*releases, release.id()).current_step() >= 1; },
                      absl::Seconds(60), "the canary at its first weight")
                  .ok());
  proxy_->SetDelay(absl::Seconds(2));
  absl::SleepFor(absl::Seconds(15));
  proxy_->SetDelay(absl::ZeroDuration());
  absl::Status st = WaitFor(
      [&] {
        return GetRelease(*releases, release.id()).state() == hosting::v1::RELEASE_STATE_SUCCEEDED;
      },
      absl::Seconds(120), "the release to finish once the store is fast again");
  EXPECT_TRUE(st.ok()) << st << ": " << GetRelease(*releases, release.id()).message();
  // The next case starts from v1 again: a rollback is a release like any other.
  capacity.Stop();
  EXPECT_GE(capacity.min(), kTasks) << "a slow store removed capacity";
  Finish(*load, "store answering in 2 s during a canary");
  hosting::v1::RollbackServiceRequest back;
  back.set_service(kService);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  hosting::v1::Release rollback;
  ASSERT_TRUE(releases->RollbackService(&ctx, back, &rollback).ok());
  ASSERT_TRUE(WaitFor(
                  [&] {
                    return GetRelease(*releases, rollback.id()).state() ==
                           hosting::v1::RELEASE_STATE_SUCCEEDED;
                  },
                  absl::Seconds(120), "the rollback to v1")
                  .ok());
}

// dockerd's API stops answering for 5 s: Swarm is not in the data path.
TEST_F(FaultTest, DockersApiStalledForFiveSeconds) {
  std::unique_ptr<HttpLoad> load = Load();
  CapacityWatch capacity(haproxy_->socket());
  ASSERT_EQ(Shell("kill -STOP $(pidof dockerd)").exit_code, 0);
  absl::SleepFor(absl::Seconds(5));
  ASSERT_EQ(Shell("kill -CONT $(pidof dockerd)").exit_code, 0);
  absl::Status st = WaitFor([] { return Metric("hostd_docker_reachable") == 1; },
                            absl::Seconds(30), "hostd to reach Docker again");
  EXPECT_TRUE(st.ok()) << st;
  absl::SleepFor(absl::Seconds(2));
  capacity.Stop();
  EXPECT_EQ(capacity.min(), kTasks);
  Finish(*load, "dockerd stalled 5 s");
}

// The agent paused past its loss timeout: its tasks read unknown, their servers stay; back, it
// reports again.
TEST_F(FaultTest, TheAgentPausedPastItsLossTimeoutAndBack) {
  std::unique_ptr<HttpLoad> load = Load();
  CapacityWatch capacity(haproxy_->socket());
  kill(agent_->pid(), SIGSTOP);
  absl::Status st = WaitFor([] { return AgentState() == hosting::v1::AGENT_STATE_LOST; },
                            absl::Seconds(20), "hostd to mark the agent lost");
  EXPECT_TRUE(st.ok()) << st;
  EXPECT_EQ(Healthy(), 0) << "a lost node's tasks are not counted healthy";
  absl::SleepFor(absl::Seconds(3));
  kill(agent_->pid(), SIGCONT);
  st = WaitFor(
      [] { return AgentState() == hosting::v1::AGENT_STATE_CONNECTED && Healthy() == kTasks; },
      absl::Seconds(30), "the agent back with its tasks healthy");
  EXPECT_TRUE(st.ok()) << st;
  capacity.Stop();
  EXPECT_EQ(capacity.min(), kTasks) << "a lost agent removed capacity";
  Finish(*load, "agent paused past its loss timeout");
}

}  // namespace
}  // namespace hosting::testing
