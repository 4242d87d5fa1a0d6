#include "controlplane/reconcile/reconciler.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/fault.h"
#include "common/log.h"
#include "common/proto_time.h"
#include "common/status_macros.h"
#include "controlplane/spec/swarm_spec.h"
#include "google/protobuf/util/time_util.h"

namespace hosting::controlplane {
namespace {

using hosting::v1::ServicePhase;

int64_t RevisionOf(const docker::ServiceInfo& s) {
  auto it = s.labels.find(kLabelRevision);
  int64_t r = 0;
  if (it != s.labels.end()) r = std::strtoll(it->second.c_str(), nullptr, 10);
  return r;
}

std::string LabelOr(const docker::ServiceInfo& s, const char* key) {
  auto it = s.labels.find(key);
  return it == s.labels.end() ? "" : it->second;
}

}  // namespace

Reconciler::Reconciler(Store& store, docker::DockerClient& docker, EventLog& events,
                       HostdMetrics& metrics, Clock& clock, ReconcilerOptions options)
    : store_(store), docker_(docker), events_(events), metrics_(metrics), clock_(clock),
      options_(std::move(options)),
      queue_(clock),
      cache_(docker, clock, SwarmCache::Options{options_.controller_id}) {}

void Reconciler::Acted(const std::string& action) {
  metrics_.CountAction(action);
  cache_.Invalidate();  // what hostd just wrote shows in the next reads
}

Reconciler::~Reconciler() { Stop(); }

void Reconciler::Enqueue(const std::string& service) {
  queue_.Add(service);
  metrics_.SetQueueDepth(static_cast<double>(queue_.Depth()));
}

void Reconciler::DesiredStateChanged(const std::string& service, int64_t revision) {
  SetState(service, hosting::v1::SERVICE_PHASE_PROGRESSING,
           absl::StrCat("revision ", revision, ": change accepted, reconciling"));
  Enqueue(service);
}

docker::Filters Reconciler::OwnedBy(const std::string& service) const {
  std::vector<std::string> labels = {absl::StrCat(kLabelController, "=", options_.controller_id)};
  labels.push_back(service.empty() ? std::string(kLabelService)
                                   : absl::StrCat(kLabelService, "=", service));
  return {{"label", labels}};
}

void Reconciler::EnqueueAll() {
  if (auto records = store_.ListServices(); records.ok()) {
    SetStoreReachable(true, "the resync listed the desired state");
    for (const auto& r : *records) Enqueue(r.spec.name());
    metrics_.SetServices(static_cast<double>(records->size()));
  } else if (IsUnreachable(records.status())) {
    SetStoreReachable(false, std::string(records.status().message()));
  }
  // Orphans: Swarm services of hosted services that no longer have a desired state.
  if (auto swarm = docker_.ListServices(OwnedBy("")); swarm.ok()) {
    for (const auto& s : *swarm) Enqueue(LabelOr(s, kLabelService));
  }
}

void Reconciler::SetState(const std::string& service, ServicePhase phase, std::string message) {
  absl::MutexLock lock(&mu_);
  SyncState& st = state_[service];
  st.phase = phase;
  st.message = std::move(message);
  st.last = clock_.Now();
}

absl::Status Reconciler::EnsureNetwork() {
  if (network_ready_.load()) return absl::OkStatus();
  RETURN_IF_ERROR(docker_.EnsureOverlayNetwork(options_.network));
  network_ready_ = true;
  return absl::OkStatus();
}

absl::StatusOr<std::map<std::string, std::string>> Reconciler::SecretIds(
    const hosting::v1::ServiceSpec& spec) {
  std::map<std::string, std::string> ids;
  for (const hosting::v1::SecretMount& m : spec.secrets()) {
    absl::StatusOr<std::string> id = docker_.SecretId(m.name());
    if (absl::IsNotFound(id.status())) {
      return absl::FailedPreconditionError(absl::StrCat(
          "secret '", m.name(), "' does not exist in the Swarm: create it with docker secret create ",
          m.name(), " FILE"));
    }
    if (!id.ok()) return id.status();
    ids[m.name()] = *id;
  }
  return ids;
}

absl::StatusOr<int64_t> Reconciler::EnsureRevision(const std::string& name,
                                                   const hosting::v1::ServiceSpec& spec,
                                                   int64_t revision, int64_t replicas,
                                                   const docker::ServiceInfo* current) {
  const std::string want = RevisionServiceName(name, revision);
  const std::string hash = TemplateHash(spec);
  std::optional<Applied> last;
  {
    absl::MutexLock lock(&mu_);
    if (auto it = applied_.find(want); it != applied_.end()) last = it->second;
  }

  int64_t running = -1;  // -1: the Swarm service was just created
  if (current == nullptr) {
    ASSIGN_OR_RETURN(auto secret_ids, SecretIds(spec));
    nlohmann::json spec_json = BuildSwarmSpec(spec, revision, static_cast<int32_t>(replicas),
                                              options_.network, options_.controller_id,
                                              secret_ids);
    absl::StatusOr<std::string> id = docker_.CreateService(spec_json);
    if (absl::IsAlreadyExists(id.status())) {
      // Either created between our list and now (look again), or the name is taken by a
      // Swarm service this hostd does not own, which it must never touch.
      absl::StatusOr<docker::ServiceInfo> taken = docker_.InspectService(want);
      if (taken.ok() && LabelOr(*taken, kLabelController) != options_.controller_id) {
        std::string owner = LabelOr(*taken, kLabelController);
        return absl::FailedPreconditionError(absl::StrCat(
            "Swarm service ", want, " exists and is not managed by this hostd (",
            owner.empty() ? "no hosting.controller label" : "hosting.controller=" + owner,
            "); remove it or rename the service"));
      }
      return int64_t{-1};
    }
    if (!id.ok()) return id.status();
    const bool repair = last.has_value();
    Acted(repair ? "repaired" : "created");
    events_.Publish(repair ? "reconcile.repaired" : "reconcile.created", name, revision,
                    repair ? absl::StrCat("Swarm service ", want,
                                          " was removed outside hostd; created it again")
                           : absl::StrCat("created Swarm service ", want, " with ", replicas,
                                          " replicas of ", spec.image()),
                    {{"swarm_service", want}, {"replicas", std::to_string(replicas)}});
  } else {
    running = std::max<int64_t>(current->running_tasks, 0);
    const bool spec_drift = LabelOr(*current, kLabelSpecHash) != hash ||
                            LabelOr(*current, kLabelService) != name;
    if (spec_drift) {
      ASSIGN_OR_RETURN(auto secret_ids, SecretIds(spec));
      nlohmann::json spec_json = BuildSwarmSpec(spec, revision, static_cast<int32_t>(replicas),
                                                options_.network, options_.controller_id,
                                                secret_ids);
      RETURN_IF_ERROR(docker::UpdateServiceWithRetry(
          docker_, current->id, [&](nlohmann::json& s) {
            s = spec_json;
            return absl::OkStatus();
          }));
      const bool repair = last.has_value() && last->hash == hash;
      Acted(repair ? "repaired" : "updated");
      events_.Publish(repair ? "reconcile.repaired" : "reconcile.updated", name, revision,
                      absl::StrCat(repair ? "spec of Swarm service " : "rewrote Swarm service ",
                                   want, repair ? " was changed outside hostd; restored it" : ""),
                      {{"swarm_service", want}});
    } else if (current->replicas != replicas) {
      RETURN_IF_ERROR(docker::UpdateServiceWithRetry(
          docker_, current->id, [&](nlohmann::json& s) {
            s["Mode"] = {{"Replicated", {{"Replicas", replicas}}}};
            return absl::OkStatus();
          }));
      const bool repair = last.has_value() && last->replicas == replicas;
      Acted(repair ? "repaired" : "scaled");
      events_.Publish(
          repair ? "reconcile.repaired" : "reconcile.scaled", name, revision,
          repair ? absl::StrCat("Swarm service ", want, " was scaled to ", current->replicas,
                                " outside hostd; restored ", replicas, " replicas")
                 : absl::StrCat("scaled Swarm service ", want, " from ", current->replicas,
                                " to ", replicas),
          {{"swarm_service", want},
           {"observed_replicas", std::to_string(current->replicas)},
           {"replicas", std::to_string(replicas)}});
    }
  }
  {
    absl::MutexLock lock(&mu_);
    applied_[want] = Applied{replicas, hash};
  }

  return running;
}

absl::StatusOr<std::optional<absl::Duration>> Reconciler::Sync(const std::string& name) {
  absl::StatusOr<ServiceRecord> record = store_.GetService(name);
  if (!record.ok() && !absl::IsNotFound(record.status())) {
    return WithFaultSource(record.status(), FaultSource::kStore);
  }
  ASSIGN_OR_RETURN(std::vector<docker::ServiceInfo> swarm, docker_.ListServices(OwnedBy(name)));

  if (!record.ok()) {
    // No desired state: everything labelled for this service goes.
    for (const auto& s : swarm) {
      absl::Status st = docker_.RemoveService(s.id);
      if (!st.ok() && !absl::IsNotFound(st)) return st;
      Acted("removed");
      events_.Publish("reconcile.removed", name, RevisionOf(s),
                      absl::StrCat("removed Swarm service ", s.name, ": service '", name,
                                   "' has no desired state"),
                      {{"swarm_service", s.name}});
      absl::MutexLock lock(&mu_);
      applied_.erase(s.name);
    }
    absl::MutexLock lock(&mu_);
    state_.erase(name);
    return std::optional<absl::Duration>();
  }

  RETURN_IF_ERROR(EnsureNetwork());
  const hosting::v1::ServiceSpec& spec = record->spec;
  const int64_t revision = record->revision;
  const int64_t replicas = spec.replicas();
  if (!record->rollout.replicas().empty()) return SyncRollout(*record, swarm);
  const std::string want = RevisionServiceName(name, revision);

  const docker::ServiceInfo* current = nullptr;
  std::vector<const docker::ServiceInfo*> others;
  for (const auto& s : swarm) {
    if (s.name == want) {
      current = &s;
    } else {
      others.push_back(&s);
    }
  }

  ASSIGN_OR_RETURN(int64_t running, EnsureRevision(name, spec, revision, replicas, current));
  if (running < 0) return std::optional<absl::Duration>(options_.progress_poll);
  const bool current_ready = current != nullptr && current->replicas == replicas &&
                             running >= replicas;
  if (!others.empty()) {
    if (!current_ready) {
      std::vector<std::string> names;
      for (const auto* o : others) names.push_back(o->name);
      SetState(name, hosting::v1::SERVICE_PHASE_PROGRESSING,
               absl::StrCat("revision ", revision, ": ", running, "/", replicas,
                            " tasks running; keeping ", absl::StrJoin(names, ", "),
                            " until it is complete"));
      return std::optional<absl::Duration>(options_.progress_poll);
    }
    for (const auto* o : others) {
      absl::Status st = docker_.RemoveService(o->id);
      if (!st.ok() && !absl::IsNotFound(st)) return st;
      Acted("removed");
      events_.Publish("reconcile.removed", name, RevisionOf(*o),
                      absl::StrCat("removed Swarm service ", o->name, ": revision ", revision,
                                   " runs all ", replicas, " replicas"),
                      {{"swarm_service", o->name}});
      absl::MutexLock lock(&mu_);
      applied_.erase(o->name);
    }
  }
  // Scaling down is complete only when the surplus tasks have stopped.
  if (!current_ready || running != replicas) {
    SetState(name, hosting::v1::SERVICE_PHASE_PROGRESSING,
             absl::StrCat("revision ", revision, ": ", running, "/", replicas, " tasks running"));
    return std::optional<absl::Duration>(options_.progress_poll);
  }
  SetState(name, hosting::v1::SERVICE_PHASE_READY,
           absl::StrCat("revision ", revision, ": ", replicas, "/", replicas, " tasks running"));
  return std::optional<absl::Duration>();
}

absl::StatusOr<std::optional<absl::Duration>> Reconciler::SyncRollout(
    const ServiceRecord& record, const std::vector<docker::ServiceInfo>& swarm) {
  const std::string& name = record.spec.name();
  const auto& want = record.rollout.replicas();
  std::vector<RevisionRecord> history;
  bool history_read = false;
  bool converged = true;
  std::vector<std::string> parts;
  // Oldest revision first (protobuf maps have no order).
  for (const auto& [revision, replicas] : std::map<int64_t, int32_t>(want.begin(), want.end())) {
    const hosting::v1::ServiceSpec* spec = &record.spec;
    // A canary's baseline runs another revision's spec under its own number.
    const int64_t spec_revision = SpecRevision(record, revision);
    if (spec_revision != record.revision) {
      if (!history_read) {
        ASSIGN_OR_RETURN(history, store_.ListRevisions(name));
        history_read = true;
      }
      auto it = std::find_if(
          history.begin(), history.end(),
          [wanted = spec_revision](const RevisionRecord& r) { return r.revision == wanted; });
      if (it == history.end()) {
        return absl::FailedPreconditionError(absl::StrCat(
            "release ", record.rollout.release_id(), " needs revision ", spec_revision, " of '",
            name, "', which is no longer in the revision history"));
      }
      spec = &it->spec;
    }
    hosting::v1::ServiceSpec baseline_spec;
    if (spec_revision != revision) {
      baseline_spec = *spec;
      (*baseline_spec.mutable_labels())[kLabelBaselineOf] = absl::StrCat(spec_revision);
      spec = &baseline_spec;
    }
    const std::string swarm_name = RevisionServiceName(name, revision);
    const docker::ServiceInfo* current = nullptr;
    for (const auto& s : swarm) {
      if (s.name == swarm_name) current = &s;
    }
    ASSIGN_OR_RETURN(int64_t running, EnsureRevision(name, *spec, revision, replicas, current));
    if (running != replicas || current == nullptr || current->replicas != replicas) {
      converged = false;
    }
    parts.push_back(absl::StrCat("r", revision, " ", std::max<int64_t>(running, 0), "/", replicas));
  }
  // Revisions the rollout no longer lists go; the release drained them first.
  for (const auto& s : swarm) {
    if (want.contains(RevisionOf(s))) continue;
    absl::Status st = docker_.RemoveService(s.id);
    if (!st.ok() && !absl::IsNotFound(st)) return st;
    Acted("removed");
    events_.Publish("reconcile.removed", name, RevisionOf(s),
                    absl::StrCat("removed Swarm service ", s.name, ": not in the rollout of ",
                                 record.rollout.release_id().empty()
                                     ? std::string("the service")
                                     : "release " + record.rollout.release_id()),
                    {{"swarm_service", s.name}});
    absl::MutexLock lock(&mu_);
    applied_.erase(s.name);
  }
  std::string message = absl::StrCat(
      record.rollout.release_id().empty() ? std::string("revisions")
                                          : "release " + record.rollout.release_id(),
      ": ", absl::StrJoin(parts, ", "), " tasks running");
  SetState(name,
           converged ? hosting::v1::SERVICE_PHASE_READY : hosting::v1::SERVICE_PHASE_PROGRESSING,
           message);
  if (!converged) return std::optional<absl::Duration>(options_.progress_poll);
  return std::optional<absl::Duration>();
}

hosting::v1::ServiceStatus Reconciler::BuildStatus(const ServiceRecord& record,
                                                   const std::vector<docker::ServiceInfo>& swarm) {
  hosting::v1::ServiceStatus status;
  std::vector<const docker::ServiceInfo*> mine;
  for (const auto& s : swarm) {
    auto it = s.labels.find(kLabelService);
    if (it != s.labels.end() && it->second == record.spec.name()) mine.push_back(&s);
  }
  std::sort(mine.begin(), mine.end(), [](const auto* a, const auto* b) {
    return RevisionOf(*a) > RevisionOf(*b);
  });
  int32_t desired = 0;
  int32_t running = 0;
  bool current_seen = false;
  for (const auto* s : mine) {
    auto* rs = status.add_revisions();
    rs->set_revision(RevisionOf(*s));
    rs->set_swarm_service_name(s->name);
    rs->set_swarm_service_id(s->id);
    // Parsed once: status reads run at API rates.
    static const nlohmann::json::json_pointer kImage("/TaskTemplate/ContainerSpec/Image");
    rs->set_image(s->spec.value(kImage, ""));
    rs->set_desired_replicas(static_cast<int32_t>(std::max<int64_t>(s->replicas, 0)));
    rs->set_running_tasks(static_cast<int32_t>(std::max<int64_t>(s->running_tasks, 0)));
    rs->set_current(rs->revision() == record.revision);
    current_seen |= rs->current();
    desired += rs->desired_replicas();
    running += rs->running_tasks();
  }
  status.set_desired_replicas(desired);
  status.set_running_tasks(running);

  SyncState st;
  bool have_state = false;
  {
    absl::MutexLock lock(&mu_);
    if (auto it = state_.find(record.spec.name()); it != state_.end()) {
      st = it->second;
      have_state = true;
    }
  }
  // The live comparison decides READY; the last sync explains anything else.
  bool converged = current_seen && mine.size() == 1 &&
                   mine[0]->replicas == record.spec.replicas() &&
                   mine[0]->running_tasks == record.spec.replicas();
  if (!record.rollout.replicas().empty()) {
    const auto& want = record.rollout.replicas();
    converged = mine.size() == want.size() &&
                std::all_of(mine.begin(), mine.end(), [&](const docker::ServiceInfo* s) {
                  auto it = want.find(RevisionOf(*s));
                  return it != want.end() && s->replicas == it->second &&
                         s->running_tasks == it->second;
                });
  }
  if (converged && (!have_state || st.phase != hosting::v1::SERVICE_PHASE_DEGRADED)) {
    status.set_phase(hosting::v1::SERVICE_PHASE_READY);
    status.set_message(
        record.rollout.replicas().empty()
            ? absl::StrCat("revision ", record.revision, ": ", record.spec.replicas(), "/",
                           record.spec.replicas(), " tasks running")
            : absl::StrCat("revisions ", desired, "/", desired, " tasks running",
                           record.rollout.release_id().empty()
                               ? std::string()
                               : " (release " + record.rollout.release_id() + ")"));
  } else if (have_state && st.phase == hosting::v1::SERVICE_PHASE_DEGRADED) {
    status.set_phase(st.phase);
    status.set_message(st.message);
  } else {
    status.set_phase(hosting::v1::SERVICE_PHASE_PROGRESSING);
    status.set_message(have_state && !st.message.empty()
                           ? st.message
                           : absl::StrCat("revision ", record.revision, " is being reconciled"));
  }
  if (have_state) {
    *status.mutable_last_reconciled() = ToTimestamp(st.last);
  }
  return status;
}

absl::StatusOr<std::shared_ptr<const SwarmView>> Reconciler::View() {
  if (!cache_running_.load()) return cache_.Relist();
  return cache_.View();
}

absl::StatusOr<hosting::v1::ServiceStatus> Reconciler::Observe(const ServiceRecord& record) {
  ASSIGN_OR_RETURN(std::shared_ptr<const SwarmView> view, View());
  hosting::v1::ServiceStatus status = BuildStatus(record, view->services);
  *status.mutable_observed_at() = ToTimestamp(view->listed_at);
  return status;
}

absl::StatusOr<std::map<std::string, hosting::v1::ServiceStatus>> Reconciler::ObserveAll(
    const std::vector<ServiceRecord>& records) {
  ASSIGN_OR_RETURN(std::shared_ptr<const SwarmView> view, View());
  std::map<std::string, hosting::v1::ServiceStatus> out;
  for (const auto& r : records) {
    hosting::v1::ServiceStatus& status = out[r.spec.name()] = BuildStatus(r, view->services);
    *status.mutable_observed_at() = ToTimestamp(view->listed_at);
  }
  return out;
}

void Reconciler::SetDockerReachable(bool reachable, const std::string& detail) {
  const bool was = docker_reachable_.exchange(reachable);
  metrics_.SetDockerReachable(reachable);
  bool announce;
  {
    absl::MutexLock lock(&mu_);
    announce = was != reachable || !docker_state_announced_;
    docker_state_announced_ = true;
  }
  if (!announce) return;
  if (reachable) {
    LogInfo("docker engine reachable", {{"detail", detail}});
    events_.Publish("docker.connected", "", 0, absl::StrCat("Docker engine reachable: ", detail));
  } else {
    network_ready_ = false;  // the engine may come back without it
    LogWarning("docker engine unreachable", {{"error", detail}});
    events_.Publish("docker.unreachable", "", 0,
                    absl::StrCat("Docker engine unreachable: ", detail,
                                 "; desired state is kept and applied when it returns"));
  }
}

void Reconciler::SetStoreReachable(bool reachable, const std::string& detail) {
  const bool was = store_reachable_.exchange(reachable);
  metrics_.SetStoreReachable(reachable);
  if (was == reachable) return;
  if (reachable) {
    LogInfo("store reachable again", {{"detail", detail}});
    events_.Publish("store.reachable", "", 0, absl::StrCat("the store answers again: ", detail));
  } else {
    LogWarning("store unreachable", {{"error", detail}});
    events_.Publish("store.unreachable", "", 0,
                    absl::StrCat("the store does not answer: ", detail,
                                 "; Swarm keeps running what it runs, syncs are retried"));
  }
}

void Reconciler::ObserveStore(const absl::Status& status) {
  if (status.ok()) {
    SetStoreReachable(true, "the leader lease was read");
  } else if (IsUnreachable(status)) {
    SetStoreReachable(false, std::string(status.message()));
  }
}

void Reconciler::SyncFailed(const std::string& service, const absl::Status& status) {
  const FaultSource source = FaultSourceOf(status);
  const bool unreachable = IsUnreachable(status);
  std::string message(status.message());
  if (unreachable && source == FaultSource::kStore) {
    message = absl::StrCat("the store is unreachable: ", message);
  } else if (unreachable && source == FaultSource::kDocker) {
    message = absl::StrCat("Docker is unreachable: ", message);
  }
  bool changed;
  {
    absl::MutexLock lock(&mu_);
    SyncState& st = state_[service];
    changed = st.phase != hosting::v1::SERVICE_PHASE_DEGRADED || st.message != message;
  }
  SetState(service, hosting::v1::SERVICE_PHASE_DEGRADED, message);
  if (unreachable && source == FaultSource::kDocker) {
    SetDockerReachable(false, std::string(status.message()));
  } else if (unreachable && source == FaultSource::kStore) {
    SetStoreReachable(false, std::string(status.message()));
  } else if (changed) {
    // Only transitions: a failing service retried with backoff must not flood the log. A fenced
    // sync is the elector's business; it is named, not counted as Docker's or the store's.
    events_.Publish("reconcile.failed", service, 0, message,
                    {{"code", absl::StatusCodeToString(status.code())},
                     {"source", FaultSourceName(source)}});
  }
}

void Reconciler::WorkerLoop() {
  while (std::optional<std::string> key = queue_.Get()) {
    if (options_.acting && !options_.acting()) {
      queue_.Forget(*key);  // the leader syncs it; if this hostd is elected, EnqueueAll
      queue_.Done(*key);
      continue;
    }
    const absl::Time start = clock_.Now();
    absl::StatusOr<std::optional<absl::Duration>> result = Sync(*key);
    metrics_.ObserveReconcile(result.ok() ? "ok" : "error",
                              absl::ToDoubleSeconds(clock_.Now() - start));
    if (result.ok()) {
      // A sync reads the store and lists Swarm: both answered.
      SetStoreReachable(true, "a sync read the desired state");
      if (!docker_reachable_.load()) SetDockerReachable(true, "a sync listed Swarm");
      queue_.Forget(*key);
      if (result->has_value()) queue_.AddAfter(*key, **result);
    } else {
      SyncFailed(*key, result.status());
      queue_.AddRateLimited(*key);
    }
    queue_.Done(*key);
    metrics_.SetQueueDepth(static_cast<double>(queue_.Depth()));
  }
}

void Reconciler::EventLoop() {
  absl::Duration backoff = absl::Milliseconds(250);
  int64_t since = 0;
  while (!stop_.HasBeenNotified()) {
    absl::StatusOr<docker::EngineInfo> info = docker_.Info();
    if (!info.ok()) {
      SetDockerReachable(false, std::string(info.status().message()));
      stop_.WaitForNotificationWithTimeout(backoff);
      backoff = std::min(backoff * 2, absl::Seconds(2));
      continue;
    }
    backoff = absl::Milliseconds(250);
    SetDockerReachable(true, absl::StrCat("engine ", info->server_version, ", node ",
                                          info->node_id, info->control_available ? " (manager)" : ""));
    // Lists are the truth: after (re)connecting, every service is looked at again.
    cache_.Invalidate();
    EnqueueAll();
    // Docker's own time, not the injected clock: the engine compares it with its clock.
    if (since == 0) since = absl::ToUnixSeconds(absl::Now());
    absl::Status st = docker_.StreamEvents(
        since, {{"type", {"service"}}},
        [&](const docker::Event& e) {
          since = std::max<int64_t>(since, e.time_nano / 1'000'000'000);
          auto it = e.attributes.find("name");
          if (it == e.attributes.end()) return;
          std::optional<RevisionName> rn = ParseRevisionServiceName(it->second);
          if (!rn) return;
          cache_.Invalidate();
          Enqueue(rn->service);
          std::map<std::string, std::string> attrs = {{"swarm_service", it->second}};
          for (const auto& [k, v] : e.attributes) {
            if (k != "name") attrs[k] = v;
          }
          hosting::v1::Event event;
          event.set_type(absl::StrCat("swarm.service.", e.action));
          event.set_service(rn->service);
          event.set_revision(rn->revision);
          event.set_source("docker");
          event.set_message(absl::StrCat("Swarm service ", it->second, ": ", e.action));
          for (auto& [k, v] : attrs) (*event.mutable_attributes())[k] = v;
          *event.mutable_time() =
              google::protobuf::util::TimeUtil::NanosecondsToTimestamp(e.time_nano);
          events_.Publish(std::move(event));
        },
        [&] { return stop_.HasBeenNotified(); });
    if (stop_.HasBeenNotified()) break;
    LogWarning("docker event stream ended; reconnecting", {{"status", st.ToString()}});
    stop_.WaitForNotificationWithTimeout(absl::Milliseconds(100));
  }
}

void Reconciler::ResyncLoop() {
  // On the clock, looked at often: whatever failed before (Docker, the store), the next
  // resync comes. A sync against an engine that is down fails fast and backs off.
  const absl::Duration poll = std::min(options_.resync_interval, absl::Milliseconds(100));
  absl::Time last = clock_.Now();
  while (!stop_.WaitForNotificationWithTimeout(poll)) {
    if (clock_.Now() - last < options_.resync_interval) continue;
    last = clock_.Now();
    if (!options_.acting || options_.acting()) EnqueueAll();
  }
}

void Reconciler::Start() {
  absl::MutexLock lock(&mu_);
  if (started_) return;
  started_ = true;
  cache_.Start();
  cache_running_ = true;
  for (int i = 0; i < options_.workers; ++i) threads_.emplace_back([this] { WorkerLoop(); });
  threads_.emplace_back([this] { EventLoop(); });
  threads_.emplace_back([this] { ResyncLoop(); });
}

void Reconciler::Stop() {
  {
    absl::MutexLock lock(&mu_);
    if (!started_) return;
    started_ = false;
  }
  if (!stop_.HasBeenNotified()) stop_.Notify();
  queue_.ShutDown();
  for (auto& t : threads_) t.join();
  threads_.clear();
  cache_running_ = false;
  cache_.Stop();
}

}  // namespace hosting::controlplane
