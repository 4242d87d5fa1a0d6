#include "controlplane/agents/agent_hub.h"

#include <map>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "common/proto_time.h"
#include "common/status_macros.h"

namespace hosting::controlplane {

AgentHub::AgentHub(AgentRegistry& registry, Store& store, EventLog& events, Clock& clock)
    : registry_(registry), store_(store), events_(events), clock_(clock) {
  // Probe settings follow the desired state: a service's check, and the revisions a release
  // (or a rollback) brings.
  subscription_ = events_.Subscribe([this](const hosting::v1::Event& e) {
    if (e.type() == "service.applied" || e.type() == "service.deleted" ||
        e.type() == "release.created") {
      BroadcastProbeConfigs();
    }
  });
}

AgentHub::~AgentHub() {
  Stop();
  events_.Unsubscribe(subscription_);
}

void AgentHub::Start(absl::Duration period, absl::Duration probe_resend) {
  if (expiry_.joinable()) return;
  expiry_ = std::thread([this, period, probe_resend] {
    absl::Time resent = clock_.Now();
    while (!stop_.WaitForNotificationWithTimeout(period)) {
      ExpireCommands();
      // Again and again: an agent that missed a change (or restarted) catches up, and
      // settings of revisions that no longer run go away.
      if (clock_.Now() - resent >= probe_resend) {
        resent = clock_.Now();
        BroadcastProbeConfigs();
      }
    }
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
  // The registry admits a node's new session only when its old one went quiet: close that one.
  for (const auto& [other, order] : channels_) {
    if (other->node_id() == channel->node_id()) {
      other->Close(absl::AbortedError(absl::StrCat(
          "replaced by a newer session of node ", channel->node_id(), "'s agent")));
    }
  }
  channels_[channel] = next_channel_++;
}

void AgentHub::Remove(AgentChannel* channel) {
  absl::MutexLock lock(&mu_);
  channels_.erase(channel);
}

int AgentHub::CloseAll(const absl::Status& why) {
  absl::MutexLock lock(&mu_);
  // Close only finishes the stream; Remove runs later, on the stream's own thread.
  for (const auto& [channel, order] : channels_) channel->Close(why);
  return static_cast<int>(channels_.size());
}

namespace {

void AddProbe(const std::string& service, int64_t revision, const hosting::v1::ServiceSpec& spec,
              hosting::v1::ProbeConfigs& out) {
  const auto& h = spec.health();
  if (h.http_path().empty()) return;
  auto* p = out.add_probes();
  p->set_service(service);
  p->set_revision(revision);
  p->set_http_path(h.http_path());
  p->set_port(h.port());
  *p->mutable_interval() = h.interval();
  *p->mutable_timeout() = h.timeout();
  p->set_healthy_threshold(h.healthy_threshold());
  p->set_unhealthy_threshold(h.unhealthy_threshold());
}

}  // namespace

absl::StatusOr<hosting::v1::ControllerMessage> AgentHub::ProbeConfigs() {
  hosting::v1::ControllerMessage msg;
  auto* probes = msg.mutable_probes();
  ASSIGN_OR_RETURN(std::vector<ServiceRecord> records, store_.ListServices());
  for (const auto& r : records) {
    const std::string& name = r.spec.name();
    AddProbe(name, r.revision, r.spec, *probes);
    // The other revisions that run while a release moves between them, with their own checks.
    std::set<int64_t> others;
    for (const auto& [rev, replicas] : r.rollout.replicas()) others.insert(rev);
    if (r.rollout.warm_revision() != 0) others.insert(r.rollout.warm_revision());
    if (r.rollout.preview_revision() != 0) others.insert(r.rollout.preview_revision());
    others.erase(r.revision);
    // Each is probed with its spec's check (a canary's baseline: the revision it copies).
    std::map<int64_t, std::vector<int64_t>> by_spec;  // spec revision -> revisions running it
    for (int64_t other : others) by_spec[SpecRevision(r, other)].push_back(other);
    if (auto it = by_spec.find(r.revision); it != by_spec.end()) {
      for (int64_t other : it->second) AddProbe(name, other, r.spec, *probes);
      by_spec.erase(it);
    }
    if (by_spec.empty()) continue;
    ASSIGN_OR_RETURN(std::vector<RevisionRecord> revisions, store_.ListRevisions(name));
    for (const auto& rev : revisions) {
      auto it = by_spec.find(rev.revision);
      if (it == by_spec.end()) continue;
      for (int64_t other : it->second) AddProbe(name, other, rev.spec, *probes);
    }
  }
  absl::MutexLock lock(&mu_);
  last_probes_ = msg;
  return msg;
}

std::optional<hosting::v1::ControllerMessage> AgentHub::CurrentProbeConfigs() {
  absl::StatusOr<hosting::v1::ControllerMessage> fresh = ProbeConfigs();
  if (fresh.ok()) return *std::move(fresh);
  absl::MutexLock lock(&mu_);
  LogWarning("probe settings not read; the agents keep the last good ones",
             {{"error", fresh.status().ToString()}, {"have_last", last_probes_ ? "yes" : "no"}});
  return last_probes_;
}

void AgentHub::BroadcastProbeConfigs() {
  std::optional<hosting::v1::ControllerMessage> msg = CurrentProbeConfigs();
  if (!msg.has_value()) return;
  absl::MutexLock lock(&mu_);
  for (const auto& [channel, order] : channels_) channel->Send(*msg);
}

void AgentHub::RequestReportInterval(absl::Duration interval, absl::Duration valid_for) {
  hosting::v1::ControllerMessage msg;
  *msg.mutable_report_settings()->mutable_interval() = ToDuration(interval);
  *msg.mutable_report_settings()->mutable_valid_for() = ToDuration(valid_for);
  absl::MutexLock lock(&mu_);
  for (const auto& [channel, order] : channels_) channel->Send(msg);
}

AgentChannel* AgentHub::ChannelOf(const std::string& node_id) {
  AgentChannel* newest = nullptr;
  int64_t newest_order = 0;
  for (const auto& [channel, order] : channels_) {
    if (channel->node_id() == node_id && order > newest_order) {
      newest = channel;
      newest_order = order;
    }
  }
  return newest;
}

std::string AgentHub::Submit(const std::string& node_id, hosting::v1::Command command,
                             absl::Duration timeout, CommandCallback& done) {
  absl::MutexLock lock(&mu_);
  if (stop_.HasBeenNotified()) return "";
  AgentChannel* target = ChannelOf(node_id);
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
