#pragma once

#include <deque>
#include <functional>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "appsvc/metrics.h"

namespace hosting::appsvc {

// Threads that run blocking work (database and Redis calls) off the I/O threads. Each worker
// keeps its own database and Redis connections, so the pool size is the connection pool size.
class WorkerPool {
 public:
  WorkerPool(int size, AppMetrics& metrics);
  ~WorkerPool();

  void Submit(std::function<void()> job);
  // Runs what is queued, then joins the workers.
  void Stop();

 private:
  void Loop();

  AppMetrics& metrics_;
  absl::Mutex mu_;
  std::deque<std::function<void()>> queue_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  int busy_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<std::thread> threads_;
};

}  // namespace hosting::appsvc
