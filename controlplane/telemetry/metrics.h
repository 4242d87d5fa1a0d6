#pragma once

#include <memory>
#include <string>

#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"

namespace hosting::controlplane {

// hostd's Prometheus metrics. One instance per hostd; exposed on --metrics-listen.
class HostdMetrics {
 public:
  HostdMetrics();

  std::shared_ptr<prometheus::Registry> registry() { return registry_; }

  // result: ok, error.
  void ObserveReconcile(const std::string& result, double seconds);
  // action: created, scaled, updated, removed, repaired.
  void CountAction(const std::string& action);
  void SetQueueDepth(double depth) { queue_depth_->Set(depth); }
  void SetDockerReachable(bool reachable) { docker_reachable_->Set(reachable ? 1 : 0); }
  void SetStoreReachable(bool reachable) { store_reachable_->Set(reachable ? 1 : 0); }
  void SetServices(double n) { services_->Set(n); }
  void CountGrpc(const std::string& method, const std::string& code);
  // Calls through the HTTP/JSON gateway: the method, and the gRPC code the answer carries.
  void CountHttp(const std::string& method, const std::string& code);
  // Every open event stream, whatever it follows (WatchEvents, WatchRelease).
  void WatcherOpened() { watchers_->Increment(); }
  void WatcherClosed() { watchers_->Decrement(); }
  // Leader election: 1 while this hostd leads, the epoch it leads (or last saw), and
  // transitions by kind (elected, lost).
  void SetLeader(bool leader, int64_t epoch) {
    leader_->Set(leader ? 1 : 0);
    leader_epoch_->Set(static_cast<double>(epoch));
  }
  void CountLeaderTransition(const std::string& kind);
  // Every event this hostd publishes, by type (hostd_events_total: a bounded set of names such
  // as agent.lost or store.unreachable); a release.finished also counts in
  // hostd_releases_finished_total by its final state, spaces as underscores (succeeded,
  // rolled_back, failed, aborted, timed_out): what the platform's alerts watch.
  void CountEvent(const std::string& type, const std::string& release_state);

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Family<prometheus::Counter>& reconciles_;
  prometheus::Family<prometheus::Histogram>& reconcile_seconds_;
  prometheus::Family<prometheus::Counter>& actions_;
  prometheus::Family<prometheus::Counter>& grpc_;
  prometheus::Family<prometheus::Counter>& http_;
  prometheus::Gauge* queue_depth_;
  prometheus::Gauge* docker_reachable_;
  prometheus::Gauge* store_reachable_;
  prometheus::Gauge* services_;
  prometheus::Gauge* watchers_;
  prometheus::Gauge* leader_;
  prometheus::Gauge* leader_epoch_;
  prometheus::Family<prometheus::Counter>& leader_transitions_;
  prometheus::Family<prometheus::Counter>& events_;
  prometheus::Family<prometheus::Counter>& releases_finished_;
};

}  // namespace hosting::controlplane
