// What Docker's API sends hostd: the /events stream cut into chunks wherever the network cuts
// it (the chunk sizes come from the input), each line decoded as an event; and the JSON of
// services, tasks, nodes and /info decoded by the same functions the client uses.
#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"
#include "common/docker_client.h"
#include "common/line_splitter.h"
#include "nlohmann/json.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  using ::hosting::docker::ParseEngineInfo;
  using ::hosting::docker::ParseEvent;
  using ::hosting::docker::ParseNode;
  using ::hosting::docker::ParseService;
  using ::hosting::docker::ParseTask;
  absl::string_view bytes(reinterpret_cast<const char*>(data) + 1, size - 1);

  // The events stream, in chunks of 1 to 16 bytes (the first byte seeds the sizes) with a
  // small line limit so the overlong-line path runs too.
  hosting::LineSplitter splitter([](absl::string_view line) { ParseEvent(line).status().IgnoreError(); },
                                 /*max_line_bytes=*/4096);
  uint32_t seed = data[0];
  for (size_t at = 0; at < bytes.size();) {
    seed = seed * 1103515245u + 12345u;
    size_t n = std::min<size_t>(1 + (seed >> 16) % 16, bytes.size() - at);
    splitter.Feed(bytes.substr(at, n));
    at += n;
  }

  // The same bytes as an API answer: a list (services, tasks, nodes) or one object.
  nlohmann::json j = nlohmann::json::parse(bytes, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return 0;
  if (j.is_array()) {
    for (const auto& item : j) {
      ParseService(item);
      ParseTask(item);
      ParseNode(item);
    }
  } else {
    ParseService(j);
    ParseTask(j);
    ParseNode(j);
    ParseEngineInfo(j);
  }
  return 0;
}
