// The local stack (deploy/compose/compose.yaml, scripts/stack.sh) brought up from nothing as a
// user does, on its own project name, network and free loopback ports, then used from the
// outside: requests through HAProxy -> nginx -> appsvc x3, the replica reading the primary's
// writes, Prometheus scraping every part, and an alert that fires when the replica stops.
// Needs the images (scripts/images.sh) and docker-compose (scripts/install-deps.sh).
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <set>
#include <sstream>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/integration/harness.h"

namespace hosting::testing {
namespace {

using json = nlohmann::json;

// The value of response header `name` (case-insensitive), "" when absent.
std::string Header(const HttpResult& r, const std::string& name) {
  std::istringstream in(r.headers);
  std::string line;
  while (std::getline(in, line)) {
    const size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    if (absl::EqualsIgnoreCase(line.substr(0, colon), name)) {
      return std::string(absl::StripAsciiWhitespace(line.substr(colon + 1)));
    }
  }
  return "";
}

class StackTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    absl::Status docker = CheckDockerSwarm();
    ASSERT_TRUE(docker.ok()) << docker;
    dir_ = new std::string(MakeTempDir("hosting-stack-"));
    project_ = new std::string(absl::StrCat("hostingit", getpid()));
    http_port_ = FreePort();
    prometheus_port_ = FreePort();
    alertmanager_port_ = FreePort();
    // The example settings with the test's passwords, ports and network.
    std::ifstream in(SourceDir() + "/deploy/compose/.env.example");
    std::ofstream out(*dir_ + "/stack.env");
    std::string line;
    while (std::getline(in, line)) {
      if (absl::EndsWith(line, "=generate")) {
        line = absl::StrCat(absl::StripSuffix(line, "generate"), "it", getpid(), FreePort());
      } else if (absl::StartsWith(line, "HTTP_PORT=")) {
        line = absl::StrCat("HTTP_PORT=", http_port_);
      } else if (absl::StartsWith(line, "HAPROXY_STATS_PORT=")) {
        line = absl::StrCat("HAPROXY_STATS_PORT=", FreePort());
      } else if (absl::StartsWith(line, "PROMETHEUS_PORT=")) {
        line = absl::StrCat("PROMETHEUS_PORT=", prometheus_port_);
      } else if (absl::StartsWith(line, "ALERTMANAGER_PORT=")) {
        line = absl::StrCat("ALERTMANAGER_PORT=", alertmanager_port_);
      } else if (absl::StartsWith(line, "STACK_APP_PREFIX=")) {
        // Not the default's networks: a user's stack may be up on this machine.
        line = "STACK_APP_PREFIX=10.232.1";
      } else if (absl::StartsWith(line, "STACK_DATA_SUBNET=")) {
        line = "STACK_DATA_SUBNET=10.232.2.0/24";
      }
      out << line << "\n";
    }
    out.close();
    CommandResult up = Stack("up --no-build");
    ASSERT_EQ(up.exit_code, 0) << up.output;
  }

  static void TearDownTestSuite() {
    if (dir_ == nullptr) return;
    CommandResult down = Stack("down --volumes");
    EXPECT_EQ(down.exit_code, 0) << down.output;
    Shell("rm -rf " + *dir_);
    delete dir_;
    delete project_;
    dir_ = nullptr;
  }

  static CommandResult Stack(const std::string& args) {
    return Shell(absl::StrCat("STACK_ENV_FILE=", *dir_, "/stack.env STACK_PROJECT=", *project_,
                              " STACK_WAIT_S=180 ", SourceDir(), "/scripts/stack.sh ", args,
                              " 2>&1"));
  }

  // The container of a service of the stack.
  static std::string Container(const std::string& service) {
    CommandResult r = Shell(absl::StrCat(
        "docker ps -aq --filter label=com.docker.compose.project=", *project_,
        " --filter label=com.docker.compose.service=", service));
    return std::string(absl::StripAsciiWhitespace(r.output));
  }

  static std::string Front(const std::string& path) {
    return absl::StrCat("http://127.0.0.1:", http_port_, path);
  }

  // A PromQL query's result vector; empty when Prometheus does not answer.
  static json Query(const std::string& promql) {
    return json::parse(
        PrometheusQuery(absl::StrCat("http://127.0.0.1:", prometheus_port_), promql));
  }

  // Creates a user through the front door; its id, or -1.
  static int CreateUser(const std::string& name, const std::string& email) {
    HttpResult r = Http("POST", Front("/api/users"),
                        json{{"name", name}, {"email", email}}.dump());
    EXPECT_EQ(r.status, 201) << r.body << r.error;
    json j = json::parse(r.body, nullptr, false);
    return j.is_discarded() || !j.contains("id") ? -1 : j["id"].get<int>();
  }

  // A value read on the replica with psql, "" when it does not answer.
  static std::string OnReplica(const std::string& sql) {
    CommandResult r = Shell(absl::StrCat("docker exec ", Container("postgres-replica"),
                                         " runuser -u postgres -- psql -d app -Atqc \"", sql,
                                         "\" 2>/dev/null"));
    return r.exit_code == 0 ? std::string(absl::StripAsciiWhitespace(r.output)) : "";
  }

  static std::string* dir_;
  static std::string* project_;
  static int http_port_;
  static int prometheus_port_;
  static int alertmanager_port_;
};

std::string* StackTest::dir_ = nullptr;
std::string* StackTest::project_ = nullptr;
int StackTest::http_port_ = 0;
int StackTest::prometheus_port_ = 0;
int StackTest::alertmanager_port_ = 0;

TEST_F(StackTest, ReadsAndWritesGoThroughHaproxyNginxAndThreeReplicas) {
  const std::string email = absl::StrCat("ada-", getpid(), "@example.com");
  const int id = CreateUser("Ada", email);
  ASSERT_GT(id, 0);
  HttpResult get = Http("GET", Front(absl::StrCat("/api/users/", id)));
  EXPECT_EQ(get.status, 200) << get.body;
  EXPECT_TRUE(absl::StrContains(get.body, email)) << get.body;
  // nginx answered (HAProxy passes its Server header on), and appsvc behind it (its id).
  EXPECT_EQ(Header(get, "Server"), "nginx") << get.headers;
  EXPECT_FALSE(Header(get, "X-Request-Id").empty()) << get.headers;
  // A duplicate is refused by the application, through the whole chain.
  HttpResult dup = Http("POST", Front("/api/users"),
                        json{{"name", "Ada"}, {"email", email}}.dump());
  EXPECT_EQ(dup.status, 409) << dup.body;
  // Least-connections over three replicas: sequential requests reach every one (past nginx's
  // micro-cache, which would answer them all from the first).
  std::set<std::string> hosts;
  for (int i = 0; i < 12; ++i) {
    HttpResult v = Http("GET", Front("/api/version"), "", "", {"Cache-Control: no-cache"});
    json j = json::parse(v.body, nullptr, false);
    if (!j.is_discarded() && j.contains("hostname")) hosts.insert(j["hostname"].get<std::string>());
  }
  EXPECT_EQ(hosts.size(), 3u) << "replicas that answered /api/version";
  // /health reaches the application, not a proxy.
  HttpResult health = Http("GET", Front("/health"));
  EXPECT_EQ(health.status, 200);
  EXPECT_TRUE(absl::StrContains(health.body, "\"hostname\"")) << health.body;
}

TEST_F(StackTest, NginxMicroCachesGetsGzipsAndLetsWritesThrough) {
  for (int i = 0; i < 8; ++i) {
    ASSERT_GT(CreateUser(absl::StrCat("User ", i), absl::StrCat("u", i, "-", getpid(), "@example.com")), 0);
  }
  // Two GETs within the second: the second is nginx's (HIT), unless the first was the one
  // that refreshed; a few tries find a HIT.
  bool hit = false;
  for (int i = 0; i < 10 && !hit; ++i) {
    hit = Header(Http("GET", Front("/api/users")), "X-Cache") == "HIT";
  }
  EXPECT_TRUE(hit) << "no micro-cache HIT for GET /api/users";
  HttpResult bypass = Http("GET", Front("/api/users"), "", "", {"Cache-Control: no-cache"});
  EXPECT_EQ(bypass.status, 200);
  EXPECT_EQ(Header(bypass, "X-Cache"), "BYPASS") << bypass.headers;
  // A write passes straight through, and the list shows it once the entry (1 s) expired.
  const std::string email = absl::StrCat("late-", getpid(), "@example.com");
  HttpResult post = Http("POST", Front("/api/users"), json{{"name", "Late"}, {"email", email}}.dump());
  EXPECT_EQ(post.status, 201);
  EXPECT_EQ(Header(post, "X-Cache"), "") << "a POST is never cached: " << post.headers;
  absl::Status seen = WaitFor(
      [&] { return absl::StrContains(Http("GET", Front("/api/users")).body, email); },
      absl::Seconds(5), "the new user in GET /api/users", absl::Milliseconds(200));
  EXPECT_TRUE(seen.ok()) << seen;
  HttpResult gz = Http("GET", Front("/api/users"), "", "", {"Accept-Encoding: gzip"});
  EXPECT_EQ(gz.status, 200);
  EXPECT_EQ(Header(gz, "Content-Encoding"), "gzip") << gz.headers;
}

TEST_F(StackTest, AWriteOnThePrimaryIsReadOnTheReplica) {
  EXPECT_EQ(OnReplica("SELECT pg_is_in_recovery()"), "t");
  const std::string email = absl::StrCat("grace-", getpid(), "@example.com");
  ASSERT_GT(CreateUser("Grace", email), 0);
  absl::Status st = WaitFor(
      [&] { return OnReplica("SELECT name FROM users WHERE email = '" + email + "'") == "Grace"; },
      absl::Seconds(10), "the primary's write on the replica", absl::Milliseconds(200));
  EXPECT_TRUE(st.ok()) << st;
}

TEST_F(StackTest, PrometheusScrapesEveryPartAndExportsReplication) {
  std::string down;
  absl::Status st = WaitFor(
      [&] {
        HttpResult r = Http("GET", absl::StrCat("http://127.0.0.1:", prometheus_port_,
                                                "/api/v1/targets?state=active"));
        json j = json::parse(r.body, nullptr, false);
        if (j.is_discarded()) return false;
        down.clear();
        int up = 0;
        for (const auto& t : j["data"]["activeTargets"]) {
          if (t["health"] == "up") {
            ++up;
          } else {
            absl::StrAppend(&down, t["labels"]["instance"].get<std::string>(), " (",
                            t["lastError"].get<std::string>(), ") ");
          }
        }
        return down.empty() && up == 11;
      },
      absl::Seconds(60), "every target up", absl::Milliseconds(500));
  EXPECT_TRUE(st.ok()) << st << ": " << down;
  // Replication, from both sides.
  json lag = Query("pg_replication_lag{role=\"replica\"}");
  ASSERT_EQ(lag.size(), 1u) << lag.dump();
  EXPECT_LT(std::stod(lag[0]["value"][1].get<std::string>()), 5);
  json receiving = Query("pg_replication_receiving{role=\"replica\"}");
  ASSERT_EQ(receiving.size(), 1u);
  EXPECT_EQ(receiving[0]["value"][1], "1");
  json slot = Query("pg_replication_slots_active{slot_name=\"replica1\"}");
  ASSERT_EQ(slot.size(), 1u);
  EXPECT_EQ(slot[0]["value"][1], "1");
  // Every rule evaluates without error.
  HttpResult rules = Http("GET", absl::StrCat("http://127.0.0.1:", prometheus_port_, "/api/v1/rules"));
  json j = json::parse(rules.body, nullptr, false);
  ASSERT_FALSE(j.is_discarded());
  int count = 0;
  for (const auto& g : j["data"]["groups"]) {
    for (const auto& r : g["rules"]) {
      ++count;
      EXPECT_EQ(r["health"], "ok") << r["name"] << ": " << r.value("lastError", "");
    }
  }
  EXPECT_GT(count, 20);
  // The console view for users without Grafana renders from the same Prometheus.
  HttpResult console = Http("GET", absl::StrCat("http://127.0.0.1:", prometheus_port_,
                                                "/consoles/hosting.html"));
  EXPECT_EQ(console.status, 200) << console.body;
  EXPECT_TRUE(absl::StrContains(console.body, "<td>appsvc</td><td>3</td><td>3</td>"))
      << console.body;
  EXPECT_TRUE(absl::StrContains(console.body, "replica (postgres-exporter-replica:9187)"))
      << console.body;
  // A healthy stack fires nothing.
  EXPECT_TRUE(Query("ALERTS{alertstate=\"firing\"}").empty()) << Query("ALERTS").dump();
}

// Every query of the dashboards (deploy/grafana/dashboards) returns data from this stack's
// Prometheus, with Grafana's interval variables put in. The control plane's dashboard is left
// out: hostd is not part of the local stack.
TEST_F(StackTest, EveryDashboardQueryReturnsData) {
  // Rates over 1 m need samples of traffic inside it.
  for (int i = 0; i < 20; ++i) Http("GET", Front("/api/users"));
  absl::SleepFor(absl::Seconds(12));
  int checked = 0;
  for (const char* name : {"platform-overview", "appsvc", "datastores"}) {
    for (const std::string& empty : DashboardQueriesWithoutData(
             absl::StrCat("http://127.0.0.1:", prometheus_port_), name, &checked)) {
      ADD_FAILURE() << name << " / " << empty << ": no data";
    }
  }
  EXPECT_GT(checked, 40);
}

// The four load scenarios, short (10 s each), through the whole stack: each prints its row and
// fails at 1 % errors or more (connection, timeout or HTTP >= 400; the k6 scripts' threshold).
TEST_F(StackTest, LoadScenariosRunThroughTheStackUnderOnePercentErrors) {
  CommandResult r = Shell(absl::StrCat(SourceDir(), "/tests/load/scenarios.sh --short --url ",
                                       Front(""), " 2>&1"));
  std::printf("%s", r.output.c_str());
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(absl::StrContains(r.output, "soak")) << r.output;
}

// Last: it stops a part. The replica stopped: reads go on (appsvc falls back to the primary),
// PostgresDown fires for it in Prometheus and reaches Alertmanager, and once it is started
// again it catches up through its slot.
TEST_F(StackTest, TheReplicaStoppedFiresAnAlertAndReadsGoOn) {
  const int id = CreateUser("Before", absl::StrCat("before-", getpid(), "@example.com"));
  ASSERT_GT(id, 0);
  const std::string replica = Container("postgres-replica");
  ASSERT_FALSE(replica.empty());
  ASSERT_EQ(Shell("docker stop " + replica).exit_code, 0);
  for (int i = 0; i < 20; ++i) {
    HttpResult r = Http("GET", Front(absl::StrCat("/api/users/", id)), "", "",
                        {"Cache-Control: no-cache"});
    EXPECT_EQ(r.status, 200) << r.body;
  }
  absl::Status st = WaitFor(
      [] { return !Query("ALERTS{alertname=\"PostgresDown\",role=\"replica\",alertstate=\"firing\"}").empty(); },
      absl::Seconds(150), "PostgresDown firing for the replica", absl::Seconds(1));
  EXPECT_TRUE(st.ok()) << st << "; alerts: " << Query("ALERTS").dump();
  st = WaitFor(
      [] {
        HttpResult r = Http("GET", absl::StrCat("http://127.0.0.1:", alertmanager_port_,
                                                "/api/v2/alerts?filter=alertname%3D%22PostgresDown%22"));
        json j = json::parse(r.body, nullptr, false);
        return !j.is_discarded() && j.is_array() && !j.empty();
      },
      absl::Seconds(30), "PostgresDown in Alertmanager", absl::Seconds(1));
  EXPECT_TRUE(st.ok()) << st;
  // Writes go on meanwhile (the primary), and the replica catches up when it is back.
  const std::string email = absl::StrCat("during-", getpid(), "@example.com");
  ASSERT_GT(CreateUser("During", email), 0);
  ASSERT_EQ(Shell("docker start " + replica).exit_code, 0);
  CommandResult wait = Stack("wait");
  EXPECT_EQ(wait.exit_code, 0) << wait.output;
  st = WaitFor(
      [&] { return OnReplica("SELECT name FROM users WHERE email = '" + email + "'") == "During"; },
      absl::Seconds(30), "the write made while it was down, on the replica", absl::Milliseconds(500));
  EXPECT_TRUE(st.ok()) << st;
}

}  // namespace
}  // namespace hosting::testing
