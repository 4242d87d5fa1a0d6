#include "controlplane/autoscale/autoscaler.h"

#include <random>

#include "controlplane/autoscale/forecast_replay.h"
#include "controlplane/spec/validation.h"
#include "google/protobuf/util/time_util.h"
#include "gtest/gtest.h"

namespace hosting::controlplane {
namespace {

using google::protobuf::util::TimeUtil;
using hosting::v1::AutoscalingPolicy;

AutoscalingPolicy RpsPolicy(double target, int min = 1, int max = 20) {
  AutoscalingPolicy p;
  p.set_service("web");
  p.set_min_replicas(min);
  p.set_max_replicas(max);
  auto* m = p.add_metrics();
  m->set_kind(hosting::v1::METRIC_KIND_REQUESTS_PER_SECOND);
  m->set_target(target);
  ApplyAutoscalingDefaults(p);
  return p;
}

// `n` ready tasks sharing `total_rps` evenly.
std::vector<TaskSample> Tasks(int n, double total_rps) {
  std::vector<TaskSample> out;
  for (int i = 0; i < n; ++i) {
    TaskSample t;
    t.id = "t" + std::to_string(i);
    t.ready = true;
    t.rps = total_rps / n;
    out.push_back(t);
  }
  return out;
}

// A service whose tasks share the load evenly and become ready `startup` after a scale-up,
// driven by an autoscaler every `interval`.
class Sim {
 public:
  Sim(AutoscalingPolicy policy, int replicas, absl::Duration startup = absl::Seconds(5))
      : policy_(std::move(policy)), replicas_(replicas), ready_(replicas), startup_(startup) {}

  // Advances to `now` with `total_rps` offered; returns the evaluation.
  AutoscaleResult Step(double total_rps) {
    now_ += absl::ToInt64Seconds(FromDur(policy_.evaluation_interval())) * absl::Seconds(1);
    // Tasks started more than `startup` ago are ready; removed ones go at once.
    while (!pending_.empty() && pending_.front() <= now_) {
      pending_.erase(pending_.begin());
      ++ready_;
    }
    ready_ = std::min(ready_, replicas_);
    AutoscaleInput in;
    in.now = now_;
    in.current_replicas = replicas_;
    in.tasks = Tasks(ready_, total_rps);
    for (int i = ready_; i < replicas_; ++i) in.tasks.push_back(TaskSample{"new", false});
    AutoscaleResult r = a_.Evaluate(policy_, in);
    if (r.desired != replicas_) {
      a_.Scaled(now_, replicas_, r.desired);
      ++changes_;
      for (int i = replicas_; i < r.desired; ++i) pending_.push_back(now_ + startup_);
      replicas_ = r.desired;
    }
    return r;
  }
  int replicas() const { return replicas_; }
  int ready() const { return ready_; }
  int changes() const { return changes_; }
  absl::Time now() const { return now_; }
  Autoscaler& autoscaler() { return a_; }

 private:
  static absl::Duration FromDur(const google::protobuf::Duration& d) {
    return absl::Nanoseconds(TimeUtil::DurationToNanoseconds(d));
  }
  AutoscalingPolicy policy_;
  Autoscaler a_;
  int replicas_, ready_;
  absl::Duration startup_;
  std::vector<absl::Time> pending_;
  absl::Time now_ = absl::FromUnixSeconds(1'000'000);
  int changes_ = 0;
};

TEST(AutoscalerTest, ScalesUpToTheNeededSizeInOneStep) {
  Sim sim(RpsPolicy(50), 2);
  sim.Step(100);  // 50 per task: on target
  EXPECT_EQ(sim.replicas(), 2);
  AutoscaleResult r = sim.Step(500);  // 5x
  EXPECT_EQ(r.desired, 10) << r.reason;
  EXPECT_NE(r.reason.find("scale up 2 -> 10"), std::string::npos) << r.reason;
  ASSERT_EQ(r.recommendations.size(), 1u);
  EXPECT_DOUBLE_EQ(r.recommendations[0].value(), 250);
  EXPECT_EQ(r.recommendations[0].recommended_replicas(), 10);
}

TEST(AutoscalerTest, NothingMovesWithinTheTolerance) {
  Sim sim(RpsPolicy(50), 4);
  for (double total : {210.0, 190.0, 219.0, 181.0}) {  // within 10 % of 200
    AutoscaleResult r = sim.Step(total);
    EXPECT_EQ(r.desired, 4) << total;
    EXPECT_NE(r.reason.find("within tolerance"), std::string::npos) << r.reason;
  }
  EXPECT_EQ(sim.Step(230).desired, 5);  // 15 % over
}

TEST(AutoscalerTest, ScaleDownWaitsForItsStabilizationWindow) {
  AutoscalingPolicy p = RpsPolicy(50);
  *p.mutable_scale_down_stabilization() = TimeUtil::SecondsToDuration(60);
  Sim sim(p, 4);
  sim.Step(200);
  absl::Time drop = sim.now();
  AutoscaleResult r;
  while (sim.replicas() == 4) {
    r = sim.Step(50);
    if (sim.replicas() == 4) {
      EXPECT_NE(r.reason.find("held by the 1m stabilization window"), std::string::npos)
          << r.reason;
    }
  }
  EXPECT_EQ(sim.replicas(), 1);
  // The last on-target recommendation (4) left the window after 60 s.
  EXPECT_GE(sim.now() - drop, absl::Seconds(60));
  EXPECT_LE(sim.now() - drop, absl::Seconds(65));
}

TEST(AutoscalerTest, ASeededStartWaitsAWholeWindowBeforeScalingDown) {
  // hostd restarted (or the policy is new): no history, yet no scale-down for one window.
  AutoscalingPolicy p = RpsPolicy(50);
  *p.mutable_scale_down_stabilization() = TimeUtil::SecondsToDuration(60);
  Sim sim(p, 4);
  sim.autoscaler().Seed(sim.now(), 4);
  const absl::Time start = sim.now();
  while (sim.replicas() == 4) sim.Step(50);
  EXPECT_EQ(sim.replicas(), 1);
  EXPECT_GE(sim.now() - start, absl::Seconds(60));
  // A scale-up is not held by the seed.
  Sim up(p, 2);
  up.autoscaler().Seed(up.now(), 2);
  EXPECT_EQ(up.Step(400).desired, 8);
}

TEST(AutoscalerTest, ScaleUpWindowTakesTheLowestRecommendation) {
  AutoscalingPolicy p = RpsPolicy(50);
  *p.mutable_scale_up_stabilization() = TimeUtil::SecondsToDuration(10);
  Sim sim(p, 2);
  sim.Step(100);
  sim.Step(100);
  AutoscaleResult r = sim.Step(400);  // a spike: 8 wanted, but the window still holds 2
  EXPECT_EQ(r.desired, 2);
  EXPECT_NE(r.reason.find("scale-up to 8 held"), std::string::npos) << r.reason;
  // Five seconds on, the last 2 is 10 s old and out of the window.
  sim.Step(400);
  EXPECT_EQ(sim.replicas(), 8);
}

TEST(AutoscalerTest, RatePoliciesLimitEachPeriod) {
  AutoscalingPolicy p = RpsPolicy(10, 1, 100);
  p.mutable_scale_up_rate()->set_tasks(4);
  p.mutable_scale_up_rate()->set_percent(100);
  *p.mutable_scale_up_rate()->mutable_period() = TimeUtil::SecondsToDuration(15);
  Sim sim(p, 2, absl::Seconds(1));
  AutoscaleResult r = sim.Step(400);  // wants 40
  // max(2 + 4, 2 x 2) = 6
  EXPECT_EQ(r.desired, 6) << r.reason;
  EXPECT_NE(r.reason.find("limited to 6 by the rate policy (+4 tasks or 100% per 15s)"),
            std::string::npos)
      << r.reason;
  EXPECT_EQ(sim.Step(400).desired, 6);  // same period: nothing more
  EXPECT_EQ(sim.Step(400).desired, 6);
  EXPECT_EQ(sim.Step(400).desired, 12);  // a new period starts from 6: max(10, 12)

  p.mutable_scale_up_rate()->set_select("min");
  Sim strict(p, 2, absl::Seconds(1));
  EXPECT_EQ(strict.Step(400).desired, 4);  // min(6, 4)
}

TEST(AutoscalerTest, ScaleDownRateLimit) {
  AutoscalingPolicy p = RpsPolicy(10, 1, 100);
  *p.mutable_scale_down_stabilization() = TimeUtil::SecondsToDuration(0);
  p.mutable_scale_down_rate()->set_percent(50);
  *p.mutable_scale_down_rate()->mutable_period() = TimeUtil::SecondsToDuration(60);
  Sim sim(p, 20);
  EXPECT_EQ(sim.Step(10).desired, 10);  // -50 %
  EXPECT_EQ(sim.Step(10).desired, 10);
}

TEST(AutoscalerTest, SeveralMetricsTheLargestWins) {
  AutoscalingPolicy p = RpsPolicy(50);
  auto* cpu = p.add_metrics();
  cpu->set_kind(hosting::v1::METRIC_KIND_CPU_UTILIZATION);
  cpu->set_target(60);
  Autoscaler a;
  AutoscaleInput in;
  in.now = absl::Now();
  in.current_replicas = 4;
  in.tasks = Tasks(4, 200);  // rps on target
  for (auto& t : in.tasks) t.cpu_percent = 90;  // cpu 1.5x
  AutoscaleResult r = a.Evaluate(p, in);
  EXPECT_EQ(r.desired, 6) << r.reason;
  ASSERT_EQ(r.recommendations.size(), 2u);
  EXPECT_EQ(r.recommendations[0].recommended_replicas(), 4);
  EXPECT_EQ(r.recommendations[1].recommended_replicas(), 6);
  EXPECT_NE(r.reason.find("cpu 90 vs target 60 -> 6"), std::string::npos) << r.reason;
}

TEST(AutoscalerTest, MissingMetricsAreConservative) {
  AutoscalingPolicy p = RpsPolicy(50);
  *p.mutable_scale_down_stabilization() = TimeUtil::SecondsToDuration(0);
  Autoscaler a;
  AutoscaleInput in;
  in.now = absl::Now();
  in.current_replicas = 4;
  // Scale-down: two tasks at 10 rps, two without data counted at the target (50):
  // (10+10+50+50)/4 = 30 -> ceil(0.6 x 4) = 3, not the 1 the two reporting tasks suggest.
  in.tasks = Tasks(4, 40);
  in.tasks[2].rps = NAN;
  in.tasks[3].rps = NAN;
  AutoscaleResult r = a.Evaluate(p, in);
  EXPECT_EQ(r.desired, 3) << r.reason;
  EXPECT_NE(r.message.find("2 ready task(s) without data counted at the target"),
            std::string::npos)
      << r.message;

  // Scale-up: missing tasks count as 0: (100+100+0+0)/4 = 50 -> on target, nothing moves.
  in.tasks = Tasks(4, 400);
  in.tasks[2].rps = NAN;
  in.tasks[3].rps = NAN;
  r = a.Evaluate(p, in);
  EXPECT_EQ(r.desired, 4) << r.reason;

  // No data at all: hold, and say so.
  for (auto& t : in.tasks) t.rps = NAN;
  r = a.Evaluate(p, in);
  EXPECT_EQ(r.desired, 4);
  EXPECT_NE(r.reason.find("no metric has data"), std::string::npos) << r.reason;
  EXPECT_TRUE(r.recommendations[0].missing());
}

TEST(AutoscalerTest, AMetricWithoutDataBlocksScaleDownOnly) {
  AutoscalingPolicy p = RpsPolicy(50);
  *p.mutable_scale_down_stabilization() = TimeUtil::SecondsToDuration(0);
  auto* q = p.add_metrics();
  q->set_kind(hosting::v1::METRIC_KIND_PROMQL);
  q->set_promql("sum(queue_depth)");
  q->set_target(100);
  Autoscaler a;
  AutoscaleInput in;
  in.now = absl::Now();
  in.current_replicas = 4;
  in.tasks = Tasks(4, 40);
  in.promql.emplace("sum(queue_depth)", absl::UnavailableError("prometheus down"));
  AutoscaleResult r = a.Evaluate(p, in);
  EXPECT_EQ(r.desired, 4);
  EXPECT_NE(r.reason.find("a metric has no data: not scaling down"), std::string::npos)
      << r.reason;
  EXPECT_NE(r.message.find("prometheus down"), std::string::npos) << r.message;
  in.tasks = Tasks(4, 400);
  EXPECT_EQ(a.Evaluate(p, in).desired, 8);  // up still works
}

TEST(AutoscalerTest, NotReadyTasksCountAsZeroOnScaleUp) {
  AutoscalingPolicy p = RpsPolicy(50);
  Autoscaler a;
  AutoscaleInput in;
  in.now = absl::Now();
  in.current_replicas = 5;
  // One ready task carries 250 rps while four new ones start: counting them at 0 gives 50 per
  // task, on target, so the autoscaler waits for them instead of adding more.
  in.tasks = Tasks(1, 250);
  for (int i = 0; i < 4; ++i) in.tasks.push_back(TaskSample{"new", false});
  AutoscaleResult r = a.Evaluate(p, in);
  EXPECT_EQ(r.desired, 5) << r.reason;
  EXPECT_NE(r.message.find("4 not-ready task(s) counted at 0"), std::string::npos) << r.message;
}

TEST(AutoscalerTest, ClampsToMinAndMax) {
  Sim sim(RpsPolicy(10, 2, 6), 2);
  AutoscaleResult r = sim.Step(1000);
  EXPECT_EQ(r.desired, 6);
  r = sim.Step(1000);
  EXPECT_EQ(r.desired, 6);
  EXPECT_NE(r.reason.find("held at the maximum of 6 (rps 166.7 vs target 10 -> 100)"),
            std::string::npos)
      << r.reason;
  AutoscalingPolicy low = RpsPolicy(10, 3, 6);
  Autoscaler a;
  AutoscaleInput in;
  in.now = absl::Now();
  in.current_replicas = 1;  // below a new minimum
  in.tasks = Tasks(1, 10);
  r = a.Evaluate(low, in);
  EXPECT_EQ(r.desired, 3) << r.reason;
}

TEST(AutoscalerTest, NoOscillationOnNoisySteadyLoad) {
  // Ten minutes of load whose per-second rate is uniform in +-25 % around 200 rps, averaged by
  // the metric window over each 5 s evaluation, at a 60 rps per task target.
  std::mt19937 rng(7);
  std::uniform_real_distribution<double> noise(0.75, 1.25);
  Sim sim(RpsPolicy(60), 4);
  for (int i = 0; i < 120; ++i) {
    double sum = 0;
    for (int s = 0; s < 5; ++s) sum += 200 * noise(rng);
    sim.Step(sum / 5);
  }
  EXPECT_LE(sim.changes(), 1);
  EXPECT_EQ(sim.replicas(), 4);
}

TEST(AutoscalerTest, ForecastScalesAheadOfARampAndNeverDown) {
  AutoscalingPolicy p = RpsPolicy(50, 1, 40);
  p.mutable_forecast()->set_enabled(true);
  Sim reactive(RpsPolicy(50, 1, 40), 2, absl::Seconds(15));
  Sim ahead(p, 2, absl::Seconds(15));
  // A ramp of +10 rps per second from 100 rps.
  int reactive_first = -1, ahead_first = -1;
  for (int i = 1; i <= 20; ++i) {
    const double load = 100 + 50.0 * i;
    reactive.Step(load);
    AutoscaleResult r = ahead.Step(load);
    if (r.forecast_driven) {
      EXPECT_NE(r.reason.find("forecast:"), std::string::npos) << r.reason;
    }
    // Capacity ahead of need: ready tasks x target vs the load now.
    if (reactive_first < 0 && reactive.ready() * 50 >= load) reactive_first = i;
    if (ahead_first < 0 && ahead.ready() * 50 >= load) ahead_first = i;
    EXPECT_GE(ahead.replicas(), reactive.replicas()) << i;
  }
  EXPECT_GT(ahead.replicas(), reactive.replicas());
  // The forecast has the capacity for the load during the ramp, and no later than the
  // reactive policy (which may not get there at all while the ramp lasts).
  EXPECT_GT(ahead_first, 0) << "the forecast never caught up with the ramp";
  if (reactive_first > 0) EXPECT_LE(ahead_first, reactive_first);
  // The ramp stops: the forecast never takes the size below what the metrics hold.
  const int before = ahead.replicas();
  for (int i = 0; i < 5; ++i) ahead.Step(1100);
  EXPECT_GE(ahead.replicas(), std::min(before, 22));
}

TEST(AutoscalerTest, ForecastShadowRecordsWithoutActing) {
  AutoscalingPolicy p = RpsPolicy(50, 1, 40);
  p.mutable_forecast()->set_enabled(true);
  p.mutable_forecast()->set_shadow(true);
  Sim shadow(p, 2, absl::Seconds(15));
  Sim reactive(RpsPolicy(50, 1, 40), 2, absl::Seconds(15));
  bool recorded = false;
  for (int i = 1; i <= 10; ++i) {
    AutoscaleResult r = shadow.Step(100 + 50.0 * i);
    reactive.Step(100 + 50.0 * i);
    EXPECT_FALSE(r.forecast_driven);
    if (r.shadow_desired.has_value()) {
      recorded = true;
      EXPECT_GT(*r.shadow_desired, r.desired);
    }
    EXPECT_EQ(shadow.replicas(), reactive.replicas()) << i;
  }
  EXPECT_TRUE(recorded);
}

TEST(HoltForecastTest, FollowsALinearTrend) {
  HoltForecast f;
  absl::Time t = absl::UnixEpoch();
  EXPECT_TRUE(std::isnan(f.Forecast(absl::Seconds(10))));
  for (int i = 0; i < 30; ++i) f.Add(t + absl::Seconds(i), 100 + 10 * i);
  EXPECT_NEAR(f.trend(), 10, 0.5);
  EXPECT_NEAR(f.Forecast(absl::Seconds(10)), 390 + 100, 10);
}

// The forecast replayed on traces (forecast_bench prints the figures): on a ramp and a daily
// cycle it is closer to the rate one start-up ahead than the last measured rate, and short of
// it less often; on a spike, where the trend misleads, the autoscaler's use of it (only ever
// raising the size) leaves it no more often short than the last rate.
TEST(ForecastReplayTest, TheForecastBeatsTheLastRateOnRampsAndCyclesAndNeverLeavesASpikeShorter) {
  for (uint32_t seed = 1; seed <= 5; ++seed) {
    for (TraceShape shape : {TraceShape::kRamp, TraceShape::kDailyCycle}) {
      const ForecastScore s =
          ReplayForecast(MakeTrace(shape, seed), absl::Seconds(5), absl::Seconds(15));
      EXPECT_GT(s.points, 10) << TraceName(shape);
      EXPECT_LT(s.forecast_mape, s.naive_mape) << TraceName(shape) << " seed " << seed;
      EXPECT_LT(s.used_short, s.naive_short) << TraceName(shape) << " seed " << seed;
    }
    const ForecastScore spike =
        ReplayForecast(MakeTrace(TraceShape::kSpike, seed), absl::Seconds(5), absl::Seconds(15));
    EXPECT_LE(spike.used_short, spike.naive_short) << "seed " << seed;
  }
}

TEST(AutoscalingValidationTest, NamesEveryBadField) {
  AutoscalingPolicy p;
  p.set_min_replicas(0);
  p.set_max_replicas(-1);
  auto* m = p.add_metrics();
  m->set_kind(hosting::v1::METRIC_KIND_PROMQL);
  p.set_tolerance(2);
  p.mutable_scale_up_rate()->set_tasks(3);
  p.mutable_forecast()->set_enabled(true);
  p.mutable_scale_up_metric_window()->set_nanos(500'000'000);
  std::vector<FieldViolation> v = ValidateAutoscalingPolicy(p, "policy");
  std::set<std::string> fields;
  for (const auto& x : v) fields.insert(x.field);
  for (const char* f : {"policy.min_replicas", "policy.max_replicas", "policy.metrics[0].target",
                        "policy.metrics[0].promql", "policy.tolerance",
                        "policy.scale_up_rate.period", "policy.forecast",
                        "policy.scale_up_metric_window"}) {
    EXPECT_TRUE(fields.contains(f)) << f;
  }
  EXPECT_TRUE(ValidateAutoscalingPolicy(RpsPolicy(50), "policy").empty());
}

}  // namespace
}  // namespace hosting::controlplane
