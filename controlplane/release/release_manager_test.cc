#include "controlplane/release/release_manager.h"

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/notification.h"
#include "common/clock.h"
#include "common/proto_time.h"
#include "controlplane/agents/agent_registry.h"
#include "controlplane/testing/fake_control_plane.h"
#include "controlplane/traffic/traffic_router.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace hosting::controlplane {
namespace {

using ::testing::Contains;
using ::testing::HasSubstr;
using Op = FaultStore::Op;

// The ReleaseManager over the fakes: engine, store (with injected faults), no HAProxy and no
// agents (so a running task counts as ready), and a fake clock the test moves.
class ReleaseManagerTest : public ::testing::Test {
 protected:
  ReleaseManagerTest()
      : agents_(AgentRegistry::Options{}, cp_.events, clock_),
        router_(nullptr, cp_.events),
        releases_(cp_.store, cp_.state, agents_, router_, cp_.reconciler, cp_.events,
                  clock_, ReleaseManagerOptions{}) {}

  hosting::v1::StartReleaseRequest Start(const std::string& image) {
    hosting::v1::StartReleaseRequest r;
    r.set_service("web");
    r.set_image(image);
    return r;
  }

  hosting::v1::ReleaseState State(const std::string& id) {
    hosting::v1::GetReleaseRequest get;
    get.set_id(id);
    return releases_.Get(get).value().state();
  }

  // Ticks (and reconciles, as the reconciler's workers would) until the release ends; at most
  // `ticks` rounds of one simulated second.
  hosting::v1::ReleaseState RunToEnd(const std::string& id, int ticks = 200) {
    for (int i = 0; i < ticks && !IsTerminalState(State(id)); ++i) {
      (void)cp_.reconciler.Sync("web");
      releases_.Tick();
      clock_.Advance(absl::Seconds(1));
    }
    return State(id);
  }

  FakeClock clock_;
  FakeControlPlane cp_{clock_};
  AgentRegistry agents_;
  TrafficRouter router_;
  ReleaseManager releases_;
};

// The loop ticks at once when a release is created, not at its next period (an hour here),
// and Stop does not wait out the period either.
TEST_F(ReleaseManagerTest, ANewReleaseWakesTheLoop) {
  ASSERT_TRUE(cp_.Apply("web", "img:1").ok());
  absl::Notification ticked;
  std::atomic<int> ticks{0};
  ReleaseManagerOptions options;
  options.tick = absl::Hours(1);
  options.acting = [&] {
    if (++ticks == 1 && !ticked.HasBeenNotified()) ticked.Notify();
    return false;  // count the tick, change nothing
  };
  ReleaseManager loop(cp_.store, cp_.state, agents_, router_, cp_.reconciler, cp_.events, clock_,
                      options);
  loop.Start();
  ASSERT_TRUE(loop.Start(Start("img:2")).ok());
  EXPECT_TRUE(ticked.WaitForNotificationWithTimeout(absl::Seconds(30)));
  loop.Stop();
  EXPECT_GE(ticks.load(), 1);
}

TEST_F(ReleaseManagerTest, AnApiCallRightAfterATickIsNotHeldByTheMetricsGap) {
  ASSERT_TRUE(cp_.Apply("web", "img:1").ok());
  ASSERT_TRUE(cp_.Apply("api", "img:1").ok());
  absl::Mutex mu;
  int ticks = 0;
  ReleaseManagerOptions options;
  options.tick = absl::Hours(1);
  options.metrics_tick_gap = absl::Hours(1);  // metrics reports could wake it once an hour
  options.acting = [&] {
    absl::MutexLock lock(&mu);
    ++ticks;
    return false;  // count the tick, change nothing
  };
  ReleaseManager loop(cp_.store, cp_.state, agents_, router_, cp_.reconciler, cp_.events, clock_,
                      options);
  loop.Start();
  auto ticked = [&](int n) {
    absl::MutexLock lock(&mu);
    auto reached = [&] { return ticks >= n; };
    return mu.AwaitWithTimeout(absl::Condition(&reached), absl::Seconds(30));
  };
  ASSERT_TRUE(loop.Start(Start("img:2")).ok());
  EXPECT_TRUE(ticked(1));
  // A second release at once after: its tick does not wait out the gap.
  hosting::v1::StartReleaseRequest api = Start("img:2");
  api.set_service("api");
  ASSERT_TRUE(loop.Start(api).ok());
  EXPECT_TRUE(ticked(2));
  loop.Stop();
}

TEST_F(ReleaseManagerTest, BadRequestsAreNamedAndASecondReleaseIsRefused) {
  ASSERT_TRUE(cp_.Apply("web", "img:1").ok());
  hosting::v1::StartReleaseRequest no_image;
  no_image.set_service("web");
  absl::Status st = releases_.Start(no_image).status();
  EXPECT_TRUE(absl::IsInvalidArgument(st));
  EXPECT_THAT(std::string(st.message()), HasSubstr("image"));
  hosting::v1::StartReleaseRequest ghost = Start("img:2");
  ghost.set_service("ghost");
  EXPECT_TRUE(absl::IsNotFound(releases_.Start(ghost).status()));
  EXPECT_TRUE(absl::IsFailedPrecondition(releases_.Start(Start("img:1")).status()));

  absl::StatusOr<hosting::v1::Release> first = releases_.Start(Start("img:2"));
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->id(), "web-1");
  EXPECT_EQ(first->from_revision(), 1);
  EXPECT_EQ(first->to_revision(), 2);
  absl::Status second = releases_.Start(Start("img:3")).status();
  EXPECT_TRUE(absl::IsFailedPrecondition(second));
  EXPECT_THAT(std::string(second.message()), HasSubstr("web-1"));
  // Nor may an apply change what runs meanwhile.
  absl::Status apply = cp_.Apply("web", "img:4");
  EXPECT_TRUE(absl::IsFailedPrecondition(apply));
  EXPECT_THAT(std::string(apply.message()), HasSubstr("release abort web-1"));
}

TEST_F(ReleaseManagerTest, AStartThatCommittedSucceedsWhenPruningFails) {
  ASSERT_TRUE(cp_.Apply("web", "img:1").ok());
  cp_.store.FailNext(Op::kPruneRevisions, absl::InternalError("disk I/O error"));
  absl::StatusOr<hosting::v1::Release> r = releases_.Start(Start("img:2"));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_THAT(cp_.EventTypes(), Contains("release.created"));
  ServiceRecord web = cp_.store.base().GetService("web").value();
  EXPECT_EQ(web.revision, 2);
  EXPECT_EQ(web.rollout.release_id(), "web-1");
}

TEST_F(ReleaseManagerTest, AStartRetriesWhenAnotherWriterWins) {
  ASSERT_TRUE(cp_.Apply("web", "img:1", 3).ok());
  cp_.store.InterleaveBeforeNext(Op::kCreateRelease, [](Store& s) {
    ServiceRecord r = s.GetService("web").value();
    r.spec.set_replicas(5);  // a scale lands between the read and the write
    ASSERT_TRUE(s.PutService(r, r.generation, nullptr).ok());
  });
  absl::StatusOr<hosting::v1::Release> r = releases_.Start(Start("img:2"));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(cp_.store.calls(Op::kCreateRelease), 2);
  ServiceRecord web = cp_.store.base().GetService("web").value();
  EXPECT_EQ(web.spec.replicas(), 5);  // the release works towards the scaled size
  EXPECT_EQ(web.rollout.replicas().at(1), 5);
}

TEST_F(ReleaseManagerTest, ARollingReleaseRunsToTheEndOverTheFakes) {
  ASSERT_TRUE(cp_.Apply("web", "img:1", 3).ok());
  (void)cp_.reconciler.Sync("web");
  absl::StatusOr<hosting::v1::Release> r = releases_.Start(Start("img:2"));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(RunToEnd(r->id()), hosting::v1::RELEASE_STATE_SUCCEEDED);
  ServiceRecord web = cp_.store.base().GetService("web").value();
  EXPECT_EQ(web.revision, 2);
  EXPECT_TRUE(web.rollout.release_id().empty());
  EXPECT_THAT(cp_.EventTypes(), Contains("release.finished"));
}

// A canary with a baseline: two revision numbers (the canary's stored, the baseline's only
// reserved), the baseline's Swarm service beside the canary's, and while the step analyses the
// agents are asked for fast reports (each report then wakes the loop).
TEST_F(ReleaseManagerTest, ACanaryWithABaselineAnalysesOnFastReports) {
  ASSERT_TRUE(cp_.Apply("web", "img:1", 2).ok());
  (void)cp_.reconciler.Sync("web");
  std::vector<absl::Duration> asked;
  releases_.SetReportPace(
      [&](absl::Duration interval, absl::Duration valid_for) { asked.push_back(interval); });
  hosting::v1::StartReleaseRequest req = Start("img:2");
  auto* policy = req.mutable_policy();
  policy->set_strategy(hosting::v1::RELEASE_STRATEGY_CANARY);
  policy->mutable_canary()->set_baseline(true);
  policy->mutable_canary()->add_steps()->set_set_weight(50);
  auto* analysis = policy->mutable_canary()->add_steps()->mutable_analysis();
  *analysis->mutable_duration() = ToDuration(absl::Seconds(5));
  analysis->set_no_data(hosting::v1::NO_DATA_POLICY_PASS);  // no agents here: no samples
  absl::StatusOr<hosting::v1::Release> r = releases_.Start(req);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->to_revision(), 2);
  EXPECT_EQ(r->baseline_revision(), 3);
  bool baseline_ran = false;
  for (int i = 0; i < 200 && !IsTerminalState(State(r->id())); ++i) {
    (void)cp_.reconciler.Sync("web");
    releases_.Tick();
    baseline_ran |= cp_.docker.InspectService("web-r3").ok();
    clock_.Advance(absl::Seconds(1));
  }
  EXPECT_EQ(State(r->id()), hosting::v1::RELEASE_STATE_SUCCEEDED);
  EXPECT_TRUE(baseline_ran);
  (void)cp_.reconciler.Sync("web");
  EXPECT_FALSE(cp_.docker.InspectService("web-r3").ok()) << "the baseline goes with the release";
  ASSERT_FALSE(asked.empty());
  EXPECT_EQ(asked.front(), ReleaseManager::kAnalysisReportInterval);
  // The next release is revision 4: the baseline's number is never given out again.
  absl::StatusOr<hosting::v1::Release> next = releases_.Start(Start("img:3"));
  ASSERT_TRUE(next.ok()) << next.status();
  EXPECT_EQ(next->to_revision(), 4);
}

// A tick waits for the engine; the API's calls must not wait for the tick.
TEST_F(ReleaseManagerTest, OperatorCallsDoNotWaitBehindASlowTick) {
  ASSERT_TRUE(cp_.Apply("web", "img:1", 2).ok());
  (void)cp_.reconciler.Sync("web");
  absl::StatusOr<hosting::v1::Release> r = releases_.Start(Start("img:2"));
  ASSERT_TRUE(r.ok()) << r.status();
  releases_.Tick();  // the release is under way
  absl::Notification in_tick, release_tick;
  cp_.docker.SetListTasksHook([&] {
    if (!in_tick.HasBeenNotified()) in_tick.Notify();
    release_tick.WaitForNotificationWithTimeout(absl::Seconds(30));
  });
  std::thread tick([&] { releases_.Tick(); });
  ASSERT_TRUE(in_tick.WaitForNotificationWithTimeout(absl::Seconds(10)));

  absl::Notification paused;
  absl::StatusOr<hosting::v1::Release> pause;
  std::thread caller([&] {
    pause = releases_.Pause(r->id());
    paused.Notify();
  });
  // Bounded only to fail instead of hanging: before the change this waited for the tick.
  const bool answered = paused.WaitForNotificationWithTimeout(absl::Seconds(10));
  release_tick.Notify();
  caller.join();
  tick.join();
  cp_.docker.SetListTasksHook(nullptr);
  ASSERT_TRUE(answered) << "Pause waited for the tick";
  ASSERT_TRUE(pause.ok()) << pause.status();
  // The tick that read the release before the pause did not overwrite it.
  EXPECT_EQ(State(r->id()), hosting::v1::RELEASE_STATE_PAUSED);
}

// Prometheus that answers in 10 s: the tick (which also keeps HAProxy in line for every
// service) must not wait for it.
TEST_F(ReleaseManagerTest, ASlowPromqlSourceNeverHoldsUpTheTick) {
  class SlowQuery final : public MetricsQuery {
   public:
    absl::StatusOr<double> Instant(const std::string&) override {
      release.WaitForNotificationWithTimeout(absl::Seconds(10));
      return 0.0;
    }
    absl::Notification release;
  } slow;
  releases_.SetMetricsQuery(&slow);
  ASSERT_TRUE(cp_.Apply("web", "img:1", 2).ok());
  (void)cp_.reconciler.Sync("web");
  hosting::v1::StartReleaseRequest req = Start("img:2");
  req.mutable_policy()->set_strategy(hosting::v1::RELEASE_STRATEGY_CANARY);
  auto* canary = req.mutable_policy()->mutable_canary();
  canary->add_steps()->set_set_weight(50);
  auto* check = canary->mutable_background_analysis()->add_promql();
  check->set_name("errors");
  check->set_query("sum(rate(errors{revision=\"{{revision}}\"}[1m]))");
  check->set_max_value(1);
  absl::StatusOr<hosting::v1::Release> r = releases_.Start(req);
  ASSERT_TRUE(r.ok()) << r.status();
  absl::Notification ticked;
  std::thread tick([&] {
    releases_.Tick();
    releases_.Tick();
    ticked.Notify();
  });
  const bool quick = ticked.WaitForNotificationWithTimeout(absl::Seconds(5));
  slow.release.Notify();
  tick.join();
  EXPECT_TRUE(quick) << "the tick waited for the PromQL source";
  releases_.SetMetricsQuery(nullptr);
}

TEST_F(ReleaseManagerTest, TheNewImageIsPrePulledBeforeTheFirstBatch) {
  ASSERT_TRUE(cp_.Apply("web", "img:1", 2).ok());
  (void)cp_.reconciler.Sync("web");
  std::vector<std::string> pulled;
  std::function<void(std::map<std::string, std::string>)> finish;
  releases_.SetImagePuller(
      [&](const std::string& image, std::function<void(std::map<std::string, std::string>)> done) {
        pulled.push_back(image);
        finish = std::move(done);
      });
  absl::StatusOr<hosting::v1::Release> r = releases_.Start(Start("img:2"));
  ASSERT_TRUE(r.ok()) << r.status();
  for (int i = 0; i < 3; ++i) {
    releases_.Tick();
    clock_.Advance(absl::Seconds(1));
  }
  EXPECT_EQ(pulled, std::vector<std::string>{"img:2"});  // once, not per tick
  // Until the pull answers, no new task is asked for.
  EXPECT_EQ(cp_.store.base().GetService("web")->rollout.replicas().at(2), 0);
  finish({{"n1", ""}, {"n2", "manifest unknown"}});
  EXPECT_THAT(cp_.EventTypes(), Contains("release.pre_pulled"));
  EXPECT_EQ(RunToEnd(r->id()), hosting::v1::RELEASE_STATE_SUCCEEDED);
}

TEST_F(ReleaseManagerTest, AWarmRevisionIsRemovedWhenItsTimeIsUp) {
  ASSERT_TRUE(cp_.Apply("web", "img:1", 2).ok());
  ASSERT_TRUE(cp_.Apply("web", "img:2", 2).ok());
  // As a finished blue-green release leaves it: revision 1 kept warm for a minute.
  ServiceRecord web = cp_.store.base().GetService("web").value();
  (*web.rollout.mutable_replicas())[1] = 2;
  (*web.rollout.mutable_replicas())[2] = 2;
  (*web.rollout.mutable_weights())[2] = 100;
  web.rollout.set_warm_revision(1);
  *web.rollout.mutable_warm_until() = ToTimestamp(clock_.Now() + absl::Minutes(1));
  ASSERT_TRUE(cp_.store.base().PutService(web, web.generation, nullptr).ok());
  releases_.Tick();
  EXPECT_EQ(cp_.store.base().GetService("web")->rollout.warm_revision(), 1);
  clock_.Advance(absl::Minutes(1) + absl::Seconds(1));
  releases_.Tick();
  ServiceRecord after = cp_.store.base().GetService("web").value();
  EXPECT_EQ(after.rollout.warm_revision(), 0);
  EXPECT_TRUE(after.rollout.replicas().empty());
  EXPECT_THAT(cp_.EventTypes(), Contains("release.warm_expired"));
}

TEST_F(ReleaseManagerTest, RollbackNeedsAnEarlierRevision) {
  ASSERT_TRUE(cp_.Apply("web", "img:1").ok());
  hosting::v1::RollbackServiceRequest rb;
  rb.set_service("web");
  absl::Status st = releases_.Rollback(rb).status();
  EXPECT_TRUE(absl::IsFailedPrecondition(st));
  EXPECT_THAT(std::string(st.message()), HasSubstr("no revision before 1"));
  rb.set_to_revision(7);
  EXPECT_TRUE(absl::IsNotFound(releases_.Rollback(rb).status()));
}

}  // namespace
}  // namespace hosting::controlplane
