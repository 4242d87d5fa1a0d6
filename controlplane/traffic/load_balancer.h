#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace hosting::controlplane {

// The balancer's own check of a server: it keeps working when the control plane does not, so
// a task that dies while hostd is away leaves rotation by itself (brief, decision 3).
struct LbCheck {
  bool enabled = false;
  // Where the check connects; 0: the server's port.
  int port = 0;
  absl::Duration interval = absl::Seconds(2);
  // Consecutive failures that take the server down, successes that bring it back.
  int fall = 2;
  int rise = 1;
};

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
  // AddServer: the balancer's own check to give the server.
  LbCheck check;
  // Servers: false while the balancer's own check (or its passive observation of failed
  // connections) holds the server down, whatever its admin state.
  bool up = true;
  // Servers: the last check's result as the balancer names it ("L7OK", "L4OK", "L4CON", ...;
  // empty without a check). L4OK means a TCP check: the backend checks no HTTP path.
  std::string check_status;
};

const char* LbStateName(LbServer::State s);

// Requests the front door held for a backend that had no server (deploy/haproxy: the "holds"
// stick table the frontends count them in before hold_for_servers).
struct HeldRequests {
  // Held now, waiting for a server.
  int64_t waiting = 0;
  // Held since the count began (it ends 10 minutes after the last).
  int64_t total = 0;
};

// The front door's control API (brief, decision 3). The real implementation speaks HAProxy's
// runtime API; FakeLoadBalancer is for unit tests.
class LoadBalancer {
 public:
  virtual ~LoadBalancer() = default;
  // NOT_FOUND when the backend does not exist; UNAVAILABLE when the balancer cannot be reached.
  virtual absl::StatusOr<std::vector<LbServer>> Servers(const std::string& backend) = 0;
  // Adds a server that takes traffic at once (state ready), with its own check when
  // `server.check.enabled`.
  virtual absl::Status AddServer(const std::string& backend, const LbServer& server) = 0;
  virtual absl::Status SetWeight(const std::string& backend, const std::string& name,
                                 int weight) = 0;
  virtual absl::Status SetState(const std::string& backend, const std::string& name,
                                LbServer::State state) = 0;
  // The server must be in maintenance; FAILED_PRECONDITION while it still has sessions.
  virtual absl::Status DeleteServer(const std::string& backend, const std::string& name) = 0;
  // Requests held for backends without servers, by backend (a backend not listed held none).
  // FAILED_PRECONDITION when its configuration does not count them.
  virtual absl::StatusOr<std::map<std::string, HeldRequests>> Held() = 0;
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
  // "show table holds".
  absl::StatusOr<std::map<std::string, HeldRequests>> Held() override;
  // The entries of an answer to "show table holds" (key=..., use=..., gpc0=...).
  static std::map<std::string, HeldRequests> ParseHolds(absl::string_view table);

  // Sends one command and returns HAProxy's answer.
  absl::StatusOr<std::string> Execute(absl::string_view command);

  // The servers of `backend` in an answer to "show servers state" (name, address, port, weight,
  // admin and operational state), and their open sessions and check results from "show stat"
  // CSV.
  static std::vector<LbServer> ParseServersState(const std::string& backend,
                                                 absl::string_view text);
  static void AddStats(const std::string& backend, absl::string_view stat_csv,
                       std::vector<LbServer>& servers);
  // What an answer to a command that changes something means: the runtime API answers errors
  // in plain text, success with nothing or a known phrase.
  static absl::Status CheckAnswer(absl::string_view answer, absl::string_view command);
  // The "add server" command for `server` (with its check's keywords).
  static std::string AddServerCommand(const std::string& backend, const LbServer& server);

 private:
  std::string address_;
};

// Opens the balancer an address names; nullptr for "".
std::unique_ptr<LoadBalancer> OpenLoadBalancer(const std::string& address);

}  // namespace hosting::controlplane
