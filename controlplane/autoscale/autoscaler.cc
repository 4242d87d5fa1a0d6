#include "controlplane/autoscale/autoscaler.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/proto_time.h"
#include "google/protobuf/util/time_util.h"

namespace hosting::controlplane {
namespace {

using google::protobuf::util::TimeUtil;
using hosting::v1::MetricKind;


int32_t CeilCount(double x) { return static_cast<int32_t>(std::ceil(x - 1e-9)); }

// One metric's recommendation.
struct Outcome {
  bool valid = false;
  double value = NAN;
  int32_t replicas = 0;
  std::string note;  // missing data / not-ready tasks, or why there is no recommendation
};

double TaskSample::*FieldOf(MetricKind kind) {
  switch (kind) {
    case hosting::v1::METRIC_KIND_CPU_UTILIZATION:
      return &TaskSample::cpu_percent;
    case hosting::v1::METRIC_KIND_MEMORY_UTILIZATION:
      return &TaskSample::memory_percent;
    case hosting::v1::METRIC_KIND_REQUESTS_PER_SECOND:
      return &TaskSample::rps;
    case hosting::v1::METRIC_KIND_IN_FLIGHT_REQUESTS:
      return &TaskSample::in_flight;
    default:
      return nullptr;
  }
}

// A per-task metric, as the HPA's replica calculator does it: the mean over ready tasks with
// data; tasks without data count as the target on a scale-down and 0 on a scale-up, not-ready
// tasks as 0 on a scale-up; a move the conservative view reverses or shrinks into the
// tolerance does not happen.
Outcome PerTask(const std::vector<TaskSample>& tasks, double TaskSample::*field, double target,
                int32_t current, double tolerance) {
  Outcome o;
  double sum = 0;
  int with_data = 0, missing = 0, unready = 0;
  for (const auto& t : tasks) {
    if (!t.ready) {
      ++unready;
      continue;
    }
    const double v = t.*field;
    if (std::isnan(v)) {
      ++missing;
    } else {
      sum += v;
      ++with_data;
    }
  }
  if (with_data == 0) {
    o.note = tasks.empty() ? "no tasks report"
                           : absl::StrCat("no ready task reports it (", unready, " not ready, ",
                                          missing, " without data)");
    return o;
  }
  o.valid = true;
  o.value = sum / with_data;
  const double usage = o.value / target;
  const bool up_with_unready = unready > 0 && usage > 1;
  if (!up_with_unready && missing == 0) {
    o.replicas = std::abs(1 - usage) <= tolerance ? current : CeilCount(usage * with_data);
    return o;
  }
  double total = sum;
  int count = with_data;
  std::vector<std::string> notes;
  if (missing > 0 && usage != 1) {
    count += missing;
    if (usage < 1) total += missing * target;
    notes.push_back(absl::StrCat(missing, " ready task(s) without data counted at ",
                                 usage < 1 ? "the target (scale-down)" : "0 (scale-up)"));
  }
  if (up_with_unready) {
    count += unready;
    notes.push_back(absl::StrCat(unready, " not-ready task(s) counted at 0 (scale-up)"));
  }
  o.note = absl::StrJoin(notes, "; ");
  const double conservative = total / count / target;
  if (std::abs(1 - conservative) <= tolerance || (usage < 1 && conservative > 1) ||
      (usage > 1 && conservative < 1)) {
    o.replicas = current;
    return o;
  }
  o.replicas = CeilCount(conservative * count);
  if ((conservative < 1 && o.replicas > current) || (conservative > 1 && o.replicas < current)) {
    o.replicas = current;
  }
  return o;
}

// A service-wide metric (p95 latency, PromQL): ready tasks x value / target.
Outcome Service(double value, const std::string& missing_why, double target, int ready,
                int32_t current, double tolerance) {
  Outcome o;
  if (std::isnan(value)) {
    o.note = missing_why;
    return o;
  }
  if (ready == 0) {
    o.note = "no ready task";
    return o;
  }
  o.valid = true;
  o.value = value;
  const double usage = value / target;
  if (std::abs(1 - usage) <= tolerance) {
    o.replicas = current;
    return o;
  }
  o.replicas = CeilCount(usage * ready);
  if ((usage < 1 && o.replicas > current) || (usage > 1 && o.replicas < current)) {
    o.replicas = current;
  }
  return o;
}

std::string Describe(const hosting::v1::MetricTarget& m) {
  if (m.kind() == hosting::v1::METRIC_KIND_PROMQL) {
    return absl::StrCat("promql(", m.promql(), ")");
  }
  return MetricKindShortName(m.kind());
}

int32_t Clamp(int32_t x, const hosting::v1::AutoscalingPolicy& p) {
  if (x == 0 && p.scale_to_zero()) return 0;  // idle, or asleep: zero is allowed
  return std::clamp(x, p.min_replicas(), std::max(p.min_replicas(), p.max_replicas()));
}

}  // namespace

const char* MetricKindShortName(MetricKind kind) {
  switch (kind) {
    case hosting::v1::METRIC_KIND_CPU_UTILIZATION:
      return "cpu";
    case hosting::v1::METRIC_KIND_MEMORY_UTILIZATION:
      return "memory";
    case hosting::v1::METRIC_KIND_REQUESTS_PER_SECOND:
      return "rps";
    case hosting::v1::METRIC_KIND_IN_FLIGHT_REQUESTS:
      return "inflight";
    case hosting::v1::METRIC_KIND_LATENCY_P95_MS:
      return "p95";
    case hosting::v1::METRIC_KIND_PROMQL:
      return "promql";
    default:
      return "unspecified";
  }
}

void HoltForecast::Add(absl::Time t, double value) {
  if (std::isnan(value)) return;
  if (samples_ == 0) {
    level_ = value;
    trend_ = 0;
  } else {
    const double dt = absl::ToDoubleSeconds(t - last_);
    if (dt <= 0) return;
    const double predicted = level_ + trend_ * dt;
    const double level = alpha_ * value + (1 - alpha_) * predicted;
    const double slope = (level - level_) / dt;
    trend_ = samples_ == 1 ? slope : beta_ * slope + (1 - beta_) * trend_;
    level_ = level;
  }
  last_ = t;
  ++samples_;
}

double HoltForecast::Forecast(absl::Duration horizon) const {
  if (samples_ < 2) return NAN;
  return std::max(0.0, level_ + trend_ * absl::ToDoubleSeconds(horizon));
}

void Autoscaler::Scaled(absl::Time t, int32_t from, int32_t to) {
  if (from != to) changes_.push_back({t, to - from});
}

void Autoscaler::Reset() {
  recommendations_.clear();
  changes_.clear();
  seed_.reset();
}

int32_t Autoscaler::Stabilize(const hosting::v1::AutoscalingPolicy& policy, absl::Time now,
                              int32_t current, int32_t recommendation, std::string& why) {
  const absl::Duration up_window = FromDuration(policy.scale_up_stabilization());
  const absl::Duration down_window = FromDuration(policy.scale_down_stabilization());
  recommendations_.emplace_back(now, recommendation);
  const absl::Time horizon = now - std::max(up_window, down_window);
  while (!recommendations_.empty() && recommendations_.front().first < horizon) {
    recommendations_.pop_front();
  }
  int32_t up = recommendation, down = recommendation;
  for (const auto& [t, r] : recommendations_) {
    if (t > now - up_window) up = std::min(up, r);
    if (t > now - down_window) down = std::max(down, r);
  }
  if (seed_.has_value() && seed_->first > now - down_window) down = std::max(down, seed_->second);
  int32_t out = current;
  if (out < up) out = up;
  if (out > down) out = down;
  if (recommendation < current && out > recommendation) {
    why = absl::StrCat("scale-down to ", recommendation, " held by the ",
                       absl::FormatDuration(down_window), " stabilization window (its highest ",
                       "recommendation is ", down, ")");
  } else if (recommendation > current && out < recommendation) {
    why = absl::StrCat("scale-up to ", recommendation, " held by the ",
                       absl::FormatDuration(up_window), " stabilization window (its lowest ",
                       "recommendation is ", up, ")");
  }
  return out;
}

int32_t Autoscaler::LimitRate(const hosting::v1::AutoscalingPolicy& policy, absl::Time now,
                              int32_t current, int32_t desired, std::string& why) const {
  if (desired == current) return desired;
  const bool up = desired > current;
  const hosting::v1::RateLimit& rate = up ? policy.scale_up_rate() : policy.scale_down_rate();
  if (rate.tasks() <= 0 && rate.percent() <= 0) return desired;
  const absl::Duration period = FromDuration(rate.period());
  // The size at the start of the period: what this direction already moved within it undone.
  int32_t moved = 0;
  for (const auto& c : changes_) {
    if (c.t > now - period && (up ? c.delta > 0 : c.delta < 0)) moved += std::abs(c.delta);
  }
  const int32_t start = up ? current - moved : current + moved;
  std::vector<int32_t> limits;
  if (rate.tasks() > 0) limits.push_back(up ? start + rate.tasks() : start - rate.tasks());
  if (rate.percent() > 0) {
    limits.push_back(up ? CeilCount(start * (1 + rate.percent() / 100.0))
                        : static_cast<int32_t>(start * (1 - rate.percent() / 100.0)));
  }
  // "max" selects the policy allowing the larger change.
  const bool permissive = rate.select() != "min";
  int32_t limit = limits.front();
  for (int32_t l : limits) {
    limit = (up == permissive) ? std::max(limit, l) : std::min(limit, l);
  }
  const std::string rule = absl::StrCat(
      up ? "+" : "-",
      rate.tasks() > 0 ? absl::StrCat(rate.tasks(), " tasks") : std::string(),
      rate.tasks() > 0 && rate.percent() > 0 ? (permissive ? " or " : " and ") : "",
      rate.percent() > 0 ? absl::StrCat(rate.percent(), "%") : std::string(), " per ",
      absl::FormatDuration(period));
  if (up) {
    limit = std::max(limit, current);
    if (desired > limit) {
      why = absl::StrCat("scale-up to ", desired, " limited to ", limit, " by the rate policy (",
                         rule, ")");
      return limit;
    }
  } else {
    limit = std::min(limit, current);
    if (desired < limit) {
      why = absl::StrCat("scale-down to ", desired, " limited to ", limit,
                         " by the rate policy (", rule, ")");
      return limit;
    }
  }
  return desired;
}

AutoscaleResult Autoscaler::Evaluate(const hosting::v1::AutoscalingPolicy& policy,
                                     const AutoscaleInput& in, Mode mode) {
  const bool up_only = mode == Mode::kScaleUpOnly;
  AutoscaleResult res;
  const int32_t current = in.current_replicas;
  const double tolerance = policy.tolerance() > 0 ? policy.tolerance() : 0.1;
  int ready = 0;
  double total_rps = 0;
  bool have_rps = false;
  for (const auto& t : in.tasks) {
    if (!t.ready) continue;
    ++ready;
    if (!std::isnan(t.rps)) {
      total_rps += t.rps;
      have_rps = true;
    }
  }
  if (have_rps && !up_only) forecast_.Add(in.now, total_rps);

  int32_t recommendation = -1;
  std::vector<std::string> missing, notes, drivers;
  double rps_target = 0;
  for (const auto& m : policy.metrics()) {
    Outcome o;
    if (double TaskSample::*field = FieldOf(m.kind()); field != nullptr) {
      o = PerTask(in.tasks, field, m.target(), current, tolerance);
    } else if (m.kind() == hosting::v1::METRIC_KIND_LATENCY_P95_MS) {
      o = Service(in.p95_ms, "no requests in the window", m.target(), ready, current, tolerance);
    } else {
      auto it = in.promql.find(m.promql());
      if (it == in.promql.end()) {
        o = Service(NAN, "not queried", m.target(), ready, current, tolerance);
      } else if (!it->second.ok()) {
        o = Service(NAN, std::string(it->second.status().message()), m.target(), ready, current,
                    tolerance);
      } else {
        o = Service(*it->second, "no value", m.target(), ready, current, tolerance);
      }
    }
    if (m.kind() == hosting::v1::METRIC_KIND_REQUESTS_PER_SECOND) rps_target = m.target();
    hosting::v1::MetricRecommendation* r = &res.recommendations.emplace_back();
    *r->mutable_metric() = m;
    r->set_missing(!o.valid);
    if (o.valid) {
      r->set_value(o.value);
      r->set_recommended_replicas(o.replicas);
      if (o.replicas > recommendation) recommendation = o.replicas;
      if (o.replicas != current) {
        drivers.push_back(absl::StrFormat("%s %.4g vs target %.4g -> %d", Describe(m), o.value,
                                          m.target(), o.replicas));
      }
      if (!o.note.empty()) notes.push_back(absl::StrCat(Describe(m), ": ", o.note));
    } else {
      missing.push_back(absl::StrCat(Describe(m), ": ", o.note));
    }
  }
  if (!missing.empty()) notes.push_back(absl::StrCat("no data for ", absl::StrJoin(missing, "; ")));
  res.message = absl::StrJoin(notes, ". ");

  std::string why;
  if (recommendation < 0) {
    res.desired = Clamp(current, policy);
    res.reason = res.desired == current
                     ? absl::StrCat("no metric has data: holding at ", current)
                     : absl::StrCat("no metric has data; ", current, " is outside ",
                                    policy.min_replicas(), "..", policy.max_replicas());
    return res;
  }
  if (!missing.empty() && recommendation < current) {
    // The HPA's rule: never scale down while a metric is unknown.
    why = "a metric has no data: not scaling down";
    recommendation = current;
  }
  const int32_t unclamped = recommendation;
  recommendation = Clamp(recommendation, policy);
  if (up_only && recommendation <= current) {
    res.desired = current;
    res.reason = absl::StrCat("no scale-up on the short window at ", current, " replicas");
    return res;
  }

  // The forecast may only raise the size, and only when it sees more than the metrics do.
  int32_t forecast_desired = -1;
  if (policy.forecast().enabled() && rps_target > 0 && !up_only) {
    res.forecast_horizon = FromDuration(policy.forecast().horizon()) > absl::ZeroDuration()
                               ? FromDuration(policy.forecast().horizon())
                               : in.task_startup;
    res.forecast_rps = forecast_.Forecast(res.forecast_horizon);
    if (!std::isnan(res.forecast_rps) && forecast_.trend() > 0) {
      forecast_desired = Clamp(CeilCount(res.forecast_rps / rps_target), policy);
    }
  }
  const bool forecast_acts = forecast_desired > std::max(recommendation, current) &&
                             !policy.forecast().shadow();
  int32_t desired = Stabilize(policy, in.now, current,
                              forecast_acts ? forecast_desired : recommendation, why);
  if (forecast_acts && desired == forecast_desired) res.forecast_driven = true;
  desired = LimitRate(policy, in.now, current, desired, why);
  desired = Clamp(desired, policy);
  res.desired = desired;
  if (policy.forecast().shadow() && forecast_desired > std::max(desired, current)) {
    res.shadow_desired = forecast_desired;
  }

  if (desired != current) {
    std::string cause = res.forecast_driven
                            ? absl::StrFormat("forecast: %.4g rps in %s needs %d at %.4g per task",
                                              res.forecast_rps,
                                              absl::FormatDuration(res.forecast_horizon),
                                              forecast_desired, rps_target)
                            : absl::StrJoin(drivers, ", ");
    if (cause.empty()) cause = absl::StrCat("back within ", policy.min_replicas(), "..",
                                            policy.max_replicas());
    res.reason = absl::StrCat(desired > current ? "scale up " : "scale down ", current, " -> ",
                              desired, ": ", cause, why.empty() ? "" : absl::StrCat(" (", why, ")"));
  } else if (!why.empty()) {
    res.reason = why;
  } else if (unclamped != recommendation) {
    res.reason = absl::StrCat("held at the ", unclamped < recommendation ? "minimum" : "maximum",
                              " of ", recommendation, " (", absl::StrJoin(drivers, ", "), ")");
  } else {
    res.reason = absl::StrCat("within tolerance (", tolerance * 100, "%) of every target at ",
                              current, " replicas");
  }
  return res;
}

}  // namespace hosting::controlplane
