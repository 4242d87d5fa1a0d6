// The local stack (deploy/compose/compose.yaml, scripts/stack.sh) brought up from nothing as a
// user does, on its own project name, network and free loopback ports, then used from the
// outside: requests through HAProxy -> nginx -> appsvc x3, the replica reading the primary's
// writes, Prometheus scraping every part, an alert that fires when the replica stops, and HTTPS
// at the front door: HTTP/2, HSTS, redirects, certificates issued and renewed over ACME (pebble on
// loopback) and swapped under load with no failed request.
// Needs the images (scripts/images.sh) and docker-compose (scripts/install-deps.sh).
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/integration/harness.h"

namespace hosting::testing {
namespace {

using json = nlohmann::json;

// The value of response header `name` (case-insensitive), "" when absent.
// The values of every header line called `name` (case-insensitive), in order.
std::vector<std::string> Headers(const HttpResult& r, const std::string& name) {
  std::vector<std::string> values;
  std::istringstream in(r.headers);
  std::string line;
  while (std::getline(in, line)) {
    const size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    if (absl::EqualsIgnoreCase(line.substr(0, colon), name)) {
      values.emplace_back(absl::StripAsciiWhitespace(line.substr(colon + 1)));
    }
  }
  return values;
}

std::string Header(const HttpResult& r, const std::string& name) {
  std::vector<std::string> values = Headers(r, name);
  return values.empty() ? "" : values.front();
}

int CountHeader(const HttpResult& r, const std::string& name) {
  return static_cast<int>(Headers(r, name).size());
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
    https_port_ = FreePort();
    // The example settings with the test's passwords, ports and network.
    std::ifstream in(SourceDir() + "/deploy/compose/.env.example");
    std::ofstream out(*dir_ + "/stack.env");
    std::string line;
    while (std::getline(in, line)) {
      if (absl::EndsWith(line, "=generate")) {
        line = absl::StrCat(absl::StripSuffix(line, "generate"), "it", getpid(), FreePort());
      } else if (absl::StartsWith(line, "HTTP_PORT=")) {
        line = absl::StrCat("HTTP_PORT=", http_port_);
      } else if (absl::StartsWith(line, "HTTPS_PORT=")) {
        line = absl::StrCat("HTTPS_PORT=", https_port_);
      } else if (absl::StartsWith(line, "TLS_DIR=")) {
        line = absl::StrCat("TLS_DIR=", *dir_, "/tls");
      } else if (absl::StartsWith(line, "HAPROXY_RUN_DIR=")) {
        line = absl::StrCat("HAPROXY_RUN_DIR=", *dir_, "/haproxy");
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
  static int https_port_;
};

std::string* StackTest::dir_ = nullptr;
std::string* StackTest::project_ = nullptr;
int StackTest::http_port_ = 0;
int StackTest::prometheus_port_ = 0;
int StackTest::alertmanager_port_ = 0;
int StackTest::https_port_ = 0;

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
  // One X-Cache line per answer: appsvc's own ("local", a hit in its in-process layer) comes
  // through as X-App-Cache, never as a second X-Cache a client would read first.
  for (int i = 0; i < 6; ++i) {
    HttpResult r = Http("GET", Front("/api/users"), "", "", {"Cache-Control: no-cache"});
    EXPECT_EQ(CountHeader(r, "X-Cache"), 1) << r.headers;
  }
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

// scripts/tls.sh against the stack's HAProxy, with the test's directories; `env` adds settings.
CommandResult Tls(const std::string& dir, const std::string& args, const std::string& env = "") {
  return Shell(absl::StrCat("TLS_DIR=", dir, "/tls HAPROXY_SOCKET=", dir, "/haproxy/admin.sock ",
                            env, " ", SourceDir(), "/scripts/tls.sh ", args, " 2>&1"));
}

// The certificate the front door presents for `sni` (openssl's subject and serial lines).
std::string PresentedCertificate(int port, const std::string& sni) {
  return Shell(absl::StrCat("openssl s_client -connect 127.0.0.1:", port, " -servername ", sni,
                            " </dev/null 2>/dev/null | openssl x509 -noout -subject -serial"))
      .output;
}

TEST_F(StackTest, HttpsAtTheFrontDoorSpeaksHttp2WithHstsAndRedirectsOnRequest) {
  const std::string https = absl::StrCat("https://localhost:", https_port_);
  // HTTP/2 through ALPN, the application behind it, HSTS on the answer.
  CommandResult h2 = Shell(absl::StrCat("curl -sk --http2 -D - -o /dev/null -w 'version=%{http_version}' ",
                                        https, "/api/version"));
  EXPECT_TRUE(absl::StrContains(h2.output, "version=2")) << h2.output;
  EXPECT_TRUE(absl::StrContains(h2.output, "HTTP/2 200")) << h2.output;
  EXPECT_TRUE(absl::StrContains(h2.output, "strict-transport-security: max-age=63072000"))
      << h2.output;
  // The first start made a self-signed certificate for TLS_NAME.
  EXPECT_TRUE(absl::StrContains(PresentedCertificate(https_port_, "localhost"), "CN = localhost"));
  // TLS 1.3 and 1.2 with a modern cipher answer; TLS 1.1 and a non-AEAD cipher are refused.
  const std::string s_client =
      absl::StrCat("openssl s_client -connect 127.0.0.1:", https_port_, " </dev/null >/dev/null 2>&1 ");
  EXPECT_EQ(Shell(s_client + "-tls1_3").exit_code, 0);
  EXPECT_EQ(Shell(s_client + "-tls1_2 -cipher ECDHE-ECDSA-AES128-GCM-SHA256").exit_code, 0);
  EXPECT_NE(Shell(s_client + "-tls1_1 -cipher ALL@SECLEVEL=0").exit_code, 0);
  EXPECT_NE(Shell(s_client + "-tls1_2 -cipher ECDHE-ECDSA-AES128-SHA").exit_code, 0);
  // Plain HTTP is not redirected by default; for a host turned on it is, with the path, query
  // and the public HTTPS port; other hosts are not; turned off, it stops.
  const std::string plain = absl::StrCat("curl -s -o /dev/null -D - -H 'Host: shop.example.test:",
                                         http_port_, "' '", Front("/api/users?limit=1"), "'");
  EXPECT_TRUE(absl::StartsWith(Shell(plain).output, "HTTP/1.1 200")) << Shell(plain).output;
  CommandResult on = Tls(*dir_, "redirect shop.example.test on");
  ASSERT_EQ(on.exit_code, 0) << on.output;
  CommandResult redirected = Shell(plain);
  EXPECT_TRUE(absl::StartsWith(redirected.output, "HTTP/1.1 301")) << redirected.output;
  EXPECT_TRUE(absl::StrContains(
      redirected.output,
      absl::StrCat("location: https://shop.example.test:", https_port_, "/api/users?limit=1")))
      << redirected.output;
  EXPECT_EQ(Http("GET", Front("/health")).status, 200);
  CommandResult status = Tls(*dir_, "status");
  EXPECT_TRUE(absl::StrContains(status.output, "HTTPS redirect for: shop.example.test"))
      << status.output;
  ASSERT_EQ(Tls(*dir_, "redirect shop.example.test off").exit_code, 0);
  EXPECT_TRUE(absl::StartsWith(Shell(plain).output, "HTTP/1.1 200"));
  // The ACME path answers only tokens that exist, and only plain words.
  EXPECT_EQ(Http("GET", Front("/.well-known/acme-challenge/nosuchtoken")).status, 404);
  EXPECT_EQ(Http("GET", Front("/.well-known/acme-challenge/..%2F..%2Fcerts%2Fself-signed.pem")).status,
            404);
  // A certificate whose key is not its own is refused before HAProxy sees it.
  Shell(absl::StrCat("cd ", *dir_, " && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256"
                     " -nodes -days 1 -subj /CN=a -keyout a.key -out a.crt 2>/dev/null && openssl"
                     " genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out b.key"));
  CommandResult mismatch = Tls(*dir_, absl::StrCat("install a ", *dir_, "/a.crt ", *dir_, "/b.key"));
  EXPECT_NE(mismatch.exit_code, 0);
  EXPECT_TRUE(absl::StrContains(mismatch.output, "does not belong")) << mismatch.output;
}

// pebble (Let's Encrypt's test ACME server) and its DNS on loopback, answering every name with
// 127.0.0.1: HTTP-01 is validated through the stack's front door on its published port.
class Pebble {
 public:
  Pebble(const std::string& dir, int http_port) : dir_(dir + "/pebble") {
    acme_port_ = FreePort();
    management_port_ = FreePort();
    const int dns_port = FreePort();
    Shell(absl::StrCat(
        "mkdir -p ", dir_, " && cd ", dir_,
        " && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -days 1 -nodes"
        " -subj /CN=pebble -addext subjectAltName=IP:127.0.0.1 -keyout key.pem -out cert.pem"
        " 2>/dev/null"));
    std::ofstream(dir_ + "/pebble.json")
        << json{{"pebble",
                 {{"listenAddress", absl::StrCat("127.0.0.1:", acme_port_)},
                  {"managementListenAddress", absl::StrCat("127.0.0.1:", management_port_)},
                  {"certificate", dir_ + "/cert.pem"},
                  {"privateKey", dir_ + "/key.pem"},
                  {"httpPort", http_port},
                  {"tlsPort", FreePort()},
                  {"ocspResponderURL", ""},
                  {"externalAccountBindingRequired", false}}}}
               .dump();
    dns_pid_ = Shell(absl::StrCat(
                         "pebble-challtestsrv -defaultIPv4 127.0.0.1 -defaultIPv6 '' -dns01 127.0.0.1:",
                         dns_port, " -http01 '' -https01 '' -tlsalpn01 '' -management 127.0.0.1:",
                         FreePort(), " >", dir_, "/dns.log 2>&1 & echo $!"))
                   .output;
    // No random sleep before validating, no nonces rejected on purpose.
    pebble_pid_ = Shell(absl::StrCat("PEBBLE_VA_NOSLEEP=1 PEBBLE_WFE_NONCEREJECT=0 pebble -config ",
                                     dir_, "/pebble.json -dnsserver 127.0.0.1:", dns_port, " >",
                                     dir_, "/pebble.log 2>&1 & echo $!"))
                      .output;
  }
  ~Pebble() {
    Shell(absl::StrCat("kill ", absl::StripAsciiWhitespace(dns_pid_), " ",
                       absl::StripAsciiWhitespace(pebble_pid_), " 2>/dev/null"));
  }
  absl::Status Ready() {
    return WaitFor([&] { return Shell("curl -sf --cacert " + dir_ + "/cert.pem " + directory() +
                                      " >/dev/null").exit_code == 0; },
                   absl::Seconds(20), "pebble's ACME directory");
  }
  std::string directory() const { return absl::StrCat("https://127.0.0.1:", acme_port_, "/dir"); }
  // scripts/tls.sh's settings for this ACME server.
  std::string TlsEnv() const {
    return absl::StrCat("ACME_CA=", directory(), " ACME_CA_BUNDLE=", dir_, "/cert.pem",
                        " ACME_STATE_DIR=", dir_, "/acme ACME_EMAIL=ops@example.test");
  }
  // The root that signs what pebble issues (a new one each start), as a file.
  std::string Root() const {
    Shell(absl::StrCat("curl -sf --cacert ", dir_, "/cert.pem https://127.0.0.1:", management_port_,
                       "/roots/0 > ", dir_, "/root.pem"));
    return dir_ + "/root.pem";
  }
  std::string Logs() const { return Shell("tail -20 " + dir_ + "/pebble.log").output; }

 private:
  std::string dir_;
  int acme_port_ = 0;
  int management_port_ = 0;
  std::string dns_pid_, pebble_pid_;
};

// Under load (new TLS connections for every request, and kept-alive ones), a certificate is
// issued over ACME, renewed, and the default one replaced: each is presented at once, and no
// request fails and no connection drops.
TEST_F(StackTest, CertificatesAreIssuedRenewedAndSwappedUnderLoadOverAcme) {
  Pebble pebble(*dir_, http_port_);
  ASSERT_TRUE(pebble.Ready().ok()) << pebble.Logs();
  const std::string https = absl::StrCat("https://localhost:", https_port_, "/api/version");
  const std::string wrk = absl::StrCat("wrk -t1 -c4 -d25s --timeout 5s ");
  const std::string load_pids =
      Shell(absl::StrCat(wrk, "-H 'Connection: close' ", https, " >", *dir_,
                         "/wrk-close.txt 2>&1 & echo $!; ", wrk, https, " >", *dir_,
                         "/wrk-keepalive.txt 2>&1 & echo $!"))
          .output;
  absl::SleepFor(absl::Seconds(2));

  CommandResult issue = Tls(*dir_, "issue shop.example.test www.shop.example.test", pebble.TlsEnv());
  ASSERT_EQ(issue.exit_code, 0) << issue.output << pebble.Logs();
  const std::string root = pebble.Root();
  const std::string verify = absl::StrCat(
      "curl -sf -o /dev/null -w '%{http_code}' --cacert ", root, " --resolve www.shop.example.test:",
      https_port_, ":127.0.0.1 https://www.shop.example.test:", https_port_, "/health");
  CommandResult verified = Shell(verify);
  EXPECT_EQ(verified.output, "200") << "the issued certificate does not verify: " << verified.output;
  const std::string issued = PresentedCertificate(https_port_, "shop.example.test");
  EXPECT_TRUE(absl::StrContains(issued, "CN = shop.example.test")) << issued;

  CommandResult renew = Tls(*dir_, "renew --force", pebble.TlsEnv());
  ASSERT_EQ(renew.exit_code, 0) << renew.output << pebble.Logs();
  const std::string renewed = PresentedCertificate(https_port_, "shop.example.test");
  EXPECT_TRUE(absl::StrContains(renewed, "CN = shop.example.test")) << renewed;
  EXPECT_NE(renewed, issued) << "renew did not change the presented certificate";
  EXPECT_EQ(Shell(verify).output, "200");

  // The certificate the load's connections use (SNI localhost), replaced by an operator's file.
  Shell(absl::StrCat("cd ", *dir_, " && openssl req -x509 -newkey rsa:2048 -nodes -days 1"
                     " -subj /CN=localhost -addext subjectAltName=DNS:localhost"
                     " -keyout op.key -out op.crt 2>/dev/null"));
  CommandResult install = Tls(*dir_, absl::StrCat("install self-signed ", *dir_, "/op.crt ", *dir_, "/op.key"));
  ASSERT_EQ(install.exit_code, 0) << install.output;
  const std::string serial = Shell(absl::StrCat("openssl x509 -noout -serial -in ", *dir_, "/op.crt")).output;
  EXPECT_TRUE(absl::StrContains(PresentedCertificate(https_port_, "localhost"), serial));

  // The load ran through all of it.
  const std::string any_running =
      absl::StrCat("for p in ", absl::StrReplaceAll(load_pids, {{"\n", " "}}),
                   "; do kill -0 $p 2>/dev/null && exit 1; done; exit 0");
  ASSERT_TRUE(WaitFor([&] { return Shell(any_running).exit_code == 0; },
                      absl::Seconds(40), "the load to end").ok());
  for (const char* name : {"wrk-close.txt", "wrk-keepalive.txt"}) {
    const std::string out = Shell(absl::StrCat("cat ", *dir_, "/", name)).output;
    std::printf("%s:\n%s", name, out.c_str());
    EXPECT_TRUE(absl::StrContains(out, "requests in")) << out;
    EXPECT_FALSE(absl::StrContains(out, "Socket errors")) << out;
    EXPECT_FALSE(absl::StrContains(out, "Non-2xx")) << out;
  }
  // status names the issued certificate and its names.
  CommandResult status = Tls(*dir_, "status");
  EXPECT_TRUE(absl::StrContains(status.output, "certs/shop.example.test.pem")) << status.output;
  EXPECT_TRUE(absl::StrContains(status.output, "DNS:shop.example.test, DNS:www.shop.example.test"))
      << status.output;
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
