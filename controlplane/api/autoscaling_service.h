#pragma once

#include "controlplane/autoscale/autoscale_manager.h"
#include "controlplane/telemetry/metrics.h"
#include "hosting/v1/autoscaling.grpc.pb.h"

namespace hosting::controlplane {

// hosting.v1.Autoscaling on the AutoscaleManager.
class AutoscalingGrpc final : public hosting::v1::Autoscaling::CallbackService {
 public:
  AutoscalingGrpc(AutoscaleManager& autoscaler, HostdMetrics& metrics)
      : autoscaler_(autoscaler), metrics_(metrics) {}
  grpc::ServerUnaryReactor* SetPolicy(grpc::CallbackServerContext* ctx,
                                      const hosting::v1::SetPolicyRequest*,
                                      hosting::v1::AutoscalingPolicy*) override;
  grpc::ServerUnaryReactor* GetPolicy(grpc::CallbackServerContext* ctx,
                                      const hosting::v1::GetPolicyRequest*,
                                      hosting::v1::AutoscalingPolicy*) override;
  grpc::ServerUnaryReactor* DeletePolicy(grpc::CallbackServerContext* ctx,
                                         const hosting::v1::DeletePolicyRequest*,
                                         hosting::v1::DeletePolicyResponse*) override;
  grpc::ServerUnaryReactor* GetStatus(grpc::CallbackServerContext* ctx,
                                      const hosting::v1::GetAutoscalingStatusRequest*,
                                      hosting::v1::AutoscalingStatus*) override;

 private:
  AutoscaleManager& autoscaler_;
  HostdMetrics& metrics_;
};

}  // namespace hosting::controlplane
