#pragma once

#include <set>
#include <string>

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

  void Add(AgentSession* s);
  void Remove(AgentSession* s);

 private:
  AgentRegistry& registry_;
  Store& store_;
  EventLog& events_;
  int64_t subscription_ = 0;
  absl::Mutex mu_;
  std::set<AgentSession*> sessions_ ABSL_GUARDED_BY(mu_);
};

}  // namespace hosting::controlplane
