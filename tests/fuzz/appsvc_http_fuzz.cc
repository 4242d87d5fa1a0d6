// appsvc's request handling: bytes as a client sends them (pipelined requests allowed), read by
// the server's parser with its limits, then routed through the API (validation, JSON bodies,
// cache-aside) over in-memory PostgreSQL and Redis. Every answer must be a status the API
// gives and a JSON body; a 5xx from input alone is a defect (only a dead dependency earns one).
#include <cstdint>
#include <cstdlib>
#include <string>

#include "absl/strings/string_view.h"
#include "appsvc/api.h"
#include "common/http/http_request.h"
#include "common/http/http_server.h"
#include "appsvc/testing/fakes.h"
#include "nlohmann/json.hpp"

namespace {

using ::hosting::appsvc::Api;
using ::hosting::appsvc::AppMetrics;
using ::hosting::appsvc::Config;
using ::hosting::appsvc::DependencyHealth;
using ::hosting::appsvc::FakeCache;
using ::hosting::appsvc::FakeRepository;
using ::hosting::http::HttpRequest;
using ::hosting::http::HttpResponse;
using ::hosting::http::HttpServer;
using ::hosting::appsvc::LocalCache;
using ::hosting::appsvc::MatchRoute;
using ::hosting::http::ParseHttpRequest;
using ::hosting::http::ParsedRequest;
using ::hosting::appsvc::Readiness;
using ::hosting::appsvc::RouteMatch;

void Expect(bool condition, const char* what, const HttpResponse& response) {
  if (condition) return;
  std::fprintf(stderr, "%s: %d %s\n", what, response.status, response.body.c_str());
  std::abort();
}

void CheckAnswer(const HttpResponse& response) {
  Expect(response.status >= 200 && response.status < 500, "input alone earned a 5xx", response);
  if (response.content_type == "application/json" && !response.body.empty()) {
    Expect(nlohmann::json::accept(response.body), "answer is not JSON", response);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  hosting::FakeClock clock;
  Config config;
  FakeRepository repo;
  FakeCache cache;
  AppMetrics metrics;
  LocalCache local(1000, absl::Seconds(5), clock);
  Readiness readiness({{"database", [] { return DependencyHealth{true, true, "", 0}; }},
                       {"redis", [] { return DependencyHealth{true, true, "", 0}; }}},
                      absl::Seconds(1), metrics);
  readiness.CheckNow();
  Api api(config, repo, cache, local, readiness, metrics, clock);

  // The server's limits: appsvc's body limit, the server's header limit.
  const uint64_t body_limit = static_cast<uint64_t>(config.max_body_bytes);
  const uint32_t header_limit = static_cast<uint32_t>(HttpServer::Options().header_limit);
  absl::string_view bytes(reinterpret_cast<const char*>(data), size);
  while (!bytes.empty()) {
    ParsedRequest parsed = ParseHttpRequest(bytes, body_limit, header_limit);
    if (parsed.error.has_value()) {
      int s = parsed.error->status;
      Expect(s == 400 || s == 413 || s == 431, "a read error answered other than 400/413/431",
             *parsed.error);
      break;  // the server closes the connection after these
    }
    if (!parsed.request.has_value()) break;  // the bytes end inside a request
    const HttpRequest& request = *parsed.request;
    RouteMatch route = MatchRoute(request.path);
    std::optional<HttpResponse> answer = api.TryFast(request, route);
    CheckAnswer(answer.has_value() ? *answer : api.Handle(request, route));
    if (!parsed.keep_alive || parsed.consumed == 0) break;
    bytes.remove_prefix(parsed.consumed);
  }
  return 0;
}
