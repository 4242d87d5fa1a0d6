#pragma once

#include <functional>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "controlplane/api/audit.h"
#include "controlplane/api/log_stream_options.h"
#include "controlplane/auth/token_authority.h"
#include "controlplane/autoscale/autoscale_manager.h"
#include "controlplane/cluster/cluster_manager.h"
#include "controlplane/release/release_manager.h"
#include "controlplane/runbook/engine.h"
#include "controlplane/service/service_manager.h"
#include "hosting/v1/auth.pb.h"
#include "hosting/v1/autoscaling.pb.h"
#include "hosting/v1/cluster.pb.h"
#include "hosting/v1/releases.pb.h"
#include "hosting/v1/runbooks.pb.h"
#include "hosting/v1/service.pb.h"

// The body of every hosting.v1 call, apart from any transport: a request and its caller in, a
// response or a status out. The gRPC adapters (*_service.h) and the HTTP/JSON gateway
// (http_gateway.h) both call these, so a call means the same whichever way it comes in: the
// same validation, the same per-service access check, the same errors.
namespace hosting::controlplane {

// Who makes the call, asked only by the handlers that need it (a gRPC call reads its metadata
// then; most calls never do).
using CallerFn = absl::FunctionRef<Caller()>;

// What a handler that answers later calls with the outcome (from any thread).
template <typename T>
using Done = std::function<void(absl::StatusOr<T>)>;

// What a call that acts outside the store (Docker, the agents) passes first: OK on the
// leader, UNAVAILABLE naming it on a standby. Empty: always open (a single hostd).
using ActGate = std::function<absl::Status()>;
inline absl::Status PassGate(const ActGate& gate) { return gate ? gate() : absl::OkStatus(); }

// The service a release ID names: IDs are "<service>-<sequence>".
inline absl::string_view ServiceOfRelease(absl::string_view id) {
  const size_t dash = id.rfind('-');
  return dash == absl::string_view::npos ? id : id.substr(0, dash);
}

// hosting.v1.ServiceManager.
class ServiceHandlers {
 public:
  explicit ServiceHandlers(ServiceManager& manager) : manager_(manager) {}

  absl::StatusOr<hosting::v1::ApplyServiceResponse> ApplyService(
      const hosting::v1::ApplyServiceRequest& request, CallerFn caller);
  absl::StatusOr<hosting::v1::Service> GetService(const hosting::v1::GetServiceRequest& request);
  absl::StatusOr<hosting::v1::ListServicesResponse> ListServices(
      const hosting::v1::ListServicesRequest& request);
  absl::StatusOr<hosting::v1::DeleteServiceResponse> DeleteService(
      const hosting::v1::DeleteServiceRequest& request, CallerFn caller);
  absl::StatusOr<hosting::v1::Service> ScaleService(const hosting::v1::ScaleServiceRequest& request,
                                                    CallerFn caller);

 private:
  ServiceManager& manager_;
};

// hosting.v1.Cluster. Node and task commands answer later, from the agent's reply.
class ClusterHandlers {
 public:
  // `gate`: node and task commands act on the cluster, so only the leader runs them.
  // `control_plane`: who leads (GetControlPlane); unset: UNIMPLEMENTED.
  ClusterHandlers(ClusterManager& cluster, ActGate gate = nullptr,
                  std::function<hosting::v1::ControlPlane()> control_plane = nullptr)
      : cluster_(cluster), gate_(std::move(gate)), control_plane_(std::move(control_plane)) {}

  // The audit trail ListAudit reads; unset: ListAudit answers UNIMPLEMENTED.
  void SetAuditLog(AuditLog* audit) { audit_ = audit; }

  absl::StatusOr<hosting::v1::ListNodesResponse> ListNodes(
      const hosting::v1::ListNodesRequest& request);
  absl::StatusOr<hosting::v1::Node> GetNode(const hosting::v1::GetNodeRequest& request);
  absl::StatusOr<hosting::v1::Node> DrainNode(const hosting::v1::DrainNodeRequest& request);
  absl::StatusOr<hosting::v1::Node> ActivateNode(const hosting::v1::ActivateNodeRequest& request);
  absl::StatusOr<hosting::v1::ServiceHealthStatus> GetServiceStatus(
      const hosting::v1::GetServiceStatusRequest& request);
  void GetTaskLogs(const hosting::v1::GetTaskLogsRequest& request,
                   Done<hosting::v1::GetTaskLogsResponse> done);
  void RestartTask(const hosting::v1::RestartTaskRequest& request,
                   Done<hosting::v1::RestartTaskResponse> done);
  void PullImage(const hosting::v1::PullImageRequest& request,
                 Done<hosting::v1::PullImageResponse> done);
  absl::StatusOr<hosting::v1::ControlPlane> GetControlPlane(
      const hosting::v1::GetControlPlaneRequest& request);
  absl::StatusOr<hosting::v1::ListAuditResponse> ListAudit(
      const hosting::v1::ListAuditRequest& request);
  // The event-log stream WatchEvents serves.
  absl::StatusOr<LogStreamOptions<hosting::v1::Event>> WatchEvents(
      const hosting::v1::WatchEventsRequest& request);

 private:
  ClusterManager& cluster_;
  const ActGate gate_;
  const std::function<hosting::v1::ControlPlane()> control_plane_;
  AuditLog* audit_ = nullptr;
};

// hosting.v1.Releases.
class ReleaseHandlers {
 public:
  explicit ReleaseHandlers(ReleaseManager& releases) : releases_(releases) {}

  absl::StatusOr<hosting::v1::Release> StartRelease(const hosting::v1::StartReleaseRequest& request,
                                                    CallerFn caller);
  absl::StatusOr<hosting::v1::Release> GetRelease(const hosting::v1::GetReleaseRequest& request);
  absl::StatusOr<hosting::v1::ListReleasesResponse> ListReleases(
      const hosting::v1::ListReleasesRequest& request);
  absl::StatusOr<hosting::v1::Release> PromoteRelease(
      const hosting::v1::PromoteReleaseRequest& request, CallerFn caller);
  absl::StatusOr<hosting::v1::Release> PauseRelease(const hosting::v1::PauseReleaseRequest& request,
                                                    CallerFn caller);
  absl::StatusOr<hosting::v1::Release> ResumeRelease(
      const hosting::v1::ResumeReleaseRequest& request, CallerFn caller);
  absl::StatusOr<hosting::v1::Release> AbortRelease(const hosting::v1::AbortReleaseRequest& request,
                                                    CallerFn caller);
  absl::StatusOr<hosting::v1::Release> RollbackService(
      const hosting::v1::RollbackServiceRequest& request, CallerFn caller);
  absl::StatusOr<hosting::v1::JudgeReleaseResponse> JudgeRelease(
      const hosting::v1::JudgeReleaseRequest& request);
  // The release's whole history, then what happens next until it ends.
  absl::StatusOr<LogStreamOptions<hosting::v1::ReleaseEvent>> WatchRelease(
      const hosting::v1::WatchReleaseRequest& request);

 private:
  ReleaseManager& releases_;
};

// hosting.v1.Autoscaling.
class AutoscalingHandlers {
 public:
  explicit AutoscalingHandlers(AutoscaleManager& autoscaler) : autoscaler_(autoscaler) {}

  absl::StatusOr<hosting::v1::AutoscalingPolicy> SetPolicy(
      const hosting::v1::SetPolicyRequest& request, CallerFn caller);
  absl::StatusOr<hosting::v1::AutoscalingPolicy> GetPolicy(
      const hosting::v1::GetPolicyRequest& request);
  absl::StatusOr<hosting::v1::DeletePolicyResponse> DeletePolicy(
      const hosting::v1::DeletePolicyRequest& request, CallerFn caller);
  absl::StatusOr<hosting::v1::AutoscalingStatus> GetStatus(
      const hosting::v1::GetAutoscalingStatusRequest& request);

 private:
  AutoscaleManager& autoscaler_;
};

// hosting.v1.Runbooks.
class RunbookHandlers {
 public:
  explicit RunbookHandlers(RunbookEngine& engine) : engine_(engine) {}

  absl::StatusOr<hosting::v1::ListRunbooksResponse> ListRunbooks(
      const hosting::v1::ListRunbooksRequest& request);
  absl::StatusOr<hosting::v1::RunbookRun> RunRunbook(const hosting::v1::RunRunbookRequest& request,
                                                     CallerFn caller);
  absl::StatusOr<hosting::v1::RunbookRun> GetRun(const hosting::v1::GetRunRequest& request);
  absl::StatusOr<hosting::v1::ListRunsResponse> ListRuns(
      const hosting::v1::ListRunsRequest& request);
  absl::StatusOr<hosting::v1::RunbookRun> CancelRun(const hosting::v1::CancelRunRequest& request,
                                                    CallerFn caller);
  absl::StatusOr<hosting::v1::RunbookRun> ApproveRun(const hosting::v1::ApproveRunRequest& request,
                                                     CallerFn caller);
  // The run as it stands at each of its events, until it ends.
  absl::StatusOr<LogStreamOptions<hosting::v1::RunbookRun>> WatchRun(
      const hosting::v1::WatchRunRequest& request);

 private:
  RunbookEngine& engine_;
};

// hosting.v1.Auth.
class AuthHandlers {
 public:
  AuthHandlers(TokenAuthority& tokens, bool auth_enabled)
      : tokens_(tokens), auth_enabled_(auth_enabled) {}

  absl::StatusOr<hosting::v1::CreateTokenResponse> CreateToken(
      const hosting::v1::CreateTokenRequest& request, CallerFn caller);
  absl::StatusOr<hosting::v1::ListTokensResponse> ListTokens(
      const hosting::v1::ListTokensRequest& request);
  absl::StatusOr<hosting::v1::Token> RevokeToken(const hosting::v1::RevokeTokenRequest& request);
  absl::StatusOr<hosting::v1::Identity> WhoAmI(const hosting::v1::WhoAmIRequest& request,
                                               CallerFn caller);

 private:
  TokenAuthority& tokens_;
  const bool auth_enabled_;
};

// Every handler, as one hostd serves them; what the HTTP gateway is built over.
struct Handlers {
  ServiceHandlers& services;
  ClusterHandlers& cluster;
  ReleaseHandlers& releases;
  AutoscalingHandlers& autoscaling;
  RunbookHandlers& runbooks;
  AuthHandlers& auth;
};

}  // namespace hosting::controlplane
