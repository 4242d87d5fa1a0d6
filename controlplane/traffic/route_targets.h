#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "common/docker_client.h"
#include "controlplane/traffic/traffic_router.h"
#include "hosting/v1/agent.pb.h"
#include "hosting/v1/service.pb.h"

namespace hosting::controlplane {

// The port a service's traffic goes to: its first published port, else its health port.
int TrafficPort(const hosting::v1::ServiceSpec& spec);

// What the control plane knows of a task's fitness for traffic.
enum class TaskReadiness {
  kReady,
  kUnready,
  // Not known now: the agent has not reported the task since it connected, is still probing
  // it (starting), has no probe settings for it, or its node's agent is lost. "No data" is not
  // "unhealthy": a server the balancer has for such a task stays as it is.
  kUnknown,
};

// Swarm runs the task and the agent's probe passes (or the spec has no HTTP check): ready. A
// probe that fails: unready. With no report, running is the best health there is when no
// agent watches the node; when one does, it has not probed the task yet: unknown.
TaskReadiness Readiness(const docker::TaskInfo& task, const hosting::v1::TaskReport* report,
                        const hosting::v1::ServiceSpec& spec, bool agent_connected);
// Readiness(...) == kReady: what a release step counts.
bool TaskReady(const docker::TaskInfo& task, const hosting::v1::TaskReport* report,
               const hosting::v1::ServiceSpec& spec, bool agent_connected);

// The balancer's own check for the tasks of `spec`: from its health check (interval,
// thresholds, port), at most two failures to go down; a TCP check of the traffic port when the
// spec has none.
LbCheck BalancerCheck(const hosting::v1::ServiceSpec& spec);

// The tasks of one service (with their revisions) as the router's targets.
std::vector<RouteTarget> RouteTargets(
    const hosting::v1::ServiceSpec& spec,
    const std::vector<std::pair<int64_t, docker::TaskInfo>>& tasks,
    const std::map<std::string, hosting::v1::TaskReport>& reports,
    const std::function<bool(const std::string& node_id)>& agent_connected);

}  // namespace hosting::controlplane
