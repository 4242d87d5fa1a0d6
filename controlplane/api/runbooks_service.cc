#include "controlplane/api/runbooks_service.h"

#include <string>
#include <vector>

#include "common/status_macros.h"
#include "controlplane/api/log_stream.h"
#include "controlplane/api/unary.h"
#include "controlplane/auth/auth_gate.h"
#include "controlplane/spec/validation.h"

namespace hosting::controlplane {
namespace {

// INVALID_ARGUMENT for a request without a run ID.
absl::Status NeedsId(const std::string& id) {
  if (!id.empty()) return absl::OkStatus();
  return InvalidArgumentWithViolations({{"id", "required: a run ID (hostctl runbook runs)"}});
}

}  // namespace

grpc::ServerUnaryReactor* RunbooksGrpc::ListRunbooks(grpc::CallbackServerContext* ctx,
                                                     const hosting::v1::ListRunbooksRequest*,
                                                     hosting::v1::ListRunbooksResponse* response) {
  return Serve(ctx, metrics_, "ListRunbooks", response,
               [&]() -> absl::StatusOr<hosting::v1::ListRunbooksResponse> {
                 hosting::v1::ListRunbooksResponse out;
                 for (auto& r : engine_.List()) *out.add_runbooks() = std::move(r);
                 return out;
               });
}

grpc::ServerUnaryReactor* RunbooksGrpc::RunRunbook(grpc::CallbackServerContext* ctx,
                                                   const hosting::v1::RunRunbookRequest* request,
                                                   hosting::v1::RunbookRun* response) {
  return Serve(ctx, metrics_, "RunRunbook", response,
               [&]() -> absl::StatusOr<hosting::v1::RunbookRun> {
                 if (request->runbook().empty()) {
                   return InvalidArgumentWithViolations(
                       {{"runbook", "required: a runbook's name (hostctl runbook list)"}});
                 }
                 return engine_.Run(*request, CallerOf(*ctx).principal);
               });
}

grpc::ServerUnaryReactor* RunbooksGrpc::GetRun(grpc::CallbackServerContext* ctx,
                                               const hosting::v1::GetRunRequest* request,
                                               hosting::v1::RunbookRun* response) {
  return Serve(ctx, metrics_, "GetRun", response, [&]() -> absl::StatusOr<hosting::v1::RunbookRun> {
    RETURN_IF_ERROR(NeedsId(request->id()));
    return engine_.Get(request->id());
  });
}

grpc::ServerUnaryReactor* RunbooksGrpc::ListRuns(grpc::CallbackServerContext* ctx,
                                                 const hosting::v1::ListRunsRequest* request,
                                                 hosting::v1::ListRunsResponse* response) {
  return Serve(
      ctx, metrics_, "ListRuns", response, [&]() -> absl::StatusOr<hosting::v1::ListRunsResponse> {
        ASSIGN_OR_RETURN(std::vector<hosting::v1::RunbookRun> runs, engine_.ListRuns(*request));
        hosting::v1::ListRunsResponse out;
        for (auto& r : runs) *out.add_runs() = std::move(r);
        return out;
      });
}

grpc::ServerUnaryReactor* RunbooksGrpc::CancelRun(grpc::CallbackServerContext* ctx,
                                                  const hosting::v1::CancelRunRequest* request,
                                                  hosting::v1::RunbookRun* response) {
  return Serve(ctx, metrics_, "CancelRun", response,
               [&]() -> absl::StatusOr<hosting::v1::RunbookRun> {
                 RETURN_IF_ERROR(NeedsId(request->id()));
                 return engine_.Cancel(request->id(), request->reason(), CallerOf(*ctx).principal);
               });
}

grpc::ServerUnaryReactor* RunbooksGrpc::ApproveRun(grpc::CallbackServerContext* ctx,
                                                   const hosting::v1::ApproveRunRequest* request,
                                                   hosting::v1::RunbookRun* response) {
  return Serve(
      ctx, metrics_, "ApproveRun", response, [&]() -> absl::StatusOr<hosting::v1::RunbookRun> {
        RETURN_IF_ERROR(NeedsId(request->id()));
        return engine_.Approve(request->id(), request->comment(), CallerOf(*ctx).principal);
      });
}

grpc::ServerWriteReactor<hosting::v1::RunbookRun>* RunbooksGrpc::WatchRun(
    grpc::CallbackServerContext*, const hosting::v1::WatchRunRequest* request) {
  absl::StatusOr<hosting::v1::RunbookRun> current =
      request->id().empty() ? absl::StatusOr<hosting::v1::RunbookRun>(NeedsId(request->id()))
                            : engine_.Get(request->id());
  const grpc::Status status = ToGrpcStatus(current.status());
  metrics_.CountGrpc("WatchRun", GrpcCodeName(status.error_code()));
  if (!current.ok()) return new FinishedWriter<hosting::v1::RunbookRun>(status);
  const std::string id = request->id();
  LogStream<hosting::v1::RunbookRun>::Options o;
  o.match = [id](const hosting::v1::Event& e) { return RunbookEngine::IsRunEvent(e, id); };
  RunbookEngine* engine = &engine_;
  hosting::v1::RunbookRun last_known = *current;
  // Each of the run's events as the run stands then (the stored run; the event's state when
  // the store cannot be read).
  o.convert = [engine, id, last_known](const hosting::v1::Event&) {
    absl::StatusOr<hosting::v1::RunbookRun> r = engine->Get(id);
    return r.ok() ? *std::move(r) : last_known;
  };
  o.last = [](const hosting::v1::Event& e) { return RunbookEngine::IsRunEndEvent(e); };
  o.replay_after = 0;
  o.no_follow = IsTerminalRun(current->state());
  return LogStream<hosting::v1::RunbookRun>::Open(events_, store_, metrics_, std::move(o));
}

}  // namespace hosting::controlplane
