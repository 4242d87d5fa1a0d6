#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace hosting::appsvc {

// The routes appsvc serves. Matching is on the path's shape; an ":id" segment must be a
// positive 64-bit integer (anything else is a 400, never a 500).
enum class Route {
  kNotFound,
  kHealth,
  kReady,
  kMetrics,
  kVersion,
  kUsers,           // /api/users
  kUser,            // /api/users/:id
  kUserOrders,      // /api/users/:id/orders
  kOrder,           // /api/orders/:id
};

struct RouteMatch {
  Route route = Route::kNotFound;
  // The route template, used as the metrics label (never the raw path).
  const char* label = "unmatched";
  int64_t id = 0;
  // Set when the path has the route's shape but the id is not a positive integer.
  bool bad_id = false;
  std::string bad_id_text;
  // Methods the route accepts (for 405 and the Allow header).
  std::vector<const char*> methods;
};

RouteMatch MatchRoute(const std::string& path);

// True when `method` is among `match.methods`.
bool MethodAllowed(const RouteMatch& match, const std::string& method);

}  // namespace hosting::appsvc
