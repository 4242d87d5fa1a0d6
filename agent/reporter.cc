#include "agent/reporter.h"

#include <algorithm>

#include "agent/prom_text.h"
#include "common/proto_time.h"

namespace hosting::agent {
namespace {

// A task up and healthy whose /metrics cannot be read is asked again only after this pause.
constexpr absl::Duration kScrapePause = absl::Seconds(10);
constexpr absl::Duration kScrapeTimeout = absl::Seconds(1);
constexpr size_t kMetricsBodyLimit = 4 << 20;

}  // namespace

Reporter::Reporter(TaskTable& table, NodeAccess& node, MessageSink& sink, AgentMetrics& metrics,
                   Clock& clock, absl::Duration report_interval, absl::Duration resync_interval)
    : table_(table), node_(node), sink_(sink), metrics_(metrics), clock_(clock),
      report_interval_(report_interval), resync_interval_(resync_interval) {}

hosting::v1::AgentMessage Reporter::Collect() {
  hosting::v1::AgentMessage msg;
  auto* report = msg.mutable_metrics();
  std::vector<TaskResources::Reading> readings;
  for (const TaskTable::ScrapeTarget& target : table_.ScrapeTargets()) {
    auto* m = report->add_tasks();
    m->set_task_id(target.task_id);
    m->set_service(target.service);
    m->set_revision(target.revision);
    *m->mutable_scraped_at() = ToTimestamp(clock_.Now());
    if (absl::StatusOr<CgroupStats> cg = node_.ReadCgroup(target.pid); cg.ok()) {
      m->set_cpu_usage_ns(cg->cpu_usage_ns);
      m->set_memory_bytes(cg->memory_bytes);
      m->set_memory_limit_bytes(cg->memory_limit_bytes);
      readings.push_back({target.task_id, target.service, target.revision, cg->cpu_usage_ns,
                          cg->memory_bytes, cg->memory_limit_bytes});
    }
    m->set_app_metrics_missing(true);
    if (target.port == 0) continue;
    HttpResult r = node_.HttpGet(target.pid, static_cast<uint16_t>(target.port), "/metrics",
                                 kScrapeTimeout, kMetricsBodyLimit);
    absl::StatusOr<std::vector<Sample>> samples =
        r.status == 200 ? ParsePrometheusText(r.body)
                        : absl::StatusOr<std::vector<Sample>>(absl::UnavailableError(r.error));
    if (!samples.ok()) {
      metrics_.scrape_failures->Increment();
      table_.ScrapeFailed(target.container_id, kScrapePause);
      continue;
    }
    // A counter with labels appears only with its first request: a task that has served
    // nothing yet (a canary before its weight) has served zero, which is data.
    AppMetrics app = ExtractAppMetrics(*samples);
    m->set_app_metrics_missing(false);
    m->set_requests_total(app.requests_total);
    m->set_errors_total(app.errors_total);
    m->set_in_flight(app.in_flight);
    for (size_t i = 0; i < app.bucket_bounds.size(); ++i) {
      m->add_latency_bucket_bounds(app.bucket_bounds[i]);
      m->add_latency_bucket_counts(app.bucket_counts[i]);
    }
  }
  metrics_.task_resources->Update(std::move(readings));
  if (absl::StatusOr<int64_t> available = node_.MemoryAvailable(); available.ok()) {
    report->set_node_memory_available_bytes(*available);
  }
  return msg;
}

void Reporter::RequestInterval(absl::Duration interval, absl::Time until) {
  absl::MutexLock lock(&mu_);
  requested_interval_ = std::clamp(interval, kMinReportInterval, report_interval_);
  requested_until_ = until;
}

absl::Duration Reporter::Interval() {
  absl::MutexLock lock(&mu_);
  if (clock_.Now() >= requested_until_) return report_interval_;
  return std::min(requested_interval_, report_interval_);
}

void Reporter::Run(const absl::Notification& stop) {
  absl::Time next_snapshot = clock_.Now() + resync_interval_;
  absl::Time last_report = clock_.Now();
  for (;;) {
    // Waits in short slices, so that a faster pace asked for meanwhile applies at once.
    const absl::Duration left = last_report + Interval() - clock_.Now();
    if (left > absl::ZeroDuration()) {
      if (stop.WaitForNotificationWithTimeout(std::min(left, kMinReportInterval))) return;
      continue;
    }
    if (stop.HasBeenNotified()) return;
    last_report = clock_.Now();
    hosting::v1::AgentMessage msg = Collect();
    if (msg.metrics().tasks_size() > 0 || msg.metrics().node_memory_available_bytes() > 0) {
      sink_.Send(msg);
    }
    if (clock_.Now() >= next_snapshot) {
      sink_.Send(table_.Snapshot());
      next_snapshot = clock_.Now() + resync_interval_;
    }
  }
}

}  // namespace hosting::agent
