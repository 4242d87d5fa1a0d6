#include "agent/task_resources.h"

#include <utility>

namespace hosting::agent {
namespace {

prometheus::MetricFamily Family(const char* name, const char* help, prometheus::MetricType type) {
  prometheus::MetricFamily f;
  f.name = name;
  f.help = help;
  f.type = type;
  return f;
}

void Add(prometheus::MetricFamily& f, const TaskResources::Reading& r, double value) {
  prometheus::ClientMetric m;
  m.label = {{"service", r.service}, {"revision", std::to_string(r.revision)}, {"task", r.task_id}};
  if (f.type == prometheus::MetricType::Counter) {
    m.counter.value = value;
  } else {
    m.gauge.value = value;
  }
  f.metric.push_back(std::move(m));
}

}  // namespace

void TaskResources::Update(std::vector<Reading> readings) {
  absl::MutexLock lock(&mu_);
  readings_ = std::move(readings);
}

std::vector<prometheus::MetricFamily> TaskResources::Collect() const {
  auto cpu = Family("hostagent_task_cpu_seconds_total", "CPU time a task has used.",
                    prometheus::MetricType::Counter);
  auto memory = Family("hostagent_task_memory_bytes",
                       "Memory a task uses, less inactive file cache (as docker stats).",
                       prometheus::MetricType::Gauge);
  auto limit = Family("hostagent_task_memory_limit_bytes", "A task's memory limit.",
                      prometheus::MetricType::Gauge);
  absl::MutexLock lock(&mu_);
  for (const Reading& r : readings_) {
    Add(cpu, r, static_cast<double>(r.cpu_usage_ns) / 1e9);
    Add(memory, r, static_cast<double>(r.memory_bytes));
    if (r.memory_limit_bytes > 0) Add(limit, r, static_cast<double>(r.memory_limit_bytes));
  }
  return {cpu, memory, limit};
}

}  // namespace hosting::agent
