#pragma once

#include "controlplane/auth/token_authority.h"
#include "controlplane/telemetry/metrics.h"
#include "hosting/v1/auth.grpc.pb.h"

namespace hosting::controlplane {

// hosting.v1.Auth on the TokenAuthority. `auth_enabled`: whether the gate checks credentials
// (WhoAmI says so).
class AuthGrpc final : public hosting::v1::Auth::CallbackService {
 public:
  AuthGrpc(TokenAuthority& tokens, HostdMetrics& metrics, bool auth_enabled)
      : tokens_(tokens), metrics_(metrics), auth_enabled_(auth_enabled) {}
  grpc::ServerUnaryReactor* CreateToken(grpc::CallbackServerContext* ctx,
                                        const hosting::v1::CreateTokenRequest*,
                                        hosting::v1::CreateTokenResponse*) override;
  grpc::ServerUnaryReactor* ListTokens(grpc::CallbackServerContext* ctx,
                                       const hosting::v1::ListTokensRequest*,
                                       hosting::v1::ListTokensResponse*) override;
  grpc::ServerUnaryReactor* RevokeToken(grpc::CallbackServerContext* ctx,
                                        const hosting::v1::RevokeTokenRequest*,
                                        hosting::v1::Token*) override;
  grpc::ServerUnaryReactor* WhoAmI(grpc::CallbackServerContext* ctx,
                                   const hosting::v1::WhoAmIRequest*,
                                   hosting::v1::Identity*) override;

 private:
  TokenAuthority& tokens_;
  HostdMetrics& metrics_;
  const bool auth_enabled_;
};

}  // namespace hosting::controlplane
