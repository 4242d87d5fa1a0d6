#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/docker_client.h"
#include "controlplane/traffic/load_balancer.h"

namespace hosting::controlplane {

// A service of the platform's Swarm stack (deploy/swarm/stack.yml) as platform-restart sees it:
// its deploy labels say where it goes in the restart and how it is restarted.
struct PlatformService {
  std::string id;
  std::string name;  // the Swarm service: "<stack>_<service>"
  // hosting.tier: "data" (first), "monitoring", "proxy" (last). Other values are refused.
  std::string tier;
  // hosting.restart-order: lower first within a tier (then by name); 100 when absent.
  int order = 100;
  // hosting.restart: "update" (default: docker service update --force, new tasks),
  // "pause-writes" (the same with writes held at the front door meanwhile: the database
  // primary), "reload" (HAProxy: new processes on the same sockets, nothing replaced).
  std::string restart = "update";
  bool global = false;
  int64_t desired_tasks = 0;
};

// Where a forced update of a service stands.
struct UpdateProgress {
  bool done = false;    // Swarm completed it and every desired task runs (health checks passed)
  bool failed = false;  // Swarm paused or rolled it back
  std::string detail;   // "updating, 0/1 tasks running", "completed, 1/1 tasks running", ...
  int64_t running = 0;  // tasks running now (a task with a health check: once healthy)
  int64_t desired = 0;
};

// What platform-restart does to the platform: its Swarm services through the Docker API, the
// front door through HAProxy's runtime API and master CLI. hostd's implementation is
// PlatformOperationsImpl; unit tests use a fake.
class PlatformOperations {
 public:
  virtual ~PlatformOperations() = default;
  // The services of stack `stack` (label com.docker.stack.namespace); NOT_FOUND when none.
  virtual absl::StatusOr<std::vector<PlatformService>> StackServices(const std::string& stack) = 0;
  // docker service update --force: new tasks of the same spec, under the service's
  // update_config.
  virtual absl::Status ForceUpdate(const std::string& service_id) = 0;
  virtual absl::StatusOr<UpdateProgress> Progress(const std::string& service_id) = 0;
  // Holds (true) or lets go (false) write requests (any method but GET and HEAD) at the front
  // door: deploy/haproxy/hold.lua, pause.map.
  virtual absl::Status PauseWrites(bool paused) = 0;
  // The front door's worker processes ("pid" each), from its master CLI.
  virtual absl::StatusOr<std::vector<std::string>> ProxyWorkers() = 0;
  // Asks the front door's master to reload: new workers take over the listening sockets.
  virtual absl::Status ReloadProxy() = 0;
  // Servers of a hosted service's backend that take traffic now (ready, up, weight > 0).
  virtual absl::StatusOr<int> ProxyServers(const std::string& backend) = 0;
};

// hostd's PlatformOperations. `haproxy`: the runtime API's address (hostd --haproxy);
// `haproxy_master`: the master CLI's (hostd --haproxy-master); either may be empty, and then
// what needs it fails naming the flag.
class PlatformOperationsImpl final : public PlatformOperations {
 public:
  PlatformOperationsImpl(docker::DockerClient& docker, std::string haproxy,
                         std::string haproxy_master);

  absl::StatusOr<std::vector<PlatformService>> StackServices(const std::string& stack) override;
  absl::Status ForceUpdate(const std::string& service_id) override;
  absl::StatusOr<UpdateProgress> Progress(const std::string& service_id) override;
  absl::Status PauseWrites(bool paused) override;
  absl::StatusOr<std::vector<std::string>> ProxyWorkers() override;
  absl::Status ReloadProxy() override;
  absl::StatusOr<int> ProxyServers(const std::string& backend) override;

  // The worker PIDs in an answer to the master CLI's "show proc".
  static std::vector<std::string> ParseWorkers(const std::string& show_proc);
  // A service as platform-restart sees it, from the Docker API's answer.
  static PlatformService FromDocker(const docker::ServiceInfo& s);

 private:
  docker::DockerClient& docker_;
  const std::string haproxy_;
  const std::string haproxy_master_;
};

// The master CLI's address: `master` when given, else "master.sock" beside a unix-socket
// runtime API `haproxy` ("/run/hosting/haproxy/admin.sock" -> ".../master.sock", where the
// platform's image puts it), else "" (none).
std::string HaproxyMasterAddress(const std::string& haproxy, const std::string& master);

}  // namespace hosting::controlplane
