// Measures leader failover of the control plane: two hostd on one PostgreSQL store and the
// real Swarm, with hostd's default lease and renewal unless a lease is given; each round
// SIGKILLs the leader and times, from the kill,
//   - the standby accepting a write (ApplyService of a new replica count), and
//   - the new leader acting on it (the Swarm service at that count, by the Docker CLI),
// then starts the killed hostd again as the new standby. Not a timed test: prints figures for
// docs/performance.md.
//
//   build/tests/bench/failover_bench [rounds=5] [lease]
//
// And that the defaults do not fail over falsely: the soak runs API and release load on the
// leader for `minutes`, stops the leader (SIGSTOP) for `pause_ms` every `every_s` seconds, and
// has PostgreSQL answer `pg_delay_ms` late (a proxy holds every answer); it counts leader
// changes (there must be none) and failed calls, and exits non-zero on a leader change.
//
//   build/tests/bench/failover_bench soak [minutes=10] [pause_ms=300] [every_s=30] [pg_delay_ms=20]
#include <algorithm>
#include <atomic>
#include <map>
#include <mutex>
#include <thread>
#include <csignal>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "grpcpp/grpcpp.h"
#include "hosting/v1/service.grpc.pb.h"
#include "hosting/v1/releases.grpc.pb.h"
#include "tests/integration/delay_proxy.h"
#include "tests/integration/harness.h"

namespace {

using hosting::testing::Datastores;
using hosting::testing::HostdProcess;

constexpr char kService[] = "bench-failover";

grpc::Status Apply(HostdProcess& h, int replicas, const std::string& name = kService) {
  auto stub = hosting::v1::ServiceManager::NewStub(h.channel());
  hosting::v1::ApplyServiceRequest req;
  req.mutable_spec()->set_name(name);
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

double Metric(HostdProcess& h, const std::string& series) {
  return hosting::testing::MetricValue(
      hosting::testing::Http("GET", "http://" + h.metrics_address() + "/metrics").body, series);
}

int Soak(int argc, char** argv) {
  const double minutes = argc > 2 ? std::atof(argv[2]) : 10;
  const int pause_ms = argc > 3 ? std::atoi(argv[3]) : 300;
  const int every_s = argc > 4 ? std::atoi(argv[4]) : 30;
  const int pg_delay_ms = argc > 5 ? std::atoi(argv[5]) : 20;
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
  ds.Sql("CREATE DATABASE soak", false, "postgres");
  hosting::testing::DelayProxy slow_pg(ds.pg_port());
  if (!slow_pg.Start().ok()) return 1;
  slow_pg.SetDelay(absl::Milliseconds(pg_delay_ms));
  const std::vector<std::string> flags = {absl::StrCat(
      "--store=postgresql://postgres@127.0.0.1:", slow_pg.port(), "/soak?connect_timeout=2")};
  std::unique_ptr<HostdProcess> hostd[2];
  for (auto& h : hostd) {
    h = std::make_unique<HostdProcess>(hosting::testing::MakeTempDir("hosting-soak-"), flags);
    if (!h->Start().ok()) return 1;
  }
  absl::SleepFor(absl::Seconds(2));
  const int leader = Leads(*hostd[0]) ? 0 : 1;
  HostdProcess& lead = *hostd[leader];
  const double epoch = Metric(lead, "hostd_leader_epoch");
  if (!Apply(lead, 2).ok()) return 1;

  std::atomic<bool> stop{false};
  std::atomic<int64_t> calls{0}, failed_calls{0}, releases{0}, failed_releases{0};
  std::mutex errors_mu;
  std::map<std::string, int> errors;  // first words of each failure, counted
  auto note = [&](const std::string& what, const std::string& message) {
    std::lock_guard<std::mutex> lock(errors_mu);
    ++errors[absl::StrCat(what, ": ", message.substr(0, 120))];
  };
  // API load: reads, and a write every tenth call (to a service of its own, so that it never
  // meets the releases), as fast as one client goes.
  const std::string api_service = absl::StrCat(kService, "-api");
  std::thread api([&] {
    auto stub = hosting::v1::ServiceManager::NewStub(lead.channel());
    for (int i = 0; !stop; ++i) {
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
      grpc::Status st;
      if (i % 10 == 0) {
        st = Apply(lead, 1, api_service);
      } else {
        hosting::v1::GetServiceRequest req;
        req.set_name(kService);
        hosting::v1::Service s;
        st = stub->GetService(&ctx, req, &s);
      }
      ++calls;
      if (!st.ok()) {
        ++failed_calls;
        note("API", st.error_message());
      }
    }
  });
  // Release load: rolling releases back and forth, one after another.
  std::thread release([&] {
    auto stub = hosting::v1::Releases::NewStub(lead.channel());
    auto services = hosting::v1::ServiceManager::NewStub(lead.channel());
    while (!stop) {
      // The other image than the one that runs (a release that rolled back leaves the old).
      std::string current = "hosting/sample:v1";
      {
        grpc::ClientContext ctx;
        ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
        hosting::v1::GetServiceRequest get;
        get.set_name(kService);
        hosting::v1::Service s;
        if (services->GetService(&ctx, get, &s).ok()) current = s.spec().image();
      }
      hosting::v1::StartReleaseRequest req;
      req.set_service(kService);
      req.set_image(current == "hosting/sample:v1" ? "hosting/sample:v2" : "hosting/sample:v1");
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
      hosting::v1::Release r;
      if (grpc::Status st = stub->StartRelease(&ctx, req, &r); !st.ok()) {
        ++failed_releases;
        note("release start", st.error_message());
        absl::SleepFor(absl::Seconds(1));
        continue;
      }
      hosting::testing::WaitFor(
          [&] {
            return stop || hosting::v1::ReleaseState(
                               hosting::testing::GetRelease(*stub, r.id()).state()) >=
                               hosting::v1::RELEASE_STATE_SUCCEEDED;
          },
          absl::Minutes(3), "the release", absl::Milliseconds(250))
          .IgnoreError();
      const hosting::v1::Release done = hosting::testing::GetRelease(*stub, r.id());
      if (done.state() == hosting::v1::RELEASE_STATE_SUCCEEDED) {
        ++releases;
      } else {
        ++failed_releases;
        note("release", done.message());
      }
    }
  });
  // The leader stops now and then.
  const absl::Time end = absl::Now() + absl::Seconds(minutes * 60);
  int pauses = 0;
  while (absl::Now() < end) {
    absl::SleepFor(std::min(absl::Seconds(every_s), end - absl::Now()));
    if (absl::Now() >= end) break;
    kill(lead.pid(), SIGSTOP);
    absl::SleepFor(absl::Milliseconds(pause_ms));
    kill(lead.pid(), SIGCONT);
    ++pauses;
  }
  stop = true;
  api.join();
  release.join();
  const double transitions = Metric(lead, "hostd_leader_transitions_total");
  const double epoch_after = Metric(lead, "hostd_leader_epoch");
  const bool still = Leads(lead) && !Leads(*hostd[1 - leader]);
  for (auto& h : hostd) h->Stop(SIGTERM);
  hosting::testing::RemoveSwarmServicesOf(kService).IgnoreError();
  hosting::testing::RemoveSwarmServicesOf(api_service).IgnoreError();
  for (const auto& [what, n] : errors) std::printf("failure x%d: %s\n", n, what.c_str());
  std::printf("soak: %.1f min, leader SIGSTOP %d ms every %d s (%d pauses), PostgreSQL answers "
              "%d ms late; default lease and renewal\n\n",
              minutes, pause_ms, every_s, pauses, pg_delay_ms);
  std::printf("| leader changes | epoch before -> after | API calls (failed) | releases (failed) |\n"
              "| ---: | --- | ---: | ---: |\n| %d | %.0f -> %.0f | %lld (%lld) | %lld (%lld) |\n",
              still && epoch_after == epoch ? 0 : 1, epoch, epoch_after,
              static_cast<long long>(calls.load()), static_cast<long long>(failed_calls.load()),
              static_cast<long long>(releases.load()),
              static_cast<long long>(failed_releases.load()));
  (void)transitions;
  return still && epoch_after == epoch ? 0 : 1;
}

int main(int argc, char** argv) {
  if (argc > 1 && std::string(argv[1]) == "soak") return Soak(argc, argv);
  const int rounds = argc > 1 ? std::atoi(argv[1]) : 5;
  const std::string lease = argc > 2 ? argv[2] : "";
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
  std::vector<std::string> flags = {absl::StrCat(
      "--store=postgresql://postgres@127.0.0.1:", ds.pg_port(), "/failover?connect_timeout=2")};
  if (!lease.empty()) flags.push_back("--leader-lease=" + lease);
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
  std::printf("leader failover, 2 hostd on PostgreSQL 15, lease %s, %d rounds\n\n",
              lease.empty() ? "default (750ms, renewed every 150ms)" : lease.c_str(), rounds);
  std::printf("| from SIGKILL of the leader (ms) | n | median | min | max |\n| --- | ---: | ---: | ---: | ---: |\n");
  Print("standby accepts a write", accepts);
  Print("new leader acted (Swarm service rescaled)", acts);
  std::printf("\nfailed rounds: %d\n", failed);
  return failed == 0 ? 0 : 1;
}
