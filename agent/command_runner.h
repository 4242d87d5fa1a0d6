#pragma once

#include <deque>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "agent/message_sink.h"
#include "agent/task_table.h"
#include "common/docker_client.h"
#include "hosting/v1/agent.pb.h"

namespace hosting::agent {

// Node-local commands from hostd (pull an image, restart a task's container, read its logs),
// run one at a time off the stream's reading thread (a pull may take minutes); each result goes
// back with the command's ID.
class CommandRunner {
 public:
  CommandRunner(docker::DockerClient& docker, TaskTable& table, MessageSink& sink);

  void Enqueue(hosting::v1::Command command);
  // Runs one command now and returns its result.
  hosting::v1::CommandResult Execute(const hosting::v1::Command& command);
  // Runs queued commands and sends their results until `stop`.
  void Run(const absl::Notification& stop);

  // Whether an image reference names its registry (else Docker asks Docker Hub).
  static bool NamesRegistry(absl::string_view image);

 private:
  // A pull (or, with if_missing and a local copy, none); what was done.
  absl::StatusOr<std::string> Pull(const hosting::v1::PullImage& pull);

  docker::DockerClient& docker_;
  TaskTable& table_;
  MessageSink& sink_;
  absl::Mutex mu_;
  std::deque<hosting::v1::Command> queue_ ABSL_GUARDED_BY(mu_);
};

}  // namespace hosting::agent
