#include "controlplane/api/runbooks_service.h"

#include "controlplane/api/log_stream.h"
#include "controlplane/api/unary.h"

namespace hosting::controlplane {

grpc::ServerUnaryReactor* RunbooksGrpc::ListRunbooks(
    grpc::CallbackServerContext* ctx, const hosting::v1::ListRunbooksRequest* request,
    hosting::v1::ListRunbooksResponse* response) {
  return Serve(ctx, metrics_, "ListRunbooks", response,
               [&] { return handlers_.ListRunbooks(*request); });
}

grpc::ServerUnaryReactor* RunbooksGrpc::RunRunbook(grpc::CallbackServerContext* ctx,
                                                   const hosting::v1::RunRunbookRequest* request,
                                                   hosting::v1::RunbookRun* response) {
  return Serve(ctx, metrics_, "RunRunbook", response,
               [&] { return handlers_.RunRunbook(*request, CallerOfCall(ctx)); });
}

grpc::ServerUnaryReactor* RunbooksGrpc::GetRun(grpc::CallbackServerContext* ctx,
                                               const hosting::v1::GetRunRequest* request,
                                               hosting::v1::RunbookRun* response) {
  return Serve(ctx, metrics_, "GetRun", response, [&] { return handlers_.GetRun(*request); });
}

grpc::ServerWriteReactor<hosting::v1::RunbookRun>* RunbooksGrpc::WatchRun(
    grpc::CallbackServerContext*, const hosting::v1::WatchRunRequest* request) {
  return OpenLogStream(events_, store_, metrics_, "WatchRun", handlers_.WatchRun(*request));
}

grpc::ServerUnaryReactor* RunbooksGrpc::ListRuns(grpc::CallbackServerContext* ctx,
                                                 const hosting::v1::ListRunsRequest* request,
                                                 hosting::v1::ListRunsResponse* response) {
  return Serve(ctx, metrics_, "ListRuns", response, [&] { return handlers_.ListRuns(*request); });
}

grpc::ServerUnaryReactor* RunbooksGrpc::CancelRun(grpc::CallbackServerContext* ctx,
                                                  const hosting::v1::CancelRunRequest* request,
                                                  hosting::v1::RunbookRun* response) {
  return Serve(ctx, metrics_, "CancelRun", response,
               [&] { return handlers_.CancelRun(*request, CallerOfCall(ctx)); });
}

grpc::ServerUnaryReactor* RunbooksGrpc::ApproveRun(grpc::CallbackServerContext* ctx,
                                                   const hosting::v1::ApproveRunRequest* request,
                                                   hosting::v1::RunbookRun* response) {
  return Serve(ctx, metrics_, "ApproveRun", response,
               [&] { return handlers_.ApproveRun(*request, CallerOfCall(ctx)); });
}

}  // namespace hosting::controlplane
