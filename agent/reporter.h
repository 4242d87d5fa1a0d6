#pragma once

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "agent/agent_metrics.h"
#include "agent/message_sink.h"
#include "agent/node_access.h"
#include "agent/task_table.h"
#include "common/clock.h"
#include "hosting/v1/agent.pb.h"

namespace hosting::agent {

// Every report interval: each task's cgroup figures and its application's /metrics (requests,
// errors, in-flight, latency histogram), as one metrics message; every resync interval the whole
// task set as a snapshot, so hostd heals any report it missed.
class Reporter {
 public:
  Reporter(TaskTable& table, NodeAccess& node, MessageSink& sink, AgentMetrics& metrics,
           Clock& clock, absl::Duration report_interval, absl::Duration resync_interval);

  // One report: the metrics message (with no tasks when the node runs none).
  hosting::v1::AgentMessage Collect();

  // hostd asks for reports every `interval` until `until` (ReportSettings): bounded to
  // [kMinReportInterval, the agent's own interval]; the next report comes at the new pace.
  void RequestInterval(absl::Duration interval, absl::Time until);
  // The interval reports are sent at now.
  absl::Duration Interval();

  void Run(const absl::Notification& stop);

  static constexpr absl::Duration kMinReportInterval = absl::Milliseconds(100);

 private:
  TaskTable& table_;
  NodeAccess& node_;
  MessageSink& sink_;
  AgentMetrics& metrics_;
  Clock& clock_;
  const absl::Duration report_interval_;
  const absl::Duration resync_interval_;
  absl::Mutex mu_;
  absl::Duration requested_interval_ ABSL_GUARDED_BY(mu_) = absl::InfiniteDuration();
  absl::Time requested_until_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
};

}  // namespace hosting::agent
