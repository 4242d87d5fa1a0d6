#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "common/clock.h"
#include "common/fake_docker_client.h"
#include "controlplane/reconcile/reconciler.h"
#include "controlplane/service/desired_state.h"
#include "controlplane/service/service_manager.h"
#include "controlplane/store/event_log.h"
#include "controlplane/telemetry/metrics.h"
#include "controlplane/testing/fault_store.h"

namespace hosting::controlplane {

// The lower rooms of the control plane wired on fakes, for the managers' unit tests: the fake
// engine, an in-memory SQLite store behind a FaultStore, the event log, a reconciler (not
// started: tests call Sync), the desired-state writer and the service manager.
struct FakeControlPlane {
  explicit FakeControlPlane(Clock& clock);

  // Applies `name` running `image` x `replicas`; the error, if any.
  absl::Status Apply(const std::string& name, const std::string& image, int replicas = 2);
  // Every event type in the log, oldest first.
  std::vector<std::string> EventTypes();

  Clock& clock;
  docker::FakeDockerClient docker;
  HostdMetrics metrics;
  FaultStore store;
  EventLog events;
  Reconciler reconciler;
  DesiredState state;
  ServiceManager services;
};

}  // namespace hosting::controlplane
