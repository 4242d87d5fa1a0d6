#include "controlplane/release/release_machine.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/proto_time.h"
#include "controlplane/release/analysis.h"
#include "google/protobuf/util/time_util.h"

namespace hosting::controlplane {
namespace {

using google::protobuf::util::TimeUtil;
using hosting::internal::ReleaseRecord;
using hosting::v1::ReleaseState;


constexpr absl::Duration kDefaultMinHealthy = absl::ZeroDuration();
constexpr absl::Duration kDefaultProgressDeadline = absl::Minutes(5);
constexpr absl::Duration kDefaultScaleDownDelay = absl::Minutes(10);
constexpr absl::Duration kRollbackDeadline = absl::Minutes(2);

void Note(ReleaseRecord& r, std::vector<ReleaseNote>& notes, std::string type, std::string message,
          std::map<std::string, std::string> attrs = {}) {
  r.mutable_release()->set_message(message);
  notes.push_back({std::move(type), std::move(message), std::move(attrs)});
}

int32_t Replicas(const ServiceRecord& s, int64_t rev) {
  auto it = s.rollout.replicas().find(rev);
  return it == s.rollout.replicas().end() ? 0 : it->second;
}
void SetReplicas(ServiceRecord& s, int64_t rev, int32_t n) {
  (*s.rollout.mutable_replicas())[rev] = n;
}

const std::vector<TaskView>& TasksOf(const Observation& obs, int64_t rev) {
  static const std::vector<TaskView> kNone;
  auto it = obs.tasks.find(rev);
  return it == obs.tasks.end() ? kNone : it->second;
}

int ReadyCount(const Observation& obs, int64_t rev, absl::Duration min_healthy) {
  int n = 0;
  for (const auto& t : TasksOf(obs, rev)) {
    if (t.ready && obs.now - t.ready_since >= min_healthy) ++n;
  }
  return n;
}

// No task of `rev` is ready or has a session open on the balancer: none of it serves.
bool NeverServed(const Observation& obs, int64_t rev) {
  for (const auto& t : TasksOf(obs, rev)) {
    if (t.ready) return false;
    if (auto it = obs.sessions.find(t.id); it != obs.sessions.end() && it->second > 0) {
      return false;
    }
  }
  return true;
}

// The tasks failing their health check, and the last error of one of them.
int UnhealthyCount(const Observation& obs, int64_t rev, std::string* detail) {
  int n = 0;
  for (const auto& t : TasksOf(obs, rev)) {
    if (!t.unhealthy) continue;
    ++n;
    if (detail != nullptr && !t.detail.empty()) *detail = t.detail;
  }
  return n;
}

// The surge of a rolling release: its max_surge when set; else sized once, on the first batch,
// by the nodes' spare memory (1 to n tasks), or 25 % when no node reports it.
int32_t RollingSurge(ReleaseRecord& r, const Observation& obs, int32_t n,
                     std::vector<ReleaseNote>& notes) {
  const auto& rolling = r.policy().rolling();
  if (rolling.has_max_surge()) return ReleaseMachine::Resolve(rolling.max_surge(), n, 25, true);
  if (r.auto_surge() == 0) {
    if (obs.spare_tasks < 0) {
      r.set_auto_surge(std::max(1, ReleaseMachine::Resolve(rolling.max_surge(), n, 25, true)));
      Note(r, notes, "surge.sized",
           absl::StrCat("surge ", r.auto_surge(),
                        " task(s) (25 %): no node has reported its available memory"),
           {{"surge", absl::StrCat(r.auto_surge())}});
    } else {
      r.set_auto_surge(std::clamp(obs.spare_tasks, 1, std::max(1, n)));
      Note(r, notes, "surge.sized",
           absl::StrFormat("surge %d task(s): the nodes have memory for %d more at %d MiB a task",
                           r.auto_surge(), obs.spare_tasks, obs.task_memory_bytes >> 20),
           {{"surge", absl::StrCat(r.auto_surge())},
            {"spare_tasks", absl::StrCat(obs.spare_tasks)}});
    }
  }
  return std::min(r.auto_surge(), std::max(1, n));
}

// Tasks a canary (or its baseline) needs for `w` % of a service of `n` tasks: with HAProxy's
// exact weights its share of the tasks, without them as many as make `w` % by count beside the
// stable revision's n.
int32_t TasksFor(int32_t n, double w, bool router) {
  if (w <= 0) return 0;
  return std::max(1, router ? static_cast<int32_t>(std::ceil(n * w / 100.0 - 1e-9))
                            : static_cast<int32_t>(std::ceil(n * w / (100.0 - w) - 1e-9)));
}

// The share of traffic a canary's baseline gets beside a canary at `w` %: the same, as far as
// the rest of the traffic allows.
double BaselineWeight(double w) { return std::clamp(std::min(w, 100 - w), 0.0, 50.0); }

// The revision a canary's analyses compare with: its baseline when it runs one, else stable.
int64_t ComparedRevision(const ReleaseRecord& r) {
  return r.release().baseline_revision() != 0 ? r.release().baseline_revision()
                                              : r.stable_revision();
}

// That revision as the release's notes name it.
std::string ComparedName(const ReleaseRecord& r) {
  if (r.release().baseline_revision() == 0) return absl::StrCat("revision ", r.stable_revision());
  return absl::StrCat("its baseline revision ", r.release().baseline_revision(), " (revision ",
                      r.stable_revision(), "'s spec, started with it)");
}

// The canary judged against the compared revision (Analyze), with what it was compared with
// recorded; a baseline's reason says so.
hosting::v1::AnalysisResult AnalyzeAgainst(const ReleaseRecord& r,
                                           const hosting::v1::AnalysisSpec& spec,
                                           const RevisionMetrics* compared,
                                           const RevisionMetrics& canary,
                                           const PromqlResults& promql) {
  const bool baseline = compared != nullptr && r.release().baseline_revision() != 0;
  hosting::v1::AnalysisResult res =
      Analyze(spec, compared, canary, promql, baseline ? "baseline" : "stable");
  if (compared == nullptr) return res;
  res.set_compared_revision(ComparedRevision(r));
  if (!baseline) return res;
  res.set_baseline(true);
  res.set_reason(absl::StrCat("against baseline revision ", r.release().baseline_revision(), ": ",
                              res.reason()));
  return res;
}

absl::Duration MinHealthy(const ReleaseRecord& r) {
  return r.policy().rolling().has_min_healthy_time()
             ? FromDuration(r.policy().rolling().min_healthy_time())
             : kDefaultMinHealthy;
}

absl::Duration ProgressDeadline(const ReleaseRecord& r) {
  const absl::Duration d = FromDuration(r.policy().rolling().progress_deadline());
  return d > absl::ZeroDuration() ? d : kDefaultProgressDeadline;  // zero: the default
}

}  // namespace

int64_t TaskMemoryNeed(const hosting::v1::ServiceSpec& spec, const std::vector<int64_t>& observed) {
  constexpr int64_t kMiB = int64_t{1} << 20;
  if (spec.resources().memory_limit_bytes() > 0) return spec.resources().memory_limit_bytes();
  int64_t used = 0;
  for (int64_t m : observed) used = std::max(used, m);
  if (used == 0 && spec.resources().memory_reservation_bytes() == 0) return 256 * kMiB;
  return std::max({spec.resources().memory_reservation_bytes(), used + used / 2, 64 * kMiB});
}

int32_t SpareTasks(const std::vector<NodeMemory>& nodes, int64_t task_bytes) {
  if (task_bytes <= 0) return -1;
  int64_t spare = 0;
  bool reported = false;
  for (const NodeMemory& node : nodes) {
    if (node.available_bytes <= 0) continue;
    reported = true;
    const int64_t reserve = std::max(node.total_bytes / 10, int64_t{256} << 20);
    spare += std::max<int64_t>(0, node.available_bytes - reserve) / task_bytes;
  }
  if (!reported) return -1;
  return static_cast<int32_t>(std::min<int64_t>(spare, 1 << 20));
}

bool IsTerminalState(ReleaseState s) { return s >= hosting::v1::RELEASE_STATE_SUCCEEDED; }

const char* ReleaseStateName(ReleaseState s) {
  switch (s) {
    case hosting::v1::RELEASE_STATE_PENDING: return "pending";
    case hosting::v1::RELEASE_STATE_PROGRESSING: return "progressing";
    case hosting::v1::RELEASE_STATE_PAUSED: return "paused";
    case hosting::v1::RELEASE_STATE_WAITING_FOR_PROMOTION: return "waiting for promotion";
    case hosting::v1::RELEASE_STATE_ROLLING_BACK: return "rolling back";
    case hosting::v1::RELEASE_STATE_SUCCEEDED: return "succeeded";
    case hosting::v1::RELEASE_STATE_ROLLED_BACK: return "rolled back";
    case hosting::v1::RELEASE_STATE_FAILED: return "failed";
    case hosting::v1::RELEASE_STATE_ABORTED: return "aborted";
    case hosting::v1::RELEASE_STATE_TIMED_OUT: return "timed out";
    default: return "unknown";
  }
}

int32_t ReleaseMachine::Resolve(const hosting::v1::IntOrPercent& v, int32_t total,
                                int32_t fallback_percent, bool round_up) {
  double pct = fallback_percent;
  if (v.has_count()) return std::max(0, v.count());
  if (v.has_percent()) pct = v.percent();
  double x = total * pct / 100.0;
  return static_cast<int32_t>(round_up ? std::ceil(x - 1e-9) : std::floor(x + 1e-9));
}

hosting::v1::ReleasePolicy ReleaseMachine::ResolvePolicy(
    const hosting::v1::ReleasePolicy& service_policy, const hosting::v1::ReleasePolicy* override) {
  hosting::v1::ReleasePolicy p = service_policy;
  if (override != nullptr) {
    const auto& o = *override;
    if (o.strategy() != hosting::v1::RELEASE_STRATEGY_UNSPECIFIED) p.set_strategy(o.strategy());
    if (o.has_rolling()) *p.mutable_rolling() = o.rolling();
    if (o.has_canary()) *p.mutable_canary() = o.canary();
    if (o.has_blue_green()) *p.mutable_blue_green() = o.blue_green();
  }
  if (p.strategy() == hosting::v1::RELEASE_STRATEGY_UNSPECIFIED) {
    p.set_strategy(hosting::v1::RELEASE_STRATEGY_ROLLING);
  }
  if (p.strategy() == hosting::v1::RELEASE_STRATEGY_RECREATE) {
    p.set_strategy(hosting::v1::RELEASE_STRATEGY_ROLLING);
    p.mutable_rolling()->mutable_max_surge()->set_percent(100);
    if (!p.rolling().has_min_healthy_time()) {
      *p.mutable_rolling()->mutable_min_healthy_time() = ToDuration(absl::ZeroDuration());
    }
  }
  return p;
}

ReleaseRecord ReleaseMachine::Begin(ServiceRecord& service, const hosting::v1::ServiceSpec& spec,
                                    int64_t revision, int64_t baseline_revision,
                                    const hosting::v1::ReleasePolicy& policy,
                                    const std::string& reason, absl::Time now) {
  ReleaseRecord r;
  *r.mutable_policy() = policy;
  auto* rel = r.mutable_release();
  rel->set_service(service.spec.name());
  rel->set_from_revision(service.revision);
  rel->set_to_revision(revision);
  rel->set_strategy(policy.strategy());
  rel->set_state(hosting::v1::RELEASE_STATE_PENDING);
  rel->set_message(reason.empty() ? "release accepted" : absl::StrCat("release accepted: ", reason));
  *rel->mutable_started_at() = ToTimestamp(now);
  *rel->mutable_updated_at() = ToTimestamp(now);
  r.set_stable_revision(service.revision);
  *r.mutable_stable_spec() = service.spec;
  r.set_target_replicas(spec.replicas());
  if (rel->strategy() == hosting::v1::RELEASE_STRATEGY_CANARY) {
    rel->set_total_steps(static_cast<int32_t>(CanarySteps(policy).size()));
  }

  const int64_t stable = service.revision;
  const int32_t stable_replicas = service.spec.replicas();
  service.spec = spec;
  service.revision = revision;
  service.rollout.Clear();  // a warm revision from an earlier blue-green goes now
  (*service.rollout.mutable_replicas())[stable] = stable_replicas;
  (*service.rollout.mutable_replicas())[revision] = 0;
  // Until the strategy says otherwise, traffic stays where it is.
  if (rel->strategy() != hosting::v1::RELEASE_STRATEGY_ROLLING) {
    (*service.rollout.mutable_weights())[stable] = 100;
    (*service.rollout.mutable_weights())[revision] = 0;
  }
  if (baseline_revision != 0 && rel->strategy() == hosting::v1::RELEASE_STRATEGY_CANARY) {
    rel->set_baseline_revision(baseline_revision);
    (*service.rollout.mutable_replicas())[baseline_revision] = 0;
    (*service.rollout.mutable_weights())[baseline_revision] = 0;
    (*service.rollout.mutable_baseline_of())[baseline_revision] = stable;
  }
  return r;
}

ReleaseRecord ReleaseMachine::BeginRollback(ServiceRecord& service, const RevisionRecord& target,
                                            const std::string& reason, absl::Duration deadline,
                                            absl::Time now) {
  const bool warm = service.rollout.warm_revision() == target.revision;
  const int32_t n = service.spec.replicas();
  ReleaseRecord r;
  r.mutable_policy()->set_strategy(hosting::v1::RELEASE_STRATEGY_ROLLING);
  auto* rel = r.mutable_release();
  rel->set_service(service.spec.name());
  rel->set_from_revision(service.revision);
  rel->set_to_revision(target.revision);
  rel->set_strategy(hosting::v1::RELEASE_STRATEGY_ROLLING);
  rel->set_rollback(true);
  rel->set_state(hosting::v1::RELEASE_STATE_ROLLING_BACK);
  rel->set_message(absl::StrCat("rollback to revision ", target.revision, warm ? " (warm)" : "",
                                reason.empty() ? "" : ": " + reason));
  *rel->mutable_started_at() = ToTimestamp(now);
  *rel->mutable_updated_at() = ToTimestamp(now);
  r.set_final_state(hosting::v1::RELEASE_STATE_SUCCEEDED);
  r.set_stable_revision(target.revision);
  *r.mutable_stable_spec() = target.spec;
  r.set_target_replicas(n);
  *r.mutable_deadline() = ToTimestamp(now + deadline);
  *r.mutable_progress_at() = ToTimestamp(now);

  service.rollout.Clear();
  (*service.rollout.mutable_replicas())[service.revision] = n;
  (*service.rollout.mutable_replicas())[target.revision] = warm ? n : 0;
  return r;
}

std::vector<hosting::v1::CanaryStep> ReleaseMachine::CanarySteps(
    const hosting::v1::ReleasePolicy& p) {
  std::vector<hosting::v1::CanaryStep> steps(p.canary().steps().begin(), p.canary().steps().end());
  if (!steps.empty()) return steps;
  for (uint32_t w : {10u, 50u}) {
    steps.emplace_back().set_set_weight(w);
    steps.emplace_back().mutable_analysis();
  }
  steps.emplace_back().set_set_weight(100);
  return steps;
}

void ReleaseMachine::Fail(ReleaseRecord& r, ReleaseState final_state, const std::string& reason,
                          absl::Time now, Notes& notes) const {
  r.mutable_release()->set_state(hosting::v1::RELEASE_STATE_ROLLING_BACK);
  r.set_final_state(final_state);
  r.set_failure_reason(reason);
  *r.mutable_progress_at() = ToTimestamp(now);
  *r.mutable_deadline() = ToTimestamp(now + kRollbackDeadline);
  r.clear_analysis_started_at();
  EndBackground(r, now, "the release is rolling back");
  Note(r, notes, "rolling_back",
       absl::StrCat(reason, "; rolling back to revision ", r.stable_revision()),
       {{"final_state", ReleaseStateName(final_state)}});
}

bool ReleaseMachine::DeadlinePassed(ReleaseRecord& r, absl::Time now, Notes& notes) const {
  const absl::Duration limit = ProgressDeadline(r);
  if (now - FromTimestamp(r.progress_at()) <= limit) return false;
  Fail(r, hosting::v1::RELEASE_STATE_TIMED_OUT,
       absl::StrCat("no progress for ", absl::FormatDuration(limit), " (progress deadline): ",
                    r.release().new_healthy(), "/", r.release().new_replicas(),
                    " tasks of revision ", r.release().to_revision(), " ready"),
       now, notes);
  return true;
}

void ReleaseMachine::SetWeights(ReleaseRecord& r, ServiceRecord& s, double weight,
                                Notes& notes) const {
  const int64_t to = r.release().to_revision();
  const int64_t stable = r.stable_revision();
  const int64_t baseline = r.release().baseline_revision();
  const double baseline_weight = baseline != 0 ? BaselineWeight(weight) : 0;
  auto* w = s.rollout.mutable_weights();
  w->clear();
  (*w)[to] = weight;
  if (baseline != 0) (*w)[baseline] = baseline_weight;
  if (stable != to) (*w)[stable] = 100 - weight - baseline_weight;
  const bool changed = r.release().weight() != weight;
  r.mutable_release()->set_weight(weight);
  if (changed) {
    Note(r, notes, "weight.set",
         absl::StrFormat("%.0f%% of traffic to revision %d, %s%.0f%% to revision %d%s", weight,
                         to,
                         baseline != 0 && baseline_weight > 0
                             ? absl::StrFormat("%.0f%% to its baseline revision %d, ",
                                               baseline_weight, baseline)
                             : std::string(),
                         100 - weight - baseline_weight, stable,
                         r.release().exact_weights() ? "" : " (approximated by replica counts)"),
         {{"weight", absl::StrFormat("%.1f", weight)}});
  }
}

bool ReleaseMachine::ScaleDown(ReleaseRecord& r, ServiceRecord& s, const Observation& obs,
                               int64_t revision, int32_t to, Notes& notes) const {
  const int32_t current = Replicas(s, revision);
  if (r.drain_revision() != 0 && r.drain_revision() != revision) {
    // One drain at a time: the one under way goes on first.
    ScaleDown(r, s, obs, r.drain_revision(), r.drain_to(), notes);
    return false;
  }
  if (r.drain_revision() != revision) {
    if (current <= to) return true;
    std::vector<TaskView> tasks = TasksOf(obs, revision);
    // Swarm has yet to remove the tasks of the last scale-down: choose after it has.
    if (obs.router && static_cast<int32_t>(tasks.size()) > current) return false;
    // Swarm removes the highest slots first: drain those.
    std::sort(tasks.begin(), tasks.end(),
              [](const TaskView& a, const TaskView& b) { return a.slot > b.slot; });
    const size_t n = std::min<size_t>(tasks.size(), static_cast<size_t>(current - to));
    if (!obs.router || n == 0) {
      SetReplicas(s, revision, to);
      *r.mutable_progress_at() = ToTimestamp(obs.now);
      Note(r, notes, "batch.scaled_down",
           absl::StrCat("revision ", revision, " scaled from ", current, " to ", to, " tasks"),
           {{"revision", absl::StrCat(revision)}, {"replicas", absl::StrCat(to)}});
      return true;
    }
    std::vector<std::string> ids;
    for (size_t i = 0; i < n; ++i) {
      s.rollout.add_drain_tasks(tasks[i].id);
      ids.push_back(tasks[i].id.substr(0, 12));
    }
    r.set_drain_revision(revision);
    r.set_drain_to(to);
    *r.mutable_drain_started_at() = ToTimestamp(obs.now);
    Note(r, notes, "drain.started",
         absl::StrCat("draining ", absl::StrJoin(ids, ", "), " of revision ", revision,
                      " before scaling it to ", to),
         {{"revision", absl::StrCat(revision)}, {"tasks", absl::StrJoin(ids, ",")}});
    return false;
  }
  // A drain is under way: wait for its sessions to end, within the bound.
  int open = 0;
  for (const auto& id : s.rollout.drain_tasks()) {
    auto it = obs.sessions.find(id);
    if (it != obs.sessions.end()) open += it->second;
  }
  const absl::Duration waited = obs.now - FromTimestamp(r.drain_started_at());
  // One observation after the drain was written, HAProxy has applied it.
  if (waited <= absl::ZeroDuration() || (open > 0 && waited < options_.drain_timeout)) {
    return false;
  }
  const int32_t target = r.drain_to();
  SetReplicas(s, revision, target);
  r.set_drain_revision(0);
  r.set_drain_to(0);
  *r.mutable_progress_at() = ToTimestamp(obs.now);
  Note(r, notes, "batch.scaled_down",
       absl::StrCat("revision ", revision, " scaled from ", current, " to ", target,
                    " tasks after draining",
                    open > 0 ? absl::StrCat(" (", open, " sessions still open after ",
                                            absl::FormatDuration(options_.drain_timeout), ")")
                             : std::string(" (no open sessions)")),
       {{"revision", absl::StrCat(revision)}, {"replicas", absl::StrCat(target)}});
  return target <= to;
}

void ReleaseMachine::FollowTarget(ReleaseRecord& r, ServiceRecord& s, const Observation& obs,
                                  Notes& notes) const {
  const int32_t n = r.target_replicas();
  const int64_t to = r.release().to_revision();
  const int64_t stable = r.stable_revision();
  const auto strategy = r.release().strategy();
  const bool canary = strategy == hosting::v1::RELEASE_STRATEGY_CANARY;
  const std::vector<hosting::v1::CanaryStep> steps = CanarySteps(r.policy());
  const int step = r.release().current_step();
  // Nothing to fit: rolling batches work towards the target as it is, a finishing canary or a
  // switched blue-green is sized by Finish.
  if (n <= 0 || to == stable || (!canary && strategy != hosting::v1::RELEASE_STRATEGY_BLUE_GREEN) ||
      (canary && step >= static_cast<int>(steps.size())) || (!canary && r.switched())) {
    r.set_followed_replicas(n);
    return;
  }
  if (r.drain_revision() != 0) {
    // A scale-down under way ends before the next change.
    ScaleDown(r, s, obs, r.drain_revision(), r.drain_to(), notes);
    return;
  }
  std::map<int64_t, int32_t> want;
  // The stable revision serves the service; a canary its traffic share of it (the share the
  // current step is bringing it to, when that step sets a weight); green all of it.
  want[stable] = n;
  if (canary) {
    double w = r.release().weight();
    if (steps[step].action_case() == hosting::v1::CanaryStep::kSetWeight) {
      w = std::max<double>(w, std::min<uint32_t>(steps[step].set_weight(), 100));
    }
    if (w > 0 && w < 100) {
      want[to] = TasksFor(n, w, obs.router);
      // The baseline keeps the canary's share, and so its task count.
      if (const int64_t baseline = r.release().baseline_revision(); baseline != 0) {
        want[baseline] = TasksFor(n, BaselineWeight(w), obs.router);
      }
    }
  } else if (Replicas(s, to) > 0) {
    want[to] = n;
  }
  bool done = true;
  for (const auto& [rev, count] : want) {
    const int32_t current = Replicas(s, rev);
    if (count > current) {
      SetReplicas(s, rev, count);
      Note(r, notes, "batch.scaled",
           absl::StrCat("revision ", rev, " follows the service's new size of ", n, ": ", current,
                        " -> ", count, " tasks"),
           {{"revision", absl::StrCat(rev)}, {"replicas", absl::StrCat(count)}});
    } else if (count < current) {
      done &= ScaleDown(r, s, obs, rev, count, notes);
    }
  }
  if (done && r.drain_revision() == 0) r.set_followed_replicas(n);
}

hosting::v1::AnalysisVerdict ReleaseMachine::RunAnalysis(ReleaseRecord& r,
                                                         const hosting::v1::AnalysisSpec& in,
                                                         const Observation& obs,
                                                         bool compare_with_stable,
                                                         const char* kind,
                                                         Notes& notes) const {
  const hosting::v1::AnalysisSpec spec = AnalysisDefaults(in);
  auto* rel = r.mutable_release();
  const int64_t compared = ComparedRevision(r);
  if (!IsSet(r.analysis_started_at())) {
    *r.mutable_analysis_started_at() = ToTimestamp(obs.now);
    auto* a = rel->add_analyses();
    a->set_verdict(hosting::v1::ANALYSIS_VERDICT_RUNNING);
    a->set_kind(kind);
    *a->mutable_started_at() = ToTimestamp(obs.now);
    r.set_analysis_index(rel->analyses_size());
    Note(r, notes, "analysis.started",
         absl::StrCat("analysing revision ", rel->to_revision(),
                      compare_with_stable ? absl::StrCat(" against ", ComparedName(r))
                                          : std::string(),
                      " for ", absl::FormatDuration(FromDuration(spec.duration()))));
  }
  static const RevisionMetrics kEmpty;
  auto find = [&](int64_t rev) -> const RevisionMetrics& {
    auto it = obs.metrics.find(rev);
    return it == obs.metrics.end() ? kEmpty : it->second;
  };
  hosting::v1::AnalysisResult res =
      AnalyzeAgainst(r, spec, compare_with_stable ? &find(compared) : nullptr,
                     find(rel->to_revision()), obs.promql);
  hosting::v1::AnalysisResult* current = StepAnalysis(r);
  *current->mutable_metrics() = res.metrics();
  current->set_compared_revision(res.compared_revision());
  current->set_baseline(res.baseline());
  current->set_reason(res.reason());
  current->set_judged(res.judged());
  current->set_score(res.score());
  const bool expired = obs.now - FromTimestamp(r.analysis_started_at()) >= FromDuration(spec.duration());
  // A judge decides as soon as it has its samples: a pass need not wait out the duration.
  const bool judge_passed = spec.has_judge() && res.judged() &&
                            res.verdict() == hosting::v1::ANALYSIS_VERDICT_PASSED;
  if (res.verdict() != hosting::v1::ANALYSIS_VERDICT_FAILED && !expired && !judge_passed) {
    return hosting::v1::ANALYSIS_VERDICT_RUNNING;
  }
  current->set_verdict(res.verdict());
  *current->mutable_finished_at() = ToTimestamp(obs.now);
  if (compare_with_stable) {
    *current->mutable_samples() = SamplesOf(spec, find(compared), find(rel->to_revision()));
  }
  r.clear_analysis_started_at();
  std::map<std::string, std::string> attrs = {
      {"verdict", hosting::v1::AnalysisVerdict_Name(res.verdict())}};
  for (const auto& m : res.metrics()) {
    const std::string key = m.method().empty() ? m.metric() : absl::StrCat("judge.", m.metric());
    attrs[key + ".canary"] = absl::StrFormat("%.6g", m.canary());
    attrs[key + ".stable"] = absl::StrFormat("%.6g", m.stable());
    attrs[key + ".threshold"] = absl::StrFormat("%.6g", m.threshold());
    if (!m.method().empty()) {
      attrs[key + ".p_value"] = absl::StrFormat("%.4g", m.p_value());
      attrs[key + ".effect"] = absl::StrFormat("%.4g", m.effect());
    }
  }
  if (res.judged()) attrs["judge.score"] = absl::StrFormat("%.0f", res.score());
  const auto it = obs.metrics.find(rel->to_revision());
  attrs["canary_requests"] = absl::StrFormat("%.0f", it == obs.metrics.end() ? 0 : it->second.requests);
  Note(r, notes, "analysis.finished", res.reason(), std::move(attrs));
  return res.verdict();
}

void ReleaseMachine::PauseOnFailure(ReleaseRecord& r, const std::string& why, Notes& notes) {
  auto* rel = r.mutable_release();
  r.set_resume_state(hosting::v1::RELEASE_STATE_PROGRESSING);
  rel->set_state(hosting::v1::RELEASE_STATE_PAUSED);
  Note(r, notes, "paused",
       absl::StrFormat("%s; on_failure is pause: traffic stays at %.1f%% on revision %d until a "
                       "person decides: resume to analyse again, promote to skip, abort to roll "
                       "back",
                       why, rel->weight(), rel->to_revision()));
}

hosting::v1::AnalysisResult* ReleaseMachine::StepAnalysis(ReleaseRecord& r) {
  auto* rel = r.mutable_release();
  const int i = r.analysis_index();
  return rel->mutable_analyses(i > 0 && i <= rel->analyses_size() ? i - 1
                                                                  : rel->analyses_size() - 1);
}

bool ReleaseMachine::Background(ReleaseRecord& r, const Observation& obs, Notes& notes) const {
  const hosting::v1::AnalysisSpec spec = AnalysisDefaults(r.policy().canary().background_analysis());
  auto* rel = r.mutable_release();
  const int i = r.background_index();
  if (!IsSet(r.background_started_at()) || i <= 0 || i > rel->analyses_size()) {
    *r.mutable_background_started_at() = ToTimestamp(obs.now);
    auto* a = rel->add_analyses();
    a->set_kind("background");
    a->set_verdict(hosting::v1::ANALYSIS_VERDICT_RUNNING);
    *a->mutable_started_at() = ToTimestamp(obs.now);
    r.set_background_index(rel->analyses_size());
    Note(r, notes, "analysis.started",
         absl::StrCat("background analysis of revision ", rel->to_revision(), " against ",
                      ComparedName(r), " in windows of ",
                      absl::FormatDuration(FromDuration(spec.duration()))));
  }
  static const RevisionMetrics kEmpty;
  auto find = [&](int64_t rev) -> const RevisionMetrics& {
    auto it = obs.metrics.find(rev);
    return it == obs.metrics.end() ? kEmpty : it->second;
  };
  const int64_t compared = ComparedRevision(r);
  hosting::v1::AnalysisResult res =
      AnalyzeAgainst(r, spec, &find(compared), find(rel->to_revision()), obs.promql);
  auto* current = rel->mutable_analyses(r.background_index() - 1);
  *current->mutable_metrics() = res.metrics();
  current->set_compared_revision(res.compared_revision());
  current->set_baseline(res.baseline());
  current->set_reason(res.reason());
  current->set_judged(res.judged());
  current->set_score(res.score());
  const bool failed = res.verdict() == hosting::v1::ANALYSIS_VERDICT_FAILED;
  const bool expired =
      obs.now - FromTimestamp(r.background_started_at()) >= FromDuration(spec.duration());
  if (!failed && !expired) return false;
  // The window is judged: recorded, and the next one starts on the next tick. Only a failure
  // acts; an inconclusive window (too little traffic) leaves the steps to decide.
  current->set_verdict(res.verdict());
  *current->mutable_finished_at() = ToTimestamp(obs.now);
  *current->mutable_samples() = SamplesOf(spec, find(compared), find(rel->to_revision()));
  r.clear_background_started_at();
  Note(r, notes, "analysis.finished", absl::StrCat("background: ", res.reason()),
       {{"verdict", hosting::v1::AnalysisVerdict_Name(res.verdict())}, {"kind", "background"}});
  const bool inconclusive = res.verdict() == hosting::v1::ANALYSIS_VERDICT_INCONCLUSIVE;
  r.set_background_inconclusive(inconclusive ? r.background_inconclusive() + 1 : 0);
  if (inconclusive && spec.inconclusive_limit() > 0 &&
      r.background_inconclusive() >= static_cast<int32_t>(spec.inconclusive_limit())) {
    const std::string why =
        absl::StrCat(r.background_inconclusive(), " background analysis windows in a row were ",
                     "inconclusive (limit ", spec.inconclusive_limit(), "): ", res.reason());
    r.set_background_inconclusive(0);
    switch (spec.no_data()) {
      case hosting::v1::NO_DATA_POLICY_FAIL:
        Fail(r, hosting::v1::RELEASE_STATE_ROLLED_BACK,
             absl::StrCat(why, "; the no-data policy is fail"), obs.now, notes);
        return true;
      case hosting::v1::NO_DATA_POLICY_PASS:
        break;
      default:
        r.set_resume_state(hosting::v1::RELEASE_STATE_PROGRESSING);
        rel->set_state(hosting::v1::RELEASE_STATE_PAUSED);
        Note(r, notes, "paused",
             absl::StrCat(why, "; paused: resume to go on, abort to roll back"));
        return true;
    }
  }
  if (failed) {
    if (spec.on_failure() == hosting::v1::ANALYSIS_FAILURE_POLICY_PAUSE) {
      PauseOnFailure(r, absl::StrCat("background analysis failed (", res.reason(), ")"), notes);
    } else {
      Fail(r, hosting::v1::RELEASE_STATE_ROLLED_BACK,
           absl::StrCat("background analysis failed: ", res.reason()), obs.now, notes);
    }
  }
  return failed;
}

void ReleaseMachine::EndBackground(ReleaseRecord& r, absl::Time now, const std::string& why) {
  if (!IsSet(r.background_started_at())) return;
  auto* rel = r.mutable_release();
  const int i = r.background_index();
  if (i > 0 && i <= rel->analyses_size() &&
      rel->analyses(i - 1).verdict() == hosting::v1::ANALYSIS_VERDICT_RUNNING) {
    auto* a = rel->mutable_analyses(i - 1);
    a->set_verdict(hosting::v1::ANALYSIS_VERDICT_INCONCLUSIVE);
    a->set_reason(absl::StrCat(a->reason(), a->reason().empty() ? "" : "; ", why));
    *a->mutable_finished_at() = ToTimestamp(now);
  }
  r.clear_background_started_at();
}

void ReleaseMachine::Rolling(ReleaseRecord& r, ServiceRecord& s, const Observation& obs,
                             Notes& notes) const {
  const int32_t n = r.target_replicas();
  const int64_t to = r.release().to_revision();
  const int64_t stable = r.stable_revision();
  int32_t surge = RollingSurge(r, obs, n, notes);
  const int32_t unavailable = Resolve(r.policy().rolling().max_unavailable(), n, 0, false);
  if (surge == 0 && unavailable == 0) surge = 1;

  std::string detail;
  const int unhealthy = UnhealthyCount(obs, to, &detail);
  if (unhealthy >= std::max(1, std::min(surge, n))) {
    Fail(r, hosting::v1::RELEASE_STATE_ROLLED_BACK,
         absl::StrCat(unhealthy, " task(s) of revision ", to, " failed their health check",
                      detail.empty() ? std::string() : ": " + detail),
         obs.now, notes);
    return;
  }
  const int ready = ReadyCount(obs, to, MinHealthy(r));
  if (ready > r.release().new_healthy()) {
    *r.mutable_progress_at() = ToTimestamp(obs.now);
    Note(r, notes, "batch.healthy",
         absl::StrCat(ready, "/", n, " tasks of revision ", to, " ready"),
         {{"ready", absl::StrCat(ready)}});
  }
  r.mutable_release()->set_new_healthy(ready);

  // Old tasks go as new ones prove themselves, keeping n - max_unavailable ready.
  const int32_t old_target = std::max(0, n - unavailable - ready);
  if (r.drain_revision() == stable || old_target < Replicas(s, stable)) {
    ScaleDown(r, s, obs, stable, r.drain_revision() == stable ? r.drain_to() : old_target, notes);
  }
  // New tasks start while the total stays within n + max_surge. Tasks being drained already
  // take no traffic and are about to stop: like Kubernetes' terminating pods, they do not
  // count, so the next batch starts while they drain.
  const int32_t cur_new = Replicas(s, to);
  const int32_t old_serving = r.drain_revision() == stable ? r.drain_to() : Replicas(s, stable);
  const int32_t room = n + surge - (cur_new + old_serving);
  const int32_t add = std::min(room, n - cur_new);
  if (add > 0) {
    SetReplicas(s, to, cur_new + add);
    Note(r, notes, "batch.started",
         absl::StrCat("starting ", add, " task(s) of revision ", to, " (", cur_new + add, "/", n,
                      "); revision ", stable, " at ", Replicas(s, stable)),
         {{"new_replicas", absl::StrCat(cur_new + add)},
          {"stable_replicas", absl::StrCat(Replicas(s, stable))}});
  }
  if (Replicas(s, to) >= n && ready >= n && Replicas(s, stable) == 0 &&
      TasksOf(obs, stable).empty() && r.drain_revision() == 0) {
    Finish(r, s, obs, notes);
    return;
  }
  DeadlinePassed(r, obs.now, notes);
}

void ReleaseMachine::Finish(ReleaseRecord& r, ServiceRecord& s, const Observation& obs,
                            Notes& notes) const {
  EndBackground(r, obs.now, "ended with the last step");
  const int32_t n = r.target_replicas();
  const int64_t to = r.release().to_revision();
  if (Replicas(s, to) < n) SetReplicas(s, to, n);
  const int ready = ReadyCount(obs, to, absl::ZeroDuration());
  r.mutable_release()->set_new_healthy(ready);
  if (ready < n) {
    DeadlinePassed(r, obs.now, notes);
    return;
  }
  SetWeights(r, s, 100, notes);
  for (const auto& [rev, count] : std::map<int64_t, int32_t>(s.rollout.replicas().begin(),
                                                              s.rollout.replicas().end())) {
    if (rev == to) continue;
    if (!ScaleDown(r, s, obs, rev, 0, notes)) return;
    if (!TasksOf(obs, rev).empty()) return;  // wait for Swarm to stop them
  }
  s.rollout.Clear();
  auto* rel = r.mutable_release();
  rel->set_state(hosting::v1::RELEASE_STATE_SUCCEEDED);
  rel->set_current_step(rel->total_steps());
  *rel->mutable_finished_at() = ToTimestamp(obs.now);
  Note(r, notes, "finished",
       absl::StrCat("release succeeded: revision ", to, " runs all ", n, " tasks and all traffic"),
       {{"state", "succeeded"}});
}

void ReleaseMachine::Canary(ReleaseRecord& r, ServiceRecord& s, const Observation& obs,
                            Notes& notes) const {
  const std::vector<hosting::v1::CanaryStep> steps = CanarySteps(r.policy());
  const int32_t n = r.target_replicas();
  const int64_t to = r.release().to_revision();
  auto* rel = r.mutable_release();
  rel->set_total_steps(static_cast<int32_t>(steps.size()));

  std::string detail;
  if (const int bad = UnhealthyCount(obs, to, &detail); bad > 0) {
    Fail(r, hosting::v1::RELEASE_STATE_ROLLED_BACK,
         absl::StrCat(bad, " canary task(s) of revision ", to, " failed their health check",
                      detail.empty() ? std::string() : ": " + detail),
         obs.now, notes);
    return;
  }
  const int64_t baseline = rel->baseline_revision();
  if (const int bad = baseline != 0 ? UnhealthyCount(obs, baseline, &detail) : 0; bad > 0) {
    Fail(r, hosting::v1::RELEASE_STATE_ROLLED_BACK,
         absl::StrCat(bad, " baseline task(s) of revision ", baseline, " (revision ",
                      r.stable_revision(), "'s spec) failed their health check, so the canary ",
                      "has nothing to be compared with",
                      detail.empty() ? std::string() : ": " + detail),
         obs.now, notes);
    return;
  }
  // The background analysis watches the canary from its first share of traffic on.
  if (r.policy().canary().has_background_analysis() && rel->weight() > 0 &&
      rel->state() == hosting::v1::RELEASE_STATE_PROGRESSING && Background(r, obs, notes)) {
    return;
  }
  for (int guard = 0; guard < 64; ++guard) {
    if (rel->state() != hosting::v1::RELEASE_STATE_PROGRESSING) return;
    const int i = rel->current_step();
    if (i >= static_cast<int>(steps.size())) {
      Finish(r, s, obs, notes);
      return;
    }
    auto next = [&] {
      rel->set_current_step(i + 1);
      *r.mutable_step_started_at() = ToTimestamp(obs.now);
      *r.mutable_progress_at() = ToTimestamp(obs.now);
      r.set_promoted(false);
      if (i + 1 < static_cast<int>(steps.size())) {
        notes.push_back({"step.started", absl::StrCat("step ", i + 2, "/", steps.size()),
                         {{"step", absl::StrCat(i + 1)}}});
      }
    };
    const hosting::v1::CanaryStep& step = steps[i];
    switch (step.action_case()) {
      case hosting::v1::CanaryStep::kSetWeight: {
        const double w = std::min<uint32_t>(step.set_weight(), 100);
        if (w >= 100) {
          rel->set_current_step(static_cast<int32_t>(steps.size()));
          continue;
        }
        const int32_t need = TasksFor(n, w, obs.router);
        if (Replicas(s, to) < need) {
          SetReplicas(s, to, need);
          Note(r, notes, "batch.started",
               absl::StrCat("starting ", need, " canary task(s) of revision ", to, " for ", w,
                            "% of traffic"),
               {{"new_replicas", absl::StrCat(need)}});
        }
        // The baseline starts with the canary, so that both are equally cold.
        int32_t baseline_need = 0;
        if (baseline != 0) {
          baseline_need = TasksFor(n, BaselineWeight(w), obs.router);
          if (Replicas(s, baseline) < baseline_need) {
            SetReplicas(s, baseline, baseline_need);
            Note(r, notes, "baseline.started",
                 absl::StrCat("starting ", baseline_need, " baseline task(s) of revision ",
                              baseline, " (revision ", r.stable_revision(),
                              "'s spec, fresh) for ", BaselineWeight(w),
                              "% of traffic beside the canary"),
                 {{"revision", absl::StrCat(baseline)},
                  {"replicas", absl::StrCat(baseline_need)}});
          }
        }
        const int ready = ReadyCount(obs, to, absl::ZeroDuration());
        rel->set_new_healthy(ready);
        if (ready < need ||
            (baseline != 0 && ReadyCount(obs, baseline, absl::ZeroDuration()) < baseline_need)) {
          DeadlinePassed(r, obs.now, notes);
          return;
        }
        SetWeights(r, s, w, notes);
        next();
        continue;
      }
      case hosting::v1::CanaryStep::kPause: {
        if (!step.pause().has_duration()) {
          if (r.promoted()) {
            Note(r, notes, "promoted", absl::StrCat("manual gate at step ", i + 1, " passed"));
            next();
            continue;
          }
          rel->set_state(hosting::v1::RELEASE_STATE_WAITING_FOR_PROMOTION);
          Note(r, notes, "paused",
               absl::StrCat("waiting for promotion at step ", i + 1, "/", steps.size(),
                            " (hostctl release promote ", rel->id(), ")"));
          return;
        }
        if (obs.now - FromTimestamp(r.step_started_at()) < FromDuration(step.pause().duration())) return;
        next();
        continue;
      }
      case hosting::v1::CanaryStep::kAnalysis: {
        const hosting::v1::AnalysisVerdict v =
            RunAnalysis(r, step.analysis(), obs, true, "step", notes);
        if (v == hosting::v1::ANALYSIS_VERDICT_RUNNING) return;
        if (v == hosting::v1::ANALYSIS_VERDICT_PASSED) {
          next();
          continue;
        }
        const std::string reason = StepAnalysis(r)->reason();
        if (v == hosting::v1::ANALYSIS_VERDICT_FAILED) {
          if (step.analysis().on_failure() == hosting::v1::ANALYSIS_FAILURE_POLICY_PAUSE) {
            PauseOnFailure(r, absl::StrCat("analysis failed (", reason, ")"), notes);
            return;
          }
          Fail(r, hosting::v1::RELEASE_STATE_ROLLED_BACK, absl::StrCat("analysis failed: ", reason),
               obs.now, notes);
          return;
        }
        switch (step.analysis().no_data()) {
          case hosting::v1::NO_DATA_POLICY_FAIL:
            Fail(r, hosting::v1::RELEASE_STATE_ROLLED_BACK,
                 absl::StrCat("analysis inconclusive and the no-data policy is fail: ", reason),
                 obs.now, notes);
            return;
          case hosting::v1::NO_DATA_POLICY_PASS:
            next();
            continue;
          default:
            r.set_resume_state(hosting::v1::RELEASE_STATE_PROGRESSING);
            rel->set_state(hosting::v1::RELEASE_STATE_PAUSED);
            Note(r, notes, "paused",
                 absl::StrCat("analysis inconclusive (", reason, "); paused: resume to analyse ",
                              "again, promote to skip, or abort"));
            return;
        }
      }
      default:
        next();
        continue;
    }
  }
}

void ReleaseMachine::BlueGreen(ReleaseRecord& r, ServiceRecord& s, const Observation& obs,
                               Notes& notes) const {
  const int32_t n = r.target_replicas();
  const int64_t to = r.release().to_revision();
  const int64_t stable = r.stable_revision();
  auto* rel = r.mutable_release();
  rel->set_total_steps(3);  // green up, checked, switched
  if (Replicas(s, to) < n) SetReplicas(s, to, n);
  s.rollout.set_preview_revision(to);
  std::string detail;
  if (const int bad = UnhealthyCount(obs, to, &detail); bad > 0) {
    Fail(r, hosting::v1::RELEASE_STATE_ROLLED_BACK,
         absl::StrCat(bad, " task(s) of revision ", to, " failed their health check",
                      detail.empty() ? std::string() : ": " + detail),
         obs.now, notes);
    return;
  }
  const int ready = ReadyCount(obs, to, absl::ZeroDuration());
  if (ready > rel->new_healthy()) *r.mutable_progress_at() = ToTimestamp(obs.now);
  rel->set_new_healthy(ready);
  if (rel->current_step() == 0) {
    if (ready < n) {
      DeadlinePassed(r, obs.now, notes);
      return;
    }
    rel->set_current_step(1);
    Note(r, notes, "step.started",
         absl::StrCat("revision ", to, " runs all ", n, " tasks on the preview backend ",
                      s.spec.name(), "-preview"));
  }
  if (rel->current_step() == 1) {
    if (r.policy().blue_green().has_pre_switch_analysis()) {
      const auto v = RunAnalysis(r, r.policy().blue_green().pre_switch_analysis(), obs, false,
                                 "pre-switch", notes);
      if (v == hosting::v1::ANALYSIS_VERDICT_RUNNING) return;
      const std::string reason = StepAnalysis(r)->reason();
      const auto no_data = r.policy().blue_green().pre_switch_analysis().no_data();
      if (v == hosting::v1::ANALYSIS_VERDICT_FAILED ||
          (v == hosting::v1::ANALYSIS_VERDICT_INCONCLUSIVE &&
           no_data == hosting::v1::NO_DATA_POLICY_FAIL)) {
        Fail(r, hosting::v1::RELEASE_STATE_ROLLED_BACK,
             absl::StrCat("pre-switch analysis failed: ", reason), obs.now, notes);
        return;
      }
      if (v == hosting::v1::ANALYSIS_VERDICT_INCONCLUSIVE &&
          no_data != hosting::v1::NO_DATA_POLICY_PASS) {
        r.set_resume_state(hosting::v1::RELEASE_STATE_PROGRESSING);
        rel->set_state(hosting::v1::RELEASE_STATE_PAUSED);
        Note(r, notes, "paused", absl::StrCat("pre-switch analysis inconclusive (", reason,
                                              "); paused: resume, promote or abort"));
        return;
      }
    }
    rel->set_current_step(2);
  }
  if (rel->current_step() == 2) {
    if (r.policy().blue_green().manual_promotion() && !r.promoted()) {
      rel->set_state(hosting::v1::RELEASE_STATE_WAITING_FOR_PROMOTION);
      Note(r, notes, "paused",
           absl::StrCat("revision ", to, " is ready on ", s.spec.name(),
                        "-preview; waiting for promotion (hostctl release promote ", rel->id(), ")"));
      return;
    }
    SetWeights(r, s, 100, notes);
    r.set_switched(true);
    rel->set_current_step(3);
  }
  // Switched: keep the old revision warm, or retire it now.
  const absl::Duration delay = r.policy().blue_green().has_scale_down_delay()
                                   ? FromDuration(r.policy().blue_green().scale_down_delay())
                                   : kDefaultScaleDownDelay;
  s.rollout.set_preview_revision(0);
  if (delay <= absl::ZeroDuration()) {
    Finish(r, s, obs, notes);
    return;
  }
  s.rollout.set_release_id("");
  s.rollout.set_warm_revision(stable);
  *s.rollout.mutable_warm_until() = ToTimestamp(obs.now + delay);
  s.rollout.clear_drain_tasks();
  rel->set_state(hosting::v1::RELEASE_STATE_SUCCEEDED);
  *rel->mutable_finished_at() = ToTimestamp(obs.now);
  Note(r, notes, "finished",
       absl::StrCat("release succeeded: all traffic on revision ", to, "; revision ", stable,
                    " stays warm for ", absl::FormatDuration(delay), " for an instant rollback"),
       {{"state", "succeeded"}, {"warm_revision", absl::StrCat(stable)}});
}

void ReleaseMachine::RollBack(ReleaseRecord& r, ServiceRecord& s, const Observation& obs,
                              Notes& notes) const {
  const int32_t n = r.target_replicas();
  const int64_t stable = r.stable_revision();
  auto* rel = r.mutable_release();
  if (Replicas(s, stable) < n) SetReplicas(s, stable, n);
  const int ready = ReadyCount(obs, stable, absl::ZeroDuration());
  if (ready < n) {
    // Tasks share traffic by count until the stable revision is whole again: nothing healthy
    // is stopped before its replacement is ready.
    s.rollout.clear_weights();
    if (IsSet(r.deadline()) && obs.now > FromTimestamp(r.deadline())) {
      rel->set_state(hosting::v1::RELEASE_STATE_FAILED);
      *rel->mutable_finished_at() = ToTimestamp(obs.now);
      Note(r, notes, "finished",
           absl::StrCat("rollback did not finish: ", ready, "/", n, " tasks of revision ", stable,
                        " ready by the deadline; both revisions are left running"),
           {{"state", "failed"}});
    }
    return;
  }
  auto* w = s.rollout.mutable_weights();
  if (w->size() != 1 || w->count(stable) == 0) {
    w->clear();
    (*w)[stable] = 100;
    rel->set_weight(0);
    Note(r, notes, "weight.set",
         absl::StrCat("all traffic back on revision ", stable),
         {{"weight", "0"}, {"revision", absl::StrCat(stable)}});
  }
  for (const auto& [rev, count] : std::map<int64_t, int32_t>(s.rollout.replicas().begin(),
                                                              s.rollout.replicas().end())) {
    if (rev == stable) continue;
    if (r.drain_revision() != rev && NeverServed(obs, rev)) {
      // Nothing of it takes traffic (a version whose health never passed): nothing to drain,
      // and no reason to wait while Swarm stops its containers.
      if (count > 0) {
        SetReplicas(s, rev, 0);
        Note(r, notes, "batch.scaled_down",
             absl::StrCat("revision ", rev, " scaled from ", count,
                          " to 0 tasks (none of them served)"),
             {{"revision", absl::StrCat(rev)}, {"replicas", "0"}});
      }
      continue;
    }
    if (!ScaleDown(r, s, obs, rev, 0, notes)) return;
    if (!TasksOf(obs, rev).empty()) return;
  }
  hosting::v1::ServiceSpec spec = r.stable_spec();
  spec.set_replicas(s.spec.replicas());
  s.spec = spec;
  s.revision = stable;
  s.rollout.Clear();
  rel->set_state(r.final_state() == hosting::v1::RELEASE_STATE_UNSPECIFIED
                     ? hosting::v1::RELEASE_STATE_ROLLED_BACK
                     : r.final_state());
  *rel->mutable_finished_at() = ToTimestamp(obs.now);
  Note(r, notes, "finished",
       absl::StrCat(rel->rollback() ? "rollback succeeded" : "release ended",
                    ": revision ", stable, " runs all ", n, " tasks and all traffic (",
                    ReleaseStateName(rel->state()),
                    r.failure_reason().empty() ? "" : ": " + r.failure_reason(), ")"),
       {{"state", ReleaseStateName(rel->state())}});
}

std::vector<ReleaseNote> ReleaseMachine::Advance(ReleaseRecord& r, ServiceRecord& s,
                                                 const Observation& obs) const {
  Notes notes;
  auto* rel = r.mutable_release();
  if (IsTerminalState(rel->state())) return notes;
  if (r.followed_replicas() == 0) r.set_followed_replicas(r.target_replicas());
  if (s.spec.replicas() > 0 || r.target_replicas() == 0) r.set_target_replicas(s.spec.replicas());
  rel->set_exact_weights(obs.router);

  // Drained tasks that are gone leave the list; so do survivors of a finished scale-down
  // (Swarm removed other tasks than the drained ones).
  {
    std::map<std::string, int64_t> revision_of;
    for (const auto& [rev, tasks] : obs.tasks) {
      for (const auto& t : tasks) revision_of[t.id] = rev;
    }
    std::vector<std::string> keep;
    for (const auto& id : s.rollout.drain_tasks()) {
      auto it = revision_of.find(id);
      if (it == revision_of.end()) continue;
      if (r.drain_revision() != it->second &&
          static_cast<int32_t>(TasksOf(obs, it->second).size()) <= Replicas(s, it->second)) {
        // Swarm picks which task a scale-down stops (running ones last, then at random on a
        // node), so it may stop another one than the drained: that one went undrained (its
        // graceful stop, HAProxy's check and retries cover it), and this one takes traffic
        // again.
        Note(r, notes, "drain.missed",
             absl::StrCat("Swarm stopped another task of revision ", it->second, " than ",
                          id.substr(0, 12), ", which was drained for it; ", id.substr(0, 12),
                          " takes traffic again"),
             {{"revision", absl::StrCat(it->second)}, {"task", id.substr(0, 12)}});
        continue;
      }
      keep.push_back(id);
    }
    s.rollout.clear_drain_tasks();
    for (auto& id : keep) s.rollout.add_drain_tasks(id);
  }

  if (rel->state() == hosting::v1::RELEASE_STATE_PENDING) {
    rel->set_state(hosting::v1::RELEASE_STATE_PROGRESSING);
    *r.mutable_step_started_at() = ToTimestamp(obs.now);
    *r.mutable_progress_at() = ToTimestamp(obs.now);
    *rel->mutable_started_at() = ToTimestamp(obs.now);
    // New tasks get traffic only through the strategy: canary and blue-green start at 0 %.
    if (rel->strategy() == hosting::v1::RELEASE_STRATEGY_CANARY ||
        rel->strategy() == hosting::v1::RELEASE_STRATEGY_BLUE_GREEN) {
      auto* w = s.rollout.mutable_weights();
      w->clear();
      (*w)[r.stable_revision()] = 100;
      (*w)[rel->to_revision()] = 0;
      if (rel->baseline_revision() != 0) (*w)[rel->baseline_revision()] = 0;
    }
    Note(r, notes, "started",
         absl::StrCat(rel->rollback() ? "rollback" : "release", " of '", rel->service(),
                      "' from revision ", rel->from_revision(), " to ", rel->to_revision(), " (",
                      hosting::v1::ReleaseStrategy_Name(rel->strategy()), ", ",
                      r.target_replicas(), " tasks, ",
                      obs.router ? "exact weights through HAProxy"
                                 : "no HAProxy route: weights approximated by replica counts",
                      ")"));
  }
  if (r.followed_replicas() != r.target_replicas() &&
      (rel->state() == hosting::v1::RELEASE_STATE_PROGRESSING ||
       rel->state() == hosting::v1::RELEASE_STATE_PAUSED ||
       rel->state() == hosting::v1::RELEASE_STATE_WAITING_FOR_PROMOTION)) {
    FollowTarget(r, s, obs, notes);
  }
  switch (rel->state()) {
    case hosting::v1::RELEASE_STATE_PROGRESSING:
      switch (rel->strategy()) {
        case hosting::v1::RELEASE_STRATEGY_CANARY:
          Canary(r, s, obs, notes);
          break;
        case hosting::v1::RELEASE_STRATEGY_BLUE_GREEN:
          BlueGreen(r, s, obs, notes);
          break;
        default:
          Rolling(r, s, obs, notes);
      }
      // A step that decided to roll back starts the rollback on the same observation: traffic
      // returns to the stable revision now, not one tick later.
      if (rel->state() != hosting::v1::RELEASE_STATE_ROLLING_BACK) break;
      [[fallthrough]];
    case hosting::v1::RELEASE_STATE_ROLLING_BACK:
      RollBack(r, s, obs, notes);
      break;
    default:
      break;
  }
  rel->set_new_replicas(Replicas(s, rel->to_revision()));
  rel->set_stable_replicas(rel->to_revision() == r.stable_revision()
                               ? 0
                               : Replicas(s, r.stable_revision()));
  if (IsTerminalState(rel->state()) && rel->to_revision() == r.stable_revision()) {
    rel->set_stable_replicas(0);
  }
  if (!notes.empty()) *rel->mutable_updated_at() = ToTimestamp(obs.now);
  return notes;
}

absl::Status ReleaseMachine::Promote(ReleaseRecord& r, bool full, absl::Time now,
                                     Notes& notes) const {
  auto* rel = r.mutable_release();
  const ReleaseState st = rel->state();
  if (IsTerminalState(st) || st == hosting::v1::RELEASE_STATE_ROLLING_BACK) {
    return absl::FailedPreconditionError(absl::StrCat(
        "release ", rel->id(), " is ", ReleaseStateName(st), ": there is nothing to promote"));
  }
  if (rel->rollback()) {
    return absl::FailedPreconditionError(
        absl::StrCat("release ", rel->id(), " is a rollback: it has no steps to promote"));
  }
  if (full) {
    if (rel->strategy() == hosting::v1::RELEASE_STRATEGY_CANARY) {
      rel->set_current_step(static_cast<int32_t>(CanarySteps(r.policy()).size()));
    }
    r.set_promoted(true);
  } else if (st == hosting::v1::RELEASE_STATE_WAITING_FOR_PROMOTION ||
             st == hosting::v1::RELEASE_STATE_PAUSED) {
    if (st == hosting::v1::RELEASE_STATE_PAUSED &&
        rel->strategy() == hosting::v1::RELEASE_STRATEGY_CANARY) {
      // Paused on an inconclusive analysis: promoting skips it.
      rel->set_current_step(rel->current_step() + 1);
    }
    r.set_promoted(true);
  } else if (rel->strategy() == hosting::v1::RELEASE_STRATEGY_CANARY) {
    rel->set_current_step(rel->current_step() + 1);
  } else {
    r.set_promoted(true);
  }
  const bool step_analysis_running = IsSet(r.analysis_started_at());
  r.clear_analysis_started_at();
  if (step_analysis_running && rel->analyses_size() > 0 &&
      StepAnalysis(r)->verdict() == hosting::v1::ANALYSIS_VERDICT_RUNNING) {
    auto* a = StepAnalysis(r);
    a->set_verdict(hosting::v1::ANALYSIS_VERDICT_INCONCLUSIVE);
    a->set_reason("skipped by PromoteRelease");
    *a->mutable_finished_at() = ToTimestamp(now);
  }
  rel->set_state(hosting::v1::RELEASE_STATE_PROGRESSING);
  *r.mutable_step_started_at() = ToTimestamp(now);
  *r.mutable_progress_at() = ToTimestamp(now);
  Note(r, notes, "promoted", full ? "promoted: all remaining steps skipped" : "promoted");
  return absl::OkStatus();
}

absl::Status ReleaseMachine::Pause(ReleaseRecord& r, absl::Time now, Notes& notes) const {
  auto* rel = r.mutable_release();
  const ReleaseState st = rel->state();
  if (st != hosting::v1::RELEASE_STATE_PROGRESSING &&
      st != hosting::v1::RELEASE_STATE_WAITING_FOR_PROMOTION) {
    return absl::FailedPreconditionError(
        absl::StrCat("release ", rel->id(), " is ", ReleaseStateName(st), ": only a progressing ",
                     "release can be paused"));
  }
  r.set_resume_state(st);
  rel->set_state(hosting::v1::RELEASE_STATE_PAUSED);
  Note(r, notes, "paused", "paused by PauseRelease");
  return absl::OkStatus();
}

absl::Status ReleaseMachine::Resume(ReleaseRecord& r, absl::Time now, Notes& notes) const {
  auto* rel = r.mutable_release();
  if (rel->state() != hosting::v1::RELEASE_STATE_PAUSED) {
    return absl::FailedPreconditionError(absl::StrCat(
        "release ", rel->id(), " is ", ReleaseStateName(rel->state()), ", not paused"));
  }
  rel->set_state(r.resume_state() == hosting::v1::RELEASE_STATE_UNSPECIFIED
                     ? hosting::v1::RELEASE_STATE_PROGRESSING
                     : r.resume_state());
  r.clear_analysis_started_at();
  *r.mutable_step_started_at() = ToTimestamp(now);
  *r.mutable_progress_at() = ToTimestamp(now);
  Note(r, notes, "resumed", "resumed by ResumeRelease");
  return absl::OkStatus();
}

absl::Status ReleaseMachine::Abort(ReleaseRecord& r, const std::string& reason, absl::Time now,
                                   Notes& notes) const {
  auto* rel = r.mutable_release();
  const ReleaseState st = rel->state();
  if (IsTerminalState(st) || st == hosting::v1::RELEASE_STATE_ROLLING_BACK) {
    return absl::FailedPreconditionError(absl::StrCat("release ", rel->id(), " is ",
                                                      ReleaseStateName(st), ": cannot abort it"));
  }
  Fail(r, hosting::v1::RELEASE_STATE_ABORTED,
       absl::StrCat("aborted", reason.empty() ? std::string() : ": " + reason), now, notes);
  return absl::OkStatus();
}

}  // namespace hosting::controlplane
