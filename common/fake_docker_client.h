#pragma once

#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "common/docker_client.h"

namespace hosting::docker {

// An in-memory Swarm for unit tests: services with versions, one running task per replica,
// recorded actions and injectable faults. Never used outside unit tests.
class FakeDockerClient final : public DockerClient {
 public:
  FakeDockerClient();

  absl::StatusOr<EngineInfo> Info() override;
  absl::StatusOr<std::string> CreateService(const nlohmann::json& spec) override;
  absl::StatusOr<ServiceInfo> InspectService(absl::string_view id_or_name) override;
  absl::StatusOr<std::vector<ServiceInfo>> ListServices(const Filters& filters) override;
  absl::Status UpdateService(absl::string_view id, uint64_t version,
                             const nlohmann::json& spec) override;
  absl::Status RemoveService(absl::string_view id_or_name) override;
  absl::StatusOr<std::vector<TaskInfo>> ListTasks(const Filters& filters) override;
  absl::StatusOr<std::vector<NodeInfo>> ListNodes() override;
  absl::StatusOr<NodeInfo> InspectNode(absl::string_view id) override;
  absl::Status UpdateNode(absl::string_view id, uint64_t version,
                          const nlohmann::json& spec) override;
  absl::StatusOr<std::vector<ContainerInfo>> ListContainers(const Filters& filters) override;
  absl::StatusOr<nlohmann::json> InspectContainer(absl::string_view id) override;
  absl::StatusOr<std::string> SecretId(absl::string_view name) override;
  absl::Status EnsureOverlayNetwork(absl::string_view name) override;
  absl::Status PullImage(absl::string_view image) override;
  absl::StatusOr<bool> HasImage(absl::string_view image) override;
  absl::Status RestartContainer(absl::string_view id) override;
  absl::StatusOr<std::string> ContainerLogs(absl::string_view id, int tail) override;
  // Delivers queued events (PushEvent) and returns when should_stop is true.
  absl::Status StreamEvents(int64_t since, const Filters& filters,
                            const std::function<void(const Event&)>& on_event,
                            const std::function<bool()>& should_stop) override;

  // --- Test controls ---
  // Every call fails with UNAVAILABLE while set.
  void SetUnavailable(bool unavailable);
  // Runs at the start of every ListTasks, with no lock held (a slow engine: a test may block
  // there); empty to remove.
  void SetListTasksHook(std::function<void()> hook);
  // The next `n` UpdateService calls fail with "update out of sequence" (and bump the version,
  // as Swarm's own status writes do).
  void FailNextUpdates(int n);
  // Running tasks reported per service stay at this count instead of following replicas.
  void SetRunningTasks(absl::string_view name, int64_t running);
  // Changes a service behind the client's back, as an operator with the docker CLI would.
  void ScaleOutside(absl::string_view name, int64_t replicas);
  void RemoveOutside(absl::string_view name);
  void PushEvent(Event event);
  // The Swarm has `count` ready nodes, node1..nodeN (default 1); a service's tasks spread over
  // them, slot by slot.
  void SetNodeCount(int count);
  // The Swarm has a secret with this name and ID (SecretId).
  void AddSecret(absl::string_view name, absl::string_view id);
  // The engine has `image` locally (HasImage), as after a build or a load.
  void AddImage(absl::string_view image);
  // Pulls fail with `error` (NOT_FOUND, as a registry that does not know the image) while set.
  void SetPullError(std::string error);
  // The next `n` InspectNode calls fail with UNAVAILABLE.
  void FailNextNodeInspects(int n);
  // A running container on this engine (as an agent lists them), with what InspectContainer
  // returns for it; RemoveContainer makes it gone.
  void AddContainer(ContainerInfo info, nlohmann::json inspect);
  void RemoveContainer(absl::string_view id);
  // "create app-r1", "update app-r1 replicas=3", "remove app-r1", in order.
  std::vector<std::string> actions() const;
  void ClearActions();
  int service_count() const;

 private:
  struct Service {
    std::string id;
    uint64_t version;
    nlohmann::json spec;
    int64_t running_override = -1;
    // What the spec parses to, kept with every write (lists do not parse again).
    ServiceInfo info;
  };
  absl::Status CheckAvailable() const ABSL_SHARED_LOCKS_REQUIRED(mu_);
  Service* Find(absl::string_view id_or_name) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  ServiceInfo ToInfo(const Service& s) const;
  // Parses the spec into s.info after a write.
  static void Refresh(Service& s);

  mutable absl::Mutex mu_;
  std::map<std::string, Service> services_ ABSL_GUARDED_BY(mu_);  // by ID
  std::map<std::string, std::string> ids_by_name_ ABSL_GUARDED_BY(mu_);
  int node_count_ ABSL_GUARDED_BY(mu_) = 1;
  int fail_node_inspects_ ABSL_GUARDED_BY(mu_) = 0;
  std::set<std::string> images_ ABSL_GUARDED_BY(mu_);
  std::string pull_error_ ABSL_GUARDED_BY(mu_);
  // Node specs written through UpdateNode, by node ID (availability and labels show in lists).
  std::map<std::string, nlohmann::json> node_specs_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> actions_ ABSL_GUARDED_BY(mu_);
  std::vector<Event> events_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::pair<ContainerInfo, nlohmann::json>> containers_ ABSL_GUARDED_BY(mu_);
  bool unavailable_ ABSL_GUARDED_BY(mu_) = false;
  std::function<void()> list_tasks_hook_ ABSL_GUARDED_BY(mu_);
  int fail_updates_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t next_index_ ABSL_GUARDED_BY(mu_) = 10;
  int next_id_ ABSL_GUARDED_BY(mu_) = 1;
  std::map<std::string, std::string> secrets_ ABSL_GUARDED_BY(mu_);
};

}  // namespace hosting::docker
