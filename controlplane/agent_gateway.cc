#include "controlplane/agent_gateway.h"

#include <deque>

#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "google/protobuf/util/time_util.h"

namespace hosting::controlplane {

using hosting::v1::AgentMessage;
using hosting::v1::ControllerMessage;

// One agent's stream: one outstanding read, one outstanding write (others queued).
class AgentSession final : public grpc::ServerBidiReactor<AgentMessage, ControllerMessage> {
 public:
  AgentSession(AgentGatewayGrpc& gateway, AgentRegistry& registry)
      : gateway_(gateway), registry_(registry) {
    StartRead(&in_);
  }

  // Set before the session is added to the gateway, never changed after.
  const std::string& node_id() const { return node_id_; }

  void Send(ControllerMessage msg) {
    absl::MutexLock lock(&mu_);
    if (finished_) return;
    out_.push_back(std::move(msg));
    MaybeWriteLocked();
  }

  void OnReadDone(bool ok) override {
    if (!ok) {
      FinishOnce(grpc::Status::OK);  // the agent closed its side
      return;
    }
    if (session_ == 0) {
      if (in_.body_case() != AgentMessage::kRegister || in_.register_().node_id().empty()) {
        FinishOnce(grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                                "the first message on AgentGateway.Connect must be a Register "
                                "with a node_id"));
        return;
      }
      node_id_ = in_.register_().node_id();
      session_ = registry_.Connect(in_.register_());
      gateway_.Add(this);
      ControllerMessage registered;
      *registered.mutable_registered()->mutable_heartbeat_interval() =
          google::protobuf::util::TimeUtil::MillisecondsToDuration(
              absl::ToInt64Milliseconds(registry_.options().heartbeat_interval));
      Send(std::move(registered));
      Send(gateway_.ProbeConfigs());
    } else {
      registry_.Touch(node_id_, session_);
      switch (in_.body_case()) {
        case AgentMessage::kTask:
          registry_.TaskChanged(node_id_, in_.task());
          break;
        case AgentMessage::kSnapshot:
          registry_.Snapshot(node_id_, in_.snapshot());
          break;
        case AgentMessage::kMetrics:
          registry_.Metrics(node_id_, in_.metrics());
          break;
        case AgentMessage::kResult:
          gateway_.CommandDone(in_.result());
          break;
        default:
          break;  // heartbeats and repeated registers only touch the session
      }
    }
    StartRead(&in_);
  }

  void OnWriteDone(bool ok) override {
    absl::MutexLock lock(&mu_);
    writing_ = false;
    if (!ok) {
      FinishLocked(grpc::Status::CANCELLED);
      return;
    }
    MaybeWriteLocked();
  }

  void OnCancel() override { FinishOnce(grpc::Status::CANCELLED); }

  void OnDone() override {
    gateway_.Remove(this);
    if (session_ != 0) registry_.Disconnect(node_id_, session_);
    delete this;
  }

 private:
  void FinishOnce(grpc::Status status) {
    absl::MutexLock lock(&mu_);
    FinishLocked(std::move(status));
  }
  void FinishLocked(grpc::Status status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (finished_) return;
    finished_ = true;
    Finish(std::move(status));
  }
  void MaybeWriteLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (writing_ || finished_ || out_.empty()) return;
    writing_ = true;
    current_ = std::move(out_.front());
    out_.pop_front();
    StartWrite(&current_);
  }

  AgentGatewayGrpc& gateway_;
  AgentRegistry& registry_;
  AgentMessage in_;
  std::string node_id_;
  int64_t session_ = 0;
  absl::Mutex mu_;
  std::deque<ControllerMessage> out_ ABSL_GUARDED_BY(mu_);
  ControllerMessage current_ ABSL_GUARDED_BY(mu_);
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
};

AgentGatewayGrpc::AgentGatewayGrpc(AgentRegistry& registry, Store& store, EventLog& events)
    : registry_(registry), store_(store), events_(events) {
  // Probe settings follow the desired state.
  subscription_ = events_.Subscribe([this](const hosting::v1::Event& e) {
    if (e.type() == "service.applied" || e.type() == "service.deleted") BroadcastProbeConfigs();
  });
}

AgentGatewayGrpc::~AgentGatewayGrpc() { events_.Unsubscribe(subscription_); }

grpc::ServerBidiReactor<AgentMessage, ControllerMessage>* AgentGatewayGrpc::Connect(
    grpc::CallbackServerContext*) {
  return new AgentSession(*this, registry_);
}

ControllerMessage AgentGatewayGrpc::ProbeConfigs() {
  ControllerMessage msg;
  auto* probes = msg.mutable_probes();
  absl::StatusOr<std::vector<ServiceRecord>> records = store_.ListServices();
  if (!records.ok()) return msg;
  for (const auto& r : *records) {
    const auto& h = r.spec.health();
    if (h.http_path().empty()) continue;
    auto* p = probes->add_probes();
    p->set_service(r.spec.name());
    p->set_revision(0);  // every revision of the service
    p->set_http_path(h.http_path());
    p->set_port(h.port());
    *p->mutable_interval() = h.interval();
    *p->mutable_timeout() = h.timeout();
    p->set_healthy_threshold(h.healthy_threshold());
    p->set_unhealthy_threshold(h.unhealthy_threshold());
  }
  return msg;
}

void AgentGatewayGrpc::BroadcastProbeConfigs() {
  ControllerMessage msg = ProbeConfigs();
  absl::MutexLock lock(&mu_);
  for (AgentSession* s : sessions_) s->Send(msg);
}

absl::StatusOr<hosting::v1::CommandResult> AgentGatewayGrpc::RunCommand(
    const std::string& node_id, hosting::v1::Command command, absl::Duration timeout) {
  auto pending = std::make_shared<Pending>();
  {
    absl::MutexLock lock(&mu_);
    AgentSession* target = nullptr;
    for (AgentSession* s : sessions_) {
      if (s->node_id() == node_id) target = s;
    }
    if (target == nullptr) {
      return absl::UnavailableError(absl::StrCat("no agent of node ", node_id, " is connected"));
    }
    command.set_command_id(absl::StrCat("c", next_command_++));
    pending_[command.command_id()] = pending;
    ControllerMessage msg;
    *msg.mutable_command() = command;
    target->Send(std::move(msg));
  }
  const bool done = pending->done.WaitForNotificationWithTimeout(timeout);
  absl::MutexLock lock(&mu_);
  pending_.erase(command.command_id());
  if (!done) {
    return absl::DeadlineExceededError(absl::StrCat("the agent of node ", node_id, " did not answer within ",
                                                    absl::FormatDuration(timeout)));
  }
  return pending->result;
}

void AgentGatewayGrpc::CommandDone(const hosting::v1::CommandResult& result) {
  absl::MutexLock lock(&mu_);
  auto it = pending_.find(result.command_id());
  if (it == pending_.end()) return;  // answered after its caller gave up
  it->second->result = result;
  it->second->done.Notify();
}

void AgentGatewayGrpc::Add(AgentSession* s) {
  absl::MutexLock lock(&mu_);
  sessions_.insert(s);
}

void AgentGatewayGrpc::Remove(AgentSession* s) {
  absl::MutexLock lock(&mu_);
  sessions_.erase(s);
}

}  // namespace hosting::controlplane
