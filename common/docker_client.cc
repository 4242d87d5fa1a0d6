#include "common/docker_client.h"

#include <limits>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace hosting::docker {
namespace {

Labels LabelsFrom(const nlohmann::json& j) {
  Labels labels;
  if (j.is_object()) {
    for (const auto& [k, v] : j.items()) {
      if (v.is_string()) labels[k] = v.get<std::string>();
    }
  }
  return labels;
}

std::string Str(const nlohmann::json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_string()) return "";
  return it->get<std::string>();
}

// An integer field; `fallback` when it is absent, not a number, or a number no int64 holds
// (converting those is undefined behaviour, and no Docker field is one).
int64_t Int(const nlohmann::json& j, const char* key, int64_t fallback = 0) {
  auto it = j.find(key);
  if (it == j.end()) return fallback;
  if (it->is_number_integer()) {
    if (it->is_number_unsigned() &&
        it->get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      return fallback;
    }
    return it->get<int64_t>();
  }
  if (it->is_number_float()) {
    const double d = it->get<double>();
    // [-2^63, 2^63): the doubles that convert.
    if (!(d >= -9223372036854775808.0 && d < 9223372036854775808.0)) return fallback;
    return static_cast<int64_t>(d);
  }
  return fallback;
}

const nlohmann::json& Obj(const nlohmann::json& j, const char* key) {
  static const nlohmann::json* empty = new nlohmann::json(nlohmann::json::object());
  auto it = j.find(key);
  if (it == j.end() || !it->is_object()) return *empty;
  return *it;
}

}  // namespace

absl::StatusOr<Event> ParseEvent(absl::string_view line) {
  nlohmann::json j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat("docker event is not a JSON object: ", line.substr(0, 200)));
  }
  Event e;
  e.type = Str(j, "Type");
  e.action = Str(j, "Action");
  const auto& actor = Obj(j, "Actor");
  e.actor_id = Str(actor, "ID");
  e.attributes = LabelsFrom(Obj(actor, "Attributes"));
  e.time_nano = Int(j, "timeNano");
  return e;
}

ServiceInfo ParseService(const nlohmann::json& j) {
  ServiceInfo s;
  s.id = Str(j, "ID");
  s.version = static_cast<uint64_t>(Int(Obj(j, "Version"), "Index"));
  if (auto it = j.find("Spec"); it != j.end()) s.spec = *it;
  s.name = Str(s.spec, "Name");
  s.labels = LabelsFrom(Obj(s.spec, "Labels"));
  const auto& mode = Obj(s.spec, "Mode");
  if (mode.contains("Replicated")) s.replicas = Int(Obj(mode, "Replicated"), "Replicas", 1);
  const auto& status = Obj(j, "ServiceStatus");
  s.running_tasks = Int(status, "RunningTasks", -1);
  s.desired_tasks = Int(status, "DesiredTasks", -1);
  s.update_state = Str(Obj(j, "UpdateStatus"), "State");
  return s;
}

TaskInfo ParseTask(const nlohmann::json& j) {
  TaskInfo t;
  t.id = Str(j, "ID");
  t.service_id = Str(j, "ServiceID");
  t.node_id = Str(j, "NodeID");
  t.slot = Int(j, "Slot");
  t.desired_state = Str(j, "DesiredState");
  t.labels = LabelsFrom(Obj(j, "Labels"));
  const auto& status = Obj(j, "Status");
  t.state = Str(status, "State");
  t.message = Str(status, "Message");
  t.error = Str(status, "Err");
  t.container_id = Str(Obj(status, "ContainerStatus"), "ContainerID");
  if (auto it = j.find("NetworksAttachments"); it != j.end() && it->is_array()) {
    for (const auto& att : *it) {
      if (auto a = att.find("Addresses"); a != att.end() && a->is_array()) {
        for (const auto& addr : *a) {
          if (addr.is_string()) t.addresses.push_back(addr.get<std::string>());
        }
      }
    }
  }
  return t;
}

EngineInfo ParseEngineInfo(const nlohmann::json& j) {
  EngineInfo info;
  info.name = Str(j, "Name");
  info.server_version = Str(j, "ServerVersion");
  info.ncpu = static_cast<int>(Int(j, "NCPU"));
  info.mem_total = Int(j, "MemTotal");
  const auto& swarm = Obj(j, "Swarm");
  info.node_id = Str(swarm, "NodeID");
  info.swarm_state = Str(swarm, "LocalNodeState");
  if (auto it = swarm.find("ControlAvailable"); it != swarm.end() && it->is_boolean()) {
    info.control_available = it->get<bool>();
  }
  if (auto it = j.find("Labels"); it != j.end() && it->is_array()) {
    for (const auto& l : *it) {
      if (!l.is_string()) continue;
      std::string kv = l.get<std::string>();
      size_t eq = kv.find('=');
      info.labels[kv.substr(0, eq)] = eq == std::string::npos ? "" : kv.substr(eq + 1);
    }
  }
  return info;
}

NodeInfo ParseNode(const nlohmann::json& j) {
  NodeInfo n;
  n.id = Str(j, "ID");
  n.version = static_cast<uint64_t>(Int(Obj(j, "Version"), "Index"));
  if (auto it = j.find("Spec"); it != j.end()) n.spec = *it;
  n.role = Str(n.spec, "Role");
  n.availability = Str(n.spec, "Availability");
  n.labels = LabelsFrom(Obj(n.spec, "Labels"));
  const auto& desc = Obj(j, "Description");
  n.hostname = Str(desc, "Hostname");
  n.nano_cpus = Int(Obj(desc, "Resources"), "NanoCPUs");
  n.memory_bytes = Int(Obj(desc, "Resources"), "MemoryBytes");
  n.engine_version = Str(Obj(desc, "Engine"), "EngineVersion");
  const auto& status = Obj(j, "Status");
  n.state = Str(status, "State");
  n.address = Str(status, "Addr");
  return n;
}

absl::Status StatusFromHttp(long http_code, absl::string_view method, absl::string_view path,
                            absl::string_view body) {
  std::string message(body);
  nlohmann::json j = nlohmann::json::parse(body, nullptr, false);
  if (!j.is_discarded() && j.is_object() && j.contains("message") && j["message"].is_string()) {
    message = j["message"].get<std::string>();
  }
  while (!message.empty() && (message.back() == '\n' || message.back() == ' ')) {
    message.pop_back();
  }
  std::string text = absl::StrCat("docker ", method, " ", path, ": HTTP ", http_code, ": ", message);
  switch (http_code) {
    case 400:
      return absl::InvalidArgumentError(text);
    case 403:
      return absl::PermissionDeniedError(text);
    case 404:
      return absl::NotFoundError(text);
    case 409:
      return absl::AlreadyExistsError(text);
    case 501:
      return absl::UnimplementedError(text);
    case 503:
      return absl::FailedPreconditionError(text);
    default:
      break;
  }
  if (absl::StrContains(message, "update out of sequence")) return absl::AbortedError(text);
  if (http_code >= 500) return absl::InternalError(text);
  return absl::UnknownError(text);
}

absl::Status UpdateServiceWithRetry(DockerClient& docker, absl::string_view id,
                                    const std::function<absl::Status(nlohmann::json&)>& mutate,
                                    int attempts) {
  absl::Duration backoff = absl::Milliseconds(20);
  absl::Status last;
  for (int i = 0; i < attempts; ++i) {
    absl::StatusOr<ServiceInfo> current = docker.InspectService(id);
    if (!current.ok()) return current.status();
    nlohmann::json spec = current->spec;
    if (absl::Status s = mutate(spec); !s.ok()) return s;
    last = docker.UpdateService(current->id, current->version, spec);
    if (!absl::IsAborted(last)) return last;
    absl::SleepFor(backoff);
    backoff *= 2;
  }
  return last;
}

}  // namespace hosting::docker
