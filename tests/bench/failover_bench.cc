// Measures leader failover of the control plane: two hostd on one PostgreSQL store and the
// real Swarm; each round SIGKILLs the leader and times, from the kill,
//   - the standby accepting a write (ApplyService of a new replica count), and
//   - the new leader acting on it (the Swarm service at that count, by the Docker CLI),
// then starts the killed hostd again as the new standby. Not a timed test: prints figures for
// docs/performance.md.
//
//   build/tests/bench/failover_bench [rounds=5] [lease=3s]
#include <algorithm>
#include <csignal>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "grpcpp/grpcpp.h"
#include "hosting/v1/service.grpc.pb.h"
#include "tests/integration/harness.h"

namespace {

using hosting::testing::Datastores;
using hosting::testing::HostdProcess;

constexpr char kService[] = "bench-failover";

grpc::Status Apply(HostdProcess& h, int replicas) {
  auto stub = hosting::v1::ServiceManager::NewStub(h.channel());
  hosting::v1::ApplyServiceRequest req;
  req.mutable_spec()->set_name(kService);
  req.mutable_spec()->set_image("hosting/sample:v1");
  req.mutable_spec()->set_replicas(replicas);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  hosting::v1::ApplyServiceResponse resp;
  return stub->ApplyService(&ctx, req, &resp);
}

bool Leads(HostdProcess& h) {
  return hosting::testing::MetricValue(
             hosting::testing::Http("GET", "http://" + h.metrics_address() + "/metrics").body,
             "hostd_leader") == 1;
}

void Print(const char* what, std::vector<double> ms) {
  std::sort(ms.begin(), ms.end());
  std::printf("| %s | %zu | %.0f | %.0f | %.0f |\n", what, ms.size(), ms[ms.size() / 2],
              ms.front(), ms.back());
}

}  // namespace

int main(int argc, char** argv) {
  const int rounds = argc > 1 ? std::atoi(argv[1]) : 5;
  const std::string lease = argc > 2 ? argv[2] : "3s";
  if (absl::Status st = hosting::testing::CheckDockerSwarm(); !st.ok()) {
    std::fprintf(stderr, "failover_bench: %s\n", std::string(st.message()).c_str());
    return 1;
  }
  hosting::testing::RemoveSwarmServicesOf(kService).IgnoreError();
  Datastores ds;
  if (absl::Status st = ds.Start(); !st.ok()) {
    std::fprintf(stderr, "failover_bench: %s\n", std::string(st.message()).c_str());
    return 1;
  }
  ds.Sql("CREATE DATABASE failover", false, "postgres");
  const std::vector<std::string> flags = {
      absl::StrCat("--store=postgresql://postgres@127.0.0.1:", ds.pg_port(),
                   "/failover?connect_timeout=2"),
      "--leader-lease=" + lease, "--leader-retry=250ms"};
  std::unique_ptr<HostdProcess> hostd[2];
  for (auto& h : hostd) {
    h = std::make_unique<HostdProcess>(hosting::testing::MakeTempDir("hosting-failover-"), flags);
    if (!h->Start().ok()) return 1;
  }
  int leader = Leads(*hostd[0]) ? 0 : 1;
  int replicas = 1;
  if (!Apply(*hostd[leader], replicas).ok()) return 1;
  std::vector<double> accepts, acts;
  int failed = 0;
  for (int round = 0; round < rounds; ++round) {
    // Settled: the service at its size before the kill.
    hosting::testing::WaitFor(
        [&] {
          return hosting::testing::SwarmServicesOf(kService) ==
                 std::vector<std::string>{absl::StrCat(kService, "-r1 ", replicas, " ", replicas)};
        },
        absl::Seconds(60), "settled")
        .IgnoreError();
    const int standby = 1 - leader;
    replicas = replicas == 1 ? 2 : 1;
    const absl::Time killed = absl::Now();
    hostd[leader]->Stop(SIGKILL);
    absl::Time accepted;
    absl::Status st = hosting::testing::WaitFor(
        [&] {
          if (!Apply(*hostd[standby], replicas).ok()) return false;
          accepted = absl::Now();
          return true;
        },
        absl::Seconds(30), "the standby to accept a write", absl::Milliseconds(20));
    if (!st.ok()) {
      ++failed;
      break;
    }
    // Swarm's spec at the new count: the new leader's reconciler wrote it.
    const std::string spec = absl::StrCat(kService, "-r1");
    st = hosting::testing::WaitFor(
        [&] {
          return hosting::testing::Shell("docker service inspect " + spec +
                                         " --format '{{.Spec.Mode.Replicated.Replicas}}'")
                     .output == absl::StrCat(replicas, "\n");
        },
        absl::Seconds(30), "the new leader to act", absl::Milliseconds(20));
    const absl::Time acted = absl::Now();
    if (!st.ok()) {
      ++failed;
      break;
    }
    accepts.push_back(absl::ToDoubleMilliseconds(accepted - killed));
    acts.push_back(absl::ToDoubleMilliseconds(acted - killed));
    // The killed one comes back as the standby.
    hostd[leader] = std::make_unique<HostdProcess>(
        hosting::testing::MakeTempDir("hosting-failover-"), flags);
    if (!hostd[leader]->Start().ok()) return 1;
    leader = standby;
  }
  for (auto& h : hostd) h->Stop(SIGTERM);
  hosting::testing::RemoveSwarmServicesOf(kService).IgnoreError();
  if (accepts.empty()) {
    std::fprintf(stderr, "failover_bench: no round completed\n");
    return 1;
  }
  std::printf("leader failover, 2 hostd on PostgreSQL 15, lease %s, renew/retry 250ms, %d rounds\n\n",
              lease.c_str(), rounds);
  std::printf("| from SIGKILL of the leader (ms) | n | median | min | max |\n| --- | ---: | ---: | ---: | ---: |\n");
  Print("standby accepts a write", accepts);
  Print("new leader acted (Swarm service rescaled)", acts);
  std::printf("\nfailed rounds: %d\n", failed);
  return failed == 0 ? 0 : 1;
}
