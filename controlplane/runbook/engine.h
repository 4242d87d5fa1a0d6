#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "controlplane/runbook/runbook.h"
#include "controlplane/store/event_log.h"
#include "controlplane/store/store.h"
#include "hosting/v1/runbooks.pb.h"

namespace hosting::controlplane {

// Runs one attempt of a step somewhere other than the engine's loop. The default starts a
// thread per attempt; unit tests pass their own to hold an attempt (a stuck step) or run it.
using AttemptLauncher = std::function<void(std::function<void()> attempt)>;

struct RunbookEngineOptions {
  // How often runs advance (ApproveRun and a finished attempt wake the loop sooner).
  absl::Duration tick = absl::Milliseconds(250);
  // Whether this hostd may act now (the leader); unset: always. Ticks are skipped, and the
  // attempts this hostd runs are abandoned, while it is not.
  std::function<bool()> acting;
  AttemptLauncher launch;
  // How long Stop waits for abandoned attempts to return.
  absl::Duration stop_grace = absl::Seconds(10);
};

// Runs runbooks as recorded state machines. A run is planned when it starts (its steps with
// their resolved targets) and stored; one loop then advances every run that has not ended,
// persisting each transition before acting on it and publishing an event for it:
//
//   step PENDING -> (WAITING_APPROVAL ->) RUNNING -> SUCCEEDED | FAILED | CANCELLED
//   run RUNNING <-> WAITING_APPROVAL -> SUCCEEDED | FAILED | CANCELLED
//
// The engine, not the step, enforces a step's timeout: an attempt past its deadline is
// abandoned (its context cancelled, its late answer ignored) and fails, or is retried after
// its backoff while attempts remain. Cancel works on a stuck step the same way. A restarted
// hostd (or a new leader) finds a step RUNNING with no attempt of its own: a resumable step
// runs again, any other fails saying so; no run is left RUNNING. Thread-safe.
class RunbookEngine {
 public:
  RunbookEngine(Store& store, EventLog& events, Clock& clock, RunbookEngineOptions options);
  ~RunbookEngine();

  // Before Start. Names must be unique.
  void Register(std::shared_ptr<Runbook> runbook);

  std::vector<hosting::v1::Runbook> List() const;
  // Validates the parameters (INVALID_ARGUMENT naming each bad one), plans the steps, and
  // (unless dry_run) records and starts the run. NOT_FOUND for an unknown runbook;
  // FAILED_PRECONDITION naming the run in progress for the same runbook and target.
  absl::StatusOr<hosting::v1::RunbookRun> Run(const hosting::v1::RunRunbookRequest& request,
                                              absl::string_view actor);
  absl::StatusOr<hosting::v1::RunbookRun> Get(absl::string_view id);
  absl::StatusOr<std::vector<hosting::v1::RunbookRun>> ListRuns(
      const hosting::v1::ListRunsRequest& request);
  // FAILED_PRECONDITION when the run has ended.
  absl::StatusOr<hosting::v1::RunbookRun> Cancel(absl::string_view id, absl::string_view reason,
                                                 absl::string_view actor);
  // FAILED_PRECONDITION when the run is not waiting for approval.
  absl::StatusOr<hosting::v1::RunbookRun> Approve(absl::string_view id, absl::string_view comment,
                                                  absl::string_view actor);

  // One pass over every run that has not ended. The loop calls it; tests may.
  void Tick();
  void Start();
  void Stop();

  // Whether an event-log entry is one of run `id`'s (type "runbook.*", attribute run=id), and
  // whether it is the one that ends the run.
  static bool IsRunEvent(const hosting::v1::Event& e, const std::string& id);
  static bool IsRunEndEvent(const hosting::v1::Event& e);

 private:
  struct Attempt;
  // Attempts still running on their threads: Stop lets them return before hostd's parts go.
  struct InFlight;
  // Reads the run, applies `change`, writes it (compare-and-swap, retried when another writer
  // won); `change` answers the error to give instead.
  absl::StatusOr<RunRecord> Mutate(
      absl::string_view id, const std::function<absl::Status(hosting::v1::RunbookRun&)>& change);
  // Advances one run as far as it can go now; a write that fails leaves the rest to the next tick.
  void Advance(RunRecord record) ABSL_EXCLUSIVE_LOCKS_REQUIRED(tick_mu_);
  bool Persist(RunRecord& record) ABSL_EXCLUSIVE_LOCKS_REQUIRED(tick_mu_);
  void Launch(const hosting::v1::RunbookRun& run, int index);
  void Publish(const std::string& type, const hosting::v1::RunbookRun& run, int step,
               std::string message);
  void AbandonAll(absl::string_view run_id);
  std::shared_ptr<Runbook> Find(absl::string_view name) const;
  // The loop goes round at once instead of at its next tick.
  void Wake();
  void Loop();

  Store& store_;
  EventLog& events_;
  Clock& clock_;
  RunbookEngineOptions options_;

  mutable absl::Mutex mu_;
  std::map<std::string, std::shared_ptr<Runbook>, std::less<>> runbooks_ ABSL_GUARDED_BY(mu_);
  // Attempts running on this hostd, by "<run>/<step>/<attempt>".
  std::map<std::string, std::shared_ptr<Attempt>> attempts_ ABSL_GUARDED_BY(mu_);

  std::shared_ptr<InFlight> flights_;

  absl::Mutex tick_mu_;
  std::string tick_problem_ ABSL_GUARDED_BY(tick_mu_);
  std::thread thread_;
  absl::Notification stop_;
};

}  // namespace hosting::controlplane
