#include "agent/agent.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/proto_time.h"
#include "prometheus/exposer.h"
#include "prometheus/registry.h"

namespace hosting::agent {

Agent::Agent(AgentOptions options, docker::DockerClient& docker, NodeAccess& node, Clock& clock)
    : options_(std::move(options)), docker_(docker), node_(node), clock_(clock),
      registry_(std::make_shared<prometheus::Registry>()), metrics_(*registry_), table_(clock) {}

Agent::~Agent() { Stop(); }

absl::Status Agent::Init() {
  absl::StatusOr<docker::EngineInfo> info = docker_.Info();
  if (!info.ok()) return info.status();
  identity_.node_id = options_.node_id.empty() ? info->node_id : options_.node_id;
  if (identity_.node_id.empty()) {
    return absl::FailedPreconditionError(
        "this Docker engine is not part of a Swarm and no --node-id was given");
  }
  identity_.hostname = info->name;
  identity_.cpus = info->ncpu;
  identity_.memory_bytes = info->mem_total;
  identity_.labels = info->labels;
  if (!options_.metrics_listen.empty()) {
    try {
      exposer_ = std::make_unique<prometheus::Exposer>(options_.metrics_listen);
    } catch (const std::exception& e) {
      return absl::UnavailableError(
          absl::StrCat("--metrics-listen ", options_.metrics_listen, ": ", e.what()));
    }
    exposer_->RegisterCollectable(registry_);
    exposer_->RegisterCollectable(metrics_.task_resources);
  }
  ControllerStream::Handlers handlers;
  handlers.on_connected = [this] { stream_->Send(table_.Snapshot()); };
  handlers.on_probes = [this](const hosting::v1::ProbeConfigs& probes) {
    table_.SetProbeConfigs(probes);
    stream_->Send(table_.Snapshot());
  };
  handlers.on_command = [this](const hosting::v1::Command& c) { commands_->Enqueue(c); };
  handlers.on_report_settings = [this](const hosting::v1::ReportSettings& s) {
    reporter_->RequestInterval(FromDuration(s.interval()), clock_.Now() + FromDuration(s.valid_for()));
  };
  std::vector<std::string> controllers =
      absl::StrSplit(options_.controller, ',', absl::SkipWhitespace());
  if (controllers.empty()) {
    return absl::InvalidArgumentError("--controller: no hostd address given");
  }
  absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> credentials =
      ChannelCredentialsFor(options_.tls);
  if (!credentials.ok()) return credentials.status();
  stream_ = std::make_unique<ControllerStream>(std::move(controllers), identity_,
                                               options_.max_backoff, metrics_, clock_,
                                               std::move(handlers), absl::Seconds(2),
                                               options_.token, *std::move(credentials));
  watcher_ = std::make_unique<TaskWatcher>(docker_, node_, table_, *stream_, metrics_, clock_,
                                           options_.resync_interval, options_.max_backoff);
  prober_ = std::make_unique<Prober>(table_, node_, *stream_, metrics_, clock_);
  reporter_ = std::make_unique<Reporter>(table_, node_, *stream_, metrics_, clock_,
                                         options_.report_interval, options_.resync_interval);
  commands_ = std::make_unique<CommandRunner>(docker_, table_, *stream_);
  return watcher_->Refresh();
}

void Agent::Start() {
  threads_.emplace_back([this] { watcher_->Run(stop_); });
  threads_.emplace_back([this] { reporter_->Run(stop_); });
  threads_.emplace_back([this] { stream_->Run(stop_); });
  threads_.emplace_back([this] { stream_->RunHeartbeats(stop_); });
  threads_.emplace_back([this] { prober_->RunScheduler(stop_); });
  threads_.emplace_back([this] { commands_->Run(stop_); });
  for (int i = 0; i < options_.probe_threads; ++i) {
    threads_.emplace_back([this] { prober_->RunWorker(stop_); });
  }
}

void Agent::Stop() {
  if (stop_.HasBeenNotified()) return;
  stop_.Notify();
  if (stream_ != nullptr) stream_->Cancel();
  for (auto& t : threads_) t.join();
  threads_.clear();
}

}  // namespace hosting::agent
