#pragma once

#include <string>
#include <vector>

#include "controlplane/cluster/cluster_manager.h"
#include "common/docker_client.h"
#include "controlplane/reconcile/reconciler.h"
#include "controlplane/release/release_manager.h"
#include "controlplane/runbook/operations.h"
#include "controlplane/service/service_manager.h"

namespace hosting::controlplane {

// hostd's ClusterOperations: nodes and their availability through the ClusterManager (a drain
// takes traffic off first), tasks from a fresh list of Swarm, services' replica counts from
// the ServiceManager, task logs through the agents.
class ClusterOperationsImpl final : public ClusterOperations {
 public:
  ClusterOperationsImpl(ClusterManager& cluster, Reconciler& reconciler, ServiceManager& services,
                        ReleaseManager& releases, docker::DockerClient& docker)
      : cluster_(cluster),
        reconciler_(reconciler),
        services_(services),
        releases_(releases),
        docker_(docker) {}

  absl::StatusOr<std::vector<hosting::v1::Node>> ListNodes() override;
  absl::StatusOr<hosting::v1::Node> GetNode(const std::string& node) override;
  absl::StatusOr<hosting::v1::Node> SetAvailability(const std::string& node,
                                                    const std::string& availability) override;
  absl::StatusOr<std::vector<HostedTask>> Tasks() override;
  absl::StatusOr<std::vector<std::string>> ServicesShort() override;
  absl::StatusOr<std::string> TaskLogs(const std::string& task_id, int lines) override;
  absl::StatusOr<hosting::v1::ServiceSpec> ServiceSpec(const std::string& service) override;
  absl::StatusOr<JobResult> RunJob(const std::string& service, const std::string& name,
                                   const std::string& image, const std::vector<std::string>& args,
                                   absl::Duration timeout,
                                   const std::function<bool()>& cancelled) override;
  absl::StatusOr<hosting::v1::Release> StartRelease(const std::string& service,
                                                    const std::string& image,
                                                    const std::string& reason) override;
  absl::StatusOr<hosting::v1::Release> GetRelease(const std::string& id) override;
  absl::StatusOr<hosting::v1::Release> ReleaseEnv(const std::string& service,
                                                  const std::map<std::string, std::string>& env,
                                                  const std::string& reason) override;

 private:
  ClusterManager& cluster_;
  Reconciler& reconciler_;
  ServiceManager& services_;
  ReleaseManager& releases_;
  docker::DockerClient& docker_;
};

}  // namespace hosting::controlplane
