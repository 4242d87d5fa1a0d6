#pragma once

#include "controlplane/api/handlers.h"
#include "controlplane/store/event_log.h"
#include "controlplane/store/store.h"
#include "controlplane/telemetry/metrics.h"
#include "hosting/v1/cluster.grpc.pb.h"

namespace hosting::controlplane {

// hosting.v1.Cluster over its handlers; WatchEvents follows the event log. Node
// commands finish their call from the agent's answer, holding no callback
// thread while they run.
class ClusterGrpc final : public hosting::v1::Cluster::CallbackService {
 public:
  ClusterGrpc(ClusterHandlers& handlers, EventLog& events, Store& store, HostdMetrics& metrics)
      : handlers_(handlers), events_(events), store_(store), metrics_(metrics) {}

  grpc::ServerUnaryReactor* ListNodes(grpc::CallbackServerContext* ctx,
                                      const hosting::v1::ListNodesRequest* request,
                                      hosting::v1::ListNodesResponse* response) override;
  grpc::ServerUnaryReactor* GetNode(grpc::CallbackServerContext* ctx,
                                    const hosting::v1::GetNodeRequest* request,
                                    hosting::v1::Node* response) override;
  grpc::ServerUnaryReactor* DrainNode(grpc::CallbackServerContext* ctx,
                                      const hosting::v1::DrainNodeRequest* request,
                                      hosting::v1::Node* response) override;
  grpc::ServerUnaryReactor* ActivateNode(grpc::CallbackServerContext* ctx,
                                         const hosting::v1::ActivateNodeRequest* request,
                                         hosting::v1::Node* response) override;
  grpc::ServerUnaryReactor* GetServiceStatus(grpc::CallbackServerContext* ctx,
                                             const hosting::v1::GetServiceStatusRequest* request,
                                             hosting::v1::ServiceHealthStatus* response) override;
  grpc::ServerUnaryReactor* GetTaskLogs(grpc::CallbackServerContext* ctx,
                                        const hosting::v1::GetTaskLogsRequest* request,
                                        hosting::v1::GetTaskLogsResponse* response) override;
  grpc::ServerUnaryReactor* RestartTask(grpc::CallbackServerContext* ctx,
                                        const hosting::v1::RestartTaskRequest* request,
                                        hosting::v1::RestartTaskResponse* response) override;
  grpc::ServerUnaryReactor* PullImage(grpc::CallbackServerContext* ctx,
                                      const hosting::v1::PullImageRequest* request,
                                      hosting::v1::PullImageResponse* response) override;
  grpc::ServerWriteReactor<hosting::v1::Event>* WatchEvents(
      grpc::CallbackServerContext* ctx, const hosting::v1::WatchEventsRequest* request) override;
  grpc::ServerUnaryReactor* GetControlPlane(grpc::CallbackServerContext* ctx,
                                            const hosting::v1::GetControlPlaneRequest* request,
                                            hosting::v1::ControlPlane* response) override;
  grpc::ServerUnaryReactor* ListAudit(grpc::CallbackServerContext* ctx,
                                      const hosting::v1::ListAuditRequest* request,
                                      hosting::v1::ListAuditResponse* response) override;

 private:
  ClusterHandlers& handlers_;
  EventLog& events_;
  Store& store_;
  HostdMetrics& metrics_;
};

}  // namespace hosting::controlplane
