#include "controlplane/telemetry/metrics.h"

#include <algorithm>

namespace hosting::controlplane {

HostdMetrics::HostdMetrics()
    : registry_(std::make_shared<prometheus::Registry>()),
      reconciles_(prometheus::BuildCounter()
                      .Name("hostd_reconcile_total")
                      .Help("Reconcile passes by result (ok, error).")
                      .Register(*registry_)),
      reconcile_seconds_(prometheus::BuildHistogram()
                             .Name("hostd_reconcile_duration_seconds")
                             .Help("Duration of one reconcile pass of one service.")
                             .Register(*registry_)),
      actions_(prometheus::BuildCounter()
                   .Name("hostd_reconcile_actions_total")
                   .Help("Changes made to Swarm by the reconciler, by action.")
                   .Register(*registry_)),
      grpc_(prometheus::BuildCounter()
                .Name("hostd_grpc_requests_total")
                .Help("gRPC calls served, by method and status code.")
                .Register(*registry_)),
      http_(prometheus::BuildCounter()
                .Name("hostd_http_requests_total")
                .Help("Calls served by the HTTP/JSON gateway, by method and the gRPC status "
                      "code of the answer.")
                .Register(*registry_)),
      leader_transitions_(prometheus::BuildCounter()
                              .Name("hostd_leader_transitions_total")
                              .Help("Leadership changes of this hostd, by kind (elected, lost).")
                              .Register(*registry_)),
      events_(prometheus::BuildCounter()
                  .Name("hostd_events_total")
                  .Help("Events this hostd published, by type.")
                  .Register(*registry_)),
      releases_finished_(prometheus::BuildCounter()
                             .Name("hostd_releases_finished_total")
                             .Help("Releases this hostd finished, by final state.")
                             .Register(*registry_)) {
  queue_depth_ = &prometheus::BuildGauge()
                      .Name("hostd_workqueue_depth")
                      .Help("Service keys waiting to be reconciled.")
                      .Register(*registry_)
                      .Add({});
  docker_reachable_ = &prometheus::BuildGauge()
                           .Name("hostd_docker_reachable")
                           .Help("1 while the Docker engine answers, else 0.")
                           .Register(*registry_)
                           .Add({});
  store_reachable_ = &prometheus::BuildGauge()
                          .Name("hostd_store_reachable")
                          .Help("1 while the desired-state store answers the reconciler, else 0.")
                          .Register(*registry_)
                          .Add({});
  store_reachable_->Set(1);
  services_ = &prometheus::BuildGauge()
                   .Name("hostd_services")
                   .Help("Hosted services in the desired state.")
                   .Register(*registry_)
                   .Add({});
  watchers_ = &prometheus::BuildGauge()
                   .Name("hostd_event_watchers")
                   .Help("Open event streams (WatchEvents and WatchRelease).")
                   .Register(*registry_)
                   .Add({});
  leader_ = &prometheus::BuildGauge()
                 .Name("hostd_leader")
                 .Help("1 while this hostd holds the leader lease and acts, else 0.")
                 .Register(*registry_)
                 .Add({});
  leader_epoch_ = &prometheus::BuildGauge()
                       .Name("hostd_leader_epoch")
                       .Help("The lease epoch this hostd leads at, or last saw another lead at.")
                       .Register(*registry_)
                       .Add({});
}

void HostdMetrics::CountLeaderTransition(const std::string& kind) {
  leader_transitions_.Add({{"kind", kind}}).Increment();
}

void HostdMetrics::CountEvent(const std::string& type, const std::string& release_state) {
  events_.Add({{"type", type}}).Increment();
  if (type != "release.finished") return;
  std::string state = release_state.empty() ? "unknown" : release_state;
  std::replace(state.begin(), state.end(), ' ', '_');
  releases_finished_.Add({{"state", state}}).Increment();
}

void HostdMetrics::ObserveReconcile(const std::string& result, double seconds) {
  reconciles_.Add({{"result", result}}).Increment();
  static const prometheus::Histogram::BucketBoundaries kBuckets = {
      0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
  reconcile_seconds_.Add({}, kBuckets).Observe(seconds);
}

void HostdMetrics::CountAction(const std::string& action) {
  actions_.Add({{"action", action}}).Increment();
}

void HostdMetrics::CountGrpc(const std::string& method, const std::string& code) {
  grpc_.Add({{"method", method}, {"code", code}}).Increment();
}

void HostdMetrics::CountHttp(const std::string& method, const std::string& code) {
  http_.Add({{"method", method}, {"code", code}}).Increment();
}

}  // namespace hosting::controlplane
