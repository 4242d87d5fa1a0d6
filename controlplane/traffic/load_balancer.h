#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"

namespace hosting::controlplane {

// One server of a load-balancer backend (one task).
struct LbServer {
  enum class State { kReady, kDrain, kMaint };
  std::string name;
  std::string address;
  int port = 0;
  // 0..256; the share of a backend's traffic is proportional to it.
  int weight = 0;
  State state = State::kReady;
  // Sessions currently using the server.
  int sessions = 0;
};

const char* LbStateName(LbServer::State s);

// The front door's control API (brief, decision 3). The real implementation speaks HAProxy's
// runtime API; FakeLoadBalancer is for unit tests.
class LoadBalancer {
 public:
  virtual ~LoadBalancer() = default;
  // NOT_FOUND when the backend does not exist; UNAVAILABLE when the balancer cannot be reached.
  virtual absl::StatusOr<std::vector<LbServer>> Servers(const std::string& backend) = 0;
  // Adds a server that takes traffic at once (state ready).
  virtual absl::Status AddServer(const std::string& backend, const LbServer& server) = 0;
  virtual absl::Status SetWeight(const std::string& backend, const std::string& name,
                                 int weight) = 0;
  virtual absl::Status SetState(const std::string& backend, const std::string& name,
                                LbServer::State state) = 0;
  // The server must be in maintenance; FAILED_PRECONDITION while it still has sessions.
  virtual absl::Status DeleteServer(const std::string& backend, const std::string& name) = 0;
};

// HAProxy's runtime API (the "stats socket" at admin level) over a unix socket path or a
// "host:port" TCP address; one connection per command. Dynamic servers ("add server") need a
// backend with a dynamic algorithm (roundrobin, leastconn, random).
class HaproxyLoadBalancer final : public LoadBalancer {
 public:
  // "unix:///run/haproxy/admin.sock", "/run/haproxy/admin.sock" or "127.0.0.1:9999".
  explicit HaproxyLoadBalancer(std::string address);

  absl::StatusOr<std::vector<LbServer>> Servers(const std::string& backend) override;
  absl::Status AddServer(const std::string& backend, const LbServer& server) override;
  absl::Status SetWeight(const std::string& backend, const std::string& name, int weight) override;
  absl::Status SetState(const std::string& backend, const std::string& name,
                        LbServer::State state) override;
  absl::Status DeleteServer(const std::string& backend, const std::string& name) override;

  // Sends one command and returns HAProxy's answer.
  absl::StatusOr<std::string> Execute(absl::string_view command);

  // The servers of `backend` in an answer to "show servers state" (name, address, port, weight,
  // admin state), and their open sessions from "show stat" CSV.
  static std::vector<LbServer> ParseServersState(const std::string& backend,
                                                 absl::string_view text);
  static void AddSessions(const std::string& backend, absl::string_view stat_csv,
                          std::vector<LbServer>& servers);

 private:
  std::string address_;
};

// Opens the balancer an address names; nullptr for "".
std::unique_ptr<LoadBalancer> OpenLoadBalancer(const std::string& address);

}  // namespace hosting::controlplane
