#include "controlplane/runbook/cluster_operations.h"

#include <map>
#include <memory>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/synchronization/notification.h"
#include "common/status_macros.h"
#include "controlplane/spec/swarm_spec.h"

namespace hosting::controlplane {

absl::StatusOr<std::vector<hosting::v1::Node>> ClusterOperationsImpl::ListNodes() {
  return cluster_.ListNodes();
}

absl::StatusOr<hosting::v1::Node> ClusterOperationsImpl::GetNode(const std::string& node) {
  return cluster_.GetNode(node);
}

absl::StatusOr<hosting::v1::Node> ClusterOperationsImpl::SetAvailability(
    const std::string& node, const std::string& availability) {
  return cluster_.SetAvailability(node, availability);
}

absl::StatusOr<std::vector<HostedTask>> ClusterOperationsImpl::Tasks() {
  ASSIGN_OR_RETURN(std::shared_ptr<const SwarmView> view, reconciler_.FreshView());
  std::map<std::string, std::string> service_of;
  for (const docker::ServiceInfo& s : view->services) {
    auto it = s.labels.find(kLabelService);
    if (it != s.labels.end()) service_of[s.id] = it->second;
  }
  std::vector<HostedTask> out;
  for (const docker::TaskInfo& t : view->tasks) {
    auto it = service_of.find(t.service_id);
    if (it == service_of.end() || t.node_id.empty()) continue;
    out.push_back(HostedTask{t.id, it->second, t.node_id, t.state, t.container_id});
  }
  return out;
}

absl::StatusOr<std::vector<std::string>> ClusterOperationsImpl::ServicesShort() {
  // Fresh first, so the counts below are no older than this call.
  RETURN_IF_ERROR(reconciler_.FreshView().status());
  ASSIGN_OR_RETURN(std::vector<hosting::v1::Service> services, services_.List());
  std::vector<std::string> out;
  for (const hosting::v1::Service& s : services) {
    if (s.status().running_tasks() < s.status().desired_replicas()) {
      out.push_back(absl::StrCat(s.spec().name(), " (", s.status().running_tasks(), "/",
                                 s.status().desired_replicas(), ")"));
    }
  }
  return out;
}

absl::StatusOr<std::string> ClusterOperationsImpl::TaskLogs(const std::string& task_id, int lines) {
  struct Answer {
    absl::Notification done;
    absl::StatusOr<hosting::v1::GetTaskLogsResponse> result;
  };
  auto answer = std::make_shared<Answer>();
  hosting::v1::GetTaskLogsRequest request;
  request.set_task_id(task_id);
  request.set_lines(lines);
  cluster_.TaskLogs(request, [answer](absl::StatusOr<hosting::v1::GetTaskLogsResponse> r) {
    answer->result = std::move(r);
    answer->done.Notify();
  });
  // The hub ends a command after its own timeout; this bound only guards against a lost answer.
  if (!answer->done.WaitForNotificationWithTimeout(ClusterManager::kCommandTimeout +
                                                   absl::Seconds(5))) {
    return absl::DeadlineExceededError(
        absl::StrCat("task ", task_id, "'s agent did not send its logs"));
  }
  ASSIGN_OR_RETURN(hosting::v1::GetTaskLogsResponse logs, std::move(answer->result));
  return logs.logs();
}

absl::StatusOr<hosting::v1::ServiceSpec> ClusterOperationsImpl::ServiceSpec(
    const std::string& service) {
  ASSIGN_OR_RETURN(hosting::v1::Service current, services_.Get(service));
  return current.spec();
}

absl::StatusOr<JobResult> ClusterOperationsImpl::RunJob(const std::string& service,
                                                        const std::string& name,
                                                        const std::string& image,
                                                        const std::vector<std::string>& args,
                                                        absl::Duration timeout,
                                                        const std::function<bool()>& cancelled) {
  ASSIGN_OR_RETURN(hosting::v1::ServiceSpec spec, ServiceSpec(service));
  spec.set_image(image);
  spec.clear_command();
  spec.clear_args();
  for (const std::string& a : args) spec.add_args(a);
  spec.clear_ports();
  spec.clear_health();
  ASSIGN_OR_RETURN(auto secret_ids, reconciler_.SecretIds(spec));
  nlohmann::json job = BuildSwarmSpec(spec, 0, 1, reconciler_.options().network,
                                      reconciler_.options().controller_id, secret_ids);
  // Not a revision of the service: none of hostd's labels (the reconciler leaves it alone), no
  // alias on the network (no traffic), no health check, no restart: it runs once.
  const nlohmann::json labels = {{"hosting.job", name}, {"hosting.job-of", service}};
  job["Name"] = name;
  job["Labels"] = labels;
  job["TaskTemplate"]["ContainerSpec"]["Labels"] = labels;
  job["TaskTemplate"]["ContainerSpec"]["Healthcheck"] = {{"Test", nlohmann::json::array({"NONE"})}};
  for (nlohmann::json& n : job["TaskTemplate"]["Networks"]) n.erase("Aliases");
  job["TaskTemplate"]["RestartPolicy"] = {{"Condition", "none"}};
  job["Mode"] = {{"ReplicatedJob", {{"MaxConcurrent", 1}, {"TotalCompletions", 1}}}};
  job.erase("UpdateConfig");
  job["EndpointSpec"] = {{"Mode", "dnsrr"}};
  // A job of an earlier attempt that hostd did not see end.
  if (absl::StatusOr<docker::ServiceInfo> old = docker_.InspectService(name); old.ok()) {
    docker_.RemoveService(old->id).IgnoreError();
  }
  ASSIGN_OR_RETURN(std::string id, docker_.CreateService(job));
  JobResult result;
  absl::Status waited = absl::OkStatus();
  const absl::Time deadline = absl::Now() + timeout;
  std::string container, task_id;
  for (;;) {
    absl::StatusOr<std::vector<docker::TaskInfo>> tasks = docker_.ListTasks({{"service", {id}}});
    if (tasks.ok() && !tasks->empty()) {
      const docker::TaskInfo& t = tasks->front();
      result.state = t.state;
      result.message = t.error.empty() ? t.message : absl::StrCat(t.message, ": ", t.error);
      container = t.container_id;
      task_id = t.id;
      if (t.state == "complete") {
        result.succeeded = true;
        break;
      }
      if (t.state == "failed" || t.state == "rejected" || t.state == "shutdown" ||
          t.state == "orphaned") {
        break;
      }
    }
    if (cancelled && cancelled()) {
      waited = absl::CancelledError(absl::StrCat("job ", name, " cancelled"));
      break;
    }
    if (absl::Now() >= deadline) {
      waited = absl::DeadlineExceededError(absl::StrCat(
          "job ", name, " still ", result.state.empty() ? "pending" : result.state, " after ",
          absl::FormatDuration(timeout)));
      break;
    }
    absl::SleepFor(absl::Milliseconds(250));
  }
  if (!container.empty()) {
    absl::StatusOr<std::string> logs = docker_.ContainerLogs(container, 40);
    if (!logs.ok() && !task_id.empty()) logs = TaskLogs(task_id, 40);  // on another node
    if (logs.ok()) result.logs = *logs;
  }
  docker_.RemoveService(id).IgnoreError();
  if (!waited.ok()) return absl::Status(waited.code(), absl::StrCat(waited.message(), "; ", result.logs));
  return result;
}

absl::StatusOr<hosting::v1::Release> ClusterOperationsImpl::StartRelease(
    const std::string& service, const std::string& image, const std::string& reason) {
  hosting::v1::StartReleaseRequest request;
  request.set_service(service);
  request.set_image(image);
  request.set_reason(reason);
  return releases_.Start(request);
}

absl::StatusOr<hosting::v1::Release> ClusterOperationsImpl::ReleaseEnv(
    const std::string& service, const std::map<std::string, std::string>& env,
    const std::string& reason) {
  ASSIGN_OR_RETURN(hosting::v1::ServiceSpec spec, ServiceSpec(service));
  for (const auto& [key, value] : env) (*spec.mutable_env())[key] = value;
  hosting::v1::StartReleaseRequest request;
  request.set_service(service);
  *request.mutable_spec() = spec;
  request.set_reason(reason);
  return releases_.Start(request);
}

absl::StatusOr<hosting::v1::Release> ClusterOperationsImpl::GetRelease(const std::string& id) {
  hosting::v1::GetReleaseRequest request;
  request.set_id(id);
  return releases_.Get(request);
}

}  // namespace hosting::controlplane
