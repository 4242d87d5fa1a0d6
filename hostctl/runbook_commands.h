#pragma once

#include <functional>
#include <map>
#include <ostream>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/status/statusor.h"
#include "hostctl/client.h"
#include "hosting/v1/runbooks.pb.h"

namespace hosting::hostctl {

// Adds `runbook list|run|status|watch|cancel|approve|runs` to `app`. A run waited for
// (run --wait, watch) exits 0 when it succeeded, 15 when it failed, 16 when it was cancelled,
// 7 when the wait ran out (the run goes on).
void AddRunbookCommands(CLI::App& app, Globals& g, const std::function<Client&()>& client,
                        int& code, std::ostream& out, std::ostream& err);

// "-p key=value" pairs; INVALID_ARGUMENT naming one without '=' or with an empty key, or a key
// given twice.
absl::StatusOr<std::map<std::string, std::string>> ParseRunParameters(
    const std::vector<std::string>& pairs);

// The exit code for a run's final state.
int ExitCodeForRun(hosting::v1::RunState state);

// A run as people read it: the header, each step with its state, attempts, detail and output,
// then the outputs.
void PrintRun(const hosting::v1::RunbookRun& run, std::ostream& out);

}  // namespace hosting::hostctl
