#include "controlplane/agents/agent_metrics.h"

#include <cmath>
#include <string>

#include "prometheus/metric_family.h"

namespace hosting::controlplane {
prometheus::MetricFamily GaugeFamily(const char* name, const char* help) {
  prometheus::MetricFamily f;
  f.name = name;
  f.help = help;
  f.type = prometheus::MetricType::Gauge;
  return f;
}

void AddSample(prometheus::MetricFamily& f, std::vector<prometheus::ClientMetric::Label> labels,
               double value) {
  if (std::isnan(value)) return;  // no data is no sample, not a zero
  prometheus::ClientMetric m;
  m.label = std::move(labels);
  if (f.type == prometheus::MetricType::Counter) {
    m.counter.value = value;
  } else {
    m.gauge.value = value;
  }
  f.metric.push_back(std::move(m));
}

std::vector<prometheus::MetricFamily> AgentMetricsCollector::Collect() const {
  auto tasks = GaugeFamily("hostd_revision_tasks", "Tasks of a revision by probed health.");
  auto rps = GaugeFamily("hostd_revision_requests_per_second", "Requests per second over the window.");
  auto errors = GaugeFamily("hostd_revision_error_ratio", "5xx share of requests over the window.");
  auto latency = GaugeFamily("hostd_revision_latency_seconds", "Request latency quantiles over the window.");
  auto cpu = GaugeFamily("hostd_revision_cpu_cores", "Mean CPU use per task, in cores.");
  auto memory = GaugeFamily("hostd_revision_memory_bytes", "Mean memory use per task.");
  for (const std::string& service : registry_.Services()) {
    for (const auto& [revision, a] : registry_.Aggregate(service)) {
      const std::string rev = std::to_string(revision);
      auto l = [&](std::vector<prometheus::ClientMetric::Label> extra = {}) {
        std::vector<prometheus::ClientMetric::Label> labels = {{"service", service}, {"revision", rev}};
        labels.insert(labels.end(), extra.begin(), extra.end());
        return labels;
      };
      AddSample(tasks, l({{"health", "healthy"}}), a.healthy);
      AddSample(tasks, l({{"health", "unhealthy"}}), a.unhealthy);
      AddSample(tasks, l({{"health", "starting"}}), a.starting);
      AddSample(tasks, l({{"health", "unknown"}}), a.unknown);
      AddSample(rps, l(), a.rps);
      AddSample(errors, l(), a.error_ratio);
      AddSample(latency, l({{"quantile", "0.5"}}), a.p50);
      AddSample(latency, l({{"quantile", "0.95"}}), a.p95);
      AddSample(latency, l({{"quantile", "0.99"}}), a.p99);
      AddSample(cpu, l(), a.cpu_cores);
      AddSample(memory, l(), static_cast<double>(a.memory_bytes));
    }
  }
  auto unconfirmed = GaugeFamily(
      "hostd_agent_unconfirmed_tasks",
      "Tasks agents report that Swarm does not run on their node (not believed).");
  AddSample(unconfirmed, {}, registry_.UnconfirmedTasks());
  return {tasks, rps, errors, latency, cpu, memory, unconfirmed};
}

}  // namespace hosting::controlplane
