#include "controlplane/api/auth_service.h"

#include "controlplane/api/unary.h"

namespace hosting::controlplane {

grpc::ServerUnaryReactor* AuthGrpc::CreateToken(grpc::CallbackServerContext* ctx,
                                                const hosting::v1::CreateTokenRequest* request,
                                                hosting::v1::CreateTokenResponse* response) {
  return Serve(ctx, metrics_, "CreateToken", response,
               [&] { return tokens_.Create(*request, CallerOf(*ctx).principal); });
}

grpc::ServerUnaryReactor* AuthGrpc::ListTokens(grpc::CallbackServerContext* ctx,
                                               const hosting::v1::ListTokensRequest*,
                                               hosting::v1::ListTokensResponse* response) {
  return Serve(ctx, metrics_, "ListTokens", response,
               [&]() -> absl::StatusOr<hosting::v1::ListTokensResponse> {
                 absl::StatusOr<std::vector<hosting::v1::Token>> tokens = tokens_.List();
                 if (!tokens.ok()) return tokens.status();
                 hosting::v1::ListTokensResponse out;
                 for (auto& t : *tokens) *out.add_tokens() = std::move(t);
                 return out;
               });
}

grpc::ServerUnaryReactor* AuthGrpc::RevokeToken(grpc::CallbackServerContext* ctx,
                                                const hosting::v1::RevokeTokenRequest* request,
                                                hosting::v1::Token* response) {
  return Serve(ctx, metrics_, "RevokeToken", response,
               [&] { return tokens_.Revoke(request->accessor()); });
}

grpc::ServerUnaryReactor* AuthGrpc::WhoAmI(grpc::CallbackServerContext* ctx,
                                           const hosting::v1::WhoAmIRequest*,
                                           hosting::v1::Identity* response) {
  return Serve(ctx, metrics_, "WhoAmI", response, [&]() -> absl::StatusOr<hosting::v1::Identity> {
    Caller caller = CallerOf(*ctx);
    hosting::v1::Identity id;
    id.set_principal(caller.principal);
    id.set_role(caller.role);
    for (const std::string& s : caller.services) id.add_services(s);
    id.set_node(caller.node);
    id.set_auth_enabled(auth_enabled_);
    return id;
  });
}

}  // namespace hosting::controlplane
