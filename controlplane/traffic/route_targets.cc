#include "controlplane/traffic/route_targets.h"

namespace hosting::controlplane {

int TrafficPort(const hosting::v1::ServiceSpec& spec) {
  if (spec.ports_size() > 0) return static_cast<int>(spec.ports(0).container_port());
  return static_cast<int>(spec.health().port());
}

bool TaskReady(const docker::TaskInfo& task, const hosting::v1::TaskReport* report,
               const hosting::v1::ServiceSpec& spec, bool agent_connected) {
  if (task.state != "running") return false;
  const bool http_check = !spec.health().http_path().empty();
  if (report != nullptr) {
    return report->probe_health() == hosting::v1::TASK_HEALTH_HEALTHY ||
           (report->probe_health() == hosting::v1::TASK_HEALTH_NONE && !http_check);
  }
  return !http_check || !agent_connected;
}

std::vector<RouteTarget> RouteTargets(
    const hosting::v1::ServiceSpec& spec,
    const std::vector<std::pair<int64_t, docker::TaskInfo>>& tasks,
    const std::map<std::string, hosting::v1::TaskReport>& reports,
    const std::function<bool(const std::string& node_id)>& agent_connected) {
  std::vector<RouteTarget> targets;
  for (const auto& [rev, t] : tasks) {
    RouteTarget rt;
    rt.task_id = t.id;
    rt.revision = rev;
    rt.port = TrafficPort(spec);
    if (!t.addresses.empty()) {
      const std::string& a = t.addresses.front();  // "10.0.1.7/24"
      rt.address = a.substr(0, a.find('/'));
    }
    auto it = reports.find(t.id);
    rt.ready = TaskReady(t, it == reports.end() ? nullptr : &it->second, spec,
                         agent_connected(t.node_id));
    targets.push_back(std::move(rt));
  }
  return targets;
}

}  // namespace hosting::controlplane
