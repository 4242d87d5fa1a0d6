#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "common/docker_client.h"

namespace hosting::docker {

// DockerClient over libcurl: a unix socket ("unix:///var/run/docker.sock") or a TCP endpoint
// ("tcp://127.0.0.1:2375", "http://..."). Keeps a small pool of easy handles so connections are
// reused across calls.
class CurlDockerClient final : public DockerClient {
 public:
  // Returns InvalidArgument for a host URL it cannot use.
  static absl::StatusOr<std::unique_ptr<CurlDockerClient>> Create(
      absl::string_view docker_host, absl::Duration request_timeout = absl::Seconds(30));
  ~CurlDockerClient() override;

  absl::StatusOr<EngineInfo> Info() override;
  absl::StatusOr<std::string> CreateService(const nlohmann::json& spec) override;
  absl::StatusOr<ServiceInfo> InspectService(absl::string_view id_or_name) override;
  absl::StatusOr<std::vector<ServiceInfo>> ListServices(const Filters& filters) override;
  absl::Status UpdateService(absl::string_view id, uint64_t version,
                             const nlohmann::json& spec) override;
  absl::Status RemoveService(absl::string_view id_or_name) override;
  absl::StatusOr<std::vector<TaskInfo>> ListTasks(const Filters& filters) override;
  absl::StatusOr<std::vector<NodeInfo>> ListNodes() override;
  absl::StatusOr<NodeInfo> InspectNode(absl::string_view id) override;
  absl::Status UpdateNode(absl::string_view id, uint64_t version,
                          const nlohmann::json& spec) override;
  absl::StatusOr<std::vector<ContainerInfo>> ListContainers(const Filters& filters) override;
  absl::StatusOr<nlohmann::json> InspectContainer(absl::string_view id) override;
  absl::StatusOr<std::string> SecretId(absl::string_view name) override;
  absl::Status EnsureOverlayNetwork(absl::string_view name) override;
  absl::Status PullImage(absl::string_view image) override;
  absl::StatusOr<bool> HasImage(absl::string_view image) override;
  absl::Status RestartContainer(absl::string_view id) override;
  absl::StatusOr<std::string> ContainerLogs(absl::string_view id, int tail) override;
  absl::Status StreamEvents(int64_t since, const Filters& filters,
                            const std::function<void(const Event&)>& on_event,
                            const std::function<bool()>& should_stop) override;

  struct Response {
    long code = 0;
    std::string body;
  };
  // One request; `path` starts with "/" and excludes the API version prefix. Transport
  // failures are UNAVAILABLE; HTTP errors are returned as a Response.
  absl::StatusOr<Response> Request(absl::string_view method, absl::string_view path,
                                   const std::string* body = nullptr);

 private:
  CurlDockerClient(std::string socket_path, std::string base_url, absl::Duration timeout)
      : socket_path_(std::move(socket_path)), base_url_(std::move(base_url)), timeout_(timeout) {}

  // Request + JSON parsing + error mapping for 2xx-expected calls.
  absl::StatusOr<nlohmann::json> Call(absl::string_view method, absl::string_view path,
                                      const nlohmann::json* body = nullptr);
  void* AcquireHandle();
  void ReleaseHandle(void* handle);
  void ApplyTransport(void* handle, const std::string& url);

  const std::string socket_path_;  // empty for TCP
  const std::string base_url_;     // "http://localhost/v1.41"
  const absl::Duration timeout_;
  absl::Mutex mu_;
  std::vector<void*> idle_ ABSL_GUARDED_BY(mu_);
};

// Encodes filters as Docker expects: URL-encoded JSON.
std::string EncodeFilters(const Filters& filters);

}  // namespace hosting::docker
