#include "agent/task_table.h"

#include <algorithm>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/proto_time.h"

namespace hosting::agent {
namespace {

using hosting::v1::TaskHealth;

constexpr char kTaskLabel[] = "com.docker.swarm.task.id";

std::string Label(const docker::Labels& labels, const char* key) {
  auto it = labels.find(key);
  return it == labels.end() ? "" : it->second;
}

}  // namespace

absl::Duration ProbeInterval(const hosting::v1::ProbeConfig& c) {
  return std::max(absl::Milliseconds(100), FromDuration(c.interval()));
}

absl::Duration ProbeTimeout(const hosting::v1::ProbeConfig& c) {
  return std::max(absl::Milliseconds(50), FromDuration(c.timeout()));
}

// The cadence of one task's probe: the start-up one until it has passed.
absl::Duration TaskTable::Cadence(const Task& t, const hosting::v1::ProbeConfig& c) {
  return t.ever_healthy ? ProbeInterval(c) : std::min(ProbeInterval(c), kStartupProbeInterval);
}

const hosting::v1::ProbeConfig* TaskTable::ConfigFor(const hosting::v1::TaskReport& task) const {
  auto it = probes_.find({task.service(), task.revision()});
  if (it == probes_.end()) it = probes_.find({task.service(), 0});
  return it == probes_.end() ? nullptr : &it->second;
}

TaskTable::SyncResult TaskTable::Sync(const std::vector<docker::ContainerInfo>& running) {
  SyncResult result;
  const absl::Time now = clock_.Now();
  absl::MutexLock lock(&mu_);
  std::map<std::string, const docker::ContainerInfo*> present;
  for (const auto& c : running) present[c.id] = &c;
  for (auto it = tasks_.begin(); it != tasks_.end();) {
    if (present.count(it->first) == 0) {
      result.removed_pids.push_back(it->second.pid);
      it = tasks_.erase(it);
    } else {
      ++it;
    }
  }
  for (const auto& [id, c] : present) {
    if (tasks_.count(id) > 0) continue;
    Task t;
    t.report.set_task_id(Label(c->labels, kTaskLabel));
    t.report.set_container_id(id);
    t.report.set_swarm_service(Label(c->labels, "com.docker.swarm.service.name"));
    t.report.set_service(Label(c->labels, "hosting.service"));
    int64_t rev = 0;
    if (absl::SimpleAtoi(Label(c->labels, "hosting.revision"), &rev)) t.report.set_revision(rev);
    t.report.set_probe_health(ConfigFor(t.report) != nullptr
                                  ? hosting::v1::TASK_HEALTH_STARTING
                                  : hosting::v1::TASK_HEALTH_NONE);
    *t.report.mutable_changed_at() = ToTimestamp(now);
    t.next_probe = now;
    tasks_.emplace(id, std::move(t));
    result.added.push_back(id);
  }
  return result;
}

void TaskTable::SetInspected(const std::string& container_id, int pid,
                             const std::string& docker_health, const std::string& address) {
  absl::MutexLock lock(&mu_);
  auto it = tasks_.find(container_id);
  if (it == tasks_.end()) return;
  it->second.pid = pid;
  it->second.report.set_docker_health(docker_health);
  it->second.report.set_address(address);
}

std::optional<hosting::v1::TaskReport> TaskTable::SetDockerHealth(const std::string& container_id,
                                                                  const std::string& status) {
  absl::MutexLock lock(&mu_);
  auto it = tasks_.find(container_id);
  if (it == tasks_.end()) return std::nullopt;
  it->second.report.set_docker_health(status);
  *it->second.report.mutable_changed_at() = ToTimestamp(clock_.Now());
  return it->second.report;
}

void TaskTable::SetProbeConfigs(const hosting::v1::ProbeConfigs& configs) {
  const absl::Time now = clock_.Now();
  absl::MutexLock lock(&mu_);
  // What a task's probe does (whichever entry it comes from), to tell which tasks a change
  // concerns.
  auto probe_of = [this](const Task& t) ABSL_SHARED_LOCKS_REQUIRED(mu_) {
    const hosting::v1::ProbeConfig* c = ConfigFor(t.report);
    if (c == nullptr) return std::string();
    hosting::v1::ProbeConfig what = *c;
    what.clear_revision();
    return what.SerializeAsString();
  };
  std::map<std::string, std::string> before;
  for (const auto& [id, t] : tasks_) before[id] = probe_of(t);
  probes_.clear();
  for (const auto& p : configs.probes()) probes_[{p.service(), p.revision()}] = p;
  for (auto& [id, t] : tasks_) {
    if (probe_of(t) == before[id]) continue;
    if (ConfigFor(t.report) == nullptr) {
      t.report.set_probe_health(hosting::v1::TASK_HEALTH_NONE);
    } else if (t.report.probe_health() == hosting::v1::TASK_HEALTH_NONE) {
      t.report.set_probe_health(hosting::v1::TASK_HEALTH_STARTING);
    }
    t.successes = 0;
    t.failures = 0;
    t.next_probe = now;
  }
}

std::vector<std::string> TaskTable::TakeDueProbes(absl::Duration horizon, absl::Time* next) {
  const absl::Time now = clock_.Now();
  absl::Time soonest = now + horizon;
  std::vector<std::string> due;
  absl::MutexLock lock(&mu_);
  for (auto& [cid, t] : tasks_) {
    const hosting::v1::ProbeConfig* c = ConfigFor(t.report);
    if (t.pid == 0 || c == nullptr) continue;
    if (t.probing) {
      // Probes keep a fixed cadence: its next one is due one interval after this one was.
      soonest = std::min(soonest, t.next_probe + Cadence(t, *c));
    } else if (t.next_probe <= now) {
      t.probing = true;
      due.push_back(cid);
    } else {
      soonest = std::min(soonest, t.next_probe);
    }
  }
  *next = soonest;
  return due;
}

std::optional<TaskTable::ProbeJob> TaskTable::ProbeJobFor(const std::string& container_id) {
  absl::MutexLock lock(&mu_);
  auto it = tasks_.find(container_id);
  if (it == tasks_.end()) return std::nullopt;
  const hosting::v1::ProbeConfig* c = ConfigFor(it->second.report);
  if (c == nullptr) {
    it->second.probing = false;
    return std::nullopt;
  }
  return ProbeJob{it->second.pid, *c};
}

std::optional<hosting::v1::TaskReport> TaskTable::RecordProbe(const std::string& container_id,
                                                              int http_status,
                                                              const std::string& error) {
  const absl::Time now = clock_.Now();
  absl::MutexLock lock(&mu_);
  auto it = tasks_.find(container_id);
  if (it == tasks_.end()) return std::nullopt;
  Task& t = it->second;
  t.probing = false;
  const hosting::v1::ProbeConfig* c = ConfigFor(t.report);
  if (c == nullptr) return std::nullopt;  // the probe was withdrawn while it ran
  const int healthy_after = static_cast<int>(std::max<uint32_t>(1, c->healthy_threshold()));
  const int unhealthy_after = static_cast<int>(std::max<uint32_t>(1, c->unhealthy_threshold()));
  TaskHealth next = t.report.probe_health();
  if (http_status >= 200 && http_status < 400) {
    t.failures = 0;
    if (++t.successes >= healthy_after) {
      next = hosting::v1::TASK_HEALTH_HEALTHY;
      t.ever_healthy = true;
    }
    t.report.clear_last_probe_error();
  } else {
    t.successes = 0;
    // "Not yet" (no answer, 503, 429) from a task still starting counts once an interval.
    const bool not_yet = http_status == 0 || http_status == 503 || http_status == 429;
    if (!t.ever_healthy && !not_yet) {
      t.report.set_last_probe_error(
          absl::StrCat("HTTP ", http_status, " from a task that has never passed its probe"));
      next = hosting::v1::TASK_HEALTH_UNHEALTHY;
    } else {
      t.report.set_last_probe_error(http_status != 0 ? absl::StrCat("HTTP ", http_status) : error);
      if (t.ever_healthy || now - t.last_failure_counted >= ProbeInterval(*c)) {
        t.last_failure_counted = now;
        if (++t.failures >= unhealthy_after) next = hosting::v1::TASK_HEALTH_UNHEALTHY;
      }
    }
  }
  t.next_probe = std::max(t.next_probe + Cadence(t, *c), now);  // after ever_healthy is known
  if (next == t.report.probe_health()) return std::nullopt;
  t.report.set_probe_health(next);
  *t.report.mutable_changed_at() = ToTimestamp(now);
  return t.report;
}

void TaskTable::ProbeSkipped(const std::string& container_id) {
  const absl::Time now = clock_.Now();
  absl::MutexLock lock(&mu_);
  auto it = tasks_.find(container_id);
  if (it == tasks_.end()) return;
  Task& t = it->second;
  t.probing = false;
  const hosting::v1::ProbeConfig* c = ConfigFor(t.report);
  t.next_probe = c == nullptr ? now : std::max(t.next_probe + Cadence(t, *c), now);
}

std::vector<TaskTable::ScrapeTarget> TaskTable::ScrapeTargets() {
  const absl::Time now = clock_.Now();
  std::vector<ScrapeTarget> targets;
  absl::MutexLock lock(&mu_);
  for (const auto& [cid, t] : tasks_) {
    if (t.report.service().empty() || t.pid == 0) continue;
    const hosting::v1::ProbeConfig* c = ConfigFor(t.report);
    const bool scrape = c != nullptr && t.next_scrape <= now;
    targets.push_back({cid, t.report.task_id(), t.report.service(), t.report.revision(), t.pid,
                       scrape ? c->port() : 0});
  }
  return targets;
}

void TaskTable::ScrapeFailed(const std::string& container_id, absl::Duration pause) {
  absl::MutexLock lock(&mu_);
  auto it = tasks_.find(container_id);
  // One still starting is asked again at the next report, so a canary's first requests are
  // counted from its start.
  if (it != tasks_.end() && it->second.report.probe_health() == hosting::v1::TASK_HEALTH_HEALTHY) {
    it->second.next_scrape = clock_.Now() + pause;
  }
}

std::string TaskTable::ContainerOf(const std::string& task_id) const {
  absl::MutexLock lock(&mu_);
  for (const auto& [cid, t] : tasks_) {
    if (t.report.task_id() == task_id) return cid;
  }
  return "";
}

hosting::v1::AgentMessage TaskTable::Snapshot() const {
  hosting::v1::AgentMessage msg;
  auto* snapshot = msg.mutable_snapshot();
  absl::MutexLock lock(&mu_);
  for (const auto& [cid, t] : tasks_) *snapshot->add_tasks() = t.report;
  return msg;
}

size_t TaskTable::size() const {
  absl::MutexLock lock(&mu_);
  return tasks_.size();
}

}  // namespace hosting::agent
