#include "agent/agent_metrics.h"

namespace hosting::agent {

AgentMetrics::AgentMetrics(prometheus::Registry& registry)
    : tasks(&prometheus::BuildGauge()
                 .Name("hostagent_tasks")
                 .Help("Task containers on this node.")
                 .Register(registry)
                 .Add({})),
      connected(&prometheus::BuildGauge()
                     .Name("hostagent_connected")
                     .Help("1 while the stream to hostd is up.")
                     .Register(registry)
                     .Add({})),
      reconnects(&prometheus::BuildCounter()
                      .Name("hostagent_reconnects_total")
                      .Help("Stream (re)connection attempts.")
                      .Register(registry)
                      .Add({})),
      probes(&prometheus::BuildCounter()
                  .Name("hostagent_probes_total")
                  .Help("Health probes by result.")
                  .Register(registry)),
      probe_seconds(&prometheus::BuildHistogram()
                         .Name("hostagent_probe_duration_seconds")
                         .Help("Health probe duration.")
                         .Register(registry)
                         .Add({}, prometheus::Histogram::BucketBoundaries{
                                      0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5})),
      scrape_failures(&prometheus::BuildCounter()
                           .Name("hostagent_scrape_failures_total")
                           .Help("Application /metrics that could not be read or parsed.")
                           .Register(registry)
                           .Add({})) {}

}  // namespace hosting::agent
