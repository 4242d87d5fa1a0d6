#pragma once

#include "hosting/v1/runbooks.grpc.pb.h"

namespace hosting::controlplane {

// hosting.v1.Runbooks: not served yet; every method answers UNIMPLEMENTED naming the work
// that will serve it.
class RunbooksGrpc final : public hosting::v1::Runbooks::CallbackService {
 public:
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
};

}  // namespace hosting::controlplane
