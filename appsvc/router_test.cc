#include "appsvc/router.h"

#include "gtest/gtest.h"

namespace hosting::appsvc {
namespace {

TEST(MatchRouteTest, FixedRoutes) {
  EXPECT_EQ(MatchRoute("/health").route, Route::kHealth);
  EXPECT_EQ(MatchRoute("/ready").route, Route::kReady);
  EXPECT_EQ(MatchRoute("/metrics").route, Route::kMetrics);
  EXPECT_EQ(MatchRoute("/api/version").route, Route::kVersion);
  EXPECT_EQ(MatchRoute("/api/users").route, Route::kUsers);
  EXPECT_EQ(MatchRoute("/api/users/").route, Route::kUsers);
}

TEST(MatchRouteTest, IdRoutesUseTemplatesAsLabels) {
  RouteMatch m = MatchRoute("/api/users/42");
  EXPECT_EQ(m.route, Route::kUser);
  EXPECT_EQ(m.id, 42);
  EXPECT_STREQ(m.label, "/api/users/:id");
  EXPECT_FALSE(m.bad_id);
  m = MatchRoute("/api/users/7/orders");
  EXPECT_EQ(m.route, Route::kUserOrders);
  EXPECT_EQ(m.id, 7);
  EXPECT_STREQ(m.label, "/api/users/:id/orders");
  m = MatchRoute("/api/orders/9");
  EXPECT_EQ(m.route, Route::kOrder);
  EXPECT_EQ(m.id, 9);
}

// Found by appsvc_http_fuzz: "GET ?ready HTTP/1.0" made the path empty, and its substr threw
// on the I/O thread, which ended appsvc.
TEST(MatchRouteTest, TargetsThatAreNotPathsMatchNothing) {
  for (const char* target : {"", "*", "?ready", "http://host/api/users", "api/users/1"}) {
    EXPECT_EQ(MatchRoute(target).route, Route::kNotFound) << target;
  }
}

TEST(MatchRouteTest, NonNumericIdsAreBadNotServerErrors) {
  for (const char* path : {"/api/users/abc", "/api/users/-1", "/api/users/0", "/api/users/1.5",
                           "/api/users/99999999999999999999", "/api/orders/x",
                           "/api/users/%20/orders"}) {
    RouteMatch m = MatchRoute(path);
    EXPECT_NE(m.route, Route::kNotFound) << path;
    EXPECT_TRUE(m.bad_id) << path;
  }
}

TEST(MatchRouteTest, UnknownPathsAreNotFoundWithABoundedLabel) {
  for (const char* path : {"/", "/api", "/api/users/1/orders/2", "/random/thing", "/api/orders"}) {
    RouteMatch m = MatchRoute(path);
    EXPECT_EQ(m.route, Route::kNotFound) << path;
    EXPECT_STREQ(m.label, "unmatched");
  }
}

TEST(MethodAllowedTest, PerRoute) {
  EXPECT_TRUE(MethodAllowed(MatchRoute("/api/users"), "POST"));
  EXPECT_FALSE(MethodAllowed(MatchRoute("/api/users"), "DELETE"));
  EXPECT_TRUE(MethodAllowed(MatchRoute("/api/users/1"), "PUT"));
  EXPECT_FALSE(MethodAllowed(MatchRoute("/api/orders/1"), "DELETE"));
  EXPECT_TRUE(MethodAllowed(MatchRoute("/health"), "HEAD"));
}

}  // namespace
}  // namespace hosting::appsvc
