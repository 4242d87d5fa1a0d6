// Releases by hostd against Docker Swarm's own rolling update, side by side in one run on this
// machine: the same appsvc image and replicas, the same 1 s health check, the same load from
// 127.0.0.1 through the same HAProxy (hostd programs its backend; Swarm's backend discovers
// tasks through Docker's DNS with 1 s HAProxy checks, as the reference platform did).
//
//   build/tests/bench/release_bench [REPLICAS]        (default 4; figures go to
//                                                      docs/performance.md)
// HOSTING_BENCH_VERBOSE=1 prints each hostd release's events (hostctl's output) on stderr.
//
// On the local multi-node cluster (scripts/cluster-up.sh N): the same, with hostd on the
// manager's engine listening on the bridge, an agent in every node, HAProxy on node 1 and the
// datastores reached by the tasks at the host's bridge address:
//   HOSTING_CLUSTER_NODES=3 DOCKER_HOST=unix:///run/hc/n1/docker.sock \
//     HOSTING_BENCH_HEALTH_TIMEOUT=3 build/tests/bench/release_bench 4
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "common/status_macros.h"
#include "controlplane/traffic/load_balancer.h"
#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/time_util.h"
#include "grpcpp/grpcpp.h"
#include "hosting/v1/releases.grpc.pb.h"
#include "hosting/v1/service.grpc.pb.h"
#include "tests/integration/harness.h"

namespace hosting::testing {
namespace {

using google::protobuf::util::TimeUtil;

struct Result {
  std::string what;
  double seconds = 0;
  int64_t requests = 0;
  int64_t failed = 0;
  std::string note;
};

void Die(const absl::Status& s) {
  std::cerr << "release_bench: " << s << "\n";
  std::exit(1);
}

int Replicas(int argc, char** argv) { return argc > 1 ? std::atoi(argv[1]) : 4; }

class Bench {
 public:
  explicit Bench(int replicas) : n_(replicas) {}

  absl::Status Setup() {
    RETURN_IF_ERROR(CheckDockerSwarm());
    RETURN_IF_ERROR(RemoveSwarmServicesOf("bench-hostd"));  // left by an interrupted run
    Shell("docker service rm bench-swarm >/dev/null 2>&1");
    dir_ = MakeTempDir("hosting-release-bench-");
    const char* nodes = std::getenv("HOSTING_CLUSTER_NODES");
    cluster_nodes_ = nodes != nullptr ? std::atoi(nodes) : 0;
    gateway_ = cluster_nodes_ > 0 ? absl::StrCat(ClusterNet(), ".1") : DockerGatewayAddress();
    RETURN_IF_ERROR(datastores_.Start(gateway_));
    // The release images, on every engine that may run a task.
    std::vector<std::string> engines = {""};
    if (cluster_nodes_ > 0) {
      engines.clear();
      for (int i = 1; i <= cluster_nodes_; ++i) {
        engines.push_back(absl::StrCat("-H unix:///run/hc/n", i, "/docker.sock "));
      }
    }
    for (const std::string& engine : engines) {
      Shell(absl::StrCat("docker ", engine, "tag hosting/appsvc:dev hosting/appsvc:v2 && docker ",
                         engine, "tag hosting/appsvc:dev hosting/appsvc:v3"));
    }
    haproxy_ = std::make_unique<HaproxyContainer>(
        dir_,
        std::vector<HaproxyContainer::Backend>{
            {"bench-hostd", ""},
            {"bench-swarm", absl::StrCat("  server-template t 16 tasks.bench-swarm:3000 check "
                                         "inter 1s fall 1 rise 1 resolvers docker "
                                         "init-addr none\n")}},
        "resolvers docker\n  nameserver dns 127.0.0.11:53\n  resolve_retries 3\n"
        "  timeout resolve 500ms\n  timeout retry 500ms\n  hold valid 1s\n  hold obsolete 1s\n");
    if (cluster_nodes_ > 0) haproxy_->PublishOn(absl::StrCat(ClusterNet(), ".11"));
    RETURN_IF_ERROR(haproxy_->Start());
    if (cluster_nodes_ == 0) {
      hostd_ = std::make_unique<HostdProcess>(
          dir_ + "/hostd", std::vector<std::string>{"--haproxy", haproxy_->socket()});
      RETURN_IF_ERROR(hostd_->Start());
      agents_.push_back(
          std::make_unique<AgentProcess>(hostd_->address(), dir_ + "/agent.log", "1s"));
      RETURN_IF_ERROR(agents_.back()->Start());
    } else {
      // hostd on the manager's engine where the nodes' agents reach it; an agent per node.
      hostd_ = std::make_unique<HostdProcess>(
          dir_ + "/hostd",
          std::vector<std::string>{"--haproxy", haproxy_->socket(),
                                   "--docker-host=unix:///run/hc/n1/docker.sock",
                                   "--allow-insecure-remote"},
          absl::StrCat(ClusterNet(), ".1:", FreePort()));
      RETURN_IF_ERROR(hostd_->Start());
      for (int i = 1; i <= cluster_nodes_; ++i) {
        agents_.push_back(std::make_unique<AgentProcess>(
            hostd_->address(), absl::StrCat(dir_, "/agent", i, ".log"), "1s"));
        agents_.back()->InNode(absl::StrCat("/run/netns/hc-n", i),
                               absl::StrCat("unix:///run/hc/n", i, "/docker.sock"),
                               absl::StrCat(ClusterNet(), ".", 10 + i, ":9465"));
        RETURN_IF_ERROR(agents_.back()->Start());
      }
    }
    services_ = hosting::v1::ServiceManager::NewStub(hostd_->channel());
    releases_ = hosting::v1::Releases::NewStub(hostd_->channel());

    // Swarm's service: parallelism 1, start-first, rollback on failure, the same health check.
    std::string env;
    for (const auto& [k, v] : Env()) absl::StrAppend(&env, " -e ", k, "=", v);
    CommandResult r = Shell(absl::StrCat(
        "docker service create -d --name bench-swarm --network hosting --endpoint-mode dnsrr "
        "--replicas ", n_, " --health-cmd 'appsvc healthcheck' --health-interval ",
        HealthTimeoutSeconds(), "s --health-timeout ", HealthTimeoutSeconds(), "s --health-retries 3 "
        "--update-parallelism 1 --update-order start-first "
        "--update-failure-action rollback --rollback-parallelism 1 --rollback-order start-first "
        "--stop-grace-period 10s", env, " hosting/appsvc:dev"));
    if (r.exit_code != 0) return absl::UnavailableError(r.output);
    RETURN_IF_ERROR(WaitFor([&] { return Up("bench-swarm") == n_; }, absl::Seconds(120),
                            "Swarm's tasks UP in HAProxy", absl::Milliseconds(200)));

    grpc::ClientContext ctx;
    hosting::v1::ApplyServiceRequest req;
    *req.mutable_spec() = Spec({});
    hosting::v1::ApplyServiceResponse resp;
    grpc::Status st = services_->ApplyService(&ctx, req, &resp);
    if (!st.ok()) return absl::InternalError(st.error_message());
    RETURN_IF_ERROR(WaitFor([&] { return Up("bench-hostd") == n_; }, absl::Seconds(120),
                            "hostd's tasks in HAProxy", absl::Milliseconds(200)));
    // One row for the API to read.
    HttpResult created = Http("POST", Url("bench-hostd", "/api/users"),
                              R"({"name":"Ada","email":"ada@example.com"})");
    if (created.status != 201 && created.status != 409) {
      return absl::InternalError(absl::StrCat("seeding a user: ", created.status, created.body));
    }
    return absl::OkStatus();
  }

  void Teardown() {
    for (auto& agent : agents_) agent->Stop();
    if (hostd_) hostd_->Stop();
    if (absl::Status gone = RemoveSwarmServicesOf("bench-hostd"); !gone.ok()) {
      std::cerr << "teardown: " << gone << "\n";
    }
    Shell("docker service rm bench-swarm >/dev/null 2>&1");
    if (haproxy_) haproxy_->Stop();
    datastores_.Stop();
  }

  // Swarm: `docker service update` (it waits until the update converges).
  Result SwarmGood() {
    HttpLoad load(Url("bench-swarm", "/api/users/1"), 4);
    absl::SleepFor(absl::Seconds(1));
    const absl::Time t0 = absl::Now();
    CommandResult r = Shell("docker service update --image hosting/appsvc:v2 bench-swarm 2>&1");
    const absl::Duration took = absl::Now() - t0;
    absl::SleepFor(absl::Seconds(1));
    load.Stop();
    return {"Swarm: docker service update, good version", absl::ToDoubleSeconds(took),
            load.total(), load.failed(), r.exit_code == 0 ? "" : r.output.substr(0, 200)};
  }

  // Swarm: a version whose health check never passes; until the rollback has completed.
  Result SwarmBad() {
    HttpLoad load(Url("bench-swarm", "/api/users/1"), 4);
    absl::SleepFor(absl::Seconds(1));
    const absl::Time t0 = absl::Now();
    Shell("docker service update -d --env-add FAULT_HEALTH_FAIL=true bench-swarm");
    absl::Status st = WaitFor(
        [] {
          return Shell("docker service inspect -f '{{.UpdateStatus.State}}' bench-swarm")
                     .output.find("rollback_completed") != std::string::npos;
        },
        absl::Minutes(5), "Swarm's rollback", absl::Milliseconds(100));
    const absl::Duration took = absl::Now() - t0;
    absl::SleepFor(absl::Seconds(1));
    load.Stop();
    return {"Swarm: failure action rollback, health never passes", absl::ToDoubleSeconds(took),
            load.total(), load.failed(), st.ok() ? "" : std::string(st.message())};
  }

  // hostd: `hostctl release start --wait` (a CI job's view: until the command exits).
  Result HostdRelease(const std::string& what, const std::string& args, int want_exit) {
    HttpLoad load(Url("bench-hostd", "/api/users/1"), 4);
    absl::SleepFor(absl::Seconds(1));
    const absl::Time t0 = absl::Now();
    CommandResult r = Shell(absl::StrCat(HostctlBinary(), " --server ", hostd_->address(),
                                         " release start bench-hostd ", args,
                                         " --wait --wait-timeout 300"));
    const absl::Duration took = absl::Now() - t0;
    if (std::getenv("HOSTING_BENCH_VERBOSE") != nullptr) std::cerr << r.output << "\n";
    absl::SleepFor(absl::Seconds(1));
    load.Stop();
    return {what, absl::ToDoubleSeconds(took), load.total(), load.failed(),
            r.exit_code == want_exit ? "" : absl::StrCat("exit ", r.exit_code, ": ", r.output)};
  }

  // A canary of the current image with `env` added: 20 %, then a 60 s analysis (100 samples).
  hosting::v1::StartReleaseRequest CanaryRequest(std::map<std::string, std::string> env) {
    hosting::v1::StartReleaseRequest req;
    req.set_service("bench-hostd");
    *req.mutable_spec() = Spec(std::move(env));
    req.mutable_spec()->set_image(current_image_);
    req.mutable_policy()->set_strategy(hosting::v1::RELEASE_STRATEGY_CANARY);
    auto* c = req.mutable_policy()->mutable_canary();
    c->add_steps()->set_set_weight(20);
    auto* a = c->add_steps()->mutable_analysis();
    a->mutable_duration()->set_seconds(60);
    a->set_min_samples(100);
    return req;
  }

  // A canary that fails its analysis: from the decision to roll back until HAProxy sends the
  // canary nothing (its servers at weight 0 or gone), polled on the runtime API.
  Result AnalysisToStable() {
    HttpLoad load(Url("bench-hostd", "/api/users/1"), 4);
    absl::SleepFor(absl::Seconds(2));
    hosting::v1::StartReleaseRequest req = CanaryRequest({{"FAULT_ERROR_RATE", "0.3"}});
    hosting::v1::Release rel;
    grpc::ClientContext ctx;
    grpc::Status st = releases_->StartRelease(&ctx, req, &rel);
    if (!st.ok()) return {"hostd: analysis fails -> all traffic on stable", 0, 0, 0, st.error_message()};
    // Follow the release; time the decision, then poll HAProxy.
    grpc::ClientContext wctx;
    hosting::v1::WatchReleaseRequest wreq;
    wreq.set_id(rel.id());
    auto reader = releases_->WatchRelease(&wctx, wreq);
    hosting::v1::ReleaseEvent e;
    absl::Time decided = absl::InfinitePast();
    while (reader->Read(&e)) {
      if (e.type() == "rolling_back") {
        decided = absl::Now();
        break;
      }
    }
    wctx.TryCancel();
    reader->Finish();
    const std::string prefix = absl::StrCat("r", rel.to_revision(), "-");
    controlplane::HaproxyLoadBalancer lb(haproxy_->socket());
    absl::Time clean = absl::InfinitePast();
    absl::Status out_of_haproxy = WaitFor(
        [&] {
          absl::StatusOr<std::vector<controlplane::LbServer>> servers = lb.Servers("bench-hostd");
          if (!servers.ok()) return false;
          for (const auto& s : *servers) {
            if (s.name.rfind(prefix, 0) == 0 && s.weight > 0 &&
                s.state == controlplane::LbServer::State::kReady) {
              return false;
            }
          }
          clean = absl::Now();
          return true;
        },
        absl::Seconds(30), "canary out of HAProxy", absl::Milliseconds(5));
    absl::Status ended =
        WaitFor([&] { return Get(rel.id()).state() >= hosting::v1::RELEASE_STATE_SUCCEEDED; },
                absl::Minutes(2), "the rollback", absl::Milliseconds(100));
    load.Stop();
    const hosting::v1::Release done = Get(rel.id());
    return {"hostd: canary analysis fails -> all traffic on stable",
            absl::ToDoubleSeconds(clean - decided), load.total(), load.failed(),
            absl::StrCat(hosting::v1::ReleaseState_Name(done.state()), "; whole canary ",
                         TimeUtil::DurationToMilliseconds(done.finished_at() - done.started_at()),
                         " ms", out_of_haproxy.ok() ? "" : "; " + out_of_haproxy.ToString(),
                         ended.ok() ? "" : "; " + ended.ToString())};
  }

  // A good canary at 20 % with a judged analysis (judge min_samples 200, the step 60 s long):
  // from the step's start to the judge's decision, beside the time the canary's requests took
  // to reach the 200 (its rate over the step), then the release to its end. With `baseline`
  // the canary runs beside a fresh copy of the stable revision and is judged against it.
  Result JudgedCanary(bool baseline) {
    HttpLoad load(Url("bench-hostd", "/api/users/1"), 4);
    absl::SleepFor(absl::Seconds(1));
    hosting::v1::StartReleaseRequest req =
        CanaryRequest({{"BENCH_JUDGED", baseline ? "baseline" : "stable"}});
    req.mutable_policy()->mutable_canary()->mutable_steps(1)->mutable_analysis()->mutable_judge()
        ->set_min_samples(200);
    req.mutable_policy()->mutable_canary()->set_baseline(baseline);
    const std::string what =
        baseline ? "hostd: judged canary step against its baseline (20 %, judge min 200 samples)"
                 : "hostd: judged canary step (20 %, judge min 200 samples)";
    hosting::v1::Release rel;
    grpc::ClientContext ctx;
    grpc::Status st = releases_->StartRelease(&ctx, req, &rel);
    if (!st.ok()) return {what, 0, 0, 0, st.error_message()};
    hosting::v1::AnalysisResult step;
    absl::Status decided = WaitFor(
        [&] {
          const hosting::v1::Release r = Get(rel.id());
          for (const auto& x : r.analyses()) {
            if (x.kind() == "step" && x.verdict() != hosting::v1::ANALYSIS_VERDICT_RUNNING &&
                x.verdict() != hosting::v1::ANALYSIS_VERDICT_UNSPECIFIED) {
              step = x;
              return true;
            }
          }
          return r.state() >= hosting::v1::RELEASE_STATE_SUCCEEDED;
        },
        absl::Minutes(2), "the judged step", absl::Milliseconds(50));
    absl::Status ended =
        WaitFor([&] { return Get(rel.id()).state() >= hosting::v1::RELEASE_STATE_SUCCEEDED; },
                absl::Minutes(2),
                "the release", absl::Milliseconds(100));
    load.Stop();
    const hosting::v1::Release done = Get(rel.id());
    const double took =
        TimeUtil::DurationToMilliseconds(step.finished_at() - step.started_at()) / 1000.0;
    const double canary = step.samples().canary().requests();
    const double needed = canary > 0 ? 200 * took / canary : 0;
    return {what, took, load.total(), load.failed(),
            absl::StrFormat("%s, score %.0f; canary %.0f requests over the step: 200 took %.2f s "
                            "(decided %.2f s after; agents report every 0.1 s while a release analyses, "
                            "each report wakes the release loop; release tick 0.25 s); "
                            "compared with revision %d%s; whole release %.1f s%s%s",
                            hosting::v1::AnalysisVerdict_Name(step.verdict()), step.score(), canary,
                            needed, took - needed, step.compared_revision(),
                            step.baseline() ? " (baseline)" : "",
                            TimeUtil::DurationToMilliseconds(done.finished_at() -
                                                             done.started_at()) / 1000.0,
                            decided.ok() ? "" : "; " + decided.ToString(),
                            ended.ok() ? "" : "; " + ended.ToString())};
  }

  void set_current_image(std::string image) { current_image_ = std::move(image); }
  std::string Url(const std::string& backend, const std::string& path) {
    return haproxy_->url(backend, path);
  }

  // The local cluster's /24 (scripts/cluster-lib.sh).
  static std::string ClusterNet() {
    const char* net = std::getenv("HOSTING_CLUSTER_NET");
    return net != nullptr ? net : "192.168.77";
  }

  // A spec file for hostctl -f.
  std::string SpecFile(const std::string& name, std::map<std::string, std::string> extra) {
    hosting::v1::ServiceSpec spec = Spec(std::move(extra));
    spec.set_image(current_image_);
    std::string json;
    google::protobuf::util::JsonPrintOptions o;
    o.preserve_proto_field_names = true;
    (void)google::protobuf::util::MessageToJsonString(spec, &json, o);
    const std::string path = dir_ + "/" + name + ".json";
    std::ofstream(path) << json;
    return path;
  }

 private:
  // Swarm's service gets the same environment as hostd's.
  std::map<std::string, std::string> Env() {
    hosting::v1::ServiceSpec spec = Spec({});
    return {spec.env().begin(), spec.env().end()};
  }

  hosting::v1::ServiceSpec Spec(std::map<std::string, std::string> extra) {
    hosting::v1::ServiceSpec spec = AppsvcServiceSpec("bench-hostd", n_, gateway_, datastores_, extra);
    spec.mutable_health()->mutable_timeout()->set_seconds(HealthTimeoutSeconds());
    spec.mutable_health()->mutable_interval()->set_seconds(HealthTimeoutSeconds());
    return spec;
  }

 public:
  // Docker's exec health check timeout and interval, for both services
  // (HOSTING_BENCH_HEALTH_TIMEOUT, seconds; default 1). Three engines on two cores (the local cluster) make a 1 s exec time
  // out under load, and Swarm then replaces healthy tasks, whoever runs the release.
  static int HealthTimeoutSeconds() {
    const char* s = std::getenv("HOSTING_BENCH_HEALTH_TIMEOUT");
    return s != nullptr && std::atoi(s) > 0 ? std::atoi(s) : 1;
  }

 private:

  int Up(const std::string& backend) {
    controlplane::HaproxyLoadBalancer lb(haproxy_->socket());
    absl::StatusOr<std::string> stat = lb.Execute(absl::StrCat("show stat ", backend, " 4 -1"));
    if (!stat.ok()) return -1;
    int up = 0;
    for (absl::string_view line : absl::StrSplit(*stat, '\n')) {
      std::vector<absl::string_view> f = absl::StrSplit(line, ',');
      if (f.size() > 18 && f[0] == backend && (f[17] == "UP" || f[17] == "no check") &&
          f[18] != "0") {
        ++up;
      }
    }
    return up;
  }

  hosting::v1::Release Get(const std::string& id) { return GetRelease(*releases_, id); }

  const int n_;
  std::string dir_, gateway_, current_image_ = "hosting/appsvc:dev";
  Datastores datastores_;
  std::unique_ptr<HaproxyContainer> haproxy_;
  std::unique_ptr<HostdProcess> hostd_;
  std::vector<std::unique_ptr<AgentProcess>> agents_;
  // Nodes of the local cluster the bench runs on (0: this machine's engine).
  int cluster_nodes_ = 0;
  std::unique_ptr<hosting::v1::ServiceManager::Stub> services_;
  std::unique_ptr<hosting::v1::Releases::Stub> releases_;
};

void Print(const Result& r) {
  std::printf("| %s | %.1f s | %lld | %lld | %s |\n", r.what.c_str(), r.seconds,
              static_cast<long long>(r.requests), static_cast<long long>(r.failed),
              r.note.c_str());
  std::fflush(stdout);
}

}  // namespace
}  // namespace hosting::testing

int main(int argc, char** argv) {
  using namespace hosting::testing;
  const int n = Replicas(argc, argv);
  Bench bench(n);
  if (absl::Status st = bench.Setup(); !st.ok()) {
    bench.Teardown();
    Die(st);
  }
  std::printf("%d replicas of appsvc, %d s health checks, 4 keep-alive clients through HAProxy%s\n\n", n,
              Bench::HealthTimeoutSeconds(),
              std::getenv("HOSTING_CLUSTER_NODES") != nullptr ? ", on the local cluster" : "");
  std::printf("| run | time | requests | failed | note |\n| --- | --- | --- | --- | --- |\n");
  const Result swarm_good = bench.SwarmGood();
  Print(swarm_good);
  const Result hostd_default = bench.HostdRelease("hostd: rolling, defaults (surge sized by the nodes' memory)",
                                                  "--image hosting/appsvc:v2", 0);
  Print(hostd_default);
  const Result hostd_fast = bench.HostdRelease(
      "hostd: rolling, surge 100%", "--image hosting/appsvc:v3 --max-surge 100%", 0);
  Print(hostd_fast);
  bench.set_current_image("hosting/appsvc:v3");
  const Result swarm_bad = bench.SwarmBad();
  Print(swarm_bad);
  const Result hostd_bad = bench.HostdRelease(
      "hostd: health never passes -> rolled back",
      absl::StrCat("-f ", bench.SpecFile("bad", {{"FAULT_HEALTH_FAIL", "true"}})), 10);
  Print(hostd_bad);
  const Result to_stable = bench.AnalysisToStable();
  Print(to_stable);
  Print(bench.JudgedCanary(/*baseline=*/false));
  Print(bench.JudgedCanary(/*baseline=*/true));
  std::printf("\nratios: good release hostd/Swarm %.2f (defaults) %.2f (surge 100%%); "
              "bad version rolled back hostd/Swarm %.2f\n",
              hostd_default.seconds / swarm_good.seconds, hostd_fast.seconds / swarm_good.seconds,
              hostd_bad.seconds / swarm_bad.seconds);
  bench.Teardown();
  return 0;
}
