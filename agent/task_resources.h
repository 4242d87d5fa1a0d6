#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "prometheus/collectable.h"
#include "prometheus/metric_family.h"

namespace hosting::agent {

// Each task's resource use on this node as Prometheus series, from the cgroup readings the
// reporter takes for hostd anyway, so a node needs no cAdvisor:
//   hostagent_task_cpu_seconds_total{service,revision,task}    CPU time used (counter)
//   hostagent_task_memory_bytes{service,revision,task}         usage less inactive file cache
//   hostagent_task_memory_limit_bytes{service,revision,task}   the limit, when there is one
// Thread-safe: the reporter updates, the exposer collects.
class TaskResources : public prometheus::Collectable {
 public:
  struct Reading {
    std::string task_id;
    std::string service;
    int64_t revision = 0;
    uint64_t cpu_usage_ns = 0;
    int64_t memory_bytes = 0;
    int64_t memory_limit_bytes = 0;  // 0: none
  };

  // Replaces every reading: a task not in `readings` has no series any more.
  void Update(std::vector<Reading> readings);

  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  mutable absl::Mutex mu_;
  std::vector<Reading> readings_ ABSL_GUARDED_BY(mu_);
};

}  // namespace hosting::agent
