#include "controlplane/autoscale/autoscale_manager.h"

#include <cmath>
#include <functional>
#include <map>

#include "common/fake_docker_client.h"
#include "controlplane/telemetry/metrics.h"
#include "controlplane/reconcile/reconciler.h"
#include "controlplane/store/sqlite_store.h"
#include "controlplane/testing/fake_load_balancer.h"
#include "controlplane/testing/fake_metrics_query.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/time_util.h"
#include "gtest/gtest.h"

namespace hosting::controlplane {
namespace {

using google::protobuf::util::TimeUtil;
using ::testing::HasSubstr;

// The manager over an in-memory store, the fake Docker engine, the agent registry fed by hand
// and a fake PromQL source, on a fake clock.
class AutoscaleManagerTest : public ::testing::Test {
 protected:
  AutoscaleManagerTest()
      : store_(SqliteStore::Open(":memory:").value()),
        events_(*store_, clock_),
        reconciler_(*store_, docker_, events_, metrics_, clock_, ReconcilerOptions{}),
        state_(*store_, reconciler_, events_, clock_),
        services_(*store_, state_, reconciler_, clock_),
        agents_(AgentRegistry::Options{}, events_, clock_),
        manager_(*store_, state_, services_, agents_, events_, clock_) {
    hosting::v1::ApplyServiceRequest req;
    req.mutable_spec()->set_name("web");
    req.mutable_spec()->set_image("img:1");
    req.mutable_spec()->set_replicas(2);
    EXPECT_TRUE(services_.Apply(req).ok());
    hosting::v1::Register reg;
    reg.set_node_id("n1");
    EXPECT_TRUE(agents_.Connect(reg).ok());
    manager_.SetMetricsQuery(&prometheus_);
  }

  static hosting::v1::SetPolicyRequest Policy(
      double target, hosting::v1::MetricKind kind = hosting::v1::METRIC_KIND_REQUESTS_PER_SECOND) {
    hosting::v1::SetPolicyRequest req;
    auto* p = req.mutable_policy();
    p->set_service("web");
    p->set_min_replicas(1);
    p->set_max_replicas(10);
    auto* m = p->add_metrics();
    m->set_kind(kind);
    m->set_target(target);
    *p->mutable_evaluation_interval() = TimeUtil::SecondsToDuration(2);
    return req;
  }

  // `n` healthy tasks of revision 1, each having served `rps` for the last 10 s; `fill` sets
  // what else each report carries.
  void Serve(int n, double rps,
             const std::function<void(hosting::v1::TaskMetrics&)>& fill = nullptr) {
    Healthy(n);
    for (int s = 0; s <= 10; ++s) {
      hosting::v1::MetricsReport report;
      for (int i = 0; i < n; ++i) {
        auto* m = report.add_tasks();
        m->set_task_id("task" + std::to_string(i));
        m->set_requests_total(requests_[i] += rps);
        if (fill) fill(*m);
        *m->mutable_scraped_at() =
            TimeUtil::NanosecondsToTimestamp(absl::ToUnixNanos(clock_.Now()));
      }
      agents_.Metrics("n1", report);
      clock_.Advance(absl::Seconds(1));
    }
  }

  // The node runs `n` healthy tasks of revision 1 (task0..), healthy for a minute.
  void Healthy(int n) {
    hosting::v1::TaskSnapshot snap;
    for (int i = 0; i < n; ++i) {
      auto* t = snap.add_tasks();
      t->set_task_id("task" + std::to_string(i));
      t->set_service("web");
      t->set_revision(1);
      t->set_probe_health(hosting::v1::TASK_HEALTH_HEALTHY);
      *t->mutable_changed_at() = TimeUtil::NanosecondsToTimestamp(
          absl::ToUnixNanos(clock_.Now() - absl::Minutes(1)));
    }
    ASSERT_TRUE(agents_.Snapshot("n1", snap).ok());
  }

  // `seconds` more reports of tasks 0..n-1, each serving `rps`, one a second.
  void Report(int n, double rps, int seconds) {
    for (int s = 0; s < seconds; ++s) {
      clock_.Advance(absl::Seconds(1));
      hosting::v1::MetricsReport report;
      for (int i = 0; i < n; ++i) {
        auto* m = report.add_tasks();
        m->set_task_id("task" + std::to_string(i));
        m->set_requests_total(requests_[i] += rps);
        *m->mutable_scraped_at() =
            TimeUtil::NanosecondsToTimestamp(absl::ToUnixNanos(clock_.Now()));
      }
      agents_.Metrics("n1", report);
    }
  }

  int Replicas() { return store_->GetService("web")->spec.replicas(); }

  FakeClock clock_;
  docker::FakeDockerClient docker_;
  HostdMetrics metrics_;
  std::unique_ptr<Store> store_;
  EventLog events_;
  Reconciler reconciler_;
  DesiredState state_;
  ServiceManager services_;
  AgentRegistry agents_;
  FakeMetricsQuery prometheus_;
  AutoscaleManager manager_;
  std::map<int, double> requests_;
};

TEST_F(AutoscaleManagerTest, BadPoliciesAndUnknownServicesAreNamed) {
  hosting::v1::SetPolicyRequest bad = Policy(0);
  bad.mutable_policy()->set_max_replicas(0);
  absl::Status st = manager_.SetPolicy(bad).status();
  EXPECT_TRUE(absl::IsInvalidArgument(st));
  EXPECT_THAT(std::string(st.message()), HasSubstr("policy.max_replicas"));
  EXPECT_THAT(std::string(st.message()), HasSubstr("policy.metrics[0].target"));
  hosting::v1::SetPolicyRequest ghost = Policy(50);
  ghost.mutable_policy()->set_service("ghost");
  EXPECT_TRUE(absl::IsNotFound(manager_.SetPolicy(ghost).status()));
  absl::Status none = manager_.GetPolicy("web").status();
  EXPECT_TRUE(absl::IsNotFound(none));
  EXPECT_THAT(std::string(none.message()), HasSubstr("hostctl autoscale set web"));
  EXPECT_TRUE(absl::IsNotFound(manager_.DeletePolicy("web")));
}

TEST_F(AutoscaleManagerTest, ScalesOnTheAgentsMetricsAndRecordsTheDecision) {
  ASSERT_TRUE(manager_.SetPolicy(Policy(50)).ok());
  EXPECT_THAT(manager_.GetStatus("web")->message(), HasSubstr("not evaluated yet"));
  Serve(2, 150);  // 150 rps per task, 3x the target
  manager_.Tick();
  EXPECT_EQ(Replicas(), 6);
  hosting::v1::AutoscalingStatus s = manager_.GetStatus("web").value();
  EXPECT_EQ(s.current_replicas(), 2);
  EXPECT_EQ(s.desired_replicas(), 6);
  ASSERT_EQ(s.recommendations_size(), 1);
  EXPECT_NEAR(s.recommendations(0).value(), 150, 1);
  ASSERT_EQ(s.history_size(), 1);
  EXPECT_EQ(s.history(0).to_replicas(), 6);
  std::vector<hosting::v1::Event> events = store_->ListEvents(0, 1000).value();
  EXPECT_EQ(events.back().type(), "autoscale.scaled");
  EXPECT_EQ(events.back().attributes().at("direction"), "up");
  EXPECT_EQ(events.back().attributes().at("to"), "6");
  // /metrics: the decision and the metric.
  AutoscaleMetricsCollector collector(manager_);
  bool saw_decision = false;
  for (const auto& f : collector.Collect()) {
    if (f.name == "hostd_autoscale_decisions_total") saw_decision = !f.metric.empty();
  }
  EXPECT_TRUE(saw_decision);

  // Not due again before its interval; the policy deleted, the size stays.
  manager_.Tick();
  EXPECT_EQ(manager_.GetStatus("web")->history_size(), 1);
  ASSERT_TRUE(manager_.DeletePolicy("web").ok());
  EXPECT_EQ(Replicas(), 6);
  // Its decision counts end with the policy: nothing is kept for services that do not
  // autoscale (they once were, forever).
  manager_.Tick();
  EXPECT_TRUE(manager_.DecisionCounts().empty());
}

// Between evaluations, every tick looks at the last 3 s for a scale-up only: a load step is
// acted on in seconds, on its full size, while the evaluation's 10 s window still averages it
// away; a drop is left to the evaluations (and their scale-down window).
TEST_F(AutoscaleManagerTest, AStepIsScaledUpOnTheShortWindowBetweenEvaluations) {
  hosting::v1::SetPolicyRequest req = Policy(50);
  *req.mutable_policy()->mutable_evaluation_interval() = TimeUtil::SecondsToDuration(10);
  ASSERT_TRUE(manager_.SetPolicy(req).ok());
  EXPECT_EQ(manager_.GetPolicy("web")->scale_up_metric_window().seconds(), 3);  // the default
  Serve(2, 40);  // 80 % of the target
  manager_.Tick();
  EXPECT_EQ(Replicas(), 2);
  Report(2, 40, 1);
  manager_.Tick();  // a check on the short window: nothing to raise
  EXPECT_EQ(Replicas(), 2);
  EXPECT_EQ(manager_.GetStatus("web")->history_size(), 0);
  Report(2, 150, 3);  // a step to 3x the target
  manager_.Tick();
  EXPECT_EQ(Replicas(), 6);  // ceil(2 x 150 / 50), not the 10 s window's 3
  hosting::v1::AutoscalingStatus s = manager_.GetStatus("web").value();
  ASSERT_EQ(s.history_size(), 1);
  EXPECT_THAT(s.history(0).reason(), HasSubstr("scale up 2 -> 6"));
  EXPECT_THAT(s.history(0).reason(), HasSubstr("(the last 3s of metrics)"));
  // The load drops at once: the short window never scales down.
  Report(2, 5, 4);
  manager_.Tick();
  EXPECT_EQ(Replicas(), 6);

  // A window as long as the interval: no checks between evaluations.
  *req.mutable_policy()->mutable_scale_up_metric_window() = TimeUtil::SecondsToDuration(10);
  ASSERT_TRUE(manager_.SetPolicy(req).ok());
  manager_.Tick();  // the new policy's first evaluation
  const int after = Replicas();
  Report(2, 500, 3);
  manager_.Tick();
  EXPECT_EQ(Replicas(), after);
}

// An autoscaled service's image is pulled on the nodes ahead of its scale-ups, once per image.
TEST_F(AutoscaleManagerTest, TheImageIsPulledAheadOfScaleUpsOncePerImage) {
  std::vector<std::string> pulled;
  manager_.SetImagePuller(
      [&](const std::string& image, std::function<void(std::map<std::string, std::string>)> done) {
        pulled.push_back(image);
        done({{"n1", ""}});
      });
  manager_.Tick();
  EXPECT_TRUE(pulled.empty());  // no policy yet
  ASSERT_TRUE(manager_.SetPolicy(Policy(50)).ok());
  manager_.Tick();
  manager_.Tick();
  EXPECT_THAT(pulled, ::testing::ElementsAre("img:1"));
  hosting::v1::ApplyServiceRequest req;
  req.mutable_spec()->set_name("web");
  req.mutable_spec()->set_image("img:2");
  req.mutable_spec()->set_replicas(2);
  ASSERT_TRUE(services_.Apply(req).ok());
  manager_.Tick();
  EXPECT_THAT(pulled, ::testing::ElementsAre("img:1", "img:2"));
}

// scale_to_zero: idle for the whole scale-down window, the service goes to zero; a request
// held at HAProxy for it wakes it (one task), and it stays up a whole window after waking.
TEST_F(AutoscaleManagerTest, AnIdleServiceSleepsAtZeroAndAHeldRequestWakesIt) {
  FakeLoadBalancer lb;
  manager_.SetLoadBalancer(&lb);
  hosting::v1::SetPolicyRequest req = Policy(50);
  req.mutable_policy()->set_scale_to_zero(true);
  *req.mutable_policy()->mutable_scale_down_stabilization() = TimeUtil::SecondsToDuration(10);
  ASSERT_TRUE(manager_.SetPolicy(req).ok());
  Serve(2, 0);  // no request for 10 s
  manager_.Tick();
  EXPECT_EQ(Replicas(), 2);  // the new policy waits its scale-down window first
  Report(2, 0, 11);
  manager_.Tick();
  EXPECT_EQ(Replicas(), 0);
  ASSERT_TRUE(agents_.Snapshot("n1", hosting::v1::TaskSnapshot()).ok());  // its tasks stopped
  Report(0, 0, 3);
  manager_.Tick();
  EXPECT_EQ(Replicas(), 0);  // nothing held: asleep

  lb.SetHeld("web", HeldRequests{1, 1});
  manager_.Tick();
  EXPECT_EQ(Replicas(), 1);
  hosting::v1::AutoscalingStatus s = manager_.GetStatus("web").value();
  ASSERT_GE(s.history_size(), 2);
  EXPECT_THAT(s.history(0).reason(),  // the newest
              HasSubstr("wake from zero 0 -> 1: 1 request(s) held at HAProxy for 'web'"));
  std::vector<hosting::v1::Event> events = store_->ListEvents(0, 1000).value();
  EXPECT_EQ(events.back().type(), "autoscale.scaled");

  // Awake, idle again: a whole window before it may sleep, then it does.
  lb.SetHeld("web", HeldRequests{0, 1});  // the held request went on to the task
  Healthy(1);
  Report(1, 0, 3);
  manager_.Tick();
  EXPECT_EQ(Replicas(), 1);
  Report(1, 0, 11);
  manager_.Tick();
  EXPECT_EQ(Replicas(), 0);
  // A count seen before it slept is no new request; a new one wakes it again.
  Report(0, 0, 3);
  manager_.Tick();
  EXPECT_EQ(Replicas(), 0);
  lb.SetHeld("web", HeldRequests{0, 2});  // held, then given up on between two ticks
  manager_.Tick();
  EXPECT_EQ(Replicas(), 1);
}

// Each built-in metric read from what the agents report, driving the size: memory against the
// task's limit, in-flight requests per task, and the service's p95 from the tasks' histograms.
TEST_F(AutoscaleManagerTest, ScalesOnMemoryAgainstTheTasksLimit) {
  ASSERT_TRUE(manager_.SetPolicy(Policy(30, hosting::v1::METRIC_KIND_MEMORY_UTILIZATION)).ok());
  Serve(2, 10, [](hosting::v1::TaskMetrics& m) {
    m.set_memory_bytes(450 << 20);
    m.set_memory_limit_bytes(500 << 20);  // 90 %, three times the target
  });
  manager_.Tick();
  hosting::v1::AutoscalingStatus s = manager_.GetStatus("web").value();
  ASSERT_EQ(s.recommendations_size(), 1);
  EXPECT_NEAR(s.recommendations(0).value(), 90, 0.5);
  EXPECT_EQ(Replicas(), 6);
}

TEST_F(AutoscaleManagerTest, ScalesOnInFlightRequestsPerTask) {
  ASSERT_TRUE(manager_.SetPolicy(Policy(4, hosting::v1::METRIC_KIND_IN_FLIGHT_REQUESTS)).ok());
  Serve(2, 10, [](hosting::v1::TaskMetrics& m) { m.set_in_flight(12); });
  manager_.Tick();
  hosting::v1::AutoscalingStatus s = manager_.GetStatus("web").value();
  ASSERT_EQ(s.recommendations_size(), 1);
  EXPECT_NEAR(s.recommendations(0).value(), 12, 0.5);
  EXPECT_EQ(Replicas(), 6);
}

TEST_F(AutoscaleManagerTest, ScalesOnTheServicesP95Latency) {
  ASSERT_TRUE(manager_.SetPolicy(Policy(250, hosting::v1::METRIC_KIND_LATENCY_P95_MS)).ok());
  // Every request took between 100 and 500 ms: the p95 interpolates to 480 ms.
  std::map<int, double> slow;
  int task = 0;
  Serve(2, 10, [&](hosting::v1::TaskMetrics& m) {
    const double total = slow[task++ % 2] += 10;
    m.add_latency_bucket_bounds(0.1);
    m.add_latency_bucket_counts(0);
    m.add_latency_bucket_bounds(0.5);
    m.add_latency_bucket_counts(total);
    m.add_latency_bucket_bounds(INFINITY);
    m.add_latency_bucket_counts(total);
  });
  manager_.Tick();
  hosting::v1::AutoscalingStatus s = manager_.GetStatus("web").value();
  ASSERT_EQ(s.recommendations_size(), 1);
  EXPECT_NEAR(s.recommendations(0).value(), 480, 25);
  EXPECT_EQ(Replicas(), 4);  // ceil(2 x 480 / 250)
}

TEST_F(AutoscaleManagerTest, APromqlMetricWithoutASourceHoldsScaleDownAndSaysWhy) {
  hosting::v1::SetPolicyRequest req = Policy(50);
  auto* q = req.mutable_policy()->add_metrics();
  q->set_kind(hosting::v1::METRIC_KIND_PROMQL);
  q->set_promql("sum(queue{service=\"{{service}}\"})");
  q->set_target(10);
  *req.mutable_policy()->mutable_scale_down_stabilization() = TimeUtil::SecondsToDuration(0);
  ASSERT_TRUE(manager_.SetPolicy(req).ok());
  prometheus_.Set("sum(queue{service=\"web\"})", absl::UnavailableError("connection refused"));
  clock_.Advance(absl::Minutes(10));  // past the seeded window
  Serve(2, 5);  // rps alone would take the service to 1
  manager_.Tick();
  EXPECT_EQ(Replicas(), 2);
  hosting::v1::AutoscalingStatus s = manager_.GetStatus("web").value();
  EXPECT_THAT(s.message(), HasSubstr("not scaling down"));
  EXPECT_THAT(s.message(), HasSubstr("connection refused"));
  EXPECT_TRUE(s.recommendations(1).missing());
}

// Two tasks report little traffic; a third is on a node whose agent is lost. The lost one may
// well be serving, so it counts at the target on a scale-down: (20 + 20 + 50) / 3 per task
// makes 2 tasks, where the two reporting ones alone (20 + 20) / 2 would make 1.
TEST_F(AutoscaleManagerTest, ALostNodesTaskCountsAtTheTargetOnAScaleDown) {
  hosting::v1::SetPolicyRequest policy = Policy(50);
  *policy.mutable_policy()->mutable_scale_down_stabilization() = TimeUtil::SecondsToDuration(0);
  ASSERT_TRUE(manager_.SetPolicy(policy).ok());
  ASSERT_TRUE(services_.Scale([] {
                hosting::v1::ScaleServiceRequest r;
                r.set_name("web");
                r.set_replicas(3);
                r.set_force(true);
                return r;
              }()).ok());
  hosting::v1::Register reg;
  reg.set_node_id("n2");
  const int64_t n2 = agents_.Connect(reg).value();
  hosting::v1::TaskReport lost;
  lost.set_task_id("task-on-n2");
  lost.set_service("web");
  lost.set_revision(1);
  lost.set_probe_health(hosting::v1::TASK_HEALTH_HEALTHY);
  agents_.TaskChanged("n2", lost);
  agents_.Disconnect("n2", n2);
  clock_.Advance(absl::Minutes(6));  // past the new policy's first window
  Serve(2, 20);                      // 40 % of the target on the two reporting tasks
  manager_.Tick();
  EXPECT_EQ(Replicas(), 2) << manager_.GetStatus("web")->message();
  EXPECT_THAT(manager_.GetStatus("web")->message(),
              HasSubstr("1 ready task(s) without data counted at the target"));
}

}  // namespace
}  // namespace hosting::controlplane
