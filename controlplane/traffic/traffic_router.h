#pragma once

#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "controlplane/store/event_log.h"
#include "controlplane/traffic/load_balancer.h"
#include "hosting/internal/state.pb.h"

namespace hosting::controlplane {

// A task that may take traffic.
struct RouteTarget {
  std::string task_id;
  int64_t revision = 0;
  std::string address;
  int port = 0;
  // Ready for traffic (healthy); unready tasks are taken out.
  bool ready = false;
};

// What the router saw and did for one service.
struct RouteStatus {
  // The service's backend exists and was programmed.
  bool routed = false;
  // Why not, when !routed.
  std::string detail;
  // Open sessions per task on the main backend.
  std::map<std::string, int> sessions;
  // The traffic share each revision gets now (0..100), from the programmed weights.
  std::map<int64_t, double> shares;
};

// Programs the load balancer so that backend "<service>" serves exactly the ready tasks with
// the rollout's per-revision weights, drained tasks stop getting new requests, and tasks that
// are gone or unready are taken out (maintenance) and then deleted once idle. Backend
// "<service>-preview", when it exists, serves the rollout's preview revision. Level-triggered:
// every call compares the balancer's servers with the targets.
class TrafficRouter {
 public:
  // `lb` may be null: nothing is routed and every status says so.
  TrafficRouter(LoadBalancer* lb, EventLog& events) : lb_(lb), events_(events) {}

  // Whether a load balancer is configured.
  bool enabled() const { return lb_ != nullptr; }

  RouteStatus Sync(const std::string& service, const hosting::internal::Rollout& rollout,
                   const std::vector<RouteTarget>& targets);

  // HAProxy weights (0..256) per task for the rollout's shares over the ready targets. Shares of
  // revisions without a ready task are not routed to nothing: they go to the others.
  static std::map<std::string, int> Weights(const hosting::internal::Rollout& rollout,
                                            const std::vector<RouteTarget>& targets);
  // Server name of a task: "r<revision>-<first 12 characters of the task ID>".
  static std::string ServerName(const RouteTarget& t);

 private:
  absl::Status SyncBackend(const std::string& service, const std::string& backend,
                           const std::vector<RouteTarget>& targets,
                           const std::map<std::string, int>& weights,
                           const std::set<std::string>& drain, RouteStatus* status);

  LoadBalancer* lb_;
  EventLog& events_;
  absl::Mutex mu_;
  // Last problem reported per backend, so a persisting one is published once.
  std::map<std::string, std::string> reported_ ABSL_GUARDED_BY(mu_);
};

}  // namespace hosting::controlplane
