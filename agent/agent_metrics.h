#pragma once

#include <memory>

#include "agent/task_resources.h"
#include "prometheus/counter.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"

namespace hosting::agent {

// The agent's own Prometheus series, shared by its parts.
struct AgentMetrics {
  explicit AgentMetrics(prometheus::Registry& registry);

  prometheus::Gauge* tasks;
  prometheus::Gauge* connected;
  prometheus::Counter* reconnects;
  prometheus::Family<prometheus::Counter>* probes;
  prometheus::Histogram* probe_seconds;
  prometheus::Counter* scrape_failures;
  // Per-task CPU and memory (a collectable of its own: the exposer registers it beside the
  // registry).
  std::shared_ptr<TaskResources> task_resources = std::make_shared<TaskResources>();
};

}  // namespace hosting::agent
