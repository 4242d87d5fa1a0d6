#include "tests/integration/harness.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "hosting/v1/service.grpc.pb.h"

namespace hosting::testing {

CommandResult Shell(const std::string& command) {
  CommandResult result;
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) return result;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), pipe)) > 0) result.output.append(buf, n);
  int status = pclose(pipe);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

int FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  int port = ntohs(addr.sin_port);
  close(fd);
  return port;
}

absl::Status WaitFor(const std::function<bool()>& condition, absl::Duration timeout,
                     const std::string& what, absl::Duration interval) {
  absl::Time deadline = absl::Now() + timeout;
  while (true) {
    if (condition()) return absl::OkStatus();
    if (absl::Now() >= deadline) {
      return absl::DeadlineExceededError(
          absl::StrCat("timed out after ", absl::FormatDuration(timeout), " waiting for ", what));
    }
    absl::SleepFor(interval);
  }
}

absl::Status CheckDockerSwarm() {
  CommandResult r = Shell("docker info --format '{{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}}'");
  if (r.exit_code != 0) {
    return absl::UnavailableError(absl::StrCat(
        "dockerd is not reachable (run scripts/start-docker.sh as root): ", r.output));
  }
  if (r.output.rfind("active true", 0) != 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "this node is not a Swarm manager (run scripts/start-docker.sh): ", r.output));
  }
  return absl::OkStatus();
}

std::vector<std::string> SwarmServicesOf(const std::string& service) {
  CommandResult r = Shell(absl::StrCat(
      "docker service ls --filter label=hosting.service=", service,
      " --format '{{.Name}} {{.Replicas}}'"));
  std::vector<std::string> out;
  if (r.exit_code != 0) return out;
  for (absl::string_view line : absl::StrSplit(r.output, '\n', absl::SkipEmpty())) {
    // "web-r1 2/3" -> "web-r1 3 2" (name, desired, running); "(max N per node)" suffixes dropped.
    std::vector<std::string> parts = absl::StrSplit(line, ' ', absl::SkipEmpty());
    if (parts.size() < 2) continue;
    std::vector<std::string> rd = absl::StrSplit(parts[1], '/');
    if (rd.size() != 2) continue;
    out.push_back(absl::StrCat(parts[0], " ", rd[1], " ", rd[0]));
  }
  std::sort(out.begin(), out.end());
  return out;
}

void RemoveSwarmServicesOf(const std::string& service) {
  Shell(absl::StrCat("ids=$(docker service ls -q --filter label=hosting.service=", service,
                   "); [ -z \"$ids\" ] || docker service rm $ids"));
}

std::string HostdBinary() { return HOSTING_HOSTD_BINARY; }
std::string HostctlBinary() { return HOSTING_HOSTCTL_BINARY; }
std::string SourceDir() { return HOSTING_SOURCE_DIR; }

std::string MakeTempDir(const std::string& prefix) {
  std::string templ = (std::filesystem::temp_directory_path() / (prefix + "XXXXXX")).string();
  char* dir = mkdtemp(templ.data());
  return dir ? std::string(dir) : "";
}

HostdProcess::HostdProcess(std::string data_dir, std::vector<std::string> extra_flags)
    : data_dir_(std::move(data_dir)), extra_flags_(std::move(extra_flags)) {
  address_ = absl::StrCat("127.0.0.1:", FreePort());
  metrics_address_ = absl::StrCat("127.0.0.1:", FreePort());
  log_path_ = data_dir_ + "/hostd.log";
}

HostdProcess::~HostdProcess() {
  if (pid_ > 0) Stop(SIGKILL);
}

absl::Status HostdProcess::Start() {
  std::vector<std::string> args = {HostdBinary(), "--listen", address_, "--metrics-listen",
                                   metrics_address_, "--data-dir", data_dir_,
                                   "--resync-interval", "10s"};
  args.insert(args.end(), extra_flags_.begin(), extra_flags_.end());
  pid_ = fork();
  if (pid_ < 0) return absl::InternalError("fork failed");
  if (pid_ == 0) {
    FILE* log = fopen(log_path_.c_str(), "a");
    if (log != nullptr) {
      dup2(fileno(log), STDOUT_FILENO);
      dup2(fileno(log), STDERR_FILENO);
    }
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
  channel_ = grpc::CreateChannel(address_, grpc::InsecureChannelCredentials());
  auto stub = hosting::v1::ServiceManager::NewStub(channel_);
  absl::Status ready = WaitFor(
      [&] {
        int status;
        if (waitpid(pid_, &status, WNOHANG) == pid_) {
          pid_ = -1;
          return true;
        }
        grpc::ClientContext ctx;
        ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(500));
        hosting::v1::ListServicesResponse resp;
        grpc::Status st = stub->ListServices(&ctx, {}, &resp);
        // Any answer from hostd itself (even UNAVAILABLE for Docker) means it serves.
        return st.ok() || st.error_message().find("docker") != std::string::npos;
      },
      absl::Seconds(15), "hostd to answer on " + address_);
  if (pid_ < 0) {
    return absl::InternalError(
        absl::StrCat("hostd exited during start-up; log:\n", Shell("tail -20 " + log_path_).output));
  }
  return ready;
}

int HostdProcess::Stop(int signal) {
  if (pid_ <= 0) return -1;
  kill(pid_, signal);
  int status = 0;
  waitpid(pid_, &status, 0);
  pid_ = -1;
  channel_.reset();
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

std::shared_ptr<grpc::Channel> HostdProcess::channel() {
  if (!channel_) channel_ = grpc::CreateChannel(address_, grpc::InsecureChannelCredentials());
  return channel_;
}

}  // namespace hosting::testing
