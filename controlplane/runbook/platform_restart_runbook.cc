#include "controlplane/runbook/platform_restart_runbook.h"

#include <algorithm>
#include <map>
#include <set>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/proto_time.h"
#include "common/status_macros.h"

namespace hosting::controlplane {
namespace {

// The tiers in the order they restart; the hosted services go between monitoring and proxy.
int TierRank(const std::string& tier) {
  if (tier == "data") return 0;
  if (tier == "monitoring") return 1;
  if (tier == "proxy") return 3;
  return -1;
}

// Long enough for a write that was already inside the application to finish.
constexpr absl::Duration kWriteDrain = absl::Seconds(1);

// "<stack>_postgres-primary" -> "postgres-primary".
std::string ShortName(const std::string& stack, const std::string& name) {
  const std::string prefix = stack + "_";
  return absl::StartsWith(name, prefix) ? name.substr(prefix.size()) : name;
}

std::string Seconds(absl::Duration d) {
  return absl::StrFormat("%.1f", absl::ToDoubleSeconds(d));
}

}  // namespace

hosting::v1::Runbook PlatformRestartRunbook::Describe() const {
  hosting::v1::Runbook r;
  r.set_name("platform-restart");
  r.set_description(
      "Restarts every service of the platform in dependency order without a failed request: "
      "the data stores (replica, Redis, then the primary with writes held at the front door), "
      "monitoring, each hosted service by rolling restart, then HAProxy by a seamless reload.");
  r.set_target_parameter("stack");
  AddRunbookParameter(r, "stack", hosting::v1::PARAMETER_TYPE_STRING,
                      "the platform's Swarm stack (docker stack ls)", false, "hosting");
  AddRunbookParameter(r, "data", hosting::v1::PARAMETER_TYPE_BOOL,
                      "restart the data stores (hosting.tier=data)", false, "true");
  AddRunbookParameter(r, "monitoring", hosting::v1::PARAMETER_TYPE_BOOL,
                      "restart monitoring (hosting.tier=monitoring)", false, "true");
  AddRunbookParameter(r, "app", hosting::v1::PARAMETER_TYPE_BOOL,
                      "restart each hosted service by rolling release", false, "true");
  AddRunbookParameter(r, "proxy", hosting::v1::PARAMETER_TYPE_BOOL,
                      "reload HAProxy (hosting.tier=proxy)", false, "true");
  for (const char* step : {"restart-<data store>", "restart-<monitoring service>",
                           "app-<hosted service>", "reload-<proxy>"}) {
    r.add_steps(step);
  }
  return r;
}

absl::StatusOr<std::vector<std::string>> PlatformRestartRunbook::HostedServices() {
  ASSIGN_OR_RETURN(std::vector<HostedTask> tasks, cluster_.Tasks());
  std::set<std::string> names;
  for (const HostedTask& t : tasks) names.insert(t.service);
  return std::vector<std::string>(names.begin(), names.end());
}

absl::StatusOr<std::vector<StepPlan>> PlatformRestartRunbook::Plan(const Parameters& params) {
  const std::string& stack = params.String("stack");
  ASSIGN_OR_RETURN(std::vector<PlatformService> services, platform_.StackServices(stack));
  std::vector<std::string> untiered;
  for (const PlatformService& s : services) {
    if (TierRank(s.tier) < 0) {
      untiered.push_back(absl::StrCat(s.name, " (hosting.tier '", s.tier, "')"));
    }
    if (s.restart != "update" && s.restart != "pause-writes" && s.restart != "reload") {
      return absl::InvalidArgumentError(absl::StrCat(
          "service ", s.name, ": label hosting.restart is '", s.restart,
          "'; want update, pause-writes or reload"));
    }
  }
  if (!untiered.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "services of stack ", stack, " without a known tier (label hosting.tier: data, "
        "monitoring or proxy; deploy/swarm/stack.yml): ", absl::StrJoin(untiered, ", ")));
  }
  std::sort(services.begin(), services.end(),
            [](const PlatformService& a, const PlatformService& b) {
              return std::make_tuple(TierRank(a.tier), a.order, a.name) <
                     std::make_tuple(TierRank(b.tier), b.order, b.name);
            });
  std::vector<StepPlan> steps;
  auto swarm_step = [&](const PlatformService& s) {
    StepPlan p;
    const std::string short_name = ShortName(stack, s.name);
    p.arguments = {{"service_id", s.id}, {"service", s.name}, {"restart", s.restart}};
    if (s.restart == "reload") {
      p.name = "reload-" + short_name;
      p.detail = absl::StrCat("reload ", s.name,
                              " (the HAProxy of hostd's node, through --haproxy-master): new "
                              "workers on the same sockets, every backend's servers back");
      p.timeout = absl::Minutes(2);
    } else {
      p.name = "restart-" + short_name;
      p.detail = absl::StrCat(
          "docker service update --force ", s.name, " (", s.tier, ", ",
          s.global ? "global" : absl::StrCat(s.desired_tasks, " tasks"), ")",
          s.restart == "pause-writes" ? "; writes held at the front door meanwhile" : "");
      p.timeout = absl::Minutes(5);
    }
    // A step run again restarts again: harmless, and the hold is let go at its end.
    p.resumable = true;
    return p;
  };
  for (const PlatformService& s : services) {
    if (s.tier == "data" && params.Bool("data")) steps.push_back(swarm_step(s));
  }
  for (const PlatformService& s : services) {
    if (s.tier == "monitoring" && params.Bool("monitoring")) steps.push_back(swarm_step(s));
  }
  if (params.Bool("app")) {
    ASSIGN_OR_RETURN(std::vector<std::string> hosted, HostedServices());
    for (const std::string& name : hosted) {
      StepPlan p;
      p.name = "app-" + name;
      p.detail = absl::StrCat("rolling restart of ", name, " under its release policy");
      p.arguments = {{"hosted_service", name}};
      p.timeout = absl::Minutes(30);
      // Not resumable: a restarted hostd must not start a second release of the service.
      steps.push_back(p);
    }
  }
  for (const PlatformService& s : services) {
    if (s.tier == "proxy" && params.Bool("proxy")) steps.push_back(swarm_step(s));
  }
  if (steps.empty()) {
    return absl::InvalidArgumentError("every tier is left out: nothing to restart");
  }
  return steps;
}

absl::StatusOr<std::string> PlatformRestartRunbook::Execute(StepContext& ctx) {
  const std::string& step = ctx.step().name();
  if (absl::StartsWith(step, "app-")) return RestartApp(ctx);
  if (absl::StartsWith(step, "reload-")) return Reload(ctx);
  return Restart(ctx);
}

absl::StatusOr<std::string> PlatformRestartRunbook::Restart(StepContext& ctx) {
  const std::string id = ctx.Argument("service_id");
  const std::string name = ctx.Argument("service");
  const bool pause = ctx.Argument("restart") == "pause-writes";
  const absl::Time start = ctx.clock().Now();
  absl::Status st;
  UpdateProgress last;
  bool held = false;
  absl::Duration held_for;
  auto let_writes_go = [&]() -> absl::Status {
    if (!held) return absl::OkStatus();
    held = false;
    held_for = ctx.clock().Now() - start;
    return platform_.PauseWrites(false);
  };
  if (pause) {
    held = true;
    st = platform_.PauseWrites(true);
    if (st.ok() && !ctx.Sleep(kWriteDrain)) st = absl::CancelledError("cancelled");
  }
  if (st.ok()) st = platform_.ForceUpdate(id);
  // First Swarm takes the update up (the state it reports may still be the last update's),
  // the old tasks stop (stop-first), the new ones run (healthy), and after its monitor period
  // Swarm completes the update. Held writes go on as soon as the new tasks run.
  bool started = false;
  bool stopped = false;
  if (st.ok()) {
    st = ctx.WaitUntil(
        [&]() -> absl::StatusOr<bool> {
          ASSIGN_OR_RETURN(last, platform_.Progress(id));
          if (last.failed) {
            return absl::AbortedError(absl::StrCat("Swarm's update of ", name, ": ", last.detail,
                                                   " (docker service ps ", name, ")"));
          }
          if (!started) {
            started = !last.done;
            if (!started) return false;
          }
          stopped = stopped || last.running < last.desired;
          if (held && stopped && last.running >= last.desired) RETURN_IF_ERROR(let_writes_go());
          return last.done;
        },
        ctx.deadline() - ctx.clock().Now() - absl::Seconds(5), absl::Milliseconds(250),
        absl::StrCat(name, "'s new tasks to run"));
  }
  const absl::Duration took = ctx.clock().Now() - start;
  // Whatever happened above: the front door must not keep holding writes.
  if (absl::Status resumed = let_writes_go(); st.ok()) st = resumed;
  if (!st.ok()) {
    return absl::Status(st.code(), absl::StrCat(st.message(), "; last: ", last.detail));
  }
  const std::string short_name = ShortName(ctx.Param("stack"), name);
  ctx.SetOutput(absl::StrCat(short_name, ".seconds"), Seconds(took));
  if (pause) ctx.SetOutput(absl::StrCat(short_name, ".writes_held_seconds"), Seconds(held_for));
  return absl::StrCat(name, " restarted in ", Seconds(took), " s (", last.detail, ")",
                      pause ? absl::StrCat("; writes held at the front door for ",
                                           Seconds(held_for), " s")
                            : "");
}

absl::StatusOr<std::string> PlatformRestartRunbook::RestartApp(StepContext& ctx) {
  const std::string service = ctx.Argument("hosted_service");
  const absl::Time start = ctx.clock().Now();
  ASSIGN_OR_RETURN(hosting::v1::Release release,
                   RollingRestart(ctx, cluster_, service,
                                  absl::StrCat("runbook ", ctx.run().id(), ": platform restart")));
  const absl::Duration took = ctx.clock().Now() - start;
  ctx.SetOutput(absl::StrCat("app.", service, ".seconds"), Seconds(took));
  return absl::StrCat(service, " restarted by release ", release.id(), " in ", Seconds(took),
                      " s");
}

absl::StatusOr<std::string> PlatformRestartRunbook::Reload(StepContext& ctx) {
  const std::string name = ctx.Argument("service");
  const absl::Time start = ctx.clock().Now();
  ASSIGN_OR_RETURN(std::vector<std::string> hosted, HostedServices());
  std::map<std::string, int> before;
  for (const std::string& backend : hosted) {
    ASSIGN_OR_RETURN(before[backend], platform_.ProxyServers(backend));
  }
  ASSIGN_OR_RETURN(std::vector<std::string> old_workers, platform_.ProxyWorkers());
  RETURN_IF_ERROR(platform_.ReloadProxy());
  std::vector<std::string> workers;
  RETURN_IF_ERROR(ctx.WaitUntil(
      [&]() -> absl::StatusOr<bool> {
        // The master re-executes itself: its CLI may not answer for a moment.
        absl::StatusOr<std::vector<std::string>> now = platform_.ProxyWorkers();
        if (!now.ok()) return false;
        workers = *now;
        return std::any_of(workers.begin(), workers.end(), [&](const std::string& w) {
          return std::find(old_workers.begin(), old_workers.end(), w) == old_workers.end();
        });
      },
      absl::Seconds(30), absl::Milliseconds(100), absl::StrCat(name, "'s new workers")));
  std::string missing;
  RETURN_IF_ERROR(ctx.WaitUntil(
      [&]() -> absl::StatusOr<bool> {
        missing.clear();
        for (const auto& [backend, count] : before) {
          absl::StatusOr<int> now = platform_.ProxyServers(backend);
          if (!now.ok() || *now < count) {
            absl::StrAppend(&missing, missing.empty() ? "" : ", ", backend, " ",
                            now.ok() ? *now : 0, "/", count);
          }
        }
        return missing.empty();
      },
      absl::Seconds(60), absl::Milliseconds(100),
      absl::StrCat("hostd to add every backend's servers back (", name, ")")));
  const absl::Duration took = ctx.clock().Now() - start;
  ctx.SetOutput("proxy.seconds", Seconds(took));
  std::vector<std::string> counts;
  for (const auto& [backend, count] : before) counts.push_back(absl::StrCat(backend, "=", count));
  return absl::StrCat(name, " reloaded in ", Seconds(took), " s: workers ",
                      absl::StrJoin(old_workers, ","), " -> ", absl::StrJoin(workers, ","),
                      "; servers back: ", counts.empty() ? "no backend" : absl::StrJoin(counts, " "));
}

}  // namespace hosting::controlplane
