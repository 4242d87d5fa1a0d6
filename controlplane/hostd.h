#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <thread>

#include "absl/synchronization/notification.h"

#include "absl/status/status.h"
#include "common/docker_client.h"
#include "controlplane/agents/agent_hub.h"
#include "controlplane/agents/agent_registry.h"
#include "controlplane/api/agent_gateway_service.h"
#include "controlplane/api/audit.h"
#include "controlplane/api/auth_service.h"
#include "controlplane/api/autoscaling_service.h"
#include "controlplane/api/cluster_service.h"
#include "controlplane/api/handlers.h"
#include "controlplane/api/http_gateway.h"
#include "controlplane/api/releases_service.h"
#include "controlplane/api/runbooks_service.h"
#include "controlplane/runbook/cluster_operations.h"
#include "controlplane/runbook/backup_runbooks.h"
#include "controlplane/runbook/wal_archiver.h"
#include "controlplane/runbook/cluster_runbooks.h"
#include "controlplane/runbook/engine.h"
#include "controlplane/runbook/migrate_runbook.h"
#include "controlplane/runbook/platform_operations.h"
#include "controlplane/runbook/platform_restart_runbook.h"
#include "controlplane/runbook/restore_runbook.h"
#include "controlplane/api/service_manager_service.h"
#include "controlplane/auth/auth_gate.h"
#include "controlplane/auth/token_authority.h"
#include "controlplane/autoscale/autoscale_manager.h"
#include "controlplane/cluster/cluster_manager.h"
#include "controlplane/leader/leader_elector.h"
#include "controlplane/query/promql.h"
#include "controlplane/reconcile/reconciler.h"
#include "controlplane/release/release_manager.h"
#include "controlplane/service/desired_state.h"
#include "controlplane/service/service_manager.h"
#include "controlplane/store/event_log.h"
#include "controlplane/store/store.h"
#include "controlplane/telemetry/metrics.h"
#include "controlplane/traffic/load_balancer.h"
#include "controlplane/traffic/traffic_router.h"
#include "grpcpp/server.h"

namespace prometheus {
class Collectable;
class Exposer;
}

namespace hosting::controlplane {

struct HostdOptions {
  // gRPC address. Anything but a loopback address needs TLS or allow_insecure_remote.
  std::string listen = "127.0.0.1:50051";
  std::string store_url = "sqlite:///var/lib/hosting/hostd.db";
  std::string docker_host = "unix:///var/run/docker.sock";
  // Prometheus /metrics address; empty disables it.
  std::string metrics_listen = "127.0.0.1:9464";
  // The HTTP/JSON gateway and console (http.listen empty: off). Without TLS of its own, a
  // non-loopback address needs allow_insecure_remote.
  HttpGatewayOptions http;
  std::string tls_cert_file;
  std::string tls_key_file;
  // When set, clients must present a certificate signed by this CA (mTLS).
  std::string tls_client_ca_file;
  bool allow_insecure_remote = false;
  // Bearer tokens on every call (docs/security.md). false: --insecure-no-auth, loopback only.
  bool auth = true;
  // Where the bootstrap tokens are written (admin.token, agent.token); empty: not written.
  std::string data_dir;
  // Write a new admin token at start.
  bool recover_admin_token = false;
  // A file holding an admin secret to add to the store at start (see ImportAdmin).
  std::string admin_token_file;
  // HAProxy runtime API: a unix socket path or host:port; empty: no exact weights.
  std::string haproxy;
  // HAProxy's master CLI (haproxy -W -S ...), which platform-restart reloads it through;
  // empty: "master.sock" beside a unix-socket `haproxy`, else none.
  std::string haproxy_master;
  // With HAProxy: how long a node drain keeps the node's tasks running after taking them out
  // of the balancer, before Swarm moves them.
  absl::Duration drain_traffic_grace = absl::Seconds(3);
  // The backup runbooks' repository and sources (hostd --backup-*), and PostgreSQL's tools.
  BackupConfig backup;
  std::string pg_bin = "/usr/lib/postgresql/15/bin";
  // The OS user restored PostgreSQL servers run as when hostd runs as root.
  std::string pg_user = "postgres";
  // Prometheus base URL for PromQL analysis checks; empty: such checks have no data.
  std::string prometheus;
  // Loki base URL for the log-analysis runbook; empty: logs are read through the agents.
  std::string loki;
  // Leader election among the hostd sharing the store. leader.address empty: the listen
  // address with the port bound.
  LeaderOptions leader;
  ReconcilerOptions reconciler;
  ReleaseManagerOptions releases;
  AutoscaleManagerOptions autoscaler;
  AgentRegistry::Options agents;
};

// The control-plane daemon: owns the store, the Docker client, the reconciler and the gRPC
// server. Lifecycle: Init() (open everything, fail fast on bad options), Start(), Shutdown().
class Hostd {
 public:
  explicit Hostd(HostdOptions options);
  ~Hostd();

  absl::Status Init();
  absl::Status Start();
  // Graceful: stops accepting calls, ends streams, stops the reconciler.
  void Shutdown();

  // The port the gRPC server bound (useful with ":0").
  int grpc_port() const { return grpc_port_; }
  // The HTTP gateway's port (0: off).
  int http_port() const { return http_gateway_ ? http_gateway_->port() : 0; }
  // Whether this hostd leads (acts on Swarm and takes writes).
  bool IsLeader() const {
    LeaderElector* e = elector();
    return e != nullptr && e->IsLeader();
  }

 private:
  // Makes the elector for a listen port and runs its first round.
  void Elect(int port);

  HostdOptions options_;
  std::unique_ptr<HostdMetrics> metrics_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<docker::DockerClient> docker_;
  std::unique_ptr<EventLog> events_;
  // Made in Start before the API serves (after, with a ":0" listen address: its address is
  // what standbys show). The gRPC handlers may run before it exists: they read it through
  // elector(), an atomic published once it is made (null: hostd is starting).
  std::unique_ptr<LeaderElector> elector_;
  std::atomic<LeaderElector*> elector_published_{nullptr};
  LeaderElector* elector() const { return elector_published_.load(std::memory_order_acquire); }
  std::unique_ptr<Reconciler> reconciler_;
  std::unique_ptr<DesiredState> state_;
  std::unique_ptr<ServiceManager> manager_;
  std::unique_ptr<AgentRegistry> agents_;
  std::unique_ptr<AgentHub> hub_;
  std::unique_ptr<ClusterManager> cluster_;
  std::unique_ptr<LoadBalancer> load_balancer_;
  std::unique_ptr<TrafficRouter> router_;
  std::unique_ptr<MetricsQuery> prometheus_;
  std::unique_ptr<ReleaseManager> releases_;
  std::shared_ptr<prometheus::Collectable> agent_metrics_;
  std::shared_ptr<prometheus::Collectable> autoscale_metrics_;
  std::unique_ptr<AutoscaleManager> autoscaler_;
  // The calls' bodies, which the gRPC adapters and the HTTP gateway share.
  std::unique_ptr<ServiceHandlers> service_handlers_;
  std::unique_ptr<ClusterHandlers> cluster_handlers_;
  std::unique_ptr<ReleaseHandlers> release_handlers_;
  std::unique_ptr<AutoscalingHandlers> autoscaling_handlers_;
  std::unique_ptr<RunbookHandlers> runbook_handlers_;
  std::unique_ptr<AuthHandlers> auth_handlers_;
  std::unique_ptr<ServiceManagerGrpc> service_manager_grpc_;
  std::unique_ptr<ClusterGrpc> cluster_grpc_;
  std::unique_ptr<ReleasesGrpc> releases_grpc_;
  std::unique_ptr<AutoscalingGrpc> autoscaling_grpc_;
  std::unique_ptr<ClusterOperationsImpl> cluster_operations_;
  std::unique_ptr<PlatformOperationsImpl> platform_operations_;
  std::unique_ptr<ProcessBackupTools> backup_tools_;
  std::unique_ptr<LokiLogStore> loki_;  // with --loki
  std::unique_ptr<WalArchiver> wal_archiver_;  // with --wal-archive-source
  std::unique_ptr<RunbookEngine> runbooks_;
  std::unique_ptr<RunbooksGrpc> runbooks_grpc_;
  std::unique_ptr<AgentGatewayGrpc> agent_gateway_grpc_;
  std::unique_ptr<TokenAuthority> tokens_;
  // Outlives the server (declared before it): gRPC calls into it until the server is gone.
  std::unique_ptr<AuthGate> auth_gate_;
  std::unique_ptr<AuthGrpc> auth_grpc_;
  std::unique_ptr<AuditLog> audit_;
  std::unique_ptr<prometheus::Exposer> exposer_;
  std::unique_ptr<HttpGateway> http_gateway_;
  std::unique_ptr<grpc::Server> server_;
  int grpc_port_ = 0;
  bool shut_down_ = false;
  absl::Notification stop_sweeper_;
  std::thread sweeper_;
};

}  // namespace hosting::controlplane
