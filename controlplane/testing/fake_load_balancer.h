#pragma once

#include <map>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "controlplane/traffic/load_balancer.h"

namespace hosting::controlplane {

// In-memory balancer with HAProxy's rules, for unit tests.
class FakeLoadBalancer final : public LoadBalancer {
 public:
  void AddBackend(const std::string& backend);
  void SetSessions(const std::string& backend, const std::string& name, int sessions);
  // What the balancer's own check says of a server ("L4OK", "L7OK", "L4CON", ...), and
  // whether it holds the server down.
  void SetCheck(const std::string& backend, const std::string& name, std::string status, bool up);
  void SetUnavailable(bool v);
  // Requests held for `backend` (Held() lists them).
  void SetHeld(const std::string& backend, HeldRequests held) {
    absl::MutexLock lock(&mu_);
    held_[backend] = held;
  }
  // The lowest total weight of ready servers any backend had after a change (from the moment
  // it had one): 0 means some request could have found no server.
  int min_ready_weight(const std::string& backend);

  absl::StatusOr<std::vector<LbServer>> Servers(const std::string& backend) override;
  absl::Status AddServer(const std::string& backend, const LbServer& server) override;
  absl::Status SetWeight(const std::string& backend, const std::string& name, int weight) override;
  absl::Status SetState(const std::string& backend, const std::string& name,
                        LbServer::State state) override;
  absl::Status DeleteServer(const std::string& backend, const std::string& name) override;
  absl::StatusOr<std::map<std::string, HeldRequests>> Held() override {
    absl::MutexLock lock(&mu_);
    if (unavailable_) return absl::UnavailableError("fake balancer unavailable");
    return held_;
  }

 private:
  absl::StatusOr<LbServer*> Find(const std::string& backend, const std::string& name)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Mutex mu_;
  bool unavailable_ ABSL_GUARDED_BY(mu_) = false;
  void Track(const std::string& backend) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::map<std::string, std::map<std::string, LbServer>> backends_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, int> min_ready_weight_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, HeldRequests> held_ ABSL_GUARDED_BY(mu_);
};

}  // namespace hosting::controlplane
