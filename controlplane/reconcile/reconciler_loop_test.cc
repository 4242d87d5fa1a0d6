// The reconciler's loops (workers, resync, fault bookkeeping) running over the fakes on a fake
// clock: what a store outage and a Docker outage are called, and that resync goes on.
#include <set>

#include "absl/synchronization/mutex.h"
#include "common/clock.h"
#include "controlplane/reconcile/reconciler.h"
#include "controlplane/testing/fake_control_plane.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace hosting::controlplane {
namespace {

class ReconcilerLoopTest : public ::testing::Test {
 protected:
  ReconcilerLoopTest() : cp_(clock_) {
    subscription_ = cp_.events.Subscribe([this](const hosting::v1::Event& e) {
      absl::MutexLock lock(&mu_);
      seen_.insert(e.type());
    });
  }
  ~ReconcilerLoopTest() override {
    cp_.reconciler.Stop();
    cp_.events.Unsubscribe(subscription_);
  }

  double Gauge(const std::string& name) {
    for (const auto& family : cp_.metrics.registry()->Collect()) {
      if (family.name == name && !family.metric.empty()) return family.metric[0].gauge.value;
    }
    return -1;
  }
  bool Seen(const std::string& type) {
    absl::MutexLock lock(&mu_);
    return seen_.contains(type);
  }
  // Waits (real time, bounded) for `done`.
  static bool Eventually(const std::function<bool()>& done) {
    for (int i = 0; i < 500; ++i) {
      if (done()) return true;
      absl::SleepFor(absl::Milliseconds(10));
    }
    return false;
  }
  bool Created(const std::string& swarm_service) {
    return cp_.docker.InspectService(swarm_service).ok();
  }

  FakeClock clock_;
  FakeControlPlane cp_;
  int64_t subscription_ = 0;
  absl::Mutex mu_;
  std::set<std::string> seen_ ABSL_GUARDED_BY(mu_);
};

// The store down is the store's fault, not Docker's: Docker stays reachable, resync goes on,
// and the store reads reachable again after the next sync that reads it.
TEST_F(ReconcilerLoopTest, AStoreOutageIsNamedForWhatItIsAndResyncGoesOn) {
  cp_.reconciler.Start();
  ASSERT_TRUE(Eventually([&] { return Gauge("hostd_docker_reachable") == 1; }));
  ASSERT_TRUE(cp_.Apply("web", "img:1").ok());
  ASSERT_TRUE(Eventually([&] { return Created("web-r1"); }));

  cp_.store.FailNext(FaultStore::Op::kGetService, absl::UnavailableError("connection refused"));
  cp_.reconciler.Enqueue("web");
  ASSERT_TRUE(Eventually([&] { return Gauge("hostd_store_reachable") == 0; }));
  EXPECT_EQ(Gauge("hostd_docker_reachable"), 1) << "the store's outage is not Docker's";
  // The gauge is set before the event is published: wait for the event too.
  EXPECT_TRUE(Eventually([&] { return Seen("store.unreachable"); }));
  EXPECT_FALSE(Seen("docker.unreachable"));

  // The resync comes on the clock, whatever failed before, and finds the store back.
  const int listed = cp_.store.calls(FaultStore::Op::kListServices);
  clock_.Advance(absl::Seconds(31));
  ASSERT_TRUE(Eventually([&] { return cp_.store.calls(FaultStore::Op::kListServices) > listed; }))
      << "no resync after the interval";
  ASSERT_TRUE(Eventually([&] { return Gauge("hostd_store_reachable") == 1; }));
  EXPECT_TRUE(Eventually([&] { return Seen("store.reachable"); }));
}

// A failing sync comes back after its backoff on the clock, not before; Docker's own outage
// is Docker's.
TEST_F(ReconcilerLoopTest, ADockerOutageBacksOffOnTheClockAndRecovers) {
  cp_.reconciler.Start();
  ASSERT_TRUE(Eventually([&] { return Gauge("hostd_docker_reachable") == 1; }));
  ASSERT_TRUE(cp_.Apply("web", "img:1").ok());
  ASSERT_TRUE(Eventually([&] { return Created("web-r1"); }));
  cp_.docker.SetUnavailable(true);
  cp_.docker.RemoveOutside("web-r1");
  cp_.reconciler.Enqueue("web");
  ASSERT_TRUE(Eventually([&] { return Gauge("hostd_docker_reachable") == 0; }));
  EXPECT_EQ(Gauge("hostd_store_reachable"), 1);
  cp_.docker.SetUnavailable(false);
  // The event stream reconnects (its own real-time backoff) and enqueues everything; the
  // worker's retry waits for the clock. Either repairs the service.
  absl::SleepFor(absl::Milliseconds(300));
  clock_.Advance(absl::Seconds(1));
  ASSERT_TRUE(Eventually([&] { return Created("web-r1"); })) << "repaired after the outage";
  ASSERT_TRUE(Eventually([&] { return Gauge("hostd_docker_reachable") == 1; }));
}

}  // namespace
}  // namespace hosting::controlplane
