#pragma once

#include <iosfwd>

#include "hostctl/exit_codes.h"

namespace hosting::hostctl {


// Runs hostctl with the given arguments; returns the process exit code.
int Run(int argc, char** argv, std::ostream& out, std::ostream& err);

}  // namespace hosting::hostctl
