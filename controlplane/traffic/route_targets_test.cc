#include "controlplane/traffic/route_targets.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace hosting::controlplane {
namespace {

docker::TaskInfo Running() {
  docker::TaskInfo t;
  t.id = "t1";
  t.state = "running";
  return t;
}

hosting::v1::ServiceSpec HttpChecked() {
  hosting::v1::ServiceSpec spec;
  spec.mutable_health()->set_http_path("/health");
  spec.mutable_health()->set_port(8080);
  spec.mutable_health()->mutable_interval()->set_seconds(5);
  spec.mutable_health()->set_unhealthy_threshold(3);
  spec.mutable_health()->set_healthy_threshold(1);
  return spec;
}

hosting::v1::TaskReport Report(hosting::v1::TaskHealth health) {
  hosting::v1::TaskReport r;
  r.set_task_id("t1");
  r.set_probe_health(health);
  return r;
}

// "No data" is not "unhealthy": only a failing probe takes a task out.
TEST(ReadinessTest, OnlyAFailingProbeMakesATaskUnready) {
  const auto spec = HttpChecked();
  const auto healthy = Report(hosting::v1::TASK_HEALTH_HEALTHY);
  const auto unhealthy = Report(hosting::v1::TASK_HEALTH_UNHEALTHY);
  const auto starting = Report(hosting::v1::TASK_HEALTH_STARTING);
  const auto none = Report(hosting::v1::TASK_HEALTH_NONE);
  const auto lost = Report(hosting::v1::TASK_HEALTH_UNSPECIFIED);
  EXPECT_EQ(Readiness(Running(), &healthy, spec, true), TaskReadiness::kReady);
  EXPECT_EQ(Readiness(Running(), &unhealthy, spec, true), TaskReadiness::kUnready);
  EXPECT_EQ(Readiness(Running(), &starting, spec, true), TaskReadiness::kUnknown);
  // The agent has no probe settings for it (the store could not be read, say).
  EXPECT_EQ(Readiness(Running(), &none, spec, true), TaskReadiness::kUnknown);
  // Its node's agent is lost.
  EXPECT_EQ(Readiness(Running(), &lost, spec, false), TaskReadiness::kUnknown);
  // The agent connected and has not reported it yet.
  EXPECT_EQ(Readiness(Running(), nullptr, spec, true), TaskReadiness::kUnknown);
  // No agent watches the node at all: Swarm's "running" is all there is.
  EXPECT_EQ(Readiness(Running(), nullptr, spec, false), TaskReadiness::kReady);
  docker::TaskInfo stopped = Running();
  stopped.state = "shutdown";
  EXPECT_EQ(Readiness(stopped, &healthy, spec, true), TaskReadiness::kUnready);
  // Without an HTTP check a running task is ready.
  EXPECT_EQ(Readiness(Running(), &none, hosting::v1::ServiceSpec(), true), TaskReadiness::kReady);
  EXPECT_FALSE(TaskReady(Running(), &starting, spec, true));
}

TEST(BalancerCheckTest, FollowsTheHealthCheckAndGoesDownWithinTwoIntervals) {
  LbCheck c = BalancerCheck(HttpChecked());
  EXPECT_TRUE(c.enabled);
  EXPECT_EQ(c.port, 8080);
  EXPECT_EQ(c.interval, absl::Seconds(5));
  EXPECT_EQ(c.fall, 2) << "three probe failures, but the balancer acts after two";
  EXPECT_EQ(c.rise, 1);
  // No HTTP check: a TCP connect to the traffic port, every 2 s.
  LbCheck tcp = BalancerCheck(hosting::v1::ServiceSpec());
  EXPECT_TRUE(tcp.enabled);
  EXPECT_EQ(tcp.port, 0);
  EXPECT_EQ(tcp.interval, absl::Seconds(2));
}

}  // namespace
}  // namespace hosting::controlplane
