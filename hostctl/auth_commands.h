#pragma once

#include <functional>
#include <ostream>

#include "CLI/CLI.hpp"
#include "hostctl/client.h"

namespace hosting::hostctl {

// Adds `token create|list|revoke` and `whoami` to `app`; commands set `code` to their exit code.
void AddAuthCommands(CLI::App& app, Globals& g, const std::function<Client&()>& client,
                     int& code, std::ostream& out, std::ostream& err);

}  // namespace hosting::hostctl
