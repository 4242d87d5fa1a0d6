#pragma once

namespace hosting {

// absl::ParseCommandLine for daemons whose flags are documented with dashes (--docker-host):
// absl names flags with underscores, so dashes in flag names are turned into underscores
// first. Values are left alone.
void ParseFlags(int argc, char** argv);

}  // namespace hosting
