#pragma once

#include "controlplane/release/release_manager.h"
#include "controlplane/store/event_log.h"
#include "controlplane/store/store.h"
#include "controlplane/telemetry/metrics.h"
#include "hosting/v1/releases.grpc.pb.h"

namespace hosting::controlplane {

// hosting.v1.Releases on the ReleaseManager; WatchRelease follows the event log.
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

}  // namespace hosting::controlplane
