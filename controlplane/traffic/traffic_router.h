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
  // Swarm runs it (its task state is "running").
  bool running = false;
  // Nobody knows right now (its agent has not reported it since connecting, has no probe
  // settings for it, or its node's agent is lost): the balancer keeps what it has for the
  // task, and its own check decides. Never added, never taken out on this account.
  bool unknown = false;
  // The balancer's own check for the task's server.
  LbCheck check;
  // The HTTP path the service's health check asks; the balancer checks a path per backend
  // ("option httpchk"), so this only tells whether its check is the service's.
  std::string http_path;
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
//
// Static stability: the balancer's servers carry their own checks, so they keep serving (and
// drop dead tasks) with no control plane at all. A restarted hostd adopts the servers the
// balancer has: a task whose health it does not know yet keeps its server as it is. And no
// sync empties a backend while any of its tasks runs: with no task known ready, the running
// tasks' servers stay, and the balancer's checks choose among them (as Envoy's panic routing).
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

  // Forgets what it reported of services that no longer exist.
  void Retain(const std::set<std::string>& services);

 private:
  // Brings one backend in line; returns its servers as they were read before, and sets
  // *panic when no target was ready while some ran (their servers were kept).
  absl::StatusOr<std::vector<LbServer>> SyncBackend(const std::string& backend,
                                                    const std::vector<RouteTarget>& targets,
                                                    const std::map<std::string, int>& weights,
                                                    const std::set<std::string>& drain,
                                                    RouteStatus* status, bool* panic);

  // Publishes `message` as `event_type` when `problem` (of this kind, for this service)
  // differs from the last one seen; "" is no problem, and the first state seen is not news
  // when it is "".
  void Report(const std::string& service, const std::string& kind, const std::string& problem,
              const std::string& event_type, const std::string& message);

  LoadBalancer* lb_;
  EventLog& events_;
  absl::Mutex mu_;
  // Last problem reported per (service, kind), so a persisting one is published once.
  std::map<std::pair<std::string, std::string>, std::string> reported_ ABSL_GUARDED_BY(mu_);
};

}  // namespace hosting::controlplane
