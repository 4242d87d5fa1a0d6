#include "platform.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/status_macros.h"
#include "curl/curl.h"

namespace hosting::testing {

ServicePlatform::ServicePlatform(std::string prefix, std::vector<std::string> services,
                                 std::vector<std::string> extra_backends,
                                 std::vector<std::string> hostd_flags)
    : prefix(std::move(prefix)), services(std::move(services)),
      extra_backends(std::move(extra_backends)), hostd_flags(std::move(hostd_flags)) {}

absl::Status ServicePlatform::Start() {
  RETURN_IF_ERROR(CheckDockerSwarm());
  for (const auto& s : services) RETURN_IF_ERROR(RemoveSwarmServicesOf(s));  // left by an interrupted run
  // "v2": the same build under another reference, i.e. a new revision.
  if (Shell("docker tag hosting/appsvc:dev hosting/appsvc:v2").exit_code != 0) {
    return absl::FailedPreconditionError("no hosting/appsvc:dev image: run scripts/images.sh");
  }
  dir = MakeTempDir(prefix);
  chmod(dir.c_str(), 0755);  // restored PostgreSQL servers run as the postgres user
  gateway = DockerGatewayAddress();
  if (gateway.empty()) return absl::UnavailableError("no docker_gwbridge gateway address");
  datastores = std::make_unique<Datastores>();
  RETURN_IF_ERROR(datastores->Start(gateway));
  std::vector<HaproxyContainer::Backend> backends;
  for (const auto& s : services) {
    backends.push_back({s, "", std::find(holding.begin(), holding.end(), s) != holding.end()});
  }
  for (const auto& b : extra_backends) backends.push_back({b, ""});
  haproxy = std::make_unique<HaproxyContainer>(dir, backends);
  haproxy->SetHoldMs(20000);  // only the holding frontends hold
  RETURN_IF_ERROR(haproxy->Start());
  socket = haproxy->socket();
  for (const auto& b : backends) ports[b.name] = haproxy->port(b.name);

  // Prometheus scrapes hostd's /metrics (the agents' per-revision aggregates) for PromQL
  // checks and metrics, and the agent's (per-task CPU and memory).
  const int prom_port = FreePort();
  std::vector<std::string> flags = {
      "--haproxy", socket, "--prometheus", absl::StrCat("http://127.0.0.1:", prom_port),
      // The migrate runbook's backup comes from the replica; restores go beside it.
      "--backup-repository=" + dir + "/backups", "--restore-root=" + dir + "/restores",
      absl::StrCat("--backup-database=host=127.0.0.1 port=", datastores->replica_port(),
                   " user=postgres")};
  flags.insert(flags.end(), hostd_flags.begin(), hostd_flags.end());
  hostd = std::make_unique<HostdProcess>(dir + "/hostd", std::move(flags));
  agent = std::make_unique<AgentProcess>(hostd->address(), dir + "/agent.log", "1s");
  prometheus = std::make_unique<PrometheusProcess>(
      dir + "/prometheus",
      std::vector<std::string>{hostd->metrics_address(), agent->metrics_address()}, prom_port);
  RETURN_IF_ERROR(prometheus->Start());
  RETURN_IF_ERROR(hostd->Start());
  return agent->Start();
}

void ServicePlatform::Stop() {
  if (agent) agent->Stop();
  if (hostd) hostd->Stop();
  if (prometheus) prometheus->Stop();
  for (const auto& s : services) {
    if (absl::Status gone = RemoveSwarmServicesOf(s); !gone.ok()) {
      ADD_FAILURE() << "teardown: " << gone;
    }
  }
  if (haproxy) haproxy->Stop();
  // Servers the restore runbook started.
  Shell("for d in " + dir + "/restores/*/; do [ -f \"$d/postmaster.pid\" ] && runuser -u "
        "postgres -- /usr/lib/postgresql/15/bin/pg_ctl -D \"$d\" -m immediate -w stop; done; "
        "true");
  if (datastores) datastores->Stop();
}

hosting::v1::ServiceSpec ServicePlatform::Spec(const std::string& name, int replicas,
                                               std::map<std::string, std::string> extra_env) const {
  return AppsvcServiceSpec(name, replicas, gateway, *datastores, extra_env);
}

std::string ServicePlatform::Url(const std::string& service, const std::string& path) const {
  return absl::StrCat("http://127.0.0.1:", ports.at(service), path);
}

int ServicePlatform::ReadyServers(const std::string& backend) const {
  return HaproxyReadyServers(socket, backend);
}

absl::Status ServicePlatform::Deploy(hosting::v1::ServiceManager::Stub& stub,
                                     const hosting::v1::ServiceSpec& spec) const {
  grpc::ClientContext ctx;
  hosting::v1::ApplyServiceRequest req;
  *req.mutable_spec() = spec;
  hosting::v1::ApplyServiceResponse resp;
  grpc::Status st = stub.ApplyService(&ctx, req, &resp);
  if (!st.ok()) return absl::InternalError(absl::StrCat("apply: ", st.error_message()));
  const int want = resp.service().spec().replicas();
  RETURN_IF_ERROR(WaitFor([&] { return ReadyServers(spec.name()) == want; }, absl::Seconds(90),
                          "every task of " + spec.name() + " in HAProxy",
                          absl::Milliseconds(200)));
  HttpResult created = Http("POST", Url(spec.name(), "/api/users"),
                            R"({"name":"Ada","email":"ada@example.com"})");
  if (created.status != 201 && created.status != 409) {
    return absl::InternalError(absl::StrCat("POST /api/users: ", created.status, " ", created.body));
  }
  HttpResult got = Http("GET", Url(spec.name(), "/api/users/1"));
  if (got.status != 200) {
    return absl::InternalError(absl::StrCat("GET /api/users/1: ", got.status, " ", got.body));
  }
  // appsvc's tasks reach Redis too (they once did not: Redis refused them in protected mode,
  // and appsvc served, degraded, from PostgreSQL alone).
  if (!spec.env().contains("REDIS_HOST")) return absl::OkStatus();
  HttpResult health;
  absl::Status cached = WaitFor(
      [&] {
        health = Http("GET", Url(spec.name(), "/ready"));
        return absl::StrContains(health.body, R"("redis":"connected")");
      },
      absl::Seconds(15), "the tasks to report Redis connected", absl::Milliseconds(200));
  if (!cached.ok()) return absl::InternalError(absl::StrCat(cached.message(), ": ", health.body));
  return absl::OkStatus();
}

ServicePlatform* platform = nullptr;

void PlatformTest::StartPlatform(std::string prefix, std::vector<std::string> services,
                                 std::vector<std::string> extra_backends,
                                 std::vector<std::string> hostd_flags,
                                 std::vector<std::string> holding) {
  curl_global_init(CURL_GLOBAL_DEFAULT);
  platform = new ServicePlatform(std::move(prefix), std::move(services), std::move(extra_backends),
                                 std::move(hostd_flags));
  platform->holding = std::move(holding);
  platform->status = platform->Start();
}

void PlatformTest::StopPlatform() {
  platform->Stop();
  delete platform;
  platform = nullptr;
}

void PlatformTest::SetUp() {
  // In CI a missing part is a failure, never a skip.
  ASSERT_TRUE(platform->status.ok()) << platform->status;
  channel_ = platform->hostd->channel();
  services_ = hosting::v1::ServiceManager::NewStub(channel_);
  releases_ = hosting::v1::Releases::NewStub(channel_);
}

void PlatformTest::TearDown() {
  if (!platform->status.ok()) return;
  for (const auto& s : platform->services) {
    grpc::ClientContext ctx;
    hosting::v1::DeleteServiceRequest req;
    req.set_name(s);
    hosting::v1::DeleteServiceResponse resp;
    services_->DeleteService(&ctx, req, &resp);
  }
}

}  // namespace hosting::testing
