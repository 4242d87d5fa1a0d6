#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "hosting/v1/service.pb.h"

namespace hosting::hostctl {

// Parses a ServiceSpec from YAML or JSON text (JSON is YAML). Fields map 1:1 onto the proto
// (snake_case or lowerCamelCase names; durations as "5s"). Unknown fields are errors that name
// the field, so a typo never goes unnoticed.
absl::StatusOr<hosting::v1::ServiceSpec> ParseServiceSpec(const std::string& text);

// Reads and parses a file; "-" reads standard input.
absl::StatusOr<hosting::v1::ServiceSpec> ReadServiceSpecFile(const std::string& path);

}  // namespace hosting::hostctl
