#pragma once

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/clock.h"
#include "controlplane/reconcile/reconciler.h"
#include "controlplane/service/desired_state.h"
#include "controlplane/store/store.h"
#include "hosting/v1/service.pb.h"

namespace hosting::controlplane {

// The ServiceManager domain: validates and persists desired state, decides when a change makes
// a new revision, and hands the service to the reconciler. The gRPC layer only converts.
class ServiceManager {
 public:
  ServiceManager(Store& store, DesiredState& state, Reconciler& reconciler, Clock& clock)
      : store_(store), state_(state), reconciler_(reconciler), clock_(clock) {}

  absl::StatusOr<hosting::v1::ApplyServiceResponse> Apply(
      const hosting::v1::ApplyServiceRequest& request);
  // Desired state plus observed status; UNAVAILABLE when Docker cannot be reached.
  absl::StatusOr<hosting::v1::Service> Get(const std::string& name);
  absl::StatusOr<std::vector<hosting::v1::Service>> List();
  absl::StatusOr<hosting::v1::Service> Delete(const std::string& name);
  // Refused (FAILED_PRECONDITION) on a service with an autoscaling policy unless forced.
  absl::StatusOr<hosting::v1::Service> Scale(const hosting::v1::ScaleServiceRequest& request);
  // Sets the service's replicas when they are still `expected_from` (ABORTED otherwise, and
  // when a concurrent write wins) and publishes `event_type` with `message`. A running release
  // splits the new size over its revisions; a warm revision is left alone. The autoscaler's
  // way in, and Scale's.
  absl::StatusOr<ServiceRecord> Resize(const std::string& name, int32_t expected_from,
                                       int32_t replicas, const std::string& event_type,
                                       const std::string& message,
                                       std::map<std::string, std::string> attributes);

  // Record -> API message (without status).
  static hosting::v1::Service ToProto(const ServiceRecord& record);

 private:
  Store& store_;
  DesiredState& state_;
  Reconciler& reconciler_;
  Clock& clock_;
};

}  // namespace hosting::controlplane
