// hostagent: the per-node agent. Parses flags, wires Agent, waits for a signal.
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/usage.h"
#include "agent/agent.h"
#include "common/bearer_token.h"
#include "common/curl_docker_client.h"
#include "common/flags.h"
#include "common/log.h"
#include "common/signals.h"

ABSL_FLAG(std::string, controller, "127.0.0.1:50051",
          "hostd address (host:port), or several, comma-separated, of an HA control plane: the "
          "agent reports to whichever leads.");
ABSL_FLAG(std::string, token_file, "",
          "File holding the join token hostd gave this agent (env HOSTAGENT_TOKEN gives the "
          "token itself; default /var/lib/hosting/agent.token when it exists).");
ABSL_FLAG(std::string, tls_ca, "",
          "PEM CA that signed hostd's certificate: talk TLS to hostd (hostd --tls-cert).");
ABSL_FLAG(std::string, tls_cert, "",
          "PEM client certificate for mTLS (hostd --tls-client-ca), with --tls-key. Subject "
          "OU=hosting-agent, CN=<node ID>: hostd takes it as this node's agent, no token needed.");
ABSL_FLAG(std::string, tls_key, "", "PEM private key of --tls-cert.");
ABSL_FLAG(std::string, docker_host, "unix:///var/run/docker.sock", "Local Docker Engine endpoint.");
ABSL_FLAG(std::string, node_id, "", "Swarm node ID; default: the local engine's Swarm.NodeID.");
ABSL_FLAG(std::string, metrics_listen, "127.0.0.1:9465", "Prometheus /metrics address; empty disables.");
ABSL_FLAG(absl::Duration, report_interval, absl::Seconds(2), "Metrics report interval.");
ABSL_FLAG(absl::Duration, resync_interval, absl::Seconds(10), "Full task list and snapshot interval.");
ABSL_FLAG(int, probe_threads, 4, "Concurrent health probes.");
ABSL_FLAG(std::string, cgroup_root, "/sys/fs/cgroup",
          "Where the host's cgroup hierarchy is mounted (in a container: a bind mount of it).");

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage("hostagent: the hosting node agent");
  hosting::ParseFlags(argc, argv);

  hosting::BlockStopSignals();
  auto docker = hosting::docker::CurlDockerClient::Create(absl::GetFlag(FLAGS_docker_host));
  if (!docker.ok()) {
    hosting::LogError("hostagent: --docker-host", {{"error", docker.status().ToString()}});
    return 1;
  }
  hosting::agent::AgentOptions options;
  options.controller = absl::GetFlag(FLAGS_controller);
  if (const char* env = std::getenv("HOSTAGENT_TOKEN");
      env != nullptr && *env != '\0' && absl::GetFlag(FLAGS_token_file).empty()) {
    if (absl::Status st = hosting::CheckTokenText(env); !st.ok()) {
      hosting::LogError("hostagent: $HOSTAGENT_TOKEN", {{"error", st.ToString()}});
      return 1;
    }
    options.token = env;
  } else if (!absl::GetFlag(FLAGS_tls_cert).empty() && absl::GetFlag(FLAGS_token_file).empty()) {
    // A client certificate is the agent's identity: no default token file is read.
  } else {
    const std::string file = absl::GetFlag(FLAGS_token_file).empty()
                                 ? "/var/lib/hosting/agent.token"
                                 : absl::GetFlag(FLAGS_token_file);
    absl::StatusOr<std::string> token = hosting::ReadTokenFile(file, /*private_only=*/false);
    if (token.ok()) {
      options.token = *token;
    } else if (!absl::GetFlag(FLAGS_token_file).empty() || !absl::IsNotFound(token.status())) {
      hosting::LogError("hostagent: --token-file", {{"error", token.status().ToString()}});
      return 1;
    }
  }
  options.tls = {absl::GetFlag(FLAGS_tls_ca), absl::GetFlag(FLAGS_tls_cert),
                 absl::GetFlag(FLAGS_tls_key)};
  options.node_id = absl::GetFlag(FLAGS_node_id);
  options.metrics_listen = absl::GetFlag(FLAGS_metrics_listen);
  options.report_interval = absl::GetFlag(FLAGS_report_interval);
  options.resync_interval = absl::GetFlag(FLAGS_resync_interval);
  options.probe_threads = absl::GetFlag(FLAGS_probe_threads);
  hosting::agent::HostNodeAccess node(absl::GetFlag(FLAGS_cgroup_root));
  hosting::agent::Agent agent(options, **docker, node);
  if (absl::Status s = agent.Init(); !s.ok()) {
    hosting::LogError("hostagent failed to start", {{"error", s.ToString()}});
    return 1;
  }
  agent.Start();
  hosting::LogInfo("hostagent running", {{"node", agent.node_id()}, {"controller", options.controller}});
  hosting::WaitForStopSignal();
  agent.Stop();
  return 0;
}
