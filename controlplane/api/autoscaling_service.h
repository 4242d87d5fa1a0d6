#pragma once

#include "controlplane/api/handlers.h"
#include "controlplane/telemetry/metrics.h"
#include "hosting/v1/autoscaling.grpc.pb.h"

namespace hosting::controlplane {

// hosting.v1.Autoscaling over its handlers.
class AutoscalingGrpc final : public hosting::v1::Autoscaling::CallbackService {
 public:
  AutoscalingGrpc(AutoscalingHandlers& handlers, HostdMetrics& metrics)
      : handlers_(handlers), metrics_(metrics) {}

  grpc::ServerUnaryReactor* SetPolicy(grpc::CallbackServerContext* ctx,
                                      const hosting::v1::SetPolicyRequest* request,
                                      hosting::v1::AutoscalingPolicy* response) override;
  grpc::ServerUnaryReactor* GetPolicy(grpc::CallbackServerContext* ctx,
                                      const hosting::v1::GetPolicyRequest* request,
                                      hosting::v1::AutoscalingPolicy* response) override;
  grpc::ServerUnaryReactor* DeletePolicy(grpc::CallbackServerContext* ctx,
                                         const hosting::v1::DeletePolicyRequest* request,
                                         hosting::v1::DeletePolicyResponse* response) override;
  grpc::ServerUnaryReactor* GetStatus(grpc::CallbackServerContext* ctx,
                                      const hosting::v1::GetAutoscalingStatusRequest* request,
                                      hosting::v1::AutoscalingStatus* response) override;

 private:
  AutoscalingHandlers& handlers_;
  HostdMetrics& metrics_;
};

}  // namespace hosting::controlplane
