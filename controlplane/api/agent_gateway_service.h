#pragma once

#include "controlplane/agents/agent_hub.h"
#include "hosting/v1/agent.grpc.pb.h"

namespace hosting::controlplane {

// hosting.v1.AgentGateway.Connect: one bidirectional stream per node agent. Each stream is an
// AgentChannel of the hub; what the agent reports goes to the registry, command results to
// the hub.
class AgentGatewayGrpc final : public hosting::v1::AgentGateway::CallbackService {
 public:
  explicit AgentGatewayGrpc(AgentHub& hub) : hub_(hub) {}

  grpc::ServerBidiReactor<hosting::v1::AgentMessage, hosting::v1::ControllerMessage>* Connect(
      grpc::CallbackServerContext* ctx) override;

 private:
  AgentHub& hub_;
};

}  // namespace hosting::controlplane
