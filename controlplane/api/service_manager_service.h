#pragma once

#include "controlplane/api/handlers.h"
#include "controlplane/telemetry/metrics.h"
#include "hosting/v1/service.grpc.pb.h"

namespace hosting::controlplane {

// hosting.v1.ServiceManager over its handlers (handlers.h): convert, call, map
// the status.
class ServiceManagerGrpc final : public hosting::v1::ServiceManager::CallbackService {
 public:
  ServiceManagerGrpc(ServiceHandlers& handlers, HostdMetrics& metrics)
      : handlers_(handlers), metrics_(metrics) {}

  grpc::ServerUnaryReactor* ApplyService(grpc::CallbackServerContext* ctx,
                                         const hosting::v1::ApplyServiceRequest* request,
                                         hosting::v1::ApplyServiceResponse* response) override;
  grpc::ServerUnaryReactor* GetService(grpc::CallbackServerContext* ctx,
                                       const hosting::v1::GetServiceRequest* request,
                                       hosting::v1::Service* response) override;
  grpc::ServerUnaryReactor* ListServices(grpc::CallbackServerContext* ctx,
                                         const hosting::v1::ListServicesRequest* request,
                                         hosting::v1::ListServicesResponse* response) override;
  grpc::ServerUnaryReactor* DeleteService(grpc::CallbackServerContext* ctx,
                                          const hosting::v1::DeleteServiceRequest* request,
                                          hosting::v1::DeleteServiceResponse* response) override;
  grpc::ServerUnaryReactor* ScaleService(grpc::CallbackServerContext* ctx,
                                         const hosting::v1::ScaleServiceRequest* request,
                                         hosting::v1::Service* response) override;

 private:
  ServiceHandlers& handlers_;
  HostdMetrics& metrics_;
};

}  // namespace hosting::controlplane
