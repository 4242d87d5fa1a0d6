#include "controlplane/api/auth_service.h"

#include "controlplane/api/unary.h"

namespace hosting::controlplane {

grpc::ServerUnaryReactor* AuthGrpc::CreateToken(grpc::CallbackServerContext* ctx,
                                                const hosting::v1::CreateTokenRequest* request,
                                                hosting::v1::CreateTokenResponse* response) {
  return Serve(ctx, metrics_, "CreateToken", response,
               [&] { return handlers_.CreateToken(*request, CallerOfCall(ctx)); });
}

grpc::ServerUnaryReactor* AuthGrpc::ListTokens(grpc::CallbackServerContext* ctx,
                                               const hosting::v1::ListTokensRequest* request,
                                               hosting::v1::ListTokensResponse* response) {
  return Serve(ctx, metrics_, "ListTokens", response,
               [&] { return handlers_.ListTokens(*request); });
}

grpc::ServerUnaryReactor* AuthGrpc::RevokeToken(grpc::CallbackServerContext* ctx,
                                                const hosting::v1::RevokeTokenRequest* request,
                                                hosting::v1::Token* response) {
  return Serve(ctx, metrics_, "RevokeToken", response,
               [&] { return handlers_.RevokeToken(*request); });
}

grpc::ServerUnaryReactor* AuthGrpc::WhoAmI(grpc::CallbackServerContext* ctx,
                                           const hosting::v1::WhoAmIRequest* request,
                                           hosting::v1::Identity* response) {
  return Serve(ctx, metrics_, "WhoAmI", response,
               [&] { return handlers_.WhoAmI(*request, CallerOfCall(ctx)); });
}

}  // namespace hosting::controlplane
