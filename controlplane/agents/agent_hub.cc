#include "controlplane/agents/agent_hub.h"

#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"

namespace hosting::controlplane {

AgentHub::AgentHub(AgentRegistry& registry, Store& store, EventLog& events, Clock& clock)
    : registry_(registry), store_(store), events_(events), clock_(clock) {
  // Probe settings follow the desired state.
  subscription_ = events_.Subscribe([this](const hosting::v1::Event& e) {
    if (e.type() == "service.applied" || e.type() == "service.deleted") BroadcastProbeConfigs();
  });
}

AgentHub::~AgentHub() {
  Stop();
  events_.Unsubscribe(subscription_);
}

void AgentHub::Start(absl::Duration period) {
  if (expiry_.joinable()) return;
  expiry_ = std::thread([this, period] {
    while (!stop_.WaitForNotificationWithTimeout(period)) ExpireCommands();
  });
}

void AgentHub::Stop() {
  if (!stop_.HasBeenNotified()) stop_.Notify();
  if (expiry_.joinable()) expiry_.join();
  // Nobody will answer now: the callers hear so at once rather than at their deadlines.
  std::map<std::string, Pending> pending;
  {
    absl::MutexLock lock(&mu_);
    pending.swap(pending_);
  }
  for (auto& [id, p] : pending) {
    p.done(absl::UnavailableError(
        absl::StrCat("hostd is shutting down: command ", id, " to node ", p.node_id,
                     " was not answered")));
  }
}

void AgentHub::Add(AgentChannel* channel) {
  absl::MutexLock lock(&mu_);
  channels_.insert(channel);
}

void AgentHub::Remove(AgentChannel* channel) {
  absl::MutexLock lock(&mu_);
  channels_.erase(channel);
}

int AgentHub::CloseAll(const absl::Status& why) {
  absl::MutexLock lock(&mu_);
  // Close only finishes the stream; Remove runs later, on the stream's own thread.
  for (AgentChannel* channel : channels_) channel->Close(why);
  return static_cast<int>(channels_.size());
}

hosting::v1::ControllerMessage AgentHub::ProbeConfigs() {
  hosting::v1::ControllerMessage msg;
  auto* probes = msg.mutable_probes();
  absl::StatusOr<std::vector<ServiceRecord>> records = store_.ListServices();
  if (!records.ok()) return msg;
  for (const auto& r : *records) {
    const auto& h = r.spec.health();
    if (h.http_path().empty()) continue;
    auto* p = probes->add_probes();
    p->set_service(r.spec.name());
    p->set_revision(0);  // every revision of the service
    p->set_http_path(h.http_path());
    p->set_port(h.port());
    *p->mutable_interval() = h.interval();
    *p->mutable_timeout() = h.timeout();
    p->set_healthy_threshold(h.healthy_threshold());
    p->set_unhealthy_threshold(h.unhealthy_threshold());
  }
  return msg;
}

void AgentHub::BroadcastProbeConfigs() {
  hosting::v1::ControllerMessage msg = ProbeConfigs();
  absl::MutexLock lock(&mu_);
  for (AgentChannel* c : channels_) c->Send(msg);
}

std::string AgentHub::Submit(const std::string& node_id, hosting::v1::Command command,
                             absl::Duration timeout, CommandCallback& done) {
  absl::MutexLock lock(&mu_);
  if (stop_.HasBeenNotified()) return "";
  AgentChannel* target = nullptr;
  for (AgentChannel* c : channels_) {
    if (c->node_id() == node_id) target = c;
  }
  if (target == nullptr) return "";
  command.set_command_id(absl::StrCat("c", next_command_++));
  const std::string id = command.command_id();
  pending_[id] = Pending{node_id, clock_.Now() + timeout, timeout, std::move(done)};
  hosting::v1::ControllerMessage msg;
  *msg.mutable_command() = std::move(command);
  target->Send(std::move(msg));
  return id;
}

void AgentHub::RunCommandAsync(const std::string& node_id, hosting::v1::Command command,
                               absl::Duration timeout, CommandCallback done) {
  if (Submit(node_id, std::move(command), timeout, done).empty()) {
    done(absl::UnavailableError(absl::StrCat("no agent of node ", node_id, " is connected")));
  }
}

absl::StatusOr<hosting::v1::CommandResult> AgentHub::RunCommand(const std::string& node_id,
                                                                hosting::v1::Command command,
                                                                absl::Duration timeout) {
  struct Waiter {
    absl::Notification done;
    absl::StatusOr<hosting::v1::CommandResult> result;
  };
  auto waiter = std::make_shared<Waiter>();
  CommandCallback done = [waiter](absl::StatusOr<hosting::v1::CommandResult> r) {
    waiter->result = std::move(r);
    waiter->done.Notify();
  };
  const std::string id = Submit(node_id, std::move(command), timeout, done);
  if (id.empty()) {
    return absl::UnavailableError(absl::StrCat("no agent of node ", node_id, " is connected"));
  }
  if (!waiter->done.WaitForNotificationWithTimeout(timeout)) {
    absl::MutexLock lock(&mu_);
    if (pending_.erase(id) > 0) {
      return absl::DeadlineExceededError(absl::StrCat("the agent of node ", node_id,
                                                      " did not answer within ",
                                                      absl::FormatDuration(timeout)));
    }
  }
  waiter->done.WaitForNotification();  // answered (or expired) meanwhile
  return waiter->result;
}

void AgentHub::CommandDone(const hosting::v1::CommandResult& result) {
  CommandCallback done;
  {
    absl::MutexLock lock(&mu_);
    auto it = pending_.find(result.command_id());
    if (it == pending_.end()) return;  // answered after its deadline
    done = std::move(it->second.done);
    pending_.erase(it);
  }
  done(result);
}

void AgentHub::ExpireCommands() {
  std::vector<std::pair<Pending, std::string>> expired;
  {
    absl::MutexLock lock(&mu_);
    const absl::Time now = clock_.Now();
    for (auto it = pending_.begin(); it != pending_.end();) {
      if (it->second.deadline <= now) {
        expired.emplace_back(std::move(it->second), it->first);
        it = pending_.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (auto& [p, id] : expired) {
    p.done(absl::DeadlineExceededError(
        absl::StrCat("the agent of node ", p.node_id, " did not answer command ", id,
                     " within ", absl::FormatDuration(p.timeout))));
  }
}

}  // namespace hosting::controlplane
