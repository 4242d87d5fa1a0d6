#include "controlplane/runbook/migrate_runbook.h"

#include <map>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace hosting::controlplane {

hosting::v1::Runbook MigrateRunbook::Describe() const {
  hosting::v1::Runbook r;
  r.set_name("migrate");
  r.set_description(
      "A new version's database migration, then its release: a verified backup, the new "
      "image's `migrate` as a one-off Swarm job with the service's env and secrets, then a "
      "release of the new image. A failing migration releases nothing: the current version "
      "keeps serving.");
  r.set_target_parameter("service");
  AddRunbookParameter(r, "service", hosting::v1::PARAMETER_TYPE_SERVICE,
                      "the service whose database is migrated", true);
  AddRunbookParameter(r, "image", hosting::v1::PARAMETER_TYPE_STRING,
                      "the new version's image (it runs `migrate`, then is released)", true);
  AddRunbookParameter(r, "backup", hosting::v1::PARAMETER_TYPE_BOOL,
                      "take a verified backup first", false, "true");
  AddRunbookParameter(r, "timeout", hosting::v1::PARAMETER_TYPE_DURATION,
                      "how long the migration may run", false, "10m");
  AddRunbookParameter(r, "release_timeout", hosting::v1::PARAMETER_TYPE_DURATION,
                      "how long the release may take", false, "30m");
  for (const char* s : {"backup", "migrate", "release"}) r.add_steps(s);
  return r;
}

absl::StatusOr<std::vector<StepPlan>> MigrateRunbook::Plan(const Parameters& params) {
  const std::string service = params.String("service");
  const std::string image = params.String("image");
  if (image.empty()) return absl::InvalidArgumentError("parameters.image: required");
  ASSIGN_OR_RETURN(hosting::v1::ServiceSpec spec, cluster_.ServiceSpec(service));
  if (spec.image() == image) {
    return absl::InvalidArgumentError(
        absl::StrCat("parameters.image: service ", service, " runs ", image, " already"));
  }
  const bool backup = params.Bool("backup");
  if (backup && (backup_.repository.empty() || backup_.database.empty())) {
    return absl::FailedPreconditionError(
        "this hostd has no --backup-database (or --backup-repository): the backup before the "
        "migration cannot run; configure it, or pass -p backup=false to migrate without one");
  }
  std::map<std::string, std::string> args = {
      {"service", service}, {"image", image}, {"from_image", spec.image()}};
  std::vector<StepPlan> steps;
  if (backup) {
    StepPlan b;
    b.name = "backup";
    args["backup_id"] = BackupIdAt(clock_.Now());
    b.detail = absl::StrCat("verified base backup ", args["backup_id"], " into ",
                            backup_.repository);
    b.timeout = absl::Hours(1);
    b.max_attempts = 2;
    b.backoff = absl::Seconds(10);
    b.resumable = true;
    steps.push_back(b);
  }
  StepPlan m;
  m.name = "migrate";
  m.detail = absl::StrCat("`migrate` of ", image, " as a one-off Swarm job with ", service,
                          "'s env and secrets");
  m.timeout = params.Duration("timeout") + absl::Minutes(1);
  m.resumable = true;  // migrations are recorded by version: a second run applies what is left
  steps.push_back(m);
  StepPlan rel;
  rel.name = "release";
  rel.detail = absl::StrCat("release ", service, ": ", spec.image(), " -> ", image,
                            " under its release policy");
  rel.timeout = params.Duration("release_timeout");
  steps.push_back(rel);  // not resumable: a restarted hostd does not start a second release
  args["timeout"] = params.String("timeout");
  for (StepPlan& s : steps) s.arguments = args;
  return steps;
}

absl::StatusOr<std::string> MigrateRunbook::Execute(StepContext& ctx) {
  const std::string& step = ctx.step().name();
  const std::string service = ctx.Argument("service");
  const std::string image = ctx.Argument("image");
  auto cancelled = [&ctx] { return ctx.cancelled(); };
  if (step == "backup") {
    const std::string id = ctx.Argument("backup_id");
    ASSIGN_OR_RETURN(std::string done,
                     TakeVerifiedBackup(backup_, tools_, clock_, id, ctx.run().id(),
                                        ctx.deadline() - clock_.Now(), cancelled));
    ctx.SetOutput("backup_id", id);
    return done;
  }
  if (step == "migrate") {
    absl::Duration timeout = absl::Minutes(10);
    (void)absl::ParseDuration(ctx.Argument("timeout"), &timeout);
    const std::string job = absl::StrCat(service, "-", ctx.run().id());
    absl::StatusOr<JobResult> r =
        cluster_.RunJob(service, job, image, {"migrate"}, timeout, cancelled);
    if (!r.ok()) {
      return absl::Status(r.status().code(),
                          absl::StrCat("the migration job did not finish: ", r.status().message(),
                                       "; nothing was released: ", service, " still runs ",
                                       ctx.Argument("from_image")));
    }
    const std::string logs(absl::StripAsciiWhitespace(r->logs));
    if (!r->succeeded) {
      return absl::AbortedError(absl::StrCat(
          "the migration failed (", r->state, ": ", r->message, "); nothing was released: ",
          service, " still runs ", ctx.Argument("from_image"), ". The job printed:\n", logs));
    }
    ctx.SetOutput("migrated_by", image);
    return absl::StrCat("`migrate` of ", image, " completed", logs.empty() ? "" : ":\n", logs);
  }
  if (step == "release") {
    ASSIGN_OR_RETURN(hosting::v1::Release release,
                     cluster_.StartRelease(service, image,
                                           absl::StrCat("runbook ", ctx.run().id(),
                                                        " after the migration")));
    ctx.SetOutput("release", release.id());
    if (absl::Status ended = WaitForRelease(ctx, cluster_, release.id()); !ended.ok()) {
      return absl::Status(ended.code(),
                          absl::StrCat(ended.message(), " (the schema stays migrated: the "
                                                        "migration must suit the old version too)"));
    }
    return absl::StrCat("release ", release.id(), " succeeded: ", service, " runs ", image);
  }
  return absl::InvalidArgumentError(absl::StrCat("migrate has no step '", step, "'"));
}

}  // namespace hosting::controlplane
