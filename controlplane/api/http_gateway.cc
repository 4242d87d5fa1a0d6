#include "controlplane/api/http_gateway.h"

#include <filesystem>
#include <fstream>
#include <sstream>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/log.h"
#include "controlplane/api/log_stream.h"
#include "controlplane/api/unary.h"
#include "controlplane/auth/permissions.h"
#include "controlplane/spec/validation.h"
#include "google/protobuf/util/json_util.h"
#include "google/rpc/error_details.pb.h"
#include "nlohmann/json.hpp"

namespace hosting::controlplane {
namespace {

using Respond = http::HttpServer::Respond;

constexpr char kJson[] = "application/json";

// Protobuf's canonical JSON: fields at their defaults are left out (printing them costs hostd
// half again per call, in protobuf's converter).
std::string ToJson(const google::protobuf::Message& message) {
  std::string out;
  google::protobuf::util::JsonPrintOptions options;
  if (!google::protobuf::util::MessageToJsonString(message, &out, options).ok()) return "{}";
  return out;
}

http::HttpResponse JsonResponse(int status, std::string body) {
  http::HttpResponse r;
  r.status = status;
  r.body = std::move(body);
  r.content_type = kJson;
  r.headers.emplace_back("Cache-Control", "no-store");
  return r;
}

http::HttpResponse ErrorResponse(const absl::Status& status) {
  return JsonResponse(HttpStatusOf(status.code()), ErrorJson(status));
}

// The request message from the HTTP request: the JSON body (POST) or the query (GET).
absl::Status ParseRequest(const http::HttpRequest& request, google::protobuf::Message* message) {
  if (request.method == "GET") return MessageFromQuery(request.query, message);
  if (absl::StripAsciiWhitespace(request.body).empty()) return absl::OkStatus();
  // The body is JSON whatever Content-Type says (curl -d sends a form's).
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = false;
  auto st = google::protobuf::util::JsonStringToMessage(request.body, message, options);
  if (!st.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("request body is not a valid ",
                                                   message->GetDescriptor()->full_name(),
                                                   " in JSON: ", std::string(st.message())));
  }
  return absl::OkStatus();
}

const char* ContentTypeOf(absl::string_view path) {
  if (absl::EndsWith(path, ".html")) return "text/html; charset=utf-8";
  if (absl::EndsWith(path, ".js")) return "text/javascript; charset=utf-8";
  if (absl::EndsWith(path, ".css")) return "text/css; charset=utf-8";
  if (absl::EndsWith(path, ".svg")) return "image/svg+xml";
  if (absl::EndsWith(path, ".png")) return "image/png";
  if (absl::EndsWith(path, ".json")) return kJson;
  if (absl::EndsWith(path, ".ico")) return "image/x-icon";
  return "application/octet-stream";
}

// A LogStream's transport as Server-Sent Events over one HTTP response (see LogStream for the
// shape it has to have). Each message is `id: <sequence>` and `data: <JSON>`; the end is an
// `end` event, a failure an `error` event with the error's JSON. OnDone runs once every write
// has come back, on the connection's thread, never from inside a call of the stream's.
template <typename Out>
class SseSink {
 public:
  explicit SseSink(std::shared_ptr<http::HttpStream> stream) : stream_(std::move(stream)) {
    stream_->OnClosed([this] { OnCancel(); });
  }
  virtual ~SseSink() = default;

  virtual void OnWriteDone(bool ok) = 0;
  virtual void OnCancel() = 0;
  virtual void OnDone() = 0;

  // The sequence of the event whose message is written next.
  void NoteSequence(int64_t sequence) { next_id_ = sequence; }

  void StartWrite(const Out* message) {
    std::string frame = absl::StrCat("id: ", next_id_, "\ndata: ", ToJson(*message), "\n\n");
    {
      std::lock_guard<std::mutex> lock(mu_);
      writing_ = true;
    }
    stream_->Write(std::move(frame), [this](bool ok) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        writing_ = false;
      }
      OnWriteDone(ok);
      MaybeDone();
    });
  }

  void Finish(grpc::Status status) {
    std::string frame;
    if (status.ok()) {
      frame = "event: end\ndata: {}\n\n";
    } else if (status.error_code() != grpc::StatusCode::CANCELLED) {
      absl::Status error(static_cast<absl::StatusCode>(status.error_code()),
                         status.error_message());
      frame = absl::StrCat("event: error\ndata: ", ErrorJson(error), "\n\n");
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      finished_ = true;
    }
    stream_->Write(std::move(frame), [this](bool) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        final_written_ = true;
      }
      MaybeDone();
    });
    stream_->End();
  }

 private:
  void MaybeDone() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!finished_ || !final_written_ || writing_ || done_) return;
      done_ = true;
    }
    OnDone();
  }

  std::shared_ptr<http::HttpStream> stream_;
  int64_t next_id_ = 0;
  std::mutex mu_;
  bool writing_ = false;
  bool finished_ = false;
  bool final_written_ = false;
  bool done_ = false;
};

}  // namespace

// One call in flight: the HTTP request, who makes it, where its answer goes.
struct GatewayCall {
  http::HttpRequest request;
  Caller caller;
  Respond respond;
};

struct HttpGateway::Route {
  std::string method;  // "/hosting.v1.ServiceManager/ApplyService"
  std::string name;    // "ApplyService"
  bool mutates = false;
  bool stream = false;
  // Parses the request and answers; on a worker, the caller authorized.
  std::function<void(GatewayCall)> run;
};

namespace {

// Answers a unary call: counted, audited when it changes something, as JSON.
void Answer(HostdMetrics& metrics, AuditLog* audit, const HttpGateway::Route& route,
            const GatewayCall& call, const google::protobuf::Message& request,
            const absl::Status& status, const google::protobuf::Message* response) {
  metrics.CountHttp(route.name, GrpcCodeName(static_cast<grpc::StatusCode>(status.code())));
  if (route.mutates && audit != nullptr) {
    hosting::v1::AuditEntry entry;
    entry.set_principal(call.caller.principal);
    entry.set_peer(absl::StrCat("http:", call.request.peer));
    entry.set_method(route.method);
    entry.set_service(ServiceNamedIn(request));
    entry.set_request(RedactedJson(request));
    entry.set_code(GrpcCodeName(static_cast<grpc::StatusCode>(status.code())));
    entry.set_message(std::string(status.message()));
    audit->Record(std::move(entry));
  }
  if (!status.ok()) {
    call.respond(ErrorResponse(status));
    return;
  }
  call.respond(JsonResponse(200, ToJson(*response)));
}

}  // namespace

int HttpStatusOf(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kOk:
      return 200;
    case absl::StatusCode::kCancelled:
      return 499;
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kOutOfRange:
      return 400;
    case absl::StatusCode::kDeadlineExceeded:
      return 504;
    case absl::StatusCode::kNotFound:
      return 404;
    case absl::StatusCode::kAlreadyExists:
    case absl::StatusCode::kAborted:
      return 409;
    case absl::StatusCode::kPermissionDenied:
      return 403;
    case absl::StatusCode::kUnauthenticated:
      return 401;
    case absl::StatusCode::kResourceExhausted:
      return 429;
    case absl::StatusCode::kUnimplemented:
      return 501;
    case absl::StatusCode::kUnavailable:
      return 503;
    default:
      return 500;
  }
}

std::string ErrorJson(const absl::Status& status) {
  nlohmann::json j = {
      {"code", static_cast<int>(status.code())},
      {"status", GrpcCodeName(static_cast<grpc::StatusCode>(status.code()))},
      {"message", std::string(status.message())},
  };
  nlohmann::json details = nlohmann::json::array();
  if (auto payload = status.GetPayload(kBadRequestTypeUrl); payload.has_value()) {
    google::rpc::BadRequest bad;
    if (bad.ParseFromString(std::string(*payload))) {
      nlohmann::json violations = nlohmann::json::array();
      for (const auto& v : bad.field_violations()) {
        violations.push_back({{"field", v.field()}, {"description", v.description()}});
      }
      details.push_back({{"@type", kBadRequestTypeUrl}, {"fieldViolations", violations}});
    }
  }
  j["details"] = details;
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

absl::Status MessageFromQuery(absl::string_view query, google::protobuf::Message* message) {
  using google::protobuf::FieldDescriptor;
  const google::protobuf::Descriptor* d = message->GetDescriptor();
  const google::protobuf::Reflection* r = message->GetReflection();
  for (absl::string_view pair : absl::StrSplit(query, '&', absl::SkipEmpty())) {
    const size_t eq = pair.find('=');
    const std::string key(pair.substr(0, eq));
    std::string value;
    http::QueryParam(std::string(pair), key, &value);
    const FieldDescriptor* f = d->FindFieldByName(key);
    if (f == nullptr) f = d->FindFieldByCamelcaseName(key);
    if (f == nullptr) {
      return InvalidArgumentWithViolations(
          {{key, absl::StrCat("no such field in ", d->full_name())}});
    }
    auto bad = [&](const char* what) {
      return InvalidArgumentWithViolations(
          {{std::string(f->name()), absl::StrCat("'", value, "' is not ", what)}});
    };
    switch (f->cpp_type()) {
      case FieldDescriptor::CPPTYPE_STRING:
        f->is_repeated() ? r->AddString(message, f, value) : r->SetString(message, f, value);
        break;
      case FieldDescriptor::CPPTYPE_INT32: {
        int32_t v;
        if (!absl::SimpleAtoi(value, &v)) return bad("an integer");
        f->is_repeated() ? r->AddInt32(message, f, v) : r->SetInt32(message, f, v);
        break;
      }
      case FieldDescriptor::CPPTYPE_INT64: {
        int64_t v;
        if (!absl::SimpleAtoi(value, &v)) return bad("an integer");
        f->is_repeated() ? r->AddInt64(message, f, v) : r->SetInt64(message, f, v);
        break;
      }
      case FieldDescriptor::CPPTYPE_UINT32: {
        uint32_t v;
        if (!absl::SimpleAtoi(value, &v)) return bad("an unsigned integer");
        f->is_repeated() ? r->AddUInt32(message, f, v) : r->SetUInt32(message, f, v);
        break;
      }
      case FieldDescriptor::CPPTYPE_UINT64: {
        uint64_t v;
        if (!absl::SimpleAtoi(value, &v)) return bad("an unsigned integer");
        f->is_repeated() ? r->AddUInt64(message, f, v) : r->SetUInt64(message, f, v);
        break;
      }
      case FieldDescriptor::CPPTYPE_BOOL: {
        bool v;
        if (value.empty()) {
          v = true;  // "?no_follow" alone
        } else if (!absl::SimpleAtob(value, &v)) {
          return bad("true or false");
        }
        f->is_repeated() ? r->AddBool(message, f, v) : r->SetBool(message, f, v);
        break;
      }
      case FieldDescriptor::CPPTYPE_DOUBLE: {
        double v;
        if (!absl::SimpleAtod(value, &v)) return bad("a number");
        f->is_repeated() ? r->AddDouble(message, f, v) : r->SetDouble(message, f, v);
        break;
      }
      case FieldDescriptor::CPPTYPE_ENUM: {
        const google::protobuf::EnumValueDescriptor* e =
            f->enum_type()->FindValueByName(absl::AsciiStrToUpper(value));
        if (e == nullptr) return bad(std::string(f->enum_type()->name()).c_str());
        f->is_repeated() ? r->AddEnum(message, f, e) : r->SetEnum(message, f, e);
        break;
      }
      default:
        return InvalidArgumentWithViolations(
            {{std::string(f->name()),
              "a message field cannot be a query parameter; POST the request as JSON"}});
    }
  }
  return absl::OkStatus();
}

// --- Routes ---

HttpGateway::Route* HttpGateway::NewRoute(const char* service, const char* method, bool stream) {
  auto route = std::make_unique<Route>();
  route->name = method;
  route->method = absl::StrCat("/hosting.v1.", service, "/", method);
  route->stream = stream;
  Route* r = route.get();
  routes_[absl::StrCat("/v1/", service, "/", method)] = std::move(route);
  return r;
}

template <typename H, typename Req, typename Resp, typename Fn>
void HttpGateway::AddSync(const char* service, const char* method, H& handlers, Fn fn) {
  Route* r = NewRoute(service, method, /*stream=*/false);
  r->run = [this, r, &handlers, fn](GatewayCall call) {
    Req request;
    if (absl::Status st = ParseRequest(call.request, &request); !st.ok()) {
      Answer(metrics_, audit_, *r, call, request, st, nullptr);
      return;
    }
    const Caller& caller = call.caller;
    absl::StatusOr<Resp> result = fn(handlers, request, [&caller] { return caller; });
    Answer(metrics_, audit_, *r, call, request, result.status(), result.ok() ? &*result : nullptr);
  };
}

template <typename H, typename Req, typename Resp>
void HttpGateway::Add(const char* service, const char* method, H& handlers,
                      absl::StatusOr<Resp> (H::*fn)(const Req&)) {
  AddSync<H, Req, Resp>(service, method, handlers,
                        [fn](H& h, const Req& req, CallerFn) { return (h.*fn)(req); });
}

template <typename H, typename Req, typename Resp>
void HttpGateway::Add(const char* service, const char* method, H& handlers,
                      absl::StatusOr<Resp> (H::*fn)(const Req&, CallerFn)) {
  AddSync<H, Req, Resp>(service, method, handlers, [fn](H& h, const Req& req, CallerFn caller) {
    return (h.*fn)(req, caller);
  });
}

template <typename H, typename Req, typename Resp>
void HttpGateway::Add(const char* service, const char* method, H& handlers,
                      void (H::*fn)(const Req&, Done<Resp>)) {
  Route* r = NewRoute(service, method, /*stream=*/false);
  r->run = [this, r, &handlers, fn](GatewayCall call) {
    auto request = std::make_shared<Req>();
    if (absl::Status st = ParseRequest(call.request, request.get()); !st.ok()) {
      Answer(metrics_, audit_, *r, call, *request, st, nullptr);
      return;
    }
    auto shared = std::make_shared<GatewayCall>(std::move(call));
    (handlers.*fn)(*request, [this, r, shared, request](absl::StatusOr<Resp> result) {
      Answer(metrics_, audit_, *r, *shared, *request, result.status(),
             result.ok() ? &*result : nullptr);
    });
  };
}

template <typename H, typename Req, typename Out>
void HttpGateway::Add(const char* service, const char* method, H& handlers,
                      absl::StatusOr<LogStreamOptions<Out>> (H::*fn)(const Req&)) {
  Route* r = NewRoute(service, method, /*stream=*/true);
  r->run = [this, r, &handlers, fn](GatewayCall call) {
    Req request;
    absl::Status parsed = ParseRequest(call.request, &request);
    absl::StatusOr<LogStreamOptions<Out>> options =
        parsed.ok() ? (handlers.*fn)(request) : absl::StatusOr<LogStreamOptions<Out>>(parsed);
    metrics_.CountHttp(r->name,
                       GrpcCodeName(static_cast<grpc::StatusCode>(options.status().code())));
    if (!options.ok()) {
      call.respond(ErrorResponse(options.status()));
      return;
    }
    // A client that reconnects resumes after the last event it saw.
    if (int64_t last = 0; !call.request.last_event_id.empty() &&
                          absl::SimpleAtoi(call.request.last_event_id, &last) && last >= 0) {
      options->replay_after = last;
    }
    http::HttpResponse head;
    head.content_type = "text/event-stream";
    head.headers.emplace_back("Cache-Control", "no-store");
    head.headers.emplace_back("X-Accel-Buffering", "no");
    head.stream =
        [this, options = *std::move(options)](std::shared_ptr<http::HttpStream> stream) mutable {
          using Stream = LogStream<Out, SseSink<Out>>;
          absl::StatusOr<Stream*> opened =
              Stream::TryOpen(events_, store_, metrics_, std::move(options), stream);
          if (!opened.ok()) {
            stream->Write(absl::StrCat("event: error\ndata: ", ErrorJson(opened.status()), "\n\n"),
                          nullptr);
            stream->End();
          }
        };
    call.respond(std::move(head));
  };
}

HttpGateway::HttpGateway(Handlers h, AuthGate& gate, EventLog& events, Store& store,
                         HostdMetrics& metrics, AuditLog* audit, HttpGatewayOptions options)
    : gate_(gate),
      events_(events),
      store_(store),
      metrics_(metrics),
      audit_(audit),
      options_(std::move(options)) {
  Add("ServiceManager", "ApplyService", h.services, &ServiceHandlers::ApplyService);
  Add("ServiceManager", "GetService", h.services, &ServiceHandlers::GetService);
  Add("ServiceManager", "ListServices", h.services, &ServiceHandlers::ListServices);
  Add("ServiceManager", "DeleteService", h.services, &ServiceHandlers::DeleteService);
  Add("ServiceManager", "ScaleService", h.services, &ServiceHandlers::ScaleService);

  Add("Cluster", "ListNodes", h.cluster, &ClusterHandlers::ListNodes);
  Add("Cluster", "GetNode", h.cluster, &ClusterHandlers::GetNode);
  Add("Cluster", "DrainNode", h.cluster, &ClusterHandlers::DrainNode);
  Add("Cluster", "ActivateNode", h.cluster, &ClusterHandlers::ActivateNode);
  Add("Cluster", "GetServiceStatus", h.cluster, &ClusterHandlers::GetServiceStatus);
  Add("Cluster", "GetTaskLogs", h.cluster, &ClusterHandlers::GetTaskLogs);
  Add("Cluster", "RestartTask", h.cluster, &ClusterHandlers::RestartTask);
  Add("Cluster", "PullImage", h.cluster, &ClusterHandlers::PullImage);
  Add("Cluster", "WatchEvents", h.cluster, &ClusterHandlers::WatchEvents);
  Add("Cluster", "GetControlPlane", h.cluster, &ClusterHandlers::GetControlPlane);
  Add("Cluster", "ListAudit", h.cluster, &ClusterHandlers::ListAudit);

  Add("Releases", "StartRelease", h.releases, &ReleaseHandlers::StartRelease);
  Add("Releases", "GetRelease", h.releases, &ReleaseHandlers::GetRelease);
  Add("Releases", "ListReleases", h.releases, &ReleaseHandlers::ListReleases);
  Add("Releases", "WatchRelease", h.releases, &ReleaseHandlers::WatchRelease);
  Add("Releases", "PromoteRelease", h.releases, &ReleaseHandlers::PromoteRelease);
  Add("Releases", "PauseRelease", h.releases, &ReleaseHandlers::PauseRelease);
  Add("Releases", "ResumeRelease", h.releases, &ReleaseHandlers::ResumeRelease);
  Add("Releases", "AbortRelease", h.releases, &ReleaseHandlers::AbortRelease);
  Add("Releases", "RollbackService", h.releases, &ReleaseHandlers::RollbackService);
  Add("Releases", "JudgeRelease", h.releases, &ReleaseHandlers::JudgeRelease);

  Add("Autoscaling", "SetPolicy", h.autoscaling, &AutoscalingHandlers::SetPolicy);
  Add("Autoscaling", "GetPolicy", h.autoscaling, &AutoscalingHandlers::GetPolicy);
  Add("Autoscaling", "DeletePolicy", h.autoscaling, &AutoscalingHandlers::DeletePolicy);
  Add("Autoscaling", "GetStatus", h.autoscaling, &AutoscalingHandlers::GetStatus);

  Add("Runbooks", "ListRunbooks", h.runbooks, &RunbookHandlers::ListRunbooks);
  Add("Runbooks", "RunRunbook", h.runbooks, &RunbookHandlers::RunRunbook);
  Add("Runbooks", "GetRun", h.runbooks, &RunbookHandlers::GetRun);
  Add("Runbooks", "WatchRun", h.runbooks, &RunbookHandlers::WatchRun);
  Add("Runbooks", "ListRuns", h.runbooks, &RunbookHandlers::ListRuns);
  Add("Runbooks", "CancelRun", h.runbooks, &RunbookHandlers::CancelRun);
  Add("Runbooks", "ApproveRun", h.runbooks, &RunbookHandlers::ApproveRun);

  Add("Auth", "CreateToken", h.auth, &AuthHandlers::CreateToken);
  Add("Auth", "ListTokens", h.auth, &AuthHandlers::ListTokens);
  Add("Auth", "RevokeToken", h.auth, &AuthHandlers::RevokeToken);
  Add("Auth", "WhoAmI", h.auth, &AuthHandlers::WhoAmI);

  for (auto& [path, route] : routes_) {
    const MethodRule* rule = FindMethodRule(route->method);
    // A method missing from the permission table is refused to everyone (the gate says so).
    route->mutates = rule == nullptr || rule->mutates;
  }
}

HttpGateway::~HttpGateway() { Shutdown(); }

std::vector<std::string> HttpGateway::Paths() const {
  std::vector<std::string> out;
  for (const auto& [path, route] : routes_) out.push_back(path);
  return out;
}

absl::Status HttpGateway::Start() {
  if (!options_.console_dir.empty()) {
    namespace fs = std::filesystem;
    std::error_code ec;
    if (!fs::is_regular_file(fs::path(options_.console_dir) / "index.html", ec)) {
      return absl::InvalidArgumentError(
          absl::StrCat("--console-dir ", options_.console_dir,
                       ": no index.html there (build it with scripts/build-console.sh)"));
    }
    for (const auto& entry : fs::recursive_directory_iterator(options_.console_dir, ec)) {
      if (!entry.is_regular_file()) continue;
      std::ifstream in(entry.path(), std::ios::binary);
      std::stringstream content;
      content << in.rdbuf();
      const std::string rel = fs::relative(entry.path(), options_.console_dir, ec).generic_string();
      console_["/" + rel] = content.str();
    }
  }
  const size_t colon = options_.listen.rfind(':');
  int port = 0;
  if (colon == std::string::npos || !absl::SimpleAtoi(options_.listen.substr(colon + 1), &port) ||
      port < 0 || port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("--http-listen ", options_.listen, ": want host:port"));
  }
  http::HttpServer::Options server;
  server.address =
      std::string(absl::StripSuffix(absl::StripPrefix(options_.listen.substr(0, colon), "["), "]"));
  server.port = port;
  server.threads = options_.io_threads;
  server.body_limit = options_.body_limit;
  server_ = std::make_unique<http::HttpServer>(server,
                                               [this](http::HttpRequest request, Respond respond) {
                                                 Handle(std::move(request), std::move(respond));
                                               });
  if (absl::Status st = server_->Start(); !st.ok()) {
    server_.reset();
    return absl::UnavailableError(absl::StrCat("--http-listen: ", st.message()));
  }
  for (int i = 0; i < std::max(1, options_.workers); ++i) {
    workers_.emplace_back([this] { Work(); });
  }
  return absl::OkStatus();
}

void HttpGateway::Shutdown() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  cv_.notify_all();
  for (std::thread& t : workers_) {
    if (t.joinable()) t.join();
  }
  if (server_) server_->Shutdown(absl::Seconds(1));
}

bool HttpGateway::Submit(std::function<void()> work) {
  std::lock_guard<std::mutex> lock(mu_);
  if (stopping_ || queue_.size() >= options_.max_queued) return false;
  queue_.push_back(std::move(work));
  cv_.notify_one();
  return true;
}

void HttpGateway::Work() {
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
    if (queue_.empty()) return;
    std::function<void()> work = std::move(queue_.front());
    queue_.pop_front();
    lock.unlock();
    work();
    lock.lock();
  }
}

void HttpGateway::Handle(http::HttpRequest request, Respond respond) {
  if (!absl::StartsWith(request.path, "/v1/")) {
    ServeConsole(request, respond);
    return;
  }
  auto it = routes_.find(request.path);
  if (it == routes_.end()) {
    const bool agent = request.path == "/v1/AgentGateway/Connect";
    respond(ErrorResponse(
        agent ? absl::UnimplementedError(
                    "AgentGateway/Connect is a bidirectional stream for hostagent: gRPC only")
              : absl::NotFoundError(absl::StrCat(
                    "no method at ", request.path,
                    ": paths are /v1/{Service}/{Method}, e.g. /v1/ServiceManager/ListServices"))));
    return;
  }
  const Route& route = *it->second;
  const bool get_ok = route.stream || !route.mutates;
  if (request.method != "POST" && !(get_ok && request.method == "GET")) {
    http::HttpResponse r = ErrorResponse(absl::InvalidArgumentError(absl::StrCat(
        route.name, " takes ", get_ok ? "GET or POST" : "POST", ", not ", request.method)));
    r.status = 405;
    r.headers.emplace_back("Allow", get_ok ? "GET, POST" : "POST");
    respond(std::move(r));
    return;
  }
  auto call = std::make_shared<GatewayCall>();
  call->request = std::move(request);
  call->respond = std::move(respond);
  auto run = [this, &route, call](absl::StatusOr<Caller> caller) {
    if (!caller.ok()) {
      gate_.NoteDenied(route.method, caller.status());
      metrics_.CountHttp(route.name, GrpcCodeName(static_cast<grpc::StatusCode>(
                                         caller.status().code())));
      call->respond(ErrorResponse(caller.status()));
      return;
    }
    call->caller = *std::move(caller);
    route.run(std::move(*call));
  };
  // As over gRPC: a call whose token is known runs here, on the connection's thread (handlers
  // do not block); one whose token needs the store waits for it on a worker.
  if (std::optional<absl::StatusOr<Caller>> known =
          gate_.DecideCached(route.method, call->request.authorization)) {
    run(*std::move(known));
    return;
  }
  const bool queued = Submit([this, &route, call, run] {
    run(gate_.Decide(route.method, call->request.authorization));
  });
  if (!queued) {
    call->respond(ErrorResponse(absl::ResourceExhaustedError(
        "hostd's HTTP gateway has too many calls waiting for their token to be checked; retry "
        "shortly")));
  }
}

void HttpGateway::ServeConsole(const http::HttpRequest& request, const Respond& respond) {
  if (request.method != "GET" && request.method != "HEAD") {
    respond(ErrorResponse(
        absl::NotFoundError(absl::StrCat("no ", request.method, " at ", request.path))));
    return;
  }
  if (console_.empty()) {
    respond(ErrorResponse(absl::NotFoundError(
        "this hostd serves no console (--console-dir); the API is under /v1/")));
    return;
  }
  auto it = console_.find(request.path);
  // Paths without a file are the console's own routes: its page answers them.
  if (it == console_.end()) it = console_.find("/index.html");
  http::HttpResponse r;
  r.content_type = ContentTypeOf(it->first);
  r.body = it->second;
  // Bundles carry their content hash in the name; the page itself is looked up each time.
  r.headers.emplace_back("Cache-Control", absl::StrContains(it->first, "/assets/")
                                              ? "public, max-age=31536000, immutable"
                                              : "no-cache");
  r.headers.emplace_back("X-Content-Type-Options", "nosniff");
  respond(std::move(r));
}

}  // namespace hosting::controlplane
