#include "hostctl/runbook_commands.h"

#include <unistd.h>

#include <iostream>
#include <memory>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/run_state_text.h"
#include "common/proto_time.h"
#include "hostctl/exit_codes.h"

namespace hosting::hostctl {
namespace {

using ::hosting::v1::RunbookRun;

bool Ended(hosting::v1::RunState s) {
  return s == hosting::v1::RUN_STATE_SUCCEEDED || s == hosting::v1::RUN_STATE_FAILED ||
         s == hosting::v1::RUN_STATE_CANCELLED;
}

std::string Indented(const std::string& text, const std::string& indent) {
  std::string out;
  for (absl::string_view line : absl::StrSplit(text, '\n'))
    absl::StrAppend(&out, indent, line, "\n");
  return out;
}

void Print(const RunbookRun& run, Format format, std::ostream& out) {
  if (format == Format::kTable) {
    PrintRun(run, out);
  } else {
    PrintMessage(run, format, out);
  }
}

// One line per step change, as the run moves.
void PrintProgress(const RunbookRun& before, const RunbookRun& now, std::ostream& out) {
  for (int i = 0; i < now.steps_size(); ++i) {
    const hosting::v1::RunStep& s = now.steps(i);
    const bool changed = i >= before.steps_size() || before.steps(i).state() != s.state() ||
                         before.steps(i).attempts() != s.attempts();
    if (!changed || s.state() == hosting::v1::RUN_STATE_PENDING && s.attempts() == 0) continue;
    out << absl::FormatTime("%H:%M:%S", absl::Now(), absl::LocalTimeZone()) << "  step " << i + 1
        << "/" << now.steps_size() << " " << s.name() << ": " << RunStateText(s.state());
    if (s.state() == hosting::v1::RUN_STATE_RUNNING) {
      out << " (attempt " << s.attempts() << " of " << s.max_attempts() << ")";
    }
    if (s.state() == hosting::v1::RUN_STATE_WAITING_APPROVAL) {
      out << ": hostctl runbook approve " << now.id();
    }
    if (!s.output().empty() && s.state() != hosting::v1::RUN_STATE_RUNNING) {
      out << "\n" << Indented(s.output(), "    ");
    } else {
      out << "\n";
    }
  }
}

int Follow(Client& client, const std::string& id, absl::Duration wait, Format format,
           std::ostream& out, std::ostream& err) {
  const absl::Time deadline = absl::Now() + wait;
  RunbookRun last;
  while (true) {
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(deadline));
    hosting::v1::WatchRunRequest req;
    req.set_id(id);
    auto reader = client.runbooks().WatchRun(&ctx, req);
    RunbookRun r;
    while (reader->Read(&r)) {
      if (format == Format::kTable) PrintProgress(last, r, out);
      out << std::flush;
      last = r;
    }
    grpc::Status st = reader->Finish();
    if (st.ok() && Ended(last.state())) break;
    if (st.ok() || st.error_code() == grpc::StatusCode::UNAVAILABLE) {
      // hostd restarted or the stream ended early: the run resumes, so does the watch.
      if (absl::Now() >= deadline) st = grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED, "");
    }
    if (st.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED || absl::Now() >= deadline) {
      err << "error: run " << id << " still " << RunStateText(last.state()) << " after "
          << absl::FormatDuration(wait) << " (it goes on; hostctl runbook watch " << id << ")\n";
      return kExitTimeout;
    }
    if (!st.ok() && st.error_code() != grpc::StatusCode::UNAVAILABLE) {
      return Fail(st, "watch " + id, err);
    }
    absl::SleepFor(absl::Seconds(1));
  }
  if (format == Format::kTable) {
    out << "run " << id << " " << RunStateText(last.state()) << ": " << last.message() << "\n";
    for (const auto& [k, v] : last.outputs()) out << "  " << k << ": " << v << "\n";
  } else {
    PrintMessage(last, format, out);
  }
  return ExitCodeForRun(last.state());
}

}  // namespace

absl::StatusOr<std::map<std::string, std::string>> ParseRunParameters(
    const std::vector<std::string>& pairs) {
  std::map<std::string, std::string> out;
  for (const std::string& p : pairs) {
    const size_t eq = p.find('=');
    if (eq == std::string::npos || eq == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("-p '", p, "': want key=value (e.g. -p node=worker-2)"));
    }
    if (!out.emplace(p.substr(0, eq), p.substr(eq + 1)).second) {
      return absl::InvalidArgumentError(absl::StrCat("-p: '", p.substr(0, eq), "' given twice"));
    }
  }
  return out;
}

int ExitCodeForRun(hosting::v1::RunState state) {
  switch (state) {
    case hosting::v1::RUN_STATE_SUCCEEDED:
      return kExitOk;
    case hosting::v1::RUN_STATE_FAILED:
      return kExitRunFailed;
    case hosting::v1::RUN_STATE_CANCELLED:
      return kExitRunCancelled;
    default:
      return kExitTimeout;  // not ended
  }
}

void PrintRun(const RunbookRun& run, std::ostream& out) {
  out << (run.dry_run() ? std::string("plan (dry run, nothing done)")
                        : absl::StrCat("run ", run.id()))
      << "  " << run.runbook();
  if (!run.target().empty()) out << " on " << run.target();
  if (!run.dry_run()) out << "  " << RunStateText(run.state());
  if (!run.started_by().empty() && !run.dry_run()) out << "  started by " << run.started_by();
  if (IsSet(run.started_at()) && !run.dry_run()) {
    out << " at "
        << absl::FormatTime("%Y-%m-%d %H:%M:%S", FromTimestamp(run.started_at()),
                            absl::LocalTimeZone());
  }
  out << "\n";
  if (!run.message().empty()) out << "  " << run.message() << "\n";
  for (int i = 0; i < run.steps_size(); ++i) {
    const hosting::v1::RunStep& s = run.steps(i);
    out << "  " << i + 1 << ". " << s.name() << "  " << RunStateText(s.state());
    if (s.attempts() > 0) out << " (attempt " << s.attempts() << " of " << s.max_attempts() << ")";
    if (s.requires_approval()) out << "  [approval]";
    out << "\n";
    if (!s.detail().empty()) out << "     " << s.detail() << "\n";
    if (!s.output().empty()) out << Indented(s.output(), "       > ");
  }
  if (!run.outputs().empty()) {
    out << "  outputs:\n";
    for (const auto& [k, v] : run.outputs()) out << "    " << k << ": " << v << "\n";
  }
}

void AddRunbookCommands(CLI::App& app, Globals& g, const std::function<Client&()>& client,
                        int& code, std::ostream& out, std::ostream& err) {
  auto c = std::make_shared<CommandEnv>(CommandEnv{g, client, code, out, err});
  CLI::App* runbook = app.add_subcommand(
      "runbook", "Operational procedures hostd runs and records (backup, node maintenance, ...)");
  runbook->require_subcommand(1);

  CLI::App* list = runbook->add_subcommand("list", "The runbooks hostd serves, with parameters");
  list->callback([c] {
    hosting::v1::ListRunbooksResponse resp;
    auto ctx = c->client().Context();
    grpc::Status st = c->client().runbooks().ListRunbooks(ctx.get(), {}, &resp);
    if (!st.ok()) {
      c->code = Fail(st, "runbook list", c->err);
      return;
    }
    if (c->g.format != Format::kTable) {
      PrintMessage(resp, c->g.format, c->out);
      return;
    }
    for (const hosting::v1::Runbook& r : resp.runbooks()) {
      c->out << r.name() << "\n  " << r.description() << "\n";
      for (const hosting::v1::RunbookParameter& p : r.parameters()) {
        c->out << "  -p " << p.name() << "=..." << (p.required() ? "  (required)" : "")
               << (p.default_value().empty() ? ""
                                             : absl::StrCat("  (default ", p.default_value(), ")"))
               << "  " << p.description() << "\n";
      }
      c->out << "  steps: " << absl::StrJoin(r.steps(), ", ") << "\n";
    }
  });

  auto name = std::make_shared<std::string>();
  auto params = std::make_shared<std::vector<std::string>>();
  auto dry_run = std::make_shared<bool>(false);
  auto wait = std::make_shared<bool>(false);
  auto wait_seconds = std::make_shared<int>(3600);
  CLI::App* run = runbook->add_subcommand("run", "Start a run (or, with --dry-run, show its plan)");
  run->add_option("name", *name, "Runbook name (hostctl runbook list)")->required();
  run->add_option("-p,--param", *params, "A parameter, key=value (repeat)");
  run->add_flag("--dry-run", *dry_run, "Show the steps with their resolved targets; do nothing");
  run->add_flag("--wait", *wait, "Follow the run until it ends; exit with its outcome");
  run->add_option("--wait-timeout", *wait_seconds, "Give up waiting after this many seconds");
  run->callback([c, name, params, dry_run, wait, wait_seconds] {
    absl::StatusOr<std::map<std::string, std::string>> parsed = ParseRunParameters(*params);
    if (!parsed.ok()) {
      c->err << "error: " << parsed.status().message() << "\n";
      c->code = kExitUsage;
      return;
    }
    hosting::v1::RunRunbookRequest req;
    req.set_runbook(*name);
    for (const auto& [k, v] : *parsed) (*req.mutable_parameters())[k] = v;
    req.set_dry_run(*dry_run);
    RunbookRun r;
    auto ctx = c->client().Context();
    grpc::Status st = c->client().runbooks().RunRunbook(ctx.get(), req, &r);
    if (!st.ok()) {
      c->code = Fail(st, "runbook run " + *name, c->err);
      return;
    }
    Print(r, c->g.format, c->out);
    if (*wait && !*dry_run) {
      c->code =
          Follow(c->client(), r.id(), absl::Seconds(*wait_seconds), c->g.format, c->out, c->err);
    }
  });

  auto id = std::make_shared<std::string>();
  CLI::App* status = runbook->add_subcommand("status", "A run: its steps, outputs and state");
  status->add_option("run", *id, "Run ID")->required();
  status->callback([c, id] {
    hosting::v1::GetRunRequest req;
    req.set_id(*id);
    RunbookRun r;
    auto ctx = c->client().Context();
    grpc::Status st = c->client().runbooks().GetRun(ctx.get(), req, &r);
    if (!st.ok()) {
      c->code = Fail(st, "runbook status " + *id, c->err);
      return;
    }
    Print(r, c->g.format, c->out);
  });

  auto watch_seconds = std::make_shared<int>(3600);
  CLI::App* watch = runbook->add_subcommand(
      "watch", "Follow a run's steps until it ends; exits with its outcome");
  watch->add_option("run", *id, "Run ID")->required();
  watch->add_option("--wait-timeout", *watch_seconds, "Give up after this many seconds");
  watch->callback([c, id, watch_seconds] {
    c->code = Follow(c->client(), *id, absl::Seconds(*watch_seconds), c->g.format, c->out, c->err);
  });

  auto reason = std::make_shared<std::string>();
  CLI::App* cancel = runbook->add_subcommand(
      "cancel", "End a run now; its running step is abandoned, the rest do not start");
  cancel->add_option("run", *id, "Run ID")->required();
  cancel->add_option("--reason", *reason, "Why (recorded with the run)");
  cancel->callback([c, id, reason] {
    hosting::v1::CancelRunRequest req;
    req.set_id(*id);
    req.set_reason(*reason);
    RunbookRun r;
    auto ctx = c->client().Context();
    grpc::Status st = c->client().runbooks().CancelRun(ctx.get(), req, &r);
    if (!st.ok()) {
      c->code = Fail(st, "runbook cancel " + *id, c->err);
      return;
    }
    Print(r, c->g.format, c->out);
  });

  auto comment = std::make_shared<std::string>();
  CLI::App* approve =
      runbook->add_subcommand("approve", "Let a run waiting at an approval gate go on");
  approve->add_option("run", *id, "Run ID")->required();
  approve->add_option("--comment", *comment, "Recorded with the approval");
  approve->callback([c, id, comment] {
    hosting::v1::ApproveRunRequest req;
    req.set_id(*id);
    req.set_comment(*comment);
    RunbookRun r;
    auto ctx = c->client().Context();
    grpc::Status st = c->client().runbooks().ApproveRun(ctx.get(), req, &r);
    if (!st.ok()) {
      c->code = Fail(st, "runbook approve " + *id, c->err);
      return;
    }
    Print(r, c->g.format, c->out);
  });

  auto filter = std::make_shared<std::string>();
  auto active = std::make_shared<bool>(false);
  auto limit = std::make_shared<int>(20);
  CLI::App* runs = runbook->add_subcommand("runs", "Runs, newest first");
  runs->add_option("--runbook", *filter, "Only this runbook's runs");
  runs->add_flag("--active", *active, "Only runs that have not ended");
  runs->add_option("--limit", *limit, "At most this many (20)");
  runs->callback([c, filter, active, limit] {
    hosting::v1::ListRunsRequest req;
    req.set_runbook(*filter);
    req.set_active_only(*active);
    req.set_limit(*limit);
    hosting::v1::ListRunsResponse resp;
    auto ctx = c->client().Context();
    grpc::Status st = c->client().runbooks().ListRuns(ctx.get(), req, &resp);
    if (!st.ok()) {
      c->code = Fail(st, "runbook runs", c->err);
      return;
    }
    if (c->g.format != Format::kTable) {
      PrintMessage(resp, c->g.format, c->out);
      return;
    }
    c->out << "RUN                      TARGET        STATE                 STARTED BY\n";
    for (const RunbookRun& r : resp.runs()) {
      c->out << absl::StrFormat("%-24s %-13s %-21s %s\n", r.id(), r.target(),
                                RunStateText(r.state()), r.started_by());
    }
  });
}

}  // namespace hosting::hostctl
