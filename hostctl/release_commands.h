#pragma once

#include <functional>
#include <ostream>
#include <string>

#include "CLI/CLI.hpp"
#include "absl/status/statusor.h"
#include "hostctl/client.h"
#include "hosting/v1/service.pb.h"

namespace hosting::hostctl {

// Adds `release start|status|watch|history|promote|pause|resume|abort` and `rollback` to `app`.
// Commands set `code` to their exit code (see ExitCode; a waited-for release maps its final
// state to 0, 10, 11, 12 or 13).
void AddReleaseCommands(CLI::App& app, Globals& g, const std::function<Client&()>& client,
                        int& code, std::ostream& out, std::ostream& err);

// Parses canary steps: comma-separated "10" or "10%" (set weight), "pause" (wait for
// promotion), "pause:30s", "analysis" or "analysis:1m".
absl::StatusOr<std::vector<hosting::v1::CanaryStep>> ParseCanarySteps(const std::string& text);

// Parses "3" (a count) or "25%" (a percentage).
absl::StatusOr<hosting::v1::IntOrPercent> ParseIntOrPercent(const std::string& text);

// The exit code for a release's final state.
int ExitCodeForRelease(hosting::v1::ReleaseState state);

}  // namespace hosting::hostctl
