// The release strategies' state machines over a fake clock, a fake cluster (task views) and fake
// metrics: every transition and failure path, step by step.
#include "controlplane/release/release_machine.h"

#include "controlplane/release/analysis.h"

#include "absl/strings/str_cat.h"
#include "common/proto_time.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/time_util.h"
#include "gtest/gtest.h"

namespace hosting::controlplane {
namespace {

using google::protobuf::util::TimeUtil;
using hosting::internal::ReleaseRecord;
using ::testing::Contains;
using ::testing::HasSubstr;
using ::testing::Not;

// A tiny Swarm: per revision, tasks that start when the rollout asks for them and become ready
// `start_delay` later (or turn unhealthy when the revision is marked bad).
class FakeCluster {
 public:
  absl::Time now = absl::FromUnixSeconds(1'000'000);
  absl::Duration start_delay = absl::Seconds(2);
  std::set<int64_t> bad_revisions;
  std::set<int64_t> never_ready_revisions;
  bool router = true;
  // What the nodes report room for (-1: no node reported its memory).
  int32_t spare_tasks = -1;
  std::map<std::string, int> sessions;
  std::map<int64_t, RevisionMetrics> metrics;

  // Brings the tasks to the rollout's counts (Swarm removes the highest slots).
  void Converge(const ServiceRecord& s, int64_t current_revision) {
    std::map<int64_t, int32_t> want(s.rollout.replicas().begin(), s.rollout.replicas().end());
    if (want.empty()) want[current_revision] = s.spec.replicas();
    for (auto it = tasks_.begin(); it != tasks_.end();) {
      if (!want.contains(it->first)) {
        it = tasks_.erase(it);
      } else {
        ++it;
      }
    }
    for (const auto& [rev, n] : want) {
      auto& ts = tasks_[rev];
      std::sort(ts.begin(), ts.end(), [](auto& a, auto& b) { return a.view.slot < b.view.slot; });
      while (static_cast<int32_t>(ts.size()) > n) ts.pop_back();
      while (static_cast<int32_t>(ts.size()) < n) {
        Task t;
        t.view.slot = static_cast<int64_t>(ts.size()) + 1;
        t.view.id = absl::StrCat("t", rev, "-", t.view.slot, "-", next_id_++);
        t.started = now;
        ts.push_back(t);
      }
    }
  }
  Observation Observe() {
    Observation obs;
    obs.now = now;
    obs.router = router;
    obs.sessions = sessions;
    obs.metrics = metrics;
    obs.spare_tasks = spare_tasks;
    obs.task_memory_bytes = 100 << 20;
    for (auto& [rev, ts] : tasks_) {
      auto& out = obs.tasks[rev];
      for (auto& t : ts) {
        TaskView v = t.view;
        if (now - t.started >= start_delay && !never_ready_revisions.contains(rev)) {
          if (bad_revisions.contains(rev)) {
            v.unhealthy = true;
            v.detail = "GET /health: 500";
          } else {
            v.ready = true;
            v.ready_since = t.started + start_delay;
          }
        }
        out.push_back(v);
      }
    }
    return obs;
  }
  int Count(int64_t rev) { return tasks_.contains(rev) ? static_cast<int>(tasks_[rev].size()) : 0; }

 private:
  struct Task {
    TaskView view;
    absl::Time started;
  };
  std::map<int64_t, std::vector<Task>> tasks_;
  int next_id_ = 0;
};

class ReleaseMachineTest : public ::testing::Test {
 protected:
  void Start(hosting::v1::ReleaseStrategy strategy, int32_t n = 4) {
    service_.spec.set_name("web");
    service_.spec.set_image("img:2");
    service_.spec.set_replicas(n);
    service_.revision = 2;
    cluster_.Converge(Stable(n), 1);  // revision 1 runs
    cluster_.now += absl::Seconds(10);
    auto* rel = release_.mutable_release();
    rel->set_id("web-1");
    rel->set_service("web");
    rel->set_from_revision(1);
    rel->set_to_revision(2);
    rel->set_strategy(strategy);
    rel->set_state(hosting::v1::RELEASE_STATE_PENDING);
    release_.set_stable_revision(1);
    release_.mutable_stable_spec()->set_image("img:1");
    release_.set_target_replicas(n);
    (*service_.rollout.mutable_replicas())[1] = n;
    (*service_.rollout.mutable_replicas())[2] = 0;
    service_.rollout.set_release_id("web-1");
  }
  // The release runs a baseline, revision 3, beside its canary (ReleaseMachine::Begin's way).
  void WithBaseline() {
    release_.mutable_release()->set_baseline_revision(3);
    (*service_.rollout.mutable_replicas())[3] = 0;
    (*service_.rollout.mutable_baseline_of())[3] = 1;
  }
  ServiceRecord Stable(int32_t n) {
    ServiceRecord s;
    s.spec.set_replicas(n);
    return s;
  }
  // One step of the controller loop: advance, let "Swarm" converge, let time pass.
  void Tick(absl::Duration dt = absl::Milliseconds(500)) {
    Observation obs = cluster_.Observe();
    for (auto& n : machine_.Advance(release_, service_, obs)) {
      types_.push_back(n.type);
      messages_.push_back(n.message);
    }
    cluster_.Converge(service_, service_.revision);
    cluster_.now += dt;
    // Invariant: a rolling release with max_unavailable 0 never has fewer ready tasks than n.
    // Tasks not being drained: what max_surge bounds.
    max_total_ = std::max(max_total_, cluster_.Count(1) + cluster_.Count(2) -
                                          service_.rollout.drain_tasks_size());
  }
  hosting::v1::ReleaseState RunUntilDone(int max_ticks = 2000) {
    for (int i = 0; i < max_ticks && !IsTerminalState(state()); ++i) {
      if (state() == hosting::v1::RELEASE_STATE_WAITING_FOR_PROMOTION ||
          state() == hosting::v1::RELEASE_STATE_PAUSED) {
        break;
      }
      Tick();
      MinReadyCheck();
    }
    return state();
  }
  void MinReadyCheck() {
    Observation obs = cluster_.Observe();
    int ready = 0;
    for (const auto& [rev, ts] : obs.tasks) {
      for (const auto& t : ts) ready += t.ready ? 1 : 0;
    }
    min_ready_ = std::min(min_ready_, ready);
  }
  hosting::v1::ReleaseState state() const { return release_.release().state(); }
  void SetPolicySteps(std::vector<hosting::v1::CanaryStep> steps) {
    auto* c = release_.mutable_policy()->mutable_canary();
    c->clear_steps();
    for (auto& s : steps) *c->add_steps() = s;
  }
  static hosting::v1::CanaryStep Weight(uint32_t w) {
    hosting::v1::CanaryStep s;
    s.set_set_weight(w);
    return s;
  }
  static hosting::v1::CanaryStep Analysis(int seconds, uint32_t min_samples = 100,
                                          hosting::v1::NoDataPolicy no_data = {}) {
    hosting::v1::CanaryStep s;
    *s.mutable_analysis()->mutable_duration() = TimeUtil::SecondsToDuration(seconds);
    s.mutable_analysis()->set_min_samples(min_samples);
    s.mutable_analysis()->set_no_data(no_data);
    return s;
  }
  static hosting::v1::CanaryStep Gate() {
    hosting::v1::CanaryStep s;
    s.mutable_pause();
    return s;
  }
  void Traffic(int64_t rev, double requests, double errors) {
    auto& a = cluster_.metrics[rev];
    a.requests = requests;
    a.errors = errors;
    a.error_ratio = requests > 0 ? errors / requests : 0;
  }
  // Both of the above for the same requests.
  void Served(int64_t rev, double requests, double errors, double median) {
    Traffic(rev, requests, errors);
    Latency(rev, requests, median);
  }
  // `requests` whose latency spreads evenly over [median x 0.8, median x 1.2], as the agents'
  // merged histogram (ten buckets a decade, as appsvc's) holds them.
  void Latency(int64_t rev, double requests, double median) {
    auto& a = cluster_.metrics[rev];
    a.latency_bounds.clear();
    for (double decade : {1e-4, 1e-3, 1e-2, 1e-1, 1.0}) {
      for (double m : {1.0, 1.25, 1.6, 2.0, 2.5, 3.15, 4.0, 5.0, 6.3, 8.0}) {
        a.latency_bounds.push_back(decade * m);
      }
    }
    a.latency_bounds.push_back(INFINITY);
    a.latency_counts.assign(a.latency_bounds.size(), 0);
    for (int i = 0; i < requests; ++i) {
      const double x = median * (0.8 + 0.4 * (i + 0.5) / requests);
      for (size_t k = 0; k < a.latency_bounds.size(); ++k) {
        if (x <= a.latency_bounds[k]) a.latency_counts[k] += 1;
      }
    }
  }
  static hosting::v1::CanaryStep Judged(int seconds) {
    hosting::v1::CanaryStep s = Analysis(seconds);
    s.mutable_analysis()->mutable_judge()->set_min_samples(200);
    return s;
  }

  FakeCluster cluster_;
  ReleaseMachine machine_;
  ReleaseRecord release_;
  ServiceRecord service_;
  std::vector<std::string> types_;
  std::vector<std::string> messages_;
  int max_total_ = 0;
  int min_ready_ = 1000;
};

TEST_F(ReleaseMachineTest, RollingReplacesInBatchesWithinSurgeAndNeverBelowDesired) {
  Start(hosting::v1::RELEASE_STRATEGY_ROLLING, 4);
  EXPECT_EQ(RunUntilDone(), hosting::v1::RELEASE_STATE_SUCCEEDED);
  EXPECT_EQ(cluster_.Count(2), 4);
  EXPECT_EQ(cluster_.Count(1), 0);
  EXPECT_TRUE(service_.rollout.replicas().empty());  // back to plain desired state
  EXPECT_LE(max_total_, 5);                           // 25 % surge of 4
  EXPECT_GE(min_ready_, 4);                           // max_unavailable 0
  EXPECT_THAT(types_, Contains("drain.started"));     // every old task drained first
  EXPECT_THAT(types_, Contains("batch.scaled_down"));
}

// Without max_surge, the surge is what the nodes have memory for (up to the whole service),
// sized once: a release that fills the nodes does not shrink its own batches.
TEST_F(ReleaseMachineTest, RollingWithoutMaxSurgeSurgesAsFarAsTheNodesHaveRoom) {
  Start(hosting::v1::RELEASE_STRATEGY_ROLLING, 4);
  cluster_.spare_tasks = 10;
  Tick();
  cluster_.spare_tasks = 0;  // the new tasks took it
  EXPECT_EQ(RunUntilDone(), hosting::v1::RELEASE_STATE_SUCCEEDED);
  EXPECT_EQ(release_.auto_surge(), 4);
  EXPECT_EQ(max_total_, 8);  // all four new tasks at once
  EXPECT_GE(min_ready_, 4);
  EXPECT_THAT(messages_,
              Contains("surge 4 task(s): the nodes have memory for 10 more at 100 MiB a task"));
}

TEST_F(ReleaseMachineTest, RollingSurgeIsBoundedByTheNodesRoomAndByMaxSurgeWhenSet) {
  Start(hosting::v1::RELEASE_STRATEGY_ROLLING, 4);
  cluster_.spare_tasks = 2;
  EXPECT_EQ(RunUntilDone(), hosting::v1::RELEASE_STATE_SUCCEEDED);
  EXPECT_EQ(max_total_, 6);
  EXPECT_GE(min_ready_, 4);

  // No room at all still moves, one task at a time.
  release_.Clear();
  service_ = ServiceRecord();
  max_total_ = 0;
  Start(hosting::v1::RELEASE_STRATEGY_ROLLING, 4);
  cluster_.spare_tasks = 0;
  EXPECT_EQ(RunUntilDone(), hosting::v1::RELEASE_STATE_SUCCEEDED);
  EXPECT_EQ(max_total_, 5);

  // An explicit max_surge wins over the room reported.
  release_.Clear();
  service_ = ServiceRecord();
  max_total_ = 0;
  Start(hosting::v1::RELEASE_STRATEGY_ROLLING, 4);
  release_.mutable_policy()->mutable_rolling()->mutable_max_surge()->set_count(1);
  cluster_.spare_tasks = 100;
  EXPECT_EQ(RunUntilDone(), hosting::v1::RELEASE_STATE_SUCCEEDED);
  EXPECT_EQ(max_total_, 5);
  EXPECT_EQ(release_.auto_surge(), 0);
}

TEST(SurgeCapacityTest, TaskMemoryAndSpareTasksFromWhatTheNodesReport) {
  constexpr int64_t kMiB = int64_t{1} << 20;
  hosting::v1::ServiceSpec spec;
  EXPECT_EQ(TaskMemoryNeed(spec, {}), 256 * kMiB);        // nothing known
  EXPECT_EQ(TaskMemoryNeed(spec, {20 * kMiB}), 64 * kMiB);  // small tasks: the floor
  EXPECT_EQ(TaskMemoryNeed(spec, {100 * kMiB, 200 * kMiB}), 300 * kMiB);  // 1.5x the most
  spec.mutable_resources()->set_memory_reservation_bytes(500 * kMiB);
  EXPECT_EQ(TaskMemoryNeed(spec, {200 * kMiB}), 500 * kMiB);
  spec.mutable_resources()->set_memory_limit_bytes(128 * kMiB);
  EXPECT_EQ(TaskMemoryNeed(spec, {200 * kMiB}), 128 * kMiB);  // the limit bounds a task

  EXPECT_EQ(SpareTasks({}, 64 * kMiB), -1);
  EXPECT_EQ(SpareTasks({{8192 * kMiB, 0}}, 64 * kMiB), -1);  // not reported
  // 8 GiB node, 2 GiB available, reserve 819 MiB: 1229 MiB / 100 MiB = 12.
  EXPECT_EQ(SpareTasks({{8192 * kMiB, 2048 * kMiB}}, 100 * kMiB), 12);
  // Small node: the reserve is at least 256 MiB; a full node offers nothing.
  EXPECT_EQ(SpareTasks({{1024 * kMiB, 300 * kMiB}, {1024 * kMiB, 100 * kMiB}}, 10 * kMiB), 4);
}

TEST_F(ReleaseMachineTest, RollingWaitsForDrainedSessionsWithinTheBound) {
  Start(hosting::v1::RELEASE_STRATEGY_ROLLING, 2);
  for (int i = 0; i < 30 && release_.drain_revision() == 0; ++i) Tick();
  ASSERT_EQ(release_.drain_revision(), 1);
  ASSERT_EQ(service_.rollout.drain_tasks_size(), 1);
  const std::string victim = service_.rollout.drain_tasks(0);
  EXPECT_THAT(victim, HasSubstr("t1-2-"));  // the highest slot
  cluster_.sessions[victim] = 3;
  Tick(absl::Seconds(1));
  Tick(absl::Seconds(1));
  EXPECT_EQ(service_.rollout.replicas().at(1), 2);  // still waiting on sessions
  cluster_.sessions[victim] = 0;
  Tick();
  EXPECT_EQ(service_.rollout.replicas().at(1), 1);
  // With sessions that never end, the bound lets the scale-down proceed.
  for (int i = 0; i < 30 && release_.drain_revision() == 0; ++i) Tick();
  ASSERT_EQ(release_.drain_revision(), 1);
  cluster_.sessions[service_.rollout.drain_tasks(0)] = 1;
  for (int i = 0; i < 25; ++i) Tick();
  EXPECT_EQ(cluster_.Count(1), 0);
  EXPECT_EQ(state(), hosting::v1::RELEASE_STATE_SUCCEEDED);
  EXPECT_THAT(messages_, Contains(HasSubstr("sessions still open")));
}

TEST_F(ReleaseMachineTest, RollingUnhealthyBatchRollsBackWithoutTouchingStable) {
  Start(hosting::v1::RELEASE_STRATEGY_ROLLING, 4);
  cluster_.bad_revisions.insert(2);
  EXPECT_EQ(RunUntilDone(), hosting::v1::RELEASE_STATE_ROLLED_BACK);
  EXPECT_EQ(cluster_.Count(1), 4);
  EXPECT_EQ(cluster_.Count(2), 0);
  EXPECT_EQ(service_.revision, 1);
  EXPECT_EQ(service_.spec.image(), "img:1");
  EXPECT_EQ(service_.spec.replicas(), 4);
  EXPECT_GE(min_ready_, 4);
  EXPECT_THAT(release_.release().message(), HasSubstr("revision 1 runs all 4 tasks"));
  // The final line keeps the cause, for a pipeline that prints only it.
  EXPECT_THAT(release_.release().message(), HasSubstr("failed their health check"));
  // Its tasks never served: removed without a drain, the release not waiting for them to stop.
  EXPECT_THAT(messages_, Contains(HasSubstr("(none of them served)")));
  EXPECT_THAT(types_, Not(Contains("drain.started")));
}

// The tick that decides to roll back also starts the rollback on the same observation: here
// (new tasks that never served, the stable revision whole) it ends in that very tick.
TEST_F(ReleaseMachineTest, ARollbackStartsInTheTickThatDecidesIt) {
  Start(hosting::v1::RELEASE_STRATEGY_ROLLING, 4);
  cluster_.bad_revisions.insert(2);
  std::vector<std::string> deciding;
  for (int i = 0; i < 50 && deciding.empty(); ++i) {
    const size_t before = types_.size();
    Tick();
    const std::vector<std::string> tick(types_.begin() + before, types_.end());
    if (std::find(tick.begin(), tick.end(), "rolling_back") != tick.end()) deciding = tick;
  }
  EXPECT_THAT(deciding, Contains("weight.set"));
  EXPECT_THAT(deciding, Contains("finished"));
  EXPECT_EQ(state(), hosting::v1::RELEASE_STATE_ROLLED_BACK);
}

TEST_F(ReleaseMachineTest, ProgressDeadlineTimesOutAndRollsBack) {
  Start(hosting::v1::RELEASE_STRATEGY_ROLLING, 2);
  cluster_.never_ready_revisions.insert(2);  // never ready, never failing
  *release_.mutable_policy()->mutable_rolling()->mutable_progress_deadline() =
      TimeUtil::SecondsToDuration(20);
  EXPECT_EQ(RunUntilDone(), hosting::v1::RELEASE_STATE_TIMED_OUT);
  EXPECT_THAT(messages_, Contains(HasSubstr("progress deadline")));
  EXPECT_EQ(cluster_.Count(2), 0);
  EXPECT_EQ(cluster_.Count(1), 2);
}

TEST_F(ReleaseMachineTest, WithoutRouterScaleDownsAreImmediate) {
  Start(hosting::v1::RELEASE_STRATEGY_ROLLING, 3);
  cluster_.router = false;
  EXPECT_EQ(RunUntilDone(), hosting::v1::RELEASE_STATE_SUCCEEDED);
  EXPECT_THAT(types_, ::testing::Not(Contains("drain.started")));
  EXPECT_FALSE(release_.release().exact_weights());
}

TEST_F(ReleaseMachineTest, CanaryGoodVersionPromotesThroughEveryStep) {
  Start(hosting::v1::RELEASE_STRATEGY_CANARY, 4);
  SetPolicySteps({Weight(25), Analysis(10), Weight(50), Analysis(10)});
  Traffic(1, 5000, 5);
  Traffic(2, 1000, 1);
  // Before the first weight step the canary gets nothing.
  Tick();
  EXPECT_EQ(service_.rollout.weights().at(2), 0);
  EXPECT_EQ(RunUntilDone(), hosting::v1::RELEASE_STATE_SUCCEEDED);
  // Each weight step starts its canary tasks once; nothing undoes them (the size never changed).
  EXPECT_EQ(std::count(types_.begin(), types_.end(), "batch.started"), 2);
  EXPECT_EQ(std::count(types_.begin(), types_.end(), "batch.scaled"), 0);
  ASSERT_EQ(release_.release().analyses_size(), 2);
  EXPECT_EQ(release_.release().analyses(0).verdict(), hosting::v1::ANALYSIS_VERDICT_PASSED);
  EXPECT_EQ(release_.release().weight(), 100);
  EXPECT_EQ(cluster_.Count(2), 4);
  EXPECT_EQ(cluster_.Count(1), 0);
}

TEST_F(ReleaseMachineTest, CanaryWeightsAreExactAndStableCapacityStays) {
  Start(hosting::v1::RELEASE_STRATEGY_CANARY, 4);
  SetPolicySteps({Weight(10), Gate()});
  EXPECT_EQ(RunUntilDone(), hosting::v1::RELEASE_STATE_WAITING_FOR_PROMOTION);
  EXPECT_EQ(service_.rollout.weights().at(2), 10);
  EXPECT_EQ(service_.rollout.weights().at(1), 90);
  EXPECT_EQ(service_.rollout.replicas().at(1), 4);  // stable never scaled down
  EXPECT_EQ(service_.rollout.replicas().at(2), 1);
  // The gate waits however long it takes.
  for (int i = 0; i < 100; ++i) Tick(absl::Seconds(10));
  EXPECT_EQ(state(), hosting::v1::RELEASE_STATE_WAITING_FOR_PROMOTION);
  std::vector<ReleaseNote> notes;
  ASSERT_TRUE(machine_.Promote(release_, false, cluster_.now, notes).ok());
  EXPECT_EQ(RunUntilDone(), hosting::v1::RELEASE_STATE_SUCCEEDED);
  // A finished release cannot be promoted again.
  absl::Status again = machine_.Promote(release_, false, cluster_.now, notes);
  EXPECT_TRUE(absl::IsFailedPrecondition(again));
  EXPECT_THAT(again.message(), HasSubstr("succeeded"));
}

TEST_F(ReleaseMachineTest, CanaryFollowsAResizeInItsProportions) {
  Start(hosting::v1::RELEASE_STRATEGY_CANARY, 4);
  SetPolicySteps({Weight(25), Gate()});
  EXPECT_EQ(RunUntilDone(), hosting::v1::RELEASE_STATE_WAITING_FOR_PROMOTION);
  // The autoscaler doubles the service while the canary waits at its gate.
  service_.spec.set_replicas(8);
  for (int i = 0; i < 10; ++i) Tick();
  EXPECT_EQ(service_.rollout.replicas().at(1), 8);
  EXPECT_EQ(service_.rollout.replicas().at(2), 2);  // 25 % of 8
  EXPECT_EQ(service_.rollout.weights().at(2), 25);  // the traffic split is untouched
  EXPECT_EQ(state(), hosting::v1::RELEASE_STATE_WAITING_FOR_PROMOTION);
  // And halves it: tasks are drained before they go, one revision at a time.
  service_.spec.set_replicas(4);
  for (int i = 0; i < 20; ++i) Tick();
  EXPECT_EQ(service_.rollout.replicas().at(1), 4);
  EXPECT_EQ(service_.rollout.replicas().at(2), 1);
  EXPECT_EQ(cluster_.Count(1), 4);
  EXPECT_EQ(cluster_.Count(2), 1);
  EXPECT_NE(std::find(types_.begin(), types_.end(), "drain.started"), types_.end());
  std::vector<ReleaseNote> notes;
  ASSERT_TRUE(machine_.Promote(release_, false, cluster_.now, notes).ok());
  EXPECT_EQ(RunUntilDone(), hosting::v1::RELEASE_STATE_SUCCEEDED);
  EXPECT_EQ(cluster_.Count(2), 4);
  EXPECT_EQ(cluster_.Count(1), 0);
}

TEST_F(ReleaseMachineTest, RollingAbsorbsAResizeIntoItsBatches) {
  Start(hosting::v1::RELEASE_STRATEGY_ROLLING, 4);
  for (int i = 0; i < 4; ++i) Tick();
  service_.spec.set_replicas(7);
  EXPECT_EQ(RunUntilDone(), hosting::v1::RELEASE_STATE_SUCCEEDED);
  EXPECT_EQ(cluster_.Count(2), 7);
  EXPECT_EQ(cluster_.Count(1), 0);
  EXPECT_EQ(release_.target_replicas(), 7);
}

TEST_F(ReleaseMachineTest, BlueGreenFollowsAResizeBeforeTheSwitch) {
  Start(hosting::v1::RELEASE_STRATEGY_BLUE_GREEN, 3);
  release_.mutable_policy()->mutable_blue_green()->set_manual_promotion(true);
  EXPECT_EQ(RunUntilDone(), hosting::v1::RELEASE_STATE_WAITING_FOR_PROMOTION);
  service_.spec.set_replicas(5);
  for (int i = 0; i < 10; ++i) Tick();
  EXPECT_EQ(cluster_.Count(1), 5);  // blue serves the traffic meanwhile
  EXPECT_EQ(cluster_.Count(2), 5);  // green is ready for all of it
}

TEST_F(ReleaseMachineTest, CanaryWithoutRouterApproximatesWithReplicas) {
  Start(hosting::v1::RELEASE_STRATEGY_CANARY, 4);
  cluster_.router = false;
  SetPolicySteps({Weight(20), Gate()});
  RunUntilDone();
  // 1 canary next to 4 stable tasks: 20 %.
  EXPECT_EQ(service_.rollout.replicas().at(2), 1);
  EXPECT_THAT(messages_, Contains(HasSubstr("approximated by replica counts")));
}

TEST_F(ReleaseMachineTest, CanaryBadVersionFailsAnalysisEarlyAndRollsBack) {
  Start(hosting::v1::RELEASE_STRATEGY_CANARY, 4);
  SetPolicySteps({Weight(20), Analysis(60), Weight(50)});
  Traffic(1, 4000, 0);
  Traffic(2, 1000, 300);  // 30 % errors
  const absl::Time start = cluster_.now;
  EXPECT_EQ(RunUntilDone(), hosting::v1::RELEASE_STATE_ROLLED_BACK);
  EXPECT_LT(cluster_.now - start, absl::Seconds(60));  // did not wait out the analysis
  ASSERT_EQ(release_.release().analyses_size(), 1);
  const auto& a = release_.release().analyses(0);
  EXPECT_EQ(a.verdict(), hosting::v1::ANALYSIS_VERDICT_FAILED);
  EXPECT_THAT(a.reason(), HasSubstr("5xx ratio 30.00%"));
  EXPECT_EQ(service_.rollout.replicas_size(), 0);
  EXPECT_EQ(service_.revision, 1);
  EXPECT_EQ(cluster_.Count(1), 4);
  EXPECT_GE(min_ready_, 4);
}

TEST_F(ReleaseMachineTest, AJudgedCanaryThirtyPercentSlowerWithinTheBoundsRollsBack) {
  Start(hosting::v1::RELEASE_STRATEGY_CANARY, 4);
  SetPolicySteps({Weight(20), Judged(60), Weight(50)});
  Served(1, 4000, 0, 0.010);
  Served(2, 1000, 0, 0.013);  // 30 % slower: no bound of the analysis is set for latency
  const absl::Time start = cluster_.now;
  EXPECT_EQ(RunUntilDone(), hosting::v1::RELEASE_STATE_ROLLED_BACK);
  EXPECT_LT(cluster_.now - start, absl::Seconds(60));
  ASSERT_EQ(release_.release().analyses_size(), 1);
  const auto& a = release_.release().analyses(0);
  EXPECT_EQ(a.verdict(), hosting::v1::ANALYSIS_VERDICT_FAILED);
  EXPECT_THAT(a.reason(), HasSubstr("judge: score 50 below 75"));
  EXPECT_TRUE(a.judged());
  EXPECT_EQ(a.score(), 50);
  bool latency = false;
  for (const auto& m : a.metrics()) {
    if (m.metric() != "latency") continue;
    latency = true;
    EXPECT_EQ(m.method(), "mann-whitney");
    EXPECT_EQ(m.verdict(), hosting::v1::ANALYSIS_VERDICT_FAILED);
    EXPECT_LT(m.p_value(), 0.001);
  }
  EXPECT_TRUE(latency);
  EXPECT_EQ(service_.revision, 1);

  // The samples it decided on are kept: judged again, the same verdict; with a wider latency
  // tolerance, or latency dry-run, another.
  ASSERT_TRUE(a.has_samples());
  EXPECT_EQ(a.samples().canary().requests(), 1000);
  EXPECT_EQ(a.samples().stable().latency_counts_size(), a.samples().stable().latency_bounds_size());
  EXPECT_TRUE(a.samples().has_judge());
  hosting::v1::JudgeReleaseResponse again = JudgeAgain(release_.release(), nullptr);
  ASSERT_EQ(again.analyses_size(), 1);
  EXPECT_EQ(again.analyses(0).index(), 0);
  EXPECT_EQ(again.analyses(0).original_verdict(), hosting::v1::ANALYSIS_VERDICT_FAILED);
  EXPECT_EQ(again.analyses(0).judged().verdict(), hosting::v1::ANALYSIS_VERDICT_FAILED);
  hosting::v1::JudgeSpec wider;
  wider.set_latency_tolerance(0.5);
  EXPECT_EQ(JudgeAgain(release_.release(), &wider).analyses(0).judged().verdict(),
            hosting::v1::ANALYSIS_VERDICT_PASSED);
  hosting::v1::JudgeSpec dry;
  dry.add_dry_run("latency");
  const hosting::v1::AnalysisResult dry_run = JudgeAgain(release_.release(), &dry).analyses(0).judged();
  EXPECT_EQ(dry_run.verdict(), hosting::v1::ANALYSIS_VERDICT_PASSED);
  EXPECT_THAT(dry_run.reason(), HasSubstr("dry-run, not acting"));
}

TEST_F(ReleaseMachineTest, AJudgedGoodCanaryPassesAsSoonAsItHasItsSamples) {
  Start(hosting::v1::RELEASE_STRATEGY_CANARY, 4);
  SetPolicySteps({Weight(20), Judged(60), Weight(50)});
  Served(1, 4000, 4, 0.010);
  Served(2, 100, 0, 0.010);  // not yet enough: the judge waits
  for (int i = 0; i < 20 && release_.release().analyses_size() == 0; ++i) Tick();
  ASSERT_EQ(release_.release().analyses_size(), 1);
  for (int i = 0; i < 4; ++i) Tick();
  EXPECT_EQ(release_.release().analyses(0).verdict(), hosting::v1::ANALYSIS_VERDICT_RUNNING);
  EXPECT_THAT(release_.release().analyses(0).reason(), HasSubstr("not enough samples yet"));
  const absl::Time enough = cluster_.now;
  Served(2, 1000, 1, 0.0101);
  Tick();  // decided on the first tick with enough samples, not at the end of its 60 s
  const auto& a = release_.release().analyses(0);
  EXPECT_EQ(a.verdict(), hosting::v1::ANALYSIS_VERDICT_PASSED) << a.reason();
  EXPECT_EQ(a.score(), 100);
  EXPECT_LE(FromTimestamp(a.finished_at()) - enough, absl::Milliseconds(500));
  EXPECT_EQ(RunUntilDone(), hosting::v1::RELEASE_STATE_SUCCEEDED);
}

TEST_F(ReleaseMachineTest, BeginPutsACanarysBaselineInTheRolloutAtZero) {
  ServiceRecord s;
  s.spec.set_name("web");
  s.spec.set_image("img:1");
  s.spec.set_replicas(4);
  s.revision = 1;
  hosting::v1::ServiceSpec next = s.spec;
  next.set_image("img:2");
  hosting::v1::ReleasePolicy policy;
  policy.set_strategy(hosting::v1::RELEASE_STRATEGY_CANARY);
  policy.mutable_canary()->set_baseline(true);
  const ReleaseRecord r = ReleaseMachine::Begin(s, next, 2, 3, policy, "", cluster_.now);
  EXPECT_EQ(r.release().baseline_revision(), 3);
  EXPECT_EQ(s.rollout.replicas().at(3), 0);
  EXPECT_EQ(s.rollout.weights().at(3), 0);
  EXPECT_EQ(s.rollout.baseline_of().at(3), 1);  // runs revision 1's spec
  EXPECT_EQ(HighestRevisionNamed(s), 3);         // so the store never gives 3 out again
  // Other strategies run no baseline.
  ServiceRecord rolling = s;
  rolling.revision = 1;
  rolling.rollout.Clear();
  policy.set_strategy(hosting::v1::RELEASE_STRATEGY_ROLLING);
  EXPECT_EQ(ReleaseMachine::Begin(rolling, next, 2, 3, policy, "", cluster_.now)
                .release()
                .baseline_revision(),
            0);
  EXPECT_FALSE(rolling.rollout.replicas().contains(3));
}

// Kayenta's practice: the canary is compared with a baseline as cold as itself, not with the
// long-running stable tasks. Here the new tasks of either version are 30 % slower than the
// warm stable ones: against stable the canary would fail, against its baseline it passes.
TEST_F(ReleaseMachineTest, ACanaryIsJudgedAgainstItsBaselineWhichGoesWhenTheReleaseEnds) {
  Start(hosting::v1::RELEASE_STRATEGY_CANARY, 4);
  WithBaseline();
  SetPolicySteps({Weight(20), Judged(60), Weight(60), Gate()});
  Served(1, 4000, 0, 0.010);
  Served(3, 1000, 0, 0.013);
  Served(2, 1000, 0, 0.0131);
  EXPECT_EQ(RunUntilDone(), hosting::v1::RELEASE_STATE_WAITING_FOR_PROMOTION);
  EXPECT_THAT(types_, Contains("baseline.started"));
  ASSERT_EQ(release_.release().analyses_size(), 1);
  const auto& a = release_.release().analyses(0);
  EXPECT_EQ(a.verdict(), hosting::v1::ANALYSIS_VERDICT_PASSED) << a.reason();
  EXPECT_TRUE(a.baseline());
  EXPECT_EQ(a.compared_revision(), 3);
  EXPECT_THAT(a.reason(), HasSubstr("against baseline revision 3"));
  EXPECT_EQ(a.samples().stable().requests(), 1000);  // the baseline's side
  // At 60 % the baseline takes the rest, 40 %: the stable tasks keep running, with no traffic.
  EXPECT_EQ(service_.rollout.weights().at(2), 60);
  EXPECT_EQ(service_.rollout.weights().at(3), 40);
  EXPECT_EQ(service_.rollout.weights().at(1), 0);
  EXPECT_EQ(cluster_.Count(2), 3);
  EXPECT_EQ(cluster_.Count(3), 2);
  EXPECT_EQ(cluster_.Count(1), 4);
  std::vector<ReleaseNote> notes;
  ASSERT_TRUE(machine_.Promote(release_, false, cluster_.now, notes).ok());
  EXPECT_EQ(RunUntilDone(), hosting::v1::RELEASE_STATE_SUCCEEDED);
  EXPECT_EQ(cluster_.Count(3), 0);
  EXPECT_EQ(cluster_.Count(1), 0);
  EXPECT_EQ(cluster_.Count(2), 4);
  EXPECT_TRUE(service_.rollout.baseline_of().empty());
}

TEST_F(ReleaseMachineTest, ABaselineSharesTheCanarysWeightAndGoesWithARollback) {
  Start(hosting::v1::RELEASE_STRATEGY_CANARY, 10);
  WithBaseline();
  SetPolicySteps({Weight(20), Gate(), Judged(60)});
  EXPECT_EQ(RunUntilDone(), hosting::v1::RELEASE_STATE_WAITING_FOR_PROMOTION);
  // Equal shares and task counts, started together.
  EXPECT_EQ(service_.rollout.weights().at(2), 20);
  EXPECT_EQ(service_.rollout.weights().at(3), 20);
  EXPECT_EQ(service_.rollout.weights().at(1), 60);
  EXPECT_EQ(cluster_.Count(2), 2);
  EXPECT_EQ(cluster_.Count(3), 2);
  // A resize keeps them equal.
  service_.spec.set_replicas(20);
  for (int i = 0; i < 10; ++i) Tick();
  EXPECT_EQ(cluster_.Count(2), 4);
  EXPECT_EQ(cluster_.Count(3), 4);
  // The canary is 30 % slower than its baseline: the judge rolls back, and the baseline goes.
  Served(1, 4000, 0, 0.010);
  Served(3, 1000, 0, 0.010);
  Served(2, 1000, 0, 0.013);
  std::vector<ReleaseNote> notes;
  ASSERT_TRUE(machine_.Promote(release_, false, cluster_.now, notes).ok());
  EXPECT_EQ(RunUntilDone(), hosting::v1::RELEASE_STATE_ROLLED_BACK);
  EXPECT_THAT(release_.release().message(), HasSubstr("against baseline revision 3"));
  EXPECT_EQ(cluster_.Count(3), 0);
  EXPECT_EQ(cluster_.Count(2), 0);
  EXPECT_EQ(cluster_.Count(1), 20);
  EXPECT_TRUE(service_.rollout.replicas().empty());
}

TEST_F(ReleaseMachineTest, AnUnhealthyBaselineRollsTheCanaryBack) {
  Start(hosting::v1::RELEASE_STRATEGY_CANARY, 4);
  WithBaseline();
  SetPolicySteps({Weight(25), Judged(60)});
  cluster_.bad_revisions.insert(3);
  EXPECT_EQ(RunUntilDone(), hosting::v1::RELEASE_STATE_ROLLED_BACK);
  EXPECT_THAT(release_.release().message(),
              HasSubstr("baseline task(s) of revision 3 (revision 1's spec) failed their health "
                        "check, so the canary has nothing to be compared with"));
  EXPECT_EQ(cluster_.Count(3), 0);
  EXPECT_EQ(cluster_.Count(1), 4);
}

// A rollback that cannot make the stable revision whole again (its tasks never get ready)
// ends FAILED at its deadline with both revisions left running; hostctl exits 11 for it
// (ExitCodeForRelease in hostctl_test).
TEST_F(ReleaseMachineTest, ARollbackThatRunsOutOfTimeFailsAndLeavesBothRevisionsRunning) {
  Start(hosting::v1::RELEASE_STRATEGY_CANARY, 4);
  SetPolicySteps({Weight(20), Analysis(60), Weight(50)});
  Traffic(1, 4000, 0);
  Traffic(2, 1000, 300);
  for (int i = 0; i < 2000 && state() != hosting::v1::RELEASE_STATE_ROLLING_BACK; ++i) Tick();
  ASSERT_EQ(state(), hosting::v1::RELEASE_STATE_ROLLING_BACK);
  cluster_.never_ready_revisions.insert(1);  // e.g. the stable image is gone from the nodes
  const absl::Time failed_at = cluster_.now;
  EXPECT_EQ(RunUntilDone(), hosting::v1::RELEASE_STATE_FAILED);
  EXPECT_GE(cluster_.now - failed_at, absl::Minutes(2));  // it waited for its deadline
  EXPECT_THAT(messages_, Contains(HasSubstr("rollback did not finish")));
  EXPECT_GT(cluster_.Count(1), 0);
  EXPECT_GT(cluster_.Count(2), 0);  // nothing healthy was stopped
}

TEST_F(ReleaseMachineTest, RollbackMovesAllTrafficToStableInOneStep) {
  Start(hosting::v1::RELEASE_STRATEGY_CANARY, 4);
  SetPolicySteps({Weight(50), Analysis(60)});
  Traffic(1, 4000, 0);
  Traffic(2, 50, 0);  // not enough yet
  for (int i = 0; i < 40 && release_.release().analyses_size() == 0; ++i) Tick();
  ASSERT_EQ(service_.rollout.weights().at(2), 50);
  Traffic(2, 1000, 500);
  Tick();  // analysis fails, rolling back
  Tick();  // stable is whole: all traffic moves at once
  EXPECT_EQ(service_.rollout.weights_size(), 1);
  EXPECT_EQ(service_.rollout.weights().at(1), 100);
}

TEST_F(ReleaseMachineTest, InconclusiveAnalysisPausesByDefaultAndFailsWhenAsked) {
  Start(hosting::v1::RELEASE_STRATEGY_CANARY, 2);
  SetPolicySteps({Weight(50), Analysis(10)});
  Traffic(1, 10, 0);
  Traffic(2, 10, 0);
  EXPECT_EQ(RunUntilDone(), hosting::v1::RELEASE_STATE_PAUSED);
  EXPECT_THAT(release_.release().message(), HasSubstr("not enough data"));
  EXPECT_EQ(release_.release().analyses(0).verdict(), hosting::v1::ANALYSIS_VERDICT_INCONCLUSIVE);
  // Resume analyses again; with traffic it passes.
  std::vector<ReleaseNote> notes;
  ASSERT_TRUE(machine_.Resume(release_, cluster_.now, notes).ok());
  Traffic(1, 1000, 0);
  Traffic(2, 1000, 0);
  EXPECT_EQ(RunUntilDone(), hosting::v1::RELEASE_STATE_SUCCEEDED);
}

TEST_F(ReleaseMachineTest, OnFailurePauseHoldsTrafficWhereItWasUntilAPersonDecides) {
  Start(hosting::v1::RELEASE_STRATEGY_CANARY, 4);
  hosting::v1::CanaryStep analysis = Analysis(60);
  analysis.mutable_analysis()->set_on_failure(hosting::v1::ANALYSIS_FAILURE_POLICY_PAUSE);
  SetPolicySteps({Weight(25), analysis, Weight(50)});
  Traffic(1, 4000, 0);
  Traffic(2, 1000, 300);  // 30 % errors
  EXPECT_EQ(RunUntilDone(), hosting::v1::RELEASE_STATE_PAUSED);
  EXPECT_EQ(release_.release().analyses(0).verdict(), hosting::v1::ANALYSIS_VERDICT_FAILED);
  EXPECT_THAT(release_.release().message(),
              HasSubstr("on_failure is pause: traffic stays at 25.0% on revision 2"));
  // Held: more ticks change nothing; both revisions keep their tasks and the weight.
  for (int i = 0; i < 20; ++i) Tick();
  EXPECT_EQ(state(), hosting::v1::RELEASE_STATE_PAUSED);
  EXPECT_EQ(release_.release().weight(), 25);
  EXPECT_EQ(cluster_.Count(1), 4);
  EXPECT_EQ(cluster_.Count(2), 1);
  // The person aborts: back on the stable revision.
  std::vector<ReleaseNote> notes;
  ASSERT_TRUE(machine_.Abort(release_, "looked at it", cluster_.now, notes).ok());
  EXPECT_EQ(RunUntilDone(), hosting::v1::RELEASE_STATE_ABORTED);
  EXPECT_EQ(service_.revision, 1);
}

TEST_F(ReleaseMachineTest, BackgroundAnalysisPausesAfterItsInconclusiveLimit) {
  Start(hosting::v1::RELEASE_STRATEGY_CANARY, 4);
  hosting::v1::CanaryStep wait;
  wait.mutable_pause()->mutable_duration()->set_seconds(120);
  SetPolicySteps({Weight(25), wait, Weight(50)});
  auto* bg = release_.mutable_policy()->mutable_canary()->mutable_background_analysis();
  bg->mutable_duration()->set_seconds(5);
  bg->set_min_samples(100);
  bg->set_inconclusive_limit(3);
  Traffic(1, 4000, 0);
  Traffic(2, 10, 0);  // the canary gets too little traffic to judge
  for (int i = 0; i < 200 && state() != hosting::v1::RELEASE_STATE_PAUSED; ++i) Tick();
  EXPECT_EQ(state(), hosting::v1::RELEASE_STATE_PAUSED);
  EXPECT_THAT(release_.release().message(),
              HasSubstr("3 background analysis windows in a row were inconclusive (limit 3)"));
  int inconclusive = 0;
  for (const auto& a : release_.release().analyses()) {
    inconclusive += a.verdict() == hosting::v1::ANALYSIS_VERDICT_INCONCLUSIVE;
  }
  EXPECT_EQ(inconclusive, 3);
  // With the no-data policy fail, the limit rolls back.
  Start(hosting::v1::RELEASE_STRATEGY_CANARY, 4);
  release_.mutable_release()->clear_analyses();
  release_.clear_background_started_at();
  bg->set_no_data(hosting::v1::NO_DATA_POLICY_FAIL);
  EXPECT_EQ(RunUntilDone(), hosting::v1::RELEASE_STATE_ROLLED_BACK);
  EXPECT_THAT(release_.release().message(), HasSubstr("the no-data policy is fail"));
}

TEST_F(ReleaseMachineTest, InconclusiveWithFailPolicyRollsBack) {
  Start(hosting::v1::RELEASE_STRATEGY_CANARY, 2);
  SetPolicySteps({Weight(50), Analysis(10, 100, hosting::v1::NO_DATA_POLICY_FAIL)});
  EXPECT_EQ(RunUntilDone(), hosting::v1::RELEASE_STATE_ROLLED_BACK);
  EXPECT_THAT(messages_, Contains(HasSubstr("no-data policy is fail")));
}

TEST_F(ReleaseMachineTest, BlueGreenSwitchesAtOnceAndKeepsTheOldRevisionWarm) {
  Start(hosting::v1::RELEASE_STRATEGY_BLUE_GREEN, 3);
  Tick();
  EXPECT_EQ(service_.rollout.preview_revision(), 2);
  EXPECT_EQ(service_.rollout.weights().at(2), 0);
  EXPECT_EQ(RunUntilDone(), hosting::v1::RELEASE_STATE_SUCCEEDED);
  EXPECT_EQ(cluster_.Count(2), 3);
  EXPECT_EQ(cluster_.Count(1), 3);  // warm
  EXPECT_EQ(service_.rollout.warm_revision(), 1);
  EXPECT_EQ(service_.rollout.weights().at(2), 100);
  EXPECT_EQ(service_.rollout.weights().at(1), 0);
  EXPECT_EQ(service_.rollout.preview_revision(), 0);
}

TEST_F(ReleaseMachineTest, BlueGreenPreSwitchAnalysisPassesThenSwitches) {
  Start(hosting::v1::RELEASE_STRATEGY_BLUE_GREEN, 2);
  auto* a = release_.mutable_policy()->mutable_blue_green()->mutable_pre_switch_analysis();
  *a->mutable_duration() = TimeUtil::SecondsToDuration(10);
  a->set_min_samples(100);
  Traffic(1, 4000, 4);
  Traffic(2, 1000, 1);  // the preview's traffic: as good as stable
  EXPECT_EQ(RunUntilDone(), hosting::v1::RELEASE_STATE_SUCCEEDED);
  ASSERT_EQ(release_.release().analyses_size(), 1);
  EXPECT_EQ(release_.release().analyses(0).verdict(), hosting::v1::ANALYSIS_VERDICT_PASSED);
  EXPECT_EQ(service_.rollout.weights().at(2), 100);
}

TEST_F(ReleaseMachineTest, BlueGreenPreSwitchAnalysisFailureRollsBackBeforeAnyTrafficMoves) {
  Start(hosting::v1::RELEASE_STRATEGY_BLUE_GREEN, 2);
  auto* a = release_.mutable_policy()->mutable_blue_green()->mutable_pre_switch_analysis();
  *a->mutable_duration() = TimeUtil::SecondsToDuration(10);
  a->set_min_samples(100);
  Traffic(1, 4000, 0);
  Traffic(2, 1000, 300);  // the preview answers 30 % errors
  uint32_t max_green_weight = 0;
  for (int i = 0; i < 2000 && !IsTerminalState(state()); ++i) {
    Tick();
    if (auto it = service_.rollout.weights().find(2); it != service_.rollout.weights().end()) {
      max_green_weight = std::max<uint32_t>(max_green_weight, it->second);
    }
  }
  EXPECT_EQ(state(), hosting::v1::RELEASE_STATE_ROLLED_BACK);
  EXPECT_EQ(max_green_weight, 0u);  // users never reached the green revision
  ASSERT_EQ(release_.release().analyses_size(), 1);
  EXPECT_EQ(release_.release().analyses(0).verdict(), hosting::v1::ANALYSIS_VERDICT_FAILED);
  EXPECT_THAT(release_.release().analyses(0).reason(), HasSubstr("5xx ratio 30.00%"));
  EXPECT_EQ(service_.revision, 1);
  EXPECT_EQ(cluster_.Count(1), 2);
}

TEST_F(ReleaseMachineTest, CanaryBackgroundAnalysisAbortsDuringAStep) {
  Start(hosting::v1::RELEASE_STRATEGY_CANARY, 4);
  hosting::v1::CanaryStep wait;
  *wait.mutable_pause()->mutable_duration() = TimeUtil::SecondsToDuration(120);
  SetPolicySteps({Weight(20), wait, Weight(50)});
  auto* bg = release_.mutable_policy()->mutable_canary()->mutable_background_analysis();
  *bg->mutable_duration() = TimeUtil::SecondsToDuration(5);
  bg->set_min_samples(100);
  Traffic(1, 4000, 0);
  Traffic(2, 1000, 300);
  const absl::Time start = cluster_.now;
  EXPECT_EQ(RunUntilDone(), hosting::v1::RELEASE_STATE_ROLLED_BACK);
  EXPECT_LT(cluster_.now - start, absl::Seconds(120));  // did not wait out the timed pause
  ASSERT_GE(release_.release().analyses_size(), 1);
  const auto& last = release_.release().analyses(release_.release().analyses_size() - 1);
  EXPECT_EQ(last.kind(), "background");
  EXPECT_EQ(last.verdict(), hosting::v1::ANALYSIS_VERDICT_FAILED);
  EXPECT_THAT(messages_, Contains(HasSubstr("background analysis failed")));
  EXPECT_EQ(release_.release().weight(), 0);
  EXPECT_EQ(cluster_.Count(1), 4);
}

TEST_F(ReleaseMachineTest, CanaryBackgroundAnalysisOfAGoodVersionLetsTheStepsRun) {
  Start(hosting::v1::RELEASE_STRATEGY_CANARY, 4);
  SetPolicySteps({Weight(20), Analysis(10), Weight(50)});
  auto* bg = release_.mutable_policy()->mutable_canary()->mutable_background_analysis();
  *bg->mutable_duration() = TimeUtil::SecondsToDuration(5);
  bg->set_min_samples(100);
  Traffic(1, 4000, 4);
  Traffic(2, 1000, 1);
  EXPECT_EQ(RunUntilDone(), hosting::v1::RELEASE_STATE_SUCCEEDED);
  int background = 0;
  for (const auto& a : release_.release().analyses()) {
    EXPECT_NE(a.verdict(), hosting::v1::ANALYSIS_VERDICT_FAILED) << a.reason();
    EXPECT_NE(a.verdict(), hosting::v1::ANALYSIS_VERDICT_RUNNING) << a.kind();  // all closed
    background += a.kind() == "background" ? 1 : 0;
  }
  EXPECT_GE(background, 2);  // one window per 5 s from the first weight on
}

TEST_F(ReleaseMachineTest, BlueGreenManualPromotion) {
  Start(hosting::v1::RELEASE_STRATEGY_BLUE_GREEN, 2);
  release_.mutable_policy()->mutable_blue_green()->set_manual_promotion(true);
  EXPECT_EQ(RunUntilDone(), hosting::v1::RELEASE_STATE_WAITING_FOR_PROMOTION);
  EXPECT_EQ(service_.rollout.weights().at(2), 0);
  std::vector<ReleaseNote> notes;
  ASSERT_TRUE(machine_.Promote(release_, false, cluster_.now, notes).ok());
  EXPECT_EQ(RunUntilDone(), hosting::v1::RELEASE_STATE_SUCCEEDED);
  EXPECT_EQ(service_.rollout.weights().at(2), 100);
}

TEST_F(ReleaseMachineTest, RollbackToAWarmRevisionIsImmediate) {
  // The state RollbackService creates after a blue-green switch: r2 serves, r1 is warm.
  service_.spec.set_name("web");
  service_.spec.set_replicas(3);
  service_.revision = 2;
  (*service_.rollout.mutable_replicas())[1] = 3;
  (*service_.rollout.mutable_replicas())[2] = 3;
  (*service_.rollout.mutable_weights())[2] = 100;
  cluster_.Converge(service_, 2);
  cluster_.now += absl::Seconds(10);
  auto* rel = release_.mutable_release();
  rel->set_id("web-2");
  rel->set_from_revision(2);
  rel->set_to_revision(1);
  rel->set_rollback(true);
  rel->set_state(hosting::v1::RELEASE_STATE_ROLLING_BACK);
  release_.set_final_state(hosting::v1::RELEASE_STATE_SUCCEEDED);
  release_.set_stable_revision(1);
  release_.mutable_stable_spec()->set_image("img:1");
  Tick();
  EXPECT_EQ(service_.rollout.weights().at(1), 100);  // first tick: all traffic back
  EXPECT_EQ(RunUntilDone(), hosting::v1::RELEASE_STATE_SUCCEEDED);
  EXPECT_EQ(service_.revision, 1);
  EXPECT_EQ(service_.spec.image(), "img:1");
  EXPECT_EQ(cluster_.Count(2), 0);
}

TEST_F(ReleaseMachineTest, PauseResumeAndAbort) {
  Start(hosting::v1::RELEASE_STRATEGY_ROLLING, 4);
  Tick();
  std::vector<ReleaseNote> notes;
  ASSERT_TRUE(machine_.Pause(release_, cluster_.now, notes).ok());
  const auto replicas = service_.rollout.replicas();
  for (int i = 0; i < 20; ++i) Tick();
  EXPECT_EQ(state(), hosting::v1::RELEASE_STATE_PAUSED);
  EXPECT_EQ(service_.rollout.replicas().at(2), replicas.at(2));  // nothing moved
  EXPECT_TRUE(absl::IsFailedPrecondition(machine_.Pause(release_, cluster_.now, notes)));
  ASSERT_TRUE(machine_.Resume(release_, cluster_.now, notes).ok());
  Tick();
  ASSERT_TRUE(machine_.Abort(release_, "operator said so", cluster_.now, notes).ok());
  EXPECT_EQ(RunUntilDone(), hosting::v1::RELEASE_STATE_ABORTED);
  EXPECT_EQ(cluster_.Count(2), 0);
  EXPECT_EQ(cluster_.Count(1), 4);
  EXPECT_TRUE(absl::IsFailedPrecondition(
      machine_.Abort(release_, "", cluster_.now, notes)));
}

TEST(ReleaseMachineStatic, ResolveCountsAndPercents) {
  hosting::v1::IntOrPercent v;
  EXPECT_EQ(ReleaseMachine::Resolve(v, 4, 25, true), 1);
  EXPECT_EQ(ReleaseMachine::Resolve(v, 10, 25, true), 3);
  EXPECT_EQ(ReleaseMachine::Resolve(v, 10, 25, false), 2);
  v.set_count(2);
  EXPECT_EQ(ReleaseMachine::Resolve(v, 10, 25, true), 2);
  v.set_percent(50);
  EXPECT_EQ(ReleaseMachine::Resolve(v, 5, 25, true), 3);
  EXPECT_EQ(ReleaseMachine::CanarySteps({}).size(), 5u);
}

RevisionMetrics Agg(double requests, double errors, double p95, double p99) {
  RevisionMetrics a;
  a.requests = requests;
  a.errors = errors;
  a.error_ratio = requests > 0 ? errors / requests : 0;
  a.p95 = p95;
  a.p99 = p99;
  return a;
}

TEST(AnalyzeTest, ComparesErrorsAndLatencyQuantilesWithTheirNumbers) {
  hosting::v1::AnalysisSpec spec;
  spec.set_max_p95_latency_ratio(1.5);
  spec.set_max_p99_latency_ratio(2);
  const auto stable = Agg(1000, 5, 0.010, 0.020);
  auto good = Analyze(spec, &stable, Agg(200, 1, 0.012, 0.030));
  EXPECT_EQ(good.verdict(), hosting::v1::ANALYSIS_VERDICT_PASSED) << good.reason();
  EXPECT_EQ(good.metrics_size(), 3);  // error ratio increase, p95 ratio, p99 ratio
  auto slow = Analyze(spec, &stable, Agg(200, 1, 0.020, 0.030));
  EXPECT_EQ(slow.verdict(), hosting::v1::ANALYSIS_VERDICT_FAILED);
  EXPECT_THAT(slow.reason(), HasSubstr("p95 20.0 ms vs stable 10.0 ms"));
  auto errors = Analyze(spec, &stable, Agg(200, 20, 0.010, 0.020));
  EXPECT_EQ(errors.verdict(), hosting::v1::ANALYSIS_VERDICT_FAILED);
  EXPECT_THAT(errors.reason(), HasSubstr("5xx ratio 10.00%"));
  EXPECT_THAT(errors.reason(), HasSubstr("vs stable"));
  // Compared with a canary's baseline, the reason names it.
  auto against_baseline = Analyze(spec, &stable, Agg(200, 20, 0.010, 0.020), {}, "baseline");
  EXPECT_THAT(against_baseline.reason(), HasSubstr("vs baseline"));
  EXPECT_THAT(against_baseline.reason(), Not(HasSubstr("stable")));
  // Too few samples on either side is never a pass.
  auto few = Analyze(spec, &stable, Agg(50, 0, 0.010, 0.020));
  EXPECT_EQ(few.verdict(), hosting::v1::ANALYSIS_VERDICT_INCONCLUSIVE);
  EXPECT_THAT(few.reason(), HasSubstr("canary 50"));
  const auto quiet_stable = Agg(10, 0, 0.01, 0.02);
  EXPECT_EQ(Analyze(spec, &quiet_stable, Agg(500, 0, 0.01, 0.02)).verdict(),
            hosting::v1::ANALYSIS_VERDICT_INCONCLUSIVE);
  // Absolute bounds work without a stable side (blue-green preview).
  hosting::v1::AnalysisSpec abs;
  abs.mutable_max_p99_latency()->set_nanos(25'000'000);
  abs.set_max_error_ratio(0.05);
  EXPECT_EQ(Analyze(abs, nullptr, Agg(200, 1, 0.01, 0.02)).verdict(),
            hosting::v1::ANALYSIS_VERDICT_PASSED);
  EXPECT_EQ(Analyze(abs, nullptr, Agg(200, 1, 0.01, 0.03)).verdict(),
            hosting::v1::ANALYSIS_VERDICT_FAILED);
  // PromQL checks: over the bound fails; no data is never a pass.
  auto* q = spec.add_promql();
  q->set_name("errors");
  q->set_query("rate(errors{revision=\"{{revision}}\"}[30s])");
  q->set_max_value(0.5);
  auto missing = Analyze(spec, &stable, Agg(200, 1, 0.012, 0.030));
  EXPECT_EQ(missing.verdict(), hosting::v1::ANALYSIS_VERDICT_INCONCLUSIVE);
  EXPECT_THAT(missing.reason(), HasSubstr("no data from PromQL: errors"));
  PromqlResults results;
  results.insert_or_assign(q->query(), 0.2);
  EXPECT_EQ(Analyze(spec, &stable, Agg(200, 1, 0.012, 0.030), results).verdict(),
            hosting::v1::ANALYSIS_VERDICT_PASSED);
  results.insert_or_assign(q->query(), 0.9);
  auto over = Analyze(spec, &stable, Agg(200, 1, 0.012, 0.030), results);
  EXPECT_EQ(over.verdict(), hosting::v1::ANALYSIS_VERDICT_FAILED);
  EXPECT_THAT(over.reason(), HasSubstr("PromQL errors = 0.9 above 0.5"));
}

}  // namespace
}  // namespace hosting::controlplane
