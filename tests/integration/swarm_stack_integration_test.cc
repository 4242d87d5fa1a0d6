// The production Swarm stack (deploy/swarm/stack.yml, scripts/swarm-stack.sh) deployed on this
// machine's Swarm with its own name, secrets and ports; then hostd, on the stack's HAProxy,
// runs appsvc against the stack's PostgreSQL and Redis and releases it under load. Checks, from
// outside: the stack converges (the replica streaming), Prometheus scrapes every part of it and
// finds hostd's appsvc tasks by Swarm service discovery, the release loses no request, and HTTPS
// presents the default certificate from its Swarm secret.
#include <unistd.h>

#include <memory>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "grpcpp/grpcpp.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "hosting/v1/releases.grpc.pb.h"
#include "hosting/v1/service.grpc.pb.h"
#include "nlohmann/json.hpp"
#include "tests/integration/harness.h"

namespace hosting::testing {
namespace {

using json = nlohmann::json;
using ::testing::HasSubstr;
using ::testing::Not;

// The service name the platform's HAProxy configuration has a backend and frontend for.
constexpr char kService[] = "web";

class SwarmStackTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    absl::Status docker = CheckDockerSwarm();
    ASSERT_TRUE(docker.ok()) << docker;
    dir_ = new std::string(MakeTempDir("hosting-swarm-stack-"));
    stack_ = new std::string(absl::StrCat("hsit", getpid()));
    app_password_ = new std::string(absl::StrCat("app-", getpid(), "-", FreePort()));
    redis_password_ = new std::string(absl::StrCat("redis-", getpid(), "-", FreePort()));
    http_port_ = FreePort();
    prometheus_port_ = FreePort();
    https_port_ = FreePort();
    // The test's own secrets, with values it knows (it checks that no spec, event or log of
    // hostd shows them).
    const std::pair<const char*, std::string> secrets[] = {
        {"pg_superuser", absl::StrCat("su-", getpid(), "-", FreePort())},
        {"pg_app", *app_password_},
        {"pg_replication", absl::StrCat("repl-", getpid(), "-", FreePort())},
        {"redis", *redis_password_}};
    for (const auto& [name, value] : secrets) {
      CommandResult r = Shell(absl::StrCat("printf %s '", value, "' | docker secret create ",
                                           *stack_, "_", name, " - 2>&1"));
      ASSERT_EQ(r.exit_code, 0) << r.output;
    }
    CommandResult up = StackScript("up --no-build");
    ASSERT_EQ(up.exit_code, 0) << up.output;
    hostd_ = new HostdProcess(*dir_ + "/hostd", {"--haproxy=" + *dir_ + "/haproxy/admin.sock"});
    absl::Status st = hostd_->Start();
    ASSERT_TRUE(st.ok()) << st;
    agent_ = new AgentProcess(hostd_->address(), *dir_ + "/agent.log");
    st = agent_->Start();
    ASSERT_TRUE(st.ok()) << st;
  }

  static void TearDownTestSuite() {
    if (dir_ == nullptr) return;
    if (hostd_ != nullptr) DeleteHostedService(hostd_->channel(), kService);
    delete agent_;
    delete hostd_;
    EXPECT_EQ(RemoveSwarmServicesOf(kService), absl::OkStatus());
    CommandResult down = StackScript("down --volumes");
    EXPECT_EQ(down.exit_code, 0) << down.output;
    Shell(absl::StrCat("docker secret rm ", *stack_, "_pg_superuser ", *stack_, "_pg_app ",
                       *stack_, "_pg_replication ", *stack_, "_redis ", *stack_,
                       "_tls >/dev/null 2>&1"));
    Shell("rm -rf " + *dir_);
    delete dir_;
    dir_ = nullptr;
  }

  static CommandResult StackScript(const std::string& args) {
    return Shell(absl::StrCat(
        "SWARM_STACK=", *stack_, " SECRET_PREFIX=", *stack_, " HAPROXY_RUN_DIR=", *dir_,
        "/haproxy TLS_DIR=", *dir_, "/tls TLS_NAME=swarm.example.test HTTP_PORT=", http_port_,
        " HTTPS_PORT=", https_port_, " PREVIEW_PORT=", FreePort(),
        " HAPROXY_STATS_PORT=", FreePort(), " PROMETHEUS_PORT=", prometheus_port_,
        " ALERTMANAGER_PORT=", FreePort(), " SWARM_STACK_WAIT_S=240 ", SourceDir(),
        "/scripts/swarm-stack.sh ", args, " 2>&1"));
  }

  static std::string Socket() { return *dir_ + "/haproxy/admin.sock"; }

  // appsvc on the stack's PostgreSQL and Redis, as service kService.
  static hosting::v1::ServiceSpec WebSpec() {
    hosting::v1::ServiceSpec spec = AppsvcSpec(
        kService, 2,
        {{"DB_HOST", "postgres-primary"},
         {"DB_PORT", "5432"},
         {"DB_NAME", "app"},
         {"DB_USER", "app"},
         {"DB_PASSWORD_FILE", "/run/secrets/db_password"},
         {"DB_REPLICA_HOST", "postgres-replica"},
         {"DB_REPLICA_PORT", "5432"},
         {"REDIS_HOST", "redis"},
         {"REDIS_PORT", "6379"},
         {"REDIS_PASSWORD_FILE", "/run/secrets/redis_password"}});
    // The passwords are the stack's own Swarm secrets, mounted as files: never in the spec.
    hosting::v1::SecretMount* db = spec.add_secrets();
    db->set_name(*stack_ + "_pg_app");
    db->set_target("db_password");
    hosting::v1::SecretMount* redis = spec.add_secrets();
    redis->set_name(*stack_ + "_redis");
    redis->set_target("redis_password");
    (*spec.mutable_labels())["prometheus.scrape"] = "true";
    (*spec.mutable_labels())["prometheus.port"] = "3000";
    (*spec.mutable_labels())["prometheus.job"] = "appsvc";
    return spec;
  }

  // Applies the spec and waits until HAProxy serves both its tasks.
  static absl::Status Deploy(const hosting::v1::ServiceSpec& spec) {
    auto services = hosting::v1::ServiceManager::NewStub(hostd_->channel());
    grpc::ClientContext ctx;
    hosting::v1::ApplyServiceRequest req;
    *req.mutable_spec() = spec;
    hosting::v1::ApplyServiceResponse resp;
    grpc::Status st = services->ApplyService(&ctx, req, &resp);
    if (!st.ok()) return absl::InternalError(st.error_message());
    return WaitFor([&] { return HaproxyReadyServers(Socket(), kService) == 2; },
                   absl::Seconds(120), "both appsvc tasks in the stack's HAProxy",
                   absl::Milliseconds(500));
  }

  static json Query(const std::string& promql) {
    return json::parse(
        PrometheusQuery(absl::StrCat("http://127.0.0.1:", prometheus_port_), promql));
  }

  // Targets of `job` that Prometheus scrapes successfully.
  static int UpTargets(const std::string& job) {
    json r = Query(absl::StrCat("up{job=\"", job, "\"} == 1"));
    return static_cast<int>(r.size());
  }

  static std::string* dir_;
  static std::string* stack_;
  static std::string* app_password_;
  static std::string* redis_password_;
  static int http_port_;
  static int prometheus_port_;
  static int https_port_;
  static HostdProcess* hostd_;
  static AgentProcess* agent_;
};

std::string* SwarmStackTest::dir_ = nullptr;
std::string* SwarmStackTest::stack_ = nullptr;
std::string* SwarmStackTest::app_password_ = nullptr;
std::string* SwarmStackTest::redis_password_ = nullptr;
int SwarmStackTest::http_port_ = 0;
int SwarmStackTest::prometheus_port_ = 0;
int SwarmStackTest::https_port_ = 0;
HostdProcess* SwarmStackTest::hostd_ = nullptr;
AgentProcess* SwarmStackTest::agent_ = nullptr;

// scripts/swarm-stack.sh made the secret PREFIX_tls (self-signed for TLS_NAME); HAProxy presents
// it on the HTTPS port, speaks HTTP/2 and sends HSTS; scripts/tls.sh sees it through the socket.
TEST_F(SwarmStackTest, HttpsPresentsTheCertificateFromItsSwarmSecret) {
  CommandResult secret = Shell(absl::StrCat("docker secret inspect ", *stack_, "_tls >/dev/null"));
  EXPECT_EQ(secret.exit_code, 0);
  CommandResult cert = Shell(absl::StrCat(
      "openssl s_client -connect 127.0.0.1:", https_port_, " -servername swarm.example.test"
      " </dev/null 2>/dev/null | openssl x509 -noout -subject"));
  EXPECT_TRUE(absl::StrContains(cert.output, "CN = swarm.example.test")) << cert.output;
  CommandResult h2 = Shell(absl::StrCat("curl -sk --http2 -o /dev/null -D - -w 'version=%{http_version}' "
                                        "https://127.0.0.1:", https_port_, "/"));
  EXPECT_TRUE(absl::StrContains(h2.output, "version=2")) << h2.output;
  EXPECT_TRUE(absl::StrContains(h2.output, "strict-transport-security")) << h2.output;
  CommandResult status = Shell(absl::StrCat("TLS_DIR=", *dir_, "/tls HAPROXY_SOCKET=", Socket(), " ",
                                            SourceDir(), "/scripts/tls.sh status 2>&1"));
  EXPECT_EQ(status.exit_code, 0) << status.output;
  EXPECT_TRUE(absl::StrContains(status.output, "/etc/hosting/tls/certs/tls-default.pem"))
      << status.output;
}

TEST_F(SwarmStackTest, ConvergesAndPrometheusScrapesEveryPart) {
  for (const char* job : {"prometheus", "alertmanager", "haproxy", "node", "redis"}) {
    absl::Status st = WaitFor([&] { return UpTargets(job) == 1; }, absl::Seconds(60),
                              absl::StrCat("job ", job, " up"), absl::Seconds(1));
    EXPECT_TRUE(st.ok()) << st;
  }
  absl::Status st = WaitFor([] { return UpTargets("postgres") == 2; }, absl::Seconds(60),
                            "both PostgreSQL exporters up", absl::Seconds(1));
  EXPECT_TRUE(st.ok()) << st;
  // The exporters' first scrape opens their connections; the replication series follow.
  st = WaitFor(
      [] {
        return Query("pg_replication_receiving{role=\"replica\"} == 1").size() == 1 &&
               Query("pg_replication_slots_active{slot_name=\"replica1\"} == 1").size() == 1;
      },
      absl::Seconds(60), "the replica streaming through its slot, in Prometheus", absl::Seconds(1));
  EXPECT_TRUE(st.ok()) << st << ": " << Query("pg_replication_receiving").dump();
}

TEST_F(SwarmStackTest, HostdReleasesAppsvcBehindItWithNoFailedRequest) {
  const hosting::v1::ServiceSpec spec = WebSpec();
  ASSERT_EQ(Deploy(spec), absl::OkStatus());
  const std::string front = absl::StrCat("http://127.0.0.1:", http_port_);
  absl::Status st;
  // A write on the stack's primary through the stack's front door, read back.
  HttpResult post = Http("POST", front + "/api/users",
                         json{{"name", "Swarm"}, {"email", absl::StrCat("swarm-", getpid(), "@example.com")}}.dump());
  ASSERT_EQ(post.status, 201) << post.body << post.error;
  const int id = json::parse(post.body)["id"].get<int>();
  HttpResult ready = Http("GET", front + "/ready");
  EXPECT_EQ(ready.status, 200) << ready.body;
  // The passwords reached the tasks as secret files only: not in hostd's answer, its log or
  // Docker's view of the service.
  {
    auto services = hosting::v1::ServiceManager::NewStub(hostd_->channel());
    grpc::ClientContext ctx;
    hosting::v1::GetServiceRequest req;
    req.set_name(kService);
    hosting::v1::Service got;
    ASSERT_TRUE(services->GetService(&ctx, req, &got).ok());
    const std::string inspect =
        Shell(absl::StrCat("docker service ls -q --filter label=hosting.service=", kService,
                           " | xargs docker service inspect 2>&1"))
            .output;
    EXPECT_THAT(inspect, HasSubstr("db_password"));
    const std::string log = Shell("cat " + hostd_->log_path()).output;
    for (const std::string* secret : {app_password_, redis_password_}) {
      EXPECT_THAT(got.DebugString(), Not(HasSubstr(*secret)));
      EXPECT_THAT(inspect, Not(HasSubstr(*secret)));
      EXPECT_THAT(log, Not(HasSubstr(*secret)));
    }
  }
  EXPECT_TRUE(absl::StrContains(ready.body, "\"replica\":\"connected\"")) << ready.body;
  EXPECT_TRUE(absl::StrContains(ready.body, "\"redis\":\"connected\"")) << ready.body;

  absl::StatusOr<LoadedRelease> r = RollingReleaseUnderLoad(
      hostd_->channel(), spec, "swarm-v2", absl::StrCat(front, "/api/users/", id), absl::Seconds(180));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->release.state(), hosting::v1::RELEASE_STATE_SUCCEEDED) << r->release.DebugString();
  EXPECT_EQ(r->failed, 0) << r->first_error;
  std::printf("[ measure ] rolling release behind the Swarm stack: %lld requests, %lld failed\n",
              static_cast<long long>(r->requests), static_cast<long long>(r->failed));
  // Prometheus finds the new revision's tasks through Swarm service discovery.
  st = WaitFor(
      [] {
        json up = Query("up{job=\"appsvc\",service=\"web\",revision=\"2\"} == 1");
        return up.size() == 2;
      },
      absl::Seconds(60), "the new revision's two tasks scraped as job appsvc", absl::Seconds(1));
  EXPECT_TRUE(st.ok()) << st << ": " << Query("up{job=\"appsvc\"}").dump();
}

// docs/operations/runbooks/08-platform-restart.md's commands, under reads and writes through
// the stack's HAProxy: every data store restarted by Swarm (writes held at HAProxy while the
// primary restarts), monitoring, appsvc by rolling restart, HAProxy reloaded. No request may
// fail; writes only wait.
TEST_F(SwarmStackTest, PlatformRestartRestartsEverythingUnderLoadWithNoFailedRequest) {
  if (HaproxyReadyServers(Socket(), kService) != 2) {
    ASSERT_EQ(Deploy(WebSpec()), absl::OkStatus());
  }
  const std::string front = absl::StrCat("http://127.0.0.1:", http_port_);
  HttpResult post = Http("POST", front + "/api/users",
                         json{{"name", "Restart"},
                              {"email", absl::StrCat("restart-", getpid(), "@example.com")}}
                             .dump());
  ASSERT_EQ(post.status, 201) << post.body << post.error;
  const int id = json::parse(post.body)["id"].get<int>();
  const std::string orders = absl::StrCat(front, "/api/users/", id, "/orders");
  const absl::Time start = absl::Now();
  HttpLoad reads(absl::StrCat(front, "/api/users/", id), 2, 0, "", absl::Seconds(30));
  HttpLoad order_reads(orders, 1, 0, "", absl::Seconds(30));
  HttpLoad writes(orders, 1, 20, R"({"total_amount": 3.5, "status": "pending"})",
                  absl::Seconds(30));
  absl::SleepFor(absl::Seconds(2));
  CommandResult doc = RunRunbookDocument(
      SourceDir() + "/docs/operations/runbooks/08-platform-restart.md", *dir_,
      {"HOSTING_SERVER=" + hostd_->address(), "HOSTING_STACK=" + *stack_});
  absl::SleepFor(absl::Seconds(2));
  reads.Stop();
  order_reads.Stop();
  writes.Stop();
  EXPECT_EQ(doc.exit_code, 0) << doc.output;
  for (absl::string_view line : absl::StrSplit(doc.output, '\n')) {
    if (absl::StrContains(line, " restarted ") || absl::StrContains(line, " reloaded in ")) {
      std::printf("[ measure ] %s\n", std::string(absl::StripLeadingAsciiWhitespace(line)).c_str());
    }
  }
  EXPECT_EQ(reads.failed() + order_reads.failed(), 0)
      << reads.first_error() << order_reads.first_error();
  EXPECT_EQ(writes.failed(), 0) << writes.first_error();
  EXPECT_GT(writes.ok(), 0);
  // Every write answered 201 is there, once. The listing is read on the replica, which may
  // still be replaying the last writes: wait for it to catch up, then it must match exactly.
  int64_t listed_orders = -1;
  std::string listed_body;
  absl::Status caught_up = WaitFor(
      [&] {
        HttpResult listed = Http("GET", orders);
        if (listed.status != 200) {
          listed_body = listed.body + listed.error;
          return false;
        }
        listed_orders = static_cast<int64_t>(json::parse(listed.body)["data"].size());
        return listed_orders >= writes.ok();
      },
      absl::Seconds(15), "the replica listing every acknowledged write", absl::Milliseconds(200));
  EXPECT_TRUE(caught_up.ok()) << caught_up << " " << listed_body;
  EXPECT_EQ(listed_orders, writes.ok());
  std::printf("[ measure ] platform restart under load (%s): %lld reads, %lld writes, %lld + %lld "
              "failed; longest read %s, longest write %s\n",
              absl::FormatDuration(absl::Trunc(absl::Now() - start, absl::Seconds(1))).c_str(),
              static_cast<long long>(reads.total() + order_reads.total()),
              static_cast<long long>(writes.total()),
              static_cast<long long>(reads.failed() + order_reads.failed()),
              static_cast<long long>(writes.failed()),
              absl::FormatDuration(std::max(reads.max_latency(), order_reads.max_latency())).c_str(),
              absl::FormatDuration(writes.max_latency()).c_str());
}

}  // namespace
}  // namespace hosting::testing
