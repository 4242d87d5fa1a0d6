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

// Whether a task may take traffic: Swarm runs it and the agent's probe passes (or the spec has
// no HTTP check). With no report, running is the best health there is when no agent watches
// the node, and not enough when one does (it has not probed the task yet).
bool TaskReady(const docker::TaskInfo& task, const hosting::v1::TaskReport* report,
               const hosting::v1::ServiceSpec& spec, bool agent_connected);

// The tasks of one service (with their revisions) as the router's targets.
std::vector<RouteTarget> RouteTargets(
    const hosting::v1::ServiceSpec& spec,
    const std::vector<std::pair<int64_t, docker::TaskInfo>>& tasks,
    const std::map<std::string, hosting::v1::TaskReport>& reports,
    const std::function<bool(const std::string& node_id)>& agent_connected);

}  // namespace hosting::controlplane
