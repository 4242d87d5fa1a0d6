#include "controlplane/api/releases_service.h"

#include <string>

#include "controlplane/api/log_stream.h"
#include "controlplane/api/unary.h"
#include "controlplane/spec/validation.h"

namespace hosting::controlplane {

grpc::ServerUnaryReactor* ReleasesGrpc::StartRelease(
    grpc::CallbackServerContext* ctx, const hosting::v1::StartReleaseRequest* request,
    hosting::v1::Release* response) {
  // The service is named by `service`, by the spec, or both (which must agree).
  const std::string& service =
      request->service().empty() ? request->spec().name() : request->service();
  const std::string& in_spec = request->spec().name().empty() ? service : request->spec().name();
  return ServeScoped(ctx, metrics_, "StartRelease", {service, in_spec}, response,
                     [&] { return releases_.Start(*request); });
}

grpc::ServerUnaryReactor* ReleasesGrpc::GetRelease(grpc::CallbackServerContext* ctx,
                                                   const hosting::v1::GetReleaseRequest* request,
                                                   hosting::v1::Release* response) {
  return Serve(ctx, metrics_, "GetRelease", response, [&] { return releases_.Get(*request); });
}

grpc::ServerUnaryReactor* ReleasesGrpc::ListReleases(
    grpc::CallbackServerContext* ctx, const hosting::v1::ListReleasesRequest* request,
    hosting::v1::ListReleasesResponse* response) {
  return Serve(ctx, metrics_, "ListReleases", response,
               [&]() -> absl::StatusOr<hosting::v1::ListReleasesResponse> {
                 absl::StatusOr<std::vector<hosting::v1::Release>> list =
                     releases_.List(*request);
                 if (!list.ok()) return list.status();
                 hosting::v1::ListReleasesResponse out;
                 for (auto& r : *list) *out.add_releases() = std::move(r);
                 return out;
               });
}

grpc::ServerUnaryReactor* ReleasesGrpc::PromoteRelease(
    grpc::CallbackServerContext* ctx, const hosting::v1::PromoteReleaseRequest* request,
    hosting::v1::Release* response) {
  return ServeScoped(ctx, metrics_, "PromoteRelease", {ServiceOfRelease(request->id())}, response,
                     [&] { return releases_.Promote(*request); });
}

grpc::ServerUnaryReactor* ReleasesGrpc::PauseRelease(
    grpc::CallbackServerContext* ctx, const hosting::v1::PauseReleaseRequest* request,
    hosting::v1::Release* response) {
  return ServeScoped(ctx, metrics_, "PauseRelease", {ServiceOfRelease(request->id())}, response,
                     [&] { return releases_.Pause(request->id()); });
}

grpc::ServerUnaryReactor* ReleasesGrpc::ResumeRelease(
    grpc::CallbackServerContext* ctx, const hosting::v1::ResumeReleaseRequest* request,
    hosting::v1::Release* response) {
  return ServeScoped(ctx, metrics_, "ResumeRelease", {ServiceOfRelease(request->id())}, response,
                     [&] { return releases_.Resume(request->id()); });
}

grpc::ServerUnaryReactor* ReleasesGrpc::AbortRelease(
    grpc::CallbackServerContext* ctx, const hosting::v1::AbortReleaseRequest* request,
    hosting::v1::Release* response) {
  return ServeScoped(ctx, metrics_, "AbortRelease", {ServiceOfRelease(request->id())}, response,
                     [&] { return releases_.Abort(*request); });
}

grpc::ServerUnaryReactor* ReleasesGrpc::RollbackService(
    grpc::CallbackServerContext* ctx, const hosting::v1::RollbackServiceRequest* request,
    hosting::v1::Release* response) {
  return ServeScoped(ctx, metrics_, "RollbackService", {request->service()}, response,
               [&] { return releases_.Rollback(*request); });
}

grpc::ServerWriteReactor<hosting::v1::ReleaseEvent>* ReleasesGrpc::WatchRelease(
    grpc::CallbackServerContext*, const hosting::v1::WatchReleaseRequest* request) {
  hosting::v1::GetReleaseRequest get;
  get.set_id(request->id());
  absl::StatusOr<hosting::v1::Release> current =
      request->id().empty()
          ? absl::StatusOr<hosting::v1::Release>(
                InvalidArgumentWithViolations({{"id", "required: a release ID"}}))
          : releases_.Get(get);
  const grpc::Status status = ToGrpcStatus(current.status());
  metrics_.CountGrpc("WatchRelease", GrpcCodeName(status.error_code()));
  if (!current.ok()) return new FinishedWriter<hosting::v1::ReleaseEvent>(status);
  const std::string id = request->id();
  LogStream<hosting::v1::ReleaseEvent>::Options o;
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
  // The whole history of the release first, then what happens next.
  o.replay_after = 0;
  o.no_follow = IsTerminalState(current->state());
  return LogStream<hosting::v1::ReleaseEvent>::Open(events_, store_, metrics_, std::move(o));
}

}  // namespace hosting::controlplane
