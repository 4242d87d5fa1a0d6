#include "agent/command_runner.h"

#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/log.h"

namespace hosting::agent {

CommandRunner::CommandRunner(docker::DockerClient& docker, TaskTable& table, MessageSink& sink)
    : docker_(docker), table_(table), sink_(sink) {}

void CommandRunner::Enqueue(hosting::v1::Command command) {
  absl::MutexLock lock(&mu_);
  queue_.push_back(std::move(command));
}

hosting::v1::CommandResult CommandRunner::Execute(const hosting::v1::Command& command) {
  hosting::v1::CommandResult result;
  result.set_command_id(command.command_id());
  auto container_of = [this](const std::string& task_id) -> absl::StatusOr<std::string> {
    std::string cid = table_.ContainerOf(task_id);
    if (cid.empty()) {
      return absl::NotFoundError(absl::StrCat("task ", task_id, " has no container on this node"));
    }
    return cid;
  };
  absl::Status st;
  switch (command.body_case()) {
    case hosting::v1::Command::kPullImage: {
      absl::StatusOr<std::string> pulled = Pull(command.pull_image());
      st = pulled.status();
      if (pulled.ok()) result.set_output(*std::move(pulled));
      break;
    }
    case hosting::v1::Command::kRestartTask: {
      absl::StatusOr<std::string> cid = container_of(command.restart_task().task_id());
      st = cid.ok() ? docker_.RestartContainer(*cid) : cid.status();
      break;
    }
    case hosting::v1::Command::kTaskLogs: {
      absl::StatusOr<std::string> cid = container_of(command.task_logs().task_id());
      absl::StatusOr<std::string> logs =
          cid.ok() ? docker_.ContainerLogs(*cid, command.task_logs().lines()) : cid.status();
      st = logs.status();
      if (logs.ok()) result.set_output(*std::move(logs));
      break;
    }
    default:
      st = absl::InvalidArgumentError(
          absl::StrCat("command ", command.command_id(), " has no body this agent knows"));
  }
  result.set_ok(st.ok());
  if (!st.ok()) result.set_error(std::string(st.message()));
  LogInfo("command done", {{"command", command.command_id()},
                           {"ok", st.ok() ? "true" : "false"},
                           {"error", std::string(st.message())}});
  return result;
}

absl::StatusOr<std::string> CommandRunner::Pull(const hosting::v1::PullImage& pull) {
  const std::string& image = pull.image();
  if (pull.if_missing()) {
    absl::StatusOr<bool> present = docker_.HasImage(image);
    if (!present.ok()) return present.status();
    if (*present) return absl::StrCat(image, " is present on this node: not pulled");
  }
  absl::Status st = docker_.PullImage(image);
  if (st.ok()) return absl::StrCat("pulled ", image);
  if (!NamesRegistry(image)) {
    return absl::Status(st.code(),
                        absl::StrCat(st.message(), " (", image, " names no registry, so Docker ",
                                     "asked Docker Hub; an image built or loaded on the nodes ",
                                     "needs no pull)"));
  }
  return st;
}

bool CommandRunner::NamesRegistry(absl::string_view image) {
  // Docker's rule: the first path component is a registry when it has a '.' or ':', or is
  // "localhost".
  const size_t slash = image.find('/');
  if (slash == absl::string_view::npos) return false;
  const absl::string_view first = image.substr(0, slash);
  return first == "localhost" || absl::StrContains(first, '.') || absl::StrContains(first, ':');
}

void CommandRunner::Run(const absl::Notification& stop) {
  while (true) {
    hosting::v1::Command command;
    {
      absl::MutexLock lock(&mu_);
      auto ready = [this, &stop]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return !queue_.empty() || stop.HasBeenNotified();
      };
      // Stop is a notification, not a change under mu_: look again at least twice a second.
      mu_.AwaitWithTimeout(absl::Condition(&ready), absl::Milliseconds(500));
      if (stop.HasBeenNotified()) return;
      if (queue_.empty()) continue;
      command = std::move(queue_.front());
      queue_.pop_front();
    }
    hosting::v1::AgentMessage msg;
    *msg.mutable_result() = Execute(command);
    sink_.Send(msg);
  }
}

}  // namespace hosting::agent
