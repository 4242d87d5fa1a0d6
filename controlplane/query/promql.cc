#include "controlplane/query/promql.h"

#include <curl/curl.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "nlohmann/json.hpp"

namespace hosting::controlplane {

std::string SubstituteQuery(const std::string& query, const std::string& service,
                            int64_t revision) {
  return absl::StrReplaceAll(query,
                             {{"{{service}}", service}, {"{{revision}}", absl::StrCat(revision)}});
}

absl::StatusOr<double> PrometheusQuery::ParseInstant(const std::string& body) {
  nlohmann::json j = nlohmann::json::parse(body, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    return absl::InternalError("Prometheus answered something that is not JSON");
  }
  if (j.value("status", "") != "success") {
    return absl::InvalidArgumentError(
        absl::StrCat("Prometheus: ", j.value("errorType", "error"), ": ", j.value("error", "")));
  }
  const nlohmann::json& data = j["data"];
  const std::string type = data.value("resultType", "");
  const nlohmann::json& result = data["result"];
  const nlohmann::json* value = nullptr;
  if (type == "scalar") {
    value = &result;
  } else if (type == "vector" && result.is_array()) {
    if (result.empty()) return absl::NotFoundError("the query returned no series");
    value = &result[0]["value"];
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("the query returned a ", type, "; a check needs one number"));
  }
  double v = 0;
  if (!value->is_array() || value->size() != 2 || !(*value)[1].is_string() ||
      !absl::SimpleAtod((*value)[1].get<std::string>(), &v)) {
    return absl::InternalError("Prometheus answered a sample without a value");
  }
  return v;
}

absl::StatusOr<double> PrometheusQuery::Instant(const std::string& query) {
  CURL* c = curl_easy_init();
  if (c == nullptr) return absl::InternalError("curl_easy_init failed");
  char* escaped = curl_easy_escape(c, query.c_str(), static_cast<int>(query.size()));
  const std::string url = absl::StrCat(base_url_, "/api/v1/query?query=", escaped);
  curl_free(escaped);
  std::string body;
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 2000L);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &body);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION,
                   +[](char* p, size_t size, size_t n, void* out) -> size_t {
                     static_cast<std::string*>(out)->append(p, size * n);
                     return size * n;
                   });
  CURLcode rc = curl_easy_perform(c);
  long status = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  curl_easy_cleanup(c);
  if (rc != CURLE_OK) {
    return absl::UnavailableError(absl::StrCat("Prometheus at ", base_url_, ": ",
                                               curl_easy_strerror(rc)));
  }
  return ParseInstant(body);
}

}  // namespace hosting::controlplane
