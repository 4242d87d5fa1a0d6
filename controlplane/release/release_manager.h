#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "common/clock.h"
#include "common/docker_client.h"
#include "controlplane/agents/agent_registry.h"
#include "controlplane/store/event_log.h"
#include "controlplane/query/async_query.h"
#include "controlplane/query/promql.h"
#include "controlplane/reconcile/reconciler.h"
#include "controlplane/release/release_machine.h"
#include "controlplane/service/image_puller.h"
#include "controlplane/service/desired_state.h"
#include "controlplane/store/store.h"
#include "controlplane/traffic/route_targets.h"
#include "controlplane/traffic/traffic_router.h"
#include "hosting/v1/releases.pb.h"

namespace hosting::controlplane {

struct ReleaseManagerOptions {
  // How often releases advance and HAProxy is brought in line with the tasks.
  absl::Duration tick = absl::Milliseconds(250);
  // With no release running, how often HAProxy is brought in line with the tasks.
  absl::Duration idle_route_interval = absl::Seconds(1);
  // This hostd's identity (hosting.controller label).
  std::string controller_id = "test";
  // Bound on pre-pulling a new image on the nodes before the first batch.
  absl::Duration pull_timeout = absl::Minutes(2);
  MachineOptions machine;
  // The least time between two ticks that agents' metrics reports wake (several a second from
  // every agent while a release analyses). Other wakes (a release created or steered, a
  // pre-pull done) tick at once.
  absl::Duration metrics_tick_gap = absl::Milliseconds(100);
  // Whether this hostd may act now (the leader); unset: always. Ticks are skipped otherwise;
  // everything they need is in the store, so a new leader resumes where the last one stopped.
  std::function<bool()> acting;
};

// The Releases domain. The API calls validate and persist; one loop then advances every active
// release through the ReleaseMachine from what Docker, the agents and HAProxy show, persisting
// each change before acting on it (the reconciler applies rollouts, the router applies
// weights), so a restarted hostd resumes every release where it was. The same loop keeps every
// service's HAProxy backend in line with its ready tasks, releases or not.
class ReleaseManager {
 public:
  ReleaseManager(Store& store, DesiredState& state, AgentRegistry& agents,
                 TrafficRouter& router, Reconciler& reconciler,
                 EventLog& events, Clock& clock, ReleaseManagerOptions options);
  ~ReleaseManager();

  void SetImagePuller(ImagePuller puller);
  // The PromQL source for analysis checks (hostd --prometheus); none: such checks have no data.
  void SetMetricsQuery(MetricsQuery* query);
  // How the agents are asked for faster metrics reports while a release analyses a canary
  // (hostd: AgentHub::RequestReportInterval); none: they report at their own pace.
  using ReportPace = std::function<void(absl::Duration interval, absl::Duration valid_for)>;
  void SetReportPace(ReportPace ask);
  // An agent's metrics report was taken in (AgentRegistry::SetMetricsListener): while a
  // release analyses, the loop ticks now, so the judge decides on samples as they arrive.
  void MetricsArrived();
  // The report pace asked for while analysing, and the least time between two ticks.
  static constexpr absl::Duration kAnalysisReportInterval = absl::Milliseconds(100);

  absl::StatusOr<hosting::v1::Release> Start(const hosting::v1::StartReleaseRequest& request);
  absl::StatusOr<hosting::v1::Release> Get(const hosting::v1::GetReleaseRequest& request);
  absl::StatusOr<std::vector<hosting::v1::Release>> List(
      const hosting::v1::ListReleasesRequest& request);
  absl::StatusOr<hosting::v1::Release> Promote(const hosting::v1::PromoteReleaseRequest& request);
  absl::StatusOr<hosting::v1::Release> Pause(const std::string& id);
  absl::StatusOr<hosting::v1::Release> Resume(const std::string& id);
  absl::StatusOr<hosting::v1::Release> Abort(const hosting::v1::AbortReleaseRequest& request);
  absl::StatusOr<hosting::v1::Release> Rollback(
      const hosting::v1::RollbackServiceRequest& request);

  // One pass: route every service, advance every active release. The loop calls it; tests may.
  void Tick();

  void Start();
  void Stop();

  // The release event an event-log entry carries, if it is one of release `id`.
  static bool IsReleaseEvent(const hosting::v1::Event& e, const std::string& id);

 private:
  struct Cluster;  // one tick's view of Docker
  // While a release analyses: asks the agents for reports every kAnalysisReportInterval (each
  // second, for three).
  void PaceReports(const std::vector<hosting::internal::ReleaseRecord>& active)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(tick_mu_);
  absl::StatusOr<hosting::v1::Release> Mutate(
      const std::string& id,
      const std::function<absl::Status(hosting::internal::ReleaseRecord&, std::vector<ReleaseNote>&)>&
          change);
  void Publish(const hosting::internal::ReleaseRecord& r, const std::vector<ReleaseNote>& notes);
  void AdvanceOne(hosting::internal::ReleaseRecord r, const Cluster& cluster)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(tick_mu_);
  bool PrePull(hosting::internal::ReleaseRecord& r, const ServiceRecord& s)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(tick_mu_);
  // The release's PromQL checks for its new revision: the newest answers, never waited for.
  std::map<std::string, absl::StatusOr<double>> QueryChecks(
      const hosting::internal::ReleaseRecord& r);
  // The service's tasks as HAProxy servers: address, traffic port, and readiness (agent probe,
  // or running when no agent watches the node).
  std::vector<RouteTarget> Targets(const ServiceRecord& s, const Cluster& cluster);
  void ExpireWarmRevisions(const std::vector<ServiceRecord>& services)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(tick_mu_);
  // Logs why a tick (key "tick") or one release's step (key: its ID) did nothing, once per
  // distinct problem (ticks run four times a second); OK clears it.
  void TickProblem(const std::string& key, absl::string_view what, const absl::Status& status)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(tick_mu_);
  void Loop();
  // Asks the loop for a tick (any thread): now when urgent, else not sooner than
  // metrics_tick_gap after the last one.
  void Wake(bool urgent = true);

  Store& store_;
  DesiredState& state_;
  AgentRegistry& agents_;
  TrafficRouter& router_;
  Reconciler& reconciler_;
  EventLog& events_;
  Clock& clock_;
  const ReleaseManagerOptions options_;
  const ReleaseMachine machine_;

  absl::Mutex mu_;  // the sources set after construction
  ImagePuller puller_ ABSL_GUARDED_BY(mu_);
  ReportPace pace_ ABSL_GUARDED_BY(mu_);
  // A release is in an analysis (step or background window), as of the last tick.
  std::atomic<bool> analysing_{false};
  absl::Time pace_asked_ ABSL_GUARDED_BY(tick_mu_) = absl::InfinitePast();
  // The PromQL source, queried off the tick's thread.
  std::unique_ptr<AsyncMetricsQuery> query_ ABSL_GUARDED_BY(mu_);
  // One tick at a time (the loop's, or a test's). Release records are written by compare-
  // and-swap, so the API's calls take no lock a tick holds.
  absl::Mutex tick_mu_;
  // Pre-pulls in flight, by release ID.
  std::map<std::string, std::shared_ptr<absl::Notification>> pulls_ ABSL_GUARDED_BY(tick_mu_);
  std::map<std::string, RouteStatus> routes_ ABSL_GUARDED_BY(tick_mu_);
  absl::Time last_full_tick_ ABSL_GUARDED_BY(tick_mu_) = absl::InfinitePast();
  std::map<std::string, std::string> tick_problems_ ABSL_GUARDED_BY(tick_mu_);
  std::vector<std::thread> threads_;
  absl::Notification stop_;
  // Set to tick now rather than at the next period: a release created, steered, or its
  // pre-pull done (urgent_ too), or a metrics report while analysing (after metrics_tick_gap).
  absl::Mutex wake_mu_;
  bool wake_ ABSL_GUARDED_BY(wake_mu_) = false;
  bool urgent_ ABSL_GUARDED_BY(wake_mu_) = false;
  bool started_ = false;
};

}  // namespace hosting::controlplane
