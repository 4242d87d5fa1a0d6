#include "controlplane/runbook/cluster_operations.h"

#include <map>
#include <memory>

#include "absl/strings/str_cat.h"
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
    out.push_back(HostedTask{t.id, it->second, t.node_id, t.state});
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

absl::StatusOr<int64_t> ClusterOperationsImpl::SetServiceEnv(
    const std::string& service, const std::map<std::string, std::string>& env) {
  ASSIGN_OR_RETURN(hosting::v1::Service current, services_.Get(service));
  hosting::v1::ApplyServiceRequest request;
  *request.mutable_spec() = current.spec();
  for (const auto& [key, value] : env) (*request.mutable_spec()->mutable_env())[key] = value;
  // Applied only over the spec just read: a concurrent change is not overwritten.
  request.set_expected_generation(current.generation());
  ASSIGN_OR_RETURN(hosting::v1::ApplyServiceResponse applied, services_.Apply(request));
  return applied.service().revision();
}

}  // namespace hosting::controlplane
