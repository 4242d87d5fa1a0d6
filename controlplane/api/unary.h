#pragma once

#include <functional>
#include <initializer_list>
#include <type_traits>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "controlplane/api/grpc_status.h"
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

// Serves a call that changes the services it names, after checking that the caller may change
// each (a deployer's token may be limited to some services; the gate cannot see requests).
// Every method the permission table marks service_scoped is served through this.
template <typename Response, typename Fn>
grpc::ServerUnaryReactor* ServeScoped(grpc::CallbackServerContext* ctx, HostdMetrics& metrics,
                                      const char* method,
                                      std::initializer_list<absl::string_view> services,
                                      Response* response, Fn&& fn) {
  for (absl::string_view service : services) {
    if (absl::Status st = CheckServiceAccess(*ctx, service); !st.ok()) {
      grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
      FinishCall(reactor, metrics, method, st);
      return reactor;
    }
  }
  return Serve(ctx, metrics, method, response, std::forward<Fn>(fn));
}

// The service a release ID names: IDs are "<service>-<sequence>".
inline absl::string_view ServiceOfRelease(absl::string_view id) {
  const size_t dash = id.rfind('-');
  return dash == absl::string_view::npos ? id : id.substr(0, dash);
}

// What a call that acts outside the store (Docker, the agents) passes first: OK on the
// leader, UNAVAILABLE naming it on a standby. Empty: always open (a single hostd).
using ActGate = std::function<absl::Status()>;
inline absl::Status PassGate(const ActGate& gate) { return gate ? gate() : absl::OkStatus(); }

// A server stream that ends at once with a status.
template <typename T>
class FinishedWriter final : public grpc::ServerWriteReactor<T> {
 public:
  explicit FinishedWriter(grpc::Status status) { this->Finish(std::move(status)); }
  void OnDone() override { delete this; }
};

}  // namespace hosting::controlplane
