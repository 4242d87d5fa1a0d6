#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include "absl/strings/string_view.h"
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "nlohmann/json.hpp"

namespace hosting::docker {

// Docker list filters: {"label": ["a=b"], "service": ["x"]}.
using Filters = std::map<std::string, std::vector<std::string>>;
using Labels = std::map<std::string, std::string>;

// What GET /info says about this engine and its Swarm membership.
struct EngineInfo {
  std::string name;            // hostname
  std::string server_version;  // e.g. "20.10.24+dfsg1"
  std::string node_id;         // Swarm.NodeID; empty outside a swarm
  std::string swarm_state;     // Swarm.LocalNodeState: inactive, active, ...
  bool control_available = false;  // this node is a manager
  int ncpu = 0;
  int64_t mem_total = 0;
  Labels labels;  // the engine's labels (dockerd --label k=v)
};

// A Swarm service as GET /services returns it.
struct ServiceInfo {
  std::string id;
  std::string name;
  uint64_t version = 0;  // Version.Index, for optimistic updates
  Labels labels;
  nlohmann::json spec;   // the full Spec, as Docker returned it
  // Spec.Mode.Replicated.Replicas; -1 for a global service.
  int64_t replicas = -1;
  // From ?status=true; -1 when absent.
  int64_t running_tasks = -1;
  int64_t desired_tasks = -1;
  std::string update_state;  // UpdateStatus.State; empty when no rollout
};

struct TaskInfo {
  std::string id;
  std::string service_id;
  std::string node_id;
  int64_t slot = 0;
  std::string desired_state;
  std::string state;  // Status.State
  std::string message;
  std::string error;
  std::string container_id;
  std::vector<std::string> addresses;  // "10.0.1.7/24"
  Labels labels;
};

struct NodeInfo {
  std::string id;
  uint64_t version = 0;
  std::string hostname;
  std::string role;
  std::string availability;
  std::string state;
  std::string address;
  Labels labels;
  int64_t nano_cpus = 0;
  int64_t memory_bytes = 0;
  std::string engine_version;
  nlohmann::json spec;
};

struct ContainerInfo {
  std::string id;
  std::string name;
  std::string image;
  std::string state;   // running, exited, ...
  std::string status;  // "Up 3 minutes (healthy)"
  Labels labels;
};

// One object of the /events stream.
struct Event {
  std::string type;    // service, container, node, ...
  std::string action;  // create, update, remove, health_status: healthy, ...
  std::string actor_id;
  Labels attributes;
  int64_t time_nano = 0;
};

// Parses one /events line. InvalidArgument for malformed JSON.
absl::StatusOr<Event> ParseEvent(absl::string_view line);

// The Docker Engine API (v1.41) as hosting uses it. Every call is synchronous and thread-safe.
// Errors: UNAVAILABLE when the engine cannot be reached; the HTTP error mapped to a code (400
// INVALID_ARGUMENT, 404 NOT_FOUND, 409 ALREADY_EXISTS, 500 "update out of sequence" ABORTED,
// 503 FAILED_PRECONDITION for "not a swarm manager") with Docker's own message.
class DockerClient {
 public:
  virtual ~DockerClient() = default;

  virtual absl::StatusOr<EngineInfo> Info() = 0;

  // POST /services/create; returns the new service's ID.
  virtual absl::StatusOr<std::string> CreateService(const nlohmann::json& spec) = 0;
  virtual absl::StatusOr<ServiceInfo> InspectService(absl::string_view id_or_name) = 0;
  // GET /services?status=true with filters.
  virtual absl::StatusOr<std::vector<ServiceInfo>> ListServices(const Filters& filters) = 0;
  // POST /services/{id}/update?version=N with the full spec.
  virtual absl::Status UpdateService(absl::string_view id, uint64_t version,
                                     const nlohmann::json& spec) = 0;
  virtual absl::Status RemoveService(absl::string_view id_or_name) = 0;

  virtual absl::StatusOr<std::vector<TaskInfo>> ListTasks(const Filters& filters) = 0;

  virtual absl::StatusOr<std::vector<NodeInfo>> ListNodes() = 0;
  virtual absl::StatusOr<NodeInfo> InspectNode(absl::string_view id) = 0;
  virtual absl::Status UpdateNode(absl::string_view id, uint64_t version,
                                  const nlohmann::json& spec) = 0;

  virtual absl::StatusOr<std::vector<ContainerInfo>> ListContainers(const Filters& filters) = 0;
  virtual absl::StatusOr<nlohmann::json> InspectContainer(absl::string_view id) = 0;

  // POST /images/create?fromImage=...; waits for the pull to finish. Errors carry the
  // registry's message.
  virtual absl::Status PullImage(absl::string_view image) = 0;
  // GET /images/{name}/json: whether the engine has the image locally.
  virtual absl::StatusOr<bool> HasImage(absl::string_view image) = 0;
  // POST /containers/{id}/restart.
  virtual absl::Status RestartContainer(absl::string_view id) = 0;
  // The last `tail` lines of stdout and stderr (demultiplexed).
  virtual absl::StatusOr<std::string> ContainerLogs(absl::string_view id, int tail) = 0;

  // GET /secrets/{name}: the ID of the Swarm secret with exactly this name (never its value,
  // which the engine does not return); NOT_FOUND when there is none.
  virtual absl::StatusOr<std::string> SecretId(absl::string_view name) = 0;

  // Creates an attachable overlay network with this name unless one exists.
  virtual absl::Status EnsureOverlayNetwork(absl::string_view name) = 0;

  // Streams GET /events from `since` (Unix seconds; 0 for now) until the stream ends, fails, or
  // `should_stop` returns true (checked at least once a second). Calls `on_event` for each event
  // on the calling thread: it must return quickly (the daemon drops slow readers). Returns OK
  // when stopped by should_stop, an error otherwise.
  virtual absl::Status StreamEvents(int64_t since, const Filters& filters,
                                    const std::function<void(const Event&)>& on_event,
                                    const std::function<bool()>& should_stop) = 0;
};

// Reads the service, lets `mutate` change its spec, and writes it back with the version read.
// Retries on ABORTED ("update out of sequence": Swarm wrote the service in between) with a fresh
// read, up to `attempts` times with a short growing backoff.
absl::Status UpdateServiceWithRetry(DockerClient& docker, absl::string_view id,
                                    const std::function<absl::Status(nlohmann::json&)>& mutate,
                                    int attempts = 5);

// Maps an HTTP error from the engine to a Status with Docker's message.
absl::Status StatusFromHttp(long http_code, absl::string_view method, absl::string_view path,
                            absl::string_view body);

// Parses the JSON shapes of the API into the structs above (exposed for tests).
ServiceInfo ParseService(const nlohmann::json& j);
EngineInfo ParseEngineInfo(const nlohmann::json& j);
TaskInfo ParseTask(const nlohmann::json& j);
NodeInfo ParseNode(const nlohmann::json& j);

}  // namespace hosting::docker
