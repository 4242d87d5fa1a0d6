#include "controlplane/release_manager.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/log.h"
#include "common/status_macros.h"
#include "controlplane/swarm_spec.h"
#include "controlplane/validation.h"
#include "google/protobuf/util/message_differencer.h"
#include "google/protobuf/util/time_util.h"

namespace hosting::controlplane {
namespace {

using google::protobuf::util::TimeUtil;
using hosting::internal::ReleaseRecord;

google::protobuf::Timestamp Ts(absl::Time t) {
  return TimeUtil::NanosecondsToTimestamp(absl::ToUnixNanos(t));
}
absl::Time FromTs(const google::protobuf::Timestamp& t) {
  return absl::FromUnixNanos(TimeUtil::TimestampToNanoseconds(t));
}

constexpr int kDefaultListLimit = 20;

absl::Status CheckId(const std::string& id) {
  if (id.empty()) return InvalidArgumentWithViolations({{"id", "required: a release ID"}});
  return absl::OkStatus();
}

// The policy a release runs: the request's override or the service's own, with the strategy
// resolved (RECREATE becomes an all-at-once rolling release).
hosting::v1::ReleasePolicy EffectivePolicy(const hosting::v1::ReleasePolicy& service_policy,
                                           const hosting::v1::StartReleaseRequest& request) {
  hosting::v1::ReleasePolicy p = service_policy;
  if (request.has_policy()) {
    const auto& o = request.policy();
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
      *p.mutable_rolling()->mutable_min_healthy_time() = TimeUtil::SecondsToDuration(0);
    }
  }
  return p;
}

int TrafficPort(const hosting::v1::ServiceSpec& spec) {
  if (spec.ports_size() > 0) return static_cast<int>(spec.ports(0).container_port());
  return static_cast<int>(spec.health().port());
}

}  // namespace

// One tick's view of Docker: the owned Swarm services and their live tasks.
struct ReleaseManager::Cluster {
  // Swarm service ID -> (hosted service, revision).
  std::map<std::string, std::pair<std::string, int64_t>> services;
  // Hosted service -> tasks Swarm wants running, with their revision.
  std::map<std::string, std::vector<std::pair<int64_t, docker::TaskInfo>>> tasks;
};

ReleaseManager::ReleaseManager(Store& store, docker::DockerClient& docker, AgentRegistry& agents,
                               TrafficRouter& router, Reconciler& reconciler, EventLog& events,
                               Clock& clock, ReleaseManagerOptions options)
    : store_(store), docker_(docker), agents_(agents), router_(router), reconciler_(reconciler),
      events_(events), clock_(clock), options_(std::move(options)), machine_(options_.machine) {}

ReleaseManager::~ReleaseManager() { Stop(); }

void ReleaseManager::SetImagePuller(ImagePuller puller) {
  absl::MutexLock lock(&mu_);
  puller_ = std::move(puller);
}

void ReleaseManager::SetMetricsQuery(MetricsQuery* query) {
  absl::MutexLock lock(&mu_);
  query_ = query;
}

std::map<std::string, absl::StatusOr<double>> ReleaseManager::QueryChecks(const ReleaseRecord& r) {
  std::map<std::string, absl::StatusOr<double>> out;
  if (r.release().state() != hosting::v1::RELEASE_STATE_PROGRESSING) return out;
  std::vector<const hosting::v1::PromQLCheck*> checks;
  for (const auto& step : r.policy().canary().steps()) {
    for (const auto& c : step.analysis().promql()) checks.push_back(&c);
  }
  for (const auto& c : r.policy().canary().background_analysis().promql()) checks.push_back(&c);
  for (const auto& c : r.policy().blue_green().pre_switch_analysis().promql()) checks.push_back(&c);
  for (const auto* c : checks) {
    if (out.contains(c->query())) continue;
    out.insert_or_assign(
        c->query(),
        query_ == nullptr
            ? absl::StatusOr<double>(absl::FailedPreconditionError(
                  "no PromQL source: start hostd with --prometheus"))
            : query_->Instant(
                  SubstituteQuery(c->query(), r.release().service(), r.release().to_revision())));
  }
  return out;
}

bool ReleaseManager::IsReleaseEvent(const hosting::v1::Event& e, const std::string& id) {
  auto it = e.attributes().find("release");
  return absl::StartsWith(e.type(), "release.") && it != e.attributes().end() && it->second == id;
}

void ReleaseManager::Publish(const ReleaseRecord& r, const std::vector<ReleaseNote>& notes) {
  for (const auto& n : notes) {
    std::map<std::string, std::string> attrs = n.attributes;
    attrs["release"] = r.release().id();
    attrs["state"] = ReleaseStateName(r.release().state());
    attrs["step"] = absl::StrCat(r.release().current_step());
    events_.Publish(absl::StrCat("release.", n.type), r.release().service(),
                    r.release().to_revision(), n.message, std::move(attrs));
  }
}

absl::StatusOr<hosting::v1::Release> ReleaseManager::Start(
    const hosting::v1::StartReleaseRequest& request) {
  std::vector<FieldViolation> v = ValidateServiceName(request.service(), "service");
  if (request.image().empty() && !request.has_spec()) {
    v.push_back({"image", "required (or a full spec): the image to release"});
  }
  if (request.has_spec()) {
    std::vector<FieldViolation> sv = ValidateServiceSpec(request.spec(), "spec");
    v.insert(v.end(), sv.begin(), sv.end());
    if (request.spec().name() != request.service()) {
      v.push_back({"spec.name", absl::StrCat("must be the service released ('", request.service(),
                                             "'), got '", request.spec().name(), "'")});
    }
  } else if (request.image().find_first_of(" \t\n") != std::string::npos) {
    v.push_back({"image", "must be an image reference without spaces"});
  }
  if (request.has_policy()) {
    std::vector<FieldViolation> pv = ValidateReleasePolicy(request.policy(), "policy");
    v.insert(v.end(), pv.begin(), pv.end());
  }
  RETURN_IF_ERROR(InvalidArgumentWithViolations(v));

  ASSIGN_OR_RETURN(ServiceRecord current, store_.GetService(request.service()));
  hosting::v1::ServiceSpec spec = request.has_spec() ? request.spec() : current.spec;
  if (!request.has_spec()) spec.set_image(request.image());
  ApplySpecDefaults(spec);
  spec.clear_autoscaling();  // the service's policy stays as it is
  // An autoscaled service releases at the size the autoscaler chose.
  if (current.autoscaling.has_value()) spec.set_replicas(current.spec.replicas());
  if (TemplateHash(spec) == TemplateHash(current.spec)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "service '", request.service(), "' already runs this (revision ", current.revision, ", ",
        current.spec.image(), "): a release needs a change to what runs"));
  }
  ASSIGN_OR_RETURN(int64_t last, store_.LastRevision(request.service()));
  const int64_t revision = last + 1;
  RevisionRecord rev{request.service(), revision, spec, clock_.Now()};

  ReleaseRecord r;
  *r.mutable_policy() = EffectivePolicy(spec.release(), request);
  auto* rel = r.mutable_release();
  rel->set_from_revision(current.revision);
  rel->set_to_revision(revision);
  rel->set_strategy(r.policy().strategy());
  rel->set_state(hosting::v1::RELEASE_STATE_PENDING);
  rel->set_message(request.reason().empty() ? "release accepted"
                                            : absl::StrCat("release accepted: ", request.reason()));
  *rel->mutable_started_at() = Ts(clock_.Now());
  *rel->mutable_updated_at() = Ts(clock_.Now());
  r.set_stable_revision(current.revision);
  *r.mutable_stable_spec() = current.spec;
  r.set_target_replicas(spec.replicas());
  if (rel->strategy() == hosting::v1::RELEASE_STRATEGY_CANARY) {
    rel->set_total_steps(static_cast<int32_t>(ReleaseMachine::CanarySteps(r.policy()).size()));
  }

  ServiceRecord next = current;
  next.spec = spec;
  next.revision = revision;
  next.rollout.Clear();  // a warm revision from an earlier blue-green goes now
  (*next.rollout.mutable_replicas())[current.revision] = current.spec.replicas();
  (*next.rollout.mutable_replicas())[revision] = 0;
  // Until the strategy says otherwise, traffic stays where it is.
  (*next.rollout.mutable_weights())[current.revision] = 100;
  (*next.rollout.mutable_weights())[revision] = 0;
  if (rel->strategy() == hosting::v1::RELEASE_STRATEGY_ROLLING) next.rollout.clear_weights();

  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(ReleaseRecord created,
                   store_.CreateRelease(next, current.generation, &rev, r));
  (void)store_.PruneRevisions(request.service(),
                              static_cast<int>(std::max<uint32_t>(
                                  spec.release().revision_history_limit(), 2)));
  Publish(created, {{"created",
                     absl::StrCat("release ", created.release().id(), " of '", request.service(),
                                  "': revision ", current.revision, " (", current.spec.image(),
                                  ") -> ", revision, " (", spec.image(), "), ",
                                  hosting::v1::ReleaseStrategy_Name(rel->strategy()),
                                  request.reason().empty() ? std::string()
                                                           : "; " + request.reason()),
                     {{"image", spec.image()}}}});
  reconciler_.DesiredStateChanged(request.service(), revision);
  return created.release();
}

absl::StatusOr<hosting::v1::Release> ReleaseManager::Rollback(
    const hosting::v1::RollbackServiceRequest& request) {
  RETURN_IF_ERROR(InvalidArgumentWithViolations(ValidateServiceName(request.service(), "service")));
  if (request.to_revision() < 0) {
    return InvalidArgumentWithViolations({{"to_revision", "must not be negative"}});
  }
  ASSIGN_OR_RETURN(ServiceRecord current, store_.GetService(request.service()));
  ASSIGN_OR_RETURN(std::vector<RevisionRecord> history, store_.ListRevisions(request.service()));
  int64_t target = request.to_revision();
  if (target == 0) {
    target = current.rollout.warm_revision();
    for (const auto& h : history) {
      if (target != 0) break;
      if (h.revision < current.revision) target = h.revision;
    }
    if (target == 0) {
      return absl::FailedPreconditionError(absl::StrCat(
          "service '", request.service(), "' has no revision before ", current.revision,
          " to roll back to"));
    }
  }
  if (target == current.revision) {
    return absl::FailedPreconditionError(
        absl::StrCat("revision ", target, " of '", request.service(), "' is already current"));
  }
  auto it = std::find_if(history.begin(), history.end(),
                         [&](const RevisionRecord& h) { return h.revision == target; });
  if (it == history.end()) {
    std::vector<std::string> kept;
    for (const auto& h : history) kept.push_back(absl::StrCat(h.revision));
    return absl::NotFoundError(absl::StrCat("revision ", target, " of '", request.service(),
                                            "' is not kept (kept: ", absl::StrJoin(kept, ", "),
                                            ")"));
  }
  const bool warm = current.rollout.warm_revision() == target;
  const int32_t n = current.spec.replicas();

  ReleaseRecord r;
  r.mutable_policy()->set_strategy(hosting::v1::RELEASE_STRATEGY_ROLLING);
  auto* rel = r.mutable_release();
  rel->set_from_revision(current.revision);
  rel->set_to_revision(target);
  rel->set_strategy(hosting::v1::RELEASE_STRATEGY_ROLLING);
  rel->set_rollback(true);
  rel->set_state(hosting::v1::RELEASE_STATE_ROLLING_BACK);
  rel->set_message(absl::StrCat("rollback to revision ", target, warm ? " (warm)" : "",
                                request.reason().empty() ? "" : ": " + request.reason()));
  *rel->mutable_started_at() = Ts(clock_.Now());
  *rel->mutable_updated_at() = Ts(clock_.Now());
  r.set_final_state(hosting::v1::RELEASE_STATE_SUCCEEDED);
  r.set_stable_revision(target);
  *r.mutable_stable_spec() = it->spec;
  r.set_target_replicas(n);
  const absl::Duration deadline =
      request.has_deadline()
          ? absl::Nanoseconds(TimeUtil::DurationToNanoseconds(request.deadline()))
          : absl::Minutes(2);
  *r.mutable_deadline() = Ts(clock_.Now() + deadline);
  *r.mutable_progress_at() = Ts(clock_.Now());

  ServiceRecord next = current;
  next.rollout.Clear();
  (*next.rollout.mutable_replicas())[current.revision] = n;
  (*next.rollout.mutable_replicas())[target] = warm ? n : 0;

  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(ReleaseRecord created, store_.CreateRelease(next, current.generation, nullptr, r));
  Publish(created, {{"created",
                     absl::StrCat("rollback ", created.release().id(), " of '", request.service(),
                                  "': revision ", current.revision, " -> ", target,
                                  warm ? " (warm: traffic moves at once)" : ""),
                     {{"image", it->spec.image()}}}});
  reconciler_.DesiredStateChanged(request.service(), current.revision);
  return created.release();
}

absl::StatusOr<hosting::v1::Release> ReleaseManager::Get(
    const hosting::v1::GetReleaseRequest& request) {
  if (!request.id().empty()) {
    ASSIGN_OR_RETURN(ReleaseRecord r, store_.GetRelease(request.id()));
    return r.release();
  }
  if (request.service().empty()) {
    return InvalidArgumentWithViolations({{"id", "required: a release ID (or service)"}});
  }
  RETURN_IF_ERROR(InvalidArgumentWithViolations(ValidateServiceName(request.service(), "service")));
  ASSIGN_OR_RETURN(std::vector<ReleaseRecord> list, store_.ListReleases(request.service(), 1));
  if (list.empty()) {
    return absl::NotFoundError(absl::StrCat("service '", request.service(), "' has no releases"));
  }
  return list.front().release();
}

absl::StatusOr<std::vector<hosting::v1::Release>> ReleaseManager::List(
    const hosting::v1::ListReleasesRequest& request) {
  if (!request.service().empty()) {
    RETURN_IF_ERROR(
        InvalidArgumentWithViolations(ValidateServiceName(request.service(), "service")));
  }
  if (request.limit() < 0) return InvalidArgumentWithViolations({{"limit", "must not be negative"}});
  ASSIGN_OR_RETURN(std::vector<ReleaseRecord> list,
                   store_.ListReleases(request.service(),
                                       request.limit() > 0 ? request.limit() : kDefaultListLimit));
  std::vector<hosting::v1::Release> out;
  for (auto& r : list) out.push_back(r.release());
  return out;
}

absl::StatusOr<hosting::v1::Release> ReleaseManager::Mutate(
    const std::string& id,
    const std::function<absl::Status(ReleaseRecord&, std::vector<ReleaseNote>&)>& change) {
  RETURN_IF_ERROR(CheckId(id));
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(ReleaseRecord r, store_.GetRelease(id));
  std::vector<ReleaseNote> notes;
  RETURN_IF_ERROR(change(r, notes));
  *r.mutable_release()->mutable_updated_at() = Ts(clock_.Now());
  ASSIGN_OR_RETURN(Store::ReleaseWrite w, store_.UpdateRelease(r, nullptr, 0));
  r.set_version(w.release_version);
  Publish(r, notes);
  return r.release();
}

absl::StatusOr<hosting::v1::Release> ReleaseManager::Promote(
    const hosting::v1::PromoteReleaseRequest& request) {
  return Mutate(request.id(), [&](ReleaseRecord& r, std::vector<ReleaseNote>& notes) {
    return machine_.Promote(r, request.full(), clock_.Now(), notes);
  });
}

absl::StatusOr<hosting::v1::Release> ReleaseManager::Pause(const std::string& id) {
  return Mutate(id, [&](ReleaseRecord& r, std::vector<ReleaseNote>& notes) {
    return machine_.Pause(r, clock_.Now(), notes);
  });
}

absl::StatusOr<hosting::v1::Release> ReleaseManager::Resume(const std::string& id) {
  return Mutate(id, [&](ReleaseRecord& r, std::vector<ReleaseNote>& notes) {
    return machine_.Resume(r, clock_.Now(), notes);
  });
}

absl::StatusOr<hosting::v1::Release> ReleaseManager::Abort(
    const hosting::v1::AbortReleaseRequest& request) {
  return Mutate(request.id(), [&](ReleaseRecord& r, std::vector<ReleaseNote>& notes) {
    return machine_.Abort(r, request.reason(), clock_.Now(), notes);
  });
}

bool ReleaseManager::PrePull(ReleaseRecord& r, const ServiceRecord& s) {
  if (r.pre_pulled() || r.release().rollback()) return true;
  const std::string& id = r.release().id();
  auto it = pulls_.find(id);
  if (it == pulls_.end()) {
    if (!puller_) {
      r.set_pre_pulled(true);
      return true;
    }
    auto done = std::make_shared<absl::Notification>();
    pulls_[id] = done;
    const std::string image = s.spec.image();
    ImagePuller puller = puller_;
    pull_threads_.emplace_back([this, done, image, puller, r]() mutable {
      std::map<std::string, std::string> errors = puller(image);
      std::vector<std::string> parts;
      for (const auto& [node, e] : errors) parts.push_back(absl::StrCat(node.substr(0, 12), ": ", e));
      Publish(r, {{"pre_pulled",
                   errors.empty()
                       ? absl::StrCat("pulled ", image, " on the nodes")
                       : absl::StrCat("pre-pull of ", image, " failed on ", errors.size(),
                                      " node(s) (", absl::StrJoin(parts, "; "),
                                      "); Swarm uses a local copy or pulls it itself"),
                   {{"image", image}}}});
      done->Notify();
    });
    return false;
  }
  if (!it->second->HasBeenNotified()) return false;
  pulls_.erase(it);
  r.set_pre_pulled(true);
  return true;
}

void ReleaseManager::AdvanceOne(ReleaseRecord r, const Cluster& cluster) {
  const std::string service = r.release().service();
  absl::StatusOr<ServiceRecord> record = store_.GetService(service);
  if (absl::IsNotFound(record.status())) {
    std::vector<ReleaseNote> notes;
    r.mutable_release()->set_state(hosting::v1::RELEASE_STATE_ABORTED);
    *r.mutable_release()->mutable_finished_at() = Ts(clock_.Now());
    notes.push_back({"finished", absl::StrCat("service '", service, "' was deleted"),
                     {{"state", "aborted"}}});
    r.mutable_release()->set_message(notes.back().message);
    if (store_.UpdateRelease(r, nullptr, 0).ok()) Publish(r, notes);
    return;
  }
  if (!record.ok()) return;
  ServiceRecord s = *record;
  if (!PrePull(r, s)) return;

  Observation obs;
  obs.now = clock_.Now();
  auto route = routes_.find(service);
  if (route != routes_.end()) {
    obs.router = route->second.routed;
    obs.sessions = route->second.sessions;
  }
  obs.metrics = agents_.Aggregate(service);
  obs.promql = QueryChecks(r);
  std::map<std::string, hosting::v1::TaskReport> reports;
  for (auto& t : agents_.Tasks(service)) reports[t.task_id()] = t;
  if (auto it = cluster.tasks.find(service); it != cluster.tasks.end()) {
    for (const auto& [rev, task] : it->second) {
      TaskView v;
      v.id = task.id;
      v.slot = task.slot;
      auto rep = reports.find(task.id);
      const hosting::v1::TaskReport* report = rep == reports.end() ? nullptr : &rep->second;
      v.ready = TaskReady(task, report, s.spec);
      if (report != nullptr) {
        v.unhealthy = report->probe_health() == hosting::v1::TASK_HEALTH_UNHEALTHY;
        v.detail = report->last_probe_error();
        v.ready_since = FromTs(report->changed_at());
      }
      obs.tasks[rev].push_back(std::move(v));
    }
  }
  const ServiceRecord before = s;
  std::vector<ReleaseNote> notes = machine_.Advance(r, s, obs);
  const bool service_changed =
      s.revision != before.revision ||
      !google::protobuf::util::MessageDifferencer::Equals(s.spec, before.spec) ||
      !google::protobuf::util::MessageDifferencer::Equals(s.rollout, before.rollout);
  if (notes.empty() && !service_changed) return;
  absl::StatusOr<Store::ReleaseWrite> w =
      store_.UpdateRelease(r, service_changed ? &s : nullptr, s.generation);
  if (!w.ok()) {
    // A concurrent API call or scale won: the next tick starts from what is stored.
    LogWarning("release step not persisted", {{"release", r.release().id()},
                                              {"error", w.status().ToString()}});
    return;
  }
  Publish(r, notes);
  if (service_changed) {
    reconciler_.Enqueue(service);
    // Traffic follows at once (a switch, a rollback), not one tick later.
    routes_[service] = router_.Sync(service, s.rollout, Targets(s, cluster));
  }
}

void ReleaseManager::ExpireWarmRevisions(const std::vector<ServiceRecord>& services) {
  for (const auto& s : services) {
    if (s.rollout.warm_revision() == 0 || !s.rollout.release_id().empty()) continue;
    if (clock_.Now() < FromTs(s.rollout.warm_until())) continue;
    ServiceRecord next = s;
    next.rollout.Clear();
    if (store_.PutService(next, s.generation, nullptr).ok()) {
      events_.Publish("release.warm_expired", s.spec.name(), s.rollout.warm_revision(),
                      absl::StrCat("revision ", s.rollout.warm_revision(),
                                   " is no longer kept warm; removing it"));
      reconciler_.Enqueue(s.spec.name());
    }
  }
}

bool ReleaseManager::TaskReady(const docker::TaskInfo& task,
                               const hosting::v1::TaskReport* report,
                               const hosting::v1::ServiceSpec& spec) {
  if (task.state != "running") return false;
  const bool http_check = !spec.health().http_path().empty();
  if (report != nullptr) {
    return report->probe_health() == hosting::v1::TASK_HEALTH_HEALTHY ||
           (report->probe_health() == hosting::v1::TASK_HEALTH_NONE && !http_check);
  }
  // No report: without an agent on the node, running is the best health there is.
  return !http_check ||
         agents_.Agent(task.node_id).state != hosting::v1::AGENT_STATE_CONNECTED;
}

std::vector<RouteTarget> ReleaseManager::Targets(const ServiceRecord& s, const Cluster& cluster) {
  const std::string& name = s.spec.name();
  std::vector<RouteTarget> targets;
  auto tasks = cluster.tasks.find(name);
  if (tasks == cluster.tasks.end()) return targets;
  std::map<std::string, hosting::v1::TaskReport> reports;
  for (auto& t : agents_.Tasks(name)) reports[t.task_id()] = t;
  for (const auto& [rev, t] : tasks->second) {
    RouteTarget rt;
    rt.task_id = t.id;
    rt.revision = rev;
    rt.port = TrafficPort(s.spec);
    if (!t.addresses.empty()) {
      const std::string& a = t.addresses.front();  // "10.0.1.7/24"
      rt.address = a.substr(0, a.find('/'));
    }
    auto it = reports.find(t.id);
    rt.ready = TaskReady(t, it == reports.end() ? nullptr : &it->second, s.spec);
    targets.push_back(std::move(rt));
  }
  return targets;
}

void ReleaseManager::Tick() {
  absl::MutexLock lock(&mu_);
  absl::StatusOr<std::vector<ServiceRecord>> services = store_.ListServices();
  if (!services.ok()) return;
  ExpireWarmRevisions(*services);
  absl::StatusOr<std::vector<ReleaseRecord>> active = store_.ListActiveReleases();
  if (!active.ok()) return;
  // Without a release to advance, Docker is read only to keep HAProxy in line with the tasks,
  // and less often.
  const absl::Time now = clock_.Now();
  if (active->empty() &&
      (!router_.enabled() || now - last_full_tick_ < options_.idle_route_interval)) {
    return;
  }
  last_full_tick_ = now;

  Cluster cluster;
  absl::StatusOr<std::vector<docker::ServiceInfo>> swarm = docker_.ListServices(
      {{"label", {absl::StrCat(kLabelController, "=", options_.controller_id)}}});
  absl::StatusOr<std::vector<docker::TaskInfo>> tasks =
      docker_.ListTasks({{"desired-state", {"running"}}});
  if (!swarm.ok() || !tasks.ok()) return;
  for (const auto& s : *swarm) {
    std::optional<RevisionName> rn = ParseRevisionServiceName(s.name);
    if (rn) cluster.services[s.id] = {rn->service, rn->revision};
  }
  for (auto& t : *tasks) {
    auto it = cluster.services.find(t.service_id);
    if (it == cluster.services.end()) continue;
    cluster.tasks[it->second.first].emplace_back(it->second.second, t);
  }
  // Traffic first: the releases below read what HAProxy shows now.
  for (const auto& s : *services) {
    const std::string& name = s.spec.name();
    routes_[name] = router_.Sync(name, s.rollout, Targets(s, cluster));
  }
  for (auto& r : *active) AdvanceOne(std::move(r), cluster);
}

void ReleaseManager::Loop() {
  while (!stop_.WaitForNotificationWithTimeout(options_.tick)) Tick();
}

void ReleaseManager::Start() {
  if (started_) return;
  started_ = true;
  threads_.emplace_back([this] { Loop(); });
}

void ReleaseManager::Stop() {
  if (!started_) return;
  started_ = false;
  if (!stop_.HasBeenNotified()) stop_.Notify();
  for (auto& t : threads_) t.join();
  threads_.clear();
  absl::MutexLock lock(&mu_);
  for (auto& t : pull_threads_) t.join();
  pull_threads_.clear();
}

}  // namespace hosting::controlplane
