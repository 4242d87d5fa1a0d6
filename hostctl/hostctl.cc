#include "hostctl/hostctl.h"

#include <cstdlib>
#include <iostream>
#include <thread>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "grpcpp/grpcpp.h"
#include "hostctl/client.h"
#include "hostctl/output.h"
#include "hostctl/autoscale_commands.h"
#include "hostctl/release_commands.h"
#include "hostctl/spec_file.h"
#include "hosting/v1/cluster.grpc.pb.h"
#include "hosting/v1/service.grpc.pb.h"

namespace hosting::hostctl {
namespace {

// Polls until the service runs its desired replicas with no older revision left, or until
// `wait` runs out. Prints a progress line whenever the status message changes.
int WaitReady(Client& client, const std::string& name, absl::Duration wait, std::ostream& out,
              std::ostream& err) {
  absl::Time deadline = absl::Now() + wait;
  std::string last_message;
  while (true) {
    hosting::v1::GetServiceRequest req;
    req.set_name(name);
    hosting::v1::Service s;
    auto ctx = client.Context();
    grpc::Status st = client.services().GetService(ctx.get(), req, &s);
    if (st.ok()) {
      const auto& status = s.status();
      if (status.message() != last_message) {
        out << "  " << name << ": " << status.message() << "\n" << std::flush;
        last_message = status.message();
      }
      if (status.phase() == hosting::v1::SERVICE_PHASE_READY) return kExitOk;
    } else if (st.error_code() != grpc::StatusCode::UNAVAILABLE) {
      return Fail(st, absl::StrCat("waiting for ", name), err);
    }
    if (absl::Now() >= deadline) {
      err << "error: " << name << " not ready after " << absl::FormatDuration(wait)
          << (last_message.empty() ? "" : absl::StrCat(": ", last_message)) << "\n";
      return kExitTimeout;
    }
    absl::SleepFor(absl::Milliseconds(500));
  }
}

}  // namespace

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

  int code = kExitOk;
  std::unique_ptr<Client> client_holder;
  auto client = [&]() -> Client& {
    if (!client_holder) client_holder = std::make_unique<Client>(g);
    return *client_holder;
  };

  // --- service ---
  CLI::App* service = app.add_subcommand("service", "Manage hosted services");
  service->require_subcommand(1);

  std::string file;
  bool dry_run = false;
  bool wait = false;
  double wait_seconds = 300;
  int64_t expected_generation = 0;
  CLI::App* apply = service->add_subcommand("apply", "Create or update a service from a spec file");
  apply->add_option("-f,--file", file, "ServiceSpec as YAML or JSON ('-' for stdin)")->required();
  apply->add_flag("--dry-run", dry_run, "Validate and show the result without storing it");
  apply->add_flag("--wait", wait, "Wait until the service runs its desired replicas");
  apply->add_option("--wait-timeout", wait_seconds, "Seconds --wait may take (default 300)");
  apply->add_option("--expected-generation", expected_generation,
                    "Apply only if the stored generation is this (optimistic concurrency)");
  apply->callback([&] {
    absl::StatusOr<hosting::v1::ServiceSpec> spec = ReadServiceSpecFile(file);
    if (!spec.ok()) {
      err << "error: " << spec.status().message() << "\n";
      code = kExitUsage;
      return;
    }
    hosting::v1::ApplyServiceRequest req;
    *req.mutable_spec() = *spec;
    req.set_dry_run(dry_run);
    req.set_expected_generation(expected_generation);
    hosting::v1::ApplyServiceResponse resp;
    auto ctx = client().Context();
    grpc::Status st = client().services().ApplyService(ctx.get(), req, &resp);
    if (!st.ok()) {
      code = Fail(st, absl::StrCat("apply ", spec->name()), err);
      return;
    }
    if (g.format != Format::kTable) {
      PrintMessage(resp, g.format, out);
    } else {
      const char* verb = dry_run ? "would be " : "";
      if (!resp.changed()) {
        out << "service/" << spec->name() << " unchanged (revision " << resp.service().revision()
            << ")\n";
      } else {
        out << "service/" << spec->name() << " " << verb << (resp.created() ? "created" : "updated")
            << " (revision " << resp.service().revision()
            << (resp.revision_created() ? ", new" : "") << ", generation "
            << resp.service().generation() << ")\n";
      }
    }
    if (wait && !dry_run) {
      code = WaitReady(client(), spec->name(), absl::Seconds(wait_seconds), out, err);
    }
  });

  std::string name;
  CLI::App* get = service->add_subcommand("get", "Show a service with its observed state");
  get->add_option("name", name, "Service name")->required();
  get->callback([&] {
    hosting::v1::GetServiceRequest req;
    req.set_name(name);
    hosting::v1::Service resp;
    auto ctx = client().Context();
    grpc::Status st = client().services().GetService(ctx.get(), req, &resp);
    if (!st.ok()) {
      code = Fail(st, absl::StrCat("get ", name), err);
      return;
    }
    PrintService(resp, g.format, out);
  });

  CLI::App* list = service->add_subcommand("list", "List services");
  list->alias("ls");
  list->callback([&] {
    hosting::v1::ListServicesResponse resp;
    auto ctx = client().Context();
    grpc::Status st = client().services().ListServices(ctx.get(), {}, &resp);
    if (!st.ok()) {
      code = Fail(st, "list services", err);
      return;
    }
    PrintServices({resp.services().begin(), resp.services().end()}, g.format, out);
  });

  CLI::App* del = service->add_subcommand("delete", "Delete a service and its Swarm services");
  del->alias("rm");
  del->add_option("name", name, "Service name")->required();
  del->callback([&] {
    hosting::v1::DeleteServiceRequest req;
    req.set_name(name);
    hosting::v1::DeleteServiceResponse resp;
    auto ctx = client().Context();
    grpc::Status st = client().services().DeleteService(ctx.get(), req, &resp);
    if (!st.ok()) {
      code = Fail(st, absl::StrCat("delete ", name), err);
      return;
    }
    if (g.format != Format::kTable) {
      PrintMessage(resp, g.format, out);
    } else {
      out << "service/" << name << " deleted\n";
    }
  });

  int32_t replicas = 0;
  bool force = false;
  CLI::App* scale = service->add_subcommand("scale", "Set a service's replica count");
  scale->add_option("name", name, "Service name")->required();
  scale->add_option("replicas", replicas, "Desired replicas")->required();
  scale->add_flag("--force", force, "Scale even under an autoscaling policy");
  scale->add_flag("--wait", wait, "Wait until the replicas run");
  scale->add_option("--wait-timeout", wait_seconds, "Seconds --wait may take (default 300)");
  scale->callback([&] {
    hosting::v1::ScaleServiceRequest req;
    req.set_name(name);
    req.set_replicas(replicas);
    req.set_force(force);
    hosting::v1::Service resp;
    auto ctx = client().Context();
    grpc::Status st = client().services().ScaleService(ctx.get(), req, &resp);
    if (!st.ok()) {
      code = Fail(st, absl::StrCat("scale ", name), err);
      return;
    }
    if (g.format != Format::kTable) {
      PrintMessage(resp, g.format, out);
    } else {
      out << "service/" << name << " scaled to " << replicas << "\n";
    }
    if (wait) code = WaitReady(client(), name, absl::Seconds(wait_seconds), out, err);
  });

  CLI::App* status = service->add_subcommand(
      "status", "Per-revision health and metrics from the agents (healthy tasks, RPS, errors, latency)");
  status->add_option("name", name, "Service name")->required();
  status->callback([&] {
    hosting::v1::GetServiceStatusRequest req;
    req.set_name(name);
    hosting::v1::ServiceHealthStatus resp;
    auto ctx = client().Context();
    grpc::Status st = client().cluster().GetServiceStatus(ctx.get(), req, &resp);
    if (!st.ok()) {
      code = Fail(st, absl::StrCat("status ", name), err);
      return;
    }
    PrintServiceHealth(resp, g.format, out);
  });

  // --- events ---
  bool follow = false;
  std::string event_service;
  std::vector<std::string> event_types;
  int64_t since = 0;
  CLI::App* events = app.add_subcommand("events", "Show the event log; --follow streams it");
  events->add_flag("-f,--follow", follow, "Keep streaming new events");
  events->add_option("--service", event_service, "Only this service's events");
  events->add_option("--type", event_types, "Only these types (a prefix ending in '.' matches many)");
  events->add_option("--since", since, "Only events after this sequence number");
  events->callback([&] {
    hosting::v1::WatchEventsRequest req;
    req.set_service(event_service);
    for (const auto& t : event_types) req.add_types(t);
    if (since > 0) {
      req.set_since_sequence(since);
    } else {
      req.set_from_start(!follow);
    }
    req.set_no_follow(!follow);
    grpc::ClientContext ctx;  // no deadline: a follow runs until interrupted
    hosting::v1::Event e;
    auto reader = client().cluster().WatchEvents(&ctx, req);
    while (reader->Read(&e)) PrintEvent(e, g.format, out);
    grpc::Status st = reader->Finish();
    if (!st.ok()) code = Fail(st, "events", err);
  });

  // --- tasks and images (carried out by the agent on the task's node) ---
  std::string task_id;
  int32_t lines = 100;
  CLI::App* logs = app.add_subcommand("logs", "The last lines of a task's output");
  logs->add_option("task", task_id, "Swarm task ID (or a unique prefix)")->required();
  logs->add_option("-n,--lines", lines, "Lines from the end (default 100)");
  logs->callback([&] {
    hosting::v1::GetTaskLogsRequest req;
    req.set_task_id(task_id);
    req.set_lines(lines);
    hosting::v1::GetTaskLogsResponse resp;
    auto ctx = client().Context();
    grpc::Status st = client().cluster().GetTaskLogs(ctx.get(), req, &resp);
    if (!st.ok()) {
      code = Fail(st, absl::StrCat("logs ", task_id), err);
      return;
    }
    if (g.format != Format::kTable) {
      PrintMessage(resp, g.format, out);
    } else {
      out << resp.logs();
    }
  });
  CLI::App* task = app.add_subcommand("task", "Act on one task");
  task->require_subcommand(1);
  CLI::App* restart = task->add_subcommand("restart", "Restart a task's container in place");
  restart->add_option("task", task_id, "Swarm task ID (or a unique prefix)")->required();
  restart->callback([&] {
    hosting::v1::RestartTaskRequest req;
    req.set_task_id(task_id);
    hosting::v1::RestartTaskResponse resp;
    auto ctx = client().Context();
    grpc::Status st = client().cluster().RestartTask(ctx.get(), req, &resp);
    if (!st.ok()) {
      code = Fail(st, absl::StrCat("restart ", task_id), err);
      return;
    }
    out << "task/" << resp.task_id() << " restarted on " << resp.node_id() << "\n";
  });
  std::string image;
  std::vector<std::string> pull_nodes;
  CLI::App* image_cmd = app.add_subcommand("image", "Images on the nodes");
  image_cmd->require_subcommand(1);
  CLI::App* pull = image_cmd->add_subcommand("pull", "Pull an image on nodes ahead of a release");
  pull->add_option("image", image, "Image reference")->required();
  pull->add_option("--node", pull_nodes, "Node IDs (default: every node with an agent)");
  pull->callback([&] {
    hosting::v1::PullImageRequest req;
    req.set_image(image);
    for (const auto& n : pull_nodes) req.add_nodes(n);
    hosting::v1::PullImageResponse resp;
    grpc::ClientContext ctx;  // pulls take as long as they take
    grpc::Status st = client().cluster().PullImage(&ctx, req, &resp);
    if (!st.ok()) {
      code = Fail(st, absl::StrCat("pull ", image), err);
      return;
    }
    if (g.format != Format::kTable) {
      PrintMessage(resp, g.format, out);
    }
    for (const auto& r : resp.results()) {
      if (g.format == Format::kTable) {
        out << r.node_id() << "  " << (r.ok() ? "pulled" : "failed: " + r.error()) << "\n";
      }
      if (!r.ok()) code = kExitConflict;
    }
  });

  // --- nodes ---
  CLI::App* nodes = app.add_subcommand("nodes", "List Swarm nodes");
  nodes->callback([&] {
    hosting::v1::ListNodesResponse resp;
    auto ctx = client().Context();
    grpc::Status st = client().cluster().ListNodes(ctx.get(), {}, &resp);
    if (!st.ok()) {
      code = Fail(st, "list nodes", err);
      return;
    }
    PrintNodes({resp.nodes().begin(), resp.nodes().end()}, g.format, out);
  });
  std::string node;
  CLI::App* node_cmd = app.add_subcommand("node", "Drain or activate a Swarm node");
  node_cmd->require_subcommand(1);
  for (const char* action : {"drain", "activate"}) {
    CLI::App* sub = node_cmd->add_subcommand(
        action, std::string(action) == "drain" ? "Move the node's tasks elsewhere (availability drain)"
                                               : "Let Swarm schedule tasks on the node again");
    sub->add_option("node", node, "Node ID or hostname")->required();
    sub->callback([&, drain = std::string(action) == "drain"] {
      hosting::v1::Node resp;
      auto ctx = client().Context();
      grpc::Status st;
      if (drain) {
        hosting::v1::DrainNodeRequest req;
        req.set_node(node);
        st = client().cluster().DrainNode(ctx.get(), req, &resp);
      } else {
        hosting::v1::ActivateNodeRequest req;
        req.set_node(node);
        st = client().cluster().ActivateNode(ctx.get(), req, &resp);
      }
      if (!st.ok()) {
        code = Fail(st, absl::StrCat("node ", node), err);
        return;
      }
      PrintNodes({resp}, g.format, out);
    });
  }

  AddReleaseCommands(app, g, client, code, out, err);
  AddAutoscaleCommands(app, g, client, code, out, err);

  app.parse_complete_callback([&] {
    absl::StatusOr<Format> f = ParseFormat(g.output);
    if (f.ok()) g.format = *f;
  });
  try {
    app.parse(argc, argv);
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
