#pragma once

#include "controlplane/runbook/engine.h"
#include "controlplane/store/event_log.h"
#include "controlplane/store/store.h"
#include "controlplane/telemetry/metrics.h"
#include "hosting/v1/runbooks.grpc.pb.h"

namespace hosting::controlplane {

// hosting.v1.Runbooks on the RunbookEngine; WatchRun follows the event log. Runs record the
// caller's principal as who started, cancelled or approved them.
class RunbooksGrpc final : public hosting::v1::Runbooks::CallbackService {
 public:
  RunbooksGrpc(RunbookEngine& engine, EventLog& events, Store& store, HostdMetrics& metrics)
      : engine_(engine), events_(events), store_(store), metrics_(metrics) {}

  grpc::ServerUnaryReactor* ListRunbooks(grpc::CallbackServerContext* ctx,
                                         const hosting::v1::ListRunbooksRequest*,
                                         hosting::v1::ListRunbooksResponse*) override;
  grpc::ServerUnaryReactor* RunRunbook(grpc::CallbackServerContext* ctx,
                                       const hosting::v1::RunRunbookRequest*,
                                       hosting::v1::RunbookRun*) override;
  grpc::ServerUnaryReactor* GetRun(grpc::CallbackServerContext* ctx,
                                   const hosting::v1::GetRunRequest*,
                                   hosting::v1::RunbookRun*) override;
  grpc::ServerWriteReactor<hosting::v1::RunbookRun>* WatchRun(
      grpc::CallbackServerContext* ctx, const hosting::v1::WatchRunRequest*) override;
  grpc::ServerUnaryReactor* ListRuns(grpc::CallbackServerContext* ctx,
                                     const hosting::v1::ListRunsRequest*,
                                     hosting::v1::ListRunsResponse*) override;
  grpc::ServerUnaryReactor* CancelRun(grpc::CallbackServerContext* ctx,
                                      const hosting::v1::CancelRunRequest*,
                                      hosting::v1::RunbookRun*) override;
  grpc::ServerUnaryReactor* ApproveRun(grpc::CallbackServerContext* ctx,
                                       const hosting::v1::ApproveRunRequest*,
                                       hosting::v1::RunbookRun*) override;

 private:
  RunbookEngine& engine_;
  EventLog& events_;
  Store& store_;
  HostdMetrics& metrics_;
};

}  // namespace hosting::controlplane
