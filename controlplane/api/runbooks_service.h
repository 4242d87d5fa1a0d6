#pragma once

#include "controlplane/api/handlers.h"
#include "controlplane/store/event_log.h"
#include "controlplane/store/store.h"
#include "controlplane/telemetry/metrics.h"
#include "hosting/v1/runbooks.grpc.pb.h"

namespace hosting::controlplane {

// hosting.v1.Runbooks over its handlers; WatchRun follows the event log.
class RunbooksGrpc final : public hosting::v1::Runbooks::CallbackService {
 public:
  RunbooksGrpc(RunbookHandlers& handlers, EventLog& events, Store& store, HostdMetrics& metrics)
      : handlers_(handlers), events_(events), store_(store), metrics_(metrics) {}

  grpc::ServerUnaryReactor* ListRunbooks(grpc::CallbackServerContext* ctx,
                                         const hosting::v1::ListRunbooksRequest* request,
                                         hosting::v1::ListRunbooksResponse* response) override;
  grpc::ServerUnaryReactor* RunRunbook(grpc::CallbackServerContext* ctx,
                                       const hosting::v1::RunRunbookRequest* request,
                                       hosting::v1::RunbookRun* response) override;
  grpc::ServerUnaryReactor* GetRun(grpc::CallbackServerContext* ctx,
                                   const hosting::v1::GetRunRequest* request,
                                   hosting::v1::RunbookRun* response) override;
  grpc::ServerWriteReactor<hosting::v1::RunbookRun>* WatchRun(
      grpc::CallbackServerContext* ctx, const hosting::v1::WatchRunRequest* request) override;
  grpc::ServerUnaryReactor* ListRuns(grpc::CallbackServerContext* ctx,
                                     const hosting::v1::ListRunsRequest* request,
                                     hosting::v1::ListRunsResponse* response) override;
  grpc::ServerUnaryReactor* CancelRun(grpc::CallbackServerContext* ctx,
                                      const hosting::v1::CancelRunRequest* request,
                                      hosting::v1::RunbookRun* response) override;
  grpc::ServerUnaryReactor* ApproveRun(grpc::CallbackServerContext* ctx,
                                       const hosting::v1::ApproveRunRequest* request,
                                       hosting::v1::RunbookRun* response) override;

 private:
  RunbookHandlers& handlers_;
  EventLog& events_;
  Store& store_;
  HostdMetrics& metrics_;
};

}  // namespace hosting::controlplane
