#include "common/fake_docker_client.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/fault.h"
#include "common/status_macros.h"

namespace hosting::docker {
namespace {

int64_t ReplicasOf(const nlohmann::json& spec) {
  return spec.value("/Mode/Replicated/Replicas"_json_pointer, int64_t{1});
}

bool MatchesFilters(const ServiceInfo& s, const Filters& filters) {
  for (const auto& [key, values] : filters) {
    for (const std::string& v : values) {
      if (key == "label") {
        std::vector<std::string> kv = absl::StrSplit(v, absl::MaxSplits('=', 1));
        auto it = s.labels.find(kv[0]);
        if (it == s.labels.end()) return false;
        if (kv.size() == 2 && it->second != kv[1]) return false;
      } else if (key == "name") {
        if (s.name.rfind(v, 0) != 0) return false;
      } else if (key == "id") {
        if (s.id != v) return false;
      }
    }
  }
  return true;
}

// Where a service's first task lands: its number ("svc12" -> 12), so services start on
// different nodes.
int64_t SpreadStart(const std::string& id) {
  int64_t n = 0;
  for (char c : id) {
    if (c >= '0' && c <= '9') n = n * 10 + (c - '0');
  }
  return n;
}

}  // namespace

FakeDockerClient::FakeDockerClient() = default;

absl::Status FakeDockerClient::CheckAvailable() const {
  if (unavailable_) {
    return WithFaultSource(absl::UnavailableError("docker engine unreachable (fake)"),
                           FaultSource::kDocker);
  }
  return absl::OkStatus();
}

FakeDockerClient::Service* FakeDockerClient::Find(absl::string_view id_or_name) {
  if (auto it = services_.find(std::string(id_or_name)); it != services_.end()) return &it->second;
  if (auto it = ids_by_name_.find(std::string(id_or_name)); it != ids_by_name_.end()) {
    return &services_.at(it->second);
  }
  return nullptr;
}

void FakeDockerClient::Refresh(Service& s) {
  nlohmann::json j = {{"ID", s.id}, {"Version", {{"Index", s.version}}}, {"Spec", s.spec}};
  s.info = ParseService(j);
}

ServiceInfo FakeDockerClient::ToInfo(const Service& s) const {
  ServiceInfo info = s.info;
  info.version = s.version;  // bumped without a spec change too (FailNextUpdates)
  int64_t replicas = ReplicasOf(s.spec);
  info.running_tasks = s.running_override >= 0 ? s.running_override : replicas;
  info.desired_tasks = replicas;
  return info;
}

absl::StatusOr<EngineInfo> FakeDockerClient::Info() {
  absl::MutexLock lock(&mu_);
  if (auto s = CheckAvailable(); !s.ok()) return s;
  EngineInfo info;
  info.name = "fake";
  info.server_version = "20.10.24-fake";
  info.node_id = "node1";
  info.swarm_state = "active";
  info.control_available = true;
  info.ncpu = 2;
  return info;
}

absl::StatusOr<std::string> FakeDockerClient::CreateService(const nlohmann::json& spec) {
  absl::MutexLock lock(&mu_);
  if (auto s = CheckAvailable(); !s.ok()) return s;
  std::string name = spec.value("Name", "");
  if (Find(name) != nullptr) {
    return absl::AlreadyExistsError(absl::StrCat("docker POST /services/create: HTTP 409: ",
                                                 "rpc error: name conflicts with an existing object"));
  }
  std::string id = absl::StrCat("svc", next_id_++);
  Service& created = services_[id] = Service{id, next_index_++, spec};
  Refresh(created);
  ids_by_name_[name] = id;
  actions_.push_back(absl::StrCat("create ", name));
  return id;
}

absl::StatusOr<ServiceInfo> FakeDockerClient::InspectService(absl::string_view id_or_name) {
  absl::MutexLock lock(&mu_);
  if (auto s = CheckAvailable(); !s.ok()) return s;
  Service* s = Find(id_or_name);
  if (s == nullptr) {
    return absl::NotFoundError(absl::StrCat("docker GET /services/", id_or_name,
                                            ": HTTP 404: service ", id_or_name, " not found"));
  }
  return ToInfo(*s);
}

absl::StatusOr<std::vector<ServiceInfo>> FakeDockerClient::ListServices(const Filters& filters) {
  absl::MutexLock lock(&mu_);
  if (auto s = CheckAvailable(); !s.ok()) return s;
  std::vector<ServiceInfo> out;
  for (const auto& [id, s] : services_) {
    ServiceInfo info = ToInfo(s);
    if (MatchesFilters(info, filters)) out.push_back(std::move(info));
  }
  return out;
}

absl::Status FakeDockerClient::UpdateService(absl::string_view id, uint64_t version,
                                             const nlohmann::json& spec) {
  absl::MutexLock lock(&mu_);
  if (auto s = CheckAvailable(); !s.ok()) return s;
  Service* s = Find(id);
  if (s == nullptr) return absl::NotFoundError(absl::StrCat("service ", id, " not found"));
  if (fail_updates_ > 0) {
    --fail_updates_;
    s->version = next_index_++;
    return absl::AbortedError("docker POST /services/update: HTTP 500: update out of sequence");
  }
  if (version != s->version) {
    return absl::AbortedError("docker POST /services/update: HTTP 500: update out of sequence");
  }
  ids_by_name_.erase(s->spec.value("Name", ""));
  s->spec = spec;
  s->version = next_index_++;
  Refresh(*s);
  ids_by_name_[spec.value("Name", "")] = s->id;
  actions_.push_back(absl::StrCat("update ", spec.value("Name", ""), " replicas=", ReplicasOf(spec)));
  return absl::OkStatus();
}

absl::Status FakeDockerClient::RemoveService(absl::string_view id_or_name) {
  absl::MutexLock lock(&mu_);
  if (auto s = CheckAvailable(); !s.ok()) return s;
  Service* s = Find(id_or_name);
  if (s == nullptr) return absl::NotFoundError(absl::StrCat("service ", id_or_name, " not found"));
  actions_.push_back(absl::StrCat("remove ", s->spec.value("Name", "")));
  ids_by_name_.erase(s->spec.value("Name", ""));
  services_.erase(s->id);
  return absl::OkStatus();
}

absl::StatusOr<std::vector<TaskInfo>> FakeDockerClient::ListTasks(const Filters& filters) {
  std::function<void()> hook;
  {
    absl::MutexLock lock(&mu_);
    hook = list_tasks_hook_;
  }
  if (hook) hook();  // outside the lock: a test may hold the call here
  absl::MutexLock lock(&mu_);
  if (auto s = CheckAvailable(); !s.ok()) return s;
  std::vector<TaskInfo> out;
  for (const auto& [id, s] : services_) {
    ServiceInfo info = ToInfo(s);
    if (auto it = filters.find("service"); it != filters.end()) {
      bool match = false;
      for (const auto& v : it->second) match |= (v == s.id || v == info.name);
      if (!match) continue;
    }
    for (int64_t i = 0; i < info.running_tasks; ++i) {
      TaskInfo t;
      t.id = absl::StrCat(s.id, ".", i + 1);
      t.service_id = s.id;
      t.node_id = absl::StrCat("node", 1 + (SpreadStart(s.id) + i) % node_count_);
      t.slot = i + 1;
      t.desired_state = "running";
      t.state = "running";
      out.push_back(std::move(t));
    }
  }
  return out;
}

absl::StatusOr<std::vector<NodeInfo>> FakeDockerClient::ListNodes() {
  absl::MutexLock lock(&mu_);
  if (auto s = CheckAvailable(); !s.ok()) return s;
  std::vector<NodeInfo> nodes;
  for (int i = 1; i <= node_count_; ++i) {
    NodeInfo n;
    n.id = absl::StrCat("node", i);
    n.hostname = i == 1 ? "fake" : absl::StrCat("fake-", i);
    n.role = i == 1 ? "manager" : "worker";
    n.availability = "active";
    n.state = "ready";
    if (auto it = node_specs_.find(n.id); it != node_specs_.end()) {
      n.spec = it->second;
      n.availability = it->second.value("Availability", "active");
      if (it->second.contains("Labels") && it->second["Labels"].is_object()) {
        for (const auto& [k, v] : it->second["Labels"].items()) {
          if (v.is_string()) n.labels[k] = v.get<std::string>();
        }
      }
    }
    nodes.push_back(std::move(n));
  }
  return nodes;
}

absl::StatusOr<NodeInfo> FakeDockerClient::InspectNode(absl::string_view id) {
  {
    absl::MutexLock lock(&mu_);
    if (fail_node_inspects_ > 0) {
      --fail_node_inspects_;
      return WithFaultSource(absl::UnavailableError("docker engine unreachable (fake inspect)"),
                             FaultSource::kDocker);
    }
  }
  auto nodes = ListNodes();
  if (!nodes.ok()) return nodes.status();
  for (auto& n : *nodes) {
    if (n.id == id || n.hostname == id) return n;
  }
  return absl::NotFoundError(absl::StrCat("node ", id, " not found"));
}

absl::Status FakeDockerClient::UpdateNode(absl::string_view id, uint64_t,
                                          const nlohmann::json& spec) {
  absl::MutexLock lock(&mu_);
  RETURN_IF_ERROR(CheckAvailable());
  node_specs_[std::string(id)] = spec;
  return absl::OkStatus();
}

void FakeDockerClient::FailNextNodeInspects(int n) {
  absl::MutexLock lock(&mu_);
  fail_node_inspects_ = n;
}

absl::StatusOr<std::vector<ContainerInfo>> FakeDockerClient::ListContainers(const Filters&) {
  absl::MutexLock lock(&mu_);
  if (auto s = CheckAvailable(); !s.ok()) return s;
  std::vector<ContainerInfo> out;
  for (const auto& [id, c] : containers_) out.push_back(c.first);
  return out;
}

absl::StatusOr<nlohmann::json> FakeDockerClient::InspectContainer(absl::string_view id) {
  absl::MutexLock lock(&mu_);
  if (auto s = CheckAvailable(); !s.ok()) return s;
  auto it = containers_.find(std::string(id));
  if (it == containers_.end()) return absl::NotFoundError(absl::StrCat("container ", id, " not found"));
  return it->second.second;
}

void FakeDockerClient::AddContainer(ContainerInfo info, nlohmann::json inspect) {
  absl::MutexLock lock(&mu_);
  std::string id = info.id;
  containers_[id] = {std::move(info), std::move(inspect)};
}

void FakeDockerClient::RemoveContainer(absl::string_view id) {
  absl::MutexLock lock(&mu_);
  containers_.erase(std::string(id));
}

void FakeDockerClient::AddSecret(absl::string_view name, absl::string_view id) {
  absl::MutexLock lock(&mu_);
  secrets_[std::string(name)] = std::string(id);
}

absl::StatusOr<std::string> FakeDockerClient::SecretId(absl::string_view name) {
  absl::MutexLock lock(&mu_);
  if (auto s = CheckAvailable(); !s.ok()) return s;
  auto it = secrets_.find(std::string(name));
  if (it == secrets_.end()) return absl::NotFoundError(absl::StrCat("secret ", name, " not found"));
  return it->second;
}

absl::Status FakeDockerClient::EnsureOverlayNetwork(absl::string_view name) {
  absl::MutexLock lock(&mu_);
  return CheckAvailable();
}

absl::Status FakeDockerClient::PullImage(absl::string_view image) {
  absl::MutexLock lock(&mu_);
  if (auto s = CheckAvailable(); !s.ok()) return s;
  actions_.push_back(absl::StrCat("pull ", image));
  if (!pull_error_.empty()) {
    return absl::NotFoundError(absl::StrCat("pulling ", image, ": ", pull_error_));
  }
  images_.insert(std::string(image));
  return absl::OkStatus();
}

absl::StatusOr<bool> FakeDockerClient::HasImage(absl::string_view image) {
  absl::MutexLock lock(&mu_);
  RETURN_IF_ERROR(CheckAvailable());
  return images_.contains(std::string(image));
}

void FakeDockerClient::AddImage(absl::string_view image) {
  absl::MutexLock lock(&mu_);
  images_.insert(std::string(image));
}

void FakeDockerClient::SetPullError(std::string error) {
  absl::MutexLock lock(&mu_);
  pull_error_ = std::move(error);
}

absl::Status FakeDockerClient::RestartContainer(absl::string_view id) {
  absl::MutexLock lock(&mu_);
  if (auto s = CheckAvailable(); !s.ok()) return s;
  actions_.push_back(absl::StrCat("restart ", id));
  return absl::OkStatus();
}

absl::StatusOr<std::string> FakeDockerClient::ContainerLogs(absl::string_view id, int tail) {
  absl::MutexLock lock(&mu_);
  if (auto s = CheckAvailable(); !s.ok()) return s;
  return absl::StrCat("logs of ", id, "\n");
}

absl::Status FakeDockerClient::StreamEvents(int64_t, const Filters&,
                                            const std::function<void(const Event&)>& on_event,
                                            const std::function<bool()>& should_stop) {
  while (!should_stop()) {
    std::vector<Event> batch;
    {
      absl::MutexLock lock(&mu_);
      if (unavailable_) {
    return WithFaultSource(absl::UnavailableError("docker engine unreachable (fake)"),
                           FaultSource::kDocker);
  }
      batch.swap(events_);
    }
    for (const Event& e : batch) on_event(e);
    absl::SleepFor(absl::Milliseconds(5));
  }
  return absl::OkStatus();
}

void FakeDockerClient::SetListTasksHook(std::function<void()> hook) {
  absl::MutexLock lock(&mu_);
  list_tasks_hook_ = std::move(hook);
}

void FakeDockerClient::SetUnavailable(bool unavailable) {
  absl::MutexLock lock(&mu_);
  unavailable_ = unavailable;
}

void FakeDockerClient::FailNextUpdates(int n) {
  absl::MutexLock lock(&mu_);
  fail_updates_ = n;
}

void FakeDockerClient::SetRunningTasks(absl::string_view name, int64_t running) {
  absl::MutexLock lock(&mu_);
  if (Service* s = Find(name)) s->running_override = running;
}

void FakeDockerClient::ScaleOutside(absl::string_view name, int64_t replicas) {
  absl::MutexLock lock(&mu_);
  if (Service* s = Find(name)) {
    s->spec["Mode"]["Replicated"]["Replicas"] = replicas;
    s->version = next_index_++;
    Refresh(*s);
  }
}

void FakeDockerClient::RemoveOutside(absl::string_view name) {
  absl::MutexLock lock(&mu_);
  if (Service* s = Find(name)) {
    ids_by_name_.erase(s->spec.value("Name", ""));
    services_.erase(s->id);
  }
}

void FakeDockerClient::SetNodeCount(int count) {
  absl::MutexLock lock(&mu_);
  node_count_ = std::max(1, count);
}

void FakeDockerClient::PushEvent(Event event) {
  absl::MutexLock lock(&mu_);
  events_.push_back(std::move(event));
}

std::vector<std::string> FakeDockerClient::actions() const {
  absl::MutexLock lock(&mu_);
  return actions_;
}

void FakeDockerClient::ClearActions() {
  absl::MutexLock lock(&mu_);
  actions_.clear();
}

int FakeDockerClient::service_count() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int>(services_.size());
}

}  // namespace hosting::docker
