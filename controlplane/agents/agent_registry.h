#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "common/metric_window.h"
#include "controlplane/agents/revision_metrics.h"
#include "controlplane/store/event_log.h"
#include "hosting/v1/agent.pb.h"
#include "hosting/v1/cluster.pb.h"

namespace hosting::controlplane {

// What Swarm says runs where, as last listed: the bound on what agents report.
struct SwarmTaskListing {
  absl::flat_hash_map<std::string, std::string> node_of_task;  // task ID -> node ID
  absl::Time listed_at = absl::InfinitePast();
};
// The newest listing; nullptr while Swarm cannot be listed (the agents are then believed, so
// a Docker outage never takes tasks out of routing).
using SwarmTaskSource = std::function<std::shared_ptr<const SwarmTaskListing>()>;

// What hostd knows from the agents: their sessions (connected, last seen, lost after missed
// heartbeats), every task's health as probed on its node, and per-task metric windows from
// which per-service, per-revision aggregates are computed. The metrics source that releases
// and the autoscaler read. Pure logic over a Clock; thread-safe.
class AgentRegistry {
 public:
  struct Options {
    absl::Duration heartbeat_interval = absl::Seconds(2);
    // An agent is lost after this many intervals without a message.
    int missed_heartbeats = 3;
    // Length of the rate and quantile windows.
    absl::Duration window = absl::Seconds(30);
    // Tasks of a node whose agent has been lost this long are forgotten (Swarm has moved them
    // or will; a returning agent reports them again).
    absl::Duration forget_lost_after = absl::Minutes(5);
  };

  AgentRegistry(Options options, EventLog& events, Clock& clock);

  // Bounds reports by what Swarm runs: a reported task that a listing made after its first
  // report does not hold on that node (one Swarm never scheduled, stopped, or placed
  // elsewhere: a forged or confused report) is left out of every read below until a listing
  // holds it. Without a source (unit tests) every report is believed. Set before use.
  void SetSwarmTasks(SwarmTaskSource source) { swarm_tasks_ = std::move(source); }
  // Called (on the reporting agent's thread, no lock held) after each metrics report is taken
  // in: a release analysing a canary decides on the samples the moment they arrive. Set before
  // use; it must not block.
  void SetMetricsListener(std::function<void()> listener) {
    metrics_listener_ = std::move(listener);
  }
  // Reported tasks left out for that reason, now.
  int UnconfirmedTasks();

  // A new session for the node; returns its session number. One agent owns a node: while a
  // session of the node is live (connected, and heard from within the allowed heartbeats) a
  // second is refused with ALREADY_EXISTS; a session that went quiet or closed is replaced.
  // INVALID_ARGUMENT for a node id that is not 1 to 64 of [A-Za-z0-9._-].
  absl::StatusOr<int64_t> Connect(const hosting::v1::Register& reg);
  // The session ended (stream closed). A newer session of the same node is left alone.
  void Disconnect(const std::string& node_id, int64_t session);
  // Any message counts as a heartbeat.
  void Touch(const std::string& node_id, int64_t session);
  // One task's change; a task another live node reports is not taken over.
  void TaskChanged(const std::string& node_id, const hosting::v1::TaskReport& task);
  // The node's full task set; tasks not in it are gone. At most kMaxTasksPerNode tasks (a
  // larger snapshot is refused whole); a task another live node reports is not taken over.
  static constexpr int kMaxTasksPerNode = 1000;
  absl::Status Snapshot(const std::string& node_id, const hosting::v1::TaskSnapshot& snapshot);
  void Metrics(const std::string& node_id, const hosting::v1::MetricsReport& report);
  // One message of a registered session after its Register: a heartbeat for the session, and
  // the task, snapshot or metrics report it carries. An error (a refused snapshot) ends the
  // session. Command results are the hub's (not handled here).
  absl::Status Receive(const std::string& node_id, int64_t session,
                       const hosting::v1::AgentMessage& message);
  // Marks agents lost whose last message is older than the allowed heartbeats; publishes
  // agent.lost for each; forgets the tasks of nodes lost longer than forget_lost_after.
  // Called periodically.
  //
  // A lost (or disconnected) node's tasks are not deleted at once, but everything read about
  // them says they are unknown: Tasks() reports their health TASK_HEALTH_UNSPECIFIED,
  // TaskMetrics() their rates as missing, and Aggregate() counts them as `unknown` only.
  void Sweep();

  struct AgentInfo {
    hosting::v1::AgentState state = hosting::v1::AGENT_STATE_ABSENT;
    std::string version;
    std::map<std::string, std::string> labels;
    absl::Time last_seen;
    int running_tasks = 0;
  };
  AgentInfo Agent(const std::string& node_id);

  // Aggregates of one revision over the window.
  std::map<int64_t, RevisionMetrics> Aggregate(const std::string& service);

  // One task as the autoscaler reads it: health, and metrics over the last `over`.
  struct TaskMetricsView {
    std::string task_id;
    std::string node_id;
    int64_t revision = 0;
    hosting::v1::TaskHealth health = hosting::v1::TASK_HEALTH_UNSPECIFIED;
    // Requests per second; NaN when the application's metrics are missing or too few samples.
    double rps = NAN;
    // Requests in flight at the last scrape; NaN when missing.
    double in_flight = NAN;
    // CPU use in cores; NaN with too few samples.
    double cpu_cores = NAN;
    int64_t memory_bytes = 0;
    // 0 when the container has no memory limit.
    int64_t memory_limit_bytes = 0;
  };
  std::vector<TaskMetricsView> TaskMetrics(const std::string& service, absl::Duration over);

  // The node a task runs on, by task ID or a unique prefix of at least 6 characters.
  // NOT_FOUND for an unknown task, INVALID_ARGUMENT for an ambiguous or short prefix.
  absl::StatusOr<std::pair<std::string, hosting::v1::TaskReport>> FindTask(const std::string& id);
  // Nodes whose agent is connected now.
  std::vector<std::string> ConnectedNodes();

  // What a connected node has: its size (from its Register) and the memory it has available
  // now (from its last metrics report; 0: not reported yet).
  struct NodeCapacity {
    std::string node_id;
    int32_t cpus = 0;
    int64_t memory_bytes = 0;
    int64_t memory_available_bytes = 0;
  };
  std::vector<NodeCapacity> Capacity();

  // Services with at least one reported task.
  std::vector<std::string> Services();

  // The health of every task of a service (unknown for a lost node's), for routing and status.
  std::vector<hosting::v1::TaskReport> Tasks(const std::string& service);

  const Options& options() const { return options_; }

 private:
  struct TaskState {
    hosting::v1::TaskReport report;
    std::string node_id;
    CounterWindow requests;
    CounterWindow errors;
    CounterWindow cpu_ns;
    HistogramWindow latency;
    int64_t memory_bytes = 0;
    int64_t memory_limit_bytes = 0;
    double in_flight = 0;
    bool metrics_missing = true;
    // When an agent first reported it (to judge it against Swarm's listings).
    absl::Time first_reported;
    bool warned_unconfirmed = false;
    TaskState(absl::Duration w) : requests(w), errors(w), cpu_ns(w), latency(w) {}
  };
  struct Session {
    int64_t id = 0;
    hosting::v1::Register reg;
    absl::Time last_seen;
    bool lost = false;
    bool connected = false;
    // When it stopped reporting (lost or disconnected).
    absl::Time gone_since = absl::InfiniteFuture();
    int64_t memory_available_bytes = 0;
  };
  void TakeMetrics(const std::string& node_id, const hosting::v1::MetricsReport& report);
  // Whether Swarm's listing bears the task out (see SetSwarmTasks); logs the first refusal.
  bool Confirmed(const std::string& task_id, TaskState& task, const SwarmTaskListing* listing)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Whether the node's agent reports now (connected and not lost).
  bool Live(const std::string& node_id) const ABSL_SHARED_LOCKS_REQUIRED(mu_);
  // The task's state, made on its first report.
  TaskState& Slot(const std::string& task_id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::shared_ptr<const SwarmTaskListing> Listing() const {
    return swarm_tasks_ ? swarm_tasks_() : nullptr;
  }
  // Whether a live node other than `node_id` reports the task (task ids never move nodes).
  bool OwnedByAnotherLiveNode(const std::string& task_id, const std::string& node_id) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  void PublishHealthChange(const hosting::v1::TaskReport& before,
                           const hosting::v1::TaskReport& after, const std::string& node_id);

  const Options options_;
  EventLog& events_;
  Clock& clock_;
  absl::Mutex mu_;
  int64_t next_session_ ABSL_GUARDED_BY(mu_) = 1;
  std::map<std::string, Session> sessions_ ABSL_GUARDED_BY(mu_);  // by node
  std::map<std::string, std::unique_ptr<TaskState>> tasks_ ABSL_GUARDED_BY(mu_);  // by task id
  SwarmTaskSource swarm_tasks_;
  std::function<void()> metrics_listener_;
};

const char* TaskHealthName(hosting::v1::TaskHealth h);

}  // namespace hosting::controlplane
