#pragma once

#include <functional>

#include "controlplane/api/audit.h"
#include "controlplane/cluster/cluster_manager.h"
#include "controlplane/store/event_log.h"
#include "controlplane/store/store.h"
#include "controlplane/telemetry/metrics.h"
#include "hosting/v1/cluster.grpc.pb.h"

namespace hosting::controlplane {

// hosting.v1.Cluster on the ClusterManager; WatchEvents follows the event log. Node commands
// finish their call from the agent's answer, holding no callback thread while they run.
class ClusterGrpc final : public hosting::v1::Cluster::CallbackService {
 public:
  // `gate`: node and task commands act on the cluster, so only the leader runs them.
  // `control_plane`: who leads (GetControlPlane); unset: UNIMPLEMENTED.
  ClusterGrpc(ClusterManager& cluster, EventLog& events, Store& store, HostdMetrics& metrics,
              std::function<absl::Status()> gate = nullptr,
              std::function<hosting::v1::ControlPlane()> control_plane = nullptr)
      : cluster_(cluster), events_(events), store_(store), metrics_(metrics),
        gate_(std::move(gate)), control_plane_(std::move(control_plane)) {}

  // The audit trail ListAudit reads; unset: ListAudit answers UNIMPLEMENTED.
  void SetAuditLog(AuditLog* audit) { audit_ = audit; }
  grpc::ServerUnaryReactor* ListAudit(grpc::CallbackServerContext* ctx,
                                      const hosting::v1::ListAuditRequest* request,
                                      hosting::v1::ListAuditResponse* response) override;

  grpc::ServerUnaryReactor* GetControlPlane(grpc::CallbackServerContext* ctx,
                                            const hosting::v1::GetControlPlaneRequest* request,
                                            hosting::v1::ControlPlane* response) override;

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
  grpc::ServerWriteReactor<hosting::v1::Event>* WatchEvents(
      grpc::CallbackServerContext* ctx, const hosting::v1::WatchEventsRequest* request) override;
  grpc::ServerUnaryReactor* GetTaskLogs(grpc::CallbackServerContext* ctx,
                                        const hosting::v1::GetTaskLogsRequest* request,
                                        hosting::v1::GetTaskLogsResponse* response) override;
  grpc::ServerUnaryReactor* RestartTask(grpc::CallbackServerContext* ctx,
                                        const hosting::v1::RestartTaskRequest* request,
                                        hosting::v1::RestartTaskResponse* response) override;
  grpc::ServerUnaryReactor* PullImage(grpc::CallbackServerContext* ctx,
                                      const hosting::v1::PullImageRequest* request,
                                      hosting::v1::PullImageResponse* response) override;

 private:
  ClusterManager& cluster_;
  EventLog& events_;
  Store& store_;
  HostdMetrics& metrics_;
  const std::function<absl::Status()> gate_;
  const std::function<hosting::v1::ControlPlane()> control_plane_;
  AuditLog* audit_ = nullptr;
};

}  // namespace hosting::controlplane
