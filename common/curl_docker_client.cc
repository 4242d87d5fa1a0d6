#include "common/curl_docker_client.h"

#include <curl/curl.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "common/fault.h"
#include "common/line_splitter.h"
#include "common/status_macros.h"

namespace hosting::docker {
namespace {

constexpr char kApiVersion[] = "v1.41";

size_t AppendToString(char* data, size_t size, size_t nmemb, void* user) {
  static_cast<std::string*>(user)->append(data, size * nmemb);
  return size * nmemb;
}

struct StreamState {
  LineSplitter* splitter;
  const std::function<bool()>* should_stop;
  long http_code = 0;
  std::string error_body;
  bool stopped = false;
};

size_t FeedSplitter(char* data, size_t size, size_t nmemb, void* user) {
  auto* state = static_cast<StreamState*>(user);
  if (state->http_code >= 300) {
    state->error_body.append(data, size * nmemb);
  } else {
    state->splitter->Feed(absl::string_view(data, size * nmemb));
  }
  return size * nmemb;
}

int CheckStop(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  auto* state = static_cast<StreamState*>(user);
  if ((*state->should_stop)()) {
    state->stopped = true;
    return 1;  // aborts the transfer
  }
  return 0;
}

std::string UrlEscape(absl::string_view s) {
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      absl::StrAppend(&out, absl::StrFormat("%%%02X", c));
    }
  }
  return out;
}

bool InitCurlOnce() {
  static const bool ok = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK;
  return ok;
}

}  // namespace

std::string EncodeFilters(const Filters& filters) {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& [key, values] : filters) j[key] = values;
  return UrlEscape(j.dump());
}

absl::StatusOr<std::unique_ptr<CurlDockerClient>> CurlDockerClient::Create(
    absl::string_view docker_host, absl::Duration request_timeout) {
  if (!InitCurlOnce()) return absl::InternalError("curl_global_init failed");
  std::string socket_path;
  std::string base;
  if (absl::StartsWith(docker_host, "unix://")) {
    socket_path = std::string(docker_host.substr(7));
    if (socket_path.empty() || socket_path[0] != '/') {
      return absl::InvalidArgumentError(
          absl::StrCat("--docker-host: a unix socket needs an absolute path: ", docker_host));
    }
    base = "http://localhost";
  } else if (absl::StartsWith(docker_host, "tcp://")) {
    base = absl::StrCat("http://", docker_host.substr(6));
  } else if (absl::StartsWith(docker_host, "http://")) {
    base = std::string(docker_host);
  } else {
    return absl::InvalidArgumentError(absl::StrCat(
        "--docker-host must be unix:///path, tcp://host:port or http://host:port, got '",
        docker_host, "'"));
  }
  while (!base.empty() && base.back() == '/') base.pop_back();
  return std::unique_ptr<CurlDockerClient>(new CurlDockerClient(
      std::move(socket_path), absl::StrCat(base, "/", kApiVersion), request_timeout));
}

CurlDockerClient::~CurlDockerClient() {
  absl::MutexLock lock(&mu_);
  for (void* h : idle_) curl_easy_cleanup(static_cast<CURL*>(h));
}

void* CurlDockerClient::AcquireHandle() {
  {
    absl::MutexLock lock(&mu_);
    if (!idle_.empty()) {
      void* h = idle_.back();
      idle_.pop_back();
      curl_easy_reset(static_cast<CURL*>(h));
      return h;
    }
  }
  return curl_easy_init();
}

void CurlDockerClient::ReleaseHandle(void* handle) {
  absl::MutexLock lock(&mu_);
  if (idle_.size() < 8) {
    idle_.push_back(handle);
  } else {
    curl_easy_cleanup(static_cast<CURL*>(handle));
  }
}

void CurlDockerClient::ApplyTransport(void* handle, const std::string& url) {
  CURL* curl = static_cast<CURL*>(handle);
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  if (!socket_path_.empty()) curl_easy_setopt(curl, CURLOPT_UNIX_SOCKET_PATH, socket_path_.c_str());
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, 3000L);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
}

absl::StatusOr<CurlDockerClient::Response> CurlDockerClient::Request(absl::string_view method,
                                                                     absl::string_view path,
                                                                     const std::string* body) {
  CURL* curl = static_cast<CURL*>(AcquireHandle());
  if (curl == nullptr) return absl::InternalError("curl_easy_init failed");
  std::string url = absl::StrCat(base_url_, path);
  ApplyTransport(curl, url);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, static_cast<long>(absl::ToInt64Milliseconds(timeout_)));
  std::string method_str(method);
  curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method_str.c_str());
  struct curl_slist* headers = nullptr;
  headers = curl_slist_append(headers, "Expect:");
  if (body != nullptr) {
    headers = curl_slist_append(headers, "Content-Type: application/json");
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body->data());
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, static_cast<long>(body->size()));
  } else if (method == "POST") {
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, "");
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, 0L);
  }
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  Response response;
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, AppendToString);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &response.body);
  CURLcode rc = curl_easy_perform(curl);
  curl_slist_free_all(headers);
  if (rc != CURLE_OK) {
    curl_easy_cleanup(curl);  // a failed handle may hold a broken connection
    return WithFaultSource(
        absl::UnavailableError(absl::StrCat("docker engine unreachable (", method, " ", path,
                                            "): ", curl_easy_strerror(rc))),
        FaultSource::kDocker);
  }
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &response.code);
  ReleaseHandle(curl);
  return response;
}

absl::StatusOr<nlohmann::json> CurlDockerClient::Call(absl::string_view method,
                                                      absl::string_view path,
                                                      const nlohmann::json* body) {
  std::string body_text;
  if (body != nullptr) body_text = body->dump();
  ASSIGN_OR_RETURN(Response r, Request(method, path, body ? &body_text : nullptr));
  if (r.code < 200 || r.code >= 300) return StatusFromHttp(r.code, method, path, r.body);
  if (r.body.empty()) return nlohmann::json();
  nlohmann::json j = nlohmann::json::parse(r.body, nullptr, false);
  if (j.is_discarded()) {
    return absl::InternalError(absl::StrCat("docker ", method, " ", path,
                                            ": response is not JSON: ", r.body.substr(0, 200)));
  }
  return j;
}

absl::StatusOr<EngineInfo> CurlDockerClient::Info() {
  ASSIGN_OR_RETURN(nlohmann::json j, Call("GET", "/info"));
  return ParseEngineInfo(j);
}

absl::StatusOr<std::string> CurlDockerClient::CreateService(const nlohmann::json& spec) {
  ASSIGN_OR_RETURN(nlohmann::json j, Call("POST", "/services/create", &spec));
  return j.value("ID", "");
}

absl::StatusOr<ServiceInfo> CurlDockerClient::InspectService(absl::string_view id_or_name) {
  ASSIGN_OR_RETURN(nlohmann::json j, Call("GET", absl::StrCat("/services/", UrlEscape(id_or_name))));
  return ParseService(j);
}

absl::StatusOr<std::vector<ServiceInfo>> CurlDockerClient::ListServices(const Filters& filters) {
  std::string path = "/services?status=true";
  if (!filters.empty()) absl::StrAppend(&path, "&filters=", EncodeFilters(filters));
  ASSIGN_OR_RETURN(nlohmann::json j, Call("GET", path));
  std::vector<ServiceInfo> out;
  if (j.is_array()) {
    for (const auto& s : j) out.push_back(ParseService(s));
  }
  return out;
}

absl::Status CurlDockerClient::UpdateService(absl::string_view id, uint64_t version,
                                             const nlohmann::json& spec) {
  return Call("POST", absl::StrCat("/services/", UrlEscape(id), "/update?version=", version), &spec)
      .status();
}

absl::Status CurlDockerClient::RemoveService(absl::string_view id_or_name) {
  return Call("DELETE", absl::StrCat("/services/", UrlEscape(id_or_name))).status();
}

absl::StatusOr<std::vector<TaskInfo>> CurlDockerClient::ListTasks(const Filters& filters) {
  std::string path = "/tasks";
  if (!filters.empty()) absl::StrAppend(&path, "?filters=", EncodeFilters(filters));
  ASSIGN_OR_RETURN(nlohmann::json j, Call("GET", path));
  std::vector<TaskInfo> out;
  if (j.is_array()) {
    for (const auto& t : j) out.push_back(ParseTask(t));
  }
  return out;
}

absl::StatusOr<std::vector<NodeInfo>> CurlDockerClient::ListNodes() {
  ASSIGN_OR_RETURN(nlohmann::json j, Call("GET", "/nodes"));
  std::vector<NodeInfo> out;
  if (j.is_array()) {
    for (const auto& n : j) out.push_back(ParseNode(n));
  }
  return out;
}

absl::StatusOr<NodeInfo> CurlDockerClient::InspectNode(absl::string_view id) {
  ASSIGN_OR_RETURN(nlohmann::json j, Call("GET", absl::StrCat("/nodes/", UrlEscape(id))));
  return ParseNode(j);
}

absl::Status CurlDockerClient::UpdateNode(absl::string_view id, uint64_t version,
                                          const nlohmann::json& spec) {
  return Call("POST", absl::StrCat("/nodes/", UrlEscape(id), "/update?version=", version), &spec)
      .status();
}

absl::StatusOr<std::vector<ContainerInfo>> CurlDockerClient::ListContainers(
    const Filters& filters) {
  std::string path = "/containers/json";
  if (!filters.empty()) absl::StrAppend(&path, "?filters=", EncodeFilters(filters));
  ASSIGN_OR_RETURN(nlohmann::json j, Call("GET", path));
  std::vector<ContainerInfo> out;
  if (!j.is_array()) return out;
  for (const auto& c : j) {
    ContainerInfo info;
    info.id = c.value("Id", "");
    if (auto n = c.find("Names"); n != c.end() && n->is_array() && !n->empty()) {
      info.name = (*n)[0].get<std::string>();
    }
    info.image = c.value("Image", "");
    info.state = c.value("State", "");
    info.status = c.value("Status", "");
    if (auto l = c.find("Labels"); l != c.end() && l->is_object()) {
      for (const auto& [k, v] : l->items()) {
        if (v.is_string()) info.labels[k] = v.get<std::string>();
      }
    }
    out.push_back(std::move(info));
  }
  return out;
}

absl::StatusOr<nlohmann::json> CurlDockerClient::InspectContainer(absl::string_view id) {
  return Call("GET", absl::StrCat("/containers/", UrlEscape(id), "/json"));
}

absl::StatusOr<std::string> CurlDockerClient::SecretId(absl::string_view name) {
  // The engine finds a secret by ID, full name or ID prefix: only an exact name counts.
  absl::StatusOr<nlohmann::json> secret = Call("GET", absl::StrCat("/secrets/", UrlEscape(name)));
  if (!secret.ok()) return secret.status();
  if (secret->value("/Spec/Name"_json_pointer, std::string()) != name ||
      !secret->contains("ID")) {
    return absl::NotFoundError(absl::StrCat("no Swarm secret is named ", name));
  }
  return (*secret)["ID"].get<std::string>();
}

absl::Status CurlDockerClient::EnsureOverlayNetwork(absl::string_view name) {
  absl::StatusOr<nlohmann::json> existing = Call("GET", absl::StrCat("/networks/", UrlEscape(name)));
  if (existing.ok()) return absl::OkStatus();
  if (!absl::IsNotFound(existing.status())) return existing.status();
  nlohmann::json body = {{"Name", std::string(name)},
                         {"Driver", "overlay"},
                         {"Attachable", true},
                         {"CheckDuplicate", true},
                         {"Labels", {{"hosting.managed", "true"}}}};
  absl::Status created = Call("POST", "/networks/create", &body).status();
  // Another writer may have created it in between.
  if (absl::IsAlreadyExists(created)) return absl::OkStatus();
  return created;
}

absl::Status CurlDockerClient::PullImage(absl::string_view image) {
  // fromImage may carry the tag; the engine streams progress as JSON lines and reports a
  // failure as an {"error": ...} line with HTTP 200.
  std::string path = absl::StrCat("/images/create?fromImage=", UrlEscape(image));
  Response r;
  {
    absl::StatusOr<Response> got = Request("POST", path);
    if (!got.ok()) return got.status();
    r = *std::move(got);
  }
  if (r.code < 200 || r.code >= 300) {
    absl::Status st = StatusFromHttp(r.code, "POST", path, r.body);
    return absl::Status(st.code(), absl::StrCat("pulling ", image, ": ", st.message()));
  }
  for (absl::string_view line : absl::StrSplit(r.body, '\n', absl::SkipEmpty())) {
    nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
    if (!j.is_discarded() && j.contains("error")) {
      return absl::NotFoundError(absl::StrCat("pulling ", image, ": ", j.value("error", "")));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<bool> CurlDockerClient::HasImage(absl::string_view image) {
  absl::StatusOr<nlohmann::json> j = Call("GET", absl::StrCat("/images/", UrlEscape(image), "/json"));
  if (j.ok()) return true;
  if (absl::IsNotFound(j.status())) return false;
  return j.status();
}

absl::Status CurlDockerClient::RestartContainer(absl::string_view id) {
  return Call("POST", absl::StrCat("/containers/", UrlEscape(id), "/restart?t=5")).status();
}

absl::StatusOr<std::string> CurlDockerClient::ContainerLogs(absl::string_view id, int tail) {
  std::string path = absl::StrCat("/containers/", UrlEscape(id),
                                  "/logs?stdout=1&stderr=1&tail=", tail);
  ASSIGN_OR_RETURN(Response r, Request("GET", path));
  if (r.code < 200 || r.code >= 300) return StatusFromHttp(r.code, "GET", path, r.body);
  // Without a TTY the stream is multiplexed: 8-byte frames [stream, 0, 0, 0, size (BE32)].
  std::string out;
  size_t pos = 0;
  const std::string& b = r.body;
  while (pos + 8 <= b.size() && (b[pos] == 0 || b[pos] == 1 || b[pos] == 2)) {
    const uint32_t size = (static_cast<uint8_t>(b[pos + 4]) << 24) |
                          (static_cast<uint8_t>(b[pos + 5]) << 16) |
                          (static_cast<uint8_t>(b[pos + 6]) << 8) | static_cast<uint8_t>(b[pos + 7]);
    if (pos + 8 + size > b.size()) break;
    out.append(b, pos + 8, size);
    pos += 8 + size;
  }
  if (pos == 0) return b;  // a TTY container: plain text
  return out;
}

absl::Status CurlDockerClient::StreamEvents(int64_t since, const Filters& filters,
                                            const std::function<void(const Event&)>& on_event,
                                            const std::function<bool()>& should_stop) {
  std::string path = "/events";
  std::string sep = "?";
  if (since > 0) {
    absl::StrAppend(&path, sep, "since=", since);
    sep = "&";
  }
  if (!filters.empty()) absl::StrAppend(&path, sep, "filters=", EncodeFilters(filters));

  LineSplitter splitter([&](absl::string_view line) {
    absl::StatusOr<Event> e = ParseEvent(line);
    if (e.ok()) on_event(*e);
  });
  StreamState state{&splitter, &should_stop, 0, {}, false};

  // A dedicated handle: the stream holds it for as long as it runs.
  CURL* curl = curl_easy_init();
  if (curl == nullptr) return absl::InternalError("curl_easy_init failed");
  std::string url = absl::StrCat(base_url_, path);
  ApplyTransport(curl, url);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, FeedSplitter);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &state);
  curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, CheckStop);
  curl_easy_setopt(curl, CURLOPT_XFERINFODATA, &state);
  // The header callback is not needed: the response code is known before the body arrives.
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION,
                   +[](char* data, size_t size, size_t nmemb, void* user) -> size_t {
                     auto* st = static_cast<StreamState*>(user);
                     absl::string_view line(data, size * nmemb);
                     if (absl::StartsWith(line, "HTTP/")) {
                       auto sp = line.find(' ');
                       if (sp != absl::string_view::npos) {
                         st->http_code = std::strtol(line.data() + sp + 1, nullptr, 10);
                       }
                     }
                     return size * nmemb;
                   });
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, &state);
  CURLcode rc = curl_easy_perform(curl);
  curl_easy_cleanup(curl);
  if (state.stopped) return absl::OkStatus();
  if (state.http_code >= 300) return StatusFromHttp(state.http_code, "GET", path, state.error_body);
  if (rc != CURLE_OK) {
    return WithFaultSource(absl::UnavailableError(absl::StrCat("docker events stream broken: ",
                                                               curl_easy_strerror(rc))),
                           FaultSource::kDocker);
  }
  return WithFaultSource(absl::UnavailableError("docker events stream ended"),
                         FaultSource::kDocker);
}

}  // namespace hosting::docker
