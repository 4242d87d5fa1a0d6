#pragma once

#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "common/clock.h"
#include "controlplane/agents/agent_registry.h"
#include "controlplane/autoscale/autoscaler.h"
#include "controlplane/traffic/load_balancer.h"
#include "controlplane/store/event_log.h"
#include "controlplane/query/promql.h"
#include "controlplane/service/image_puller.h"
#include "controlplane/service/service_manager.h"
#include "controlplane/store/store.h"
#include "hosting/v1/autoscaling.pb.h"
#include "prometheus/collectable.h"

namespace hosting::controlplane {

struct AutoscaleManagerOptions {
  // How often the loop looks for policies due an evaluation (each has its own interval).
  absl::Duration tick = absl::Seconds(1);
  // Decisions kept per service for GetStatus.
  int history = 20;
  // The forecast's horizon before a scale-up has been measured.
  absl::Duration default_task_startup = absl::Seconds(15);
  // Whether this hostd may act now (the leader); unset: always. Ticks are skipped otherwise;
  // everything they need is in the store, so a new leader resumes where the last one stopped.
  std::function<bool()> acting;
};

// The Autoscaling domain: policies (stored with their service), and one loop that evaluates
// each policy at its interval from the agents' per-task metrics (and PromQL), and resizes the
// service through the ServiceManager. A running release splits the new size over its
// revisions (ReleaseMachine::FollowTarget); the autoscaler counts every serving task of every
// revision, so the two work on one number and do not fight. Every decision is an event.
class AutoscaleManager {
 public:
  AutoscaleManager(Store& store, DesiredState& state, ServiceManager& services,
                   AgentRegistry& agents,
                   EventLog& events, Clock& clock, AutoscaleManagerOptions options = {});
  ~AutoscaleManager();

  // The PromQL source for PROMQL metrics (hostd --prometheus); none: such metrics have no data.
  void SetMetricsQuery(MetricsQuery* query);
  // The front door (hostd --haproxy): the requests it holds wake a service at zero. None: a
  // service that scales to zero stays there until scaled by hand.
  void SetLoadBalancer(LoadBalancer* lb);
  // Pulls each autoscaled service's image on every node ahead of its scale-ups (once per
  // image), so that a new task starts without a pull.
  void SetImagePuller(ImagePuller puller);

  absl::StatusOr<hosting::v1::AutoscalingPolicy> SetPolicy(
      const hosting::v1::SetPolicyRequest& request);
  absl::StatusOr<hosting::v1::AutoscalingPolicy> GetPolicy(const std::string& service);
  absl::Status DeletePolicy(const std::string& service);
  absl::StatusOr<hosting::v1::AutoscalingStatus> GetStatus(const std::string& service);

  // Evaluates every policy that is due. The loop calls it; tests may.
  void Tick();
  void Start();
  void Stop();

  // Latest statuses (for /metrics).
  std::vector<hosting::v1::AutoscalingStatus> Statuses();
  // Decisions made, by service and direction ("up", "down", "shadow").
  std::map<std::pair<std::string, std::string>, double> DecisionCounts();

 private:
  struct State {
    Autoscaler autoscaler;
    hosting::v1::AutoscalingPolicy policy;  // as last evaluated (a change resets the state)
    absl::Time last_evaluated = absl::InfinitePast();
    // The last scale-up check on the short window between evaluations.
    absl::Time last_up_check = absl::InfinitePast();
    hosting::v1::AutoscalingStatus status;
    std::deque<hosting::v1::ScalingDecision> history;
    // A scale-up whose tasks are not all ready yet: since when, and to how many.
    absl::Time scale_up_at = absl::InfinitePast();
    int32_t scale_up_to = 0;
    absl::Duration task_startup;
    bool startup_measured = false;
    int32_t last_shadow = 0;
    // HAProxy's count of requests held for the service when last read (scale to zero).
    int64_t held_seen = 0;
    std::string held_problem;
    // The image last pre-pulled for the service's scale-ups.
    std::string pulled_image;
  };
  // Services that scale to zero and run no task: one a request is held for at HAProxy is
  // woken (0 -> 1).
  void Wake(const std::vector<const ServiceRecord*>& asleep, absl::Time now);
  // What the autoscaler sees of a service now: its serving tasks' metrics over `window`, p95
  // and (with a `query`) PromQL.
  AutoscaleInput Observe(const ServiceRecord& record, MetricsQuery* query, absl::Time now,
                         absl::Duration window);
  // Resizes the service to the decision and records it (or the lost race, to retry).
  void Apply(const ServiceRecord& record, const AutoscaleInput& in, const AutoscaleResult& res,
             int ready);
  void Record(State& st, const hosting::v1::ScalingDecision& d) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Loop();

  Store& store_;
  DesiredState& state_;
  ServiceManager& services_;
  AgentRegistry& agents_;
  EventLog& events_;
  Clock& clock_;
  const AutoscaleManagerOptions options_;

  absl::Mutex mu_;
  MetricsQuery* query_ ABSL_GUARDED_BY(mu_) = nullptr;
  LoadBalancer* lb_ ABSL_GUARDED_BY(mu_) = nullptr;
  ImagePuller puller_ ABSL_GUARDED_BY(mu_);
  // Pre-pulls whose answer has not come yet: Stop waits for them.
  int pulls_in_flight_ ABSL_GUARDED_BY(mu_) = 0;
  std::map<std::string, State> states_ ABSL_GUARDED_BY(mu_);
  std::map<std::pair<std::string, std::string>, double> decisions_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;
  absl::Notification stop_;
  bool started_ = false;
};

// hostd_autoscale_* on /metrics: decisions, desired vs current and ready replicas, and each
// metric's value, target and recommendation.
class AutoscaleMetricsCollector : public prometheus::Collectable {
 public:
  explicit AutoscaleMetricsCollector(AutoscaleManager& manager) : manager_(manager) {}
  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  AutoscaleManager& manager_;
};

}  // namespace hosting::controlplane
