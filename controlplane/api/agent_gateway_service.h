#pragma once

#include "controlplane/agents/agent_hub.h"
#include "controlplane/api/unary.h"
#include "hosting/v1/agent.grpc.pb.h"

namespace hosting::controlplane {

// hosting.v1.AgentGateway.Connect: one bidirectional stream per node agent. Each stream is an
// AgentChannel of the hub; what the agent reports goes to the registry, command results to
// the hub. `gate`: agents report to the leader only; a standby ends their stream at Register
// with UNAVAILABLE naming the leader, and the agent tries its next address.
class AgentGatewayGrpc final : public hosting::v1::AgentGateway::CallbackService {
 public:
  explicit AgentGatewayGrpc(AgentHub& hub, ActGate gate = nullptr)
      : hub_(hub), gate_(std::move(gate)) {}

  grpc::ServerBidiReactor<hosting::v1::AgentMessage, hosting::v1::ControllerMessage>* Connect(
      grpc::CallbackServerContext* ctx) override;

 private:
  AgentHub& hub_;
  const ActGate gate_;
};

}  // namespace hosting::controlplane
