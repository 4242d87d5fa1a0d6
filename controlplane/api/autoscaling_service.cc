#include "controlplane/api/autoscaling_service.h"

#include "controlplane/api/unary.h"

namespace hosting::controlplane {

grpc::ServerUnaryReactor* AutoscalingGrpc::SetPolicy(grpc::CallbackServerContext* ctx,
                                                     const hosting::v1::SetPolicyRequest* request,
                                                     hosting::v1::AutoscalingPolicy* response) {
  return Serve(ctx, metrics_, "SetPolicy", response,
               [&] { return handlers_.SetPolicy(*request, CallerOfCall(ctx)); });
}

grpc::ServerUnaryReactor* AutoscalingGrpc::GetPolicy(grpc::CallbackServerContext* ctx,
                                                     const hosting::v1::GetPolicyRequest* request,
                                                     hosting::v1::AutoscalingPolicy* response) {
  return Serve(ctx, metrics_, "GetPolicy", response, [&] { return handlers_.GetPolicy(*request); });
}

grpc::ServerUnaryReactor* AutoscalingGrpc::DeletePolicy(
    grpc::CallbackServerContext* ctx, const hosting::v1::DeletePolicyRequest* request,
    hosting::v1::DeletePolicyResponse* response) {
  return Serve(ctx, metrics_, "DeletePolicy", response,
               [&] { return handlers_.DeletePolicy(*request, CallerOfCall(ctx)); });
}

grpc::ServerUnaryReactor* AutoscalingGrpc::GetStatus(
    grpc::CallbackServerContext* ctx, const hosting::v1::GetAutoscalingStatusRequest* request,
    hosting::v1::AutoscalingStatus* response) {
  return Serve(ctx, metrics_, "GetStatus", response, [&] { return handlers_.GetStatus(*request); });
}

}  // namespace hosting::controlplane
