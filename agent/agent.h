#pragma once

#include <atomic>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "common/docker_client.h"
#include "grpcpp/grpcpp.h"
#include "hosting/v1/agent.grpc.pb.h"

namespace prometheus {
class Exposer;
class Registry;
}  // namespace prometheus

namespace hosting::agent {

struct AgentOptions {
  std::string controller = "127.0.0.1:50051";
  std::string node_id;  // empty: the Swarm node ID from the local /info
  std::string metrics_listen = "127.0.0.1:9465";  // empty disables
  absl::Duration report_interval = absl::Seconds(2);
  absl::Duration resync_interval = absl::Seconds(10);
  // Between attempts after a stream breaks (full jitter); the channel itself retries within
  // a second while hostd is unreachable.
  absl::Duration max_backoff = absl::Seconds(2);
  int probe_threads = 4;
  // Where the host's cgroup hierarchy is mounted.
  std::string cgroup_root = "/sys/fs/cgroup";
};

// hostagent: observes this node's Swarm task containers (Docker events as hints, full lists as
// the truth), probes their HTTP health inside each task's network namespace, scrapes their
// /metrics and cgroup, and reports over one AgentGateway.Connect stream to hostd, reconnecting
// with backoff and jitter. Observation never stops while hostd is away.
class Agent {
 public:
  Agent(AgentOptions options, docker::DockerClient& docker);
  ~Agent();

  absl::Status Init();
  void Start();
  void Stop();

  const std::string& node_id() const { return node_id_; }
  bool connected() const { return connected_.load(); }

 private:
  struct Task {
    hosting::v1::TaskReport report;
    int pid = 0;
    // Probe state.
    int successes = 0;
    int failures = 0;
    absl::Time started;
    absl::Time next_probe;
    bool probing = false;
    // An application without usable /metrics is asked again only after a pause.
    absl::Time next_scrape;
  };

  void DiscoveryLoop();
  absl::Status Refresh();
  void InspectInto(const std::string& container_id, Task& task);
  void CommandLoop();
  hosting::v1::CommandResult Execute(const hosting::v1::Command& command);
  void ScheduleLoop();
  void ProbeLoop();
  void ReportLoop();
  void StreamLoop();
  void HeartbeatLoop();
  void Send(const hosting::v1::AgentMessage& msg);
  void SendSnapshot();
  void ApplyProbeConfigs(const hosting::v1::ProbeConfigs& configs);
  const hosting::v1::ProbeConfig* ConfigFor(const std::string& service) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  void ReportTask(const hosting::v1::TaskReport& report);

  const AgentOptions options_;
  docker::DockerClient& docker_;
  std::string node_id_;
  std::string hostname_;
  int cpus_ = 0;
  int64_t memory_ = 0;
  docker::Labels labels_;

  absl::Notification stop_;
  std::vector<std::thread> threads_;
  std::atomic<bool> connected_{false};
  std::atomic<int64_t> heartbeat_ms_{2000};

  absl::Mutex mu_;
  std::map<std::string, Task> tasks_ ABSL_GUARDED_BY(mu_);  // by container ID
  std::map<std::string, hosting::v1::ProbeConfig> probes_ ABSL_GUARDED_BY(mu_);  // by service
  std::deque<std::string> due_ ABSL_GUARDED_BY(mu_);  // container IDs to probe now
  std::deque<hosting::v1::Command> commands_ ABSL_GUARDED_BY(mu_);

  absl::Mutex stream_mu_;
  grpc::ClientContext* stream_ctx_ ABSL_GUARDED_BY(stream_mu_) = nullptr;
  grpc::ClientReaderWriter<hosting::v1::AgentMessage, hosting::v1::ControllerMessage>* stream_
      ABSL_GUARDED_BY(stream_mu_) = nullptr;

  std::shared_ptr<prometheus::Registry> registry_;
  std::unique_ptr<prometheus::Exposer> exposer_;
  struct Metrics;
  std::unique_ptr<Metrics> metrics_;
};

}  // namespace hosting::agent
