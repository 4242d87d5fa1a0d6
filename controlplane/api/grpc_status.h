#pragma once

#include "absl/status/status.h"
#include "grpcpp/support/status.h"

namespace hosting::controlplane {

// absl::Status -> grpc::Status with the same code and message. A google.rpc.BadRequest payload
// (from InvalidArgumentWithViolations) travels as google.rpc.Status details, so clients see
// every bad field.
grpc::Status ToGrpcStatus(const absl::Status& status);

}  // namespace hosting::controlplane
