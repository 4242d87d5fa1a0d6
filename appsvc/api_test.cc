// The API over a fake repository and a fake Redis: routing, validation, cache-aside with
// invalidation on every write, degraded operation without Redis, error shapes, fault knobs.
#include "appsvc/api.h"

#include <map>

#include "appsvc/testing/fakes.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace hosting::appsvc {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::UnorderedElementsAre;

class ApiTest : public ::testing::Test {
 protected:
  ApiTest()
      : local_(1000, absl::Seconds(5), clock_),
        readiness_({{"database", [] { return DependencyHealth{true, true, "", 0}; }},
                    {"redis", [this] { return DependencyHealth{true, !cache_.down, "", 0}; }}},
                   absl::Seconds(1), metrics_) {
    readiness_.CheckNow();
    MakeApi();
  }

  void MakeApi() { api_ = std::make_unique<Api>(config_, repo_, cache_, local_, readiness_, metrics_, clock_); }

  // Serves like the server does: the fast path, else the blocking path.
  http::HttpResponse Call(const std::string& method, const std::string& target,
                    const std::string& body = "", const std::string& content_type = "application/json") {
    http::HttpRequest r;
    r.method = method;
    size_t q = target.find('?');
    r.path = target.substr(0, q);
    if (q != std::string::npos) r.query = target.substr(q + 1);
    r.body = body;
    r.content_type = body.empty() ? "" : content_type;
    RouteMatch m = MatchRoute(r.path);
    if (auto fast = api_->TryFast(r, m)) return *fast;
    return api_->Handle(r, m);
  }

  nlohmann::json Body(const http::HttpResponse& r) { return nlohmann::json::parse(r.body); }

  int64_t CreateUser(const std::string& name, const std::string& email) {
    http::HttpResponse r = Call("POST", "/api/users", nlohmann::json{{"name", name}, {"email", email}}.dump());
    EXPECT_EQ(r.status, 201) << r.body;
    return Body(r)["id"].get<int64_t>();
  }

  FakeClock clock_;
  Config config_;
  FakeRepository repo_;
  FakeCache cache_;
  AppMetrics metrics_;
  LocalCache local_;
  Readiness readiness_;
  std::unique_ptr<Api> api_;
};

TEST_F(ApiTest, GetUserIsCacheAsideWithReferenceKeysAndTtls) {
  int64_t id = CreateUser("Ann", "ann@example.com");
  http::HttpResponse first = Call("GET", "/api/users/" + std::to_string(id));
  ASSERT_EQ(first.status, 200);
  EXPECT_EQ(Body(first)["source"], "database");
  EXPECT_EQ(Body(first)["data"]["email"], "ann@example.com");
  EXPECT_TRUE(cache_.data.count("users:" + std::to_string(id)));
  EXPECT_EQ(cache_.ttls["users:" + std::to_string(id)], absl::Seconds(300));
  http::HttpResponse second = Call("GET", "/api/users/" + std::to_string(id));
  EXPECT_EQ(Body(second)["source"], "cache");
  EXPECT_EQ(Body(second)["data"], Body(first)["data"]);
  EXPECT_EQ(repo_.reads, 1);
}

TEST_F(ApiTest, RedisHitFillsTheLocalLayer) {
  cache_.data["users:5"] = R"({"id":5,"name":"R","email":"r@x.io"})";
  http::HttpRequest r{"GET", "/api/users/5", "", "", "", "id"};
  RouteMatch m = MatchRoute(r.path);
  EXPECT_FALSE(api_->TryFast(r, m).has_value());  // not local yet
  http::HttpResponse resp = api_->Handle(r, m);
  EXPECT_EQ(Body(resp)["source"], "cache");
  ASSERT_TRUE(api_->TryFast(r, m).has_value());  // now served on the I/O thread
  EXPECT_EQ(repo_.reads, 0);
}

TEST_F(ApiTest, EveryWriteInvalidatesWhatItChanged) {
  int64_t id = CreateUser("Ann", "ann@example.com");
  EXPECT_THAT(cache_.invalidated, UnorderedElementsAre("users:all", "users:" + std::to_string(id)));
  std::string path = "/api/users/" + std::to_string(id);
  Call("GET", path);
  Call("GET", "/api/users");
  ASSERT_TRUE(cache_.data.count("users:all"));
  cache_.invalidated.clear();

  http::HttpResponse put = Call("PUT", path, R"({"name":"Anna"})");
  ASSERT_EQ(put.status, 200) << put.body;
  EXPECT_EQ(Body(put)["name"], "Anna");
  EXPECT_THAT(cache_.invalidated, UnorderedElementsAre("users:all", "users:" + std::to_string(id)));
  // Both layers dropped it: the next read sees the new name.
  http::HttpResponse after = Call("GET", path);
  EXPECT_EQ(Body(after)["source"], "database");
  EXPECT_EQ(Body(after)["data"]["name"], "Anna");
  EXPECT_THAT(Call("GET", "/api/users").body, HasSubstr("Anna"));

  cache_.invalidated.clear();
  EXPECT_EQ(Call("DELETE", path).status, 204);
  EXPECT_THAT(cache_.invalidated, UnorderedElementsAre("users:all", "users:" + std::to_string(id)));
  EXPECT_EQ(Call("GET", path).status, 404);
  EXPECT_EQ(Call("DELETE", path).status, 404);
}

TEST_F(ApiTest, ServesFromPostgresWhenRedisIsDown) {
  int64_t id = CreateUser("Ann", "ann@example.com");
  cache_.down = true;
  readiness_.CheckNow();
  http::HttpResponse r = Call("GET", "/api/users/" + std::to_string(id));
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(Body(r)["source"], "database");
  // Writes still work; the failed invalidation is counted, not fatal.
  EXPECT_EQ(Call("PUT", "/api/users/" + std::to_string(id), R"({"name":"B"})").status, 200);
  http::HttpResponse ready = Call("GET", "/ready");
  EXPECT_EQ(ready.status, 200);
  EXPECT_EQ(Body(ready)["redis"], "disconnected");
  EXPECT_EQ(Body(ready)["degraded"], true);
  EXPECT_EQ(Body(ready)["status"], "degraded");
  EXPECT_THAT(metrics_.Serialize(), HasSubstr("appsvc_degraded 1"));
}

TEST_F(ApiTest, DatabaseDownIs503) {
  repo_.down = true;
  http::HttpResponse r = Call("GET", "/api/users/1");
  EXPECT_EQ(r.status, 503);
  EXPECT_THAT(r.body, HasSubstr("database unavailable"));
}

TEST_F(ApiTest, CreateUserErrors) {
  http::HttpResponse missing = Call("POST", "/api/users", R"({"name":"Ann"})");
  EXPECT_EQ(missing.status, 400);
  EXPECT_EQ(Body(missing)["field"], "email");
  EXPECT_EQ(Call("POST", "/api/users", "{not json").status, 400);
  EXPECT_EQ(Call("POST", "/api/users", "[]").status, 400);
  EXPECT_EQ(Call("POST", "/api/users", R"({"name":"A","email":"a@b.io"})", "text/plain").status, 415);
  CreateUser("Ann", "ann@example.com");
  http::HttpResponse dup = Call("POST", "/api/users", R"({"name":"B","email":"ANN@example.com"})");
  EXPECT_EQ(dup.status, 409);
  EXPECT_EQ(Body(dup)["field"], "email");
}

TEST_F(ApiTest, RoutingErrors) {
  http::HttpResponse bad_id = Call("GET", "/api/users/abc");
  EXPECT_EQ(bad_id.status, 400);
  EXPECT_EQ(Body(bad_id)["field"], "id");
  http::HttpResponse method = Call("DELETE", "/api/users");
  EXPECT_EQ(method.status, 405);
  ASSERT_EQ(method.headers.size(), 1u);
  EXPECT_EQ(method.headers[0].second, "GET, POST");
  EXPECT_EQ(Call("GET", "/nope").status, 404);
}

TEST_F(ApiTest, PaginationWithCursor) {
  for (int i = 0; i < 5; ++i) CreateUser("U" + std::to_string(i), "u" + std::to_string(i) + "@x.io");
  http::HttpResponse page1 = Call("GET", "/api/users?limit=2");
  ASSERT_EQ(page1.status, 200);
  nlohmann::json b1 = Body(page1);
  ASSERT_EQ(b1["data"].size(), 2u);
  EXPECT_EQ(b1["data"][0]["id"], 5);
  EXPECT_EQ(b1["next_cursor"], "4");
  nlohmann::json b2 = Body(Call("GET", "/api/users?limit=2&cursor=4"));
  EXPECT_EQ(b2["data"][0]["id"], 3);
  nlohmann::json b3 = Body(Call("GET", "/api/users?limit=2&cursor=2"));
  EXPECT_EQ(b3["data"].size(), 1u);
  EXPECT_TRUE(b3["next_cursor"].is_null());
  EXPECT_EQ(Body(Call("GET", "/api/users?limit=0"))["field"], "limit");
  EXPECT_EQ(Body(Call("GET", "/api/users?cursor=x"))["field"], "cursor");
  // The default page is the cached users:all with the reference's 60 s TTL.
  Call("GET", "/api/users");
  EXPECT_EQ(cache_.ttls["users:all"], absl::Seconds(60));
}

TEST_F(ApiTest, Orders) {
  int64_t id = CreateUser("Ann", "ann@example.com");
  std::string base = "/api/users/" + std::to_string(id) + "/orders";
  http::HttpResponse created = Call("POST", base, R"({"total_amount": 19.9})");
  ASSERT_EQ(created.status, 201) << created.body;
  EXPECT_EQ(Body(created)["total_amount"], "19.90");
  EXPECT_EQ(Body(created)["status"], "pending");
  nlohmann::json list = Body(Call("GET", base));
  EXPECT_EQ(list["source"], "database");
  EXPECT_EQ(list["data"].size(), 1u);
  EXPECT_EQ(Call("GET", "/api/orders/" + std::to_string(Body(created)["id"].get<int64_t>())).status, 200);
  EXPECT_EQ(Call("GET", "/api/orders/999").status, 404);
  EXPECT_EQ(Call("POST", "/api/users/999/orders", R"({"total_amount": 1})").status, 404);
  EXPECT_EQ(Call("GET", "/api/users/999/orders").status, 404);
  EXPECT_EQ(Body(Call("POST", base, R"({"total_amount": -3})"))["field"], "total_amount");
}

TEST_F(ApiTest, FaultKnobsMisbehaveExactlyAsConfigured) {
  int64_t id = CreateUser("Ann", "ann@example.com");
  config_.fault_error_rate = 0.3;
  MakeApi();
  int errors = 0;
  for (int i = 0; i < 100; ++i) {
    if (Call("GET", "/api/users/" + std::to_string(id)).status == 500) ++errors;
  }
  EXPECT_EQ(errors, 30);
  EXPECT_EQ(Call("GET", "/health").status, 200);  // only /api misbehaves
  config_.fault_error_rate = 0;
  config_.fault_health_fail = true;
  MakeApi();
  EXPECT_EQ(Call("GET", "/health").status, 500);
  EXPECT_EQ(Call("GET", "/ready").status, 503);
}

TEST_F(ApiTest, HealthReadyVersionAndDraining) {
  http::HttpResponse health = Call("GET", "/health");
  EXPECT_EQ(health.status, 200);
  EXPECT_EQ(Body(health)["status"], "ok");
  http::HttpResponse ready = Call("GET", "/ready");
  EXPECT_EQ(ready.status, 200);
  for (const char* f : {"status", "timestamp", "hostname", "uptime", "database", "redis", "checks"}) {
    EXPECT_TRUE(Body(ready).contains(f)) << f;
  }
  EXPECT_EQ(Body(ready)["database"], "connected");
  readiness_.SetDraining();
  ready = Call("GET", "/ready");
  EXPECT_EQ(ready.status, 503);
  EXPECT_EQ(Body(ready)["status"], "draining");
  EXPECT_EQ(Call("GET", "/health").status, 200);  // still alive while draining
  config_.hosting_revision = "7";
  MakeApi();
  nlohmann::json v = Body(Call("GET", "/api/version"));
  EXPECT_EQ(v["hosting_revision"], "7");
  EXPECT_TRUE(v.contains("git_revision"));
}

TEST_F(ApiTest, MetricsUseRouteTemplates) {
  CreateUser("Ann", "ann@example.com");
  metrics_.ObserveRequest("GET", MatchRoute("/api/users/12345").label, 200, 0.001);
  std::string text = Call("GET", "/metrics").body;
  EXPECT_THAT(text, HasSubstr(R"(route="/api/users/:id")"));
  EXPECT_THAT(text, ::testing::Not(HasSubstr("12345")));
}

// Series a dashboard divides by exist at 0 before the first event (a ratio reads 0, not
// "no data").
TEST_F(ApiTest, CacheSeriesExistBeforeTheFirstHit) {
  std::string text = Call("GET", "/metrics").body;
  EXPECT_THAT(text, HasSubstr(R"(appsvc_cache_hits_total{layer="local"} 0)"));
  EXPECT_THAT(text, HasSubstr(R"(appsvc_cache_hits_total{layer="redis"} 0)"));
  EXPECT_THAT(text, HasSubstr("appsvc_cache_misses_total 0"));
}

TEST(QueryParamTest, Decoding) {
  std::string v;
  EXPECT_TRUE(http::QueryParam("a=1&limit=20", "limit", &v));
  EXPECT_EQ(v, "20");
  EXPECT_TRUE(http::QueryParam("q=a%20b+c", "q", &v));
  EXPECT_EQ(v, "a b c");
  EXPECT_FALSE(http::QueryParam("a=1", "b", &v));
  EXPECT_TRUE(http::QueryParam("flag", "flag", &v));
  EXPECT_EQ(v, "");
}

// The primary stopping to answer (a restart) keeps the service ready, degraded, for as long as
// statements wait for it; with no wait it is unready at once.
TEST(ReadinessTest, ThePrimaryDownIsDegradedWithinTheWaitAndUnreadyWithout) {
  AppMetrics metrics;
  auto down = [] { return DependencyHealth{.configured = true, .up = false, .detail = "refused"}; };
  Readiness waiting({{"database", down}}, absl::Hours(1), metrics, absl::Hours(1));
  waiting.CheckNow();
  Readiness::Snapshot s = waiting.Get();
  EXPECT_TRUE(s.ready);
  EXPECT_TRUE(s.degraded);
  Readiness strict({{"database", down}}, absl::Hours(1), metrics);
  strict.CheckNow();
  EXPECT_FALSE(strict.Get().ready);
  auto up = [] { return DependencyHealth{.configured = true, .up = true}; };
  Readiness healthy({{"database", up}}, absl::Hours(1), metrics);
  healthy.CheckNow();
  EXPECT_TRUE(healthy.Get().ready);
  EXPECT_FALSE(healthy.Get().degraded);
}

}  // namespace
}  // namespace hosting::appsvc
