// hostagent's cost and speed on this machine (a benchmark printing figures for
// docs/performance.md, not a timed test):
//
//   build/tests/bench/agent_bench [tasks] [seconds]
//
// Runs hostd and hostagent, starts `tasks` replicas of hosting/sample:v1 probed every 2 s,
// measures both processes' CPU over `seconds`, then breaks five tasks' health endpoints one by
// one and times each from the break to hostd's task.unhealthy event.
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "grpcpp/grpcpp.h"
#include "hosting/v1/cluster.grpc.pb.h"
#include "hosting/v1/service.grpc.pb.h"
#include "tests/integration/harness.h"

namespace {

using hosting::testing::Shell;

// utime + stime of a process, in seconds.
double CpuSeconds(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::string> f = absl::StrSplit(stat.substr(stat.rfind(')') + 2), ' ');
  // After the command: state is field 3, utime 14, stime 15 (1-based) -> 11 and 12 here.
  return (std::stod(f[11]) + std::stod(f[12])) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

}  // namespace

int main(int argc, char** argv) {
  const int tasks = argc > 1 ? std::atoi(argv[1]) : 50;
  const int seconds = argc > 2 ? std::atoi(argv[2]) : 30;
  if (absl::Status s = hosting::testing::CheckDockerSwarm(); !s.ok()) {
    std::fprintf(stderr, "%s\n", s.ToString().c_str());
    return 1;
  }
  const std::string dir = hosting::testing::MakeTempDir("hosting-agent-bench-");
  hosting::testing::HostdProcess hostd(dir);
  if (!hostd.Start().ok()) return 1;
  // The agent's defaults: metrics every 2 s.
  hosting::testing::AgentProcess agent(hostd.address(), dir + "/agent.log", "2s");
  if (!agent.Start().ok()) return 1;
  auto services = hosting::v1::ServiceManager::NewStub(hostd.channel());
  auto cluster = hosting::v1::Cluster::NewStub(hostd.channel());
  const std::string name = "agent-bench";
  hosting::testing::RemoveSwarmServicesOf(name);

  hosting::v1::ApplyServiceRequest req;
  auto* spec = req.mutable_spec();
  spec->set_name(name);
  spec->set_image("hosting/sample:v1");
  spec->set_replicas(tasks);
  spec->add_ports()->set_container_port(8080);
  spec->mutable_health()->set_http_path("/health");
  spec->mutable_health()->mutable_interval()->set_seconds(2);
  spec->mutable_health()->set_unhealthy_threshold(1);
  spec->mutable_resources()->set_memory_limit_bytes(32 << 20);
  spec->mutable_stop_grace_period()->set_seconds(1);
  {
    grpc::ClientContext ctx;
    hosting::v1::ApplyServiceResponse resp;
    if (!services->ApplyService(&ctx, req, &resp).ok()) return 1;
  }
  auto healthy = [&] {
    grpc::ClientContext ctx;
    hosting::v1::GetServiceStatusRequest r;
    r.set_name(name);
    hosting::v1::ServiceHealthStatus s;
    if (!cluster->GetServiceStatus(&ctx, r, &s).ok() || s.revisions_size() == 0) return 0;
    return s.revisions(0).healthy();
  };
  absl::Status up = hosting::testing::WaitFor([&] { return healthy() == tasks; }, absl::Minutes(5),
                                              "all tasks healthy", absl::Milliseconds(500));
  if (!up.ok()) {
    std::fprintf(stderr, "%s (healthy: %d)\n", up.ToString().c_str(), healthy());
    return 1;
  }
  absl::SleepFor(absl::Seconds(5));  // settle

  const double agent0 = CpuSeconds(agent.pid()), hostd0 = CpuSeconds(hostd.pid());
  const absl::Time t0 = absl::Now();
  absl::SleepFor(absl::Seconds(seconds));
  const double wall = absl::ToDoubleSeconds(absl::Now() - t0);
  const double agent_cpu = (CpuSeconds(agent.pid()) - agent0) / wall * 100;
  const double hostd_cpu = (CpuSeconds(hostd.pid()) - hostd0) / wall * 100;

  // Detection: break a task, time until hostd publishes task.unhealthy for it.
  std::vector<double> detect_ms;
  std::vector<std::string> containers = absl::StrSplit(
      Shell("docker ps -q --filter label=hosting.service=" + name).output, '\n', absl::SkipEmpty());
  for (int i = 0; i < 5 && i < static_cast<int>(containers.size()); ++i) {
    grpc::ClientContext ctx;
    hosting::v1::WatchEventsRequest w;
    w.set_service(name);
    w.add_types("task.unhealthy");
    auto reader = cluster->WatchEvents(&ctx, w);
    absl::SleepFor(absl::Milliseconds(100));
    absl::Time broken = absl::Now();
    Shell("docker exec -u 0 " + containers[i] + " rm /srv/health");
    hosting::v1::Event e;
    if (reader->Read(&e)) detect_ms.push_back(absl::ToDoubleMilliseconds(absl::Now() - broken));
    ctx.TryCancel();
    reader->Finish();
    absl::SleepFor(absl::Milliseconds(2500));  // de-correlate from the probe schedule
  }
  std::sort(detect_ms.begin(), detect_ms.end());

  {
    grpc::ClientContext ctx;
    hosting::v1::DeleteServiceRequest del;
    del.set_name(name);
    hosting::v1::DeleteServiceResponse resp;
    services->DeleteService(&ctx, del, &resp);
  }
  std::printf("hostagent with %d tasks probed every 2 s, metrics reported every 2 s, %d s window\n",
              tasks, seconds);
  std::printf("| measure | value |\n|---|---|\n");
  std::printf("| hostagent CPU (%% of one core) | %.2f |\n", agent_cpu);
  std::printf("| hostd CPU handling the reports (%% of one core) | %.2f |\n", hostd_cpu);
  if (!detect_ms.empty()) {
    std::printf("| task broken -> task.unhealthy, median of %zu (ms) | %.0f |\n", detect_ms.size(),
                detect_ms[detect_ms.size() / 2]);
    std::printf("| task broken -> task.unhealthy, max (ms) | %.0f |\n", detect_ms.back());
  }
  hosting::testing::WaitFor([&] { return hosting::testing::SwarmServicesOf(name).empty(); },
                            absl::Minutes(2), "cleanup").IgnoreError();
  return 0;
}
