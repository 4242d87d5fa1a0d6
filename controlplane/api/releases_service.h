#pragma once

#include "controlplane/api/handlers.h"
#include "controlplane/store/event_log.h"
#include "controlplane/store/store.h"
#include "controlplane/telemetry/metrics.h"
#include "hosting/v1/releases.grpc.pb.h"

namespace hosting::controlplane {

// hosting.v1.Releases over its handlers; WatchRelease follows the event log.
class ReleasesGrpc final : public hosting::v1::Releases::CallbackService {
 public:
  ReleasesGrpc(ReleaseHandlers& handlers, EventLog& events, Store& store, HostdMetrics& metrics)
      : handlers_(handlers), events_(events), store_(store), metrics_(metrics) {}

  grpc::ServerUnaryReactor* StartRelease(grpc::CallbackServerContext* ctx,
                                         const hosting::v1::StartReleaseRequest* request,
                                         hosting::v1::Release* response) override;
  grpc::ServerUnaryReactor* GetRelease(grpc::CallbackServerContext* ctx,
                                       const hosting::v1::GetReleaseRequest* request,
                                       hosting::v1::Release* response) override;
  grpc::ServerUnaryReactor* ListReleases(grpc::CallbackServerContext* ctx,
                                         const hosting::v1::ListReleasesRequest* request,
                                         hosting::v1::ListReleasesResponse* response) override;
  grpc::ServerWriteReactor<hosting::v1::ReleaseEvent>* WatchRelease(
      grpc::CallbackServerContext* ctx, const hosting::v1::WatchReleaseRequest* request) override;
  grpc::ServerUnaryReactor* PromoteRelease(grpc::CallbackServerContext* ctx,
                                           const hosting::v1::PromoteReleaseRequest* request,
                                           hosting::v1::Release* response) override;
  grpc::ServerUnaryReactor* PauseRelease(grpc::CallbackServerContext* ctx,
                                         const hosting::v1::PauseReleaseRequest* request,
                                         hosting::v1::Release* response) override;
  grpc::ServerUnaryReactor* ResumeRelease(grpc::CallbackServerContext* ctx,
                                          const hosting::v1::ResumeReleaseRequest* request,
                                          hosting::v1::Release* response) override;
  grpc::ServerUnaryReactor* AbortRelease(grpc::CallbackServerContext* ctx,
                                         const hosting::v1::AbortReleaseRequest* request,
                                         hosting::v1::Release* response) override;
  grpc::ServerUnaryReactor* RollbackService(grpc::CallbackServerContext* ctx,
                                            const hosting::v1::RollbackServiceRequest* request,
                                            hosting::v1::Release* response) override;
  grpc::ServerUnaryReactor* JudgeRelease(grpc::CallbackServerContext* ctx,
                                         const hosting::v1::JudgeReleaseRequest* request,
                                         hosting::v1::JudgeReleaseResponse* response) override;

 private:
  ReleaseHandlers& handlers_;
  EventLog& events_;
  Store& store_;
  HostdMetrics& metrics_;
};

}  // namespace hosting::controlplane
