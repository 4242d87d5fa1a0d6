#include "controlplane/api/releases_service.h"

#include "controlplane/api/log_stream.h"
#include "controlplane/api/unary.h"

namespace hosting::controlplane {

grpc::ServerUnaryReactor* ReleasesGrpc::StartRelease(
    grpc::CallbackServerContext* ctx, const hosting::v1::StartReleaseRequest* request,
    hosting::v1::Release* response) {
  return Serve(ctx, metrics_, "StartRelease", response,
               [&] { return handlers_.StartRelease(*request, CallerOfCall(ctx)); });
}

grpc::ServerUnaryReactor* ReleasesGrpc::GetRelease(grpc::CallbackServerContext* ctx,
                                                   const hosting::v1::GetReleaseRequest* request,
                                                   hosting::v1::Release* response) {
  return Serve(ctx, metrics_, "GetRelease", response,
               [&] { return handlers_.GetRelease(*request); });
}

grpc::ServerUnaryReactor* ReleasesGrpc::ListReleases(
    grpc::CallbackServerContext* ctx, const hosting::v1::ListReleasesRequest* request,
    hosting::v1::ListReleasesResponse* response) {
  return Serve(ctx, metrics_, "ListReleases", response,
               [&] { return handlers_.ListReleases(*request); });
}

grpc::ServerWriteReactor<hosting::v1::ReleaseEvent>* ReleasesGrpc::WatchRelease(
    grpc::CallbackServerContext*, const hosting::v1::WatchReleaseRequest* request) {
  return OpenLogStream(events_, store_, metrics_, "WatchRelease", handlers_.WatchRelease(*request));
}

grpc::ServerUnaryReactor* ReleasesGrpc::PromoteRelease(
    grpc::CallbackServerContext* ctx, const hosting::v1::PromoteReleaseRequest* request,
    hosting::v1::Release* response) {
  return Serve(ctx, metrics_, "PromoteRelease", response,
               [&] { return handlers_.PromoteRelease(*request, CallerOfCall(ctx)); });
}

grpc::ServerUnaryReactor* ReleasesGrpc::PauseRelease(
    grpc::CallbackServerContext* ctx, const hosting::v1::PauseReleaseRequest* request,
    hosting::v1::Release* response) {
  return Serve(ctx, metrics_, "PauseRelease", response,
               [&] { return handlers_.PauseRelease(*request, CallerOfCall(ctx)); });
}

grpc::ServerUnaryReactor* ReleasesGrpc::ResumeRelease(
    grpc::CallbackServerContext* ctx, const hosting::v1::ResumeReleaseRequest* request,
    hosting::v1::Release* response) {
  return Serve(ctx, metrics_, "ResumeRelease", response,
               [&] { return handlers_.ResumeRelease(*request, CallerOfCall(ctx)); });
}

grpc::ServerUnaryReactor* ReleasesGrpc::AbortRelease(
    grpc::CallbackServerContext* ctx, const hosting::v1::AbortReleaseRequest* request,
    hosting::v1::Release* response) {
  return Serve(ctx, metrics_, "AbortRelease", response,
               [&] { return handlers_.AbortRelease(*request, CallerOfCall(ctx)); });
}

grpc::ServerUnaryReactor* ReleasesGrpc::RollbackService(
    grpc::CallbackServerContext* ctx, const hosting::v1::RollbackServiceRequest* request,
    hosting::v1::Release* response) {
  return Serve(ctx, metrics_, "RollbackService", response,
               [&] { return handlers_.RollbackService(*request, CallerOfCall(ctx)); });
}

grpc::ServerUnaryReactor* ReleasesGrpc::JudgeRelease(
    grpc::CallbackServerContext* ctx, const hosting::v1::JudgeReleaseRequest* request,
    hosting::v1::JudgeReleaseResponse* response) {
  return Serve(ctx, metrics_, "JudgeRelease", response,
               [&] { return handlers_.JudgeRelease(*request); });
}

}  // namespace hosting::controlplane
