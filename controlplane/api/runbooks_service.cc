#include "controlplane/api/runbooks_service.h"

#include "absl/strings/str_cat.h"
#include "controlplane/api/unary.h"

namespace hosting::controlplane {
namespace {

grpc::Status NotYet(const char* method) {
  return grpc::Status(grpc::StatusCode::UNIMPLEMENTED,
                      absl::StrCat("hosting.v1.Runbooks/", method,
                                   " is not served by this hostd yet: runbook automation comes "
                                   "with the Runbooks work"));
}

grpc::ServerUnaryReactor* FinishNotYet(grpc::CallbackServerContext* ctx, const char* method) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  reactor->Finish(NotYet(method));
  return reactor;
}

}  // namespace

grpc::ServerUnaryReactor* RunbooksGrpc::ListRunbooks(grpc::CallbackServerContext* ctx,
                                                     const hosting::v1::ListRunbooksRequest*,
                                                     hosting::v1::ListRunbooksResponse*) {
  return FinishNotYet(ctx, "ListRunbooks");
}

grpc::ServerUnaryReactor* RunbooksGrpc::RunRunbook(grpc::CallbackServerContext* ctx,
                                                   const hosting::v1::RunRunbookRequest*,
                                                   hosting::v1::RunbookRun*) {
  return FinishNotYet(ctx, "RunRunbook");
}

grpc::ServerUnaryReactor* RunbooksGrpc::GetRun(grpc::CallbackServerContext* ctx,
                                               const hosting::v1::GetRunRequest*,
                                               hosting::v1::RunbookRun*) {
  return FinishNotYet(ctx, "GetRun");
}

grpc::ServerWriteReactor<hosting::v1::RunbookRun>* RunbooksGrpc::WatchRun(
    grpc::CallbackServerContext*, const hosting::v1::WatchRunRequest*) {
  return new FinishedWriter<hosting::v1::RunbookRun>(NotYet("WatchRun"));
}

}  // namespace hosting::controlplane
