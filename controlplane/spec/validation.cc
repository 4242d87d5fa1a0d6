#include "controlplane/spec/validation.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/duration.pb.h"
#include "google/protobuf/message.h"
#include "google/protobuf/util/time_util.h"
#include "google/rpc/error_details.pb.h"

namespace hosting::controlplane {
namespace {

using google::protobuf::util::TimeUtil;

constexpr int kMaxReplicas = 1000;
constexpr size_t kMaxNameLength = 40;
constexpr int kMaxCanarySteps = 100;
constexpr double kMaxCpus = 4096;
// Any duration in a spec or policy: at most 30 days.
constexpr int64_t kMaxDurationSeconds = 30 * 24 * 3600;
// An INVALID_ARGUMENT lists at most this many violations (clients cap error metadata at a few
// KiB); the message counts the rest.
constexpr size_t kMaxViolationsListed = 20;
constexpr size_t kMaxViolationTextLength = 200;

bool IsLowerAlnumDash(const std::string& s) {
  for (char c : s) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) return false;
  }
  return true;
}

// "<anything>-r<digits>": the suffix of a revision's Swarm service.
bool EndsLikeRevisionSuffix(absl::string_view s) {
  size_t i = s.size();
  while (i > 0 && absl::ascii_isdigit(static_cast<unsigned char>(s[i - 1]))) --i;
  return i < s.size() && i >= 2 && s[i - 1] == 'r' && s[i - 2] == '-';
}

// Letters, digits and '_', not starting with a digit.
bool IsEnvName(absl::string_view s) {
  if (s.empty() || absl::ascii_isdigit(static_cast<unsigned char>(s[0]))) return false;
  for (char c : s) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '_') return false;
  }
  return true;
}

// Saturates instead of overflowing on durations out of range (CheckScalars reports those).
int64_t Millis(const google::protobuf::Duration& d) {
  if (d.seconds() > kMaxDurationSeconds) return kMaxDurationSeconds * 1000 + 1;
  if (d.seconds() < -kMaxDurationSeconds) return -kMaxDurationSeconds * 1000 - 1;
  return d.seconds() * 1000 + d.nanos() / 1000000;
}

// Why `d` is not a duration hosting accepts, or "".
std::string DurationProblem(const google::protobuf::Duration& d) {
  const bool nanos_ok = d.nanos() >= -999999999 && d.nanos() <= 999999999 &&
                        !(d.seconds() > 0 && d.nanos() < 0) && !(d.seconds() < 0 && d.nanos() > 0);
  if (!nanos_ok) {
    return absl::StrCat("not a valid duration (seconds ", d.seconds(), ", nanos ", d.nanos(),
                        "): nanos must be within +-999999999 and have the sign of seconds");
  }
  if (d.seconds() > kMaxDurationSeconds || d.seconds() < -kMaxDurationSeconds) {
    return absl::StrCat("at most 30 days (", kMaxDurationSeconds, "s), got ", d.seconds(), "s");
  }
  return "";
}

std::string Truncated(absl::string_view s) {
  if (s.size() <= kMaxViolationTextLength) return std::string(s);
  return absl::StrCat(s.substr(0, kMaxViolationTextLength), "...");
}

// What every field of a request must be, whatever it means: strings without NUL (C strings,
// Docker and PostgreSQL would cut them there), finite numbers, durations in range. Walks every
// set field of `m` by reflection, so a field added to the API is covered without a change here.
void CheckScalars(const google::protobuf::Message& m, const std::string& path,
                  std::vector<FieldViolation>& v) {
  using google::protobuf::FieldDescriptor;
  const google::protobuf::Reflection* r = m.GetReflection();
  if (m.GetDescriptor()->full_name() == "google.protobuf.Duration") {
    std::string problem = DurationProblem(static_cast<const google::protobuf::Duration&>(m));
    if (!problem.empty()) v.push_back({path, std::move(problem)});
    return;
  }
  std::vector<const FieldDescriptor*> fields;
  r->ListFields(m, &fields);
  for (const FieldDescriptor* fd : fields) {
    const std::string fp = absl::StrCat(path, path.empty() ? "" : ".", fd->name());
    const auto check_string = [&](const std::string& s, const std::string& where) {
      if (s.find('\0') != std::string::npos) v.push_back({where, "must not contain NUL (U+0000)"});
    };
    const auto check_double = [&](double x, const std::string& where) {
      if (!std::isfinite(x)) v.push_back({where, absl::StrCat("must be a finite number, got ", x)});
    };
    // Maps are checked by name (CheckMapEntries): protobuf's reflection over map fields crashes
    // in the ThreadSanitizer build (its map internals are not instrumented).
    if (fd->is_map()) continue;
    const int n = fd->is_repeated() ? r->FieldSize(m, fd) : 1;
    for (int i = 0; i < n; ++i) {
      const std::string where = fd->is_repeated() ? absl::StrCat(fp, "[", i, "]") : fp;
      switch (fd->cpp_type()) {
        case FieldDescriptor::CPPTYPE_STRING:
          check_string(fd->is_repeated() ? r->GetRepeatedString(m, fd, i) : r->GetString(m, fd), where);
          break;
        case FieldDescriptor::CPPTYPE_DOUBLE:
          check_double(fd->is_repeated() ? r->GetRepeatedDouble(m, fd, i) : r->GetDouble(m, fd), where);
          break;
        case FieldDescriptor::CPPTYPE_FLOAT:
          check_double(fd->is_repeated() ? r->GetRepeatedFloat(m, fd, i) : r->GetFloat(m, fd), where);
          break;
        case FieldDescriptor::CPPTYPE_MESSAGE:
          CheckScalars(fd->is_repeated() ? r->GetRepeatedMessage(m, fd, i) : r->GetMessage(m, fd),
                       where, v);
          break;
        default:
          break;
      }
    }
  }
}

// A string map's keys and values, as CheckScalars checks strings.
void CheckMapEntries(const google::protobuf::Map<std::string, std::string>& map,
                     const std::string& path, std::vector<FieldViolation>& v) {
  for (const auto& [key, value] : map) {
    if (key.find('\0') != std::string::npos || value.find('\0') != std::string::npos) {
      v.push_back({absl::StrCat(path, "[", Truncated(absl::CHexEscape(key)), "]"),
                   "must not contain NUL (U+0000)"});
    }
  }
}

}  // namespace

std::vector<FieldViolation> ValidateServiceName(const std::string& name, const std::string& field) {
  std::vector<FieldViolation> v;
  if (name.empty()) {
    v.push_back({field, "required"});
  } else if (name.size() > kMaxNameLength) {
    v.push_back({field, absl::StrCat("at most ", kMaxNameLength, " characters, got ", name.size())});
  } else if (!IsLowerAlnumDash(name) || !(name[0] >= 'a' && name[0] <= 'z') ||
             name.back() == '-') {
    v.push_back({field, absl::StrCat("'", name,
                                     "' must be lowercase letters, digits and '-', start with a "
                                     "letter and not end with '-'")});
  } else if (EndsLikeRevisionSuffix(name)) {
    v.push_back({field, absl::StrCat("'", name,
                                     "' ends like a revision suffix (-r<N>), which hosting "
                                     "reserves for the Swarm services of revisions")});
  }
  return v;
}

namespace {

// The release policy's own rules (CheckScalars aside).
std::vector<FieldViolation> ReleasePolicyRules(const hosting::v1::ReleasePolicy& r,
                                               const std::string& rf) {
  std::vector<FieldViolation> v;
  if (!hosting::v1::ReleaseStrategy_IsValid(r.strategy())) {
    v.push_back({rf + ".strategy", "unknown strategy"});
  }
  auto check_iop = [&](const hosting::v1::IntOrPercent& x, const std::string& field) {
    if (x.has_count() && x.count() < 0) v.push_back({field, "must not be negative"});
    if (x.has_percent() && (x.percent() < 0 || x.percent() > 100)) {
      v.push_back({field, "percent must be 0..100"});
    }
  };
  auto check_duration = [&](const google::protobuf::Duration& d, const std::string& field) {
    if (Millis(d) < 0) v.push_back({field, "must not be negative"});
  };
  auto check_analysis = [&](const hosting::v1::AnalysisSpec& a, const std::string& field) {
    check_duration(a.duration(), field + ".duration");
    if (!(a.max_error_ratio_increase() >= 0 && a.max_error_ratio_increase() <= 1)) {
      v.push_back({field + ".max_error_ratio_increase", "must be 0..1"});
    }
    if (!(a.max_error_ratio() >= 0 && a.max_error_ratio() <= 1)) {
      v.push_back({field + ".max_error_ratio", "must be 0..1"});
    }
    if (!(a.max_p95_latency_ratio() >= 0)) {
      v.push_back({field + ".max_p95_latency_ratio", "must not be negative"});
    }
    check_duration(a.max_p95_latency(), field + ".max_p95_latency");
    check_duration(a.max_p99_latency(), field + ".max_p99_latency");
    if (!(a.max_p99_latency_ratio() >= 0)) {
      v.push_back({field + ".max_p99_latency_ratio", "must not be negative"});
    }
    if (!hosting::v1::NoDataPolicy_IsValid(a.no_data())) {
      v.push_back({field + ".no_data", "unknown no-data policy"});
    }
    if (!hosting::v1::AnalysisFailurePolicy_IsValid(a.on_failure())) {
      v.push_back({field + ".on_failure", "unknown failure policy (rollback or pause)"});
    }
    if (a.has_judge()) {
      const hosting::v1::JudgeSpec& j = a.judge();
      const std::string jf = field + ".judge";
      if (j.confidence() != 0 && !(j.confidence() >= 0.5 && j.confidence() <= 0.9999)) {
        v.push_back({jf + ".confidence", "must be 0.5..0.9999 (0: the default 0.95)"});
      }
      if (!(j.latency_tolerance() >= 0)) {
        v.push_back({jf + ".latency_tolerance", "must not be negative"});
      }
      if (!(j.error_tolerance() >= 0 && j.error_tolerance() <= 1)) {
        v.push_back({jf + ".error_tolerance", "must be 0..1"});
      }
      if (!(j.pass_score() >= 0 && j.pass_score() <= 100)) {
        v.push_back({jf + ".pass_score", "must be 0..100"});
      }
      if (!(j.marginal_score() >= 0 && j.marginal_score() <= 100)) {
        v.push_back({jf + ".marginal_score", "must be 0..100"});
      } else if (j.pass_score() > 0 && j.marginal_score() > j.pass_score()) {
        v.push_back({jf + ".marginal_score", "must not be above pass_score"});
      }
      const std::vector<std::string>& known = JudgeMetricNames();
      auto check_names = [&](const google::protobuf::RepeatedPtrField<std::string>& names,
                             const std::string& f) {
        for (int i = 0; i < names.size(); ++i) {
          if (std::find(known.begin(), known.end(), names[i]) == known.end()) {
            v.push_back({absl::StrCat(f, "[", i, "]"),
                         absl::StrCat("unknown metric '", names[i], "' (the judge has ",
                                      absl::StrJoin(known, ", "), ")")});
          }
        }
      };
      check_names(j.critical(), jf + ".critical");
      check_names(j.dry_run(), jf + ".dry_run");
    }
  };
  check_iop(r.rolling().max_surge(), rf + ".rolling.max_surge");
  check_iop(r.rolling().max_unavailable(), rf + ".rolling.max_unavailable");
  check_duration(r.rolling().min_healthy_time(), rf + ".rolling.min_healthy_time");
  check_duration(r.rolling().progress_deadline(), rf + ".rolling.progress_deadline");
  if (r.canary().steps_size() > kMaxCanarySteps) {
    v.push_back({rf + ".canary.steps", absl::StrCat("at most ", kMaxCanarySteps, " steps, got ",
                                                   r.canary().steps_size())});
  }
  for (int i = 0; i < std::min(r.canary().steps_size(), kMaxCanarySteps); ++i) {
    const auto& step = r.canary().steps(i);
    const std::string sf = absl::StrCat(rf, ".canary.steps[", i, "]");
    if (step.action_case() == hosting::v1::CanaryStep::kSetWeight && step.set_weight() > 100) {
      v.push_back({sf + ".set_weight", absl::StrCat("must be 0..100, got ", step.set_weight())});
    }
    if (step.action_case() == hosting::v1::CanaryStep::kPause) {
      check_duration(step.pause().duration(), sf + ".pause.duration");
    }
    if (step.action_case() == hosting::v1::CanaryStep::kAnalysis) {
      check_analysis(step.analysis(), sf + ".analysis");
    }
    if (step.action_case() == hosting::v1::CanaryStep::ACTION_NOT_SET) {
      v.push_back({sf, "needs one of set_weight, pause, analysis"});
    }
  }
  if (r.canary().has_background_analysis()) {
    check_analysis(r.canary().background_analysis(), rf + ".canary.background_analysis");
  }
  if (r.canary().baseline() && r.strategy() != hosting::v1::RELEASE_STRATEGY_CANARY &&
      r.strategy() != hosting::v1::RELEASE_STRATEGY_UNSPECIFIED) {
    v.push_back({rf + ".canary.baseline",
                 absl::StrCat("only a canary release runs a baseline beside its canary; the ",
                              "strategy is ", hosting::v1::ReleaseStrategy_Name(r.strategy()))});
  }
  if (r.blue_green().has_pre_switch_analysis()) {
    check_analysis(r.blue_green().pre_switch_analysis(), rf + ".blue_green.pre_switch_analysis");
    if (r.blue_green().pre_switch_analysis().has_judge()) {
      v.push_back({rf + ".blue_green.pre_switch_analysis.judge",
                   "the judge compares the new revision's traffic with the stable one's; a "
                   "blue-green preview serves no production traffic to compare (use a canary)"});
    }
  }
  check_duration(r.blue_green().scale_down_delay(), rf + ".blue_green.scale_down_delay");
  if (r.revision_history_limit() > 100) {
    v.push_back({rf + ".revision_history_limit", "at most 100"});
  }
  return v;
}

// The autoscaling policy's own rules (CheckScalars aside).
std::vector<FieldViolation> AutoscalingPolicyRules(const hosting::v1::AutoscalingPolicy& p,
                                                   const std::string& pf) {
  std::vector<FieldViolation> v;
  if (p.min_replicas() < 1 || p.min_replicas() > kMaxReplicas) {
    v.push_back({pf + ".min_replicas",
                 absl::StrCat("must be between 1 and ", kMaxReplicas, ", got ", p.min_replicas())});
  }
  if (p.max_replicas() < std::max(1, p.min_replicas()) || p.max_replicas() > kMaxReplicas) {
    v.push_back({pf + ".max_replicas",
                 absl::StrCat("must be between min_replicas (", p.min_replicas(), ") and ",
                              kMaxReplicas, ", got ", p.max_replicas())});
  }
  if (p.metrics().empty()) {
    v.push_back({pf + ".metrics", "at least one metric with a target is required"});
  }
  std::set<int> kinds;
  bool has_rps = false;
  for (int i = 0; i < p.metrics_size(); ++i) {
    const auto& m = p.metrics(i);
    const std::string mf = absl::StrCat(pf, ".metrics[", i, "]");
    if (!hosting::v1::MetricKind_IsValid(m.kind()) ||
        m.kind() == hosting::v1::METRIC_KIND_UNSPECIFIED) {
      v.push_back({mf + ".kind", "required: cpu, memory, rps, inflight, p95 or promql"});
      continue;
    }
    if (!(m.target() > 0) || m.target() > 1e9) {
      v.push_back({mf + ".target", absl::StrCat("must be a positive number, got ", m.target())});
    }
    if (m.kind() == hosting::v1::METRIC_KIND_PROMQL) {
      if (m.promql().empty()) v.push_back({mf + ".promql", "required for a PromQL metric"});
    } else {
      if (!m.promql().empty()) v.push_back({mf + ".promql", "only for a PromQL metric"});
      if (!kinds.insert(m.kind()).second) {
        v.push_back({mf + ".kind", absl::StrCat(hosting::v1::MetricKind_Name(m.kind()),
                                                " is listed twice")});
      }
    }
    has_rps |= m.kind() == hosting::v1::METRIC_KIND_REQUESTS_PER_SECOND;
  }
  if (!(p.tolerance() >= 0 && p.tolerance() < 1)) {
    v.push_back({pf + ".tolerance", absl::StrCat("must be in [0, 1), got ", p.tolerance())});
  }
  auto check_window = [&](const google::protobuf::Duration& d, const std::string& field) {
    if (Millis(d) < 0 || Millis(d) > 3600 * 1000) v.push_back({field, "must be between 0 and 1h"});
  };
  check_window(p.scale_up_stabilization(), pf + ".scale_up_stabilization");
  check_window(p.scale_down_stabilization(), pf + ".scale_down_stabilization");
  auto check_rate = [&](const hosting::v1::RateLimit& r, const std::string& field) {
    if (r.tasks() < 0) v.push_back({field + ".tasks", "must not be negative"});
    if (r.percent() < 0 || r.percent() > 10000) {
      v.push_back({field + ".percent", "must be between 0 and 10000"});
    }
    if ((r.tasks() > 0 || r.percent() > 0) &&
        (Millis(r.period()) < 1000 || Millis(r.period()) > 3600 * 1000)) {
      v.push_back({field + ".period", "required with tasks or percent: between 1s and 1h"});
    }
    if (!r.select().empty() && r.select() != "max" && r.select() != "min") {
      v.push_back({field + ".select", absl::StrCat("must be max or min, got '", r.select(), "'")});
    }
  };
  check_rate(p.scale_up_rate(), pf + ".scale_up_rate");
  check_rate(p.scale_down_rate(), pf + ".scale_down_rate");
  if (p.has_evaluation_interval() &&
      (Millis(p.evaluation_interval()) < 1000 || Millis(p.evaluation_interval()) > 600 * 1000)) {
    v.push_back({pf + ".evaluation_interval", "must be between 1s and 10m"});
  }
  if (p.has_scale_up_metric_window() && (Millis(p.scale_up_metric_window()) < 1000 ||
                                         Millis(p.scale_up_metric_window()) > 600 * 1000)) {
    v.push_back({pf + ".scale_up_metric_window", "must be between 1s and 10m"});
  }
  if (p.forecast().enabled()) {
    if (!has_rps) {
      v.push_back({pf + ".forecast",
                   "forecasts the request rate: the policy needs a requests-per-second metric"});
    }
    if (Millis(p.forecast().horizon()) < 0 || Millis(p.forecast().horizon()) > 600 * 1000) {
      v.push_back({pf + ".forecast.horizon", "must be between 0 and 10m"});
    }
  }
  return v;
}

}  // namespace

const std::vector<std::string>& JudgeMetricNames() {
  static const auto* names = new std::vector<std::string>{"latency", "errors"};
  return *names;
}

std::vector<FieldViolation> ValidateReleasePolicy(const hosting::v1::ReleasePolicy& policy,
                                                  const std::string& field) {
  std::vector<FieldViolation> v;
  CheckScalars(policy, field, v);
  std::vector<FieldViolation> rules = ReleasePolicyRules(policy, field);
  v.insert(v.end(), rules.begin(), rules.end());
  return v;
}

std::vector<FieldViolation> ValidateAutoscalingPolicy(const hosting::v1::AutoscalingPolicy& policy,
                                                      const std::string& field) {
  std::vector<FieldViolation> v;
  CheckScalars(policy, field, v);
  std::vector<FieldViolation> rules = AutoscalingPolicyRules(policy, field);
  v.insert(v.end(), rules.begin(), rules.end());
  return v;
}

void ApplyAutoscalingDefaults(hosting::v1::AutoscalingPolicy& p) {
  if (p.tolerance() == 0) p.set_tolerance(0.1);
  if (!p.has_scale_down_stabilization()) {
    *p.mutable_scale_down_stabilization() = TimeUtil::SecondsToDuration(300);
  }
  if (!p.has_scale_up_stabilization()) {
    *p.mutable_scale_up_stabilization() = TimeUtil::SecondsToDuration(0);
  }
  if (!p.has_evaluation_interval()) {
    *p.mutable_evaluation_interval() = TimeUtil::SecondsToDuration(5);
  }
  if (!p.has_scale_up_metric_window()) {
    *p.mutable_scale_up_metric_window() = TimeUtil::SecondsToDuration(3);
  }
  for (auto* r : {p.mutable_scale_up_rate(), p.mutable_scale_down_rate()}) {
    if (r->select().empty()) r->set_select("max");
  }
}

std::vector<FieldViolation> ValidateServiceSpec(const hosting::v1::ServiceSpec& spec,
                                                const std::string& prefix) {
  auto f = [&](absl::string_view field) { return absl::StrCat(prefix, ".", field); };
  std::vector<FieldViolation> v = ValidateServiceName(spec.name(), f("name"));
  CheckScalars(spec, prefix, v);
  CheckMapEntries(spec.env(), f("env"), v);
  CheckMapEntries(spec.labels(), f("labels"), v);

  if (spec.image().empty()) {
    v.push_back({f("image"), "required"});
  } else if (absl::StrContains(spec.image(), " ") || spec.image().size() > 512) {
    v.push_back({f("image"), absl::StrCat("'", spec.image(), "' is not an image reference")});
  }
  if (spec.replicas() < 0 || spec.replicas() > kMaxReplicas) {
    v.push_back({f("replicas"),
                 absl::StrCat("must be between 0 and ", kMaxReplicas, ", got ", spec.replicas())});
  }
  for (const auto& [key, value] : spec.env()) {
    if (!IsEnvName(key)) {
      v.push_back({f(absl::StrCat("env[", key, "]")),
                   "environment variable names are letters, digits and '_', not starting with a digit"});
    }
  }
  std::set<std::pair<uint32_t, std::string>> published;
  std::set<std::string> port_names;
  for (int i = 0; i < spec.ports_size(); ++i) {
    const auto& p = spec.ports(i);
    std::string pf = f(absl::StrCat("ports[", i, "]"));
    if (p.container_port() < 1 || p.container_port() > 65535) {
      v.push_back({pf + ".container_port",
                   absl::StrCat("must be 1..65535, got ", p.container_port())});
    }
    if (p.published_port() > 65535) {
      v.push_back({pf + ".published_port",
                   absl::StrCat("must be 0 (not published) or 1..65535, got ", p.published_port())});
    }
    if (!p.protocol().empty() && p.protocol() != "tcp" && p.protocol() != "udp") {
      v.push_back({pf + ".protocol", absl::StrCat("must be tcp or udp, got '", p.protocol(), "'")});
    }
    if (p.published_port() != 0 &&
        !published.insert({p.published_port(), p.protocol().empty() ? "tcp" : p.protocol()})
             .second) {
      v.push_back({pf + ".published_port",
                   absl::StrCat("port ", p.published_port(), " is published twice")});
    }
    if (!p.name().empty()) {
      if (p.name().size() > 15 || !IsLowerAlnumDash(p.name())) {
        v.push_back({pf + ".name", "at most 15 characters of [a-z0-9-]"});
      } else if (!port_names.insert(p.name()).second) {
        v.push_back({pf + ".name", absl::StrCat("duplicate port name '", p.name(), "'")});
      }
    }
  }
  if (spec.has_health()) {
    const auto& h = spec.health();
    std::string hf = f("health");
    if (!h.http_path().empty() && h.http_path()[0] != '/') {
      v.push_back({hf + ".http_path", absl::StrCat("must start with '/', got '", h.http_path(), "'")});
    }
    if (h.port() > 65535) v.push_back({hf + ".port", "must be 0..65535"});
    if (!h.http_path().empty() && h.port() == 0 && spec.ports_size() == 0) {
      v.push_back({hf + ".port", "required when the spec has no ports to default to"});
    }
    if (h.has_interval() && Millis(h.interval()) < 100) {
      v.push_back({hf + ".interval", "must be at least 100ms"});
    }
    if (h.has_timeout() && Millis(h.timeout()) <= 0) {
      v.push_back({hf + ".timeout", "must be positive"});
    }
    if (h.has_interval() && h.has_timeout() && Millis(h.timeout()) > Millis(h.interval())) {
      v.push_back({hf + ".timeout", "must not exceed interval"});
    }
    if (h.has_start_period() && Millis(h.start_period()) < 0) {
      v.push_back({hf + ".start_period", "must not be negative"});
    }
    if (h.healthy_threshold() > 100) v.push_back({hf + ".healthy_threshold", "at most 100"});
    if (h.unhealthy_threshold() > 100) v.push_back({hf + ".unhealthy_threshold", "at most 100"});
  }
  if (spec.has_resources()) {
    const auto& r = spec.resources();
    std::string rf = f("resources");
    // NaN fails both (CheckScalars names it); Docker takes CPUs as int64 nanos.
    if (!(r.cpu_limit() >= 0 && r.cpu_limit() <= kMaxCpus)) {
      v.push_back({rf + ".cpu_limit", absl::StrCat("must be 0 (unlimited) to ", kMaxCpus,
                                                   " CPUs, got ", r.cpu_limit())});
    }
    if (!(r.cpu_reservation() >= 0 && r.cpu_reservation() <= kMaxCpus)) {
      v.push_back({rf + ".cpu_reservation",
                   absl::StrCat("must be 0 to ", kMaxCpus, " CPUs, got ", r.cpu_reservation())});
    }
    if (r.cpu_limit() > 0 && r.cpu_reservation() > r.cpu_limit()) {
      v.push_back({rf + ".cpu_reservation", "must not exceed cpu_limit"});
    }
    if (r.memory_limit_bytes() < 0 ||
        (r.memory_limit_bytes() > 0 && r.memory_limit_bytes() < 4 * 1024 * 1024)) {
      v.push_back({rf + ".memory_limit_bytes", "must be 0 (unlimited) or at least 4 MiB"});
    }
    if (r.memory_reservation_bytes() < 0) {
      v.push_back({rf + ".memory_reservation_bytes", "must not be negative"});
    }
    if (r.memory_limit_bytes() > 0 && r.memory_reservation_bytes() > r.memory_limit_bytes()) {
      v.push_back({rf + ".memory_reservation_bytes", "must not exceed memory_limit_bytes"});
    }
    if (r.pids_limit() < 0) v.push_back({rf + ".pids_limit", "must not be negative"});
  }
  for (const auto& [key, value] : spec.labels()) {
    if (absl::StartsWith(key, "hosting.")) {
      v.push_back({f(absl::StrCat("labels[", key, "]")),
                   "keys starting with 'hosting.' are reserved for hosting"});
    } else if (key.empty()) {
      v.push_back({f("labels"), "label keys must not be empty"});
    }
  }
  for (int i = 0; i < spec.networks_size(); ++i) {
    if (spec.networks(i).empty()) {
      v.push_back({f(absl::StrCat("networks[", i, "]")), "must not be empty"});
    }
  }
  for (int i = 0; i < spec.constraints_size(); ++i) {
    const std::string& c = spec.constraints(i);
    if (!absl::StrContains(c, "==") && !absl::StrContains(c, "!=")) {
      v.push_back({f(absl::StrCat("constraints[", i, "]")),
                   absl::StrCat("'", c, "' is not a Swarm constraint (expected key==value or key!=value)")});
    }
  }
  if (spec.has_stop_grace_period() && Millis(spec.stop_grace_period()) < 0) {
    v.push_back({f("stop_grace_period"), "must not be negative"});
  }
  if (spec.secrets_size() > 64) {
    v.push_back({f("secrets"), "at most 64 secrets"});
  }
  std::set<std::string> targets;
  for (int i = 0; i < spec.secrets_size() && i < 64; ++i) {
    const hosting::v1::SecretMount& m = spec.secrets(i);
    const std::string field = absl::StrCat("secrets[", i, "]");
    // Docker's rule for secret names; a file name under /run/secrets/ for targets.
    auto is_name = [](const std::string& n, size_t max) {
      if (n.empty() || n.size() > max || !absl::ascii_isalnum(n[0])) return false;
      for (char c : n) {
        if (!absl::ascii_isalnum(c) && c != '_' && c != '.' && c != '-') return false;
      }
      return true;
    };
    if (!is_name(m.name(), 64)) {
      v.push_back({f(field + ".name"),
                   "a Swarm secret name: 1 to 64 letters, digits, '_', '.' or '-', starting "
                   "with a letter or digit"});
    }
    const std::string target = m.target().empty() ? m.name() : m.target();
    if (!m.target().empty() && !is_name(m.target(), 255)) {
      v.push_back({f(field + ".target"),
                   "a file name under /run/secrets/: letters, digits, '_', '.' or '-' (no '/')"});
    } else if (!targets.insert(target).second) {
      v.push_back({f(field + ".target"),
                   absl::StrCat("two secrets are mounted as /run/secrets/", target)});
    }
  }
  if (spec.has_release()) {
    std::vector<FieldViolation> rv = ReleasePolicyRules(spec.release(), f("release"));
    v.insert(v.end(), rv.begin(), rv.end());
  }
  if (spec.has_autoscaling()) {
    std::vector<FieldViolation> av = AutoscalingPolicyRules(spec.autoscaling(), f("autoscaling"));
    v.insert(v.end(), av.begin(), av.end());
    if (!spec.autoscaling().service().empty() && spec.autoscaling().service() != spec.name()) {
      v.push_back({f("autoscaling.service"),
                   absl::StrCat("must be empty or the service's name ('", spec.name(), "'), got '",
                                spec.autoscaling().service(), "'")});
    }
  }
  return v;
}

absl::Status InvalidArgumentWithViolations(const std::vector<FieldViolation>& violations) {
  if (violations.empty()) return absl::OkStatus();
  std::vector<std::string> parts;
  google::rpc::BadRequest bad_request;
  const size_t listed = std::min(violations.size(), kMaxViolationsListed);
  for (size_t i = 0; i < listed; ++i) {
    const FieldViolation& fv = violations[i];
    const std::string field = Truncated(fv.field), description = Truncated(fv.description);
    parts.push_back(absl::StrCat(field, ": ", description));
    auto* out = bad_request.add_field_violations();
    out->set_field(field);
    out->set_description(description);
  }
  if (violations.size() > listed) {
    parts.push_back(absl::StrCat("and ", violations.size() - listed, " more violations"));
  }
  absl::Status status = absl::InvalidArgumentError(
      absl::StrCat("invalid request: ", absl::StrJoin(parts, "; ")));
  status.SetPayload(kBadRequestTypeUrl, absl::Cord(bad_request.SerializeAsString()));
  return status;
}

void ApplySpecDefaults(hosting::v1::ServiceSpec& spec) {
  for (auto& p : *spec.mutable_ports()) {
    if (p.protocol().empty()) p.set_protocol("tcp");
  }
  if (spec.has_health()) {
    auto* h = spec.mutable_health();
    if (!h->has_interval()) *h->mutable_interval() = TimeUtil::SecondsToDuration(5);
    if (!h->has_timeout()) {
      *h->mutable_timeout() = TimeUtil::MillisecondsToDuration(
          std::min<int64_t>(2000, TimeUtil::DurationToMilliseconds(h->interval())));
    }
    if (h->healthy_threshold() == 0) h->set_healthy_threshold(1);
    if (h->unhealthy_threshold() == 0) h->set_unhealthy_threshold(3);
    if (h->port() == 0 && spec.ports_size() > 0 && !h->http_path().empty()) {
      h->set_port(spec.ports(0).container_port());
    }
  }
  if (!spec.has_stop_grace_period()) {
    *spec.mutable_stop_grace_period() = TimeUtil::SecondsToDuration(10);
  }
  if (spec.release().revision_history_limit() == 0) {
    spec.mutable_release()->set_revision_history_limit(10);
  }
}

}  // namespace hosting::controlplane
