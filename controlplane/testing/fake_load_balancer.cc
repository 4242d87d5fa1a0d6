#include "controlplane/testing/fake_load_balancer.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace hosting::controlplane {

void FakeLoadBalancer::AddBackend(const std::string& backend) {
  absl::MutexLock lock(&mu_);
  backends_[backend];
}

void FakeLoadBalancer::SetSessions(const std::string& backend, const std::string& name,
                                   int sessions) {
  absl::MutexLock lock(&mu_);
  backends_[backend][name].sessions = sessions;
}

void FakeLoadBalancer::SetCheck(const std::string& backend, const std::string& name,
                                std::string status, bool up) {
  absl::MutexLock lock(&mu_);
  LbServer& s = backends_[backend][name];
  s.check_status = std::move(status);
  s.up = up;
}

void FakeLoadBalancer::SetUnavailable(bool v) {
  absl::MutexLock lock(&mu_);
  unavailable_ = v;
}

void FakeLoadBalancer::Track(const std::string& backend) {
  int total = 0;
  for (const auto& [name, s] : backends_[backend]) {
    if (s.state == LbServer::State::kReady) total += s.weight;
  }
  auto it = min_ready_weight_.find(backend);
  if (it == min_ready_weight_.end()) {
    if (total > 0) min_ready_weight_[backend] = total;
  } else {
    it->second = std::min(it->second, total);
  }
}

int FakeLoadBalancer::min_ready_weight(const std::string& backend) {
  absl::MutexLock lock(&mu_);
  auto it = min_ready_weight_.find(backend);
  return it == min_ready_weight_.end() ? -1 : it->second;
}

absl::StatusOr<LbServer*> FakeLoadBalancer::Find(const std::string& backend,
                                                 const std::string& name) {
  if (unavailable_) return absl::UnavailableError("fake balancer unavailable");
  auto b = backends_.find(backend);
  if (b == backends_.end()) return absl::NotFoundError(absl::StrCat("no backend ", backend));
  auto s = b->second.find(name);
  if (s == b->second.end()) return absl::NotFoundError(absl::StrCat("no server ", name));
  return &s->second;
}

absl::StatusOr<std::vector<LbServer>> FakeLoadBalancer::Servers(const std::string& backend) {
  absl::MutexLock lock(&mu_);
  if (unavailable_) return absl::UnavailableError("fake balancer unavailable");
  auto b = backends_.find(backend);
  if (b == backends_.end()) return absl::NotFoundError(absl::StrCat("no backend ", backend));
  std::vector<LbServer> out;
  for (const auto& [name, s] : b->second) out.push_back(s);
  return out;
}

absl::Status FakeLoadBalancer::AddServer(const std::string& backend, const LbServer& server) {
  absl::MutexLock lock(&mu_);
  if (unavailable_) return absl::UnavailableError("fake balancer unavailable");
  auto b = backends_.find(backend);
  if (b == backends_.end()) return absl::NotFoundError(absl::StrCat("no backend ", backend));
  if (b->second.contains(server.name)) return absl::AlreadyExistsError(server.name);
  LbServer s = server;
  s.state = LbServer::State::kReady;
  b->second[s.name] = s;
  Track(backend);
  return absl::OkStatus();
}

absl::Status FakeLoadBalancer::SetWeight(const std::string& backend, const std::string& name,
                                         int weight) {
  absl::MutexLock lock(&mu_);
  absl::StatusOr<LbServer*> s = Find(backend, name);
  if (!s.ok()) return s.status();
  (*s)->weight = weight;
  Track(backend);
  return absl::OkStatus();
}

absl::Status FakeLoadBalancer::SetState(const std::string& backend, const std::string& name,
                                        LbServer::State state) {
  absl::MutexLock lock(&mu_);
  absl::StatusOr<LbServer*> s = Find(backend, name);
  if (!s.ok()) return s.status();
  (*s)->state = state;
  Track(backend);
  return absl::OkStatus();
}

absl::Status FakeLoadBalancer::DeleteServer(const std::string& backend, const std::string& name) {
  absl::MutexLock lock(&mu_);
  absl::StatusOr<LbServer*> s = Find(backend, name);
  if (!s.ok()) return s.status();
  if ((*s)->state != LbServer::State::kMaint) {
    return absl::FailedPreconditionError("server is not in maintenance");
  }
  if ((*s)->sessions > 0) return absl::FailedPreconditionError("server still has sessions");
  backends_[backend].erase(name);
  return absl::OkStatus();
}

}  // namespace hosting::controlplane
