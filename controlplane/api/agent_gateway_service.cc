#include "controlplane/api/agent_gateway_service.h"

#include <deque>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/strings/str_cat.h"
#include "controlplane/api/grpc_status.h"
#include "controlplane/auth/auth_gate.h"
#include "controlplane/api/stream_writes.h"
#include "common/proto_time.h"

namespace hosting::controlplane {
namespace {

using hosting::v1::AgentMessage;
using hosting::v1::ControllerMessage;

// One agent's stream: one outstanding read, one outstanding write (others queued).
class AgentSession final : public grpc::ServerBidiReactor<AgentMessage, ControllerMessage>,
                           public AgentChannel {
 public:
  // `caller`: who opened the stream; an agent token that names a node joins only as that node.
  AgentSession(AgentHub& hub, const ActGate& gate, Caller caller)
      : hub_(hub), registry_(hub.registry()), gate_(gate), caller_(std::move(caller)) {
    StartRead(&in_);
  }

  const std::string& node_id() const override { return node_id_; }

  void Send(ControllerMessage msg) override {
    absl::MutexLock lock(&mu_);
    if (writes_.finished()) return;
    out_.push_back(std::move(msg));
    MaybeWriteLocked();
  }

  void Close(const absl::Status& why) override { FinishOnce(ToGrpcStatus(why)); }

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
      if (!caller_.node.empty() && caller_.node != in_.register_().node_id()) {
        FinishOnce(grpc::Status(
            grpc::StatusCode::PERMISSION_DENIED,
            absl::StrCat(caller_.principal, " may join only as node ", caller_.node, ", not ",
                         in_.register_().node_id())));
        return;
      }
      if (absl::Status gate = PassGate(gate_); !gate.ok()) {
        FinishOnce(ToGrpcStatus(gate));
        return;
      }
      absl::StatusOr<int64_t> session = registry_.Connect(in_.register_());
      if (!session.ok()) {
        FinishOnce(ToGrpcStatus(session.status()));
        return;
      }
      node_id_ = in_.register_().node_id();
      session_ = *session;
      // A quiet older session of this node (replaced above) is closed.
      hub_.Add(this);
      ControllerMessage registered;
      *registered.mutable_registered()->mutable_heartbeat_interval() =
          ToDuration(registry_.options().heartbeat_interval);
      Send(std::move(registered));
      // None when the store cannot be read and nothing was read before: the agent keeps the
      // settings it has (the periodic resend brings them once the store answers).
      if (auto probes = hub_.CurrentProbeConfigs(); probes.has_value()) Send(*std::move(probes));
    } else {
      if (absl::Status st = registry_.Receive(node_id_, session_, in_); !st.ok()) {
        FinishOnce(ToGrpcStatus(st));
        return;
      }
      if (in_.body_case() == AgentMessage::kResult) hub_.CommandDone(in_.result());
    }
    {
      absl::MutexLock lock(&mu_);
      if (writes_.finished()) return;  // closed by the hub: no further reads
    }
    StartRead(&in_);
  }

  void OnWriteDone(bool ok) override {
    absl::MutexLock lock(&mu_);
    writes_.WriteDone();
    if (!ok) {
      writes_.Finish(this, grpc::Status::CANCELLED);
      return;
    }
    MaybeWriteLocked();
  }

  void OnCancel() override { FinishOnce(grpc::Status::CANCELLED); }

  void OnDone() override {
    hub_.Remove(this);
    if (session_ != 0) registry_.Disconnect(node_id_, session_);
    delete this;
  }

 private:
  void FinishOnce(grpc::Status status) {
    absl::MutexLock lock(&mu_);
    writes_.Finish(this, std::move(status));
  }
  void MaybeWriteLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (!writes_.CanWrite() || out_.empty()) return;
    ControllerMessage next = std::move(out_.front());
    out_.pop_front();
    writes_.Write(this, std::move(next));
  }

  AgentHub& hub_;
  AgentRegistry& registry_;
  const ActGate& gate_;
  AgentMessage in_;
  const Caller caller_;
  std::string node_id_;
  int64_t session_ = 0;
  absl::Mutex mu_;
  std::deque<ControllerMessage> out_ ABSL_GUARDED_BY(mu_);
  StreamWrites<ControllerMessage> writes_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

grpc::ServerBidiReactor<AgentMessage, ControllerMessage>* AgentGatewayGrpc::Connect(
    grpc::CallbackServerContext* ctx) {
  return new AgentSession(hub_, gate_, CallerOf(*ctx));
}

}  // namespace hosting::controlplane
