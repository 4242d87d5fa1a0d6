#pragma once

#include <string>

#include "absl/status/status.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "agent/agent_metrics.h"
#include "agent/message_sink.h"
#include "agent/node_access.h"
#include "agent/task_table.h"
#include "common/clock.h"
#include "common/docker_client.h"

namespace hosting::agent {

// Keeps the task table equal to the Swarm task containers running on this node: a full list is
// the truth, Docker events are hints that trigger one (and carry Docker's own health verdicts,
// reported at once). Every change of the set goes out as a snapshot.
class TaskWatcher {
 public:
  TaskWatcher(docker::DockerClient& docker, NodeAccess& node, TaskTable& table, MessageSink& sink,
              AgentMetrics& metrics, Clock& clock, absl::Duration resync_interval,
              absl::Duration max_backoff);

  // One full list: adds and inspects new task containers, forgets the gone ones, and sends a
  // snapshot when the set changed.
  absl::Status Refresh();

  // Lists, follows events until the next resync, lists again; backs off while the engine is
  // away. Returns when `stop` is notified.
  void Run(const absl::Notification& stop);

  // Applies one Docker event (what Run does with each).
  void OnEvent(const docker::Event& event, bool* dirty);

 private:
  docker::DockerClient& docker_;
  NodeAccess& node_;
  TaskTable& table_;
  MessageSink& sink_;
  AgentMetrics& metrics_;
  Clock& clock_;
  const absl::Duration resync_interval_;
  const absl::Duration max_backoff_;
};

}  // namespace hosting::agent
