#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "agent/agent_metrics.h"
#include "agent/message_sink.h"
#include "common/clock.h"
#include "grpcpp/grpcpp.h"
#include "hosting/v1/agent.grpc.pb.h"

namespace hosting::agent {

// Who this agent is, as it registers with hostd.
struct NodeIdentity {
  std::string node_id;
  std::string hostname;
  int cpus = 0;
  int64_t memory_bytes = 0;
  std::map<std::string, std::string> labels;
};

// The one AgentGateway.Connect stream to hostd: registers, then reads probe configs and
// commands and hands them to the agent; Send writes reports while the stream is up. A broken
// stream is reopened with backoff and jitter; the channel reconnects within a second while hostd
// is away, and the stream waits for it instead of failing fast.
//
// With several hostd addresses (an HA control plane) the stream goes to the leader: a standby
// ends it at Register with UNAVAILABLE naming the leader, and the stream moves there (or to the
// next address when none is named or the named one is not in the list); an address that does
// not connect within `connect_timeout` is passed over the same way.
class ControllerStream final : public MessageSink {
 public:
  struct Handlers {
    std::function<void()> on_connected;  // the stream is up: send the whole state
    std::function<void(const hosting::v1::ProbeConfigs&)> on_probes;
    std::function<void(const hosting::v1::Command&)> on_command;  // must not block
    std::function<void(const hosting::v1::ReportSettings&)> on_report_settings;
  };
  ControllerStream(std::vector<std::string> controllers, NodeIdentity identity,
                   absl::Duration max_backoff, AgentMetrics& metrics, Clock& clock,
                   Handlers handlers, absl::Duration connect_timeout = absl::Seconds(2),
                   std::string token = "",
                   std::shared_ptr<grpc::ChannelCredentials> credentials = nullptr);

  // A channel to `controller` (over `credentials`; nullptr: plaintext) with the agent's
  // reconnect and keepalive settings, sending `token` (the agent's join token) on every call.
  static std::shared_ptr<grpc::Channel> MakeChannel(
      const std::string& controller, const std::string& token,
      std::shared_ptr<grpc::ChannelCredentials> credentials = nullptr);
  // The leader's address in a standby's refusal ("... the leader is HOST:PORT: ..."), or "".
  static std::string LeaderNamedIn(absl::string_view message);

  void Send(const hosting::v1::AgentMessage& msg) override;

  // Connects and reconnects until `stop`; Cancel() ends a stream that is open or waiting.
  void Run(const absl::Notification& stop);
  // Heartbeats at the interval hostd asked for, until `stop`.
  void RunHeartbeats(const absl::Notification& stop);
  void Cancel();

  bool connected() const { return connected_.load(); }
  // The address the stream uses now (or will try next).
  std::string controller();

 private:
  using Stream =
      grpc::ClientReaderWriter<hosting::v1::AgentMessage, hosting::v1::ControllerMessage>;
  // One stream's life; returns its final status.
  grpc::Status RunOnce(const absl::Notification& stop, bool* registered);
  // After a failed or ended stream: the address to try next.
  void PickNext(const grpc::Status& status);

  const std::vector<std::string> controllers_;
  std::vector<std::shared_ptr<grpc::Channel>> channels_;
  std::vector<std::unique_ptr<hosting::v1::AgentGateway::Stub>> stubs_;
  const absl::Duration connect_timeout_;
  const NodeIdentity identity_;
  const absl::Duration max_backoff_;
  AgentMetrics& metrics_;
  Clock& clock_;
  const Handlers handlers_;
  std::atomic<bool> connected_{false};
  std::atomic<int64_t> heartbeat_ms_{2000};

  absl::Mutex mu_;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  size_t current_ ABSL_GUARDED_BY(mu_) = 0;
  grpc::ClientContext* ctx_ ABSL_GUARDED_BY(mu_) = nullptr;
  Stream* stream_ ABSL_GUARDED_BY(mu_) = nullptr;
};

}  // namespace hosting::agent
