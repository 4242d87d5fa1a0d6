#include "controlplane/traffic/route_targets.h"

#include <algorithm>

#include "common/proto_time.h"

namespace hosting::controlplane {

int TrafficPort(const hosting::v1::ServiceSpec& spec) {
  if (spec.ports_size() > 0) return static_cast<int>(spec.ports(0).container_port());
  return static_cast<int>(spec.health().port());
}

TaskReadiness Readiness(const docker::TaskInfo& task, const hosting::v1::TaskReport* report,
                        const hosting::v1::ServiceSpec& spec, bool agent_connected) {
  if (task.state != "running") return TaskReadiness::kUnready;
  const bool http_check = !spec.health().http_path().empty();
  if (report == nullptr) {
    return !http_check || !agent_connected ? TaskReadiness::kReady : TaskReadiness::kUnknown;
  }
  switch (report->probe_health()) {
    case hosting::v1::TASK_HEALTH_HEALTHY:
      return TaskReadiness::kReady;
    case hosting::v1::TASK_HEALTH_UNHEALTHY:
      return TaskReadiness::kUnready;
    case hosting::v1::TASK_HEALTH_NONE:
      // Without an HTTP check nothing is probed: running is ready. With one, the agent has no
      // settings for it (yet): unknown.
      return http_check ? TaskReadiness::kUnknown : TaskReadiness::kReady;
    default:  // starting (a new task, or an agent probing again), or a lost node's
      return TaskReadiness::kUnknown;
  }
}

bool TaskReady(const docker::TaskInfo& task, const hosting::v1::TaskReport* report,
               const hosting::v1::ServiceSpec& spec, bool agent_connected) {
  return Readiness(task, report, spec, agent_connected) == TaskReadiness::kReady;
}

LbCheck BalancerCheck(const hosting::v1::ServiceSpec& spec) {
  const auto& h = spec.health();
  LbCheck c;
  c.enabled = true;
  if (!h.http_path().empty()) c.port = static_cast<int>(h.port());
  const absl::Duration interval = h.has_interval() ? FromDuration(h.interval()) : absl::Seconds(2);
  c.interval = std::max(absl::Milliseconds(100), interval);
  c.fall = static_cast<int>(std::clamp<uint32_t>(h.unhealthy_threshold(), 1, 2));
  c.rise = static_cast<int>(std::max<uint32_t>(1, h.healthy_threshold()));
  return c;
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
    const TaskReadiness readiness = Readiness(t, it == reports.end() ? nullptr : &it->second,
                                              spec, agent_connected(t.node_id));
    rt.ready = readiness == TaskReadiness::kReady;
    rt.unknown = readiness == TaskReadiness::kUnknown;
    rt.running = t.state == "running";
    rt.check = BalancerCheck(spec);
    rt.http_path = spec.health().http_path();
    targets.push_back(std::move(rt));
  }
  return targets;
}

}  // namespace hosting::controlplane
