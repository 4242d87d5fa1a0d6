#include "controlplane/api/autoscaling_service.h"

#include "controlplane/api/unary.h"

namespace hosting::controlplane {

grpc::ServerUnaryReactor* AutoscalingGrpc::SetPolicy(grpc::CallbackServerContext* ctx,
                                                     const hosting::v1::SetPolicyRequest* request,
                                                     hosting::v1::AutoscalingPolicy* response) {
  return ServeScoped(ctx, metrics_, "SetPolicy", {request->policy().service()}, response,
               [&] { return autoscaler_.SetPolicy(*request); });
}

grpc::ServerUnaryReactor* AutoscalingGrpc::GetPolicy(grpc::CallbackServerContext* ctx,
                                                     const hosting::v1::GetPolicyRequest* request,
                                                     hosting::v1::AutoscalingPolicy* response) {
  return Serve(ctx, metrics_, "GetPolicy", response,
               [&] { return autoscaler_.GetPolicy(request->service()); });
}

grpc::ServerUnaryReactor* AutoscalingGrpc::DeletePolicy(
    grpc::CallbackServerContext* ctx, const hosting::v1::DeletePolicyRequest* request,
    hosting::v1::DeletePolicyResponse* response) {
  return ServeScoped(ctx, metrics_, "DeletePolicy", {request->service()}, response,
               [&] { return autoscaler_.DeletePolicy(request->service()); });
}

grpc::ServerUnaryReactor* AutoscalingGrpc::GetStatus(
    grpc::CallbackServerContext* ctx, const hosting::v1::GetAutoscalingStatusRequest* request,
    hosting::v1::AutoscalingStatus* response) {
  return Serve(ctx, metrics_, "GetStatus", response,
               [&] { return autoscaler_.GetStatus(request->service()); });
}

}  // namespace hosting::controlplane
