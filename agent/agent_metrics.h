#pragma once

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
};

}  // namespace hosting::agent
