#pragma once

#include <map>
#include <memory>
#include <set>
#include <string>

#include "absl/synchronization/notification.h"

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "controlplane/agent_registry.h"
#include "controlplane/metrics.h"
#include "controlplane/store.h"
#include "hosting/v1/agent.grpc.pb.h"

namespace hosting::controlplane {

class AgentSession;

// AgentGateway.Connect: one bidirectional stream per node agent. Feeds the AgentRegistry and
// sends each agent the probe settings of every hosted service (again whenever they change).
class AgentGatewayGrpc final : public hosting::v1::AgentGateway::CallbackService {
 public:
  AgentGatewayGrpc(AgentRegistry& registry, Store& store, EventLog& events);
  ~AgentGatewayGrpc() override;

  grpc::ServerBidiReactor<hosting::v1::AgentMessage, hosting::v1::ControllerMessage>* Connect(
      grpc::CallbackServerContext* ctx) override;

  // The probe settings of every service, from the store.
  hosting::v1::ControllerMessage ProbeConfigs();
  // Sends the current probe settings to every connected agent.
  void BroadcastProbeConfigs();

  // Sends a command to the agent of `node_id` and waits for its result.
  // UNAVAILABLE when no agent of that node is connected, DEADLINE_EXCEEDED after `timeout`.
  absl::StatusOr<hosting::v1::CommandResult> RunCommand(const std::string& node_id,
                                                        hosting::v1::Command command,
                                                        absl::Duration timeout);
  void CommandDone(const hosting::v1::CommandResult& result);

  void Add(AgentSession* s);
  void Remove(AgentSession* s);

 private:
  AgentRegistry& registry_;
  Store& store_;
  EventLog& events_;
  int64_t subscription_ = 0;
  absl::Mutex mu_;
  std::set<AgentSession*> sessions_ ABSL_GUARDED_BY(mu_);
  struct Pending {
    absl::Notification done;
    hosting::v1::CommandResult result;
  };
  std::map<std::string, std::shared_ptr<Pending>> pending_ ABSL_GUARDED_BY(mu_);
  int64_t next_command_ ABSL_GUARDED_BY(mu_) = 1;
};

}  // namespace hosting::controlplane
