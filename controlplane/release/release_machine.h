#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "controlplane/agents/revision_metrics.h"
#include "controlplane/store/records.h"
#include "hosting/internal/state.pb.h"
#include "hosting/v1/releases.pb.h"

namespace hosting::controlplane {

// One task of a revision as the release sees it: Swarm wants it running and it runs.
struct TaskView {
  std::string id;
  int64_t slot = 0;
  // Ready for traffic: the agent's probe passes (or the service has no HTTP check).
  bool ready = false;
  // The agent's probe failed its threshold.
  bool unhealthy = false;
  absl::Time ready_since = absl::InfinitePast();
  std::string detail;
};

// What a release step looks at; built by the ReleaseManager from Docker, the agents and HAProxy,
// and by hand in unit tests.
struct Observation {
  absl::Time now;
  std::map<int64_t, std::vector<TaskView>> tasks;  // by revision
  std::map<int64_t, RevisionMetrics> metrics;  // by revision
  // HAProxy routes the service: weights are exact and drains are real.
  bool router = false;
  // Open sessions per task on HAProxy (missing: none seen).
  std::map<std::string, int> sessions;
  // Results of the policy's PromQL checks, by query as written.
  std::map<std::string, absl::StatusOr<double>> promql;
  // How many more of the service's tasks the nodes have memory for (SpareTasks); -1: unknown.
  int32_t spare_tasks = -1;
  // One task's memory as SpareTasks counted it, for the release's notes.
  int64_t task_memory_bytes = 0;
};

// A node's memory as its agent reports it (0 available: not reported).
struct NodeMemory {
  int64_t total_bytes = 0;
  int64_t available_bytes = 0;
};

// The memory one task of `spec` needs: its memory limit when set, else the larger of its
// reservation and 1.5x the most any running task of it uses (`observed`), at least 64 MiB;
// 256 MiB when nothing is known.
int64_t TaskMemoryNeed(const hosting::v1::ServiceSpec& spec, const std::vector<int64_t>& observed);

// How many tasks needing `task_bytes` fit in what the nodes have available, each keeping a
// reserve (a tenth of its memory, at least 256 MiB); -1 when no node reported its memory.
int32_t SpareTasks(const std::vector<NodeMemory>& nodes, int64_t task_bytes);

// Something a step did, for the event log and WatchRelease.
struct ReleaseNote {
  std::string type;
  std::string message;
  std::map<std::string, std::string> attributes;
};

struct MachineOptions {
  // How long drained tasks may keep sessions before their revision is scaled down anyway.
  absl::Duration drain_timeout = absl::Seconds(10);
};

// The release state machine: pure logic over an observation. Advance moves one release (and
// the rollout of its service) as far as the observation allows and says what it did. Everything
// it needs to resume lives in the two records, which the caller persists after each step.
class ReleaseMachine {
 public:
  explicit ReleaseMachine(MachineOptions options = {}) : options_(options) {}

  // The policy a release runs: `override`'s parts (when given) over the service's own, with
  // the strategy resolved (none: rolling; RECREATE: an all-at-once rolling release).
  static hosting::v1::ReleasePolicy ResolvePolicy(const hosting::v1::ReleasePolicy& service_policy,
                                                  const hosting::v1::ReleasePolicy* override);

  // A release's first records: the release (PENDING, policy resolved) and the service's next
  // desired state, in which the new `revision` (running `spec`) starts at 0 replicas and
  // traffic stays where it is. `service` is the current record and becomes the next one.
  // A canary with a `baseline_revision` (non-zero) runs that revision beside it: the stable
  // spec, fresh, with the canary's task count and traffic share; its analyses compare with it.
  static hosting::internal::ReleaseRecord Begin(ServiceRecord& service,
                                                const hosting::v1::ServiceSpec& spec,
                                                int64_t revision, int64_t baseline_revision,
                                                const hosting::v1::ReleasePolicy& policy,
                                                const std::string& reason, absl::Time now);
  // A rollback's first records: back to `target` (a warm revision takes the traffic at once),
  // bounded by `deadline`.
  static hosting::internal::ReleaseRecord BeginRollback(ServiceRecord& service,
                                                        const RevisionRecord& target,
                                                        const std::string& reason,
                                                        absl::Duration deadline, absl::Time now);

  std::vector<ReleaseNote> Advance(hosting::internal::ReleaseRecord& release,
                                   ServiceRecord& service, const Observation& obs) const;

  // Operator actions; FAILED_PRECONDITION when the release's state does not allow them.
  absl::Status Promote(hosting::internal::ReleaseRecord& release, bool full, absl::Time now,
                       std::vector<ReleaseNote>& notes) const;
  absl::Status Pause(hosting::internal::ReleaseRecord& release, absl::Time now,
                     std::vector<ReleaseNote>& notes) const;
  absl::Status Resume(hosting::internal::ReleaseRecord& release, absl::Time now,
                      std::vector<ReleaseNote>& notes) const;
  absl::Status Abort(hosting::internal::ReleaseRecord& release, const std::string& reason,
                     absl::Time now, std::vector<ReleaseNote>& notes) const;

  // The canary steps a policy runs (its own, or the default 10 % / analysis / 50 % / analysis).
  static std::vector<hosting::v1::CanaryStep> CanarySteps(const hosting::v1::ReleasePolicy& p);
  // Replica count of an IntOrPercent of `total` (percentages round up when `round_up`).
  static int32_t Resolve(const hosting::v1::IntOrPercent& v, int32_t total, int32_t fallback,
                         bool round_up);

 private:
  using Notes = std::vector<ReleaseNote>;
  void Rolling(hosting::internal::ReleaseRecord& r, ServiceRecord& s, const Observation& obs,
               Notes& notes) const;
  void Canary(hosting::internal::ReleaseRecord& r, ServiceRecord& s, const Observation& obs,
              Notes& notes) const;
  void BlueGreen(hosting::internal::ReleaseRecord& r, ServiceRecord& s, const Observation& obs,
                 Notes& notes) const;
  void RollBack(hosting::internal::ReleaseRecord& r, ServiceRecord& s, const Observation& obs,
                Notes& notes) const;
  // Brings the new revision to all tasks and all traffic, drains the stable one, succeeds.
  void Finish(hosting::internal::ReleaseRecord& r, ServiceRecord& s, const Observation& obs,
              Notes& notes) const;
  // The service was resized while the release runs (the autoscaler, a forced scale): canary
  // and blue-green revisions follow the new size in the release's current proportions.
  // Rolling releases need nothing: their batches work towards the target as it is.
  void FollowTarget(hosting::internal::ReleaseRecord& r, ServiceRecord& s,
                    const Observation& obs, Notes& notes) const;
  // Drains the highest-slot tasks of `revision` beyond `to` and then scales it to `to`.
  // True once the revision's desired count is at most `to`; false while it drains, or while
  // another revision drains (one drain at a time).
  bool ScaleDown(hosting::internal::ReleaseRecord& r, ServiceRecord& s, const Observation& obs,
                 int64_t revision, int32_t to, Notes& notes) const;
  // Starts rolling back: `final_state` is where the release ends once traffic and tasks are
  // back on the stable revision.
  void Fail(hosting::internal::ReleaseRecord& r, hosting::v1::ReleaseState final_state,
            const std::string& reason, absl::Time now, Notes& notes) const;
  // The analysis step or background check; returns its verdict once it is final (RUNNING
  // while it runs).
  hosting::v1::AnalysisVerdict RunAnalysis(hosting::internal::ReleaseRecord& r,
                                           const hosting::v1::AnalysisSpec& spec,
                                           const Observation& obs, bool compare_with_stable,
                                           const char* kind, Notes& notes) const;
  // The step's (or pre-switch) analysis entry RunAnalysis keeps.
  static hosting::v1::AnalysisResult* StepAnalysis(hosting::internal::ReleaseRecord& r);
  // A failed analysis whose on_failure is pause: PAUSED with traffic where it is.
  static void PauseOnFailure(hosting::internal::ReleaseRecord& r, const std::string& why,
                             Notes& notes);
  // The canary's background analysis: judged on every tick while the canary takes traffic, in
  // windows of its duration, each recorded. True when it acted: failed (the release is rolling
  // back or, with on_failure pause, paused) or ran into its inconclusive limit.
  bool Background(hosting::internal::ReleaseRecord& r, const Observation& obs,
                  Notes& notes) const;
  // Closes a background window still open when the release ends.
  static void EndBackground(hosting::internal::ReleaseRecord& r, absl::Time now,
                            const std::string& why);
  void SetWeights(hosting::internal::ReleaseRecord& r, ServiceRecord& s, double weight,
                  Notes& notes) const;
  bool DeadlinePassed(hosting::internal::ReleaseRecord& r, absl::Time now, Notes& notes) const;

  MachineOptions options_;
};

bool IsTerminalState(hosting::v1::ReleaseState s);
const char* ReleaseStateName(hosting::v1::ReleaseState s);

}  // namespace hosting::controlplane
