#include "appsvc/router.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"

namespace hosting::appsvc {
namespace {

bool ParseId(absl::string_view s, int64_t* id) {
  if (s.empty() || s.size() > 19) return false;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
  }
  return absl::SimpleAtoi(s, id) && *id > 0;
}

RouteMatch Make(Route r, const char* label, std::vector<const char*> methods) {
  RouteMatch m;
  m.route = r;
  m.label = label;
  m.methods = std::move(methods);
  return m;
}

}  // namespace

RouteMatch MatchRoute(const std::string& raw_path) {
  absl::string_view path = raw_path;
  while (path.size() > 1 && path.back() == '/') path.remove_suffix(1);
  if (path == "/health") return Make(Route::kHealth, "/health", {"GET", "HEAD"});
  if (path == "/ready") return Make(Route::kReady, "/ready", {"GET", "HEAD"});
  if (path == "/metrics") return Make(Route::kMetrics, "/metrics", {"GET"});
  if (path == "/api/version") return Make(Route::kVersion, "/api/version", {"GET"});
  if (path == "/api/users") return Make(Route::kUsers, "/api/users", {"GET", "POST"});

  // A target that is not a path ("?x", "*", "http://host/x") names no route: 404.
  if (path.empty() || path[0] != '/') return RouteMatch();
  std::vector<absl::string_view> parts = absl::StrSplit(path.substr(1), '/');
  RouteMatch m;
  if (parts.size() == 3 && parts[0] == "api" && parts[1] == "users") {
    m = Make(Route::kUser, "/api/users/:id", {"GET", "PUT", "DELETE"});
  } else if (parts.size() == 4 && parts[0] == "api" && parts[1] == "users" &&
             parts[3] == "orders") {
    m = Make(Route::kUserOrders, "/api/users/:id/orders", {"GET", "POST"});
  } else if (parts.size() == 3 && parts[0] == "api" && parts[1] == "orders") {
    m = Make(Route::kOrder, "/api/orders/:id", {"GET"});
  } else {
    return m;
  }
  if (!ParseId(parts[2], &m.id)) {
    m.bad_id = true;
    m.bad_id_text = std::string(parts[2].substr(0, 64));
  }
  return m;
}

bool MethodAllowed(const RouteMatch& match, const std::string& method) {
  for (const char* m : match.methods) {
    if (method == m) return true;
  }
  return false;
}

}  // namespace hosting::appsvc
