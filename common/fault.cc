#include "common/fault.h"

#include <optional>

#include "absl/strings/cord.h"

namespace hosting {
namespace {

constexpr absl::string_view kPayloadUrl = "type.hosting.dev/hosting.FaultSource";

}  // namespace

absl::Status WithFaultSource(absl::Status status, FaultSource source) {
  if (status.ok() || status.GetPayload(kPayloadUrl).has_value()) return status;
  status.SetPayload(kPayloadUrl, absl::Cord(FaultSourceName(source)));
  return status;
}

FaultSource FaultSourceOf(const absl::Status& status) {
  auto payload = status.GetPayload(kPayloadUrl);
  if (!payload.has_value()) return FaultSource::kUnknown;
  if (*payload == "store") return FaultSource::kStore;
  if (*payload == "fence") return FaultSource::kFence;
  if (*payload == "docker") return FaultSource::kDocker;
  return FaultSource::kUnknown;
}

const char* FaultSourceName(FaultSource source) {
  switch (source) {
    case FaultSource::kStore:
      return "store";
    case FaultSource::kFence:
      return "fence";
    case FaultSource::kDocker:
      return "docker";
    default:
      return "unknown";
  }
}

}  // namespace hosting
