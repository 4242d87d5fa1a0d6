#include "controlplane/hostd.h"

#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/bearer_token.h"
#include "common/clock.h"
#include "common/curl_docker_client.h"
#include "common/log.h"
#include "common/status_macros.h"
#include "controlplane/agents/agent_metrics.h"
#include "controlplane/api/unary.h"
#include "controlplane/store/postgres_store.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/health_check_service_interface.h"
#include "grpc/grpc_security.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server_builder.h"
#include "prometheus/exposer.h"

namespace hosting::controlplane {
namespace {

// Swarm's running tasks by ID from the reconciler's cached view (relisted every second and on
// every Docker event), made once per view: what bounds the agents' reports.
class SwarmTasksOfView {
 public:
  explicit SwarmTasksOfView(Reconciler& reconciler) : reconciler_(reconciler) {}

  std::shared_ptr<const SwarmTaskListing> Current() {
    absl::StatusOr<std::shared_ptr<const SwarmView>> view = reconciler_.View();
    if (!view.ok()) return nullptr;
    absl::MutexLock lock(&mu_);
    if (*view != view_) {
      auto listing = std::make_shared<SwarmTaskListing>();
      listing->listed_at = (*view)->listed_at;
      for (const docker::TaskInfo& t : (*view)->tasks) listing->node_of_task[t.id] = t.node_id;
      view_ = *view;
      listing_ = std::move(listing);
    }
    return listing_;
  }

 private:
  Reconciler& reconciler_;
  absl::Mutex mu_;
  std::shared_ptr<const SwarmView> view_ ABSL_GUARDED_BY(mu_);
  std::shared_ptr<const SwarmTaskListing> listing_ ABSL_GUARDED_BY(mu_);
};

// The port of a "host:port" listen address; 0 when it is 0 or unreadable (":0" binds any).
int ListenPort(const std::string& listen) {
  int port = 0;
  if (!absl::SimpleAtoi(listen.substr(listen.rfind(':') + 1), &port)) return 0;
  return port;
}

bool IsLoopback(const std::string& listen) {
  return absl::StartsWith(listen, "127.") || absl::StartsWith(listen, "localhost:") ||
         absl::StartsWith(listen, "[::1]:") || absl::StartsWith(listen, "unix:");
}

absl::StatusOr<std::string> ReadFile(const std::string& path, const char* flag) {
  std::ifstream in(path);
  if (!in) return absl::InvalidArgumentError(absl::StrCat(flag, ": cannot read ", path));
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

Hostd::Hostd(HostdOptions options) : options_(std::move(options)) {}

void Hostd::Elect(int port) {
  LeaderOptions leader = options_.leader;
  if (leader.address.empty()) {
    leader.address =
        absl::StrCat(options_.listen.substr(0, options_.listen.rfind(':')), ":", port);
  }
  elector_ = std::make_unique<LeaderElector>(*store_, *events_, *metrics_, Clock::Real(), leader);
  // A new leader catches up on everything: the standby it was synced nothing.
  elector_->OnElected([this] { reconciler_->EnqueueAll(); });
  // The lease is the one read every hostd makes, leader or not: the store's reachability.
  elector_->OnStoreAnswer([this](const absl::Status& st) { reconciler_->ObserveStore(st); });
  // Agents report to the leader: a hostd that stops leading sends them on.
  elector_->OnSteppedDown([this] {
    int closed = hub_->CloseAll(elector_->CheckLeader());
    if (closed > 0) LogInfo("agents sent on to the leader", {{"agents", std::to_string(closed)}});
  });
  elector_published_.store(elector_.get(), std::memory_order_release);
  elector_->Step();
}

Hostd::~Hostd() { Shutdown(); }

absl::Status Hostd::Init() {
  metrics_ = std::make_unique<HostdMetrics>();
  ASSIGN_OR_RETURN(store_, OpenStore(options_.store_url));
  ASSIGN_OR_RETURN(auto docker, docker::CurlDockerClient::Create(options_.docker_host));
  docker_ = std::move(docker);
  events_ = std::make_unique<EventLog>(*store_, Clock::Real());
  events_->Subscribe([metrics = metrics_.get()](const hosting::v1::Event& e) {
    auto state = e.attributes().find("state");
    metrics->CountEvent(e.type(), state == e.attributes().end() ? "" : state->second);
  });
  // Nothing this hostd writes to desired state commits before it is elected (Start).
  store_->SetFence("hostd-starting", -1);
  auto acting = [this] { return IsLeader(); };
  options_.reconciler.acting = acting;
  options_.releases.acting = acting;
  options_.autoscaler.acting = acting;
  ASSIGN_OR_RETURN(options_.reconciler.controller_id, store_->InstanceId());
  reconciler_ = std::make_unique<Reconciler>(*store_, *docker_, *events_, *metrics_,
                                             Clock::Real(), options_.reconciler);
  state_ = std::make_unique<DesiredState>(*store_, *reconciler_, *events_, Clock::Real());
  manager_ = std::make_unique<ServiceManager>(*store_, *state_, *reconciler_, Clock::Real());
  agents_ = std::make_unique<AgentRegistry>(options_.agents, *events_, Clock::Real());
  agents_->SetSwarmTasks(
      [tasks = std::make_shared<SwarmTasksOfView>(*reconciler_)] { return tasks->Current(); });
  hub_ = std::make_unique<AgentHub>(*agents_, *store_, *events_, Clock::Real());
  cluster_ = std::make_unique<ClusterManager>(*docker_, *reconciler_, *manager_, *hub_, *agents_, *events_);
  load_balancer_ = OpenLoadBalancer(options_.haproxy);
  if (load_balancer_ != nullptr) cluster_->SetTrafficGrace(options_.drain_traffic_grace);
  router_ = std::make_unique<TrafficRouter>(load_balancer_.get(), *events_);
  options_.releases.controller_id = options_.reconciler.controller_id;
  releases_ = std::make_unique<ReleaseManager>(*store_, *state_, *agents_, *router_,
                                               *reconciler_, *events_, Clock::Real(),
                                               options_.releases);
  autoscaler_ = std::make_unique<AutoscaleManager>(*store_, *state_, *manager_, *agents_,
                                                   *events_, Clock::Real(), options_.autoscaler);
  autoscaler_->SetLoadBalancer(load_balancer_.get());
  if (!options_.prometheus.empty()) {
    prometheus_ = std::make_unique<PrometheusQuery>(options_.prometheus);
    releases_->SetMetricsQuery(prometheus_.get());
    autoscaler_->SetMetricsQuery(prometheus_.get());
  }
  // Pre-pull through the agents: every connected node, in parallel.
  const ImagePuller puller = [this](const std::string& image,
                                    std::function<void(std::map<std::string, std::string>)> done) {
    cluster_->PullOnNodes(image, agents_->ConnectedNodes(), options_.releases.pull_timeout,
                          /*if_missing=*/true, std::move(done));
  };
  releases_->SetImagePuller(puller);
  // A canary under analysis is judged on samples as they arrive: the agents report faster
  // meanwhile, and each report wakes the release loop.
  releases_->SetReportPace([this](absl::Duration interval, absl::Duration valid_for) {
    hub_->RequestReportInterval(interval, valid_for);
  });
  agents_->SetMetricsListener([this] { releases_->MetricsArrived(); });
  autoscaler_->SetImagePuller(puller);
  // Calls that act on the cluster (node and task commands, agent streams) go to the leader.
  ActGate leader_gate = [this]() -> absl::Status {
    LeaderElector* elector = this->elector();
    if (elector == nullptr) return absl::UnavailableError("hostd is starting");
    return elector->CheckLeader();
  };
  service_handlers_ = std::make_unique<ServiceHandlers>(*manager_);
  service_manager_grpc_ = std::make_unique<ServiceManagerGrpc>(*service_handlers_, *metrics_);
  cluster_handlers_ = std::make_unique<ClusterHandlers>(
      *cluster_, leader_gate,
      [this] {
        hosting::v1::ControlPlane cp;
        cp.set_store(absl::StartsWith(options_.store_url, "sqlite:") ? "sqlite" : "postgres");
        LeaderElector* elector = this->elector();
        if (elector == nullptr) return cp;
        cp.set_address(elector->address());
        cp.set_leader(elector->IsLeader());
        cp.set_leader_address(elector->leader_address());
        cp.set_epoch(elector->epoch());
        return cp;
      });
  cluster_grpc_ =
      std::make_unique<ClusterGrpc>(*cluster_handlers_, *events_, *store_, *metrics_);
  release_handlers_ = std::make_unique<ReleaseHandlers>(*releases_);
  releases_grpc_ =
      std::make_unique<ReleasesGrpc>(*release_handlers_, *events_, *store_, *metrics_);
  autoscaling_handlers_ = std::make_unique<AutoscalingHandlers>(*autoscaler_);
  autoscaling_grpc_ = std::make_unique<AutoscalingGrpc>(*autoscaling_handlers_, *metrics_);
  cluster_operations_ =
      std::make_unique<ClusterOperationsImpl>(*cluster_, *reconciler_, *manager_, *releases_, *docker_);
  RunbookEngineOptions runbook_options;
  runbook_options.acting = acting;
  runbooks_ = std::make_unique<RunbookEngine>(*store_, *events_, Clock::Real(), runbook_options);
  runbooks_->Register(std::make_shared<NodeMaintenanceRunbook>(*cluster_operations_));
  if (!options_.loki.empty()) loki_ = std::make_unique<LokiLogStore>(options_.loki);
  runbooks_->Register(std::make_shared<LogAnalysisRunbook>(*cluster_operations_, loki_.get()));
  backup_tools_ = std::make_unique<ProcessBackupTools>(options_.pg_bin, options_.pg_user);
  if (!options_.backup.wal_source.empty()) {
    wal_archiver_ = std::make_unique<WalArchiver>(options_.backup, *backup_tools_);
  }
  runbooks_->Register(
      std::make_shared<BackupRunbook>(options_.backup, *backup_tools_, Clock::Real()));
  runbooks_->Register(std::make_shared<BackupVerifyRunbook>(options_.backup, *backup_tools_));
  runbooks_->Register(std::make_shared<RestoreRunbook>(options_.backup, *backup_tools_,
                                                       *cluster_operations_, Clock::Real()));
  runbooks_->Register(std::make_shared<MigrateRunbook>(options_.backup, *backup_tools_,
                                                       *cluster_operations_, Clock::Real()));
  platform_operations_ = std::make_unique<PlatformOperationsImpl>(
      *docker_, options_.haproxy, HaproxyMasterAddress(options_.haproxy, options_.haproxy_master));
  runbooks_->Register(
      std::make_shared<PlatformRestartRunbook>(*cluster_operations_, *platform_operations_));
  runbook_handlers_ = std::make_unique<RunbookHandlers>(*runbooks_);
  runbooks_grpc_ =
      std::make_unique<RunbooksGrpc>(*runbook_handlers_, *events_, *store_, *metrics_);
  agent_gateway_grpc_ = std::make_unique<AgentGatewayGrpc>(*hub_, leader_gate);
  tokens_ = std::make_unique<TokenAuthority>(*store_, Clock::Real());
  if (options_.auth) {
    if (!options_.admin_token_file.empty()) {
      ASSIGN_OR_RETURN(std::string secret,
                       ReadTokenFile(options_.admin_token_file, /*private_only=*/true));
      RETURN_IF_ERROR(tokens_->ImportAdmin(secret));
    }
    if (!options_.data_dir.empty()) {
      RETURN_IF_ERROR(tokens_->Bootstrap(options_.data_dir, options_.recover_admin_token));
    }
  } else {
    if (!IsLoopback(options_.listen)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--insecure-no-auth is for local development and needs a loopback --listen, not ",
          options_.listen));
    }
    LogWarning("AUTH IS OFF (--insecure-no-auth): every call is served without a token, as "
               "admin; anyone who can reach this port controls hostd and every node",
               {{"listen", options_.listen}});
  }
  auth_gate_ = std::make_unique<AuthGate>(options_.auth ? tokens_.get() : nullptr);
  audit_ = std::make_unique<AuditLog>(*store_, Clock::Real());
  cluster_handlers_->SetAuditLog(audit_.get());
  // Refusals of calls that change something go to the audit trail too.
  auth_gate_->SetDeniedHook([audit = audit_.get()](absl::string_view method,
                                                   const std::string& principal,
                                                   const absl::Status& status) {
    hosting::v1::AuditEntry entry;
    entry.set_principal(principal);
    entry.set_method(std::string(method));
    entry.set_code(GrpcCodeName(static_cast<grpc::StatusCode>(status.code())));
    entry.set_message(std::string(status.message()));
    audit->Record(std::move(entry));
  });
  auth_handlers_ = std::make_unique<AuthHandlers>(*tokens_, options_.auth);
  auth_grpc_ = std::make_unique<AuthGrpc>(*auth_handlers_, *metrics_);
  return absl::OkStatus();
}

absl::Status Hostd::Start() {
  // The listener's credentials are core credentials with the auth gate as their processor,
  // so every call passes it before a handler runs (with TLS or without).
  grpc_server_credentials* core = nullptr;
  if (!options_.tls_cert_file.empty() || !options_.tls_key_file.empty()) {
    ASSIGN_OR_RETURN(std::string cert, ReadFile(options_.tls_cert_file, "--tls-cert"));
    ASSIGN_OR_RETURN(std::string key, ReadFile(options_.tls_key_file, "--tls-key"));
    std::string client_ca;
    if (!options_.tls_client_ca_file.empty()) {
      ASSIGN_OR_RETURN(client_ca, ReadFile(options_.tls_client_ca_file, "--tls-client-ca"));
    }
    grpc_ssl_pem_key_cert_pair pair{key.c_str(), cert.c_str()};
    core = grpc_ssl_server_credentials_create_ex(
        client_ca.empty() ? nullptr : client_ca.c_str(), &pair, 1,
        client_ca.empty() ? GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE
                          : GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY,
        nullptr);
    if (core == nullptr) {
      return absl::InvalidArgumentError("--tls-cert/--tls-key: gRPC refused the key pair");
    }
  } else {
    if (!IsLoopback(options_.listen) && !options_.allow_insecure_remote) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--listen ", options_.listen, " is not a loopback address: give --tls-cert and "
          "--tls-key, or --allow-insecure-remote to accept plaintext from the network"));
    }
    core = grpc_insecure_server_credentials_create();
  }
  std::shared_ptr<grpc::ServerCredentials> creds = auth_gate_->Wrap(core);

  if (!options_.metrics_listen.empty()) {
    try {
      exposer_ = std::make_unique<prometheus::Exposer>(options_.metrics_listen);
    } catch (const std::exception& e) {
      return absl::UnavailableError(
          absl::StrCat("--metrics-listen ", options_.metrics_listen, ": ", e.what()));
    }
    exposer_->RegisterCollectable(metrics_->registry());
    agent_metrics_ = std::make_shared<AgentMetricsCollector>(*agents_);
    exposer_->RegisterCollectable(agent_metrics_);
    autoscale_metrics_ = std::make_shared<AutoscaleMetricsCollector>(*autoscaler_);
    exposer_->RegisterCollectable(autoscale_metrics_);
  }

  // One election round before the API serves: a lone hostd leads from its first answer, so a
  // write sent the moment its port accepts finds a leader (as before there was election).
  if (const int port = ListenPort(options_.listen); port > 0) Elect(port);

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  builder.AddListeningPort(options_.listen, creds, &grpc_port_);
  builder.RegisterService(service_manager_grpc_.get());
  builder.RegisterService(cluster_grpc_.get());
  builder.RegisterService(releases_grpc_.get());
  builder.RegisterService(autoscaling_grpc_.get());
  builder.RegisterService(runbooks_grpc_.get());
  builder.RegisterService(agent_gateway_grpc_.get());
  builder.RegisterService(auth_grpc_.get());
  {
    std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> audit;
    audit.push_back(MakeAuditInterceptorFactory(*audit_));
    builder.experimental().SetInterceptorCreators(std::move(audit));
  }
  server_ = builder.BuildAndStart();
  if (server_ == nullptr || grpc_port_ == 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", options_.listen, " (in use, or not a valid address)"));
  }
  if (!options_.http.listen.empty()) {
    if (!IsLoopback(options_.http.listen) && (!options_.auth || !options_.allow_insecure_remote)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--http-listen ", options_.http.listen,
          " is not a loopback address: the HTTP gateway has no TLS of its own; keep it on "
          "loopback behind a TLS proxy, or give --allow-insecure-remote (never with "
          "--insecure-no-auth)"));
    }
    http_gateway_ = std::make_unique<HttpGateway>(
        Handlers{*service_handlers_, *cluster_handlers_, *release_handlers_,
                 *autoscaling_handlers_, *runbook_handlers_, *auth_handlers_},
        *auth_gate_, *events_, *store_, *metrics_, audit_.get(), options_.http);
    RETURN_IF_ERROR(http_gateway_->Start());
  }
  // A ":0" listen address has its port only now: the election waits for it.
  if (elector_ == nullptr) Elect(grpc_port_);
  elector_->Start();
  hub_->Start();
  reconciler_->Start();
  releases_->Start();
  autoscaler_->Start();
  runbooks_->Start();
  if (wal_archiver_) wal_archiver_->Start();
  sweeper_ = std::thread([this] {
    while (!stop_sweeper_.WaitForNotificationWithTimeout(options_.agents.heartbeat_interval)) {
      agents_->Sweep();
    }
  });
  LogInfo("hostd serving", {{"grpc", options_.listen},
                            {"port", std::to_string(grpc_port_)},
                            {"metrics", options_.metrics_listen},
                            {"http", options_.http.listen.empty() ? "off" : options_.http.listen},
                            {"http_port", std::to_string(http_port())},
                            {"store", PostgresStore::Redacted(options_.store_url)},
                            {"leader", elector_->IsLeader() ? "this hostd" : elector_->leader_address()},
                            {"controller", options_.reconciler.controller_id},
                            {"docker", options_.docker_host},
                            {"haproxy", options_.haproxy.empty() ? "none" : options_.haproxy},
                            {"auth", options_.auth ? "tokens" : "OFF"}});
  return absl::OkStatus();
}

void Hostd::Shutdown() {
  if (shut_down_) return;
  shut_down_ = true;
  // Node commands still waiting end now (UNAVAILABLE), so no call waits for an agent.
  if (hub_) hub_->Stop();
  // HTTP calls and event streams end before what they read goes.
  if (http_gateway_) http_gateway_->Shutdown();
  // Calls whose token is being checked are answered before the server waits for them.
  if (auth_gate_) auth_gate_->Stop();
  if (server_) {
    // Streams (WatchEvents) are cancelled after the deadline; unary calls finish.
    server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  }
  // What the last calls did reaches the store before hostd goes.
  if (audit_) audit_->Stop();
  if (autoscaler_) autoscaler_->Stop();
  // Running steps are abandoned (a new leader resumes or fails them, by their record).
  if (runbooks_) runbooks_->Stop();
  if (wal_archiver_) wal_archiver_->Stop();
  if (releases_) releases_->Stop();
  if (reconciler_) reconciler_->Stop();
  // Last: the loops that act have stopped, so the lease can go to a standby at once.
  if (elector_) elector_->Stop();
  if (sweeper_.joinable()) {
    stop_sweeper_.Notify();
    sweeper_.join();
  }
  LogInfo("hostd stopped");
}

}  // namespace hosting::controlplane
