#include "controlplane/api/cluster_service.h"

#include <string>
#include <vector>

#include "controlplane/api/log_stream.h"
#include "common/status_macros.h"
#include "controlplane/api/unary.h"

namespace hosting::controlplane {
namespace {

// Finishes a unary call later, from a callback of the domain: *response is written just
// before Finish, while gRPC keeps the call (and so `response`) alive.
template <typename Response>
ClusterManager::Done<Response> FinishLater(grpc::ServerUnaryReactor* reactor,
                                           HostdMetrics& metrics, const char* method,
                                           Response* response) {
  return [reactor, &metrics, method, response](absl::StatusOr<Response> r) {
    if (r.ok()) *response = *std::move(r);
    FinishCall(reactor, metrics, method, r.status());
  };
}

}  // namespace

grpc::ServerUnaryReactor* ClusterGrpc::ListNodes(grpc::CallbackServerContext* ctx,
                                                 const hosting::v1::ListNodesRequest*,
                                                 hosting::v1::ListNodesResponse* response) {
  return Serve(ctx, metrics_, "ListNodes", response,
               [&]() -> absl::StatusOr<hosting::v1::ListNodesResponse> {
                 absl::StatusOr<std::vector<hosting::v1::Node>> nodes = cluster_.ListNodes();
                 if (!nodes.ok()) return nodes.status();
                 hosting::v1::ListNodesResponse out;
                 for (auto& n : *nodes) *out.add_nodes() = std::move(n);
                 return out;
               });
}

grpc::ServerUnaryReactor* ClusterGrpc::GetNode(grpc::CallbackServerContext* ctx,
                                               const hosting::v1::GetNodeRequest* request,
                                               hosting::v1::Node* response) {
  return Serve(ctx, metrics_, "GetNode", response,
               [&] { return cluster_.GetNode(request->node()); });
}

grpc::ServerUnaryReactor* ClusterGrpc::DrainNode(grpc::CallbackServerContext* ctx,
                                                 const hosting::v1::DrainNodeRequest* request,
                                                 hosting::v1::Node* response) {
  return Serve(ctx, metrics_, "DrainNode", response,
               [&]() -> absl::StatusOr<hosting::v1::Node> {
                 RETURN_IF_ERROR(PassGate(gate_));
                 return cluster_.SetAvailability(request->node(), "drain");
               });
}

grpc::ServerUnaryReactor* ClusterGrpc::ActivateNode(
    grpc::CallbackServerContext* ctx, const hosting::v1::ActivateNodeRequest* request,
    hosting::v1::Node* response) {
  return Serve(ctx, metrics_, "ActivateNode", response,
               [&]() -> absl::StatusOr<hosting::v1::Node> {
                 RETURN_IF_ERROR(PassGate(gate_));
                 return cluster_.SetAvailability(request->node(), "active");
               });
}

grpc::ServerUnaryReactor* ClusterGrpc::GetServiceStatus(
    grpc::CallbackServerContext* ctx, const hosting::v1::GetServiceStatusRequest* request,
    hosting::v1::ServiceHealthStatus* response) {
  return Serve(ctx, metrics_, "GetServiceStatus", response,
               [&] { return cluster_.ServiceHealth(request->name()); });
}

grpc::ServerWriteReactor<hosting::v1::Event>* ClusterGrpc::WatchEvents(
    grpc::CallbackServerContext*, const hosting::v1::WatchEventsRequest* request) {
  metrics_.CountGrpc("WatchEvents", "OK");
  LogStream<hosting::v1::Event>::Options o;
  const std::string service = request->service();
  const std::vector<std::string> types(request->types().begin(), request->types().end());
  o.match = [service, types](const hosting::v1::Event& e) {
    return EventLog::Matches(e, service, types);
  };
  o.convert = [](const hosting::v1::Event& e) { return e; };
  if (request->since_sequence() > 0 || request->from_start()) {
    o.replay_after = request->from_start() ? 0 : request->since_sequence();
  }
  o.no_follow = request->no_follow();
  return LogStream<hosting::v1::Event>::Open(events_, store_, metrics_, std::move(o));
}

grpc::ServerUnaryReactor* ClusterGrpc::GetTaskLogs(grpc::CallbackServerContext* ctx,
                                                   const hosting::v1::GetTaskLogsRequest* request,
                                                   hosting::v1::GetTaskLogsResponse* response) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  cluster_.TaskLogs(*request, FinishLater(reactor, metrics_, "GetTaskLogs", response));
  return reactor;
}

grpc::ServerUnaryReactor* ClusterGrpc::RestartTask(grpc::CallbackServerContext* ctx,
                                                   const hosting::v1::RestartTaskRequest* request,
                                                   hosting::v1::RestartTaskResponse* response) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  if (absl::Status st = PassGate(gate_); !st.ok()) {
    FinishCall(reactor, metrics_, "RestartTask", st);
    return reactor;
  }
  cluster_.RestartTask(*request, FinishLater(reactor, metrics_, "RestartTask", response));
  return reactor;
}

grpc::ServerUnaryReactor* ClusterGrpc::PullImage(grpc::CallbackServerContext* ctx,
                                                 const hosting::v1::PullImageRequest* request,
                                                 hosting::v1::PullImageResponse* response) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  if (absl::Status st = PassGate(gate_); !st.ok()) {
    FinishCall(reactor, metrics_, "PullImage", st);
    return reactor;
  }
  cluster_.PullImage(*request, FinishLater(reactor, metrics_, "PullImage", response));
  return reactor;
}

grpc::ServerUnaryReactor* ClusterGrpc::GetControlPlane(
    grpc::CallbackServerContext* ctx, const hosting::v1::GetControlPlaneRequest*,
    hosting::v1::ControlPlane* response) {
  return Serve(ctx, metrics_, "GetControlPlane", response,
               [&]() -> absl::StatusOr<hosting::v1::ControlPlane> {
                 if (!control_plane_) {
                   return absl::UnimplementedError("this hostd was built without election");
                 }
                 return control_plane_();
               });
}

grpc::ServerUnaryReactor* ClusterGrpc::ListAudit(grpc::CallbackServerContext* ctx,
                                                 const hosting::v1::ListAuditRequest* request,
                                                 hosting::v1::ListAuditResponse* response) {
  return Serve(ctx, metrics_, "ListAudit", response,
               [&]() -> absl::StatusOr<hosting::v1::ListAuditResponse> {
                 if (audit_ == nullptr) {
                   return absl::UnimplementedError("this hostd keeps no audit trail");
                 }
                 absl::StatusOr<std::vector<hosting::v1::AuditEntry>> entries =
                     audit_->List(*request);
                 if (!entries.ok()) return entries.status();
                 hosting::v1::ListAuditResponse out;
                 for (auto& e : *entries) *out.add_entries() = std::move(e);
                 return out;
               });
}

}  // namespace hosting::controlplane
