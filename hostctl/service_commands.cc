#include "hostctl/service_commands.h"

#include <memory>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
#include "hostctl/exit_codes.h"
#include "hostctl/output.h"
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

void AddServiceCommands(CLI::App& app, Globals& g, const std::function<Client&()>& client,
                        int& code, std::ostream& out, std::ostream& err) {
  auto c = std::make_shared<CommandEnv>(CommandEnv{g, client, code, out, err});
  struct Options {
    std::string file;
    bool dry_run = false;
    bool wait = false;
    double wait_seconds = 300;
    int64_t expected_generation = 0;
    std::string name;
    int32_t replicas = 0;
    bool force = false;
  };
  auto o = std::make_shared<Options>();
  CLI::App* service = app.add_subcommand("service", "Manage hosted services");
  service->require_subcommand(1);

  CLI::App* apply = service->add_subcommand("apply", "Create or update a service from a spec file");
  apply->add_option("-f,--file", o->file, "ServiceSpec as YAML or JSON ('-' for stdin)")->required();
  apply->add_flag("--dry-run", o->dry_run, "Validate and show the result without storing it");
  apply->add_flag("--wait", o->wait, "Wait until the service runs its desired replicas");
  apply->add_option("--wait-timeout", o->wait_seconds, "Seconds --wait may take (default 300)");
  apply->add_option("--expected-generation", o->expected_generation,
                    "Apply only if the stored generation is this (optimistic concurrency)");
  apply->callback([c, o] {
    absl::StatusOr<hosting::v1::ServiceSpec> spec = ReadServiceSpecFile(o->file);
    if (!spec.ok()) {
      c->err << "error: " << spec.status().message() << "\n";
      c->code = kExitUsage;
      return;
    }
    hosting::v1::ApplyServiceRequest req;
    *req.mutable_spec() = *spec;
    req.set_dry_run(o->dry_run);
    req.set_expected_generation(o->expected_generation);
    hosting::v1::ApplyServiceResponse resp;
    auto ctx = c->client().Context();
    grpc::Status st = c->client().services().ApplyService(ctx.get(), req, &resp);
    if (!st.ok()) {
      c->code = Fail(st, absl::StrCat("apply ", spec->name()), c->err);
      return;
    }
    if (c->g.format != Format::kTable) {
      PrintMessage(resp, c->g.format, c->out);
    } else {
      const char* verb = o->dry_run ? "would be " : "";
      if (!resp.changed()) {
        c->out << "service/" << spec->name() << " unchanged (revision " << resp.service().revision()
            << ")\n";
      } else {
        c->out << "service/" << spec->name() << " " << verb << (resp.created() ? "created" : "updated")
            << " (revision " << resp.service().revision()
            << (resp.revision_created() ? ", new" : "") << ", generation "
            << resp.service().generation() << ")\n";
      }
    }
    if (o->wait && !o->dry_run) {
      c->code = WaitReady(c->client(), spec->name(), absl::Seconds(o->wait_seconds), c->out, c->err);
    }
  });

  CLI::App* get = service->add_subcommand("get", "Show a service with its observed state");
  get->add_option("name", o->name, "Service name")->required();
  get->callback([c, o] {
    hosting::v1::GetServiceRequest req;
    req.set_name(o->name);
    hosting::v1::Service resp;
    auto ctx = c->client().Context();
    grpc::Status st = c->client().services().GetService(ctx.get(), req, &resp);
    if (!st.ok()) {
      c->code = Fail(st, absl::StrCat("get ", o->name), c->err);
      return;
    }
    PrintService(resp, c->g.format, c->out);
  });

  CLI::App* list = service->add_subcommand("list", "List services");
  list->alias("ls");
  list->callback([c, o] {
    hosting::v1::ListServicesResponse resp;
    auto ctx = c->client().Context();
    grpc::Status st = c->client().services().ListServices(ctx.get(), {}, &resp);
    if (!st.ok()) {
      c->code = Fail(st, "list services", c->err);
      return;
    }
    PrintServices({resp.services().begin(), resp.services().end()}, c->g.format, c->out);
  });

  CLI::App* del = service->add_subcommand("delete", "Delete a service and its Swarm services");
  del->alias("rm");
  del->add_option("name", o->name, "Service name")->required();
  del->callback([c, o] {
    hosting::v1::DeleteServiceRequest req;
    req.set_name(o->name);
    hosting::v1::DeleteServiceResponse resp;
    auto ctx = c->client().Context();
    grpc::Status st = c->client().services().DeleteService(ctx.get(), req, &resp);
    if (!st.ok()) {
      c->code = Fail(st, absl::StrCat("delete ", o->name), c->err);
      return;
    }
    if (c->g.format != Format::kTable) {
      PrintMessage(resp, c->g.format, c->out);
    } else {
      c->out << "service/" << o->name << " deleted\n";
    }
  });

  CLI::App* scale = service->add_subcommand("scale", "Set a service's replica count");
  scale->add_option("name", o->name, "Service name")->required();
  scale->add_option("replicas", o->replicas, "Desired replicas")->required();
  scale->add_flag("--force", o->force, "Scale even under an autoscaling policy");
  scale->add_flag("--wait", o->wait, "Wait until the replicas run");
  scale->add_option("--wait-timeout", o->wait_seconds, "Seconds --wait may take (default 300)");
  scale->callback([c, o] {
    hosting::v1::ScaleServiceRequest req;
    req.set_name(o->name);
    req.set_replicas(o->replicas);
    req.set_force(o->force);
    hosting::v1::Service resp;
    auto ctx = c->client().Context();
    grpc::Status st = c->client().services().ScaleService(ctx.get(), req, &resp);
    if (!st.ok()) {
      c->code = Fail(st, absl::StrCat("scale ", o->name), c->err);
      return;
    }
    if (c->g.format != Format::kTable) {
      PrintMessage(resp, c->g.format, c->out);
    } else {
      c->out << "service/" << o->name << " scaled to " << o->replicas << "\n";
    }
    if (o->wait) c->code = WaitReady(c->client(), o->name, absl::Seconds(o->wait_seconds), c->out, c->err);
  });

  CLI::App* status = service->add_subcommand(
      "status", "Per-revision health and metrics from the agents (healthy tasks, RPS, errors, latency)");
  status->add_option("name", o->name, "Service name")->required();
  status->callback([c, o] {
    hosting::v1::GetServiceStatusRequest req;
    req.set_name(o->name);
    hosting::v1::ServiceHealthStatus resp;
    auto ctx = c->client().Context();
    grpc::Status st = c->client().cluster().GetServiceStatus(ctx.get(), req, &resp);
    if (!st.ok()) {
      c->code = Fail(st, absl::StrCat("status ", o->name), c->err);
      return;
    }
    PrintServiceHealth(resp, c->g.format, c->out);
  });

  // --- events ---
}

}  // namespace hosting::hostctl
