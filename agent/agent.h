#pragma once

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "agent/agent_metrics.h"
#include "agent/command_runner.h"
#include "agent/controller_stream.h"
#include "agent/node_access.h"
#include "agent/prober.h"
#include "agent/reporter.h"
#include "agent/task_table.h"
#include "agent/task_watcher.h"
#include "common/bearer_token.h"
#include "common/clock.h"
#include "common/docker_client.h"

namespace prometheus {
class Exposer;
class Registry;
}  // namespace prometheus

namespace hosting::agent {

struct AgentOptions {
  // hostd address, or several comma-separated (an HA control plane; the leader gets the stream).
  std::string controller = "127.0.0.1:50051";
  // The join token sent to hostd (an agent token, docs/security.md); empty: none.
  std::string token;
  // TLS to hostd (all empty: plaintext); with a client certificate whose subject has
  // OU=hosting-agent, hostd takes its CN as this agent's node and needs no token.
  TlsClientFiles tls;
  std::string node_id;  // empty: the Swarm node ID from the local /info
  std::string metrics_listen = "127.0.0.1:9465";  // empty disables
  absl::Duration report_interval = absl::Seconds(2);
  absl::Duration resync_interval = absl::Seconds(10);
  // Between attempts after a stream breaks (full jitter); the channel itself retries within
  // a second while hostd is unreachable.
  absl::Duration max_backoff = absl::Seconds(2);
  int probe_threads = 4;
};

// hostagent: observes this node's Swarm task containers, probes their HTTP health inside each
// task's network namespace, scrapes their /metrics and cgroup, and reports over one
// AgentGateway.Connect stream to hostd. It is the wiring of its parts, each its own class with
// its own unit test: TaskWatcher (the task set), Prober (health), Reporter (metrics and
// snapshots), CommandRunner (node commands) and ControllerStream (the stream, heartbeats), all
// sharing one TaskTable. Observation never stops while hostd is away.
class Agent {
 public:
  Agent(AgentOptions options, docker::DockerClient& docker, NodeAccess& node,
        Clock& clock = Clock::Real());
  ~Agent();

  // Reads the node's identity from the engine, opens /metrics, lists the tasks once.
  absl::Status Init();
  void Start();
  void Stop();

  const std::string& node_id() const { return identity_.node_id; }
  bool connected() const { return stream_ != nullptr && stream_->connected(); }

 private:
  const AgentOptions options_;
  docker::DockerClient& docker_;
  NodeAccess& node_;
  Clock& clock_;
  NodeIdentity identity_;

  std::shared_ptr<prometheus::Registry> registry_;
  std::unique_ptr<prometheus::Exposer> exposer_;
  AgentMetrics metrics_;
  TaskTable table_;
  // Created by Init (the stream needs the node's identity); the parts send through it.
  std::unique_ptr<ControllerStream> stream_;
  std::unique_ptr<TaskWatcher> watcher_;
  std::unique_ptr<Prober> prober_;
  std::unique_ptr<Reporter> reporter_;
  std::unique_ptr<CommandRunner> commands_;

  absl::Notification stop_;
  std::vector<std::thread> threads_;
};

}  // namespace hosting::agent
