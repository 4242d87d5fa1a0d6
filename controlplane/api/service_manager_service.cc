#include "controlplane/api/service_manager_service.h"

#include "controlplane/api/unary.h"

namespace hosting::controlplane {

grpc::ServerUnaryReactor* ServiceManagerGrpc::ApplyService(
    grpc::CallbackServerContext* ctx, const hosting::v1::ApplyServiceRequest* request,
    hosting::v1::ApplyServiceResponse* response) {
  return ServeScoped(ctx, metrics_, "ApplyService", {request->spec().name()}, response,
                     [&] { return manager_.Apply(*request); });
}

grpc::ServerUnaryReactor* ServiceManagerGrpc::GetService(
    grpc::CallbackServerContext* ctx, const hosting::v1::GetServiceRequest* request,
    hosting::v1::Service* response) {
  return Serve(ctx, metrics_, "GetService", response,
               [&] { return manager_.Get(request->name()); });
}

grpc::ServerUnaryReactor* ServiceManagerGrpc::ListServices(
    grpc::CallbackServerContext* ctx, const hosting::v1::ListServicesRequest*,
    hosting::v1::ListServicesResponse* response) {
  return Serve(ctx, metrics_, "ListServices", response,
               [&]() -> absl::StatusOr<hosting::v1::ListServicesResponse> {
                 absl::StatusOr<std::vector<hosting::v1::Service>> r = manager_.List();
                 if (!r.ok()) return r.status();
                 hosting::v1::ListServicesResponse out;
                 for (auto& s : *r) *out.add_services() = std::move(s);
                 return out;
               });
}

grpc::ServerUnaryReactor* ServiceManagerGrpc::DeleteService(
    grpc::CallbackServerContext* ctx, const hosting::v1::DeleteServiceRequest* request,
    hosting::v1::DeleteServiceResponse* response) {
  return ServeScoped(ctx, metrics_, "DeleteService", {request->name()}, response,
               [&]() -> absl::StatusOr<hosting::v1::DeleteServiceResponse> {
                 absl::StatusOr<hosting::v1::Service> r = manager_.Delete(request->name());
                 if (!r.ok()) return r.status();
                 hosting::v1::DeleteServiceResponse out;
                 *out.mutable_service() = *std::move(r);
                 return out;
               });
}

grpc::ServerUnaryReactor* ServiceManagerGrpc::ScaleService(
    grpc::CallbackServerContext* ctx, const hosting::v1::ScaleServiceRequest* request,
    hosting::v1::Service* response) {
  return ServeScoped(ctx, metrics_, "ScaleService", {request->name()}, response,
                     [&] { return manager_.Scale(*request); });
}

}  // namespace hosting::controlplane
