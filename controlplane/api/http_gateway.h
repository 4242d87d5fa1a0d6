#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "common/http/http_server.h"
#include "common/http/http_types.h"
#include "controlplane/api/audit.h"
#include "controlplane/api/handlers.h"
#include "controlplane/auth/auth_gate.h"
#include "controlplane/store/event_log.h"
#include "controlplane/store/store.h"
#include "controlplane/telemetry/metrics.h"

namespace hosting::controlplane {

struct HttpGatewayOptions {
  // "127.0.0.1:8480"; the port may be 0 (any free one).
  std::string listen = "127.0.0.1:8480";
  // Threads serving connections, and the calls whose token the gate knows (as gRPC's callback
  // threads serve them).
  int io_threads = 2;
  // Threads that check tokens the gate has not cached (a store read).
  int workers = 2;
  // Calls waiting for a worker beyond which new ones get 429 RESOURCE_EXHAUSTED.
  size_t max_queued = 1000;
  int64_t body_limit = 4 << 20;
  // The web console's built files, served at / (index.html for paths without a file); empty:
  // no console.
  std::string console_dir;
};

// hosting.v1 over HTTP/1.1 and JSON, beside gRPC and sharing its handlers (handlers.h), never
// calling gRPC on itself.
//
// Every unary method is `POST /v1/{Service}/{Method}` with the request as protobuf's canonical
// JSON in the body (empty: the empty request), answered with the response as JSON; methods
// that change nothing also answer `GET` with the request's fields as query parameters. Server
// streams (WatchEvents, WatchRelease, WatchRun) answer as Server-Sent Events: each message a
// `data:` line of JSON with its event-log sequence as the `id:`, so a client resumes after a
// reconnect from `Last-Event-ID`; the stream's end is an `end` event, its failure an `error`
// event. Errors are JSON: {"code": 3, "status": "INVALID_ARGUMENT", "message": ..., "details":
// [google.rpc.BadRequest with its fieldViolations]} with the HTTP status gRPC's code maps to.
//
// Calls carry the same bearer token as gRPC (`Authorization: Bearer ...`), checked by the same
// gate against the same permission table; calls that change something go to the audit trail.
class HttpGateway {
 public:
  HttpGateway(Handlers handlers, AuthGate& gate, EventLog& events, Store& store,
              HostdMetrics& metrics, AuditLog* audit, HttpGatewayOptions options);
  ~HttpGateway();
  HttpGateway(const HttpGateway&) = delete;
  HttpGateway& operator=(const HttpGateway&) = delete;

  // Listens (and reads the console's files); fails naming the address or directory.
  absl::Status Start();
  int port() const { return server_ ? server_->port() : 0; }
  // Ends streams, answers what is running, stops the threads.
  void Shutdown();

  // Every path a call can take, "/v1/ServiceManager/ApplyService", ...
  std::vector<std::string> Paths() const;

  // Answers one request (what the server calls).
  void Handle(http::HttpRequest request, http::HttpServer::Respond respond);

  struct Route;

 private:
  void ServeConsole(const http::HttpRequest& request, const http::HttpServer::Respond& respond);
  // Runs `work` on a worker (a token check that reads the store): false when the queue is full.
  bool Submit(std::function<void()> work);
  void Work();

  // The route of /v1/{service}/{method}, registered; its `run` is the caller's to set.
  Route* NewRoute(const char* service, const char* method, bool stream);
  // Routes to `fn(handlers, request, caller)`, answered at once.
  template <typename H, typename Req, typename Resp, typename Fn>
  void AddSync(const char* service, const char* method, H& handlers, Fn fn);
  template <typename H, typename Req, typename Resp>
  void Add(const char* service, const char* method, H& handlers,
           absl::StatusOr<Resp> (H::*fn)(const Req&));
  template <typename H, typename Req, typename Resp>
  void Add(const char* service, const char* method, H& handlers,
           absl::StatusOr<Resp> (H::*fn)(const Req&, CallerFn));
  template <typename H, typename Req, typename Resp>
  void Add(const char* service, const char* method, H& handlers,
           void (H::*fn)(const Req&, Done<Resp>));
  template <typename H, typename Req, typename Out>
  void Add(const char* service, const char* method, H& handlers,
           absl::StatusOr<LogStreamOptions<Out>> (H::*fn)(const Req&));

  AuthGate& gate_;
  EventLog& events_;
  Store& store_;
  HostdMetrics& metrics_;
  AuditLog* const audit_;
  const HttpGatewayOptions options_;
  std::map<std::string, std::unique_ptr<Route>, std::less<>> routes_;
  // The console's files by path ("/index.html"), read at Start.
  std::map<std::string, std::string, std::less<>> console_;
  std::unique_ptr<http::HttpServer> server_;

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> queue_;
  bool stopping_ = false;
  std::vector<std::thread> workers_;
};

// The HTTP status a gRPC code maps to (as grpc-gateway maps them): INVALID_ARGUMENT 400,
// NOT_FOUND 404, PERMISSION_DENIED 403, UNAVAILABLE 503, ...
int HttpStatusOf(absl::StatusCode code);

// The JSON an error answers with: code, status name, message, and the BadRequest field
// violations the status carries as details.
std::string ErrorJson(const absl::Status& status);

// Sets the fields of `message` named by the query parameters ("name=web&limit=5"; a repeated
// field may repeat): scalar fields by their proto or JSON name. INVALID_ARGUMENT naming a
// parameter that names no such field or whose value does not parse.
absl::Status MessageFromQuery(absl::string_view query, google::protobuf::Message* message);

}  // namespace hosting::controlplane
