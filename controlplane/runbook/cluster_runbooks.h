#pragma once

#include <map>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "controlplane/query/loki.h"
#include "controlplane/runbook/operations.h"
#include "controlplane/runbook/runbook.h"

namespace hosting::controlplane {

// node-maintenance: takes a node out of service and puts it back.
//   drain        the node's tasks leave HAProxy, then Swarm moves them (ClusterOperations)
//   wait-moved   no hosted task left on the node, every service at its replica count
//   maintenance  the operator's window: waits for ApproveRun, or `wait` when given
//   activate     the node takes tasks again
//   rebalance    each service with fewer tasks on the node than its fair share (its tasks over
//                the active nodes, rounded down) is restarted by a rolling release (env
//                HOSTING_RESTARTED_AT), so Swarm spreads the new tasks; `-p rebalance=false`
//                leaves running tasks where they are
//   spread       hosted tasks per node, as they stand after that
// Refused up front when the node is the only active one (its tasks would have nowhere to go).
class NodeMaintenanceRunbook final : public Runbook {
 public:
  explicit NodeMaintenanceRunbook(ClusterOperations& cluster) : cluster_(cluster) {}
  hosting::v1::Runbook Describe() const override;
  absl::StatusOr<std::vector<StepPlan>> Plan(const Parameters& params) override;
  absl::StatusOr<std::string> Execute(StepContext& ctx) override;

 private:
  ClusterOperations& cluster_;
};

// log-analysis: a service's task logs over a window, read from Loki when hostd has one (the
// whole window, `lines` per task at most) and through the agents otherwise or when Loki fails;
// errors counted by pattern, the most frequent error messages with their first occurrence. The
// run's outputs carry the counts (errors, lines, source, pattern.<name>, top.<n>).
class LogAnalysisRunbook final : public Runbook {
 public:
  // `logs`: Loki (hostd --loki), or null.
  explicit LogAnalysisRunbook(ClusterOperations& cluster, LogStore* logs = nullptr)
      : cluster_(cluster), logs_(logs) {}
  hosting::v1::Runbook Describe() const override;
  absl::StatusOr<std::vector<StepPlan>> Plan(const Parameters& params) override;
  absl::StatusOr<std::string> Execute(StepContext& ctx) override;

 private:
  ClusterOperations& cluster_;
  LogStore* logs_;
};

// What LogAnalysisRunbook finds in log text (exposed for its unit test).
struct LogFindings {
  struct Message {
    std::string text;  // normalized: numbers as N, long hex IDs as X
    int count = 0;
    std::string first_time;  // as the line gave it; "" when it had none
    std::string first_task;
  };
  int lines = 0;    // lines in the window
  int untimed = 0;  // of them, lines without a readable time (counted in)
  int errors = 0;   // lines matching any error pattern
  std::map<std::string, int> by_pattern;
  std::vector<Message> top;  // most frequent error messages first
};

class LogAnalyzer {
 public:
  // Lines stamped before `since` are left out.
  explicit LogAnalyzer(absl::Time since) : since_(since) {}
  void Add(const std::string& task, const std::string& text);
  LogFindings Findings(size_t top) const;
  // "db timeout after 1503ms (req 9f3a2b1c44)" -> "db timeout after Nms (req X)".
  static std::string Normalize(const std::string& message);

 private:
  absl::Time since_;
  LogFindings findings_;
  std::map<std::string, LogFindings::Message> messages_;
};

}  // namespace hosting::controlplane
