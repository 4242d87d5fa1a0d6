#include "agent/prom_text.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace hosting::agent {
namespace {

bool IsNameChar(char c, bool first) {
  return absl::ascii_isalpha(c) || c == '_' || c == ':' || (!first && absl::ascii_isdigit(c));
}

bool ParseValue(absl::string_view s, double* out) {
  if (s == "+Inf" || s == "Inf") {
    *out = INFINITY;
    return true;
  }
  if (s == "-Inf") {
    *out = -INFINITY;
    return true;
  }
  if (s == "NaN") {
    *out = NAN;
    return true;
  }
  return absl::SimpleAtod(s, out);
}

// Parses `{a="b",c="d"}` starting at s[*pos] == '{'.
bool ParseLabels(absl::string_view s, size_t* pos, std::map<std::string, std::string>* labels) {
  size_t i = *pos + 1;
  while (true) {
    while (i < s.size() && s[i] == ' ') ++i;
    if (i < s.size() && s[i] == '}') {
      *pos = i + 1;
      return true;
    }
    size_t start = i;
    while (i < s.size() && IsNameChar(s[i], i == start)) ++i;
    if (i == start || i >= s.size() || s[i] != '=') return false;
    std::string key(s.substr(start, i - start));
    ++i;
    if (i >= s.size() || s[i] != '"') return false;
    ++i;
    std::string value;
    while (i < s.size() && s[i] != '"') {
      if (s[i] == '\\' && i + 1 < s.size()) {
        char e = s[i + 1];
        value.push_back(e == 'n' ? '\n' : e);
        i += 2;
      } else {
        value.push_back(s[i++]);
      }
    }
    if (i >= s.size()) return false;
    ++i;  // closing quote
    (*labels)[key] = std::move(value);
    while (i < s.size() && s[i] == ' ') ++i;
    if (i < s.size() && s[i] == ',') {
      ++i;
      continue;
    }
    if (i < s.size() && s[i] == '}') {
      *pos = i + 1;
      return true;
    }
    return false;
  }
}

}  // namespace

absl::StatusOr<std::vector<Sample>> ParsePrometheusText(absl::string_view text) {
  std::vector<Sample> out;
  int line_no = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_no;
    line = absl::StripAsciiWhitespace(line);
    if (line.empty() || line[0] == '#') continue;
    Sample s;
    size_t i = 0;
    while (i < line.size() && IsNameChar(line[i], i == 0)) ++i;
    if (i == 0) {
      return absl::InvalidArgumentError(absl::StrCat("metrics line ", line_no, ": no metric name"));
    }
    s.name = std::string(line.substr(0, i));
    if (i < line.size() && line[i] == '{' && !ParseLabels(line, &i, &s.labels)) {
      return absl::InvalidArgumentError(absl::StrCat("metrics line ", line_no, ": malformed labels"));
    }
    std::vector<absl::string_view> rest =
        absl::StrSplit(line.substr(i), ' ', absl::SkipWhitespace());
    // A value, and optionally a timestamp.
    if (rest.empty() || rest.size() > 2 || !ParseValue(rest[0], &s.value)) {
      return absl::InvalidArgumentError(absl::StrCat("metrics line ", line_no, ": bad value"));
    }
    out.push_back(std::move(s));
  }
  return out;
}

namespace {

// Health, readiness and metrics endpoints: probes and scrapes, not the application's traffic.
// Counting them would put a floor under every rate (one probe a second per prober) and dilute
// error ratios with 200s.
bool IsOperationalRoute(const Sample& s) {
  for (const char* key : {"route", "handler", "path"}) {
    auto it = s.labels.find(key);
    if (it == s.labels.end()) continue;
    for (const char* r : {"/health", "/healthz", "/ready", "/readyz", "/livez", "/metrics"}) {
      if (it->second == r) return true;
    }
  }
  return false;
}

}  // namespace

AppMetrics ExtractAppMetrics(const std::vector<Sample>& samples) {
  AppMetrics m;
  std::map<double, double> buckets;
  for (const Sample& s : samples) {
    if (IsOperationalRoute(s)) continue;
    if (s.name == "http_requests_total") {
      m.has_requests = true;
      m.requests_total += s.value;
      auto it = s.labels.find("status");
      if (it == s.labels.end()) it = s.labels.find("status_code");
      if (it != s.labels.end() && !it->second.empty() && it->second[0] == '5') {
        m.errors_total += s.value;
      }
    } else if (s.name == "http_request_duration_seconds_bucket") {
      auto le = s.labels.find("le");
      double bound;
      if (le != s.labels.end() && ParseValue(le->second, &bound)) {
        m.has_histogram = true;
        buckets[bound] += s.value;  // summed over routes and methods
      }
    } else if (s.name == "http_requests_in_flight") {
      m.in_flight += s.value;
    }
  }
  for (const auto& [bound, count] : buckets) {
    m.bucket_bounds.push_back(bound);
    m.bucket_counts.push_back(count);
  }
  return m;
}

}  // namespace hosting::agent
