#include "hostctl/output.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"
#include "common/proto_time.h"
#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/time_util.h"
#include "nlohmann/json.hpp"
#include "yaml-cpp/yaml.h"

namespace hosting::hostctl {
namespace {

using google::protobuf::util::TimeUtil;

std::string ToJsonText(const google::protobuf::Message& message, bool pretty) {
  std::string out;
  google::protobuf::util::JsonPrintOptions opts;
  opts.preserve_proto_field_names = true;
  opts.add_whitespace = pretty;
  (void)google::protobuf::util::MessageToJsonString(message, &out, opts);
  return out;
}

void EmitYaml(const nlohmann::json& j, YAML::Emitter& e) {
  if (j.is_object()) {
    e << YAML::BeginMap;
    for (const auto& [k, v] : j.items()) {
      e << YAML::Key << k << YAML::Value;
      EmitYaml(v, e);
    }
    e << YAML::EndMap;
  } else if (j.is_array()) {
    e << YAML::BeginSeq;
    for (const auto& v : j) EmitYaml(v, e);
    e << YAML::EndSeq;
  } else if (j.is_string()) {
    e << YAML::DoubleQuoted << j.get<std::string>();
  } else if (j.is_boolean()) {
    e << j.get<bool>();
  } else if (j.is_number_integer()) {
    e << j.get<int64_t>();
  } else if (j.is_number()) {
    e << j.get<double>();
  } else {
    e << YAML::Null;
  }
}

std::string Age(const google::protobuf::Timestamp& ts) {
  if (ts.seconds() == 0) return "-";
  absl::Duration d = absl::Now() - absl::FromUnixSeconds(ts.seconds());
  if (d < absl::Minutes(2)) return absl::StrCat(absl::ToInt64Seconds(d), "s");
  if (d < absl::Hours(2)) return absl::StrCat(absl::ToInt64Minutes(d), "m");
  if (d < absl::Hours(48)) return absl::StrCat(absl::ToInt64Hours(d), "h");
  return absl::StrCat(absl::ToInt64Hours(d) / 24, "d");
}

const char* PhaseName(hosting::v1::ServicePhase p) {
  switch (p) {
    case hosting::v1::SERVICE_PHASE_READY:
      return "Ready";
    case hosting::v1::SERVICE_PHASE_PROGRESSING:
      return "Progressing";
    case hosting::v1::SERVICE_PHASE_DEGRADED:
      return "Degraded";
    default:
      return "-";
  }
}

const char* AvailabilityName(hosting::v1::NodeAvailability a) {
  switch (a) {
    case hosting::v1::NODE_AVAILABILITY_ACTIVE:
      return "active";
    case hosting::v1::NODE_AVAILABILITY_PAUSE:
      return "pause";
    case hosting::v1::NODE_AVAILABILITY_DRAIN:
      return "drain";
    default:
      return "-";
  }
}

std::string FormatTime(const google::protobuf::Timestamp& ts) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ",
                          FromTimestamp(ts),
                          absl::UTCTimeZone());
}

}  // namespace

absl::StatusOr<Format> ParseFormat(const std::string& name) {
  if (name == "table" || name.empty()) return Format::kTable;
  if (name == "json") return Format::kJson;
  if (name == "yaml") return Format::kYaml;
  return absl::InvalidArgumentError(
      absl::StrCat("-o must be table, json or yaml, got '", name, "'"));
}

void PrintMessage(const google::protobuf::Message& message, Format format, std::ostream& out) {
  if (format == Format::kYaml) {
    YAML::Emitter e;
    EmitYaml(nlohmann::json::parse(ToJsonText(message, false)), e);
    out << e.c_str() << "\n";
    return;
  }
  out << ToJsonText(message, true);
  if (format != Format::kJson || ToJsonText(message, true).back() != '\n') out << "\n";
}

std::string FormatTable(const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> widths;
  for (const auto& row : rows) {
    if (widths.size() < row.size()) widths.resize(row.size(), 0);
    for (size_t i = 0; i < row.size(); ++i) widths[i] = std::max(widths[i], row[i].size());
  }
  std::string out;
  for (const auto& row : rows) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      absl::StrAppend(&line, row[i]);
      if (i + 1 < row.size()) line.append(widths[i] - row[i].size() + 2, ' ');
    }
    absl::StrAppend(&out, line, "\n");
  }
  return out;
}

void PrintServices(const std::vector<hosting::v1::Service>& services, Format format,
                   std::ostream& out) {
  if (format != Format::kTable) {
    hosting::v1::ListServicesResponse list;
    for (const auto& s : services) *list.add_services() = s;
    PrintMessage(list, format, out);
    return;
  }
  std::vector<std::vector<std::string>> rows = {
      {"NAME", "REVISION", "IMAGE", "TASKS", "PHASE", "AGE", "MESSAGE"}};
  for (const auto& s : services) {
    rows.push_back({s.spec().name(), absl::StrCat(s.revision()), s.spec().image(),
                    absl::StrCat(s.status().running_tasks(), "/", s.spec().replicas()),
                    PhaseName(s.status().phase()), Age(s.created_at()), s.status().message()});
  }
  out << FormatTable(rows);
}

void PrintService(const hosting::v1::Service& s, Format format, std::ostream& out) {
  if (format != Format::kTable) {
    PrintMessage(s, format, out);
    return;
  }
  out << FormatTable({
      {"Name:", s.spec().name()},
      {"Image:", s.spec().image()},
      {"Revision:", absl::StrCat(s.revision())},
      {"Generation:", absl::StrCat(s.generation())},
      {"Replicas:", absl::StrCat(s.status().running_tasks(), " running / ", s.spec().replicas(),
                                 " desired")},
      {"Phase:", PhaseName(s.status().phase())},
      {"Message:", s.status().message()},
      {"Created:", s.has_created_at() ? FormatTime(s.created_at()) : "-"},
      {"Updated:", s.has_updated_at() ? FormatTime(s.updated_at()) : "-"},
  });
  if (s.status().revisions_size() > 0) {
    out << "\n";
    std::vector<std::vector<std::string>> rows = {
        {"REVISION", "SWARM SERVICE", "IMAGE", "TASKS", "CURRENT"}};
    for (const auto& r : s.status().revisions()) {
      rows.push_back({absl::StrCat(r.revision()), r.swarm_service_name(), r.image(),
                      absl::StrCat(r.running_tasks(), "/", r.desired_replicas()),
                      r.current() ? "yes" : "no"});
    }
    out << FormatTable(rows);
  }
}

const char* AgentStateName(hosting::v1::AgentState s) {
  switch (s) {
    case hosting::v1::AGENT_STATE_CONNECTED:
      return "connected";
    case hosting::v1::AGENT_STATE_LOST:
      return "lost";
    default:
      return "absent";
  }
}

std::string Millis(const google::protobuf::Duration& d) {
  if (d.seconds() == 0 && d.nanos() == 0) return "-";
  return absl::StrFormat("%.1fms", TimeUtil::DurationToNanoseconds(d) / 1e6);
}

void PrintServiceHealth(const hosting::v1::ServiceHealthStatus& status, Format format,
                        std::ostream& out) {
  if (format != Format::kTable) {
    PrintMessage(status, format, out);
    return;
  }
  out << status.name() << ": " << PhaseName(status.status().phase()) << ", "
      << status.status().message() << "\n\n";
  std::vector<std::vector<std::string>> rows = {{"REVISION", "DESIRED", "RUNNING", "HEALTHY",
                                                 "UNHEALTHY", "STARTING", "UNKNOWN", "RPS", "ERRORS", "P50",
                                                 "P95", "P99", "CPU", "MEMORY"}};
  for (const auto& r : status.revisions()) {
    rows.push_back({absl::StrCat(r.revision()), absl::StrCat(r.desired()), absl::StrCat(r.running()),
                    absl::StrCat(r.healthy()), absl::StrCat(r.unhealthy()), absl::StrCat(r.starting()),
                    absl::StrCat(r.unknown()),
                    absl::StrFormat("%.1f", r.requests_per_second()),
                    absl::StrFormat("%.2f%%", r.error_ratio() * 100), Millis(r.latency_p50()),
                    Millis(r.latency_p95()), Millis(r.latency_p99()),
                    absl::StrFormat("%.3f", r.cpu_cores()),
                    absl::StrFormat("%.1fMiB", r.memory_bytes() / 1048576.0)});
  }
  out << FormatTable(rows);
}

void PrintNodes(const std::vector<hosting::v1::Node>& nodes, Format format, std::ostream& out) {
  if (format != Format::kTable) {
    hosting::v1::ListNodesResponse list;
    for (const auto& n : nodes) *list.add_nodes() = n;
    PrintMessage(list, format, out);
    return;
  }
  std::vector<std::vector<std::string>> rows = {
      {"ID", "HOSTNAME", "ROLE", "STATE", "AVAILABILITY", "ENGINE", "ADDRESS", "AGENT", "TASKS"}};
  for (const auto& n : nodes) {
    rows.push_back({n.id(), n.hostname(), n.role(), n.state(), AvailabilityName(n.availability()),
                    n.engine_version(), n.address(), AgentStateName(n.agent_state()),
                    absl::StrCat(n.running_tasks())});
  }
  out << FormatTable(rows);
}

namespace {
// Streams print one JSON object per line, or YAML documents. False for table format.
bool PrintStreamed(const google::protobuf::Message& m, Format format, std::ostream& out) {
  if (format == Format::kJson) {
    out << ToJsonText(m, false) << "\n" << std::flush;
    return true;
  }
  if (format == Format::kYaml) {
    out << "---\n";
    PrintMessage(m, format, out);
    out << std::flush;
    return true;
  }
  return false;
}
}  // namespace

void PrintEvent(const hosting::v1::Event& e, Format format, std::ostream& out) {
  if (PrintStreamed(e, format, out)) return;
  std::string subject = e.service().empty() ? "-" : e.service();
  if (e.revision() > 0) absl::StrAppend(&subject, "/r", e.revision());
  out << FormatTime(e.time()) << "  #" << e.sequence() << "  " << e.type() << "  " << subject
      << "  " << e.message() << "\n"
      << std::flush;
}

std::string ReleaseStateText(hosting::v1::ReleaseState state) {
  std::string name = hosting::v1::ReleaseState_Name(state);
  absl::string_view v = name;
  absl::ConsumePrefix(&v, "RELEASE_STATE_");
  std::string out = absl::AsciiStrToLower(v);
  std::replace(out.begin(), out.end(), '_', ' ');
  return out;
}

namespace {
std::string StrategyText(hosting::v1::ReleaseStrategy s) {
  std::string name = hosting::v1::ReleaseStrategy_Name(s);
  absl::string_view v = name;
  absl::ConsumePrefix(&v, "RELEASE_STRATEGY_");
  std::string out = absl::AsciiStrToLower(v);
  std::replace(out.begin(), out.end(), '_', '-');
  return out;
}
}  // namespace

std::string ReleaseSummary(const hosting::v1::Release& r) {
  std::string step = r.total_steps() > 0 ? absl::StrCat(" step ", std::min(r.current_step() + 1, r.total_steps()), "/", r.total_steps()) : "";
  return absl::StrCat(r.id(), " ", ReleaseStateText(r.state()), step, ", weight ",
                      absl::StrFormat("%.0f%%", r.weight()), r.exact_weights() ? "" : " (approx)",
                      ", r", r.to_revision(), " ", r.new_healthy(), "/", r.new_replicas(),
                      " ready, r", r.from_revision(), " ", r.stable_replicas(), " tasks");
}

void PrintReleases(const std::vector<hosting::v1::Release>& releases, Format format,
                   std::ostream& out) {
  if (format != Format::kTable) {
    hosting::v1::ListReleasesResponse list;
    for (const auto& r : releases) *list.add_releases() = r;
    PrintMessage(list, format, out);
    return;
  }
  std::vector<std::vector<std::string>> rows = {
      {"ID", "STRATEGY", "REVISIONS", "STATE", "STARTED", "MESSAGE"}};
  for (const auto& r : releases) {
    rows.push_back({r.id(), r.rollback() ? "rollback" : StrategyText(r.strategy()),
                    absl::StrCat(r.from_revision(), "->", r.to_revision()),
                    ReleaseStateText(r.state()), FormatTime(r.started_at()), r.message()});
  }
  out << FormatTable(rows);
}

namespace {

std::string VerdictText(hosting::v1::AnalysisVerdict verdict) {
  std::string name = hosting::v1::AnalysisVerdict_Name(verdict);
  absl::string_view v = name;
  absl::ConsumePrefix(&v, "ANALYSIS_VERDICT_");
  return absl::AsciiStrToLower(v);
}

// "Analysis 2 (step)": the analysis at `index` (from 0) of a release.
std::string AnalysisTitle(int index, const std::string& kind) {
  return absl::StrCat("Analysis ", index + 1, kind.empty() ? "" : absl::StrCat(" (", kind, ")"));
}

// One analysis: its verdict and reason, the judge's score, each metric's numbers.
void PrintAnalysis(const hosting::v1::AnalysisResult& a, const std::string& title,
                   std::ostream& out) {
  out << title << ": " << VerdictText(a.verdict()) << ": " << a.reason() << "\n";
  if (a.judged()) out << absl::StrFormat("  judge score: %.0f\n", a.score());
  // What the canary was compared with: the stable revision, or its baseline.
  const char* other = a.baseline() ? "baseline" : "stable";
  for (const auto& m : a.metrics()) {
    if (m.method().empty()) {
      out << "  " << m.metric()
          << absl::StrFormat(": canary %.4g, %s %.4g, threshold %.4g", m.canary(), other,
                             m.stable(), m.threshold())
          << "\n";
      continue;
    }
    // The judge's metrics: its test, the numbers it decided on, and its verdict.
    const bool latency = m.metric() == "latency";
    out << "  judge " << m.metric() << " (" << m.method() << "): " << VerdictText(m.verdict());
    if (m.verdict() != hosting::v1::ANALYSIS_VERDICT_INCONCLUSIVE) {
      out << (latency ? absl::StrFormat(", canary median %.2f ms, %s %.2f ms, %+.1f%%",
                                        m.canary() * 1e3, other, m.stable() * 1e3,
                                        m.effect() * 100)
                      : absl::StrFormat(", canary %.2f%%, %s %.2f%%, %+.2f points",
                                        m.canary() * 100, other, m.stable() * 100,
                                        m.effect() * 100))
          << absl::StrFormat(", p=%.3g", m.p_value());
    }
    out << ", samples " << m.canary_samples() << "/" << m.stable_samples()
        << (m.critical() ? ", critical" : "") << (m.dry_run() ? ", dry-run" : "") << "\n";
  }
}

}  // namespace

void PrintJudged(const hosting::v1::JudgeReleaseResponse& r, Format format, std::ostream& out) {
  if (format != Format::kTable) {
    PrintMessage(r, format, out);
    return;
  }
  if (r.analyses().empty()) {
    out << "release " << r.id() << " has no analysis with stored samples to judge\n";
    return;
  }
  for (const auto& j : r.analyses()) {
    PrintAnalysis(j.judged(),
                  absl::StrCat(AnalysisTitle(j.index(), j.kind()), " (was ",
                               VerdictText(j.original_verdict()), ")"),
                  out);
  }
}

void PrintRelease(const hosting::v1::Release& r, Format format, std::ostream& out) {
  if (format != Format::kTable) {
    PrintMessage(r, format, out);
    return;
  }
  out << "Release:    " << r.id() << (r.rollback() ? " (rollback)" : "") << "\n"
      << "Service:    " << r.service() << "\n"
      << "Strategy:   " << StrategyText(r.strategy()) << "\n"
      << "Revisions:  " << r.from_revision() << " -> " << r.to_revision() << "\n";
  if (r.baseline_revision() != 0) {
    out << "Baseline:   revision " << r.baseline_revision() << " (revision " << r.from_revision()
        << "'s spec, started with the canary; removed when the release ends)\n";
  }
  out << "State:      " << ReleaseStateText(r.state()) << "\n";
  if (r.total_steps() > 0) {
    out << "Step:       " << std::min(r.current_step() + 1, r.total_steps()) << "/"
        << r.total_steps() << "\n";
  }
  out << "Weight:     " << absl::StrFormat("%.1f%%", r.weight())
      << (r.exact_weights() ? " (exact, HAProxy)" : " (approximated by replica counts)") << "\n"
      << "Tasks:      revision " << r.to_revision() << ": " << r.new_healthy() << "/"
      << r.new_replicas() << " ready; revision " << r.from_revision() << ": "
      << r.stable_replicas() << "\n"
      << "Started:    " << FormatTime(r.started_at()) << "\n";
  if (r.has_finished_at()) out << "Finished:   " << FormatTime(r.finished_at()) << "\n";
  out << "Message:    " << r.message() << "\n";
  for (int i = 0; i < r.analyses_size(); ++i) {
    const auto& a = r.analyses(i);
    PrintAnalysis(a, AnalysisTitle(i, a.kind()), out);
  }
}

void PrintReleaseEvent(const hosting::v1::ReleaseEvent& e, Format format, std::ostream& out) {
  if (PrintStreamed(e, format, out)) return;
  out << FormatTime(e.time()) << "  " << e.type() << "  " << e.message() << "\n" << std::flush;
}

std::string MetricText(const hosting::v1::MetricTarget& m) {
  switch (m.kind()) {
    case hosting::v1::METRIC_KIND_CPU_UTILIZATION:
      return "cpu %";
    case hosting::v1::METRIC_KIND_MEMORY_UTILIZATION:
      return "memory %";
    case hosting::v1::METRIC_KIND_REQUESTS_PER_SECOND:
      return "rps/task";
    case hosting::v1::METRIC_KIND_IN_FLIGHT_REQUESTS:
      return "inflight/task";
    case hosting::v1::METRIC_KIND_LATENCY_P95_MS:
      return "p95 ms";
    case hosting::v1::METRIC_KIND_PROMQL:
      return absl::StrCat("promql(", m.promql(), ")");
    default:
      return "-";
  }
}

namespace {

std::string DurationText(const google::protobuf::Duration& d) {
  return absl::FormatDuration(FromDuration(d));
}

std::string RateText(const hosting::v1::RateLimit& r) {
  if (r.tasks() <= 0 && r.percent() <= 0) return "unlimited";
  std::vector<std::string> parts;
  if (r.tasks() > 0) parts.push_back(absl::StrCat(r.tasks(), " tasks"));
  if (r.percent() > 0) parts.push_back(absl::StrCat(r.percent(), "%"));
  return absl::StrCat(absl::StrJoin(parts, r.select() == "min" ? " and " : " or "), " per ",
                      DurationText(r.period()));
}

}  // namespace

void PrintAutoscalingPolicy(const hosting::v1::AutoscalingPolicy& p, Format format,
                            std::ostream& out) {
  if (format != Format::kTable) {
    PrintMessage(p, format, out);
    return;
  }
  out << "Service:      " << p.service() << "\n"
      << "Replicas:     " << p.min_replicas() << ".." << p.max_replicas() << "\n";
  for (const auto& m : p.metrics()) {
    out << "Metric:       " << MetricText(m) << " target " << m.target() << "\n";
  }
  out << "Tolerance:    " << p.tolerance() * 100 << "%\n"
      << "Windows:      scale-up " << DurationText(p.scale_up_stabilization()) << ", scale-down "
      << DurationText(p.scale_down_stabilization()) << "\n"
      << "Rate:         up " << RateText(p.scale_up_rate()) << "; down "
      << RateText(p.scale_down_rate()) << "\n"
      << "Interval:     " << DurationText(p.evaluation_interval())
      << (p.has_scale_up_metric_window()
              ? absl::StrCat("; scale-ups also every second on the last ",
                             DurationText(p.scale_up_metric_window()))
              : "")
      << "\n"
      << "To zero:      "
      << (p.scale_to_zero() ? "yes (when idle; a request held at HAProxy wakes it)" : "no")
      << "\n"
      << "Forecast:     "
      << (!p.forecast().enabled() ? "off"
          : p.forecast().shadow() ? "shadow (recorded, not acted on)"
                                  : "on")
      << (p.forecast().enabled() && p.forecast().has_horizon()
              ? absl::StrCat(", horizon ", DurationText(p.forecast().horizon()))
              : "")
      << "\n";
}

void PrintAutoscalingStatus(const hosting::v1::AutoscalingStatus& s, Format format,
                            std::ostream& out) {
  if (format != Format::kTable) {
    PrintMessage(s, format, out);
    return;
  }
  out << "Service:      " << s.service() << "\n";
  if (!s.has_evaluated_at()) {
    out << "Message:      " << s.message() << "\n";
    return;
  }
  out << "Replicas:     " << s.current_replicas() << " (desired " << s.desired_replicas() << ", "
      << s.ready_replicas() << " ready)"
      << (s.release_id().empty() ? "" : absl::StrCat(", split over release ", s.release_id()))
      << "\n"
      << "Evaluated:    " << FormatTime(s.evaluated_at()) << " (" << Age(s.evaluated_at())
      << " ago)\n"
      << "Message:      " << s.message() << "\n";
  if (s.has_forecast_horizon()) {
    out << "Forecast:     "
        << absl::StrFormat("%.1f rps in %s", s.forecast_requests_per_second(),
                           DurationText(s.forecast_horizon()))
        << "\n";
  }
  out << "Task start-up: " << DurationText(s.task_startup()) << "\n\n";
  std::vector<std::vector<std::string>> rows = {{"METRIC", "VALUE", "TARGET", "REPLICAS"}};
  for (const auto& r : s.recommendations()) {
    rows.push_back({MetricText(r.metric()),
                    r.missing() ? "no data" : absl::StrFormat("%.4g", r.value()),
                    absl::StrFormat("%.4g", r.metric().target()),
                    r.missing() ? "-" : absl::StrCat(r.recommended_replicas())});
  }
  out << FormatTable(rows);
  if (s.history_size() == 0) return;
  out << "\n";
  std::vector<std::vector<std::string>> history = {{"TIME", "FROM", "TO", "REASON"}};
  for (const auto& d : s.history()) {
    history.push_back({FormatTime(d.time()), absl::StrCat(d.from_replicas()),
                       absl::StrCat(d.to_replicas(), d.shadow() ? " (shadow)" : ""), d.reason()});
  }
  out << FormatTable(history);
}

}  // namespace hosting::hostctl
