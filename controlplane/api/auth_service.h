#pragma once

#include "controlplane/api/handlers.h"
#include "controlplane/telemetry/metrics.h"
#include "hosting/v1/auth.grpc.pb.h"

namespace hosting::controlplane {

// hosting.v1.Auth over its handlers: tokens are an admin's; WhoAmI anyone's.
class AuthGrpc final : public hosting::v1::Auth::CallbackService {
 public:
  AuthGrpc(AuthHandlers& handlers, HostdMetrics& metrics)
      : handlers_(handlers), metrics_(metrics) {}

  grpc::ServerUnaryReactor* CreateToken(grpc::CallbackServerContext* ctx,
                                        const hosting::v1::CreateTokenRequest* request,
                                        hosting::v1::CreateTokenResponse* response) override;
  grpc::ServerUnaryReactor* ListTokens(grpc::CallbackServerContext* ctx,
                                       const hosting::v1::ListTokensRequest* request,
                                       hosting::v1::ListTokensResponse* response) override;
  grpc::ServerUnaryReactor* RevokeToken(grpc::CallbackServerContext* ctx,
                                        const hosting::v1::RevokeTokenRequest* request,
                                        hosting::v1::Token* response) override;
  grpc::ServerUnaryReactor* WhoAmI(grpc::CallbackServerContext* ctx,
                                   const hosting::v1::WhoAmIRequest* request,
                                   hosting::v1::Identity* response) override;

 private:
  AuthHandlers& handlers_;
  HostdMetrics& metrics_;
};

}  // namespace hosting::controlplane
