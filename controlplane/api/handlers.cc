#include "controlplane/api/handlers.h"

#include <initializer_list>
#include <string>
#include <utility>

#include "absl/strings/strip.h"
#include "common/status_macros.h"
#include "controlplane/auth/auth_gate.h"
#include "controlplane/release/analysis.h"
#include "controlplane/release/release_machine.h"
#include "controlplane/spec/validation.h"
#include "controlplane/store/event_log.h"

namespace hosting::controlplane {
namespace {

// OK when the caller may change every service named (a deployer's token may be limited to
// some; the auth gate cannot see requests, so every method the permission table marks
// service_scoped checks here).
absl::Status MayChange(CallerFn caller, std::initializer_list<absl::string_view> services) {
  const Caller who = caller();
  for (absl::string_view service : services) {
    RETURN_IF_ERROR(CheckServiceAccess(who, service));
  }
  return absl::OkStatus();
}

// INVALID_ARGUMENT for a request without a run ID.
absl::Status NeedsRunId(const std::string& id) {
  if (!id.empty()) return absl::OkStatus();
  return InvalidArgumentWithViolations({{"id", "required: a run ID (hostctl runbook runs)"}});
}

// A list response built from a list the domain returned.
template <typename Response, typename Item, typename Add>
absl::StatusOr<Response> ListOf(absl::StatusOr<std::vector<Item>> items, Add add) {
  if (!items.ok()) return items.status();
  Response out;
  for (Item& item : *items) *(out.*add)() = std::move(item);
  return out;
}

}  // namespace

// --- ServiceManager ---

absl::StatusOr<hosting::v1::ApplyServiceResponse> ServiceHandlers::ApplyService(
    const hosting::v1::ApplyServiceRequest& request, CallerFn caller) {
  RETURN_IF_ERROR(MayChange(caller, {request.spec().name()}));
  return manager_.Apply(request);
}

absl::StatusOr<hosting::v1::Service> ServiceHandlers::GetService(
    const hosting::v1::GetServiceRequest& request) {
  return manager_.Get(request.name());
}

absl::StatusOr<hosting::v1::ListServicesResponse> ServiceHandlers::ListServices(
    const hosting::v1::ListServicesRequest&) {
  return ListOf<hosting::v1::ListServicesResponse>(
      manager_.List(), &hosting::v1::ListServicesResponse::add_services);
}

absl::StatusOr<hosting::v1::DeleteServiceResponse> ServiceHandlers::DeleteService(
    const hosting::v1::DeleteServiceRequest& request, CallerFn caller) {
  RETURN_IF_ERROR(MayChange(caller, {request.name()}));
  ASSIGN_OR_RETURN(hosting::v1::Service deleted, manager_.Delete(request.name()));
  hosting::v1::DeleteServiceResponse out;
  *out.mutable_service() = std::move(deleted);
  return out;
}

absl::StatusOr<hosting::v1::Service> ServiceHandlers::ScaleService(
    const hosting::v1::ScaleServiceRequest& request, CallerFn caller) {
  RETURN_IF_ERROR(MayChange(caller, {request.name()}));
  return manager_.Scale(request);
}

// --- Cluster ---

absl::StatusOr<hosting::v1::ListNodesResponse> ClusterHandlers::ListNodes(
    const hosting::v1::ListNodesRequest&) {
  return ListOf<hosting::v1::ListNodesResponse>(cluster_.ListNodes(),
                                                &hosting::v1::ListNodesResponse::add_nodes);
}

absl::StatusOr<hosting::v1::Node> ClusterHandlers::GetNode(
    const hosting::v1::GetNodeRequest& request) {
  return cluster_.GetNode(request.node());
}

absl::StatusOr<hosting::v1::Node> ClusterHandlers::DrainNode(
    const hosting::v1::DrainNodeRequest& request) {
  RETURN_IF_ERROR(PassGate(gate_));
  return cluster_.SetAvailability(request.node(), "drain");
}

absl::StatusOr<hosting::v1::Node> ClusterHandlers::ActivateNode(
    const hosting::v1::ActivateNodeRequest& request) {
  RETURN_IF_ERROR(PassGate(gate_));
  return cluster_.SetAvailability(request.node(), "active");
}

absl::StatusOr<hosting::v1::ServiceHealthStatus> ClusterHandlers::GetServiceStatus(
    const hosting::v1::GetServiceStatusRequest& request) {
  return cluster_.ServiceHealth(request.name());
}

void ClusterHandlers::GetTaskLogs(const hosting::v1::GetTaskLogsRequest& request,
                                  Done<hosting::v1::GetTaskLogsResponse> done) {
  cluster_.TaskLogs(request, std::move(done));
}

void ClusterHandlers::RestartTask(const hosting::v1::RestartTaskRequest& request,
                                  Done<hosting::v1::RestartTaskResponse> done) {
  if (absl::Status st = PassGate(gate_); !st.ok()) {
    done(st);
    return;
  }
  cluster_.RestartTask(request, std::move(done));
}

void ClusterHandlers::PullImage(const hosting::v1::PullImageRequest& request,
                                Done<hosting::v1::PullImageResponse> done) {
  if (absl::Status st = PassGate(gate_); !st.ok()) {
    done(st);
    return;
  }
  cluster_.PullImage(request, std::move(done));
}

absl::StatusOr<hosting::v1::ControlPlane> ClusterHandlers::GetControlPlane(
    const hosting::v1::GetControlPlaneRequest&) {
  if (!control_plane_) return absl::UnimplementedError("this hostd was built without election");
  return control_plane_();
}

absl::StatusOr<hosting::v1::ListAuditResponse> ClusterHandlers::ListAudit(
    const hosting::v1::ListAuditRequest& request) {
  if (audit_ == nullptr) return absl::UnimplementedError("this hostd keeps no audit trail");
  return ListOf<hosting::v1::ListAuditResponse>(audit_->List(request),
                                                &hosting::v1::ListAuditResponse::add_entries);
}

absl::StatusOr<LogStreamOptions<hosting::v1::Event>> ClusterHandlers::WatchEvents(
    const hosting::v1::WatchEventsRequest& request) {
  LogStreamOptions<hosting::v1::Event> o;
  const std::string service = request.service();
  const std::vector<std::string> types(request.types().begin(), request.types().end());
  o.match = [service, types](const hosting::v1::Event& e) {
    return EventLog::Matches(e, service, types);
  };
  o.convert = [](const hosting::v1::Event& e) { return e; };
  if (request.since_sequence() > 0 || request.from_start()) {
    o.replay_after = request.from_start() ? 0 : request.since_sequence();
  }
  o.no_follow = request.no_follow();
  return o;
}

// --- Releases ---

absl::StatusOr<hosting::v1::Release> ReleaseHandlers::StartRelease(
    const hosting::v1::StartReleaseRequest& request, CallerFn caller) {
  // The service is named by `service`, by the spec, or both (which must agree).
  const std::string& service =
      request.service().empty() ? request.spec().name() : request.service();
  const std::string& in_spec = request.spec().name().empty() ? service : request.spec().name();
  RETURN_IF_ERROR(MayChange(caller, {service, in_spec}));
  return releases_.Start(request);
}

absl::StatusOr<hosting::v1::Release> ReleaseHandlers::GetRelease(
    const hosting::v1::GetReleaseRequest& request) {
  return releases_.Get(request);
}

absl::StatusOr<hosting::v1::JudgeReleaseResponse> ReleaseHandlers::JudgeRelease(
    const hosting::v1::JudgeReleaseRequest& request) {
  std::vector<FieldViolation> v;
  if (request.has_judge()) {
    // The same rules as a policy's judge.
    hosting::v1::ReleasePolicy probe;
    *probe.mutable_canary()->add_steps()->mutable_analysis()->mutable_judge() = request.judge();
    for (FieldViolation f : ValidateReleasePolicy(probe, "")) {
      absl::string_view field = f.field;
      absl::ConsumePrefix(&field, ".canary.steps[0].analysis.");
      f.field = std::string(field);
      v.push_back(std::move(f));
    }
  }
  if (!v.empty()) return InvalidArgumentWithViolations(v);
  hosting::v1::GetReleaseRequest get;
  get.set_id(request.id());
  ASSIGN_OR_RETURN(hosting::v1::Release release, releases_.Get(get));
  return JudgeAgain(release, request.has_judge() ? &request.judge() : nullptr);
}

absl::StatusOr<hosting::v1::ListReleasesResponse> ReleaseHandlers::ListReleases(
    const hosting::v1::ListReleasesRequest& request) {
  return ListOf<hosting::v1::ListReleasesResponse>(
      releases_.List(request), &hosting::v1::ListReleasesResponse::add_releases);
}

absl::StatusOr<hosting::v1::Release> ReleaseHandlers::PromoteRelease(
    const hosting::v1::PromoteReleaseRequest& request, CallerFn caller) {
  RETURN_IF_ERROR(MayChange(caller, {ServiceOfRelease(request.id())}));
  return releases_.Promote(request);
}

absl::StatusOr<hosting::v1::Release> ReleaseHandlers::PauseRelease(
    const hosting::v1::PauseReleaseRequest& request, CallerFn caller) {
  RETURN_IF_ERROR(MayChange(caller, {ServiceOfRelease(request.id())}));
  return releases_.Pause(request.id());
}

absl::StatusOr<hosting::v1::Release> ReleaseHandlers::ResumeRelease(
    const hosting::v1::ResumeReleaseRequest& request, CallerFn caller) {
  RETURN_IF_ERROR(MayChange(caller, {ServiceOfRelease(request.id())}));
  return releases_.Resume(request.id());
}

absl::StatusOr<hosting::v1::Release> ReleaseHandlers::AbortRelease(
    const hosting::v1::AbortReleaseRequest& request, CallerFn caller) {
  RETURN_IF_ERROR(MayChange(caller, {ServiceOfRelease(request.id())}));
  return releases_.Abort(request);
}

absl::StatusOr<hosting::v1::Release> ReleaseHandlers::RollbackService(
    const hosting::v1::RollbackServiceRequest& request, CallerFn caller) {
  RETURN_IF_ERROR(MayChange(caller, {request.service()}));
  return releases_.Rollback(request);
}

absl::StatusOr<LogStreamOptions<hosting::v1::ReleaseEvent>> ReleaseHandlers::WatchRelease(
    const hosting::v1::WatchReleaseRequest& request) {
  if (request.id().empty()) {
    return InvalidArgumentWithViolations({{"id", "required: a release ID"}});
  }
  hosting::v1::GetReleaseRequest get;
  get.set_id(request.id());
  ASSIGN_OR_RETURN(hosting::v1::Release current, releases_.Get(get));
  const std::string id = request.id();
  LogStreamOptions<hosting::v1::ReleaseEvent> o;
  o.match = [id](const hosting::v1::Event& e) { return ReleaseManager::IsReleaseEvent(e, id); };
  ReleaseManager* releases = &releases_;
  o.convert = [releases, id](const hosting::v1::Event& e) {
    hosting::v1::ReleaseEvent out;
    *out.mutable_time() = e.time();
    out.set_type(e.type().substr(std::string("release.").size()));
    out.set_message(e.message());
    for (const auto& [k, v] : e.attributes()) (*out.mutable_attributes())[k] = v;
    hosting::v1::GetReleaseRequest req;
    req.set_id(id);
    if (absl::StatusOr<hosting::v1::Release> r = releases->Get(req); r.ok()) {
      *out.mutable_release() = *std::move(r);
    }
    return out;
  };
  o.last = [](const hosting::v1::Event& e) { return e.type() == "release.finished"; };
  o.replay_after = 0;
  o.no_follow = IsTerminalState(current.state());
  return o;
}

// --- Autoscaling ---

absl::StatusOr<hosting::v1::AutoscalingPolicy> AutoscalingHandlers::SetPolicy(
    const hosting::v1::SetPolicyRequest& request, CallerFn caller) {
  RETURN_IF_ERROR(MayChange(caller, {request.policy().service()}));
  return autoscaler_.SetPolicy(request);
}

absl::StatusOr<hosting::v1::AutoscalingPolicy> AutoscalingHandlers::GetPolicy(
    const hosting::v1::GetPolicyRequest& request) {
  return autoscaler_.GetPolicy(request.service());
}

absl::StatusOr<hosting::v1::DeletePolicyResponse> AutoscalingHandlers::DeletePolicy(
    const hosting::v1::DeletePolicyRequest& request, CallerFn caller) {
  RETURN_IF_ERROR(MayChange(caller, {request.service()}));
  RETURN_IF_ERROR(autoscaler_.DeletePolicy(request.service()));
  return hosting::v1::DeletePolicyResponse();
}

absl::StatusOr<hosting::v1::AutoscalingStatus> AutoscalingHandlers::GetStatus(
    const hosting::v1::GetAutoscalingStatusRequest& request) {
  return autoscaler_.GetStatus(request.service());
}

// --- Runbooks ---

absl::StatusOr<hosting::v1::ListRunbooksResponse> RunbookHandlers::ListRunbooks(
    const hosting::v1::ListRunbooksRequest&) {
  hosting::v1::ListRunbooksResponse out;
  for (auto& r : engine_.List()) *out.add_runbooks() = std::move(r);
  return out;
}

absl::StatusOr<hosting::v1::RunbookRun> RunbookHandlers::RunRunbook(
    const hosting::v1::RunRunbookRequest& request, CallerFn caller) {
  if (request.runbook().empty()) {
    return InvalidArgumentWithViolations(
        {{"runbook", "required: a runbook's name (hostctl runbook list)"}});
  }
  return engine_.Run(request, caller().principal);
}

absl::StatusOr<hosting::v1::RunbookRun> RunbookHandlers::GetRun(
    const hosting::v1::GetRunRequest& request) {
  RETURN_IF_ERROR(NeedsRunId(request.id()));
  return engine_.Get(request.id());
}

absl::StatusOr<hosting::v1::ListRunsResponse> RunbookHandlers::ListRuns(
    const hosting::v1::ListRunsRequest& request) {
  return ListOf<hosting::v1::ListRunsResponse>(engine_.ListRuns(request),
                                               &hosting::v1::ListRunsResponse::add_runs);
}

absl::StatusOr<hosting::v1::RunbookRun> RunbookHandlers::CancelRun(
    const hosting::v1::CancelRunRequest& request, CallerFn caller) {
  RETURN_IF_ERROR(NeedsRunId(request.id()));
  return engine_.Cancel(request.id(), request.reason(), caller().principal);
}

absl::StatusOr<hosting::v1::RunbookRun> RunbookHandlers::ApproveRun(
    const hosting::v1::ApproveRunRequest& request, CallerFn caller) {
  RETURN_IF_ERROR(NeedsRunId(request.id()));
  return engine_.Approve(request.id(), request.comment(), caller().principal);
}

absl::StatusOr<LogStreamOptions<hosting::v1::RunbookRun>> RunbookHandlers::WatchRun(
    const hosting::v1::WatchRunRequest& request) {
  RETURN_IF_ERROR(NeedsRunId(request.id()));
  ASSIGN_OR_RETURN(hosting::v1::RunbookRun current, engine_.Get(request.id()));
  const std::string id = request.id();
  LogStreamOptions<hosting::v1::RunbookRun> o;
  o.match = [id](const hosting::v1::Event& e) { return RunbookEngine::IsRunEvent(e, id); };
  RunbookEngine* engine = &engine_;
  // Each of the run's events as the run stands then (the stored run; the last one known when
  // the store cannot be read).
  o.convert = [engine, id, last_known = current](const hosting::v1::Event&) {
    absl::StatusOr<hosting::v1::RunbookRun> r = engine->Get(id);
    return r.ok() ? *std::move(r) : last_known;
  };
  o.last = [](const hosting::v1::Event& e) { return RunbookEngine::IsRunEndEvent(e); };
  o.replay_after = 0;
  o.no_follow = IsTerminalRun(current.state());
  return o;
}

// --- Auth ---

absl::StatusOr<hosting::v1::CreateTokenResponse> AuthHandlers::CreateToken(
    const hosting::v1::CreateTokenRequest& request, CallerFn caller) {
  return tokens_.Create(request, caller().principal);
}

absl::StatusOr<hosting::v1::ListTokensResponse> AuthHandlers::ListTokens(
    const hosting::v1::ListTokensRequest&) {
  return ListOf<hosting::v1::ListTokensResponse>(tokens_.List(),
                                                 &hosting::v1::ListTokensResponse::add_tokens);
}

absl::StatusOr<hosting::v1::Token> AuthHandlers::RevokeToken(
    const hosting::v1::RevokeTokenRequest& request) {
  return tokens_.Revoke(request.accessor());
}

absl::StatusOr<hosting::v1::Identity> AuthHandlers::WhoAmI(const hosting::v1::WhoAmIRequest&,
                                                           CallerFn caller) {
  const Caller who = caller();
  hosting::v1::Identity id;
  id.set_principal(who.principal);
  id.set_role(who.role);
  for (const std::string& s : who.services) id.add_services(s);
  id.set_node(who.node);
  id.set_auth_enabled(auth_enabled_);
  return id;
}

}  // namespace hosting::controlplane
