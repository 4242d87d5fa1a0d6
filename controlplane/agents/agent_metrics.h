#pragma once

#include <vector>

#include "controlplane/agents/agent_registry.h"
#include "prometheus/collectable.h"
#include "prometheus/metric_family.h"

namespace hosting::controlplane {

// A gauge family for a collector that computes its samples at scrape time.
prometheus::MetricFamily GaugeFamily(const char* name, const char* help);
// Adds one sample; NaN (no data) adds nothing rather than a zero.
void AddSample(prometheus::MetricFamily& family,
               std::vector<prometheus::ClientMetric::Label> labels, double value);

// Exports the agents' per-revision aggregates on hostd's /metrics, computed at scrape time:
// hostd_revision_tasks{service,revision,health}, hostd_revision_requests_per_second,
// hostd_revision_error_ratio, hostd_revision_latency_seconds{quantile},
// hostd_revision_cpu_cores, hostd_revision_memory_bytes, and hostd_agents{state}.
class AgentMetricsCollector final : public prometheus::Collectable {
 public:
  explicit AgentMetricsCollector(AgentRegistry& registry) : registry_(registry) {}
  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  AgentRegistry& registry_;
};

}  // namespace hosting::controlplane
