#include "controlplane/release/release_manager.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/log.h"
#include "common/proto_time.h"
#include "common/status_macros.h"
#include "controlplane/spec/swarm_spec.h"
#include "controlplane/spec/validation.h"
#include "google/protobuf/util/message_differencer.h"
#include "google/protobuf/util/time_util.h"

namespace hosting::controlplane {
namespace {

using google::protobuf::util::TimeUtil;
using hosting::internal::ReleaseRecord;

constexpr int kDefaultListLimit = 20;

absl::Status CheckId(const std::string& id) {
  if (id.empty()) return InvalidArgumentWithViolations({{"id", "required: a release ID"}});
  return absl::OkStatus();
}

}  // namespace

// One tick's view of Docker: the owned Swarm services and their live tasks.
struct ReleaseManager::Cluster {
  // Swarm service ID -> (hosted service, revision).
  std::map<std::string, std::pair<std::string, int64_t>> services;
  // Hosted service -> tasks Swarm wants running, with their revision.
  std::map<std::string, std::vector<std::pair<int64_t, docker::TaskInfo>>> tasks;
  // Nodes whose tasks get no traffic: being drained (kTrafficOffLabel) or drained.
  std::set<std::string> traffic_off;
};

ReleaseManager::ReleaseManager(Store& store, DesiredState& state, AgentRegistry& agents,
                               TrafficRouter& router,
                               Reconciler& reconciler, EventLog& events, Clock& clock,
                               ReleaseManagerOptions options)
    : store_(store), state_(state), agents_(agents), router_(router),
      reconciler_(reconciler), events_(events), clock_(clock), options_(std::move(options)),
      machine_(options_.machine) {}

ReleaseManager::~ReleaseManager() { Stop(); }

void ReleaseManager::SetImagePuller(ImagePuller puller) {
  absl::MutexLock lock(&mu_);
  puller_ = std::move(puller);
}

void ReleaseManager::SetMetricsQuery(MetricsQuery* query) {
  // Made outside the lock: its destructor (of a previous source) waits for a query in flight.
  std::unique_ptr<AsyncMetricsQuery> async =
      query == nullptr ? nullptr : std::make_unique<AsyncMetricsQuery>(*query, clock_);
  absl::MutexLock lock(&mu_);
  query_.swap(async);
}

void ReleaseManager::SetReportPace(ReportPace ask) {
  absl::MutexLock lock(&mu_);
  pace_ = std::move(ask);
}

void ReleaseManager::MetricsArrived() {
  if (analysing_.load(std::memory_order_relaxed)) Wake(/*urgent=*/false);
}

void ReleaseManager::PaceReports(const std::vector<ReleaseRecord>& active) {
  bool analysing = false;
  for (const auto& r : active) {
    analysing |= IsSet(r.analysis_started_at()) || IsSet(r.background_started_at());
  }
  analysing_.store(analysing, std::memory_order_relaxed);
  const absl::Time now = clock_.Now();
  if (!analysing || now - pace_asked_ < absl::Seconds(1)) return;
  ReportPace ask;
  {
    absl::MutexLock lock(&mu_);
    ask = pace_;
  }
  if (!ask) return;
  pace_asked_ = now;
  ask(kAnalysisReportInterval, absl::Seconds(3));
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
  // Never waits on Prometheus: the answers are the newest the background queries brought (a
  // check without one yet has no data, which the analysis reads as inconclusive).
  absl::MutexLock lock(&mu_);
  for (const auto* c : checks) {
    if (out.contains(c->query())) continue;
    out.insert_or_assign(
        c->query(),
        query_ == nullptr
            ? absl::StatusOr<double>(absl::FailedPreconditionError(
                  "no PromQL source: start hostd with --prometheus"))
            : query_->Latest(
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

  ReleaseRecord created;
  ServiceRecord stable;
  auto begin = [&](ServiceRecord& record, Mutation& m) -> absl::Status {
    hosting::v1::ServiceSpec spec = request.has_spec() ? request.spec() : record.spec;
    if (!request.has_spec()) spec.set_image(request.image());
    ApplySpecDefaults(spec);
    spec.clear_autoscaling();  // the service's policy stays as it is
    // An autoscaled service releases at the size the autoscaler chose.
    if (record.autoscaling.has_value()) spec.set_replicas(record.spec.replicas());
    if (TemplateHash(spec) == TemplateHash(record.spec)) {
      return absl::FailedPreconditionError(absl::StrCat(
          "service '", request.service(), "' already runs this (revision ", record.revision,
          ", ", record.spec.image(), "): a release needs a change to what runs"));
    }
    ASSIGN_OR_RETURN(RevisionRecord revision, state_.NewRevision(request.service(), spec));
    stable = record;
    const hosting::v1::ReleasePolicy policy = ReleaseMachine::ResolvePolicy(
        spec.release(), request.has_policy() ? &request.policy() : nullptr);
    // A canary's baseline takes the next number (no stored revision has it: the store keeps
    // every number a rollout names from being used again).
    const int64_t baseline =
        policy.strategy() == hosting::v1::RELEASE_STRATEGY_CANARY && policy.canary().baseline()
            ? revision.revision + 1
            : 0;
    ReleaseRecord r = ReleaseMachine::Begin(record, spec, revision.revision, baseline, policy,
                                            request.reason(), clock_.Now());
    m.revision = std::move(revision);
    // The previous revision stays for a rollback, whatever the history limit says.
    m.min_revisions_kept = 2;
    m.commit = [&, r](const ServiceRecord& next, int64_t expected,
                      const RevisionRecord* rev) -> absl::StatusOr<int64_t> {
      ASSIGN_OR_RETURN(created, store_.CreateRelease(next, expected, rev, r));
      return expected + 1;
    };
    return absl::OkStatus();
  };
  ASSIGN_OR_RETURN(ServiceRecord next, state_.Mutate(request.service(), begin));
  Publish(created,
          {{"created",
            absl::StrCat("release ", created.release().id(), " of '", request.service(),
                         "': revision ", stable.revision, " (", stable.spec.image(), ") -> ",
                         next.revision, " (", next.spec.image(), "), ",
                         hosting::v1::ReleaseStrategy_Name(created.release().strategy()),
                         request.reason().empty() ? std::string() : "; " + request.reason()),
            {{"image", next.spec.image()}}}});
  Wake();
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
  const RevisionRecord to = *it;
  const absl::Duration deadline =
      request.has_deadline() ? FromDuration(request.deadline()) : absl::Minutes(2);
  ReleaseRecord created;
  bool warm = false;
  auto begin = [&](ServiceRecord& record, Mutation& m) -> absl::Status {
    if (record.revision != current.revision) {
      return absl::AbortedError(absl::StrCat("service '", request.service(),
                                             "' changed meanwhile (now revision ",
                                             record.revision, "): roll back again"));
    }
    warm = record.rollout.warm_revision() == to.revision;
    ReleaseRecord r =
        ReleaseMachine::BeginRollback(record, to, request.reason(), deadline, clock_.Now());
    m.commit = [&, r](const ServiceRecord& next, int64_t expected,
                      const RevisionRecord* rev) -> absl::StatusOr<int64_t> {
      ASSIGN_OR_RETURN(created, store_.CreateRelease(next, expected, rev, r));
      return expected + 1;
    };
    return absl::OkStatus();
  };
  RETURN_IF_ERROR(state_.Mutate(request.service(), begin).status());
  Publish(created, {{"created",
                     absl::StrCat("rollback ", created.release().id(), " of '", request.service(),
                                  "': revision ", current.revision, " -> ", target,
                                  warm ? " (warm: traffic moves at once)" : ""),
                     {{"image", to.spec.image()}}}});
  Wake();
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
  constexpr int kAttempts = 5;
  for (int attempt = 1;; ++attempt) {
    ASSIGN_OR_RETURN(ReleaseRecord r, store_.GetRelease(id));
    std::vector<ReleaseNote> notes;
    RETURN_IF_ERROR(change(r, notes));
    *r.mutable_release()->mutable_updated_at() = ToTimestamp(clock_.Now());
    absl::StatusOr<Store::ReleaseWrite> w = store_.UpdateRelease(r, nullptr, 0);
    // A release step committed meanwhile: decide again on what it wrote.
    if (absl::IsAborted(w.status()) && attempt < kAttempts) continue;
    RETURN_IF_ERROR(w.status());
    r.set_version(w->release_version);
    Publish(r, notes);
    Wake();
    return r.release();
  }
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
    ImagePuller puller;
    {
      absl::MutexLock lock(&mu_);
      puller = puller_;
    }
    if (!puller) {
      r.set_pre_pulled(true);
      return true;
    }
    auto done = std::make_shared<absl::Notification>();
    pulls_[id] = done;
    const std::string image = s.spec.image();
    // The callback may run on another thread, once every node has answered or timed out.
    puller(image, [this, done, image, r](std::map<std::string, std::string> results) {
      std::vector<std::string> parts;
      for (const auto& [node, e] : results) {
        if (!e.empty()) parts.push_back(absl::StrCat(node.substr(0, 12), ": ", e));
      }
      Publish(r, {{"pre_pulled",
                   parts.empty()
                       ? absl::StrCat(image, " is on every node (pulled where it was missing)")
                       : absl::StrCat("pre-pull of ", image, " failed on ", parts.size(),
                                      " node(s) (", absl::StrJoin(parts, "; "),
                                      "); Swarm uses a local copy or pulls it itself"),
                   {{"image", image}}}});
      Wake();  // before Notify: Stop waits for it, then this may be gone
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
    *r.mutable_release()->mutable_finished_at() = ToTimestamp(clock_.Now());
    notes.push_back({"finished", absl::StrCat("service '", service, "' was deleted"),
                     {{"state", "aborted"}}});
    r.mutable_release()->set_message(notes.back().message);
    if (store_.UpdateRelease(r, nullptr, 0).ok()) Publish(r, notes);
    return;
  }
  if (!record.ok()) {
    TickProblem(r.release().id(), absl::StrCat("reading service ", service), record.status());
    return;
  }
  TickProblem(r.release().id(), "", absl::OkStatus());
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
  if (r.policy().strategy() == hosting::v1::RELEASE_STRATEGY_ROLLING &&
      !r.policy().rolling().has_max_surge() && r.auto_surge() == 0) {
    // The surge is sized once, on the first batch, by the memory the nodes have available.
    std::vector<int64_t> used;
    for (const auto& t : agents_.TaskMetrics(service, absl::Seconds(10))) {
      used.push_back(t.memory_bytes);
    }
    std::vector<NodeMemory> nodes;
    for (const auto& node : agents_.Capacity()) {
      nodes.push_back({node.memory_bytes, node.memory_available_bytes});
    }
    obs.task_memory_bytes = TaskMemoryNeed(s.spec, used);
    obs.spare_tasks = SpareTasks(nodes, obs.task_memory_bytes);
  }
  std::map<std::string, hosting::v1::TaskReport> reports;
  for (auto& t : agents_.Tasks(service)) reports[t.task_id()] = t;
  if (auto it = cluster.tasks.find(service); it != cluster.tasks.end()) {
    for (const auto& [rev, task] : it->second) {
      TaskView v;
      v.id = task.id;
      v.slot = task.slot;
      auto rep = reports.find(task.id);
      const hosting::v1::TaskReport* report = rep == reports.end() ? nullptr : &rep->second;
      v.ready = TaskReady(task, report, s.spec,
                          agents_.Agent(task.node_id).state == hosting::v1::AGENT_STATE_CONNECTED);
      if (report != nullptr) {
        v.unhealthy = report->probe_health() == hosting::v1::TASK_HEALTH_UNHEALTHY;
        v.detail = report->last_probe_error();
        v.ready_since = FromTimestamp(report->changed_at());
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
    if (clock_.Now() < FromTimestamp(s.rollout.warm_until())) continue;
    auto expire = [&](ServiceRecord& record, Mutation& m) -> absl::Status {
      const int64_t warm = record.rollout.warm_revision();
      // Gone meanwhile, or a release started: nothing to expire.
      if (warm == 0 || !record.rollout.release_id().empty()) {
        m.write = false;
        return absl::OkStatus();
      }
      record.rollout.Clear();
      m.Publish("release.warm_expired",
                absl::StrCat("revision ", warm, " is no longer kept warm; removing it"));
      m.events.back().set_revision(warm);
      return absl::OkStatus();
    };
    if (absl::Status st = state_.Mutate(s.spec.name(), expire).status(); !st.ok()) {
      LogWarning("warm revision not expired (retried next tick)",
                 {{"service", s.spec.name()}, {"error", st.ToString()}});
    }
  }
}

std::vector<RouteTarget> ReleaseManager::Targets(const ServiceRecord& s, const Cluster& cluster) {
  const std::string& name = s.spec.name();
  auto tasks = cluster.tasks.find(name);
  if (tasks == cluster.tasks.end()) return {};
  std::map<std::string, hosting::v1::TaskReport> reports;
  for (auto& t : agents_.Tasks(name)) reports[t.task_id()] = t;
  // Tasks on a node being drained leave the balancer (drained, then deleted once idle) before
  // Swarm stops them.
  std::vector<std::pair<int64_t, docker::TaskInfo>> routable;
  for (const auto& rt : tasks->second) {
    if (!cluster.traffic_off.contains(rt.second.node_id)) routable.push_back(rt);
  }
  return RouteTargets(s.spec, routable, reports, [this](const std::string& node) {
    return agents_.Agent(node).state == hosting::v1::AGENT_STATE_CONNECTED;
  });
}

void ReleaseManager::Tick() {
  // Only ticks wait for a tick: the API's calls change releases by compare-and-swap and never
  // wait behind the Docker, HAProxy or Prometheus calls made here.
  absl::MutexLock lock(&tick_mu_);
  absl::StatusOr<std::vector<ServiceRecord>> services = store_.ListServices();
  if (!services.ok()) {
    // HAProxy keeps what it has (and its own checks): nothing is routed from a failed read.
    TickProblem("tick", "listing services", services.status());
    return;
  }
  ExpireWarmRevisions(*services);
  absl::StatusOr<std::vector<ReleaseRecord>> active = store_.ListActiveReleases();
  if (!active.ok()) {
    TickProblem("tick", "listing active releases", active.status());
    return;
  }
  PaceReports(*active);
  // Without a release to advance, Docker is read only to keep HAProxy in line with the tasks,
  // and less often.
  const absl::Time now = clock_.Now();
  if (active->empty() &&
      (!router_.enabled() || now - last_full_tick_ < options_.idle_route_interval)) {
    return;
  }
  last_full_tick_ = now;

  // A release step decides on a fresh list (which the watch cache then serves to every
  // reader); keeping HAProxy in line while no release runs reads the cache's view.
  absl::StatusOr<std::shared_ptr<const SwarmView>> view =
      active->empty() ? reconciler_.View() : reconciler_.FreshView();
  if (!view.ok()) {
    TickProblem("tick", "listing Swarm", view.status());
    return;
  }
  TickProblem("tick", "", absl::OkStatus());
  Cluster cluster;
  for (const auto& s : (*view)->services) {
    std::optional<RevisionName> rn = ParseRevisionServiceName(s.name);
    if (rn) cluster.services[s.id] = {rn->service, rn->revision};
  }
  for (const auto& n : (*view)->nodes) {
    if (TrafficOff(n) || n.availability == "drain") cluster.traffic_off.insert(n.id);
  }
  for (const auto& t : (*view)->tasks) {
    auto it = cluster.services.find(t.service_id);
    if (it == cluster.services.end()) continue;
    cluster.tasks[it->second.first].emplace_back(it->second.second, t);
  }
  // Traffic first: the releases below read what HAProxy shows now. Only services that exist
  // are remembered.
  std::map<std::string, RouteStatus> routes;
  std::set<std::string> names;
  for (const auto& s : *services) {
    const std::string& name = s.spec.name();
    names.insert(name);
    routes[name] = router_.Sync(name, s.rollout, Targets(s, cluster));
  }
  routes_.swap(routes);
  router_.Retain(names);
  std::set<std::string> running = {"tick"};
  for (const auto& r : *active) running.insert(r.release().id());
  for (auto it = tick_problems_.begin(); it != tick_problems_.end();) {
    it = running.contains(it->first) ? std::next(it) : tick_problems_.erase(it);
  }
  for (auto& r : *active) AdvanceOne(std::move(r), cluster);
}

void ReleaseManager::TickProblem(const std::string& key, absl::string_view what,
                                 const absl::Status& status) {
  std::string problem = status.ok() ? "" : absl::StrCat(what, ": ", status.ToString());
  auto it = tick_problems_.find(key);
  const std::string last = it == tick_problems_.end() ? "" : it->second;
  if (problem == last) return;
  if (status.ok()) {
    LogInfo("release tick works again", {{"part", key}, {"was", last}});
    tick_problems_.erase(key);
    return;
  }
  LogWarning("release tick skipped a part (retried every tick; logged once)",
             {{"part", key}, {"error", problem}});
  tick_problems_[key] = std::move(problem);
}

void ReleaseManager::Wake(bool urgent) {
  absl::MutexLock lock(&wake_mu_);
  wake_ = true;
  urgent_ |= urgent;
}

void ReleaseManager::Loop() {
  absl::Time last_tick = absl::InfinitePast();
  while (true) {
    bool urgent = false;
    {
      absl::MutexLock lock(&wake_mu_);
      wake_mu_.AwaitWithTimeout(absl::Condition(&wake_), options_.tick);
      wake_ = false;
      urgent = std::exchange(urgent_, false);
    }
    if (stop_.HasBeenNotified()) return;
    // Woken by every agent's report while analysing: never more than one tick in this long.
    if (const absl::Duration since = absl::Now() - last_tick;
        !urgent && since < options_.metrics_tick_gap) {
      if (stop_.WaitForNotificationWithTimeout(options_.metrics_tick_gap - since)) return;
      absl::MutexLock lock(&wake_mu_);  // what woke meanwhile, this tick takes
      wake_ = false;
      urgent_ = false;
    }
    last_tick = absl::Now();
    if (!options_.acting || options_.acting()) Tick();
  }
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
  Wake();
  for (auto& t : threads_) t.join();
  threads_.clear();
  // Pre-pulls still running: their callbacks only publish; make sure none is left to run.
  std::map<std::string, std::shared_ptr<absl::Notification>> pulls;
  {
    absl::MutexLock lock(&tick_mu_);
    pulls.swap(pulls_);
  }
  for (auto& [id, done] : pulls) done->WaitForNotification();
}

}  // namespace hosting::controlplane
