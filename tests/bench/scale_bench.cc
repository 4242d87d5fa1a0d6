// How hostd's cost grows with the work, by simulation (a benchmark printing figures for
// docs/performance.md, not a timed test):
//
//   build/tests/bench/scale_bench [services,...] [latency_ms] [per_item_us]
//
// defaults: 10,100,1000 services, 1 ms per engine call plus 5 us per listed item. For each
// count, S services of 10 tasks over 100 nodes: hostd's control loop (SQLite store, event log,
// reconciler with its watch cache, desired-state writer, service manager: the parts a hostd
// runs, without gRPC) applies them on an empty Swarm held by the fake engine, each engine call
// delayed as a real dockerd's would be, with the engine's events for every write. Measured:
// time until Swarm holds every service at full size and until hostd reads every service as
// running; hostd's CPU (the process's, less the fake engine's own work and the bench's
// polling); engine calls; hostd's heap per service; then a restart on the same store (every
// service synced once, the writes it made to the engine: the target is none). Last, simulated
// agents: 100 nodes reporting the largest count's tasks to the agent registry (one thread,
// so one core: task samples per second), and the event log's rate on one thread.
#include <malloc.h>
#include <sys/resource.h>
#include <time.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "common/clock.h"
#include "common/fake_docker_client.h"
#include "common/log.h"
#include "controlplane/agents/agent_registry.h"
#include "controlplane/reconcile/reconciler.h"
#include "controlplane/service/desired_state.h"
#include "controlplane/service/service_manager.h"
#include "controlplane/store/event_log.h"
#include "controlplane/store/sqlite_store.h"
#include "controlplane/telemetry/metrics.h"
#include "tests/integration/harness.h"

namespace {

using hosting::controlplane::AgentRegistry;
using hosting::controlplane::DesiredState;
using hosting::controlplane::EventLog;
using hosting::controlplane::HostdMetrics;
using hosting::controlplane::Reconciler;
using hosting::controlplane::ReconcilerOptions;
using hosting::controlplane::ServiceManager;
using hosting::controlplane::SqliteStore;
using hosting::docker::DockerClient;
using hosting::docker::FakeDockerClient;
using hosting::docker::Filters;

constexpr int kNodes = 100;

int64_t ThreadCpuNs() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

double ProcessCpuSeconds() {
  rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec +
         (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

// Bytes the allocator has handed out and not had back.
int64_t HeapBytes() {
  struct mallinfo2 mi = mallinfo2();
  return static_cast<int64_t>(mi.uordblks + mi.hblkhd);
}

template <typename T>
size_t Items(const absl::StatusOr<std::vector<T>>& r) {
  return r.ok() ? r->size() : 0;
}
template <typename T>
size_t Items(const T&) {
  return 0;
}

// The fake engine with a real engine's costs: every call waits `latency` plus `per_item` for
// each item a list returns (no CPU spent: a dockerd does that work in its own process), and
// every write produces the engine's service event. Counts calls and writes, and the CPU the
// fake itself spends (not hostd's work).
class SimEngine final : public DockerClient {
 private:
  // Defined first: the overrides below deduce their types from it.
  template <typename F>
  auto Call(bool write, F&& f) {
    ++calls_;
    if (write) ++writes_;
    const int64_t start = ThreadCpuNs();
    auto result = f();
    fake_cpu_ns_ += ThreadCpuNs() - start;
    absl::SleepFor(latency_ + per_item_ * static_cast<int64_t>(Items(result)));
    return result;
  }

 public:
  SimEngine(FakeDockerClient& fake, absl::Duration latency, absl::Duration per_item)
      : fake_(fake), latency_(latency), per_item_(per_item) {}

  absl::StatusOr<hosting::docker::EngineInfo> Info() override {
    return Call(false, [&] { return fake_.Info(); });
  }
  absl::StatusOr<std::string> CreateService(const nlohmann::json& spec) override {
    auto r = Call(true, [&] { return fake_.CreateService(spec); });
    if (r.ok()) Emit("create", spec.value("Name", ""));
    return r;
  }
  absl::StatusOr<hosting::docker::ServiceInfo> InspectService(
      absl::string_view id_or_name) override {
    return Call(false, [&] { return fake_.InspectService(id_or_name); });
  }
  absl::StatusOr<std::vector<hosting::docker::ServiceInfo>> ListServices(
      const Filters& filters) override {
    return Call(false, [&] { return fake_.ListServices(filters); });
  }
  absl::Status UpdateService(absl::string_view id, uint64_t version,
                             const nlohmann::json& spec) override {
    absl::Status s = Call(true, [&] { return fake_.UpdateService(id, version, spec); });
    if (s.ok()) Emit("update", spec.value("Name", ""));
    return s;
  }
  absl::Status RemoveService(absl::string_view id_or_name) override {
    std::string name;
    if (auto info = fake_.InspectService(id_or_name); info.ok()) name = info->name;
    absl::Status s = Call(true, [&] { return fake_.RemoveService(id_or_name); });
    if (s.ok()) Emit("remove", name);
    return s;
  }
  absl::StatusOr<std::vector<hosting::docker::TaskInfo>> ListTasks(
      const Filters& filters) override {
    return Call(false, [&] { return fake_.ListTasks(filters); });
  }
  absl::StatusOr<std::vector<hosting::docker::NodeInfo>> ListNodes() override {
    return Call(false, [&] { return fake_.ListNodes(); });
  }
  absl::StatusOr<hosting::docker::NodeInfo> InspectNode(absl::string_view id) override {
    return Call(false, [&] { return fake_.InspectNode(id); });
  }
  absl::Status UpdateNode(absl::string_view id, uint64_t version,
                          const nlohmann::json& spec) override {
    return Call(true, [&] { return fake_.UpdateNode(id, version, spec); });
  }
  absl::StatusOr<std::vector<hosting::docker::ContainerInfo>> ListContainers(
      const Filters& filters) override {
    return Call(false, [&] { return fake_.ListContainers(filters); });
  }
  absl::StatusOr<nlohmann::json> InspectContainer(absl::string_view id) override {
    return Call(false, [&] { return fake_.InspectContainer(id); });
  }
  absl::StatusOr<std::string> SecretId(absl::string_view name) override {
    return Call(false, [&] { return fake_.SecretId(name); });
  }
  absl::Status EnsureOverlayNetwork(absl::string_view name) override {
    return Call(false, [&] { return fake_.EnsureOverlayNetwork(name); });
  }
  absl::Status PullImage(absl::string_view image) override {
    return Call(false, [&] { return fake_.PullImage(image); });
  }
  absl::StatusOr<bool> HasImage(absl::string_view image) override {
    return Call(false, [&] { return fake_.HasImage(image); });
  }
  absl::Status RestartContainer(absl::string_view id) override {
    return Call(true, [&] { return fake_.RestartContainer(id); });
  }
  absl::StatusOr<std::string> ContainerLogs(absl::string_view id, int tail) override {
    return Call(false, [&] { return fake_.ContainerLogs(id, tail); });
  }
  absl::Status StreamEvents(int64_t since, const Filters& filters,
                            const std::function<void(const hosting::docker::Event&)>& on_event,
                            const std::function<bool()>& should_stop) override {
    return fake_.StreamEvents(since, filters, on_event, should_stop);
  }

  int64_t calls() const { return calls_.load(); }
  int64_t writes() const { return writes_.load(); }
  double fake_cpu_seconds() const { return fake_cpu_ns_.load() / 1e9; }
  void Reset() {
    calls_ = 0;
    writes_ = 0;
  }

 private:
  void Emit(const std::string& action, const std::string& name) {
    hosting::docker::Event e;
    e.type = "service";
    e.action = action;
    e.attributes["name"] = name;
    e.time_nano = absl::ToUnixNanos(absl::Now());
    fake_.PushEvent(std::move(e));
  }

  FakeDockerClient& fake_;
  const absl::Duration latency_;
  const absl::Duration per_item_;
  std::atomic<int64_t> calls_{0};
  std::atomic<int64_t> writes_{0};
  std::atomic<int64_t> fake_cpu_ns_{0};
};

// The parts of a hostd this simulation runs, on a store file that outlives them (a restart
// is a new ControlLoop on the same file).
struct ControlLoop {
  ControlLoop(const std::string& db, DockerClient& docker, hosting::Clock& clock)
      : store(SqliteStore::Open(db).value()),
        events(*store, clock),
        reconciler(*store, docker, events, metrics, clock, ReconcilerOptions{}),
        state(*store, reconciler, events, clock),
        services(*store, state, reconciler, clock) {
    reconciler.Start();
  }
  ~ControlLoop() { reconciler.Stop(); }

  HostdMetrics metrics;
  std::unique_ptr<SqliteStore> store;
  EventLog events;
  Reconciler reconciler;
  DesiredState state;
  ServiceManager services;
};

std::string ServiceName(int i) { return absl::StrCat("svc-", i); }

// Polls on its own thread until `done` says so; its CPU is the bench's, not hostd's. The
// bench fails when the condition does not hold within five minutes.
class Poller {
 public:
  Poller(std::string what, std::function<bool()> done)
      : what_(std::move(what)), done_(std::move(done)) {
    thread_ = std::thread([this] {
      const int64_t start = ThreadCpuNs();
      const absl::Time deadline = absl::Now() + absl::Minutes(5);
      while (!done_()) {
        if (absl::Now() > deadline) {
          std::fprintf(stderr, "scale_bench: not within 5 minutes: %s\n", what_.c_str());
          std::exit(1);
        }
        absl::SleepFor(absl::Milliseconds(20));
      }
      finished_at_ = absl::Now();
      cpu_ = (ThreadCpuNs() - start) / 1e9;
    });
  }
  // Waits for the condition; when it held.
  absl::Time Wait() {
    thread_.join();
    return finished_at_;
  }
  double cpu_seconds() const { return cpu_; }

 private:
  const std::string what_;
  std::function<bool()> done_;
  absl::Time finished_at_;
  double cpu_ = 0;
  std::thread thread_;
};

// Every service at full size in Swarm: `tasks` running tasks of <name>-r1.
bool SwarmHasAll(FakeDockerClient& fake, int services, int tasks) {
  auto listed = fake.ListServices({});
  if (!listed.ok()) return false;
  int full = 0;
  for (const auto& s : *listed) {
    if (s.desired_tasks == tasks && s.running_tasks == tasks) ++full;
  }
  return full == services;
}

// Every service read as running by hostd (the status an API read returns); with
// `synced_since`, only once a sync after that time looked at it.
bool HostdReadsAllRunning(ControlLoop& loop, int services, absl::Time synced_since) {
  auto records = loop.store->ListServices();
  if (!records.ok() || static_cast<int>(records->size()) != services) return false;
  auto statuses = loop.reconciler.ObserveAll(*records);
  if (!statuses.ok()) return false;
  for (const auto& [name, st] : *statuses) {
    if (st.phase() != hosting::v1::SERVICE_PHASE_READY) return false;
    if (!st.has_last_reconciled() ||
        absl::FromUnixSeconds(st.last_reconciled().seconds()) +
                absl::Nanoseconds(st.last_reconciled().nanos()) <
            synced_since) {
      return false;
    }
  }
  return true;
}

struct Row {
  int services = 0;
  int tasks = 0;
  double swarm_s = 0, running_s = 0, cpu_s = 0;
  int64_t calls = 0, writes = 0;
  int64_t heap = 0;
  double restart_s = 0, restart_cpu_s = 0;
  int64_t restart_calls = 0, restart_writes = 0;
};

Row RunOne(int services, int tasks, absl::Duration latency, absl::Duration per_item) {
  Row row;
  row.services = services;
  row.tasks = tasks;
  const std::string dir = hosting::testing::MakeTempDir("hosting-scale-bench-");
  const std::string db = dir + "/hostd.db";
  FakeDockerClient fake;
  fake.SetNodeCount(kNodes);
  SimEngine engine(fake, latency, per_item);
  hosting::RealClock clock;

  const int64_t heap_before = HeapBytes();
  auto loop = std::make_unique<ControlLoop>(db, engine, clock);
  const double cpu0 = ProcessCpuSeconds();
  const double fake0 = engine.fake_cpu_seconds();
  const absl::Time t0 = absl::Now();
  Poller swarm_poll("every service at full size in Swarm", [&] { return SwarmHasAll(fake, services, tasks); });
  for (int i = 0; i < services; ++i) {
    hosting::v1::ApplyServiceRequest req;
    req.mutable_spec()->set_name(ServiceName(i));
    req.mutable_spec()->set_image("hosting/sample:v1");
    req.mutable_spec()->set_replicas(tasks);
    req.mutable_spec()->add_ports()->set_container_port(8080);
    auto r = loop->services.Apply(req);
    if (!r.ok()) {
      std::fprintf(stderr, "apply %s: %s\n", ServiceName(i).c_str(), r.status().ToString().c_str());
      std::exit(1);
    }
  }
  row.swarm_s = absl::ToDoubleSeconds(swarm_poll.Wait() - t0);
  Poller running_poll("hostd reads every service as running", [&] { return HostdReadsAllRunning(*loop, services, absl::InfinitePast()); });
  row.running_s = absl::ToDoubleSeconds(running_poll.Wait() - t0);
  row.cpu_s = ProcessCpuSeconds() - cpu0 - (engine.fake_cpu_seconds() - fake0) -
              swarm_poll.cpu_seconds() - running_poll.cpu_seconds();
  row.calls = engine.calls();
  row.writes = engine.writes();

  // hostd's heap: what it gives back when it goes (the fake engine keeps its own).
  const int64_t heap_full = HeapBytes();
  loop.reset();
  row.heap = heap_full - HeapBytes();
  (void)heap_before;

  // Restart on the same store and the same Swarm.
  engine.Reset();
  const double cpu1 = ProcessCpuSeconds();
  const double fake1 = engine.fake_cpu_seconds();
  const absl::Time t1 = absl::Now();
  loop = std::make_unique<ControlLoop>(db, engine, clock);
  Poller synced_poll("every service synced after the restart", [&] { return HostdReadsAllRunning(*loop, services, t1); });
  row.restart_s = absl::ToDoubleSeconds(synced_poll.Wait() - t1);
  row.restart_cpu_s = ProcessCpuSeconds() - cpu1 - (engine.fake_cpu_seconds() - fake1) -
                      synced_poll.cpu_seconds();
  row.restart_calls = engine.calls();
  row.restart_writes = engine.writes();
  loop.reset();
  return row;
}

// Simulated agents: kNodes nodes reporting `tasks` tasks to the registry, metrics every 2 s
// of simulated time, for `seconds` of wall time on this one thread.
void RunAgents(int tasks, double seconds) {
  const std::string dir = hosting::testing::MakeTempDir("hosting-scale-bench-agents-");
  auto store = SqliteStore::Open(dir + "/hostd.db").value();
  hosting::FakeClock clock;
  EventLog events(*store, clock);
  const int64_t heap0 = HeapBytes();
  AgentRegistry registry(AgentRegistry::Options{}, events, clock);
  std::vector<hosting::v1::MetricsReport> reports(kNodes);
  for (int n = 0; n < kNodes; ++n) {
    const std::string node = absl::StrCat("node", n + 1);
    hosting::v1::Register reg;
    reg.set_node_id(node);
    reg.set_hostname(node);
    (void)registry.Connect(reg).value();
    hosting::v1::TaskSnapshot snap;
    for (int t = n; t < tasks; t += kNodes) {
      const std::string id = absl::StrCat("task", t);
      const std::string service = ServiceName(t / 10);
      hosting::v1::TaskReport* r = snap.add_tasks();
      r->set_task_id(id);
      r->set_service(service);
      r->set_revision(1);
      r->set_swarm_service(service + "-r1");
      r->set_probe_health(hosting::v1::TASK_HEALTH_HEALTHY);
      hosting::v1::TaskMetrics* m = reports[n].add_tasks();
      m->set_task_id(id);
      m->set_service(service);
      m->set_revision(1);
      for (double b : {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0}) {
        m->add_latency_bucket_bounds(b);
        m->add_latency_bucket_counts(0);
      }
    }
    if (!registry.Snapshot(node, snap).ok()) std::abort();
  }
  // One report per node per 2 s of simulated time; counters grow as a busy task's would.
  int64_t round = 0;
  auto one_round = [&] {
    ++round;
    clock.Advance(absl::Seconds(2));
    for (int n = 0; n < kNodes; ++n) {
      for (auto& m : *reports[n].mutable_tasks()) {
        m.set_requests_total(round * 100.0);
        m.set_errors_total(round * 1.0);
        m.set_cpu_usage_ns(static_cast<uint64_t>(round) * 200'000'000);
        m.set_memory_bytes(64 << 20);
        for (int b = 0; b < m.latency_bucket_counts_size(); ++b) {
          m.set_latency_bucket_counts(b, round * 10.0 * (b + 1));
        }
      }
      registry.Metrics(absl::StrCat("node", n + 1), reports[n]);
    }
  };
  for (int i = 0; i < 16; ++i) one_round();  // fill the 30 s windows
  const int64_t heap_filled = HeapBytes();
  const int64_t cpu0 = ThreadCpuNs();
  const absl::Time t0 = absl::Now();
  int64_t rounds = 0;
  while (absl::Now() - t0 < absl::Seconds(seconds)) {
    one_round();
    ++rounds;
  }
  const double cpu = (ThreadCpuNs() - cpu0) / 1e9;
  const double wall = absl::ToDoubleSeconds(absl::Now() - t0);
  std::printf(
      "agents: %d nodes, %d tasks: %.0f reports/s, %.0f task samples/s on one thread "
      "(%.2f s CPU in %.2f s); registry heap %.1f MiB = %.0f bytes per task with full 30 s "
      "windows\n",
      kNodes, tasks, rounds * kNodes / cpu, rounds * kNodes * (tasks / double(kNodes)) / cpu, cpu,
      wall, (heap_filled - heap0) / 1048576.0, (heap_filled - heap0) / double(tasks));
  // Realistic load for comparison: every agent reports every 2 s.
  std::printf("agents: at one report per node every 2 s that is %.1f%% of one core\n",
              100.0 * (kNodes / 2.0) / (rounds * kNodes / cpu));

  // The event log on one thread.
  const int64_t ecpu0 = ThreadCpuNs();
  const absl::Time e0 = absl::Now();
  int64_t published = 0;
  while (absl::Now() - e0 < absl::Seconds(2)) {
    events.Publish("task.unhealthy", ServiceName(published % 1000), 1, "simulated");
    ++published;
  }
  const double ecpu = (ThreadCpuNs() - ecpu0) / 1e9;
  const double ewall = absl::ToDoubleSeconds(absl::Now() - e0);
  std::printf("events: %.0f published/s (SQLite, one thread; %.2f s CPU in %.2f s)\n",
              published / ewall, ecpu, ewall);
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<int> counts = {10, 100, 1000};
  if (argc > 1) {
    counts.clear();
    for (absl::string_view c : absl::StrSplit(argv[1], ',')) {
      int n = 0;
      if (!absl::SimpleAtoi(c, &n) || n <= 0) {
        std::fprintf(stderr, "usage: scale_bench [services,...] [latency_ms] [per_item_us]\n");
        return 2;
      }
      counts.push_back(n);
    }
  }
  const double latency_ms = argc > 2 ? std::atof(argv[2]) : 1.0;
  const double per_item_us = argc > 3 ? std::atof(argv[3]) : 5.0;
  const absl::Duration latency = absl::Microseconds(latency_ms * 1000);
  const absl::Duration per_item = absl::Microseconds(per_item_us);
  hosting::SetMinLogLevel(hosting::LogLevel::kWarning);
  std::printf("scale_bench: %d nodes, 10 tasks per service, engine call %.2f ms + %.1f us per "
              "listed item\n",
              kNodes, latency_ms, per_item_us);
  std::printf("%9s %9s %10s %11s %10s %9s %8s %12s %12s %11s %13s %13s\n", "services", "tasks",
              "swarm_s", "running_s", "hostd_cpu", "cpu/svc", "calls", "heap/svc", "restart_s",
              "restart_cpu", "restart_calls", "restart_writes");
  int64_t largest_tasks = 0;
  for (int services : counts) {
    Row r = RunOne(services, 10, latency, per_item);
    std::printf("%9d %9d %10.2f %11.2f %9.2fs %7.2fms %8lld %10.1fKiB %12.2f %10.2fs %13lld %13lld\n",
                r.services, r.services * r.tasks, r.swarm_s, r.running_s, r.cpu_s,
                1000.0 * r.cpu_s / r.services, static_cast<long long>(r.calls),
                r.heap / 1024.0 / r.services, r.restart_s, r.restart_cpu_s,
                static_cast<long long>(r.restart_calls), static_cast<long long>(r.restart_writes));
    std::fflush(stdout);
    largest_tasks = std::max<int64_t>(largest_tasks, int64_t{services} * 10);
  }
  RunAgents(static_cast<int>(largest_tasks), 5.0);
  return 0;
}
