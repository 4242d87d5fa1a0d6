#pragma once

#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "controlplane/agents/agent_hub.h"

namespace hosting::controlplane {

// An agent's stream as the hub sees it, recording what it is sent. Unit tests only.
class FakeAgentChannel final : public AgentChannel {
 public:
  explicit FakeAgentChannel(std::string node_id) : node_id_(std::move(node_id)) {}

  const std::string& node_id() const override { return node_id_; }
  void Send(hosting::v1::ControllerMessage message) override {
    absl::MutexLock lock(&mu_);
    sent_.push_back(std::move(message));
  }

  void Close(const absl::Status& why) override {
    absl::MutexLock lock(&mu_);
    closed_ = why;
  }
  // The status the hub closed this channel with (OK: still open).
  absl::Status closed() {
    absl::MutexLock lock(&mu_);
    return closed_;
  }

  // The commands sent so far.
  std::vector<hosting::v1::Command> commands() {
    absl::MutexLock lock(&mu_);
    std::vector<hosting::v1::Command> out;
    for (const auto& m : sent_) {
      if (m.has_command()) out.push_back(m.command());
    }
    return out;
  }
  // Waits until at least `n` commands were sent (false after `timeout`).
  bool AwaitCommands(size_t n, absl::Duration timeout) {
    absl::MutexLock lock(&mu_);
    auto enough = [this, n]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      size_t count = 0;
      for (const auto& m : sent_) count += m.has_command() ? 1 : 0;
      return count >= n;
    };
    return mu_.AwaitWithTimeout(absl::Condition(&enough), timeout);
  }
  std::vector<hosting::v1::ControllerMessage> sent() {
    absl::MutexLock lock(&mu_);
    return sent_;
  }

 private:
  const std::string node_id_;
  absl::Mutex mu_;
  std::vector<hosting::v1::ControllerMessage> sent_ ABSL_GUARDED_BY(mu_);
  absl::Status closed_ ABSL_GUARDED_BY(mu_);
};

}  // namespace hosting::controlplane
