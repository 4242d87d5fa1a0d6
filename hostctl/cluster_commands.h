#pragma once

#include <functional>
#include <ostream>

#include "CLI/CLI.hpp"
#include "hostctl/client.h"

namespace hosting::hostctl {

// Adds `events`, `logs`, `task restart`, `image pull`, `nodes` and `node drain|activate` to
// `app`; commands set `code` to their exit code (see exit_codes.h).
void AddClusterCommands(CLI::App& app, Globals& g, const std::function<Client&()>& client,
                        int& code, std::ostream& out, std::ostream& err);

}  // namespace hosting::hostctl
