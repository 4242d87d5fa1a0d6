#include "controlplane/agents/agent_registry.h"

#include <algorithm>
#include <cmath>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "common/log.h"
#include "common/proto_time.h"
#include "google/protobuf/util/time_util.h"

namespace hosting::controlplane {
namespace {

using hosting::v1::TaskHealth;

struct PendingEvent {
  std::string type, service, message;
  int64_t revision = 0;
  std::map<std::string, std::string> attributes;
};

}  // namespace

const char* TaskHealthName(TaskHealth h) {
  switch (h) {
    case hosting::v1::TASK_HEALTH_STARTING:
      return "starting";
    case hosting::v1::TASK_HEALTH_HEALTHY:
      return "healthy";
    case hosting::v1::TASK_HEALTH_UNHEALTHY:
      return "unhealthy";
    case hosting::v1::TASK_HEALTH_NONE:
      return "none";
    default:
      return "unknown";
  }
}

AgentRegistry::AgentRegistry(Options options, EventLog& events, Clock& clock)
    : options_(options), events_(events), clock_(clock) {}

absl::StatusOr<int64_t> AgentRegistry::Connect(const hosting::v1::Register& reg) {
  const std::string& node = reg.node_id();
  const bool valid_id = !node.empty() && node.size() <= 64 &&
                        std::all_of(node.begin(), node.end(), [](char c) {
                          return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '.' ||
                                 c == '_' || c == '-';
                        });
  if (!valid_id) {
    return absl::InvalidArgumentError(absl::StrCat(
        "node_id '", absl::CHexEscape(node.substr(0, 64)),
        "' is not a node id (1 to 64 letters, digits, '.', '_' or '-')"));
  }
  int64_t id;
  {
    absl::MutexLock lock(&mu_);
    if (Live(node) && clock_.Now() - sessions_[node].last_seen <=
                          options_.heartbeat_interval * options_.missed_heartbeats) {
      const Session& live = sessions_[node];
      return absl::AlreadyExistsError(absl::StrCat(
          "node ", node, " already has a connected agent (on ", live.reg.hostname(),
          ", last heard ", absl::FormatDuration(clock_.Now() - live.last_seen),
          " ago): one agent per node; retry once it has disconnected or gone quiet"));
    }
    Session& s = sessions_[node];
    id = next_session_++;
    s.id = id;
    s.reg = reg;
    s.last_seen = clock_.Now();
    s.lost = false;
    s.connected = true;
    s.gone_since = absl::InfiniteFuture();
  }
  events_.Publish("agent.connected", "", 0,
                  absl::StrCat("agent ", reg.agent_version(), " on ", reg.hostname(), " (",
                               reg.node_id(), ") connected"),
                  {{"node", reg.node_id()}, {"hostname", reg.hostname()}});
  return id;
}

void AgentRegistry::Disconnect(const std::string& node_id, int64_t session) {
  std::string hostname;
  {
    absl::MutexLock lock(&mu_);
    auto it = sessions_.find(node_id);
    if (it == sessions_.end() || it->second.id != session) return;  // replaced by a newer one
    it->second.connected = false;
    it->second.gone_since = std::min(it->second.gone_since, clock_.Now());
    hostname = it->second.reg.hostname();
  }
  events_.Publish("agent.disconnected", "", 0,
                  absl::StrCat("agent on ", hostname, " (", node_id, ") disconnected"),
                  {{"node", node_id}});
}

void AgentRegistry::Touch(const std::string& node_id, int64_t session) {
  bool recovered = false;
  {
    absl::MutexLock lock(&mu_);
    auto it = sessions_.find(node_id);
    if (it == sessions_.end() || it->second.id != session) return;
    it->second.last_seen = clock_.Now();
    recovered = it->second.lost;
    it->second.lost = false;
    if (it->second.connected) it->second.gone_since = absl::InfiniteFuture();
  }
  if (recovered) {
    events_.Publish("agent.connected", "", 0,
                    absl::StrCat("agent on ", node_id, " reports again"), {{"node", node_id}});
  }
}

void AgentRegistry::PublishHealthChange(const hosting::v1::TaskReport& before,
                                        const hosting::v1::TaskReport& after,
                                        const std::string& node_id) {
  if (before.probe_health() == after.probe_health()) return;
  const char* what = TaskHealthName(after.probe_health());
  events_.Publish(absl::StrCat("task.", what), after.service(), after.revision(),
                  absl::StrCat("task ", after.task_id().substr(0, 12), " of ", after.swarm_service(),
                               " on ", node_id, " is ", what,
                               after.last_probe_error().empty() ? "" : ": " + after.last_probe_error()),
                  {{"task", after.task_id()},
                   {"node", node_id},
                   {"from", TaskHealthName(before.probe_health())}});
}

void AgentRegistry::TaskChanged(const std::string& node_id, const hosting::v1::TaskReport& task) {
  hosting::v1::TaskReport before;
  {
    absl::MutexLock lock(&mu_);
    if (OwnedByAnotherLiveNode(task.task_id(), node_id)) return;
    TaskState& slot = Slot(task.task_id());
    before = slot.report;
    slot.report = task;
    slot.node_id = node_id;
  }
  PublishHealthChange(before, task, node_id);
}

absl::Status AgentRegistry::Receive(const std::string& node_id, int64_t session,
                                    const hosting::v1::AgentMessage& message) {
  Touch(node_id, session);
  switch (message.body_case()) {
    case hosting::v1::AgentMessage::kTask:
      TaskChanged(node_id, message.task());
      break;
    case hosting::v1::AgentMessage::kSnapshot:
      return Snapshot(node_id, message.snapshot());
    case hosting::v1::AgentMessage::kMetrics:
      Metrics(node_id, message.metrics());
      break;
    default:
      break;  // heartbeats and repeated registers only touch the session
  }
  return absl::OkStatus();
}

absl::Status AgentRegistry::Snapshot(const std::string& node_id,
                                     const hosting::v1::TaskSnapshot& snapshot) {
  if (snapshot.tasks_size() > kMaxTasksPerNode) {
    return absl::InvalidArgumentError(absl::StrCat(
        "a snapshot of ", snapshot.tasks_size(), " tasks: a node reports at most ",
        kMaxTasksPerNode));
  }
  std::vector<std::pair<hosting::v1::TaskReport, hosting::v1::TaskReport>> changes;
  {
    absl::MutexLock lock(&mu_);
    std::map<std::string, const hosting::v1::TaskReport*> present;
    for (const auto& t : snapshot.tasks()) present[t.task_id()] = &t;
    for (auto it = tasks_.begin(); it != tasks_.end();) {
      if (it->second->node_id == node_id && !present.count(it->first)) {
        it = tasks_.erase(it);
      } else {
        ++it;
      }
    }
    for (const auto& [id, t] : present) {
      if (OwnedByAnotherLiveNode(id, node_id)) continue;
      TaskState& slot = Slot(id);
      if (slot.report.probe_health() != t->probe_health()) changes.emplace_back(slot.report, *t);
      slot.report = *t;
      slot.node_id = node_id;
    }
  }
  for (const auto& [before, after] : changes) PublishHealthChange(before, after, node_id);
  return absl::OkStatus();
}

AgentRegistry::TaskState& AgentRegistry::Slot(const std::string& task_id) {
  std::unique_ptr<TaskState>& slot = tasks_[task_id];
  if (!slot) {
    slot = std::make_unique<TaskState>(options_.window);
    slot->first_reported = clock_.Now();
  }
  return *slot;
}

bool AgentRegistry::Confirmed(const std::string& task_id, TaskState& task,
                              const SwarmTaskListing* listing) {
  // No listing (Swarm cannot be listed), or none made since the first report: believed.
  if (listing == nullptr || listing->listed_at <= task.first_reported) return true;
  auto it = listing->node_of_task.find(task_id);
  if (it != listing->node_of_task.end() && it->second == task.node_id) return true;
  if (!task.warned_unconfirmed) {
    task.warned_unconfirmed = true;
    LogWarning("an agent reports a task Swarm does not run on its node; not believed",
               {{"task", task_id},
                {"node", task.node_id},
                {"swarm_node", it == listing->node_of_task.end() ? "none" : it->second}});
  }
  return false;
}

int AgentRegistry::UnconfirmedTasks() {
  std::shared_ptr<const SwarmTaskListing> listing = Listing();
  absl::MutexLock lock(&mu_);
  int n = 0;
  for (auto& [id, t] : tasks_) n += Confirmed(id, *t, listing.get()) ? 0 : 1;
  return n;
}

bool AgentRegistry::OwnedByAnotherLiveNode(const std::string& task_id,
                                           const std::string& node_id) const {
  auto it = tasks_.find(task_id);
  return it != tasks_.end() && it->second->node_id != node_id && Live(it->second->node_id);
}

void AgentRegistry::Metrics(const std::string& node_id, const hosting::v1::MetricsReport& report) {
  TakeMetrics(node_id, report);
  if (metrics_listener_) metrics_listener_();
}

void AgentRegistry::TakeMetrics(const std::string& node_id,
                                const hosting::v1::MetricsReport& report) {
  absl::MutexLock lock(&mu_);
  if (auto s = sessions_.find(node_id);
      s != sessions_.end() && report.node_memory_available_bytes() > 0) {
    s->second.memory_available_bytes = report.node_memory_available_bytes();
  }
  for (const auto& m : report.tasks()) {
    auto it = tasks_.find(m.task_id());
    if (it == tasks_.end()) continue;  // a snapshot will introduce it
    TaskState& t = *it->second;
    absl::Time at = m.has_scraped_at()
                        ? FromTimestamp(m.scraped_at())
                        : clock_.Now();
    t.metrics_missing = m.app_metrics_missing();
    if (!m.app_metrics_missing()) {
      t.requests.Add(at, m.requests_total());
      t.errors.Add(at, m.errors_total());
      std::vector<double> bounds(m.latency_bucket_bounds().begin(), m.latency_bucket_bounds().end());
      std::vector<double> counts(m.latency_bucket_counts().begin(), m.latency_bucket_counts().end());
      if (!bounds.empty()) t.latency.Add(at, bounds, counts);
    }
    t.cpu_ns.Add(at, static_cast<double>(m.cpu_usage_ns()));
    t.memory_bytes = m.memory_bytes();
    t.memory_limit_bytes = m.memory_limit_bytes();
    t.in_flight = m.in_flight();
  }
}

std::vector<AgentRegistry::TaskMetricsView> AgentRegistry::TaskMetrics(const std::string& service,
                                                                       absl::Duration over) {
  std::shared_ptr<const SwarmTaskListing> listing = Listing();
  absl::MutexLock lock(&mu_);
  std::vector<TaskMetricsView> out;
  for (const auto& [id, t] : tasks_) {
    if (!Confirmed(id, *t, listing.get())) continue;
    if (t->report.service() != service) continue;
    TaskMetricsView v;
    v.task_id = id;
    v.node_id = t->node_id;
    v.revision = t->report.revision();
    if (!Live(t->node_id)) {
      // Its node's agent is gone: nothing about it is current. Health unknown, no rates.
      v.health = hosting::v1::TASK_HEALTH_UNSPECIFIED;
      out.push_back(std::move(v));
      continue;
    }
    v.health = t->report.probe_health();
    if (!t->metrics_missing) {
      v.rps = t->requests.RecentRate(over);
      v.in_flight = t->in_flight;
    }
    const double cpu = t->cpu_ns.RecentRate(over);
    if (!std::isnan(cpu)) v.cpu_cores = cpu / 1e9;
    v.memory_bytes = t->memory_bytes;
    v.memory_limit_bytes = t->memory_limit_bytes;
    out.push_back(std::move(v));
  }
  return out;
}

bool AgentRegistry::Live(const std::string& node_id) const {
  auto it = sessions_.find(node_id);
  return it != sessions_.end() && it->second.connected && !it->second.lost;
}

void AgentRegistry::Sweep() {
  std::vector<std::pair<std::string, std::string>> lost;
  {
    absl::MutexLock lock(&mu_);
    const absl::Time now = clock_.Now();
    const absl::Time limit = now - options_.heartbeat_interval * options_.missed_heartbeats;
    std::set<std::string> forget;
    for (auto& [node, s] : sessions_) {
      if (!s.lost && s.last_seen < limit) {
        s.lost = true;
        s.gone_since = std::min(s.gone_since, now);
        lost.emplace_back(node, s.reg.hostname());
      }
      if (now - s.gone_since >= options_.forget_lost_after) forget.insert(node);
    }
    for (auto it = tasks_.begin(); it != tasks_.end();) {
      it = forget.contains(it->second->node_id) ? tasks_.erase(it) : std::next(it);
    }
  }
  for (const auto& [node, hostname] : lost) {
    events_.Publish("agent.lost", "", 0,
                    absl::StrCat("agent on ", hostname, " (", node, ") missed ",
                                 options_.missed_heartbeats, " heartbeats"),
                    {{"node", node}});
  }
}

AgentRegistry::AgentInfo AgentRegistry::Agent(const std::string& node_id) {
  std::shared_ptr<const SwarmTaskListing> listing = Listing();
  absl::MutexLock lock(&mu_);
  AgentInfo info;
  auto it = sessions_.find(node_id);
  if (it == sessions_.end()) return info;
  const Session& s = it->second;
  info.state = (s.lost || !s.connected) ? hosting::v1::AGENT_STATE_LOST : hosting::v1::AGENT_STATE_CONNECTED;
  info.version = s.reg.agent_version();
  info.labels = {s.reg.labels().begin(), s.reg.labels().end()};
  info.last_seen = s.last_seen;
  for (const auto& [id, t] : tasks_) {
    if (!Confirmed(id, *t, listing.get())) continue;
    if (t->node_id == node_id && !t->report.service().empty()) ++info.running_tasks;
  }
  return info;
}

std::map<int64_t, RevisionMetrics> AgentRegistry::Aggregate(
    const std::string& service) {
  std::shared_ptr<const SwarmTaskListing> listing = Listing();
  absl::MutexLock lock(&mu_);
  std::map<int64_t, RevisionMetrics> out;
  // Latency quantiles need the tasks' histograms merged: sum the windowed bucket deltas.
  std::map<int64_t, std::vector<const TaskState*>> by_revision;
  for (const auto& [id, t] : tasks_) {
    if (!Confirmed(id, *t, listing.get())) continue;
    if (t->report.service() != service) continue;
    RevisionMetrics& a = out[t->report.revision()];
    if (!Live(t->node_id)) {
      ++a.unknown;
      continue;
    }
    switch (t->report.probe_health()) {
      case hosting::v1::TASK_HEALTH_HEALTHY:
        ++a.healthy;
        break;
      case hosting::v1::TASK_HEALTH_UNHEALTHY:
        ++a.unhealthy;
        break;
      default:
        ++a.starting;
    }
    ++a.reporting_tasks;
    if (t->metrics_missing) ++a.metrics_missing;
    a.rps += t->requests.Rate();
    a.cpu_cores += t->cpu_ns.Rate() / 1e9;
    a.memory_bytes += t->memory_bytes;
    by_revision[t->report.revision()].push_back(t.get());
  }
  for (auto& [rev, a] : out) {
    double errors = 0, requests = 0;
    for (const TaskState* t : by_revision[rev]) {
      errors += t->errors.Increase();
      requests += t->requests.Increase();
    }
    a.requests = requests;
    a.errors = errors;
    a.error_ratio = requests > 0 ? errors / requests : 0;
    if (a.reporting_tasks > 0) {
      a.cpu_cores /= a.reporting_tasks;
      a.memory_bytes /= a.reporting_tasks;
    }
    // The revision's latency: quantiles of the tasks' window histograms summed bucket by
    // bucket (tasks of one revision run one binary, so they share a bucket layout).
    std::vector<double> bounds, counts;
    for (const TaskState* t : by_revision[rev]) {
      std::vector<double> c = t->latency.WindowCounts();
      if (c.empty()) continue;
      if (bounds.empty()) {
        bounds = t->latency.bounds();
        counts.assign(c.size(), 0);
      }
      if (t->latency.bounds() != bounds) continue;
      for (size_t i = 0; i < c.size(); ++i) counts[i] += c[i];
    }
    a.p50 = BucketQuantile(bounds, counts, 0.5);
    a.p95 = BucketQuantile(bounds, counts, 0.95);
    a.p99 = BucketQuantile(bounds, counts, 0.99);
    a.latency_bounds = std::move(bounds);
    a.latency_counts = std::move(counts);
  }
  return out;
}

absl::StatusOr<std::pair<std::string, hosting::v1::TaskReport>> AgentRegistry::FindTask(
    const std::string& id) {
  if (id.size() < 6) {
    return absl::InvalidArgumentError(absl::StrCat("task ID '", id, "' is too short (at least 6 characters)"));
  }
  std::shared_ptr<const SwarmTaskListing> listing = Listing();
  absl::MutexLock lock(&mu_);
  const TaskState* found = nullptr;
  for (const auto& [task_id, t] : tasks_) {
    if (!Confirmed(task_id, *t, listing.get())) continue;
    if (task_id.compare(0, id.size(), id) != 0) continue;
    if (found != nullptr) {
      return absl::InvalidArgumentError(absl::StrCat("task ID prefix '", id, "' is ambiguous"));
    }
    found = t.get();
  }
  if (found == nullptr) {
    return absl::NotFoundError(absl::StrCat("no task '", id, "' is reported by any agent"));
  }
  return std::make_pair(found->node_id, found->report);
}

std::vector<std::string> AgentRegistry::ConnectedNodes() {
  absl::MutexLock lock(&mu_);
  std::vector<std::string> out;
  for (const auto& [node, s] : sessions_) {
    if (s.connected && !s.lost) out.push_back(node);
  }
  return out;
}

std::vector<AgentRegistry::NodeCapacity> AgentRegistry::Capacity() {
  absl::MutexLock lock(&mu_);
  std::vector<NodeCapacity> out;
  for (const auto& [node, s] : sessions_) {
    if (!s.connected || s.lost) continue;
    out.push_back({node, s.reg.cpus(), s.reg.memory_bytes(), s.memory_available_bytes});
  }
  return out;
}

std::vector<std::string> AgentRegistry::Services() {
  std::shared_ptr<const SwarmTaskListing> listing = Listing();
  absl::MutexLock lock(&mu_);
  std::set<std::string> names;
  for (const auto& [id, t] : tasks_) {
    if (!Confirmed(id, *t, listing.get())) continue;
    if (!t->report.service().empty()) names.insert(t->report.service());
  }
  return {names.begin(), names.end()};
}

std::vector<hosting::v1::TaskReport> AgentRegistry::Tasks(const std::string& service) {
  std::shared_ptr<const SwarmTaskListing> listing = Listing();
  absl::MutexLock lock(&mu_);
  std::vector<hosting::v1::TaskReport> out;
  for (const auto& [id, t] : tasks_) {
    if (!Confirmed(id, *t, listing.get())) continue;
    if (t->report.service() != service) continue;
    out.push_back(t->report);
    if (!Live(t->node_id)) out.back().set_probe_health(hosting::v1::TASK_HEALTH_UNSPECIFIED);
  }
  return out;
}

}  // namespace hosting::controlplane
