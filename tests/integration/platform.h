#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "harness.h"
#include "hosting/v1/releases.grpc.pb.h"
#include "hosting/v1/service.grpc.pb.h"

namespace hosting::testing {

// The platform release and autoscaling tests run on: a real PostgreSQL and Redis, HAProxy
// (the platform's image) with one published frontend per service, hostd driving it through the
// runtime API, Prometheus scraping hostd, and a hostagent. Start takes about a minute.
struct ServicePlatform {
  // `services`: one HAProxy backend and frontend each; `extra_backends` (e.g. a blue-green
  // preview) likewise.
  ServicePlatform(std::string prefix, std::vector<std::string> services,
                  std::vector<std::string> extra_backends = {},
                  std::vector<std::string> hostd_flags = {});

  absl::Status Start();
  // hostd first: a running hostd would repair what is removed.
  void Stop();

  // appsvc on this platform's datastores (AppsvcServiceSpec).
  hosting::v1::ServiceSpec Spec(const std::string& name, int replicas,
                                std::map<std::string, std::string> extra_env = {}) const;
  std::string Url(const std::string& service, const std::string& path) const;
  // Servers of a backend that are ready with a weight above 0 (-1 when HAProxy cannot tell).
  int ReadyServers(const std::string& backend) const;
  // Applies the spec and waits until HAProxy serves all its replicas and a user exists.
  absl::Status Deploy(hosting::v1::ServiceManager::Stub& services,
                      const hosting::v1::ServiceSpec& spec) const;

  const std::string prefix;
  const std::vector<std::string> services;
  const std::vector<std::string> extra_backends;
  // More hostd flags (e.g. --console-dir).
  const std::vector<std::string> hostd_flags;
  // Services whose frontend holds requests while they have no task (scale to zero), for up to
  // 20 s. Before Start.
  std::vector<std::string> holding;
  std::string dir;
  std::string gateway;
  std::unique_ptr<Datastores> datastores;
  std::unique_ptr<HaproxyContainer> haproxy;
  std::string socket;
  std::map<std::string, int> ports;  // backend -> published frontend port
  std::unique_ptr<HostdProcess> hostd;
  std::unique_ptr<PrometheusProcess> prometheus;
  std::unique_ptr<AgentProcess> agent;
  absl::Status status;
};

// The test binary's platform, started by its suite (PlatformTest::StartPlatform).
extern ServicePlatform* platform;

// A suite on the platform: each SetUpTestSuite calls StartPlatform, each TearDownTestSuite
// StopPlatform. A platform that did not start fails every test (never a skip); each test's
// services are deleted when it ends (idle tasks still cost their health checks).
class PlatformTest : public ::testing::Test {
 protected:
  static void StartPlatform(std::string prefix, std::vector<std::string> services,
                            std::vector<std::string> extra_backends = {},
                            std::vector<std::string> hostd_flags = {},
                            std::vector<std::string> holding = {});
  static void StopPlatform();
  void SetUp() override;
  void TearDown() override;

  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<hosting::v1::ServiceManager::Stub> services_;
  std::unique_ptr<hosting::v1::Releases::Stub> releases_;
};

}  // namespace hosting::testing
