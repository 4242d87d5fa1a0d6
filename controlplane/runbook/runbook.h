#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "hosting/v1/runbooks.pb.h"

namespace hosting::controlplane {

// A run's parameters once validated against the runbook's declaration (defaults filled in):
// typed reads of values known to parse.
class Parameters {
 public:
  Parameters() = default;
  explicit Parameters(std::map<std::string, std::string> values) : values_(std::move(values)) {}

  const std::string& String(absl::string_view name) const;
  int64_t Int(absl::string_view name) const;
  bool Bool(absl::string_view name) const;
  absl::Duration Duration(absl::string_view name) const;
  // PARAMETER_TYPE_TIMESTAMP: InfiniteFuture for "latest".
  absl::Time Time(absl::string_view name) const;
  bool Has(absl::string_view name) const;
  const std::map<std::string, std::string>& values() const { return values_; }

 private:
  std::map<std::string, std::string> values_;
};

// Declares a parameter of a runbook (in its Describe).
hosting::v1::RunbookParameter* AddRunbookParameter(hosting::v1::Runbook& runbook,
                                                   const std::string& name,
                                                   hosting::v1::ParameterType type,
                                                   const std::string& description, bool required,
                                                   const std::string& default_value = "");

// Checks `given` against the runbook's declared parameters: unknown names, required ones
// missing, values of the wrong type. INVALID_ARGUMENT naming every bad field
// ("parameters.keep: ..."). The answer holds every declared parameter that has a value.
absl::StatusOr<Parameters> ResolveParameters(const hosting::v1::Runbook& runbook,
                                             const std::map<std::string, std::string>& given);

// One step of a run as planned: what it acts on, resolved when the run starts, and how the
// engine runs it. Persisted with the run (a restarted hostd runs the same plan).
struct StepPlan {
  std::string name;
  // For people: the step's resolved target ("node worker-2 (3 tasks)").
  std::string detail;
  std::map<std::string, std::string> arguments;
  // An attempt running longer is abandoned and fails.
  absl::Duration timeout = absl::Minutes(5);
  // 1: no retry.
  int max_attempts = 1;
  absl::Duration backoff = absl::Seconds(2);
  // The run waits for ApproveRun before this step, failing after approval_timeout.
  bool requires_approval = false;
  absl::Duration approval_timeout = absl::Hours(1);
  // Safe to run again from the start when hostd restarted while it ran.
  bool resumable = false;
};

// What one attempt of a step sees. The engine abandons an attempt that outlives its deadline
// or whose run is cancelled: it sets cancelled(), and the attempt should then return soon;
// whatever it returns after that is ignored.
class StepContext {
 public:
  StepContext(hosting::v1::RunbookRun run, int step_index, absl::Time deadline, Clock& clock)
      : run_(std::move(run)), step_index_(step_index), deadline_(deadline), clock_(clock) {}

  const hosting::v1::RunbookRun& run() const { return run_; }
  const hosting::v1::RunStep& step() const { return run_.steps(step_index_); }
  // The run's parameter, the step's argument, an output an earlier step set ("" when absent).
  std::string Param(absl::string_view name) const;
  std::string Argument(absl::string_view name) const;
  std::string Output(absl::string_view name) const;
  absl::Time deadline() const { return deadline_; }
  Clock& clock() { return clock_; }

  bool cancelled() const { return cancelled_.HasBeenNotified(); }
  // Waits `d`, or less when the attempt is cancelled; false when cancelled.
  bool Sleep(absl::Duration d);
  // Polls `done` every `interval` until it is true (OK), `done` fails (its error), the attempt is
  // cancelled (CANCELLED) or `timeout` passes (DEADLINE_EXCEEDED naming `what`).
  absl::Status WaitUntil(const std::function<absl::StatusOr<bool>()>& done, absl::Duration timeout,
                         absl::Duration interval, absl::string_view what);

  // Values passed to later steps and kept in the run (RunbookRun.outputs) when the step
  // succeeds.
  void SetOutput(const std::string& key, std::string value);
  std::map<std::string, std::string> outputs() const;

  // The engine's side.
  void Cancel() {
    if (!cancelled_.HasBeenNotified()) cancelled_.Notify();
  }

 private:
  const hosting::v1::RunbookRun run_;
  const int step_index_;
  const absl::Time deadline_;
  Clock& clock_;
  absl::Notification cancelled_;
  mutable absl::Mutex mu_;
  std::map<std::string, std::string> outputs_ ABSL_GUARDED_BY(mu_);
};

// An operational procedure hostd runs as a recorded state machine (RunbookEngine).
class Runbook {
 public:
  virtual ~Runbook() = default;
  // Name, description, typed parameters, the target parameter and the steps for people.
  virtual hosting::v1::Runbook Describe() const = 0;
  // The concrete steps for validated parameters, resolving what they act on (a node's ID, the
  // backup to restore). NOT_FOUND or INVALID_ARGUMENT naming what is wrong; acts on nothing.
  virtual absl::StatusOr<std::vector<StepPlan>> Plan(const Parameters& params) = 0;
  // One attempt of the step ctx.step() names: blocks until done; the answer is the step's
  // output for people. Runs on a thread of its own.
  virtual absl::StatusOr<std::string> Execute(StepContext& ctx) = 0;
};

}  // namespace hosting::controlplane
