#include "controlplane/runbook/engine.h"

#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/clock.h"
#include "common/proto_time.h"
#include "controlplane/testing/fake_control_plane.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace hosting::controlplane {
namespace {

using ::hosting::v1::RunbookRun;
using ::testing::Contains;
using ::testing::HasSubstr;
using Op = FaultStore::Op;

// A runbook whose steps the test scripts: each step's answer comes from `answers` by name
// (OK with the step's name as output when there is none).
class ScriptedRunbook : public Runbook {
 public:
  explicit ScriptedRunbook(std::vector<StepPlan> steps) : steps_(std::move(steps)) {}

  hosting::v1::Runbook Describe() const override {
    hosting::v1::Runbook r;
    r.set_name("drill");
    r.set_description("a drill");
    r.set_target_parameter("node");
    auto* node = r.add_parameters();
    node->set_name("node");
    node->set_required(true);
    node->set_type(hosting::v1::PARAMETER_TYPE_NODE);
    node->set_description("the node to drill");
    auto* keep = r.add_parameters();
    keep->set_name("keep");
    keep->set_type(hosting::v1::PARAMETER_TYPE_INT);
    keep->set_default_value("3");
    auto* wait = r.add_parameters();
    wait->set_name("wait");
    wait->set_type(hosting::v1::PARAMETER_TYPE_DURATION);
    auto* mode = r.add_parameters();
    mode->set_name("mode");
    mode->set_type(hosting::v1::PARAMETER_TYPE_ENUM);
    mode->add_choices("fast");
    mode->add_choices("safe");
    return r;
  }
  absl::StatusOr<std::vector<StepPlan>> Plan(const Parameters& params) override {
    std::vector<StepPlan> plan = steps_;
    for (StepPlan& s : plan) s.detail = absl::StrCat(s.name, " on ", params.String("node"));
    return plan;
  }
  absl::StatusOr<std::string> Execute(StepContext& ctx) override {
    ++executions[ctx.step().name()];
    if (auto it = answers.find(ctx.step().name()); it != answers.end()) return it->second(ctx);
    ctx.SetOutput(ctx.step().name() + ".done", "yes");
    return ctx.step().name() + " done";
  }

  std::map<std::string, std::function<absl::StatusOr<std::string>(StepContext&)>> answers;
  std::map<std::string, int> executions;

 private:
  std::vector<StepPlan> steps_;
};

StepPlan Step(const std::string& name) {
  StepPlan p;
  p.name = name;
  p.timeout = absl::Seconds(10);
  return p;
}

class RunbookEngineTest : public ::testing::Test {
 protected:
  void Make(std::vector<StepPlan> steps) {
    runbook_ = std::make_shared<ScriptedRunbook>(std::move(steps));
    engine_ = NewEngine();
  }
  std::unique_ptr<RunbookEngine> NewEngine() {
    RunbookEngineOptions o;
    o.stop_grace = absl::ZeroDuration();
    // Attempts wait here until the test runs them: one left alone is a stuck step.
    o.launch = [this](std::function<void()> attempt) { queued_.push_back(std::move(attempt)); };
    o.acting = [this] { return acting_; };
    auto engine = std::make_unique<RunbookEngine>(cp_.store, cp_.events, clock_, o);
    engine->Register(runbook_);
    return engine;
  }
  // Runs the attempts launched so far.
  void RunQueued() {
    while (!queued_.empty()) {
      auto attempt = std::move(queued_.front());
      queued_.pop_front();
      attempt();
    }
  }
  absl::StatusOr<RunbookRun> Start(const std::string& node,
                                   std::map<std::string, std::string> extra = {},
                                   bool dry_run = false) {
    hosting::v1::RunRunbookRequest req;
    req.set_runbook("drill");
    (*req.mutable_parameters())["node"] = node;
    for (const auto& [k, v] : extra) (*req.mutable_parameters())[k] = v;
    req.set_dry_run(dry_run);
    return engine_->Run(req, "token:alice");
  }
  RunbookRun Get(const std::string& id) { return engine_->Get(id).value(); }
  // Ticks and runs what was launched, `n` times.
  void Drive(int n = 5) {
    for (int i = 0; i < n; ++i) {
      engine_->Tick();
      RunQueued();
    }
  }

  FakeClock clock_;
  FakeControlPlane cp_{clock_};
  std::deque<std::function<void()>> queued_;
  bool acting_ = true;
  std::shared_ptr<ScriptedRunbook> runbook_;
  std::unique_ptr<RunbookEngine> engine_;
};

TEST_F(RunbookEngineTest, RunsEveryStepInOrderRecordingOutputsActorAndEvents) {
  Make({Step("drain"), Step("activate")});
  absl::StatusOr<RunbookRun> run = Start("worker-1");
  ASSERT_TRUE(run.ok()) << run.status();
  EXPECT_EQ(run->id(), "drill-1");
  EXPECT_EQ(run->target(), "worker-1");
  EXPECT_EQ(run->started_by(), "token:alice");
  EXPECT_EQ(run->parameters().at("keep"), "3") << "defaults are filled in";
  ASSERT_EQ(run->steps_size(), 2);
  EXPECT_EQ(run->steps(0).detail(), "drain on worker-1");
  EXPECT_EQ(run->steps(0).state(), hosting::v1::RUN_STATE_PENDING);
  Drive();
  RunbookRun done = Get(run->id());
  EXPECT_EQ(done.state(), hosting::v1::RUN_STATE_SUCCEEDED) << done.message();
  EXPECT_EQ(done.steps(0).output(), "drain done");
  EXPECT_EQ(done.steps(1).attempts(), 1);
  EXPECT_EQ(done.outputs().at("activate.done"), "yes");
  EXPECT_TRUE(IsSet(done.finished_at()));
  EXPECT_THAT(cp_.EventTypes(),
              ::testing::IsSupersetOf({"runbook.started", "runbook.step_started",
                                       "runbook.step_succeeded", "runbook.succeeded"}));
  EXPECT_EQ(runbook_->executions["drain"], 1);
}

TEST_F(RunbookEngineTest, ParametersAreTypedAndEveryBadOneIsNamed) {
  Make({Step("drain")});
  absl::Status st =
      Start("", {{"keep", "many"}, {"wait", "soon"}, {"mode", "reckless"}, {"colour", "blue"}})
          .status();
  ASSERT_TRUE(absl::IsInvalidArgument(st)) << st;
  const std::string msg(st.message());
  EXPECT_THAT(msg, HasSubstr("parameters.node: required"));
  EXPECT_THAT(msg, HasSubstr("parameters.keep: want an integer, got 'many'"));
  EXPECT_THAT(msg, HasSubstr("parameters.wait: want a duration"));
  EXPECT_THAT(msg, HasSubstr("parameters.mode: want one of: fast, safe"));
  EXPECT_THAT(msg, HasSubstr("parameters.colour: runbook 'drill' has no such parameter"));
  hosting::v1::RunRunbookRequest ghost;
  ghost.set_runbook("nope");
  absl::Status unknown = engine_->Run(ghost, "me").status();
  EXPECT_TRUE(absl::IsNotFound(unknown));
  EXPECT_THAT(std::string(unknown.message()), HasSubstr("there are: drill"));
  EXPECT_TRUE(cp_.store.base().ListRuns("", false, 10)->empty()) << "nothing recorded";
}

TEST_F(RunbookEngineTest, ADryRunAnswersThePlanAndDoesNothing) {
  Make({Step("drain"), Step("activate")});
  absl::StatusOr<RunbookRun> plan = Start("worker-1", {}, /*dry_run=*/true);
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_TRUE(plan->dry_run());
  EXPECT_TRUE(plan->id().empty());
  EXPECT_EQ(plan->state(), hosting::v1::RUN_STATE_PENDING);
  ASSERT_EQ(plan->steps_size(), 2);
  EXPECT_EQ(plan->steps(1).detail(), "activate on worker-1");
  Drive();
  EXPECT_TRUE(cp_.store.base().ListRuns("", false, 10)->empty());
  EXPECT_TRUE(runbook_->executions.empty());
}

TEST_F(RunbookEngineTest, OneRunPerRunbookAndTargetAtATime) {
  Make({Step("drain")});
  absl::StatusOr<RunbookRun> first = Start("worker-1");
  ASSERT_TRUE(first.ok());
  absl::Status clash = Start("worker-1").status();
  EXPECT_TRUE(absl::IsFailedPrecondition(clash)) << clash;
  EXPECT_THAT(std::string(clash.message()), HasSubstr(first->id()));
  EXPECT_TRUE(Start("worker-2").ok()) << "another target runs beside it";
  Drive();
  EXPECT_TRUE(Start("worker-1").ok()) << "free once the first ended";
}

TEST_F(RunbookEngineTest, AStuckStepTimesOutIsRetriedAfterItsBackoffAndThenFails) {
  StepPlan stuck = Step("drain");
  stuck.max_attempts = 2;
  stuck.backoff = absl::Seconds(5);
  Make({stuck, Step("activate")});
  absl::StatusOr<RunbookRun> run = Start("worker-1");
  ASSERT_TRUE(run.ok());
  engine_->Tick();  // attempt 1 launched; the test never runs it
  ASSERT_EQ(queued_.size(), 1u);
  clock_.Advance(absl::Seconds(9));
  engine_->Tick();
  EXPECT_EQ(Get(run->id()).steps(0).state(), hosting::v1::RUN_STATE_RUNNING);
  clock_.Advance(absl::Seconds(2));
  engine_->Tick();
  RunbookRun r = Get(run->id());
  EXPECT_EQ(r.state(), hosting::v1::RUN_STATE_RUNNING);
  EXPECT_EQ(r.steps(0).state(), hosting::v1::RUN_STATE_PENDING);
  EXPECT_THAT(r.steps(0).output(), HasSubstr("attempt 1 of 2 failed: timed out after 10s"));
  // Not before its backoff.
  clock_.Advance(absl::Seconds(4));
  engine_->Tick();
  EXPECT_EQ(queued_.size(), 1u);
  clock_.Advance(absl::Seconds(1));
  engine_->Tick();
  EXPECT_EQ(queued_.size(), 2u);
  EXPECT_EQ(Get(run->id()).steps(0).attempts(), 2);
  // The abandoned first attempt answers late: ignored.
  queued_.front()();
  queued_.pop_front();
  engine_->Tick();
  EXPECT_EQ(Get(run->id()).steps(0).state(), hosting::v1::RUN_STATE_RUNNING);
  clock_.Advance(absl::Seconds(11));
  engine_->Tick();
  r = Get(run->id());
  EXPECT_EQ(r.state(), hosting::v1::RUN_STATE_FAILED);
  EXPECT_EQ(r.steps(0).state(), hosting::v1::RUN_STATE_FAILED);
  EXPECT_EQ(r.steps(1).state(), hosting::v1::RUN_STATE_PENDING) << "never started";
  EXPECT_THAT(r.message(), HasSubstr("step 'drain' failed: attempt 2 of 2 failed: timed out"));
  EXPECT_THAT(cp_.EventTypes(), Contains("runbook.step_retrying"));
  EXPECT_THAT(cp_.EventTypes(), Contains("runbook.failed"));
}

TEST_F(RunbookEngineTest, AFailedAttemptIsRetriedAndItsErrorKept) {
  StepPlan flaky = Step("backup");
  flaky.max_attempts = 3;
  flaky.backoff = absl::Seconds(1);
  Make({flaky});
  int calls = 0;
  runbook_->answers["backup"] = [&](StepContext&) -> absl::StatusOr<std::string> {
    if (++calls < 3) return absl::UnavailableError("the replica is not answering");
    return std::string("copied");
  };
  absl::StatusOr<RunbookRun> run = Start("worker-1");
  ASSERT_TRUE(run.ok());
  for (int i = 0; i < 10 && Get(run->id()).state() == hosting::v1::RUN_STATE_RUNNING; ++i) {
    Drive(1);
    clock_.Advance(absl::Seconds(2));
  }
  RunbookRun r = Get(run->id());
  EXPECT_EQ(r.state(), hosting::v1::RUN_STATE_SUCCEEDED) << r.message();
  EXPECT_EQ(r.steps(0).attempts(), 3);
  EXPECT_EQ(r.steps(0).output(), "copied");
  EXPECT_EQ(calls, 3);
}

TEST_F(RunbookEngineTest, CancelEndsARunStuckInAStepAndTheStepSeesIt) {
  Make({Step("drain"), Step("activate")});
  absl::StatusOr<RunbookRun> run = Start("worker-1");
  ASSERT_TRUE(run.ok());
  bool saw_cancel = false;
  runbook_->answers["drain"] = [&](StepContext& ctx) -> absl::StatusOr<std::string> {
    saw_cancel = ctx.cancelled();
    return std::string("late");
  };
  engine_->Tick();
  ASSERT_EQ(queued_.size(), 1u);
  absl::StatusOr<RunbookRun> cancelled = engine_->Cancel(run->id(), "wrong node", "token:bob");
  ASSERT_TRUE(cancelled.ok()) << cancelled.status();
  EXPECT_EQ(cancelled->state(), hosting::v1::RUN_STATE_CANCELLED);
  EXPECT_EQ(cancelled->cancelled_by(), "token:bob");
  EXPECT_EQ(cancelled->steps(0).state(), hosting::v1::RUN_STATE_CANCELLED);
  EXPECT_THAT(cancelled->message(), HasSubstr("cancelled by token:bob: wrong node"));
  RunQueued();
  EXPECT_TRUE(saw_cancel);
  Drive();
  RunbookRun r = Get(run->id());
  EXPECT_EQ(r.state(), hosting::v1::RUN_STATE_CANCELLED);
  EXPECT_EQ(r.steps(1).state(), hosting::v1::RUN_STATE_PENDING);
  EXPECT_EQ(runbook_->executions["activate"], 0);
  absl::Status again = engine_->Cancel(run->id(), "", "token:bob").status();
  EXPECT_TRUE(absl::IsFailedPrecondition(again));
  EXPECT_THAT(std::string(again.message()), HasSubstr("already ended (cancelled)"));
  EXPECT_TRUE(absl::IsNotFound(engine_->Cancel("drill-99", "", "x").status()));
}

TEST_F(RunbookEngineTest, AnApprovalGateWaitsForApproveRunAndRecordsWho) {
  StepPlan gate = Step("activate");
  gate.requires_approval = true;
  gate.approval_timeout = absl::Minutes(30);
  Make({Step("drain"), gate});
  absl::StatusOr<RunbookRun> run = Start("worker-1");
  ASSERT_TRUE(run.ok());
  EXPECT_TRUE(absl::IsFailedPrecondition(engine_->Approve(run->id(), "", "x").status()))
      << "nothing waits yet";
  Drive();
  RunbookRun r = Get(run->id());
  EXPECT_EQ(r.state(), hosting::v1::RUN_STATE_WAITING_APPROVAL);
  EXPECT_EQ(r.steps(1).state(), hosting::v1::RUN_STATE_WAITING_APPROVAL);
  EXPECT_THAT(r.message(), HasSubstr("hostctl runbook approve " + run->id()));
  EXPECT_EQ(runbook_->executions["activate"], 0);
  clock_.Advance(absl::Minutes(29));
  Drive();
  EXPECT_EQ(Get(run->id()).state(), hosting::v1::RUN_STATE_WAITING_APPROVAL);
  absl::StatusOr<RunbookRun> approved = engine_->Approve(run->id(), "tasks moved", "token:carol");
  ASSERT_TRUE(approved.ok()) << approved.status();
  EXPECT_EQ(approved->steps(1).approved_by(), "token:carol");
  Drive();
  r = Get(run->id());
  EXPECT_EQ(r.state(), hosting::v1::RUN_STATE_SUCCEEDED) << r.message();
  EXPECT_EQ(runbook_->executions["activate"], 1);
  EXPECT_THAT(cp_.EventTypes(), Contains("runbook.approved"));
}

TEST_F(RunbookEngineTest, AnApprovalNotGivenInTimeFailsTheRun) {
  StepPlan gate = Step("activate");
  gate.requires_approval = true;
  gate.approval_timeout = absl::Minutes(30);
  Make({gate});
  absl::StatusOr<RunbookRun> run = Start("worker-1");
  ASSERT_TRUE(run.ok());
  Drive();
  clock_.Advance(absl::Minutes(31));
  Drive();
  RunbookRun r = Get(run->id());
  EXPECT_EQ(r.state(), hosting::v1::RUN_STATE_FAILED);
  EXPECT_THAT(r.message(), HasSubstr("not approved within 30m"));
  EXPECT_EQ(runbook_->executions["activate"], 0);
}

TEST_F(RunbookEngineTest, ARestartRunsAResumableStepAgainAndFailsOneThatIsNot) {
  StepPlan resumable = Step("verify");
  resumable.resumable = true;
  resumable.max_attempts = 2;
  Make({resumable, Step("switch")});
  absl::StatusOr<RunbookRun> run = Start("worker-1");
  ASSERT_TRUE(run.ok());
  engine_->Tick();  // "verify" running when hostd goes away
  engine_.reset();
  queued_.clear();
  engine_ = NewEngine();  // a new hostd on the same store
  engine_->Tick();
  RunbookRun r = Get(run->id());
  EXPECT_EQ(r.steps(0).state(), hosting::v1::RUN_STATE_RUNNING);
  EXPECT_EQ(r.steps(0).attempts(), 2) << "resumed as a new attempt";
  EXPECT_THAT(cp_.EventTypes(), Contains("runbook.step_resumed"));
  RunQueued();
  engine_->Tick();  // verify done; switch starts
  ASSERT_EQ(Get(run->id()).steps(1).state(), hosting::v1::RUN_STATE_RUNNING);
  engine_.reset();
  queued_.clear();
  engine_ = NewEngine();
  engine_->Tick();
  r = Get(run->id());
  EXPECT_EQ(r.state(), hosting::v1::RUN_STATE_FAILED) << "never left running";
  EXPECT_THAT(r.message(), HasSubstr("not safe to run it again: check switch on worker-1"));
  EXPECT_EQ(runbook_->executions["switch"], 0);
}

TEST_F(RunbookEngineTest, AHostdThatStopsLeadingAbandonsItsAttempts) {
  Make({Step("drain")});
  bool saw_cancel = false;
  runbook_->answers["drain"] = [&](StepContext& ctx) -> absl::StatusOr<std::string> {
    saw_cancel = ctx.cancelled();
    return std::string("done");
  };
  absl::StatusOr<RunbookRun> run = Start("worker-1");
  ASSERT_TRUE(run.ok());
  engine_->Tick();
  acting_ = false;
  engine_->Tick();
  RunQueued();
  EXPECT_TRUE(saw_cancel);
  EXPECT_EQ(Get(run->id()).steps(0).state(), hosting::v1::RUN_STATE_RUNNING)
      << "the new leader decides";
}

TEST_F(RunbookEngineTest, AStoreOutageDelaysButLosesNothing) {
  Make({Step("drain"), Step("activate")});
  absl::StatusOr<RunbookRun> run = Start("worker-1");
  ASSERT_TRUE(run.ok());
  cp_.store.SetUnavailable(true);
  Drive();
  EXPECT_TRUE(runbook_->executions.empty()) << "nothing acts before it is recorded";
  cp_.store.SetUnavailable(false);
  engine_->Tick();
  RunQueued();
  // The step's success cannot be written: it is written on a later tick.
  cp_.store.FailNext(Op::kUpdateRun, absl::UnavailableError("store down"));
  engine_->Tick();
  Drive();
  RunbookRun r = Get(run->id());
  EXPECT_EQ(r.state(), hosting::v1::RUN_STATE_SUCCEEDED) << r.message();
  EXPECT_EQ(runbook_->executions["drain"], 1);
}

}  // namespace
}  // namespace hosting::controlplane
