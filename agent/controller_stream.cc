#include "agent/controller_stream.h"

#include <algorithm>

#include "common/log.h"
#include "common/metric_window.h"
#include "common/proto_time.h"

namespace hosting::agent {
namespace {

constexpr char kVersion[] = "0.1.0";

}  // namespace

ControllerStream::ControllerStream(std::shared_ptr<grpc::Channel> channel, NodeIdentity identity,
                                   absl::Duration max_backoff, AgentMetrics& metrics,
                                   Clock& clock, Handlers handlers)
    : stub_(hosting::v1::AgentGateway::NewStub(std::move(channel))),
      identity_(std::move(identity)), max_backoff_(max_backoff), metrics_(metrics),
      clock_(clock), handlers_(std::move(handlers)) {}

std::shared_ptr<grpc::Channel> ControllerStream::MakeChannel(const std::string& controller) {
  // gRPC's reconnect backoff (1 s growing to 2 min by default) shortened so a restarted hostd
  // is found within a second.
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  // Notice a vanished hostd (no FIN: host down, network cut) within seconds.
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 10000);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 5000);
  args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  return grpc::CreateCustomChannel(controller, grpc::InsecureChannelCredentials(), args);
}

void ControllerStream::Send(const hosting::v1::AgentMessage& msg) {
  absl::MutexLock lock(&mu_);
  if (stream_ == nullptr) return;  // not connected: the state goes out again on (re)connect
  // A failed write means the stream broke: the reading side sees it and reconnects.
  stream_->Write(msg);
}

void ControllerStream::Cancel() {
  absl::MutexLock lock(&mu_);
  cancelled_ = true;
  if (ctx_ != nullptr) ctx_->TryCancel();
}

grpc::Status ControllerStream::RunOnce(const absl::Notification& stop, bool* registered) {
  grpc::ClientContext ctx;
  ctx.set_wait_for_ready(true);
  {
    absl::MutexLock lock(&mu_);
    if (cancelled_ || stop.HasBeenNotified()) return grpc::Status::CANCELLED;
    ctx_ = &ctx;
  }
  std::unique_ptr<Stream> stream = stub_->Connect(&ctx);
  hosting::v1::AgentMessage reg;
  auto* r = reg.mutable_register_();
  r->set_node_id(identity_.node_id);
  r->set_hostname(identity_.hostname);
  r->set_cpus(identity_.cpus);
  r->set_memory_bytes(identity_.memory_bytes);
  r->set_agent_version(kVersion);
  for (const auto& [k, v] : identity_.labels) (*r->mutable_labels())[k] = v;
  hosting::v1::ControllerMessage in;
  if (stream->Write(reg) && stream->Read(&in)) {  // Registered
    *registered = true;
    if (in.has_registered() && in.registered().has_heartbeat_interval()) {
      heartbeat_ms_ = std::max<int64_t>(
          100, absl::ToInt64Milliseconds(FromDuration(in.registered().heartbeat_interval())));
    }
    {
      absl::MutexLock lock(&mu_);
      stream_ = stream.get();
    }
    connected_ = true;
    metrics_.connected->Set(1);
    LogInfo("connected to hostd", {{"node", identity_.node_id}});
    handlers_.on_connected();
    while (stream->Read(&in)) {
      if (in.has_probes()) {
        handlers_.on_probes(in.probes());
      } else if (in.has_command()) {
        handlers_.on_command(in.command());
      }
    }
    {
      absl::MutexLock lock(&mu_);
      stream_ = nullptr;
    }
    connected_ = false;
    metrics_.connected->Set(0);
  }
  grpc::Status st = stream->Finish();
  absl::MutexLock lock(&mu_);
  ctx_ = nullptr;
  return st;
}

void ControllerStream::Run(const absl::Notification& stop) {
  Backoff backoff(absl::Milliseconds(100), max_backoff_);
  while (!stop.HasBeenNotified()) {
    metrics_.reconnects->Increment();
    bool registered = false;
    grpc::Status st = RunOnce(stop, &registered);
    if (registered) backoff.Reset();
    if (stop.HasBeenNotified()) break;
    {
      absl::MutexLock lock(&mu_);
      if (cancelled_) break;
    }
    absl::Duration wait = backoff.Next();
    LogWarning("stream to hostd broken; reconnecting",
               {{"error", st.error_message()}, {"retry_in", absl::FormatDuration(wait)}});
    stop.WaitForNotificationWithTimeout(wait);
  }
}

void ControllerStream::RunHeartbeats(const absl::Notification& stop) {
  while (!stop.WaitForNotificationWithTimeout(absl::Milliseconds(heartbeat_ms_.load()))) {
    hosting::v1::AgentMessage msg;
    *msg.mutable_heartbeat()->mutable_time() = ToTimestamp(clock_.Now());
    Send(msg);
  }
}

}  // namespace hosting::agent
