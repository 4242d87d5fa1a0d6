#include "controlplane/grpc_services.h"

#include <cmath>
#include <deque>
#include <functional>

#include "absl/strings/str_cat.h"
#include "controlplane/grpc_status.h"
#include "controlplane/validation.h"
#include "google/protobuf/util/time_util.h"

namespace hosting::controlplane {
namespace {

const char* CodeName(grpc::StatusCode code) {
  static const char* const kNames[] = {
      "OK",       "CANCELLED",         "UNKNOWN",           "INVALID_ARGUMENT",
      "DEADLINE_EXCEEDED", "NOT_FOUND", "ALREADY_EXISTS",   "PERMISSION_DENIED",
      "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE",
      "UNIMPLEMENTED", "INTERNAL",     "UNAVAILABLE",       "DATA_LOSS",
      "UNAUTHENTICATED"};
  int i = static_cast<int>(code);
  return i >= 0 && i <= 16 ? kNames[i] : "UNKNOWN";
}

// Runs `fn` (which returns absl::Status) and finishes the call with its result.
template <typename Fn>
grpc::ServerUnaryReactor* Unary(grpc::CallbackServerContext* ctx, HostdMetrics* metrics,
                                const char* method, Fn&& fn) {
  grpc::Status status = ToGrpcStatus(fn());
  if (metrics != nullptr) metrics->CountGrpc(method, CodeName(status.error_code()));
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  reactor->Finish(status);
  return reactor;
}

// Finishes a not-yet-served method with UNIMPLEMENTED naming what will serve it.
grpc::ServerUnaryReactor* NotYet(grpc::CallbackServerContext* ctx, const char* method,
                                 const char* what) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  reactor->Finish(grpc::Status(grpc::StatusCode::UNIMPLEMENTED,
                               absl::StrCat(method, " is not served by this hostd yet: ", what)));
  return reactor;
}

// A server stream that ends at once with a status.
template <typename T>
class FinishedWriter final : public grpc::ServerWriteReactor<T> {
 public:
  explicit FinishedWriter(grpc::Status status) { this->Finish(std::move(status)); }
  void OnDone() override { delete this; }
};

template <typename T>
grpc::ServerWriteReactor<T>* NotYetStream(const char* method, const char* what) {
  return new FinishedWriter<T>(grpc::Status(
      grpc::StatusCode::UNIMPLEMENTED,
      absl::StrCat(method, " is not served by this hostd yet: ", what)));
}

constexpr char kRunbooksLater[] = "runbook automation comes with the Runbooks work";

hosting::v1::NodeAvailability AvailabilityFrom(const std::string& a) {
  if (a == "active") return hosting::v1::NODE_AVAILABILITY_ACTIVE;
  if (a == "pause") return hosting::v1::NODE_AVAILABILITY_PAUSE;
  if (a == "drain") return hosting::v1::NODE_AVAILABILITY_DRAIN;
  return hosting::v1::NODE_AVAILABILITY_UNSPECIFIED;
}

hosting::v1::Node BaseNodeToProto(const docker::NodeInfo& n) {
  hosting::v1::Node out;
  out.set_id(n.id);
  out.set_hostname(n.hostname);
  out.set_role(n.role);
  out.set_availability(AvailabilityFrom(n.availability));
  out.set_state(n.state);
  out.set_address(n.address);
  for (const auto& [k, v] : n.labels) (*out.mutable_labels())[k] = v;
  out.set_nano_cpus(n.nano_cpus);
  out.set_memory_bytes(n.memory_bytes);
  out.set_engine_version(n.engine_version);
  return out;
}

google::protobuf::Duration Seconds(double s) {
  if (std::isnan(s)) return google::protobuf::Duration();
  return google::protobuf::util::TimeUtil::NanosecondsToDuration(static_cast<int64_t>(s * 1e9));
}

absl::StatusOr<docker::NodeInfo> FindNode(docker::DockerClient& docker, const std::string& node) {
  if (node.empty()) return InvalidArgumentWithViolations({{"node", "required (ID or hostname)"}});
  absl::StatusOr<std::vector<docker::NodeInfo>> nodes = docker.ListNodes();
  if (!nodes.ok()) return nodes.status();
  for (const auto& n : *nodes) {
    if (n.id == node || n.hostname == node) return n;
  }
  return absl::NotFoundError(absl::StrCat("no Swarm node with ID or hostname '", node, "'"));
}

// Streams event-log entries to one caller: replays stored events after a sequence, then
// follows live ones, converting each for the stream. Writes are queued (one outstanding write
// per stream). Serves WatchEvents (events as they are) and WatchRelease (one release's events).
template <typename Out>
class LogStream final : public grpc::ServerWriteReactor<Out> {
 public:
  // Backlog beyond which a watcher is too slow and is ended (it can resume from a sequence).
  static constexpr size_t kMaxBacklog = 10000;

  struct Options {
    std::function<bool(const hosting::v1::Event&)> match;
    std::function<Out(const hosting::v1::Event&)> convert;
    // Ends the stream after writing an event for which it is true (may be empty).
    std::function<bool(const hosting::v1::Event&)> last;
    // Replays stored events with a greater sequence; -1: live events only.
    int64_t replay_after = -1;
    // Ends after the replay.
    bool no_follow = false;
  };

  LogStream(EventLog& log, Store& store, HostdMetrics& metrics, Options options)
      : log_(log), metrics_(metrics), options_(std::move(options)) {
    absl::MutexLock lock(&mu_);
    subscription_ = log_.Subscribe([this](const hosting::v1::Event& e) { OnLiveEvent(e); });
    metrics_.SetWatchers(++watchers_);
    if (options_.replay_after >= 0) {
      int64_t after = options_.replay_after;
      while (true) {
        absl::StatusOr<std::vector<hosting::v1::Event>> batch = store.ListEvents(after, 1000);
        if (!batch.ok()) {
          FinishLocked(ToGrpcStatus(batch.status()));
          return;
        }
        for (auto& e : *batch) {
          after = e.sequence();
          if (options_.match(e)) backlog_.push_back(std::move(e));
        }
        if (batch->size() < 1000) break;
      }
      replayed_through_ = after;
    }
    MaybeWriteLocked();
  }

  void OnWriteDone(bool ok) override {
    absl::MutexLock lock(&mu_);
    writing_ = false;
    if (!ok) {
      FinishLocked(grpc::Status::CANCELLED);
      return;
    }
    if (ended_) {
      FinishLocked(grpc::Status::OK);
      return;
    }
    MaybeWriteLocked();
  }

  void OnCancel() override {
    absl::MutexLock lock(&mu_);
    FinishLocked(grpc::Status::CANCELLED);
  }

  void OnDone() override {
    log_.Unsubscribe(subscription_);
    metrics_.SetWatchers(--watchers_);
    delete this;
  }

 private:
  void OnLiveEvent(const hosting::v1::Event& e) {
    absl::MutexLock lock(&mu_);
    if (finished_ || options_.no_follow || ended_) return;
    if (e.sequence() != 0 && e.sequence() <= replayed_through_) return;
    if (!options_.match(e)) return;
    if (backlog_.size() >= kMaxBacklog) {
      FinishLocked(grpc::Status(
          grpc::StatusCode::RESOURCE_EXHAUSTED,
          absl::StrCat("event watcher fell ", kMaxBacklog, " events behind; resume with "
                       "since_sequence=", last_sent_)));
      return;
    }
    backlog_.push_back(e);
    MaybeWriteLocked();
  }

  void MaybeWriteLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (writing_ || finished_ || ended_) return;
    if (backlog_.empty()) {
      if (options_.no_follow) FinishLocked(grpc::Status::OK);
      return;
    }
    writing_ = true;
    const hosting::v1::Event e = std::move(backlog_.front());
    backlog_.pop_front();
    last_sent_ = e.sequence();
    ended_ = options_.last && options_.last(e);
    current_ = options_.convert(e);
    this->StartWrite(&current_);
  }

  void FinishLocked(grpc::Status status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (finished_) return;
    finished_ = true;
    this->Finish(std::move(status));
  }

  static inline std::atomic<int> watchers_{0};
  EventLog& log_;
  HostdMetrics& metrics_;
  const Options options_;
  int64_t subscription_ = 0;
  absl::Mutex mu_;
  std::deque<hosting::v1::Event> backlog_ ABSL_GUARDED_BY(mu_);
  Out current_ ABSL_GUARDED_BY(mu_);
  int64_t replayed_through_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t last_sent_ ABSL_GUARDED_BY(mu_) = 0;
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool ended_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace

// ---- ServiceManager ----

grpc::ServerUnaryReactor* ServiceManagerGrpc::ApplyService(
    grpc::CallbackServerContext* ctx, const hosting::v1::ApplyServiceRequest* request,
    hosting::v1::ApplyServiceResponse* response) {
  return Unary(ctx, &metrics_, "ApplyService", [&]() -> absl::Status {
    absl::StatusOr<hosting::v1::ApplyServiceResponse> r = manager_.Apply(*request);
    if (r.ok()) *response = *std::move(r);
    return r.status();
  });
}

grpc::ServerUnaryReactor* ServiceManagerGrpc::GetService(
    grpc::CallbackServerContext* ctx, const hosting::v1::GetServiceRequest* request,
    hosting::v1::Service* response) {
  return Unary(ctx, &metrics_, "GetService", [&]() -> absl::Status {
    absl::StatusOr<hosting::v1::Service> r = manager_.Get(request->name());
    if (r.ok()) *response = *std::move(r);
    return r.status();
  });
}

grpc::ServerUnaryReactor* ServiceManagerGrpc::ListServices(
    grpc::CallbackServerContext* ctx, const hosting::v1::ListServicesRequest*,
    hosting::v1::ListServicesResponse* response) {
  return Unary(ctx, &metrics_, "ListServices", [&]() -> absl::Status {
    absl::StatusOr<std::vector<hosting::v1::Service>> r = manager_.List();
    if (!r.ok()) return r.status();
    for (auto& s : *r) *response->add_services() = std::move(s);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* ServiceManagerGrpc::DeleteService(
    grpc::CallbackServerContext* ctx, const hosting::v1::DeleteServiceRequest* request,
    hosting::v1::DeleteServiceResponse* response) {
  return Unary(ctx, &metrics_, "DeleteService", [&]() -> absl::Status {
    absl::StatusOr<hosting::v1::Service> r = manager_.Delete(request->name());
    if (r.ok()) *response->mutable_service() = *std::move(r);
    return r.status();
  });
}

grpc::ServerUnaryReactor* ServiceManagerGrpc::ScaleService(
    grpc::CallbackServerContext* ctx, const hosting::v1::ScaleServiceRequest* request,
    hosting::v1::Service* response) {
  return Unary(ctx, &metrics_, "ScaleService", [&]() -> absl::Status {
    absl::StatusOr<hosting::v1::Service> r = manager_.Scale(*request);
    if (r.ok()) *response = *std::move(r);
    return r.status();
  });
}

// ---- Cluster ----

grpc::ServerUnaryReactor* ClusterGrpc::ListNodes(grpc::CallbackServerContext* ctx,
                                                 const hosting::v1::ListNodesRequest*,
                                                 hosting::v1::ListNodesResponse* response) {
  return Unary(ctx, &metrics_, "ListNodes", [&]() -> absl::Status {
    absl::StatusOr<std::vector<docker::NodeInfo>> nodes = docker_.ListNodes();
    if (!nodes.ok()) return nodes.status();
    for (const auto& n : *nodes) *response->add_nodes() = NodeToProto(n);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* ClusterGrpc::GetNode(grpc::CallbackServerContext* ctx,
                                               const hosting::v1::GetNodeRequest* request,
                                               hosting::v1::Node* response) {
  return Unary(ctx, &metrics_, "GetNode", [&]() -> absl::Status {
    absl::StatusOr<docker::NodeInfo> n = FindNode(docker_, request->node());
    if (n.ok()) *response = NodeToProto(*n);
    return n.status();
  });
}

absl::StatusOr<hosting::v1::Node> ClusterGrpc::SetAvailability(const std::string& node,
                                                               const std::string& availability) {
  absl::StatusOr<docker::NodeInfo> n = FindNode(docker_, node);
  if (!n.ok()) return n.status();
  for (int attempt = 0; attempt < 5; ++attempt) {
    nlohmann::json spec = n->spec;
    spec["Availability"] = availability;
    absl::Status st = docker_.UpdateNode(n->id, n->version, spec);
    if (st.ok()) break;
    if (!absl::IsAborted(st) || attempt == 4) return st;
    absl::StatusOr<docker::NodeInfo> fresh = docker_.InspectNode(n->id);
    if (!fresh.ok()) return fresh.status();
    n = std::move(fresh);
  }
  events_.Publish(absl::StrCat("node.", availability), "", 0,
                  absl::StrCat("node ", n->hostname, " (", n->id, ") set to ", availability),
                  {{"node", n->id}});
  absl::StatusOr<docker::NodeInfo> updated = docker_.InspectNode(n->id);
  if (!updated.ok()) return updated.status();
  return NodeToProto(*updated);
}

grpc::ServerUnaryReactor* ClusterGrpc::DrainNode(grpc::CallbackServerContext* ctx,
                                                 const hosting::v1::DrainNodeRequest* request,
                                                 hosting::v1::Node* response) {
  return Unary(ctx, &metrics_, "DrainNode", [&]() -> absl::Status {
    absl::StatusOr<hosting::v1::Node> n = SetAvailability(request->node(), "drain");
    if (n.ok()) *response = *std::move(n);
    return n.status();
  });
}

grpc::ServerUnaryReactor* ClusterGrpc::ActivateNode(
    grpc::CallbackServerContext* ctx, const hosting::v1::ActivateNodeRequest* request,
    hosting::v1::Node* response) {
  return Unary(ctx, &metrics_, "ActivateNode", [&]() -> absl::Status {
    absl::StatusOr<hosting::v1::Node> n = SetAvailability(request->node(), "active");
    if (n.ok()) *response = *std::move(n);
    return n.status();
  });
}

hosting::v1::Node ClusterGrpc::NodeToProto(const docker::NodeInfo& n) {
  hosting::v1::Node out = BaseNodeToProto(n);
  AgentRegistry::AgentInfo agent = agents_.Agent(n.id);
  out.set_agent_state(agent.state);
  out.set_agent_version(agent.version);
  for (const auto& [k, v] : agent.labels) (*out.mutable_agent_labels())[k] = v;
  if (agent.state != hosting::v1::AGENT_STATE_ABSENT) {
    *out.mutable_agent_last_seen() = google::protobuf::util::TimeUtil::NanosecondsToTimestamp(
        absl::ToUnixNanos(agent.last_seen));
  }
  out.set_running_tasks(agent.running_tasks);
  return out;
}

absl::StatusOr<hosting::v1::ServiceHealthStatus> ClusterGrpc::ServiceStatus(const std::string& name) {
  if (auto v = ValidateServiceName(name, "name"); !v.empty()) return InvalidArgumentWithViolations(v);
  absl::StatusOr<ServiceRecord> record = store_.GetService(name);
  if (!record.ok()) return record.status();
  absl::StatusOr<hosting::v1::ServiceStatus> status = reconciler_.Observe(*record);
  if (!status.ok()) return status.status();
  hosting::v1::ServiceHealthStatus out;
  out.set_name(name);
  std::map<int64_t, AgentRegistry::RevisionAggregate> aggs = agents_.Aggregate(name);
  for (const auto& rs : status->revisions()) {
    auto* r = out.add_revisions();
    r->set_revision(rs.revision());
    r->set_desired(rs.desired_replicas());
    r->set_running(rs.running_tasks());
    auto it = aggs.find(rs.revision());
    if (it != aggs.end()) {
      const auto& a = it->second;
      r->set_healthy(a.healthy);
      r->set_unhealthy(a.unhealthy);
      r->set_starting(a.starting);
      r->set_requests_per_second(a.rps);
      r->set_error_ratio(a.error_ratio);
      *r->mutable_latency_p50() = Seconds(a.p50);
      *r->mutable_latency_p95() = Seconds(a.p95);
      *r->mutable_latency_p99() = Seconds(a.p99);
      r->set_cpu_cores(a.cpu_cores);
      r->set_memory_bytes(a.memory_bytes);
    }
    *r->mutable_window() = Seconds(absl::ToDoubleSeconds(agents_.options().window));
  }
  *out.mutable_status() = *std::move(status);
  return out;
}

grpc::ServerUnaryReactor* ClusterGrpc::GetServiceStatus(
    grpc::CallbackServerContext* ctx, const hosting::v1::GetServiceStatusRequest* request,
    hosting::v1::ServiceHealthStatus* response) {
  return Unary(ctx, &metrics_, "GetServiceStatus", [&]() -> absl::Status {
    absl::StatusOr<hosting::v1::ServiceHealthStatus> s = ServiceStatus(request->name());
    if (s.ok()) *response = *std::move(s);
    return s.status();
  });
}

grpc::ServerWriteReactor<hosting::v1::Event>* ClusterGrpc::WatchEvents(
    grpc::CallbackServerContext*, const hosting::v1::WatchEventsRequest* request) {
  metrics_.CountGrpc("WatchEvents", "OK");
  LogStream<hosting::v1::Event>::Options o;
  const std::string service = request->service();
  const std::vector<std::string> types(request->types().begin(), request->types().end());
  o.match = [service, types](const hosting::v1::Event& e) {
    return EventLog::Matches(e, service, types);
  };
  o.convert = [](const hosting::v1::Event& e) { return e; };
  if (request->since_sequence() > 0 || request->from_start()) {
    o.replay_after = request->from_start() ? 0 : request->since_sequence();
  }
  o.no_follow = request->no_follow();
  return new LogStream<hosting::v1::Event>(events_, store_, metrics_, std::move(o));
}

namespace {

// A command's result as a Status: the agent's error becomes FAILED_PRECONDITION with its text.
absl::Status CommandStatus(const absl::StatusOr<hosting::v1::CommandResult>& r, const std::string& what) {
  if (!r.ok()) return r.status();
  if (!r->ok()) return absl::FailedPreconditionError(absl::StrCat(what, ": ", r->error()));
  return absl::OkStatus();
}

constexpr absl::Duration kCommandTimeout = absl::Seconds(30);
constexpr absl::Duration kPullTimeout = absl::Minutes(10);

}  // namespace

grpc::ServerUnaryReactor* ClusterGrpc::GetTaskLogs(grpc::CallbackServerContext* ctx,
                                                   const hosting::v1::GetTaskLogsRequest* request,
                                                   hosting::v1::GetTaskLogsResponse* response) {
  return Unary(ctx, &metrics_, "GetTaskLogs", [&]() -> absl::Status {
    if (request->lines() < 0 || request->lines() > 10000) {
      return InvalidArgumentWithViolations({{"lines", "must be 0 (default 100) to 10000"}});
    }
    auto task = agents_.FindTask(request->task_id());
    if (!task.ok()) return task.status();
    hosting::v1::Command cmd;
    cmd.mutable_task_logs()->set_task_id(task->second.task_id());
    cmd.mutable_task_logs()->set_lines(request->lines() == 0 ? 100 : request->lines());
    auto r = gateway_->RunCommand(task->first, cmd, kCommandTimeout);
    if (absl::Status s = CommandStatus(r, "task logs"); !s.ok()) return s;
    response->set_task_id(task->second.task_id());
    response->set_node_id(task->first);
    response->set_logs(r->output());
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* ClusterGrpc::RestartTask(grpc::CallbackServerContext* ctx,
                                                   const hosting::v1::RestartTaskRequest* request,
                                                   hosting::v1::RestartTaskResponse* response) {
  return Unary(ctx, &metrics_, "RestartTask", [&]() -> absl::Status {
    auto task = agents_.FindTask(request->task_id());
    if (!task.ok()) return task.status();
    hosting::v1::Command cmd;
    cmd.mutable_restart_task()->set_task_id(task->second.task_id());
    auto r = gateway_->RunCommand(task->first, cmd, kCommandTimeout);
    if (absl::Status s = CommandStatus(r, "restart"); !s.ok()) return s;
    events_.Publish("task.restarted", task->second.service(), task->second.revision(),
                    absl::StrCat("restarted task ", task->second.task_id(), " on ", task->first),
                    {{"task", task->second.task_id()}, {"node", task->first}});
    response->set_task_id(task->second.task_id());
    response->set_node_id(task->first);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* ClusterGrpc::PullImage(grpc::CallbackServerContext* ctx,
                                                 const hosting::v1::PullImageRequest* request,
                                                 hosting::v1::PullImageResponse* response) {
  return Unary(ctx, &metrics_, "PullImage", [&]() -> absl::Status {
    if (request->image().empty() || request->image().find(' ') != std::string::npos) {
      return InvalidArgumentWithViolations({{"image", "required: an image reference"}});
    }
    std::vector<std::string> nodes(request->nodes().begin(), request->nodes().end());
    if (nodes.empty()) nodes = agents_.ConnectedNodes();
    if (nodes.empty()) return absl::UnavailableError("no agent is connected");
    for (const std::string& node : nodes) {
      hosting::v1::Command cmd;
      cmd.mutable_pull_image()->set_image(request->image());
      auto r = gateway_->RunCommand(node, cmd, kPullTimeout);
      auto* out = response->add_results();
      out->set_node_id(node);
      absl::Status s = CommandStatus(r, "pull");
      out->set_ok(s.ok());
      if (!s.ok()) out->set_error(std::string(s.message()));
    }
    return absl::OkStatus();
  });
}

// ---- Releases ----

// A unary method whose domain call returns StatusOr<Resp>.
#define HOSTING_UNARY(Svc, Method, Req, Resp, Call)                                          \
  grpc::ServerUnaryReactor* Svc::Method(grpc::CallbackServerContext* ctx,                     \
                                        const hosting::v1::Req* request,                      \
                                        hosting::v1::Resp* response) {                        \
    return Unary(ctx, &metrics_, #Method, [&]() -> absl::Status {                            \
      absl::StatusOr<hosting::v1::Resp> r = Call;                                            \
      if (!r.ok()) return r.status();                                                        \
      *response = *std::move(r);                                                             \
      return absl::OkStatus();                                                               \
    });                                                                                      \
  }
#define HOSTING_RELEASE_UNARY(...) HOSTING_UNARY(ReleasesGrpc, __VA_ARGS__)

HOSTING_RELEASE_UNARY(StartRelease, StartReleaseRequest, Release, releases_.Start(*request))
HOSTING_RELEASE_UNARY(GetRelease, GetReleaseRequest, Release, releases_.Get(*request))
HOSTING_RELEASE_UNARY(PromoteRelease, PromoteReleaseRequest, Release, releases_.Promote(*request))
HOSTING_RELEASE_UNARY(PauseRelease, PauseReleaseRequest, Release, releases_.Pause(request->id()))
HOSTING_RELEASE_UNARY(ResumeRelease, ResumeReleaseRequest, Release,
                      releases_.Resume(request->id()))
HOSTING_RELEASE_UNARY(AbortRelease, AbortReleaseRequest, Release, releases_.Abort(*request))
HOSTING_RELEASE_UNARY(RollbackService, RollbackServiceRequest, Release,
                      releases_.Rollback(*request))
#undef HOSTING_RELEASE_UNARY

#define HOSTING_AUTOSCALING_UNARY(...) HOSTING_UNARY(AutoscalingGrpc, __VA_ARGS__)

HOSTING_AUTOSCALING_UNARY(SetPolicy, SetPolicyRequest, AutoscalingPolicy,
                          autoscaler_.SetPolicy(*request))
HOSTING_AUTOSCALING_UNARY(GetPolicy, GetPolicyRequest, AutoscalingPolicy,
                          autoscaler_.GetPolicy(request->service()))
HOSTING_AUTOSCALING_UNARY(GetStatus, GetAutoscalingStatusRequest, AutoscalingStatus,
                          autoscaler_.GetStatus(request->service()))
#undef HOSTING_AUTOSCALING_UNARY
#undef HOSTING_UNARY

grpc::ServerUnaryReactor* AutoscalingGrpc::DeletePolicy(
    grpc::CallbackServerContext* ctx, const hosting::v1::DeletePolicyRequest* request,
    hosting::v1::DeletePolicyResponse*) {
  return Unary(ctx, &metrics_, "DeletePolicy",
               [&]() -> absl::Status { return autoscaler_.DeletePolicy(request->service()); });
}

grpc::ServerUnaryReactor* ReleasesGrpc::ListReleases(grpc::CallbackServerContext* ctx,
                                                     const hosting::v1::ListReleasesRequest* request,
                                                     hosting::v1::ListReleasesResponse* response) {
  return Unary(ctx, &metrics_, "ListReleases", [&]() -> absl::Status {
    absl::StatusOr<std::vector<hosting::v1::Release>> list = releases_.List(*request);
    if (!list.ok()) return list.status();
    for (auto& r : *list) *response->add_releases() = std::move(r);
    return absl::OkStatus();
  });
}

grpc::ServerWriteReactor<hosting::v1::ReleaseEvent>* ReleasesGrpc::WatchRelease(
    grpc::CallbackServerContext* ctx, const hosting::v1::WatchReleaseRequest* request) {
  hosting::v1::GetReleaseRequest get;
  get.set_id(request->id());
  absl::StatusOr<hosting::v1::Release> current =
      request->id().empty()
          ? absl::StatusOr<hosting::v1::Release>(
                InvalidArgumentWithViolations({{"id", "required: a release ID"}}))
          : releases_.Get(get);
  metrics_.CountGrpc("WatchRelease", current.ok() ? "OK" : CodeName(ToGrpcStatus(current.status()).error_code()));
  if (!current.ok()) {
    return new FinishedWriter<hosting::v1::ReleaseEvent>(ToGrpcStatus(current.status()));
  }
  const std::string id = request->id();
  LogStream<hosting::v1::ReleaseEvent>::Options o;
  o.match = [id](const hosting::v1::Event& e) { return ReleaseManager::IsReleaseEvent(e, id); };
  ReleaseManager* releases = &releases_;
  o.convert = [releases, id](const hosting::v1::Event& e) {
    hosting::v1::ReleaseEvent out;
    *out.mutable_time() = e.time();
    out.set_type(e.type().substr(std::string("release.").size()));
    out.set_message(e.message());
    for (const auto& [k, v] : e.attributes()) (*out.mutable_attributes())[k] = v;
    hosting::v1::GetReleaseRequest req;
    req.set_id(id);
    if (absl::StatusOr<hosting::v1::Release> r = releases->Get(req); r.ok()) {
      *out.mutable_release() = *std::move(r);
    }
    return out;
  };
  o.last = [](const hosting::v1::Event& e) { return e.type() == "release.finished"; };
  // The whole history of the release first, then what happens next.
  o.replay_after = 0;
  o.no_follow = IsTerminalState(current->state());
  return new LogStream<hosting::v1::ReleaseEvent>(events_, store_, metrics_, std::move(o));
}

// ---- Not yet served ----

// Svc is the adapter class, e.g. ReleasesGrpc for the gRPC service "Releases".
#define HOSTING_NOT_YET_UNARY(Svc, Method, Req, Resp, What)                              \
  grpc::ServerUnaryReactor* Svc##Grpc::Method(grpc::CallbackServerContext* ctx,          \
                                              const hosting::v1::Req*, hosting::v1::Resp*) { \
    return NotYet(ctx, "hosting.v1." #Svc "/" #Method, What);                            \
  }

HOSTING_NOT_YET_UNARY(Runbooks, ListRunbooks, ListRunbooksRequest, ListRunbooksResponse,
                      kRunbooksLater)
HOSTING_NOT_YET_UNARY(Runbooks, RunRunbook, RunRunbookRequest, RunbookRun, kRunbooksLater)
HOSTING_NOT_YET_UNARY(Runbooks, GetRun, GetRunRequest, RunbookRun, kRunbooksLater)

#undef HOSTING_NOT_YET_UNARY


grpc::ServerWriteReactor<hosting::v1::RunbookRun>* RunbooksGrpc::WatchRun(
    grpc::CallbackServerContext*, const hosting::v1::WatchRunRequest*) {
  return NotYetStream<hosting::v1::RunbookRun>("hosting.v1.Runbooks/WatchRun", kRunbooksLater);
}

}  // namespace hosting::controlplane
