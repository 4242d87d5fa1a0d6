#include "agent/prober.h"

#include <algorithm>
#include <optional>

#include "absl/strings/str_cat.h"

namespace hosting::agent {
namespace {

// The scheduler looks at the table at least this often (new tasks, new configs).
constexpr absl::Duration kScheduleHorizon = absl::Milliseconds(250);
constexpr size_t kProbeBodyLimit = 4096;

}  // namespace

Prober::Prober(TaskTable& table, NodeAccess& node, MessageSink& sink, AgentMetrics& metrics,
               Clock& clock)
    : table_(table), node_(node), sink_(sink), metrics_(metrics), clock_(clock) {}

absl::Time Prober::ScheduleDue() {
  absl::Time next;
  std::vector<std::string> due = table_.TakeDueProbes(kScheduleHorizon, &next);
  if (!due.empty()) {
    absl::MutexLock lock(&mu_);
    due_.insert(due_.end(), due.begin(), due.end());
  }
  return next;
}

bool Prober::ProbeNext() {
  std::string id;
  {
    absl::MutexLock lock(&mu_);
    if (due_.empty()) return false;
    id = std::move(due_.front());
    due_.pop_front();
  }
  Probe(id);
  return true;
}

void Prober::Probe(const std::string& container_id) {
  std::optional<TaskTable::ProbeJob> job = table_.ProbeJobFor(container_id);
  if (!job) return;
  HttpResult r = node_.HttpGet(job->pid, static_cast<uint16_t>(job->config.port()),
                               job->config.http_path(), ProbeTimeout(job->config),
                               kProbeBodyLimit);
  if (r.target_gone) {
    // The container's process is gone (it exited, or Swarm is replacing it): no verdict on
    // the application. The watcher drops the container on its die event; until then the task
    // keeps its health.
    metrics_.probes->Add({{"result", "skipped"}}).Increment();
    table_.ProbeSkipped(container_id);
    return;
  }
  const bool ok = r.status >= 200 && r.status < 400;
  metrics_.probes->Add({{"result", ok ? "ok" : "fail"}}).Increment();
  metrics_.probe_seconds->Observe(absl::ToDoubleSeconds(r.latency));
  std::optional<hosting::v1::TaskReport> changed =
      table_.RecordProbe(container_id, r.status, r.error);
  if (changed) {
    hosting::v1::AgentMessage msg;
    *msg.mutable_task() = *std::move(changed);
    sink_.Send(msg);
  }
}

void Prober::RunScheduler(const absl::Notification& stop) {
  while (!stop.HasBeenNotified()) {
    const absl::Time next = ScheduleDue();
    stop.WaitForNotificationWithTimeout(std::max(absl::Milliseconds(1), next - clock_.Now()));
  }
  absl::MutexLock lock(&mu_);
  due_.clear();
}

void Prober::RunWorker(const absl::Notification& stop) {
  while (!stop.HasBeenNotified()) {
    {
      absl::MutexLock lock(&mu_);
      auto ready = [this, &stop]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return !due_.empty() || stop.HasBeenNotified();
      };
      // Stop is a notification, not a change under mu_: look again at least twice a second.
      mu_.AwaitWithTimeout(absl::Condition(&ready), absl::Milliseconds(500));
    }
    ProbeNext();
  }
}

}  // namespace hosting::agent
