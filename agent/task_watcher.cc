#include "agent/task_watcher.h"

#include <atomic>

#include "absl/strings/strip.h"
#include "common/log.h"
#include "common/metric_window.h"

namespace hosting::agent {
namespace {

constexpr char kTaskLabel[] = "com.docker.swarm.task.id";

// Readers of a container inspect answer that take any shape (a field missing or null reads as
// unknown): the engine's answer is input, not a promise.
const nlohmann::json* Child(const nlohmann::json& j, const char* key) {
  if (!j.is_object()) return nullptr;
  auto it = j.find(key);
  return it == j.end() || it->is_null() ? nullptr : &*it;
}

int PidOf(const nlohmann::json& c) {
  const nlohmann::json* state = Child(c, "State");
  const nlohmann::json* pid = state != nullptr ? Child(*state, "Pid") : nullptr;
  return pid != nullptr && pid->is_number_integer() ? pid->get<int>() : 0;
}

std::string DockerHealthOf(const nlohmann::json& c) {
  const nlohmann::json* state = Child(c, "State");
  const nlohmann::json* health = state != nullptr ? Child(*state, "Health") : nullptr;
  const nlohmann::json* status = health != nullptr ? Child(*health, "Status") : nullptr;
  return status != nullptr && status->is_string() ? status->get<std::string>() : "none";
}

// The task's address on its first network other than the ingress.
std::string AddressOf(const nlohmann::json& c) {
  const nlohmann::json* settings = Child(c, "NetworkSettings");
  const nlohmann::json* nets = settings != nullptr ? Child(*settings, "Networks") : nullptr;
  if (nets == nullptr || !nets->is_object()) return "";
  for (const auto& [name, net] : nets->items()) {
    const nlohmann::json* ip = Child(net, "IPAddress");
    if (name != "ingress" && ip != nullptr && ip->is_string() && !ip->get<std::string>().empty()) {
      return ip->get<std::string>();
    }
  }
  return "";
}

}  // namespace

TaskWatcher::TaskWatcher(docker::DockerClient& docker, NodeAccess& node, TaskTable& table,
                         MessageSink& sink, AgentMetrics& metrics, Clock& clock,
                         absl::Duration resync_interval, absl::Duration max_backoff)
    : docker_(docker), node_(node), table_(table), sink_(sink), metrics_(metrics), clock_(clock),
      resync_interval_(resync_interval), max_backoff_(max_backoff) {}

absl::Status TaskWatcher::Refresh() {
  absl::StatusOr<std::vector<docker::ContainerInfo>> list =
      docker_.ListContainers({{"label", {kTaskLabel}}, {"status", {"running"}}});
  if (!list.ok()) return list.status();
  TaskTable::SyncResult sync = table_.Sync(*list);
  for (int pid : sync.removed_pids) {
    if (pid != 0) node_.Forget(pid);
  }
  // Inspect outside the table's lock: it is a Docker call.
  for (const std::string& id : sync.added) {
    absl::StatusOr<nlohmann::json> c = docker_.InspectContainer(id);
    if (!c.ok()) continue;  // gone already: the next list drops it
    table_.SetInspected(id, PidOf(*c), DockerHealthOf(*c), AddressOf(*c));
  }
  metrics_.tasks->Set(static_cast<double>(table_.size()));
  if (sync.changed()) sink_.Send(table_.Snapshot());
  return absl::OkStatus();
}

void TaskWatcher::OnEvent(const docker::Event& e, bool* dirty) {
  if (absl::StartsWith(e.action, "health_status")) {
    // Docker's own health verdict changed: report it at once.
    absl::string_view status = e.action;
    status.remove_prefix(std::min(status.size(), status.find(':') + 1));
    std::optional<hosting::v1::TaskReport> report =
        table_.SetDockerHealth(e.actor_id, std::string(absl::StripLeadingAsciiWhitespace(status)));
    if (report) {
      hosting::v1::AgentMessage msg;
      *msg.mutable_task() = *std::move(report);
      sink_.Send(msg);
    }
  } else if (e.action == "start" || e.action == "die" || e.action == "destroy") {
    *dirty = true;
  }
}

void TaskWatcher::Run(const absl::Notification& stop) {
  Backoff backoff(absl::Milliseconds(200), max_backoff_);
  while (!stop.HasBeenNotified()) {
    absl::Status listed = Refresh();
    if (!listed.ok()) {
      LogWarning("cannot list task containers", {{"error", listed.ToString()}});
      stop.WaitForNotificationWithTimeout(backoff.Next());
      continue;
    }
    backoff.Reset();
    // Events are hints: any container start, death or removal triggers a full list, and every
    // resync interval the list is read again anyway. The stream ends at the resync time, on
    // stop, or when the engine goes away; each case loops back to a full list (which logs and
    // backs off if the engine is gone).
    const absl::Time next_resync = clock_.Now() + resync_interval_;
    bool dirty = false;
    absl::Status streamed = docker_.StreamEvents(
        absl::ToUnixSeconds(clock_.Now()), {{"type", {"container"}}, {"label", {kTaskLabel}}},
        [&](const docker::Event& e) { OnEvent(e, &dirty); },
        [&] {
          if (dirty) {
            dirty = false;
            Refresh().IgnoreError();
          }
          return stop.HasBeenNotified() || clock_.Now() >= next_resync;
        });
    if (!streamed.ok() && !stop.HasBeenNotified()) {
      LogWarning("container event stream ended", {{"error", streamed.ToString()}});
    }
  }
}

}  // namespace hosting::agent
