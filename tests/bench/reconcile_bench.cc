// Measures hostd's reaction times against the real Docker engine (not a timed test: a benchmark
// that prints figures for docs/performance.md).
//
//   build/tests/bench/reconcile_bench [iterations]
//
// Against another engine (the manager of the local cluster, scripts/cluster-up.sh):
//   DOCKER_HOST=unix:///run/hc/n1/docker.sock build/tests/bench/reconcile_bench 10
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

// What one measure saw: the times that completed, and how many did not (never folded in).
struct Measure {
  std::vector<double> ms;
  int timeouts = 0;
  int failures = 0;  // the change that starts the measure itself failed
};

// Polls `done` every millisecond and records the elapsed time, or a timeout after `limit`.
template <typename F>
void TimeUntil(Measure& m, absl::Time start, F done, absl::Duration limit = absl::Seconds(60)) {
  while (absl::Now() - start < limit) {
    if (done()) {
      m.ms.push_back(Ms(absl::Now() - start));
      return;
    }
    absl::SleepFor(absl::Milliseconds(1));
  }
  ++m.timeouts;
}

// A change made from outside hostd (or through it) that must succeed for its measure to mean
// anything: a failure is counted and printed, and that iteration's measure is skipped.
bool Check(Measure& m, const absl::Status& st, const std::string& what) {
  if (st.ok()) return true;
  ++m.failures;
  std::fprintf(stderr, "%s failed: %s\n", what.c_str(), st.ToString().c_str());
  return false;
}

void Report(const std::string& what, Measure m) {
  std::vector<double>& v = m.ms;
  std::sort(v.begin(), v.end());
  auto pct = [&](double p) {
    return v.empty() ? 0.0 : v[std::min(v.size() - 1, static_cast<size_t>(p * v.size()))];
  };
  std::printf("| %-46s | %5zu | %8.1f | %8.1f | %8.1f | %8d |\n", what.c_str(), v.size(),
              pct(0.5), pct(0.95), v.empty() ? 0.0 : v.back(), m.timeouts + m.failures);
}

}  // namespace

int main(int argc, char** argv) {
  const int iterations = argc > 1 ? std::atoi(argv[1]) : 10;
  if (absl::Status s = hosting::testing::CheckDockerSwarm(); !s.ok()) {
    std::fprintf(stderr, "%s\n", s.ToString().c_str());
    return 1;
  }
  // The docker CLI the harness runs reads DOCKER_HOST too, so every part sees one engine.
  const char* env_host = std::getenv("DOCKER_HOST");
  const std::string engine = env_host != nullptr && *env_host != '\0'
                                 ? env_host
                                 : "unix:///var/run/docker.sock";
  auto docker = hosting::docker::CurlDockerClient::Create(engine).value();
  HostdProcess hostd(hosting::testing::MakeTempDir("hosting-bench-"),
                     {"--docker-host=" + engine});
  if (absl::Status s = hostd.Start(); !s.ok()) {
    std::fprintf(stderr, "%s\n", s.ToString().c_str());
    return 1;
  }
  auto stub = hosting::v1::ServiceManager::NewStub(hostd.channel());
  std::map<std::string, Measure> results;
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
    if (grpc::Status st = stub->ApplyService(&ctx, req, &resp); !st.ok()) {
      std::fprintf(stderr, "apply %s: %s\n", name.c_str(), st.error_message().c_str());
      return 1;
    }
    results["ApplyService RPC returns"].ms.push_back(Ms(absl::Now() - t0));
    TimeUntil(results["ApplyService -> Swarm service exists"], t0,
              [&] { return docker->InspectService(swarm).ok(); });
    TimeUntil(results["ApplyService -> all tasks running"], t0, [&] {
      auto l = docker->ListServices({{"name", {swarm}}});
      return l.ok() && !l->empty() && (*l)[0].running_tasks == replicas;
    });

    // Outside scale to 0 (what `docker service scale -d NAME=0` sends).
    absl::Time t1 = absl::Now();
    Measure& restored = results["outside scale to 0 -> replicas restored"];
    if (Check(restored,
              hosting::docker::UpdateServiceWithRetry(*docker, swarm,
                                                      [](nlohmann::json& s) {
                                                        s["Mode"]["Replicated"]["Replicas"] = 0;
                                                        return absl::OkStatus();
                                                      }),
              "outside scale of " + swarm)) {
      TimeUntil(restored, t1, [&] {
        auto s = docker->InspectService(swarm);
        return s.ok() && s->replicas == replicas;
      });
    }

    // Outside removal (what `docker service rm NAME` sends).
    absl::Time t2 = absl::Now();
    Measure& recreated = results["outside removal -> service re-created"];
    if (Check(recreated, docker->RemoveService(swarm), "outside removal of " + swarm)) {
      TimeUntil(recreated, t2, [&] { return docker->InspectService(swarm).ok(); });
    }

    hosting::v1::DeleteServiceRequest del;
    del.set_name(name);
    hosting::v1::DeleteServiceResponse del_resp;
    grpc::ClientContext del_ctx;
    absl::Time t3 = absl::Now();
    Measure& gone = results["DeleteService -> Swarm service gone"];
    grpc::Status deleted = stub->DeleteService(&del_ctx, del, &del_resp);
    if (Check(gone, deleted.ok() ? absl::OkStatus() : absl::InternalError(deleted.error_message()),
              "delete " + name)) {
      TimeUntil(gone, t3,
                [&] { return absl::IsNotFound(docker->InspectService(swarm).status()); });
    }
  }
  std::printf("hostd reaction times, %d iterations, %d replicas of hosting/sample:v1\n",
              iterations, replicas);
  std::printf("machine: %s, %s cores, docker %s\n",
              Shell("sed -n 's/^model name.*: //p' /proc/cpuinfo | head -1 | tr -d '\\n'").output.c_str(),
              Shell("nproc | tr -d '\\n'").output.c_str(),
              Shell("docker version --format '{{.Server.Version}}' | tr -d '\\n'").output.c_str());
  std::printf("| %-46s | %5s | %8s | %8s | %8s | %8s |\n", "measure (ms)", "n", "p50", "p95",
              "max", "failed");
  std::printf("|%s|%s|%s|%s|%s|%s|\n", std::string(48, '-').c_str(),
              std::string(7, '-').c_str(), std::string(10, '-').c_str(),
              std::string(10, '-').c_str(), std::string(10, '-').c_str(),
              std::string(10, '-').c_str());
  for (const char* key : {"ApplyService RPC returns", "ApplyService -> Swarm service exists",
                          "ApplyService -> all tasks running",
                          "outside scale to 0 -> replicas restored",
                          "outside removal -> service re-created",
                          "DeleteService -> Swarm service gone"}) {
    Report(key, results[key]);
  }
  int failed = 0;
  for (const auto& [key, m] : results) failed += m.timeouts + m.failures;
  if (failed > 0) std::fprintf(stderr, "%d measures timed out or could not be made\n", failed);
  return failed == 0 ? 0 : 1;
}
