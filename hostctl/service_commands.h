#pragma once

#include <functional>
#include <ostream>

#include "CLI/CLI.hpp"
#include "hostctl/client.h"

namespace hosting::hostctl {

// Adds `service apply|get|list|delete|scale|status` to `app`; commands set `code` to their
// exit code (see exit_codes.h).
void AddServiceCommands(CLI::App& app, Globals& g, const std::function<Client&()>& client,
                        int& code, std::ostream& out, std::ostream& err);

}  // namespace hosting::hostctl
