#include "controlplane/store/record_codec.h"

#include "absl/strings/str_cat.h"
#include "common/fault.h"
#include "google/protobuf/util/json_util.h"

namespace hosting::controlplane {

absl::StatusOr<std::string> SpecToJson(const hosting::v1::ServiceSpec& spec) {
  std::string out;
  google::protobuf::util::JsonPrintOptions opts;
  opts.preserve_proto_field_names = true;
  auto st = google::protobuf::util::MessageToJsonString(spec, &out, opts);
  if (!st.ok()) return absl::InternalError(absl::StrCat("encoding spec: ", st.ToString()));
  return out;
}

absl::StatusOr<hosting::v1::ServiceSpec> SpecFromJson(absl::string_view json) {
  hosting::v1::ServiceSpec spec;
  google::protobuf::util::JsonParseOptions opts;
  opts.ignore_unknown_fields = true;  // a newer hostd may have written fields we do not know
  auto st = google::protobuf::util::JsonStringToMessage(std::string(json), &spec, opts);
  if (!st.ok()) return absl::DataLossError(absl::StrCat("stored spec unreadable: ", st.ToString()));
  return spec;
}

std::string EncodeAutoscaling(const ServiceRecord& r) {
  return r.autoscaling.has_value() ? r.autoscaling->SerializeAsString() : std::string();
}

absl::Status DecodeServiceBlobs(absl::string_view rollout, absl::string_view autoscaling,
                                ServiceRecord& r) {
  if (!r.rollout.ParseFromArray(rollout.data(), static_cast<int>(rollout.size()))) {
    return absl::DataLossError(absl::StrCat("stored rollout of '", r.spec.name(), "' unreadable"));
  }
  r.autoscaling.reset();
  if (!autoscaling.empty()) {
    hosting::v1::AutoscalingPolicy p;
    if (!p.ParseFromArray(autoscaling.data(), static_cast<int>(autoscaling.size()))) {
      return absl::DataLossError(
          absl::StrCat("stored autoscaling policy of '", r.spec.name(), "' unreadable"));
    }
    r.autoscaling = std::move(p);
  }
  return absl::OkStatus();
}

bool IsTerminalRelease(const hosting::internal::ReleaseRecord& r) {
  return r.release().state() >= hosting::v1::RELEASE_STATE_SUCCEEDED;
}

absl::StatusOr<RunRecord> ParseRun(absl::string_view body, int64_t version) {
  RunRecord r;
  if (!r.run.ParseFromArray(body.data(), static_cast<int>(body.size()))) return absl::DataLossError("stored runbook run unreadable");
  r.version = version;
  return r;
}

absl::Status RunInProgress(absl::string_view id, const hosting::v1::RunbookRun& run) {
  return absl::FailedPreconditionError(absl::StrCat(
      "run ", id, " of runbook '", run.runbook(), "'",
      run.target().empty() ? "" : absl::StrCat(" on '", run.target(), "'"),
      " has not ended; wait for it, or cancel it first (hostctl runbook cancel ", id, ")"));
}

absl::Status RunNotFound(absl::string_view id) {
  return absl::NotFoundError(absl::StrCat("runbook run '", id, "' not found"));
}

absl::Status RunChangedConcurrently(absl::string_view id, int64_t stored, int64_t expected) {
  return absl::AbortedError(absl::StrCat("run '", id, "' was changed concurrently: stored version ",
                                         stored, ", expected ", expected));
}

absl::Status ServiceChangedConcurrently(absl::string_view name, int64_t stored,
                                        int64_t expected) {
  return absl::AbortedError(absl::StrCat("service '", name, "' was changed concurrently: stored ",
                                         "generation ", stored, ", expected ", expected));
}

absl::Status FenceHolds(const Store::Lease& lease, absl::string_view holder, int64_t epoch) {
  if (lease.holder == holder && lease.epoch == epoch && lease.expires_at > lease.now) {
    return absl::OkStatus();
  }
  const bool live = lease.expires_at > lease.now;
  // Holders are "host:port#nonce"; people want the address.
  auto address = [](absl::string_view h) { return h.substr(0, h.rfind('#')); };
  if (epoch <= 0) {
    return WithFaultSource(absl::UnavailableError(absl::StrCat(
        "this hostd (", address(holder), ") is not the leader",
        live && !lease.holder.empty() ? absl::StrCat("; the leader is ", address(lease.holder))
                                      : std::string("; no leader holds the lease right now"),
        ": nothing was written")), FaultSource::kFence);
  }
  return WithFaultSource(absl::UnavailableError(absl::StrCat(
      "fenced: this hostd (", address(holder), ") led at epoch ", epoch, " but the lease is now ",
      lease.holder.empty() ? "free" : absl::StrCat("held by ", address(lease.holder)),
      " at epoch ", lease.epoch, live ? "" : " (lapsed)",
      "; nothing was written")), FaultSource::kFence);
}

}  // namespace hosting::controlplane
