#include "controlplane/query/loki.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "controlplane/query/http_get.h"
#include "nlohmann/json.hpp"

namespace hosting::controlplane {

absl::StatusOr<std::string> LokiLogStore::Selector(const std::vector<std::string>& container_ids) {
  std::vector<std::string> ids;
  for (const std::string& id : container_ids) {
    if (id.size() < 12 || id.find_first_not_of("0123456789abcdef") != std::string::npos) {
      return absl::InvalidArgumentError(absl::StrCat("'", id, "' is not a container ID"));
    }
    ids.push_back(id.substr(0, 12));
  }
  if (ids.empty()) return absl::InvalidArgumentError("no container to read");
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  return absl::StrCat("{job=\"docker\", container_id=~\"", absl::StrJoin(ids, "|"), "\"}");
}

absl::StatusOr<std::vector<StoredLogLine>> LokiLogStore::ParseStreams(const std::string& body) {
  nlohmann::json j = nlohmann::json::parse(body, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    return absl::InternalError(absl::StrCat("Loki answered something that is not JSON: ",
                                            body.substr(0, 200)));
  }
  if (j.value("status", "") != "success" || !j.contains("data") || !j["data"].is_object()) {
    return absl::InvalidArgumentError(absl::StrCat("Loki: ", j.value("error", body.substr(0, 200))));
  }
  const nlohmann::json& data = j["data"];
  if (data.value("resultType", "") != "streams" || !data.contains("result") ||
      !data["result"].is_array()) {
    return absl::InvalidArgumentError("Loki answered no streams");
  }
  std::vector<StoredLogLine> out;
  for (const nlohmann::json& stream : data["result"]) {
    if (!stream.is_object() || !stream.contains("values") || !stream["values"].is_array()) continue;
    std::string container;
    if (stream.contains("stream") && stream["stream"].is_object()) {
      container = stream["stream"].value("container_id", "");
    }
    for (const nlohmann::json& v : stream["values"]) {
      if (!v.is_array() || v.size() < 2 || !v[0].is_string() || !v[1].is_string()) continue;
      int64_t ns = 0;
      if (!absl::SimpleAtoi(v[0].get<std::string>(), &ns)) continue;
      std::string text = v[1].get<std::string>();
      // A Docker json-file line sent whole: its "log" is the text.
      if (!text.empty() && text.front() == '{') {
        nlohmann::json line = nlohmann::json::parse(text, nullptr, false);
        if (line.is_object() && line.contains("log") && line["log"].is_string() &&
            line.contains("stream")) {
          text = line["log"].get<std::string>();
        }
      }
      while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
      out.push_back({container, absl::FromUnixNanos(ns), std::move(text)});
    }
  }
  std::stable_sort(out.begin(), out.end(),
                   [](const StoredLogLine& a, const StoredLogLine& b) { return a.time < b.time; });
  return out;
}

absl::StatusOr<std::vector<StoredLogLine>> LokiLogStore::Lines(
    const std::vector<std::string>& container_ids, absl::Time since, absl::Time until,
    int limit) {
  absl::StatusOr<std::string> selector = Selector(container_ids);
  if (!selector.ok()) return selector.status();
  const std::string url = absl::StrCat(
      base_url_, "/loki/api/v1/query_range?direction=forward&limit=", limit,
      "&start=", absl::ToUnixNanos(since), "&end=", absl::ToUnixNanos(until),
      "&query=", UrlEscape(*selector));
  long status = 0;
  absl::StatusOr<std::string> body =
      HttpGet(url, absl::Seconds(10), absl::StrCat("Loki at ", base_url_), &status);
  if (!body.ok()) return body.status();
  if (status != 200) {
    return absl::InvalidArgumentError(absl::StrCat(
        "Loki at ", base_url_, " answered HTTP ", status, ": ",
        absl::StripAsciiWhitespace(body->substr(0, 300))));
  }
  return ParseStreams(*body);
}

}  // namespace hosting::controlplane
