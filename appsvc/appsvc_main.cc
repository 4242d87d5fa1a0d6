// appsvc: the application service. `appsvc [serve]`, `appsvc migrate`, `appsvc healthcheck`,
// `appsvc version`. Configuration comes from the environment (docs/appsvc.md).
#include <csignal>
#include <cstdio>
#include <cstring>

#include "appsvc/app.h"
#include "appsvc/config.h"
#include "common/log.h"
#include "common/signals.h"

int main(int argc, char** argv) {
  const std::string command = argc > 1 ? argv[1] : "serve";
  absl::StatusOr<hosting::appsvc::Config> config = hosting::appsvc::ConfigFromEnv();
  if (!config.ok()) {
    hosting::LogError("appsvc: configuration", {{"error", config.status().ToString()}});
    return 2;
  }
  if (command == "version") {
    std::printf("appsvc %s (%s)\n", HOSTING_APPSVC_VERSION, HOSTING_GIT_REVISION);
    return 0;
  }
  if (command == "healthcheck") return hosting::appsvc::ProbeHealth(config->port) ? 0 : 1;
  if (command == "migrate") {
    absl::StatusOr<std::vector<int>> applied = hosting::appsvc::Migrate(*config);
    if (!applied.ok()) {
      hosting::LogError("migrate failed", {{"error", applied.status().ToString()}});
      return 1;
    }
    std::printf("migrations applied: %zu\n", applied->size());
    return 0;
  }
  if (command != "serve") {
    std::fprintf(stderr, "usage: appsvc [serve|migrate|healthcheck|version]\n");
    return 2;
  }

  hosting::BlockStopSignals();

  hosting::appsvc::App app(*config);
  if (absl::Status s = app.Start(); !s.ok()) {
    hosting::LogError("appsvc failed to start", {{"error", s.ToString()}});
    return 1;
  }
  const int sig = hosting::WaitForStopSignal();
  hosting::LogInfo("signal received", {{"signal", strsignal(sig)}});
  return app.Drain() ? 0 : 3;
}
