#pragma once

#include <string>

#include "common/docker_client.h"
#include "controlplane/agent_gateway.h"
#include "controlplane/agent_registry.h"
#include "controlplane/reconciler.h"
#include "controlplane/release_manager.h"
#include "controlplane/event_log.h"
#include "controlplane/metrics.h"
#include "controlplane/service_manager.h"
#include "controlplane/store.h"
#include "hosting/v1/agent.grpc.pb.h"
#include "controlplane/autoscale_manager.h"
#include "hosting/v1/autoscaling.grpc.pb.h"
#include "hosting/v1/cluster.grpc.pb.h"
#include "hosting/v1/releases.grpc.pb.h"
#include "hosting/v1/runbooks.grpc.pb.h"
#include "hosting/v1/service.grpc.pb.h"

// Thin gRPC adapters: convert, call the domain layer, map the status. No logic lives here.
namespace hosting::controlplane {

class ServiceManagerGrpc final : public hosting::v1::ServiceManager::CallbackService {
 public:
  ServiceManagerGrpc(ServiceManager& manager, HostdMetrics& metrics)
      : manager_(manager), metrics_(metrics) {}

  grpc::ServerUnaryReactor* ApplyService(grpc::CallbackServerContext* ctx,
                                         const hosting::v1::ApplyServiceRequest* request,
                                         hosting::v1::ApplyServiceResponse* response) override;
  grpc::ServerUnaryReactor* GetService(grpc::CallbackServerContext* ctx,
                                       const hosting::v1::GetServiceRequest* request,
                                       hosting::v1::Service* response) override;
  grpc::ServerUnaryReactor* ListServices(grpc::CallbackServerContext* ctx,
                                         const hosting::v1::ListServicesRequest* request,
                                         hosting::v1::ListServicesResponse* response) override;
  grpc::ServerUnaryReactor* DeleteService(grpc::CallbackServerContext* ctx,
                                          const hosting::v1::DeleteServiceRequest* request,
                                          hosting::v1::DeleteServiceResponse* response) override;
  grpc::ServerUnaryReactor* ScaleService(grpc::CallbackServerContext* ctx,
                                         const hosting::v1::ScaleServiceRequest* request,
                                         hosting::v1::Service* response) override;

 private:
  ServiceManager& manager_;
  HostdMetrics& metrics_;
};

class ClusterGrpc final : public hosting::v1::Cluster::CallbackService {
 public:
  ClusterGrpc(docker::DockerClient& docker, EventLog& events, Store& store, HostdMetrics& metrics,
              AgentRegistry& agents, Reconciler& reconciler)
      : docker_(docker), events_(events), store_(store), metrics_(metrics), agents_(agents),
        reconciler_(reconciler) {}

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

  // Node commands go through the agents' streams.
  void SetGateway(AgentGatewayGrpc* gateway) { gateway_ = gateway; }

 private:
  absl::StatusOr<hosting::v1::Node> SetAvailability(const std::string& node,
                                                    const std::string& availability);
  hosting::v1::Node NodeToProto(const docker::NodeInfo& n);
  absl::StatusOr<hosting::v1::ServiceHealthStatus> ServiceStatus(const std::string& name);

  docker::DockerClient& docker_;
  EventLog& events_;
  Store& store_;
  HostdMetrics& metrics_;
  AgentRegistry& agents_;
  Reconciler& reconciler_;
  AgentGatewayGrpc* gateway_ = nullptr;
};

// Releases: thin conversion onto the ReleaseManager; WatchRelease follows the event log.
class ReleasesGrpc final : public hosting::v1::Releases::CallbackService {
 public:
  ReleasesGrpc(ReleaseManager& releases, EventLog& events, Store& store, HostdMetrics& metrics)
      : releases_(releases), events_(events), store_(store), metrics_(metrics) {}

  grpc::ServerUnaryReactor* StartRelease(grpc::CallbackServerContext* ctx,
                                         const hosting::v1::StartReleaseRequest*,
                                         hosting::v1::Release*) override;
  grpc::ServerUnaryReactor* GetRelease(grpc::CallbackServerContext* ctx,
                                       const hosting::v1::GetReleaseRequest*,
                                       hosting::v1::Release*) override;
  grpc::ServerUnaryReactor* ListReleases(grpc::CallbackServerContext* ctx,
                                         const hosting::v1::ListReleasesRequest*,
                                         hosting::v1::ListReleasesResponse*) override;
  grpc::ServerWriteReactor<hosting::v1::ReleaseEvent>* WatchRelease(
      grpc::CallbackServerContext* ctx, const hosting::v1::WatchReleaseRequest*) override;
  grpc::ServerUnaryReactor* PromoteRelease(grpc::CallbackServerContext* ctx,
                                           const hosting::v1::PromoteReleaseRequest*,
                                           hosting::v1::Release*) override;
  grpc::ServerUnaryReactor* PauseRelease(grpc::CallbackServerContext* ctx,
                                         const hosting::v1::PauseReleaseRequest*,
                                         hosting::v1::Release*) override;
  grpc::ServerUnaryReactor* ResumeRelease(grpc::CallbackServerContext* ctx,
                                          const hosting::v1::ResumeReleaseRequest*,
                                          hosting::v1::Release*) override;
  grpc::ServerUnaryReactor* AbortRelease(grpc::CallbackServerContext* ctx,
                                         const hosting::v1::AbortReleaseRequest*,
                                         hosting::v1::Release*) override;
  grpc::ServerUnaryReactor* RollbackService(grpc::CallbackServerContext* ctx,
                                            const hosting::v1::RollbackServiceRequest*,
                                            hosting::v1::Release*) override;
 private:
  ReleaseManager& releases_;
  EventLog& events_;
  Store& store_;
  HostdMetrics& metrics_;
};

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

class RunbooksGrpc final : public hosting::v1::Runbooks::CallbackService {
 public:
  grpc::ServerUnaryReactor* ListRunbooks(grpc::CallbackServerContext* ctx,
                                         const hosting::v1::ListRunbooksRequest*,
                                         hosting::v1::ListRunbooksResponse*) override;
  grpc::ServerUnaryReactor* RunRunbook(grpc::CallbackServerContext* ctx,
                                       const hosting::v1::RunRunbookRequest*,
                                       hosting::v1::RunbookRun*) override;
  grpc::ServerUnaryReactor* GetRun(grpc::CallbackServerContext* ctx,
                                   const hosting::v1::GetRunRequest*,
                                   hosting::v1::RunbookRun*) override;
  grpc::ServerWriteReactor<hosting::v1::RunbookRun>* WatchRun(
      grpc::CallbackServerContext* ctx, const hosting::v1::WatchRunRequest*) override;
};

}  // namespace hosting::controlplane
