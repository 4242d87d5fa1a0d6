#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "controlplane/agents/agent_registry.h"
#include "controlplane/store/event_log.h"
#include "controlplane/store/store.h"
#include "hosting/v1/agent.pb.h"

namespace hosting::controlplane {

// One connected agent as the hub sees it: where to send. The gRPC stream implements it.
class AgentChannel {
 public:
  virtual ~AgentChannel() = default;
  // Fixed once the channel is added to the hub.
  virtual const std::string& node_id() const = 0;
  // Queues a message; never blocks.
  virtual void Send(hosting::v1::ControllerMessage message) = 0;
  // Ends the stream with `why` (the agent reconnects, possibly elsewhere); never blocks.
  virtual void Close(const absl::Status& why) = 0;
};

// The agents' side of hostd that is not gRPC: which channel reaches which node, the probe
// settings every agent gets (again whenever the desired state changes, and periodically), and
// node commands with their results and deadlines.
//
// Probe settings are capacity: an agent without them reports its tasks unprobed, and a task
// nobody probes is never routed. So a store that cannot be read never produces a settings
// message: the hub keeps the last one it built and sends that again.
class AgentHub {
 public:
  AgentHub(AgentRegistry& registry, Store& store, EventLog& events, Clock& clock);
  ~AgentHub();

  // Expires commands past their deadline every `period`, and sends the probe settings again
  // every `probe_resend`, until Stop (tests call ExpireCommands and BroadcastProbeConfigs
  // themselves instead).
  void Start(absl::Duration period = absl::Milliseconds(100),
             absl::Duration probe_resend = absl::Seconds(30));
  // Fails every command still waiting (UNAVAILABLE) and refuses new ones. Idempotent.
  void Stop();

  void Add(AgentChannel* channel);
  void Remove(AgentChannel* channel);
  // Ends every agent's stream with `why`: a hostd that stopped leading sends its agents on to
  // the new leader. Returns how many streams were closed.
  int CloseAll(const absl::Status& why);

  // The probe settings of every service and of each revision that runs (a release's new
  // revision may check another path than the old one), read from the store now; the store's
  // error when it cannot be read. Remembered as the last good settings.
  absl::StatusOr<hosting::v1::ControllerMessage> ProbeConfigs();
  // The settings read now, or when the store does not answer the last good ones; nullopt when
  // there are none (the agent keeps what it has).
  std::optional<hosting::v1::ControllerMessage> CurrentProbeConfigs();
  // Sends CurrentProbeConfigs to every agent.
  void BroadcastProbeConfigs();
  // Asks every connected agent for metrics reports every `interval` for `valid_for`
  // (ReportSettings); callers repeat it while they need it (agents connecting meanwhile get it
  // with the next).
  void RequestReportInterval(absl::Duration interval, absl::Duration valid_for);

  using CommandCallback = std::function<void(absl::StatusOr<hosting::v1::CommandResult>)>;
  // Sends a command to the agent of `node_id`; `done` runs once, with the agent's result, or
  // UNAVAILABLE when no agent of that node is connected (at once, on the caller's thread), or
  // DEADLINE_EXCEEDED after `timeout` (on the expiry thread). Never blocks.
  void RunCommandAsync(const std::string& node_id, hosting::v1::Command command,
                       absl::Duration timeout, CommandCallback done);
  // The same, waiting for the result.
  absl::StatusOr<hosting::v1::CommandResult> RunCommand(const std::string& node_id,
                                                        hosting::v1::Command command,
                                                        absl::Duration timeout);
  // An agent's answer.
  void CommandDone(const hosting::v1::CommandResult& result);
  // Fails the commands whose deadline has passed.
  void ExpireCommands();

  AgentRegistry& registry() { return registry_; }

 private:
  struct Pending {
    std::string node_id;
    absl::Time deadline;
    absl::Duration timeout;
    CommandCallback done;
  };

  // Registers and sends the command; its ID, or "" when no agent of the node is connected
  // (then `done` is left as it was).
  std::string Submit(const std::string& node_id, hosting::v1::Command command,
                     absl::Duration timeout, CommandCallback& done);

  // The newest channel of `node_id` (a reconnect can overlap its old stream's last moments).
  AgentChannel* ChannelOf(const std::string& node_id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  AgentRegistry& registry_;
  Store& store_;
  EventLog& events_;
  Clock& clock_;
  int64_t subscription_ = 0;
  absl::Mutex mu_;
  // Every channel, with the order it was added in.
  std::map<AgentChannel*, int64_t> channels_ ABSL_GUARDED_BY(mu_);
  int64_t next_channel_ ABSL_GUARDED_BY(mu_) = 1;
  std::optional<hosting::v1::ControllerMessage> last_probes_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, Pending> pending_ ABSL_GUARDED_BY(mu_);
  int64_t next_command_ ABSL_GUARDED_BY(mu_) = 1;
  absl::Notification stop_;
  std::thread expiry_;
};

}  // namespace hosting::controlplane
