// The Prometheus text parser hostagent runs on every task's /metrics body (a task is outside
// input: any image can answer anything), and the extraction of request counts and the latency
// histogram from what it parsed.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/strings/string_view.h"
#include "agent/prom_text.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  absl::string_view text(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<std::vector<hosting::agent::Sample>> samples =
      hosting::agent::ParsePrometheusText(text);
  if (!samples.ok()) return 0;
  hosting::agent::AppMetrics metrics = hosting::agent::ExtractAppMetrics(*samples);
  if (metrics.bucket_bounds.size() != metrics.bucket_counts.size()) {
    std::fprintf(stderr, "histogram with %zu bounds and %zu counts\n",
                 metrics.bucket_bounds.size(), metrics.bucket_counts.size());
    std::abort();
  }
  return 0;
}
