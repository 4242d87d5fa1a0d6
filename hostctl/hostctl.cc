#include "hostctl/hostctl.h"

#include <cstdlib>
#include <memory>

#include "CLI/CLI.hpp"
#include "hostctl/auth_commands.h"
#include "hostctl/autoscale_commands.h"
#include "hostctl/client.h"
#include "hostctl/cluster_commands.h"
#include "hostctl/output.h"
#include "hostctl/release_commands.h"
#include "hostctl/runbook_commands.h"
#include "hostctl/service_commands.h"

namespace hosting::hostctl {
namespace {

// Thrown from the parse-complete callback when a token or TLS file was given but cannot be used:
// no command runs.
struct UnusableCredentials {};

}  // namespace

// Global flags, then one command group per file; this only dispatches.
int Run(int argc, char** argv, std::ostream& out, std::ostream& err) {
  CLI::App app{"hostctl: the command-line client of hostd (gRPC API hosting.v1)", "hostctl"};
  app.require_subcommand(1);
  Globals g;
  const char* env_server = std::getenv("HOSTING_SERVER");
  g.server = env_server != nullptr && *env_server != '\0' ? env_server : kDefaultServer;
  app.add_option("--server,-s", g.server,
                 "hostd address host:port (env HOSTING_SERVER; default 127.0.0.1:50051)");
  app.add_option("--output,-o", g.output, "Output format: table, json or yaml")
      ->check(CLI::IsMember({"table", "json", "yaml"}));
  app.add_option("--timeout", g.timeout_seconds, "Per-call deadline in seconds")
      ->check(CLI::PositiveNumber);
  app.add_option("--token", g.token_flag,
                 "API token (env HOSTCTL_TOKEN; prefer --token-file: a flag shows in ps)");
  app.add_option("--token-file", g.token_file_flag,
                 "File holding the API token (env HOSTCTL_TOKEN_FILE; default "
                 "~/.config/hosting/token, mode 0600, then for the default --server "
                 "/var/lib/hosting/admin.token)");
  auto env_or_empty = [](const char* name) {
    const char* v = std::getenv(name);
    return v != nullptr ? std::string(v) : std::string();
  };
  g.tls = {env_or_empty("HOSTCTL_TLS_CA"), env_or_empty("HOSTCTL_TLS_CERT"),
           env_or_empty("HOSTCTL_TLS_KEY")};
  app.add_option("--tls-ca", g.tls.ca,
                 "PEM CA that signed hostd's certificate: talk TLS (env HOSTCTL_TLS_CA)");
  app.add_option("--tls-cert", g.tls.cert,
                 "PEM client certificate when hostd asks for one (env HOSTCTL_TLS_CERT)");
  app.add_option("--tls-key", g.tls.key, "PEM key of --tls-cert (env HOSTCTL_TLS_KEY)");

  int code = kExitOk;
  std::unique_ptr<Client> client_holder;
  auto client = [&]() -> Client& {
    if (!client_holder) client_holder = std::make_unique<Client>(g);
    return *client_holder;
  };

  AddServiceCommands(app, g, client, code, out, err);
  AddClusterCommands(app, g, client, code, out, err);
  AddReleaseCommands(app, g, client, code, out, err);
  AddAutoscaleCommands(app, g, client, code, out, err);
  AddAuthCommands(app, g, client, code, out, err);
  AddRunbookCommands(app, g, client, code, out, err);

  app.parse_complete_callback([&] {
    absl::StatusOr<Format> f = ParseFormat(g.output);
    if (f.ok()) g.format = *f;
    absl::StatusOr<std::string> token = ResolveToken(g);
    if (!token.ok()) {
      // Before any command runs: a token file given but unusable is a usage error.
      err << "error: token: " << token.status().message() << "\n";
      throw UnusableCredentials();
    }
    g.token = *token;
    absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> credentials =
        ChannelCredentialsFor(g.tls);
    if (!credentials.ok()) {
      err << "error: tls: " << credentials.status().message() << "\n";
      throw UnusableCredentials();
    }
    g.credentials = *std::move(credentials);
  });
  try {
    app.parse(argc, argv);
  } catch (const UnusableCredentials&) {
    return kExitUsage;
  } catch (const CLI::CallForHelp& e) {
    out << app.help();
    return kExitOk;
  } catch (const CLI::CallForAllHelp& e) {
    out << app.help("", CLI::AppFormatMode::All);
    return kExitOk;
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) {
      app.exit(e, out, err);
      return kExitOk;
    }
    app.exit(e, out, err);
    return kExitUsage;
  }
  return code;
}

}  // namespace hosting::hostctl
