// Measures hostd's reaction times against the real Docker engine (not a timed test: a benchmark
// that prints figures for docs/performance.md).
//
//   build/tests/bench/reconcile_bench [iterations]
//
// For each iteration a fresh service is applied through gRPC, then changed behind hostd's back
// through the Docker API. Times are taken from the client's side with 1 ms polling.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "common/curl_docker_client.h"
#include "grpcpp/grpcpp.h"
#include "hosting/v1/service.grpc.pb.h"
#include "tests/integration/harness.h"

namespace {

using hosting::testing::HostdProcess;
using hosting::testing::Shell;

double Ms(absl::Duration d) { return absl::ToDoubleMilliseconds(d); }

// Polls `done` every millisecond; returns the elapsed time or a negative value after `limit`.
template <typename F>
double TimeUntil(absl::Time start, F done, absl::Duration limit = absl::Seconds(60)) {
  while (absl::Now() - start < limit) {
    if (done()) return Ms(absl::Now() - start);
    absl::SleepFor(absl::Milliseconds(1));
  }
  return -1;
}

void Report(const std::string& what, std::vector<double> v) {
  std::sort(v.begin(), v.end());
  auto pct = [&](double p) { return v[std::min(v.size() - 1, static_cast<size_t>(p * v.size()))]; };
  std::printf("| %-46s | %5zu | %8.1f | %8.1f | %8.1f |\n", what.c_str(), v.size(), pct(0.5),
              pct(0.95), v.back());
}

}  // namespace

int main(int argc, char** argv) {
  const int iterations = argc > 1 ? std::atoi(argv[1]) : 10;
  if (absl::Status s = hosting::testing::CheckDockerSwarm(); !s.ok()) {
    std::fprintf(stderr, "%s\n", s.ToString().c_str());
    return 1;
  }
  auto docker = hosting::docker::CurlDockerClient::Create("unix:///var/run/docker.sock").value();
  HostdProcess hostd(hosting::testing::MakeTempDir("hosting-bench-"));
  if (absl::Status s = hostd.Start(); !s.ok()) {
    std::fprintf(stderr, "%s\n", s.ToString().c_str());
    return 1;
  }
  auto stub = hosting::v1::ServiceManager::NewStub(hostd.channel());
  std::map<std::string, std::vector<double>> results;
  const int replicas = 2;
  for (int i = 0; i < iterations; ++i) {
    const std::string name = absl::StrCat("bench-", i);
    const std::string swarm = name + "-r1";
    hosting::testing::RemoveSwarmServicesOf(name);

    hosting::v1::ApplyServiceRequest req;
    req.mutable_spec()->set_name(name);
    req.mutable_spec()->set_image("hosting/sample:v1");
    req.mutable_spec()->set_replicas(replicas);
    req.mutable_spec()->mutable_stop_grace_period()->set_seconds(1);
    hosting::v1::ApplyServiceResponse resp;
    grpc::ClientContext ctx;
    absl::Time t0 = absl::Now();
    if (!stub->ApplyService(&ctx, req, &resp).ok()) return 1;
    results["ApplyService RPC returns"].push_back(Ms(absl::Now() - t0));
    results["ApplyService -> Swarm service exists"].push_back(
        TimeUntil(t0, [&] { return docker->InspectService(swarm).ok(); }));
    results["ApplyService -> all tasks running"].push_back(TimeUntil(t0, [&] {
      auto l = docker->ListServices({{"name", {swarm}}});
      return l.ok() && !l->empty() && (*l)[0].running_tasks == replicas;
    }));

    // Outside scale to 0 (what `docker service scale -d NAME=0` sends).
    absl::Time t1 = absl::Now();
    (void)hosting::docker::UpdateServiceWithRetry(*docker, swarm, [](nlohmann::json& s) {
      s["Mode"]["Replicated"]["Replicas"] = 0;
      return absl::OkStatus();
    });
    results["outside scale to 0 -> replicas restored"].push_back(TimeUntil(t1, [&] {
      auto s = docker->InspectService(swarm);
      return s.ok() && s->replicas == replicas;
    }));

    // Outside removal (what `docker service rm NAME` sends).
    absl::Time t2 = absl::Now();
    (void)docker->RemoveService(swarm);
    results["outside removal -> service re-created"].push_back(
        TimeUntil(t2, [&] { return docker->InspectService(swarm).ok(); }));

    hosting::v1::DeleteServiceRequest del;
    del.set_name(name);
    hosting::v1::DeleteServiceResponse del_resp;
    grpc::ClientContext del_ctx;
    absl::Time t3 = absl::Now();
    stub->DeleteService(&del_ctx, del, &del_resp);
    results["DeleteService -> Swarm service gone"].push_back(
        TimeUntil(t3, [&] { return absl::IsNotFound(docker->InspectService(swarm).status()); }));
  }
  std::printf("hostd reaction times, %d iterations, %d replicas of hosting/sample:v1\n",
              iterations, replicas);
  std::printf("machine: %s, %s cores, docker %s\n",
              Shell("sed -n 's/^model name.*: //p' /proc/cpuinfo | head -1 | tr -d '\\n'").output.c_str(),
              Shell("nproc | tr -d '\\n'").output.c_str(),
              Shell("docker version --format '{{.Server.Version}}' | tr -d '\\n'").output.c_str());
  std::printf("| %-46s | %5s | %8s | %8s | %8s |\n", "measure (ms)", "n", "p50", "p95", "max");
  std::printf("|%s|%s|%s|%s|%s|\n", std::string(48, '-').c_str(), std::string(7, '-').c_str(),
              std::string(10, '-').c_str(), std::string(10, '-').c_str(), std::string(10, '-').c_str());
  for (const char* key : {"ApplyService RPC returns", "ApplyService -> Swarm service exists",
                          "ApplyService -> all tasks running",
                          "outside scale to 0 -> replicas restored",
                          "outside removal -> service re-created",
                          "DeleteService -> Swarm service gone"}) {
    Report(key, results[key]);
  }
  return 0;
}
