#include "controlplane/query/promql.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "controlplane/query/http_get.h"
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
  long status = 0;
  absl::StatusOr<std::string> body =
      HttpGet(absl::StrCat(base_url_, "/api/v1/query?query=", UrlEscape(query)),
              absl::Seconds(2), absl::StrCat("Prometheus at ", base_url_), &status);
  if (!body.ok()) return body.status();
  return ParseInstant(*body);
}

}  // namespace hosting::controlplane
