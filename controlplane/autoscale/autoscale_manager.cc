#include "controlplane/autoscale/autoscale_manager.h"

#include <algorithm>
#include <cmath>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_format.h"
#include "common/log.h"
#include "common/proto_time.h"
#include "common/status_macros.h"
#include "controlplane/agents/agent_metrics.h"
#include "controlplane/spec/validation.h"
#include "google/protobuf/util/message_differencer.h"
#include "google/protobuf/util/time_util.h"

namespace hosting::controlplane {
namespace {

using google::protobuf::util::TimeUtil;


std::string MetricLabel(const hosting::v1::MetricTarget& m) {
  if (m.kind() == hosting::v1::METRIC_KIND_PROMQL) return absl::StrCat("promql(", m.promql(), ")");
  return MetricKindShortName(m.kind());
}

std::string Summary(const hosting::v1::AutoscalingPolicy& p) {
  std::string metrics;
  for (const auto& m : p.metrics()) {
    absl::StrAppend(&metrics, metrics.empty() ? "" : ", ", MetricLabel(m), " ", m.target());
  }
  return absl::StrCat(p.min_replicas(), "..", p.max_replicas(), " replicas on ", metrics,
                      "; tolerance ", p.tolerance() * 100, "%, scale-down window ",
                      absl::FormatDuration(FromDuration(p.scale_down_stabilization())), ", every ",
                      absl::FormatDuration(FromDuration(p.evaluation_interval())),
                      p.has_scale_up_metric_window()
                          ? absl::StrCat(", scale-ups also on the last ",
                                         absl::FormatDuration(FromDuration(p.scale_up_metric_window())))
                          : "",
                      p.forecast().enabled()
                          ? (p.forecast().shadow() ? ", forecast in shadow mode" : ", forecast on")
                          : "");
}

absl::Status NoPolicy(const std::string& service) {
  return absl::NotFoundError(absl::StrCat(
      "service '", service, "' has no autoscaling policy (set one: hostctl autoscale set ",
      service, " --min 1 --max 10 --rps 50)"));
}

// Revisions whose tasks take the service's traffic: a warm or preview revision (weight 0)
// does not, nor does a canary before its first weight step.
std::set<int64_t> ServingRevisions(const ServiceRecord& r) {
  std::set<int64_t> out;
  if (!r.rollout.weights().empty()) {
    for (const auto& [rev, w] : r.rollout.weights()) {
      if (w > 0) out.insert(rev);
    }
  } else {
    for (const auto& [rev, n] : r.rollout.replicas()) {
      if (n > 0 && rev != r.rollout.warm_revision()) out.insert(rev);
    }
  }
  if (out.empty()) out.insert(r.revision);
  return out;
}

// The metric window: the evaluation interval (at least 2 s: agents report every 1-2 s).
absl::Duration MetricWindow(const hosting::v1::AutoscalingPolicy& p) {
  return std::clamp(FromDuration(p.evaluation_interval()), absl::Seconds(2), absl::Seconds(60));
}

// The window of the scale-up checks between evaluations (at least 2 s, as above).
absl::Duration UpCheckWindow(const hosting::v1::AutoscalingPolicy& p) {
  return std::clamp(FromDuration(p.scale_up_metric_window()), absl::Seconds(2),
                    absl::Seconds(60));
}

}  // namespace

AutoscaleManager::AutoscaleManager(Store& store, DesiredState& state, ServiceManager& services,
                                   AgentRegistry& agents, EventLog& events, Clock& clock,
                                   AutoscaleManagerOptions options)
    : store_(store), state_(state), services_(services), agents_(agents), events_(events),
      clock_(clock), options_(std::move(options)) {}

AutoscaleManager::~AutoscaleManager() { Stop(); }

void AutoscaleManager::SetMetricsQuery(MetricsQuery* query) {
  absl::MutexLock lock(&mu_);
  query_ = query;
}

void AutoscaleManager::SetLoadBalancer(LoadBalancer* lb) {
  absl::MutexLock lock(&mu_);
  lb_ = lb;
}

void AutoscaleManager::SetImagePuller(ImagePuller puller) {
  absl::MutexLock lock(&mu_);
  puller_ = std::move(puller);
}

void AutoscaleManager::Wake(const std::vector<const ServiceRecord*>& asleep, absl::Time now) {
  LoadBalancer* lb = nullptr;
  {
    absl::MutexLock lock(&mu_);
    lb = lb_;
  }
  absl::StatusOr<std::map<std::string, HeldRequests>> held =
      lb == nullptr ? absl::FailedPreconditionError(
                          "no front door to hold its requests (start hostd with --haproxy)")
                    : lb->Held();
  for (const ServiceRecord* r : asleep) {
    const std::string& name = r->spec.name();
    HeldRequests h;
    if (held.ok()) {
      if (auto it = held->find(name); it != held->end()) h = it->second;
    }
    bool wake = false;
    {
      absl::MutexLock lock(&mu_);
      State& st = states_[name];
      if (!held.ok()) {
        const std::string problem = std::string(held.status().message());
        if (problem != st.held_problem) {
          LogWarning("a service at zero cannot be woken by its requests",
                     {{"service", name}, {"error", held.status().ToString()}});
        }
        st.held_problem = problem;
        continue;
      }
      st.held_problem.clear();
      if (r->spec.replicas() > 0) {
        st.held_seen = h.total;  // running: requests held now are not a wake-up
        continue;
      }
      // The count restarts once its entry expired (10 minutes without a held request).
      wake = h.waiting > 0 || h.total > st.held_seen;
      st.held_seen = h.total;
    }
    if (!wake) continue;
    AutoscaleInput in;
    in.now = now;
    in.current_replicas = 0;
    AutoscaleResult res;
    res.desired = std::max(1, r->autoscaling->min_replicas());
    res.reason = absl::StrCat("wake from zero 0 -> ", res.desired, ": ", h.waiting,
                              " request(s) held at HAProxy for '", name, "'");
    Apply(*r, in, res, 0);
    // A whole scale-down window before it may sleep again, whatever the window before held.
    absl::MutexLock lock(&mu_);
    states_[name].autoscaler.Seed(now, res.desired);
  }
}

absl::StatusOr<hosting::v1::AutoscalingPolicy> AutoscaleManager::SetPolicy(
    const hosting::v1::SetPolicyRequest& request) {
  if (!request.has_policy()) return InvalidArgumentWithViolations({{"policy", "required"}});
  std::vector<FieldViolation> v = ValidateServiceName(request.policy().service(), "policy.service");
  std::vector<FieldViolation> pv = ValidateAutoscalingPolicy(request.policy(), "policy");
  v.insert(v.end(), pv.begin(), pv.end());
  RETURN_IF_ERROR(InvalidArgumentWithViolations(v));
  hosting::v1::AutoscalingPolicy policy = request.policy();
  ApplyAutoscalingDefaults(policy);
  const std::string& name = policy.service();
  auto set = [&](ServiceRecord& record, Mutation& m) -> absl::Status {
    m.changes_what_runs = false;
    if (record.autoscaling.has_value() &&
        google::protobuf::util::MessageDifferencer::Equals(*record.autoscaling, policy)) {
      m.write = false;
      return absl::OkStatus();
    }
    m.Publish("autoscale.policy_set",
              absl::StrCat(record.autoscaling.has_value() ? "replaced" : "set",
                           " the autoscaling policy of '", name, "': ", Summary(policy)),
              {{"min", absl::StrCat(policy.min_replicas())},
               {"max", absl::StrCat(policy.max_replicas())}});
    record.autoscaling = policy;
    return absl::OkStatus();
  };
  RETURN_IF_ERROR(state_.Mutate(name, set).status());
  return policy;
}

absl::StatusOr<hosting::v1::AutoscalingPolicy> AutoscaleManager::GetPolicy(
    const std::string& service) {
  RETURN_IF_ERROR(InvalidArgumentWithViolations(ValidateServiceName(service, "service")));
  ASSIGN_OR_RETURN(ServiceRecord record, store_.GetService(service));
  if (!record.autoscaling.has_value()) return NoPolicy(service);
  return *record.autoscaling;
}

absl::Status AutoscaleManager::DeletePolicy(const std::string& service) {
  RETURN_IF_ERROR(InvalidArgumentWithViolations(ValidateServiceName(service, "service")));
  auto remove = [&](ServiceRecord& record, Mutation& m) -> absl::Status {
    if (!record.autoscaling.has_value()) return NoPolicy(service);
    m.changes_what_runs = false;
    record.autoscaling.reset();
    m.Publish("autoscale.policy_deleted",
              absl::StrCat("deleted the autoscaling policy of '", service, "'; it stays at ",
                           record.spec.replicas(), " replicas"));
    return absl::OkStatus();
  };
  RETURN_IF_ERROR(state_.Mutate(service, remove).status());
  absl::MutexLock lock(&mu_);
  states_.erase(service);
  return absl::OkStatus();
}

absl::StatusOr<hosting::v1::AutoscalingStatus> AutoscaleManager::GetStatus(
    const std::string& service) {
  ASSIGN_OR_RETURN(hosting::v1::AutoscalingPolicy policy, GetPolicy(service));
  absl::MutexLock lock(&mu_);
  auto it = states_.find(service);
  if (it == states_.end() || it->second.last_evaluated == absl::InfinitePast()) {
    hosting::v1::AutoscalingStatus s;
    s.set_service(service);
    s.set_message(absl::StrCat("not evaluated yet (every ",
                               absl::FormatDuration(FromDuration(policy.evaluation_interval())), ")"));
    return s;
  }
  hosting::v1::AutoscalingStatus s = it->second.status;
  for (auto d = it->second.history.rbegin(); d != it->second.history.rend(); ++d) {
    *s.add_history() = *d;
  }
  return s;
}

std::vector<hosting::v1::AutoscalingStatus> AutoscaleManager::Statuses() {
  absl::MutexLock lock(&mu_);
  std::vector<hosting::v1::AutoscalingStatus> out;
  for (const auto& [name, st] : states_) {
    if (st.last_evaluated != absl::InfinitePast()) out.push_back(st.status);
  }
  return out;
}

std::map<std::pair<std::string, std::string>, double> AutoscaleManager::DecisionCounts() {
  absl::MutexLock lock(&mu_);
  return decisions_;
}

void AutoscaleManager::Record(State& st, const hosting::v1::ScalingDecision& d) {
  st.history.push_back(d);
  while (static_cast<int>(st.history.size()) > options_.history) st.history.pop_front();
  *st.status.mutable_last_decision() = d;
}

AutoscaleInput AutoscaleManager::Observe(const ServiceRecord& r, MetricsQuery* query,
                                         absl::Time now, absl::Duration window) {
  const hosting::v1::AutoscalingPolicy& policy = *r.autoscaling;
  const std::string& name = r.spec.name();
  AutoscaleInput in;
  in.now = now;
  in.current_replicas = r.spec.replicas();
  const std::set<int64_t> serving = ServingRevisions(r);
  const std::set<std::string> draining(r.rollout.drain_tasks().begin(),
                                       r.rollout.drain_tasks().end());
  const double cpu_limit = r.spec.resources().cpu_limit() > 0 ? r.spec.resources().cpu_limit() : 1;
  for (const auto& t : agents_.TaskMetrics(name, window)) {
    if (!serving.contains(t.revision) || draining.contains(t.task_id)) continue;
    TaskSample s;
    s.id = t.task_id;
    // Healthy tasks take traffic. Their rates cover the same window (a task younger than it
    // counts as idle before it started), so they sum to the service's rate over the window
    // even while the load is being redistributed onto new tasks.
    s.ready = t.health == hosting::v1::TASK_HEALTH_HEALTHY;
    // A lost node's task (health unknown, no rates) may well be serving: it counts as a ready
    // task without data (the target on a scale-down, 0 on a scale-up), so the size never
    // shrinks on the strength of the nodes that still report.
    if (t.health == hosting::v1::TASK_HEALTH_UNSPECIFIED) s.ready = true;
    s.rps = t.rps;
    s.in_flight = t.in_flight;
    if (!std::isnan(t.cpu_cores)) s.cpu_percent = t.cpu_cores / cpu_limit * 100;
    const int64_t limit = t.memory_limit_bytes > 0 ? t.memory_limit_bytes
                                                   : r.spec.resources().memory_limit_bytes();
    if (limit > 0 && t.memory_bytes > 0) {
      s.memory_percent = static_cast<double>(t.memory_bytes) / static_cast<double>(limit) * 100;
    }
    in.tasks.push_back(std::move(s));
  }
  double p95 = NAN;
  for (const auto& [rev, a] : agents_.Aggregate(name)) {
    if (serving.contains(rev) && !std::isnan(a.p95)) p95 = std::isnan(p95) ? a.p95 : std::max(p95, a.p95);
  }
  in.p95_ms = p95 * 1000;
  for (const auto& m : policy.metrics()) {
    if (m.kind() != hosting::v1::METRIC_KIND_PROMQL || in.promql.contains(m.promql())) continue;
    if (window < MetricWindow(policy)) continue;  // a scale-up check asks Prometheus nothing
    in.promql.insert_or_assign(
        m.promql(), query == nullptr
                        ? absl::StatusOr<double>(absl::FailedPreconditionError(
                              "no PromQL source: start hostd with --prometheus"))
                        : query->Instant(SubstituteQuery(m.promql(), name, r.revision)));
  }
  return in;
}

void AutoscaleManager::Tick() {
  absl::StatusOr<std::vector<ServiceRecord>> services = store_.ListServices();
  if (!services.ok()) {
    LogWarning("autoscaler cannot read services", {{"error", services.status().ToString()}});
    return;
  }
  const absl::Time now = clock_.Now();
  std::vector<std::pair<const ServiceRecord*, Autoscaler::Mode>> due;
  std::vector<const ServiceRecord*> scale_to_zero;
  std::vector<std::pair<std::string, std::string>> pulls;  // service, image
  ImagePuller puller;
  MetricsQuery* query = nullptr;
  {
    absl::MutexLock lock(&mu_);
    query = query_;
    std::set<std::string> with_policy;
    for (const auto& r : *services) {
      if (!r.autoscaling.has_value()) continue;
      const std::string& name = r.spec.name();
      with_policy.insert(name);
      State& st = states_[name];
      if (!google::protobuf::util::MessageDifferencer::Equals(st.policy, *r.autoscaling)) {
        // A new policy starts from a clean history: nothing recommended under the old one holds.
        st.autoscaler.Reset();
        st.autoscaler.Seed(now, r.spec.replicas());
        st.policy = *r.autoscaling;
        st.last_evaluated = absl::InfinitePast();
        if (!st.startup_measured) st.task_startup = options_.default_task_startup;
      }
      // A scale-up is measured until its tasks are all ready: the forecast's horizon.
      if (st.scale_up_at != absl::InfinitePast()) {
        int ready = 0;
        const std::set<int64_t> serving = ServingRevisions(r);
        for (const auto& t : agents_.TaskMetrics(name, absl::Seconds(1))) {
          if (serving.contains(t.revision) && t.health == hosting::v1::TASK_HEALTH_HEALTHY) ++ready;
        }
        if (ready >= st.scale_up_to) {
          const absl::Duration took = now - st.scale_up_at;
          st.task_startup = st.startup_measured ? (st.task_startup + took) / 2 : took;
          st.startup_measured = true;
          st.scale_up_at = absl::InfinitePast();
        } else if (now - st.scale_up_at > absl::Minutes(5)) {
          st.scale_up_at = absl::InfinitePast();  // never all ready: not a start-up time
        }
      }
      if (now - st.last_evaluated >= FromDuration(r.autoscaling->evaluation_interval())) {
        due.emplace_back(&r, Autoscaler::Mode::kFull);
      } else if (UpCheckWindow(*r.autoscaling) < MetricWindow(*r.autoscaling) &&
                 now - st.last_up_check >= options_.tick) {
        st.last_up_check = now;
        due.emplace_back(&r, Autoscaler::Mode::kScaleUpOnly);
      }
    }
    for (auto it = states_.begin(); it != states_.end();) {
      it = with_policy.contains(it->first) ? std::next(it) : states_.erase(it);
    }
    for (const auto& r : *services) {
      if (!r.autoscaling.has_value()) continue;
      if (r.autoscaling->scale_to_zero()) scale_to_zero.push_back(&r);
      State& st = states_[r.spec.name()];
      if (puller_ && st.pulled_image != r.spec.image()) {
        st.pulled_image = r.spec.image();
        pulls.emplace_back(r.spec.name(), r.spec.image());
        ++pulls_in_flight_;
      }
    }
    puller = puller_;
    // Counts of services that no longer autoscale end with them (their series stop).
    for (auto it = decisions_.begin(); it != decisions_.end();) {
      it = with_policy.contains(it->first.first) ? std::next(it) : decisions_.erase(it);
    }
  }

  for (const auto& [r, mode] : due) {
    const hosting::v1::AutoscalingPolicy& policy = *r->autoscaling;
    const std::string& name = r->spec.name();
    if (mode == Autoscaler::Mode::kScaleUpOnly) {
      AutoscaleInput in = Observe(*r, nullptr, now, UpCheckWindow(policy));
      int ready = 0;
      for (const auto& t : in.tasks) ready += t.ready ? 1 : 0;
      AutoscaleResult res;
      {
        absl::MutexLock lock(&mu_);
        State& st = states_[name];
        in.task_startup = st.task_startup;
        res = st.autoscaler.Evaluate(policy, in, Autoscaler::Mode::kScaleUpOnly);
        if (res.desired <= in.current_replicas) continue;
        res.reason = absl::StrCat(res.reason, " (the last ",
                                  absl::FormatDuration(UpCheckWindow(policy)), " of metrics)");
        st.status.set_desired_replicas(res.desired);
        st.status.set_message(res.reason);
      }
      Apply(*r, in, res, ready);
      continue;
    }
    // The input, read without the lock (PromQL may be slow).
    AutoscaleInput in = Observe(*r, query, now, MetricWindow(policy));
    AutoscaleResult res;
    int ready = 0;
    for (const auto& t : in.tasks) ready += t.ready ? 1 : 0;
    {
      absl::MutexLock lock(&mu_);
      State& st = states_[name];
      in.task_startup = st.task_startup;
      res = st.autoscaler.Evaluate(policy, in);
      st.last_evaluated = now;
      hosting::v1::AutoscalingStatus& s = st.status;
      s.Clear();
      s.set_service(name);
      s.set_current_replicas(in.current_replicas);
      s.set_desired_replicas(res.desired);
      s.set_ready_replicas(ready);
      for (const auto& rec : res.recommendations) *s.add_recommendations() = rec;
      s.set_message(res.message.empty() ? res.reason : absl::StrCat(res.reason, ". ", res.message));
      *s.mutable_evaluated_at() = ToTimestamp(now);
      if (!std::isnan(res.forecast_rps)) {
        s.set_forecast_requests_per_second(res.forecast_rps);
        *s.mutable_forecast_horizon() = ToDuration(res.forecast_horizon);
      }
      *s.mutable_task_startup() = ToDuration(st.task_startup);
      s.set_release_id(r->rollout.release_id());
      if (!st.history.empty()) *s.mutable_last_decision() = st.history.back();

      if (res.shadow_desired.has_value() && *res.shadow_desired != st.last_shadow) {
        hosting::v1::ScalingDecision d;
        *d.mutable_time() = ToTimestamp(now);
        d.set_from_replicas(in.current_replicas);
        d.set_to_replicas(*res.shadow_desired);
        d.set_shadow(true);
        d.set_forecast(true);
        d.set_reason(absl::StrFormat(
            "forecast (shadow mode) would scale to %d: %.4g rps expected in %s", *res.shadow_desired,
            res.forecast_rps, absl::FormatDuration(res.forecast_horizon)));
        Record(st, d);
        decisions_[{name, "shadow"}] += 1;
        events_.Publish("autoscale.shadow", name, r->revision, d.reason(),
                        {{"from", absl::StrCat(in.current_replicas)},
                         {"to", absl::StrCat(*res.shadow_desired)}});
      }
      st.last_shadow = res.shadow_desired.value_or(0);
    }
    if (res.desired != in.current_replicas) Apply(*r, in, res, ready);
  }
  if (!scale_to_zero.empty()) Wake(scale_to_zero, now);
  for (const auto& [name, image] : pulls) {
    puller(image, [this, name = name, image = image](std::map<std::string, std::string> results) {
      std::vector<std::string> failed;
      for (const auto& [node, e] : results) {
        if (!e.empty()) failed.push_back(absl::StrCat(node.substr(0, 12), ": ", e));
      }
      if (!failed.empty()) {
        LogWarning("pre-pull for scale-ups failed on some nodes (Swarm pulls it itself)",
                   {{"service", name}, {"image", image}, {"nodes", absl::StrJoin(failed, "; ")}});
      }
      absl::MutexLock lock(&mu_);
      --pulls_in_flight_;
    });
  }
}

void AutoscaleManager::Apply(const ServiceRecord& r, const AutoscaleInput& in,
                             const AutoscaleResult& res, int ready) {
  const std::string& name = r.spec.name();
  const absl::Time now = in.now;
  std::map<std::string, std::string> attrs = {
      {"direction", res.desired > in.current_replicas ? "up" : "down"},
      {"forecast", res.forecast_driven ? "true" : "false"},
      {"ready", absl::StrCat(ready)}};
  for (const auto& rec : res.recommendations) {
    if (!rec.missing()) attrs[MetricLabel(rec.metric())] = absl::StrFormat("%.4g", rec.value());
  }
  if (!r.rollout.release_id().empty()) attrs["release"] = r.rollout.release_id();
  const std::string message = absl::StrCat(
      "autoscaler: ", res.reason,
      r.rollout.release_id().empty()
          ? ""
          : absl::StrCat(" (split over the revisions of release ", r.rollout.release_id(), ")"));
  absl::StatusOr<ServiceRecord> resized = services_.Resize(
      name, in.current_replicas, res.desired, "autoscale.scaled", message, std::move(attrs));
  absl::MutexLock lock(&mu_);
  auto it = states_.find(name);
  if (it == states_.end()) return;
  State& st = it->second;
  if (!resized.ok()) {
    // A concurrent write (a release step, an apply) won: evaluate again at the next tick.
    st.last_evaluated = absl::InfinitePast();
    st.status.set_message(absl::StrCat(st.status.message(), ". Not applied: ",
                                       resized.status().message(), "; retrying"));
    LogWarning("autoscale decision not applied",
               {{"service", name}, {"error", resized.status().ToString()}});
    return;
  }
  st.autoscaler.Scaled(now, in.current_replicas, res.desired);
  hosting::v1::ScalingDecision d;
  *d.mutable_time() = ToTimestamp(now);
  d.set_from_replicas(in.current_replicas);
  d.set_to_replicas(res.desired);
  d.set_reason(res.reason);
  d.set_forecast(res.forecast_driven);
  Record(st, d);
  decisions_[{name, res.desired > in.current_replicas ? "up" : "down"}] += 1;
  if (res.desired > in.current_replicas) {
    st.scale_up_at = now;
    st.scale_up_to = res.desired;
  } else {
    st.scale_up_at = absl::InfinitePast();
  }
}

void AutoscaleManager::Loop() {
  while (!stop_.WaitForNotificationWithTimeout(options_.tick)) {
    if (!options_.acting || options_.acting()) Tick();
  }
}

void AutoscaleManager::Start() {
  if (started_) return;
  started_ = true;
  thread_ = std::thread([this] { Loop(); });
}

void AutoscaleManager::Stop() {
  if (!started_) return;
  if (!stop_.HasBeenNotified()) stop_.Notify();
  if (thread_.joinable()) thread_.join();
  // Pre-pulls still out: their callbacks touch this manager.
  absl::MutexLock lock(&mu_);
  mu_.Await(absl::Condition(
      +[](int* n) { return *n == 0; }, &pulls_in_flight_));
}

std::vector<prometheus::MetricFamily> AutoscaleMetricsCollector::Collect() const {
  auto decisions = GaugeFamily("hostd_autoscale_decisions_total",
                               "Scaling decisions by direction (up, down, shadow).");
  decisions.type = prometheus::MetricType::Counter;
  auto desired = GaugeFamily("hostd_autoscale_desired_replicas",
                             "Replicas the autoscaler decided at its last evaluation.");
  auto current = GaugeFamily("hostd_autoscale_current_replicas",
                             "Replicas of the service when last evaluated.");
  auto ready = GaugeFamily("hostd_autoscale_ready_replicas",
                           "Serving tasks ready when last evaluated.");
  auto value = GaugeFamily("hostd_autoscale_metric_value", "A policy metric's current value.");
  auto target = GaugeFamily("hostd_autoscale_metric_target", "A policy metric's target.");
  auto recommended = GaugeFamily("hostd_autoscale_metric_recommended_replicas",
                                 "Replicas a policy metric recommends.");
  auto forecast = GaugeFamily("hostd_autoscale_forecast_requests_per_second",
                              "The forecast request rate at the forecast horizon.");
  for (const auto& [key, n] : manager_.DecisionCounts()) {
    AddSample(decisions, {{"service", key.first}, {"direction", key.second}}, n);
  }
  for (const auto& s : manager_.Statuses()) {
    const std::string& svc = s.service();
    AddSample(desired, {{"service", svc}}, s.desired_replicas());
    AddSample(current, {{"service", svc}}, s.current_replicas());
    AddSample(ready, {{"service", svc}}, s.ready_replicas());
    if (s.has_forecast_horizon()) {
      AddSample(forecast, {{"service", svc}}, s.forecast_requests_per_second());
    }
    for (const auto& r : s.recommendations()) {
      std::vector<prometheus::ClientMetric::Label> l = {{"service", svc},
                                                        {"metric", MetricLabel(r.metric())}};
      AddSample(target, l, r.metric().target());
      if (r.missing()) continue;
      AddSample(value, l, r.value());
      AddSample(recommended, l, r.recommended_replicas());
    }
  }
  return {decisions, desired, current, ready, value, target, recommended, forecast};
}

}  // namespace hosting::controlplane
