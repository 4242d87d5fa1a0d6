#include "controlplane/traffic/traffic_router.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "common/log.h"

namespace hosting::controlplane {

std::string TrafficRouter::ServerName(const RouteTarget& t) {
  return absl::StrCat("r", t.revision, "-", t.task_id.substr(0, 12));
}

std::map<std::string, int> TrafficRouter::Weights(const hosting::internal::Rollout& rollout,
                                                  const std::vector<RouteTarget>& targets) {
  std::map<int64_t, int> ready_per_revision;
  for (const auto& t : targets) {
    if (t.ready) ++ready_per_revision[t.revision];
  }
  // Share of each revision: the rollout's weight, or its ready task count (equal per task).
  std::map<int64_t, double> share;
  double total = 0;
  for (const auto& [rev, n] : ready_per_revision) {
    double s = n;
    if (!rollout.weights().empty()) {
      auto it = rollout.weights().find(rev);
      s = it == rollout.weights().end() ? 0 : it->second;
    }
    share[rev] = s;
    total += s;
  }
  if (total <= 0) {  // every weighted revision is without ready tasks: spread over what is ready
    for (auto& [rev, s] : share) s = ready_per_revision[rev];
  }
  double max_per_task = 0;
  for (const auto& [rev, s] : share) max_per_task = std::max(max_per_task, s / ready_per_revision[rev]);
  std::map<std::string, int> out;
  for (const auto& t : targets) {
    if (!t.ready) continue;
    const double per_task = share[t.revision] / ready_per_revision[t.revision];
    int w = 0;
    if (per_task > 0 && max_per_task > 0) {
      w = std::max(1, static_cast<int>(std::lround(per_task / max_per_task * 256)));
    }
    out[ServerName(t)] = w;
  }
  return out;
}

absl::StatusOr<std::vector<LbServer>> TrafficRouter::SyncBackend(
    const std::string& backend, const std::vector<RouteTarget>& targets,
    const std::map<std::string, int>& weights, const std::set<std::string>& drain,
    RouteStatus* status, bool* panic) {
  absl::StatusOr<std::vector<LbServer>> current = lb_->Servers(backend);
  if (!current.ok()) return current.status();
  std::map<std::string, const RouteTarget*> want;
  for (const auto& t : targets) {
    if (t.ready && !t.address.empty() && t.port > 0) want[ServerName(t)] = &t;
  }
  std::map<std::string, LbServer> have;
  for (auto& s : *current) have[s.name] = s;
  // Servers left as they are: tasks whose health nobody knows now, and, when no task is known
  // ready, every running one (an empty backend would fail every request).
  std::set<std::string> keep;
  const bool running = std::any_of(targets.begin(), targets.end(),
                                   [](const RouteTarget& t) { return t.running; });
  *panic = want.empty() && running;
  for (const auto& t : targets) {
    if (t.unknown || (*panic && t.running)) keep.insert(ServerName(t));
  }

  // Two passes: first everything that adds capacity (new servers, higher weights, back to
  // ready), then what takes it away, so that a switch never leaves a moment with no server.
  for (int pass = 0; pass < 2; ++pass) {
    for (const auto& [name, t] : want) {
      const int weight = weights.contains(name) ? weights.at(name) : 0;
      const LbServer::State state =
          drain.contains(t->task_id) ? LbServer::State::kDrain : LbServer::State::kReady;
      auto it = have.find(name);
      if (it == have.end()) {
        if (pass == 1) continue;
        LbServer s;
        s.name = name;
        s.address = t->address;
        s.port = t->port;
        s.weight = weight;
        s.check = t->check;
        absl::Status st = lb_->AddServer(backend, s);
        if (absl::IsAlreadyExists(st)) {
          // Still there in maintenance from an earlier life: bring it back.
          st = lb_->SetState(backend, name, state);
          if (st.ok()) st = lb_->SetWeight(backend, name, weight);
        } else if (st.ok() && state != LbServer::State::kReady) {
          st = lb_->SetState(backend, name, state);
        }
        if (!st.ok()) return st;
        if (status != nullptr) status->sessions[t->task_id] = 0;
        continue;
      }
      const bool raise = weight > it->second.weight;
      if (it->second.weight != weight && raise == (pass == 0)) {
        if (absl::Status st = lb_->SetWeight(backend, name, weight); !st.ok()) return st;
      }
      const bool to_ready = state == LbServer::State::kReady;
      if (it->second.state != state && to_ready == (pass == 0)) {
        if (absl::Status st = lb_->SetState(backend, name, state); !st.ok()) return st;
      }
    }
  }
  std::map<std::string, const RouteTarget*> by_name;
  for (const auto& t : targets) by_name[ServerName(t)] = &t;
  for (const auto& [name, s] : have) {
    auto target = by_name.find(name);
    if (status != nullptr && target != by_name.end()) {
      status->sessions[target->second->task_id] = s.sessions;
    }
    if (want.contains(name) || (keep.contains(name) && s.state != LbServer::State::kMaint)) {
      continue;
    }
    // Gone or unready (last: capacity goes after it was added): no new requests, then
    // deleted once idle.
    if (s.state != LbServer::State::kMaint) {
      if (absl::Status st = lb_->SetState(backend, name, LbServer::State::kMaint); !st.ok()) {
        return st;
      }
    }
    if (s.sessions == 0) {
      absl::Status st = lb_->DeleteServer(backend, name);
      if (!st.ok() && !absl::IsFailedPrecondition(st) && !absl::IsNotFound(st)) return st;
    }
  }
  return current;
}

void TrafficRouter::Report(const std::string& service, const std::string& kind,
                           const std::string& problem, const std::string& event_type,
                           const std::string& message) {
  {
    absl::MutexLock lock(&mu_);
    std::string& last = reported_[{service, kind}];
    if (last == problem) return;
    last = problem;
  }
  events_.Publish(event_type, service, 0, message);
}

void TrafficRouter::Retain(const std::set<std::string>& services) {
  absl::MutexLock lock(&mu_);
  for (auto it = reported_.begin(); it != reported_.end();) {
    it = services.contains(it->first.first) ? std::next(it) : reported_.erase(it);
  }
}

RouteStatus TrafficRouter::Sync(const std::string& service,
                                const hosting::internal::Rollout& rollout,
                                const std::vector<RouteTarget>& targets) {
  RouteStatus status;
  if (lb_ == nullptr) {
    status.detail = "no HAProxy configured (--haproxy)";
    return status;
  }
  const std::map<std::string, int> weights = Weights(rollout, targets);
  const std::set<std::string> drain(rollout.drain_tasks().begin(), rollout.drain_tasks().end());
  bool panic = false;
  absl::StatusOr<std::vector<LbServer>> servers =
      SyncBackend(service, targets, weights, drain, &status, &panic);
  if (servers.ok()) {
    status.routed = true;
    double total = 0;
    std::map<int64_t, double> per_rev;
    for (const auto& t : targets) {
      auto it = weights.find(ServerName(t));
      if (it == weights.end() || drain.contains(t.task_id)) continue;
      per_rev[t.revision] += it->second;
      total += it->second;
    }
    for (const auto& [rev, w] : per_rev) status.shares[rev] = total > 0 ? 100 * w / total : 0;
  } else {
    status.detail = std::string(servers.status().message());
  }
  // The preview backend (blue-green) is optional.
  std::vector<RouteTarget> preview;
  for (const auto& t : targets) {
    if (rollout.preview_revision() != 0 && t.revision == rollout.preview_revision()) {
      preview.push_back(t);
    }
  }
  hosting::internal::Rollout equal;
  bool preview_panic = false;
  absl::StatusOr<std::vector<LbServer>> pst = SyncBackend(
      service + "-preview", preview, Weights(equal, preview), {}, nullptr, &preview_panic);
  if (!pst.ok() && !absl::IsNotFound(pst.status())) {
    LogWarning("preview backend sync failed",
               {{"service", service}, {"error", pst.status().ToString()}});
  }

  const std::string problem = servers.ok() ? "" : status.detail;
  Report(service, "routed", problem, servers.ok() ? "traffic.routed" : "traffic.unrouted",
         servers.ok()
             ? absl::StrCat("HAProxy backend '", service, "' programmed with the service's ",
                            "ready tasks")
             : absl::StrCat("HAProxy backend '", service, "' not programmed: ", problem,
                            "; release weights fall back to replica counts"));
  if (!servers.ok()) return status;
  int running = 0;
  for (const auto& t : targets) running += t.running ? 1 : 0;
  Report(service, "panic", panic ? "panic" : "", panic ? "traffic.panic" : "traffic.unpanicked",
         panic ? absl::StrCat("no task of '", service, "' reads ready while ", running,
                              " run: their servers stay in HAProxy and its own checks choose")
               : absl::StrCat("tasks of '", service, "' read ready again"));
  // HAProxy checks a path per backend; a backend without "option httpchk" checks TCP only.
  std::string http_path;
  for (const auto& t : targets) {
    if (!t.http_path.empty()) http_path = t.http_path;
  }
  const bool tcp_only =
      !http_path.empty() && std::any_of(servers->begin(), servers->end(), [](const LbServer& s) {
        return s.check_status == "L4OK";
      });
  Report(service, "check", tcp_only ? "tcp" : "",
         tcp_only ? "traffic.check_mismatch" : "traffic.check_matched",
         tcp_only ? absl::StrCat("HAProxy checks the tasks of '", service, "' with TCP connects: ",
                                 "its backend has no 'option httpchk'; add 'option httpchk' and ",
                                 "'http-check send meth GET uri ", http_path, "' to it")
                  : absl::StrCat("HAProxy checks the tasks of '", service, "' over HTTP"));
  return status;
}

}  // namespace hosting::controlplane
