#include "hostctl/autoscale_commands.h"

#include <memory>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"
#include "google/protobuf/util/time_util.h"
#include "hostctl/exit_codes.h"

namespace hosting::hostctl {

absl::StatusOr<hosting::v1::RateLimit> ParseRateLimit(const std::string& text) {
  std::vector<std::string> halves = absl::StrSplit(text, '/');
  if (halves.size() != 2) {
    return absl::InvalidArgumentError(absl::StrCat(
        "'", text, "' is not a rate limit: <tasks> or <percent>% (or both, comma-separated) ",
        "per period, e.g. 4/15s, 100%/1m, 4,100%/15s"));
  }
  hosting::v1::RateLimit r;
  for (absl::string_view part : absl::StrSplit(halves[0], ',', absl::SkipEmpty())) {
    part = absl::StripAsciiWhitespace(part);
    const bool percent = absl::ConsumeSuffix(&part, "%");
    int v = 0;
    if (!absl::SimpleAtoi(part, &v) || v <= 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "'", text, "': '", part, "' is not a positive number of tasks or a percentage"));
    }
    if (percent) {
      r.set_percent(v);
    } else {
      r.set_tasks(v);
    }
  }
  if (r.tasks() == 0 && r.percent() == 0) {
    return absl::InvalidArgumentError(absl::StrCat("'", text, "': no tasks or percentage"));
  }
  absl::StatusOr<google::protobuf::Duration> period =
      ParseDurationFlag(halves[1], absl::StrCat("'", text, "' period"));
  if (!period.ok()) return period.status();
  *r.mutable_period() = *period;
  return r;
}

absl::StatusOr<hosting::v1::MetricTarget> ParsePromqlMetric(const std::string& text) {
  const size_t eq = text.rfind('=');
  double target = 0;
  if (eq == std::string::npos || eq == 0 ||
      !absl::SimpleAtod(absl::StripAsciiWhitespace(text.substr(eq + 1)), &target)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--promql '", text, "': expected <query>=<target>, e.g. 'sum(queue_depth{service=\"{{service}}\"})=100'"));
  }
  hosting::v1::MetricTarget m;
  m.set_kind(hosting::v1::METRIC_KIND_PROMQL);
  m.set_promql(std::string(absl::StripAsciiWhitespace(text.substr(0, eq))));
  m.set_target(target);
  return m;
}

void AddAutoscaleCommands(CLI::App& app, Globals& g, const std::function<Client&()>& client,
                          int& code, std::ostream& out, std::ostream& err) {
  auto c = std::make_shared<CommandEnv>(CommandEnv{g, client, code, out, err});
  CLI::App* autoscale = app.add_subcommand("autoscale", "Set, show and delete autoscaling policies");
  autoscale->require_subcommand(1);

  struct SetOptions {
    std::string service;
    int min = 0, max = 0;
    double cpu = 0, memory = 0, rps = 0, inflight = 0, p95 = 0, tolerance = 0;
    std::vector<std::string> promql;
    std::string up_window, down_window, up_rate, down_rate, up_select, down_select, interval;
    std::string horizon, up_metric_window;
    bool forecast = false, forecast_shadow = false, no_forecast = false, replace = false;
    bool scale_to_zero = false, no_scale_to_zero = false;
  };
  auto so = std::make_shared<SetOptions>();
  CLI::App* set = autoscale->add_subcommand(
      "set", "Create or change a service's policy (flags not given keep their current value)");
  set->add_option("service", so->service, "Service name")->required();
  set->add_option("--min", so->min, "Fewest replicas (default 1)");
  set->add_option("--max", so->max, "Most replicas");
  set->add_option("--cpu", so->cpu, "Target CPU utilisation per task, % of its limit (or a core)");
  set->add_option("--memory", so->memory, "Target memory use per task, % of its limit");
  set->add_option("--rps", so->rps, "Target requests per second per task");
  set->add_option("--inflight", so->inflight, "Target in-flight requests per task");
  set->add_option("--p95", so->p95, "Target p95 latency in milliseconds");
  set->add_option("--promql", so->promql,
                  "<query>=<target>, a PromQL value tracked like p95 (repeatable)");
  set->add_option("--tolerance", so->tolerance, "No change within this ratio of a target (0.1)");
  set->add_option("--scale-up-window", so->up_window, "Scale-up stabilization window (0s)");
  set->add_option("--scale-down-window", so->down_window, "Scale-down stabilization window (5m)");
  set->add_option("--scale-up-rate", so->up_rate, "At most N tasks and/or P% per period: 4,100%/15s");
  set->add_option("--scale-down-rate", so->down_rate, "Likewise for scale-down");
  set->add_option("--scale-up-select", so->up_select, "max (the more permissive limit) or min");
  set->add_option("--scale-down-select", so->down_select, "max or min");
  set->add_option("--interval", so->interval, "Evaluation interval (5s)");
  set->add_option("--scale-up-metric-window", so->up_metric_window,
                  "Scale up between evaluations on this short window of metrics (3s)");
  set->add_flag("--forecast", so->forecast, "Scale ahead of a request-rate ramp (needs --rps)");
  set->add_flag("--forecast-shadow", so->forecast_shadow,
                "Forecast, but only record what it would do");
  set->add_flag("--no-forecast", so->no_forecast, "Turn the forecast off");
  set->add_option("--forecast-horizon", so->horizon, "How far ahead (the measured task start-up time)");
  set->add_flag("--scale-to-zero", so->scale_to_zero,
                "Go to zero tasks when idle; a request held at HAProxy wakes the service");
  set->add_flag("--no-scale-to-zero", so->no_scale_to_zero, "Keep at least --min tasks");
  set->add_flag("--replace", so->replace, "Start from an empty policy, not the current one");
  set->callback([c, so] {
    auto usage = [c](const absl::Status& s) {
      c->err << "error: " << s.message() << "\n";
      c->code = kExitUsage;
    };
    // A malformed flag is a usage error before hostd is asked anything.
    for (auto [text, name] : {std::pair{&so->up_window, "--scale-up-window"},
                              {&so->down_window, "--scale-down-window"},
                              {&so->interval, "--interval"},
                              {&so->up_metric_window, "--scale-up-metric-window"},
                              {&so->horizon, "--forecast-horizon"}}) {
      if (text->empty()) continue;
      if (auto d = ParseDurationFlag(*text, name); !d.ok()) return usage(d.status());
    }
    for (auto [text, name] : {std::pair{&so->up_rate, "--scale-up-rate"},
                              {&so->down_rate, "--scale-down-rate"}}) {
      if (text->empty()) continue;
      if (auto r = ParseRateLimit(*text); !r.ok()) {
        return usage(absl::InvalidArgumentError(absl::StrCat(name, ": ", r.status().message())));
      }
    }
    for (const std::string& q : so->promql) {
      if (auto m = ParsePromqlMetric(q); !m.ok()) return usage(m.status());
    }
    hosting::v1::AutoscalingPolicy p;
    if (!so->replace) {
      hosting::v1::GetPolicyRequest get;
      get.set_service(so->service);
      auto ctx = c->client().Context();
      grpc::Status st = c->client().autoscaling().GetPolicy(ctx.get(), get, &p);
      if (!st.ok() && st.error_code() != grpc::StatusCode::NOT_FOUND) {
        c->code = Fail(st, "autoscale set " + so->service, c->err);
        return;
      }
    }
    p.set_service(so->service);
    if (so->min > 0) p.set_min_replicas(so->min);
    if (p.min_replicas() == 0) p.set_min_replicas(1);  // a new policy: as kubectl autoscale
    if (so->max > 0) p.set_max_replicas(so->max);
    std::vector<hosting::v1::MetricTarget> metrics;
    for (auto [value, kind] : {std::pair{so->cpu, hosting::v1::METRIC_KIND_CPU_UTILIZATION},
                               {so->memory, hosting::v1::METRIC_KIND_MEMORY_UTILIZATION},
                               {so->rps, hosting::v1::METRIC_KIND_REQUESTS_PER_SECOND},
                               {so->inflight, hosting::v1::METRIC_KIND_IN_FLIGHT_REQUESTS},
                               {so->p95, hosting::v1::METRIC_KIND_LATENCY_P95_MS}}) {
      if (value == 0) continue;
      hosting::v1::MetricTarget& m = metrics.emplace_back();
      m.set_kind(kind);
      m.set_target(value);
    }
    for (const std::string& q : so->promql) {
      absl::StatusOr<hosting::v1::MetricTarget> m = ParsePromqlMetric(q);
      if (!m.ok()) return usage(m.status());
      metrics.push_back(*m);
    }
    if (!metrics.empty()) {  // metrics given replace the policy's metrics
      p.clear_metrics();
      for (auto& m : metrics) *p.add_metrics() = m;
    }
    if (so->tolerance > 0) p.set_tolerance(so->tolerance);
    using DurField = google::protobuf::Duration* (*)(hosting::v1::AutoscalingPolicy*);
    for (auto [text, field, name] :
         {std::tuple<std::string*, DurField, const char*>{
              &so->up_window,
              [](hosting::v1::AutoscalingPolicy* q) { return q->mutable_scale_up_stabilization(); },
              "--scale-up-window"},
          std::tuple<std::string*, DurField, const char*>{
              &so->down_window,
              [](hosting::v1::AutoscalingPolicy* q) {
                return q->mutable_scale_down_stabilization();
              },
              "--scale-down-window"},
          std::tuple<std::string*, DurField, const char*>{
              &so->interval,
              [](hosting::v1::AutoscalingPolicy* q) { return q->mutable_evaluation_interval(); },
              "--interval"},
          std::tuple<std::string*, DurField, const char*>{
              &so->up_metric_window,
              [](hosting::v1::AutoscalingPolicy* q) { return q->mutable_scale_up_metric_window(); },
              "--scale-up-metric-window"}}) {
      if (text->empty()) continue;  // only what is given creates its field
      absl::StatusOr<google::protobuf::Duration> d = ParseDurationFlag(*text, name);
      if (!d.ok()) return usage(d.status());
      *field(&p) = *d;
    }
    for (auto [text, select, field, name] :
         {std::tuple{&so->up_rate, &so->up_select, p.mutable_scale_up_rate(), "--scale-up-rate"},
          std::tuple{&so->down_rate, &so->down_select, p.mutable_scale_down_rate(),
                     "--scale-down-rate"}}) {
      if (!text->empty()) {
        absl::StatusOr<hosting::v1::RateLimit> r = ParseRateLimit(*text);
        if (!r.ok()) return usage(absl::InvalidArgumentError(absl::StrCat(name, ": ", r.status().message())));
        *field = *r;
      }
      if (!select->empty()) field->set_select(*select);
    }
    if (so->forecast || so->forecast_shadow) {
      p.mutable_forecast()->set_enabled(true);
      p.mutable_forecast()->set_shadow(so->forecast_shadow);
    }
    if (so->no_forecast) p.clear_forecast();
    if (so->scale_to_zero) p.set_scale_to_zero(true);
    if (so->no_scale_to_zero) p.set_scale_to_zero(false);
    if (!so->horizon.empty()) {
      absl::StatusOr<google::protobuf::Duration> d = ParseDurationFlag(so->horizon, "--forecast-horizon");
      if (!d.ok()) return usage(d.status());
      *p.mutable_forecast()->mutable_horizon() = *d;
    }
    hosting::v1::SetPolicyRequest req;
    *req.mutable_policy() = p;
    hosting::v1::AutoscalingPolicy stored;
    auto ctx = c->client().Context();
    grpc::Status st = c->client().autoscaling().SetPolicy(ctx.get(), req, &stored);
    if (!st.ok()) {
      c->code = Fail(st, "autoscale set " + so->service, c->err);
      return;
    }
    if (c->g.format == Format::kTable) c->out << "autoscale/" << so->service << " set\n";
    PrintAutoscalingPolicy(stored, c->g.format, c->out);
  });

  auto get_service = std::make_shared<std::string>();
  CLI::App* get = autoscale->add_subcommand("get", "Show a service's policy");
  get->add_option("service", *get_service, "Service name")->required();
  get->callback([c, get_service] {
    hosting::v1::GetPolicyRequest req;
    req.set_service(*get_service);
    hosting::v1::AutoscalingPolicy p;
    auto ctx = c->client().Context();
    grpc::Status st = c->client().autoscaling().GetPolicy(ctx.get(), req, &p);
    if (!st.ok()) {
      c->code = Fail(st, "autoscale get " + *get_service, c->err);
      return;
    }
    PrintAutoscalingPolicy(p, c->g.format, c->out);
  });

  auto status_service = std::make_shared<std::string>();
  CLI::App* status = autoscale->add_subcommand(
      "status", "Metric values, recommendations, the last decision and recent history");
  status->add_option("service", *status_service, "Service name")->required();
  status->callback([c, status_service] {
    hosting::v1::GetAutoscalingStatusRequest req;
    req.set_service(*status_service);
    hosting::v1::AutoscalingStatus s;
    auto ctx = c->client().Context();
    grpc::Status st = c->client().autoscaling().GetStatus(ctx.get(), req, &s);
    if (!st.ok()) {
      c->code = Fail(st, "autoscale status " + *status_service, c->err);
      return;
    }
    PrintAutoscalingStatus(s, c->g.format, c->out);
  });

  auto delete_service = std::make_shared<std::string>();
  CLI::App* del = autoscale->add_subcommand(
      "delete", "Delete a service's policy (it keeps its current replicas)");
  del->add_option("service", *delete_service, "Service name")->required();
  del->callback([c, delete_service] {
    hosting::v1::DeletePolicyRequest req;
    req.set_service(*delete_service);
    hosting::v1::DeletePolicyResponse resp;
    auto ctx = c->client().Context();
    grpc::Status st = c->client().autoscaling().DeletePolicy(ctx.get(), req, &resp);
    if (!st.ok()) {
      c->code = Fail(st, "autoscale delete " + *delete_service, c->err);
      return;
    }
    c->out << "autoscale/" << *delete_service << " deleted\n";
  });
}

}  // namespace hosting::hostctl
