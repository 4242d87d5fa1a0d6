#include "appsvc/app.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/log.h"
#include "common/status_macros.h"

namespace hosting::appsvc {
namespace {

const std::string& MethodLabel(const std::string& method) {
  static const std::string* known[] = {new std::string("GET"),    new std::string("POST"),
                                       new std::string("PUT"),    new std::string("DELETE"),
                                       new std::string("HEAD"),   new std::string("PATCH"),
                                       new std::string("OPTIONS")};
  static const std::string* other = new std::string("OTHER");
  for (const std::string* m : known) {
    if (*m == method) return *m;
  }
  return *other;  // bounded label values, whatever clients send
}

}  // namespace

App::App(Config config) : config_(std::move(config)) {
  if (config_.access_log == "on") {
    access_sample_ = 1;
  } else if (config_.access_log.rfind("sample:", 0) == 0) {
    int n = 0;
    if (absl::SimpleAtoi(config_.access_log.substr(7), &n) && n > 0) access_sample_ = n;
  }
}

App::~App() {
  if (server_) server_->Shutdown(absl::Seconds(1));
  if (workers_) workers_->Stop();
  if (readiness_) readiness_->Stop();
  if (cache_) cache_->Stop();
}

absl::Status App::Start() {
  if (config_.migrate_on_start) {
    ASSIGN_OR_RETURN(std::vector<int> applied, Migrate(config_));
    LogInfo("migrations checked", {{"applied", std::to_string(applied.size())}});
  }
  local_ = std::make_unique<LocalCache>(static_cast<size_t>(config_.local_cache_entries),
                                        config_.local_cache_ttl, Clock::Real());
  repository_ = std::make_unique<PgRepository>(config_, metrics_);
  cache_ = std::make_unique<RedisCache>(
      config_, [this](const std::string& key) { local_->Erase(key); },
      [this] { local_->Clear(); });
  readiness_ = std::make_unique<Readiness>(
      std::vector<std::pair<std::string, Readiness::Probe>>{
          {"database", [this] { return repository_->CheckPrimary(); }},
          {"replica", [this] { return repository_->CheckReplica(); }},
          {"redis", [this] { return cache_->Check(); }}},
      absl::Milliseconds(500), metrics_, config_.db_primary_wait);
  readiness_->Start();
  cache_->StartSubscriber();
  api_ = std::make_unique<Api>(config_, *repository_, *cache_, *local_, *readiness_, metrics_,
                               Clock::Real());
  workers_ = std::make_unique<WorkerPool>(config_.db_pool_size, metrics_);
  http::HttpServer::Options opts;
  opts.address = config_.bind_address;
  opts.port = config_.port;
  opts.threads = config_.io_threads > 0 ? config_.io_threads
                                        : static_cast<int>(std::thread::hardware_concurrency());
  opts.body_limit = config_.max_body_bytes;
  opts.idle_timeout = config_.idle_timeout;
  opts.read_timeout = config_.read_timeout;
  server_ = std::make_unique<http::HttpServer>(
      opts, [this](http::HttpRequest r, http::HttpServer::Respond respond) { Handle(std::move(r), std::move(respond)); });
  RETURN_IF_ERROR(server_->Start());
  Readiness::Snapshot s = readiness_->Get();
  LogInfo("appsvc serving",
          {{"port", std::to_string(server_->port())},
           {"io_threads", std::to_string(opts.threads)},
           {"db_pool", std::to_string(config_.db_pool_size)},
           {"database", s.dependencies["database"].up ? "up" : s.dependencies["database"].detail},
           {"redis", s.dependencies["redis"].up ? "up" : s.dependencies["redis"].detail},
           {"replica", config_.db_replica_host.empty() ? "not configured"
                                                        : (s.dependencies["replica"].up ? "up" : "down")}});
  return absl::OkStatus();
}

bool App::ShouldLogAccess() {
  if (access_sample_ == 0) return false;
  if (access_sample_ == 1) return true;
  return access_counter_.fetch_add(1) % static_cast<uint64_t>(access_sample_) == 0;
}

void App::Finish(const http::HttpRequest& request, const RouteMatch& route, absl::Time start,
                 http::HttpResponse response, const http::HttpServer::Respond& respond) {
  const double seconds = absl::ToDoubleSeconds(absl::Now() - start);
  const int status = response.status;
  metrics_.ObserveRequest(MethodLabel(request.method), route.label, status, seconds);
  metrics_.AddInFlight(-1);
  if (ShouldLogAccess()) {
    LogInfo("request", {{"method", request.method},
                        {"path", request.path},
                        {"route", route.label},
                        {"status", std::to_string(status)},
                        {"duration_ms", absl::StrCat(seconds * 1000)},
                        {"request_id", request.request_id}});
  }
  respond(std::move(response));
}

void App::Handle(http::HttpRequest request, http::HttpServer::Respond respond) {
  const absl::Time start = absl::Now();
  metrics_.AddInFlight(1);
  RouteMatch route = MatchRoute(request.path);
  if (std::optional<http::HttpResponse> fast = api_->TryFast(request, route)) {
    Finish(request, route, start, std::move(*fast), respond);
    return;
  }
  workers_->Submit([this, request = std::move(request), route = std::move(route), start,
                    respond = std::move(respond)]() {
    http::HttpResponse response = api_->Handle(request, route);
    Finish(request, route, start, std::move(response), respond);
  });
}

bool App::Drain() {
  LogInfo("draining", {{"drain_delay_ms", std::to_string(absl::ToInt64Milliseconds(config_.drain_delay))},
                       {"grace_ms", std::to_string(absl::ToInt64Milliseconds(config_.shutdown_grace))}});
  readiness_->SetDraining();
  absl::SleepFor(config_.drain_delay);
  server_->StopAccepting();
  const bool clean = server_->Shutdown(config_.shutdown_grace);
  workers_->Stop();
  readiness_->Stop();
  cache_->Stop();
  LogInfo("stopped", {{"clean", clean ? "true" : "false"}});
  return clean;
}

bool ProbeHealth(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return false;
  timeval tv{2, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bool ok = false;
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
    const char req[] = "GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
    if (send(fd, req, sizeof(req) - 1, 0) == static_cast<ssize_t>(sizeof(req) - 1)) {
      char buf[64] = {0};
      ssize_t n = recv(fd, buf, sizeof(buf) - 1, 0);
      ok = n > 12 && std::string(buf, 12) == "HTTP/1.1 200";
    }
  }
  close(fd);
  return ok;
}

}  // namespace hosting::appsvc
