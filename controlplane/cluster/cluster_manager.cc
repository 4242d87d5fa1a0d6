#include "controlplane/cluster/cluster_manager.h"

#include <cmath>
#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "common/log.h"
#include "common/proto_time.h"
#include "common/status_macros.h"
#include "controlplane/spec/validation.h"

namespace hosting::controlplane {
namespace {

hosting::v1::NodeAvailability AvailabilityFrom(const std::string& a) {
  if (a == "active") return hosting::v1::NODE_AVAILABILITY_ACTIVE;
  if (a == "pause") return hosting::v1::NODE_AVAILABILITY_PAUSE;
  if (a == "drain") return hosting::v1::NODE_AVAILABILITY_DRAIN;
  return hosting::v1::NODE_AVAILABILITY_UNSPECIFIED;
}

google::protobuf::Duration Seconds(double s) {
  if (std::isnan(s)) return google::protobuf::Duration();
  return ToDuration(absl::Seconds(s));
}

// A command's result as a Status: the agent's error becomes FAILED_PRECONDITION with its text.
absl::Status CommandStatus(const absl::StatusOr<hosting::v1::CommandResult>& r,
                           const std::string& what) {
  if (!r.ok()) return r.status();
  if (!r->ok()) return absl::FailedPreconditionError(absl::StrCat(what, ": ", r->error()));
  return absl::OkStatus();
}

}  // namespace

hosting::v1::Node ClusterManager::ToProto(const docker::NodeInfo& n, absl::Time observed_at) {
  hosting::v1::Node out;
  *out.mutable_observed_at() = ToTimestamp(observed_at);
  out.set_id(n.id);
  out.set_hostname(n.hostname);
  out.set_role(n.role);
  out.set_availability(AvailabilityFrom(n.availability));
  out.set_state(n.state);
  out.set_address(n.address);
  for (const auto& [k, v] : n.labels) (*out.mutable_labels())[k] = v;
  out.set_nano_cpus(n.nano_cpus);
  out.set_memory_bytes(n.memory_bytes);
  out.set_engine_version(n.engine_version);
  AgentRegistry::AgentInfo agent = agents_.Agent(n.id);
  out.set_agent_state(agent.state);
  out.set_agent_version(agent.version);
  for (const auto& [k, v] : agent.labels) (*out.mutable_agent_labels())[k] = v;
  if (agent.state != hosting::v1::AGENT_STATE_ABSENT) {
    *out.mutable_agent_last_seen() = ToTimestamp(agent.last_seen);
  }
  out.set_running_tasks(agent.running_tasks);
  return out;
}

absl::StatusOr<docker::NodeInfo> ClusterManager::FindNode(
    const std::vector<docker::NodeInfo>& nodes, const std::string& node) {
  if (node.empty()) return InvalidArgumentWithViolations({{"node", "required (ID or hostname)"}});
  for (const auto& n : nodes) {
    if (n.id == node || n.hostname == node) return n;
  }
  return absl::NotFoundError(absl::StrCat("no Swarm node with ID or hostname '", node, "'"));
}

absl::StatusOr<std::vector<hosting::v1::Node>> ClusterManager::ListNodes() {
  absl::StatusOr<std::shared_ptr<const SwarmView>> view = reconciler_.View();
  if (!view.ok()) return view.status();
  std::vector<hosting::v1::Node> out;
  for (const auto& n : (*view)->nodes) out.push_back(ToProto(n, (*view)->listed_at));
  return out;
}

absl::StatusOr<hosting::v1::Node> ClusterManager::GetNode(const std::string& node) {
  absl::StatusOr<std::shared_ptr<const SwarmView>> view = reconciler_.View();
  if (!view.ok()) return view.status();
  absl::StatusOr<docker::NodeInfo> n = FindNode((*view)->nodes, node);
  if (!n.ok()) return n.status();
  return ToProto(*n, (*view)->listed_at);
}

absl::StatusOr<hosting::v1::Node> ClusterManager::SetAvailability(
    const std::string& node, const std::string& availability) {
  // A write acts on the node's current version: read Swarm, not the cache.
  absl::StatusOr<std::vector<docker::NodeInfo>> nodes = docker_.ListNodes();
  if (!nodes.ok()) return nodes.status();
  absl::StatusOr<docker::NodeInfo> n = FindNode(*nodes, node);
  if (!n.ok()) return n.status();
  if (availability == "drain" && traffic_grace_ > absl::ZeroDuration() && !TrafficOff(*n) &&
      n->availability != "drain") {
    // Traffic first: the router (on its next tick) takes the node's tasks out of the load
    // balancer; Swarm stops them only after the grace.
    RETURN_IF_ERROR(UpdateNodeSpec(*n, [](nlohmann::json& spec) {
      spec["Labels"][kTrafficOffLabel] = "true";
    }));
    (void)reconciler_.FreshView();
    events_.Publish("node.traffic_off", "", 0,
                    absl::StrCat("node ", n->hostname, " (", n->id, "): traffic taken off its "
                                 "tasks; draining them in ", absl::FormatDuration(traffic_grace_)),
                    {{"node", n->id}});
    absl::SleepFor(traffic_grace_);
    absl::StatusOr<docker::NodeInfo> fresh = docker_.InspectNode(n->id);
    if (!fresh.ok()) return fresh.status();
    n = std::move(fresh);
  }
  RETURN_IF_ERROR(UpdateNodeSpec(*n, [&](nlohmann::json& spec) {
    spec["Availability"] = availability;
    if (availability == "active" && spec.contains("Labels") && spec["Labels"].is_object()) {
      spec["Labels"].erase(kTrafficOffLabel);
    }
  }));
  events_.Publish(absl::StrCat("node.", availability), "", 0,
                  absl::StrCat("node ", n->hostname, " (", n->id, ") set to ", availability),
                  {{"node", n->id}});
  const absl::Time read_at = absl::Now();
  // The node list changed: relist now, so every read after this answer sees the write.
  (void)reconciler_.FreshView();
  absl::StatusOr<docker::NodeInfo> updated = docker_.InspectNode(n->id);
  if (!updated.ok()) {
    // The change is made: a failed read after it must not turn the call into a failure (the
    // caller would retry a drain that happened). Answer with what was written.
    LogWarning("node read after its change failed; answering with the change",
               {{"node", n->id}, {"error", updated.status().ToString()}});
    n->availability = availability;
    if (availability == "active") n->labels.erase(kTrafficOffLabel);
    return ToProto(*n, read_at);
  }
  return ToProto(*updated, read_at);
}

absl::Status ClusterManager::UpdateNodeSpec(docker::NodeInfo& n,
                                            const std::function<void(nlohmann::json&)>& change) {
  constexpr int kAttempts = 5;
  for (int attempt = 1;; ++attempt) {
    nlohmann::json spec = n.spec;
    change(spec);
    absl::Status st = docker_.UpdateNode(n.id, n.version, spec);
    if (st.ok()) return absl::OkStatus();
    if (!absl::IsAborted(st) || attempt == kAttempts) return st;
    absl::StatusOr<docker::NodeInfo> fresh = docker_.InspectNode(n.id);
    if (!fresh.ok()) return fresh.status();
    n = std::move(*fresh);
  }
}

absl::StatusOr<hosting::v1::ServiceHealthStatus> ClusterManager::ServiceHealth(
    const std::string& name) {
  absl::StatusOr<hosting::v1::Service> service = services_.Get(name);
  if (!service.ok()) return service.status();
  hosting::v1::ServiceHealthStatus out;
  out.set_name(name);
  std::map<int64_t, RevisionMetrics> aggs = agents_.Aggregate(name);
  for (const auto& rs : service->status().revisions()) {
    auto* r = out.add_revisions();
    r->set_revision(rs.revision());
    r->set_desired(rs.desired_replicas());
    r->set_running(rs.running_tasks());
    if (auto it = aggs.find(rs.revision()); it != aggs.end()) {
      const RevisionMetrics& a = it->second;
      r->set_healthy(a.healthy);
      r->set_unhealthy(a.unhealthy);
      r->set_starting(a.starting);
      r->set_unknown(a.unknown);
      r->set_requests_per_second(a.rps);
      r->set_error_ratio(a.error_ratio);
      *r->mutable_latency_p50() = Seconds(a.p50);
      *r->mutable_latency_p95() = Seconds(a.p95);
      *r->mutable_latency_p99() = Seconds(a.p99);
      r->set_cpu_cores(a.cpu_cores);
      r->set_memory_bytes(a.memory_bytes);
    }
    *r->mutable_window() = ToDuration(agents_.options().window);
  }
  for (const AgentRegistry::TaskMetricsView& t :
       agents_.TaskMetrics(name, agents_.options().window)) {
    for (auto& r : *out.mutable_revisions()) {
      if (r.revision() != t.revision) continue;
      hosting::v1::TaskHealthStatus* task = r.add_tasks();
      task->set_task_id(t.task_id);
      task->set_node_id(t.node_id);
      task->set_health(TaskHealthName(t.health));
      if (!std::isnan(t.rps)) task->set_requests_per_second(t.rps);
      if (!std::isnan(t.cpu_cores)) task->set_cpu_cores(t.cpu_cores);
      task->set_memory_bytes(t.memory_bytes);
    }
  }
  *out.mutable_status() = std::move(*service->mutable_status());
  return out;
}

void ClusterManager::TaskLogs(const hosting::v1::GetTaskLogsRequest& request,
                              Done<hosting::v1::GetTaskLogsResponse> done) {
  if (request.lines() < 0 || request.lines() > 10000) {
    done(InvalidArgumentWithViolations({{"lines", "must be 0 (default 100) to 10000"}}));
    return;
  }
  auto task = agents_.FindTask(request.task_id());
  if (!task.ok()) {
    done(task.status());
    return;
  }
  hosting::v1::Command cmd;
  cmd.mutable_task_logs()->set_task_id(task->second.task_id());
  cmd.mutable_task_logs()->set_lines(request.lines() == 0 ? 100 : request.lines());
  const std::string node = task->first;
  const std::string task_id = task->second.task_id();
  hub_.RunCommandAsync(node, std::move(cmd), kCommandTimeout,
                       [done, node, task_id](absl::StatusOr<hosting::v1::CommandResult> r) {
                         if (absl::Status s = CommandStatus(r, "task logs"); !s.ok()) {
                           done(s);
                           return;
                         }
                         hosting::v1::GetTaskLogsResponse out;
                         out.set_task_id(task_id);
                         out.set_node_id(node);
                         out.set_logs(r->output());
                         done(std::move(out));
                       });
}

void ClusterManager::RestartTask(const hosting::v1::RestartTaskRequest& request,
                                 Done<hosting::v1::RestartTaskResponse> done) {
  auto task = agents_.FindTask(request.task_id());
  if (!task.ok()) {
    done(task.status());
    return;
  }
  hosting::v1::Command cmd;
  cmd.mutable_restart_task()->set_task_id(task->second.task_id());
  const std::string node = task->first;
  const hosting::v1::TaskReport report = task->second;
  hub_.RunCommandAsync(
      node, std::move(cmd), kCommandTimeout,
      [this, done, node, report](absl::StatusOr<hosting::v1::CommandResult> r) {
        if (absl::Status s = CommandStatus(r, "restart"); !s.ok()) {
          done(s);
          return;
        }
        events_.Publish("task.restarted", report.service(), report.revision(),
                        absl::StrCat("restarted task ", report.task_id(), " on ", node),
                        {{"task", report.task_id()}, {"node", node}});
        hosting::v1::RestartTaskResponse out;
        out.set_task_id(report.task_id());
        out.set_node_id(node);
        done(std::move(out));
      });
}

void ClusterManager::PullImage(const hosting::v1::PullImageRequest& request,
                               Done<hosting::v1::PullImageResponse> done) {
  if (request.image().empty() || request.image().find(' ') != std::string::npos) {
    done(InvalidArgumentWithViolations({{"image", "required: an image reference"}}));
    return;
  }
  std::vector<std::string> nodes(request.nodes().begin(), request.nodes().end());
  if (nodes.empty()) nodes = agents_.ConnectedNodes();
  if (nodes.empty()) {
    done(absl::UnavailableError("no agent is connected"));
    return;
  }
  PullOnNodes(request.image(), nodes, kPullTimeout, /*if_missing=*/false,
              [done, nodes](std::map<std::string, std::string> errors) {
                hosting::v1::PullImageResponse out;
                for (const std::string& node : nodes) {
                  auto* r = out.add_results();
                  r->set_node_id(node);
                  const std::string& error = errors[node];
                  r->set_ok(error.empty());
                  if (!error.empty()) r->set_error(error);
                }
                done(std::move(out));
              });
}

void ClusterManager::PullOnNodes(const std::string& image, std::vector<std::string> nodes,
                                 absl::Duration timeout, bool if_missing,
                                 std::function<void(std::map<std::string, std::string>)> done) {
  struct Gather {
    absl::Mutex mu;
    size_t left ABSL_GUARDED_BY(mu) = 0;
    std::map<std::string, std::string> errors ABSL_GUARDED_BY(mu);
    std::function<void(std::map<std::string, std::string>)> done;
  };
  if (nodes.empty()) {
    done({});
    return;
  }
  auto gather = std::make_shared<Gather>();
  gather->done = std::move(done);
  {
    absl::MutexLock lock(&gather->mu);
    gather->left = nodes.size();
  }
  for (const std::string& node : nodes) {
    hosting::v1::Command cmd;
    cmd.mutable_pull_image()->set_image(image);
    cmd.mutable_pull_image()->set_if_missing(if_missing);
    hub_.RunCommandAsync(node, std::move(cmd), timeout,
                         [gather, node](absl::StatusOr<hosting::v1::CommandResult> r) {
                           const absl::Status s = CommandStatus(r, "pull");
                           std::map<std::string, std::string> all;
                           {
                             absl::MutexLock lock(&gather->mu);
                             gather->errors[node] = s.ok() ? "" : std::string(s.message());
                             if (--gather->left > 0) return;
                             all = std::move(gather->errors);
                           }
                           gather->done(std::move(all));
                         });
  }
}

}  // namespace hosting::controlplane
