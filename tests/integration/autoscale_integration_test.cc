// Autoscaling against the real thing: dockerd with a Swarm, HAProxy, hostd, a hostagent, appsvc
// images on a real PostgreSQL, and paced load from 127.0.0.1 through HAProxy. Nothing is faked.
#include <iostream>
#include <map>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "controlplane/traffic/load_balancer.h"
#include "curl/curl.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "harness.h"
#include "hosting/v1/autoscaling.grpc.pb.h"
#include "hosting/v1/releases.grpc.pb.h"
#include "hosting/v1/service.grpc.pb.h"
#include "platform.h"

namespace hosting::testing {
namespace {

using ::testing::HasSubstr;

const std::vector<std::string> kServices = {"as-web", "as-rel", "as-zero"};

class AutoscaleTest : public PlatformTest {
 protected:
  static void SetUpTestSuite() {
    StartPlatform("hosting-autoscale-", kServices, {}, {}, /*holding=*/{"as-zero"});
  }
  static void TearDownTestSuite() { StopPlatform(); }

  CommandResult Hostctl(const std::string& args) {
    return Shell(absl::StrCat(HostctlBinary(), " --server ", platform->hostd->address(), " ", args));
  }

  int Replicas(const std::string& service) {
    grpc::ClientContext ctx;
    hosting::v1::GetServiceRequest req;
    req.set_name(service);
    hosting::v1::Service s;
    if (!services_->GetService(&ctx, req, &s).ok()) return -1;
    return s.spec().replicas();
  }

  // Lines of the service's autoscale.scaled events.
  std::vector<std::string> ScaleEvents(const std::string& service) {
    std::vector<std::string> out;
    for (absl::string_view line :
         absl::StrSplit(Hostctl(absl::StrCat("events --service ", service, " --type autoscale."))
                            .output,
                        '\n')) {
      if (absl::StrContains(line, "autoscale.scaled")) out.emplace_back(line);
    }
    return out;
  }

  // Waits until the service has `replicas` and HAProxy serves that many ready tasks.
  absl::Status WaitServing(const std::string& service, int replicas, absl::Duration timeout) {
    return WaitFor(
        [&] { return Replicas(service) == replicas && platform->ReadyServers(service) == replicas; },
        timeout, absl::StrCat(service, " serving with ", replicas, " tasks"),
        absl::Milliseconds(250));
  }

};

// Scale to zero: idle for its scale-down window, the service runs no task; the first request
// after is held at HAProxy, wakes it, and is answered once the new task is ready.
TEST_F(AutoscaleTest, AServiceAtZeroAnswersItsFirstRequest) {
  const std::string name = "as-zero";
  ASSERT_TRUE(platform->Deploy(*services_, platform->Spec(name, 1)).ok());
  CommandResult set = Hostctl(absl::StrCat("autoscale set ", name,
                                           " --min 1 --max 3 --rps 20 --interval 2s "
                                           "--scale-down-window 6s --scale-to-zero"));
  ASSERT_EQ(set.exit_code, 0) << set.output;
  absl::Status asleep = WaitFor(
      [&] {
        return Replicas(name) == 0 && platform->ReadyServers(name) == 0 &&
               Shell(absl::StrCat("docker ps -q --filter label=com.docker.swarm.service.name=",
                                  name, "-r1"))
                   .output.empty();
      },
      absl::Seconds(90), "as-zero asleep: no task, no server", absl::Milliseconds(250));
  ASSERT_TRUE(asleep.ok()) << asleep << "\n" << Hostctl("autoscale status " + name).output;
  CommandResult status = Hostctl("autoscale status " + name);
  EXPECT_THAT(status.output, HasSubstr("scale down 1 -> 0"));

  const absl::Time sent = absl::Now();
  HttpResult first = Http("GET", platform->Url(name, "/api/users/1"));
  const absl::Duration took = absl::Now() - sent;
  EXPECT_EQ(first.status, 200) << first.body << first.error;
  std::cout << "first request at zero answered in " << absl::FormatDuration(took) << "\n";
  EXPECT_EQ(Replicas(name), 1);
  std::vector<std::string> events = ScaleEvents(name);
  ASSERT_FALSE(events.empty());
  EXPECT_THAT(events.back(), HasSubstr("wake from zero 0 -> 1"));
  absl::StatusOr<std::map<std::string, controlplane::HeldRequests>> held =
      controlplane::HaproxyLoadBalancer(platform->socket).Held();
  ASSERT_TRUE(held.ok()) << held.status();
  EXPECT_EQ((*held)[name].total, 1);
  // Awake and serving: the next requests go straight through.
  EXPECT_EQ(Http("GET", platform->Url(name, "/api/users/1")).status, 200);
  ASSERT_TRUE(Hostctl("autoscale delete " + name).exit_code == 0);
}

TEST_F(AutoscaleTest, LoadStepScalesOutAndRemovingItScalesBackInAfterTheWindow) {
  const std::string name = "as-web";
  ASSERT_TRUE(platform->Deploy(*services_, platform->Spec(name, 1)).ok());
  CommandResult set = Hostctl(absl::StrCat("autoscale set ", name,
                                           " --min 1 --max 4 --rps 20 --interval 2s "
                                           "--scale-down-window 15s"));
  ASSERT_EQ(set.exit_code, 0) << set.output;
  EXPECT_THAT(set.output, HasSubstr("1..4"));

  HttpLoad load(platform->Url(name, "/api/users/1"), 8, 15);  // 75 % of one task's target
  absl::SleepFor(absl::Seconds(8));
  EXPECT_EQ(Replicas(name), 1);
  CommandResult status = Hostctl("autoscale status " + name);
  EXPECT_EQ(status.exit_code, 0) << status.output;
  EXPECT_THAT(status.output, HasSubstr("rps/task"));
  EXPECT_THAT(status.output, HasSubstr("within tolerance"));

  // A step to 70 rps needs ceil(70 / 20) = 4 tasks: one decision, all four serving.
  const absl::Time step = absl::Now();
  load.SetRate(70);
  absl::Status out = WaitServing(name, 4, absl::Seconds(60));
  ASSERT_TRUE(out.ok()) << out << "\n" << Hostctl("autoscale status " + name).output;
  const absl::Duration took = absl::Now() - step;
  // Straight up: one decision, or two when the first evaluation's rate window straddled the
  // step; never a step back.
  std::vector<std::string> events = ScaleEvents(name);
  ASSERT_GE(events.size(), 1u);
  ASSERT_LE(events.size(), 2u) << absl::StrJoin(events, "\n");
  for (const auto& e : events) EXPECT_THAT(e, HasSubstr("scale up "));
  EXPECT_THAT(events.back(), HasSubstr("-> 4"));
  EXPECT_THAT(events.back(), HasSubstr("rps"));
  const size_t ups = events.size();
  absl::SleepFor(absl::Seconds(6));
  EXPECT_EQ(Replicas(name), 4);  // settled: the four share the load under the target
  EXPECT_EQ(load.failed(), 0) << load.first_error() << " of " << load.total();
  std::cout << "load step to 4 serving tasks took " << absl::FormatDuration(took) << "\n";

  // hostd's /metrics shows the decision and each metric.
  HttpResult metrics = Http("GET", absl::StrCat("http://", platform->hostd->metrics_address(),
                                                "/metrics"));
  EXPECT_THAT(metrics.body, HasSubstr("hostd_autoscale_desired_replicas{service=\"as-web\"} 4"));
  EXPECT_THAT(metrics.body,
              HasSubstr(absl::StrCat("hostd_autoscale_decisions_total{service=\"as-web\",direction=\"up\"} ", ups)));
  EXPECT_THAT(metrics.body, HasSubstr("hostd_autoscale_metric_value{service=\"as-web\",metric=\"rps\"}"));

  // A manual scale is refused while the policy owns the count, unless forced.
  CommandResult manual = Hostctl("service scale " + name + " 2");
  EXPECT_EQ(manual.exit_code, 5) << manual.output;
  EXPECT_THAT(manual.output, HasSubstr("is autoscaled"));
  EXPECT_THAT(manual.output, HasSubstr("--force"));

  // The load goes: the scale-down waits for its 15 s window, then takes the service to 1.
  load.Stop();
  const absl::Time stopped = absl::Now();
  absl::Status in = WaitFor([&] { return Replicas(name) == 1; }, absl::Seconds(90),
                            "scale-in to 1", absl::Milliseconds(250));
  ASSERT_TRUE(in.ok()) << in << "\n" << Hostctl("autoscale status " + name).output;
  EXPECT_GE(absl::Now() - stopped, absl::Seconds(12));
  // Down only, ending at 1 (in one step, or two when the window still held a recommendation
  // from while the load was falling).
  events = ScaleEvents(name);
  ASSERT_GE(events.size(), ups + 1);
  ASSERT_LE(events.size(), ups + 2) << absl::StrJoin(events, "\n");
  for (size_t i = ups; i < events.size(); ++i) EXPECT_THAT(events[i], HasSubstr("scale down "));
  EXPECT_THAT(events[ups], HasSubstr("scale down 4 -> "));
  EXPECT_THAT(events.back(), HasSubstr("-> 1"));
  EXPECT_TRUE(WaitServing(name, 1, absl::Seconds(60)).ok());

  // The policy goes; the service keeps its size and takes manual scales again.
  EXPECT_EQ(Hostctl("autoscale delete " + name).exit_code, 0);
  CommandResult get = Hostctl("autoscale get " + name);
  EXPECT_EQ(get.exit_code, 4) << get.output;
  EXPECT_EQ(Hostctl("service scale " + name + " 1").exit_code, 0);
}

TEST_F(AutoscaleTest, ReleaseDuringAutoscalingCompletesWithoutEitherFighting) {
  const std::string name = "as-rel";
  ASSERT_TRUE(platform->Deploy(*services_, platform->Spec(name, 2)).ok());
  CommandResult set = Hostctl(absl::StrCat("autoscale set ", name,
                                           " --min 2 --max 5 --rps 20 --interval 2s "
                                           "--scale-down-window 60s"));
  ASSERT_EQ(set.exit_code, 0) << set.output;
  HttpLoad load(platform->Url(name, "/api/users/1"), 8, 30);  // 75 % of two tasks' target
  absl::SleepFor(absl::Seconds(4));

  // A canary at 20 % waits at a manual gate.
  hosting::v1::StartReleaseRequest req;
  req.set_service(name);
  req.set_image("hosting/appsvc:v2");
  req.mutable_policy()->set_strategy(hosting::v1::RELEASE_STRATEGY_CANARY);
  req.mutable_policy()->mutable_canary()->add_steps()->set_set_weight(20);
  req.mutable_policy()->mutable_canary()->add_steps()->mutable_pause();
  hosting::v1::Release r;
  {
    grpc::ClientContext ctx;
    grpc::Status st = releases_->StartRelease(&ctx, req, &r);
    ASSERT_TRUE(st.ok()) << st.error_message();
  }
  const std::string id = r.id();
  ASSERT_TRUE(WaitFor([&] {
                return GetRelease(*releases_, id).state() ==
                       hosting::v1::RELEASE_STATE_WAITING_FOR_PROMOTION;
              },
              absl::Seconds(90), "canary at its gate", absl::Milliseconds(250))
                  .ok())
      << GetRelease(*releases_, id).DebugString();

  // Load triples: the service as a whole goes to 5, split 5 stable + 1 canary (20 %).
  load.SetRate(90);
  absl::Status grown = WaitFor([&] { return platform->ReadyServers(name) == 6; },
                               absl::Seconds(60), "5 stable + 1 canary serving",
                               absl::Milliseconds(250));
  ASSERT_TRUE(grown.ok()) << grown << "\n" << Hostctl("autoscale status " + name).output << "\n"
                          << GetRelease(*releases_, id).DebugString();
  EXPECT_EQ(Replicas(name), 5);
  hosting::v1::Release waiting = GetRelease(*releases_, id);
  EXPECT_EQ(waiting.state(), hosting::v1::RELEASE_STATE_WAITING_FOR_PROMOTION);
  EXPECT_EQ(waiting.stable_replicas(), 5);
  EXPECT_EQ(waiting.new_replicas(), 1);
  CommandResult status = Hostctl("autoscale status " + name);
  EXPECT_THAT(status.output, HasSubstr("split over release " + id));

  // Promotion: the release takes the new revision to the size the autoscaler chose.
  EXPECT_EQ(Hostctl("release promote " + id).exit_code, 0);
  hosting::v1::Release done;
  ASSERT_TRUE(WaitFor([&] {
                done = GetRelease(*releases_, id);
                return done.state() >= hosting::v1::RELEASE_STATE_SUCCEEDED;
              },
              absl::Seconds(120), "release " + id, absl::Milliseconds(250))
                  .ok())
      << done.DebugString();
  EXPECT_EQ(done.state(), hosting::v1::RELEASE_STATE_SUCCEEDED) << done.message();
  EXPECT_TRUE(WaitServing(name, 5, absl::Seconds(60)).ok());
  absl::SleepFor(absl::Seconds(6));
  // With a release, an autoscaler and an agent's tasks behind it, every query of the control
  // plane's dashboard returns data from the platform's Prometheus (hostd and the agent).
  int checked = 0;
  for (const std::string& empty :
       DashboardQueriesWithoutData(platform->prometheus->url(), "hosting", &checked)) {
    ADD_FAILURE() << "hosting dashboard / " << empty << ": no data";
  }
  EXPECT_GE(checked, 19);
  load.Stop();
  // Only scale-ups, ending at 5: the release never undid the autoscaler, nor the autoscaler
  // the release.
  std::vector<std::string> events = ScaleEvents(name);
  ASSERT_GE(events.size(), 1u);
  ASSERT_LE(events.size(), 2u) << absl::StrJoin(events, "\n");
  for (const auto& e : events) {
    EXPECT_THAT(e, HasSubstr("scale up "));
    EXPECT_THAT(e, HasSubstr("split over the revisions of release " + id));
  }
  EXPECT_THAT(events.back(), HasSubstr("-> 5"));
  EXPECT_EQ(Replicas(name), 5);
  EXPECT_EQ(load.failed(), 0) << load.first_error() << " of " << load.total();
  std::vector<std::string> swarm;
  ASSERT_TRUE(WaitFor(
                  [&] {
                    swarm = SwarmServicesOf(name);
                    return swarm == std::vector<std::string>{name + "-r2 5 5"};
                  },
                  absl::Seconds(30), "Swarm services of " + name, absl::Milliseconds(250))
                  .ok())
      << absl::StrJoin(swarm, "; ");
}

}  // namespace
}  // namespace hosting::testing
