#include "controlplane/runbook/platform_operations.h"

#include <algorithm>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/status_macros.h"

namespace hosting::controlplane {
namespace {

// The map hold.lua reads (deploy/haproxy/pause.map, as the image installs it).
constexpr char kPauseMap[] = "/etc/haproxy/pause.map";

}  // namespace

std::string HaproxyMasterAddress(const std::string& haproxy, const std::string& master) {
  if (!master.empty()) return master;
  absl::string_view path = haproxy;
  absl::ConsumePrefix(&path, "unix://");
  if (!absl::StartsWith(path, "/")) return "";
  return absl::StrCat(path.substr(0, path.rfind('/')), "/master.sock");
}

PlatformOperationsImpl::PlatformOperationsImpl(docker::DockerClient& docker, std::string haproxy,
                                               std::string haproxy_master)
    : docker_(docker), haproxy_(std::move(haproxy)), haproxy_master_(std::move(haproxy_master)) {}

PlatformService PlatformOperationsImpl::FromDocker(const docker::ServiceInfo& s) {
  PlatformService p;
  p.id = s.id;
  p.name = s.name;
  auto label = [&](const char* key) -> std::string {
    auto it = s.labels.find(key);
    return it == s.labels.end() ? "" : it->second;
  };
  p.tier = label("hosting.tier");
  if (!absl::SimpleAtoi(label("hosting.restart-order"), &p.order)) p.order = 100;
  if (!label("hosting.restart").empty()) p.restart = label("hosting.restart");
  p.global = s.spec.contains("Mode") && s.spec["Mode"].contains("Global");
  p.desired_tasks = s.desired_tasks >= 0 ? s.desired_tasks : s.replicas;
  return p;
}

absl::StatusOr<std::vector<PlatformService>> PlatformOperationsImpl::StackServices(
    const std::string& stack) {
  ASSIGN_OR_RETURN(std::vector<docker::ServiceInfo> services,
                   docker_.ListServices({{"label", {"com.docker.stack.namespace=" + stack}}}));
  if (services.empty()) {
    return absl::NotFoundError(absl::StrCat(
        "no Swarm service has the label com.docker.stack.namespace=", stack,
        ": is the platform's stack deployed under that name? (docker stack ls)"));
  }
  std::vector<PlatformService> out;
  for (const docker::ServiceInfo& s : services) out.push_back(FromDocker(s));
  return out;
}

absl::Status PlatformOperationsImpl::ForceUpdate(const std::string& service_id) {
  ASSIGN_OR_RETURN(docker::ServiceInfo s, docker_.InspectService(service_id));
  nlohmann::json spec = s.spec;
  nlohmann::json& task = spec["TaskTemplate"];
  const int64_t force = task.contains("ForceUpdate") ? task["ForceUpdate"].get<int64_t>() : 0;
  task["ForceUpdate"] = force + 1;
  return docker_.UpdateService(s.id, s.version, spec);
}

absl::StatusOr<UpdateProgress> PlatformOperationsImpl::Progress(const std::string& service_id) {
  ASSIGN_OR_RETURN(std::vector<docker::ServiceInfo> found,
                   docker_.ListServices({{"id", {service_id}}}));
  auto it = std::find_if(found.begin(), found.end(),
                         [&](const docker::ServiceInfo& s) { return s.id == service_id; });
  if (it == found.end()) {
    return absl::NotFoundError(absl::StrCat("Swarm service ", service_id, " is gone"));
  }
  UpdateProgress p;
  const std::string state = it->update_state.empty() ? "no update" : it->update_state;
  p.detail = absl::StrCat(state, ", ", it->running_tasks, "/", it->desired_tasks,
                          " tasks running");
  p.running = it->running_tasks;
  p.desired = it->desired_tasks;
  p.failed = state == "paused" || absl::StartsWith(state, "rollback");
  p.done = (state == "completed" || state == "no update") && it->desired_tasks >= 0 &&
           it->running_tasks == it->desired_tasks;
  return p;
}

absl::Status PlatformOperationsImpl::PauseWrites(bool paused) {
  if (haproxy_.empty()) {
    return absl::FailedPreconditionError(
        "hostd has no HAProxy runtime API (--haproxy): writes cannot be held at the front door");
  }
  HaproxyLoadBalancer lb(haproxy_);
  const std::string cmd =
      absl::StrCat("set map ", kPauseMap, " writes ", paused ? "on" : "off");
  ASSIGN_OR_RETURN(std::string answer, lb.Execute(cmd));
  if (!absl::StripAsciiWhitespace(answer).empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "HAProxy: '", cmd, "': ", absl::StripAsciiWhitespace(answer),
        " (an image older than deploy/haproxy/hold.lua and pause.map?)"));
  }
  return absl::OkStatus();
}

std::vector<std::string> PlatformOperationsImpl::ParseWorkers(const std::string& show_proc) {
  // "#<PID> <type> <reloads> <uptime> <version>" lines; workers are of type "worker".
  std::vector<std::string> out;
  for (absl::string_view line : absl::StrSplit(show_proc, '\n')) {
    std::vector<absl::string_view> f = absl::StrSplit(line, ' ', absl::SkipWhitespace());
    if (f.size() >= 2 && f[1] == "worker") out.emplace_back(f[0]);
  }
  return out;
}

absl::StatusOr<std::vector<std::string>> PlatformOperationsImpl::ProxyWorkers() {
  if (haproxy_master_.empty()) {
    return absl::FailedPreconditionError(
        "hostd has no HAProxy master CLI (--haproxy-master): HAProxy cannot be reloaded");
  }
  HaproxyLoadBalancer master(haproxy_master_);
  ASSIGN_OR_RETURN(std::string answer, master.Execute("show proc"));
  std::vector<std::string> workers = ParseWorkers(answer);
  if (workers.empty()) {
    return absl::UnavailableError(
        absl::StrCat("HAProxy's master CLI at ", haproxy_master_, " lists no worker: '",
                     absl::StripAsciiWhitespace(answer), "'"));
  }
  return workers;
}

absl::Status PlatformOperationsImpl::ReloadProxy() {
  if (haproxy_master_.empty()) {
    return absl::FailedPreconditionError(
        "hostd has no HAProxy master CLI (--haproxy-master): HAProxy cannot be reloaded");
  }
  HaproxyLoadBalancer master(haproxy_master_);
  // HAProxy 2.6 answers nothing, and the master re-executes itself: the answer (or the
  // connection closing under it) says nothing; the caller watches the workers change.
  (void)master.Execute("reload");
  return absl::OkStatus();
}

absl::StatusOr<int> PlatformOperationsImpl::ProxyServers(const std::string& backend) {
  if (haproxy_.empty()) {
    return absl::FailedPreconditionError("hostd has no HAProxy runtime API (--haproxy)");
  }
  HaproxyLoadBalancer lb(haproxy_);
  ASSIGN_OR_RETURN(std::vector<LbServer> servers, lb.Servers(backend));
  return static_cast<int>(std::count_if(servers.begin(), servers.end(), [](const LbServer& s) {
    return s.state == LbServer::State::kReady && s.up && s.weight > 0;
  }));
}

}  // namespace hosting::controlplane
