#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "agent/node_access.h"

namespace hosting::agent {

// A node whose tasks answer HTTP as a test says: per (pid, path) a fixed answer, per pid cgroup
// figures; every request and every Forget is recorded. Unit tests only.
class FakeNodeAccess final : public NodeAccess {
 public:
  // Answers GET `path` in the namespace of `pid` with `status` and `body` (status 0: no answer,
  // with `error`).
  void SetHttp(int pid, const std::string& path, int status, std::string body = "",
               std::string error = "connection refused") {
    absl::MutexLock lock(&mu_);
    http_[{pid, path}] = HttpResult{status, std::move(body), std::move(error), absl::Milliseconds(1)};
  }
  // The process `pid` is gone: every request into its namespace finds none.
  void SetGone(int pid) {
    absl::MutexLock lock(&mu_);
    HttpResult gone{0, "", absl::StrCat("netns of pid ", pid, ": No such file or directory"),
                    absl::Milliseconds(1)};
    gone.target_gone = true;
    gone_[pid] = gone;
  }
  void SetCgroup(int pid, CgroupStats stats) {
    absl::MutexLock lock(&mu_);
    cgroups_[pid] = stats;
  }
  // The node's available memory (0: unreadable).
  void SetMemoryAvailable(int64_t bytes) {
    absl::MutexLock lock(&mu_);
    memory_available_ = bytes;
  }

  HttpResult HttpGet(int pid, uint16_t port, const std::string& path, absl::Duration,
                     size_t) override {
    absl::MutexLock lock(&mu_);
    requests_.push_back(absl::StrCat(pid, ":", port, path));
    if (auto g = gone_.find(pid); g != gone_.end()) return g->second;
    auto it = http_.find({pid, path});
    if (it == http_.end()) return HttpResult{0, "", "connection refused", absl::Milliseconds(1)};
    return it->second;
  }
  absl::StatusOr<CgroupStats> ReadCgroup(int pid) override {
    absl::MutexLock lock(&mu_);
    auto it = cgroups_.find(pid);
    if (it == cgroups_.end()) return absl::NotFoundError(absl::StrCat("no cgroup for pid ", pid));
    return it->second;
  }
  absl::StatusOr<int64_t> MemoryAvailable() override {
    absl::MutexLock lock(&mu_);
    if (memory_available_ == 0) return absl::UnavailableError("no meminfo");
    return memory_available_;
  }
  void Forget(int pid) override {
    absl::MutexLock lock(&mu_);
    forgotten_.push_back(pid);
  }

  // "pid:port/path", in order.
  std::vector<std::string> requests() const {
    absl::MutexLock lock(&mu_);
    return requests_;
  }
  std::vector<int> forgotten() const {
    absl::MutexLock lock(&mu_);
    return forgotten_;
  }

 private:
  mutable absl::Mutex mu_;
  std::map<std::pair<int, std::string>, HttpResult> http_ ABSL_GUARDED_BY(mu_);
  std::map<int, HttpResult> gone_ ABSL_GUARDED_BY(mu_);
  std::map<int, CgroupStats> cgroups_ ABSL_GUARDED_BY(mu_);
  int64_t memory_available_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<std::string> requests_ ABSL_GUARDED_BY(mu_);
  std::vector<int> forgotten_ ABSL_GUARDED_BY(mu_);
};

}  // namespace hosting::agent
