// Service specs through both doors: hostctl's spec file text (YAML, of which JSON is a part)
// and hostd's ApplyService request as protobuf bytes. A spec that parses is validated; one that
// validates gets its defaults and the Swarm spec hostd would create from it. The first byte
// picks the door.
#include <cstdint>
#include <string>

#include "controlplane/spec/swarm_spec.h"
#include "controlplane/spec/validation.h"
#include "google/protobuf/stubs/logging.h"
#include "hostctl/spec_file.h"
#include "hosting/v1/service.pb.h"

namespace {

using ::hosting::controlplane::ApplyAutoscalingDefaults;
using ::hosting::controlplane::ApplySpecDefaults;
using ::hosting::controlplane::BuildSwarmSpec;
using ::hosting::controlplane::FieldViolation;
using ::hosting::controlplane::InvalidArgumentWithViolations;
using ::hosting::controlplane::TemplateHash;
using ::hosting::controlplane::ValidateAutoscalingPolicy;
using ::hosting::controlplane::ValidateReleasePolicy;
using ::hosting::controlplane::ValidateServiceSpec;

void Check(hosting::v1::ServiceSpec spec) {
  std::vector<FieldViolation> violations = ValidateServiceSpec(spec);
  absl::Status status = InvalidArgumentWithViolations(violations);
  if (!status.ok()) return;
  if (spec.has_release()) ValidateReleasePolicy(spec.release(), "spec.release");
  if (spec.has_autoscaling()) {
    hosting::v1::AutoscalingPolicy policy = spec.autoscaling();
    if (ValidateAutoscalingPolicy(policy, "spec.autoscaling").empty()) {
      ApplyAutoscalingDefaults(policy);
    }
  }
  ApplySpecDefaults(spec);
  TemplateHash(spec);
  BuildSwarmSpec(spec, 1, spec.replicas(), "hosting", "hostd").dump();
}

}  // namespace

// protobuf logs every string that is not UTF-8 as an error: at thousands of inputs a second
// that is most of the run's time.
extern "C" int LLVMFuzzerInitialize(int* /*argc*/, char*** /*argv*/) {
  google::protobuf::SetLogHandler(nullptr);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  std::string rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  if (data[0] % 2 == 0) {
    absl::StatusOr<hosting::v1::ServiceSpec> spec = hosting::hostctl::ParseServiceSpec(rest);
    if (spec.ok()) Check(*std::move(spec));
  } else {
    hosting::v1::ServiceSpec spec;
    if (spec.ParseFromString(rest)) Check(std::move(spec));
  }
  return 0;
}
