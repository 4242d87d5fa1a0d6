#pragma once

#include <deque>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "agent/agent_metrics.h"
#include "agent/message_sink.h"
#include "agent/node_access.h"
#include "agent/task_table.h"
#include "common/clock.h"

namespace hosting::agent {

// Probes each task's HTTP health inside its network namespace at its service's interval and
// counts results against the thresholds hostd set; a change of a task's health goes out at once,
// not on the next report. One scheduler finds due probes and hands them to the workers, so the
// workers sleep until there is work instead of all scanning the table.
class Prober {
 public:
  Prober(TaskTable& table, NodeAccess& node, MessageSink& sink, AgentMetrics& metrics,
         Clock& clock);

  // Queues every probe due now; returns when the next one falls due.
  absl::Time ScheduleDue();
  // Runs one queued probe; false when the queue was empty.
  bool ProbeNext();

  // The scheduler and a worker, until `stop` (the agent runs one scheduler and N workers).
  void RunScheduler(const absl::Notification& stop);
  void RunWorker(const absl::Notification& stop);

 private:
  void Probe(const std::string& container_id);

  TaskTable& table_;
  NodeAccess& node_;
  MessageSink& sink_;
  AgentMetrics& metrics_;
  Clock& clock_;
  absl::Mutex mu_;
  std::deque<std::string> due_ ABSL_GUARDED_BY(mu_);  // container IDs to probe now
};

}  // namespace hosting::agent
