#include "hostctl/cluster_commands.h"

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "grpcpp/grpcpp.h"
#include "hostctl/exit_codes.h"
#include "hostctl/output.h"
#include "hosting/v1/cluster.grpc.pb.h"

namespace hosting::hostctl {

void AddClusterCommands(CLI::App& app, Globals& g, const std::function<Client&()>& client,
                        int& code, std::ostream& out, std::ostream& err) {
  auto c = std::make_shared<CommandEnv>(CommandEnv{g, client, code, out, err});
  struct Options {
    bool follow = false;
    std::string event_service;
    std::vector<std::string> event_types;
    int64_t since = 0;
    std::string task_id;
    int32_t lines = 100;
    std::string image;
    std::vector<std::string> pull_nodes;
    std::string node;
  };
  auto o = std::make_shared<Options>();
  CLI::App* events = app.add_subcommand("events", "Show the event log; --follow streams it");
  events->add_flag("-f,--follow", o->follow, "Keep streaming new events");
  events->add_option("--service", o->event_service, "Only this service's events");
  events->add_option("--type", o->event_types, "Only these types (a prefix ending in '.' matches many)");
  events->add_option("--since", o->since, "Only events after this sequence number");
  events->callback([c, o] {
    hosting::v1::WatchEventsRequest req;
    req.set_service(o->event_service);
    for (const auto& t : o->event_types) req.add_types(t);
    if (o->since > 0) {
      req.set_since_sequence(o->since);
    } else {
      req.set_from_start(!o->follow);
    }
    req.set_no_follow(!o->follow);
    grpc::ClientContext ctx;  // no deadline: a follow runs until interrupted
    hosting::v1::Event e;
    auto reader = c->client().cluster().WatchEvents(&ctx, req);
    while (reader->Read(&e)) PrintEvent(e, c->g.format, c->out);
    grpc::Status st = reader->Finish();
    if (!st.ok()) c->code = Fail(st, "events", c->err);
  });

  // --- tasks and images (carried out by the agent on the task's node) ---
  CLI::App* logs = app.add_subcommand("logs", "The last lines of a task's output");
  logs->add_option("task", o->task_id, "Swarm task ID (or a unique prefix)")->required();
  logs->add_option("-n,--lines", o->lines, "Lines from the end (default 100)");
  logs->callback([c, o] {
    hosting::v1::GetTaskLogsRequest req;
    req.set_task_id(o->task_id);
    req.set_lines(o->lines);
    hosting::v1::GetTaskLogsResponse resp;
    auto ctx = c->client().Context();
    grpc::Status st = c->client().cluster().GetTaskLogs(ctx.get(), req, &resp);
    if (!st.ok()) {
      c->code = Fail(st, absl::StrCat("logs ", o->task_id), c->err);
      return;
    }
    if (c->g.format != Format::kTable) {
      PrintMessage(resp, c->g.format, c->out);
    } else {
      c->out << resp.logs();
    }
  });
  CLI::App* task = app.add_subcommand("task", "Act on one task");
  task->require_subcommand(1);
  CLI::App* restart = task->add_subcommand("restart", "Restart a task's container in place");
  restart->add_option("task", o->task_id, "Swarm task ID (or a unique prefix)")->required();
  restart->callback([c, o] {
    hosting::v1::RestartTaskRequest req;
    req.set_task_id(o->task_id);
    hosting::v1::RestartTaskResponse resp;
    auto ctx = c->client().Context();
    grpc::Status st = c->client().cluster().RestartTask(ctx.get(), req, &resp);
    if (!st.ok()) {
      c->code = Fail(st, absl::StrCat("restart ", o->task_id), c->err);
      return;
    }
    c->out << "task/" << resp.task_id() << " restarted on " << resp.node_id() << "\n";
  });
  CLI::App* image_cmd = app.add_subcommand("image", "Images on the nodes");
  image_cmd->require_subcommand(1);
  CLI::App* pull = image_cmd->add_subcommand("pull", "Pull an image on nodes ahead of a release");
  pull->add_option("image", o->image, "Image reference")->required();
  pull->add_option("--node", o->pull_nodes, "Node IDs (default: every node with an agent)");
  pull->callback([c, o] {
    hosting::v1::PullImageRequest req;
    req.set_image(o->image);
    for (const auto& n : o->pull_nodes) req.add_nodes(n);
    hosting::v1::PullImageResponse resp;
    grpc::ClientContext ctx;  // pulls take as long as they take
    grpc::Status st = c->client().cluster().PullImage(&ctx, req, &resp);
    if (!st.ok()) {
      c->code = Fail(st, absl::StrCat("pull ", o->image), c->err);
      return;
    }
    if (c->g.format != Format::kTable) {
      PrintMessage(resp, c->g.format, c->out);
    }
    for (const auto& r : resp.results()) {
      if (c->g.format == Format::kTable) {
        c->out << r.node_id() << "  " << (r.ok() ? "pulled" : "failed: " + r.error()) << "\n";
      }
      if (!r.ok()) c->code = kExitConflict;
    }
  });

  // --- cluster status: who leads, as each hostd in --server sees it ---
  CLI::App* cluster_cmd = app.add_subcommand("cluster", "The control plane's hostd");
  cluster_cmd->require_subcommand(1);
  CLI::App* cluster_status = cluster_cmd->add_subcommand(
      "status", "Each hostd in --server: leader or standby, the leader it sees, the epoch");
  cluster_status->callback([c] {
    std::vector<std::vector<std::string>> rows = {{"HOSTD", "ROLE", "LEADER", "EPOCH", "STORE"}};
    int answered = 0;
    for (const std::string& address : Client::Servers(c->g)) {
      auto stub = hosting::v1::Cluster::NewStub(Client::ChannelTo(c->g, address));
      auto ctx = c->client().Context();
      hosting::v1::ControlPlane cp;
      grpc::Status st = stub->GetControlPlane(ctx.get(), {}, &cp);
      if (!st.ok()) {
        rows.push_back({address, "unreachable"});
        c->err << "hostd " << address << ": " << st.error_message() << "\n";
        continue;
      }
      ++answered;
      if (c->g.format != Format::kTable) {
        PrintMessage(cp, c->g.format, c->out);
        continue;
      }
      rows.push_back({address, cp.leader() ? "leader" : "standby",
                      cp.leader_address().empty() ? "(none known)" : cp.leader_address(),
                      std::to_string(cp.epoch()), cp.store()});
    }
    if (c->g.format == Format::kTable) c->out << FormatTable(rows);
    if (answered == 0) c->code = kExitUnavailable;
  });

  // --- nodes ---
  CLI::App* nodes = app.add_subcommand("nodes", "List Swarm nodes");
  nodes->callback([c, o] {
    hosting::v1::ListNodesResponse resp;
    auto ctx = c->client().Context();
    grpc::Status st = c->client().cluster().ListNodes(ctx.get(), {}, &resp);
    if (!st.ok()) {
      c->code = Fail(st, "list nodes", c->err);
      return;
    }
    PrintNodes({resp.nodes().begin(), resp.nodes().end()}, c->g.format, c->out);
  });
  CLI::App* node_cmd = app.add_subcommand("node", "Drain or activate a Swarm node");
  node_cmd->require_subcommand(1);
  for (const char* action : {"drain", "activate"}) {
    CLI::App* sub = node_cmd->add_subcommand(
        action, std::string(action) == "drain" ? "Move the node's tasks elsewhere (availability drain)"
                                               : "Let Swarm schedule tasks on the node again");
    sub->add_option("node", o->node, "Node ID or hostname")->required();
    sub->callback([c, o, drain = std::string(action) == "drain"] {
      hosting::v1::Node resp;
      auto ctx = c->client().Context();
      grpc::Status st;
      if (drain) {
        hosting::v1::DrainNodeRequest req;
        req.set_node(o->node);
        st = c->client().cluster().DrainNode(ctx.get(), req, &resp);
      } else {
        hosting::v1::ActivateNodeRequest req;
        req.set_node(o->node);
        st = c->client().cluster().ActivateNode(ctx.get(), req, &resp);
      }
      if (!st.ok()) {
        c->code = Fail(st, absl::StrCat("node ", o->node), c->err);
        return;
      }
      PrintNodes({resp}, c->g.format, c->out);
    });
  }
}

}  // namespace hosting::hostctl
