// The Cluster domain over the fakes: node availability as Swarm sees it.
#include "controlplane/cluster/cluster_manager.h"

#include "common/clock.h"
#include "controlplane/agents/agent_hub.h"
#include "controlplane/agents/agent_registry.h"
#include "controlplane/testing/fake_control_plane.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace hosting::controlplane {
namespace {

using ::testing::Contains;

class ClusterManagerTest : public ::testing::Test {
 protected:
  ClusterManagerTest()
      : cp_(clock_),
        agents_(AgentRegistry::Options{}, cp_.events, clock_),
        hub_(agents_, cp_.store, cp_.events, clock_),
        cluster_(cp_.docker, cp_.reconciler, cp_.services, hub_, agents_, cp_.events) {
    cp_.docker.SetNodeCount(2);
  }

  FakeClock clock_;
  FakeControlPlane cp_;
  AgentRegistry agents_;
  AgentHub hub_;
  ClusterManager cluster_;
};

TEST_F(ClusterManagerTest, ADrainIsDoneAndSaidDoneWhenTheReadAfterItFails) {
  // Swarm takes the drain; the read that follows does not answer. The drain happened: the
  // caller must not hear an error (it would drain again, or page someone).
  cp_.docker.FailNextNodeInspects(1);
  absl::StatusOr<hosting::v1::Node> n = cluster_.SetAvailability("node2", "drain");
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(n->availability(), hosting::v1::NODE_AVAILABILITY_DRAIN);
  absl::StatusOr<docker::NodeInfo> swarm = cp_.docker.InspectNode("node2");
  ASSERT_TRUE(swarm.ok());
  EXPECT_EQ(swarm->availability, "drain");
  EXPECT_THAT(cp_.EventTypes(), Contains("node.drain"));
}

TEST_F(ClusterManagerTest, AnUnreachableEngineFailsTheDrainWithNothingDone) {
  cp_.docker.SetUnavailable(true);
  absl::StatusOr<hosting::v1::Node> n = cluster_.SetAvailability("node2", "drain");
  EXPECT_TRUE(absl::IsUnavailable(n.status())) << n.status();
  cp_.docker.SetUnavailable(false);
  EXPECT_EQ(cp_.docker.InspectNode("node2")->availability, "active");
}

}  // namespace
}  // namespace hosting::controlplane
