#include "hostctl/release_commands.h"

#include <unistd.h>

#include <iostream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "google/protobuf/util/time_util.h"
#include "hostctl/exit_codes.h"
#include "hostctl/spec_file.h"

namespace hosting::hostctl {
namespace {

using google::protobuf::util::TimeUtil;

absl::StatusOr<hosting::v1::ReleaseStrategy> ParseStrategy(const std::string& s) {
  if (s == "rolling") return hosting::v1::RELEASE_STRATEGY_ROLLING;
  if (s == "canary") return hosting::v1::RELEASE_STRATEGY_CANARY;
  if (s == "blue-green" || s == "bluegreen") return hosting::v1::RELEASE_STRATEGY_BLUE_GREEN;
  if (s == "recreate") return hosting::v1::RELEASE_STRATEGY_RECREATE;
  return absl::InvalidArgumentError(absl::StrCat(
      "--strategy: '", s, "' is not one of rolling, canary, blue-green, recreate"));
}

// Follows a release until it ends (or `wait` runs out), printing its events; reconnects when
// hostd restarts. Returns the exit code for how it ended.
int Follow(Client& client, const std::string& id, absl::Duration wait, Format format,
           std::ostream& out, std::ostream& err) {
  const bool live = &out == &std::cout && isatty(STDOUT_FILENO) && format == Format::kTable;
  const absl::Time deadline = absl::Now() + wait;
  size_t seen = 0;  // events printed; a reconnect replays the release's events from the start
  hosting::v1::Release last;
  while (true) {
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(deadline));
    hosting::v1::WatchReleaseRequest req;
    req.set_id(id);
    auto reader = client.releases().WatchRelease(&ctx, req);
    hosting::v1::ReleaseEvent e;
    size_t index = 0;
    while (reader->Read(&e)) {
      if (e.has_release()) last = e.release();
      if (index++ < seen) continue;
      ++seen;
      if (live) out << "\r\033[K";
      PrintReleaseEvent(e, format, out);
      if (live) out << "  " << ReleaseSummary(last) << std::flush;
    }
    grpc::Status st = reader->Finish();
    if (live) out << "\r\033[K" << std::flush;
    if (st.ok()) break;
    if (st.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED || absl::Now() >= deadline) {
      err << "error: release " << id << " still " << ReleaseStateText(last.state()) << " after "
          << absl::FormatDuration(wait) << " (it goes on; hostctl release watch " << id << ")\n";
      return kExitTimeout;
    }
    if (st.error_code() != grpc::StatusCode::UNAVAILABLE) return Fail(st, "watch " + id, err);
    absl::SleepFor(absl::Seconds(1));  // hostd restarting: the release resumes, so do we
  }
  hosting::v1::GetReleaseRequest get;
  get.set_id(id);
  auto ctx = client.Context();
  grpc::Status st = client.releases().GetRelease(ctx.get(), get, &last);
  if (!st.ok()) return Fail(st, "get " + id, err);
  if (format == Format::kTable) {
    out << "release " << id << " " << ReleaseStateText(last.state()) << ": " << last.message()
        << "\n";
  }
  return ExitCodeForRelease(last.state());
}

}  // namespace

int ExitCodeForRelease(hosting::v1::ReleaseState state) {
  switch (state) {
    case hosting::v1::RELEASE_STATE_SUCCEEDED: return kExitOk;
    case hosting::v1::RELEASE_STATE_ROLLED_BACK: return kExitRolledBack;
    case hosting::v1::RELEASE_STATE_ABORTED: return kExitAborted;
    case hosting::v1::RELEASE_STATE_TIMED_OUT: return kExitReleaseTimedOut;
    case hosting::v1::RELEASE_STATE_FAILED: return kExitReleaseFailed;
    default: return kExitTimeout;  // not finished
  }
}

absl::StatusOr<hosting::v1::IntOrPercent> ParseIntOrPercent(const std::string& text) {
  hosting::v1::IntOrPercent v;
  absl::string_view t = absl::StripAsciiWhitespace(text);
  int n = 0;
  if (absl::ConsumeSuffix(&t, "%")) {
    if (!absl::SimpleAtoi(t, &n) || n < 0 || n > 100) {
      return absl::InvalidArgumentError(absl::StrCat("'", text, "' is not a percentage 0%..100%"));
    }
    v.set_percent(n);
    return v;
  }
  if (!absl::SimpleAtoi(t, &n) || n < 0) {
    return absl::InvalidArgumentError(absl::StrCat("'", text, "' is not a count or a percentage"));
  }
  v.set_count(n);
  return v;
}

absl::StatusOr<std::vector<hosting::v1::CanaryStep>> ParseCanarySteps(const std::string& text) {
  std::vector<hosting::v1::CanaryStep> steps;
  for (absl::string_view raw : absl::StrSplit(text, ',', absl::SkipWhitespace())) {
    absl::string_view item = absl::StripAsciiWhitespace(raw);
    hosting::v1::CanaryStep step;
    std::pair<absl::string_view, absl::string_view> kv = absl::StrSplit(item, absl::MaxSplits(':', 1));
    if (kv.first == "pause") {
      step.mutable_pause();
      if (!kv.second.empty()) {
        auto d = ParseDurationFlag(std::string(kv.second), "--steps pause");
        if (!d.ok()) return d.status();
        *step.mutable_pause()->mutable_duration() = *d;
      }
    } else if (kv.first == "analysis" || kv.first == "judge") {
      step.mutable_analysis();
      // judge: the analysis with the statistical judge at its defaults (a service's policy
      // sets its confidence, tolerances, critical and dry-run metrics).
      if (kv.first == "judge") step.mutable_analysis()->mutable_judge();
      if (!kv.second.empty()) {
        auto d = ParseDurationFlag(std::string(kv.second), absl::StrCat("--steps ", kv.first));
        if (!d.ok()) return d.status();
        *step.mutable_analysis()->mutable_duration() = *d;
      }
    } else {
      absl::string_view w = item;
      absl::ConsumeSuffix(&w, "%");
      int weight = 0;
      if (!absl::SimpleAtoi(w, &weight) || weight < 0 || weight > 100) {
        return absl::InvalidArgumentError(absl::StrCat(
            "--steps: '", item,
            "' is not a weight 0..100, pause[:DURATION], analysis[:DURATION] or "
            "judge[:DURATION]"));
      }
      step.set_set_weight(static_cast<uint32_t>(weight));
    }
    steps.push_back(std::move(step));
  }
  if (steps.empty()) return absl::InvalidArgumentError("--steps: no steps given");
  return steps;
}

void AddReleaseCommands(CLI::App& app, Globals& g, const std::function<Client&()>& client,
                        int& code, std::ostream& out, std::ostream& err) {
  auto c = std::make_shared<CommandEnv>(CommandEnv{g, client, code, out, err});
  CLI::App* release = app.add_subcommand("release", "Start, follow and steer releases");
  release->require_subcommand(1);

  struct StartOptions {
    std::string service, image, file, strategy, steps, max_surge, max_unavailable;
    std::string min_healthy_time, progress_deadline, scale_down_delay, analysis, reason;
    std::string on_failure;
    bool manual_promotion = false;
    bool baseline = false;
    bool wait = false;
    double wait_seconds = 1800;
  };
  auto so = std::make_shared<StartOptions>();
  CLI::App* start = release->add_subcommand("start", "Release a new image (or spec) of a service");
  start->add_option("service", so->service, "Service name")->required();
  start->add_option("--image", so->image, "New image");
  start->add_option("-f,--file", so->file, "Full new spec (YAML/JSON; '-' reads stdin)");
  start->add_option("--strategy", so->strategy, "rolling, canary, blue-green or recreate");
  start->add_option("--steps", so->steps,
                    "Canary steps, e.g. 10,analysis:30s,50,pause,100 (weights in %; judge:30s is "
                    "an analysis with the statistical judge)");
  start->add_option("--on-failure", so->on_failure,
                    "What a failed analysis of --steps does: rollback (default) or pause");
  start->add_flag("--baseline", so->baseline,
                  "Canary: run a fresh copy of the stable revision beside the canary, with its "
                  "traffic share, and compare the canary with it");
  start->add_option("--max-surge", so->max_surge,
                    "Rolling: extra tasks, count or % (default: what the nodes have memory for)");
  start->add_option("--max-unavailable", so->max_unavailable, "Rolling: missing tasks allowed (0)");
  start->add_option("--min-healthy-time", so->min_healthy_time, "A new task counts after being healthy this long (0s)");
  start->add_option("--progress-deadline", so->progress_deadline,
                    "Fail and roll back without progress for this long (5m)");
  start->add_option("--scale-down-delay", so->scale_down_delay,
                    "Blue-green: keep the old revision warm this long (10m)");
  start->add_flag("--manual-promotion", so->manual_promotion,
                  "Blue-green: wait for 'release promote' before switching");
  start->add_option("--reason", so->reason, "Recorded with the release (CI run, commit)");
  start->add_flag("--wait", so->wait, "Follow the release and exit with its outcome");
  start->add_option("--wait-timeout", so->wait_seconds, "Seconds --wait follows (1800)");
  start->callback([c, so] {
    hosting::v1::StartReleaseRequest req;
    req.set_service(so->service);
    req.set_image(so->image);
    req.set_reason(so->reason);
    auto usage = [c](const absl::Status& s) {
      c->err << "error: " << s.message() << "\n";
      c->code = kExitUsage;
    };
    if (!so->file.empty()) {
      absl::StatusOr<hosting::v1::ServiceSpec> spec = ReadServiceSpecFile(so->file);
      if (!spec.ok()) return usage(spec.status());
      *req.mutable_spec() = *spec;
    }
    hosting::v1::ReleasePolicy* p = req.mutable_policy();
    if (!so->strategy.empty()) {
      auto s = ParseStrategy(so->strategy);
      if (!s.ok()) return usage(s.status());
      p->set_strategy(*s);
    }
    if (!so->steps.empty()) {
      auto steps = ParseCanarySteps(so->steps);
      if (!steps.ok()) return usage(steps.status());
      for (auto& s : *steps) *p->mutable_canary()->add_steps() = s;
    }
    if (!so->on_failure.empty()) {
      hosting::v1::AnalysisFailurePolicy policy;
      if (so->on_failure == "rollback") {
        policy = hosting::v1::ANALYSIS_FAILURE_POLICY_ROLLBACK;
      } else if (so->on_failure == "pause") {
        policy = hosting::v1::ANALYSIS_FAILURE_POLICY_PAUSE;
      } else {
        return usage(absl::InvalidArgumentError(
            absl::StrCat("--on-failure: '", so->on_failure, "' is not rollback or pause")));
      }
      if (so->steps.empty()) {
        return usage(absl::InvalidArgumentError(
            "--on-failure applies to the analyses of --steps; give --steps"));
      }
      for (auto& s : *p->mutable_canary()->mutable_steps()) {
        if (s.has_analysis()) s.mutable_analysis()->set_on_failure(policy);
      }
    }
    if (so->baseline) {
      if (so->steps.empty()) {
        return usage(absl::InvalidArgumentError(
            "--baseline runs beside the canary of --steps; give --steps (or set "
            "release.canary.baseline in the service's spec)"));
      }
      p->mutable_canary()->set_baseline(true);
    }
    if (!so->steps.empty()) {
      if (p->strategy() == hosting::v1::RELEASE_STRATEGY_UNSPECIFIED) {
        p->set_strategy(hosting::v1::RELEASE_STRATEGY_CANARY);
      }
    }
    // Sub-messages are created only for the flags given: a message present in the request
    // overrides the service's own.
    using IopField = hosting::v1::IntOrPercent* (*)(hosting::v1::ReleasePolicy*);
    for (auto [text, field, name] :
         {std::tuple<std::string*, IopField, const char*>{
              &so->max_surge,
              [](hosting::v1::ReleasePolicy* q) { return q->mutable_rolling()->mutable_max_surge(); },
              "--max-surge"},
          std::tuple<std::string*, IopField, const char*>{
              &so->max_unavailable,
              [](hosting::v1::ReleasePolicy* q) {
                return q->mutable_rolling()->mutable_max_unavailable();
              },
              "--max-unavailable"}}) {
      if (text->empty()) continue;
      auto v = ParseIntOrPercent(*text);
      if (!v.ok()) {
        return usage(absl::InvalidArgumentError(absl::StrCat(name, ": ", v.status().message())));
      }
      *field(p) = *v;
    }
    using DurField = google::protobuf::Duration* (*)(hosting::v1::ReleasePolicy*);
    for (auto [text, field, name] :
         {std::tuple<std::string*, DurField, const char*>{
              &so->min_healthy_time,
              [](hosting::v1::ReleasePolicy* q) {
                return q->mutable_rolling()->mutable_min_healthy_time();
              },
              "--min-healthy-time"},
          std::tuple<std::string*, DurField, const char*>{
              &so->progress_deadline,
              [](hosting::v1::ReleasePolicy* q) {
                return q->mutable_rolling()->mutable_progress_deadline();
              },
              "--progress-deadline"},
          std::tuple<std::string*, DurField, const char*>{
              &so->scale_down_delay,
              [](hosting::v1::ReleasePolicy* q) {
                return q->mutable_blue_green()->mutable_scale_down_delay();
              },
              "--scale-down-delay"}}) {
      if (text->empty()) continue;
      auto d = ParseDurationFlag(*text, name);
      if (!d.ok()) return usage(d.status());
      *field(p) = *d;
    }
    if (so->manual_promotion) p->mutable_blue_green()->set_manual_promotion(true);
    // Only the parts given override the service's policy.
    if (p->strategy() == hosting::v1::RELEASE_STRATEGY_UNSPECIFIED && !p->has_rolling() &&
        !p->has_canary() && !p->has_blue_green()) {
      req.clear_policy();
    }
    hosting::v1::Release r;
    auto ctx = c->client().Context();
    grpc::Status st = c->client().releases().StartRelease(ctx.get(), req, &r);
    if (!st.ok()) {
      c->code = Fail(st, "release " + so->service, c->err);
      return;
    }
    if (c->g.format == Format::kTable) {
      c->out << "release " << r.id() << " started: revision " << r.from_revision() << " -> "
          << r.to_revision() << "\n" << std::flush;
    } else if (!so->wait) {
      PrintRelease(r, c->g.format, c->out);
    }
    if (so->wait) {
      c->code = Follow(c->client(), r.id(), absl::Seconds(so->wait_seconds), c->g.format, c->out, c->err);
    }
  });

  // status
  auto status_id = std::make_shared<std::string>();
  auto status_service = std::make_shared<std::string>();
  CLI::App* status = release->add_subcommand("status", "Show a release (or a service's latest)");
  status->add_option("id", *status_id, "Release ID");
  status->add_option("--service", *status_service, "The latest release of this service");
  status->callback([c, status_id, status_service] {
    hosting::v1::GetReleaseRequest req;
    req.set_id(*status_id);
    req.set_service(*status_service);
    hosting::v1::Release r;
    auto ctx = c->client().Context();
    grpc::Status st = c->client().releases().GetRelease(ctx.get(), req, &r);
    if (!st.ok()) {
      c->code = Fail(st, "release status", c->err);
      return;
    }
    PrintRelease(r, c->g.format, c->out);
  });

  // watch
  auto watch_id = std::make_shared<std::string>();
  auto watch_seconds = std::make_shared<double>(86400);
  CLI::App* watch = release->add_subcommand(
      "watch", "Follow a release's events until it ends; exits with its outcome");
  watch->add_option("id", *watch_id, "Release ID")->required();
  watch->add_option("--wait-timeout", *watch_seconds, "Give up after this many seconds");
  watch->callback([c, watch_id, watch_seconds] {
    c->code = Follow(c->client(), *watch_id, absl::Seconds(*watch_seconds), c->g.format, c->out, c->err);
  });

  // history
  auto hist_service = std::make_shared<std::string>();
  auto hist_limit = std::make_shared<int>(20);
  CLI::App* history = release->add_subcommand("history", "A service's releases, newest first");
  history->add_option("service", *hist_service, "Service name")->required();
  history->add_option("--limit", *hist_limit, "At most this many (20)");
  history->callback([c, hist_service, hist_limit] {
    hosting::v1::ListReleasesRequest req;
    req.set_service(*hist_service);
    req.set_limit(*hist_limit);
    hosting::v1::ListReleasesResponse resp;
    auto ctx = c->client().Context();
    grpc::Status st = c->client().releases().ListReleases(ctx.get(), req, &resp);
    if (!st.ok()) {
      c->code = Fail(st, "release history", c->err);
      return;
    }
    PrintReleases({resp.releases().begin(), resp.releases().end()}, c->g.format, c->out);
  });

  // promote, pause, resume, abort
  auto act_id = std::make_shared<std::string>();
  auto promote_full = std::make_shared<bool>(false);
  auto abort_reason = std::make_shared<std::string>();
  auto finish = [c, act_id](const grpc::Status& st, const hosting::v1::Release& r, const char* what) {
    if (!st.ok()) {
      c->code = Fail(st, absl::StrCat(what, " ", *act_id), c->err);
      return;
    }
    if (c->g.format == Format::kTable) {
      c->out << what << ": " << ReleaseSummary(r) << "\n";
    } else {
      PrintRelease(r, c->g.format, c->out);
    }
  };
  CLI::App* promote = release->add_subcommand(
      "promote", "Pass a manual gate (or skip the current step)");
  promote->add_option("id", *act_id, "Release ID")->required();
  promote->add_flag("--full", *promote_full, "Skip every remaining step: go to 100%");
  promote->callback([c, act_id, promote_full, finish] {
    hosting::v1::PromoteReleaseRequest req;
    req.set_id(*act_id);
    req.set_full(*promote_full);
    hosting::v1::Release r;
    auto ctx = c->client().Context();
    finish(c->client().releases().PromoteRelease(ctx.get(), req, &r), r, "promoted");
  });
  CLI::App* pause = release->add_subcommand("pause", "Hold a release where it is");
  pause->add_option("id", *act_id, "Release ID")->required();
  pause->callback([c, act_id, finish] {
    hosting::v1::PauseReleaseRequest req;
    req.set_id(*act_id);
    hosting::v1::Release r;
    auto ctx = c->client().Context();
    finish(c->client().releases().PauseRelease(ctx.get(), req, &r), r, "paused");
  });
  CLI::App* resume = release->add_subcommand("resume", "Continue a paused release");
  resume->add_option("id", *act_id, "Release ID")->required();
  resume->callback([c, act_id, finish] {
    hosting::v1::ResumeReleaseRequest req;
    req.set_id(*act_id);
    hosting::v1::Release r;
    auto ctx = c->client().Context();
    finish(c->client().releases().ResumeRelease(ctx.get(), req, &r), r, "resumed");
  });
  CLI::App* abort = release->add_subcommand(
      "abort", "Stop a release and return everything to the stable revision");
  abort->add_option("id", *act_id, "Release ID")->required();
  abort->add_option("--reason", *abort_reason, "Recorded with the abort");
  abort->callback([c, act_id, abort_reason, finish] {
    hosting::v1::AbortReleaseRequest req;
    req.set_id(*act_id);
    req.set_reason(*abort_reason);
    hosting::v1::Release r;
    auto ctx = c->client().Context();
    finish(c->client().releases().AbortRelease(ctx.get(), req, &r), r, "aborting");
  });

  // rollback
  auto rb_service = std::make_shared<std::string>();
  auto rb_revision = std::make_shared<int64_t>(0);
  auto rb_reason = std::make_shared<std::string>();
  auto rb_wait = std::make_shared<bool>(false);
  auto rb_wait_seconds = std::make_shared<double>(300);
  CLI::App* rollback = app.add_subcommand(
      "rollback", "Release a service back to its previous (or a given) kept revision");
  rollback->add_option("service", *rb_service, "Service name")->required();
  rollback->add_option("--to-revision", *rb_revision, "Revision to return to (default: previous)");
  rollback->add_option("--reason", *rb_reason, "Recorded with the rollback");
  rollback->add_flag("--wait", *rb_wait, "Follow the rollback and exit with its outcome");
  rollback->add_option("--wait-timeout", *rb_wait_seconds, "Seconds --wait follows (300)");
  rollback->callback([c, rb_service, rb_revision, rb_reason, rb_wait, rb_wait_seconds] {
    hosting::v1::RollbackServiceRequest req;
    req.set_service(*rb_service);
    req.set_to_revision(*rb_revision);
    req.set_reason(*rb_reason);
    hosting::v1::Release r;
    auto ctx = c->client().Context();
    grpc::Status st = c->client().releases().RollbackService(ctx.get(), req, &r);
    if (!st.ok()) {
      c->code = Fail(st, "rollback " + *rb_service, c->err);
      return;
    }
    if (c->g.format == Format::kTable) {
      c->out << "rollback " << r.id() << " started: revision " << r.from_revision() << " -> "
          << r.to_revision() << "\n" << std::flush;
    } else if (!*rb_wait) {
      PrintRelease(r, c->g.format, c->out);
    }
    if (*rb_wait) {
      c->code = Follow(c->client(), r.id(), absl::Seconds(*rb_wait_seconds), c->g.format, c->out, c->err);
    }
  });

  // release judge: the judge run again over an old release's stored samples.
  struct JudgeOptions {
    std::string id;
    double confidence = 0, latency_tolerance = 0, error_tolerance = 0;
    uint32_t min_samples = 0;
    std::vector<std::string> critical, dry_run;
  };
  auto jo = std::make_shared<JudgeOptions>();
  CLI::App* judge = release->add_subcommand(
      "judge", "Run the statistical judge again over a release's stored analysis samples");
  judge->add_option("id", jo->id, "Release ID")->required();
  judge->add_option("--confidence", jo->confidence, "Confidence 0.5..0.9999 (0.95)");
  judge->add_option("--min-samples", jo->min_samples, "Requests each side needs (200)");
  judge->add_option("--latency-tolerance", jo->latency_tolerance,
                    "Allowed relative increase of the median latency (0.1)");
  judge->add_option("--error-tolerance", jo->error_tolerance,
                    "Allowed increase of the 5xx ratio, absolute (0.005)");
  judge->add_option("--critical", jo->critical, "Metrics that veto (errors)")->delimiter(',');
  judge->add_option("--dry-run", jo->dry_run, "Metrics judged but not acting")->delimiter(',');
  judge->callback([c, jo, judge] {
    hosting::v1::JudgeReleaseRequest req;
    req.set_id(jo->id);
    // Any judge option replaces each analysis' own judge with these (the rest at defaults).
    for (const char* flag : {"--confidence", "--min-samples", "--latency-tolerance",
                             "--error-tolerance", "--critical", "--dry-run"}) {
      if (judge->count(flag) > 0) req.mutable_judge();
    }
    if (req.has_judge()) {
      hosting::v1::JudgeSpec* j = req.mutable_judge();
      j->set_confidence(jo->confidence);
      j->set_min_samples(jo->min_samples);
      j->set_latency_tolerance(jo->latency_tolerance);
      j->set_error_tolerance(jo->error_tolerance);
      for (const std::string& m : jo->critical) j->add_critical(m);
      for (const std::string& m : jo->dry_run) j->add_dry_run(m);
    }
    hosting::v1::JudgeReleaseResponse r;
    auto ctx = c->client().Context();
    grpc::Status st = c->client().releases().JudgeRelease(ctx.get(), req, &r);
    if (!st.ok()) {
      c->code = Fail(st, "release judge " + jo->id, c->err);
      return;
    }
    PrintJudged(r, c->g.format, c->out);
  });
}

}  // namespace hosting::hostctl
