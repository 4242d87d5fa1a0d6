#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "controlplane/runbook/runbook.h"
#include "hosting/v1/cluster.pb.h"
#include "hosting/v1/releases.pb.h"
#include "hosting/v1/service.pb.h"

namespace hosting::controlplane {

// A task of a hosted service that Swarm wants running.
struct HostedTask {
  std::string id;
  std::string service;  // the hosted service (label hosting.service)
  std::string node_id;
  std::string state;  // Swarm's: "running", "starting", ...
  std::string container_id;  // "" before Swarm has started one
};

// How a one-off job ended.
struct JobResult {
  bool succeeded = false;
  std::string state;    // Swarm's last task state: "complete", "failed", "rejected", ...
  std::string message;  // Swarm's message and error for the task
  std::string logs;     // the end of what it printed
};

// What the cluster runbooks (node maintenance, log analysis) do to the cluster. hostd's
// implementation (ClusterOperationsImpl) goes through the ClusterManager and the reconciler's
// view of Swarm; unit tests use a fake.
class ClusterOperations {
 public:
  virtual ~ClusterOperations() = default;
  virtual absl::StatusOr<std::vector<hosting::v1::Node>> ListNodes() = 0;
  // By ID or hostname. NOT_FOUND naming it.
  virtual absl::StatusOr<hosting::v1::Node> GetNode(const std::string& node) = 0;
  // "active", "pause" or "drain" (a drain takes the node's tasks out of the load balancer
  // first, as hostctl node drain does).
  virtual absl::StatusOr<hosting::v1::Node> SetAvailability(const std::string& node,
                                                            const std::string& availability) = 0;
  // Every hosted task Swarm wants running, from a fresh list.
  virtual absl::StatusOr<std::vector<HostedTask>> Tasks() = 0;
  // Hosted services with fewer running tasks than desired, each as "name (running/desired)".
  virtual absl::StatusOr<std::vector<std::string>> ServicesShort() = 0;
  // The last `lines` lines a task logged, read through its node's agent.
  virtual absl::StatusOr<std::string> TaskLogs(const std::string& task_id, int lines) = 0;
  // The hosted service's spec (NOT_FOUND naming it).
  virtual absl::StatusOr<hosting::v1::ServiceSpec> ServiceSpec(const std::string& service) = 0;
  // Runs `args` once in `image` as a Swarm job (no restart) with the service's env, secrets
  // and networks, but none of its ports, aliases or traffic; waits until it ends, `timeout`
  // passes (DEADLINE_EXCEEDED) or `cancelled`; removes it either way. `name`: the job's Swarm
  // service name.
  virtual absl::StatusOr<JobResult> RunJob(const std::string& service, const std::string& name,
                                           const std::string& image,
                                           const std::vector<std::string>& args,
                                           absl::Duration timeout,
                                           const std::function<bool()>& cancelled) = 0;
  // Starts a release of the service to `image` with its own release policy; the release.
  virtual absl::StatusOr<hosting::v1::Release> StartRelease(const std::string& service,
                                                            const std::string& image,
                                                            const std::string& reason) = 0;
  virtual absl::StatusOr<hosting::v1::Release> GetRelease(const std::string& id) = 0;
  // Starts a release of the service's spec with these environment variables set (a new
  // revision, rolled out under the service's release policy): the release. A rolling restart
  // is one with HOSTING_RESTARTED_AT, as `kubectl rollout restart` annotates.
  virtual absl::StatusOr<hosting::v1::Release> ReleaseEnv(
      const std::string& service, const std::map<std::string, std::string>& env,
      const std::string& reason) = 0;
};

// Follows a release a step started until it ends (within the step's deadline, polling every
// 500 ms): OK when it succeeded; ABORTED naming the state it ended in and its message.
absl::Status WaitForRelease(StepContext& ctx, ClusterOperations& cluster,
                            const std::string& release_id);

// A rolling restart of a hosted service (a release of its spec with HOSTING_RESTARTED_AT set to
// now, under its own policy), followed to its end by WaitForRelease: the release, or the error
// naming the service.
absl::StatusOr<hosting::v1::Release> RollingRestart(StepContext& ctx, ClusterOperations& cluster,
                                                    const std::string& service,
                                                    const std::string& reason);

}  // namespace hosting::controlplane
