#pragma once

#include <atomic>
#include <mutex>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace hosting::testing {

// A TCP proxy from a free loopback port to 127.0.0.1:`target_port` that holds everything the
// server sends for a delay that can change while it runs: a database answering slowly, for
// fault tests. One thread per connection; Stop (or the destructor) ends them all.
class DelayProxy {
 public:
  explicit DelayProxy(int target_port);
  ~DelayProxy();
  absl::Status Start();
  void Stop();
  void SetDelay(absl::Duration delay) { delay_us_ = absl::ToInt64Microseconds(delay); }
  int port() const { return port_; }

 private:
  void AcceptLoop();
  void Serve(int client);

  const int target_port_;
  int port_ = 0;
  int listen_fd_ = -1;
  std::atomic<int64_t> delay_us_{0};
  std::atomic<bool> stop_{false};
  std::thread acceptor_;
  std::mutex mu_;
  std::vector<std::thread> connections_;
};

}  // namespace hosting::testing
