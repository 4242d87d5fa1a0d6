// HAProxy's runtime API answers hostd reads to route traffic: "show servers state" and the
// "show stat" CSV, and the answers to commands that change something. The first line of the input names the backend; the rest is split at a line
// "--" into the two answers.
#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"
#include "controlplane/traffic/load_balancer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using hosting::controlplane::HaproxyLoadBalancer;
  absl::string_view input(reinterpret_cast<const char*>(data), size);
  size_t eol = input.find('\n');
  std::string backend(input.substr(0, eol));
  absl::string_view rest = eol == absl::string_view::npos ? "" : input.substr(eol + 1);
  size_t cut = rest.find("\n--\n");
  absl::string_view state = rest.substr(0, cut);
  absl::string_view stat = cut == absl::string_view::npos ? "" : rest.substr(cut + 4);
  std::vector<hosting::controlplane::LbServer> servers =
      HaproxyLoadBalancer::ParseServersState(backend, state);
  HaproxyLoadBalancer::AddStats(backend, stat, servers);
  for (const auto& server : servers) HaproxyLoadBalancer::AddServerCommand(backend, server);
  HaproxyLoadBalancer::CheckAnswer(rest, "set server web/a state drain").IgnoreError();
  return 0;
}
