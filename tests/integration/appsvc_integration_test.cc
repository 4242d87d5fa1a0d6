// appsvc against the real thing: a PostgreSQL 15 primary with a streaming replica made by
// pg_basebackup, Redis 7, and HAProxy in front for the drain test. Load comes from wrk on
// 127.0.0.1.
#include <csignal>
#include <fstream>
#include <regex>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/integration/harness.h"

namespace hosting::testing {
namespace {

using ::testing::HasSubstr;

nlohmann::json J(const HttpResult& r) {
  return nlohmann::json::parse(r.body, nullptr, /*allow_exceptions=*/false);
}


class AppsvcIntegrationTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    ds_ = new Datastores();
    absl::Status st = ds_->Start();
    ASSERT_TRUE(st.ok()) << st;
    std::string env;
    for (const auto& kv : ds_->Env()) absl::StrAppend(&env, kv, " ");
    CommandResult migrate = Shell(absl::StrCat("env ", env, AppsvcBinary(), " migrate"));
    ASSERT_EQ(migrate.exit_code, 0) << migrate.output;
    // appsvc prepares its statements on the replica when it connects: a replica that has not
    // replayed the migration yet reads as disconnected until the next retry.
    st = ds_->WaitReplicaReplayed();
    ASSERT_TRUE(st.ok()) << st;
    dir_ = new std::string(MakeTempDir("hosting-appsvc-"));
    a_ = NewApp("a", {});
    b_ = NewApp("b", {});
    ASSERT_TRUE(a_->Start().ok());
    ASSERT_TRUE(b_->Start().ok());
  }

  static AppsvcProcess* NewApp(const std::string& name, std::vector<std::string> extra) {
    std::vector<std::string> env = ds_->Env();
    env.push_back("LOCAL_CACHE_TTL_MS=30000");
    env.push_back("DRAIN_DELAY_MS=100");
    env.insert(env.end(), extra.begin(), extra.end());
    return new AppsvcProcess(env, *dir_ + "/" + name + ".log");
  }

  static void TearDownTestSuite() {
    delete a_;
    delete b_;
    delete ds_;
    delete dir_;
  }

  void SetUp() override {
    ASSERT_NE(a_, nullptr);
    ASSERT_TRUE(a_->running() && b_->running());
  }

  int64_t CreateUser(AppsvcProcess& app, const std::string& name) {
    static int n = 0;
    std::string email = absl::StrCat(name, ++n, "-", getpid(), "@example.com");
    HttpResult r = Http("POST", app.url("/api/users"),
                        nlohmann::json{{"name", name}, {"email", email}}.dump());
    EXPECT_EQ(r.status, 201) << r.body;
    return J(r)["id"].get<int64_t>();
  }

  static Datastores* ds_;
  static std::string* dir_;
  static AppsvcProcess* a_;
  static AppsvcProcess* b_;
};

Datastores* AppsvcIntegrationTest::ds_ = nullptr;
std::string* AppsvcIntegrationTest::dir_ = nullptr;
AppsvcProcess* AppsvcIntegrationTest::a_ = nullptr;
AppsvcProcess* AppsvcIntegrationTest::b_ = nullptr;

TEST_F(AppsvcIntegrationTest, EveryRoute) {
  HttpResult health = Http("GET", a_->url("/health"));
  EXPECT_EQ(health.status, 200);
  EXPECT_EQ(J(health)["status"], "ok");
  HttpResult ready;
  // Readiness is a periodic check: wait for one that saw every dependency.
  absl::Status all_up = WaitFor(
      [&] {
        ready = Http("GET", a_->url("/ready"));
        return J(ready)["replica"] == "connected" && J(ready)["redis"] == "connected";
      },
      absl::Seconds(5), "every dependency connected");
  EXPECT_TRUE(all_up.ok()) << all_up << ": " << ready.body;
  EXPECT_EQ(ready.status, 200) << ready.body;
  EXPECT_EQ(J(ready)["database"], "connected");
  EXPECT_EQ(J(ready)["redis"], "connected");
  EXPECT_EQ(J(ready)["replica"], "connected");
  EXPECT_EQ(J(Http("GET", a_->url("/api/version")))["version"], "0.1.0");

  int64_t id = CreateUser(*a_, "ann");
  std::string user = a_->url("/api/users/" + std::to_string(id));
  HttpResult got = Http("GET", user);
  EXPECT_EQ(got.status, 200);
  EXPECT_EQ(J(got)["source"], "database");
  EXPECT_EQ(J(Http("GET", user))["source"], "cache");
  HttpResult put = Http("PUT", user, R"({"name":"Ann Lee"})");
  EXPECT_EQ(put.status, 200) << put.body;
  EXPECT_EQ(J(put)["name"], "Ann Lee");
  EXPECT_NE(J(put)["updated_at"], J(got)["data"]["updated_at"]);  // the trigger ran

  HttpResult order = Http("POST", user + "/orders", R"({"total_amount": 42.5, "status": "paid"})");
  ASSERT_EQ(order.status, 201) << order.body;
  EXPECT_EQ(J(order)["total_amount"], "42.50");
  int64_t order_id = J(order)["id"].get<int64_t>();
  HttpResult orders = Http("GET", user + "/orders");
  EXPECT_EQ(J(orders)["data"].size(), 1u);
  EXPECT_EQ(Http("GET", a_->url("/api/orders/" + std::to_string(order_id))).status, 200);

  HttpResult list = Http("GET", a_->url("/api/users?limit=1"));
  EXPECT_EQ(list.status, 200);
  EXPECT_EQ(J(list)["data"].size(), 1u);
  EXPECT_FALSE(J(list)["next_cursor"].is_null());

  EXPECT_EQ(Http("DELETE", user).status, 204);
  EXPECT_EQ(Http("GET", user).status, 404);
  // Cascade: the user's orders went with it.
  EXPECT_EQ(Http("GET", a_->url("/api/orders/" + std::to_string(order_id))).status, 404);
  EXPECT_THAT(Http("GET", a_->url("/metrics")).body,
              HasSubstr(R"(http_requests_total{method="GET",route="/api/users/:id",status="200"})"));
}

TEST_F(AppsvcIntegrationTest, ErrorsAreJsonAndNameTheProblem) {
  struct Case {
    std::string method, path, body, content_type;
    long status;
    std::string field;
  };
  int64_t id = CreateUser(*a_, "err");
  std::string email = J(Http("GET", a_->url("/api/users/" + std::to_string(id))))["data"]["email"];
  std::vector<Case> cases = {
      {"GET", "/api/users/abc", "", "", 400, "id"},
      {"POST", "/api/users", "{bad json", "application/json", 400, ""},
      {"POST", "/api/users", R"({"name":"x"})", "application/json", 400, "email"},
      {"POST", "/api/users", R"({"name":"x","email":")" + email + R"("})", "application/json", 409, "email"},
      {"POST", "/api/users", R"({"name":"x","email":"y@z.io"})", "text/plain", 415, ""},
      {"GET", "/api/users/999999999", "", "", 404, ""},
      // Past PostgreSQL's integer ids (SERIAL): no such row, not a 500 a client can make.
      {"GET", "/api/users/2147483648", "", "", 404, ""},
      {"GET", "/api/users/9223372036854775807", "", "", 404, ""},
      {"PUT", "/api/users/2147483648", R"({"name":"x"})", "application/json", 404, ""},
      {"DELETE", "/api/users/2147483648", "", "", 404, ""},
      {"GET", "/api/users/2147483648/orders", "", "", 404, ""},
      {"POST", "/api/users/2147483648/orders", R"({"total_amount":1})", "application/json", 404, ""},
      {"GET", "/api/orders/2147483648", "", "", 404, ""},
      // PostgreSQL's text cannot hold NUL: refused, not stored cut.
      {"POST", "/api/users", R"({"name":"x\u0000y","email":"nul@example.com"})", "application/json", 400, "name"},
      {"DELETE", "/api/users", "", "", 405, ""},
      {"GET", "/no/such/route", "", "", 404, ""},
      {"POST", "/api/users/999999999/orders", R"({"total_amount":1})", "application/json", 404, ""},
      {"POST", "/api/users/1/orders", R"({"total_amount":"x"})", "application/json", 400, "total_amount"},
  };
  for (const auto& c : cases) {
    HttpResult r = Http(c.method, a_->url(c.path), c.body, c.content_type);
    EXPECT_EQ(r.status, c.status) << c.method << " " << c.path << ": " << r.body;
    nlohmann::json j = J(r);
    EXPECT_TRUE(j.is_object() && j.contains("error")) << r.body;
    if (!c.field.empty()) {
      EXPECT_EQ(j["field"], c.field) << r.body;
    }
  }
  // 413: a body over MAX_BODY_BYTES (1 MiB by default).
  HttpResult big = Http("POST", a_->url("/api/users"), std::string(2 << 20, 'x'));
  EXPECT_EQ(big.status, 413);
}

TEST_F(AppsvcIntegrationTest, MalformedAndHostileRequestsNeverCrashTheServer) {
  const std::string port = std::to_string(a_->port());
  auto raw = [&](const std::string& bytes) {
    return Shell(absl::StrCat("printf '", bytes, "' | timeout 5 nc -q 1 127.0.0.1 ", port,
                              " | head -1"));
  };
  EXPECT_THAT(raw("GARBAGE\\r\\n\\r\\n").output, HasSubstr("400"));
  EXPECT_THAT(raw("GET / HTTP/9.9\\r\\n\\r\\n").output, HasSubstr("400"));
  // HTTP/1.1 requires Host (RFC 9112, 3.2); HTTP/1.0 does not.
  EXPECT_THAT(raw("GET /health HTTP/1.1\\r\\n\\r\\n").output, HasSubstr("400"));
  EXPECT_THAT(raw("GET /health HTTP/1.1\\r\\nHost: a\\r\\nConnection: close\\r\\n\\r\\n").output,
              HasSubstr("200"));
  EXPECT_THAT(raw("GET /health HTTP/1.0\\r\\n\\r\\n").output, HasSubstr("200"));
  EXPECT_THAT(raw("POST /api/users HTTP/1.1\\r\\nContent-Length: abc\\r\\n\\r\\n").output, HasSubstr("400"));
  std::string huge_header = absl::StrCat("GET /health HTTP/1.1\\r\\nX-Big: ", std::string(40000, 'a'), "\\r\\n\\r\\n");
  EXPECT_THAT(raw(huge_header).output, HasSubstr("431"));
  // A client that connects and says nothing, and one that stops mid-request.
  Shell(absl::StrCat("timeout 1 nc 127.0.0.1 ", port, " </dev/null"));
  Shell(absl::StrCat("printf 'POST /api/users HTTP/1.1\\r\\nContent-Length: 100\\r\\n\\r\\n{' | timeout 1 nc 127.0.0.1 ", port));
  EXPECT_EQ(Http("GET", a_->url("/health")).status, 200);
  EXPECT_TRUE(a_->running());
}

TEST_F(AppsvcIntegrationTest, WritesInvalidateCachesAcrossReplicas) {
  int64_t id = CreateUser(*a_, "shared");
  std::string path = "/api/users/" + std::to_string(id);
  // Both replicas read it into their in-process layers.
  Http("GET", a_->url(path));
  Http("GET", b_->url(path));
  ASSERT_EQ(J(Http("GET", b_->url(path)))["source"], "cache");
  ASSERT_THAT(Http("GET", b_->url(path)).headers, HasSubstr("X-Cache: local"));
  // A write through A must be visible through B at once.
  ASSERT_EQ(Http("PUT", a_->url(path), R"({"name":"renamed"})").status, 200);
  absl::Status st = WaitFor([&] { return J(Http("GET", b_->url(path)))["data"]["name"] == "renamed"; },
                            absl::Seconds(2), "B to see the write made through A");
  EXPECT_TRUE(st.ok()) << st;
  // The list key too.
  Http("GET", b_->url("/api/users"));
  int64_t other = CreateUser(*a_, "newcomer");
  st = WaitFor([&] { return Http("GET", b_->url("/api/users")).body.find("\"id\":" + std::to_string(other)) != std::string::npos; },
               absl::Seconds(2), "B's users:all to include the user created through A");
  EXPECT_TRUE(st.ok()) << st;
  // And a delete: B must stop serving the user it had cached.
  ASSERT_EQ(J(Http("GET", b_->url(path)))["source"], "cache");
  ASSERT_EQ(Http("DELETE", a_->url(path)).status, 204);
  st = WaitFor([&] { return Http("GET", b_->url(path)).status == 404; }, absl::Seconds(2),
               "B to stop serving a user deleted through A");
  EXPECT_TRUE(st.ok()) << st;
}

TEST_F(AppsvcIntegrationTest, ReadsGoToTheReplicaWhileItKeepsUp) {
  // A replica whose replay is paused shows old data: that is how we see who served a read.
  std::unique_ptr<AppsvcProcess> tolerant(NewApp("tolerant", {"DB_REPLICA_MAX_LAG_MS=600000"}));
  ASSERT_TRUE(tolerant->Start().ok());
  ASSERT_TRUE(WaitFor([&] { return J(Http("GET", tolerant->url("/ready")))["replica"] == "connected"; },
                      absl::Seconds(5), "replica in use").ok());
  ds_->Sql("SELECT pg_wal_replay_pause()", true);
  int64_t id = CreateUser(*a_, "unseen");
  // The replica has received the insert's WAL (it has only not replayed it).
  const std::string lsn(absl::StripAsciiWhitespace(ds_->Sql("SELECT pg_current_wal_lsn()")));
  ASSERT_TRUE(WaitFor([&] {
                return absl::StripAsciiWhitespace(ds_->Sql(
                           "SELECT pg_last_wal_receive_lsn() >= '" + lsn + "'::pg_lsn", true)) ==
                       "t";
              },
              absl::Seconds(5), "the replica to receive " + lsn)
                  .ok());
  // Paginated lists are never cached: this read is the replica's, which has not replayed it.
  HttpResult listed = Http("GET", tolerant->url("/api/users?limit=5"));
  ASSERT_EQ(listed.status, 200) << listed.body;
  ASSERT_TRUE(J(listed)["data"].is_array()) << listed.body;
  const std::string& page = listed.body;
  EXPECT_EQ(page.find("\"id\":" + std::to_string(id) + ","), std::string::npos)
      << "the list came from the primary: " << page;
  // A single user not on the replica is read from the primary: clients read their own writes.
  EXPECT_EQ(Http("GET", tolerant->url("/api/users/" + std::to_string(id))).status, 200);
  // appsvc a_ allows 1 s of lag: once over it, it reads from the primary and counts it.
  absl::Status st = WaitFor(
      [&] {
        return Http("GET", a_->url("/api/users?limit=5")).body.find("\"id\":" + std::to_string(id) + ",") !=
               std::string::npos;
      },
      absl::Seconds(5), "a lagging replica to be bypassed");
  EXPECT_TRUE(st.ok()) << st;
  EXPECT_THAT(J(Http("GET", a_->url("/ready")))["checks"]["replica"]["detail"].get<std::string>(),
              HasSubstr("over the limit"));
  ds_->Sql("SELECT pg_wal_replay_resume()", true);
  st = WaitFor([&] { return J(Http("GET", a_->url("/ready")))["checks"]["replica"]["detail"] == "lag 0 ms"; },
               absl::Seconds(5), "the replica to catch up");
  EXPECT_TRUE(st.ok()) << st;
}

TEST_F(AppsvcIntegrationTest, ReadsFallBackWhenTheReplicaStops) {
  auto fallbacks = [&] { return MetricValue(Http("GET", a_->url("/metrics")).body, "appsvc_replica_fallbacks_total"); };
  int64_t id = CreateUser(*a_, "reader");
  const double fallbacks_before = fallbacks();

  ASSERT_TRUE(ds_->Do("stop-replica").ok());
  for (int i = 0; i < 10; ++i) {
    HttpResult r = Http("GET", a_->url("/api/users?limit=5"));
    ASSERT_EQ(r.status, 200) << r.body;
  }
  EXPECT_GT(fallbacks(), fallbacks_before);
  absl::Status st = WaitFor([&] { return J(Http("GET", a_->url("/ready")))["replica"] == "disconnected"; },
                            absl::Seconds(3), "/ready to report the replica down");
  EXPECT_TRUE(st.ok()) << st;
  HttpResult ready = Http("GET", a_->url("/ready"));
  EXPECT_EQ(ready.status, 200);  // degraded, still ready
  EXPECT_EQ(J(ready)["degraded"], true);
  EXPECT_EQ(Http("GET", a_->url("/api/users/" + std::to_string(id) + "/orders")).status, 200);

  ASSERT_TRUE(ds_->Do("start-replica").ok());
  st = WaitFor([&] { return J(Http("GET", a_->url("/ready")))["replica"] == "connected"; },
               absl::Seconds(10), "the replica to be used again");
  EXPECT_TRUE(st.ok()) << st;
}

// The primary restarted (a fast shutdown, 3 s down) under writes and reads, with nothing to
// warn appsvc: a statement the server certainly did not commit is sent again once it is back
// (DB_PRIMARY_WAIT_MS), reads come from the replica or are tried again, /ready stays 200
// (degraded), no read fails, and every write answered 201 is in the database exactly once. A
// write in transit at the instant the server ends its session may get no answer at all; it
// may have run, so it is not sent again (503): at most a few of thousands. A planned restart
// pauses writes at HAProxy first (platform-restart), so none is in transit then.
TEST_F(AppsvcIntegrationTest, ThePrimaryRestartedUnderLoadFailsNoReadAndRepeatsNoWrite) {
  const int64_t user = CreateUser(*a_, "restart");
  const int64_t reader = CreateUser(*b_, "restartreader");
  ASSERT_TRUE(ds_->WaitReplicaReplayed().ok());
  auto retried = [&] {
    return MetricValue(Http("GET", a_->url("/metrics")).body,
                       "appsvc_primary_retries_total{outcome=\"served\"}");
  };
  const double retried_before = std::max(0.0, retried());
  const std::string body = R"({"total_amount": 12.5, "status": "pending"})";
  HttpLoad writes(a_->url(absl::StrCat("/api/users/", user, "/orders")), 2, 0, body,
                  absl::Seconds(30));
  HttpLoad writes_b(b_->url(absl::StrCat("/api/users/", user, "/orders")), 1, 0, body,
                    absl::Seconds(30));
  HttpLoad reads(b_->url(absl::StrCat("/api/users/", reader, "/orders")), 2, 0, "",
                 absl::Seconds(30));
  absl::SleepFor(absl::Seconds(1));
  ASSERT_TRUE(ds_->Do("stop-primary").ok());
  absl::SleepFor(absl::Seconds(1));
  HttpResult ready = Http("GET", a_->url("/ready"));
  EXPECT_EQ(ready.status, 200) << ready.body;
  EXPECT_EQ(J(ready)["degraded"], true) << ready.body;
  absl::SleepFor(absl::Seconds(2));
  ASSERT_TRUE(ds_->Do("start-primary").ok());
  absl::SleepFor(absl::Seconds(2));
  writes.Stop();
  writes_b.Stop();
  reads.Stop();
  EXPECT_LE(writes.failed() + writes_b.failed(), (writes.total() + writes_b.total()) / 100)
      << writes.first_error() << writes_b.first_error();
  EXPECT_EQ(reads.failed(), 0) << reads.first_error();
  EXPECT_GT(retried(), retried_before);
  const std::string rows = std::string(absl::StripAsciiWhitespace(
      ds_->Sql(absl::StrCat("SELECT count(*) FROM orders WHERE user_id = ", user))));
  EXPECT_EQ(rows, std::to_string(writes.ok() + writes_b.ok()));
  std::printf("[ measure ] primary restarted (3 s down): %lld writes, %lld reads; failed: %lld "
              "writes (no answer in transit), %lld reads; longest write %s\n",
              static_cast<long long>(writes.total() + writes_b.total()),
              static_cast<long long>(reads.total()),
              static_cast<long long>(writes.failed() + writes_b.failed()),
              static_cast<long long>(reads.failed()),
              absl::FormatDuration(std::max(writes.max_latency(), writes_b.max_latency())).c_str());
}

TEST_F(AppsvcIntegrationTest, RedisDownServesFromPostgresAndRecovers) {
  // B holds a user in its in-process cache before Redis goes away.
  int64_t cached = CreateUser(*a_, "cachedbefore");
  const std::string cached_path = "/api/users/" + std::to_string(cached);
  ASSERT_EQ(Http("GET", b_->url(cached_path)).status, 200);
  ASSERT_EQ(J(Http("GET", b_->url(cached_path)))["source"], "cache");

  ASSERT_TRUE(ds_->Do("stop-redis").ok());
  absl::Status st = WaitFor(
      [&] {
        return J(Http("GET", a_->url("/ready")))["redis"] == "disconnected" &&
               J(Http("GET", b_->url("/ready")))["redis"] == "disconnected";
      },
      absl::Seconds(3), "/ready of both replicas to report Redis down");
  EXPECT_TRUE(st.ok()) << st;
  int64_t id = CreateUser(*a_, "noredis");  // writes work without Redis
  HttpResult r = Http("GET", b_->url("/api/users/" + std::to_string(id)));
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(J(r)["source"], "database");
  // A changes the user B has cached; its invalidation cannot reach B. B must not serve its
  // in-process copy while invalidations are not live: the read shows the change, from the
  // database.
  ASSERT_EQ(Http("PUT", a_->url(cached_path), R"({"name":"changed while redis was down"})").status,
            200);
  HttpResult stale_guard = Http("GET", b_->url(cached_path));
  ASSERT_EQ(stale_guard.status, 200) << stale_guard.body;
  EXPECT_EQ(J(stale_guard)["data"]["name"], "changed while redis was down") << stale_guard.body;
  EXPECT_EQ(J(stale_guard)["source"], "database");
  HttpResult ready = Http("GET", a_->url("/ready"));
  EXPECT_EQ(ready.status, 200);
  EXPECT_EQ(J(ready)["status"], "degraded");
  EXPECT_EQ(MetricValue(Http("GET", a_->url("/metrics")).body, "appsvc_degraded"), 1);

  ASSERT_TRUE(ds_->Do("start-redis").ok());
  st = WaitFor(
      [&] {
        return J(Http("GET", a_->url("/ready")))["redis"] == "connected" &&
               J(Http("GET", b_->url("/ready")))["redis"] == "connected";
      },
      absl::Seconds(5), "both servers to use Redis again");
  EXPECT_TRUE(st.ok()) << st;
  int64_t id2 = CreateUser(*a_, "redisback");
  std::string path = "/api/users/" + std::to_string(id2);
  Http("GET", a_->url(path));  // fills Redis before it answers
  // B has never read it: a hit now comes from Redis, filled by A.
  HttpResult via_b = Http("GET", b_->url(path));
  EXPECT_EQ(J(via_b)["source"], "cache") << via_b.body;
  // Invalidation works again after the subscriber reconnected.
  ASSERT_EQ(Http("PUT", a_->url(path), R"({"name":"after"})").status, 200);
  st = WaitFor([&] { return J(Http("GET", b_->url(path)))["data"]["name"] == "after"; },
               absl::Seconds(3), "B to see the write after Redis came back");
  EXPECT_TRUE(st.ok()) << st;
}

// Two replicas behind HAProxy under load; one gets SIGTERM. Not one request may fail.
TEST_F(AppsvcIntegrationTest, SigtermUnderLoadLosesNoRequest) {
  std::unique_ptr<AppsvcProcess> c(NewApp("c", {"DRAIN_DELAY_MS=1500", "SHUTDOWN_GRACE_MS=5000"}));
  std::unique_ptr<AppsvcProcess> d(NewApp("d", {"DRAIN_DELAY_MS=1500", "SHUTDOWN_GRACE_MS=5000"}));
  ASSERT_TRUE(c->Start().ok());
  ASSERT_TRUE(d->Start().ok());
  int64_t id = CreateUser(*c, "load");
  const int front = FreePort();
  std::string cfg = *dir_ + "/haproxy.cfg";
  {
    std::ofstream out(cfg);
    out << "global\n  maxconn 2000\n  stats socket " << *dir_ << "/haproxy.sock mode 600 level admin\n"
        << "defaults\n  mode http\n  timeout connect 2s\n  timeout client 30s\n"
        << "  timeout server 30s\n  option redispatch\n  retries 3\n"
        << "frontend fe\n  bind 127.0.0.1:" << front << "\n  default_backend app\n"
        << "backend app\n  balance roundrobin\n  option httpchk GET /ready\n"
        << "  default-server inter 200ms fall 1 rise 2\n"
        << "  server c 127.0.0.1:" << c->port() << " check\n"
        << "  server d 127.0.0.1:" << d->port() << " check\n";
  }
  CommandResult check = Shell("haproxy -c -f " + cfg);
  ASSERT_EQ(check.exit_code, 0) << check.output;
  pid_t haproxy = fork();
  if (haproxy == 0) {
    execlp("haproxy", "haproxy", "-db", "-f", cfg.c_str(), nullptr);
    _exit(127);
  }
  const std::string front_url = absl::StrCat("http://127.0.0.1:", front, "/api/users/", id);
  ASSERT_TRUE(WaitFor([&] { return Http("GET", front_url).status == 200; }, absl::Seconds(5), "HAProxy").ok());
  ASSERT_TRUE(WaitFor([&] { return HaproxyReadyServers(*dir_ + "/haproxy.sock", "app") == 2; },
                      absl::Seconds(5), "both servers UP")
                  .ok());

  // wrk for 6 s; SIGTERM c after 1.5 s.
  std::string out_file = *dir_ + "/wrk.out";
  pid_t wrk = fork();
  if (wrk == 0) {
    FILE* f = fopen(out_file.c_str(), "w");
    dup2(fileno(f), STDOUT_FILENO);
    execlp("wrk", "wrk", "-t2", "-c20", "-d6s", front_url.c_str(), nullptr);
    _exit(127);
  }
  absl::SleepFor(absl::Milliseconds(1500));
  c->Signal(SIGTERM);
  int status = 0;
  waitpid(wrk, &status, 0);
  const int c_exit = c->Wait();
  kill(haproxy, SIGTERM);
  waitpid(haproxy, nullptr, 0);
  std::string wrk_out = Shell("cat " + out_file).output;
  std::smatch m;
  ASSERT_TRUE(std::regex_search(wrk_out, m, std::regex(R"((\d+) requests in)"))) << wrk_out;
  const long total = std::stol(m[1]);
  EXPECT_GT(total, 1000) << wrk_out;
  EXPECT_THAT(wrk_out, ::testing::Not(HasSubstr("Non-2xx"))) << wrk_out;
  EXPECT_THAT(wrk_out, ::testing::Not(HasSubstr("Socket errors"))) << wrk_out;
  EXPECT_EQ(c_exit, 0) << "appsvc did not drain cleanly: " << Shell("tail -5 " + *dir_ + "/c.log").output;
  std::cout << "[ measure ] " << total << " requests through HAProxy, SIGTERM to one of two replicas, "
            << "failed: " << (wrk_out.find("Non-2xx") == std::string::npos ? 0 : -1) << "\n";
}

// The image from deploy/images/appsvc: runs as non-root and reports healthy through its own
// HEALTHCHECK (the binary probes itself).
TEST_F(AppsvcIntegrationTest, ImageRunsHealthyAsNonRoot) {
  ASSERT_EQ(Shell("docker image inspect hosting/appsvc:dev --format '{{.Config.User}}'").output, "10001\n")
      << "run scripts/images.sh";
  const int port = FreePort();
  std::string env_flags;
  for (const auto& kv : ds_->Env()) absl::StrAppend(&env_flags, " -e ", kv);
  const std::string name = absl::StrCat("appsvc-it-", getpid());
  CommandResult run = Shell(absl::StrCat("docker run -d --name ", name, " --network host",
                                         env_flags, " -e PORT=", port,
                                         " -e BIND_ADDRESS=127.0.0.1 hosting/appsvc:dev"));
  ASSERT_EQ(run.exit_code, 0) << run.output;
  absl::Status st = WaitFor(
      [&] {
        return Shell("docker inspect --format '{{.State.Health.Status}}' " + name).output == "healthy\n";
      },
      absl::Seconds(30), "the container's HEALTHCHECK to pass", absl::Milliseconds(250));
  EXPECT_TRUE(st.ok()) << st << Shell("docker logs " + name).output;
  HttpResult ready = Http("GET", absl::StrCat("http://127.0.0.1:", port, "/ready"));
  EXPECT_EQ(ready.status, 200) << ready.body;
  EXPECT_EQ(Shell("docker exec " + name + " id -u").output, "10001\n");
  // SIGTERM (docker stop) drains and exits 0 (a kill at docker's deadline would be 137).
  Shell("docker stop -t 30 " + name);
  EXPECT_EQ(Shell("docker inspect --format '{{.State.ExitCode}}' " + name).output, "0\n");
  Shell("docker rm -f " + name);
}

}  // namespace
}  // namespace hosting::testing
