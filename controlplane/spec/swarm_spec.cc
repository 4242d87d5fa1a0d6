#include "controlplane/spec/swarm_spec.h"

#include <map>

#include <cmath>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"
#include "google/protobuf/util/time_util.h"

namespace hosting::controlplane {
namespace {

using google::protobuf::util::TimeUtil;

int64_t Nanos(const google::protobuf::Duration& d) { return TimeUtil::DurationToNanoseconds(d); }

uint64_t Fnv1a64(absl::string_view data) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : data) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

}  // namespace

std::string RevisionServiceName(absl::string_view service, int64_t revision) {
  return absl::StrCat(service, "-r", revision);
}

std::optional<RevisionName> ParseRevisionServiceName(absl::string_view swarm_name) {
  size_t pos = swarm_name.rfind("-r");
  if (pos == absl::string_view::npos || pos == 0) return std::nullopt;
  absl::string_view digits = swarm_name.substr(pos + 2);
  int64_t revision = 0;
  if (digits.empty() || !absl::SimpleAtoi(digits, &revision) || revision <= 0) return std::nullopt;
  for (char c : digits) {
    if (!absl::ascii_isdigit(c)) return std::nullopt;
  }
  return RevisionName{std::string(swarm_name.substr(0, pos)), revision};
}

std::string TemplateHash(const hosting::v1::ServiceSpec& spec) {
  hosting::v1::ServiceSpec t = spec;
  t.clear_replicas();
  t.clear_release();
  t.clear_autoscaling();
  std::string bytes;
  {
    google::protobuf::io::StringOutputStream out(&bytes);
    google::protobuf::io::CodedOutputStream coded(&out);
    coded.SetSerializationDeterministic(true);
    t.SerializeToCodedStream(&coded);
  }
  return absl::StrCat(absl::Hex(Fnv1a64(bytes), absl::kZeroPad16));
}

nlohmann::json BuildSwarmSpec(const hosting::v1::ServiceSpec& spec, int64_t revision,
                              int32_t replicas, absl::string_view network,
                              absl::string_view controller,
                              const std::map<std::string, std::string>& secret_ids) {
  using json = nlohmann::json;
  json labels = json::object();
  for (const auto& [k, v] : spec.labels()) labels[k] = v;
  json container_labels = labels;
  labels[kLabelService] = spec.name();
  labels[kLabelRevision] = std::to_string(revision);
  labels[kLabelSpecHash] = TemplateHash(spec);
  labels[kLabelController] = std::string(controller);
  container_labels[kLabelService] = spec.name();
  container_labels[kLabelRevision] = std::to_string(revision);

  json env = json::array();
  for (const auto& [k, v] : spec.env()) env.push_back(absl::StrCat(k, "=", v));
  // Lets the application report which revision it is (e.g. in /api/version).
  env.push_back(absl::StrCat("HOSTING_SERVICE=", spec.name()));
  env.push_back(absl::StrCat("HOSTING_REVISION=", revision));

  json container = {{"Image", spec.image()}, {"Env", env}, {"Labels", container_labels}};
  if (spec.command_size() > 0) {
    container["Command"] = json(std::vector<std::string>(spec.command().begin(), spec.command().end()));
  }
  if (spec.args_size() > 0) {
    container["Args"] = json(std::vector<std::string>(spec.args().begin(), spec.args().end()));
  }
  if (spec.has_stop_grace_period()) container["StopGracePeriod"] = Nanos(spec.stop_grace_period());
  if (spec.secrets_size() > 0) {
    json secrets = json::array();
    for (const hosting::v1::SecretMount& m : spec.secrets()) {
      auto id = secret_ids.find(m.name());
      secrets.push_back(
          {{"SecretID", id == secret_ids.end() ? std::string() : id->second},
           {"SecretName", m.name()},
           {"File",
            {{"Name", m.target().empty() ? m.name() : m.target()},
             {"UID", "0"},
             {"GID", "0"},
             {"Mode", 0444}}}});
    }
    container["Secrets"] = secrets;
  }
  if (spec.health().command_size() > 0) {
    const auto& h = spec.health();
    json test = json::array({"CMD"});
    for (const auto& c : h.command()) test.push_back(c);
    container["Healthcheck"] = {{"Test", test},
                                {"Interval", Nanos(h.interval())},
                                {"Timeout", Nanos(h.timeout())},
                                {"Retries", h.unhealthy_threshold()},
                                {"StartPeriod", Nanos(h.start_period())}};
  }

  json resources = json::object();
  const auto& r = spec.resources();
  json limits = json::object();
  if (r.cpu_limit() > 0) limits["NanoCPUs"] = static_cast<int64_t>(std::llround(r.cpu_limit() * 1e9));
  if (r.memory_limit_bytes() > 0) limits["MemoryBytes"] = r.memory_limit_bytes();
  if (r.pids_limit() > 0) limits["Pids"] = r.pids_limit();
  if (!limits.empty()) resources["Limits"] = limits;
  json reservations = json::object();
  if (r.cpu_reservation() > 0) {
    reservations["NanoCPUs"] = static_cast<int64_t>(std::llround(r.cpu_reservation() * 1e9));
  }
  if (r.memory_reservation_bytes() > 0) reservations["MemoryBytes"] = r.memory_reservation_bytes();
  if (!reservations.empty()) resources["Reservations"] = reservations;

  json networks = json::array();
  // The service name is an alias on hosting's network, so "<service>" resolves to the tasks
  // of every revision and "tasks.<service>-r<N>" to one revision's.
  networks.push_back({{"Target", std::string(network)}, {"Aliases", json::array({spec.name()})}});
  for (const auto& n : spec.networks()) {
    if (n != network) networks.push_back({{"Target", n}});
  }

  json task = {{"ContainerSpec", container},
               {"RestartPolicy", {{"Condition", "any"}, {"Delay", int64_t{1'000'000'000}}}},
               {"Networks", networks}};
  if (!resources.empty()) task["Resources"] = resources;
  if (spec.constraints_size() > 0) {
    task["Placement"] = {{"Constraints", std::vector<std::string>(spec.constraints().begin(),
                                                                   spec.constraints().end())}};
  }

  json ports = json::array();
  for (const auto& p : spec.ports()) {
    if (p.published_port() == 0) continue;
    ports.push_back({{"Protocol", p.protocol().empty() ? "tcp" : p.protocol()},
                     {"TargetPort", p.container_port()},
                     {"PublishedPort", p.published_port()},
                     {"PublishMode", "host"}});
  }
  json endpoint = {{"Mode", "dnsrr"}};
  if (!ports.empty()) endpoint["Ports"] = ports;

  return {{"Name", RevisionServiceName(spec.name(), revision)},
          {"Labels", labels},
          {"TaskTemplate", task},
          {"Mode", {{"Replicated", {{"Replicas", replicas}}}}},
          // Swarm's own rollout is used only when hostd rewrites a revision in place (drift
          // repair); releases move between revision services instead.
          {"UpdateConfig",
           {{"Parallelism", 1}, {"Order", "start-first"}, {"FailureAction", "pause"}}},
          {"EndpointSpec", endpoint}};
}

}  // namespace hosting::controlplane
