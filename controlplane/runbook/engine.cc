#include "controlplane/runbook/engine.h"

#include <algorithm>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/run_state_text.h"
#include "common/log.h"
#include "common/proto_time.h"
#include "common/status_macros.h"

namespace hosting::controlplane {
namespace {

using ::hosting::v1::RunbookRun;
using ::hosting::v1::RunState;
using ::hosting::v1::RunStep;

constexpr int kDefaultRunList = 50;
constexpr int kMaxRunList = 1000;
constexpr absl::Duration kMaxBackoff = absl::Minutes(5);

std::string AttemptKey(absl::string_view run, int step, int attempt) {
  return absl::StrCat(run, "/", step, "/", attempt);
}

absl::Duration Backoff(const RunStep& step) {
  absl::Duration d = FromDuration(step.backoff());
  for (int i = 1; i < step.attempts() && d < kMaxBackoff; ++i) d *= 2;
  return std::min(d, kMaxBackoff);
}

// The index of the step a run is at: the first that has not succeeded (steps_size when all
// have).
int CurrentStep(const RunbookRun& run) {
  int i = 0;
  while (i < run.steps_size() && run.steps(i).state() == hosting::v1::RUN_STATE_SUCCEEDED) ++i;
  return i;
}

std::string AttemptOf(const RunStep& step) {
  return absl::StrCat("attempt ", step.attempts(), " of ", std::max(step.max_attempts(), 1));
}

// Ends the run at step `i` with `state` (FAILED or CANCELLED) and `why`.
void EndAt(RunbookRun& run, int i, RunState state, const std::string& why, absl::Time now) {
  if (i < run.steps_size()) {
    RunStep& step = *run.mutable_steps(i);
    step.set_state(state);
    *step.mutable_finished_at() = ToTimestamp(now);
    step.clear_deadline();
    step.clear_retry_at();
    step.set_output(step.output().empty() ? why : absl::StrCat(step.output(), "\n", why));
  }
  run.set_state(state);
  run.set_message(
      i < run.steps_size()
          ? absl::StrCat("step '", run.steps(i).name(), "' ",
                         state == hosting::v1::RUN_STATE_CANCELLED ? "cancelled" : "failed", ": ",
                         why)
          : why);
  *run.mutable_finished_at() = ToTimestamp(now);
}

}  // namespace

struct RunbookEngine::Attempt {
  std::shared_ptr<StepContext> context;
  absl::Mutex mu;
  bool done ABSL_GUARDED_BY(mu) = false;
  absl::StatusOr<std::string> result ABSL_GUARDED_BY(mu);
};

struct RunbookEngine::InFlight {
  absl::Mutex mu;
  int count ABSL_GUARDED_BY(mu) = 0;
  // An attempt ended, or an API call asked for progress, since the loop last looked: the loop
  // wakes at once (a run of short steps would otherwise wait up to a tick between each two).
  bool wake ABSL_GUARDED_BY(mu) = false;
  bool stopping ABSL_GUARDED_BY(mu) = false;
  bool Woken() const ABSL_SHARED_LOCKS_REQUIRED(mu) { return wake || stopping; }
};

RunbookEngine::RunbookEngine(Store& store, EventLog& events, Clock& clock,
                             RunbookEngineOptions options)
    : store_(store),
      events_(events),
      clock_(clock),
      options_(std::move(options)),
      flights_(std::make_shared<InFlight>()) {
  if (!options_.launch) {
    options_.launch = [](std::function<void()> attempt) {
      std::thread(std::move(attempt)).detach();
    };
  }
}

RunbookEngine::~RunbookEngine() { Stop(); }

void RunbookEngine::Register(std::shared_ptr<Runbook> runbook) {
  const std::string name = runbook->Describe().name();
  absl::MutexLock lock(&mu_);
  runbooks_[name] = std::move(runbook);
}

std::shared_ptr<Runbook> RunbookEngine::Find(absl::string_view name) const {
  absl::MutexLock lock(&mu_);
  auto it = runbooks_.find(name);
  return it == runbooks_.end() ? nullptr : it->second;
}

std::vector<hosting::v1::Runbook> RunbookEngine::List() const {
  absl::MutexLock lock(&mu_);
  std::vector<hosting::v1::Runbook> out;
  for (const auto& [name, runbook] : runbooks_) out.push_back(runbook->Describe());
  return out;
}

absl::StatusOr<RunbookRun> RunbookEngine::Run(const hosting::v1::RunRunbookRequest& request,
                                              absl::string_view actor) {
  std::shared_ptr<Runbook> runbook = Find(request.runbook());
  if (runbook == nullptr) {
    std::vector<std::string> names;
    for (const hosting::v1::Runbook& r : List()) names.push_back(r.name());
    return absl::NotFoundError(absl::StrCat("no runbook named '", request.runbook(),
                                            "' (there are: ", absl::StrJoin(names, ", "), ")"));
  }
  const hosting::v1::Runbook description = runbook->Describe();
  std::map<std::string, std::string> given(request.parameters().begin(),
                                           request.parameters().end());
  absl::StatusOr<Parameters> params = ResolveParameters(description, given);
  if (!params.ok()) return params.status();
  absl::StatusOr<std::vector<StepPlan>> plan = runbook->Plan(*params);
  if (!plan.ok()) return plan.status();

  RunbookRun run;
  run.set_runbook(description.name());
  for (const auto& [k, v] : params->values()) (*run.mutable_parameters())[k] = v;
  if (!description.target_parameter().empty()) {
    run.set_target(params->String(description.target_parameter()));
  }
  run.set_state(hosting::v1::RUN_STATE_RUNNING);
  run.set_started_by(std::string(actor));
  *run.mutable_started_at() = ToTimestamp(clock_.Now());
  for (const StepPlan& p : *plan) {
    RunStep* step = run.add_steps();
    step->set_name(p.name);
    step->set_detail(p.detail);
    step->set_state(hosting::v1::RUN_STATE_PENDING);
    step->set_max_attempts(std::max(p.max_attempts, 1));
    *step->mutable_timeout() = ToDuration(p.timeout);
    *step->mutable_backoff() = ToDuration(p.backoff);
    step->set_requires_approval(p.requires_approval);
    if (p.requires_approval) *step->mutable_approval_timeout() = ToDuration(p.approval_timeout);
    step->set_resumable(p.resumable);
    for (const auto& [k, v] : p.arguments) (*step->mutable_arguments())[k] = v;
  }
  if (request.dry_run()) {
    run.set_dry_run(true);
    run.set_state(hosting::v1::RUN_STATE_PENDING);  // a plan: nothing runs
    run.set_message(absl::StrCat("dry run: ", run.steps_size(), " steps planned, nothing done"));
    return run;
  }
  run.set_message(absl::StrCat("started: ", run.steps_size(), " steps"));
  absl::StatusOr<RunRecord> created = store_.CreateRun(std::move(run));
  if (!created.ok()) return created.status();
  Publish("runbook.started", created->run, -1,
          absl::StrCat("runbook ", created->run.runbook(), " started by ", actor));
  Wake();
  return created->run;
}

absl::StatusOr<RunbookRun> RunbookEngine::Get(absl::string_view id) {
  ASSIGN_OR_RETURN(RunRecord r, store_.GetRun(id));
  return r.run;
}

absl::StatusOr<std::vector<RunbookRun>> RunbookEngine::ListRuns(
    const hosting::v1::ListRunsRequest& request) {
  int limit = request.limit() <= 0 ? kDefaultRunList : std::min(request.limit(), kMaxRunList);
  ASSIGN_OR_RETURN(std::vector<RunRecord> records,
                   store_.ListRuns(request.runbook(), request.active_only(), limit));
  std::vector<RunbookRun> out;
  out.reserve(records.size());
  for (RunRecord& r : records) out.push_back(std::move(r.run));
  return out;
}

absl::StatusOr<RunRecord> RunbookEngine::Mutate(
    absl::string_view id, const std::function<absl::Status(RunbookRun&)>& change) {
  // Under the tick's lock: a tick never writes a run between this read and write, and an
  // attempt a tick is launching is in attempts_ before this returns.
  absl::MutexLock tick(&tick_mu_);
  for (int tries = 0;; ++tries) {
    ASSIGN_OR_RETURN(RunRecord record, store_.GetRun(id));
    RETURN_IF_ERROR(change(record.run));
    absl::StatusOr<int64_t> version = store_.UpdateRun(record);
    if (version.ok()) {
      record.version = *version;
      return record;
    }
    if (!absl::IsAborted(version.status()) || tries >= 3) return version.status();
  }
}

absl::StatusOr<RunbookRun> RunbookEngine::Cancel(absl::string_view id, absl::string_view reason,
                                                 absl::string_view actor) {
  const absl::Time now = clock_.Now();
  ASSIGN_OR_RETURN(
      RunRecord record, Mutate(id, [&](RunbookRun& run) -> absl::Status {
        if (IsTerminalRun(run.state())) {
          return absl::FailedPreconditionError(absl::StrCat("run ", id, " has already ended (",
                                                            RunStateText(run.state()),
                                                            "): nothing to cancel"));
        }
        run.set_cancelled_by(std::string(actor));
        EndAt(
            run, CurrentStep(run), hosting::v1::RUN_STATE_CANCELLED,
            absl::StrCat("cancelled by ", actor, reason.empty() ? "" : absl::StrCat(": ", reason)),
            now);
        return absl::OkStatus();
      }));
  AbandonAll(id);
  Publish("runbook.cancelled", record.run, CurrentStep(record.run), record.run.message());
  return record.run;
}

absl::StatusOr<RunbookRun> RunbookEngine::Approve(absl::string_view id, absl::string_view comment,
                                                  absl::string_view actor) {
  int index = 0;
  ASSIGN_OR_RETURN(
      RunRecord record, Mutate(id, [&](RunbookRun& run) -> absl::Status {
        index = CurrentStep(run);
        if (run.state() != hosting::v1::RUN_STATE_WAITING_APPROVAL || index >= run.steps_size() ||
            run.steps(index).state() != hosting::v1::RUN_STATE_WAITING_APPROVAL) {
          return absl::FailedPreconditionError(absl::StrCat(
              "run ", id, " is not waiting for approval (it is ", RunStateText(run.state()), ")"));
        }
        RunStep& step = *run.mutable_steps(index);
        step.set_approved_by(std::string(actor));
        step.set_state(hosting::v1::RUN_STATE_PENDING);
        step.clear_deadline();
        step.set_output(absl::StrCat("approved by ", actor,
                                     comment.empty() ? "" : absl::StrCat(": ", comment)));
        run.set_state(hosting::v1::RUN_STATE_RUNNING);
        run.set_message(absl::StrCat("step '", step.name(), "' approved by ", actor));
        return absl::OkStatus();
      }));
  Publish("runbook.approved", record.run, index, record.run.message());
  Wake();
  return record.run;
}

void RunbookEngine::Tick() {
  absl::MutexLock tick(&tick_mu_);
  if (options_.acting && !options_.acting()) {
    // Another hostd leads: it resumes these runs, and must not meet attempts of ours.
    AbandonAll("");
    return;
  }
  absl::StatusOr<std::vector<RunRecord>> active = store_.ListRuns("", true, kMaxRunList);
  if (!active.ok()) {
    // Ticks run four times a second: say it once per distinct problem.
    if (active.status().ToString() != tick_problem_) {
      tick_problem_ = active.status().ToString();
      LogWarning("runbook tick: cannot list runs (retried every tick; logged once)",
                 {{"error", tick_problem_}});
    }
    return;
  }
  tick_problem_.clear();
  for (RunRecord& record : *active) Advance(std::move(record));
}

bool RunbookEngine::Persist(RunRecord& record) {
  absl::StatusOr<int64_t> version = store_.UpdateRun(record);
  if (!version.ok()) {
    // ABORTED: an API call changed the run first; the next tick starts from what it wrote.
    if (!absl::IsAborted(version.status())) {
      LogWarning("runbook: cannot record a step",
                 {{"run", record.run.id()}, {"error", version.status().ToString()}});
    }
    return false;
  }
  record.version = *version;
  return true;
}

void RunbookEngine::Advance(RunRecord record) {
  RunbookRun& run = record.run;
  // Each pass makes one transition; a run can make several in one tick (a step succeeded,
  // the next starts).
  for (int pass = 0; pass < 2 * run.steps_size() + 4; ++pass) {
    if (IsTerminalRun(run.state())) return;
    const absl::Time now = clock_.Now();
    const int i = CurrentStep(run);
    if (i == run.steps_size()) {
      run.set_state(hosting::v1::RUN_STATE_SUCCEEDED);
      run.set_message(absl::StrCat("all ", run.steps_size(), " steps succeeded"));
      *run.mutable_finished_at() = ToTimestamp(now);
      if (Persist(record)) Publish("runbook.succeeded", run, -1, run.message());
      return;
    }
    RunStep& step = *run.mutable_steps(i);
    const std::string where =
        absl::StrCat("step ", i + 1, "/", run.steps_size(), " '", step.name(), "'");
    switch (step.state()) {
      case hosting::v1::RUN_STATE_UNSPECIFIED:
      case hosting::v1::RUN_STATE_PENDING: {
        if (IsSet(step.retry_at()) && now < FromTimestamp(step.retry_at())) return;
        if (step.requires_approval() && step.approved_by().empty()) {
          const absl::Time deadline = now + FromDuration(step.approval_timeout());
          step.set_state(hosting::v1::RUN_STATE_WAITING_APPROVAL);
          *step.mutable_deadline() = ToTimestamp(deadline);
          run.set_state(hosting::v1::RUN_STATE_WAITING_APPROVAL);
          run.set_message(absl::StrCat(where, " waits for approval (hostctl runbook approve ",
                                       run.id(), ") until ", absl::FormatTime(deadline)));
          if (Persist(record)) Publish("runbook.waiting_approval", run, i, run.message());
          return;
        }
        step.set_state(hosting::v1::RUN_STATE_RUNNING);
        step.set_attempts(step.attempts() + 1);
        if (!IsSet(step.started_at())) *step.mutable_started_at() = ToTimestamp(now);
        *step.mutable_deadline() = ToTimestamp(now + FromDuration(step.timeout()));
        step.clear_retry_at();
        run.set_state(hosting::v1::RUN_STATE_RUNNING);
        run.set_message(absl::StrCat(where, " running (", AttemptOf(step), ")"));
        if (!Persist(record)) return;
        Launch(run, i);
        Publish("runbook.step_started", run, i, run.message());
        return;
      }
      case hosting::v1::RUN_STATE_WAITING_APPROVAL: {
        if (now < FromTimestamp(step.deadline())) return;
        EndAt(run, i, hosting::v1::RUN_STATE_FAILED,
              absl::StrCat("not approved within ",
                           absl::FormatDuration(FromDuration(step.approval_timeout()))),
              now);
        if (Persist(record)) Publish("runbook.failed", run, i, run.message());
        return;
      }
      case hosting::v1::RUN_STATE_RUNNING: {
        const std::string key = AttemptKey(run.id(), i, step.attempts());
        std::shared_ptr<Attempt> attempt;
        {
          absl::MutexLock lock(&mu_);
          if (auto it = attempts_.find(key); it != attempts_.end()) attempt = it->second;
        }
        if (attempt == nullptr) {
          // Running, but not here: hostd restarted, or the leader changed, during the attempt.
          if (step.resumable() && step.attempts() < step.max_attempts()) {
            step.set_state(hosting::v1::RUN_STATE_PENDING);
            step.set_output(
                absl::StrCat("hostd restarted during ", AttemptOf(step), ": the step runs again"));
            if (!Persist(record)) return;
            Publish("runbook.step_resumed", run, i, step.output());
            continue;
          }
          EndAt(run, i, hosting::v1::RUN_STATE_FAILED,
                step.resumable()
                    ? absl::StrCat("hostd restarted during ", AttemptOf(step),
                                   ", the last one allowed")
                    : absl::StrCat("hostd restarted while the step ran (", AttemptOf(step),
                                   "), and it is not safe to run it again: check ",
                                   step.detail().empty() ? step.name() : step.detail(),
                                   " by hand before starting a new run"),
                now);
          if (Persist(record)) Publish("runbook.failed", run, i, run.message());
          return;
        }
        std::string failure;
        {
          absl::MutexLock lock(&attempt->mu);
          if (attempt->done && attempt->result.ok()) {
            step.set_state(hosting::v1::RUN_STATE_SUCCEEDED);
            step.set_output(*attempt->result);
            *step.mutable_finished_at() = ToTimestamp(now);
            step.clear_deadline();
            for (const auto& [k, v] : attempt->context->outputs()) (*run.mutable_outputs())[k] = v;
          } else if (attempt->done) {
            failure = std::string(attempt->result.status().message());
          } else if (now >= FromTimestamp(step.deadline())) {
            failure = absl::StrCat("timed out after ",
                                   absl::FormatDuration(FromDuration(step.timeout())));
          } else {
            return;  // still running, within its time
          }
        }
        if (failure.empty()) {
          if (!Persist(record)) return;
          {
            absl::MutexLock lock(&mu_);
            attempts_.erase(key);
          }
          Publish("runbook.step_succeeded", run, i, absl::StrCat(where, " succeeded"));
          continue;
        }
        const std::string attempt_failed = absl::StrCat(AttemptOf(step), " failed: ", failure);
        if (step.attempts() < step.max_attempts()) {
          const absl::Time retry = now + Backoff(step);
          step.set_state(hosting::v1::RUN_STATE_PENDING);
          *step.mutable_retry_at() = ToTimestamp(retry);
          step.clear_deadline();
          step.set_output(
              absl::StrCat(attempt_failed, "; next attempt at ", absl::FormatTime(retry)));
          run.set_message(absl::StrCat(where, ": ", step.output()));
        } else {
          EndAt(run, i, hosting::v1::RUN_STATE_FAILED, attempt_failed, now);
        }
        if (!Persist(record)) return;
        attempt->context->Cancel();
        {
          absl::MutexLock lock(&mu_);
          attempts_.erase(key);
        }
        Publish(run.state() == hosting::v1::RUN_STATE_FAILED ? "runbook.failed"
                                                             : "runbook.step_retrying",
                run, i, run.message());
        continue;
      }
      default:
        // A step that ended while its run did not: record the run as ended with it.
        EndAt(run, i, hosting::v1::RUN_STATE_FAILED,
              absl::StrCat("the step ended ", RunStateText(step.state()), " but the run did not"),
              now);
        if (Persist(record)) Publish("runbook.failed", run, i, run.message());
        return;
    }
  }
}

void RunbookEngine::Launch(const RunbookRun& run, int index) {
  std::shared_ptr<Runbook> runbook = Find(run.runbook());
  auto attempt = std::make_shared<Attempt>();
  attempt->context =
      std::make_shared<StepContext>(run, index, FromTimestamp(run.steps(index).deadline()), clock_);
  {
    absl::MutexLock lock(&mu_);
    attempts_[AttemptKey(run.id(), index, run.steps(index).attempts())] = attempt;
  }
  if (runbook == nullptr) {
    absl::MutexLock lock(&attempt->mu);
    attempt->done = true;
    attempt->result = absl::FailedPreconditionError(
        absl::StrCat("this hostd has no runbook named '", run.runbook(), "'"));
    return;
  }
  std::shared_ptr<InFlight> flights = flights_;
  {
    absl::MutexLock lock(&flights->mu);
    ++flights->count;
  }
  options_.launch([attempt, runbook, flights] {
    absl::StatusOr<std::string> result = runbook->Execute(*attempt->context);
    {
      absl::MutexLock lock(&attempt->mu);
      attempt->done = true;
      attempt->result = std::move(result);
    }
    absl::MutexLock lock(&flights->mu);
    --flights->count;
    flights->wake = true;
  });
}

void RunbookEngine::AbandonAll(absl::string_view run_id) {
  absl::MutexLock lock(&mu_);
  for (auto it = attempts_.begin(); it != attempts_.end();) {
    if (run_id.empty() || absl::StartsWith(it->first, absl::StrCat(run_id, "/"))) {
      it->second->context->Cancel();
      it = attempts_.erase(it);
    } else {
      ++it;
    }
  }
}

void RunbookEngine::Publish(const std::string& type, const RunbookRun& run, int step,
                            std::string message) {
  std::map<std::string, std::string> attributes = {
      {"run", run.id()}, {"runbook", run.runbook()}, {"state", RunStateText(run.state())}};
  if (!run.target().empty()) attributes["target"] = run.target();
  if (step >= 0 && step < run.steps_size()) attributes["step"] = run.steps(step).name();
  events_.Publish(type, "", 0, std::move(message), std::move(attributes));
}

bool RunbookEngine::IsRunEvent(const hosting::v1::Event& e, const std::string& id) {
  if (!absl::StartsWith(e.type(), "runbook.")) return false;
  auto it = e.attributes().find("run");
  return it != e.attributes().end() && it->second == id;
}

bool RunbookEngine::IsRunEndEvent(const hosting::v1::Event& e) {
  return e.type() == "runbook.succeeded" || e.type() == "runbook.failed" ||
         e.type() == "runbook.cancelled";
}

void RunbookEngine::Start() {
  if (thread_.joinable()) return;
  thread_ = std::thread([this] { Loop(); });
}

void RunbookEngine::Wake() {
  absl::MutexLock lock(&flights_->mu);
  flights_->wake = true;
}

void RunbookEngine::Loop() {
  while (!stop_.HasBeenNotified()) {
    Tick();
    // Sleep a tick, or less when an API call asked for progress or a step's attempt ended.
    absl::MutexLock lock(&flights_->mu);
    flights_->mu.AwaitWithTimeout(absl::Condition(flights_.get(), &InFlight::Woken),
                                  options_.tick);
    flights_->wake = false;
  }
}

void RunbookEngine::Stop() {
  if (!stop_.HasBeenNotified()) stop_.Notify();
  {
    absl::MutexLock lock(&flights_->mu);
    flights_->stopping = true;
  }
  if (thread_.joinable()) thread_.join();
  AbandonAll("");
  std::shared_ptr<InFlight> flights = flights_;
  absl::MutexLock lock(&flights->mu);
  flights->mu.AwaitWithTimeout(absl::Condition(
                                   +[](int* count) { return *count == 0; }, &flights->count),
                               options_.stop_grace);
}

}  // namespace hosting::controlplane
