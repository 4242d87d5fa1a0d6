#pragma once

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/docker_client.h"
#include "controlplane/agents/agent_hub.h"
#include "controlplane/agents/agent_registry.h"
#include "controlplane/reconcile/reconciler.h"
#include "controlplane/service/service_manager.h"
#include "controlplane/store/event_log.h"
#include "hosting/v1/cluster.pb.h"

namespace hosting::controlplane {

// The Cluster domain: Swarm nodes joined with what their agents report, node availability,
// a service's health joined with the agents' windows, and the node-local commands (task logs,
// task restart, image pull) carried out by the agents. Node commands take a callback and never
// block the caller: an image pull may take minutes.
class ClusterManager {
 public:
  ClusterManager(docker::DockerClient& docker, Reconciler& reconciler, ServiceManager& services,
                 AgentHub& hub, AgentRegistry& agents, EventLog& events)
      : docker_(docker), reconciler_(reconciler), services_(services), hub_(hub),
        agents_(agents), events_(events) {}

  // From the watch cache (Node.observed_at says when Swarm was listed), joined with the agents.
  absl::StatusOr<std::vector<hosting::v1::Node>> ListNodes();
  // By ID or hostname, from the watch cache.
  absl::StatusOr<hosting::v1::Node> GetNode(const std::string& node);
  // "active", "pause" or "drain", on a fresh read of the node; retried on Swarm's version
  // conflicts. With a traffic grace (SetTrafficGrace), "drain" takes traffic off the node's
  // tasks first (kTrafficOffLabel), waits the grace so the load balancer stops sending them
  // requests and lets the open ones finish, and only then has Swarm move them; "active" lifts
  // the label with the availability.
  absl::StatusOr<hosting::v1::Node> SetAvailability(const std::string& node,
                                                    const std::string& availability);
  // The service's status (as GetService reports it) joined with the agents' aggregates.
  absl::StatusOr<hosting::v1::ServiceHealthStatus> ServiceHealth(const std::string& name);

  template <typename T>
  using Done = std::function<void(absl::StatusOr<T>)>;
  void TaskLogs(const hosting::v1::GetTaskLogsRequest& request,
                Done<hosting::v1::GetTaskLogsResponse> done);
  void RestartTask(const hosting::v1::RestartTaskRequest& request,
                   Done<hosting::v1::RestartTaskResponse> done);
  // Pulls on the nodes named (all connected ones when none), in parallel; one result a node.
  void PullImage(const hosting::v1::PullImageRequest& request,
                 Done<hosting::v1::PullImageResponse> done);

  // The one way an image is pulled on the nodes (PullImage, and a release's pre-pull, which
  // sets `if_missing`: a node that has the image does not pull it): `done` gets node -> error
  // ("" for pulled or present) once every node has answered or timed out.
  void PullOnNodes(const std::string& image, std::vector<std::string> nodes,
                   absl::Duration timeout, bool if_missing,
                   std::function<void(std::map<std::string, std::string>)> done);

  // How long a drain waits between taking traffic off a node and moving its tasks; zero (no
  // load balancer) drains at once.
  void SetTrafficGrace(absl::Duration grace) { traffic_grace_ = grace; }

  static constexpr absl::Duration kCommandTimeout = absl::Seconds(30);
  static constexpr absl::Duration kPullTimeout = absl::Minutes(10);

 private:
  hosting::v1::Node ToProto(const docker::NodeInfo& n, absl::Time observed_at);
  // Finds `node` (ID or hostname) among `nodes`.
  static absl::StatusOr<docker::NodeInfo> FindNode(const std::vector<docker::NodeInfo>& nodes,
                                                   const std::string& node);
  // Applies `change` to node `n`'s spec at its current version, re-reading it on a version
  // conflict; `n` ends up as it was read last.
  absl::Status UpdateNodeSpec(docker::NodeInfo& n, const std::function<void(nlohmann::json&)>& change);

  docker::DockerClient& docker_;
  Reconciler& reconciler_;
  ServiceManager& services_;
  AgentHub& hub_;
  AgentRegistry& agents_;
  EventLog& events_;
  absl::Duration traffic_grace_ = absl::ZeroDuration();
};

}  // namespace hosting::controlplane
