#include "controlplane/api/service_manager_service.h"

#include "controlplane/api/unary.h"

namespace hosting::controlplane {

grpc::ServerUnaryReactor* ServiceManagerGrpc::ApplyService(
    grpc::CallbackServerContext* ctx, const hosting::v1::ApplyServiceRequest* request,
    hosting::v1::ApplyServiceResponse* response) {
  return Serve(ctx, metrics_, "ApplyService", response,
               [&] { return handlers_.ApplyService(*request, CallerOfCall(ctx)); });
}

grpc::ServerUnaryReactor* ServiceManagerGrpc::GetService(
    grpc::CallbackServerContext* ctx, const hosting::v1::GetServiceRequest* request,
    hosting::v1::Service* response) {
  return Serve(ctx, metrics_, "GetService", response,
               [&] { return handlers_.GetService(*request); });
}

grpc::ServerUnaryReactor* ServiceManagerGrpc::ListServices(
    grpc::CallbackServerContext* ctx, const hosting::v1::ListServicesRequest* request,
    hosting::v1::ListServicesResponse* response) {
  return Serve(ctx, metrics_, "ListServices", response,
               [&] { return handlers_.ListServices(*request); });
}

grpc::ServerUnaryReactor* ServiceManagerGrpc::DeleteService(
    grpc::CallbackServerContext* ctx, const hosting::v1::DeleteServiceRequest* request,
    hosting::v1::DeleteServiceResponse* response) {
  return Serve(ctx, metrics_, "DeleteService", response,
               [&] { return handlers_.DeleteService(*request, CallerOfCall(ctx)); });
}

grpc::ServerUnaryReactor* ServiceManagerGrpc::ScaleService(
    grpc::CallbackServerContext* ctx, const hosting::v1::ScaleServiceRequest* request,
    hosting::v1::Service* response) {
  return Serve(ctx, metrics_, "ScaleService", response,
               [&] { return handlers_.ScaleService(*request, CallerOfCall(ctx)); });
}

}  // namespace hosting::controlplane
