#include "appsvc/api.h"

#include <unistd.h>

#include <atomic>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/log.h"

namespace hosting::appsvc {
namespace {

std::string Hostname() {
  char buf[256] = {0};
  gethostname(buf, sizeof(buf) - 1);
  return buf;
}

std::string IsoNow(absl::Time t) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", t, absl::UTCTimeZone());
}

http::HttpResponse Json(int status, const nlohmann::json& j) {
  http::HttpResponse r;
  r.status = status;
  r.body = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return r;
}

bool IsJsonContentType(const std::string& ct) {
  return ct.empty() ? false : absl::StartsWithIgnoreCase(ct, "application/json");
}

constexpr int kDefaultListLimit = 100;
constexpr int kMaxListLimit = 1000;

}  // namespace

std::string SourceDataBody(const char* source, const std::string& data, const std::string& extra) {
  return absl::StrCat("{\"source\":\"", source, "\",\"data\":", data, extra, "}");
}

Api::Api(const Config& config, Repository& repository, RemoteCache& cache, LocalCache& local,
         Readiness& readiness, AppMetrics& metrics, Clock& clock)
    : config_(config), repository_(repository), cache_(cache), local_(local),
      readiness_(readiness), metrics_(metrics), clock_(clock), started_(clock.Now()),
      hostname_(Hostname()) {}

std::optional<http::HttpResponse> Api::Precheck(const http::HttpRequest& request, const RouteMatch& route) {
  if (route.route == Route::kNotFound) {
    return http::JsonError(404, absl::StrCat("no route for ", request.method, " ", request.path));
  }
  if (!MethodAllowed(route, request.method)) {
    http::HttpResponse r = http::JsonError(405, absl::StrCat("method ", request.method, " is not allowed on ",
                                                 route.label));
    std::string allow;
    for (const char* m : route.methods) absl::StrAppend(&allow, allow.empty() ? "" : ", ", m);
    r.headers.emplace_back("Allow", allow);
    return r;
  }
  if (route.bad_id) {
    return http::FieldError("id", absl::StrCat("'", route.bad_id_text, "' is not a valid id (a positive integer)"));
  }
  if ((request.method == "POST" || request.method == "PUT") &&
      !IsJsonContentType(request.content_type)) {
    return http::JsonError(415, absl::StrCat("Content-Type must be application/json, got '",
                                       request.content_type, "'"));
  }
  return std::nullopt;
}

std::optional<http::HttpResponse> Api::TryFast(const http::HttpRequest& request, const RouteMatch& route) {
  if (auto pre = Precheck(request, route)) return pre;
  switch (route.route) {
    case Route::kHealth:
      return Health();
    case Route::kReady:
      return Ready();
    case Route::kMetrics: {
      http::HttpResponse r;
      r.body = metrics_.Serialize();
      r.content_type = "text/plain; version=0.0.4";
      return r;
    }
    case Route::kVersion:
      return Version();
    default:
      break;
  }
  // In-process cache hits need no worker, unless a fault knob must apply to them, or the
  // invalidation channel is down (a local copy could be stale).
  if (request.method != "GET" || config_.fault_error_rate > 0 ||
      config_.fault_latency > absl::ZeroDuration() || !local_.enabled() ||
      !cache_.invalidations_live()) {
    return std::nullopt;
  }
  std::optional<std::string> hit;
  if (route.route == Route::kUser) {
    hit = local_.Get(UserCacheKey(route.id));
  } else if (route.route == Route::kUsers && request.query.empty()) {
    hit = local_.Get(kUsersListCacheKey);
  }
  if (!hit) return std::nullopt;
  metrics_.CacheHit("local");
  http::HttpResponse r;
  r.body = SourceDataBody("cache", *hit);
  r.headers.emplace_back("X-Cache", "local");
  return r;
}

http::HttpResponse Api::Handle(const http::HttpRequest& request, const RouteMatch& route) {
  if (auto pre = Precheck(request, route)) return *pre;
  if (auto fast = TryFast(request, route)) return *fast;
  if (config_.fault_latency > absl::ZeroDuration()) absl::SleepFor(config_.fault_latency);
  if (FaultInjected()) return http::JsonError(500, "injected fault (FAULT_ERROR_RATE)");
  switch (route.route) {
    case Route::kUsers:
      return request.method == "GET" ? ListUsers(request) : CreateUser(request);
    case Route::kUser:
      if (request.method == "GET") return GetUser(route.id);
      if (request.method == "PUT") return UpdateUser(request, route.id);
      return DeleteUser(route.id);
    case Route::kUserOrders:
      return request.method == "GET" ? ListOrders(route.id) : CreateOrder(request, route.id);
    case Route::kOrder:
      return GetOrder(route.id);
    default:
      return http::JsonError(404, "not found");
  }
}

bool Api::FaultInjected() {
  if (config_.fault_error_rate <= 0) return false;
  // Deterministic spread: exactly the configured share over any window of requests.
  uint64_t n = fault_counter_.fetch_add(1);
  double rate = config_.fault_error_rate;
  return static_cast<uint64_t>((n + 1) * rate) != static_cast<uint64_t>(n * rate);
}

http::HttpResponse Api::Health() {
  if (config_.fault_health_fail) return http::JsonError(500, "unhealthy (FAULT_HEALTH_FAIL)");
  absl::Time now = clock_.Now();
  return Json(200, {{"status", "ok"},
                    {"timestamp", IsoNow(now)},
                    {"hostname", hostname_},
                    {"uptime", absl::ToDoubleSeconds(now - started_)}});
}

http::HttpResponse Api::Ready() {
  Readiness::Snapshot s = readiness_.Get();
  bool ready = s.ready && !config_.fault_health_fail;
  nlohmann::json checks = nlohmann::json::object();
  auto state = [&](const char* dep) -> std::string {
    auto it = s.dependencies.find(dep);
    if (it == s.dependencies.end() || !it->second.configured) return "not configured";
    return it->second.up ? "connected" : "disconnected";
  };
  for (const auto& [name, h] : s.dependencies) {
    nlohmann::json c = {{"status", h.configured ? (h.up ? "up" : "down") : "not configured"},
                        {"latency_ms", h.latency_ms}};
    if (!h.detail.empty()) c["detail"] = h.detail;
    checks[name] = c;
  }
  absl::Time now = clock_.Now();
  std::string status = s.draining ? "draining" : (ready ? (s.degraded ? "degraded" : "ok") : "unavailable");
  if (config_.fault_health_fail) status = "unavailable";
  return Json(ready ? 200 : 503, {{"status", status},
                                  {"timestamp", IsoNow(now)},
                                  {"hostname", hostname_},
                                  {"uptime", absl::ToDoubleSeconds(now - started_)},
                                  {"database", state("database")},
                                  {"redis", state("redis")},
                                  {"replica", state("replica")},
                                  {"degraded", s.degraded},
                                  {"checked_at", IsoNow(s.checked_at)},
                                  {"checks", checks}});
}

http::HttpResponse Api::Version() {
  return Json(200, {{"version", HOSTING_APPSVC_VERSION},
                    {"git_revision", HOSTING_GIT_REVISION},
                    {"hostname", hostname_},
                    {"env", config_.env},
                    {"hosting_service", config_.hosting_service},
                    {"hosting_revision", config_.hosting_revision}});
}

http::HttpResponse Api::FromStatus(const absl::Status& status) {
  if (absl::IsUnavailable(status) || absl::IsDeadlineExceeded(status)) {
    // Why, for the operator: at most one line a second however many requests fail.
    static std::atomic<int64_t> last_logged{0};
    const int64_t now = absl::GetCurrentTimeNanos();
    int64_t last = last_logged.load();
    if (now - last >= 1'000'000'000 && last_logged.compare_exchange_strong(last, now)) {
      LogWarning("database error answered 503", {{"error", std::string(status.message())}});
    }
    return http::JsonError(503, absl::IsUnavailable(status) ? "database unavailable"
                                                       : "database timed out");
  }
  if (absl::IsAlreadyExists(status)) {
    http::HttpResponse r = Json(409, {{"error", "email already exists"}, {"field", "email"}});
    return r;
  }
  LogError("request failed", {{"error", status.ToString()}});
  return http::JsonError(500, "internal error");
}

Api::CachedRead Api::ReadThrough(
    const std::string& key, absl::Duration ttl,
    const std::function<absl::StatusOr<std::optional<std::string>>()>& load) {
  CachedRead out;
  const bool use_local = cache_.invalidations_live();
  if (!use_local) {
    local_.Clear();
  } else if (std::optional<std::string> hit = local_.Get(key)) {
    metrics_.CacheHit("local");
    out.data = std::move(hit);
    out.source = "cache";
    return out;
  }
  if (cache_.available()) {
    absl::StatusOr<std::optional<std::string>> remote = cache_.Get(key);
    if (remote.ok() && remote->has_value()) {
      metrics_.CacheHit("redis");
      if (use_local) local_.Put(key, **remote);
      out.data = std::move(*remote);
      out.source = "cache";
      return out;
    }
    if (!remote.ok()) metrics_.CacheError();
  }
  metrics_.CacheMiss();
  absl::StatusOr<std::optional<std::string>> loaded = load();
  if (!loaded.ok()) {
    out.error = FromStatus(loaded.status());
    return out;
  }
  if (loaded->has_value()) {
    if (cache_.available() && !cache_.Set(key, **loaded, ttl).ok()) metrics_.CacheError();
    if (use_local) local_.Put(key, **loaded);
  }
  out.data = std::move(*loaded);
  return out;
}

void Api::Invalidate(std::vector<std::string> keys) {
  for (const auto& k : keys) local_.Erase(k);
  if (!cache_.Invalidate(keys).ok()) {
    // Redis is down: its entries cannot be stale-read while it is down, and when it returns
    // they may be; appsvc clears them on reconnect (see RedisCache).
    metrics_.CacheError();
  }
}

http::HttpResponse Api::ListUsers(const http::HttpRequest& request) {
  int limit = kDefaultListLimit;
  int64_t cursor = 0;
  std::string v;
  if (http::QueryParam(request.query, "limit", &v)) {
    if (!absl::SimpleAtoi(v, &limit) || limit < 1 || limit > kMaxListLimit) {
      return http::FieldError("limit", absl::StrCat("'", v, "' is not a number between 1 and ", kMaxListLimit));
    }
  }
  if (http::QueryParam(request.query, "cursor", &v)) {
    if (!absl::SimpleAtoi(v, &cursor) || cursor < 1) {
      return http::FieldError("cursor", absl::StrCat("'", v, "' is not a valid cursor"));
    }
  }
  auto load = [&]() -> absl::StatusOr<std::optional<std::string>> {
    absl::StatusOr<std::vector<User>> users = repository_.ListUsers(limit, cursor);
    if (!users.ok()) return users.status();
    nlohmann::json arr = nlohmann::json::array();
    for (const auto& u : *users) arr.push_back(ToJson(u));
    return std::optional<std::string>(arr.dump());
  };
  // Only the default first page is cached (key users:all, as the reference platform did).
  if (limit == kDefaultListLimit && cursor == 0) {
    CachedRead r = ReadThrough(kUsersListCacheKey, config_.cache_ttl_list, load);
    if (r.error) return *r.error;
    http::HttpResponse resp;
    resp.body = SourceDataBody(r.source, *r.data);
    return resp;
  }
  absl::StatusOr<std::optional<std::string>> data = load();
  if (!data.ok()) return FromStatus(data.status());
  // The next cursor is the last id of a full page.
  nlohmann::json arr = nlohmann::json::parse(**data);
  std::string next = "null";
  if (static_cast<int>(arr.size()) == limit) next = absl::StrCat("\"", arr.back()["id"].get<int64_t>(), "\"");
  http::HttpResponse resp;
  resp.body = SourceDataBody("database", **data, absl::StrCat(",\"next_cursor\":", next));
  return resp;
}

http::HttpResponse Api::GetUser(int64_t id) {
  CachedRead r = ReadThrough(UserCacheKey(id), config_.cache_ttl_user,
                             [&]() -> absl::StatusOr<std::optional<std::string>> {
                               absl::StatusOr<std::optional<User>> u = repository_.GetUser(id);
                               if (!u.ok()) return u.status();
                               if (!u->has_value()) return std::optional<std::string>();
                               return std::optional<std::string>(ToJson(**u).dump());
                             });
  if (r.error) return *r.error;
  if (!r.data) return http::JsonError(404, absl::StrCat("user ", id, " not found"));
  http::HttpResponse resp;
  resp.body = SourceDataBody(r.source, *r.data);
  return resp;
}

http::HttpResponse Api::CreateUser(const http::HttpRequest& request) {
  absl::StatusOr<nlohmann::json> body = ParseJsonObject(request.body);
  if (!body.ok()) return http::JsonError(400, std::string(body.status().message()));
  UserInput input;
  if (auto e = ParseUserInput(*body, /*require_all=*/true, &input)) return http::FieldError(e->field, e->message);
  absl::StatusOr<User> user = repository_.CreateUser(*input.name, *input.email);
  if (!user.ok()) return FromStatus(user.status());
  Invalidate({kUsersListCacheKey, UserCacheKey(user->id)});
  return Json(201, ToJson(*user));
}

http::HttpResponse Api::UpdateUser(const http::HttpRequest& request, int64_t id) {
  absl::StatusOr<nlohmann::json> body = ParseJsonObject(request.body);
  if (!body.ok()) return http::JsonError(400, std::string(body.status().message()));
  UserInput input;
  if (auto e = ParseUserInput(*body, /*require_all=*/false, &input)) return http::FieldError(e->field, e->message);
  absl::StatusOr<std::optional<User>> user = repository_.UpdateUser(id, input);
  if (!user.ok()) return FromStatus(user.status());
  if (!user->has_value()) return http::JsonError(404, absl::StrCat("user ", id, " not found"));
  Invalidate({kUsersListCacheKey, UserCacheKey(id)});
  return Json(200, ToJson(**user));
}

http::HttpResponse Api::DeleteUser(int64_t id) {
  absl::StatusOr<bool> deleted = repository_.DeleteUser(id);
  if (!deleted.ok()) return FromStatus(deleted.status());
  if (!*deleted) return http::JsonError(404, absl::StrCat("user ", id, " not found"));
  Invalidate({kUsersListCacheKey, UserCacheKey(id)});
  http::HttpResponse r;
  r.status = 204;
  r.content_type.clear();
  return r;
}

http::HttpResponse Api::ListOrders(int64_t user_id) {
  absl::StatusOr<std::optional<std::vector<Order>>> orders = repository_.ListOrders(user_id);
  if (!orders.ok()) return FromStatus(orders.status());
  if (!orders->has_value()) return http::JsonError(404, absl::StrCat("user ", user_id, " not found"));
  nlohmann::json arr = nlohmann::json::array();
  for (const auto& o : **orders) arr.push_back(ToJson(o));
  http::HttpResponse r;
  r.body = SourceDataBody("database", arr.dump());
  return r;
}

http::HttpResponse Api::CreateOrder(const http::HttpRequest& request, int64_t user_id) {
  absl::StatusOr<nlohmann::json> body = ParseJsonObject(request.body);
  if (!body.ok()) return http::JsonError(400, std::string(body.status().message()));
  OrderInput input;
  if (auto e = ParseOrderInput(*body, &input)) return http::FieldError(e->field, e->message);
  absl::StatusOr<std::optional<Order>> order = repository_.CreateOrder(user_id, input);
  if (!order.ok()) return FromStatus(order.status());
  if (!order->has_value()) return http::JsonError(404, absl::StrCat("user ", user_id, " not found"));
  return Json(201, ToJson(**order));
}

http::HttpResponse Api::GetOrder(int64_t id) {
  absl::StatusOr<std::optional<Order>> order = repository_.GetOrder(id);
  if (!order.ok()) return FromStatus(order.status());
  if (!order->has_value()) return http::JsonError(404, absl::StrCat("order ", id, " not found"));
  http::HttpResponse r;
  r.body = SourceDataBody("database", ToJson(**order).dump());
  return r;
}

}  // namespace hosting::appsvc
