#include "agent/controller_stream.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/bearer_token.h"
#include "common/log.h"
#include "common/metric_window.h"
#include "common/proto_time.h"

namespace hosting::agent {
namespace {

constexpr char kVersion[] = "0.1.0";

}  // namespace

ControllerStream::ControllerStream(std::vector<std::string> controllers, NodeIdentity identity,
                                   absl::Duration max_backoff, AgentMetrics& metrics,
                                   Clock& clock, Handlers handlers,
                                   absl::Duration connect_timeout, std::string token,
                                   std::shared_ptr<grpc::ChannelCredentials> credentials)
    : controllers_(std::move(controllers)), connect_timeout_(connect_timeout),
      identity_(std::move(identity)), max_backoff_(max_backoff), metrics_(metrics),
      clock_(clock), handlers_(std::move(handlers)) {
  for (const std::string& c : controllers_) {
    channels_.push_back(MakeChannel(c, token, credentials));
    stubs_.push_back(hosting::v1::AgentGateway::NewStub(channels_.back()));
  }
}

std::string ControllerStream::LeaderNamedIn(absl::string_view message) {
  constexpr absl::string_view kMarker = "the leader is ";
  size_t at = message.find(kMarker);
  if (at == absl::string_view::npos) return "";
  absl::string_view rest = message.substr(at + kMarker.size());
  // "host:port: send it there" or "host:port" at the end; IPv6 hosts come bracketed.
  size_t colon = rest.rfind(']') != absl::string_view::npos ? rest.find(':', rest.rfind(']'))
                                                             : rest.find(':');
  if (colon == absl::string_view::npos) return "";
  size_t end = colon + 1;
  while (end < rest.size() && absl::ascii_isdigit(rest[end])) ++end;
  if (end == colon + 1) return "";
  return std::string(rest.substr(0, end));
}

std::string ControllerStream::controller() {
  absl::MutexLock lock(&mu_);
  return controllers_[current_];
}

void ControllerStream::PickNext(const grpc::Status& status) {
  if (controllers_.size() < 2) return;
  absl::MutexLock lock(&mu_);
  const std::string leader = LeaderNamedIn(status.error_message());
  for (size_t i = 0; i < controllers_.size(); ++i) {
    if (!leader.empty() && controllers_[i] == leader && i != current_) {
      current_ = i;
      return;
    }
  }
  current_ = (current_ + 1) % controllers_.size();
}

std::shared_ptr<grpc::Channel> ControllerStream::MakeChannel(
    const std::string& controller, const std::string& token,
    std::shared_ptr<grpc::ChannelCredentials> credentials) {
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
  return CreateChannelWithToken(
      controller, credentials != nullptr ? credentials : grpc::InsecureChannelCredentials(), args,
      token);
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
  size_t index;
  {
    absl::MutexLock lock(&mu_);
    index = current_;
  }
  // With one address the stream waits for it; with several, one that does not connect soon is
  // passed over for the next.
  if (controllers_.size() > 1 &&
      !channels_[index]->WaitForConnected(absl::ToChronoTime(absl::Now() + connect_timeout_))) {
    return grpc::Status(grpc::StatusCode::UNAVAILABLE,
                        absl::StrCat(controllers_[index], " did not connect within ",
                                     absl::FormatDuration(connect_timeout_)));
  }
  grpc::ClientContext ctx;
  ctx.set_wait_for_ready(true);
  {
    absl::MutexLock lock(&mu_);
    if (cancelled_ || stop.HasBeenNotified()) return grpc::Status::CANCELLED;
    ctx_ = &ctx;
  }
  std::unique_ptr<Stream> stream = stubs_[index]->Connect(&ctx);
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
    LogInfo("connected to hostd", {{"node", identity_.node_id}, {"hostd", controllers_[index]}});
    handlers_.on_connected();
    while (stream->Read(&in)) {
      if (in.has_probes()) {
        handlers_.on_probes(in.probes());
      } else if (in.has_command()) {
        handlers_.on_command(in.command());
      } else if (in.has_report_settings() && handlers_.on_report_settings) {
        handlers_.on_report_settings(in.report_settings());
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
    PickNext(st);
    if (stop.HasBeenNotified()) break;
    {
      absl::MutexLock lock(&mu_);
      if (cancelled_) break;
    }
    absl::Duration wait = backoff.Next();
    LogWarning("stream to hostd broken; reconnecting",
               {{"error", st.error_message()}, {"next", controller()},
                {"retry_in", absl::FormatDuration(wait)}});
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
