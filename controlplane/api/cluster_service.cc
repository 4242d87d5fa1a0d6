#include "controlplane/api/cluster_service.h"

#include "controlplane/api/log_stream.h"
#include "controlplane/api/unary.h"

namespace hosting::controlplane {

grpc::ServerUnaryReactor* ClusterGrpc::ListNodes(grpc::CallbackServerContext* ctx,
                                                 const hosting::v1::ListNodesRequest* request,
                                                 hosting::v1::ListNodesResponse* response) {
  return Serve(ctx, metrics_, "ListNodes", response, [&] { return handlers_.ListNodes(*request); });
}

grpc::ServerUnaryReactor* ClusterGrpc::GetNode(grpc::CallbackServerContext* ctx,
                                               const hosting::v1::GetNodeRequest* request,
                                               hosting::v1::Node* response) {
  return Serve(ctx, metrics_, "GetNode", response, [&] { return handlers_.GetNode(*request); });
}

grpc::ServerUnaryReactor* ClusterGrpc::DrainNode(grpc::CallbackServerContext* ctx,
                                                 const hosting::v1::DrainNodeRequest* request,
                                                 hosting::v1::Node* response) {
  return Serve(ctx, metrics_, "DrainNode", response, [&] { return handlers_.DrainNode(*request); });
}

grpc::ServerUnaryReactor* ClusterGrpc::ActivateNode(grpc::CallbackServerContext* ctx,
                                                    const hosting::v1::ActivateNodeRequest* request,
                                                    hosting::v1::Node* response) {
  return Serve(ctx, metrics_, "ActivateNode", response,
               [&] { return handlers_.ActivateNode(*request); });
}

grpc::ServerUnaryReactor* ClusterGrpc::GetServiceStatus(
    grpc::CallbackServerContext* ctx, const hosting::v1::GetServiceStatusRequest* request,
    hosting::v1::ServiceHealthStatus* response) {
  return Serve(ctx, metrics_, "GetServiceStatus", response,
               [&] { return handlers_.GetServiceStatus(*request); });
}

grpc::ServerUnaryReactor* ClusterGrpc::GetTaskLogs(grpc::CallbackServerContext* ctx,
                                                   const hosting::v1::GetTaskLogsRequest* request,
                                                   hosting::v1::GetTaskLogsResponse* response) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  handlers_.GetTaskLogs(*request, FinishLater(reactor, metrics_, "GetTaskLogs", response));
  return reactor;
}

grpc::ServerUnaryReactor* ClusterGrpc::RestartTask(grpc::CallbackServerContext* ctx,
                                                   const hosting::v1::RestartTaskRequest* request,
                                                   hosting::v1::RestartTaskResponse* response) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  handlers_.RestartTask(*request, FinishLater(reactor, metrics_, "RestartTask", response));
  return reactor;
}

grpc::ServerUnaryReactor* ClusterGrpc::PullImage(grpc::CallbackServerContext* ctx,
                                                 const hosting::v1::PullImageRequest* request,
                                                 hosting::v1::PullImageResponse* response) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  handlers_.PullImage(*request, FinishLater(reactor, metrics_, "PullImage", response));
  return reactor;
}

grpc::ServerWriteReactor<hosting::v1::Event>* ClusterGrpc::WatchEvents(
    grpc::CallbackServerContext*, const hosting::v1::WatchEventsRequest* request) {
  return OpenLogStream(events_, store_, metrics_, "WatchEvents", handlers_.WatchEvents(*request));
}

grpc::ServerUnaryReactor* ClusterGrpc::GetControlPlane(
    grpc::CallbackServerContext* ctx, const hosting::v1::GetControlPlaneRequest* request,
    hosting::v1::ControlPlane* response) {
  return Serve(ctx, metrics_, "GetControlPlane", response,
               [&] { return handlers_.GetControlPlane(*request); });
}

grpc::ServerUnaryReactor* ClusterGrpc::ListAudit(grpc::CallbackServerContext* ctx,
                                                 const hosting::v1::ListAuditRequest* request,
                                                 hosting::v1::ListAuditResponse* response) {
  return Serve(ctx, metrics_, "ListAudit", response, [&] { return handlers_.ListAudit(*request); });
}

}  // namespace hosting::controlplane
