// The autoscaler on the real platform (Swarm, HAProxy, hostd, a hostagent, appsvc on
// PostgreSQL; paced load from 127.0.0.1 through HAProxy), then the same load trace replayed
// through two simulated controllers: hosting's (the same Autoscaler code and policy) and an
// HPA-style one (15 s cycles, at most +33 % per cycle), with the task start-up time this run
// measured.
//
//   build/tests/bench/autoscale_bench [NOISY_MINUTES]    (default 10; figures go to
//                                                         docs/performance.md)
//
// Phases: 30 rps on one task (a 45 rps/task target: 67 %), a 5x step to 150 rps (4 tasks
// needed), then NOISY_MINUTES of 150 rps with every second's rate uniform in +-25 %.
#include <cstdio>
#include <fstream>
#include <iostream>
#include <random>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/status_macros.h"
#include "controlplane/autoscale/autoscaler.h"
#include "controlplane/spec/validation.h"
#include "google/protobuf/util/time_util.h"
#include "grpcpp/grpcpp.h"
#include "hosting/v1/autoscaling.grpc.pb.h"
#include "hosting/v1/service.grpc.pb.h"
#include "tests/integration/platform.h"

namespace hosting::testing {
namespace {

using google::protobuf::util::TimeUtil;

constexpr char kService[] = "bench-as";
constexpr double kTarget = 45;     // rps per task
constexpr double kBase = 30;       // rps before the step
constexpr double kStep = 150;      // 5x
constexpr int kNeeded = 4;         // ceil(150 / 45)

void Die(const absl::Status& s) {
  std::cerr << "autoscale_bench: " << s << "\n";
  std::exit(1);
}

// One second of the run.
struct Sample {
  double t = 0;        // seconds since the step
  double offered = 0;  // rps the load generator was set to
  int ready = 0;       // HAProxy servers ready
  int replicas = 0;    // the service's desired replicas
};

// How a controller did over the trace.
struct Outcome {
  double step_to_enough = -1;  // seconds from the step until kNeeded tasks were ready
  int noisy_changes = 0;       // scaling changes during the noisy phase
  int final_replicas = 0;
};

// Replays the offered load through `policy` with the real Autoscaler: tasks share the load
// evenly and become ready `startup` after the decision that started them.
Outcome Simulate(const std::vector<Sample>& trace, hosting::v1::AutoscalingPolicy policy,
                 absl::Duration startup, double noisy_from) {
  controlplane::ApplyAutoscalingDefaults(policy);
  controlplane::Autoscaler a;
  const double interval =
      absl::ToDoubleSeconds(absl::Nanoseconds(TimeUtil::DurationToNanoseconds(policy.evaluation_interval())));
  const double window = std::max(2.0, interval);
  // The scale-up checks between evaluations, every second on their short window (as hostd's
  // AutoscaleManager runs them).
  const double up_window = std::max(
      2.0, absl::ToDoubleSeconds(absl::Nanoseconds(
               TimeUtil::DurationToNanoseconds(policy.scale_up_metric_window()))));
  int replicas = 1, ready = 1;
  std::vector<double> pending;  // when started tasks become ready
  Outcome o;
  double next_eval = trace.front().t, next_up_check = trace.front().t;
  for (size_t i = 0; i < trace.size(); ++i) {
    const double t = trace[i].t;
    while (!pending.empty() && pending.front() <= t) {
      pending.erase(pending.begin());
      ++ready;
    }
    ready = std::min(ready, replicas);
    if (o.step_to_enough < 0 && t >= 0 && ready >= kNeeded) o.step_to_enough = t;
    controlplane::Autoscaler::Mode mode = controlplane::Autoscaler::Mode::kFull;
    double over = window;
    if (t >= next_eval) {
      next_eval = t + interval;
    } else if (up_window < window && t >= next_up_check) {
      mode = controlplane::Autoscaler::Mode::kScaleUpOnly;
      over = up_window;
    } else {
      continue;
    }
    next_up_check = t + 1;
    double sum = 0;
    int n = 0;
    for (size_t j = i + 1; j-- > 0 && trace[j].t > t - over;) {
      sum += trace[j].offered;
      ++n;
    }
    controlplane::AutoscaleInput in;
    in.now = absl::UnixEpoch() + absl::Seconds(t + 1000);
    in.current_replicas = replicas;
    for (int k = 0; k < replicas; ++k) {
      controlplane::TaskSample s;
      s.ready = k < ready;
      if (s.ready) s.rps = sum / n / ready;
      in.tasks.push_back(s);
    }
    const controlplane::AutoscaleResult r = a.Evaluate(policy, in, mode);
    if (r.desired == replicas) continue;
    a.Scaled(in.now, replicas, r.desired);
    if (t >= noisy_from) ++o.noisy_changes;
    for (int k = replicas; k < r.desired; ++k) pending.push_back(t + absl::ToDoubleSeconds(startup));
    if (r.desired < replicas) ready = std::min(ready, r.desired);
    replicas = r.desired;
  }
  o.final_replicas = replicas;
  return o;
}

hosting::v1::AutoscalingPolicy HostingPolicy() {
  hosting::v1::AutoscalingPolicy p;
  p.set_service(kService);
  p.set_min_replicas(1);
  p.set_max_replicas(10);
  auto* m = p.add_metrics();
  m->set_kind(hosting::v1::METRIC_KIND_REQUESTS_PER_SECOND);
  m->set_target(kTarget);
  return p;  // every other setting at its default: 0 s / 300 s windows, every 5 s, scale-ups
             // also on the last 3 s between evaluations
}

hosting::v1::AutoscalingPolicy HpaStylePolicy() {
  hosting::v1::AutoscalingPolicy p = HostingPolicy();
  *p.mutable_evaluation_interval() = TimeUtil::SecondsToDuration(15);
  *p.mutable_scale_up_metric_window() = TimeUtil::SecondsToDuration(15);  // the HPA has none
  p.mutable_scale_up_rate()->set_percent(33);
  *p.mutable_scale_up_rate()->mutable_period() = TimeUtil::SecondsToDuration(15);
  return p;
}

int Run(int argc, char** argv) {
  const double noisy_minutes = argc > 1 ? std::atof(argv[1]) : 10;
  ServicePlatform platform("hosting-autoscale-bench-", {kService});
  if (absl::Status st = platform.Start(); !st.ok()) Die(st);
  auto channel = platform.hostd->channel();
  auto services = hosting::v1::ServiceManager::NewStub(channel);
  auto autoscaling = hosting::v1::Autoscaling::NewStub(channel);
  if (absl::Status st = platform.Deploy(*services, platform.Spec(kService, 1)); !st.ok()) Die(st);
  {
    grpc::ClientContext ctx;
    hosting::v1::SetPolicyRequest req;
    *req.mutable_policy() = HostingPolicy();
    hosting::v1::AutoscalingPolicy out;
    grpc::Status st = autoscaling->SetPolicy(&ctx, req, &out);
    if (!st.ok()) Die(absl::InternalError(st.error_message()));
  }
  auto status = [&] {
    grpc::ClientContext ctx;
    hosting::v1::GetAutoscalingStatusRequest req;
    req.set_service(kService);
    hosting::v1::AutoscalingStatus s;
    (void)autoscaling->GetStatus(&ctx, req, &s);
    return s;
  };
  auto replicas = [&] {
    grpc::ClientContext ctx;
    hosting::v1::GetServiceRequest req;
    req.set_name(kService);
    hosting::v1::Service s;
    (void)services->GetService(&ctx, req, &s);
    return s.spec().replicas();
  };

  HttpLoad load(platform.Url(kService, "/api/users/1"), 16, kBase);
  std::vector<Sample> trace;
  std::mt19937 rng(42);
  std::uniform_real_distribution<double> noise(0.75, 1.25);
  const absl::Time step = absl::Now() + absl::Seconds(30);
  const double noisy_from = 60;  // seconds after the step
  const double end = noisy_from + noisy_minutes * 60;
  Outcome real;
  std::cerr << "autoscale_bench: 30 s at " << kBase << " rps, then " << kStep << " rps; "
            << noisy_minutes << " min of +-25 % noise from 60 s after the step\n";
  for (absl::Time tick = absl::Now();; tick += absl::Seconds(1)) {
    absl::SleepFor(tick - absl::Now());
    const double t = absl::ToDoubleSeconds(absl::Now() - step);
    if (t > end) break;
    double rate = t < 0 ? kBase : kStep;
    if (t >= noisy_from) rate *= noise(rng);
    load.SetRate(rate);
    Sample s{t, rate, platform.ReadyServers(kService), replicas()};
    if (real.step_to_enough < 0 && t >= 0 && s.ready >= kNeeded) {
      real.step_to_enough = t;
      std::cerr << absl::StrFormat("autoscale_bench: %d tasks serving %.1f s after the step\n",
                                   s.ready, t);
    }
    trace.push_back(s);
  }
  load.Stop();
  const hosting::v1::AutoscalingStatus final_status = status();
  real.final_replicas = replicas();
  for (const auto& d : final_status.history()) {
    const double t = absl::ToDoubleSeconds(
        absl::FromUnixNanos(TimeUtil::TimestampToNanoseconds(d.time())) - step);
    if (!d.shadow() && t >= noisy_from) ++real.noisy_changes;
  }
  const absl::Duration startup =
      absl::Nanoseconds(TimeUtil::DurationToNanoseconds(final_status.task_startup()));
  const int64_t requests = load.total(), failed = load.failed();
  platform.Stop();

  std::ofstream csv(platform.dir + "/trace.csv");
  csv << "t,offered_rps,ready,replicas\n";
  for (const auto& s : trace) csv << s.t << "," << s.offered << "," << s.ready << "," << s.replicas << "\n";

  const Outcome ours = Simulate(trace, HostingPolicy(), startup, noisy_from);
  const Outcome hpa = Simulate(trace, HpaStylePolicy(), startup, noisy_from);
  std::printf("autoscale_bench: 5x step (%.0f -> %.0f rps, %.0f rps/task target, %d tasks "
              "needed), then %.0f min of +-25%% noise; measured task start-up %s\n",
              kBase, kStep, kTarget, kNeeded, noisy_minutes,
              absl::FormatDuration(startup).c_str());
  std::printf("%-36s %18s %22s %10s\n", "controller", "step->enough (s)", "changes in noisy phase",
              "final");
  auto row = [](const char* what, const Outcome& o) {
    std::printf("%-36s %18.1f %22d %10d\n", what, o.step_to_enough, o.noisy_changes,
                o.final_replicas);
  };
  row("hostd (real run)", real);
  row("hostd policy, simulated on the trace", ours);
  row("HPA-style 15 s, +33 %/cycle, sim.", hpa);
  std::printf("requests %lld, failed %lld; trace: %s/trace.csv\n", static_cast<long long>(requests),
              static_cast<long long>(failed), platform.dir.c_str());
  return 0;
}

}  // namespace
}  // namespace hosting::testing

int main(int argc, char** argv) { return hosting::testing::Run(argc, argv); }
