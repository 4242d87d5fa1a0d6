#pragma once

#include <functional>
#include <ostream>
#include <string>

#include "CLI/CLI.hpp"
#include "absl/status/statusor.h"
#include "hostctl/client.h"
#include "hosting/v1/autoscaling.pb.h"

namespace hosting::hostctl {

// Adds `autoscale set|get|status|delete` to `app`; commands set `code` to their exit code.
void AddAutoscaleCommands(CLI::App& app, Globals& g, const std::function<Client&()>& client,
                          int& code, std::ostream& out, std::ostream& err);

// Parses a rate limit: "<N>" tasks and/or "<P>%" (comma-separated) per period, as in "4/15s",
// "100%/1m" or "4,100%/15s".
absl::StatusOr<hosting::v1::RateLimit> ParseRateLimit(const std::string& text);

// Parses "<query>=<target>" for a PromQL metric (the last '=' splits).
absl::StatusOr<hosting::v1::MetricTarget> ParsePromqlMetric(const std::string& text);

}  // namespace hosting::hostctl
