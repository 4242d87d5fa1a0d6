#pragma once

#include <functional>
#include <type_traits>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "controlplane/api/grpc_status.h"
#include "controlplane/api/handlers.h"
#include "controlplane/auth/auth_gate.h"
#include "controlplane/telemetry/metrics.h"
#include "grpcpp/server_context.h"
#include "grpcpp/support/server_callback.h"

// What every adapter of the gRPC edge shares: finishing a unary call from a domain result,
// counting it, and streams that end at once.
namespace hosting::controlplane {

// "OK", "INVALID_ARGUMENT", ... (the label of hostd_grpc_requests_total).
const char* GrpcCodeName(grpc::StatusCode code);

// Finishes `reactor` with `status`, counted under `method`.
inline void FinishCall(grpc::ServerUnaryReactor* reactor, HostdMetrics& metrics,
                       const char* method, const absl::Status& status) {
  grpc::Status s = ToGrpcStatus(status);
  metrics.CountGrpc(method, GrpcCodeName(s.error_code()));
  reactor->Finish(s);
}

// Serves a unary call from a domain call that returns absl::Status or absl::StatusOr<T>
// (moved into *response). Runs on the gRPC callback thread: for calls that do not block.
template <typename Response, typename Fn>
grpc::ServerUnaryReactor* Serve(grpc::CallbackServerContext* ctx, HostdMetrics& metrics,
                                const char* method, Response* response, Fn&& fn) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  auto result = fn();
  if constexpr (std::is_same_v<decltype(result), absl::Status>) {
    FinishCall(reactor, metrics, method, result);
  } else {
    if (result.ok()) *response = *std::move(result);
    FinishCall(reactor, metrics, method, result.status());
  }
  return reactor;
}

// The caller of a gRPC call, for a handler that asks (handlers.h CallerFn).
inline auto CallerOfCall(const grpc::CallbackServerContext* ctx) {
  return [ctx] { return CallerOf(*ctx); };
}

// Finishes a unary call later, from a handler's Done: *response is written just before
// Finish, while gRPC keeps the call (and so `response`) alive.
template <typename Response>
Done<Response> FinishLater(grpc::ServerUnaryReactor* reactor, HostdMetrics& metrics,
                           const char* method, Response* response) {
  return [reactor, &metrics, method, response](absl::StatusOr<Response> r) {
    if (r.ok()) *response = *std::move(r);
    FinishCall(reactor, metrics, method, r.status());
  };
}

// A server stream that ends at once with a status.
template <typename T>
class FinishedWriter final : public grpc::ServerWriteReactor<T> {
 public:
  explicit FinishedWriter(grpc::Status status) { this->Finish(std::move(status)); }
  void OnDone() override { delete this; }
};

}  // namespace hosting::controlplane
