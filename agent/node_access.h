#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace hosting::agent {

// How the agent reaches a task: it enters the task container's network namespace (setns on
// /proc/<pid>/ns/net) just long enough to create a socket there, then uses that socket from its
// own threads. The probe connects to 127.0.0.1:<port> *inside* the container, so it needs no
// route to overlay networks, works for a standalone agent on the host and for the agent run as
// a container with the host's PID namespace, and probes exactly what the application serves.
// Needs CAP_SYS_ADMIN (the agent runs as root on the node).
//
// Entering a namespace is the expensive part, so sockets are made in batches and kept (unconnected)
// per namespace, keyed by pid and the namespace's inode, so a reused pid never gets a socket of
// the namespace its predecessor had.
absl::StatusOr<int> TcpSocketInNetns(int pid);

// Closes the sockets kept for `pid` (its task is gone).
void ForgetNetns(int pid);

struct HttpResult {
  int status = 0;  // 0: no HTTP answer
  std::string body;
  std::string error;
  absl::Duration latency;
  // The process whose network namespace was asked for is gone (the container exited or is
  // being replaced): nothing was asked of the application, so this says nothing of its health.
  bool target_gone = false;
};

// GET http://127.0.0.1:<port><path> in the network namespace of `pid` (0: the agent's own),
// bounded by `timeout` for the whole exchange; at most `max_body` bytes are kept.
HttpResult HttpGetInNetns(int pid, uint16_t port, const std::string& path, absl::Duration timeout,
                          size_t max_body = 4 << 20);

// Container resource use from its cgroup (v1 or v2), found through /proc/<pid>/cgroup under
// `cgroup_root` (/sys/fs/cgroup on the host; the host's, mounted elsewhere, in a container).
struct CgroupStats {
  uint64_t cpu_usage_ns = 0;
  int64_t memory_bytes = 0;  // usage less inactive file cache, as `docker stats` reports
  int64_t memory_limit_bytes = 0;  // 0: unlimited
};
absl::StatusOr<CgroupStats> ReadCgroupStats(int pid,
                                            const std::string& cgroup_root = "/sys/fs/cgroup");

// The node's MemAvailable from `meminfo` (/proc/meminfo), in bytes.
absl::StatusOr<int64_t> ReadMemAvailable(const std::string& meminfo = "/proc/meminfo");

// What the agent reaches on its node besides the Docker API: a task's network namespace and its
// cgroup. The agent's parts take this interface; HostNodeAccess is the real one (the functions
// above), FakeNodeAccess (agent/testing) the one unit tests script.
class NodeAccess {
 public:
  virtual ~NodeAccess() = default;
  // GET http://127.0.0.1:<port><path> inside the network namespace of `pid`.
  virtual HttpResult HttpGet(int pid, uint16_t port, const std::string& path,
                             absl::Duration timeout, size_t max_body) = 0;
  virtual absl::StatusOr<CgroupStats> ReadCgroup(int pid) = 0;
  // The node's memory available for new work, in bytes.
  virtual absl::StatusOr<int64_t> MemoryAvailable() = 0;
  // The task with this pid is gone: release what was kept for it.
  virtual void Forget(int pid) = 0;
};

class HostNodeAccess final : public NodeAccess {
 public:
  explicit HostNodeAccess(std::string cgroup_root = "/sys/fs/cgroup")
      : cgroup_root_(std::move(cgroup_root)) {}
  HttpResult HttpGet(int pid, uint16_t port, const std::string& path, absl::Duration timeout,
                     size_t max_body) override {
    return HttpGetInNetns(pid, port, path, timeout, max_body);
  }
  absl::StatusOr<CgroupStats> ReadCgroup(int pid) override {
    return ReadCgroupStats(pid, cgroup_root_);
  }
  absl::StatusOr<int64_t> MemoryAvailable() override { return ReadMemAvailable(); }
  void Forget(int pid) override { ForgetNetns(pid); }

 private:
  const std::string cgroup_root_;
};

}  // namespace hosting::agent
