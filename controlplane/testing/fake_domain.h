#pragma once

#include "common/clock.h"
#include "controlplane/agents/agent_hub.h"
#include "controlplane/agents/agent_registry.h"
#include "controlplane/cluster/cluster_manager.h"
#include "controlplane/release/release_manager.h"
#include "controlplane/testing/fake_control_plane.h"
#include "controlplane/traffic/traffic_router.h"

namespace hosting::controlplane {

// The domain the API's transports stand on, over FakeControlPlane (the fake Docker engine, an
// in-memory store): agents and their hub, the cluster manager, releases without HAProxy. For
// the tests of the gRPC adapters and the HTTP gateway.
struct FakeDomain {
  explicit FakeDomain(Clock& clock)
      : cp(clock),
        agents(AgentRegistry::Options{}, cp.events, clock),
        hub(agents, cp.store, cp.events, clock),
        cluster(cp.docker, cp.reconciler, cp.services, hub, agents, cp.events),
        router(nullptr, cp.events),
        releases(cp.store, cp.state, agents, router, cp.reconciler, cp.events, clock,
                 ReleaseManagerOptions{}) {}
  ~FakeDomain() { hub.Stop(); }

  FakeControlPlane cp;
  AgentRegistry agents;
  AgentHub hub;
  ClusterManager cluster;
  TrafficRouter router;
  ReleaseManager releases;
};

}  // namespace hosting::controlplane
