#pragma once

#include <sys/types.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "grpcpp/channel.h"

// Helpers for tests against the real thing: a real dockerd with a real Swarm and hostd run as a
// subprocess. Nothing here fakes a component.
namespace hosting::testing {

struct CommandResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr together
};

// Runs a shell command and captures its output.
CommandResult Shell(const std::string& command);

// A TCP port on 127.0.0.1 that was free a moment ago.
int FreePort();

// Polls `condition` every `interval` until it holds or `timeout` passes. The error names `what`.
absl::Status WaitFor(const std::function<bool()>& condition, absl::Duration timeout,
                     const std::string& what, absl::Duration interval = absl::Milliseconds(50));

// OK when dockerd answers and this node is a Swarm manager; otherwise an error saying how to
// get there. Integration tests fail (never skip) on it.
absl::Status CheckDockerSwarm();

// Swarm services labelled hosting.service=<service>: "name replicas running" per line, sorted.
std::vector<std::string> SwarmServicesOf(const std::string& service);

// Removes every Swarm service labelled hosting.service=<service>.
void RemoveSwarmServicesOf(const std::string& service);

// The binaries under test, from the build.
std::string HostdBinary();
std::string HostctlBinary();
std::string SourceDir();

// hostd as a child process on free loopback ports, with its own data directory.
class HostdProcess {
 public:
  explicit HostdProcess(std::string data_dir, std::vector<std::string> extra_flags = {});
  ~HostdProcess();

  // Starts hostd and waits until its gRPC API answers.
  absl::Status Start();
  // Sends `signal` and waits for the process to exit; returns its exit status.
  int Stop(int signal = 15);
  bool running() const { return pid_ > 0; }

  const std::string& address() const { return address_; }
  const std::string& metrics_address() const { return metrics_address_; }
  const std::string& data_dir() const { return data_dir_; }
  const std::string& log_path() const { return log_path_; }
  std::shared_ptr<grpc::Channel> channel();

 private:
  std::string data_dir_;
  std::vector<std::string> extra_flags_;
  std::string address_;
  std::string metrics_address_;
  std::string log_path_;
  pid_t pid_ = -1;
  std::shared_ptr<grpc::Channel> channel_;
};

// A fresh temporary directory.
std::string MakeTempDir(const std::string& prefix);

}  // namespace hosting::testing
