#include "agent/agent.h"

#include <unistd.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "agent/node_access.h"
#include "agent/prom_text.h"
#include "common/log.h"
#include "common/metric_window.h"
#include "common/proto_time.h"
#include "google/protobuf/util/time_util.h"
#include "prometheus/counter.h"
#include "prometheus/exposer.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"

namespace hosting::agent {
namespace {

using google::protobuf::util::TimeUtil;
using hosting::v1::TaskHealth;

constexpr char kVersion[] = "0.1.0";
constexpr char kTaskLabel[] = "com.docker.swarm.task.id";

absl::Duration ProbeInterval(const hosting::v1::ProbeConfig& c) {
  return absl::Milliseconds(std::max<int64_t>(100, TimeUtil::DurationToMilliseconds(c.interval())));
}

google::protobuf::Timestamp Now() {
  return ToTimestamp(absl::Now());
}

std::string Label(const docker::Labels& labels, const char* key) {
  auto it = labels.find(key);
  return it == labels.end() ? "" : it->second;
}

}  // namespace

struct Agent::Metrics {
  prometheus::Gauge* tasks;
  prometheus::Gauge* connected;
  prometheus::Counter* reconnects;
  prometheus::Family<prometheus::Counter>* probes;
  prometheus::Histogram* probe_seconds;
  prometheus::Counter* scrape_failures;
};

Agent::Agent(AgentOptions options, docker::DockerClient& docker)
    : options_(std::move(options)), docker_(docker),
      registry_(std::make_shared<prometheus::Registry>()), metrics_(std::make_unique<Metrics>()) {
  metrics_->tasks = &prometheus::BuildGauge().Name("hostagent_tasks").Help("Task containers on this node.").Register(*registry_).Add({});
  metrics_->connected = &prometheus::BuildGauge().Name("hostagent_connected").Help("1 while the stream to hostd is up.").Register(*registry_).Add({});
  metrics_->reconnects = &prometheus::BuildCounter().Name("hostagent_reconnects_total").Help("Stream (re)connection attempts.").Register(*registry_).Add({});
  metrics_->probes = &prometheus::BuildCounter().Name("hostagent_probes_total").Help("Health probes by result.").Register(*registry_);
  metrics_->probe_seconds = &prometheus::BuildHistogram().Name("hostagent_probe_duration_seconds").Help("Health probe duration.").Register(*registry_)
                                 .Add({}, prometheus::Histogram::BucketBoundaries{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5});
  metrics_->scrape_failures = &prometheus::BuildCounter().Name("hostagent_scrape_failures_total").Help("Application /metrics that could not be read or parsed.").Register(*registry_).Add({});
}

Agent::~Agent() { Stop(); }

absl::Status Agent::Init() {
  absl::StatusOr<docker::EngineInfo> info = docker_.Info();
  if (!info.ok()) return info.status();
  node_id_ = options_.node_id.empty() ? info->node_id : options_.node_id;
  if (node_id_.empty()) {
    return absl::FailedPreconditionError(
        "this Docker engine is not part of a Swarm and no --node-id was given");
  }
  hostname_ = info->name;
  cpus_ = info->ncpu;
  memory_ = info->mem_total;
  labels_ = info->labels;
  if (!options_.metrics_listen.empty()) {
    try {
      exposer_ = std::make_unique<prometheus::Exposer>(options_.metrics_listen);
    } catch (const std::exception& e) {
      return absl::UnavailableError(absl::StrCat("--metrics-listen ", options_.metrics_listen, ": ", e.what()));
    }
    exposer_->RegisterCollectable(registry_);
  }
  return Refresh();
}

void Agent::Start() {
  threads_.emplace_back([this] { DiscoveryLoop(); });
  threads_.emplace_back([this] { ReportLoop(); });
  threads_.emplace_back([this] { StreamLoop(); });
  threads_.emplace_back([this] { HeartbeatLoop(); });
  threads_.emplace_back([this] { ScheduleLoop(); });
  threads_.emplace_back([this] { CommandLoop(); });
  for (int i = 0; i < options_.probe_threads; ++i) threads_.emplace_back([this] { ProbeLoop(); });
}

void Agent::Stop() {
  if (stop_.HasBeenNotified()) return;
  stop_.Notify();
  {
    absl::MutexLock lock(&stream_mu_);
    if (stream_ctx_ != nullptr) stream_ctx_->TryCancel();
  }
  for (auto& t : threads_) t.join();
  threads_.clear();
}

void Agent::InspectInto(const std::string& container_id, Task& task) {
  absl::StatusOr<nlohmann::json> c = docker_.InspectContainer(container_id);
  if (!c.ok()) return;
  task.pid = c->value("/State/Pid"_json_pointer, 0);
  task.report.set_docker_health(c->value("/State/Health/Status"_json_pointer, std::string("none")));
  if (auto nets = c->find("NetworkSettings"); nets != c->end()) {
    const nlohmann::json& n = nets->value("Networks", nlohmann::json::object());
    for (const auto& [name, net] : n.items()) {
      std::string ip = net.value("IPAddress", "");
      if (!ip.empty() && name != "ingress") {
        task.report.set_address(ip);
        break;
      }
    }
  }
}

absl::Status Agent::Refresh() {
  absl::StatusOr<std::vector<docker::ContainerInfo>> list =
      docker_.ListContainers({{"label", {kTaskLabel}}, {"status", {"running"}}});
  if (!list.ok()) return list.status();
  std::vector<hosting::v1::TaskReport> added;
  bool removed = false;
  {
    absl::MutexLock lock(&mu_);
    std::map<std::string, const docker::ContainerInfo*> present;
    for (const auto& c : *list) present[c.id] = &c;
    for (auto it = tasks_.begin(); it != tasks_.end();) {
      if (!present.count(it->first)) {
        ForgetNetns(it->second.pid);
        it = tasks_.erase(it);
        removed = true;
      } else {
        ++it;
      }
    }
    for (const auto& [id, c] : present) {
      if (tasks_.count(id)) continue;
      Task t;
      t.report.set_task_id(Label(c->labels, kTaskLabel));
      t.report.set_container_id(id);
      t.report.set_swarm_service(Label(c->labels, "com.docker.swarm.service.name"));
      t.report.set_service(Label(c->labels, "hosting.service"));
      int64_t rev = 0;
      absl::SimpleAtoi(Label(c->labels, "hosting.revision"), &rev);
      t.report.set_revision(rev);
      t.report.set_probe_health(ConfigFor(t.report.service()) ? hosting::v1::TASK_HEALTH_STARTING
                                                               : hosting::v1::TASK_HEALTH_NONE);
      *t.report.mutable_changed_at() = Now();
      t.started = absl::Now();
      t.next_probe = absl::Now();
      tasks_.emplace(id, std::move(t));
      added.push_back(tasks_[id].report);
    }
    metrics_->tasks->Set(static_cast<double>(tasks_.size()));
  }
  // Inspect outside the lock: it is a Docker call.
  for (const auto& r : added) {
    Task probe_target;
    InspectInto(r.container_id(), probe_target);
    absl::MutexLock lock(&mu_);
    auto it = tasks_.find(r.container_id());
    if (it == tasks_.end()) continue;
    it->second.pid = probe_target.pid;
    it->second.report.set_docker_health(probe_target.report.docker_health());
    it->second.report.set_address(probe_target.report.address());
  }
  if (!added.empty() || removed) SendSnapshot();
  return absl::OkStatus();
}

void Agent::DiscoveryLoop() {
  Backoff backoff(absl::Milliseconds(200), options_.max_backoff);
  while (!stop_.HasBeenNotified()) {
    absl::Status listed = Refresh();
    if (!listed.ok()) {
      LogWarning("cannot list task containers", {{"error", listed.ToString()}});
      stop_.WaitForNotificationWithTimeout(backoff.Next());
      continue;
    }
    backoff.Reset();
    // Events are hints: any container event triggers a full refresh, and every
    // resync_interval the list is read again anyway.
    absl::Time next_resync = absl::Now() + options_.resync_interval;
    std::atomic<bool> dirty{false};
    // The stream ends at the resync time, on stop, or when the engine goes away; each case
    // loops back to a full list (which logs and backs off if the engine is gone).
    absl::Status streamed = docker_.StreamEvents(
        absl::ToUnixSeconds(absl::Now()), {{"type", {"container"}}, {"label", {kTaskLabel}}},
        [&](const docker::Event& e) {
          if (e.action.rfind("health_status", 0) == 0) {
            // Docker's own health verdict changed: report it at once.
            std::optional<hosting::v1::TaskReport> report;
            {
              absl::MutexLock lock(&mu_);
              auto it = tasks_.find(e.actor_id);
              if (it != tasks_.end()) {
                std::string status = e.action.substr(e.action.find(':') + 1);
                while (!status.empty() && status[0] == ' ') status.erase(0, 1);
                it->second.report.set_docker_health(status);
                *it->second.report.mutable_changed_at() = Now();
                report = it->second.report;
              }
            }
            if (report) ReportTask(*report);
          } else if (e.action == "start" || e.action == "die" || e.action == "destroy") {
            dirty = true;
          }
        },
        [&] {
          if (dirty.exchange(false)) Refresh().IgnoreError();
          return stop_.HasBeenNotified() || absl::Now() >= next_resync;
        });
    if (!streamed.ok() && !stop_.HasBeenNotified()) {
      LogWarning("container event stream ended", {{"error", streamed.ToString()}});
    }
  }
}

const hosting::v1::ProbeConfig* Agent::ConfigFor(const std::string& service) const {
  auto it = probes_.find(service);
  return it == probes_.end() ? nullptr : &it->second;
}

void Agent::ApplyProbeConfigs(const hosting::v1::ProbeConfigs& configs) {
  absl::MutexLock lock(&mu_);
  probes_.clear();
  for (const auto& p : configs.probes()) probes_[p.service()] = p;
  for (auto& [id, t] : tasks_) {
    if (!ConfigFor(t.report.service())) {
      t.report.set_probe_health(hosting::v1::TASK_HEALTH_NONE);
    } else if (t.report.probe_health() == hosting::v1::TASK_HEALTH_NONE) {
      t.report.set_probe_health(hosting::v1::TASK_HEALTH_STARTING);
    }
    t.next_probe = absl::Now();
  }
}

void Agent::ReportTask(const hosting::v1::TaskReport& report) {
  hosting::v1::AgentMessage msg;
  *msg.mutable_task() = report;
  Send(msg);
}

void Agent::CommandLoop() {
  while (true) {
    hosting::v1::Command command;
    {
      absl::MutexLock lock(&mu_);
      auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return !commands_.empty() || stop_.HasBeenNotified();
      };
      mu_.AwaitWithTimeout(absl::Condition(&ready), absl::Milliseconds(500));
      if (stop_.HasBeenNotified()) return;
      if (commands_.empty()) continue;
      command = std::move(commands_.front());
      commands_.pop_front();
    }
    hosting::v1::AgentMessage msg;
    *msg.mutable_result() = Execute(command);
    Send(msg);
  }
}

hosting::v1::CommandResult Agent::Execute(const hosting::v1::Command& command) {
  hosting::v1::CommandResult result;
  result.set_command_id(command.command_id());
  auto container_of = [this](const std::string& task_id) -> std::string {
    absl::MutexLock lock(&mu_);
    for (const auto& [cid, t] : tasks_) {
      if (t.report.task_id() == task_id) return cid;
    }
    return "";
  };
  absl::Status st;
  switch (command.body_case()) {
    case hosting::v1::Command::kPullImage:
      st = docker_.PullImage(command.pull_image().image());
      break;
    case hosting::v1::Command::kRestartTask: {
      std::string cid = container_of(command.restart_task().task_id());
      st = cid.empty() ? absl::NotFoundError(absl::StrCat("task ", command.restart_task().task_id(),
                                                          " has no container on this node"))
                       : docker_.RestartContainer(cid);
      break;
    }
    case hosting::v1::Command::kTaskLogs: {
      std::string cid = container_of(command.task_logs().task_id());
      if (cid.empty()) {
        st = absl::NotFoundError(absl::StrCat("task ", command.task_logs().task_id(),
                                              " has no container on this node"));
        break;
      }
      absl::StatusOr<std::string> logs = docker_.ContainerLogs(cid, command.task_logs().lines());
      st = logs.status();
      if (logs.ok()) result.set_output(*std::move(logs));
      break;
    }
    default:
      st = absl::InvalidArgumentError("unknown command");
  }
  result.set_ok(st.ok());
  if (!st.ok()) result.set_error(std::string(st.message()));
  LogInfo("command done", {{"command", command.command_id()},
                           {"ok", st.ok() ? "true" : "false"},
                           {"error", std::string(st.message())}});
  return result;
}

void Agent::ScheduleLoop() {
  // One thread finds due probes and hands them to the probers, so the probers sleep until
  // there is work instead of all scanning the table.
  while (!stop_.HasBeenNotified()) {
    absl::Time soonest = absl::Now() + absl::Milliseconds(250);
    {
      absl::MutexLock lock(&mu_);
      const absl::Time now = absl::Now();
      for (auto& [cid, t] : tasks_) {
        const hosting::v1::ProbeConfig* c = ConfigFor(t.report.service());
        if (t.pid == 0 || c == nullptr) continue;
        if (t.probing) {
          // Probes keep a fixed cadence: its next one is due one interval after this one was.
          soonest = std::min(soonest, t.next_probe + ProbeInterval(*c));
          continue;
        }
        if (t.next_probe <= now) {
          t.probing = true;
          due_.push_back(cid);
        } else {
          soonest = std::min(soonest, t.next_probe);
        }
      }
    }
    stop_.WaitForNotificationWithTimeout(std::max(absl::Milliseconds(1), soonest - absl::Now()));
  }
  absl::MutexLock lock(&mu_);
  due_.clear();
}

void Agent::ProbeLoop() {
  while (true) {
    std::string id;
    int pid = 0;
    hosting::v1::ProbeConfig config;
    {
      absl::MutexLock lock(&mu_);
      auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return !due_.empty() || stop_.HasBeenNotified();
      };
      mu_.AwaitWithTimeout(absl::Condition(&ready), absl::Milliseconds(500));
      if (stop_.HasBeenNotified()) return;
      if (due_.empty()) continue;
      id = due_.front();
      due_.pop_front();
      auto it = tasks_.find(id);
      if (it == tasks_.end()) continue;
      const hosting::v1::ProbeConfig* c = ConfigFor(it->second.report.service());
      if (c == nullptr) {
        it->second.probing = false;
        continue;
      }
      pid = it->second.pid;
      config = *c;
    }
    const absl::Duration interval = ProbeInterval(config);
    const absl::Duration timeout = absl::Milliseconds(
        std::max<int64_t>(50, TimeUtil::DurationToMilliseconds(config.timeout())));
    HttpResult r = HttpGetInNetns(pid, static_cast<uint16_t>(config.port()), config.http_path(), timeout, 4096);
    const bool ok = r.status >= 200 && r.status < 400;
    metrics_->probes->Add({{"result", ok ? "ok" : "fail"}}).Increment();
    metrics_->probe_seconds->Observe(absl::ToDoubleSeconds(r.latency));
    std::optional<hosting::v1::TaskReport> changed;
    {
      absl::MutexLock lock(&mu_);
      auto it = tasks_.find(id);
      if (it == tasks_.end()) continue;
      Task& t = it->second;
      t.probing = false;
      t.next_probe = std::max(t.next_probe + interval, absl::Now());
      const uint32_t healthy_after = std::max<uint32_t>(1, config.healthy_threshold());
      const uint32_t unhealthy_after = std::max<uint32_t>(1, config.unhealthy_threshold());
      TaskHealth next = t.report.probe_health();
      if (ok) {
        t.failures = 0;
        if (++t.successes >= static_cast<int>(healthy_after)) next = hosting::v1::TASK_HEALTH_HEALTHY;
        t.report.clear_last_probe_error();
      } else {
        t.successes = 0;
        t.report.set_last_probe_error(r.status != 0 ? absl::StrCat("HTTP ", r.status) : r.error);
        if (++t.failures >= static_cast<int>(unhealthy_after)) next = hosting::v1::TASK_HEALTH_UNHEALTHY;
      }
      if (next != t.report.probe_health()) {
        t.report.set_probe_health(next);
        *t.report.mutable_changed_at() = Now();
        changed = t.report;
      }
    }
    // Transitions go out at once, not on the next report tick.
    if (changed) ReportTask(*changed);
  }
}

void Agent::ReportLoop() {
  absl::Time next_snapshot = absl::Now() + options_.resync_interval;
  while (!stop_.WaitForNotificationWithTimeout(options_.report_interval)) {
    struct Target {
      std::string container_id, task_id, service;
      int64_t revision;
      int pid;
      uint32_t port;  // 0: do not scrape this time
    };
    std::vector<Target> targets;
    {
      absl::MutexLock lock(&mu_);
      for (const auto& [cid, t] : tasks_) {
        if (t.report.service().empty() || t.pid == 0) continue;
        const hosting::v1::ProbeConfig* c = ConfigFor(t.report.service());
        const bool scrape = c != nullptr && t.next_scrape <= absl::Now();
        targets.push_back({cid, t.report.task_id(), t.report.service(), t.report.revision(), t.pid,
                           scrape ? c->port() : 0});
      }
    }
    hosting::v1::AgentMessage msg;
    auto* report = msg.mutable_metrics();
    for (const Target& target : targets) {
      auto* m = report->add_tasks();
      m->set_task_id(target.task_id);
      m->set_service(target.service);
      m->set_revision(target.revision);
      *m->mutable_scraped_at() = Now();
      if (absl::StatusOr<CgroupStats> cg = ReadCgroupStats(target.pid, options_.cgroup_root); cg.ok()) {
        m->set_cpu_usage_ns(cg->cpu_usage_ns);
        m->set_memory_bytes(cg->memory_bytes);
        m->set_memory_limit_bytes(cg->memory_limit_bytes);
      }
      m->set_app_metrics_missing(true);
      if (target.port == 0) continue;
      HttpResult r = HttpGetInNetns(target.pid, static_cast<uint16_t>(target.port), "/metrics",
                                    absl::Seconds(1));
      absl::StatusOr<std::vector<Sample>> samples =
          r.status == 200 ? ParsePrometheusText(r.body)
                          : absl::StatusOr<std::vector<Sample>>(absl::UnavailableError(r.error));
      if (!samples.ok()) {
        // No /metrics (or not Prometheus text) from a task that is up: look again later, not
        // every report. One still starting is asked again at the next report, so a canary's
        // first requests are counted from its start.
        metrics_->scrape_failures->Increment();
        absl::MutexLock lock(&mu_);
        if (auto it = tasks_.find(target.container_id);
            it != tasks_.end() &&
            it->second.report.probe_health() == hosting::v1::TASK_HEALTH_HEALTHY) {
          it->second.next_scrape = absl::Now() + absl::Seconds(10);
        }
        continue;
      }
      // A counter with labels appears only with its first request: a task that has served
      // nothing yet (a canary before its weight) has served zero, which is data.
      AppMetrics app = ExtractAppMetrics(*samples);
      m->set_app_metrics_missing(false);
      m->set_requests_total(app.requests_total);
      m->set_errors_total(app.errors_total);
      m->set_in_flight(app.in_flight);
      for (size_t i = 0; i < app.bucket_bounds.size(); ++i) {
        m->add_latency_bucket_bounds(app.bucket_bounds[i]);
        m->add_latency_bucket_counts(app.bucket_counts[i]);
      }
    }
    if (report->tasks_size() > 0) Send(msg);
    if (absl::Now() >= next_snapshot) {
      SendSnapshot();
      next_snapshot = absl::Now() + options_.resync_interval;
    }
  }
}

void Agent::SendSnapshot() {
  hosting::v1::AgentMessage msg;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [cid, t] : tasks_) *msg.mutable_snapshot()->add_tasks() = t.report;
  }
  Send(msg);
}

void Agent::Send(const hosting::v1::AgentMessage& msg) {
  absl::MutexLock lock(&stream_mu_);
  if (stream_ == nullptr) return;  // not connected: the state is sent again on (re)connect
  if (!stream_->Write(msg)) {
    // The reader sees the break and reconnects.
  }
}

void Agent::HeartbeatLoop() {
  while (!stop_.WaitForNotificationWithTimeout(absl::Milliseconds(heartbeat_ms_.load()))) {
    hosting::v1::AgentMessage msg;
    *msg.mutable_heartbeat()->mutable_time() = Now();
    Send(msg);
  }
}

void Agent::StreamLoop() {
  Backoff backoff(absl::Milliseconds(100), options_.max_backoff);
  // The channel reconnects with gRPC's exponential backoff and jitter, shortened from its
  // defaults (1 s growing to 2 min) so a restarted hostd is found within a second; the stream
  // waits for the channel (wait_for_ready) instead of failing fast while hostd is away.
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  // Notice a vanished hostd (no FIN: host down, network cut) within seconds.
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 10000);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 5000);
  args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  auto channel = grpc::CreateCustomChannel(options_.controller, grpc::InsecureChannelCredentials(), args);
  auto stub = hosting::v1::AgentGateway::NewStub(channel);
  while (!stop_.HasBeenNotified()) {
    metrics_->reconnects->Increment();
    grpc::ClientContext ctx;
    ctx.set_wait_for_ready(true);
    {
      absl::MutexLock lock(&stream_mu_);
      if (stop_.HasBeenNotified()) break;
      stream_ctx_ = &ctx;  // so Stop() can cancel a stream still waiting for hostd
    }
    std::unique_ptr<grpc::ClientReaderWriter<hosting::v1::AgentMessage, hosting::v1::ControllerMessage>>
        stream = stub->Connect(&ctx);
    hosting::v1::AgentMessage reg;
    auto* r = reg.mutable_register_();
    r->set_node_id(node_id_);
    r->set_hostname(hostname_);
    r->set_cpus(cpus_);
    r->set_memory_bytes(memory_);
    r->set_agent_version(kVersion);
    for (const auto& [k, v] : labels_) (*r->mutable_labels())[k] = v;
    bool ok = stream->Write(reg);
    hosting::v1::ControllerMessage in;
    if (ok) ok = stream->Read(&in);  // Registered
    if (ok) {
      if (in.has_registered() && in.registered().has_heartbeat_interval()) {
        heartbeat_ms_ = std::max<int64_t>(100, TimeUtil::DurationToMilliseconds(in.registered().heartbeat_interval()));
      }
      {
        absl::MutexLock lock(&stream_mu_);
        stream_ = stream.get();
      }
      connected_ = true;
      metrics_->connected->Set(1);
      backoff.Reset();
      LogInfo("connected to hostd", {{"controller", options_.controller}, {"node", node_id_}});
      SendSnapshot();
      while (stream->Read(&in)) {
        if (in.has_probes()) {
          ApplyProbeConfigs(in.probes());
          SendSnapshot();
        } else if (in.has_command()) {
          // Commands may take long (pulls): never on the reading thread.
          absl::MutexLock lock(&mu_);
          commands_.push_back(in.command());
        }
      }
      {
        absl::MutexLock lock(&stream_mu_);
        stream_ = nullptr;
      }
      connected_ = false;
      metrics_->connected->Set(0);
    }
    grpc::Status st = stream->Finish();
    {
      absl::MutexLock lock(&stream_mu_);
      stream_ctx_ = nullptr;
    }
    if (stop_.HasBeenNotified()) break;
    absl::Duration wait = backoff.Next();
    LogWarning("stream to hostd broken; reconnecting",
               {{"error", st.error_message()}, {"retry_in", absl::FormatDuration(wait)}});
    stop_.WaitForNotificationWithTimeout(wait);
  }
}

}  // namespace hosting::agent
